"""Which tab holds the devices: --tab, and the data tab found past chart sheets, empty
tabs and a vendor's cover tab (issues 25 and 26)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import openpyxl
import pytest
from openpyxl.chart import BarChart, Reference
from test_identity_e2e import run
from test_sheets_hidden import handmade_ods, ods_row

from provisioner.apply import check_saved_plan
from provisioner.cli import _resume_command
from provisioner.errors import SavedPlanError
from provisioner.records import SiteRecords, read_records
from provisioner.sandbox import Sandbox
from provisioner.sheets import SheetError, open_workbook
from provisioner.templates import load_template

KEY_HEADER = ["DevEUI", "JoinEUI", "AppKey"]
JOIN_EUI = "70B3D57ED0000001"


def key_row(i: int) -> list[str]:
    return [f"70B3D5E75E{i:06X}", JOIN_EUI, f"{i:032X}"]


def vendor_workbook(path: Path, *, keys: tuple[str, ...] = ("Key list",), rows: int = 3) -> Path:
    """A vendor's delivery: a chart sheet first, a cover tab, then the key list(s)."""
    book = openpyxl.Workbook()
    cover = book.active
    assert cover is not None
    cover.title = "Cover"
    cover["A1"] = "Delivery note 4711: LoRaWAN keys for site HH-04"
    cover["A3"], cover["B3"] = "Vendor", "ACME Metering"
    for name in keys:
        tab = book.create_sheet(name)
        tab.append(KEY_HEADER)
        for i in range(rows):
            tab.append(key_row(i))
    chart = book.create_chartsheet("Chart1", 0)
    bars = BarChart()
    bars.add_data(Reference(book[keys[0]], min_col=1, min_row=1, max_row=rows + 1))
    chart.add_chart(bars)
    book.save(path)
    return path


def test_a_chart_sheet_first_is_no_tab_of_cells(tmp_path: Path) -> None:
    path = vendor_workbook(tmp_path / "vendor.xlsx")
    workbook = open_workbook(path)
    assert workbook.tab_names == ["Chart1", "Cover", "Key list"]
    assert workbook.chart_tabs == ["Chart1"]
    assert [workbook.holds_table(tab) for tab in workbook.tab_names] == [False, True, True]
    with pytest.raises(SheetError, match=r'the tab "Chart1" is a chart, not a table of cells'):
        workbook.table("Chart1")


def test_the_key_list_on_the_third_tab_is_read_with_one_notice(tmp_path: Path) -> None:
    path = vendor_workbook(tmp_path / "vendor.xlsx")
    template = load_template("lorawan-meter")
    site = read_records(open_workbook(path), template)
    assert site.tabs == {"devices": "Key list"}
    assert [r.key for r in site.devices] == [key_row(i)[0] for i in range(3)]
    assert [(p.code, p.sheet, p.message) for p in site.problems] == [
        (
            "devices-on-another-tab",
            "Key list",
            'the devices are read from the tab "Key list", the one tab with the columns this '
            'template needs: the first tab, "Cover", has no column for DevEUI; --tab "Cover" '
            "reads that one instead",
        )
    ]
    # Named with --tab (case and spaces do not matter): no notice.
    named = read_records(open_workbook(path), template, tab="KEY LIST")
    assert named.tabs == {"devices": "Key list"} and not named.problems
    assert len(named.devices) == 3


def test_an_unknown_tab_a_chart_and_a_csv_tab_are_errors_that_list_the_tabs(
    tmp_path: Path,
) -> None:
    path = vendor_workbook(tmp_path / "vendor.xlsx")
    template = load_template("lorawan-meter")
    with pytest.raises(SheetError) as unknown:
        read_records(open_workbook(path), template, tab="Keys")
    assert str(unknown.value) == (
        'vendor.xlsx has no tab "Keys" (--tab): its tabs are "Chart1" (a chart), "Cover", '
        '"Key list": give --tab one of these names'
    )
    with pytest.raises(SheetError, match=r'"Chart1" is a chart, not a table of cells'):
        read_records(open_workbook(path), template, tab="chart1")
    csv = tmp_path / "keys.csv"
    csv.write_text("DevEUI\n70B3D5E75E000001\n", encoding="utf-8")
    with pytest.raises(SheetError, match="a CSV file holds one table and no tabs"):
        read_records(open_workbook(csv), template, tab="Key list")


def test_several_tabs_with_the_columns_ask_for_tab(tmp_path: Path) -> None:
    path = vendor_workbook(tmp_path / "vendor.xlsx", keys=("Keys A", "Keys B"))
    with pytest.raises(SheetError) as unclear:
        read_records(open_workbook(path), load_template("lorawan-meter"))
    assert str(unclear.value) == (
        'vendor.xlsx: the first tab, "Cover", has no column for DevEUI, and the tabs "Keys A", '
        '"Keys B" all have the columns this template needs: name the tab that holds the devices '
        'with --tab "Keys A" (or another of them)'
    )
    site = read_records(open_workbook(path), load_template("lorawan-meter"), tab="Keys B")
    assert site.tabs == {"devices": "Keys B"} and len(site.devices) == 3


