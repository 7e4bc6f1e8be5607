"""From sheet tables to records: the platform bodies each row asks for.

A site template says which column holds which field. Each row becomes a
record holding the body to send (deviceInput, userInput or a downlink) and the
column letter each field came from, so that later findings point at cells.
Problems met on the way (Excel damage, values that do not convert, missing
columns) are returned as Problems; nothing here raises for bad data.

``RecordStream`` maps the tabs a block of rows at a time (each block's cells a
column at a time, which is fast), holding only the block at hand;
``read_records`` collects every record, for plan and apply.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from typing import Any

from provisioner.fields import (
    CONFIG_PREFIX,
    EUI_DIGITS,
    FIELDS,
    HEX_CONFIG_KEYS,
    LOCATION_FIELDS,
    LOOKALIKES,
    MASK,
    NEEDED,
    QR_STARTS,
    DeviceQr,
    hex_form,
    is_secret_config_key,
    lookalike_letters,
    lorawan_version,
    read_qr,
    secret_key_values,
    shown_qr,
    split_list,
)
from provisioner.problems import Kind, Problem, column_letter, kind
from provisioner.sheets import OUTCOME_HEADERS, SheetError, SheetRows, Table, Workbook
from provisioner.templates import (
    HEX_CONFIG_NAMES,
    ColumnRule,
    Refusal,
    SiteTemplate,
    TabSpec,
    TemplateError,
    header_key,
    known_headers,
    list_templates,
    load_template,
)
from provisioner.text import counted, listed

MISSING_COLUMN = kind(
    "missing-column",
    "A required column is missing",
    "Add the column with one of the header names listed, or pick the site template "
    "that matches this sheet with --template.",
)
UNKNOWN_COLUMN = kind(
    "unknown-column",
    "A column is not sent to the platform",
    "Check the header: the template has no field for it, so its values are not sent. If they "
    "should reach the platform, rename the header to one the template reads "
    "(`provisioner template NAME` lists them); a column for the installer's own notes can stay.",
    "warning",
)
MISSPELT_HEADER = kind(
    "header-misspelt",
    "A header is close to one the template reads",
    "Rename the header to the one the message names (or to another header of that field that "
    "`provisioner template NAME` lists). Nothing of the tab is sent until then: the column's "
    "values would otherwise be left out of every device.",
)
OTHER_TEMPLATE_HEADER = kind(
    "header-of-another-template",
    "A header another site template reads, this one does not",
    "Run the command with the --template the message names, or rename the header to one this "
    "template reads for that field. Nothing of the tab is sent until then: the column's values "
    "would otherwise be left out of every device.",
)
DOUBLE_COLUMN = kind(
    "column-twice",
    "Two columns hold the same field and differ",
    "Keep one of the two columns: check which value is right in the rows named, then delete or "
    "rename the other column.",
)
SAME_COLUMN_TWICE = kind(
    "column-twice-agreeing",
    "Two columns hold the same field",
    "Nothing to do: the two columns agree in every row, so the first is used. Delete the "
    "second to keep the sheet clear.",
    "warning",
)
UNNAMED_COLUMN = kind(
    "unnamed-column",
    "Data in a column without a header",
    "Give the column a header the template knows, or clear it.",
    "warning",
)
NUMBER_ID = kind(
    "id-stored-as-number",
    "An identifier is stored as a number",
    "Excel turned the identifier into a number and may show it rounded, in E+ notation, "
    "or without leading zeros. Format the column as Text (right click, Format Cells, Text) "
    "and type the identifier again exactly as printed on the label.",
)
SCIENTIFIC_ID = kind(
    "id-scientific",
    "An identifier is in E+ notation",
    "Excel has shortened the number (e.g. 3.52656E+14) and the digits are lost. Format the "
    "column as Text and type the identifier again from the label; a CSV must be saved from "
    "a sheet whose identifier columns are Text.",
)
DECIMAL_ID = kind(
    "id-decimal",
    "An identifier has a decimal part",
    "The identifier was treated as a number somewhere (1337 became 1337.0). Remove the "
    "'.0' and format the column as Text.",
)
LOST_ZERO = kind(
    "id-lost-leading-zero",
    "An identifier is too short: a leading zero was probably lost",
    "Excel drops leading zeros of numbers. Format the column as Text and type the value "
    "again with its leading zeros.",
)
BAD_ID = kind(
    "id-format",
    "An identifier does not have the expected form",
    "Compare the value with the label on the device; the message says the form expected.",
)
DATE_TEXT = kind(
    "date-not-text",
    "A date where text was meant",
    "Excel turned the entry into a date (e.g. 1-12 into 1 Dec). Format the column as Text "
    "and type the value again.",
)
FORMULA = kind(
    "formula-without-value",
    "A formula without a computed value",
    "Open the file in Excel or LibreOffice, let it calculate, and save it again; or replace "
    "the formula by its value.",
)
CELL_ERROR = kind(
    "cell-error",
    "The cell shows an error",
    "Fix the formula or type the value instead.",
)
BAD_JSON = kind(
    "bad-json",
    "The cell does not hold valid JSON",
    'Write a JSON object such as {"d": {"listenCron": "0 0/20 * * * *"}, "q": "config"}; '
    "check quotes and braces.",
)
HALF_LOCATION = kind(
    "half-location",
    "Only one of latitude and longitude is given",
    "Fill both latitude and longitude, or leave both empty.",
)
ID_REWRITTEN = kind(
    "id-read-in-one-form",
    "Identifiers written with separators or in another letter case",
    "Nothing to do: a DevEUI, JoinEUI or key is the same in any letter case and with the "
    "separators labels print ('-', ':', spaces), so the tool reads it as its hex digits and "
    "sends it in the template's form. The sheet itself is not changed.",
    "warning",
)
ID_NUMBER_READ = kind(
    "id-number-read-as-digits",
    "Identifiers stored as numbers, read as the digits Excel shows",
    "Nothing to do for these cells: Excel shows the whole number, so its digits are used. "
    "Format the column as Text before typing more identifiers: Excel drops leading zeros and "
    "shortens numbers of 12 digits or more.",
    "warning",
)
ID_FROM_QR = kind(
    "id-read-from-qr-code",
    "Identifiers read from scanned LoRaWAN QR codes",
    "Nothing to do: a barcode scanner typed the device's whole QR code (LoRa Alliance TR005: "
    "LW:D0:JoinEUI:DevEUI:ProfileID, then owner token, serial number, checksum) into the cell. "
    "The tool reads the DevEUI from it, and the JoinEUI, serial number and profile ID where the "
    "row has none of its own; the sheet itself is not changed.",
    "warning",
)
BAD_QR = kind(
    "qr-code-unreadable",
    "A scanned LoRaWAN QR code cannot be read",
    "Scan the device's QR code into the cell again (a scan cut short or a mistyped character "
    "breaks it), or type the DevEUI printed on the label instead; the message says what is "
    "wrong with the code.",
)
NO_KEY = kind(
    "missing-key",
    "The row has no match key",
    "Fill the column the template matches devices by (serial or addr); without it the row "
    "cannot be checked against the platform.",
)

TEMPLATE_GUESS = kind(
    "template-guess",
    "The headers fit another site template",
    "Run the command again with the --template the message names: it maps these headers.",
    "warning",
)
UNKNOWN_DEVICE_TYPE = kind(
    "unknown-device-type",
    "A device type the site template does not list",
    "Check the number: the template lists the device types of this site. If the type is "
    "right, add it to the template's [device_types].",
    "warning",
)
NOT_SENT = kind(
    "columns-not-sent",
    "Columns the Lobaro platform has no place for",
    "Nothing to do: these columns of another platform's device file (a frequency plan, a "
    "LoRaWAN version, that platform's own ids) have no field on the Lobaro platform, so they "
    "are read and not sent; the devices are created without them.",
    "warning",
)
REFUSED_CELL = kind(
    "cell-refused",
    "A value the template cannot take",
    "The message says why: an ABP device or a running session (DevAddr, session keys, frame "
    "counters) is not moved, as the Lobaro platform takes OTAA devices, which join with their "
    "JoinEUI and AppKey. Clear the cell if the device can join anew, or leave the row out.",
)
KEYS_UNCLEAR = kind(
    "keys-unclear",
    "Which key is the device's AppKey cannot be told",
    "Add a column with each device's LoRaWAN version (mac_version: 1.0.3, 1.1.0, "
    "LORAWAN_1_0_3...), or, for a LoRaWAN 1.0.x device, leave the key only in the column "
    "the file's platform keeps a 1.0.x AppKey in (ChirpStack: nwk_key).",
)
NOT_VERSION = kind(
    "not-a-lorawan-version",
    "A LoRaWAN version is expected",
    "Type the device's LoRaWAN (MAC) version: 1.0.x (1.0.3, LORAWAN_1_0_3, MAC_V1_0_4) or "
    "1.1.x (1.1.0, LORAWAN_1_1_0, MAC_V1_1), or leave the cell empty.",
)
OTHER_TAB = kind(
    "devices-on-another-tab",
    "The devices are read from another tab than the first",
    "Nothing to do when the tab named holds the devices: the first tab lacks the columns the "
    "template needs, and this is the one tab that has them. To read another tab, name it with "
    '--tab "NAME".',
    "warning",
)
HIDDEN_CELLS = kind(
    "hidden-cells",
    "Hidden rows, columns or tabs",
    "Hidden rows and columns are read like the others: unhide them in Excel (right click, "
    "Unhide) and check them, or delete them if they are not meant to be sent.",
    "warning",
)

CSV_ENCODING = kind(
    "csv-encoding",
    "The CSV is not UTF-8: read in the encoding it was found to be in",
    "Check that the cell the message names reads as in the file: its letters (ä, ö, ü, ß, "
    "€, or those of your language) tell whether the encoding is right. To be sure, save the "
    "file as CSV UTF-8: in Excel File > Save As > CSV UTF-8 (Comma delimited); in "
    "LibreOffice Save As > Text CSV, character set Unicode (UTF-8).",
    "warning",
)

# Excel's General format writes a long number as a mantissa with a decimal point and a
# signed exponent (1.23457E+15, 8.69E+14, 1E+15); 0978762E61590076 is 16 hex digits.
SCIENTIFIC = re.compile(r"[+-]?\d(?:[.,]\d+)?[eE][+-]\d+")
DECIMAL_ZERO = re.compile(r"\d+[.,]0+")
NUMBER_LIKE = re.compile(r"[+-]?[\d.,]+(?:[eE][+-]\d+)?")  # cheap pre-check for the two above
HEX = re.compile(r"[0-9A-Fa-f]+")
DIGITS = re.compile(r"[0-9]+")
PASSWORD_MASK = MASK


@dataclass(slots=True)
class Record:
    """One sheet row and the body it asks for."""

    sheet: str
    row: int
    key: str  # devices: the match key's value; users: the email; downlinks: the device key
    body: dict[str, Any]
    cells: dict[str, str]  # field -> column letter it came from
    headers: dict[str, str]  # field -> header text
    valid: bool = True
    # Body fields the template filled, not a cell of the row (a default deviceTypeId, the
    # default location or config, tags that are only the template's): an update leaves
    # the device's own values of these alone, as it does for an empty cell.
    defaulted: frozenset[str] = frozenset()


@dataclass(slots=True)
class DownlinkRecord(Record):
    type: str = ""


@dataclass
class SiteRecords:
    """Everything the sheet asks for, and what was wrong with it on the way."""

    devices: list[Record] = field(default_factory=list)
    users: list[Record] = field(default_factory=list)
    downlinks: list[DownlinkRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    tabs: dict[str, str] = field(default_factory=dict)  # "devices"/"users"/"downlinks" -> tab
    # Tab -> letters of every column the template maps to a secret field: the users'
    # password (also a column not used because it doubles another) and the devices'
    # LoRaWAN keys; the ``secret_columns`` of write_report, blanked even in the copy of
    # the installer's sheet.
    secret_columns: dict[str, list[str]] = field(default_factory=dict)
    # Tab -> required fields it has no column for: one sheet-level problem says so, and
    # every row of the tab is invalid without a problem of its own.
    missing: dict[str, set[str]] = field(default_factory=dict)
    # Tab -> headers that stop it: a misspelling of the template's or another template's
    # header. Their values would be left out of every device, so no row of the tab is sent.
    bad_headers: dict[str, list[str]] = field(default_factory=dict)

    # The secrets of the rows read but not held (a streamed validation), for the reports.
    passed_secrets: set[str] = field(default_factory=set)

    def of_kind(self, kind: str) -> list[Any]:
        """The records of a kind: "device", "user" or "downlink"."""
        if kind == "device":
            return self.devices
        return self.users if kind == "user" else self.downlinks

    def secrets(self) -> list[str]:
        """Every secret value of the sheet: ``secret_values``, ``key_values`` and those of
        the rows not held."""
        return [*self.secret_values(), *self.key_values(), *self.passed_secrets]

    def secret_values(self) -> list[str]:
        """The users' passwords: the ``secrets`` every report and the client redact."""
        return [value for record in self.users for value in record_secrets("user", record)]

    def key_values(self) -> list[str]:
        """The LoRaWAN keys of the devices (``cfg:AppKey``...) and of the downlinks' payloads:
        never in a platform message or a report."""
        return [
            value
            for kind_of in ("device", "downlink")
            for record in self.of_kind(kind_of)
            for value in record_secrets(kind_of, record)
        ]


