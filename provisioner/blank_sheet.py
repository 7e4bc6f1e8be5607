"""The blank installer workbook behind ``provisioner template NAME --out FILE.xlsx``.

``write_blank_workbook`` turns a site template into an .xlsx ready to fill in
on site: the devices tab first (the reader falls back to the first tab), then
Users and Downlinks, an Instructions tab, and a hidden Lists tab holding the
dropdown values. Headers are ones the template reads (its first aliases, see
``wording.header_in`` for German), so the sheet reads back without a single
unknown-column warning.

Identifier columns (and every other column that is not a number) are formatted
as Text before anyone types into them: that is the one thing that keeps Excel
from dropping a DevEUI's leading zeros or showing an IMEI as 3.52656E+14. Data
rows stay empty; the template's defaults are explained on the Instructions tab
instead of being copied into cells.

In German (``lang="de"``) every text of the workbook is German (the words are in
``provisioner.wording``), except what a template file says in its own words: its
description is shown as written, and its rule hints, which the console's English
messages repeat, are left out (the rule itself is still said, in German). A built-in
template's description is German too (``wording.description_in``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from provisioner.fields import CONFIG_PREFIX as CONFIG_FIELD_PREFIX
from provisioner.fields import DOWNLINK_TYPES, LOCATION_FIELDS, NEEDED, is_number
from provisioner.fields import example as example_of
from provisioner.files import put_text, write_atomically
from provisioner.sheets import record_template
from provisioner.templates import ColumnRule, SiteTemplate, TabSpec, header_key
from provisioner.validation import load_schema
from provisioner.wording import description_in, header_in, say, separators_in, tab_in

LAST_ROW = 5000
"""Dropdowns, prompts and the Text format reach down to this row."""
STYLED_ROWS = 1000
"""Rows whose cells get the Text format one by one. The column format covers the
rest in Excel; cell formats also hold in programs that ignore column formats."""

TEXT = "@"
_REQUIRED_FILL = PatternFill("solid", fgColor="FFF2CC")
_OPTIONAL_FILL = PatternFill("solid", fgColor="EDEDED")
_BOLD = Font(bold=True)
_TOP_WRAP = Alignment(vertical="top", wrap_text=True)
# Excel refuses a workbook whose prompt or error texts are longer than this.
_TITLE_LIMIT = 32
_PROMPT_LIMIT = 255

_HEX_EXAMPLE = "0004A30B001C05302B7E151628AED2A6ABF7158809CF4F3C"
_DIGITS_EXAMPLE = "3526561001234567890123456789"


@dataclass(frozen=True)
class _Column:
    """One column of a blank tab and everything said about it, in the workbook's language."""

    field: str
    header: str
    required: bool
    """Whether the column must be filled: a yellow header, else a grey one."""
    required_word: str
    description: str
    prompt: str
    example: str
    text: bool
    choices: tuple[str, ...] = ()
    """Dropdown values; empty for a free column."""
    strict: bool = True
    """Whether the dropdown refuses other values, or only warns."""


def write_blank_workbook(
    template: SiteTemplate, path: Path, lang: str = "en", *, replace: bool = True
) -> None:
    """Write a blank installer workbook for ``template`` to ``path``, in ``lang`` (en, de).

    The file is written by ``files.write_atomically``, so a crash never leaves
    half a workbook; an existing file is replaced only with ``replace``. Raises
    OSError when the file cannot be written (FileExistsError for an existing file
    without ``replace``).
    """
    workbook = Workbook()
    devices = workbook.active
    assert devices is not None
    device_columns = _device_columns(template, lang)
    tabs: list[tuple[Worksheet, list[_Column]]] = [
        (devices, device_columns),
        (workbook.create_sheet(), _user_columns(template, lang)),
        (workbook.create_sheet(), _downlink_columns(template, device_columns, lang)),
    ]
    for (sheet, _), spec in zip(tabs, _specs(template), strict=True):
        sheet.title = tab_in(spec, lang)
    instructions = workbook.create_sheet(say(lang, "instructions_tab"))
    lists = _Lists(workbook.create_sheet(say(lang, "lists_tab")))
    for sheet, columns in tabs:
        _fill_tab(sheet, columns, lists, lang, instructions.title)
    _fill_instructions(instructions, template, tabs, path.name, lang)
    lists.sheet.sheet_state = "hidden"
    workbook.active = 0
    record_template(workbook, template.ref)
    _save(workbook, path, replace)


# --- columns ---------------------------------------------------------------------------------


