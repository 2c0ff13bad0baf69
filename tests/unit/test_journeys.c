/* test_journeys.c -- the journey runtime against a real SQLite store with a
 * manual clock: runs start, wait, resume on events, time out, exit; the
 * policy's decisions land in the outbox; versions, switches, restarts and
 * rolled-back passes behave. Time moves; nothing sleeps. */
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
#include "lib/cs_tz.h"
#include "test_store.h"

typedef struct world {
    cs_clock_manual_t clock;
    cs_store_t *s;
    cs_journeys_t *js;
    cs_journeys_stats_t st;
    char path[64];
    int ev_n;
} world_t;

static cs_ms_t at(const char *t)
{
    cs_ms_t v;
    assert_true(cs_time_parse(t, &v));
    return v;
}

static void open_store(world_t *w)
{
    cs_err_t err;
    char target[512];
    test_store_target(target, sizeof target, w->path);
    cs_store_opts_t o;
    cs_store_opts_default(&o);
    o.durable = false;
    if (cs_store_open(target, &o, &w->s, &err))
        fail_msg("%s", err.msg);
}

static unsigned g_channels_off;
static const char *g_shop_tz;              /* NULL: none given */
static const cs_policy_conf_t *g_policy;   /* NULL: the default */
static const cs_calendar_t *g_calendar;    /* NULL: none given */

static void load(world_t *w, const char *const *yamls, size_t n)
{
    cs_err_t err;
    cs_journeys_opts_t o = { .clock = &w->clock.clock, .channels_off = g_channels_off,
                             .shop_tz = g_shop_tz ? cs_tz_get_or_utc(g_shop_tz) : NULL,
                             .calendar = g_calendar };
    if (g_policy) {
        o.policy = *g_policy;
        o.policy_set = true;
    }
    assert_int_equal(cs_journeys_new(&o, &w->js, &err), CS_OK);
    for (size_t i = 0; i < n; i++) {
        cs_journey_t *j;
        char name[32];
        snprintf(name, sizeof name, "j%zu.yaml", i);
        if (cs_journey_parse(name, yamls[i], strlen(yamls[i]), &j, &err))
            fail_msg("%s", err.msg);
        assert_int_equal(cs_journeys_add(w->js, j, &err), CS_OK);
    }
    assert_int_equal(cs_store_begin(w->s, &err), CS_OK);
    assert_int_equal(cs_journeys_sync(w->js, w->s, &err), CS_OK);
    assert_int_equal(cs_store_commit(w->s, &err), CS_OK);
}

static void setup_world(world_t *w, const char *start, const char *const *yamls, size_t n)
{
    memset(w, 0, sizeof *w);
    assert_int_equal(test_store_fresh(w->path, sizeof w->path, "/tmp/cs_journeys_XXXXXX"), 0);
    cs_clock_manual_init(&w->clock, at(start));
    open_store(w);
    load(w, yamls, n);
}

static void teardown_world(world_t *w)
{
    cs_journeys_free(w->js);
    cs_store_close(&w->s);
    char p[96];
    unlink(w->path);
    snprintf(p, sizeof p, "%s-wal", w->path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", w->path);
    unlink(p);
}

/* Ingest one event (type, data JSON) at the clock's time, then run a pass. */
static void pass(world_t *w)
{
    cs_err_t err;
    assert_int_equal(cs_store_begin(w->s, &err), CS_OK);
    cs_rc rc = cs_journeys_process_events(w->js, w->s, 1000, &w->st, &err);
    if (!rc)
        rc = cs_journeys_fire_due(w->js, w->s, 100000, &w->st, &err);
    if (rc)
        fail_msg("pass: %s", err.msg);
    assert_int_equal(cs_store_commit(w->s, &err), CS_OK);
}

/* An event of type with data that occurred at `when` (NULL: now). */
static void event_when(world_t *w, const char *type, const char *when, const char *data)
{
    char buf[4096], ts[40];
    if (when)
        cs_strlcpy(ts, when, sizeof ts);
    else
        cs_time_format(cs_clock_now(&w->clock.clock), ts, sizeof ts);
    snprintf(buf, sizeof buf,
             "{\"event_id\":\"ev-%d\",\"type\":\"%s\",\"occurred_at\":\"%s\",\"data\":%s}",
             ++w->ev_n, type, ts, data);
    cs_event_t *ev;
    cs_err_t err;
    if (cs_event_parse(buf, strlen(buf), &ev, &err))
        fail_msg("event %s: %s", buf, err.msg);
    cs_ingest_outcome_t oc;
    int64_t seq;
    assert_int_equal(cs_store_begin(w->s, &err), CS_OK);
    assert_int_equal(cs_store_ingest(w->s, ev, cs_clock_now(&w->clock.clock), &oc, &seq, &err),
                     CS_OK);
    assert_int_equal(cs_store_commit(w->s, &err), CS_OK);
    cs_event_free(&ev);
    pass(w);
}

static void event(world_t *w, const char *type, const char *data)
{
    event_when(w, type, NULL, data);
}

static void advance_to(world_t *w, const char *t)
{
    cs_clock_manual_set(&w->clock, at(t));
    pass(w);
}

static void customer(world_t *w, const char *id, bool marketing)
{
    char d[512];
    snprintf(d, sizeof d,
             "{\"id\":\"%s\",\"email\":\"%s@example.de\",\"phone\":\"+4915100000000\","
             "\"locale\":\"de\",\"timezone\":\"Europe/Berlin\",\"consents\":{\"email\":"
             "{\"transactional\":true,\"marketing\":%s}}}",
             id, id, marketing ? "true" : "false");
    event(w, "customer.upserted", d);
}

static void order(world_t *w, const char *id, const char *cust, const char *price)
{
    char d[512], latest[40];
    /* promised within a week */
    cs_time_format(cs_clock_now(&w->clock.clock) + 7 * CS_MS_PER_DAY, latest, sizeof latest);
    snprintf(d, sizeof d,
             "{\"id\":\"%s\",\"customer_id\":\"%s\",\"currency\":\"EUR\",\"items\":[{\"sku\":"
             "\"ZELT-2\",\"name\":\"Zelt\",\"unit_price\":\"%s\",\"quantity\":1}],"
             "\"promised_delivery\":{\"latest\":\"%.10s\"}}",
             id, cust, price, latest);
    event(w, "order.placed", d);
}

static void shipment(world_t *w, const char *order_id)
{
    char d[512];
    snprintf(d, sizeof d,
             "{\"id\":\"s-%s\",\"order_id\":\"%s\",\"carrier\":\"dhl\",\"tracking_number\":"
             "\"T%s\"}",
             order_id, order_id, order_id);
    event(w, "shipment.created", d);
}

static void scan(world_t *w, const char *order_id, const char *status)
{
    char d[512];
    snprintf(d, sizeof d,
             "{\"shipment_id\":\"s-%s\",\"carrier\":\"dhl\",\"tracking_number\":\"T%s\","
             "\"status\":\"%s\"}",
             order_id, order_id, status);
    event(w, "tracking.event", d);
}

/* The customer's messages as "template:status[:reason]" lines, oldest first. */
static const char *outbox(world_t *w, const char *cust)
{
    static char buf[2048];
    json_t *arr;
    cs_err_t err;
    assert_int_equal(cs_store_call(w->s, outbox_view, cust, &arr, &err), CS_OK);
    buf[0] = '\0';
    for (size_t i = json_array_size(arr); i-- > 0;) {
        json_t *m = json_array_get(arr, i);
        const char *reason = json_string_value(json_object_get(m, "reason"));
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s:%s%s%s",
                 buf[0] ? " " : "", json_string_value(json_object_get(m, "template")),
                 json_string_value(json_object_get(m, "status")), reason ? ":" : "",
                 reason ? reason : "");
    }
    json_decref(arr);
    return buf;
}

/* The customer's runs as "journey:status[:reason]", oldest first. */
static const char *runs(world_t *w, const char *cust)
{
    static char buf[2048];
    json_t *arr;
    cs_err_t err;
    assert_int_equal(cs_store_call(w->s, runs_view, cust, &arr, &err), CS_OK);
    buf[0] = '\0';
    for (size_t i = json_array_size(arr); i-- > 0;) {
        json_t *r = json_array_get(arr, i);
        const char *reason = json_string_value(json_object_get(r, "exit_reason"));
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s:%s%s%s",
                 buf[0] ? " " : "", json_string_value(json_object_get(r, "journey")),
                 json_string_value(json_object_get(r, "status")), reason ? ":" : "",
                 reason ? reason : "");
    }
    json_decref(arr);
    return buf;
}

static int64_t timers(world_t *w)
{
    int64_t n;
    cs_err_t err;
    assert_int_equal(cs_store_call(w->s, timer_count, &n, &err), CS_OK);
    return n;
}

static const char *confirm_yaml =
    "journey: order_confirmation\n"
    "trigger: {event: order.placed}\n"
    "steps:\n"
    "  - if: \"risk.first_purchase\"\n"
    "    then:\n"
    "      - send: {channel: email, template: confirmation_first, class: transactional}\n"
    "    else:\n"
    "      - send: {channel: email, template: confirmation, class: transactional}\n";

static const char *review_yaml =
    "journey: review_request\n"
    "trigger: {event: order.placed}\n"
    "exit_when: [order_cancelled, return_requested, ticket_opened]\n"
    "steps:\n"
    "  - wait_for: {event: tracking.event, if: \"event.status == 'delivered'\", timeout: 14d}\n"
    "  - wait: 5d\n"
    "  - wait_until: {time: \"10:00\", business_day: true}\n"
    "  - send: {channel: [sms, email], template: review, class: ask}\n";

static void test_confirmation_first_and_repeat(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { confirm_yaml };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 1);
    customer(&w, "anna", false);
    order(&w, "o1", "anna", "89.00");
    assert_string_equal(outbox(&w, "anna"), "confirmation_first:queued");
    order(&w, "o2", "anna", "19.00");
    assert_string_equal(outbox(&w, "anna"), "confirmation_first:queued confirmation:queued");
    assert_string_equal(runs(&w, "anna"), "order_confirmation:done order_confirmation:done");
    /* the recipient, locale and idempotency key are recorded */
    json_t *arr;
    cs_err_t err;
    assert_int_equal(cs_store_call(w.s, outbox_view, "anna", &arr, &err), CS_OK);
    json_t *m = json_array_get(arr, 1);
    assert_string_equal(json_string_value(json_object_get(m, "recipient")), "anna@example.de");
    assert_string_equal(json_string_value(json_object_get(m, "locale")), "de");
    assert_string_equal(json_string_value(json_object_get(m, "idempotency_key")),
                        "order_confirmation:o:o1:1");
    json_decref(arr);
    /* the same log read again changes nothing (the cursor moved) */
    pass(&w);
    assert_string_equal(outbox(&w, "anna"), "confirmation_first:queued confirmation:queued");
    teardown_world(&w);
}

static void test_review_after_delivery(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { review_yaml };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 1); /* a Monday */
    customer(&w, "ben", true);
    order(&w, "o1", "ben", "49.90");
    assert_string_equal(runs(&w, "ben"), "review_request:active");
    shipment(&w, "o1");
    advance_to(&w, "2026-07-14T09:00:00Z");
    scan(&w, "o1", "in_transit");
    advance_to(&w, "2026-07-15T16:00:00Z");
    scan(&w, "o1", "delivered"); /* Wednesday: wait 5 days -> Monday 16:00 */
    assert_int_equal(timers(&w), 2); /* the old timeout (stale) and the 5-day wait */
    advance_to(&w, "2026-07-20T15:59:00Z");
    assert_string_equal(outbox(&w, "ben"), "");
    advance_to(&w, "2026-07-20T16:00:00Z"); /* 18:00 in Berlin: next 10:00 is Tuesday */
    assert_string_equal(outbox(&w, "ben"), "");
    advance_to(&w, "2026-07-21T07:59:00Z");
    assert_string_equal(outbox(&w, "ben"), "");
    advance_to(&w, "2026-07-21T08:00:00Z");
    /* sms has no consent on record: the preference list falls back to email */
    assert_string_equal(outbox(&w, "ben"), "review:queued");
    assert_string_equal(runs(&w, "ben"), "review_request:done");
    /* the stale timeout fires later and changes nothing */
    advance_to(&w, "2026-07-28T10:00:00Z");
    assert_int_equal(timers(&w), 0);
    assert_string_equal(outbox(&w, "ben"), "review:queued");
    teardown_world(&w);
}

static const char *shipped_yaml =
    "journey: shipped\n"
    "trigger: {event: shipment.created, if: \"shipment.status != 'delivered'\"}\n"
    "steps:\n"
    "  - send: {channel: email, template: shipped, class: transactional}\n";

static const char *tips_yaml =
    "journey: tips\n"
    "trigger: {event: tracking.event, if: \"event.status == 'delivered'\"}\n"
    "steps:\n"
    "  - send: {channel: email, template: tips, class: transactional}\n";

/* A shop whose events come out of order: a parcel and its scans before
 * the order, scans before their parcel. What they would have started
 * starts when the order (or the parcel) comes; a run waiting for the
 * delivery hears of the one that came first. */
