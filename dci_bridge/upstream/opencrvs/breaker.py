"""A small circuit breaker: after N consecutive upstream failures, fail fast for a while.

Closed: calls pass; each failure counts, a success resets the count. Open (after
`failures` in a row): calls fail at once with `UpstreamError` until `reset_s` has passed.
Half-open: one trial call passes; its success closes the breaker, its failure re-opens it.
Time comes from a monotonic function (injectable for tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dci_bridge.errors import UpstreamError


class CircuitOpenError(UpstreamError):
    """OpenCRVS failed repeatedly; calls are refused until the breaker's reset time."""


class CircuitBreaker:
    def __init__(
        self, failures: int, reset_s: float, *, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = failures
        self._reset_s = reset_s
        self._now = now
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._now() - self._opened_at >= self._reset_s:
            return "half-open"
        return "open"

    def before(self) -> None:
        """Call before an upstream call; raises `CircuitOpenError` while open."""
        state = self.state
        if state == "open" or (state == "half-open" and self._trial):
            raise CircuitOpenError("OpenCRVS is unavailable (circuit breaker open)")
        if state == "half-open":
            self._trial = True

    def success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial = False

    def failure(self) -> None:
        self._trial = False
        self._failures += 1
        if self._opened_at is not None or self._failures >= self._threshold:
            self._opened_at = self._now()
