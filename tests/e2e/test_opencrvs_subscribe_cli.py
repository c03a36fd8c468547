"""`dci-bridge opencrvs subscribe | webhooks | unsubscribe` against the OpenCRVS simulator and a
live bridge, over real loopback HTTP: the simulator's handshake reaches the bridge, topics
already subscribed are not subscribed twice, and every failure is a clear message."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from dci_bridge.api.app import create_app
from dci_bridge.cli import main
from dci_bridge.db.engine import create_sync_engine, migrate
from dci_bridge.registry.ingest import inbox_table
from dci_bridge.settings import Settings
from tests.servers import free_port, serve_asgi
from tests.simulators import WEBHOOK_CLIENT, RunningSimulator, running_simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(persons=60) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_sim_subscriptions(sim: RunningSimulator) -> Iterator[None]:
    yield
    sim.app.hub.subscriptions.clear()


@pytest.fixture
def bridge_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A bridge whose webhook receiver knows the WEBHOOK integration's sha_secret."""
    settings = Settings.from_env(
        {
            "DCI_BRIDGE_DATABASE__URL": database_url,
            "DCI_BRIDGE_DATA_DIR": str(tmp_path),
            "DCI_BRIDGE_OPENCRVS_WEBHOOK__SHA_SECRET": WEBHOOK_CLIENT.sha_secret,
            "DCI_BRIDGE_DELIVERY__WORKER": "false",
        }
    )
    migrate(database_url)
    with serve_asgi(create_app(settings)) as base:
        yield base


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("DCI_BRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DCI_BRIDGE_DATA_DIR", str(tmp_path))
    return CliRunner()


def _args(
    sim_url: str, *, secret: str = WEBHOOK_CLIENT.client_secret, webhooks_url: str | None = None
) -> list[str]:
    return [
        "--auth-url",
        sim_url,
        "--webhooks-url",
        webhooks_url or sim_url,
        "--client-id",
        WEBHOOK_CLIENT.client_id,
        "--client-secret",
        secret,
        "--timeout",
        "5",
    ]


def _subscribe(
    runner: CliRunner,
    sim_url: str,
    callback: str,
    *extra: str,
    sha_secret: str = WEBHOOK_CLIENT.sha_secret,
    **kw: str,
) -> Result:
    return runner.invoke(
        main,
        [
            "opencrvs",
            "subscribe",
            *_args(sim_url, **kw),
            "--callback",
            callback,
            "--sha-secret",
            sha_secret,
            *extra,
        ],
    )


def _rows(output: str) -> dict[str, list[str]]:
    rows = [line.split("\t") for line in output.splitlines() if "\t" in line]
    return {row[0]: row[1:] for row in rows}


def test_subscribe_lists_first_and_never_duplicates(
    runner: CliRunner, sim: RunningSimulator, bridge_url: str, database_url: str
) -> None:
    callback = f"{bridge_url}/opencrvs/webhooks"
    first = _subscribe(runner, sim.url, callback, "--topic", "BIRTH_REGISTERED")
    assert first.exit_code == 0, first.output
    assert _rows(first.output)["BIRTH_REGISTERED"][0] == "subscribed"

    # the default topics: birth is already there, only death is new
    second = _subscribe(runner, sim.url, callback)
    assert second.exit_code == 0, second.output
    rows = _rows(second.output)
    assert rows["BIRTH_REGISTERED"][0] == "already subscribed"
    assert rows["DEATH_REGISTERED"][0] == "subscribed"
    again = _subscribe(runner, sim.url, callback)
    assert {row[0] for row in _rows(again.output).values()} == {"already subscribed"}

    subs = sim.app.hub.subscriptions
    assert sorted(s.topic for s in subs) == ["BIRTH_REGISTERED", "DEATH_REGISTERED"]
    assert {s.callback for s in subs} == {callback}
    assert {row[1] for row in _rows(again.output).values()} == {s.id for s in subs}

    # the subscription works: a registration reaches the bridge, signed with the sha_secret
    answer = httpx.post(f"{sim.url}/_sim/register", json={"event": "birth"}, timeout=10)
    assert answer.status_code == 201
    assert [d["status"] for d in answer.json()["deliveries"]] == [202]
    engine = create_sync_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(inbox_table)).scalar_one()
        assert count == 1
    finally:
        engine.dispose()


