"""Black-box: `consonance promise-eval`. --quantiles that put the median
outside the window are refused naming the option and what it expects; an
unknown option is a usage error, not a success; the usage says how the
test folder teaches. On the Olist sample (skipped when ../shared is not
there) the shop's estimate, a date and not a window, is scored as on time
or late, never with the model's window hit rate. Rows whose times are not
times (a 25th hour, a 13th month, a word) are left out, counted and named
with their file, line and column, not read as another day."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
shared = os.environ.get("CS_SHARED_DIR", "")
src = os.path.join(shared, "data", "olist-sample")
have_sample = bool(shared) and os.path.isdir(src)


def run(*args):
    return subprocess.run([a.bin, "promise-eval", *args], capture_output=True, text=True, timeout=300)


for q in ("0.1,0.4", "0.6,0.9", "0.5,0.9", "0.1,0.5", "0.3,0.2", "0,0.9", "0.1,1", "0.1", "0.1,0.9x", "a,b"):
    out = run("--quantiles", q, "--split-at", "2018-01-22", src if have_sample else "/nonexistent")
    t.check(out.returncode == 2 and out.stderr.startswith("consonance promise-eval: --quantiles:")
            and "0 < LOW < 0.5 < HIGH < 1" in out.stderr and "'%s'" % q in out.stderr and not out.stdout,
            "--quantiles %s refused: %s %r" % (q, out.returncode, out.stderr))
for h in ("FR", "germany"):
    out = run("--holidays", h, "--split-at", "2018-01-22", src if have_sample else "/nonexistent")
    t.check(out.returncode == 2 and out.stderr.startswith("consonance promise-eval: --holidays:")
            and "DE, AT, CH, BR" in out.stderr and not out.stdout,
            "--holidays %r refused: %s %r" % (h, out.returncode, out.stderr))
out = run("--bogus", "a", "b")
t.check(out.returncode == 2 and "usage:" in out.stderr and not out.stdout,
        "an unknown option is a usage error: %s %r %r" % (out.returncode, out.stdout, out.stderr))
out = run("--help")
t.check(out.returncode == 0 and "usage:" in out.stdout and "as they complete" in out.stdout,
        "--help says when deliveries teach: %s %r" % (out.returncode, out.stdout))

# a small export written here (no sample needed): rows with times that are
# not times are left out and said, not carried into another day
def write_export(tmp, same_day=False):
    """Train and test folders of a small export; same_day: the shop
    promised every test order for its purchase day."""
    for part in ("train", "test"):
        os.makedirs(os.path.join(tmp, part))
        rows = []
        for i in range(30 if part == "train" else 6):
            day = 1 + i % 27
            rows.append("%s%d,c%d,delivered,2017-%02d-%02d 10:00:00,2017-%02d-%02d 11:00:00,"
                        "2017-%02d-%02d 09:00:00,2017-%02d-%02d 15:00:00,2017-%02d-%02d 00:00:00"
                        % (part, i, i, 3 if part == "train" else 6, day, 3 if part == "train" else 6,
                           day, 3 if part == "train" else 6, day, 4 if part == "train" else 7, day,
                           4 if part == "train" else 6 if same_day else 7, day))
        if part == "test":
            rows.append("bad1,c1,delivered,2017-06-09 29:57:05,,,2017-06-20 10:00:00,2017-06-30 00:00:00")
            rows.append("bad2,c2,delivered,2017-06-09 10:00:00,,,2017-06-20 10:00:00,2017-13-01 00:00:00")
            rows.append("bad3,c3,delivered,2017-06-09 10:00:00,,,soon,2017-06-30 00:00:00")
            rows.append("bad4,c4")
        files = {
            "olist_customers_dataset.csv": "customer_id,customer_state\n" +
            "".join("c%d,SP\n" % i for i in range(30)),
            "olist_sellers_dataset.csv": "seller_id,seller_state\ns1,SP\n",
            "olist_order_items_dataset.csv": "order_id,seller_id\n" +
            "".join("%s%d,s1\n" % (part, i) for i in range(30)),
            "olist_orders_dataset.csv": "order_id,customer_id,order_status,order_purchase_timestamp,"
            "order_approved_at,order_delivered_carrier_date,order_delivered_customer_date,"
            "order_estimated_delivery_date\n" + "\n".join(rows) + "\n",
        }
        for name, text in files.items():
            with open(os.path.join(tmp, part, name), "w") as f:
                f.write(text)


tmp = tempfile.mkdtemp(prefix="cs-peval-")
write_export(tmp)
out = run(os.path.join(tmp, "train"), os.path.join(tmp, "test"))
t.eq(out.returncode, 0, "promise-eval on a small export (stderr: %s)" % out.stderr[-300:])
if out.returncode == 0:
    d = json.loads(out.stdout)
    t.eq(d.get("test_orders"), 6, "the good test orders are scored, the bad ones not: %r" % d)
    t.eq(d.get("skipped_rows"), 4, "four rows left out: %r" % d.get("skipped"))
    said = "\n".join(d.get("skipped") or [])
    for want in ('olist_orders_dataset.csv:8: order bad1: order_purchase_timestamp '
                 '"2017-06-09 29:57:05" is not a time like 2017-07-09 21:57:05',
                 'order bad2: order_estimated_delivery_date "2017-13-01 00:00:00"',
                 'order bad3: order_delivered_customer_date "soon"',
                 'olist_orders_dataset.csv:11: 2 fields, expected 8'):
        t.check(want in said, "the row is named with what is wrong (%s): %r" % (want, said))
    t.check("4 rows left out" in out.stderr and "bad1" in out.stderr,
            "and said on stderr: %r" % out.stderr)
shutil.rmtree(tmp, ignore_errors=True)

# a shop that promises every order for its purchase day: a window 0 days
# long has no ratio to give (null), and the figures still come out
tmp = tempfile.mkdtemp(prefix="cs-peval-")
write_export(tmp, same_day=True)
out = run(os.path.join(tmp, "train"), os.path.join(tmp, "test"))
t.eq(out.returncode, 0, "promise-eval with same-day estimates (stderr: %s)" % out.stderr[-300:])
if out.returncode == 0:
    d = json.loads(out.stdout)
    t.eq(d["shop"]["median_window_end_days"], 0, "the shop's window ends on the purchase day")
    t.eq(d["shop"]["late_rate"], 1, "and every order came later")
    t.eq(d.get("window_end_ratio", "absent"), None, "no ratio to a 0-day window: %r" % d)
    t.check(all(b.get("window_end_ratio", "absent") is None for b in d["bound"]),
            "nor in the bound: %r" % d["bound"])
shutil.rmtree(tmp, ignore_errors=True)

if have_sample:
    out = run("--quantiles", "0.2,0.8", "--split-at", "2018-01-22", src)
    t.eq(out.returncode, 0, "promise-eval on the sample (stderr: %s)" % out.stderr[-300:])
    d = json.loads(out.stdout)
    t.eq((d["model"]["q_low"], d["model"]["q_high"]), (0.2, 0.8), "the quantiles asked for")
    ours, shop = d["ours"], d["shop"]
    t.eq(sorted(ours), ["late_rate", "median_window_end_days", "point_mae_days", "window_hit_rate"],
         "the model's figures")
    t.eq(sorted(shop), ["late_rate", "median_window_end_days", "on_time_rate", "point_mae_days"],
         "the shop's figures: on time, no window hit rate")
    t.check(abs(shop["on_time_rate"] + shop["late_rate"] - 1) < 1e-3,
            "the shop is on time when not late: %r" % shop)
    t.check(0 < ours["window_hit_rate"] < 1 - ours["late_rate"],
            "the model's hit needs the lower end too: %r" % ours)
    # Brazil's holidays close days (Carnival is in the test months): the
    # replay follows them, and says so
    out = run("--holidays", "br", "--split-at", "2018-01-22", src)
    t.eq(out.returncode, 0, "promise-eval with holidays (stderr: %s)" % out.stderr[-300:])
    hd = json.loads(out.stdout)
    t.eq(hd["model"].get("holidays"), "BR", "the holidays named in the output")
    t.eq(d["model"].get("holidays"), "none", "none by default")
    t.eq(d.get("skipped_rows"), 0, "the sample has no row left out: %r" % d.get("skipped"))
    t.check(hd["ours"] != json.loads(run("--split-at", "2018-01-22", src).stdout)["ours"],
            "closed days change the promises: %r" % hd["ours"])
else:
    print("(olist sample not present: its part skipped)")
t.done()
