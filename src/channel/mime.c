/*
 * mime.c -- RFC 5322 messages with MIME (RFC 2045-2047): multipart/
 * alternative with quoted-printable UTF-8 parts, encoded-word headers, a
 * stable Message-ID, Date, and the RFC 8058 one-click unsubscribe headers.
 */
#include "channel.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "../lib/cs_crypto.h"

bool cs_email_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    const char *at = s ? strchr(s, '@') : NULL;
    if (n < 3 || n > 254 || !at || at == s || !at[1] || strchr(at + 1, '@') || !strchr(at, '.'))
        return false;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == '<' || c == '>' || c == '(' || c == ')' || c == ',' || c == ';' ||
            c == '"' || c == '\\' || c == 127)
            return false;
    }
    return at[strlen(at) - 1] != '.';
}

bool cs_phone_valid(const char *s)
{
    if (!s || s[0] != '+')
        return false;
    size_t n = strlen(s + 1);
    if (n < 7 || n > 15) /* as intake checks it (docs/events.md) */
        return false;
    for (size_t i = 1; i <= n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return s[1] != '0';
}

static bool ascii_safe(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 32 || c > 126)
            return false;
    }
    return true;
}

/* RFC 2047 section 2: a line with an encoded-word is at most 76 long. */
#define EW_LINE_MAX 76
#define EW_OVERHEAD 12 /* =?UTF-8?B? and ?= */

/* A header value as RFC 2047 encoded-words (UTF-8, base64), folded so that
 * no line passes EW_LINE_MAX; *col is the column the value starts at (the
 * header's name before it) and becomes the one it ends at. */
static cs_rc encoded_words(cs_buf_t *b, const char *s, size_t *col)
{
    size_t n = strlen(s), p = 0;
    cs_rc rc = CS_OK;
    while (p < n && !rc) {
        /* the bytes whose base64 (4 per 3) fits the rest of the line */
        size_t room = *col + EW_OVERHEAD < EW_LINE_MAX ? EW_LINE_MAX - *col - EW_OVERHEAD : 0;
        size_t max = room / 4 * 3;
        if (max < 4 && *col > 1) { /* too little for a character: fold first */
            rc = cs_buf_puts(b, "\r\n ");
            *col = 1;
            continue;
        }
        size_t take = cs_utf8_clip(s + p, n - p, max); /* not inside a character */
        if (take == 0) /* a run of bytes that are no UTF-8: cut anywhere */
            take = n - p < max ? n - p : max;
        unsigned char enc[64];
        int el = EVP_EncodeBlock(enc, (const unsigned char *)s + p, (int)take);
        rc = cs_buf_printf(b, "=?UTF-8?B?%.*s?=", el, (const char *)enc);
        *col += EW_OVERHEAD + (size_t)el;
        p += take;
        if (p < n && !rc) {
            rc = cs_buf_puts(b, "\r\n ");
            *col = 1;
        }
    }
    return rc;
}

/* RFC 5322 2.1.1: a line is at most 998 octets and should be at most 78. */
#define HDR_LINE_PREF 78
#define HDR_LINE_MAX 998

/* Whether plain ASCII text starting at column col can be folded at its
 * spaces (RFC 5322 2.2.3) into lines of at most max: no word is longer
 * than a line of its own allows. */
static bool foldable(const char *s, size_t col, size_t max)
{
    size_t line = col;
    for (const char *p = s; *p; p++) {
        if (*p == ' ' && p > s && p[-1] != ' ')
            line = 0; /* a fold may go before this space */
        if (++line > max)
            return false;
    }
    return true;
}

/* Plain ASCII text, folded before a space where the line would pass
 * HDR_LINE_PREF; *col is the column it starts at and becomes the one it
 * ends at. A word longer than the line stays whole on a line of its own. */
