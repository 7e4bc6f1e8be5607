"""The blank installer workbook behind ``provisioner template NAME --out FILE.xlsx``.

``write_blank_workbook`` turns a site template into an .xlsx ready to fill in
on site: the devices tab first (the reader falls back to the first tab), then
Users and Downlinks, an Instructions tab, and a hidden Lists tab holding the
dropdown values. Headers are the template's first aliases, so the sheet reads
back without a single unknown-column warning.

Identifier columns (and every other column that is not a number) are formatted
as Text before anyone types into them: that is the one thing that keeps Excel
from dropping a DevEUI's leading zeros or showing an IMEI as 3.52656E+14. Data rows stay empty; the template's defaults
are explained on the Instructions tab instead of being copied into cells.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from provisioner.fields import CONFIG_PREFIX as CONFIG_FIELD_PREFIX
from provisioner.fields import DOWNLINK_TYPES
from provisioner.templates import ColumnRule, SiteTemplate, TabSpec
from provisioner.validation import load_schema

INSTRUCTIONS_TAB = "Instructions"
LISTS_TAB = "Lists"
LAST_ROW = 5000
"""Dropdowns, prompts and the Text format reach down to this row."""
STYLED_ROWS = 1000
"""Rows whose cells get the Text format one by one. The column format covers the
rest in Excel; cell formats also hold in programs that ignore column formats."""

TEXT = "@"
# Numbers stay numbers: the dropdown's ids are numbers, and lat/lon are read as such.
_NUMBER_FIELDS = frozenset({"deviceTypeId", "lat", "lon"})
_REQUIRED_FILL = PatternFill("solid", fgColor="FFF2CC")
_OPTIONAL_FILL = PatternFill("solid", fgColor="EDEDED")
_BOLD = Font(bold=True)
_TOP_WRAP = Alignment(vertical="top", wrap_text=True)
# Excel refuses a workbook whose prompt or error texts are longer than this.
_TITLE_LIMIT = 32
_PROMPT_LIMIT = 255

_HEX_EXAMPLE = "0004A30B001C05302B7E151628AED2A6ABF7158809CF4F3C"
_DIGITS_EXAMPLE = "3526561001234567890123456789"

# What goes in each column, in the installer's words, and an example.
_DEVICE_TEXT = {
    "addr": (
        "The address the platform knows the device by: a LoRaWAN DevEUI, an NB-IoT modem "
        "IMEI or a gateway address. No spaces; unique across the platform.",
        "352656100123456",
    ),
    "name": ("The display name; the platform uses the address when it is empty.", "Haus 4 Keller"),
    "serial": ("The serial number printed on the device label.", "GW-2024-00417"),
    "description": ("Free text, e.g. where the device is mounted.", "Keller, Hausanschlussraum"),
    "deviceTypeId": ("The number of the device type on the platform.", "1"),
    "tags": ("Labels to find the device by on the platform.", "Keller{sep} Haus 4"),
    "lat": ("Latitude in decimal degrees (-90 to 90); give lon as well.", "53.5511"),
    "lon": ("Longitude in decimal degrees (-180 to 180); give lat as well.", "9.9937"),
    "certEnforcesDtls": (
        "Whether the device must use DTLS with its certificate: true or false.",
        "false",
    ),
    "config": (
        "Initial configuration: a JSON object, or key=value pairs separated by ';'.",
        "listenCron=0 0/20 * * * *",
    ),
}
_USER_TEXT = {
    "name": ("The person's full name.", "Erika Mustermann"),
    "email": ("The user's login: an email address.", "erika.mustermann@example.com"),
    "password": ("", ""),
    "roles": ("What the user may do on the platform.", "device-admin"),
}
_DOWNLINK_TEXT = {
    "key": ("", ""),
    "type": ("The kind of downlink.", "config"),
    "payload": (
        "The downlink as a JSON object; its form depends on the type: config "
        '{"d": {...}, "q": "config"}, lorawan {"data": ..., "type": ..., "fPort": ...}, '
        'raw {"format": ..., "data": ...}.',
        '{"d": {"listenCron": "0 0/20 * * * *"}, "q": "config"}',
    ),
}
_REQUIRED = {
    "users": ("name", "email", "password", "roles"),
    "downlinks": ("key", "type", "payload"),
}


@dataclass(frozen=True)
class _Column:
    """One column of a blank tab and everything said about it."""

    field: str
    header: str
    required: bool
    what: str
    """What the column is, in general."""
    rule: str
    """What this template's rule demands of it."""
    default: str
    """What an empty cell means."""
    example: str
    text: bool
    choices: tuple[str, ...] = ()
    """Dropdown values; empty for a free column."""
    strict: bool = True
    """Whether the dropdown refuses other values, or only warns."""

    @property
    def required_word(self) -> str:
        return "required" if self.required else "optional"

    @property
    def description(self) -> str:
        return " ".join(p for p in (self.what, self.rule, self.default) if p)

    @property
    def prompt(self) -> str:
        """The input prompt: the template's words first, as Excel cuts it at 255 characters."""
        example = f"Example: {self.example}." if self.example else ""
        parts = (self.required_word.capitalize() + ".", self.rule, self.default, example, self.what)
        return _clip(" ".join(p for p in parts if p), _PROMPT_LIMIT)


