"""The `dci-bridge` command group and what its command modules share."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from dci_bridge import __version__
from dci_bridge.settings import ENV_PREFIX, Settings, SettingsError

DEMO_SEED = 20261123
"""The demo population's seed: identifiers printed by the demo exist for this seed."""

DemoStep = Callable[[Settings], list[str]]
_DEMO_STEPS: list[tuple[int, DemoStep]] = []


@click.group()
@click.version_option(__version__, prog_name="dci-bridge")
def main() -> None:
    """dci-bridge: the DCI CRVS registry API in front of an OpenCRVS civil registry."""


def settings_from_env(**overrides: Any) -> Settings:
    """Settings from the environment plus CLI overrides; a bad value is a usage error."""
    try:
        return Settings.from_env(**overrides)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


def export_env(overrides: dict[str, Any]) -> None:
    """Pass CLI options to server worker processes, which read the environment."""
    for key, value in overrides.items():
        if value is not None:
            os.environ[ENV_PREFIX + key.upper()] = str(value)


def demo_step(order: int) -> Callable[[DemoStep], DemoStep]:
    """Register a step `dci-bridge demo` runs after seeding and before serving.

    A step prepares something (a demo client, a receiver...) and returns lines to print.
    Steps run in ascending `order`.
    """

    def register(step: DemoStep) -> DemoStep:
        _DEMO_STEPS.append((order, step))
        return step

    return register


def demo_steps() -> list[DemoStep]:
    return [step for _, step in sorted(_DEMO_STEPS, key=lambda item: item[0])]
