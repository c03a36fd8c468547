"""A server worker's app factory freezes what it built at start out of the garbage
collector's view and collects the youngest generation less often; `server.gc_threshold=0`
keeps Python's settings. Each case runs in a fresh interpreter (the test process's own
collector must not be touched)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = (
    "import gc, json\n"
    "from dci_bridge.api.asgi import app_from_env\n"
    "before = gc.get_threshold()\n"
    "app_from_env()\n"
    "print(json.dumps({'before': before, 'after': gc.get_threshold(),"
    " 'frozen': gc.get_freeze_count()}))\n"
)


def _probe(tmp_path: Path, **settings: str) -> dict[str, list[int] | int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCI_BRIDGE_")}
    env.update(
        DCI_BRIDGE_DATABASE__URL=f"sqlite:///{tmp_path / 'store.sqlite3'}",
        DCI_BRIDGE_DATA_DIR=str(tmp_path / "data"),
        **settings,
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_worker_freezes_its_start_and_collects_less_often(tmp_path: Path) -> None:
    seen = _probe(tmp_path)
    assert seen["before"] == [700, 10, 10]
    assert seen["after"] == [10_000, 10, 10]
    assert isinstance(seen["frozen"], int)
    assert seen["frozen"] > 100_000  # the modules and the app, not a handful of objects


@pytest.mark.slow
def test_threshold_zero_keeps_pythons_collector_settings(tmp_path: Path) -> None:
    seen = _probe(tmp_path, DCI_BRIDGE_SERVER__GC_THRESHOLD="0")
    assert seen["after"] == seen["before"] == [700, 10, 10]
    assert seen["frozen"] == 0
