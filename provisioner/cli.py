"""The ``provisioner`` command line: parse options, call the library, render."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path
from types import FrameType

import click

from provisioner import __version__
from provisioner.sandbox import DEVICE_TYPES, MAX_PAGE_SIZE, ROLES, Sandbox, SandboxConfig


@click.group()
@click.version_option(__version__, prog_name="provisioner")
def main() -> None:
    """Put whole sites of IoT devices onto the Lobaro IoT Platform from a spreadsheet."""


def _parse_tokens(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    tokens: dict[str, str] = {}
    for value in values:
        role, equals, token = value.partition("=")
        if not equals or not token:
            # Never echo the value: it may be a token.
            raise click.BadParameter("expected ROLE=VALUE with a non-empty value", ctx, param)
        if role not in ROLES:
            raise click.BadParameter(
                f"unknown role {role!r}; known roles: {', '.join(ROLES)}", ctx, param
            )
        tokens[role] = token
    return tokens


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the same clean stop as Ctrl-C


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file to keep data and tokens in across restarts (default: memory only).",
)
@click.option(
    "--token",
    "tokens",
    multiple=True,
    callback=_parse_tokens,
    metavar="ROLE=VALUE",
    help=f"Fix the token of a role ({', '.join(ROLES)}); repeatable. Other roles get random ones.",
)
@click.option(
    "--seed-devices",
    type=click.IntRange(min=0),
    default=0,
    help="Add this many realistic devices (the same ones every time).",
)
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help='Write {"url": ..., "tokens": {role: token}} here once listening (for scripts).',
)
@click.option(
    "--latency-ms",
    type=click.IntRange(min=0),
    default=0,
    help="Delay every request by this many milliseconds.",
)
@click.option(
    "--fail-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of requests (0..1) answered 500 without doing anything.",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    help="Requests per second; above it the answer is 429 with Retry-After.",
)
@click.option(
    "--drop-after-commit-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of creates (0..1) that are committed and then get no answer at all.",
)
@click.option(
    "--max-page-size",
    type=click.IntRange(1, MAX_PAGE_SIZE),
    default=MAX_PAGE_SIZE,
    show_default=True,
    help="Clamp limit to this many rows per page.",
)
@click.option("--fault-seed", type=int, help="Seed for the random faults, for reproducible runs.")
@click.option("--verbose", is_flag=True, help="Log every request to stderr.")
def sandbox(
    host: str,
    port: int,
    db: Path | None,
    tokens: dict[str, str],
    seed_devices: int,
    ready_file: Path | None,
    latency_ms: int,
    fail_rate: float,
    rate_limit: float | None,
    drop_after_commit_rate: float,
    max_page_size: int,
    fault_seed: int | None,
    verbose: bool,
) -> None:
    """Serve a local stand-in for the platform's REST API, to rehearse a sheet or to test."""
    config = SandboxConfig(
        host=host,
        port=port,
        db=db,
        tokens=tokens,
        latency_ms=latency_ms,
        fail_rate=fail_rate,
        rate_limit=rate_limit,
        drop_after_commit_rate=drop_after_commit_rate,
        max_page_size=max_page_size,
        seed_devices=seed_devices,
        fault_seed=fault_seed,
        verbose=verbose,
    )
    try:
        server = Sandbox(config)
    except sqlite3.Error as exc:
        raise click.ClickException(f"cannot use the database {db}: {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    # A parent may have started us with SIGINT ignored (background jobs); Ctrl-C must stop us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        click.echo(f"Platform sandbox at {server.url}/api")
        for role, token in server.tokens.items():
            click.echo(f"  token {role:<15} {token}")
        click.echo("Device types:")
        for type_id, name in DEVICE_TYPES.items():
            click.echo(f"  {type_id}  {name}")
        if ready_file is not None:
            server.write_ready_file(ready_file)
        click.echo("Ctrl-C to stop")
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.stop()
