"""Reports: console text and the .json / .csv / .html / .xlsx files, from hand-built report dicts."""

from __future__ import annotations

import csv
import html
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.comments import Comment

from provisioner.reports import (
    REPORT_SUFFIXES,
    ReportError,
    check_report_paths,
    render_console,
    write_report,
)
from provisioner.reports.json_report import expanded

FORMULA = '=HYPERLINK("http://evil.example","click")'


def problem(
    cell: str | None,
    message: str,
    *,
    sheet: str = "Devices",
    column: str | None = "serial",
    value: str | None = None,
    severity: str = "error",
    fix: str = "Format the column as text and type the value again.",
) -> dict[str, Any]:
    row = int(cell[1:]) if cell else None
    return {
        "code": "bad-value",
        "severity": severity,
        "sheet": sheet,
        "row": row,
        "cell": cell,
        "column": column,
        "column_letter": cell[0] if cell else None,
        "value": value,
        "message": message,
        "fix": fix,
    }


def device_row(number: int, key: str, state: str, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "sheet": "Devices",
        "row": number,
        "kind": "device",
        "key": key,
        "message": "",
        "errors": [],
        "warnings": [],
    }
    row.update(state)
    row.update(extra)
    return row


def validate_report() -> dict[str, Any]:
    return {
        "command": "validate",
        "source": "site.xlsx",
        "template": "default",
        "made_at": "2026-11-26T18:00:00+00:00",
        "ok": False,
        "totals": {"valid": 2, "invalid": 3},
        "problems": [
            problem(
                None,
                "unknown column, ignored",
                column="Notiz",
                severity="warning",
                fix="Remove the column or map it in the site template.",
            )
        ],
        "rows": [
            device_row(2, "1001", {"status": "valid"}),
            device_row(
                14,
                "1337",
                {"status": "invalid"},
                message="1 error",
                errors=[
                    problem("C14", "Excel turned the serial into a number", value="3.52656E+14")
                ],
                warnings=[
                    problem(
                        "D14",
                        "name is long",
                        column="name",
                        value="<script>alert(1)</script>",
                        severity="warning",
                        fix="Shorten it.",
                    )
                ],
            ),
            device_row(
                15,
                "=cmd()",
                {"status": "invalid"},
                message="+1",
                errors=[problem("C15", "-1", value="@x")],
            ),
            device_row(
                16,
                "1339",
                {"status": "invalid"},
                errors=[problem("C16", "serial is empty", value=FORMULA)],
            ),
            device_row(17, "1340", {"status": "valid"}),
        ],
    }


def plan_report() -> dict[str, Any]:
    return {
        "command": "plan",
        "source": "site.xlsx",
        "template": "default",
        "made_at": "2026-11-26T18:00:00+00:00",
        "ok": False,
        "platform": "https://platform.example",
        "lookup": {"strategy": "per-key", "requests": 4},
        "totals": {"create": 1, "exists": 1, "differs": 1, "blocked": 1},
        "problems": [],
        "rows": [
            device_row(2, "1001", {"action": "create"}, message="new device"),
            device_row(3, "1002", {"action": "exists"}, platform_id=17, message="already there"),
            device_row(
                4,
                "1003",
                {"action": "differs"},
                platform_id=18,
                message="name differs",
                diff={"name": {"sheet": "Kitchen", "platform": "Kueche"}},
            ),
            device_row(
                5,
                "1002",
                {"action": "blocked"},
                message=FORMULA,
                reason="duplicate key 1002 (also in row 3)",
            ),
        ],
    }


# --- paths


def test_check_report_paths_accepts_every_format(tmp_path: Path) -> None:
    check_report_paths([tmp_path / f"r{suffix}" for suffix in REPORT_SUFFIXES])
    check_report_paths([tmp_path / "R.JSON"])


def test_check_report_paths_refuses_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"report format \.pdf is not supported: use \.json"):
        check_report_paths([tmp_path / "r.json", tmp_path / "r.pdf"])
    with pytest.raises(ReportError, match="no format suffix"):
        check_report_paths([tmp_path / "report"])
    with pytest.raises(ReportError, match="does not exist"):
        check_report_paths([tmp_path / "missing" / "r.json"])
    sheet = tmp_path / "site.xlsx"
    with pytest.raises(ReportError, match="would overwrite the sheet"):
        check_report_paths([tmp_path / "." / "site.xlsx"], source=sheet)


