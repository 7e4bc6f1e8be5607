"""README sections generated from the code, so that they cannot drift from it.

``python -m provisioner.docs cli`` prints the command reference (every command's
``--help``), ``python -m provisioner.docs errors`` the error guide (every problem
kind in the catalogue with its fix), and ``python -m provisioner.docs --write``
puts both into README.md between their markers. tests/test_docs.py fails when
the README differs from what this module generates.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import click

from provisioner import records, validation  # noqa: F401  (they register the problem kinds)
from provisioner.cli import main
from provisioner.problems import CATALOGUE

README = Path(__file__).resolve().parent.parent / "README.md"
WIDTH = 100  # a fixed terminal width, so the help text is the same on every machine


def help_text(command: click.Command, name: str, parent: click.Context | None = None) -> str:
    # The command's own settings (-h beside --help), as click's make_context applies them:
    # click keeps the help option made for the first context it sees.
    settings = {"terminal_width": WIDTH, "max_content_width": WIDTH, **command.context_settings}
    ctx = click.Context(command, info_name=name, parent=parent, **settings)
    return command.get_help(ctx)


def cli_reference() -> str:
    """Markdown: the ``--help`` of the group and of every command."""
    root = click.Context(
        main, info_name="provisioner", terminal_width=WIDTH, **main.context_settings
    )
    parts = [f"### `provisioner`\n\n```text\n{help_text(main, 'provisioner')}\n```"]
    for name in main.list_commands(root):
        command = main.commands[name]
        text = help_text(command, name, parent=root)
        parts.append(f"### `provisioner {name}`\n\n```text\n{text}\n```")
    return "\n\n".join(parts)


def error_guide() -> str:
    """Markdown: one table row per problem kind, by code."""
    lines = ["| code | problem | severity | fix |", "|---|---|---|---|"]
    for code in sorted(CATALOGUE):
        kind = CATALOGUE[code]
        cells = [f"`{kind.code}`", kind.title, kind.severity, kind.fix]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


# The tour: real commands on a sandbox in this process; what varies from run to run (the
# sandbox's port, seconds) is written as it would read on the README's sandbox.
TOUR_URL = "http://127.0.0.1:8080"
# The sandbox the README's tour starts by hand, word for word; the tour's run uses the same
# settings (on a free port), so a reader who types it sees the same numbers.
TOUR_SANDBOX = (
    "--port",
    "8080",
    "--token",
    "org-admin=demo-org",
    "--simulate-uplinks",
    "2",
)
# The tour's meters send their first uplink about one interval after they were created:
# the tour waits this many intervals at most before its verify.
TOUR_UPLINK_WAIT = 10
_SECONDS = re.compile(r"\b\d+\.\d+ s\b")
_LAST_AT = re.compile(r"the last at \S+")


def tour() -> str:
    """Markdown: the tour's commands and what they print, from a real run on a sandbox."""
    import os
    import shutil
    import tempfile

    from click.testing import CliRunner

    from provisioner.resources import data_folder
    from provisioner.sandbox import Sandbox

    samples = data_folder("sample_sheets")
    blocks: list[str] = []
    with (
        tempfile.TemporaryDirectory() as folder,
        Sandbox(tour_sandbox_config()) as sandbox,
    ):
        work = Path(folder) / "sample_sheets"
        work.mkdir()
        for name in ("site-hh-04.xlsx", "site-hh-04-mistakes.xlsx"):
            shutil.copyfile(samples / name, work / name)
        env = {
            "PROVISIONER_URL": sandbox.url,
            "PROVISIONER_TOKEN": "demo-org",
            "NO_COLOR": "1",
            "COLUMNS": str(WIDTH),
        }
        runner = CliRunner()
        here = os.getcwd()
        os.chdir(folder)
        try:

            def shown(*words: str, prompt: str = "") -> None:
                result = runner.invoke(main, list(words), env=env, catch_exceptions=False)
                text = result.stdout.replace(sandbox.url, TOUR_URL)
                text = _LAST_AT.sub("the last at ...", _SECONDS.sub("0.0 s", text))
                lines = text.rstrip("\n").splitlines()
                command = "$ provisioner " + " ".join(words)
                blocks.append("\n".join([prompt, command, *lines]).strip("\n"))

            site = "sample_sheets/site-hh-04.xlsx"
            mistakes = "sample_sheets/site-hh-04-mistakes.xlsx"
            shown("validate", mistakes, "--template", "lorawan-meter", "--show", "2")
            # The valid sheet's headers fit lorawan-meter: no --template needed (the first
            # line says so); apply takes the template the saved plan was made with.
            shown(
                "plan",
                site,
                "--out",
                "plan.json",
                prompt=f"$ export PROVISIONER_URL={TOUR_URL} PROVISIONER_TOKEN=demo-org",
            )
            shown("apply", site, "--plan", "plan.json", "--yes")
            shown("apply", site, "--yes")
            # The meters are mounted: every one the sandbox does not keep silent sends.
            _wait_for_first_uplinks(sandbox)
            shown("verify", site)
        finally:
            os.chdir(here)
    return "\n\n".join(f"```\n{block}\n```" for block in blocks)


