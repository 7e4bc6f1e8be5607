"""A pandas DataFrame is a sheet too: validate, plan, apply and verify read one as the CSV
reader reads a file (cells as shown, counted as a sheet counts rows), and every result
gives its rows back as a DataFrame, secrets masked as in the reports."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy
import openpyxl
import pandas as pd
import pytest

from provisioner.apply import apply_sheet
from provisioner.errors import ProvisionerError, SheetError
from provisioner.frames import _shown
from provisioner.plan import make_plan
from provisioner.platform import PlatformClient
from provisioner.reports import render_report
from provisioner.sandbox import Sandbox
from provisioner.sandbox.server import MAX_PAGE_SIZE
from provisioner.templates import load_template
from provisioner.validation import ValidationReport, validate_sheet
from provisioner.verify import verify_sheet

APP_KEY = "000102030405060708090A0B0C0D0E0F"
PASSWORD = "s0meSecur3Pw"


def found(report: ValidationReport) -> list[tuple[str, str, int | None, str | None]]:
    return sorted((p.code, p.sheet, p.row, p.cell) for p in report.errors + report.warnings)


# --- a DataFrame read as a sheet ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12, "12"),
        (12.0, "12"),
        (0.5, "0.5"),
        (float("nan"), ""),
        (None, ""),
        (pd.NaT, ""),
        (pd.NA, ""),
        (True, "True"),
        (pd.Timestamp("2026-05-01"), "2026-05-01"),
        (pd.Timestamp("2026-05-01 08:30"), "2026-05-01 08:30:00"),
        (datetime.date(2026, 5, 1), "2026-05-01"),
        ("0004A30B001C0001", "0004A30B001C0001"),
        (numpy.int64(7), "7"),
    ],
)
def test_a_value_reads_as_a_dataframe_shows_it(value: Any, text: str) -> None:
    assert _shown(value)[0] == text


def test_a_dataframe_has_the_problems_of_the_same_sheet_cell_by_cell(tmp_path: Path) -> None:
    rows: list[list[Any]] = [
        ["serial", "addr", "name", "deviceTypeId", "notes"],
        ["S1", "0004A30B001C0001", "Meter 1", 1, "ok"],
        ["S2", 1234567890123456, "Meter 2", 1.0, None],  # a DevEUI held as a number
        ["S1", "0004A30B001C0003", "Meter 3", 1, None],  # the key once more
        [None, None, None, None, None],  # blank: skipped, yet counted
        ["S5", "0004A30B001C0005", datetime.datetime(2026, 5, 1), 1, None],  # a date as name
        ["S6", 12345, "Meter 6", "x", None],  # a number read as its digits; no type
        ["S7", "0004A30B001C0007", "Meter 7", 1, None],
    ]
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.save(tmp_path / "site.xlsx")
    template = load_template("default")

    from_sheet = validate_sheet(tmp_path / "site.xlsx", template)
    frame = pd.DataFrame(rows[1:], columns=rows[0])
    from_frame = validate_sheet(frame, template)

    assert from_frame.source == "DataFrame"
    assert {sheet for _, sheet, _, _ in found(from_frame)} == {"DataFrame"}
    assert [(code, row, cell) for code, _, row, cell in found(from_frame)] == [
        (code, row, cell) for code, _, row, cell in found(from_sheet)
    ]
    assert {(code, cell) for code, _, _, cell in found(from_frame)} >= {
        ("duplicate-key", "A2"),
        ("duplicate-key", "A4"),
        ("id-stored-as-number", "B3"),
        ("date-not-text", "C6"),
        ("not-a-device-type", "D7"),
        ("id-number-read-as-digits", "B1"),
        ("unknown-column", "E1"),
    }
    stored = next(p for p in from_frame.errors if p.code == "id-stored-as-number")
    assert stored.message == "addr is stored as the number 1234567890123456"
    assert from_frame.totals == from_sheet.totals == {"valid": 1, "invalid": 5}


def test_a_dict_of_dataframes_is_a_workbook_of_tabs() -> None:
    frames = {
        "Devices": pd.DataFrame({"serial": ["S1"], "addr": ["0004A30B001C0001"]}),
        "Users": pd.DataFrame(
            {
                "name": ["Erika"],
                "email": ["erika-at-example.com"],
                "password": [PASSWORD],
                "roles": ["org-admin"],
            }
        ),
    }
    report = validate_sheet(frames, load_template("default"))
    assert report.records.tabs == {"devices": "Devices", "users": "Users"}
    [problem] = report.errors
    assert (problem.sheet, problem.cell, problem.header) == ("Users", "B2", "email")


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        (
            pd.DataFrame([["S1", "S1"]], columns=["serial", "Serial"]),
            'DataFrame: DataFrame!A1 and DataFrame!B1 are both "serial": rename or delete one',
        ),
        (
            pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")])),
            "DataFrame: its columns have 2 levels: give it one header row",
        ),
        (pd.DataFrame(), "DataFrame has no columns: its column names are the header row"),
    ],
)
def test_a_dataframe_that_is_no_sheet_is_refused_in_words(frame: Any, words: str) -> None:
    with pytest.raises(SheetError) as caught:
        validate_sheet(frame, load_template("default"))
    assert str(caught.value).startswith(words)


def test_what_is_neither_a_path_nor_a_dataframe_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="a file's path, a pandas DataFrame"):
        validate_sheet([["serial"], ["S1"]], load_template("default"))  # type: ignore[arg-type]


def test_importing_provisioner_and_running_a_command_never_loads_pandas(tmp_path: Path) -> None:
    sheet = tmp_path / "site.csv"
    sheet.write_text("serial,addr\nS1,0004A30B001C0001\n", encoding="utf-8")
    probe = (
        "import sys\n"
        "import provisioner, provisioner.frames, provisioner.validation, provisioner.plan\n"
        "import provisioner.apply, provisioner.verify, provisioner.undo\n"
        "from provisioner.cli import main\n"
        f"main(['validate', {str(sheet)!r}, '--report', {str(tmp_path / 'r.json')!r}],"
        " standalone_mode=False)\n"
        "print(sorted(m for m in ('pandas', 'numpy') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


# --- plan, apply and verify against the sandbox ---------------------------------------------


def site_frame() -> Any:
    return pd.DataFrame(
        {
            "DevEUI": ["0004A30B001C0001", "0004A30B001C0002"],
            "AppKey": [APP_KEY, APP_KEY.replace("0F", "1F")],
            "name": ["Meter 1", "Meter 2"],
            # Pasted from the vendor's key list: a secret in a plain column.
            "description": [f"key {APP_KEY}", "cellar"],
        }
    )


def test_a_dataframe_plans_and_applies_against_the_sandbox(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    template = load_template("lorawan-meter")
    frame = site_frame()
    journal = tmp_path / "site.journal.jsonl"
    with PlatformClient(sandbox.url, sandbox.tokens["org-admin"]) as client:
        plan = make_plan(frame, template, client)
        assert plan.source == "DataFrame"
        assert [(r.row, r.key, str(r.action)) for r in plan.rows] == [
            (2, "0004A30B001C0001", "create"),
            (3, "0004A30B001C0002", "create"),
        ]
        assert plan.fingerprint == make_plan(frame.copy(), template, client).fingerprint
        changed = frame.assign(name=["Meter 1", "Meter two"])
        assert plan.fingerprint != make_plan(changed, template, client).fingerprint

        with pytest.raises(ProvisionerError, match="give apply_sheet a journal_path"):
            apply_sheet(frame, template, client)
        assert sandbox.store.count_devices() == 0  # refused before anything was sent

        result = apply_sheet(frame, template, client, journal_path=journal)
        again = apply_sheet(frame, template, client, journal_path=journal)
        checked = verify_sheet(frame, template, client)

    assert result.totals == {"created": 2} and result.exit_code == 0
    assert result.results == "" and sorted(p.name for p in tmp_path.iterdir()) == [journal.name]
    held = {d["addr"].upper(): d for d in sandbox.store.list_devices(limit=MAX_PAGE_SIZE)}
    assert set(held) == {"0004A30B001C0001", "0004A30B001C0002"}
    assert held["0004A30B001C0001"]["name"] == "Meter 1"
    assert held["0004A30B001C0001"]["initialConfig"]["AppKey"].upper() == APP_KEY
    assert held["0004A30B001C0002"]["deviceTypeId"] == 4
    frame_rows = result.to_frame()
    assert frame_rows[["row", "key", "status"]].values.tolist() == [
        [2, "0004A30B001C0001", "created"],
        [3, "0004A30B001C0002", "created"],
    ]
    assert frame_rows["platform_id"].tolist() == [
        held["0004A30B001C0001"]["id"],
        held["0004A30B001C0002"]["id"],
    ]
    lines = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    assert {line.get("sheet") for line in lines if "sheet" in line} == {"DataFrame"}
    assert again.totals == {"exists": 2}
    assert checked.totals["silent"] == 2 and checked.to_frame()["status"].tolist() == [
        "silent",
        "silent",
    ]


def test_to_frame_gives_the_rows_back_as_the_json_report_holds_them(sandbox: Sandbox) -> None:
    """Round trip: the frame's records are the rows of the --report .json, the secret in
    a plain column masked there and here; without the masking it would be in the frame."""
    template = load_template("lorawan-meter")
    with PlatformClient(sandbox.url, sandbox.tokens["org-admin"]) as client:
        plan = make_plan(site_frame(), template, client)
    records = plan.validation.records
    secrets = {"secrets": [*records.secret_values(), *records.key_values()]}
    report = json.loads(
        render_report(
            plan.to_dict(), ".json", secret_columns=records.secret_columns, **secrets
        ).decode("utf-8")
    )

    frame = plan.to_frame()

    assert APP_KEY in json.dumps(plan.to_dict())  # the description holds it ...
    assert APP_KEY not in repr(frame.to_dict("records"))  # ... the frame does not
    assert frame.to_dict("records") == report["rows"]
    assert list(frame.columns) == list(report["rows"][0])
    assert str(frame["row"].dtype) == "int64"
    validated = validate_sheet(site_frame(), template)
    assert validated.to_frame().to_dict("records") == validated.to_dict()["rows"]


def test_the_readme_example_runs_against_its_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use it from Python", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)

    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})

    shown = capsys.readouterr().out
    assert shown.count(" valid\n") == 2 and shown.count(" create\n") == 2
    assert shown.count(" created ") == 2 and "'silent': 2" in shown
    assert (tmp_path / "site.journal.jsonl").is_file()
