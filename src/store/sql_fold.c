/*
 * sql_fold.c -- ingest: append an event to the log (idempotent on
 * event_id) and fold it into current state, tolerating any arrival order.
 *
 * The rules (docs/store.md, checked by tests/conformance):
 *  - an update older (by occurred_at) than the state it would overwrite is
 *    logged but does not regress the state; a customer's fields each keep
 *    the newest update's value (customers.field_at);
 *  - an update for an unseen entity creates a stub that the create fills in
 *    (order cancelled before placed, return or ticket updated before created);
 *  - a scan for an unknown shipment is kept as pending and attached, with its
 *    place in the order's timeline, when the shipment arrives; a shipment
 *    that moves to another order takes its scans' events along;
 *  - a shipment's status is that of its latest scan by occurred_at;
 *  - a scan its parcel holds already (SQL_SAME_SCAN, sent again under
 *    another event id) is logged but not stored again;
 *  - a parcel cancelled (shipment.cancelled) stays so until an
 *    announcement newer than the cancellation; a cancellation older than
 *    its latest announcement changes nothing, one for a parcel not
 *    announced yet waits for it, and its scans are stored but do not
 *    change its status while it is cancelled.
 *
 * Runs only inside begin/commit on the writer handle.
 */
#include "sql_int.h"

#include <stdio.h>
#include <string.h>

#include "../lib/cs_arena.h"
#include "../lib/cs_json.h"
#include "../model/region.h"

/*
 * Compact JSON of a member of the event's data, or NULL. Small values (all
 * addresses and locations) are written into the caller's buffer without
 * touching the heap (by cs_json_dumpb; by jansson when they nest deeper
 * than it takes); larger ones fall back to cs_json_dumps. Release with
 * member_done().
 */
typedef struct member {
    char buf[512];
    char *heap;
} member_t;

/* What the fold learned about an event before it is logged. */
typedef struct route {
    const char *order_id;           /* order the event concerns; NULL when unknown */
    const char *customer_id;
    char entity[CS_ID_MAX + 8];     /* "r:ID" / "t:ID" for updates of unknown order */
    char order_buf[CS_ID_MAX + 1];  /* storage for a looked-up order id */
    /* shipment of a scan; the stored row of an announced one */
    bool shp_found;
    bool shp_moved;                 /* announced again for another order, newer */
    bool shp_stale;                 /* ... older: nothing changes */
    char shp_left[CS_ID_MAX + 1];   /* shp_moved: the order it leaves */
    char shp_id[CS_ID_MAX + 1];
    int shp_status;                 /* -1 = none */
    cs_ms_t shp_status_at, shp_delivered_at;
    bool shp_cancelled;             /* the scan's parcel is cancelled: its status stays */
    cs_ms_t shp_announced_at;       /* shipment.cancelled: its parcel's latest announcement */
    bool scan_same;                 /* its parcel (or its number, waiting) holds it already */
    const char *scan_loc;           /* its location's JSON text, in scan_loc_m; NULL = none */
    member_t scan_loc_m;            /* released by the caller (member_done) */
    /* existing row of a return / ticket */
    bool row_found;
    char row_status[32];
    cs_ms_t row_status_at, row_requested_at;
    int64_t row_refund;             /* -1 = NULL */
    cs_ms_t row_refunded_at;        /* a return's refunded_at, rejected_at; 0 = NULL */
    cs_ms_t row_rejected_at;
    char row_resolution[32];
    char row_customer[CS_ID_MAX + 1];
    bool row_has_order;
    /* message.status of one of our messages: the customer and channel it
     * left out, the message's */
    const char *msg_channel;        /* the event's, else the message's; NULL = none */
} route_t;

static void bind_transient(sql_stmt *st, int i, const char *v)
{
    if (v)
        sql_bind_text_copy(st, i, v, -1);
    else
        sql_bind_null(st, i);
}

static void copy_col(sql_stmt *st, int i, char *dst, size_t size)
{
    const char *v = cs__col_text(st, i);
    cs_strlcpy(dst, v ? v : "", size);
}

static cs_rc member_text_in(json_t *obj, const char *key, member_t *m, const char **out,
                            cs_err_t *err)
{
    m->heap = NULL;
    *out = NULL;
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return CS_OK;
    size_t n = cs_json_dumpb(v, m->buf, sizeof m->buf - 1);
    if (!n)
        n = json_dumpb(v, m->buf, sizeof m->buf - 1,
                       JSON_COMPACT | JSON_ENCODE_ANY | cs_json_real_flags(v));
    if (n > 0 && n < sizeof m->buf - 1) {
        m->buf[n] = '\0';
        *out = m->buf;
        return CS_OK;
    }
    if (!(m->heap = cs_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)))
        return cs_errf(err, CS_ERR_NOMEM, "out of memory serializing data.%s", key);
    *out = m->heap;
    return CS_OK;
}

static cs_rc member_text(const cs_event_t *ev, const char *key, member_t *m, const char **out,
                         cs_err_t *err)
{
    return member_text_in(json_object_get(ev->json, "data"), key, m, out, err);
}

/* Bind an address's region key (model/region.h) when it says where in a
 * country the address is, else NULL: "DE" alone matches nothing. */
static void bind_region(sql_stmt *st, int i, const cs_address_t *a)
{
    char key[CS_REGION_KEY_MAX];
    cs_region_key(a->country, a->region, a->postal_code, key, sizeof key);
    if (cs_region_key_specific(key))
        sql_bind_text_copy(st, i, key, -1);
    else
        sql_bind_null(st, i);
}

static void member_done(member_t *m)
{
    cs_json_free(m->heap); /* jansson's (json_dumps), arena or not */
    m->heap = NULL;
}

/* ---- resolution before logging ---- */

/* Bind the scan's values SQL_SAME_SCAN compares, from parameter i on. */
static void bind_same(sql_stmt *st, int i, const cs_event_t *ev, const route_t *r)
{
    const cs_scan_t *sc = &ev->u.scan;
    sql_bind_int64(st, i, ev->occurred_at);
    sql_bind_int(st, i + 1, (int)sc->status);
    if (sc->reason != CS_INCIDENT_NONE)
        sql_bind_int(st, i + 2, (int)sc->reason);
    else
        sql_bind_null(st, i + 2);
    cs__bind_text(st, i + 3, sc->carrier_code);
    cs__bind_text(st, i + 4, sc->carrier_text);
    cs__bind_text(st, i + 5, r->scan_loc);
}

/* Whether the same scan (SQL_SAME_SCAN) waits already for a parcel of
 * its carrier and number: those are adopted together. */
static cs_rc find_same_pending(cs_sql_t *s, const cs_event_t *ev, route_t *r, cs_err_t *err)
{
    sql_stmt *st = cs__sql_stmt(s, Q_SC_SAME_PENDING, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, ev->u.scan.carrier);
    cs__bind_text(st, 2, ev->u.scan.tracking_number);
    bind_same(st, 3, ev, r);
    int rc = sql_step(st);
    r->scan_same = rc == SQL_ROW;
    cs__stmt_done(st);
    if (rc != SQL_ROW && rc != SQL_DONE)
        return cs__sql_fail(s, err, "look for the same scan waiting");
    return CS_OK;
}

/* The shipment a scan names, else the one its carrier and number find for
 * its time (SQL_PARCEL_START: a number may be used again). Either only
 * from the start of the parcel's life on: a scan dated before it (a clock
 * gone wrong, an earlier life of the number) is not the parcel's, whatever
 * it names -- it goes where its number leads for its time, else waits.
 * And whether the parcel (or, waiting, its number) holds the same scan
 * already (r->scan_same), in the same look-up. */
static cs_rc find_shipment_for_scan(cs_sql_t *s, const cs_event_t *ev, route_t *r, cs_err_t *err)
{
    const cs_scan_t *sc = &ev->u.scan;
    sql_stmt *st;
    int rc;
    r->shp_status = -1;
    if ((rc = member_text(ev, "location", &r->scan_loc_m, &r->scan_loc, err)))
        return rc;
    if (sc->shipment_id) {
        if (!(st = cs__sql_stmt(s, Q_SH_GET, err)))
            return CS_ERR_STORE;
        cs__bind_text(st, 1, sc->shipment_id);
        sql_bind_int64(st, 2, ev->occurred_at + SQL_PARCEL_CLOCK_MS);
        bind_same(st, 3, ev, r);
        rc = sql_step(st);
        if (rc == SQL_ROW) {
            r->shp_found = true;
            copy_col(st, 5, r->shp_id, sizeof r->shp_id); /* its own, or the one it names */
            copy_col(st, 0, r->order_buf, sizeof r->order_buf);
            r->shp_status = sql_column_type(st, 1) == SQL_NULL ? -1 : sql_column_int(st, 1);
            r->shp_status_at = cs__col_time(st, 2);
            r->shp_delivered_at = cs__col_time(st, 3);
            r->scan_same = sql_column_int(st, 6) != 0;
            r->shp_cancelled = sql_column_int(st, 7) != 0;
        }
        sql_reset(st);
        sql_clear_bindings(st);
        if (rc != SQL_ROW && rc != SQL_DONE)
            return cs__sql_fail(s, err, "look up a shipment");
        if (r->shp_found)
            goto found;
    }
    if (!(st = cs__sql_stmt(s, Q_SH_BY_TRACKING, err)))
        return CS_ERR_STORE;
    cs__bind_text(st, 1, sc->carrier);
    cs__bind_text(st, 2, sc->tracking_number);
    sql_bind_int64(st, 3, ev->occurred_at + SQL_PARCEL_CLOCK_MS);
    bind_same(st, 4, ev, r);
    rc = sql_step(st);
    if (rc == SQL_ROW) {
        r->shp_found = true;
        copy_col(st, 0, r->shp_id, sizeof r->shp_id);
        copy_col(st, 1, r->order_buf, sizeof r->order_buf);
        r->shp_status = sql_column_type(st, 2) == SQL_NULL ? -1 : sql_column_int(st, 2);
        r->shp_status_at = cs__col_time(st, 3);
        r->shp_delivered_at = cs__col_time(st, 4);
        r->scan_same = sql_column_int(st, 5) != 0;
        r->shp_cancelled = sql_column_int(st, 6) != 0;
    }
    sql_reset(st);
    sql_clear_bindings(st);
    if (rc != SQL_ROW && rc != SQL_DONE)
        return cs__sql_fail(s, err, "look up a shipment by tracking number");
    if (!r->shp_found)
        return find_same_pending(s, ev, r, err);
found:
    if (r->shp_found)
        r->order_id = r->order_buf; /* (no customer: see Q_EV_ADOPT_SCANS) */
    return CS_OK;
}

/* The stored row of an announced shipment's id, against which the
 * announcement is routed: one for another order moves the parcel there
 * when it is not older than the parcel's latest announcement (Q_SH_PUT),
 * else it changes nothing and goes to no order's timeline -- its order
 * does not hold the parcel, and the order that does was not told anything
 * new. */
static cs_rc find_announced(cs_sql_t *s, const cs_event_t *ev, route_t *r, cs_err_t *err)
{
    const cs_shipment_t *sh = &ev->u.shipment;
    sql_stmt *st = cs__sql_stmt(s, Q_SH_OWN, err);
    if (!st)
        return CS_ERR_STORE;
    r->order_id = sh->order_id;
    cs__bind_text(st, 1, sh->id);
    int rc = sql_step(st);
    if (rc == SQL_ROW) {
        const char *was = cs__col_text(st, 0);
        r->shp_found = true;
        if (was && strcmp(was, sh->order_id) != 0) {
            if (ev->occurred_at < cs__col_time(st, 1)) {
                r->shp_stale = true;
            } else {
                r->shp_moved = true;
                cs_strlcpy(r->shp_left, was, sizeof r->shp_left);
            }
        }
    }
    sql_reset(st);
    sql_clear_bindings(st);
    if (rc != SQL_ROW && rc != SQL_DONE)
        return cs__sql_fail(s, err, "look up an announced shipment");
    if (r->shp_stale)
        r->order_id = NULL;
    return CS_OK;
}

