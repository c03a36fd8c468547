"""`dci-bridge`: one command group; each public module of this package adds its commands.

A module here registers commands on `main` (from `_common`) when it is imported; this
package imports every module whose name does not start with an underscore.
"""

from __future__ import annotations

import importlib
import pkgutil

from dci_bridge.cli._common import main

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["main"]