def record_secrets(kind_of: str, record: Record) -> list[str]:
    """The secret values of one record: a user's password, a device's LoRaWAN keys, those
    in a downlink's payload."""
    if kind_of == "user":
        password = record.body.get("password")
        return [str(password)] if password else []
    if kind_of == "downlink":
        return secret_key_values(record.body)
    return [
        str(value)
        for key, value in (record.body.get("initialConfig") or {}).items()
        if is_secret_config_key(key) and value not in (None, "")
    ]


@dataclass(frozen=True)
class Column:
    """A sheet column mapped to a field."""

    field: str
    index: int
    letter: str
    header: str
    identifier: bool
    rule: ColumnRule | None = None
    secret: bool = False
    hex_length: int | None = None  # a hex identifier: read in one form (fields.hex_form)


def map_columns(
    table: SheetRows, spec: TabSpec, required: tuple[str, ...], site: SiteRecords | None = None
) -> tuple[list[Column], list[Problem], list[_Double]]:
    """Which column holds which field; unknown, misspelt, doubled and missing columns.

    Only the header is read: what the rows tell (a column without a header that holds
    data, two columns of one field that differ) is for ``_Double`` and ``_unnamed``
    as the rows pass. With ``site``, the required fields without a column are noted in
    ``site.missing`` and the headers that stop the tab in ``site.bad_headers``.
    """
    problems: list[Problem] = []
    columns: list[Column] = []
    doubles: list[_Double] = []
    seen: dict[str, Column] = {}
    header_row = table.header_row

    def at_header(what: Kind, message: str, letter: str, header: str) -> None:
        problems.append(Problem(what, message, table.sheet, header_row, letter, header, header))

    # Another template's headers, by that template: said once for all of them.
    others: dict[str, list[tuple[str, str, str]]] = {}
    unsent: list[tuple[str, str]] = []  # (letter, header) of the columns not sent, told once

    for j, header in enumerate(table.headers):
        letter = table.columns[j]
        if not header:
            continue  # one that holds data is told when the rows have passed (_unnamed)
        name = spec.field_for(header)
        if name is None:
            if spec.is_unsent(header):
                unsent.append((letter, header))
                continue
            if spec.is_ignored(header):
                continue
            near = spec.near_header(header)
            other = known_headers(spec.section).get(header_key(header))
            if near is not None:
                at_header(
                    MISSPELT_HEADER,
                    f"column '{header}' is not a header of this template: did you mean "
                    f"'{near[1]}' ({near[0]})? Its values are not sent until the header is fixed",
                    letter,
                    header,
                )
            elif other is not None:
                others.setdefault(other[1], []).append((letter, header, other[0]))
            else:
                as_config = (
                    f"; name it {spec.config_prefix}{header.strip()} to send it as that "
                    "initialConfig key"
                    if spec.config_prefix and header_key(header) in HEX_CONFIG_NAMES
                    else ""
                )
                at_header(
                    UNKNOWN_COLUMN,
                    f"column '{header}' is not a field of this template: it is not sent "
                    f"to the platform{as_config}",
                    letter,
                    header,
                )
                continue
            if site is not None:
                site.bad_headers.setdefault(table.sheet, []).append(header)
            continue
        column = Column(
            name,
            j,
            letter,
            header,
            spec.is_identifier(name),
            spec.rule(name),
            spec.is_secret(name),
            spec.hex_length(name),
        )
        if name in seen:
            doubles.append(_Double(seen[name], column, spec))
            continue
        seen[name] = column
        columns.append(column)
    for template, found in others.items():
        letter, header, _ = found[0]
        named = listed([f"'{h}' ({name})" for _, h, name in found])
        renames = listed(
            [
                f"{name}: {' or '.join(repr(a) for a in spec.columns[name][:2])}"
                for _, _, name in found
                if spec.columns.get(name)
            ],
            sep="; ",
        )
        rename = f" or rename {'it' if len(found) == 1 else 'them'} ({renames})" if renames else ""
        at_header(
            OTHER_TEMPLATE_HEADER,
            f"column{'s' if len(found) > 1 else ''} {named} {'are' if len(found) > 1 else 'is'} "
            f"read by the template '{template}', not by this one: use --template {template}"
            f"{rename}",
            letter,
            header,
        )
    if unsent:
        named = ", ".join(f"{h} ({c})" for c, h in unsent)
        them = "them" if len(unsent) > 1 else "it"
        problems.append(
            Problem(
                NOT_SENT,
                f"not sent: the Lobaro platform has no place for {them}: {named}",
                table.sheet,
                header_row,
            )
        )
    for name in required:
        if name not in seen and name not in spec.defaults:
            if site is not None:
                site.missing.setdefault(table.sheet, set()).add(name)
            aliases = ", ".join(f"'{a}'" for a in spec.columns.get(name, (name,)))
            problems.append(
                Problem(
                    MISSING_COLUMN,
                    f"the {table.sheet} tab has no column for {name} (headers: {aliases})",
                    table.sheet,
                    header_row,
                )
            )
    return columns, problems, doubles


def _unnamed(table: SheetRows) -> list[Problem]:
    """After a pass: each column without a header that holds data."""
    return [
        Problem(
            UNNAMED_COLUMN,
            f"column {letter} holds data but has no header; it is not used",
            table.sheet,
            table.header_row,
            letter,
            "",
            "",
        )
        for letter in map(table.letter, table.unnamed)
    ]


