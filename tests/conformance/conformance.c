/*
 * conformance.c -- the store conformance suite. It speaks only store.h, so
 * every backend runs it unchanged:
 *
 *     store_conformance "sqlite:{tmp}/conf.db"     ({tmp} = a fresh folder)
 *     store_conformance "sqlite::memory:"
 *     store_conformance "postgresql://..."          (a database it may empty)
 *
 * Covered: migrations on a fresh store and reopening, idempotent ingest,
 * every event type folded into the views, out-of-order arrival (stubs,
 * older updates, scans before their shipment), partial customer updates,
 * rollback, the event log query, counts, API keys, durability across
 * reopen and reader handles (file targets only); and the journey state:
 * versions, switches, runs, durable timers, the outbox (put, claim with a
 * lease, results, release, provider references), cursors, discount codes,
 * contact data with unsubscribes and bounces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../unit/test_store.h"
#include "store/store.h"

static char target[1024];
static char tmpdir[256];
static bool is_memory;
static int test_no;

/* A fresh store per test: file targets get their own file; a PostgreSQL
 * database is emptied. */
static int setup(void **state)
{
    char t[1024];
    const char *p = strstr(target, "{tmp}");
    test_no++;
    if (strncmp(target, "postgres", 8) == 0 && test_pg_empty(target) != 0)
        return -1;
    if (p) {
        const char *rest = p[5] == '/' ? p + 6 : p + 5;
        snprintf(t, sizeof t, "%.*s%s/t%d-%s", (int)(p - target), target, tmpdir, test_no, rest);
    } else {
        snprintf(t, sizeof t, "%s", target);
    }
    char *copy = strdup(t);
    *state = copy;
    return copy ? 0 : -1;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static cs_store_t *open_store(void **state)
{
    cs_store_t *s = NULL;
    cs_err_t err;
    cs_store_opts_t o;
    cs_store_opts_default(&o);
    o.durable = !is_memory;
    if (cs_store_open(*state, &o, &s, &err) != CS_OK)
        fail_msg("open %s: %s", (char *)*state, err.msg);
    return s;
}

static cs_event_t *ev_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static cs_event_t *ev_of(const char *fmt, ...)
{
    char text[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cs_event_t *ev = NULL;
    cs_err_t err;
    if (cs_event_parse(text, strlen(text), &ev, &err) != CS_OK)
        fail_msg("test event does not parse: %s\n%s", err.msg, text);
    return ev;
}

/* Ingest one event received at `received` in its own transaction; returns
 * the outcome. */
static cs_ingest_outcome_t put_at(cs_store_t *s, cs_event_t *ev, cs_ms_t received,
                                  int64_t *seq_out)
{
    cs_err_t err;
    cs_ingest_outcome_t out;
    int64_t seq = 0;
    assert_int_equal(cs_store_begin(s, &err), CS_OK);
    if (cs_store_ingest(s, ev, received, &out, &seq, &err) != CS_OK)
        fail_msg("ingest %s: %s", ev->event_id, err.msg);
    assert_int_equal(cs_store_commit(s, &err), CS_OK);
    assert_true(seq > 0);
    if (seq_out)
        *seq_out = seq;
    cs_event_free(&ev);
    return out;
}

/* ... received as it happened (at 2026-03-01T21:20:00Z for what happened
 * before) */
static cs_ingest_outcome_t put(cs_store_t *s, cs_event_t *ev, int64_t *seq_out)
{
    cs_ms_t received = 1772400000000LL;
    return put_at(s, ev, ev->occurred_at > received ? ev->occurred_at : received, seq_out);
}

#define EV(id, type, at, data) \
    ev_of("{\"event_id\":\"%s\",\"type\":\"" type "\",\"occurred_at\":\"%s\",\"data\":" data "}", id, at)

static cs_event_t *order_ev(const char *id, const char *order, const char *at, const char *price)
{
    return ev_of("{\"event_id\":\"%s\",\"type\":\"order.placed\",\"occurred_at\":\"%s\",\"data\":"
                 "{\"id\":\"%s\",\"customer_id\":\"c-7\",\"currency\":\"EUR\",\"items\":[{\"sku\":"
                 "\"KAF\",\"name\":\"Kaffee\",\"category\":\"kaffee\",\"unit_price\":\"%s\","
                 "\"quantity\":2}],\"totals\":{\"shipping\":\"4.90\"},\"promised_delivery\":"
                 "{\"earliest\":\"2026-03-03\",\"latest\":\"2026-03-05\"}}}",
                 id, at, order, price);
}

static json_t *order_view(cs_store_t *s, const char *id)
{
    json_t *v = NULL;
    cs_err_t err;
    if (cs_store_order_view(s, id, &v, &err) != CS_OK)
        fail_msg("order view %s: %s", id, err.msg);
    return v;
}

static json_t *customer_view(cs_store_t *s, const char *id)
{
    json_t *v = NULL;
    cs_err_t err;
    if (cs_store_customer_view(s, id, &v, &err) != CS_OK)
        fail_msg("customer view %s: %s", id, err.msg);
    return v;
}

static const char *str_at(json_t *v, const char *path)
{
    /* "a.b.0.c": objects by key, arrays by index */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = v;
    for (char *tok = buf, *dot; tok && cur; tok = dot ? dot + 1 : NULL) {
        dot = strchr(tok, '.');
        if (dot)
            *dot = '\0';
        if (json_is_array(cur))
            cur = json_array_get(cur, (size_t)strtol(tok, NULL, 10));
        else
            cur = json_object_get(cur, tok);
    }
    return json_is_string(cur) ? json_string_value(cur) : json_is_null(cur) ? "(null)" : NULL;
}

/* ---- the tests ---- */

static void test_open_migrate_reopen(void **state)
{
    cs_store_t *s = open_store(state);
    cs_store_counts_t c;
    cs_err_t err;
    assert_int_equal(cs_store_counts(s, &c, &err), CS_OK);
    assert_int_equal(c.events, 0);
    assert_int_equal(c.last_seq, 0);
    put(s, order_ev("o1", "1001", "2026-03-01T10:00:00Z", "8.90"), NULL);
    cs_store_close(&s);
    assert_null(s);
    if (is_memory)
        return; /* nothing survives an in-memory store */
    s = open_store(state); /* migrations are idempotent */
    assert_int_equal(cs_store_counts(s, &c, &err), CS_OK);
    assert_int_equal(c.events, 1);
    assert_int_equal(c.orders, 1);
    assert_int_equal(c.order_items, 1);
    cs_store_close(&s);
}

static void test_idempotent_ingest(void **state)
{
    cs_store_t *s = open_store(state);
    int64_t seq1, seq2;
    assert_int_equal(put(s, order_ev("o1", "1001", "2026-03-01T10:00:00Z", "8.90"), &seq1),
                     CS_INGEST_NEW);
    /* same event id, different content: still the original */
    assert_int_equal(put(s, order_ev("o1", "1001", "2026-03-02T10:00:00Z", "99.00"), &seq2),
                     CS_INGEST_DUPLICATE);
    assert_int_equal(seq1, seq2);
    json_t *v = order_view(s, "1001");
    assert_string_equal(str_at(v, "items.0.unit_price"), "8.90");
    assert_string_equal(str_at(v, "totals.total"), "22.70");
    json_decref(v);
    cs_store_counts_t c;
    assert_int_equal(cs_store_counts(s, &c, NULL), CS_OK);
    assert_int_equal(c.events, 1);

    /* an id the producer chose (the event API, an NDJSON import): the
     * same data again is the replay it looks like, whenever it is dated;
     * other data under it is refused naming event_id, and the original
     * stays. It passed for a replay, so the second event was lost. */
    cs_event_t *ev = order_ev("o1", "1001", "2026-03-01T11:00:00Z", "8.90");
    ev->producer_id = true;
    assert_int_equal(put(s, ev, &seq2), CS_INGEST_DUPLICATE);
    assert_int_equal(seq1, seq2);
    cs_err_t err;
    cs_ingest_outcome_t out;
    ev = order_ev("o1", "1002", "2026-03-01T10:00:00Z", "8.90");
    ev->producer_id = true;
    assert_int_equal(cs_store_begin(s, &err), CS_OK);
    assert_int_equal(cs_store_ingest(s, ev, 1772400000000LL, &out, &seq2, &err), CS_ERR_RULE);
    assert_string_equal(err.field, "event_id");
    assert_non_null(strstr(err.msg, "event_id: \"o1\" already names another event (seq "));
    assert_non_null(strstr(err.msg, "an order.placed with other data"));
    assert_int_equal(cs_store_commit(s, &err), CS_OK);
    cs_event_free(&ev);
    /* a scan's id made here means the same scan told anew: a replay */
    ev = order_ev("o1", "1003", "2026-03-01T10:00:00Z", "8.90");
    assert_int_equal(put(s, ev, &seq2), CS_INGEST_DUPLICATE);
    assert_int_equal(cs_store_counts(s, &c, NULL), CS_OK);
    assert_int_equal(c.events, 1);
    assert_int_equal(c.orders, 1);
    cs_store_close(&s);
}

static void test_every_type_folds(void **state)
{
    cs_store_t *s = open_store(state);
    put(s, EV("c1", "customer.upserted", "2026-03-01T09:00:00Z",
              "{\"id\":\"c-7\",\"email\":\"anna@example.de\",\"name\":\"Anna\",\"locale\":\"de\","
              "\"timezone\":\"Europe/Berlin\",\"consents\":{\"email\":{\"transactional\":true,"
              "\"marketing\":false}},\"attributes\":{\"vip\":true}}"),
        NULL);
    put(s, order_ev("o1", "1001", "2026-03-01T10:00:00Z", "8.90"), NULL);
    put(s, EV("s1", "shipment.created", "2026-03-02T10:00:00Z",
              "{\"id\":\"sh1\",\"order_id\":\"1001\",\"carrier\":\"DHL\",\"service\":\"Paket\","
              "\"tracking_number\":\"T1\",\"destination\":{\"city\":\"Berlin\",\"country\":\"DE\"}}"),
        NULL);
    put(s, EV("k1", "tracking.event", "2026-03-02T12:00:00Z",
              "{\"carrier\":\"dhl\",\"tracking_number\":\"T1\",\"status\":\"in_transit\","
              "\"carrier_code\":\"PCK\",\"carrier_text\":\"Bearbeitet\"}"),
        NULL);
    put(s, EV("k2", "tracking.event", "2026-03-03T12:00:00Z",
              "{\"shipment_id\":\"sh1\",\"carrier\":\"dhl\",\"tracking_number\":\"T1\","
              "\"status\":\"delivered\",\"location\":{\"city\":\"Berlin\"}}"),
        NULL);
    put(s, EV("r1", "return.requested", "2026-03-05T12:00:00Z",
              "{\"id\":\"R1\",\"order_id\":\"1001\",\"resolution\":\"refund\",\"items\":[{\"sku\":"
              "\"KAF\",\"quantity\":1,\"reason\":\"zu bitter\"}]}"),
        NULL);
    put(s, EV("r2", "return.updated", "2026-03-07T12:00:00Z",
              "{\"id\":\"R1\",\"status\":\"refunded\",\"refund_amount\":\"8.90\"}"),
        NULL);
    put(s, EV("t1", "ticket.created", "2026-03-02T18:00:00Z",
              "{\"id\":\"T1\",\"customer_id\":\"c-7\",\"order_id\":\"1001\",\"category\":\"wismo\","
              "\"subject\":\"Wo ist meine Bestellung?\"}"),
        NULL);
    put(s, EV("t2", "ticket.updated", "2026-03-03T18:00:00Z", "{\"id\":\"T1\",\"status\":\"solved\"}"),
        NULL);
    put(s, EV("f1", "feedback.submitted", "2026-03-08T12:00:00Z",
              "{\"id\":\"F1\",\"kind\":\"review\",\"score\":4,\"customer_id\":\"c-7\",\"order_id\":"
              "\"1001\",\"text\":\"Gut\"}"),
        NULL);
    put(s, EV("m1", "message.status", "2026-03-01T10:01:00Z",
              "{\"message_id\":\"M1\",\"status\":\"delivered\",\"channel\":\"email\",\"customer_id\":\"c-7\"}"),
        NULL);

    json_t *o = order_view(s, "1001");
    assert_string_equal(str_at(o, "status"), "placed");
    assert_string_equal(str_at(o, "currency"), "EUR");
    assert_string_equal(str_at(o, "totals.subtotal"), "17.80");
    assert_string_equal(str_at(o, "totals.shipping"), "4.90");
    assert_string_equal(str_at(o, "promised_delivery.latest"), "2026-03-05T00:00:00.000Z");
    assert_string_equal(str_at(o, "shipments.0.carrier"), "dhl");
    assert_string_equal(str_at(o, "shipments.0.status"), "delivered");
    assert_string_equal(str_at(o, "shipments.0.delivered_at"), "2026-03-03T12:00:00.000Z");
    assert_int_equal(json_array_size(json_object_get(json_array_get(json_object_get(o, "shipments"), 0), "scans")), 2);
    assert_string_equal(str_at(o, "shipments.0.scans.0.carrier_text"), "Bearbeitet");
    assert_string_equal(str_at(o, "shipments.0.scans.1.location.city"), "Berlin");
    assert_string_equal(str_at(o, "returns.0.status"), "refunded");
    assert_string_equal(str_at(o, "returns.0.refund_amount"), "8.90");
    assert_string_equal(str_at(o, "returns.0.items.0.reason"), "zu bitter");
    assert_string_equal(str_at(o, "tickets.0.status"), "solved");
    assert_string_equal(str_at(o, "feedback.0.kind"), "review");
    /* the timeline: every event of the order, by time */
    json_t *tl = json_object_get(o, "timeline");
    assert_int_equal(json_array_size(tl), 9);
    assert_string_equal(str_at(o, "timeline.0.type"), "order.placed");
    assert_string_equal(str_at(o, "timeline.8.type"), "feedback.submitted");
    json_decref(o);

    json_t *c = customer_view(s, "c-7");
    assert_string_equal(str_at(c, "email"), "anna@example.de");
    assert_true(json_is_true(json_object_get(json_object_get(json_object_get(c, "consents"), "email"), "transactional")));
    assert_true(json_is_false(json_object_get(json_object_get(json_object_get(c, "consents"), "email"), "marketing")));
    assert_true(json_is_null(json_object_get(json_object_get(json_object_get(c, "consents"), "sms"), "marketing")));
    assert_true(json_is_true(json_object_get(json_object_get(c, "attributes"), "vip")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "stats"), "orders")), 1);
    /* 22.70 less the 8.90 refunded */
    assert_string_equal(str_at(c, "stats.total_spent.EUR"), "13.80");
    assert_string_equal(str_at(c, "orders.0.id"), "1001");
    json_decref(c);

    cs_store_counts_t n;
    assert_int_equal(cs_store_counts(s, &n, NULL), CS_OK);
    assert_int_equal(n.events, 11);
    assert_int_equal(n.customers, 1);
    assert_int_equal(n.shipments, 1);
    assert_int_equal(n.scans, 2);
    assert_int_equal(n.pending_scans, 0);
    assert_int_equal(n.returns, 1);
    assert_int_equal(n.tickets, 1);
    assert_int_equal(n.feedback, 1);
    assert_int_equal(n.message_events, 1);
    assert_int_equal(n.last_seq, 11);
    cs_store_close(&s);
}

static void test_scans_before_their_shipment(void **state)
{
    cs_store_t *s = open_store(state);
    put(s, order_ev("o1", "1001", "2026-03-01T10:00:00Z", "8.90"), NULL);
    /* the carrier is faster than the shop: two scans, then the shipment;
     * each is reported as waiting for it */
    assert_int_equal(put(s, EV("k2", "tracking.event", "2026-03-03T09:00:00Z",
                               "{\"carrier\":\"dpd\",\"tracking_number\":\"X9\",\"status\":\"out_for_delivery\"}"),
                         NULL),
                     CS_INGEST_PENDING);
    assert_int_equal(put(s, EV("k1", "tracking.event", "2026-03-02T09:00:00Z",
                               "{\"shipment_id\":\"sh9\",\"carrier\":\"dpd\",\"tracking_number\":\"X9\",\"status\":\"in_transit\"}"),
                         NULL),
                     CS_INGEST_PENDING);
    cs_store_counts_t n;
    assert_int_equal(cs_store_counts(s, &n, NULL), CS_OK);
    assert_int_equal(n.pending_scans, 2);
    json_t *o = order_view(s, "1001");
    assert_int_equal(json_array_size(json_object_get(o, "shipments")), 0);
    json_decref(o);

    put(s, EV("s1", "shipment.created", "2026-03-02T08:00:00Z",
              "{\"id\":\"sh9\",\"order_id\":\"1001\",\"carrier\":\"dpd\",\"tracking_number\":\"X9\"}"),
        NULL);
    assert_int_equal(cs_store_counts(s, &n, NULL), CS_OK);
    assert_int_equal(n.pending_scans, 0);
    o = order_view(s, "1001");
    assert_string_equal(str_at(o, "shipments.0.status"), "out_for_delivery"); /* the latest scan */
    assert_string_equal(str_at(o, "shipments.0.scans.0.status"), "in_transit");
    assert_int_equal(json_array_size(json_object_get(o, "timeline")), 4);
    assert_string_equal(str_at(o, "timeline.3.type"), "tracking.event");
    json_decref(o);

    /* an older scan arriving late does not turn the status back (and it
     * found its shipment: not waiting) */
    assert_int_equal(put(s, EV("k0", "tracking.event", "2026-03-02T08:30:00Z",
                               "{\"carrier\":\"dpd\",\"tracking_number\":\"X9\",\"status\":\"info_received\"}"),
                         NULL),
                     CS_INGEST_NEW);
    o = order_view(s, "1001");
    assert_string_equal(str_at(o, "shipments.0.status"), "out_for_delivery");
    assert_string_equal(str_at(o, "shipments.0.scans.0.status"), "info_received");
    json_decref(o);
    cs_store_close(&s);
}

/* The same scan sent again under another event id (a carrier or an
 * aggregator sending its history again): logged, stored once -- waiting
 * for its parcel or on it, in any order. A scan that differs in anything
 * the parcel would show (its text, its place) is another scan. */
#define SCAN_EV(id, at, sid, status, extra)                                                 \
    ev_of("{\"event_id\":\"%s\",\"type\":\"tracking.event\",\"occurred_at\":\"%s\",\"data\":{" \
          "%s\"carrier\":\"dpd\",\"tracking_number\":\"SC1\",\"status\":\"%s\"%s}}",          \
          id, at, sid, status, extra)
#define HUB ",\"carrier_code\":\"HUB\",\"carrier_text\":\"Im Depot\",\"location\":{\"city\":\"Leipzig\"}"

static void test_same_scan_once(void **state)
{
    cs_store_t *s = open_store(state);
    cs_store_counts_t n;
    put(s, order_ev("o1", "1001", "2026-03-01T10:00:00Z", "8.90"), NULL);
    /* waiting for its parcel, twice: one waits */
    assert_int_equal(put(s, SCAN_EV("w1", "2026-03-02T09:00:00Z", "", "in_transit", HUB), NULL),
                     CS_INGEST_PENDING);
    assert_int_equal(put(s, SCAN_EV("w1b", "2026-03-02T09:00:00Z", "\"shipment_id\":\"sh1\",",
                                    "in_transit", HUB),
                         NULL),
                     CS_INGEST_PENDING);
    assert_int_equal(cs_store_counts(s, &n, NULL), CS_OK);
    assert_int_equal(n.pending_scans, 1);
    put(s, EV("s1", "shipment.created", "2026-03-02T08:00:00Z",
              "{\"id\":\"sh1\",\"order_id\":\"1001\",\"carrier\":\"dpd\",\"tracking_number\":\"SC1\"}"),
        NULL);
    /* on its parcel: sent again, once more; the same instant with another
     * text or place is another scan */
    assert_int_equal(put(s, SCAN_EV("w1c", "2026-03-02T09:00:00Z", "", "in_transit", HUB), NULL),
                     CS_INGEST_NEW);
    put(s, SCAN_EV("x1", "2026-03-02T09:00:00Z", "", "in_transit",
                   ",\"carrier_code\":\"HUB\",\"carrier_text\":\"Im Depot Nord\","
                   "\"location\":{\"city\":\"Leipzig\"}"),
        NULL);
    put(s, SCAN_EV("x2", "2026-03-02T09:00:00Z", "", "in_transit",
                   ",\"carrier_code\":\"HUB\",\"carrier_text\":\"Im Depot\","
                   "\"location\":{\"city\":\"Halle\"}"),
        NULL);
    /* out for delivery, the scan before it sent again at the same
     * instant: the parcel stays out for delivery */
    put(s, SCAN_EV("a1", "2026-03-03T07:00:00Z", "", "in_transit", ""), NULL);
    put(s, SCAN_EV("a2", "2026-03-03T07:00:00Z", "", "out_for_delivery", ""), NULL);
    put(s, SCAN_EV("a1b", "2026-03-03T07:00:00Z", "\"shipment_id\":\"sh1\",", "in_transit", ""),
        NULL);
    assert_int_equal(cs_store_counts(s, &n, NULL), CS_OK);
    assert_int_equal(n.events, 10);
    assert_int_equal(n.scans, 5);
    assert_int_equal(n.pending_scans, 0);
    json_t *o = order_view(s, "1001");
    assert_int_equal(json_array_size(json_object_get(
                         json_array_get(json_object_get(o, "shipments"), 0), "scans")),
                     5);
    assert_string_equal(str_at(o, "shipments.0.status"), "out_for_delivery");
    json_decref(o);
    cs_store_close(&s);
}

static void test_updates_before_creates(void **state)
{
    cs_store_t *s = open_store(state);
    /* cancelled before placed: stays cancelled */
    put(s, EV("x1", "order.cancelled", "2026-03-01T12:00:00Z",
              "{\"order_id\":\"1002\",\"reason\":\"customer_request\"}"),
        NULL);
    json_t *v = NULL;
    assert_int_equal(cs_store_order_view(s, "1002", &v, NULL), CS_ERR_NOTFOUND);
    put(s, order_ev("o2", "1002", "2026-03-01T10:00:00Z", "5.00"), NULL);
    v = order_view(s, "1002");
    assert_string_equal(str_at(v, "status"), "cancelled");
    assert_string_equal(str_at(v, "cancel_reason"), "customer_request");
    assert_int_equal(json_array_size(json_object_get(v, "timeline")), 2);
    json_decref(v);

    /* a return updated before it was requested */
    put(s, EV("r2", "return.updated", "2026-03-09T12:00:00Z", "{\"id\":\"R5\",\"status\":\"received\"}"), NULL);
    put(s, EV("r1", "return.requested", "2026-03-08T12:00:00Z",
              "{\"id\":\"R5\",\"order_id\":\"1002\",\"resolution\":\"store_credit\",\"items\":[{\"sku\":\"KAF\",\"quantity\":2}]}"),
        NULL);
    /* a ticket solved before it was created */
    put(s, EV("t2", "ticket.updated", "2026-03-04T12:00:00Z", "{\"id\":\"T5\",\"status\":\"solved\"}"), NULL);
    put(s, EV("t1", "ticket.created", "2026-03-03T12:00:00Z",
              "{\"id\":\"T5\",\"customer_id\":\"c-7\",\"order_id\":\"1002\"}"),
        NULL);
    v = order_view(s, "1002");
    assert_string_equal(str_at(v, "returns.0.status"), "received"); /* the newer status wins */
    assert_string_equal(str_at(v, "returns.0.resolution"), "store_credit");
    assert_string_equal(str_at(v, "tickets.0.status"), "solved");
    /* the early updates joined the order's timeline once their entity arrived */
    assert_int_equal(json_array_size(json_object_get(v, "timeline")), 6);
    json_decref(v);

    /* an older ticket update does not reopen it */
    put(s, EV("t0", "ticket.updated", "2026-03-03T13:00:00Z", "{\"id\":\"T5\",\"status\":\"open\"}"), NULL);
    v = order_view(s, "1002");
    assert_string_equal(str_at(v, "tickets.0.status"), "solved");
    json_decref(v);
    cs_store_close(&s);
}

/* Several updates of a ticket before the ticket itself: every one joins
 * its order's timeline once the ticket names the order (docs/api.md). */
static void test_ticket_updates_before_create(void **state)
{
    cs_store_t *s = open_store(state);
    put(s, order_ev("o1", "1003", "2026-03-01T10:00:00Z", "5.00"), NULL);
    put(s, EV("t2", "ticket.updated", "2026-03-04T12:00:00Z", "{\"id\":\"T6\",\"status\":\"pending\"}"), NULL);
    put(s, EV("t3", "ticket.updated", "2026-03-05T12:00:00Z", "{\"id\":\"T6\",\"status\":\"solved\"}"), NULL);
    put(s, EV("t1", "ticket.created", "2026-03-03T12:00:00Z",
              "{\"id\":\"T6\",\"customer_id\":\"c-7\",\"order_id\":\"1003\"}"),
        NULL);
    json_t *v = order_view(s, "1003");
    assert_string_equal(str_at(v, "tickets.0.status"), "solved");
    assert_int_equal(json_array_size(json_object_get(v, "timeline")), 4);
    assert_string_equal(str_at(v, "timeline.3.event_id"), "t3");
    json_decref(v);
    /* ... and the customer's events, as an update after the ticket is;
     * also for a ticket about no order */
    put(s, EV("u2", "ticket.updated", "2026-03-04T12:00:00Z", "{\"id\":\"T8\",\"status\":\"solved\"}"), NULL);
    put(s, EV("u1", "ticket.created", "2026-03-03T12:00:00Z",
              "{\"id\":\"T8\",\"customer_id\":\"c-7\"}"),
        NULL);
    put(s, EV("t4", "ticket.updated", "2026-03-06T12:00:00Z", "{\"id\":\"T6\",\"status\":\"closed\"}"), NULL);
    cs_event_query_t q = {.limit = 100, .customer_id = "c-7", .type = "ticket.updated"};
    json_t *page = NULL;
    cs_err_t err;
    assert_int_equal(cs_store_events_query(s, &q, &page, &err), CS_OK);
    assert_int_equal(json_array_size(json_object_get(page, "events")), 4);
    json_decref(page);
    cs_store_close(&s);
}

/* A create and an update of the same instant (helpdesks send seconds): the
 * update comes after the create, whatever order they arrive in. */
/* ticket_created_seq: the first ticket.created logged of a ticket, kept
 * when it is sent again (or an older one arrives late); 0 before one came
 * (an update's stub) and for a ticket never heard of. */
static void test_ticket_first_creation(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    int64_t first, seq, again;
    put(s, EV("tu", "ticket.updated", "2026-03-01T09:00:00Z",
              "{\"id\":\"t-1\",\"status\":\"pending\"}"),
        NULL);
    assert_int_equal(cs_store_call(s, ticket_created_seq, "t-1", &first, &err), CS_OK);
    assert_int_equal(first, 0);
    put(s, EV("tc", "ticket.created", "2026-03-01T08:00:00Z",
              "{\"id\":\"t-1\",\"customer_id\":\"c-7\"}"),
        &seq);
    assert_int_equal(cs_store_call(s, ticket_created_seq, "t-1", &first, &err), CS_OK);
    assert_int_equal(first, seq);
    put(s, EV("tc-again", "ticket.created", "2026-03-01T08:00:00Z",
              "{\"id\":\"t-1\",\"customer_id\":\"c-7\"}"),
        &again);
    put(s, EV("tc-older", "ticket.created", "2026-03-01T07:00:00Z",
              "{\"id\":\"t-1\",\"customer_id\":\"c-7\"}"),
        NULL);
    assert_true(again > seq);
    assert_int_equal(cs_store_call(s, ticket_created_seq, "t-1", &first, &err), CS_OK);
    assert_int_equal(first, seq);
    assert_int_equal(cs_store_call(s, ticket_created_seq, "t-none", &first, &err), CS_OK);
    assert_int_equal(first, 0);
    cs_store_close(&s);
}

/* The events the log lists for customer `customer` or order `order` (of
 * type `type`, NULL = any), as the value at `field` of each, in log order
 * (a static buffer). */
static const char *listed(cs_store_t *s, const char *customer, const char *order,
                          const char *type, const char *field)
{
    static char buf[512];
    cs_event_query_t q = {.limit = 100, .customer_id = customer, .order_id = order, .type = type};
    json_t *page = NULL;
    cs_err_t err;
    assert_int_equal(cs_store_events_query(s, &q, &page, &err), CS_OK);
    buf[0] = '\0';
    json_t *evs = json_object_get(page, "events");
    for (size_t i = 0; i < json_array_size(evs); i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? " " : "",
                 str_at(json_array_get(evs, i), field));
    json_decref(page);
    return buf;
}

/* The customer's return events (of type `type`) the log lists under the
 * customer c-7, as their returns' ids, in log order. */
static const char *customer_returns(cs_store_t *s, const char *type)
{
    return listed(s, "c-7", NULL, type, "event.data.id");
}

/* Returns name no customer: their events are their order's customer's, so
 * the customer's events list them: a return of a known order, one that
 * came before its order (the customer is known when the order is placed),
 * an update that came before its request (known with the request). Before,
 * GET /v1/events?customer_id= left every return out. */
