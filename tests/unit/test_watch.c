/* test_watch.c -- the order watch against a real SQLite store with a manual
 * clock: first and current promise with their moves, at-risk signals on
 * failed attempts, exceptions and silence (noticed by a durable re-check,
 * also after a restart), compensation sized by lateness, value and tier
 * within the daily budget, issued once. Time moves; nothing sleeps.
 *
 * The lane: DHL from Saxony to Berlin (DE-SN to DE-BE) takes two working days,
 * learned from 40 past orders. 2026-03-02 is a Monday. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/journeys.h"
#include "journey/journey.h"
#include "tracking/watch.h"
#include "test_store.h"

typedef struct world {
    cs_clock_manual_t clock;
    cs_store_t *s;
    cs_tracker_t *tracker;
    cs_watch_t *watch;
    cs_watch_opts_t wo;
    char path[64];
    int ev_n;
} world_t;

static world_t W;

static cs_ms_t at(const char *t)
{
    cs_ms_t v;
    assert_true(cs_time_parse(t, &v));
    return v;
}

static void event_at(const char *type, cs_ms_t when, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void event_at(const char *type, cs_ms_t when, const char *fmt, ...)
{
    char data[2048], buf[4096], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(data, sizeof data, fmt, ap);
    va_end(ap);
    cs_time_format(when, ts, sizeof ts);
    snprintf(buf, sizeof buf,
             "{\"event_id\":\"ev-%d\",\"type\":\"%s\",\"occurred_at\":\"%s\",\"data\":%s}",
             ++W.ev_n, type, ts, data);
    cs_event_t *ev;
    cs_err_t err;
    if (cs_event_parse(buf, strlen(buf), &ev, &err))
        fail_msg("event %s: %s", buf, err.msg);
    cs_ingest_outcome_t oc;
    int64_t seq;
    assert_int_equal(cs_store_begin(W.s, &err), CS_OK);
    assert_int_equal(cs_store_ingest(W.s, ev, when, &oc, &seq, &err), CS_OK);
    assert_int_equal(cs_store_commit(W.s, &err), CS_OK);
    cs_event_free(&ev);
}

static cs_ms_t now(void) { return cs_clock_now(&W.clock.clock); }

/* An order in `currency` with `shipping` paid (decimal strings). */
static void order_in(const char *id, const char *customer, const char *currency,
                     const char *shipping, const char *total, const char *promise)
{
    char extra[256] = "";
    if (promise)
        snprintf(extra, sizeof extra, ",\"promised_delivery\":%s", promise);
    event_at("order.placed", now(),
             "{\"id\":\"%s\",\"customer_id\":\"%s\",\"currency\":\"%s\","
             "\"totals\":{\"shipping\":\"%s\",\"total\":\"%s\"},"
             "\"items\":[{\"sku\":\"K\",\"name\":\"Kaffee\",\"unit_price\":\"%s\",\"quantity\":1}]%s}",
             id, customer, currency, shipping, total, total, extra);
}

static void order(const char *id, const char *customer, const char *total, const char *promise)
{
    order_in(id, customer, "EUR", "4.90", total, promise);
}

/* The promise most orders here carry: delivered on Tuesday
 * 2026-03-03, the day after the Monday the tests start on. */
static const char *const tuesday =
    "{\"earliest\":\"2026-03-03T00:00:00Z\",\"latest\":\"2026-03-03T20:00:00Z\"}";

static void ship(const char *id)
{
    event_at("shipment.created", now(),
             "{\"id\":\"S%s\",\"order_id\":\"%s\",\"carrier\":\"dhl\",\"tracking_number\":\"T%s\","
             "\"origin\":{\"country\":\"DE\",\"region\":\"SN\"},"
             "\"destination\":{\"country\":\"DE\",\"postal_code\":\"10115\"}}",
             id, id, id);
}

static void scan(const char *id, const char *status, const char *reason)
{
    char r[64] = "";
    if (reason)
        snprintf(r, sizeof r, ",\"reason\":\"%s\"", reason);
    event_at("tracking.event", now(),
             "{\"shipment_id\":\"S%s\",\"carrier\":\"dhl\",\"tracking_number\":\"T%s\","
             "\"status\":\"%s\"%s}",
             id, id, status, r);
}

static void run_watch(void)
{
    cs_err_t err;
    cs_ms_t next;
    if (cs_watch_hook(W.s, W.watch, &next, &err))
        fail_msg("watch: %s", err.msg);
}

static cs_promise_rec_t rec(const char *id)
{
    cs_promise_rec_t r;
    cs_err_t err;
    assert_int_equal(cs_store_call(W.s, promise_get, id, &r, &err), CS_OK);
    return r;
}

typedef struct sig_count {
    const char *name;
    const char *order;
    int n;
} sig_count_t;

static cs_rc count_fn(int64_t seq, const char *order_id, const char *customer_id,
                      const char *body, size_t len, void *ud)
{
    sig_count_t *c = ud;
    char want[64];
    (void)seq;
    (void)customer_id;
    (void)len;
    snprintf(want, sizeof want, "\"name\":\"%s\"", c->name);
    if (strstr(body, want) && order_id && strcmp(order_id, c->order) == 0)
        c->n++;
    return CS_OK;
}

static int signals(const char *name, const char *order_id)
{
    sig_count_t c = { name, order_id, 0 };
    cs_err_t err;
    int64_t examined;
    assert_int_equal(cs_store_call(W.s, events_after, 0, 100000, 1u << CS_EV_SIGNAL, count_fn,
                                   &c, &examined, &err),
                     CS_OK);
    return c.n;
}

static void open_watch(void)
{
    cs_err_t err;
    assert_int_equal(cs_watch_new(&W.wo, &W.watch, &err), CS_OK);
}

/* A restart: a new watch on W.wo as it is now (options a test changed
 * count), knowing nothing but what the store holds. */
static void reopen_watch(void)
{
    cs_watch_free(W.watch);
    open_watch();
}

/* A new model, learned from the store as it is now (history added by a
 * test counts) or, with !learn, from nothing; and a new watch on it. */
static void new_model(bool learn)
{
    cs_err_t err;
    cs_watch_free(W.watch);
    cs_tracker_free(W.tracker);
    cs_promise_opts_t po = { .tz = W.wo.tz };
    assert_int_equal(cs_tracker_new(&po, &W.tracker, &err), CS_OK);
    if (learn)
        assert_int_equal(cs_tracker_sync(W.tracker, W.s, &err), CS_OK);
    W.wo.tracker = W.tracker;
    open_watch();
}

/* A new model learned from the store as it is now, and a new watch on it
 * that has run once. */
static void relearn(void)
{
    new_model(true);
    run_watch();
}

/* An in-transit scan of order id's parcel at a place in Germany. */
static void scan_at(const char *id, const char *city, const char *postal)
{
    event_at("tracking.event", now(),
             "{\"shipment_id\":\"S%s\",\"carrier\":\"dhl\",\"tracking_number\":\"T%s\","
             "\"status\":\"in_transit\",\"location\":{\"city\":\"%s\","
             "\"postal_code\":\"%s\",\"country\":\"DE\"}}",
             id, id, city, postal);
}

static int setup(void **state)
{
    (void)state;
    memset(&W, 0, sizeof W);
    assert_int_equal(test_store_fresh(W.path, sizeof W.path, "/tmp/cs_watch_XXXXXX"), 0);
    char target[512];
    test_store_target(target, sizeof target, W.path);
    cs_store_opts_t so;
    cs_store_opts_default(&so);
    so.durable = false;
    cs_err_t err;
    if (cs_store_open(target, &so, &W.s, &err))
        fail_msg("%s", err.msg);
    const cs_tz_t *tz = cs_tz_get_or_utc("Europe/Berlin");
    /* history: Mondays 09:00, shipped at once, delivered Wednesday */
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof id, "h%d", i);
        cs_clock_manual_init(&W.clock, at("2026-02-23T08:00:00Z") - (cs_ms_t)(i % 6) * 7 * CS_MS_PER_DAY);
        order(id, "hist", "20.00", NULL);
        ship(id);
        cs_clock_manual_advance(&W.clock, 2 * CS_MS_PER_DAY + 3 * 3600000LL);
        scan(id, "delivered", NULL);
    }
    cs_promise_opts_t po = { .tz = tz };
    assert_int_equal(cs_tracker_new(&po, &W.tracker, &err), CS_OK);
    assert_int_equal(cs_tracker_sync(W.tracker, W.s, &err), CS_OK);
    assert_int_equal(cs_tracker_learned(W.tracker), 40);
    cs_clock_manual_init(&W.clock, at("2026-03-02T08:00:00Z")); /* Monday 09:00 Berlin */
    cs_watch_opts_default(&W.wo);
    W.wo.tracker = W.tracker;
    W.wo.clock = &W.clock.clock;
    W.wo.tz = tz;
    W.wo.comp_daily_budget = 10000; /* 100.00 a day */
    open_watch();
    run_watch(); /* the first run back-fills the history, quietly */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cs_watch_free(W.watch);
    cs_tracker_free(W.tracker);
    cs_store_close(&W.s);
    char p[96];
    unlink(W.path);
    snprintf(p, sizeof p, "%s-wal", W.path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", W.path);
    unlink(p);
    return 0;
}

static void ymd(cs_ms_t t, char *out)
{
    cs_tz_ymd(W.wo.tz, t, out, 16);
}

static void test_backfill_is_quiet(void **state)
{
    (void)state;
    /* the history (delivered in time, weeks ago) was back-filled: first
     * promise as of its purchase, closed, nothing said */
    cs_promise_rec_t r = rec("h1");
    assert_true(r.closed);
    assert_int_equal(r.check_at, 0);
    assert_string_equal(r.reason, "delivered");
    assert_string_equal(r.comp_note, "placed before it was watched"); /* we promised nothing */
    assert_string_equal(r.comp_code, "");
    cs_watch_stats_t st;
    cs_watch_stats(W.watch, &st);
    assert_int_equal(st.at_risk + st.broken + st.codes, 0);
    /* an old late delivery: recorded as broken, but no code and no signal */
    cs_clock_manual_set(&W.clock, at("2026-01-05T08:00:00Z"));
    order("old", "c-old", "80.00",
          "{\"earliest\":\"2026-01-06T00:00:00Z\",\"latest\":\"2026-01-06T12:00:00Z\"}");
    ship("old");
    cs_clock_manual_set(&W.clock, at("2026-01-09T10:00:00Z"));
    scan("old", "exception", "damaged");
    scan("old", "delivered", NULL);
    cs_clock_manual_set(&W.clock, at("2026-03-02T08:00:00Z"));
    run_watch();
    r = rec("old");
    assert_true(r.broken_at > 0);
    assert_int_equal(r.late_days, 3);
    assert_string_equal(r.comp_code, "");
    assert_string_equal(r.comp_note, "placed before it was watched");
    assert_int_equal(signals("promise_broken", "old"), 0);
    assert_int_equal(signals("delivery_at_risk", "old"), 0);
}

/* A scan of id in transit at city, at the clock's time. */
static void scan_in(const char *id, const char *city)
{
    event_at("tracking.event", now(),
             "{\"shipment_id\":\"S%s\",\"carrier\":\"dhl\",\"tracking_number\":\"T%s\","
             "\"status\":\"in_transit\",\"location\":{\"city\":\"%s\",\"country\":\"DE\"}}",
             id, id, city);
}

static void test_stuck_at_one_place(void **state)
{
    (void)state;
    /* scanned every 12 hours, always at the Cologne depot: stuck once it
     * has been there two days; a parcel that moves on is not */
    order("st", "c-st", "30.00", NULL);
    order("mv", "c-mv", "30.00", NULL);
    ship("st");
    ship("mv");
    static const char *const route[] = { "Leipzig", "Kassel", "Dortmund", "Essen", "Bonn" };
    for (int i = 0; i < 5; i++) {
        cs_clock_manual_advance(&W.clock, 12 * 3600000LL);
        scan_in("st", "Köln");
        scan_in("mv", route[i]);
        run_watch();
        if (i < 4)
            assert_false(rec("st").at_risk && strcmp(rec("st").risk_reason, "stuck") == 0);
    }
    /* Monday 09:00 + 60 h: Wednesday 21:00, two days at Köln since Monday 21:00 */
    cs_promise_rec_t r = rec("st");
    assert_true(r.at_risk);
    assert_string_equal(r.risk_reason, "stuck");
    assert_int_equal(r.quiet_days, 2);
    assert_int_equal(signals("delivery_at_risk", "st"), 1);
    assert_false(strcmp(rec("mv").risk_reason, "stuck") == 0);
    /* the text says where it has been and how long */
    char buf[160];
    assert_string_equal(cs_promise_reason_text(CS_PR_STUCK, "en", 2, buf, sizeof buf),
                        "The parcel has been at the same carrier location for 2 days.");
    /* it moves on: no longer stuck */
    cs_clock_manual_advance(&W.clock, 6 * 3600000LL);
    scan_in("st", "Bonn");
    run_watch();
    assert_false(strcmp(rec("st").risk_reason, "stuck") == 0 && rec("st").at_risk);
}

/* Customs clearance is on the way of every parcel that crosses a border:
 * no delay notice for it, until it has lasted CS_PROMISE_CLEARANCE_DAYS
 * working days from its first clearance scan (a later one does not start
 * the count again); then it is a customs delay, told though its latest
 * scan is older than a fresh one. */
