"""`provisioner validate` and `provisioner template` as an installer runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from provisioner.cli import main
from provisioner.reports.json_report import expanded
from provisioner.templates import load_template
from provisioner.validation import validate_sheet

SAMPLES = Path(__file__).resolve().parent.parent / "sample_sheets"
MISTAKES = SAMPLES / "site-hh-04-mistakes.xlsx"
VALID = SAMPLES / "site-hh-04.xlsx"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_valid_site_exits_0() -> None:
    code, out = run("validate", str(VALID), "--template", "lorawan-meter")
    assert code == 0, out
    assert "68 rows" in out and "68 valid" in out


def test_mistakes_exit_1_and_are_listed_by_cell() -> None:
    code, out = run("validate", str(MISTAKES), "-t", "lorawan-meter", "--show", "5")
    assert code == 1
    assert "A2" in out and "stored as the number 1234567890123456" in out
    assert "more rows with problems" in out
    assert "Traceback" not in out


def test_reports_in_every_format(tmp_path: Path) -> None:
    paths = [tmp_path / f"r.{suffix}" for suffix in ("json", "html", "xlsx", "csv")]
    args = ["validate", str(MISTAKES), "-t", "lorawan-meter"]
    for path in paths:
        args += ["--report", str(path)]
    code, out = run(*args)
    assert code == 1
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    # The JSON report is the library's report object, every row in it, each fix said once
    # for its kind.
    written = expanded(json.loads(paths[0].read_text(encoding="utf-8")))
    library = validate_sheet(MISTAKES, load_template("lorawan-meter")).to_dict()
    written.pop("made_at")
    library.pop("made_at")
    assert written == library
    # No password from the Users tab in any file written.
    for path in paths:
        if path.suffix == ".xlsx":
            book = openpyxl.load_workbook(path)
            text = " ".join(
                str(c.value) for ws in book.worksheets for r in ws.iter_rows() for c in r
            )
        else:
            text = path.read_text(encoding="utf-8-sig")
        for password in ("Gr1ndel-Zaehler", "Wasser2026uhr", "kurz1", "Sicher3sPasswort"):
            assert password not in text, (path.name, password)


@pytest.mark.parametrize(
    ("content", "suffix", "words"),
    [
        (b"serial,addr\n1,2\n", ".xlsx", "rename it to .csv"),
        (b"", ".csv", "empty"),
        (b"PK\x03\x04junk", ".csv", "damaged zip file"),
    ],
)
def test_unreadable_input_exits_2(tmp_path: Path, content: bytes, suffix: str, words: str) -> None:
    path = tmp_path / f"site{suffix}"
    path.write_bytes(content)
    code, out = run("validate", str(path))
    assert code == 2, out
    assert words.lower() in out.lower()
    assert "Traceback" not in out


def test_missing_file_and_unknown_template_exit_2(tmp_path: Path) -> None:
    code, out = run("validate", str(tmp_path / "nope.xlsx"))
    assert code == 2 and "nope.xlsx" in out
    code, out = run("validate", str(VALID), "--template", "lorawan-meters")
    assert code == 2 and "did you mean 'lorawan-meter'" in out


def test_bad_report_suffix_fails_before_any_work(tmp_path: Path) -> None:
    code, out = run("validate", str(VALID), "--report", str(tmp_path / "r.pdf"))
    assert code == 2 and ".pdf" in out
    assert not (tmp_path / "r.pdf").exists()


def test_template_writes_a_blank_workbook_that_validates(tmp_path: Path) -> None:
    out_file = tmp_path / "blank.xlsx"
    code, out = run("template", "wmbus-gateway-nbiot", "--out", str(out_file))
    assert code == 0, out
    assert out_file.exists()
    code, out = run("template", "wmbus-gateway-nbiot", "--out", str(out_file))
    assert code == 2 and "--force" in out
    code, out = run("validate", str(out_file), "-t", "wmbus-gateway-nbiot")
    assert code == 0, out


def test_real_process_german_csv() -> None:
    """The console script as a user runs it, on the German CSV sample."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "provisioner",
            "validate",
            str(SAMPLES / "gateways-de.csv"),
            "--template",
            "wmbus-gateway-nbiot",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "12 valid" in done.stdout
