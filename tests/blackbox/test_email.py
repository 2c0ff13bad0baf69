"""Black-box: email through a real SMTP server (aiosmtpd: STARTTLS and AUTH
required). The shipped templates are rendered in the customer's language;
the message is proper MIME (multipart/alternative, UTF-8 headers encoded,
Message-ID, Date); non-transactional mail carries RFC 8058 one-click
unsubscribe headers, and the link works; a refused recipient fails for
good, a temporary refusal is retried; the outbox records every outcome;
a delay notice held back until the parcel arrived is dropped, not sent."""
import datetime
import email
import email.policy
import glob
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))

py = None
for cand in ("/usr/bin/python3", sys.executable):
    if os.path.exists(cand) and subprocess.run([cand, "-c", "import aiosmtpd"],
                                               capture_output=True).returncode == 0:
        py = cand
        break
if not py:
    print("SKIP: aiosmtpd is not installed (scripts/install-deps.sh installs python3-aiosmtpd)")
    sys.exit(csbb.SKIP)

tmp = tempfile.mkdtemp(prefix="cs-email-")
mail_dir = os.path.join(tmp, "mail")
os.makedirs(mail_dir)
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                "-days", "1", "-keyout", os.path.join(tmp, "key.pem"), "-out",
                os.path.join(tmp, "cert.pem")], check=True, capture_output=True)
