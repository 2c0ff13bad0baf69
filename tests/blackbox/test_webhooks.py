"""Black-box: journey actions that reach outside. A journey issues a discount
code and calls a webhook; a local receiver checks the HMAC-SHA256 signature
(over "<t>.<body>" with webhook_secret), answers 503 once (the webhook is
retried with the same delivery id) and then 200; a receiver that answers
400 fails the webhook for good. The code is in the body and in the
customer's discounts; a journey with a webhook step does not start without
a secret."""
import atexit
import hashlib
import hmac
import http.server
import json
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET = "whsec-test-0123456789"
seen = []
lock = threading.Lock()
failures = {"/crm": 1}  # answer 503 this many times


class Receiver(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
            if self.path == "/reject":
                code = 400
            elif self.path == "/moved":
                code = 301
            elif failures.get(self.path, 0) > 0:
                failures[self.path] -= 1
                code = 503
            else:
                code = 200
        # a receiver whose answer is large (a whole page): the status decides
        answer = b"<p>ok</p>" * (256 * 1024) if self.path == "/big" else b""
        self.send_response(code)
        if code == 301:
            self.send_header("Location", "https://crm.example/hooks/new")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=srv.serve_forever, daemon=True).start()
base = "http://127.0.0.1:%d" % srv.server_address[1]

jdir = tempfile.mkdtemp(prefix="cs-wh-")
atexit.register(shutil.rmtree, jdir, True)
with open(os.path.join(jdir, "vip.yaml"), "w") as f:
    f.write("journey: vip\n"
            "trigger: {event: order.placed, if: \"order.total >= 100\"}\n"
            "steps:\n"
            "  - discount: {amount: 5, valid: 14d, prefix: VIP}\n"
            "  - webhook: {url: \"%s/crm\", event: vip_customer}\n"
            "  - webhook: {url: \"%s/reject\", event: vip_rejected}\n"
            "  - webhook: {url: \"%s/big\", event: vip_big_answer}\n"
            "  - webhook: {url: \"%s/moved\", event: vip_moved}\n" % (base, base, base, base))
# a long journey id and a long order id: keys past 150 characters, whose
# deliveries differ only at the end
LONG_JOURNEY = "crm_sync_for_orders_with_long_identifiers_" + "x" * 20
with open(os.path.join(jdir, "long.yaml"), "w") as f:
    f.write("journey: %s\n"
            "trigger: {event: order.placed, if: \"order.total < 100\"}\n"
            "steps:\n"
            "  - webhook: {url: \"%s/long\", event: long_first}\n"
            "  - webhook: {url: \"%s/long\", event: long_second}\n" % (LONG_JOURNEY, base, base))

env = {
    "CONSONANCE_JOURNEYS": jdir,
    "CONSONANCE_TEMPLATES": os.path.join(root, "etc", "templates"),
    "CONSONANCE_RETRY_BASE": "1s",
    "CONSONANCE_QUIET_HOURS": "off",
}

# without a secret the daemon refuses to start and names the journey file
nosecret = csbb.Daemon(a.bin, extra_env=env)
try:
    nosecret.start()
    t.check(False, "a webhook journey without webhook_secret must not start")
except RuntimeError as e:
    t.check("webhook_secret" in str(e) and ("vip.yaml" in str(e) or "long.yaml" in str(e)),
            "the refusal names the setting and the file: %s" % str(e)[-200:])
finally:
    nosecret.cleanup()

env["CONSONANCE_WEBHOOK_SECRET"] = SECRET
d = csbb.Daemon(a.bin, extra_env=env)



def messages():
    st, _, body = d.request("GET", "/v1/customers/k-1/messages")
    return {m["template"]: m for m in body.get("messages", [])} if st == 200 else {}


