/*
 * intake.c -- POST /v1/events: one event (a JSON object), a batch (a JSON
 * array) or NDJSON (one event per line). Every event is validated on the
 * HTTP thread; the valid ones go to the engine in one request and the
 * connection sleeps until they are committed. A batch answer lists every
 * event by index: accepted (new), duplicate (already stored) or rejected
 * (with the field and the reason); rejected events never hold back valid
 * ones.
 *
 * Ownership: the parsed events belong to the request state (hreq_t) and
 * are freed when MHD reports the request complete, on the thread that made
 * them.
 */
#include "http_int.h"

#include "../lib/cs_json.h"

#include <stdlib.h>
#include <string.h>

typedef enum { BODY_SINGLE, BODY_ARRAY, BODY_NDJSON } body_kind_t;

static void on_committed(cs_ingest_req_t *req, void *arg)
{
    hreq_t *r = arg;
    cs_http_t *h = r->h;
    (void)req;
    atomic_store(&r->committed, true);
    MHD_resume_connection(r->conn);
    /* r may be gone from here on */
    pthread_mutex_lock(&h->mu);
    if (--h->inflight == 0)
        pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

void cs__http_intake_free(hreq_t *r)
{
    /* the events' JSON was all parsed in the arena: when none of it went
     * to the heap, the release below takes it whole, without a walk
     * through every tree (a fifth of an intake thread's time) */
    bool in_arena = cs_arena_holds_all(&r->arena);
    for (size_t i = 0; i < r->n_items; i++) {
        if (in_arena && r->items[i].ev)
            r->items[i].ev->json = NULL;
        cs_event_free(&r->items[i].ev);
    }
    free(r->items);
    free(r->item_index);
    json_decref(r->rejected);
    r->items = NULL;
    r->item_index = NULL;
    r->rejected = NULL;
    r->n_items = 0;
    cs_arena_release(&r->arena); /* after the last of its JSON */
}

/* The event_id of a refused event's doc (borrowed) to name in its result,
 * so a producer can match it without counting: a string of 1..CS_ID_MAX
 * bytes, unless the refusal is of the event_id itself. NULL otherwise. */
static const char *refused_id(json_t *doc, const cs_err_t *err)
{
    const char *id = json_string_value(json_object_get(doc, "event_id"));
    if (!id || !*id || strlen(id) > CS_ID_MAX || strcmp(err->field, "event_id") == 0)
        return NULL;
    return id;
}

/* Record event `index` as rejected with err; event_id (may be NULL) as
 * refused_id gives it. */
static cs_rc reject(hreq_t *r, size_t index, size_t line, const char *event_id,
                    const cs_err_t *err)
{
    json_t *e = json_pack("{s:I, s:s, s:o}", "index", (json_int_t)index, "status", "rejected",
                          "error", cs__http_error_json(err));
    if (!e)
        return CS_ERR_NOMEM;
    if (line)
        json_object_set_new(e, "line", json_integer((json_int_t)line));
    if (event_id && json_object_set_new(e, "event_id", json_string(event_id))) {
        json_decref(e);
        return CS_ERR_NOMEM;
    }
    json_object_set_new(json_object_get(e, "error"), "rc", json_integer(err->rc));
    if (json_array_append_new(r->rejected, e))
        return CS_ERR_NOMEM;
    atomic_fetch_add(&r->h->events_rejected, 1);
    return CS_OK;
}

static cs_rc grow(hreq_t *r, size_t *cap)
{
    if (r->n_items < *cap)
        return CS_OK;
    size_t ncap = *cap ? *cap * 2 : 16;
    cs_ingest_item_t *it = realloc(r->items, ncap * sizeof *it);
    if (!it)
        return CS_ERR_NOMEM;
    r->items = it;
    size_t *ix = realloc(r->item_index, ncap * sizeof *ix);
    if (!ix)
        return CS_ERR_NOMEM;
    r->item_index = ix;
    *cap = ncap;
    return CS_OK;
}

static cs_rc add_event(hreq_t *r, size_t *cap, size_t index, cs_event_t *ev)
{
    if (grow(r, cap)) {
        cs_event_free(&ev);
        return CS_ERR_NOMEM;
    }
    memset(&r->items[r->n_items], 0, sizeof r->items[0]);
    ev->producer_id = true;
    r->items[r->n_items].ev = ev;
    r->item_index[r->n_items] = index;
    r->n_items++;
    return CS_OK;
}

/* The bytes of JSON whitespace that p (len bytes) starts with. */
static size_t json_ws(const char *p, size_t len)
{
    size_t a = 0;
    while (a < len && (p[a] == ' ' || p[a] == '\t' || p[a] == '\r' || p[a] == '\n'))
        a++;
    return a;
}

/* An event of an array is at most CS_EVENT_BYTES_MAX as stored, the
 * bound one event or an NDJSON line has as sent (cs_event_parse_line):
 * otherwise a batch takes what a single event is refused for, and its
 * copy cannot be imported again line by line. */
static bool within_event_bound(const cs_event_t *ev, cs_err_t *e)
{
    if (ev->body_len <= CS_EVENT_BYTES_MAX)
        return true;
    cs_err_field(e, CS_ERR_TOOBIG, "", "event too large: %zu bytes, at most %d allowed",
                 ev->body_len, CS_EVENT_BYTES_MAX);
    return false;
}

/* Event `index` of an array, as parsed (doc, borrowed), into r->items or
 * r->rejected; wide_at: the paths within it of the numbers too large for
 * their types (cs_json_load_wide). CS_ERR_NOMEM only. */
static cs_rc take(hreq_t *r, size_t *cap, size_t index, json_t *doc, const char **wide_at,
                  const bool *wide_huge, size_t nw, cs_ms_t now, cs_err_t *err)
{
    cs_event_t *ev = NULL;
    cs_err_t e;
    cs_err_clear(&e);
    if (nw) {
        cs_event_wide_error(doc, wide_at, wide_huge, nw, &e);
    } else if (cs_event_from_json(doc, &ev, &e) == CS_OK &&
               cs_event_check_received(ev, now, &e) == CS_OK &&
               cs_event_serialize(ev, &e) == CS_OK && within_event_bound(ev, &e)) {
        return add_event(r, cap, index, ev) ? cs_errf(err, CS_ERR_NOMEM, "out of memory") : CS_OK;
    }
    cs_event_free(&ev);
    if (e.rc == CS_ERR_NOMEM || reject(r, index, 0, refused_id(doc, &e), &e))
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    return CS_OK;
}

/* Whether json_loadb refused a document for what lies inside one value
 * (a duplicate key, a \u0000, a number too large for the types the wide
 * reading could not place), not for its structure. */
static bool one_event_fault(const json_error_t *je)
{
    enum json_error_code c = json_error_code(je);
    return c == json_error_duplicate_key || c == json_error_null_character ||
           c == json_error_numeric_overflow;
}

/* The end of the JSON value that starts at p[i] (len bytes in all), by its
 * brackets and strings alone; 0 when it does not end before len. */
static size_t value_end(const char *p, size_t len, size_t i)
{
    size_t depth = 0;
    for (; i < len; i++) {
        char c = p[i];
        if (c == '"') {
            for (i++; i < len && p[i] != '"'; i++)
                i += p[i] == '\\';
            if (i >= len)
                return 0;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i; /* the enclosing array's end */
            depth--;
        } else if (c == ',' && depth == 0) {
            return i;
        }
    }
    return 0;
}

/* Line (1-based) and column of byte `at` of the body, counted as jansson
 * counts them for a whole body: the characters of the line before it. */
static void line_col(const char *p, size_t at, int *line, int *col)
{
    *line = 1;
    *col = 0;
    for (size_t i = 0; i < at; i++) {
        if (p[i] == '\n') {
            (*line)++;
            *col = 0;
        } else if (((unsigned char)p[i] & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

/* A JSON array that json_loadb refused for something inside one of its
 * events (one_event_fault): each event read by itself, so that event is
 * rejected (its message placed in the body: line, column, byte) and the
 * others are taken. CS_ERR_INVALID with err untouched when the body is no
 * array of values after all: the caller reports the parser's error. */
static cs_rc parse_each(hreq_t *r, size_t *cap, const char *p, size_t len, cs_ms_t now,
                        cs_err_t *err)
{
    size_t i = json_ws(p, len), n = 0;
    if (i == len || p[i] != '[')
        return CS_ERR_INVALID;
    i++;
    /* first the elements' bounds: a body cut short or unbalanced is the
     * parser's to report, and none of it is stored */
    typedef struct span {
        size_t start, end; /* end: the ',' or ']' after the element */
    } span_t;
    span_t *b = NULL;
    size_t cap_b = 0;
    cs_rc rc = CS_OK;
    for (;;) {
        i += json_ws(p + i, len - i);
        size_t e = value_end(p, len, i);
        if (!e || e == i)
            goto no_array;
        /* and each element JSON but for such a fault: a body broken
         * elsewhere is refused whole, as ever */
        json_error_t je;
        json_t *v = json_loadb(p + i, e - i, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!v && !one_event_fault(&je))
            goto no_array;
        json_decref(v);
        if (n == cap_b) {
            size_t ncap = cap_b ? 2 * cap_b : 64;
            void *nb = realloc(b, ncap * sizeof *b);
            if (!nb) {
                free(b);
                return cs_errf(err, CS_ERR_NOMEM, "out of memory");
            }
            b = nb;
            cap_b = ncap;
        }
        b[n++] = (span_t){ i, e };
        i = e + 1;
        if (p[e] == ']')
            break;
    }
    if (i + json_ws(p + i, len - i) != len)
        goto no_array;
    r->n_total = n;
    if (n > r->h->opts.max_batch_events) {
        rc = cs_errf(err, CS_ERR_TOOBIG, "%zu events in one request; at most %zu allowed", n,
                     r->h->opts.max_batch_events);
        goto out;
    }
    for (size_t k = 0; k < n && !rc; k++) {
        const char *v = p + b[k].start;
        size_t vlen = b[k].end - b[k].start;
        while (vlen && strchr(" \t\r\n", v[vlen - 1]))
            vlen--;
        json_error_t je;
        char wide[CS_JSON_WIDE_MAX][CS_JSON_PATH_MAX];
        const char *wide_at[CS_JSON_WIDE_MAX];
        bool huge[CS_JSON_WIDE_MAX];
        size_t nw = 0;
        json_t *doc = NULL;
        if (vlen > CS_EVENT_BYTES_MAX) {
            cs_err_t e;
            cs_err_field(&e, CS_ERR_TOOBIG, "", "event too large: %zu bytes, at most %d allowed",
                         vlen, CS_EVENT_BYTES_MAX);
            rc = reject(r, k, 0, NULL, &e) ? cs_errf(err, CS_ERR_NOMEM, "out of memory") : CS_OK;
            continue;
        }
        doc = json_loadb(v, vlen, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
        if (!doc && json_error_code(&je) == json_error_numeric_overflow &&
            (doc = cs_json_load_wide(v, vlen, &je, wide, huge, &nw)))
            for (size_t w = 0; w < nw; w++)
                wide_at[w] = wide[w];
        if (!doc) {
            cs_err_t e;
            int line, col;
            size_t at = b[k].start + (size_t)(je.position > 0 ? je.position : 0);
            line_col(p, at < len ? at : len, &line, &col);
            cs_err_field(&e, CS_ERR_INVALID, "",
                         "malformed JSON at line %d, column %d (byte %zu): %s", line, col, at,
                         cs_json_error_text(&je));
            rc = reject(r, k, 0, NULL, &e) ? cs_errf(err, CS_ERR_NOMEM, "out of memory") : CS_OK;
            continue;
        }
        rc = take(r, cap, k, doc, wide_at, huge, nw, now, err);
        json_decref(doc);
    }
out:
    free(b);
    return rc;
no_array:
    free(b);
    return CS_ERR_INVALID;
}

/* Whether the body goes on after one whole JSON value with another: events
 * one after another, NDJSON sent as application/json. */
static bool several_values(const char *p, size_t len)
{
    json_error_t je;
    json_t *v = json_loadb(p, len, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v)
        return false;
    json_decref(v);
    size_t end = je.position > 0 ? (size_t)je.position : 0;
    if (end >= len)
        return false;
    end += json_ws(p + end, len - end);
    return end < len && p[end] && strchr("{[\"-0123456789tfn", p[end]); /* another value starts */
}

/* The parser's "end of file expected" for such a body, with what to send. */
static void say_several(cs_err_t *err)
{
    size_t n = strlen(err->msg);
    snprintf(err->msg + n, sizeof err->msg - n,
             " (the body goes on after its first JSON value: send several events as one "
             "JSON array, or one per line as Content-Type: application/x-ndjson)");
}

/* Parse the body into r->items / r->rejected. */
static cs_rc parse_body_in(hreq_t *r, body_kind_t kind, cs_err_t *err)
{
    size_t cap = 0;
    cs_err_t e;
    const size_t max = r->h->opts.max_batch_events;
    const cs_ms_t now = cs_clock_now(cs_engine_clock(r->h->engine));
    const char *p = r->body.data ? r->body.data : "";
    size_t len = r->body.len;
    if (!(r->rejected = json_array()))
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");

    if (kind == BODY_NDJSON) {
        size_t line = 0, index = 0, off = 0;
        while (off < len) {
            const char *nl = memchr(p + off, '\n', len - off);
            size_t end = nl ? (size_t)(nl - p) : len;
            size_t start = off, a = off, b = end;
            line++;
            off = nl ? end + 1 : len;
            while (a < b && (p[a] == ' ' || p[a] == '\t' || p[a] == '\r'))
                a++;
            while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t' || p[b - 1] == '\r'))
                b--;
            if (a == b)
                continue;
            if (index >= max)
                return cs_errf(err, CS_ERR_TOOBIG, "more than %zu events in one request; split the batch",
                               max);
            cs_event_t *ev = NULL;
            cs_err_clear(&e);
            cs_rc prc = cs_event_parse_line(p + a, b - a, line, (unsigned)(a - start), &ev, &e);
            if (!prc && (prc = cs_event_check_received(ev, now, &e)))
                cs_event_free(&ev);
            if (!prc) {
                if (add_event(r, &cap, index, ev))
                    return cs_errf(err, CS_ERR_NOMEM, "out of memory");
            } else if (prc == CS_ERR_NOMEM) {
                return cs_errf(err, CS_ERR_NOMEM, "out of memory");
            } else {
                /* the line once more, on a refusal only, for its event_id:
                 * nothing when the line is no JSON object */
                json_t *doc = json_loadb(p + a, b - a, JSON_REJECT_DUPLICATES, NULL);
                cs_rc jrc = reject(r, index, line, refused_id(doc, &e), &e);
                json_decref(doc);
                if (jrc)
                    return cs_errf(err, CS_ERR_NOMEM, "out of memory");
            }
            index++;
        }
        r->n_total = index;
        if (index == 0)
            return cs_errf(err, CS_ERR_INVALID, "the body holds no events (expected one JSON event per line)");
        return CS_OK;
    }

    if (kind == BODY_SINGLE) {
        cs_event_t *ev = NULL;
        r->n_total = 1;
        size_t a = json_ws(p, len);
        if (a == len)
            return cs_err_field(err, CS_ERR_INVALID, "body",
                                "body: empty; expected one event (a JSON object) or an array "
                                "of events");
        if (p[a] != '{') {
            /* JSON, but no event ("42", "null", a string): say so, not
             * that it is malformed */
            json_error_t je;
            json_t *v = json_loadb(p + a, len - a, JSON_DECODE_ANY, &je);
            if (v) {
                cs_err_field(err, CS_ERR_INVALID, "body",
                             "body: expected one event (a JSON object) or an array of events, "
                             "got %s",
                             cs_json_type_word(v));
                json_decref(v);
                return CS_ERR_INVALID;
            }
        }
        cs_rc rc = cs_event_parse(p, len, &ev, err);
        if (!rc && (rc = cs_event_check_received(ev, now, err)))
            cs_event_free(&ev);
        if (rc == CS_ERR_INVALID && several_values(p, len))
            say_several(err);
        if (rc)
            return rc;
        return add_event(r, &cap, 0, ev) ? cs_errf(err, CS_ERR_NOMEM, "out of memory") : CS_OK;
    }

    json_error_t je;
    char wide[CS_JSON_WIDE_MAX][CS_JSON_PATH_MAX];
    bool huge[CS_JSON_WIDE_MAX];
    size_t n_wide = 0;
    json_t *arr = cs_json_loadb(p, len, &je);
    if (!arr && json_error_code(&je) == json_error_numeric_overflow)
        arr = cs_json_load_wide(p, len, &je, wide, huge, &n_wide); /* each its event's error */
    if (!arr && one_event_fault(&je)) {
        /* a fault inside one event (a duplicate key, a \u0000): that
         * event is refused, not the batch, as an NDJSON line would be */
        cs_rc rc = parse_each(r, &cap, p, len, now, err);
        if (rc != CS_ERR_INVALID || err->rc != CS_OK)
            return rc; /* (CS_ERR_INVALID alone: no array of elements) */
    }
    if (!arr) {
        cs_errf(err, CS_ERR_INVALID, "malformed JSON at line %d, column %d (byte %d): %s",
                je.line, je.column, je.position, cs_json_error_text(&je));
        if (json_error_code(&je) == json_error_end_of_input_expected)
            say_several(err);
        return CS_ERR_INVALID;
    }
    cs_rc rc = CS_OK;
    size_t n = json_array_size(arr);
    r->n_total = n;
    if (n > max) {
        rc = cs_errf(err, CS_ERR_TOOBIG, "%zu events in one request; at most %zu allowed", n, max);
        goto out;
    }
    if (n == 0) {
        rc = cs_errf(err, CS_ERR_INVALID, "the batch is empty (expected an array of events)");
        goto out;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        /* this event's numbers too large for their types, by their paths
         * within it ("[2].data.score" is event 2's "data.score") */
        const char *wide_at[CS_JSON_WIDE_MAX];
        bool wide_huge[CS_JSON_WIDE_MAX];
        size_t nw = 0;
        for (size_t k = 0; k < n_wide; k++) {
            char at[32];
            int w = snprintf(at, sizeof at, "[%zu]", i);
            if (strncmp(wide[k], at, (size_t)w) == 0) {
                wide_at[nw] = wide[k] + w + (wide[k][w] == '.');
                wide_huge[nw++] = huge[k];
            }
        }
        rc = take(r, &cap, i, json_array_get(arr, i), wide_at, wide_huge, nw, now, err);
    }
out:
    json_decref(arr);
    return rc;
}

/* The events' JSON goes to the request's arena: one release when the
 * request is done instead of a free per value (see cs_arena.h). */
static cs_rc parse_body(hreq_t *r, body_kind_t kind, cs_err_t *err)
{
    cs_arena_t *prev = cs_arena_use(&r->arena);
    cs_rc rc = parse_body_in(r, kind, err);
    cs_arena_use(prev);
    return rc;
}

static body_kind_t kind_of(const hreq_t *r)
{
    if (r->ndjson)
        return BODY_NDJSON;
    const char *p = r->body.data ? r->body.data : "";
    size_t a = json_ws(p, r->body.len);
    return a < r->body.len && p[a] == '[' ? BODY_ARRAY : BODY_SINGLE;
}

/* A scan kept for a parcel not known yet says so in its answer. */
#define WAITING_MEMBER ",\"waiting_for\":\"shipment\""

static const char *outcome_word(const cs_ingest_item_t *it)
{
    if (it->rc)
        return it->rc == CS_ERR_RULE ? "rejected" : "failed"; /* (the store's rules) */
    return it->outcome == CS_INGEST_DUPLICATE ? "duplicate" : "accepted";
}

/* A number's decimal digits at the end of buf[24]; returns the start. */
static char *decimal(char buf[24], unsigned long long v)
{
    char *p = buf + 24;
    do
        *--p = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    return p;
}

static cs_rc put_num(cs_buf_t *b, const char *before, unsigned long long v)
{
    char num[24], *p = decimal(num, v);
    cs_rc rc = cs_buf_puts(b, before);
    return rc ? rc : cs_buf_append(b, p, (size_t)(num + 24 - p));
}

/* The common answer to a batch, written as text: every event accepted or
 * a duplicate. The same document answer() builds with jansson (members in
 * the same order), at a fraction of the cost; NULL when any item failed
 * or was rejected, or on failure. */
static char *answer_all_ok(hreq_t *r, size_t *len)
{
    size_t n_acc = 0, n_dup = 0;
    if (json_array_size(r->rejected) || r->n_items != r->n_total)
        return NULL;
    for (size_t k = 0; k < r->n_items; k++) {
        const cs_ingest_item_t *it = &r->items[k];
        if (it->rc || it->seq < 0 || r->item_index[k] != k || it->ev->warning)
            return NULL;
        if (it->outcome == CS_INGEST_DUPLICATE)
            n_dup++;
        else
            n_acc++;
    }
    cs_buf_t b;
    cs_buf_init(&b, (size_t)1 << 30);
    cs_rc rc = put_num(&b, "{\"accepted\":", n_acc);
    if (!rc)
        rc = put_num(&b, ",\"duplicates\":", n_dup);
    if (!rc)
        rc = cs_buf_puts(&b, ",\"rejected\":0,\"failed\":0,\"results\":[");
    for (size_t k = 0; !rc && k < r->n_items; k++) {
        const cs_ingest_item_t *it = &r->items[k];
        char id[2 * 6 * CS_ID_MAX + 8];
        size_t id_len = cs_json_quote(it->ev->event_id, strlen(it->ev->event_id), id, sizeof id);
        if (!id_len) {
            rc = CS_ERR_TOOBIG;
            break;
        }
        if (!(rc = put_num(&b, k ? ",{\"index\":" : "{\"index\":", k)) &&
            !(rc = cs_buf_puts(&b, it->outcome == CS_INGEST_DUPLICATE
                                        ? ",\"status\":\"duplicate\",\"event_id\":"
                                        : ",\"status\":\"accepted\",\"event_id\":")) &&
            !(rc = cs_buf_append(&b, id, id_len)))
            rc = put_num(&b, ",\"seq\":", (unsigned long long)it->seq);
        if (!rc && it->outcome == CS_INGEST_PENDING)
            rc = cs_buf_puts(&b, WAITING_MEMBER);
        if (!rc)
            rc = cs_buf_puts(&b, "}");
    }
    if (!rc)
        rc = cs_buf_puts(&b, "]}\n"); /* cs__http_reply's trailing newline */
    if (rc) {
        cs_buf_free(&b);
        return NULL;
    }
    return cs_buf_steal(&b, len);
}

/* A single event's answer, written directly: the text cs__http_reply
 * makes of the same object, without building and dumping a tree per
 * request. NULL when out of memory. */
static char *answer_one(const cs_ingest_item_t *it)
{
    char id[2 * 6 * CS_ID_MAX + 8];
    size_t id_len = cs_json_quote(it->ev->event_id, strlen(it->ev->event_id), id, sizeof id);
    if (!id_len)
        return NULL;
    size_t size = id_len + 96 + sizeof WAITING_MEMBER;
    char *out = malloc(size);
    if (out)
        snprintf(out, size, "{\"status\":\"%s\",\"event_id\":%.*s,\"seq\":%lld%s}\n",
                 outcome_word(it), (int)id_len, id, (long long)it->seq,
                 it->outcome == CS_INGEST_PENDING ? WAITING_MEMBER : "");
    return out;
}

/* What intake left out of an accepted event (cs_event_check_received), as
 * {"field": ..., "message": ...}; NULL when nothing was, or for a
 * duplicate (which changed nothing). */
static json_t *warning_json(const cs_ingest_item_t *it)
{
    if (!it->ev->warning || it->rc || it->outcome == CS_INGEST_DUPLICATE)
        return NULL;
    return json_pack("{s:s, s:s}", "field", it->ev->warning_field, "message", it->ev->warning);
}

/* The answer once the engine is done (or nothing was valid). */
static enum MHD_Result answer(hreq_t *r)
{
    body_kind_t kind = kind_of(r);
    if (r->submitted && r->ireq.rc != CS_OK) {
        cs_err_t e = r->ireq.err;
        if (e.rc == CS_OK)
            e.rc = r->ireq.rc;
        return cs__http_reply_err(r, &e);
    }
    if (kind == BODY_SINGLE) {
        cs_ingest_item_t *it = &r->items[0];
        if (it->rc)
            return cs__http_reply_err(r, &it->err);
        char *text = it->ev->warning ? NULL : answer_one(it);
        if (text)
            return cs__http_reply_text(r, it->outcome == CS_INGEST_DUPLICATE ? 200 : 201, text,
                                       strlen(text), "application/json");
        return cs__http_reply(r, it->outcome == CS_INGEST_DUPLICATE ? 200 : 201,
                              json_pack("{s:s, s:s, s:I, s:s*, s:o*}", "status", outcome_word(it),
                                        "event_id", it->ev->event_id, "seq", (json_int_t)it->seq,
                                        "waiting_for",
                                        it->outcome == CS_INGEST_PENDING ? "shipment" : NULL,
                                        "warning", warning_json(it)));
    }
    size_t len;
    char *text = answer_all_ok(r, &len);
    if (text)
        return cs__http_reply_text(r, 200, text, len, "application/json");
    /* a batch: every index in order, merging accepted and rejected */
    size_t n_acc = 0, n_dup = 0, n_fail = 0, n_fail_store = 0, n_rej = json_array_size(r->rejected);
    size_t n_refused = 0; /* refused by the store's rules, after validation */
    json_t *results = json_array();
    size_t k = 0, j = 0;
    bool all_form = true;
    for (size_t index = 0; index < r->n_total && results; index++) {
        if (k < r->n_items && r->item_index[k] == index) {
            cs_ingest_item_t *it = &r->items[k++];
            json_t *o = json_pack("{s:I, s:s, s:s}", "index", (json_int_t)index, "status",
                                  outcome_word(it), "event_id", it->ev->event_id);
            if (it->rc == CS_ERR_RULE) {
                /* refused by the store's rules (a delivered parcel
                 * cancelled): rejected as a rule the model checks is */
                n_refused++;
                all_form = false;
                atomic_fetch_add(&r->h->events_rejected, 1);
                json_object_set_new(o, "error", cs__http_error_json(&it->err));
            } else if (it->rc) {
                n_fail++;
                if (it->rc == CS_ERR_STORE)
                    n_fail_store++;
                json_object_set_new(o, "error", cs__http_error_json(&it->err));
            } else {
                json_object_set_new(o, "seq", json_integer(it->seq));
                if (it->outcome == CS_INGEST_PENDING)
                    json_object_set_new(o, "waiting_for", json_string("shipment"));
                json_t *w = warning_json(it);
                if (w)
                    json_object_set_new(o, "warning", w);
                if (it->outcome == CS_INGEST_DUPLICATE)
                    n_dup++;
                else
                    n_acc++;
            }
            json_array_append_new(results, o);
        } else if (j < n_rej) {
            json_t *o = json_array_get(r->rejected, j++);
            json_t *e = json_object_get(o, "error");
            if (json_integer_value(json_object_get(e, "rc")) != CS_ERR_INVALID)
                all_form = false;
            json_object_del(e, "rc");
            json_array_append(results, o);
        }
    }
    int status = 200;
    if (n_acc + n_dup == 0 && n_rej + n_refused > 0 && n_fail == 0)
        status = all_form ? 400 : 422;
    else if (n_acc + n_dup == 0 && n_fail > 0)
        status = n_fail_store == n_fail ? 503 : 500; /* the store is away: retry it all */
    return cs__http_reply(r, status,
                          json_pack("{s:I, s:I, s:I, s:I, s:o}", "accepted", (json_int_t)n_acc,
                                    "duplicates", (json_int_t)n_dup, "rejected",
                                    (json_int_t)(n_rej + n_refused), "failed", (json_int_t)n_fail,
                                    "results",
                                    results ? results : json_array()));
}

enum MHD_Result cs__http_intake_finish(hreq_t *r)
{
    cs_err_t err;
    cs_err_clear(&err);
    if (r->submitted)
        return atomic_load(&r->committed) ? answer(r) : MHD_YES;
    if (r->too_big) {
        cs_errf(&err, CS_ERR_TOOBIG, "request body exceeds the limit of %zu bytes",
                r->h->opts.max_body_bytes);
        return cs__http_reply_err(r, &err);
    }
    body_kind_t kind = kind_of(r);
    cs_rc rc = parse_body(r, kind, &err);
    if (rc)
        return cs__http_reply_err(r, &err);
    if (r->n_items == 0)
        return answer(r); /* every event was rejected */

    cs_http_t *h = r->h;
    memset(&r->ireq, 0, sizeof r->ireq);
    r->ireq.items = r->items;
    r->ireq.n = r->n_items;
    r->ireq.keep_events = true;
    r->ireq.done = on_committed;
    r->ireq.done_arg = r;
    r->submitted = true;
    pthread_mutex_lock(&h->mu);
    bool stopping = h->stopping;
    if (!stopping)
        h->inflight++;
    pthread_mutex_unlock(&h->mu);
    if (stopping) {
        r->submitted = false;
        cs_errf(&err, CS_ERR_BUSY, "the server is shutting down; retry on another node or later");
        return cs__http_reply_err(r, &err);
    }
    /* suspend first: the writer may finish before this handler returns */
    MHD_suspend_connection(r->conn);
    /* with the request's arena in use: submitting normalizes raw carrier
     * scans, adding members (status, reason, unmapped) to their JSON, and
     * those must come from the arena like the rest of it, or the release
     * in cs__http_intake_free, trusting cs_arena_holds_all, would drop
     * them unfreed. The arena outlives the events (it goes with r). */
    cs_arena_t *prev = cs_arena_use(&r->arena);
    rc = cs_engine_submit(h->engine, &r->ireq);
    cs_arena_use(prev);
    if (rc) {
        /* nothing was queued: answer the failure once resumed */
        if (rc == CS_ERR_BUSY)
            cs_errf(&r->ireq.err, CS_ERR_BUSY, "the server is busy or shutting down; retry later");
        else if (!r->ireq.err.rc)
            r->ireq.err.rc = rc;
        r->ireq.rc = rc;
        on_committed(&r->ireq, r);
    }
    return MHD_YES;
}
