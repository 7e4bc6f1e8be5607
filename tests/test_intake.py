"""Intake: every valid sheet reads clean; damage, rules and secrets as the catalogue says."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from provisioner import records as records_module
from provisioner.fields import FIELDS, SECRET_CONFIG_KEYS, field
from provisioner.lookup import Snapshot
from provisioner.plan import diff
from provisioner.records import read_records
from provisioner.reports import render_console, write_report
from provisioner.sheets import open_workbook
from provisioner.templates import TemplateError, list_templates, load_template
from provisioner.validation import ValidationReport, validate_sheet

SAMPLES = Path(__file__).resolve().parent.parent / "sample_sheets"
DATA = Path(__file__).resolve().parent / "data"


def xlsx(tmp_path: Path, rows: list[list[Any]], name: str = "site.xlsx", **tabs: Any) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Devices"
    for row in rows:
        sheet.append(row)
    for title, tab_rows in tabs.items():
        tab = book.create_sheet(title)
        for row in tab_rows:
            tab.append(row)
    path = tmp_path / name
    book.save(path)
    return path


def codes(report: ValidationReport) -> list[str]:
    return [p.code for p in report.errors + report.warnings]


# --- identifiers: E-notation only in Excel's form ------------------------------------------------


@pytest.mark.parametrize("position", range(16))
@pytest.mark.parametrize("template", ["lorawan-meter", "default"])
def test_a_hex_deveui_with_an_e_anywhere_is_clean(
    tmp_path: Path, position: int, template: str
) -> None:
    digits = "0978762461590076"
    deveui = digits[:position] + "E" + digits[position + 1 :]
    header = ["DevEUI", "JoinEUI", "AppKey"] if template == "lorawan-meter" else ["serial", "addr"]
    row = [deveui, "70B3D57ED0000001", "0" * 32] if template == "lorawan-meter" else ["S1", deveui]
    report = validate_sheet(xlsx(tmp_path, [header, row]), load_template(template))
    assert report.ok, [p.message for p in report.errors]


@pytest.mark.parametrize("text", ["1.23457E+15", "8.69E+14", "1E+15", "3,52656E+14", "7.0E-03"])
def test_what_excel_general_writes_is_still_caught(tmp_path: Path, text: str) -> None:
    report = validate_sheet(
        xlsx(tmp_path, [["serial", "addr"], [text, "0004A30B001C0001"]]), load_template("default")
    )
    assert codes(report) == ["id-scientific"]
    assert report.errors[0].to_dict()["cell"] == "A2"


def test_a_15_digit_deveui_is_a_lost_leading_zero(tmp_path: Path) -> None:
    report = validate_sheet(
        xlsx(tmp_path, [["DevEUI"], ["4A30B001C053012"]]), load_template("lorawan-meter")
    )
    assert codes(report) == ["id-lost-leading-zero"]


def test_numbers_in_numeric_fields_are_clean(tmp_path: Path) -> None:
    rows = [
        ["serial", "addr", "deviceTypeId", "lat", "lon"],
        ["S1", "0004A30B001C0001", 2, 53.5, 9.9],
    ]
    report = validate_sheet(xlsx(tmp_path, rows), load_template("default"))
    assert report.ok and codes(report) == []
    assert report.records.devices[0].body["deviceTypeId"] == 2


def test_a_numeric_device_type_takes_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    slow = records_module._cell_text
    monkeypatch.setattr(records_module, "_cell_text", lambda *a: calls.append(a) or slow(*a))
    rows = [["serial", "addr", "deviceTypeId"]] + [
        [f"S{i}", f"0004A30B{i:08X}", 2] for i in range(200)
    ]
    report = validate_sheet(xlsx(tmp_path, rows), load_template("default"))
    assert report.ok and len(report.records.devices) == 200
    assert calls == [], "a clean row with a number in deviceTypeId was read cell by cell"


# --- template rules: every rule that loads is applied, on every tab --------------------------------

RULES = """\
[devices.columns]
addr = ["addr"]
serial = ["serial"]
name = ["name"]
[devices.rules.name]
pattern = "Haus [0-9]+ .*"
hint = "Haus <number> <room>"
[users.rules.email]
pattern = ".*@stadtwerke-example[.]de"
[users.rules.name]
pattern = "[A-Z].*"
[downlinks.rules.key]
pattern = "S[0-9]+"
"""


def test_rules_on_text_fields_apply_on_every_tab(tmp_path: Path) -> None:
    template = tmp_path / "site.toml"
    template.write_text(RULES, encoding="utf-8")
    path = xlsx(
        tmp_path,
        [["serial", "addr", "name"], ["S1", "0004A30B001C0001", "Keller"]],
        Users=[
            ["name", "email", "password", "roles"],
            ["erika", "erika@example.com", "s0meSecur3Pw", "device-admin"],
        ],
        Downlinks=[["key", "type", "payload"], ["X1", "fw", '{"q": "reboot"}']],
    )
    report = validate_sheet(path, load_template(str(template)))
    found = {(p.sheet, p.to_dict()["cell"], p.code) for p in report.errors}
    assert ("Devices", "C2", "id-format") in found
    assert ("Users", "A2", "id-format") in found
    assert ("Users", "B2", "id-format") in found
    assert ("Downlinks", "A2", "id-format") in found
    message = next(p.message for p in report.errors if p.to_dict()["cell"] == "C2")
    assert "Haus <number> <room>" in message


@pytest.mark.parametrize(
    ("section", "name"),
    [
        ("devices", "deviceTypeId"),
        ("devices", "tags"),
        ("devices", "lat"),
        ("devices", "certEnforcesDtls"),
        ("devices", "config"),
        ("users", "roles"),
        ("downlinks", "type"),
        ("downlinks", "payload"),
    ],
)
def test_a_rule_that_could_never_apply_is_refused_at_load(
    tmp_path: Path, section: str, name: str
) -> None:
    text = '[devices.columns]\naddr = ["addr"]\nserial = ["serial"]\n'
    text += f'[{section}.rules.{name}]\npattern = ".*"\n'
    path = tmp_path / "t.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError, match=f"{name} is not a text field"):
        load_template(str(path))


def test_a_misspelt_rule_field_gets_a_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(
        '[devices.columns]\naddr = ["addr"]\nserial = ["serial"]\n[users.rules.emial]\npattern = "x"\n',
        encoding="utf-8",
    )
    with pytest.raises(TemplateError, match="did you mean 'email'"):
        load_template(str(path))


def test_every_rule_of_every_built_in_template_is_on_a_text_field() -> None:
    for name in list_templates():
        template = load_template(name)
        for spec in (template.devices, template.users, template.downlinks):
            for rule_field in spec.rules:
                known = spec.field(rule_field)
                assert known is not None and known.is_text, (name, spec.section, rule_field)


# --- the template guess and a missing column said once -------------------------------------------


def test_a_lorawan_key_list_without_template_is_read_with_the_template_that_fits(
    tmp_path: Path,
) -> None:
    lines = ["DevEUI,JoinEUI,AppKey"] + [
        f"70B3D5E75E{i:06X},70B3D57ED0000001,{i:032X}" for i in range(80)
    ]
    path = tmp_path / "keys.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def validate(*options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "provisioner", "validate", str(path), *options],
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = validate()
    assert done.returncode == 0, done.stdout + done.stderr
    first, second = done.stdout.splitlines()[:2]
    assert first == "template lorawan-meter: fits the headers; --template to choose another"
    assert second == "80 rows: 80 valid, 0 invalid"

    # Read with default on purpose: each missing column once, no line per row.
    done = validate("--template", "default")
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == "template default: given with --template"
    assert done.stdout.count("--template lorawan-meter") == 1, done.stdout
    assert "Address is missing" not in done.stdout
    assert done.stdout.count("has no column for addr") == 1, done.stdout
    assert done.stdout.count("has no column for serial") == 1, done.stdout
    assert "the row has no" not in done.stdout
    report = validate_sheet(path, load_template("default"))
    assert report.totals == {"valid": 0, "invalid": 80}
    assert all(not r.valid for r in report.records.devices)
    assert [r.status for r in report.rows] == ["invalid"] * 80
    assert not [p for p in report.errors if p.kind.code == "missing-key"]


# --- device types, hidden cells, big CSV cells ---------------------------------------------------


def test_a_device_type_the_template_does_not_list_is_a_warning(tmp_path: Path) -> None:
    rows = [["DevEUI", "Gerätetyp"], ["0004A30B001C0001", 99]]
    template = load_template("lorawan-meter")
    report = validate_sheet(xlsx(tmp_path, rows), template)
    [warning] = [p for p in report.warnings if p.code == "unknown-device-type"]
    assert "99" in warning.message and "4 (LoRaWAN Meter)" in warning.message


def test_hidden_rows_columns_and_tabs_are_named(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Devices"
    sheet.append(["serial", "addr", "name"])
    for i in range(5):
        sheet.append([f"S{i}", f"0004A30B001C000{i}", f"M{i}"])
    sheet.row_dimensions[4].hidden = True
    sheet.column_dimensions["C"].hidden = True
    users = book.create_sheet("Users")
    users.append(["name", "email", "password", "roles"])
    users.append(["Erika", "erika@example.com", "s0meSecur3Pw", "device-admin"])
    users.sheet_state = "hidden"
    book.create_sheet("Notizen").sheet_state = "hidden"  # not read: nothing to say
    path = tmp_path / "hidden.xlsx"
    book.save(path)
    report = validate_sheet(path, load_template("default"))
    messages = [p.message for p in report.warnings if p.code == "hidden-cells"]
    assert messages == [
        "the Devices tab hides row 4 and column C; they are read like the others",
        "the tab Users is hidden; it is read like the others",
    ]
    assert len(report.records.devices) == 5 and len(report.records.users) == 1


def test_a_csv_cell_of_200_kib_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    big = "x" * 200 * 1024
    path.write_text(f"serial,addr,description\nS1,0004A30B001C0001,{big}\n", encoding="utf-8")
    report = validate_sheet(path, load_template("default"))
    assert report.records.devices[0].body["description"] == big


# --- secrets ------------------------------------------------------------------------------------


def test_lorawan_keys_and_passwords_are_secret_in_the_catalogue() -> None:
    assert FIELDS["users"]["password"].secret
    for key in ("AppKey", "NwkKey"):
        found = field("devices", f"cfg:{key}")
        assert found is not None and found.secret and key in SECRET_CONFIG_KEYS
    found = field("devices", "cfg:JoinEUI")
    assert found is not None and not found.secret


def test_the_names_validation_hides_are_the_catalogues_secret_fields() -> None:
    from provisioner.fields import SECRET_NAMES

    for tab, fields in FIELDS.items():
        for name, known in fields.items():
            assert (name in SECRET_NAMES) is known.secret, (tab, name)
    assert "cfg:AppKey" in SECRET_NAMES and "cfg:nwkskey" in SECRET_NAMES
    assert "cfg:JoinEUI" not in SECRET_NAMES and "AppKey" not in SECRET_NAMES


def test_a_bad_appkey_is_reported_without_its_value(tmp_path: Path) -> None:
    secret = "00112233445566778899AABBCCDDEEF"  # 31 digits: one short
    rows = [["DevEUI", "JoinEUI", "AppKey"], ["0004A30B001C0001", "70B3D57ED0000001", secret]]
    report = validate_sheet(xlsx(tmp_path, rows), load_template("lorawan-meter"))
    assert [p.to_dict()["cell"] for p in report.errors] == ["C2"]
    data = report.to_dict()
    for suffix in ("json", "html", "csv"):
        out = tmp_path / f"r.{suffix}"
        write_report(data, out)
        assert secret not in out.read_text(encoding="utf-8-sig"), suffix
    assert secret not in render_console(data)


def test_a_plan_diff_says_which_key_differs_without_either_value() -> None:
    from provisioner.records import Record, SiteRecords

    body = {"addr": "0004A30B001C0001", "initialConfig": {"AppKey": "A" * 32, "JoinEUI": "1" * 16}}
    record = Record("Devices", 2, "0004A30B001C0001", body, {}, {})
    site = SiteRecords(devices=[record])
    snapshot = Snapshot("addr")
    held = {"AppKey": "B" * 32, "JoinEUI": "1" * 16}
    snapshot.add({"id": 7, "addr": "0004A30B001C0001", "initialConfig": held})
    [row] = diff(site, snapshot, {})
    assert row.action == "differs"
    assert "cfg:AppKey" in row.reason and "JoinEUI" not in row.reason
    text = json.dumps(row.to_dict())
    assert "A" * 32 not in text and "B" * 32 not in text


def test_the_report_copy_holds_neither_keys_nor_passwords(tmp_path: Path) -> None:
    """A report copy is shared (mailed, attached to a ticket): a secret field never is."""
    from provisioner.sheets import read_tables

    path = xlsx(
        tmp_path,
        [["DevEUI", "AppKey"], ["0004A30B001C0001", "00112233445566778899AABBCCDDEEFF"]],
        Users=[
            ["name", "email", "password", "roles"],
            ["Erika", "e@x.de", "s0meSecur3Pw", "device-admin"],
        ],
    )
    report = validate_sheet(path, load_template("lorawan-meter"))
    records = report.records
    out = tmp_path / "copy.xlsx"
    write_report(
        report.to_dict(),
        out,
        source=path,
        tables=read_tables(path, records.tabs.values()),
        secret_columns=records.secret_columns,
        secrets=records.secret_values(),
    )
    book = openpyxl.load_workbook(out)
    assert book["Devices"]["A2"].value == "0004A30B001C0001"
    assert book["Devices"]["B2"].value in (None, "")
    assert book["Users"]["C2"].value in (None, "")


# --- one row mapper: the fast and the cell-by-cell path agree -----------------------------------

SHEETS = sorted(
    [p for p in SAMPLES.iterdir() if p.suffix in (".xlsx", ".csv")]
    + [p for p in DATA.iterdir() if p.suffix in (".xlsx", ".csv", ".ods")]
)


@pytest.mark.parametrize("template", list_templates())
@pytest.mark.parametrize("sheet", SHEETS, ids=lambda p: p.name)
def test_the_fast_and_the_cell_by_cell_path_give_the_same_records(
    sheet: Path, template: str
) -> None:
    loaded = load_template(template)
    fast = read_records(open_workbook(sheet), loaded)
    slow = read_records(open_workbook(sheet), loaded, cell_by_cell=True)
    assert [asdict(r) for r in fast.devices] == [asdict(r) for r in slow.devices]
    assert list(map(str, fast.problems)) == list(map(str, slow.problems))


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_rows_without_a_key_or_with_a_word_for_a_number_say_the_same_on_both_paths(
    tmp_path: Path, suffix: str
) -> None:
    """The fast path says these two problems itself (half a sheet of them is common):
    the same words, cells and order as reading the row cell by cell, and the same body
    (the field that did not convert left out)."""
    header = ["serial", "addr", "deviceTypeId", "certEnforcesDtls", "lat", "lon", "name"]
    rows = [
        ["S1", "0004A30B001C0001", "zwei", "FALSE", "53.5", "9.9", "a"],
        [None, "0004A30B001C0002", "3", "FALSE", "53.5", "9.9", "b"],
        [None, "0004A30B001C0003", "drei", "vielleicht", "53.5", "9.9", "c"],
        ["S4", "0004A30B001C0004", "4", "vielleicht", "53,x", "9.9", "d"],
        ["S5", "0004A30B001C0005", "5", "TRUE", "53.5", "9.9", "e"],
        [None, "0004A30B001C0006", "6", "FALSE", None, None, None],
    ]
    if suffix == ".xlsx":
        path = xlsx(tmp_path, [header, *rows])
    else:
        path = tmp_path / "site.csv"
        text = "\n".join(";".join(cell or "" for cell in row) for row in [header, *rows])
        path.write_text(text + "\n", encoding="utf-8")
    template = load_template("default")
    fast = read_records(open_workbook(path), template)
    slow = read_records(open_workbook(path), template, cell_by_cell=True)
    assert [asdict(r) for r in fast.devices] == [asdict(r) for r in slow.devices]
    assert list(map(str, fast.problems)) == list(map(str, slow.problems))
    said = [(p.code, p.cell) for p in fast.problems]
    assert ("missing-key", "A3") in said and ("missing-key", "A7") in said
    assert ("missing-key", "A4") not in said  # its cells that do not convert say enough
    assert [cell for code, cell in said if code != "missing-key"] == ["C2", "C4", "D4", "D5", "E5"]
    assert [r.valid for r in fast.devices] == [False, False, False, False, True, False]


def test_both_paths_put_the_template_defaults_under_a_row_and_say_which_they_filled(
    tmp_path: Path,
) -> None:
    """The template's location, config, tags and plain defaults go under the row's own
    values the same way on both paths, and ``defaulted`` names what the template filled
    (apply --update leaves those alone): a tags cell of separators only has no tags."""
    template_path = tmp_path / "site.toml"
    template_path.write_text(
        'match_key = "addr"\nsite_tag = "Site-HH-04"\n'
        "[devices.columns]\n"
        'addr = "addr"\nname = "name"\ntags = "tags"\nlat = "lat"\nlon = "lon"\n'
        'deviceTypeId = "type"\n'
        "[devices.defaults]\n"
        'deviceTypeId = 4\ntags = ["Haus4"]\nlat = 53.55\nlon = 10\n'
        'config = { listenCron = "0 0/20 * * * *" }\n',
        encoding="utf-8",
    )
    template = load_template(str(template_path))
    header = ["addr", "name", "tags", "lat", "lon", "type", "cfg:cmodeDurSec"]
    rows = [
        ["0004A30B001C0001", "own", "Keller", 53.1, 9.9, 2, "600"],
        ["0004A30B001C0002", "none", None, None, None, None, None],
        ["0004A30B001C0003", "commas", ",;", None, None, None, None],
    ]
    path = xlsx(tmp_path, [header, *rows])
    fast = read_records(open_workbook(path), template)
    slow = read_records(open_workbook(path), template, cell_by_cell=True)
    assert [asdict(r) for r in fast.devices] == [asdict(r) for r in slow.devices]
    own, none, commas = fast.devices
    assert own.defaulted == frozenset()
    assert own.body["tags"] == ["Keller", "Haus4", "Site-HH-04"]
    assert own.body["initialConfig"] == {"listenCron": "0 0/20 * * * *", "cmodeDurSec": "600"}
    everything = {"deviceTypeId", "location", "initialConfig", "tags"}
    assert none.defaulted == commas.defaulted == everything
    assert none.body["location"] == {"lat": 53.55, "lon": 10}
    assert commas.body["tags"] == ["Haus4", "Site-HH-04"]


BAD_BODIES = [
    {"serial": "S1"},
    {"addr": "a b", "serial": 12, "deviceTypeId": "x", "name": None},
    {"addr": "x" * 300, "deviceTypeId": 1.0, "certEnforcesDtls": None},
    {"addr": 5, "deviceTypeId": -2.5, "description": "d" * 5000},
    {"addr": "0004A30B001C0001", "deviceTypeId": True, "serial": ["S"]},
    {"addr": "0004A30B001C0001", "location": {"lat": 5355, "lon": 9.9}},
    {"addr": "0004A30B001C0001", "location": {"lon": 999, "alt": 3, "x": 1}},
    {"addr": "0004A30B001C0001", "location": {"lat": "53,5", "lon": None}},
    {"addr": "0004A30B001C0001", "location": [53.5, 9.9]},
    {"addr": "", "deviceTypeId": 0, "tags": ["", "x"]},
    {"addr": "x y", "name": "n" * 300, "location": {"lat": 99, "lon": 9}},
    {"addr": "0004A30B001C0001", "certEnforcesDtls": "yes", "rocket": 1},
    {"addr": "0004A30B001C0001", "initialConfig": {"a": [1]}, "description": 5},
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_a_failing_body_is_explained_as_a_full_jsonschema_pass_would(body: dict[str, Any]) -> None:
    from provisioner.validation import checker, describe

    check = checker("deviceInput")
    words = sorted(describe(e, check.schema) for e in check.errors(body))
    again = sorted(describe(e, check.schema) for e in check.errors(body))  # from the cache
    full = sorted(describe(e, check.schema) for e in check.full.iter_errors(body))
    assert words == full == again and words


def test_validate_imports_neither_the_http_client_nor_openpyxl(tmp_path: Path) -> None:
    sheet = tmp_path / "site.csv"
    sheet.write_text("serial,addr\nS1,0004A30B001C0001\n", encoding="utf-8")
    probe = (
        "import sys\n"
        "from provisioner.cli import main\n"
        f"main(['validate', {str(sheet)!r}, '--report', {str(tmp_path / 'r.json')!r}],"
        " standalone_mode=False)\n"
        "print(sorted(m for m in ('httpx', 'openpyxl', 'jsonschema') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "email": "no-at", "password": "short", "roles": []},
        {"name": "E" * 300, "email": 5, "password": "l0ngEnoughPassword", "roles": ["x", "x"]},
        {"email": "a@b.de", "password": None},
    ],
)
def test_a_failing_user_is_explained_as_a_full_jsonschema_pass_would(
    body: dict[str, Any],
) -> None:
    from provisioner.fields import SECRET_NAMES
    from provisioner.validation import checker, describe

    check = checker("userInput")
    words = sorted(describe(e, check.schema, SECRET_NAMES) for e in check.errors(body))
    full = sorted(describe(e, check.schema, SECRET_NAMES) for e in check.full.iter_errors(body))
    assert words == full and words


def test_a_lorawan_key_stored_as_a_number_is_named_without_its_digits(tmp_path: Path) -> None:
    rows = [["DevEUI", "AppKey"], ["0004A30B001C0001", 12345678901234567890123]]
    report = validate_sheet(xlsx(tmp_path, rows), load_template("lorawan-meter"))
    [problem] = report.errors
    assert problem.code == "id-stored-as-number"
    text = json.dumps(report.to_dict())
    assert "12345678" not in text and "1.23457E+22" not in text


def test_commas_and_semicolons_split_tags_and_roles_on_both_paths(tmp_path: Path) -> None:
    path = xlsx(
        tmp_path,
        [["serial", "addr", "tags"], ["S1", "0004A30B001C0001", "Haus 4; Keller, 3.OG;;"]],
        Users=[["email", "roles"], ["a@example.com", "device-admin; org-admin"]],
    )
    template = load_template("default")
    fast = read_records(open_workbook(path), template)
    slow = read_records(open_workbook(path), template, cell_by_cell=True)
    assert [asdict(r) for r in fast.devices] == [asdict(r) for r in slow.devices]
    assert fast.devices[0].body["tags"] == ["Haus 4", "Keller", "3.OG"]
    assert fast.users[0].body["roles"] == ["device-admin", "org-admin"]
