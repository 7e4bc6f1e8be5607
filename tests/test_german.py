"""German throughout: the question answered with j/nein, German dates for --since, an
export in German that reads back without --template, reports of a German workbook in
German, and one DevEUI column in the blank LoRaWAN workbook."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from test_apply_terminal import QUESTION, finish, read_until, start
from test_blank_sheet_lang import blank, fill_one_device_and_user, headers
from test_export import SITE_TAG, Factory, fill, run_cli

from provisioner.cli import main, yes_or_no
from provisioner.sandbox import Sandbox
from provisioner.templates import load_template
from provisioner.verify import VerifyError, parse_since

# --- the question ----------------------------------------------------------------------------


def test_j_at_the_question_creates_the_rows(sandbox_factory: Factory, tmp_path: Path) -> None:
    sb, pid, fd = start(sandbox_factory, tmp_path)
    read_until(fd, QUESTION)
    os.write(fd, b"j\r")
    code, screen = finish(pid, fd)
    assert code == 0, screen
    assert sb.store.count_devices() == 5


def test_nein_at_the_question_writes_nothing(sandbox_factory: Factory, tmp_path: Path) -> None:
    sb, pid, fd = start(sandbox_factory, tmp_path)
    read_until(fd, QUESTION)
    os.write(fd, b"Nein\r")
    code, screen = finish(pid, fd)
    assert code == 2, screen
    assert "nothing was written" in screen and "Traceback" not in screen
    assert sb.store.count_devices() == 0


@pytest.mark.parametrize(
    ("typed", "answer"),
    [
        ("j\n", True),
        ("JA\n", True),
        ("y\n", True),
        ("Yes\n", True),
        ("n\n", False),
        ("nein\n", False),
        ("NO\n", False),
        ("\n", False),  # Enter: the default, no
        ("vielleicht\nja\n", True),  # asked again
    ],
)
def test_yes_or_no_in_english_and_german(typed: str, answer: bool) -> None:
    @main.command("ask-test", hidden=True)
    def ask() -> None:
        print("answer:", yes_or_no("Send 5 rows?"))

    try:
        result = CliRunner().invoke(main, ["ask-test"], input=typed)
    finally:
        main.commands.pop("ask-test")
    assert result.exit_code == 0, result.output
    assert f"answer: {answer}" in result.output
    assert ("is neither yes nor no" in result.output) is typed.startswith("vielleicht")


# --- German dates and times ------------------------------------------------------------------

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def local(*parts: int) -> datetime:
    """A time on the machine's clock (as the installer means it), in UTC."""
    return datetime(*parts).astimezone().astimezone(UTC)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("06.12.2026 08:00", local(2026, 12, 6, 8, 0)),
        ("6.12.2026 8:00", local(2026, 12, 6, 8, 0)),
        ("6.12. 8:00", local(2026, 12, 6, 8, 0)),  # this year
        ("6.12 8:00", local(2026, 12, 6, 8, 0)),
        ("06.12.2026", local(2026, 12, 6)),
        ("6.12.", local(2026, 12, 6)),
        ("06.12.2026, 08:00:30 Uhr", local(2026, 12, 6, 8, 0, 30)),
        ("2026-12-06T08:00+01:00", datetime(2026, 12, 6, 7, 0, tzinfo=UTC)),
        ("2026-12-06 08:00", local(2026, 12, 6, 8, 0)),
        ("90m", datetime(2026, 12, 7, 10, 30, tzinfo=UTC)),
    ],
)
def test_since_reads_german_dates_iso_and_durations(text: str, moment: datetime) -> None:
    assert parse_since(text, NOW) == moment


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("31.02.2026 08:00", "is not a day and time of the calendar"),
        ("06.12.2026 25:00", "is not a day and time of the calendar"),
        ("gestern", "is neither a time (06.12.2026 08:00, 6.12. 8:00"),
        ("6.12.26", "is neither a time"),
    ],
)
def test_since_says_what_it_cannot_read(text: str, said: str) -> None:
    with pytest.raises(VerifyError, match="--since") as caught:
        parse_since(text, NOW)
    assert said in str(caught.value)


