"""One identity per identifier: the catalogue's canonical forms (property tests), and
the sheet's ordinary ways of writing them read alike by the fast and per-row intake."""

from __future__ import annotations

from pathlib import Path

import openpyxl
from hypothesis import given
from hypothesis import strategies as st

from provisioner.fields import hex_digits, hex_form, lookalike_letters, normal_addr, normal_key
from provisioner.records import read_records
from provisioner.sheets import open_workbook
from provisioner.templates import load_template

HEX_DIGITS = "0123456789ABCDEF"
euis = st.text(HEX_DIGITS, min_size=16, max_size=16)
separators = st.sampled_from(["", "-", ":", " "])


def label_spellings(eui: str) -> st.SearchStrategy[str]:
    """Ways a person or a label writes one DevEUI: any case per letter, groups of 2 or 4
    with one separator, spaces around."""

    @st.composite
    def spelled(draw: st.DrawFn) -> str:
        cased = "".join(c.lower() if draw(st.booleans()) else c for c in eui)
        size = draw(st.sampled_from([2, 4, 8, 16]))
        separator = draw(separators)
        groups = [cased[i : i + size] for i in range(0, 16, size)]
        padding = draw(st.sampled_from(["", " ", "\u00a0"]))
        return padding + separator.join(groups) + padding

    return spelled()


@given(st.data(), euis)
def test_every_spelling_of_a_deveui_is_one_key(data: st.DataObject, eui: str) -> None:
    spelling = data.draw(label_spellings(eui))
    assert normal_addr(spelling) == eui
    assert normal_key("addr", spelling) == normal_key("addr", eui.lower())
    assert hex_form(spelling.strip(), 16) == eui
    assert hex_form(spelling.strip(), 16, "lower") == eui.lower()


@given(st.data(), euis, euis)
def test_distinct_deveuis_never_collide(data: st.DataObject, one: str, other: str) -> None:
    a, b = data.draw(label_spellings(one)), data.draw(label_spellings(other))
    assert (normal_addr(a) == normal_addr(b)) == (one == other)


@given(st.integers(min_value=0, max_value=10**15 - 1))
def test_a_serial_typed_as_a_number_is_its_digits(number: int) -> None:
    assert normal_key("serial", str(number)) == str(number)


def test_label_forms_that_are_not_one_identifier_are_left_alone() -> None:
    assert hex_digits("70-B3-D5-E7-5E-00-50", 16) is None  # 14 digits
    assert hex_digits("70--B3D5E75E005001", 16) is None  # two separators in a row
    assert hex_digits("-70B3D5E75E005001", 16) is None
    assert normal_addr("las-70B3D5E75E00") == "las-70B3D5E75E00"
    assert normal_addr("352656100123456") == "352656100123456"


def test_lookalike_letters_are_pointed_at() -> None:
    assert lookalike_letters("70B3D5E75EOO5001", 16) == [(11, "O"), (12, "O")]
    assert lookalike_letters("70-B3-D5-E7-5E-00-5l-01", 16) == [(20, "l")]
    assert lookalike_letters("70B3D5E75EXX5001", 16) == []  # X looks like no digit


# --- the sheet: fast and per-row intake alike --------------------------------------------------