def verify(req):
    sig = req["headers"].get("X-Consonance-Signature", "")
    parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
    want = hmac.new(SECRET.encode(), (parts.get("t", "") + ".").encode() + req["body"],
                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(parts.get("v1", ""), want) and abs(int(parts.get("t", "0")) - time.time()) < 300


try:
    d.start()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    st, _, _ = d.post_events([
        {"event_id": "c-k-1", "type": "customer.upserted", "occurred_at": now,
         "data": {"id": "k-1", "email": "kim@example.de", "locale": "de"}},
        csbb.order_event("o-500", "500", customer="k-1", at=now, price="149.00"),
    ])
    t.eq(st, 200, "events accepted")
    got = t.wait_for(lambda: messages().get("vip_customer", {}).get("status") == "sent" and
                   messages().get("vip_rejected", {}).get("status") == "failed", "both webhooks done")
    m = messages()
    t.eq(m.get("vip_customer", {}).get("attempts"), 2, "the webhook was retried after a 503")
    t.eq(m.get("vip_customer", {}).get("channel"), "webhook", "listed as a webhook")
    t.check("400" in (m.get("vip_rejected", {}).get("reason") or ""),
            "a 400 fails for good: %r" % m.get("vip_rejected", {}).get("reason"))
    t.eq(m.get("vip_rejected", {}).get("attempts"), 1, "no retry after a 400")
    big = t.wait_for(lambda: messages().get("vip_big_answer", {}).get("status") == "sent" and
                     messages()["vip_big_answer"], "the webhook answered with 2 MiB")
    t.eq((big or {}).get("attempts"), 1, "a 200 with a large answer is sent at once")
    t.eq(len([r for r in seen if r["path"] == "/big"]), 1, "and delivered once")
    # a redirect is not followed: failed for good, saying where it pointed
    moved = t.wait_for(lambda: messages().get("vip_moved", {}).get("status") == "failed" and
                       messages()["vip_moved"], "the webhook answered with a redirect")
    t.check("redirected to https://crm.example/hooks/new" in ((moved or {}).get("reason") or ""),
            "the reason says where the redirect pointed: %r" % (moved or {}).get("reason"))
    t.eq((moved or {}).get("attempts"), 1, "no retry after a redirect")

    crm = [r for r in seen if r["path"] == "/crm"]
    t.eq(len(crm), 2, "two deliveries to the CRM (503, then 200)")
    if len(crm) == 2:
        t.check(all(verify(r) for r in crm), "signatures verify with the secret")
        ids = {r["headers"].get("X-Consonance-Delivery") for r in crm}
        t.check(len(ids) == 1 and None not in ids, "the same delivery id on the retry: %r" % ids)
        t.eq(crm[1]["headers"].get("X-Consonance-Event"), "vip_customer", "event header")
        body = json.loads(crm[1]["body"])
        t.eq((body["event"], body["journey"], body["customer"]["id"], body["order"]["id"]),
             ("vip_customer", "vip", "k-1", "500"), "body names event, journey, customer, order")
        code = body.get("discount", {}).get("code", "")
        t.check(code.startswith("VIP-") and len(code) == 12, "the run's code is in the body: %r" % code)
        t.eq((body["discount"].get("kind"), body["discount"].get("value"),
              body["discount"].get("currency")), ("amount", 5.0, "EUR"), "amount code in EUR")
        tampered = dict(crm[1], body=crm[1]["body"].replace(b"VIP-", b"VIX-"))
        t.check(not verify(tampered), "a changed body does not verify")
        st, _, disc = d.request("GET", "/v1/customers/k-1/discounts")
        t.eq([x["code"] for x in disc.get("discounts", [])], [code], "the code in the customer's discounts")

    # each delivery has its own id, the whole idempotency key, however long
    long_order = "o-" + "7" * 126
    st, _, _ = d.post_events([csbb.order_event("o-long", long_order, customer="k-1", at=now,
                                               price="9.90")])
    t.eq(st, 200, "long order accepted")
    t.wait_for(lambda: messages().get("long_first", {}).get("status") == "sent" and
               messages().get("long_second", {}).get("status") == "sent", "both long webhooks sent")
    hooks = [r for r in seen if r["path"] == "/long"]
    ids = [r["headers"].get("X-Consonance-Delivery") for r in hooks]
    want = [json.loads(r["body"])["id"] for r in hooks]
    t.check(len(hooks) == 2 and all(len(k) > 150 for k in want), "two deliveries with long keys")
    t.eq(ids, want, "X-Consonance-Delivery is the delivery's whole id")
    t.eq(len(set(ids)), 2, "two deliveries, two delivery ids")
    st, _, _ = d.request("GET", "/v1/customers/k-1/discounts", key=False)
    t.eq(st, 401, "discounts need a key")
finally:
    d.cleanup()
    srv.shutdown()
t.done()