static void test_events_before_their_order(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { review_yaml, shipped_yaml, tips_yaml };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 3);
    customer(&w, "ben", true);
    /* delivered before the order came: tips, the review's wait is over,
     * no shipping notice for a parcel already there */
    shipment(&w, "o1");
    scan(&w, "o1", "in_transit");
    scan(&w, "o1", "delivered");
    assert_string_equal(runs(&w, "ben"), "");
    order(&w, "o1", "ben", "49.90");
    assert_string_equal(runs(&w, "ben"), "review_request:active tips:done");
    assert_string_equal(outbox(&w, "ben"), "tips:queued");
    advance_to(&w, "2026-07-18T10:00:00Z"); /* five days after */
    advance_to(&w, "2026-07-20T08:00:00Z"); /* then 10:00 on a workday, in Berlin */
    assert_string_equal(outbox(&w, "ben"), "tips:queued review:queued");
    /* on its way before the order came: the shipping notice */
    shipment(&w, "o2");
    scan(&w, "o2", "in_transit");
    order(&w, "o2", "ben", "19.00");
    assert_string_equal(outbox(&w, "ben"), "tips:queued review:queued shipped:queued");
    /* the order known, the scans before their parcel */
    order(&w, "o3", "ben", "29.00");
    scan(&w, "o3", "delivered");
    shipment(&w, "o3");
    assert_string_equal(outbox(&w, "ben"),
                        "tips:queued review:queued shipped:queued tips:queued");
    teardown_world(&w);
}

static void test_timeout_and_exits(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { review_yaml };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 1);
    customer(&w, "cara", true);
    order(&w, "o1", "cara", "10.00");
    order(&w, "o2", "cara", "10.00");
    order(&w, "o3", "cara", "10.00");
    /* o1 never arrives: 14 days later the run ends with nothing sent */
    event(&w, "order.cancelled", "{\"order_id\":\"o2\"}");
    event(&w, "ticket.created",
          "{\"id\":\"t1\",\"customer_id\":\"cara\",\"order_id\":\"o3\",\"subject\":\"Wo ist "
          "meine Bestellung?\"}");
    assert_string_equal(runs(&w, "cara"), "review_request:active review_request:exited:"
                                          "order_cancelled review_request:exited:ticket_opened");
    advance_to(&w, "2026-07-27T10:00:00Z");
    assert_string_equal(runs(&w, "cara"), "review_request:exited:timeout review_request:exited:"
                                          "order_cancelled review_request:exited:ticket_opened");
    assert_string_equal(outbox(&w, "cara"), "");
    assert_int_equal(timers(&w), 0);
    teardown_world(&w);
}

/* A ticket.created sent again (a helpdesk's retry under a new event id,
 * days later) is no new ticket: it ends no run with ticket_opened, as an
 * order.placed that edits its order is no new order. Before, the repeat of
 * a ticket solved long ago ended the customer's review request. */
static void test_ticket_sent_again_ends_no_run(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { review_yaml };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 1);
    customer(&w, "cara", true);
    event(&w, "ticket.created",
          "{\"id\":\"t1\",\"customer_id\":\"cara\",\"subject\":\"Frage\"}");
    event(&w, "ticket.updated", "{\"id\":\"t1\",\"status\":\"solved\"}");
    advance_to(&w, "2026-07-14T10:00:00Z");
    order(&w, "o1", "cara", "10.00");
    advance_to(&w, "2026-07-15T10:00:00Z");
    event(&w, "ticket.created",
          "{\"id\":\"t1\",\"customer_id\":\"cara\",\"subject\":\"Frage\"}");
    assert_string_equal(runs(&w, "cara"), "review_request:active");
    /* a new ticket does */
    event(&w, "ticket.created",
          "{\"id\":\"t2\",\"customer_id\":\"cara\",\"subject\":\"Noch eine Frage\"}");
    assert_string_equal(runs(&w, "cara"), "review_request:exited:ticket_opened");
    teardown_world(&w);
}

/* The same with more than a thousand tickets of the customer between the
 * ticket and its repeat (a shop's support inbox under one customer id):
 * the repeat is still known. Before, only the customer's latest 1,000
 * ticket.created events were looked through, and the repeat ended the
 * review request as a new ticket. */
static void test_ticket_sent_again_after_many(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { review_yaml };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 1);
    customer(&w, "cara", true);
    event(&w, "ticket.created", "{\"id\":\"t-old\",\"customer_id\":\"cara\"}");
    cs_err_t err;
    char ts[40];
    cs_time_format(cs_clock_now(&w.clock.clock), ts, sizeof ts);
    assert_int_equal(cs_store_begin(w.s, &err), CS_OK);
    for (int i = 0; i < 1100; i++) {
        char buf[512];
        snprintf(buf, sizeof buf,
                 "{\"event_id\":\"many-%d\",\"type\":\"ticket.created\",\"occurred_at\":"
                 "\"%s\",\"data\":{\"id\":\"t-%d\",\"customer_id\":\"cara\"}}",
                 i, ts, i);
        cs_event_t *ev;
        cs_ingest_outcome_t oc;
        int64_t seq;
        assert_int_equal(cs_event_parse(buf, strlen(buf), &ev, &err), CS_OK);
        assert_int_equal(cs_store_ingest(w.s, ev, cs_clock_now(&w.clock.clock), &oc, &seq, &err),
                         CS_OK);
        cs_event_free(&ev);
    }
    assert_int_equal(cs_store_commit(w.s, &err), CS_OK);
    pass(&w);
    pass(&w);
    advance_to(&w, "2026-07-14T10:00:00Z");
    order(&w, "o1", "cara", "10.00");
    assert_string_equal(runs(&w, "cara"), "review_request:active");
    event(&w, "ticket.created", "{\"id\":\"t-old\",\"customer_id\":\"cara\"}");
    assert_string_equal(runs(&w, "cara"), "review_request:active");
    /* and one of the many is a repeat too */
    event(&w, "ticket.created", "{\"id\":\"t-5\",\"customer_id\":\"cara\"}");
    assert_string_equal(runs(&w, "cara"), "review_request:active");
    event(&w, "ticket.created", "{\"id\":\"t-new\",\"customer_id\":\"cara\"}");
    assert_string_equal(runs(&w, "cara"), "review_request:exited:ticket_opened");
    teardown_world(&w);
}

/* A ticket.created sent again starts nothing either, also for a journey
 * that runs once per event: it is the same ticket (as it ends no run).
 * Before, its new event id started a second run, and the customer got a
 * second "we have your ticket". */
static void test_ticket_sent_again_starts_no_run(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: ticket_ack\ntrigger: {event: ticket.created}\nonce_per: event\nsteps:\n"
        "  - send: {channel: email, template: ticket_ack, class: transactional}\n",
        "journey: ticket_first\ntrigger: {event: ticket.created}\nonce_per: customer\nsteps:\n"
        "  - send: {channel: email, template: ticket_first, class: transactional}\n",
    };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 2);
    customer(&w, "cara", true);
    event(&w, "ticket.created", "{\"id\":\"t1\",\"customer_id\":\"cara\"}");
    assert_string_equal(runs(&w, "cara"), "ticket_ack:done ticket_first:done");
    advance_to(&w, "2026-07-13T12:00:00Z");
    event(&w, "ticket.created", "{\"id\":\"t1\",\"customer_id\":\"cara\"}");
    assert_string_equal(runs(&w, "cara"), "ticket_ack:done ticket_first:done");
    assert_string_equal(outbox(&w, "cara"), "ticket_ack:queued ticket_first:queued");
    /* a new ticket does */
    event(&w, "ticket.created", "{\"id\":\"t2\",\"customer_id\":\"cara\"}");
    assert_string_equal(runs(&w, "cara"), "ticket_ack:done ticket_first:done ticket_ack:done");
    teardown_world(&w);
}

/* A run about an order waits for an event about no order (a message's
 * status, a signal the shop sends for the customer): the customer's event
 * concerns the run, as a ticket without an order ends it. Before, such a
 * wait always timed out: the reminder went to a customer who had clicked. */
static void test_wait_for_a_customer_event_in_an_order_run(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: ask\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: email, template: ask, class: transactional}\n"
        "  - wait_for:\n"
        "      event: message.status\n"
        "      if: \"event.status == 'clicked'\"\n"
        "      timeout: 3d\n"
        "      on_timeout: [{send: {channel: email, template: reminder, class: transactional}}]\n"
        "  - send: {channel: email, template: thanks, class: transactional}\n",
    };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 1);
    customer(&w, "lea", true);
    order(&w, "o1", "lea", "30.00");
    order(&w, "o2", "lea", "30.00");
    assert_string_equal(outbox(&w, "lea"), "ask:queued ask:queued");
    event(&w, "message.status",
          "{\"message_id\":\"m1\",\"status\":\"opened\",\"customer_id\":\"lea\"}");
    assert_string_equal(runs(&w, "lea"), "ask:active ask:active");
    event(&w, "message.status",
          "{\"message_id\":\"m1\",\"status\":\"clicked\",\"customer_id\":\"lea\"}");
    assert_string_equal(runs(&w, "lea"), "ask:done ask:done");
    advance_to(&w, "2026-07-17T10:00:00Z");
    assert_string_equal(outbox(&w, "lea"), "ask:queued ask:queued thanks:queued thanks:queued");
    teardown_world(&w);
}

/* A status of one of our messages that names only the message (its
 * number) is its customer's and its channel's: a journey on it starts for
 * that customer, and its condition sees the message's customer and
 * channel; the unsubscribe ends the customer's runs. Before, such a status
 * was nobody's: nothing started, nothing ended, event.channel was null. */
static void test_status_of_our_message_names_it(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: ask\ntrigger: {event: order.placed}\nexit_when: [unsubscribed]\nsteps:\n"
        "  - send: {channel: email, template: ask, class: transactional}\n"
        "  - wait: 3d\n"
        "  - send: {channel: email, template: reminder, class: transactional}\n",
        "journey: opened\ntrigger:\n  event: message.status\n"
        "  if: \"event.status == 'opened' and event.channel == 'email' and "
        "event.customer_id == 'lea'\"\n"
        "once_per: event\nsteps:\n"
        "  - send: {channel: email, template: opened, class: transactional}\n",
    };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 2);
    customer(&w, "lea", true);
    order(&w, "o1", "lea", "30.00");
    assert_string_equal(outbox(&w, "lea"), "ask:queued");
    json_t *arr;
    cs_err_t err;
    assert_int_equal(cs_store_call(w.s, outbox_view, "lea", &arr, &err), CS_OK);
    long long id = json_integer_value(json_object_get(json_array_get(arr, 0), "id"));
    json_decref(arr);
    char data[128];
    snprintf(data, sizeof data, "{\"message_id\":\"%lld\",\"status\":\"opened\"}", id);
    event(&w, "message.status", data);
    assert_string_equal(runs(&w, "lea"), "ask:active opened:done");
    assert_string_equal(outbox(&w, "lea"), "ask:queued opened:queued");
    snprintf(data, sizeof data, "{\"message_id\":\"%lld\",\"status\":\"unsubscribed\"}", id);
    event(&w, "message.status", data);
    assert_string_equal(runs(&w, "lea"), "ask:exited:unsubscribed opened:done");
    teardown_world(&w);
}

/* An order.placed that reaches us days late (a webhook retried, a shop
 * connected late) after its parcel's fresh scans: the order itself is too
 * old to start anything, but the scans it brings in are not, and start what
 * they would have started. Before, the old order brought nothing in: no
 * tips for a parcel delivered today. */
static void test_late_order_brings_in_fresh_scans(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { review_yaml, tips_yaml };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 2);
    customer(&w, "max", true);
    shipment(&w, "o1");
    scan(&w, "o1", "delivered");
    assert_string_equal(runs(&w, "max"), "");
    event_when(&w, "order.placed", "2026-07-08T10:00:00Z",
               "{\"id\":\"o1\",\"customer_id\":\"max\",\"currency\":\"EUR\",\"items\":"
               "[{\"sku\":\"A\",\"name\":\"A\",\"unit_price\":\"10.00\",\"quantity\":1}]}");
    assert_string_equal(runs(&w, "max"), "tips:done");
    assert_string_equal(outbox(&w, "max"), "tips:queued");
    teardown_world(&w);
}

/* Every field the store puts in a run's context is one a journey file may
 * name (the loader refuses others as typos). */
static void test_context_fields_known(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { review_yaml };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 1);
    customer(&w, "ida", true);
    order(&w, "o1", "ida", "10.00");
    order(&w, "o2", "ida", "20.00");
    shipment(&w, "o2");
    scan(&w, "o2", "delivered");
    event(&w, "ticket.created", "{\"id\":\"t1\",\"customer_id\":\"ida\",\"order_id\":\"o2\","
                                "\"subject\":\"Frage\"}");
    json_t *cu, *o, *sh;
    cs_err_t err;
    assert_int_equal(cs_store_call(w.s, journey_context, "ida", "o2", 0, CS_CTX_FULL, &cu, &o, &sh,
                                   &err),
                     CS_OK);
    const struct { const char *root; json_t *v; } roots[] = { { "customer", cu }, { "order", o },
                                                              { "shipment", sh } };
    for (size_t i = 0; i < CS_ARRAY_LEN(roots); i++) {
        assert_non_null(roots[i].v);
        const char *key;
        json_t *m;
        size_t n = 0;
        json_object_foreach(roots[i].v, key, m) {
            n++;
            if (!cs_journey_context_field(roots[i].root, key, strlen(key)))
                fail_msg("%s.%s is in the context but a journey may not name it", roots[i].root,
                         key);
        }
        assert_true(n >= 7);
    }
    json_t *parcel = json_array_get(json_object_get(o, "shipments"), 0);
    const char *key;
    json_t *m;
    json_object_foreach(parcel, key, m)
        assert_true(cs_journey_context_field("shipment", key, strlen(key)));
    json_decref(cu);
    json_decref(o);
    json_decref(sh);
    teardown_world(&w);
}