static cs_rc folded(cs_buf_t *b, const char *s, size_t *col)
{
    cs_rc rc = CS_OK;
    const char *p = s;
    while (*p && !rc) {
        /* one piece: the spaces before a word, then the word */
        const char *w = p, *e;
        while (*w == ' ')
            w++;
        for (e = w; *e && *e != ' '; e++)
            ;
        size_t n = (size_t)(e - p);
        /* (no fold before trailing spaces: a line of only spaces) */
        if (p > s && *p == ' ' && e > w && *col + n > HDR_LINE_PREF && *col > 1) {
            rc = cs_buf_puts(b, "\r\n");
            *col = 0;
        }
        if (!rc)
            rc = cs_buf_append(b, p, n);
        *col += n;
        p = e;
    }
    return rc;
}

static cs_rc header_text(cs_buf_t *b, const char *name, const char *value)
{
    size_t col = strlen(name) + 2;
    cs_rc rc = cs_buf_printf(b, "%s: ", name);
    if (rc)
        return rc;
    if (ascii_safe(value) && foldable(value, col, HDR_LINE_MAX))
        rc = folded(b, value, &col);
    else
        rc = encoded_words(b, value, &col);
    return rc ? rc : cs_buf_puts(b, "\r\n");
}

/* "Name <addr>" or "addr" -> display name (may be empty) and address */
static void split_from(const char *from, char *name, size_t ns, char *addr, size_t as)
{
    const char *lt = strrchr(from, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (lt && gt) {
        size_t nl = (size_t)(lt - from);
        while (nl > 0 && from[nl - 1] == ' ')
            nl--;
        size_t start = 0;
        if (nl >= 2 && from[0] == '"' && from[nl - 1] == '"') {
            start = 1;
            nl--;
        }
        snprintf(name, ns, "%.*s", (int)(nl - start), from + start);
        snprintf(addr, as, "%.*s", (int)(gt - lt - 1), lt + 1);
    } else {
        name[0] = '\0';
        snprintf(addr, as, "%s", from);
    }
}

static cs_rc mailbox(cs_buf_t *b, const char *hname, const char *name, const char *addr)
{
    size_t col = strlen(hname) + 2;
    cs_rc rc = cs_buf_printf(b, "%s: ", hname);
    if (!rc && name && *name) {
        /* a quoted name's quotes take a column on its first and its last line */
        bool atoms = !strpbrk(name, "\"\\()<>@,;:[]."), encoded = false;
        if (ascii_safe(name) && atoms && foldable(name, col, HDR_LINE_MAX))
            rc = folded(b, name, &col);
        else if (ascii_safe(name) && !strpbrk(name, "\"\\") &&
                 foldable(name, col + 1, HDR_LINE_MAX - 1)) {
            col++;
            if (!(rc = cs_buf_puts(b, "\"")) && !(rc = folded(b, name, &col)))
                rc = cs_buf_puts(b, "\"");
            col++;
        } else {
            rc = encoded_words(b, name, &col);
            encoded = true;
        }
        /* the address goes on a line of its own when it does not fit after
         * the name */
        size_t max = encoded ? EW_LINE_MAX : HDR_LINE_PREF;
        if (!rc)
            rc = cs_buf_puts(b, col + 3 + strlen(addr) > max ? "\r\n " : " ");
    }
    return rc ? rc : cs_buf_printf(b, "<%s>\r\n", addr);
}

/* Quoted-printable body with CRLF line ends (RFC 2045 6.7). */
static cs_rc quoted_printable(cs_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int col = 0;
    cs_rc rc = CS_OK;
    for (const char *p = s; *p && !rc; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\r' && p[1] == '\n')
            continue;
        if (c == '\n') {
            rc = cs_buf_puts(b, "\r\n");
            col = 0;
            continue;
        }
        bool at_eol = p[1] == '\0' || p[1] == '\n' || (p[1] == '\r' && p[2] == '\n');
        bool plain = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_eol);
        int w = plain ? 1 : 3;
        if (col + w > 75) {
            rc = cs_buf_puts(b, "=\r\n");
            col = 0;
        }
        if (rc)
            break;
        /* a line that starts with "." or "From " is encoded: SMTP and mbox
         * safe (a line a soft break begins too) */
        if (col == 0 && (c == '.' || (c == 'F' && strncmp(p, "From ", 5) == 0))) {
            plain = false;
            w = 3;
        }
        if (plain) {
            rc = cs_buf_append(b, p, 1);
        } else {
            char e[3] = { '=', hex[c >> 4], hex[c & 15] };
            rc = cs_buf_append(b, e, 3);
        }
        col += w;
    }
    return rc ? rc : cs_buf_puts(b, "\r\n");
}

