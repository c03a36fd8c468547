"""dci-conformance: tests any DCI CRVS registry (or a social-protection client) over HTTP.

It imports nothing of `dci_bridge`: it judges a peer by the standard's wire format only.
"""

from __future__ import annotations

from conformance.checks import CATALOGUE, Check, Failure, Profile, Severity, Skip, check, requires
from conformance.config import Config, load_config
from conformance.runner import CaseResult, Outcome, RunSummary, run

__version__ = "0.1.0"

__all__ = [
    "CATALOGUE",
    "CaseResult",
    "Check",
    "Config",
    "Failure",
    "Outcome",
    "Profile",
    "RunSummary",
    "Severity",
    "Skip",
    "__version__",
    "check",
    "load_config",
    "requires",
    "run",
]
