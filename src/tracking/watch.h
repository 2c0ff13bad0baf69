/*
 * watch.h -- the order watch: every open order's delivery promise, kept in
 * the store (cs_promise_rec_t) and moved as the order, its shipment and
 * its scans change and as time passes.
 *
 *   - The first promise is what the customer was shown: the order's own
 *     window when the shop sent one, else the model's checkout window as
 *     of the purchase. It never changes.
 *   - The current promise is the model's estimate now (tracker.h). When
 *     its window or its reason changes, the move is recorded with the
 *     reason ("customs", "no_scan", ...).
 *   - At risk: the predicted day passes the first promise, no scan for
 *     longer than usual, a missed hand-over, a failed attempt, an
 *     exception, a parcel held at a depot or on its way back. Becoming at
 *     risk (or at risk for a new reason; at most three times an order)
 *     appends a `signal` event named `delivery_at_risk` that journeys
 *     trigger on (etc/journeys/45-delivery-problem.yaml). A parcel sent
 *     again for one gone back to the shop is late against its own window
 *     (the model's at its hand-over) when that ends after the first.
 *   - A broken promise (delivered after the first window, or still not
 *     delivered `comp_wait_days` working days after it) is compensated
 *     once per order: a unique code sized by lateness, order value and
 *     customer tier within a daily budget, and a `promise_broken` signal.
 *     For a parcel sent again, the wait counts from its own window.
 *   - Re-checks are durable: each open order's next check time is in the
 *     store, so silence is noticed after a restart too.
 *
 * It runs as an engine hook on the writer thread (cs_watch_hook), after the
 * tracker and before the journeys, following the event log with its own
 * durable cursor ("watch"). The first time it reads the log from the start:
 * orders placed within the horizon are back-filled, but what was history by
 * then -- a scan or a late delivery more than three days old -- is recorded
 * without signals or compensation.
 */
#ifndef CS_TRACKING_WATCH_H
#define CS_TRACKING_WATCH_H

#include "../lib/cs_time.h"
#include "../lib/cs_tz.h"
#include "../store/store.h"
#include "tracker.h"

/* The watch's signals: their source, and the name of the one that says an
 * order is at risk (the sender reads it back to drop a stale notice). */
#define CS_WATCH_SOURCE "consonance:watch"
#define CS_WATCH_AT_RISK "delivery_at_risk"

/* The event_id of the watch's n-th delivery_at_risk signal for an order
 * (n from 1, as cs_promise_rec_t.risk_events counts them): the sender
 * tells the latest from an older one. out holds at least 48 bytes. */
void cs_watch_risk_event_id(const char *order_id, int n, char *out, size_t size);

typedef struct cs_watch_opts {
    cs_tracker_t *tracker;          /* the model (borrowed) */
    const cs_clock_t *clock;        /* NULL = system clock */
    const cs_tz_t *tz;              /* the shop's zone; NULL = UTC */
    const cs_calendar_t *calendar;  /* the model's closed days (borrowed); NULL = none */
    cs_ms_t horizon;                /* orders placed longer ago are not watched: 60d */
    int max_risk_signals;           /* per order: 3 */
    /* compensation; a budget of 0 turns it off (the signal still goes out) */
    int64_t comp_daily_budget;      /* minor units of the shop's currency per local day: 0 */
    double comp_percent_per_day;    /* of the order total per working day late: 5 */
    double comp_percent_max;        /* 20 */
    int comp_free_shipping_days;    /* up to this late: free shipping instead: 1 */
    int comp_wait_days;             /* undelivered this late: compensate now: 2 */
    int64_t comp_amount_min;        /* minor units: 500 */
    int64_t comp_amount_max;        /* minor units: 5000 */
    cs_ms_t comp_valid;             /* 90d */
    int64_t vip_spent;              /* a VIP spent this much (minor units; 0 = VIPs by
                                       orders alone): 50000 */
    int vip_orders;                 /* or placed this many orders: 5 */
    const char *comp_prefix;        /* code prefix (copied): "SORRY" */
    const char *currency;           /* what the amounts above are in (copied): "EUR". An
                                       order in another gets a percent code, not an amount */
} cs_watch_opts_t;

/* The defaults above. */
void cs_watch_opts_default(cs_watch_opts_t *o);

typedef struct cs_watch cs_watch_t;

cs_rc cs_watch_new(const cs_watch_opts_t *opts, cs_watch_t **out, cs_err_t *err);
void cs_watch_free(cs_watch_t *w); /* NULL-safe */

/* Engine hook: follow the log, then the due re-checks; *next is the next
 * re-check (or now when more is waiting). */
cs_rc cs_watch_hook(cs_store_t *s, void *arg, cs_ms_t *next, cs_err_t *err);

typedef struct cs_watch_stats {
    uint64_t updates;       /* promise recomputations */
    uint64_t moves;         /* windows or reasons that changed */
    uint64_t at_risk;       /* delivery_at_risk signals */
    uint64_t broken;        /* promise_broken signals */
    uint64_t codes;         /* compensation codes issued */
    uint64_t comp_cost;     /* their cost, minor units */
    uint64_t over_budget;   /* compensations refused or reduced by the budget */
    int64_t seq;            /* the log position looked at to (not a sum) */
} cs_watch_stats_t;
void cs_watch_stats(cs_watch_t *w, cs_watch_stats_t *out); /* thread-safe */

/* Update one order now (tests, tools): inside a transaction. */
cs_rc cs_watch_order(cs_watch_t *w, cs_store_t *s, const char *order_id, cs_err_t *err);

/* The customer's tier the compensation uses: "vip", "regular" or "new". */
const char *cs_watch_tier(const cs_watch_t *w, int64_t orders, int64_t spent);

#endif /* CS_TRACKING_WATCH_H */
