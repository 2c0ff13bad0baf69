/*
 * sql.c -- what both SQL backends share besides the fold, the views, the
 * journeys and the watch: the statement table, the statement cache, the
 * bind and column helpers, counts and API keys. See sql_int.h.
 */
#include "sql_int.h"

#include <stdio.h>
#include <string.h>

/* ---- every statement, by id ---- */

/* Q_MS_OUTBOX ranks delivery statuses by their numbers */
_Static_assert(CS_MSG_SENT == 0 && CS_MSG_DELIVERED == 1 && CS_MSG_OPENED == 2 &&
                   CS_MSG_CLICKED == 3 && CS_MSG_BOUNCED == 4 && CS_MSG_COMPLAINED == 5 &&
                   CS_MSG_UNSUBSCRIBED == 6 && CS_MSG_FAILED == 7 && CS_MSG__COUNT == 8,
               "Q_MS_OUTBOX says sent < delivered < opened < clicked < 4 (the rest)");
_Static_assert(CS_OUT_WEBHOOK == 3, "Q_MS_OUTBOX says a webhook's channel is 3");

static const char *const stmt_sql[Q__COUNT] = {
    /* SQLite: the seq is last_insert_rowid() (RETURNING costs SQLite a
     * buffered result on the hottest statement); PostgreSQL gives it */
    [Q_EV_INSERT] = "INSERT INTO events(event_id,type,occurred_at,received_at,customer_id,"
                    "order_id,entity,body) VALUES(?1,?2,?3,?4,?5,?6,?7,?8) "
                    "ON CONFLICT(event_id) DO NOTHING",
    [Q_EV_INSERT_SEQ] = "INSERT INTO events(event_id,type,occurred_at,received_at,customer_id,"
                        "order_id,entity,body,seq) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9) "
                        "ON CONFLICT(event_id) DO NOTHING RETURNING seq",
    [Q_EV_NEXT_SEQ] = "SELECT coalesce(max(seq),0)+1 FROM events",
    /* PostgreSQL only: ?1 is a text array literal */
    [Q_EV_KNOWN] = "SELECT event_id FROM events WHERE event_id = ANY(CAST(?1 AS TEXT[]))",
    [Q_EV_SEQ_BY_ID] = "SELECT seq,type,body FROM events WHERE event_id=?1",
    [Q_EV_ADOPT_ORPHANS] = "UPDATE events SET order_id=?2,customer_id=coalesce(customer_id,?3) "
                           "WHERE entity=?1 AND order_id IS NULL",
    /* (not its scans, ?3: they are logged as no customer's, Q_EV_ADOPT_SCANS) */
    [Q_EV_ORDER_CUSTOMER] = "UPDATE events SET customer_id=?2 WHERE order_id=?1 AND "
                            "customer_id IS NULL AND type<>?3",
    /* the tickets, feedback and signals of other customers that named
     * order ?1 before it came (types ?3 to ?6): not the order's
     * (Q_TI_UNLINK, Q_FB_UNLINK) */
    [Q_EV_UNLINK_OTHERS] = "UPDATE events SET order_id=NULL WHERE order_id=?1 AND "
                           "customer_id<>?2 AND type IN (?3,?4,?5,?6)",
    /* order ?1 given by an edit from customer ?2 to ?3: what was logged
     * as the old customer's about it (scans are no customer's) */
    [Q_EV_MOVE_CUSTOMER] = "UPDATE events SET customer_id=?3 WHERE order_id=?1 AND "
                           "customer_id=?2",
    /* a scan is logged as its order's, not its customer's: scans are the
     * hot path, and a customer's events leave them out (docs/api.md) */
    [Q_EV_ADOPT_SCANS] = "UPDATE events SET order_id=?2 WHERE (order_id IS NULL OR "
                         "order_id<>?2) AND seq IN (SELECT seq FROM scans WHERE shipment_id=?1)",

    [Q_CU_GET] = "SELECT email,phone,name,locale,timezone,consent,attributes,first_seen_at,"
                 "updated_at,contact_at,field_at,sms_contact_at,whatsapp_contact_at "
                 "FROM customers WHERE id=?1",
    [Q_CU_PUT] = "INSERT INTO customers(id,email,phone,name,locale,timezone,consent,"
                 "attributes,first_seen_at,updated_at,contact_at,field_at,sms_contact_at,"
                 "whatsapp_contact_at) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14) "
                 "ON CONFLICT(id) DO UPDATE SET email=excluded.email,phone=excluded.phone,"
                 "name=excluded.name,locale=excluded.locale,timezone=excluded.timezone,"
                 "consent=excluded.consent,attributes=excluded.attributes,"
                 "first_seen_at=excluded.first_seen_at,updated_at=excluded.updated_at,"
                 "contact_at=excluded.contact_at,field_at=excluded.field_at,"
                 "sms_contact_at=excluded.sms_contact_at,"
                 "whatsapp_contact_at=excluded.whatsapp_contact_at",

    [Q_OR_GET] = "SELECT placed_at,status,cancel_reason,cancelled_at,updated_at,customer_id "
                 "FROM orders WHERE id=?1",
    [Q_OR_CUSTOMER] = "SELECT customer_id FROM orders WHERE id=?1",
    [Q_OR_PUT] = "INSERT INTO orders(id,customer_id,currency,placed_at,subtotal,"
                 "shipping,tax,discount,total,promised_from,promised_to,status,cancel_reason,"
                 "cancelled_at,attributes,updated_at,ship_carrier,ship_service,ship_origin,"
                 "ship_destination,ship_dest_region) "
                 "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,"
                 "?21) "
                 "ON CONFLICT(id) DO UPDATE SET customer_id=excluded.customer_id,"
                 "currency=excluded.currency,placed_at=excluded.placed_at,"
                 "subtotal=excluded.subtotal,shipping=excluded.shipping,tax=excluded.tax,"
                 "discount=excluded.discount,total=excluded.total,"
                 "promised_from=excluded.promised_from,promised_to=excluded.promised_to,"
                 "status=excluded.status,cancel_reason=excluded.cancel_reason,"
                 "cancelled_at=excluded.cancelled_at,attributes=excluded.attributes,"
                 "updated_at=excluded.updated_at,ship_carrier=excluded.ship_carrier,"
                 "ship_service=excluded.ship_service,ship_origin=excluded.ship_origin,"
                 "ship_destination=excluded.ship_destination,"
                 "ship_dest_region=excluded.ship_dest_region",
    /* the customer's tally of its orders (customer_orders, migration 35):
     * order ?1's part (placed, not cancelled; what was kept of it, when it
     * has a currency) taken off (?2 -1) before the order or one of its
     * returns changes, and put back (?2 1) after, to whichever customer it
     * is then */
    [Q_OR_TALLY] = "INSERT INTO customer_orders(customer_id,currency,live,spent_n,spent_sum) "
                   "SELECT customer_id,cur,CAST(?2 AS BIGINT),CAST(?2 AS BIGINT)*(CASE WHEN "
                   "currency IS NOT NULL AND spent>0 THEN 1 ELSE 0 END),CAST(?2 AS BIGINT)*(CASE "
                   "WHEN currency IS NOT NULL AND spent>0 THEN spent ELSE 0 END) FROM (SELECT "
                   "o.customer_id,o.currency,coalesce(o.currency,'') AS cur," SQL_ORDER_SPENT
                   " AS spent FROM orders o WHERE o.id=?1 AND o.customer_id IS NOT NULL AND "
                   "o.placed_at IS NOT NULL AND o.status!='cancelled') x WHERE true "
                   "ON CONFLICT(customer_id,currency) DO UPDATE SET "
                   "live=customer_orders.live+excluded.live,"
                   "spent_n=customer_orders.spent_n+excluded.spent_n,"
                   "spent_sum=customer_orders.spent_sum+excluded.spent_sum",
    [Q_OR_CANCEL_STUB] = "INSERT INTO orders(id,status,cancel_reason,cancelled_at,updated_at) "
                         "VALUES(?1,'cancelled',?2,?3,0)",
    /* cancelled twice (or sent again later): the first cancellation's
     * time and reason; a reason only a later one gives fills in */
    [Q_OR_CANCEL] = "UPDATE orders SET status='cancelled',cancel_reason=CASE WHEN "
                    "cancelled_at IS NULL OR ?3<cancelled_at THEN coalesce(?2,cancel_reason) "
                    "ELSE coalesce(cancel_reason,?2) END,"
                    "cancelled_at=CASE WHEN cancelled_at<?3 THEN cancelled_at ELSE ?3 END WHERE id=?1",
    [Q_OI_DELETE] = "DELETE FROM order_items WHERE order_id=?1",
    [Q_OI_INSERT] = "INSERT INTO order_items(order_id,line,sku,name,category,unit_price,quantity,"
                    "discount) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",

    /* by its id, or by one that names it (shipment_aliases), for the scan
     * at ?2 + SQL_PARCEL_CLOCK_MS: one before its life is not its own */
    /* (a scan after the parcel's announcement is in its life: the order
     * is read only for one before it -- scans are the hot path) */
    /* (and whether it holds the same scan already, ?3-?8: SQL_SAME_SCAN) */
    [Q_SH_GET] = "SELECT sh.order_id,sh.status,sh.status_at,sh.delivered_at,sh.created_at,sh.id,"
                 "CASE WHEN EXISTS(SELECT 1 FROM scans x WHERE x.shipment_id=sh.id AND "
                 SQL_SAME_SCAN("x", "?3", "?4", "?5", "?6", "?7", "?8") ") THEN 1 ELSE 0 END,"
                 "CASE WHEN sh.cancelled_at IS NULL THEN 0 ELSE 1 END "
                 "FROM shipments sh WHERE sh.id=coalesce((SELECT shipment_id FROM "
                 "shipment_aliases WHERE id=?1),?1) AND (sh.created_at<=?2 OR coalesce((SELECT "
                 "placed_at FROM orders WHERE id=sh.order_id),sh.created_at-1209600000)<=?2)",
    /* its order, and its latest announcement (Q_SH_PUT) */
    [Q_SH_OWN] = "SELECT order_id,coalesce(announced_at,created_at) FROM shipments WHERE id=?1",
    /* of the scan at ?3 + SQL_PARCEL_CLOCK_MS (and whether it holds the
     * same scan already, ?4-?9: SQL_SAME_SCAN) */
    [Q_SH_BY_TRACKING] = "SELECT sh.id,sh.order_id,sh.status,sh.status_at,sh.delivered_at,"
                         "CASE WHEN EXISTS(SELECT 1 FROM scans x WHERE x.shipment_id=sh.id AND "
                         SQL_SAME_SCAN("x", "?4", "?5", "?6", "?7", "?8", "?9")
                         ") THEN 1 ELSE 0 END,CASE WHEN sh.cancelled_at IS NULL THEN 0 ELSE 1 "
                         "END FROM " SQL_PARCEL_JOIN " WHERE sh.carrier=?1 AND "
                         "sh.tracking_number=?2 AND " SQL_PARCEL_START "<=?3 ORDER BY "
                         SQL_PARCEL_START " DESC,sh.created_at,sh.id LIMIT 1",
    [Q_SH_START] = "SELECT " SQL_PARCEL_START " FROM " SQL_PARCEL_JOIN " WHERE sh.id=?1",
    /* for shipment ?1 of carrier ?2, number ?3, starting at ?4: one that
     * started before and holds scans from ?5 (?4 - SQL_PARCEL_CLOCK_MS) on */
    [Q_SH_EARLIER_LIFE] = "SELECT sh.id FROM " SQL_PARCEL_JOIN " WHERE sh.carrier=?2 AND "
                          "sh.tracking_number=?3 AND sh.id<>?1 AND " SQL_PARCEL_START "<?4 "
                          "AND EXISTS(SELECT 1 FROM scans WHERE shipment_id=sh.id AND "
                          "occurred_at>=?5) LIMIT 1",
    /* announced again (a fulfilment update): an announcement newer than
     * the latest (announced_at) corrects what it says of the parcel,
     * created_at stays the hand-over (the first); an older one changes
     * none of it -- of the same order it may move the hand-over back
     * (Q_SH_HANDOVER) */
    [Q_SH_PUT] = "INSERT INTO shipments(id,order_id,carrier,service,tracking_number,origin,"
                 "destination,created_at,attributes,dest_region,announced_at) "
                 "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?8) "
                 "ON CONFLICT(id) DO UPDATE SET order_id=excluded.order_id,"
                 "carrier=excluded.carrier,service=excluded.service,"
                 "tracking_number=excluded.tracking_number,origin=excluded.origin,"
                 "destination=excluded.destination,"
                 "attributes=excluded.attributes,dest_region=excluded.dest_region,"
                 "announced_at=excluded.announced_at "
                 "WHERE excluded.announced_at>=coalesce(shipments.announced_at,"
                 "shipments.created_at)",
    [Q_SH_HANDOVER] = "UPDATE shipments SET created_at=?3 WHERE id=?1 AND order_id=?2 AND "
                      "created_at>?3",
    /* a cancellation (shipment.cancelled) against its parcel: the parcel's
     * order, latest announcement and delivery */
    [Q_SH_CANCEL_GET] = "SELECT order_id,coalesce(announced_at,created_at),delivered_at "
                        "FROM shipments WHERE id=?1",
    /* the newest cancellation not older than the latest announcement */
    [Q_SH_CANCEL] = "UPDATE shipments SET cancelled_at=?2,cancel_reason=?3 WHERE id=?1 AND "
                    "coalesce(announced_at,created_at)<=?2 AND delivered_at IS NULL AND "
                    "(cancelled_at IS NULL OR cancelled_at<=?2)",
    /* one for a shipment id not announced yet: the newest is kept */
    [Q_SH_CANCEL_KEEP] = "INSERT INTO shipment_cancels(id,order_id,cancelled_at,reason) "
                         "VALUES(?1,?2,?3,?4) ON CONFLICT(id) DO UPDATE SET "
                         "order_id=excluded.order_id,cancelled_at=excluded.cancelled_at,"
                         "reason=excluded.reason WHERE "
                         "excluded.cancelled_at>=shipment_cancels.cancelled_at",
    /* the kept one applies when the announcement is not newer than it
     * (and the parcel's scans, come before, do not say it was delivered) */
    [Q_SH_CANCEL_TAKE] = "UPDATE shipments SET cancelled_at=c.cancelled_at,cancel_reason=c.reason "
                         "FROM shipment_cancels c WHERE c.id=?1 AND shipments.id=?1 AND "
                         "c.cancelled_at>=coalesce(shipments.announced_at,shipments.created_at) "
                         "AND shipments.delivered_at IS NULL AND (shipments.cancelled_at IS NULL "
                         "OR shipments.cancelled_at<c.cancelled_at)",
    [Q_SH_CANCEL_DROP] = "DELETE FROM shipment_cancels WHERE id=?1",
    /* an announcement newer than its parcel's cancellation revives it:
     * the parcel of its order, carrier and number, under whichever id */
    [Q_SH_REVIVE] = "UPDATE shipments SET cancelled_at=NULL,cancel_reason=NULL WHERE "
                    "order_id=?1 AND carrier=?2 AND tracking_number=?3 AND cancelled_at<?4",
    [Q_SH_SET_STATUS] = "UPDATE shipments SET status=?2,status_at=?3,delivered_at=?4 WHERE id=?1",
    [Q_SC_INSERT] = "INSERT INTO scans(seq,shipment_id,want_shipment_id,carrier,tracking_number,"
                    "status,carrier_code,carrier_text,location,occurred_at,reason,unmapped,region) "
                    "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
    /* from ?4 (the start less SQL_PARCEL_CLOCK_MS) on */
    [Q_SC_ADOPT] = "UPDATE scans SET shipment_id=?1 WHERE shipment_id IS NULL AND carrier=?2 AND "
                   "tracking_number=?3 AND occurred_at>=?4",
    /* those that named it, from ?2 (as Q_SC_ADOPT's ?4) on */
    [Q_SC_ADOPT_WANT] = "UPDATE scans SET shipment_id=?1 WHERE shipment_id IS NULL AND "
                        "want_shipment_id=?1 AND occurred_at>=?2",
    [Q_SC_MOVE] = "UPDATE scans SET shipment_id=?1 WHERE shipment_id=?2 AND occurred_at>=?3",
    /* id ?1 names a shipment of order ?2, carrier ?3, number ?4 */
    [Q_SH_ALIAS_OF] = "SELECT a.shipment_id FROM shipment_aliases a JOIN shipments sh ON "
                      "sh.id=a.shipment_id WHERE a.id=?1 AND sh.order_id=?2 AND sh.carrier=?3 "
                      "AND sh.tracking_number=?4",
    [Q_SH_ALIAS_DROP] = "DELETE FROM shipment_aliases WHERE id=?1",
    [Q_SH_TWINS] = "SELECT id FROM shipments WHERE order_id=?1 AND carrier=?2 AND "
                   "tracking_number=?3 ORDER BY created_at,id",
    /* twin ?2 into first ?1 */
    [Q_SH_MERGE_SCANS] = "UPDATE scans SET shipment_id=?1 WHERE shipment_id=?2",
    [Q_SH_MERGE_ALIAS] = "INSERT INTO shipment_aliases(id,shipment_id) VALUES(?2,?1) "
                         "ON CONFLICT(id) DO UPDATE SET shipment_id=excluded.shipment_id",
    [Q_SH_MERGE_REPOINT] = "UPDATE shipment_aliases SET shipment_id=?1 WHERE shipment_id=?2",
    [Q_SH_MERGE_CLOSED] = "UPDATE promises SET closed_shipment=?1 WHERE closed_shipment=?2",
    [Q_SH_DELETE] = "DELETE FROM shipments WHERE id=?1",
    /* an open watch record due at once (check_at 1: before any now) */
    [Q_PR_RECHECK] = "UPDATE promises SET check_at=1 WHERE order_id=?1 AND check_at IS NOT NULL "
                     "AND closed=0",
    /* the latest scan that counts (SQL_SCAN_COUNTS) */
    [Q_SC_LATEST] = "SELECT s.status,s.occurred_at FROM scans s," SQL_SCAN_FIRSTS("?1")
                    " WHERE s.shipment_id=?1 AND " SQL_SCAN_COUNTS
                    " ORDER BY s.occurred_at DESC, s.seq DESC LIMIT 1",
    /* delivered at: its first delivery, never after it was heard of */
    [Q_SC_DELIVERED] = "SELECT min(" SQL_DELIVERED_AT("s", "e") ") FROM scans s LEFT JOIN "
                       "events e ON e.seq=s.seq WHERE s.shipment_id=?1 AND s.status=?2",
    [Q_SC_WAITING] = "SELECT 1 FROM scans WHERE seq=?1 AND shipment_id IS NULL",
    /* of carrier ?1 and number ?2, waiting: the same scan as ?3-?8 */
    [Q_SC_SAME_PENDING] = "SELECT 1 FROM scans x WHERE x.shipment_id IS NULL AND x.carrier=?1 "
                          "AND x.tracking_number=?2 AND "
                          SQL_SAME_SCAN("x", "?3", "?4", "?5", "?6", "?7", "?8") " LIMIT 1",

    [Q_RE_GET] = "SELECT order_id,status,resolution,refund_amount,requested_at,status_at,"
                 "refunded_at,rejected_at FROM returns WHERE id=?1",
    [Q_RE_PUT] = "INSERT INTO returns(id,order_id,status,resolution,refund_amount,"
                 "requested_at,status_at,refunded_at,rejected_at) "
                 "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9) "
                 "ON CONFLICT(id) DO UPDATE SET order_id=excluded.order_id,"
                 "status=excluded.status,resolution=excluded.resolution,"
                 "refund_amount=excluded.refund_amount,requested_at=excluded.requested_at,"
                 "status_at=excluded.status_at,refunded_at=excluded.refunded_at,"
                 "rejected_at=excluded.rejected_at",
    [Q_RI_DELETE] = "DELETE FROM return_items WHERE return_id=?1",
    [Q_RI_INSERT] = "INSERT INTO return_items(return_id,line,sku,quantity,reason) "
                    "VALUES(?1,?2,?3,?4,?5)",

    [Q_TI_GET] = "SELECT customer_id,order_id,status,created_at,status_at FROM tickets "
                 "WHERE id=?1",
    /* created_seq: the first ticket.created's, kept */
    [Q_TI_PUT] = "INSERT INTO tickets(id,customer_id,order_id,status,channel,subject,"
                 "body,category,created_at,status_at,created_seq) "
                 "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11) "
                 "ON CONFLICT(id) DO UPDATE SET customer_id=excluded.customer_id,"
                 "order_id=excluded.order_id,status=excluded.status,channel=excluded.channel,"
                 "subject=excluded.subject,body=excluded.body,category=excluded.category,"
                 "created_at=excluded.created_at,status_at=excluded.status_at,"
                 "created_seq=coalesce(tickets.created_seq,excluded.created_seq)",
    [Q_TI_UNLINK] = "UPDATE tickets SET order_id=NULL WHERE order_id=?1 AND customer_id<>?2",
    [Q_FB_UNLINK] = "UPDATE feedback SET order_id=NULL WHERE order_id=?1 AND customer_id<>?2",
    [Q_TI_MOVE] = "UPDATE tickets SET customer_id=?3 WHERE order_id=?1 AND customer_id=?2",
    [Q_FB_MOVE] = "UPDATE feedback SET customer_id=?3 WHERE order_id=?1 AND customer_id=?2",
    [Q_TI_SET_STATUS] = "UPDATE tickets SET status=?2,status_at=?3 WHERE id=?1",
    [Q_FB_PUT] = "INSERT INTO feedback(id,kind,score,customer_id,order_id,sku,title,text,locale,"
                 "occurred_at) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10) "
                 "ON CONFLICT(id) DO UPDATE SET kind=excluded.kind,score=excluded.score,"
                 "customer_id=excluded.customer_id,order_id=excluded.order_id,sku=excluded.sku,"
                 "title=excluded.title,text=excluded.text,locale=excluded.locale,"
                 "occurred_at=excluded.occurred_at WHERE excluded.occurred_at>=feedback.occurred_at",
    /* A status never takes a message back: sent < delivered < opened <
     * clicked < bounced, complained, unsubscribed and failed (ranked
     * alike, by cs_msg_status_t). Providers do not keep their callbacks in order, and
     * one without a time (Twilio) is dated by its arrival: a "sent" coming
     * after the "delivered" must not undo it. Within a rank the latest by
     * time wins; a later callback of an earlier time (providers retry) does
     * not roll it back. Only a message of a contact channel (not a
     * webhook) and of the customer and channel the status names, when it
     * names them (?4, ?5): a shop's status of a message of its own whose
     * id is a number is not one of ours. The status's detail (?6, NULL:
     * none) goes with it. */
    [Q_MS_OUTBOX] = "UPDATE outbox SET delivery=?2,delivery_at=?3,delivery_detail=?6 "
                    "WHERE id=?1 AND channel<3 "
                    "AND customer_id=coalesce(?4,customer_id) AND "
                    "channel=coalesce(?5,channel) AND "
                    "(delivery IS NULL OR "
                    "CASE WHEN ?2>4 THEN 4 ELSE ?2 END>CASE WHEN delivery>4 THEN 4 ELSE delivery END "
                    "OR (CASE WHEN ?2>4 THEN 4 ELSE ?2 END=CASE WHEN delivery>4 THEN 4 ELSE delivery END "
                    "AND (delivery_at IS NULL OR delivery_at<=?3)))",
    /* the customer and channel of our message ?1 (a contact channel's) */
    [Q_MS_OWNER] = "SELECT customer_id,channel FROM outbox WHERE id=?1 AND channel<3",
    [Q_MS_INSERT] = "INSERT INTO message_events(seq,message_id,status,channel,customer_id,detail,"
                    "occurred_at) VALUES(?1,?2,?3,?4,?5,?6,?7)",
    [Q_CU_TOUCH] = "INSERT INTO customers(id,first_seen_at,updated_at) VALUES(?1,?2,0) "
                   "ON CONFLICT(id) DO UPDATE SET first_seen_at=excluded.first_seen_at "
                   "WHERE excluded.first_seen_at<customers.first_seen_at",
    [Q_CU_BY_PHONE] = "SELECT id FROM customers WHERE phone=?1 AND id>?2 ORDER BY id LIMIT ?3",

    [Q_AK_PUT] = "INSERT INTO apikeys(id,name,hash,scopes,created_at,revoked_at) "
                 "VALUES(?1,?2,?3,?4,?5,NULL)",
    [Q_AK_FIND] = "SELECT id,name,hash,scopes,created_at,revoked_at FROM apikeys WHERE hash=?1",
    [Q_AK_LIST] = "SELECT id,name,scopes,created_at,revoked_at FROM apikeys ORDER BY created_at,id",
    [Q_AK_REVOKE] = "UPDATE apikeys SET revoked_at=?2 WHERE id=?1 AND revoked_at IS NULL",

    [Q_V_CUSTOMER] = "SELECT id,email,phone,name,locale,timezone,consent,attributes,"
                     "first_seen_at,updated_at FROM customers WHERE id=?1",
    [Q_V_CUSTOMER_ORDERS] = "SELECT id,placed_at,total,currency,status FROM orders "
                            "WHERE customer_id=?1 AND placed_at IS NOT NULL "
                            "ORDER BY placed_at DESC, id DESC LIMIT 50",
    /* (what was spent as the compensation tier counts it: SQL_ORDER_SPENT;
     * the first and last order as the journeys' customer.first_order_at
     * and last_order_at have them, cancelled ones not counted) */
    [Q_V_CUSTOMER_SPENT] = "SELECT currency,count(*),sum(" SQL_ORDER_SPENT "),"
                           "min(CASE WHEN status!='cancelled' THEN placed_at END),"
                           "max(CASE WHEN status!='cancelled' THEN placed_at END),"
                           "sum(CASE WHEN status='cancelled' THEN 1 ELSE 0 END) "
                           "FROM orders o WHERE customer_id=?1 AND placed_at IS NOT NULL "
                           "GROUP BY currency ORDER BY currency",
    [Q_V_ORDER] = "SELECT id,customer_id,currency,placed_at,subtotal,shipping,tax,discount,total,"
                  "promised_from,promised_to,status,cancel_reason,cancelled_at,attributes,"
                  "ship_carrier,ship_service,ship_origin,ship_destination "
                  "FROM orders WHERE id=?1 AND placed_at IS NOT NULL",
    [Q_V_ORDER_ITEMS] = "SELECT sku,name,category,unit_price,quantity,discount FROM order_items "
                        "WHERE order_id=?1 ORDER BY line",
    [Q_V_ORDER_SHIPMENTS] = "SELECT id,carrier,service,tracking_number,origin,destination,"
                            "status,status_at,delivered_at,created_at,cancelled_at,"
                            "cancel_reason FROM shipments "
                            "WHERE order_id=?1 ORDER BY created_at,id",
    [Q_V_SHIPMENT_SCANS] = "SELECT status,carrier_code,carrier_text,location,occurred_at,"
                           "reason,unmapped FROM scans WHERE shipment_id=?1 ORDER BY occurred_at,seq",
    [Q_V_ORDER_RETURNS] = "SELECT id,status,resolution,refund_amount,requested_at,status_at "
                          "FROM returns WHERE order_id=?1 ORDER BY requested_at,id",
    [Q_V_RETURN_ITEMS] = "SELECT sku,quantity,reason FROM return_items WHERE return_id=?1 "
                         "ORDER BY line",
    [Q_V_ORDER_TICKETS] = "SELECT id,status,channel,subject,category,created_at,status_at "
                          "FROM tickets WHERE order_id=?1 ORDER BY created_at,id",
    [Q_V_ORDER_FEEDBACK] = "SELECT id,kind,score,sku,title,text,locale,occurred_at "
                           "FROM feedback WHERE order_id=?1 ORDER BY occurred_at,id",
    [Q_V_ORDER_TIMELINE] = "SELECT seq,event_id,type,occurred_at,received_at FROM events "
                           "WHERE order_id=?1 ORDER BY occurred_at,seq",
#define EVQ_COLS "SELECT seq,event_id,type,occurred_at,received_at,customer_id,order_id,body " \
                 "FROM events WHERE "
#define EVQ_COND "seq>?1 AND (?2=0 OR seq<?2) AND (?3=0 OR type=?3)"
    [Q_V_EVENTS_ASC] = EVQ_COLS EVQ_COND " ORDER BY seq ASC LIMIT ?4",
    [Q_V_EVENTS_DESC] = EVQ_COLS EVQ_COND " ORDER BY seq DESC LIMIT ?4",
    [Q_V_EVENTS_CUST_ASC] = EVQ_COLS "customer_id=?5 AND " EVQ_COND " ORDER BY seq ASC LIMIT ?4",
    [Q_V_EVENTS_CUST_DESC] = EVQ_COLS "customer_id=?5 AND " EVQ_COND " ORDER BY seq DESC LIMIT ?4",
    [Q_V_EVENTS_ORDER_ASC] = EVQ_COLS "order_id=?5 AND " EVQ_COND " ORDER BY seq ASC LIMIT ?4",
    [Q_V_EVENTS_ORDER_DESC] = EVQ_COLS "order_id=?5 AND " EVQ_COND " ORDER BY seq DESC LIMIT ?4",

    [Q_COUNTS] = "SELECT (SELECT count(*) FROM events),(SELECT count(*) FROM customers),"
                 "(SELECT count(*) FROM orders WHERE placed_at IS NOT NULL),"
                 "(SELECT count(*) FROM order_items),(SELECT count(*) FROM shipments),"
                 "(SELECT count(*) FROM scans),"
                 "(SELECT count(*) FROM scans WHERE shipment_id IS NULL),"
                 "(SELECT count(*) FROM returns),(SELECT count(*) FROM tickets),"
                 "(SELECT count(*) FROM feedback),(SELECT count(*) FROM message_events),"
                 "(SELECT coalesce(max(seq),0) FROM events)",
};

