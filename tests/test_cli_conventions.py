"""The conventions people bring from other command lines: -h and `help`, examples in
every command's help, the commands in the order of the work, global options after the
command, completion of template names, --verbose, and --json for scripts.

The platform commands run in this process (click's runner, stdout and stderr apart)
against the real sandbox, whose state is read back."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from provisioner.cli import GLOBAL_FLAGS, GLOBAL_VALUED, Provisioner, main
from provisioner.sandbox import Sandbox
from provisioner.templates import list_templates
from tests.conftest import TEST_TOKENS

TOKEN = TEST_TOKENS["org-admin"]
SAMPLE = Path(__file__).resolve().parent.parent / "sample_sheets" / "site-hh-04.xlsx"
COMMANDS = list(main.commands)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No settings of this machine: no PROVISIONER_* variables, no provisioner.toml."""
    for name in [n for n in os.environ if n.startswith("PROVISIONER_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, prog_name="provisioner")


def on(sandbox: Sandbox, *args: str) -> Result:
    """A platform command against the sandbox, the token from the environment."""
    return run(*args, "--url", sandbox.url, env={"PROVISIONER_TOKEN": TOKEN})


def device_sheet(folder: Path, count: int = 3) -> Path:
    """A CSV of the default template (no users: undo takes everything back)."""
    lines = ["serial,addr,name"] + [f"SN{i:04d},70B3D5E7{i:08X},Meter {i}" for i in range(count)]
    sheet = folder / "site.csv"
    sheet.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sheet


# --- help --------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)])
def test_dash_h_is_help(command: list[str]) -> None:
    short, long = run(*command, "-h"), run(*command, "--help")
    assert short.exit_code == long.exit_code == 0
    assert short.stdout == long.stdout
    assert "Usage: provisioner" in short.stdout


def test_help_command_shows_a_commands_help() -> None:
    assert run("help", "apply").stdout == run("apply", "--help").stdout
    assert run("help").stdout == run("--help").stdout
    unknown = run("help", "aply")
    assert unknown.exit_code == 2
    assert "did you mean apply?" in unknown.stderr


def examples(command: str) -> list[str]:
    """The lines of the "Examples:" block of ``provisioner COMMAND --help``."""
    text = run(command, "--help").stdout
    assert "Examples:" in text, f"{command} --help has no examples"
    block = text.split("Examples:", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in block.strip().splitlines()]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_example_is_a_real_command_line(name: str) -> None:
    """Each example calls this command, with options it has and templates that exist."""
    command = main.commands[name]
    options = {opt for param in command.params for opt in param.opts}
    options |= {*GLOBAL_FLAGS, *GLOBAL_VALUED}
    lines = examples(name)
    assert len(lines) >= 2
    for line in lines:
        words = shlex.split(line)
        if ">" in words:  # a shell redirection is not the command's
            words = words[: words.index(">")]
        if "|" in words:
            words = words[: words.index("|")]
        assert words[:2] == ["provisioner", name], line
        for at, word in enumerate(words[2:], 2):
            if word.startswith("-") and word != "-":
                assert word.split("=", 1)[0] in options, f"{line}: {word}"
            if words[at - 1] in ("--template", "-t"):
                assert word in list_templates(), line
        if name == "help" and len(words) > 2:
            assert words[2] in main.commands, line


def test_commands_listed_in_the_order_of_the_work_with_whole_descriptions() -> None:
    text = run("--help").stdout
    listing = text.split("Commands:", 1)[1]
    names = re.findall(r"^  (\w+)", listing, re.MULTILINE)
    assert names[:10] == [
        "validate",
        "plan",
        "apply",
        "verify",
        "export",
        "undo",
        "template",
        "templates",
        "sandbox",
        "demo",
    ]
    assert "..." not in listing
    assert "without touching the\n" in listing or "without touching the platform" in listing


def test_global_options_after_the_command(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text('template = "lorawan-meter"\n', encoding="utf-8")
    sheet = device_sheet(tmp_path)
    after = run("validate", str(sheet), "--no-color", "--config", "settings.toml")
    before = run("--no-color", "--config", "settings.toml", "validate", str(sheet))
    assert "\x1b[" not in after.stdout
    assert "settings.toml" in after.stdout.splitlines()[0]  # the template came from the file
    assert (after.exit_code, after.stdout) == (before.exit_code, before.stdout)
    assert run("validate", str(sheet), "--config=settings.toml").stdout == before.stdout


def test_an_option_of_the_command_stays_the_commands() -> None:
    assert isinstance(main, Provisioner)
    reorder = main.globals_first
    assert reorder(["sandbox", "--verbose"]) == ["sandbox", "--verbose"]
    assert reorder(["plan", "s.xlsx", "--verbose"]) == ["--verbose", "plan", "s.xlsx"]
    # After `--` everything is an argument.
    assert reorder(["validate", "--", "--no-color"]) == ["validate", "--", "--no-color"]


def completions(words: str) -> list[str]:
    env = {"_PROVISIONER_COMPLETE": "bash_complete", "COMP_WORDS": words}
    env["COMP_CWORD"] = str(len(words.split()) - (0 if words.endswith(" ") else 1))
    result = run(env=env)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_template_names_complete() -> None:
    assert completions("provisioner plan site.xlsx --template lo") == [
        "plain,lobaro-hardware-import",
        "plain,lorawan-meter",
    ]
    everything = completions("provisioner validate site.xlsx -t ")
    assert everything == [f"plain,{name}" for name in list_templates()]
    # A name that is no built-in one: a file of one's own.
    assert completions("provisioner apply site.xlsx --template my") == ["file,my"]


# --- --verbose ---------------------------------------------------------------------------------


def test_verbose_logs_each_request_without_the_token(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = device_sheet(tmp_path)
    result = on(sandbox, "plan", str(sheet), "--template", "default", "--verbose")
    assert result.exit_code == 0, result.output
    logged = [line for line in result.stderr.splitlines() if line.startswith("GET /api/")]
    assert logged, result.stderr
    assert all(re.fullmatch(r"GET /api/\S+ 200 \d+ ms", line) for line in logged), logged
    assert TOKEN not in result.stdout + result.stderr
    assert not any(line.startswith("GET ") for line in result.stdout.splitlines())
    quiet = on(sandbox, "plan", str(sheet), "--template", "default")
    assert not re.search(r"^GET ", quiet.stderr, re.MULTILINE)


# --- --json ------------------------------------------------------------------------------------


def as_json(result: Result, command: str) -> dict[str, Any]:
    """stdout is the report alone, of ``command``; the exit code says what it says."""
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["command"] == command
    assert result.exit_code == (0 if data["ok"] else 1), result.output
    return data


def test_json_of_every_command(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = device_sheet(tmp_path)
    t = ("--template", "default")

    validated = as_json(run("validate", str(sheet), *t, "--json"), "validate")
    assert validated["totals"]["valid"] == 3

    planned = on(sandbox, "plan", str(sheet), *t, "--json", "--report", "plan.json")
    assert as_json(planned, "plan") == json.loads(Path("plan.json").read_text("utf-8"))
    assert "template default" in planned.stderr  # what people read goes to stderr

    applied = on(sandbox, "apply", str(sheet), *t, "--yes", "--json")
    assert as_json(applied, "apply")["totals"] == {"created": 3}
    assert "journal:" in applied.stderr and "create" in applied.stderr  # the plan, before
    assert sandbox.store.count_devices() == 3

    verified = as_json(on(sandbox, "verify", str(sheet), *t, "--json"), "verify")
    assert len(verified["rows"]) == 3

    exported = on(sandbox, "export", "--out", "back.csv", "--all", *t, "--json")
    assert as_json(exported, "export")["totals"] == {"devices": 3}
    assert Path("back.csv").exists()

    undone = on(sandbox, "undo", str(sheet), "--yes", "--report", "-")
    assert as_json(undone, "undo")["totals"] == {"deleted": 3}
    assert sandbox.store.count_devices() == 0


def device_ids(sandbox: Sandbox) -> list[int]:
    return sorted(int(d["id"]) for d in sandbox.store.list_devices(limit=100))


def test_undo_reports(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = device_sheet(tmp_path, 2)
    assert on(sandbox, "apply", str(sheet), "--template", "default", "--yes").exit_code == 0
    ids = device_ids(sandbox)
    refused = on(sandbox, "undo", str(sheet), "--yes", "--report", "undo.xlsx")
    assert refused.exit_code == 2 and ".json, .csv or .html" in refused.stderr
    assert device_ids(sandbox) == ids  # refused before anything was done

    link = "https://platform.example/devices/{id}"
    result = on(
        sandbox,
        "undo",
        str(sheet),
        "--yes",
        "--device-link",
        link,
        *("--report", "undo.json", "--report", "undo.csv", "--report", "undo.html"),
    )
    assert result.exit_code == 0, result.output
    report = json.loads(Path("undo.json").read_text("utf-8"))
    assert report["command"] == "undo" and report["totals"] == {"deleted": 2}
    with open("undo.csv", encoding="utf-8-sig", newline="") as file:
        rows = list(csv.DictReader(file))  # cut like the sheet: with commas
    assert sorted(r["status"] for r in rows) == ["deleted", "deleted"]
    page = Path("undo.html").read_text("utf-8")
    for device_id in ids:
        assert link.format(id=device_id) in page


def test_device_link_only_where_a_report_uses_it() -> None:
    refused = run("export", "--out", "x.xlsx", "--device-link", "https://p.example/d/{id}")
    assert refused.exit_code == 2 and "No such option '--device-link'" in refused.stderr
    assert "--device-link" in run("undo", "--help").stdout
