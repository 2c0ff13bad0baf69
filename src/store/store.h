/*
 * store.h -- the store interface: a const table of functions that every
 * backend (sqlite.c now, pg.c later) implements, plus the dispatching
 * wrappers callers use. Callers never name a backend; they pass a target:
 *
 *     "sqlite:PATH"            embedded SQLite file (WAL)
 *     "sqlite::memory:"        throwaway in-memory store (tests)
 *     "postgresql://..."       (later) PostgreSQL
 *
 * Contract every backend honours (tests/conformance checks it):
 *  - The event log is append-only and idempotent on event_id: ingesting an
 *    event whose event_id is already present reports CS_INGEST_DUPLICATE and
 *    changes nothing.
 *  - Current state is folded from events in arrival order but tolerates any
 *    order: an update older than the state it would overwrite (by
 *    occurred_at) is logged but does not regress the state; an update for an
 *    entity not yet seen creates a stub that the later create fills in; a
 *    scan for an unknown shipment is kept and shows up on that shipment once
 *    it is created.
 *  - ingest is only called between begin and commit. A failed ingest leaves
 *    the transaction unusable: the caller rolls back.
 *  - One handle is used by one thread at a time. The writer handle is the
 *    only one that writes; readers open their own handles (read_only).
 *
 * Ownership: views return owned json_t (json_decref it). Strings passed in
 * are borrowed for the duration of the call.
 */
#ifndef CS_STORE_H
#define CS_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../lib/cs.h"
#include "../lib/cs_crypto.h"
#include "../lib/cs_time.h"
#include "../model/event.h"

typedef struct cs_store cs_store_t;
typedef struct cs_store_ops cs_store_ops_t;

/* Every backend's handle starts with this. */
struct cs_store {
    const cs_store_ops_t *ops;
};

typedef struct cs_store_opts {
    bool read_only;      /* a reader handle: no migrations, no writes */
    bool durable;        /* fsync on every commit (default true); false only for throwaway stores */
    int64_t cache_kib;   /* page cache per handle; 0 = backend default (SQLite: 16 MiB) */
    int busy_timeout_ms; /* how long to wait on a lock; 0 = 5000 */
} cs_store_opts_t;

/* Defaults: durable, writer, backend cache. */
void cs_store_opts_default(cs_store_opts_t *o);

typedef enum cs_ingest_outcome {
    CS_INGEST_NEW = 0,
    CS_INGEST_DUPLICATE = 1
} cs_ingest_outcome_t;

typedef struct cs_store_counts {
    int64_t events;
    int64_t customers;
    int64_t orders;
    int64_t order_items;
    int64_t shipments;
    int64_t scans;
    int64_t pending_scans; /* scans whose shipment has not arrived yet */
    int64_t returns;
    int64_t tickets;
    int64_t feedback;
    int64_t message_events;
    int64_t last_seq;      /* highest event sequence number, 0 when empty */
} cs_store_counts_t;

typedef struct cs_event_query {
    int64_t after_seq;      /* only events with seq > after_seq (0 = from the start) */
    int64_t before_seq;     /* only events with seq < before_seq (0 = no bound) */
    int limit;              /* 1..1000 */
    const char *type;       /* event type name filter; NULL = all */
    const char *customer_id;/* NULL = all */
    const char *order_id;   /* NULL = all */
    bool newest_first;      /* order by seq descending */
} cs_event_query_t;

/* API key scopes, a bit set. */
enum {
    CS_SCOPE_READ = 1,  /* views of personal data */
    CS_SCOPE_WRITE = 2, /* event intake */
    CS_SCOPE_ADMIN = 4  /* key management and operator actions */
};

typedef struct cs_apikey {
    char id[32];                     /* public id, e.g. "key_3f9a1c2b"; shown in lists */
    char name[128];                  /* operator's label */
    char hash_hex[CS_SHA256_HEX_LEN]; /* SHA-256 of the full secret, lower-case hex */
    int scopes;
    cs_ms_t created_at;
    cs_ms_t revoked_at;              /* 0 = active */
} cs_apikey_t;

struct cs_store_ops {
    const char *name;   /* "sqlite" */
    const char *prefix; /* target prefix that selects this backend: "sqlite:" */

    cs_rc (*open)(const char *target, const cs_store_opts_t *opts, cs_store_t **out,
                  cs_err_t *err);
    void (*close)(cs_store_t *s);

    /* Transactions. The writer wraps each group of events in one. */
    cs_rc (*begin)(cs_store_t *s, cs_err_t *err);
    cs_rc (*commit)(cs_store_t *s, cs_err_t *err);
    void (*rollback)(cs_store_t *s);