/* ---- helpers shared by the backend's files ---- */

cs_rc cs__sql_fail(cs_sql_t *s, cs_err_t *err, const char *what)
{
    if (!s->db)
        return cs_errf(err, CS_ERR_STORE, "store: %s: %s (postgresql %s)", what,
                       s->pg_error[0] ? s->pg_error : "unknown error",
                       s->pg_state[0] ? s->pg_state : "-");
    int code = sqlite3_extended_errcode(s->db);
    return cs_errf(err, CS_ERR_STORE, "store: %s: %s (sqlite %d)", what, sqlite3_errmsg(s->db),
                   code);
}

/* A statement of either database; persistent ones are cached for the
 * handle's life (SQLite: SQLITE_PREPARE_PERSISTENT; PostgreSQL: prepared on
 * the server under a name). */
static cs_rc prepare(cs_sql_t *s, const char *sql, bool persistent, sql_stmt **out,
                     cs_err_t *err)
{
    sql_stmt *st = cs_calloc(1, sizeof *st);
    cs_rc rc = CS_OK;
    *out = NULL;
    if (!st)
        return cs_errf(err, CS_ERR_NOMEM, "out of memory");
    if (s->db) {
        if (sqlite3_prepare_v3(s->db, sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0,
                               &st->lite, NULL) != SQLITE_OK)
            rc = cs__sql_fail(s, err, "prepare");
    } else {
        rc = cs__pg_prepare(s, sql, persistent, &st->pg, err);
    }
    if (rc) {
        sql_finalize(st);
        return rc;
    }
    *out = st;
    return CS_OK;
}