static void test_returns_are_the_customers(void **state)
{
    cs_store_t *s = open_store(state);
    put(s, order_ev("o1", "1001", "2026-03-01T10:00:00Z", "8.90"), NULL);
    put(s, EV("r1", "return.requested", "2026-03-05T12:00:00Z",
              "{\"id\":\"R1\",\"order_id\":\"1001\",\"resolution\":\"refund\",\"items\":[{\"sku\":\"KAF\","
              "\"quantity\":1}]}"),
        NULL);
    put(s, EV("r1u", "return.updated", "2026-03-06T12:00:00Z",
              "{\"id\":\"R1\",\"status\":\"approved\"}"),
        NULL);
    /* before its order */
    put(s, EV("r2", "return.requested", "2026-03-05T12:00:00Z",
              "{\"id\":\"R2\",\"order_id\":\"1002\",\"resolution\":\"refund\",\"items\":[{\"sku\":\"KAF\","
              "\"quantity\":1}]}"),
        NULL);
    assert_string_equal(customer_returns(s, "return.requested"), "R1");
    put(s, order_ev("o2", "1002", "2026-03-01T11:00:00Z", "8.90"), NULL);
    assert_string_equal(customer_returns(s, "return.requested"), "R1 R2");
    /* updated before requested */
    put(s, EV("r3u", "return.updated", "2026-03-07T12:00:00Z",
              "{\"id\":\"R3\",\"status\":\"received\"}"),
        NULL);
    put(s, EV("r3", "return.requested", "2026-03-06T12:00:00Z",
              "{\"id\":\"R3\",\"order_id\":\"1001\",\"resolution\":\"refund\",\"items\":[{\"sku\":\"KAF\","
              "\"quantity\":1}]}"),
        NULL);
    assert_string_equal(customer_returns(s, "return.requested"), "R1 R2 R3");
    assert_string_equal(customer_returns(s, "return.updated"), "R1 R3");
    cs_store_close(&s);
}

/* The event ids the log lists under customer `cust` (of type `type`, or
 * all), in log order. */
static const char *customer_events(cs_store_t *s, const char *cust, const char *type)
{
    return listed(s, cust, NULL, type, "event_id");
}

/* The scan event ids the log lists under order `order`, in log order. */
static const char *order_scans(cs_store_t *s, const char *order)
{
    return listed(s, NULL, order, "tracking.event", "event_id");
}

/* Every event that names an order or a parcel but no customer is its
 * order's customer's, as returns are: a cancellation, a parcel's
 * announcement and cancellation, a review naming only the order; those
 * that came before their order when it is placed. Before, the customer's
 * events left all of them out. Scans (by id or by number, one that waited
 * for its parcel, one of a parcel announced again for another order) are
 * not: the hot path logs them by their order alone. */
static void test_order_events_are_the_customers(void **state)
{
    cs_store_t *s = open_store(state);
    put(s, order_ev("o1", "1001", "2026-03-01T10:00:00Z", "8.90"), NULL);
    put(s, EV("s1", "shipment.created", "2026-03-02T10:00:00Z",
              "{\"id\":\"S1\",\"order_id\":\"1001\",\"carrier\":\"dhl\",\"tracking_number\":\"T1\"}"),
        NULL);
    put(s, EV("k1", "tracking.event", "2026-03-02T12:00:00Z",
              "{\"shipment_id\":\"S1\",\"carrier\":\"dhl\",\"tracking_number\":\"T1\","
              "\"status\":\"in_transit\"}"),
        NULL);
    put(s, EV("k2", "tracking.event", "2026-03-02T13:00:00Z",
              "{\"carrier\":\"dhl\",\"tracking_number\":\"T1\",\"status\":\"out_for_delivery\"}"),
        NULL);
    /* a scan before its parcel is announced */
    put(s, EV("k3", "tracking.event", "2026-03-02T14:00:00Z",
              "{\"carrier\":\"dhl\",\"tracking_number\":\"T2\",\"status\":\"in_transit\"}"),
        NULL);
    assert_string_equal(customer_events(s, "c-7", "tracking.event"), "");
    assert_string_equal(order_scans(s, "1001"), "k1 k2");
    put(s, EV("s2", "shipment.created", "2026-03-02T11:00:00Z",
              "{\"id\":\"S2\",\"order_id\":\"1001\",\"carrier\":\"dhl\",\"tracking_number\":\"T2\"}"),
        NULL);
    assert_string_equal(customer_events(s, "c-7", "tracking.event"), "");
    assert_string_equal(order_scans(s, "1001"), "k1 k2 k3");
    put(s, EV("x2", "shipment.cancelled", "2026-03-02T15:00:00Z",
              "{\"id\":\"S2\",\"order_id\":\"1001\"}"),
        NULL);
    put(s, EV("f1", "feedback.submitted", "2026-03-04T10:00:00Z",
              "{\"id\":\"F1\",\"kind\":\"csat\",\"score\":4,\"order_id\":\"1001\"}"),
        NULL);
    put(s, EV("c1", "order.cancelled", "2026-03-05T10:00:00Z",
              "{\"order_id\":\"1001\",\"reason\":\"customer_request\"}"),
        NULL);
    assert_string_equal(customer_events(s, "c-7", NULL), "o1 s1 s2 x2 f1 c1");

    /* before their order */
    put(s, EV("c2", "order.cancelled", "2026-03-06T10:00:00Z",
              "{\"order_id\":\"1002\",\"reason\":\"customer_request\"}"),
        NULL);
    put(s, EV("s3", "shipment.created", "2026-03-06T09:00:00Z",
              "{\"id\":\"S3\",\"order_id\":\"1002\",\"carrier\":\"dhl\",\"tracking_number\":\"T3\"}"),
        NULL);
    put(s, EV("k4", "tracking.event", "2026-03-06T09:30:00Z",
              "{\"shipment_id\":\"S3\",\"carrier\":\"dhl\",\"tracking_number\":\"T3\","
              "\"status\":\"in_transit\"}"),
        NULL);
    put(s, EV("x3", "shipment.cancelled", "2026-03-06T09:45:00Z",
              "{\"id\":\"S4\",\"order_id\":\"1002\"}"),
        NULL);
    assert_string_equal(customer_events(s, "c-7", NULL), "o1 s1 s2 x2 f1 c1");
    put(s, order_ev("o2", "1002", "2026-03-06T08:00:00Z", "8.90"), NULL);
    assert_string_equal(customer_events(s, "c-7", NULL),
                        "o1 s1 s2 x2 f1 c1 c2 s3 x3 o2");

    /* a parcel announced anew (newer) for another customer's order takes
     * its scans to that order */
    put(s, ev_of("{\"event_id\":\"o3\",\"type\":\"order.placed\",\"occurred_at\":"
                 "\"2026-03-06T07:00:00Z\",\"data\":{\"id\":\"2001\",\"customer_id\":\"c-8\","
                 "\"currency\":\"EUR\",\"items\":[{\"sku\":\"KAF\",\"name\":\"Kaffee\","
                 "\"unit_price\":\"8.90\",\"quantity\":1}]}}"),
        NULL);
    put(s, EV("s4", "shipment.created", "2026-03-06T12:00:00Z",
              "{\"id\":\"S3\",\"order_id\":\"2001\",\"carrier\":\"dhl\",\"tracking_number\":\"T3\"}"),
        NULL);
    assert_string_equal(customer_events(s, "c-8", NULL), "o3 s4");
    assert_string_equal(order_scans(s, "2001"), "k4");
    assert_string_equal(order_scans(s, "1001"), "k1 k2 k3");
    cs_store_close(&s);
}

/* The ids of the tickets order `id`'s view shows, and how many of its
 * timeline's events are tickets'. */
static const char *order_tickets(cs_store_t *s, const char *id)
{
    static char buf[128];
    json_t *v = order_view(s, id);
    json_t *ts = json_object_get(v, "tickets"), *tl = json_object_get(v, "timeline");
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < json_array_size(ts); i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? " " : "",
                 str_at(json_array_get(ts, i), "id"));
    for (size_t i = 0; i < json_array_size(tl); i++)
        n += strncmp(str_at(json_array_get(tl, i), "type"), "ticket.", 7) == 0;
    snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "|%zu", n);
    json_decref(v);
    return buf;
}

static cs_event_t *ticket_ev(const char *id, const char *ticket, const char *cust,
                             const char *order)
{
    return ev_of("{\"event_id\":\"%s\",\"type\":\"ticket.created\",\"occurred_at\":"
                 "\"2026-03-04T10:00:00Z\",\"data\":{\"id\":\"%s\",\"customer_id\":\"%s\","
                 "\"order_id\":\"%s\",\"subject\":\"Wo ist meine Bestellung?\"}}",
                 id, ticket, cust, order);
}

/* A ticket is its customer's: one naming an order known to be another
 * customer's is refused, naming data.order_id (nothing logged); one that
 * named an order not placed yet, which comes as another customer's, stays
 * its customer's without the order (not in the order's view or timeline,
 * no open ticket for the order's asks). One of the order's own customer
 * keeps it. Before, the ticket was linked to the other customer's order. */
static void test_ticket_of_another_customers_order(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    cs_ingest_outcome_t out;
    int64_t seq;
    put(s, order_ev("o1", "1001", "2026-03-01T10:00:00Z", "8.90"), NULL); /* c-7's */
    cs_event_t *ev = ticket_ev("t1", "T1", "c-8", "1001");
    assert_int_equal(cs_store_begin(s, &err), CS_OK);
    assert_int_equal(cs_store_ingest(s, ev, ev->occurred_at, &out, &seq, &err), CS_ERR_RULE);
    assert_string_equal(err.field, "data.order_id");
    assert_non_null(strstr(err.msg, "another customer"));
    cs_store_rollback(s);
    cs_event_free(&ev);
    assert_string_equal(order_tickets(s, "1001"), "|0");
    assert_string_equal(customer_events(s, "c-8", NULL), "");
    /* the order's own customer's is the order's */
    put(s, ticket_ev("t2", "T2", "c-7", "1001"), NULL);
    assert_string_equal(order_tickets(s, "1001"), "T2|1");

    /* before its order, which comes as another customer's */
    int64_t t3_seq = 0;
    put(s, ticket_ev("t3", "T3", "c-8", "1002"), &t3_seq);
    put(s, EV("t3u", "ticket.updated", "2026-03-04T11:00:00Z", "{\"id\":\"T3\",\"status\":\"pending\"}"),
        NULL);
    put(s, ticket_ev("t4", "T4", "c-7", "1002"), NULL);
    put(s, order_ev("o2", "1002", "2026-03-01T11:00:00Z", "8.90"), NULL); /* c-7's */
    assert_string_equal(order_tickets(s, "1002"), "T4|1");
    assert_string_equal(customer_events(s, "c-8", NULL), "t3 t3u");
    /* the helpdesk sending the creation again (same event id) gets the
     * duplicate it is, not a refusal of what was accepted */
    int64_t again = 0;
    assert_int_equal(put(s, ticket_ev("t3", "T3", "c-8", "1002"), &again), CS_INGEST_DUPLICATE);
    assert_int_equal(again, t3_seq);
    /* and a later update of it does not bring it back */
    put(s, EV("t3v", "ticket.updated", "2026-03-04T12:00:00Z", "{\"id\":\"T3\",\"status\":\"open\"}"),
        NULL);
    assert_string_equal(order_tickets(s, "1002"), "T4|1");
    assert_string_equal(customer_events(s, "c-8", NULL), "t3 t3u t3v");
    /* the other customer's open ticket holds none of the order's asks */
    put(s, ticket_ev("t5", "T5", "c-8", "2001"), NULL);
    put(s, ev_of("{\"event_id\":\"o3\",\"type\":\"order.placed\",\"occurred_at\":"
                 "\"2026-03-01T12:00:00Z\",\"data\":{\"id\":\"2001\",\"customer_id\":\"c-9\","
                 "\"currency\":\"EUR\",\"items\":[{\"sku\":\"KAF\",\"name\":\"Kaffee\","
                 "\"unit_price\":\"8.90\",\"quantity\":1}]}}"),
        NULL);
    cs_contact_stats_t st;
    assert_int_equal(cs_store_call(s, contact_stats, "c-9", "2001", 0, &st, &err), CS_OK);
    assert_false(st.ticket_open);
    assert_string_equal(order_tickets(s, "2001"), "|0");
    cs_store_close(&s);
}

/* The contact policy's "ticket open" reads when the open ticket updated
 * last got its status (its creation or latest update): one left open
 * without an update for ticket_stale_after holds nothing. A closed
 * ticket's later update, or another customer's ticket, is not counted. */
static void test_contact_stats_ticket_at(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    cs_contact_stats_t st;
    cs_ms_t t;
    put(s, order_ev("o1", "1001", "2026-03-01T10:00:00Z", "8.90"), NULL); /* c-7's */
    put(s, ticket_ev("t1", "T1", "c-7", "1001"), NULL); /* 03-04 10:00, never updated */
    put(s, EV("t2", "ticket.created", "2026-03-02T10:00:00Z",
              "{\"id\":\"T2\",\"customer_id\":\"c-7\"}"), NULL);
    put(s, EV("t2u", "ticket.updated", "2026-03-05T10:00:00Z",
              "{\"id\":\"T2\",\"status\":\"pending\"}"), NULL);
    put(s, EV("t3", "ticket.created", "2026-03-06T10:00:00Z",
              "{\"id\":\"T3\",\"customer_id\":\"c-7\"}"), NULL);
    put(s, EV("t3u", "ticket.updated", "2026-03-07T10:00:00Z",
              "{\"id\":\"T3\",\"status\":\"solved\"}"), NULL);
    put(s, EV("t4", "ticket.created", "2026-03-09T10:00:00Z",
              "{\"id\":\"T4\",\"customer_id\":\"c-8\"}"), NULL);
    assert_int_equal(cs_store_call(s, contact_stats, "c-7", "1001", 0, &st, &err), CS_OK);
    assert_true(st.ticket_open);
    assert_true(cs_time_parse("2026-03-05T10:00:00Z", &t));
    assert_int_equal(st.ticket_at, t);
    /* about the order alone (a run about it, asked for another customer) */
    assert_int_equal(cs_store_call(s, contact_stats, "c-0", "1001", 0, &st, &err), CS_OK);
    assert_true(st.ticket_open);
    assert_true(cs_time_parse("2026-03-04T10:00:00Z", &t));
    assert_int_equal(st.ticket_at, t);
    /* no order: the customer's */
    assert_int_equal(cs_store_call(s, contact_stats, "c-8", "", 0, &st, &err), CS_OK);
    assert_true(st.ticket_open);
    assert_true(cs_time_parse("2026-03-09T10:00:00Z", &t));
    assert_int_equal(st.ticket_at, t);
    /* ticket_open alone reads the same (order.ticket_open's) */
    bool open;
    cs_ms_t open_at;
    assert_int_equal(cs_store_call(s, ticket_open, "c-7", "1001", &open, &open_at, &err), CS_OK);
    assert_true(open);
    assert_true(cs_time_parse("2026-03-05T10:00:00Z", &t));
    assert_int_equal(open_at, t);
    assert_int_equal(cs_store_call(s, ticket_open, NULL, "1001", &open, &open_at, &err), CS_OK);
    assert_true(open);
    assert_true(cs_time_parse("2026-03-04T10:00:00Z", &t));
    assert_int_equal(open_at, t);
    /* none open */
    put(s, EV("t4u", "ticket.updated", "2026-03-10T10:00:00Z",
              "{\"id\":\"T4\",\"status\":\"closed\"}"), NULL);
    assert_int_equal(cs_store_call(s, contact_stats, "c-8", "", 0, &st, &err), CS_OK);
    assert_false(st.ticket_open);
    assert_int_equal(st.ticket_at, 0);
    assert_int_equal(cs_store_call(s, ticket_open, "c-8", NULL, &open, &open_at, &err), CS_OK);
    assert_false(open);
    assert_int_equal(open_at, 0);
    cs_store_close(&s);
}

/* Ingest ev (consumed), which the store's rules refuse naming
 * data.order_id with `msg` in the message; nothing is logged. */
static void refused_order(cs_store_t *s, cs_event_t *ev, const char *msg)
{
    cs_err_t err;
    cs_ingest_outcome_t out;
    int64_t seq;
    assert_int_equal(cs_store_begin(s, &err), CS_OK);
    assert_int_equal(cs_store_ingest(s, ev, ev->occurred_at, &out, &seq, &err), CS_ERR_RULE);
    assert_string_equal(err.field, "data.order_id");
    if (!strstr(err.msg, msg))
        fail_msg("expected \"%s\" in: %s", msg, err.msg);
    cs_store_rollback(s);
    cs_event_free(&ev);
}

/* A review, a survey answer or a signal that names its customer and an
 * order known to be another customer's is refused (422, naming
 * data.order_id), as a ticket is; one naming its own customer's order,
 * or only the order, is the order's. Before, customer c-8's review and
 * signal were linked to c-7's order and shown in its timeline. */
static void test_feedback_and_signal_of_another_customers_order(void **state)
{
    cs_store_t *s = open_store(state);
    put(s, order_ev("o1", "1001", "2026-03-01T10:00:00Z", "8.90"), NULL); /* c-7's */
    refused_order(s, EV("f1", "feedback.submitted", "2026-03-06T10:00:00Z",
                        "{\"id\":\"F1\",\"kind\":\"review\",\"score\":1,"
                        "\"customer_id\":\"c-8\",\"order_id\":\"1001\"}"),
                  "data.order_id: order \"1001\" is another customer's, not \"c-8\"'s; "
                  "expected an order of the feedback's customer or none");
    refused_order(s, EV("g1", "signal", "2026-03-06T10:00:00Z",
                        "{\"name\":\"vip\",\"customer_id\":\"c-8\",\"order_id\":\"1001\"}"),
                  "expected an order of the signal's customer or none");
    assert_string_equal(customer_events(s, "c-8", NULL), "");
    put(s, EV("f2", "feedback.submitted", "2026-03-06T11:00:00Z",
              "{\"id\":\"F2\",\"kind\":\"review\",\"score\":5,"
              "\"customer_id\":\"c-7\",\"order_id\":\"1001\"}"),
        NULL);
    put(s, EV("f3", "feedback.submitted", "2026-03-06T12:00:00Z",
              "{\"id\":\"F3\",\"kind\":\"nps\",\"score\":9,\"order_id\":\"1001\"}"),
        NULL);
    put(s, EV("g2", "signal", "2026-03-06T12:00:00Z",
              "{\"name\":\"vip\",\"customer_id\":\"c-7\",\"order_id\":\"1001\"}"),
        NULL);
    /* an order not placed yet: taken */
    put(s, EV("g3", "signal", "2026-03-06T12:00:00Z",
              "{\"name\":\"vip\",\"customer_id\":\"c-8\",\"order_id\":\"1002\"}"),
        NULL);
    assert_string_equal(listed(s, NULL, "1001", "feedback.submitted", "event_id"), "f2 f3");
    assert_string_equal(listed(s, NULL, "1001", "signal", "event_id"), "g2");
    assert_string_equal(customer_events(s, "c-8", NULL), "g3");
    json_t *v = order_view(s, "1001");
    assert_int_equal(json_array_size(json_object_get(v, "feedback")), 2);
    json_decref(v);
    cs_store_close(&s);
}

/* Feedback and signals that named an order not placed yet, which then
 * comes as another customer's, stay their customers' without the order,
 * as tickets do; one naming only the order, or its own customer, is the
 * order's. Before, c-8's review and signal stayed on c-7's order. */
static void test_feedback_and_signal_before_another_customers_order(void **state)
{
    cs_store_t *s = open_store(state);
    put(s, EV("f1", "feedback.submitted", "2026-03-06T10:00:00Z",
              "{\"id\":\"F1\",\"kind\":\"review\",\"score\":1,"
              "\"customer_id\":\"c-8\",\"order_id\":\"1002\"}"),
        NULL);
    put(s, EV("g1", "signal", "2026-03-06T10:00:00Z",
              "{\"name\":\"vip\",\"customer_id\":\"c-8\",\"order_id\":\"1002\"}"),
        NULL);
    put(s, EV("f2", "feedback.submitted", "2026-03-06T11:00:00Z",
              "{\"id\":\"F2\",\"kind\":\"review\",\"score\":5,"
              "\"customer_id\":\"c-7\",\"order_id\":\"1002\"}"),
        NULL);
    put(s, EV("f3", "feedback.submitted", "2026-03-06T12:00:00Z",
              "{\"id\":\"F3\",\"kind\":\"nps\",\"score\":9,\"order_id\":\"1002\"}"),
        NULL);
    put(s, EV("g2", "signal", "2026-03-06T12:00:00Z",
              "{\"name\":\"vip\",\"customer_id\":\"c-7\",\"order_id\":\"1002\"}"),
        NULL);
    put(s, order_ev("o2", "1002", "2026-03-01T11:00:00Z", "8.90"), NULL); /* c-7's */
    assert_string_equal(listed(s, NULL, "1002", "feedback.submitted", "event_id"), "f2 f3");
    assert_string_equal(listed(s, NULL, "1002", "signal", "event_id"), "g2");
    assert_string_equal(customer_events(s, "c-8", NULL), "f1 g1");
    assert_string_equal(customer_events(s, "c-7", "feedback.submitted"), "f2 f3");
    json_t *v = order_view(s, "1002");
    json_t *fb = json_object_get(v, "feedback");
    assert_int_equal(json_array_size(fb), 2);
    for (size_t i = 0; i < json_array_size(fb); i++)
        assert_string_not_equal(str_at(json_array_get(fb, i), "id"), "F1");
    json_decref(v);
    cs_store_close(&s);
}

/* A placed order of customer `cust` (event `id`, one line of `price`). */
static cs_event_t *order_of(const char *id, const char *order, const char *cust, const char *at,
                            const char *price)
{
    return ev_of("{\"event_id\":\"%s\",\"type\":\"order.placed\",\"occurred_at\":\"%s\",\"data\":"
                 "{\"id\":\"%s\",\"customer_id\":\"%s\",\"currency\":\"EUR\",\"items\":[{\"sku\":"
                 "\"KAF\",\"name\":\"Kaffee\",\"unit_price\":\"%s\",\"quantity\":1}]}}",
                 id, at, order, cust, price);
}

/* An edit (order.placed sent again, newer) that gives the order to another
 * customer takes along what is the order's, in the same transaction: the
 * events logged as the old customer's that name it (its placement, parcel,
 * return, ticket, review, signal), the old customer's tickets about it
 * (the new customer's now: their open one holds the new customer's asks,
 * and the new customer may name the order), and both customers' figures
 * (orders, spent, first and last order, orders before). An older edit
 * naming a third customer changes nothing. Before, the order's events and
 * tickets stayed the old customer's. */
static void test_order_given_to_another_customer(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    cs_contact_stats_t st;
    put(s, order_of("b1", "2001", "c-8", "2026-02-20T10:00:00Z", "5.00"), NULL);
    put(s, order_of("o1", "1001", "c-7", "2026-03-01T10:00:00Z", "8.90"), NULL);
    put(s, order_of("o2", "1002", "c-7", "2026-03-03T10:00:00Z", "20.00"), NULL);
    put(s, EV("s1", "shipment.created", "2026-03-02T10:00:00Z",
              "{\"id\":\"S1\",\"order_id\":\"1001\",\"carrier\":\"dhl\",\"tracking_number\":\"T1\"}"),
        NULL);
    put(s, EV("k1", "tracking.event", "2026-03-02T12:00:00Z",
              "{\"shipment_id\":\"S1\",\"carrier\":\"dhl\",\"tracking_number\":\"T1\","
              "\"status\":\"in_transit\"}"),
        NULL);
    put(s, ticket_ev("t1", "T1", "c-7", "1001"), NULL);
    put(s, EV("t1u", "ticket.updated", "2026-03-04T11:00:00Z",
              "{\"id\":\"T1\",\"status\":\"pending\"}"),
        NULL);
    put(s, EV("f1", "feedback.submitted", "2026-03-04T12:00:00Z",
              "{\"id\":\"F1\",\"kind\":\"csat\",\"score\":4,\"customer_id\":\"c-7\","
              "\"order_id\":\"1001\"}"),
        NULL);
    put(s, EV("f2", "feedback.submitted", "2026-03-04T13:00:00Z",
              "{\"id\":\"F2\",\"kind\":\"nps\",\"score\":9,\"order_id\":\"1001\"}"),
        NULL);
    put(s, EV("r1", "return.requested", "2026-03-05T12:00:00Z",
              "{\"id\":\"R1\",\"order_id\":\"1001\",\"resolution\":\"refund\",\"items\":[{\"sku\":"
              "\"KAF\",\"quantity\":1}]}"),
        NULL);
    put(s, EV("g1", "signal", "2026-03-05T13:00:00Z",
              "{\"name\":\"vip\",\"customer_id\":\"c-7\",\"order_id\":\"1001\"}"),
        NULL);
    put(s, EV("t2", "ticket.created", "2026-03-05T14:00:00Z",
              "{\"id\":\"T2\",\"customer_id\":\"c-7\"}"),
        NULL);
    put(s, EV("t2u", "ticket.updated", "2026-03-05T15:00:00Z",
              "{\"id\":\"T2\",\"status\":\"solved\"}"),
        NULL);
    assert_string_equal(customer_events(s, "c-7", NULL), "o1 o2 s1 t1 t1u f1 f2 r1 g1 t2 t2u");

    /* the shop corrects who bought 1001 */
    put(s, order_of("e1", "1001", "c-8", "2026-03-06T10:00:00Z", "8.90"), NULL);
    assert_string_equal(customer_events(s, "c-7", NULL), "o2 t2 t2u");
    assert_string_equal(customer_events(s, "c-8", NULL), "b1 o1 s1 t1 t1u f1 f2 r1 g1 e1");
    assert_string_equal(order_scans(s, "1001"), "k1");
    assert_string_equal(order_tickets(s, "1001"), "T1|2");
    assert_int_equal(cs_store_call(s, contact_stats, "c-8", "", 0, &st, &err), CS_OK);
    assert_true(st.ticket_open);
    assert_int_equal(cs_store_call(s, contact_stats, "c-7", "", 0, &st, &err), CS_OK);
    assert_false(st.ticket_open);
    /* the ticket's customer may name the order, the old one not */
    put(s, ticket_ev("t3", "T3", "c-8", "1001"), NULL);
    refused_order(s, ticket_ev("t4", "T4", "c-7", "1001"), "another customer's");
    assert_string_equal(order_tickets(s, "1001"), "T1 T3|3");

    /* both customers' figures */
    json_t *c = customer_view(s, "c-7");
    json_t *stats = json_object_get(c, "stats");
    assert_int_equal(json_integer_value(json_object_get(stats, "orders")), 1);
    assert_string_equal(str_at(stats, "total_spent.EUR"), "20.00");
    assert_string_equal(str_at(stats, "first_order_at"), "2026-03-03T10:00:00.000Z");
    assert_string_equal(str_at(c, "orders.0.id"), "1002");
    json_decref(c);
    c = customer_view(s, "c-8");
    stats = json_object_get(c, "stats");
    assert_int_equal(json_integer_value(json_object_get(stats, "orders")), 2);
    assert_string_equal(str_at(stats, "total_spent.EUR"), "13.90");
    assert_string_equal(str_at(stats, "last_order_at"), "2026-03-01T10:00:00.000Z");
    json_decref(c);
    json_t *cu, *o, *sh;
    assert_int_equal(cs_store_call(s, journey_context, "c-7", "1002", 0, CS_CTX_FULL, &cu, &o,
                                   &sh, &err),
                     CS_OK);
    assert_int_equal(json_integer_value(json_object_get(o, "orders_before")), 0);
    assert_int_equal(json_integer_value(json_object_get(cu, "orders_count")), 1);
    json_decref(cu);
    json_decref(o);
    json_decref(sh);
    assert_int_equal(cs_store_call(s, journey_context, "c-8", "1001", 0, CS_CTX_FULL, &cu, &o,
                                   &sh, &err),
                     CS_OK);
    assert_int_equal(json_integer_value(json_object_get(o, "orders_before")), 1);
    assert_string_equal(str_at(cu, "last_order_id"), "1001");
    json_decref(cu);
    json_decref(o);
    json_decref(sh);

    /* an older edit naming a third customer changes nothing */
    put(s, order_of("e0", "1001", "c-9", "2026-03-05T10:00:00Z", "8.90"), NULL);
    json_t *v = order_view(s, "1001");
    assert_string_equal(str_at(v, "customer_id"), "c-8");
    json_decref(v);
    assert_string_equal(customer_events(s, "c-8", NULL), "b1 o1 s1 t1 t1u f1 f2 r1 g1 e1 t3");
    assert_string_equal(customer_events(s, "c-9", NULL), "e0");
    cs_store_close(&s);
}

static void test_create_and_update_same_instant(void **state)
{
    cs_store_t *s = open_store(state);
    put(s, order_ev("o1", "1004", "2026-03-01T10:00:00Z", "5.00"), NULL);
    put(s, EV("t2", "ticket.updated", "2026-03-03T12:00:00Z", "{\"id\":\"T7\",\"status\":\"solved\"}"), NULL);
    put(s, EV("t1", "ticket.created", "2026-03-03T12:00:00Z",
              "{\"id\":\"T7\",\"customer_id\":\"c-7\",\"order_id\":\"1004\"}"),
        NULL);
    put(s, EV("r2", "return.updated", "2026-03-06T12:00:00Z", "{\"id\":\"R7\",\"status\":\"approved\"}"), NULL);
    put(s, EV("r1", "return.requested", "2026-03-06T12:00:00Z",
              "{\"id\":\"R7\",\"order_id\":\"1004\",\"resolution\":\"refund\",\"items\":[{\"sku\":\"KAF\",\"quantity\":1}]}"),
        NULL);
    json_t *v = order_view(s, "1004");
    assert_string_equal(str_at(v, "tickets.0.status"), "solved");
    assert_string_equal(str_at(v, "returns.0.status"), "approved");
    json_decref(v);
    /* the create sent again changes nothing either */
    put(s, EV("t1-again", "ticket.created", "2026-03-03T12:00:00Z",
              "{\"id\":\"T7\",\"customer_id\":\"c-7\",\"order_id\":\"1004\"}"),
        NULL);
    v = order_view(s, "1004");
    assert_string_equal(str_at(v, "tickets.0.status"), "solved");
    json_decref(v);
    cs_store_close(&s);
}