/* The parcel a shipment.cancelled names, by its own id (an id that only
 * names a parcel announced first under another, shipment_aliases, is not
 * its announcement: the cancellation waits as for one not announced):
 * its event goes to the parcel's order, else to the one it names. */
static cs_rc find_cancelled(cs_sql_t *s, const cs_event_t *ev, route_t *r, cs_err_t *err)
{
    const cs_shipment_cancel_t *c = &ev->u.shipment_cancel;
    sql_stmt *st = cs__sql_stmt(s, Q_SH_CANCEL_GET, err);
    if (!st)
        return CS_ERR_STORE;
    r->order_id = c->order_id;
    cs__bind_text(st, 1, c->id);
    int rc = sql_step(st);
    if (rc == SQL_ROW) {
        r->shp_found = true;
        copy_col(st, 0, r->order_buf, sizeof r->order_buf);
        r->order_id = r->order_buf;
        r->shp_announced_at = cs__col_time(st, 1);
        r->shp_delivered_at = cs__col_time(st, 2);
    }
    sql_reset(st);
    sql_clear_bindings(st);
    if (rc != SQL_ROW && rc != SQL_DONE)
        return cs__sql_fail(s, err, "look up a cancelled shipment");
    return CS_OK;
}

/* Existing return (is_return) or ticket row. */
static cs_rc find_row(cs_sql_t *s, bool is_return, const char *id, route_t *r, cs_err_t *err)
{
    sql_stmt *st = cs__sql_stmt(s, is_return ? Q_RE_GET : Q_TI_GET, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, id);
    int rc = sql_step(st);
    r->row_refund = -1;
    if (rc == SQL_ROW) {
        r->row_found = true;
        if (is_return) {
            /* order_id,status,resolution,refund_amount,requested_at,status_at,
             * refunded_at,rejected_at */
            r->row_has_order = sql_column_type(st, 0) != SQL_NULL;
            copy_col(st, 0, r->order_buf, sizeof r->order_buf);
            copy_col(st, 1, r->row_status, sizeof r->row_status);
            copy_col(st, 2, r->row_resolution, sizeof r->row_resolution);
            if (sql_column_type(st, 3) != SQL_NULL)
                r->row_refund = sql_column_int64(st, 3);
            r->row_requested_at = cs__col_time(st, 4);
            r->row_status_at = cs__col_time(st, 5);
            r->row_refunded_at = cs__col_time(st, 6);
            r->row_rejected_at = cs__col_time(st, 7);
        } else {
            /* customer_id,order_id,status,created_at,status_at */
            copy_col(st, 0, r->row_customer, sizeof r->row_customer);
            r->row_has_order = sql_column_type(st, 1) != SQL_NULL;
            copy_col(st, 1, r->order_buf, sizeof r->order_buf);
            copy_col(st, 2, r->row_status, sizeof r->row_status);
            r->row_requested_at = cs__col_time(st, 3);
            r->row_status_at = cs__col_time(st, 4);
        }
    }
    sql_reset(st);
    sql_clear_bindings(st);
    if (rc != SQL_ROW && rc != SQL_DONE)
        return cs__sql_fail(s, err, "look up a return or ticket");
    return CS_OK;
}

/* A message.status that leaves out its customer or channel: when its
 * message_id is one of our messages (its outbox id, of a contact channel)
 * and what it does name is that message's, the message's customer and
 * channel are the status's -- a bounce stops the channel of the customer
 * the message went to. */
static cs_rc find_message(cs_sql_t *s, const cs_event_t *ev, route_t *r, cs_err_t *err)
{
    const cs_message_status_t *m = &ev->u.msg;
    int64_t id;
    r->msg_channel = m->channel;
    if ((m->customer_id && m->channel) || !cs_parse_serial(m->message_id, &id))
        return CS_OK;
    sql_stmt *st = cs__sql_stmt(s, Q_MS_OWNER, err);
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, id);
    int rc = sql_step(st);
    if (rc == SQL_ROW) {
        const char *cust = cs__col_text(st, 0);
        const char *ch = cs_channel_name((cs_channel_t)sql_column_int(st, 1));
        if (cust && ch && (!m->customer_id || strcmp(m->customer_id, cust) == 0) &&
            (!m->channel || strcmp(m->channel, ch) == 0)) {
            cs_strlcpy(r->row_customer, cust, sizeof r->row_customer);
            r->customer_id = r->row_customer;
            r->msg_channel = ch; /* static */
        }
    }
    sql_reset(st);
    sql_clear_bindings(st);
    if (rc != SQL_ROW && rc != SQL_DONE)
        return cs__sql_fail(s, err, "look up a message's customer");
    return CS_OK;
}

/* An event that names an order or a parcel but no customer (a return, a
 * cancellation, a parcel's announcement or cancellation, a review without
 * its customer) is its order's customer's (r->order_id, when known),
 * logged so that the customer's events list it. One that comes before
 * its order gets the customer when the order is placed (fold_order).
 * Scans are not: they are the hot path, and a customer id on each made
 * the plain scan intake a third slower (an order look-up and an entry in
 * events_by_customer per scan); they are listed by their order. */
static cs_rc order_customer(cs_sql_t *s, route_t *r, cs_err_t *err)
{
    if (!r->order_id || r->customer_id)
        return CS_OK;
    sql_stmt *st = cs__sql_stmt(s, Q_OR_CUSTOMER, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, r->order_id);
    int rc = sql_step(st);
    if (rc == SQL_ROW) {
        copy_col(st, 0, r->row_customer, sizeof r->row_customer);
        if (r->row_customer[0])
            r->customer_id = r->row_customer;
    }
    cs__stmt_done(st);
    if (rc != SQL_ROW && rc != SQL_DONE)
        return cs__sql_fail(s, err, "look up an order's customer");
    return CS_OK;
}

/* A ticket is its customer's: one that names an order known to be
 * another customer's is refused (the order's asks are not held for it,
 * nor is it shown with that order); one naming an order not placed yet
 * leaves it if the order comes as another customer's (fold_order). So is
 * a review, a survey answer or a signal that names its customer and an
 * order (what it is: "ticket", "feedback", "signal"): it would be linked
 * to that order and shown in its timeline. One naming only the order is
 * its order's customer's (order_customer). */
static cs_rc own_order(cs_sql_t *s, const char *order_id, const char *customer_id,
                       const char *what, cs_err_t *err)
{
    if (!order_id || !customer_id)
        return CS_OK;
    sql_stmt *st = cs__sql_stmt(s, Q_OR_CUSTOMER, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, order_id);
    int rc = sql_step(st);
    const char *owner = rc == SQL_ROW ? cs__col_text(st, 0) : NULL;
    bool other = owner && owner[0] && strcmp(owner, customer_id) != 0;
    cs__stmt_done(st);
    if (rc != SQL_ROW && rc != SQL_DONE)
        return cs__sql_fail(s, err, "look up the order an event names");
    if (other)
        return cs_err_field(err, CS_ERR_RULE, "data.order_id",
                            "data.order_id: order \"%.64s\" is another customer's, not "
                            "\"%.64s\"'s; expected an order of the %s's customer or none",
                            order_id, customer_id, what);
    return CS_OK;
}

static cs_rc resolve(cs_sql_t *s, const cs_event_t *ev, route_t *r, cs_err_t *err)
{
    cs_rc rc = CS_OK;
    r->customer_id = cs_event_customer_id(ev);
    switch (ev->type) {
    case CS_EV_ORDER_PLACED: r->order_id = ev->u.order.id; break;
    case CS_EV_ORDER_CANCELLED:
        r->order_id = ev->u.cancel.order_id;
        rc = order_customer(s, r, err);
        break;
    case CS_EV_SHIPMENT_CREATED:
        if (!(rc = find_announced(s, ev, r, err)))
            rc = order_customer(s, r, err);
        break;
    case CS_EV_SHIPMENT_CANCELLED:
        if (!(rc = find_cancelled(s, ev, r, err)))
            rc = order_customer(s, r, err);
        break;
    case CS_EV_TRACKING_EVENT: rc = find_shipment_for_scan(s, ev, r, err); break;
    case CS_EV_RETURN_REQUESTED:
        r->order_id = ev->u.ret.order_id;
        if (!(rc = find_row(s, true, ev->u.ret.id, r, err)))
            rc = order_customer(s, r, err);
        break;
    case CS_EV_RETURN_UPDATED:
        if ((rc = find_row(s, true, ev->u.ret.id, r, err)))
            break;
        if (r->row_has_order)
            r->order_id = r->order_buf;
        else
            snprintf(r->entity, sizeof r->entity, "r:%s", ev->u.ret.id);
        rc = order_customer(s, r, err);
        break;
    case CS_EV_TICKET_CREATED:
        r->order_id = ev->u.ticket.order_id;
        if (!(rc = own_order(s, ev->u.ticket.order_id, ev->u.ticket.customer_id, "ticket",
                             err)))
            rc = find_row(s, false, ev->u.ticket.id, r, err);
        break;
    case CS_EV_TICKET_UPDATED:
        if ((rc = find_row(s, false, ev->u.ticket.id, r, err)))
            break;
        /* a ticket not yet created (only a stub of an earlier update) has
         * no order either: this update waits for it as the first did */
        if (r->row_has_order)
            r->order_id = r->order_buf;
        else
            snprintf(r->entity, sizeof r->entity, "t:%s", ev->u.ticket.id);
        if (r->row_found && r->row_customer[0])
            r->customer_id = r->row_customer;
        break;
    case CS_EV_FEEDBACK_SUBMITTED:
        r->order_id = ev->u.feedback.order_id;
        if (!(rc = own_order(s, r->order_id, r->customer_id, "feedback", err)))
            rc = order_customer(s, r, err); /* when it names none */
        break;
    case CS_EV_SIGNAL:
        r->order_id = ev->u.signal.order_id;
        rc = own_order(s, r->order_id, r->customer_id, "signal", err);
        break;
    case CS_EV_MESSAGE_STATUS: rc = find_message(s, ev, r, err); break;
    default: break;
    }
    return rc;
}

/* ---- folding ---- */

/*
 * The customers the writer knows to exist with first_seen_at at or before
 * a time. A touch at or after that time would change nothing, so it is
 * skipped: an order, a review or a message status of a known customer
 * costs no customer write. Sound on SQLite, where this handle is the only
 * writer of its process, no customer row is ever deleted and first_seen_at
 * only falls; forgotten on rollback (a new generation). Not used on
 * PostgreSQL, where other nodes write. Direct-mapped: a collision replaces
 * the older entry. About 1.2 MB, taken on the first touch.
 */
#define TOUCH_SLOTS 8192 /* a power of two */

typedef struct touch_slot {
    uint32_t gen; /* valid when equal to the cache's */
    cs_ms_t first;
    char id[CS_ID_MAX + 1];
} touch_slot_t;

struct cs_touch_cache {
    uint32_t gen;
    touch_slot_t slot[TOUCH_SLOTS];
};

static touch_slot_t *touch_slot(cs_sql_t *s, const char *id)
{
    if (s->pg)
        return NULL;
    if (!s->touched) {
        if (!(s->touched = cs_calloc(1, sizeof *s->touched)))
            return NULL; /* no cache: every touch is written */
        s->touched->gen = 1;
    }
    return &s->touched->slot[cs_hash_str(CS_HASH_INIT, id) & (TOUCH_SLOTS - 1)];
}

