"""The settings file: precedence option > environment > file > default, and its mistakes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from provisioner.cli import main
from provisioner.sandbox import Sandbox

VALID = Path(__file__).resolve().parent.parent / "sample_sheets" / "site-hh-04.xlsx"


@pytest.fixture(autouse=True)
def clean_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs in an empty working folder with no PROVISIONER_* settings around."""
    for name in ("PROVISIONER_URL", "PROVISIONER_TOKEN", "PROVISIONER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), env=env, prog_name="provisioner")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def planned_url(*args: str, env: dict[str, str] | None = None) -> str:
    """The URL plan would use: each test URL lacks http://, so plan names it and stops (exit 2)."""
    write(Path("site.csv"), "serial,addr\nSN1,70B3D5E700000001\n")
    result = run(*args, "plan", "site.csv", env={"PROVISIONER_TOKEN": "t0ken", **(env or {})})
    assert result.exit_code == 2, result.output
    if "no platform URL" in result.output:
        return "(none)"
    return result.output.split("https://: ")[1].strip().strip("'")


def test_url_precedence_is_option_then_environment_then_file_then_default(tmp_path: Path) -> None:
    assert planned_url() == "(none)"
    write(tmp_path / "provisioner.toml", 'url = "from-file"\n')
    assert planned_url() == "from-file"
    env = {"PROVISIONER_URL": "from-env"}
    assert planned_url(env=env) == "from-env"
    # The option belongs to the command, the settings file to the group.
    result = run(
        "plan", "site.csv", "--url", "from-option", env={**env, "PROVISIONER_TOKEN": "t0ken"}
    )
    assert "'from-option'" in result.output and result.exit_code == 2


def test_template_from_the_file_and_the_option_wins(tmp_path: Path) -> None:
    write(tmp_path / "provisioner.toml", 'template = "from-file"\n')
    result = run("validate", str(VALID))
    assert result.exit_code == 2 and "from-file" in result.output
    result = run("validate", str(VALID), "--template", "lorawan-meter")
    assert result.exit_code == 0, result.output


def test_config_option_and_environment_name_a_file_anywhere(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    settings = write(tmp_path / "elsewhere" / "site.toml", 'url = "from-named-file"\n')
    write(tmp_path / "provisioner.toml", 'url = "from-working-folder"\n')
    assert planned_url() == "from-working-folder"
    assert planned_url("--config", str(settings)) == "from-named-file"
    assert planned_url(env={"PROVISIONER_CONFIG": str(settings)}) == "from-named-file"


def test_a_missing_config_file_is_a_usage_error() -> None:
    result = run("--config", "nowhere.toml", "validate", str(VALID))
    assert result.exit_code == 2 and "nowhere.toml" in result.output


def test_apply_settings_become_its_defaults(tmp_path: Path) -> None:
    write(tmp_path / "provisioner.toml", "concurrency = 16\nmax-rps = 2.5\n")
    result = run("apply", "--help")
    assert "[default: 16;" in result.output
    # A value the option refuses shows that the file's value reaches the option.
    write(tmp_path / "provisioner.toml", "concurrency = 65\n")
    result = run("apply", "site.csv")
    assert result.exit_code == 2 and "--concurrency" in result.output


def test_an_unknown_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    write(tmp_path / "provisioner.toml", "max_rps = 10\n")
    result = run("validate", str(VALID))
    assert result.exit_code == 2
    assert "unknown key 'max_rps' in provisioner.toml: did you mean 'max-rps'?" in result.output


def test_the_token_is_never_read_from_the_file(tmp_path: Path) -> None:
    write(tmp_path / "provisioner.toml", 'token = "s3cret-value"\n')
    result = run("validate", str(VALID))
    assert result.exit_code == 2
    assert "PROVISIONER_TOKEN" in result.output and "--token-file" in result.output
    assert "provisioner.toml" in result.output and "s3cret-value" not in result.output


def test_malformed_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    write(tmp_path / "provisioner.toml", 'url = "https://example.org"\ntemplate = \n')
    result = run("validate", str(VALID))
    assert result.exit_code == 2
    assert "provisioner.toml is not valid TOML" in result.output and "line 2" in result.output


@pytest.mark.parametrize(
    "line",
    [
        'concurrency = "many"',
        "max-rps = true",
        "max-rps = 0",
        'reports = ["pdf"]',
        'reports = "html"',
    ],
)
def test_a_value_of_the_wrong_kind_is_refused(tmp_path: Path, line: str) -> None:
    write(tmp_path / "provisioner.toml", line + "\n")
    result = run("validate", str(VALID))
    assert result.exit_code == 2 and "provisioner.toml" in result.output


def test_reports_from_the_file_go_beside_the_sheet_unless_report_is_given(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    sheet = tmp_path / "site" / "hh-04.xlsx"
    shutil.copyfile(VALID, sheet)
    write(tmp_path / "provisioner.toml", 'template = "lorawan-meter"\nreports = ["json", "html"]\n')
    assert run("validate", str(sheet)).exit_code == 0
    report = json.loads((tmp_path / "site" / "hh-04.validate.json").read_text(encoding="utf-8"))
    assert report["command"] == "validate"
    assert (tmp_path / "site" / "hh-04.validate.html").is_file()

    shutil.rmtree(tmp_path / "site")
    (tmp_path / "site").mkdir()
    shutil.copyfile(VALID, sheet)
    assert run("validate", str(sheet), "--report", "mine.csv").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == ["hh-04.xlsx"]
    assert (tmp_path / "mine.csv").is_file()


def test_apply_keeps_its_journal_in_the_journal_folder(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "site.csv", "serial,addr,name\nSN1,70B3D5E700000001,Zähler 1\n")
    (tmp_path / "settings").mkdir()
    settings = write(
        tmp_path / "settings" / "site.toml",
        f'url = "{sandbox.url}"\njournal-folder = "journals"\nreports = ["json"]\n',
    )
    env = {"PROVISIONER_TOKEN": sandbox.tokens["org-admin"]}
    result = run("--config", str(settings), "apply", str(sheet), "--yes", env=env)
    assert result.exit_code == 0, result.output
    journal = tmp_path / "settings" / "journals" / "site.journal.jsonl"
    assert journal.is_file() and not (tmp_path / "site.journal.jsonl").exists()
    assert json.loads((tmp_path / "site.apply.json").read_text(encoding="utf-8"))["totals"]
