"""Black-box: every route while the PostgreSQL store is away. The daemon runs
on a throwaway cluster with every route on (journeys and templates from
etc/, the SMS, WhatsApp and email callbacks, both tracking webhooks, the
tracking and unsubscribe pages); a customer, an order, a shipment and a scan
are loaded, then the database is stopped and each route docs/api.md lists is
called with a valid request. None may claim a success it did not store, nor
say that what exists does not (a 200 to a provider's callback, a 404 for a
known order): a write or a read of the store is refused with a 5xx, on the
API 503 store_unavailable with a message that says why, on the customers'
pages a page of their own. Each answers in bounded time; /metrics still
answers, and no answer lost the cause of its failure on the way (the
daemon's warning). Once the database is back the node is healthy again and
a request of each kind that writes goes through. Last, while the database
reads but takes no writes, what only reads may answer, and every route
that writes is refused as while it was away."""
import base64
import datetime as dt
import hashlib
import hmac
import http.client
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
pg = csbb.require_pg(real_clock=True)
here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))

LINK = "outage-link-secret-0123456789"
SMS_TOKEN = "sms-token-0123456789"
WA_SECRET = "wa-app-secret-0123456789"
WA_VERIFY = "wa-verify-0123456789"
AS_SECRET = "aftership-secret-1"
TR_SECRET = "tracking-secret-1"
PUBLIC = "https://shop.example"
# the providers' addresses answer nothing: no send is needed here
env = {
    "CONSONANCE_JOURNEYS": os.path.join(root, "etc", "journeys"),
    "CONSONANCE_TEMPLATES": os.path.join(root, "etc", "templates"),
    "CONSONANCE_SHOP_NAME": "Waldkauz",
    "CONSONANCE_SHOP_TIMEZONE": "Europe/Berlin",
    "CONSONANCE_QUIET_HOURS": "off",
    "CONSONANCE_PUBLIC_URL": PUBLIC,
    "CONSONANCE_LINK_SECRET": LINK,
    "CONSONANCE_SMS_URL": "http://127.0.0.1:9/2010-04-01/Accounts/AC123/Messages.json",
    "CONSONANCE_SMS_ACCOUNT": "AC123",
    "CONSONANCE_SMS_TOKEN": SMS_TOKEN,
    "CONSONANCE_SMS_FROM": "+4930123456",
    "CONSONANCE_WHATSAPP_URL": "http://127.0.0.1:9/v19.0/1234567/messages",
    "CONSONANCE_WHATSAPP_TOKEN": "wa-token",
    "CONSONANCE_WHATSAPP_APP_SECRET": WA_SECRET,
    "CONSONANCE_WHATSAPP_VERIFY_TOKEN": WA_VERIFY,
    "CONSONANCE_AFTERSHIP_SECRET": AS_SECRET,
    "CONSONANCE_TRACKING_SECRET": TR_SECRET,
    "CONSONANCE_TRACKING_LOOKUPS": "3",
}
now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def iso(x):
    return x.strftime("%Y-%m-%dT%H:%M:%SZ")


def link_token(purpose, ident):
    """A signed link's token, as the messages carry it (docs/tracking.md)."""
    mac = hmac.new(LINK.encode(), (purpose + ":" + ident).encode(), hashlib.sha256)
    return ident.encode().hex() + "." + mac.hexdigest()[:32]


def request(method, path, body=None, headers=None, key=True):
    """d.request with a client timeout: a route must answer in bounded time
    (the status None when it did not, which no check takes)."""
    h = dict(headers or {})
    if key and d.key:
        h.setdefault("Authorization", "Bearer " + d.key)
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=20)
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
    except (OSError, http.client.HTTPException) as e:
        return None, {}, "no answer: %r" % e
    finally:
        c.close()
    if hdrs.get("content-type", "").startswith("application/json"):
        return r.status, hdrs, json.loads(data)
    return r.status, hdrs, data.decode("utf-8", "replace")


