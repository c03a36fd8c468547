"""`dci-bridge policy ...` against a real SQLite store; the example policy files parse."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from dci_bridge.cli import main
from dci_bridge.cli.policy import DEMO_POLICY, DEMO_SENDER, demo_policy
from dci_bridge.registry.policy import parse_policy
from dci_bridge.registry.policy_store import PolicyStore
from dci_bridge.settings import Settings

DOCS = Path(__file__).resolve().parents[3] / "docs" / "policies"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "DCI_BRIDGE_DATABASE__URL": f"sqlite:///{tmp_path / 'store.sqlite3'}",
        "DCI_BRIDGE_DATA_DIR": str(tmp_path / "data"),
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    # only our settings: the test runner's own DCI_BRIDGE_* variables are not settings
    clean: dict[str, str | None] = {k: None for k in os.environ if k.startswith("DCI_BRIDGE_")}
    result = CliRunner().invoke(main, list(args), env={**clean, **env}, catch_exceptions=False)
    return result.exit_code, result.output


def test_set_show_list_clear(env: dict[str, str]):
    assert run(env, "policy", "list") == (0, "no policies: every sender is refused\n")
    code, out = run(env, "policy", "set", "pension.example.org", str(DOCS / "pension.json"))
    assert (code, out) == (0, "policy of pension.example.org set (revision 1)\n")
    code, out = run(env, "policy", "show", "pension.example.org")
    assert code == 0
    assert "returns fields: death_date" in out
    assert "returns answers: is_deceased" in out
    code, out = run(env, "policy", "show", "pension.example.org", "--json")
    assert json.loads(out)["fields"] == ["death_date"]
    code, out = run(env, "policy", "set", "pension.example.org", "--preset", "unrestricted")
    assert "revision 2" in out
    code, out = run(env, "policy", "list")
    assert out.startswith("pension.example.org\trevision 2")
    assert run(env, "policy", "clear", "pension.example.org")[0] == 0
    code, out = run(env, "policy", "show", "pension.example.org")
    assert code == 1
    assert "has no policy: it is refused" in out
    assert run(env, "policy", "clear", "pension.example.org")[0] == 1


def test_set_refuses_bad_input(env: dict[str, str], tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"fields": ["salary"]}')
    code, out = run(env, "policy", "set", "sp", str(bad))
    assert code == 1
    assert "unknown CRVS_Person field path 'salary'" in out
    code, out = run(env, "policy", "set", "sp")
    assert code == 2
    assert "give a policy FILE or --preset" in out
    assert run(env, "policy", "list")[1] == "no policies: every sender is refused\n"


@pytest.mark.parametrize("path", sorted(DOCS.glob("*.json")), ids=lambda p: p.name)
def test_example_policies_are_valid(path: Path):
    parse_policy(path.read_bytes())


def test_demo_step_sets_the_documented_demo_policy(env: dict[str, str]):
    assert json.loads((DOCS / "demo.json").read_text()) == DEMO_POLICY
    settings = Settings.from_env(env)
    run(env, "policy", "list")  # migrates the store
    lines = demo_policy(settings)
    assert DEMO_SENDER in lines[0]
    store = PolicyStore.from_url(settings.database_url)
    try:
        stored = store.get(DEMO_SENDER)
    finally:
        store.close()
    assert stored is not None
    assert stored.policy == parse_policy(DEMO_POLICY)
