"""Black-box: `consonance import olist` on the real Olist sample in
../shared/data/olist-sample (skipped when it is not there), then the
daemon's views of an imported order; a second import stores nothing new.
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
shared = os.environ.get("CS_SHARED_DIR", "")
src = os.path.join(shared, "data", "olist-sample")
if not shared or not os.path.isdir(src):
    print("skipped: ../shared/data/olist-sample not present")
    sys.exit(csbb.SKIP)

t = csbb.Checker()
tmp = tempfile.mkdtemp(prefix="cs-olist-")
store = "sqlite:" + os.path.join(tmp, "olist.db")


def run_import():
    out = subprocess.run([a.bin, "import", "--store", store, "olist", src],
                         capture_output=True, text=True, timeout=600)
    t.eq(out.returncode, 0, "import exit code (stderr: %s)" % out.stderr[-300:])
    return json.loads(out.stdout)


with open(os.path.join(src, "olist_orders_dataset.csv"), newline="") as f:
    orders = list(csv.DictReader(f))
with open(os.path.join(src, "olist_order_items_dataset.csv"), newline="") as f:
    with_items = {r["order_id"] for r in csv.DictReader(f)}
with open(os.path.join(src, "olist_order_reviews_dataset.csv"), newline="") as f:
    reviews = list(csv.DictReader(f))
with open(os.path.join(src, "olist_customers_dataset.csv"), newline="") as f:
    uniques = {r["customer_unique_id"] for r in csv.DictReader(f)}

first = run_import()
by = first["by_type"]
t.eq(first["rejected"], 0, "nothing rejected")
t.eq(by.get("order.placed"), sum(1 for o in orders if o["order_id"] in with_items), "one order.placed per order with items")
t.eq(first["skipped"], sum(1 for o in orders if o["order_id"] not in with_items), "orders without items counted as skipped")
t.eq(by.get("customer.upserted"), len({u for u in uniques}), "one customer per customer_unique_id")
t.eq(by.get("feedback.submitted"), len(reviews), "one feedback per review")
t.eq(by.get("order.cancelled"), sum(1 for o in orders if o["order_status"] in ("canceled", "unavailable")), "cancellations")
delivered = sum(1 for o in orders if o["order_delivered_customer_date"])
t.check(by.get("tracking.event", 0) >= delivered, "a delivered scan per delivered order")
t.eq(first["accepted"], first["read"], "everything stored")

second = run_import()
t.eq((second["accepted"], second["duplicates"]), (0, first["read"]), "re-import is all duplicates")

# the daemon on the imported store
d = csbb.Daemon(a.bin, workdir=tmp, store=store).start()
try:
    o = next(o for o in orders if o["order_status"] == "delivered" and o["order_id"] in with_items
             and o["order_delivered_carrier_date"] and o["order_delivered_customer_date"])
    st, _, view = d.request("GET", "/v1/orders/" + o["order_id"])
    t.eq(st, 200, "imported order view")
    t.eq(view["currency"], "BRL", "currency")
    t.check(len(view["items"]) >= 1, "items")
    t.eq(view["shipments"][0]["status"], "delivered", "delivered shipment")
    import datetime
    local = datetime.datetime.strptime(o["order_purchase_timestamp"], "%Y-%m-%d %H:%M:%S")
    utc = (local + datetime.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S")
    t.eq(view["placed_at"][:19], utc, "purchase time read as São Paulo time (-03:00)")
    types = [e["type"] for e in view["timeline"]]
    t.check(types[0] == "order.placed" and "tracking.event" in types, "timeline: %s" % types)
    st, _, cust = d.request("GET", "/v1/customers/" + view["customer_id"])
    t.eq((st, cust["locale"], cust["timezone"]), (200, "pt-BR", "America/Sao_Paulo"), "imported customer")
finally:
    d.stop()
    d.cleanup()
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
