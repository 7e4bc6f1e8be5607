"""Export: the platform's site as a sheet in a site template's layout.

``export_site`` reads the platform's devices (those carrying the given tags, the
template's site tag, or every device), and the organisation's users, and writes
them as the sheet the template reads: the inverse of ``records.read_records``.
The file goes back through ``validate`` without a problem and through ``plan``
with every row ``exists``, so it is a working sheet: correct a row and
``apply --update`` brings the platform in line.

What a sheet holds, and how:
- The devices tab has the template's tab name and its first header for each
  field, in the template's order; headers the template knows and ignores (the
  hardware import's ``firmware``) stay in the layout, empty. ``initialConfig``
  keys go to the template's columns for them, the others to ``<prefix><key>``
  columns, sorted. Tags are joined by the template's separator, the location is
  split into lat and lon, certEnforcesDtls is ``true``/``false``.
- ``.xlsx``: identifier columns (every column but deviceTypeId, lat and lon) are
  Text cells, so that Excel keeps leading zeros and long numbers; a ``Platform
  users`` tab (name, email, roles; the password column is empty, since the
  platform gives no passwords out) and an Instructions tab. The users tab is not
  named ``Users``: with its empty passwords every row would be invalid there.
- ``.csv``: the devices only, ``,``-separated UTF-8 without BOM, as the
  platform's own admin Hardware Import takes it; a text that a spreadsheet would
  run as a formula gets a leading ``'``, as in every CSV the tool writes, and the
  tool reads it back without it (``files.csv_cell``).
- LoRaWAN keys (``initialConfig`` AppKey...) are written, as in the installer's
  own sheet; their values never reach the console, and a file holding any is
  readable by its owner only.

What a sheet cannot hold (a field the template has no column for, a tag holding
the separator, a config value that is an object) is named in ``notes``, by field
and count, never silently dropped.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from provisioner.errors import ExportError as ExportError
from provisioner.fields import (
    CONFIG_PREFIX,
    as_text,
    hex_form,
    is_config_field,
    is_number,
    is_secret_config_key,
    normal_key,
)
from provisioner.files import csv_cell, formula_like, put_text, reason, write_atomically
from provisioner.lookup import device_pages, platform_users
from provisioner.platform import MAX_PAGE_SIZE, Filter, PlatformClient, fa
from provisioner.sheets import record_template
from provisioner.templates import SiteTemplate, TabSpec
from provisioner.text import counted, is_are
from provisioner.wording import header_in, say, tab_in

EXPORT_SUFFIXES = (".xlsx", ".csv")
USERS_TAB = "Platform users"
INSTRUCTIONS_TAB = "Instructions"
# In German (--lang de); neither is a tab the tool reads.
_TABS_DE = {USERS_TAB: "Plattform-Benutzer", INSTRUCTIONS_TAB: "Anleitung"}
TEXT = "@"
PROGRESS_ROWS = 10000  # a progress line per this many rows written
_IDENTITY = ("addr", "name", "serial")
# Characters no workbook can hold (and a NUL no CSV reader takes): C0 controls but tab
# and line breaks, and lone surrogates from JSON escapes.
_UNHOLDABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


@dataclass
class ExportResult:
    """What ``export_site`` wrote. ``lines()`` is the console summary."""

    out: Path
    template: str
    selection: str  # which devices, in words: "tagged Site-HH-04", "every device"
    devices: int
    users: int | None  # None: no users tab (CSV, or the platform does not list them)
    notes: list[str] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0
    # "" or why the file may lack devices: the listing moved while it was read.
    incomplete: str = ""
    made_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def exit_code(self) -> int:
        """0 written whole; 1 written, but devices may be missing from it."""
        return 1 if self.incomplete else 0

    def to_dict(self) -> dict[str, Any]:
        """What ``export --json`` prints, in the shape of the other commands' reports."""
        return {
            "command": "export",
            "out": str(self.out),
            "template": self.template,
            "selection": self.selection,
            "made_at": self.made_at,
            "ok": not self.incomplete,
            "totals": {
                "devices": self.devices,
                **({} if self.users is None else {"users": self.users}),
            },
            "notes": list(self.notes),
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "incomplete": self.incomplete,
        }

    def lines(self) -> list[str]:
        users = "" if self.users is None else f" and {counted(self.users, 'user')}"
        what = self.selection
        if self.incomplete:
            # Never the selection's words alone: the file may not hold all of them.
            what = f"asked: {self.selection}; INCOMPLETE, see the last line"
        head = f"{counted(self.devices, 'device')} ({what})"
        lines = [
            f"{head}{users} written to {self.out} in the layout of the template '{self.template}'",
            *self.notes,
            f"platform: {counted(self.requests, 'request')}, {self.seconds:.1f} s",
        ]
        if self.incomplete:
            lines.append(f"incomplete: {self.incomplete}")
        return lines