static cs_rc part(cs_buf_t *b, const char *boundary, const char *type, const char *body)
{
    cs_rc rc = cs_buf_printf(b,
                             "--%s\r\nContent-Type: %s; charset=UTF-8\r\n"
                             "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                             boundary, type);
    return rc ? rc : quoted_printable(b, body);
}

cs_rc cs_mime_build(const cs_mail_t *m, const char *from, cs_buf_t *out, char *message_id,
                    size_t message_id_size, cs_err_t *err)
{
    char fname[256], faddr[256];
    split_from(from, fname, sizeof fname, faddr, sizeof faddr);
    if (!cs_email_valid(faddr))
        return cs_errf(err, CS_ERR_CONFIG, "smtp_from: '%s' is not an email address", from);
    if (!cs_email_valid(m->to))
        return cs_errf(err, CS_ERR_RULE, "'%s' is not an email address", m->to);
    if (!m->subject || !m->text)
        return cs_errf(err, CS_ERR_RULE, "an email needs a subject and a text part");
    char hash[CS_SHA256_HEX_LEN];
    cs_sha256_hex(m->idem_key, strlen(m->idem_key), hash);
    const char *domain = strchr(faddr, '@') + 1;
    snprintf(message_id, message_id_size, "<%.32s@%s>", hash, domain);
    char boundary[48];
    snprintf(boundary, sizeof boundary, "=_cs_%.24s", hash + 32);

    char date[64];
    time_t secs = (time_t)(m->date / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const mo[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    snprintf(date, sizeof date, "%s, %d %s %d %02d:%02d:%02d +0000", wd[tm.tm_wday], tm.tm_mday,
             mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);

    cs_rc rc = CS_OK;
    if ((rc = cs_buf_printf(out, "Date: %s\r\n", date)) ||
        (rc = mailbox(out, "From", fname, faddr)) ||
        (rc = mailbox(out, "To", m->to_name, m->to)) ||
        (rc = header_text(out, "Subject", m->subject)) ||
        (rc = cs_buf_printf(out, "Message-ID: %s\r\nMIME-Version: 1.0\r\n", message_id)))
        goto out;
    /* one line, never folded: the bounds of public_url (511) and of a
     * customer id (the token, at most 289) keep it within HDR_LINE_MAX, and
     * a fold before the "<" leaves some parsers a value starting with a space */
    if (m->unsubscribe_url &&
        (rc = cs_buf_printf(out,
                            "List-Unsubscribe: <%s>\r\n"
                            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
                            m->unsubscribe_url)))
        goto out;
    if (m->html) {
        if ((rc = cs_buf_printf(out,
                                "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
                                "This is a multi-part message in MIME format.\r\n",
                                boundary)) ||
            (rc = part(out, boundary, "text/plain", m->text)) ||
            (rc = part(out, boundary, "text/html", m->html)) ||
            (rc = cs_buf_printf(out, "--%s--\r\n", boundary)))
            goto out;
    } else {
        if ((rc = cs_buf_puts(out, "Content-Type: text/plain; charset=UTF-8\r\n"
                                   "Content-Transfer-Encoding: quoted-printable\r\n\r\n")) ||
            (rc = quoted_printable(out, m->text)))
            goto out;
    }
out:
    if (rc)
        return cs_errf(err, rc, "message too large to build");
    return CS_OK;
}
