/*
 * server.c -- the libmicrohttpd daemon: connection lifecycle, routing, API
 * key authentication with a short-lived cache, replies and their metrics.
 * Intake is in intake.c, the read routes in views.c.
 *
 * Lifecycle of an intake request: first call -> route, authenticate, check
 * the media type and declared size (refusing early when any fails: sent at
 * once, or held until a small body is read, see hold_reply); then
 * the body arrives in pieces into a bounded buffer; on the final call the
 * events are parsed, the connection is suspended and the valid events are
 * submitted to the engine; the writer's done callback resumes the
 * connection and the handler, called once more, answers.
 */
#include "http_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

const int cs__http_codes[CS_HTTP_CODES] = {200, 201, 303, 304, 400, 401, 403, 404, 405,
                                           413, 414, 415, 422, 429, 431, 500, 503, 0};
const double cs__http_buckets[CS_HTTP_BUCKETS] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                  0.05,   0.1,   0.2,   0.5,   1.0,  5.0};

void cs_http_opts_default(cs_http_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->threads = 2;
    o->max_body_bytes = 16u * 1024 * 1024;
    o->max_batch_events = 10000;
    o->key_cache_ms = 2000;
}

/* ---- replies ---- */

int cs__http_status_of(cs_rc rc)
{
    switch (rc) {
    case CS_OK: return 200;
    case CS_ERR_INVALID: return 400;
    case CS_ERR_AUTH: return 401;
    case CS_ERR_NOTFOUND: return 404;
    case CS_ERR_TOOBIG: return 413;
    case CS_ERR_UNSUPPORTED: return 415;
    case CS_ERR_RULE: return 422;
    case CS_ERR_BUSY: return 503;
    case CS_ERR_STORE: return 503; /* the database failed or is away: nothing was kept, retry */
    default: return 500;
    }
}

static const char *code_word(cs_rc rc)
{
    switch (rc) {
    case CS_ERR_INVALID: return "invalid";
    case CS_ERR_RULE: return "rule";
    case CS_ERR_AUTH: return "unauthorized";
    case CS_ERR_NOTFOUND: return "not_found";
    case CS_ERR_TOOBIG: return "too_large";
    case CS_ERR_UNSUPPORTED: return "unsupported_media_type";
    case CS_ERR_BUSY: return "unavailable";
    case CS_ERR_DUPLICATE: return "duplicate";
    case CS_ERR_STORE: return "store_unavailable";
    default: return "internal";
    }
}

json_t *cs__http_error_json(const cs_err_t *err)
{
    json_t *e = json_pack("{s:s, s:s}", "code", code_word(err->rc), "message",
                          err->msg[0] ? err->msg : cs_strerror(err->rc));
    if (e && err->field[0])
        json_object_set_new(e, "field", json_string(err->field));
    return e;
}

static void count(hreq_t *r, int status)
{
    cs_http_t *h = r->h;
    int ci = CS_HTTP_CODES - 1;
    for (int i = 0; i < CS_HTTP_CODES - 1; i++)
        if (cs__http_codes[i] == status) {
            ci = i;
            break;
        }
    atomic_fetch_add(&h->requests[r->route][ci], 1);
    double secs = (double)(cs_mono_ns() - r->start_ns) / 1e9;
    int b = CS_HTTP_BUCKETS;
    for (int i = 0; i < CS_HTTP_BUCKETS; i++)
        if (secs <= cs__http_buckets[i]) {
            b = i;
            break;
        }
    atomic_fetch_add(&h->dur_bucket[r->route][b], 1);
    atomic_fetch_add(&h->dur_sum_us[r->route], (uint64_t)(secs * 1e6));
}

void cs__http_count(hreq_t *r, int status) { count(r, status); }

/* The methods a route takes, for the Allow header of a 405 (route_of
 * decides the same; HEAD goes wherever GET does). */
static const char *allowed(route_t r)
{
    switch (r) {
    case R_JOURNEY_SWITCH:
    case R_MESSAGES_RETRY:
    case R_CB_SMS:
    case R_CB_EMAIL:
    case R_TRACK_AFTERSHIP:
    case R_TRACK_SCANS: return "POST";
    case R_EVENTS_POST:
    case R_EVENTS_GET:
    case R_CB_WHATSAPP:
    case R_TRACK_LOOKUP:
    case R_UNSUBSCRIBE: return "GET, HEAD, POST";
    default: return "GET, HEAD";
    }
}

/* Whether a reply decided on the handler's first call waits for the
 * request's body. libmicrohttpd closes the connection after a reply queued
 * before the body was read (it cannot tell where the next request
 * begins), so a keep-alive client (a shop's backend, a proxy in front of
 * the tracking page) would pay a new connection for each 404 or 401. A
 * request with no body, or a small one (read and dropped), is answered
 * once it is read and the connection stays open; a larger body, one of
 * unknown size, or a client waiting for "100 Continue" before it sends
 * one is answered at once and the connection closed. */
static bool hold_reply(hreq_t *r)
{
    if (!r->in_first_call)
        return false;
    const char *te = cs__http_header(r, "Transfer-Encoding");
    const char *cl = cs__http_header(r, "Content-Length");
    const char *expect = cs__http_header(r, "Expect");
    int64_t n = 0;
    if (te)
        return false;
    if (cl && (!cs_parse_i64(cl, &n) || n < 0))
        return false;
    return n == 0 || (n <= CS_HTTP_DRAIN_MAX && !expect);
}

/* Queues resp (borrowed), or keeps a refusal for the final call
 * (hold_reply). A reply that is not a refusal goes at once: the routes
 * that answer on the first call (the pages, the reads) have no body, and
 * a hot page should not wait for a second call. */
static enum MHD_Result send_reply(hreq_t *r, int status, struct MHD_Response *resp)
{
    if (status >= 400 && hold_reply(r)) {
        r->early = resp;
        r->early_status = (unsigned)status;
        count(r, status);
        return MHD_YES;
    }
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    count(r, status);
    return ret;
}

