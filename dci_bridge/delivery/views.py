"""Deliveries as JSON for operators (CLI and admin API): never message bodies, which may hold
personal data; ids, states, URLs, attempts and errors only."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dci_bridge.clock import isoformat_z
from dci_bridge.delivery.outbox import Job, JobDetail

__all__ = ["detail_view", "job_view"]


def _time(moment: dt.datetime | None) -> str | None:
    return None if moment is None else isoformat_z(moment)


def job_view(job: Job) -> dict[str, Any]:
    """One job: what it is, where it goes, how far it got."""
    return {
        "job_id": job.job_id,
        "kind": job.kind,
        "state": job.state,
        "sender_id": job.sender_id,
        "message_id": job.message_id,
        "correlation_id": job.correlation_id,
        "target_url": job.target_url,
        "attempts": job.attempts,
        "next_attempt_at": _time(job.next_attempt_at) if job.state == "pending" else None,
        "last_status": job.last_status,
        "last_error": job.last_error,
        "created_at": _time(job.created_at),
        "completed_at": _time(job.completed_at),
    }


def detail_view(detail: JobDetail) -> dict[str, Any]:
    """A job and every attempt of it."""
    view = job_view(detail.job)
    view["attempt_log"] = [
        {
            "number": a.number,
            "started_at": _time(a.started_at),
            "latency_ms": a.latency_ms,
            "http_status": a.http_status,
            "outcome": a.outcome,
            "error": a.error,
            "worker": a.worker,
        }
        for a in detail.attempts
    ]
    return view