class _Double:
    """Two columns of one field: an error in each row where they differ (which of the
    two is meant cannot be known), else, once the rows have passed, a warning that they
    agree. Cells agree when they mean the same value: '53,5' and '53.5', 'a; b' and
    'a, b', a DevEUI in two spellings."""

    def __init__(self, first: Column, second: Column, spec: TabSpec) -> None:
        self.first, self.second = first, second
        self.spec = spec
        self.differ = False

    def same_form(self, text: str) -> Any:
        text = text.strip()
        length = self.first.hex_length
        known = self.spec.field(self.first.field)
        if length:
            return hex_form(text, length)
        if known is not None and known.kind == "list":
            return split_list(text, self.spec.list_separators)
        if known is not None and known.parse is not None and text:
            value = known.parse(text)
            return text if value is None else value
        return text

    def check(self, table: Table) -> list[Problem]:
        """The rows of ``table`` where the two differ."""
        first, second = self.first, self.second
        differ: list[Problem] = []
        for i, values in enumerate(table.rows):
            a, b = values[first.index], values[second.index]
            if a == b or self.same_form(a) == self.same_form(b):
                continue
            shown_a, shown_b = (MASK, MASK) if first.secret else (a.strip(), b.strip())
            differ.append(
                Problem(
                    DOUBLE_COLUMN,
                    f"columns {first.letter} ('{first.header}') and {second.letter} "
                    f"('{second.header}') both hold {first.field} and differ here: "
                    f"'{shown_a}' and '{shown_b}'",
                    table.sheet,
                    table.row_numbers[i],
                    second.letter,
                    second.header,
                    shown_b,
                )
            )
        self.differ = self.differ or bool(differ)
        return differ

    def agreed(self, table: SheetRows) -> list[Problem]:
        """After a pass: the warning that the two agree in every row, if they do."""
        if self.differ:
            return []
        first, second = self.first, self.second
        return [
            Problem(
                SAME_COLUMN_TWICE,
                f"columns {first.letter} ('{first.header}') and {second.letter} "
                f"('{second.header}') both hold {first.field} and agree in every row; "
                f"column {first.letter} is used",
                table.sheet,
                table.header_row,
                second.letter,
                second.header,
                second.header,
            )
        ]


# Rows are read, mapped and handed on this many at a time: each block's cells are
# converted a column at a time (fast), and only a block is held.
BLOCK = 4096


@dataclass
class RecordBlock:
    """Rows of one tab as records, and the problems met reading them (in row order).

    ``kind`` is "device", "user" or "downlink".
    """

    kind: str
    records: list[Record]
    problems: list[Problem]


class RecordStream:
    """The workbook's Devices, Users and Downlinks tabs as records, a block of rows at a
    time: iterating gives ``RecordBlock``s, the devices' first, then the users' and the
    downlinks'. Only the block at hand is held. ``tab`` (``--tab``) names the devices tab
    (see ``devices_tab``); iterating raises SheetError when it is no tab of the workbook,
    or when several tabs could hold the devices and none is named.

    ``site`` holds what is not a row's: the tabs, their secret columns, missing
    columns and headers that stop them, and in ``problems`` those of the tabs and the
    file. A tab's are there before its first block (its header is read first), and
    what its rows tell as a whole (notices, columns without a header that hold data,
    two columns that agree) when its last block has passed; the workbook's (hidden
    rows, columns and tabs; a CSV's encoding) at the end. It is iterated once.
    ``cell_by_cell`` reads every device row the slow way (tests hold the two ways equal).
    """

    def __init__(
        self,
        workbook: Workbook,
        template: SiteTemplate,
        *,
        tab: str | None = None,
        cell_by_cell: bool = False,
        block: int | None = None,
    ) -> None:
        self.workbook = workbook
        self.template = template
        self.tab = tab
        self.cell_by_cell = cell_by_cell
        self.block = block or BLOCK
        self.site = SiteRecords()

    def __iter__(self) -> Iterator[RecordBlock]:
        workbook, template, site = self.workbook, self.template, self.site
        found = devices_tab(workbook, template, self.tab)
        if found.unclear:
            raise SheetError(found.unclear)
        site.tabs["devices"] = found.tab
        if found.notice:
            site.problems.append(Problem(OTHER_TAB, found.notice, found.tab))
        parts = [("device", found.tab)]
        for part, spec in (("user", template.users), ("downlink", template.downlinks)):
            other = _find_tab(workbook, spec)
            if other is not None and other != found.tab:
                site.tabs[part + "s"] = other
                parts.append((part, other))
        tabs: list[SheetRows] = []
        example = _Beyond(workbook)  # a CSV read in an encoding it was found to be in
        for kind_of, tab in parts:
            rows = workbook.rows(tab)
            tabs.append(rows)
            reader = self._reader(kind_of, rows)
            site.problems += self._known(reader.problems)
            # A cell stored as a number (or TRUE/FALSE) is a problem only in an identifier
            # column (_stored_problem): elsewhere its text is all the reader needs.
            identifiers = {column.index for column in reader.columns if column.identifier}
            for table in rows.blocks(self.block, identifiers):
                if kind_of == "device":
                    example.look(table)
                records, problems = reader.read(table)
                yield RecordBlock(kind_of, records, problems)
            site.problems += reader.finish()
            if kind_of == "device" and tab in site.missing:
                site.problems += _guess_template(workbook, rows, template, self.tab)
        site.problems += _hidden(workbook, tabs)
        site.problems += example.problems(tabs[0])

    def _reader(self, kind_of: str, rows: SheetRows) -> _TabReader:
        if kind_of == "device":
            return _Devices(rows, self.template, self.site, self.cell_by_cell)
        if kind_of == "user":
            return _Users(rows, self.template.users, self.site)
        return _Downlinks(rows, self.template, self.site)

    def _known(self, problems: list[Problem]) -> list[Problem]:
        """The problems of a header but for the outcome columns of a copy this tool wrote
        (results, a report): known, not sent."""
        if self.workbook.template is None:
            return problems
        return [
            p for p in problems if not (p.kind is UNKNOWN_COLUMN and p.header in OUTCOME_HEADERS)
        ]


def read_records(
    workbook: Workbook,
    template: SiteTemplate,
    *,
    tab: str | None = None,
    cell_by_cell: bool = False,
) -> SiteRecords:
    """Map the workbook's Devices, Users and Downlinks tabs to records, every one held;
    the problems of rows in ``problems`` after those of their tab's header.

    ``tab`` (``--tab``) names the devices tab; Users and Downlinks are found by their
    names all the same (see ``devices_tab``). Raises SheetError when ``tab`` is no tab
    of the workbook, or when several tabs could hold the devices and none is named.
    ``cell_by_cell`` reads every device row the slow way (tests hold the two ways equal).
    """
    stream = RecordStream(workbook, template, tab=tab, cell_by_cell=cell_by_cell)
    site = stream.site
    for block in stream:
        site.problems += block.problems
        site.of_kind(block.kind).extend(block.records)
    return site


@dataclass(frozen=True)
class DevicesTab:
    """The tab that holds the devices, and what the installer is told about it.

    ``notice``: the devices were found on another tab than the first that holds a
    table, said once as a warning. ``unclear``: several tabs after the first have the
    template's columns, and the installer must name one (``--tab``); the message of the
    SheetError ``read_records`` raises. ``tab`` is then the first of them: its headers
    are the ones the template choice judges.
    """

    tab: str
    notice: str = ""
    unclear: str = ""


def devices_tab(workbook: Workbook, template: SiteTemplate, given: str | None = None) -> DevicesTab:
    """The tab the template reads devices from.

    ``given`` (``--tab``) names it. Without it: one of the template's names for the
    tab (Devices, Geräte...); else the first tab that holds a table (chart sheets and
    empty tabs are passed over) when its headers have what the template needs (addr
    and the match key); else the one other tab whose headers have it (a vendor's
    workbook with a cover tab before the key list), told in ``notice``; when several
    have it, ``unclear`` asks for --tab; when none has, the first tab with a table,
    whose missing columns are reported as usual.
    """
    if given is not None:
        return DevicesTab(workbook.named_tab(given))
    named = _find_tab(workbook, template.devices)
    if named is not None:
        return DevicesTab(named)
    first = ""
    lacking: tuple[str, ...] = ()
    fitting: list[str] = []
    for tab in workbook.tab_names:
        if not workbook.holds_table(tab):
            continue
        missing = _headers_fit(workbook.rows(tab).headers, template)[2]
        if not first:
            if not missing:
                return DevicesTab(tab)
            first, lacking = tab, missing
        elif not missing:
            fitting.append(tab)
    if not first:
        # No tab holds a table: the first one that is no chart says it is empty.
        grids = [t for t in workbook.tab_names if t not in workbook.chart_tabs]
        if grids:
            workbook.rows(grids[0])
        raise SheetError(
            f"{workbook.path.name}: no tab holds a table (tabs: {workbook.tabs_listed()}): "
            "put the devices' header in the first row of a tab and one device per row below it"
        )
    if len(fitting) > 1:
        listed = ", ".join(f'"{tab}"' for tab in fitting)
        return DevicesTab(
            fitting[0],
            unclear=f'{workbook.path.name}: the first tab, "{first}", '
            f"{_no_columns(template, lacking)}, and the tabs {listed} all have the columns "
            f'this template needs: name the tab that holds the devices with --tab "{fitting[0]}" '
            "(or another of them)",
        )
    if not fitting:
        return DevicesTab(first)
    (tab,) = fitting
    return DevicesTab(
        tab,
        f'the devices are read from the tab "{tab}", the one tab with the columns this '
        f'template needs: the first tab, "{first}", {_no_columns(template, lacking)}; '
        f'--tab "{first}" reads that one instead',
    )


def _no_columns(template: SiteTemplate, missing: tuple[str, ...]) -> str:
    """``has no column for DevEUI`` (each field by its first header in the template)."""
    names = [(template.devices.columns.get(name) or (name,))[0] for name in missing]
    listed = " and ".join(names)
    return f"has no column for {listed}" if len(names) == 1 else f"has no columns for {listed}"


def find_devices_tab(workbook: Workbook, template: SiteTemplate, given: str | None = None) -> str:
    """The name of the tab the template reads devices from (see ``devices_tab``)."""
    return devices_tab(workbook, template, given).tab


@dataclass(frozen=True)
class HeaderFit:
    """How a template reads the headers of a workbook's devices tab.

    ``mapped`` counts the fields its headers give; ``unknown`` are the headers the
    template neither maps nor ignores; ``missing`` the required fields (addr, the
    match key) without a column or a default.
    """

    template: SiteTemplate
    mapped: int
    unknown: tuple[str, ...]
    missing: tuple[str, ...]
    # A peer's template whose signature the headers hold, spelled as that peer writes them.
    signed: bool = False

    @property
    def whole(self) -> bool:
        """Every header means something to the template, and nothing it needs is missing."""
        return not self.unknown and not self.missing


