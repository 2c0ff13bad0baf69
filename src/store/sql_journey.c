/*
 * sql_journey.c -- journey versions and switches, runs, durable timers,
 * the outbox, log cursors and the state journeys read (schema version 2).
 */
#include "sql_int.h"

#include <stdio.h>
#include <string.h>

#include "../journey/journey.h"
#include "../lib/cs_json.h"
#include "../lib/cs_tz.h"

static const char *const jstmt_sql[QJ__COUNT] = {
    [QJ_VERSION_FIND] = "SELECT version FROM journey_versions WHERE journey=?1 AND hash=?2",
    [QJ_VERSION_MAX] = "SELECT coalesce(max(version),0) FROM journey_versions WHERE journey=?1",
    [QJ_VERSION_PUT] = "INSERT INTO journey_versions(journey,version,hash,source,created_at) "
                       "VALUES(?1,?2,?3,?4,?5)",
    [QJ_VERSION_SOURCE] = "SELECT source FROM journey_versions WHERE journey=?1 AND version=?2",
    [QJ_SWITCH_GET] = "SELECT enabled FROM journey_switches WHERE journey=?1",
    [QJ_SWITCH_SET] = "INSERT INTO journey_switches(journey,enabled,changed_at) VALUES(?1,?2,?3) "
                      "ON CONFLICT(journey) DO UPDATE SET enabled=excluded.enabled,"
                      "changed_at=excluded.changed_at",
    [QJ_RUN_INSERT] = "INSERT INTO journey_runs(journey,version,run_key,customer_id,order_id,"
                      "status,pc,gen,wait_event,trigger_seq,started_at,updated_at,held_since,"
                      "exit_reason,held_for) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,"
                      "?15) "
                      "ON CONFLICT(journey,run_key) DO NOTHING RETURNING id",
    [QJ_RUN_GET] = "SELECT id,journey,version,run_key,customer_id,order_id,status,pc,gen,"
                   "wait_event,trigger_seq,started_at,updated_at,held_since,exit_reason,held_for "
                   "FROM journey_runs WHERE id=?1",
    [QJ_RUN_BY_KEY] = "SELECT id,journey,version,run_key,customer_id,order_id,status,pc,gen,"
                      "wait_event,trigger_seq,started_at,updated_at,held_since,exit_reason,held_for "
                      "FROM journey_runs WHERE journey=?1 AND run_key=?2",
    [QJ_RUN_UPDATE] = "UPDATE journey_runs SET status=?2,pc=?3,gen=?4,wait_event=?5,"
                      "updated_at=?6,held_since=?7,exit_reason=?8,held_for=?9 WHERE id=?1",
    [QJ_RUNS_ORDER] = "SELECT id,journey,version,run_key,customer_id,order_id,status,pc,gen,"
                      "wait_event,trigger_seq,started_at,updated_at,held_since,exit_reason,held_for "
                      "FROM journey_runs WHERE order_id=?1 AND status=1",
    [QJ_RUNS_CUSTOMER] = "SELECT id,journey,version,run_key,customer_id,order_id,status,pc,gen,"
                         "wait_event,trigger_seq,started_at,updated_at,held_since,exit_reason,held_for "
                         "FROM journey_runs WHERE customer_id=?1 AND status=1",
    /* (runs_active_orderless and runs_active_by_journey, migration 34: a
     * customer's active runs about no order -- run_insert stores no order
     * as NULL -- and of one journey, not every run the customer ever had) */
    [QJ_RUNS_CUSTOMER_ORDERLESS] =
        "SELECT id,journey,version,run_key,customer_id,order_id,status,pc,gen,"
        "wait_event,trigger_seq,started_at,updated_at,held_since,exit_reason,held_for "
        "FROM journey_runs WHERE customer_id=?1 AND status=1 AND order_id IS NULL",
    [QJ_RUNS_CUSTOMER_JOURNEY] =
        "SELECT id,journey,version,run_key,customer_id,order_id,status,pc,gen,"
        "wait_event,trigger_seq,started_at,updated_at,held_since,exit_reason,held_for "
        "FROM journey_runs WHERE customer_id=?1 AND journey=?2 AND status=1",
    [QJ_RUNS_VIEW] = "SELECT id,journey,version,run_key,customer_id,order_id,status,pc,gen,"
                     "wait_event,trigger_seq,started_at,updated_at,held_since,exit_reason,"
                     "held_for,(SELECT min(t.due_at) FROM timers t WHERE t.run_id=r.id AND t.gen=r.gen) "
                     "FROM journey_runs r WHERE customer_id=?1 ORDER BY id DESC LIMIT 200",
    [QJ_TIMER_ADD] = "INSERT INTO timers(due_at,run_id,gen) VALUES(?1,?2,?3) RETURNING id",
    [QJ_TIMERS_DUE] = "SELECT id,due_at,run_id,gen FROM timers WHERE due_at<?1 "
                      "ORDER BY due_at,id LIMIT ?2",
    [QJ_TIMER_DELETE] = "DELETE FROM timers WHERE id=?1",
    [QJ_TIMERS_DELETE_DUE] = "DELETE FROM timers WHERE id IN (SELECT id FROM timers "
                             "WHERE due_at<?1 ORDER BY due_at,id LIMIT ?2)",
    [QJ_TIMER_NEXT] = "SELECT min(due_at) FROM timers",
    [QJ_TIMER_COUNT] = "SELECT count(*) FROM timers",
    [QJ_OUT_PUT] = "INSERT INTO outbox(idem_key,run_id,journey,customer_id,order_id,channel,"
                   "template,class,status,reason,recipient,locale,attempts,next_at,created_at,"
                   "sent_at,fallback,handed_at) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,"
                   "?13,?14,?15,?16,?17,?18) "
                   "ON CONFLICT(idem_key) DO NOTHING RETURNING id",
    [QJ_OUT_ID] = "SELECT id FROM outbox WHERE idem_key=?1",
    [QJ_OUT_BUDGET] = "SELECT count(*) FROM outbox WHERE customer_id=?1 AND created_at>=?2 "
                      "AND status IN (1,2,3) AND class IN (0,1,2)",
    [QJ_OUT_LAST_ASK] = "SELECT max(created_at) FROM outbox WHERE customer_id=?1 AND class=1 "
                        "AND status IN (1,2,3)",
    [QJ_OUT_ORDER_ASKED] = "SELECT 1 FROM outbox WHERE customer_id=?1 AND order_id=?2 AND "
                           "class=1 AND status IN (1,2,3) LIMIT 1",
    [QJ_OUT_VIEW] = "SELECT id,idem_key,journey,order_id,channel,template,class,status,reason,"
                    "recipient,locale,attempts,next_at,created_at,sent_at,delivery,delivery_at,provider_ref,"
                    "fallback,moved_from,moves,delivery_detail "
                    "FROM outbox WHERE customer_id=?1 ORDER BY id DESC LIMIT 200",
    [QJ_OUT_CLAIMABLE] = "SELECT id FROM outbox WHERE status=1 AND next_at<=?1 "
                         "UNION ALL SELECT id FROM outbox WHERE status=2 AND lease_until<?1 "
                         "ORDER BY 1 LIMIT ?2",
    [QJ_OUT_CLAIM] = "UPDATE outbox SET status=2,lease_until=?2,attempts=attempts+1,claimed_by=?3 "
                     "WHERE id=?1 "
                     "RETURNING id,idem_key,run_id,journey,customer_id,order_id,channel,template,"
                     "class,status,reason,recipient,locale,attempts,next_at,created_at,sent_at,"
                     "provider_ref,lease_until,fallback,handed_at,requeued_at",
    [QJ_OUT_RESULT] = "UPDATE outbox SET status=?2,next_at=?3,sent_at=?4,reason=?5,"
                      "provider_ref=coalesce(?6,provider_ref),recipient=coalesce(?9,recipient),"
                      "lease_until=NULL,failed_at=CASE WHEN ?2=4 THEN "
                      "coalesce(CAST(?10 AS BIGINT),created_at) ELSE NULL END,"
                      "attempts=attempts-?7,handed_at=coalesce(CAST(?11 AS BIGINT),handed_at) "
                      "WHERE id=?1 AND (CAST(?8 AS BIGINT) IS NULL OR "
                      "lease_until=CAST(?8 AS BIGINT))",
    /* the sender's fallback: the message, not handed over, goes by
     * another channel from now on (its attempt given back); the channel
     * it was queued on and the move's reason are kept (migration 32) */
    [QJ_OUT_MOVE] = "UPDATE outbox SET status=1,next_at=?2,sent_at=NULL,reason=?3,channel=?4,"
                    "recipient=?5,fallback=?6,lease_until=NULL,attempts=attempts-1,"
                    "moved_from=coalesce(moved_from,channel),"
                    "moves=coalesce(moves||'; '||CAST(?3 AS TEXT),CAST(?3 AS TEXT),moves) WHERE id=?1 "
                    "AND status=2 AND (CAST(?7 AS BIGINT) IS NULL OR "
                    "lease_until=CAST(?7 AS BIGINT))",
    [QJ_OUT_NEXT] = "SELECT min(next_at) FROM outbox WHERE status=1",
    /* ?2 NULL: the only node (SQLite), every claim is its own; claims
     * from before claimed_by existed count as anyone's */
    [QJ_OUT_RELEASE] = "UPDATE outbox SET status=1,next_at=?1,lease_until=NULL WHERE status=2 "
                       "AND (claimed_by=?2 OR claimed_by IS NULL OR ?2 IS NULL)",
    /* an operator's retry of failed messages (outbox_requeue): ?1..?6 the
     * filter, ?7 now; one statement, so a message is taken once */
#define REQUEUE_WHERE                                                                          \
    "status=4 AND failed_at>=?1 AND failed_at<?2 AND (CAST(?3 AS BIGINT)<0 OR "                \
    "channel=CAST(?3 AS BIGINT)) AND (CAST(?4 AS TEXT) IS NULL OR journey=CAST(?4 AS TEXT)) "  \
    "AND (CAST(?5 AS TEXT) IS NULL OR customer_id=CAST(?5 AS TEXT)) AND (CAST(?6 AS TEXT) IS " \
    "NULL OR substr(coalesce(reason,''),1,length(CAST(?6 AS TEXT)))=CAST(?6 AS TEXT))"
    [QJ_OUT_REQUEUE] = "UPDATE outbox SET status=1,attempts=0,next_at=?7,lease_until=NULL,"
                       "failed_at=NULL,handed_at=NULL,requeued_at=?7,"
                       "reason=substr('requeued: '||coalesce(reason,''),1,200) "
                       "WHERE " REQUEUE_WHERE " RETURNING id",
    [QJ_OUT_REQUEUE_DRY] = "SELECT id FROM outbox WHERE " REQUEUE_WHERE,
#undef REQUEUE_WHERE
    [QJ_OUT_BY_REF] = "SELECT id,idem_key,run_id,journey,customer_id,order_id,channel,template,"
                      "class,status,reason,recipient,locale,attempts,next_at,created_at,sent_at,"
                      "provider_ref,lease_until,fallback,handed_at,requeued_at FROM outbox "
                      "WHERE provider_ref=?1",
    [QJ_OUT_GET] = "SELECT id,idem_key,run_id,journey,customer_id,order_id,channel,template,"
                   "class,status,reason,recipient,locale,attempts,next_at,created_at,sent_at,"
                   "provider_ref,lease_until,fallback,handed_at,requeued_at FROM outbox "
                   "WHERE id=?1",
    [QJ_CURSOR_GET] = "SELECT seq FROM cursors WHERE name=?1",
    [QJ_TICKET_CREATED_SEQ] = "SELECT created_seq FROM tickets WHERE id=?1",
    [QJ_MESSAGE_CHANNEL] = "SELECT channel FROM message_events WHERE seq=?1",
    [QJ_CURSOR_SET] = "INSERT INTO cursors(name,seq) VALUES(?1,?2) "
                      "ON CONFLICT(name) DO UPDATE SET seq=excluded.seq",
    [QJ_EVENTS_END] = "SELECT coalesce(max(seq),0) FROM events",
    /* types filter the rows before their bodies are handed out */
    [QJ_EVENTS_AFTER] = "SELECT seq,order_id,customer_id,body FROM events WHERE seq>?1 AND "
                        "seq<=?4 AND (?3=0 OR (?3&(1<<CAST(type AS INTEGER)))!=0) ORDER BY seq LIMIT ?2",
#define OF_ORDER_SQL                                                                           \
    "SELECT seq,order_id,customer_id,body FROM events WHERE order_id=?1 AND seq<?2 AND (?3=0 "  \
    "OR (?3&(1<<CAST(type AS INTEGER)))!=0)"
    [QJ_EVENTS_OF_ORDER] = OF_ORDER_SQL " ORDER BY seq LIMIT ?4",
    [QJ_EVENTS_OF_PARCEL] = OF_ORDER_SQL " AND seq IN (SELECT seq FROM scans WHERE "
                                         "shipment_id=?5) ORDER BY seq LIMIT ?4",
#undef OF_ORDER_SQL
    [QJ_CTX_CUSTOMER] = "SELECT email,phone,name,locale,timezone,consent,first_seen_at,"
                        "contact_at,sms_contact_at,whatsapp_contact_at FROM customers "
                        "WHERE id=?1",
    /* the customer's orders, cancelled ones not counted: orders_count,
     * first_order_at, last_order_at and last_order_id count the same ones
     * (a cancelled order is not the customer's last order); the count from
     * the customer's tally (customer_orders), the first and the last from
     * the index of those orders (orders_live): not a pass over them */
    [QJ_CTX_ORDERS] = "SELECT (SELECT CAST(sum(live) AS BIGINT) FROM customer_orders WHERE "
                      "customer_id=?1),(SELECT placed_at FROM orders WHERE customer_id=?1 AND "
                      "placed_at IS NOT NULL AND status!='cancelled' ORDER BY placed_at LIMIT 1),"
                      "(SELECT placed_at FROM orders WHERE customer_id=?1 AND placed_at IS NOT "
                      "NULL AND status!='cancelled' ORDER BY placed_at DESC LIMIT 1)",
    [QJ_CTX_LAST_ORDER] = "SELECT id FROM orders WHERE customer_id=?1 AND placed_at IS NOT NULL "
                          "AND status!='cancelled' ORDER BY placed_at DESC, id DESC LIMIT 1",
    /* bounced, complained, unsubscribed: literal so the partial index
     * serves it; each kind and channel once, however many there are (at
     * most 3 x the channels rows: no page of them leaves one out), with
     * the latest time of each, which each channel's start compares with */
    [QJ_CTX_UNSUB] = "SELECT status,channel,max(occurred_at) FROM message_events WHERE "
                     "customer_id=?1 AND status IN (4, 5, 6) AND occurred_at>=?2 "
                     "GROUP BY status,channel",
    [QJ_CTX_ORDER] = "SELECT customer_id,currency,placed_at,subtotal,shipping,tax,discount,total,"
                     "promised_from,promised_to,status,attributes,"
                     "(SELECT at_risk FROM promises WHERE order_id=?1),"
                     "(SELECT own_to FROM promises WHERE order_id=?1) FROM orders WHERE id=?1",
    /* (and how many of them came before this one: a first purchase is
     * one before which the customer placed none, also when a later order
     * is known by the time a message about the first is written; the
     * average is of those in this order's currency ?4, the only ones its
     * total compares with, each at what the customer paid for it and
     * kept: its total less what its returns gave back, SQL_ORDER_SPENT as
     * total_spent counts it; one refunded in full is left out of the
     * average, as a purchase not made). From the customer's tally
     * (customer_orders, Q_OR_TALLY) less this order's own part, and the
     * orders placed from this one on (orders_live: those after the latest
     * are none), not a pass over every order: the average, the others,
     * those before, those in the average */
    [QJ_CTX_OTHER_ORDERS] = "SELECT CASE WHEN n>0 THEN ss*1.0/n END,live-me,live-later,n FROM "
                            "(SELECT live,me,later,sn-(CASE WHEN sv>0 THEN 1 ELSE 0 END) AS n,"
                            "ss0-(CASE WHEN sv>0 THEN sv ELSE 0 END) AS ss FROM (SELECT "
                            "coalesce((SELECT CAST(sum(live) AS BIGINT) FROM customer_orders "
                            "WHERE customer_id=?1),0) AS live,coalesce((SELECT spent_n FROM "
                            "customer_orders WHERE customer_id=?1 AND currency=?4),0) AS sn,"
                            "coalesce((SELECT spent_sum FROM customer_orders WHERE customer_id=?1 "
                            "AND currency=?4),0) AS ss0,(SELECT count(*) FROM orders WHERE id=?2 "
                            "AND customer_id=?1 AND placed_at IS NOT NULL AND status!='cancelled') "
                            "AS me,(SELECT " SQL_ORDER_SPENT " FROM orders o WHERE o.id=?2 AND "
                            "o.customer_id=?1 AND o.currency IS NOT NULL AND o.placed_at IS NOT "
                            "NULL AND o.status!='cancelled') AS sv,(SELECT count(*) FROM orders "
                            "WHERE customer_id=?1 AND placed_at IS NOT NULL AND status!='cancelled' "
                            "AND (placed_at>?3 OR (placed_at=?3 AND id>=?2))) AS later) a) b",
    [QJ_CTX_ITEMS] = "SELECT sku,name,category,unit_price,quantity,discount FROM order_items "
                     "WHERE order_id=?1 ORDER BY line",
    /* the order's parcels, first the parcel ?2 when it is one of them,
     * else the one its promise follows; a cancelled one only as ?2; each
     * with the incident reason its scans gave last (refused: ?3) */
    [QJ_CTX_SHIPMENT] = "SELECT id,carrier,service,tracking_number,status,status_at,"
                        "delivered_at,created_at,cancelled_at,coalesce((SELECT CASE WHEN x.reason=?3 "
                        "THEN 1 ELSE 0 END FROM scans x WHERE x.shipment_id=shipments.id AND "
                        "x.reason>0 ORDER BY x.occurred_at DESC,x.seq DESC LIMIT 1),0) "
                        "FROM shipments WHERE order_id=?1 "
                        "AND (cancelled_at IS NULL OR id=?2) "
                        "ORDER BY coalesce(id=?2,false) DESC," SQL_FOLLOWED_PARCEL_ORDER
                        " LIMIT 50",
    /* which parcel event ?1 concerns: a scan's, or (in its body) that of
     * a shipment.created or shipment.cancelled (types ?2, ?3) */
    [QJ_CTX_ABOUT] = "SELECT (SELECT shipment_id FROM scans WHERE seq=?1),"
                     "(SELECT body FROM events WHERE seq=?1 AND type IN (?2,?3))",
    /* the contact policy's (and order.ticket_open's): when the open ticket
     * updated last was updated (a ticket left open for long holds nothing:
     * ticket_stale_after) */
    /* another order of the customer at risk (the watch's flag; orders by
     * customer, then each one's promise by its key) */
    [QJ_OTHER_LATE] = "SELECT 1 FROM orders o JOIN promises p ON p.order_id=o.id "
                      "WHERE o.customer_id=?1 AND o.id<>?2 AND "
                      "o.status<>'cancelled' AND p.at_risk=1 AND p.closed=0 LIMIT 1",
    [QJ_TICKET_OPEN_AT] = "SELECT max(status_at) FROM tickets WHERE (order_id=?1 OR "
                          "customer_id=?2) AND status IN ('open','pending')",
    /* a return under way that has not given its money back: one refunded
     * and then received (or refunded before its parcel is on its way)
     * waits for nothing, as what was spent counts it (SQL_RETURN_GAVE) */
    [QJ_CTX_REFUND_PENDING] = "SELECT 1 FROM returns r WHERE r.order_id=?1 AND r.status IN "
                              "('requested','approved','label_created','in_transit','received') "
                              "AND NOT " SQL_RETURN_GAVE("r") " LIMIT 1",
#define DISC_COLS "id,code,idem_key,run_id,journey,customer_id,order_id,kind,value,currency," \
                  "created_at,expires_at"
    /* a taken idem_key keeps the first code; a taken code inserts nothing either */
    [QJ_DISC_PUT] = "INSERT INTO discount_codes(code,idem_key,run_id,journey,customer_id,order_id,"
                    "kind,value,currency,created_at,expires_at) "
                    "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11) ON CONFLICT DO NOTHING RETURNING id",
    [QJ_DISC_BY_KEY] = "SELECT " DISC_COLS " FROM discount_codes WHERE idem_key=?1",
    [QJ_DISC_BY_RUN] = "SELECT " DISC_COLS " FROM discount_codes WHERE run_id=?1 "
                       "ORDER BY id DESC LIMIT 1",
    [QJ_DISC_VIEW] = "SELECT " DISC_COLS " FROM discount_codes WHERE customer_id=?1 "
                     "ORDER BY id DESC LIMIT 200",
/* with the longest gap between consecutive points of the parcel's way:
 * its hand-over, then each scan up to the delivery, and the delivery (a
 * delivered scan dated after it was received is at delivered_at:
 * SQL_DELIVERED_AT) */
/* the first scan in the parcel's destination region (model/region.h) */
#define DEST_AT_SQL "(SELECT min(occurred_at) FROM scans WHERE shipment_id=s.id AND " \
                    "occurred_at<=s.delivered_at AND region=coalesce(s.dest_region," \
                    "o.ship_dest_region))"
/* a shipment's origin and destination, else those of its order's
 * shipping plan: the destination the plan's when only that has a region
 * key (order_track's rule) */
#define SHIP_ENDS_SQL "CASE WHEN coalesce(s.origin,'')='' THEN o.ship_origin ELSE s.origin END," \
                      "CASE WHEN coalesce(s.destination,'')='' OR (s.dest_region IS NULL AND " \
                      "o.ship_dest_region IS NOT NULL) THEN o.ship_destination ELSE " \
                      "s.destination END"
#define DELIVERY_SQL "SELECT s.carrier,s.service," SHIP_ENDS_SQL ",o.placed_at,s.created_at," \
                     "s.delivered_at,(SELECT prev || ' ' || at FROM (SELECT at," \
                     "lag(at, 1, s.created_at) OVER (ORDER BY at) AS prev FROM (SELECT " \
                     "occurred_at AS at FROM scans WHERE shipment_id=s.id AND " \
                     "occurred_at<=s.delivered_at UNION SELECT s.delivered_at) p) g " \
                     "ORDER BY at-prev DESC LIMIT 1)," DEST_AT_SQL " " \
                     "FROM shipments s JOIN orders o ON o.id=s.order_id " \
                     "WHERE s.delivered_at IS NOT NULL AND o.placed_at IS NOT NULL"
    /* the delivery scan ?1 completed: its parcel's first delivered scan
     * (SQL_SCAN_COUNTS' delivered_at, SQL_DELIVERED_AT, the first logged
     * among equals); the
     * gap is found from its scans in C (the window function above costs an
     * ephemeral table per call) */
    [QJ_DELIVERY_OF_SCAN] = "SELECT s.carrier,s.service," SHIP_ENDS_SQL ",o.placed_at,"
                            "s.created_at,s.delivered_at,s.id," DEST_AT_SQL " "
                            "FROM scans sc JOIN shipments s ON s.id=sc.shipment_id "
                            "JOIN orders o ON o.id=s.order_id LEFT JOIN events e ON "
                            "e.seq=sc.seq WHERE sc.seq=?1 AND sc.status=5 AND "
                            "s.delivered_at=" SQL_DELIVERED_AT("sc", "e") " AND "
                            "o.placed_at IS NOT NULL AND NOT EXISTS(SELECT 1 FROM scans x "
                            "LEFT JOIN events xe ON xe.seq=x.seq WHERE x.shipment_id=s.id AND "
                            "x.status=5 AND x.seq<sc.seq AND "
                            SQL_DELIVERED_AT("x", "xe") "=s.delivered_at)",
    [QJ_DELIVERY_SCANS] = "SELECT occurred_at FROM scans WHERE shipment_id=?1 AND "
                          "occurred_at<=?2 ORDER BY occurred_at",
    [QJ_CONTACT] = "SELECT email,phone,locale,timezone,consent,contact_at,sms_contact_at,"
                   "whatsapp_contact_at FROM customers WHERE id=?1",
    /* a bounce of one of the customer's messages (its message_id the
     * message's number, as the callbacks write it) on channel ?2 that
     * went to ?3: the customer's stops, by the partial index, then each
     * one's message among the customer's */
    [QJ_ADDRESS_BOUNCED] = "SELECT 1 FROM message_events e WHERE e.customer_id=?1 AND "
                           "e.status IN (4, 5, 6) AND e.status=4 AND e.occurred_at>=?4 AND "
                           "EXISTS(SELECT 1 FROM outbox o WHERE o.customer_id=?1 AND "
                           "o.channel=?2 AND o.recipient=?3 AND "
                           "CAST(o.id AS TEXT)=e.message_id) LIMIT 1",
    [QJ_EARLY_PUT] = "INSERT INTO early_statuses(channel,provider_ref,status,detail,occurred_at,"
                     "received_at) VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT DO NOTHING",
    [QJ_EARLY_PRUNE] = "DELETE FROM early_statuses WHERE received_at<?1",
    [QJ_EARLY_GET] = "SELECT status,detail,occurred_at,received_at FROM early_statuses "
                     "WHERE channel=?1 AND provider_ref=?2 ORDER BY occurred_at,status LIMIT ?3",
    [QJ_EARLY_DELETE] = "DELETE FROM early_statuses WHERE channel=?1 AND provider_ref=?2",
};