static enum MHD_Result queue(hreq_t *r, int status, char *text, size_t len, const char *ctype)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    /* every answer is of now (a promise from now, an order as it stands,
     * the node's health) and many are personal: no cache keeps one, a
     * proxy least of all (one that caches by URL would hand a keyed
     * answer to the next caller without a key) */
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"consonance\"");
    if (status == 503)
        MHD_add_response_header(resp, "Retry-After", "1");
    if (status == 405)
        MHD_add_response_header(resp, "Allow", allowed(r->route));
    return send_reply(r, status, resp);
}

enum MHD_Result cs__http_reply_page(hreq_t *r, int status, char *html, size_t len,
                                    const char *location, int retry_after)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, html, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(html);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
    /* personal pages: nothing loads from elsewhere, nothing is kept by
     * shared caches, and the link's token never leaks as a referrer */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
                            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Cache-Control", "private, no-store");
    if (location)
        MHD_add_response_header(resp, "Location", location);
    if (retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    if (status == 405)
        MHD_add_response_header(resp, "Allow", allowed(r->route));
    return send_reply(r, status, resp);
}

enum MHD_Result cs__http_reply_code(hreq_t *r, int status, const char *code, const char *msg)
{
    return cs__http_reply(r, status,
                          json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg));
}

const char *cs__http_header(hreq_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *cs__http_query(hreq_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *cs__http_echo(const char *v, char *buf, size_t size)
{
    size_t n = 0, i = 0;
    buf[n++] = '"';
    while (v[i] && i < 40 && n + 6 < size) {
        unsigned char c = (unsigned char)v[i];
        size_t k = c >= 0x80 ? cs_utf8_seq(v + i, strnlen(v + i, 4)) : 1;
        if (c >= 0x80 && k && i + k <= 40 && n + k + 6 < size &&
            !(c == 0xC2 && (unsigned char)v[i + 1] < 0xA0)) {
            /* a character as it came: the answer is UTF-8 (not \xC3\xBC
             * for a "ü"); the C1 controls (U+0080-U+009F) are escaped */
            memcpy(buf + n, v + i, k);
            n += k;
            i += k;
            continue;
        }
        if (c >= 0x80 && k && i + k > 40)
            break; /* no character cut in two */
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            n += (size_t)snprintf(buf + n, size - n, "\\x%02X", c);
        } else {
            buf[n++] = (char)c;
        }
        i++;
    }
    if (v[i] && n + 5 < size) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n++] = '"';
    buf[n] = '\0';
    return buf;
}

cs_rc cs__http_lang(const char *v, char out[3], cs_err_t *err)
{
    char e[CS_HTTP_ECHO_MAX];
    if (strcspn(v, "-_") == 2) {
        out[0] = (char)tolower((unsigned char)v[0]);
        out[1] = (char)tolower((unsigned char)v[1]);
        out[2] = '\0';
        if (strcmp(out, "de") == 0 || strcmp(out, "en") == 0)
            return CS_OK;
    }
    out[0] = '\0';
    return cs_err_field(err, CS_ERR_INVALID, "lang",
                        "lang: expected de or en (in any case, or a tag like de-DE), got %s",
                        cs__http_echo(v, e, sizeof e));
}

#define QUERY_NAMES_MAX 16

typedef struct query_check {
    const char *const *names;
    size_t n;
    const char *first[QUERY_NAMES_MAX]; /* each name's first value; NULL = not seen */
    size_t first_len[QUERY_NAMES_MAX];
    cs_err_t *err;
    cs_rc rc;
} query_check_t;

/* Whether two values of one parameter mean the same: byte for byte, or
 * for lang as cs__http_lang reads them ("de", "DE" and "de-AT" are one
 * language; a value it refuses is compared as it came). */
static bool same_value(const char *name, const char *a, size_t a_len, const char *b,
                       size_t b_len)
{
    if (a_len == b_len && memcmp(a, b, a_len) == 0)
        return true;
    if (strcmp(name, "lang") != 0)
        return false;
    char la[3], lb[3];
    cs_err_t scratch;
    cs_err_clear(&scratch);
    return cs__http_lang(a, la, &scratch) == CS_OK && cs__http_lang(b, lb, &scratch) == CS_OK &&
           strcmp(la, lb) == 0;
}

/* One query parameter, with its decoded lengths (MHD_KeyValueIteratorN: a
 * "%00" ends the C string short of them). Stops at the first fault. */
static enum MHD_Result check_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    query_check_t *c = cls;
    char e[CS_HTTP_ECHO_MAX], e2[CS_HTTP_ECHO_MAX];
    (void)kind;
    bool bare = !value; /* "?limit" without '=': the route would read no value */
    if (bare) {
        value = "";
        value_size = 0;
    }
    if (key_size == 0 && value_size == 0)
        return MHD_YES; /* "a=1&&b=2", a trailing '&' */
    if (key_size == 0) { /* "?=1": there is no name to put in field */
        c->rc = cs_err_field(c->err, CS_ERR_INVALID, "query",
                             "query: a parameter with no name before its '=' (\"=%s\"); "
                             "expected NAME=VALUE",
                             cs__http_echo(value, e, sizeof e));
        return MHD_NO;
    }
    if (strlen(key) != key_size || strlen(value) != value_size) {
        c->rc = cs_err_field(c->err, CS_ERR_INVALID, key,
                             "%s: a NUL byte (%%00) in the parameter's %s; expected text",
                             cs__http_echo(key, e, sizeof e),
                             strlen(key) != key_size ? "name" : "value");
        return MHD_NO;
    }
    size_t i = 0;
    while (i < c->n && strcasecmp(key, c->names[i]) != 0)
        i++;
    if (i == c->n) {
        char list[320];
        size_t n = 0;
        list[0] = '\0';
        for (size_t k = 0; k < c->n; k++) {
            int w = snprintf(list + n, sizeof list - n, "%s%s", k ? ", " : "", c->names[k]);
            if (w < 0 || (size_t)w >= sizeof list - n)
                break;
            n += (size_t)w;
        }
        if (c->n)
            c->rc = cs_err_field(c->err, CS_ERR_INVALID, key,
                                 "%s: unknown parameter; expected one of %s",
                                 cs__http_echo(key, e, sizeof e), list);
        else
            c->rc = cs_err_field(c->err, CS_ERR_INVALID, key,
                                 "%s: unknown parameter; this route takes none",
                                 cs__http_echo(key, e, sizeof e));
        return MHD_NO;
    }
    if (bare) {
        c->rc = cs_err_field(c->err, CS_ERR_INVALID, key,
                             "%s: expected %s=VALUE, got the name alone (no '=')", key, key);
        return MHD_NO;
    }
    if (c->first[i] && !same_value(c->names[i], c->first[i], c->first_len[i], value, value_size)) {
        c->rc = cs_err_field(c->err, CS_ERR_INVALID, key,
                             "%s: given twice, as %s and %s; expected it once", key,
                             cs__http_echo(c->first[i], e, sizeof e),
                             cs__http_echo(value, e2, sizeof e2));
        return MHD_NO;
    }
    c->first[i] = value;
    c->first_len[i] = value_size;
    return MHD_YES;
}

