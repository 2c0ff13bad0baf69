"""Black-box: the command line and its configuration, without a daemon
left running. Every command's -h and --help print its usage on stdout and
exit 0."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
tmp = tempfile.mkdtemp(prefix="cs-cli-")
conf_path = os.path.join(tmp, "empty.conf")  # a file, where a folder is expected
open(conf_path, "w").close()
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# what the tests run under must not leak in: settings come from here alone
base_env = {k: v for k, v in os.environ.items() if not k.startswith("CONSONANCE_")}


def run(*args, env=None, timeout=60):
    e = dict(base_env)
    e.update(env or {})
    try:
        return subprocess.run([a.bin, *args], capture_output=True, text=True, timeout=timeout, env=e,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as x:  # e.g. serve, when it starts although it should not
        def text(b):
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        return subprocess.CompletedProcess(x.cmd, None, text(x.stdout), text(x.stderr))


# ---- -h and --help ----
for cmd in ("serve", "import", "demo", "apikey", "journeys", "promise-eval", "schema", "copy-store",
            "version"):
    for flag in ("-h", "--help"):
        out = run(cmd, flag)
        t.check(out.returncode == 0 and out.stdout.startswith("usage: consonance " + cmd)
                and not out.stderr,
                "%s %s prints its usage: %s %r %r" % (cmd, flag, out.returncode, out.stdout[:80],
                                                      out.stderr[:200]))
out = run("promise-eval", "--half-life", "30", "-h")
t.check(out.returncode == 0 and out.stdout.startswith("usage:"), "promise-eval --half-life still takes a value")

# the README's command-line section names the flags each command's --help names
with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
    readme = f.read()
block = readme.split("## The command line", 1)[1].split("\n\n", 2)[1]
synopsis, cmd = {}, None
for line in block.splitlines():
    words = line.split()
    if words and words[0] == "consonance":
        cmd = words[1]
    if cmd:
        synopsis.setdefault(cmd, set()).update(re.findall(r"--[a-z-]+", line))
for cmd in ("serve", "import", "demo", "apikey", "journeys", "promise-eval", "schema", "copy-store"):
    flags = set(re.findall(r"--[a-z-]+", run(cmd, "--help").stdout)) - {"--help"}
    t.eq(synopsis.get(cmd, set()), flags, "the README's flags of %s" % cmd)

# ---- settings every command refuses ----
store = "sqlite:" + os.path.join(tmp, "shop.db")


def refused(env, words, what, args=("apikey", "list")):
    """A configuration every command that reads it refuses, naming the words."""
    for argv in (list(args), ["serve", "--port", "0"], ["journeys", "messages", "K-1"]):
        out = run(*argv, env=dict({"CONSONANCE_STORE": store}, **env), timeout=10)
        t.check(out.returncode == 2 and all(w in out.stderr for w in words) and not out.stdout,
                "%s: %s refused naming %s: %s %r" % (what, argv[0], words, out.returncode,
                                                    out.stderr[-300:]))


refused({"CONSONANCE_PUBLIC_URL": "https://shop.example"}, ["link_secret", "public_url"],
        "public_url without link_secret")
out = run("apikey", "list", env={"CONSONANCE_STORE": store, "CONSONANCE_PUBLIC_URL": "https://shop.example",
                                 "CONSONANCE_LINK_SECRET": "0123456789abcdef"})
t.check(out.returncode == 0, "public_url with link_secret is taken: %r" % out.stderr[-300:])
templates = os.path.join(root, "etc", "templates")
refused({"CONSONANCE_SMS_URL": "https://api.example/sms", "CONSONANCE_SMS_ACCOUNT": "AC1",
         "CONSONANCE_SMS_FROM": "+4930123456", "CONSONANCE_TEMPLATES": templates}, ["sms_token: needed when sms_url is set"],
        "an SMS channel without its token")
refused({"CONSONANCE_SMTP_URL": "smtp://127.0.0.1:9", "CONSONANCE_TEMPLATES": templates}, ["smtp_from: needed when smtp_url is set"],
        "an email channel without its sender")
refused({"CONSONANCE_SMTP_FROM": "Kaffee & Co"}, ["CONSONANCE_SMTP_FROM: smtp_from: expected", '"Kaffee & Co"'],
        "a sender without an address")
refused({"CONSONANCE_SMTP_URL": "smtp://127.0.0.1:9", "CONSONANCE_SMTP_FROM": "shop@example.de"},
        ["templates: needed when smtp_url is set"], "an email channel without its templates")
refused({"CONSONANCE_WHATSAPP_URL": "https://graph.example/m", "CONSONANCE_WHATSAPP_TOKEN": "wa"},
        ["templates: needed when whatsapp_url is set"], "a WhatsApp channel without its templates")
refused({"CONSONANCE_SMPT_URL": "smtp://mail.example:587"}, ["CONSONANCE_SMPT_URL: not a setting"],
        "a misspelt CONSONANCE_ variable")
refused({"CONSONANCE_STORE": "sqlite:"}, ["CONSONANCE_STORE: store: expected a store target", '"sqlite:"'],
        "a store target without its path")
refused({"CONSONANCE_QUIET_HOURS": "22:00-22:00"}, ["quiet_hours", "22:00-22:00", "the same minute"],
        "quiet hours that start and end at once")

# every CONSONANCE_ variable the scripts, tests, benchmarks and docs set is
# a setting (etc/consonance.conf spells out each; a unit test keeps it so),
# but for the misspelt example in docs/configuration.md
with open(os.path.join(root, "etc", "consonance.conf")) as f:
    settings = {"CONSONANCE_" + ln.split("=")[0].strip().upper() for ln in f
                if "=" in ln and not ln.lstrip().startswith("#")}
settings.add("CONSONANCE_CONFIG")
used = {}
for top in ("scripts", "tests", "bench", ".ci", "docs", "README.md"):
    for dirpath, _, files in os.walk(os.path.join(root, top)) if top != "README.md" else [(root, [], [top])]:
        if "node_modules" in dirpath:
            continue
        for name in files:
            path = os.path.join(dirpath, name)
            if name in ("test_conf.c", "test_cli.py"):  # misspelt on purpose
                continue
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except (UnicodeDecodeError, OSError):
                continue
            for m in re.finditer(r"CONSONANCE_[A-Z0-9_]*[A-Z0-9]", text):
                used.setdefault(m.group(0), os.path.relpath(path, root))
unknown = {v: p for v, p in used.items() if v not in settings and v != "CONSONANCE_SMPT_URL"}
t.check(len(used) > 20 and not unknown, "CONSONANCE_ variables that are no setting: %r" % unknown)

# ---- the config file ----
out = run("apikey", "list", "--config", tmp, env={"CONSONANCE_STORE": store})
t.check(out.returncode == 2 and "%s: is a directory, expected a config file" % tmp in out.stderr,
        "a directory as the config file is said to be one: %s %r" % (out.returncode, out.stderr))
out = run("apikey", "list", env={"CONSONANCE_STORE": store, "CONSONANCE_CONFIG": tmp})
t.check(out.returncode == 2 and "is a directory" in out.stderr,
        "CONSONANCE_CONFIG naming a directory: %s %r" % (out.returncode, out.stderr))

# ---- bad flag values: exit 2, naming the flag ----
for argv, words in (
        (["serve", "--port", "abc"], ["--port", "expected a port number", '"abc"']),
        (["serve", "--port", "70000"], ["--port", "expected a port number", '"70000"']),
        (["serve", "--host", ""], ["--host", "expected an address"]),
        (["serve", "--store", ""], ["--store", "expected a store target"]),
        (["serve", "--store", "sqlite:"], ["--store: store: expected a store target: sqlite:PATH", '"sqlite:"']),
        (["apikey", "--store", "sqlite:", "list"], ["--store: store: expected a store target"]),
        (["apikey", "--store", "mysql://db/shop", "list"], ["--store: store: expected a store target"]),
        (["serve", "--bogus"], ["usage: consonance serve"]),
        (["apikey", "create", "--name", "x", "--scopes", "read,owner"], ["--scopes", "read, write, admin", "read,owner"]),
        (["apikey", "--store", "", "list"], ["--store", "expected a store target"]),
        (["apikey", "rotate"], ['unknown action "rotate"']),
        (["apikey", "create", "--name", ""], ["--name", "expected a key name of 1 to 127 characters, got 0"]),
        (["apikey", "create", "--name", "k" * 128], ["--name", "expected a key name of 1 to 127 characters, got 128"]),
        (["import", "--store", "", "ndjson", "-"], ["--store", "expected a store target"]),
        (["demo", "--store", "", "--customers", "1"], ["--store", "expected a store target"]),
        (["demo", "--customers", "many"], ["--customers", "expected an integer"]),
        (["demo", "--store", store, "--out", os.path.join(tmp, "demo.ndjson")],
         ["--out writes the events to a file and opens no store"]),
        (["journeys", "--store", "", "messages", "K-1"], ["--store", "expected a store target"]),
        (["schema", "--from", "0"], ["--from", "expected a version"]),
        (["serve", "--config", ""], ["--config: expected a config file, got an empty path"]),
        (["apikey", "--config", "", "list"], ["--config: expected a config file"]),
        (["bogus"], ['unknown command "bogus"']),
        (["version", "extra"], ["consonance version: expected no arguments, got extra"]),
        (["version", "--verbose"], ["consonance version: expected no arguments, got --verbose"]),
        (["--version", "extra"], ["consonance version: expected no arguments, got extra"]),
        # a command line that is not the command's says what was wrong, then the usage
        ([], ["consonance: expected a command", "usage: consonance <command>"]),
        (["apikey"], ["consonance apikey: expected an action: create, list or revoke", "usage:"]),
        (["apikey", "create"], ["apikey: create: --name: expected a name for the key", "required"]),
        (["apikey", "create", "--name", "k", "extra"], ['apikey: create: unexpected argument "extra"']),
        (["apikey", "list", "extra"], ['apikey: list: unexpected argument "extra"']),
        (["apikey", "revoke"], ["apikey: revoke: expected the id of the key to revoke"]),
        (["apikey", "revoke", "key_1", "key_2"], ['apikey: revoke: unexpected argument "key_2"']),
        (["import"], ["consonance import: expected a format (ndjson or olist)"]),
        (["import", "csv", "x.csv"], ['consonance import: unknown format "csv"; expected ndjson or olist']),
        (["import", "ndjson"], ["consonance import: ndjson: expected the file of events, or - for standard input"]),
        (["import", "olist"], ["consonance import: olist: expected the folder of the Olist CSV files"]),
        (["import", "ndjson", "a", "b"], ['consonance import: unexpected argument "b"']),
        (["journeys"], ["consonance journeys: expected an action: check, list"]),
        (["journeys", "start", "j"], ['consonance journeys: unknown action "start"']),
        (["journeys", "enable"], ["consonance journeys: enable: expected the id of the journey"]),
        (["journeys", "runs"], ["consonance journeys: runs: expected the id of the customer"]),
        (["journeys", "list", "x"], ['consonance journeys: list: unexpected argument "x"']),
        (["journeys", "check", "a", "b"], ['consonance journeys: check: unexpected argument "b"']),
        (["messages"], ["consonance messages: expected the action retry"]),
        (["messages", "resend"], ['consonance messages: unknown action "resend"; expected retry']),
        (["messages", "retry", "now"], ['consonance messages: retry: unexpected argument "now"']),
        (["copy-store"], ["consonance copy-store: expected the SQLite store to copy and the PostgreSQL database"]),
        (["copy-store", "sqlite:a.db"], ["copy-store: expected the PostgreSQL database to copy into after sqlite:a.db"]),
        (["copy-store", "a", "b", "c"], ['copy-store: unexpected argument "c"']),
        (["promise-eval", "train"], ["promise-eval: expected two folders of Olist CSV files", "got 1"]),
        (["promise-eval", "--split-at", "2018-01-22", "a", "b"], ["promise-eval: with --split-at: expected one folder", "got 2"]),
        (["serve", "extra"], ['consonance serve: unexpected argument "extra"', "usage: consonance serve"]),
        (["demo", "extra"], ['consonance demo: unexpected argument "extra"']),
        (["schema", "--from"], ["consonance schema: --from: expected a version 1.."]),
        (["schema", "--from", "+2"], ["consonance schema: --from: expected a version 1.."]),
        (["schema", "--bogus"], ['consonance schema: unknown option "--bogus"'])):
    out = run(*argv, env={"CONSONANCE_STORE": store}, timeout=10)
    t.check(out.returncode == 2 and all(w in out.stderr for w in words) and not out.stdout,
            "%s: exit 2 naming %s: %s %r" % (" ".join(argv), words, out.returncode, out.stderr[-300:]))
for argv in (["version"], ["--version"]):
    out = run(*argv)
    t.check(out.returncode == 0 and out.stdout.startswith("consonance ") and not out.stderr,
            "%s prints the version: %s %r" % (argv[0], out.returncode, out.stderr[-300:]))
# a version past the last has no migrations to print: refused, not an empty success
out = run("schema", "--from", "1")
latest = out.stdout.count("-- version ")
t.check(out.returncode == 0 and latest > 10, "schema prints every version: %d" % latest)
out = run("schema", "--from", str(latest))
t.check(out.returncode == 0 and out.stdout.startswith("-- version %d\n" % latest), "schema --from the latest")
out = run("schema", "--from", str(latest + 1))
t.check(out.returncode == 2 and "--from: expected a version 1..%d" % latest in out.stderr and not out.stdout,
        "schema --from past the latest: %s %r" % (out.returncode, out.stderr))

out = run("schema", "sqlite", "postgresql")
t.check(out.returncode == 2 and "expected one dialect, got sqlite and postgresql" in out.stderr and not out.stdout,
        "schema with two dialects: %s %r" % (out.returncode, out.stderr))
out = run("schema", "postgresql", "--from", "2")
t.check(out.returncode == 0 and out.stdout.startswith("-- version 2\n"), "schema postgresql --from 2")

# a store that does not open is a failure while running, not a usage error
out = run("apikey", "list", env={"CONSONANCE_STORE": "sqlite:" + os.path.join(tmp, "no", "such", "dir.db")})
t.check(out.returncode == 1 and out.stderr, "a store that does not open: exit 1: %s %r" % (out.returncode, out.stderr))
# an NDJSON "file" that is a folder is said to be one
out = run("import", "--store", store, "ndjson", tmp)
t.check(out.returncode == 1 and "%s: is a directory, expected an NDJSON file" % tmp in out.stderr,
        "import ndjson of a folder: %s %r" % (out.returncode, out.stderr))

# an event the store's rules refuse is named by its file and line, as a
# line that does not parse is (it was named by its event id alone)
nd = os.path.join(tmp, "refused.ndjson")
with open(nd, "w") as f:
    f.write('{"event_id":"o-1","type":"order.placed","occurred_at":"2026-03-01T10:00:00Z","data":'
            '{"id":"1","customer_id":"c-1","currency":"EUR","items":[{"sku":"K","name":"Kaffee",'
            '"unit_price":"8.90","quantity":1}]}}\n'
            '{"event_id":"t-1","type":"ticket.created","occurred_at":"2026-03-02T10:00:00Z","data":'
            '{"id":"4711","customer_id":"c-2","order_id":"1"}}\n'
            '{"nope":1}\n')
out = run("import", "--store", "sqlite:" + os.path.join(tmp, "refused.db"), "ndjson", nd)
t.check(out.returncode == 1 and nd + ":2: event t-1 refused: data.order_id: order \"1\" is "
        "another customer's" in out.stderr and nd + ":3: " in out.stderr
        and '"rejected":2' in out.stdout,
        "import names a refused event's file and line: %s %r %r" % (out.returncode, out.stderr,
                                                                     out.stdout))
# the file imported again with line 1 now another order under its id: that
# line is refused, not counted as a duplicate (the new order was lost)
with open(nd, "w") as f:
    f.write('{"event_id":"o-1","type":"order.placed","occurred_at":"2026-03-01T10:00:00Z","data":'
            '{"id":"2","customer_id":"c-1","currency":"EUR","items":[{"sku":"K","name":"Kaffee",'
            '"unit_price":"8.90","quantity":1}]}}\n')
out = run("import", "--store", "sqlite:" + os.path.join(tmp, "refused.db"), "ndjson", nd)
t.check(out.returncode == 1 and nd + ':1: event o-1 refused: event_id: "o-1" already names another '
        "event (seq 1, an order.placed with other data)" in out.stderr
        and '"rejected":1' in out.stdout and '"duplicates":0' in out.stdout,
        "import refuses another event under an imported id: %s %r %r" % (out.returncode, out.stderr,
                                                                         out.stdout))

# a folder a setting names that cannot be read: the message says why; one
# without journey files is said to hold none (it said "0 journeys ok", exit 0)
missing = os.path.join(tmp, "no-such-folder")
empty = os.path.join(tmp, "no-journeys")
os.makedirs(empty, exist_ok=True)
with open(os.path.join(empty, "review.yaml.off"), "w") as f:
    f.write("journey: off\n")
for argv, env, words in (
        (["journeys", "check", missing], {}, ["journeys folder %s cannot be read: No such file" % missing]),
        (["journeys", "check", empty], {}, ["%s holds no journey files (expected *.yaml or *.yml)" % empty]),
        (["journeys", "check", os.path.join(root, "etc", "journeys")], {"CONSONANCE_TEMPLATES": missing},
         ["templates folder %s cannot be read: No such file" % missing]),
        (["journeys", "messages", "K-1"], {"CONSONANCE_CARRIERS": conf_path},
         ["carriers folder %s cannot be read: Not a directory" % conf_path])):
    out = run(*argv, env=dict({"CONSONANCE_STORE": store}, **env))
    t.check(out.returncode == 1 and all(w in out.stderr for w in words),
            "%s: %s %r" % (words[0], out.returncode, out.stderr[-300:]))

# a bad setting in the file: exit 2, naming the file, the line and the key
conf = os.path.join(tmp, "bad.conf")
with open(conf, "w") as f:
    f.write("# a comment\nport = eighty\n")
for argv in (["serve", "--config", conf], ["import", "--config", conf, "ndjson", "-"],
             ["demo", "--config", conf, "--customers", "1"], ["apikey", "--config", conf, "list"],
             ["journeys", "--config", conf, "list"]):
    out = run(*argv, env={"CONSONANCE_STORE": store}, timeout=10)
    t.check(out.returncode == 2 and "%s:2: port: expected a port number" % conf in out.stderr,
            "%s with a bad config file: exit 2: %s %r" % (argv[0], out.returncode, out.stderr[-300:]))
# a key set twice: exit 2, naming both lines (the last one does not win in silence)
with open(conf, "w") as f:
    f.write("port = 8081\nhost = 127.0.0.1\nport = 8082\n")
out = run("apikey", "--config", conf, "list", env={"CONSONANCE_STORE": store}, timeout=10)
t.check(out.returncode == 2 and "%s:3: port: set twice, on line 1 and on line 3" % conf in out.stderr
        and not out.stdout, "a key set twice: exit 2: %s %r" % (out.returncode, out.stderr[-300:]))

# outbound webhooks alone send JSON, no messages: no templates folder is
# needed (serve asked for one)
d = csbb.Daemon(a.bin, extra_env={"CONSONANCE_WEBHOOK_SECRET": "0123456789abcdef"})
try:
    d.start()
    t.check("webhooks on" in d.read_log(), "serve with webhook_secret alone sends webhooks: %r"
            % d.read_log()[-300:])
    t.eq(d.stop(), 0, "... and stops cleanly")
except RuntimeError as e:
    t.check(False, "serve with webhook_secret alone and no templates starts: %s" % str(e)[-300:])
finally:
    d.cleanup()

# ---- the daemon on the shipped example file; SIGHUP ----
# the environment overrides the file (a free port, a store of its own)
d = csbb.Daemon(a.bin, config=os.path.join(root, "etc", "consonance.conf"))
try:
    d.start()
    d.proc.send_signal(signal.SIGHUP)
    t.wait_for(lambda: "SIGHUP" in d.read_log(), "SIGHUP logged")
    st, _, body = d.request("GET", "/healthz", key=False)
    t.eq((st, d.proc.poll()), (200, None), "the daemon runs on after SIGHUP")
    t.check("restart to apply" in d.read_log(), "SIGHUP says a restart applies changes")
    t.eq(d.stop(), 0, "SIGTERM exits 0")
finally:
    d.cleanup()

shutil.rmtree(tmp, ignore_errors=True)
t.done()
