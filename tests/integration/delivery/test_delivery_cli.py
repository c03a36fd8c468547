"""`dci-bridge deliveries` and `dci-bridge receiver` (the receiver's request handling)."""

from __future__ import annotations

import json
import os

import msgspec
import pytest
from click.testing import CliRunner

from dci_bridge.cli import main
from dci_bridge.cli.receiver import KeySource, describe
from dci_bridge.db.engine import begin_write
from dci_bridge.delivery import outbox
from dci_bridge.delivery.worker import Worker, envelope_bytes
from dci_bridge.settings import DeliverySettings
from tests.integration.delivery.test_delivery_worker import callback

pytestmark = pytest.mark.anyio


@pytest.fixture
def cli(database_url, monkeypatch):
    for name in list(os.environ):
        if name.startswith("DCI_BRIDGE_"):  # the test runner's own variables are no settings
            monkeypatch.delenv(name)
    monkeypatch.setenv("DCI_BRIDGE_DATABASE__URL", database_url)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, ["deliveries", *args])
        assert result.exit_code == 0, result.output
        return result.output

    return run


async def test_list_show_replay_purge(engine, clock, signer, receiver, cli):
    app, base = receiver
    app.status = 410
    with begin_write(engine) as conn:
        [job_id] = outbox.enqueue(conn, callback(f"{base}/cb"), now=clock.now())
    worker = Worker(
        engine, DeliverySettings(allow_private_addresses=True), clock=clock, signer=signer
    )
    try:
        await worker.run_until_idle()
    finally:
        await worker.aclose()

    listed = json.loads(cli("list", "--json", "--state", "dead"))
    assert listed["counts"] == {"dead": 1}
    [job] = listed["jobs"]
    assert job["job_id"] == job_id
    assert job["last_status"] == 410
    assert job["message_id"] == "msg-1"
    assert "header" not in job  # bodies may hold personal data: never listed

    shown = json.loads(cli("show", job_id, "--json"))
    assert [a["http_status"] for a in shown["attempt_log"]] == [410]
    assert f"{job_id}  dead" in cli("list")
    assert "#1" in cli("show", job_id)

    assert "due again" in cli("replay", job_id)
    with engine.connect() as conn:
        assert outbox.count_by_state(conn) == {"pending": 1}
        conn.execute(outbox.jobs_table.update().values(state="dead"))
        conn.commit()
    assert "purged 1" in cli("purge-dead")
    assert json.loads(cli("list", "--json"))["jobs"] == []


def test_receiver_checks_signatures(keys, signer, tmp_path):
    source = KeySource(None, keys.directory)
    header = b'{"action":"on-search","status":"succ","message_id":"m-1","total_count":1}'
    message = b'{"transaction_id":"t-1","correlation_id":"c-1","search_response":[{}]}'
    body = envelope_bytes(signer.sign(msgspec.Raw(header), msgspec.Raw(message)), header, message)
    line, decoded = describe("/registry/on-search", body, source)
    assert "signature valid" in line
    assert "action=on-search" in line
    assert "items=1" in line
    assert decoded["message"]["correlation_id"] == "c-1"
    tampered = body.replace(b"t-1", b"t-2")
    assert "SIGNATURE INVALID" in describe("/x", tampered, source)[0]
    assert "not a DCI envelope" in describe("/x", b"nope", source)[0]
    assert "not checked" in describe("/x", body, KeySource(None, tmp_path / "none"))[0]


def test_demo_step_points_callbacks_at_the_local_receiver(monkeypatch, tmp_path):
    from dci_bridge.cli.receiver import async_demo
    from dci_bridge.settings import Settings

    for name in list(os.environ):
        if name.startswith("DCI_BRIDGE_"):
            monkeypatch.delenv(name)
    settings = Settings.from_env({"DCI_BRIDGE_DATA_DIR": str(tmp_path)})
    assert async_demo(settings) == []  # no demo request written yet: nothing to show
    requests = tmp_path / "demo-requests"
    requests.mkdir()
    sync_request = {
        "header": {"message_id": "m-1", "action": "search", "sender_id": "demo.sp.example.org"},
        "message": {"transaction_id": "t-1", "search_request": []},
    }
    (requests / "search-brn.json").write_text(json.dumps(sync_request))

    lines = async_demo(settings)

    assert "dci-bridge receiver --port 9000" in lines
    text = "\n".join(lines)
    assert "dci-bridge sign-request" in text
    assert "Authorization: Bearer $TOKEN" in text
    assert "/registry/search" in text
    written = json.loads((requests / "async-search-brn.json").read_text())
    assert written["header"]["sender_uri"] == "http://127.0.0.1:9000/registry/on-search"
    assert written["header"]["message_id"] != "m-1"
    assert written["message"]["transaction_id"] != "t-1"
    assert os.environ["DCI_BRIDGE_DELIVERY__CALLBACK_PREFIXES"] == "http://127.0.0.1:9000/"
    assert Settings.from_env().delivery.allow_private_addresses