/* Remember that id exists with first_seen_at <= first. */
static void touch_note(cs_sql_t *s, const char *id, cs_ms_t first)
{
    touch_slot_t *t = touch_slot(s, id);
    if (!t || strlen(id) > CS_ID_MAX)
        return;
    if (t->gen == s->touched->gen && strcmp(t->id, id) == 0) {
        if (first < t->first)
            t->first = first;
        return;
    }
    t->gen = s->touched->gen;
    t->first = first;
    cs_strlcpy(t->id, id, sizeof t->id);
}

void cs__sql_touch_forget(cs_sql_t *s)
{
    if (s->touched && ++s->touched->gen == 0) {
        memset(s->touched, 0, sizeof *s->touched);
        s->touched->gen = 1;
    }
}

void cs__sql_touch_close(cs_sql_t *s)
{
    cs_free(s->touched);
    s->touched = NULL;
}

static cs_rc touch_customer(cs_sql_t *s, const char *id, cs_ms_t at, cs_err_t *err)
{
    touch_slot_t *t = touch_slot(s, id);
    if (t && t->gen == s->touched->gen && t->first <= at && strcmp(t->id, id) == 0)
        return CS_OK; /* known, and seen before: nothing to change */
    sql_stmt *st = cs__sql_stmt(s, Q_CU_TOUCH, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, id);
    sql_bind_int64(st, 2, at);
    cs_rc rc = cs__sql_exec_stmt(s, st, err, "record a customer");
    if (!rc)
        touch_note(s, id, at);
    return rc;
}

/*
 * A customer's fields each keep the value of the newest update that set
 * it (by occurred_at; of two at the same instant, the later to arrive),
 * whatever order the updates arrive in: customers.field_at holds, per
 * field, when its value was stated -- the five contact fields, the
 * attributes (as a whole) and each of the six consent slots -- as a JSON
 * object of UTC milliseconds, e.g. {"email":1772355480000,
 * "consents.email.marketing":1772355480000}. A field without a time there
 * (a row written before schema 27, which kept one updated_at for all) was
 * stated at the customer's updated_at if it has a value, else never.
 */
enum { F_CONTACT = 5, F_ATTRS = 5, F_CONSENT = 6, F__COUNT = F_CONSENT + 2 * CS_CHANNEL__COUNT };
#define F_NEVER INT64_MIN

/* The key of field f in field_at, into buf. */
static const char *field_key(int f, char *buf, size_t size)
{
    static const char *const names[] = { "email", "phone", "name", "locale", "timezone",
                                         "attributes" };
    if (f < F_CONSENT)
        return names[f];
    int i = f - F_CONSENT;
    snprintf(buf, size, "consents.%s.%s", cs_channel_name((cs_channel_t)(i / 2)),
             i % 2 ? "marketing" : "transactional");
    return buf;
}

/* The times of a stored row: its field_at (NULL: none), else updated for
 * a field with a value (has[f]). */
static void field_times_read(const char *field_at, const bool has[F__COUNT], cs_ms_t updated,
                             cs_ms_t at[F__COUNT])
{
    json_t *o = field_at ? cs_json_loadb(field_at, strlen(field_at), NULL) : NULL;
    for (int f = 0; f < F__COUNT; f++) {
        char k[48];
        json_t *v = json_object_get(o, field_key(f, k, sizeof k));
        at[f] = json_is_integer(v) ? (cs_ms_t)json_integer_value(v) : has[f] ? updated : F_NEVER;
    }
    json_decref(o);
}

/* field_at's JSON for the fields that have a value: into buf (always big
 * enough: F__COUNT keys of at most 32 bytes and 20 digits). */
static void field_times_write(const bool has[F__COUNT], const cs_ms_t at[F__COUNT], char *buf,
                              size_t size)
{
    size_t n = 0;
    buf[n++] = '{';
    for (int f = 0; f < F__COUNT && n < size; f++) {
        char k[48];
        if (!has[f])
            continue;
        n += (size_t)snprintf(buf + n, size - n, "%s\"%s\":%lld", n > 1 ? "," : "",
                              field_key(f, k, sizeof k), (long long)at[f]);
    }
    if (n < size - 1) {
        buf[n++] = '}';
        buf[n] = '\0';
    }
}

static cs_rc fold_customer(cs_sql_t *s, const cs_customer_t *cu, json_t *attrs, cs_ms_t at,
                           cs_err_t *err)
{
    static const char sym[] = { '-', 'y', 'n' };
    sql_stmt *get = cs__sql_stmt(s, Q_CU_GET, err);
    sql_stmt *put = cs__sql_stmt(s, Q_CU_PUT, err);
    char consent[7], times_text[F__COUNT * 64];
    char *attr_text = NULL;
    cs_ms_t times[F__COUNT];
    bool has[F__COUNT];
    cs_rc rc = CS_OK;
    if (!get || !put)
        return CS_ERR_STORE;
    if (json_is_null(attrs)) /* "attributes": null is not sent, as any field */
        attrs = NULL;
    cs__bind_text(get, 1, cu->id);
    int r = sql_step(get);
    if (r != SQL_ROW && r != SQL_DONE) {
        rc = cs__sql_fail(s, err, "read a customer");
        goto out;
    }
    bool found = r == SQL_ROW;
    /* email,phone,name,locale,timezone,consent,attributes,first_seen_at,updated_at,
     * contact_at,field_at,sms_contact_at,whatsapp_contact_at */
    _Static_assert(CS_CHANNEL_EMAIL == 0 && CS_CHANNEL_SMS == 1 && CS_CHANNEL_WHATSAPP == 2 &&
                       CS_CHANNEL__COUNT == 3,
                   "contact_at, sms_contact_at, whatsapp_contact_at: one per channel");
    static const int contact_col[CS_CHANNEL__COUNT] = { 9, 11, 12 };
    cs_ms_t updated = found ? cs__col_time(get, 8) : 0;
    cs_ms_t first = found ? cs__col_time(get, 7) : at;
    cs_ms_t contact[CS_CHANNEL__COUNT];
    for (int ch = 0; ch < CS_CHANNEL__COUNT; ch++)
        contact[ch] = found ? cs__col_time(get, contact_col[ch]) : at;
    const char *old_consent = found ? cs__col_text(get, 5) : NULL;
    const char *old_attr = found ? cs__col_text(get, 6) : NULL;
    if (old_consent && strlen(old_consent) != 6)
        old_consent = NULL;
    for (int f = 0; f < F__COUNT; f++)
        has[f] = f < F_CONTACT   ? found && cs__col_text(get, f)
                 : f == F_ATTRS  ? old_attr != NULL
                                 : old_consent && old_consent[f - F_CONSENT] != '-';
    field_times_read(found ? cs__col_text(get, 10) : NULL, has, updated, times);
    /* a changed address or a consent granted starts what stops messages
     * over (unsubscribes, bounces: sql_journey.c) on the channels it is
     * of: a new email on email, a new phone on SMS and WhatsApp, a consent
     * granted on its own channel; the same record again, a new name, or a
     * consent refused does not */
    unsigned changed = 0;
    const unsigned phone_channels = (1u << CS_CHANNEL_SMS) | (1u << CS_CHANNEL_WHATSAPP);
    const char *mine[F_CONTACT] = { cu->email, cu->phone, cu->name, cu->locale, cu->timezone };
    cs__bind_text(put, 1, cu->id);
    for (int i = 0; i < F_CONTACT; i++) {
        const char *old = found ? cs__col_text(get, i) : NULL;
        const char *v = old;
        if (mine[i] && at >= times[i]) {
            v = mine[i];
            times[i] = at;
            has[i] = true;
        }
        if (i < 2 && v != old && (!old || strcmp(v, old) != 0))
            changed |= i == 0 ? 1u << CS_CHANNEL_EMAIL : phone_channels;
        bind_transient(put, 2 + i, v);
    }
    for (int ch = 0; ch < CS_CHANNEL__COUNT; ch++)
        for (int p = 0; p < 2; p++) {
            int i = ch * 2 + p, f = F_CONSENT + i;
            cs_consent_t c = cu->consent[ch][p];
            consent[i] = old_consent ? old_consent[i] : '-';
            if (c != CS_CONSENT_UNSET && at >= times[f]) {
                consent[i] = sym[c];
                times[f] = at;
                has[f] = true;
            }
        }
    consent[6] = '\0';
    /* a consent granted (anew) starts its channel over, not the others: a
     * customer who unsubscribed from marketing email and then says yes to
     * SMS offers gets SMS, not email again; a refusal only narrows what
     * goes, and must not lift an unsubscribe or a bounce it may echo */
    if (!old_consent)
        changed = (1u << CS_CHANNEL__COUNT) - 1;
    for (int i = 0; old_consent && i < 6; i++)
        if (consent[i] == 'y' && old_consent[i] != 'y')
            changed |= 1u << (i / 2);
    sql_bind_text_copy(put, 7, consent, 6);
    for (int ch = 0; ch < CS_CHANNEL__COUNT; ch++) {
        static const int contact_param[CS_CHANNEL__COUNT] = { 11, 13, 14 };
        bool anew = (changed & (1u << ch)) && at > contact[ch];
        sql_bind_int64(put, contact_param[ch], anew ? at : contact[ch]);
    }
    if (attrs && at >= times[F_ATTRS]) {
        if (!(attr_text = cs_json_dumps(attrs, JSON_COMPACT))) {
            rc = cs_errf(err, CS_ERR_NOMEM, "out of memory serializing data.attributes");
            goto out;
        }
        times[F_ATTRS] = at;
        has[F_ATTRS] = true;
        bind_transient(put, 8, attr_text);
    } else {
        bind_transient(put, 8, old_attr);
    }
    sql_bind_int64(put, 9, first < at ? first : at);
    sql_bind_int64(put, 10, updated > at ? updated : at);
    field_times_write(has, times, times_text, sizeof times_text);
    sql_bind_text_copy(put, 12, times_text, -1);
    sql_reset(get);
    sql_clear_bindings(get);
    rc = cs__sql_exec_stmt(s, put, err, "write a customer");
    if (!rc)
        touch_note(s, cu->id, first < at ? first : at);
out:
    sql_reset(get);
    sql_clear_bindings(get);
    cs_json_free(attr_text);
    return rc;
}

/*
 * An edit that gives a placed order to another customer (a correction:
 * docs/events.md) takes along what is the order's: the events logged as
 * the old customer's that name it (its placements, cancellation, parcels,
 * returns, tickets, reviews and signals; scans are no customer's), and
 * the old customer's tickets and feedback about it, so that a ticket is
 * still its order's customer's (own_order). The customers' figures are
 * read from the orders (their customer_id), which the edit has moved.
 */
static cs_rc move_order(cs_sql_t *s, const char *order_id, const char *from, const char *to,
                        cs_err_t *err)
{
    static const struct {
        stmt_id_t id;
        const char *what;
    } steps[] = {
        { Q_EV_MOVE_CUSTOMER, "give the order's events its new customer" },
        { Q_TI_MOVE, "give the order's tickets its new customer" },
        { Q_FB_MOVE, "give the order's feedback its new customer" },
    };
    for (size_t i = 0; i < CS_ARRAY_LEN(steps); i++) {
        sql_stmt *st = cs__sql_stmt(s, steps[i].id, err);
        if (!st)
            return CS_ERR_STORE;
        cs__bind_text(st, 1, order_id);
        cs__bind_text(st, 2, from);
        cs__bind_text(st, 3, to);
        cs_rc rc = cs__sql_exec_stmt(s, st, err, steps[i].what);
        if (rc)
            return rc;
    }
    return CS_OK;
}

