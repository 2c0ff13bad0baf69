"""Black-box: `consonance promise-eval`. --quantiles that put the median
outside the window are refused naming the option and what it expects; an
unknown option is a usage error, not a success; the usage says how the
test folder teaches. On the Olist sample (skipped when ../shared is not
there) the shop's estimate, a date and not a window, is scored as on time
or late, never with the model's window hit rate."""
import json
import os
import subprocess
import sys

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
    t.check(hd["ours"] != json.loads(run("--split-at", "2018-01-22", src).stdout)["ours"],
            "closed days change the promises: %r" % hd["ours"])
else:
    print("(olist sample not present: its part skipped)")
t.done()
