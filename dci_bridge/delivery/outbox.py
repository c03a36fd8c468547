"""The transactional outbox: enqueue inside the caller's transaction, claim with a lease,
record attempts, and the operator's queries (list, show, replay, purge).

A job is either an HTTP delivery (it has a `target_url`: its header and message are signed
at send time and POSTed there) or a task for a handler registered under its `kind` (no
`target_url`; the async search runs this way). Every function takes an open SQLAlchemy
connection: the caller owns the transaction (`dci_bridge.db.engine.begin_write`), which is
what makes the outbox transactional. States: `pending` (due at `next_attempt_at`, owned by
a worker while `lease_until` is in the future), `done`, `dead`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

import sqlalchemy as sa

from dci_bridge.clock import UTC
from dci_bridge.db.tables_delivery import DeliveryEndpoint, OutboxAttempt, OutboxJob
from dci_bridge.delivery.schedule import MAX_ATTEMPTS, next_attempt_at

__all__ = [
    "PENDING",
    "AttemptResult",
    "Job",
    "JobDetail",
    "NewJob",
    "claim",
    "endpoint_disabled",
    "enqueue",
    "get_job",
    "list_jobs",
    "prune",
    "purge_dead",
    "record",
    "release",
    "replay",
]

jobs_table: sa.Table = OutboxJob.__table__  # type: ignore[attr-defined]
attempts_table: sa.Table = OutboxAttempt.__table__  # type: ignore[attr-defined]
endpoints_table: sa.Table = DeliveryEndpoint.__table__  # type: ignore[attr-defined]

PENDING: Final = "pending"
DONE: Final = "done"
DEAD: Final = "dead"
State = Literal["pending", "done", "dead"]
STATES: Final[tuple[State, ...]] = get_args(State)
"""Every state a job can be in, in its order of life."""
Outcome = Literal["done", "retry", "gone", "dead"]
"""Of one attempt: delivered; failed, try again; 410 Gone (endpoint disabled); give up."""


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes (stored as UTC text): make them aware again."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to enqueue.

    HTTP delivery: `target_url` set; `header` and `message` are the JSON bytes of the
    envelope's header and message (`message` None for a header-only envelope); the worker
    signs them at every attempt with `scheme` (None: the signer's default) and POSTs
    `{"signature", "header", "message"}`. The header's `message_id` should be passed as
    `message_id` (listing, de-duplication by receivers). Task: no `target_url`; `header` and
    `message` are the task's input for the handler registered under `kind`.
    """

    kind: str
    header: bytes
    message: bytes | None = None
    target_url: str | None = None
    sender_id: str | None = None
    """Whose callback this is (the DCI sender the message goes to); for listing."""
    message_id: str | None = None
    correlation_id: str | None = None
    scheme: str | None = None
    not_before: dt.datetime | None = None
    job_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored (what a worker claimed, or what an operator looks at)."""

    job_id: str
    kind: str
    state: str
    sender_id: str | None
    correlation_id: str | None
    message_id: str | None
    target_url: str | None
    scheme: str | None
    header: bytes
    message: bytes | None
    attempts: int
    next_attempt_at: dt.datetime
    lease_owner: str | None
    lease_until: dt.datetime | None
    last_status: int | None
    last_error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    completed_at: dt.datetime | None

    @property
    def is_delivery(self) -> bool:
        return self.target_url is not None

    @classmethod
    def from_row(cls, row: sa.Row[tuple[object, ...]]) -> Job:
        m = row._mapping
        return cls(
            job_id=m["job_id"],
            kind=m["kind"],
            state=m["state"],
            sender_id=m["sender_id"],
            correlation_id=m["correlation_id"],
            message_id=m["message_id"],
            target_url=m["target_url"],
            scheme=m["scheme"],
            header=bytes(m["header_json"]),
            message=None if m["message_json"] is None else bytes(m["message_json"]),
            attempts=m["attempts"],
            next_attempt_at=_aware(m["next_attempt_at"]),  # type: ignore[arg-type]
            lease_owner=m["lease_owner"],
            lease_until=_aware(m["lease_until"]),
            last_status=m["last_status"],
            last_error=m["last_error"],
            created_at=_aware(m["created_at"]),  # type: ignore[arg-type]
            updated_at=_aware(m["updated_at"]),  # type: ignore[arg-type]
            completed_at=_aware(m["completed_at"]),
        )


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    started_at: dt.datetime
    latency_ms: float
    http_status: int | None
    outcome: str
    error: str | None
    worker: str


@dataclass(frozen=True, slots=True)
class JobDetail:
    job: Job
    attempts: list[Attempt]


@dataclass(slots=True)
class AttemptResult:
    """What one attempt of a claimed job came to; `record` stores it.

    For a task, `follow_up` are jobs to enqueue and `apply` a function run in the same
    transaction when the task succeeded (e.g. storing the search response).
    """

    job: Job
    started_at: dt.datetime
    latency_ms: float
    outcome: Outcome
    http_status: int | None = None
    error: str | None = None
    follow_up: list[NewJob] = field(default_factory=list)
    apply: Callable[[sa.Connection], None] | None = None


def enqueue(conn: sa.Connection, jobs: NewJob | Iterable[NewJob], *, now: dt.datetime) -> list[str]:
    """Insert jobs in the caller's open transaction; returns their ids. Due at once unless
    `not_before` says otherwise. Nothing is sent until the transaction commits."""
    batch = [jobs] if isinstance(jobs, NewJob) else list(jobs)
    if not batch:
        return []
    rows = [
        {
            "job_id": job.job_id,
            "kind": job.kind,
            "state": PENDING,
            "sender_id": job.sender_id,
            "correlation_id": job.correlation_id,
            "message_id": job.message_id,
            "target_url": job.target_url,
            "scheme": job.scheme,
            "header_json": job.header,
            "message_json": job.message,
            "attempts": 0,
            "next_attempt_at": job.not_before or now,
            "lease_owner": None,
            "lease_until": None,
            "last_status": None,
            "last_error": None,
            "created_at": now,
            "updated_at": now,
            "completed_at": None,
        }
        for job in batch
    ]
    conn.execute(jobs_table.insert(), rows)
    return [job.job_id for job in batch]


def claim(
    conn: sa.Connection, *, owner: str, now: dt.datetime, lease_s: float, limit: int
) -> list[Job]:
    """Reserve up to `limit` due jobs for `owner` until now + `lease_s`.

    PostgreSQL: rows are locked with FOR UPDATE SKIP LOCKED, so concurrent workers never
    claim the same job. SQLite: the caller's write transaction (BEGIN IMMEDIATE) is the
    only writer. A job whose lease expired (its worker died) is due again.
    """
    if limit <= 0:
        return []
    t = jobs_table
    due = (
        sa.select(t.c.job_id)
        .where(
            t.c.state == PENDING,
            t.c.next_attempt_at <= now,
            sa.or_(t.c.lease_until.is_(None), t.c.lease_until <= now),
        )
        .order_by(t.c.next_attempt_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = [row[0] for row in conn.execute(due)]
    if not ids:
        return []
    until = now + dt.timedelta(seconds=lease_s)
    conn.execute(
        t.update()
        .where(t.c.job_id.in_(ids))
        .values(lease_owner=owner, lease_until=until, updated_at=now)
    )
    rows = conn.execute(sa.select(t).where(t.c.job_id.in_(ids)).order_by(t.c.next_attempt_at))
    return [Job.from_row(row) for row in rows]


_RECORD_ATTEMPT = (
    jobs_table.update()
    .where(
        jobs_table.c.job_id == sa.bindparam("b_job_id"),
        jobs_table.c.lease_owner == sa.bindparam("b_owner"),
    )
    .values(
        state=sa.bindparam("b_state"),
        attempts=sa.bindparam("b_attempts"),
        next_attempt_at=sa.bindparam("b_next"),
        completed_at=sa.bindparam("b_completed"),
        last_status=sa.bindparam("b_status"),
        last_error=sa.bindparam("b_error"),
        updated_at=sa.bindparam("b_now"),
        lease_owner=None,
        lease_until=None,
    )
)
"""Moves one job on after an attempt (executed once for a whole batch of attempts)."""


def record(
    conn: sa.Connection, results: Sequence[AttemptResult], *, owner: str, now: dt.datetime
) -> list[str]:
    """Store attempts and move their jobs on (done, rescheduled, dead); returns the ids of
    follow-up jobs enqueued. A job whose lease another worker took over meanwhile keeps its
    state (the attempt is still recorded). A batch costs four statements, however large."""
    if not results:
        return []
    t = jobs_table
    conn.execute(
        attempts_table.insert(),
        [
            {
                "job_id": r.job.job_id,
                "number": r.job.attempts + 1,
                "started_at": r.started_at,
                "latency_ms": round(r.latency_ms, 3),
                "http_status": r.http_status,
                "outcome": r.outcome,
                "error": _clip(r.error),
                "worker": owner,
            }
            for r in results
        ],
    )
    still_ours = sa.select(t.c.job_id).where(
        t.c.job_id.in_([r.job.job_id for r in results]), t.c.lease_owner == owner
    )
    if conn.dialect.name == "postgresql":  # hold them until commit (SQLite: single writer)
        still_ours = still_ours.with_for_update()
    owned = {row[0] for row in conn.execute(still_ours)}
    moved = [r for r in results if r.job.job_id in owned]
    if not moved:
        return []
    rows: list[dict[str, object]] = []
    for r in moved:
        attempts = r.job.attempts + 1
        due = next_attempt_at(attempts, now) if r.outcome == "retry" else None
        if r.outcome == "done":
            state, next_at, completed = DONE, r.job.next_attempt_at, now
        elif due is None:
            state, next_at, completed = DEAD, r.job.next_attempt_at, now
        else:
            state, next_at, completed = PENDING, due, None
        rows.append(
            {
                "b_job_id": r.job.job_id,
                "b_owner": owner,
                "b_state": state,
                "b_attempts": attempts,
                "b_next": next_at,
                "b_completed": completed,
                "b_status": r.http_status,
                "b_error": _clip(r.error),
                "b_now": now,
            }
        )
    conn.execute(_RECORD_ATTEMPT, rows)
    follow_ups: list[NewJob] = []
    for r in moved:
        if r.outcome == "gone" and r.job.target_url:
            disable_endpoint(conn, r.job.target_url, sender_id=r.job.sender_id, now=now)
        if r.outcome == "done":
            if r.apply is not None:
                r.apply(conn)
            follow_ups += r.follow_up
    return enqueue(conn, follow_ups, now=now)


def release(conn: sa.Connection, *, owner: str, job_ids: Iterable[str] | None = None) -> int:
    """Give up leases (graceful shutdown): the jobs are due again for any worker."""
    t = jobs_table
    query = t.update().where(t.c.lease_owner == owner, t.c.state == PENDING)
    ids = list(job_ids) if job_ids is not None else None
    if ids is not None:
        if not ids:
            return 0
        query = query.where(t.c.job_id.in_(ids))
    return conn.execute(query.values(lease_owner=None, lease_until=None)).rowcount


def _url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def disable_endpoint(
    conn: sa.Connection, url: str, *, sender_id: str | None, now: dt.datetime
) -> None:
    """Mark a callback URL gone (it answered 410): its pending jobs die at their next turn."""
    key = _url_hash(url)
    e = endpoints_table
    if conn.execute(sa.select(e.c.url_hash).where(e.c.url_hash == key)).first() is None:
        conn.execute(e.insert().values(url_hash=key, url=url, sender_id=sender_id, disabled_at=now))


def endpoint_disabled(conn: sa.Connection, url: str) -> bool:
    e = endpoints_table
    found = conn.execute(sa.select(e.c.url_hash).where(e.c.url_hash == _url_hash(url))).first()
    return found is not None


def disabled_endpoints(conn: sa.Connection, urls: Iterable[str]) -> set[str]:
    """Which of `urls` are disabled."""
    by_hash = {_url_hash(url): url for url in urls}
    if not by_hash:
        return set()
    e = endpoints_table
    rows = conn.execute(sa.select(e.c.url_hash).where(e.c.url_hash.in_(list(by_hash))))
    return {by_hash[row[0]] for row in rows}


# --- operator queries ----------------------------------------------------------------------


def list_jobs(
    conn: sa.Connection,
    *,
    state: str | None = None,
    kind: str | None = None,
    sender_id: str | None = None,
    limit: int = 50,
) -> list[Job]:
    """Newest first, filtered by state, kind and sender."""
    t = jobs_table
    query = sa.select(t).order_by(t.c.created_at.desc(), t.c.job_id).limit(limit)
    if state:
        query = query.where(t.c.state == state)
    if kind:
        query = query.where(t.c.kind == kind)
    if sender_id:
        query = query.where(t.c.sender_id == sender_id)
    return [Job.from_row(row) for row in conn.execute(query)]


def count_by_state(conn: sa.Connection) -> dict[str, int]:
    t = jobs_table
    rows = conn.execute(sa.select(t.c.state, sa.func.count()).group_by(t.c.state))
    return {str(state): int(count) for state, count in rows}


def get_job(conn: sa.Connection, job_id: str) -> JobDetail | None:
    """A job and its attempts, or None."""
    t = jobs_table
    row = conn.execute(sa.select(t).where(t.c.job_id == job_id)).first()
    if row is None:
        return None
    a = attempts_table
    attempts = [
        Attempt(
            number=m["number"],
            started_at=_aware(m["started_at"]),  # type: ignore[arg-type]
            latency_ms=m["latency_ms"],
            http_status=m["http_status"],
            outcome=m["outcome"],
            error=m["error"],
            worker=m["worker"],
        )
        for m in (
            r._mapping
            for r in conn.execute(
                sa.select(a).where(a.c.job_id == job_id).order_by(a.c.number, a.c.attempt_id)
            )
        )
    ]
    return JobDetail(Job.from_row(row), attempts)


def replay(conn: sa.Connection, job_id: str, *, now: dt.datetime) -> bool:
    """Make a dead (or done) job due again with a fresh attempt budget; re-enables its
    endpoint if it was disabled. Same message_id: receivers de-duplicate."""
    t = jobs_table
    row = conn.execute(sa.select(t.c.target_url).where(t.c.job_id == job_id)).first()
    if row is None:
        return False
    conn.execute(
        t.update()
        .where(t.c.job_id == job_id)
        .values(
            state=PENDING,
            attempts=0,
            next_attempt_at=now,
            lease_owner=None,
            lease_until=None,
            completed_at=None,
            updated_at=now,
        )
    )
    if row[0]:
        e = endpoints_table
        conn.execute(e.delete().where(e.c.url_hash == _url_hash(row[0])))
    return True


def purge_dead(conn: sa.Connection, *, older_than: dt.datetime | None = None) -> int:
    """Delete dead jobs (completed before `older_than`, if given) and their attempts."""
    t = jobs_table
    where = [t.c.state == DEAD]
    if older_than is not None:
        where.append(t.c.completed_at < older_than)
    return _delete_jobs(conn, sa.select(t.c.job_id).where(*where))


def prune(conn: sa.Connection, *, before: dt.datetime) -> int:
    """Housekeeping: delete jobs done before `before`, with their attempts."""
    t = jobs_table
    return _delete_jobs(
        conn, sa.select(t.c.job_id).where(t.c.state == DONE, t.c.completed_at < before)
    )


def _delete_jobs(conn: sa.Connection, ids: sa.Select[tuple[str]]) -> int:
    chosen = [row[0] for row in conn.execute(ids)]
    for start in range(0, len(chosen), 500):
        chunk = chosen[start : start + 500]
        conn.execute(attempts_table.delete().where(attempts_table.c.job_id.in_(chunk)))
        conn.execute(jobs_table.delete().where(jobs_table.c.job_id.in_(chunk)))
    return len(chosen)


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:500]


__all__ += ["MAX_ATTEMPTS", "Attempt", "count_by_state", "disable_endpoint", "disabled_endpoints"]
