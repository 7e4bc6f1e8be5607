"""`provisioner export`: the platform's site as a sheet, the inverse of reading one.

The round trip runs in-process for every built-in template and both formats:
export, then validate (nothing found) and plan against the same sandbox (every row
exists). The CLI runs in a subprocess for the file, --force, exit codes and what the
console shows (never a LoRaWAN key).
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from test_apply_e2e import explain

from provisioner import export as export_module
from provisioner.actions import RowAction
from provisioner.export import USERS_TAB, ExportError, check_export, export_site
from provisioner.files import formula_like
from provisioner.plan import make_plan
from provisioner.platform import PlatformClient
from provisioner.sandbox import Sandbox
from provisioner.templates import SiteTemplate, layout_templates, load_template
from provisioner.validation import validate_sheet

SITE_TAG = "Site-T"
APP_KEY = "2B7E151628AED2A6ABF7158809CF4F3C"
RUN_TIMEOUT = 90
Factory = Callable[..., Sandbox]


def addr_for(template: SiteTemplate, i: int) -> str:
    """An addr of the form the template's rule asks for."""
    rule = template.devices.rules.get("addr")
    if rule is not None and rule.digits:
        return f"35265610{i:0{rule.digits - 8}d}"
    return f"0004A30B{i:08X}"


def site_devices(template: SiteTemplate) -> list[dict[str, Any]]:
    """Devices as a site holds them: tags, config keys (one a LoRaWAN key), a location,
    and fields some templates have no column for (a description, DTLS, an object in config)."""
    defaults = template.devices.defaults
    types = list(template.device_types) or [1]
    kind = int(defaults.get("deviceTypeId", types[0]))
    other = next((t for t in types if t != kind), kind)
    fixed = list(defaults.get("tags") or [])
    devices = []
    for i in range(1, 5):
        addr = addr_for(template, i)
        devices.append(
            {
                "addr": addr,
                "serial": f"SN-{i:04d}",
                "name": f"Zähler {i}",
                "description": "Keller, 3.OG Müller" if i == 1 else None,
                "deviceTypeId": other if i == 2 else kind,
                "tags": [SITE_TAG, f"Haus {i}", *fixed],
                "initialConfig": {
                    "listenCron": "0 0/20 * * * *",
                    "cmodeDurSec": 600,
                    "DevEUI": f"0004A30B{i:08X}",
                    "JoinEUI": "70B3D57ED0000000",
                    "AppKey": APP_KEY,
                    **({"filters": {"mFilter": "LOB"}} if i == 3 else {}),
                },
                "location": {"lat": 53.5511 + i / 1000, "lon": -9.9937} if i != 4 else None,
                "certEnforcesDtls": i == 4,
            }
        )
    # Not of this site: not exported.
    devices.append({"addr": addr_for(template, 99), "serial": "SN-0099", "tags": ["other"]})
    return devices


def held_by(template: SiteTemplate, device: dict[str, Any]) -> dict[str, Any]:
    """The deviceInput a sheet in the template's layout can hold of a device."""
    columns = template.devices.columns
    body = {
        k: v
        for k, v in device.items()
        if k in columns and k not in ("tags", "config") and v is not None
    }
    if "deviceTypeId" not in columns and "deviceTypeId" in template.devices.defaults:
        body["deviceTypeId"] = template.devices.defaults["deviceTypeId"]
    if "tags" in columns:
        body["tags"] = device["tags"]
    if "lat" in columns and device["location"] is not None:
        body["location"] = device["location"]
    body["initialConfig"] = {
        k: "600" if v == 600 else v for k, v in device["initialConfig"].items() if k != "filters"
    }
    return body


def fill(sb: Sandbox, template: SiteTemplate) -> None:
    sb.store.insert_devices(site_devices(template))
    sb.store.create_user(
        {
            "name": "Erika Mustermann",
            "email": "erika@example.com",
            "password": "s0meSecur3Pw",
            "roles": ["org-admin", "device-admin"],
        }
    )


def client_of(sb: Sandbox, role: str = "org-admin") -> PlatformClient:
    return PlatformClient(sb.url, sb.tokens[role])


