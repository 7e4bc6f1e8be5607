"""The blank installer workbook: tabs, headers, Text columns, dropdowns, instructions."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import get_column_letter
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet
from python_calamine import CalamineWorkbook

from provisioner import export as export_module
from provisioner.blank_sheet import LAST_ROW, STYLED_ROWS, write_blank_workbook
from provisioner.fields import FIELDS
from provisioner.templates import SiteTemplate, header_key, layout_templates, load_template
from provisioner.validation import validate_sheet

LORAWAN_STYLE = """\
description = "=HYPERLINK(\\"x\\") LoRaWAN test site"
match_key = "addr"
site_tag = "Site-HH-04"

[devices.columns]
addr = ["DevEUI", "addr"]
serial = ["serial"]
deviceTypeId = ["deviceTypeId"]
"cfg:AppKey" = ["AppKey"]

[devices.defaults]
deviceTypeId = 4
tags = ["Meter"]

[devices.rules.addr]
hex_length = 16
hint = "16 hex digits (LoRaWAN DevEUI)"

[devices.rules."cfg:DevEUI"]
hex_length = 16
hint = "16 hex digits (LoRaWAN DevEUI)"

[devices.rules."cfg:JoinEUI"]
hex_length = 16
hint = "16 hex digits (LoRaWAN JoinEUI)"

[devices.rules."cfg:AppKey"]
hex_length = 32

[device_types]
4 = "LoRaWAN Meter"
7 = "Water Meter"
"""


@pytest.fixture(scope="module", params=layout_templates())
def built_in(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[SiteTemplate, Path, Workbook]:
    template = load_template(request.param)
    path = tmp_path_factory.mktemp("blank") / f"{template.name}.xlsx"
    write_blank_workbook(template, path)
    return template, path, openpyxl.load_workbook(path)


@pytest.fixture(scope="module")
def lorawan(tmp_path_factory: pytest.TempPathFactory) -> tuple[SiteTemplate, Path, Workbook]:
    folder = tmp_path_factory.mktemp("lorawan")
    (folder / "site.toml").write_text(textwrap.dedent(LORAWAN_STYLE), encoding="utf-8")
    template = load_template(str(folder / "site.toml"))
    path = folder / "site HH-04.xlsx"
    write_blank_workbook(template, path)
    return template, path, openpyxl.load_workbook(path)


def headers(sheet: Worksheet) -> list[str]:
    return [str(cell.value) for cell in sheet[1]]


def column_of(sheet: Worksheet, header: str) -> str:
    return get_column_letter(headers(sheet).index(header) + 1)


def validation_for(sheet: Worksheet, header: str) -> DataValidation:
    letter = column_of(sheet, header)
    found = [v for v in sheet.data_validations.dataValidation if str(v.sqref).startswith(letter)]
    assert len(found) == 1, f"{header}: {found}"
    assert str(found[0].sqref) == f"{letter}2:{letter}{LAST_ROW}"
    return found[0]


def dropdown(workbook: Workbook, sheet: Worksheet, header: str) -> list[object]:
    """The values a column's dropdown offers, read from the range it names."""
    validation = validation_for(sheet, header)
    assert validation.type == "list"
    assert validation.allow_blank and validation.showErrorMessage and validation.error
    tab, cells = str(validation.formula1).lstrip("=").split("!")
    assert tab == "Lists"
    return [row[0].value for row in workbook[tab][cells.replace("$", "")]]


def expected_device_headers(template: SiteTemplate) -> set[str]:
    spec = template.devices
    headers = {aliases[0] for aliases in spec.columns.values()}
    # A config rule's own column, unless a column is headed by its key already (DevEUI).
    config_rules = {
        spec.config_prefix + name[len("cfg:") :]
        for name in spec.rules
        if name.startswith("cfg:")
        and name not in spec.columns
        and header_key(name[len("cfg:") :]) not in {header_key(h) for h in headers}
    }
    return headers | config_rules


# --- every built-in template --------------------------------------------------------------


def test_tabs_devices_first_instructions_last_and_lists_hidden(
    built_in: tuple[SiteTemplate, Path, Workbook],
) -> None:
    template, _, workbook = built_in
    assert workbook.sheetnames == [
        template.devices.tab,
        template.users.tab,
        template.downlinks.tab,
        "Instructions",
        "Lists",
    ]
    assert workbook.active is not None and workbook.active.title == template.devices.tab
    assert workbook["Lists"].sheet_state == "hidden"
    assert all(s.sheet_state == "visible" for s in workbook.worksheets[:4])


