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

import click

from provisioner import records, validation  # noqa: F401  (they register the problem kinds)
from provisioner.cli import main
from provisioner.problems import CATALOGUE

README = Path(__file__).resolve().parent.parent / "README.md"
WIDTH = 100  # a fixed terminal width, so the help text is the same on every machine


def help_text(command: click.Command, name: str, parent: click.Context | None = None) -> str:
    ctx = click.Context(
        command, info_name=name, parent=parent, terminal_width=WIDTH, max_content_width=WIDTH
    )
    return command.get_help(ctx)


def cli_reference() -> str:
    """Markdown: the ``--help`` of the group and of every command."""
    root = click.Context(main, info_name="provisioner", terminal_width=WIDTH)
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


SECTIONS = {"cli-reference": cli_reference, "error-guide": error_guide}


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
        print(f"{README.name}: command reference and error guide are up to date")
    elif args.what == "cli":
        print(cli_reference())
    elif args.what == "errors":
        print(error_guide())
    else:
        parser.error("say what to print (cli or errors), or --write")


if __name__ == "__main__":
    run()