def check_export(
    out: Path,
    template: SiteTemplate,
    *,
    tags: Sequence[str] = (),
    all_devices: bool = False,
    force: bool = False,
) -> tuple[list[Filter], str]:
    """Before any request: the device filter and its words; raises ExportError when the
    devices are not chosen or ``out`` cannot be used."""
    not_a_layout = template.not_a_layout("an export")
    if not_a_layout is not None:
        raise ExportError(not_a_layout)
    if out.suffix.lower() not in EXPORT_SUFFIXES:
        raise ExportError(f"{out}: the export is a sheet; name it *.xlsx or *.csv")
    if out.is_dir():
        raise ExportError(f"{out} is a folder: give the name of the file to write")
    if out.exists() and not force:
        raise ExportError(f"{out} exists already; choose another name or add --force to replace it")
    if not out.parent.is_dir():
        raise ExportError(f"cannot write {out}: the folder {out.parent} does not exist")
    chosen = [t.strip() for t in tags]
    for tag in chosen:
        # The platform's filter separates tags with commas.
        if not tag or "," in tag:
            raise ExportError(f"--tag {tag!r}: a tag must not be empty or hold a comma")
    if chosen and all_devices:
        raise ExportError("--tag and --all exclude each other: give one of them")
    if not chosen and not all_devices and template.site_tag:
        chosen = [template.site_tag]
    if chosen:
        words = f"tagged {' and '.join(chosen)}"
        if not tags:
            words += " (the template's site tag)"
        return [fa("tags", "contains", chosen)], words
    if all_devices:
        return [], "every device on the platform"
    raise ExportError(
        f"say which devices to export: pass --tag TAG (the site's tag; repeatable) or --all "
        f"for every device on the platform (the template '{template.name}' has no site_tag)"
    )


def export_site(
    client: PlatformClient,
    template: SiteTemplate,
    out: Path,
    *,
    tags: Sequence[str] = (),
    all_devices: bool = False,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    lang: str = "en",
) -> ExportResult:
    """Write the platform's devices (and users, to .xlsx) to ``out`` in ``template``'s layout,
    its headers, tabs and instructions in ``lang`` (en, de: ``wording``).

    The devices are those carrying all ``tags``; without tags, those carrying the
    template's site tag; every device only with ``all_devices``. ``out`` is written
    beside itself and renamed into place, so a failure leaves no half-written file;
    an existing file is replaced only with ``force``. Raises ExportError for an
    unusable request or file, PlatformError when the platform fails.
    """
    filters, selection = check_export(
        out, template, tags=tags, all_devices=all_devices, force=force
    )
    say = progress or (lambda text: None)
    started, before = time.perf_counter(), client.requests_sent
    devices: list[dict[str, Any]] = []
    # By id where the platform pages so: devices deleted meanwhile cannot shift the pages.
    pages = device_pages(client, filters, page_size=MAX_PAGE_SIZE)
    for page in pages:
        devices += page
        say(f"reading devices: {len(devices)}")
    incomplete = ""
    if pages.moved:
        incomplete = (
            f"{pages.moved}. The file holds the {counted(len(devices), 'device')} read; "
            "run the export again when no one is adding or deleting devices"
        )
    sheet = _DeviceSheet(template, devices, say, lang)
    notes = list(sheet.notes)
    if not devices:
        notes.insert(
            0,
            f"no device is {selection}: check the tag's spelling (tags are exact)"
            if filters
            else "the platform holds no devices",
        )
    users: list[dict[str, Any]] | None = None
    csv_file = out.suffix.lower() == ".csv"
    if csv_file:
        notes.append("users are not exported to CSV (a CSV holds one table): use .xlsx for them")
    else:
        say("reading users")
        users, why = platform_users(client)
        if users is None:
            notes.append(f"users are not exported: {why}")
    keys = sheet.secret_keys()
    if keys:
        notes.append(
            f"the file holds LoRaWAN keys ({', '.join(keys)}) as the platform gave them: "
            "it is readable by you only; share it only with people who may see them"
        )
    say(f"writing {out.name}")
    if csv_file:
        writer: Callable[[IO[bytes]], None] = sheet.write_csv
    else:
        made_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        context = _Context(
            client.url, made_at, selection, out.name, users, notes, bool(keys), incomplete, lang
        )

        def writer(file: IO[bytes]) -> None:
            _write_xlsx(file, template, sheet, context)

    _write_file(out, writer, private=bool(keys), force=force)
    notes += sheet.written_notes
    return ExportResult(
        out=out,
        template=template.ref,
        selection=selection,
        devices=len(devices),
        users=None if users is None else len(users),
        notes=notes,
        requests=client.requests_sent - before,
        seconds=time.perf_counter() - started,
        incomplete=incomplete,
    )