cs_rc cs__http_check_query(hreq_t *r, const char *const *names, size_t n, cs_err_t *err)
{
    query_check_t c = { .names = names, .n = n < QUERY_NAMES_MAX ? n : QUERY_NAMES_MAX,
                        .err = err };
    MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, check_param, &c);
    return c.rc;
}

enum MHD_Result cs__http_reply(hreq_t *r, int status, json_t *body)
{
    char *text = body ? cs_json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        text = strdup(oom);
        status = 500;
        if (!text)
            return MHD_NO;
    }
    size_t len = strlen(text);
    /* a trailing newline makes curl output and NDJSON tooling friendlier */
    char *t2 = realloc(text, len + 2);
    if (t2) {
        text = t2;
        text[len++] = '\n';
        text[len] = '\0';
    }
    return queue(r, status, text, len, "application/json");
}

enum MHD_Result cs__http_reply_err(hreq_t *r, const cs_err_t *err)
{
    /* An error answer is never a success: one whose code was lost on the
     * way (a reader task's own error not handed on) is a 500, not a 200
     * that tells a provider its callback was taken */
    cs_err_t lost;
    if (err->rc == CS_OK) {
        cs_errf(&lost, CS_ERR_INTERNAL, "internal error: the cause of a failure was lost%s%.200s",
                err->msg[0] && strcmp(err->msg, "ok") != 0 ? ": " : "",
                err->msg[0] && strcmp(err->msg, "ok") != 0 ? err->msg : "");
        cs_warn("http: %s: %s", r->path ? r->path : "?", lost.msg);
        err = &lost;
    }
    return cs__http_reply(r, cs__http_status_of(err->rc),
                          json_pack("{s:o}", "error", cs__http_error_json(err)));
}

enum MHD_Result cs__http_reply_text(hreq_t *r, int status, char *text, size_t len,
                                    const char *ctype)
{
    return queue(r, status, text, len, ctype);
}

/* ---- reading through a reader handle ---- */

typedef struct with_ctx {
    cs_rc (*fn)(cs_store_t *s, void *arg);
    void *arg;
} with_ctx_t;

cs_rc cs__http_task_err(cs_rc rc, const cs_err_t *task, cs_err_t *err, const char *what)
{
    if (task->rc != CS_OK)
        *err = *task;
    if (err->rc == CS_OK)
        cs_errf(err, rc, "store: cannot %s", what);
    return err->rc;
}

cs_rc cs__http_with_reader(cs_http_t *h, cs_rc (*fn)(cs_store_t *s, void *arg), void *arg,
                           cs_err_t *err)
{
    cs_store_t *s = NULL;
    cs_rc rc = cs_engine_reader_acquire(h->engine, &s, err);
    if (rc == CS_ERR_UNSUPPORTED)
        return cs_engine_with_writer(h->engine, fn, arg); /* in-memory store */
    if (rc)
        return rc;
    rc = fn(s, arg);
    cs_engine_reader_release(h->engine, s);
    return rc;
}

/* ---- API keys ---- */

typedef struct verify_ctx {
    const char *secret;
    cs_apikey_t key;
    cs_err_t err;
} verify_ctx_t;

static cs_rc verify_fn(cs_store_t *s, void *arg)
{
    verify_ctx_t *v = arg;
    return cs_apikey_verify(s, v->secret, &v->key, &v->err);
}

static cs_ms_t mono_ms(void)
{
    return (cs_ms_t)(cs_mono_ns() / 1000000);
}

/* The presented key's scopes and the header that carried it
 * ("X-Api-Key" or "Authorization"), or an error (401). */
