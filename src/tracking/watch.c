/*
 * watch.c -- see watch.h.
 */
#include "watch.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../journey/journey.h"
#include "../lib/cs_crypto.h"
#include "../lib/cs_map.h"

#define CURSOR "watch"
#define EVENTS_PER_PASS 2000 /* a pass holds the writer: intake waits for it */
#define DUE_PER_PASS 500
#define RECHECK_MS (6 * 3600000LL) /* silence is noticed within this */
/* A scan or a delivery older than this is history when the watch first
 * sees it (a back-fill, an import): recorded, but nobody is told. */
#define FRESH_MS (3 * CS_MS_PER_DAY)
/* An order the watch first sees more than FRESH_MS after it was placed (a
 * back-fill, an import, a shop connected late) was promised nothing by
 * us: its lateness is nobody's news and earns no code. The note marks the
 * record for good; what its scans say later is still news. */
#define NOTE_PLACED_BEFORE "placed before it was watched"
#define CURSOR_SAVE_MS 5000 /* the cursor alone is saved at most this often */

struct cs_watch {
    cs_watch_opts_t o;
    char prefix[16];
    char currency[4];
    bool loaded;             /* the writer's: cursor read */
    int64_t cursor;          /* the writer's: events looked at */
    int64_t saved;           /* the cursor as last saved */
    cs_ms_t saved_at;
    cs_promise_rec_t *due;   /* the writer's: a pass's re-checks (DUE_PER_PASS,
                                allocated once: a pass runs after groups) */
    pthread_mutex_t mu;      /* guards stats */
    cs_watch_stats_t stats;
};

void cs_watch_opts_default(cs_watch_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->horizon = 60 * CS_MS_PER_DAY;
    o->max_risk_signals = 3;
    o->comp_percent_per_day = 5;
    o->comp_percent_max = 20;
    o->comp_free_shipping_days = 1;
    o->comp_wait_days = 2;
    o->comp_amount_min = 500;
    o->comp_amount_max = 5000;
    o->comp_valid = 90 * CS_MS_PER_DAY;
    o->vip_spent = 50000;
    o->vip_orders = 5;
}

cs_rc cs_watch_new(const cs_watch_opts_t *opts, cs_watch_t **out, cs_err_t *err)
{
    *out = NULL;
    if (!opts->tracker)
        return cs_errf(err, CS_ERR_INVALID, "watch: needs the promise tracker");
    cs_watch_t *w = cs_calloc(1, sizeof *w);
    if (!w)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    w->o = *opts;
    cs_watch_opts_t *o = &w->o;
    if (!o->tz)
        o->tz = cs_tz_get_or_utc(NULL);
    if (!o->clock)
        o->clock = cs_clock_system();
    if (o->comp_amount_max < o->comp_amount_min)
        o->comp_amount_max = o->comp_amount_min;
    cs_strlcpy(w->prefix, opts->comp_prefix && *opts->comp_prefix ? opts->comp_prefix : "SORRY",
               sizeof w->prefix);
    o->comp_prefix = w->prefix;
    cs_strlcpy(w->currency, opts->currency && *opts->currency ? opts->currency : "EUR",
               sizeof w->currency);
    o->currency = w->currency;
    if (!(w->due = cs_calloc(DUE_PER_PASS, sizeof *w->due))) {
        cs_free(w);
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&w->mu, NULL);
    *out = w;
    return CS_OK;
}

void cs_watch_free(cs_watch_t *w)
{
    if (!w)
        return;
    pthread_mutex_destroy(&w->mu);
    cs_free(w->due);
    cs_free(w);
}

void cs_watch_stats(cs_watch_t *w, cs_watch_stats_t *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->stats;
    pthread_mutex_unlock(&w->mu);
}

const char *cs_watch_tier(const cs_watch_t *w, int64_t orders, int64_t spent)
{
    if ((w->o.vip_spent > 0 && spent >= w->o.vip_spent) || orders >= w->o.vip_orders)
        return "vip";
    return orders >= 2 ? "regular" : "new";
}

/* ---- one order ---- */

typedef struct upd {
    cs_watch_t *w;
    cs_store_t *s;
    cs_ms_t now;
    cs_err_t *err;
    cs_watch_stats_t d;      /* this pass's counts */
} upd_t;

