"""Secrets in reports: masked by the template's field, scrubbed wherever echoed, and a
console that no sheet or platform text can drive."""

from __future__ import annotations

import copy
import csv
import html
import io
import json
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from provisioner.reports import render_console, write_report
from provisioner.sheets import read_tables
from provisioner.templates import load_template
from provisioner.validation import validate_sheet

FORMATS = ("json", "csv", "html", "xlsx")

# "Zugang" says nothing of a password: only the template's mapping tells.
TEMPLATE = """\
description = "a site whose Users tab calls the password Zugang"
[devices.columns]
addr = ["addr"]
serial = ["serial"]
name = ["name"]
description = ["Notiz"]
[users.columns]
password = ["Zugang"]
"""
PASSWORDS = ("Sommer2024xy", "Herbst99Laub")
ECHOED = 'Pä"ss wört42'  # a quote and an umlaut: its JSON forms differ from it


def forms(secret: str) -> set[str]:
    """The secret as is and JSON-escaped, with and without ensure_ascii."""
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def texts_of(path: Path) -> list[str]:
    """Everything a reader of the file can see, raw and decoded."""
    if path.suffix == ".xlsx":
        found = []
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                raw = archive.read(name).decode("utf-8", errors="replace")
                found += [raw, html.unescape(raw)]
        workbook = openpyxl.load_workbook(path)
        for tab in workbook.worksheets:
            for line in tab.iter_rows():
                for cell in line:
                    if cell.value is not None:
                        found.append(str(cell.value))
                    if cell.comment is not None:
                        found.append(cell.comment.text)
        return found
    raw = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".json":
        return [raw, *strings(json.loads(raw))]
    if path.suffix == ".csv":
        return [raw, *(field for line in csv.reader(io.StringIO(raw)) for field in line)]
    return [raw, html.unescape(raw)]


def leaks(path: Path, secrets: tuple[str, ...]) -> list[str]:
    """The forms of the secrets that occur anywhere in the file."""
    texts = texts_of(path)
    return sorted({form for s in secrets for form in forms(s) if any(form in t for t in texts)})


# --- by field: the template's mapping decides


def site(tmp_path: Path) -> tuple[Path, str]:
    template = tmp_path / "zugang.toml"
    template.write_text(textwrap.dedent(TEMPLATE), encoding="utf-8")
    workbook = openpyxl.Workbook()
    devices = workbook.active
    assert devices is not None
    devices.title = "Devices"
    devices.append(["addr", "serial", "name", "Notiz"])
    devices.append(["0011", "1001", "Keller", "Zähler links"])
    users = workbook.create_sheet("Users")
    users.append(["Name", "E-Mail", "Zugang", "Rollen"])
    users.append(["Anna Berg", "anna@example.org", PASSWORDS[0], "org-admin"])
    users.append(["Bernd Kurz", "bernd@example.org", PASSWORDS[1], "device-admin"])
    users.append(["Carla Fehl", "carla@example.org", "kurz1", "device-admin"])  # too short
    path = tmp_path / "site.xlsx"
    workbook.save(path)
    return path, str(template)


def careless(report: dict[str, Any]) -> dict[str, Any]:
    """The report plus problems that carry a password cell's value unmasked."""
    report = copy.deepcopy(report)
    user = next(row for row in report["rows"] if row["sheet"] == "Users" and row["row"] == 2)
    user["warnings"].append(
        {
            "code": "odd",
            "severity": "warning",
            "sheet": "Users",
            "row": 2,
            "cell": "C2",
            "column": "Zugang",
            "column_letter": "C",
            "value": PASSWORDS[0],
            "message": "looks odd",
            "fix": "",
        }
    )
    report["problems"].append(
        {
            "severity": "warning",
            "sheet": "Users",
            "row": 3,
            "cell": "C3",  # no column_letter: the cell reference names the column
            "column": "Zugang",
            "value": PASSWORDS[1],
            "message": "looks odd too",
        }
    )
    return report


def test_the_records_know_which_column_holds_the_password(tmp_path: Path) -> None:
    sheet, template = site(tmp_path)
    records = validate_sheet(sheet, load_template(template)).records
    assert records.secret_columns == {"Users": ["C"]}
    assert records.secret_values() == [*PASSWORDS, "kurz1"]


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("copied", [True, False], ids=["copy-of-xlsx", "rebuilt-from-tables"])
def test_password_column_found_by_field_is_masked_in_every_format(
    tmp_path: Path, suffix: str, copied: bool
) -> None:
    sheet, template = site(tmp_path)
    validation = validate_sheet(sheet, load_template(template))
    records = validation.records
    report = careless(validation.to_dict())
    tables = read_tables(sheet, records.tabs.values())
    path = tmp_path / f"report.{suffix}"
    before = copy.deepcopy(report)

    write_report(
        report,
        path,
        source=sheet if copied else None,
        tables=tables,
        secret_columns=records.secret_columns,  # by field only: no secrets given
    )

    assert report == before  # the caller's report is not changed
    assert leaks(path, (*PASSWORDS, "kurz1")) == []
    if suffix == "xlsx":
        users = openpyxl.load_workbook(path)["Users"]
        assert [users.cell(row, 3).value for row in range(1, 5)] == ["Zugang", None, None, None]
        assert users["B2"].value == "anna@example.org"
        assert users["A3"].value == "Bernd Kurz"