static void test_customs_clearance_is_routine(void **state)
{
    (void)state;
    order("cu", "c-cu", "30.00", NULL);
    ship("cu");
    cs_clock_manual_advance(&W.clock, 3600000LL); /* Monday 10:00 */
    scan("cu", "in_transit", "customs");
    run_watch();
    cs_promise_rec_t r = rec("cu");
    assert_false(r.at_risk);
    assert_string_equal(r.reason, "in_customs");
    cs_clock_manual_advance(&W.clock, 24 * 3600000LL); /* Tuesday 10:00 */
    scan("cu", "in_transit", "customs");
    run_watch();
    assert_false(rec("cu").at_risk);
    assert_int_equal(signals("delivery_at_risk", "cu"), 0);
    cs_clock_manual_advance(&W.clock, 23 * 3600000LL); /* Wednesday 09:00 */
    scan("cu", "in_transit", "customs");
    cs_clock_manual_advance(&W.clock, 90 * 60000LL);
    run_watch();
    r = rec("cu");
    assert_true(r.at_risk);
    assert_string_equal(r.risk_reason, "customs");
    assert_string_equal(r.reason, "customs");
    assert_int_equal(signals("delivery_at_risk", "cu"), 1);
    /* cleared: on its way again */
    cs_clock_manual_advance(&W.clock, 3600000LL);
    scan("cu", "in_transit", NULL);
    run_watch();
    assert_false(strcmp(rec("cu").reason, "customs") == 0);
}

/* A scan of id in transit at city, with reason (or none). */
static void scan_in_for(const char *id, const char *city, const char *reason)
{
    char r[64] = "";
    if (reason)
        snprintf(r, sizeof r, ",\"reason\":\"%s\"", reason);
    event_at("tracking.event", now(),
             "{\"shipment_id\":\"S%s\",\"carrier\":\"dhl\",\"tracking_number\":\"T%s\","
             "\"status\":\"in_transit\",\"location\":{\"city\":\"%s\",\"country\":\"DE\"}%s}",
             id, id, city, r);
}

/* The clearance count runs through the hub's own facility scans (no
 * reason, same place); a scan elsewhere ends it: the export clearance at
 * the origin does not count toward the import clearance. */
static void test_customs_count_through_hub_scans(void **state)
{
    (void)state;
    order("hb", "c-hb", "30.00", NULL);
    order("ex", "c-ex", "30.00", NULL);
    ship("hb");
    ship("ex");
    cs_clock_manual_advance(&W.clock, 3600000LL); /* Monday 10:00 */
    scan_in_for("hb", "Frankfurt", "customs");
    scan_in_for("ex", "Hamburg", "customs");
    run_watch();
    assert_string_equal(rec("hb").reason, "in_customs");
    cs_clock_manual_advance(&W.clock, 24 * 3600000LL); /* Tuesday 10:00 */
    scan_in_for("hb", "Frankfurt", NULL);
    scan_in_for("ex", "Leipzig", NULL);
    run_watch();
    cs_clock_manual_advance(&W.clock, 23 * 3600000LL); /* Wednesday 09:00 */
    scan_in_for("hb", "Frankfurt", "customs");
    scan_in_for("ex", "Frankfurt", "customs");
    cs_clock_manual_advance(&W.clock, 90 * 60000LL);
    run_watch();
    /* in the Frankfurt hub since Monday: two working days */
    cs_promise_rec_t r = rec("hb");
    assert_true(r.at_risk);
    assert_string_equal(r.risk_reason, "customs");
    assert_int_equal(signals("delivery_at_risk", "hb"), 1);
    /* cleared in Hamburg, moved on, in clearance again since this morning */
    r = rec("ex");
    assert_false(r.at_risk);
    assert_string_equal(r.reason, "in_customs");
    assert_int_equal(signals("delivery_at_risk", "ex"), 0);
}

/* A parcel far slower than its lane (two working days) that the carrier
 * then says is held at a depot: the depot is the reason told, more than
 * "slower than usual". */
static void test_depot_hold_over_slowness(void **state)
{
    (void)state;
    order("dp", "c-dp", "30.00", NULL);
    ship("dp");
    static const char *const route[] = { "Leipzig", "Kassel", "Dortmund", "Essen", "Bonn",
                                         "Trier", "Mainz", "Fulda" };
    for (int i = 0; i < 8; i++) {
        cs_clock_manual_advance(&W.clock, 12 * 3600000LL);
        scan_in("dp", route[i]);
        run_watch();
    }
    cs_promise_rec_t r = rec("dp");
    assert_true(r.at_risk);
    assert_string_equal(r.risk_reason, "slow_transit");
    cs_clock_manual_advance(&W.clock, 3600000LL);
    scan("dp", "in_transit", "held_at_depot");
    run_watch();
    r = rec("dp");
    assert_true(r.at_risk);
    assert_string_equal(r.risk_reason, "held_at_depot");
    assert_string_equal(r.reason, "held_at_depot");
    assert_int_equal(signals("delivery_at_risk", "dp"), 2);
    /* on its way again: slow, no longer held */
    cs_clock_manual_advance(&W.clock, 12 * 3600000LL);
    scan_in("dp", "Gera");
    run_watch();
    assert_string_equal(rec("dp").risk_reason, "slow_transit");
}

static void test_late_placed_order_is_quiet(void **state)
{
    (void)state;
    /* an order placed 30 days ago reaches the store only now, never
     * shipped: late by what the model would have said at checkout, but
     * nobody promised it anything */
    cs_ms_t t0 = now();
    cs_clock_manual_set(&W.clock, t0 - 30 * CS_MS_PER_DAY);
    order("bf", "c-bf", "80.00", NULL);
    cs_clock_manual_set(&W.clock, t0);
    run_watch();
    cs_promise_rec_t r = rec("bf");
    assert_false(r.closed);
    assert_string_equal(r.comp_note, "placed before it was watched");
    assert_string_equal(r.comp_code, "");
    assert_int_equal(signals("delivery_at_risk", "bf"), 0);
    assert_int_equal(signals("promise_broken", "bf"), 0);
    /* a day on, still quiet about lateness; what a new scan says is news */
    cs_clock_manual_advance(&W.clock, CS_MS_PER_DAY);
    ship("bf");
    run_watch();
    assert_int_equal(signals("delivery_at_risk", "bf"), 0);
    scan("bf", "exception", "damaged");
    run_watch();
    assert_int_equal(signals("delivery_at_risk", "bf"), 1);
    cs_clock_manual_advance(&W.clock, CS_MS_PER_DAY);
    scan("bf", "delivered", NULL);
    run_watch();
    r = rec("bf");
    assert_true(r.closed);
    assert_string_equal(r.comp_code, "");
    assert_int_equal(signals("promise_broken", "bf"), 0);
}

static void test_first_and_current(void **state)
{
    (void)state;
    char d[16];
    order("o1", "c1", "30.00", NULL);
    run_watch();
    cs_promise_rec_t r = rec("o1");
    assert_string_equal(r.first_source, "model");
    ymd(r.first_to, d);
    assert_string_equal(d, "2026-03-04"); /* Monday + two working days */
    assert_int_equal(r.first_to, r.to);
    assert_false(r.at_risk);
    assert_true(r.check_at > now());
    /* hand-over and a scan: the first promise stays, the current follows */
    cs_clock_manual_advance(&W.clock, 6 * 3600000LL);
    ship("o1");
    scan("o1", "in_transit", NULL);
    cs_clock_manual_advance(&W.clock, 24 * 3600000LL); /* Tuesday 15:00 */
    scan("o1", "out_for_delivery", NULL);
    run_watch();
    r = rec("o1");
    ymd(r.to, d);
    assert_string_equal(d, "2026-03-03");
    assert_string_equal(r.reason, "out_for_delivery");
    /* handed over and under way: the model counts it for its lane */
    assert_int_equal(cs_tracker_in_flight_count(W.tracker), 1);
    ymd(r.first_to, d);
    assert_string_equal(d, "2026-03-04");
    /* the moves are in the order view, with their reasons */
    json_t *v;
    cs_err_t err;
    assert_int_equal(cs_store_order_view(W.s, "o1", &v, &err), CS_OK);
    json_t *moves = json_object_get(json_object_get(v, "promise"), "moves");
    assert_true(json_array_size(moves) >= 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(moves, json_array_size(moves) - 1),
                                          "reason")),
        "out_for_delivery");
    json_decref(v);
    /* delivered in time: closed, nothing to re-check, no compensation */
    scan("o1", "delivered", NULL);
    run_watch();
    r = rec("o1");
    assert_true(r.closed);
    assert_int_equal(cs_tracker_in_flight_count(W.tracker), 0);
    assert_int_equal(r.check_at, 0);
    assert_int_equal(r.broken_at, 0);
    assert_int_equal(r.comp_at, 0);
    assert_int_equal(signals("delivery_at_risk", "o1"), 0);
}

static void test_shop_promise_is_first(void **state)
{
    (void)state;
    char d[16];
    order("o2", "c2", "30.00",
          "{\"earliest\":\"2026-03-05T00:00:00Z\",\"latest\":\"2026-03-06T20:00:00Z\"}");
    run_watch();
    cs_promise_rec_t r = rec("o2");
    assert_string_equal(r.first_source, "shop");
    ymd(r.first_from, d);
    assert_string_equal(d, "2026-03-05");
    ymd(r.first_to, d);
    assert_string_equal(d, "2026-03-06");
    /* a shop that promised Tuesday where the lane takes till Wednesday:
     * late from the start, and the window says why it is where it is */
    order("o2b", "c2", "30.00", tuesday);
    run_watch();
    r = rec("o2b");
    assert_true(r.at_risk);
    assert_string_equal(r.risk_reason, "late");
    assert_string_equal(r.reason, "late");
}

/* An order that says how it will be sent (order.placed's shipping) gets its
 * lane's first promise before any shipment exists; one that does not gets
 * the shop-wide one. */
static void test_shipping_plan_gives_the_lane(void **state)
{
    (void)state;
    char d[16];
    /* a slow lane's history: GLS from Saxony to Austria, six days */
    cs_ms_t t0 = now();
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof id, "g%d", i);
        cs_clock_manual_set(&W.clock, at("2026-02-23T08:00:00Z") - (cs_ms_t)(i % 6) * 7 * CS_MS_PER_DAY);
        order(id, "hist", "20.00", NULL);
        event_at("shipment.created", now(),
                 "{\"id\":\"S%s\",\"order_id\":\"%s\",\"carrier\":\"gls\",\"tracking_number\":\"T%s\","
                 "\"origin\":{\"country\":\"DE\",\"region\":\"SN\"},"
                 "\"destination\":{\"country\":\"AT\",\"postal_code\":\"1010\"}}",
                 id, id, id);
        cs_clock_manual_advance(&W.clock, 6 * CS_MS_PER_DAY);
        event_at("tracking.event", now(),
                 "{\"shipment_id\":\"S%s\",\"carrier\":\"gls\",\"tracking_number\":\"T%s\","
                 "\"status\":\"delivered\"}",
                 id, id);
    }
    cs_clock_manual_set(&W.clock, t0);
    cs_err_t err;
    relearn();
    assert_int_equal(cs_tracker_learned(W.tracker), 80);
    /* Monday 09:00: one order says GLS to Vienna, one says nothing */
    event_at("order.placed", now(),
             "{\"id\":\"p1\",\"customer_id\":\"c-p\",\"currency\":\"EUR\","
             "\"shipping\":{\"carrier\":\"GLS\",\"origin\":{\"country\":\"DE\",\"region\":\"SN\"},"
             "\"destination\":{\"country\":\"AT\",\"postal_code\":\"1010\"}},"
             "\"items\":[{\"sku\":\"K\",\"name\":\"Kaffee\",\"unit_price\":\"9.00\",\"quantity\":1}]}");
    order("p2", "c-p", "9.00", NULL);
    run_watch();
    cs_promise_rec_t r1 = rec("p1"), r2 = rec("p2");
    assert_string_equal(r1.first_source, "model");
    ymd(r1.first_to, d);
    assert_true(strcmp(d, "2026-03-09") >= 0); /* six days and more: the lane's */
    ymd(r1.first_from, d);
    assert_true(strcmp(d, "2026-03-09") >= 0);
    /* the shop-wide mix may be as fast as the fast lane */
    ymd(r2.first_from, d);
    assert_true(strcmp(d, "2026-03-09") < 0);
    /* the current promise is the lane's too, until a shipment says otherwise */
    assert_int_equal(r1.to, r1.first_to);
    /* the order view shows the plan, with the carrier as carriers are named */
    json_t *v;
    assert_int_equal(cs_store_order_view(W.s, "p1", &v, &err), CS_OK);
    json_t *plan = json_object_get(v, "shipping");
    assert_string_equal(json_string_value(json_object_get(plan, "carrier")), "gls");
    assert_string_equal(json_string_value(json_object_get(json_object_get(plan, "destination"),
                                                          "country")),
                        "AT");
    json_decref(v);
    assert_int_equal(cs_store_order_view(W.s, "p2", &v, &err), CS_OK);
    assert_true(json_is_null(json_object_get(v, "shipping")));
    json_decref(v);
}

/* A scan in the parcel's destination region narrows its promise, from
 * the store's own deliveries that were scanned there: store, model and
 * watch together. */