def _specs(template: SiteTemplate) -> tuple[TabSpec, TabSpec, TabSpec]:
    return template.devices, template.users, template.downlinks


def _device_type_label(type_id: int, name: str) -> str:
    """The dropdown's label of a device type; the reader takes the number before " - "."""
    return f"{type_id} - {name}"


def _device_columns(template: SiteTemplate, lang: str) -> list[_Column]:
    spec = template.devices
    # The match key and addr come first: they are what every row must have.
    fields = list(dict.fromkeys([template.match_key, "addr", *spec.columns]))
    headers = {name: header_in(spec, name, lang) for name in fields if name in spec.columns}
    # A config key with a rule gets a column of its own, unless another column is already
    # headed so (a LoRaWAN sheet's DevEUI is its address): one value, typed once.
    taken = {header_key(header) for header in headers.values()}
    for name in spec.rules:
        key = _config_key(name)
        if key and name not in headers and header_key(key) not in taken:
            headers[name] = spec.config_prefix + key
    columns = []
    for name, header in headers.items():
        example = example_of("devices", name)
        if _config_key(name):
            what = say(lang, "devices.cfg", key=_config_key(name))
        else:
            what = _what(lang, "devices", name)
        if name == template.match_key:
            what += " " + say(lang, "matched_by_column")
        choices: tuple[str, ...] = ()
        strict = True
        if name == "deviceTypeId" and template.device_types:
            labels = {i: _device_type_label(i, n) for i, n in template.device_types.items()}
            choices = tuple(labels.values())
            example = labels.get(spec.defaults.get("deviceTypeId", 0), choices[0])
            # The platform's ids may differ from the template's list: warn, do not refuse.
            strict = False
            what += " " + say(lang, "device_type_list")
        elif name == "certEnforcesDtls":
            choices = (say(lang, "true"), say(lang, "false"))
            example = say(lang, "false")
        elif name == "tags":
            what += " " + say(lang, "separate", sep=separators_in(spec, lang))
            example = example.format(sep=spec.list_separator)
        elif name in LOCATION_FIELDS and lang == "de":
            example = example.replace(".", ",")  # German Excel's decimal mark
        required = name in NEEDED["devices"] or name == template.match_key
        columns.append(
            _column(
                spec, name, header, required, False, what, example, choices, strict, template, lang
            )
        )
    return columns


def _user_columns(template: SiteTemplate, lang: str) -> list[_Column]:
    spec = template.users
    roles = tuple(load_schema("userInput")["properties"]["roles"]["items"]["enum"])
    columns = []
    for name in spec.columns:
        example = example_of("users", name)
        choices: tuple[str, ...] = ()
        if name == "password":
            what = _password_policy(lang)
        elif name == "roles":
            choices = (*roles, spec.list_separator.join(roles))
            what = say(lang, "users.roles", roles=", ".join(roles), sep=separators_in(spec, lang))
        else:
            what = _what(lang, "users", name)
        needed = name in NEEDED["users"] and name not in spec.defaults
        header = header_in(spec, name, lang)
        columns.append(
            _column(
                spec, name, header, False, needed, what, example, choices, False, template, lang
            )
        )
    return columns


def _downlink_columns(
    template: SiteTemplate, device_columns: list[_Column], lang: str
) -> list[_Column]:
    spec = template.downlinks
    key_column = device_columns[0]
    columns = []
    for name in spec.columns:
        example = example_of("downlinks", name)
        choices: tuple[str, ...] = ()
        if name == "key":
            what = say(
                lang,
                "downlinks.key",
                key=say(lang, f"key.{template.match_key}"),
                header=key_column.header,
                tab=tab_in(template.devices, lang),
            )
            example = key_column.example
        elif name == "type":
            choices = DOWNLINK_TYPES
            what = say(lang, "downlinks.type", types=", ".join(DOWNLINK_TYPES))
        else:
            what = _what(lang, "downlinks", name)
        needed = name in NEEDED["downlinks"] and name not in spec.defaults
        header = header_in(spec, name, lang)
        columns.append(
            _column(spec, name, header, False, needed, what, example, choices, True, template, lang)
        )
    return columns


def _what(lang: str, section: str, name: str) -> str:
    try:
        return say(lang, f"{section}.{name}")
    except KeyError:  # a field the workbook has no words for
        return say(lang, "field", name=name)