def tour_sandbox_config() -> Any:
    """The SandboxConfig of ``provisioner sandbox`` with TOUR_SANDBOX, on a free port."""
    import dataclasses

    from provisioner.sandbox import SandboxConfig

    command = main.commands["sandbox"]
    settings = command.make_context("sandbox", list(TOUR_SANDBOX)).params
    names = {field.name for field in dataclasses.fields(SandboxConfig)}
    chosen = {name: value for name, value in settings.items() if name in names}
    return SandboxConfig(**{**chosen, "port": 0})


def _wait_for_first_uplinks(sandbox: Any) -> None:
    """Until every device the sandbox does not keep silent has sent its first uplink."""
    import time

    from provisioner.sandbox.uplinks import is_silent

    config = sandbox.config
    devices = sandbox.store.list_devices(limit=1000)
    sending = [d["id"] for d in devices if not is_silent(d["addr"], config.silent_share)]
    deadline = time.monotonic() + TOUR_UPLINK_WAIT * config.simulate_uplinks
    while not all(sandbox.store.list_parsed_data(i, limit=1) for i in sending):
        if time.monotonic() > deadline:
            raise RuntimeError("the tour's sandbox sent no uplinks: is --simulate-uplinks set?")
        time.sleep(0.1)


SECTIONS = {"cli-reference": cli_reference, "error-guide": error_guide, "tour": tour}


def _find(readme: str, name: str) -> re.Match[str]:
    found = re.search(rf"<!-- {name} -->\n(.*?)<!-- /{name} -->", readme, re.DOTALL)
    if found is None:
        raise ValueError(f"README.md has no <!-- {name} --> ... <!-- /{name} --> section")
    return found


def section(readme: str, name: str) -> str:
    """The text between ``<!-- name -->`` and ``<!-- /name -->``, without blank lines around."""
    return _find(readme, name).group(1).strip("\n")


def with_sections(readme: str) -> str:
    """The README with every generated section replaced by what the code says now."""
    for name, generate in SECTIONS.items():
        found = _find(readme, name)
        readme = readme[: found.start(1)] + f"\n{generate()}\n\n" + readme[found.end(1) :]
    return readme


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m provisioner.docs", description=__doc__)
    parser.add_argument("what", nargs="?", choices=sorted(["cli", "errors"]))
    parser.add_argument("--write", action="store_true", help="rewrite both sections of README.md")
    args = parser.parse_args(argv)
    if args.write:
        README.write_text(with_sections(README.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"{README.name}: the tour, the command reference and the error guide are up to date")
    elif args.what == "cli":
        print(cli_reference())
    elif args.what == "errors":
        print(error_guide())
    else:
        parser.error("say what to print (cli or errors), or --write")


if __name__ == "__main__":
    run()