/* order.ticket_open in a condition agrees with the contact policy's hold:
 * a ticket left open without an update for ticket_stale_after (30 days by
 * default) is not open to it, one kept up is, and with the setting off
 * every open ticket is. Before, a condition counted the stale ticket as
 * open while the hold let the customer's messages go. */
static void test_ticket_open_condition_stale(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { "journey: calm\ntrigger: {event: order.placed, if: \"not "
                        "order.ticket_open\"}\nsteps:\n"
                        "  - send: {channel: email, template: calm_note, class: transactional}\n" };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 1);
    customer(&w, "kim", true);
    customer(&w, "lea", true);
    event_when(&w, "ticket.created", "2026-06-03T10:00:00Z",
               "{\"id\":\"T-kim\",\"customer_id\":\"kim\"}"); /* 40 days, never updated */
    event_when(&w, "ticket.created", "2026-06-03T10:00:00Z",
               "{\"id\":\"T-lea\",\"customer_id\":\"lea\"}");
    event_when(&w, "ticket.updated", "2026-07-12T10:00:00Z",
               "{\"id\":\"T-lea\",\"status\":\"pending\"}"); /* kept up */
    order(&w, "o1", "kim", "20.00");
    order(&w, "o2", "lea", "20.00");
    assert_string_equal(runs(&w, "kim"), "calm:done");
    assert_string_equal(outbox(&w, "kim"), "calm_note:queued");
    assert_string_equal(runs(&w, "lea"), "");
    teardown_world(&w);

    /* ticket_stale_after: off -- an open ticket is open however old */
    cs_policy_conf_t off;
    cs_policy_conf_default(&off);
    off.ticket_stale_after = 0;
    g_policy = &off;
    setup_world(&w, "2026-07-13T10:00:00Z", y, 1);
    g_policy = NULL;
    customer(&w, "kim", true);
    event_when(&w, "ticket.created", "2026-06-03T10:00:00Z",
               "{\"id\":\"T-kim\",\"customer_id\":\"kim\"}");
    order(&w, "o1", "kim", "20.00");
    assert_string_equal(runs(&w, "kim"), "");
    teardown_world(&w);
}

/* A ticket about no order, or an unsubscribe, from days before a run
 * began (a shop importing its history) ends no run; one from just before
 * it, read after its trigger, does. */
static void test_history_ends_no_run(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { review_yaml };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 1);
    customer(&w, "dora", true);
    order(&w, "o1", "dora", "10.00");
    event_when(&w, "ticket.created", "2025-11-02T09:00:00Z",
               "{\"id\":\"t-old\",\"customer_id\":\"dora\",\"subject\":\"Rechnung\"}");
    assert_string_equal(runs(&w, "dora"), "review_request:active");
    /* one from an hour before the run, read after it (a lagging pass):
     * it ends the run */
    event_when(&w, "ticket.created", "2026-07-13T09:00:00Z",
               "{\"id\":\"t-new\",\"customer_id\":\"dora\",\"subject\":\"Frage\"}");
    assert_string_equal(runs(&w, "dora"), "review_request:exited:ticket_opened");
    teardown_world(&w);
}

static void test_policy_in_the_runtime(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: tips\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: email, template: tips, class: reassurance}\n",
        "journey: crosssell\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: email, template: crosssell, class: marketing}\n",
    };
    /* 23:00 in Berlin: the reassurance waits for 08:00, marketing too */
    setup_world(&w, "2026-07-13T21:00:00Z", y, 2);
    customer(&w, "dora", true);
    order(&w, "o1", "dora", "10.00");
    assert_string_equal(outbox(&w, "dora"), "");
    advance_to(&w, "2026-07-14T06:00:00Z");
    assert_string_equal(outbox(&w, "dora"), "tips:queued crosssell:queued");
    /* a second order the same week: budget 3, marketing keeps one slot */
    order(&w, "o2", "dora", "10.00");
    assert_string_equal(outbox(&w, "dora"),
                        "tips:queued crosssell:queued tips:queued crosssell:skipped:budget");
    /* no marketing consent: skipped with the reason, the reassurance goes */
    customer(&w, "emil", false);
    order(&w, "o3", "emil", "10.00");
    assert_string_equal(outbox(&w, "emil"), "tips:queued crosssell:skipped:no_consent");
    teardown_world(&w);
}

/* A hold's hold_max counts from the start of the hold that holds the
 * message now: one that ended in the night (the message then waited for
 * quiet hours to end) and a new one before the morning start anew. The
 * new hold counted from the first, so the message was dropped 3.5 days
 * into it. */
static void test_hold_after_quiet_hours_starts_anew(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { "journey: m\ntrigger: {event: order.placed}\nsteps:\n"
                        "  - send: {channel: email, template: m, class: marketing}\n" };
    /* 22:00 in Berlin: quiet hours 21:00-08:00 are 19:00-06:00 UTC */
    setup_world(&w, "2026-07-13T20:00:00Z", y, 1);
    customer(&w, "kai", true);
    event(&w, "ticket.created", "{\"id\":\"t1\",\"customer_id\":\"kai\"}");
    order(&w, "o1", "kai", "10.00");
    advance_to(&w, "2026-07-14T20:00:00Z");
    advance_to(&w, "2026-07-15T20:00:00Z");
    cs_clock_manual_set(&w.clock, at("2026-07-16T12:00:00Z"));
    event(&w, "ticket.updated", "{\"id\":\"t1\",\"status\":\"solved\"}");
    advance_to(&w, "2026-07-16T20:00:00Z"); /* no hold: quiet hours until 06:00 */
    cs_clock_manual_set(&w.clock, at("2026-07-17T05:00:00Z"));
    event(&w, "ticket.created", "{\"id\":\"t2\",\"customer_id\":\"kai\"}");
    advance_to(&w, "2026-07-17T06:00:00Z"); /* held again from here */
    assert_string_equal(outbox(&w, "kai"), "");
    advance_to(&w, "2026-07-20T21:00:00Z"); /* 7 days after the first hold */
    assert_string_equal(outbox(&w, "kai"), "");
    advance_to(&w, "2026-07-24T06:00:00Z"); /* 7 days after the second */
    assert_true(strncmp(outbox(&w, "kai"), "m:skipped:held_", 15) == 0);
    teardown_world(&w);
}

/* Messages deferred to the same end of quiet hours are decided one after
 * the other then: the budget still holds. */
static void test_quiet_hours_end_keeps_the_budget(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: a\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: email, template: a, class: reassurance}\n",
        "journey: b\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: email, template: b, class: reassurance}\n",
        "journey: c\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: email, template: c, class: reassurance}\n",
        "journey: d\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: email, template: d, class: reassurance}\n",
    };
    setup_world(&w, "2026-07-13T21:00:00Z", y, 4);
    customer(&w, "kai", true);
    order(&w, "o1", "kai", "10.00");
    assert_string_equal(outbox(&w, "kai"), "");
    advance_to(&w, "2026-07-14T06:00:00Z");
    assert_string_equal(outbox(&w, "kai"), "a:queued b:queued c:queued d:skipped:budget");
    teardown_world(&w);
}

/* risk.late: the promised day is the shop's (shop_timezone), as the order
 * watch and the messages read it. In São Paulo 22:00 on the promised day
 * is not late yet, though it is the next day in UTC; in Berlin 01:00 the
 * day after is late, though UTC still has the promised day. A promised
 * time names its day in the shop's zone alike. */
static const char *late_yaml =
    "journey: late_check\ntrigger: {event: order.placed}\nsteps:\n"
    "  - wait: 61h\n"
    "  - if: \"risk.late\"\n"
    "    then:\n"
    "      - send: {channel: email, template: late, class: transactional}\n"
    "    else:\n"
    "      - send: {channel: email, template: on_time, class: transactional}\n";

static void late_order(world_t *w, const char *id, const char *cust, const char *latest)
{
    char d[512];
    snprintf(d, sizeof d,
             "{\"id\":\"%s\",\"customer_id\":\"%s\",\"currency\":\"EUR\",\"items\":[{\"sku\":"
             "\"ZELT-2\",\"name\":\"Zelt\",\"unit_price\":\"10.00\",\"quantity\":1}],"
             "\"promised_delivery\":{\"latest\":\"%s\"}}",
             id, cust, latest);
    event(w, "order.placed", d);
}

static void test_late_by_the_shop_day(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { late_yaml };
    /* 61 hours after 2026-07-13 13:00 UTC: 2026-07-16 02:00 UTC, 23:00 on
     * the 15th in São Paulo */
    g_shop_tz = "America/Sao_Paulo";
    setup_world(&w, "2026-07-13T13:00:00Z", y, 1);
    g_shop_tz = NULL;
    customer(&w, "ana", false);
    customer(&w, "bia", false);
    customer(&w, "caio", false);
    late_order(&w, "o1", "ana", "2026-07-15");
    late_order(&w, "o2", "bia", "2026-07-14T23:30:00-03:00");
    late_order(&w, "o3", "caio", "2026-07-15T23:30:00-03:00");
    advance_to(&w, "2026-07-16T02:00:00Z");
    assert_string_equal(outbox(&w, "ana"), "on_time:queued");
    assert_string_equal(outbox(&w, "bia"), "late:queued");
    assert_string_equal(outbox(&w, "caio"), "on_time:queued");
    teardown_world(&w);

    /* 61 hours after 2026-07-13 10:00 UTC: 2026-07-15 23:00 UTC, 01:00 on
     * the 16th in Berlin */
    g_shop_tz = "Europe/Berlin";
    setup_world(&w, "2026-07-13T10:00:00Z", y, 1);
    g_shop_tz = NULL;
    customer(&w, "dora", false);
    late_order(&w, "o4", "dora", "2026-07-15");
    advance_to(&w, "2026-07-15T23:00:00Z");
    assert_string_equal(outbox(&w, "dora"), "late:queued");
    teardown_world(&w);
}

/* A cancelled order has no delivery to be late: a journey that goes on
 * after the cancellation (a win-back) is not held back as if its parcel
 * were overdue once the promised day has passed. */
static void test_cancelled_order_not_late(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: win_back\ntrigger: {event: order.placed}\nexit_when: [ordered_again]\n"
        "steps:\n"
        "  - wait: 20d\n"
        "  - if: \"risk.late\"\n"
        "    then:\n"
        "      - send: {channel: email, template: late, class: transactional}\n"
        "  - send: {channel: email, template: win_back, class: marketing}\n",
    };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 1);
    customer(&w, "emil", true);
    order(&w, "o1", "emil", "30.00"); /* promised within a week */
    event(&w, "order.cancelled", "{\"order_id\":\"o1\"}");
    advance_to(&w, "2026-08-02T10:00:00Z");
    assert_string_equal(outbox(&w, "emil"), "win_back:queued");
    teardown_world(&w);
}

/* A customer who gave no time zone, or one this system does not know, has
 * quiet hours and local-time waits in the shop's zone (as their messages'
 * dates), not in UTC: 22:30 in Berlin is 20:30 UTC. */
static void test_quiet_hours_in_the_shop_zone(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: tips\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: email, template: tips, class: reassurance}\n"
        "  - wait_until: {time: \"10:00\", business_day: false}\n"
        "  - send: {channel: email, template: more, class: transactional}\n",
    };
    g_shop_tz = "Europe/Berlin";
    setup_world(&w, "2026-07-13T20:30:00Z", y, 1);
    g_shop_tz = NULL;
    event(&w, "customer.upserted", "{\"id\":\"ines\",\"email\":\"ines@example.de\"}");
    event(&w, "customer.upserted",
          "{\"id\":\"jan\",\"email\":\"jan@example.de\",\"timezone\":\"Europe/Nowhere\"}");
    order(&w, "o1", "ines", "10.00");
    order(&w, "o2", "jan", "10.00");
    assert_string_equal(outbox(&w, "ines"), "");
    assert_string_equal(outbox(&w, "jan"), "");
    advance_to(&w, "2026-07-14T05:59:00Z");
    assert_string_equal(outbox(&w, "ines"), "");
    advance_to(&w, "2026-07-14T06:00:00Z"); /* 08:00 in Berlin */
    assert_string_equal(outbox(&w, "ines"), "tips:queued");
    assert_string_equal(outbox(&w, "jan"), "tips:queued");
    advance_to(&w, "2026-07-14T07:59:00Z");
    assert_string_equal(outbox(&w, "ines"), "tips:queued");
    advance_to(&w, "2026-07-14T08:00:00Z"); /* 10:00 in Berlin */
    assert_string_equal(outbox(&w, "ines"), "tips:queued more:queued");
    assert_string_equal(outbox(&w, "jan"), "tips:queued more:queued");
    teardown_world(&w);
}

/* A business day is the shop's too: a wait_until on business days passes
 * over a public holiday and a day the shop closes (closed_days) as over a
 * weekend -- the review request comes at 10:00 on the next working day,
 * not on Christmas Day. */
