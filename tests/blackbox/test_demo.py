"""Black-box: the demo shop. Generated into a store, exported as NDJSON and
imported into a second store: same counts; a second run with the same seed
adds nothing; NDJSON with broken lines keeps the good ones and names the
bad lines; an --end before 2000 or after today is refused saying so; without
--end nothing is dated after now."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402
import datetime  # noqa: E402

a = csbb.args()
t = csbb.Checker()
tmp = tempfile.mkdtemp(prefix="cs-demo-")
END = "2025-11-01"  # the same shop on every run (without --end it ends now)


def run(*argv, ok=(0,)):
    out = subprocess.run([a.bin, *argv], capture_output=True, text=True, timeout=300)
    t.check(out.returncode in ok, "%s: exit %d: %s" % (" ".join(argv[:2]), out.returncode, out.stderr[-300:]))
    return out


try:
    s1 = "sqlite:" + os.path.join(tmp, "a.db")
    first = json.loads(run("demo", "--store", s1, "--customers", "200", "--months", "4", "--end", END).stdout)
    t.check(first["accepted"] > 1000, "demo produced a shop (%d events)" % first["accepted"])
    for ty in ("customer.upserted", "order.placed", "shipment.created", "tracking.event",
               "return.requested", "ticket.created", "feedback.submitted", "message.status"):
        t.check(first["by_type"].get(ty, 0) > 0, "demo has %s" % ty)
    again = json.loads(run("demo", "--store", s1, "--customers", "200", "--months", "4", "--end", END).stdout)
    t.eq((again["accepted"], again["duplicates"]), (0, first["read"]), "same seed adds nothing")

    nd = os.path.join(tmp, "shop.ndjson")
    run("demo", "--customers", "200", "--months", "4", "--end", END, "--out", nd)
    lines = open(nd, encoding="utf-8").read().splitlines()
    t.eq(len(lines), first["read"], "NDJSON export has every event")
    texts = " ".join(lines[:5000])
    t.check("Wo ist meine Bestellung?" in texts or "Die Sendung" in texts, "German texts in the demo")
    carriers = {json.loads(l)["data"].get("carrier") for l in lines if '"shipment.created"' in l}
    t.check({"dhl", "dpd", "hermes", "gls"} <= carriers, "all four carriers: %s" % carriers)

    s2 = "sqlite:" + os.path.join(tmp, "b.db")
    imp = json.loads(run("import", "--store", s2, "ndjson", nd).stdout)
    t.eq((imp["accepted"], imp["by_type"]), (first["accepted"], first["by_type"]), "NDJSON round trip")

    # broken lines are named, good lines kept
    bad = os.path.join(tmp, "bad.ndjson")
    with open(bad, "w") as f:
        f.write(lines[0] + "\n{not json}\n\n" + '{"event_id":"x","type":"order.placed"}\n' + lines[1] + "\n")
    out = run("import", "--store", "sqlite:" + os.path.join(tmp, "c.db"), "ndjson", bad, ok=(1,))
    summary = json.loads(out.stdout)
    t.eq((summary["accepted"], summary["rejected"]), (2, 2), "bad lines rejected, good kept")
    t.check(bad + ":2:" in out.stderr and bad + ":4:" in out.stderr, "bad lines named: " + out.stderr)

    # an Olist export broken part-way (a stray character after a quote on
    # the orders file's third line): the import stops there, says why, and
    # still counts what it stored before
    od = os.path.join(tmp, "olist-broken")
    os.mkdir(od)
    files = {
        "olist_customers_dataset.csv":
            "customer_id,customer_unique_id,customer_zip_code_prefix,customer_city,customer_state\n"
            "c1,u1,01310,sao paulo,SP\nc2,u2,20040,rio de janeiro,RJ\n",
        "olist_order_items_dataset.csv":
            "order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value\n"
            "o1,1,p1,s1,2017-10-06 11:07:15,29.99,8.72\no2,1,p2,s1,2017-11-05 10:00:00,118.70,22.76\n",
        "olist_orders_dataset.csv":
            "order_id,customer_id,order_status,order_purchase_timestamp,order_approved_at,"
            "order_delivered_carrier_date,order_delivered_customer_date,order_estimated_delivery_date\n"
            "o1,c1,delivered,2017-10-02 10:56:33,2017-10-02 11:07:15,2017-10-04 19:55:00,"
            "2017-10-10 21:25:13,2017-10-18 00:00:00\n"
            "o2,\"c2\"x,canceled,2017-11-01 09:00:00,2017-11-01 10:00:00,,,2017-11-20 00:00:00\n",
    }
    for name, text in files.items():
        with open(os.path.join(od, name), "w", encoding="utf-8") as f:
            f.write(text)
    out = run("import", "--store", "sqlite:" + os.path.join(tmp, "d.db"), "olist", od, ok=(1,))
    summary = json.loads(out.stdout)
    t.check("olist_orders_dataset.csv:3" in summary.get("stopped", ""),
            "the stop is said in the summary: %s" % out.stdout)
    t.eq(summary["by_type"].get("order.placed"), 1, "the order before the stop was imported")
    t.check(summary["accepted"] >= 3 and summary["accepted"] == summary["read"],
            "what was stored is counted: %s" % out.stdout)
    t.check("olist_orders_dataset.csv:3" in out.stderr, "the stop is named: " + out.stderr)

    out = run("import", "--store", s2, "olist", "/nonexistent", ok=(1,))
    t.check("/nonexistent" in out.stderr, "missing folder named")
    out = run("demo", "--customers", "0", ok=(2,))
    t.check("--customers" in out.stderr, "bad flag named")
    # an --end before 2000 (intake takes times from 2000-01-01 on), or whose
    # months start before it, is refused saying so
    out = run("demo", "--end", "1960-01-01", "--out", os.devnull, ok=(2,))
    t.check("--end: expected a date from 2000-01-01 on, got \"1960-01-01\"" in out.stderr,
            "an --end before 2000 is said to be one: " + out.stderr)
    for end in ("2000-01-01", "2000-02-01"):
        out = run("demo", "--end", end, "--months", "6", "--out", os.devnull, ok=(2,))
        t.check("--end: expected a date from 2000-06-29 on (the 6 months before it must not "
                "start before 2000-01-01)" in out.stderr, "--end %s refused: %s" % (end, out.stderr))
    out = run("demo", "--customers", "3", "--months", "1", "--end", "2000-01-31", "--out", "-")
    t.check(out.stdout.count('"type":"order.placed"') >= 3 and "2000-01" in out.stdout,
            "a period starting on 2000-01-01 is fine")
    # without --end the shop ends now: nothing dated after it (intake would
    # refuse it); an --end after today is refused
    out = run("demo", "--customers", "40", "--months", "1", "--out", "-")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    ahead = [e["occurred_at"] for e in map(json.loads, out.stdout.splitlines())
             if e["occurred_at"][:19] > now]
    t.eq(ahead, [], "no event dated after now")
    tomorrow = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()
    out = run("demo", "--end", tomorrow, "--out", os.devnull, ok=(2,))
    t.check("--end: expected a date no later than today" in out.stderr and tomorrow in out.stderr,
            "an --end after today is refused: " + out.stderr)
    out = run("version")
    t.check(out.stdout.startswith("consonance "), "version")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