sql_stmt *cs__sql_cached(cs_sql_t *s, sql_stmt **slot, const char *sql, cs_err_t *err)
{
    if (!*slot && prepare(s, sql, true, slot, err))
        return NULL;
    return *slot;
}

cs_rc cs__sql_prepare(cs_sql_t *s, const char *sql, sql_stmt **out, cs_err_t *err)
{
    return prepare(s, sql, false, out, err);
}

void cs__sql_set_node(cs_sql_t *s, const cs_store_opts_t *opts)
{
    if (opts->node && *opts->node) {
        cs_strlcpy(s->node, opts->node, sizeof s->node);
        return;
    }
    cs_hostname(s->node, sizeof s->node);
}

void sql_finalize(sql_stmt *st)
{
    if (!st)
        return;
    if (st->lite)
        sqlite3_finalize(st->lite);
    if (st->pg)
        cs__pg_finalize(st->pg);
    cs_free(st);
}

void cs__sql_free_stmts(sql_stmt **slots, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sql_finalize(slots[i]);
        slots[i] = NULL;
    }
}

sql_stmt *cs__sql_stmt(cs_sql_t *s, stmt_id_t id, cs_err_t *err)
{
    return cs__sql_cached(s, &s->stmts[id], stmt_sql[id], err);
}

