/*
 * tracker.c -- see tracker.h.
 */
#include "tracker.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../lib/cs_json.h"

#define RECENT 65536

struct cs_tracker {
    cs_promise_model_t *model; /* guarded by lock */
    pthread_rwlock_t lock;
    bool synced;               /* the writer's: the store's deliveries are learned */
    size_t learned;
    /* Whoever follows the log -- the learning thread while it runs, else
     * the hook on the writer -- owns these two: */
    int64_t cursor;            /* log position followed */
    _Atomic int64_t seq;       /* the same, for cs_tracker_seq (any thread) */
    /* orders learned lately, by hash (direct-mapped), so a parcel scanned
     * as delivered twice teaches once */
    uint64_t recent[RECENT];

    /* the learning thread: woken by the hook when the log moved */
    cs_engine_t *engine;
    pthread_t thread;
    bool started, stop, moved; /* under mu */
    bool idle;                 /* under mu: waiting for the log to move */
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

cs_rc cs_tracker_new(const cs_promise_opts_t *opts, cs_tracker_t **out, cs_err_t *err)
{
    cs_tracker_t *t = cs_calloc(1, sizeof *t);
    *out = NULL;
    if (!t)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    cs_rc rc = cs_promise_new(opts, &t->model, err);
    if (rc) {
        cs_free(t);
        return rc;
    }
    pthread_rwlock_init(&t->lock, NULL);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    *out = t;
    return CS_OK;
}

void cs_tracker_stop(cs_tracker_t *t)
{
    if (!t || !t->started)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_mutex_lock(&t->mu);
    t->started = false; /* read by the hook on the writer thread, under mu */
    pthread_mutex_unlock(&t->mu);
}

void cs_tracker_free(cs_tracker_t *t)
{
    if (!t)
        return;
    cs_tracker_stop(t);
    cs_promise_free(t->model);
    pthread_rwlock_destroy(&t->lock);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    cs_free(t);
}

int64_t cs_tracker_seq(cs_tracker_t *t)
{
    return atomic_load(&t->seq);
}

size_t cs_tracker_learned(cs_tracker_t *t)
{
    pthread_rwlock_rdlock(&t->lock);
    size_t n = t->learned;
    pthread_rwlock_unlock(&t->lock);
    return n;
}

/* A lane's service as the model keys it: lower case, accented Latin,
 * Greek and Cyrillic letters too, and without the white space around it,
 * so a shipment's "DHL Paket" and a checkout's "dhl paket " (or
 * "Économie" and "économie") are one lane (the carrier is lower case
 * already). Every lane that reaches the model -- learned here, asked by
 * the API, the watch and the status answer, told in flight -- passes
 * through this, so the store keeps the service as the shop wrote it. */
static const char *service_key(const char *service, char *buf, size_t size)
{
    const char *s = service ? service : "";
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strnlen(s, 2 * size);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    buf[cs_utf8_case(buf, size - 1, s, n, false)] = '\0';
    return buf;
}

/* id: the order's, when known (it is then no longer in flight). */
static cs_rc learn(cs_tracker_t *t, const cs_delivery_row_t *d, const char *id, cs_err_t *err)
{
    char from[32], to[32], svc[CS_ID_MAX + 1];
    cs_region_key_json(d->origin, from, sizeof from);
    cs_region_key_json(d->destination, to, sizeof to);
    cs_delivery_t dl = { { d->carrier, service_key(d->service, svc, sizeof svc), from, to },
                         d->placed_at, d->shipped_at, d->delivered_at, d->gap_from, d->gap_to, id,
                         d->dest_at };
    if (d->delivered_at < d->placed_at)
        return CS_OK; /* inconsistent history teaches nothing */
    pthread_rwlock_wrlock(&t->lock);
    cs_rc rc = cs_promise_observe(t->model, &dl, err);
    if (!rc)
        t->learned++;
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

/* Sort what was learned since the last time (cs_promise_settle). */
static void settle(cs_tracker_t *t)
{
    pthread_rwlock_wrlock(&t->lock);
    cs_promise_settle(t->model);
    pthread_rwlock_unlock(&t->lock);
}

typedef struct each_ud {
    cs_tracker_t *t;
    cs_err_t *err;
} each_ud_t;

static cs_rc each_delivery(const cs_delivery_row_t *d, void *arg)
{
    each_ud_t *u = arg;
    return learn(u->t, d, NULL, u->err);
}

cs_rc cs_tracker_sync(cs_tracker_t *t, cs_store_t *s, cs_err_t *err)
{
    cs_store_counts_t counts;
    cs_rc rc = cs_store_counts(s, &counts, err);
    if (rc)
        return rc;
    each_ud_t u = { t, err };
    rc = cs_store_call(s, deliveries_each, each_delivery, &u, err);
    settle(t);
    if (rc)
        return rc;
    t->cursor = counts.last_seq;
    atomic_store(&t->seq, t->cursor);
    t->synced = true;
    cs_info("promise: learned %zu deliveries from the store", t->learned);
    return CS_OK;
}

typedef struct ev_ud {
    cs_tracker_t *t;
    cs_store_t *s;
    cs_err_t *err;
    int64_t last;
} ev_ud_t;

/* A delivered scan: learn the delivery it completed, once a parcel -- as
 * the bulk read at start does (the store answers only for a parcel's first
 * delivered scan; a scan that came before its shipment has no order yet
 * and is learned at the next start, from the store). recent[] keeps a
 * parcel whose delivery moved earlier (a delivered scan dated before the
 * one learned) from being learned twice while running. No JSON is parsed:
 * the routing and the stored delivery say all. */
static cs_rc each_event(int64_t seq, const char *order_id, const char *customer_id,
                        const char *body, size_t len, void *arg)
{
    ev_ud_t *u = arg;
    (void)customer_id;
    (void)len;
    u->last = seq;
    if (!order_id || !strstr(body, "\"delivered\""))
        return CS_OK;
    cs_delivery_row_t d;
    cs_rc rc = cs_store_call(u->s, delivery_of_scan, seq, &d, u->err);
    if (rc == CS_ERR_NOTFOUND)
        return CS_OK;
    if (rc)
        return rc;
    uint64_t h = cs_hash_str(CS_HASH_INIT, d.shipment_id) | 1; /* 0 marks an empty slot */
    uint64_t *slot = &u->t->recent[(h >> 1) % RECENT]; /* (the low bit is always set) */
    if (*slot == h)
        return CS_OK;
    *slot = h;
    return learn(u->t, &d, order_id, u->err);
}

/* Learn the deliveries in the log after t->cursor, through s. */
static cs_rc follow(cs_tracker_t *t, cs_store_t *s, cs_err_t *err)
{
    ev_ud_t u = { t, s, err, t->cursor };
    const uint32_t types = 1u << CS_EV_TRACKING_EVENT;
    for (;;) {
        int64_t examined;
        cs_rc rc = cs_store_call(s, events_after, t->cursor, 2000, types, each_event, &u,
                                 &examined, err);
        settle(t);
        if (rc)
            return rc;
        if (examined == t->cursor)
            return CS_OK;
        t->cursor = examined;
        atomic_store(&t->seq, examined);
    }
}

/* On the writer: the first run learns the store's deliveries; later runs
 * wake the learning thread, which reads the log through a reader handle
 * (nothing read here), or, without the thread, follow the log here. */
cs_rc cs_tracker_hook(cs_store_t *s, void *arg, cs_ms_t *next, cs_err_t *err)
{
    cs_tracker_t *t = arg;
    *next = 0;
    if (!t->synced)
        return cs_tracker_sync(t, s, err);
    pthread_mutex_lock(&t->mu);
    bool threaded = t->started;
    if (threaded) {
        t->moved = true;
        if (t->idle) /* resting between passes, it looks on its own */
            pthread_cond_signal(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    return threaded ? CS_OK : follow(t, s, err);
}

cs_rc cs_tracker_promise(cs_tracker_t *t, const cs_promise_query_t *q, cs_promise_t *out,
                         cs_err_t *err)
{
    char svc[CS_ID_MAX + 1];
    cs_promise_query_t lq = *q;
    lq.lane.service = service_key(q->lane.service, svc, sizeof svc);
    pthread_rwlock_rdlock(&t->lock);
    cs_rc rc = cs_promise_estimate(t->model, &lq, out, err);
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

void cs_tracker_query(const cs_order_track_t *t, cs_ms_t now, char from[CS_REGION_KEY_MAX],
                      char to[CS_REGION_KEY_MAX], cs_promise_query_t *q)
{
    cs_region_key_json(t->origin, from, CS_REGION_KEY_MAX);
    cs_region_key_json(t->destination, to, CS_REGION_KEY_MAX);
    memset(q, 0, sizeof *q);
    q->lane = (cs_lane_t){ t->carrier, t->service, from, to };
    q->placed_at = t->placed_at;
    q->now = now;
    q->shipped_at = t->shipped ? t->shipped_at : 0;
    q->last_status = CS_TRACK__COUNT;
    if (t->last_status >= 0 && t->last_status < CS_TRACK__COUNT) {
        q->last_status = t->last_status;
        q->last_reason = (cs_incident_t)t->last_reason;
        q->last_scan_at = t->last_scan_at;
    }
    q->delivered_at = t->delivered_at;
    q->dest_since = t->dest_since;
    q->customs_since = t->customs_since;
}

void cs_tracker_in_flight(cs_tracker_t *t, const char *order_id, const cs_lane_t *lane,
                          cs_ms_t placed_at, cs_ms_t shipped_at, cs_ms_t dest_at)
{
    cs_err_t err;
    char svc[CS_ID_MAX + 1];
    cs_lane_t l = *lane;
    l.service = service_key(lane->service, svc, sizeof svc);
    pthread_rwlock_wrlock(&t->lock);
    cs_rc rc = cs_promise_in_flight(t->model, order_id, &l, placed_at, shipped_at, dest_at,
                                    &err);
    pthread_rwlock_unlock(&t->lock);
    if (rc)
        cs_log(CS_LOG_DEBUG, "promise: order %s not counted in flight: %s", order_id, err.msg);
}

void cs_tracker_forget(cs_tracker_t *t, const char *order_id)
{
    pthread_rwlock_wrlock(&t->lock);
    cs_promise_forget(t->model, order_id);
    pthread_rwlock_unlock(&t->lock);
}

size_t cs_tracker_in_flight_count(cs_tracker_t *t)
{
    pthread_rwlock_rdlock(&t->lock);
    size_t n = cs_promise_in_flight_count(t->model);
    pthread_rwlock_unlock(&t->lock);
    return n;
}

/* ---- the learning thread ---- */

typedef struct look {
    cs_tracker_t *t;
    cs_err_t err;
} look_t;

static cs_rc look_fn(cs_store_t *s, void *arg)
{
    look_t *l = arg;
    return follow(l->t, s, &l->err);
}

/* Passes at most this often. A reader handle's page cache is emptied by
 * SQLite whenever the database changed since its last read, so each pass
 * reads its B-tree pages from the files again; a pass after every hook run
 * (up to 100 a second under load) paid that for a few deliveries each.
 * The model learns a delivery at most this much later. */
#define LEARN_GAP_MS 200

static void rest(cs_tracker_t *t, int64_t ms)
{
    struct timespec ts;
    cs_deadline_in(&ts, ms);
    pthread_mutex_lock(&t->mu);
    while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &ts) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&t->mu);
}

static void *learner(void *arg)
{
    cs_tracker_t *t = arg;
    cs_thread_name("cs-learner");
    for (;;) {
        pthread_mutex_lock(&t->mu);
        t->idle = true;
        while (!t->moved && !t->stop)
            pthread_cond_wait(&t->cv, &t->mu);
        t->idle = false;
        if (t->stop) {
            pthread_mutex_unlock(&t->mu);
            break;
        }
        t->moved = false;
        /* the hook's first run (the sync) happened before it woke us */
        pthread_mutex_unlock(&t->mu);
        look_t l = { t, { 0 } };
        cs_store_t *s;
        cs_rc rc = cs_engine_reader_acquire(t->engine, &s, &l.err);
        if (rc == CS_ERR_UNSUPPORTED) {
            rc = cs_engine_with_writer(t->engine, look_fn, &l); /* an in-memory store */
        } else if (!rc) {
            rc = look_fn(s, &l);
            cs_engine_reader_release(t->engine, s);
        }
        if (rc) /* the cursor stays: tried again when the log moves */
            cs_warn("promise: deliveries not learned: %s", l.err.msg);
        rest(t, LEARN_GAP_MS);
    }
    return NULL;
}

cs_rc cs_tracker_start(cs_tracker_t *t, cs_engine_t *e, cs_err_t *err)
{
    t->engine = e;
    pthread_mutex_lock(&t->mu); /* the hook may be running on the writer */
    bool ok = pthread_create(&t->thread, NULL, learner, t) == 0;
    t->started = ok;
    pthread_mutex_unlock(&t->mu);
    return ok ? CS_OK : cs_errf(err, CS_ERR_INTERNAL, "promise: cannot start its thread");
}
