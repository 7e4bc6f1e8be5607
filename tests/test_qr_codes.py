"""LoRaWAN QR codes (LoRa Alliance TR005) a barcode scanner typed into a DevEUI cell."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import openpyxl
import pytest
from test_identity_e2e import run

from provisioner.fields import DeviceQr, hex_form, normal_addr, qr_checksum, read_qr, shown_qr
from provisioner.records import read_records
from provisioner.sandbox import Sandbox
from provisioner.sheets import open_workbook
from provisioner.templates import load_template

# TR005's own example: every optional element, and the checksum it prints.
TR005_EXAMPLE = (
    "LW:D0:1122334455667788:AABBCCDDEEFF0011:AABB1122:OAABBCCDDEEFF:SYYWWNNNNNN:PFOOBAR:CAF2C"
)
JOIN = "70B3D57ED0000001"
AGAIN = "scan the device's QR code again"


def code(dev: str, *extra: str, checksum: bool = True, join: str = JOIN) -> str:
    """A QR code's text: the elements given, then the checksum TR005 computes."""
    text = ":".join(["LW", "D0", join, dev, "000A0001", *extra])
    return f"{text}:C{qr_checksum(text)}" if checksum else text


# --- reading a code ----------------------------------------------------------------------------


def test_the_checksum_is_crc16_modbus_of_the_text_before_it() -> None:
    assert qr_checksum("123456789") == "4B37"  # CRC-16/MODBUS's check value
    assert qr_checksum(TR005_EXAMPLE[: TR005_EXAMPLE.rindex(":")]) == "AF2C"


def test_tr005s_example_and_a_code_without_optional_elements_read() -> None:
    assert read_qr(TR005_EXAMPLE) == DeviceQr(
        "1122334455667788",
        "AABBCCDDEEFF0011",
        "AABB1122",
        "AABBCCDDEEFF",
        "YYWWNNNNNN",
        ("FOOBAR",),
    )
    assert read_qr(f"lw:d0:{JOIN.lower()}:70b3d5e75e000001:000a0001") == DeviceQr(
        JOIN, "70B3D5E75E000001", "000A0001"
    )
    # The canonical forms: a code is its DevEUI (in the template's case), wherever compared.
    assert hex_form(TR005_EXAMPLE, 16) == "AABBCCDDEEFF0011"
    assert hex_form(TR005_EXAMPLE, 16, "lower") == "aabbccddeeff0011"
    assert normal_addr(TR005_EXAMPLE) == "AABBCCDDEEFF0011"
    broken = TR005_EXAMPLE.replace("CAF2C", "CAF2D")
    assert hex_form(broken, 16) == broken and normal_addr(broken) == broken
    assert shown_qr(TR005_EXAMPLE) == TR005_EXAMPLE.replace("OAABBCCDDEEFF", "O(hidden)")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            TR005_EXAMPLE.replace("CAF2C", "CAF2D"),
            "the checksum AF2D of the LoRaWAN QR code does not match its text (which gives "
            f"AF2C): a character was lost or mistyped; {AGAIN}",
        ),
        (
            TR005_EXAMPLE.replace("SYYWW", "SYYVV"),  # a character the scanner mistyped
            "the checksum AF2C of the LoRaWAN QR code does not match its text (which gives "
            f"3F2C): a character was lost or mistyped; {AGAIN}",
        ),
        (
            f"LW:D1:{JOIN}:70B3D5E75E000001:000A0001",
            "the LoRaWAN QR code is of schema 'D1', not D0 (LW:D0:JoinEUI:DevEUI:ProfileID, the "
            "one LoRa Alliance TR005 defines): type the DevEUI from the device's label",
        ),
        (
            f"LW:D0:{JOIN}:70B3D5E75E000001",
            "the LoRaWAN QR code has 4 of the 5 elements it starts with (LW:D0:JoinEUI:DevEUI:"
            f"ProfileID): part of it is missing; {AGAIN}",
        ),
        (
            f"LW:D0:{JOIN}:70B3D5E75EOOOOO1:000A0001",
            "the DevEUI '70B3D5E75EOOOOO1' of the LoRaWAN QR code is not 16 hex digits "
            f"(LW:D0:JoinEUI:DevEUI:ProfileID): {AGAIN}",
        ),
        (
            f"LW:D0:{JOIN}:70B3D5E75E000001:0A0001",
            "the ProfileID '0A0001' of the LoRaWAN QR code is not 8 hex digits "
            f"(LW:D0:JoinEUI:DevEUI:ProfileID): {AGAIN}",
        ),
        (
            f"LW:D0:{JOIN}:70B3D5E75E000001:000A0001:X12",
            "an element of the LoRaWAN QR code after the ProfileID starts with 'X', not with O "
            f"(owner token), S (serial number), P (proprietary) or C (checksum): {AGAIN}",
        ),
        (
            f"LW:D0:{JOIN}:70B3D5E75E000001:000A0001::S1",
            f"the LoRaWAN QR code has an empty element ('::'): {AGAIN}",
        ),
        (
            f"LW:D0:{JOIN}:70B3D5E75E000001:000A0001:C1234:S1",
            f"the checksum is not the last element of the LoRaWAN QR code: {AGAIN}",
        ),
        (
            f"LW:D0:{JOIN}:70B3D5E75E000001:000A0001:S1:S2",
            f"the LoRaWAN QR code holds its serial number twice: {AGAIN}",
        ),
    ],
)
def test_a_code_that_does_not_read_says_what_is_wrong(text: str, message: str) -> None:
    assert read_qr(text) == message


