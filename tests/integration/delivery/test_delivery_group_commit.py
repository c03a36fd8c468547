"""Group commit: concurrent writers share transactions; a failing writer fails alone."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from dci_bridge.delivery import outbox
from dci_bridge.delivery.commits import GroupCommit
from dci_bridge.delivery.outbox import NewJob

pytestmark = pytest.mark.anyio


def job(n: int) -> NewJob:
    return NewJob(kind="task", header=b"{}", job_id=f"job-{n}", message_id=f"m-{n}")


def count_jobs(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return sum(outbox.count_by_state(conn).values())


async def test_concurrent_writes_share_transactions_and_are_committed(engine, clock):
    commits = GroupCommit(engine)

    async def write(n: int) -> list[str]:
        return await commits.run(lambda conn: outbox.enqueue(conn, job(n), now=clock.now()))

    ids = await asyncio.gather(*(write(n) for n in range(50)))

    assert [found[0] for found in ids] == [f"job-{n}" for n in range(50)]
    assert count_jobs(engine) == 50  # committed when the awaits returned
    assert commits.transactions < 50  # the first runs alone; the others queue and share


async def test_a_failing_write_fails_alone_and_its_neighbours_commit(engine, clock):
    commits = GroupCommit(engine)

    def bad(conn: sa.Connection) -> None:
        outbox.enqueue(conn, job(99), now=clock.now())
        raise ValueError("this one is wrong")

    async def good(n: int) -> list[str]:
        return await commits.run(lambda conn: outbox.enqueue(conn, job(n), now=clock.now()))

    results = await asyncio.gather(
        good(1), good(2), commits.run(bad), good(3), return_exceptions=True
    )

    assert isinstance(results[2], ValueError)
    assert [r for i, r in enumerate(results) if i != 2] == [["job-1"], ["job-2"], ["job-3"]]
    with engine.connect() as conn:
        assert outbox.get_job(conn, "job-99") is None  # the failing write left nothing
        assert outbox.get_job(conn, "job-2") is not None


async def test_a_duplicate_key_fails_only_the_second_writer(engine, clock):
    commits = GroupCommit(engine)
    first, second = await asyncio.gather(
        commits.run(lambda conn: outbox.enqueue(conn, job(7), now=clock.now())),
        commits.run(lambda conn: outbox.enqueue(conn, job(7), now=clock.now())),
        return_exceptions=True,
    )
    assert first == ["job-7"]
    assert isinstance(second, sa.exc.IntegrityError)
    assert count_jobs(engine) == 1
