"""Readiness checks: `/ready` runs every registered check and answers 200 only if all pass.

A check is an async callable taking no argument that returns normally when its dependency is
usable and raises otherwise (the exception's message becomes the check's detail, so it must
not contain personal data or secrets). Register checks on the app's `Readiness` (in the
Litestar lifespan: `app.state.bridge.readiness.add("upstream", check)`); the bridge
registers `database` (reachable, migrations at head) itself. Each check runs with a timeout;
all run concurrently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

ReadinessCheck = Callable[[], Awaitable[None]]


class NotReadyError(Exception):
    """Raised by a check to say why its dependency is not usable (no personal data)."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    seconds: float


@dataclass(slots=True)
class Readiness:
    """The registered checks of one app."""

    timeout_s: float = 3.0
    _checks: dict[str, ReadinessCheck] = field(default_factory=dict)

    def add(self, name: str, check: ReadinessCheck) -> None:
        """Register (or replace) the check called `name`."""
        self._checks[name] = check

    def remove(self, name: str) -> None:
        self._checks.pop(name, None)

    @property
    def names(self) -> list[str]:
        return list(self._checks)

    async def run(self) -> list[CheckResult]:
        """Run every check concurrently; a check that raises or times out fails."""
        return list(await asyncio.gather(*(self._one(n, c) for n, c in self._checks.items())))

    async def _one(self, name: str, check: ReadinessCheck) -> CheckResult:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(check(), self.timeout_s)
        except TimeoutError:
            return CheckResult(name, False, f"no answer within {self.timeout_s} s", _since(started))
        except Exception as exc:  # any failure means "not ready", with its reason
            detail = str(exc) or type(exc).__name__
            return CheckResult(name, False, detail[:200], _since(started))
        return CheckResult(name, True, "ok", _since(started))


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 4)
