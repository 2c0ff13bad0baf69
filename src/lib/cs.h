/*
 * cs.h -- the leaf library every module stands on: one result enum, the error
 * object that carries the human message, the allocation wrapper with its
 * fault-injection hook, a bounded growable buffer and logging.
 *
 * Leaf rule: nothing here includes a header from model/, store/, engine/,
 * http/ or cli/.
 *
 * Thread-safety: every function is thread-safe; the fault-injection counter
 * is a process-wide atomic meant for single-threaded unit tests.
 */
#ifndef CS_H
#define CS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define CS_VERSION "0.1.0"
#define CS_SCHEMA_VERSION 1

/* One project-wide result code. Append new codes at the end; never renumber. */
typedef enum cs_rc {
    CS_OK = 0,
    CS_ERR_NOMEM = 1,     /* allocation failed */
    CS_ERR_INVALID = 2,   /* input breaks the form (bad JSON, wrong type) -> 400 */
    CS_ERR_RULE = 3,      /* well-formed input that breaks a rule -> 422 */
    CS_ERR_NOTFOUND = 4,  /* no such record -> 404 */
    CS_ERR_IO = 5,        /* file or socket failure */
    CS_ERR_STORE = 6,     /* the store failed (SQL error, disk full) */
    CS_ERR_TOOBIG = 7,    /* a size bound was exceeded -> 413 */
    CS_ERR_CONFIG = 8,    /* bad configuration or environment */
    CS_ERR_AUTH = 9,      /* missing or wrong credentials -> 401 */
    CS_ERR_BUSY = 10,     /* try again later (shutting down, queue full) -> 503 */
    CS_ERR_DUPLICATE = 11,/* already present (idempotent replay) */
    CS_ERR_INTERNAL = 12, /* a broken invariant: a bug */
    CS_ERR_UNSUPPORTED = 13 /* media type or feature not supported -> 415 */
} cs_rc;

const char *cs_strerror(cs_rc rc);

/* Caller-owned error detail. `field` is the JSON path of the offending input
 * ("data.items[2].quantity") when there is one, empty otherwise. */
#define CS_ERR_MSG_MAX 512
#define CS_ERR_FIELD_MAX 128
typedef struct cs_err {
    cs_rc rc;
    char field[CS_ERR_FIELD_MAX];
    char msg[CS_ERR_MSG_MAX];
    const char *file;
    int line;
} cs_err_t;

