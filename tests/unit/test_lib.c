/*
 * test_lib.c -- the leaf library: errors, allocation fault injection, bounded
 * buffers, RFC 3339 time, clocks, hashing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/cs.h"
#include "lib/cs_crypto.h"
#include "lib/cs_map.h"
#include "lib/cs_time.h"

static void test_errors(void **state)
{
    (void)state;
    cs_err_t err;
    cs_err_clear(&err);
    assert_int_equal(err.rc, CS_OK);
    cs_rc rc = cs_err_field(&err, CS_ERR_INVALID, "data.items[0].quantity",
                            "expected an integer >= 1, got %d", 0);
    assert_int_equal(rc, CS_ERR_INVALID);
    assert_string_equal(err.field, "data.items[0].quantity");
    assert_string_equal(err.msg, "expected an integer >= 1, got 0");
    assert_non_null(err.file);
    assert_string_equal(cs_strerror(CS_ERR_TOOBIG), "too big");
    assert_string_equal(cs_strerror((cs_rc)999), "unknown error");
    /* a NULL error object is allowed */
    assert_int_equal(cs_errf(NULL, CS_ERR_IO, "x"), CS_ERR_IO);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_int_equal(cs_utf8_seq("a", 1), 1);
    assert_int_equal(cs_utf8_seq("\xC3\xBC", 2), 2);           /* ü */
    assert_int_equal(cs_utf8_seq("\xE2\x82\xAC", 3), 3);       /* € */
    assert_int_equal(cs_utf8_seq("\xF0\x9F\x93\xA6", 4), 4);   /* a parcel emoji */
    assert_int_equal(cs_utf8_seq("\xC3\xBC", 1), 0);           /* cut */
    assert_int_equal(cs_utf8_seq("\xFC", 1), 0);                /* Latin-1 */
    assert_int_equal(cs_utf8_seq("\xC0\xAF", 2), 0);           /* overlong */
    assert_int_equal(cs_utf8_seq("\xED\xA0\x80", 3), 0);       /* a surrogate */
    assert_int_equal(cs_utf8_seq("\xF4\x90\x80\x80", 4), 0);   /* past U+10FFFF */
    assert_true(cs_utf8_valid("M\xC3\xBCnchen", 8));
    assert_false(cs_utf8_valid("M\xFCnchen", 7));
    assert_false(cs_utf8_valid("a\0b", 3));
    /* clipping never ends inside a character */
    const char *s = "ab\xC3\xBC\xE2\x82\xAC";
    assert_int_equal(cs_utf8_clip(s, 7, 10), 7);
    assert_int_equal(cs_utf8_clip(s, 7, 3), 2);
    assert_int_equal(cs_utf8_clip(s, 7, 4), 4);
    assert_int_equal(cs_utf8_clip(s, 7, 6), 4);
    char t[16];
    snprintf(t, sizeof t, "%.3s", s);
    cs_utf8_trim(t);
    assert_string_equal(t, "ab");
    snprintf(t, sizeof t, "%.6s", s);
    cs_utf8_trim(t);
    assert_string_equal(t, "ab\xC3\xBC");
    cs_strlcpy(t, "ab\xC3\xBC", sizeof t);
    cs_utf8_trim(t);
    assert_string_equal(t, "ab\xC3\xBC");
    cs_strlcpy(t, "M\xFCnchen", sizeof t);
    assert_false(cs_utf8_repair(t));
    assert_string_equal(t, "M?nchen");
    assert_true(cs_utf8_repair(t));
    /* error messages are always UTF-8: what they quote is repaired */
    cs_err_t err;
    cs_err_field(&err, CS_ERR_INVALID, "x", "got \"%.3s\"", s);
    assert_string_equal(err.msg, "got \"ab?\"");
}

/* White space around a value goes, Unicode's as ASCII's, a whole
 * character at a time; a character that merely ends in a space's last
 * bytes stays. */