def header_fit(workbook: Workbook, template: SiteTemplate, tab: str | None = None) -> HeaderFit:
    """How ``template`` reads the headers of the workbook's devices tab (``tab``: the
    one --tab names)."""
    headers = workbook.rows(find_devices_tab(workbook, template, tab)).headers
    found, unknown, missing = _headers_fit(headers, template)
    signed = template.peer is not None and template.peer.signed(headers)
    return HeaderFit(template, len(found), unknown, missing, signed)


def _headers_fit(
    headers: list[str], template: SiteTemplate
) -> tuple[set[str], tuple[str, ...], tuple[str, ...]]:
    """The fields the headers give, the headers the template neither maps nor ignores,
    and the required fields without a column or a default (see ``HeaderFit``)."""
    spec = template.devices
    found: set[str] = set()
    unknown: list[str] = []
    for header in headers:
        if not header:
            continue
        name = spec.field_for(header)
        if name is not None:
            found.add(name)
        elif (near := spec.near_header(header)) is not None:
            # A misspelling of this template's header ("AppKy") is this template's column:
            # the template is the one meant, and reading it says what to fix.
            found.add(near[0])
        elif not spec.is_ignored(header):
            unknown.append(header)
    needed = dict.fromkeys((*NEEDED["devices"], template.match_key))
    missing = tuple(n for n in needed if n not in found and n not in spec.defaults)
    return found, tuple(unknown), missing


def built_in_fits(workbook: Workbook, tab: str | None = None) -> list[HeaderFit]:
    """How each built-in template reads the workbook's headers (one that cannot load is left
    out: the command that names it says why); ``tab``: the devices tab --tab names."""
    fits = []
    for name in list_templates():
        try:
            fits.append(header_fit(workbook, load_template(name), tab))
        except TemplateError:
            continue
    return fits


def best_guess(fits: Iterable[HeaderFit], besides: str = "") -> str | None:
    """The built-in template, other than ``besides``, with nothing required missing that
    maps the most headers (one of Lobaro's own before a peer's that maps as many); None
    when there is none."""
    usable = [
        (f.mapped, f.signed or f.template.peer is None, f.template.name)
        for f in fits
        if not f.missing and f.template.name != besides
    ]
    return max(usable)[2] if usable else None


def _guess_template(
    workbook: Workbook, table: SheetRows, template: SiteTemplate, tab: str | None
) -> list[Problem]:
    """When the Devices tab lacks a required column: a built-in template whose headers fit."""
    best = best_guess(built_in_fits(workbook, tab), besides=template.name)
    # Said once: another template's headers may have named it already (OTHER_TEMPLATE_HEADER).
    others = known_headers("devices")
    named = {
        others[key][1]
        for h in table.headers
        if h and template.devices.field_for(h) is None and (key := header_key(h)) in others
    }
    if best is None or best in named:
        return []
    return [
        Problem(
            TEMPLATE_GUESS,
            f"these headers fit the template '{best}': add --template {best}",
            table.sheet,
            table.header_row,
        )
    ]


def _hidden(workbook: Workbook, tables: list[SheetRows]) -> list[Problem]:
    """One warning per tab with hidden rows or columns (``tables`` after a pass), one
    for hidden tabs."""
    problems = []
    for table in tables:
        rows, columns = table.hidden_rows, table.hidden_columns
        if not rows and not columns:
            continue
        parts = []
        if rows:
            shown = listed([str(n) for n in rows])
            parts.append(f"rows {shown}" if len(rows) > 1 else f"row {shown}")
        if columns:
            shown = listed(columns)
            parts.append(f"columns {shown}" if len(columns) > 1 else f"column {shown}")
        problems.append(
            Problem(
                HIDDEN_CELLS,
                f"the {table.sheet} tab hides {' and '.join(parts)}; they are read like the others",
                table.sheet,
            )
        )
    # A hidden tab the template does not read (the blank workbook's Lists) says nothing.
    used = {table.sheet for table in tables}
    for tab in workbook.hidden_tabs:
        if tab in used:
            problems.append(
                Problem(HIDDEN_CELLS, f"the tab {tab} is hidden; it is read like the others", tab)
            )
    return problems


class _Beyond:
    """A CSV that is not UTF-8: one warning that names the encoding it was read in, and
    the first cell beyond ASCII as it reads in that encoding, for the person to check
    (looked for in the header, then in each block of the devices until one is found)."""

    def __init__(self, workbook: Workbook) -> None:
        self.name = workbook.guessed_encoding
        self.example = ""
        self.looked = False

    def look(self, table: Table) -> None:
        if self.name is None or self.example:
            return
        rows: Iterable[tuple[int, list[str]]] = zip(table.row_numbers, table.rows, strict=True)
        if not self.looked:
            self.looked = True
            rows = chain([(table.header_row, table.headers)], rows)
        for number, cells in rows:
            if "".join(cells).isascii():
                continue
            j = next(j for j, cell in enumerate(cells) if not cell.isascii())
            text = cells[j].strip()
            shown = text if len(text) <= 40 else text[:39] + "…"
            # A CSV's: its columns are lettered from A.
            self.example = f"; {column_letter(j)}{number} reads '{shown}'"
            return

    def problems(self, table: SheetRows) -> list[Problem]:
        if self.name is None:
            return []
        if not self.looked:  # a tab without data rows: its header
            self.look(Table(table.sheet, table.header_row, table.headers, table.columns, [], []))
        return [
            Problem(
                CSV_ENCODING,
                f"the file is not UTF-8: read as {self.name}{self.example}. If it should read "
                "otherwise, save the file as CSV UTF-8 (Excel: File > Save As > CSV UTF-8)",
                table.sheet,
            )
        ]


def _find_tab(workbook: Workbook, spec: TabSpec) -> str | None:
    for name in (spec.tab, *spec.tab_aliases):
        tab = workbook.find_tab(name)
        if tab is not None:
            return tab
    return None


@dataclass(slots=True)
class _Noted:
    """One column's cells read in another form: how many, the first as an example, and
    how they were written ("'-'", "in lower case")."""

    column: Column
    count: int
    first: int  # the Excel row number of the example
    typed: str
    read: str
    ways: set[str] = field(default_factory=set)


class _Notices:
    """Cells read in another form than typed: one notice a column, never silent.

    Identifiers in label form or another letter case (``hex``) and numbers Excel
    shows exactly (``number``); each keeps a count and its first cell as example.
    Rows are noted by their Excel number, a block of the tab at a time.
    """

    def __init__(self, table: SheetRows, case: str) -> None:
        self.table = table
        self.case = case
        self.seen: dict[tuple[str, str], _Noted] = {}  # (kind, column letter) -> what

    def _note(
        self, what: str, column: Column, row: int, typed: str, read: str, n: int = 1
    ) -> _Noted:
        noted = self.seen.get((what, column.letter))
        if noted is None:
            noted = self.seen[(what, column.letter)] = _Noted(column, 0, row, typed, read)
        elif row < noted.first:
            noted.first, noted.typed, noted.read = row, typed, read
        noted.count += n
        return noted

    def number(self, column: Column, row: int, text: str) -> None:
        self._note("number", column, row, text, text)

    def hex(self, column: Column, texts: list[str], rows: list[int]) -> list[str]:
        """A block's texts of the column (``rows``: their Excel numbers) with each hex
        identifier in its one form; changes noted."""
        length = column.hex_length
        if length is None:
            return texts
        forms = {t: hex_form(t, length, self.case) for t in set(texts) if t}
        changed = {t: form for t, form in forms.items() if form != t}
        if not changed:
            return texts
        at = [i for i, t in enumerate(texts) if t in changed]
        first = texts[at[0]]
        noted = self._note("hex", column, rows[at[0]], first, changed[first], len(at))
        for text in changed:
            noted.ways |= _how_written(text, self.case)
        return [changed.get(t, t) for t in texts]

    def config(self, column: Column, row: int, config: dict[str, Any]) -> dict[str, Any]:
        """A config cell's JSON with its hex keys (JoinEUI, AppKey) in their one form."""
        fixed = dict(config)
        for key, value in config.items():
            length = HEX_CONFIG_KEYS.get(str(key).strip().casefold())
            if (
                length
                and isinstance(value, str)
                and (form := hex_form(value, length, self.case)) != value
            ):
                fixed[key] = form
                typed = value
                if is_secret_config_key(key):  # an AppKey is named, never shown
                    value, form = MASK, MASK
                self._note("hex", column, row, value, form).ways |= _how_written(typed, self.case)
        return fixed

    def problems(self) -> list[Problem]:
        found = []
        for (what, _), noted in sorted(self.seen.items(), key=lambda item: item[1].column.index):
            column, count, first, typed, read = (
                noted.column,
                noted.count,
                noted.first,
                noted.typed,
                noted.read,
            )
            cell = f"{column.letter}{first}"
            several = count > 1
            cells = f"{count} cell{'s' if several else ''} of {column.header}"
            if what == "number":
                example = "" if column.secret else f" (first: {cell} {typed})"
                message = (
                    f"{cells} stored as {'numbers are' if several else 'a number is'} read as "
                    f"the digits shown{example}"
                )
                kind_of = ID_NUMBER_READ
            else:
                how = _written(noted.ways)
                case = "upper" if self.case == "upper" else "lower"
                example = "" if column.secret else f" (first: {cell} '{typed}' as '{read}')"
                message = (
                    f"{cells} written {how} {'are' if several else 'is'} read as "
                    f"{column.hex_length or 'their'} hex digits and "
                    f"sent in {case} case without separators{example}"
                )
                kind_of = ID_REWRITTEN
            found.append(_column_notice(self.table, kind_of, message, column))
        return found


def _column_notice(table: SheetRows | Table, what: Kind, message: str, column: Column) -> Problem:
    """A problem said once for a column, at its header cell."""
    return Problem(
        what, message, table.sheet, table.header_row, column.letter, column.header, column.header
    )


