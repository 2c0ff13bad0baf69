/*
 * sql_track.c -- the order watch's records (schema version 9): what an
 * order's promise is read from, each order's first and current promise
 * with its moves, the re-check index and the compensation budget.
 */
#include "sql_int.h"

#include <string.h>

#include "../model/region.h"

#define REC_COLS                                                                             \
    "order_id,customer_id,first_from,first_to,first_point,first_source,first_at,cur_from,"   \
    "cur_to,cur_point,reason,quiet_days,level,updated_at,at_risk,risk_reason,risk_at,"       \
    "risk_events,check_at,closed,broken_at,late_days,comp_at,comp_code,comp_cost,comp_note," \
    "closed_shipment,own_to"

static const char *const tstmt_sql[QT__COUNT] = {
    [QT_ORDER] = "SELECT customer_id,status,currency,total,shipping,placed_at,promised_from,"
                 "promised_to,ship_carrier,ship_service,ship_origin,ship_destination,"
                 "ship_dest_region FROM orders WHERE id=?1",
    /* the parcel the order's promise follows (a cancelled one none) */
    [QT_SHIPMENT] = "SELECT id,carrier,service,origin,destination,created_at,delivered_at,"
                    "dest_region FROM shipments WHERE order_id=?1 AND cancelled_at IS NULL "
                    "ORDER BY " SQL_FOLLOWED_PARCEL_ORDER " LIMIT 1",
    /* the latest scan that counts (SQL_SCAN_COUNTS): the one the fold made
     * the shipment's status, found by it (an index seek) */
    [QT_LAST_SCAN] = "SELECT s.status,s.reason,s.occurred_at,s.location,s.region FROM "
                     "shipments h JOIN scans s ON s.shipment_id=h.id AND "
                     "s.occurred_at=h.status_at AND s.status=h.status WHERE h.id=?1 "
                     "ORDER BY s.seq DESC LIMIT 1",
    [QT_DESTINATIONS] = "SELECT destination FROM (SELECT destination,created_at AS at,id "
                        "FROM shipments WHERE order_id=?1 AND cancelled_at IS NULL "
                        "UNION ALL SELECT ship_destination,-1,'' FROM orders WHERE id=?1 "
                        "AND ship_destination IS NOT NULL) x ORDER BY at, id LIMIT 50",
    /* the order asked for, else the next by id, else the last */
    [QT_NEAR] = "SELECT coalesce((SELECT id FROM orders WHERE id>=?1 ORDER BY id LIMIT 1),"
                "(SELECT max(id) FROM orders))",
    /* the first scan of the trailing run at the latest scan's place */
    [QT_STAY] = "SELECT min(occurred_at) FROM scans WHERE shipment_id=?1 AND occurred_at>"
                "coalesce((SELECT max(occurred_at) FROM scans WHERE shipment_id=?1 AND "
                "coalesce(location,'')<>?2),-1)",
    /* the first "ready for pickup" scan of the trailing run of those and
     * "delivered" ones (a parcel waiting, or collected) */
    [QT_PICKUP] = "SELECT min(s.occurred_at) FROM scans s," SQL_SCAN_FIRSTS("?1")
                  " WHERE s.shipment_id=?1 AND s.status=?2 AND " SQL_SCAN_COUNTS
                  " AND s.occurred_at>coalesce((SELECT max(s.occurred_at) FROM scans s,"
                  SQL_SCAN_FIRSTS("?1") " WHERE s.shipment_id=?1 AND s.status<>?2 AND "
                  "s.status<>?3 AND " SQL_SCAN_COUNTS "),-1)",
    /* the first scan of the trailing run of those with one reason
     * (customs: the clearance began then); a scan without it at the
     * latest scan's own place (?3, when it names one) does not end the run:
     * a facility scan in the clearance hub is part of the clearance, a
     * scan elsewhere (export clearance, then the flight) is not */
    [QT_CUSTOMS] = "SELECT min(occurred_at) FROM scans WHERE shipment_id=?1 AND reason=?2 AND "
                   "occurred_at>coalesce((SELECT max(occurred_at) FROM scans WHERE "
                   "shipment_id=?1 AND coalesce(reason,0)<>?2 AND "
                   "(?3='' OR coalesce(location,'')<>?3)),-1)",
    /* another parcel of the order (?1) than this one (?2, created at ?3)
     * that this one was sent again for: not cancelled, on its way back
     * (?4), and gone wrong -- its first failed attempt (?5), exception
     * (?6) or return scan -- before this one was created; the rule of
     * the order view's `replaced` (http/status_api.c) */
    [QT_REPLACES] = "SELECT count(*) FROM shipments a WHERE a.order_id=?1 AND a.id<>?2 AND "
                    "a.cancelled_at IS NULL AND a.status=?4 AND (SELECT min(occurred_at) FROM "
                    "scans WHERE shipment_id=a.id AND status IN (?4,?5,?6))<?3",
    /* its first scan in a region (its destination's) */
    [QT_DEST] = "SELECT min(occurred_at) FROM scans WHERE shipment_id=?1 AND region=?2",
    /* (the orders but those sent back, SQL_ORDER_SENT_BACK; what was spent
     * as the customer view counts it: SQL_ORDER_SPENT) */
    [QT_CUSTOMER] = "SELECT count(CASE WHEN NOT " SQL_ORDER_SENT_BACK " THEN 1 END),"
                    "coalesce(sum(CASE WHEN currency=?3 THEN " SQL_ORDER_SPENT
                    " ELSE 0 END),0) FROM orders o WHERE customer_id=?1 "
                    "AND placed_at IS NOT NULL AND placed_at<=?2 AND status!='cancelled'",
    [QT_GET] = "SELECT " REC_COLS " FROM promises WHERE order_id=?1",
    [QT_PUT] = "INSERT INTO promises(" REC_COLS ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,"
               "?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25,?26,?27,?28) "
               "ON CONFLICT(order_id) DO UPDATE SET "
               "customer_id=excluded.customer_id,first_from=excluded.first_from,"
               "first_to=excluded.first_to,first_point=excluded.first_point,"
               "first_source=excluded.first_source,first_at=excluded.first_at,"
               "cur_from=excluded.cur_from,cur_to=excluded.cur_to,cur_point=excluded.cur_point,"
               "reason=excluded.reason,quiet_days=excluded.quiet_days,level=excluded.level,"
               "updated_at=excluded.updated_at,at_risk=excluded.at_risk,"
               "risk_reason=excluded.risk_reason,risk_at=excluded.risk_at,"
               "risk_events=excluded.risk_events,check_at=excluded.check_at,"
               "closed=excluded.closed,broken_at=excluded.broken_at,late_days=excluded.late_days,"
               "comp_at=excluded.comp_at,comp_code=excluded.comp_code,"
               "comp_cost=excluded.comp_cost,comp_note=excluded.comp_note,"
               "closed_shipment=excluded.closed_shipment,own_to=excluded.own_to",
    [QT_MOVE] = "INSERT INTO promise_moves(order_id,at,from_day,to_day,point,reason,at_risk) "
                "VALUES(?1,?2,?3,?4,?5,?6,?7)",
    [QT_DUE] = "SELECT " REC_COLS " FROM promises WHERE check_at<?1 ORDER BY check_at LIMIT ?2",
    [QT_NEXT] = "SELECT min(check_at) FROM promises",
    [QT_SPENT] = "SELECT coalesce(sum(comp_cost),0) FROM promises WHERE comp_at>=?1",
    /* the customer's part is the latest event routed to the customer
     * (events_by_customer): its updated_at is the event's occurred_at, and a
     * change may carry the same one as the last */
    [QT_VERSION] = "SELECT 0,(SELECT max(seq) FROM events WHERE order_id=?1),"
                   "(SELECT updated_at FROM promises WHERE order_id=?1),"
                   "(SELECT max(seq) FROM events WHERE customer_id=o.customer_id) "
                   "FROM orders o WHERE o.id=?1",
    /* the latest 100, in time order */
    [QT_V_MOVES] = "SELECT at,from_day,to_day,point,reason,at_risk FROM (SELECT * FROM "
                   "promise_moves WHERE order_id=?1 ORDER BY at DESC, id DESC LIMIT 100) m "
                   "ORDER BY at, id",
};