void cs__stmt_done(sql_stmt *st)
{
    sql_reset(st);
    sql_clear_bindings(st);
}

void cs__col_copy(char *dst, size_t size, sql_stmt *st, int col)
{
    const char *v = cs__col_text(st, col);
    cs_strlcpy(dst, v ? v : "", size);
}

void cs__bind_text(sql_stmt *st, int i, const char *v)
{
    if (v)
        sql_bind_text(st, i, v, -1);
    else
        sql_bind_null(st, i);
}

void cs__bind_time(sql_stmt *st, int i, cs_ms_t v)
{
    if (v)
        sql_bind_int64(st, i, v);
    else
        sql_bind_null(st, i);
}

const char *cs__col_text(sql_stmt *st, int i)
{
    return (const char *)sql_column_text(st, i);
}

json_t *cs__json_time(cs_ms_t t)
{
    char buf[40];
    return t ? json_string(cs_time_format(t, buf, sizeof buf)) : json_null();
}

cs_ms_t cs__col_time(sql_stmt *st, int i)
{
    return sql_column_type(st, i) == SQL_NULL ? 0 : sql_column_int64(st, i);
}

cs_rc cs__sql_exec_stmt(cs_sql_t *s, sql_stmt *st, cs_err_t *err, const char *what)
{
    if (st->pg) {
        bool sent;
        cs_rc rc = cs__pg_exec_deferred(st->pg, &sent);
        if (sent) { /* pipelined: its outcome shows at the next read or the commit */
            cs__stmt_done(st);
            return rc ? cs__sql_fail(s, err, what) : CS_OK;
        }
    }
    int64_t changes;
    return cs__sql_exec_count(s, st, err, what, &changes);
}