static sql_stmt *jstmt(cs_sql_t *s, jstmt_id_t id, cs_err_t *err)
{
    return cs__sql_cached(s, &s->jstmts[id], jstmt_sql[id], err);
}


static cs_rc need_tx(cs_sql_t *s, cs_err_t *err)
{
    if (s->read_only)
        return cs_errf(err, CS_ERR_INTERNAL, "store: write on a read-only handle");
    return CS_OK;
}

/* ---- versions and switches ---- */

cs_rc cs__sql_journey_version(cs_store_t *store, const char *journey, const char *hash,
                                 const char *source, cs_ms_t now, int *version, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_VERSION_FIND, err);
    cs_rc rc;
    if (!st || (rc = need_tx(s, err)))
        return st ? rc : CS_ERR_STORE;
    cs__bind_text(st, 1, journey);
    cs__bind_text(st, 2, hash);
    int r = sql_step(st);
    if (r == SQL_ROW) {
        *version = sql_column_int(st, 0);
        cs__stmt_done(st);
        return CS_OK;
    }
    cs__stmt_done(st);
    if (r != SQL_DONE)
        return cs__sql_fail(s, err, "find a journey version");
    if (!(st = jstmt(s, QJ_VERSION_MAX, err)))
        return CS_ERR_STORE;
    cs__bind_text(st, 1, journey);
    if (sql_step(st) != SQL_ROW) {
        cs__stmt_done(st);
        return cs__sql_fail(s, err, "number a journey version");
    }
    *version = sql_column_int(st, 0) + 1;
    cs__stmt_done(st);
    if (!(st = jstmt(s, QJ_VERSION_PUT, err)))
        return CS_ERR_STORE;
    cs__bind_text(st, 1, journey);
    sql_bind_int(st, 2, *version);
    cs__bind_text(st, 3, hash);
    cs__bind_text(st, 4, source);
    sql_bind_int64(st, 5, now);
    return cs__sql_exec_stmt(s, st, err, "store a journey version");
}

