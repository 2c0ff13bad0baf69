"""Black-box: a store written by an older release is upgraded in place when
the daemon opens it. The store is built at schema version 11 (the
migrations of src/store/schema.c as `consonance schema` prints them), with
rows as that release stored them: tracking numbers as the shop sent them,
with spaces and in lower case. Opening it runs migrations 12 and 13:
numbers become what carriers match ("1z 999 aa1" is "1Z999AA1"), so a scan
for the stored parcel and a shipment for a waiting scan find each other;
a customer's events are indexed with their numbers; (15, 16) every
stored scan place and destination gets its region key -- also when
migration 16's SQL was applied by hand, at the next open; and (18) a
parcel stored as an older release folded it (delivered, then a late
transit scan: "in transit") is delivered again, and a watch closed on it
names the parcel it closed on; (19) a parcel stored under two shipment
ids is one, under the first, with both's scans; (20) a scan stored twice
(sent again under another event id) is kept once, on its parcel and
waiting for one, and a parcel delivered by a scan dated ahead of its
receipt is delivered when it was received; (27) a customer stored before
gets per-field times (customers.field_at): each of its fields counts as
stated at its last update, so an older update fills only what it lacks and
a newer one replaces; (28) a ticket gets the log seq of its first
ticket.created, not of the copy sent again; (29) a return's event is
its order's customer's; (30) so are a parcel's events (not its scans), and
a ticket of another customer that named the order loses it; (31) the outbox
gets the channels a message may fall back to (none for the messages
stored before); (33) a failed message gets when it failed (its created_at
for the ones stored before), for an operator's retry; (35) each customer
gets its tally of its orders (those not cancelled, and what it kept of
them); (36) a customer's SMS and WhatsApp start over from where its one
time to start over was (contact_at, now email's); (37) a message waiting
for its retry counts as handed over, one not handed over yet not; (38)
the outbox gets when a message was last requeued; (39) promises get the
own window of a parcel sent again (none for the orders stored before);
(40) a return stored before refunded, or closed naming its amount, was
refunded when it got there, and a rejected one rejected; (42) a message's
delivery gets the detail of the status event it is; (43) customers are
indexed by their phone numbers; (44) runs get why their send waits (none
for the runs stored before). Winding the store
back to 25 drops those columns, and the next open adds them again. Runs on
SQLite and, as its .postgresql variant, on a throwaway PostgreSQL cluster."""
import json
import os
import re
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
OLD = 11  # the version the older release left behind


def schema(dialect):
    out = subprocess.run([a.bin, "schema", dialect], check=True, capture_output=True,
                         text=True).stdout
    parts = re.split(r"^-- version (\d+)\n", out, flags=re.M)
    return {int(parts[i]): parts[i + 1] for i in range(1, len(parts), 2)}


def iso(offset_s=0):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_s))


d = csbb.Daemon(a.bin)
pg = d.store if not d.store.startswith("sqlite:") else None
now_ms = int(time.time() * 1000)
placed = now_ms - 2 * 86400 * 1000


def ev(seq, eid, etype, type_no, at_ms, data, order=None, customer=None):
    body = json.dumps({"event_id": eid, "type": etype, "occurred_at": iso_ms(at_ms), "data": data})
    return ("INSERT INTO events(seq,event_id,type,occurred_at,received_at,customer_id,order_id,body) "
            "VALUES(%d,'%s',%d,%d,%d,%s,%s,'%s')"
            % (seq, eid, type_no, at_ms, at_ms, "'%s'" % customer if customer else "NULL",
               "'%s'" % order if order else "NULL", body.replace("'", "''")))