void cs_err_clear(cs_err_t *err);
/* Fill `err` (may be NULL) and return rc. Use through the macros below. */
cs_rc cs__err_set(cs_err_t *err, const char *file, int line, cs_rc rc,
                  const char *field, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
#define cs_errf(err, rc, ...) cs__err_set((err), __FILE__, __LINE__, (rc), NULL, __VA_ARGS__)
#define cs_err_field(err, rc, field, ...) \
    cs__err_set((err), __FILE__, __LINE__, (rc), (field), __VA_ARGS__)

/* ---- allocation: one wrapper, explicit OOM policy, fault injection ---- */
/* cs_malloc & co return NULL on failure (callers report CS_ERR_NOMEM); they
 * never abort. cs_xmalloc aborts with a fatal log instead (start-up only). */
void *cs_malloc(size_t n);
void *cs_calloc(size_t count, size_t size);
void *cs_realloc(void *p, size_t n);
char *cs_strdup(const char *s);
char *cs_strndup(const char *s, size_t n);
void cs_free(void *p);
/* Fail the nth allocation from now on (1 = the next one); 0 disables. Tests only. */
void cs_alloc_fail_after(long n);

/* ---- bounded growable buffer (curl dynbuf / SQLite StrAccum) ---- */
typedef struct cs_buf {
    char *data;   /* owned; always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    size_t max;   /* appending past max fails with CS_ERR_TOOBIG */
} cs_buf_t;

void cs_buf_init(cs_buf_t *b, size_t max);
void cs_buf_free(cs_buf_t *b);
void cs_buf_reset(cs_buf_t *b);
cs_rc cs_buf_append(cs_buf_t *b, const void *p, size_t n);
cs_rc cs_buf_puts(cs_buf_t *b, const char *s);
cs_rc cs_buf_printf(cs_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
cs_rc cs_buf_vprintf(cs_buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Hand the data to the caller (owned, free with cs_free); the buffer is reset. */
char *cs_buf_steal(cs_buf_t *b, size_t *len_out);

/* ---- bounded string copy ---- */
/* Copies at most dstsize-1 bytes and NUL-terminates; returns strlen(src). */
size_t cs_strlcpy(char *dst, const char *src, size_t dstsize);

/* A URL as it may be shown in a message or a log line: url into buf
 * (snprintf's truncation), the password of its user:password@ written as
 * "***" ("smtp://shop:***@mail.example:587"); anything else as it is.
 * Returns strlen(buf). */
size_t cs_url_shown(const char *url, char *buf, size_t size);

/* ---- UTF-8 ---- */
/* Length of the valid UTF-8 sequence at s[0..n) (1 for ASCII, 2-4), 0 when
 * it is not one (a stray continuation byte, overlong forms, surrogates,
 * code points past U+10FFFF, a sequence cut by n). */
size_t cs_utf8_seq(const char *s, size_t n);
/* Whether s (n bytes of UTF-8) is nothing but white space: ASCII's, the
 * no-break and the other Unicode spaces, zero width ones included (true
 * for n = 0). */
bool cs_utf8_blank(const char *s, size_t n);
/* s[0..n) without the white space around it, as cs_utf8_blank counts it:
 * its first byte that is not, and in *len how many bytes run to the end
 * of its last character that is not (0 when all of it is). */
const char *cs_utf8_strip(const char *s, size_t n, size_t *len);
/* True when s[0..n) is valid UTF-8 without NUL. */
bool cs_utf8_valid(const char *s, size_t n);
/* The longest prefix of s[0..n) of at most max bytes that does not end
 * inside a character (s valid UTF-8): where to cut for a bounded copy. */
size_t cs_utf8_clip(const char *s, size_t n, size_t max);
/* Drops a character cut in two at the end of s (snprintf's truncation of
 * UTF-8 text); the rest is left as it is. */
void cs_utf8_trim(char *s);
/* Latin letters of s[0..n) in upper (upper true) or lower case into
 * out[0..size) (no terminator), never cutting a character in two; returns
 * the bytes written. Covers ASCII, Latin-1 Supplement, Latin Extended-A,
 * the paired letters of Latin Extended-B (Romanian s and t with comma) and
 * Latin Extended Additional (Vietnamese), Greek and Cyrillic (a Greek
 * capital keeps its accent: "Ά"); other characters and invalid
 * bytes are copied as they are. No character grows, so size >= n is always
 * enough; one written in a single case can shrink (dotless i to I). */
size_t cs_utf8_case(char *out, size_t size, const char *s, size_t n, bool upper);
/* The code point cp (a letter of those ranges) in upper or lower case, or
 * cp itself. */
uint32_t cs_latin_case(uint32_t cp, bool upper);
/* Makes the NUL-terminated s valid UTF-8 in place: each byte that starts
 * no valid sequence becomes '?'. Returns true when it changed nothing. */
bool cs_utf8_repair(char *s);
/* This machine's host name into buf (NUL-terminated, cut to size);
 * "localhost" when it has none. */
void cs_hostname(char *buf, size_t size);
/* Name the calling thread for top -H, perf and gdb (cut to 15 bytes). */
void cs_thread_name(const char *name);
/* s without the white space around it: its first byte that is not, and
 * in *n how many bytes run to its last one (" FS " -> "FS ", 2). */
const char *cs_span_trim(const char *s, size_t *n);
/* A decimal int64 written as digits with an optional minus ("42", "-7",
 * "007") from the whole of s; false for any other text ("+42", " 42",
 * "42x", "") or overflow. */
bool cs_parse_i64(const char *s, int64_t *out);
/* A number written in decimal digits alone ("42", "007"; not "+42", " 42",
 * "-1" or "42x"), as a query parameter's is; false for any other text or
 * one past INT64_MAX. */
bool cs_parse_digits(const char *s, int64_t *out);
/* A positive number written as we write one ("%lld": digits only, no sign,
 * blanks or leading zeros; "7", not "007" or "+7"), such as the number of
 * one of our messages in an id a provider or a shop echoes; false for any
 * other text or one past INT64_MAX. */
bool cs_parse_serial(const char *s, int64_t *out);
/* A plain decimal number at the start of s, as JSON writes one (-12, 9.90,
 * 1e5; unlike JSON, leading zeros are read: 007 is 7): its length, with
 * *out set; 0 when s does not start with one or it is out of a double's
 * range. No hex, no "inf", no leading space or '+'. */
size_t cs_parse_number(const char *s, double *out);

/* FNV-1a over a string, continuing from h (start with CS_HASH_INIT): for
 * in-memory hash tables and spreading, never for anything secret. */
#define CS_HASH_INIT 1469598103934665603ULL
uint64_t cs_hash_str(uint64_t h, const char *s);

/* ---- logging (Postfix levels) ---- */
typedef enum cs_log_level {
    CS_LOG_DEBUG = 0,
    CS_LOG_INFO,
    CS_LOG_WARN,
    CS_LOG_ERROR,
    CS_LOG_FATAL, /* bad environment or configuration: caller exits cleanly */
    CS_LOG_PANIC  /* broken invariant: aborts */
} cs_log_level_t;

void cs_log_set_level(cs_log_level_t lvl);
void cs_log(cs_log_level_t lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define cs_info(...) cs_log(CS_LOG_INFO, __VA_ARGS__)
#define cs_warn(...) cs_log(CS_LOG_WARN, __VA_ARGS__)
#define cs_error(...) cs_log(CS_LOG_ERROR, __VA_ARGS__)
#define cs_panic(...) cs_log(CS_LOG_PANIC, __VA_ARGS__)

#define CS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif /* CS_H */
