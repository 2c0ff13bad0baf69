/*
 * sql_views.c -- the JSON views of current state: a customer, an order
 * with everything that concerns it, and pages of the event log. The shapes
 * are the API's (docs/api.md) and identical across backends; the
 * conformance suite checks them through store.h.
 *
 * Ownership: every view returns an owned json_t.
 */
#include "sql_int.h"

#include <string.h>

/* ---- value helpers: NULL columns become JSON null ---- */

static json_t *j_text(sql_stmt *st, int i)
{
    const char *v = cs__col_text(st, i);
    return v ? json_string(v) : json_null();
}

static json_t *j_time(sql_stmt *st, int i)
{
    return cs__json_time(cs__col_time(st, i));
}

static json_t *j_money(sql_stmt *st, int i)
{
    char buf[40];
    if (sql_column_type(st, i) == SQL_NULL)
        return json_null();
    return json_string(cs_money_format(sql_column_int64(st, i), buf, sizeof buf));
}

/* Stored compact JSON (addresses, attributes, bodies) back into a value. */
static json_t *j_doc(sql_stmt *st, int i)
{
    const char *v = cs__col_text(st, i);
    if (!v)
        return json_null();
    json_t *d = json_loadb(v, (size_t)sql_column_bytes(st, i), JSON_DECODE_ANY, NULL);
    return d ? d : json_null();
}

static json_t *j_consents(const char *c)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (int ch = 0; ch < CS_CHANNEL__COUNT; ch++) {
        json_t *p = json_object();
        for (int k = 0; k < 2; k++) {
            char v = (c && strlen(c) == 6) ? c[ch * 2 + k] : '-';
            json_object_set_new(p, k ? "marketing" : "transactional",
                                v == 'y' ? json_true() : v == 'n' ? json_false() : json_null());
        }
        json_object_set_new(o, cs_channel_name((cs_channel_t)ch), p);
    }
    return o;
}

typedef json_t *(*row_fn)(sql_stmt *st, void *arg);