def iso_ms(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


# places as an older release stored them (compact JSON), without region keys
WIEN = '{"city":"Wien","postal_code":"1010","country":"AT"}'
LEIPZIG = '{"city":"Leipzig","postal_code":"04179","country":"DE"}'
LEIPZIG_HOME = '{"line1":"Hauptstr. 1","city":"Leipzig","postal_code":"04109","country":"DE"}'
GERMANY = '{"country":"DE"}'

# the log and the state an older release kept for it: an order, its parcel
# and a scan for a parcel not announced yet, numbers as the shop sent them
scan_at = placed + 3600 * 1000
rows = [
    ev(1, "old-1", "order.placed", 2, placed,
       {"id": "o-up", "customer_id": "c-up", "currency": "EUR", "totals": {"total": "29.90"},
        "items": [{"sku": "a", "name": "A", "unit_price": "29.90", "quantity": 1}]},
       order="o-up", customer="c-up"),
    ev(2, "old-2", "shipment.created", 4, placed,
       {"id": "S-up", "order_id": "o-up", "carrier": "dhl",
        "tracking_number": "00340 43466 0012 3456"}, order="o-up"),
    ev(3, "old-3", "tracking.event", 5, scan_at,
       {"carrier": "dhl", "tracking_number": "jjd 0001", "carrier_code": "transit",
        "location": WIEN}),
    ev(4, "old-4", "tracking.event", 5, scan_at,
       {"carrier": "dhl", "tracking_number": "00340 43466 0012 3456", "carrier_code": "hub",
        "location": LEIPZIG}, order="o-up"),
    ev(5, "old-5", "tracking.event", 5, scan_at,
       {"carrier": "dhl", "tracking_number": "00340 43466 0012 3456", "carrier_code": "export",
        "location": GERMANY}, order="o-up"),
    "INSERT INTO orders(id,customer_id,currency,placed_at,total,status,updated_at) "
    "VALUES('o-up','c-up','EUR',%d,2990,'placed',%d)" % (placed, placed),
    "INSERT INTO order_items(order_id,line,sku,name,unit_price,quantity,discount) "
    "VALUES('o-up',1,'a','A',2990,1,0)",
    # the customer as an older release kept it: one updated_at for all fields
    "INSERT INTO customers(id,email,name,consent,first_seen_at,updated_at) "
    "VALUES('c-up','old@example.de','Olga','y-----',%d,%d)" % (placed, placed),
    "INSERT INTO shipments(id,order_id,carrier,tracking_number,destination,created_at) "
    "VALUES('S-up','o-up','dhl','00340 43466 0012 3456','%s',%d)" % (LEIPZIG_HOME, placed),
    "INSERT INTO scans(seq,shipment_id,carrier,tracking_number,status,carrier_code,location,"
    "occurred_at) VALUES(3,NULL,'dhl','jjd 0001',1,'transit','%s',%d)" % (WIEN, scan_at),
    "INSERT INTO scans(seq,shipment_id,carrier,tracking_number,status,carrier_code,location,"
    "occurred_at) VALUES(4,'S-up','dhl','00340 43466 0012 3456',1,'hub','%s',%d)"
    % (LEIPZIG, scan_at),
    "INSERT INTO scans(seq,shipment_id,carrier,tracking_number,status,carrier_code,location,"
    "occurred_at) VALUES(5,'S-up','dhl','00340 43466 0012 3456',1,'export','%s',%d)"
    % (GERMANY, scan_at - 60000),
    # delivered, then a late transit scan, stored as the old fold left it
    # (their seqs, like the twins' below, far from those the log gives next)
    "INSERT INTO orders(id,customer_id,currency,placed_at,total,status,updated_at) "
    "VALUES('o-dl','c-up','EUR',%d,1000,'placed',%d)" % (placed, placed),
    "INSERT INTO shipments(id,order_id,carrier,tracking_number,created_at,status,status_at,"
    "delivered_at) VALUES('S-dl','o-dl','dpd','DL1',%d,1,%d,NULL)"
    % (placed, scan_at + 7200 * 1000),
    "INSERT INTO scans(seq,shipment_id,carrier,tracking_number,status,carrier_code,occurred_at) "
    "VALUES(1006,'S-dl','dpd','DL1',5,'pod',%d)" % scan_at,
    "INSERT INTO scans(seq,shipment_id,carrier,tracking_number,status,carrier_code,occurred_at) "
    "VALUES(1007,'S-dl','dpd','DL1',1,'late',%d)" % (scan_at + 7200 * 1000),
    "INSERT INTO promises(order_id,customer_id,updated_at,closed,reason) "
    "VALUES('o-dl','c-up',%d,1,'delivered')" % scan_at,
    # one parcel announced twice under two ids, its scans split between them
    "INSERT INTO orders(id,customer_id,currency,placed_at,total,status,updated_at) "
    "VALUES('o-tw','c-up','EUR',%d,1000,'placed',%d)" % (placed, placed),
    "INSERT INTO shipments(id,order_id,carrier,tracking_number,created_at,status,status_at) "
    "VALUES('S-tw1','o-tw','dhl','TW1',%d,1,%d)" % (placed, scan_at),
    "INSERT INTO shipments(id,order_id,carrier,tracking_number,created_at,status,status_at) "
    "VALUES('S-tw2','o-tw','dhl','TW1',%d,5,%d)" % (placed + 60000, scan_at + 3600 * 1000),
    "INSERT INTO scans(seq,shipment_id,carrier,tracking_number,status,carrier_code,occurred_at) "
    "VALUES(1008,'S-tw1','dhl','TW1',1,'tw-transit',%d)" % scan_at,
    "INSERT INTO scans(seq,shipment_id,carrier,tracking_number,status,carrier_code,occurred_at) "
    "VALUES(1009,'S-tw2','dhl','TW1',5,'tw-delivered',%d)" % (scan_at + 3600 * 1000),
    # a scan stored twice (sent again under another event id) beside one
    # of another text, and one stored twice while it waits for its parcel
    "INSERT INTO orders(id,customer_id,currency,placed_at,total,status,updated_at) "
    "VALUES('o-dup','c-up','EUR',%d,1000,'placed',%d)" % (placed, placed),
    "INSERT INTO shipments(id,order_id,carrier,tracking_number,created_at,status,status_at) "
    "VALUES('S-dup','o-dup','dpd','DUP1',%d,1,%d)" % (placed, scan_at),
] + ["INSERT INTO scans(seq,shipment_id,carrier,tracking_number,status,carrier_code,carrier_text,"
     "location,occurred_at) VALUES(%d,%s,'dpd','%s',1,'dup-hub','%s','%s',%d)"
     % (seq, sid, num, text, GERMANY, scan_at)
     for seq, sid, num, text in [(1010, "'S-dup'", "DUP1", "Im Depot"),
                                 (1011, "'S-dup'", "DUP1", "Im Depot"),
                                 (1012, "'S-dup'", "DUP1", "Im Depot Nord"),
                                 (1013, "NULL", "DUPW", "Im Depot"),
                                 (1014, "NULL", "DUPW", "Im Depot")]] + [
    # delivered by a scan dated five hours ahead of its receipt
    "INSERT INTO orders(id,customer_id,currency,placed_at,total,status,updated_at) "
    "VALUES('o-ah','c-up','EUR',%d,1000,'placed',%d)" % (placed, placed),
    "INSERT INTO shipments(id,order_id,carrier,tracking_number,created_at,status,status_at,"
    "delivered_at) VALUES('S-ah','o-ah','dpd','AH1',%d,5,%d,%d)"
    % (placed, scan_at + 5 * 3600 * 1000, scan_at + 5 * 3600 * 1000),
    "INSERT INTO events(seq,event_id,type,occurred_at,received_at,order_id,body) "
    "VALUES(1015,'old-ah',5,%d,%d,'o-ah','{}')" % (scan_at + 5 * 3600 * 1000, scan_at),
    "INSERT INTO scans(seq,shipment_id,carrier,tracking_number,status,carrier_code,occurred_at) "
    "VALUES(1015,'S-ah','dpd','AH1',5,'pod',%d)" % (scan_at + 5 * 3600 * 1000),
    # what the customer kept of it: 10.00 paid, 4.00 given back
    "INSERT INTO returns(id,order_id,status,refund_amount,requested_at,status_at) "
    "VALUES('R-ah','o-ah','closed',400,%d,%d)" % (placed, placed),
    # a ticket created, and its creation sent again (a helpdesk's retry)
    ev(1016, "old-t1", "ticket.created", 8, placed, {"id": "t-up", "customer_id": "c-up"},
       customer="c-up"),
    ev(1017, "old-t1-again", "ticket.created", 8, placed, {"id": "t-up", "customer_id": "c-up"},
       customer="c-up"),
    "INSERT INTO tickets(id,customer_id,status,created_at,status_at) "
    "VALUES('t-up','c-up','open',%d,%d)" % (placed, placed),
    # a return of the order, logged without a customer as returns were
    ev(1018, "old-r1", "return.requested", 6, placed,
       {"id": "R-up", "order_id": "o-up", "resolution": "refund",
        "items": [{"sku": "a", "quantity": 1}]}, order="o-up"),
    # a ticket of another customer linked to the order, as tickets were
    ev(1019, "old-t-x", "ticket.created", 8, placed,
       {"id": "t-x", "customer_id": "c-x", "order_id": "o-up"}, order="o-up", customer="c-x"),
    "INSERT INTO tickets(id,customer_id,order_id,status,created_at,status_at) "
    "VALUES('t-x','c-x','o-up','open',%d,%d)" % (placed, placed),
]
steps = schema("postgresql" if pg else "sqlite")
t.check(max(steps) > OLD, "the schema has migrations after version %d: %d" % (OLD, max(steps)))
if pg:
    old_sql = "".join(steps[v] for v in range(1, OLD + 1))
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", pg], input=old_sql + ";\n" +
                   "CREATE TABLE consonance_schema(version BIGINT NOT NULL);"
                   "INSERT INTO consonance_schema VALUES(%d);" % OLD + ";\n".join(rows) + ";",
                   check=True, capture_output=True, text=True)