cs_rc cs__sql_exec_count(cs_sql_t *s, sql_stmt *st, cs_err_t *err, const char *what,
                         int64_t *changes)
{
    int r = sql_step(st);
    cs_rc rc = CS_OK;
    *changes = 0;
    if (r != SQL_DONE && r != SQL_ROW)
        rc = cs__sql_fail(s, err, what);
    else
        *changes = sql_changes(s);
    sql_reset(st);
    sql_clear_bindings(st);
    return rc;
}

/* ---- counts ---- */

cs_rc cs__sql_counts(cs_store_t *store, cs_store_counts_t *c, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = cs__sql_stmt(s, Q_COUNTS, err);
    memset(c, 0, sizeof *c);
    if (!st)
        return CS_ERR_STORE;
    cs_rc rc = CS_OK;
    if (sql_step(st) != SQL_ROW) {
        rc = cs__sql_fail(s, err, "counts");
    } else {
        int64_t *f[] = {&c->events,   &c->customers, &c->orders,        &c->order_items,
                        &c->shipments, &c->scans,   &c->pending_scans, &c->returns,
                        &c->tickets,  &c->feedback, &c->message_events, &c->last_seq};
        for (int i = 0; i < (int)CS_ARRAY_LEN(f); i++)
            *f[i] = sql_column_int64(st, i);
    }
    sql_reset(st);
    return rc;
}