# initialConfig keys (compared without case) that a QR code's JoinEUI and profile ID fill.
_JOIN_KEYS = ("joineui", "appeui")
_PROFILE_KEYS = ("profileid",)
# A cell that starts so is meant as a LoRaWAN QR code (fields.is_qr), found at C speed.
_QR_START = operator.methodcaller("startswith", QR_STARTS)


class _QrCodes:
    """Scanned LoRaWAN QR codes (``fields.read_qr``) in a tab's DevEUI column.

    Each code is read as its DevEUI; on the Devices tab its JoinEUI, serial number and
    profile ID fill what the row has not (``fill``). One notice a column; a code that
    cannot be read is an error at its cell (``wrong``, reported where the row is read
    cell by cell). The JoinEUI goes to the initialConfig key of the sheet's or the
    template's JoinEUI column (``cfg:AppEUI`` gives AppEUI), else JoinEUI; the profile
    ID only to a ``cfg:ProfileID`` column's key: nothing on the platform reads it else.
    """

    def __init__(
        self,
        table: SheetRows,
        case: str,
        columns: Iterable[Column] = (),
        spec: TabSpec | None = None,
    ) -> None:
        self.table = table
        self.case = case
        # The block at hand's (``block``): row index -> its code, what is wrong with it.
        self.codes: dict[int, DeviceQr] = {}
        self.wrong: dict[int, str] = {}
        # Column letter -> the column, its codes read, the first one's row and DevEUI.
        self.read: dict[str, tuple[Column, int, int, str]] = {}
        names = [c.field for c in columns] + list(spec.columns if spec is not None else ())
        self.join_key = _config_key(names, _JOIN_KEYS) or "JoinEUI"
        self.profile_key = _config_key(names, _PROFILE_KEYS)
        self.filled: set[str] = set()  # what the codes filled: JoinEUI, serial, profile

    def block(self) -> None:
        """The next block of rows: the codes are theirs."""
        self.codes, self.wrong = {}, {}

    @staticmethod
    def reads(column: Column) -> bool:
        """Whether the column holds a DevEUI a scanner may have typed a QR code into."""
        return column.hex_length == EUI_DIGITS and column.field in ("addr", "key")

    def scan(self, column: Column, texts: list[str], rows: list[int]) -> list[str]:
        """A block's texts of the column (``rows``: their Excel numbers) with each QR code
        that reads as its DevEUI (in the template's case); the codes that do not read
        are noted in ``wrong``."""
        joined = "".join(texts)  # a look at the whole column first, at C speed
        if ":" not in joined or "LW:" not in joined.upper():
            return texts
        found = list(compress(range(len(texts)), map(_QR_START, texts)))
        if not found:
            return texts
        texts = list(texts)
        read: list[int] = []
        for i in found:
            code = read_qr(texts[i])
            if isinstance(code, str):
                self.wrong[i] = code
                continue
            self.codes[i] = code
            texts[i] = hex_form(code.dev_eui, EUI_DIGITS, self.case)
            read.append(i)
        if read:
            known = self.read.get(column.letter)
            if known is None:
                first = hex_form(self.codes[read[0]].dev_eui, EUI_DIGITS, self.case)
                self.read[column.letter] = (column, len(read), rows[read[0]], first)
            else:
                self.read[column.letter] = (column, known[1] + len(read), *known[2:])
        return texts

    def problem(self, i: int, column: Column, text: str, row: _Row) -> bool:
        """Report the row's code that does not read, if it has one (True)."""
        wrong = self.wrong.get(i) if self.reads(column) else None
        if wrong is None:
            return False
        row.problem(BAD_QR, wrong, column, shown_qr(text))
        return True

    def fill(self, i: int, body: dict[str, Any], config: dict[str, Any]) -> None:
        """What the row's code holds and the row has not: its serial number (``body``),
        its JoinEUI and profile ID (the row's own initialConfig keys, ``config``)."""
        code = self.codes.get(i)
        if code is None:
            return
        if code.serial and "serial" not in body:
            body["serial"] = code.serial
            self.filled.add("serial")
        keys = [str(k).strip().casefold() for k in config]
        if not any(k in _JOIN_KEYS for k in keys):
            config[self.join_key] = hex_form(code.join_eui, EUI_DIGITS, self.case)
            self.filled.add("join")
        if self.profile_key and not any(k in _PROFILE_KEYS for k in keys):
            config[self.profile_key] = code.profile_id
            self.filled.add("profile")

    def problems(self) -> list[Problem]:
        """One notice for each column that held codes read."""
        found = []
        named = {
            "join": f"JoinEUI ({CONFIG_PREFIX}{self.join_key})",
            "serial": "serial number",
            "profile": f"profile ID ({CONFIG_PREFIX}{self.profile_key})",
        }
        filled = [words for part, words in named.items() if part in self.filled]
        what = " and ".join([", ".join(filled[:-1]), filled[-1]] if len(filled) > 1 else filled)
        fills = f"; its {what} fill the rows that have none of their own" if filled else ""
        for column, count, first, dev_eui in self.read.values():
            holds = "holds" if count == 1 else "hold"
            message = (
                f"{counted(count, 'cell')} of {column.header} {holds} a scanned LoRaWAN QR code, "
                f"read as its DevEUI{fills} (first: {column.letter}{first}, DevEUI {dev_eui})"
            )
            found.append(_column_notice(self.table, ID_FROM_QR, message, column))
        return found


def _config_key(names: Iterable[str], keys: tuple[str, ...]) -> str:
    """The initialConfig key of the first ``cfg:<key>`` field among ``names`` whose key is
    one of ``keys`` (compared without case), or ""."""
    for name in names:
        key = name[len(CONFIG_PREFIX) :] if name.startswith(CONFIG_PREFIX) else ""
        if key and key.strip().casefold() in keys:
            return key.strip()
    return ""


def _how_written(text: str, case: str) -> frozenset[str]:
    """How a hex identifier differs from its one form: "'-'", "spaces", "in lower case"..."""
    how = {f"'{sep}'" for sep in "-:" if sep in text}
    if any(c.isspace() for c in text):
        how.add("spaces")
    lower, upper = any(c.islower() for c in text), any(c.isupper() for c in text)
    if lower and upper:
        how.add("in mixed case")
    elif lower and case == "upper":
        how.add("in lower case")
    elif upper and case == "lower":
        how.add("in upper case")
    return frozenset(how)


def _written(ways: set[str]) -> str:
    """ "with '-', ':', spaces or in lower case": the separators first, then the case."""
    words = sorted(ways, key=lambda w: (w.startswith("in "), w.startswith("spaces"), w))
    if not words[0].startswith("in "):
        words[0] = f"with {words[0]}"
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


class _Row:
    """Collects the problems of one row while its cells are converted."""

    __slots__ = ("i", "problems", "table")

    def __init__(self, table: Table, problems: list[Problem]) -> None:
        self.table = table
        self.problems = problems
        self.i = 0

    def problem(self, what: Kind, message: str, column: Column, value: str | None) -> None:
        self.problems.append(
            Problem(
                what,
                message,
                self.table.sheet,
                self.table.row_numbers[self.i],
                column.letter,
                column.header,
                value,
            )
        )


def _cell_text(table: Table, i: int, column: Column, row: _Row) -> str | None:
    """The cell's trimmed text, or None when the cell is damaged (a problem is recorded)."""
    text = table.rows[i][column.index].strip()
    stored = table.stored.get((i, column.index)) if table.stored else None
    shown = MASK if column.secret and text else text
    if stored is not None:
        how, detail = stored
        exact = how == "number" and _shown_exactly(table, text, detail)
        # Shown as held (a whole number in a DataFrame): how it shows says nothing more.
        shows = "" if text == detail else f" and Excel shows '{shown}'"
        if column.secret:
            detail = MASK  # a LoRaWAN key stored as a number or a formula: not in any message
        if how == "formula":
            row.problem(FORMULA, f"the formula {detail} has no computed value", column, detail)
            return None
        if how == "error":
            row.problem(CELL_ERROR, f"the cell shows the error {detail}", column, shown)
            return None
        if how == "date" and column.field not in LOCATION_FIELDS:
            row.problem(
                DATE_TEXT, f"{column.header} holds the date {detail}, not text", column, shown
            )
            return None
        if how == "number" and column.identifier and not exact:
            row.problem(
                NUMBER_ID,
                f"{column.header} is stored as the number {detail}{shows}",
                column,
                shown,
            )
            return None
    if column.identifier and text and NUMBER_LIKE.fullmatch(text):
        damage = _number_damage(column, text)
        if damage is not None:
            row.problem(*damage, column, shown)
            return None
    return text


def _shown_exactly(table: Table, text: str, detail: str) -> bool:
    """Whether a number stored in an identifier cell is shown with all its digits (a
    whole number of at most 15 digits, as Excel keeps them), so the digits are safe; not
    in a workbook with a format that pads numbers with zeros (00123456 shows as such)."""
    return (
        not table.numbers_padded
        and detail.isdigit()
        and len(detail) <= 15
        and text.strip() == detail
    )


def _stored_problem(column: Column, how: str) -> bool:
    """Whether a cell stored as something other than text can be a problem for its
    column (the same judgement as _cell_text): a number in deviceTypeId is what users
    type; one in an identifier column is, unless Excel shows it exactly."""
    if how in ("formula", "error"):
        return True
    if how == "date":
        return column.field not in LOCATION_FIELDS
    return how == "number" and column.identifier


