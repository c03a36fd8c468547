"""`dci-bridge demo` shows the whole notify loop, and the commands it prints work as printed:
real processes (the demo bridge, the OpenCRVS simulator it starts, `dci-bridge receiver`),
the printed shell lines run by bash, a simulated registration reaching the receiver as a
signed DCI notify."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers import free_port, stop_process

_READERS: dict[int, threading.Thread] = {}


class Output:
    """The lines a process prints, collected by a thread (pipes must not fill up)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        stream = process.stdout
        self.reader = threading.Thread(
            target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True
        )
        self.reader.start()

    def wait_for(self, check: Callable[[str], bool], *, timeout_s: float, what: str) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if check(line):
                    return line
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; output:\n{''.join(self.lines)}")


def _port_pair() -> int:
    """A free port whose successor is free too (the demo starts the simulator on port + 1)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DCI_BRIDGE_")}
    clean["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}"
    clean["PYTHONUNBUFFERED"] = "1"
    clean["DCI_BRIDGE_DATA_DIR"] = str(tmp_path / "data")
    return clean


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in reversed(started):
        stop_process(process, grace_s=20)
        if process.stdout is not None:
            _READERS[process.pid].join(timeout=10)
            process.stdout.close()


def _start(args: list[str], env: dict[str, str], processes: list[subprocess.Popen[str]]) -> Output:
    process = subprocess.Popen(
        [sys.executable, "-m", "dci_bridge", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    processes.append(process)
    output = Output(process)
    _READERS[process.pid] = output.reader
    return output


def _bash(script: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        ["/bin/bash", "-euo", "pipefail", "-c", script],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_demo_prints_a_working_notify_loop(
    env: dict[str, str], processes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    receiver_port = free_port()
    env["DCI_BRIDGE_DELIVERY__CALLBACK_PREFIXES"] = f"http://127.0.0.1:{receiver_port}/"
    env["DCI_BRIDGE_DELIVERY__ALLOW_PRIVATE_ADDRESSES"] = "true"
    for _ in range(3):  # another test on this machine may take port + 1 meanwhile: retry
        port = _port_pair()
        demo = _start(["demo", "--port", str(port), "--persons", "100"], env, processes)
        done = demo.wait_for(
            lambda line: "notify demo" in line, timeout_s=240, what="the webhook registration"
        )
        if "notify demo skipped" not in done:
            break
        processes[-1].terminate()
    else:
        pytest.fail("the demo could not start its OpenCRVS simulator three times")
    receiver = _start(
        [
            "receiver",
            "--port",
            str(receiver_port),
            "--jwks-url",
            f"http://127.0.0.1:{port}/.well-known/jwks.json",
        ],
        env,
        processes,
    )
    receiver.wait_for(lambda line: "receiving callbacks" in line, timeout_s=60, what="receiver")
    if "notify demo:" not in done:
        done = demo.wait_for(lambda line: "notify demo:" in line, timeout_s=240, what="webhook")
    assert any("BIRTH_REGISTERED subscribed" in line for line in demo.lines), demo.lines
    printed = [line.rstrip("\n") for line in demo.lines]

    def command(start: str, *contains: str) -> str:
        found = [
            line for line in printed if line.startswith(start) and all(c in line for c in contains)
        ]
        assert found, f"the demo printed no `{start}` line with {contains}:\n" + "\n".join(printed)
        return found[0]

    # 1. by hand, the registration lists first and subscribes nothing twice
    again = _bash(command("dci-bridge opencrvs subscribe"), env, tmp_path)
    assert "BIRTH_REGISTERED\talready subscribed" in again
    assert "DEATH_REGISTERED\talready subscribed" in again

    # 3. token, signed subscribe request, as printed
    script = "\n".join(
        [
            command("export DCI_CLIENT_SECRET="),
            command("TOKEN=$(curl"),
            command("dci-bridge sign-request", "subscribe-births.json"),
            command("curl -s", "/registry/subscribe"),
        ]
    )
    ack = _bash(script, env, tmp_path)
    assert '"ack_status":"ACK"' in ack.replace(" ", "")
    receiver.wait_for(
        lambda line: "action=on-subscribe" in line and "signature valid" in line,
        timeout_s=60,
        what="on-subscribe at the receiver",
    )

    # 4. a simulated registration becomes a signed notify at the receiver
    fired = _bash(command("curl -s -X POST", "/_sim/register"), env, tmp_path)
    assert '"status":202' in fired.replace(" ", "")
    line = receiver.wait_for(
        lambda line: "action=notify" in line, timeout_s=60, what="the notify at the receiver"
    )
    assert "signature valid" in line
    assert "items=1" in line