else:
    db = sqlite3.connect(d.store[len("sqlite:"):])
    for v in range(1, OLD + 1):
        db.executescript(steps[v])
    for r in rows:
        db.execute(r)
    db.execute("PRAGMA user_version=%d" % OLD)
    db.commit()
    db.close()
t.eq(csbb.store_sql(d.store, "SELECT tracking_number FROM shipments WHERE id='S-up'").split(),
     ["00340", "43466", "0012", "3456"], "the old store holds the number as the shop sent it")

# (35) each customer's tally of its orders: those placed and not cancelled,
# and of those what was kept (total less what closed or refunded returns
# gave back, stated amounts here), per currency
TALLY = ("SELECT customer_id, currency, live, spent_n, spent_sum FROM customer_orders "
         "WHERE live<>0 ORDER BY customer_id, currency")
TALLY_WANT = (
    "SELECT customer_id, cur, count(*), count(CASE WHEN currency IS NOT NULL AND s>0 THEN 1 END), "
    "coalesce(sum(CASE WHEN currency IS NOT NULL AND s>0 THEN s END),0) FROM (SELECT "
    "o.customer_id, o.currency, coalesce(o.currency,'') AS cur, o.total-coalesce((SELECT "
    "sum(r.refund_amount) FROM returns r WHERE r.order_id=o.id AND r.status IN "
    "('refunded','closed')),0) AS s FROM orders o WHERE o.customer_id IS NOT NULL AND "
    "o.placed_at IS NOT NULL AND o.status<>'cancelled') x GROUP BY customer_id, cur "
    "ORDER BY customer_id, cur")