def test_headers_are_the_first_aliases_match_key_and_addr_first(
    built_in: tuple[SiteTemplate, Path, Workbook],
) -> None:
    template, _, workbook = built_in
    devices = workbook[template.devices.tab]
    found = headers(devices)
    assert len(found) == len(set(found))
    assert set(found) == expected_device_headers(template)
    key_header = template.devices.columns[template.match_key][0]
    addr_header = template.devices.columns["addr"][0]
    first = list(dict.fromkeys([key_header, addr_header]))
    assert found[: len(first)] == first
    for spec in (template.users, template.downlinks):
        assert headers(workbook[spec.tab]) == [a[0] for a in spec.columns.values()]
    for spec in (template.devices, template.users, template.downlinks):
        sheet = workbook[spec.tab]
        assert all(spec.field_for(h) is not None for h in headers(sheet))
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == f"A1:{get_column_letter(len(headers(sheet)))}1"
        assert all(cell.font.bold for cell in sheet[1])
        assert all(sheet.column_dimensions[get_column_letter(j)].width >= 10 for j in range(1, 4))
        assert sheet.max_row == 1 or all(
            c.value is None for row in sheet.iter_rows(min_row=2) for c in row
        )


def test_identifier_columns_are_text(built_in: tuple[SiteTemplate, Path, Workbook]) -> None:
    template, _, workbook = built_in
    identifiers = 0
    for spec in (template.devices, template.users, template.downlinks):
        sheet = workbook[spec.tab]
        for j, header in enumerate(headers(sheet), start=1):
            field = spec.field_for(header)
            assert field is not None
            if not spec.is_identifier(field):
                continue
            identifiers += 1
            letter = get_column_letter(j)
            assert sheet.column_dimensions[letter].number_format == "@", header
            for row in (2, 3, STYLED_ROWS + 1):
                assert sheet[f"{letter}{row}"].number_format == "@", (header, row)
    assert identifiers >= 3  # addr, serial and the downlink key at least


def test_the_blank_sheet_and_the_export_ask_the_catalogue_which_columns_are_numbers(
    tmp_path: Path,
) -> None:
    """Numbers stay numbers (Field.number) and every column shows the catalogue's example:
    the blank workbook and an export ask fields.py, so they agree on every device field."""
    # Without a device type list, deviceTypeId is a number column, not a dropdown.
    template = dataclasses.replace(load_template("default"), device_types={})
    path = tmp_path / "blank.xlsx"
    write_blank_workbook(template, path)
    devices = openpyxl.load_workbook(path)[template.devices.tab]
    numbers = set()
    for j, header in enumerate(headers(devices), start=1):
        name = template.devices.field_for(header)
        assert name is not None
        known = FIELDS["devices"][name]
        text = devices.column_dimensions[get_column_letter(j)].number_format == "@"
        assert text is not known.number, header
        assert export_module._Column(name, header).number is known.number, header
        if known.number:
            numbers.add(name)
        if name not in ("tags", "certEnforcesDtls"):  # a list's and a yes/no's are reworded
            assert f"Example: {known.example}." in validation_for(devices, header).prompt
    assert numbers == {"deviceTypeId", "lat", "lon"}


def test_dropdowns_come_from_the_lists_tab(built_in: tuple[SiteTemplate, Path, Workbook]) -> None:
    template, _, workbook = built_in
    devices = workbook[template.devices.tab]
    headers_of = {template.devices.field_for(h): h for h in headers(devices)}
    if "deviceTypeId" in headers_of:
        labels = dropdown(workbook, devices, headers_of["deviceTypeId"])
        assert labels == [f"{i} - {name}" for i, name in template.device_types.items()]
        letter = column_of(devices, headers_of["deviceTypeId"])
        assert devices.column_dimensions[letter].number_format == "@"
    if "certEnforcesDtls" in headers_of:
        assert dropdown(workbook, devices, headers_of["certEnforcesDtls"]) == ["true", "false"]
    assert dropdown(workbook, workbook[template.users.tab], "roles") == [
        "org-admin",
        "device-admin",
        "org-admin,device-admin",
    ]
    assert dropdown(workbook, workbook[template.downlinks.tab], "type") == [
        "config",
        "fw",
        "lorawan",
        "raw",
    ]


def test_every_column_has_a_prompt_excel_accepts(
    built_in: tuple[SiteTemplate, Path, Workbook],
) -> None:
    template, _, workbook = built_in
    for spec in (template.devices, template.users, template.downlinks):
        sheet = workbook[spec.tab]
        for header in headers(sheet):
            validation = validation_for(sheet, header)
            assert validation.showInputMessage and validation.prompt
            assert validation.promptTitle == header[:32]
            assert len(validation.prompt) <= 255
            assert len(validation.errorTitle or "") <= 32
            assert len(validation.error or "") <= 255