static void ymd(const cs_watch_t *w, cs_ms_t t, char *out, size_t size)
{
    if (t)
        cs_tz_ymd(w->o.tz, t, out, size);
    else
        cs_strlcpy(out, "", size);
}

/* A parcel in transit scanned at one place again and again, for at least
 * STUCK_MS and STUCK_WORKDAYS working days (a weekend at a depot is not
 * stuck): the days it has been there, else 0. A depot the carrier names as
 * holding it is CS_INCIDENT_HELD_AT_DEPOT; this is the one it does not. */
#define STUCK_MS (2 * CS_MS_PER_DAY)
#define STUCK_WORKDAYS 2
static int stuck_days(const cs_watch_t *w, const cs_order_track_t *t, cs_ms_t now)
{
    if (t->last_status != CS_TRACK_IN_TRANSIT || !t->stay_since ||
        t->last_scan_at <= t->stay_since || now - t->stay_since < STUCK_MS ||
        cs_workdays_late(w->o.tz, w->o.calendar, t->stay_since, now) < STUCK_WORKDAYS)
        return 0;
    return (int)((now - t->stay_since) / CS_MS_PER_DAY);
}

/* Reasons that make a parcel late enough to tell the customer. */
static bool risky_reason(cs_promise_reason_t r)
{
    switch (r) {
    case CS_PR_FAILED_ATTEMPT:
    case CS_PR_CUSTOMS:
    case CS_PR_ADDRESS:
    case CS_PR_WEATHER:
    case CS_PR_EXCEPTION:
    case CS_PR_NO_SCAN:
    case CS_PR_MISSED_HANDOVER:
    case CS_PR_SLOW_TRANSIT:
    case CS_PR_RETURNED: return true;
    default: return false;
    }
}

/* A deterministic event id: the same decision taken twice (a pass that
 * rolled back and ran again) is one event. */
static void event_id(const char *kind, const char *order_id, int n, char *out, size_t size)
{
    char key[CS_ID_MAX + 48], hex[CS_SHA256_HEX_LEN];
    snprintf(key, sizeof key, "%s:%s:%d", kind, order_id, n);
    cs_sha256_hex(key, strlen(key), hex);
    snprintf(out, size, "%s-%.32s", kind, hex);
}

void cs_watch_risk_event_id(const char *order_id, int n, char *out, size_t size)
{
    event_id("risk", order_id, n, out, size);
}

static json_t *window_json(const cs_watch_t *w, cs_ms_t from, cs_ms_t to)
{
    char f[16], t[16];
    ymd(w, from, f, sizeof f);
    ymd(w, to, t, sizeof t);
    return json_pack("{s:s?,s:s?}", "from", f[0] ? f : NULL, "to", t[0] ? t : NULL);
}

static cs_rc emit_signal(upd_t *u, const char *kind, const char *name, cs_promise_rec_t *r,
                         int n, json_t *props)
{
    char eid[48];
    event_id(kind, r->order_id, n, eid, sizeof eid);
    json_object_set_new(props, "window", window_json(u->w, r->from, r->to));
    json_object_set_new(props, "first_window", window_json(u->w, r->first_from, r->first_to));
    json_object_set_new(props, "reason", json_string(r->reason));
    bool is_new;
    return cs_store_signal(u->s, u->now, eid, CS_WATCH_SOURCE, name, r->customer_id,
                           r->order_id, props, &is_new, u->err);
}