static void test_business_day_skips_closed_days(void **state)
{
    (void)state;
    world_t w;
    cs_calendar_t *cal = NULL;
    cs_err_t err;
    const char *y[] = {
        "journey: ask\ntrigger: {event: order.placed}\nsteps:\n"
        "  - wait_until: {time: \"10:00\", business_day: true}\n"
        "  - send: {channel: email, template: ask, class: transactional}\n",
    };
    assert_int_equal(cs_calendar_new("DE", "12-31", &cal, &err), CS_OK);
    g_calendar = cal;
    g_shop_tz = "Europe/Berlin";
    /* Christmas Eve, a Thursday, past 10:00 in Berlin */
    setup_world(&w, "2026-12-24T12:00:00Z", y, 1);
    g_shop_tz = NULL;
    g_calendar = NULL;
    customer(&w, "ute", true);
    order(&w, "o1", "ute", "20.00");
    advance_to(&w, "2026-12-25T09:30:00Z"); /* Christmas Day, 10:30 in Berlin */
    assert_string_equal(outbox(&w, "ute"), "");
    advance_to(&w, "2026-12-28T08:59:00Z"); /* Monday, 09:59 */
    assert_string_equal(outbox(&w, "ute"), "");
    advance_to(&w, "2026-12-28T09:00:00Z");
    assert_string_equal(outbox(&w, "ute"), "ask:queued");
    /* past 10:00 on the 30th: the shop closes on the 31st, New Year's Day
     * is a holiday, then a weekend */
    customer(&w, "vic", true);
    advance_to(&w, "2026-12-30T12:00:00Z");
    order(&w, "o2", "vic", "20.00");
    advance_to(&w, "2027-01-04T08:59:00Z");
    assert_string_equal(outbox(&w, "vic"), "");
    advance_to(&w, "2027-01-04T09:00:00Z"); /* Monday, 10:00 in Berlin */
    assert_string_equal(outbox(&w, "vic"), "ask:queued");
    teardown_world(&w);
    cs_calendar_free(&cal);
}

/* An unsubscribe holds until the customer's address or consent changes:
 * the shop sending the same record again (a sync, an order carrying its
 * customer) does not undo it; a bounce likewise stops its channel until
 * a new address. */
static void test_unsubscribe_outlives_the_same_record(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: crosssell\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: email, template: crosssell, class: marketing}\n",
        "journey: tips\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: sms, template: tips, class: transactional}\n",
    };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 2);
    event(&w, "customer.upserted",
          "{\"id\":\"hans\",\"email\":\"hans@example.de\",\"phone\":\"+4915100000001\","
          "\"consents\":{\"email\":{\"marketing\":true},\"sms\":{\"transactional\":true}}}");
    event(&w, "message.status",
          "{\"message_id\":\"m1\",\"status\":\"unsubscribed\",\"channel\":\"email\","
          "\"customer_id\":\"hans\"}");
    event(&w, "message.status",
          "{\"message_id\":\"m2\",\"status\":\"bounced\",\"channel\":\"sms\","
          "\"customer_id\":\"hans\"}");
    /* the same record again, an hour later, and with a new name */
    cs_clock_manual_set(&w.clock, at("2026-07-13T11:00:00Z"));
    event(&w, "customer.upserted",
          "{\"id\":\"hans\",\"email\":\"hans@example.de\",\"phone\":\"+4915100000001\","
          "\"name\":\"Hans\",\"consents\":{\"email\":{\"marketing\":true},"
          "\"sms\":{\"transactional\":true}}}");
    order(&w, "o1", "hans", "10.00");
    assert_string_equal(outbox(&w, "hans"),
                        "crosssell:skipped:unsubscribed tips:skipped:bounced");
    /* a new phone number: SMS goes again; marketing consent given anew
     * (refused, then granted): marketing goes again */
    cs_clock_manual_set(&w.clock, at("2026-07-13T12:00:00Z"));
    event(&w, "customer.upserted",
          "{\"id\":\"hans\",\"phone\":\"+4915100000002\","
          "\"consents\":{\"email\":{\"marketing\":false}}}");
    cs_clock_manual_set(&w.clock, at("2026-07-13T12:01:00Z"));
    event(&w, "customer.upserted",
          "{\"id\":\"hans\",\"consents\":{\"email\":{\"marketing\":true}}}");
    order(&w, "o2", "hans", "10.00");
    assert_string_equal(outbox(&w, "hans"),
                        "crosssell:skipped:unsubscribed tips:skipped:bounced "
                        "crosssell:queued tips:queued");
    teardown_world(&w);
}

/* A consent refused after an unsubscribe or a bounce (the shop's own
 * records echoing the unsubscribe: email marketing false) does not lift
 * them: a refusal never means the customer wants more messages. */
static void test_refusal_keeps_unsubscribe(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: tips\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: email, template: tips, class: reassurance}\n",
        "journey: promo\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: sms, template: promo, class: marketing}\n",
    };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 2);
    event(&w, "customer.upserted",
          "{\"id\":\"ute\",\"email\":\"ute@example.de\",\"phone\":\"+4915100000003\","
          "\"consents\":{\"email\":{\"marketing\":true},"
          "\"sms\":{\"transactional\":true,\"marketing\":true}}}");
    event(&w, "message.status",
          "{\"message_id\":\"m1\",\"status\":\"unsubscribed\",\"channel\":\"email\","
          "\"customer_id\":\"ute\"}");
    cs_clock_manual_set(&w.clock, at("2026-07-13T11:00:00Z"));
    event(&w, "customer.upserted",
          "{\"id\":\"ute\",\"consents\":{\"email\":{\"marketing\":false}}}");
    order(&w, "o1", "ute", "10.00");
    assert_string_equal(outbox(&w, "ute"),
                        "tips:skipped:unsubscribed promo:skipped:unsubscribed");
    teardown_world(&w);
}

/* The order watch's at-risk flag holds marketing and asks back, like a
 * promise day that passed: no cross-sell while a parcel is in trouble. */
static void set_at_risk(world_t *w, const char *order_id, bool at_risk)
{
    cs_promise_rec_t p;
    cs_err_t err;
    memset(&p, 0, sizeof p);
    cs_strlcpy(p.order_id, order_id, sizeof p.order_id);
    p.at_risk = at_risk;
    cs_strlcpy(p.risk_reason, at_risk ? "no_scan" : "", sizeof p.risk_reason);
    p.updated_at = cs_clock_now(&w->clock.clock);
    p.level = -1;
    assert_int_equal(cs_store_begin(w->s, &err), CS_OK);
    assert_int_equal(cs_store_call(w->s, promise_put, &p, NULL, &err), CS_OK);
    assert_int_equal(cs_store_commit(w->s, &err), CS_OK);
}

static void test_at_risk_holds_marketing(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: crosssell\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: email, template: crosssell, class: marketing}\n",
    };
    setup_world(&w, "2026-07-14T08:00:00Z", y, 1);
    customer(&w, "fritz", true);
    set_at_risk(&w, "o7", true);
    order(&w, "o7", "fritz", "10.00");
    assert_string_equal(outbox(&w, "fritz"), ""); /* held */
    advance_to(&w, "2026-07-15T09:00:00Z"); /* looked at again a day later: still held */
    assert_string_equal(outbox(&w, "fritz"), "");
    set_at_risk(&w, "o7", false);
    advance_to(&w, "2026-07-16T09:00:00Z");
    assert_string_equal(outbox(&w, "fritz"), "crosssell:queued");
    teardown_world(&w);
}

/* Another order of the customer at risk holds an ask or marketing about
 * this one back too: no "how do you like it?" while their other parcel is
 * late. A cancelled order at risk holds nothing. */
static void test_other_order_at_risk_holds_marketing(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: crosssell\ntrigger: {event: order.placed, if: \"order.id == 'o1' or "
        "order.id == 'o5'\"}\n"
        "steps:\n  - wait: 1h\n"
        "  - send: {channel: email, template: crosssell, class: marketing}\n",
    };
    setup_world(&w, "2026-07-14T08:00:00Z", y, 1);
    customer(&w, "mia", true);
    order(&w, "o2", "mia", "30.00");
    set_at_risk(&w, "o2", true); /* o2's parcel is late */
    order(&w, "o1", "mia", "10.00");
    advance_to(&w, "2026-07-14T10:00:00Z");
    assert_string_equal(outbox(&w, "mia"), ""); /* held */
    set_at_risk(&w, "o2", false);
    advance_to(&w, "2026-07-15T11:00:00Z"); /* looked at again a day later */
    assert_string_equal(outbox(&w, "mia"), "crosssell:queued");
    /* a cancelled order's risk is none to wait for */
    customer(&w, "noa", true);
    order(&w, "o4", "noa", "30.00");
    set_at_risk(&w, "o4", true);
    event(&w, "order.cancelled", "{\"order_id\":\"o4\"}");
    order(&w, "o5", "noa", "10.00");
    advance_to(&w, "2026-07-15T12:30:00Z");
    assert_string_equal(outbox(&w, "noa"), "crosssell:queued");
    teardown_world(&w);
}

/* The order at risk holds marketing back also in a run about a parcel of
 * it that was delivered: a second parcel still on its way is in trouble
 * (docs/journeys.md, policy 4: the order watch has the order at risk). */
static void test_at_risk_holds_marketing_after_one_parcel(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: crosssell\ntrigger: {event: tracking.event, if: \"event.status == "
        "'delivered' and shipment.status == 'delivered'\"}\nonce_per: order\nsteps:\n"
        "  - send: {channel: email, template: crosssell, class: marketing}\n",
    };
    setup_world(&w, "2026-07-14T08:00:00Z", y, 1);
    customer(&w, "lea", true);
    order(&w, "o9", "lea", "10.00");
    event(&w, "shipment.created",
          "{\"id\":\"s-o9-a\",\"order_id\":\"o9\",\"carrier\":\"dhl\","
          "\"tracking_number\":\"TA9\"}");
    event(&w, "shipment.created",
          "{\"id\":\"s-o9-b\",\"order_id\":\"o9\",\"carrier\":\"dhl\","
          "\"tracking_number\":\"TB9\"}");
    set_at_risk(&w, "o9", true); /* parcel b: held at a depot */
    event(&w, "tracking.event",
          "{\"shipment_id\":\"s-o9-a\",\"carrier\":\"dhl\",\"tracking_number\":\"TA9\","
          "\"status\":\"delivered\"}");
    assert_string_equal(outbox(&w, "lea"), ""); /* held */
    set_at_risk(&w, "o9", false);
    advance_to(&w, "2026-07-15T09:00:00Z");
    assert_string_equal(outbox(&w, "lea"), "crosssell:queued");
    teardown_world(&w);
}

/* An open ticket holds marketing back (docs/journeys.md, policy 4), also
 * in a run about no order (a customer's journey); it goes once the ticket
 * is solved. */
static void test_open_ticket_holds_marketing(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: crosssell\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: email, template: crosssell, class: marketing}\n",
        "journey: promo\ntrigger: {event: signal}\nonce_per: customer\nsteps:\n"
        "  - send: {channel: email, template: promo, class: marketing}\n",
    };
    setup_world(&w, "2026-07-14T08:00:00Z", y, 2);
    customer(&w, "gina", true);
    event(&w, "ticket.created", "{\"id\":\"t-g\",\"customer_id\":\"gina\",\"subject\":\"Frage\"}");
    order(&w, "o8", "gina", "10.00");
    event(&w, "signal", "{\"name\":\"spring_sale\",\"customer_id\":\"gina\"}");
    assert_string_equal(outbox(&w, "gina"), ""); /* both held */
    advance_to(&w, "2026-07-15T09:00:00Z");
    assert_string_equal(outbox(&w, "gina"), "");
    event(&w, "ticket.updated", "{\"id\":\"t-g\",\"status\":\"solved\"}");
    advance_to(&w, "2026-07-16T09:00:00Z");
    assert_string_equal(outbox(&w, "gina"), "crosssell:queued promo:queued");
    teardown_world(&w);
}

/* An open ticket without an update for ticket_stale_after (30 days) holds
 * nothing: a helpdesk that never sends the closing ticket.updated held
 * every ask and marketing message of the customer, and dropped them after
 * hold_max, for good. The time counts from the ticket's latest update. */
static void test_stale_ticket_holds_nothing(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: crosssell\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: email, template: crosssell, class: marketing}\n",
    };
    setup_world(&w, "2026-07-14T08:00:00Z", y, 1);
    /* opened 43 days ago, never updated */
    customer(&w, "hana", true);
    event_when(&w, "ticket.created", "2026-06-01T08:00:00Z",
               "{\"id\":\"t-h\",\"customer_id\":\"hana\",\"subject\":\"Frage\"}");
    order(&w, "o-h", "hana", "10.00");
    assert_string_equal(outbox(&w, "hana"), "crosssell:queued");
    /* opened long ago, but updated (still pending) 24 days ago: held, and
     * let go at the daily look once the update is 30 days old */
    customer(&w, "ines", true);
    event_when(&w, "ticket.created", "2026-05-01T08:00:00Z",
               "{\"id\":\"t-i\",\"customer_id\":\"ines\",\"subject\":\"Frage\"}");
    event_when(&w, "ticket.updated", "2026-06-20T08:00:00Z",
               "{\"id\":\"t-i\",\"status\":\"pending\"}");
    order(&w, "o-i", "ines", "10.00");
    assert_string_equal(outbox(&w, "ines"), "");
    advance_to(&w, "2026-07-19T09:00:00Z");
    assert_string_equal(outbox(&w, "ines"), "");
    advance_to(&w, "2026-07-20T09:00:00Z");
    assert_string_equal(outbox(&w, "ines"), "crosssell:queued");
    teardown_world(&w);
}