/* A return request or a ticket sent again (edited: another item, a
 * subject) keeps the newer version when the older one arrives late. */
static void test_older_create_sent_again(void **state)
{
    cs_store_t *s = open_store(state);
    put(s, order_ev("o1", "1005", "2026-03-01T10:00:00Z", "5.00"), NULL);
    put(s, order_ev("o2", "1006", "2026-03-01T10:00:00Z", "5.00"), NULL);
    put(s, EV("r-v2", "return.requested", "2026-03-06T13:00:00Z",
              "{\"id\":\"R8\",\"order_id\":\"1005\",\"resolution\":\"exchange\",\"items\":[{\"sku\":\"KAF\",\"quantity\":2}]}"),
        NULL);
    put(s, EV("r-v1", "return.requested", "2026-03-06T12:00:00Z",
              "{\"id\":\"R8\",\"order_id\":\"1005\",\"resolution\":\"refund\",\"items\":[{\"sku\":\"KAF\",\"quantity\":1}]}"),
        NULL);
    put(s, EV("t-v2", "ticket.created", "2026-03-03T13:00:00Z",
              "{\"id\":\"T9\",\"customer_id\":\"c-7\",\"order_id\":\"1006\",\"subject\":\"Falsche Farbe\"}"),
        NULL);
    put(s, EV("t-v1", "ticket.created", "2026-03-03T12:00:00Z",
              "{\"id\":\"T9\",\"customer_id\":\"c-7\",\"order_id\":\"1005\",\"subject\":\"Frage\"}"),
        NULL);
    json_t *v = order_view(s, "1005");
    assert_string_equal(str_at(v, "returns.0.resolution"), "exchange");
    json_t *ret = json_array_get(json_object_get(v, "returns"), 0);
    json_t *items = json_object_get(ret, "items");
    assert_int_equal(json_array_size(items), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 0), "quantity")), 2);
    assert_string_equal(str_at(v, "returns.0.requested_at"), "2026-03-06T13:00:00.000Z");
    assert_int_equal(json_array_size(json_object_get(v, "tickets")), 0);
    json_decref(v);
    v = order_view(s, "1006");
    assert_string_equal(str_at(v, "tickets.0.subject"), "Falsche Farbe");
    json_decref(v);
    cs_store_close(&s);
}

/* A return request or a ticket sent again later (a shop's retry under a
 * new event id, a fulfilment tool replaying its history) keeps the status
 * the return or ticket moved on to, and an update dated between the two
 * still applies. Before, the repeat set it back to requested / open. */
static void test_create_sent_again_keeps_status(void **state)
{
    cs_store_t *s = open_store(state);
    put(s, order_ev("o1", "1007", "2026-03-01T10:00:00Z", "5.00"), NULL);
    put(s, EV("r1", "return.requested", "2026-03-06T12:00:00Z",
              "{\"id\":\"R9\",\"order_id\":\"1007\",\"resolution\":\"refund\",\"items\":[{\"sku\":\"KAF\",\"quantity\":1}]}"),
        NULL);
    put(s, EV("r2", "return.updated", "2026-03-07T12:00:00Z", "{\"id\":\"R9\",\"status\":\"approved\"}"), NULL);
    put(s, EV("r1-again", "return.requested", "2026-03-08T12:00:00Z",
              "{\"id\":\"R9\",\"order_id\":\"1007\",\"resolution\":\"exchange\",\"items\":[{\"sku\":\"KAF\",\"quantity\":2}]}"),
        NULL);
    put(s, EV("t1", "ticket.created", "2026-03-03T12:00:00Z",
              "{\"id\":\"T10\",\"customer_id\":\"c-7\",\"order_id\":\"1007\",\"subject\":\"Frage\"}"),
        NULL);
    put(s, EV("t2", "ticket.updated", "2026-03-04T12:00:00Z", "{\"id\":\"T10\",\"status\":\"solved\"}"), NULL);
    put(s, EV("t1-again", "ticket.created", "2026-03-05T12:00:00Z",
              "{\"id\":\"T10\",\"customer_id\":\"c-7\",\"order_id\":\"1007\",\"subject\":\"Frage (2)\"}"),
        NULL);
    json_t *v = order_view(s, "1007");
    assert_string_equal(str_at(v, "returns.0.status"), "approved");
    /* what the request says is the newer request's */
    assert_string_equal(str_at(v, "returns.0.resolution"), "exchange");
    assert_string_equal(str_at(v, "tickets.0.status"), "solved");
    assert_string_equal(str_at(v, "tickets.0.subject"), "Frage (2)");
    json_decref(v);
    /* updates dated between the first and the repeat still count */
    put(s, EV("r3", "return.updated", "2026-03-07T18:00:00Z", "{\"id\":\"R9\",\"status\":\"label_created\"}"), NULL);
    put(s, EV("t3", "ticket.updated", "2026-03-04T18:00:00Z", "{\"id\":\"T10\",\"status\":\"closed\"}"), NULL);
    v = order_view(s, "1007");
    assert_string_equal(str_at(v, "returns.0.status"), "label_created");
    assert_string_equal(str_at(v, "tickets.0.status"), "closed");
    json_decref(v);
    cs_store_close(&s);
}

/* An order cancelled twice (two systems cancel it, a cancellation sent
 * again later) keeps its first cancellation's time and reason, whatever
 * order they arrive in; a reason only the later one gives fills in. */
static void test_cancelled_twice_keeps_first_reason(void **state)
{
    cs_store_t *s = open_store(state);
    put(s, order_ev("o1", "1008", "2026-03-01T10:00:00Z", "5.00"), NULL);
    put(s, EV("x1", "order.cancelled", "2026-03-02T10:00:00Z",
              "{\"order_id\":\"1008\",\"reason\":\"customer_request\"}"),
        NULL);
    put(s, EV("x2", "order.cancelled", "2026-03-03T10:00:00Z",
              "{\"order_id\":\"1008\",\"reason\":\"out_of_stock\"}"),
        NULL);
    json_t *v = order_view(s, "1008");
    assert_string_equal(str_at(v, "status"), "cancelled");
    assert_string_equal(str_at(v, "cancel_reason"), "customer_request");
    assert_string_equal(str_at(v, "cancelled_at"), "2026-03-02T10:00:00.000Z");
    json_decref(v);
    /* the later first, before the order is placed: the earlier's reason */
    put(s, EV("y2", "order.cancelled", "2026-03-03T10:00:00Z",
              "{\"order_id\":\"1009\",\"reason\":\"out_of_stock\"}"),
        NULL);
    put(s, EV("y1", "order.cancelled", "2026-03-02T10:00:00Z",
              "{\"order_id\":\"1009\",\"reason\":\"customer_request\"}"),
        NULL);
    put(s, order_ev("o2", "1009", "2026-03-01T10:00:00Z", "5.00"), NULL);
    v = order_view(s, "1009");
    assert_string_equal(str_at(v, "cancel_reason"), "customer_request");
    assert_string_equal(str_at(v, "cancelled_at"), "2026-03-02T10:00:00.000Z");
    json_decref(v);
    /* the first without a reason: the later one's fills in */
    put(s, order_ev("o3", "1010", "2026-03-01T10:00:00Z", "5.00"), NULL);
    put(s, EV("z1", "order.cancelled", "2026-03-02T10:00:00Z", "{\"order_id\":\"1010\"}"), NULL);
    put(s, EV("z2", "order.cancelled", "2026-03-03T10:00:00Z",
              "{\"order_id\":\"1010\",\"reason\":\"fraud\"}"),
        NULL);
    v = order_view(s, "1010");
    assert_string_equal(str_at(v, "cancel_reason"), "fraud");
    assert_string_equal(str_at(v, "cancelled_at"), "2026-03-02T10:00:00.000Z");
    json_decref(v);
    cs_store_close(&s);
}

static void test_customer_partial_and_ordered(void **state)
{
    cs_store_t *s = open_store(state);
    put(s, EV("c1", "customer.upserted", "2026-03-01T09:00:00Z",
              "{\"id\":\"c-1\",\"email\":\"old@example.de\",\"name\":\"Anna\",\"consents\":{\"email\":{\"marketing\":true}}}"),
        NULL);
    put(s, EV("c2", "customer.upserted", "2026-03-02T09:00:00Z",
              "{\"id\":\"c-1\",\"email\":\"new@example.de\"}"),
        NULL);
    /* older: ignored where it conflicts, fills what is unknown */
    put(s, EV("c0", "customer.upserted", "2026-02-01T09:00:00Z",
              "{\"id\":\"c-1\",\"email\":\"oldest@example.de\",\"locale\":\"de\",\"consents\":{\"email\":{\"marketing\":false}}}"),
        NULL);
    json_t *c = customer_view(s, "c-1");
    assert_string_equal(str_at(c, "email"), "new@example.de");
    assert_string_equal(str_at(c, "name"), "Anna"); /* partial update kept it */
    assert_string_equal(str_at(c, "locale"), "de");
    assert_true(json_is_true(json_object_get(json_object_get(json_object_get(c, "consents"), "email"), "marketing")));
    assert_string_equal(str_at(c, "first_seen_at"), "2026-02-01T09:00:00.000Z");
    json_decref(c);

    /* a customer known only from an order */
    put(s, order_ev("o1", "1001", "2026-03-01T10:00:00Z", "8.90"), NULL);
    c = customer_view(s, "c-7");
    assert_string_equal(str_at(c, "email"), "(null)");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "stats"), "orders")), 1);
    assert_string_equal(str_at(c, "first_seen_at"), "2026-03-01T10:00:00.000Z");
    json_decref(c);
    /* first seen: a later event keeps it, an earlier one moves it back */
    const char *seen[][3] = { { "m1", "2026-03-04T10:00:00Z", "2026-03-01T10:00:00.000Z" },
                              { "m0", "2026-02-20T10:00:00Z", "2026-02-20T10:00:00.000Z" } };
    for (int i = 0; i < 2; i++) {
        put(s, EV(seen[i][0], "message.status", seen[i][1],
                  "{\"message_id\":\"M\",\"status\":\"sent\",\"customer_id\":\"c-7\"}"),
            NULL);
        c = customer_view(s, "c-7");
        assert_string_equal(str_at(c, "first_seen_at"), seen[i][2]);
        json_decref(c);
    }
    json_t *v = NULL;
    assert_int_equal(cs_store_customer_view(s, "nobody", &v, NULL), CS_ERR_NOTFOUND);

    /* an order edit: newer replaces, older is ignored */
    put(s, order_ev("o1b", "1001", "2026-03-01T11:00:00Z", "9.90"), NULL);
    put(s, order_ev("o1a", "1001", "2026-03-01T10:30:00Z", "1.00"), NULL);
    v = order_view(s, "1001");
    assert_string_equal(str_at(v, "items.0.unit_price"), "9.90");
    /* an edit that does not say when the order was placed keeps when it
     * was (not the edit's own time); one that says it moves it */
    assert_string_equal(str_at(v, "placed_at"), "2026-03-01T10:00:00.000Z");
    json_decref(v);
    put(s, order_ev("o1c", "1001", "2026-03-02T16:00:00Z", "8.90"), NULL);
    v = order_view(s, "1001");
    assert_string_equal(str_at(v, "items.0.unit_price"), "8.90");
    assert_string_equal(str_at(v, "placed_at"), "2026-03-01T10:00:00.000Z");
    json_decref(v);
    put(s, EV("o1d", "order.placed", "2026-03-02T17:00:00Z",
              "{\"id\":\"1001\",\"customer_id\":\"c-7\",\"currency\":\"EUR\","
              "\"placed_at\":\"2026-03-01T09:00:00Z\",\"items\":[{\"sku\":\"KAF\","
              "\"name\":\"Kaffee\",\"unit_price\":\"8.90\",\"quantity\":1}],"
              "\"promised_delivery\":{\"latest\":\"2026-03-05\"}}"),
        NULL);
    v = order_view(s, "1001");
    assert_string_equal(str_at(v, "placed_at"), "2026-03-01T09:00:00.000Z");
    json_decref(v);
    /* and a promise without its earliest day counts from the placed day */
    put(s, EV("o1e", "order.placed", "2026-03-02T18:00:00Z",
              "{\"id\":\"1001\",\"customer_id\":\"c-7\",\"currency\":\"EUR\","
              "\"items\":[{\"sku\":\"KAF\",\"name\":\"Kaffee\",\"unit_price\":\"8.90\","
              "\"quantity\":1}],\"promised_delivery\":{\"latest\":\"2026-03-05\"}}"),
        NULL);
    v = order_view(s, "1001");
    assert_string_equal(str_at(v, "placed_at"), "2026-03-01T09:00:00.000Z");
    assert_string_equal(str_at(v, "promised_delivery.earliest"), "2026-03-01T09:00:00.000Z");
    json_decref(v);
    cs_store_close(&s);
}

/* Each of a customer's fields keeps the value of the newest update that
 * set it, whatever order the updates arrive in: an update older than the
 * customer's latest (which said something else) still wins the fields it
 * is the newest for. Before, one time for the whole customer kept such an
 * update's email, locale, consent and attributes out once any newer update
 * had come, and an older value stayed. */
static void test_customer_fields_newest_each(void **state)
{
    cs_store_t *s = open_store(state);
    static const char *const upd[3][2] = {
        { "2026-03-01T09:00:00Z",
          "\"email\":\"a@example.de\",\"name\":\"Anna\",\"locale\":\"de\",\"consents\":{\"email\":"
          "{\"transactional\":true,\"marketing\":true}},\"attributes\":{\"tier\":\"a\"}" },
        { "2026-03-03T09:00:00Z", "\"name\":\"Anna B.\"" },
        { "2026-03-02T09:00:00Z",
          "\"email\":\"c@example.de\",\"locale\":\"en\",\"consents\":{\"email\":"
          "{\"marketing\":false}},\"attributes\":{\"tier\":\"c\"}" },
    };
    static const int orders[6][3] = { { 0, 1, 2 }, { 0, 2, 1 }, { 1, 0, 2 },
                                      { 1, 2, 0 }, { 2, 0, 1 }, { 2, 1, 0 } };
    for (int k = 0; k < 6; k++) {
        for (int j = 0; j < 3; j++) {
            int u = orders[k][j];
            put(s, ev_of("{\"event_id\":\"cf-%d-%d\",\"type\":\"customer.upserted\","
                         "\"occurred_at\":\"%s\",\"data\":{\"id\":\"cf-%d\",%s}}",
                         k, u, upd[u][0], k, upd[u][1]),
                NULL);
        }
        char id[16];
        snprintf(id, sizeof id, "cf-%d", k);
        json_t *c = customer_view(s, id);
        json_t *mail = json_object_get(json_object_get(c, "consents"), "email");
        assert_string_equal(str_at(c, "email"), "c@example.de");
        assert_string_equal(str_at(c, "name"), "Anna B.");
        assert_string_equal(str_at(c, "locale"), "en");
        assert_true(json_is_true(json_object_get(mail, "transactional")));
        assert_true(json_is_false(json_object_get(mail, "marketing")));
        assert_string_equal(str_at(c, "attributes.tier"), "c");
        assert_string_equal(str_at(c, "updated_at"), "2026-03-03T09:00:00.000Z");
        json_decref(c);
    }
    /* the customer an order carries, likewise */
    put(s, EV("cf-o", "order.placed", "2026-03-02T12:00:00Z",
              "{\"id\":\"cf-o\",\"customer_id\":\"cf-0\",\"currency\":\"EUR\",\"items\":[{\"sku\":"
              "\"KAF\",\"name\":\"Kaffee\",\"unit_price\":\"1.00\",\"quantity\":1}],\"customer\":"
              "{\"id\":\"cf-0\",\"email\":\"o@example.de\",\"name\":\"Anna O.\"}}"),
        NULL);
    json_t *c = customer_view(s, "cf-0");
    assert_string_equal(str_at(c, "email"), "o@example.de");
    assert_string_equal(str_at(c, "name"), "Anna B.");
    json_decref(c);
    cs_store_close(&s);
}

/* A field sent as null is not sent (docs/events.md), attributes too: the
 * customer keeps the attributes it had, in a customer.upserted and in the
 * customer an order carries. Before, "attributes": null failed the ingest
 * ("out of memory serializing data.attributes", a 500), and with it the
 * order that carried it. */
static void test_customer_attributes_null(void **state)
{
    cs_store_t *s = open_store(state);
    put(s, EV("an-1", "customer.upserted", "2026-03-01T09:00:00Z",
              "{\"id\":\"an\",\"name\":\"Anna\",\"attributes\":{\"tier\":\"gold\"}}"),
        NULL);
    assert_int_equal(put(s, EV("an-2", "customer.upserted", "2026-03-02T09:00:00Z",
                               "{\"id\":\"an\",\"name\":\"Anna B.\",\"attributes\":null}"),
                         NULL),
                     CS_INGEST_NEW);
    json_t *c = customer_view(s, "an");
    assert_string_equal(str_at(c, "name"), "Anna B.");
    assert_string_equal(str_at(c, "attributes.tier"), "gold");
    json_decref(c);
    assert_int_equal(put(s, EV("an-o", "order.placed", "2026-03-03T09:00:00Z",
                               "{\"id\":\"an-o\",\"customer_id\":\"an\",\"currency\":\"EUR\","
                               "\"items\":[{\"sku\":\"KAF\",\"name\":\"Kaffee\",\"unit_price\":"
                               "\"1.00\",\"quantity\":1}],\"customer\":{\"id\":\"an\",\"name\":"
                               "\"Anna C.\",\"attributes\":null}}"),
                         NULL),
                     CS_INGEST_NEW);
    c = customer_view(s, "an");
    assert_string_equal(str_at(c, "name"), "Anna C.");
    assert_string_equal(str_at(c, "attributes.tier"), "gold");
    json_decref(c);
    /* a customer first seen with null attributes has none */
    put(s, EV("an-3", "customer.upserted", "2026-03-01T09:00:00Z",
              "{\"id\":\"an-new\",\"attributes\":null}"),
        NULL);
    c = customer_view(s, "an-new");
    assert_true(json_is_null(json_object_get(c, "attributes")));
    json_decref(c);
    json_t *o = order_view(s, "an-o");
    assert_string_equal(str_at(o, "customer_id"), "an");
    json_decref(o);
    cs_store_close(&s);
}

/* The customers of a phone number (WhatsApp's user_preferences name the
 * number): each whose phone it is now, in id order, page by page; not one
 * whose phone was it and changed, nor one of another number. */
static void test_customers_by_phone(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    static const char *const mine[] = { "p-b", "p-a", "p-c" };
    for (size_t i = 0; i < CS_ARRAY_LEN(mine); i++) {
        char eid[32];
        snprintf(eid, sizeof eid, "p-%zu", i);
        put(s, ev_of("{\"event_id\":\"%s\",\"type\":\"customer.upserted\","
                     "\"occurred_at\":\"2026-03-01T09:00:00Z\",\"data\":{\"id\":\"%s\","
                     "\"phone\":\"+4915100000001\"}}", eid, mine[i]),
            NULL);
    }
    put(s, EV("p-o", "customer.upserted", "2026-03-01T09:00:00Z",
              "{\"id\":\"p-other\",\"phone\":\"+4915100000002\"}"),
        NULL);
    put(s, EV("p-m1", "customer.upserted", "2026-03-01T09:00:00Z",
              "{\"id\":\"p-moved\",\"phone\":\"+4915100000001\"}"),
        NULL);
    put(s, EV("p-m2", "customer.upserted", "2026-03-02T09:00:00Z",
              "{\"id\":\"p-moved\",\"phone\":\"+4915100000003\"}"),
        NULL);
    char ids[2][CS_ID_MAX + 1];
    size_t n = 9;
    assert_int_equal(cs_store_call(s, customers_by_phone, "+4915100000001", "", ids, 2, &n, &err),
                     CS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], "p-a");
    assert_string_equal(ids[1], "p-b");
    assert_int_equal(cs_store_call(s, customers_by_phone, "+4915100000001", ids[1], ids, 2, &n,
                                   &err),
                     CS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "p-c");
    assert_int_equal(cs_store_call(s, customers_by_phone, "+4915100000009", "", ids, 2, &n, &err),
                     CS_OK);
    assert_int_equal(n, 0);
    cs_store_close(&s);
}

static void test_rollback_discards(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    cs_ingest_outcome_t out;
    int64_t seq;
    cs_event_t *ev = order_ev("o1", "1001", "2026-03-01T10:00:00Z", "8.90");
    assert_int_equal(cs_store_begin(s, &err), CS_OK);
    assert_int_equal(cs_store_ingest(s, ev, 1, &out, &seq, &err), CS_OK);
    cs_store_rollback(s);
    cs_event_free(&ev);
    cs_store_counts_t n;
    assert_int_equal(cs_store_counts(s, &n, NULL), CS_OK);
    assert_int_equal(n.events, 0);
    assert_int_equal(n.orders, 0);
    /* the same event can come again and is new, and its customer is
     * recorded (nothing of the rolled-back transaction is remembered) */
    assert_int_equal(put(s, order_ev("o1", "1001", "2026-03-01T10:00:00Z", "8.90"), NULL), CS_INGEST_NEW);
    json_t *c = customer_view(s, "c-7");
    assert_string_equal(str_at(c, "first_seen_at"), "2026-03-01T10:00:00.000Z");
    json_decref(c);
    cs_store_close(&s);
}

static void test_events_query(void **state)
{
    cs_store_t *s = open_store(state);
    char id[32];
    for (int i = 0; i < 25; i++) {
        snprintf(id, sizeof id, "m%02d", i);
        put(s, ev_of("{\"event_id\":\"%s\",\"type\":\"message.status\",\"occurred_at\":\"2026-03-01T10:00:00Z\","
                     "\"data\":{\"message_id\":\"M%d\",\"status\":\"sent\",\"customer_id\":\"c-%d\"}}",
                     id, i, i % 2),
            NULL);
    }
    put(s, order_ev("o1", "1001", "2026-03-01T10:00:00Z", "8.90"), NULL);
    cs_event_query_t q = {.limit = 10};
    json_t *page = NULL;
    cs_err_t err;
    int64_t total = 0, last = 0;
    /* page through everything */
    for (;;) {
        assert_int_equal(cs_store_events_query(s, &q, &page, &err), CS_OK);
        json_t *evs = json_object_get(page, "events");
        total += (int64_t)json_array_size(evs);
        if (json_array_size(evs)) {
            int64_t first = json_integer_value(json_object_get(json_array_get(evs, 0), "seq"));
            assert_true(first > last);
            last = json_integer_value(json_object_get(json_array_get(evs, json_array_size(evs) - 1), "seq"));
        }
        json_t *next = json_object_get(page, "next_after_seq");
        if (json_is_null(next)) {
            json_decref(page);
            break;
        }
        q.after_seq = json_integer_value(next);
        json_decref(page);
    }
    assert_int_equal(total, 26);

    cs_event_query_t f = {.limit = 100, .type = "order.placed"};
    assert_int_equal(cs_store_events_query(s, &f, &page, &err), CS_OK);
    assert_int_equal(json_array_size(json_object_get(page, "events")), 1);
    assert_string_equal(str_at(page, "events.0.event.data.id"), "1001");
    json_decref(page);

    cs_event_query_t g = {.limit = 100, .customer_id = "c-1"};
    assert_int_equal(cs_store_events_query(s, &g, &page, &err), CS_OK);
    assert_int_equal(json_array_size(json_object_get(page, "events")), 12);
    json_decref(page);

    cs_event_query_t h = {.limit = 3, .newest_first = true};
    assert_int_equal(cs_store_events_query(s, &h, &page, &err), CS_OK);
    assert_string_equal(str_at(page, "events.0.type"), "order.placed");
    json_decref(page);

    cs_event_query_t bad = {.limit = 0};
    assert_int_equal(cs_store_events_query(s, &bad, &page, &err), CS_ERR_INVALID);
    cs_event_query_t badtype = {.limit = 5, .type = "nope"};
    assert_int_equal(cs_store_events_query(s, &badtype, &page, &err), CS_ERR_INVALID);
    assert_string_equal(err.field, "type");
    cs_store_close(&s);
}

static void test_api_keys(void **state)
{
    cs_store_t *s = open_store(state);
    char secret[CS_APIKEY_SECRET_MAX];
    cs_apikey_t k, found;
    cs_err_t err;
    assert_int_equal(cs_apikey_create(s, "shop", CS_SCOPE_WRITE | CS_SCOPE_READ, 1000, secret, &k, &err), CS_OK);
    assert_int_equal(cs_apikey_verify(s, secret, &found, &err), CS_OK);
    assert_int_equal(found.scopes, CS_SCOPE_WRITE | CS_SCOPE_READ);
    assert_int_equal(cs_apikey_verify(s, "cs_live_000", &found, &err), CS_ERR_AUTH);
    json_t *list = NULL;
    assert_int_equal(s->ops->apikey_list(s, &list, &err), CS_OK);
    assert_string_equal(str_at(list, "keys.0.id"), k.id);
    assert_string_equal(str_at(list, "keys.0.scopes"), "read,write");
    char *dump = json_dumps(list, 0);
    assert_null(strstr(dump, k.hash_hex)); /* never the hash */
    assert_null(strstr(dump, secret));
    free(dump);
    json_decref(list);
    assert_int_equal(s->ops->apikey_revoke(s, k.id, 2000, &err), CS_OK);
    assert_int_equal(cs_apikey_verify(s, secret, &found, &err), CS_ERR_AUTH);
    assert_int_equal(s->ops->apikey_revoke(s, k.id, 3000, &err), CS_ERR_NOTFOUND);
    cs_store_close(&s);
}

static void test_readers_see_commits(void **state)
{
    if (is_memory)
        skip();
    cs_store_t *w = open_store(state);
    cs_store_t *r = NULL;
    cs_err_t err;
    cs_store_opts_t o;
    cs_store_opts_default(&o);
    o.read_only = true;
    assert_int_equal(cs_store_open(*state, &o, &r, &err), CS_OK);
    put(w, order_ev("o1", "1001", "2026-03-01T10:00:00Z", "8.90"), NULL);
    json_t *v = order_view(r, "1001");
    json_decref(v);
    /* a reader cannot write */
    assert_int_not_equal(cs_store_begin(r, &err), CS_OK);
    cs_store_close(&r);
    cs_store_close(&w);
}

/* A store several nodes share: a node hears of another node's committed
 * work (a hint), not of its own. */
static void test_wakeups(void **state)
{
    cs_store_t *a = NULL, *b = NULL, *probe = open_store(state);
    bool shared = probe->ops->wakeup_wait != NULL;
    cs_store_close(&probe);
    if (!shared)
        skip();
    cs_err_t err;
    cs_store_opts_t o;
    cs_store_opts_default(&o);
    o.node = "node-a";
    assert_int_equal(cs_store_open(*state, &o, &a, &err), CS_OK);
    o.node = "node-b";
    assert_int_equal(cs_store_open(*state, &o, &b, &err), CS_OK);
    bool woken = true;
    assert_int_equal(b->ops->wakeup_wait(b, 0, &woken, &err), CS_OK); /* listening now */
    assert_false(woken);
    put(a, order_ev("w1", "2001", "2026-03-01T10:00:00Z", "8.90"), NULL);
    for (int i = 0; i < 20 && !woken; i++)
        assert_int_equal(b->ops->wakeup_wait(b, 200, &woken, &err), CS_OK);
    assert_true(woken);
    /* its own commit does not wake a node */
    put(b, order_ev("w2", "2002", "2026-03-01T10:00:00Z", "8.90"), NULL);
    woken = false;
    assert_int_equal(b->ops->wakeup_wait(b, 300, &woken, &err), CS_OK);
    assert_false(woken);
    cs_store_close(&a);
    cs_store_close(&b);
}

static void test_bad_targets(void **state)
{
    (void)state;
    cs_store_t *s = NULL;
    cs_err_t err;
    assert_int_equal(cs_store_open("mysql://x", NULL, &s, &err), CS_ERR_CONFIG);
    assert_string_equal(err.field, "store");
    assert_int_equal(cs_store_open("sqlite:", NULL, &s, &err), CS_ERR_CONFIG);
    assert_int_not_equal(cs_store_open("sqlite:/nonexistent-dir/x/y.db", NULL, &s, &err), CS_OK);
    assert_null(s);
}
/* ---- journey state ---- */

#define T0 1772400000000LL /* 2026-03-01T21:20:00Z */

static void in_tx(cs_store_t *s)
{
    cs_err_t err;
    assert_int_equal(cs_store_begin(s, &err), CS_OK);
}

static void done_tx(cs_store_t *s)
{
    cs_err_t err;
    assert_int_equal(cs_store_commit(s, &err), CS_OK);
}