static void test_region_scan_narrows(void **state)
{
    (void)state;
    cs_ms_t t0 = now();
    /* forty deliveries that reached Berlin after 2 to 5 days and arrived
     * the next morning */
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof id, "b%d", i);
        cs_clock_manual_set(&W.clock, at("2026-02-16T08:00:00Z") - (cs_ms_t)(i % 5) * 7 * CS_MS_PER_DAY);
        order(id, "hist", "20.00", NULL);
        ship(id);
        cs_clock_manual_advance(&W.clock, (cs_ms_t)(2 + i % 4) * CS_MS_PER_DAY);
        scan_at(id, "Berlin", "12099");
        cs_clock_manual_advance(&W.clock, 18 * 3600000LL);
        scan(id, "delivered", NULL);
    }
    cs_clock_manual_set(&W.clock, t0);
    cs_err_t err;
    relearn();
    /* Monday: ordered, handed over; Tuesday morning a scan in Leipzig */
    order("n1", "c-n", "25.00", NULL);
    ship("n1");
    cs_clock_manual_advance(&W.clock, 24 * 3600000LL);
    scan_at("n1", "Leipzig", "04109");
    run_watch();
    cs_promise_rec_t before = rec("n1");
    assert_string_equal(before.reason, "none");
    /* Tuesday afternoon: in Berlin */
    cs_clock_manual_advance(&W.clock, 6 * 3600000LL);
    scan_at("n1", "Berlin", "10117");
    run_watch();
    cs_promise_rec_t r = rec("n1");
    assert_string_equal(r.reason, "in_region");
    assert_false(r.at_risk);
    char d[16];
    ymd(r.to, d);
    assert_string_equal(d, "2026-03-04"); /* Wednesday */
    assert_true(r.to - r.from < before.to - before.from);
    /* the move is recorded with its reason */
    json_t *v;
    assert_int_equal(cs_store_order_view(W.s, "n1", &v, &err), CS_OK);
    json_t *moves = json_object_get(json_object_get(v, "promise"), "moves");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(moves, json_array_size(moves) - 1),
                                          "reason")),
        "in_region");
    json_decref(v);
    /* a shipment that names only the country: the order's shipping plan
     * says where it goes, for the lane and for the region alike */
    cs_clock_manual_set(&W.clock, t0);
    event_at("order.placed", now(),
             "{\"id\":\"n2\",\"customer_id\":\"c-n\",\"currency\":\"EUR\","
             "\"shipping\":{\"carrier\":\"dhl\",\"destination\":{\"country\":\"DE\","
             "\"postal_code\":\"10115\"}},"
             "\"items\":[{\"sku\":\"K\",\"name\":\"Kaffee\",\"unit_price\":\"9.00\",\"quantity\":1}]}");
    event_at("shipment.created", now(),
             "{\"id\":\"Sn2\",\"order_id\":\"n2\",\"carrier\":\"dhl\",\"tracking_number\":\"Tn2\","
             "\"origin\":{\"country\":\"DE\",\"region\":\"SN\"},\"destination\":{\"country\":\"DE\"}}");
    cs_clock_manual_advance(&W.clock, 30 * 3600000LL);
    scan_at("n2", "Berlin", "10117");
    run_watch();
    r = rec("n2");
    assert_string_equal(r.reason, "in_region");
    assert_int_equal(r.level, 0); /* the lane to Berlin's own parcels */
    ymd(r.to, d);
    assert_string_equal(d, "2026-03-04");
}

/* Deliveries whose shipments name only the country are learned on the
 * lane their orders' shipping plans name. */
static void test_plan_names_the_learned_lane(void **state)
{
    (void)state;
    cs_ms_t t0 = now();
    for (int i = 0; i < 30; i++) {
        char id[16];
        snprintf(id, sizeof id, "v%d", i);
        cs_clock_manual_set(&W.clock, at("2026-02-16T08:00:00Z") - (cs_ms_t)(i % 5) * 7 * CS_MS_PER_DAY);
        event_at("order.placed", now(),
                 "{\"id\":\"%s\",\"customer_id\":\"hist\",\"currency\":\"EUR\","
                 "\"shipping\":{\"carrier\":\"hermes\",\"origin\":{\"country\":\"DE\","
                 "\"region\":\"SN\"},\"destination\":{\"country\":\"DE\",\"postal_code\":\"20095\"}},"
                 "\"items\":[{\"sku\":\"K\",\"name\":\"Kaffee\",\"unit_price\":\"9.00\","
                 "\"quantity\":1}]}",
                 id);
        event_at("shipment.created", now(),
                 "{\"id\":\"S%s\",\"order_id\":\"%s\",\"carrier\":\"hermes\","
                 "\"tracking_number\":\"T%s\",\"destination\":{\"country\":\"DE\"}}",
                 id, id, id);
        cs_clock_manual_advance(&W.clock, 4 * CS_MS_PER_DAY);
        event_at("tracking.event", now(),
                 "{\"shipment_id\":\"S%s\",\"carrier\":\"hermes\",\"tracking_number\":\"T%s\","
                 "\"status\":\"delivered\"}",
                 id, id);
    }
    cs_clock_manual_set(&W.clock, t0);
    relearn();
    cs_promise_query_t q;
    memset(&q, 0, sizeof q);
    q.lane = (cs_lane_t){ "hermes", NULL, "DE-SN", "DE-HH" };
    q.placed_at = q.now = now();
    q.last_status = CS_TRACK__COUNT;
    cs_promise_t p;
    cs_err_t err;
    assert_int_equal(cs_tracker_promise(W.tracker, &q, &p, &err), CS_OK);
    assert_int_equal(p.level, 0);
    char d[16];
    ymd(p.to, d);
    assert_string_equal(d, "2026-03-06"); /* four days, Friday */
}

/* The customer the log lists for the latest signal of an order. */
static cs_rc last_customer_fn(int64_t seq, const char *order_id, const char *customer_id,
                              const char *body, size_t len, void *ud)
{
    (void)seq;
    (void)body;
    (void)len;
    if (order_id && strcmp(order_id, "o7") == 0)
        snprintf(ud, 64, "%s", customer_id ? customer_id : "");
    return CS_OK;
}

/* An order an edit gave to another customer: the watch's signals about it
 * name the order's customer now. A signal naming another customer's order
 * is refused, and the watch, which named the customer the order had when
 * it first saw it, failed on it. */
static void test_order_given_to_another_customer(void **state)
{
    (void)state;
    order("o7", "c7a", "30.00", NULL);
    ship("o7");
    scan("o7", "in_transit", NULL);
    run_watch();
    cs_clock_manual_advance(&W.clock, 3600000LL);
    order("o7", "c7b", "30.00", NULL); /* the shop's edit */
    cs_clock_manual_advance(&W.clock, 26 * 3600000LL);
    scan("o7", "failed_attempt", "recipient_absent");
    run_watch();
    assert_true(rec("o7").at_risk);
    assert_string_equal(rec("o7").customer_id, "c7b");
    assert_int_equal(signals("delivery_at_risk", "o7"), 1);
    char who[64] = "";
    cs_err_t err;
    int64_t examined;
    assert_int_equal(cs_store_call(W.s, events_after, 0, 100000, 1u << CS_EV_SIGNAL,
                                   last_customer_fn, who, &examined, &err),
                     CS_OK);
    assert_string_equal(who, "c7b");
}

static void test_incidents_flag_once_per_reason(void **state)
{
    (void)state;
    order("o3", "c3", "30.00", NULL);
    ship("o3");
    scan("o3", "in_transit", NULL);
    run_watch();
    assert_false(rec("o3").at_risk);
    cs_clock_manual_advance(&W.clock, 26 * 3600000LL);
    scan("o3", "failed_attempt", "recipient_absent");
    run_watch();
    cs_promise_rec_t r = rec("o3");
    assert_true(r.at_risk);
    assert_string_equal(r.risk_reason, "failed_attempt");
    assert_int_equal(signals("delivery_at_risk", "o3"), 1);
    /* the same state again: no second signal */
    cs_err_t err;
    assert_int_equal(cs_store_begin(W.s, &err), CS_OK);
    assert_int_equal(cs_watch_order(W.watch, W.s, "o3", &err), CS_OK);
    assert_int_equal(cs_store_commit(W.s, &err), CS_OK);
    assert_int_equal(signals("delivery_at_risk", "o3"), 1);
    /* a new reason: one more */
    cs_clock_manual_advance(&W.clock, 3600000LL);
    scan("o3", "exception", "address_problem");
    run_watch();
    r = rec("o3");
    assert_string_equal(r.risk_reason, "address_problem");
    assert_int_equal(signals("delivery_at_risk", "o3"), 2);
    /* past the cap of three, an address problem (it needs the customer)
     * is still told; other new reasons are not */
    scan("o3", "exception", "weather");
    run_watch();
    assert_int_equal(signals("delivery_at_risk", "o3"), 3);
    scan("o3", "exception", "customs");
    run_watch();
    assert_string_equal(rec("o3").risk_reason, "customs");
    assert_int_equal(signals("delivery_at_risk", "o3"), 3);
    /* (a minute later: at the same instant it would be the same scan as
     * the first address problem, stored once) */
    cs_clock_manual_advance(&W.clock, 60000LL);
    scan("o3", "exception", "address_problem");
    run_watch();
    assert_int_equal(signals("delivery_at_risk", "o3"), 4);
    /* held at a depot while in transit counts too */
    order("o3b", "c3", "30.00", NULL);
    ship("o3b");
    scan("o3b", "in_transit", "held_at_depot");
    run_watch();
    assert_string_equal(rec("o3b").risk_reason, "held_at_depot");
    /* and as an exception (DPD's HELD, DHL Express's OH, AfterShip's
     * Exception_006): said as held, not as a disruption */
    order("o3c", "c3", "30.00", NULL);
    ship("o3c");
    scan("o3c", "exception", "held_at_depot");
    run_watch();
    r = rec("o3c");
    assert_true(r.at_risk);
    assert_string_equal(r.risk_reason, "held_at_depot");
    assert_string_equal(r.reason, "held_at_depot");
}

/* A parcel damaged on its way and never scanned again: while the window
 * the exception gave lasts, the watch keeps it as given (no re-check
 * moves it); after its last day the current promise has no window (not a
 * fresh one each night, "between tomorrow and Friday" a month later), the
 * reason stays the exception's and the order stays at risk, told once. */
static void test_exception_silence_has_no_window(void **state)
{
    (void)state;
    order("ex", "cx", "30.00", NULL);
    cs_clock_manual_advance(&W.clock, 3600000LL);
    ship("ex");
    scan("ex", "in_transit", NULL);
    cs_clock_manual_advance(&W.clock, 3600000LL);
    scan("ex", "exception", "damaged");
    run_watch();
    cs_promise_rec_t r = rec("ex");
    assert_true(r.at_risk);
    assert_string_equal(r.risk_reason, "exception");
    assert_true(r.to != 0);
    cs_ms_t broken_from = r.from, broken_to = r.to, broken_point = r.point;
    /* a month of nightly re-checks, no scan */
    for (int d = 0; d < 30; d++) {
        cs_clock_manual_advance(&W.clock, CS_MS_PER_DAY);
        for (int i = 0; i < 5; i++)
            run_watch();
        r = rec("ex");
        if (now() < broken_to + CS_MS_PER_DAY) {
            /* the exception's window, still running: as it gave it, not
             * moved a day on by each night's re-check */
            assert_true(r.from == broken_from && r.to == broken_to && r.point == broken_point);
            assert_string_equal(r.reason, "exception");
            continue;
        }
        assert_true(r.from == 0 && r.to == 0);
        assert_string_equal(r.reason, "exception");
        assert_true(r.at_risk);
    }
    assert_int_equal(signals("delivery_at_risk", "ex"), 1);
}

/* Bad weather on the way and never a scan again: while the window the
 * weather gave lasts, it stands; once it has passed and the silence is
 * longer than the lane's expected gap, the order is at risk for the
 * silence (no_scan, its days counted up each night) and told so once --
 * not promised the weather's days again from each night, a month on. */
static void test_silence_after_weather(void **state)
{
    (void)state;
    order("wx", "cw", "30.00", NULL);
    cs_clock_manual_advance(&W.clock, 3600000LL);
    ship("wx");
    cs_clock_manual_advance(&W.clock, 3600000LL);
    scan("wx", "in_transit", "weather");
    cs_ms_t scanned = now();
    run_watch();
    cs_promise_rec_t r = rec("wx");
    assert_string_equal(r.reason, "weather");
    assert_true(r.to != 0);
    cs_ms_t given_to = r.to;
    int silent = 0;
    for (int d = 0; d < 30; d++) {
        cs_clock_manual_advance(&W.clock, CS_MS_PER_DAY);
        for (int i = 0; i < 5; i++)
            run_watch();
        r = rec("wx");
        if (now() < given_to + CS_MS_PER_DAY)
            continue; /* the weather's window, still running */
        if (strcmp(r.reason, "no_scan") != 0)
            continue;
        silent++;
        assert_true(r.at_risk);
        assert_string_equal(r.risk_reason, "no_scan");
        assert_int_equal(r.quiet_days, (int)((now() - scanned) / CS_MS_PER_DAY));
        assert_true(r.to != 0 && r.from >= now() - CS_MS_PER_DAY);
    }
    if (silent < 20)
        fail_msg("said silent on %d of the last nights, last reason %s", silent, r.reason);
    assert_string_equal(r.reason, "no_scan");
    assert_int_equal(signals("delivery_at_risk", "wx"), 2); /* the weather, the silence */
}

/* Customs clearance and then three weeks without a scan: routine for its
 * two working days (in_customs, not at risk), a customs hold after them
 * (at risk, customs), and once the window the hold gave has passed and
 * the silence is longer than the lane's expected gap, silent (no_scan,
 * its days counted up each night, told in German and English) -- not a
 * customs hold promised its days again each night. */
