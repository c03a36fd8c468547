"""The per-sender rate limit: a bucket of one minute's worth, refilled continuously, split
between the processes that share it (`policy.rate_processes`)."""

from __future__ import annotations

import datetime as dt

import pytest

from dci_bridge.clock import FixedClock
from dci_bridge.errors import TooManyRequestsError
from dci_bridge.registry.ratelimit import RateLimiter

START = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def test_a_burst_of_the_whole_figure_then_refusal_then_refill():
    clock = FixedClock(START)
    limiter = RateLimiter(clock)
    for _ in range(6):
        limiter.take("sp", 10, 60)
    with pytest.raises(TooManyRequestsError) as refused:
        limiter.take("sp", 1, 60)
    assert refused.value.http_status == 429
    assert refused.value.code == "err.request.too_many_requests"
    clock.advance(1.0)  # 60 a minute: one more per second
    limiter.take("sp", 1, 60)
    with pytest.raises(TooManyRequestsError):
        limiter.take("sp", 1, 60)
    limiter.take("other", 60, 60)  # senders do not share a bucket


def test_a_message_larger_than_the_figure_is_always_refused():
    limiter = RateLimiter(FixedClock(START))
    with pytest.raises(TooManyRequestsError, match="more search requests"):
        limiter.take("sp", 61, 60)


@pytest.mark.parametrize("processes", [1, 2, 4, 10])
def test_shared_between_processes_each_refills_its_share(processes: int):
    clock = FixedClock(START)
    limiters = [RateLimiter(clock) for _ in range(processes)]
    for limiter in limiters:  # each may burst once: the bucket holds the whole figure
        limiter.take("sp", 60, 60, processes)
    # then, over ten minutes, the processes together get the figure per minute, not N times it
    granted = 0
    for _ in range(600):
        clock.advance(1.0)
        for limiter in limiters:
            try:
                limiter.take("sp", 1, 60, processes)
            except TooManyRequestsError:
                continue
            granted += 1
    assert 590 <= granted <= 600