static void test_journey_versions_and_switches(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    int v1, v2, v1again, sw;
    in_tx(s);
    assert_int_equal(cs_store_call(s, journey_version, "nps", "h1", "src one", T0, &v1, &err),
                     CS_OK);
    assert_int_equal(cs_store_call(s, journey_version, "nps", "h2", "src two", T0, &v2, &err),
                     CS_OK);
    assert_int_equal(cs_store_call(s, journey_version, "nps", "h1", "src one", T0, &v1again,
                                   &err),
                     CS_OK);
    done_tx(s);
    assert_int_equal(v1, 1);
    assert_int_equal(v2, 2);
    assert_int_equal(v1again, 1);
    char *src;
    assert_int_equal(cs_store_call(s, journey_source, "nps", 2, &src, &err), CS_OK);
    assert_string_equal(src, "src two");
    cs_free(src);
    assert_int_equal(cs_store_call(s, journey_enabled_get, "nps", &sw, &err), CS_OK);
    assert_int_equal(sw, -1);
    in_tx(s);
    assert_int_equal(cs_store_call(s, journey_enabled_set, "nps", false, T0, &err), CS_OK);
    done_tx(s);
    assert_int_equal(cs_store_call(s, journey_enabled_get, "nps", &sw, &err), CS_OK);
    assert_int_equal(sw, 0);
    cs_store_close(&s);
}

/* The runs an event about an order concerns: that order's and, of its
 * customer's other runs, all (customer_all: an order placed ends the
 * others as ordered_again) or those about no order, each run once by id.
 * Before, every event of a customer read all of the customer's runs, and
 * each row was checked against all before it: a "guest" customer with
 * 12,000 runs under way stalled the writer for minutes per batch. */
static void test_runs_active_of_an_order(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    static const char *const orders[] = { "1001", "1002", "", "1001" };
    static const char *const custs[] = { "c-7", "c-7", "c-7", "c-7" };
    static const char *const keys[] = { "o:1001", "o:1002", "c:c-7", "o:1001:b" };
    int64_t ids[4];
    in_tx(s);
    for (int i = 0; i < 4; i++) {
        cs_run_t r;
        memset(&r, 0, sizeof r);
        cs_strlcpy(r.journey, i == 3 ? "nps" : "review", sizeof r.journey);
        r.version = 1;
        cs_strlcpy(r.run_key, keys[i], sizeof r.run_key);
        cs_strlcpy(r.customer_id, custs[i], sizeof r.customer_id);
        cs_strlcpy(r.order_id, orders[i], sizeof r.order_id);
        r.status = CS_RUN_ACTIVE;
        r.started_at = r.updated_at = T0;
        bool existed;
        assert_int_equal(cs_store_call(s, run_insert, &r, &existed, &err), CS_OK);
        ids[i] = r.id;
    }
    done_tx(s);
    cs_run_t *act;
    size_t n;
    /* an order's event: its runs and the customer's about no order */
    assert_int_equal(cs_store_call(s, runs_active, "1001", "c-7", false, &act, &n, &err), CS_OK);
    assert_int_equal(n, 3);
    assert_int_equal(act[0].id, ids[0]);
    assert_int_equal(act[1].id, ids[2]);
    assert_int_equal(act[2].id, ids[3]);
    cs_free(act);
    /* all of the customer's, each once, by id */
    assert_int_equal(cs_store_call(s, runs_active, "1001", "c-7", true, &act, &n, &err), CS_OK);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(act[i].id, ids[i]);
    cs_free(act);
    assert_int_equal(cs_store_call(s, runs_active, NULL, "c-7", false, &act, &n, &err), CS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(act[0].id, ids[2]);
    cs_free(act);
    cs_store_close(&s);
}

/* Of the customer's runs about other orders, runs_active_in reads the
 * active ones of the journeys named (those an order placed may end, as a
 * win-back), with the order's runs and the customer's about no order;
 * not the runs that ended, nor another customer's. */
static void test_runs_active_in_journeys(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    static const struct {
        const char *journey, *key, *cust, *order;
        int status;
    } rows[] = {
        { "review", "o:1001", "c-7", "1001", CS_RUN_ACTIVE },
        { "review", "o:1002", "c-7", "1002", CS_RUN_ACTIVE },
        { "win_back", "o:1002", "c-7", "1002", CS_RUN_ACTIVE },
        { "signup", "c:c-7", "c-7", "", CS_RUN_ACTIVE },
        { "win_back", "o:1003", "c-7", "1003", CS_RUN_EXITED },
        { "win_back", "o:2001", "c-8", "2001", CS_RUN_ACTIVE },
    };
    int64_t ids[6];
    in_tx(s);
    for (int i = 0; i < 6; i++) {
        cs_run_t r;
        memset(&r, 0, sizeof r);
        cs_strlcpy(r.journey, rows[i].journey, sizeof r.journey);
        r.version = 1;
        cs_strlcpy(r.run_key, rows[i].key, sizeof r.run_key);
        cs_strlcpy(r.customer_id, rows[i].cust, sizeof r.customer_id);
        cs_strlcpy(r.order_id, rows[i].order, sizeof r.order_id);
        r.status = rows[i].status;
        r.started_at = r.updated_at = T0;
        bool existed;
        assert_int_equal(cs_store_call(s, run_insert, &r, &existed, &err), CS_OK);
        ids[i] = r.id;
    }
    done_tx(s);
    const char *const wb[] = { "win_back", "nps" };
    cs_run_t *act;
    size_t n;
    assert_int_equal(cs_store_call(s, runs_active_in, "1001", "c-7", wb, 2, &act, &n, &err), CS_OK);
    assert_int_equal(n, 3);
    assert_int_equal(act[0].id, ids[0]);
    assert_int_equal(act[1].id, ids[2]);
    assert_string_equal(act[1].journey, "win_back");
    assert_string_equal(act[1].order_id, "1002");
    assert_int_equal(act[2].id, ids[3]);
    cs_free(act);
    /* the order's own run of a journey named is listed once */
    assert_int_equal(cs_store_call(s, runs_active_in, "1002", "c-7", wb, 2, &act, &n, &err), CS_OK);
    assert_int_equal(n, 3);
    assert_int_equal(act[0].id, ids[1]);
    assert_int_equal(act[1].id, ids[2]);
    assert_int_equal(act[2].id, ids[3]);
    cs_free(act);
    /* no journey named: as runs_active without customer_all */
    assert_int_equal(cs_store_call(s, runs_active_in, "1001", "c-7", NULL, 0, &act, &n, &err), CS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(act[0].id, ids[0]);
    assert_int_equal(act[1].id, ids[3]);
    cs_free(act);
    /* an event about no order */
    assert_int_equal(cs_store_call(s, runs_active_in, NULL, "c-7", wb, 1, &act, &n, &err), CS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(act[0].id, ids[2]);
    assert_int_equal(act[1].id, ids[3]);
    cs_free(act);
    cs_store_close(&s);
}

/* A run by its journey and key, whatever its status: the journeys ask
 * whose run an order's key is when an edit gave the order to another
 * customer. */
static void test_run_find_by_key(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    cs_run_t r;
    memset(&r, 0, sizeof r);
    cs_strlcpy(r.journey, "confirm", sizeof r.journey);
    r.version = 2;
    cs_strlcpy(r.run_key, "o:1001", sizeof r.run_key);
    cs_strlcpy(r.customer_id, "c-7", sizeof r.customer_id);
    cs_strlcpy(r.order_id, "1001", sizeof r.order_id);
    r.status = CS_RUN_EXITED;
    cs_strlcpy(r.exit_reason, "order_given_to_another_customer", sizeof r.exit_reason);
    r.started_at = r.updated_at = T0;
    bool existed;
    in_tx(s);
    assert_int_equal(cs_store_call(s, run_insert, &r, &existed, &err), CS_OK);
    done_tx(s);
    cs_run_t got;
    assert_int_equal(cs_store_call(s, run_find, "confirm", "o:1001", &got, &err), CS_OK);
    assert_int_equal(got.id, r.id);
    assert_string_equal(got.customer_id, "c-7");
    assert_int_equal(got.status, CS_RUN_EXITED);
    assert_int_equal(cs_store_call(s, run_find, "review", "o:1001", &got, &err), CS_ERR_NOTFOUND);
    assert_int_equal(cs_store_call(s, run_find, "confirm", "o:1002", &got, &err), CS_ERR_NOTFOUND);
    cs_store_close(&s);
}

static void test_runs_and_timers(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    cs_run_t r;
    memset(&r, 0, sizeof r);
    cs_strlcpy(r.journey, "review", sizeof r.journey);
    r.version = 1;
    cs_strlcpy(r.run_key, "o:1001", sizeof r.run_key);
    cs_strlcpy(r.customer_id, "c-7", sizeof r.customer_id);
    cs_strlcpy(r.order_id, "1001", sizeof r.order_id);
    r.status = CS_RUN_ACTIVE;
    r.started_at = r.updated_at = T0;
    bool existed;
    in_tx(s);
    assert_int_equal(cs_store_call(s, run_insert, &r, &existed, &err), CS_OK);
    assert_false(existed);
    cs_run_t dup = r;
    assert_int_equal(cs_store_call(s, run_insert, &dup, &existed, &err), CS_OK);
    assert_true(existed);
    r.pc = 2;
    r.gen = 3;
    r.wait_event = CS_EV_TRACKING_EVENT;
    assert_int_equal(cs_store_call(s, run_update, &r, &err), CS_OK);
    cs_timer_t t1 = { 0, T0 + 5000, r.id, 3 }, t2 = { 0, T0 + 1000, r.id, 2 },
               t3 = { 0, T0 + 9000, r.id, 3 };
    assert_int_equal(cs_store_call(s, timer_add, &t1, NULL, &err), CS_OK);
    assert_int_equal(cs_store_call(s, timer_add, &t2, NULL, &err), CS_OK);
    assert_int_equal(cs_store_call(s, timer_add, &t3, NULL, &err), CS_OK);
    done_tx(s);

    cs_run_t got;
    assert_int_equal(cs_store_call(s, run_get, r.id, &got, &err), CS_OK);
    assert_int_equal(got.pc, 2);
    assert_int_equal(got.gen, 3);
    assert_int_equal(got.wait_event, CS_EV_TRACKING_EVENT);
    assert_int_equal(cs_store_call(s, run_get, r.id + 100, &got, &err), CS_ERR_NOTFOUND);
    cs_run_t *act;
    size_t n;
    assert_int_equal(cs_store_call(s, runs_active, "1001", NULL, true, &act, &n, &err), CS_OK);
    assert_int_equal(n, 1);
    cs_free(act);
    assert_int_equal(cs_store_call(s, runs_active, NULL, "c-7", true, &act, &n, &err), CS_OK);
    assert_int_equal(n, 1);
    cs_free(act);

    cs_ms_t next;
    int64_t count;
    assert_int_equal(cs_store_call(s, timer_next, &next, &err), CS_OK);
    assert_int_equal(next, T0 + 1000);
    /* due before T0+6000: the two earliest, by due time */
    cs_timer_t due[8];
    assert_int_equal(cs_store_call(s, timers_due, T0 + 6000, due, 8, &n, &err), CS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(due[0].due_at, T0 + 1000);
    assert_int_equal(due[1].due_at, T0 + 5000);
    in_tx(s);
    assert_int_equal(cs_store_call(s, timers_delete_due, T0 + 6000, 2, &err), CS_OK);
    done_tx(s);
    assert_int_equal(cs_store_call(s, timer_count, &count, &err), CS_OK);
    assert_int_equal(count, 1);
    /* a run that ends leaves the active lists */
    r.status = CS_RUN_DONE;
    in_tx(s);
    assert_int_equal(cs_store_call(s, run_update, &r, &err), CS_OK);
    done_tx(s);
    assert_int_equal(cs_store_call(s, runs_active, "1001", "c-7", true, &act, &n, &err), CS_OK);
    assert_int_equal(n, 0);
    cs_free(act);
    json_t *view;
    assert_int_equal(cs_store_call(s, runs_view, "c-7", &view, &err), CS_OK);
    assert_int_equal(json_array_size(view), 1);
    json_decref(view);
    cs_store_close(&s);
}

static cs_outmsg_t msg(const char *key, const char *cust, cs_ms_t next_at)
{
    cs_outmsg_t m;
    memset(&m, 0, sizeof m);
    cs_strlcpy(m.idem_key, key, sizeof m.idem_key);
    cs_strlcpy(m.journey, "confirm", sizeof m.journey);
    cs_strlcpy(m.customer_id, cust, sizeof m.customer_id);
    cs_strlcpy(m.template_name, "order_confirmation", sizeof m.template_name);
    cs_strlcpy(m.recipient, "kim@example.de", sizeof m.recipient);
    m.channel = CS_CHANNEL_EMAIL;
    m.cls = 4;
    m.status = CS_OUT_QUEUED;
    m.created_at = T0;
    m.next_at = next_at;
    return m;
}

/* What the contact policy counts (docs/journeys.md, policy 5 and 6): a
 * reassurance, ask or marketing message queued, being sent or sent within
 * the window, once whatever its channel; one skipped or failed for good,
 * a transactional one, or one older than the window, does not count, and
 * a skipped ask neither starts the cool-down nor uses the order's ask. */
static void test_contact_stats_count(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    bool existed;
    static const struct {
        const char *key, *order;
        int cls, status;
        cs_ms_t at;
    } rows[] = {
        { "tips:1", "o-1", 2, CS_OUT_QUEUED, T0 },
        { "review:1", "o-1", 1, CS_OUT_SENT, T0 + 1000 },
        { "promo:1", "o-1", 0, CS_OUT_SENDING, T0 + 1500 },
        { "promo:2", "o-1", 0, CS_OUT_FAILED, T0 + 2000 },
        { "promo:3", "o-1", 0, CS_OUT_SKIPPED, T0 + 3000 },
        { "confirm:1", "o-1", 4, CS_OUT_SENT, T0 + 4000 },
        { "review:2", "o-2", 1, CS_OUT_SKIPPED, T0 + 5000 },
        { "tips:0", "o-0", 2, CS_OUT_SENT, T0 - 8 * 86400000LL },
    };
    in_tx(s);
    for (size_t i = 0; i < CS_ARRAY_LEN(rows); i++) {
        cs_outmsg_t m = msg(rows[i].key, "c-9", rows[i].at);
        cs_strlcpy(m.order_id, rows[i].order, sizeof m.order_id);
        m.cls = rows[i].cls;
        m.status = rows[i].status;
        m.created_at = rows[i].at;
        if (i == 2)
            m.channel = CS_CHANNEL_SMS;
        assert_int_equal(cs_store_call(s, outbox_put, &m, &existed, &err), CS_OK);
    }
    done_tx(s);
    cs_contact_stats_t st;
    assert_int_equal(cs_store_call(s, contact_stats, "c-9", "o-1", T0 - 7 * 86400000LL, &st,
                                   &err),
                     CS_OK);
    assert_int_equal(st.budget_used, 3);
    assert_int_equal(st.last_ask_at, T0 + 1000);
    assert_true(st.order_asked);
    assert_false(st.ticket_open);
    assert_int_equal(cs_store_call(s, contact_stats, "c-9", "o-2", T0 - 7 * 86400000LL, &st,
                                   &err),
                     CS_OK);
    assert_false(st.order_asked);
    /* the window starts at its first instant: a message then still counts */
    assert_int_equal(cs_store_call(s, contact_stats, "c-9", "o-2", T0 - 8 * 86400000LL, &st,
                                   &err),
                     CS_OK);
    assert_int_equal(st.budget_used, 4);
    cs_store_close(&s);
}

static void test_outbox(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    bool existed;
    cs_outmsg_t a = msg("confirm:o:1:0", "c-7", T0), b = msg("confirm:o:2:0", "c-7", T0 + 60000),
                again = msg("confirm:o:1:0", "c-7", T0);
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_put, &a, &existed, &err), CS_OK);
    assert_false(existed);
    assert_int_equal(cs_store_call(s, outbox_put, &b, &existed, &err), CS_OK);
    assert_int_equal(cs_store_call(s, outbox_put, &again, &existed, &err), CS_OK);
    assert_true(existed); /* the idempotency key keeps the first */
    assert_int_equal(again.id, a.id);
    done_tx(s);
    cs_ms_t next;
    assert_int_equal(cs_store_call(s, outbox_next, &next, &err), CS_OK);
    assert_int_equal(next, T0);

    /* only what is due is claimed; a claim leases it */
    cs_outmsg_t got[4];
    size_t n;
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_claim, T0, T0 + 300000, got, 4, &n, &err), CS_OK);
    done_tx(s);
    assert_int_equal(n, 1);
    assert_int_equal(got[0].id, a.id);
    assert_int_equal(got[0].status, CS_OUT_SENDING);
    assert_int_equal(got[0].attempts, 1);
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_claim, T0 + 1000, T0 + 301000, got, 4, &n, &err),
                     CS_OK);
    done_tx(s);
    assert_int_equal(n, 0); /* leased */
    /* an expired lease is claimed again (its sender died) */
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_claim, T0 + 300001, T0 + 600000, got, 4, &n, &err),
                     CS_OK);
    done_tx(s);
    assert_int_equal(n, 2);
    assert_int_equal(got[0].id, a.id);
    assert_int_equal(got[0].attempts, 2);
    /* a claim is no hand-over: the lost one left none recorded */
    assert_int_equal(got[0].handed_at, 0);
    /* sent to the address the customer has now (not the one it was queued
     * with): that is kept; a result naming none keeps the message's */
    cs_out_result_t res = { .id = a.id, .status = CS_OUT_SENT, .sent_at = T0 + 300002,
                            .provider_ref = "abc@shop.example",
                            .recipient = "kim.neu@example.de" };
    cs_out_result_t retry = { .id = b.id, .at = T0 + 300003, .status = CS_OUT_QUEUED,
                              .next_at = T0 + 900000, .reason = "retry 1: 451",
                              .handed = true };
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_result, &res, &err), CS_OK);
    assert_int_equal(cs_store_call(s, outbox_result, &retry, &err), CS_OK);
    done_tx(s);
    cs_outmsg_t m;
    assert_int_equal(cs_store_call(s, outbox_by_ref, "abc@shop.example", &m, &err), CS_OK);
    assert_int_equal(m.id, a.id);
    assert_int_equal(m.status, CS_OUT_SENT);
    assert_string_equal(m.recipient, "kim.neu@example.de");
    assert_int_equal(cs_store_call(s, outbox_by_ref, "nope", &m, &err), CS_ERR_NOTFOUND);
    assert_int_equal(cs_store_call(s, outbox_get, b.id, &m, &err), CS_OK);
    assert_int_equal(m.status, CS_OUT_QUEUED);
    assert_int_equal(m.next_at, T0 + 900000);
    assert_string_equal(m.recipient, "kim@example.de");
    assert_int_equal(m.handed_at, T0 + 300003); /* the hand-over's outcome recorded */
    /* at start-up, messages in hand go back to the queue */
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_claim, T0 + 900000, T0 + 999999, got, 4, &n, &err),
                     CS_OK);
    int64_t released;
    assert_int_equal(cs_store_call(s, outbox_release, T0 + 900001, &released, &err), CS_OK);
    done_tx(s);
    assert_int_equal(released, 1);
    assert_int_equal(cs_store_call(s, outbox_get, b.id, &m, &err), CS_OK);
    assert_int_equal(m.status, CS_OUT_QUEUED);
    /* a claim not handed over (quiet hours) gives its attempt back */
    int attempts = m.attempts;
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_claim, T0 + 900002, T0 + 999999, got, 4, &n, &err),
                     CS_OK);
    assert_int_equal(n, 1);
    cs_out_result_t wait = { .id = b.id, .status = CS_OUT_QUEUED, .next_at = T0 + 2000000,
                             .reason = "quiet_hours", .untried = true };
    assert_int_equal(cs_store_call(s, outbox_result, &wait, &err), CS_OK);
    done_tx(s);
    assert_int_equal(cs_store_call(s, outbox_get, b.id, &m, &err), CS_OK);
    assert_int_equal(m.status, CS_OUT_QUEUED);
    assert_int_equal(m.attempts, attempts);
    assert_int_equal(m.next_at, T0 + 2000000);
    assert_int_equal(m.handed_at, T0 + 300003); /* kept: the retry still goes where it went */
    /* a claim left alone goes back only while its lease is still the one
     * taken: another claim since is not undone */
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_claim, T0 + 2000000, T0 + 2300000, got, 4, &n, &err),
                     CS_OK);
    assert_int_equal(n, 1);
    cs_out_result_t stale = { .id = b.id, .status = CS_OUT_QUEUED, .next_at = T0 + 2000001,
                              .untried = true, .lease_until = T0 + 2200000 };
    assert_int_equal(cs_store_call(s, outbox_result, &stale, &err), CS_OK);
    done_tx(s);
    assert_int_equal(cs_store_call(s, outbox_get, b.id, &m, &err), CS_OK);
    assert_int_equal(m.status, CS_OUT_SENDING);
    assert_int_equal(m.attempts, attempts + 1);
    cs_out_result_t left = { .id = b.id, .status = CS_OUT_QUEUED, .next_at = T0 + 2000001,
                             .reason = "quiet_hours", .untried = true,
                             .lease_until = T0 + 2300000 };
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_result, &left, &err), CS_OK);
    done_tx(s);
    assert_int_equal(cs_store_call(s, outbox_get, b.id, &m, &err), CS_OK);
    assert_int_equal(m.status, CS_OUT_QUEUED);
    assert_int_equal(m.attempts, attempts);
    assert_int_equal(m.next_at, T0 + 2000001);
    /* one skipped without a hand-over (its order given to another
     * customer) gives its attempt back too */
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_claim, T0 + 2000001, T0 + 2300001, got, 4, &n, &err),
                     CS_OK);
    assert_int_equal(n, 1);
    cs_out_result_t skip = { .id = b.id, .status = CS_OUT_SKIPPED,
                             .reason = "order_given_to_another_customer", .untried = true };
    assert_int_equal(cs_store_call(s, outbox_result, &skip, &err), CS_OK);
    done_tx(s);
    assert_int_equal(cs_store_call(s, outbox_get, b.id, &m, &err), CS_OK);
    assert_int_equal(m.status, CS_OUT_SKIPPED);
    assert_string_equal(m.reason, "order_given_to_another_customer");
    assert_int_equal(m.attempts, attempts);
    json_t *view;
    assert_int_equal(cs_store_call(s, outbox_view, "c-7", &view, &err), CS_OK);
    assert_int_equal(json_array_size(view), 2);
    json_decref(view);
    cs_store_close(&s);
}

/* Put m, claim it at its next_at and record `status` for it with `reason`
 * at `at` (a failure's time; 0: none given). */
static void put_outcome(cs_store_t *s, cs_outmsg_t *m, int status, const char *reason,
                        cs_ms_t at)
{
    cs_err_t err;
    bool existed;
    cs_outmsg_t got[8];
    size_t n;
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_put, m, &existed, &err), CS_OK);
    assert_int_equal(cs_store_call(s, outbox_claim, m->next_at, m->next_at + 300000, got, 8, &n,
                                   &err),
                     CS_OK);
    assert_int_equal(n, 1);
    cs_out_result_t r = { .id = m->id, .status = status, .reason = reason, .at = at,
                          .sent_at = status == CS_OUT_SENT ? at : 0,
                          .handed = status != CS_OUT_SKIPPED };
    assert_int_equal(cs_store_call(s, outbox_result, &r, &err), CS_OK);
    done_tx(s);
}

static int64_t requeue(cs_store_t *s, const cs_out_filter_t *f, cs_ms_t now, bool dry,
                       int64_t *ids, size_t max, size_t *n_ids)
{
    cs_err_t err;
    int64_t n = -1;
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_requeue, f, now, dry, ids, max, n_ids, &n, &err),
                     CS_OK);
    done_tx(s);
    return n;
}

/* An operator's retry after an outage: the FAILED messages that failed in
 * the window and match the filter go back to the queue in their rows
 * (idempotency key, recipient kept), due at once, with no attempts and
 * the reason noting the requeue; a dry run counts them; messages the
 * policy skipped, sent ones, ones being sent and ones that failed outside
 * the window stay as they are, and a second requeue finds nothing. */
static void test_outbox_requeue(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    const cs_ms_t T1 = T0 + 3600000; /* the outage began */
    cs_outmsg_t a = msg("ship:o:1:0", "c-r1", T1), b = msg("ship:o:2:0", "c-r2", T1 + 1),
                c = msg("news:c:1:0", "c-r1", T1 + 2), d = msg("ship:o:3:0", "c-r1", T1 + 3),
                e = msg("ship:o:4:0", "c-r1", T1 + 4), old = msg("ship:o:5:0", "c-r1", T0),
                hook = msg("crm:o:1:0", "c-r1", T1 + 5), held = msg("ship:o:6:0", "c-r1",
                                                                     T1 + 6);
    cs_strlcpy(a.journey, "ship", sizeof a.journey);
    cs_strlcpy(b.journey, "ship", sizeof b.journey);
    b.channel = CS_CHANNEL_SMS;
    cs_strlcpy(b.recipient, "+4915112345678", sizeof b.recipient);
    cs_strlcpy(c.journey, "news", sizeof c.journey);
    cs_strlcpy(d.journey, "ship", sizeof d.journey);
    cs_strlcpy(e.journey, "ship", sizeof e.journey);
    cs_strlcpy(old.journey, "ship", sizeof old.journey);
    cs_strlcpy(hook.journey, "crm", sizeof hook.journey);
    hook.channel = CS_OUT_WEBHOOK;
    hook.created_at = T1 + 5; /* failed with no time given: its created_at */
    cs_strlcpy(held.journey, "ship", sizeof held.journey);
    put_outcome(s, &a, CS_OUT_FAILED, "gave up: 421 4.3.2 try later", T1 + 1000);
    put_outcome(s, &b, CS_OUT_FAILED, "gave up: http 503", T1 + 2000);
    put_outcome(s, &c, CS_OUT_FAILED, "550 5.1.1 no such user", T1 + 3000);
    put_outcome(s, &d, CS_OUT_SKIPPED, "unsubscribed_before_send", T1 + 4000);
    put_outcome(s, &e, CS_OUT_SENT, NULL, T1 + 5000);
    put_outcome(s, &old, CS_OUT_FAILED, "gave up: 421", T0 + 1000);
    put_outcome(s, &hook, CS_OUT_FAILED, "gave up: http 502", 0);
    bool existed;
    cs_outmsg_t got[4];
    size_t n, n_ids;
    in_tx(s); /* one in a sender's hands */
    assert_int_equal(cs_store_call(s, outbox_put, &held, &existed, &err), CS_OK);
    assert_int_equal(cs_store_call(s, outbox_claim, T1 + 6, T1 + 86400000, got, 4, &n, &err),
                     CS_OK);
    done_tx(s);
    assert_int_equal(n, 1);

    const cs_ms_t now = T1 + 7200000;
    int64_t ids[8];
    cs_out_filter_t all = { .failed_since = T1, .channel = -1 };
    /* a dry run counts, and changes nothing */
    assert_int_equal(requeue(s, &all, now, true, ids, 8, &n_ids), 4);
    assert_int_equal(n_ids, 4);
    assert_int_equal(ids[0], a.id);
    assert_int_equal(ids[1], b.id);
    assert_int_equal(ids[2], c.id);
    assert_int_equal(ids[3], hook.id);
    cs_outmsg_t m;
    assert_int_equal(cs_store_call(s, outbox_get, a.id, &m, &err), CS_OK);
    assert_int_equal(m.status, CS_OUT_FAILED);
    /* the lowest ids, at most max */
    assert_int_equal(requeue(s, &all, now, true, ids, 2, &n_ids), 4);
    assert_int_equal(n_ids, 2);
    assert_int_equal(ids[0], a.id);
    assert_int_equal(ids[1], b.id);
    /* each filter narrows */
    cs_out_filter_t f = { .failed_since = T1, .failed_until = T1 + 3000, .channel = -1 };
    assert_int_equal(requeue(s, &f, now, true, ids, 8, &n_ids), 3); /* until: before it (c) */
    f = (cs_out_filter_t){ .failed_since = T1, .channel = CS_CHANNEL_SMS };
    assert_int_equal(requeue(s, &f, now, true, ids, 8, &n_ids), 1);
    assert_int_equal(ids[0], b.id);
    f = (cs_out_filter_t){ .failed_since = T1, .channel = CS_OUT_WEBHOOK };
    assert_int_equal(requeue(s, &f, now, true, ids, 8, &n_ids), 1);
    assert_int_equal(ids[0], hook.id);
    f = (cs_out_filter_t){ .failed_since = T1, .channel = -1, .journey = "news" };
    assert_int_equal(requeue(s, &f, now, true, ids, 8, &n_ids), 1);
    assert_int_equal(ids[0], c.id);
    f = (cs_out_filter_t){ .failed_since = T1, .channel = -1, .customer_id = "c-r2" };
    assert_int_equal(requeue(s, &f, now, true, ids, 8, &n_ids), 1);
    assert_int_equal(ids[0], b.id);
    f = (cs_out_filter_t){ .failed_since = T0, .channel = -1, .reason_prefix = "gave up" };
    assert_int_equal(requeue(s, &f, now, true, ids, 8, &n_ids), 4); /* old one too */
    f = (cs_out_filter_t){ .failed_since = T0, .channel = -1, .reason_prefix = "gave up: 4" };
    assert_int_equal(requeue(s, &f, now, true, ids, 8, &n_ids), 2);
    assert_int_equal(ids[0], a.id);
    assert_int_equal(ids[1], old.id);

    /* the requeue: the journey's gave-up messages of the outage */
    f = (cs_out_filter_t){ .failed_since = T1, .channel = -1, .journey = "ship",
                           .reason_prefix = "gave up" };
    assert_int_equal(requeue(s, &f, now, false, ids, 8, &n_ids), 2);
    assert_int_equal(cs_store_call(s, outbox_get, a.id, &m, &err), CS_OK);
    assert_int_equal(m.status, CS_OUT_QUEUED);
    assert_int_equal(m.attempts, 0);
    assert_int_equal(m.next_at, now);
    assert_int_equal(m.lease_until, 0);
    assert_string_equal(m.idem_key, "ship:o:1:0");
    assert_string_equal(m.reason, "requeued: gave up: 421 4.3.2 try later");
    assert_int_equal(m.handed_at, 0); /* a first hand-over again */
    assert_int_equal(m.requeued_at, now); /* holds count from here */
    assert_int_equal(cs_store_call(s, outbox_get, b.id, &m, &err), CS_OK);
    assert_int_equal(m.status, CS_OUT_QUEUED);
    assert_string_equal(m.recipient, "+4915112345678");
    /* taken once: a second requeue finds them no more */
    assert_int_equal(requeue(s, &f, now, false, ids, 8, &n_ids), 0);
    assert_int_equal(n_ids, 0);
    /* the rest stay as they were */
    assert_int_equal(cs_store_call(s, outbox_get, c.id, &m, &err), CS_OK);
    assert_int_equal(m.status, CS_OUT_FAILED);
    assert_int_equal(m.handed_at, T1 + 3000);
    assert_int_equal(cs_store_call(s, outbox_get, d.id, &m, &err), CS_OK);
    assert_int_equal(m.status, CS_OUT_SKIPPED);
    assert_string_equal(m.reason, "unsubscribed_before_send");
    assert_int_equal(cs_store_call(s, outbox_get, e.id, &m, &err), CS_OK);
    assert_int_equal(m.status, CS_OUT_SENT);
    assert_int_equal(cs_store_call(s, outbox_get, old.id, &m, &err), CS_OK);
    assert_int_equal(m.status, CS_OUT_FAILED);
    assert_int_equal(cs_store_call(s, outbox_get, held.id, &m, &err), CS_OK);
    assert_int_equal(m.status, CS_OUT_SENDING);
    /* requeued, they are the sender's again: claimed now, a first attempt */
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_claim, now, now + 300000, got, 4, &n, &err), CS_OK);
    done_tx(s);
    assert_int_equal(n, 2);
    assert_int_equal(got[0].id, a.id);
    assert_int_equal(got[0].attempts, 1);
    assert_int_equal(got[1].id, b.id);
    /* failing again, it is found by its new failure's time */
    cs_out_result_t again = { .id = a.id, .status = CS_OUT_FAILED, .reason = "gave up: 421",
                              .at = now + 1000 };
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_result, &again, &err), CS_OK);
    done_tx(s);
    f = (cs_out_filter_t){ .failed_since = now, .channel = -1 };
    assert_int_equal(requeue(s, &f, now, true, ids, 8, &n_ids), 1);
    assert_int_equal(ids[0], a.id);
    cs_store_close(&s);
}