/* Every row of a query without parameters, to row(); a private statement,
 * so the callbacks may use the store and its cached statements. */
static cs_rc each_row(cs_sql_t *s, const char *sql, cs_rc (*row)(sql_stmt *st, void *ud),
                      void *ud, const char *what, cs_err_t *err)
{
    sql_stmt *st;
    cs_rc rc = cs__sql_prepare(s, sql, &st, err);
    if (rc)
        return rc;
    int r = SQL_DONE;
    while (!rc && (r = sql_step(st)) == SQL_ROW)
        rc = row(st, ud);
    if (!rc && r != SQL_DONE)
        rc = cs__sql_fail(s, err, what);
    sql_finalize(st);
    return rc;
}

/* Step an INSERT ... RETURNING id: *id gets the new row's id, or *none is
 * set when the insert did nothing (ON CONFLICT DO NOTHING). */
static cs_rc insert_id(cs_sql_t *s, sql_stmt *st, int64_t *id, bool *none, const char *what,
                       cs_err_t *err)
{
    int r = sql_step(st);
    if (r == SQL_ROW)
        *id = sql_column_int64(st, 0);
    cs__stmt_done(st);
    if (r != SQL_ROW && r != SQL_DONE)
        return cs__sql_fail(s, err, what);
    *none = r == SQL_DONE;
    return CS_OK;
}

typedef struct version_each {
    cs_rc (*fn)(const char *journey, int version, void *ud);
    void *ud;
} version_each_t;

static cs_rc version_row(sql_stmt *st, void *arg)
{
    version_each_t *v = arg;
    return v->fn(cs__col_text(st, 0), sql_column_int(st, 1), v->ud);
}

cs_rc cs__sql_journey_versions_each(cs_store_t *store,
                                       cs_rc (*fn)(const char *journey, int version, void *ud),
                                       void *ud, cs_err_t *err)
{
    version_each_t v = { fn, ud };
    return each_row((cs_sql_t *)store, "SELECT journey,version FROM journey_versions",
                    version_row, &v, "read journey versions", err);
}

cs_rc cs__sql_journey_source(cs_store_t *store, const char *journey, int version,
                                char **source, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_VERSION_SOURCE, err);
    *source = NULL;
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, journey);
    sql_bind_int(st, 2, version);
    int r = sql_step(st);
    cs_rc rc = CS_OK;
    if (r == SQL_ROW) {
        if (!(*source = cs_strdup(cs__col_text(st, 0) ? cs__col_text(st, 0) : "")))
            rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
    } else if (r == SQL_DONE) {
        rc = cs_errf(err, CS_ERR_NOTFOUND, "journey %s has no version %d", journey, version);
    } else {
        rc = cs__sql_fail(s, err, "read a journey version");
    }
    cs__stmt_done(st);
    return rc;
}

cs_rc cs__sql_journey_enabled_get(cs_store_t *store, const char *journey, int *enabled,
                                     cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_SWITCH_GET, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, journey);
    int r = sql_step(st);
    *enabled = r == SQL_ROW ? sql_column_int(st, 0) : -1;
    cs__stmt_done(st);
    return r == SQL_ROW || r == SQL_DONE ? CS_OK
                                               : cs__sql_fail(s, err, "read a journey switch");
}

cs_rc cs__sql_journey_enabled_set(cs_store_t *store, const char *journey, bool on,
                                     cs_ms_t now, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_SWITCH_SET, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, journey);
    sql_bind_int(st, 2, on ? 1 : 0);
    sql_bind_int64(st, 3, now);
    return cs__sql_exec_stmt(s, st, err, "switch a journey");
}

/* ---- runs ---- */

static void read_run(sql_stmt *st, cs_run_t *r)
{
    memset(r, 0, sizeof *r);
    r->id = sql_column_int64(st, 0);
    cs__col_copy(r->journey, sizeof r->journey, st, 1);
    r->version = sql_column_int(st, 2);
    cs__col_copy(r->run_key, sizeof r->run_key, st, 3);
    cs__col_copy(r->customer_id, sizeof r->customer_id, st, 4);
    cs__col_copy(r->order_id, sizeof r->order_id, st, 5);
    r->status = sql_column_int(st, 6);
    r->pc = sql_column_int(st, 7);
    r->gen = sql_column_int64(st, 8);
    r->wait_event = sql_column_int(st, 9);
    r->trigger_seq = sql_column_int64(st, 10);
    r->started_at = sql_column_int64(st, 11);
    r->updated_at = sql_column_int64(st, 12);
    r->held_since = sql_column_int64(st, 13);
    cs__col_copy(r->exit_reason, sizeof r->exit_reason, st, 14);
    cs__col_copy(r->held_for, sizeof r->held_for, st, 15);
}

cs_rc cs__sql_run_insert(cs_store_t *store, cs_run_t *run, bool *existed, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_RUN_INSERT, err);
    cs_rc rc;
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, run->journey);
    sql_bind_int(st, 2, run->version);
    cs__bind_text(st, 3, run->run_key);
    cs__bind_text(st, 4, run->customer_id);
    cs__bind_text(st, 5, run->order_id[0] ? run->order_id : NULL);
    sql_bind_int(st, 6, run->status);
    sql_bind_int(st, 7, run->pc);
    sql_bind_int64(st, 8, run->gen);
    sql_bind_int(st, 9, run->wait_event);
    sql_bind_int64(st, 10, run->trigger_seq);
    sql_bind_int64(st, 11, run->started_at);
    sql_bind_int64(st, 12, run->updated_at);
    sql_bind_int64(st, 13, run->held_since);
    cs__bind_text(st, 14, run->exit_reason[0] ? run->exit_reason : NULL);
    cs__bind_text(st, 15, run->held_for[0] ? run->held_for : NULL);
    if ((rc = insert_id(s, st, &run->id, existed, "start a journey run", err)))
        return rc;
    return CS_OK;
}

cs_rc cs__sql_run_get(cs_store_t *store, int64_t id, cs_run_t *out, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_RUN_GET, err);
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, id);
    int r = sql_step(st);
    cs_rc rc = CS_OK;
    if (r == SQL_ROW)
        read_run(st, out);
    else if (r == SQL_DONE)
        rc = cs_errf(err, CS_ERR_NOTFOUND, "no journey run %lld", (long long)id);
    else
        rc = cs__sql_fail(s, err, "read a journey run");
    cs__stmt_done(st);
    return rc;
}

cs_rc cs__sql_run_find(cs_store_t *store, const char *journey, const char *run_key, cs_run_t *out,
                        cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_RUN_BY_KEY, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, journey);
    cs__bind_text(st, 2, run_key);
    int r = sql_step(st);
    cs_rc rc = CS_OK;
    if (r == SQL_ROW)
        read_run(st, out);
    else if (r == SQL_DONE)
        rc = cs_errf(err, CS_ERR_NOTFOUND, "no run of journey %s with key %s", journey, run_key);
    else
        rc = cs__sql_fail(s, err, "read a journey run");
    cs__stmt_done(st);
    return rc;
}

cs_rc cs__sql_run_update(cs_store_t *store, const cs_run_t *run, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_RUN_UPDATE, err);
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, run->id);
    sql_bind_int(st, 2, run->status);
    sql_bind_int(st, 3, run->pc);
    sql_bind_int64(st, 4, run->gen);
    sql_bind_int(st, 5, run->wait_event);
    sql_bind_int64(st, 6, run->updated_at);
    sql_bind_int64(st, 7, run->held_since);
    cs__bind_text(st, 8, run->exit_reason[0] ? run->exit_reason : NULL);
    cs__bind_text(st, 9, run->held_for[0] ? run->held_for : NULL);
    return cs__sql_exec_stmt(s, st, err, "update a journey run");
}

static cs_rc collect_runs(cs_sql_t *s, sql_stmt *st, cs_run_t **out, size_t *n,
                          size_t *cap, cs_err_t *err)
{
    int r;
    cs_rc rc = CS_OK;
    while ((r = sql_step(st)) == SQL_ROW) {
        if (*n == *cap) {
            size_t c = *cap ? *cap * 2 : 8;
            cs_run_t *p = cs_realloc(*out, c * sizeof *p);
            if (!p) {
                rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
                break;
            }
            *out = p;
            *cap = c;
        }
        read_run(st, &(*out)[(*n)++]);
    }
    if (!rc && r != SQL_DONE && r != SQL_ROW)
        rc = cs__sql_fail(s, err, "list journey runs");
    cs__stmt_done(st);
    return rc;
}

static int by_id(const void *a, const void *b)
{
    int64_t x = ((const cs_run_t *)a)->id, y = ((const cs_run_t *)b)->id;
    return x < y ? -1 : x > y;
}