static void test_utf8_strip(void **state)
{
    (void)state;
    size_t n;
    const char *s = "\xC2\xA0 dhl\xE3\x80\x80\t";
    const char *p = cs_utf8_strip(s, strlen(s), &n);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "dhl", 3);
    s = "dhl\xE2\x80\xAF\xEF\xBB\xBF"; /* U+202F, U+FEFF */
    p = cs_utf8_strip(s, strlen(s), &n);
    assert_ptr_equal(p, s);
    assert_int_equal(n, 3);
    s = "\xC2\xA0\xE2\x80\x83 ";
    cs_utf8_strip(s, strlen(s), &n);
    assert_int_equal(n, 0);
    assert_true(cs_utf8_blank(s, strlen(s)));
    cs_utf8_strip("", 0, &n);
    assert_int_equal(n, 0);
    /* "ä" (C3 A4), U+2080 (E2 82 80) and an emoji stay whole */
    s = " a\xC3\xA4";
    p = cs_utf8_strip(s, strlen(s), &n);
    assert_int_equal(n, 3);
    s = "x\xE2\x82\x80";
    cs_utf8_strip(s, strlen(s), &n);
    assert_int_equal(n, 4);
    s = "\xF0\x9F\x93\xA6\xC2\xA0";
    p = cs_utf8_strip(s, strlen(s), &n);
    assert_int_equal(n, 4);
    assert_false(cs_utf8_blank(s, strlen(s)));
    (void)p;
}

/* Latin, Greek and Cyrillic letters change case in UTF-8 too, so keys
 * built from what people type meet whatever case they typed in; no
 * character grows, nothing is cut in two, and what is not a letter of
 * those stays as it is. */
static void test_utf8_case(void **state)
{
    (void)state;
    static const struct {
        const char *in, *upper, *lower;
    } cases[] = {
        { "Dhl Paket 1", "DHL PAKET 1", "dhl paket 1" },
        { "\xC3\xAEle-de-France", "\xC3\x8ELE-DE-FRANCE", "\xC3\xAEle-de-france" },  /* île */
        { "\xC3\x8Ele", "\xC3\x8ELE", "\xC3\xAEle" },                                /* Île */
        { "\xC3\xA9\xC3\xA0\xC3\xBE", "\xC3\x89\xC3\x80\xC3\x9E", "\xC3\xA9\xC3\xA0\xC3\xBE" }, /* éàþ */
        { "\xC3\xB7\xC3\x97", "\xC3\xB7\xC3\x97", "\xC3\xB7\xC3\x97" },              /* ÷× */
        { "\xC3\xBF", "\xC5\xB8", "\xC3\xBF" },                                      /* ÿ Ÿ */
        { "\xC5\xB8", "\xC5\xB8", "\xC3\xBF" },
        { "\xC5\x82\xC3\xB3" "d\xC5\xBA", "\xC5\x81\xC3\x93" "D\xC5\xB9", "\xC5\x82\xC3\xB3" "d\xC5\xBA" }, /* łódź */
        { "\xC5\x81\xC3\x93" "D\xC5\xB9", "\xC5\x81\xC3\x93" "D\xC5\xB9", "\xC5\x82\xC3\xB3" "d\xC5\xBA" },
        { "\xC4\x8C\xC4\x8D", "\xC4\x8C\xC4\x8C", "\xC4\x8D\xC4\x8D" },              /* Čč */
        { "\xC4\xBD\xC4\xBE", "\xC4\xBD\xC4\xBD", "\xC4\xBE\xC4\xBE" },              /* Ľľ (odd run) */
        { "\xC4\xB1\xC4\xB0", "I\xC4\xB0", "\xC4\xB1i" },                            /* ıİ */
        { "\xC3\x9F\xE1\xBA\x9E", "\xC3\x9F\xC3\x9F", "\xC3\x9F\xC3\x9F" },          /* ßẞ */
        { "Ia\xC8\x99i", "IA\xC8\x98I", "ia\xC8\x99i" },                             /* Iași */
        { "\xC4\x90\xC3\xA0 N\xE1\xBA\xB5ng", "\xC4\x90\xC3\x80 N\xE1\xBA\xB4NG",
          "\xC4\x91\xC3\xA0 n\xE1\xBA\xB5ng" },                                      /* Đà Nẵng */
        { "\xCE\x91\xCE\xB1\xE2\x82\xAC\xF0\x9F\x93\xA6", "\xCE\x91\xCE\x91\xE2\x82\xAC\xF0\x9F\x93\xA6",
          "\xCE\xB1\xCE\xB1\xE2\x82\xAC\xF0\x9F\x93\xA6" },                          /* Αα€, emoji */
        /* Greek (accents kept, final sigma) and Cyrillic, Ukrainian and
         * Kazakh letters too: region names are written in them */
        { "\xCE\x91\xCF\x84\xCF\x84\xCE\xB9\xCE\xBA\xCE\xAE", "\xCE\x91\xCE\xA4\xCE\xA4\xCE\x99\xCE\x9A\xCE\x89",
          "\xCE\xB1\xCF\x84\xCF\x84\xCE\xB9\xCE\xBA\xCE\xAE" },                    /* Αττική */
        { "\xCE\xA9\xCE\xA1\xCE\x91\xCE\x99\xCE\x8C\xCF\x82", "\xCE\xA9\xCE\xA1\xCE\x91\xCE\x99\xCE\x8C\xCE\xA3",
          "\xCF\x89\xCF\x81\xCE\xB1\xCE\xB9\xCF\x8C\xCF\x82" },                    /* ΩΡΑΙΌς */
        { "\xD0\x9C\xD0\xBE\xD1\x81\xD0\xBA\xD0\xB2\xD0\xB0", "\xD0\x9C\xD0\x9E\xD0\xA1\xD0\x9A\xD0\x92\xD0\x90",
          "\xD0\xBC\xD0\xBE\xD1\x81\xD0\xBA\xD0\xB2\xD0\xB0" },                    /* Москва */
        { "\xD0\x9A\xD0\xB8\xD1\x97\xD0\xB2\xD2\x91", "\xD0\x9A\xD0\x98\xD0\x87\xD0\x92\xD2\x90",
          "\xD0\xBA\xD0\xB8\xD1\x97\xD0\xB2\xD2\x91" },                            /* Київґ */
        { "\xD3\x81\xD3\x99", "\xD3\x81\xD3\x98", "\xD3\x82\xD3\x99" },            /* Ӂә */
        { "a\xFC" "b", "A\xFC" "B", "a\xFC" "b" },                                  /* not UTF-8 */
    };
    char out[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].in);
        size_t k = cs_utf8_case(out, sizeof out - 1, cases[i].in, n, true);
        out[k] = '\0';
        if (strcmp(out, cases[i].upper) != 0)
            fail_msg("case %zu upper: got %s", i, out);
        assert_true(k <= n);
        k = cs_utf8_case(out, sizeof out - 1, cases[i].in, n, false);
        out[k] = '\0';
        if (strcmp(out, cases[i].lower) != 0)
            fail_msg("case %zu lower: got %s", i, out);
        assert_true(k <= n);
    }
    /* bounded by size, never inside a character */
    assert_int_equal(cs_utf8_case(out, 2, "a\xC3\xA9", 3, true), 1);
    assert_int_equal(cs_utf8_case(out, 3, "a\xC3\xA9", 3, true), 3);
    assert_memory_equal(out, "A\xC3\x89", 3);
    assert_int_equal(cs_utf8_case(out, 0, "a", 1, true), 0);
}