static cs_rc authenticate(hreq_t *r, int *scopes, const char **header, cs_err_t *err)
{
    cs_http_t *h = r->h;
    const char *secret = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Api-Key");
    const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    char hash[CS_SHA256_HEX_LEN];
    *scopes = 0;
    /* a blank X-Api-Key (a client's header with its variable unset) is
     * none: the key in Authorization counts */
    if (secret && !secret[strspn(secret, " \t")])
        secret = NULL;
    *header = secret ? "X-Api-Key" : "Authorization";
    if (!secret && auth) {
        if (strncasecmp(auth, "Bearer ", 7) != 0)
            return cs_err_field(err, CS_ERR_AUTH, "Authorization",
                                "expected `Authorization: Bearer <api key>`");
        secret = auth + 7;
        while (*secret == ' ')
            secret++;
    }
    /* whitespace after a header's value is not part of it (RFC 9110 5.5);
     * MHD keeps it */
    size_t n = secret ? strlen(secret) : 0;
    while (n && (secret[n - 1] == ' ' || secret[n - 1] == '\t'))
        n--;
    if (!n)
        return cs_err_field(err, CS_ERR_AUTH, "Authorization",
                            "an API key is required: `Authorization: Bearer <api key>`");
    if (n >= CS_APIKEY_SECRET_MAX)
        return cs_errf(err, CS_ERR_AUTH, "unknown API key");
    char key[CS_APIKEY_SECRET_MAX];
    memcpy(key, secret, n);
    key[n] = '\0';
    secret = key;
    cs_sha256_hex(secret, n, hash);
    unsigned slot = 0;
    for (int i = 0; i < 8; i++)
        slot = slot * 16 + (unsigned)(hash[i] <= '9' ? hash[i] - '0' : hash[i] - 'a' + 10);
    slot %= CS_KEY_CACHE;
    cs_ms_t now = mono_ms();
    pthread_mutex_lock(&h->mu);
    key_slot_t *ks = &h->keys[slot];
    if (ks->expires > now && strcmp(ks->hash, hash) == 0) {
        int sc = ks->scopes;
        pthread_mutex_unlock(&h->mu);
        if (sc < 0)
            return cs_errf(err, CS_ERR_AUTH, "unknown or revoked API key");
        *scopes = sc;
        return CS_OK;
    }
    pthread_mutex_unlock(&h->mu);

    verify_ctx_t v = {.secret = secret};
    cs_err_clear(&v.err);
    cs_rc rc = cs__http_with_reader(h, verify_fn, &v, err);
    if (rc && rc != CS_ERR_AUTH) /* a store away is told as such, with its cause */
        return cs__http_task_err(rc, &v.err, err, "check the API key");
    pthread_mutex_lock(&h->mu);
    memcpy(ks->hash, hash, sizeof ks->hash);
    ks->scopes = rc ? -1 : v.key.scopes;
    ks->expires = now + h->opts.key_cache_ms;
    pthread_mutex_unlock(&h->mu);
    if (rc) {
        *err = v.err;
        err->rc = CS_ERR_AUTH;
        cs_strlcpy(err->msg, "unknown or revoked API key", sizeof err->msg);
        return CS_ERR_AUTH;
    }
    *scopes = v.key.scopes;
    return CS_OK;
}

/* 401 / 403 answered here; true when the request may go on. */
static bool authorize(hreq_t *r, int need, enum MHD_Result *ret)
{
    cs_err_t err;
    int scopes;
    const char *header;
    cs_err_clear(&err);
    cs_rc rc = authenticate(r, &scopes, &header, &err);
    if (rc) {
        if (rc != CS_ERR_AUTH)
            err.rc = rc;
        *ret = cs__http_reply_err(r, &err);
        return false;
    }
    if (!(scopes & need)) {
        /* field: the header whose key falls short, as a 401 names it */
        char want[32], msg[96];
        snprintf(msg, sizeof msg, "this API key lacks the %s scope",
                 cs_scopes_format(need, want, sizeof want));
        *ret = cs__http_reply(r, 403, json_pack("{s:{s:s,s:s,s:s}}", "error", "code",
                                                "forbidden", "field", header, "message", msg));
        return false;
    }
    return true;
}

/* ---- forms ---- */

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static void url_decode(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '+') {
            *o++ = ' ';
        } else if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
}

size_t cs__http_form(char *text, kv_t *f, size_t max)
{
    size_t n = 0;
    for (char *p = text, *amp; p && *p && n < max; p = amp) {
        amp = strchr(p, '&');
        if (amp)
            *amp++ = '\0';
        char *eq = strchr(p, '=');
        if (!eq)
            continue;
        *eq = '\0';
        url_decode(p);
        url_decode(eq + 1);
        f[n].k = p;
        f[n++].v = eq + 1;
    }
    return n;
}

const char *cs__http_form_get(const kv_t *f, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(f[i].k, k) == 0)
            return f[i].v;
    return NULL;
}

/* ---- routing ---- */

/* The path as it came splits into "/v1/customers/" {id} rest: the id
 * keeps its escapes, so an encoded '/' stays inside it (MHD hands the
 * handler a decoded url, in which "c%2Fjourneys" is two segments). */
static bool id_route(hreq_t *r, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(r->path, prefix, n) != 0)
        return false;
    r->id = r->path + n;
    r->id_len = strcspn(r->id, "/");
    *rest = r->id + r->id_len;
    return r->id_len > 0 || **rest;
}

