"""Black-box: the command line and its configuration, without a daemon
left running. Every command's -h and --help print its usage on stdout and
exit 0."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402

a = csbb.args()
t = csbb.Checker()
tmp = tempfile.mkdtemp(prefix="cs-cli-")
# what the tests run under must not leak in: settings come from here alone
base_env = {k: v for k, v in os.environ.items() if not k.startswith("CONSONANCE_")}


def run(*args, env=None, timeout=60):
    e = dict(base_env)
    e.update(env or {})
    return subprocess.run([a.bin, *args], capture_output=True, text=True, timeout=timeout, env=e)


# ---- -h and --help ----
for cmd in ("serve", "import", "demo", "apikey", "journeys", "promise-eval", "schema", "copy-store"):
    for flag in ("-h", "--help"):
        out = run(cmd, flag)
        t.check(out.returncode == 0 and out.stdout.startswith("usage: consonance " + cmd)
                and not out.stderr,
                "%s %s prints its usage: %s %r %r" % (cmd, flag, out.returncode, out.stdout[:80],
                                                      out.stderr[:200]))
out = run("promise-eval", "--half-life", "30", "-h")
t.check(out.returncode == 0 and out.stdout.startswith("usage:"), "promise-eval --half-life still takes a value")

shutil.rmtree(tmp, ignore_errors=True)
t.done()