# --- a sheet of codes --------------------------------------------------------------------------


def sheet(path: Path, rows: list[list[str]], **tabs: list[list[str]]) -> Path:
    book = openpyxl.Workbook()
    devices = book.active
    assert devices is not None
    devices.title = "Devices"
    for row in rows:
        devices.append(row)
    for title, tab_rows in tabs.items():
        tab = book.create_sheet(title)
        for row in tab_rows:
            tab.append(row)
    book.save(path)
    return path


KEYS = [
    ["DevEUI", "JoinEUI", "AppKey", "serial"],
    # Every optional element: the JoinEUI and serial fill the empty cells.
    [code("70B3D5E75E000001", "OSECRET42", "SSN-0001", "PX"), "", "1" * 32, ""],
    # No optional element, no checksum: the row's own JoinEUI and serial stay.
    [code("70b3d5e75e000002", checksum=False), "70B3D57ED0000099", "2" * 32, "OWN-2"],
    ["70B3D5E75E000003", JOIN, "3" * 32, ""],  # typed, not scanned
    [code("70B3D5E75E000004", "OSECRET42", "SSN-4").replace("SSN-4", "SSN-5"), "", "4" * 32, ""],
    [f"LW:D1:{JOIN}:70B3D5E75E000005:000A0001", "", "5" * 32, ""],
]