/* ---- api keys (each call its own transaction) ---- */

cs_rc cs__sql_apikey_put(cs_store_t *store, const cs_apikey_t *k, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = cs__sql_stmt(s, Q_AK_PUT, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, k->id);
    cs__bind_text(st, 2, k->name);
    cs__bind_text(st, 3, k->hash_hex);
    sql_bind_int(st, 4, k->scopes);
    sql_bind_int64(st, 5, k->created_at);
    return cs__sql_exec_stmt(s, st, err, "store an API key");
}

static void read_key(sql_stmt *st, cs_apikey_t *k)
{
    memset(k, 0, sizeof *k);
    cs_strlcpy(k->id, cs__col_text(st, 0) ? cs__col_text(st, 0) : "", sizeof k->id);
    cs_strlcpy(k->name, cs__col_text(st, 1) ? cs__col_text(st, 1) : "", sizeof k->name);
    cs_strlcpy(k->hash_hex, cs__col_text(st, 2) ? cs__col_text(st, 2) : "", sizeof k->hash_hex);
    k->scopes = sql_column_int(st, 3);
    k->created_at = cs__col_time(st, 4);
    k->revoked_at = cs__col_time(st, 5);
}

cs_rc cs__sql_apikey_find(cs_store_t *store, const char *hash_hex, cs_apikey_t *out,
                                cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = cs__sql_stmt(s, Q_AK_FIND, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, hash_hex);
    int r = sql_step(st);
    cs_rc rc = CS_OK;
    if (r == SQL_ROW)
        read_key(st, out);
    else if (r == SQL_DONE)
        rc = cs_errf(err, CS_ERR_NOTFOUND, "no such API key");
    else
        rc = cs__sql_fail(s, err, "find an API key");
    sql_reset(st);
    sql_clear_bindings(st);
    return rc;
}

