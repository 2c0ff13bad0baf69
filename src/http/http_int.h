/*
 * http_int.h -- private to src/http: the server, the per-request state and
 * the helpers the route files share.
 */
#ifndef CS_HTTP_INT_H
#define CS_HTTP_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "../lib/cs_arena.h"
#include "../lib/cs_json.h"
#include "server.h"

/* Routes, for dispatch and metrics. */
typedef enum route {
    R_EVENTS_POST = 0,
    R_EVENTS_GET,
    R_CUSTOMER,
    R_ORDER,
    R_HEALTH,
    R_METRICS,
    R_JOURNEYS,          /* GET /v1/journeys */
    R_JOURNEY_SWITCH,    /* POST /v1/journeys/{id}/enable|disable */
    R_CUSTOMER_RUNS,     /* GET /v1/customers/{id}/journeys */
    R_CUSTOMER_MESSAGES, /* GET /v1/customers/{id}/messages */
    R_CUSTOMER_DISCOUNTS, /* GET /v1/customers/{id}/discounts */
    R_UNSUBSCRIBE,       /* GET, POST /u/{token} */
    R_CB_SMS,            /* POST /v1/callbacks/sms */
    R_CB_WHATSAPP,       /* GET, POST /v1/callbacks/whatsapp */
    R_CB_EMAIL,          /* POST /v1/callbacks/email */
    R_TRACK_AFTERSHIP,   /* POST /v1/tracking/aftership */
    R_TRACK_SCANS,       /* POST /v1/tracking/scans */
    R_PROMISE,           /* GET /v1/promise */
    R_ORDER_STATUS,      /* GET /v1/orders/{id}/status */
    R_TRACK_PAGE,        /* GET /t/{token}: the tracking page */
    R_TRACK_LOOKUP,      /* GET, POST /t: find an order by number and postcode or email */
    R_MESSAGES_RETRY,    /* POST /v1/messages/retry: requeue failed messages (admin) */
    R_TOO_LARGE,         /* a 414 or 431 for a path that is no route */
    R_OTHER,
    R__COUNT
} route_t;

/* Status codes counted in metrics; anything else counts as the last. */
#define CS_HTTP_CODES 18
extern const int cs__http_codes[CS_HTTP_CODES];

#define CS_HTTP_BUCKETS 12
extern const double cs__http_buckets[CS_HTTP_BUCKETS];

typedef struct key_slot {
    char hash[CS_SHA256_HEX_LEN];
    int scopes;             /* -1 = known bad */
    cs_ms_t expires;        /* monotonic ms */
} key_slot_t;

#define CS_KEY_CACHE 256

/* The body limit of the routes outsiders sign or post without an API key
 * (provider callbacks, tracking webhooks, the lookup form): they are read
 * whole before the signature is checked, so they are held to less than
 * the intake's max_body_bytes. */
#define CS_HTTP_HOOK_BODY_MAX (1024 * 1024)

/* The body limit of POST /v1/messages/retry: a few filters. */
#define CS_HTTP_RETRY_BODY_MAX (16 * 1024)

/* A request refused before its body is read (a 401, 404, 405, 415) with a
 * body of at most this many bytes has it read and dropped, and the
 * connection kept open; a larger body is not read and the connection is
 * closed after the refusal (server.c, hold_reply). */
#define CS_HTTP_DRAIN_MAX (64 * 1024)

/* The request target and the headers are held to these, answered in JSON
 * (414, 431), well inside the memory libmicrohttpd gives a connection
 * (CS_HTTP_CONN_MEMORY): a request that fills that is refused by the
 * library itself, with an HTML page, or near its edge with no answer.
 * The headers' bound is as generous as the library's own was before
 * (32 KiB of connection memory): the customers' pages get a shop's
 * cookies when they are served under its domain. */
#define CS_HTTP_TARGET_MAX (8 * 1024)
#define CS_HTTP_HEADERS_MAX (32 * 1024)
#define CS_HTTP_CONN_MEMORY (64 * 1024)

struct cs_http {
    struct MHD_Daemon *d;
    cs_engine_t *engine;
    cs_http_opts_t opts;
    int port;

    pthread_mutex_t mu;       /* guards inflight and the key cache */
    pthread_cond_t cv;
    size_t inflight;          /* intake requests waiting for the writer */
    bool stopping;            /* no new suspensions: intake answers 503 */
    key_slot_t keys[CS_KEY_CACHE];

    /* metrics */
    _Atomic uint64_t requests[R__COUNT][CS_HTTP_CODES + 1];
    _Atomic uint64_t dur_bucket[R__COUNT][CS_HTTP_BUCKETS + 1];
    _Atomic uint64_t dur_sum_us[R__COUNT];
    _Atomic uint64_t events_rejected;
    _Atomic uint64_t callbacks_unknown;
    _Atomic uint64_t scans_rejected[2]; /* tracking webhooks: [0] aftership, [1] scans */
    _Atomic uint64_t messages_requeued; /* by POST /v1/messages/retry */

