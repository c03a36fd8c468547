"""`dci-bridge keys`, `sign-request`, `verify-response` and the demo client, against a live
bridge: a request signed by a key the CLI generated is accepted, the response verifies."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from dci_bridge.cli import main
from dci_bridge.cli.security import DEMO_CLIENT_ID, demo_client
from dci_bridge.registry.senders import SenderRegistry
from dci_bridge.settings import Settings
from tests.e2e.conftest import Bridge, envelope, item


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, bridge: Bridge) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("DCI_BRIDGE_"):  # the test runner's own variables are no settings
            monkeypatch.delenv(name)
    monkeypatch.setenv("DCI_BRIDGE_DATA_DIR", str(bridge.data_dir))
    monkeypatch.setenv("DCI_BRIDGE_DATABASE__URL", bridge.database_url)
    return CliRunner()


def _ok(result) -> str:
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def test_client_keygen_register_sign_send_verify(runner: CliRunner, bridge: Bridge, tmp_path):
    key_file = tmp_path / "client-key.json"
    enc_file = tmp_path / "client-enc.json"
    jwks = _ok(
        runner.invoke(
            main,
            ["keys", "client-keygen", "--out", str(key_file), "--encryption-out", str(enc_file)],
        )
    )
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    (tmp_path / "jwks.json").write_text(jwks)
    added = json.loads(
        _ok(
            runner.invoke(
                main,
                ["clients", "add", "cli.example.org", "--jwks", str(tmp_path / "jwks.json"),
                 "--json"],
            )
        )
    )  # fmt: skip
    # a new client learns nothing until it has a disclosure policy
    _ok(
        runner.invoke(
            main, ["clients", "policy", "set", "cli.example.org", "--preset", "unrestricted"]
        )
    )
    token = httpx.post(
        bridge.url + "/oauth2/client/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "cli.example.org",
            "client_secret": added["client_secret"],
        },
    ).json()["access_token"]
    request = envelope(item("idtype-value", {"type": "BRN", "value": "x"}))
    request["header"]["sender_id"] = "cli.example.org"
    (tmp_path / "request.json").write_text(json.dumps(request))
    jwks_url = bridge.url + "/.well-known/jwks.json"
    for extra in ([], ["--encrypt-to", jwks_url]):
        signed = _ok(
            runner.invoke(
                main,
                ["sign-request", "--key", str(key_file), "--fresh", *extra,
                 str(tmp_path / "request.json")],
            )
        )  # fmt: skip
        response = httpx.post(
            bridge.url + "/registry/sync/search",
            content=signed.strip().encode(),
            headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        (tmp_path / "response.json").write_bytes(response.content)
        verified = runner.invoke(
            main,
            ["verify-response", "--jwks", jwks_url, "--decrypt-key", str(enc_file),
             str(tmp_path / "response.json")],
        )  # fmt: skip
        answer = json.loads(_ok(verified))
        assert "signature valid (jws" in verified.stderr
        assert answer["message"]["search_response"][0]["status"] == "succ"
        assert answer["header"]["is_msg_encrypted"] is bool(extra)
    tampered = json.loads((tmp_path / "response.json").read_text())
    tampered["header"]["status"] = "rjct"
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    refused = runner.invoke(
        main, ["verify-response", "--jwks", jwks_url, str(tmp_path / "tampered.json")]
    )
    assert refused.exit_code == 1
    assert "signature NOT valid" in refused.output


def test_keys_show_and_rotate(runner: CliRunner, bridge: Bridge):
    shown = _ok(runner.invoke(main, ["keys", "show"]))
    current = shown.split("signing current: ")[1].split()[0]
    upcoming = shown.split("signing next:    ")[1].split()[0]
    jwks = json.loads(_ok(runner.invoke(main, ["keys", "show", "--jwks"])))
    assert {current, upcoming} <= {key["kid"] for key in jwks["keys"]}
    rotated = _ok(runner.invoke(main, ["keys", "rotate"]))
    assert f"current kid {upcoming}" in rotated
    after = _ok(runner.invoke(main, ["keys", "show"]))
    assert f"signing retired: {current}" in after


def test_demo_client_step_registers_and_prints_a_working_flow(bridge: Bridge, tmp_path: Path):
    settings = Settings.from_env(
        {"DCI_BRIDGE_DATA_DIR": str(tmp_path), "DCI_BRIDGE_DATABASE__URL": bridge.database_url}
    )
    requests = tmp_path / "demo-requests"
    requests.mkdir()
    request = envelope(item("idtype-value", {"type": "BRN", "value": "x"}))
    request["header"]["sender_id"] = DEMO_CLIENT_ID
    (requests / "search-brn.json").write_text(json.dumps(request))
    lines = demo_client(settings)
    again = demo_client(settings)  # a second demo run reuses the key, renews the secret
    text = "\n".join(lines)
    assert "oauth2/client/token" in text
    assert "dci-bridge sign-request" in text
    assert "dci-bridge verify-response" in text
    secret = lines[2].split("=", 1)[1].strip("'")
    assert secret not in "\n".join(again)
    registry = SenderRegistry.from_url(bridge.database_url)
    try:
        assert registry.authenticate(DEMO_CLIENT_ID, again[2].split("=", 1)[1].strip("'"))
    finally:
        registry.close()
