/*
 * cs.c -- result codes, error objects, the allocation wrapper, bounded
 * buffers and logging. See cs.h for the contract.
 */
#include "cs.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const rc_names[] = {
    [CS_OK] = "ok",
    [CS_ERR_NOMEM] = "out of memory",
    [CS_ERR_INVALID] = "invalid input",
    [CS_ERR_RULE] = "rule violated",
    [CS_ERR_NOTFOUND] = "not found",
    [CS_ERR_IO] = "i/o error",
    [CS_ERR_STORE] = "store error",
    [CS_ERR_TOOBIG] = "too big",
    [CS_ERR_CONFIG] = "configuration error",
    [CS_ERR_AUTH] = "unauthorized",
    [CS_ERR_BUSY] = "busy",
    [CS_ERR_DUPLICATE] = "duplicate",
    [CS_ERR_INTERNAL] = "internal error",
    [CS_ERR_UNSUPPORTED] = "unsupported",
};

const char *cs_strerror(cs_rc rc)
{
    if ((size_t)rc < CS_ARRAY_LEN(rc_names) && rc_names[rc])
        return rc_names[rc];
    return "unknown error";
}

void cs_err_clear(cs_err_t *err)
{
    if (!err)
        return;
    err->rc = CS_OK;
    err->field[0] = '\0';
    err->msg[0] = '\0';
    err->file = NULL;
    err->line = 0;
}

