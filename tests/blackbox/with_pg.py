#!/usr/bin/env python3
"""Run a command against a throwaway PostgreSQL cluster.

    with_pg.py PROGRAM ARGS...

Starts a cluster (Debian's PostgreSQL binaries, a temporary folder, a free
port), replaces "{pg}" in the arguments by its connection URI (database
`postgres`, user `consonance`) and puts it in CS_TEST_PG (the unit tests'
tests/unit/test_store.h), runs the program and stops the cluster.
Exits with the program's status; with 77 (skipped) when PostgreSQL is not
installed, unless CI=true, where that is a failure.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import csbb  # noqa: E402


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    pg = csbb.PgCluster()
    if not pg.bin:
        if os.environ.get("CI") == "true":
            print("with_pg: PostgreSQL is not installed (scripts/install-deps.sh installs it)",
                  file=sys.stderr)
            return 1
        print("SKIP: PostgreSQL is not installed (scripts/install-deps.sh installs it)")
        return 77
    pg.start()
    try:
        args = [a.replace("{pg}", pg.url()) for a in sys.argv[1:]]
        env = dict(os.environ, CS_TEST_PG=pg.url())
        return subprocess.run(args, env=env).returncode
    finally:
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
