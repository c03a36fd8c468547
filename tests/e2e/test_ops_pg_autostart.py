"""scripts/pg_ensure.py, the auto-start path of scripts/test, against a throwaway cluster.

The shared test server on 5432 is never stopped: the test creates its own cluster with
initdb in a temporary directory on another loopback port, leaves it stopped, and lets the
helper start it, exactly as scripts/test does for a server that is down."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.servers import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / "scripts" / "pg_ensure.py"


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass(frozen=True)
class Cluster:
    pgdata: Path
    url: str
    bin: Path
    run_as: list[str]

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.run_as, str(self.bin / "pg_ctl"), "-D", str(self.pgdata), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )


def _answers(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.Error:
        return False
    return True


@pytest.fixture
def stopped_cluster() -> Iterator[Cluster]:
    """A fresh cluster on a free loopback port, initialised and NOT running."""
    pg_bin = _pg_bin()
    if pg_bin is None:
        pytest.skip("initdb is not installed")
    run_as: list[str] = []
    owner = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres user")
        run_as = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="dci-pg-"))
    pgdata = base / "data"
    if owner is not None:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    port = free_port()
    cluster = Cluster(pgdata, f"postgresql://postgres@127.0.0.1:{port}/postgres", pg_bin, run_as)
    try:
        init = subprocess.run(
            [
                *run_as,
                str(pg_bin / "initdb"),
                *("-D", str(pgdata), "-U", "postgres", "--auth=trust", "--no-sync"),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert init.returncode == 0, init.stderr[-2000:]
        with (pgdata / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{base}'\nfsync = off\n"
                "shared_buffers = 16MB\nmax_connections = 10\n"
            )
        yield cluster
    finally:
        if (pgdata / "postmaster.pid").exists():
            cluster.pg_ctl("stop", "-m", "immediate", "-w")
        shutil.rmtree(base, ignore_errors=True)


def _ensure(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HELPER), *args], capture_output=True, text=True, timeout=120
    )


def test_a_stopped_server_is_started_and_then_left_alone(stopped_cluster: Cluster) -> None:
    url, pgdata = stopped_cluster.url, str(stopped_cluster.pgdata)
    assert not _answers(url)

    started = _ensure(url, "--pgdata", pgdata, "--pg-bin", str(stopped_cluster.bin))
    assert started.returncode == 0, started.stderr
    assert "not answering" in started.stderr
    assert f"-D {pgdata}" in started.stderr  # the pg_ctl start it ran
    with psycopg.connect(url, connect_timeout=5) as conn:
        assert conn.execute("SHOW port").fetchone() == (url.rsplit(":", 1)[1].split("/")[0],)
    pid = (stopped_cluster.pgdata / "postmaster.pid").read_text().split()[0]

    again = _ensure(url, "--pgdata", pgdata, "--pg-bin", str(stopped_cluster.bin))
    assert again.returncode == 0
    assert again.stderr == ""  # answering: nothing started, nothing said
    assert (stopped_cluster.pgdata / "postmaster.pid").read_text().split()[0] == pid

    # a SQLAlchemy URL works the same
    assert _ensure(url.replace("postgresql://", "postgresql+psycopg://")).returncode == 0


def test_a_server_that_cannot_be_started_is_reported(stopped_cluster: Cluster) -> None:
    (stopped_cluster.pgdata / "postgresql.conf").write_text("port = 'not a port'\n")
    failed = _ensure(stopped_cluster.url, "--pgdata", str(stopped_cluster.pgdata), "--wait", "1")
    assert failed.returncode == 1
    assert "not answering" in failed.stderr
    assert not _answers(stopped_cluster.url)


def test_nothing_is_started_for_a_port_without_a_local_cluster() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    shown = _ensure(url, "--show-start")
    assert shown.returncode == 0
    assert shown.stdout == ""
    failed = _ensure(url, "--wait", "0.5")
    assert failed.returncode == 1
    assert "no local PostgreSQL server is configured on that port" in failed.stderr


@pytest.mark.skipif(shutil.which("pg_lsclusters") is None, reason="no postgresql-common")
def test_the_cluster_chosen_for_a_port_is_the_one_configured_on_it() -> None:
    """Read-only: which pg_ctlcluster command scripts/test would run for each local cluster."""
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    if not listing:
        pytest.skip("no local cluster")
    version, name, port = listing[0].split()[:3]
    shown = _ensure(f"postgresql://postgres@127.0.0.1:{port}/postgres", "--show-start")
    assert shown.returncode == 0
    assert f"--skip-systemctl-redirect {version} {name} start" in shown.stdout
    on_port = {tuple(r.split()[:2]) for r in listing if r.split()[2] == port}
    assert {tuple(line.split()[-3:-1]) for line in shown.stdout.splitlines()} == on_port