# --- the round trip: export, then validate and plan -----------------------------------------


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
@pytest.mark.parametrize("name", layout_templates())
def test_an_export_validates_clean_and_plans_as_all_exists(
    sandbox: Sandbox, tmp_path: Path, name: str, suffix: str
) -> None:
    template = load_template(name)
    fill(sandbox, template)
    out = tmp_path / f"site{suffix}"
    with client_of(sandbox) as client:
        result = export_site(client, template, out, tags=[SITE_TAG])
        report = validate_sheet(out, template)
        plan = make_plan(out, template, client)

    assert result.devices == 4
    assert (result.users == 1) is (suffix == ".xlsx")
    assert report.errors == [] and report.warnings == [], [p.message for p in report.problems]
    assert report.totals == {"valid": 4, "invalid": 0}
    actions = {row.key: row.action for row in plan.rows}
    assert len(actions) == 4 and set(actions.values()) == {RowAction.EXISTS}, [
        (r.key, r.reason) for r in plan.rows
    ]
    # Plan compares only what the sheet sets: the sheet must also set all it can hold.
    platform = {d["addr"]: d for d in site_devices(template)}
    for record in report.records.devices:
        body, held = dict(record.body), held_by(template, platform[record.body["addr"]])
        # An xlsx number reads back as Excel shows it (General: 10 digits): close enough.
        location, expected = body.pop("location", None), held.pop("location", None)
        assert body == held, record.row
        assert (location is None) is (expected is None)
        if location is not None:
            assert location == pytest.approx(expected, abs=1e-7)
    # What a sheet cannot hold is named, never dropped silently.
    notes = "\n".join(result.notes)
    assert "1 device has initialConfig values that are not text, numbers or true/false" in notes
    spec = template.devices
    if "lat" not in spec.columns:
        assert "3 devices have a location; this template has no lat/lon columns" in notes
    if "certEnforcesDtls" not in spec.columns:
        assert (
            "1 device has certEnforcesDtls true; this template has no certEnforcesDtls column"
            in (notes)
        )
    if "description" not in spec.columns:
        assert "1 device has a description; this template has no description column" in notes
    if suffix == ".csv":
        assert "users are not exported to CSV" in notes


def test_the_site_tag_of_the_template_chooses_the_devices(sandbox: Sandbox, tmp_path: Path) -> None:
    template = tmp_path / "site.toml"
    template.write_text(
        (Path(__file__).parent.parent / "templates" / "default.toml")
        .read_text(encoding="utf-8")
        .replace('# site_tag = "Site-HH-04"', f'site_tag = "{SITE_TAG}"'),
        encoding="utf-8",
    )
    site = load_template(str(template))
    assert site.site_tag == SITE_TAG
    fill(sandbox, site)
    with client_of(sandbox) as client:
        result = export_site(client, site, tmp_path / "site.xlsx")
        everything = export_site(client, site, tmp_path / "all.csv", all_devices=True)
    assert (
        result.devices == 4 and result.selection == f"tagged {SITE_TAG} (the template's site tag)"
    )
    assert everything.devices == 5 and everything.selection == "every device on the platform"


# --- the layouts ------------------------------------------------------------------------------