# --- console


def test_console_lists_problems_by_row_with_cell_and_fix() -> None:
    text = render_console(validate_report())
    lines = text.splitlines()
    assert lines[0] == "5 rows: 2 valid, 3 invalid, 2 warnings"
    assert "warning: Devices Notiz: unknown column, ignored" in lines
    assert "Devices row 14 (key 1337)" in lines
    assert "  C14 serial: '3.52656E+14': Excel turned the serial into a number" in lines
    assert "    fix: Format the column as text and type the value again." in lines
    assert "  warning: D14 name: '<script>alert(1)</script>': name is long" in lines
    assert "Devices row 2" not in text
    assert "\x1b" not in text
    assert "more rows" not in text


def test_console_limit_and_colour() -> None:
    text = render_console(validate_report(), limit=1, color=True)
    assert "Devices row 14 (key 1337)" in text
    assert "Devices row 15" not in text
    assert text.endswith("... and 2 more rows with problems: see --report")
    assert "\x1b[31m  C14" not in text  # indentation stays outside the colour
    assert "  \x1b[31mC14 serial" in text
    assert "  \x1b[33mwarning: D14" in text


def test_console_shows_control_characters_as_escapes() -> None:
    report = validate_report()
    report["rows"][1]["errors"][0]["value"] = "13\x1b[2J37"
    text = render_console(report)
    assert "\x1b" not in text
    assert "'13\\x1b[2J37'" in text


def test_console_plan_shows_diff_and_reason() -> None:
    lines = render_console(plan_report()).splitlines()
    assert lines[0] == "create 1 · exists 1 · differs 1 · blocked 1"
    assert "Devices row 4 (key 1003): differs" in lines
    # The differences as a table: field, sheet, platform.
    at = lines.index("Devices row 4 (key 1003): differs")
    assert lines[at + 1].split() == ["field", "sheet", "platform"]
    assert set(lines[at + 2].strip()) == {"─"}
    assert lines[at + 3].split() == ["name", "'Kitchen'", "'Kueche'"]
    assert "Devices row 5 (key 1002): blocked" in lines
    assert "  duplicate key 1002 (also in row 3)" in lines
    assert not any(line.startswith("Devices row 2") for line in lines)


# --- JSON and atomic writing


def test_json_round_trips_to_the_same_dict(tmp_path: Path) -> None:
    report = plan_report()
    report["source"] = "Zählerliste Süd.xlsx"
    path = tmp_path / "plan.json"
    write_report(report, path)
    text = path.read_text(encoding="utf-8")
    assert "Zählerliste Süd" in text
    assert expanded(json.loads(text)) == report
    assert [entry.name for entry in tmp_path.iterdir()] == ["plan.json"]


def test_failed_write_keeps_the_old_report_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "report.json"
    path.write_text("old", encoding="utf-8")

    def refuse(source: Any, target: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ReportError, match="No space left on device"):
        write_report(validate_report(), path)
    assert path.read_text(encoding="utf-8") == "old"
    assert [entry.name for entry in tmp_path.iterdir()] == ["report.json"]


# --- CSV


def read_csv(path: Path) -> list[dict[str, str]]:
    """The report as Excel would open it: the BOM says UTF-8, the dialect is sniffed."""
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;")
    return list(csv.DictReader(io.StringIO(text), delimiter=dialect.delimiter))


def test_a_csv_report_is_cut_like_the_sheet(tmp_path: Path) -> None:
    semicolons = tmp_path / "site.csv"
    semicolons.write_text("serial;addr\nSN1;1\n", encoding="utf-8")
    commas = tmp_path / "hardware.csv"
    commas.write_text("address,name\n1,x\n", encoding="utf-8")
    for source, delimiter in ((None, ";"), (semicolons, ";"), (commas, ",")):
        path = tmp_path / "report.csv"
        write_report(validate_report(), path, source=source)
        header = path.read_bytes().decode("utf-8-sig").splitlines()[0]
        assert header.split(delimiter)[:3] == ["sheet", "row", "key"], (source, header)