# --- export --lang de ------------------------------------------------------------------------


def test_a_german_export_reads_back_without_template(sandbox: Sandbox, tmp_path: Path) -> None:
    fill(sandbox, load_template("lorawan-meter"))
    done = run_cli(
        sandbox,
        tmp_path,
        *("export", "--out", "site.xlsx", "--template", "lorawan-meter", "--tag", SITE_TAG),
        *("--lang", "de"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    workbook = openpyxl.load_workbook(tmp_path / "site.xlsx")
    assert workbook.sheetnames == ["Geräte", "Plattform-Benutzer", "Anleitung"]
    found = headers(workbook["Geräte"])
    assert found[:4] == ["DevEUI", "Bezeichnung", "Seriennummer", "Beschreibung"]
    assert "Gerätetyp" in found and "deviceTypeId" not in found
    assert headers(workbook["Plattform-Benutzer"]) == ["Name", "E-Mail", "Passwort", "Rollen"]
    instructions = "\n".join(str(c.value) for row in workbook["Anleitung"].iter_rows() for c in row)
    assert "Exportiert aus" in instructions and "Exported from" not in instructions

    checked = run_cli(sandbox, tmp_path, "validate", "site.xlsx")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "template lorawan-meter: recorded in site.xlsx" in checked.stdout
    assert "4 valid, 0 invalid" in checked.stdout and "warning" not in checked.stdout
    planned = run_cli(sandbox, tmp_path, "plan", "site.xlsx", "--report", "plan.json")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "exists 4" in planned.stdout, planned.stdout


# --- reports of a German workbook ------------------------------------------------------------


def test_the_xlsx_report_of_a_german_workbook_speaks_german(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    path, workbook = blank(tmp_path, "lorawan-meter", "de")
    fill_one_device_and_user(path, workbook, "lorawan-meter")
    devices = workbook["Geräte"]
    devices["A3"] = "70B3D5E75E0012"  # two hex digits short: a problem on the report
    devices["B3"] = "Haus 5"
    workbook.save(path)
    env = {"PROVISIONER_TOKEN": sandbox.tokens["org-admin"], "PROVISIONER_URL": sandbox.url}
    result = CliRunner().invoke(
        main, ["plan", str(path), "--report", str(tmp_path / "r.xlsx")], env=env
    )
    assert result.exit_code == 1, result.output
    report = openpyxl.load_workbook(tmp_path / "r.xlsx")
    assert "Fehler" in report.sheetnames and "Errors" not in report.sheetnames
    added = headers(report["Geräte"])[-4:]
    assert added == ["Aktion", "Plattform-ID", "Meldung", "Sendet"]
    assert headers(report["Fehler"]) == [
        *("Blatt", "Zeile", "Schlüssel", "Zelle", "Spalte", "Schweregrad", "Wert"),
        *("Meldung", "Behebung"),
    ]
    comment = report["Geräte"]["A3"].comment
    assert comment is not None and comment.text.startswith("Fehler: ")
    anleitung = report["Anleitung"]
    assert anleitung["A2"].value.startswith("LoRaWAN-Zähler: addr ist die DevEUI")
    # The copy reads back: its German outcome columns are known, not unknown headers.
    again = CliRunner().invoke(main, ["validate", str(tmp_path / "r.xlsx")])
    assert "Meldung" not in again.output, again.output


# --- the blank LoRaWAN workbook --------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "de"])
def test_the_blank_lorawan_workbook_has_one_deveui_column(tmp_path: Path, lang: str) -> None:
    _, workbook = blank(tmp_path, "lorawan-meter", lang)
    found = headers(workbook.worksheets[0])
    assert [h for h in found if "deveui" in h.casefold()] == ["DevEUI"]
    assert "JoinEUI" in found and "AppKey" in found
