"""Write specs/openapi.json from the app (a test fails when the checked-in file is stale)."""

from __future__ import annotations

from pathlib import Path

from dci_bridge.api.app import create_app
from dci_bridge.api.openapi import openapi_text
from dci_bridge.settings import Settings

TARGET = Path(__file__).resolve().parents[1] / "specs" / "openapi.json"


def main() -> None:
    TARGET.write_text(openapi_text(create_app(Settings.from_env({}))), encoding="utf-8")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