/* Order id's part of its customer's tally (customer_orders, Q_OR_TALLY):
 * taken off (sign -1) before an event changes the order, its items or one
 * of its returns, put back (1) after, as the order then is; an order not
 * there, or not counted, changes nothing. NULL or "": none. */
static cs_rc tally(cs_sql_t *s, const char *id, int sign, cs_err_t *err)
{
    if (!id || !id[0])
        return CS_OK;
    sql_stmt *st = cs__sql_stmt(s, Q_OR_TALLY, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, id);
    sql_bind_int64(st, 2, sign);
    return cs__sql_exec_stmt(s, st, err, "count the order in its customer's tally");
}

/* An order event's fold between its tally's updates. */
static cs_rc fold_tallied(cs_sql_t *s, const cs_event_t *ev, const char *id,
                          cs_rc (*fold)(cs_sql_t *, const cs_event_t *, cs_err_t *),
                          cs_err_t *err)
{
    cs_rc rc = tally(s, id, -1, err);
    if (!rc)
        rc = fold(s, ev, err);
    if (!rc)
        rc = tally(s, id, 1, err);
    return rc;
}

static cs_rc fold_order(cs_sql_t *s, const cs_event_t *ev, cs_err_t *err)
{
    const cs_order_t *o = &ev->u.order;
    sql_stmt *get = cs__sql_stmt(s, Q_OR_GET, err);
    sql_stmt *put = cs__sql_stmt(s, Q_OR_PUT, err);
    member_t m_attrs = { .heap = NULL }, m_origin = { .heap = NULL }, m_dest = { .heap = NULL };
    const char *attrs = NULL, *origin = NULL, *dest = NULL;
    cs_rc rc = CS_OK;
    if (!get || !put)
        return CS_ERR_STORE;
    cs__bind_text(get, 1, o->id);
    int r = sql_step(get);
    if (r != SQL_ROW && r != SQL_DONE) {
        rc = cs__sql_fail(s, err, "read an order");
        sql_reset(get);
        return rc;
    }
    bool found = r == SQL_ROW;
    /* placed_at,status,cancel_reason,cancelled_at,updated_at,customer_id */
    bool was_placed = found && sql_column_type(get, 0) != SQL_NULL;
    char was_customer[CS_ID_MAX + 1] = "";
    if (was_placed)
        copy_col(get, 5, was_customer, sizeof was_customer);
    if (was_placed && ev->occurred_at < cs__col_time(get, 4)) {
        sql_reset(get);
        sql_clear_bindings(get);
        goto customer; /* an older version of the order: logged, state kept */
    }
    cs__bind_text(put, 1, o->id);
    cs__bind_text(put, 2, o->customer_id);
    cs__bind_text(put, 3, o->currency);
    /* an edit (order.placed sent again) without placed_at keeps the day the
     * order was placed, and a promise without its earliest day counts from
     * it: the edit's own time is not when the customer bought */
    cs_ms_t placed = was_placed && !o->placed_at_given ? cs__col_time(get, 0) : o->placed_at;
    sql_bind_int64(put, 4, placed);
    sql_bind_int64(put, 5, o->subtotal);
    sql_bind_int64(put, 6, o->shipping);
    sql_bind_int64(put, 7, o->tax);
    sql_bind_int64(put, 8, o->discount);
    sql_bind_int64(put, 9, o->total);
    cs__bind_time(put, 10, o->promised_from && !o->promised_from_given ? placed : o->promised_from);
    cs__bind_time(put, 11, o->promised_to);
    if (found) {
        bind_transient(put, 12, cs__col_text(get, 1));
        bind_transient(put, 13, cs__col_text(get, 2));
        cs__bind_time(put, 14, cs__col_time(get, 3));
    } else {
        cs__bind_text(put, 12, "placed");
    }
    json_t *ship = json_object_get(json_object_get(ev->json, "data"), "shipping");
    if (!(rc = member_text(ev, "attributes", &m_attrs, &attrs, err)) &&
        !(rc = member_text_in(ship, "origin", &m_origin, &origin, err)))
        rc = member_text_in(ship, "destination", &m_dest, &dest, err);
    cs__bind_text(put, 15, attrs);
    sql_bind_int64(put, 16, ev->occurred_at);
    cs__bind_text(put, 17, o->ship.carrier);
    cs__bind_text(put, 18, o->ship.service);
    cs__bind_text(put, 19, origin);
    cs__bind_text(put, 20, dest);
    bind_region(put, 21, &o->ship.destination);
    sql_reset(get);
    sql_clear_bindings(get);
    /* its part of its customer's tally comes off before it changes (one
     * not placed before has none) and goes back below, as it then is */
    if (!rc && was_placed)
        rc = tally(s, o->id, -1, err);
    if (rc || (rc = cs__sql_exec_stmt(s, put, err, "write an order"))) {
        sql_reset(put);
        sql_clear_bindings(put);
        goto out;
    }

    if (!was_placed) {
        /* its events that came before it and name no customer (returns,
         * a cancellation, parcels and their scans) are its customer's */
        sql_stmt *up = cs__sql_stmt(s, Q_EV_ORDER_CUSTOMER, err);
        if (!up) {
            rc = CS_ERR_STORE;
            goto out;
        }
        cs__bind_text(up, 1, o->id);
        cs__bind_text(up, 2, o->customer_id);
        sql_bind_int(up, 3, (int)CS_EV_TRACKING_EVENT);
        if ((rc = cs__sql_exec_stmt(s, up, err, "give the order's events its customer")))
            goto out;
        /* tickets, feedback and signals of other customers that named it
         * before it came are not about it: they stay their customers',
         * without the order */
        sql_stmt *unlink = cs__sql_stmt(s, Q_TI_UNLINK, err);
        sql_stmt *unlink_fb = cs__sql_stmt(s, Q_FB_UNLINK, err);
        sql_stmt *unlog = cs__sql_stmt(s, Q_EV_UNLINK_OTHERS, err);
        if (!unlink || !unlink_fb || !unlog) {
            rc = CS_ERR_STORE;
            goto out;
        }
        cs__bind_text(unlink, 1, o->id);
        cs__bind_text(unlink, 2, o->customer_id);
        if ((rc = cs__sql_exec_stmt(s, unlink, err, "take other customers' tickets off the order")))
            goto out;
        cs__bind_text(unlink_fb, 1, o->id);
        cs__bind_text(unlink_fb, 2, o->customer_id);
        if ((rc = cs__sql_exec_stmt(s, unlink_fb, err,
                                    "take other customers' feedback off the order")))
            goto out;
        cs__bind_text(unlog, 1, o->id);
        cs__bind_text(unlog, 2, o->customer_id);
        sql_bind_int(unlog, 3, (int)CS_EV_TICKET_CREATED);
        sql_bind_int(unlog, 4, (int)CS_EV_TICKET_UPDATED);
        sql_bind_int(unlog, 5, (int)CS_EV_FEEDBACK_SUBMITTED);
        sql_bind_int(unlog, 6, (int)CS_EV_SIGNAL);
        if ((rc = cs__sql_exec_stmt(s, unlog, err,
                                    "take other customers' events off the order")))
            goto out;
    }
    if (was_placed && was_customer[0] && strcmp(was_customer, o->customer_id) != 0 &&
        (rc = move_order(s, o->id, was_customer, o->customer_id, err)))
        goto out;
    if (found) {
        sql_stmt *del = cs__sql_stmt(s, Q_OI_DELETE, err);
        if (!del) {
            rc = CS_ERR_STORE;
            goto out;
        }
        cs__bind_text(del, 1, o->id);
        if ((rc = cs__sql_exec_stmt(s, del, err, "replace order items")))
            goto out;
    }
    sql_stmt *ins = cs__sql_stmt(s, Q_OI_INSERT, err);
    if (!ins) {
        rc = CS_ERR_STORE;
        goto out;
    }
    for (size_t i = 0; i < o->n_items; i++) {
        const cs_line_item_t *li = &o->items[i];
        cs__bind_text(ins, 1, o->id);
        sql_bind_int64(ins, 2, (int64_t)i);
        cs__bind_text(ins, 3, li->sku);
        cs__bind_text(ins, 4, li->name);
        cs__bind_text(ins, 5, li->category);
        sql_bind_int64(ins, 6, li->unit_price);
        sql_bind_int64(ins, 7, li->quantity);
        sql_bind_int64(ins, 8, li->discount);
        if ((rc = cs__sql_exec_stmt(s, ins, err, "write an order item")))
            goto out;
    }
    if ((rc = tally(s, o->id, 1, err)))
        goto out;
customer:
    if (o->has_customer)
        rc = fold_customer(s, &o->customer,
                           json_object_get(json_object_get(json_object_get(ev->json, "data"),
                                                           "customer"),
                                           "attributes"),
                           ev->occurred_at, err);
    else
        rc = touch_customer(s, o->customer_id, ev->occurred_at, err);
out:
    member_done(&m_attrs);
    member_done(&m_origin);
    member_done(&m_dest);
    return rc;
}

static cs_rc fold_cancel(cs_sql_t *s, const cs_event_t *ev, cs_err_t *err)
{
    const cs_order_cancel_t *c = &ev->u.cancel;
    sql_stmt *up = cs__sql_stmt(s, Q_OR_CANCEL, err);
    if (!up)
        return CS_ERR_STORE;
    cs__bind_text(up, 1, c->order_id);
    cs__bind_text(up, 2, c->reason);
    sql_bind_int64(up, 3, ev->occurred_at);
    int64_t changed;
    cs_rc rc = cs__sql_exec_count(s, up, err, "cancel an order", &changed);
    if (rc || changed > 0)
        return rc;
    /* cancelled before it was placed: a stub the placement fills in */
    sql_stmt *stub = cs__sql_stmt(s, Q_OR_CANCEL_STUB, err);
    if (!stub)
        return CS_ERR_STORE;
    cs__bind_text(stub, 1, c->order_id);
    cs__bind_text(stub, 2, c->reason);
    sql_bind_int64(stub, 3, ev->occurred_at);
    return cs__sql_exec_stmt(s, stub, err, "record an early cancellation");
}

/* When a delivered shipment was delivered: its first delivered scan, or
 * when it was received if that was earlier (Q_SC_DELIVERED,
 * SQL_DELIVERED_AT; a delivered status means no return came before it),
 * whatever order the scans came in. */
static cs_rc delivered_since(cs_sql_t *s, const char *id, cs_ms_t *out, cs_err_t *err)
{
    sql_stmt *del = cs__sql_stmt(s, Q_SC_DELIVERED, err);
    *out = 0;
    if (!del)
        return CS_ERR_STORE;
    cs__bind_text(del, 1, id);
    sql_bind_int(del, 2, CS_TRACK_DELIVERED);
    int r = sql_step(del);
    if (r == SQL_ROW)
        *out = cs__col_time(del, 0);
    sql_reset(del);
    sql_clear_bindings(del);
    return r == SQL_ROW || r == SQL_DONE ? CS_OK
                                         : cs__sql_fail(s, err, "read when a parcel was delivered");
}

/* Recompute a shipment's status from its scans (after adopting pending
 * ones, for a scan out of order, after its scans went to the number's next
 * life, and once for every shipment at schema 18), by the rules of
 * fold_scan. */
