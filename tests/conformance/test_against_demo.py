"""`dci-conformance run` against `dci-bridge demo`, both as real processes, as a user runs them.

The demo starts on a temporary data directory with a small population. The tester then does
what docs/conformance.md ("Testing the demo") tells a user to do: generate its key, register
itself with `dci-bridge clients add` and give itself the `unrestricted` policy (the demo
client's policy allows identifier look-ups only, so predicate search, pagination and sorting
would be refused, rightly), and run the whole registry profile, writing the four reports.
A second, shorter run uses the demo client's printed secret and key file as they are.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from tests.servers import free_port, stop_process, wait_until_serving

pytestmark = pytest.mark.slow

TESTER = "dci-conformance.example.org"
SKIPS_WITH_NOTIFY_TRIGGER = {
    "DCI-SIG-017": "signature_scheme is not dci-signature",  # the run signs with JWS
    "DCI-SEARCH-005": "query_graphql",  # optional, off by default
    "DCI-ASYNC-012": "query_graphql",
}
"""What the full demo run may skip, with the reason. The notify cases run: the demo's own
simulated OpenCRVS (port + 1) registers a birth on `/_sim/register` and sends its webhook."""


@dataclass
class Demo:
    base: str
    simulator: str
    receiver_port: int
    data_dir: Path
    output: Path
    env: dict[str, str]

    def printed(self, pattern: str) -> str:
        found = re.search(pattern, self.output.read_text(encoding="utf-8"))
        assert found, f"the demo did not print {pattern!r}"
        return found.group(1)


def _run(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("demo")
    port, receiver_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCI_BRIDGE_")}
    env.update(
        DCI_BRIDGE_DATA_DIR=str(root / "data"),
        # the suite's receiver instead of the demo's `dci-bridge receiver` on port 9000
        DCI_BRIDGE_DELIVERY__CALLBACK_PREFIXES=f"http://127.0.0.1:{receiver_port}/",
        DCI_BRIDGE_DELIVERY__ALLOW_PRIVATE_ADDRESSES="true",
    )
    output = root / "demo.out"
    with output.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dci_bridge", "demo", "--port", str(port), "--persons", "300"],
            env=env,
            cwd=root,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(
            f"{base}/ready", proc, exited=lambda: output.read_text(encoding="utf-8")[-3000:]
        )
        # the demo subscribes its webhook at the simulator in the background once it serves
        deadline = time.monotonic() + 180
        while "# notify demo: the simulated OpenCRVS sends" not in output.read_text("utf-8"):
            assert proc.poll() is None, output.read_text(encoding="utf-8")[-3000:]
            assert time.monotonic() < deadline, "the demo did not subscribe its webhook"
            time.sleep(0.2)
        simulator = f"http://127.0.0.1:{port + 1}"
        yield Demo(base, simulator, receiver_port, root / "data", output, env)
    finally:
        stop_process(proc)


def _existing_brn(demo: Demo) -> str:
    request = Path(demo.printed(r"# search by BRN: (\S+)"))
    body = json.loads(request.read_text(encoding="utf-8"))
    value: str = body["message"]["search_request"][0]["search_criteria"]["query"]["value"]
    return value


def _config(
    demo: Demo, path: Path, *, sender_id: str, key_file: Path, secret: str, notify: bool = False
) -> Path:
    trigger = (
        f"""
[notify]
trigger_url = "{demo.simulator}/_sim/register"
trigger_json = {{ event = "birth" }}
"""
        if notify
        else ""
    )
    path.write_text(
        f"""
[identity]
sender_id = "{sender_id}"
key_file = "{key_file}"

[auth]
client_id = "{sender_id}"
client_secret = "{secret}"

[receiver]
port = {demo.receiver_port}