static sql_stmt *tstmt(cs_sql_t *s, tstmt_id_t id, cs_err_t *err)
{
    return cs__sql_cached(s, &s->tstmts[id], tstmt_sql[id], err);
}


void cs__sql_track_close(cs_sql_t *s)
{
    cs__sql_free_stmts(s->tstmts, CS_ARRAY_LEN(s->tstmts));
}

/* Step a one-row query; CS_ERR_NOTFOUND on no row (the statement is then
 * already reset), CS_OK with the row to read (the caller resets). */
static cs_rc one(cs_sql_t *s, sql_stmt *st, const char *what, cs_err_t *err)
{
    int r = sql_step(st);
    if (r == SQL_ROW)
        return CS_OK;
    cs__stmt_done(st);
    return r == SQL_DONE ? CS_ERR_NOTFOUND : cs__sql_fail(s, err, what);
}

cs_rc cs__sql_order_track(cs_store_t *store, const char *order_id, cs_ms_t placed_after,
                             cs_order_track_t *out, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    memset(out, 0, sizeof *out);
    out->last_status = -1;
    sql_stmt *st = tstmt(s, QT_ORDER, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, order_id);
    cs_rc rc = one(s, st, "read an order", err);
    if (rc)
        return rc;
    cs__col_copy(out->customer_id, sizeof out->customer_id, st, 0);
    cs__col_copy(out->status, sizeof out->status, st, 1);
    cs__col_copy(out->currency, sizeof out->currency, st, 2);
    out->total = sql_column_int64(st, 3);
    out->shipping = sql_column_int64(st, 4);
    out->placed_at = cs__col_time(st, 5);
    out->promised_from = cs__col_time(st, 6);
    out->promised_to = cs__col_time(st, 7);
    /* how checkout meant to send it, until a shipment says how it went */
    cs__col_copy(out->carrier, sizeof out->carrier, st, 8);
    cs__col_copy(out->service, sizeof out->service, st, 9);
    cs__col_copy(out->origin, sizeof out->origin, st, 10);
    cs__col_copy(out->destination, sizeof out->destination, st, 11);
    char dest_region[CS_REGION_KEY_MAX], region[CS_REGION_KEY_MAX];
    cs__col_copy(dest_region, sizeof dest_region, st, 12);
    cs__stmt_done(st);
    if (out->placed_at < placed_after)
        return CS_OK;

    char ship[CS_ID_MAX + 1] = "";
    if (!(st = tstmt(s, QT_SHIPMENT, err)))
        return CS_ERR_STORE;
    cs__bind_text(st, 1, order_id);
    rc = one(s, st, "read a shipment", err);
    if (rc && rc != CS_ERR_NOTFOUND)
        return rc;
    if (!rc) {
        out->shipped = true;
        cs__col_copy(ship, sizeof ship, st, 0);
        memcpy(out->shipment_id, ship, sizeof out->shipment_id);
        cs__col_copy(out->carrier, sizeof out->carrier, st, 1);
        cs__col_copy(out->service, sizeof out->service, st, 2);
        if (cs__col_text(st, 3) && *cs__col_text(st, 3))
            cs__col_copy(out->origin, sizeof out->origin, st, 3);
        /* its destination: the shipment's when that says where in a
         * country it goes (it has a region key) or the plan does not */
        if (cs__col_text(st, 4) && *cs__col_text(st, 4) && (cs__col_text(st, 7) || !dest_region[0]))
            cs__col_copy(out->destination, sizeof out->destination, st, 4);
        out->shipped_at = cs__col_time(st, 5);
        out->delivered_at = cs__col_time(st, 6);
        if (cs__col_text(st, 7))
            cs__col_copy(dest_region, sizeof dest_region, st, 7);
        cs__stmt_done(st);
        if (!(st = tstmt(s, QT_LAST_SCAN, err)))
            return CS_ERR_STORE;
        cs__bind_text(st, 1, ship);
        rc = one(s, st, "read a scan", err);
        if (rc && rc != CS_ERR_NOTFOUND)
            return rc;
        if (!rc) {
            char place[CS_ADDRESS_JSON_MAX];
            out->last_status = sql_column_int(st, 0);
            out->last_reason = sql_column_int(st, 1);
            out->last_scan_at = cs__col_time(st, 2);
            cs__col_copy(place, sizeof place, st, 3);
            cs__col_copy(region, sizeof region, st, 4);
            cs__stmt_done(st);
            if (place[0]) {
                if (!(st = tstmt(s, QT_STAY, err)))
                    return CS_ERR_STORE;
                cs__bind_text(st, 1, ship);
                cs__bind_text(st, 2, place);
                if ((rc = one(s, st, "read a parcel's stay", err)))
                    return rc;
                out->stay_since = cs__col_time(st, 0);
                cs__stmt_done(st);
            }
            /* waiting at a pickup point, or collected there: since when
             * (read only then) */
            if (out->last_status == CS_TRACK_AVAILABLE_FOR_PICKUP ||
                out->last_status == CS_TRACK_DELIVERED) {
                if (!(st = tstmt(s, QT_PICKUP, err)))
                    return CS_ERR_STORE;
                cs__bind_text(st, 1, ship);
                sql_bind_int(st, 2, CS_TRACK_AVAILABLE_FOR_PICKUP);
                sql_bind_int(st, 3, CS_TRACK_DELIVERED);
                if ((rc = one(s, st, "read a parcel's arrival at a pickup point", err)))
                    return rc;
                out->pickup_since = cs__col_time(st, 0);
                cs__stmt_done(st);
            }
            /* in customs clearance: since when (read only then) */
            if (out->last_reason == CS_INCIDENT_CUSTOMS &&
                out->last_status != CS_TRACK_EXCEPTION) {
                if (!(st = tstmt(s, QT_CUSTOMS, err)))
                    return CS_ERR_STORE;
                cs__bind_text(st, 1, ship);
                sql_bind_int(st, 2, CS_INCIDENT_CUSTOMS);
                cs__bind_text(st, 3, place);
                if ((rc = one(s, st, "read a parcel's time in customs", err)))
                    return rc;
                out->customs_since = cs__col_time(st, 0);
                cs__stmt_done(st);
            }
            /* in its destination region now: since when (read only then) */
            if (region[0] && strcmp(region, dest_region) == 0) {
                if (!(st = tstmt(s, QT_DEST, err)))
                    return CS_ERR_STORE;
                cs__bind_text(st, 1, ship);
                cs__bind_text(st, 2, region);
                if ((rc = one(s, st, "read a parcel's arrival in its region", err)))
                    return rc;
                out->dest_since = cs__col_time(st, 0);
                cs__stmt_done(st);
            }
        }
        /* sent again for a parcel gone back (read only when it is not
         * on its way back itself; a label alone may be one) */
        if (out->last_status != CS_TRACK_RETURNED_TO_SENDER) {
            if (!(st = tstmt(s, QT_REPLACES, err)))
                return CS_ERR_STORE;
            cs__bind_text(st, 1, order_id);
            cs__bind_text(st, 2, ship);
            cs__bind_time(st, 3, out->shipped_at);
            sql_bind_int(st, 4, CS_TRACK_RETURNED_TO_SENDER);
            sql_bind_int(st, 5, CS_TRACK_FAILED_ATTEMPT);
            sql_bind_int(st, 6, CS_TRACK_EXCEPTION);
            if ((rc = one(s, st, "read whether a parcel was sent again", err)))
                return rc;
            out->replaces = sql_column_int64(st, 0) > 0;
            cs__stmt_done(st);
        }
    }
    return CS_OK;
}

