"""Per-request cost of the operations features on the sync-search hot path.

Times each piece in isolation (best of 5 runs of N calls, so a busy machine inflates it
less than an end-to-end run): the metrics sample, the JSON access-log line, recording one
search in the audit trail, and writing one audit row (SQLite, batched). Compare with the
CPU a sync search costs (bench/sync_search.py: 1 / req/s of one worker).

    python bench/ops_overhead.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from dci_bridge.api import observe
from dci_bridge.clock import SystemClock
from dci_bridge.db.engine import migrate
from dci_bridge.ops import metrics
from dci_bridge.ops.logs import configure_logging
from dci_bridge.protocol.codec import decode_message, decode_request_envelope
from dci_bridge.protocol.search import SearchResponse, SearchResponseData, SearchResponseItem
from dci_bridge.registry.audit import AuditTrail
from dci_bridge.settings import AuditSettings


def best_us(fn: Callable[[], object], calls: int) -> float:
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter() - started) / calls * 1e6)
    return min(runs)


def search_fixture() -> tuple[object, object, SearchResponse]:
    now = "2026-11-23T10:00:00Z"
    body = {
        "header": {
            "version": "1.0.0",
            "message_id": "m-1",
            "message_ts": now,
            "action": "search",
            "sender_id": "spp.example.org",
            "total_count": 1,
        },
        "message": {
            "transaction_id": "t-1",
            "search_request": [
                {
                    "reference_id": "r-1",
                    "timestamp": now,
                    "search_criteria": {
                        "reg_type": "ns:org:RegistryType:Civil",
                        "query_type": "idtype-value",
                        "query": {"type": "BRN", "value": "2020ABCDEFG"},
                    },
                }
            ],
        },
    }
    envelope = decode_request_envelope(json.dumps(body).encode())
    request = decode_message("search", envelope.message)
    person = msgspec.Raw(
        b'{"@type":"CRVS_Person","@id":"urn:uuid:8d0c6a3e-0d6f-4c36-a3b5-1a2b3c4d5e6f",'
        b'"identifier":[{"identifier_type":"BRN","identifier_value":"2020ABCDEFG"}]}'
    )
    item = SearchResponseItem(
        reference_id="r-1",
        timestamp=now,
        status="succ",  # type: ignore[arg-type]
        data=SearchResponseData(reg_type="c", reg_record_type="p", reg_records=[person]),
    )
    response = SearchResponse(transaction_id="t-1", correlation_id="c-1", search_response=[item])
    return envelope.header, request, response


async def audit_costs(calls: int, work: Path) -> tuple[float, float]:
    url = f"sqlite:///{work / 'audit.sqlite3'}"
    migrate(url)
    settings = AuditSettings(flush_interval_ms=60_000, batch_size=10_000)
    trail = await AuditTrail.open(url, SystemClock(), settings)
    header, request, response = search_fixture()

    def record() -> None:
        trail.record_search(header, request, response)  # type: ignore[arg-type]

    record_us = best_us(record, calls // 5)
    rows = trail.pending
    started = time.perf_counter()
    await trail.flush()
    write_us = (time.perf_counter() - started) / rows * 1e6
    await trail.aclose()
    return record_us, write_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        metrics_us = best_us(
            lambda: metrics.observe_request("POST", "/registry/sync/search", 200, 0.004),
            args.calls,
        )
        with (work / "access.log").open("w") as sink:
            configure_logging("info", "json", sink)
            scope = {"state": {"dci_message": ("m-1", "spp.example.org", "search")}}
            log_us = best_us(
                lambda: observe._log_request(scope, "POST", "/registry/sync/search", 200, 0.004),
                args.calls,
            )
            configure_logging("warning", "json")
        record_us, write_us = asyncio.run(audit_costs(args.calls, work))
    print(f"\noperations cost per sync search, best of 5 ({dt.date.today()})")
    print(f"{'metrics sample (count + histogram)':<40}{metrics_us:>8.1f} us")
    print(f"{'access log line (JSON, to a file)':<40}{log_us:>8.1f} us")
    print(f"{'audit: record the search (hot path)':<40}{record_us:>8.1f} us")
    print(f"{'audit: write the row (batched, SQLite)':<40}{write_us:>8.1f} us")
    total = metrics_us + log_us + record_us + write_us
    print(f"{'total':<40}{total:>8.1f} us")


if __name__ == "__main__":
    main()