def _damaged_rows(table: Table, columns: list[Column], notices: _Notices | None = None) -> set[int]:
    """The rows with a cell whose stored form is a problem: these go the slow way.
    Numbers shown exactly in identifier columns are read as their digits (noted)."""
    if not table.stored:
        return set()
    # Per column the stored kinds that are a problem there (_stored_problem), so that
    # the hundreds of thousands of numbers a typed sheet stores cost one lookup each.
    kinds = {
        c.index: frozenset(how for how in _STORED_KINDS if _stored_problem(c, how)) for c in columns
    }
    by_index = {c.index: c for c in columns}
    none: frozenset[str] = frozenset()
    found = [
        (i, j, how, detail)
        for (i, j), (how, detail) in table.stored.items()
        if how in kinds.get(j, none)
    ]
    damaged = set()
    rows = table.rows
    for i, j, how, detail in found:
        if how == "number" and _shown_exactly(table, rows[i][j], detail):
            column, text = by_index[j], rows[i][j].strip()
            # Noted when the digits are what the column wants; else its rule says what is wrong.
            fits = column.rule is None or _rule_breach(column.rule, column.header, text) is None
            if notices is not None and fits:
                notices.number(column, table.row_numbers[i], text)
            continue
        damaged.add(i)
    return damaged


_STORED_KINDS = ("number", "date", "bool", "formula", "error")


def _number_damage(column: Column, text: str) -> tuple[Kind, str] | None:
    """The problem of a number-like identifier that was once stored as a number.

    A cell that passes its column's own rule (16 hex digits) is never damage.
    """
    if column.rule is not None and _rule_breach(column.rule, column.header, text) is None:
        return None
    header, quoted = column.header, MASK if column.secret else text
    if SCIENTIFIC.fullmatch(text):
        return SCIENTIFIC_ID, f"{header} '{quoted}' is in E+ notation; its digits are lost"
    if DECIMAL_ZERO.fullmatch(text):
        return DECIMAL_ID, f"{header} '{quoted}' ends in a decimal part"
    return None


def _check_rule(column: Column, text: str, row: _Row) -> bool:
    """Whether the cell keeps its column's rule; a problem is recorded when not."""
    if column.rule is None:
        return True
    shown = MASK if column.secret else text
    breach = _rule_breach(column.rule, column.header, text, shown)
    if breach is not None:
        row.problem(*breach, column, shown)
    return breach is None


def _rule_breach(
    rule: ColumnRule, header: str, text: str, shown: str | None = None
) -> tuple[Kind, str] | None:
    """The kind and message of the problem when ``text`` breaks the column's rule.

    ``shown`` is how the message names the text (masked for a secret).
    """
    quoted = text if shown is None else shown
    hint = f" ({rule.hint})" if rule.hint else ""
    for length, alphabet, name in (
        (rule.hex_length, HEX, "hex digits"),
        (rule.digits, DIGITS, "digits"),
    ):
        if length is None:
            continue
        if alphabet.fullmatch(text) and len(text) < length and text[0] != "0":
            missing = length - len(text)
            return (
                LOST_ZERO,
                f"{header} '{quoted}' has {len(text)} {name}, not {length}: "
                f"{missing} leading zero{'s' if missing > 1 else ''} probably lost{hint}",
            )
        if alphabet is HEX and (letters := lookalike_letters(text, length)):
            several = len(letters) > 1
            where = " and ".join(f"'{c}' at character {at}" for at, c in letters)
            digits = " and ".join(LOOKALIKES[c] for _, c in letters)
            return (
                BAD_ID,
                f"{header} '{quoted}': the letter{'s' if several else ''} {where} should be "
                f"the digit{'s' if several else ''} {digits}{hint}",
            )
        if not alphabet.fullmatch(text) or len(text) != length:
            return BAD_ID, f"{header} '{quoted}' must be exactly {length} {name}{hint}"
    if rule.pattern is not None and not rule.pattern.fullmatch(text):
        return BAD_ID, f"{header} '{quoted}' does not have the expected form{hint}"
    return None


class _TabReader:
    """A tab's rows to records, a block at a time. ``problems`` are those of its header
    (found on construction); ``read(block)`` gives a block's records and the problems of
    its rows, in row order; ``finish()``, after the last block, what the rows tell as a
    whole."""

    def __init__(self, rows: SheetRows) -> None:
        self.rows = rows
        self.columns: list[Column] = []
        self.problems: list[Problem] = []
        self.doubles: list[_Double] = []

    def read(self, table: Table) -> tuple[list[Record], list[Problem]]:
        raise NotImplementedError

    def finish(self) -> list[Problem]:
        return [*_unnamed(self.rows), *(p for d in self.doubles for p in d.agreed(self.rows))]

    def _differ(self, table: Table) -> list[Problem]:
        """The block's rows where two columns of one field differ: their first problems."""
        return [p for double in self.doubles for p in double.check(table)]


class _Devices(_TabReader):
    def __init__(
        self, rows: SheetRows, template: SiteTemplate, site: SiteRecords, cell_by_cell: bool
    ) -> None:
        super().__init__(rows)
        spec = self.spec = template.devices
        self.template = template
        self.cell_by_cell = cell_by_cell
        required = tuple(dict.fromkeys((*NEEDED["devices"], template.match_key)))
        self.columns, self.problems, self.doubles = map_columns(rows, spec, required, site)
        # LoRaWAN key columns (cfg:AppKey...) are masked in messages and blanked in the
        # report copies of the sheet, as the users' passwords are; so are the keys of a
        # peer's columns that are not sent (an ABP session's app_s_key, ChirpStack's
        # gen_app_key).
        secret = [column.letter for column in self.columns if column.secret] + [
            letter
            for header, letter in zip(rows.headers, rows.columns, strict=False)
            if header and spec.is_unsent(header) and is_secret_header(header)
        ]
        if secret:
            site.secret_columns[rows.sheet] = secret
        self.bodies = _DeviceBodies(spec, template.site_tag)
        self.parsers = _device_parsers(spec)
        self.not_converted = {
            name: found.not_converted
            for name in self.parsers
            if (found := spec.field(name)) is not None and found.not_converted is not None
        }
        self.cells = {c.field: c.letter for c in self.columns}
        self.headers = {c.field: c.header for c in self.columns}
        self.notices = _Notices(rows, template.hex_case)
        self.codes = _QrCodes(rows, template.hex_case, self.columns, spec)

    def finish(self) -> list[Problem]:
        return [*super().finish(), *self.notices.problems(), *self.codes.problems()]

    def read(self, table: Table) -> tuple[list[Record], list[Problem]]:
        template, spec, columns = self.template, self.spec, self.columns
        match_key, cell_by_cell, bodies = template.match_key, self.cell_by_cell, self.bodies
        parsers, not_converted, notices = self.parsers, self.not_converted, self.notices
        cells, headers, codes = self.cells, self.headers, self.codes
        codes.block()
        peer_cells = _PeerCells.of(table, spec, columns, template)
        problems = self._differ(table)
        records: list[Record] = []
        damaged = _damaged_rows(table, columns, notices)
        row = _Row(table, problems)

        def no_key(i: int) -> Problem:
            return Problem(
                NO_KEY,
                f"the row has no {match_key}, which the template matches devices by",
                table.sheet,
                table.row_numbers[i],
                cells.get(match_key),
                headers.get(match_key),
                "",
            )

        def unconverted(column: Column, text: str) -> tuple[Kind, str]:
            what, message = not_converted[column.field]
            return what, message.format(header=column.header, text=text)

        def read_row(i: int) -> Record:
            """One row cell by cell, with a problem for each cell that is not right."""
            row.i = i
            before = len(problems)
            values = table.rows[i]
            body: dict[str, Any] = {}
            location: dict[str, float] = {}
            config: dict[str, Any] = {}
            tags: list[str] = []
            for column in columns:
                name = column.field
                if i in damaged or column.identifier:
                    text = _cell_text(table, i, column, row)
                else:
                    text = values[column.index].strip()
                if not text or codes.problem(i, column, text, row):
                    continue
                if column.hex_length:
                    text = hex_form(text, column.hex_length, template.hex_case)
                if name.startswith(CONFIG_PREFIX):
                    if _check_rule(column, text, row):
                        config[name[len(CONFIG_PREFIX) :]] = text
                    continue
                parse = parsers.get(name)
                if parse is None:  # plain text fields
                    if _check_rule(column, text, row):
                        body[name] = text
                    continue
                value = parse(text)
                if value is None:
                    row.problem(*unconverted(column, text), column, text)
                    continue
                if name in LOCATION_FIELDS:
                    location[name] = value
                elif name == "tags":
                    tags = value
                elif name == "config":
                    config = {**notices.config(column, table.row_numbers[i], value), **config}
                else:
                    body[name] = value
            if len(location) == 1:
                given = next(iter(location))
                other = next(
                    (c for c in columns if c.field in LOCATION_FIELDS and c.field != given), None
                )
                # Only when the other cell is empty: a cell that did not convert is reported already.
                if other is None or not values[other.index].strip():
                    column = next(c for c in columns if c.field == given)
                    row.problem(
                        HALF_LOCATION,
                        "only one of latitude and longitude is filled",
                        column,
                        values[column.index].strip(),
                    )
            codes.fill(i, body, config)
            if peer_cells is not None:
                peer_cells.check(i, row)
                if len(problems) == before:
                    config, unclear = peer_cells.choose(i, config)
                    if unclear is not None:
                        row.problem(KEYS_UNCLEAR, unclear[1], unclear[0], MASK)
            body, defaulted = bodies.body(
                body, location or None, config, bodies.tags(tags), bool(tags)
            )
            key = str(body.get(match_key, ""))
            # Without the match key's column, the tab's one missing-column problem says it all.
            if not key and before == len(problems) and match_key in cells:
                # Rows are matched to platform devices by this key: without it, nothing can be checked.
                problems.append(no_key(i))
            record = Record(table.sheet, table.row_numbers[i], key, body, cells, headers)
            record.valid = len(problems) == before
            record.defaulted = defaulted
            return record

        # A sheet has thousands of rows and nearly all are clean, so the cells are read a
        # column at a time. A row with a cell that would give a problem (not stored as text,
        # an identifier in E+ notation or ending in .0 or breaking its rule, a value that does
        # not convert, a config cell, half a location) is marked slow and read by read_row,
        # which reports each problem; a clean row gives the same body without. The two
        # commonest problems of a sheet of many bad rows are said here as read_row says
        # them, the row staying on this path: a plain field's text that does not convert
        # (the row's value left out, as there: a template default may fill it) and no
        # match key.
        count = len(table.rows)
        # Without a match key column every row lacks its key.
        slow = set(damaged) if match_key in cells and not cell_by_cell else set(range(count))
        if peer_cells is not None:
            slow.update(peer_cells.problem_rows())
        wrong: dict[int, list[tuple[Column, str]]] = {}  # per row: the cells not converted
        plain: list[tuple[str, list[Any]]] = []
        location: list[tuple[str, list[Any]]] = []
        config: list[tuple[str, list[Any]]] = []
        tags: Iterable[list[str]] = repeat(bodies.fixed_tags, count)
        own_tags: Iterable[bool] = repeat(False, count)  # whether the row has tags of its own
        for column in columns:
            name = column.field
            texts = list(map(str.strip, map(operator.itemgetter(column.index), table.rows)))
            if codes.reads(column):
                texts = codes.scan(column, texts, table.row_numbers)
                slow.update(codes.wrong)
            texts = notices.hex(column, texts, table.row_numbers)
            if column.identifier:
                slow.update(
                    i
                    for i in compress(range(count), map(NUMBER_LIKE.fullmatch, texts))
                    if _number_damage(column, texts[i]) is not None
                )
            if name == "tags":
                # Tag cells repeat from row to row: each distinct one is split once.
                split = {text: split_list(text, spec.list_separators) for text in set(texts)}
                merged = {text: bodies.tags(own) for text, own in split.items()}
                tags = [merged[text] for text in texts]
                own_tags = [bool(split[text]) for text in texts]
                continue
            if name == "config":  # rare, and its JSON can fail in many ways
                slow.update(i for i, text in enumerate(texts) if text)
                continue
            parse = parsers.get(name)
            if parse is None:
                values: list[Any] = [text or None for text in texts]
                rule = column.rule
                if rule is not None:
                    # Each distinct text is checked once: the same rule, the same answer.
                    breaks = {
                        text
                        for text in set(texts)
                        if text and _rule_breach(rule, column.header, text) is not None
                    }
                    if breaks:
                        slow.update(compress(range(count), map(breaks.__contains__, texts)))
            else:
                # Numbers and yes/no repeat too: each distinct text is converted once.
                parsed = {text: parse(text) if text else None for text in set(texts)}
                values = list(map(parsed.__getitem__, texts))
                failed = {text for text, value in parsed.items() if text and value is None}
                if failed:
                    rows = compress(range(count), map(failed.__contains__, texts))
                    if peer_cells is not None or not _plain_parse(column, name, codes):
                        slow.update(rows)
                    else:
                        for i in rows:
                            wrong.setdefault(i, []).append((column, texts[i]))
            if name in LOCATION_FIELDS:
                location.append((name, values))
            elif name.startswith(CONFIG_PREFIX):
                config.append((name[len(CONFIG_PREFIX) :], values))
            else:
                plain.append((name, values))
        # A fast row has both lat and lon or neither: half a location goes the slow way.
        locations: Iterable[dict[str, float] | None] = repeat(None, count)
        if len(location) == 2:
            (first, firsts), (second, seconds) = location
            pairs = list(zip(firsts, seconds, strict=True))
            slow.update(i for i, (a, b) in enumerate(pairs) if (a is None) != (b is None))
            locations = [None if a is None else {first: a, second: b} for a, b in pairs]
        elif location:
            slow.update(i for i, value in enumerate(location[0][1]) if value is not None)

        names = [name for name, _ in plain]
        config_keys = [key for key, _ in config]
        append, sheet, make = records.append, table.sheet, bodies.body  # once per row
        fill = codes.fill if codes.codes else None  # the rows of QR codes fill what they lack
        for i, number, given, where, settings, row_tags, own in zip(
            range(count),
            table.row_numbers,
            _by_row(plain, count),
            locations,
            _by_row(config, count),
            tags,
            own_tags,
            strict=True,
        ):
            if i in slow:
                append(read_row(i))
                continue
            # Most rows fill every cell: their values are a dict at once.
            if None in given:
                body = {
                    n: value for n, value in zip(names, given, strict=True) if value is not None
                }
            else:
                body = dict(zip(names, given, strict=True))
            own_config = (
                {k: v for k, v in zip(config_keys, settings, strict=True) if v is not None}
                if settings
                else {}
            )
            if fill is not None:
                fill(i, body, own_config)
            if peer_cells is not None:
                own_config, unclear = peer_cells.choose(i, own_config)
                if unclear is not None:  # said by the cell-by-cell reading, at its cell
                    append(read_row(i))
                    continue
            body, defaulted = make(body, where, own_config, row_tags, own)
            record = Record(sheet, number, str(body.get(match_key, "")), body, cells, headers)
            record.defaulted = defaulted
            if i in wrong:
                row.i = i
                for column, text in wrong[i]:
                    row.problem(*unconverted(column, text), column, text)
                record.valid = False
            elif not record.key:
                problems.append(no_key(i))
                record.valid = False
            append(record)
        return records, problems