/* Ingest without a journey pass. */
static void ingest_only(world_t *w, const char *id, const char *type, const char *at_,
                        const char *data)
{
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"event_id\":\"%s\",\"type\":\"%s\",\"occurred_at\":\"%s\",\"data\":%s}", id,
             type, at_, data);
    cs_event_t *ev;
    cs_err_t err;
    cs_ingest_outcome_t oc;
    int64_t seq;
    if (cs_event_parse(buf, strlen(buf), &ev, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(cs_store_begin(w->s, &err), CS_OK);
    assert_int_equal(cs_store_ingest(w->s, ev, 0, &oc, &seq, &err), CS_OK);
    assert_int_equal(cs_store_commit(w->s, &err), CS_OK);
    cs_event_free(&ev);
}

static void test_history_sends_nothing(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { confirm_yaml };
    const char *items = "\"currency\":\"EUR\",\"items\":[{\"sku\":\"A\",\"name\":\"A\","
                        "\"unit_price\":1,\"quantity\":1}]";
    char d[512];
    /* a store with history before journeys were ever configured */
    memset(&w, 0, sizeof w);
    assert_int_equal(test_store_fresh(w.path, sizeof w.path, "/tmp/cs_journeys_XXXXXX"), 0);
    cs_clock_manual_init(&w.clock, at("2026-07-13T10:00:00Z"));
    open_store(&w);
    snprintf(d, sizeof d, "{\"id\":\"o-old\",\"customer_id\":\"ida\",%s}", items);
    ingest_only(&w, "old-1", "order.placed", "2026-07-13T09:00:00Z", d);
    load(&w, y, 1); /* the first sync starts after the history */
    pass(&w);
    assert_string_equal(outbox(&w, "ida"), "");
    /* an event from long ago (a late import) starts nothing; a current one does */
    snprintf(d, sizeof d, "{\"id\":\"o-late\",\"customer_id\":\"ida\",%s}", items);
    ingest_only(&w, "late-1", "order.placed", "2026-07-01T10:00:00Z", d);
    pass(&w);
    assert_string_equal(outbox(&w, "ida"), "");
    order(&w, "o-new", "ida", "10.00");
    /* a run started: ida has no address; the confirmation waits for one
     * (address_wait, 30 minutes), then is skipped with that reason */
    assert_string_equal(outbox(&w, "ida"), "");
    assert_string_equal(runs(&w, "ida"), "order_confirmation:active");
    for (int m = 1; m <= 31; m++) {
        cs_clock_manual_set(&w.clock, at("2026-07-13T10:00:00Z") + m * 60000LL);
        pass(&w);
    }
    assert_string_equal(outbox(&w, "ida"), "confirmation:skipped:no_address");
    teardown_world(&w);
}

/* The customer's address comes after the order: the confirmation waits
 * for it, and is written in the customer's language. */
static void test_address_after_the_order(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { confirm_yaml };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 1);
    order(&w, "o1", "una", "25.00");
    assert_string_equal(outbox(&w, "una"), "");
    cs_clock_manual_set(&w.clock, at("2026-07-13T10:00:20Z"));
    char d[256];
    snprintf(d, sizeof d, "{\"id\":\"una\",\"email\":\"una@example.com\",\"locale\":\"en\"}");
    event(&w, "customer.upserted", d);
    assert_string_equal(outbox(&w, "una"), "");
    advance_to(&w, "2026-07-13T10:01:00Z");
    assert_string_equal(outbox(&w, "una"), "confirmation_first:queued");
    json_t *arr;
    cs_err_t err;
    assert_int_equal(cs_store_call(w.s, outbox_view, "una", &arr, &err), CS_OK);
    json_t *m = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(m, "recipient")), "una@example.com");
    assert_string_equal(json_string_value(json_object_get(m, "locale")), "en");
    json_decref(arr);
    teardown_world(&w);
}

/* A message records the channels its send listed after the one it is
 * queued on, in order: the sender's fallback at the hand-over
 * (docs/channels.md). A channel passed over before it (no consent) is not
 * among them, nor is any for the last channel of the list. */
static void test_fallback_recorded(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: a\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: [sms, whatsapp, email], template: a, class: transactional}\n",
        "journey: b\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: [sms, email], template: b, class: transactional}\n",
    };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 2);
    event(&w, "customer.upserted",
          "{\"id\":\"ida\",\"email\":\"ida@example.de\",\"phone\":\"+4915100000000\","
          "\"consents\":{\"whatsapp\":{\"transactional\":true}}}");
    order(&w, "o1", "ida", "10.00");
    assert_string_equal(outbox(&w, "ida"), "a:queued b:queued");
    json_t *arr;
    cs_err_t err;
    assert_int_equal(cs_store_call(w.s, outbox_view, "ida", &arr, &err), CS_OK);
    const char *want[][2] = { { "email", "" }, { "whatsapp", "email" } }; /* newest first */
    for (size_t i = 0; i < 2; i++) {
        cs_outmsg_t m;
        int64_t id = json_integer_value(json_object_get(json_array_get(arr, i), "id"));
        assert_int_equal(cs_store_call(w.s, outbox_get, id, &m, &err), CS_OK);
        assert_string_equal(cs_channel_name((cs_channel_t)m.channel), want[i][0]);
        assert_string_equal(m.fallback, want[i][1]);
    }
    json_decref(arr);
    teardown_world(&w);
}

static void test_channels_off(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: a\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: [whatsapp, email], template: a, class: transactional}\n",
        "journey: b\ntrigger: {event: order.placed}\nsteps:\n"
        "  - send: {channel: sms, template: b, class: transactional}\n",
    };
    g_channels_off = 1u << CS_CHANNEL_WHATSAPP | 1u << CS_CHANNEL_SMS;
    setup_world(&w, "2026-07-13T10:00:00Z", y, 2);
    g_channels_off = 0;
    customer(&w, "hugo", false);
    order(&w, "o1", "hugo", "10.00");
    /* WhatsApp is not configured: the preference list falls back to email */
    assert_string_equal(outbox(&w, "hugo"), "a:queued b:skipped:channel_off");
    json_t *arr;
    cs_err_t err;
    assert_int_equal(cs_store_call(w.s, outbox_view, "hugo", &arr, &err), CS_OK);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "channel")),
                        "email");
    json_decref(arr);
    teardown_world(&w);
}

static void test_versions_switches_and_restart(void **state)
{
    (void)state;
    world_t w;
    const char *v1[] = { "journey: nps\ntrigger: {event: order.placed}\nsteps:\n"
                         "  - wait: 30d\n"
                         "  - send: {channel: email, template: nps_v1, class: transactional}\n" };
    setup_world(&w, "2026-07-13T10:00:00Z", v1, 1);
    customer(&w, "finn", true);
    order(&w, "o1", "finn", "10.00");
    /* the definition changes and the daemon restarts: the store is reopened */
    cs_journeys_free(w.js);
    cs_store_close(&w.s);
    open_store(&w);
    const char *v2[] = { "journey: nps\ntrigger: {event: order.placed}\nsteps:\n"
                         "  - wait: 10d\n"
                         "  - send: {channel: email, template: nps_v2, class: transactional}\n" };
    load(&w, v2, 1);
    order(&w, "o2", "finn", "10.00");
    advance_to(&w, "2026-07-23T10:00:00Z");
    assert_string_equal(outbox(&w, "finn"), "nps_v2:queued");
    advance_to(&w, "2026-08-12T10:00:00Z"); /* overdue timers are picked up */
    assert_string_equal(outbox(&w, "finn"), "nps_v2:queued nps_v1:queued");
    /* switched off: no new runs, and running ones end at their next step */
    cs_err_t err;
    order(&w, "o3", "finn", "10.00");
    assert_int_equal(cs_store_begin(w.s, &err), CS_OK);
    assert_int_equal(cs_store_call(w.s, journey_enabled_set, "nps", false, 0, &err), CS_OK);
    assert_int_equal(cs_store_commit(w.s, &err), CS_OK);
    order(&w, "o4", "finn", "10.00");
    advance_to(&w, "2026-09-12T10:00:00Z");
    assert_string_equal(runs(&w, "finn"),
                        "nps:done nps:done nps:exited:journey_disabled");
    assert_string_equal(outbox(&w, "finn"), "nps_v2:queued nps_v1:queued");
    teardown_world(&w);
}

/* Active runs are read only for event types some stored version listens
 * to: a run that entered on a version waiting for delivery still moves on
 * after the definition changed to one that waits for nothing. */
static void test_old_version_still_listens(void **state)
{
    (void)state;
    world_t w;
    const char *v1[] = { review_yaml };
    setup_world(&w, "2026-07-13T10:00:00Z", v1, 1);
    customer(&w, "gus", true);
    order(&w, "o1", "gus", "20.00");
    shipment(&w, "o1");
    cs_journeys_free(w.js);
    cs_store_close(&w.s);
    open_store(&w);
    const char *v2[] = { "journey: review_request\ntrigger: {event: order.placed}\nsteps:\n"
                         "  - wait: 9d\n"
                         "  - send: {channel: email, template: review_v2, class: ask}\n" };
    load(&w, v2, 1);
    scan(&w, "o1", "delivered"); /* Monday 10:00: 5 days, then Monday 10:00 local */
    assert_int_equal(timers(&w), 2); /* the stale timeout and the 5-day wait */
    advance_to(&w, "2026-07-18T10:00:00Z");
    advance_to(&w, "2026-07-20T08:00:00Z");
    assert_string_equal(outbox(&w, "gus"), "review:queued");
    assert_string_equal(runs(&w, "gus"), "review_request:done");
    teardown_world(&w);
}

/* A version an older release stored is read back as that release read it:
 * loading checks added since (a second YAML document, wait: {days: 30})
 * would refuse it, and every pass would then fail on its runs. */
