/*
 * schema.c -- see schema.h.
 */
#include "schema.h"
#include "sql_int.h"

#include <string.h>

#include "../lib/cs.h"

/* ---- the migrations: append only ---- */

/* What was spent on an order as version 35 counted it (SQL_ORDER_SPENT
 * then; a store wound back runs that migration's text again, before the
 * columns of version 40 are there): a return gave back once `refunded` or
 * `closed`. Version 40 fills returns.refunded_at and rejected_at so that
 * today's rule gives the same for every return stored before. */
#define SPENT_35                                                                             \
    "(CASE WHEN o.status='cancelled' THEN 0 ELSE (SELECT CASE WHEN b.given>=o.total THEN "  \
    "0 ELSE o.total-b.given END FROM (SELECT coalesce(sum(coalesce(r.refund_amount,CASE "   \
    "WHEN r.status='refunded' THEN " SQL_RETURN_ITEMS_PAID_AS("@INT") " ELSE 0 END)),0) AS " \
    "given FROM returns r WHERE r.order_id=o.id AND r.status IN ('refunded','closed')) b) "  \
    "END)"

static const char *const migrations[] = {
    /* 1: event log, current state, api keys */
    "CREATE TABLE events("
    "  seq @ROWID,"
    "  event_id TEXT NOT NULL UNIQUE,"
    "  type @INT NOT NULL,"
    "  occurred_at @INT NOT NULL,"
    "  received_at @INT NOT NULL,"
    "  customer_id TEXT,"
    "  order_id TEXT,"
    "  entity TEXT,"
    "  body TEXT NOT NULL);"
    "CREATE INDEX events_by_order ON events(order_id, occurred_at) WHERE order_id IS NOT NULL;"
    "CREATE INDEX events_by_customer ON events(customer_id) WHERE customer_id IS NOT NULL;"
    "CREATE INDEX events_orphans ON events(entity) WHERE entity IS NOT NULL AND order_id IS NULL;"
    "CREATE TABLE customers("
    "  id TEXT PRIMARY KEY, email TEXT, phone TEXT, name TEXT, locale TEXT, timezone TEXT,"
    "  consent TEXT NOT NULL DEFAULT '------', attributes TEXT,"
    "  first_seen_at @INT NOT NULL, updated_at @INT NOT NULL)@NOROWID;"
    "CREATE TABLE orders("
    "  id TEXT PRIMARY KEY, customer_id TEXT, currency TEXT, placed_at @INT,"
    "  subtotal @INT, shipping @INT, tax @INT, discount @INT, total @INT,"
    "  promised_from @INT, promised_to @INT, status TEXT NOT NULL,"
    "  cancel_reason TEXT, cancelled_at @INT, attributes TEXT,"
    "  updated_at @INT NOT NULL)@NOROWID;"
    "CREATE INDEX orders_by_customer ON orders(customer_id, placed_at);"
    "CREATE TABLE order_items("
    "  order_id TEXT NOT NULL, line @INT NOT NULL, sku TEXT NOT NULL, name TEXT NOT NULL,"
    "  category TEXT, unit_price @INT NOT NULL, quantity @INT NOT NULL,"
    "  discount @INT NOT NULL, PRIMARY KEY(order_id, line))@NOROWID;"
    "CREATE TABLE shipments("
    "  id TEXT PRIMARY KEY, order_id TEXT NOT NULL, carrier TEXT NOT NULL, service TEXT,"
    "  tracking_number TEXT NOT NULL, origin TEXT, destination TEXT, status @INT,"
    "  status_at @INT, delivered_at @INT, created_at @INT NOT NULL,"
    "  attributes TEXT)@NOROWID;"
    "CREATE INDEX shipments_by_order ON shipments(order_id);"
    "CREATE INDEX shipments_by_tracking ON shipments(carrier, tracking_number);"
    "CREATE TABLE scans("
    "  seq @ROWID, shipment_id TEXT, want_shipment_id TEXT,"
    "  carrier TEXT NOT NULL, tracking_number TEXT NOT NULL, status @INT NOT NULL,"
    "  carrier_code TEXT, carrier_text TEXT, location TEXT, occurred_at @INT NOT NULL);"
    "CREATE INDEX scans_by_shipment ON scans(shipment_id, occurred_at)"
    "  WHERE shipment_id IS NOT NULL;"
    "CREATE INDEX scans_pending ON scans(carrier, tracking_number) WHERE shipment_id IS NULL;"
    "CREATE INDEX scans_pending_want ON scans(want_shipment_id)"
    "  WHERE shipment_id IS NULL AND want_shipment_id IS NOT NULL;"
    "CREATE TABLE returns("
    "  id TEXT PRIMARY KEY, order_id TEXT, status TEXT NOT NULL, resolution TEXT,"
    "  refund_amount @INT, requested_at @INT, status_at @INT NOT NULL)@NOROWID;"
    "CREATE INDEX returns_by_order ON returns(order_id) WHERE order_id IS NOT NULL;"
    "CREATE TABLE return_items("
    "  return_id TEXT NOT NULL, line @INT NOT NULL, sku TEXT NOT NULL,"
    "  quantity @INT NOT NULL, reason TEXT, PRIMARY KEY(return_id, line))@NOROWID;"
    "CREATE TABLE tickets("
    "  id TEXT PRIMARY KEY, customer_id TEXT, order_id TEXT, status TEXT NOT NULL,"
    "  channel TEXT, subject TEXT, body TEXT, category TEXT, created_at @INT,"
    "  status_at @INT NOT NULL)@NOROWID;"
    "CREATE INDEX tickets_by_order ON tickets(order_id) WHERE order_id IS NOT NULL;"
    "CREATE TABLE feedback("
    "  id TEXT PRIMARY KEY, kind TEXT NOT NULL, score @INT NOT NULL, customer_id TEXT,"
    "  order_id TEXT, sku TEXT, title TEXT, text TEXT, locale TEXT,"
    "  occurred_at @INT NOT NULL)@NOROWID;"
    "CREATE INDEX feedback_by_order ON feedback(order_id) WHERE order_id IS NOT NULL;"
    "CREATE TABLE message_events("
    "  seq @ROWID, message_id TEXT NOT NULL, status @INT NOT NULL,"
    "  channel TEXT, customer_id TEXT, detail TEXT, occurred_at @INT NOT NULL);"
    "CREATE TABLE apikeys("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,"
    "  scopes @INT NOT NULL, created_at @INT NOT NULL, revoked_at @INT);",
    /* 2: journeys -- versions, operator switches, runs, durable timers, outbox, cursors */
    "CREATE TABLE journey_versions("
    "  journey TEXT NOT NULL, version @INT NOT NULL, hash TEXT NOT NULL,"
    "  source TEXT NOT NULL, created_at @INT NOT NULL,"
    "  PRIMARY KEY(journey, version), UNIQUE(journey, hash))@NOROWID;"
    "CREATE TABLE journey_switches("
    "  journey TEXT PRIMARY KEY, enabled @INT NOT NULL, changed_at @INT NOT NULL)"
    " @NOROWID;"
    "CREATE TABLE journey_runs("
    "  id @ROWID, journey TEXT NOT NULL, version @INT NOT NULL,"
    "  run_key TEXT NOT NULL, customer_id TEXT NOT NULL, order_id TEXT,"
    "  status @INT NOT NULL, pc @INT NOT NULL, gen @INT NOT NULL,"
    "  wait_event @INT NOT NULL DEFAULT 0, trigger_seq @INT NOT NULL,"
    "  started_at @INT NOT NULL, updated_at @INT NOT NULL,"
    "  held_since @INT NOT NULL DEFAULT 0, exit_reason TEXT,"
    "  UNIQUE(journey, run_key));"
    "CREATE INDEX runs_active_order ON journey_runs(order_id) WHERE status = 1;"
    "CREATE INDEX runs_by_customer ON journey_runs(customer_id, status);"
    "CREATE TABLE timers("
    "  id @ROWID, due_at @INT NOT NULL, run_id @INT NOT NULL,"
    "  gen @INT NOT NULL);"
    "CREATE INDEX timers_due ON timers(due_at, id);"
    "CREATE TABLE outbox("
    "  id @ROWID, idem_key TEXT NOT NULL UNIQUE, run_id @INT, journey TEXT,"
    "  customer_id TEXT NOT NULL, order_id TEXT, channel @INT NOT NULL,"
    "  template TEXT NOT NULL, class @INT NOT NULL, status @INT NOT NULL, reason TEXT,"
    "  recipient TEXT, locale TEXT, attempts @INT NOT NULL DEFAULT 0, next_at @INT,"
    "  created_at @INT NOT NULL, sent_at @INT);"
    "CREATE INDEX outbox_by_customer ON outbox(customer_id, created_at);"
    "CREATE INDEX outbox_queued ON outbox(next_at, id) WHERE status = 1;"
    "CREATE TABLE cursors(name TEXT PRIMARY KEY, seq @INT NOT NULL)@NOROWID;",
    /* 3: sending -- provider references and leases on the outbox */
    "ALTER TABLE outbox ADD COLUMN provider_ref TEXT;"
    "ALTER TABLE outbox ADD COLUMN lease_until @INT;"
    "CREATE INDEX outbox_sending ON outbox(lease_until) WHERE status = 2;"
    "CREATE INDEX outbox_by_ref ON outbox(provider_ref) WHERE provider_ref IS NOT NULL;",
    /* 4: a customer's unsubscribes, looked up before every message */
    "CREATE INDEX message_events_unsub ON message_events(customer_id, occurred_at)"
    "  WHERE status = 6;",
    /* 5: a customer's runs indexed by customer alone, so a run that ends
     * (the common case when a timer fires) leaves the index untouched */
    "DROP INDEX runs_by_customer;"
    "CREATE INDEX runs_by_customer ON journey_runs(customer_id);",
    /* 6: delivery callbacks -- a message's latest delivery status, and the
     * statuses that stop messages (bounced 4, complained 5, unsubscribed 6;
     * literal so the partial index serves the lookup) */
    "ALTER TABLE outbox ADD COLUMN delivery @INT;"
    "ALTER TABLE outbox ADD COLUMN delivery_at @INT;"
    "DROP INDEX message_events_unsub;"
    "CREATE INDEX message_events_stop ON message_events(customer_id, occurred_at)"
    "  WHERE status IN (4, 5, 6);",
    /* 7: discount codes journeys issue */
    "CREATE TABLE discount_codes("
    "  id @ROWID, code TEXT NOT NULL UNIQUE, idem_key TEXT NOT NULL UNIQUE,"
    "  run_id @INT, journey TEXT, customer_id TEXT NOT NULL, order_id TEXT,"
    "  kind @INT NOT NULL, value @REAL NOT NULL, currency TEXT,"
    "  created_at @INT NOT NULL, expires_at @INT NOT NULL);"
    "CREATE INDEX discount_codes_by_customer ON discount_codes(customer_id);"
    "CREATE INDEX discount_codes_by_run ON discount_codes(run_id);",
    /* 8: scans mapped by the carrier tables: the incident reason, and
     * whether no table knew the raw code */
    "ALTER TABLE scans ADD COLUMN reason @INT;"
    "ALTER TABLE scans ADD COLUMN unmapped @INT NOT NULL DEFAULT 0;",
    /* 9: the order watch -- each order's first and current promise, its
     * moves with their reasons, re-checks and compensation */
    "CREATE TABLE promises("
    "  order_id TEXT PRIMARY KEY, customer_id TEXT,"
    "  first_from @INT, first_to @INT, first_point @INT, first_source TEXT,"
    "  first_at @INT, cur_from @INT, cur_to @INT, cur_point @INT, reason TEXT,"
    "  quiet_days @INT NOT NULL DEFAULT 0, level @INT NOT NULL DEFAULT -1,"
    "  updated_at @INT NOT NULL, at_risk @INT NOT NULL DEFAULT 0, risk_reason TEXT,"
    "  risk_at @INT, risk_events @INT NOT NULL DEFAULT 0, check_at @INT,"
    "  closed @INT NOT NULL DEFAULT 0, broken_at @INT, late_days @INT NOT NULL DEFAULT 0,"
    "  comp_at @INT, comp_code TEXT, comp_cost @INT NOT NULL DEFAULT 0, comp_note TEXT)"
    " @NOROWID;"
    "CREATE INDEX promises_check ON promises(check_at) WHERE check_at IS NOT NULL;"
    "CREATE INDEX promises_comp ON promises(comp_at) WHERE comp_at IS NOT NULL;"
    "CREATE TABLE promise_moves("
    "  order_id TEXT NOT NULL, at @INT NOT NULL, from_day @INT, to_day @INT,"
    "  point @INT, reason TEXT NOT NULL, at_risk @INT NOT NULL);"
    "CREATE INDEX promise_moves_by_order ON promise_moves(order_id, at);",
    /* 10: promise moves get their own key (the order of moves at the same
     * millisecond was SQLite's rowid, which PostgreSQL does not have) */
    "CREATE TABLE promise_moves_new("
    "  id @ROWID, order_id TEXT NOT NULL, at @INT NOT NULL, from_day @INT, to_day @INT,"
    "  point @INT, reason TEXT NOT NULL, at_risk @INT NOT NULL);"
    "INSERT INTO promise_moves_new(order_id,at,from_day,to_day,point,reason,at_risk)"
    "  SELECT order_id,at,from_day,to_day,point,reason,at_risk FROM promise_moves ORDER BY at;"
    "DROP TABLE promise_moves;"
    "ALTER TABLE promise_moves_new RENAME TO promise_moves;"
    "CREATE INDEX promise_moves_by_order ON promise_moves(order_id, at);",
    /* 11: which node claimed a message being sent (several nodes share a
     * PostgreSQL store; a restarted node gives back only its own) */
    "ALTER TABLE outbox ADD COLUMN claimed_by TEXT;",
    /* 12: tracking numbers as carriers match them, without spaces and in
     * upper case, as events now carry them ("1z 999 aa1" is "1Z999AA1") */
    "UPDATE shipments SET tracking_number=upper(replace(tracking_number,' ',''))"
    "  WHERE tracking_number<>upper(replace(tracking_number,' ',''));"
    "UPDATE scans SET tracking_number=upper(replace(tracking_number,' ',''))"
    "  WHERE tracking_number<>upper(replace(tracking_number,' ',''));",
    /* 13: a customer's events with their numbers, so that the latest (a
     * tracking page's version) is read from the index: SQLite's index held
     * the number as its rowid, PostgreSQL's did not */
    "DROP INDEX events_by_customer;"
    "CREATE INDEX events_by_customer ON events(customer_id, seq) WHERE customer_id IS NOT NULL;",
    /* 14: how an order will be sent, as checkout knew it (order.placed's
     * shipping): its first promise's lane before a shipment exists */
    "ALTER TABLE orders ADD COLUMN ship_carrier TEXT;"
    "ALTER TABLE orders ADD COLUMN ship_service TEXT;"
    "ALTER TABLE orders ADD COLUMN ship_origin TEXT;"
    "ALTER TABLE orders ADD COLUMN ship_destination TEXT;",
    /* 15: region keys (model/region.h) of where a scan was and where a
     * parcel goes, so a parcel's arrival in its destination region is
     * found by the store: the promise narrows from there */
    "ALTER TABLE scans ADD COLUMN region TEXT;"
    "ALTER TABLE shipments ADD COLUMN dest_region TEXT;"
    "ALTER TABLE orders ADD COLUMN ship_dest_region TEXT;",
    /* 16: the region keys of version 15 filled in for the rows written
     * before it, and Austria's made the postal code's state (they were
     * its first two digits): a step in C (sql_migrate.c) computes the key
     * of each address in this table, writes them and drops it */
    "CREATE TABLE region_backfill(address TEXT PRIMARY KEY, region TEXT NOT NULL)@NOROWID;",
    /* 17: the parcel an order's watch closed on (a later parcel of the
     * order is watched again, the same one on its way back is not); and
     * the region keys of version 15 made again, cut between characters
     * (a name past the key's length could end inside one): the step of
     * version 16 once more (the same table: applied by hand after 16,
     * one run of the step does for both) */
    "ALTER TABLE promises ADD COLUMN closed_shipment TEXT;"
    "CREATE TABLE IF NOT EXISTS region_backfill(address TEXT PRIMARY KEY, "
    "region TEXT NOT NULL)@NOROWID;",
    /* 18: every shipment's status and delivered time read again from its
     * scans by the rules of this version (a delivered parcel stays
     * delivered, one on its way back stays so), and the parcel a closed
     * watch closed on filled in: a step in C (sql_migrate.c) drops this
     * table when done */
    "CREATE TABLE refold_18(done @INT);",
    /* 19: one parcel announced under several shipment ids (a fulfilment
     * sent again with a new id): the same carrier and number in one order
     * is one parcel, kept under its first announcement; the other ids
     * name it here. A step in C (sql_migrate.c) merges the parcels stored
     * twice before and drops merge_19. */
    "CREATE TABLE shipment_aliases(id TEXT PRIMARY KEY, shipment_id TEXT NOT NULL)@NOROWID;"
    "CREATE INDEX shipment_aliases_by_target ON shipment_aliases(shipment_id);"
    "CREATE INDEX shipments_by_parcel ON shipments(order_id, carrier, tracking_number);"
    "CREATE TABLE merge_19(done @INT);",
    /* 20: a parcel holds the same scan once (SQL_SAME_SCAN: sent again
     * under another event id, stored twice before), and a delivery is
     * never after it was heard of (SQL_DELIVERED_AT): a step in C
     * (sql_migrate.c) drops the later copies, reads the parcels they were
     * of and those delivered "in the future" again from their scans, and
     * drops scans_20 */
    "CREATE TABLE scans_20(done @INT);",
    /* 21: when a customer's address or consent last changed, apart from
     * updated_at (the newest update's time, which the same record sent
     * again moves too): unsubscribes and bounces hold until the address
     * or consent changes, not until the shop repeats itself */
    "ALTER TABLE customers ADD COLUMN contact_at @INT NOT NULL DEFAULT 0;"
    "UPDATE customers SET contact_at=updated_at;",
    /* 22: when a parcel was last announced (a fulfilment update), apart
     * from created_at (its hand-over, the first): an announcement older
     * than the latest one changes nothing of it, as a late one used to
     * overwrite a newer one's fields (or move it back to an order it had
     * left) */
    "ALTER TABLE shipments ADD COLUMN announced_at @INT;"
    "UPDATE shipments SET announced_at=created_at;",
    /* 23: delivery statuses that came before their message's provider
     * reference was recorded (a provider's callback faster than the
     * sender's write after the hand-over): kept a while, and turned into
     * message.status events when the reference is recorded */
    "CREATE TABLE early_statuses("
    "  channel @INT NOT NULL, provider_ref TEXT NOT NULL, status @INT NOT NULL,"
    "  detail TEXT, occurred_at @INT NOT NULL, received_at @INT NOT NULL,"
    "  PRIMARY KEY(channel, provider_ref, status))@NOROWID;"
    "CREATE INDEX early_statuses_by_age ON early_statuses(received_at);",
    /* 24: parcels the shop cancelled (shipment.cancelled: a label voided,
     * a fulfilment cancelled): when (the newest cancellation not older
     * than the parcel's latest announcement) and why, on the parcel's
     * row, NULL while it is live; and the cancellations of parcels not
     * announced yet, kept until their announcement comes */
    "ALTER TABLE shipments ADD COLUMN cancelled_at @INT;"
    "ALTER TABLE shipments ADD COLUMN cancel_reason TEXT;"
    "CREATE TABLE shipment_cancels("
    "  id TEXT PRIMARY KEY, order_id TEXT, cancelled_at @INT NOT NULL, reason TEXT)@NOROWID;",
    /* 25: a customer's tickets, for "is a ticket open" (the contact
     * policy's hold, asked at every ask or marketing send): it scanned
     * every ticket of the shop */
    "CREATE INDEX tickets_by_customer ON tickets(customer_id);",
    /* 26: the region keys made again by this version's rules (a postal
     * code without white space or a country prefix, a region without the
     * white space around it, Greek and Cyrillic names in upper case): the
     * step of version 16 once more */
    "CREATE TABLE IF NOT EXISTS region_backfill(address TEXT PRIMARY KEY, "
    "region TEXT NOT NULL)@NOROWID;",
    /* 27: when each of a customer's fields was stated (a JSON object of
     * times: the contact fields, the attributes, each consent), so that
     * each keeps the newest update's value whatever order updates arrive
     * in; one updated_at for all kept an update older than the latest
     * from a field it was the newest for. NULL (the rows before): each
     * field with a value as of updated_at (sql_fold.c) */
    "ALTER TABLE customers ADD COLUMN field_at TEXT;",
    /* 28: the log seq of a ticket's first ticket.created, so that one sent
     * again (a helpdesk's retry under a new event id) is known as such by
     * one read of the ticket: it paged through the customer's last 1,000
     * ticket.created events and missed older ones. A step in C
     * (sql_migrate.c) fills it in from the log and drops tickets_28. */
    "ALTER TABLE tickets ADD COLUMN created_seq @INT;"
    "CREATE TABLE tickets_28(done @INT);",
    /* 29: return events (return.requested 6, return.updated 7, which name
     * no customer) logged as their order's customer's, as the fold now
     * logs them: GET /v1/events?customer_id= left them out */
    "UPDATE events SET customer_id=(SELECT o.customer_id FROM orders o WHERE "
    "o.id=events.order_id) WHERE customer_id IS NULL AND order_id IS NOT NULL AND "
    "type IN (6,7);",
    /* 30: every event but a scan (5) that names an order but no customer
     * (order.cancelled 3, shipment.created 4, feedback.submitted 10,
     * shipment.cancelled 13) logged as its order's
     * customer's, as the fold now logs them; and the tickets (8, 9 in the
     * log) of a customer other than their order's lose the order, as the
     * fold now keeps them: they showed in that order's timeline and held
     * its messages */
    "UPDATE events SET customer_id=(SELECT o.customer_id FROM orders o WHERE "
    "o.id=events.order_id) WHERE customer_id IS NULL AND order_id IS NOT NULL AND type<>5;"
    "UPDATE tickets SET order_id=NULL WHERE order_id IS NOT NULL AND EXISTS(SELECT 1 FROM "
    "orders o WHERE o.id=tickets.order_id AND o.customer_id<>tickets.customer_id);"
    "UPDATE events SET order_id=NULL WHERE type IN (8,9) AND order_id IS NOT NULL AND "
    "EXISTS(SELECT 1 FROM orders o WHERE o.id=events.order_id AND "
    "o.customer_id<>events.customer_id);",
    /* 31: the channels a message may still go by when its own is refused
     * at the hand-over (consent withdrawn, a bounce since it was queued):
     * the rest of its send's list, in order, by name ("sms,email"); NULL
     * for none and for the messages stored before */
    "ALTER TABLE outbox ADD COLUMN fallback TEXT;",
    /* 32: the trace of a message's moves at the hand-over, kept once it is
     * sent (its reason is not): the channel it was queued on and left, and
     * each move's reason ("consent_withdrawn_before_send on whatsapp"),
     * oldest first, "; " between; NULL for a message never moved and for
     * the messages stored before */
    "ALTER TABLE outbox ADD COLUMN moved_from @INT;"
    "ALTER TABLE outbox ADD COLUMN moves TEXT;",
    /* 33: when a message failed for good, for an operator's requeue of the
     * messages failed in an outage (outbox_requeue); NULL for a message
     * not FAILED. The messages failed before have only their created_at
     * to go by: a message gives up within hours of being queued */
    "ALTER TABLE outbox ADD COLUMN failed_at @INT;"
    "UPDATE outbox SET failed_at=created_at WHERE status=4;"
    "CREATE INDEX outbox_failed ON outbox(failed_at) WHERE status = 4;",
    /* 34: a customer's active runs of one journey, and those about no
     * order: an order placed (a message status, a ticket) reads those of
     * the journeys it may end or advance, every event of the customer
     * those about no order, not every run a customer with thousands of
     * orders (a shop's "guest") ever had (IF NOT EXISTS: only indexes,
     * a store wound back to an older version may still have them) */
    "CREATE INDEX IF NOT EXISTS runs_active_by_journey ON journey_runs(customer_id, journey)"
    "  WHERE status = 1;"
    "CREATE INDEX IF NOT EXISTS runs_active_orderless ON journey_runs(customer_id)"
    "  WHERE status = 1 AND order_id IS NULL;",
    /* 35: each customer's tally of its orders, per currency (the fold keeps
     * it: Q_OR_TALLY), and its orders not cancelled in the order they were
     * placed: a journey's context (customer.orders_count, order.other_orders,
     * orders_before, other_orders_average) reads them, not every order of a
     * customer with thousands (a shop's "guest"). live: its orders placed
     * and not cancelled; spent_n, spent_sum: of those with a currency, the
     * ones the customer kept something of (SQL_ORDER_SPENT above 0) and
     * what it kept. Filled here from the orders there are (made again when
     * a store wound back to an older version runs this again: the tally
     * it kept since may be stale) */
    "DROP TABLE IF EXISTS customer_orders;"
    "CREATE TABLE customer_orders("
    "  customer_id TEXT NOT NULL, currency TEXT NOT NULL, live @INT NOT NULL,"
    "  spent_n @INT NOT NULL, spent_sum @INT NOT NULL,"
    "  PRIMARY KEY(customer_id, currency))@NOROWID;"
    "INSERT INTO customer_orders(customer_id,currency,live,spent_n,spent_sum) "
    "SELECT customer_id,cur,count(*),count(CASE WHEN currency IS NOT NULL AND spent>0 THEN 1 END),"
    "coalesce(sum(CASE WHEN currency IS NOT NULL AND spent>0 THEN spent END),0) FROM "
    "(SELECT o.customer_id,o.currency,coalesce(o.currency,'') AS cur," SPENT_35
    " AS spent "
    "FROM orders o WHERE o.customer_id IS NOT NULL AND o.placed_at IS NOT NULL AND "
    "o.status!='cancelled') x GROUP BY customer_id,cur;"
    "CREATE INDEX IF NOT EXISTS orders_live ON orders(customer_id, placed_at, id)"
    "  WHERE placed_at IS NOT NULL AND status!='cancelled';",
    /* 36: what stops messages starts over per channel: contact_at is now
     * email's (a new email, an email consent granted), and SMS and
     * WhatsApp get their own (a new phone, their consent granted), so a
     * consent granted on one channel does not lift an unsubscribe on
     * another. A customer stored before keeps its state on every channel:
     * each starts from the one time there was */
    "ALTER TABLE customers ADD COLUMN sms_contact_at @INT NOT NULL DEFAULT 0;"
    "ALTER TABLE customers ADD COLUMN whatsapp_contact_at @INT NOT NULL DEFAULT 0;"
    "UPDATE customers SET sms_contact_at=contact_at,whatsapp_contact_at=contact_at;",
    /* 37: when a message's last hand-over whose outcome was recorded was
     * made (the sender's retry goes where that one went); NULL while none
     * was since it was queued or requeued. A claim whose outcome never
     * came (its sender died) leaves it as it was: its attempt counted, but
     * whether and where it was handed over is not known. The messages
     * stored before, queued again or claimed with an attempt counted, are
     * taken as handed over, as the sender took them then */
    "ALTER TABLE outbox ADD COLUMN handed_at @INT;"
    "UPDATE outbox SET handed_at=coalesce(sent_at,created_at) WHERE (status=1 AND "
    "attempts>0) OR (status=2 AND attempts>1);",
    /* 38: when an operator last requeued a message (outbox_requeue): the
     * hand-over's holds wait hold_max from then, not from when it was
     * first queued; NULL for a message never requeued and for those
     * requeued before */
    "ALTER TABLE outbox ADD COLUMN requeued_at @INT;",
    /* 39: the last day of the own window of a parcel sent again for one
     * gone back to the shop, when that ends after the first promise's: the
     * day the order watch judges the order late after (watch.c), kept so
     * that a journey's risk.late judges it by the same day; NULL for
     * every other order, and until the watch next looks at one */
    "ALTER TABLE promises ADD COLUMN own_to @INT;",
    /* 40: when a return was last refunded -- an update said `refunded`,
     * or closed it naming an amount -- and last rejected (the fold keeps
     * both); NULL while it was not: what was spent (SQL_ORDER_SPENT) nets
     * a return's money once it was refunded and not rejected since,
     * whatever later updates say of where it is, not an amount named
     * while it was under way and then closed without a refund. The
     * returns stored before get their status's time where version 35's
     * rule had them give back (refunded, or closed with an amount), and
     * the rejected ones theirs, so what was spent, and the customers'
     * tallies, stay as they were */
    "ALTER TABLE returns ADD COLUMN refunded_at @INT;"
    "ALTER TABLE returns ADD COLUMN rejected_at @INT;"
    "UPDATE returns SET refunded_at=status_at WHERE status='refunded' OR "
    "(status='closed' AND refund_amount IS NOT NULL);"
    "UPDATE returns SET rejected_at=status_at WHERE status='rejected';",
    /* 41: a run's timers by run, for the runs view's wakes_at (a customer's
     * 200 runs, each looked up, not the whole table scanned per run) */
    "CREATE INDEX timers_by_run ON timers(run_id, gen);",
    /* 42: the detail of a message's delivery status (the provider's error
     * code and text, a bounce's reply), kept with it so that the messages
     * view says why a message failed or bounced, not only that it did;
     * NULL for a status without one. The messages stored before get the
     * detail of the status event their delivery is (the latest of its
     * rank and time), looked up by a passing index of the failures */
    "ALTER TABLE outbox ADD COLUMN delivery_detail TEXT;"
    "CREATE INDEX message_events_m42 ON message_events(message_id) WHERE status >= 4;"
    "UPDATE outbox SET delivery_detail=(SELECT e.detail FROM message_events e WHERE "
    "e.status >= 4 AND e.message_id=CAST(outbox.id AS TEXT) AND e.status=outbox.delivery AND "
    "e.occurred_at=outbox.delivery_at ORDER BY e.seq DESC LIMIT 1) WHERE delivery >= 4;"
    "DROP INDEX message_events_m42;",
    /* 43: the customers of a phone number, for WhatsApp's report that the
     * customer of a number stopped the shop's marketing (its
     * user_preferences webhook names the number, not the customer) */
    "CREATE INDEX customers_by_phone ON customers(phone) WHERE phone IS NOT NULL;",
    /* 44: why a run's send waits (quiet hours, or the hold's cause: an
     * open ticket, a late delivery, a refund under way, an address still
     * to come), for the runs view; NULL when it does not. Runs held before
     * say it the next time their send is looked at */
    "ALTER TABLE journey_runs ADD COLUMN held_for TEXT;",
};