/* Size and issue the compensation for a broken promise, once. */
static cs_rc compensate(upd_t *u, const cs_order_track_t *t, cs_promise_rec_t *r)
{
    const cs_watch_opts_t *o = &u->w->o;
    r->comp_at = u->now;
    if (o->comp_daily_budget <= 0) {
        cs_strlcpy(r->comp_note, "compensation off", sizeof r->comp_note);
        return CS_OK;
    }
    int64_t orders, spent_total;
    /* the tier the customer had with this order: later orders do not
     * count, and only orders in the shop's currency add to what was spent */
    cs_rc rc = cs_store_call(u->s, customer_totals, r->customer_id, t->placed_at, o->currency,
                             &orders, &spent_total, u->err);
    if (rc)
        return rc;
    const char *tier = cs_watch_tier(u->w, orders, spent_total);
    double mult = strcmp(tier, "vip") == 0 ? 1.5 : strcmp(tier, "regular") == 0 ? 1.25 : 1.0;
    /* amounts are in the shop's currency; an order in another (no rates
     * here) gets a percent code, counted against the budget at the most an
     * amount code may cost, and free shipping at compensation_min */
    bool foreign = t->currency[0] && strcmp(t->currency, o->currency) != 0;
    int64_t ship_cost = t->shipping > 0 && !foreign ? t->shipping : o->comp_amount_min;
    int kind;
    int64_t amount = 0, cost;
    double percent = 0, pct = o->comp_percent_per_day * r->late_days;
    if (pct > o->comp_percent_max)
        pct = o->comp_percent_max;
    double pct_code = fmin(ceil(pct * mult), 100); /* as a percent code, with the tier */
    /* free shipping is worth nothing to a customer who paid none: the
     * smallest amount instead (in another currency: the percentage) */
    bool paid_shipping = t->shipping > 0;
    if (r->late_days <= o->comp_free_shipping_days && !paid_shipping && foreign) {
        kind = CS_DISCOUNT_PERCENT;
        percent = pct_code;
        cost = o->comp_amount_min;
    } else if (r->late_days <= o->comp_free_shipping_days && !paid_shipping) {
        kind = CS_DISCOUNT_AMOUNT;
        amount = cost = o->comp_amount_min;
    } else if (r->late_days <= o->comp_free_shipping_days) {
        kind = CS_DISCOUNT_FREE_SHIPPING;
        cost = ship_cost;
    } else if (foreign) {
        percent = pct_code;
        kind = CS_DISCOUNT_PERCENT;
        cost = o->comp_amount_max;
    } else {
        double a = (double)t->total * pct * mult / 100.0;
        amount = (int64_t)ceil(a / 100.0) * 100; /* whole units */
        if (amount < o->comp_amount_min)
            amount = o->comp_amount_min;
        if (amount > o->comp_amount_max)
            amount = o->comp_amount_max;
        kind = CS_DISCOUNT_AMOUNT;
        cost = amount;
    }
    /* a code worth nothing (compensation_min 0 and free shipping worth
     * nothing, or an order of 0.00) is no apology: none is issued */
    if ((kind == CS_DISCOUNT_AMOUNT && (amount <= 0 || t->total <= 0)) ||
        (kind == CS_DISCOUNT_PERCENT && (percent <= 0 || t->total <= 0))) {
        snprintf(r->comp_note, sizeof r->comp_note, "%s, %d days late; nothing to give", tier,
                 r->late_days);
        return CS_OK;
    }
    /* the budget of the shop's local day */
    int64_t spent;
    cs_ms_t day0 = cs_tz_day_start(o->tz, cs_tz_day(o->tz, u->now));
    rc = cs_store_call(u->s, comp_spent, day0, &spent, u->err);
    if (rc)
        return rc;
    if (spent + cost > o->comp_daily_budget) {
        u->d.over_budget++;
        if (kind != CS_DISCOUNT_FREE_SHIPPING && paid_shipping &&
            spent + ship_cost <= o->comp_daily_budget) {
            kind = CS_DISCOUNT_FREE_SHIPPING;
            cost = ship_cost;
            snprintf(r->comp_note, sizeof r->comp_note, "%s, %d days late; budget: free shipping",
                     tier, r->late_days);
        } else {
            cs_strlcpy(r->comp_note, "daily budget used up", sizeof r->comp_note);
            return CS_OK;
        }
    } else {
        snprintf(r->comp_note, sizeof r->comp_note, "%s, %d days late%s%s", tier, r->late_days,
                 foreign ? "; percent, order in " : "", foreign ? t->currency : "");
    }
    cs_discount_t d;
    memset(&d, 0, sizeof d);
    snprintf(d.idem_key, sizeof d.idem_key, "comp:%s", r->order_id);
    cs_strlcpy(d.journey, "compensation", sizeof d.journey);
    cs_strlcpy(d.customer_id, r->customer_id, sizeof d.customer_id);
    cs_strlcpy(d.order_id, r->order_id, sizeof d.order_id);
    d.kind = kind;
    d.value = kind == CS_DISCOUNT_AMOUNT ? (double)amount / 100.0 : percent;
    if (kind == CS_DISCOUNT_AMOUNT)
        cs_strlcpy(d.currency, t->currency[0] ? t->currency : "EUR", sizeof d.currency);
    d.created_at = u->now;
    d.expires_at = u->now + o->comp_valid;
    bool existed;
    if ((rc = cs_discount_issue(u->s, &d, o->comp_prefix, &existed, u->err)))
        return rc;
    cs_strlcpy(r->comp_code, d.code, sizeof r->comp_code);
    r->comp_cost = cost;
    if (!existed) {
        u->d.codes++;
        u->d.comp_cost += (uint64_t)cost;
    }
    return CS_OK;
}

