"""Settings: env and flags into one typed object; bad values fail with clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from dci_bridge.ops.config_doc import render, undocumented
from dci_bridge.settings import Settings, SettingsError

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


def test_env_and_overrides_fill_typed_groups() -> None:
    settings = Settings.from_env(
        {
            "DCI_BRIDGE_SERVER__WORKERS": "3",
            "DCI_BRIDGE_METRICS__ENABLED": "false",
            "DCI_BRIDGE_LOG__FORMAT": "text",
            "OTHER_VARIABLE": "ignored",
        },
        server__port=9001,
        database__url=None,  # an absent CLI flag changes nothing
    )
    assert settings.server.workers == 3
    assert settings.server.port == 9001
    assert settings.metrics.enabled is False
    assert settings.log.format == "text"
    assert settings.database.url == ""


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DCI_BRIDGE_SEARCH__MAX_PAGE_SIZE": "many"},
            "DCI_BRIDGE_SEARCH__MAX_PAGE_SIZE='many': expected a whole number",
        ),
        (
            {"DCI_BRIDGE_SERVER__PORT": "70000"},
            "DCI_BRIDGE_SERVER__PORT='70000': expected a whole number <= 65535",
        ),
        (
            {"DCI_BRIDGE_DATABASE__MIGRATE_ON_START": "maybe"},
            "DCI_BRIDGE_DATABASE__MIGRATE_ON_START='maybe': expected true or false",
        ),
        ({"DCI_BRIDGE_LOG__LEVEL": "loud"}, "DCI_BRIDGE_LOG__LEVEL='loud': invalid enum value"),
        ({"DCI_BRIDGE_NOPE": "1"}, "unknown setting DCI_BRIDGE_NOPE"),
        (
            {"DCI_BRIDGE_SEARCH__MAX_PAGESIZE": "5"},
            "unknown setting DCI_BRIDGE_SEARCH__MAX_PAGESIZE; did you mean "
            "DCI_BRIDGE_SEARCH__MAX_PAGE_SIZE?",
        ),
        ({"DCI_BRIDGE_SEARCH": "5"}, "DCI_BRIDGE_SEARCH is a group; set DCI_BRIDGE_SEARCH__"),
        ({"DCI_BRIDGE_DATA_DIR__X": "5"}, "DCI_BRIDGE_DATA_DIR is a single setting"),
        (
            {"DCI_BRIDGE_SEARCH__DEFAULT_PAGE_SIZE": "500"},
            "DCI_BRIDGE_SEARCH__DEFAULT_PAGE_SIZE (500) must not exceed",
        ),
    ],
)
def test_bad_values_name_the_variable_value_and_expectation(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert message in str(caught.value)


def test_configuration_doc_is_generated_from_the_code() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is stale: run `python scripts/export_config_docs.py`"
    )


def test_every_setting_is_documented() -> None:
    assert undocumented() == [], "add a docstring under each of these settings"


def test_the_doc_lists_every_group_and_variable() -> None:
    text = render()
    for group in ("database", "server", "search", "registry", "log", "metrics", "audit"):
        assert f"## `{group}`" in text
    assert "| `DCI_BRIDGE_SERVER__WORKERS` | integer (>= 1) | `1` |" in text
    assert "`json` \\| `text`" in text