[data]
existing_identifier = {{ type = "BRN", value = "{_existing_brn(demo)}" }}
"""
        + trigger,
        encoding="utf-8",
    )
    return path


def test_the_whole_registry_profile_passes_against_the_demo(demo: Demo, tmp_path: Path):
    keys = _run(
        demo.env, "-m", "conformance", "keys", "generate", "--out", "tester.jwk", cwd=tmp_path
    )
    assert keys.returncode == 0, keys.stderr
    (tmp_path / "tester-jwks.json").write_text(keys.stdout, encoding="utf-8")
    added = _run(
        demo.env,
        *("-m", "dci_bridge", "clients", "add", TESTER, "--jwks", "tester-jwks.json", "--json"),
        cwd=tmp_path,
    )
    assert added.returncode == 0, added.stderr
    secret = json.loads(added.stdout)["client_secret"]
    policy = _run(
        demo.env,
        *("-m", "dci_bridge", "clients", "policy", "set", TESTER, "--preset", "unrestricted"),
        cwd=tmp_path,
    )
    assert policy.returncode == 0, policy.stderr
    config = _config(
        demo,
        tmp_path / "conformance.toml",
        sender_id=TESTER,
        key_file=tmp_path / "tester.jwk",
        secret=secret,
        notify=True,
    )

    run = _run(
        demo.env,
        *("-m", "conformance", "run", "--target", demo.base, "--config", str(config)),
        *("--junit", "junit.xml", "--json", "report.json", "--html", "report.html"),
        cwd=tmp_path,
    )

    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "CONFORMANT" in run.stdout  # the console summary
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["ok"] is True
    outcomes = {case["id"]: case for case in report["cases"]}
    failed = {i for i, c in outcomes.items() if c["outcome"] in ("failed", "error")}
    assert failed == set()
    skipped = {i: c["skip_reason"] for i, c in outcomes.items() if c["outcome"] == "skipped"}
    assert set(skipped) == set(SKIPS_WITH_NOTIFY_TRIGGER), skipped
    for case_id, reason in skipped.items():
        assert SKIPS_WITH_NOTIFY_TRIGGER[case_id] in reason, (case_id, reason)
    notify_cases = {i for i in outcomes if i.startswith("DCI-NOTIFY-")}
    assert len(notify_cases) == 5
    assert all(outcomes[i]["outcome"] == "passed" for i in notify_cases)
    assert report["totals"]["passed"] == len(outcomes) - len(skipped) > 100

    junit = ET.parse(tmp_path / "junit.xml").getroot()  # noqa: S314 - our own report
    assert junit.tag == "testsuites"
    assert sum(int(s.get("failures", "0")) for s in junit) == 0
    assert sum(int(s.get("tests", "0")) for s in junit) == len(outcomes)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "DCI-SEARCH-001" in html
    assert "<script" not in html.lower()
    for written in ("report.json", "junit.xml", "report.html"):
        assert secret not in (tmp_path / written).read_text(encoding="utf-8"), written


def test_the_demo_clients_printed_secret_and_key_work_with_the_suite(demo: Demo, tmp_path: Path):
    """The demo client as printed (its secret, its key file): signed identifier look-ups,
    sync and async, with signed answers. Its policy allows identifier look-ups only, so
    what the policy refuses (predicate queries and filters, pagination, sorting) is switched
    off."""
    secret = demo.printed(r"export DCI_CLIENT_SECRET=(\S+)")
    key_file = Path(demo.printed(r"# demo client \S+ \(key (\S+)\)"))
    sender_id = demo.printed(r"# demo client (\S+) \(key")
    config = _config(
        demo, tmp_path / "demo-client.toml", sender_id=sender_id, key_file=key_file, secret=secret
    )
    with config.open("a", encoding="utf-8") as extra:
        # the suite subscribes with a predicate filter, which this policy refuses too
        extra.write(
            "\n[features]\nquery_predicate = false\npagination = false\nsorting = false\n"
            "subscribe = false\nunsubscribe = false\n"
        )

    run = _run(
        demo.env,
        *("-m", "conformance", "run", "--target", demo.base, "--config", str(config)),
        *("--only", "DCI-SEARCH-001,DCI-ASYNC-004,DCI-SIG-00[3-9],DCI-AUTH-012"),
        *("--json", "report.json"),
        cwd=tmp_path,
    )

    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    passed = {case["id"] for case in report["cases"] if case["outcome"] == "passed"}
    assert {"DCI-SEARCH-001", "DCI-ASYNC-004", "DCI-SIG-005", "DCI-SIG-009"} <= passed
    assert {"DCI-SIG-003", "DCI-AUTH-012"} <= passed
