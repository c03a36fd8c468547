"""Write docs/configuration.md from dci_bridge/settings.py (a test fails when it is stale)."""

from __future__ import annotations

from pathlib import Path

from dci_bridge.ops.config_doc import render

TARGET = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def main() -> None:
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