def test_empty_tabs_are_passed_over_in_xlsx_and_ods(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    empty = book.active
    assert empty is not None
    empty.title = "Sheet1"
    data = book.create_sheet("Tabelle2")
    data.append(["serial", "addr"])
    data.append(["S1", "0004A30B001C0001"])
    book.save(tmp_path / "site.xlsx")
    tables = (
        '<table:table table:name="Leer"><table:table-row><table:table-cell/>'
        "</table:table-row></table:table>"
        '<table:table table:name="Geräteliste">'
        + ods_row(["serial", "addr"])
        + ods_row(["S1", "0004A30B001C0001"])
        + "</table:table>"
    )
    handmade_ods(tmp_path / "site.ods", tables)
    for name, tab in (("site.xlsx", "Tabelle2"), ("site.ods", "Geräteliste")):
        site = read_records(open_workbook(tmp_path / name), load_template("default"))
        assert site.tabs == {"devices": tab}, name
        assert [r.body["addr"] for r in site.devices] == ["0004A30B001C0001"]
        assert not site.problems  # the first tab with a table: nothing to tell


def test_a_workbook_of_empty_tabs_says_the_first_is_empty(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.create_sheet("Other")
    book.save(tmp_path / "empty.xlsx")
    with pytest.raises(SheetError, match='tab "Sheet" is empty: put the header in the first row'):
        read_records(open_workbook(tmp_path / "empty.xlsx"), load_template("default"))


# --- through the command line -----------------------------------------------------------------


def test_validate_and_plan_read_the_tab_named_with_tab(sandbox: Sandbox, tmp_path: Path) -> None:
    """The vendor workbook end to end: validate finds the key list on its own (one notice),
    --tab names it, an unknown --tab is exit 2 listing the tabs, and plan reads the tab
    named against the platform."""
    path = vendor_workbook(tmp_path / "vendor.xlsx")
    found = run("validate", path, None, template=None)
    assert found.returncode == 0, found.stdout + found.stderr
    lines = found.stdout.splitlines()
    assert lines[:2] == [
        "template lorawan-meter: fits the headers; --template to choose another",
        "3 rows: 3 valid, 0 invalid, 1 warning",
    ]
    assert 'warning: Key list: the devices are read from the tab "Key list"' in lines[2]

    named = run("validate", path, None, "--tab", "Key list", template=None)
    assert named.returncode == 0, named.stdout + named.stderr
    assert named.stdout.splitlines()[1] == "3 rows: 3 valid, 0 invalid"

    unknown = run("validate", path, None, "--tab", "Keys", template=None)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == (
        'Error: vendor.xlsx has no tab "Keys" (--tab): its tabs are "Chart1" (a chart), '
        '"Cover", "Key list": give --tab one of these names'
    )

    sandbox.store.insert_devices([{"addr": key_row(0)[0], "deviceTypeId": 4}])
    report = tmp_path / "plan.json"
    planned = run("plan", path, sandbox, "--tab", "key list", "--report", str(report))
    assert planned.returncode == 0, planned.stdout + planned.stderr
    rows = json.loads(report.read_text(encoding="utf-8"))["rows"]
    assert [(r["sheet"], r["row"], r["action"]) for r in rows] == [
        ("Key list", 2, "differs"),  # on the platform without the JoinEUI and AppKey
        ("Key list", 3, "create"),
        ("Key list", 4, "create"),
    ]


def test_the_resume_command_and_a_saved_plan_keep_the_tab(tmp_path: Path) -> None:
    """apply's resume command names the tab it was given; a plan saved from one devices
    tab does not go through on another (the rows are another tab's)."""
    resume = _resume_command(
        Path("vendor.xlsx"),
        "lorawan-meter",
        Path("vendor.journal.jsonl"),
        "http://127.0.0.1:8080",
        None,
        shell="posix",
        tab="Key list",
    )
    assert resume == (
        "provisioner apply vendor.xlsx --template lorawan-meter --tab 'Key list' "
        "--url http://127.0.0.1:8080 --journal vendor.journal.jsonl --yes"
    )
    saved = tmp_path / "plan.json"
    saved.write_text(
        json.dumps(
            {
                "command": "plan",
                "template": "lorawan-meter",
                "fingerprint": "f",
                "rows": [{"sheet": "Keys B", "row": 2, "kind": "device", "action": "create"}],
            }
        ),
        encoding="utf-8",
    )
    fresh = SimpleNamespace(
        template="lorawan-meter",
        fingerprint="f",
        rows=[],
        validation=SimpleNamespace(records=SiteRecords(tabs={"devices": "Keys A"})),
    )
    with pytest.raises(SavedPlanError) as other:
        check_saved_plan(saved, fresh)  # type: ignore[arg-type]
    assert str(other.value) == (
        f'{saved} was made from the devices on the tab "Keys B", and this apply reads them '
        'from the tab "Keys A": add --tab "Keys B", or run plan again'
    )