cs_rc cs__sql_refresh_shipment(cs_sql_t *s, const char *id, cs_err_t *err)
{
    sql_stmt *lat = cs__sql_stmt(s, Q_SC_LATEST, err);
    sql_stmt *set = cs__sql_stmt(s, Q_SH_SET_STATUS, err);
    int status = -1;
    cs_ms_t at = 0, delivered = 0;
    cs_rc rc;
    if (!lat || !set)
        return CS_ERR_STORE;
    cs__bind_text(lat, 1, id);
    int r = sql_step(lat);
    if (r == SQL_ROW) {
        status = sql_column_int(lat, 0);
        at = sql_column_int64(lat, 1);
    }
    sql_reset(lat);
    sql_clear_bindings(lat);
    if (r != SQL_ROW && r != SQL_DONE)
        return cs__sql_fail(s, err, "read a parcel's latest scan");
    if (status == CS_TRACK_DELIVERED && (rc = delivered_since(s, id, &delivered, err)))
        return rc;
    cs__bind_text(set, 1, id);
    if (status < 0) { /* none left: its scans went to the number's next life */
        sql_bind_null(set, 2);
        sql_bind_null(set, 3);
    } else {
        sql_bind_int(set, 2, status);
        sql_bind_int64(set, 3, at);
    }
    cs__bind_time(set, 4, delivered);
    return cs__sql_exec_stmt(s, set, err, "update a shipment's status");
}

/* The scans that are shipment `sh`'s though they came before it: those
 * that named it, those of its carrier and number kept waiting, and those
 * an earlier life of its number took (SQL_PARCEL_START) -- each from the
 * start of its life on. *taken counts them. */
static cs_rc take_scans(cs_sql_t *s, const cs_shipment_t *sh, int *taken, cs_err_t *err)
{
    sql_stmt *q = cs__sql_stmt(s, Q_SH_START, err);
    sql_stmt *pend = cs__sql_stmt(s, Q_SC_ADOPT, err);
    sql_stmt *want = cs__sql_stmt(s, Q_SC_ADOPT_WANT, err);
    sql_stmt *life = cs__sql_stmt(s, Q_SH_EARLIER_LIFE, err);
    sql_stmt *move = cs__sql_stmt(s, Q_SC_MOVE, err);
    char earlier[CS_ID_MAX + 1];
    int64_t changed;
    cs_ms_t start = 0;
    cs_rc rc;
    if (!q || !pend || !want || !life || !move)
        return CS_ERR_STORE;
    cs__bind_text(q, 1, sh->id);
    int r = sql_step(q);
    if (r == SQL_ROW)
        start = sql_column_int64(q, 0);
    sql_reset(q);
    sql_clear_bindings(q);
    if (r != SQL_ROW)
        return cs__sql_fail(s, err, "read when a parcel's life started");
    cs_ms_t from = start - SQL_PARCEL_CLOCK_MS;

    cs__bind_text(want, 1, sh->id);
    sql_bind_int64(want, 2, from);
    if ((rc = cs__sql_exec_count(s, want, err, "attach pending scans", &changed)))
        return rc;
    *taken += (int)changed;
    cs__bind_text(pend, 1, sh->id);
    cs__bind_text(pend, 2, sh->carrier);
    cs__bind_text(pend, 3, sh->tracking_number);
    sql_bind_int64(pend, 4, from);
    if ((rc = cs__sql_exec_count(s, pend, err, "attach pending scans", &changed)))
        return rc;
    *taken += (int)changed;

    /* one earlier life at a time: its scans from `from` on are moved, so
     * the next round finds the next one, or none */
    for (;;) {
        cs__bind_text(life, 1, sh->id);
        cs__bind_text(life, 2, sh->carrier);
        cs__bind_text(life, 3, sh->tracking_number);
        sql_bind_int64(life, 4, start);
        sql_bind_int64(life, 5, from);
        r = sql_step(life);
        if (r == SQL_ROW)
            copy_col(life, 0, earlier, sizeof earlier);
        sql_reset(life);
        sql_clear_bindings(life);
        if (r == SQL_DONE)
            return CS_OK;
        if (r != SQL_ROW)
            return cs__sql_fail(s, err, "look for a tracking number's earlier parcel");
        cs__bind_text(move, 1, sh->id);
        sql_bind_text_copy(move, 2, earlier, -1);
        sql_bind_int64(move, 3, from);
        if ((rc = cs__sql_exec_count(s, move, err, "take scans from a number's earlier parcel",
                                     &changed)) ||
            (rc = cs__sql_refresh_shipment(s, earlier, err)))
            return rc;
        if (changed == 0) /* cannot be: it held such scans a moment ago */
            return cs_errf(err, CS_ERR_STORE, "scans of parcel %s did not move", earlier);
        *taken += (int)changed;
    }
}

/* Twin `twin` of parcel `first` (the same order, carrier and number)
 * folded into it: its scans, the ids that named it and a closed watch's
 * mention of it go to `first`, its own id names `first`, and its row
 * goes. */
static cs_rc merge_twin(cs_sql_t *s, const char *first, const char *twin, cs_err_t *err)
{
    static const struct {
        int q;
        const char *what;
    } steps[] = {
        { Q_SH_MERGE_SCANS, "move a twin shipment's scans" },
        { Q_SH_MERGE_REPOINT, "name a twin shipment's first" },
        { Q_SH_MERGE_ALIAS, "name a twin shipment's first" },
        { Q_SH_MERGE_CLOSED, "name a twin shipment's first" },
    };
    cs_rc rc;
    for (size_t i = 0; i < CS_ARRAY_LEN(steps); i++) {
        sql_stmt *st = cs__sql_stmt(s, steps[i].q, err);
        if (!st)
            return CS_ERR_STORE;
        cs__bind_text(st, 1, first);
        cs__bind_text(st, 2, twin);
        if ((rc = cs__sql_exec_stmt(s, st, err, steps[i].what)))
            return rc;
    }
    sql_stmt *del = cs__sql_stmt(s, Q_SH_DELETE, err);
    if (!del)
        return CS_ERR_STORE;
    cs__bind_text(del, 1, twin);
    return cs__sql_exec_stmt(s, del, err, "drop a twin shipment");
}

#define TWINS_MAX 16 /* read at a time: the first and up to 15 twins */

cs_rc cs__sql_merge_twins(cs_sql_t *s, const char *order_id, const char *carrier,
                          const char *number, int *merged, cs_err_t *err)
{
    sql_stmt *q = cs__sql_stmt(s, Q_SH_TWINS, err);
    char ids[TWINS_MAX][CS_ID_MAX + 1];
    size_t n;
    cs_rc rc = CS_OK;
    *merged = 0;
    if (!q)
        return CS_ERR_STORE;
    do { /* a round merges what it read; the next reads what is left */
        int r;
        n = 0;
        cs__bind_text(q, 1, order_id);
        cs__bind_text(q, 2, carrier);
        cs__bind_text(q, 3, number);
        while (n < TWINS_MAX && (r = sql_step(q)) == SQL_ROW)
            copy_col(q, 0, ids[n++], sizeof ids[0]);
        sql_reset(q);
        sql_clear_bindings(q);
        if (n < TWINS_MAX && r != SQL_DONE)
            return cs__sql_fail(s, err, "read an order's shipments of one number");
        for (size_t i = 1; i < n && !rc; i++)
            rc = merge_twin(s, ids[0], ids[i], err);
        if (!rc && n > 1)
            *merged += (int)n - 1;
    } while (!rc && n == TWINS_MAX);
    if (!rc && *merged)
        rc = cs__sql_refresh_shipment(s, ids[0], err);
    return rc;
}

/* Whether shipment id `sh->id` already names a parcel of the same order,
 * carrier and number (it was announced again): nothing to write. An id
 * that named another parcel no longer does. */
static cs_rc known_twin(cs_sql_t *s, const cs_shipment_t *sh, bool *known, cs_err_t *err)
{
    sql_stmt *q = cs__sql_stmt(s, Q_SH_ALIAS_OF, err);
    sql_stmt *drop = cs__sql_stmt(s, Q_SH_ALIAS_DROP, err);
    if (!q || !drop)
        return CS_ERR_STORE;
    cs__bind_text(q, 1, sh->id);
    cs__bind_text(q, 2, sh->order_id);
    cs__bind_text(q, 3, sh->carrier);
    cs__bind_text(q, 4, sh->tracking_number);
    int r = sql_step(q);
    sql_reset(q);
    sql_clear_bindings(q);
    if (r != SQL_ROW && r != SQL_DONE)
        return cs__sql_fail(s, err, "look up a shipment id's parcel");
    *known = r == SQL_ROW;
    if (*known)
        return CS_OK;
    cs__bind_text(drop, 1, sh->id);
    return cs__sql_exec_stmt(s, drop, err, "forget a shipment id's parcel");
}

/* An announcement newer than the cancellation of its parcel (the order's
 * shipment of its carrier and number, under this id or a twin's) revives
 * it; its status is read again from its scans, which did not count while
 * it was cancelled. */
static cs_rc revive(cs_sql_t *s, const cs_event_t *ev, cs_err_t *err)
{
    const cs_shipment_t *sh = &ev->u.shipment;
    sql_stmt *up = cs__sql_stmt(s, Q_SH_REVIVE, err);
    sql_stmt *q = cs__sql_stmt(s, Q_SH_TWINS, err);
    char ids[TWINS_MAX][CS_ID_MAX + 1];
    size_t n = 0;
    int64_t changed;
    cs_rc rc;
    if (!up || !q)
        return CS_ERR_STORE;
    cs__bind_text(up, 1, sh->order_id);
    cs__bind_text(up, 2, sh->carrier);
    cs__bind_text(up, 3, sh->tracking_number);
    sql_bind_int64(up, 4, ev->occurred_at);
    if ((rc = cs__sql_exec_count(s, up, err, "revive a cancelled shipment", &changed)) ||
        changed == 0)
        return rc;
    cs__bind_text(q, 1, sh->order_id);
    cs__bind_text(q, 2, sh->carrier);
    cs__bind_text(q, 3, sh->tracking_number);
    int r = SQL_DONE;
    while (n < TWINS_MAX && (r = sql_step(q)) == SQL_ROW)
        copy_col(q, 0, ids[n++], sizeof ids[0]);
    sql_reset(q);
    sql_clear_bindings(q);
    if (n < TWINS_MAX && r != SQL_DONE)
        return cs__sql_fail(s, err, "read a revived shipment");
    for (size_t i = 0; i < n && !rc; i++)
        rc = cs__sql_refresh_shipment(s, ids[i], err);
    return rc;
}

/* A cancellation kept for shipment `id` before its announcement: applied
 * when that announcement is not newer, and not when the scans that came
 * before say the parcel was delivered; dropped either way. */
static cs_rc take_cancellation(cs_sql_t *s, const char *id, cs_err_t *err)
{
    sql_stmt *take = cs__sql_stmt(s, Q_SH_CANCEL_TAKE, err);
    sql_stmt *drop = cs__sql_stmt(s, Q_SH_CANCEL_DROP, err);
    cs_rc rc;
    if (!take || !drop)
        return CS_ERR_STORE;
    cs__bind_text(take, 1, id);
    if ((rc = cs__sql_exec_stmt(s, take, err, "apply an early shipment cancellation")))
        return rc;
    cs__bind_text(drop, 1, id);
    return cs__sql_exec_stmt(s, drop, err, "drop an early shipment cancellation");
}

