"""Fresh identifiers for what the registry generates (message and correlation ids)."""

from __future__ import annotations

import uuid
from typing import Protocol


class IdSource(Protocol):
    def new_id(self) -> str:
        """A fresh, unique, unguessable id of at most 99 characters."""
        ...


class UuidSource:
    def new_id(self) -> str:
        return str(uuid.uuid4())