def write_blank_workbook(template: SiteTemplate, path: Path) -> None:
    """Write a blank installer workbook for ``template`` to ``path``.

    The file is written beside ``path`` first and then moved over it, so a
    crash never leaves half a workbook; an existing file is replaced (the CLI
    decides whether that is allowed). Raises OSError when the file cannot be
    written.
    """
    workbook = Workbook()
    devices = workbook.active
    assert devices is not None
    device_columns = _device_columns(template)
    tabs: list[tuple[Worksheet, list[_Column]]] = [
        (devices, device_columns),
        (workbook.create_sheet(), _user_columns(template)),
        (workbook.create_sheet(), _downlink_columns(template, device_columns[0].example)),
    ]
    for (sheet, _), spec in zip(tabs, _specs(template), strict=True):
        sheet.title = spec.tab
    instructions = workbook.create_sheet(INSTRUCTIONS_TAB)
    lists = _Lists(workbook.create_sheet(LISTS_TAB))
    lists.add_device_types(template.device_types)
    for sheet, columns in tabs:
        _fill_tab(sheet, columns, lists)
    _fill_instructions(instructions, template, tabs, path.name)
    lists.sheet.sheet_state = "hidden"
    workbook.active = 0
    _save(workbook, path)


# --- columns ---------------------------------------------------------------------------------


def _specs(template: SiteTemplate) -> tuple[TabSpec, TabSpec, TabSpec]:
    return template.devices, template.users, template.downlinks


def _device_columns(template: SiteTemplate) -> list[_Column]:
    spec = template.devices
    # The match key and addr come first: they are what every row must have.
    fields = list(dict.fromkeys([template.match_key, "addr", *spec.columns]))
    headers = {name: spec.columns[name][0] for name in fields if name in spec.columns}
    for name in spec.rules:
        if _config_key(name) and name not in headers:
            headers[name] = spec.config_prefix + _config_key(name)
    columns = []
    for name, header in headers.items():
        what, example = _DEVICE_TEXT.get(name, ("", ""))
        if _config_key(name):
            what = (
                f"Initial configuration value '{_config_key(name)}', "
                "which the device gets on its first contact."
            )
        if name == template.match_key:
            what += " Devices are matched to the platform by this column."
        choices: tuple[str, ...] = ()
        strict = True
        if name == "deviceTypeId" and template.device_types:
            choices = tuple(str(i) for i in template.device_types)
            example = str(spec.defaults.get("deviceTypeId", choices[0]))
            # The platform's ids may differ from the template's list: warn, do not refuse.
            strict = False
            what = f"{what} Pick one from the list: {_type_names(template.device_types)}."
        elif name == "certEnforcesDtls":
            choices = ("true", "false")
        elif name == "tags":
            what = f"{what} Separate several with '{spec.list_separator}'."
            example = example.format(sep=spec.list_separator)
        columns.append(
            _column(
                spec,
                name,
                header,
                name in ("addr", template.match_key),
                what,
                example,
                choices,
                strict,
                template.device_types,
            )
        )
    return columns