static void test_silence_after_customs(void **state)
{
    (void)state;
    order("cs", "c-cs", "30.00", NULL);
    cs_clock_manual_advance(&W.clock, 3600000LL);
    ship("cs");
    cs_clock_manual_advance(&W.clock, 3600000LL); /* Monday 11:00 */
    scan("cs", "in_transit", "customs");
    cs_ms_t scanned = now();
    run_watch();
    cs_promise_rec_t r = rec("cs");
    assert_string_equal(r.reason, "in_customs");
    assert_false(r.at_risk);
    bool held = false;
    int silent = 0;
    for (int d = 0; d < 21; d++) {
        for (int i = 0; i < 4; i++) {
            cs_clock_manual_advance(&W.clock, 6 * 3600000LL);
            run_watch();
        }
        r = rec("cs");
        held = held || strcmp(r.reason, "customs") == 0;
        if (strcmp(r.reason, "no_scan") != 0)
            continue;
        silent++;
        assert_true(r.at_risk);
        assert_string_equal(r.risk_reason, "no_scan");
        assert_int_equal(r.quiet_days, (int)((now() - scanned) / CS_MS_PER_DAY));
        assert_true(r.to != 0 && r.from >= now() - CS_MS_PER_DAY);
    }
    assert_true(held);
    if (silent < 15)
        fail_msg("said silent on %d of 21 nights, last reason %s", silent, r.reason);
    assert_int_equal(r.quiet_days, 21);
    char buf[160];
    assert_string_equal(cs_promise_reason_text(CS_PR_NO_SCAN, "de", r.quiet_days, buf, sizeof buf),
                        "Seit 21 Tagen kein neuer Scan des Versanddienstes.");
    assert_string_equal(cs_promise_reason_text(CS_PR_NO_SCAN, "en", r.quiet_days, buf, sizeof buf),
                        "No scan from the carrier for 21 days.");
    assert_int_equal(signals("delivery_at_risk", "cs"), 2); /* the hold, the silence */
}

static void test_silence_found_by_durable_recheck(void **state)
{
    (void)state;
    order("o4", "c4", "30.00", NULL);
    cs_clock_manual_advance(&W.clock, 3600000LL);
    ship("o4");
    scan("o4", "in_transit", NULL);
    run_watch();
    assert_false(rec("o4").at_risk);
    /* a restart: a new watch knows nothing but what the store holds */
    reopen_watch();
    /* four working days without a scan, no event at all */
    cs_clock_manual_advance(&W.clock, 4 * CS_MS_PER_DAY);
    for (int i = 0; i < 20; i++)
        run_watch(); /* re-checks are due every few hours */
    cs_promise_rec_t r = rec("o4");
    assert_true(r.at_risk);
    assert_string_equal(r.risk_reason, "no_scan");
    assert_true(r.quiet_days >= 3);
    assert_int_equal(signals("delivery_at_risk", "o4"), 1);
}

/* An order in two parcels: the one delivered first does not close the
 * order while the other is on its way, and the other's silence is seen. */
static void test_open_parcel_is_followed(void **state)
{
    (void)state;
    order("o9", "c9", "40.00", NULL);
    ship("o9");
    scan("o9", "in_transit", NULL);
    cs_clock_manual_advance(&W.clock, 3600000LL);
    /* a second parcel, created later and delivered the next day */
    event_at("shipment.created", now(),
             "{\"id\":\"So9b\",\"order_id\":\"o9\",\"carrier\":\"dhl\","
             "\"tracking_number\":\"To9b\",\"origin\":{\"country\":\"DE\",\"region\":\"SN\"},"
             "\"destination\":{\"country\":\"DE\",\"postal_code\":\"10115\"}}");
    cs_clock_manual_advance(&W.clock, CS_MS_PER_DAY);
    event_at("tracking.event", now(),
             "{\"shipment_id\":\"So9b\",\"carrier\":\"dhl\",\"tracking_number\":\"To9b\","
             "\"status\":\"delivered\"}");
    run_watch();
    cs_promise_rec_t r = rec("o9");
    assert_false(r.closed);
    assert_false(r.at_risk);
    /* the first parcel is not heard of for four days */
    cs_clock_manual_advance(&W.clock, 4 * CS_MS_PER_DAY);
    for (int i = 0; i < 20; i++)
        run_watch();
    r = rec("o9");
    assert_false(r.closed);
    assert_true(r.at_risk);
    assert_string_equal(r.risk_reason, "no_scan");
    assert_int_equal(signals("delivery_at_risk", "o9"), 1);
    /* its delivery closes the order */
    scan("o9", "delivered", NULL);
    run_watch();
    assert_true(rec("o9").closed);
}

static void test_late_delivery_compensated_once(void **state)
{
    (void)state;
    /* promised for Tuesday; delivered Friday: three working days late */
    order("o5", "c5", "100.00", tuesday);
    ship("o5");
    run_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-06T10:00:00Z"));
    scan("o5", "delivered", NULL);
    run_watch();
    cs_promise_rec_t r = rec("o5");
    assert_true(r.broken_at > 0);
    assert_int_equal(r.late_days, 3);
    assert_true(r.comp_code[0]);
    assert_int_equal(r.comp_cost, 1500); /* 5% a day x 3 of 100.00, a new customer */
    assert_int_equal(signals("promise_broken", "o5"), 1);
    cs_discount_t d;
    cs_err_t err;
    assert_int_equal(cs_store_call(W.s, discount_by_key, "comp:o5", &d, &err), CS_OK);
    assert_string_equal(d.code, r.comp_code);
    assert_int_equal(d.kind, CS_DISCOUNT_AMOUNT);
    assert_true(d.value > 14.99 && d.value < 15.01);
    assert_string_equal(d.currency, "EUR");
    assert_int_equal(strncmp(d.code, "SORRY-", 6), 0);
    /* once: another look changes nothing */
    assert_int_equal(cs_store_begin(W.s, &err), CS_OK);
    assert_int_equal(cs_watch_order(W.watch, W.s, "o5", &err), CS_OK);
    assert_int_equal(cs_store_commit(W.s, &err), CS_OK);
    assert_int_equal(signals("promise_broken", "o5"), 1);
    assert_string_equal(rec("o5").comp_code, r.comp_code);
}

/* Out for delivery (or at a pickup point) the parcel is arriving: not at
 * risk, and no new delay notice, however late it is. */
static void test_arriving_is_never_late(void **state)
{
    (void)state;
    order("ofd", "c-ofd", "30.00", tuesday);
    ship("ofd");
    run_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-05T07:00:00Z")); /* Thursday 08:00 */
    scan("ofd", "exception", "customs");
    run_watch();
    int told = signals("delivery_at_risk", "ofd");
    assert_true(told >= 1);
    assert_true(rec("ofd").at_risk);
    cs_clock_manual_advance(&W.clock, 2 * 3600000LL);
    scan("ofd", "out_for_delivery", NULL);
    run_watch();
    cs_promise_rec_t r = rec("ofd");
    assert_false(r.at_risk);
    assert_string_equal(r.reason, "out_for_delivery");
    assert_int_equal(signals("delivery_at_risk", "ofd"), told);
}

/* A parcel ready for pickup arrived when it got there: waiting for the
 * customer is not lateness, and one that got there late is owed its code
 * at once (no wait for a delivery the customer decides). */
static void test_pickup_is_arrival(void **state)
{
    (void)state;
    order("pk1", "c-pk1", "30.00", tuesday);
    order("pk2", "c-pk2", "30.00", tuesday);
    ship("pk1");
    ship("pk2");
    run_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-03T12:00:00Z")); /* the promised Tuesday */
    scan("pk1", "available_for_pickup", NULL);
    run_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-06T12:00:00Z")); /* Friday, not collected */
    run_watch();
    cs_promise_rec_t r = rec("pk1");
    assert_int_equal(r.late_days, 0);
    assert_int_equal(r.comp_at, 0);
    assert_int_equal(signals("promise_broken", "pk1"), 0);
    /* pk2 reaches its pickup point on Friday, three working days late */
    scan("pk2", "available_for_pickup", NULL);
    run_watch();
    r = rec("pk2");
    assert_int_equal(r.late_days, 3);
    assert_true(r.comp_at > 0);
    assert_int_equal(signals("promise_broken", "pk2"), 1);
    /* collected on Monday: still three days, no second code */
    cs_clock_manual_set(&W.clock, at("2026-03-09T12:00:00Z"));
    scan("pk2", "delivered", NULL);
    run_watch();
    r = rec("pk2");
    assert_true(r.closed);
    assert_int_equal(r.late_days, 3);
    assert_int_equal(signals("promise_broken", "pk2"), 1);
    /* pk1 collected a week late: it arrived on time all the same -- a
     * stray scan after the collection does not change that */
    cs_clock_manual_set(&W.clock, at("2026-03-10T12:00:00Z"));
    scan("pk1", "delivered", NULL);
    cs_clock_manual_advance(&W.clock, 600000LL);
    scan("pk1", "in_transit", NULL);
    run_watch();
    r = rec("pk1");
    assert_true(r.closed);
    assert_int_equal(r.late_days, 0);
    assert_int_equal(signals("promise_broken", "pk1"), 0);
}

/* A shop without enough deliveries to judge by does not hear at purchase
 * that its own promise is late (the model's window is a cautious default);
 * once the promised day has passed, it is late all the same. */
static void test_no_yardstick_no_late_at_purchase(void **state)
{
    (void)state;
    cs_err_t err;
    new_model(false); /* learned nothing */
    order("new", "c-new", "30.00", "{\"latest\":\"2026-03-03\"}"); /* Monday: Tuesday */
    run_watch();
    cs_promise_rec_t r = rec("new");
    assert_false(r.at_risk);
    assert_int_equal(signals("delivery_at_risk", "new"), 0);
    cs_clock_manual_set(&W.clock, at("2026-03-04T09:00:00Z")); /* Wednesday */
    assert_int_equal(cs_store_begin(W.s, &err), CS_OK);
    assert_int_equal(cs_watch_order(W.watch, W.s, "new", &err), CS_OK);
    assert_int_equal(cs_store_commit(W.s, &err), CS_OK);
    r = rec("new");
    assert_true(r.at_risk);
    assert_string_equal(r.risk_reason, "late");
}

/* An order closed on its first parcel's delivery is watched again when
 * another parcel of it goes out. */
static void test_second_parcel_reopens(void **state)
{
    (void)state;
    order("two", "c-two", "30.00", NULL);
    ship("two");
    run_watch();
    cs_clock_manual_advance(&W.clock, 2 * CS_MS_PER_DAY);
    scan("two", "delivered", NULL);
    run_watch();
    assert_true(rec("two").closed);
    cs_clock_manual_advance(&W.clock, 2 * 3600000LL);
    event_at("shipment.created", now(),
             "{\"id\":\"Stwo-b\",\"order_id\":\"two\",\"carrier\":\"dhl\","
             "\"tracking_number\":\"Ttwo-b\",\"origin\":{\"country\":\"DE\",\"region\":\"SN\"},"
             "\"destination\":{\"country\":\"DE\",\"postal_code\":\"10115\"}}");
    run_watch();
    cs_promise_rec_t r = rec("two");
    assert_false(r.closed);
    assert_true(r.check_at > now());
    assert_true(r.to >= now() - CS_MS_PER_DAY);
    int told = signals("delivery_at_risk", "two");
    event_at("tracking.event", now(),
             "{\"shipment_id\":\"Stwo-b\",\"carrier\":\"dhl\",\"tracking_number\":\"Ttwo-b\","
             "\"status\":\"exception\",\"reason\":\"address_problem\"}");
    run_watch();
    r = rec("two");
    assert_true(r.at_risk);
    assert_string_equal(r.risk_reason, "address_problem");
    assert_int_equal(signals("delivery_at_risk", "two"), told + 1);
    /* delivered too: closed again */
    event_at("tracking.event", now() + 3600000LL,
             "{\"shipment_id\":\"Stwo-b\",\"carrier\":\"dhl\",\"tracking_number\":\"Ttwo-b\","
             "\"status\":\"delivered\"}");
    run_watch();
    assert_true(rec("two").closed);
}

/* A delivered parcel stays delivered: scans after the delivery (a late
 * transit event, a code the tables do not know) are kept but do not undo
 * it, whatever order they come in; only a return to the sender does, and
 * a parcel on its way back stays so (its way back and its delivery to the
 * shop are shown, not counted). */
