"""Black-box: the tracking page's smaller parts, and how it and the status
paragraph name days and times.

A scan, a delivery or a return of today or yesterday is told as "heute" /
"gestern" ("today" / "yesterday") in the reader's zone, on the page
("Heute, 14:05") and in /v1/orders/{id}/status ("Ihr Paket wurde heute
von DHL zugestellt."); an older one keeps its date.
Every <time> carries its instant for machines.
The page's <title> names the shop (escaped).
The link to the other language is marked as in that language; the form's
footer is after <main>, as the order page's.
With several parcels, each parcel's history starts at the order.
Without a logo, /t/logo is a 404 that says so, with a Cache-Control like
the logo's.

Days are taken from the clock (the suite also runs on a moved clock, near
midnight and on New Year's Eve): each expectation is worked out from the
shop's local today at the moment of the request, and asked again if that
day turned over while asking. Last, a daemon whose clock libfaketime moves
on by a day while it runs shows that a cached page saying "Heute" is made
again the next day (skipped where the clock is moved already, or the
build takes no preload)."""
import datetime as dt
import glob
import hashlib
import hmac
import os
import re
import sys
import tempfile
import zoneinfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()

SECRET = "test-link-secret-0123456789"
SHOP = "Kauz & <Söhne>"
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
today0 = now.astimezone(BERLIN).date()


def iso(x):
    return x.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_noon(days_ago):
    """Noon in Berlin, days_ago days before the test's first day."""
    d = today0 - dt.timedelta(days=days_ago)
    return dt.datetime(d.year, d.month, d.day, 12, 0, tzinfo=BERLIN)


def token(oid):
    mac = hmac.new(SECRET.encode(), ("t:" + oid).encode(), hashlib.sha256)
    return oid.encode().hex() + "." + mac.hexdigest()[:32]


def asked(fn):
    """fn()'s answer with the shop's local today it was given on: asked
    again when the day turned over while asking."""
    for _ in range(3):
        before = dt.datetime.now(BERLIN).date()
        got = fn()
        if dt.datetime.now(BERLIN).date() == before:
            return got, before
    return got, before


def rel(when, today):
    return (when.astimezone(BERLIN).date() - today).days


def day_de(when, today, cap=False):
    """The German word for the day of `when`, or None for a date."""
    w = {0: "heute", -1: "gestern", 1: "morgen"}.get(rel(when, today))
    return w.capitalize() if w and cap else w


def day_en(when, today, on=False):
    w = {0: "today", -1: "yesterday", 1: "tomorrow"}.get(rel(when, today))
    if w:
        return w
    loc = when.astimezone(BERLIN)
    return ("on " if on else "") + "%s, %d %s" % (loc.strftime("%A"), loc.day, loc.strftime("%B"))


def order(oid, cust, at):
    return {"event_id": "o-" + oid, "type": "order.placed", "occurred_at": iso(at),
            "data": {"id": oid, "customer_id": cust, "currency": "EUR", "placed_at": iso(at),
                     "items": [{"sku": "ZELT-2", "name": "Zelt Kauz 2", "unit_price": "89.00",
                                "quantity": 1}]}}


def shipment(oid, at, suffix=""):
    return {"event_id": "s-" + oid + suffix, "type": "shipment.created", "occurred_at": iso(at),
            "data": {"id": "S" + oid + suffix, "order_id": oid, "carrier": "dhl",
                     "tracking_number": "JJD" + oid + suffix,
                     "destination": {"country": "DE", "postal_code": "10115", "city": "Berlin"}}}


def scan(oid, n, at, status, suffix=""):
    return {"event_id": "sc-%s%s-%d" % (oid, suffix, n), "type": "tracking.event",
            "occurred_at": iso(at),
            "data": {"shipment_id": "S" + oid + suffix, "carrier": "dhl",
                     "tracking_number": "JJD" + oid + suffix, "status": status,
                     "location": {"city": "Berlin", "country": "DE"}}}


def utc_ms(when):
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


d = csbb.Daemon(a.bin, extra_env={
    "CONSONANCE_LINK_SECRET": SECRET, "CONSONANCE_SHOP_NAME": SHOP,
    "CONSONANCE_SHOP_TIMEZONE": "Europe/Berlin", "CONSONANCE_DEFAULT_LOCALE": "de"})