def test_csv_has_a_line_per_problem_and_quotes_formula_starts(tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    write_report(validate_report(), path)
    lines = read_csv(path)
    assert list(lines[0]) == [
        "sheet",
        "row",
        "key",
        "status",
        "message",
        "severity",
        "cell",
        "column",
        "value",
        "problem",
        "fix",
    ]
    # file problem, row 2, row 14 twice, row 15, row 16, row 17
    assert [line["row"] for line in lines] == ["", "2", "14", "14", "15", "16", "17"]
    assert lines[1]["problem"] == "" and lines[1]["status"] == "valid"
    # Text Excel would read as a number stays text; formula starts get a quote.
    assert lines[2]["cell"] == "C14" and lines[2]["value"] == '="3.52656E+14"'
    bad = lines[4]
    assert bad["key"] == "'=cmd()"
    assert bad["message"] == '="+1"'
    assert bad["problem"] == '="-1"'
    assert bad["value"] == "'@x"
    assert lines[5]["value"] == "'" + FORMULA


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("868215046347581", '="868215046347581"'),  # an IMEI: 8.68215E+14 otherwise
        ("00123", '="00123"'),  # leading zeros
        ("0012E456", '="0012E456"'),  # a hex DevEUI that reads as 12 x 10^456
        ("1,5", '="1,5"'),  # German decimal comma
        ("3-4", '="3-4"'),  # a date in Excel
        ("12:30", '="12:30"'),  # a time
        ("1.234.567", '="1.234.567"'),  # German thousands
        ("WAHR", '="WAHR"'),  # a truth value in German Excel
        (" =1+1", "' =1+1"),  # a formula behind a space
        ('3"+"4', '3"+"4'),  # a quote never goes inside ="..."
        ("70B3D5E75E000000", "70B3D5E75E000000"),  # not a number: as it is
        ("Keller Haus 3", "Keller Haus 3"),
    ],
)
def test_csv_keeps_identifiers_as_text_for_excel(tmp_path: Path, text: str, written: str) -> None:
    report = validate_report()
    report["rows"][0]["key"] = text
    path = tmp_path / "report.csv"
    write_report(report, path)
    lines = read_csv(path)
    assert lines[1]["key"] == written
    assert lines[1]["row"] == "2"  # numbers stay numbers