/* A message keeps the channels its send listed after its own (fallback),
 * and the sender's move puts it back in the queue on the next one, to its
 * address there, with the rest left and its attempt given back: the row,
 * and so its idempotency key, stay the same. A move under a lease that is
 * no longer the message's changes nothing. */
static void test_outbox_move(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    bool existed;
    cs_outmsg_t a = msg("ship:o:1:2", "c-8", T0), plain = msg("ship:o:2:2", "c-8", T0 + 60000);
    a.channel = CS_CHANNEL_WHATSAPP;
    cs_strlcpy(a.recipient, "+4915112345678", sizeof a.recipient);
    cs_strlcpy(a.fallback, "sms,email", sizeof a.fallback);
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_put, &a, &existed, &err), CS_OK);
    assert_int_equal(cs_store_call(s, outbox_put, &plain, &existed, &err), CS_OK);
    done_tx(s);
    cs_outmsg_t got[4], m;
    size_t n;
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_claim, T0, T0 + 300000, got, 4, &n, &err), CS_OK);
    done_tx(s);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].fallback, "sms,email");
    assert_int_equal(got[0].attempts, 1);
    /* a stale lease: nothing moves */
    cs_out_result_t stale = { .id = a.id, .next_at = T0 + 1, .reason = "x", .move = true,
                              .channel = CS_CHANNEL_EMAIL, .recipient = "kim@example.de",
                              .lease_until = T0 + 1 };
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_result, &stale, &err), CS_OK);
    done_tx(s);
    assert_int_equal(cs_store_call(s, outbox_get, a.id, &m, &err), CS_OK);
    assert_int_equal(m.status, CS_OUT_SENDING);
    assert_int_equal(m.channel, CS_CHANNEL_WHATSAPP);
    cs_out_result_t mv = { .id = a.id, .next_at = T0 + 2, .reason = "moved", .move = true,
                           .channel = CS_CHANNEL_SMS, .recipient = "+4915112345678",
                           .fallback = "email", .lease_until = T0 + 300000 };
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_result, &mv, &err), CS_OK);
    done_tx(s);
    assert_int_equal(cs_store_call(s, outbox_get, a.id, &m, &err), CS_OK);
    assert_int_equal(m.status, CS_OUT_QUEUED);
    assert_int_equal(m.channel, CS_CHANNEL_SMS);
    assert_string_equal(m.fallback, "email");
    assert_string_equal(m.idem_key, "ship:o:1:2");
    assert_string_equal(m.reason, "moved");
    assert_int_equal(m.attempts, 0);
    assert_int_equal(m.next_at, T0 + 2);
    json_t *queued;
    assert_int_equal(cs_store_call(s, outbox_view, "c-8", &queued, &err), CS_OK);
    json_t *vq = json_array_get(queued, 1);
    assert_non_null(json_object_get(vq, "moved_from"));
    assert_non_null(json_object_get(vq, "fallback"));
    assert_string_equal(json_string_value(json_object_get(vq, "moved_from")), "whatsapp");
    assert_string_equal(json_string_value(json_array_get(json_object_get(vq, "fallback"), 0)),
                        "email");
    assert_int_equal(json_array_size(json_object_get(vq, "fallback")), 1);
    json_decref(queued);
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_claim, T0 + 2, T0 + 300000, got, 4, &n, &err),
                     CS_OK);
    done_tx(s);
    assert_int_equal(n, 1);
    assert_int_equal(got[0].id, a.id);
    cs_out_result_t last = { .id = a.id, .next_at = T0 + 3, .move = true,
                             .channel = CS_CHANNEL_EMAIL, .recipient = "kim@example.de" };
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_result, &last, &err), CS_OK);
    done_tx(s);
    assert_int_equal(cs_store_call(s, outbox_get, a.id, &m, &err), CS_OK);
    assert_int_equal(m.channel, CS_CHANNEL_EMAIL);
    assert_string_equal(m.recipient, "kim@example.de");
    assert_string_equal(m.fallback, "");
    assert_string_equal(m.reason, "");
    assert_int_equal(m.attempts, 0);
    /* a message whose send listed one channel has none */
    assert_int_equal(cs_store_call(s, outbox_get, plain.id, &m, &err), CS_OK);
    assert_string_equal(m.fallback, "");
    /* sent on email: its reason is cleared, the trace of its moves is
     * kept; a message never moved has none */
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_claim, T0 + 3, T0 + 300000, got, 4, &n, &err),
                     CS_OK);
    done_tx(s);
    assert_int_equal(n, 1);
    cs_out_result_t sent = { .id = a.id, .status = CS_OUT_SENT, .sent_at = T0 + 3 };
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_result, &sent, &err), CS_OK);
    done_tx(s);
    json_t *view;
    assert_int_equal(cs_store_call(s, outbox_view, "c-8", &view, &err), CS_OK);
    assert_int_equal(json_array_size(view), 2);
    json_t *va = json_array_get(view, 1), *vp = json_array_get(view, 0);
    assert_int_equal(json_integer_value(json_object_get(va, "id")), a.id);
    assert_string_equal(json_string_value(json_object_get(va, "status")), "sent");
    assert_string_equal(json_string_value(json_object_get(va, "channel")), "email");
    assert_true(json_is_null(json_object_get(va, "reason")));
    assert_string_equal(json_string_value(json_object_get(va, "moved_from")), "whatsapp");
    json_t *moves = json_object_get(va, "moves");
    assert_int_equal(json_array_size(moves), 1);
    assert_string_equal(json_string_value(json_array_get(moves, 0)), "moved");
    assert_null(json_object_get(va, "fallback"));
    assert_null(json_object_get(vp, "moved_from"));
    assert_null(json_object_get(vp, "moves"));
    json_decref(view);
    cs_store_close(&s);
}

/* The delivery of message `id` of c-7's outbox ("-" when none). */
static const char *delivery_of(cs_store_t *s, int64_t id)
{
    static char buf[32];
    json_t *view;
    cs_err_t err;
    assert_int_equal(cs_store_call(s, outbox_view, "c-7", &view, &err), CS_OK);
    cs_strlcpy(buf, "?", sizeof buf);
    for (size_t i = 0; i < json_array_size(view); i++) {
        json_t *m = json_array_get(view, i);
        if (json_integer_value(json_object_get(m, "id")) != id)
            continue;
        const char *d = json_string_value(json_object_get(m, "delivery"));
        cs_strlcpy(buf, d ? d : "-", sizeof buf);
    }
    json_decref(view);
    return buf;
}

/* A message.status naming one of our messages (its outbox id) sets that
 * message's delivery only when the customer and channel it names, if it
 * names them, are the message's: a shop's status for a message of its
 * own whose id is a number, or one of another customer or channel, does
 * not mark ours bounced. Before, any number matched. */
static void test_message_status_of_another_message(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    bool existed;
    cs_outmsg_t a = msg("confirm:o:1:0", "c-7", T0);
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_put, &a, &existed, &err), CS_OK);
    done_tx(s);
    put(s, ev_of("{\"event_id\":\"ms-other-cust\",\"type\":\"message.status\",\"occurred_at\":"
                 "\"2026-03-01T10:00:00Z\",\"data\":{\"message_id\":\"%lld\",\"status\":"
                 "\"bounced\",\"channel\":\"email\",\"customer_id\":\"c-9\"}}",
                 (long long)a.id),
        NULL);
    assert_string_equal(delivery_of(s, a.id), "-");
    put(s, ev_of("{\"event_id\":\"ms-other-channel\",\"type\":\"message.status\",\"occurred_at\":"
                 "\"2026-03-01T10:00:00Z\",\"data\":{\"message_id\":\"%lld\",\"status\":"
                 "\"bounced\",\"channel\":\"sms\",\"customer_id\":\"c-7\"}}",
                 (long long)a.id),
        NULL);
    assert_string_equal(delivery_of(s, a.id), "-");
    put(s, ev_of("{\"event_id\":\"ms-ours\",\"type\":\"message.status\",\"occurred_at\":"
                 "\"2026-03-01T10:01:00Z\",\"data\":{\"message_id\":\"%lld\",\"status\":"
                 "\"delivered\",\"channel\":\"email\",\"customer_id\":\"c-7\"}}",
                 (long long)a.id),
        NULL);
    assert_string_equal(delivery_of(s, a.id), "delivered");
    /* only the number as we write it names ours: "007", "+7" and " 7" are
     * some other system's ids (before, they were read as 7) */
    const char *const before[] = { "00", "+", " " };
    for (size_t i = 0; i < CS_ARRAY_LEN(before); i++) {
        char id[32], evid[32];
        snprintf(id, sizeof id, "%s%lld", before[i], (long long)a.id);
        snprintf(evid, sizeof evid, "ms-form-%zu", i);
        put(s, ev_of("{\"event_id\":\"%s\",\"type\":\"message.status\",\"occurred_at\":"
                     "\"2026-03-01T10:01:30Z\",\"data\":{\"message_id\":\"%s\",\"status\":"
                     "\"bounced\"}}",
                     evid, id),
            NULL);
        assert_string_equal(delivery_of(s, a.id), "delivered");
    }
    cs_event_query_t q = {.limit = 100, .customer_id = "c-7", .type = "message.status"};
    json_t *page = NULL;
    assert_int_equal(cs_store_events_query(s, &q, &page, &err), CS_OK);
    assert_int_equal(json_array_size(json_object_get(page, "events")), 2);
    json_decref(page);
    /* naming neither: the message its id names */
    put(s, ev_of("{\"event_id\":\"ms-bare\",\"type\":\"message.status\",\"occurred_at\":"
                 "\"2026-03-01T10:02:00Z\",\"data\":{\"message_id\":\"%lld\",\"status\":"
                 "\"opened\"}}",
                 (long long)a.id),
        NULL);
    assert_string_equal(delivery_of(s, a.id), "opened");
    cs_store_close(&s);
}

/* Whether an address the customer no longer has bounced (a retry goes
 * there): a bounce of one of the customer's messages on the channel that
 * went to it, since a time; the customer's record, which has a new
 * address since, no longer shows it. Other addresses, other channels,
 * earlier bounces and a bounce under another system's id do not count. */
static void test_address_bounced(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    bool existed, b;
    put(s, EV("cu", "customer.upserted", "2026-03-01T09:00:00Z",
              "{\"id\":\"c-ab\",\"email\":\"kim@example.de\"}"),
        NULL);
    cs_outmsg_t a = msg("confirm:o:1:0", "c-ab", T0), other = msg("confirm:o:2:0", "c-ab", T0);
    cs_strlcpy(other.recipient, "kim.alt@example.de", sizeof other.recipient);
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_put, &a, &existed, &err), CS_OK);
    assert_int_equal(cs_store_call(s, outbox_put, &other, &existed, &err), CS_OK);
    done_tx(s);
    put(s, ev_of("{\"event_id\":\"ab-b\",\"type\":\"message.status\",\"occurred_at\":"
                 "\"2026-03-01T10:00:00Z\",\"data\":{\"message_id\":\"%lld\",\"status\":"
                 "\"bounced\"}}",
                 (long long)a.id),
        NULL);
    put(s, EV("ab-x", "message.status", "2026-03-01T10:01:00Z",
              "{\"message_id\":\"x-9\",\"status\":\"bounced\",\"channel\":\"email\","
              "\"customer_id\":\"c-ab\"}"),
        NULL);
    put(s, EV("cu2", "customer.upserted", "2026-03-01T10:30:00Z",
              "{\"id\":\"c-ab\",\"email\":\"kim.neu@example.de\"}"),
        NULL);
    cs_contact_t c;
    assert_int_equal(cs_store_call(s, contact_get, "c-ab", &c, &err), CS_OK);
    assert_int_equal(c.bounced, 0); /* the new address's */
    cs_ms_t ten, after;
    assert_true(cs_time_parse("2026-03-01T10:00:00Z", &ten));
    assert_true(cs_time_parse("2026-03-01T10:00:01Z", &after));
    assert_int_equal(cs_store_call(s, address_bounced, "c-ab", CS_CHANNEL_EMAIL,
                                   "kim@example.de", ten, &b, &err),
                     CS_OK);
    assert_true(b);
    assert_int_equal(cs_store_call(s, address_bounced, "c-ab", CS_CHANNEL_EMAIL,
                                   "kim@example.de", after, &b, &err),
                     CS_OK);
    assert_false(b);
    assert_int_equal(cs_store_call(s, address_bounced, "c-ab", CS_CHANNEL_EMAIL,
                                   "kim.alt@example.de", ten, &b, &err),
                     CS_OK);
    assert_false(b);
    assert_int_equal(cs_store_call(s, address_bounced, "c-ab", CS_CHANNEL_SMS,
                                   "kim@example.de", ten, &b, &err),
                     CS_OK);
    assert_false(b);
    assert_int_equal(cs_store_call(s, address_bounced, "c-other", CS_CHANNEL_EMAIL,
                                   "kim@example.de", ten, &b, &err),
                     CS_OK);
    assert_false(b);
    cs_store_close(&s);
}

/* A message.status of one of our messages that names no customer or no
 * channel (a bounce processor posting to /v1/events with the message's
 * number) is the message's customer's and channel's: its bounce stops
 * that channel, and the customer's events list it. Before, it was nobody's:
 * the bounce stopped nothing. */
static void test_message_status_takes_its_message(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    bool existed;
    cs_outmsg_t a = msg("confirm:o:1:0", "c-7", T0);
    put(s, EV("cu", "customer.upserted", "2026-03-01T09:00:00Z",
              "{\"id\":\"c-7\",\"email\":\"kim@example.de\"}"),
        NULL);
    in_tx(s);
    assert_int_equal(cs_store_call(s, outbox_put, &a, &existed, &err), CS_OK);
    done_tx(s);
    int64_t seq;
    char ch[16];
    put(s, ev_of("{\"event_id\":\"ms-bare\",\"type\":\"message.status\",\"occurred_at\":"
                 "\"2026-03-01T10:00:00Z\",\"data\":{\"message_id\":\"%lld\",\"status\":"
                 "\"bounced\"}}",
                 (long long)a.id),
        &seq);
    /* the channel it was resolved to, for the journeys */
    assert_int_equal(cs_store_call(s, message_channel, seq, ch, &err), CS_OK);
    assert_string_equal(ch, "email");
    assert_int_equal(cs_store_call(s, message_channel, seq + 100, ch, &err), CS_OK);
    assert_string_equal(ch, "");
    cs_contact_t c;
    assert_int_equal(cs_store_call(s, contact_get, "c-7", &c, &err), CS_OK);
    assert_int_equal(c.bounced, 1u << CS_CHANNEL_EMAIL);
    assert_string_equal(delivery_of(s, a.id), "bounced");
    cs_event_query_t q = {.limit = 100, .customer_id = "c-7", .type = "message.status"};
    json_t *page = NULL;
    assert_int_equal(cs_store_events_query(s, &q, &page, &err), CS_OK);
    assert_int_equal(json_array_size(json_object_get(page, "events")), 1);
    json_decref(page);
    /* a status naming another customer is that customer's alone */
    put(s, ev_of("{\"event_id\":\"ms-c9\",\"type\":\"message.status\",\"occurred_at\":"
                 "\"2026-03-01T10:05:00Z\",\"data\":{\"message_id\":\"%lld\",\"status\":"
                 "\"unsubscribed\",\"customer_id\":\"c-9\"}}",
                 (long long)a.id),
        &seq);
    assert_int_equal(cs_store_call(s, message_channel, seq, ch, &err), CS_OK);
    assert_string_equal(ch, "");
    assert_int_equal(cs_store_call(s, contact_get, "c-7", &c, &err), CS_OK);
    assert_false(c.unsubscribed);
    cs_store_close(&s);
}

/* contact_get of customer id into *c (its result returned), checked
 * against the contact data of the same customer's journey_context, full
 * and lite (cs_contact_from_json): the sender reads the one for both. */
static cs_rc contact_both(cs_store_t *s, const char *id, cs_contact_t *c)
{
    cs_err_t err;
    cs_rc rc = cs_store_call(s, contact_get, id, c, &err);
    for (unsigned flags = CS_CTX_FULL; flags <= CS_CTX_LITE; flags++) {
        json_t *cu = NULL, *o = NULL, *sh = NULL;
        assert_int_equal(cs_store_call(s, journey_context, id, NULL, 0, flags, &cu, &o, &sh,
                                       &err),
                         CS_OK);
        assert_true((cu != NULL) == (rc == CS_OK));
        cs_contact_t j;
        cs_contact_from_json(cu, &j);
        if (cu) {
            assert_string_equal(j.email, c->email);
            assert_string_equal(j.phone, c->phone);
            assert_string_equal(j.locale, c->locale);
            assert_string_equal(j.timezone, c->timezone);
            assert_string_equal(j.consent, c->consent);
            assert_int_equal(j.unsubscribed, c->unsubscribed);
            assert_int_equal(j.bounced, c->bounced);
        }
        json_decref(cu);
        json_decref(o);
        json_decref(sh);
    }
    return rc;
}

static void test_cursors_codes_contacts(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    int64_t seq = -1;
    assert_int_equal(cs_store_call(s, log_end, &seq, &err), CS_OK);
    assert_int_equal(seq, 0); /* an empty log */
    assert_int_equal(cs_store_call(s, cursor_get, "journeys", &seq, &err), CS_ERR_NOTFOUND);
    in_tx(s);
    assert_int_equal(cs_store_call(s, cursor_set, "journeys", 42, &err), CS_OK);
    assert_int_equal(cs_store_call(s, cursor_set, "journeys", 43, &err), CS_OK);
    done_tx(s);
    assert_int_equal(cs_store_call(s, cursor_get, "journeys", &seq, &err), CS_OK);
    assert_int_equal(seq, 43);

    cs_discount_t d;
    memset(&d, 0, sizeof d);
    cs_strlcpy(d.code, "DANKE-ABCDEFGH", sizeof d.code);
    cs_strlcpy(d.idem_key, "vip:o:1:0", sizeof d.idem_key);
    d.run_id = 9;
    cs_strlcpy(d.customer_id, "c-7", sizeof d.customer_id);
    d.kind = 1;
    d.value = 5;
    cs_strlcpy(d.currency, "EUR", sizeof d.currency);
    d.created_at = T0;
    d.expires_at = T0 + 86400000;
    bool existed;
    in_tx(s);
    assert_int_equal(cs_store_call(s, discount_put, &d, &existed, &err), CS_OK);
    assert_false(existed);
    cs_discount_t same = d, clash = d;
    cs_strlcpy(same.code, "DANKE-OTHER123", sizeof same.code);
    assert_int_equal(cs_store_call(s, discount_put, &same, &existed, &err), CS_OK);
    assert_true(existed);
    assert_string_equal(same.code, "DANKE-ABCDEFGH"); /* the first code of the step */
    cs_strlcpy(clash.idem_key, "vip:o:2:0", sizeof clash.idem_key);
    assert_int_equal(cs_store_call(s, discount_put, &clash, &existed, &err), CS_ERR_DUPLICATE);
    done_tx(s);
    cs_discount_t got;
    assert_int_equal(cs_store_call(s, discount_for_run, 9, &got, &err), CS_OK);
    assert_string_equal(got.code, "DANKE-ABCDEFGH");
    assert_true(got.value == 5.0);
    assert_int_equal(cs_store_call(s, discount_for_run, 10, &got, &err), CS_ERR_NOTFOUND);

    /* contact data: consent, then a bounce on email, then an unsubscribe */
    put(s, EV("cu", "customer.upserted", "2026-03-01T10:00:00Z",
              "{\"id\":\"c-7\",\"email\":\"kim@example.de\",\"phone\":\"+4915100000001\","
              "\"locale\":\"de\",\"timezone\":\"Europe/Berlin\",\"consents\":{\"email\":"
              "{\"transactional\":true,\"marketing\":false}}}"),
        NULL);
    cs_contact_t c;
    assert_int_equal(contact_both(s, "c-7", &c), CS_OK);
    assert_string_equal(c.email, "kim@example.de");
    assert_string_equal(c.timezone, "Europe/Berlin");
    assert_string_equal(c.consent, "yn----");
    assert_false(c.unsubscribed);
    assert_int_equal(c.bounced, 0);
    put(s, EV("ms1", "message.status", "2026-03-01T11:00:00Z",
              "{\"message_id\":\"1\",\"status\":\"bounced\",\"channel\":\"email\","
              "\"customer_id\":\"c-7\"}"),
        NULL);
    assert_int_equal(contact_both(s, "c-7", &c), CS_OK);
    assert_int_equal(c.bounced, 1u << CS_CHANNEL_EMAIL);
    assert_false(c.unsubscribed);
    put(s, EV("ms2", "message.status", "2026-03-01T12:00:00Z",
              "{\"message_id\":\"2\",\"status\":\"unsubscribed\",\"customer_id\":\"c-7\"}"),
        NULL);
    assert_int_equal(contact_both(s, "c-7", &c), CS_OK);
    assert_true(c.unsubscribed);
    assert_int_equal(contact_both(s, "c-8", &c), CS_ERR_NOTFOUND);
    /* the log's end: the last of the three events, not a cursor's 43 */
    assert_int_equal(cs_store_call(s, log_end, &seq, &err), CS_OK);
    assert_int_equal(seq, 3);
    cs_store_close(&s);
}

/* A customer with more bounces than one page of them: an unsubscribe and
 * a bounce on another channel after them still stop their messages. Only
 * 50 of them were read, the oldest first on SQLite, so the unsubscribe was
 * missed and the customer got marketing again. */
static void test_stops_past_many_bounces(void **state)
{
    cs_store_t *s = open_store(state);
    put(s, EV("cu", "customer.upserted", "2026-03-01T10:00:00Z",
              "{\"id\":\"c-5\",\"email\":\"kim@example.de\",\"phone\":\"+4915100000001\"}"),
        NULL);
    for (int i = 0; i < 60; i++) {
        char id[16], at[32];
        snprintf(id, sizeof id, "b%d", i);
        snprintf(at, sizeof at, "2026-03-01T11:%02d:00Z", i);
        put(s, EV(id, "message.status", at,
                  "{\"message_id\":\"x\",\"status\":\"bounced\",\"channel\":\"email\","
                  "\"customer_id\":\"c-5\"}"),
            NULL);
    }
    put(s, EV("bs", "message.status", "2026-03-01T12:10:00Z",
              "{\"message_id\":\"y\",\"status\":\"bounced\",\"channel\":\"sms\","
              "\"customer_id\":\"c-5\"}"),
        NULL);
    cs_contact_t c;
    assert_int_equal(contact_both(s, "c-5", &c), CS_OK);
    assert_int_equal(c.bounced, (1u << CS_CHANNEL_EMAIL) | (1u << CS_CHANNEL_SMS));
    assert_false(c.unsubscribed);
    put(s, EV("us", "message.status", "2026-03-01T12:20:00Z",
              "{\"message_id\":\"z\",\"status\":\"unsubscribed\",\"channel\":\"email\","
              "\"customer_id\":\"c-5\"}"),
        NULL);
    assert_int_equal(contact_both(s, "c-5", &c), CS_OK);
    assert_true(c.unsubscribed);
    cs_store_close(&s);
}

/* An unsubscribe starts over per channel: a consent granted on one
 * channel, or a new address, lifts it on the channels that consent or
 * address is of and no other; a bounce likewise holds on its own channel
 * until that one starts over. A consent granted on any channel lifted the
 * unsubscribe on every channel, so a customer who said yes to SMS offers
 * got marketing email again. */
/* The times contact_get gives for what holds on a channel (the customer
 * view shows them): "" where nothing holds, else its latest as stored. */
static void assert_held_at(const cs_contact_t *c, int ch, const char *unsub, const char *bounce)
{
    cs_ms_t u = 0, b = 0;
    if (*unsub)
        assert_true(cs_time_parse(unsub, &u));
    if (*bounce)
        assert_true(cs_time_parse(bounce, &b));
    assert_int_equal(c->unsubscribed_at[ch], u);
    assert_int_equal(c->bounced_at[ch], b);
}

