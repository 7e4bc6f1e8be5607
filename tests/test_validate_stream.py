"""A streamed validation (``validate_stream``, what `provisioner validate` runs) holds no row
without a problem: it finds what a validation that holds every row finds, also for the
rules across rows when the rows that share a key lie blocks apart, and its JSON report
has every row, each problem's words and fix resolving through the report's ``kinds``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_intake import xlsx

from provisioner import records
from provisioner.cli import main
from provisioner.problems import CATALOGUE
from provisioner.reports import render_report
from provisioner.reports.json_report import RowSpill, expanded
from provisioner.templates import load_template
from provisioner.validation import _Keys, validate_sheet, validate_stream

HEADER = ["serial", "addr", "name", "deviceTypeId", "tags", "lat", "lon"]
PASSWORD = "Geheim2026zaehler"


def device(n: int, **given: Any) -> list[Any]:
    row: dict[str, Any] = {
        "serial": f"SN{n:04d}",
        "addr": f"0004A30B{n:08X}",
        "name": f"Zähler {n}",
        "deviceTypeId": 1 + n % 3,
        "tags": "Wasser",
        "lat": 53.5,
        "lon": 9.9,
    }
    row.update(given)
    return [row[name] for name in HEADER]


def site(tmp_path: Path) -> Path:
    """Forty devices with mistakes spread over them: the same serial in rows 3 and 40, the
    same addr in rows 5 and 38 (both rows otherwise clean), a bad type in row 20; users
    with one email twice in two spellings; downlinks, one for a device the sheet lacks
    and one whose device is in the last row; a device whose serial is a user's password,
    read before the users tab."""
    rows = [HEADER] + [device(n) for n in range(2, 42)]
    rows[40 - 1] = device(40, serial="SN0003")
    rows[38 - 1] = device(38, addr="0004A30B00000005")
    rows[20 - 1] = device(20, deviceTypeId="zwei")
    rows[30 - 1] = device(30, serial=PASSWORD)
    users = [
        ["name", "email", "password", "roles"],
        ["Eva", "eva@example.com", PASSWORD, "org-admin"],
        ["Max", "max@example.com", "s0meSecur3Pw", "device-admin"],
        ["Max 2", "MAX@example.com", "s0meSecur3Pw2", "device-admin"],
    ]
    downlinks = [
        ["key", "type", "payload"],
        ["SN0041", "config", '{"d": {"listenCron": "0 0/20 * * * *"}, "q": "config"}'],
        ["SN9999", "config", '{"d": {"listenCron": "0 0/20 * * * *"}, "q": "config"}'],
    ]
    return xlsx(tmp_path, rows, Users=users, Downlinks=downlinks)


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of three rows: the rows that share a key lie blocks apart."""
    monkeypatch.setattr(records, "BLOCK", 3)


def test_a_streamed_validation_finds_what_one_that_holds_every_row_finds(
    tmp_path: Path, small_blocks: None
) -> None:
    path = site(tmp_path)
    template = load_template("default")
    held = validate_sheet(path, template)
    streamed = validate_stream(path, template)
    assert not streamed.records.devices and held.records.devices
    assert streamed.totals == held.totals == {"valid": 38, "invalid": 7}
    assert streamed.listed()["rows"] == [
        row for row in held.to_dict()["rows"] if row["errors"] or row["warnings"]
    ]
    found = {(p.sheet, p.cell, p.code) for p in streamed.errors + streamed.warnings}
    assert {
        ("Devices", "A3", "duplicate-key"),
        ("Devices", "A40", "duplicate-key"),
        ("Devices", "B5", "duplicate-addr"),
        ("Devices", "B38", "duplicate-addr"),
        ("Devices", "D20", "not-a-device-type"),
        ("Users", "B3", "duplicate-email"),
        ("Users", "B4", "duplicate-email"),
        ("Downlinks", "A3", "downlink-device-not-in-sheet"),
    } <= found
    # Rows clean when they were read became invalid when the later row came.
    first = next(p for p in streamed.errors if p.cell == "A3")
    assert first.message == "serial 'SN0003' is also in row 40"
    assert streamed.problem_rows[1].key == "SN0003" and streamed.problem_rows[1].row == 3
    # A downlink for the device in the last row is no unknown device.
    assert not any(p.cell == "A2" and p.sheet == "Downlinks" for p in streamed.warnings)
    # Held: the records of the rows found invalid at the end are invalid too.
    assert not held.records.devices[1].valid and held.records.devices[2].valid


