/* test_mime.c -- the email a customer receives, as bytes on the wire
 * (src/channel/mime.c): no header can be added through a name or a
 * subject, and no body line starts with "." or "From " (SMTP's end of
 * data, mbox's next message); the addresses the transports accept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "channel/channel.h"

static void build(const cs_mail_t *m, cs_buf_t *b)
{
    char mid[200];
    cs_err_t err;
    cs_buf_init(b, 1 << 20);
    if (cs_mime_build(m, "Shop <service@shop.example>", b, mid, sizeof mid, &err))
        fail_msg("build: %s", err.msg);
    assert_non_null(b->data);
}

/* The next line of the message at *p (CRLF-terminated), or NULL at its end. */
static const char *next_line(const char **p, size_t *len)
{
    const char *s = *p, *e = s ? strstr(s, "\r\n") : NULL;
    if (!e)
        return NULL;
    *len = (size_t)(e - s);
    *p = e + 2;
    return s;
}

/* A name or subject with CR LF in it stays inside its own header. */
static void test_no_header_injection(void **state)
{
    (void)state;
    cs_mail_t m = { .to = "anna@example.de", .to_name = "Anna\r\nBcc: evil@example.com",
                    .subject = "Hallo\r\nBcc: evil@example.com", .text = "Hallo",
                    .idem_key = "k1", .date = 1772359200000LL };
    cs_buf_t b;
    build(&m, &b);
    const char *p = b.data, *l;
    size_t n;
    while ((l = next_line(&p, &n)) != NULL && n > 0)
        assert_false(n >= 4 && strncmp(l, "Bcc:", 4) == 0);
    cs_buf_free(&b);
}

/* A "." or "From " that a soft line break puts at the start of a line is
 * encoded like one at the start of a text line. */
static void test_line_starts_after_soft_break(void **state)
{
    (void)state;
    char text[400];
    const char *cols75 =
        "123456789012345678901234567890123456789012345678901234567890123456789012345";
    snprintf(text, sizeof text, ".first\nFrom me\n%s.dot\n%sFrom here\n%s..", cols75, cols75,
             cols75);
    cs_mail_t m = { .to = "anna@example.de", .subject = "Hallo", .text = text,
                    .idem_key = "k2", .date = 1772359200000LL };
    cs_buf_t b;
    build(&m, &b);
    const char *body = strstr(b.data, "\r\n\r\n");
    assert_non_null(body);
    const char *p = body + 4, *l;
    size_t n;
    int lines = 0;
    while ((l = next_line(&p, &n)) != NULL) {
        lines++;
        assert_true(n <= 76);
        assert_false(n > 0 && l[0] == '.');
        assert_false(n >= 5 && strncmp(l, "From ", 5) == 0);
    }
    assert_int_equal(lines, 8); /* 2 lines, then 3 x a line and its soft break */
    assert_non_null(strstr(body, "=\r\n=2Edot\r\n"));
    assert_non_null(strstr(body, "=\r\n=46rom here\r\n"));
    cs_buf_free(&b);
}

/* A phone number intake accepts (E.164: + and 7 to 15 digits) is one the
 * SMS and WhatsApp transports send to: a 7-digit one (Niue, Tokelau) was
 * accepted and then failed as invalid_number. */
/* Long non-ASCII names and subjects: every header line stays within the
 * 76 characters RFC 2047 allows a line with an encoded-word (the first
 * line of a subject was 81), and each word still holds whole characters. */