cs_rc cs__sql_apikey_list(cs_store_t *store, json_t **out, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = cs__sql_stmt(s, Q_AK_LIST, err);
    json_t *keys = NULL;
    cs_rc rc = CS_OK;
    int r;
    char tb[40], sb[40];
    *out = NULL;
    if (!st)
        return CS_ERR_STORE;
    if (!(keys = json_array())) {
        rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    while ((r = sql_step(st)) == SQL_ROW) {
        cs_ms_t revoked = cs__col_time(st, 4);
        json_t *k = json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", cs__col_text(st, 0), "name",
                              cs__col_text(st, 1), "scopes",
                              cs_scopes_format(sql_column_int(st, 2), sb, sizeof sb),
                              "created_at", cs_time_format(cs__col_time(st, 3), tb, sizeof tb),
                              "revoked_at", json_null());
        if (!k || json_array_append_new(keys, k)) {
            rc = cs_errf(err, CS_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (revoked)
            json_object_set_new(k, "revoked_at", json_string(cs_time_format(revoked, tb, sizeof tb)));
    }
    if (r != SQL_DONE)
        rc = cs__sql_fail(s, err, "list API keys");
out:
    sql_reset(st);
    if (rc) {
        json_decref(keys);
        return rc;
    }
    *out = json_pack("{s:o}", "keys", keys);
    return *out ? CS_OK : cs_errf(err, CS_ERR_NOMEM, "out of memory");
}

cs_rc cs__sql_apikey_revoke(cs_store_t *store, const char *id, cs_ms_t at, cs_err_t *err)
{
    cs_sql_t *s = (cs_sql_t *)store;
    sql_stmt *st = cs__sql_stmt(s, Q_AK_REVOKE, err);
    if (!st)
        return CS_ERR_STORE;
    cs__bind_text(st, 1, id);
    sql_bind_int64(st, 2, at);
    int64_t changes;
    cs_rc rc = cs__sql_exec_count(s, st, err, "revoke an API key", &changes);
    if (!rc && changes == 0)
        rc = cs_err_field(err, CS_ERR_NOTFOUND, "id", "no active API key with id \"%.40s\"", id);
    return rc;
}