/* Run st (bound by the caller) and collect one object per row. */
static cs_rc collect(cs_sql_t *s, sql_stmt *st, row_fn fn, void *arg, json_t **out,
                     cs_err_t *err)
{
    json_t *arr = json_array();
    cs_rc rc = CS_OK;
    int r;
    *out = NULL;
    if (!arr) {
        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    while ((r = sql_step(st)) == SQL_ROW) {
        json_t *o = fn(st, arg);
        if (!o || json_array_append_new(arr, o)) {
            rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    if (r != SQL_DONE)
        rc = cs__sql_fail(s, err, "read a view");
out:
    sql_reset(st);
    sql_clear_bindings(st);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return CS_OK;
}

/* ---- customer ---- */

cs_rc cs__sql_customers_by_phone(cs_store_t *store, const char *phone, const char *after,
                                 char (*ids)[CS_ID_MAX + 1], size_t max, size_t *n,
                                 cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = cs__sql_stmt(s, Q_CU_BY_PHONE, err);
    cs_rc rc = CS_OK;
    int r = SQL_DONE;
    *n = 0;
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, phone);
    cs__bind_text(st, 2, after ? after : "");
    sql_bind_int64(st, 3, (int64_t)max);
    while (*n < max && (r = sql_step(st)) == SQL_ROW) {
        const char *id = cs__col_text(st, 0);
        cs_strlcpy(ids[(*n)++], id ? id : "", CS_ID_MAX + 1);
    }
    if (*n < max && r != SQL_DONE)
        rc = cs__sql_fail(s, err, "read the customers of a phone number");
    cs__stmt_done(st);
    return rc;
}

static json_t *row_customer_order(sql_stmt *st, void *arg)
{
    (void)arg;
    return json_pack("{s:o, s:o, s:o, s:o, s:o}", "id", j_text(st, 0), "placed_at", j_time(st, 1),
                     "total", j_money(st, 2), "currency", j_text(st, 3), "status", j_text(st, 4));
}

cs_rc cs__sql_customer_view(cs_store_t *store, const char *id, json_t **out, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = cs__sql_stmt(s, Q_V_CUSTOMER, err);
    sql_stmt *sp = cs__sql_stmt(s, Q_V_CUSTOMER_SPENT, err);
    sql_stmt *so = cs__sql_stmt(s, Q_V_CUSTOMER_ORDERS, err);
    json_t *v = NULL, *orders = NULL, *spent = NULL;
    cs_rc rc = CS_OK;
    *out = NULL;
    if (!st || !sp || !so)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, id);
    int r = sql_step(st);
    if (r == SQL_DONE) {
        rc = cs_err_field(err, CS_ERR_NOTFOUND, "id", "no customer with id \"%.64s\"", id);
        goto out;
    }
    if (r != SQL_ROW) {
        rc = cs__sql_fail(s, err, "read a customer");
        goto out;
    }
    /* id,email,phone,name,locale,timezone,consent,attributes,first_seen_at,updated_at */
    v = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", j_text(st, 0),
                  "email", j_text(st, 1), "phone", j_text(st, 2), "name", j_text(st, 3), "locale",
                  j_text(st, 4), "timezone", j_text(st, 5), "consents",
                  j_consents(cs__col_text(st, 6)), "attributes", j_doc(st, 7), "first_seen_at",
                  j_time(st, 8), "updated_at", j_time(st, 9));
    sql_reset(st);
    sql_clear_bindings(st);
    if (!v || !(spent = json_object())) {
        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    int64_t n_orders = 0, n_cancelled = 0;
    cs_ms_t first = 0, last = 0;
    cs__bind_text(sp, 1, id);
    while ((r = sql_step(sp)) == SQL_ROW) {
        /* currency,count,spent,first and last placed_at (not cancelled),cancelled */
        char buf[40];
        const char *cur = cs__col_text(sp, 0);
        n_orders += sql_column_int64(sp, 1);
        n_cancelled += sql_column_int64(sp, 5);
        cs_ms_t f = cs__col_time(sp, 3), l = cs__col_time(sp, 4);
        if (f && (!first || f < first))
            first = f;
        if (l > last)
            last = l;
        json_object_set_new(spent, cur ? cur : "?",
                            json_string(cs_money_format(sql_column_int64(sp, 2), buf,
                                                        sizeof buf)));
    }
    sql_reset(sp);
    sql_clear_bindings(sp);
    if (r != SQL_DONE) {
        rc = cs__sql_fail(s, err, "read a customer's orders");
        goto out;
    }
    char fb[40], lb[40];
    json_object_set_new(v, "stats",
                        json_pack("{s:I, s:I, s:o, s:o, s:O}", "orders", (json_int_t)n_orders,
                                  "cancelled_orders", (json_int_t)n_cancelled, "first_order_at",
                                  first ? json_string(cs_time_format(first, fb, sizeof fb))
                                        : json_null(),
                                  "last_order_at",
                                  last ? json_string(cs_time_format(last, lb, sizeof lb))
                                       : json_null(),
                                  "total_spent", spent));
    cs__bind_text(so, 1, id);
    if ((rc = collect(s, so, row_customer_order, NULL, &orders, err)))
        goto out;
    json_object_set_new(v, "orders", orders);
    *out = v;
    v = NULL;
out:
    sql_reset(st);
    sql_clear_bindings(st);
    json_decref(spent);
    json_decref(v);
    return rc;
}

/* ---- order ---- */

static json_t *row_item(sql_stmt *st, void *arg)
{
    (void)arg;
    return json_pack("{s:o, s:o, s:o, s:o, s:I, s:o}", "sku", j_text(st, 0), "name",
                     j_text(st, 1), "category", j_text(st, 2), "unit_price", j_money(st, 3),
                     "quantity", (json_int_t)sql_column_int64(st, 4), "discount",
                     j_money(st, 5));
}

static json_t *j_track(sql_stmt *st, int i)
{
    if (sql_column_type(st, i) == SQL_NULL)
        return json_null();
    const char *n = cs_track_status_name((cs_track_status_t)sql_column_int(st, i));
    return n ? json_string(n) : json_null();
}

static json_t *row_scan(sql_stmt *st, void *arg)
{
    (void)arg;
    const char *reason = sql_column_type(st, 5) == SQL_NULL
                             ? NULL
                             : cs_incident_name((cs_incident_t)sql_column_int(st, 5));
    json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:s?}", "status", j_track(st, 0),
                          "carrier_code", j_text(st, 1), "carrier_text", j_text(st, 2), "location",
                          j_doc(st, 3), "occurred_at", j_time(st, 4), "reason", reason);
    if (o && sql_column_int(st, 6))
        json_object_set_new(o, "unmapped", json_true());
    return o;
}

