"""The delivery worker: claims due outbox jobs, sends or runs them, records every attempt.

One `Worker` per process. APScheduler calls `tick()` every `poll_interval_s` (and whoever
enqueues in this process calls `kick()` so new jobs go out at once). A tick is one write
transaction that records the attempts finished since the last tick and claims new due jobs
(up to the free slots); the claimed jobs run as asyncio tasks and the tick returns. So
database writes are batched under load and a slow or hanging receiver only ever holds its
own slot, never the tick. The tick's transaction goes through the process's `GroupCommit`,
shared with the requests being accepted at that moment (one writer, one commit). The
database is the source of truth: leases make several processes share one PostgreSQL, and a
killed process's jobs are due again when their lease ends (at-least-once; the same
message_id on every attempt lets receivers de-duplicate).

Outcomes: 2xx done; 410 Gone disables the endpoint (its jobs go dead); a refused URL
(SSRF guard, prefix) is dead at once; everything else retries on `schedule.RETRY_DELAYS_S`.

Encryption: a callback whose stored header says `is_msg_encrypted: true` is encrypted at
every attempt (JWE, `crypto.jwe`) to the receiver's registered `use: enc` key, then signed
over the encrypted message. Without a usable key the attempt fails with the reason recorded
on the job and retries on the schedule (an operator may register the key); nothing is ever
sent in plain text instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio.to_thread
import msgspec
import sqlalchemy as sa

from dci_bridge.clock import Clock
from dci_bridge.crypto.envelope import SIGNATURE_SCHEMES, EnvelopeSigner
from dci_bridge.crypto.jwe import encrypt_message
from dci_bridge.crypto.jwk import PublicKey
from dci_bridge.db.engine import begin_write
from dci_bridge.delivery import outbox
from dci_bridge.delivery.commits import GroupCommit
from dci_bridge.delivery.outbox import AttemptResult, Job, NewJob
from dci_bridge.delivery.sender import CallbackSender
from dci_bridge.errors import DciError
from dci_bridge.ops import metrics
from dci_bridge.settings import DeliverySettings

__all__ = ["EncryptionKeys", "TaskHandler", "TaskOutcome", "Worker", "envelope_bytes"]

log = logging.getLogger("dci_bridge.delivery")

_ENCODE = msgspec.json.Encoder()
_RECORD_DELAY_S = 0.02
"""Finished attempts wait this long for others to be recorded in the same transaction."""


@dataclass(slots=True)
class TaskOutcome:
    """What a task handler produced: jobs to enqueue and a write to run, both in the same
    transaction that marks the task done."""

    follow_up: list[NewJob] = field(default_factory=list)
    apply: Callable[[sa.Connection], None] | None = None


class TaskHandler(Protocol):
    def __call__(self, job: Job) -> Awaitable[TaskOutcome]: ...


class EncryptionKeys(Protocol):
    def __call__(self, receiver_id: str) -> Awaitable[PublicKey | None]:
        """The `use: enc` key of the DCI sender a callback goes to, None when it has none;
        raises when its keys cannot be had now (a JWKS URL that does not answer)."""
        ...


class _Flags(msgspec.Struct):
    is_msg_encrypted: Any = False


_FLAGS = msgspec.json.Decoder(_Flags)


def asks_encryption(header: bytes) -> bool:
    """Whether a stored callback header announces an encrypted message. Fails closed: a
    header that mentions the flag but cannot be read counts as asking."""
    if b"is_msg_encrypted" not in header:
        return False
    try:
        return _FLAGS.decode(header).is_msg_encrypted is not False
    except (msgspec.DecodeError, msgspec.ValidationError):
        return True


def envelope_bytes(signature: str, header: bytes, message: bytes | None) -> bytes:
    """`{"signature": ..., "header": ..., "message": ...}` from the raw parts."""
    parts = [b'{"signature":', _ENCODE.encode(signature), b',"header":', header]
    if message is not None:
        parts += [b',"message":', message]
    parts.append(b"}")
    return b"".join(parts)


class Worker:
    """Claims and processes outbox jobs for one process (see the module doc)."""

    def __init__(
        self,
        engine: sa.Engine,
        settings: DeliverySettings,
        *,
        clock: Clock,
        signer: EnvelopeSigner | None,
        sender: CallbackSender | None = None,
        handlers: Mapping[str, TaskHandler] | None = None,
        owner: str | None = None,
        commits: GroupCommit | None = None,
        encryption_keys: EncryptionKeys | None = None,
    ) -> None:
        self.engine = engine
        self.commits = commits or GroupCommit(engine)
        """Shared with the accepting use cases of this process (one writer, group commit)."""
        self.settings = settings
        self.clock = clock
        self.signer = signer
        self.sender = sender or CallbackSender(
            allow_private=settings.allow_private_addresses,
            timeout_s=settings.timeout_s,
            max_response_bytes=settings.max_response_bytes,
            max_connections=settings.max_in_flight,
        )
        self.handlers: dict[str, TaskHandler] = dict(handlers or {})
        self.encryption_keys = encryption_keys
        """Where the receivers' encryption keys come from (None: encrypted callbacks fail)."""
        self.owner = owner or f"w-{uuid.uuid4().hex[:12]}"
        self.stats: dict[str, int] = {"done": 0, "retry": 0, "dead": 0, "gone": 0}
        self._results: list[AttemptResult] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: set[str] = set()
        self._ticking = False
        self._again = False
        self._kick_pending = False
        self._closing = False
        self._scheduler: Any = None
        self._kicks: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._not_ticking = asyncio.Event()
        self._not_ticking.set()

    # --- lifecycle ---------------------------------------------------------------------

    def register(self, kind: str, handler: TaskHandler) -> None:
        """Run jobs of `kind` without a target URL with `handler`."""
        self.handlers[kind] = handler

    def start(self) -> None:
        """Start the APScheduler jobs (worker tick, housekeeping) on the running loop."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone="UTC")
        scheduler.add_job(
            self._scheduled_tick,
            "interval",
            seconds=self.settings.poll_interval_s,
            id="delivery-tick",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        scheduler.add_job(
            self._scheduled_housekeeping,
            "interval",
            seconds=3600,
            id="delivery-housekeeping",
            max_instances=1,
            coalesce=True,
        )
        scheduler.start()
        self._scheduler = scheduler
        self.kick()

    async def _scheduled_tick(self) -> None:
        await self._survive_shutdown(self.tick())

    async def _scheduled_housekeeping(self) -> None:
        await self._survive_shutdown(self.housekeeping())

    async def _survive_shutdown(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run a scheduled job in a task of its own. APScheduler's shutdown cancels the jobs
        under way and logs each cancellation as a failed job with its stack; the work itself
        (a tick in the middle of its transaction) goes on, and `aclose` waits for it."""
        task = asyncio.get_running_loop().create_task(work)
        self._kicks.add(task)
        task.add_done_callback(self._kicks.discard)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not self._closing:
                raise

    async def aclose(self, grace_s: float = 5.0) -> None:
        """Stop claiming, let running attempts finish for `grace_s`, record what finished
        and release the leases of the rest (another process or the next start takes them)."""
        self._closing = True
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self._ticking:  # let the tick under way commit (it claims nothing more now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._not_ticking.wait(), grace_s)
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        for kick in list(self._kicks):
            kick.cancel()
        results, self._results = self._results, []
        try:
            await anyio.to_thread.run_sync(self._final_flush, results)
        except Exception as exc:
            log.warning("could not release delivery leases: %s", type(exc).__name__)
        await self.sender.aclose()

    def _final_flush(self, results: list[AttemptResult]) -> None:
        with begin_write(self.engine) as conn:
            outbox.record(conn, results, owner=self.owner, now=self.clock.now())
            outbox.release(conn, owner=self.owner)

    # --- the tick ----------------------------------------------------------------------

    def kick(self, delay_s: float = 0.0) -> None:
        """Run a tick soon (after this process enqueued, or an attempt finished). Kicks that
        come while one is pending or running are merged, so finished attempts are recorded
        in batches."""
        if self._closing:
            return
        if self._ticking:
            self._again = True
            return
        if self._kick_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no running loop: the scheduler's next tick will do
            return
        self._kick_pending = True
        loop.call_later(delay_s, self._start_kicked_tick)

    def _start_kicked_tick(self) -> None:
        self._kick_pending = False
        if self._closing:
            return
        task = asyncio.get_running_loop().create_task(self.tick())
        self._kicks.add(task)
        task.add_done_callback(self._kicks.discard)

    async def tick(self) -> int:
        """Record finished attempts and claim due jobs; returns how many were claimed
        (-1 when another tick was running: it will run again)."""
        if self._ticking:
            self._again = True
            return -1
        self._ticking = True
        self._not_ticking.clear()
        total = 0
        try:
            while True:
                self._again = False
                results, self._results = self._results, []
                free = 0 if self._closing else self.settings.max_in_flight - len(self._tasks)
                limit = min(self.settings.batch_size, max(free, 0))
                try:
                    claimed, disabled = await self._exchange(results, limit)
                except Exception as exc:  # database trouble: keep the results, try later
                    self._results[:0] = results
                    log.warning("delivery tick failed: %s", type(exc).__name__)
                    return total
                for job in claimed:
                    self._spawn(job, disabled)
                total += len(claimed)
                more = limit > 0 and len(claimed) == limit
                if not (self._again or more or self._results) or self._closing:
                    break
                if not claimed and not self._results:
                    break
        finally:
            self._ticking = False
            self._not_ticking.set()
        return total

    async def _exchange(
        self, results: list[AttemptResult], limit: int
    ) -> tuple[list[Job], set[str]]:
        """Record `results` and claim up to `limit` due jobs in one write transaction, shared
        (group commit) with the requests this process accepts meanwhile."""
        now = self.clock.now()
        owner, lease_s = self.owner, self.settings.lease_s

        def work(conn: sa.Connection) -> tuple[list[Job], set[str], bool]:
            follow_ups = outbox.record(conn, results, owner=owner, now=now)
            claimed = outbox.claim(conn, owner=owner, now=now, lease_s=lease_s, limit=limit)
            urls = {job.target_url for job in claimed if job.target_url}
            disabled = outbox.disabled_endpoints(conn, urls) if urls else set()
            return claimed, disabled, bool(follow_ups)

        claimed, disabled, followed = await self.commits.run(work)
        if followed:
            self._again = True
        return claimed, disabled

    def _spawn(self, job: Job, disabled: set[str]) -> None:
        if job.job_id in self._running:  # its lease ran out while we still work on it
            return
        self._running.add(job.job_id)
        task = asyncio.get_running_loop().create_task(self._run(job, disabled))
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()
        self.kick(_RECORD_DELAY_S)

    async def _run(self, job: Job, disabled: set[str]) -> None:
        try:
            await self._attempt(job, disabled)
        finally:
            self._running.discard(job.job_id)

    async def _attempt(self, job: Job, disabled: set[str]) -> None:
        started_at = self.clock.now()
        started = time.perf_counter()
        try:
            if job.target_url is None:
                result = await self._run_task(job, started_at, started)
            elif job.target_url in disabled:
                result = AttemptResult(
                    job, started_at, 0.0, "dead", error="endpoint disabled after 410 Gone"
                )
            else:
                result = await self._deliver(job, started_at)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not lose the job: retry it later
            log.exception("delivery attempt failed", extra={"job_id": job.job_id})
            error = f"internal error: {type(exc).__name__}"
            result = AttemptResult(job, started_at, _ms(started), "retry", error=error)
        self.stats[result.outcome] = self.stats.get(result.outcome, 0) + 1
        if job.target_url is not None:  # a callback, not a task such as running a search
            metrics.record_delivery_attempt(result.outcome, result.latency_ms / 1000)
        self._results.append(result)

    async def _run_task(self, job: Job, started_at: dt.datetime, started: float) -> AttemptResult:
        handler = self.handlers.get(job.kind)
        if handler is None:
            return AttemptResult(job, started_at, 0.0, "dead", error=f"no handler for {job.kind}")
        try:
            outcome = await handler(job)
        except DciError as exc:
            return AttemptResult(
                job, started_at, _ms(started), "retry", error=f"{exc.code}: {type(exc).__name__}"
            )
        return AttemptResult(
            job,
            started_at,
            _ms(started),
            "done",
            follow_up=outcome.follow_up,
            apply=outcome.apply,
        )

    async def _deliver(self, job: Job, started_at: dt.datetime) -> AttemptResult:
        assert job.target_url is not None
        if self.signer is None:
            raise RuntimeError("no signer configured for callbacks")
        scheme = job.scheme if job.scheme in SIGNATURE_SCHEMES else None
        plain = job.message
        if plain is not None and asks_encryption(job.header):
            sealed = await self._encrypt(job, plain)
            if isinstance(sealed, str):  # no usable key: recorded, retried, never sent plain
                log.info(
                    "callback not encrypted",
                    extra={"job_id": job.job_id, "message_id": job.message_id},
                )
                return AttemptResult(job, started_at, 0.0, "retry", error=sealed)
            plain = sealed
        message: Any = msgspec.Raw(plain) if plain is not None else msgspec.UNSET
        signature = self.signer.sign(msgspec.Raw(job.header), message, scheme=scheme)  # type: ignore[arg-type]
        body = envelope_bytes(signature, job.header, plain)
        sent = await self.sender.post(job.target_url, body)
        if sent.ok:
            outcome: outbox.Outcome = "done"
        elif sent.status == 410:
            outcome = "gone"
        elif sent.refused:
            outcome = "dead"
        else:
            outcome = "retry"
        if outcome != "done":
            log.info(
                "callback attempt failed",
                extra={"job_id": job.job_id, "message_id": job.message_id, "status": sent.status},
            )
        return AttemptResult(
            job, started_at, sent.latency_ms, outcome, http_status=sent.status, error=sent.error
        )

    async def _encrypt(self, job: Job, message: bytes) -> bytes | str:
        """The message as the standard's EncryptedMessage JSON, or why it cannot be."""
        if self.encryption_keys is None or not job.sender_id:
            return "encryption asked, but the receiver's keys are not known here"
        try:
            key = await self.encryption_keys(job.sender_id)
        except Exception as exc:
            return f"encryption asked, receiver keys unavailable ({type(exc).__name__})"
        if key is None:
            return "encryption asked, but the receiver has no registered encryption key"
        try:
            return _ENCODE.encode(encrypt_message(message, key))
        except DciError as exc:
            return f"encryption failed: {exc.message}"

    # --- helpers for tests, the CLI and housekeeping -----------------------------------

    async def run_until_idle(self, *, timeout_s: float = 30.0) -> None:
        """Tick until nothing is running and nothing due was claimed (tests, CLI)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            await self._not_ticking.wait()  # a kicked tick may be running: let it finish
            claimed = await self.tick()
            if claimed < 0 or self._ticking:
                continue  # another tick ran: wait for it above, then look again
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=max(deadline - time.monotonic(), 0))
                continue
            if self._results:
                continue
            if claimed == 0:
                return
        raise TimeoutError("the delivery worker did not become idle")

    async def housekeeping(self) -> int:
        """Prune jobs done longer ago than the retention period."""
        before = self.clock.now() - dt.timedelta(days=self.settings.retention_days)

        def prune() -> int:
            with begin_write(self.engine) as conn:
                return outbox.prune(conn, before=before)

        return await anyio.to_thread.run_sync(prune)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
