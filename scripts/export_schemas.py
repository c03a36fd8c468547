#!/usr/bin/env python
"""Write the JSON Schemas of every DCI body to specs/schemas/ (and remove stale ones).

Usage: python scripts/export_schemas.py [--check]
With --check nothing is written; the exit status is 1 when the files are out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dci_bridge.protocol.jsonschema import schema_files

TARGET = Path(__file__).resolve().parent.parent / "specs" / "schemas"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    wanted = schema_files()
    present = {p.name for p in TARGET.glob("*.json")} if TARGET.exists() else set()
    stale = sorted(present - wanted.keys())
    changed = sorted(
        name
        for name, text in wanted.items()
        if not (TARGET / name).exists() or (TARGET / name).read_text(encoding="utf-8") != text
    )
    if check:
        for name in changed + stale:
            print(f"out of date: specs/schemas/{name}")
        return 1 if changed or stale else 0
    TARGET.mkdir(parents=True, exist_ok=True)
    for name in changed:
        (TARGET / name).write_text(wanted[name], encoding="utf-8")
    for name in stale:
        (TARGET / name).unlink()
    print(f"specs/schemas: {len(changed)} written, {len(stale)} removed, {len(wanted)} total")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