def test_without_the_field_mapping_the_word_rule_would_miss_it(tmp_path: Path) -> None:
    """The check above is not vacuous: "Zugang" is not a header the safety net knows."""
    sheet, template = site(tmp_path)
    validation = validate_sheet(sheet, load_template(template))
    path = tmp_path / "report.xlsx"
    write_report(validation.to_dict(), path, source=sheet)
    assert PASSWORDS[0] in leaks(path, PASSWORDS)


def test_a_password_column_beside_the_mapped_one_is_masked_too(tmp_path: Path) -> None:
    """Two columns that both map to password: the second is not used, and not shown either."""
    template = tmp_path / "zugang.toml"
    template.write_text(
        textwrap.dedent(TEMPLATE).replace('["Zugang"]', '["Zugang", "PIN-Code"]'),
        encoding="utf-8",
    )
    workbook = openpyxl.Workbook()
    devices = workbook.active
    assert devices is not None
    devices.title = "Devices"
    devices.append(["addr", "serial"])
    devices.append(["0011", "1001"])
    users = workbook.create_sheet("Users")
    users.append(["Name", "E-Mail", "Zugang", "Rollen", "PIN-Code"])
    users.append(["Anna Berg", "anna@example.org", PASSWORDS[0], "org-admin", PASSWORDS[1]])
    sheet = tmp_path / "site.xlsx"
    workbook.save(sheet)

    records = validate_sheet(sheet, load_template(str(template))).records
    assert records.secret_columns == {"Users": ["C", "E"]}
    validation = validate_sheet(sheet, load_template(str(template)))
    path = tmp_path / "report.xlsx"
    write_report(validation.to_dict(), path, source=sheet, secret_columns=records.secret_columns)
    assert leaks(path, PASSWORDS) == []


# --- defence in depth: the platform echoes a password


def echoing_report() -> dict[str, Any]:
    body = {"name": "Anna Berg", "email": "anna@example.org", "password": ECHOED}
    escaped = json.dumps(body)  # "P\u00e4\"ss w\u00f6rt42"
    unescaped = json.dumps(body, ensure_ascii=False)  # "Pä\"ss wört42"
    return {
        "command": "apply",
        "source": "site.xlsx",
        "template": "zugang",
        "made_at": "2026-11-26T18:00:00+00:00",
        "ok": False,
        "totals": {"created": 1, "failed": 3},
        "problems": [
            {
                "severity": "warning",
                "sheet": "Devices",
                "row": None,
                "cell": None,
                "column": None,
                "value": ECHOED,
                "message": f"file level: {ECHOED}",
                "fix": f"not {ECHOED}",
            }
        ],
        "rows": [
            {
                "sheet": "Devices",
                "row": 2,
                "kind": "device",
                "key": "1001",
                "status": "failed",
                "platform_id": None,
                "message": f"400 Bad Request: invalid body {escaped} (abc)",
                "errors": [
                    {
                        "severity": "error",
                        "sheet": "Devices",
                        "row": 2,
                        "cell": "D2",
                        "column": "Notiz",
                        "column_letter": "D",
                        "value": ECHOED,
                        "message": f"the platform says: {unescaped}",
                        "fix": f"nested: {json.dumps(escaped)}",
                    }
                ],
                "warnings": [],
            },
            {
                "sheet": "Users",
                "row": 2,
                "kind": "user",
                "key": "anna@example.org",
                "status": "failed",
                "message": f"422: password {ECHOED!r} is not allowed",
                "reason": f"echo {unescaped}",
                "diff": {"password": {"sheet": ECHOED, "platform": escaped}},
                "errors": [],
                "warnings": [],
            },
            {
                "sheet": "Users",
                "row": 3,
                "kind": "user",
                "key": "bernd@example.org",
                "status": "failed",
                "message": f"login {PASSWORDS[1]} taken",
                "errors": [],
                "warnings": [],
            },
            {
                "sheet": "Devices",
                "row": 3,
                "kind": "device",
                "key": "1002",
                "status": "created",
                "platform_id": 7,
                "message": "created",
                "errors": [],
                "warnings": [],
            },
        ],
    }