/* The last day an order's followed parcel is due by: the first promise's
 * (*due on entry), or, for a parcel sent again for one gone back to the
 * shop (t->replaces), its own window -- the model's for it at its
 * hand-over -- when that ends later. The first parcel's missed window is
 * not the new one's lateness; the first promise still sizes the code. */
static cs_rc own_window_end(upd_t *u, const cs_order_track_t *t, const cs_promise_query_t *q,
                            cs_ms_t *due)
{
    if (!t->replaces || !t->shipped_at || !*due)
        return CS_OK;
    cs_promise_query_t q0 = { .lane = q->lane, .placed_at = t->placed_at,
                              .shipped_at = t->shipped_at, .now = t->shipped_at,
                              .last_status = CS_TRACK__COUNT };
    cs_promise_t p0;
    cs_rc rc = cs_tracker_promise(u->w->o.tracker, &q0, &p0, u->err);
    if (rc)
        return rc;
    if (p0.to > *due)
        *due = p0.to;
    return CS_OK;
}

static cs_rc update(upd_t *u, const char *order_id)
{
    cs_watch_t *w = u->w;
    cs_promise_rec_t r;
    cs_rc rc = cs_store_call(u->s, promise_get, order_id, &r, u->err);
    if (rc && rc != CS_ERR_NOTFOUND)
        return rc;
    bool have = rc == CS_OK;
    /* a closed order stays closed, unless it closed on a delivery or a
     * return and another parcel of it is on its way or has arrived (a
     * second parcel, or a new one sent for it; one whose scans came
     * before its shipment.created may be delivered when the watch first
     * sees it): it is watched anew, and judged as any parcel. The parcel
     * it closed on does not reopen it -- scans after its delivery, or of
     * its way back to the shop, are not a new journey. */
    bool reopen = have && r.closed && r.closed_shipment[0] &&
                  (strcmp(r.reason, "delivered") == 0 || strcmp(r.reason, "returned") == 0);
    if (have && r.closed && !reopen)
        return CS_OK;
    cs_order_track_t t;
    /* an order the watch does not know yet is read whole only when it is
     * young enough to be watched */
    rc = cs_store_call(u->s, order_track, order_id, have ? 0 : u->now - w->o.horizon, &t, u->err);
    if (rc == CS_ERR_NOTFOUND || (!rc && !t.placed_at))
        return CS_OK; /* nothing placed yet: a stub an early event made */
    if (rc)
        return rc;
    /* the order's customer now (an edit may have given the order to
     * another): the watch's signals name the order and its customer, and
     * one naming another customer's order is refused */
    if (have && t.customer_id[0])
        cs_strlcpy(r.customer_id, t.customer_id, sizeof r.customer_id);
    bool cancelled = strcmp(t.status, "cancelled") == 0;
    if (reopen) {
        bool other = t.shipped && strcmp(t.shipment_id, r.closed_shipment) != 0 &&
                     t.last_status != CS_TRACK_RETURNED_TO_SENDER;
        if (cancelled || !other || u->now - t.placed_at > w->o.horizon)
            return CS_OK;
        r.closed = false;
    }

    char from[CS_REGION_KEY_MAX], to[CS_REGION_KEY_MAX];
    cs_promise_query_t q;
    cs_tracker_query(&t, u->now, from, to, &q);

    if (!have) {
        if (cancelled || u->now - t.placed_at > w->o.horizon)
            return CS_OK; /* history, not an order to watch */
        memset(&r, 0, sizeof r);
        cs_strlcpy(r.order_id, order_id, sizeof r.order_id);
        cs_strlcpy(r.customer_id, t.customer_id, sizeof r.customer_id);
        r.first_at = t.placed_at;
        if (u->now - t.placed_at > FRESH_MS) {
            r.comp_at = u->now; /* delivered or not: we promised nothing */
            cs_strlcpy(r.comp_note, NOTE_PLACED_BEFORE, sizeof r.comp_note);
        }
        if (t.promised_to) {
            /* the shop's days: a plain date is that day in any zone */
            int64_t d0 = cs_tz_date_day(w->o.tz, t.promised_from ? t.promised_from : t.promised_to);
            r.first_from = cs_tz_day_start(w->o.tz, d0);
            int64_t d1 = cs_tz_date_day(w->o.tz, t.promised_to);
            r.first_to = r.first_point = cs_tz_day_start(w->o.tz, d1);
            cs_strlcpy(r.first_source, "shop", sizeof r.first_source);
        } else {
            /* what checkout would have said: the lane alone */
            cs_promise_t p0;
            cs_promise_query_t q0 = { .lane = q.lane, .placed_at = t.placed_at,
                                      .now = t.placed_at, .last_status = CS_TRACK__COUNT };
            if ((rc = cs_tracker_promise(w->o.tracker, &q0, &p0, u->err)))
                return rc;
            r.first_from = p0.from;
            r.first_to = p0.to;
            r.first_point = p0.point;
            cs_strlcpy(r.first_source, "model", sizeof r.first_source);
        }
    }
    u->d.updates++;
    cs_promise_rec_t was = r;
    r.updated_at = u->now;
    if (u->now - t.placed_at > w->o.horizon) {
        /* past the horizon and still not delivered: stop watching */
        cs_tracker_forget(w->o.tracker, order_id);
        r.closed = true;
        r.check_at = 0;
        return cs_store_call(u->s, promise_put, &r, NULL, u->err);
    }
    if (cancelled) {
        cs_tracker_forget(w->o.tracker, order_id);
        r.closed = true;
        r.check_at = 0;
        r.at_risk = false;
        cs_strlcpy(r.reason, "cancelled", sizeof r.reason);
        u->d.moves++;
        return cs_store_call(u->s, promise_put, &r, "cancelled", u->err);
    }

    /* the current promise */
    cs_promise_t p;
    if ((rc = cs_tracker_promise(w->o.tracker, &q, &p, u->err)))
        return rc;
    r.from = p.from;
    r.to = p.to;
    r.point = p.point;
    r.level = p.level;
    r.quiet_days = p.quiet_days;
    cs_strlcpy(r.reason, cs_promise_reason_name(p.reason), sizeof r.reason);
    bool delivered = t.delivered_at != 0;
    bool returned = p.reason == CS_PR_RETURNED;
    if (!delivered && !returned && t.shipped && t.shipped_at)
        cs_tracker_in_flight(w->o.tracker, order_id, &q.lane, t.placed_at, t.shipped_at,
                             t.dest_since);
    else
        cs_tracker_forget(w->o.tracker, order_id);

    /* at risk? */
    const char *why = NULL;
    int stay;
    /* out for delivery today, or waiting at a pickup point: arriving,
     * however slow the way was */
    bool arriving = p.reason == CS_PR_OUT_FOR_DELIVERY || p.reason == CS_PR_PICKUP_READY;
    /* late: the first promise's last day has passed, or the model, with
     * enough deliveries behind it to judge (p.yardstick), puts the day
     * after it -- a shop without that history is not told its own
     * promise is late by a cautious default */
    cs_ms_t due = r.first_to;
    if ((rc = own_window_end(u, &t, &q, &due)))
        return rc;
    /* kept for the journeys: risk.late judges by the same day */
    r.own_to = due != r.first_to ? due : 0;
    bool passed = due && cs_tz_day(w->o.tz, u->now) > cs_tz_day(w->o.tz, due);
    bool behind = due && (passed || (p.yardstick && p.point > due));
    if (!delivered && !arriving) {
        /* stuck says more than "slower than usual" */
        bool plain = p.reason == CS_PR_NONE || p.reason == CS_PR_SLOW_TRANSIT;
        /* and so does the carrier's word that it holds the parcel at a
         * depot; a reason of the scan's own (customs, an address) more */
        bool depot = t.last_reason == CS_INCIDENT_HELD_AT_DEPOT;
        if (plain && (stay = stuck_days(w, &t, u->now)) > 0) {
            why = cs_promise_reason_name(CS_PR_STUCK);
            r.quiet_days = stay;
        } else if (depot && plain) {
            why = cs_promise_reason_name(CS_PR_HELD_AT_DEPOT);
        } else if (p.at_risk || risky_reason(p.reason)) {
            why = cs_promise_reason_name(p.reason);
        } else if (depot) {
            why = cs_promise_reason_name(CS_PR_HELD_AT_DEPOT);
        } else if (behind) {
            why = cs_promise_reason_name(CS_PR_LATE);
        }
        /* a window that moved for no reason of its own (or only for
         * slowness, when the watch saw it stuck or held) moved for this
         * one (recorded with the move, said on the page) */
        if (why && (p.reason == CS_PR_NONE ||
                    (plain && (strcmp(why, "stuck") == 0 || strcmp(why, "held_at_depot") == 0))))
            cs_strlcpy(r.reason, why, sizeof r.reason);
    }
    if (why) {
        bool fresh = !was.at_risk || strcmp(was.risk_reason, why) != 0;
        if (!was.at_risk)
            r.risk_at = u->now;
        r.at_risk = true;
        cs_strlcpy(r.risk_reason, why, sizeof r.risk_reason);
        /* what a scan said is news only while the scan is; silence,
         * lateness and a customs clearance that has gone on too long
         * (CS_PROMISE_CLEARANCE_DAYS) are news now */
        bool cleared_slowly = p.reason == CS_PR_CUSTOMS && t.last_status != CS_TRACK_EXCEPTION;
        bool from_scan = p.reason != CS_PR_NO_SCAN && p.reason != CS_PR_MISSED_HANDOVER &&
                         p.reason != CS_PR_SLOW_TRANSIT && !cleared_slowly &&
                         strcmp(why, cs_promise_reason_name(CS_PR_LATE)) != 0 &&
                         strcmp(why, cs_promise_reason_name(CS_PR_STUCK)) != 0;
        bool placed_before = r.comp_at && strcmp(r.comp_note, NOTE_PLACED_BEFORE) == 0;
        bool news = from_scan ? !t.last_scan_at || u->now - t.last_scan_at <= FRESH_MS
                              : !placed_before;
        /* an address problem needs the customer: told even past the cap,
         * within two more */
        bool needs_customer = strcmp(why, cs_promise_reason_name(CS_PR_ADDRESS)) == 0;
        int cap = w->o.max_risk_signals + (needs_customer ? 2 : 0);
        if (fresh && news && r.risk_events < cap) {
            r.risk_events++;
            json_t *props = json_pack("{s:s,s:i,s:b}", "risk", why, "quiet_days", r.quiet_days,
                                      "late", behind);
            if (!props)
                return cs_errf(u->err, CS_ERR_NOMEM, "out of memory");
            if ((rc = emit_signal(u, "risk", CS_WATCH_AT_RISK, &r, r.risk_events, props)))
                return rc;
            u->d.at_risk++;
        }
    } else {
        r.at_risk = false;
    }

    /* broken? A parcel waiting at a pickup point (or collected there)
     * arrived when it got there: the days it waits for the customer are
     * not the shop's */
    if (r.first_to) {
        cs_ms_t arrived = t.pickup_since ? t.pickup_since : delivered ? t.delivered_at : u->now;
        int late = cs_workdays_late(w->o.tz, w->o.calendar, r.first_to, arrived);
        if (late > 0) {
            if (!r.broken_at)
                r.broken_at = u->now;
            r.late_days = late;
            /* (an order first seen past FRESH_MS was decided above: a
             * watched one's delivery reported days late is still owed;
             * one at a pickup point has arrived, its lateness final).
             * Undelivered, a parcel sent again waits as long past its own
             * window (due) as any past the first promise: the one gone
             * back alone owes no code while the new one is on time */
            bool waited = late >= w->o.comp_wait_days &&
                          (due == r.first_to ||
                           cs_workdays_late(w->o.tz, w->o.calendar, due, arrived) >=
                               w->o.comp_wait_days);
            if (!r.comp_at && (delivered || t.pickup_since || waited)) {
                if ((rc = compensate(u, &t, &r)))
                    return rc;
                json_t *props = json_pack("{s:i,s:b,s:s?,s:s}", "late_days", late, "delivered",
                                          delivered, "code", r.comp_code[0] ? r.comp_code : NULL,
                                          "note", r.comp_note);
                if (!props)
                    return cs_errf(u->err, CS_ERR_NOMEM, "out of memory");
                if ((rc = emit_signal(u, "broken", "promise_broken", &r, 1, props)))
                    return rc;
                u->d.broken++;
            }
        }
    }

    /* what next */
    if (delivered || returned) {
        r.closed = true;
        r.check_at = 0;
        cs_strlcpy(r.closed_shipment, t.shipment_id, sizeof r.closed_shipment);
    } else {
        /* the next local midnight (lateness counts in days), spread over
         * its first half hour, or sooner for silence */
        uint64_t h = cs_hash_str(CS_HASH_INIT, order_id);
        cs_ms_t midnight = cs_tz_day_start(w->o.tz, cs_tz_day(w->o.tz, u->now) + 1) +
                           (cs_ms_t)(h % 1800) * 1000;
        r.check_at = u->now + RECHECK_MS < midnight ? u->now + RECHECK_MS : midnight;
    }
    bool moved = !have || was.from != r.from || was.to != r.to || strcmp(was.reason, r.reason);
    if (moved)
        u->d.moves++;
    /* nothing changed and a re-check is still armed: no write (a scan in
     * the middle of a journey moves nothing; the armed check re-arms) */
    if (have && !moved && was.point == r.point && was.quiet_days == r.quiet_days &&
        was.level == r.level && was.at_risk == r.at_risk &&
        strcmp(was.risk_reason, r.risk_reason) == 0 && was.risk_events == r.risk_events &&
        was.broken_at == r.broken_at && was.late_days == r.late_days &&
        was.comp_at == r.comp_at && was.closed == r.closed && was.own_to == r.own_to &&
        was.check_at > u->now &&
        (r.closed || r.check_at >= was.check_at))
        return CS_OK;
    return cs_store_call(u->s, promise_put, &r, moved ? r.reason : NULL, u->err);
}