def _have(number: int) -> str:
    return f"{counted(number, 'device')} {'has' if number == 1 else 'have'}"


def _config(device: dict[str, Any]) -> dict[str, Any]:
    config = device.get("initialConfig")
    return config if isinstance(config, dict) else {}


def _fold(header: str) -> str:
    """Headers as the reader tells duplicates apart (sheets: no spaces, any case)."""
    return "".join(header.split()).casefold()


# --- the devices tab -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    """A column of the devices tab: its field ("addr", "lat", "cfg:AppKey"; "" for a header
    the template ignores) and its header."""

    field: str
    header: str

    @property
    def number(self) -> bool:
        # Numbers stay numbers, as users type them (the blank workbook asks the same).
        return is_number("devices", self.field)


# What a device field is in a note, and the template's column(s) it lacks.
_MISSING = {
    "name": ("a name", "name column"),
    "serial": ("a serial", "serial column"),
    "description": ("a description", "description column"),
    "deviceTypeId": ("a deviceTypeId", "deviceTypeId column"),
    "tags": ("tags", "tags column"),
    "location": ("a location", "lat/lon columns"),
    "certEnforcesDtls": ("certEnforcesDtls true", "certEnforcesDtls column"),
}


class _DeviceSheet:
    """The devices as rows of the template's devices tab, and what did not fit."""

    def __init__(
        self,
        template: SiteTemplate,
        devices: list[dict[str, Any]],
        say: Callable[[str], None],
        lang: str = "en",
    ) -> None:
        self.template = template
        self.lang = lang
        self.say = say
        self.spec = template.devices
        self.notes: list[str] = []
        self.written_notes: list[str] = []  # found while the cells are written
        self.columns = self._layout(devices)
        self.rows = [self._row(d) for d in devices]
        self._check(devices)

    # -- columns

    def _layout(self, devices: list[dict[str, Any]]) -> list[_Column]:
        """The template's columns in its order: the headers it ignores after addr, name and
        serial (the hardware import's firmware), the config keys where its config goes."""
        spec = self.spec
        columns: list[_Column] = []
        block: list[_Column] = []
        block_at: int | None = None
        for name in spec.columns:
            # The header a blank workbook in this language has: one the template reads.
            header = header_in(spec, name, self.lang)
            if name == "config" or is_config_field(name):
                block_at = len(columns) if block_at is None else block_at
                block.append(_Column(name, header))
            else:
                columns.append(_Column(name, header))
        identity = [i for i, c in enumerate(columns) if c.field in _IDENTITY]
        at = identity[-1] + 1 if identity else len(columns)
        columns[at:at] = [_Column("", header) for header in spec.ignore]
        if block_at is None:
            block_at = len(columns)
        elif block_at >= at:
            block_at += len(spec.ignore)
        used = {_fold(c.header) for c in (*columns, *block)}
        unnamed: list[str] = []
        keys = {k for d in devices for k, v in _config(d).items() if _scalar(v)}
        for key in sorted(keys, key=lambda k: (k.casefold(), k)):
            name = CONFIG_PREFIX + key
            if name in spec.columns:
                continue
            header = spec.config_prefix + key
            # The header must read back as this key, and not clash with another header.
            if spec.field_for(header) != name or _fold(header) in used:
                unnamed.append(repr(key))
                continue
            used.add(_fold(header))
            block.append(_Column(name, header))
        if unnamed:
            self.notes.append(
                f"initialConfig keys that no column header can tell apart ({', '.join(unnamed)}: "
                "spaces at the ends, or another key in another case) are not in the file"
            )
        return columns[:block_at] + block + columns[block_at:]

    # -- cells

    def _row(self, device: dict[str, Any]) -> list[str | int | float | None]:
        location = device.get("location")
        lat = lon = None
        if isinstance(location, dict) and _numbers(location.get("lat"), location.get("lon")):
            lat, lon = location["lat"], location["lon"]
        config = _config(device)
        separator = self.spec.list_separator
        values: list[str | int | float | None] = []
        for column in self.columns:
            name = column.field
            value: str | int | float | None
            if not name or name == "config":
                value = None
            elif name == "lat":
                value = lat
            elif name == "lon":
                value = lon
            elif name == "tags":
                tags = device.get("tags")
                value = f"{separator} ".join(map(str, tags)) if isinstance(tags, list) else None
            elif name == "deviceTypeId":
                held = device.get(name)
                value = held if isinstance(held, int) and not isinstance(held, bool) else None
            elif is_config_field(name):
                held = config.get(name[len(CONFIG_PREFIX) :])
                value = as_text(held) if _scalar(held) else None
            else:
                held = device.get(name)
                value = as_text(held) if held is not None else None
            digits = self.spec.hex_length(name) if name else None
            if digits and isinstance(value, str):
                # A DevEUI or key another tool stored as 70b3-... is written in the one form.
                value = hex_form(value, digits, self.template.hex_case)
            values.append(value if value != "" else None)
        return values

    def _check(self, devices: list[dict[str, Any]]) -> None:
        """Notes on what the sheet does not hold, or holds so that it reads back otherwise."""
        spec, template = self.spec, self.template
        have = {c.field for c in self.columns}
        for name, (what, columns) in _MISSING.items():
            if name == "deviceTypeId" and "deviceTypeId" in spec.defaults:
                what = f"a deviceTypeId other than the template's {spec.defaults[name]}"
            if name == "location":
                if "lat" in have and "lon" in have:
                    continue
            elif name in have:
                continue
            count = sum(1 for d in devices if self._holds(name, d))
            if count:
                self.notes.append(f"{_have(count)} {what}; this template has no {columns}")
        bad = sum(
            1
            for d in devices
            if d.get("location") is not None
            and not (
                isinstance(d["location"], dict)
                and _numbers(d["location"].get("lat"), d["location"].get("lon"))
            )
        )
        if bad and "lat" in have:
            self.notes.append(f"{_have(bad)} a location without numeric lat and lon; left empty")
        odd = sorted({k for d in devices for k, v in _config(d).items() if not _scalar(v)})
        if odd:
            count = sum(1 for d in devices if any(not _scalar(v) for v in _config(d).values()))
            self.notes.append(
                f"{_have(count)} initialConfig values that are not text, numbers or true/false "
                f"(keys {', '.join(map(repr, odd))}); a sheet cannot hold them"
            )
        if "tags" in have:
            split = sum(
                1
                for d in devices
                if isinstance(d.get("tags"), list)
                and any(mark in str(t) for t in d["tags"] for mark in spec.list_separators)
            )
            if split:
                marks = " or ".join(f"'{mark}'" for mark in spec.list_separators)
                self.notes.append(
                    f"{_have(split)} a tag holding the separator {marks}: "
                    "it reads back as several tags"
                )
        fixed = list(spec.defaults.get("tags") or [])
        if template.site_tag and template.site_tag not in fixed:
            fixed.append(template.site_tag)
        if fixed:
            lacking = sum(
                1
                for d in devices
                if not set(fixed) <= {str(t).strip() for t in d.get("tags") or []}
                and (template.tags_mode == "add" or d.get("tags"))
            )
            if lacking:
                self.notes.append(
                    f"{_have(lacking)} not all of the template's tags ({', '.join(fixed)}): "
                    "plan shows them as differs, and apply --update would add them"
                )
        key = template.match_key
        keys = Counter(normal_key(key, d.get(key)) for d in devices)
        if keys.get(""):
            self.notes.append(
                f"{_have(keys[''])} no {key}, which this template matches devices by: their rows "
                "do not validate (use a template that matches by the other key, or fill them in)"
            )
        shared = sum(n for k, n in keys.items() if k and n > 1)
        if shared:
            self.notes.append(
                f"{_have(shared)} a {key} that another device has too: validate reports "
                "those rows as duplicates and plan blocks them"
            )

    def _holds(self, name: str, device: dict[str, Any]) -> bool:
        """Whether a device holds information in a field (the platform's defaults are none)."""
        value = device.get(name)
        if name == "certEnforcesDtls":
            return value is True
        if name == "name":
            return bool(value) and value != device.get("addr")
        if name == "deviceTypeId":
            return value is not None and value != self.spec.defaults.get("deviceTypeId")
        return value not in (None, "", [], {})

    def secret_keys(self) -> list[str]:
        """The LoRaWAN keys (AppKey...) the sheet holds a value of."""
        return [
            c.field[len(CONFIG_PREFIX) :]
            for j, c in enumerate(self.columns)
            if is_config_field(c.field)
            and is_secret_config_key(c.field[len(CONFIG_PREFIX) :])
            and any(row[j] is not None for row in self.rows)
        ]

    # -- writing

    def cells(self, fix: Callable[[str], str]) -> Iterator[list[str | int | float | None]]:
        """The rows, each text passed through ``fix``; counts what could not be held."""
        removed = 0
        for i, values in enumerate(self.rows, start=1):
            if i % PROGRESS_ROWS == 0:
                self.say(f"writing: {i} of {len(self.rows)} devices")
            row: list[str | int | float | None] = []
            for value in values:
                if isinstance(value, str):
                    held = _UNHOLDABLE.sub("", value)
                    removed += held != value
                    value = fix(held)
                row.append(value)
            yield row
        if removed:
            self.written_notes.append(
                f"{counted(removed, 'value')} held control characters that a sheet cannot hold: "
                "they are left out of the file's text"
            )

    def write_csv(self, file: IO[bytes]) -> None:
        quoted = 0

        def safe(text: str) -> str:
            nonlocal quoted
            cell = csv_cell(text)
            quoted += cell != text
            return cell

        text = io.TextIOWrapper(file, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow([c.header for c in self.columns])
        for row in self.cells(safe):
            writer.writerow(["" if v is None else _csv_number(v) for v in row])
        text.flush()
        text.detach()  # the file stays open: the caller syncs and closes it
        if quoted:
            self.written_notes.append(
                f"{counted(quoted, 'value')} starting with =, +, - or @ {is_are(quoted)} written "
                "with a leading ' so that no spreadsheet runs them as formulas; this tool reads "
                "them back without it. Remove it before the platform's Hardware Import, or "
                "export to .xlsx, which keeps them as they are"
            )


def _scalar(value: Any) -> bool:
    """A value a cell can hold and the deviceInput schema takes for a config key."""
    return isinstance(value, str | int | float | bool)


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _csv_number(value: str | int | float) -> str:
    return repr(value) if isinstance(value, float) else str(value)


# --- the workbook ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    """What the Instructions tab says about the export."""

    url: str
    made_at: str
    selection: str
    file_name: str
    users: list[dict[str, Any]] | None  # None: no users tab
    notes: list[str]  # what the sheet does not hold, said on the console too
    keys: bool  # the sheet holds LoRaWAN keys
    incomplete: str  # "" or why devices may be missing from the file
    lang: str = "en"  # the language of the tabs, headers and instructions


def _write_xlsx(
    file: IO[bytes], template: SiteTemplate, sheet: _DeviceSheet, context: _Context
) -> None:
    from openpyxl import Workbook  # only when a workbook is written
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook(write_only=True)
    bold = Font(bold=True)

    def tab(title: str, headers: list[str], text: list[bool]) -> tuple[Any, list[Any]]:
        """A tab with a bold header row; one styled cell per column, used for every row
        (a write-only sheet writes each row out as it is appended)."""
        ws = workbook.create_sheet(title)
        for j, (header, is_text) in enumerate(zip(headers, text, strict=True), start=1):
            dimension = ws.column_dimensions[get_column_letter(j)]
            dimension.width = min(max(len(header) + 4, 14), 45)
            if is_text:
                dimension.number_format = TEXT  # rows typed in later are Text too
        ws.freeze_panes = "A2"
        header_cells = []
        for header in headers:
            cell = WriteOnlyCell(ws, value=header)
            cell.font = bold
            header_cells.append(cell)
        ws.append(header_cells)
        cells = []
        for is_text in text:
            cell = WriteOnlyCell(ws)
            if is_text:
                cell.number_format = TEXT
            cells.append(cell)
        return ws, cells

    def append(ws: Any, cells: list[Any], values: Sequence[Any]) -> None:
        row: list[Any] = []
        for cell, value in zip(cells, values, strict=True):
            if value is None:
                row.append(None)
                continue
            if not isinstance(value, str):
                cell.value = value
            elif formula_like(value):
                # A cell of its own: its quotePrefix style must not reach the rows after.
                own = WriteOnlyCell(ws)
                own.number_format = cell.number_format
                put_text(own, value)
                cell = own
            else:
                put_text(cell, value)
            row.append(cell)
        ws.append(row)

    columns = sheet.columns
    lang = context.lang
    devices, cells = tab(
        tab_in(template.devices, lang), [c.header for c in columns], [not c.number for c in columns]
    )
    for values in sheet.cells(lambda text: text):
        append(devices, cells, values)
    if context.users is not None:
        spec = template.users
        names = list(spec.columns)
        headers = [header_in(spec, n, lang) for n in names]
        users, cells = tab(_tab(USERS_TAB, lang), headers, [True] * len(names))
        for user in context.users:
            append(users, cells, [_user_cell(user, n, spec) for n in names])
    instructions = workbook.create_sheet(_tab(INSTRUCTIONS_TAB, lang))
    instructions.column_dimensions["A"].width = 110
    for line in _instructions(template, sheet, context):
        text = _UNHOLDABLE.sub("", line)
        cell = WriteOnlyCell(instructions)
        if text:
            put_text(cell, text)
        instructions.append([cell])
    record_template(workbook, template.ref)
    workbook.save(file)


def _user_cell(user: dict[str, Any], name: str, spec: TabSpec) -> str | None:
    if name == "password":
        return None  # the platform gives no passwords out, and none is ever written
    value = user.get(name)
    if name == "email" and not value:
        value = user.get("login")
    if name == "roles" and isinstance(value, list):
        value = f"{spec.list_separator} ".join(map(str, value))
    text = "" if value is None else _UNHOLDABLE.sub("", as_text(value))
    return text or None


def _tab(name: str, lang: str) -> str:
    return _TABS_DE[name] if lang == "de" else name


def _instructions(template: SiteTemplate, sheet: _DeviceSheet, context: _Context) -> list[str]:
    name = template.ref
    lang = context.lang
    file_name = f'"{context.file_name}"' if " " in context.file_name else context.file_name
    args = f"{file_name} --template {name}"
    devices_tab = tab_in(template.devices, lang)
    users_tab = _tab(USERS_TAB, lang)
    # The selection and the notes are the console's words, in English.
    lines = [
        say(
            lang,
            "export.incomplete" if context.incomplete else "export.made",
            url=context.url,
            made_at=context.made_at,
            selection=context.selection,
            name=template.name,
        ),
        *([say(lang, "export.missing", why=context.incomplete)] if context.incomplete else []),
        "",
        say(lang, "export.reads_back", tab=devices_tab),
        f"  provisioner validate {args}    " + say(lang, "export.valid"),
        f"  provisioner plan {args}    " + say(lang, "export.exists"),
        say(lang, "export.update"),
        f"  provisioner apply {args} --update",
        say(lang, "recorded", name=template.ref),
        say(lang, "export.text"),
    ]
    if context.keys:
        lines.append(say(lang, "export.keys"))
    if context.users is not None:
        users = template.users
        lines += [
            "",
            say(lang, "export.users", tab=users_tab),
            say(lang, "export.users_apply", users=tab_in(users, lang)),
        ]
    notes = [*context.notes, *sheet.written_notes]
    if notes:
        lines += ["", say(lang, "export.notes"), *(f"- {note}" for note in notes)]
    return lines


# --- writing the file ------------------------------------------------------------------------


def _write_file(
    out: Path, write: Callable[[IO[bytes]], None], *, private: bool, force: bool
) -> None:
    """``out`` whole or untouched (files.write_atomically); without ``force`` never
    over a file, also one that appeared meanwhile. A ``private`` file (it holds
    LoRaWAN keys) is readable by its owner only."""
    try:
        write_atomically(out, write, replace=force, private=private)
    except FileExistsError:
        raise ExportError(
            f"{out} exists already; choose another name or add --force to replace it"
        ) from None
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {reason(exc)}") from exc