static void test_stored_version_of_an_older_release(void **state)
{
    (void)state;
    world_t w;
    cs_err_t err;
    const char *v1 = "journey: nps\ntrigger: {event: order.placed}\nsteps:\n"
                     "  - wait: 1d\n"
                     "  - send: {channel: email, template: nps_v1, class: transactional}\n"
                     "  - wait: {days: 30}\n"
                     "---\n"
                     "journey: [ignored, and not even YAML\n";
    cs_journey_t *j;
    assert_int_not_equal(cs_journey_parse("nps.yaml", v1, strlen(v1), &j, &err), CS_OK);
    setup_world(&w, "2026-07-13T10:00:00Z", NULL, 0);
    if (cs_journey_parse_stored("nps.yaml", v1, strlen(v1), &j, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(cs_journeys_add(w.js, j, &err), CS_OK);
    assert_int_equal(cs_store_begin(w.s, &err), CS_OK);
    assert_int_equal(cs_journeys_sync(w.js, w.s, &err), CS_OK);
    assert_int_equal(cs_store_commit(w.s, &err), CS_OK);
    customer(&w, "ida", true);
    order(&w, "o1", "ida", "10.00");
    /* the new release starts with the file corrected */
    cs_journeys_free(w.js);
    cs_store_close(&w.s);
    open_store(&w);
    const char *v2[] = { "journey: nps\ntrigger: {event: order.placed}\nsteps:\n"
                         "  - wait: 30d\n"
                         "  - send: {channel: email, template: nps_v2, class: transactional}\n" };
    load(&w, v2, 1);
    advance_to(&w, "2026-07-14T10:00:00Z");
    assert_string_equal(outbox(&w, "ida"), "nps_v1:queued");
    assert_string_equal(runs(&w, "ida"), "nps:exited:no_days_at:30");
    teardown_world(&w);
}

/* Actions: a discount code (unique, once per step), a signal that starts
 * another journey, and a webhook queued in the outbox; none of them twice
 * when the same events come again. */
static void test_actions(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: vip\ntrigger: {event: order.placed, if: \"order.total >= 200\"}\nsteps:\n"
        "  - discount: {percent: 15, valid: 60d, prefix: VIP}\n"
        "  - emit: {signal: vip_welcomed, data: {tier: gold, level: 2, first: false}}\n"
        "  - webhook: {url: \"https://crm.example/hooks/vip\", event: vip_customer}\n"
        "  - send: {channel: email, template: vip_thanks, class: transactional}\n",
        "journey: vip_followup\ntrigger: {event: signal, if: \"event.name == 'vip_welcomed' and "
        "event.properties.tier == 'gold' and event.properties.level >= 2 and not "
        "event.properties.first\"}\nsteps:\n"
        "  - discount: {free_shipping: true}\n"
        "  - send: {channel: email, template: vip_shipping, class: transactional}\n",
    };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 2);
    customer(&w, "hana", true);
    order(&w, "o1", "hana", "250.00");
    order(&w, "o2", "hana", "20.00"); /* below the line: no run */
    pass(&w);                        /* the signal is read by the next pass */
    assert_string_equal(runs(&w, "hana"), "vip:done vip_followup:done");
    assert_string_equal(outbox(&w, "hana"),
                        "vip_customer:queued vip_thanks:queued vip_shipping:queued");
    json_t *codes;
    cs_err_t err;
    assert_int_equal(cs_store_call(w.s, discounts_view, "hana", &codes, &err), CS_OK);
    assert_int_equal(json_array_size(codes), 2);
    json_t *vip = json_array_get(codes, 1), *ship = json_array_get(codes, 0);
    const char *code = json_string_value(json_object_get(vip, "code"));
    assert_non_null(code);
    assert_int_equal(strlen(code), 12); /* VIP- and 8 */
    assert_memory_equal(code, "VIP-", 4);
    assert_string_equal(json_string_value(json_object_get(vip, "kind")), "percent");
    assert_true(json_real_value(json_object_get(vip, "value")) == 15.0);
    assert_string_equal(json_string_value(json_object_get(vip, "expires_at")),
                        "2026-09-11T10:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(ship, "kind")), "free_shipping");
    assert_string_not_equal(json_string_value(json_object_get(ship, "code")), code);
    json_decref(codes);
    /* the webhook waits in the outbox for the sender, with the URL */
    json_t *msgs;
    assert_int_equal(cs_store_call(w.s, outbox_view, "hana", &msgs, &err), CS_OK);
    json_t *hook = json_array_get(msgs, json_array_size(msgs) - 1);
    assert_string_equal(json_string_value(json_object_get(hook, "channel")), "webhook");
    assert_string_equal(json_string_value(json_object_get(hook, "recipient")),
                        "https://crm.example/hooks/vip");
    json_decref(msgs);
    /* the signal is in the log, once */
    cs_event_query_t q;
    memset(&q, 0, sizeof q);
    q.type = "signal";
    q.limit = 10;
    json_t *page;
    assert_int_equal(cs_store_events_query(w.s, &q, &page, &err), CS_OK);
    assert_int_equal(json_array_size(json_object_get(page, "events")), 1);
    json_decref(page);
    assert_int_equal(w.st.codes, 2);
    assert_int_equal(w.st.signals, 1);
    assert_int_equal(w.st.webhooks, 1);
    teardown_world(&w);
}

/* The messages of a customer as "template@order" lines, oldest first. */
static const char *outbox_orders(world_t *w, const char *cust)
{
    static char buf[1024];
    json_t *arr;
    cs_err_t err;
    assert_int_equal(cs_store_call(w->s, outbox_view, cust, &arr, &err), CS_OK);
    buf[0] = '\0';
    for (size_t i = json_array_size(arr); i-- > 0;) {
        json_t *m = json_array_get(arr, i);
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s@%s", buf[0] ? " " : "",
                 json_string_value(json_object_get(m, "template")),
                 json_string_value(json_object_get(m, "order_id")));
    }
    json_decref(arr);
    return buf;
}

/* Runs about an order that an edit gave to another customer since: each
 * ends with order_given_to_another_customer at its next step that acts
 * or reads the order -- a transactional notice (the order's row read for
 * it), an ask (the context it reads anyway), an emit -- and nothing goes
 * to the old customer about it; a wait_for resumes on the order's scans,
 * now the new customer's, and ends there too. The old customer's other
 * order goes on as before. Before, the notice and the review request about
 * the new customer's order went to the old one, and the emit went on
 * without the order. The new customer has runs of the order of their
 * own (test_order_given_to_another_starts_their_runs). */
static void test_run_of_an_order_given_to_another(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: notice\ntrigger: {event: order.placed}\nsteps:\n"
        "  - wait: 1d\n"
        "  - send: {channel: email, template: notice, class: transactional}\n",
        "journey: review\ntrigger: {event: order.placed}\nsteps:\n"
        "  - wait_for: {event: tracking.event, if: \"event.status == 'delivered'\", timeout: 14d}\n"
        "  - wait: 2d\n"
        "  - send: {channel: email, template: review, class: ask}\n",
        "journey: thanks\ntrigger: {event: order.placed}\nsteps:\n"
        "  - wait: 1d\n"
        "  - emit: {signal: thanked}\n",
    };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 3);
    customer(&w, "ana", true);
    customer(&w, "bea", true);
    order(&w, "o1", "ana", "10.00");
    order(&w, "o2", "ana", "20.00");
    shipment(&w, "o1");
    shipment(&w, "o2");
    advance_to(&w, "2026-07-13T11:00:00Z");
    order(&w, "o1", "bea", "10.00"); /* the shop's edit: bea's order */
    scan(&w, "o1", "delivered");
    scan(&w, "o2", "delivered");
    advance_to(&w, "2026-07-14T12:00:00Z");
    assert_string_equal(outbox_orders(&w, "ana"), "notice@o2");
    advance_to(&w, "2026-07-16T12:00:00Z");
    assert_string_equal(outbox_orders(&w, "ana"), "notice@o2 review@o2");
    /* bea's runs of o1 began with the edit (docs/events.md) */
    assert_string_equal(outbox_orders(&w, "bea"), "notice@o1 review@o1");
    assert_string_equal(runs(&w, "ana"),
                        "notice:exited:order_given_to_another_customer "
                        "review:exited:order_given_to_another_customer "
                        "thanks:exited:order_given_to_another_customer "
                        "notice:done review:done thanks:done");
    /* the signal of ana's own order alone */
    cs_event_query_t q;
    memset(&q, 0, sizeof q);
    q.type = "signal";
    q.customer_id = "ana";
    q.limit = 10;
    json_t *page;
    cs_err_t err;
    assert_int_equal(cs_store_events_query(w.s, &q, &page, &err), CS_OK);
    json_t *evs = json_object_get(page, "events");
    assert_int_equal(json_array_size(evs), 1);
    json_t *e = json_array_get(evs, 0);
    assert_string_equal(json_string_value(json_object_get(e, "customer_id")), "ana");
    assert_string_equal(json_string_value(json_object_get(e, "order_id")), "o2");
    json_decref(page);
    teardown_world(&w);
}

/* An edit that gives an order to another customer (the shop booked it to
 * the wrong customer record) starts the new customer's runs of the order,
 * as the order's first order.placed would have: the confirmation, the
 * shipping notice of the parcel on its way (the order's events before are
 * brought in for them), a review request that hears of the delivery. The
 * old customer gets nothing more about it. The same edit sent again, and
 * an edit that gives the order back, start nothing: a customer has one
 * run per journey and order. Before, the new customer got nothing: the
 * old customer's runs held the order's run keys. */
static void test_order_given_to_another_starts_their_runs(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: confirm\ntrigger: {event: order.placed}\nexit_when: [order_cancelled]\n"
        "steps:\n"
        "  - discount: {percent: 10, prefix: DANKE}\n"
        "  - send: {channel: email, template: confirm, class: transactional}\n",
        "journey: shipped\ntrigger: {event: shipment.created, if: \"shipment.status not in "
        "['delivered', 'returned_to_sender']\"}\nonce_per: order\nsteps:\n"
        "  - send: {channel: email, template: shipped, class: transactional}\n",
        "journey: review\ntrigger: {event: order.placed}\nsteps:\n"
        "  - wait_for: {event: tracking.event, if: \"event.status == 'delivered'\", timeout: 14d}\n"
        "  - wait: 2d\n"
        "  - send: {channel: email, template: review, class: ask}\n",
    };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 3);
    customer(&w, "ana", true);
    customer(&w, "bea", true);
    order(&w, "o1", "ana", "10.00");
    shipment(&w, "o1");
    assert_string_equal(outbox(&w, "ana"), "confirm:queued shipped:queued");
    advance_to(&w, "2026-07-13T11:00:00Z");
    order(&w, "o1", "bea", "10.00"); /* the shop's edit: bea's order */
    assert_string_equal(outbox(&w, "bea"), "confirm:queued shipped:queued");
    assert_string_equal(runs(&w, "bea"), "confirm:done review:active shipped:done");
    scan(&w, "o1", "delivered");
    advance_to(&w, "2026-07-16T12:00:00Z");
    assert_string_equal(outbox(&w, "ana"), "confirm:queued shipped:queued");
    assert_string_equal(outbox(&w, "bea"), "confirm:queued shipped:queued review:queued");
    assert_string_equal(runs(&w, "ana"), "confirm:done "
                                         "review:exited:order_given_to_another_customer "
                                         "shipped:done");
    /* each run its own key, its own messages and its own code */
    json_t *arr;
    cs_err_t err;
    assert_int_equal(cs_store_call(w.s, runs_view, "bea", &arr, &err), CS_OK);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *key = json_string_value(json_object_get(json_array_get(arr, i), "run_key"));
        assert_int_equal(strncmp(key, "oc:", 3), 0);
        assert_int_equal(strlen(key), 3 + 64);
    }
    json_decref(arr);
    assert_int_equal(cs_store_call(w.s, discounts_view, "bea", &arr, &err), CS_OK);
    assert_int_equal(json_array_size(arr), 1);
    json_decref(arr);
    assert_int_equal(cs_store_call(w.s, discounts_view, "ana", &arr, &err), CS_OK);
    assert_int_equal(json_array_size(arr), 1);
    json_decref(arr);
    /* the edit again, then the order back to ana: nothing starts */
    advance_to(&w, "2026-07-16T13:00:00Z");
    order(&w, "o1", "bea", "12.00");
    advance_to(&w, "2026-07-16T14:00:00Z");
    order(&w, "o1", "ana", "12.00");
    advance_to(&w, "2026-07-20T14:00:00Z");
    assert_string_equal(runs(&w, "bea"), "confirm:done review:done shipped:done");
    assert_string_equal(runs(&w, "ana"), "confirm:done "
                                         "review:exited:order_given_to_another_customer "
                                         "shipped:done");
    assert_string_equal(outbox(&w, "ana"), "confirm:queued shipped:queued");
    assert_string_equal(outbox(&w, "bea"), "confirm:queued shipped:queued review:queued");
    teardown_world(&w);
}

/* The trigger conditions of one event read one context, built for the
 * first journey that asks and read again by the others (and by the
 * ordered_again check), also after a journey started on the same event
 * emitted a signal: each journey decides by its own condition, as when
 * each built its own. */
static void test_trigger_conditions_of_one_event(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: welcome\ntrigger: {event: order.placed, if: \"customer.orders_count == 1\"}\n"
        "steps:\n"
        "  - emit: {signal: welcomed}\n"
        "  - send: {channel: email, template: welcome, class: transactional}\n",
        "journey: big\ntrigger: {event: order.placed, if: \"order.total >= 100\"}\nsteps:\n"
        "  - send: {channel: email, template: big, class: transactional}\n",
        "journey: small\ntrigger: {event: order.placed, if: \"order.total < 100 and "
        "order.orders_before >= 1\"}\nsteps:\n"
        "  - send: {channel: email, template: small, class: transactional}\n",
        "journey: refill\ntrigger: {event: order.placed}\nexit_when: [ordered_again]\nsteps:\n"
        "  - wait: 30d\n"
        "  - send: {channel: email, template: refill, class: transactional}\n",
    };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 4);
    customer(&w, "tom", true);
    order(&w, "o1", "tom", "150.00");
    assert_string_equal(outbox(&w, "tom"), "welcome:queued big:queued");
    advance_to(&w, "2026-07-13T11:00:00Z");
    order(&w, "o2", "tom", "20.00");
    assert_string_equal(outbox(&w, "tom"), "welcome:queued big:queued small:queued");
    /* an older order that arrives late: no refill for it, the small one's
     * condition (no order before it) fails too */
    event(&w, "order.placed",
          "{\"id\":\"o0\",\"customer_id\":\"tom\",\"currency\":\"EUR\",\"placed_at\":"
          "\"2026-07-12T10:00:00Z\",\"items\":[{\"sku\":\"A\",\"name\":\"A\",\"unit_price\":"
          "\"5.00\",\"quantity\":1}]}");
    assert_string_equal(outbox(&w, "tom"), "welcome:queued big:queued small:queued");
    assert_string_equal(runs(&w, "tom"), "welcome:done big:done refill:exited:ordered_again "
                                         "small:done refill:active");
    teardown_world(&w);
}