def _user_columns(template: SiteTemplate) -> list[_Column]:
    spec = template.users
    separator = spec.list_separator
    roles = tuple(load_schema("userInput")["properties"]["roles"]["items"]["enum"])
    columns = []
    for name, aliases in spec.columns.items():
        what, example = _USER_TEXT.get(name, ("", ""))
        choices: tuple[str, ...] = ()
        if name == "password":
            what = _password_policy()
        elif name == "roles":
            choices = (*roles, separator.join(roles))
            what = f"{what} One of {', '.join(roles)}, or several separated by '{separator}'."
        required = name in _REQUIRED["users"] and name not in spec.defaults
        columns.append(
            _column(spec, name, aliases[0], required, what, example, choices, strict=False)
        )
    return columns


def _downlink_columns(template: SiteTemplate, example_key: str) -> list[_Column]:
    spec = template.downlinks
    device_key = template.devices.columns[template.match_key][0]
    columns = []
    for name, aliases in spec.columns.items():
        what, example = _DOWNLINK_TEXT.get(name, ("", ""))
        choices: tuple[str, ...] = ()
        if name == "key":
            what = (
                f"The device the downlink is for: its {template.match_key} as in the "
                f"'{device_key}' column of the {template.devices.tab} tab."
            )
            example = example_key
        elif name == "type":
            choices = DOWNLINK_TYPES
            what = f"{what} One of {', '.join(DOWNLINK_TYPES)}."
        required = name in _REQUIRED["downlinks"] and name not in spec.defaults
        columns.append(_column(spec, name, aliases[0], required, what, example, choices))
    return columns


def _column(
    spec: TabSpec,
    name: str,
    header: str,
    required: bool,
    what: str,
    example: str,
    choices: tuple[str, ...] = (),
    strict: bool = True,
    device_types: dict[int, str] | None = None,
) -> _Column:
    """A column with the template's rule and default for it."""
    rule = spec.rules.get(name)
    rule_text = ""
    if rule is not None:
        rule_text, example = _rule_text(rule, example)
    default = ""
    if name in spec.defaults:
        default = _default_note(spec, name, device_types or {})
    return _Column(
        field=name,
        header=header,
        required=required,
        what=what or f"The {name}.",
        rule=rule_text,
        default=default,
        example=example,
        text=spec.is_identifier(name) or name not in _NUMBER_FIELDS,
        choices=choices,
        strict=strict,
    )


def _rule_text(rule: ColumnRule, example: str) -> tuple[str, str]:
    """What a rule demands, in words, and an example that obeys it."""
    hint = _sentence(rule.hint)
    if rule.hex_length is not None:
        form = f"{rule.hex_length} hex digits (0-9, A-F)."
        example = _repeat(_HEX_EXAMPLE, rule.hex_length)
    elif rule.digits is not None:
        form = f"{rule.digits} digits."
        example = _repeat(_DIGITS_EXAMPLE, rule.digits)
    elif rule.pattern is not None:
        form = f"Must match the pattern {rule.pattern.pattern}"
    else:
        form = ""
    # The built-in hints say the length already ("a DevEUI has 16 hex digits ...").
    if form and hint and form.split()[0] in hint:
        form = ""
    return " ".join(p for p in (form, hint) if p), example


