"""The one Settings object, read once from the environment (and CLI flags) and passed down.

Environment variables are `DCI_BRIDGE_<GROUP>__<FIELD>` in upper case, for example
`DCI_BRIDGE_DATABASE__URL` or `DCI_BRIDGE_SEARCH__MAX_PAGE_SIZE`. This module is the only
reader of `os.environ`; `Settings.from_env` takes the mapping as an argument so tests pass a
dict. Invalid values fail at start with a message naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta

ENV_PREFIX = "DCI_BRIDGE_"
DEFAULT_DATA_DIR = Path("data")

Port = Annotated[int, Meta(ge=0, le=65535)]
Positive = Annotated[int, Meta(ge=1)]


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: str = ""
    """SQLAlchemy URL of the embedded store; empty means a SQLite file in the data directory."""
    pool_size: Positive = 5
    """Connections per process (PostgreSQL)."""
    migrate_on_start: bool = True
    """Apply database migrations when the server starts (turn off to migrate separately)."""


class ServerSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    """Address `dci-bridge serve` listens on."""
    port: Port = 8000
    """Port `dci-bridge serve` listens on."""
    workers: Positive = 1
    """Server worker processes."""
    max_body_bytes: Positive = 1_048_576
    """Largest accepted request body; larger bodies get HTTP 413 with `err.request.bad`."""
    base_path: str = ""
    """Path prefix in front of the DCI endpoints (the standard leaves it to the deployment)."""


class SearchSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    default_page_size: Positive = 10
    """Page size when a search names none."""
    max_page_size: Positive = 100
    """Largest page size a search may ask for; more is rejected with rjct.pagination.invalid."""
    max_batch_items: Positive = 50
    """Most search_request items in one envelope; more: rjct.total_count.limit_exceeded."""
    max_total_count: Positive = 10_000
    """Most matches a search may have before it is rejected with too_many_records_found."""


class RegistrySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    registry_id: str = "crvs.dci-bridge.local"
    """Our id on the wire: `receiver_id` we accept and `sender_id` of what we send."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    data_dir: str = str(DEFAULT_DATA_DIR)
    """Directory for the default SQLite store, keys and other local state."""
    database: DatabaseSettings = msgspec.field(default_factory=DatabaseSettings)
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    search: SearchSettings = msgspec.field(default_factory=SearchSettings)
    registry: RegistrySettings = msgspec.field(default_factory=RegistrySettings)

    @property
    def database_url(self) -> str:
        """The store's URL: the configured one, or a SQLite file in the data directory."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'dci-bridge.sqlite3'}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from `DCI_BRIDGE_*` variables, then apply `overrides` (CLI flags).

        `overrides` keys are `field` or `group__field`. Raises `SettingsError`.
        """
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        for key, value in env.items():
            if key.startswith(ENV_PREFIX):
                _put(raw, key[len(ENV_PREFIX) :].lower(), value, source=key)
        for key, value in overrides.items():
            if value is not None:
                _put(raw, key.lower(), value, source=f"option {key}")
        try:
            return msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(_explain(str(exc))) from None


class SettingsError(ValueError):
    """Invalid configuration: the message names the variable and what is wrong."""


def _put(raw: dict[str, Any], dotted: str, value: Any, *, source: str) -> None:
    parts = dotted.split("__")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SettingsError(f"{source}: {part} is not a group of settings")
        node = child
    node[parts[-1]] = value


def _explain(message: str) -> str:
    # msgspec says "... - at `$.search.max_page_size`"; name the variable instead.
    if " - at `$." in message:
        text, path = message.rsplit(" - at `$.", 1)
        path = path.rstrip("`")
        variable = ENV_PREFIX + path.replace(".", "__").upper()
        if "unknown field `" in text:
            return f"unknown setting {variable}__{text.split('`')[1].upper()}"
        return f"{variable}: {text}"
    if "Object contains unknown field" in message:
        field = message.split("`")[1] if "`" in message else message
        return f"unknown setting {ENV_PREFIX}{field.upper()}"
    return message