/* The order's active runs, then the customer's: all of them (customer_all),
 * else those about no order and those of the journeys listed; each once,
 * by id. */
static cs_rc runs_active(cs_sql_t *s, const char *order_id, const char *customer_id,
                         bool customer_all, const char *const *journeys, size_t njourneys,
                         cs_run_t **out, size_t *n, cs_err_t *err)
{
    size_t cap = 0;
    cs_rc rc = CS_OK;
    *out = NULL;
    *n = 0;
    if (order_id && *order_id) {
        sql_stmt *st = jstmt(s, QJ_RUNS_ORDER, err);
        if (!st)
            return CS_ERR_STORE;
        cs__bind_text(st, 1, order_id);
        rc = collect_runs(s, st, out, n, &cap, err);
    }
    if (!rc && customer_id && *customer_id) {
        sql_stmt *st = jstmt(s, customer_all ? QJ_RUNS_CUSTOMER : QJ_RUNS_CUSTOMER_ORDERLESS, err);
        if (!st)
            rc = CS_ERR_STORE;
        else {
            cs__bind_text(st, 1, customer_id);
            rc = collect_runs(s, st, out, n, &cap, err);
        }
    }
    for (size_t i = 0; !rc && !customer_all && customer_id && *customer_id && i < njourneys;
         i++) {
        sql_stmt *st = jstmt(s, QJ_RUNS_CUSTOMER_JOURNEY, err);
        if (!st) {
            rc = CS_ERR_STORE;
            break;
        }
        cs__bind_text(st, 1, customer_id);
        cs__bind_text(st, 2, journeys[i]);
        rc = collect_runs(s, st, out, n, &cap, err);
    }
    if (rc) {
        cs_free(*out);
        *out = NULL;
        *n = 0;
        return rc;
    }
    /* a run of the order that is the customer's is listed twice: sorted,
     * the second follows the first (a check of each row against those
     * before it took a customer's 12,000 runs 72 million comparisons) */
    if (*n > 1)
        qsort(*out, *n, sizeof **out, by_id);
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (!k || (*out)[k - 1].id != (*out)[i].id)
            (*out)[k++] = (*out)[i];
    *n = k;
    return CS_OK;
}

cs_rc cs__sql_runs_active(cs_store_t *store, const char *order_id, const char *customer_id,
                             bool customer_all, cs_run_t **out, size_t *n, cs_err_t *err)
{
    return runs_active((cs_sql_t *)store, order_id, customer_id, customer_all, NULL, 0, out, n,
                       err);
}

cs_rc cs__sql_runs_active_in(cs_store_t *store, const char *order_id, const char *customer_id,
                             const char *const *journeys, size_t njourneys, cs_run_t **out,
                             size_t *n, cs_err_t *err)
{
    return runs_active((cs_sql_t *)store, order_id, customer_id, false, journeys, njourneys, out,
                       n, err);
}

/* A run as the runs view shows it. An active run's wakes_at is when its
 * live timer is due (the wait it is in, a held send looked at again), NULL
 * while it waits for an event alone; held_since when the hold now in force
 * on its send began, held_for why the send waits (quiet hours, or the
 * hold's cause). All NULL for a run that is over. */
static json_t *run_json(const cs_run_t *r, sql_stmt *st, int wakes_col)
{
    bool active = r->status == CS_RUN_ACTIVE;
    json_t *wakes = !active || sql_column_type(st, wakes_col) == SQL_NULL
                        ? json_null()
                        : cs__json_time(sql_column_int64(st, wakes_col));
    return json_pack("{s:I,s:s,s:i,s:s,s:s?,s:s,s:i,s:o,s:o,s:o,s:s?,s:o,s:o,s:s?}", "id",
                     (json_int_t)r->id, "journey", r->journey, "version", r->version,
                     "run_key", r->run_key, "order_id", r->order_id[0] ? r->order_id : NULL,
                     "status", cs_run_status_name(r->status), "step", r->pc, "waiting_for",
                     r->wait_event
                         ? json_string(cs_event_type_name((cs_event_type_t)r->wait_event))
                         : json_null(),
                     "wakes_at", wakes, "held_since",
                     active && r->held_since ? cs__json_time(r->held_since) : json_null(),
                     "held_for", active && r->held_for[0] ? r->held_for : NULL, "started_at",
                     cs__json_time(r->started_at), "updated_at", cs__json_time(r->updated_at),
                     "exit_reason", r->exit_reason[0] ? r->exit_reason : NULL);
}

cs_rc cs__sql_runs_view(cs_store_t *store, const char *customer_id, json_t **out,
                           cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_RUNS_VIEW, err);
    *out = NULL;
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, customer_id);
    cs_rc rc = CS_OK;
    json_t *arr = json_array();
    int r = SQL_DONE;
    while (arr && (r = sql_step(st)) == SQL_ROW) {
        cs_run_t run;
        read_run(st, &run);
        json_t *o = run_json(&run, st, 16);
        if (!o || json_array_append_new(arr, o)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    if (!arr)
        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
    else if (r != SQL_DONE)
        rc = cs__sql_fail(s, err, "list a customer's journey runs");
    cs__stmt_done(st);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return CS_OK;
}

/* ---- timers ---- */

cs_rc cs__sql_timer_add(cs_store_t *store, const cs_timer_t *t, int64_t *id, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_TIMER_ADD, err);
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, t->due_at);
    sql_bind_int64(st, 2, t->run_id);
    sql_bind_int64(st, 3, t->gen);
    int64_t tid = 0;
    bool existed = false;
    s->pg_notify = true; /* PostgreSQL: other nodes may fire it */
    cs_rc rc = insert_id(s, st, &tid, &existed, "add a timer", err);
    if (!rc && id)
        *id = tid;
    return rc;
}

cs_rc cs__sql_timers_due(cs_store_t *store, cs_ms_t before, cs_timer_t *out, size_t max,
                            size_t *n, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_TIMERS_DUE, err);
    *n = 0;
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, before);
    sql_bind_int64(st, 2, (int64_t)max);
    int r;
    while ((r = sql_step(st)) == SQL_ROW && *n < max) {
        cs_timer_t *t = &out[(*n)++];
        t->id = sql_column_int64(st, 0);
        t->due_at = sql_column_int64(st, 1);
        t->run_id = sql_column_int64(st, 2);
        t->gen = sql_column_int64(st, 3);
    }
    cs__stmt_done(st);
    return r == SQL_DONE || r == SQL_ROW ? CS_OK
                                               : cs__sql_fail(s, err, "read due timers");
}

cs_rc cs__sql_timers_delete_due(cs_store_t *store, cs_ms_t before, size_t max, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_TIMERS_DELETE_DUE, err);
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, before);
    sql_bind_int64(st, 2, (int64_t)max);
    return cs__sql_exec_stmt(s, st, err, "delete fired timers");
}

cs_rc cs__sql_timer_delete(cs_store_t *store, int64_t id, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_TIMER_DELETE, err);
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, id);
    return cs__sql_exec_stmt(s, st, err, "delete a timer");
}

static cs_rc one_int(cs_sql_t *s, jstmt_id_t id, int64_t *v, cs_err_t *err, const char *what)
{
    sql_stmt *st = jstmt(s, id, err);
    if (!st)
        return CS_ERR_STORE;
    int r = sql_step(st);
    *v = r == SQL_ROW ? sql_column_int64(st, 0) : 0;
    cs__stmt_done(st);
    return r == SQL_ROW || r == SQL_DONE ? CS_OK : cs__sql_fail(s, err, what);
}

cs_rc cs__sql_timer_next(cs_store_t *store, cs_ms_t *due_at, cs_err_t *err)
{
    return one_int((cs_sql_t *)store, QJ_TIMER_NEXT, due_at, err, "read the next timer");
}

cs_rc cs__sql_timer_count(cs_store_t *store, int64_t *n, cs_err_t *err)
{
    return one_int((cs_sql_t *)store, QJ_TIMER_COUNT, n, err, "count timers");
}

/* ---- outbox ---- */

cs_rc cs__sql_outbox_put(cs_store_t *store, cs_outmsg_t *m, bool *existed, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_OUT_PUT, err);
    cs_rc rc;
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, m->idem_key);
    if (m->run_id)
        sql_bind_int64(st, 2, m->run_id);
    cs__bind_text(st, 3, m->journey[0] ? m->journey : NULL);
    cs__bind_text(st, 4, m->customer_id);
    cs__bind_text(st, 5, m->order_id[0] ? m->order_id : NULL);
    sql_bind_int(st, 6, m->channel);
    cs__bind_text(st, 7, m->template_name);
    sql_bind_int(st, 8, m->cls);
    sql_bind_int(st, 9, m->status);
    cs__bind_text(st, 10, m->reason[0] ? m->reason : NULL);
    cs__bind_text(st, 11, m->recipient[0] ? m->recipient : NULL);
    cs__bind_text(st, 12, m->locale[0] ? m->locale : NULL);
    sql_bind_int(st, 13, m->attempts);
    cs__bind_time(st, 14, m->next_at);
    sql_bind_int64(st, 15, m->created_at);
    cs__bind_time(st, 16, m->sent_at);
    cs__bind_text(st, 17, m->fallback[0] ? m->fallback : NULL);
    cs__bind_time(st, 18, m->handed_at);
    s->pg_notify = true; /* PostgreSQL: other nodes may send it */
    if ((rc = insert_id(s, st, &m->id, existed, "record a message", err)))
        return rc;
    if (!*existed)
        return CS_OK;
    if (!(st = jstmt(s, QJ_OUT_ID, err)))
        return CS_ERR_STORE;
    cs__bind_text(st, 1, m->idem_key);
    if (sql_step(st) == SQL_ROW)
        m->id = sql_column_int64(st, 0);
    cs__stmt_done(st);
    return CS_OK;
}

cs_rc cs__sql_contact_stats(cs_store_t *store, const char *customer_id, const char *order_id,
                               cs_ms_t since, cs_contact_stats_t *out, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    memset(out, 0, sizeof *out);
    sql_stmt *st = jstmt(s, QJ_OUT_BUDGET, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, customer_id);
    sql_bind_int64(st, 2, since);
    int r = sql_step(st);
    out->budget_used = r == SQL_ROW ? sql_column_int(st, 0) : 0;
    cs__stmt_done(st);
    if (r != SQL_ROW)
        return cs__sql_fail(s, err, "count a customer's messages");
    if (!(st = jstmt(s, QJ_OUT_LAST_ASK, err)))
        return CS_ERR_STORE;
    cs__bind_text(st, 1, customer_id);
    r = sql_step(st);
    out->last_ask_at = r == SQL_ROW ? cs__col_time(st, 0) : 0;
    cs__stmt_done(st);
    if (r != SQL_ROW)
        return cs__sql_fail(s, err, "find a customer's last ask");
    if (order_id && *order_id) {
        if (!(st = jstmt(s, QJ_OUT_ORDER_ASKED, err)))
            return CS_ERR_STORE;
        cs__bind_text(st, 1, customer_id);
        cs__bind_text(st, 2, order_id);
        r = sql_step(st);
        out->order_asked = r == SQL_ROW;
        cs__stmt_done(st);
        if (r != SQL_ROW && r != SQL_DONE)
            return cs__sql_fail(s, err, "find an order's ask");
    }
    cs_rc rc = cs__sql_other_order_late(store, customer_id, order_id, &out->other_late, err);
    if (rc)
        return rc;
    /* as the journeys' order.ticket_open, but also for a run about no order */
    return cs__sql_ticket_open(store, customer_id, order_id, &out->ticket_open, &out->ticket_at,
                               err);
}

cs_rc cs__sql_other_order_late(cs_store_t *store, const char *customer_id, const char *order_id,
                               bool *late, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    *late = false;
    sql_stmt *st = jstmt(s, QJ_OTHER_LATE, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, customer_id);
    cs__bind_text(st, 2, order_id ? order_id : ""); /* "": no order, as no id is */
    int r = sql_step(st);
    *late = r == SQL_ROW;
    cs__stmt_done(st);
    if (r != SQL_ROW && r != SQL_DONE)
        return cs__sql_fail(s, err, "find a customer's late order");
    return CS_OK;
}