static void add_stats(cs_watch_t *w, const cs_watch_stats_t *d)
{
    pthread_mutex_lock(&w->mu);
    w->stats.updates += d->updates;
    w->stats.moves += d->moves;
    w->stats.at_risk += d->at_risk;
    w->stats.broken += d->broken;
    w->stats.codes += d->codes;
    w->stats.comp_cost += d->comp_cost;
    w->stats.over_budget += d->over_budget;
    pthread_mutex_unlock(&w->mu);
}

cs_rc cs_watch_order(cs_watch_t *w, cs_store_t *s, const char *order_id, cs_err_t *err)
{
    upd_t u = { w, s, cs_clock_now(w->o.clock), err, { 0 } };
    cs_rc rc = update(&u, order_id);
    if (!rc)
        add_stats(w, &u.d);
    return rc;
}

/* ---- the hook ---- */

typedef struct collect {
    cs_map_t seen;
    char **ids;
    size_t n, cap;
    size_t events; /* given by the log */
} collect_t;

static cs_rc collect_fn(int64_t seq, const char *order_id, const char *customer_id,
                        const char *body, size_t len, void *arg)
{
    collect_t *c = arg;
    c->events++;
    (void)seq;
    (void)customer_id;
    (void)body;
    (void)len;
    if (!order_id || cs_map_get(&c->seen, order_id))
        return CS_OK;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        char **p = cs_realloc(c->ids, cap * sizeof *p);
        if (!p)
            return CS_ERR_NOMEM;
        c->ids = p;
        c->cap = cap;
    }
    if (cs_map_put(&c->seen, order_id, (void *)1))
        return CS_ERR_NOMEM;
    if (!(c->ids[c->n] = cs_strdup(order_id)))
        return CS_ERR_NOMEM;
    c->n++;
    return CS_OK;
}