static void test_stops_start_over_per_channel(void **state)
{
    const unsigned email = 1u << CS_CHANNEL_EMAIL, sms = 1u << CS_CHANNEL_SMS,
                   wa = 1u << CS_CHANNEL_WHATSAPP;
    cs_store_t *s = open_store(state);
    cs_contact_t c;
    put(s, EV("c1", "customer.upserted", "2026-03-01T10:00:00Z",
              "{\"id\":\"c-4\",\"email\":\"kim@example.de\",\"phone\":\"+4915100000001\","
              "\"consents\":{\"email\":{\"transactional\":true,\"marketing\":true},"
              "\"sms\":{\"transactional\":true,\"marketing\":false}}}"),
        NULL);
    put(s, EV("u1", "message.status", "2026-03-01T11:00:00Z",
              "{\"message_id\":\"u\",\"status\":\"unsubscribed\",\"customer_id\":\"c-4\"}"),
        NULL);
    put(s, EV("b1", "message.status", "2026-03-01T11:10:00Z",
              "{\"message_id\":\"b\",\"status\":\"bounced\",\"channel\":\"email\","
              "\"customer_id\":\"c-4\"}"),
        NULL);
    assert_int_equal(contact_both(s, "c-4", &c), CS_OK);
    assert_int_equal(c.unsubscribed, email | sms | wa);
    assert_int_equal(c.bounced, email);
    assert_held_at(&c, CS_CHANNEL_EMAIL, "2026-03-01T11:00:00Z", "2026-03-01T11:10:00Z");
    assert_held_at(&c, CS_CHANNEL_SMS, "2026-03-01T11:00:00Z", "");
    /* SMS offers ticked: SMS starts over, email and WhatsApp do not */
    put(s, EV("c2", "customer.upserted", "2026-03-01T12:00:00Z",
              "{\"id\":\"c-4\",\"consents\":{\"sms\":{\"marketing\":true}}}"), NULL);
    assert_int_equal(contact_both(s, "c-4", &c), CS_OK);
    assert_string_equal(c.consent, "yyyy--");
    assert_int_equal(c.unsubscribed, email | wa);
    assert_int_equal(c.bounced, email);
    assert_held_at(&c, CS_CHANNEL_SMS, "", "");
    assert_held_at(&c, CS_CHANNEL_WHATSAPP, "2026-03-01T11:00:00Z", "");
    /* the same record again, or a refusal on email, lifts nothing */
    put(s, EV("c3", "customer.upserted", "2026-03-01T12:10:00Z",
              "{\"id\":\"c-4\",\"consents\":{\"sms\":{\"marketing\":true},"
              "\"email\":{\"marketing\":false}}}"), NULL);
    assert_int_equal(contact_both(s, "c-4", &c), CS_OK);
    assert_int_equal(c.unsubscribed, email | wa);
    /* a new phone: SMS and WhatsApp start over, not email's unsubscribe or
     * its bounce */
    put(s, EV("c4", "customer.upserted", "2026-03-01T13:00:00Z",
              "{\"id\":\"c-4\",\"phone\":\"+4915100000002\"}"), NULL);
    assert_int_equal(contact_both(s, "c-4", &c), CS_OK);
    assert_int_equal(c.unsubscribed, email);
    assert_int_equal(c.bounced, email);
    /* a bounce on SMS now holds on SMS alone */
    put(s, EV("b2", "message.status", "2026-03-01T13:30:00Z",
              "{\"message_id\":\"b2\",\"status\":\"bounced\",\"channel\":\"sms\","
              "\"customer_id\":\"c-4\"}"),
        NULL);
    assert_int_equal(contact_both(s, "c-4", &c), CS_OK);
    assert_int_equal(c.bounced, email | sms);
    /* an email consent granted anew: email starts over, SMS's bounce holds */
    put(s, EV("c5", "customer.upserted", "2026-03-01T14:00:00Z",
              "{\"id\":\"c-4\",\"consents\":{\"email\":{\"marketing\":true}}}"), NULL);
    assert_int_equal(contact_both(s, "c-4", &c), CS_OK);
    assert_int_equal(c.unsubscribed, 0);
    assert_int_equal(c.bounced, sms);
    /* a new unsubscribe stops every channel again */
    put(s, EV("u2", "message.status", "2026-03-01T15:00:00Z",
              "{\"message_id\":\"u2\",\"status\":\"complained\",\"channel\":\"email\","
              "\"customer_id\":\"c-4\"}"),
        NULL);
    assert_int_equal(contact_both(s, "c-4", &c), CS_OK);
    assert_int_equal(c.unsubscribed, email | sms | wa);
    assert_held_at(&c, CS_CHANNEL_EMAIL, "2026-03-01T15:00:00Z", "");
    assert_held_at(&c, CS_CHANNEL_SMS, "2026-03-01T15:00:00Z", "2026-03-01T13:30:00Z");
    /* a new email: email starts over (its bounce and the complaint) */
    put(s, EV("c6", "customer.upserted", "2026-03-01T16:00:00Z",
              "{\"id\":\"c-4\",\"email\":\"kim.neu@example.de\"}"), NULL);
    assert_int_equal(contact_both(s, "c-4", &c), CS_OK);
    assert_int_equal(c.unsubscribed, sms | wa);
    assert_int_equal(c.bounced, sms);
    cs_store_close(&s);
}

static cs_rc count_fn(int64_t seq, const char *order_id, const char *customer_id,
                      const char *body, size_t len, void *ud)
{
    (void)order_id;
    (void)customer_id;
    (void)body;
    (void)len;
    int64_t *seen = ud;
    seen[0]++;
    seen[1] = seq;
    return CS_OK;
}

static cs_rc fail_fn(int64_t seq, const char *order_id, const char *customer_id,
                     const char *body, size_t len, void *ud)
{
    (void)seq;
    (void)order_id;
    (void)customer_id;
    (void)body;
    (void)len;
    (void)ud;
    return CS_ERR_INTERNAL;
}

/* A follower that reads the log again from within its callback: the
 * nested call sees the whole log while the outer one is mid-way. */
typedef struct nest {
    cs_store_t *s;
    int outer, inner_rows;
} nest_t;

static cs_rc nest_fn(int64_t seq, const char *order_id, const char *customer_id,
                     const char *body, size_t len, void *ud)
{
    nest_t *n = ud;
    int64_t seen[2] = { 0, 0 }, examined;
    cs_err_t err;
    (void)order_id;
    (void)customer_id;
    (void)len;
    assert_non_null(strstr(body, "\"event_id\""));
    n->outer++;
    cs_rc rc = cs_store_call(n->s, events_after, seq - 1, 10, 0, count_fn, seen, &examined, &err);
    n->inner_rows += (int)seen[0];
    return rc;
}

/* events_after filters by type and tells how far the log was looked at. */
static void test_events_after(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    int64_t s1, s2, s3;
    put(s, order_ev("ea-1", "A1", "2026-03-01T10:00:00Z", "1.00"), &s1);
    put(s, EV("ea-2", "ticket.created", "2026-03-01T10:01:00Z",
              "{\"id\":\"t-1\",\"customer_id\":\"c-7\"}"),
        &s2);
    put(s, order_ev("ea-3", "A3", "2026-03-01T10:02:00Z", "1.00"), &s3);
    int64_t seen[2] = { 0, 0 }, examined;
    assert_int_equal(cs_store_call(s, events_after, 0, 10, 1u << CS_EV_ORDER_PLACED, count_fn,
                                   seen, &examined, &err),
                     CS_OK);
    assert_int_equal(seen[0], 2);
    assert_int_equal(seen[1], s3);
    assert_int_equal(examined, s3);
    /* nothing of the type after the orders: the cursor still moves to the end */
    seen[0] = 0;
    assert_int_equal(cs_store_call(s, events_after, 0, 10, 1u << CS_EV_SIGNAL, count_fn, seen,
                                   &examined, &err),
                     CS_OK);
    assert_int_equal(seen[0], 0);
    assert_int_equal(examined, s3);
    /* a full page: up to its last event only */
    seen[0] = 0;
    assert_int_equal(cs_store_call(s, events_after, 0, 1, 0, count_fn, seen, &examined, &err),
                     CS_OK);
    assert_int_equal(seen[0], 1);
    assert_int_equal(examined, s1);
    assert_int_equal(cs_store_call(s, events_after, s3, 10, 0, count_fn, seen, &examined, &err),
                     CS_OK);
    assert_int_equal(examined, s3);
    /* called again and again, and from within its own callback */
    for (int round = 0; round < 3; round++) {
        nest_t n = { s, 0, 0 };
        assert_int_equal(cs_store_call(s, events_after, 0, 10, 0, nest_fn, &n, &examined, &err),
                         CS_OK);
        assert_int_equal(n.outer, 3);
        assert_int_equal(n.inner_rows, 3 + 2 + 1); /* from each event to the end */
        assert_int_equal(examined, s3);
    }
    /* a callback's error ends the call and leaves the statement usable */
    assert_int_equal(cs_store_call(s, events_after, 0, 10, 0, fail_fn, NULL, &examined, &err),
                     CS_ERR_INTERNAL);
    seen[0] = 0;
    assert_int_equal(cs_store_call(s, events_after, 0, 10, 0, count_fn, seen, &examined, &err),
                     CS_OK);
    assert_int_equal(seen[0], 3);
    (void)s2;
    cs_store_close(&s);
}

/* The order watch's records: what an order's promise is read from, the
 * promise with its moves, the re-check index and the compensation budget. */
typedef struct dest_count {
    int n, with_10115;
} dest_count_t;

static cs_rc count_dest(const char *destination, void *ud)
{
    dest_count_t *c = ud;
    c->n++;
    c->with_10115 += strstr(destination, "10115") != NULL;
    return CS_OK;
}

static void test_order_watch_records(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    cs_order_track_t t;
    assert_int_equal(cs_store_call(s, order_track, "o-w", 0, &t, &err), CS_ERR_NOTFOUND);
    put(s, EV("w1", "order.placed", "2026-03-02T09:00:00Z",
              "{\"id\":\"o-w\",\"customer_id\":\"c-w\",\"currency\":\"EUR\","
              "\"totals\":{\"shipping\":\"4.90\",\"total\":\"54.90\"},"
              "\"promised_delivery\":{\"earliest\":\"2026-03-04T00:00:00Z\","
              "\"latest\":\"2026-03-05T00:00:00Z\"},"
              "\"items\":[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":\"50.00\",\"quantity\":1}]}"),
        NULL);
    assert_int_equal(cs_store_call(s, order_track, "o-w", 0, &t, &err), CS_OK);
    assert_string_equal(t.customer_id, "c-w");
    assert_string_equal(t.currency, "EUR");
    assert_int_equal(t.total, 5490);
    assert_int_equal(t.shipping, 490);
    assert_false(t.shipped);
    assert_int_equal(t.last_status, -1);
    int64_t orders, spent_total;
    assert_int_equal(cs_store_call(s, customer_totals, "c-w", t.placed_at, "EUR", &orders,
                                 &spent_total, &err), CS_OK);
    assert_int_equal(orders, 1);
    assert_int_equal(spent_total, 5490);
    /* counted, but spent in another currency */
    assert_int_equal(cs_store_call(s, customer_totals, "c-w", t.placed_at, "JPY", &orders,
                                 &spent_total, &err), CS_OK);
    assert_int_equal(orders, 1);
    assert_int_equal(spent_total, 0);
    assert_int_equal(cs_store_call(s, customer_totals, "c-w", t.placed_at - 1, "EUR", &orders,
                                 &spent_total, &err), CS_OK);
    assert_int_equal(orders, 0);
    assert_int_equal(spent_total, 0);
    int64_t v1[3], v2[3];
    assert_int_equal(cs_store_call(s, order_version, "o-w", v1, &err), CS_OK);
    assert_int_equal(cs_store_call(s, order_version, "nope", v2, &err), CS_ERR_NOTFOUND);
    assert_true(t.promised_to > t.promised_from && t.promised_from > t.placed_at);
    put(s, EV("w2", "shipment.created", "2026-03-02T15:00:00Z",
              "{\"id\":\"S-w\",\"order_id\":\"o-w\",\"carrier\":\"dhl\",\"service\":\"paket\","
              "\"tracking_number\":\"TW\",\"destination\":{\"country\":\"DE\",\"postal_code\":\"10115\"}}"),
        NULL);
    put(s, EV("w3", "tracking.event", "2026-03-03T07:00:00Z",
              "{\"shipment_id\":\"S-w\",\"carrier\":\"dhl\",\"tracking_number\":\"TW\","
              "\"status\":\"exception\",\"reason\":\"customs\"}"),
        NULL);
    assert_int_equal(cs_store_call(s, order_track, "o-w", 0, &t, &err), CS_OK);
    assert_int_equal(cs_store_call(s, order_version, "o-w", v2, &err), CS_OK);
    assert_true(v2[0] != v1[0]); /* a scan moved the order's version */
    assert_true(t.shipped);
    assert_string_equal(t.carrier, "dhl");
    assert_string_equal(t.service, "paket");
    assert_non_null(strstr(t.destination, "10115"));
    assert_int_equal(t.last_status, CS_TRACK_EXCEPTION);
    assert_int_equal(t.last_reason, CS_INCIDENT_CUSTOMS);
    assert_int_equal(t.delivered_at, 0);
    assert_int_equal(t.stay_since, 0); /* the scan named no place */
    /* scans at one place: since the first of the run at the latest place */
    static const char *const at_place[][2] = { { "w4", "2026-03-03T09:00:00Z" },
                                               { "w5", "2026-03-03T21:00:00Z" } };
    put(s, EV("w3b", "tracking.event", "2026-03-03T08:00:00Z",
              "{\"shipment_id\":\"S-w\",\"carrier\":\"dhl\",\"tracking_number\":\"TW\","
              "\"status\":\"in_transit\",\"location\":{\"city\":\"Kassel\"}}"),
        NULL);
    for (size_t i = 0; i < 2; i++)
        put(s, EV(at_place[i][0], "tracking.event", at_place[i][1],
                  "{\"shipment_id\":\"S-w\",\"carrier\":\"dhl\",\"tracking_number\":\"TW\","
                  "\"status\":\"in_transit\",\"location\":{\"city\":\"K\u00f6ln\"}}"),
            NULL);
    assert_int_equal(cs_store_call(s, order_track, "o-w", 0, &t, &err), CS_OK);
    cs_ms_t first_there;
    assert_true(cs_time_parse("2026-03-03T09:00:00Z", &first_there));
    assert_int_equal(t.stay_since, first_there);
    /* every parcel's destination, for the tracking page's lookup */
    dest_count_t dc = { 0, 0 };
    assert_int_equal(cs_store_call(s, order_destinations, "o-w", count_dest, &dc, &err), CS_OK);
    assert_int_equal(dc.n, 1);
    assert_int_equal(dc.with_10115, 1);
    dc = (dest_count_t){ 0, 0 };
    assert_int_equal(cs_store_call(s, order_destinations, "nope", count_dest, &dc, &err), CS_OK);
    assert_int_equal(dc.n, 0);
    /* placed before the cutoff: the order alone */
    assert_int_equal(cs_store_call(s, order_track, "o-w", t.placed_at + 1, &t, &err), CS_OK);
    assert_false(t.shipped);
    assert_int_equal(t.last_status, -1);
    assert_int_equal(t.total, 5490);
    /* an order that said how it will be sent: that lane and destination
     * until its shipment, whose missing destination is still the plan's */
    put(s, EV("w6", "order.placed", "2026-03-02T10:00:00Z",
              "{\"id\":\"o-p\",\"customer_id\":\"c-w\",\"currency\":\"EUR\","
              "\"shipping\":{\"carrier\":\"DPD\",\"service\":\"classic\","
              "\"origin\":{\"country\":\"DE\",\"region\":\"BY\"},"
              "\"destination\":{\"country\":\"DE\",\"postal_code\":\"20095\"}},"
              "\"items\":[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":\"5.00\",\"quantity\":1}]}"),
        NULL);
    assert_int_equal(cs_store_call(s, order_track, "o-p", 0, &t, &err), CS_OK);
    assert_false(t.shipped);
    assert_string_equal(t.carrier, "dpd");
    assert_string_equal(t.service, "classic");
    assert_non_null(strstr(t.origin, "BY"));
    assert_non_null(strstr(t.destination, "20095"));
    dc = (dest_count_t){ 0, 0 };
    assert_int_equal(cs_store_call(s, order_destinations, "o-p", count_dest, &dc, &err), CS_OK);
    assert_int_equal(dc.n, 1);
    put(s, EV("w7", "shipment.created", "2026-03-02T16:00:00Z",
              "{\"id\":\"S-p\",\"order_id\":\"o-p\",\"carrier\":\"hermes\","
              "\"tracking_number\":\"HP1\"}"),
        NULL);
    assert_int_equal(cs_store_call(s, order_track, "o-p", 0, &t, &err), CS_OK);
    assert_true(t.shipped);
    assert_string_equal(t.carrier, "hermes");
    assert_string_equal(t.service, "");
    assert_non_null(strstr(t.destination, "20095"));
    dc = (dest_count_t){ 0, 0 };
    assert_int_equal(cs_store_call(s, order_destinations, "o-p", count_dest, &dc, &err), CS_OK);
    assert_int_equal(dc.n, 2); /* the plan's and the parcel's (none given: "") */

    cs_promise_rec_t p, got;
    assert_int_equal(cs_store_call(s, promise_get, "o-w", &got, &err), CS_ERR_NOTFOUND);
    memset(&p, 0, sizeof p);
    cs_strlcpy(p.order_id, "o-w", sizeof p.order_id);
    cs_strlcpy(p.customer_id, "c-w", sizeof p.customer_id);
    p.first_from = T0 + 2 * 86400000LL;
    p.first_to = p.first_point = T0 + 3 * 86400000LL;
    cs_strlcpy(p.first_source, "shop", sizeof p.first_source);
    p.first_at = T0;
    p.from = p.first_from;
    p.to = p.point = p.first_to;
    cs_strlcpy(p.reason, "none", sizeof p.reason);
    p.level = 2;
    p.updated_at = T0;
    p.check_at = T0 + 3600000;
    in_tx(s);
    assert_int_equal(cs_store_call(s, promise_put, &p, "none", &err), CS_OK);
    done_tx(s);
    p.to = p.first_to + 2 * 86400000LL;
    cs_strlcpy(p.reason, "customs", sizeof p.reason);
    p.at_risk = true;
    cs_strlcpy(p.risk_reason, "customs", sizeof p.risk_reason);
    p.risk_at = p.updated_at = T0 + 7200000;
    p.risk_events = 1;
    p.check_at = T0 + 10800000;
    p.comp_at = T0 + 7200000;
    cs_strlcpy(p.comp_code, "SORRY-ABC", sizeof p.comp_code);
    p.comp_cost = 1500;
    cs_strlcpy(p.comp_note, "new, 3 days late", sizeof p.comp_note);
    in_tx(s);
    assert_int_equal(cs_store_call(s, promise_put, &p, "customs", &err), CS_OK);
    p.updated_at = T0 + 8000000; /* a re-check that moved nothing: no move row */
    assert_int_equal(cs_store_call(s, promise_put, &p, NULL, &err), CS_OK);
    done_tx(s);
    assert_int_equal(cs_store_call(s, promise_get, "o-w", &got, &err), CS_OK);
    assert_int_equal(got.first_to, p.first_to);
    assert_int_equal(got.to, p.to);
    assert_string_equal(got.first_source, "shop");
    assert_string_equal(got.reason, "customs");
    assert_true(got.at_risk);
    assert_int_equal(got.risk_events, 1);
    assert_int_equal(got.level, 2);
    assert_string_equal(got.comp_code, "SORRY-ABC");
    assert_int_equal(got.comp_cost, 1500);
    assert_string_equal(got.comp_note, "new, 3 days late");
    assert_int_equal(got.updated_at, T0 + 8000000);
    int64_t v3[3];
    assert_int_equal(cs_store_call(s, order_version, "o-w", v3, &err), CS_OK);
    assert_int_equal(v3[1], T0 + 8000000); /* and so does the promise */

    /* re-checks by time; a closed record has none */
    cs_promise_rec_t due[4];
    size_t n;
    cs_ms_t next;
    assert_int_equal(cs_store_call(s, promises_due, T0 + 10800000, due, 4, &n, &err), CS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(cs_store_call(s, promises_due, T0 + 10800001, due, 4, &n, &err), CS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(due[0].order_id, "o-w");
    assert_int_equal(cs_store_call(s, promise_next, &next, &err), CS_OK);
    assert_int_equal(next, T0 + 10800000);
    p.closed = true;
    p.check_at = 0;
    in_tx(s);
    assert_int_equal(cs_store_call(s, promise_put, &p, NULL, &err), CS_OK);
    done_tx(s);
    assert_int_equal(cs_store_call(s, promise_next, &next, &err), CS_OK);
    assert_int_equal(next, 0);

    /* the budget sums what was decided since a time */
    int64_t spent;
    assert_int_equal(cs_store_call(s, comp_spent, T0, &spent, &err), CS_OK);
    assert_int_equal(spent, 1500);
    assert_int_equal(cs_store_call(s, comp_spent, T0 + 7200001, &spent, &err), CS_OK);
    assert_int_equal(spent, 0);

    /* the order view shows first, current and the two moves */
    json_t *v = order_view(s, "o-w");
    json_t *pr = json_object_get(v, "promise");
    assert_non_null(pr);
    assert_string_equal(json_string_value(json_object_get(json_object_get(pr, "current"), "reason")),
                        "customs");
    assert_string_equal(json_string_value(json_object_get(json_object_get(pr, "first"), "source")),
                        "shop");
    assert_int_equal(json_array_size(json_object_get(pr, "moves")), 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(pr, "compensation"), "code")),
                        "SORRY-ABC");
    json_decref(v);

    /* a code by its key */
    cs_discount_t d;
    memset(&d, 0, sizeof d);
    cs_strlcpy(d.code, "SORRY-XYZ", sizeof d.code);
    cs_strlcpy(d.idem_key, "comp:o-w", sizeof d.idem_key);
    cs_strlcpy(d.customer_id, "c-w", sizeof d.customer_id);
    d.kind = 2;
    d.created_at = T0;
    d.expires_at = T0 + 86400000;
    bool existed;
    in_tx(s);
    assert_int_equal(cs_store_call(s, discount_put, &d, &existed, &err), CS_OK);
    done_tx(s);
    cs_discount_t k;
    assert_int_equal(cs_store_call(s, discount_by_key, "comp:o-w", &k, &err), CS_OK);
    assert_string_equal(k.code, "SORRY-XYZ");
    assert_int_equal(cs_store_call(s, discount_by_key, "comp:none", &k, &err), CS_ERR_NOTFOUND);
    cs_store_close(&s);
}

static cs_rc keep_delivery(const cs_delivery_row_t *d, void *ud)
{
    *(cs_delivery_row_t *)ud = *d;
    return CS_OK;
}

typedef struct delivery_list {
    char carrier[4][CS_ID_MAX + 1];
    int n;
} delivery_list_t;

static cs_rc list_delivery(const cs_delivery_row_t *d, void *ud)
{
    delivery_list_t *l = ud;
    if (l->n < 4)
        cs_strlcpy(l->carrier[l->n], d->carrier, sizeof l->carrier[0]);
    l->n++;
    return CS_OK;
}

/* Deliveries for the promise model, with the longest silence on the way. */
static void test_deliveries(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    cs_delivery_row_t d;
    put(s, order_ev("d1", "o-d", "2026-03-02T09:00:00Z", "10.00"), NULL);
    int64_t seq[4], seq_ship;
    put(s, EV("d2", "shipment.created", "2026-03-02T10:00:00Z",
              "{\"id\":\"S-d\",\"order_id\":\"o-d\",\"carrier\":\"dpd\","
              "\"tracking_number\":\"TD\"}"),
        &seq_ship);
    /* not a scan */
    assert_int_equal(cs_store_call(s, delivery_of_scan, seq_ship, &d, &err), CS_ERR_NOTFOUND);
    const char *scans[][2] = { { "d3", "2026-03-02T18:00:00Z" },  /* 8 h after hand-over */
                               { "d4", "2026-03-05T18:00:00Z" },  /* 3 days: the longest */
                               { "d5", "2026-03-06T08:00:00Z" },  /* delivered */
                               { "d6", "2026-03-20T08:00:00Z" } }; /* after: not on the way */
    for (int i = 0; i < 4; i++)
        put(s,
            ev_of("{\"event_id\":\"%s\",\"type\":\"tracking.event\",\"occurred_at\":\"%s\","
                  "\"data\":{\"shipment_id\":\"S-d\",\"carrier\":\"dpd\",\"tracking_number\":"
                  "\"TD\",\"status\":\"%s\"}}",
                  scans[i][0], scans[i][1], i == 2 ? "delivered" : "in_transit"),
            &seq[i]);
    /* only the delivered scan completed a delivery */
    assert_int_equal(cs_store_call(s, delivery_of_scan, seq[0], &d, &err), CS_ERR_NOTFOUND);
    assert_int_equal(cs_store_call(s, delivery_of_scan, seq[3], &d, &err), CS_ERR_NOTFOUND);
    assert_int_equal(cs_store_call(s, delivery_of_scan, seq[2], &d, &err), CS_OK);
    assert_string_equal(d.carrier, "dpd");
    assert_string_equal(d.shipment_id, "S-d");
    cs_ms_t t;
    assert_true(cs_time_parse("2026-03-02T18:00:00Z", &t));
    assert_int_equal(d.gap_from, t);
    assert_true(cs_time_parse("2026-03-05T18:00:00Z", &t));
    assert_int_equal(d.gap_to, t);
    assert_true(cs_time_parse("2026-03-06T08:00:00Z", &t));
    assert_int_equal(d.delivered_at, t);
    /* the bulk read finds the same */
    cs_delivery_row_t all;
    memset(&all, 0, sizeof all);
    assert_int_equal(cs_store_call(s, deliveries_each, keep_delivery, &all, &err), CS_OK);
    assert_int_equal(all.gap_from, d.gap_from);
    assert_int_equal(all.gap_to, d.gap_to);
    assert_int_equal(all.delivered_at, d.delivered_at);
    assert_int_equal(all.shipped_at, d.shipped_at);
    /* the same delivery sent again (another event id): not a second one */
    int64_t again;
    put(s,
        ev_of("{\"event_id\":\"d5b\",\"type\":\"tracking.event\",\"occurred_at\":"
              "\"2026-03-06T08:00:00Z\",\"data\":{\"shipment_id\":\"S-d\",\"carrier\":"
              "\"dpd\",\"tracking_number\":\"TD\",\"status\":\"delivered\"}}"),
        &again);
    assert_int_equal(cs_store_call(s, delivery_of_scan, again, &d, &err), CS_ERR_NOTFOUND);
    assert_int_equal(cs_store_call(s, delivery_of_scan, seq[2], &d, &err), CS_OK);
    /* an order in several parcels: each scan its own parcel's delivery */
    const char *more[][4] = { { "S-d2", "gls", "2026-03-08T12:00:00Z", "T2" },
                              { "S-d3", "ups", "2026-03-04T12:00:00Z", "T3" } };
    for (int i = 0; i < 2; i++) {
        put(s,
            ev_of("{\"event_id\":\"ds%d\",\"type\":\"shipment.created\","
                  "\"occurred_at\":\"2026-03-02T11:00:00Z\",\"data\":{\"id\":\"%s\","
                  "\"order_id\":\"o-d\",\"carrier\":\"%s\",\"tracking_number\":\"%s\"}}",
                  i, more[i][0], more[i][1], more[i][3]),
            NULL);
        put(s,
            ev_of("{\"event_id\":\"dd%d\",\"type\":\"tracking.event\",\"occurred_at\":\"%s\","
                  "\"data\":{\"shipment_id\":\"%s\",\"carrier\":\"%s\",\"tracking_number\":"
                  "\"%s\",\"status\":\"delivered\"}}",
                  i, more[i][2], more[i][0], more[i][1], more[i][3]),
            &again);
        assert_int_equal(cs_store_call(s, delivery_of_scan, again, &d, &err), CS_OK);
        assert_string_equal(d.carrier, more[i][1]);
        assert_string_equal(d.shipment_id, more[i][0]);
        assert_true(cs_time_parse(more[i][2], &t));
        assert_int_equal(d.delivered_at, t);
    }
    /* the bulk read: the earliest delivered first, not as they came */
    delivery_list_t l = { .n = 0 };
    assert_int_equal(cs_store_call(s, deliveries_each, list_delivery, &l, &err), CS_OK);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.carrier[0], "ups");
    assert_string_equal(l.carrier[1], "dpd");
    assert_string_equal(l.carrier[2], "gls");
    cs_store_close(&s);
}

/* A delivered scan dated ahead of its receipt (a carrier's clock ahead,
 * within the day taken): delivered when it was received, not in the
 * future -- as the scan folds, when the parcel is read again from its
 * scans, and for the model (its gap ends at the delivery). */
static cs_ms_t ms(const char *iso)
{
    cs_ms_t t;
    assert_true(cs_time_parse(iso, &t));
    return t;
}

static void test_delivered_ahead(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    cs_delivery_row_t d;
    int64_t seq;
    put(s, order_ev("e1", "o-e", "2026-03-01T10:00:00Z", "10.00"), NULL);
    put(s, EV("e2", "shipment.created", "2026-03-02T10:00:00Z",
              "{\"id\":\"S-e\",\"order_id\":\"o-e\",\"carrier\":\"dpd\","
              "\"tracking_number\":\"SC1\"}"),
        NULL);
    put(s, SCAN_EV("e3", "2026-03-02T12:00:00Z", "", "in_transit", ""), NULL);
    put_at(s, SCAN_EV("e4", "2026-03-05T15:00:00Z", "", "delivered", ""),
           ms("2026-03-05T10:00:00Z"), &seq);
    json_t *o = order_view(s, "o-e");
    assert_string_equal(str_at(o, "shipments.0.status"), "delivered");
    assert_string_equal(str_at(o, "shipments.0.delivered_at"), "2026-03-05T10:00:00.000Z");
    json_decref(o);
    /* learned as delivered then, its longest gap up to then */
    assert_int_equal(cs_store_call(s, delivery_of_scan, seq, &d, &err), CS_OK);
    assert_int_equal(d.delivered_at, ms("2026-03-05T10:00:00Z"));
    assert_int_equal(d.gap_from, ms("2026-03-02T12:00:00Z"));
    assert_int_equal(d.gap_to, ms("2026-03-05T10:00:00Z"));
    cs_delivery_row_t all;
    memset(&all, 0, sizeof all);
    assert_int_equal(cs_store_call(s, deliveries_each, keep_delivery, &all, &err), CS_OK);
    assert_int_equal(all.delivered_at, d.delivered_at);
    assert_int_equal(all.gap_from, d.gap_from);
    assert_int_equal(all.gap_to, d.gap_to);
    /* an older scan late (the parcel read again from its scans), and
     * another delivered scan of the same delivery: still delivered then */
    put_at(s, SCAN_EV("e5", "2026-03-03T12:00:00Z", "", "in_transit", ""),
           ms("2026-03-06T10:00:00Z"), NULL);
    put_at(s, SCAN_EV("e6", "2026-03-05T15:00:00Z", "", "delivered", ",\"carrier_text\":\"POD\""),
           ms("2026-03-05T16:00:00Z"), NULL);
    o = order_view(s, "o-e");
    assert_string_equal(str_at(o, "shipments.0.delivered_at"), "2026-03-05T10:00:00.000Z");
    json_decref(o);
    cs_store_close(&s);
}