/* A journey file with action steps that break the rules names them. */
static void test_action_errors(void **state)
{
    (void)state;
    static const struct { const char *steps, *want; } cases[] = {
        { "  - discount: {percent: 10, amount: 5}\n", "exactly one of percent" },
        { "  - discount: {percent: 150}\n", "steps[0].discount.percent" },
        /* hex read as 16 before; a space before the number too */
        { "  - discount: {percent: 0x10}\n", "expected a number from 1 to 100, got '0x10'" },
        { "  - discount: {amount: ' 5'}\n", "steps[0].discount.amount" },
        { "  - discount: {amount: 5, prefix: abc}\n", "steps[0].discount.prefix" },
        { "  - emit: {signal: \"Not An Id\"}\n", "steps[0].emit.signal" },
        { "  - webhook: {url: \"ftp://x\", event: e}\n", "steps[0].webhook.url" },
        { "  - webhook: {url: \"https://x.example\"}\n", "steps[0].webhook.event" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char y[512];
        snprintf(y, sizeof y, "journey: bad\ntrigger: {event: order.placed}\nsteps:\n%s",
                 cases[i].steps);
        cs_journey_t *j = NULL;
        cs_err_t err;
        assert_int_not_equal(cs_journey_parse("bad.yaml", y, strlen(y), &j, &err), CS_OK);
        if (!strstr(err.msg, cases[i].want))
            fail_msg("case %zu: '%s' does not mention '%s'", i, err.msg, cases[i].want);
    }
}

/* The shipped playbook (etc/journeys), as the daemon loads it. */
static void setup_playbook(world_t *w, const char *start)
{
    cs_err_t err;
    memset(w, 0, sizeof *w);
    assert_int_equal(test_store_fresh(w->path, sizeof w->path, "/tmp/cs_journeys_XXXXXX"), 0);
    cs_clock_manual_init(&w->clock, at(start));
    open_store(w);
    cs_journeys_opts_t o = { .clock = &w->clock.clock };
    assert_int_equal(cs_journeys_new(&o, &w->js, &err), CS_OK);
    if (cs_journeys_load_dir(w->js, CS_PLAYBOOK_DIR, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(cs_store_begin(w->s, &err), CS_OK);
    assert_int_equal(cs_journeys_sync(w->js, w->s, &err), CS_OK);
    assert_int_equal(cs_store_commit(w->s, &err), CS_OK);
}

/* The customer's runs of one journey, as runs() shows them. */
static const char *runs_of(world_t *w, const char *cust, const char *journey)
{
    static char buf[512];
    const char *all = runs(w, cust);
    size_t n = strlen(journey);
    buf[0] = '\0';
    for (const char *p = all; *p;) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > n && strncmp(p, journey, n) == 0 && p[n] == ':')
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%.*s", buf[0] ? " " : "",
                     (int)len, p);
        p += len + (end ? 1 : 0);
    }
    return buf;
}

/* A parcel the carrier brings back to the shop is scanned `delivered` at
 * the shop: that is no delivery to the customer. No tips, no cross-sell:
 * they, the review request and the survey keep waiting -- for the parcel
 * the shop sends again. */
static void test_playbook_parcel_delivered_back(void **state)
{
    (void)state;
    world_t w;
    setup_playbook(&w, "2026-07-13T10:00:00Z"); /* a Monday */
    customer(&w, "pia", true);
    order(&w, "o1", "pia", "49.90");
    shipment(&w, "o1");
    advance_to(&w, "2026-07-14T09:00:00Z");
    scan(&w, "o1", "returned_to_sender");
    advance_to(&w, "2026-07-16T09:00:00Z");
    scan(&w, "o1", "delivered"); /* back at the shop */
    advance_to(&w, "2026-07-16T13:00:00Z");
    assert_string_equal(outbox(&w, "pia"), "order_confirmation_first:queued shipped:queued");
    assert_string_equal(runs_of(&w, "pia", "delivered_tips"), "delivered_tips:active");
    assert_string_equal(runs_of(&w, "pia", "cross_sell"), "cross_sell:active");
    assert_string_equal(runs_of(&w, "pia", "review_request"), "review_request:active");
    /* sent again, and this time delivered to her */
    event(&w, "shipment.created",
          "{\"id\":\"s-o1-2\",\"order_id\":\"o1\",\"carrier\":\"dhl\",\"tracking_number\":"
          "\"T2O1\"}");
    advance_to(&w, "2026-07-17T09:00:00Z");
    event(&w, "tracking.event",
          "{\"shipment_id\":\"s-o1-2\",\"carrier\":\"dhl\",\"tracking_number\":\"T2O1\","
          "\"status\":\"delivered\"}");
    advance_to(&w, "2026-07-17T12:00:00Z");
    assert_string_equal(outbox(&w, "pia"),
                        "order_confirmation_first:queued shipped:queued delivered_tips:queued");
    assert_string_equal(runs_of(&w, "pia", "cross_sell"), "cross_sell:active");
    /* not five days after the parcel came back to the shop ... */
    advance_to(&w, "2026-07-21T09:00:00Z");
    advance_to(&w, "2026-07-22T08:00:00Z");
    /* ... but five days after her delivery, 10:00 in Berlin on a working day */
    advance_to(&w, "2026-07-22T09:00:00Z");
    assert_string_equal(outbox(&w, "pia"),
                        "order_confirmation_first:queued shipped:queued delivered_tips:queued");
    advance_to(&w, "2026-07-23T08:00:00Z");
    assert_string_equal(outbox(&w, "pia"), "order_confirmation_first:queued shipped:queued "
                                           "delivered_tips:queued review_request:queued");
    teardown_world(&w);
}

/* An order in two parcels, the first delivered while the second is still
 * on its way: "your order has arrived" (the tips) and "we hope your order
 * is serving you well" (the cross-sell) wait for the second, as the review
 * request does; they went on the first parcel's delivery before. */
static void test_playbook_order_in_two_parcels(void **state)
{
    (void)state;
    world_t w;
    setup_playbook(&w, "2026-07-13T10:00:00Z"); /* a Monday */
    customer(&w, "pia", true);
    order(&w, "o1", "pia", "49.90");
    shipment(&w, "o1");
    event(&w, "shipment.created",
          "{\"id\":\"s-o1-2\",\"order_id\":\"o1\",\"carrier\":\"dpd\",\"tracking_number\":"
          "\"T2O1\"}");
    advance_to(&w, "2026-07-14T09:00:00Z");
    scan(&w, "o1", "delivered");
    event(&w, "tracking.event",
          "{\"shipment_id\":\"s-o1-2\",\"carrier\":\"dpd\",\"tracking_number\":\"T2O1\","
          "\"status\":\"in_transit\"}");
    advance_to(&w, "2026-07-14T13:00:00Z");
    assert_string_equal(outbox(&w, "pia"), "order_confirmation_first:queued shipped:queued");
    /* eleven days on, still without the second parcel: no cross-sell */
    advance_to(&w, "2026-07-25T19:00:00Z");
    assert_string_equal(outbox(&w, "pia"), "order_confirmation_first:queued shipped:queued");
    advance_to(&w, "2026-07-27T08:00:00Z");
    event(&w, "tracking.event",
          "{\"shipment_id\":\"s-o1-2\",\"carrier\":\"dpd\",\"tracking_number\":\"T2O1\","
          "\"status\":\"delivered\"}");
    advance_to(&w, "2026-07-27T11:30:00Z");
    assert_string_equal(outbox(&w, "pia"),
                        "order_confirmation_first:queued shipped:queued delivered_tips:queued");
    assert_string_equal(runs_of(&w, "pia", "cross_sell"), "cross_sell:active");
    teardown_world(&w);
}

/* A customer who reviewed the order (the shop's own review form) before
 * the review request was due is not asked for one: the request and the
 * survey end; they went out asking for the review just given. A review of
 * another order ends nothing. */
static void test_playbook_no_ask_after_feedback(void **state)
{
    (void)state;
    world_t w;
    setup_playbook(&w, "2026-07-13T10:00:00Z"); /* a Monday */
    customer(&w, "pia", true);
    order(&w, "o1", "pia", "49.90");
    order(&w, "o2", "pia", "19.90");
    shipment(&w, "o1");
    shipment(&w, "o2");
    advance_to(&w, "2026-07-14T09:00:00Z");
    scan(&w, "o1", "delivered");
    scan(&w, "o2", "delivered");
    advance_to(&w, "2026-07-15T18:00:00Z");
    event(&w, "feedback.submitted",
          "{\"id\":\"r1\",\"kind\":\"review\",\"score\":5,\"customer_id\":\"pia\","
          "\"order_id\":\"o1\",\"text\":\"Prima Zelt\"}");
    assert_string_equal(runs_of(&w, "pia", "review_request"),
                        "review_request:exited:feedback_given review_request:active");
    assert_string_equal(runs_of(&w, "pia", "nps_survey"),
                        "nps_survey:exited:feedback_given nps_survey:active");
    /* five days after the delivery, then 10:00 in Berlin on a working day */
    advance_to(&w, "2026-07-19T10:00:00Z");
    advance_to(&w, "2026-07-20T08:00:00Z");
    const char *out = outbox_orders(&w, "pia");
    if (!strstr(out, "review_request@o2") || strstr(out, "review_request@o1"))
        fail_msg("one review request, o2's: %s", out);
    teardown_world(&w);
}

/* A journey that ends when the customer orders again does not begin for an
 * order older than the customer's latest, with a trigger condition (read
 * with the context) or without one, on the order or on its parcel. */
static void test_no_run_for_an_order_older_than_the_latest(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { "journey: refill\ntrigger: {event: order.placed, if: \"order.total > 0\"}\n"
                        "exit_when: [ordered_again]\nsteps:\n"
                        "  - wait: 30d\n"
                        "  - send: {channel: email, template: refill, class: transactional}\n",
                        "journey: tips\ntrigger: {event: tracking.event, if: \"event.status == 'delivered'\"}\n"
                        "exit_when: [ordered_again]\nsteps:\n"
                        "  - wait: 2d\n"
                        "  - send: {channel: email, template: tips, class: transactional}\n" };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 2);
    customer(&w, "olga", true);
    order(&w, "o2", "olga", "20.00");
    assert_string_equal(runs(&w, "olga"), "refill:active");
    /* an older order comes late, and a parcel of it is delivered */
    event(&w, "order.placed",
          "{\"id\":\"o1\",\"customer_id\":\"olga\",\"currency\":\"EUR\",\"placed_at\":"
          "\"2026-07-12T10:00:00Z\",\"items\":[{\"sku\":\"A\",\"name\":\"A\",\"unit_price\":"
          "\"5.00\",\"quantity\":1}]}");
    shipment(&w, "o1");
    scan(&w, "o1", "delivered");
    assert_string_equal(runs(&w, "olga"), "refill:active");
    /* o2's own delivery starts the tips */
    shipment(&w, "o2");
    scan(&w, "o2", "delivered");
    assert_string_equal(runs(&w, "olga"), "refill:active tips:active");
    teardown_world(&w);
}

/* A cancelled order is not ordering again: an order's delivery starts a
 * journey that ends when the customer orders again, however the customer's
 * later order was cancelled, and the win-back's customer.last_order_id is
 * the order itself; a cancelled order's own delivery (the shop sent it
 * anyway) still starts it when nothing was ordered after it. */
static void test_cancelled_order_is_not_ordering_again(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { "journey: tips\ntrigger: {event: tracking.event, if: \"event.status == "
                        "'delivered'\"}\nexit_when: [ordered_again]\nsteps:\n"
                        "  - send: {channel: email, template: tips, class: transactional}\n",
                        "journey: back\ntrigger: {event: order.placed}\nsteps:\n"
                        "  - wait: 20d\n"
                        "  - if: \"customer.last_order_id != order.id\"\n"
                        "    then:\n"
                        "      - exit: ordered_again\n"
                        "  - send: {channel: email, template: win_back, class: transactional}\n" };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 2);
    customer(&w, "cleo", true);
    order(&w, "o1", "cleo", "20.00");
    advance_to(&w, "2026-07-14T10:00:00Z");
    order(&w, "o2", "cleo", "30.00");
    event(&w, "order.cancelled", "{\"order_id\":\"o2\"}");
    shipment(&w, "o1");
    scan(&w, "o1", "delivered");
    assert_string_equal(outbox(&w, "cleo"), "tips:queued");
    shipment(&w, "o2");
    scan(&w, "o2", "delivered");
    assert_string_equal(outbox(&w, "cleo"), "tips:queued tips:queued");
    /* o1's win-back goes; o2's, a cancelled order, ends */
    advance_to(&w, "2026-08-04T10:00:00Z");
    assert_string_equal(outbox(&w, "cleo"), "tips:queued tips:queued win_back:queued");
    assert_string_equal(runs(&w, "cleo"), "back:done back:exited:ordered_again tips:done "
                                          "tips:done");
    teardown_world(&w);
}

/* ordered_again is another order placed after the run's: not an edit of
 * an order known before (order.placed sent again), nor an older order
 * that reaches us late. */
static void test_ordered_again_means_a_later_order(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { "journey: refill\ntrigger: {event: order.placed}\n"
                        "exit_when: [ordered_again]\nsteps:\n"
                        "  - wait: 30d\n"
                        "  - send: {channel: email, template: refill, class: transactional}\n" };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 1);
    customer(&w, "olga", true);
    order(&w, "o1", "olga", "20.00");
    advance_to(&w, "2026-07-14T10:00:00Z");
    order(&w, "o2", "olga", "20.00");
    assert_string_equal(runs(&w, "olga"), "refill:exited:ordered_again refill:active");
    /* the shop edits o1 (an address, a line): olga did not order again */
    advance_to(&w, "2026-07-15T10:00:00Z");
    order(&w, "o1", "olga", "25.00");
    assert_string_equal(runs(&w, "olga"), "refill:exited:ordered_again refill:active");
    /* an order of hers from before o2 comes late: she has ordered again
     * since, so it starts no run, nor ends o2's */
    event(&w, "order.placed",
          "{\"id\":\"o0\",\"customer_id\":\"olga\",\"currency\":\"EUR\",\"placed_at\":"
          "\"2026-07-12T10:00:00Z\",\"items\":[{\"sku\":\"A\",\"name\":\"A\",\"unit_price\":"
          "\"5.00\",\"quantity\":1}]}");
    assert_string_equal(runs(&w, "olga"), "refill:exited:ordered_again refill:active");
    /* a new order is ordering again */
    order(&w, "o3", "olga", "20.00");
    assert_string_equal(runs(&w, "olga"), "refill:exited:ordered_again refill:exited:ordered_again "
                                          "refill:active");
    advance_to(&w, "2026-08-14T10:00:00Z");
    assert_string_equal(outbox(&w, "olga"), "refill:queued");
    teardown_world(&w);
}