def test_the_json_report_has_every_row_and_each_fix_once(
    tmp_path: Path, small_blocks: None
) -> None:
    path = site(tmp_path)
    report = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["validate", str(path), "--report", str(report)])
    assert result.exit_code == 1, result.output
    text = report.read_text(encoding="utf-8")
    written = json.loads(text)
    # Each row is a line of its own; the report's keys come first, indented.
    assert text.count('\n    {"sheet": ') == len(written["rows"]) == 40 + 3 + 2
    # Every problem's kind is in the catalogue, its fix said there and not again.
    problems = written["problems"] + [
        p for row in written["rows"] for p in row["errors"] + row["warnings"]
    ]
    assert problems and all("fix" not in p for p in problems)
    codes = {p["code"] for p in problems}
    assert set(written["kinds"]) == codes
    for code, kind in written["kinds"].items():
        assert kind == {
            "title": CATALOGUE[code].title,
            "severity": CATALOGUE[code].severity,
            "fix": CATALOGUE[code].fix,
        }
    # What the library's report of every row gives as JSON, with the same secrets.
    held = validate_sheet(path, load_template("default"))
    secrets = {"secrets": held.records.secrets(), "secret_columns": held.records.secret_columns}
    library = json.loads(render_report(held.to_dict(), ".json", **secrets))
    assert {k: v for k, v in written.items() if k != "made_at"} == {
        k: v for k, v in library.items() if k != "made_at"
    }
    whole = expanded(written)
    assert whole["rows"][1]["errors"][0]["fix"] == CATALOGUE["duplicate-key"].fix
    # A row written before the users tab was read does not show its serial, a password.
    assert PASSWORD not in text
    assert whole["rows"][28]["key"] == "***"


def test_json_on_stdout_is_the_report_file(tmp_path: Path, small_blocks: None) -> None:
    path = site(tmp_path)
    report = tmp_path / "report.json"
    CliRunner().invoke(main, ["validate", str(path), "--report", str(report)])
    result = CliRunner().invoke(main, ["validate", str(path), "--json"])
    printed, written = json.loads(result.stdout), json.loads(report.read_text("utf-8"))
    printed.pop("made_at")
    written.pop("made_at")
    assert printed == written


def test_the_other_reports_show_the_rows_with_problems_and_count_the_rest(
    tmp_path: Path,
) -> None:
    path = site(tmp_path)
    html, csv = tmp_path / "r.html", tmp_path / "r.csv"
    result = CliRunner().invoke(
        main, ["validate", str(path), "--report", str(html), "--report", str(csv)]
    )
    assert "45 rows: 38 valid, 7 invalid, 1 warning" in result.output
    page = html.read_text(encoding="utf-8")
    assert "all (45)" in page and "37 rows without any are counted above" in page
    lines = csv.read_text(encoding="utf-8-sig").splitlines()
    assert any(";A40;" in line for line in lines)
    assert not any(line.startswith("Devices;2;") for line in lines)  # row 2 has no problem


def test_a_spill_gives_back_its_rows_with_the_listed_ones_in_place(tmp_path: Path) -> None:
    report = validate_sheet(site(tmp_path), load_template("default"))
    spill = RowSpill()
    try:
        for row in report.rows:
            spill.write(row)
        listed = [{"listed": index} for index in report.problem_rows]
        given = list(spill.rows(listed, list(report.problem_rows)))
    finally:
        spill.close()
    assert len(given) == len(report.rows)
    for index, row in enumerate(given):
        if index in report.problem_rows:
            assert row == {"listed": index}
        else:
            assert json.loads(row) == report.rows[index].to_dict()


def test_keys_find_the_rows_that_share_a_text() -> None:
    keys = _Keys()
    keys.extend(["a", "b", None, "", "a", 7, "c"])
    keys.extend(["b", "ä", "ä"])
    assert keys.groups() == [[0, 4], [1, 7], [8, 9]]
    assert [keys.value(n) for n in (0, 2, 3, 5, 8)] == ["a", "", "", "", "ä"]
    assert keys.find({"a", "ä", "x", ""}) == {"a", "ä"}
    emails = _Keys(fold=True)
    emails.extend(["Max@example.com", "eva@example.com", "max@EXAMPLE.com"])
    assert emails.groups() == [[0, 2]]
    assert emails.value(2) == "max@EXAMPLE.com"
    assert _Keys().groups() == []


def test_the_summary_takes_validates_warning_count_from_its_header(tmp_path: Path) -> None:
    # The summary does not count the warnings of 50,000 listed rows again: the header's
    # count must be what counting them gives.
    from provisioner.reports.base import warning_count

    report = validate_stream(site(tmp_path), load_template("default"))
    assert report.warnings  # the sheet has some
    listed = report.listed()
    counted = sum(
        1
        for item in [
            *listed["problems"],
            *(p for r in listed["rows"] for p in r["errors"] + r["warnings"]),
        ]
        if item["severity"] == "warning"
    )
    assert warning_count(listed) == counted == len(report.warnings)
