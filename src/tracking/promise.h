/*
 * promise.h -- the delivery promise: a model learned from the store's own
 * deliveries that gives a window (a low and a high quantile, for example
 * the 10th to the 90th percentile) and a point estimate for a parcel,
 * before purchase and after every scan.
 *
 * Time is counted in working days (Monday to Saturday, as parcel carriers
 * deliver) in the shop's time zone; handling (purchase to hand-over) also
 * in ship days (Monday to Friday, as shops hand over); both less the
 * calendar's holidays and closed days (calendar.h), in the samples as in
 * the dates promised. Before hand-over,
 * each delivery's handling and transit are replayed from the new order's
 * purchase time, so a Friday evening order waits for Monday's hand-over
 * where a Monday order does not. No window starts before the hand-over's
 * day (the first ship day from the purchase) plus the fewest whole working
 * days of transit the answering level has seen, its fastest few set
 * aside (1 + n/50 of n, at most (n - 1)/2: a bad timestamp is no floor).
 * Every delivery is kept as a sample (purchase to delivery, purchase to
 * hand-over, hand-over to delivery) under its lane at four levels --
 * carrier x service x origin region x destination region; carrier x
 * destination; carrier; everything
 * -- and a query uses the most specific level with enough recent weight.
 * Samples are weighted by age (half-life), so the model follows seasons and
 * slow weeks as deliveries complete (cs_promise_observe is incremental).
 *
 * Parcels still under way count too (cs_promise_in_flight): a parcel
 * handed over six days ago says the lane takes more than six days now,
 * which the deliveries completed so far -- the fast ones arrive first --
 * cannot say. The quantiles are Kaplan-Meier estimates over the delivered
 * (observed) and the in-flight (censored at their age) parcels, so the
 * window stays calibrated when a lane slows down. A parcel in flight for
 * longer than `in_flight_days` is taken for lost and no longer counts.
 *
 * After hand-over the window is conditional: the rest of the transit time
 * of parcels on the lane that had not arrived after as long (no delivery
 * known at all: 1-4 working days, never "slow"). Scans move it: out for
 * delivery (today, and not at risk), a failed attempt (from the next working day),
 * a scan in its destination region (the rest of the way of the lane's
 * parcels that had been scanned there as long ago, once enough tell it),
 * an exception (its reason adds days to the window at its scan, which
 * stands as given while no scan follows; once it has passed, no window:
 * from = to = point = 0), a customs hold (clearance past
 * CS_PROMISE_CLEARANCE_DAYS) and weather or a delay in transit (their
 * days are added to the window at the hold's start or the scan, which
 * stands as given while no scan follows, as an exception's does, so a
 * nightly re-check does not move it later; once its last day has passed,
 * counted from the day asked again), no scan for longer than the lane's
 * expected gap (the 90th percentile of the longest silence of its
 * delivered parcels, at least one working day; three when unknown: the
 * window opens up); each move carries a reason code.
 *
 * Thread-safety: a model is not locked; one writer (observe) at a time and
 * no readers during it -- the caller serializes.
 */
#ifndef CS_TRACKING_PROMISE_H
#define CS_TRACKING_PROMISE_H

#include <stdbool.h>

#include "../lib/cs.h"
#include "../lib/cs_time.h"
#include "../lib/cs_tz.h"
#include "../model/event.h"
#include "calendar.h"

typedef struct cs_promise_opts {
    const cs_tz_t *tz;        /* the shop's zone for dates; NULL = UTC */
    double q_low, q_high;     /* window quantiles; 0 = 0.10, 0.90; cs_promise_new refuses
                               * (CS_ERR_INVALID) any but 0 < q_low < 0.5 < q_high < 1 */
    double half_life_days;    /* sample weight halves with this age; 0 = 90 */
    double min_weight;        /* weight a level needs to be used; 0 = 12 */
    int per_lane_max;         /* samples kept per lane and level; 0 = 4000 */
    double in_flight_days;    /* an undelivered parcel counts this long; 0 = 45 */
    const cs_calendar_t *calendar; /* days closed besides Sundays (borrowed: outlives
                                      the model); NULL = none */
} cs_promise_opts_t;