/* The cursor: where the watch left off, or the log's start the first
 * time (orders within the horizon are back-filled; what is history by then
 * is recorded without signals, see update). */
static cs_rc load_cursor(cs_watch_t *w, cs_store_t *s, cs_err_t *err)
{
    cs_rc rc = cs_store_call(s, cursor_get, CURSOR, &w->cursor, err);
    if (rc == CS_ERR_NOTFOUND)
        w->cursor = 0;
    else if (rc)
        return rc;
    w->saved = w->cursor;
    w->loaded = true;
    return CS_OK;
}

/* Persist the cursor in a relaxed transaction (the watch's state is
 * derived: a pass lost to a power cut is done again, and its decisions
 * are idempotent -- signals by their event ids, codes by their keys). */
static cs_rc save_cursor(cs_watch_t *w, cs_store_t *s, cs_ms_t now, cs_err_t *err)
{
    cs_rc rc = cs_store_begin_relaxed(s, err);
    if (rc)
        return rc;
    if ((rc = cs_store_call(s, cursor_set, CURSOR, w->cursor, err)) ||
        (rc = cs_store_commit(s, err))) {
        cs_store_rollback(s);
        return rc;
    }
    w->saved = w->cursor;
    w->saved_at = now;
    return CS_OK;
}

/* The orders of the next events, then due re-checks, in one relaxed
 * transaction -- none when there is nothing to update: the cursor then
 * moves in memory and is saved every few seconds (after a crash the
 * events since are looked at again, which changes nothing). *more when
 * either had more waiting, or the pass signalled (its signals are passed
 * over by the next). */
