/*
 * conformance.c -- the store conformance suite. It speaks only store.h, so
 * every backend runs it unchanged:
 *
 *     store_conformance "sqlite:{tmp}/conf.db"     ({tmp} = a fresh folder)
 *     store_conformance "sqlite::memory:"
 *
 * Covered: migrations on a fresh store and reopening, idempotent ingest,
 * every event type folded into the views, out-of-order arrival (stubs,
 * older updates, scans before their shipment), partial customer updates,
 * rollback, the event log query, counts, API keys, durability across
 * reopen and reader handles (file targets only).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

static char target[1024];
static char tmpdir[256];
static bool is_memory;
static int test_no;

/* A fresh store per test: file targets get their own file. */
static int setup(void **state)
{
    char t[1024];
    const char *p = strstr(target, "{tmp}");
    test_no++;
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

/* Ingest one event in its own transaction; returns the outcome. */
static cs_ingest_outcome_t put(cs_store_t *s, cs_event_t *ev, int64_t *seq_out)
{
    cs_err_t err;
    cs_ingest_outcome_t out;
    int64_t seq = 0;
    assert_int_equal(cs_store_begin(s, &err), CS_OK);
    if (cs_store_ingest(s, ev, 1772400000000LL, &out, &seq, &err) != CS_OK)
        fail_msg("ingest %s: %s", ev->event_id, err.msg);
    assert_int_equal(cs_store_commit(s, &err), CS_OK);
    assert_true(seq > 0);
    if (seq_out)
        *seq_out = seq;
    cs_event_free(&ev);
    return out;
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
    assert_string_equal(str_at(c, "stats.total_spent.EUR"), "22.70");
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
    /* the carrier is faster than the shop: two scans, then the shipment */
    put(s, EV("k2", "tracking.event", "2026-03-03T09:00:00Z",
              "{\"carrier\":\"dpd\",\"tracking_number\":\"X9\",\"status\":\"out_for_delivery\"}"),
        NULL);
    put(s, EV("k1", "tracking.event", "2026-03-02T09:00:00Z",
              "{\"shipment_id\":\"sh9\",\"carrier\":\"dpd\",\"tracking_number\":\"X9\",\"status\":\"in_transit\"}"),
        NULL);
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

    /* an older scan arriving late does not turn the status back */
    put(s, EV("k0", "tracking.event", "2026-03-02T08:30:00Z",
              "{\"carrier\":\"dpd\",\"tracking_number\":\"X9\",\"status\":\"info_received\"}"),
        NULL);
    o = order_view(s, "1001");
    assert_string_equal(str_at(o, "shipments.0.status"), "out_for_delivery");
    assert_string_equal(str_at(o, "shipments.0.scans.0.status"), "info_received");
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
    json_decref(c);
    json_t *v = NULL;
    assert_int_equal(cs_store_customer_view(s, "nobody", &v, NULL), CS_ERR_NOTFOUND);

    /* an order edit: newer replaces, older is ignored */
    put(s, order_ev("o1b", "1001", "2026-03-01T11:00:00Z", "9.90"), NULL);
    put(s, order_ev("o1a", "1001", "2026-03-01T10:30:00Z", "1.00"), NULL);
    v = order_view(s, "1001");
    assert_string_equal(str_at(v, "items.0.unit_price"), "9.90");
    json_decref(v);
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
    /* the same event can come again and is new */
    assert_int_equal(put(s, order_ev("o1", "1001", "2026-03-01T10:00:00Z", "8.90"), NULL), CS_INGEST_NEW);
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
        cmocka_unit_test_setup_teardown(test_every_type_folds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scans_before_their_shipment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_updates_before_creates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_customer_partial_and_ordered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_discards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readers_see_commits, setup, teardown),
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