def test_webhooks_lists_and_unsubscribe_deletes(
    runner: CliRunner, sim: RunningSimulator, bridge_url: str
) -> None:
    callback = f"{bridge_url}/opencrvs/webhooks"
    assert _subscribe(runner, sim.url, callback).exit_code == 0
    listed = runner.invoke(main, ["opencrvs", "webhooks", *_args(sim.url)])
    assert listed.exit_code == 0, listed.output
    rows = _rows(listed.output)
    assert sorted(row[0] for row in rows.values()) == ["BIRTH_REGISTERED", "DEATH_REGISTERED"]
    victim = next(iter(rows))
    gone = runner.invoke(main, ["opencrvs", "unsubscribe", *_args(sim.url), victim])
    assert gone.exit_code == 0, gone.output
    assert victim not in {s.id for s in sim.app.hub.subscriptions}
    missing = runner.invoke(main, ["opencrvs", "unsubscribe", *_args(sim.url), victim])
    assert missing.exit_code == 1
    assert "has no webhook subscription" in missing.output
    # re-subscribing fills in only the topic that was deleted
    refill = _rows(_subscribe(runner, sim.url, callback).output)
    assert sorted(row[0] for row in refill.values()) == ["already subscribed", "subscribed"]
    assert len(sim.app.hub.subscriptions) == 2


def test_wrong_credentials_are_reported(
    runner: CliRunner, sim: RunningSimulator, bridge_url: str
) -> None:
    result = _subscribe(
        runner, sim.url, f"{bridge_url}/opencrvs/webhooks", secret="00000000-0000-4000-8000-0"
    )
    assert result.exit_code == 1
    assert "refused the system client credentials (HTTP 401)" in result.output
    assert "Traceback" not in result.output
    assert sim.app.hub.subscriptions == []


def test_wrong_sha_secret_is_denied(
    runner: CliRunner, sim: RunningSimulator, bridge_url: str
) -> None:
    result = _subscribe(
        runner, sim.url, f"{bridge_url}/opencrvs/webhooks", sha_secret="not-the-secret"
    )
    assert result.exit_code == 1
    assert "OpenCRVS denied it: hub.secret is incorrect" in result.output
    assert sim.app.hub.subscriptions == []


def test_unreachable_callback_fails_the_handshake(runner: CliRunner, sim: RunningSimulator) -> None:
    callback = f"http://127.0.0.1:{free_port()}/opencrvs/webhooks"
    result = _subscribe(runner, sim.url, callback)
    assert result.exit_code == 1
    assert f"could not verify the callback {callback}" in result.output
    assert sim.app.hub.subscriptions == []


def test_upstream_down_is_reported(runner: CliRunner) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    result = _subscribe(runner, down, "http://127.0.0.1:8000/opencrvs/webhooks")
    assert result.exit_code == 1
    assert "OpenCRVS auth service is unreachable" in result.output
    assert "Traceback" not in result.output


def test_webhooks_service_down_is_reported(runner: CliRunner, sim: RunningSimulator) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(main, ["opencrvs", "webhooks", *_args(sim.url, webhooks_url=down)])
    assert result.exit_code == 1
    assert f"OpenCRVS webhooks service at {down}/webhooks is unreachable" in result.output


def test_missing_credentials_are_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["opencrvs", "subscribe", "--sha-secret", "x"])
    assert result.exit_code == 2
    assert "--client-id and --client-secret" in result.output


def test_callback_defaults_to_the_configured_url(
    runner: CliRunner, sim: RunningSimulator, bridge_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    callback = f"{bridge_url}/opencrvs/webhooks"
    monkeypatch.setenv("DCI_BRIDGE_OPENCRVS_WEBHOOK__CALLBACK_URL", callback)
    monkeypatch.setenv("DCI_BRIDGE_OPENCRVS_WEBHOOK__SHA_SECRET", WEBHOOK_CLIENT.sha_secret)
    monkeypatch.setenv("DCI_BRIDGE_OPENCRVS_WEBHOOK__CLIENT_ID", WEBHOOK_CLIENT.client_id)
    monkeypatch.setenv("DCI_BRIDGE_OPENCRVS_WEBHOOK__CLIENT_SECRET", WEBHOOK_CLIENT.client_secret)
    monkeypatch.setenv("DCI_BRIDGE_UPSTREAM__AUTH_URL", sim.url)
    monkeypatch.setenv("DCI_BRIDGE_UPSTREAM__WEBHOOKS_URL", sim.url)
    result = runner.invoke(main, ["opencrvs", "subscribe", "--topic", "death_registered"])
    assert result.exit_code == 0, result.output
    assert f"callback {callback}" in result.output
    assert [(s.topic, s.callback) for s in sim.app.hub.subscriptions] == [
        ("DEATH_REGISTERED", callback)
    ]