cs_rc cs__sql_order_destinations(cs_store_t *store, const char *order_id,
                                 cs_rc (*fn)(const char *destination, void *ud), void *ud,
                                 cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = tstmt(s, QT_DESTINATIONS, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, order_id);
    cs_rc rc = CS_OK;
    int r = SQL_DONE;
    while (!rc && (r = sql_step(st)) == SQL_ROW)
        rc = fn(cs__col_text(st, 0) ? cs__col_text(st, 0) : "", ud);
    if (!rc && r != SQL_DONE)
        rc = cs__sql_fail(s, err, "read an order's shipments");
    cs__stmt_done(st);
    return rc;
}

cs_rc cs__sql_order_near(cs_store_t *store, const char *order_id, char out[CS_ID_MAX + 1],
                         cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    out[0] = '\0';
    sql_stmt *st = tstmt(s, QT_NEAR, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, order_id);
    cs_rc rc = one(s, st, "find an order", err);
    if (rc)
        return rc;
    cs__col_copy(out, CS_ID_MAX + 1, st, 0);
    cs__stmt_done(st);
    return out[0] ? CS_OK : CS_ERR_NOTFOUND;
}

cs_rc cs__sql_customer_totals(cs_store_t *store, const char *customer_id, cs_ms_t until,
                              const char *currency, int64_t *orders, int64_t *spent,
                              cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    *orders = *spent = 0;
    sql_stmt *st = tstmt(s, QT_CUSTOMER, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, customer_id);
    sql_bind_int64(st, 2, until);
    cs__bind_text(st, 3, currency);
    cs_rc rc = one(s, st, "read a customer's orders", err);
    if (rc)
        return rc == CS_ERR_NOTFOUND ? CS_OK : rc;
    *orders = sql_column_int64(st, 0);
    *spent = sql_column_int64(st, 1);
    cs__stmt_done(st);
    return CS_OK;
}