size_t cs_schema_count(void)
{
    return CS_ARRAY_LEN(migrations);
}

static const struct {
    const char *token;
    const char *words[2]; /* sqlite, postgresql */
} words[] = {
    {"@ROWID", {"INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"}},
    {"@INT", {"INTEGER", "BIGINT"}},
    {"@REAL", {"REAL", "DOUBLE PRECISION"}},
    {"@NOROWID", {" WITHOUT ROWID", ""}},
};

char *cs_schema_migration(size_t i, cs_dialect_t dialect)
{
    if (i >= CS_ARRAY_LEN(migrations) || (dialect != CS_DIALECT_SQLITE &&
                                          dialect != CS_DIALECT_POSTGRESQL))
        return NULL;
    cs_buf_t b;
    cs_buf_init(&b, 1 << 20);
    const char *p = migrations[i];
    while (*p) {
        const char *at = strchr(p, '@');
        if (!at) {
            cs_buf_puts(&b, p);
            break;
        }
        cs_buf_append(&b, p, (size_t)(at - p));
        size_t k = 0;
        for (; k < CS_ARRAY_LEN(words); k++) {
            size_t n = strlen(words[k].token);
            /* the longest token first would matter for prefixes; none is a
             * prefix of another followed by a letter */
            if (strncmp(at, words[k].token, n) == 0 &&
                !((at[n] >= 'A' && at[n] <= 'Z') || at[n] == '_')) {
                cs_buf_puts(&b, words[k].words[dialect]);
                p = at + n;
                break;
            }
        }
        if (k == CS_ARRAY_LEN(words)) { /* not a placeholder: kept */
            cs_buf_append(&b, "@", 1);
            p = at + 1;
        }
    }
    size_t len;
    char *out = cs_buf_steal(&b, &len);
    return out;
}

int cs_dialect_from_name(const char *name)
{
    if (name && strcmp(name, "sqlite") == 0)
        return CS_DIALECT_SQLITE;
    if (name && (strcmp(name, "postgresql") == 0 || strcmp(name, "postgres") == 0))
        return CS_DIALECT_POSTGRESQL;
    return -1;
}
