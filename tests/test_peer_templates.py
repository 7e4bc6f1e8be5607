"""Device lists from The Things Stack, ChirpStack and ThingPark, read as they are.

The fixture files are written here from the columns each peer documents (named at each
list), in the variants their users meet: `;` and `,`, a BOM, extra and unknown columns,
aliases, a missing id, TTS's Excel template. The templates are picked by the headers
(no --template); each peer's keys go where its documents say; what the Lobaro platform
has no place for is said once, and what it cannot take (an ABP session) is an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner, Result

from provisioner.cli import main
from provisioner.errors import ExportError
from provisioner.export import check_export
from provisioner.records import SiteRecords, read_records
from provisioner.sandbox import Sandbox
from provisioner.sheets import open_workbook
from provisioner.template_choice import choose_template
from provisioner.templates import TemplateError, load_template
from provisioner.validation import ValidationReport, validate_sheet

# The Things Stack, CSV File Reference ("Adding devices in bulk"): the columns in the order
# of its table; the session columns are those "for existing session".
TTS_COLUMNS = (
    "dev_eui",
    "join_eui",
    "id",
    "name",
    "description",
    "lorawan_version",
    "lorawan_phy_version",
    "frequency_plan_id",
    "brand_id",
    "model_id",
    "firmware_version",
    "hardware_version",
    "band_id",
    "supports_class_c",
    "app_key",
    "nwk_key",
    "rx1_delay",
    "supports_32_bit_f_cnt",
    "dev_addr",
    "app_s_key",
    "f_nwk_s_int_key",
    "last_f_cnt_up",
    "last_n_f_cnt_down",
    "last_a_f_cnt_down",
)
TTS_NOT_SENT = (
    "lorawan_version",
    "lorawan_phy_version",
    "frequency_plan_id",
    "brand_id",
    "model_id",
    "firmware_version",
    "hardware_version",
    "band_id",
    "supports_class_c",
    "rx1_delay",
    "supports_32_bit_f_cnt",
)
TTS_SESSION = (
    "dev_addr",
    "app_s_key",
    "f_nwk_s_int_key",
    "last_f_cnt_up",
    "last_n_f_cnt_down",
    "last_a_f_cnt_down",
)
# ChirpStack: the community CSVs' headers (peer-formats.md) and the v4 API's field names
# (Device: dev_eui, name, description, application_id, device_profile_id, skip_fcnt_check,
# is_disabled, tags, join_eui; DeviceKeys: nwk_key, app_key).
CHIRPSTACK_SNAKE = (
    "dev_eui",
    "name",
    "application_id",
    "device_profile_id",
    "nwk_key",
    "app_key",
    "description",
)
CHIRPSTACK_TITLED = (
    "DevEUI",
    "Name",
    "Application ID",
    "Device Profile ID",
    "NwkKey",
    "AppKey",
    "Description",
    "Tags",
)
CHIRPSTACK_V4 = (
    "dev_eui",
    "join_eui",
    "name",
    "description",
    "application_id",
    "device_profile_id",
    "skip_fcnt_check",
    "is_disabled",
    "tags",
    "nwk_key",
    "app_key",
)
# ThingPark, DX API provisioning examples.
THINGPARK = (
    "name",
    "EUI",
    "activationType",
    "deviceProfileId",
    "connectivityPlanId",
    "routingProfileId",
    "applicationEUI",
    "applicationKey",
)

JOIN_EUI = "70B3D57ED0000000"
KEY_A = "2B7E151628AED2A6ABF7158809CF4F3C"
KEY_B = "000102030405060708090A0B0C0D0E0F"
ZEROS = "0" * 32


def dev_eui(n: int) -> str:
    return f"70B3D57ED00000{n:02X}"


def write_csv(
    path: Path,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, str]],
    *,
    sep: str = ",",
    bom: bool = False,
) -> Path:
    """A CSV with ``columns`` as its header and each row's values under theirs."""
    lines = [sep.join(columns)] + [sep.join(row.get(c, "") for c in columns) for row in rows]
    path.write_text(("\ufeff" if bom else "") + "\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


def write_xlsx(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "end devices"
    sheet.append(list(columns))
    for row in rows:
        sheet.append([row.get(c) or None for c in columns])
    workbook.save(path)
    return path


def tts_row(n: int, **more: str) -> dict[str, str]:
    return {
        "dev_eui": dev_eui(n),
        "join_eui": JOIN_EUI,
        "app_key": KEY_A,
        "frequency_plan_id": "EU_863_870_TTN",
        "lorawan_version": "MAC_V1_0_4",
        "lorawan_phy_version": "RP002_V1_0_3",
        **more,
    }


def records_of(path: Path, template: str | None = None) -> tuple[str, SiteRecords]:
    """The template the headers pick (or the one named), and the records it reads; the
    cell-by-cell reading gives the same."""
    chosen = choose_template(path, template).template
    fast = read_records(open_workbook(path), chosen)
    slow = read_records(open_workbook(path), chosen, cell_by_cell=True)
    assert [asdict(r) for r in fast.devices] == [asdict(r) for r in slow.devices]
    assert sorted(map(str, fast.problems)) == sorted(map(str, slow.problems))
    return chosen.name, fast


def report_of(path: Path, template: str) -> ValidationReport:
    return validate_sheet(path, load_template(template))


def codes(report: ValidationReport) -> list[str]:
    return sorted(p.code for p in report.errors + report.warnings)


def not_sent_line(report: ValidationReport) -> str:
    [line] = [p.message for p in report.problems if p.code == "columns-not-sent"]
    return line


# --- The Things Stack ----------------------------------------------------------------------------

TTS_VARIANTS = {
    # The documentation's minimal example: `;`, the fallback settings as columns.
    "minimal": (
        ("dev_eui", "join_eui", "frequency_plan_id", "lorawan_version", "lorawan_phy_version")
        + ("app_key",),
        {"sep": ";"},
    ),
    "comma and BOM": (("id", "dev_eui", "join_eui", "name", "app_key"), {"bom": True}),
    # Every column TTS reads, the session ones empty (its Excel template has them all).
    "every column": (TTS_COLUMNS, {"sep": ";"}),
    # TTS permits columns it does not know: not sent, said so, and the file is still TTS's.
    # (its signature, dev_eui first, behind a BOM)
    "unknown column": (
        ("dev_eui", "id", "join_eui", "app_key", "nwk_key", "Notiz"),
        {"sep": ";", "bom": True},
    ),
    "app_eui alias, no id": (("dev_eui", "app_eui", "name", "app_key"), {"sep": ";"}),
}


@pytest.mark.parametrize("variant", list(TTS_VARIANTS))
def test_a_tts_csv_is_read_as_tts_without_template(tmp_path: Path, variant: str) -> None:
    columns, how = TTS_VARIANTS[variant]
    rows = [
        tts_row(1, id="meter-hh-01", name="Zähler 1", nwk_key=KEY_B),
        tts_row(2, name="Zähler 2"),
    ]
    if "app_eui" in columns:  # TTS's alias of join_eui
        rows = [{**row, "app_eui": row["join_eui"]} for row in rows]
    path = write_csv(tmp_path / "tts.csv", columns, rows, **how)  # type: ignore[arg-type]
    name, site = records_of(path)
    assert name == "tts"
    first, second = (r.body for r in site.devices)
    assert first["addr"] == dev_eui(1) and second["addr"] == dev_eui(2)
    config = {"JoinEUI": JOIN_EUI, "AppKey": KEY_A}
    if "nwk_key" in columns:
        config["NwkKey"] = KEY_B  # LoRaWAN 1.1's network root key, not dropped
    assert first["initialConfig"] == config
    # TTS's id is the serial; without one, the id TTS makes: eui- and the DevEUI in lower case.
    assert first["serial"] == ("meter-hh-01" if "id" in columns else "eui-70b3d57ed0000001")
    assert second["serial"] == "eui-70b3d57ed0000002"
    assert first["deviceTypeId"] == 4 and ("name" not in columns or first["name"] == "Zähler 1")

    report = report_of(path, "tts")
    assert report.ok, [p.message for p in report.errors]
    unsent = [c for c in columns if c in TTS_NOT_SENT or c in TTS_SESSION]
    expected = ["columns-not-sent"] if unsent else []
    if "Notiz" in columns:
        expected.append("unknown-column")
    assert codes(report) == expected, [p.message for p in report.warnings]
    if unsent:  # one line for the file, each column once, by its letter
        line = not_sent_line(report)
        assert line.startswith("not sent: the Lobaro platform has no place for them: ")
        for column in unsent:
            assert line.count(f"{column} (") == 1, line


def test_tts_excel_template_is_read_as_tts(tmp_path: Path) -> None:
    rows = [tts_row(n, id=f"dev-{n}", nwk_key=KEY_B) for n in range(1, 4)]
    path = write_xlsx(tmp_path / "tts-end-devices.xlsx", TTS_COLUMNS, rows)
    name, site = records_of(path)
    assert name == "tts"
    assert [r.body["serial"] for r in site.devices] == ["dev-1", "dev-2", "dev-3"]
    assert all(r.body["initialConfig"]["NwkKey"] == KEY_B for r in site.devices)
    assert codes(report_of(path, "tts")) == ["columns-not-sent"]


def test_a_tts_session_is_refused_and_its_keys_shown_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    session_key = "5C0FFEE5C0FFEE5C0FFEE5C0FFEE5C0F"
    rows = [
        tts_row(1, dev_addr="26011F00", app_s_key=session_key, last_f_cnt_up="17"),
        tts_row(2),
    ]
    path = write_csv(tmp_path / "abp.csv", TTS_COLUMNS, rows, sep=";")
    report_path = tmp_path / "abp.report.json"
    done = CliRunner().invoke(
        main, ["validate", str(path), "--report", str(report_path)], env=_no_settings()
    )
    assert done.exit_code == 1, done.output
    assert done.output.splitlines()[0].startswith("template tts: fits the headers")
    assert "2 rows: 1 valid, 1 invalid" in done.output
    for header in ("dev_addr", "app_s_key", "last_f_cnt_up"):
        assert f"{header} is filled: an ABP device or a running session is not moved" in (
            done.output
        )
    assert "OTAA devices only" in done.output
    report = report_path.read_text(encoding="utf-8")
    assert session_key not in done.output and session_key not in report
    assert KEY_A not in done.output and KEY_A not in report


# --- ChirpStack ------------------------------------------------------------------------------------


def test_chirpstack_community_csvs_are_read_as_chirpstack(tmp_path: Path) -> None:
    rows = [
        {"dev_eui": dev_eui(1).lower(), "name": "m1", "nwk_key": KEY_A.lower()},
        # ChirpStack's API answers an unset key as zeros: a 1.0.x device's app_key.
        {"dev_eui": dev_eui(2).lower(), "nwk_key": KEY_B, "app_key": ZEROS},
    ]
    snake = write_csv(tmp_path / "snake.csv", CHIRPSTACK_SNAKE, rows)
    titled = write_csv(
        tmp_path / "titled.csv",
        CHIRPSTACK_TITLED,
        [
            {"DevEUI": dev_eui(1), "NwkKey": KEY_A, "Tags": "floor:3|unit:12"},
            {"DevEUI": dev_eui(2), "NwkKey": KEY_B, "AppKey": ZEROS, "Name": "m2"},
        ],
    )
    for path in (snake, titled):
        name, site = records_of(path)
        assert name == "chirpstack"
        # A LoRaWAN 1.0.x device: ChirpStack's nwk_key is its AppKey.
        assert [r.body["initialConfig"] for r in site.devices] == [
            {"AppKey": KEY_A},
            {"AppKey": KEY_B},
        ]
        assert [r.body["addr"] for r in site.devices] == [dev_eui(1), dev_eui(2)]
        report = report_of(path, "chirpstack")
        assert report.ok, [p.message for p in report.errors]
        line = not_sent_line(report)
        assert "application_id (C), device_profile_id (D)" in line or (
            "Application ID (C), Device Profile ID (D)" in line
        )
    assert site.devices[0].body["tags"] == ["floor:3", "unit:12"]


# (nwk_key, app_key, mac_version) -> the initialConfig keys, or the problem's code.
CHIRPSTACK_KEYS = {
    "1.0.x: nwk_key alone": ((KEY_A, "", ""), {"AppKey": KEY_A}),
    "1.0.x: app_key zeros": ((KEY_A, ZEROS, ""), {"AppKey": KEY_A}),
    "1.0.x said, keys alike": ((KEY_A, KEY_A, "LORAWAN_1_0_3"), {"AppKey": KEY_A}),
    "1.1.x said": ((KEY_A, KEY_B, "1.1.0"), {"AppKey": KEY_B, "NwkKey": KEY_A}),
    "both, no version": ((KEY_A, KEY_B, ""), "keys-unclear"),
    "both alike, no version": ((KEY_A, KEY_A, ""), "keys-unclear"),
    "1.0.x said, another app_key": ((KEY_A, KEY_B, "1.0.2"), "keys-unclear"),
    "app_key alone": (("", KEY_B, ""), "keys-unclear"),
    "not a version": ((KEY_A, "", "2.0"), "not-a-lorawan-version"),
}


def test_chirpstack_keys_follow_its_api_and_an_unclear_row_is_an_error(tmp_path: Path) -> None:
    columns = (*CHIRPSTACK_V4, "mac_version")
    cases = list(CHIRPSTACK_KEYS.items())
    rows = [
        {
            "dev_eui": dev_eui(n),
            "join_eui": JOIN_EUI,
            "nwk_key": nwk,
            "app_key": app,
            "mac_version": version,
            "skip_fcnt_check": "false",
            "is_disabled": "false",
            "application_id": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
        }
        for n, (_, ((nwk, app, version), _)) in enumerate(cases)
    ]
    path = write_csv(tmp_path / "v4.csv", columns, rows)
    name, site = records_of(path)
    assert name == "chirpstack"
    report = report_of(path, "chirpstack")
    for record, (case, (_, expected)) in zip(site.devices, cases, strict=True):
        found = [p for p in report.errors if p.row == record.row]
        if isinstance(expected, dict):
            assert not found, (case, [p.message for p in found])
            assert record.body["initialConfig"] == {"JoinEUI": JOIN_EUI, **expected}, case
        else:
            assert [p.code for p in found] == [expected], case
            assert KEY_A not in found[0].message and KEY_B not in found[0].message
    unclear = next(p for p in report.errors if p.code == "keys-unclear")
    assert "ChirpStack keeps a 1.0.x device's AppKey in nwk_key" in unclear.message
    assert "fill its mac_version cell" in unclear.message
    line = not_sent_line(report)
    for column in ("application_id", "skip_fcnt_check", "is_disabled", "mac_version"):
        assert f"{column} (" in line


def test_older_chirpstack_tools_single_appkey(tmp_path: Path) -> None:
    rows = [{"name": "m1", "description": "Keller", "deveui": dev_eui(1), "appkey": KEY_A}]
    path = write_csv(tmp_path / "old.csv", ("name", "description", "deveui", "appkey"), rows)
    # Lobaro's own key-list layout reads it whole, with the same meaning.
    name, site = records_of(path)
    assert name == "lorawan-meter"
    assert site.devices[0].body["initialConfig"] == {"AppKey": KEY_A}
    # One key column and no nwk_key: it is the AppKey with ChirpStack's template too.
    _, site = records_of(path, "chirpstack")
    assert site.devices[0].body["initialConfig"] == {"AppKey": KEY_A}


# --- ThingPark ----------------------------------------------------------------------------------


def test_thingpark_csv_otaa_is_read_and_abp_refused(tmp_path: Path) -> None:
    def row(n: int, activation: str) -> dict[str, str]:
        return {
            "name": f"tp-{n}",
            "EUI": dev_eui(n),
            "activationType": activation,
            "deviceProfileId": "LORA/GenericA.1_ETSI_Rx2-SF12",
            "connectivityPlanId": "dev1-cs/test-cp",
            "routingProfileId": "TWA_100000000.1",
            "applicationEUI": JOIN_EUI,
            "applicationKey": KEY_A if activation == "OTAA" else "",
        }

    rows = [row(1, "OTAA"), row(2, "otaa"), row(3, "ABP"), row(4, "ABP")]
    path = write_csv(tmp_path / "thingpark.csv", (*THINGPARK, "Bemerkung"), rows)
    name, site = records_of(path)
    assert name == "thingpark"  # its signature, though Bemerkung is none of its columns
    assert site.devices[0].body == {
        "addr": dev_eui(1),
        "name": "tp-1",
        "initialConfig": {"JoinEUI": JOIN_EUI, "AppKey": KEY_A},
        "deviceTypeId": 4,
    }
    report = report_of(path, "thingpark")
    refused = [p for p in report.errors if p.code == "cell-refused"]
    assert [(p.row, p.cell, p.value) for p in refused] == [(4, "C4", "ABP"), (5, "C5", "ABP")]
    assert "only OTAA devices are moved" in refused[0].message
    assert report.totals == {"valid": 2, "invalid": 2}
    line = not_sent_line(report)
    assert "deviceProfileId (D), connectivityPlanId (E), routingProfileId (F)" in line


# --- the choice, and what existing sheets still get --------------------------------------------


@pytest.mark.parametrize(
    ("header", "line"),
    [
        ("DevEUI,JoinEUI,AppKey", "template lorawan-meter: fits the headers"),
        ("DevEUI,JoinEUI,AppKey,name,description,tags", "template lorawan-meter: fits"),
        ("addr,serial,name", "template default: fits the headers"),
        ("Seriennummer,IMEI,Bezeichnung", "template wmbus-gateway-nbiot: fits the headers"),
        ("dev_eui;join_eui;app_key", "template tts: fits the headers"),
        # nwk_key means the AppKey to ChirpStack (1.0.x) and the NwkKey to TTS: asked.
        ("dev_eui;join_eui;app_key;nwk_key", "the headers fit 'chirpstack' and 'tts' alike"),
        ("dev_eui,name,nwk_key,Notiz", "template chirpstack: ChirpStack's own headers"),
        ("id;dev_eui;join_eui;app_key;nwk_key;Notiz", "template tts: The Things Stack's own"),
        ("dev_eui;join_eui;app_key;nwk_key;Notiz", "fit 'chirpstack' and 'tts' alike"),
        ("DevEUI,name,Farbe", "these headers fit the template 'lorawan-meter' best"),
    ],
)
def test_the_headers_pick_a_peer_only_where_its_file_is_meant(
    tmp_path: Path, header: str, line: str
) -> None:
    path = tmp_path / "sheet.csv"
    path.write_text(header + "\n", encoding="utf-8")
    assert line in choose_template(path).line


# --- against the sandbox, as a user runs it ------------------------------------------------------


def _no_settings(**more: str) -> dict[str, str | None]:
    return {"PROVISIONER_TEMPLATE": None, "PROVISIONER_CONFIG": None, **more}


def run(sandbox: Sandbox, *words: str) -> Result:
    env = _no_settings(PROVISIONER_URL=sandbox.url, PROVISIONER_TOKEN=sandbox.tokens["org-admin"])
    return CliRunner().invoke(main, list(words), env=env)


def test_validate_plan_and_apply_without_template_against_the_sandbox(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no provisioner.toml of the repository's
    files = {
        "tts": write_csv(
            tmp_path / "tts.csv",
            ("id", "dev_eui", "join_eui", "lorawan_version", "app_key", "nwk_key"),
            [tts_row(1, id="a-1", nwk_key=KEY_B)],
            sep=";",
        ),
        "chirpstack": write_csv(
            tmp_path / "chirpstack.csv",
            CHIRPSTACK_SNAKE,
            [{"dev_eui": dev_eui(2).lower(), "name": "cs-2", "nwk_key": KEY_A, "app_key": ZEROS}],
        ),
        "thingpark": write_csv(
            tmp_path / "thingpark.csv",
            THINGPARK,
            [
                {
                    "name": "tp-3",
                    "EUI": dev_eui(3),
                    "activationType": "OTAA",
                    "applicationKey": KEY_A,
                }
            ],
        ),
    }
    for name, path in files.items():
        for command in ("validate", "plan"):
            done = run(sandbox, command, str(path))
            assert done.exit_code == 0, done.output
            assert done.output.startswith(f"template {name}: fits the headers"), done.output
            assert KEY_A not in done.output and KEY_B not in done.output
        assert "create 1 · exists 0" in done.output
    done = run(sandbox, "apply", str(files["chirpstack"]), "--yes")
    assert done.exit_code == 0, done.output
    [device] = sandbox.store.list_devices(limit=10)
    # The ChirpStack 1.0.x row's nwk_key is what the platform gets as the AppKey.
    assert device["addr"] == dev_eui(2) and device["name"] == "cs-2"
    assert device["initialConfig"] == {"AppKey": KEY_A}
    assert device["deviceTypeId"] == 4


def test_peer_templates_are_listed_with_their_sources_and_never_written(tmp_path: Path) -> None:
    listed = CliRunner().invoke(main, ["templates"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    for name, peer in (("tts", "The Things Stack"), ("chirpstack", "ChirpStack")):
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{name} "))
        assert lines[at + 1].strip().startswith(f"from {peer}: ")
    assert "CSV File Reference" in listed.output and "ttscsv.go" in listed.output
    assert "DX API" in listed.output

    headers = CliRunner().invoke(main, ["template", "tts"])
    assert "without serial: eui-{addr:lower}" in headers.output
    assert "refused when filled: dev_addr, app_s_key" in headers.output

    blank = CliRunner().invoke(main, ["template", "tts", "--out", str(tmp_path / "b.xlsx")])
    assert blank.exit_code == 2 and "Lobaro's own layouts" in blank.output
    assert not (tmp_path / "b.xlsx").exists()
    with pytest.raises(ExportError, match="reads The Things Stack's device files as they are"):
        check_export(tmp_path / "e.xlsx", load_template("tts"), all_devices=True)


# --- the template keys behind them ------------------------------------------------------------

BASE = '[devices.columns]\naddr = ["dev_eui"]\nserial = ["id"]\n"cfg:AppKey" = ["app_key"]\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "[devices]\nnot_sent = ['id']\n", "is both 'serial' and not sent"),
        (BASE + "[[devices.refuse]]\nheaders = ['x']\n", "needs a reason"),
        (BASE + "[[devices.refuse]]\nheaders = ['x']\nreason = 'r'\nallow = '(?=a)'\n", "allow"),
        (BASE + "[devices.root_keys]\napp_key_1_0 = 'cfg:NwkKey'\n", "must name the key column"),
        (BASE + "[devices.derived]\nserial = 'eui-{dev_eui}'\n", "{field:lower}"),
        (BASE + "[devices.derived]\naddr = '{serial}'\n", "a derived field is one of"),
        (BASE + "[peer]\ndocs = ['x']\n", "needs a name"),
        (BASE + "[peer]\nname = 'X'\nsignature = 'dev_eui'\n", "must be a list"),
    ],
)
def test_peer_keys_of_a_template_are_checked_when_it_loads(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        load_template(str(path))
    assert message in str(info.value), str(info.value)