def twilio(fields):
    data = PUBLIC + "/v1/callbacks/sms" + "".join(k + fields[k] for k in sorted(fields))
    sig = base64.b64encode(hmac.new(SMS_TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()
    return ("POST", "/v1/callbacks/sms", urllib.parse.urlencode(fields).encode(),
            {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig}, False)


def meta(value, field="messages"):
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": field, "value": value}]}]}).encode()
    sig = "sha256=" + hmac.new(WA_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return ("POST", "/v1/callbacks/whatsapp", body,
            {"Content-Type": "application/json", "X-Hub-Signature-256": sig}, False)


def aftership(n):
    raw = json.dumps({"event": "tracking_update", "msg": {
        "slug": "dhl-germany", "tracking_number": "JJD1001", "tag": "InTransit",
        "checkpoints": [{"checkpoint_time": iso(now - dt.timedelta(minutes=30 - n)),
                         "tag": "InTransit", "subtag": "InTransit_001",
                         "message": "Die Sendung wurde bearbeitet (%d)." % n,
                         "city": "Leipzig", "country_iso3": "DEU"}]}}).encode()
    sig = base64.b64encode(hmac.new(AS_SECRET.encode(), raw, hashlib.sha256).digest()).decode()
    return ("POST", "/v1/tracking/aftership", raw,
            {"Content-Type": "application/json", "aftership-hmac-sha256": sig}, False)


def scans(n):
    raw = json.dumps({"carrier": "dhl", "tracking_number": "JJD1001", "scans": [
        {"code": "ARRIVED", "text": "Sendung im Paketzentrum (%d)" % n,
         "occurred_at": iso(now - dt.timedelta(minutes=20 - n)),
         "location": {"city": "Halle", "country": "DE"}}]}).encode()
    ts = int(time.time())
    mac = hmac.new(TR_SECRET.encode(), str(ts).encode() + b"." + raw, hashlib.sha256).hexdigest()
    return ("POST", "/v1/tracking/scans", raw,
            {"Content-Type": "application/json", "X-Consonance-Signature": "t=%d,v1=%s" % (ts, mac)},
            False)


def form(path, fields):
    return ("POST", path, urllib.parse.urlencode(fields),
            {"Content-Type": "application/x-www-form-urlencoded"}, False)


def ev(eid):
    return {"event_id": eid, "type": "customer.upserted", "occurred_at": iso(now),
            "data": {"id": "anna", "email": "anna@example.de", "name": "Anna"}}


placed = now - dt.timedelta(hours=30)
LOAD = [
    {"event_id": "c-anna", "type": "customer.upserted", "occurred_at": iso(placed),
     "data": {"id": "anna", "name": "Anna Müller", "email": "anna@example.de", "locale": "de",
              "timezone": "Europe/Berlin", "phone": "+4915100000042",
              "consents": {"email": {"transactional": True, "marketing": True},
                           "sms": {"transactional": True}, "whatsapp": {"transactional": True}}}},
    {"event_id": "o-1001", "type": "order.placed", "occurred_at": iso(placed),
     "data": {"id": "1001", "customer_id": "anna", "currency": "EUR", "placed_at": iso(placed),
              "totals": {"shipping": "4.90", "total": "89.00"},
              "items": [{"sku": "ZELT-2", "name": "Zelt", "unit_price": "84.10", "quantity": 1}]}},
    {"event_id": "s-1001", "type": "shipment.created", "occurred_at": iso(placed + dt.timedelta(hours=3)),
     "data": {"id": "S1001", "order_id": "1001", "carrier": "dhl", "tracking_number": "JJD1001",
              "origin": {"country": "DE", "region": "SN"},
              "destination": {"country": "DE", "postal_code": "10115", "city": "Berlin"}}},
    {"event_id": "sc-1001-1", "type": "tracking.event", "occurred_at": iso(placed + dt.timedelta(hours=5)),
     "data": {"shipment_id": "S1001", "carrier": "dhl", "tracking_number": "JJD1001",
              "status": "in_transit", "location": {"city": "Leipzig", "country": "DE"}}},
    {"event_id": "ms-1", "type": "message.status", "occurred_at": iso(placed + dt.timedelta(hours=1)),
     "data": {"customer_id": "anna", "channel": "email", "status": "delivered",
              "message_id": "ext-1"}},
]


def routes(n, journey, mail_id):
    """Every route of docs/api.md, each with a valid request (n makes the
    writes new): (name, method, path, body, headers, key)."""
    promise = ("/v1/promise?carrier=dhl&origin_country=DE&origin_region=SN"
               "&destination_country=DE&destination_postal_code=10115")
    r = [
        ("events single", "POST", "/v1/events", ev("out-%d-a" % n), None, True),
        ("events batch", "POST", "/v1/events", [ev("out-%d-b" % n), ev("out-%d-c" % n)], None, True),
        ("events ndjson", "POST", "/v1/events", json.dumps(ev("out-%d-d" % n)),
         {"Content-Type": "application/x-ndjson"}, True),
        ("events log", "GET", "/v1/events?limit=5", None, None, True),
        ("customer", "GET", "/v1/customers/anna", None, None, True),
        ("order", "GET", "/v1/orders/1001", None, None, True),
        ("customer journeys", "GET", "/v1/customers/anna/journeys", None, None, True),
        ("customer messages", "GET", "/v1/customers/anna/messages", None, None, True),
        ("customer discounts", "GET", "/v1/customers/anna/discounts", None, None, True),
        ("journeys", "GET", "/v1/journeys", None, None, True),
        ("journey disable", "POST", "/v1/journeys/%s/disable" % journey, None, None, True),
        ("journey enable", "POST", "/v1/journeys/%s/enable" % journey, None, None, True),
        ("messages retry", "POST", "/v1/messages/retry",
         {"failed_since": iso(now - dt.timedelta(days=1))}, None, True),
        ("callback email", "POST", "/v1/callbacks/email",
         {"message_id": mail_id or "<m%d@example.de>" % n,
          "status": ("opened", "opened", "clicked")[n]}, None, True),
        ("callback sms",) + twilio({"MessageSid": "SM%d" % n, "MessageStatus": "delivered"}),
        ("callback whatsapp status",) + meta({"messaging_product": "whatsapp", "statuses": [
            {"id": "wamid.%d" % n, "status": "delivered", "timestamp": str(int(time.time())),
             "recipient_id": "4915100000042"}]}),
        ("callback whatsapp stop",) + meta({"messaging_product": "whatsapp", "user_preferences": [
            {"wa_id": "4915100000042", "category": "marketing_messages", "value": "stop",
             "timestamp": int(time.time()) - 60 + n}]}, field="user_preferences"),
        ("tracking aftership",) + aftership(n),
        ("tracking scans",) + scans(n),
        ("promise", "GET", promise, None, None, True),
        ("order status", "GET", "/v1/orders/1001/status", None, None, True),
        ("tracking page", "GET", "/t/" + link_token("t", "1001"), None, None, False),
        ("tracking lookup",) + form("/t", {"order": "1001", "key": "10115", "lang": "de"}),
        ("unsubscribe page", "GET", "/u/" + link_token("u", "anna"), None, None, False),
        ("unsubscribe",) + form("/u/" + link_token("u", "anna"), {}),
        ("healthz", "GET", "/healthz", None, None, False),
    ]
    return r


# what the daemon says when the cause of an error was not handed on: the
# bare name of its code (cs_strerror), which says nothing of why
BARE = {"", "ok", "store error", "internal error", "unknown error", "unauthorized", "not found"}


def meaningful(msg):
    return bool(msg) and msg not in BARE and "\n" not in msg


# routes that need no store: they may answer as usual while it is away
STORELESS = {
    "promise": "the window from the promise model in memory",
    "whatsapp check": "Meta's subscription check",
    "lookup form": "the empty form",
    "metrics": "leaves out what needs the store",
}

# the order confirmation through a real SMTP server gives the email callback
# a message of ours (without aiosmtpd it names none, answered 422 after)
sink = csbb.SmtpSink()
if sink.py:
    sink.start()
    env.update(sink.env())
    env["CONSONANCE_SMTP_FROM"] = "Waldkauz <service@waldkauz.example>"
pg.start()
d = csbb.Daemon(a.bin, store=pg.url(), extra_env=env)
try:
    d.start()
    st, _, body = d.post_events(LOAD)
    t.eq(st, 200, "the data accepted: %r" % (body,))
    t.check(d.settle(), "the engine has read the log")
    st, _, js = d.request("GET", "/v1/journeys")
    journey = js["journeys"][0]["id"] if st == 200 and js.get("journeys") else "order_confirmation"
    mail_id = None
    if sink.py:
        got = t.wait_for(lambda: [m for m, e in sink.mails() if e["to"] == ["anna@example.de"]],
                         "the order confirmation to anna", timeout=30)
        mail_id = got[0]["Message-ID"] if got else None

    pg.pause()
    t0 = time.time()
    table = []
    extra = [
        ("whatsapp check", "GET", "/v1/callbacks/whatsapp?hub.mode=subscribe&hub.verify_token=%s"
         "&hub.challenge=1158201444" % WA_VERIFY, None, None, False),
        ("lookup form", "GET", "/t", None, None, False),
        ("metrics", "GET", "/metrics", None, None, False),
    ]
    for name, method, path, body, headers, key in routes(0, journey, mail_id) + extra:
        st, hd, got = request(method, path, body, headers, key)
        e = got.get("error") if isinstance(got, dict) else None
        msg = (e or {}).get("message") or (got.get("message") if isinstance(got, dict) else None)
        if path == "/v1/events" and isinstance(got, dict) and "results" in got:
            # a batch says why item by item
            e = (got["results"][0] if got["results"] else {}).get("error")
            msg = (e or {}).get("message")
        table.append((name, st, (e or {}).get("code"), (msg or "")[:90]))
        what = "%s %s while the store is away: %s %r" % (method, path.split("?")[0], st,
                                                         got if isinstance(got, dict) else got[:160])
        if name in STORELESS:
            t.check(st == 200 or (st is not None and st >= 500), what)
            continue
        t.check(st is not None and st >= 500, what)
        if path.startswith("/v1/") or path == "/healthz":
            # the API says why: the store (503 store_unavailable), in words
            want = "store_unavailable" if name != "healthz" else None
            if want:
                t.check(st == 503 and e is not None and e.get("code") == want,
                        "%s: 503 store_unavailable (%s)" % (name, e))
                t.eq(hd.get("retry-after"), "1", "%s: with Retry-After" % name)
            t.check(meaningful(msg),
                    "%s: a meaningful message: %r" % (name, msg))
        else:
            # the customers' pages: a page of their own, not the API's JSON
            t.check(isinstance(got, str) and "<html" in got,
                    "%s: a page: %r" % (name, got if isinstance(got, dict) else got[:200]))
            t.eq(hd.get("retry-after"), "1", "%s: with Retry-After" % name)
    # a lookup the store could not answer is no failed one: more of them
    # than tracking_lookups allows failures must not block the right pair
    for _ in range(3):
        request(*form("/t", {"order": "1001", "key": "10115", "lang": "de"}))
    print("during the outage (%.1f s):" % (time.time() - t0))
    for row in table:
        print("  %-26s %-5s %-18s %s" % row)
    # the API key's check reads the store too, once the key is out of the
    # daemon's cache (2 s): the store's failure, not a refused key
    time.sleep(2.5)
    st, hd, got = request("GET", "/v1/customers/anna")
    e = got.get("error", {}) if isinstance(got, dict) else {}
    print("  %-26s %-5s %-18s %s" % ("key check", st, e.get("code"), e.get("message", "")[:90]))
    t.check(st == 503 and e.get("code") == "store_unavailable" and hd.get("retry-after") == "1",
            "a key that cannot be checked: 503 store_unavailable, not 401: %s %r" % (st, got))
    t.check(meaningful(e.get("message")),
            "the key check says why: %r" % e.get("message"))
    st, _, text = request("GET", "/metrics", key=False)
    t.check(st == 200 and "consonance_http_requests_total" in text,
            "/metrics answers while the store is away")
    t.check("the cause of a failure was lost" not in d.read_log(),
            "no answer lost the cause of its failure:\n%s" % "\n".join(
                line for line in d.read_log().splitlines() if "was lost" in line))

    pg.resume()
    t.check(t.wait_for(lambda: request("GET", "/healthz")[0] == 200,
                       "healthy again once the database is back", timeout=30),
            "the node recovers by itself")
    for name, method, path, body, headers, key in routes(1, journey, mail_id):
        st, _, got = request(method, path, body, headers, key)
        if name == "callback email" and not mail_id and st == 422:
            # no mail of ours to name (no SMTP sink): looked up, and told so
            st = 200 if "message_id" in json.dumps(got) else st
        t.check(st is not None and st < 400 and st != 204,
                "%s works again: %s %r" % (name, st, got if isinstance(got, dict) else got[:160]))
    st, _, c = d.request("GET", "/v1/events?limit=1000")
    ids = {e["event_id"] for e in c.get("events", [])} if st == 200 else set()
    t.check({"out-1-a", "out-1-b", "out-1-c", "out-1-d"} <= ids and
            not {"out-0-a", "out-0-b", "out-0-c", "out-0-d"} & ids,
            "the events refused during the outage are not stored, those after it are")

    # a database that reads but takes no writes (its sessions read-only, as
    # a managed database is put on a full disk): what reads may answer, but
    # nothing that writes claims it was taken
    pg.psql("ALTER SYSTEM SET default_transaction_read_only=on; SELECT pg_reload_conf();",
            single=False)
    t.wait_for(lambda: request("GET", "/healthz")[0] == 503, "unhealthy while read-only")
    print("while the database is read-only:")
    for name, method, path, body, headers, key in routes(2, journey, mail_id):
        st, hd, got = request(method, path, body, headers, key)
        e = got.get("error") if isinstance(got, dict) else None
        if path == "/v1/events" and isinstance(got, dict) and "results" in got:
            e = (got["results"][0] if got["results"] else {}).get("error")
        msg = (e or {}).get("message") or (got.get("message") if isinstance(got, dict) else None)
        print("  %-26s %-5s %-18s %s" % (name, st, (e or {}).get("code"), (msg or "")[:90]))
        what = "%s %s while read-only: %s %r" % (method, path.split("?")[0], st,
                                                 got if isinstance(got, dict) else got[:160])
        if method == "GET" or name in ("tracking lookup",):
            t.check(st is not None and (st < 300 or st == 303 or st >= 500), what)
            continue
        t.check(st is not None and st >= 500, what)
        if path.startswith("/v1/"):
            t.check(st == 503 and e is not None and e.get("code") == "store_unavailable" and
                    meaningful(msg), "%s: 503 store_unavailable saying why (%s)" % (name, e))
    t.check("the cause of a failure was lost" not in d.read_log(),
            "no answer lost the cause of its failure (read-only):\n%s" % "\n".join(
                line for line in d.read_log().splitlines() if "was lost" in line))
    pg.psql("SET default_transaction_read_only=off; ALTER SYSTEM RESET default_transaction_read_only;"
            " SELECT pg_reload_conf();", single=False)
    t.wait_for(lambda: request("GET", "/healthz")[0] == 200,
               "healthy again once the database takes writes")
finally:
    d.cleanup()
    pg.stop()
    if sink.py:
        sink.stop()
t.done()
