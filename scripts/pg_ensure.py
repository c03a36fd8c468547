"""Make sure a PostgreSQL server answers at a URL, starting the local one if it is down.

    python scripts/pg_ensure.py URL [--pgdata DIR] [--pg-bin DIR] [--wait SECONDS]
    python scripts/pg_ensure.py URL --show-start     # print the start commands, run nothing

Exit status 0 when the server answers (now or after the start), 1 when it does not.
How it starts a server that is down:
- `--pgdata DIR`: `pg_ctl -D DIR start` (the binaries from `--pg-bin`, else the newest
  /usr/lib/postgresql/*/bin, else PATH). Run as the data directory's owner when we are root,
  as PostgreSQL refuses to run as root.
- otherwise: `pg_ctlcluster VERSION NAME start` for each local cluster (`pg_lsclusters`,
  Debian/Ubuntu) configured on the URL's port, so a server on another port is left alone.

`scripts/test` calls it for the test server; tests/e2e/test_ops_pg_autostart.py runs it
against a throwaway cluster on another port.
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import shutil
import subprocess
import sys
import time
from urllib.parse import urlsplit

import psycopg


def libpq_url(url: str) -> str:
    """The URL as libpq reads it (SQLAlchemy's `postgresql+psycopg://` made plain)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def answers(url: str) -> bool:
    try:
        psycopg.connect(libpq_url(url), connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


def url_port(url: str) -> int:
    return urlsplit(libpq_url(url)).port or 5432


def pg_ctl_path(pg_bin: str | None) -> str | None:
    if pg_bin:
        return os.path.join(pg_bin, "pg_ctl")
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return found[-1] if found else shutil.which("pg_ctl")


def start_commands(url: str, pgdata: str | None, pg_bin: str | None) -> list[list[str]]:
    """The commands that start the server behind `url` (empty: nothing known to start)."""
    if pgdata:
        pg_ctl = pg_ctl_path(pg_bin)
        if pg_ctl is None:
            return []
        log = os.path.join(pgdata, "pg_ensure.log")
        command = [pg_ctl, "-D", pgdata, "-l", log, "-w", "-t", "30", "start"]
        if os.geteuid() == 0:
            owner = pwd.getpwuid(os.stat(pgdata).st_uid).pw_name
            if owner != "root":
                command = ["runuser", "-u", owner, "--", *command]
        return [command]
    lsclusters, ctlcluster = shutil.which("pg_lsclusters"), shutil.which("pg_ctlcluster")
    if lsclusters is None or ctlcluster is None:
        return []
    listing = subprocess.run(  # noqa: S603 (fixed arguments)
        [lsclusters, "--no-header"], capture_output=True, text=True, check=False
    ).stdout
    port = url_port(url)
    commands = []
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == str(port):
            version, name = fields[0], fields[1]
            commands.append([ctlcluster, "--skip-systemctl-redirect", version, name, "start"])
    return commands


def ensure(url: str, pgdata: str | None, pg_bin: str | None, wait_s: float) -> bool:
    if answers(url):
        return True
    where = urlsplit(libpq_url(url))
    print(
        f"PostgreSQL is not answering at {where.hostname}:{url_port(url)}; "
        "trying to start the local server ...",
        file=sys.stderr,
    )
    commands = start_commands(url, pgdata, pg_bin)
    if not commands:
        print("no local PostgreSQL server is configured on that port", file=sys.stderr)
    for command in commands:
        print("+ " + " ".join(command), file=sys.stderr)
        subprocess.run(command, check=False)  # noqa: S603 (the operator's own cluster tools)
    deadline = time.monotonic() + wait_s
    while True:
        if answers(url):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("url")
    parser.add_argument("--pgdata", help="data directory to start with pg_ctl")
    parser.add_argument("--pg-bin", help="directory of pg_ctl (default: newest installed)")
    parser.add_argument("--wait", type=float, default=20.0, help="seconds to wait after start")
    parser.add_argument("--show-start", action="store_true", help="print start commands only")
    args = parser.parse_args(argv)
    if args.show_start:
        for command in start_commands(args.url, args.pgdata, args.pg_bin):
            print(" ".join(command))
        return 0
    return 0 if ensure(args.url, args.pgdata, args.pg_bin, args.wait) else 1


if __name__ == "__main__":
    sys.exit(main())