    /* the tracking page's guard against guessing (track_guard.c) and its
     * page cache (track_page.c) */
    pthread_mutex_t limit_mu;
    struct limit_slot *limits;
    _Atomic uint64_t lookups_refused;
    pthread_mutex_t page_mu;
    struct page_slot *pages;
    uint64_t page_tick;       /* under page_mu */
    size_t page_bytes;        /* the cached pages' size, under page_mu */
    size_t page_budget;       /* at most this many; set once */
    size_t page_hand;         /* the eviction clock's hand, under page_mu */
    _Atomic uint64_t page_hits, page_misses;
    /* the logo, decoded once from opts.brand_logo and served as /t/logo */
    unsigned char *logo;
    size_t logo_len;
    char logo_type[32];
    char logo_etag[20];       /* "16 hex digits", quotes included */
};

/* One request's state (MHD's con_cls). Freed when MHD reports completion. */
typedef struct hreq {
    cs_http_t *h;
    struct MHD_Connection *conn;
    route_t route;
    uint64_t start_ns;
    bool started;              /* the handler's first call is done */
    char *path;                /* the path as it came, its escapes kept (owned) */
    size_t target_len;         /* the request target's bytes, query included */
    const char *id;            /* the {id} segment of path, escapes kept, not
                                  NUL-terminated; id_len bytes */
    size_t id_len;
    bool in_first_call;        /* queue() holds a reply back (see hold_reply) */
    struct MHD_Response *early; /* a reply decided before the body, sent once the
                                   body is read (owned; NULL = none) */
    unsigned early_status;
    bool ndjson;
    bool too_big;
    cs_buf_t body;
    /* intake */
    bool submitted;
    _Atomic bool committed;
    size_t n_total;            /* events in the request */
    cs_ingest_item_t *items;   /* valid events, submitted */
    size_t n_items;
    size_t *item_index;        /* items[k] is event item_index[k] of the request */
    json_t *rejected;          /* array of {index, error} for invalid events */
    cs_arena_t arena;          /* the parsed events' JSON; released with them */
    cs_ingest_req_t ireq;
} hreq_t;

/* Queue a JSON response (consumes body) and count it. */
enum MHD_Result cs__http_reply(hreq_t *r, int status, json_t *body);
/* {"error":{"code","message"}} with this status: answers that name no field. */
enum MHD_Result cs__http_reply_code(hreq_t *r, int status, const char *code, const char *msg);
/* A request header, or a query parameter (URL-decoded); NULL when absent. */
const char *cs__http_header(hreq_t *r, const char *name);
const char *cs__http_query(hreq_t *r, const char *name);
/* What was received, for an error message: quoted, at most 40 bytes of
 * it (no character cut), '"' and '\' escaped, UTF-8 characters as they
 * are, control characters (C0, DEL, C1) and bytes that are not UTF-8 as
 * \xNN; buf of CS_HTTP_ECHO_MAX bytes. Returns buf. */
#define CS_HTTP_ECHO_MAX (40 * 4 + 8)
const char *cs__http_echo(const char *v, char *buf, size_t size);
/* ?lang= of the views that answer in words: its primary subtag in any
 * case ("EN", "de-DE", "de_AT") as "de" or "en" into out; CS_ERR_INVALID
 * naming lang (and echoing it) for anything else. */
cs_rc cs__http_lang(const char *v, char out[3], cs_err_t *err);
/* The query against the names a route takes (any case: MHD finds
 * "Carrier" for "carrier"): CS_ERR_INVALID naming the first parameter not
 * among them (with the list, or saying the route takes none), one with a
 * NUL byte ("%00"), or one given twice with different values. At most
 * 16 names (more are not looked at). */
cs_rc cs__http_check_query(hreq_t *r, const char *const *names, size_t n, cs_err_t *err);
/* The {id} of /v1/customers/{id}..., /v1/orders/{id}... and
 * /v1/journeys/{id}/..., percent-decoded into out (CS_ID_MAX + 1 bytes).
 * Routing splits the path as it came, so an id may hold a '/' sent as
 * "%2F". CS_ERR_INVALID naming "id" when it is empty, longer than
 * CS_ID_MAX, holds a NUL byte or is not UTF-8. */
cs_rc cs__http_path_id(const hreq_t *r, char *out, cs_err_t *err);
/* Whether the path as it came holds an escaped NUL ("%00"), which ends
 * MHD's decoded path early: a customer's link with one is no link. */