def _column(
    spec: TabSpec,
    name: str,
    header: str,
    required: bool,
    needed_in_row: bool,
    what: str,
    example: str,
    choices: tuple[str, ...],
    strict: bool,
    template: SiteTemplate,
    lang: str,
) -> _Column:
    """A column with the template's rule and default for it.

    ``needed_in_row``: a column of an optional tab (Users, Downlinks) that each row of
    the tab needs. The column is marked optional, as the tab is, and says so.
    """
    rule = spec.rules.get(name)
    rule_text = ""
    if rule is not None:
        rule_text, example = _rule_text(rule, example, lang)
    default = ""
    if name in spec.defaults:
        default = _default_note(spec, name, template.device_types, lang)
    word = say(lang, "required" if required else "optional")
    needed = say(lang, "needed_in_row") if needed_in_row else ""
    example_text = say(lang, "example", example=example) if example else ""
    # The template's words first, as Excel cuts a prompt at 255 characters.
    prompt = (word[:1].upper() + word[1:] + ".", needed, rule_text, default, example_text, what)
    return _Column(
        field=name,
        header=header,
        required=required,
        required_word=word,
        description=_joined(what, needed, rule_text, default),
        prompt=_clip(_joined(*prompt), _PROMPT_LIMIT),
        example=example,
        # Numbers stay numbers (fields.is_number): lat/lon are read as such, and so is a
        # deviceTypeId without a dropdown (with one, it holds labels like "3 - Lobaro ...").
        text=spec.is_identifier(name) or not is_number(spec.section, name) or bool(choices),
        choices=choices,
        strict=strict,
    )


