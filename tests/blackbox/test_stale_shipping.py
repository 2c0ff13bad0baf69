"""Black-box: a shipping notice held back until nothing of the order is on
its way any more is not sent. The mail server cannot be reached for the
whole test, so every notice waits for its retry. A parcel the carrier
scans delivered meanwhile (or that goes back to the shop) makes its
notice -- "your order is on its way" -- stale: it is skipped as
no_longer_on_its_way instead of reaching the customer with the parcel in
their hands. A parcel still on its way keeps its notice waiting, and so
does an order of two parcels of which one has arrived: the notice tells
of the other one."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# a port nothing listens on: every hand-over is a temporary failure
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
closed = probe.getsockname()[1]
probe.close()

d = csbb.Daemon(a.bin, extra_env={
    "CONSONANCE_JOURNEYS": os.path.join(root, "etc", "journeys"),
    "CONSONANCE_TEMPLATES": os.path.join(root, "etc", "templates"),
    "CONSONANCE_SMTP_URL": "smtp://127.0.0.1:%d" % closed,
    "CONSONANCE_SMTP_FROM": "Shop <shop@example.com>",
    "CONSONANCE_RETRY_BASE": "1s",
    # (the notices wait for a retry however slow the machine: none gives up)
    "CONSONANCE_SEND_ATTEMPTS": "30",
    "CONSONANCE_QUIET_HOURS": "off",
})
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def order(cid, parcels):
    oid = "o-" + cid
    evs = [{"event_id": "c-" + cid, "type": "customer.upserted", "occurred_at": now,
            "data": {"id": cid, "name": "Kim " + cid, "email": cid + "@example.com",
                     "locale": "de", "timezone": "Europe/Berlin"}},
           csbb.order_event("e-o-" + cid, oid, customer=cid, at=now)]
    for i in range(parcels):
        evs.append({"event_id": "e-s-%s-%d" % (cid, i), "type": "shipment.created",
                    "occurred_at": now,
                    "data": {"id": "s-%s-%d" % (cid, i), "order_id": oid, "carrier": "dhl",
                             "tracking_number": "T%s%d" % (cid, i)}})
    return evs


def scan(cid, i, status):
    return {"event_id": "e-%s-%d-%s" % (cid, i, status), "type": "tracking.event",
            "occurred_at": now,
            "data": {"shipment_id": "s-%s-%d" % (cid, i), "carrier": "dhl",
                     "tracking_number": "T%s%d" % (cid, i), "status": status}}


def notice(cid):
    st, _, body = d.request("GET", "/v1/customers/%s/messages" % cid)
    got = [m for m in body.get("messages", []) if m["template"] == "shipped"] if st == 200 else []
    return got[0] if got else None


try:
    d.start()
    custs = ("ann", "ben", "cem", "dan")
    st, _, _ = d.post_events(order("ann", 1) + order("ben", 1) + order("cem", 2) +
                             order("dan", 1))
    t.eq(st, 200, "events accepted")
    for cid in custs:
        t.wait_for(lambda: (notice(cid) or {}).get("attempts", 0) >= 1 and
                   notice(cid)["status"] == "queued", "%s's notice tried and waiting" % cid,
                   timeout=60)
    # ann's parcel arrives, dan's goes back to the shop, one of cem's two
    # arrives; ben's is still on its way
    st, _, _ = d.post_events([scan("ann", 0, "delivered"), scan("dan", 0, "returned_to_sender"),
                              scan("cem", 0, "delivered")])
    t.eq(st, 200, "the scans accepted")
    for cid in ("ann", "dan"):
        got = t.wait_for(lambda: (notice(cid) or {}).get("status") not in ("queued", "sending")
                         and notice(cid),
                         "%s's notice settled" % cid, timeout=60)
        if got:
            t.eq((got["status"], got["reason"]), ("skipped", "no_longer_on_its_way"),
                 "no \"is on its way\" once the parcel is no longer: %r" % got)
    # the other two are tried again after the scans, and still wait
    tried = {cid: notice(cid)["attempts"] for cid in ("ben", "cem")}
    for cid in ("ben", "cem"):
        got = t.wait_for(lambda: (notice(cid) or {}).get("attempts", 0) > tried[cid] and
                         notice(cid), "%s's notice tried again" % cid, timeout=120)
        if got:
            t.check(got["status"] in ("queued", "sending"),  # (sending: being tried now)
                    "%s's notice still waits to go: %r" % (cid, got))
finally:
    d.stop()
    d.cleanup()
t.done()
