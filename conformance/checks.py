"""The case registry: every conformance case is a function registered here by `@check`.

A case has a stable id (`DCI-SEARCH-012`), a title, the spec section it checks, a profile
(`registry` or `client`) and a group. Preconditions are small decorators (`requires`,
`requires_data`, `requires_receiver`) evaluated before the case runs; an unmet one skips the
case with its reason, never passes it. A failing case raises `Failure` carrying its evidence.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from conformance.evidence import Exchange

if TYPE_CHECKING:
    from conformance.context import CaseContext


class Severity(enum.StrEnum):
    """How bad a failure is: CRITICAL for crashes/5xx and security holes, LOW for advice."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Profile(enum.StrEnum):
    REGISTRY = "registry"
    """The target is a DCI registry (search, subscribe, txn status...)."""
    CLIENT = "client"
    """The target is a social-protection system's callback receivers (on-search, notify...)."""


class Failure(Exception):
    """A case found a deviation from the standard. Message: "Expected X, got Y at $.path"."""

    def __init__(
        self,
        title: str,
        message: str,
        *,
        severity: Severity = Severity.HIGH,
        exchange: Exchange | None = None,
        expected: str | None = None,
    ) -> None:
        super().__init__(f"{title}: {message}")
        self.title = title
        self.message = message
        self.severity = severity
        self.exchange = exchange
        self.expected = expected


class Skip(Exception):
    """The case cannot run against this target; the reason is reported."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Precondition = Callable[["CaseContext"], str | None]
"""Returns a skip reason, or None when the case may run."""

CaseFunction = Callable[["CaseContext"], None]

GROUP_ORDER = (
    "envelope",
    "signatures",
    "search-sync",
    "search-async",
    "txn",
    "subscribe",
    "notify",
    "errors",
    "auth",
    "client",
    "fuzz",
)
"""Report order: what a response looks like first, negative cases last."""

_ID = re.compile(r"^DCI-[A-Z]+-\d{3}$")


@dataclass
class Check:
    """One named, documented case."""

    id: str
    title: str
    spec: str
    """The section of the standard checked, e.g. "§5.3 pagination (NEW SearchRequest)"."""
    group: str
    profile: Profile
    func: CaseFunction
    preconditions: list[Precondition] = field(default_factory=list)

    @property
    def doc(self) -> str:
        return (self.func.__doc__ or "").strip()

    def __call__(self, ctx: CaseContext) -> None:
        self.func(ctx)


class Registry:
    """Checks by id, in registration order."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def add(self, item: Check) -> Check:
        if not _ID.match(item.id):
            raise ValueError(f"case id {item.id!r} does not look like DCI-GROUP-000")
        if item.id in self._checks:
            raise ValueError(f"case id {item.id} registered twice")
        self._checks[item.id] = item
        return item

    def get(self, case_id: str) -> Check:
        return self._checks[case_id]

    def __iter__(self) -> Iterator[Check]:
        return iter(self.all())

    def __len__(self) -> int:
        return len(self._checks)

    def all(self) -> list[Check]:
        """Every check, grouped in GROUP_ORDER, registration order within a group."""
        rank = {g: i for i, g in enumerate(GROUP_ORDER)}
        return sorted(self._checks.values(), key=lambda c: (rank.get(c.group, len(rank)), c.id))

    def groups(self) -> list[str]:
        return sorted({c.group for c in self._checks.values()})

    def select(
        self,
        profile: Profile,
        only: Iterable[str] = (),
        skip: Iterable[str] = (),
    ) -> list[Check]:
        """Cases of `profile` matching --only (ids, globs or group names) minus --skip."""
        only_l, skip_l = list(only), list(skip)
        unknown = [p for p in [*only_l, *skip_l] if not self._matches_anything(p)]
        if unknown:
            raise ValueError(f"--only/--skip name no case or group: {', '.join(unknown)}")
        chosen = [c for c in self.all() if c.profile == profile]
        if only_l:
            chosen = [c for c in chosen if any(_selects(p, c) for p in only_l)]
        return [c for c in chosen if not any(_selects(p, c) for p in skip_l)]

    def _matches_anything(self, pattern: str) -> bool:
        return any(_selects(pattern, c) for c in self._checks.values())


def _selects(pattern: str, item: Check) -> bool:
    pattern = pattern.strip()
    return (
        fnmatch.fnmatchcase(item.id, pattern.upper())
        or pattern.lower() == item.group
        or fnmatch.fnmatchcase(item.group, pattern.lower())
    )


CATALOGUE = Registry()
"""Every case of the suite; filled when `conformance.catalogue` is imported."""


def check(
    case_id: str,
    title: str,
    *,
    spec: str,
    group: str,
    profile: Profile = Profile.REGISTRY,
    registry: Registry = CATALOGUE,
) -> Callable[[CaseFunction], Check]:
    """Register the decorated function as a case. Put precondition decorators below it."""

    def decorate(func: CaseFunction) -> Check:
        pre: list[Precondition] = list(getattr(func, "__preconditions__", []))
        return registry.add(Check(case_id, title, spec, group, profile, func, pre))

    return decorate


def _precondition(pre: Precondition) -> Callable[[CaseFunction], CaseFunction]:
    def decorate(func: CaseFunction) -> CaseFunction:
        existing: list[Precondition] = list(getattr(func, "__preconditions__", []))
        func.__preconditions__ = [pre, *existing]  # type: ignore[attr-defined]
        return func

    return decorate


def requires(*features: str) -> Callable[[CaseFunction], CaseFunction]:
    """Skip unless every named feature is enabled in the config and advertised by the target."""

    def pre(ctx: CaseContext) -> str | None:
        for name in features:
            reason = ctx.feature_unavailable(name)
            if reason:
                return reason
        return None

    return _precondition(pre)


def requires_data(*names: str) -> Callable[[CaseFunction], CaseFunction]:
    """Skip unless the config's [data] section provides the named test data."""

    def pre(ctx: CaseContext) -> str | None:
        for name in names:
            if not ctx.has_data(name):
                return f"test data `data.{name}` is not configured"
        return None

    return _precondition(pre)


def requires_receiver(func: CaseFunction) -> CaseFunction:
    """Skip unless the callback receiver is running (async cases)."""

    def pre(ctx: CaseContext) -> str | None:
        if ctx.receiver is None:
            return "the callback receiver is disabled (feature `callbacks` is off)"
        return None

    return _precondition(pre)(func)