static void test_alloc_fault_injection(void **state)
{
    (void)state;
    cs_alloc_fail_after(2);
    void *a = cs_malloc(10);
    void *b = cs_malloc(10);
    void *c = cs_malloc(10);
    assert_non_null(a);
    assert_null(b);
    assert_non_null(c);
    cs_free(a);
    cs_free(c);
    cs_alloc_fail_after(0);
}

static void test_buf_bounded(void **state)
{
    (void)state;
    cs_buf_t b;
    cs_buf_init(&b, 10);
    assert_int_equal(cs_buf_puts(&b, "hello"), CS_OK);
    assert_int_equal(cs_buf_printf(&b, "%d", 1234), CS_OK);
    assert_string_equal(b.data, "hello1234");
    assert_int_equal(cs_buf_puts(&b, "xy"), CS_ERR_TOOBIG);
    assert_string_equal(b.data, "hello1234"); /* unchanged on failure */
    assert_int_equal(cs_buf_puts(&b, "z"), CS_OK);
    assert_int_equal(b.len, 10);
    size_t len;
    char *s = cs_buf_steal(&b, &len);
    assert_int_equal(len, 10);
    assert_string_equal(s, "hello1234z");
    assert_null(b.data);
    cs_free(s);
    cs_buf_free(&b);
}

