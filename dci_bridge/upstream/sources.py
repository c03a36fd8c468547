"""Choose the record source from the settings: the embedded store or a live OpenCRVS.

`open_record_source(settings)` is what the app's lifespan calls; `reachability_check(source)`
is the `/ready` check of a source that depends on OpenCRVS (None for the embedded store,
whose database the app already checks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dci_bridge.records.source import RecordSource
from dci_bridge.records.store import EmbeddedFhirStore
from dci_bridge.settings import Settings
from dci_bridge.upstream.opencrvs import OpenCrvsSource


async def open_record_source(settings: Settings) -> RecordSource:
    """The configured source, opened (the embedded store must already be migrated)."""
    if settings.upstream.source == "opencrvs":
        return OpenCrvsSource(settings.upstream)
    return await EmbeddedFhirStore.open(settings.database_url)


def reachability_check(source: RecordSource) -> Callable[[], Awaitable[None]] | None:
    """`/ready` check for OpenCRVS: a system token can be obtained within the timeout."""
    if isinstance(source, OpenCrvsSource):
        return source.check
    return None