static void test_delivered_stays_delivered(void **state)
{
    (void)state;
    order("dm", "c-dm", "30.00", NULL);
    ship("dm");
    cs_clock_manual_advance(&W.clock, CS_MS_PER_DAY);
    cs_ms_t d1 = now();
    scan("dm", "delivered", NULL);
    run_watch();
    assert_true(rec("dm").closed);
    cs_order_track_t t;
    cs_err_t err;
#define TRACK() assert_int_equal(cs_store_call(W.s, order_track, "dm", 0, &t, &err), CS_OK)
    TRACK();
    assert_int_equal(t.delivered_at, d1);
    /* an unknown code and a transit scan after it: still delivered */
    cs_clock_manual_advance(&W.clock, 3600000LL);
    event_at("tracking.event", now(),
             "{\"shipment_id\":\"Sdm\",\"carrier\":\"dhl\",\"tracking_number\":\"Tdm\","
             "\"carrier_code\":\"ZZ-QX-9\",\"status\":\"in_transit\",\"unmapped\":true}");
    cs_clock_manual_advance(&W.clock, 3600000LL);
    scan("dm", "in_transit", NULL);
    TRACK();
    assert_int_equal(t.delivered_at, d1);
    assert_int_equal(t.last_status, CS_TRACK_DELIVERED);
    run_watch();
    assert_true(rec("dm").closed);
    /* a transit scan dated before the delivery, arriving now: still d1 */
    event_at("tracking.event", d1 - 3600000LL,
             "{\"shipment_id\":\"Sdm\",\"carrier\":\"dhl\",\"tracking_number\":\"Tdm\","
             "\"status\":\"in_transit\",\"carrier_code\":\"early\"}");
    TRACK();
    assert_int_equal(t.delivered_at, d1);
    assert_int_equal(t.last_status, CS_TRACK_DELIVERED);
    /* the first delivery's scan once more, under another event id */
    event_at("tracking.event", d1,
             "{\"shipment_id\":\"Sdm\",\"carrier\":\"dhl\",\"tracking_number\":\"Tdm\","
             "\"status\":\"delivered\",\"carrier_code\":\"again\"}");
    TRACK();
    assert_int_equal(t.delivered_at, d1);
    assert_int_equal(t.last_status, CS_TRACK_DELIVERED);
    /* sent back: returned, not delivered; its way back and its delivery to
     * the shop do not count */
    cs_clock_manual_advance(&W.clock, CS_MS_PER_DAY);
    scan("dm", "returned_to_sender", NULL);
    TRACK();
    assert_int_equal(t.delivered_at, 0);
    assert_int_equal(t.last_status, CS_TRACK_RETURNED_TO_SENDER);
    cs_clock_manual_advance(&W.clock, 3600000LL);
    scan("dm", "in_transit", NULL);
    cs_clock_manual_advance(&W.clock, CS_MS_PER_DAY);
    scan("dm", "delivered", NULL);
    TRACK();
    assert_int_equal(t.last_status, CS_TRACK_RETURNED_TO_SENDER);
    assert_int_equal(t.delivered_at, 0);
    /* a delivery dated before the return, arriving late: returned all the same */
    event_at("tracking.event", now() - 3 * CS_MS_PER_DAY,
             "{\"shipment_id\":\"Sdm\",\"carrier\":\"dhl\",\"tracking_number\":\"Tdm\","
             "\"status\":\"delivered\",\"carrier_code\":\"older\"}");
    TRACK();
    assert_int_equal(t.last_status, CS_TRACK_RETURNED_TO_SENDER);
    assert_int_equal(t.delivered_at, 0);
#undef TRACK
}

/* At the same instant a return wins over any other scan, whichever came
 * first, in the fold and when the parcel is read again (a scan out of
 * order); the delivery to the shop after it does not count. */
static void test_return_wins_a_tie(void **state)
{
    (void)state;
    order("tie", "c-tie", "30.00", NULL);
    ship("tie");
    cs_clock_manual_advance(&W.clock, CS_MS_PER_DAY);
    cs_ms_t t0 = now();
    scan("tie", "returned_to_sender", NULL);
    scan("tie", "in_transit", NULL); /* the same instant */
    cs_order_track_t t;
    cs_err_t err;
    assert_int_equal(cs_store_call(W.s, order_track, "tie", 0, &t, &err), CS_OK);
    assert_int_equal(t.last_status, CS_TRACK_RETURNED_TO_SENDER);
    /* an older scan makes the parcel be read again: still returned */
    event_at("tracking.event", t0 - 3600000LL,
             "{\"shipment_id\":\"Stie\",\"carrier\":\"dhl\",\"tracking_number\":\"Ttie\","
             "\"status\":\"in_transit\",\"carrier_code\":\"older\"}");
    assert_int_equal(cs_store_call(W.s, order_track, "tie", 0, &t, &err), CS_OK);
    assert_int_equal(t.last_status, CS_TRACK_RETURNED_TO_SENDER);
    cs_clock_manual_advance(&W.clock, CS_MS_PER_DAY);
    scan("tie", "delivered", NULL);
    assert_int_equal(cs_store_call(W.s, order_track, "tie", 0, &t, &err), CS_OK);
    assert_int_equal(t.last_status, CS_TRACK_RETURNED_TO_SENDER);
    assert_int_equal(t.delivered_at, 0);
    /* the other way round: in transit first, the return at the same instant */
    order("tie2", "c-tie", "30.00", NULL);
    ship("tie2");
    scan("tie2", "in_transit", NULL);
    scan("tie2", "returned_to_sender", NULL);
    event_at("tracking.event", now() - 3600000LL,
             "{\"shipment_id\":\"Stie2\",\"carrier\":\"dhl\",\"tracking_number\":\"Ttie2\","
             "\"status\":\"in_transit\",\"carrier_code\":\"older\"}");
    assert_int_equal(cs_store_call(W.s, order_track, "tie2", 0, &t, &err), CS_OK);
    assert_int_equal(t.last_status, CS_TRACK_RETURNED_TO_SENDER);
}

/* Scans that come before their shipment follow the same rules when the
 * shipment arrives: delivered, then a transit scan, is delivered; a
 * delivery that arrives late, dated before transit scans, delivers it. */
static void test_scans_before_shipment(void **state)
{
    (void)state;
    order("sb", "c-sb", "30.00", NULL);
    cs_clock_manual_advance(&W.clock, CS_MS_PER_DAY);
    cs_ms_t d1 = now();
    event_at("tracking.event", d1 + 3600000LL,
             "{\"shipment_id\":\"Ssb\",\"carrier\":\"dhl\",\"tracking_number\":\"Tsb\","
             "\"status\":\"in_transit\",\"carrier_code\":\"after\"}");
    scan("sb", "delivered", NULL);
    ship("sb");
    cs_order_track_t t;
    cs_err_t err;
    assert_int_equal(cs_store_call(W.s, order_track, "sb", 0, &t, &err), CS_OK);
    assert_int_equal(t.last_status, CS_TRACK_DELIVERED);
    assert_int_equal(t.delivered_at, d1);
    /* and the same for a shipment known before: transit, then a delivery
     * dated before it arrives */
    order("sc", "c-sc", "30.00", NULL);
    ship("sc");
    event_at("tracking.event", d1 + 3600000LL,
             "{\"shipment_id\":\"Ssc\",\"carrier\":\"dhl\",\"tracking_number\":\"Tsc\","
             "\"status\":\"in_transit\",\"carrier_code\":\"after\"}");
    event_at("tracking.event", d1,
             "{\"shipment_id\":\"Ssc\",\"carrier\":\"dhl\",\"tracking_number\":\"Tsc\","
             "\"status\":\"delivered\",\"carrier_code\":\"late\"}");
    assert_int_equal(cs_store_call(W.s, order_track, "sc", 0, &t, &err), CS_OK);
    assert_int_equal(t.last_status, CS_TRACK_DELIVERED);
    assert_int_equal(t.delivered_at, d1);
}

/* A scan by carrier and number alone (no shipment id), at `when`. */
static void scan_number(const char *number, cs_ms_t when, const char *status, const char *code)
{
    event_at("tracking.event", when,
             "{\"carrier\":\"dhl\",\"tracking_number\":\"%s\",\"status\":\"%s\","
             "\"carrier_code\":\"%s\"}",
             number, status, code);
}

static void ship_number(const char *id, const char *number)
{
    event_at("shipment.created", now(),
             "{\"id\":\"S%s\",\"order_id\":\"%s\",\"carrier\":\"dhl\","
             "\"tracking_number\":\"%s\",\"destination\":{\"country\":\"DE\","
             "\"postal_code\":\"10115\"}}",
             id, id, number);
}

static cs_order_track_t track(const char *order_id)
{
    cs_order_track_t t;
    cs_err_t err;
    assert_int_equal(cs_store_call(W.s, order_track, order_id, 0, &t, &err), CS_OK);
    return t;
}

/* risk.late of a journey about order_id of customer now, as the contact
 * policy's hold reads it too (cs_journeys_delivery_late). */
static bool journey_late(const char *order_id, const char *customer)
{
    json_t *cu, *o, *sh;
    cs_err_t err;
    assert_int_equal(cs_store_call(W.s, journey_context, customer, order_id, 0, CS_CTX_FULL, &cu,
                                   &o, &sh, &err),
                     CS_OK);
    bool late = cs_journeys_delivery_late(W.wo.tz, o, sh, now());
    json_decref(cu);
    json_decref(o);
    json_decref(sh);
    return late;
}

/* The carrier codes of an order's scans ("a,b"), in time order; returns
 * how many tracking events its timeline holds. */
static int order_scans(const char *order_id, char *codes, size_t size)
{
    json_t *v, *sh, *sc, *ev;
    size_t i, j, len = 0;
    cs_err_t err;
    int events = 0;
    assert_int_equal(cs_store_call(W.s, order_view, order_id, &v, &err), CS_OK);
    codes[0] = '\0';
    json_array_foreach(json_object_get(v, "shipments"), i, sh)
        json_array_foreach(json_object_get(sh, "scans"), j, sc)
            len += (size_t)snprintf(codes + len, size - len, "%s%s", len ? "," : "",
                                    json_string_value(json_object_get(sc, "carrier_code")));
    json_array_foreach(json_object_get(v, "timeline"), i, ev)
        events += strcmp(json_string_value(json_object_get(ev, "type")), "tracking.event") == 0;
    json_decref(v);
    return events;
}

/* A tracking number used again: the carrier hands out an old parcel's
 * number to a new one. Each scan goes to the parcel whose order was placed
 * last before it; the new parcel's scans that came before its shipment
 * (and went to the old one) are its own once it is announced; a late scan
 * of the old parcel stays there; a scan from before either order waits. */
static void test_number_used_again(void **state)
{
    (void)state;
    order("old", "c-old", "30.00", NULL);
    ship_number("old", "TAGAIN");
    cs_ms_t d0 = now();
    scan_number("TAGAIN", d0 + 3600000LL, "in_transit", "o1");
    scan_number("TAGAIN", d0 + CS_MS_PER_DAY, "delivered", "o2");
    assert_int_equal(track("old").last_status, CS_TRACK_DELIVERED);

    cs_clock_manual_advance(&W.clock, 200 * CS_MS_PER_DAY);
    cs_ms_t d1 = now();
    order("new", "c-new", "30.00", NULL);
    /* before its shipment: the number's only parcel is the old one */
    scan_number("TAGAIN", d1 + 3600000LL, "in_transit", "n1");
    cs_clock_manual_advance(&W.clock, 2 * 3600000LL);
    ship_number("new", "TAGAIN");
    cs_order_track_t t = track("new");
    assert_int_equal(t.last_status, CS_TRACK_IN_TRANSIT);
    assert_int_equal(t.last_scan_at, d1 + 3600000LL);
    scan_number("TAGAIN", d1 + CS_MS_PER_DAY, "out_for_delivery", "n2");
    /* a late scan of the old parcel, and one from before both orders */
    scan_number("TAGAIN", d0 + 2 * 3600000LL, "in_transit", "o3");
    scan_number("TAGAIN", d0 - 30 * CS_MS_PER_DAY, "delivered", "x");
    t = track("new");
    assert_int_equal(t.last_status, CS_TRACK_OUT_FOR_DELIVERY);
    assert_int_equal(t.last_scan_at, d1 + CS_MS_PER_DAY);
    assert_int_equal(t.delivered_at, 0);
    t = track("old");
    assert_int_equal(t.last_status, CS_TRACK_DELIVERED);
    assert_int_equal(t.delivered_at, d0 + CS_MS_PER_DAY);
    /* each parcel holds its own scans, each order's timeline its events;
     * the oldest waits */
    char codes[64];
    assert_int_equal(order_scans("old", codes, sizeof codes), 3);
    assert_string_equal(codes, "o1,o3,o2");
    assert_int_equal(order_scans("new", codes, sizeof codes), 2);
    assert_string_equal(codes, "n1,n2");
}

typedef struct handed {
    const char *service;
    cs_ms_t shipped_at;
    int n;
} handed_t;

static cs_rc handed_fn(const cs_delivery_row_t *d, void *ud)
{
    handed_t *h = ud;
    if (strcmp(d->service, h->service) == 0) {
        h->shipped_at = d->shipped_at;
        h->n++;
    }
    return CS_OK;
}

/* A shipment.created sent again later (a fulfilment update) corrects what
 * it says of the parcel, but its time is not the hand-over: the watch and
 * the model (a delivery's hand-over splits handling from transit) keep the
 * first announcement's, also when the update comes before it. */
static void test_announced_again_keeps_handover(void **state)
{
    (void)state;
    static const char shipment[] =
        "{\"id\":\"S%s\",\"order_id\":\"%s\",\"carrier\":\"dhl\",\"tracking_number\":\"T%s\","
        "\"service\":\"%s\",\"destination\":{\"country\":\"DE\",\"postal_code\":\"10115\"}}";
    order("upd", "c-upd", "30.00", NULL);
    cs_clock_manual_advance(&W.clock, 2 * 3600000LL);
    cs_ms_t handed = now();
    event_at("shipment.created", handed, shipment, "upd", "upd", "upd", "Paket");
    cs_clock_manual_advance(&W.clock, 3600000LL);
    scan("upd", "in_transit", NULL);
    run_watch();
    cs_clock_manual_advance(&W.clock, CS_MS_PER_DAY);
    event_at("shipment.created", now(), shipment, "upd", "upd", "upd", "Paket-upd");
    run_watch();
    cs_order_track_t t = track("upd");
    assert_int_equal(t.shipped_at, handed);
    assert_string_equal(t.service, "Paket-upd");
    cs_clock_manual_advance(&W.clock, 3600000LL);
    scan("upd", "delivered", NULL);
    run_watch();
    handed_t h = { "Paket-upd", 0, 0 };
    cs_err_t err;
    assert_int_equal(cs_store_call(W.s, deliveries_each, handed_fn, &h, &err), CS_OK);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.shipped_at, handed);

    /* the update first, the first announcement after it */
    order("upd2", "c-upd", "30.00", NULL);
    cs_clock_manual_advance(&W.clock, CS_MS_PER_DAY);
    event_at("shipment.created", now(), shipment, "upd2", "upd2", "upd2", "Paket-new");
    event_at("shipment.created", now() - 20 * 3600000LL, shipment, "upd2", "upd2", "upd2",
             "Paket-old");
    t = track("upd2");
    assert_int_equal(t.shipped_at, now() - 20 * 3600000LL);
    assert_string_equal(t.service, "Paket-new");
}