cs_rc cs__sql_ticket_open(cs_store_t *store, const char *customer_id, const char *order_id,
                          bool *open, cs_ms_t *at, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    *open = false;
    *at = 0;
    sql_stmt *st = jstmt(s, QJ_TICKET_OPEN_AT, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, order_id && *order_id ? order_id : NULL);
    cs__bind_text(st, 2, customer_id);
    int r = sql_step(st);
    *open = r == SQL_ROW && sql_column_type(st, 0) != SQL_NULL;
    *at = *open ? cs__col_time(st, 0) : 0;
    cs__stmt_done(st);
    if (r != SQL_ROW)
        return cs__sql_fail(s, err, "find an open ticket");
    return CS_OK;
}

/* "a; b" split at sep into ["a", "b"] (a NULL or empty s: []). */
static json_t *split_list(const char *s, const char *sep)
{
    json_t *a = json_array();
    size_t n = strlen(sep);
    while (a && s && *s) {
        const char *end = strstr(s, sep);
        size_t len = end ? (size_t)(end - s) : strlen(s);
        json_array_append_new(a, json_stringn(s, len));
        s = end ? end + n : NULL;
    }
    return a;
}

cs_rc cs__sql_outbox_view(cs_store_t *store, const char *customer_id, json_t **out,
                             cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_OUT_VIEW, err);
    *out = NULL;
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, customer_id);
    json_t *arr = json_array();
    int r = SQL_DONE;
    while (arr && (r = sql_step(st)) == SQL_ROW) {
        json_t *o = json_pack(
            "{s:I,s:s,s:s?,s:s?,s:s?,s:s,s:s,s:s,s:s?,s:s?,s:s?,s:i,s:o,s:o,s:o}", "id",
            (json_int_t)sql_column_int64(st, 0), "idempotency_key", cs__col_text(st, 1),
            "journey", cs__col_text(st, 2), "order_id", cs__col_text(st, 3), "channel",
            cs_out_channel_name(sql_column_int(st, 4)), "template",
            cs__col_text(st, 5), "class", cs_msg_class_name((cs_msg_class_t)sql_column_int(st, 6)),
            "status", cs_out_status_name(sql_column_int(st, 7)), "reason", cs__col_text(st, 8),
            "recipient", cs__col_text(st, 9), "locale", cs__col_text(st, 10), "attempts",
            sql_column_int(st, 11), "next_at", cs__json_time(cs__col_time(st, 12)),
            "created_at", cs__json_time(cs__col_time(st, 13)), "sent_at",
            cs__json_time(cs__col_time(st, 14)));
        if (o && sql_column_type(st, 15) != SQL_NULL) {
            json_object_set_new(
                o, "delivery",
                json_string(cs_msg_status_name((cs_msg_status_t)sql_column_int(st, 15))));
            json_object_set_new(o, "delivery_at", cs__json_time(cs__col_time(st, 16)));
            /* why, when the provider said (a failure's code and text, a
             * bounce's reply); bounded as the fold writes it */
            const char *why = cs__col_text(st, 21);
            if (why && *why)
                json_object_set_new(o, "delivery_detail",
                                    json_stringn(why, cs_utf8_clip(why, strlen(why),
                                                                   CS_DELIVERY_DETAIL_MAX)));
        }
        if (o && cs__col_text(st, 17))
            json_object_set_new(o, "provider_ref", json_string(cs__col_text(st, 17)));
        if (o && cs__col_text(st, 18))
            json_object_set_new(o, "fallback", split_list(cs__col_text(st, 18), ","));
        if (o && sql_column_type(st, 19) != SQL_NULL) {
            json_object_set_new(o, "moved_from",
                                json_string(cs_out_channel_name(sql_column_int(st, 19))));
            json_object_set_new(o, "moves", split_list(cs__col_text(st, 20), "; "));
        }
        if (!o || json_array_append_new(arr, o)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    cs__stmt_done(st);
    if (!arr)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    *out = arr;
    return CS_OK;
}

static void read_out(sql_stmt *st, cs_outmsg_t *m)
{
    memset(m, 0, sizeof *m);
    m->id = sql_column_int64(st, 0);
    cs__col_copy(m->idem_key, sizeof m->idem_key, st, 1);
    m->run_id = sql_column_int64(st, 2);
    cs__col_copy(m->journey, sizeof m->journey, st, 3);
    cs__col_copy(m->customer_id, sizeof m->customer_id, st, 4);
    cs__col_copy(m->order_id, sizeof m->order_id, st, 5);
    m->channel = sql_column_int(st, 6);
    cs__col_copy(m->template_name, sizeof m->template_name, st, 7);
    m->cls = sql_column_int(st, 8);
    m->status = sql_column_int(st, 9);
    cs__col_copy(m->reason, sizeof m->reason, st, 10);
    cs__col_copy(m->recipient, sizeof m->recipient, st, 11);
    cs__col_copy(m->locale, sizeof m->locale, st, 12);
    m->attempts = sql_column_int(st, 13);
    m->next_at = cs__col_time(st, 14);
    m->created_at = cs__col_time(st, 15);
    m->sent_at = cs__col_time(st, 16);
    cs__col_copy(m->provider_ref, sizeof m->provider_ref, st, 17);
    m->lease_until = cs__col_time(st, 18);
    cs__col_copy(m->fallback, sizeof m->fallback, st, 19);
    m->handed_at = cs__col_time(st, 20);
    m->requeued_at = cs__col_time(st, 21);
}

cs_rc cs__sql_outbox_claim(cs_store_t *store, cs_ms_t now, cs_ms_t lease_until,
                              cs_outmsg_t *out, size_t max, size_t *n, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    int64_t ids[256];
    size_t k = 0;
    *n = 0;
    if (max > CS_ARRAY_LEN(ids))
        max = CS_ARRAY_LEN(ids);
    sql_stmt *st = jstmt(s, QJ_OUT_CLAIMABLE, err);
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, now);
    sql_bind_int64(st, 2, (int64_t)max);
    int r;
    while ((r = sql_step(st)) == SQL_ROW && k < max)
        ids[k++] = sql_column_int64(st, 0);
    cs__stmt_done(st);
    if (r != SQL_DONE && r != SQL_ROW)
        return cs__sql_fail(s, err, "find messages to send");
    if (!(st = jstmt(s, QJ_OUT_CLAIM, err)))
        return CS_ERR_STORE;
    for (size_t i = 0; i < k; i++) {
        sql_bind_int64(st, 1, ids[i]);
        sql_bind_int64(st, 2, lease_until);
        cs__bind_text(st, 3, s->node[0] ? s->node : NULL);
        r = sql_step(st);
        if (r == SQL_ROW)
            read_out(st, &out[(*n)++]);
        sql_reset(st);
        if (r != SQL_ROW && r != SQL_DONE) {
            cs__stmt_done(st);
            return cs__sql_fail(s, err, "claim a message");
        }
    }
    cs__stmt_done(st);
    return CS_OK;
}

cs_rc cs__sql_outbox_result(cs_store_t *store, const cs_out_result_t *res, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    if (res->move) {
        sql_stmt *mv = jstmt(s, QJ_OUT_MOVE, err);
        if (!mv)
            return CS_ERR_STORE;
        sql_bind_int64(mv, 1, res->id);
        cs__bind_time(mv, 2, res->next_at);
        cs__bind_text(mv, 3, res->reason);
        sql_bind_int(mv, 4, res->channel);
        cs__bind_text(mv, 5, res->recipient);
        cs__bind_text(mv, 6, res->fallback && *res->fallback ? res->fallback : NULL);
        cs__bind_time(mv, 7, res->lease_until);
        return cs__sql_exec_stmt(s, mv, err, "move a message to another channel");
    }
    sql_stmt *st = jstmt(s, QJ_OUT_RESULT, err);
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, res->id);
    sql_bind_int(st, 2, res->status);
    cs__bind_time(st, 3, res->next_at);
    cs__bind_time(st, 4, res->sent_at);
    cs__bind_text(st, 5, res->reason);
    cs__bind_text(st, 6, res->provider_ref && *res->provider_ref ? res->provider_ref : NULL);
    /* not handed over: its claim's attempt is given back */
    bool untried = res->untried &&
                   (res->status == CS_OUT_QUEUED || res->status == CS_OUT_SKIPPED);
    sql_bind_int(st, 7, untried ? 1 : 0);
    cs__bind_time(st, 8, res->lease_until);
    cs__bind_text(st, 9, res->recipient && *res->recipient ? res->recipient : NULL);
    cs__bind_time(st, 10, res->at);
    cs__bind_time(st, 11, res->handed ? res->at : 0);
    return cs__sql_exec_stmt(s, st, err, "record a send");
}

cs_rc cs__sql_outbox_release(cs_store_t *store, cs_ms_t now, int64_t *n, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_OUT_RELEASE, err);
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, now);
    cs__bind_text(st, 2, s->node[0] ? s->node : NULL);
    int64_t changed;
    cs_rc rc = cs__sql_exec_count(s, st, err, "release claimed messages", &changed);
    *n = rc ? 0 : changed;
    return rc;
}

/* Keep the lowest `max` ids seen, in order (a requeue's rows come in no
 * order). */
static void keep_low(int64_t *ids, size_t max, size_t *n, int64_t id)
{
    if (!max)
        return;
    if (*n == max) {
        if (id >= ids[max - 1])
            return;
        (*n)--;
    }
    size_t i = *n;
    for (; i > 0 && ids[i - 1] > id; i--)
        ids[i] = ids[i - 1];
    ids[i] = id;
    (*n)++;
}

cs_rc cs__sql_outbox_requeue(cs_store_t *store, const cs_out_filter_t *f, cs_ms_t now,
                             bool dry_run, int64_t *ids, size_t max, size_t *n_ids,
                             int64_t *n, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    *n = 0;
    *n_ids = 0;
    sql_stmt *st = jstmt(s, dry_run ? QJ_OUT_REQUEUE_DRY : QJ_OUT_REQUEUE, err);
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, f->failed_since);
    sql_bind_int64(st, 2, f->failed_until ? f->failed_until : INT64_MAX);
    sql_bind_int64(st, 3, f->channel);
    cs__bind_text(st, 4, f->journey && *f->journey ? f->journey : NULL);
    cs__bind_text(st, 5, f->customer_id && *f->customer_id ? f->customer_id : NULL);
    cs__bind_text(st, 6, f->reason_prefix && *f->reason_prefix ? f->reason_prefix : NULL);
    if (!dry_run)
        sql_bind_int64(st, 7, now);
    int r;
    while ((r = sql_step(st)) == SQL_ROW) {
        keep_low(ids, max, n_ids, sql_column_int64(st, 0));
        (*n)++;
    }
    cs__stmt_done(st);
    if (r != SQL_DONE) {
        *n = 0;
        *n_ids = 0;
        return cs__sql_fail(s, err, dry_run ? "find failed messages" : "requeue failed messages");
    }
    return CS_OK;
}

cs_rc cs__sql_outbox_next(cs_store_t *store, cs_ms_t *at, cs_err_t *err)
{
    return one_int((cs_sql_t *)store, QJ_OUT_NEXT, at, err, "read the next message");
}

static cs_rc out_one(cs_sql_t *s, jstmt_id_t id, sql_stmt *st, cs_outmsg_t *out,
                     cs_err_t *err)
{
    (void)id;
    int r = sql_step(st);
    cs_rc rc = CS_OK;
    if (r == SQL_ROW)
        read_out(st, out);
    else if (r == SQL_DONE)
        rc = cs_errf(err, CS_ERR_NOTFOUND, "no such message");
    else
        rc = cs__sql_fail(s, err, "read a message");
    cs__stmt_done(st);
    return rc;
}

cs_rc cs__sql_outbox_by_ref(cs_store_t *store, const char *ref, cs_outmsg_t *out,
                               cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_OUT_BY_REF, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, ref);
    return out_one(s, QJ_OUT_BY_REF, st, out, err);
}

