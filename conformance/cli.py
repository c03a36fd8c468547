"""`dci-conformance`: run the catalogue, fuzz a target, list cases, make keys.

Exit codes: 0 all cases passed or were skipped, 1 a case failed or errored, 2 bad usage or
configuration.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from conformance.checks import CATALOGUE, Profile
from conformance.config import EXAMPLE_CONFIG, Config, ConfigError, load_config
from conformance.runner import Reporter, environment, run
from conformance.schemas import SchemaSet, default_directory
from conformance.signing import KEY_TYPES, TesterKeys


def _split(values: tuple[str, ...]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _overrides(**flags: Any) -> dict[str, Any]:
    names = {
        "target": "target",
        "profile": "profile",
        "sender_id": "identity.sender_id",
        "receiver_id": "identity.receiver_id",
        "key_file": "identity.key_file",
        "signature_scheme": "identity.signature_scheme",
        "client_id": "auth.client_id",
        "client_secret": "auth.client_secret",
        "token_url": "auth.token_url",
        "token": "auth.token",
        "jwks_url": "target_keys.jwks_url",
        "callback_url": "receiver.public_url",
        "receiver_port": "receiver.port",
        "timeout": "timeout_s",
    }
    out = {names[k]: v for k, v in flags.items() if k in names and v is not None}
    if flags.get("existing_id"):
        id_type, value = flags["existing_id"]
        out["data.existing_identifier"] = {"type": id_type, "value": value}
    return out


def _identifier(_ctx: Any, _param: Any, value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    id_type, sep, id_value = value.partition("=")
    if not sep or not id_type or not id_value:
        raise click.BadParameter("expected TYPE=VALUE, e.g. BRN=2024B1234567")
    return id_type, id_value


def _load(config_file: str | None, **flags: Any) -> Config:
    try:
        return load_config(config_file, _overrides(**flags))
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


def _schemas(option: str | None) -> SchemaSet:
    if option == "bundled":
        return SchemaSet.load(None)
    if option is None:
        return SchemaSet.load(default_directory())
    if not Path(option).is_dir():
        raise click.UsageError(f"--schemas {option}: not a directory")
    return SchemaSet.load(option)


def _reporters(
    junit: str | None, json_path: str | None, html: str | None, verbose: bool, quiet: bool
) -> list[Reporter]:
    from conformance.reporting.console import ConsoleReporter
    from conformance.reporting.html import HtmlReporter
    from conformance.reporting.json import JsonReporter
    from conformance.reporting.junit import JUnitReporter

    out: list[Reporter] = []
    if not quiet:
        out.append(ConsoleReporter(sys.stdout, verbose=verbose))
    if junit:
        out.append(JUnitReporter(junit))
    if json_path:
        out.append(JsonReporter(json_path))
    if html:
        out.append(HtmlReporter(html))
    return out


_common_options = [
    click.option("--target", help="Base URL of the registry (or client) under test."),
    click.option(
        "--config",
        "config_file",
        type=click.Path(exists=True, dir_okay=False),
        help="TOML config file.",
    ),
    click.option("--sender-id", help="header.sender_id of the tester."),
    click.option("--receiver-id", help="header.receiver_id (the target's id)."),
    click.option(
        "--key-file", type=click.Path(exists=True, dir_okay=False), help="Tester's private JWK."
    ),
    click.option("--signature-scheme", type=click.Choice(["jws", "dci-signature", "none"])),
    click.option("--client-id", help="OAuth2 client id."),
    click.option("--client-secret", help="OAuth2 client secret (prefer the config file)."),
    click.option(
        "--token-url", help="Token endpoint URL (default: target + /oauth2/client/token)."
    ),
    click.option("--token", help="A ready bearer token instead of client credentials."),
    click.option(
        "--jwks-url", help="The target's JWKS URL (default: target + /.well-known/jwks.json)."
    ),
    click.option("--callback-url", help="Public base URL of the callback receiver."),
    click.option("--receiver-port", type=int, help="Port of the callback receiver (0: any)."),
    click.option(
        "--existing-id",
        callback=_identifier,
        metavar="TYPE=VALUE",
        help="An identifier a record exists for (data.existing_identifier), e.g. BRN=2024B123.",
    ),
    click.option("--timeout", type=float, help="HTTP timeout in seconds."),
    click.option(
        "--schemas",
        "schemas_dir",
        help="Directory of JSON Schemas (default: the repository's specs/schemas when present), "
        "or `bundled` for the suite's own reading of the standard.",
    ),
    click.option("--junit", type=click.Path(dir_okay=False), help="Write a JUnit XML report."),
    click.option(
        "--json", "json_path", type=click.Path(dir_okay=False), help="Write a JSON report."
    ),
    click.option(
        "--html", type=click.Path(dir_okay=False), help="Write a self-contained HTML report."
    ),
    click.option(
        "-v", "--verbose", is_flag=True, help="Print request and response bodies of failures."
    ),
    click.option("-q", "--quiet", is_flag=True, help="No console output (reports only)."),
]


def common_options(func: Any) -> Any:
    for option in reversed(_common_options):
        func = option(func)
    return func


@click.group()
@click.version_option(package_name="dci-bridge", prog_name="dci-conformance")
def main() -> None:
    """Test a DCI CRVS registry (or a social-protection client) against the standard."""


@main.command("run")
@common_options
@click.option(
    "--profile", type=click.Choice([p.value for p in Profile]), help="registry (default) or client."
)
@click.option(
    "--only", multiple=True, help="Case ids, globs (DCI-SIG-*) or groups; comma-separated."
)
@click.option("--skip", multiple=True, help="Case ids, globs or groups to leave out.")
def run_command(
    only: tuple[str, ...],
    skip: tuple[str, ...],
    schemas_dir: str | None,
    junit: str | None,
    json_path: str | None,
    html: str | None,
    verbose: bool,
    quiet: bool,
    config_file: str | None,
    **flags: Any,
) -> None:
    """Run the conformance catalogue against --target."""
    import conformance.catalogue  # noqa: F401 - registers the cases

    config = _load(config_file, **flags)
    try:
        cases = CATALOGUE.select(Profile(config.profile), _split(only), _split(skip))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    schemas = _schemas(schemas_dir)
    with environment(config, schemas=schemas) as env:
        summary = run(env, cases, _reporters(junit, json_path, html, verbose, quiet))
    sys.exit(summary.exit_code)


@main.command("fuzz")
@common_options
@click.option(
    "--endpoint",
    "endpoints",
    multiple=True,
    help="Endpoint names to fuzz (default: every registry endpoint).",
)
@click.option(
    "--max-examples",
    type=int,
    default=50,
    show_default=True,
    help="Examples per endpoint and mode.",
)
@click.option("--seed", type=int, default=None, help="Hypothesis seed, for a reproducible run.")
def fuzz_command(
    endpoints: tuple[str, ...],
    max_examples: int,
    seed: int | None,
    schemas_dir: str | None,
    junit: str | None,
    json_path: str | None,
    html: str | None,
    verbose: bool,
    quiet: bool,
    config_file: str | None,
    **flags: Any,
) -> None:
    """Send generated valid and invalid envelopes; report any 5xx or schema-invalid answer."""
    from conformance.fuzz import FUZZ_ENDPOINTS, fuzz_checks

    config = _load(config_file, **flags)
    names = _split(endpoints) or list(FUZZ_ENDPOINTS)
    unknown = [n for n in names if n not in FUZZ_ENDPOINTS]
    if unknown:
        raise click.UsageError(f"unknown endpoints {unknown}; choose from {list(FUZZ_ENDPOINTS)}")
    cases = fuzz_checks(names, max_examples=max_examples, seed=seed)
    with environment(config, schemas=_schemas(schemas_dir)) as env:
        summary = run(env, cases, _reporters(junit, json_path, html, verbose, quiet))
    sys.exit(summary.exit_code)


@main.command("list")
@click.option("--profile", type=click.Choice([p.value for p in Profile]), default=None)
@click.option("--markdown", is_flag=True, help="A Markdown table (for docs).")
def list_command(profile: str | None, markdown: bool) -> None:
    """List the catalogue: id, group, title and spec section of every case."""
    import conformance.catalogue  # noqa: F401

    cases = [c for c in CATALOGUE.all() if profile is None or c.profile == profile]
    if markdown:
        click.echo("| id | profile | group | title | spec |\n|---|---|---|---|---|")
        for c in cases:
            click.echo(
                f"| {c.id} | {c.profile} | {c.group} | {c.title.replace('|', '/')} | {c.spec} |"
            )
        return
    for c in cases:
        click.echo(f"{c.id:16} {c.group:13} {c.title}  [{c.spec}]")


@main.group("keys")
def keys_group() -> None:
    """The tester's signing keys."""


@keys_group.command("generate")
@click.option(
    "--type", "key_type", type=click.Choice(sorted(KEY_TYPES)), default="Ed25519", show_default=True
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the private key here (mode 600) instead of printing it.",
)
def keys_generate(key_type: str, out: str | None) -> None:
    """Make a key pair: the private JWK (keep it) and the public JWKS (register it)."""
    import json

    keys = TesterKeys.generate(key_type)
    if out:
        path = Path(out)
        path.write_text(keys.private_json() + "\n", encoding="utf-8")
        path.chmod(0o600)
        click.echo(f"private key written to {path} (kid {keys.kid})", err=True)
    else:
        click.echo("# private key (keep secret; pass with --key-file):", err=True)
        click.echo(keys.private_json())
    click.echo("# public JWKS to register at the target:", err=True)
    click.echo(json.dumps(keys.public_jwks(), indent=2))


@main.command("config")
def config_example() -> None:
    """Print an annotated example configuration file."""
    click.echo(EXAMPLE_CONFIG, nl=False)
