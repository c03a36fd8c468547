"""The outbox and its worker against real loopback receivers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import anyio.to_thread
import msgspec
import pytest
import sqlalchemy as sa

from dci_bridge.crypto import verify_envelope
from dci_bridge.db.engine import begin_write
from dci_bridge.delivery import outbox
from dci_bridge.delivery.commits import GroupCommit
from dci_bridge.delivery.outbox import NewJob
from dci_bridge.delivery.schedule import MAX_ATTEMPTS, RETRY_DELAYS_S
from dci_bridge.delivery.worker import TaskOutcome, Worker
from dci_bridge.protocol.codec import decode_raw_envelope
from dci_bridge.settings import DeliverySettings
from tests.delivery_receivers import raw_server

pytestmark = pytest.mark.anyio

LOOPBACK = DeliverySettings(allow_private_addresses=True, timeout_s=3.0, lease_s=30.0)


def callback(url: str, n: int = 1) -> NewJob:
    header = {
        "version": "1.0.0",
        "message_id": f"msg-{n}",
        "message_ts": "2026-11-23T10:00:00.000Z",
        "action": "on-search",
        "status": "succ",
    }
    message = {"transaction_id": "t-1", "correlation_id": "c-1", "search_response": []}
    return NewJob(
        kind="callback",
        header=json.dumps(header).encode(),
        message=json.dumps(message).encode(),
        target_url=url,
        sender_id="spp.example.org",
        message_id=f"msg-{n}",
        correlation_id="c-1",
    )


def add(engine, *jobs, clock):
    with begin_write(engine) as conn:
        return outbox.enqueue(conn, list(jobs), now=clock.now())


def detail(engine, job_id):
    with engine.connect() as conn:
        found = outbox.get_job(conn, job_id)
    assert found is not None
    return found


def make_worker(engine, clock, signer, settings=LOOPBACK, **kw):
    return Worker(engine, settings, clock=clock, signer=signer, **kw)


async def test_enqueue_is_part_of_the_callers_transaction(engine, clock):
    def failing_write():
        with begin_write(engine) as conn:
            outbox.enqueue(conn, callback("http://127.0.0.1:9/cb"), now=clock.now())
            raise RuntimeError("the caller's write failed")

    with pytest.raises(RuntimeError):
        failing_write()
    with engine.connect() as conn:
        assert outbox.list_jobs(conn) == []


async def test_a_callback_is_delivered_signed_and_its_attempt_recorded(
    engine, clock, signer, keys, receiver
):
    app, base = receiver
    [job_id] = add(engine, callback(f"{base}/registry/on-search"), clock=clock)
    worker = make_worker(engine, clock, signer)
    try:
        await worker.run_until_idle()
    finally:
        await worker.aclose()
    [got] = app.received
    assert got.path == "/registry/on-search"
    assert got.headers["content-type"] == "application/json"
    raw = decode_raw_envelope(got.body)
    verify_envelope(raw.signature, raw.header, raw.message, keys.verification_keys(), clock=clock)
    assert json.loads(got.body)["header"]["message_id"] == "msg-1"
    found = detail(engine, job_id)
    assert found.job.state == "done"
    assert [(a.number, a.http_status, a.outcome) for a in found.attempts] == [(1, 200, "done")]
    assert found.attempts[0].latency_ms > 0


async def test_retry_schedule_follows_the_design_then_dead(engine, clock, signer, receiver):
    app, base = receiver
    app.status = 503
    [job_id] = add(engine, callback(f"{base}/cb"), clock=clock)
    worker = make_worker(engine, clock, signer)
    try:
        await worker.run_until_idle()
        assert len(app.received) == 1
        for number, delay in enumerate(RETRY_DELAYS_S[1:], start=2):
            clock.advance(delay - 1)
            await worker.run_until_idle()
            assert len(app.received) == number - 1, "sent before it was due"
            clock.advance(1)
            await worker.run_until_idle()
            assert len(app.received) == number
        clock.advance(100 * 3600)
        await worker.run_until_idle()
    finally:
        await worker.aclose()
    assert len(app.received) == MAX_ATTEMPTS == 8
    found = detail(engine, job_id)
    assert found.job.state == "dead"
    assert [a.http_status for a in found.attempts] == [503] * 8
    # the same message id on every attempt
    assert {json.loads(b)["header"]["message_id"] for b in app.bodies()} == {"msg-1"}


async def test_receiver_down_then_up_is_delivered_on_the_next_due_attempt(
    engine, clock, signer, receiver
):
    app, base = receiver
    with raw_server("refuse") as closed:
        [job_id] = add(engine, callback(f"{closed}/cb"), clock=clock)
        worker = make_worker(engine, clock, signer)
        try:
            await worker.run_until_idle()
            first = detail(engine, job_id)
            assert first.job.state == "pending"
            assert first.attempts[0].error == "connection refused or failed"
            # the receiver comes back (here: the job is pointed at the live one) and the
            # next due attempt delivers
            with begin_write(engine) as conn:
                conn.execute(outbox.jobs_table.update().values(target_url=f"{base}/cb"))
            clock.advance(5)
            await worker.run_until_idle()
        finally:
            await worker.aclose()
    found = detail(engine, job_id)
    assert found.job.state == "done"
    assert [a.outcome for a in found.attempts] == ["retry", "done"]
    assert len(app.received) == 1


async def test_410_disables_the_endpoint(engine, clock, signer, receiver):
    app, base = receiver
    app.status = 410
    first, second = add(engine, callback(f"{base}/gone", 1), clock=clock), None
    worker = make_worker(engine, clock, signer)
    try:
        await worker.run_until_idle()
        second = add(engine, callback(f"{base}/gone", 2), clock=clock)
        await worker.run_until_idle()
    finally:
        await worker.aclose()
    assert len(app.received) == 1
    assert detail(engine, first[0]).job.state == "dead"
    later = detail(engine, second[0])
    assert later.job.state == "dead"
    assert later.attempts[0].error == "endpoint disabled after 410 Gone"
    with begin_write(engine) as conn:
        assert outbox.endpoint_disabled(conn, f"{base}/gone")
        assert outbox.replay(conn, second[0], now=clock.now())
        assert not outbox.endpoint_disabled(conn, f"{base}/gone")


async def test_refused_address_is_dead_without_connecting(engine, clock, signer):
    settings = DeliverySettings(allow_private_addresses=False, timeout_s=3.0)
    [job_id] = add(engine, callback("http://127.0.0.1:9/cb"), clock=clock)
    worker = make_worker(engine, clock, signer, settings)
    try:
        await worker.run_until_idle()
    finally:
        await worker.aclose()
    found = detail(engine, job_id)
    assert found.job.state == "dead"
    assert found.attempts[0].error == "the callback address is not a public address"


async def test_task_jobs_run_their_handler_and_enqueue_follow_ups(engine, clock, signer, receiver):
    app, base = receiver
    seen = []

    async def handler(job):
        seen.append(job.header)

        def apply(conn: sa.Connection) -> None:
            seen.append(b"applied")

        return TaskOutcome(follow_up=[callback(f"{base}/cb", 7)], apply=apply)

    with begin_write(engine) as conn:
        outbox.enqueue(conn, NewJob(kind="demo-task", header=b'{"x":1}'), now=clock.now())
    worker = make_worker(engine, clock, signer, handlers={"demo-task": handler})
    try:
        await worker.run_until_idle()
    finally:
        await worker.aclose()
    assert seen == [b'{"x":1}', b"applied"]
    assert len(app.received) == 1
    with engine.connect() as conn:
        assert outbox.count_by_state(conn) == {"done": 2}


async def test_replay_and_purge_dead(engine, clock, signer, receiver):
    app, base = receiver
    app.status = 410
    [job_id] = add(engine, callback(f"{base}/cb"), clock=clock)
    worker = make_worker(engine, clock, signer)
    try:
        await worker.run_until_idle()
        app.status = 200
        with begin_write(engine) as conn:
            assert outbox.replay(conn, job_id, now=clock.now())
        await worker.run_until_idle()
    finally:
        await worker.aclose()
    assert detail(engine, job_id).job.state == "done"
    assert [json.loads(b)["header"]["message_id"] for b in app.bodies()] == ["msg-1", "msg-1"]
    with begin_write(engine) as conn:
        outbox.enqueue(conn, callback("http://127.0.0.1:9/x", 3), now=clock.now())
        conn.execute(
            outbox.jobs_table.update()
            .where(outbox.jobs_table.c.message_id == "msg-3")
            .values(state="dead")
        )
        assert outbox.purge_dead(conn) == 1
        assert outbox.count_by_state(conn) == {"done": 1}


async def test_shutdown_during_a_scheduled_tick_lets_it_commit_and_logs_no_failed_job(
    engine, clock, signer, caplog
):
    """APScheduler cancels the jobs under way when it shuts down and logs each as failed,
    with its stack; the tick it was running must finish its transaction instead."""
    entered, release = threading.Event(), threading.Event()

    class SlowSecondWrite(GroupCommit):
        def _write(self, works, urgent):  # type: ignore[no-untyped-def]
            if self.transactions >= 1:  # the start's kicked tick passes, the scheduler's waits
                entered.set()
                release.wait(10)
            return super()._write(works, urgent)

    settings = msgspec.structs.replace(LOOPBACK, poll_interval_s=0.05)
    worker = make_worker(engine, clock, signer, settings=settings, commits=SlowSecondWrite(engine))
    caplog.set_level(logging.INFO)
    worker.start()
    assert await anyio.to_thread.run_sync(entered.wait, 10), "no scheduled tick started"
    closing = asyncio.get_running_loop().create_task(worker.aclose(grace_s=10))
    await asyncio.sleep(0.2)
    assert not closing.done(), "aclose must wait for the tick's transaction"
    release.set()
    await asyncio.wait_for(closing, 20)
    assert worker.commits.transactions >= 2  # the scheduled tick committed
    failed = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failed == [], [r.getMessage() for r in failed]
