"""`dci-conformance` commands: output and exit codes (click's CliRunner, real loopback fakes)."""

from __future__ import annotations

import json
import stat

import pytest
from click.testing import CliRunner

from conformance.cli import main
from conformance.signing import JwksVerifier, TesterKeys, sign_envelope
from tests.conformance.fakes.harness import KEYS, SENDER_ID, fake_registry
from tests.conformance.fakes.registry import CLIENT_ID, CLIENT_SECRET


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "tester.jwk"
    path.write_text(KEYS.private_json())
    return path


def _run_args(url: str, key_file, *extra: str) -> list[str]:
    return [
        "run", "--target", url, "--sender-id", SENDER_ID, "--key-file", str(key_file),
        "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, *extra,
    ]  # fmt: skip


def test_keys_generate_prints_a_private_key_and_the_jwks_to_register(tmp_path):
    out = tmp_path / "k.json"
    result = CliRunner().invoke(main, ["keys", "generate", "--out", str(out)])
    assert result.exit_code == 0, result.output
    keys = TesterKeys.from_file(out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    jwks = json.loads(result.stdout)
    assert jwks["keys"][0]["kid"] == keys.kid
    assert "d" not in jwks["keys"][0]
    signed = sign_envelope(keys, "jws", "me", {"header": {"a": 1}, "message": {}})
    assert JwksVerifier(jwks).verify(signed) == "jws"


def test_keys_generate_without_out_prints_the_private_key_first():
    result = CliRunner().invoke(main, ["keys", "generate", "--type", "ES256"])
    assert result.exit_code == 0
    private, _, public = result.stdout.partition("}\n{")
    assert '"d":' in private
    assert '"crv": "P-256"' in private
    assert '"keys"' in public


def test_list_names_every_case_with_its_spec_section():
    result = CliRunner().invoke(main, ["list", "--markdown"])
    assert result.exit_code == 0
    assert (
        "| DCI-ENV-001 | registry | envelope | Sync search response is a schema-valid envelope |"
        in result.output
    )
    assert "| DCI-CLIENT-001 | client |" in result.output


def test_config_prints_an_example_that_loads(tmp_path):
    from conformance.config import load_config

    result = CliRunner().invoke(main, ["config"])
    path = tmp_path / "c.toml"
    path.write_text(result.output)
    assert load_config(path).target == "https://registry.example.org/dci"


def test_run_exits_0_on_a_conformant_target(key_file, tmp_path):
    junit = tmp_path / "j.xml"
    with fake_registry() as (_fake, url):
        result = CliRunner().invoke(
            main, _run_args(url, key_file, "--only", "envelope,DCI-SIG-00*", "--junit", str(junit))
        )
    assert result.exit_code == 0, result.output
    assert "CONFORMANT" in result.output
    assert junit.read_text().count("<testcase") == 13 + 9


def test_run_exits_1_when_a_case_fails(key_file):
    with fake_registry({"wrong_action"}) as (_fake, url):
        result = CliRunner().invoke(main, _run_args(url, key_file, "--only", "DCI-ENV-001", "-q"))
    assert result.exit_code == 1
    assert result.output == ""


def test_skip_leaves_cases_out(key_file, tmp_path):
    report = tmp_path / "r.json"
    with fake_registry() as (_fake, url):
        args = _run_args(
            url, key_file, "--only", "auth", "--skip", "DCI-AUTH-01*", "--json", str(report), "-q"
        )
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 0
    ran = [c["id"] for c in json.loads(report.read_text())["cases"]]
    assert ran == [f"DCI-AUTH-{n:03d}" for n in range(1, 10)]


def test_existing_id_flag_sets_the_known_identifier(key_file, tmp_path):
    report = tmp_path / "r.json"
    with fake_registry() as (_fake, url):
        args = _run_args(url, key_file, "--only", "DCI-SEARCH-001", "--json", str(report))
        result = CliRunner().invoke(main, [*args, "--existing-id", "BRN=BRN-0002", "-q"])
    assert result.exit_code == 0, result.output
    (case,) = json.loads(report.read_text())["cases"]
    assert case["outcome"] == "passed"
    assert '"BRN-0002"' in case["exchanges"][-1]["request"]["body"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run"], "no target"),
        (["run", "--target", "http://x", "--existing-id", "BRN"], "expected TYPE=VALUE"),
        (["run", "--target", "http://x", "--only", "DCI-NOPE-001"], "name no case or group"),
        (["run", "--target", "http://x", "--schemas", "/nonexistent"], "not a directory"),
        (["fuzz", "--target", "http://x", "--endpoint", "teleport"], "unknown endpoints"),
    ],
)
def test_usage_errors_exit_2(args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert message in result.output


def test_bad_config_file_names_the_field(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('target = "http://x"\n[features]\nsubscibe = false\n')
    result = CliRunner().invoke(main, ["run", "--config", str(path)])
    assert result.exit_code == 2
    assert "unknown field `subscibe`" in result.output
    assert "$.features" in result.output


def test_fuzz_reports_server_errors(key_file, tmp_path):
    report = tmp_path / "fuzz.json"
    args = [
        "fuzz", "--sender-id", SENDER_ID, "--key-file", str(key_file), "--client-id", CLIENT_ID,
        "--client-secret", CLIENT_SECRET, "--endpoint", "sync_search", "--max-examples", "15",
        "--seed", "1", "--json", str(report), "-q",
    ]  # fmt: skip
    with fake_registry({"crash_on_bad_input"}) as (_fake, url):
        crashed = CliRunner().invoke(main, [*args, "--target", url])
    with fake_registry() as (_fake, url):
        clean = CliRunner().invoke(main, [*args, "--target", url])
    assert clean.exit_code == 0, clean.output
    assert crashed.exit_code == 1
    cases = {c["id"]: c for c in json.loads(report.read_text())["cases"]}
    assert set(cases) == {"DCI-FUZZ-001", "DCI-FUZZ-002"}
    assert all(c["outcome"] == "passed" for c in cases.values())  # the clean run wrote last


def test_docs_catalogue_table_is_current():
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "conformance.md").read_text()
    table = doc.split("<!-- catalogue:start -->\n", 1)[1].split("<!-- catalogue:end -->", 1)[0]
    result = CliRunner().invoke(main, ["list", "--markdown"])
    assert table == result.output, "regenerate with `dci-conformance list --markdown`"