static cs_rc fold_shipment(cs_sql_t *s, const cs_event_t *ev, const route_t *r, cs_err_t *err)
{
    const cs_shipment_t *sh = &ev->u.shipment;
    sql_stmt *put = cs__sql_stmt(s, Q_SH_PUT, err);
    member_t m_origin = { .heap = NULL }, m_dest = { .heap = NULL }, m_attrs = { .heap = NULL };
    const char *origin, *dest, *attrs;
    cs_rc rc = CS_OK;
    int adopted = 0, merged = 0;
    bool known = false;
    if (!put)
        return CS_ERR_STORE;
    if (r->shp_stale) /* older than its latest announcement, for another order */
        return CS_OK;
    /* a parcel announced again under an id that already names it */
    if ((rc = known_twin(s, sh, &known, err)))
        return rc;
    if (known)
        return revive(s, ev, err);
    if ((rc = member_text(ev, "origin", &m_origin, &origin, err)) ||
        (rc = member_text(ev, "destination", &m_dest, &dest, err)) ||
        (rc = member_text(ev, "attributes", &m_attrs, &attrs, err)))
        goto out;
    cs__bind_text(put, 1, sh->id);
    cs__bind_text(put, 2, sh->order_id);
    cs__bind_text(put, 3, sh->carrier);
    cs__bind_text(put, 4, sh->service);
    cs__bind_text(put, 5, sh->tracking_number);
    cs__bind_text(put, 6, origin);
    cs__bind_text(put, 7, dest);
    sql_bind_int64(put, 8, ev->occurred_at);
    cs__bind_text(put, 9, attrs);
    bind_region(put, 10, &sh->destination);
    if ((rc = cs__sql_exec_stmt(s, put, err, "write a shipment")))
        goto out;
    sql_stmt *handover = cs__sql_stmt(s, Q_SH_HANDOVER, err);
    if (!handover) {
        rc = CS_ERR_STORE;
        goto out;
    }
    cs__bind_text(handover, 1, sh->id);
    cs__bind_text(handover, 2, sh->order_id);
    sql_bind_int64(handover, 3, ev->occurred_at);
    if ((rc = cs__sql_exec_stmt(s, handover, err, "record a shipment's hand-over")))
        goto out;

    if ((rc = take_scans(s, sh, &adopted, err)))
        goto out;
    /* the parcel's scans, those it took and (moved to another order) those
     * it had, are in its order's timeline */
    if (adopted > 0 || r->shp_moved) {
        sql_stmt *ev_up = cs__sql_stmt(s, Q_EV_ADOPT_SCANS, err);
        if (!ev_up) {
            rc = CS_ERR_STORE;
            goto out;
        }
        cs__bind_text(ev_up, 1, sh->id);
        cs__bind_text(ev_up, 2, sh->order_id);
        if ((rc = cs__sql_exec_stmt(s, ev_up, err, "attach scan events to the order")))
            goto out;
    }
    if (adopted > 0 && (rc = cs__sql_refresh_shipment(s, sh->id, err)))
        goto out;
    if ((rc = revive(s, ev, err)) || (rc = take_cancellation(s, sh->id, err)))
        goto out;
    /* the order it left is judged again at once (the watch's re-check):
     * its promise followed this parcel */
    if (r->shp_moved) {
        sql_stmt *re = cs__sql_stmt(s, Q_PR_RECHECK, err);
        if (!re) {
            rc = CS_ERR_STORE;
            goto out;
        }
        cs__bind_text(re, 1, r->shp_left);
        if ((rc = cs__sql_exec_stmt(s, re, err, "have the order a parcel left judged again")))
            goto out;
    }
    /* one parcel announced under several ids: kept under the first */
    rc = cs__sql_merge_twins(s, sh->order_id, sh->carrier, sh->tracking_number, &merged, err);
out:
    member_done(&m_origin);
    member_done(&m_dest);
    member_done(&m_attrs);
    return rc;
}

/* A parcel the shop cancelled: refused when it was delivered (a label
 * cannot be voided after its delivery); changing nothing when older than
 * its latest announcement (it was announced again since); kept for a
 * shipment id not announced yet. */
static cs_rc fold_shipment_cancel(cs_sql_t *s, const cs_event_t *ev, const route_t *r,
                                  cs_err_t *err)
{
    const cs_shipment_cancel_t *c = &ev->u.shipment_cancel;
    sql_stmt *st;
    if (!r->shp_found) {
        if (!(st = cs__sql_stmt(s, Q_SH_CANCEL_KEEP, err)))
            return CS_ERR_STORE;
        cs__bind_text(st, 1, c->id);
        cs__bind_text(st, 2, c->order_id);
        sql_bind_int64(st, 3, ev->occurred_at);
        cs__bind_text(st, 4, c->reason);
        return cs__sql_exec_stmt(s, st, err, "keep a shipment cancellation");
    }
    if (r->shp_delivered_at) {
        char at[32];
        cs_time_format(r->shp_delivered_at, at, sizeof at);
        return cs_err_field(err, CS_ERR_RULE, "data.id",
                            "data.id: shipment \"%.64s\" was delivered at %s; a delivered parcel "
                            "cannot be cancelled",
                            c->id, at);
    }
    if (ev->occurred_at < r->shp_announced_at)
        return CS_OK; /* announced again after it: logged only */
    if (!(st = cs__sql_stmt(s, Q_SH_CANCEL, err)))
        return CS_ERR_STORE;
    cs__bind_text(st, 1, c->id);
    sql_bind_int64(st, 2, ev->occurred_at);
    cs__bind_text(st, 3, c->reason);
    return cs__sql_exec_stmt(s, st, err, "cancel a shipment");
}

cs_rc cs__sql_scan_waiting(cs_store_t *store, int64_t seq, bool *waiting, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *q = cs__sql_stmt(s, Q_SC_WAITING, err);
    if (!q)
        return CS_ERR_STORE;
    sql_bind_int64(q, 1, seq);
    int step = sql_step(q);
    cs_rc rc = CS_OK;
    if (step == SQL_ROW || step == SQL_DONE)
        *waiting = step == SQL_ROW;
    else
        rc = cs__sql_fail(s, err, "read whether a scan waits for its shipment");
    cs__stmt_done(q);
    return rc;
}

/* A scan received at `received_at`: stored, unless its parcel holds the
 * same scan already (SQL_SAME_SCAN: sent again under another event id; the
 * event is logged, the parcel keeps one and nothing changes), and folded
 * into its shipment's status. */
static cs_rc fold_scan(cs_sql_t *s, const cs_event_t *ev, int64_t seq, cs_ms_t received_at,
                       const route_t *r, cs_err_t *err)
{
    const cs_scan_t *sc = &ev->u.scan;
    if (r->scan_same)
        return CS_OK;
    sql_stmt *ins = cs__sql_stmt(s, Q_SC_INSERT, err);
    cs_rc rc;
    if (!ins)
        return CS_ERR_STORE;
    sql_bind_int64(ins, 1, seq);
    cs__bind_text(ins, 2, r->shp_found ? r->shp_id : NULL);
    cs__bind_text(ins, 3, r->shp_found ? NULL : sc->shipment_id);
    cs__bind_text(ins, 4, sc->carrier);
    cs__bind_text(ins, 5, sc->tracking_number);
    sql_bind_int(ins, 6, (int)sc->status);
    cs__bind_text(ins, 7, sc->carrier_code);
    cs__bind_text(ins, 8, sc->carrier_text);
    cs__bind_text(ins, 9, r->scan_loc);
    sql_bind_int64(ins, 10, ev->occurred_at);
    if (sc->reason != CS_INCIDENT_NONE)
        sql_bind_int(ins, 11, (int)sc->reason);
    sql_bind_int(ins, 12, sc->unmapped ? 1 : 0);
    bind_region(ins, 13, &sc->location);
    rc = cs__sql_exec_stmt(s, ins, err, "write a scan");
    if (rc || !r->shp_found || r->shp_cancelled)
        return rc; /* a cancelled parcel's scan is shown, not counted */

    /* The status is the latest scan's that counts (SQL_SCAN_COUNTS): a
     * delivered parcel stays delivered -- a later scan (a carrier's late
     * transit event, a code the tables do not know) is kept and shown but
     * does not undo it -- unless it goes back to the sender, and one on
     * its way back stays so. Delivered at: its first delivery, never
     * after it was received (SQL_DELIVERED_AT). A scan older than the
     * status has the shipment read again from its scans by the same rules
     * (cs__sql_refresh_shipment); one in order folds here. */
    int status = r->shp_status;
    cs_ms_t status_at = r->shp_status_at, delivered = r->shp_delivered_at;
    bool was_delivered = status == CS_TRACK_DELIVERED;
    if (status >= 0 && ev->occurred_at < status_at)
        return cs__sql_refresh_shipment(s, r->shp_id, err);
    if (status == CS_TRACK_RETURNED_TO_SENDER ||
        (was_delivered && sc->status != CS_TRACK_DELIVERED &&
         sc->status != CS_TRACK_RETURNED_TO_SENDER))
        return CS_OK; /* after its delivery or its return: shown, not counted */
    status = (int)sc->status;
    status_at = ev->occurred_at;
    cs_ms_t heard = received_at < ev->occurred_at ? received_at : ev->occurred_at;
    if (status != CS_TRACK_DELIVERED)
        delivered = 0;
    else if (!was_delivered)
        delivered = heard; /* a delivery that goes on keeps its start */
    else if (!delivered && (rc = delivered_since(s, r->shp_id, &delivered, err)))
        return rc;
    else if (heard < delivered) /* heard of earlier than the first (a clock ahead) */
        delivered = heard;
    if (status == r->shp_status && status_at == r->shp_status_at &&
        delivered == r->shp_delivered_at)
        return CS_OK;
    sql_stmt *set = cs__sql_stmt(s, Q_SH_SET_STATUS, err);
    if (!set)
        return CS_ERR_STORE;
    cs__bind_text(set, 1, r->shp_id);
    sql_bind_int(set, 2, status);
    sql_bind_int64(set, 3, status_at);
    cs__bind_time(set, 4, delivered);
    return cs__sql_exec_stmt(s, set, err, "update a shipment's status");
}

/* The earlier updates of a return or ticket that has come: its order (when
 * it names one) and its customer (a ticket's) for those that lacked them. */
static cs_rc adopt_orphans(cs_sql_t *s, char kind, const char *id, const char *order_id,
                           const char *customer_id, cs_err_t *err)
{
    char entity[CS_ID_MAX + 8];
    sql_stmt *st = cs__sql_stmt(s, Q_EV_ADOPT_ORPHANS, err);
    if (!st)
        return CS_ERR_STORE;
    if (!order_id && !customer_id)
        return CS_OK;
    snprintf(entity, sizeof entity, "%c:%s", kind, id);
    sql_bind_text_copy(st, 1, entity, -1);
    cs__bind_text(st, 2, order_id);
    cs__bind_text(st, 3, customer_id);
    return cs__sql_exec_stmt(s, st, err, "attach earlier updates to the order");
}

static cs_rc fold_return_row(cs_sql_t *s, const cs_event_t *ev, const route_t *r,
                             cs_err_t *err);

/* A return's fold between the tallies of the order it was of and the one
 * it is of after (a request sent again may name another): what it gave
 * back is no longer kept of the order. */
static cs_rc fold_return(cs_sql_t *s, const cs_event_t *ev, const route_t *r, cs_err_t *err)
{
    char was[CS_ID_MAX + 1] = "", now[CS_ID_MAX + 1] = "";
    if (r->row_found && r->row_has_order)
        snprintf(was, sizeof was, "%s", r->order_buf);
    if (ev->type == CS_EV_RETURN_REQUESTED && ev->u.ret.order_id)
        snprintf(now, sizeof now, "%s", ev->u.ret.order_id);
    if (strcmp(was, now) == 0)
        now[0] = '\0';
    cs_rc rc = tally(s, was, -1, err);
    if (!rc)
        rc = tally(s, now, -1, err);
    if (!rc)
        rc = fold_return_row(s, ev, r, err);
    if (!rc)
        rc = tally(s, was, 1, err);
    if (!rc)
        rc = tally(s, now, 1, err);
    return rc;
}