cs_rc cs__http_path_id(const hreq_t *r, char *out, cs_err_t *err)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->id_len; i++) {
        char c = r->id[i];
        if (c == '%') {
            /* a '%' that starts no escape ("50%off", "%zz") is a mistake
             * in the client's encoding, not part of the id: read as
             * itself it would look up another id than the one meant */
            if (!(i + 2 < r->id_len && hexval(r->id[i + 1]) >= 0 &&
                  hexval(r->id[i + 2]) >= 0)) {
                char got[8];
                size_t k = 0;
                for (; k < 3 && i + k < r->id_len && r->id[i + k] > 0x20 && r->id[i + k] < 0x7f;
                     k++)
                    got[k] = r->id[i + k];
                got[k] = '\0';
                return cs_err_field(err, CS_ERR_INVALID, "id",
                                    "id: \"%s\" is no percent-escape; expected %%XX with two "
                                    "hex digits (a %% itself is sent as %%25)",
                                    got);
            }
            c = (char)(hexval(r->id[i + 1]) * 16 + hexval(r->id[i + 2]));
            i += 2;
        }
        if (c == '\0')
            return cs_err_field(err, CS_ERR_INVALID, "id",
                                "id: a NUL byte (%%00) in the id; expected text");
        if (n == CS_ID_MAX) {
            n = 0; /* too long */
            break;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    if (n == 0)
        return cs_err_field(err, CS_ERR_INVALID, "id", "id: expected an id of 1..%d bytes",
                            CS_ID_MAX);
    if (!cs_utf8_valid(out, n))
        return cs_err_field(err, CS_ERR_INVALID, "id",
                            "id: expected UTF-8 text (percent-encode the UTF-8 bytes of each "
                            "character)");
    return CS_OK;
}

bool cs__http_path_nul(const hreq_t *r)
{
    return r->path && strstr(r->path, "%00") != NULL;
}

/* url is MHD's decoded path; the routes with an {id} read r->path, the
 * path as it came. */
static route_t route_of(hreq_t *r, const char *url, const char *method, bool *method_ok)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;
    const char *rest;
    *method_ok = true;
    if (strcmp(url, "/v1/events") == 0) {
        *method_ok = get || post;
        return post ? R_EVENTS_POST : R_EVENTS_GET;
    }
    route_t rt = R_OTHER;
    if (id_route(r, "/v1/journeys/", &rest) &&
        (strcmp(rest, "/enable") == 0 || strcmp(rest, "/disable") == 0)) {
        *method_ok = post;
        return R_JOURNEY_SWITCH;
    }
    if (strcmp(url, "/v1/messages/retry") == 0) {
        *method_ok = post;
        return R_MESSAGES_RETRY;
    }
    if (strcmp(url, "/v1/callbacks/sms") == 0 || strcmp(url, "/v1/callbacks/email") == 0) {
        *method_ok = post;
        return url[14] == 's' ? R_CB_SMS : R_CB_EMAIL;
    }
    if (strcmp(url, "/v1/tracking/aftership") == 0 || strcmp(url, "/v1/tracking/scans") == 0) {
        *method_ok = post;
        return url[13] == 'a' ? R_TRACK_AFTERSHIP : R_TRACK_SCANS;
    }
    if (strcmp(url, "/v1/callbacks/whatsapp") == 0) {
        *method_ok = get || post;
        return R_CB_WHATSAPP;
    }
    if (strcmp(url, "/t") == 0) {
        *method_ok = get || post;
        return R_TRACK_LOOKUP;
    }
    /* a customer's link is answered by its page, also when its token is
     * empty or cut short ("/t/%00" is "/t/" decoded): not in JSON */
    if (strncmp(url, "/t/", 3) == 0) {
        *method_ok = get;
        return R_TRACK_PAGE;
    }
    if (strncmp(url, "/u/", 3) == 0) {
        *method_ok = get || post;
        return R_UNSUBSCRIBE;
    }
    if (strcmp(url, "/v1/journeys") == 0)
        rt = R_JOURNEYS;
    else if (id_route(r, "/v1/customers/", &rest))
        rt = !*rest                              ? R_CUSTOMER
             : strcmp(rest, "/journeys") == 0  ? R_CUSTOMER_RUNS
             : strcmp(rest, "/messages") == 0  ? R_CUSTOMER_MESSAGES
             : strcmp(rest, "/discounts") == 0 ? R_CUSTOMER_DISCOUNTS
                                               : R_OTHER;
    else if (id_route(r, "/v1/orders/", &rest))
        rt = !*rest ? R_ORDER : strcmp(rest, "/status") == 0 ? R_ORDER_STATUS : R_OTHER;
    else if (strcmp(url, "/v1/promise") == 0)
        rt = R_PROMISE;
    else if (strcmp(url, "/healthz") == 0)
        rt = R_HEALTH;
    else if (strcmp(url, "/metrics") == 0)
        rt = R_METRICS;
    if (rt != R_OTHER)
        *method_ok = get;
    return rt;
}

/* Is Content-Type ct the media type want, in UTF-8? JSON is UTF-8 (RFC
 * 8259): a body labelled charset=latin-1 would fail on its first umlaut
 * as bytes that are no UTF-8, with no word of the label, so a charset
 * parameter other than utf-8 does not match (the answer names the header). */
static bool media_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    if (strncasecmp(ct, want, n) != 0 || (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' '))
        return false;
    for (const char *p = strchr(ct + n, ';'); p; p = strchr(p, ';')) {
        p += 1 + strspn(p + 1, " \t");
        if (strncasecmp(p, "charset=", 8) != 0)
            continue;
        const char *v = p + 8;
        bool q = *v == '"';
        v += q;
        size_t vn = strcspn(v, q ? "\"" : "; \t");
        if (!((vn == 5 && strncasecmp(v, "utf-8", 5) == 0) ||
              (vn == 4 && strncasecmp(v, "utf8", 4) == 0)))
            return false;
    }
    return true;
}

static bool is_callback(route_t r)
{
    return r == R_TRACK_LOOKUP || r == R_CB_SMS || r == R_CB_WHATSAPP || r == R_CB_EMAIL || r == R_TRACK_AFTERSHIP ||
           r == R_TRACK_SCANS;
}

typedef struct arg_check {
    const char *bad; /* the first query parameter that is not UTF-8 text */
} arg_check_t;

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    arg_check_t *c = cls;
    (void)kind;
    if (!cs_utf8_valid(key, strlen(key)) || (value && !cs_utf8_valid(value, strlen(value)))) {
        c->bad = key;
        return MHD_NO;
    }
    return MHD_YES;
}

/* Paths and query parameters are text: a byte that is not UTF-8 (a Latin-1
 * "%FC" for "ü") is refused here, naming where, before any handler reads
 * it as an id, a postcode or a language. */
static bool check_text(hreq_t *r, const char *url, cs_err_t *err)
{
    if (!cs_utf8_valid(url, strlen(url))) {
        cs_err_field(err, CS_ERR_INVALID, "path",
                     "path: expected UTF-8 text (percent-encode the UTF-8 bytes of each "
                     "character)");
        return false;
    }
    arg_check_t c = { NULL };
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, check_arg, &c);
    if (c.bad) {
        char name[48];
        size_t n = strlen(c.bad);
        if (!cs_utf8_valid(c.bad, n))
            cs_strlcpy(name, "(a name that is not UTF-8)", sizeof name);
        else
            cs_strlcpy(name, c.bad, cs_utf8_clip(c.bad, n, sizeof name - 1) + 1);
        cs_err_field(err, CS_ERR_INVALID, name,
                     "query parameter \"%s\": expected UTF-8 text (percent-encode the UTF-8 "
                     "bytes of each character)",
                     name);
        return false;
    }
    return true;
}