/* A parcel announced again for another order: the order it left is judged
 * again in the same pass (its promise followed that parcel), not at its
 * next re-check hours later. */
static void test_order_left_is_judged_again(void **state)
{
    (void)state;
    order("mva", "c-mv", "30.00", NULL);
    order("mvb", "c-mv", "30.00", NULL);
    ship("mva");
    cs_clock_manual_advance(&W.clock, 3600000LL);
    scan("mva", "in_transit", NULL);
    run_watch();
    cs_promise_rec_t before = rec("mva");
    assert_true(before.check_at > now());
    cs_clock_manual_advance(&W.clock, 3600000LL);
    event_at("shipment.created", now(),
             "{\"id\":\"Smva\",\"order_id\":\"mvb\",\"carrier\":\"dhl\","
             "\"tracking_number\":\"Tmva\"}");
    run_watch();
    cs_promise_rec_t after = rec("mva");
    assert_int_equal(after.updated_at, now()); /* judged in this pass */
    assert_true(after.check_at > now());       /* and armed again */
    cs_order_track_t t = track("mva");
    assert_false(t.shipped);
    assert_true(track("mvb").shipped);
}

/* An order's second parcel whose scans came before its shipment.created:
 * delivered three working days after the promise by the time the watch
 * first sees it. The order, closed on time on the first parcel, is judged
 * again -- broken, with a code, as for a second parcel seen on its way. */
static void test_second_parcel_seen_delivered(void **state)
{
    (void)state;
    order("mp", "c-mp", "100.00", tuesday);
    ship_number("mp", "TMP1");
    run_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-03T10:00:00Z"));
    scan_number("TMP1", now(), "delivered", "d1");
    run_watch();
    cs_promise_rec_t r = rec("mp");
    assert_true(r.closed);
    assert_int_equal(r.late_days, 0);
    int risk0 = signals("delivery_at_risk", "mp");
    cs_clock_manual_set(&W.clock, at("2026-03-05T12:00:00Z"));
    scan_number("TMP2", now(), "in_transit", "t2");
    run_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-06T12:00:00Z"));
    scan_number("TMP2", now(), "delivered", "d2");
    run_watch();
    cs_clock_manual_advance(&W.clock, 3600000LL);
    event_at("shipment.created", now(),
             "{\"id\":\"Smp-2\",\"order_id\":\"mp\",\"carrier\":\"dhl\","
             "\"tracking_number\":\"TMP2\",\"destination\":{\"country\":\"DE\","
             "\"postal_code\":\"10115\"}}");
    run_watch();
    r = rec("mp");
    assert_true(r.closed);
    assert_string_equal(r.closed_shipment, "Smp-2");
    assert_int_equal(r.late_days, 3);
    assert_true(r.comp_at != 0);
    assert_int_equal(signals("promise_broken", "mp"), 1);
    assert_int_equal(signals("delivery_at_risk", "mp"), risk0);
    /* a later look changes nothing */
    cs_clock_manual_advance(&W.clock, CS_MS_PER_DAY);
    run_watch();
    assert_int_equal(signals("promise_broken", "mp"), 1);
}

/* A long address (a city name at its bound) is read whole: its lane is
 * its postal code's, not lost to a copy cut into JSON that does not
 * parse. */
static void test_long_address(void **state)
{
    (void)state;
    char city[CS_SHORT_MAX + 1];
    memset(city, 'x', CS_SHORT_MAX - 1);
    city[CS_SHORT_MAX - 1] = '\0';
    order("long", "c-long", "30.00", NULL);
    event_at("shipment.created", now(),
             "{\"id\":\"Slong\",\"order_id\":\"long\",\"carrier\":\"dhl\","
             "\"tracking_number\":\"TLONG\",\"origin\":{\"country\":\"DE\",\"region\":\"%s\","
             "\"postal_code\":\"04109\"},\"destination\":{\"country\":\"DE\",\"city\":\"%s\","
             "\"postal_code\":\"10115\"}}",
             city, city);
    cs_order_track_t t = track("long");
    char key[CS_REGION_KEY_MAX];
    cs_region_key_json(t.destination, key, sizeof key);
    assert_string_equal(key, "DE-BE");
    cs_region_key_json(t.origin, key, sizeof key);
    assert_string_equal(key, "DE-SN");
}

/* An order's view lists its latest 100 moves, oldest first: a long
 * watch keeps showing where the window is now. */
static void test_latest_moves(void **state)
{
    (void)state;
    order("mv", "c-mv", "30.00", NULL);
    run_watch();
    cs_promise_rec_t r = rec("mv");
    cs_err_t err;
    cs_ms_t t0 = now();
    assert_int_equal(cs_store_begin(W.s, &err), CS_OK);
    for (int i = 1; i <= 130; i++) {
        r.updated_at = t0 + i * 60000LL;
        r.to = r.from + i * CS_MS_PER_DAY;
        if (cs_store_call(W.s, promise_put, &r, "none", &err) != CS_OK)
            fail_msg("promise_put: %s", err.msg);
    }
    assert_int_equal(cs_store_commit(W.s, &err), CS_OK);
    json_t *view = NULL;
    assert_int_equal(cs_store_order_view(W.s, "mv", &view, &err), CS_OK);
    json_t *moves = json_object_get(json_object_get(view, "promise"), "moves");
    assert_int_equal(json_array_size(moves), 100);
    char last[40], first[40];
    cs_time_format(t0 + 130 * 60000LL, last, sizeof last);
    cs_time_format(t0 + 31 * 60000LL, first, sizeof first);
    assert_string_equal(json_string_value(json_object_get(json_array_get(moves, 99), "at")),
                        last);
    assert_string_equal(json_string_value(json_object_get(json_array_get(moves, 0), "at")),
                        first);
    json_decref(view);
}

/* One parcel announced twice under two shipment ids (a shop system that
 * sends a fulfilment again with a new id): the same carrier and number in
 * one order is one parcel. Its scans are both's, and once it is delivered
 * the order is done -- no second parcel waits for a hand-over that will
 * never come, no delay notice, no "1 of 2 delivered". */
static void test_same_parcel_twice(void **state)
{
    (void)state;
    order("twice", "c-twice", "30.00", NULL);
    event_at("shipment.created", now(),
             "{\"id\":\"Stw-a\",\"order_id\":\"twice\",\"carrier\":\"dhl\","
             "\"tracking_number\":\"TTWICE\",\"destination\":{\"country\":\"DE\","
             "\"postal_code\":\"10115\"}}");
    run_watch();
    cs_clock_manual_advance(&W.clock, 3600000LL);
    event_at("shipment.created", now(),
             "{\"id\":\"Stw-b\",\"order_id\":\"twice\",\"carrier\":\"dhl\","
             "\"tracking_number\":\"TTWICE\",\"destination\":{\"country\":\"DE\","
             "\"postal_code\":\"10115\"}}");
    cs_clock_manual_advance(&W.clock, 3600000LL);
    scan_number("TTWICE", now(), "in_transit", "t1");
    run_watch();
    cs_clock_manual_advance(&W.clock, CS_MS_PER_DAY);
    scan_number("TTWICE", now(), "delivered", "t2");
    run_watch();
    for (int d = 0; d < 20; d++) {
        cs_clock_manual_advance(&W.clock, CS_MS_PER_DAY);
        run_watch();
    }
    cs_promise_rec_t r = rec("twice");
    assert_true(r.closed);
    assert_string_equal(r.reason, "delivered");
    assert_int_equal(signals("delivery_at_risk", "twice"), 0);
    assert_int_equal(signals("promise_broken", "twice"), 0);
    cs_order_track_t t = track("twice");
    assert_int_equal(t.last_status, CS_TRACK_DELIVERED);
}

/* A parcel on its way back to the shop closes the watch; its way back (in
 * transit, then delivered to the shop) does not open it again -- no delay
 * notice, no code. A new parcel sent for the order does. */
static void test_return_trip_stays_closed(void **state)
{
    (void)state;
    order("rtp", "c-rtp", "30.00",
          "{\"earliest\":\"2026-03-03T00:00:00Z\",\"latest\":\"2026-03-04T20:00:00Z\"}");
    ship("rtp");
    run_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-03T10:00:00Z"));
    scan("rtp", "returned_to_sender", "refused");
    run_watch();
    cs_promise_rec_t r = rec("rtp");
    assert_true(r.closed);
    int told = signals("delivery_at_risk", "rtp");
    cs_clock_manual_set(&W.clock, at("2026-03-05T10:00:00Z"));
    scan("rtp", "in_transit", NULL);
    run_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-06T10:00:00Z"));
    scan("rtp", "delivered", NULL);
    run_watch();
    r = rec("rtp");
    assert_true(r.closed);
    assert_int_equal(r.comp_at, 0);
    assert_int_equal(signals("delivery_at_risk", "rtp"), told);
    assert_int_equal(signals("promise_broken", "rtp"), 0);
    /* a new parcel sent for it is watched */
    event_at("shipment.created", now(),
             "{\"id\":\"Srtp-2\",\"order_id\":\"rtp\",\"carrier\":\"dhl\","
             "\"tracking_number\":\"Trtp-2\",\"origin\":{\"country\":\"DE\",\"region\":\"SN\"},"
             "\"destination\":{\"country\":\"DE\",\"postal_code\":\"10115\"}}");
    run_watch();
    assert_false(rec("rtp").closed);
}

/* A second parcel of order id ("S<id>-2"), created now. */
static void ship_again(const char *id)
{
    event_at("shipment.created", now(),
             "{\"id\":\"S%s-2\",\"order_id\":\"%s\",\"carrier\":\"dhl\","
             "\"tracking_number\":\"T%s-2\",\"origin\":{\"country\":\"DE\",\"region\":\"SN\"},"
             "\"destination\":{\"country\":\"DE\",\"postal_code\":\"10115\"}}",
             id, id, id);
}

/* A scan of order id's second parcel. */
static void scan_again(const char *id, const char *status)
{
    event_at("tracking.event", now(),
             "{\"shipment_id\":\"S%s-2\",\"carrier\":\"dhl\",\"tracking_number\":\"T%s-2\","
             "\"status\":\"%s\"}",
             id, id, status);
}

/* An order sent again: its first parcel went back to the shop after a
 * failed attempt, and a new one went out on Thursday, after the promised
 * Wednesday. The new parcel's own window (two working days from its
 * hand-over: Saturday) is what it is late against: on Friday the order is
 * not late, and no code is owed for the wait while the new parcel is on
 * time. It arrives on Saturday, after the order's first promise: the
 * apology and its code then, three working days late. A new parcel that
 * overruns its own window is late, and owed its code, as any. Two parcels
 * sent together of which one goes back are no order sent again. A
 * journey's risk.late (and the contact policy's hold) agrees: not late
 * while the new parcel is on time, late once its own window has passed,
 * also before the watch's next look has flagged it. */