def _plain_parse(column: Column, name: str, codes: _QrCodes) -> bool:
    """Whether a cell of this column that does not convert is said on the fast path: a
    field of the body's own (not the location's two, whose other half decides more),
    read as its text (no identifier, hex or QR code reading)."""
    return not (
        name in LOCATION_FIELDS
        or name.startswith(CONFIG_PREFIX)
        or column.identifier
        or column.hex_length
        or codes.reads(column)
    )


def is_secret_header(header: str) -> bool:
    """Whether a header names a LoRaWAN key however a peer spells it (app_s_key, NwkSKey)."""
    return is_secret_config_key(header_key(header))


class _PeerCells:
    """What a peer's device file says beyond the fields it maps: columns whose filled
    cells the template refuses (an ABP session), and the AppKey chosen by the device's
    LoRaWAN version where the peer keeps a 1.0.x device's AppKey in another key field
    (ChirpStack's nwk_key). One reading for both ways of reading rows."""

    def __init__(self, table: Table, spec: TabSpec, columns: list[Column], peer: str) -> None:
        self.table = table
        self.peer = peer
        self.refused: list[tuple[Column, Refusal]] = []
        self.version: Column | None = None
        for j, header in enumerate(table.headers):
            if not header or spec.field_for(header) is not None:
                continue
            column = Column("", j, table.columns[j], header, False, secret=is_secret_header(header))
            refusal = spec.refusal(header)
            if refusal is not None:
                self.refused.append((column, refusal))
            elif self.version is None and spec.is_version(header):
                self.version = column
        self.keys = spec.root_keys
        by_field = {c.field: c for c in columns}
        self.app = by_field.get(CONFIG_PREFIX + "AppKey")
        self.other = by_field.get(self.keys.app_key_1_0) if self.keys is not None else None
        self.version_header = self.keys.version[0] if self.keys and self.keys.version else ""

    @classmethod
    def of(
        cls, table: Table, spec: TabSpec, columns: list[Column], template: SiteTemplate
    ) -> _PeerCells | None:
        """The reading for ``table``; None when the template refuses nothing and keeps its
        keys where their names say (every template but a peer's)."""
        if not spec.refusals and spec.root_keys is None:
            return None
        peer = template.peer.name if template.peer is not None else "the file's platform"
        return cls(table, spec, columns, peer)

    def _refused(self, i: int) -> Iterator[tuple[Column, Refusal, str]]:
        values = self.table.rows[i]
        for column, refusal in self.refused:
            text = values[column.index].strip()
            if text and not (refusal.allow is not None and refusal.allow.fullmatch(text)):
                yield column, refusal, text

    def _version_text(self, i: int) -> str:
        return self.table.rows[i][self.version.index].strip() if self.version else ""

    def problem_rows(self) -> set[int]:
        """The rows with a refused cell or a version that is none: read cell by cell."""
        rows = {i for i in range(len(self.table.rows)) if next(self._refused(i), None)}
        if self.version is not None:
            texts = {self._version_text(i) for i in range(len(self.table.rows))}
            bad = {t for t in texts if t and lorawan_version(t) is None}
            if bad:
                rows.update(i for i in range(len(self.table.rows)) if self._version_text(i) in bad)
        return rows

    def check(self, i: int, row: _Row) -> None:
        """The problems of row ``i``'s refused cells and its version cell."""
        for column, refusal, text in self._refused(i):
            if refusal.allow is None:  # a filled cell: the same words on every row
                row.problem(
                    REFUSED_CELL, f"{column.header} is filled: {refusal.reason}", column, None
                )
            else:
                shown = MASK if column.secret else text
                row.problem(
                    REFUSED_CELL, f"{column.header} '{shown}': {refusal.reason}", column, shown
                )
        text = self._version_text(i)
        if self.version is not None and text and lorawan_version(text) is None:
            row.problem(
                NOT_VERSION,
                f"{self.version.header} '{text}' is not a LoRaWAN version: 1.0.x or 1.1.x",
                self.version,
                text,
            )

    def choose(
        self, i: int, config: dict[str, Any]
    ) -> tuple[dict[str, Any], tuple[Column, str] | None]:
        """Row ``i``'s initialConfig with its AppKey where the device's LoRaWAN version puts
        it, or the column and words of why that cannot be told. A key of all zeros is no
        key (ChirpStack's API answers an unset key so)."""
        keys = self.keys
        if keys is None:
            return config, None
        other_key = keys.app_key_1_0[len(CONFIG_PREFIX) :]
        app, other = config.get("AppKey"), config.get(other_key)
        app = None if _unset_key(app) else app
        other = None if _unset_key(other) else other
        chosen = {k: v for k, v in config.items() if k not in ("AppKey", other_key)}
        version = lorawan_version(self._version_text(i))
        if version == "1.1" or (app is not None and self.other is None):
            # 1.1.x: each key is what its name says; a file of one key column: its AppKey.
            chosen.update({k: v for k, v in (("AppKey", app), (other_key, other)) if v})
            return chosen, None
        if other is not None and (app is None or (version == "1.0" and app == other)):
            chosen["AppKey"] = other  # a LoRaWAN 1.0.x device
            return chosen, None
        if app is None:
            return chosen, None
        # Here the file has the 1.0.x key's column (a file without it took app_key above).
        assert self.other is not None
        at = self.app or self.other  # the AppKey may come from a config cell's JSON
        peer, key_1_0, app_header = self.peer, self.other.header, at.header
        if other is None:
            why = (
                f"{app_header} holds a key and {key_1_0} is empty: {peer} keeps a LoRaWAN "
                f"1.0.x device's AppKey in {key_1_0} and a 1.1.x device needs both, so this "
                f"key cannot be placed: move it to {key_1_0} for a 1.0.x device"
            )
        elif version == "1.0":
            why = (
                f"{self.version.header if self.version else 'the version'} says LoRaWAN 1.0.x, "
                f"whose AppKey {peer} keeps in {key_1_0}, but {app_header} holds another "
                f"key: clear {app_header} (unused for 1.0.x) or correct the version"
            )
        else:
            add = (
                f"fill its {self.version.header} cell"
                if self.version is not None
                else f"add a column {self.version_header or 'mac_version'} (1.0.3 or 1.1.0)"
            )
            why = (
                f"{key_1_0} and {app_header} both hold a key and the row does not say its "
                f"LoRaWAN version: {peer} keeps a 1.0.x device's AppKey in {key_1_0} and sets "
                f"{app_header} for 1.1.x only, so which is the AppKey cannot be told; {add}"
            )
        return chosen, (at, why)