bool cs__http_path_nul(const hreq_t *r);
/* {"error":{"code","field","message"}} for err, with the status it maps to. */
enum MHD_Result cs__http_reply_err(hreq_t *r, const cs_err_t *err);
/* Queue text (owned, freed with free()) as the response. */
enum MHD_Result cs__http_reply_text(hreq_t *r, int status, char *text, size_t len,
                                    const char *ctype);
/* An HTML page for customers (html owned, freed with free()): no external
 * loads (CSP), no referrer, no shared caching; a Location and a
 * Retry-After (seconds, 0 = none) when given. */
enum MHD_Result cs__http_reply_page(hreq_t *r, int status, char *html, size_t len,
                                    const char *location, int retry_after);
int cs__http_status_of(cs_rc rc);
/* Count a response queued without the helpers above (metrics). */
void cs__http_count(hreq_t *r, int status);

/* application/x-www-form-urlencoded: split and decode `text` in place into
 * at most max fields; returns their number. */
typedef struct kv {
    char *k, *v;
} kv_t;
size_t cs__http_form(char *text, kv_t *f, size_t max);
const char *cs__http_form_get(const kv_t *f, size_t n, const char *k);
json_t *cs__http_error_json(const cs_err_t *err);

/* intake.c */
enum MHD_Result cs__http_intake_finish(hreq_t *r);
void cs__http_intake_free(hreq_t *r);

/* views.c */
enum MHD_Result cs__http_view(hreq_t *r);
enum MHD_Result cs__http_health(hreq_t *r);
enum MHD_Result cs__http_metrics(hreq_t *r);

/* track_page.c */
cs_rc cs__track_init(cs_http_t *h);
void cs__track_free(cs_http_t *h);
enum MHD_Result cs__http_track_page(hreq_t *r, const char *url);
enum MHD_Result cs__http_track_lookup(hreq_t *r, const char *method);

/* A key of the tracking page's tables (the guard's slots, the page
 * cache): a kind ("ip", "order", "page") and its value, hashed; never 0
 * (0 marks a free slot). */
static inline uint64_t cs__track_hash_key(const char *kind, const char *v)
{
    return cs_hash_str(cs_hash_str(cs_hash_str(CS_HASH_INIT, kind), ":"), v) | 1;
}

/* track_guard.c: the tracking page's guard against guessing. init and free
 * are cs__track_init's and cs__track_free's (free is NULL-safe and may be
 * called again). The client's key (its address, IPv6 by its /64; behind a
 * proxy on this machine, the address it forwards) is written to out;
 * cs__track_guard_wait gives the seconds the client must wait before it
 * may look up order (NULL or "" = a link, no order number), 0 = go ahead;
 * cs__track_guard_failed counts a failed lookup against the client and
 * the order number. Strings borrowed. */
cs_rc cs__track_guard_init(cs_http_t *h);
void cs__track_guard_free(cs_http_t *h);
void cs__track_guard_client(hreq_t *r, char *out, size_t size);
int cs__track_guard_wait(cs_http_t *h, const char *client, const char *order);
void cs__track_guard_failed(cs_http_t *h, const char *client, const char *order);

/* pages.c */
enum MHD_Result cs__http_unsubscribe(hreq_t *r, const char *url, const char *method);
/* The customers' pages' common parts (the unsubscribe page uses them too):
 * the language of a page -- ?lang=, else the customer's locale (borrowed,
 * NULL = no customer) when it is German or English, else the browser's
 * Accept-Language, else the customer's messages' language, else
 * default_locale -- as "de" or "en"; the document's start to <main>, with
 * the shop's name or logo and colour, appended to b; text escaped for
 * HTML, appended to b (s borrowed, NULL-safe). */
const char *cs__page_lang(hreq_t *r, const char *customer);
/* The supported language ?lang= asks for ("de", "en"), or NULL (absent or
 * unknown: an unknown one falls back like a missing one). */
const char *cs__page_query_lang(hreq_t *r);
void cs__page_head(hreq_t *r, cs_buf_t *b, const char *lang, const char *title);
void cs__page_esc(cs_buf_t *b, const char *s);
/* 405 for a customer's page asked with a method it does not take: a page
 * saying to open the link in a browser, with Allow. */
enum MHD_Result cs__page_method(hreq_t *r);

/* status_api.c */
enum MHD_Result cs__http_order_status(hreq_t *r);
/* What an order's status answer and tracking page are made from: the
 * order's view (shipments, scans, the watch's promise), its customer's
 * contact data and the zone they read days in, and -- only when the
 * answer needs it -- its track (order_track: the parcel the promise
 * follows, and what a promise is computed from). `order` is owned; its
 * `shipments` leave out the parcels the shop cancelled. */