typedef struct sub_ctx {
    cs_sql_t *s;
    cs_err_t *err;
    cs_rc rc;
} sub_ctx_t;

static json_t *row_shipment(sql_stmt *st, void *arg)
{
    sub_ctx_t *c = arg;
    /* id,carrier,service,tracking_number,origin,destination,status,status_at,delivered_at,
     * created_at,cancelled_at,cancel_reason */
    json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                          j_text(st, 0), "carrier", j_text(st, 1), "service", j_text(st, 2),
                          "tracking_number", j_text(st, 3), "origin", j_doc(st, 4), "destination",
                          j_doc(st, 5), "status", j_track(st, 6), "status_at", j_time(st, 7),
                          "delivered_at", j_time(st, 8), "created_at", j_time(st, 9),
                          "cancelled_at", j_time(st, 10), "cancel_reason", j_text(st, 11));
    sql_stmt *sc = cs__sql_stmt(c->s, Q_V_SHIPMENT_SCANS, c->err);
    json_t *scans = NULL;
    if (!o || !sc) {
        json_decref(o);
        return NULL;
    }
    sql_bind_text_copy(sc, 1, cs__col_text(st, 0), -1);
    if ((c->rc = collect(c->s, sc, row_scan, NULL, &scans, c->err))) {
        json_decref(o);
        return NULL;
    }
    json_object_set_new(o, "scans", scans);
    return o;
}

static json_t *row_return_item(sql_stmt *st, void *arg)
{
    (void)arg;
    return json_pack("{s:o, s:I, s:o}", "sku", j_text(st, 0), "quantity",
                     (json_int_t)sql_column_int64(st, 1), "reason", j_text(st, 2));
}

static json_t *row_return(sql_stmt *st, void *arg)
{
    sub_ctx_t *c = arg;
    /* id,status,resolution,refund_amount,requested_at,status_at */
    json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "id", j_text(st, 0), "status",
                          j_text(st, 1), "resolution", j_text(st, 2), "refund_amount",
                          j_money(st, 3), "requested_at", j_time(st, 4), "updated_at",
                          j_time(st, 5));
    sql_stmt *it = cs__sql_stmt(c->s, Q_V_RETURN_ITEMS, c->err);
    json_t *items = NULL;
    if (!o || !it) {
        json_decref(o);
        return NULL;
    }
    sql_bind_text_copy(it, 1, cs__col_text(st, 0), -1);
    if ((c->rc = collect(c->s, it, row_return_item, NULL, &items, c->err))) {
        json_decref(o);
        return NULL;
    }
    json_object_set_new(o, "items", items);
    return o;
}

static json_t *row_ticket(sql_stmt *st, void *arg)
{
    (void)arg;
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", j_text(st, 0), "status",
                     j_text(st, 1), "channel", j_text(st, 2), "subject", j_text(st, 3), "category",
                     j_text(st, 4), "created_at", j_time(st, 5), "updated_at", j_time(st, 6));
}