def test_the_hardware_import_csv_is_the_platforms_own_layout(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    template = load_template("lobaro-hardware-import")
    fill(sandbox, template)
    out = tmp_path / "import.csv"
    with client_of(sandbox) as client:
        export_site(client, template, out, tags=[SITE_TAG])
    data = out.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")  # no BOM: the import reads the first header
    header, *rows = list(csv.reader(data.decode("utf-8").splitlines()))
    sample = (Path(__file__).parent.parent / "sample_sheets" / "hardware-import.csv").read_text(
        encoding="utf-8"
    )
    assert header[:5] == sample.splitlines()[0].split(",")[:5]
    assert header == [
        "address",
        "name",
        "serial",
        "firmware",
        "config",
        "cfg:AppKey",
        "cfg:cmodeDurSec",
        "cfg:DevEUI",
        "cfg:JoinEUI",
        "cfg:listenCron",
        "deviceTypeId",
    ]
    first = dict(zip(header, rows[0], strict=True))
    assert first["address"] == "0004A30B00000001" and first["firmware"] == first["config"] == ""
    assert first["cfg:AppKey"] == APP_KEY and first["cfg:cmodeDurSec"] == "600"


def test_xlsx_cells_identifiers_as_text_numbers_as_numbers(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    template = load_template("wmbus-gateway-nbiot")
    fill(sandbox, template)
    out = tmp_path / "gateways.xlsx"
    with client_of(sandbox) as client:
        export_site(client, template, out, tags=[SITE_TAG])
    workbook = openpyxl.load_workbook(out)
    assert workbook.sheetnames == ["Devices", USERS_TAB, "Instructions"]
    sheet = workbook["Devices"]
    headers = [c.value for c in sheet[1]]
    assert headers[:3] == ["IMEI", "name", "serial"]
    assert headers[-2:] == ["cfg:JoinEUI", "cfg:listenCron"]
    by_header = {h: sheet.cell(2, j).value for j, h in enumerate(headers, start=1)}
    formats = {h: sheet.cell(2, j).number_format for j, h in enumerate(headers, start=1)}
    assert by_header["IMEI"] == "352656100000001" and formats["IMEI"] == "@"
    assert by_header["cfg:cmodeDurSec"] == "600" and formats["cfg:cmodeDurSec"] == "@"
    assert by_header["tags"] == f"{SITE_TAG}, Haus 1, MbusGw"
    assert by_header["certEnforcesDtls"] == "false"
    assert by_header["lat"] == pytest.approx(53.5521) and formats["lat"] == "General"
    assert by_header["deviceTypeId"] == 2
    assert sheet.column_dimensions["A"].number_format == "@"  # rows typed in later, too


def test_a_formula_from_the_platform_stays_text(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.store.insert_devices(
        [{"addr": "0004A30B00000001", "serial": "SN-1", "name": "=HYPERLINK(1)", "tags": ["x"]}]
    )
    template = load_template("default")
    with client_of(sandbox) as client:
        export_site(client, template, tmp_path / "site.xlsx", tags=["x"])
        result = export_site(client, template, tmp_path / "site.csv", tags=["x"])
    cell = openpyxl.load_workbook(tmp_path / "site.xlsx")["Devices"]["B2"]
    assert cell.value == "=HYPERLINK(1)" and cell.data_type == "s"
    rows = list(csv.reader((tmp_path / "site.csv").read_text(encoding="utf-8").splitlines()))
    assert rows[1][1] == "'=HYPERLINK(1)"
    assert any(
        "1 value starting with =, +, - or @ is written with a leading '" in n for n in result.notes
    )


# --- keys, users ------------------------------------------------------------------------------


def test_keys_are_in_the_file_readable_by_its_owner_only(sandbox: Sandbox, tmp_path: Path) -> None:
    template = load_template("lorawan-meter")
    fill(sandbox, template)
    with client_of(sandbox) as client:
        result = export_site(client, template, tmp_path / "keys.xlsx", tags=[SITE_TAG])
    sheet = openpyxl.load_workbook(tmp_path / "keys.xlsx")["Devices"]
    headers = [c.value for c in sheet[1]]
    assert sheet.cell(2, headers.index("AppKey") + 1).value == APP_KEY  # the template's column
    assert stat.S_IMODE(os.stat(tmp_path / "keys.xlsx").st_mode) == 0o600
    assert any("LoRaWAN keys (AppKey)" in note for note in result.notes)
    assert APP_KEY not in "\n".join(result.lines())


def test_users_tab_without_passwords(sandbox: Sandbox, tmp_path: Path) -> None:
    fill(sandbox, load_template("default"))
    with client_of(sandbox) as client:
        export_site(client, load_template("default"), tmp_path / "site.xlsx", tags=[SITE_TAG])
    workbook = openpyxl.load_workbook(tmp_path / "site.xlsx")
    users = [[c.value for c in row] for row in workbook[USERS_TAB].iter_rows()]
    assert users == [
        ["name", "email", "password", "roles"],
        ["Erika Mustermann", "erika@example.com", None, "org-admin, device-admin"],
    ]
    text = " ".join(str(c.value) for row in workbook["Instructions"].iter_rows() for c in row)
    assert "the password column is empty" in text and "rename the tab to 'Users'" in text
    assert "s0meSecur3Pw" not in (tmp_path / "site.xlsx").read_bytes().decode("latin-1")


def test_a_token_that_may_not_list_users_is_said_and_the_export_goes_on(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    fill(sandbox, load_template("default"))
    with client_of(sandbox, "device-admin") as client:
        result = export_site(client, load_template("default"), tmp_path / "s.xlsx", tags=[SITE_TAG])
    assert result.devices == 4 and result.users is None
    assert "users are not exported: the token may not list users" in "\n".join(result.notes)
    assert USERS_TAB not in openpyxl.load_workbook(tmp_path / "s.xlsx").sheetnames


def test_a_platform_without_a_user_list_is_said_and_the_export_goes_on(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/organisation/user":
            return httpx.Response(404, json={"error": "not found"})
        offset = int(request.url.params.get("offset", "0"))
        devices = [{"id": 1, "addr": "0004A30B00000001", "serial": "SN-1", "tags": ["x"]}]
        return httpx.Response(200, json={"data": devices if offset == 0 else []})

    client = PlatformClient(
        "https://platform.example", "tok-123", transport=httpx.MockTransport(answer)
    )
    with client:
        result = export_site(client, load_template("default"), tmp_path / "s.xlsx", tags=["x"])
    assert result.devices == 1 and result.users is None
    assert "users are not exported: the platform does not list users" in result.notes


# --- paging, the file -------------------------------------------------------------------------


def test_a_large_platform_is_read_in_pages_of_10000(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(seed_devices=25000)
    with client_of(sb) as client:
        result = export_site(
            client, load_template("default"), tmp_path / "all.csv", all_devices=True
        )
    assert result.devices == 25000
    assert result.requests == 4  # 10000, 10000, 5000, and the empty page that ends it
    with (tmp_path / "all.csv").open(encoding="utf-8", newline="") as file:
        assert sum(1 for _ in csv.reader(file)) == 25001


def test_nothing_is_left_half_written(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(sandbox, load_template("default"))
    out = tmp_path / "site.xlsx"
    out.write_bytes(b"the installer's own file")

    def broken(file: Any, *args: Any) -> None:
        file.write(b"PK half a workbook")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_module, "_write_xlsx", broken)
    with client_of(sandbox) as client, pytest.raises(ExportError, match="No space left"):
        export_site(client, load_template("default"), out, tags=[SITE_TAG], force=True)
    assert out.read_bytes() == b"the installer's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.xlsx"]


def test_the_choice_of_devices_and_the_file_are_checked_first(tmp_path: Path) -> None:
    default = load_template("default")
    with pytest.raises(ExportError, match="pass --tag TAG .* or --all"):
        check_export(tmp_path / "a.xlsx", default)
    with pytest.raises(ExportError, match="exclude each other"):
        check_export(tmp_path / "a.xlsx", default, tags=["x"], all_devices=True)
    with pytest.raises(ExportError, match="comma"):
        check_export(tmp_path / "a.xlsx", default, tags=["a,b"])
    with pytest.raises(ExportError, match=r"\*.xlsx or \*.csv"):
        check_export(tmp_path / "a.json", default, all_devices=True)
    with pytest.raises(ExportError, match="does not exist"):
        check_export(tmp_path / "no" / "a.csv", default, all_devices=True)
    (tmp_path / "a.csv").write_text("x", encoding="utf-8")
    with pytest.raises(ExportError, match="--force"):
        check_export(tmp_path / "a.csv", default, all_devices=True)
    assert check_export(tmp_path / "a.csv", default, all_devices=True, force=True) == (
        [],
        "every device on the platform",
    )


# --- the command line, end to end -------------------------------------------------------------


def run_export(
    sb: Sandbox, cwd: Path, *words: str, role: str = "org-admin", token: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")}
    env.update(PROVISIONER_TOKEN=token or sb.tokens[role], PROVISIONER_URL=sb.url)
    return subprocess.run(
        [sys.executable, "-m", "provisioner", "export", *words],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def test_cli_xlsx_then_force(sandbox: Sandbox, tmp_path: Path) -> None:
    fill(sandbox, load_template("lorawan-meter"))
    args = ("--out", "site.xlsx", "--template", "lorawan-meter", "--tag", SITE_TAG)
    done = run_export(sandbox, tmp_path, *args)
    assert done.returncode == 0, explain(done)
    assert (
        f"4 devices (tagged {SITE_TAG}) and 1 user written to site.xlsx in the layout of the "
        "template 'lorawan-meter'"
    ) in done.stdout
    assert "1 device has certEnforcesDtls true; this template has no certEnforcesDtls column" in (
        done.stdout
    )
    assert "reading devices: 4" in done.stderr
    assert APP_KEY not in done.stdout + done.stderr
    sheet = openpyxl.load_workbook(tmp_path / "site.xlsx")["Devices"]
    assert [c.value for c in sheet["A"]][1:] == [f"0004A30B{i:08X}" for i in range(1, 5)]

    again = run_export(sandbox, tmp_path, *args)
    assert again.returncode == 2, explain(again)
    assert "site.xlsx exists already" in again.stderr and "--force" in again.stderr
    assert "Traceback" not in again.stderr

    sandbox.store.insert_devices([{"addr": "0004A30B000000AA", "tags": [SITE_TAG]}])
    forced = run_export(sandbox, tmp_path, *args, "--force")
    assert forced.returncode == 0, explain(forced)
    assert "5 devices" in forced.stdout
    assert openpyxl.load_workbook(tmp_path / "site.xlsx")["Devices"].max_row == 6


def test_cli_csv_names_the_columns_the_template_lacks(sandbox: Sandbox, tmp_path: Path) -> None:
    fill(sandbox, load_template("lobaro-hardware-import"))
    done = run_export(
        sandbox,
        tmp_path,
        "--out",
        "import.csv",
        "--template",
        "lobaro-hardware-import",
        "--tag",
        SITE_TAG,
        role="device-admin",
    )
    assert done.returncode == 0, explain(done)
    assert "3 devices have a location; this template has no lat/lon columns" in done.stdout
    assert "4 devices have tags; this template has no tags column" in done.stdout
    assert "users are not exported to CSV" in done.stdout
    with (tmp_path / "import.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["serial"] for r in rows] == ["SN-0001", "SN-0002", "SN-0003", "SN-0004"]
    assert APP_KEY not in done.stdout + done.stderr


def test_cli_refuses_without_a_choice_of_devices(sandbox: Sandbox, tmp_path: Path) -> None:
    done = run_export(sandbox, tmp_path, "--out", "site.xlsx")
    assert done.returncode == 2, explain(done)
    assert "--tag" in done.stderr and "--all" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "site.xlsx").exists()


def test_cli_a_refused_token_is_exit_3(sandbox: Sandbox, tmp_path: Path) -> None:
    done = run_export(sandbox, tmp_path, "--out", "site.csv", "--all", token="not-a-valid-token")
    assert done.returncode == 3, explain(done)
    assert "cannot be used" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_cli_help_names_the_contract() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "provisioner", "export", "--help"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0
    for option in ("--out", "--template", "--tag", "--all", "--url", "--force"):
        assert option in done.stdout


# --- cells a spreadsheet would run as formulas -----------------------------------------------

FORMULA_NAMES = [
    "=2+3",
    "+49 40 123",
    "-5",
    "@home",
    "\t=2+3",
    " =1",
    "'quoted",
    "'=2+3",  # a quote of the user's own before a formula start
    "normal",
]


def run_cli(sb: Sandbox, cwd: Path, *words: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")}
    env.update(PROVISIONER_TOKEN=sb.tokens["org-admin"], PROVISIONER_URL=sb.url)
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *words],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def formula_site(sb: Sandbox) -> list[dict[str, Any]]:
    sb.store.insert_devices(
        [
            {"addr": f"0004A30B{i:08X}", "serial": f"SN-{i}", "name": name, "tags": ["x"]}
            for i, name in enumerate(FORMULA_NAMES)
        ]
    )
    return sb.store.list_devices(limit=100)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_an_export_applies_back_with_nothing_to_change(
    sandbox: Sandbox, tmp_path: Path, suffix: str
) -> None:
    before = formula_site(sandbox)
    out = f"site{suffix}"
    done = run_cli(sandbox, tmp_path, "export", "--out", out, "--template", "default", "--tag", "x")
    assert done.returncode == 0, explain(done)

    done = run_cli(sandbox, tmp_path, "plan", out, "--template", "default", "--report", "p.json")
    assert done.returncode == 0, explain(done)
    assert "create 0 · exists 9 · differs 0" in done.stdout
    rows = json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))["rows"]
    assert [row["action"] for row in rows] == [RowAction.EXISTS] * len(FORMULA_NAMES)

    done = run_cli(sandbox, tmp_path, "apply", out, "--template", "default", "--update", "--yes")
    assert done.returncode == 0, explain(done)
    assert "nothing to do" in done.stdout
    assert sandbox.store.list_devices(limit=100) == before  # not one device touched


def test_the_csv_export_marks_what_a_spreadsheet_would_run(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    formula_site(sandbox)
    done = run_cli(
        sandbox, tmp_path, "export", "--out", "s.csv", "--template", "default", "--tag", "x"
    )
    assert done.returncode == 0, explain(done)
    with (tmp_path / "s.csv").open(encoding="utf-8", newline="") as file:
        names = [row["name"] for row in csv.DictReader(file)]
    # A name's leading blanks are not kept: the tool compares names without them.
    assert names == [
        "'=2+3",
        "'+49 40 123",
        "-5",
        "'@home",
        "'=2+3",
        "'=1",
        "'quoted",
        "''=2+3",
        "normal",
    ]
    assert "6 values starting with =, +, - or @ are written with a leading '" in done.stdout
    assert "this tool reads them back without it" in done.stdout


def test_the_xlsx_export_holds_no_formula(sandbox: Sandbox, tmp_path: Path) -> None:
    formula_site(sandbox)
    done = run_cli(
        sandbox, tmp_path, "export", "--out", "s.xlsx", "--template", "default", "--tag", "x"
    )
    assert done.returncode == 0, explain(done)
    workbook = openpyxl.load_workbook(tmp_path / "s.xlsx")
    cells = [cell for tab in workbook for row in tab.iter_rows() for cell in row]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    names = workbook["Devices"]["B"][1:]
    assert [c.value for c in names] == [n.strip() for n in FORMULA_NAMES]  # no quote added
    # Excel keeps these text when a cell is edited, and shows no quote.
    assert [bool(c.quotePrefix) for c in names] == [n.strip()[0] in "=+@" for n in FORMULA_NAMES]


def test_the_reports_of_such_a_sheet_are_safe_and_read_back(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    formula_site(sandbox)
    done = run_cli(
        sandbox, tmp_path, "export", "--out", "s.csv", "--template", "default", "--tag", "x"
    )
    assert done.returncode == 0, explain(done)
    words = ("plan", "s.csv", "--template", "default", "--report", "r.csv", "--report", "r.xlsx")
    done = run_cli(sandbox, tmp_path, *words)
    assert done.returncode == 0, explain(done)

    text = (tmp_path / "r.csv").read_text(encoding="utf-8-sig")
    for line in csv.reader(io.StringIO(text, newline=""), delimiter=";"):
        for cell in line:
            # Marked, a ="..." text the tool made, or nothing a spreadsheet runs.
            assert cell.startswith(("'", '="')) or not formula_like(cell), line

    workbook = openpyxl.load_workbook(tmp_path / "r.xlsx")
    cells = [cell for tab in workbook for row in tab.iter_rows() for cell in row]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    # The xlsx report is a copy of the sheet: it plans as the sheet did.
    done = run_cli(sandbox, tmp_path, "plan", "r.xlsx", "--template", "default")
    assert done.returncode == 0, explain(done)
    assert "create 0 · exists 9 · differs 0" in done.stdout