def test_a_sheet_of_codes_reads_each_deveui_and_fills_what_the_row_lacks(tmp_path: Path) -> None:
    path = sheet(
        tmp_path / "keys.xlsx",
        KEYS,
        Downlinks=[
            ["key", "type", "payload"],
            [code("70B3D5E75E000001"), "config", '{"d": {"listenCron": "0 0 * * * *"}}'],
        ],
    )
    template = load_template("lorawan-meter")
    site = read_records(open_workbook(path), template)
    slow = read_records(open_workbook(path), template, cell_by_cell=True)
    assert [asdict(r) for r in site.devices] == [asdict(r) for r in slow.devices]
    assert sorted(map(str, site.problems)) == sorted(map(str, slow.problems))

    first, second, typed, bad_sum, bad_schema = site.devices
    assert first.body["addr"] == "70B3D5E75E000001" and first.key == "70B3D5E75E000001"
    assert first.body["serial"] == "SN-0001"
    assert first.body["initialConfig"] == {"AppKey": "1" * 32, "JoinEUI": JOIN}
    assert first.valid and "initialConfig" not in first.defaulted
    assert second.body["addr"] == "70B3D5E75E000002"
    assert second.body["serial"] == "OWN-2"
    assert second.body["initialConfig"] == {"JoinEUI": "70B3D57ED0000099", "AppKey": "2" * 32}
    assert typed.body["addr"] == "70B3D5E75E000003" and "serial" not in typed.body
    assert not bad_sum.valid and not bad_schema.valid
    assert site.downlinks[0].key == "70B3D5E75E000001"

    found = {(p.code, p.sheet, p.column, p.row): p for p in site.problems}
    assert set(found) == {
        ("id-read-from-qr-code", "Devices", "A", 1),
        ("qr-code-unreadable", "Devices", "A", 5),
        ("qr-code-unreadable", "Devices", "A", 6),
        ("id-read-from-qr-code", "Downlinks", "A", 1),
    }  # no downlink-device-not-in-sheet, no missing key: the code is the DevEUI
    assert found[("id-read-from-qr-code", "Devices", "A", 1)].message == (
        "2 cells of DevEUI hold a scanned LoRaWAN QR code, read as its DevEUI; its JoinEUI "
        "(cfg:JoinEUI) and serial number fill the rows that have none of their own "
        "(first: A2, DevEUI 70B3D5E75E000001)"
    )
    assert found[("id-read-from-qr-code", "Downlinks", "A", 1)].message == (
        "1 cell of key holds a scanned LoRaWAN QR code, read as its DevEUI "
        "(first: A2, DevEUI 70B3D5E75E000001)"
    )
    wrong = found[("qr-code-unreadable", "Devices", "A", 5)]
    assert wrong.message.startswith("the checksum ") and "does not match its text" in wrong.message
    assert wrong.value is not None and ":O(hidden):" in wrong.value
    assert all("SECRET42" not in str(p) + str(p.value) for p in site.problems)
    assert "schema 'D1'" in found[("qr-code-unreadable", "Devices", "A", 6)].message


def test_the_profile_id_fills_a_profile_column_the_template_has(tmp_path: Path) -> None:
    template_path = tmp_path / "site.toml"
    template_path.write_text(
        'match_key = "serial"\nhex_case = "lower"\n'
        "[devices.columns]\n"
        'addr = "DevEUI"\nserial = "serial"\n"cfg:AppEUI" = "AppEUI"\n'
        '"cfg:ProfileID" = "Profile"\n',
        encoding="utf-8",
    )
    path = sheet(
        tmp_path / "site.xlsx",
        [
            ["DevEUI", "serial", "Profile"],
            [code("70B3D5E75E00000A", "SSN-A"), "", ""],
            [code("70B3D5E75E00000B", "SSN-B"), "", "FFFF0001"],
        ],
    )
    site = read_records(open_workbook(path), load_template(str(template_path)))
    a, b = site.devices
    assert (a.key, a.body["addr"]) == ("SN-A", "70b3d5e75e00000a")  # the serial from the code
    assert a.body["initialConfig"] == {"AppEUI": JOIN.lower(), "ProfileID": "000A0001"}
    assert b.body["initialConfig"] == {"ProfileID": "FFFF0001", "AppEUI": JOIN.lower()}
    (notice,) = site.problems
    assert "its JoinEUI (cfg:AppEUI), serial number and profile ID (cfg:ProfileID) fill" in (
        notice.message
    )


def test_apply_creates_the_devices_a_scanner_typed(sandbox: Sandbox, tmp_path: Path) -> None:
    """End to end: the platform gets the DevEUI as addr, the code's serial and JoinEUI."""
    path = sheet(tmp_path / "scanned.xlsx", KEYS[:3])
    done = run("apply", path, sandbox)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 cells of DevEUI hold a scanned LoRaWAN QR code" in done.stdout
    devices = {d["addr"]: d for d in sandbox.store.list_devices(limit=100)}
    assert sorted(devices) == ["70B3D5E75E000001", "70B3D5E75E000002"]
    first = devices["70B3D5E75E000001"]
    assert first["serial"] == "SN-0001"
    assert first["initialConfig"] == {"AppKey": "1" * 32, "JoinEUI": JOIN}
    assert devices["70B3D5E75E000002"]["serial"] == "OWN-2"