/* The API's read routes (and the journey switch): each takes a key and
 * the query parameters listed here, no others -- a misspelt filter
 * (?customer=, ?destination_postcode=) would quietly answer for
 * everything. */
static bool api_route(route_t r)
{
    switch (r) {
    case R_CUSTOMER:
    case R_ORDER:
    case R_EVENTS_GET:
    case R_JOURNEYS:
    case R_CUSTOMER_RUNS:
    case R_CUSTOMER_DISCOUNTS:
    case R_CUSTOMER_MESSAGES:
    case R_JOURNEY_SWITCH:
    case R_ORDER_STATUS:
    case R_PROMISE: return true;
    default: return false;
    }
}

static const char *const *route_params(route_t r, size_t *n)
{
    static const char *const events[] = { "after_seq", "before_seq", "limit", "order",
                                          "customer_id", "order_id", "type" };
    static const char *const status[] = { "lang" };
    static const char *const promise[] = { "carrier", "service", "origin_country",
                                           "origin_region", "origin_postal_code",
                                           "destination_country", "destination_region",
                                           "destination_postal_code", "placed_at", "lang" };
#define LIST(a) (*n = sizeof a / sizeof a[0], a)
    switch (r) {
    case R_EVENTS_GET: return LIST(events);
    case R_ORDER_STATUS: return LIST(status);
    case R_PROMISE: return LIST(promise);
    default: *n = 0; return NULL;
    }
#undef LIST
}

/* s as printable ASCII for a message (anything else as '?'), cut to fit
 * out: a method or header name a client sent may hold any byte, and a
 * message that is not UTF-8 makes no JSON. */
static const char *ascii_copy(const char *s, char *out, size_t size)
{
    size_t n = 0;
    for (; s[n] && n + 1 < size; n++)
        out[n] = s[n] > 0x20 && s[n] < 0x7f ? s[n] : '?';
    out[n] = '\0';
    return out;
}

typedef struct header_sum {
    size_t total;
    size_t largest;
    const char *largest_name;
} header_sum_t;

static enum MHD_Result sum_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    header_sum_t *hs = cls;
    size_t n = key_size + value_size + 4; /* ": " and CRLF */
    (void)kind;
    (void)value;
    hs->total += n;
    if (n > hs->largest) {
        hs->largest = n;
        hs->largest_name = key;
    }
    return MHD_YES;
}

/* 414 or 431 in JSON for a request target or headers over their bound
 * (any route, before the key; counted under the route they were aimed at,
 * or as too_large when the path is none); true when the request may go on. */
static bool within_bounds(hreq_t *r, enum MHD_Result *ret)
{
    char msg[256];
    route_t aimed = r->route;
    r->route = aimed == R_OTHER ? R_TOO_LARGE : aimed;
    if (r->target_len > CS_HTTP_TARGET_MAX) {
        snprintf(msg, sizeof msg,
                 "the request target (path and query) is %zu bytes; expected at most %d "
                 "(ids are at most %d bytes; send events in the body)",
                 r->target_len, CS_HTTP_TARGET_MAX, CS_ID_MAX);
        *ret = cs__http_reply(r, 414, json_pack("{s:{s:s,s:s,s:s}}", "error", "code",
                                                "too_large", "field", "path", "message", msg));
        return false;
    }
    header_sum_t hs = { 0, 0, NULL };
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, sum_header, &hs);
    if (hs.total > CS_HTTP_HEADERS_MAX) {
        char name[64];
        ascii_copy(hs.largest_name ? hs.largest_name : "", name, sizeof name);
        snprintf(msg, sizeof msg,
                 "the request headers are %zu bytes; expected at most %d (the largest is %s, "
                 "%zu bytes)",
                 hs.total, CS_HTTP_HEADERS_MAX, name, hs.largest);
        *ret = cs__http_reply(r, 431, json_pack("{s:{s:s,s:s,s:s}}", "error", "code",
                                                "too_large", "field", name, "message", msg));
        return false;
    }
    r->route = aimed;
    return true;
}

/* Whether the request's body comes as it is: no Content-Encoding, or
 * identity. Nothing here decompresses a body, and gzip read as JSON was
 * told as a stray byte 0x1F ("'[' or '{' expected"); RFC 9110 8.4 says
 * 415, naming the header. */
static bool body_as_is(hreq_t *r, cs_err_t *err)
{
    const char *ce = cs__http_header(r, "Content-Encoding");
    size_t n;
    const char *v = ce ? cs_span_trim(ce, &n) : "";
    if (!ce || n == 0 || (n == 8 && strncasecmp(v, "identity", 8) == 0))
        return true;
    cs_err_field(err, CS_ERR_UNSUPPORTED, "Content-Encoding",
                 "Content-Encoding: expected none (the body as it is: bodies are not "
                 "decompressed here), got \"%.*s\"",
                 (int)(n < 32 ? n : 32), v);
    return false;
}