def echo_sheet(tmp_path: Path) -> Path:
    workbook = openpyxl.Workbook()
    devices = workbook.active
    assert devices is not None
    devices.title = "Devices"
    devices.append(["addr", "serial", "name", "Notiz"])
    devices.append(["0011", "1001", "Keller", f"Zugang: {ECHOED}"])  # pasted by hand
    devices.append(["0012", "1002", "Flur", ""])
    devices["A2"].comment = openpyxl.comments.Comment(f"pw {ECHOED}", "Anna")
    users = workbook.create_sheet("Users")
    users.append(["Name", "E-Mail", "Zugang", "Rollen"])
    users.append(["Anna Berg", "anna@example.org", ECHOED, "org-admin"])
    users.append(["Bernd Kurz", "bernd@example.org", PASSWORDS[1], "device-admin"])
    path = tmp_path / "site.xlsx"
    workbook.save(path)
    return path


@pytest.mark.parametrize("suffix", FORMATS)
def test_echoed_passwords_appear_in_no_format(tmp_path: Path, suffix: str) -> None:
    sheet = echo_sheet(tmp_path)
    tables = read_tables(sheet, ["Devices", "Users"])
    report = echoing_report()
    path = tmp_path / f"site.results.{suffix}"
    write_report(
        report,
        path,
        source=sheet,
        tables=tables,
        secrets=[ECHOED, PASSWORDS[1], "abc"],  # "abc" is too short to be masked
    )

    assert leaks(path, (ECHOED, PASSWORDS[1])) == []
    texts = texts_of(path)
    assert any("***" in text for text in texts)
    if suffix != "xlsx":
        assert any("(abc)" in text for text in texts)  # short values are left alone
    else:
        workbook = openpyxl.load_workbook(path)
        assert "Failed" in workbook.sheetnames
        assert workbook["Failed"]["D2"].value == "Zugang: ***"
        assert workbook["Devices"]["D2"].value == "Zugang: ***"
        assert workbook["Devices"]["A2"].comment is not None
        assert workbook["Devices"]["A2"].comment.text.startswith("pw ***")


def test_secret_columns_keep_the_failed_tab_free_of_them(tmp_path: Path) -> None:
    sheet = echo_sheet(tmp_path)
    tables = read_tables(sheet, ["Devices", "Users"])
    path = tmp_path / "site.results.xlsx"
    write_report(
        echoing_report(), path, source=sheet, tables=tables, secret_columns={"Devices": ["D"]}
    )
    workbook = openpyxl.load_workbook(path)
    failed = workbook["Failed"]
    assert [cell.value for cell in failed[1]] == ["addr", "serial", "name", "Notiz"]
    assert [cell.value for cell in failed[2]] == ["0011", "1001", "Keller", None]
    # The empty column says why, and where the value is.
    assert failed["D1"].comment is not None
    assert "Copy it in from your own sheet" in failed["D1"].comment.text
    assert failed["A1"].comment is None
    assert workbook["Devices"]["D2"].value is None
    assert workbook["Devices"]["D1"].value == "Notiz"


def test_console_scrubs_echoed_passwords() -> None:
    text = render_console(echoing_report(), secrets=[ECHOED, PASSWORDS[1]], color=True)
    assert "***" in text
    assert not [form for s in (ECHOED, PASSWORDS[1]) for form in forms(s) if form in text]


# --- the console shows control characters, it does not obey them


def control_report() -> dict[str, Any]:
    return {
        "command": "apply",
        "source": "site.xlsx",
        "ok": False,
        "totals": {"failed\x07": 1},
        "problems": [],
        "rows": [
            {
                "sheet": "Devices\x1b]0;title\x07",
                "row": 2,
                "kind": "device",
                "key": "10\x9b01",
                "status": "failed",
                "message": "platform: \x1b[2Jwiped\rover\nnext\x7f",
                "errors": [],
                "warnings": [],
            },
            {
                "sheet": "Devices",
                "row": 3,
                "kind": "device",
                "key": "1002",
                "status": "failed",
                "message": "",
                "errors": [
                    {
                        "severity": "error",
                        "sheet": "Devices",
                        "row": 3,
                        "cell": "B3",
                        "column": "serial\x1b[31m",
                        "value": "\x1b[2J1002",
                        "message": "bad\r\nvalue",
                        "fix": "type it\x1b[0m again",
                    }
                ],
                "warnings": [],
            },
        ],
    }


@pytest.mark.parametrize("color", [False, True])
def test_console_shows_control_characters_escaped(color: bool) -> None:
    text = render_console(control_report(), color=color)
    own = text.replace("\x1b[31m", "").replace("\x1b[33m", "").replace("\x1b[0m", "")
    lines = own.split("\n")
    assert not any(char in own for char in "\x1b\r\x07\x7f\x9b")
    assert r"platform: \x1b[2Jwiped\rover\nnext\x7f" in own
    assert r"Devices\x1b]0;title\x07 row 2 (key 10\x9b01): failed" in own
    assert r"failed\x07 1" in lines[0]
    assert r"B3 serial\x1b[31m: '\x1b[2J1002': bad\r\nvalue" in own
    assert r"fix: type it\x1b[0m again" in own
    if color:
        assert "\x1b[31m" in text  # the console's own colours still come through