/* Where a parcel was scanned, against where it goes: its first scan in
 * its destination region (a region key naming more than a country), for
 * the watch and for the model, from the shipment's destination or, when
 * it has none, the order's shipping. */
/* An order in several parcels: the watch follows the latest one still on
 * its way, else the one delivered last; a journey's context names the
 * parcel its trigger concerns (a scan's, a shipment.created's), else the
 * followed one. */
static const char *ctx_parcel(cs_store_t *s, const char *order_id, int64_t about, char *buf)
{
    json_t *cu, *o, *sh;
    cs_err_t err;
    assert_int_equal(cs_store_call(s, journey_context, NULL, order_id, about, CS_CTX_LITE, &cu,
                                   &o, &sh, &err),
                     CS_OK);
    snprintf(buf, CS_ID_MAX + 1, "%s", sh ? json_string_value(json_object_get(sh, "id")) : "-");
    json_decref(cu);
    json_decref(o);
    json_decref(sh);
    return buf;
}

static void test_followed_parcel(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    cs_order_track_t tr;
    char buf[CS_ID_MAX + 1];
    int64_t ship_a, scan_a, scan_b;
    cs_ms_t t;
    put(s, order_ev("p1", "o-p", "2026-03-02T09:00:00Z", "10.00"), NULL);
    put(s, EV("p2", "shipment.created", "2026-03-02T10:00:00Z",
              "{\"id\":\"S-a\",\"order_id\":\"o-p\",\"carrier\":\"dhl\",\"tracking_number\":\"TA\"}"),
        &ship_a);
    put(s, EV("p3", "shipment.created", "2026-03-02T11:00:00Z",
              "{\"id\":\"S-b\",\"order_id\":\"o-p\",\"carrier\":\"dhl\",\"tracking_number\":\"TB\"}"),
        NULL);
    /* both on their way: the later one */
    assert_int_equal(cs_store_call(s, order_track, "o-p", 0, &tr, &err), CS_OK);
    assert_true(cs_time_parse("2026-03-02T11:00:00Z", &t));
    assert_int_equal(tr.shipped_at, t);
    assert_string_equal(ctx_parcel(s, "o-p", 0, buf), "S-b");
    /* the later one delivered: the earlier one, still on its way */
    put(s, EV("p4", "tracking.event", "2026-03-03T10:00:00Z",
              "{\"shipment_id\":\"S-b\",\"carrier\":\"dhl\",\"tracking_number\":\"TB\","
              "\"status\":\"delivered\"}"),
        &scan_b);
    assert_int_equal(cs_store_call(s, order_track, "o-p", 0, &tr, &err), CS_OK);
    assert_true(cs_time_parse("2026-03-02T10:00:00Z", &t));
    assert_int_equal(tr.shipped_at, t);
    assert_int_equal(tr.delivered_at, 0);
    assert_string_equal(ctx_parcel(s, "o-p", 0, buf), "S-a");
    /* a run's trigger names its own parcel */
    assert_string_equal(ctx_parcel(s, "o-p", scan_b, buf), "S-b");
    assert_string_equal(ctx_parcel(s, "o-p", ship_a, buf), "S-a");
    /* a scan known by its number only, for the earlier parcel */
    put(s, EV("p5", "tracking.event", "2026-03-04T08:00:00Z",
              "{\"carrier\":\"dhl\",\"tracking_number\":\"TA\",\"status\":\"out_for_delivery\"}"),
        &scan_a);
    assert_string_equal(ctx_parcel(s, "o-p", scan_a, buf), "S-a");
    /* an event about no parcel of this order: the followed one */
    assert_string_equal(ctx_parcel(s, "o-p", 1, buf), "S-a");
    /* both delivered: the one delivered last */
    put(s, EV("p6", "tracking.event", "2026-03-04T12:00:00Z",
              "{\"shipment_id\":\"S-a\",\"carrier\":\"dhl\",\"tracking_number\":\"TA\","
              "\"status\":\"delivered\"}"),
        NULL);
    assert_int_equal(cs_store_call(s, order_track, "o-p", 0, &tr, &err), CS_OK);
    assert_true(cs_time_parse("2026-03-04T12:00:00Z", &t));
    assert_int_equal(tr.delivered_at, t);
    assert_string_equal(ctx_parcel(s, "o-p", 0, buf), "S-a");
    /* a parcel sent back, though created last, is not followed: the one
     * delivered last still is */
    put(s, EV("p7", "shipment.created", "2026-03-05T10:00:00Z",
              "{\"id\":\"S-c\",\"order_id\":\"o-p\",\"carrier\":\"dhl\",\"tracking_number\":\"TC\"}"),
        NULL);
    put(s, EV("p8", "tracking.event", "2026-03-06T10:00:00Z",
              "{\"shipment_id\":\"S-c\",\"carrier\":\"dhl\",\"tracking_number\":\"TC\","
              "\"status\":\"returned_to_sender\"}"),
        NULL);
    assert_string_equal(ctx_parcel(s, "o-p", 0, buf), "S-a");
    /* the full context lists every parcel of the order, in the order they
     * were created, whichever one the run follows */
    json_t *cu, *o, *sh;
    assert_int_equal(cs_store_call(s, journey_context, NULL, "o-p", scan_b, CS_CTX_FULL, &cu, &o,
                                   &sh, &err),
                     CS_OK);
    assert_string_equal(json_string_value(json_object_get(sh, "id")), "S-b");
    json_t *all = json_object_get(o, "shipments");
    assert_int_equal(json_array_size(all), 3);
    assert_int_equal(json_integer_value(json_object_get(o, "shipments_count")), 3);
    const char *want[] = { "S-a", "S-b", "S-c" }, *status[] = { "delivered", "delivered",
                                                                "returned_to_sender" };
    for (size_t i = 0; i < 3; i++) {
        json_t *p = json_array_get(all, i);
        assert_string_equal(json_string_value(json_object_get(p, "id")), want[i]);
        assert_string_equal(json_string_value(json_object_get(p, "status")), status[i]);
    }
    json_decref(cu);
    json_decref(o);
    json_decref(sh);
    /* an order without parcels lists none */
    put(s, order_ev("p9", "o-none", "2026-03-02T09:00:00Z", "10.00"), NULL);
    assert_int_equal(cs_store_call(s, journey_context, NULL, "o-none", 0, CS_CTX_FULL, &cu, &o,
                                   &sh, &err),
                     CS_OK);
    assert_null(sh);
    assert_int_equal(json_array_size(json_object_get(o, "shipments")), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "shipments_count")), 0);
    json_decref(cu);
    json_decref(o);
    cs_store_close(&s);
}

/* The shipment of order `order`'s view with id `id`; NULL when none. */
static json_t *view_parcel(json_t *v, const char *id)
{
    size_t i;
    json_t *sh;
    json_array_foreach(json_object_get(v, "shipments"), i, sh)
        if (strcmp(json_string_value(json_object_get(sh, "id")), id) == 0)
            return sh;
    return NULL;
}

/* Whether parcel `id` of `order` is cancelled in the view (and, if so,
 * since when, as `at`). */
static bool parcel_cancelled(cs_store_t *s, const char *order, const char *id, const char *at)
{
    json_t *v = order_view(s, order);
    json_t *sh = view_parcel(v, id);
    if (!sh)
        fail_msg("order %s has no parcel %s", order, id);
    json_t *c = json_object_get(sh, "cancelled_at");
    bool yes = json_is_string(c);
    if (yes && at) {
        cs_ms_t want, got;
        assert_true(cs_time_parse(at, &want));
        assert_true(cs_time_parse(json_string_value(c), &got));
        assert_int_equal(got, want);
    }
    json_decref(v);
    return yes;
}

/* shipment.cancelled: a parcel the shop voided is kept in the view with
 * its cancellation, is no longer the order's parcel for the watch and the
 * journeys, and the order of arrival does not matter. */
static void test_cancelled_parcels(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    cs_order_track_t tr;
    cs_ingest_outcome_t out;
    int64_t seq;
    char buf[CS_ID_MAX + 1];
    put(s, order_ev("x1", "o-x", "2026-03-02T09:00:00Z", "10.00"), NULL);
    put(s, EV("x2", "shipment.created", "2026-03-02T10:00:00Z",
              "{\"id\":\"S-a\",\"order_id\":\"o-x\",\"carrier\":\"dhl\",\"tracking_number\":\"TA\"}"),
        NULL);
    put(s, EV("x3", "shipment.created", "2026-03-02T11:00:00Z",
              "{\"id\":\"S-b\",\"order_id\":\"o-x\",\"carrier\":\"dhl\",\"tracking_number\":\"TB\"}"),
        NULL);
    assert_int_equal(cs_store_call(s, order_track, "o-x", 0, &tr, &err), CS_OK);
    assert_string_equal(tr.shipment_id, "S-b"); /* the later one, until ... */
    /* the later label voided: the view keeps it, with when and why */
    assert_int_equal(put(s, EV("x4", "shipment.cancelled", "2026-03-02T12:00:00Z",
                               "{\"id\":\"S-b\",\"order_id\":\"o-x\",\"reason\":\"duplicate_label\"}"),
                         NULL),
                     CS_INGEST_NEW);
    json_t *v = order_view(s, "o-x");
    json_t *b = view_parcel(v, "S-b");
    assert_string_equal(json_string_value(json_object_get(b, "cancel_reason")), "duplicate_label");
    assert_true(json_is_null(json_object_get(view_parcel(v, "S-a"), "cancelled_at")));
    assert_true(json_is_null(json_object_get(view_parcel(v, "S-a"), "cancel_reason")));
    size_t i, types = 0;
    json_t *e;
    json_array_foreach(json_object_get(v, "timeline"), i, e)
        if (strcmp(json_string_value(json_object_get(e, "type")), "shipment.cancelled") == 0)
            types++;
    assert_int_equal(types, 1); /* in its order's timeline */
    json_decref(v);
    assert_true(parcel_cancelled(s, "o-x", "S-b", "2026-03-02T12:00:00Z"));
    /* ... the watch and the journeys follow the other one */
    assert_int_equal(cs_store_call(s, order_track, "o-x", 0, &tr, &err), CS_OK);
    assert_string_equal(tr.shipment_id, "S-a");
    assert_string_equal(ctx_parcel(s, "o-x", 0, buf), "S-a");
    json_t *cu, *o, *sh;
    assert_int_equal(cs_store_call(s, journey_context, NULL, "o-x", 0, CS_CTX_FULL, &cu, &o, &sh,
                                   &err),
                     CS_OK);
    assert_int_equal(json_array_size(json_object_get(o, "shipments")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "shipments_count")), 1);
    json_decref(cu);
    json_decref(o);
    json_decref(sh);
    /* the same cancellation again: a duplicate */
    assert_int_equal(put(s, EV("x4", "shipment.cancelled", "2026-03-02T12:00:00Z",
                               "{\"id\":\"S-b\",\"order_id\":\"o-x\",\"reason\":\"duplicate_label\"}"),
                         NULL),
                     CS_INGEST_DUPLICATE);
    /* a cancellation older than the parcel's latest announcement: nothing */
    put(s, EV("x5", "shipment.cancelled", "2026-03-02T09:30:00Z",
              "{\"id\":\"S-a\",\"order_id\":\"o-x\"}"),
        NULL);
    assert_false(parcel_cancelled(s, "o-x", "S-a", NULL));
    /* a scan of the cancelled parcel: shown, not counted, and no revival */
    put(s, EV("x6", "tracking.event", "2026-03-02T13:00:00Z",
              "{\"shipment_id\":\"S-b\",\"carrier\":\"dhl\",\"tracking_number\":\"TB\","
              "\"status\":\"in_transit\"}"),
        &seq);
    v = order_view(s, "o-x");
    b = view_parcel(v, "S-b");
    assert_int_equal(json_array_size(json_object_get(b, "scans")), 1);
    assert_true(json_is_null(json_object_get(b, "status")));
    json_decref(v);
    assert_true(parcel_cancelled(s, "o-x", "S-b", NULL));
    /* the journey that a scan of it starts sees it, cancelled */
    assert_int_equal(cs_store_call(s, journey_context, NULL, "o-x", seq, CS_CTX_FULL, &cu, &o, &sh,
                                   &err),
                     CS_OK);
    assert_string_equal(json_string_value(json_object_get(sh, "id")), "S-b");
    assert_true(json_is_string(json_object_get(sh, "cancelled_at")));
    assert_int_equal(json_array_size(json_object_get(o, "shipments")), 1);
    json_decref(cu);
    json_decref(o);
    json_decref(sh);
    /* announced again before the cancellation: still cancelled */
    put(s, EV("x7", "shipment.created", "2026-03-02T11:30:00Z",
              "{\"id\":\"S-b\",\"order_id\":\"o-x\",\"carrier\":\"dhl\",\"tracking_number\":\"TB\"}"),
        NULL);
    assert_true(parcel_cancelled(s, "o-x", "S-b", NULL));
    /* announced after it: revived, its scans counted */
    put(s, EV("x8", "shipment.created", "2026-03-02T14:00:00Z",
              "{\"id\":\"S-b\",\"order_id\":\"o-x\",\"carrier\":\"dhl\",\"tracking_number\":\"TB\"}"),
        NULL);
    assert_false(parcel_cancelled(s, "o-x", "S-b", NULL));
    v = order_view(s, "o-x");
    assert_string_equal(json_string_value(json_object_get(view_parcel(v, "S-b"), "status")),
                        "in_transit");
    assert_true(json_is_null(json_object_get(view_parcel(v, "S-b"), "cancel_reason")));
    json_decref(v);
    assert_int_equal(cs_store_call(s, order_track, "o-x", 0, &tr, &err), CS_OK);
    assert_string_equal(tr.shipment_id, "S-b");
    /* a cancellation older than that announcement changes nothing now */
    put(s, EV("x9", "shipment.cancelled", "2026-03-02T13:30:00Z",
              "{\"id\":\"S-b\",\"order_id\":\"o-x\"}"),
        NULL);
    assert_false(parcel_cancelled(s, "o-x", "S-b", NULL));

    /* before its announcement: kept, and applied by an older one ... */
    assert_int_equal(put(s, EV("x10", "shipment.cancelled", "2026-03-02T15:00:00Z",
                               "{\"id\":\"S-c\",\"order_id\":\"o-x\",\"reason\":\"void\"}"),
                         NULL),
                     CS_INGEST_NEW);
    v = order_view(s, "o-x");
    assert_null(view_parcel(v, "S-c"));
    json_decref(v);
    put(s, EV("x11", "shipment.created", "2026-03-02T14:30:00Z",
              "{\"id\":\"S-c\",\"order_id\":\"o-x\",\"carrier\":\"dhl\",\"tracking_number\":\"TC\"}"),
        NULL);
    assert_true(parcel_cancelled(s, "o-x", "S-c", "2026-03-02T15:00:00Z"));
    /* ... but not by a newer one */
    put(s, EV("x12", "shipment.cancelled", "2026-03-02T15:00:00Z",
              "{\"id\":\"S-d\",\"order_id\":\"o-x\"}"),
        NULL);
    put(s, EV("x13", "shipment.created", "2026-03-02T16:00:00Z",
              "{\"id\":\"S-d\",\"order_id\":\"o-x\",\"carrier\":\"dhl\",\"tracking_number\":\"TD\"}"),
        NULL);
    assert_false(parcel_cancelled(s, "o-x", "S-d", NULL));

    /* a delivered parcel cannot be cancelled: refused, naming data.id,
     * and nothing is logged */
    put(s, EV("x14", "tracking.event", "2026-03-03T10:00:00Z",
              "{\"shipment_id\":\"S-a\",\"carrier\":\"dhl\",\"tracking_number\":\"TA\","
              "\"status\":\"delivered\"}"),
        NULL);
    cs_event_t *ev = EV("x15", "shipment.cancelled", "2026-03-03T12:00:00Z",
                        "{\"id\":\"S-a\",\"order_id\":\"o-x\"}");
    assert_int_equal(cs_store_begin(s, &err), CS_OK);
    assert_int_equal(cs_store_ingest(s, ev, ev->occurred_at, &out, &seq, &err), CS_ERR_RULE);
    assert_string_equal(err.field, "data.id");
    assert_non_null(strstr(err.msg, "delivered"));
    cs_store_rollback(s);
    cs_event_free(&ev);
    assert_false(parcel_cancelled(s, "o-x", "S-a", NULL));
    assert_int_equal(put(s, EV("x15", "shipment.cancelled", "2026-03-03T12:00:00Z",
                               "{\"id\":\"S-c\",\"order_id\":\"o-x\"}"),
                         NULL),
                     CS_INGEST_NEW); /* (its id was not logged) */

    /* an order whose only parcel is cancelled is not shipped */
    put(s, order_ev("y1", "o-y", "2026-03-02T09:00:00Z", "10.00"), NULL);
    put(s, EV("y2", "shipment.created", "2026-03-02T10:00:00Z",
              "{\"id\":\"S-y\",\"order_id\":\"o-y\",\"carrier\":\"dhl\",\"tracking_number\":\"TY\"}"),
        NULL);
    put(s, EV("y3", "shipment.cancelled", "2026-03-02T11:00:00Z",
              "{\"id\":\"S-y\",\"order_id\":\"o-y\"}"),
        NULL);
    assert_int_equal(cs_store_call(s, order_track, "o-y", 0, &tr, &err), CS_OK);
    assert_false(tr.shipped);
    assert_string_equal(tr.shipment_id, "");
    /* the same parcel announced anew under another id (a fulfilment
     * cancelled and created again with its number) revives it */
    put(s, EV("y4", "shipment.created", "2026-03-02T12:00:00Z",
              "{\"id\":\"S-y2\",\"order_id\":\"o-y\",\"carrier\":\"dhl\",\"tracking_number\":\"TY\"}"),
        NULL);
    assert_false(parcel_cancelled(s, "o-y", "S-y", NULL));
    assert_int_equal(cs_store_call(s, order_track, "o-y", 0, &tr, &err), CS_OK);
    assert_true(tr.shipped);
    assert_string_equal(tr.shipment_id, "S-y");
    cs_store_close(&s);
}

static void test_region_arrival(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    cs_order_track_t tr;
    cs_delivery_row_t d;
    cs_ms_t t;
    int64_t r7;
    put(s, order_ev("r1", "o-r", "2026-03-02T09:00:00Z", "10.00"), NULL);
    put(s, EV("r2", "shipment.created", "2026-03-02T10:00:00Z",
              "{\"id\":\"S-r\",\"order_id\":\"o-r\",\"carrier\":\"dhl\",\"tracking_number\":\"TR\","
              "\"destination\":{\"country\":\"DE\",\"postal_code\":\"10115\"}}"),
        NULL);
    static const char *const way[][3] = {
        { "r3", "2026-03-02T18:00:00Z", "{\"city\":\"Leipzig\",\"postal_code\":\"04109\",\"country\":\"DE\"}" },
        { "r4", "2026-03-03T06:00:00Z", "{\"country\":\"DE\"}" },   /* a country says nothing */
        { "r5", "2026-03-03T09:00:00Z", "{\"city\":\"Berlin\",\"postal_code\":\"12099\",\"country\":\"DE\"}" },
        { "r6", "2026-03-03T11:00:00Z", "{\"city\":\"Berlin\",\"postal_code\":\"10117\",\"country\":\"DE\"}" },
    };
    for (int i = 0; i < 4; i++) {
        put(s,
            ev_of("{\"event_id\":\"%s\",\"type\":\"tracking.event\",\"occurred_at\":\"%s\","
                  "\"data\":{\"shipment_id\":\"S-r\",\"carrier\":\"dhl\",\"tracking_number\":"
                  "\"TR\",\"status\":\"in_transit\",\"location\":%s}}",
                  way[i][0], way[i][1], way[i][2]),
            NULL);
        assert_int_equal(cs_store_call(s, order_track, "o-r", 0, &tr, &err), CS_OK);
        if (i < 2) {
            assert_int_equal(tr.dest_since, 0);
        } else {
            assert_true(cs_time_parse("2026-03-03T09:00:00Z", &t)); /* Berlin's first */
            assert_int_equal(tr.dest_since, t);
        }
    }
    /* taken out of the region again (a depot next door): not there now */
    put(s, EV("r6b", "tracking.event", "2026-03-03T15:00:00Z",
              "{\"shipment_id\":\"S-r\",\"carrier\":\"dhl\",\"tracking_number\":\"TR\","
              "\"status\":\"in_transit\",\"location\":{\"city\":\"Potsdam\","
              "\"postal_code\":\"14467\",\"country\":\"DE\"}}"),
        NULL);
    assert_int_equal(cs_store_call(s, order_track, "o-r", 0, &tr, &err), CS_OK);
    assert_int_equal(tr.dest_since, 0);
    put(s, EV("r7", "tracking.event", "2026-03-04T10:00:00Z",
              "{\"shipment_id\":\"S-r\",\"carrier\":\"dhl\",\"tracking_number\":\"TR\","
              "\"status\":\"delivered\"}"),
        &r7);
    assert_int_equal(cs_store_call(s, delivery_of_scan, r7, &d, &err), CS_OK);
    assert_int_equal(d.dest_at, t);
    cs_delivery_row_t all;
    memset(&all, 0, sizeof all);
    assert_int_equal(cs_store_call(s, deliveries_each, keep_delivery, &all, &err), CS_OK);
    assert_int_equal(all.dest_at, t);
    /* a shipment without a destination: the order's shipping tells it */
    put(s, EV("r8", "order.placed", "2026-03-02T09:00:00Z",
              "{\"id\":\"o-r2\",\"customer_id\":\"c-r\",\"currency\":\"EUR\","
              "\"shipping\":{\"destination\":{\"country\":\"AT\",\"region\":\"Wien\"}},"
              "\"items\":[{\"sku\":\"a\",\"name\":\"A\",\"unit_price\":\"5.00\",\"quantity\":1}]}"),
        NULL);
    put(s, EV("r9", "shipment.created", "2026-03-02T10:00:00Z",
              "{\"id\":\"S-r2\",\"order_id\":\"o-r2\",\"carrier\":\"dpd\",\"tracking_number\":\"TR2\"}"),
        NULL);
    put(s, EV("r10", "tracking.event", "2026-03-03T10:00:00Z",
              "{\"shipment_id\":\"S-r2\",\"carrier\":\"dpd\",\"tracking_number\":\"TR2\","
              "\"status\":\"in_transit\",\"location\":{\"country\":\"AT\",\"region\":\"AT-9\"}}"),
        NULL);
    assert_int_equal(cs_store_call(s, order_track, "o-r2", 0, &tr, &err), CS_OK);
    assert_true(cs_time_parse("2026-03-03T10:00:00Z", &t));
    assert_int_equal(tr.dest_since, t); /* "Wien" and "AT-9" are one region */
    cs_store_close(&s);
}

/* A cancelled order is not the customer's last order: last_order_id
 * counts the orders orders_count, first_order_at and last_order_at count. */
static void test_last_order_not_cancelled(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    json_t *cu, *o, *sh;
    put(s, order_ev("l1", "1001", "2026-03-01T10:00:00Z", "8.90"), NULL);
    put(s, order_ev("l2", "1002", "2026-03-02T10:00:00Z", "20.00"), NULL);
    put(s, EV("l3", "order.cancelled", "2026-03-02T11:00:00Z", "{\"order_id\":\"1002\"}"),
        NULL);
    assert_int_equal(cs_store_call(s, journey_context, "c-7", "1001", 0, CS_CTX_FULL, &cu, &o,
                                   &sh, &err),
                     CS_OK);
    assert_int_equal(json_integer_value(json_object_get(cu, "orders_count")), 1);
    assert_string_equal(str_at(cu, "last_order_at"), "2026-03-01T10:00:00.000Z");
    assert_string_equal(str_at(cu, "last_order_id"), "1001");
    json_decref(cu);
    json_decref(o);
    json_decref(sh);
    /* the customer view's figures agree: orders counts both, beside the
     * cancelled one, first_order_at and last_order_at the one left */
    json_t *c = customer_view(s, "c-7");
    json_t *st = json_object_get(c, "stats");
    assert_int_equal(json_integer_value(json_object_get(st, "orders")), 2);
    assert_int_equal(json_integer_value(json_object_get(st, "cancelled_orders")), 1);
    assert_string_equal(str_at(st, "first_order_at"), "2026-03-01T10:00:00.000Z");
    assert_string_equal(str_at(st, "last_order_at"), "2026-03-01T10:00:00.000Z");
    json_decref(c);
    /* only cancelled orders: none is the last */
    put(s, EV("l4", "order.cancelled", "2026-03-02T12:00:00Z", "{\"order_id\":\"1001\"}"),
        NULL);
    assert_int_equal(cs_store_call(s, journey_context, "c-7", "1001", 0, CS_CTX_FULL, &cu, &o,
                                   &sh, &err),
                     CS_OK);
    assert_int_equal(json_integer_value(json_object_get(cu, "orders_count")), 0);
    assert_null(json_object_get(cu, "last_order_id"));
    json_decref(cu);
    json_decref(o);
    json_decref(sh);
    c = customer_view(s, "c-7");
    st = json_object_get(c, "stats");
    assert_int_equal(json_integer_value(json_object_get(st, "cancelled_orders")), 2);
    assert_true(json_is_null(json_object_get(st, "first_order_at")));
    assert_true(json_is_null(json_object_get(st, "last_order_at")));
    json_decref(c);
    cs_store_close(&s);
}

/* What a customer spent is net of what their returns gave back, the same
 * in the customer view's total_spent and for the compensation tier
 * (customer_totals): a refund's amount, the returned items' price when a
 * refunded return states none, nothing for a return under way, rejected
 * or closed without an amount, never below 0 for an order, and nothing at
 * all of a cancelled order. */
static cs_event_t *ret_ev(const char *id, const char *ret, const char *order, const char *at,
                          const char *items)
{
    return ev_of("{\"event_id\":\"%s\",\"type\":\"return.requested\",\"occurred_at\":\"%s\","
                 "\"data\":{\"id\":\"%s\",\"order_id\":\"%s\",\"resolution\":\"refund\","
                 "\"items\":%s}}",
                 id, at, ret, order, items);
}

static cs_event_t *ret_upd(const char *id, const char *ret, const char *at, const char *status,
                           const char *amount)
{
    if (!amount)
        return ev_of("{\"event_id\":\"%s\",\"type\":\"return.updated\",\"occurred_at\":\"%s\","
                     "\"data\":{\"id\":\"%s\",\"status\":\"%s\"}}",
                     id, at, ret, status);
    return ev_of("{\"event_id\":\"%s\",\"type\":\"return.updated\",\"occurred_at\":\"%s\","
                 "\"data\":{\"id\":\"%s\",\"status\":\"%s\",\"refund_amount\":\"%s\"}}",
                 id, at, ret, status, amount);
}

static void spent_is(cs_store_t *s, const char *eur, const char *chf, int64_t tier_eur,
                     int64_t tier_chf, int64_t tier_orders_n)
{
    cs_err_t err;
    int64_t orders, spent;
    cs_ms_t until;
    json_t *c = customer_view(s, "c-n");
    json_t *st = json_object_get(c, "stats");
    assert_string_equal(str_at(st, "total_spent.EUR"), eur);
    assert_string_equal(str_at(st, "total_spent.CHF"), chf);
    json_decref(c);
    assert_true(cs_time_parse("2026-04-01T00:00:00Z", &until));
    assert_int_equal(cs_store_call(s, customer_totals, "c-n", until, "EUR", &orders, &spent, &err),
                     CS_OK);
    assert_int_equal(orders, tier_orders_n);
    assert_int_equal(spent, tier_eur);
    assert_int_equal(cs_store_call(s, customer_totals, "c-n", until, "CHF", &orders, &spent, &err),
                     CS_OK);
    assert_int_equal(spent, tier_chf);
}