cs_rc cs__sql_order_version(cs_store_t *store, const char *order_id, int64_t version[3],
                               cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = tstmt(s, QT_VERSION, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, order_id);
    cs_rc rc = one(s, st, "read an order's version", err);
    if (rc)
        return rc;
    version[0] = sql_column_int64(st, 1); /* an order changes only through its events */
    version[1] = sql_column_int64(st, 2);
    version[2] = sql_column_int64(st, 3);
    cs__stmt_done(st);
    return CS_OK;
}

static void read_rec(sql_stmt *st, cs_promise_rec_t *p)
{
    memset(p, 0, sizeof *p);
    cs__col_copy(p->order_id, sizeof p->order_id, st, 0);
    cs__col_copy(p->customer_id, sizeof p->customer_id, st, 1);
    p->first_from = cs__col_time(st, 2);
    p->first_to = cs__col_time(st, 3);
    p->first_point = cs__col_time(st, 4);
    cs__col_copy(p->first_source, sizeof p->first_source, st, 5);
    p->first_at = cs__col_time(st, 6);
    p->from = cs__col_time(st, 7);
    p->to = cs__col_time(st, 8);
    p->point = cs__col_time(st, 9);
    cs__col_copy(p->reason, sizeof p->reason, st, 10);
    p->quiet_days = sql_column_int(st, 11);
    p->level = sql_column_int(st, 12);
    p->updated_at = cs__col_time(st, 13);
    p->at_risk = sql_column_int(st, 14) != 0;
    cs__col_copy(p->risk_reason, sizeof p->risk_reason, st, 15);
    p->risk_at = cs__col_time(st, 16);
    p->risk_events = sql_column_int(st, 17);
    p->check_at = cs__col_time(st, 18);
    p->closed = sql_column_int(st, 19) != 0;
    p->broken_at = cs__col_time(st, 20);
    p->late_days = sql_column_int(st, 21);
    p->comp_at = cs__col_time(st, 22);
    cs__col_copy(p->comp_code, sizeof p->comp_code, st, 23);
    p->comp_cost = sql_column_int64(st, 24);
    cs__col_copy(p->comp_note, sizeof p->comp_note, st, 25);
    cs__col_copy(p->closed_shipment, sizeof p->closed_shipment, st, 26);
    p->own_to = cs__col_time(st, 27);
}