try:
    d.start()
    tally = csbb.store_sql(d.store, TALLY).split()
    t.check(len(tally) > 0 and any(row.startswith("c-up|EUR|") for row in tally),
            "migration 35: the customers' tallies filled: %r" % tally)
    t.eq(tally, csbb.store_sql(d.store, TALLY_WANT).split(),
         "migration 35: each tally counts the customer's orders and what it kept of them")
    t.eq(csbb.store_sql(d.store, "SELECT tracking_number FROM shipments WHERE id='S-up'").strip(),
         "003404346600123456", "migration 12: the shipment's number without spaces")
    t.eq(csbb.store_sql(d.store, "SELECT tracking_number FROM scans WHERE seq=3").strip(),
         "JJD0001", "migration 12: the waiting scan's number in upper case")
    if pg:
        v = csbb.store_sql(d.store, "SELECT max(version) FROM consonance_schema").strip()
        idx = csbb.store_sql(d.store, "SELECT indexdef FROM pg_indexes "
                                      "WHERE indexname='events_by_customer'")
    else:
        v = csbb.store_sql(d.store, "PRAGMA user_version").strip()
        idx = csbb.store_sql(d.store, "SELECT sql FROM sqlite_master "
                                      "WHERE name='events_by_customer'")
    t.eq(int(v), max(steps), "the store is at the latest version")
    t.check(re.search(r"\(\s*customer_id\s*,\s*seq\s*\)", idx) is not None,
            "migration 13: a customer's events indexed with their numbers: %r" % idx)

    # migration 16: the region keys of the places stored before 15
    t.eq(csbb.store_sql(d.store, "SELECT dest_region FROM shipments WHERE id='S-up'").strip(),
         "DE-SN", "migration 16: the stored parcel's destination region (Leipzig, Saxony)")
    got = csbb.store_sql(d.store, "SELECT carrier_code, coalesce(region,'-') FROM scans "
                                  "WHERE seq<=5 ORDER BY seq").replace("|", " ").split()
    t.eq(got, ["transit", "AT-9", "hub", "DE-SN", "export", "-"],
         "migration 16: each stored scan's region (Vienna's postal code names AT-9; a country "
         "alone names none)")

    # migration 18: the parcel delivered before its late transit scan is
    # delivered, and the watch closed on it names it
    got = csbb.store_sql(d.store, "SELECT status, delivered_at FROM shipments WHERE id='S-dl'"
                         ).strip().split("|")
    t.eq(got, ["5", str(scan_at)], "migration 18: delivered, at its delivery scan")
    t.eq(csbb.store_sql(d.store, "SELECT closed_shipment FROM promises WHERE order_id='o-dl'"
                        ).strip(), "S-dl", "migration 18: the closed watch names its parcel")
    left = csbb.store_sql(d.store, "SELECT count(*) FROM pg_tables WHERE tablename='refold_18'"
                          if pg else "SELECT count(*) FROM sqlite_master WHERE name='refold_18'")
    t.eq(left.strip(), "0", "migration 18's table dropped by its step")

    # migration 19: the parcel stored under two ids is one, under the first
    t.eq(csbb.store_sql(d.store, "SELECT id, coalesce(status,-1) FROM shipments "
                                 "WHERE order_id='o-tw'").strip(), "S-tw1|5",
         "migration 19: one parcel, under its first id, delivered by the scan the second held")
    t.eq(csbb.store_sql(d.store, "SELECT count(*) FROM scans WHERE shipment_id='S-tw1'").strip(),
         "2", "migration 19: both scans on it")
    t.eq(csbb.store_sql(d.store, "SELECT shipment_id FROM shipment_aliases WHERE id='S-tw2'"
                        ).strip(), "S-tw1", "migration 19: the second id names the first")
    left = csbb.store_sql(d.store, "SELECT count(*) FROM pg_tables WHERE tablename='merge_19'"
                          if pg else "SELECT count(*) FROM sqlite_master WHERE name='merge_19'")
    t.eq(left.strip(), "0", "migration 19's table dropped by its step")
    # migration 20: the later copy of the scan stored twice dropped, on its
    # parcel and waiting; the parcel delivered ahead delivered when heard of
    t.eq(csbb.store_sql(d.store, "SELECT seq FROM scans WHERE tracking_number IN "
                                 "('DUP1','DUPW') ORDER BY seq").split(),
         ["1010", "1012", "1013"], "migration 20: each scan stored once, the first kept")
    t.eq(csbb.store_sql(d.store, "SELECT status, delivered_at FROM shipments WHERE id='S-ah'"
                        ).strip().split("|"), ["5", str(scan_at)],
         "migration 20: delivered when the scan dated ahead was received")
    left = csbb.store_sql(d.store, "SELECT count(*) FROM pg_tables WHERE tablename='scans_20'"
                          if pg else "SELECT count(*) FROM sqlite_master WHERE name='scans_20'")
    t.eq(left.strip(), "0", "migration 20's table dropped by its step")
    # migration 27: the stored customer's fields as of its last update
    field_at_col = ("SELECT count(*) FROM information_schema.columns WHERE "
                    "table_schema=current_schema() AND table_name='customers' AND "
                    "column_name='field_at'" if pg else
                    "SELECT count(*) FROM pragma_table_info('customers') WHERE name='field_at'")
    t.eq(csbb.store_sql(d.store, field_at_col).strip(), "1", "migration 27: customers.field_at")
    t.eq(csbb.store_sql(d.store, "SELECT coalesce(field_at,'-') FROM customers WHERE id='c-up'"
                        ).strip(), "-", "migration 27: no times for the customer stored before")
    # migration 28: the ticket's first creation found in the log
    t.eq(csbb.store_sql(d.store, "SELECT created_seq FROM tickets WHERE id='t-up'").strip(),
         "1016", "migration 28: the ticket's first ticket.created")
    left = csbb.store_sql(d.store, "SELECT count(*) FROM pg_tables WHERE tablename='tickets_28'"
                          if pg else "SELECT count(*) FROM sqlite_master WHERE name='tickets_28'")
    t.eq(left.strip(), "0", "migration 28's table dropped by its step")
    # migration 29: the return's event is its order's customer's
    st, _, page = d.request("GET", "/v1/events?customer_id=c-up&type=return.requested")
    t.eq([e.get("event_id") for e in page.get("events", [])] if st == 200 else st, ["old-r1"],
         "migration 29: the customer's events list the order's return")
    # migration 30: the parcel's events are the order's customer's, and the
    # other customer's ticket is not the order's
    st, _, page = d.request("GET", "/v1/events?customer_id=c-up&limit=1000")
    listed = [e.get("event_id") for e in page.get("events", [])] if st == 200 else st
    t.check(isinstance(listed, list) and "old-2" in listed and
            not any(e in listed for e in ("old-4", "old-5")),
            "migration 30: the customer's events list the parcel, not its scans: %s" % (listed,))
    st, _, view = d.request("GET", "/v1/orders/o-up")
    t.eq(([x.get("id") for x in view.get("tickets", [])],
          [x.get("event_id") for x in view.get("timeline", []) if x.get("type", "").startswith("ticket")])
         if st == 200 else st, ([], []), "migration 30: another customer's ticket left the order")
    st, _, page = d.request("GET", "/v1/events?customer_id=c-x")
    t.eq([e.get("event_id") for e in page.get("events", [])] if st == 200 else st, ["old-t-x"],
         "migration 30: the ticket stays its customer's")
    # migration 31: the channels a message may fall back to
    fallback_col = ("SELECT count(*) FROM information_schema.columns WHERE "
                    "table_schema=current_schema() AND table_name='outbox' AND "
                    "column_name='fallback'" if pg else
                    "SELECT count(*) FROM pragma_table_info('outbox') WHERE name='fallback'")
    t.eq(csbb.store_sql(d.store, fallback_col).strip(), "1", "migration 31: outbox.fallback")
    # migration 32: the trace of a message's moves
    moves_col = fallback_col.replace("'fallback'", "'moves'")
    t.eq(csbb.store_sql(d.store, moves_col).strip(), "1", "migration 32: outbox.moves")
    # migration 33: when a message failed, for an operator's retry
    failed_col = fallback_col.replace("'fallback'", "'failed_at'")
    t.eq(csbb.store_sql(d.store, failed_col).strip(), "1", "migration 33: outbox.failed_at")
    # migration 36: each channel starts over on its own; the customer stored
    # before keeps its state on every channel (each from its contact_at)
    CONTACT_TIMES = ("SELECT contact_at, sms_contact_at, whatsapp_contact_at FROM customers "
                     "WHERE id='c-up'")
    t.eq(csbb.store_sql(d.store, CONTACT_TIMES).strip().split("|"), [str(placed)] * 3,
         "migration 36: SMS and WhatsApp start from the customer's contact_at")
    # migration 39: a parcel sent again's own window, for the journeys
    own_to_col = fallback_col.replace("'outbox'", "'promises'").replace("'fallback'", "'own_to'")
    t.eq(csbb.store_sql(d.store, own_to_col).strip(), "1", "migration 39: promises.own_to")
    # migration 40: when a return was refunded and rejected; one stored before
    # closed naming its amount gave it back when it was closed, as before
    REFUNDED = "SELECT refunded_at, rejected_at FROM returns WHERE id='R-ah'"
    t.eq(csbb.store_sql(d.store, REFUNDED).strip(), "%d|" % placed,
         "migration 40: a return closed with an amount refunded when it was closed")
    # migration 43: the customers of a phone number, for WhatsApp's user_preferences
    PHONE_INDEX = ("SELECT count(*) FROM pg_indexes WHERE schemaname=current_schema() AND "
                   "indexname='customers_by_phone'" if pg else
                   "SELECT count(*) FROM sqlite_master WHERE type='index' AND "
                   "name='customers_by_phone'")
    t.eq(csbb.store_sql(d.store, PHONE_INDEX).strip(), "1", "migration 43: customers_by_phone")
    st, _, body = d.post_events([
        {"event_id": "up-cust-older", "type": "customer.upserted", "occurred_at": iso_ms(placed - 3600 * 1000),
         "data": {"id": "c-up", "email": "older@example.de", "phone": "+4915100000009",
                  "consents": {"email": {"transactional": False, "marketing": True}}}},
        {"event_id": "up-cust-newer", "type": "customer.upserted", "occurred_at": iso(-20),
         "data": {"id": "c-up", "name": "Olga Neu"}}])
    t.eq(st, 200, "the customer's updates are accepted: %r" % (body,))
    st, _, cust = d.request("GET", "/v1/customers/c-up")
    t.eq([cust.get(k) for k in ("email", "phone", "name")] if st == 200 else st,
         ["old@example.de", "+4915100000009", "Olga Neu"],
         "an update older than the stored customer fills only what it lacked")
    t.eq(cust.get("consents", {}).get("email") if st == 200 else st,
         {"transactional": True, "marketing": True},
         "... of its consents too (the stored transactional yes stays)")
    got = csbb.store_sql(d.store, "SELECT field_at FROM customers WHERE id='c-up'").strip()
    times = json.loads(got) if got.startswith("{") else got
    t.eq(times.get("email") if isinstance(times, dict) else times, placed,
         "the stored email as of the customer's last update: %r" % (times,))
    t.eq(times.get("phone") if isinstance(times, dict) else times,
         (placed - 3600 * 1000) // 1000 * 1000,
         "the phone as of the update that gave it")
    st, _, view = d.request("GET", "/v1/orders/o-tw")
    t.eq([x.get("id") for x in view.get("shipments", [])] if st == 200 else st, ["S-tw1"],
         "the order shows one parcel")

    # a carrier scan for the stored parcel, in the carrier's own spelling
    st, _, body = d.post_events([{
        "event_id": "up-scan-1", "type": "tracking.event", "occurred_at": iso(-60),
        "data": {"carrier": "dhl", "tracking_number": "003404346600123456",
                 "status": "out_for_delivery", "carrier_code": "ofd-1",
                 "location": {"city": "Leipzig", "country": "DE"}}}])
    t.eq(st, 200, "the scan is accepted: %r" % (body,))
    got = csbb.store_sql(d.store, "SELECT shipment_id FROM scans WHERE carrier_code='ofd-1'").strip()
    t.eq(got, "S-up", "the scan found the parcel stored before the upgrade")
    st, _, status = d.request("GET", "/v1/orders/o-up/status?lang=en")
    t.eq(st, 200, "the order's status answer")
    t.check("out for delivery" in json.dumps(status).lower(),
            "the status answer says out for delivery: %r" % (status,))

    # a shipment for the scan that waited since before the upgrade
    st, _, body = d.post_events([{
        "event_id": "up-ship-2", "type": "shipment.created", "occurred_at": iso(-30),
        "data": {"id": "S-up2", "order_id": "o-up", "carrier": "dhl",
                 "tracking_number": "JJD 0001"}}])
    t.eq(st, 200, "the second shipment is accepted: %r" % (body,))
    got = csbb.store_sql(d.store, "SELECT shipment_id FROM scans WHERE carrier_code='transit'").strip()
    t.eq(got, "S-up2", "the scan that waited before the upgrade found its shipment")
    t.eq(d.stop(), 0, "the daemon stops cleanly")

    # opening the upgraded store again applies nothing twice
    d.start()
    t.eq(csbb.store_sql(d.store, "SELECT count(*) FROM scans").strip(), "12", "reopened as it was")
    t.eq(csbb.store_sql(d.store, "SELECT count(*) FROM scans WHERE region IS NOT NULL").strip(),
         "2", "with the region keys written once")
    t.eq(d.stop(), 0, "and stops cleanly again")

    # migration 16 applied by hand, as `consonance schema` prints it: its
    # table is there and no step has run (the keys of the older rows are
    # empty); the next open runs the step
    csbb.store_sql(d.store, "UPDATE scans SET region=NULL; UPDATE shipments SET dest_region=NULL; "
                   + steps[16].strip().rstrip(";"))
    t.eq(csbb.store_sql(d.store, "SELECT count(*) FROM scans WHERE region IS NOT NULL").strip(), "0",
         "by hand: the table of migration 16 made, the older keys empty")
    d.start()
    got = csbb.store_sql(d.store, "SELECT carrier_code, coalesce(region,'-') FROM scans "
                                  "WHERE carrier_code IN ('transit','hub','export') ORDER BY seq"
                         ).replace("|", " ").split()
    t.eq(got, ["transit", "AT-9", "hub", "DE-SN", "export", "-"],
         "the next open ran the step the hand missed")
    t.eq(csbb.store_sql(d.store, "SELECT dest_region FROM shipments WHERE id='S-up'").strip(),
         "DE-SN", "... for the shipments too")
    left = csbb.store_sql(d.store, "SELECT count(*) FROM pg_tables WHERE tablename='region_backfill'"
                          if pg else "SELECT count(*) FROM sqlite_master WHERE name='region_backfill'")
    t.eq(left.strip(), "0", "... and dropped its table: the step runs once")
    t.check("migration 16 was applied without its step" in d.read_log(), "the log says so")
    t.eq(d.stop(), 0, "and stops cleanly")

    # migration 26: a key written by version 25's rules is made again. A
    # Lithuanian code stored with its prefix was keyed "LT-LT" (the
    # prefix's letters); now the code's first two digits
    csbb.store_sql(d.store, "UPDATE shipments SET destination='{\"postal_code\":\"LT-01103\","
                            "\"country\":\"LT\"}', dest_region='LT-LT' WHERE id='S-up'")
    # (back to 25: the columns of 27, 28, 31, 32, 33, 36, 37, 38, 39, 40, 42 and 44 and the indexes
    # of 41 and 43 go too, as a store of 25 had none; with a message that failed before 33)
    csbb.store_sql(d.store, "ALTER TABLE customers DROP COLUMN field_at")
    csbb.store_sql(d.store, "ALTER TABLE tickets DROP COLUMN created_seq")
    csbb.store_sql(d.store, "ALTER TABLE outbox DROP COLUMN fallback")
    csbb.store_sql(d.store, "ALTER TABLE outbox DROP COLUMN moved_from")
    csbb.store_sql(d.store, "ALTER TABLE outbox DROP COLUMN moves")
    csbb.store_sql(d.store, "DROP INDEX outbox_failed")
    csbb.store_sql(d.store, "ALTER TABLE outbox DROP COLUMN failed_at")
    csbb.store_sql(d.store, "ALTER TABLE customers DROP COLUMN sms_contact_at")
    csbb.store_sql(d.store, "ALTER TABLE customers DROP COLUMN whatsapp_contact_at")
    csbb.store_sql(d.store, "UPDATE customers SET contact_at=%d WHERE id='c-up'" % (placed + 7))
    csbb.store_sql(d.store, "ALTER TABLE outbox DROP COLUMN handed_at")
    csbb.store_sql(d.store, "ALTER TABLE outbox DROP COLUMN requeued_at")
    csbb.store_sql(d.store, "ALTER TABLE promises DROP COLUMN own_to")
    csbb.store_sql(d.store, "ALTER TABLE returns DROP COLUMN refunded_at")
    csbb.store_sql(d.store, "ALTER TABLE returns DROP COLUMN rejected_at")
    csbb.store_sql(d.store, "DROP INDEX timers_by_run")
    csbb.store_sql(d.store, "ALTER TABLE outbox DROP COLUMN delivery_detail")
    csbb.store_sql(d.store, "ALTER TABLE journey_runs DROP COLUMN held_for")
    csbb.store_sql(d.store, "DROP INDEX customers_by_phone")
    # (a WhatsApp message a callback reported failed twice, the later
    # failure its delivery, and one delivered: stored before 42)
    csbb.store_sql(d.store, "INSERT INTO outbox(id,idem_key,customer_id,channel,template,class,"
                            "status,created_at,delivery,delivery_at) VALUES(900001,'up:wafail',"
                            "'c-up',2,'x',4,3,1772400000000,7,1772400090000),(900002,"
                            "'up:wadone','c-up',2,'x',4,3,1772400000000,1,1772400090000)")
    csbb.store_sql(d.store, "INSERT INTO message_events(seq,message_id,status,channel,"
                            "customer_id,detail,occurred_at) VALUES"
                            "(900001,'900001',7,'whatsapp','c-up','131049 earlier',1772400030000),"
                            "(900002,'900001',7,'whatsapp','c-up','132001 its delivery',"
                            "1772400090000),"
                            "(900003,'900002',1,'whatsapp','c-up',NULL,1772400090000)")
    csbb.store_sql(d.store, "INSERT INTO outbox(idem_key,customer_id,channel,template,class,"
                            "status,reason,created_at) VALUES('up:failed','c-up',0,'x',4,4,"
                            "'gave up: 421',1772400000000)")
    # (a retry waiting, and a first hand-over queued, both stored before 37)
    csbb.store_sql(d.store, "INSERT INTO outbox(idem_key,customer_id,channel,template,class,"
                            "status,reason,attempts,next_at,created_at) VALUES('up:retry','c-up',"
                            "0,'x',4,1,'retry 1: 421',1,4102444800000,1772400000000),"
                            "('up:first','c-up',0,'x',4,1,NULL,0,4102444800000,1772400000000)")
    t.eq(csbb.store_sql(d.store, field_at_col).strip(), "0", "wound back: no customers.field_at")
    csbb.store_sql(d.store, "UPDATE consonance_schema SET version=25" if pg else
                   "PRAGMA user_version=25")
    d.start()
    t.eq(csbb.store_sql(d.store, "SELECT dest_region FROM shipments WHERE id='S-up'").strip(),
         "LT-01", "migration 26: the stored destination's key made again")
    t.eq(csbb.store_sql(d.store, field_at_col).strip(), "1",
         "migration 27 again: customers.field_at added back")
    t.eq(csbb.store_sql(d.store, fallback_col).strip(), "1",
         "migration 31 again: outbox.fallback added back")
    t.eq(csbb.store_sql(d.store, moves_col).strip(), "1",
         "migration 32 again: outbox.moves added back")
    t.eq(csbb.store_sql(d.store, own_to_col).strip(), "1",
         "migration 39 again: promises.own_to added back")
    t.eq(csbb.store_sql(d.store, PHONE_INDEX).strip(), "1",
         "migration 43 again: customers_by_phone added back")
    t.eq(csbb.store_sql(d.store, REFUNDED).strip(), "%d|" % placed,
         "migration 40 again: the return closed with an amount refunded when it was closed")
    t.eq(csbb.store_sql(d.store, "SELECT failed_at FROM outbox WHERE idem_key='up:failed'").strip(),
         "1772400000000", "migration 33 again: a message failed before has its created_at")
    t.eq(csbb.store_sql(d.store, "SELECT created_seq FROM tickets WHERE id='t-up'").strip(),
         "1016", "migration 28 again: the ticket's first ticket.created")
    t.eq(csbb.store_sql(d.store, "SELECT idem_key,handed_at FROM outbox WHERE idem_key IN "
                                 "('up:retry','up:first') ORDER BY idem_key").split(),
         ["up:first|", "up:retry|1772400000000"],
         "migration 37: a retry stored before counts as handed over, a first hand-over not")
    t.eq(csbb.store_sql(d.store, "SELECT idem_key,delivery_detail FROM outbox WHERE idem_key "
                                 "IN ('up:wafail','up:wadone') ORDER BY idem_key").split("\n")[:2],
         ["up:wadone|", "up:wafail|132001 its delivery"],
         "migration 42: a message's delivery gets the detail of its status event")
    st, _, ms = d.request("GET", "/v1/customers/c-up/messages")
    t.eq([(m.get("delivery"), m.get("delivery_detail")) for m in ms.get("messages", [])
          if m.get("idempotency_key") == "up:wafail"], [("failed", "132001 its delivery")],
         "... which the messages view shows")
    t.eq(csbb.store_sql(d.store,
                        "SELECT count(*) FROM outbox WHERE requeued_at IS NOT NULL").strip(),
         "0", "migration 38: outbox.requeued_at, none requeued yet")
    t.eq(csbb.store_sql(d.store, TALLY).split(), csbb.store_sql(d.store, TALLY_WANT).split(),
         "migration 35 again: the tallies made again from the orders")
    t.eq(csbb.store_sql(d.store, CONTACT_TIMES).strip().split("|"), [str(placed + 7)] * 3,
         "migration 36 again: SMS and WhatsApp start from the customer's contact_at")
    st, _, body = d.post_events([
        {"event_id": "up-cust-again", "type": "customer.upserted",
         "occurred_at": iso_ms(placed - 1800 * 1000),
         "data": {"id": "c-up", "name": "Olga Alt", "locale": "de"}}])
    t.eq(st, 200, "an older update after the second upgrade is accepted: %r" % (body,))
    st, _, cust = d.request("GET", "/v1/customers/c-up")
    t.eq([cust.get(k) for k in ("name", "locale")] if st == 200 else st, ["Olga Neu", "de"],
         "the fields as of the customer's last update: the older one fills only the locale")
    t.eq(d.stop(), 0, "and stops cleanly after it")
finally:
    d.cleanup()
t.done()