static void test_strings(void **state)
{
    (void)state;
    char small[4];
    assert_int_equal(cs_strlcpy(small, "abcdef", sizeof small), 6);
    assert_string_equal(small, "abc");
    /* a URL's password is not shown, whatever it holds; the rest is */
    char shown[96];
    assert_int_equal(cs_url_shown("smtp://shop:p@ss:w@mail.example:587/x?y=z", shown,
                                  sizeof shown),
                     strlen("smtp://shop:***@mail.example:587/x?y=z"));
    assert_string_equal(shown, "smtp://shop:***@mail.example:587/x?y=z");
    cs_url_shown("https://user@api.example/a:b@c", shown, sizeof shown);
    assert_string_equal(shown, "https://user@api.example/a:b@c"); /* no password */
    cs_url_shown("smtp://mail.example:25", shown, sizeof shown);
    assert_string_equal(shown, "smtp://mail.example:25");
    cs_url_shown("not a url: a:b@c", shown, sizeof shown);
    assert_string_equal(shown, "not a url: a:b@c");
    int64_t v;
    assert_true(cs_parse_i64("-42", &v));
    assert_int_equal(v, -42);
    assert_false(cs_parse_i64("42x", &v));
    assert_false(cs_parse_i64("", &v));
    /* strtoll takes these; a config value, a header or a CSV cell must not */
    static const char *const loose[] = { "+5", " 5", "\t5", "\n5", "- 5", "-", "-+5", "5 " };
    for (size_t i = 0; i < sizeof loose / sizeof *loose; i++)
        assert_false(cs_parse_i64(loose[i], &v));
    assert_true(cs_parse_i64("-0", &v));
    assert_int_equal(v, 0);
    assert_false(cs_parse_i64("99999999999999999999", &v));
    assert_true(cs_parse_serial("7", &v));
    assert_int_equal(v, 7);
    assert_true(cs_parse_serial("120", &v));
    assert_int_equal(v, 120);
    const char *const not_ours[] = { "007", "0", "+7", " 7", "7 ", "-7", "", "7x",
                                     "99999999999999999999" };
    for (size_t i = 0; i < sizeof not_ours / sizeof *not_ours; i++)
        assert_false(cs_parse_serial(not_ours[i], &v));
    assert_false(cs_parse_serial(NULL, &v));
    /* a query parameter's number: digits alone */
    assert_true(cs_parse_digits("007", &v));
    assert_int_equal(v, 7);
    assert_true(cs_parse_digits("0", &v));
    assert_int_equal(v, 0);
    const char *const no_digits[] = { "+1", " 1", "1 ", "\t1", "-1", "-0", "", "1x", "0x10",
                                      "99999999999999999999" };
    for (size_t i = 0; i < sizeof no_digits / sizeof *no_digits; i++)
        assert_false(cs_parse_digits(no_digits[i], &v));
    assert_false(cs_parse_digits(NULL, &v));
    size_t n;
    const char *t = cs_span_trim(" \tFS  ", &n);
    assert_int_equal(n, 2);
    assert_memory_equal(t, "FS", 2);
    t = cs_span_trim("   ", &n);
    assert_int_equal(n, 0);
    t = cs_span_trim("A B", &n);
    assert_int_equal(n, 3);
}

static void test_time(void **state)
{
    (void)state;
    cs_ms_t t;
    char buf[40];
    assert_true(cs_time_parse("1970-01-01T00:00:00Z", &t));
    assert_int_equal(t, 0);
    assert_true(cs_time_parse("2026-03-01T10:15:30.25+01:00", &t));
    assert_string_equal(cs_time_format(t, buf, sizeof buf), "2026-03-01T09:15:30.250Z");
    assert_true(cs_time_parse("2024-02-29", &t));
    assert_string_equal(cs_time_format(t, buf, sizeof buf), "2024-02-29T00:00:00.000Z");
    assert_false(cs_time_parse("2023-02-29", &t));
    assert_false(cs_time_parse("2026-13-01T00:00:00Z", &t));
    assert_false(cs_time_parse("2026-03-01T25:00:00Z", &t));
    assert_false(cs_time_parse("2026-03-01T10:00:00", &t)); /* offset required */
    assert_false(cs_time_parse("yesterday", &t));
    assert_false(cs_time_parse("2026-03-01T10:00:00Zjunk", &t));
    assert_true(cs_time_parse("2017-07-09 21:57:05-03:00", &t));
    assert_string_equal(cs_time_format(t, buf, sizeof buf), "2017-07-10T00:57:05.000Z");
    assert_true(cs_date_parse("2026-12-31", &t));
    assert_false(cs_date_parse("2026-12-31T00:00:00Z", &t));
    /* a year before 1970: not taken, but told apart from what is no time */
    assert_false(cs_time_parse("1969-12-31T23:59:59Z", &t));
    assert_true(cs_time_before_1970("1969-12-31T23:59:59Z"));
    assert_true(cs_time_before_1970("0001-01-01T00:00:00.123-05:00"));
    assert_true(cs_time_before_1970("1900-02-28"));
    assert_true(cs_time_before_1970("1968-02-29T10:00:00Z")); /* a leap year */
    assert_false(cs_time_before_1970("1969-02-29T10:00:00Z"));
    assert_false(cs_time_before_1970("1900-02-29"));
    assert_false(cs_time_before_1970("1969-13-01T00:00:00Z"));
    assert_false(cs_time_before_1970("1969-12-31T10:00:00")); /* no offset */
    assert_false(cs_time_before_1970("1970-01-01T00:00:00Z"));
    assert_false(cs_time_before_1970("2026-03-01T10:00:00Z"));
    assert_false(cs_time_before_1970("19x9-12-31"));
    assert_false(cs_time_before_1970(""));
    assert_false(cs_time_before_1970(NULL));

    cs_clock_manual_t m;
    cs_clock_manual_init(&m, 1000);
    assert_int_equal(cs_clock_now(&m.clock), 1000);
    cs_clock_manual_advance(&m, CS_MS_PER_DAY);
    assert_int_equal(cs_clock_now(&m.clock), 1000 + CS_MS_PER_DAY);
    assert_true(cs_clock_now(cs_clock_system()) > 1700000000000LL);

    /* a condition variable's deadline: now plus the wait, nanoseconds carried */
    struct timespec before, dl, after;
    for (int ms = 0; ms <= 2999; ms += 1499) {
        clock_gettime(CLOCK_REALTIME, &before);
        cs_deadline_in(&dl, ms);
        clock_gettime(CLOCK_REALTIME, &after);
        assert_true(dl.tv_nsec >= 0 && dl.tv_nsec < 1000000000L);
        int64_t at = (int64_t)dl.tv_sec * 1000000000LL + dl.tv_nsec;
        assert_true(at >= (int64_t)before.tv_sec * 1000000000LL + before.tv_nsec + ms * 1000000LL);
        assert_true(at <= (int64_t)after.tv_sec * 1000000000LL + after.tv_nsec + ms * 1000000LL);
    }
}