cs_rc cs__sql_promise_get(cs_store_t *store, const char *order_id, cs_promise_rec_t *out,
                             cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = tstmt(s, QT_GET, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, order_id);
    cs_rc rc = one(s, st, "read a promise", err);
    if (rc)
        return rc;
    read_rec(st, out);
    cs__stmt_done(st);
    return CS_OK;
}

static void bind_opt(sql_stmt *st, int i, const char *v)
{
    cs__bind_text(st, i, v && *v ? v : NULL);
}

cs_rc cs__sql_promise_put(cs_store_t *store, const cs_promise_rec_t *p, const char *move,
                             cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    if (s->read_only || !s->in_tx)
        return cs_errf(err, CS_ERR_STORE, "store: promises are written inside a transaction");
    sql_stmt *st = tstmt(s, QT_PUT, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, p->order_id);
    bind_opt(st, 2, p->customer_id);
    cs__bind_time(st, 3, p->first_from);
    cs__bind_time(st, 4, p->first_to);
    cs__bind_time(st, 5, p->first_point);
    bind_opt(st, 6, p->first_source);
    cs__bind_time(st, 7, p->first_at);
    cs__bind_time(st, 8, p->from);
    cs__bind_time(st, 9, p->to);
    cs__bind_time(st, 10, p->point);
    bind_opt(st, 11, p->reason);
    sql_bind_int(st, 12, p->quiet_days);
    sql_bind_int(st, 13, p->level);
    sql_bind_int64(st, 14, p->updated_at);
    sql_bind_int(st, 15, p->at_risk);
    bind_opt(st, 16, p->risk_reason);
    cs__bind_time(st, 17, p->risk_at);
    sql_bind_int(st, 18, p->risk_events);
    cs__bind_time(st, 19, p->check_at);
    sql_bind_int(st, 20, p->closed);
    cs__bind_time(st, 21, p->broken_at);
    sql_bind_int(st, 22, p->late_days);
    cs__bind_time(st, 23, p->comp_at);
    bind_opt(st, 24, p->comp_code);
    sql_bind_int64(st, 25, p->comp_cost);
    bind_opt(st, 26, p->comp_note);
    bind_opt(st, 27, p->closed_shipment);
    cs__bind_time(st, 28, p->own_to);
    cs_rc rc = cs__sql_exec_stmt(s, st, err, "record a promise");
    if (rc || !move)
        return rc;
    if (!(st = tstmt(s, QT_MOVE, err)))
        return CS_ERR_STORE;
    cs__bind_text(st, 1, p->order_id);
    sql_bind_int64(st, 2, p->updated_at);
    cs__bind_time(st, 3, p->from);
    cs__bind_time(st, 4, p->to);
    cs__bind_time(st, 5, p->point);
    cs__bind_text(st, 6, move);
    sql_bind_int(st, 7, p->at_risk);
    return cs__sql_exec_stmt(s, st, err, "record a promise move");
}

