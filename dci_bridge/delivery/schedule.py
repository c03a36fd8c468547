"""The retry schedule: when attempt n+1 of a job is due after attempt n failed.

Attempt 1 runs immediately; after failures the next attempts wait 5 s, 5 min, 30 min, 2 h,
5 h, 10 h and 10 h. A job whose eighth attempt fails is `dead` (visible, replayable).
"""

from __future__ import annotations

import datetime as dt
from typing import Final

RETRY_DELAYS_S: Final[tuple[float, ...]] = (
    0.0,
    5.0,
    5 * 60.0,
    30 * 60.0,
    2 * 3600.0,
    5 * 3600.0,
    10 * 3600.0,
    10 * 3600.0,
)
"""Delay before attempt 1, 2, ... (attempt 1 is immediate)."""
MAX_ATTEMPTS: Final = len(RETRY_DELAYS_S)


def next_attempt_at(attempts_made: int, failed_at: dt.datetime) -> dt.datetime | None:
    """When the next attempt is due after `attempts_made` attempts, the last failing at
    `failed_at`; None when the job is dead."""
    if attempts_made < 0:
        raise ValueError("attempts_made must not be negative")
    if attempts_made >= MAX_ATTEMPTS:
        return None
    return failed_at + dt.timedelta(seconds=RETRY_DELAYS_S[attempts_made])