static void test_replacement_has_its_own_window(void **state)
{
    (void)state;
    const char *promise = "{\"earliest\":\"2026-03-03T00:00:00Z\",\"latest\":\"2026-03-04T20:00:00Z\"}";
    order("rp", "c-rp", "100.00", promise);
    order("rq", "c-rq", "100.00", promise);
    order("rt", "c-rt", "100.00", promise);
    ship("rp");
    ship("rq");
    ship("rt");
    ship_again("rt"); /* sent together */
    run_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-03T10:00:00Z")); /* Tuesday */
    scan("rp", "failed_attempt", "recipient_absent");
    scan("rq", "failed_attempt", "recipient_absent");
    scan("rt", "failed_attempt", "recipient_absent");
    scan_again("rt", "in_transit");
    run_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-04T10:00:00Z")); /* Wednesday */
    scan("rp", "returned_to_sender", NULL);
    scan("rq", "returned_to_sender", NULL);
    scan("rt", "returned_to_sender", NULL);
    scan_again("rt", "in_transit");
    run_watch();
    assert_true(rec("rp").closed);
    cs_clock_manual_set(&W.clock, at("2026-03-05T10:00:00Z")); /* Thursday: sent again */
    ship_again("rp");
    ship_again("rq");
    scan_again("rt", "in_transit");
    run_watch();
    cs_promise_rec_t r = rec("rp");
    assert_false(r.closed);
    assert_false(r.at_risk);
    char own[16];
    ymd(rec("rq").to, own); /* the new parcel's own window: Saturday */
    assert_string_equal(own, "2026-03-07");
    int told = signals("delivery_at_risk", "rp");
    cs_clock_manual_set(&W.clock, at("2026-03-06T10:00:00Z")); /* Friday */
    scan_again("rp", "in_transit");
    scan_again("rq", "in_transit");
    scan_again("rt", "in_transit");
    for (int i = 0; i < 3; i++)
        run_watch();
    r = rec("rp");
    if (r.at_risk)
        fail_msg("sent again, on time for its own window: at risk for %s", r.risk_reason);
    assert_int_equal(r.comp_at, 0);
    assert_int_equal(signals("promise_broken", "rp"), 0);
    assert_int_equal(signals("delivery_at_risk", "rp"), told);
    assert_false(rec("rq").at_risk);
    assert_true(track("rp").replaces);
    assert_false(journey_late("rp", "c-rp"));
    assert_false(journey_late("rq", "c-rq"));
    /* two parcels sent together: the one still on its way replaces none,
     * and is judged by the first promise */
    assert_false(track("rt").replaces);
    assert_true(rec("rt").at_risk);
    assert_true(journey_late("rt", "c-rt"));
    /* delivered on Saturday: the first promise broke by three working days */
    cs_clock_manual_set(&W.clock, at("2026-03-07T10:00:00Z"));
    scan_again("rp", "delivered");
    run_watch();
    r = rec("rp");
    assert_true(r.closed);
    assert_int_equal(r.late_days, 3);
    assert_true(r.comp_code[0]);
    assert_int_equal(signals("promise_broken", "rp"), 1);
    assert_int_equal(signals("delivery_at_risk", "rp"), told);
    assert_false(journey_late("rq", "c-rq"));
    /* Sunday 00:30 in Berlin: rq's own window has passed, late to a
     * journey before the watch has looked again */
    cs_clock_manual_set(&W.clock, at("2026-03-07T23:30:00Z"));
    assert_false(rec("rq").at_risk);
    assert_true(journey_late("rq", "c-rq"));
    /* rq's new parcel is not heard of again: at risk once its own window
     * (Saturday) has passed, and owed its code when it is as far past it
     * as any order past its first promise (two working days: Tuesday),
     * sized by the first promise (five working days late then) */
    char d[16];
    while (!rec("rq").comp_at && now() < at("2026-03-20T00:00:00Z")) {
        cs_clock_manual_advance(&W.clock, 6 * 3600000LL);
        run_watch();
        r = rec("rq");
        ymd(now(), d);
        if (strcmp(d, "2026-03-08") == 0)
            assert_true(r.at_risk);
    }
    r = rec("rq");
    ymd(r.comp_at, d);
    assert_string_equal(d, "2026-03-10");
    assert_true(r.comp_code[0]);
    assert_int_equal(r.late_days, 5);
    assert_int_equal(signals("promise_broken", "rq"), 1);
}

/* The lookup's neighbour: the order itself, else the next by id, else
 * the last. */
static void test_order_near(void **state)
{
    (void)state;
    char id[CS_ID_MAX + 1];
    cs_err_t err;
    order("zzn-b2", "c-n", "10.00", NULL);
    order("zzn-a1", "c-n", "10.00", NULL);
    order("zzn-c3", "c-n", "10.00", NULL);
    assert_int_equal(cs_store_call(W.s, order_near, "zzn-b2", id, &err), CS_OK);
    assert_string_equal(id, "zzn-b2");
    assert_int_equal(cs_store_call(W.s, order_near, "zzn-b1", id, &err), CS_OK);
    assert_string_equal(id, "zzn-b2");
    assert_int_equal(cs_store_call(W.s, order_near, "zzn-a", id, &err), CS_OK);
    assert_string_equal(id, "zzn-a1");
    assert_int_equal(cs_store_call(W.s, order_near, "zzn-z", id, &err), CS_OK);
    assert_string_equal(id, "zzn-c3"); /* past the end: the last */
}

/* A watched order whose late delivery is reported days after it happened
 * is still owed its code; and a promised date is that day in the shop's
 * zone, west of UTC too. */
static void test_late_report_still_compensated(void **state)
{
    (void)state;
    order("lr", "c-lr", "100.00", tuesday);
    ship("lr");
    run_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-12T10:00:00Z"));
    event_at("tracking.event", at("2026-03-06T10:00:00Z"),
             "{\"shipment_id\":\"Slr\",\"carrier\":\"dhl\",\"tracking_number\":\"Tlr\","
             "\"status\":\"delivered\"}");
    run_watch();
    cs_promise_rec_t r = rec("lr");
    assert_int_equal(r.late_days, 3);
    assert_true(r.comp_code[0]);
    assert_int_equal(signals("promise_broken", "lr"), 1);

    char d[16];
    W.wo.tz = cs_tz_get_or_utc("America/Sao_Paulo");
    reopen_watch();
    order("sp", "c-sp", "30.00", "{\"earliest\":\"2026-03-13\",\"latest\":\"2026-03-16\"}");
    run_watch();
    r = rec("sp");
    ymd(r.first_from, d);
    assert_string_equal(d, "2026-03-13");
    ymd(r.first_to, d);
    assert_string_equal(d, "2026-03-16");
    /* a time that falls on a midnight UTC is a time: by Tuesday 21:00 in
     * Sao Paulo is Tuesday there, not Wednesday, and a delivery on
     * Wednesday afternoon is a working day late */
    cs_clock_manual_set(&W.clock, at("2026-03-02T12:00:00Z"));
    order("spt", "c-spt", "30.00", "{\"latest\":\"2026-03-03T21:00:00-03:00\"}");
    order("spz", "c-spz", "30.00", "{\"latest\":\"2026-03-04T00:00:00Z\"}");
    run_watch();
    ymd(rec("spt").first_to, d);
    assert_string_equal(d, "2026-03-03");
    cs_clock_manual_set(&W.clock, at("2026-03-04T18:00:00Z"));
    event_at("shipment.created", now(),
             "{\"id\":\"Sspt\",\"order_id\":\"spt\",\"carrier\":\"dhl\","
             "\"tracking_number\":\"Tspt\"}");
    event_at("tracking.event", now(),
             "{\"shipment_id\":\"Sspt\",\"carrier\":\"dhl\",\"tracking_number\":\"Tspt\","
             "\"status\":\"delivered\"}");
    run_watch();
    r = rec("spt");
    assert_int_equal(r.late_days, 1);
    assert_int_equal(signals("promise_broken", "spt"), 1);
    /* the same midnight written in UTC is the date, as before */
    ymd(rec("spz").first_to, d);
    assert_string_equal(d, "2026-03-04");
}

/* compensation_min 0: free shipping for an order that shipped free is
 * worth nothing, and a code worth 0.00 is no apology: the promise is
 * broken and said so, without a code. */
static void test_nothing_to_give(void **state)
{
    (void)state;
    W.wo.comp_daily_budget = 10000;
    W.wo.comp_amount_min = 0;
    reopen_watch();
    order_in("z0", "c-z0", "EUR", "0.00", "80.00", tuesday);
    ship("z0");
    run_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-04T12:00:00Z")); /* a working day late */
    scan("z0", "delivered", NULL);
    run_watch();
    cs_promise_rec_t r = rec("z0");
    assert_int_equal(r.late_days, 1);
    assert_true(r.comp_at != 0);
    assert_string_equal(r.comp_code, "");
    assert_int_equal(r.comp_cost, 0);
    assert_non_null(strstr(r.comp_note, "nothing to give"));
    assert_int_equal(signals("promise_broken", "z0"), 1);
    cs_discount_t d;
    cs_err_t err;
    assert_int_equal(cs_store_call(W.s, discount_by_key, "comp:z0", &d, &err), CS_ERR_NOTFOUND);
    /* an order of 0.00, three working days late: not compensation_min */
    W.wo.comp_amount_min = 500;
    reopen_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-02T09:00:00Z"));
    order_in("zz", "c-zz", "EUR", "0.00", "0.00", tuesday);
    ship("zz");
    run_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-06T12:00:00Z"));
    scan("zz", "delivered", NULL);
    run_watch();
    r = rec("zz");
    assert_int_equal(r.late_days, 3);
    assert_string_equal(r.comp_code, "");
    assert_non_null(strstr(r.comp_note, "nothing to give"));
    assert_int_equal(cs_store_call(W.s, discount_by_key, "comp:zz", &d, &err), CS_ERR_NOTFOUND);
}

static void test_undelivered_tier_and_budget(void **state)
{
    (void)state;
    /* 95.00 a day; a VIP (five orders) and two new customers, all promised
     * for Tuesday */
    W.wo.comp_daily_budget = 9500;
    reopen_watch();
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof id, "v%d", i);
        order(id, "vip", "50.00", NULL);
    }
    order("o6", "vip", "200.00", tuesday);
    order("o7", "c7", "200.00", tuesday);
    order("o8", "c8", "200.00", tuesday);
    ship("o6");
    ship("o7");
    ship("o8");
    run_watch();
    /* Thursday: two working days late, still not delivered */
    cs_clock_manual_set(&W.clock, at("2026-03-05T12:00:00Z"));
    for (int i = 0; i < 10; i++)
        run_watch();
    cs_promise_rec_t r6 = rec("o6"), r7 = rec("o7"), r8 = rec("o8");
    assert_int_equal(r6.late_days, 2);
    /* the VIP: 10% of 200.00 x 1.5 = 30.00 */
    assert_int_equal(r6.comp_cost, 3000);
    assert_non_null(strstr(r6.comp_note, "vip"));
    /* 30.00 + 20.00 + 20.00 fit ... */
    assert_int_equal(r7.comp_cost + r8.comp_cost, 4000);
    /* a fourth and fifth late order the same day run into the budget */
    order("o9", "c9", "200.00", tuesday);
    order("o10", "c10", "200.00", tuesday);
    order("o11", "c11", "200.00", tuesday);
    run_watch();
    cs_promise_rec_t r9 = rec("o9"), r10 = rec("o10"), r11 = rec("o11");
    assert_int_equal(r9.comp_cost, 2000);      /* 90.00 spent */
    assert_int_equal(r10.comp_cost, 490);      /* only free shipping still fits: 94.90 */
    assert_non_null(strstr(r10.comp_note, "free shipping"));
    assert_int_equal(r11.comp_cost, 0);        /* nothing fits */
    assert_string_equal(r11.comp_note, "daily budget used up");
    assert_string_equal(r11.comp_code, "");
    assert_true(r11.comp_at > 0);              /* decided: not retried */
    /* a new day has a new budget, but o11 was decided once */
    cs_clock_manual_set(&W.clock, at("2026-03-06T12:00:00Z"));
    run_watch();
    assert_string_equal(rec("o11").comp_code, "");
    assert_int_equal(signals("promise_broken", "o11"), 1);
    cs_watch_stats_t st;
    cs_watch_stats(W.watch, &st);
    assert_true(st.over_budget >= 2);
}

/* Amounts are in the shop's currency: an order in another gets a percent
 * code (sized as the amount would be, before min and max), counted against
 * the budget at compensation_max, and its total does not make its customer
 * a VIP by spending. vip_spent 0 means VIPs by orders alone. */
static void test_other_currency_and_vip_by_orders(void **state)
{
    (void)state;
    W.wo.comp_daily_budget = 100000;
    W.wo.vip_spent = 0;
    reopen_watch();
    order_in("jp1", "c-jp", "CHF", "9.00", "2000.00", tuesday);
    order("eu1", "c-eu", "30.00", tuesday); /* a first order: new, not VIP by 0 spent */
    ship("jp1");
    ship("eu1");
    run_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-06T12:00:00Z")); /* Friday: 3 days late */
    run_watch();
    cs_promise_rec_t r = rec("jp1");
    assert_int_equal(r.late_days, 3);
    assert_int_equal(r.comp_cost, W.wo.comp_amount_max);
    assert_non_null(strstr(r.comp_note, "percent, order in CHF"));
    cs_discount_t d;
    cs_err_t err;
    assert_int_equal(cs_store_call(W.s, discount_by_key, "comp:jp1", &d, &err), CS_OK);
    assert_int_equal(d.kind, CS_DISCOUNT_PERCENT);
    assert_true(d.value == 15); /* 3 days x 5%, a new customer */
    r = rec("eu1");
    assert_non_null(strstr(r.comp_note, "new, 3 days late"));
    assert_int_equal(r.comp_cost, 500); /* 15% of 30.00 = 4.50: the minimum 5.00 */
}

/* One day late earns free shipping -- unless the order shipped free: then
 * the smallest amount, which is worth something. */
static void test_free_shipping_only_if_paid(void **state)
{
    (void)state;
    W.wo.comp_daily_budget = 100000;
    reopen_watch();
    order_in("fs0", "c-fs0", "EUR", "0.00", "80.00", tuesday);
    order("fs1", "c-fs1", "80.00", tuesday); /* 4.90 shipping */
    ship("fs0");
    ship("fs1");
    run_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-04T12:00:00Z")); /* Wednesday: 1 day late */
    scan("fs0", "delivered", NULL);
    scan("fs1", "delivered", NULL);
    run_watch();
    cs_discount_t d;
    cs_err_t err;
    assert_int_equal(cs_store_call(W.s, discount_by_key, "comp:fs0", &d, &err), CS_OK);
    assert_int_equal(d.kind, CS_DISCOUNT_AMOUNT);
    assert_true(d.value == 5.0);
    assert_int_equal(rec("fs0").comp_cost, 500);
    assert_int_equal(cs_store_call(W.s, discount_by_key, "comp:fs1", &d, &err), CS_OK);
    assert_int_equal(d.kind, CS_DISCOUNT_FREE_SHIPPING);
    assert_int_equal(rec("fs1").comp_cost, 490);
    /* shipped free in another currency: the percentage instead */
    cs_clock_manual_set(&W.clock, at("2026-03-02T08:00:00Z"));
    order_in("fs2", "c-fs2", "CHF", "0.00", "80.00", tuesday);
    ship("fs2");
    run_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-04T12:00:00Z"));
    scan("fs2", "delivered", NULL);
    run_watch();
    assert_int_equal(cs_store_call(W.s, discount_by_key, "comp:fs2", &d, &err), CS_OK);
    assert_int_equal(d.kind, CS_DISCOUNT_PERCENT);
    assert_true(d.value == 5);
}