typedef struct cs_promise_model cs_promise_model_t;

cs_rc cs_promise_new(const cs_promise_opts_t *opts, cs_promise_model_t **out, cs_err_t *err);
void cs_promise_free(cs_promise_model_t *m);

/* A lane: who carries it from where to where. Regions are short keys
 * ("DE-SN", "SP", a postal prefix); any may be "" when unknown. */
typedef struct cs_lane {
    const char *carrier;
    const char *service;
    const char *origin;
    const char *destination;
} cs_lane_t;

/* A completed delivery. shipped_at 0 = the hand-over is not known.
 * gap_from..gap_to: the longest silence on its way (hand-over or scan to
 * the next scan); 0, 0 = not known. dest_at: its first scan in its
 * destination region (model/region.h); 0 = none. */
typedef struct cs_delivery {
    cs_lane_t lane;
    cs_ms_t placed_at;
    cs_ms_t shipped_at;
    cs_ms_t delivered_at;
    cs_ms_t gap_from, gap_to;
    const char *id;   /* the parcel's (order's) id: it is no longer in flight; NULL = none */
    cs_ms_t dest_at;
} cs_delivery_t;

cs_rc cs_promise_observe(cs_promise_model_t *m, const cs_delivery_t *d, cs_err_t *err);
/* Put the lanes changed by observations since the last call in order, so
 * estimates walk their deliveries in order instead of sorting thousands
 * per query. Estimates are the same either way, only slower on a lane
 * changed since; call it after a batch of observations (under the same
 * exclusion as they). Out of memory, it leaves them to be sorted by the
 * estimates. */
void cs_promise_settle(cs_promise_model_t *m);

/* A parcel handed over and not delivered yet (again with the same id:
 * updated). Its lane's strings are copied. dest_at: its first scan in its
 * destination region while it is there (it then counts for the rest of
 * the way from there too); 0 = not there. */
cs_rc cs_promise_in_flight(cs_promise_model_t *m, const char *id, const cs_lane_t *lane,
                           cs_ms_t placed_at, cs_ms_t shipped_at, cs_ms_t dest_at,
                           cs_err_t *err);
/* It will not be delivered (cancelled, returned, lost): it no longer
 * counts. Unknown ids are ignored. */
void cs_promise_forget(cs_promise_model_t *m, const char *id);
size_t cs_promise_in_flight_count(const cs_promise_model_t *m);
/* The options in effect (defaults filled in). */
double cs_promise_opts_q_low(const cs_promise_model_t *m);
double cs_promise_opts_q_high(const cs_promise_model_t *m);
double cs_promise_opts_half_life(const cs_promise_model_t *m);
size_t cs_promise_samples(const cs_promise_model_t *m);

/* Customs clearance (a scan in transit with the reason customs) is part of
 * a cross-border lane's usual transit, which the lane's deliveries already
 * took: CS_PR_IN_CUSTOMS, no days added. Once it has lasted this many
 * working days it is a hold-up like the carrier's customs exception:
 * CS_PR_CUSTOMS, at risk, with the days a customs incident adds. */
#define CS_PROMISE_CLEARANCE_DAYS 2

