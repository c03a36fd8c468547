"""Helpers for the disclosure-policy tests: what a minimised record may hold."""

from __future__ import annotations

from typing import Any

from dci_bridge.registry.policy import DisclosurePolicy


def allowed_keys(policy: DisclosurePolicy) -> tuple[set[str], dict[str, set[str]] | None]:
    """(allowed leaf paths, identifier types allowed per identifier list or None = all)."""
    allowed = set(policy.fields)
    id_types: set[str] = set()
    for path in policy.fields:
        if path.startswith("identifier["):
            id_types.add(path[len("identifier[") : -1])
            allowed.add("identifier")
    if "identifier" in policy.fields:
        id_types = set()
    answers = {a if ":" not in a else f"age_at_least_{a.split(':')[1]}" for a in policy.answers}
    return allowed | answers, ({"identifier": id_types} if id_types else None)


def leaks(record: dict[str, Any], policy: DisclosurePolicy) -> list[str]:
    allowed, id_filter = allowed_keys(policy)
    found = []
    for key, value in record.items():
        if key == "@type":
            assert value == "CRVS_Person"
            continue
        if key in allowed:
            if key == "identifier" and id_filter is not None:
                found += [
                    f"identifier[{i['identifier_type']}]"
                    for i in value
                    if i["identifier_type"] not in id_filter["identifier"]
                ]
            continue
        # a struct field kept only in part: every sub-key must be allowed
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, dict):
                found.append(key)
                continue
            for sub in item:
                if sub != "@type" and f"{key}.{sub}" not in allowed:
                    found.append(f"{key}.{sub}")
    return found
