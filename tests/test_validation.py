"""Validation: one test per kind of mistake, each with its cell and message."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from provisioner.templates import load_template
from provisioner.validation import ValidationReport, validate_sheet

HEADER = ["serial", "addr", "name", "deviceTypeId", "tags", "lat", "lon", "certEnforcesDtls"]
GOOD = ["1001", "0004A30B001C0001", "Zähler 1", "1", "Site-HH-04", "53.55", "9.99", "false"]


def workbook(tmp_path: Path, devices: list[list[Any]], **tabs: list[list[Any]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Devices"
    for row in devices:
        sheet.append(row)
    for name, rows in tabs.items():
        tab = book.create_sheet(name)
        for row in rows:
            tab.append(row)
    path = tmp_path / "site.xlsx"
    book.save(path)
    return path


def csv_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.csv"
    path.write_text(text, encoding="utf-8")
    return path


def run(path: Path, template: str = "default") -> ValidationReport:
    return validate_sheet(path, load_template(template))


def only(report: ValidationReport, code: str) -> dict[str, Any]:
    found = [p for p in report.errors + report.warnings if p.code == code]
    assert len(found) == 1, [(p.code, p.where, p.message) for p in report.errors + report.warnings]
    return found[0].to_dict()


def test_a_good_sheet_is_valid(tmp_path: Path) -> None:
    report = run(workbook(tmp_path, [HEADER, GOOD]))
    assert report.ok, [p.message for p in report.errors]
    assert report.totals == {"valid": 1, "invalid": 0}
    body = report.records.devices[0].body
    assert body == {
        "serial": "1001",
        "addr": "0004A30B001C0001",
        "name": "Zähler 1",
        "deviceTypeId": 1,
        "tags": ["Site-HH-04"],
        "location": {"lat": 53.55, "lon": 9.99},
        "certEnforcesDtls": False,
    }


def test_identifier_stored_as_a_number_shown_exactly_is_read_as_its_digits(tmp_path: Path) -> None:
    row = [20240001, *GOOD[1:]]
    report = run(workbook(tmp_path, [HEADER, row]))
    found = only(report, "id-number-read-as-digits")
    assert found["cell"] == "A1"  # one notice for the column
    assert "1 cell of serial stored as a number is read as the digits shown" in found["message"]
    assert "(first: A2 20240001)" in found["message"]
    assert "Format the column as Text" in found["fix"]
    assert report.ok and report.records.devices[0].body["serial"] == "20240001"


def test_identifier_stored_as_a_number_excel_does_not_show_whole_is_an_error(
    tmp_path: Path,
) -> None:
    row = [1337.5, *GOOD[1:]]
    found = only(run(workbook(tmp_path, [HEADER, row])), "id-stored-as-number")
    assert found["cell"] == "A2"
    assert "stored as the number 1337.5" in found["message"]
    assert "Format the column as Text" in found["fix"]


def test_imei_in_e_notation(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "serial;addr\n1001;3.52656E+14\n")
    found = only(run(path), "id-scientific")
    assert found["cell"] == "B2"
    assert "E+ notation" in found["message"]


def test_identifier_with_decimal_zero(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "serial,addr\n1337.0,0004A30B001C0001\n")
    found = only(run(path), "id-decimal")
    assert found["cell"] == "A2"
    assert "'1337.0'" in found["message"]


def test_deveui_lost_its_leading_zero(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "serial,DevEUI\n1001,4A30B001C0001AB\n")
    found = only(run(path, "lorawan-meter"), "id-lost-leading-zero")
    assert found["cell"] == "B2"
    assert "15 hex digits, not 16" in found["message"]


def test_imei_with_wrong_form(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "serial,IMEI\n1001,35265610067700X\n")
    found = only(run(path, "wmbus-gateway-nbiot"), "id-format")
    assert found["cell"] == "B2"
    assert "15 digits" in found["message"]


def test_date_where_text_was_meant(tmp_path: Path) -> None:
    row = [datetime.datetime(2026, 12, 1), *GOOD[1:]]
    found = only(run(workbook(tmp_path, [HEADER, row])), "date-not-text")
    assert found["cell"] == "A2"
    assert "2026-12-01" in found["message"]


def test_formula_without_value(tmp_path: Path) -> None:
    row = [*GOOD[:2], '=CONCAT("Zähler ", A2)', *GOOD[3:]]
    found = only(run(workbook(tmp_path, [HEADER, row])), "formula-without-value")
    assert found["cell"] == "C2"
    assert "no computed value" in found["message"]


@pytest.mark.parametrize(
    ("column", "value", "code", "words"),
    [
        (3, "zwei", "not-a-device-type", "'zwei' is not a device type"),
        (3, "Bridge - 3", "not-a-device-type", "'Bridge - 3' is not a device type"),
        (5, "north", "not-a-number", "'north' is not a number"),
        (7, "maybe", "not-yes-no", "'maybe' is neither true nor false"),
    ],
)
def test_values_that_do_not_convert(
    tmp_path: Path, column: int, value: str, code: str, words: str
) -> None:
    row = list(GOOD)
    row[column] = value
    found = only(run(workbook(tmp_path, [HEADER, row])), code)
    assert found["cell"] == f"{'ABCDEFGH'[column]}2"
    assert words in found["message"]


def test_a_device_type_label_means_its_number(tmp_path: Path) -> None:
    # The blank workbook's dropdown writes "3 - Lobaro LoRaWAN wMBus Bridge"; a bare number
    # and a number cell work as before. The name after " - " is for people: not checked.
    rows = [HEADER]
    for i, value in enumerate(["3 - Lobaro LoRaWAN wMBus Bridge", "3", 3, " 2 - anything "]):
        rows.append([f"10{i}", f"0004A30B001C000{i}", *GOOD[2:3], value, *GOOD[4:]])
    report = run(workbook(tmp_path, rows))
    assert report.ok, [p.message for p in report.errors]
    assert [r.body["deviceTypeId"] for r in report.records.devices] == [3, 3, 3, 2]


def test_half_a_location(tmp_path: Path) -> None:
    row = list(GOOD)
    row[6] = ""
    found = only(run(workbook(tmp_path, [HEADER, row])), "half-location")
    assert found["cell"] == "F2"


def test_duplicate_serial_and_addr(tmp_path: Path) -> None:
    second = ["1001", "0004A30B001C0002", *GOOD[2:]]
    third = ["1003", "0004A30B001C0002", *GOOD[2:]]
    report = run(workbook(tmp_path, [HEADER, GOOD, second, third]))
    keys = [p for p in report.errors if p.code == "duplicate-key"]
    addrs = [p for p in report.errors if p.code == "duplicate-addr"]
    assert [p.cell for p in keys] == ["A2", "A3"]
    assert "also in row 3" in keys[0].message
    assert [p.cell for p in addrs] == ["B3", "B4"]
    assert report.totals == {"valid": 0, "invalid": 3}


def test_address_with_a_space_fails_the_schema(tmp_path: Path) -> None:
    row = list(GOOD)
    row[1] = "35265610 0123456"  # an IMEI is no hex identifier: a space is not a separator
    found = only(run(workbook(tmp_path, [HEADER, row])), "schema")
    assert found["cell"] == "B2"
    assert found["message"].startswith("Address '35265610 0123456' is not valid")


def test_missing_and_unknown_columns(tmp_path: Path) -> None:
    report = run(workbook(tmp_path, [["serial", "Farbe"], ["1001", "rot"]]))
    missing = only(report, "missing-column")
    assert "no column for addr" in missing["message"]
    unknown = only(report, "unknown-column")
    assert unknown["cell"] == "B1" and unknown["severity"] == "warning"
    assert not report.ok


def test_users_tab(tmp_path: Path) -> None:
    users = [
        ["Name", "E-Mail", "Passwort", "Rollen"],
        ["Eva Test", "eva@example", "kurz", "org-admin"],
        ["Max Test", "max@example.com", "s0meSecur3Pw", "superuser"],
        ["Max Zwei", "MAX@example.com", "s0meSecur3Pw", "device-admin"],
    ]
    report = run(workbook(tmp_path, [HEADER, GOOD], Users=users))
    by_cell = {p.cell: p for p in report.errors}
    assert "Email 'eva@example' is not valid" in by_cell["B2"].message
    assert by_cell["C2"].message == (
        "Password does not meet the rule: At least 10 characters with at least one letter and one digit."
    )
    assert by_cell["C2"].value == "(hidden)"
    assert "'superuser' is not one of" in by_cell["D3"].message
    assert by_cell["B4"].code == "duplicate-email"
    dumped = str(report.to_dict())
    assert "kurz" not in dumped and "s0meSecur3Pw" not in dumped


def test_downlinks_tab(tmp_path: Path) -> None:
    downlinks = [
        ["key", "type", "payload"],
        ["1001", "config", '{"d": {"listenCron": "0 0/20 * * * *"}, "q": "config"}'],
        ["1001", "config", '{"d": {"cmodeDurSec": "600"}, "q": "config"}'],
        ["9999", "lorawan", '{"data": "x", "type": "ascii", "fPort": 300}'],
        ["1001", "reboot", "{}"],
        ["1001", "raw", "{not json"],
    ]
    report = run(workbook(tmp_path, [HEADER, GOOD], Downlinks=downlinks))
    codes = {(p.cell, p.code) for p in report.errors + report.warnings}
    assert ("B3", "duplicate-downlink") in codes
    assert ("A4", "downlink-device-not-in-sheet") in codes
    assert ("C4", "schema") in codes
    assert ("B5", "downlink-type") in codes
    assert ("C6", "bad-json") in codes
    fport = next(p for p in report.errors if p.cell == "C4")
    assert "between 1 and 223" in fport.message


def test_report_dict_has_the_documented_shape(tmp_path: Path) -> None:
    row = ["1002", "0004A30B001C0002", *GOOD[2:]]
    row[3] = "zwei"
    data = run(workbook(tmp_path, [HEADER, GOOD, row])).to_dict()
    assert data["command"] == "validate"
    assert data["totals"] == {"valid": 1, "invalid": 1}
    bad = data["rows"][1]
    assert {"sheet", "row", "key", "status", "message", "errors"} <= set(bad)
    assert bad["row"] == 3 and bad["key"] == "1002" and bad["status"] == "invalid"
    assert bad["errors"][0]["cell"] == "D3" and bad["errors"][0]["column"] == "deviceTypeId"


def test_a_tag_given_twice_fails_the_schema_and_the_quick_check_agrees(tmp_path: Path) -> None:
    # The quick check tests the uniqueness of a list of texts with a set, not with
    # fastjsonschema's generic test: both must say no to the same body.
    from provisioner.validation import checker

    check = checker("deviceInput")
    body = {"addr": "0004A30B001C0001", "tags": ["Wasser", "Wasser"]}
    with pytest.raises(Exception, match="unique"):
        check.fast(body)
    assert [e.validator for e in check.explain(body)] == ["uniqueItems"]
    check.fast({"addr": "0004A30B001C0001", "tags": ["Wasser", "wasser"]})
