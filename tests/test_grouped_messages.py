"""Problems alike on many rows are one entry, with the rows as ranges, on the console, in
the HTML report and in the xlsx Errors tab; the JSON and each row of the copied sheet
keep their own words; a stop is said once where the rows are listed.

600 rows with a device type the template does not know: the template warns on every
row (validate, plan) and the sandbox refuses every create (apply).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import openpyxl
from browser import shown
from test_apply_e2e import RUN_TIMEOUT, environment, run_apply

from provisioner.reports import render_console
from provisioner.reports.base import row_ranges
from provisioner.sandbox import Sandbox

ROWS = 600
WARNING = "device type 99 is not one of this site's types"
REFUSED = "deviceTypeId 99 is not a known device type"
STOPPED = "stopped: the first 10 rows all failed alike"
MOST_LINES = 25


def unknown_type_sheet(folder: Path) -> Path:
    """serial (A), addr (B), deviceTypeId (C): type 99 on every row."""
    sheet = folder / "site.csv"
    lines = ["serial;addr;deviceTypeId"]
    lines += [f"SN{i};70B3D5E7{i:08X};99" for i in range(ROWS)]
    sheet.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sheet


def console_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return (done.stdout + done.stderr).splitlines()


def test_validate_lists_the_warning_of_600_rows_once(tmp_path: Path) -> None:
    sheet = unknown_type_sheet(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "provisioner", "validate", str(sheet), "--template", "default"]
        + ["--report", "v.html", "--report", "v.xlsx", "--report", "v.json"],
        env=environment("unused"),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = console_lines(done)
    assert len(lines) <= MOST_LINES, done.stdout
    [entry] = [line for line in lines if WARNING in line]
    assert entry.startswith(f"{ROWS} rows (C2:C601): warning: deviceTypeId: '99': {WARNING}")
    assert "more rows with problems" not in done.stdout  # nothing left unsaid

    page = shown(tmp_path / "v.html")
    assert page.text.count(WARNING) == 1
    assert f"{ROWS} rows (C2:C601): warning: deviceTypeId" in page.text
    assert len(page.rows) == ROWS  # every row still has its line, pointing at the entry
    for row in page.rows:
        assert row["Details"].links == ["#alike-1"], row["Details"].text
        assert f"as {ROWS} rows, see above" in row["Details"].text

    workbook = openpyxl.load_workbook(tmp_path / "v.xlsx")
    errors = list(workbook["Errors"].iter_rows(values_only=True))
    assert errors[1:] == [
        ("site.csv", "2\u2013601", f"{ROWS} rows", "C2:C601", "deviceTypeId", "warning", "99")
        + errors[1][7:]
    ]
    assert WARNING in str(errors[1][7])
    copied = workbook["site.csv"]
    for number in (2, 300, 601):  # each row's own cell keeps its own comment
        comment = copied[f"C{number}"].comment
        assert comment is not None and WARNING in comment.text

    report = json.loads((tmp_path / "v.json").read_text(encoding="utf-8"))
    assert len(report["rows"]) == ROWS  # the JSON stays row by row
    assert [row["warnings"][0]["cell"] for row in report["rows"][:2]] == ["C2", "C3"]


def test_apply_says_the_refusal_and_the_stop_once(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = unknown_type_sheet(tmp_path)
    done = run_apply(
        sheet, sandbox, sandbox.tokens["device-admin"], "--report", "a.html", "--report", "a.xlsx"
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = console_lines(done)
    assert len(lines) <= MOST_LINES, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert output.count(STOPPED) == 1
    assert output.count(WARNING) == 1  # the plan's warning, for all 600 rows
    [failed] = [line for line in lines if line.endswith(": failed")]
    [not_run] = [line for line in lines if line.endswith(": not run")]
    assert re.fullmatch(r"\d+ rows \(site\.csv rows 2\u2013\d+\): failed", failed)
    assert re.fullmatch(r"\d+ rows \(site\.csv rows \d+\u2013601\): not run", not_run)
    assert sum(1 for line in lines if REFUSED in line) == 2  # the failed rows' words, the stop's
    assert sandbox.store.count_devices() == 0

    page = shown(tmp_path / "a.html")
    assert page.text.count(STOPPED) == 1
    assert page.text.count(REFUSED) == 2  # the failed rows' entry, the stop
    assert page.text.count("not sent: the run stopped first") == 1
    assert {row["Status"].text for row in page.rows} == {"failed", "not run"}
    assert len(page.rows) == ROWS
    for row in page.rows:  # each row its status, and the words alike one link away
        assert row["Message"].links == [f"#alike-{1 if row['Status'].text == 'failed' else 2}"]

    # The results workbook: each row keeps its own status and words.
    workbook = openpyxl.load_workbook(tmp_path / "site.results.xlsx")
    copied = workbook["site.csv"]
    statuses = [copied.cell(number, 4).value for number in range(2, ROWS + 2)]
    assert set(statuses) == {"failed", "not run"} and statuses[0] == "failed"
    assert str(copied.cell(ROWS + 1, 6).value).startswith(STOPPED)  # in a file, on each row
    assert REFUSED in str(copied.cell(2, 6).value)


def test_a_row_with_a_problem_of_its_own_is_listed_for_it_alone() -> None:
    def warning(number: int, value: str) -> dict[str, object]:
        return {
            "code": "unknown-device-type",
            "severity": "warning",
            "sheet": "Devices",
            "row": number,
            "cell": f"C{number}",
            "column": "deviceTypeId",
            "column_letter": "C",
            "value": value,
            "message": f"device type {value} is not one of this site's types",
        }

    rows = [
        {"sheet": "Devices", "row": n, "key": f"SN{n}", "status": "valid", "errors": []}
        | {"warnings": [warning(n, "99" if n != 7 else "98")]}
        for n in (*range(2, 12), 14, 15, 20)
    ]
    report = {"command": "validate", "totals": {"valid": len(rows)}, "rows": rows}
    text = render_console(report, limit=20)
    assert text.splitlines()[1:] == [
        "12 rows (C2:C6, C8:C11, C14:C15, C20): warning: deviceTypeId: '99': "
        "device type 99 is not one of this site's types",
        "Devices row 7 (key SN7)",
        "  warning: C7 deviceTypeId: '98': device type 98 is not one of this site's types",
    ]
    # Past the limit, the runs are counted, not named.
    assert row_ranges([2, 4, 6, 8], letter="C", limit=2) == "C2, C4, \u2026 and 2 rows more"
    assert row_ranges([5, 6, 7]) == "5\u20137"


def test_the_console_counts_the_rows_past_its_limit_by_what_is_shown_of_them(
    tmp_path: Path,
) -> None:
    """Rows after the entries shown are in view only when each of their problems is an
    entry shown: a later row with only the problem of an entry shown is not counted
    hidden, one with a problem of its own besides is."""
    from provisioner.templates import load_template
    from provisioner.validation import validate_sheet

    lines = ["serial;addr;deviceTypeId", "S2;70B3D5E700000002;0"]  # row 2: type 0 (entry 1)
    lines += [f"S{n};70B3 {n};1" for n in range(3, 40)]  # rows 3-39: an address each
    lines += ["S40;70B3D5E700000040;0", "S41;70B3 41;0"]  # row 40 as row 2; row 41 both
    sheet = tmp_path / "site.csv"
    sheet.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = validate_sheet(sheet, load_template("default")).listed()
    text = render_console(report, limit=3)
    [entry] = [line for line in text.splitlines() if "Device type id 0" in line]
    assert entry.startswith("3 rows (C2, C40:C41): deviceTypeId: '0'"), entry
    # Shown: the type-0 error and the type-0 warning (the template does not know type 0),
    # each of rows 2, 40 and 41, and row 3; hidden: rows 4-39 and row 41 (its address).
    assert text.endswith("... and 37 more rows with problems: see --report")