cs_rc cs__sql_outbox_get(cs_store_t *store, int64_t id, cs_outmsg_t *out, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_OUT_GET, err);
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, id);
    return out_one(s, QJ_OUT_GET, st, out, err);
}

/* ---- delivery statuses that came before their reference ---- */

cs_rc cs__sql_early_status_put(cs_store_t *store, const cs_early_status_t *e,
                               cs_ms_t drop_before, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *prune = jstmt(s, QJ_EARLY_PRUNE, err), *put = jstmt(s, QJ_EARLY_PUT, err);
    cs_rc rc;
    if (!prune || !put)
        return CS_ERR_STORE;
    sql_bind_int64(prune, 1, drop_before);
    if ((rc = cs__sql_exec_stmt(s, prune, err, "drop old early delivery statuses")))
        return rc;
    sql_bind_int(put, 1, e->channel);
    cs__bind_text(put, 2, e->ref);
    sql_bind_int(put, 3, e->status);
    cs__bind_text(put, 4, e->detail[0] ? e->detail : NULL);
    sql_bind_int64(put, 5, e->occurred_at);
    sql_bind_int64(put, 6, e->received_at);
    return cs__sql_exec_stmt(s, put, err, "keep an early delivery status");
}

cs_rc cs__sql_early_status_take(cs_store_t *store, int channel, const char *ref,
                                cs_early_status_t *out, size_t max, size_t *n, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *get = jstmt(s, QJ_EARLY_GET, err);
    *n = 0;
    if (!get)
        return CS_ERR_STORE;
    sql_bind_int(get, 1, channel);
    cs__bind_text(get, 2, ref);
    sql_bind_int64(get, 3, (int64_t)max);
    int r;
    while ((r = sql_step(get)) == SQL_ROW && *n < max) {
        cs_early_status_t *e = &out[(*n)++];
        memset(e, 0, sizeof *e);
        e->channel = channel;
        cs_strlcpy(e->ref, ref, sizeof e->ref);
        e->status = (int)sql_column_int64(get, 0);
        const char *d = cs__col_text(get, 1);
        cs_strlcpy(e->detail, d ? d : "", sizeof e->detail);
        e->occurred_at = sql_column_int64(get, 2);
        e->received_at = sql_column_int64(get, 3);
    }
    cs__stmt_done(get);
    if (r != SQL_ROW && r != SQL_DONE)
        return cs__sql_fail(s, err, "read early delivery statuses");
    if (!*n)
        return CS_OK;
    sql_stmt *del = jstmt(s, QJ_EARLY_DELETE, err);
    if (!del)
        return CS_ERR_STORE;
    sql_bind_int(del, 1, channel);
    cs__bind_text(del, 2, ref);
    return cs__sql_exec_stmt(s, del, err, "drop early delivery statuses");
}

/* ---- cursors and the log ---- */

cs_rc cs__sql_cursor_get(cs_store_t *store, const char *name, int64_t *seq, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_CURSOR_GET, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, name);
    int r = sql_step(st);
    *seq = r == SQL_ROW ? sql_column_int64(st, 0) : 0;
    cs__stmt_done(st);
    if (r == SQL_DONE)
        return CS_ERR_NOTFOUND; /* quietly: a normal answer, err untouched */
    return r == SQL_ROW ? CS_OK : cs__sql_fail(s, err, "read a cursor");
}

cs_rc cs__sql_ticket_created_seq(cs_store_t *store, const char *ticket_id, int64_t *seq,
                                 cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_TICKET_CREATED_SEQ, err);
    *seq = 0;
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, ticket_id);
    int r = sql_step(st);
    if (r == SQL_ROW && sql_column_type(st, 0) != SQL_NULL)
        *seq = sql_column_int64(st, 0);
    cs__stmt_done(st);
    return r == SQL_ROW || r == SQL_DONE ? CS_OK : cs__sql_fail(s, err, "read a ticket's creation");
}

cs_rc cs__sql_message_channel(cs_store_t *store, int64_t seq, char out[16], cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_MESSAGE_CHANNEL, err);
    out[0] = '\0';
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, seq);
    int r = sql_step(st);
    if (r == SQL_ROW)
        cs__col_copy(out, 16, st, 0);
    cs__stmt_done(st);
    return r == SQL_ROW || r == SQL_DONE ? CS_OK : cs__sql_fail(s, err, "read a status's channel");
}

cs_rc cs__sql_cursor_set(cs_store_t *store, const char *name, int64_t seq, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_CURSOR_SET, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, name);
    sql_bind_int64(st, 2, seq);
    return cs__sql_exec_stmt(s, st, err, "move a cursor");
}

cs_rc cs__sql_events_after(cs_store_t *store, int64_t after, size_t max, uint32_t types,
                              cs_rc (*fn)(int64_t seq, const char *order_id,
                                          const char *customer_id, const char *body, size_t len,
                                          void *ud),
                              void *ud, int64_t *examined, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    *examined = after;
    /* the log's end now: what fn appends is for the next call */
    sql_stmt *st = jstmt(s, QJ_EVENTS_END, err);
    if (!st)
        return CS_ERR_STORE;
    int r = sql_step(st);
    int64_t end = r == SQL_ROW ? sql_column_int64(st, 0) : after;
    cs_rc rc = r == SQL_ROW ? CS_OK : cs__sql_fail(s, err, "read the event log's end");
    cs__stmt_done(st);
    if (rc || end <= after)
        return rc;
    /* The cached statement, prepared once: followers call this after every
     * group, and parsing it each time cost them more than the reading. fn
     * may use the store and its other statements; only a call from within
     * fn needs a private statement. */
    bool nested = s->following;
    if (nested) {
        if ((rc = cs__sql_prepare(s, jstmt_sql[QJ_EVENTS_AFTER], &st, err)))
            return rc;
    } else if (!(st = jstmt(s, QJ_EVENTS_AFTER, err))) {
        return CS_ERR_STORE;
    }
    s->following = true;
    sql_bind_int64(st, 1, after);
    sql_bind_int64(st, 2, (int64_t)max);
    sql_bind_int64(st, 3, (int64_t)types);
    sql_bind_int64(st, 4, end);
    r = SQL_DONE;
    size_t n = 0;
    int64_t last = after;
    while (!rc && (r = sql_step(st)) == SQL_ROW) {
        last = sql_column_int64(st, 0);
        n++;
        rc = fn(last, cs__col_text(st, 1), cs__col_text(st, 2),
                (const char *)sql_column_text(st, 3), (size_t)sql_column_bytes(st, 3),
                ud);
    }
    if (!rc && r != SQL_DONE)
        rc = cs__sql_fail(s, err, "read the event log");
    if (nested) {
        sql_finalize(st);
    } else {
        cs__stmt_done(st);
        s->following = false;
    }
    if (!rc)
        *examined = n >= max ? last : end;
    return rc;
}

cs_rc cs__sql_events_of_order(cs_store_t *store, const char *order_id, const char *shipment_id,
                              int64_t before, uint32_t types, size_t max,
                              cs_rc (*fn)(int64_t seq, const char *order_id,
                                          const char *customer_id, const char *body, size_t len,
                                          void *ud),
                              void *ud, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    jstmt_id_t q = shipment_id ? QJ_EVENTS_OF_PARCEL : QJ_EVENTS_OF_ORDER;
    /* cached, but fn may call this again (a journey replaying an order's
     * events asks for its returns): a call within fn prepares its own */
    bool nested = s->of_order;
    sql_stmt *st = NULL;
    cs_rc rc = CS_OK;
    if (nested) {
        if ((rc = cs__sql_prepare(s, jstmt_sql[q], &st, err)))
            return rc;
    } else if (!(st = jstmt(s, q, err))) {
        return CS_ERR_STORE;
    }
    s->of_order = true;
    cs__bind_text(st, 1, order_id);
    sql_bind_int64(st, 2, before);
    sql_bind_int64(st, 3, (int64_t)types);
    sql_bind_int64(st, 4, (int64_t)max);
    if (shipment_id)
        cs__bind_text(st, 5, shipment_id);
    int r = SQL_DONE;
    while (!rc && (r = sql_step(st)) == SQL_ROW)
        rc = fn(sql_column_int64(st, 0), cs__col_text(st, 1), cs__col_text(st, 2),
                (const char *)sql_column_text(st, 3), (size_t)sql_column_bytes(st, 3), ud);
    if (!rc && r != SQL_DONE)
        rc = cs__sql_fail(s, err, "read an order's events");
    if (nested) {
        sql_finalize(st);
    } else {
        cs__stmt_done(st);
        s->of_order = false;
    }
    return rc;
}

/* ---- the state journeys read ---- */

static json_t *money(sql_stmt *st, int col)
{
    if (sql_column_type(st, col) == SQL_NULL)
        return json_null();
    return json_real((double)sql_column_int64(st, col) / 100.0);
}

static json_t *consent_json(const char *c)
{
    json_t *o = json_object();
    for (int ch = 0; o && ch < CS_CHANNEL__COUNT; ch++) {
        json_t *p = json_object();
        for (int k = 0; p && k < 2; k++) {
            char v = (c && strlen(c) == 6) ? c[ch * 2 + k] : '-';
            json_object_set_new(p, k ? "marketing" : "transactional",
                                v == 'y' ? json_true() : v == 'n' ? json_false() : json_null());
        }
        json_object_set_new(o, cs_channel_name((cs_channel_t)ch), p);
    }
    return o;
}

/* What stops messages to a customer on each channel since the channel
 * last started over (since[], one per channel: contact_at for email,
 * sms_contact_at and whatsapp_contact_at; a new address or a consent
 * granted on the channel starts it over, the same record sent again, a
 * consent refused or a consent granted on another channel does not): an
 * unsubscribe or a complaint stops all but transactional ones on every
 * channel (out->unsubscribed, 1 << cs_channel_t) that has not started over
 * since; a bounce stops the channel it came from (out->bounced). Each
 * with the time of the latest that holds (out->unsubscribed_at,
 * bounced_at: the customer view shows them). Only these four of *out are
 * written. */
static cs_rc stops(cs_sql_t *s, const char *id, const cs_ms_t since[CS_CHANNEL__COUNT],
                   cs_contact_t *out, cs_err_t *err)
{
    _Static_assert(CS_MSG_BOUNCED == 4 && CS_MSG_COMPLAINED == 5 && CS_MSG_UNSUBSCRIBED == 6,
                   "QJ_CTX_UNSUB and migration 6 say 4, 5, 6");
    out->unsubscribed = 0;
    out->bounced = 0;
    memset(out->unsubscribed_at, 0, sizeof out->unsubscribed_at);
    memset(out->bounced_at, 0, sizeof out->bounced_at);
    cs_ms_t first = since[0];
    for (int ch = 1; ch < CS_CHANNEL__COUNT; ch++)
        if (since[ch] < first)
            first = since[ch];
    sql_stmt *st = jstmt(s, QJ_CTX_UNSUB, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, id);
    sql_bind_int64(st, 2, first);
    int r;
    while ((r = sql_step(st)) == SQL_ROW) {
        int status = sql_column_int(st, 0);
        cs_ms_t latest = cs__col_time(st, 2);
        if (status != CS_MSG_BOUNCED) {
            for (int ch = 0; ch < CS_CHANNEL__COUNT; ch++)
                if (latest >= since[ch]) {
                    out->unsubscribed |= 1u << ch;
                    if (latest > out->unsubscribed_at[ch])
                        out->unsubscribed_at[ch] = latest;
                }
            continue;
        }
        int ch = cs_channel_from_name(cs__col_text(st, 1));
        if (ch >= 0 && latest >= since[ch]) {
            out->bounced |= 1u << ch;
            if (latest > out->bounced_at[ch])
                out->bounced_at[ch] = latest;
        }
    }
    cs__stmt_done(st);
    return r == SQL_DONE ? CS_OK : cs__sql_fail(s, err, "read unsubscribes and bounces");
}

/* The channels of a set (1 << cs_channel_t) by name, in channel order:
 * ["email", "sms"]. */
static json_t *channel_list(unsigned set)
{
    json_t *a = json_array();
    for (int ch = 0; a && ch < CS_CHANNEL__COUNT; ch++)
        if (set & (1u << ch))
            json_array_append_new(a, json_string(cs_channel_name((cs_channel_t)ch)));
    return a;
}