def test_instructions_name_every_column_the_match_key_and_the_commands(
    built_in: tuple[SiteTemplate, Path, Workbook],
) -> None:
    template, path, workbook = built_in
    cells = [str(c.value) for row in workbook["Instructions"].iter_rows() for c in row if c.value]
    text = "\n".join(cells)
    for spec in (template.devices, template.users, template.downlinks):
        for header in headers(workbook[spec.tab]):
            assert header in cells
    assert f"matched to the platform by their {template.match_key}" in text
    assert f"provisioner validate {path.name} --template {template.name}" in text
    assert "at least 10 characters with at least one letter and one digit" in text
    assert "never appear in any report" in text
    for type_id, name in template.device_types.items():
        assert name in text
        assert type_id in [c.value for c in workbook["Instructions"]["A"]]
    if "deviceTypeId" in template.devices.defaults:
        assert f"deviceTypeId {template.devices.defaults['deviceTypeId']}" in text
    assert "required" in cells and "optional" in cells
    if "tags" in template.devices.columns:
        assert "Separate several with ',' or ';'." in text


def test_calamine_reads_it_and_a_blank_workbook_validates_clean(
    built_in: tuple[SiteTemplate, Path, Workbook],
) -> None:
    template, path, _ = built_in
    book = CalamineWorkbook.from_path(str(path))
    assert book.sheet_names[0] == template.devices.tab
    rows = book.get_sheet_by_name(template.devices.tab).to_python()
    assert [str(v) for v in rows[0]] == headers(openpyxl.load_workbook(path).worksheets[0])
    assert all(not any(str(v) for v in row) for row in rows[1:])
    report = validate_sheet(path, template)
    assert report.errors == [] and report.warnings == []


# --- a site template of one's own ----------------------------------------------------------


def test_a_config_rule_gets_its_own_text_column(
    lorawan: tuple[SiteTemplate, Path, Workbook],
) -> None:
    template, _, workbook = lorawan
    devices = workbook["Devices"]
    found = headers(devices)
    assert found[0] == "DevEUI"
    assert "cfg:JoinEUI" in found and "AppKey" in found and "cfg:AppKey" not in found
    # The DevEUI is the address: its config rule adds no second DevEUI column.
    assert "cfg:DevEUI" not in found
    for header in ("DevEUI", "cfg:JoinEUI", "AppKey", "serial"):
        letter = column_of(devices, header)
        assert devices.column_dimensions[letter].number_format == "@"
        assert devices[f"{letter}2"].number_format == "@"
    prompt = validation_for(devices, "cfg:JoinEUI").prompt
    assert "16 hex digits (LoRaWAN JoinEUI)" in prompt
    assert "0004A30B001C0530" in prompt
    assert "32 hex digits" in validation_for(devices, "AppKey").prompt
    assert dropdown(workbook, devices, "deviceTypeId") == ["4 - LoRaWAN Meter", "7 - Water Meter"]
    assert validation_for(devices, "deviceTypeId").errorStyle == "warning"
    assert "Left empty: 4 (LoRaWAN Meter)" in validation_for(devices, "deviceTypeId").prompt


def test_instructions_of_an_own_template(lorawan: tuple[SiteTemplate, Path, Workbook]) -> None:
    template, path, workbook = lorawan
    sheet = workbook["Instructions"]
    text = "\n".join(str(c.value) for row in sheet.iter_rows() for c in row if c.value)
    assert "site tag 'Site-HH-04'" in text
    assert "tags Meter" in text
    # A template given by path is named by its path; names with spaces are quoted.
    assert f'provisioner validate "{path.name}" --template {template.source}' in text
    # Text from a template is never written as a formula.
    description = next(
        c for row in sheet.iter_rows() for c in row if c.value == template.description
    )
    assert description.data_type == "s"


def test_writing_replaces_the_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    template = load_template("default")
    path = tmp_path / "site.xlsx"
    path.write_bytes(b"old")
    write_blank_workbook(template, path)
    assert openpyxl.load_workbook(path).sheetnames[0] == "Devices"
    assert [p.name for p in tmp_path.iterdir()] == ["site.xlsx"]
    with pytest.raises(OSError):
        write_blank_workbook(template, tmp_path / "missing" / "site.xlsx")
    assert [p.name for p in tmp_path.iterdir()] == ["site.xlsx"]