try:
    d.start()
    # placed at noon three days back; delivered a minute ago (today, or
    # yesterday when the day has just begun), at yesterday's noon, or at
    # noon two days back
    placed = local_noon(3)
    yesterday = local_noon(1)
    just_now = now - dt.timedelta(minutes=1)
    long_ago = local_noon(2)
    evs = [{"event_id": "c-anna", "type": "customer.upserted", "occurred_at": iso(now),
            "data": {"id": "anna", "email": "anna@example.de", "locale": "de",
                     "timezone": "Europe/Berlin"}}]
    for oid, delivered in (("d0", just_now), ("d1", yesterday), ("d2", long_ago)):
        evs += [order(oid, "anna", placed), shipment(oid, placed + dt.timedelta(hours=2)),
                scan(oid, 1, placed + dt.timedelta(hours=4), "in_transit"),
                scan(oid, 2, delivered, "delivered")]
    # two parcels: one delivered yesterday, one on its way since a minute
    evs += [order("m2", "anna", placed), shipment("m2", placed + dt.timedelta(hours=2)),
            scan("m2", 1, yesterday, "delivered"),
            shipment("m2", placed + dt.timedelta(hours=3), "b"),
            scan("m2", 2, just_now, "in_transit", "b")]
    # out for delivery at yesterday's noon, and not heard of since
    evs += [order("f1", "anna", placed), shipment("f1", placed + dt.timedelta(hours=2)),
            scan("f1", 1, yesterday, "out_for_delivery")]
    # a return asked for a minute ago
    evs += [{"event_id": "rr-d0", "type": "return.requested", "occurred_at": iso(just_now),
             "data": {"id": "RT-d0", "order_id": "d0", "resolution": "refund",
                      "items": [{"sku": "ZELT-2", "quantity": 1, "reason": "zu klein"}]}}]
    st, _, body = d.post_events(evs)
    t.eq(st, 200, "events accepted: %r" % (body,))

    # the status paragraph: today and yesterday by name, older by date
    for oid, when in (("d0", just_now), ("d1", yesterday), ("d2", long_ago)):
        (st, _, de), today = asked(lambda: d.request("GET", "/v1/orders/%s/status?lang=de" % oid))
        w = day_de(when, today)
        txt = de.get("text", "") if st == 200 else ""
        if w:
            t.eq(txt, "Ihr Paket wurde %s von DHL zugestellt." % w, "%s in German" % oid)
        else:
            t.check(re.fullmatch(r"Ihr Paket wurde am [A-Z][a-z]+, \d+\. [A-Z][a-zä]+ von DHL "
                                 r"zugestellt\.", txt), "%s in German, by its date: %r" % (oid, txt))
        (st, _, en), today = asked(lambda: d.request("GET", "/v1/orders/%s/status?lang=en" % oid))
        t.eq(en.get("text") if st == 200 else st,
             "Your parcel was delivered by DHL %s." % day_en(when, today, on=True),
             "%s in English" % oid)
    (st, _, js), today = asked(lambda: d.request("GET", "/v1/orders/f1/status?lang=en"))
    t.check(js.get("text", "").startswith("Your parcel went out for delivery with DHL %s but has "
                                          "not arrived yet." % day_en(yesterday, today, on=True)),
            "yesterday's delivery round: %r" % js.get("text"))
    (st, _, js), today = asked(lambda: d.request("GET", "/v1/orders/f1/status?lang=de"))
    w = day_de(yesterday, today)
    t.check(js.get("text", "").startswith("Ihr Paket war %s mit DHL in der Zustellung, ist aber "
                                          "noch nicht angekommen." % w)
            if w else re.match(r"Ihr Paket war am [A-Z]", js.get("text", "")),
            "and in German: %r" % js.get("text"))
    (st, _, js), today = asked(lambda: d.request("GET", "/v1/orders/m2/status?lang=en"))
    txt = js.get("text", "") if st == 200 else ""
    t.check(txt.startswith("Your order comes in 2 parcels: one was delivered %s; "
                           % day_en(yesterday, today, on=True)),
            "a parcel of two delivered yesterday: %r" % txt)

    # the page: each <time> with its instant
    st, _, html = d.request("GET", "/t/" + token("d0"), key=False)
    t.eq(st, 200, "d0's page")
    times = re.findall(r"<time([^>]*)>([^<]*)</time>", html)
    t.check(len(times) == 4 and
            all(re.fullmatch(r' datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"', at)
                for at, _ in times),
            "every <time> has a machine-readable datetime: %r" % times)
    t.check(re.search(r'<time datetime="%s">[^<]*</time>Zugestellt' % utc_ms(just_now), html),
            "the delivery's instant: %r" % times)
    t.check(re.search(r'<span class="where">· <time datetime="%s">' % utc_ms(just_now), html),
            "the return's instant: %r" % re.findall(r'<h2>Ihre Rücksendung.*?</section>', html))

    # the page: today's and yesterday's by name, older by date
    (st, _, html), today = asked(lambda: d.request("GET", "/t/" + token("d0"), key=False))
    hm = just_now.astimezone(BERLIN).strftime("%H:%M")
    want = '<time datetime="%s">%s, %s</time>Zugestellt' % (
        utc_ms(just_now), day_de(just_now, today, cap=True), hm)
    t.check(want in html, "the delivery a minute ago by name: %r not in %r"
            % (want, re.findall(r"<time[^>]*>[^<]*</time>\w+", html)))
    w = day_de(just_now, today)
    t.check(re.search(r'<span class="where">· <time datetime="[^"]+">%s</time></span>' % w, html),
            "the return asked for a minute ago: %r"
            % re.findall(r'<h2>Ihre Rücksendung.*?</section>', html))
    t.check("Ihr Paket wurde %s von DHL zugestellt." % w in html, "the paragraph on the page")
    (st, _, html), today = asked(lambda: d.request("GET", "/t/" + token("d1"), key=False))
    want = '<time datetime="%s">%s, 12:00</time>Zugestellt' % (
        utc_ms(yesterday), day_de(yesterday, today, cap=True))
    t.check(want in html, "yesterday's delivery by name: %r not in %r"
            % (want, re.findall(r"<time[^>]*>[^<]*</time>\w+", html)))
    (st, _, html), today = asked(lambda: d.request("GET", "/t/" + token("d2") + "?lang=en",
                                                   key=False))
    want = "%s, 12:00 pm</time>Delivered" % day_en(long_ago, today)
    t.check(want in html, "an older delivery by its date: %r not in %r"
            % (want, re.findall(r"<time[^>]*>[^<]*</time>\w+", html)))

    # the title names the shop, escaped
    st, _, html = d.request("GET", "/t/" + token("d2") + "?lang=en", key=False)
    t.check("<title>Order d2 – Kauz &amp; &lt;Söhne&gt;</title>" in html,
            "the title names the shop: %r" % re.findall(r"<title>.*?</title>", html))
    st, _, form = d.request("GET", "/t", key=False, headers={"Accept-Language": "en"})
    t.check("<title>Track your order – Kauz &amp; &lt;Söhne&gt;</title>" in form,
            "the form's title names the shop: %r" % re.findall(r"<title>.*?</title>", form))

    # the link to the other language says its language
    st, _, html = d.request("GET", "/t/" + token("d2") + "?lang=en", key=False)
    t.check('<a href="?lang=de" lang="de" hreflang="de">Deutsch</a>' in html,
            "the link to German is in German: %r" % re.findall(r"<footer>.*?</footer>", html))
    st, _, form = d.request("GET", "/t", key=False, headers={"Accept-Language": "de"})
    t.check('<a href="?lang=en" lang="en" hreflang="en">English</a>' in form,
            "and on the form: %r" % re.findall(r"<footer>.*?</footer>", form))

    # the form's footer is the page's, as the order page's: after <main>,
    # not inside it (a landmark of its own, and not indented twice)
    st, _, form = d.request("GET", "/t", key=False)
    t.check(re.search(r"</main><footer>[^<]*<a [^>]*>[^<]*</a></footer></body>", form),
            "the form's footer after <main>: %r" % form[form.find("</form>"):])

    # two parcels: each one's history starts at the order
    st, _, html = d.request("GET", "/t/" + token("m2"), key=False)
    parcels = re.findall(r'<section class="parcel">.*?</section>', html)
    t.eq([p.count("Bestellung eingegangen") for p in parcels], [1, 1],
         "each parcel's history ends at the order")

    # no logo: a 404 that says so, cached for a while like the logo
    st, h, body = d.request("GET", "/t/logo?v=0123456789abcdef", key=False)
    t.check(st == 404 and "public" in h.get("cache-control", "") and
            "max-age=" in h.get("cache-control", "") and
            h.get("content-type", "").startswith("text/plain") and "logo" in body,
            "no logo: a 404 with Cache-Control and a word: %r %r %r" % (st, h, body))
    t.eq(h.get("x-content-type-options"), "nosniff", "no logo: nosniff as the logo")