static cs_rc fold_return_row(cs_sql_t *s, const cs_event_t *ev, const route_t *r,
                             cs_err_t *err)
{
    const cs_return_t *re = &ev->u.ret;
    sql_stmt *put = cs__sql_stmt(s, Q_RE_PUT, err);
    cs_rc rc;
    if (!put)
        return CS_ERR_STORE;
    bool requested = ev->type == CS_EV_RETURN_REQUESTED;
    /* an update of the same instant as the request came after it; a
     * request sent again (a retry under a new event id, an edit) replaces
     * what it says, not where the return has got to since, nor when: an
     * update dated between the two still applies */
    bool newer = !r->row_found || ev->occurred_at > r->row_status_at ||
                 (!requested && ev->occurred_at == r->row_status_at);
    if (requested && r->row_requested_at)
        newer = false;
    const char *status = newer ? re->status : r->row_status;
    cs_ms_t status_at = newer ? ev->occurred_at : r->row_status_at;
    /* a request older than the one stored (sent again, edited, the older
     * arriving late): logged only, as an older order.placed */
    if (requested && r->row_requested_at && ev->occurred_at < r->row_requested_at)
        return CS_OK;
    int64_t refund = r->row_refund;
    if (!requested && re->refund_amount >= 0 && (newer || refund < 0))
        refund = re->refund_amount;
    /* refunded: an update says so, or closes the return naming what it
     * gave back; rejected: an update says so. Each keeps the latest such
     * update, however late it arrives (one older than the status stored
     * happened all the same), and the return gave back while its refund
     * is not older than its rejection (SQL_RETURN_GAVE): the same whatever
     * order the updates come in. An amount named while the return is
     * under way is the refund to come, not money given */
    cs_ms_t refunded_at = r->row_refunded_at, rejected_at = r->row_rejected_at;
    if (!requested && re->status) {
        bool gave = strcmp(re->status, "refunded") == 0 ||
                    (strcmp(re->status, "closed") == 0 && re->refund_amount >= 0);
        if (gave && ev->occurred_at > refunded_at)
            refunded_at = ev->occurred_at;
        if (strcmp(re->status, "rejected") == 0 && ev->occurred_at > rejected_at)
            rejected_at = ev->occurred_at;
    }
    cs__bind_text(put, 1, re->id);
    if (requested) {
        cs__bind_text(put, 2, re->order_id);
        cs__bind_text(put, 4, re->resolution);
        sql_bind_int64(put, 6, ev->occurred_at);
    } else {
        cs__bind_text(put, 2, r->row_has_order ? r->order_buf : NULL);
        cs__bind_text(put, 4, r->row_resolution[0] ? r->row_resolution : NULL);
        cs__bind_time(put, 6, r->row_requested_at);
    }
    cs__bind_text(put, 3, status);
    if (refund >= 0)
        sql_bind_int64(put, 5, refund);
    sql_bind_int64(put, 7, status_at);
    cs__bind_time(put, 8, refunded_at);
    cs__bind_time(put, 9, rejected_at);
    if ((rc = cs__sql_exec_stmt(s, put, err, "write a return")) || !requested)
        return rc;

    sql_stmt *del = cs__sql_stmt(s, Q_RI_DELETE, err);
    sql_stmt *ins = cs__sql_stmt(s, Q_RI_INSERT, err);
    if (!del || !ins)
        return CS_ERR_STORE;
    if (r->row_found) {
        cs__bind_text(del, 1, re->id);
        if ((rc = cs__sql_exec_stmt(s, del, err, "replace return items")))
            return rc;
    }
    for (size_t i = 0; i < re->n_items; i++) {
        cs__bind_text(ins, 1, re->id);
        sql_bind_int64(ins, 2, (int64_t)i);
        cs__bind_text(ins, 3, re->items[i].sku);
        sql_bind_int64(ins, 4, re->items[i].quantity);
        cs__bind_text(ins, 5, re->items[i].reason);
        if ((rc = cs__sql_exec_stmt(s, ins, err, "write a return item")))
            return rc;
    }
    if (r->row_found)
        return adopt_orphans(s, 'r', re->id, re->order_id, r->customer_id, err);
    return CS_OK;
}

static cs_rc fold_ticket(cs_sql_t *s, const cs_event_t *ev, int64_t seq, const route_t *r,
                         cs_err_t *err)
{
    const cs_ticket_t *t = &ev->u.ticket;
    sql_stmt *put = cs__sql_stmt(s, Q_TI_PUT, err);
    cs_rc rc;
    if (!put)
        return CS_ERR_STORE;
    bool created = ev->type == CS_EV_TICKET_CREATED;
    /* an update of the same instant as the creation came after it; a
     * creation sent again (a retry under a new event id, an edit) replaces
     * what the ticket says, not its status or when it got it: an update
     * dated between the two still applies */
    bool newer = !r->row_found || ev->occurred_at > r->row_status_at ||
                 (!created && ev->occurred_at == r->row_status_at);
    if (created && r->row_requested_at)
        newer = false;
    if (!created && r->row_found && !newer)
        return CS_OK; /* an older status: logged only */
    /* a creation older than the one stored (sent again, edited, the older
     * arriving late): logged only, as an older order.placed */
    if (created && r->row_requested_at && ev->occurred_at < r->row_requested_at)
        return touch_customer(s, t->customer_id, ev->occurred_at, err);
    cs__bind_text(put, 1, t->id);
    if (created) {
        cs__bind_text(put, 2, t->customer_id);
        cs__bind_text(put, 3, t->order_id);
        cs__bind_text(put, 4, newer ? "open" : r->row_status);
        cs__bind_text(put, 5, t->channel);
        cs__bind_text(put, 6, t->subject);
        cs__bind_text(put, 7, t->body);
        cs__bind_text(put, 8, t->category);
        sql_bind_int64(put, 9, ev->occurred_at);
        sql_bind_int64(put, 10, newer ? ev->occurred_at : r->row_status_at);
        sql_bind_int64(put, 11, seq); /* kept when one came before */
        if ((rc = cs__sql_exec_stmt(s, put, err, "write a ticket")) ||
            (rc = touch_customer(s, t->customer_id, ev->occurred_at, err)))
            return rc;
        if (r->row_found)
            return adopt_orphans(s, 't', t->id, t->order_id, t->customer_id, err);
        return CS_OK;
    }
    if (r->row_found) {
        sql_stmt *up = cs__sql_stmt(s, Q_TI_SET_STATUS, err);
        if (!up)
            return CS_ERR_STORE;
        cs__bind_text(up, 1, t->id);
        cs__bind_text(up, 2, t->status);
        sql_bind_int64(up, 3, ev->occurred_at);
        return cs__sql_exec_stmt(s, up, err, "update a ticket");
    }
    /* updated before created: a stub */
    cs__bind_text(put, 1, t->id);
    cs__bind_text(put, 4, t->status);
    sql_bind_int64(put, 10, ev->occurred_at);
    return cs__sql_exec_stmt(s, put, err, "record an early ticket update");
}

static cs_rc fold_feedback(cs_sql_t *s, const cs_event_t *ev, cs_err_t *err)
{
    const cs_feedback_t *f = &ev->u.feedback;
    sql_stmt *put = cs__sql_stmt(s, Q_FB_PUT, err);
    cs_rc rc;
    if (!put)
        return CS_ERR_STORE;
    cs__bind_text(put, 1, f->id);
    cs__bind_text(put, 2, f->kind);
    sql_bind_int64(put, 3, f->score);
    cs__bind_text(put, 4, f->customer_id);
    cs__bind_text(put, 5, f->order_id);
    cs__bind_text(put, 6, f->sku);
    cs__bind_text(put, 7, f->title);
    cs__bind_text(put, 8, f->text);
    cs__bind_text(put, 9, f->locale);
    sql_bind_int64(put, 10, ev->occurred_at);
    if ((rc = cs__sql_exec_stmt(s, put, err, "write feedback")))
        return rc;
    return f->customer_id ? touch_customer(s, f->customer_id, ev->occurred_at, err) : CS_OK;
}

static cs_rc fold_message(cs_sql_t *s, const cs_event_t *ev, int64_t seq, const route_t *r,
                          cs_err_t *err)
{
    const cs_message_status_t *m = &ev->u.msg;
    const char *customer_id = r->customer_id, *channel = r->msg_channel;
    sql_stmt *ins = cs__sql_stmt(s, Q_MS_INSERT, err);
    cs_rc rc;
    if (!ins)
        return CS_ERR_STORE;
    sql_bind_int64(ins, 1, seq);
    cs__bind_text(ins, 2, m->message_id);
    sql_bind_int(ins, 3, (int)m->status);
    cs__bind_text(ins, 4, channel);
    cs__bind_text(ins, 5, customer_id);
    cs__bind_text(ins, 6, m->detail);
    sql_bind_int64(ins, 7, ev->occurred_at);
    if ((rc = cs__sql_exec_stmt(s, ins, err, "write a message status")))
        return rc;
    /* a message of ours (message_id is its outbox id, and the customer
     * and channel it names are the message's: Q_MS_OUTBOX): its delivery
     * status */
    int64_t id;
    if (cs_parse_serial(m->message_id, &id)) {
        sql_stmt *up = cs__sql_stmt(s, Q_MS_OUTBOX, err);
        if (!up)
            return CS_ERR_STORE;
        sql_bind_int64(up, 1, id);
        sql_bind_int(up, 2, (int)m->status);
        sql_bind_int64(up, 3, ev->occurred_at);
        cs__bind_text(up, 4, customer_id);
        int ch = channel ? cs_channel_from_name(channel) : -1;
        if (ch >= 0)
            sql_bind_int(up, 5, ch);
        else
            sql_bind_null(up, 5);
        /* the detail, bounded, between two characters (a cut inside one
         * would be no text for the view to show) */
        if (m->detail && *m->detail)
            sql_bind_text_copy(up, 6, m->detail,
                               (int)cs_utf8_clip(m->detail, strlen(m->detail),
                                                 CS_DELIVERY_DETAIL_MAX));
        else
            sql_bind_null(up, 6);
        if ((rc = cs__sql_exec_stmt(s, up, err, "record a delivery status")))
            return rc;
    }
    if (!customer_id)
        return CS_OK;
    /* WhatsApp's 131050: the customer stopped the shop's marketing in
     * WhatsApp. It is their refusal of WhatsApp marketing, recorded as the
     * shop's own would be, at its time: a consent stated later (the shop's
     * yes anew) wins over it, one stated before does not */
    if (cs_msg_stops_wa_marketing(m->status, channel, m->detail)) {
        cs_customer_t cu;
        memset(&cu, 0, sizeof cu);
        cu.id = customer_id;
        cu.consent[CS_CHANNEL_WHATSAPP][1] = CS_CONSENT_NO;
        return fold_customer(s, &cu, NULL, ev->occurred_at, err);
    }
    return touch_customer(s, customer_id, ev->occurred_at, err);
}

/* ---- the entry point ---- */

/* pg_new_ids values */
#define NEW_ID ((void *)1)
#define USED_ID ((void *)2)

cs_rc cs__sql_log_end(cs_store_t *store, int64_t *seq, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    *seq = 0;
    sql_stmt *q = cs__sql_stmt(s, Q_EV_NEXT_SEQ, err);
    if (!q)
        return CS_ERR_STORE;
    int r = sql_step(q);
    if (r == SQL_ROW)
        *seq = sql_column_int64(q, 0) - 1;
    cs__stmt_done(q);
    return r == SQL_ROW ? CS_OK : cs__sql_fail(s, err, "read the log's end");
}