static void test_crypto(void **state)
{
    (void)state;
    char hex[CS_SHA256_HEX_LEN];
    cs_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* RFC 4231 test case 2 */
    uint8_t mac[CS_SHA256_LEN];
    const char *data = "what do ya want for nothing?";
    cs_hmac_sha256("Jefe", 4, data, strlen(data), mac);
    cs_hex(mac, sizeof mac, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    char tok[64];
    assert_int_equal(cs_random_token("cs_", 8, tok, sizeof tok), CS_OK);
    assert_int_equal(strlen(tok), 3 + 16);
    char tok2[64];
    assert_int_equal(cs_random_token("cs_", 8, tok2, sizeof tok2), CS_OK);
    assert_string_not_equal(tok, tok2);
    assert_int_equal(cs_random_token("cs_", 8, tok, 10), CS_ERR_TOOBIG);
    assert_true(cs_ct_equal("abcd", "abcd", 4));
    assert_false(cs_ct_equal("abcd", "abce", 4));
}

/* Random puts and deletes against a plain array of what should be there:
 * after every step each key is found exactly when it is present, also
 * keys whose probe chains ran through a deleted slot or wrapped around. */
static void test_map_delete(void **state)
{
    (void)state;
    enum { KEYS = 300 };
    cs_map_t m;
    cs_map_init(&m);
    int present[KEYS] = { 0 };
    static int vals[KEYS];
    unsigned seed = 12345;
    char key[16];
    for (int step = 0; step < 20000; step++) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)((seed >> 8) % KEYS);
        snprintf(key, sizeof key, "k%d", k);
        if ((seed >> 4) % 3) {
            assert_int_equal(cs_map_put(&m, key, &vals[k]), CS_OK);
            present[k] = 1;
        } else {
            void *v = cs_map_del(&m, key);
            assert_ptr_equal(v, present[k] ? &vals[k] : NULL);
            present[k] = 0;
        }
        if (step % 97 == 0) {
            size_t n = 0;
            for (int i = 0; i < KEYS; i++) {
                snprintf(key, sizeof key, "k%d", i);
                assert_ptr_equal(cs_map_get(&m, key), present[i] ? &vals[i] : NULL);
                n += (size_t)present[i];
            }
            assert_int_equal(m.n, n);
        }
    }
    assert_null(cs_map_del(&m, "absent"));
    cs_map_free(&m);
    assert_null(cs_map_del(&m, "k1")); /* an empty map */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),       cmocka_unit_test(test_alloc_fault_injection),
        cmocka_unit_test(test_buf_bounded),  cmocka_unit_test(test_strings),
        cmocka_unit_test(test_time),         cmocka_unit_test(test_crypto),
        cmocka_unit_test(test_map_delete),   cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_utf8_case),    cmocka_unit_test(test_utf8_strip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