static void test_spent_net_of_refunds(void **state)
{
    cs_store_t *s = open_store(state);
    /* 2 x 20.00 + 10.00 shipping = 50.00 */
    put(s, EV("n1", "order.placed", "2026-03-01T10:00:00Z",
              "{\"id\":\"N1\",\"customer_id\":\"c-n\",\"currency\":\"EUR\",\"items\":[{\"sku\":"
              "\"A\",\"name\":\"A\",\"unit_price\":\"20.00\",\"quantity\":2}],"
              "\"totals\":{\"shipping\":\"10.00\"}}"),
        NULL);
    /* 3 x 10.00 - 3.00 + 7.00 = 34.00 */
    put(s, EV("n2", "order.placed", "2026-03-02T10:00:00Z",
              "{\"id\":\"N2\",\"customer_id\":\"c-n\",\"currency\":\"EUR\",\"items\":[{\"sku\":"
              "\"B\",\"name\":\"B\",\"unit_price\":\"10.00\",\"quantity\":3,\"discount\":\"3.00\"},"
              "{\"sku\":\"C\",\"name\":\"C\",\"unit_price\":\"7.00\",\"quantity\":1}]}"),
        NULL);
    put(s, EV("n3", "order.placed", "2026-03-03T10:00:00Z",
              "{\"id\":\"N3\",\"customer_id\":\"c-n\",\"currency\":\"CHF\",\"items\":[{\"sku\":"
              "\"A\",\"name\":\"A\",\"unit_price\":\"100.00\",\"quantity\":1}]}"),
        NULL);
    put(s, EV("n4", "order.placed", "2026-03-04T10:00:00Z",
              "{\"id\":\"N4\",\"customer_id\":\"c-n\",\"currency\":\"EUR\",\"items\":[{\"sku\":"
              "\"A\",\"name\":\"A\",\"unit_price\":\"40.00\",\"quantity\":1}]}"),
        NULL);
    put(s, EV("n5", "order.cancelled", "2026-03-04T11:00:00Z", "{\"order_id\":\"N4\"}"), NULL);
    spent_is(s, "84.00", "100.00", 8400, 10000, 3);

    /* a refund under way (an amount already said) gives nothing back yet */
    put(s, ret_ev("r1", "R1", "N1", "2026-03-10T10:00:00Z", "[{\"sku\":\"A\",\"quantity\":1}]"),
        NULL);
    put(s, ret_upd("r2", "R1", "2026-03-11T10:00:00Z", "received", "20.00"), NULL);
    spent_is(s, "84.00", "100.00", 8400, 10000, 3);
    /* refunded, and still so once closed */
    put(s, ret_upd("r3", "R1", "2026-03-12T10:00:00Z", "refunded", "20.00"), NULL);
    spent_is(s, "64.00", "100.00", 6400, 10000, 3);
    put(s, ret_upd("r4", "R1", "2026-03-13T10:00:00Z", "closed", NULL), NULL);
    spent_is(s, "64.00", "100.00", 6400, 10000, 3);
    /* a rejected return gave nothing back, whatever amount it named */
    put(s, ret_ev("r5", "R2", "N2", "2026-03-10T10:00:00Z", "[{\"sku\":\"B\",\"quantity\":1}]"),
        NULL);
    put(s, ret_upd("r6", "R2", "2026-03-11T10:00:00Z", "rejected", "9.00"), NULL);
    spent_is(s, "64.00", "100.00", 6400, 10000, 3);
    /* refunded without an amount: the items at what was paid for them,
     * 2 of 3 B (27.00 after the line's discount) and the one C (asked 5) */
    put(s, ret_ev("r7", "R3", "N2", "2026-03-10T10:00:00Z",
                  "[{\"sku\":\"B\",\"quantity\":2},{\"sku\":\"C\",\"quantity\":5},"
                  "{\"sku\":\"Z\",\"quantity\":1}]"),
        NULL);
    put(s, ret_upd("r8", "R3", "2026-03-12T10:00:00Z", "refunded", NULL), NULL);
    spent_is(s, "39.00", "100.00", 3900, 10000, 3);
    /* closed without an amount (store credit, an exchange): nothing */
    put(s, ret_ev("r9", "R4", "N3", "2026-03-10T10:00:00Z", "[{\"sku\":\"A\",\"quantity\":1}]"),
        NULL);
    put(s, ret_upd("r10", "R4", "2026-03-12T10:00:00Z", "closed", NULL), NULL);
    spent_is(s, "39.00", "100.00", 3900, 10000, 3);
    /* more given back than was paid (a goodwill top-up): 0, not less; N3
     * sent back whole, the tier does not count it (its only item) */
    put(s, ret_ev("r11", "R5", "N3", "2026-03-10T10:00:00Z", "[{\"sku\":\"A\",\"quantity\":1}]"),
        NULL);
    put(s, ret_upd("r12", "R5", "2026-03-12T10:00:00Z", "refunded", "150.00"), NULL);
    spent_is(s, "39.00", "0.00", 3900, 0, 2);
    /* a cancelled order's refund takes nothing off the others */
    put(s, ret_ev("r13", "R6", "N4", "2026-03-10T10:00:00Z", "[{\"sku\":\"A\",\"quantity\":1}]"),
        NULL);
    put(s, ret_upd("r14", "R6", "2026-03-12T10:00:00Z", "refunded", "40.00"), NULL);
    spent_is(s, "39.00", "0.00", 3900, 0, 2);
    cs_store_close(&s);
}

/* What customer c-g spent (total_spent in EUR, the compensation tier's
 * spent) and the average of its orders other than G1 as a journey sees it
 * (from the customer's tally). */
static void kept_is(cs_store_t *s, const char *eur, double others_average)
{
    cs_err_t err;
    int64_t orders, spent;
    cs_ms_t until;
    json_t *c = customer_view(s, "c-g");
    assert_string_equal(str_at(json_object_get(c, "stats"), "total_spent.EUR"), eur);
    json_decref(c);
    assert_true(cs_time_parse("2026-04-01T00:00:00Z", &until));
    assert_int_equal(cs_store_call(s, customer_totals, "c-g", until, "EUR", &orders, &spent, &err),
                     CS_OK);
    assert_int_equal(spent, (int64_t)(strtod(eur, NULL) * 100 + 0.5));
    json_t *cu, *o, *sh;
    assert_int_equal(cs_store_call(s, journey_context, "c-g", "G1", 0, CS_CTX_FULL, &cu, &o, &sh,
                                   &err),
                     CS_OK);
    assert_float_equal(json_real_value(json_object_get(o, "other_orders_average")),
                       others_average, 1e-9);
    json_decref(cu);
    json_decref(o);
    json_decref(sh);
}

/* A return gives money back when it is refunded -- a `refunded` update,
 * or one that closes it naming the amount -- and not before, whatever
 * amount an update names while it is under way; it stays so while later
 * updates say where it is (received after the refund, closed), unless
 * it was rejected after it, in whatever order the updates arrive. Seven orders of 50.00 (2 x 20.00 and 10.00 shipping), one
 * return of both items each. */
static void test_spent_only_once_refunded(void **state)
{
    cs_store_t *s = open_store(state);
    for (int i = 1; i <= 7; i++) {
        put(s, ev_of("{\"event_id\":\"gp%d\",\"type\":\"order.placed\",\"occurred_at\":"
                     "\"2026-03-0%dT10:00:00Z\",\"data\":{\"id\":\"G%d\",\"customer_id\":"
                     "\"c-g\",\"currency\":\"EUR\",\"items\":[{\"sku\":\"A\",\"name\":"
                     "\"A\",\"unit_price\":\"20.00\",\"quantity\":2}],\"totals\":"
                     "{\"shipping\":\"10.00\"}}}",
                     i, i, i),
            NULL);
        char ev[16], ret[8], order[8];
        snprintf(ev, sizeof ev, "gr%d", i);
        snprintf(ret, sizeof ret, "GR%d", i);
        snprintf(order, sizeof order, "G%d", i);
        put(s, ret_ev(ev, ret, order, "2026-03-10T10:00:00Z", "[{\"sku\":\"A\",\"quantity\":2}]"),
            NULL);
    }
    kept_is(s, "350.00", 50.0);
    /* G1: an amount named while approved, then closed without one (store
     * credit after all): nothing given back */
    put(s, ret_upd("g1a", "GR1", "2026-03-11T10:00:00Z", "approved", "15.00"), NULL);
    kept_is(s, "350.00", 50.0);
    put(s, ret_upd("g1b", "GR1", "2026-03-12T10:00:00Z", "closed", NULL), NULL);
    kept_is(s, "350.00", 50.0);
    /* G2: approved with an amount, rejected, closed: nothing */
    put(s, ret_upd("g2a", "GR2", "2026-03-11T10:00:00Z", "approved", "15.00"), NULL);
    put(s, ret_upd("g2b", "GR2", "2026-03-12T10:00:00Z", "rejected", NULL), NULL);
    put(s, ret_upd("g2c", "GR2", "2026-03-13T10:00:00Z", "closed", NULL), NULL);
    kept_is(s, "350.00", 50.0);
    /* G3: refunded without an amount (the items, 40.00), and still so once
     * closed */
    put(s, ret_upd("g3a", "GR3", "2026-03-12T10:00:00Z", "refunded", NULL), NULL);
    kept_is(s, "310.00", 260.0 / 6);
    put(s, ret_upd("g3b", "GR3", "2026-03-13T10:00:00Z", "closed", NULL), NULL);
    kept_is(s, "310.00", 260.0 / 6);
    /* G4: refunded before the parcel came back, then received: still
     * refunded */
    put(s, ret_upd("g4a", "GR4", "2026-03-12T10:00:00Z", "refunded", "15.00"), NULL);
    put(s, ret_upd("g4b", "GR4", "2026-03-13T10:00:00Z", "received", NULL), NULL);
    kept_is(s, "295.00", 245.0 / 6);
    /* G5: refunded, then rejected, then closed: nothing */
    put(s, ret_upd("g5a", "GR5", "2026-03-12T10:00:00Z", "refunded", "15.00"), NULL);
    kept_is(s, "280.00", 230.0 / 6);
    put(s, ret_upd("g5b", "GR5", "2026-03-13T10:00:00Z", "rejected", NULL), NULL);
    kept_is(s, "295.00", 245.0 / 6);
    put(s, ret_upd("g5c", "GR5", "2026-03-14T10:00:00Z", "closed", NULL), NULL);
    kept_is(s, "295.00", 245.0 / 6);
    /* G6: closed naming the amount, without a `refunded` before: given */
    put(s, ret_upd("g6a", "GR6", "2026-03-12T10:00:00Z", "closed", "15.00"), NULL);
    kept_is(s, "280.00", 230.0 / 6);
    /* G7: rejected, and a refund dated before the rejection arriving
     * after it: nothing */
    put(s, ret_upd("g7a", "GR7", "2026-03-13T10:00:00Z", "rejected", NULL), NULL);
    put(s, ret_upd("g7b", "GR7", "2026-03-12T10:00:00Z", "refunded", "15.00"), NULL);
    kept_is(s, "280.00", 230.0 / 6);
    cs_store_close(&s);
}

/* How many orders of customer c-s the compensation tier counts, and what
 * it spent (EUR), over the orders placed until April. */
static int64_t tier_orders(cs_store_t *s, int64_t *spent)
{
    cs_err_t err;
    int64_t orders;
    cs_ms_t until;
    assert_true(cs_time_parse("2026-04-01T00:00:00Z", &until));
    assert_int_equal(cs_store_call(s, customer_totals, "c-s", until, "EUR", &orders, spent, &err),
                     CS_OK);
    return orders;
}

/* An order every item of which the customer sent back and was refunded
 * for is no order for the compensation tier (vip_orders, a regular's two):
 * a customer who sends everything back does not become a regular or a VIP
 * by it. Its items may come back in several returns; one still under way,
 * rejected after its refund, or of only some of the items leaves the order
 * counted. S1 and S2: 2 x A at 20.00 and 1 x B at 10.00 each. */
static void test_tier_orders_not_sent_back(void **state)
{
    cs_store_t *s = open_store(state);
    int64_t spent;
    for (int i = 1; i <= 2; i++)
        put(s, ev_of("{\"event_id\":\"sp%d\",\"type\":\"order.placed\",\"occurred_at\":"
                     "\"2026-03-0%dT10:00:00Z\",\"data\":{\"id\":\"S%d\",\"customer_id\":"
                     "\"c-s\",\"currency\":\"EUR\",\"items\":[{\"sku\":\"A\",\"name\":"
                     "\"A\",\"unit_price\":\"20.00\",\"quantity\":2},{\"sku\":\"B\","
                     "\"name\":\"B\",\"unit_price\":\"10.00\",\"quantity\":1}]}}",
                     i, i, i),
            NULL);
    assert_int_equal(tier_orders(s, &spent), 2);
    assert_int_equal(spent, 10000);
    /* S2: one A and the B sent back and refunded: still an order */
    put(s, ret_ev("sr1", "SR1", "S2", "2026-03-10T10:00:00Z",
                  "[{\"sku\":\"A\",\"quantity\":1},{\"sku\":\"B\",\"quantity\":1}]"),
        NULL);
    put(s, ret_upd("sr2", "SR1", "2026-03-12T10:00:00Z", "refunded", NULL), NULL);
    assert_int_equal(tier_orders(s, &spent), 2);
    assert_int_equal(spent, 7000);
    /* the other A in a second return, under way: still an order */
    put(s, ret_ev("sr3", "SR2", "S2", "2026-03-13T10:00:00Z", "[{\"sku\":\"A\",\"quantity\":1}]"),
        NULL);
    put(s, ret_upd("sr4", "SR2", "2026-03-14T10:00:00Z", "received", "20.00"), NULL);
    assert_int_equal(tier_orders(s, &spent), 2);
    /* refunded: every item of S2 came back and was refunded */
    put(s, ret_upd("sr5", "SR2", "2026-03-15T10:00:00Z", "refunded", NULL), NULL);
    assert_int_equal(tier_orders(s, &spent), 1);
    assert_int_equal(spent, 5000);
    /* and stays so once the return is closed */
    put(s, ret_upd("sr6", "SR2", "2026-03-16T10:00:00Z", "closed", NULL), NULL);
    assert_int_equal(tier_orders(s, &spent), 1);
    /* rejected after its refund: S2 counts again */
    put(s, ret_upd("sr7", "SR2", "2026-03-17T10:00:00Z", "rejected", NULL), NULL);
    assert_int_equal(tier_orders(s, &spent), 2);
    assert_int_equal(spent, 7000);
    /* S1: everything in one return, refunded (less than paid: a deduction
     * for wear), more B than bought named: not an order */
    put(s, ret_ev("sr8", "SR3", "S1", "2026-03-10T10:00:00Z",
                  "[{\"sku\":\"A\",\"quantity\":2},{\"sku\":\"B\",\"quantity\":3}]"),
        NULL);
    put(s, ret_upd("sr9", "SR3", "2026-03-12T10:00:00Z", "refunded", "45.00"), NULL);
    assert_int_equal(tier_orders(s, &spent), 1);
    assert_int_equal(spent, 2500);
    /* the customer view still counts both orders */
    json_t *c = customer_view(s, "c-s");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "stats"), "orders")),
                     2);
    json_decref(c);
    cs_store_close(&s);
}

static cs_event_t *placed_ev(const char *id, const char *order, const char *customer,
                             const char *at, const char *price)
{
    return ev_of("{\"event_id\":\"%s\",\"type\":\"order.placed\",\"occurred_at\":\"%s\",\"data\":"
                 "{\"id\":\"%s\",\"customer_id\":\"%s\",\"currency\":\"EUR\",\"placed_at\":\"%s\","
                 "\"items\":[{\"sku\":\"KAF\",\"name\":\"Kaffee\",\"unit_price\":\"%s\","
                 "\"quantity\":1}]}}",
                 id, at, order, customer, at, price);
}

/* What journey_context says of order `order` and its customer `cust`: the
 * counts, the average (avg < 0: null) and ratio, the first and last order */
static void figures_are(cs_store_t *s, const char *cust, const char *order, int64_t count,
                        int64_t others, int64_t before, double avg, const char *first,
                        const char *last, const char *last_id)
{
    json_t *cu, *o, *sh;
    cs_err_t err;
    assert_int_equal(cs_store_call(s, journey_context, cust, order, 0, CS_CTX_FULL, &cu, &o, &sh,
                                   &err),
                     CS_OK);
    assert_int_equal(json_integer_value(json_object_get(cu, "orders_count")), count);
    assert_int_equal(json_integer_value(json_object_get(o, "other_orders")), others);
    assert_int_equal(json_integer_value(json_object_get(o, "orders_before")), before);
    if (avg < 0) {
        assert_true(json_is_null(json_object_get(o, "other_orders_average")));
        assert_true(json_is_null(json_object_get(o, "price_ratio")));
    } else {
        assert_true(json_is_real(json_object_get(o, "other_orders_average")));
        assert_float_equal(json_real_value(json_object_get(o, "other_orders_average")), avg, 1e-9);
        assert_float_equal(json_real_value(json_object_get(o, "price_ratio")),
                           json_number_value(json_object_get(o, "total")) / avg, 1e-9);
    }
    assert_string_equal(str_at(cu, "first_order_at"), first);
    assert_string_equal(str_at(cu, "last_order_at"), last);
    assert_string_equal(str_at(cu, "last_order_id"), last_id);
    json_decref(cu);
    json_decref(o);
    json_decref(sh);
}

/* The context's figures (read from the customer's tally and the index of
 * its orders, not a pass over them) follow every change of the orders: an
 * edit, a cancellation, refunds in part and in full, a return named again
 * for another order, and an order given to another customer. */
static void test_context_figures_follow_changes(void **state)
{
    cs_store_t *s = open_store(state);
    const char *d1 = "2026-04-01T10:00:00.000Z", *d2 = "2026-04-02T10:00:00.000Z",
               *d3 = "2026-04-03T10:00:00.000Z", *d4 = "2026-04-04T10:00:00.000Z";
    put(s, placed_ev("g1", "A1", "c-9", "2026-04-01T10:00:00Z", "10.00"), NULL);
    put(s, placed_ev("g2", "A2", "c-9", "2026-04-02T10:00:00Z", "20.00"), NULL);
    put(s, placed_ev("g3", "A3", "c-9", "2026-04-03T10:00:00Z", "30.00"), NULL);
    figures_are(s, "c-9", "A3", 3, 2, 2, 15.0, d1, d3, "A3");
    figures_are(s, "c-9", "A1", 3, 2, 0, 25.0, d1, d3, "A3");
    /* an edit: A2 at 40 */
    put(s, EV("g4", "order.placed", "2026-04-05T10:00:00Z",
              "{\"id\":\"A2\",\"customer_id\":\"c-9\",\"currency\":\"EUR\",\"items\":[{\"sku\":"
              "\"KAF\",\"name\":\"Kaffee\",\"unit_price\":\"40.00\",\"quantity\":1}]}"),
        NULL);
    figures_are(s, "c-9", "A3", 3, 2, 2, 25.0, d1, d3, "A3");
    /* cancelled: A1 no longer counts, nor is it the first */
    put(s, EV("g5", "order.cancelled", "2026-04-05T11:00:00Z", "{\"order_id\":\"A1\"}"), NULL);
    figures_are(s, "c-9", "A3", 2, 1, 1, 40.0, d2, d3, "A3");
    figures_are(s, "c-9", "A1", 2, 2, 0, 35.0, d2, d3, "A3");
    /* A4, refunded in part: 50 paid, 10 back */
    put(s, placed_ev("g6", "A4", "c-9", "2026-04-04T10:00:00Z", "50.00"), NULL);
    put(s, ret_ev("g7", "R1", "A4", "2026-04-06T10:00:00Z", "[{\"sku\":\"KAF\",\"quantity\":1}]"),
        NULL);
    figures_are(s, "c-9", "A3", 3, 2, 1, 45.0, d2, d4, "A4");
    put(s, ret_upd("g8", "R1", "2026-04-07T10:00:00Z", "refunded", "10.00"), NULL);
    figures_are(s, "c-9", "A3", 3, 2, 1, 40.0, d2, d4, "A4");
    figures_are(s, "c-9", "A4", 3, 2, 2, 35.0, d2, d4, "A4");
    /* A2 refunded in full: left out of the average */
    put(s, ret_ev("g9", "R2", "A2", "2026-04-06T10:00:00Z", "[{\"sku\":\"KAF\",\"quantity\":1}]"),
        NULL);
    put(s, ret_upd("g10", "R2", "2026-04-07T10:00:00Z", "refunded", NULL), NULL);
    figures_are(s, "c-9", "A3", 3, 2, 1, 40.0, d2, d4, "A4");
    figures_are(s, "c-9", "A4", 3, 2, 2, 30.0, d2, d4, "A4");
    /* the return of A2 named again for A3: A2 is kept whole, A3 is not */
    put(s, ret_ev("g11", "R2", "A3", "2026-04-06T10:00:00Z", "[{\"sku\":\"KAF\",\"quantity\":1}]"),
        NULL);
    figures_are(s, "c-9", "A4", 3, 2, 2, 40.0, d2, d4, "A4");
    figures_are(s, "c-9", "A2", 3, 2, 0, 40.0, d2, d4, "A4");
    /* A4 given to another customer: c-9 has two left, c-10 one */
    put(s, EV("g12", "order.placed", "2026-04-08T10:00:00Z",
              "{\"id\":\"A4\",\"customer_id\":\"c-10\",\"currency\":\"EUR\",\"items\":[{\"sku\":"
              "\"KAF\",\"name\":\"Kaffee\",\"unit_price\":\"50.00\",\"quantity\":1}]}"),
        NULL);
    figures_are(s, "c-9", "A2", 2, 1, 0, -1, d2, d3, "A3");
    figures_are(s, "c-9", "A3", 2, 1, 1, 40.0, d2, d3, "A3");
    figures_are(s, "c-10", "A4", 1, 0, 0, -1, d4, d4, "A4");
    cs_store_close(&s);
}

/* The figures journeys read of an order and its customer (docs/journeys.md),
 * the same on every backend: cancelled orders are not counted, and an
 * order's price_ratio compares it with the customer's other orders in its
 * own currency -- 100 francs are not 100 euros. */
static void test_context_figures(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    put(s, order_ev("f1", "1001", "2026-03-01T10:00:00Z", "8.90"), NULL);  /* 22.70 */
    put(s, order_ev("f2", "1002", "2026-03-02T10:00:00Z", "20.00"), NULL); /* 44.90 */
    put(s, order_ev("f3", "1003", "2026-03-03T10:00:00Z", "5.00"), NULL);  /* 14.90 */
    put(s, EV("f4", "order.cancelled", "2026-03-03T11:00:00Z", "{\"order_id\":\"1003\"}"), NULL);
    put(s, EV("f5", "order.placed", "2026-03-04T10:00:00Z",
              "{\"id\":\"1004\",\"customer_id\":\"c-7\",\"currency\":\"CHF\",\"items\":[{\"sku\":"
              "\"KAF\",\"name\":\"Kaffee\",\"unit_price\":\"100.00\",\"quantity\":1}]}"),
        NULL);
    put(s, EV("f6", "return.requested", "2026-03-05T12:00:00Z",
              "{\"id\":\"R1\",\"order_id\":\"1002\",\"resolution\":\"refund\",\"items\":[{\"sku\":"
              "\"KAF\",\"quantity\":1}]}"),
        NULL);
    json_t *cu, *o, *sh;
    assert_int_equal(cs_store_call(s, journey_context, "c-7", "1002", 0, CS_CTX_FULL, &cu, &o,
                                   &sh, &err),
                     CS_OK);
    assert_int_equal(json_integer_value(json_object_get(o, "other_orders")), 2);
    assert_int_equal(json_integer_value(json_object_get(o, "orders_before")), 1);
    assert_true(json_is_real(json_object_get(o, "other_orders_average")));
    assert_float_equal(json_real_value(json_object_get(o, "other_orders_average")), 22.70, 1e-9);
    assert_float_equal(json_real_value(json_object_get(o, "price_ratio")), 44.90 / 22.70, 1e-9);
    assert_int_equal(json_integer_value(json_object_get(o, "items_count")), 2);
    assert_true(json_is_true(json_object_get(o, "refund_pending")));
    /* (the journeys judge it by the contact policy: ticket_open) */
    assert_null(json_object_get(o, "ticket_open"));
    assert_int_equal(json_integer_value(json_object_get(cu, "orders_count")), 3);
    assert_string_equal(str_at(cu, "first_order_at"), "2026-03-01T10:00:00.000Z");
    assert_string_equal(str_at(cu, "last_order_at"), "2026-03-04T10:00:00.000Z");
    json_decref(cu);
    json_decref(o);
    json_decref(sh);
    /* the only order in francs: nothing to compare it with */
    assert_int_equal(cs_store_call(s, journey_context, "c-7", "1004", 0, CS_CTX_FULL, &cu, &o,
                                   &sh, &err),
                     CS_OK);
    assert_int_equal(json_integer_value(json_object_get(o, "other_orders")), 2);
    assert_int_equal(json_integer_value(json_object_get(o, "orders_before")), 2);
    assert_true(json_is_null(json_object_get(o, "other_orders_average")));
    assert_true(json_is_null(json_object_get(o, "price_ratio")));
    json_decref(cu);
    json_decref(o);
    json_decref(sh);
    /* the API's stats count every order, spent only what was not cancelled */
    json_t *c = customer_view(s, "c-7");
    json_t *st = json_object_get(c, "stats");
    assert_int_equal(json_integer_value(json_object_get(st, "orders")), 4);
    assert_int_equal(json_integer_value(json_object_get(st, "cancelled_orders")), 1);
    assert_string_equal(str_at(st, "total_spent.EUR"), "67.60");
    assert_string_equal(str_at(st, "total_spent.CHF"), "100.00");
    json_decref(c);
    /* refunded, then its parcel received: no refund is pending any more */
    put(s, ret_upd("f7", "R1", "2026-03-06T10:00:00Z", "refunded", "20.00"), NULL);
    put(s, ret_upd("f8", "R1", "2026-03-07T10:00:00Z", "received", NULL), NULL);
    assert_int_equal(cs_store_call(s, journey_context, "c-7", "1002", 0, CS_CTX_FULL, &cu, &o,
                                   &sh, &err),
                     CS_OK);
    assert_true(json_is_false(json_object_get(o, "refund_pending")));
    json_decref(cu);
    json_decref(o);
    json_decref(sh);
    cs_store_close(&s);
}

/* The average of the customer's other orders is of what the customer paid
 * and kept (their totals less what their returns gave back, as total_spent
 * counts it): an order refunded in full is no purchase to compare with, one
 * refunded in part counts at what is left, one whose refund is still to
 * come at its total (docs/journeys.md, price_ratio). */
static void test_context_average_net_of_refunds(void **state)
{
    cs_store_t *s = open_store(state);
    cs_err_t err;
    put(s, order_ev("a1", "1001", "2026-03-01T10:00:00Z", "8.90"), NULL);  /* 22.70 */
    put(s, order_ev("a2", "1002", "2026-03-09T10:00:00Z", "20.00"), NULL); /* 44.90 */
    put(s, order_ev("a3", "1003", "2026-03-02T10:00:00Z", "50.00"), NULL); /* 104.90 */
    put(s, order_ev("a4", "1004", "2026-03-03T10:00:00Z", "30.00"), NULL); /* 64.90 */
    put(s, order_ev("a5", "1005", "2026-03-04T10:00:00Z", "10.00"), NULL); /* 24.90 */
    static const char *const rets[][2] = { { "R1", "1003" }, { "R2", "1004" }, { "R3", "1005" } };
    for (size_t i = 0; i < 3; i++)
        put(s, ev_of("{\"event_id\":\"rq-%s\",\"type\":\"return.requested\",\"occurred_at\":"
                     "\"2026-03-05T10:00:00Z\",\"data\":{\"id\":\"%s\",\"order_id\":\"%s\","
                     "\"resolution\":\"refund\",\"items\":[{\"sku\":\"KAF\",\"quantity\":2}]}}",
                     rets[i][0], rets[i][0], rets[i][1]),
            NULL);
    put(s, ret_upd("rf1", "R1", "2026-03-06T10:00:00Z", "refunded", "104.90"), NULL); /* all */
    put(s, ret_upd("rf2", "R2", "2026-03-06T10:00:00Z", "refunded", "20.00"), NULL);  /* 44.90 */
    /* (R3 is requested, its refund still to come: 1005 counts at 24.90) */
    json_t *cu, *o, *sh;
    assert_int_equal(cs_store_call(s, journey_context, "c-7", "1002", 0, CS_CTX_FULL, &cu, &o,
                                   &sh, &err),
                     CS_OK);
    assert_int_equal(json_integer_value(json_object_get(o, "other_orders")), 4);
    assert_int_equal(json_integer_value(json_object_get(o, "orders_before")), 4);
    double avg = (22.70 + 44.90 + 24.90) / 3;
    assert_float_equal(json_real_value(json_object_get(o, "other_orders_average")), avg, 1e-9);
    assert_float_equal(json_real_value(json_object_get(o, "price_ratio")), 44.90 / avg, 1e-9);
    json_decref(cu);
    json_decref(o);
    json_decref(sh);
    cs_store_close(&s);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: store_conformance TARGET   (TARGET may contain {tmp})\n");
        return 2;
    }
    snprintf(target, sizeof target, "%s", argv[1]);
    is_memory = strstr(target, ":memory:") != NULL;
    snprintf(tmpdir, sizeof tmpdir, "%s/cs-conformance-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (strstr(target, "{tmp}") && !mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_migrate_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_ingest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_customers_by_phone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_type_folds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scans_before_their_shipment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_scan_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_updates_before_creates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ticket_updates_before_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ticket_first_creation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_returns_are_the_customers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_events_are_the_customers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ticket_of_another_customers_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_and_update_same_instant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_older_create_sent_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_sent_again_keeps_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_twice_keeps_first_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_customer_partial_and_ordered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_customer_fields_newest_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_customer_attributes_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_discards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readers_see_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journey_versions_and_switches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runs_and_timers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runs_active_of_an_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runs_active_in_journeys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_find_by_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_move, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_requeue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_status_of_another_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_status_takes_its_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_address_bounced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursors_codes_contacts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stops_past_many_bounces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stops_start_over_per_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_watch_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_region_arrival, setup, teardown),
        cmocka_unit_test_setup_teardown(test_followed_parcel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_parcels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deliveries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivered_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wakeups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_context_figures_follow_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_context_figures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_context_average_net_of_refunds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_order_not_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spent_net_of_refunds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spent_only_once_refunded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tier_orders_not_sent_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_stats_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_stats_ticket_at, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feedback_and_signal_of_another_customers_order,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_feedback_and_signal_before_another_customers_order,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_given_to_another_customer, setup, teardown),
        cmocka_unit_test(test_bad_targets),
    };
    int failed = cmocka_run_group_tests_name(target, tests, NULL, NULL);
    if (strstr(target, "{tmp}")) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return failed;
}