/* Why a promise moved; plain-language texts are per locale. */
typedef enum cs_promise_reason {
    CS_PR_NONE = 0,
    CS_PR_OUT_FOR_DELIVERY,
    CS_PR_FAILED_ATTEMPT,
    CS_PR_PICKUP_READY,
    CS_PR_CUSTOMS,
    CS_PR_ADDRESS,
    CS_PR_WEATHER,
    CS_PR_EXCEPTION,         /* another incident */
    CS_PR_NO_SCAN,           /* no scan for longer than usual (days in `quiet_days`) */
    CS_PR_MISSED_HANDOVER,   /* not handed to the carrier when parcels usually are */
    CS_PR_SLOW_TRANSIT,      /* in transit longer than most parcels on the lane */
    CS_PR_DELIVERED,
    CS_PR_RETURNED,
    CS_PR_HELD_AT_DEPOT,     /* the watch's: a scan says it is held at a depot */
    CS_PR_LATE,              /* the watch's: predicted after the first promise */
    CS_PR_STUCK,             /* the watch's: scanned at one place for days (in `quiet_days`) */
    CS_PR_IN_REGION,         /* scanned in its destination region: the window is the rest
                                of the way of parcels that had got as far */
    CS_PR_IN_CUSTOMS,        /* in customs clearance, for no longer than clearance
                                usually takes (CS_PROMISE_CLEARANCE_DAYS): no delay */
    CS_PR__COUNT
} cs_promise_reason_t;
const char *cs_promise_reason_name(cs_promise_reason_t r);
/* The reverse; -1 for names that are not a reason (the watch also records
 * "cancelled", "held_at_depot", "late"). */
int cs_promise_reason_from_name(const char *name);
/* A sentence for the reason ("The parcel is being checked by customs."):
 * lang "de" or "en"; days used by NO_SCAN and STUCK. */
const char *cs_promise_reason_text(cs_promise_reason_t r, const char *lang, int days, char *buf,
                                   size_t size);

/* What is known about a parcel at `now`. placed_at is required; the rest
 * is 0 / CS_TRACK__COUNT when not known yet. */
typedef struct cs_promise_query {
    cs_lane_t lane;
    cs_ms_t placed_at;
    cs_ms_t shipped_at;          /* handed to the carrier; 0 = not yet */
    cs_ms_t now;                 /* the time asked at; 0 = placed_at. Earlier than
                                    placed_at for a purchase yet to come: the samples
                                    are weighed as they are at now */
    int last_status;             /* cs_track_status_t of the latest scan; CS_TRACK__COUNT = none */
    cs_incident_t last_reason;
    cs_ms_t last_scan_at;        /* 0 = no scan */
    cs_ms_t delivered_at;        /* 0 = not delivered */
    cs_ms_t dest_since;          /* its first scan in its destination region; 0 = none */
    cs_ms_t customs_since;       /* its latest scans say customs clearance (not an
                                    exception): the first of them; 0 = the latest */
} cs_promise_query_t;

typedef struct cs_promise {
    cs_ms_t from, to;            /* the window, as local midnights of its first and last day */
    cs_ms_t point;               /* the most likely day (local midnight) */
    int level;                   /* 0 = the full lane .. 3 = all deliveries; -1 = no history */
    double weight;               /* the samples' total weight behind it */
    bool yardstick;              /* enough deliveries behind it (min_weight) to call a
                                    parcel late by it, not only to give a window */
    cs_promise_reason_t reason;  /* why it is where it is (NONE: as usual) */
    int quiet_days;              /* for CS_PR_NO_SCAN */
    bool at_risk;                /* later than usual: a delay worth telling */
} cs_promise_t;

cs_rc cs_promise_estimate(const cs_promise_model_t *m, const cs_promise_query_t *q,
                          cs_promise_t *out, cs_err_t *err);

/* Working-day arithmetic in the model's zone, exposed for tests. */
double cs_promise_workdays(const cs_promise_model_t *m, cs_ms_t from, cs_ms_t to);
/* The local midnight of the day `wd` working days after `from`. */
cs_ms_t cs_promise_add_workdays(const cs_promise_model_t *m, cs_ms_t from, double wd);

/* How late `at` is for a promise ending on promised_to's local day: the
 * working days after it up to at's day (at least 1 when at's day is later
 * at all; 0 when in time). */
int cs_workdays_late(const cs_tz_t *tz, const cs_calendar_t *cal, cs_ms_t promised_to,
                     cs_ms_t at);

#endif /* CS_TRACKING_PROMISE_H */