static void test_encoded_words_fit_the_line(void **state)
{
    (void)state;
    const char *names[] = { "Änne Müller-Lüdenscheidt aus Groß-Umstadt an der Überlingen Straße",
                            "Jürgen", "Ø" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char subject[400];
        snprintf(subject, sizeof subject, "Grüße, %s: Ihre Bestellung ist unterwegs – "
                 "wir wünschen Ihnen viel Freude damit", names[i]);
        cs_mail_t m = { .to = "a.very.long.address.for.a.customer@subdomain.example.de",
                        .to_name = names[i], .subject = subject, .text = "Hallo",
                        .idem_key = "k3", .date = 1772359200000LL };
        cs_buf_t b;
        build(&m, &b);
        const char *p = b.data, *l;
        size_t n;
        int words = 0;
        while ((l = next_line(&p, &n)) != NULL && n > 0) {
            const char *w = l;
            while ((w = strstr(w, "=?UTF-8?B?")) != NULL && w < l + n) {
                words++;
                w += 10;
            }
            if (memmem(l, n, "=?", 2))
                assert_true(n <= 76);
        }
        assert_true(words >= 2);
        assert_non_null(strstr(b.data, "<a.very.long.address.for.a.customer@subdomain.example.de>"));
        cs_buf_free(&b);
    }
}

/* The longest header line of a message but those that hold SKIP. */
static size_t longest_header_line(const char *msg, const char *skip)
{
    const char *p = msg, *l;
    size_t n, longest = 0;
    while ((l = next_line(&p, &n)) != NULL && n > 0)
        if (!skip || !memmem(l, n, skip, strlen(skip)))
            longest = n > longest ? n : longest;
    return longest;
}

static void append(char *s, const char *more, size_t size)
{
    size_t n = strlen(s);
    snprintf(s + n, size - n, "%s", more);
}

/* The value of header NAME with its folds taken out (RFC 5322 2.2.3). */
static void unfolded(const char *msg, const char *name, char *out, size_t size)
{
    const char *h = strstr(msg, name);
    size_t o = 0;
    assert_non_null(h);
    h += strlen(name);
    while (*h && !(h[0] == '\r' && h[1] == '\n' && h[2] != ' ') && o + 1 < size) {
        if (h[0] == '\r' && h[1] == '\n')
            h += 2;
        else
            out[o++] = *h++;
    }
    out[o] = '\0';
}

/* Long plain ASCII headers (a subject listing the products, a long name)
 * are folded at their spaces into lines of at most 78; a subject with a word too long for any line is encoded. Each one's
 * line was as long as its value, past the 998 octets a line may have, which
 * servers refuse or break. (The unsubscribe link, bounded by the lengths of
 * public_url and a customer id, stays whole on its line.) */
static void test_long_ascii_headers_folded(void **state)
{
    (void)state;
    char subject[2000] = "Your order", name[300] = "Anna", url[400], got[2100];
    while (strlen(subject) < 1500)
        append(subject, " with Espresso Beans Organic 500 g", sizeof subject);
    while (strlen(name) < 200)
        append(name, " Maria", sizeof name);
    snprintf(url, sizeof url, "https://shop.example/a/very/long/path/to/consonance/u/");
    while (strlen(url) < 300)
        append(url, "0123456789abcdef", sizeof url);
    cs_mail_t m = { .to = "anna@example.de", .to_name = name, .subject = subject,
                    .text = "Hallo", .idem_key = "k4", .date = 1772359200000LL,
                    .unsubscribe_url = url };
    cs_buf_t b;
    build(&m, &b);
    assert_true(longest_header_line(b.data, url) <= 78);
    unfolded(b.data, "\r\nSubject: ", got, sizeof got);
    assert_string_equal(got, subject);
    unfolded(b.data, "\r\nTo: ", got, sizeof got);
    assert_true(strncmp(got, name, strlen(name)) == 0);
    assert_non_null(strstr(got, "<anna@example.de>"));
    char lu[500];
    snprintf(lu, sizeof lu, "\r\nList-Unsubscribe: <%s>\r\n", url);
    assert_non_null(strstr(b.data, lu));
    cs_buf_free(&b);

    /* a word longer than a line: the subject as encoded-words */
    memset(subject, 'x', 1200);
    subject[1200] = '\0';
    m.subject = subject;
    build(&m, &b);
    assert_true(longest_header_line(b.data, NULL) <= 998);
    assert_non_null(strstr(b.data, "Subject: =?UTF-8?B?"));
    cs_buf_free(&b);

    /* a quoted name whose last word and closing quote are longer than a line */
    char quoted[1100] = "Dr. ";
    memset(quoted + 4, 'x', 997);
    quoted[1001] = '\0';
    m.subject = "Hallo";
    m.to_name = quoted;
    build(&m, &b);
    assert_true(longest_header_line(b.data, NULL) <= 998);
    cs_buf_free(&b);

    /* a short subject stays as it was */
    m.subject = "Your order is on its way";
    m.to_name = "Anna";
    build(&m, &b);
    assert_non_null(strstr(b.data, "\r\nSubject: Your order is on its way\r\n"));
    assert_non_null(strstr(b.data, "\r\nTo: Anna <anna@example.de>\r\n"));
    cs_buf_free(&b);
}

