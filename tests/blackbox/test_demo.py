"""Black-box: the demo shop. Generated into a store, exported as NDJSON and
imported into a second store: same counts; a second run with the same seed
adds nothing; NDJSON with broken lines keeps the good ones and names the
bad lines."""
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
tmp = tempfile.mkdtemp(prefix="cs-demo-")


def run(*argv, ok=(0,)):
    out = subprocess.run([a.bin, *argv], capture_output=True, text=True, timeout=300)
    t.check(out.returncode in ok, "%s: exit %d: %s" % (" ".join(argv[:2]), out.returncode, out.stderr[-300:]))
    return out


try:
    s1 = "sqlite:" + os.path.join(tmp, "a.db")
    first = json.loads(run("demo", "--store", s1, "--customers", "200", "--months", "4").stdout)
    t.check(first["accepted"] > 1000, "demo produced a shop (%d events)" % first["accepted"])
    for ty in ("customer.upserted", "order.placed", "shipment.created", "tracking.event",
               "return.requested", "ticket.created", "feedback.submitted", "message.status"):
        t.check(first["by_type"].get(ty, 0) > 0, "demo has %s" % ty)
    again = json.loads(run("demo", "--store", s1, "--customers", "200", "--months", "4").stdout)
    t.eq((again["accepted"], again["duplicates"]), (0, first["read"]), "same seed adds nothing")

    nd = os.path.join(tmp, "shop.ndjson")
    run("demo", "--customers", "200", "--months", "4", "--out", nd)
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

    out = run("import", "--store", s2, "olist", "/nonexistent", ok=(1,))
    t.check("/nonexistent" in out.stderr, "missing folder named")
    out = run("demo", "--customers", "0", ok=(2,))
    t.check("--customers" in out.stderr, "bad flag named")
    out = run("version")
    t.check(out.stdout.startswith("consonance "), "version")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
