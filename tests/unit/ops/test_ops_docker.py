"""docker/: no Docker engine runs here, so the files are parsed and every command, console
script, environment variable and copied path they rely on is checked against the code."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from dci_bridge.cli import main
from dci_bridge.settings import ENV_PREFIX, known_variables

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    out = []
    for line in lines:
        word, _, rest = line.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def _exec_form(arguments: str) -> list[str]:
    import json

    value = json.loads(arguments)
    assert isinstance(value, list), f"use the exec (JSON) form: {arguments}"
    return [str(v) for v in value]


def _console_scripts() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["scripts"])


def _check_cli(args: list[str]) -> None:
    """`dci-bridge <args>` names a registered command whose options parse."""
    assert args, "empty command"
    command = main.get_command(click.Context(main), args[0])
    assert command is not None, f"dci-bridge has no command {args[0]!r}"
    ctx = command.make_context(args[0], list(args[1:]), resilient_parsing=False)
    ctx.close()


def _env_names(environment: Any) -> list[str]:
    if isinstance(environment, dict):
        return list(environment)
    return [item.split("=", 1)[0] for item in environment or []]


def test_dockerfile_is_multi_stage_and_runs_unprivileged() -> None:
    stages = _stages()
    assert len(stages) >= 2
    final = stages[-1]
    users = [args for word, args in final if word == "USER"]
    assert users, "the runtime stage must switch to an unprivileged user"
    assert users[-1].split(":")[0] not in {"root", "0"}
    copies = [args for word, args in final if word == "COPY"]
    assert all(c.startswith("--from=") for c in copies), "the runtime stage copies only builds"
    assert not any(word == "RUN" and "pip install" in args for word, args in final)


def test_dockerfile_entrypoint_command_and_env_exist_in_the_code() -> None:
    final = dict(_stages()[-1])
    entrypoint = _exec_form(final["ENTRYPOINT"])
    assert entrypoint == ["dci-bridge"]
    assert "dci-bridge" in _console_scripts()
    _check_cli(_exec_form(final["CMD"]))
    healthcheck = final["HEALTHCHECK"]
    assert "/health" in healthcheck
    env = [args for word, args in _instructions() if word == "ENV"]
    names = [token.split("=", 1)[0] for line in env for token in shlex.split(line) if "=" in token]
    known = known_variables()
    for name in names:
        if name.startswith(ENV_PREFIX):
            assert name in known, f"Settings does not know {name}"


def test_dockerfile_copies_paths_that_exist() -> None:
    for word, args in _instructions():
        if word != "COPY" or args.startswith("--from="):
            continue
        *sources, _target = shlex.split(args)
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def test_compose_runs_two_bridges_postgres_and_the_simulator(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["bridge"]["deploy"]["replicas"] == 2
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["simulator"]["command"][0] == "simulator"
    migrate = services["bridge"]["depends_on"]["migrate"]
    assert migrate["condition"] == "service_completed_successfully"
    environment = services["bridge"]["environment"]
    assert environment["DCI_BRIDGE_DATABASE__MIGRATE_ON_START"] == "false"
    assert environment["DCI_BRIDGE_DATABASE__URL"].startswith("postgresql://")
    for service in services.values():
        build = service.get("build")
        if build:
            assert (COMPOSE.parent / build["context"] / build["dockerfile"]).is_file()


def test_compose_commands_and_variables_exist_in_the_code(compose: dict[str, Any]) -> None:
    known = known_variables()
    for name, service in compose["services"].items():
        if service.get("image", "").startswith("dci-bridge") or "build" in service:
            _check_cli([str(part) for part in service["command"]])
        for variable in _env_names(service.get("environment")):
            if variable.startswith(ENV_PREFIX):
                assert variable in known, f"service {name}: Settings does not know {variable}"


def test_compose_points_the_bridges_at_the_simulator(compose: dict[str, Any]) -> None:
    from dci_bridge.upstream.simulator import SEARCH_CLIENT

    environment = compose["services"]["bridge"]["environment"]
    assert environment["DCI_BRIDGE_UPSTREAM__SOURCE"] == "opencrvs"
    port = compose["services"]["simulator"]["command"][-1]
    assert environment["DCI_BRIDGE_UPSTREAM__GATEWAY_URL"] == f"http://simulator:{port}"
    assert environment["DCI_BRIDGE_UPSTREAM__CLIENT_ID"] == SEARCH_CLIENT.client_id
    assert environment["DCI_BRIDGE_UPSTREAM__CLIENT_SECRET"] == SEARCH_CLIENT.client_secret


def test_compose_replicas_share_the_keys_created_once(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["keys"]["command"][:1] == ["keys"]
    assert services["bridge"]["depends_on"]["keys"]["condition"] == (
        "service_completed_successfully"
    )
    assert set(services["bridge"]["volumes"]) == set(services["keys"]["volumes"])
    assert services["bridge"]["volumes"][0].endswith(":/var/lib/dci-bridge")