static cs_rc pass(cs_watch_t *w, cs_store_t *s, bool *more, cs_err_t *err)
{
    collect_t c;
    memset(&c, 0, sizeof c);
    cs_map_init(&c.seen);
    upd_t u = { w, s, cs_clock_now(w->o.clock), err, { 0 } };
    const uint32_t types = 1u << CS_EV_ORDER_PLACED | 1u << CS_EV_ORDER_CANCELLED |
                           1u << CS_EV_SHIPMENT_CREATED | 1u << CS_EV_SHIPMENT_CANCELLED |
                           1u << CS_EV_TRACKING_EVENT;
    cs_promise_rec_t *due = w->due;
    size_t ndue = 0;
    *more = false;
    /* several nodes: start where any of them got to (what two nodes look
     * at twice changes nothing, but costs) */
    if (s->ops->shared) {
        int64_t stored = 0;
        cs_err_t ignore;
        if (cs_store_call(s, cursor_get, CURSOR, &stored, &ignore) == CS_OK &&
            stored > w->cursor)
            w->cursor = w->saved = stored;
    }
    int64_t examined = w->cursor;
    cs_rc rc = cs_store_call(s, events_after, w->cursor, EVENTS_PER_PASS, types, collect_fn, &c,
                             &examined, err);
    if (rc == CS_ERR_NOMEM)
        cs_errf(err, rc, "out of memory");
    if (!rc)
        rc = cs_store_call(s, promises_due, u.now + 1, due, DUE_PER_PASS, &ndue, err);
    if (rc)
        goto out;
    if (!c.n && !ndue) {
        w->cursor = examined;
        if (w->cursor != w->saved && u.now - w->saved_at >= CURSOR_SAVE_MS)
            rc = save_cursor(w, s, u.now, err);
        goto out;
    }
    if ((rc = cs_store_begin_relaxed(s, err)))
        goto out;
    for (size_t i = 0; !rc && i < c.n; i++)
        rc = update(&u, c.ids[i]);
    for (size_t i = 0; !rc && i < ndue; i++)
        if (!cs_map_get(&c.seen, due[i].order_id))
            rc = update(&u, due[i].order_id);
    if (!rc)
        rc = cs_store_call(s, cursor_set, CURSOR, examined, err);
    if (!rc)
        rc = cs_store_commit(s, err);
    if (rc) {
        cs_store_rollback(s);
        goto out;
    }
    /* (and once more after signals: the pass looked at the log up to
     * where it began, and its own signals, which it does not follow, are
     * passed over then -- its position, consonance_watch_seq, reaches the
     * log's end) */
    *more = c.events == EVENTS_PER_PASS || ndue == DUE_PER_PASS || u.d.at_risk || u.d.broken;
    w->cursor = w->saved = examined;
    w->saved_at = u.now;
    add_stats(w, &u.d);
out:
    if (!rc) {
        pthread_mutex_lock(&w->mu);
        w->stats.seq = w->cursor;
        pthread_mutex_unlock(&w->mu);
    }
    for (size_t i = 0; i < c.n; i++)
        cs_free(c.ids[i]);
    cs_free(c.ids);
    cs_map_free(&c.seen);
    return rc;
}

cs_rc cs_watch_hook(cs_store_t *s, void *arg, cs_ms_t *next, cs_err_t *err)
{
    cs_watch_t *w = arg;
    *next = 0;
    cs_rc rc;
    if (!w->loaded && (rc = load_cursor(w, s, err)))
        return rc;
    bool more;
    if ((rc = pass(w, s, &more, err)))
        return rc;
    if (more) {
        *next = cs_clock_now(w->o.clock); /* again, after any waiting group */
        return CS_OK;
    }
    return cs_store_call(s, promise_next, next, err);
}