static json_t *row_feedback(sql_stmt *st, void *arg)
{
    (void)arg;
    return json_pack("{s:o, s:o, s:I, s:o, s:o, s:o, s:o, s:o}", "id", j_text(st, 0), "kind",
                     j_text(st, 1), "score", (json_int_t)sql_column_int64(st, 2), "sku",
                     j_text(st, 3), "title", j_text(st, 4), "text", j_text(st, 5), "locale",
                     j_text(st, 6), "occurred_at", j_time(st, 7));
}

static json_t *j_type(sql_stmt *st, int i)
{
    const char *n = cs_event_type_name((cs_event_type_t)sql_column_int(st, i));
    return n ? json_string(n) : json_null();
}

static json_t *row_timeline(sql_stmt *st, void *arg)
{
    (void)arg;
    return json_pack("{s:I, s:o, s:o, s:o, s:o}", "seq", (json_int_t)sql_column_int64(st, 0),
                     "event_id", j_text(st, 1), "type", j_type(st, 2), "occurred_at",
                     j_time(st, 3), "received_at", j_time(st, 4));
}

cs_rc cs__sql_order_view(cs_store_t *store, const char *id, json_t **out, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = cs__sql_stmt(s, Q_V_ORDER, err);
    json_t *v = NULL, *part = NULL;
    sub_ctx_t ctx = {.s = s, .err = err, .rc = CS_OK};
    cs_rc rc = CS_OK;
    *out = NULL;
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, id);
    int r = sql_step(st);
    if (r == SQL_DONE) {
        rc = cs_err_field(err, CS_ERR_NOTFOUND, "id", "no order with id \"%.64s\"", id);
        goto out;
    }
    if (r != SQL_ROW) {
        rc = cs__sql_fail(s, err, "read an order");
        goto out;
    }
    /* id,customer_id,currency,placed_at,subtotal,shipping,tax,discount,total,
       promised_from,promised_to,status,cancel_reason,cancelled_at,attributes,
       ship_carrier,ship_service,ship_origin,ship_destination */
    json_t *promise = json_null(), *ship = json_null();
    if (sql_column_type(st, 10) != SQL_NULL)
        promise = json_pack("{s:o, s:o}", "earliest", j_time(st, 9), "latest", j_time(st, 10));
    if (sql_column_type(st, 15) != SQL_NULL || sql_column_type(st, 16) != SQL_NULL ||
        sql_column_type(st, 17) != SQL_NULL || sql_column_type(st, 18) != SQL_NULL)
        ship = json_pack("{s:o, s:o, s:o, s:o}", "carrier", j_text(st, 15), "service",
                         j_text(st, 16), "origin", j_doc(st, 17), "destination", j_doc(st, 18));
    v = json_pack("{s:o, s:o, s:o, s:o, s:o, s:{s:o, s:o, s:o, s:o, s:o}, s:o, s:o, s:o, s:o, "
                  "s:o}",
                  "id", j_text(st, 0), "customer_id", j_text(st, 1), "status", j_text(st, 11),
                  "currency", j_text(st, 2), "placed_at", j_time(st, 3), "totals", "subtotal",
                  j_money(st, 4), "shipping", j_money(st, 5), "tax", j_money(st, 6), "discount",
                  j_money(st, 7), "total", j_money(st, 8), "promised_delivery", promise,
                  "cancel_reason", j_text(st, 12), "cancelled_at", j_time(st, 13), "attributes",
                  j_doc(st, 14), "shipping", ship);
    sql_reset(st);
    sql_clear_bindings(st);
    if (!v) {
        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    static const struct {
        const char *key;
        stmt_id_t q;
        row_fn fn;
    } parts[] = {
        {"items", Q_V_ORDER_ITEMS, row_item},
        {"shipments", Q_V_ORDER_SHIPMENTS, row_shipment},
        {"returns", Q_V_ORDER_RETURNS, row_return},
        {"tickets", Q_V_ORDER_TICKETS, row_ticket},
        {"feedback", Q_V_ORDER_FEEDBACK, row_feedback},
        {"timeline", Q_V_ORDER_TIMELINE, row_timeline},
    };
    for (size_t i = 0; i < CS_ARRAY_LEN(parts); i++) {
        sql_stmt *q = cs__sql_stmt(s, parts[i].q, err);
        if (!q) {
            rc = CS_ERR_STORE;
            goto out;
        }
        cs__bind_text(q, 1, id);
        if ((rc = collect(s, q, parts[i].fn, &ctx, &part, err)))
            goto out;
        if (ctx.rc) {
            json_decref(part);
            rc = ctx.rc;
            goto out;
        }
        json_object_set_new(v, parts[i].key, part);
    }
    json_t *watch;
    if ((rc = cs__sql_promise_json(s, id, &watch, err)))
        goto out;
    json_object_set_new(v, "promise", watch ? watch : json_null());
    *out = v;
    v = NULL;
out:
    sql_reset(st);
    sql_clear_bindings(st);
    json_decref(v);
    return rc;
}