def _unset_key(value: Any) -> bool:
    """No key: empty, or all zeros."""
    return value is None or (isinstance(value, str) and not value.strip().strip("0"))


# Device fields the template's defaults fill only through _DeviceBodies' own steps.
_MADE_FIELDS = frozenset({"tags", "config", *LOCATION_FIELDS})


class _DeviceBodies:
    """A device's body from its row's values with the template's defaults under them: the
    one place the two ways of reading a row (cell by cell, and a column at a time) meet."""

    def __init__(self, spec: TabSpec, site_tag: str | None) -> None:
        fixed = list(spec.defaults.get("tags") or [])
        if site_tag and site_tag not in fixed:
            fixed.append(site_tag)
        self.fixed_tags = fixed  # added to every device: the template's tags, the site tag
        self.defaults = [(k, v) for k, v in spec.defaults.items() if k not in _MADE_FIELDS]
        self.location: dict[str, Any] | None = (
            {name: spec.defaults[name] for name in LOCATION_FIELDS}
            if all(name in spec.defaults for name in LOCATION_FIELDS)
            else None
        )
        self.config = dict(spec.defaults.get("config") or {})
        self.derived = list(spec.derived.items())  # made from the row's own values (TTS's id)
        # One frozenset per combination of defaulted fields, shared by the records with it.
        self._defaulted: dict[tuple[str, ...], frozenset[str]] = {}

    def tags(self, own: list[str]) -> list[str]:
        """The row's own tags, then the fixed ones it does not have."""
        return own + [t for t in self.fixed_tags if t not in own]

    def body(
        self,
        body: dict[str, Any],
        location: dict[str, float] | None,
        config: dict[str, Any],
        tags: list[str],
        own_tags: bool,
    ) -> tuple[dict[str, Any], frozenset[str]]:
        """``body`` (the row's own plain values, no None) completed, and the names of the
        fields the template filled (what ``apply --update`` leaves alone).

        ``location``: the row's lat and lon; None when it has neither (the template's
        applies), only one when it has half (reported already: no location is sent).
        ``config``: the row's initialConfig keys, over the template's. ``tags``: from
        ``tags()`` (the list is copied: shared ones stay shared); ``own_tags``: whether
        the row has tags of its own.
        """
        defaulted: list[str] = []
        for name, made in self.derived:
            if name not in body and (value := made.value(body)) is not None:
                body[name] = value
                defaulted.append(name)
        for name, value in self.defaults:  # after the row's own values, in the template's order
            if name not in body:
                body[name] = value
                defaulted.append(name)
        if location is None:
            if self.location is not None:
                body["location"] = dict(self.location)
                defaulted.append("location")
        elif len(location) == len(LOCATION_FIELDS):
            body["location"] = location
        if config or self.config:
            body["initialConfig"] = {**self.config, **config}
            if not config:
                defaulted.append("initialConfig")
        if tags:
            body["tags"] = list(tags)
            if not own_tags:
                defaulted.append("tags")
        names = tuple(defaulted)
        shared = self._defaulted.get(names)
        if shared is None:
            shared = self._defaulted[names] = frozenset(names)
        return body, shared


def _by_row(columns: list[tuple[str, list[Any]]], count: int) -> Iterator[tuple[Any, ...]]:
    """The columns' values row by row; an empty tuple per row when there are none."""
    if not columns:
        return repeat((), count)
    return zip(*(values for _, values in columns), strict=True)


def _device_parsers(spec: TabSpec) -> dict[str, Callable[[str], Any]]:
    """Field -> its value from the cell's text (None when it does not convert), by the
    catalogue; a list splits at the tab's separators."""
    separators = spec.list_separators
    parsers: dict[str, Callable[[str], Any]] = {}
    for name, known in FIELDS["devices"].items():
        if known.kind == "list":
            parsers[name] = lambda text: split_list(text, separators)
        elif known.parse is not None:
            parsers[name] = known.parse
    return parsers


class _Users(_TabReader):
    def __init__(self, rows: SheetRows, spec: TabSpec, site: SiteRecords) -> None:
        super().__init__(rows)
        self.spec = spec
        self.columns, self.problems, self.doubles = map_columns(rows, spec, NEEDED["users"], site)
        secret = [
            letter
            for header, letter in zip(rows.headers, rows.columns, strict=False)
            if header and (name := spec.field_for(header)) is not None and spec.is_secret(name)
        ]
        if secret:
            site.secret_columns[rows.sheet] = secret
        self.cells = {c.field: c.letter for c in self.columns}
        self.headers = {c.field: c.header for c in self.columns}

    def read(self, table: Table) -> tuple[list[Record], list[Problem]]:
        spec, columns, cells, headers = self.spec, self.columns, self.cells, self.headers
        problems = self._differ(table)
        records: list[Record] = []
        row = _Row(table, problems)
        for i in range(len(table.rows)):
            row.i = i
            before = len(problems)
            body: dict[str, Any] = {}
            for column in columns:
                text = _cell_text(table, i, column, row)
                if not text or not _check_rule(column, text, row):
                    continue
                if column.field == "roles":
                    body["roles"] = [r.lower() for r in split_list(text, spec.list_separators)]
                elif column.field == "email":
                    body["email"] = text
                else:
                    body[column.field] = text
            for name, value in spec.defaults.items():
                body.setdefault(name, value)
            record = Record(
                table.sheet,
                table.row_numbers[i],
                str(body.get("email", "")).lower(),
                body,
                cells,
                headers,
            )
            record.valid = len(problems) == before
            records.append(record)
        return records, problems


class _Downlinks(_TabReader):
    def __init__(self, rows: SheetRows, template: SiteTemplate, site: SiteRecords) -> None:
        super().__init__(rows)
        self.template = template
        columns, self.problems, self.doubles = map_columns(
            rows, template.downlinks, NEEDED["downlinks"], site
        )
        # The key names a device as the Devices tab does: a DevEUI in any form is one device.
        key_digits = template.devices.hex_length(template.match_key)
        self.columns = [
            dataclasses.replace(c, hex_length=key_digits) if c.field == "key" else c
            for c in columns
        ]
        self.cells = {c.field: c.letter for c in self.columns}
        self.headers = {c.field: c.header for c in self.columns}
        self.notices = _Notices(rows, template.hex_case)
        self.codes = _QrCodes(rows, template.hex_case)

    def finish(self) -> list[Problem]:
        return [*super().finish(), *self.notices.problems(), *self.codes.problems()]

    def read(self, table: Table) -> tuple[list[Record], list[Problem]]:
        template, columns, notices, codes = self.template, self.columns, self.notices, self.codes
        cells, headers = self.cells, self.headers
        codes.block()
        problems = self._differ(table)
        records: list[Record] = []
        _damaged_rows(table, columns, notices)  # notes the numbers read as digits
        for column in columns:
            texts = [values[column.index].strip() for values in table.rows]
            if codes.reads(column):
                texts = codes.scan(column, texts, table.row_numbers)
            notices.hex(column, texts, table.row_numbers)
        row = _Row(table, problems)
        for i in range(len(table.rows)):
            row.i = i
            before = len(problems)
            values: dict[str, str] = {}
            payload: Any = None
            for column in columns:
                text = _cell_text(table, i, column, row)
                if not text or codes.problem(i, column, text, row):
                    continue
                if column.hex_length:
                    text = hex_form(text, column.hex_length, template.hex_case)
                if not _check_rule(column, text, row):
                    continue
                if column.field == "payload":
                    try:
                        payload = json.loads(text)
                    except json.JSONDecodeError as exc:
                        row.problem(
                            BAD_JSON,
                            f"the payload is not valid JSON ({exc.msg} at character {exc.pos + 1})",
                            column,
                            text,
                        )
                        continue
                values[column.field] = text
            record = DownlinkRecord(
                table.sheet,
                table.row_numbers[i],
                values.get("key", ""),
                payload if payload is not None else {},
                cells,
                headers,
                type=values.get("type", "").lower(),
            )
            record.valid = len(problems) == before
            records.append(record)
        return records, problems