static cs_rc ctx_customer(cs_sql_t *s, const char *id, bool lite, json_t **out, cs_err_t *err)
{
    sql_stmt *st = jstmt(s, QJ_CTX_CUSTOMER, err);
    *out = NULL;
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, id);
    int r = sql_step(st);
    if (r != SQL_ROW) {
        cs__stmt_done(st);
        return r == SQL_DONE ? CS_OK : cs__sql_fail(s, err, "read a customer");
    }
    cs_ms_t changed[CS_CHANNEL__COUNT];
    for (int ch = 0; ch < CS_CHANNEL__COUNT; ch++)
        changed[ch] = cs__col_time(st, 7 + ch);
    json_t *c = json_pack("{s:s,s:s?,s:s?,s:s?,s:s?,s:s?,s:o,s:o}", "id", id, "email",
                          cs__col_text(st, 0), "phone", cs__col_text(st, 1), "name",
                          cs__col_text(st, 2), "locale", cs__col_text(st, 3), "timezone",
                          cs__col_text(st, 4), "consents", consent_json(cs__col_text(st, 5)),
                          "first_seen_at", cs__json_time(cs__col_time(st, 6)));
    cs__stmt_done(st);
    if (!c)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    if (lite)
        goto unsub;
    if (!(st = jstmt(s, QJ_CTX_ORDERS, err)))
        goto fail;
    cs__bind_text(st, 1, id);
    if (sql_step(st) == SQL_ROW) {
        json_object_set_new(c, "orders_count", json_integer(sql_column_int64(st, 0)));
        json_object_set_new(c, "first_order_at", cs__json_time(cs__col_time(st, 1)));
        json_object_set_new(c, "last_order_at", cs__json_time(cs__col_time(st, 2)));
    }
    cs__stmt_done(st);
    if (!(st = jstmt(s, QJ_CTX_LAST_ORDER, err)))
        goto fail;
    cs__bind_text(st, 1, id);
    if (sql_step(st) == SQL_ROW)
        json_object_set_new(c, "last_order_id", json_string(cs__col_text(st, 0)));
    cs__stmt_done(st);
unsub: {
    cs_contact_t who;
    if (stops(s, id, changed, &who, err))
        goto fail;
    json_object_set_new(c, "unsubscribed", json_boolean(who.unsubscribed != 0));
    json_object_set_new(c, "unsubscribed_channels", channel_list(who.unsubscribed));
    json_object_set_new(c, "bounced", channel_list(who.bounced));
    *out = c;
    return CS_OK;
}
fail:
    json_decref(c);
    return CS_ERR_STORE;
}

static cs_rc ctx_order(cs_sql_t *s, const char *id, bool lite, json_t **out, cs_err_t *err)
{
    sql_stmt *st = jstmt(s, QJ_CTX_ORDER, err);
    *out = NULL;
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, id);
    int r = sql_step(st);
    if (r != SQL_ROW) {
        cs__stmt_done(st);
        return r == SQL_DONE ? CS_OK : cs__sql_fail(s, err, "read an order");
    }
    json_t *o = json_pack("{s:s,s:s?,s:s?,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:s?}", "id", id,
                          "customer_id", cs__col_text(st, 0), "currency", cs__col_text(st, 1),
                          "placed_at", cs__json_time(cs__col_time(st, 2)), "subtotal", money(st, 3),
                          "shipping", money(st, 4), "tax", money(st, 5), "discount", money(st, 6),
                          "total", money(st, 7), "promised_from",
                          cs__json_time(cs__col_time(st, 8)), "promised_to",
                          cs__json_time(cs__col_time(st, 9)), "status", cs__col_text(st, 10));
    cs_ms_t promised_to = cs__col_time(st, 9), placed_at = cs__col_time(st, 2);
    const char *attrs = cs__col_text(st, 11);
    json_t *aj = attrs ? json_loads(attrs, 0, NULL) : NULL;
    char cust[CS_ID_MAX + 1], cur[CS_ID_MAX + 1];
    cs__col_copy(cust, sizeof cust, st, 0);
    cs__col_copy(cur, sizeof cur, st, 1);
    int64_t total = sql_column_int64(st, 7);
    bool at_risk = sql_column_int(st, 12) != 0;
    /* the day the order is late after, as the order watch judges it
     * (docs/journeys.md): the promised one, or the own window's of a
     * parcel sent again when the watch found that one ends later (its
     * own_to, a local midnight past the promised day) */
    cs_ms_t own_to = cs__col_time(st, 13);
    cs_ms_t due_to = promised_to && own_to > promised_to ? own_to : promised_to;
    cs__stmt_done(st);
    if (!o) {
        json_decref(aj);
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    }
    json_object_set_new(o, "promised_to_ms", json_integer(promised_to));
    json_object_set_new(o, "due_to_ms", json_integer(due_to));
    /* the order watch's flag: late, silent, an incident (docs/tracking.md) */
    json_object_set_new(o, "at_risk", json_boolean(at_risk));
    json_object_set_new(o, "attributes", aj ? aj : json_object());
    if (lite) {
        *out = o;
        return CS_OK;
    }
    /* the customer's other orders, for "large for this customer" */
    if ((st = jstmt(s, QJ_CTX_OTHER_ORDERS, err)) != NULL) {
        cs__bind_text(st, 1, cust);
        cs__bind_text(st, 2, id);
        cs__bind_time(st, 3, placed_at);
        cs__bind_text(st, 4, cur);
        if (sql_step(st) == SQL_ROW) {
            double avg = sql_column_double(st, 0) / 100.0;
            int64_t others = sql_column_int64(st, 1), same = sql_column_int64(st, 3);
            json_object_set_new(o, "other_orders", json_integer(others));
            if (placed_at)
                json_object_set_new(o, "orders_before", json_integer(sql_column_int64(st, 2)));
            json_object_set_new(o, "other_orders_average", same ? json_real(avg) : json_null());
            json_object_set_new(o, "price_ratio", same && avg > 0
                                                      ? json_real((double)total / 100.0 / avg)
                                                      : json_null());
        }
        cs__stmt_done(st);
    }
    json_t *items = json_array();
    if (!(st = jstmt(s, QJ_CTX_ITEMS, err))) {
        json_decref(items);
        json_decref(o);
        return CS_ERR_STORE;
    }
    cs__bind_text(st, 1, id);
    int64_t count = 0;
    while (sql_step(st) == SQL_ROW) {
        json_array_append_new(items, json_pack("{s:s?,s:s?,s:s?,s:o,s:I,s:o}", "sku",
                                               cs__col_text(st, 0), "name", cs__col_text(st, 1),
                                               "category", cs__col_text(st, 2), "unit_price",
                                               money(st, 3), "quantity",
                                               (json_int_t)sql_column_int64(st, 4), "discount",
                                               money(st, 5)));
        count += sql_column_int64(st, 4);
    }
    cs__stmt_done(st);
    json_object_set_new(o, "items", items);
    json_object_set_new(o, "items_count", json_integer(count));
    *out = o;
    return CS_OK;
}

/* The parcel event `about` concerns, into id ("" for none): a scan's
 * (once its shipment is known), or a shipment.created's own. */
static cs_rc about_parcel(cs_sql_t *s, int64_t about, char id[CS_ID_MAX + 1], cs_err_t *err)
{
    id[0] = '\0';
    if (about <= 0)
        return CS_OK;
    sql_stmt *st = jstmt(s, QJ_CTX_ABOUT, err);
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, about);
    sql_bind_int(st, 2, CS_EV_SHIPMENT_CREATED);
    sql_bind_int(st, 3, CS_EV_SHIPMENT_CANCELLED);
    int r = sql_step(st);
    if (r == SQL_ROW && cs__col_text(st, 0)) {
        cs__col_copy(id, CS_ID_MAX + 1, st, 0);
    } else if (r == SQL_ROW && cs__col_text(st, 1)) {
        const char *body = cs__col_text(st, 1);
        json_t *ev = cs_json_loadb(body, strlen(body), NULL);
        const char *sid = json_string_value(json_object_get(json_object_get(ev, "data"), "id"));
        cs_strlcpy(id, sid ? sid : "", CS_ID_MAX + 1);
        json_decref(ev);
    }
    cs__stmt_done(st);
    if (r != SQL_ROW && r != SQL_DONE)
        return cs__sql_fail(s, err, "read the parcel of a run's trigger");
    return CS_OK;
}

_Static_assert(CS_CTX_PARCELS_MAX == 50, "QJ_CTX_SHIPMENT says 50");

typedef struct parcel_row {
    cs_ms_t created_at;
    bool cancelled;      /* the run's own parcel, cancelled: not one of the order's */
    char id[CS_ID_MAX + 1];
    json_t *json;
} parcel_row_t;

static int by_creation(const void *a, const void *b)
{
    const parcel_row_t *x = a, *y = b;
    if (x->created_at != y->created_at)
        return x->created_at < y->created_at ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* The run's parcel (*out: the one its trigger concerns, else the one the
 * promise follows) and, when `all` is given, every parcel of the order in
 * the order they were created (owned by the caller); one read. */