def _joined(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _rule_text(rule: ColumnRule, example: str, lang: str) -> tuple[str, str]:
    """What a rule demands, in words, and an example that obeys it."""
    # The hint is the template's own (English) words: in German only the rule is said.
    hint = _sentence(rule.hint) if lang == "en" else ""
    if rule.hex_length is not None:
        form = say(lang, "hex_digits", n=rule.hex_length)
        example = _repeat(_HEX_EXAMPLE, rule.hex_length)
    elif rule.digits is not None:
        form = say(lang, "digits", n=rule.digits)
        example = _repeat(_DIGITS_EXAMPLE, rule.digits)
    elif rule.pattern is not None:
        form = say(lang, "pattern", pattern=rule.pattern.pattern)
    else:
        form = ""
    # The built-in hints say the length already ("a DevEUI has 16 hex digits ...").
    if form and hint and form.split()[0] in hint:
        form = ""
    return _joined(form, hint), example


def _repeat(text: str, length: int) -> str:
    return (text * (length // len(text) + 1))[:length]


def _default_note(spec: TabSpec, name: str, device_types: dict[int, str], lang: str) -> str:
    value = spec.defaults[name]
    shown = _shown(value, spec.list_separator, lang)
    if name == "tags":
        return say(lang, "adds_tags", tags=shown)
    if name == "deviceTypeId" and value in device_types:
        shown = f"{value} ({device_types[value]})"
    return say(lang, "left_empty", value=shown)


def _shown(value: Any, separator: str, lang: str) -> str:
    if isinstance(value, bool):
        return say(lang, "true" if value else "false")
    if isinstance(value, list):
        return f"{separator} ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _config_key(name: str) -> str:
    return name[len(CONFIG_FIELD_PREFIX) :] if name.startswith(CONFIG_FIELD_PREFIX) else ""


def _password_policy(lang: str) -> str:
    password = load_schema("userInput")["properties"]["password"]
    return say(lang, "password", rule=password["description"], min_length=password["minLength"])


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
        """The formula of a dropdown offering ``values``."""
        if values not in self.ranges:
            column = self.sheet.max_column + 1 if self.sheet["A1"].value is not None else 1
            _put(self.sheet, 1, column, title).font = _BOLD
            for row, value in enumerate(values, start=2):
                _put(self.sheet, row, column, value)
            letter = get_column_letter(column)
            self.sheet.column_dimensions[letter].width = 30
            self.ranges[values] = f"={self.sheet.title}!${letter}$2:${letter}${len(values) + 1}"
        return self.ranges[values]


def _fill_tab(
    sheet: Worksheet, columns: list[_Column], lists: _Lists, lang: str, instructions: str
) -> None:
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
        cells = f"{letter}2:{letter}{LAST_ROW}"
        sheet.add_data_validation(_validation(column, lists, cells, lang, instructions))
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}1"


def _validation(
    column: _Column, lists: _Lists, cells: str, lang: str, instructions: str
) -> DataValidation:
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
        validation.errorTitle = _clip(
            say(lang, "not_in_list_title", header=column.header), _TITLE_LIMIT
        )
        if column.strict:
            error = say(lang, "pick_one", choices=", ".join(column.choices), tab=instructions)
        else:
            error = say(lang, "pick_or_keep", tab=instructions)
        validation.error = _clip(error, _PROMPT_LIMIT)
    validation.add(cells)
    return validation


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fill_instructions(
    sheet: Worksheet,
    template: SiteTemplate,
    tabs: list[tuple[Worksheet, list[_Column]]],
    file_name: str,
    lang: str,
) -> None:
    devices, users, downlinks = (sheet_of_tab.title for sheet_of_tab, _ in tabs)
    key_header = tabs[0][1][0].header
    template_arg = _argument(template.ref)
    file_arg = _argument(file_name)
    lines = [
        say(lang, "title", name=template.name),
        description_in(template, lang),
        "",
        say(lang, "rows", devices=devices, users=users, downlinks=downlinks),
        say(lang, "matched_by", key=say(lang, f"key.{template.match_key}"), header=key_header),
        say(lang, "colours"),
        say(lang, "identifiers"),
        *_default_lines(template, tabs, lang),
        say(lang, "passwords", tab=users, policy=_lower_first(_password_policy(lang))),
        "",
        say(lang, "run"),
        f"1. provisioner validate {file_arg} --template {template_arg}    "
        + say(lang, "run_validate"),
        f"2. provisioner plan {file_arg} --template {template_arg}    " + say(lang, "run_plan"),
        f"3. provisioner apply {file_arg} --template {template_arg}    " + say(lang, "run_apply"),
        say(lang, "recorded", name=template.ref),
        "",
    ]
    for row, text in enumerate(lines, start=1):
        if text:
            _put(sheet, row, 1, text)
    sheet["A1"].font = Font(bold=True, size=14)

    names = ("tab", "column", "required", "what", "example", "format")
    table = [tuple(say(lang, f"table_{name}") for name in names)]
    for sheet_of_tab, columns in tabs:
        for c in columns:
            form = say(lang, "format_text" if c.text else "format_number")
            if c.choices:
                form += say(lang, "format_dropdown")
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
        header = _header_of(tabs[0][1], "deviceTypeId")
        _put(sheet, row, 1, say(lang, "device_types", header=header)).font = _BOLD
        for i, (type_id, name) in enumerate(template.device_types.items(), start=1):
            _put(sheet, row + i, 1, type_id)
            _put(sheet, row + i, 2, name)
    for letter, width in zip("ABCDEF", (14, 22, 10, 70, 34, 16), strict=True):
        sheet.column_dimensions[letter].width = width


def _header_of(columns: list[_Column], name: str) -> str:
    """The header of a field's column, or the field's name when the tab has no such column."""
    return next((c.header for c in columns if c.field == name), name)


def _default_lines(
    template: SiteTemplate, tabs: list[tuple[Worksheet, list[_Column]]], lang: str
) -> list[str]:
    lines = []
    for spec, (sheet_of_tab, columns) in zip(_specs(template), tabs, strict=True):
        filled = {k: v for k, v in spec.defaults.items() if k != "tags"}
        if filled:
            values = "; ".join(
                f"{_header_of(columns, name)} {_shown(value, spec.list_separator, lang)}"
                + (
                    f" ({template.device_types[value]})"
                    if name == "deviceTypeId" and value in template.device_types
                    else ""
                )
                for name, value in filled.items()
            )
            lines.append(say(lang, "defaults", tab=sheet_of_tab.title, values=values))
    tags = template.devices.defaults.get("tags")
    if tags:
        shown = _shown(tags, template.devices.list_separator, lang)
        lines.append(say(lang, "also_tags", tags=shown))
    if template.site_tag:
        lines.append(say(lang, "site_tag", tag=template.site_tag))
    else:
        lines.append(say(lang, "no_site_tag"))
    return lines


def _argument(text: str) -> str:
    """A file name as typed on a command line."""
    return f'"{text}"' if any(ch.isspace() for ch in text) else text


def _put(sheet: Worksheet, row: int, column: int, value: str | int) -> Any:
    """Write a value; text stays text, never a formula (``files.put_text``)."""
    cell = sheet.cell(row, column)
    if isinstance(value, str):
        put_text(cell, value)
    else:
        cell.value = value
    return cell


# --- saving ----------------------------------------------------------------------------------


def _save(workbook: Workbook, path: Path, replace: bool) -> None:
    write_atomically(path, workbook.save, replace=replace)