def test_csv_of_a_plan_names_the_action_and_platform_id(tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    write_report(plan_report(), path)
    lines = read_csv(path)
    assert [line["action"] for line in lines] == ["create", "exists", "differs", "blocked"]
    assert lines[1]["platform_id"] == "17"
    assert lines[3]["message"] == "'" + FORMULA


# --- HTML


def test_html_is_self_contained_escaped_and_sortable(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_report(validate_report(), path)
    text = path.read_text(encoding="utf-8")
    assert "<title>provisioner validate: site.xlsx</title>" in text
    assert "<script src" not in text and "<link" not in text
    assert "http://" not in text and "https://" not in text
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "C14 serial: &#x27;3.52656E+14&#x27;: Excel turned the serial into a number" in text
    assert 'data-filter="invalid"' in text and 'data-state="invalid"' in text
    assert "localeCompare" in text and "addEventListener" in text
    assert 'name="viewport"' in text
    assert "Content-Security-Policy" in text
    assert html.unescape(FORMULA) in html.unescape(text)  # shown, just not as a live address


def test_html_plan_shows_diff_and_no_address_but_the_platform(tmp_path: Path) -> None:
    path = tmp_path / "plan.html"
    write_report(plan_report(), path)
    text = path.read_text(encoding="utf-8")
    assert "http://" not in text.replace("https://platform.example", "")
    assert "https://" not in text.replace("https://platform.example", "")
    shown = html.unescape(text)
    assert "platform https://platform.example" in shown
    assert "<td>name</td><td>'Kitchen'</td><td>'Kueche'</td>" in shown
    assert "duplicate key 1002 (also in row 3)" in shown
    assert 'data-filter="differs"' in text
    assert "lookup" not in text


# --- xlsx


@dataclass
class FakeTable:
    """Stand-in with the attributes of provisioner.sheets.Table."""

    sheet: str
    header_row: int
    headers: list[str]
    columns: list[str]
    row_numbers: list[int]
    rows: list[list[str]] = field(default_factory=list)


def source_workbook(path: Path) -> Path:
    workbook = openpyxl.Workbook()
    devices = workbook.active
    assert devices is not None
    devices.title = "Devices"
    devices.append(["addr", "serial", "name"])
    for number in range(2, 6):
        devices.append([f"00{number}", f"100{number - 1}", f"Room {number}"])
    devices["C5"] = FORMULA
    devices["A2"].comment = Comment("ask the caretaker", "Anna")
    devices["C5"].data_type = "s"
    users = workbook.create_sheet("Users")
    users.append(["E-Mail", " Passwort ", "Name"])
    users.append(["a@example.org", "hunter2", "Anna"])
    users.append(["b@example.org", "=geheim", "Bernd"])
    workbook.save(path)
    return path


def formula_cells(path: Path) -> list[str]:
    found = []
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                xml = archive.read(name).decode("utf-8")
                if "<f>" in xml or "<f " in xml:
                    found.append(name)
    workbook = openpyxl.load_workbook(path)
    for tab in workbook.worksheets:
        for row in tab.iter_rows():
            found.extend(cell.coordinate for cell in row if cell.data_type == "f")
    return found


def xlsx_plan_report() -> dict[str, Any]:
    report = plan_report()
    report["rows"][0]["errors"] = [problem("A2", "addr is too short", column="addr", value="002")]
    report["rows"][3]["errors"] = [
        problem("B5", "duplicate serial", value="1002", fix="Give each device its own serial.")
    ]
    report["rows"][3]["warnings"] = [
        problem("C5", FORMULA, column="name", value=FORMULA, severity="warning", fix=FORMULA)
    ]
    report["rows"][2]["warnings"] = [
        problem("C4", "name looks odd", column="name", value="Room 4", severity="warning")
    ]
    report["rows"].append(
        {
            "sheet": "Users",
            "row": 2,
            "kind": "user",
            "key": "a@example.org",
            "action": "create",
            "message": "",
            "errors": [],
            "warnings": [],
        }
    )
    return report


def test_xlsx_copies_the_sheet_with_findings(tmp_path: Path) -> None:
    source = source_workbook(tmp_path / "site.xlsx")
    path = tmp_path / "site.plan.xlsx"
    write_report(xlsx_plan_report(), path, source=source)

    workbook = openpyxl.load_workbook(path)
    devices = workbook["Devices"]
    assert devices["B5"].value == "1004"
    assert devices["B5"].fill.fgColor.rgb.endswith("FFC7CE")
    assert devices["B5"].comment is not None
    assert "duplicate serial" in devices["B5"].comment.text
    assert "fix: Give each device its own serial." in devices["B5"].comment.text
    assert devices["C4"].fill.fgColor.rgb.endswith("FFEB9C")
    assert devices["A2"].comment is not None
    assert devices["A2"].comment.text.startswith("ask the caretaker\n\n[provisioner]\nerror: addr")

    assert [devices.cell(1, column).value for column in (4, 5, 6)] == [
        "Action",
        "Platform id",
        "Message",
    ]
    assert [devices.cell(row, 4).value for row in range(2, 6)] == [
        "create",
        "exists",
        "differs",
        "blocked",
    ]
    assert devices["D2"].fill.fgColor.rgb.endswith("C6EFCE")
    assert devices["D5"].fill.fgColor.rgb.endswith("FFC7CE")
    assert devices["F5"].value == FORMULA
    assert devices["C5"].value == FORMULA

    users = workbook["Users"]
    assert [users.cell(row, 2).value for row in (1, 2, 3)] == [" Passwort ", None, None]
    assert users["A2"].value == "a@example.org"
    assert users["D1"].value == "Action" and users["D2"].value == "create"

    errors = workbook["Errors"]
    assert [cell.value for cell in errors[1]] == [
        "Sheet",
        "Row",
        "Key",
        "Cell",
        "Column",
        "Severity",
        "Value",
        "Message",
        "Fix",
    ]
    assert errors.freeze_panes == "A2"
    assert errors.auto_filter.ref == "A1:I5"
    assert [errors.cell(row, 4).value for row in (2, 3, 4, 5)] == ["A2", "C4", "B5", "C5"]
    assert errors["G5"].value == FORMULA

    assert formula_cells(path) == []
    with zipfile.ZipFile(path) as archive:
        assert not any(b"hunter2" in archive.read(name) for name in archive.namelist())


def test_xlsx_for_a_sheet_fed_back_in_reuses_its_columns(tmp_path: Path) -> None:
    source = source_workbook(tmp_path / "site.xlsx")
    first = tmp_path / "site.plan.xlsx"
    write_report(xlsx_plan_report(), first, source=source)
    fixed = xlsx_plan_report()
    fixed["rows"][3]["errors"] = []
    fixed["rows"][0]["errors"] = []
    second = tmp_path / "again.xlsx"
    write_report(fixed, second, source=first)
    workbook = openpyxl.load_workbook(second)
    devices = workbook["Devices"]
    assert devices["B5"].comment is None and devices["B5"].fill.fill_type is None
    assert devices["C5"].comment is not None
    assert devices["A2"].comment is not None
    assert devices["A2"].comment.text == "ask the caretaker"
    assert devices["A2"].fill.fill_type is None
    assert [cell.value for cell in workbook["Devices"][1]] == [
        "addr",
        "serial",
        "name",
        "Action",
        "Platform id",
        "Message",
    ]
    assert workbook.sheetnames == ["Devices", "Users", "Errors"]


def test_xlsx_from_tables_keeps_cell_references(tmp_path: Path) -> None:
    table = FakeTable(
        sheet="Devices",
        header_row=3,
        headers=["addr", "name", "serial"],
        columns=["A", "B", "C"],
        row_numbers=[4, 14],
        rows=[["0011", "=1+1", "1001"], ["0012", "Flur", "3.52656E+14"]],
    )
    report = validate_report()
    report["command"] = "apply"
    report["totals"] = {"created": 1, "skipped": 0, "failed": 1}
    report["rows"] = [
        device_row(4, "1001", {"status": "created"}, platform_id=41, message="created"),
        device_row(
            14,
            "3.52656E+14",
            {"status": "failed"},
            message="not sent: the row is invalid",
            errors=[problem("C14", "Excel turned the serial into a number", value="3.52656E+14")],
        ),
    ]
    path = tmp_path / "results.xlsx"
    write_report(report, path, source=tmp_path / "site.csv", tables={"Devices": table})

    workbook = openpyxl.load_workbook(path)
    devices = workbook["Devices"]
    assert [cell.value for cell in devices[3]][:3] == ["addr", "name", "serial"]
    assert devices["C14"].value == "3.52656E+14"
    assert devices["C14"].fill.fgColor.rgb.endswith("FFC7CE")
    assert devices["C14"].comment is not None
    assert devices["B4"].value == "=1+1"
    assert [devices.cell(3, column).value for column in (4, 5, 6)] == [
        "Status",
        "Platform id",
        "Message",
    ]
    assert (devices["D4"].value, devices["E4"].value) == ("created", 41)
    assert devices["D14"].value == "failed"
    assert devices["D14"].fill.fgColor.rgb.endswith("FFC7CE")
    assert devices["F14"].value == "not sent: the row is invalid"
    assert workbook["Errors"]["D2"].value is None  # the file-level problem has no cell
    assert workbook["Errors"]["D3"].value == "C14"
    assert formula_cells(path) == []


def test_xlsx_without_source_or_tables_holds_the_errors_tab(tmp_path: Path) -> None:
    path = tmp_path / "report.xlsx"
    write_report(validate_report(), path)
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Errors"]
    assert workbook["Errors"].max_row == 1 + 5
    assert formula_cells(path) == []


def apply_update_report() -> dict[str, Any]:
    changes = [
        {"field": "description", "before": "Dach", "after": "Keller"},
        {"field": "tags", "add": ["Haus3"], "remove": ["alt"]},
        {"field": "cfg:AppKey", "before": "(hidden)", "after": "(hidden)"},
    ]
    return {
        "command": "apply",
        "source": "site.xlsx",
        "platform": "https://platform.example",
        "totals": {"updated": 1},
        "rows": [
            device_row(
                2, "SN1", {"status": "updated"}, message="updated: description", changes=changes
            )
        ],
    }


def test_an_updates_changes_are_listed_in_html_and_json(tmp_path: Path) -> None:
    page, data = tmp_path / "apply.html", tmp_path / "apply.json"
    write_report(apply_update_report(), page)
    write_report(apply_update_report(), data)
    shown = html.unescape(page.read_text(encoding="utf-8"))
    assert "<td>description</td><td>'Dach'</td><td>'Keller'</td>" in shown
    assert "<td>tags</td><td></td><td>+ Haus3 - alt</td>" in shown
    assert "<td>cfg:AppKey</td><td>'(hidden)'</td>" in shown
    [row] = json.loads(data.read_text(encoding="utf-8"))["rows"]
    assert row["changes"][1] == {"field": "tags", "add": ["Haus3"], "remove": ["alt"]}


def test_a_plan_says_what_an_update_does_to_the_tags() -> None:
    report = plan_report()
    report["rows"][0]["diff"] = {
        "tags": {
            "sheet": ["x"],
            "platform": ["y", "Keller"],
            "mode": "add",
            "add": ["x"],
            "remove": ["Keller"],
        }
    }
    report["rows"][0]["action"] = "differs"
    text = render_console(report, limit=20, color=False)
    assert "tags: + x - Keller (with --update; the device's other tags are kept)" in text


# --- shortened values, tables, links and times keep secrets out and odd input safe


SECRET = "Geheim12345pw"


@pytest.mark.parametrize("columns", ["60", "200"])
def test_a_secret_inside_a_long_value_never_reaches_the_console_in_parts(
    monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    # Shortened to 40 characters or folded over two lines by the table, a secret
    # scrubbed only from the finished text would slip through in pieces.
    monkeypatch.setenv("COLUMNS", columns)
    report = plan_report()
    report["rows"][2]["diff"] = {
        "name": {"sheet": "y" * 30 + SECRET, "platform": "x"},
        "description": {"sheet": "z" * 19 + SECRET + "z" * 8, "platform": "Keller"},
    }
    text = render_console(report, secrets=[SECRET])
    flat = "".join(text.split())
    for piece in ("Geheim", "12345pw", "eheim1"):
        assert piece not in flat, text
    assert "***" in text


def test_local_times_for_odd_stamps(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from provisioner.reports.base import local_time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert local_time("2026-12-01T16:11:05Z") == "2026-12-01 11:11:05 -05:00"
        assert local_time("2026-07-01T10:00:00") == "2026-07-01 06:00:00 -04:00"  # naive: UTC
        assert local_time("0001-01-01T00:00:00Z") == "0001-01-01T00:00:00Z"  # no local form
        assert local_time("1850-01-01T00:00:00Z") == "1849-12-31 19:03:58 -04:56:02"
        assert local_time("not a time") == "not a time"
        assert local_time(None) == ""
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_only_devices_are_linked_to_a_device_page(tmp_path: Path) -> None:
    report = plan_report()
    report["device_link"] = "https://platform.example/devices/{id}"
    report["rows"].append(
        {"sheet": "Users", "row": 2, "kind": "user", "key": "e@x.de", "action": "exists",
         "platform_id": 17, "message": "already there", "errors": [], "warnings": []}
    )  # fmt: skip
    page = tmp_path / "plan.html"
    write_report(report, page)
    text = page.read_text(encoding="utf-8")
    # The device with id 17 is linked, the user with id 17 is not.
    assert text.count('href="https://platform.example/devices/17"') == 1
    assert 'href="https://platform.example/devices/18"' in text


def test_html_shows_marks_that_turn_text_around_as_escapes(tmp_path: Path) -> None:
    report = validate_report()
    report["rows"][0]["key"] = "SN\u202e1001"
    page = tmp_path / "r.html"
    write_report(report, page)
    text = page.read_text(encoding="utf-8")
    assert "\u202e" not in text and "SN\\u202e1001" in text


def test_a_long_value_is_shortened_in_the_words_that_repeat_it_too(tmp_path: Path) -> None:
    long = "x" * 70
    report = validate_report()
    report["rows"][0]["status"] = "invalid"
    report["rows"][0]["errors"] = [problem("H2", f"lat '{long}' is not a number", value=long)]
    assert long not in render_console(report)
    page = tmp_path / "r.html"
    write_report(report, page)
    shown = html.unescape(page.read_text(encoding="utf-8"))
    assert shown.count(long) == 1  # in the tooltip only
    data = tmp_path / "r.json"
    write_report(report, data)
    assert json.loads(data.read_text(encoding="utf-8"))["rows"][0]["errors"][0]["value"] == long


def test_a_format_is_one_module_and_one_line_in_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from provisioner import reports

    for suffix, name in reports.FORMATS.items():
        module = importlib.import_module(f"provisioner.reports.{name}")
        assert callable(module.render), suffix
    # A new suffix in the table is accepted and written by its module, nothing else.
    monkeypatch.setitem(reports.FORMATS, ".ndjson", "json_report")
    target = tmp_path / "plan.ndjson"
    check_report_paths([target])
    write_report(plan_report(), target)
    assert json.loads(target.read_text(encoding="utf-8"))["command"] == "plan"
    with pytest.raises(ReportError, match="not supported"):
        check_report_paths([tmp_path / "plan.pdf"])