finally:
    d.stop()
    d.cleanup()


def metric(dm, name):
    st, _, m = dm.request("GET", "/metrics", key=False)
    for line in m.splitlines() if st == 200 else []:
        if line.startswith(name + " "):
            return float(line.split()[1])
    return -1


# A cached page that says "Heute" is not served the next day: a daemon
# whose clock libfaketime moves on by a day while it runs (its file is read
# at every look at the clock). Not on a clock moved already (FAKETIME, which
# wins over the file) nor in a sanitizer build (which takes no preload).
lib = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
if not lib or "FAKETIME" in os.environ:
    print("SKIP (the next day's page): %s" % ("the clock is moved already" if lib
                                              else "libfaketime is not installed"))
    t.done()
shift = tempfile.NamedTemporaryFile("w", suffix=".rc", delete=False)
shift.write("+0s\n")
shift.close()
d = csbb.Daemon(a.bin, extra_env={
    "CONSONANCE_LINK_SECRET": SECRET, "CONSONANCE_SHOP_TIMEZONE": "Europe/Berlin",
    "LD_PRELOAD": lib[0], "FAKETIME_TIMESTAMP_FILE": shift.name, "FAKETIME_NO_CACHE": "1",
    "DONT_FAKE_MONOTONIC": "1"})
try:
    try:
        d.start()
    except RuntimeError as e:
        print("SKIP (the next day's page): the daemon takes no libfaketime here: %s"
              % str(e)[-300:])
        d = None
    if d:
        at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(minutes=1)
        evs = [{"event_id": "c-anna", "type": "customer.upserted", "occurred_at": iso(now),
                "data": {"id": "anna", "email": "anna@example.de", "locale": "de",
                         "timezone": "Europe/Berlin"}},
               order("n1", "anna", placed), shipment("n1", placed + dt.timedelta(hours=2)),
               scan("n1", 1, at, "delivered")]
        t.eq(d.post_events(evs)[0], 200, "the next day's order accepted")
        link = "/t/" + token("n1")
        (st, _, html), today = asked(lambda: d.request("GET", link, key=False))
        hm = at.astimezone(BERLIN).strftime("%H:%M")
        t.check("%s, %s</time>Zugestellt" % (day_de(at, today, cap=True), hm) in html,
                "the page names the day: %r" % re.findall(r"<time[^>]*>[^<]*</time>\w+", html))
        # (the order watch may still change the order's promise, and so the
        # page's version, just after its events: asked until a hit)
        def cached():
            hits = metric(d, 'consonance_tracking_pages_total{cache="hit"}')
            st, _, again = d.request("GET", link, key=False)
            return (st == 200 and
                    metric(d, 'consonance_tracking_pages_total{cache="hit"}') == hits + 1)
        t.wait_for(cached, "the page served from the cache")
        with open(shift.name, "w") as f:
            f.write("+1d\n")
        (st, _, html), today = asked(lambda: d.request("GET", link, key=False))
        want = "%s, %s</time>Zugestellt" % (day_de(at, today + dt.timedelta(days=1), cap=True), hm)
        t.check(st == 200 and want in html,
                "a day later the page is made again, its day named from the new today: %r not in "
                "%r" % (want, re.findall(r"<time[^>]*>[^<]*</time>\w+", html)))
finally:
    if d:
        d.stop()
        d.cleanup()
    os.unlink(shift.name)
t.done()