sink = subprocess.Popen([py, os.path.join(here, "smtp_sink.py"), mail_dir,
                         os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem"), "shop", "s3cret"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
port = int(sink.stdout.readline().split()[1])

# journeys: the shipped confirmation, plus tips sent at once (a reassurance)
jdir = os.path.join(tmp, "journeys")
os.makedirs(jdir)
shutil.copy(os.path.join(root, "etc", "journeys", "10-order-confirmation.yaml"), jdir)
shutil.copy(os.path.join(root, "etc", "journeys", "30-shipped.yaml"), jdir)
shutil.copy(os.path.join(root, "etc", "journeys", "45-delivery-problem.yaml"), jdir)
shutil.copy(os.path.join(root, "etc", "journeys", "47-parcel-returned.yaml"), jdir)
with open(os.path.join(jdir, "tips.yaml"), "w") as f:
    f.write("journey: tips_now\ntrigger: {event: order.placed}\nsteps:\n"
            "  - send: {channel: email, template: delivered_tips, class: reassurance}\n")

env = {
    "CONSONANCE_JOURNEYS": jdir,
    "CONSONANCE_TEMPLATES": os.path.join(root, "etc", "templates"),
    "CONSONANCE_SMTP_URL": "smtp://127.0.0.1:%d" % port,
    "CONSONANCE_SMTP_USER": "shop",
    "CONSONANCE_SMTP_PASSWORD": "s3cret",
    "CONSONANCE_SMTP_FROM": "Waldkauz Haus & Outdoor <service@waldkauz.example>",
    "CONSONANCE_SMTP_TLS": "require",
    "CONSONANCE_SMTP_TLS_VERIFY": "no",
    "CONSONANCE_SHOP_NAME": "Waldkauz Haus & Outdoor",
    "CONSONANCE_RETRY_BASE": "1s",
    "CONSONANCE_QUIET_HOURS": "off",
    "CONSONANCE_SHOP_TIMEZONE": "Europe/Berlin",
    "CONSONANCE_PUBLIC_URL": "https://shop.example/consonance",
    "CONSONANCE_LINK_SECRET": "test-link-secret-0123456789",
}
d = csbb.Daemon(a.bin, extra_env=env)


def messages(cust):
    st, _, body = d.request("GET", "/v1/customers/%s/messages" % cust)
    return list(reversed(body.get("messages", []))) if st == 200 else []



def mails():
    out = []
    for p in sorted(glob.glob(os.path.join(mail_dir, "*.eml"))):
        with open(p, "rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        with open(p[:-4] + ".json") as f:
            env_ = json.load(f)
        out.append((msg, env_))
    return out


def customer(cid, name, mail, locale):
    return {"event_id": "c-" + cid, "type": "customer.upserted", "occurred_at": now,
            "data": {"id": cid, "name": name, "email": mail, "locale": locale,
                     "timezone": "Europe/Berlin",
                     "consents": {"email": {"transactional": True, "marketing": True}}}}


try:
    d.start()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    d.post_events([customer("anna", "Anna Müller", "anna@example.de", "de"),
                   csbb.order_event("o-1", "o1", customer="anna", at=now, price="1234.50")])
    got = t.wait_for(lambda: len(mails()) >= 2 and mails(), "two emails to anna")
    if got:
        by_subject = {m["subject"]: (m, e) for m, e in got}
        subj = "Willkommen bei Waldkauz Haus & Outdoor! Ihre Bestellung o1"
        t.check(subj in by_subject, "German first-order subject: %r" % list(by_subject))
        m, e = by_subject.get(subj, got[0])
        t.eq(e["to"], ["anna@example.de"], "envelope recipient")
        t.eq(e["from"], "service@waldkauz.example", "envelope sender")
        t.check(e["tls"], "STARTTLS was used")
        t.eq(e["auth"], "shop", "AUTH as the configured user")
        t.eq(str(m["to"]), "Anna Müller <anna@example.de>", "To with an encoded name")
        raw = open(sorted(glob.glob(os.path.join(mail_dir, "*.eml")))[0], "rb").read()
        t.check(b"To: =?UTF-8?B?" in raw, "the non-ASCII name is an encoded-word")
        t.check(m["message-id"] and m["message-id"].endswith("@waldkauz.example>"), "Message-ID")
        t.check(m["date"] is not None, "Date")
        t.eq(m.get_content_type(), "multipart/alternative", "multipart/alternative")
        text = m.get_body(preferencelist=("plain",)).get_content()
        html = m.get_body(preferencelist=("html",)).get_content()
        t.check("Hallo Anna," in text and "1.234,50\u00a0€" in text, "German text with money: %r" % text[:300])
        t.check(text.startswith("Hallo Anna,\n\nherzlich willkommen"), "German: %r" % text[:60])
        t.check("Versand" not in text and "Rabatt" not in text and "Versand" not in html,
                "no shipping or discount line for an order without them: %r" % text[:300])
        t.check("<strong>erste Bestellung</strong>" in html and "Waldkauz Haus &amp; Outdoor" in html,
                "HTML part, escaped: %r" % html[:200])
        t.check(m["list-unsubscribe"] is None, "no unsubscribe header on transactional mail")
        # the signed link to the order's tracking page, and no empty
        # paragraph where the shop promised no day
        link = re.search(r"Ihre Bestellung verfolgen: https://shop\.example/consonance(/t/\S+)\n", text)
        t.check(link is not None and 'href="https://shop.example/consonance%s"' % (
            link.group(1) if link else "?") in html, "the tracking link: %r" % text[-500:])
        t.check("<p></p>" not in html and "<p> " not in html, "no empty paragraph: %r" % html)
        if link:
            st, _, page = d.request("GET", link.group(1), key=False)
            t.check(st == 200 and "o1" in str(page), "the link opens o1's tracking page: %d" % st)
        st, _, o1 = d.request("GET", "/v1/orders/o1")
        t.check(st == 200 and (o1.get("promise") or {}).get("current"),
                "the watch promised o1 a window: %r" % o1.get("promise"))
        t.check("Voraussichtliche Lieferung: " in text and "Voraussichtliche Lieferung: " in html,
                "the confirmation tells the window the shop did not: %r" % text)
        # the text part ends with the shop's footer, as the HTML part does
        # (without the unsubscribe link on an order's own mail)
        t.check(text.rstrip().endswith("\n-- \nWaldkauz Haus & Outdoor") and "abmelden" not in text,
                "the confirmation's text footer: %r" % text[-300:])
        tips = [x for x, _ in got if "Tipps" in x["subject"]]
        t.check(len(tips) == 1, "the reassurance went out too")
        if tips:
            lu = tips[0]["list-unsubscribe"]
            t.check(lu and lu.startswith("<http"), "List-Unsubscribe: %r" % lu)
            t.eq(tips[0]["list-unsubscribe-post"], "List-Unsubscribe=One-Click", "one-click header")
            ttext = tips[0].get_body(preferencelist=("plain",)).get_content()
            t.check(lu and ("\n-- \nWaldkauz Haus & Outdoor\nSie möchten keine Tipps und Angebote "
                            "mehr? Hier abmelden: %s" % lu.strip("<>")) in ttext,
                    "the reassurance's text footer has the unsubscribe link: %r" % ttext[-300:])
    # the outbox says sent, with the Message-ID as the provider reference
    sent = t.wait_for(lambda: [m for m in messages("anna") if m["status"] == "sent"] if
                    len([m for m in messages("anna") if m["status"] == "sent"]) == 2 else None,
                    "both marked sent")
    t.check(sent is not None, "outbox shows sent")
    # a status from the email provider with a long German detail: kept, cut
    # between characters (a cut inside one made it no text, and it was lost)
    if sent:
        # named by the Message-ID header of the mail that was received, as
        # a bounce processor has it: with its angle brackets or without
        # (a reference recorded as "<...>" matched neither, only "<<...>>")
        ids = {str(m["message-id"]).strip() for m, _ in mails()}
        t.eq(sent[0]["provider_ref"] in ids, True,
             "the provider reference is the mail's Message-ID: %r in %r" % (sent[0]["provider_ref"], ids))
        mid = sent[0]["provider_ref"].strip("<>")
        detail = "250 2.0.0 " + "x" * 148 + "ääää: an den Empfänger zugestellt"
        st, _, body = d.request("POST", "/v1/callbacks/email", body=json.dumps(
            {"message_id": "<%s>" % mid, "status": "delivered",
             "detail": detail}).encode(), headers={"Content-Type": "application/json"})
        t.eq((st, body.get("recorded")), (200, 1), "the email status is recorded: %r" % body)
        st, _, body = d.request("POST", "/v1/callbacks/email", body=json.dumps(
            {"message_id": mid, "status": "opened"}).encode(),
            headers={"Content-Type": "application/json"})
        t.eq((st, body.get("recorded")), (200, 1),
             "a Message-ID without its angle brackets names the mail too: %r" % body)
        # null states nothing, as in an event: a processor that writes every
        # member (a bounce without a detail) is recorded, not refused
        st, _, body = d.request("POST", "/v1/callbacks/email", body=json.dumps(
            {"message_id": mid, "status": "clicked", "detail": None, "occurred_at": None}).encode(),
            headers={"Content-Type": "application/json"})
        t.eq((st, body.get("recorded"), body.get("rejected")), (200, 1, []),
             "a status with a null detail and time is recorded: %r" % body)
        st, _, evs = d.request("GET", "/v1/events?type=message.status&limit=1000")
        got = [e["event"]["data"].get("detail") for e in evs.get("events", [])
               if e["event"]["data"]["message_id"] == str(sent[0]["id"]) and
               e["event"]["data"]["status"] == "delivered"]
        t.check(len(got) == 1 and got[0] and detail.startswith(got[0]) and len(got[0]) > 150,
                "the detail is kept, cut between characters: %r" % got)

    # an English customer
    # (with shipping and an order discount: listed between the items and
    # the total, which otherwise did not add up)
    o2 = csbb.order_event("o-2", "o2", customer="ben", at=now, price="9.99")
    o2["data"]["totals"] = {"shipping": "4.90", "discount": "1.00"}
    d.post_events([customer("ben", "Ben Smith", "ben@example.com", "en"), o2])
    got = t.wait_for(lambda: [m for m, e in mails() if e["to"] == ["ben@example.com"]], "ben's mail")
    if got:
        t.check(any(m["subject"] == "Welcome to Waldkauz Haus & Outdoor! Your order o2" for m in got),
                "English subject")
        conf = [m for m in got if "Welcome" in m["subject"]][0]
        body = conf.get_body(("plain",)).get_content()
        t.check("- 1 x Kaffee: €9.99\nShipping: €4.90\nDiscount: -€1.00\nTotal: €13.89\n" in body,
                "English money, shipping and discount before the total: %r" % body[:400])
        html = conf.get_body(("html",)).get_content()
        # an English letter goes on with a capital after the greeting (the
        # German one with a small letter, as German letters do)
        t.check(body.startswith("Hi Ben,\n\nWelcome to ") and "<p>Welcome to " in html,
                "capital after the English greeting: %r" % body[:60])
        t.check(">Shipping</td>" in html and ">€4.90</td>" in html and ">Discount</td>" in html
                and ">-€1.00</td>" in html, "and in its HTML: %r" % html[-1200:])

    # a customer in Tokyo reads the shop's promised day as the shop means
    # it: Friday evening in Berlin is already Saturday in Tokyo
    kei = customer("kei", "Kei Sato", "kei@example.jp", "en")
    kei["data"]["timezone"] = "Asia/Tokyo"
    o3 = csbb.order_event("o-kei", "okei", customer="kei", at=now, price="20.00")
    # (a Friday three to four weeks ahead: a promised day must be to come)
    fri = datetime.date.today() + datetime.timedelta(days=21)
    fri += datetime.timedelta(days=(4 - fri.weekday()) % 7)
    sat = fri + datetime.timedelta(days=1)
    o3["data"]["promised_delivery"] = {
        "earliest": (fri - datetime.timedelta(days=2)).isoformat() + "T09:00:00+01:00",
        "latest": fri.isoformat() + "T18:00:00+01:00"}
    d.post_events([kei, o3])
    got = t.wait_for(lambda: [m for m, e in mails() if e["to"] == ["kei@example.jp"]], "kei's mail")
    if got:
        body = got[0].get_body(("plain",)).get_content()
        t.check("%d %s" % (fri.day, fri.strftime("%B")) in body and
                "%d %s" % (sat.day, sat.strftime("%B")) not in body,
                "the promised day is the shop's, not the customer's zone's: %r" % body[:400])

    # an order shipped in two parcels, announced together: the shipping
    # notice lists both (order.shipments, carriers by name), in the order
    # they were created
    def parcel(n, carrier, number):
        return {"event_id": "s-o6-%d" % n, "type": "shipment.created", "occurred_at": now,
                "data": {"id": "S6-%d" % n, "order_id": "o6", "carrier": carrier,
                         "tracking_number": number}}
    d.post_events([customer("cleo", "Cleo Lang", "cleo@example.com", "en"),
                   csbb.order_event("o-6", "o6", customer="cleo", at=now, price="59.00"),
                   parcel(1, "dhl", "JJD0006001"), parcel(2, "dpd", "01906000002")])
    got = t.wait_for(lambda: [m for m, e in mails() if e["to"] == ["cleo@example.com"] and
                              "on its way" in m["subject"]], "cleo's shipping notice")
    if got:
        body = got[0].get_body(("plain",)).get_content()
        html = got[0].get_body(("html",)).get_content()
        t.check("It comes in 2 parcels:\n- DHL, tracking number JJD0006001\n"
                "- DPD, tracking number 01906000002\n" in body and "Shipped with" not in body,
                "both parcels in the notice, in order: %r" % body)
        t.check(html.count("<li>") == 2 and "01906000002" in html, "and in its HTML: %r" % html[-600:])
    # one parcel: the notice names it as before
    d.post_events([csbb.order_event("o-7", "o7", customer="cleo", at=now, price="19.00"),
                   {"event_id": "s-o7", "type": "shipment.created", "occurred_at": now,
                    "data": {"id": "S7", "order_id": "o7", "carrier": "dhl",
                             "tracking_number": "JJD0007001"}}])
    got = t.wait_for(lambda: [m for m, e in mails() if e["to"] == ["cleo@example.com"] and
                              "o7 is on its way" in m["subject"]], "cleo's second notice")
    if got:
        body = got[0].get_body(("plain",)).get_content()
        t.check("Shipped with DHL, tracking number JJD0007001." in body and "parcels" not in body,
                "one parcel, named: %r" % body)
        t.check("\nTrack your parcel: https://shop.example/consonance/t/" in body and
                ">Track your parcel</a>" in got[0].get_body(("html",)).get_content(),
                "the notice links to the tracking page: %r" % body)

    # a customer whose zone is not one (a typo stored before the intake
    # refused it) reads dates in the shop's zone, not UTC, and is still
    # written to: an order at 00:30 in Berlin is of that Berlin day
    import zoneinfo
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    local = datetime.datetime.now(berlin).replace(hour=0, minute=30, second=0, microsecond=0)
    placed = local.astimezone(datetime.timezone.utc)
    lou = customer("lou", "Lou Berg", "lou@example.com", "en")
    lou["data"]["timezone"] = "Europe/Berln"
    st, _, body = d.post_events(lou)
    t.eq((st, body.get("error", {}).get("field")), (422, "data.timezone"),
         "a zone the server does not know is refused at the intake")
    del lou["data"]["timezone"]
    t.eq(d.post_events(lou)[0], 201, "lou without a zone")
    t.check(csbb.store_customer_zone(d.store, "lou", "Europe/Berln"), "lou's zone stored as a typo")
    d.post_events([csbb.order_event("o-lou", "olou", customer="lou",
                                    at=placed.strftime("%Y-%m-%dT%H:%M:%SZ"), price="12.00")])
    got = t.wait_for(lambda: [m for m, e in mails() if e["to"] == ["lou@example.com"]], "lou's mail")
    if got:
        body = got[0].get_body(("plain",)).get_content()
        want = "of %s, %d %s" % (local.strftime("%A"), local.day, local.strftime("%B"))
        t.check(want in body, "an unknown zone reads the shop's day (%s): %r" % (want, body[:300]))

    # an address with an international domain is sent to its ASCII form
    # (IDNA), in the envelope and the To: header alike; one with a local
    # part that is not ASCII is refused at the intake, naming the field
    ida = customer("ida", "Ida Bäcker", "kunde@bäckerei.de", "de")
    t.eq(d.post_events([ida, csbb.order_event("o-ida", "oida", customer="ida", at=now,
                                              price="9.00")])[0], 200, "ida and her order")
    got = t.wait_for(lambda: [(m, e) for m, e in mails() if e["to"] == ["kunde@xn--bckerei-5wa.de"]],
                     "ida's mail, to her domain's ASCII form")
    if got:
        raw = open(sorted(p for p in glob.glob(os.path.join(mail_dir, "*.eml"))
                          if json.load(open(p[:-4] + ".json"))["to"] ==
                          ["kunde@xn--bckerei-5wa.de"])[0], "rb").read()
        hdr = raw.split(b"\r\n\r\n", 1)[0]
        t.check(b"<kunde@xn--bckerei-5wa.de>" in hdr and "bäckerei".encode() not in hdr,
                "the To: header has the ASCII form, no 8-bit bytes: %r" % hdr[:400])
    jo = customer("jo", "Jürgen", "jürgen@example.de", "de")
    st, _, body = d.post_events(jo)
    e = body.get("error", {}) if isinstance(body, dict) else {}
    t.eq((st, e.get("code"), e.get("field")), (422, "rule", "data.email"),
         "a local part that is not ASCII is refused, naming data.email")
    t.check("part before the @ is ASCII" in e.get("message", "") and
            "jürgen@example.de" in e.get("message", ""), "... saying what is expected: %r" % e)

    # shipped after the shop's promised day: the notice does not say it
    # is expected by a day already past (the watch's window, if it has
    # one, instead)
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=5)
    due = (past + datetime.timedelta(days=2)).date()
    o8 = csbb.order_event("o-8", "o8", customer="cleo", at=past.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          price="29.00")
    o8["data"]["promised_delivery"] = {"latest": due.isoformat()}
    d.post_events([o8, {"event_id": "s-o8", "type": "shipment.created", "occurred_at": now,
                        "data": {"id": "S8", "order_id": "o8", "carrier": "dhl",
                                 "tracking_number": "JJD0008001"}}])
    got = t.wait_for(lambda: [m for m, e in mails() if e["to"] == ["cleo@example.com"] and
                              "o8 is on its way" in m["subject"]], "cleo's late-shipped notice")
    if got:
        body = got[0].get_body(("plain",)).get_content()
        html = got[0].get_body(("html",)).get_content()
        t.check("Shipped with DHL" in body and "to arrive by" not in body and
                "%d %s" % (due.day, due.strftime("%B")) not in body,
                "no promise of a day already past: %r" % body)
        t.check("to arrive by" not in html, "nor in its HTML: %r" % html[-600:])
        if "We expect it to arrive" in body:
            print("note: the late-shipped notice gives the watch's window: %r" %
                  body[body.index("We expect"):][:80])

    # one-click unsubscribe (RFC 8058), then no more reassurance
    tips = [m for m, e in mails() if e["to"] == ["anna@example.de"] and "Tipps" in m["subject"]]
    if tips:
        url = tips[0]["list-unsubscribe"].strip("<>")
        t.check(url.startswith("https://shop.example/consonance/u/"), "link on the public URL")
        # signed over "u:anna", so no kind of link is another's
        want = hmac.new(b"test-link-secret-0123456789", b"u:anna", hashlib.sha256).hexdigest()[:32]
        t.eq(url.rsplit("/", 1)[1], "anna".encode().hex() + "." + want, "the unsubscribe token")
        path = urllib.parse.urlparse(url).path[len("/consonance"):]
        st, _, page = d.request("GET", path, key=False)
        t.check(st == 200 and "Abmelden" in page, "unsubscribe page in German")
        # it names the shop the customer unsubscribes from, under its header
        t.check('<span class="shop">Waldkauz Haus &amp; Outdoor</span>' in page and
                "erhalten Sie von Waldkauz Haus &amp; Outdoor keine Werbung" in page,
                "the unsubscribe page names the shop: %r" % page[-600:])
        st, _, page = d.request("POST", path, "List-Unsubscribe=One-Click", key=False,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        t.check(st == 200 and "abgemeldet" in page, "one-click unsubscribe: %s %r" % (st, page[-200:]))
        # the link opened again says so, rather than offering the button again
        st, _, page = d.request("GET", path, key=False)
        t.check(st == 200 and "Sie sind bereits von Waldkauz Haus &amp; Outdoor abgemeldet." in page and
                "<button" not in page, "unsubscribed already: %s %r" % (st, page[-300:]))
        st, _, _ = d.request("POST", path[:-3] + "abc", "", key=False)
        t.eq(st, 404, "a forged token")
        d.post_events([csbb.order_event("o-3", "o3", customer="anna", at=now)])
        got = t.wait_for(lambda: [m for m in messages("anna") if m["journey"] == "tips_now"
                                and m.get("order_id") == "o3"], "the next tips decision")
        if got:
            t.eq((got[0]["status"], got[0]["reason"]), ("skipped", "unsubscribed"),
                 "after unsubscribing the reassurance is skipped")

    # the link's page is a customer's page: not kept, no referrer
    def utok(cid):
        mac = hmac.new(b"test-link-secret-0123456789", cid.encode(), hashlib.sha256)
        return "/u/" + cid.encode().hex() + "." + mac.hexdigest()[:32]
    # (links sent before unsubscribe links had a purpose sign the id alone,
    # and still open; but an id like "t:o1" signed alone is o1's tracking
    # link's MAC, which unsubscribes no customer "t:o1")
    st, _, _ = d.request("POST", utok("t:o1"), "", key=False)
    t.eq(st, 404, "a tracking link's MAC as an unsubscribe token")
    st, h, page = d.request("GET", utok("anna"), key=False)
    t.eq((st, h.get("cache-control"), h.get("referrer-policy")), (200, "private, no-store", "no-referrer"),
         "the unsubscribe page's headers")
    t.check("default-src 'none'" in h.get("content-security-policy", ""), "and its CSP")
    # a customer without a locale reads the shop's default_locale (de)
    d.post_events([{"event_id": "c-nolocale", "type": "customer.upserted", "occurred_at": now,
                    "data": {"id": "nolocale", "email": "nl@example.de"}}])
    st, _, page = d.request("GET", utok("nolocale"), key=False)
    t.check(st == 200 and '<html lang="de"' in page and "Abmelden" in page,
            "no locale: the shop's default_locale: %r" % page[:200])
    # as the tracking page: the browser's language before the shop's
    # default, ?lang= before both; a forged link in one language too
    st, _, page = d.request("GET", utok("nolocale"), key=False, headers={"Accept-Language": "en-GB,en;q=0.9"})
    t.check(st == 200 and '<html lang="en"' in page and "Unsubscribe" in page and "Abmelden" not in page,
            "no locale, an English browser: English: %r" % page[-400:])
    st, _, page = d.request("GET", utok("nolocale") + "?lang=en", key=False)
    t.check(st == 200 and '<html lang="en"' in page and
            "surveys from Waldkauz Haus &amp; Outdoor" in page, "?lang=en: English: %r" % page[-400:])
    st, _, page = d.request("GET", utok("anna")[:-3] + "abc", key=False, headers={"Accept-Language": "en"})
    t.check(st == 404 and '<html lang="en"' in page and "This link is not valid" in page and
            "ungültig" not in page, "a forged link, in English alone: %r" % page[-300:])
    # two long ids alike in their first hundred bytes, in the same minute:
    # each unsubscribe recorded, none taken for the other's repeat
    longs = ["c" * 100 + "-1", "c" * 100 + "-2"]
    d.post_events([customer(c, "L", "l%d@example.de" % i, "de") for i, c in enumerate(longs)])
    for c in longs:
        st, _, page = d.request("POST", utok(c), "", key=False)
        t.check(st == 200 and "abgemeldet" in page, "long id unsubscribed: %s" % st)
    st, _, evs = d.request("GET", "/v1/events?type=message.status&limit=1000")
    who = sorted(e.get("customer_id") for e in evs.get("events", [])
                 if e["event"]["data"].get("status") == "unsubscribed" and
                 e.get("customer_id") in longs)
    t.eq(who, longs, "both long ids' unsubscribes recorded")

    # a new customer's first two orders in one batch, the later listed
    # first: the earlier is welcomed as the first purchase, the later not
    def ago_s(sec):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - sec))
    d.post_events([customer("nina", "Nina", "nina@example.de", "de"),
                   csbb.order_event("o-n2", "n2", customer="nina", at=ago_s(60)),
                   csbb.order_event("o-n1", "n1", customer="nina", at=ago_s(120))])

    def nina_confirmations():
        got = sorted(m["subject"] for m, e in mails()
                     if e["to"] == ["nina@example.de"] and "Bestellung n" in m["subject"])
        return got if len(got) >= 2 else None
    got = t.wait_for(nina_confirmations, "nina's two confirmations")
    t.eq(got, ["Danke für Ihre Bestellung n2",
               "Willkommen bei Waldkauz Haus & Outdoor! Ihre Bestellung n1"],
         "only the first of two orders is the first purchase")

    # nothing starts for an order cancelled already: neither its
    # confirmation when the cancellation came first, nor its shipping
    # notice when the parcel is announced after the cancellation
    def cancel(oid):
        return {"event_id": "x-" + oid, "type": "order.cancelled", "occurred_at": ago_s(0),
                "data": {"order_id": oid, "reason": "customer_request"}}
    d.post_events([customer("gero", "Gero", "gero@example.de", "de"), cancel("g1"),
                   csbb.order_event("o-g1", "g1", customer="gero", at=ago_s(30)),
                   customer("fritz", "Fritz", "fritz@example.de", "de"),
                   csbb.order_event("o-f1", "f1", customer="fritz", at=ago_s(30))])
    t.wait_for(lambda: messages("fritz"), "fritz's confirmation")
    # an order that reaches us after its parcel was delivered: no
    # confirmation, no shipping notice
    d.post_events([customer("dirk", "Dirk", "dirk@example.de", "de"),
                   {"event_id": "s-d1", "type": "shipment.created", "occurred_at": ago_s(7200),
                    "data": {"id": "SD1", "order_id": "d1", "carrier": "dhl",
                             "tracking_number": "JJDD1"}},
                   {"event_id": "sc-d1", "type": "tracking.event", "occurred_at": ago_s(600),
                    "data": {"shipment_id": "SD1", "carrier": "dhl", "tracking_number": "JJDD1",
                             "status": "delivered"}}])
    d.post_events([csbb.order_event("o-d1", "d1", customer="dirk", at=ago_s(9000))])
    d.post_events([cancel("f1"),
                   {"event_id": "s-f1", "type": "shipment.created", "occurred_at": ago_s(0),
                    "data": {"id": "SF1", "order_id": "f1", "carrier": "dhl",
                             "tracking_number": "JJDF1"}},
                   customer("mark", "Mark", "mark@example.de", "de"),
                   csbb.order_event("o-m1", "m1", customer="mark", at=ago_s(0))])
    # (events are handled in order: mark's confirmation comes after them)
    t.wait_for(lambda: messages("mark"), "the marker's confirmation")
    st, _, ov = d.request("GET", "/v1/orders/g1")
    t.eq((st, ov.get("status")), (200, "cancelled"), "g1 cancelled before it was placed")
    # (tips_now has no exit_when: it is not bound to the order's state)
    def sent(cid):
        return [m["template"] for m in messages(cid) if m["template"] != "delivered_tips"]
    t.eq(sent("gero"), [], "no confirmation of an order cancelled first")
    t.eq(sent("fritz"), ["order_confirmation_first"], "no shipping notice after the cancellation")
    t.eq(sent("dirk"), [], "no confirmation or shipping notice after the delivery")

    # refused and deferred recipients
    d.post_events([customer("rita", "Rita", "reject-me@example.de", "de"),
                   csbb.order_event("o-4", "o4", customer="rita", at=now),
                   customer("lars", "Lars", "later@example.de", "de"),
                   csbb.order_event("o-5", "o5", customer="lars", at=now)])
    got = t.wait_for(lambda: [m for m in messages("rita") if m["status"] == "failed"], "rita failed")
    if got:
        t.check("550 5.1.1 no such mailbox" in (got[0]["reason"] or ""),
                "permanent failure gives the server's reply: %r" % got[0]["reason"])
    got = t.wait_for(lambda: [m for m in messages("lars") if m["attempts"] >= 2], "lars retried")
    if got:
        t.check(got[0]["status"] in ("queued", "sending") and
                "451 4.3.0 try again later" in (got[0]["reason"] or ""),
                "temporary failure is retried, with the server's reply: %r" % got[0])

    # a delay notice held back (the server defers it) is dropped once the
    # parcel arrives: no "your delivery is late" after the delivery. The
    # notice of a parcel on its way back is not: the watch closed that order
    # too, and its notice is still true.
    def ago(hours):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - hours * 3600))

    def parcel(oid, n, hours, status, reason=None):
        data = {"shipment_id": "S" + oid, "carrier": "dhl", "tracking_number": "JJD" + oid,
                "status": status, "location": {"city": "Leipzig", "country": "DE"}}
        if reason:
            data["reason"] = reason
        return {"event_id": "sc-%s-%d" % (oid, n), "type": "tracking.event",
                "occurred_at": ago(hours), "data": data}

    evs = []
    for cid, oid, status, reason in (("lena", "o17", "failed_attempt", "recipient_absent"),
                                     ("rolf", "o18", "returned_to_sender", "refused")):
        o = csbb.order_event("o-" + oid, oid, customer=cid, at=ago(30))
        o["data"]["placed_at"] = ago(30)
        evs += [customer(cid, cid.title(), "later-%s@example.de" % cid, "de"), o,
                {"event_id": "s-" + oid, "type": "shipment.created", "occurred_at": ago(29),
                 "data": {"id": "S" + oid, "order_id": oid, "carrier": "dhl",
                          "tracking_number": "JJD" + oid}},
                parcel(oid, 1, 26, "in_transit"), parcel(oid, 2, 1, status, reason)]
    d.post_events(evs)

    def notice(cid, template, cond):
        return [m for m in messages(cid) if m["template"] == template and cond(m)]
    t.wait_for(lambda: notice("lena", "delivery_problem", lambda m: "451" in (m["reason"] or "")),
               "the delay notice tried while the parcel is at risk, and held back")
    d.post_events([parcel("o17", 3, 0, "delivered")])
    got = t.wait_for(lambda: notice("lena", "delivery_problem",
                                    lambda m: m["status"] not in ("queued", "sending")),
                     "the held delay notice settled after the delivery")
    if got:
        t.eq((got[0]["status"], got[0]["reason"]), ("skipped", "no_longer_at_risk"),
             "a delay notice is not sent after the delivery")
    t.wait_for(lambda: notice("rolf", "parcel_returned",
                              lambda m: m["attempts"] >= 2 and "451" in (m["reason"] or "")),
               "the notice of a parcel on its way back is still tried after the watch closed")

    # a sender with an international domain goes in its ASCII form (IDNA)
    # too: in MAIL FROM, the From: header and the Message-ID, no 8-bit bytes
    d.stop()
    d2 = csbb.Daemon(a.bin, extra_env=dict(env, CONSONANCE_SMTP_FROM="Bäckerei <service@bäckerei.de>"))
    try:
        d2.start()
        d2.post_events([customer("idn", "Ina", "ina@example.de", "de"),
                        csbb.order_event("o-idn", "oidn", customer="idn", at=now, price="5.00")])
        got = t.wait_for(lambda: [(m, e) for m, e in mails() if e["to"] == ["ina@example.de"]],
                         "ina's mail from the international domain")
        if got:
            t.eq(got[0][1]["from"], "service@xn--bckerei-5wa.de", "the envelope sender's ASCII form")
            raw = open(sorted(p for p in glob.glob(os.path.join(mail_dir, "*.eml"))
                              if json.load(open(p[:-4] + ".json"))["to"] ==
                              ["ina@example.de"])[0], "rb").read()
            hdr = raw.split(b"\r\n\r\n", 1)[0]
            t.check(b"<service@xn--bckerei-5wa.de>" in hdr and "bäckerei".encode() not in hdr and
                    b"@xn--bckerei-5wa.de>\r\n" in hdr.split(b"Message-ID:", 1)[1][:80],
                    "From: and Message-ID have the ASCII form, no 8-bit bytes: %r" % hdr[:400])
            t.eq(str(got[0][0]["from"]), "Bäckerei <service@xn--bckerei-5wa.de>",
                 "the sender's name is kept")
    finally:
        d2.cleanup()
finally:
    d.cleanup()
    sink.stdin.close()
    sink.wait(10)
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
