/*
 * engine.h -- the engine: the single writer of a store and the front door for
 * ingest. Callers (HTTP handlers, the importer, benchmarks) submit requests
 * of already-validated events; one writer thread takes everything queued,
 * writes it in one transaction (group commit), and only then completes each
 * request. Acknowledged means committed.
 *
 * Readers (views) borrow a pooled read-only store handle with
 * cs_engine_reader_acquire/release; they never touch the writer's handle.
 *
 * Thread-safety: every function may be called from any thread. A request's
 * `done` callback runs after the commit (or after a failure) on the writer
 * thread, or on the syncer thread when the store syncs after the commit
 * (SQLite's deferred sync: once the group is on disk); it must be short
 * and must not call back into the engine's submit path synchronously
 * waiting for itself.
 *
 * Ownership: cs_engine_submit consumes the events in req->items (the engine
 * frees them and sets item.ev to NULL) unless req->keep_events is set: then
 * they stay the caller's, borrowed until `done` has run, and the caller frees
 * them on its own thread (cheaper than a cross-thread free in the writer).
 * The request struct itself stays the caller's and must live until `done`
 * has run.
 */
#ifndef CS_ENGINE_H
#define CS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/cs.h"
#include "../lib/cs_time.h"
#include "../model/event.h"
#include "../store/store.h"

typedef struct cs_engine cs_engine_t;

typedef struct cs_engine_opts {
    const char *store;          /* target, e.g. "sqlite:consonance.db" (borrowed) */
    const cs_clock_t *clock;    /* NULL = system clock */
    bool durable;               /* fsync every commit; default true */
    int64_t cache_kib;          /* writer page cache; 0 = store default */
    size_t max_group_events;    /* most events in one transaction; 0 = 4000 */
    size_t max_queue_events;    /* submit returns CS_ERR_BUSY beyond this; 0 = 200000 */
    int readers;                /* pooled reader handles; 0 = 4 */
    struct cs_carriers *carriers; /* maps raw carrier scans; NULL = none (unmapped); borrowed */
    const char *node;           /* this node's name in outbox claims (cs_store_opts_t.node) */
} cs_engine_opts_t;

void cs_engine_opts_default(cs_engine_opts_t *o);

typedef struct cs_ingest_item {
    cs_event_t *ev;              /* consumed by submit */
    cs_rc rc;                    /* per item: CS_OK, or the failure */
    cs_ingest_outcome_t outcome; /* NEW or DUPLICATE when rc == CS_OK */
    int64_t seq;                 /* event log sequence number */
    cs_err_t err;                /* detail when rc != CS_OK */
} cs_ingest_item_t;

typedef struct cs_ingest_req cs_ingest_req_t;
typedef void (*cs_ingest_done_fn)(cs_ingest_req_t *req, void *arg);

struct cs_ingest_req {
    cs_ingest_item_t *items;     /* caller-owned array */
    size_t n;
    cs_rc rc;                    /* CS_OK when the request's items were committed */
    cs_err_t err;                /* detail of a request-level failure */
    bool keep_events;            /* the caller frees the events after done */
    cs_ingest_done_fn done;      /* NULL for cs_engine_ingest */
    void *done_arg;
    /* engine-private */
    cs_ingest_req_t *next_;
    void *waiter_;
};

/* Open the store (migrating it), start the writer thread. */
cs_rc cs_engine_open(const cs_engine_opts_t *opts, cs_engine_t **out, cs_err_t *err);

/* Stop accepting, commit everything already submitted, stop the writer,
 * close the store. NULL-safe; NULLs the pointer. */
void cs_engine_close(cs_engine_t **e);

/* Queue req; `done` runs after commit. On failure (CS_ERR_BUSY when closing or
 * the queue is full) nothing was queued, the events are NOT consumed, and
 * `done` is not called. Raw carrier scans are normalized first, on the
 * calling thread: their events' JSON gains members allocated there (a
 * caller whose events live in a request arena keeps it in use for the
 * call; see cs_arena.h). */
cs_rc cs_engine_submit(cs_engine_t *e, cs_ingest_req_t *req);

/* Submit and wait until committed. Returns req->rc (or the submit failure). */
cs_rc cs_engine_ingest(cs_engine_t *e, cs_ingest_req_t *req);

/* Borrow a read-only store handle (opened on first use, pooled). */
cs_rc cs_engine_reader_acquire(cs_engine_t *e, cs_store_t **out, cs_err_t *err);
void cs_engine_reader_release(cs_engine_t *e, cs_store_t *s);

/* Run fn with the writer's store handle on the writer thread, between
 * groups (for API-key management and maintenance). Blocks until done. */
cs_rc cs_engine_with_writer(cs_engine_t *e, cs_rc (*fn)(cs_store_t *s, void *arg), void *arg);

const cs_clock_t *cs_engine_clock(const cs_engine_t *e);
/* The carrier tables intake maps raw scans with (may be NULL). */
struct cs_carriers *cs_engine_carriers(const cs_engine_t *e);

/* Background work on the writer (the journey runtime): `run` is called on
 * the writer thread after every committed group, whenever the time it last
 * asked for has come, and after cs_engine_poke. It runs its own
 * transactions and sets *next to the engine-clock time it wants to run
 * again (0 = only after the next group or poke; <= now = at once, after
 * any waiting group). A failure is logged and retried a second later.
 * Set it before traffic starts; the hook's arg must outlive the engine. */
typedef struct cs_engine_hook {
    cs_rc (*run)(cs_store_t *s, void *arg, cs_ms_t *next, cs_err_t *err);
    void *arg;
} cs_engine_hook_t;
void cs_engine_set_hook(cs_engine_t *e, const cs_engine_hook_t *hook);
/* Ask the writer to run the hook soon (a test clock moved, a message came back). */
void cs_engine_poke(cs_engine_t *e);

typedef struct cs_engine_stats {
    uint64_t events_new;        /* committed, new */
    uint64_t events_duplicate;  /* committed as duplicates */
    uint64_t events_failed;     /* refused by the store */
    uint64_t by_type[CS_EV__COUNT]; /* new events per type */
    uint64_t commits;           /* transactions committed */
    uint64_t commit_ns_total;   /* time spent in commit (incl. fsync unless deferred) */
    uint64_t syncs;             /* deferred fsyncs that made groups durable */
    uint64_t sync_ns_total;     /* time spent in them */
    uint64_t group_events_max;  /* largest group so far */
    uint64_t group_events_joined; /* events that joined a group while the syncer was busy */
    uint64_t queue_events;      /* events waiting now */
    uint64_t store_errors;      /* groups that failed and were retried one by one */
    uint64_t hook_runs;         /* background passes */
    uint64_t hook_errors;       /* background passes that failed */
} cs_engine_stats_t;

void cs_engine_stats(cs_engine_t *e, cs_engine_stats_t *out);

/* True when the store refuses every write for good, until the daemon is
 * restarted: a deferred fsync failed (a transient failure -- a full disk,
 * a database away -- does not count). *why (may be NULL) gets the cause
 * (CS_ERR_STORE and its message). Any thread. */
bool cs_engine_refusing(cs_engine_t *e, cs_err_t *why);

#endif /* CS_ENGINE_H */