cs_rc cs__err_set(cs_err_t *err, const char *file, int line, cs_rc rc,
                  const char *field, const char *fmt, ...)
{
    if (!err)
        return rc;
    err->rc = rc;
    err->file = file;
    err->line = line;
    cs_strlcpy(err->field, field ? field : "", sizeof err->field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    /* messages quote input and cut it to bounds ("%.64s"): what a client
     * sent as Latin-1, or a character cut in two, must not stop the answer
     * from being JSON */
    cs_utf8_repair(err->field);
    cs_utf8_repair(err->msg);
    return rc;
}

/* ---- allocation ---- */

static atomic_long fail_countdown;

void cs_alloc_fail_after(long n)
{
    atomic_store(&fail_countdown, n);
}

static bool should_fail(void)
{
    long cur = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (cur <= 0)
        return false;
    cur = atomic_fetch_sub(&fail_countdown, 1);
    return cur == 1;
}

void *cs_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *cs_calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *cs_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

char *cs_strndup(const char *s, size_t n)
{
    char *d = cs_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *cs_strdup(const char *s)
{
    return s ? cs_strndup(s, strlen(s)) : NULL;
}

void cs_free(void *p)
{
    free(p);
}

/* ---- buffers ---- */

void cs_buf_init(cs_buf_t *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void cs_buf_free(cs_buf_t *b)
{
    cs_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void cs_buf_reset(cs_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static cs_rc buf_reserve(cs_buf_t *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return CS_ERR_TOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return CS_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = cs_realloc(b->data, cap);
    if (!p)
        return CS_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return CS_OK;
}

cs_rc cs_buf_append(cs_buf_t *b, const void *p, size_t n)
{
    cs_rc rc = buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return CS_OK;
}

cs_rc cs_buf_puts(cs_buf_t *b, const char *s)
{
    return cs_buf_append(b, s, strlen(s));
}

cs_rc cs_buf_vprintf(cs_buf_t *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return CS_ERR_INVALID;
    cs_rc rc = buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return CS_OK;
}

cs_rc cs_buf_printf(cs_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cs_rc rc = cs_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *cs_buf_steal(cs_buf_t *b, size_t *len_out)
{
    char *p = b->data;
    if (!p)
        p = cs_strdup("");
    if (len_out)
        *len_out = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

/* ---- strings ---- */

size_t cs_strlcpy(char *dst, const char *src, size_t dstsize)
{
    size_t n = strlen(src);
    if (dstsize) {
        size_t c = n < dstsize - 1 ? n : dstsize - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

/* A URL's user:password@ part, in text that may hold one: the offsets of
 * the password (after the ':'), false when there is none. */
static bool url_password(const char *v, size_t *from, size_t *to)
{
    const char *scheme = strstr(v, "://");
    if (!scheme)
        return false;
    const char *auth = scheme + 3, *end = auth + strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < end; p++)
        if (*p == '@')
            at = p; /* the last one: a password may hold an '@' */
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon)
        return false;
    *from = (size_t)(colon + 1 - v);
    *to = (size_t)(at - v);
    return true;
}

size_t cs_url_shown(const char *url, char *buf, size_t size)
{
    size_t from, to;
    if (size == 0)
        return 0;
    if (url_password(url, &from, &to))
        snprintf(buf, size, "%.*s***%s", (int)from, url, url + to);
    else
        snprintf(buf, size, "%s", url);
    return strlen(buf);
}

/* Bytes of the white space character that starts p (< e), 0 when none. */
static size_t utf8_blank_at(const unsigned char *p, const unsigned char *e)
{
    if (*p == ' ' || (*p >= '\t' && *p <= '\r'))
        return 1;
    if (e - p >= 2 && p[0] == 0xC2 && p[1] == 0xA0) /* U+00A0 */
        return 2;
    if (e - p >= 3 && p[0] == 0xE2 && p[1] == 0x80 &&
        (p[2] <= 0x8B || p[2] == 0xAF)) /* U+2000-U+200B, U+202F */
        return 3;
    if (e - p >= 3 && ((p[0] == 0xE2 && p[1] == 0x81 && p[2] == 0x9F) || /* U+205F */
                       (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) || /* U+3000 */
                       (p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)))  /* U+FEFF */
        return 3;
    return 0;
}

bool cs_utf8_blank(const char *s, size_t n)
{
    size_t len;
    cs_utf8_strip(s, n, &len);
    return len == 0;
}

const char *cs_utf8_strip(const char *s, size_t n, size_t *len)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n, *b;
    size_t k;
    while (p < e && (k = utf8_blank_at(p, e)) != 0)
        p += k;
    while (e > p) {
        /* the last character's first byte: at most three back */
        for (b = e - 1; b > p && e - b < 3 && (*b & 0xC0) == 0x80; b--)
            ;
        if (utf8_blank_at(b, e) != (size_t)(e - b))
            break;
        e = b;
    }
    *len = (size_t)(e - p);
    return (const char *)p;
}

size_t cs_utf8_seq(const char *str, size_t avail)
{
    const unsigned char *s = (const unsigned char *)str;
    if (!avail)
        return 0;
    unsigned c = s[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

bool cs_utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (!s[i])
            return false;
        size_t k = cs_utf8_seq(s + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

size_t cs_utf8_clip(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    size_t c = max;
    /* back over continuation bytes to the start of the character cut */
    while (c > 0 && ((unsigned char)s[c] & 0xC0) == 0x80)
        c--;
    return c;
}

void cs_utf8_trim(char *s)
{
    size_t n = strlen(s), i = n;
    while (i > 0 && n - i < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i > 0 && (unsigned char)s[i - 1] >= 0xC0 && !cs_utf8_seq(s + i - 1, n - i + 1))
        s[i - 1] = '\0';
}

/* The other case of a Greek or Cyrillic letter (the modern alphabets,
 * accented Greek vowels too), or 0 for none: all of them two UTF-8 bytes,
 * as are their other cases. */
static uint32_t greek_cyrillic_case(uint32_t cp, bool upper)
{
    if (upper) {
        if (cp == 0x3C2) /* final sigma */
            return 0x3A3;
        if (cp >= 0x3B1 && cp <= 0x3CB)
            return cp - 32;
        if (cp == 0x3AC)
            return 0x386; /* ά */
        if (cp >= 0x3AD && cp <= 0x3AF)
            return cp - 37; /* έ ή ί */
        if (cp == 0x3CC)
            return 0x38C; /* ό */
        if (cp == 0x3CD || cp == 0x3CE)
            return cp - 63; /* ύ ώ */
        if (cp >= 0x430 && cp <= 0x44F)
            return cp - 32;
        if (cp >= 0x450 && cp <= 0x45F)
            return cp - 80; /* ё, і, ї, є, ... */
        return 0;
    }
    if (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2)
        return cp + 32;
    if (cp == 0x386)
        return 0x3AC;
    if (cp >= 0x388 && cp <= 0x38A)
        return cp + 37;
    if (cp == 0x38C)
        return 0x3CC;
    if (cp == 0x38E || cp == 0x38F)
        return cp + 63;
    if (cp >= 0x410 && cp <= 0x42F)
        return cp + 32;
    if (cp >= 0x400 && cp <= 0x40F)
        return cp + 80;
    return 0;
}

/* The other case of a Latin letter, or cp itself. Most letters past
 * Latin-1 come in pairs, the capital first, on an even code point (on an
 * odd one in three runs); only the exceptions are spelled out. Greek and
 * Cyrillic letters change too (region names are written in them), so
 * does Cyrillic's own run of pairs (Ukrainian ґ, Kazakh and others). */
uint32_t cs_latin_case(uint32_t cp, bool upper)
{
    if (cp >= 0x370 && cp < 0x460) {
        uint32_t other = greek_cyrillic_case(cp, upper);
        return other ? other : cp;
    }
    if (cp < 0x80) {
        if (upper && cp >= 'a' && cp <= 'z')
            return cp - 0x20;
        if (!upper && cp >= 'A' && cp <= 'Z')
            return cp + 0x20;
        return cp;
    }
    if (cp >= 0xC0 && cp <= 0xFE && cp != 0xD7 && cp != 0xF7 && cp != 0xDF) {
        if (upper && cp >= 0xE0)
            return cp - 0x20;
        if (!upper && cp < 0xE0)
            return cp + 0x20;
        return cp;
    }
    switch (cp) {
    case 0xFF: /* y with diaeresis: its capital is in Extended-A */
        return upper ? 0x178 : cp;
    case 0x178:
        return upper ? cp : 0xFF;
    case 0x130: /* capital I with dot: its small letter is the plain i */
        return upper ? cp : 'i';
    case 0x131: /* dotless i: its capital is the plain I */
        return upper ? 'I' : cp;
    case 0x17F: /* long s */
        return upper ? 'S' : cp;
    case 0x1E9E: /* capital sharp s: one key with the sharp s people write */
        return 0xDF;
    default:
        break;
    }
    bool even = (cp >= 0x100 && cp <= 0x137) || (cp >= 0x14A && cp <= 0x177) ||
                (cp >= 0x1DE && cp <= 0x1EF) || (cp >= 0x1F8 && cp <= 0x21F) ||
                (cp >= 0x222 && cp <= 0x233) || (cp >= 0x1E00 && cp <= 0x1E95) ||
                (cp >= 0x1EA0 && cp <= 0x1EFF) || (cp >= 0x460 && cp <= 0x481) ||
                (cp >= 0x48A && cp <= 0x4BF) || (cp >= 0x4D0 && cp <= 0x52F);
    bool odd = (cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E) ||
               (cp >= 0x1CD && cp <= 0x1DC) || (cp >= 0x4C1 && cp <= 0x4CE);
    if (!even && !odd)
        return cp;
    bool capital = (cp % 2 == 0) == even;
    if (upper && !capital)
        return cp - 1;
    if (!upper && capital)
        return cp + 1;
    return cp;
}

size_t cs_utf8_case(char *out, size_t size, const char *s, size_t n, bool upper)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *p = (const unsigned char *)s + i;
        size_t len = cs_utf8_seq(s + i, n - i);
        if (len == 0 || len == 4) { /* no letter here to change: copied */
            len = len ? len : 1;
            if (k + len > size)
                break;
            memcpy(out + k, p, len);
            k += len;
            i += len;
            continue;
        }
        uint32_t cp = len == 1   ? p[0]
                      : len == 2 ? (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3Fu)
                                 : (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 |
                                       (p[2] & 0x3Fu);
        cp = cs_latin_case(cp, upper);
        size_t m = cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
        if (k + m > size)
            break;
        if (m == 1) {
            out[k] = (char)cp;
        } else if (m == 2) {
            out[k] = (char)(0xC0 | cp >> 6);
            out[k + 1] = (char)(0x80 | (cp & 0x3F));
        } else {
            out[k] = (char)(0xE0 | cp >> 12);
            out[k + 1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[k + 2] = (char)(0x80 | (cp & 0x3F));
        }
        k += m;
        i += len;
    }
    return k;
}

bool cs_utf8_repair(char *s)
{
    bool clean = true;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = cs_utf8_seq(s + i, n - i);
        if (!k) {
            s[i++] = '?';
            clean = false;
        } else {
            i += k;
        }
    }
    return clean;
}

void cs_hostname(char *buf, size_t size)
{
    if (!size)
        return;
    buf[0] = '\0';
    if (gethostname(buf, size - 1) != 0 || !buf[0])
        cs_strlcpy(buf, "localhost", size);
    buf[size - 1] = '\0';
}

void cs_thread_name(const char *name)
{
    char buf[16];
    cs_strlcpy(buf, name, sizeof buf);
    (void)pthread_setname_np(pthread_self(), buf);
}

uint64_t cs_hash_str(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

bool cs_parse_i64(const char *s, int64_t *out)
{
    /* strtoll would also take blanks before it and a plus sign: " 5"
     * and "+5" are no number a config key, a header or a CSV cell means */
    if (!s || !*s)
        return false;
    const char *d = s + (*s == '-');
    if (*d < '0' || *d > '9')
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

const char *cs_span_trim(const char *s, size_t *n)
{
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    while (len && isspace((unsigned char)*s))
        s++, len--;
    *n = len;
    return s;
}

bool cs_parse_digits(const char *s, int64_t *out)
{
    /* strtoll would also take blanks before it and a sign */
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return cs_parse_i64(s, out);
}

bool cs_parse_serial(const char *s, int64_t *out)
{
    /* the one spelling of the number: "007" is some other system's id */
    if (!s || *s < '1' || *s > '9')
        return false;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return cs_parse_i64(s, out);
}

size_t cs_parse_number(const char *s, double *out)
{
    const char *p = s;
    if (!s)
        return 0;
    if (*p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return 0;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        if (!isdigit((unsigned char)p[1]))
            return 0;
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    }
    if (*p == 'e' || *p == 'E') {
        const char *q = p + 1;
        if (*q == '+' || *q == '-')
            q++;
        if (isdigit((unsigned char)*q)) {
            while (isdigit((unsigned char)*q))
                q++;
            p = q;
        }
    }
    /* strtod reads exactly this much of a plain decimal */
    char *end = NULL;
    double d = strtod(s, &end);
    if (end != p || !isfinite(d))
        return 0;
    *out = d;
    return (size_t)(p - s);
}

/* ---- logging ---- */

static _Atomic int log_level = CS_LOG_INFO;

void cs_log_set_level(cs_log_level_t lvl)
{
    atomic_store(&log_level, (int)lvl);
}

void cs_log(cs_log_level_t lvl, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "fatal", "panic"};
    if ((int)lvl < atomic_load(&log_level))
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ consonance %s: %s\n", when, ts.tv_nsec / 1000000L,
            names[lvl], line);
    if (lvl == CS_LOG_PANIC)
        abort();
}