static void test_phone_numbers(void **state)
{
    (void)state;
    assert_true(cs_phone_valid("+6834123"));
    assert_true(cs_phone_valid("+4915112345678"));
    assert_true(cs_phone_valid("+123456789012345"));
    assert_false(cs_phone_valid("+123456"));
    assert_false(cs_phone_valid("+1234567890123456"));
    assert_false(cs_phone_valid("+0151123456"));
    assert_false(cs_phone_valid("015112345678"));
}

/* A transport refusing its URL names it without the password of its
 * user:password@ (a URL copied with credentials in it). */
static void test_url_password_not_shown(void **state)
{
    (void)state;
    cs_transport_t *t = NULL;
    cs_err_t err;
    cs_smtp_conf_t sc = { .url = "smpt://shop:hunter2@mail.example:587",
                          .from = "Shop <service@shop.example>" };
    assert_int_equal(cs_smtp_open(&sc, &t, &err), CS_ERR_CONFIG);
    assert_null(t);
    assert_non_null(strstr(err.msg, "smtp_url: expected smtp://host:port"));
    assert_non_null(strstr(err.msg, "got 'smpt://shop:***@mail.example:587'"));
    assert_null(strstr(err.msg, "hunter2"));

    cs_http_provider_conf_t hc = { .url = "htps://AC123:hunter2@api.example/Messages",
                                   .user = "AC123", .token = "tok", .from = "Shop" };
    assert_int_equal(cs_sms_twilio_open(&hc, &t, &err), CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "sms_url: expected an http(s) URL, got "
                                    "'htps://AC123:***@api.example/Messages'"));
    assert_null(strstr(err.msg, "hunter2"));
    hc.url = "graph.example/v19/1/messages?x=user:hunter2@y";
    assert_int_equal(cs_whatsapp_cloud_open(&hc, &t, &err), CS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "whatsapp_url: expected an http(s) URL"));
}

/* The sender's international domain is converted once, at open (its ASCII
 * form in MAIL FROM and From:, tested end to end in blackbox test_email); one
 * with no ASCII form is refused there, naming smtp_from. */
static void test_from_domain_ascii(void **state)
{
    (void)state;
    cs_transport_t *t = NULL;
    cs_err_t err;
    cs_smtp_conf_t sc = { .url = "smtp://127.0.0.1:25",
                          .from = "Shop <service@b\xc3\xa4" "ckerei.de>" };
    if (!(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_IDN))
        skip();
    assert_int_equal(cs_smtp_open(&sc, &t, &err), CS_OK);
    cs_transport_close(&t);
    /* a combining accent first: a label IDNA does not allow */
    sc.from = "Shop <service@\xcc\x81" "abc.de>";
    assert_int_equal(cs_smtp_open(&sc, &t, &err), CS_ERR_CONFIG);
    assert_null(t);
    assert_non_null(strstr(err.msg, "smtp_from: the domain of 'service@"));
    assert_non_null(strstr(err.msg, "has no ASCII form (IDNA)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_header_injection),
        cmocka_unit_test(test_line_starts_after_soft_break),
        cmocka_unit_test(test_encoded_words_fit_the_line),
        cmocka_unit_test(test_long_ascii_headers_folded),
        cmocka_unit_test(test_phone_numbers),
        cmocka_unit_test(test_url_password_not_shown),
        cmocka_unit_test(test_from_domain_ascii),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