def test_fast_and_per_row_intake_read_every_spelling_alike(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Devices"
    sheet.append(["DevEUI", "serial", "JoinEUI", "AppKey", "name"])
    rows = [
        [
            "70b3d5e75e005000",
            20240001,
            "70-B3-D5-7E-D0-00-00-01",
            "00112233445566778899aabbccddeeff",
        ],
        [
            "70-B3-D5-E7-5E-00-50-01",
            "SN-2",
            "70B3D57ED0000001",
            "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF",
        ],
        ["70:b3:d5:e7:5e:00:50:02", 42, "70b3d57ed0000001", "00112233445566778899AABBCCDDEEFF"],
        ["70 B3 D5 E7 5E 00 50 03", 1337.5, "70B3D57ED0000001", "00112233445566778899AABBCCDDEEFF"],
        ["70B3D5E75EOO5004", "SN-5", "70B3D57ED0000001", "00112233445566778899AABBCCDDEEFF"],
    ]
    for i, row in enumerate(rows):
        sheet.append([*row, f"Zähler {i}"])
    path = tmp_path / "site.xlsx"
    workbook.save(path)
    template = load_template("lorawan-meter")
    fast = read_records(open_workbook(path), template)
    slow = read_records(open_workbook(path), template, cell_by_cell=True)
    assert [(r.key, r.body, r.valid) for r in fast.devices] == [
        (r.key, r.body, r.valid) for r in slow.devices
    ]
    assert sorted(p.to_dict().items() for p in fast.problems) == sorted(
        p.to_dict().items() for p in slow.problems
    )
    keys = [r.key for r in fast.devices]
    assert keys[:4] == [f"70B3D5E75E00500{i}" for i in range(4)]
    config = fast.devices[0].body["initialConfig"]
    assert config == {"JoinEUI": "70B3D57ED0000001", "AppKey": "00112233445566778899AABBCCDDEEFF"}
    assert fast.devices[1].body["initialConfig"]["AppKey"] == "00112233445566778899AABBCCDDEEFF"
    assert fast.devices[0].body["serial"] == "20240001"
    codes = [p.code for p in fast.problems]
    # One notice a column: DevEUI, JoinEUI, AppKey written otherwise; serial as numbers.
    assert codes.count("id-read-in-one-form") == 3
    assert codes.count("id-number-read-as-digits") == 1
    by_code = {p.code: p for p in fast.problems if p.column == "A"}
    assert by_code["id-read-in-one-form"].message.startswith("4 cells of DevEUI written with '-'")
    secret = next(p for p in fast.problems if p.column == "D")
    assert "0011" not in secret.message and "first:" not in secret.message
    bad = [p for p in fast.problems if p.severity == "error"]
    assert [(p.cell, p.code) for p in bad] == [("B5", "id-stored-as-number"), ("A6", "id-format")]
    assert (
        "'O' at character 11 and 'O' at character 12 should be the digits 0 and 0" in bad[1].message
    )


# --- from a second read: what the first cut missed ---------------------------------------------


def sheet_of(tmp_path: Path, *rows: list[object]) -> Path:
    workbook = openpyxl.Workbook()
    tab = workbook.active
    assert tab is not None
    tab.title = "Devices"
    for row in rows:
        tab.append(row)
    path = tmp_path / "site.xlsx"
    workbook.save(path)
    return path


def read(path: Path, template: str) -> list[tuple[str | None, str, str]]:
    site = read_records(open_workbook(path), load_template(template))
    slow = read_records(open_workbook(path), load_template(template), cell_by_cell=True)
    assert [r.body for r in site.devices] == [r.body for r in slow.devices]
    return [(p.cell, p.code, p.message) for p in site.problems]


def test_a_key_stored_as_a_number_is_one_error_and_no_notice(tmp_path: Path) -> None:
    path = sheet_of(tmp_path, ["DevEUI", "AppKey"], ["70B3D5E75E005000", 99999])
    found = read(path, "lorawan-meter")
    assert [(cell, code) for cell, code, _ in found] == [("B2", "id-lost-leading-zero")]
    assert "99999" not in found[0][2]


def test_hex_config_keys_are_checked_in_every_template(tmp_path: Path) -> None:
    path = sheet_of(
        tmp_path,
        ["serial", "addr", "cfg:AppKey", "cfg:JoinEUI"],
        ["1", "352656100123456", "12345", "70B3D57ED00000O2"],
        ["2", "352656100123457", "00112233445566778899aabbccddeeff", "70B3D57ED0000001"],
    )
    found = read(path, "default")
    errors = [(cell, code) for cell, code, _ in found if code != "id-read-in-one-form"]
    assert errors == [("C2", "id-lost-leading-zero"), ("D2", "id-format")]
    assert "an AppKey has 32 hex digits" in found[0][2] and "12345" not in found[0][2]


def test_hex_keys_in_a_config_cell_are_read_in_their_one_form(tmp_path: Path) -> None:
    config = '{"JoinEUI": "70-b3-d5-7e-d0-00-00-01", "listenCron": "0 0/20 * * * *"}'
    path = sheet_of(tmp_path, ["serial", "addr", "config"], ["1", "352656100123456", config])
    site = read_records(open_workbook(path), load_template("default"))
    assert site.devices[0].body["initialConfig"] == {
        "JoinEUI": "70B3D57ED0000001",
        "listenCron": "0 0/20 * * * *",
    }
    assert [p.code for p in site.problems] == ["id-read-in-one-form"]


def test_a_header_with_more_words_is_another_column_not_a_misspelling() -> None:
    lorawan = load_template("lorawan-meter").devices
    for header in ("Serial old", "alte Seriennummer", "DevEUI 2", "Name 2", "Tags 2", "Device ID"):
        assert lorawan.near_header(header) is None, header
    assert lorawan.near_header("AppSKey") is None  # a key of its own, not AppKey
    assert lorawan.near_header("AppKy") == ("cfg:AppKey", "AppKey")
    assert lorawan.near_header("DevEIU") == ("addr", "DevEUI")  # two letters swapped
    assert lorawan.near_header("Seriennumer") == ("serial", "Seriennummer")


def test_two_columns_agree_by_value_not_by_spelling(tmp_path: Path) -> None:
    path = sheet_of(
        tmp_path,
        ["DevEUI", "addr", "tags", "Schlagworte", "lat", "Breitengrad", "lon"],
        ["70B3D5E75E000001", "70-b3-d5-e7-5e-00-00-01", "a, b", "a; b", "53.5", "53,5", "9.9"],
    )
    found = read(path, "lorawan-meter")
    assert {code for _, code, _ in found} == {"column-twice-agreeing"}


def test_a_number_in_a_zero_padded_format_stays_an_error(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    tab = workbook.active
    assert tab is not None
    tab.title = "Devices"
    tab.append(["serial", "addr"])
    tab.append([123456, "352656100123456"])
    tab["A2"].number_format = "00000000"  # Excel shows 00123456
    path = tmp_path / "site.xlsx"
    workbook.save(path)
    found = read(path, "default")
    assert [(cell, code) for cell, code, _ in found] == [("A2", "id-stored-as-number")]