cs_rc cs__sql_promises_due(cs_store_t *store, cs_ms_t before, cs_promise_rec_t *out,
                              size_t max, size_t *n, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    *n = 0;
    sql_stmt *st = tstmt(s, QT_DUE, err);
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, before);
    sql_bind_int64(st, 2, (int64_t)max);
    int r;
    while (*n < max && (r = sql_step(st)) == SQL_ROW)
        read_rec(st, &out[(*n)++]);
    if (*n < max && r != SQL_DONE) {
        cs__stmt_done(st);
        return cs__sql_fail(s, err, "read due promises");
    }
    cs__stmt_done(st);
    return CS_OK;
}

cs_rc cs__sql_promise_next(cs_store_t *store, cs_ms_t *at, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    *at = 0;
    sql_stmt *st = tstmt(s, QT_NEXT, err);
    if (!st)
        return CS_ERR_STORE;
    cs_rc rc = one(s, st, "read the next promise check", err);
    if (rc)
        return rc == CS_ERR_NOTFOUND ? CS_OK : rc;
    *at = cs__col_time(st, 0);
    cs__stmt_done(st);
    return CS_OK;
}

cs_rc cs__sql_comp_spent(cs_store_t *store, cs_ms_t since, int64_t *cost, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    *cost = 0;
    sql_stmt *st = tstmt(s, QT_SPENT, err);
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, since);
    cs_rc rc = one(s, st, "sum compensation", err);
    if (rc)
        return rc == CS_ERR_NOTFOUND ? CS_OK : rc;
    *cost = sql_column_int64(st, 0);
    cs__stmt_done(st);
    return CS_OK;
}

