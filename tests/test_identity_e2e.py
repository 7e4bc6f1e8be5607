"""The sheet means what the installer meant, end to end: the real CLI against the
sandbox, the platform's state read back from its store.

One DevEUI in any letter case or with a label's separators is one device, in the
sheet, on the platform and in what is sent; a number Excel shows exactly is its
digits; a misspelt header or another template's header stops the tab instead of
leaving its values out; two columns of one field must agree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openpyxl
from test_apply_e2e import RUN_TIMEOUT, environment

from provisioner.sandbox import Sandbox

TOKEN = "test-org-admin-token"
EUI = "70B3D5E75E005000"


def run(
    verb: str, sheet: Path, sb: Sandbox | None, *extra: str, template: str | None = "lorawan-meter"
) -> subprocess.CompletedProcess[str]:
    words = [sys.executable, "-m", "provisioner", verb, str(sheet)]
    if template is not None:
        words += ["--template", template]
    if sb is not None:
        words += ["--url", sb.url]
    if verb == "apply":
        words += ["--yes"]
    done = subprocess.run(
        [*words, *extra],
        env=environment(TOKEN),
        cwd=sheet.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    assert TOKEN not in done.stdout + done.stderr
    return done


def csv_sheet(folder: Path, *lines: str, name: str = "site.csv") -> Path:
    sheet = folder / name
    sheet.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sheet


def addrs_on(sb: Sandbox) -> list[str]:
    return sorted(d["addr"] for d in sb.store.list_devices(limit=10000))


def test_one_deveui_in_two_cases_is_one_device(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = csv_sheet(tmp_path, "DevEUI;name", f"{EUI};a", f"{EUI.lower()};b")
    checked = run("validate", sheet, None)
    assert checked.returncode == 1, checked.stdout
    assert "0 valid, 2 invalid" in checked.stdout
    assert f"DevEUI '{EUI}' is also in row 3" in checked.stdout
    planned = run("plan", sheet, sandbox)
    assert planned.returncode == 1 and "create 0" in planned.stdout, planned.stdout
    applied = run("apply", sheet, sandbox)
    assert applied.returncode == 1
    assert addrs_on(sandbox) == []


def test_label_separators_are_read_as_the_deveui_and_sent_in_one_form(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = csv_sheet(
        tmp_path,
        "DevEUI;name;JoinEUI",
        "70-B3-D5-E7-5E-00-50-01;a;70-b3-d5-7e-d0-00-00-01",
        "70:B3:D5:E7:5E:00:50:02;b;70B3D57ED0000001",
        "70 b3 d5 e7 5e 00 50 03;c;70B3D57ED0000001",
        "70B3D5E75E005004;d;70B3D57ED0000001",
    )
    checked = run("validate", sheet, None)
    assert checked.returncode == 0, checked.stdout
    assert "4 valid, 0 invalid" in checked.stdout
    # One notice a column, never one per cell, and never silent.
    assert checked.stdout.count("warning:") == 2, checked.stdout
    assert (
        "3 cells of DevEUI written with '-', ':', spaces or in lower case are read as 16 hex "
        "digits and sent in upper case without separators (first: A2 '70-B3-D5-E7-5E-00-50-01' "
        "as '70B3D5E75E005001')" in checked.stdout
    )
    assert "1 cell of JoinEUI written with '-' or in lower case is read as 16 hex" in checked.stdout
    applied = run("apply", sheet, sandbox)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert addrs_on(sandbox) == [f"70B3D5E75E00500{i}" for i in range(1, 5)]
    configs = [d["initialConfig"] for d in sandbox.store.list_devices()]
    assert configs == [{"JoinEUI": "70B3D57ED0000001"}] * 4
    again = run("plan", sheet, sandbox)
    assert again.returncode == 0 and "create 0 · exists 4" in again.stdout, again.stdout


def test_a_device_the_platform_holds_in_lower_or_mixed_case_is_found(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # The sandbox keeps and compares addr as given, with case, as the platform is assumed to.
    sandbox.store.create_device({"addr": EUI.lower(), "name": "a", "deviceTypeId": 4})
    sandbox.store.create_device({"addr": "70b3D5e75E005001", "name": "b", "deviceTypeId": 4})
    assert sandbox.store.devices_by("addr", EUI) == []
    sheet = csv_sheet(tmp_path, "DevEUI;name", f"{EUI};a", "70-B3-D5-E7-5E-00-50-01;b")
    planned = run("plan", sheet, sandbox)
    assert planned.returncode == 0, planned.stdout
    assert "create 0 · exists 2" in planned.stdout
    applied = run("apply", sheet, sandbox)
    assert applied.returncode == 0, applied.stdout
    assert addrs_on(sandbox) == ["70b3D5e75E005001", EUI.lower()]  # nothing made twice


def test_a_serial_stored_as_a_number_excel_shows_whole_is_its_digits(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    workbook = openpyxl.Workbook()
    tab = workbook.active
    assert tab is not None
    tab.title = "Devices"
    tab.append(["serial", "addr", "name"])
    tab.append([20240001, "352656100123456", "Gateway 1"])
    tab.append([20240002, "352656100123457", "Gateway 2"])
    tab.append([1.23456789012e15, "352656100123458", "Gateway 3"])  # shown as 1.23457E+15
    sheet = tmp_path / "site.xlsx"
    workbook.save(sheet)
    checked = run("validate", sheet, None, template="default")
    assert checked.returncode == 1
    assert "2 valid, 1 invalid" in checked.stdout
    assert (
        "2 cells of serial stored as numbers are read as the digits shown (first: A2 20240001)"
        in checked.stdout
    )
    assert "A4 serial" in checked.stdout and "E+ notation" in checked.stdout
    run("apply", sheet, sandbox, template="default")
    assert sorted(d["serial"] for d in sandbox.store.list_devices()) == ["20240001", "20240002"]


def test_a_misspelt_header_stops_the_tab_and_nothing_is_created(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = csv_sheet(
        tmp_path,
        "DevEUI;name;AppKy",
        f"{EUI};a;00112233445566778899AABBCCDDEEFF",
        "70B3D5E75E005001;b;00112233445566778899AABBCCDDEEFF",
    )
    checked = run("validate", sheet, None)
    assert checked.returncode == 1
    assert (
        "column 'AppKy' is not a header of this template: did you mean 'AppKey'" in checked.stdout
    )
    assert "Nothing is lost" not in checked.stdout
    applied = run("apply", sheet, sandbox)
    assert applied.returncode == 1, applied.stdout
    assert "'AppKy' must be fixed" in applied.stdout
    assert addrs_on(sandbox) == []


def test_another_templates_header_stops_the_tab(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = csv_sheet(tmp_path, "DevEUI;name;Gerätetyp-ID", f"{EUI};a;6")
    applied = run("apply", sheet, sandbox)
    assert applied.returncode == 1, applied.stdout
    assert "Gerätetyp-ID" in applied.stdout and "deviceTypeId" in applied.stdout
    assert addrs_on(sandbox) == []  # never created as type 4 without a word
    fixed = csv_sheet(tmp_path, "DevEUI;name;Gerätetyp", f"{EUI};a;6")
    assert run("apply", fixed, sandbox).returncode == 0
    assert [d["deviceTypeId"] for d in sandbox.store.list_devices()] == [6]
    # A header the default template reads and this one knows under no near name.
    other = csv_sheet(tmp_path, "DevEUI;name;Geräteadresse", f"{EUI};a;x", name="other.csv")
    checked = run("validate", other, None)
    assert checked.returncode == 1
    assert (
        "column 'Geräteadresse' (addr) is read by the template 'default', not by this one: "
        "use --template default" in checked.stdout
    )


def test_an_unknown_column_is_a_warning_that_says_it_is_not_sent(tmp_path: Path) -> None:
    sheet = csv_sheet(tmp_path, "DevEUI;name;Farbe", f"{EUI};a;rot")
    checked = run("validate", sheet, None)
    assert checked.returncode == 0
    assert "column 'Farbe' is not a field of this template: it is not sent to the platform" in (
        checked.stdout
    )
    assert "Nothing is lost" not in checked.stdout


def test_two_columns_of_one_field_must_agree(sandbox: Sandbox, tmp_path: Path) -> None:
    agreeing = csv_sheet(
        tmp_path, "DevEUI;addr;name", f"{EUI};{EUI.lower()};a", "70B3D5E75E005001;;b", name="a.csv"
    )
    checked = run("validate", agreeing, None)
    assert checked.returncode == 1  # row 3: B3 is empty where A3 holds a DevEUI
    assert "columns A ('DevEUI') and B ('addr') both hold addr and differ here" in checked.stdout
    assert "1 valid, 1 invalid" in checked.stdout
    same = csv_sheet(tmp_path, "DevEUI;addr;name", f"{EUI};{EUI.lower()};a", name="b.csv")
    checked = run("validate", same, None)
    assert checked.returncode == 0, checked.stdout
    assert "both hold addr and agree in every row; column A is used" in checked.stdout


def test_a_lookalike_letter_is_pointed_at(tmp_path: Path) -> None:
    sheet = csv_sheet(tmp_path, "DevEUI;name", "70B3D5E75EO05000;a", "70B3D5E75El05001;b")
    checked = run("validate", sheet, None)
    assert checked.returncode == 1
    assert "the letter 'O' at character 11 should be the digit 0" in checked.stdout
    assert "the letter 'l' at character 11 should be the digit 1" in checked.stdout


def test_a_downlink_finds_its_device_in_any_spelling(sandbox: Sandbox, tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    devices = workbook.active
    assert devices is not None
    devices.title = "Devices"
    devices.append(["DevEUI", "name"])
    devices.append([EUI, "a"])
    downlinks = workbook.create_sheet("Downlinks")
    downlinks.append(["DevEUI", "type", "payload"])
    downlinks.append(
        ["70-b3-d5-e7-5e-00-50-00", "config", '{"d": {"cmodeDurSec": "600"}, "q": "config"}']
    )
    sheet = tmp_path / "site.xlsx"
    workbook.save(sheet)
    applied = run("apply", sheet, sandbox)
    assert applied.returncode == 0, applied.stdout
    (device,) = sandbox.store.list_devices()
    assert [d["type"] for d in sandbox.store.list_downlinks(device["id"])] == ["config"]


def test_a_template_may_send_hex_in_lower_case(sandbox: Sandbox, tmp_path: Path) -> None:
    template = tmp_path / "lower.toml"
    template.write_text(
        'match_key = "addr"\nhex_case = "lower"\n[devices.columns]\naddr = ["DevEUI"]\n'
        'name = ["name"]\n"cfg:AppKey" = ["AppKey"]\n[devices.defaults]\ndeviceTypeId = 4\n',
        encoding="utf-8",
    )
    sheet = csv_sheet(tmp_path, "DevEUI;name;AppKey", f"{EUI};a;00112233445566778899AABBCCDDEEFF")
    applied = run("apply", sheet, sandbox, template=str(template))
    assert applied.returncode == 0, applied.stdout
    (device,) = sandbox.store.list_devices()
    assert device["addr"] == EUI.lower()
    assert device["initialConfig"] == {"AppKey": "00112233445566778899aabbccddeeff"}
    # The upper-case sheet of another site finds it: one device in any case.
    upper = csv_sheet(tmp_path, "DevEUI;name", f"{EUI};a", name="upper.csv")
    assert "exists 1" in run("plan", upper, sandbox).stdout


def test_export_writes_the_one_form_and_reads_back_as_the_same_devices(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    key = "00112233445566778899aabbccddeeff"
    sandbox.store.create_device(
        {"addr": EUI.lower(), "name": "a", "deviceTypeId": 4, "initialConfig": {"AppKey": key}}
    )
    words = [sys.executable, "-m", "provisioner", "export", "--out", "e.csv", "--all"]
    done = subprocess.run(
        [*words, "--template", "lorawan-meter", "--url", sandbox.url],
        env=environment(TOKEN),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = (tmp_path / "e.csv").read_text(encoding="utf-8-sig")
    assert EUI in text and EUI.lower() not in text
    planned = run("plan", tmp_path / "e.csv", sandbox)
    assert planned.returncode == 0, planned.stdout
    assert "create 0 · exists 1 · differs 0" in planned.stdout  # the AppKey too, without case


def test_the_results_copy_read_again_knows_its_own_outcome_columns(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = csv_sheet(tmp_path, "DevEUI;name;Farbe", f"{EUI};a;rot")
    assert run("apply", sheet, sandbox).returncode == 0
    again = run("plan", tmp_path / "site.results.xlsx", sandbox)
    assert again.returncode == 0, again.stdout
    assert "exists 1" in again.stdout
    # The installer's own column is still named; Status, Platform id, Message are the tool's.
    assert again.stdout.count("is not a field of this template") == 1
    assert "column 'Farbe'" in again.stdout


def test_keys_in_a_downlink_payload_or_config_cell_are_in_no_output(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    keys = ("0A1B2C3D4E5F60718293A4B5C6D7E8F9", "1" * 32, "2" * 32)
    workbook = openpyxl.Workbook()
    devices = workbook.active
    assert devices is not None
    devices.title = "Devices"
    devices.append(["DevEUI", "name", "config", "AppKey"])
    devices.append([EUI, "a", json.dumps({"NwkKey": keys[1]}), keys[2]])
    downlinks = workbook.create_sheet("Downlinks")
    downlinks.append(["DevEUI", "type", "payload"])
    downlinks.append([EUI, "config", json.dumps({"d": {"AppKey": keys[0]}, "q": "config"})])
    sheet = tmp_path / "site.xlsx"
    workbook.save(sheet)
    reports = [str(tmp_path / f"plan.{suffix}") for suffix in ("json", "csv", "html", "xlsx")]
    planned = run("plan", sheet, sandbox, "--show", "creates", *(f"--report={r}" for r in reports))
    assert planned.returncode == 0, planned.stdout
    assert (
        '"AppKey": "(hidden)"' in planned.stdout
    )  # the downlink's key, as --show creates shows it
    applied = run("apply", sheet, sandbox)
    assert applied.returncode == 0, applied.stdout
    written = [Path(r).read_bytes() for r in reports[:3]]
    for name in ("plan.xlsx", "site.results.xlsx"):
        book = openpyxl.load_workbook(tmp_path / name)
        written.append(
            " ".join(str(c.value) for tab in book for row in tab.iter_rows() for c in row).encode()
        )
    for text in [planned.stdout.encode(), applied.stdout.encode(), *written]:
        for key in keys:
            assert key.encode() not in text


def test_undo_puts_back_a_device_the_platform_holds_in_label_form(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    made = sandbox.store.create_device(
        {"addr": "70-b3-d5-e7-5e-00-60-00", "name": "a", "deviceTypeId": 4}
    )
    sheet = csv_sheet(tmp_path, "DevEUI;name", "70B3D5E75E006000;b")
    # Found by a scan (a key query cannot ask for every way of writing separators).
    updated = run("apply", sheet, sandbox, "--update", "--lookup", "scan")
    assert updated.returncode == 0, updated.stdout
    assert sandbox.store.get_device(made["id"])["name"] == "b"
    undone = run("undo", sheet, None, "--url", sandbox.url, "--yes", template=None)
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert sandbox.store.get_device(made["id"])["name"] == "a"