/* The budget is the shop's local day's: decisions at 23:30 and 00:30 in
 * Berlin fall on two days, each with its own budget (in UTC they would
 * share one). */
static void test_budget_is_the_local_day(void **state)
{
    (void)state;
    W.wo.comp_daily_budget = 2000;
    W.wo.comp_wait_days = 10; /* decided on delivery */
    reopen_watch();
    order("bd1", "c-bd1", "200.00", tuesday);
    order("bd2", "c-bd2", "200.00", tuesday);
    ship("bd1");
    ship("bd2");
    run_watch();
    /* Thursday 23:30 in Berlin (22:30Z): bd1 is decided, 20.00 */
    cs_clock_manual_set(&W.clock, at("2026-03-05T22:30:00Z"));
    scan("bd1", "delivered", NULL);
    run_watch();
    assert_int_equal(rec("bd1").comp_cost, 2000);
    /* Friday 00:30 in Berlin (23:30Z, still Thursday in UTC): a new budget */
    cs_clock_manual_set(&W.clock, at("2026-03-05T23:30:00Z"));
    scan("bd2", "delivered", NULL);
    run_watch();
    cs_promise_rec_t r = rec("bd2");
    assert_int_equal(r.comp_cost, 490); /* 30.00 is over 20.00: free shipping, today's budget */
    assert_string_not_equal(r.comp_code, "");
}

/* The tier is the one the customer had with the late order: orders placed
 * while it was on its way do not raise the compensation. */
static void test_tier_as_of_the_order(void **state)
{
    (void)state;
    order("o30", "c30", "200.00", tuesday);
    ship("o30");
    order("o31", "c31", "200.00", NULL);          /* c31: a second order before ... */
    order("o32", "c31", "200.00", tuesday);       /* ... this late one: a regular */
    ship("o32");
    run_watch();
    /* Wednesday: c30 orders five more times, which would make a VIP */
    cs_clock_manual_set(&W.clock, at("2026-03-04T10:00:00Z"));
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "o30-%d", i);
        order(id, "c30", "50.00", NULL);
    }
    cs_clock_manual_set(&W.clock, at("2026-03-05T12:00:00Z"));
    for (int i = 0; i < 10; i++)
        run_watch();
    cs_promise_rec_t r30 = rec("o30"), r32 = rec("o32");
    assert_int_equal(r30.late_days, 2);
    assert_non_null(strstr(r30.comp_note, "new"));
    assert_int_equal(r30.comp_cost, 2000);           /* 10% of 200.00 */
    assert_non_null(strstr(r32.comp_note, "regular"));
    assert_int_equal(r32.comp_cost, 2500);           /* 10% x 1.25 */
}

/* Money given back is not spent: a customer whose 600.00 order was
 * returned and refunded is no VIP by spending, nor a regular by that
 * order, sent back whole; nor is one whose 600.00 order was cancelled;
 * one who kept it is. */
static void test_tier_spent_net_of_refunds(void **state)
{
    (void)state;
    order("o40", "c40", "600.00", NULL);
    event_at("return.requested", now(),
             "{\"id\":\"R40\",\"order_id\":\"o40\",\"resolution\":\"refund\","
             "\"items\":[{\"sku\":\"K\",\"quantity\":1}]}");
    event_at("return.updated", now(), "{\"id\":\"R40\",\"status\":\"refunded\","
                                      "\"refund_amount\":\"600.00\"}");
    order("o41", "c40", "200.00", tuesday);
    order("o42", "c42", "600.00", NULL);
    event_at("order.cancelled", now(), "{\"order_id\":\"o42\"}");
    order("o43", "c42", "200.00", tuesday);
    order("o44", "c44", "600.00", NULL);
    order("o45", "c44", "200.00", tuesday);
    ship("o41");
    ship("o43");
    ship("o45");
    run_watch();
    cs_clock_manual_set(&W.clock, at("2026-03-05T12:00:00Z"));
    for (int i = 0; i < 10; i++)
        run_watch();
    cs_promise_rec_t r41 = rec("o41"), r43 = rec("o43"), r45 = rec("o45");
    assert_non_null(strstr(r41.comp_note, "new"));
    assert_int_equal(r41.comp_cost, 2000); /* 10% */
    assert_non_null(strstr(r43.comp_note, "new"));
    assert_int_equal(r43.comp_cost, 2000);
    assert_non_null(strstr(r45.comp_note, "vip"));
    assert_int_equal(r45.comp_cost, 3000); /* 10% x 1.5 */
}

static void test_cancelled_closes(void **state)
{
    (void)state;
    order("o12", "c12", "30.00", NULL);
    ship("o12");
    run_watch();
    assert_int_equal(cs_tracker_in_flight_count(W.tracker), 1);
    event_at("order.cancelled", now(), "{\"order_id\":\"o12\"}");
    run_watch();
    assert_int_equal(cs_tracker_in_flight_count(W.tracker), 0);
    cs_promise_rec_t r = rec("o12");
    assert_true(r.closed);
    assert_int_equal(r.check_at, 0);
    assert_string_equal(r.reason, "cancelled");
}

/* A label printed twice and the second one voided (shipment.cancelled):
 * the voided parcel, never scanned, is not followed -- no silence, no
 * missed hand-over, no code on its account; the order closes when the
 * real parcel is delivered. */
static void test_cancelled_parcel_not_followed(void **state)
{
    (void)state;
    order("o20", "c20", "40.00", NULL);
    ship("o20");
    cs_clock_manual_advance(&W.clock, 3600000LL);
    event_at("shipment.created", now(),
             "{\"id\":\"So20b\",\"order_id\":\"o20\",\"carrier\":\"dhl\","
             "\"tracking_number\":\"To20b\",\"origin\":{\"country\":\"DE\",\"region\":\"SN\"},"
             "\"destination\":{\"country\":\"DE\",\"postal_code\":\"10115\"}}");
    run_watch();
    cs_clock_manual_advance(&W.clock, 600000LL);
    event_at("shipment.cancelled", now(),
             "{\"id\":\"So20b\",\"order_id\":\"o20\",\"reason\":\"duplicate_label\"}");
    scan("o20", "in_transit", NULL);
    run_watch();
    cs_clock_manual_advance(&W.clock, CS_MS_PER_DAY);
    scan("o20", "delivered", NULL);
    run_watch();
    cs_promise_rec_t r = rec("o20");
    assert_true(r.closed);
    assert_false(r.at_risk);
    assert_string_equal(r.closed_shipment, "So20");
    assert_int_equal(cs_tracker_in_flight_count(W.tracker), 0);
    /* a week on: nothing about the voided label */
    cs_clock_manual_advance(&W.clock, 7 * CS_MS_PER_DAY);
    for (int i = 0; i < 40; i++)
        run_watch();
    r = rec("o20");
    assert_true(r.closed);
    assert_int_equal(r.comp_at, 0);
    assert_int_equal(signals("delivery_at_risk", "o20"), 0);
    assert_int_equal(signals("promise_broken", "o20"), 0);
}

/* An order whose only parcel is cancelled is not shipped yet again: it is
 * judged as one before its first shipment.created (a missed hand-over),
 * and the parcel is no longer in flight for the model. */
static void test_only_parcel_cancelled(void **state)
{
    (void)state;
    order("o21", "c21", "30.00", NULL);
    ship("o21");
    run_watch();
    assert_int_equal(cs_tracker_in_flight_count(W.tracker), 1);
    cs_clock_manual_advance(&W.clock, 600000LL);
    event_at("shipment.cancelled", now(), "{\"id\":\"So21\",\"order_id\":\"o21\"}");
    run_watch();
    assert_int_equal(cs_tracker_in_flight_count(W.tracker), 0);
    cs_promise_rec_t r = rec("o21");
    assert_false(r.closed);
    assert_false(r.at_risk);
    /* not handed over when parcels of its lane are: at risk for that */
    cs_clock_manual_advance(&W.clock, 2 * CS_MS_PER_DAY);
    for (int i = 0; i < 20; i++)
        run_watch();
    r = rec("o21");
    assert_true(r.at_risk);
    assert_string_equal(r.risk_reason, "missed_handover");
    /* announced anew after the cancellation: shipped, followed again */
    ship("o21");
    run_watch();
    assert_int_equal(cs_tracker_in_flight_count(W.tracker), 1);
    assert_false(rec("o21").at_risk);
}

static void test_horizon_ends_the_watch(void **state)
{
    (void)state;
    order("o13", "c13", "30.00", NULL);
    ship("o13");
    scan("o13", "in_transit", NULL);
    run_watch();
    assert_true(rec("o13").check_at > 0);
    cs_clock_manual_advance(&W.clock, 61 * CS_MS_PER_DAY); /* lost, never delivered */
    for (int i = 0; i < 5; i++)
        run_watch();
    cs_promise_rec_t r = rec("o13");
    assert_true(r.closed);
    assert_int_equal(r.check_at, 0);
    assert_int_equal(cs_tracker_in_flight_count(W.tracker), 0); /* lost, not slow */
    /* an order at risk when the horizon comes stays flagged: still not
     * delivered after 60 days it is late, and lowering the flag would
     * show a live window in the past and lift the late-delivery hold */
    order("o14", "c14", "30.00", NULL);
    ship("o14");
    scan("o14", "in_transit", NULL);
    run_watch();
    cs_clock_manual_advance(&W.clock, 20 * CS_MS_PER_DAY); /* silent, then late */
    run_watch();
    r = rec("o14");
    assert_true(r.at_risk);
    assert_false(r.closed);
    cs_clock_manual_advance(&W.clock, 41 * CS_MS_PER_DAY);
    run_watch();
    r = rec("o14");
    assert_true(r.closed);
    assert_true(r.at_risk);
    assert_true(r.broken_at > 0);
    cs_ms_t next;
    cs_err_t err;
    assert_int_equal(cs_store_call(W.s, promise_next, &next, &err), CS_OK);
    assert_true(next == 0 || next > now()); /* nothing left overdue */
}

static void test_workdays_late(void **state)
{
    (void)state;
    const cs_tz_t *tz = cs_tz_get_or_utc("Europe/Berlin");
    cs_ms_t tue = at("2026-03-03T12:00:00Z");
    assert_int_equal(cs_workdays_late(tz, NULL, tue, at("2026-03-03T22:30:00Z")), 0); /* still Tuesday */
    assert_int_equal(cs_workdays_late(tz, NULL, tue, at("2026-03-03T23:30:00Z")), 1); /* Wednesday */
    assert_int_equal(cs_workdays_late(tz, NULL, tue, at("2026-03-09T10:00:00Z")), 5); /* next Monday */
    cs_ms_t sat = at("2026-03-07T12:00:00Z");
    assert_int_equal(cs_workdays_late(tz, NULL, sat, at("2026-03-08T12:00:00Z")), 1); /* Sunday */
    /* promised Thursday 24 December, arrived Monday 28: with German
     * holidays one working day late (Friday 25 and Saturday 26 closed) */
    cs_calendar_t *de = NULL;
    cs_err_t err;
    assert_int_equal(cs_calendar_new("DE", NULL, &de, &err), CS_OK);
    cs_ms_t eve = at("2026-12-24T12:00:00Z");
    assert_int_equal(cs_workdays_late(tz, NULL, eve, at("2026-12-28T10:00:00Z")), 3);
    assert_int_equal(cs_workdays_late(tz, de, eve, at("2026-12-28T10:00:00Z")), 1);
    /* on a holiday: later at all is a day late */
    assert_int_equal(cs_workdays_late(tz, de, eve, at("2026-12-25T10:00:00Z")), 1);
    cs_calendar_free(&de);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backfill_is_quiet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_placed_order_is_quiet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stuck_at_one_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_and_current, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shop_promise_is_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incidents_flag_once_per_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_given_to_another_customer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silence_found_by_durable_recheck, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exception_silence_has_no_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silence_after_weather, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silence_after_customs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depot_hold_over_slowness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_customs_clearance_is_routine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_customs_count_through_hub_scans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_parcel_is_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_delivery_compensated_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_to_give, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undelivered_tier_and_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tier_as_of_the_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tier_spent_net_of_refunds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_currency_and_vip_by_orders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_is_the_local_day, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_shipping_only_if_paid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shipping_plan_gives_the_lane, setup, teardown),
        cmocka_unit_test_setup_teardown(test_region_scan_narrows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_names_the_learned_lane, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arriving_is_never_late, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pickup_is_arrival, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_yardstick_no_late_at_purchase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_parcel_reopens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_report_still_compensated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivered_stays_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scans_before_shipment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_return_wins_a_tie, setup, teardown),
        cmocka_unit_test_setup_teardown(test_return_trip_stays_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replacement_has_its_own_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latest_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_parcel_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_parcel_seen_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_used_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_announced_again_keeps_handover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_left_is_judged_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_near, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_parcel_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_parcel_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_horizon_ends_the_watch, setup, teardown),
        cmocka_unit_test(test_workdays_late),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