    /* Append ev to the log and fold it into current state. received_at is the
     * server's arrival time. On success *outcome says NEW or DUPLICATE and
     * *seq is the log sequence number (of the original on duplicates). */
    cs_rc (*ingest)(cs_store_t *s, const cs_event_t *ev, cs_ms_t received_at,
                    cs_ingest_outcome_t *outcome, int64_t *seq, cs_err_t *err);

    /* Views. CS_ERR_NOTFOUND when the entity is unknown. Shapes are
     * documented in docs/api.md and identical across backends. */
    cs_rc (*customer_view)(cs_store_t *s, const char *id, json_t **out, cs_err_t *err);
    cs_rc (*order_view)(cs_store_t *s, const char *id, json_t **out, cs_err_t *err);
    cs_rc (*events_query)(cs_store_t *s, const cs_event_query_t *q, json_t **out,
                          cs_err_t *err);
    cs_rc (*counts)(cs_store_t *s, cs_store_counts_t *out, cs_err_t *err);

    /* API keys (outside the event log; each call is its own transaction and
     * must not be called inside begin/commit). */
    cs_rc (*apikey_put)(cs_store_t *s, const cs_apikey_t *key, cs_err_t *err);
    cs_rc (*apikey_find)(cs_store_t *s, const char *hash_hex, cs_apikey_t *out, cs_err_t *err);
    cs_rc (*apikey_list)(cs_store_t *s, json_t **out, cs_err_t *err);
    cs_rc (*apikey_revoke)(cs_store_t *s, const char *id, cs_ms_t at, cs_err_t *err);
};

/* ---- dispatching wrappers: what callers use ---- */

/* The backends compiled in, NULL-terminated. */
extern const cs_store_ops_t *const cs_store_backends[];
extern const cs_store_ops_t cs_store_sqlite_ops;

/* Choose the backend by the target's prefix and open. opts may be NULL. */
cs_rc cs_store_open(const char *target, const cs_store_opts_t *opts, cs_store_t **out,
                    cs_err_t *err);
/* NULL-safe; NULLs the pointer. */
void cs_store_close(cs_store_t **s);

static inline cs_rc cs_store_begin(cs_store_t *s, cs_err_t *e) { return s->ops->begin(s, e); }
static inline cs_rc cs_store_commit(cs_store_t *s, cs_err_t *e) { return s->ops->commit(s, e); }
static inline void cs_store_rollback(cs_store_t *s) { s->ops->rollback(s); }
static inline cs_rc cs_store_ingest(cs_store_t *s, const cs_event_t *ev, cs_ms_t received_at,
                                    cs_ingest_outcome_t *outcome, int64_t *seq, cs_err_t *e)
{
    return s->ops->ingest(s, ev, received_at, outcome, seq, e);
}
static inline cs_rc cs_store_customer_view(cs_store_t *s, const char *id, json_t **out,
                                           cs_err_t *e)
{
    return s->ops->customer_view(s, id, out, e);
}
static inline cs_rc cs_store_order_view(cs_store_t *s, const char *id, json_t **out,
                                        cs_err_t *e)
{
    return s->ops->order_view(s, id, out, e);
}
static inline cs_rc cs_store_events_query(cs_store_t *s, const cs_event_query_t *q,
                                          json_t **out, cs_err_t *e)
{
    return s->ops->events_query(s, q, out, e);
}
static inline cs_rc cs_store_counts(cs_store_t *s, cs_store_counts_t *out, cs_err_t *e)
{
    return s->ops->counts(s, out, e);
}

/* ---- API keys: creation and verification on top of the backend ---- */

/* Create a key: writes the secret ("cs_live_" + 48 hex digits) into
 * secret_out (at least CS_APIKEY_SECRET_MAX bytes) -- shown once, stored only
 * hashed -- and the record into key_out (may be NULL). */
#define CS_APIKEY_SECRET_MAX 64
cs_rc cs_apikey_create(cs_store_t *s, const char *name, int scopes, cs_ms_t now,
                       char *secret_out, cs_apikey_t *key_out, cs_err_t *err);
/* Look up a presented secret. CS_ERR_AUTH when unknown or revoked. */
cs_rc cs_apikey_verify(cs_store_t *s, const char *secret, cs_apikey_t *out, cs_err_t *err);
/* "read,write" -> bits; -1 on an unknown scope name. */
int cs_scopes_parse(const char *s);
/* bits -> "read,write" into buf. */
const char *cs_scopes_format(int scopes, char *buf, size_t size);

#endif /* CS_STORE_H */