def _repeat(text: str, length: int) -> str:
    return (text * (length // len(text) + 1))[:length]


def _default_note(spec: TabSpec, name: str, device_types: dict[int, str]) -> str:
    value = spec.defaults[name]
    shown = _shown(value, spec.list_separator)
    if name == "tags":
        return f"The template adds the tags {shown} to every row."
    if name == "deviceTypeId" and value in device_types:
        shown = f"{value} ({device_types[value]})"
    return f"Left empty: {shown}."


def _shown(value: Any, separator: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return f"{separator} ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _config_key(name: str) -> str:
    return name[len(CONFIG_FIELD_PREFIX) :] if name.startswith(CONFIG_FIELD_PREFIX) else ""


def _type_names(device_types: dict[int, str]) -> str:
    return ", ".join(f"{i} - {name}" for i, name in device_types.items())


def _password_policy() -> str:
    rule = load_schema("userInput")["properties"]["password"]["description"]
    return f"{rule} Passwords never appear in any report, log or journal."


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


# --- tabs ------------------------------------------------------------------------------------


class _Lists:
    """The hidden tab the dropdowns take their values from, one list per column."""

    def __init__(self, sheet: Worksheet) -> None:
        self.sheet = sheet
        self.ranges: dict[tuple[str, ...], str] = {}

    def range_of(self, title: str, values: tuple[str, ...]) -> str:
        """The formula of a dropdown offering ``values`` (numbers stay numbers)."""
        if values not in self.ranges:
            self.ranges[values] = self._add(title, [_number_or_text(v) for v in values])
        return self.ranges[values]

    def add_device_types(self, device_types: dict[int, str]) -> None:
        """The ids the dropdown yields, and beside them their names for people to read."""
        if device_types:
            ids = tuple(str(i) for i in device_types)
            self.range_of("deviceTypeId", ids)
            self._add("device type", [f"{i} - {name}" for i, name in device_types.items()])

    def _add(self, title: str, values: Sequence[str | int]) -> str:
        column = self.sheet.max_column + 1 if self.sheet["A1"].value is not None else 1
        _put(self.sheet, 1, column, title).font = _BOLD
        for row, value in enumerate(values, start=2):
            _put(self.sheet, row, column, value)
        letter = get_column_letter(column)
        self.sheet.column_dimensions[letter].width = 30
        return f"={LISTS_TAB}!${letter}$2:${letter}${len(values) + 1}"


def _number_or_text(value: str) -> str | int:
    return int(value) if value.isdigit() else value


def _fill_tab(sheet: Worksheet, columns: list[_Column], lists: _Lists) -> None:
    for j, column in enumerate(columns, start=1):
        letter = get_column_letter(j)
        cell = _put(sheet, 1, j, column.header)
        cell.font = _BOLD
        cell.fill = _REQUIRED_FILL if column.required else _OPTIONAL_FILL
        dimension = sheet.column_dimensions[letter]
        dimension.width = min(max(len(column.header) + 4, len(column.example) + 2, 12), 45)
        if column.text:
            dimension.number_format = TEXT
            for row in range(2, STYLED_ROWS + 2):
                sheet.cell(row, j).number_format = TEXT
        sheet.add_data_validation(_validation(column, lists, f"{letter}2:{letter}{LAST_ROW}"))
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}1"


def _validation(column: _Column, lists: _Lists, cells: str) -> DataValidation:
    """A dropdown for a column with choices, else only the input prompt."""
    validation = DataValidation(
        allow_blank=True,
        showInputMessage=True,
        promptTitle=_clip(column.header, _TITLE_LIMIT),
        prompt=column.prompt,
    )
    if column.choices:
        validation.type = "list"
        validation.formula1 = lists.range_of(column.field, column.choices)
        validation.showErrorMessage = True
        validation.errorStyle = "stop" if column.strict else "warning"
        validation.errorTitle = _clip(f"{column.header}: not in the list", _TITLE_LIMIT)
        validation.error = _clip(
            f"Pick one of: {', '.join(column.choices)}. See the {INSTRUCTIONS_TAB} tab.",
            _PROMPT_LIMIT,
        )
    validation.add(cells)
    return validation


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fill_instructions(
    sheet: Worksheet,
    template: SiteTemplate,
    tabs: list[tuple[Worksheet, list[_Column]]],
    file_name: str,
) -> None:
    devices, users, downlinks = _specs(template)
    key_header = tabs[0][1][0].header
    template_arg = _argument(template.name if template.source == "built-in" else template.source)
    file_arg = _argument(file_name)
    lines = [
        f"How to fill in this workbook (site template '{template.name}')",
        template.description,
        "",
        f"Write one row per device on the '{devices.tab}' tab, from row 2 on. The "
        f"'{users.tab}' and '{downlinks.tab}' tabs are optional: fill them in only to add "
        "platform users or to queue downlinks, otherwise leave them empty.",
        f"Devices are matched to the platform by their {template.match_key} (column "
        f"'{key_header}'): every row needs one, and each only once. A device already on "
        "the platform is never created again, so running apply twice is safe.",
        "Yellow headers are required, grey ones optional. Selecting a cell shows what goes "
        "in; columns with a dropdown offer the allowed values.",
        "Identifier columns are formatted as Text: type them exactly as printed on the label. "
        "Paste with 'Paste Values' (Ctrl+Shift+V) so the columns stay Text; an identifier that "
        "Excel has turned into a number (3.52656E+14, lost leading zeros) is reported.",
        *_default_lines(template),
        f"Passwords on the '{users.tab}' tab: {_lower_first(_password_policy())} Delete the passwords from this file after apply, or "
        "share it only with people who may see them.",
        "",
        "When the workbook is filled in, run:",
        f"1. provisioner validate {file_arg} --template {template_arg}"
        "    (checks every cell; nothing is sent)",
        f"2. provisioner plan {file_arg} --template {template_arg}"
        "    (shows what would happen on the platform)",
        f"3. provisioner apply {file_arg} --template {template_arg}"
        "    (after any failure, the same command continues where it stopped)",
        "",
    ]
    for row, text in enumerate(lines, start=1):
        if text:
            _put(sheet, row, 1, text)
    sheet["A1"].font = Font(bold=True, size=14)

    table = [("Tab", "Column", "Required", "What goes in", "Example", "Cell format")]
    for sheet_of_tab, columns in tabs:
        for c in columns:
            form = "Text" if c.text else "Number"
            if c.choices:
                form += ", dropdown"
            table.append(
                (sheet_of_tab.title, c.header, c.required_word, c.description, c.example, form)
            )
    start = len(lines) + 1
    for i, values in enumerate(table):
        for j, value in enumerate(values, start=1):
            cell = _put(sheet, start + i, j, value)
            if i == 0:
                cell.font = _BOLD
            else:
                cell.alignment = _TOP_WRAP
    if template.device_types:
        row = start + len(table) + 1
        _put(sheet, row, 1, "Device types (deviceTypeId)").font = _BOLD
        for i, (type_id, name) in enumerate(template.device_types.items(), start=1):
            _put(sheet, row + i, 1, type_id)
            _put(sheet, row + i, 2, name)
    for letter, width in zip("ABCDEF", (14, 22, 10, 70, 34, 16), strict=True):
        sheet.column_dimensions[letter].width = width


def _default_lines(template: SiteTemplate) -> list[str]:
    lines = []
    for spec in _specs(template):
        filled = {k: v for k, v in spec.defaults.items() if k != "tags"}
        if filled:
            values = "; ".join(
                f"{name} {_shown(value, spec.list_separator)}"
                + (
                    f" ({template.device_types[value]})"
                    if name == "deviceTypeId" and value in template.device_types
                    else ""
                )
                for name, value in filled.items()
            )
            lines.append(
                f"Empty cells on the '{spec.tab}' tab get the template's defaults: {values}."
            )
    tags = template.devices.defaults.get("tags")
    if tags:
        lines.append(
            f"Every device also gets the tags {_shown(tags, template.devices.list_separator)}."
        )
    if template.site_tag:
        lines.append(
            f"Every device gets the site tag '{template.site_tag}', by which plan finds "
            "this site's devices on the platform."
        )
    else:
        lines.append("This template sets no site tag.")
    return lines


def _argument(text: str) -> str:
    """A file name as typed on a command line."""
    return f'"{text}"' if any(ch.isspace() for ch in text) else text


def _put(sheet: Worksheet, row: int, column: int, value: str | int) -> Any:
    """Write a value; text starting with '=' stays text, never a formula."""
    cell = sheet.cell(row, column, value)
    if isinstance(value, str) and value.startswith("="):
        cell.data_type = "s"
    return cell


# --- saving ----------------------------------------------------------------------------------


def _save(workbook: Workbook, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        workbook.save(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