cs_rc cs__sql_promise_json(cs_sql_t *s, const char *order_id, json_t **out, cs_err_t *err)
{
    cs_promise_rec_t p;
    *out = NULL;
    cs_rc rc = cs__sql_promise_get(&s->base, order_id, &p, err);
    if (rc)
        return rc == CS_ERR_NOTFOUND ? CS_OK : rc;
    json_t *o = json_pack(
        "{s:{s:o,s:o,s:o,s:s,s:o},s:{s:o,s:o,s:o,s:s,s:o},s:b,s:s?,s:o,s:o,s:i}", "first",
        "from", cs__json_time(p.first_from), "to", cs__json_time(p.first_to), "point",
        cs__json_time(p.first_point), "source", p.first_source, "at", cs__json_time(p.first_at),
        "current", "from", cs__json_time(p.from), "to", cs__json_time(p.to), "point",
        cs__json_time(p.point), "reason", p.reason, "updated_at", cs__json_time(p.updated_at),
        "at_risk", p.at_risk, "risk_reason", p.risk_reason[0] ? p.risk_reason : NULL,
        "next_check_at", cs__json_time(p.check_at), "broken_at", cs__json_time(p.broken_at),
        "late_days", p.late_days);
    if (o)
        json_object_set_new(o, "quiet_days", json_integer(p.quiet_days));
    if (!o)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    if (p.comp_at) {
        json_t *c = json_pack("{s:o,s:s?,s:s?}", "at", cs__json_time(p.comp_at), "code",
                              p.comp_code[0] ? p.comp_code : NULL, "note",
                              p.comp_note[0] ? p.comp_note : NULL);
        json_object_set_new(o, "compensation", c ? c : json_null());
    }
    sql_stmt *st = tstmt(s, QT_V_MOVES, err);
    if (!st) {
        json_decref(o);
        return CS_ERR_STORE;
    }
    cs__bind_text(st, 1, order_id);
    json_t *moves = json_array();
    int r;
    while ((r = sql_step(st)) == SQL_ROW) {
        json_t *m = json_pack("{s:o,s:o,s:o,s:o,s:s?,s:b}", "at",
                              cs__json_time(cs__col_time(st, 0)), "from",
                              cs__json_time(cs__col_time(st, 1)), "to",
                              cs__json_time(cs__col_time(st, 2)), "point",
                              cs__json_time(cs__col_time(st, 3)), "reason", cs__col_text(st, 4),
                              "at_risk", sql_column_int(st, 5) != 0);
        if (m)
            json_array_append_new(moves, m);
    }
    cs__stmt_done(st);
    json_object_set_new(o, "moves", moves);
    if (r != SQL_DONE) {
        json_decref(o);
        return cs__sql_fail(s, err, "read promise moves");
    }
    *out = o;
    return CS_OK;
}
