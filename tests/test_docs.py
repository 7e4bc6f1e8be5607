"""The README stays true to the code: generated sections, help texts, the first commands."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from provisioner import docs
from provisioner.cli import main
from provisioner.problems import CATALOGUE

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
REGENERATE = "the README is out of date: run `python -m provisioner.docs --write`"


def code_blocks(markdown: str, language: str = "sh") -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", markdown, re.DOTALL | re.MULTILINE)


def commands() -> list[tuple[str, click.Command]]:
    return [("provisioner", main), *((f"provisioner {n}", c) for n, c in main.commands.items())]


def test_the_command_reference_is_current() -> None:
    assert docs.section(README, "cli-reference") == docs.cli_reference(), REGENERATE


def test_the_error_guide_is_current() -> None:
    assert docs.section(README, "error-guide") == docs.error_guide(), REGENERATE


@pytest.mark.parametrize(("name", "command"), commands(), ids=[n for n, _ in commands()])
def test_every_command_and_option_has_help(name: str, command: click.Command) -> None:
    assert command.help, f"{name} has no docstring"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{name} {param.opts[0]} has no help text"


def test_every_command_is_in_the_reference() -> None:
    reference = docs.cli_reference()
    for name in main.commands:
        assert f"### `provisioner {name}`" in reference


def test_the_error_guide_has_every_kind_with_its_fix() -> None:
    guide = docs.error_guide()
    assert len(CATALOGUE) > 20  # records and validation registered theirs
    for kind in CATALOGUE.values():
        assert kind.title and kind.fix, kind.code
        assert f"| `{kind.code}` | " in guide


def test_write_replaces_the_sections_and_keeps_the_rest() -> None:
    stale = "intro\n<!-- cli-reference -->\nSTALE TEXT\n<!-- /cli-reference -->\n"
    stale += "<!-- error-guide -->\n<!-- /error-guide -->\n<!-- tour -->\n<!-- /tour -->\nend\n"
    fresh = docs.with_sections(stale)
    assert fresh.startswith("intro\n") and fresh.endswith("end\n") and "STALE TEXT" not in fresh
    assert docs.section(fresh, "error-guide") == docs.error_guide()
    assert docs.with_sections(fresh) == fresh
    with pytest.raises(ValueError, match="error-guide"):
        docs.with_sections("<!-- cli-reference -->\n<!-- /cli-reference -->\n")


def test_the_module_prints_each_section(capsys: pytest.CaptureFixture[str]) -> None:
    docs.run(["cli"])
    assert capsys.readouterr().out == docs.cli_reference() + "\n"
    docs.run(["errors"])
    assert capsys.readouterr().out == docs.error_guide() + "\n"


def test_the_first_command_installs_and_runs_the_demo() -> None:
    first = code_blocks(README)[0].strip()
    steps = [shlex.split(step) for step in first.split("&&")]
    assert ["python3", "-m", "venv", ".venv"] in steps
    assert [".venv/bin/pip", "install", "."] in steps
    assert steps[-1] == [".venv/bin/provisioner", "demo"]
    assert "demo" in main.commands


def test_the_second_command_installs_the_test_extra_and_runs_what_ci_runs() -> None:
    second = code_blocks(README)[1].strip()
    steps = [step.strip() for step in second.split("&&")]
    assert ".venv/bin/pip install '.[test]'" in steps
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    ci_pytest = [line.strip() for line in ci if " -m pytest" in line]
    assert ci_pytest == [steps[-1]], "the README's test command differs from the one in .ci/run"


def test_the_shell_completion_lines_work() -> None:
    lines = [line for block in code_blocks(README) for line in block.splitlines()]
    completion = [line for line in lines if "_PROVISIONER_COMPLETE=" in line]
    shells = re.findall(r"_PROVISIONER_COMPLETE=(\w+)_source provisioner", "\n".join(completion))
    assert sorted(shells) == ["bash", "fish", "zsh"]
    for shell in shells:
        result = CliRunner().invoke(
            main, [], env={"_PROVISIONER_COMPLETE": f"{shell}_source"}, prog_name="provisioner"
        )
        assert result.exit_code == 0 and "_PROVISIONER_COMPLETE" in result.output, shell


def test_the_tour_shows_what_the_tool_prints() -> None:
    assert docs.section(README, "tour") == docs.tour(), REGENERATE


def test_the_tour_starts_the_sandbox_it_was_generated_on() -> None:
    # By hand, the reader's sandbox must be the tour's: with uplinks, or verify shows none.
    started = [line for line in README.splitlines() if line.startswith("$ provisioner sandbox")]
    assert started == ["$ provisioner sandbox " + shlex.join(docs.TOUR_SANDBOX)]
    config = docs.tour_sandbox_config()
    assert config.simulate_uplinks is not None and config.tokens == {"org-admin": "demo-org"}