/* ---- the event log ---- */

static json_t *row_event(sql_stmt *st, void *arg)
{
    (void)arg;
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "seq",
                     (json_int_t)sql_column_int64(st, 0), "event_id", j_text(st, 1), "type",
                     j_type(st, 2), "occurred_at", j_time(st, 3), "received_at", j_time(st, 4),
                     "customer_id", j_text(st, 5), "order_id", j_text(st, 6), "event",
                     j_doc(st, 7));
}

cs_rc cs__sql_events_query(cs_store_t *store, const cs_event_query_t *q, json_t **out,
                              cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    json_t *events = NULL;
    int type = 0;
    *out = NULL;
    if (q->limit < 1 || q->limit > 1000)
        return cs_err_field(err, CS_ERR_INVALID, "limit", "limit: expected 1..1000, got %d",
                            q->limit);
    if (q->after_seq < 0 || q->before_seq < 0)
        return cs_err_field(err, CS_ERR_INVALID, q->after_seq < 0 ? "after_seq" : "before_seq",
                            "expected a sequence number >= 0");
    if (q->type && (type = (int)cs_event_type_from_name(q->type)) == 0)
        return cs_err_field(err, CS_ERR_INVALID, "type", "type: unknown event type \"%.64s\"",
                            q->type);
    stmt_id_t id = q->customer_id ? (q->newest_first ? Q_V_EVENTS_CUST_DESC : Q_V_EVENTS_CUST_ASC)
                   : q->order_id  ? (q->newest_first ? Q_V_EVENTS_ORDER_DESC : Q_V_EVENTS_ORDER_ASC)
                   : q->newest_first ? Q_V_EVENTS_DESC
                                     : Q_V_EVENTS_ASC;
    sql_stmt *st = cs__sql_stmt(s, id, err);
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, q->after_seq);
    sql_bind_int64(st, 2, q->before_seq);
    sql_bind_int(st, 3, type);
    sql_bind_int(st, 4, q->limit);
    if (q->customer_id)
        cs__bind_text(st, 5, q->customer_id);
    else if (q->order_id)
        cs__bind_text(st, 5, q->order_id);
    cs_rc rc = collect(s, st, row_event, NULL, &events, err);
    if (rc)
        return rc;
    size_t n = json_array_size(events);
    json_t *next = json_null();
    if (n == (size_t)q->limit)
        next = json_integer(json_integer_value(json_object_get(json_array_get(events, n - 1), "seq")));
    *out = json_pack("{s:o, s:o}", "events", events,
                     q->newest_first ? "next_before_seq" : "next_after_seq", next);
    return *out ? CS_OK : cs_errf(err, CS_ERR_NOMEM, "out of memory");
}