static cs_rc ctx_shipment(cs_sql_t *s, const char *order_id, int64_t about, json_t **out,
                          json_t **all, cs_err_t *err)
{
    char id[CS_ID_MAX + 1];
    parcel_row_t rows[CS_CTX_PARCELS_MAX];
    size_t n = 0, want = all ? CS_CTX_PARCELS_MAX : 1;
    *out = NULL;
    if (all)
        *all = NULL;
    cs_rc rc = about_parcel(s, about, id, err);
    if (rc)
        return rc;
    sql_stmt *st = jstmt(s, QJ_CTX_SHIPMENT, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, order_id);
    cs__bind_text(st, 2, id[0] ? id : NULL);
    sql_bind_int(st, 3, CS_INCIDENT_REFUSED);
    int r = SQL_DONE;
    while (n < want && (r = sql_step(st)) == SQL_ROW) {
        int status = sql_column_type(st, 4) == SQL_NULL ? -1 : sql_column_int(st, 4);
        json_t *p = json_pack("{s:s?,s:s?,s:s?,s:s?,s:s?,s:o,s:o}", "id", cs__col_text(st, 0),
                              "carrier", cs__col_text(st, 1), "service", cs__col_text(st, 2),
                              "tracking_number", cs__col_text(st, 3), "status",
                              status >= 0 ? cs_track_status_name((cs_track_status_t)status)
                                          : NULL,
                              "status_at", cs__json_time(cs__col_time(st, 5)), "delivered_at",
                              cs__json_time(cs__col_time(st, 6)));
        if (!p || json_object_set_new(p, "cancelled_at", cs__json_time(cs__col_time(st, 8))) ||
            json_object_set_new(p, "refused", json_boolean(sql_column_int(st, 9) != 0))) {
            json_decref(p);
            rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
            break;
        }
        rows[n].cancelled = sql_column_type(st, 8) != SQL_NULL;
        rows[n].created_at = cs__col_time(st, 7);
        cs__col_copy(rows[n].id, sizeof rows[n].id, st, 0);
        rows[n++].json = p;
    }
    if (!rc && r != SQL_ROW && r != SQL_DONE)
        rc = cs__sql_fail(s, err, "read a shipment");
    cs__stmt_done(st);
    if (!rc && n) {
        *out = json_incref(rows[0].json);
        if (all) {
            qsort(rows, n, sizeof rows[0], by_creation);
            json_t *list = json_array();
            for (size_t i = 0; !rc && i < n; i++)
                if (!list || (!rows[i].cancelled && json_array_append(list, rows[i].json)))
                    rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
            if (rc) {
                json_decref(list);
                json_decref(*out);
                *out = NULL;
            } else {
                *all = list;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        json_decref(rows[i].json);
    return rc;
}

static bool exists2(cs_sql_t *s, jstmt_id_t id, const char *a, const char *b)
{
    sql_stmt *st = jstmt(s, id, NULL);
    if (!st)
        return false;
    cs__bind_text(st, 1, a);
    if (b)
        cs__bind_text(st, 2, b);
    bool yes = sql_step(st) == SQL_ROW;
    cs__stmt_done(st);
    return yes;
}

cs_rc cs__sql_journey_context(cs_store_t *store, const char *customer_id,
                                 const char *order_id, int64_t about, unsigned flags,
                                 json_t **customer, json_t **order, json_t **shipment,
                                 cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    bool lite = flags & CS_CTX_LITE;
    cs_rc rc;
    *customer = *order = *shipment = NULL;
    if (customer_id && *customer_id && (rc = ctx_customer(s, customer_id, lite, customer, err)))
        return rc;
    if (order_id && *order_id) {
        json_t *all = NULL;
        if ((rc = ctx_order(s, order_id, lite, order, err)) ||
            (rc = ctx_shipment(s, order_id, about, shipment, lite ? NULL : &all, err))) {
            json_decref(*customer);
            json_decref(*order);
            *customer = *order = NULL;
            return rc;
        }
        if (*order && !lite) {
            size_t n = all ? json_array_size(all) : 0;
            json_object_set_new(*order, "shipments", all ? all : json_array());
            json_object_set_new(*order, "shipments_count", json_integer((json_int_t)n));
            json_object_set_new(*order, "several_parcels", json_boolean(n > 1));
            json_object_set_new(*order, "refund_pending",
                                json_boolean(exists2(s, QJ_CTX_REFUND_PENDING, order_id, NULL)));
        } else {
            json_decref(all);
        }
    }
    return CS_OK;
}

cs_rc cs__sql_contact_get(cs_store_t *store, const char *customer_id, cs_contact_t *out,
                             cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    memset(out, 0, sizeof *out);
    sql_stmt *st = jstmt(s, QJ_CONTACT, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, customer_id);
    int r = sql_step(st);
    if (r != SQL_ROW) {
        cs__stmt_done(st);
        return r == SQL_DONE ? CS_ERR_NOTFOUND : cs__sql_fail(s, err, "read a customer");
    }
    const char *c;
    if ((c = cs__col_text(st, 0)))
        cs_strlcpy(out->email, c, sizeof out->email);
    if ((c = cs__col_text(st, 1)))
        cs_strlcpy(out->phone, c, sizeof out->phone);
    if ((c = cs__col_text(st, 2)))
        cs_strlcpy(out->locale, c, sizeof out->locale);
    if ((c = cs__col_text(st, 3)))
        cs_strlcpy(out->timezone, c, sizeof out->timezone);
    c = cs__col_text(st, 4);
    cs_strlcpy(out->consent, c && strlen(c) == 6 ? c : "------", sizeof out->consent);
    for (int ch = 0; ch < CS_CHANNEL__COUNT; ch++)
        out->started_at[ch] = cs__col_time(st, 5 + ch);
    cs__stmt_done(st);
    return stops(s, customer_id, out->started_at, out, err);
}

cs_rc cs__sql_address_bounced(cs_store_t *store, const char *customer_id, int channel,
                              const char *address, cs_ms_t since, bool *out, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    *out = false;
    sql_stmt *st = jstmt(s, QJ_ADDRESS_BOUNCED, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, customer_id);
    sql_bind_int(st, 2, channel);
    cs__bind_text(st, 3, address);
    sql_bind_int64(st, 4, since);
    int r = sql_step(st);
    *out = r == SQL_ROW;
    cs__stmt_done(st);
    return r == SQL_ROW || r == SQL_DONE ? CS_OK
                                         : cs__sql_fail(s, err, "read an address's bounces");
}

/* ---- deliveries ---- */

/* columns 0-6 and 8 of either query; the gap ("from to") in column 7 of
 * DELIVERY_SQL */
static void read_delivery(sql_stmt *st, cs_delivery_row_t *d)
{
    memset(d, 0, sizeof *d);
    d->dest_at = cs__col_time(st, 8);
    cs__col_copy(d->carrier, sizeof d->carrier, st, 0);
    cs__col_copy(d->service, sizeof d->service, st, 1);
    cs__col_copy(d->origin, sizeof d->origin, st, 2);
    cs__col_copy(d->destination, sizeof d->destination, st, 3);
    d->placed_at = sql_column_int64(st, 4);
    d->shipped_at = sql_column_int64(st, 5);
    d->delivered_at = sql_column_int64(st, 6);
}

static void set_gap(cs_delivery_row_t *d, long long a, long long b)
{
    if (b >= a && a >= d->shipped_at) {
        d->gap_from = a;
        d->gap_to = b;
    }
}

static void read_gap_col(sql_stmt *st, cs_delivery_row_t *d)
{
    const char *gap = cs__col_text(st, 7);
    long long a, b;
    if (gap && sscanf(gap, "%lld %lld", &a, &b) == 2)
        set_gap(d, a, b);
}

typedef struct delivery_each {
    cs_rc (*fn)(const cs_delivery_row_t *d, void *ud);
    void *ud;
} delivery_each_t;

static cs_rc delivery_row(sql_stmt *st, void *arg)
{
    delivery_each_t *e = arg;
    cs_delivery_row_t d;
    read_delivery(st, &d);
    read_gap_col(st, &d);
    return e->fn(&d, e->ud);
}

cs_rc cs__sql_deliveries_each(cs_store_t *store,
                                 cs_rc (*fn)(const cs_delivery_row_t *d, void *ud), void *ud,
                                 cs_err_t *err)
{
    delivery_each_t e = { fn, ud };
    /* oldest first: a lane's model keeps the newest when it is full */
    return each_row((cs_sql_t *)store, DELIVERY_SQL " ORDER BY s.delivered_at,s.id",
                    delivery_row, &e, "read deliveries", err);
}

/* The longest gap between consecutive points of the way (the hand-over,
 * then each scan up to the delivery, and the delivery), as DELIVERY_SQL's
 * column 7 finds it; of equal gaps, the first. */
static cs_rc delivery_gap(cs_sql_t *s, const char *shipment_id, cs_delivery_row_t *d,
                          cs_err_t *err)
{
    sql_stmt *st = jstmt(s, QJ_DELIVERY_SCANS, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, shipment_id);
    sql_bind_int64(st, 2, d->delivered_at);
    long long prev = d->shipped_at, best_from = 0, best_to = 0;
    bool any = false;
    int r;
    while ((r = sql_step(st)) == SQL_ROW) {
        long long at = sql_column_int64(st, 0);
        if (!any || at - prev > best_to - best_from) {
            best_from = prev;
            best_to = at;
            any = true;
        }
        prev = at;
    }
    cs__stmt_done(st);
    if (r != SQL_DONE)
        return cs__sql_fail(s, err, "read a delivery's scans");
    /* the delivery: its scan is the last point already, unless dated
     * after it was received (SQL_DELIVERED_AT) */
    if (!any || d->delivered_at - prev > best_to - best_from) {
        best_from = prev;
        best_to = d->delivered_at;
    }
    set_gap(d, best_from, best_to);
    return CS_OK;
}

cs_rc cs__sql_delivery_of_scan(cs_store_t *store, int64_t seq, cs_delivery_row_t *out,
                               cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_DELIVERY_OF_SCAN, err);
    if (!st)
        return CS_ERR_STORE;
    sql_bind_int64(st, 1, seq);
    int r = sql_step(st);
    if (r == SQL_ROW) {
        read_delivery(st, out);
        cs__col_copy(out->shipment_id, sizeof out->shipment_id, st, 7);
    } else if (r != SQL_DONE) {
        cs_rc rc = cs__sql_fail(s, err, "read a delivery");
        cs__stmt_done(st);
        return rc;
    }
    cs__stmt_done(st);
    if (r == SQL_DONE)
        return CS_ERR_NOTFOUND;
    return delivery_gap(s, out->shipment_id, out, err);
}

/* ---- discount codes ---- */

static void read_disc(sql_stmt *st, cs_discount_t *d)
{
    memset(d, 0, sizeof *d);
    d->id = sql_column_int64(st, 0);
    cs__col_copy(d->code, sizeof d->code, st, 1);
    cs__col_copy(d->idem_key, sizeof d->idem_key, st, 2);
    d->run_id = sql_column_int64(st, 3);
    cs__col_copy(d->journey, sizeof d->journey, st, 4);
    cs__col_copy(d->customer_id, sizeof d->customer_id, st, 5);
    cs__col_copy(d->order_id, sizeof d->order_id, st, 6);
    d->kind = sql_column_int(st, 7);
    d->value = sql_column_double(st, 8);
    cs__col_copy(d->currency, sizeof d->currency, st, 9);
    d->created_at = sql_column_int64(st, 10);
    d->expires_at = sql_column_int64(st, 11);
}

static cs_rc disc_one(cs_sql_t *s, int q, const char *key, int64_t id, cs_discount_t *out,
                      cs_err_t *err)
{
    sql_stmt *st = jstmt(s, q, err);
    if (!st)
        return CS_ERR_STORE;
    if (key)
        cs__bind_text(st, 1, key);
    else
        sql_bind_int64(st, 1, id);
    int r = sql_step(st);
    if (r == SQL_ROW)
        read_disc(st, out);
    cs__stmt_done(st);
    return r == SQL_ROW    ? CS_OK
           : r == SQL_DONE ? CS_ERR_NOTFOUND
                              : cs__sql_fail(s, err, "read a discount code");
}

cs_rc cs__sql_discount_put(cs_store_t *store, cs_discount_t *d, bool *existed, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_DISC_PUT, err);
    *existed = false;
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, d->code);
    cs__bind_text(st, 2, d->idem_key);
    if (d->run_id)
        sql_bind_int64(st, 3, d->run_id);
    cs__bind_text(st, 4, d->journey[0] ? d->journey : NULL);
    cs__bind_text(st, 5, d->customer_id);
    cs__bind_text(st, 6, d->order_id[0] ? d->order_id : NULL);
    sql_bind_int(st, 7, d->kind);
    sql_bind_double(st, 8, d->value);
    cs__bind_text(st, 9, d->currency[0] ? d->currency : NULL);
    sql_bind_int64(st, 10, d->created_at);
    sql_bind_int64(st, 11, d->expires_at);
    bool none = false;
    cs_rc rc = insert_id(s, st, &d->id, &none, "record a discount code", err);
    if (rc || !none)
        return rc;
    /* nothing inserted: the idem_key has its code, or the code is taken
     * (no error raised, so a PostgreSQL transaction stays usable) */
    char key[sizeof d->idem_key];
    cs_strlcpy(key, d->idem_key, sizeof key);
    rc = disc_one(s, QJ_DISC_BY_KEY, key, 0, d, err);
    if (rc == CS_ERR_NOTFOUND) /* the code is another step's */
        return cs_errf(err, CS_ERR_DUPLICATE, "discount code %s is taken", d->code);
    if (!rc)
        *existed = true;
    return rc;
}

cs_rc cs__sql_discount_by_key(cs_store_t *store, const char *idem_key, cs_discount_t *out,
                                 cs_err_t *err)
{
    return disc_one((cs_sql_t *)store, QJ_DISC_BY_KEY, idem_key, 0, out, err);
}

cs_rc cs__sql_discount_for_run(cs_store_t *store, int64_t run_id, cs_discount_t *out,
                                  cs_err_t *err)
{
    return disc_one((cs_sql_t *)store, QJ_DISC_BY_RUN, NULL, run_id, out, err);
}

cs_rc cs__sql_discounts_view(cs_store_t *store, const char *customer_id, json_t **out,
                                cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = jstmt(s, QJ_DISC_VIEW, err);
    *out = NULL;
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, customer_id);
    json_t *arr = json_array();
    int r = SQL_DONE;
    while (arr && (r = sql_step(st)) == SQL_ROW) {
        cs_discount_t d;
        read_disc(st, &d);
        json_t *o = cs_discount_json(&d);
        if (!o || json_array_append_new(arr, o)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    cs__stmt_done(st);
    if (!arr)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    *out = arr;
    return CS_OK;
}

void cs__sql_journey_close(cs_sql_t *s)
{
    cs__sql_free_stmts(s->jstmts, CS_ARRAY_LEN(s->jstmts));
}