/* A journey that ends on a return request does not begin for an order
 * whose return was requested before its trigger came: no tips and no
 * cross-sell after a delivery scan that arrives after the return. */
static void test_no_start_after_a_return(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        ("journey: tips\ntrigger: {event: tracking.event, if: \"event.status == 'delivered'\"}\n"
         "exit_when: [return_requested]\nsteps:\n"
         "  - send: {channel: email, template: tips, class: transactional}\n"),
        ("journey: moving\ntrigger: {event: tracking.event, if: \"event.status == 'in_transit'\"}\n"
         "steps:\n"
         "  - send: {channel: email, template: moving, class: transactional}\n"),
        ("journey: thanks\ntrigger: {event: order.placed}\nsteps:\n"
         "  - send: {channel: email, template: thanks, class: transactional}\n"),
    };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 3);
    customer(&w, "rosa", true);
    order(&w, "o1", "rosa", "49.90");
    shipment(&w, "o1");
    event(&w, "return.requested",
          "{\"id\":\"R1\",\"order_id\":\"o1\",\"resolution\":\"refund\",\"items\":[{\"sku\":"
          "\"ZELT-2\",\"quantity\":1}]}");
    scan(&w, "o1", "delivered");
    assert_string_equal(runs(&w, "rosa"), "thanks:done");
    /* the same when the order comes last and brings its parcels' scans:
     * o2's first parcel was delivered, its second is on its way */
    event(&w, "shipment.created", "{\"id\":\"p1\",\"order_id\":\"o2\",\"carrier\":\"dhl\","
                                  "\"tracking_number\":\"TP1\"}");
    event(&w, "shipment.created", "{\"id\":\"p2\",\"order_id\":\"o2\",\"carrier\":\"dhl\","
                                  "\"tracking_number\":\"TP2\"}");
    event(&w, "tracking.event", "{\"shipment_id\":\"p1\",\"carrier\":\"dhl\","
                                "\"tracking_number\":\"TP1\",\"status\":\"delivered\"}");
    event(&w, "tracking.event", "{\"shipment_id\":\"p2\",\"carrier\":\"dhl\","
                                "\"tracking_number\":\"TP2\",\"status\":\"in_transit\"}");
    event(&w, "return.requested",
          "{\"id\":\"R2\",\"order_id\":\"o2\",\"resolution\":\"refund\",\"items\":[{\"sku\":"
          "\"ZELT-2\",\"quantity\":1}]}");
    order(&w, "o2", "rosa", "49.90");
    assert_string_equal(runs(&w, "rosa"), "thanks:done thanks:done moving:done");
    /* without a return, the delivery starts it */
    order(&w, "o3", "rosa", "49.90");
    shipment(&w, "o3");
    scan(&w, "o3", "delivered");
    assert_string_equal(runs(&w, "rosa"), "thanks:done thanks:done moving:done thanks:done "
                                          "tips:done");
    teardown_world(&w);
}

/* A shop whose journeys all follow the parcel (it confirms orders and
 * announces parcels itself): scans that came before their order or their
 * parcel are still heard when the order or the parcel comes. */
static void test_scans_before_their_order_without_order_journeys(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { tips_yaml };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 1);
    customer(&w, "udo", true);
    shipment(&w, "o1");
    scan(&w, "o1", "delivered");
    order(&w, "o1", "udo", "49.90");
    assert_string_equal(outbox(&w, "udo"), "tips:queued");
    order(&w, "o2", "udo", "49.90");
    scan(&w, "o2", "delivered");
    shipment(&w, "o2");
    assert_string_equal(outbox(&w, "udo"), "tips:queued tips:queued");
    teardown_world(&w);
}

static void test_rolled_back_pass_repeats_exactly(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = { confirm_yaml };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 1);
    cs_err_t err;
    /* ingest without a pass, then a pass that is rolled back (a crash) */
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"event_id\":\"x1\",\"type\":\"order.placed\",\"occurred_at\":"
             "\"2026-07-13T10:00:00Z\",\"data\":{\"id\":\"o1\",\"customer_id\":\"gina\","
             "\"currency\":\"EUR\",\"customer\":{\"id\":\"gina\",\"email\":\"g@example.de\"},"
             "\"items\":[{\"sku\":\"A\",\"name\":\"A\",\"unit_price\":1,\"quantity\":1}]}}");
    cs_event_t *ev;
    cs_ingest_outcome_t oc;
    int64_t seq;
    assert_int_equal(cs_event_parse(buf, strlen(buf), &ev, &err), CS_OK);
    assert_int_equal(cs_store_begin(w.s, &err), CS_OK);
    assert_int_equal(cs_store_ingest(w.s, ev, 0, &oc, &seq, &err), CS_OK);
    assert_int_equal(cs_store_commit(w.s, &err), CS_OK);
    cs_event_free(&ev);
    assert_int_equal(cs_store_begin(w.s, &err), CS_OK);
    assert_int_equal(cs_journeys_process_events(w.js, w.s, 1000, &w.st, &err), CS_OK);
    cs_store_rollback(w.s);
    assert_string_equal(outbox(&w, "gina"), "");
    assert_string_equal(runs(&w, "gina"), "");
    pass(&w);
    pass(&w);
    assert_string_equal(outbox(&w, "gina"), "confirmation_first:queued");
    teardown_world(&w);
}

/* An event about one order reads, of the customer's runs about other
 * orders, only those of the journeys with an exit or a wait on its type
 * (in some version): they still end. An order placed ends the win-back of
 * the order before (ordered_again), an unsubscribe and a ticket about no
 * order end every run that exits on them, whatever its order; the runs of
 * the journeys that do not listen go on. */
static void test_exits_reach_the_runs_of_other_orders(void **state)
{
    (void)state;
    world_t w;
    const char *y[] = {
        "journey: win_back\ntrigger: {event: order.placed}\n"
        "exit_when: [ordered_again, unsubscribed]\nsteps:\n"
        "  - wait: 120d\n"
        "  - send: {channel: email, template: win_back, class: marketing}\n",
        "journey: review\ntrigger: {event: order.placed}\nexit_when: [ticket_opened]\nsteps:\n"
        "  - wait_for: {event: tracking.event, if: \"event.status == 'delivered'\", timeout: 21d}\n"
        "  - send: {channel: email, template: review, class: ask}\n",
        "journey: survey\ntrigger: {event: order.placed}\nexit_when: [unsubscribed]\nsteps:\n"
        "  - wait: 30d\n"
        "  - send: {channel: email, template: survey, class: ask}\n",
    };
    setup_world(&w, "2026-07-13T10:00:00Z", y, 3);
    customer(&w, "gia", true);
    order(&w, "o1", "gia", "20.00");
    advance_to(&w, "2026-07-13T11:00:00Z");
    order(&w, "o2", "gia", "30.00");
    assert_string_equal(runs(&w, "gia"), "win_back:exited:ordered_again review:active "
                                         "survey:active win_back:active review:active "
                                         "survey:active");
    /* an edit of o1 is no new order: o2's win-back goes on */
    order(&w, "o1", "gia", "25.00");
    assert_string_equal(runs_of(&w, "gia", "win_back"),
                        "win_back:exited:ordered_again win_back:active");
    /* an unsubscribe ends o2's win-back and both surveys, not the reviews */
    event(&w, "message.status",
          "{\"message_id\":\"m1\",\"status\":\"unsubscribed\",\"channel\":\"email\","
          "\"customer_id\":\"gia\"}");
    assert_string_equal(runs(&w, "gia"), "win_back:exited:ordered_again review:active "
                                         "survey:exited:unsubscribed win_back:exited:unsubscribed "
                                         "review:active survey:exited:unsubscribed");
    /* a ticket about o2 ends o2's review; one about no order, o1's */
    event(&w, "ticket.created", "{\"id\":\"t-1\",\"customer_id\":\"gia\",\"order_id\":\"o2\"}");
    assert_string_equal(runs_of(&w, "gia", "review"), "review:active review:exited:ticket_opened");
    event(&w, "ticket.created", "{\"id\":\"t-2\",\"customer_id\":\"gia\"}");
    assert_string_equal(runs_of(&w, "gia", "review"),
                        "review:exited:ticket_opened review:exited:ticket_opened");
    teardown_world(&w);
}

/* A run stays on the version it began on: one whose version ends when the
 * customer orders again ends when they do, though the journey's file no
 * longer says so (the runs begun on the new version go on). */
static void test_old_version_ends_on_another_order(void **state)
{
    (void)state;
    world_t w;
    const char *v1[] = { "journey: nudge\ntrigger: {event: order.placed}\n"
                         "exit_when: [ordered_again]\nsteps:\n"
                         "  - wait: 30d\n"
                         "  - send: {channel: email, template: nudge_v1, class: transactional}\n" };
    setup_world(&w, "2026-07-13T10:00:00Z", v1, 1);
    customer(&w, "nils", true);
    order(&w, "o1", "nils", "20.00");
    cs_journeys_free(w.js);
    cs_store_close(&w.s);
    open_store(&w);
    const char *v2[] = { "journey: nudge\ntrigger: {event: order.placed}\nsteps:\n"
                         "  - wait: 30d\n"
                         "  - send: {channel: email, template: nudge_v2, class: transactional}\n" };
    load(&w, v2, 1);
    advance_to(&w, "2026-07-14T10:00:00Z");
    order(&w, "o2", "nils", "20.00");
    assert_string_equal(runs(&w, "nils"), "nudge:exited:ordered_again nudge:active");
    advance_to(&w, "2026-07-15T10:00:00Z");
    order(&w, "o3", "nils", "20.00");
    assert_string_equal(runs(&w, "nils"), "nudge:exited:ordered_again nudge:active nudge:active");
    advance_to(&w, "2026-08-15T10:00:00Z");
    assert_string_equal(outbox(&w, "nils"), "nudge_v2:queued nudge_v2:queued");
    teardown_world(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_confirmation_first_and_repeat),
        cmocka_unit_test(test_review_after_delivery),
        cmocka_unit_test(test_events_before_their_order),
        cmocka_unit_test(test_late_order_brings_in_fresh_scans),
        cmocka_unit_test(test_scans_before_their_order_without_order_journeys),
        cmocka_unit_test(test_address_after_the_order),
        cmocka_unit_test(test_timeout_and_exits),
        cmocka_unit_test(test_ticket_sent_again_ends_no_run),
        cmocka_unit_test(test_ticket_sent_again_after_many),
        cmocka_unit_test(test_ticket_sent_again_starts_no_run),
        cmocka_unit_test(test_wait_for_a_customer_event_in_an_order_run),
        cmocka_unit_test(test_status_of_our_message_names_it),
        cmocka_unit_test(test_history_ends_no_run),
        cmocka_unit_test(test_context_fields_known),
        cmocka_unit_test(test_policy_in_the_runtime),
        cmocka_unit_test(test_at_risk_holds_marketing),
        cmocka_unit_test(test_open_ticket_holds_marketing),
        cmocka_unit_test(test_stale_ticket_holds_nothing),
        cmocka_unit_test(test_unsubscribe_outlives_the_same_record),
        cmocka_unit_test(test_refusal_keeps_unsubscribe),
        cmocka_unit_test(test_at_risk_holds_marketing_after_one_parcel),
        cmocka_unit_test(test_other_order_at_risk_holds_marketing),
        cmocka_unit_test(test_quiet_hours_in_the_shop_zone),
        cmocka_unit_test(test_business_day_skips_closed_days),
        cmocka_unit_test(test_quiet_hours_end_keeps_the_budget),
        cmocka_unit_test(test_hold_after_quiet_hours_starts_anew),
        cmocka_unit_test(test_history_sends_nothing),
        cmocka_unit_test(test_channels_off),
        cmocka_unit_test(test_fallback_recorded),
        cmocka_unit_test(test_versions_switches_and_restart),
        cmocka_unit_test(test_old_version_still_listens),
        cmocka_unit_test(test_stored_version_of_an_older_release),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_action_errors),
        cmocka_unit_test(test_run_of_an_order_given_to_another),
        cmocka_unit_test(test_order_given_to_another_starts_their_runs),
        cmocka_unit_test(test_trigger_conditions_of_one_event),
        cmocka_unit_test(test_rolled_back_pass_repeats_exactly),
        cmocka_unit_test(test_no_start_after_a_return),
        cmocka_unit_test(test_ordered_again_means_a_later_order),
        cmocka_unit_test(test_cancelled_order_is_not_ordering_again),
        cmocka_unit_test(test_no_run_for_an_order_older_than_the_latest),
        cmocka_unit_test(test_playbook_parcel_delivered_back),
        cmocka_unit_test(test_playbook_order_in_two_parcels),
        cmocka_unit_test(test_playbook_no_ask_after_feedback),
        cmocka_unit_test(test_late_by_the_shop_day),
        cmocka_unit_test(test_cancelled_order_not_late),
        cmocka_unit_test(test_ticket_open_condition_stale),
        cmocka_unit_test(test_exits_reach_the_runs_of_other_orders),
        cmocka_unit_test(test_old_version_ends_on_another_order),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cs_tz_cache_clear();
    return rc;
}