typedef struct cs_order_read {
    json_t *order;
    cs_contact_t who;
    bool has_who;
    const cs_tz_t *tz;       /* the customer's zone, else the shop's, else UTC */
    const cs_tz_t *shop_tz;  /* the shop's (else UTC): promised days are its days */
    cs_order_track_t track;
    bool has_track;          /* read: the order has several parcels, or no
                                current promise of the watch stands */
} cs_order_read_t;
cs_rc cs__order_read(cs_http_t *h, cs_store_t *s, const char *id, int64_t now,
                     cs_order_read_t *out, cs_err_t *err);
/* Where an order is, in one paragraph in `lang` ("de"/"en") that names
 * each parcel when there are several, with the window the promise gives
 * now: the watch's current one while it stands, else computed from the
 * track (none for a cancelled order). */
typedef struct cs_order_status {
    char text[1024];
    int status;                  /* cs_track_status_t of the followed parcel; -1 = none */
    bool shipped, cancelled;     /* shipped: a shipment exists (its label at least) */
    bool handed_over;            /* a parcel is past its label: with the carrier, or further */
    int parcels, delivered;      /* shipments, and how many of them are delivered; a
                                    parcel the shop replaced (it went back, the order was
                                    sent again) is not counted */
    int replaced;                /* parcels gone back and sent again, told first in `text` */
    bool have_window;
    bool computed;               /* the window was computed now from the promise model
                                    (no promise of the watch stood) */
    int64_t from, to;            /* the window's first and last day (midnights in the
                                    shop's zone, rd->shop_tz) */
    char window_words[2 * 96 + 40];
    int reason;                  /* cs_promise_reason_t */
    bool at_risk;
    int quiet_days;
    char reason_text[256];
    char carrier_says[384];      /* a sentence quoting the followed parcel's latest scan
                                    when no carrier table knew its code (it reads as in
                                    transit) and it is the only parcel; "" = none. Not in
                                    `text`: the tracking page lists the scan itself */
} cs_order_status_t;
void cs__order_status(cs_http_t *h, const cs_order_read_t *rd, const char *lang, int64_t now,
                      cs_order_status_t *out);
/* The day of t as the status paragraph and the tracking page tell it, in
 * tz from the reader's today there (now): "heute", "gestern", "morgen"
 * ("today", "yesterday", "tomorrow") -- a customer reads those faster
 * than a date -- else the date (CS_DATE_DAY), after "am "/"on " with
 * CS__DAY_ON. CS__DAY_CAP: a word starts upper case ("Heute, 14:05" on a
 * line of its own). A page that uses it is cached for its day only
 * (track_page.c). Writes buf (CS_FMT_MAX is enough) and returns it. */
#define CS__DAY_ON 1u
#define CS__DAY_CAP 2u
const char *cs__fmt_day(int64_t t, const cs_tz_t *tz, int64_t now, const char *lang,
                        unsigned flags, char *buf, size_t size);
/* Whether s (NULL-safe) holds more than blanks: a carrier's text of blanks
 * says nothing, its code is shown instead (status_api.c). */
bool cs__has_word(const char *s);
/* A shipment's cs_track_status_t from the order view's JSON: a parcel
 * without scans yet is info_received (its label is created). */
int cs__parcel_status(json_t *shipment);
/* Whether ships[i] (borrowed: an order view's "shipments") is a parcel the
 * shop replaced: on its way back to the shop, and another one, not on its
 * way back, was created after it first went wrong (damaged, refused, not
 * delivered) -- the order sent again, not a delivery in parts. Parcels the
 * shop cancelled are neither replaced nor a replacement. The status
 * answer, the tracking page's text and the order view use it alike. */
bool cs__parcel_replaced(json_t *ships, size_t i);

/* promise_api.c */
enum MHD_Result cs__http_promise(hreq_t *r);

/* tracking_hooks.c: the final call of a /v1/tracking/ webhook (body read) */
enum MHD_Result cs__http_tracking_hook(hreq_t *r);

/* callbacks.c: the final call of a /v1/callbacks/ route (body read) */
enum MHD_Result cs__http_callback(hreq_t *r, const char *method);

/* journeys_api.c */
enum MHD_Result cs__http_journeys(hreq_t *r);
/* the final call of POST /v1/messages/retry (body read) */
enum MHD_Result cs__http_messages_retry(hreq_t *r);

/* Run fn with a store handle that can read: a pooled reader, or the writer
 * between groups for stores without reader handles (in-memory). */
/* After a reader or writer task failed with rc: the task's own error
 * (task, kept in its argument) when it set one, else the one the reader
 * set in err, else "store: cannot WHAT"; into err, and its code returned.
 * Tasks keep their errors apart from the reader's: this hands it on. */
cs_rc cs__http_task_err(cs_rc rc, const cs_err_t *task, cs_err_t *err, const char *what);
cs_rc cs__http_with_reader(cs_http_t *h, cs_rc (*fn)(cs_store_t *s, void *arg), void *arg,
                           cs_err_t *err);

#endif /* CS_HTTP_INT_H */
