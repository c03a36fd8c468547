"""Run an ASGI app under a real uvicorn server on a loopback port, in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import uvicorn

_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free loopback port never handed out before in this test run. A server started on
    a stopped one's port would meet what clients kept of the stopped one: a cached access
    token signed with other keys was refused (401 "unknown key id")."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the main thread keeps its handlers
        pass


@contextlib.contextmanager
def serve_asgi(app: Any, *, port: int | None = None, timeout_s: float = 20.0) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 until the block ends; yields the base URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", access_log=False
    )
    server = _ThreadServer(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("test server failed to start")
        if time.monotonic() > deadline:
            raise TimeoutError("test server did not start in time")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)


def wait_until_serving(
    url: str,
    proc: subprocess.Popen[Any],
    *,
    timeout_s: float = 180.0,
    exited: Callable[[], str] | None = None,
) -> None:
    """Poll `url` (a started bridge's `/ready` or `/health`) until it answers 200.

    Fails at once if `proc` exits (with `exited()`, e.g. the end of its log, in the
    message), and after `timeout_s`: generous, because importing the app on a loaded 2-core
    machine has taken a minute.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            detail = exited() if exited is not None else ""
            raise RuntimeError(f"the process exited with {proc.returncode} {detail}".strip())
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout_s:g} s")
        time.sleep(0.1)


def stop_process(proc: subprocess.Popen[Any], *, grace_s: float = 30.0) -> None:
    """SIGTERM `proc` (if it still runs) and wait up to `grace_s` for its clean shutdown;
    then SIGKILL it."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
