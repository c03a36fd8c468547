"""Per-sender request rate limits (token buckets, in process memory).

A sender's policy allows `requests_per_minute` search requests, where a request is one
search item (the standard counts the items of a batch as requests: `header.total_count`).
A bucket holds at most one minute's worth and refills continuously, so short bursts up to
the per-minute figure are allowed.

Buckets live in each server process (no database round trip on the search path). With
`policy.rate_processes` = N (replicas x workers), each process refills at 1/N of the figure,
so under an even load balancer the whole deployment allows about the policy's figure per
minute (plus one burst per process); with the default 1, every process allows the whole
figure and N processes N times it. docs/decisions.md "Disclosure policies" explains the
choice (a shared counter would cost a PostgreSQL round trip per search).
"""

from __future__ import annotations

from dataclasses import dataclass

from dci_bridge.clock import Clock
from dci_bridge.errors import TooManyRequestsError

MAX_BUCKETS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float
    rate: int


class RateLimiter:
    """Token buckets keyed by sender id; time comes from the injected clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, sender_id: str, count: int, per_minute: int, processes: int = 1) -> None:
        """Spend `count` requests of the sender's budget or raise `TooManyRequestsError`.

        The bucket holds `per_minute` and refills at `per_minute / processes` a minute."""
        now = self.clock.now().timestamp()
        refill = per_minute / max(1, processes)
        bucket = self._buckets.get(sender_id)
        if bucket is None or bucket.rate != per_minute:
            if len(self._buckets) >= MAX_BUCKETS:
                self._buckets.clear()
            bucket = _Bucket(float(per_minute), now, per_minute)
            self._buckets[sender_id] = bucket
        else:
            elapsed = max(0.0, now - bucket.stamp)
            bucket.tokens = min(float(per_minute), bucket.tokens + elapsed * refill / 60.0)
            bucket.stamp = now
        if count > per_minute:
            raise TooManyRequestsError(
                f"this message holds more search requests than this sender may make per"
                f" minute ({per_minute})"
            )
        if bucket.tokens < count:
            raise TooManyRequestsError(
                f"rate limit of {per_minute} search requests per minute exceeded; retry later"
            )
        bucket.tokens -= count