static cs_rc load_next_seq(cs_sql_t *s, cs_err_t *err)
{
    int64_t end;
    cs_rc rc = cs__sql_log_end(&s->base, &end, err);
    if (!rc)
        s->pg_next_seq = end + 1;
    return rc;
}

void cs__sql_ingest_reset(cs_sql_t *s)
{
    s->pg_next_seq = s->pg_seq_assigned = 0;
    if (s->pg_new_ids.n) {
        cs_map_free(&s->pg_new_ids);
        cs_map_init(&s->pg_new_ids);
    }
}

/* An array literal {"a","b"} of the ids (quotes and backslashes escaped). */
static cs_rc id_array(cs_buf_t *b, const cs_event_t *const *evs, size_t n)
{
    cs_rc rc = cs_buf_puts(b, "{");
    for (size_t i = 0; i < n && !rc; i++) {
        rc = cs_buf_puts(b, i ? ",\"" : "\"");
        for (const char *c = evs[i]->event_id; *c && !rc; c++) {
            if (*c == '"' || *c == '\\')
                rc = cs_buf_puts(b, "\\");
            if (!rc)
                rc = cs_buf_append(b, c, 1);
        }
        if (!rc)
            rc = cs_buf_puts(b, "\"");
    }
    return rc ? rc : cs_buf_puts(b, "}");
}

cs_rc cs__sql_ingest_hint(cs_store_t *store, const cs_event_t *const *evs, size_t n,
                          cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    cs_buf_t arr;
    cs_rc rc = CS_OK;
    if (!s->pg || !s->in_tx || n == 0)
        return CS_OK;
    cs_buf_init(&arr, (size_t)64 << 20);
    if (id_array(&arr, evs, n)) {
        cs_buf_free(&arr);
        return CS_OK; /* a hint: without it every append waits */
    }
    sql_stmt *q = cs__sql_stmt(s, Q_EV_KNOWN, err);
    if (!q) {
        cs_buf_free(&arr);
        return CS_ERR_STORE;
    }
    cs_map_t known;
    cs_map_init(&known);
    sql_bind_text(q, 1, arr.data, (int)arr.len);
    int r;
    while ((r = sql_step(q)) == SQL_ROW && !rc)
        rc = cs_map_put(&known, cs__col_text(q, 0), NEW_ID);
    cs__stmt_done(q);
    if (!rc && r != SQL_DONE && r != SQL_ROW)
        rc = cs__sql_fail(s, err, "look up the group's events");
    /* new: not logged; a repeat inside the group waits like any other */
    for (size_t i = 0; i < n && !rc; i++)
        if (!cs_map_get(&known, evs[i]->event_id) && !cs_map_get(&s->pg_new_ids, evs[i]->event_id))
            rc = cs_map_put(&s->pg_new_ids, evs[i]->event_id, NEW_ID);
    cs_map_free(&known);
    cs_buf_free(&arr);
    return rc == CS_ERR_NOMEM ? cs_errf(err, rc, "out of memory") : rc;
}

/* The seq of the event logged under ev's id (*seq = 0: none). A replay
 * reports it, whether the log refused the copy (the insert did nothing)
 * or resolve did (a refusal pays this read, not every event). */
/* Whether the logged event body (its type) says what ev says: the same
 * type and data. When and by which source it was sent may differ (a
 * producer stamping its retries anew). */
static bool same_event(const cs_event_t *ev, int type, const char *body, size_t len)
{
    if (type != (int)ev->type)
        return false;
    json_error_t je;
    json_t *was = cs_json_loadb(body, len, &je);
    bool same = was && json_equal(json_object_get(was, "data"),
                                  json_object_get(ev->json, "data"));
    json_decref(was);
    return same;
}

/* The seq of the event logged under ev's event_id into *seq (0 when none).
 * When the producer chose that id (ev->producer_id) and the event logged
 * under it says something else, CS_ERR_RULE naming event_id: a second
 * event must not pass for a replay of the first and be lost. */
static cs_rc logged_seq(cs_sql_t *s, const cs_event_t *ev, int64_t *seq, cs_err_t *err)
{
    cs_rc rc = CS_OK;
    sql_stmt *q = cs__sql_stmt(s, Q_EV_SEQ_BY_ID, err);
    if (!q)
        return CS_ERR_STORE;
    cs__bind_text(q, 1, ev->event_id);
    int r = sql_step(q);
    *seq = r == SQL_ROW ? sql_column_int64(q, 0) : 0;
    if (r != SQL_ROW && r != SQL_DONE) {
        rc = cs__sql_fail(s, err, "look up an event by its id");
    } else if (r == SQL_ROW && ev->producer_id && ev->json) {
        int type = sql_column_int(q, 1);
        const char *body = (const char *)sql_column_text(q, 2);
        size_t len = (size_t)sql_column_bytes(q, 2);
        if (!same_event(ev, type, body ? body : "", len)) {
            const char *tn = (unsigned)type < CS_EV__COUNT
                                 ? cs_event_type_name((cs_event_type_t)type) : "event";
            rc = cs_err_field(err, CS_ERR_RULE, "event_id",
                              "event_id: \"%s\" already names another event (seq %lld, %s %s "
                              "with other data); an event sent again must say the same, and a "
                              "change is an event of its own under a new event_id",
                              ev->event_id, (long long)*seq, strchr("aeiou", tn[0]) ? "an" : "a",
                              tn);
        }
    }
    sql_reset(q);
    sql_clear_bindings(q);
    return rc;
}

cs_rc cs__sql_ingest(cs_store_t *store, const cs_event_t *ev, cs_ms_t received_at,
                        cs_ingest_outcome_t *outcome, int64_t *seq, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    route_t r;
    char *body = NULL;
    cs_rc rc = CS_OK;
    *outcome = CS_INGEST_NEW;
    *seq = 0;
    if (!s->in_tx)
        return cs_errf(err, CS_ERR_INTERNAL, "store: ingest outside a transaction");
    memset(&r, 0, sizeof r);
    if ((rc = resolve(s, ev, &r, err))) {
        /* refused (a ticket, review or signal naming an order that has
         * since come as another customer's): a replay of an event logged
         * before is still that event, reported as the duplicate it is */
        if (rc == CS_ERR_RULE) {
            int64_t was = 0;
            cs_err_t lerr;
            cs_rc lr = logged_seq(s, ev, &was, &lerr); /* (err kept unless it fails) */
            if (lr) {
                rc = lr;
                if (err)
                    *err = lerr;
            } else if (was) {
                *seq = was;
                *outcome = CS_INGEST_DUPLICATE;
                cs_err_clear(err);
                rc = CS_OK;
            }
        }
        goto out;
    }

    /* PostgreSQL gives the seq itself (the write lock makes max + 1 safe),
     * so that an event ingest_hint found new is appended without waiting */
    bool pipelined = false;
    if (s->pg) {
        if (!s->pg_next_seq && (rc = load_next_seq(s, err)))
            goto out;
        pipelined = cs_map_get(&s->pg_new_ids, ev->event_id) == NEW_ID;
    }
    sql_stmt *ins = cs__sql_stmt(s, s->pg ? Q_EV_INSERT_SEQ : Q_EV_INSERT, err);
    if (!ins) {
        rc = CS_ERR_STORE;
        goto out;
    }
    const char *text = ev->body;
    size_t body_len = ev->body_len;
    if (!text) {
        body = cs_json_dumps(ev->json, JSON_COMPACT);
        if (!body) {
            rc = cs_errf(err, CS_ERR_NOMEM, "out of memory serializing an event");
            goto out;
        }
        text = body;
        body_len = strlen(body);
    }
    cs__bind_text(ins, 1, ev->event_id);
    sql_bind_int(ins, 2, (int)ev->type);
    sql_bind_int64(ins, 3, ev->occurred_at);
    sql_bind_int64(ins, 4, received_at);
    cs__bind_text(ins, 5, r.customer_id);
    cs__bind_text(ins, 6, r.order_id);
    cs__bind_text(ins, 7, r.entity[0] && !r.order_id ? r.entity : NULL);
    sql_bind_text(ins, 8, text, (int)body_len);
    if (s->pg)
        sql_bind_int64(ins, 9, s->pg_next_seq);
    int step;
    if (pipelined) {
        /* new for certain: appended without waiting for the answer */
        if ((rc = cs__sql_exec_stmt(s, ins, err, "append to the event log")) ||
            (rc = cs_map_put(&s->pg_new_ids, ev->event_id, USED_ID)))
            goto out;
        step = SQL_ROW;
        *seq = s->pg_next_seq;
    } else if (s->pg) {
        step = sql_step(ins);
        if (step == SQL_ROW)
            *seq = sql_column_int64(ins, 0);
        cs__stmt_done(ins);
    } else {
        step = sql_step(ins);
        if (step == SQL_DONE && sqlite3_changes(s->db) > 0) {
            step = SQL_ROW; /* inserted */
            *seq = sqlite3_last_insert_rowid(s->db);
        }
        cs__stmt_done(ins);
    }
    if (s->pg && step == SQL_ROW) {
        s->pg_seq_assigned = *seq;
        s->pg_next_seq = *seq + 1;
        s->pg_notify = true;
    }
    if (step != SQL_ROW && step != SQL_DONE) {
        rc = cs__sql_fail(s, err, "append to the event log");
        goto out;
    }
    if (step == SQL_DONE) {
        /* a replay: report the original and change nothing (or another
         * event under a producer's id: refused) */
        if (!(rc = logged_seq(s, ev, seq, err)) && !*seq)
            rc = cs__sql_fail(s, err, "find the original of a duplicate");
        if (rc == CS_ERR_RULE)
            *seq = 0;
        else
            *outcome = CS_INGEST_DUPLICATE;
        goto out;
    }

    switch (ev->type) {
    case CS_EV_CUSTOMER_UPSERTED:
        rc = fold_customer(s, &ev->u.customer,
                           json_object_get(json_object_get(ev->json, "data"), "attributes"),
                           ev->occurred_at, err);
        break;
    case CS_EV_ORDER_PLACED: rc = fold_order(s, ev, err); break; /* tallies itself */
    case CS_EV_ORDER_CANCELLED:
        rc = fold_tallied(s, ev, ev->u.cancel.order_id, fold_cancel, err);
        break;
    case CS_EV_SHIPMENT_CREATED: rc = fold_shipment(s, ev, &r, err); break;
    case CS_EV_SHIPMENT_CANCELLED: rc = fold_shipment_cancel(s, ev, &r, err); break;
    case CS_EV_TRACKING_EVENT:
        rc = fold_scan(s, ev, *seq, received_at, &r, err);
        if (!rc && !r.shp_found)
            *outcome = CS_INGEST_PENDING;
        break;
    case CS_EV_RETURN_REQUESTED:
    case CS_EV_RETURN_UPDATED: rc = fold_return(s, ev, &r, err); break;
    case CS_EV_TICKET_CREATED:
    case CS_EV_TICKET_UPDATED: rc = fold_ticket(s, ev, *seq, &r, err); break;
    case CS_EV_FEEDBACK_SUBMITTED: rc = fold_feedback(s, ev, err); break;
    case CS_EV_MESSAGE_STATUS: rc = fold_message(s, ev, *seq, &r, err); break;
    case CS_EV_SIGNAL: rc = touch_customer(s, ev->u.signal.customer_id, ev->occurred_at, err); break;
    default: rc = cs_errf(err, CS_ERR_INTERNAL, "store: unknown event type %d", (int)ev->type);
    }
out:
    member_done(&r.scan_loc_m);
    cs_json_free(body);
    return rc;
}
