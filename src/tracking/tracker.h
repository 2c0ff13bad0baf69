/*
 * tracker.h -- the daemon's delivery promise: a promise model (promise.h)
 * that learns every delivery in the store when it starts and each new one
 * as its delivered scan arrives, and answers
 * promise queries from any thread.
 *
 * An engine hook on the writer thread (cs_tracker_hook) learns the store's
 * deliveries on its first run; after that it only wakes the tracker's own
 * thread (cs_tracker_start), which follows the event log through a reader
 * handle, finds the delivered scans and learns their deliveries, so the
 * writer neither reads the log for it nor waits for the model. HTTP
 * threads read through cs_tracker_promise under a read lock.
 */
#ifndef CS_TRACKING_TRACKER_H
#define CS_TRACKING_TRACKER_H

#include "../engine/engine.h"
#include "../store/store.h"
#include "promise.h"
#include "../model/region.h"

typedef struct cs_tracker cs_tracker_t;

cs_rc cs_tracker_new(const cs_promise_opts_t *opts, cs_tracker_t **out, cs_err_t *err);
/* Start the learning thread over the engine's reader handles. Without it
 * the hook learns on the writer thread itself. */
cs_rc cs_tracker_start(cs_tracker_t *t, cs_engine_t *e, cs_err_t *err);
/* Stop the learning thread; call before the engine closes (the hook may
 * still run: it then learns on the writer). NULL-safe. */
void cs_tracker_stop(cs_tracker_t *t);
/* Free (after the engine closed). NULL-safe. */
void cs_tracker_free(cs_tracker_t *t);

/* Engine hook: the first run learns the store's deliveries; later runs wake
 * the learning thread, or without it learn the deliveries in new log
 * events here. *next is left 0 (nothing timed). */
cs_rc cs_tracker_hook(cs_store_t *s, void *arg, cs_ms_t *next, cs_err_t *err);
/* Learn everything now (tests, tools); the hook does it on its first run. */
cs_rc cs_tracker_sync(cs_tracker_t *t, cs_store_t *s, cs_err_t *err);

cs_rc cs_tracker_promise(cs_tracker_t *t, const cs_promise_query_t *q, cs_promise_t *out,
                         cs_err_t *err);
/* The promise query at `now` for an order as the store tracks it
 * (order_track): the lane of the parcel it follows (else of its shipping
 * plan), that parcel's hand-over, latest scan and delivery. The lane's
 * region keys are written to from/to, which q->lane points at; its
 * carrier and service point into *t. The one reading of a track that the
 * order watch and the status answer share. */
void cs_tracker_query(const cs_order_track_t *t, cs_ms_t now, char from[CS_REGION_KEY_MAX],
                      char to[CS_REGION_KEY_MAX], cs_promise_query_t *q);
size_t cs_tracker_learned(cs_tracker_t *t);
/* The log position the model has learned to (thread-safe). */
int64_t cs_tracker_seq(cs_tracker_t *t);

/* The order watch's word on a parcel: handed over and not delivered yet
 * (it then counts for its lane as "longer than its age so far"), or not
 * to be delivered (cancelled, returned, given up). Delivered parcels leave
 * the in-flight set when they are learned. */
void cs_tracker_in_flight(cs_tracker_t *t, const char *order_id, const cs_lane_t *lane,
                          cs_ms_t placed_at, cs_ms_t shipped_at, cs_ms_t dest_at);
void cs_tracker_forget(cs_tracker_t *t, const char *order_id);
size_t cs_tracker_in_flight_count(cs_tracker_t *t);

#endif /* CS_TRACKING_TRACKER_H */