static enum MHD_Result first_call(hreq_t *r, const char *url, const char *method)
{
    bool method_ok;
    enum MHD_Result ret = MHD_YES;
    cs_err_t err;
    cs_err_clear(&err);
    r->route = route_of(r, url, method, &method_ok);
    if (!within_bounds(r, &ret))
        return ret;
    if (r->route == R_OTHER) {
        cs_errf(&err, CS_ERR_NOTFOUND, "no such route: %.200s %.300s", method, url);
        return cs__http_reply_err(r, &err);
    }
    if (!method_ok && (r->route == R_TRACK_PAGE || r->route == R_TRACK_LOOKUP ||
                       r->route == R_UNSUBSCRIBE))
        return cs__page_method(r); /* a customer's page: a page, not the API's JSON */
    if (!method_ok) {
        char msg[160], m[24];
        snprintf(msg, sizeof msg, "%s: method not allowed on this route; expected %s",
                 ascii_copy(method, m, sizeof m), allowed(r->route));
        return cs__http_reply_code(r, 405, "method_not_allowed", msg);
    }
    /* (the customers' pages check their own: a token that is not UTF-8 is
     * a bad token, answered with the page; the routes that take a key
     * check the path and query once the key is good) */
    bool page = r->route == R_TRACK_PAGE || r->route == R_TRACK_LOOKUP ||
                r->route == R_UNSUBSCRIBE;
    bool keyed = api_route(r->route) || r->route == R_EVENTS_POST || r->route == R_CB_EMAIL ||
                 r->route == R_MESSAGES_RETRY;
    if (!page && !keyed && !check_text(r, url, &err))
        return cs__http_reply_err(r, &err);
    if (is_callback(r->route)) {
        /* providers sign their callbacks; the generic email form takes a key */
        if (r->route == R_CB_EMAIL && !authorize(r, CS_SCOPE_WRITE, &ret))
            return ret;
        if (r->route == R_CB_EMAIL &&
            (!check_text(r, url, &err) || cs__http_check_query(r, NULL, 0, &err)))
            return cs__http_reply_err(r, &err);
        if (r->route == R_CB_EMAIL) {
            /* as intake: a form (curl -d without -H) or text is told, not
             * read as JSON by luck */
            const char *ct = cs__http_header(r, "Content-Type");
            if (!ct || !media_is(ct, "application/json")) {
                cs_err_field(&err, CS_ERR_UNSUPPORTED, "Content-Type",
                             "Content-Type: expected application/json (a status object or an "
                             "array of them), got \"%.64s\"",
                             ct ? ct : "(none)");
                return cs__http_reply_err(r, &err);
            }
        }
        /* (the customers' lookup form answers with its page) */
        if (r->route != R_TRACK_LOOKUP && strcmp(method, "POST") == 0 && !body_as_is(r, &err))
            return cs__http_reply_err(r, &err);
        cs_buf_init(&r->body, CS_HTTP_HOOK_BODY_MAX);
        return MHD_YES;
    }
    if (r->route == R_MESSAGES_RETRY) {
        /* an operator's retry of failed messages: admin, a JSON body of
         * filters and no parameters (a ?dry_run=1 must not requeue) */
        if (!authorize(r, CS_SCOPE_ADMIN, &ret))
            return ret;
        if (!check_text(r, url, &err) || cs__http_check_query(r, NULL, 0, &err))
            return cs__http_reply_err(r, &err);
        const char *ct = cs__http_header(r, "Content-Type");
        if (!ct || !media_is(ct, "application/json")) {
            cs_err_field(&err, CS_ERR_UNSUPPORTED, "Content-Type",
                         "Content-Type: expected application/json (an object of filters), "
                         "got \"%.64s\"",
                         ct ? ct : "(none)");
            return cs__http_reply_err(r, &err);
        }
        if (!body_as_is(r, &err))
            return cs__http_reply_err(r, &err);
        cs_buf_init(&r->body, CS_HTTP_RETRY_BODY_MAX);
        return MHD_YES;
    }
    if (r->route != R_EVENTS_POST)
        return MHD_YES; /* answered on the final call */

    if (!authorize(r, CS_SCOPE_WRITE, &ret))
        return ret;
    /* intake takes no parameters: one the sender counts on (?dry_run=1,
     * ?async=1) must not pass unheard while the events are stored */
    if (!check_text(r, url, &err) || cs__http_check_query(r, NULL, 0, &err))
        return cs__http_reply_err(r, &err);
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
    if (!ct || !(media_is(ct, "application/json") || media_is(ct, "application/x-ndjson") ||
                 media_is(ct, "application/ndjson"))) {
        cs_err_field(&err, CS_ERR_UNSUPPORTED, "Content-Type",
                     "Content-Type: expected application/json (one event or an array) or "
                     "application/x-ndjson (one event per line), in UTF-8, got \"%.64s\"",
                     ct ? ct : "(none)");
        return cs__http_reply_err(r, &err);
    }
    if (!body_as_is(r, &err))
        return cs__http_reply_err(r, &err);
    r->ndjson = !media_is(ct, "application/json");
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    int64_t declared;
    if (cl && cs_parse_i64(cl, &declared) && declared > (int64_t)r->h->opts.max_body_bytes) {
        cs_errf(&err, CS_ERR_TOOBIG, "request body of %lld bytes exceeds the limit of %zu bytes",
                (long long)declared, r->h->opts.max_body_bytes);
        return cs__http_reply_err(r, &err);
    }
    cs_buf_init(&r->body, r->h->opts.max_body_bytes);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    hreq_t *r = *con_cls;
    (void)cls;
    (void)version;
    if (!r)
        return MHD_NO; /* on_uri found no memory */
    if (!r->started) {
        r->started = true;
        r->conn = conn;
        r->in_first_call = true;
        enum MHD_Result ret = first_call(r, url, method);
        r->in_first_call = false;
        return ret;
    }
    if (r->early) {
        /* answered before the body: drop the body, then send it */
        if (*upload_data_size) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        enum MHD_Result ret = MHD_queue_response(conn, r->early_status, r->early);
        MHD_destroy_response(r->early);
        r->early = NULL;
        return ret;
    }
    if (r->route == R_EVENTS_POST) {
        if (*upload_data_size) {
            if (!r->too_big &&
                cs_buf_append(&r->body, upload_data, *upload_data_size) != CS_OK)
                r->too_big = true;
            *upload_data_size = 0;
            return MHD_YES;
        }
        return cs__http_intake_finish(r);
    }
    if (is_callback(r->route) || r->route == R_MESSAGES_RETRY) {
        if (*upload_data_size) {
            if (!r->too_big &&
                cs_buf_append(&r->body, upload_data, *upload_data_size) != CS_OK)
                r->too_big = true;
            *upload_data_size = 0;
            return MHD_YES;
        }
        if (r->route == R_MESSAGES_RETRY)
            return cs__http_messages_retry(r);
        if (r->route == R_TRACK_AFTERSHIP || r->route == R_TRACK_SCANS)
            return cs__http_tracking_hook(r);
        if (r->route == R_TRACK_LOOKUP)
            return cs__http_track_lookup(r, method);
        return cs__http_callback(r, method);
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* bodies of GETs (and of one-click POSTs) are ignored */
        return MHD_YES;
    }
    if (api_route(r->route)) {
        /* the key first (no route's parameters are told to a caller
         * without one), then the query against what the route takes */
        enum MHD_Result ret;
        if (!authorize(r, r->route == R_JOURNEY_SWITCH ? CS_SCOPE_ADMIN : CS_SCOPE_READ, &ret))
            return ret;
        size_t n;
        const char *const *names = route_params(r->route, &n);
        cs_err_t err;
        cs_err_clear(&err);
        if (!check_text(r, url, &err) || cs__http_check_query(r, names, n, &err))
            return cs__http_reply_err(r, &err);
    }
    switch (r->route) {
    case R_CUSTOMER:
    case R_ORDER:
    case R_EVENTS_GET: return cs__http_view(r);
    case R_JOURNEYS:
    case R_CUSTOMER_RUNS:
    case R_CUSTOMER_DISCOUNTS:
    case R_CUSTOMER_MESSAGES:
    case R_JOURNEY_SWITCH: return cs__http_journeys(r);
    case R_ORDER_STATUS: return cs__http_order_status(r);
    case R_PROMISE: return cs__http_promise(r);
    case R_UNSUBSCRIBE: return cs__http_unsubscribe(r, url, method);
    case R_TRACK_PAGE: return cs__http_track_page(r, url);
    case R_HEALTH: return cs__http_health(r);
    case R_METRICS: return cs__http_metrics(r);
    default: return MHD_NO;
    }
}

