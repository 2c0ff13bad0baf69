/*
 * tracker.c -- see tracker.h.
 */
#include "tracker.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define RECENT 65536

struct cs_tracker {
    cs_promise_model_t *model; /* guarded by lock */
    pthread_rwlock_t lock;
    bool synced;               /* the writer's: the store's deliveries are learned */
    int64_t cursor;            /* the writer's: log position followed */
    size_t learned;
    /* the writer's: orders learned lately, by hash (direct-mapped), so a
     * parcel scanned as delivered twice teaches once */
    uint64_t recent[RECENT];
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
    *out = t;
    return CS_OK;
}

void cs_tracker_free(cs_tracker_t *t)
{
    if (!t)
        return;
    cs_promise_free(t->model);
    pthread_rwlock_destroy(&t->lock);
    cs_free(t);
}

size_t cs_tracker_learned(cs_tracker_t *t)
{
    pthread_rwlock_rdlock(&t->lock);
    size_t n = t->learned;
    pthread_rwlock_unlock(&t->lock);
    return n;
}

void cs_region_key(const char *country, const char *region, const char *postal, char *out,
                   size_t size)
{
    char c[8] = "", r[24] = "";
    if (country)
        cs_strlcpy(c, country, sizeof c);
    if (region && *region)
        cs_strlcpy(r, region, sizeof r);
    else if (postal && strlen(postal) >= 2)
        snprintf(r, sizeof r, "%.2s", postal);
    snprintf(out, size, "%s%s%s", c, c[0] && r[0] ? "-" : "", r);
    for (char *p = out; *p; p++)
        *p = (char)toupper((unsigned char)*p);
}

void cs_region_key_json(const char *address_json, char *out, size_t size)
{
    out[0] = '\0';
    if (!address_json || !*address_json)
        return;
    json_t *a = json_loads(address_json, 0, NULL);
    if (!a)
        return;
    cs_region_key(json_string_value(json_object_get(a, "country")),
                  json_string_value(json_object_get(a, "region")),
                  json_string_value(json_object_get(a, "postal_code")), out, size);
    json_decref(a);
}

static cs_rc learn(cs_tracker_t *t, const cs_delivery_row_t *d, cs_err_t *err)
{
    char from[32], to[32];
    cs_region_key_json(d->origin, from, sizeof from);
    cs_region_key_json(d->destination, to, sizeof to);
    cs_delivery_t dl = { { d->carrier, d->service, from, to }, d->placed_at, d->shipped_at,
                         d->delivered_at };
    if (d->delivered_at < d->placed_at)
        return CS_OK; /* inconsistent history teaches nothing */
    pthread_rwlock_wrlock(&t->lock);
    cs_rc rc = cs_promise_observe(t->model, &dl, err);
    if (!rc)
        t->learned++;
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

typedef struct each_ud {
    cs_tracker_t *t;
    cs_err_t *err;
} each_ud_t;

static cs_rc each_delivery(const cs_delivery_row_t *d, void *arg)
{
    each_ud_t *u = arg;
    return learn(u->t, d, u->err);
}

cs_rc cs_tracker_sync(cs_tracker_t *t, cs_store_t *s, cs_err_t *err)
{
    cs_store_counts_t counts;
    cs_rc rc = cs_store_counts(s, &counts, err);
    if (rc)
        return rc;
    each_ud_t u = { t, err };
    if ((rc = cs_store_call(s, deliveries_each, each_delivery, &u, err)))
        return rc;
    t->cursor = counts.last_seq;
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

/* A delivered scan: learn its order's delivery, once (the store routed the
 * scan to its order; a scan that came before its shipment has no order yet
 * and is learned at the next start, from the store). No JSON is parsed:
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
    uint64_t h = 1469598103934665603ULL; /* FNV-1a of the order id */
    for (const char *p = order_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h |= 1; /* 0 marks an empty slot */
    uint64_t *slot = &u->t->recent[h % RECENT];
    if (*slot == h)
        return CS_OK; /* a second delivered scan of a parcel just learned */
    cs_delivery_row_t d;
    cs_rc rc = cs_store_call(u->s, delivery_of, order_id, &d, u->err);
    if (rc == CS_ERR_NOTFOUND)
        return CS_OK;
    if (rc)
        return rc;
    *slot = h;
    return learn(u->t, &d, u->err);
}

cs_rc cs_tracker_hook(cs_store_t *s, void *arg, cs_ms_t *next, cs_err_t *err)
{
    cs_tracker_t *t = arg;
    *next = 0;
    if (!t->synced)
        return cs_tracker_sync(t, s, err);
    ev_ud_t u = { t, s, err, t->cursor };
    const uint32_t types = 1u << CS_EV_TRACKING_EVENT;
    for (;;) {
        int64_t examined;
        cs_rc rc = cs_store_call(s, events_after, t->cursor, 2000, types, each_event, &u,
                                 &examined, err);
        if (rc)
            return rc;
        if (examined == t->cursor)
            return CS_OK;
        t->cursor = examined;
    }
}

cs_rc cs_tracker_promise(cs_tracker_t *t, const cs_promise_query_t *q, cs_promise_t *out,
                         cs_err_t *err)
{
    pthread_rwlock_rdlock(&t->lock);
    cs_rc rc = cs_promise_estimate(t->model, q, out, err);
    pthread_rwlock_unlock(&t->lock);
    return rc;
}