/* Before MHD parses the request line's target: the request's state, with
 * the path as it came (MHD decodes the one it hands on_request). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    hreq_t *r = calloc(1, sizeof *r);
    size_t n = strcspn(uri, "?");
    if (!r)
        return NULL;
    r->path = malloc(n + 1);
    if (!r->path) {
        free(r);
        return NULL;
    }
    memcpy(r->path, uri, n);
    r->path[n] = '\0';
    r->target_len = n + strlen(uri + n);
    r->h = cls;
    r->conn = conn;
    r->start_ns = cs_mono_ns();
    cs_arena_init(&r->arena);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    hreq_t *r = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (!r)
        return;
    if (r->early)
        MHD_destroy_response(r->early);
    cs__http_intake_free(r);
    cs_buf_free(&r->body);
    free(r->path);
    free(r);
    *con_cls = NULL;
}

static void log_mhd(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    cs_log(CS_LOG_DEBUG, "http: %s", msg);
}

cs_rc cs_http_start(cs_engine_t *engine, const cs_http_opts_t *opts, cs_http_t **out,
                    cs_err_t *err)
{
    cs_http_opts_t def;
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr *addr;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    *out = NULL;
    if (!opts) {
        cs_http_opts_default(&def);
        opts = &def;
    }
    cs_http_t *h = calloc(1, sizeof *h);
    if (!h)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    h->engine = engine;
    h->opts = *opts;
    if (h->opts.threads <= 0)
        h->opts.threads = 2;
    if (!h->opts.max_body_bytes)
        h->opts.max_body_bytes = 16u * 1024 * 1024;
    if (!h->opts.max_batch_events)
        h->opts.max_batch_events = 10000;
    if (h->opts.key_cache_ms <= 0)
        h->opts.key_cache_ms = 2000;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (cs__track_init(h)) {
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        free(h);
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    }

    const char *host = opts->host && *opts->host ? opts->host : "127.0.0.1";
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)opts->port);
        addr = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)opts->port);
        addr = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        cs__track_free(h);
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        free(h);
        return cs_err_field(err, CS_ERR_CONFIG, "host",
                            "host: expected an IPv4 or IPv6 address, got \"%.64s\"", host);
    }
    cs_arena_setup(); /* before any request thread parses JSON */
    h->d = MHD_start_daemon(flags, (uint16_t)opts->port, NULL, NULL, on_request, h,
                            MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_THREAD_POOL_SIZE,
                            (unsigned)h->opts.threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                            h, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CS_HTTP_CONN_MEMORY,
                            MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_CONNECTION_LIMIT,
                            4000u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                            MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL, MHD_OPTION_END);
    if (!h->d) {
        cs__track_free(h);
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        free(h);
        return cs_errf(err, CS_ERR_IO, "cannot listen on %s:%d (address in use or not permitted)",
                       host, opts->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : opts->port;
    *out = h;
    return CS_OK;
}

int cs_http_port(const cs_http_t *h)
{
    return h->port;
}

void cs_http_stop(cs_http_t **hp)
{
    if (!hp || !*hp)
        return;
    cs_http_t *h = *hp;
    /* answer what was received; events that come meanwhile are answered
     * 503 (intake.c). Not MHD_quiesce_daemon: with a thread pool on epoll,
     * libmicrohttpd 0.9.75 aborts the process ("Failed to remove listen FD
     * from epoll set") when a worker takes the listening socket out of its
     * epoll set in the same moment, as one did in a stop under ASan. */
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    while (h->inflight > 0)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    /* give resumed connections a moment to write their answers */
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    MHD_stop_daemon(h->d);
    cs__track_free(h);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
    *hp = NULL;
}
