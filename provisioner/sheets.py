"""Reading an installer's sheet exactly as the user sees it.

``open_workbook`` checks that a file is what its suffix says and lists its
tabs; ``Workbook.rows`` reads one tab a row at a time (``SheetRows``: its
header at once, its data rows on each pass, only the row at hand held as text),
and ``Workbook.table`` holds them all in a ``Table``: the header row and the
data rows as text, each cell traceable to its Excel address. The cells of a big
sheet stay with python-calamine (or, for a CSV, in the file, read again on each
pass); ``validate`` never holds them as Python text at once.

Every cell becomes the text the user sees in Excel (numbers in the General
format, dates as ISO text, times and durations with their fraction of a second,
durations as ``[h]:mm:ss`` in an .ods too). Cells that were not plain text in the file are
also noted in ``Table.stored`` with the value the file really holds, so the
record stage can tell an IMEI that Excel turned into ``3.52656E+14`` from one
typed as text. In a CSV, the ``'`` before a text a spreadsheet would run as a
formula (``'=2+3``, as this tool's CSVs write it) is not part of the value
(``files.csv_value``): a file the tool wrote reads back as the values it holds.

What the user cannot see is found too, for the validator to warn about:
``Workbook.hidden_tabs`` (hidden and very hidden tabs), and per tab
``Table.hidden_rows`` and ``Table.hidden_columns``. Their cells are read all
the same.

A file that cannot be read as a sheet raises ``SheetError``; problems of
single cells are left to the record stage.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime
import functools
import gc
import html
import itertools
import math
import os
import re
import threading
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Container, Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, TypeVar
from xml.etree import ElementTree

from python_calamine import (
    CalamineError,
    CalamineSheet,
    CalamineWorkbook,
    SheetTypeEnum,
    SheetVisibleEnum,
)

from provisioner.errors import EmptyTab as EmptyTab
from provisioner.errors import SheetError as SheetError
from provisioner.files import MARK, csv_value
from provisioner.problems import column_letter
from provisioner.text import listed
from provisioner.wording import GERMAN_OUTCOME_HEADERS

if TYPE_CHECKING:  # openpyxl loads only where a workbook is written
    from openpyxl import Workbook as OpenpyxlWorkbook

    from provisioner.frames import Sheet

# The custom document property (docProps/custom.xml; in an .ods, a user-defined field of
# meta.xml) in which a workbook this tool writes records its site template. Excel and
# LibreOffice keep such properties when the file is edited and saved, which the tabs'
# text and layout are not safe from.
TEMPLATE_PROPERTY = "provisioner-template"
# The columns this tool adds to its copies of a sheet (results, xlsx reports): a copy read
# again knows them, as it knows its template.
OUTCOME_HEADERS = (
    frozenset(
        {"Action", "Status", "Online", "Last data", "Records", "Platform id", "Message", "Sends"}
    )
    | GERMAN_OUTCOME_HEADERS
)  # a German workbook's copy

SUFFIXES = {".xlsx": "xlsx", ".xlsm": "xlsx", ".ods": "ods", ".csv": "csv"}
ACCEPTED = ".xlsx, .xlsm, .ods or .csv"

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"

# (how, detail) for a cell that was not plain text in the file.
Stored = tuple[str, str]
# (how, detail, text shown) for a cell found in the sheet's XML.
_Mark = tuple[str, str, str]
# Excel row number -> column index -> mark.
_Marks = dict[int, dict[int, _Mark]]
# Inclusive (first, last) ranges: Excel row numbers, or 0-based column indexes.
_Ranges = list[tuple[int, int]]
_T = TypeVar("_T")


@dataclass
class Table:
    """One tab: header and data rows as text, aligned to the header.

    ``rows[i][j]`` is the text of data row ``i`` in column ``j``; its Excel
    row number is ``row_numbers[i]`` and its column letter ``columns[j]``.
    Blank rows are skipped. ``stored`` is sparse: only cells that were not
    plain text in the file (number, date, bool, formula without a value,
    error) have an entry ``(how, detail)``.

    ``hidden_rows`` are the Excel row numbers, ascending, of the rows read
    (the header row and the data rows) that are hidden in the file: hidden
    by hand, in a collapsed group or by a filter. ``hidden_columns`` are the
    letters, left to right, of the table's ``columns`` that are hidden and
    hold something (a header or a cell not blank). Both are read like any
    other. Hidden rows and columns that hold nothing (blank rows, columns
    left or right of the table, a blank column inside it) are not listed.
    Found in .xlsx/.xlsm and .ods; a CSV has none.
    """

    sheet: str
    header_row: int
    headers: list[str]
    columns: list[str]
    row_numbers: list[int]
    rows: list[list[str]]
    stored: dict[tuple[int, int], Stored] = field(default_factory=dict)
    hidden_rows: list[int] = field(default_factory=list)
    hidden_columns: list[str] = field(default_factory=list)
    # The workbook has a number format that pads with zeros (00000000): a stored number
    # may show with leading zeros the plain digits lack, so none is taken as shown whole.
    numbers_padded: bool = False

    def cell(self, i: int, j: int) -> str:
        """``C14`` for data row ``i``, column ``j``."""
        return f"{self.columns[j]}{self.row_numbers[i]}"


@dataclass
class Workbook:
    """An opened sheet file: its format, its tabs, and tables read on demand.

    ``tab_names`` lists every tab, hidden ones too, in workbook order.
    ``hidden_tabs`` names the tabs the user does not see (hidden, or very
    hidden: only a macro or the VBA editor can show those), in workbook
    order; ``very_hidden_tabs`` is the very hidden part of them (.xlsx only).
    ``template`` is the site template a workbook this tool wrote records
    (``TEMPLATE_PROPERTY``), None for any other file. ``chart_tabs`` are the
    tabs that are no grid of cells (an Excel chart sheet, an old dialog or macro
    sheet): they hold no table. ``encoding`` is a CSV's (``utf-8``,
    ``utf-8-sig``, ``utf-16``, or one of ``CODE_PAGES`` when the file is not
    UTF-8 and its encoding was detected: see ``guessed_encoding``).
    """

    path: Path
    format: str
    tab_names: list[str]
    encoding: str | None = None
    delimiter: str | None = None
    hidden_tabs: list[str] = field(default_factory=list)
    very_hidden_tabs: list[str] = field(default_factory=list)
    chart_tabs: list[str] = field(default_factory=list)
    template: str | None = None
    numbers_padded: bool = False  # see Table.numbers_padded
    _calamine: CalamineWorkbook | None = field(default=None, repr=False)
    _csv_size: int = field(default=0, repr=False)  # a CSV's characters
    _csv_marked: bool = field(default=False, repr=False)  # a CSV's cells marked as text
    _tables: dict[str, Table] = field(default_factory=dict, repr=False)
    _rows: dict[str, SheetRows] = field(default_factory=dict, repr=False)
    _extents: _Extents | None = field(default=None, repr=False)  # an .xlsx's

    @property
    def guessed_encoding(self) -> str | None:
        """The name of the encoding a CSV that is not UTF-8 was read in
        (``Windows-1252 (Western European)``), None for any other file: a guess,
        which the person is told."""
        return CODE_PAGES.get(self.encoding or "")

    def table(self, tab: str) -> Table:
        """Read (once) and return the tab named ``tab``, every row held."""
        if tab not in self._tables:
            rows = self.rows(tab)
            with _no_cyclic_gc():
                self._tables[tab] = rows.table()
        return self._tables[tab]

    def rows(self, tab: str) -> SheetRows:
        """The tab named ``tab``, to read a row at a time: its header is read at once
        (and once), its rows on each pass over it."""
        if tab not in self.tab_names:
            raise SheetError(
                f'{self.path.name}: there is no tab "{tab}" (tabs: {self.tabs_listed()}): '
                "rename the tab or choose another one"
            )
        if tab in self.chart_tabs:
            raise SheetError(
                f'{self.path.name}: the tab "{tab}" is a chart, not a table of cells: '
                f"name the tab that holds the devices (tabs: {self.tabs_listed()})"
            )
        if tab not in self._rows:
            held = self._tables.get(tab)
            self._rows[tab] = self._read(tab) if held is None else _HeldRows(held)
            self._rows[tab].numbers_padded = self.numbers_padded
        return self._rows[tab]

    def find_tab(self, name: str) -> str | None:
        """The tab whose name matches ``name`` ignoring case and spaces."""
        wanted = _fold(name)
        for tab in self.tab_names:
            if _fold(tab) == wanted:
                return tab
        return None

    def named_tab(self, name: str) -> str:
        """The tab the installer named (``--tab``): as written, else ignoring case and
        spaces. A name no tab has, and a CSV (one table, no tabs), raise a SheetError
        that lists the tabs."""
        if self.format == "csv":
            raise SheetError(
                f'{self.path.name}: a CSV file holds one table and no tabs: leave out --tab "{name}"'
            )
        found = name if name in self.tab_names else self.find_tab(name)
        if found is None:
            raise SheetError(
                f'{self.path.name} has no tab "{name}" (--tab): its tabs are '
                f"{self.tabs_listed()}: give --tab one of these names"
            )
        return found

    def holds_table(self, tab: str) -> bool:
        """Whether the tab holds a table: no chart sheet, not empty (its header is read to
        know, and kept). The devices are looked for on such tabs only."""
        if tab in self.chart_tabs:
            return False
        try:
            self.rows(tab)
        except EmptyTab:
            return False
        return True

    def tabs_listed(self) -> str:
        """The tabs for a message: ``"Chart1" (a chart), "Cover", "Key list"``."""
        return ", ".join(
            f'"{name}"' + (" (a chart)" if name in self.chart_tabs else "")
            for name in self.tab_names
        )

    def _read(self, tab: str) -> SheetRows:
        if self.format == "csv":
            path, encoding, delimiter = self.path, self.encoding, self.delimiter
            assert delimiter is not None

            def records() -> Iterator[tuple[int, list[Any]]]:
                # The file is read as it was decoded when opened (open_workbook), a line
                # at a time: the text is not held.
                try:
                    file = path.open(encoding=encoding, newline="")
                except OSError as exc:
                    raise SheetError(f"{path.name} cannot be read again: {exc}") from exc
                with file, _csv_fields_up_to(self._csv_size):
                    yield from enumerate(csv.reader(file, delimiter=delimiter), 1)

            return SheetRows(path.name, tab, records, 0, unmark=self._csv_marked)
        index = self.tab_names.index(tab)
        if self.format != "xlsx":
            # .ods is not scanned for cells: a formula without a value or an
            # error cell (calamine gives "" for both) reads as an empty cell
            # there. Hidden rows and columns are looked for in content.xml.
            sheet = self._sheet(tab)
            hidden = self._damaged(tab, lambda: _ods_hidden(self.path, index))
            durations = _OdsDurations(self.path, lambda scan: self._damaged(tab, scan))
            return _read_calamine(self.path.name, tab, sheet, {}, hidden, durations)
        # The tab's cells within the bounds first (_Extents: checked in a thread since
        # the workbook was opened). Formulas without a value and error cells come back
        # from calamine as "", and calamine does not say which rows and columns are
        # hidden: both are found in the sheet's XML, scanned in a thread while calamine
        # (which releases the GIL) parses the same sheet.
        extents = self._extents
        if extents is None:
            extents = self._extents = _Extents(self.path)
        self._damaged(tab, lambda: extents.wait(index))
        with ThreadPoolExecutor(max_workers=1) as pool:
            scan = pool.submit(_xlsx_scan, self.path, index)
            sheet = self._sheet(tab)
            marks, hidden = self._damaged(tab, scan.result)
        return _read_calamine(self.path.name, tab, sheet, marks, hidden)

    def _damaged(self, tab: str, scan: Callable[[], _T]) -> _T:
        """``scan()``, a broken zip member turned into a SheetError."""
        try:
            return scan()
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError) as exc:
            raise SheetError(
                f"{self.path.name}: tab {tab!r} is damaged ({exc}): "
                f"open the file and save it again as {self.path.suffix}"
            ) from exc

    def _sheet(self, tab: str) -> CalamineSheet:
        assert self._calamine is not None
        try:
            return self._calamine.get_sheet_by_name(tab)
        except CalamineError as exc:
            raise SheetError(
                f"{self.path.name}: tab {tab!r} cannot be read ({exc}): "
                f"open the file and save it again as {self.path.suffix}"
            ) from exc


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cycle collector while a sheet is read.

    A big sheet creates millions of lists and tuples, none of them in a
    cycle; each collection would walk all of them again (a 1,048,575-row
    sheet reads in a third less time without it).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def open_workbook(path: Sheet) -> Workbook:
    """Open a sheet file, check it is what its suffix says, and list its tabs.

    DataFrames (``frames.Sheet``) are read as a sheet here too (``frames.frame_workbook``).
    """
    if not isinstance(path, str | os.PathLike):
        from provisioner.frames import frame_workbook

        return frame_workbook(path)
    path = Path(path)
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise SheetError(f"{path.name}: unknown file type {path.suffix!r}: save it as {ACCEPTED}")
    if not path.exists():
        raise SheetError(f"{path}: file not found")
    if not path.is_file():
        raise SheetError(f"{path}: is a folder, not a sheet file")
    kept = _take_kept(path)
    if kept is not None:
        return kept
    if fmt == "csv":
        return _open_csv(path)
    with path.open("rb") as file:
        head = file.read(_HEAD)
    if head[:4] != ZIP_MAGIC:
        raise SheetError(f"{path.name}: {_not_a_workbook(path, head)}")
    with contextlib.suppress(zipfile.BadZipFile, OSError):  # a broken zip is told below
        with zipfile.ZipFile(path) as archive:
            _check_zip(path, archive)
    actual, template, padded = _zip_kind(path)
    if actual != fmt:
        raise SheetError(f"{path.name}: {_wrong_zip(path, actual, f'a {path.suffix} workbook')}")
    extents = _Extents(path) if fmt == "xlsx" else None
    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except CalamineError as exc:
        raise SheetError(
            f"{path.name}: cannot be read as {path.suffix} ({exc}): "
            f"open it in Excel or LibreOffice and save it again as {path.suffix}"
        ) from exc
    names = list(workbook.sheet_names)
    states = [sheet.visible for sheet in workbook.sheets_metadata]
    kinds = [sheet.typ for sheet in workbook.sheets_metadata]
    return Workbook(
        path,
        fmt,
        names,
        hidden_tabs=[
            n for n, s in zip(names, states, strict=True) if s != SheetVisibleEnum.Visible
        ],
        very_hidden_tabs=[
            n for n, s in zip(names, states, strict=True) if s == SheetVisibleEnum.VeryHidden
        ],
        chart_tabs=[n for n, k in zip(names, kinds, strict=True) if k != SheetTypeEnum.WorkSheet],
        template=template,
        numbers_padded=padded,
        _calamine=workbook,
        _extents=extents,
    )


def record_template(workbook: OpenpyxlWorkbook, ref: str) -> None:
    """Record the site template ``ref`` in a workbook this tool writes (read back as
    ``Workbook.template``); an earlier record, as in a copy of such a workbook, is replaced."""
    from openpyxl.packaging.custom import StringProperty

    # openpyxl 3.1 has custom_doc_props; its type stubs do not know it yet.
    properties = workbook.custom_doc_props  # type: ignore[attr-defined]
    if TEMPLATE_PROPERTY in properties.names:
        del properties[TEMPLATE_PROPERTY]
    properties.append(StringProperty(name=TEMPLATE_PROPERTY, value=ref))


# The template chooser reads a sheet's headers before the command reads the sheet: the
# workbook it opened (with the tables it read) waits here for the next open_workbook of
# the same, unchanged file, so that a big sheet is parsed once. One slot, taken once.
_kept: tuple[tuple[Path, int, int], Workbook] | None = None


def _identity(path: Path) -> tuple[Path, int, int]:
    status = path.stat()
    return path.resolve(), status.st_mtime_ns, status.st_size


def keep_for_next_open(workbook: Workbook) -> None:
    """Hand ``workbook`` to the next ``open_workbook`` of its file, if the file is unchanged."""
    global _kept
    if workbook.format not in SUFFIXES.values():
        return  # DataFrames: no file to find again
    try:
        _kept = (_identity(workbook.path), workbook)
    except OSError:
        _kept = None


def _take_kept(path: Path) -> Workbook | None:
    """The kept workbook of ``path`` if the file is unchanged; a kept one of ``path`` goes
    either way."""
    global _kept
    if _kept is None:
        return None
    identity, workbook = _kept
    try:
        now = _identity(path)
    except OSError:
        return None
    if now[0] != identity[0]:
        return None
    _kept = None
    return workbook if now == identity else None


# --- bounds: what a file may ask of the reader -----------------------------------


# Excel's own sheet size: no workbook Excel or LibreOffice saves refers beyond it.
EXCEL_ROWS = 1_048_576
EXCEL_COLUMNS = 16_384
# How many cells (rows x columns, counted from A1) one tab may span. The reader holds
# every cell of that span, 32 bytes each (python-calamine), so 20 million is about
# 640 MB: Excel's full 1,048,576 rows of 19 columns. --max-cells raises it.
MAX_CELLS = 20_000_000
# A zip member (a sheet's XML, the shared strings) may unpack to this many bytes per
# cell of the bound (1 GB for the default): a real sheet's XML is 30-40 bytes a cell.
BYTES_PER_CELL = 50
# Unpacked/packed above which a member over RATIO_FROM bytes is a zip bomb: a real
# sheet's XML packs 5 to 20 times (Apache POI refuses above 100 too).
MAX_RATIO = 100
RATIO_FROM = 8 << 20
MAX_MEMBERS = 10_000
# A CSV line longer than this is no site's row (Excel keeps at most 32,767 characters
# in a cell); its cells are counted against the same MAX_CELLS.
MAX_CSV_LINE = 1 << 20


@dataclass(frozen=True)
class Bounds:
    """What one sheet file may ask of the reader (see the README, "How the tool reads
    your sheet"); ``cells`` is --max-cells."""

    cells: int = MAX_CELLS

    @property
    def member_bytes(self) -> int:
        return max(256 << 20, BYTES_PER_CELL * self.cells)


_bounds = Bounds()


def set_bounds(bounds: Bounds) -> None:
    """The bounds for every sheet this process reads from now on (--max-cells)."""
    global _bounds
    _bounds = bounds


def _refuse(path: Path, what: str) -> SheetError:
    return SheetError(f"{path.name}: {what}")


def _check_zip(path: Path, archive: zipfile.ZipFile) -> None:
    """Refuse a zip whose members would unpack to more than a sheet can need.

    Sizes are the ones the zip's directory declares; a member that unpacks to
    more than it declares fails its checksum where this tool unpacks it.
    """
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise _refuse(
            path,
            f"the file holds {len(members):,} parts, more than the {MAX_MEMBERS:,} a workbook "
            "has: it is not a workbook saved by Excel or LibreOffice; open it and save it again",
        )
    limit = _bounds.member_bytes
    for member in members:
        size, packed = member.file_size, member.compress_size
        if size > limit:
            raise _refuse(
                path,
                f"the part {member.filename} unpacks to {size:,} bytes, more than the "
                f"{limit:,} a sheet of {_bounds.cells:,} cells needs (--max-cells): save a copy "
                "with only the site's rows, or raise --max-cells if the sheet is that big",
            )
        if size > RATIO_FROM and size > MAX_RATIO * max(packed, 1):
            raise _refuse(
                path,
                f"the part {member.filename} unpacks from {packed:,} to {size:,} bytes, "
                f"{size // max(packed, 1):,} times (a sheet packs at most {MAX_RATIO} times): "
                "it is a zip bomb, not a sheet saved by Excel or LibreOffice; do not open it, "
                "ask for the site's sheet again",
            )


# A cell tag as Excel, LibreOffice and openpyxl write it: <c r="B7" ...>.
_PLAIN_CELL = b'<c r="'
_LAST_REF = re.compile(rb'<c r="([A-Z]{1,3})(\d{1,7})"')
# Any spelling of a cell or row tag: <c>, <x:c ...>, <row/>, with r= anywhere or nowhere.
_ANY_TAG = re.compile(rb"<(/?)(?:[\w.-]+:)?(c|row)(?=[\s/>])([^>]*)>")
_R_ATTRIBUTE = re.compile(rb"""(?:^|\s)r\s*=\s*["']\s*([A-Za-z]*)(\d*)\s*["']""")
_DIMENSION = re.compile(rb"""<(?:[\w.-]+:)?dimension\s[^>]*?ref\s*=\s*["']([^"']*)["']""")
_PREFIXED = re.compile(rb":(?:c|row)[\s/>]")
_CELL_TAG = re.compile(rb"<c(?=[\s/>])")
_SHEET_DATA_END = re.compile(rb"</(?:[\w.-]+:)?sheetData\s*>")


@dataclass
class _Extent:
    """The largest row and column (1-based) a sheet's cells reach, as the reader counts."""

    rows: int = 0
    columns: int = 0
    # Where the reader is when a tag gives no r="": the row, and the last column in it.
    row: int = 0
    column: int = 0

    def reach(self, row: int, column: int) -> None:
        self.rows = max(self.rows, row)
        self.columns = max(self.columns, column)


def _extent(path: Path, archive: zipfile.ZipFile, member: str, tab: str, exact: bool) -> _Extent:
    """The extent of a sheet's cells (see _check_extent)."""
    extent = _Extent()
    declared: bytes | None = None
    inside = False  # in <sheetData>, where the cells are
    with archive.open(member) as stream:
        for part in _parts(stream, b">"):
            if declared is None:
                found = _DIMENSION.search(part)
                declared = found.group(1) if found else b""
                if declared:
                    _check_declared(path, tab, declared)
            if not inside:
                start = part.find(b"sheetData")
                if start < 0:
                    continue
                part, inside = part[start:], True
            end = _sheet_data_end(part)
            if end >= 0:
                part = part[:end]
            plain = not _PREFIXED.search(part)
            if not (plain and _plain_extent(part, extent, exact)):
                _tag_extent(part, extent)
            if end >= 0:
                break
    return extent


def _sheet_data_end(part: bytes) -> int:
    """Where </sheetData> starts in ``part`` (-1: not in it); a substring search, as a
    regex would stop at every </v> and </c>."""
    at = part.find(b"sheetData", 1)
    while at >= 0:
        start = part.rfind(b"<", 0, at)
        if start >= 0 and _SHEET_DATA_END.match(part, start):
            return start
        at = part.find(b"sheetData", at + 1)
    return -1


def _check_extent(path: Path, archive: zipfile.ZipFile, member: str, tab: str) -> None:
    """Refuse a tab whose cells span more than the bound, before the reader holds them.

    The reader keeps a block of every cell from A1 to the last row and column any
    cell reaches, so one stray value in AMJ1048576 asks for a billion cells. The
    sheet's XML is streamed: a part where every cell is written <c r="..." (as
    Excel, LibreOffice and openpyxl write it) costs a few substring searches; any
    other part is read tag by tag as the reader does (a cell or row without r=
    is the next one). A rough extent first (see _plain_extent), the exact one
    only when the rough one is over the bound.
    """
    # A tab that declares an extent the rough one would put over the bound (Excel's
    # full 1,048,576 rows) is scanned exactly at once, not twice.
    exact = _roughly_over(_declared(archive, member))
    extent = _extent(path, archive, member, tab, exact=exact)
    rows, columns = extent.rows, extent.columns
    if not exact and _over(rows, columns):
        extent = _extent(path, archive, member, tab, exact=True)
    rows, columns = extent.rows, extent.columns
    if rows > EXCEL_ROWS or columns > EXCEL_COLUMNS:
        raise _refuse(
            path,
            f"the tab {tab!r} has a cell in {column_letter(columns - 1)}{rows}, beyond Excel's "
            f"last cell XFD{EXCEL_ROWS}: it was not saved by Excel or LibreOffice; open it and "
            "save only the site's rows in a new workbook",
        )
    if rows * columns > _bounds.cells:
        raise _refuse(
            path,
            f"the tab {tab!r} has cells up to {column_letter(columns - 1)}{rows} "
            f"({rows:,} rows x {columns:,} columns = {rows * columns:,} cells, more than the "
            f"{_bounds.cells:,} this tool reads): a stray value far below or right of the "
            "table? Delete it (Ctrl+End in Excel goes to it) or save a copy with only the "
            "site's rows; a sheet really that big needs --max-cells",
        )


def _over(rows: int, columns: int) -> bool:
    return rows * columns > _bounds.cells or rows > EXCEL_ROWS or columns > EXCEL_COLUMNS


def _declared(archive: zipfile.ZipFile, member: str) -> tuple[bytes, bytes] | None:
    """The letters and digits of the last cell a sheet's <dimension> declares (``I``,
    ``1048576``); None when it declares none the reader goes by."""
    with archive.open(member) as stream:
        found = _DIMENSION.search(stream.read(1 << 16))
    last = found.group(1).rpartition(b":")[2].replace(b"$", b"") if found else b""
    match = re.fullmatch(rb"([A-Za-z]{1,7})(\d{1,12})", last)
    return (match.group(1).upper(), match.group(2)) if match else None


def _roughly_over(last: tuple[bytes, bytes] | None) -> bool:
    """Whether the rough extent (see _plain_extent) of the cell ``last`` is over the bound."""
    if last is None:
        return False
    letters, digits = last
    rows = int(_round_up(digits, b"9"))
    return _over(rows, _column_index(_round_up(letters, b"Z")) + 1)


def _check_declared(path: Path, tab: str, ref: bytes) -> None:
    """Refuse a <dimension ref=...> beyond Excel's last cell."""
    last = ref.rpartition(b":")[2].replace(b"$", b"")
    match = re.fullmatch(rb"([A-Za-z]{1,7})(\d{1,12})", last)
    if match is None:
        return  # the reader does not go by it
    columns, rows = _column_index(match.group(1).upper()) + 1, int(match.group(2))
    if rows > EXCEL_ROWS or columns > EXCEL_COLUMNS:
        raise _refuse(
            path,
            f"the tab {tab!r} declares cells up to {last.decode()} ({rows:,} rows x "
            f"{columns:,} columns), beyond Excel's last cell XFD{EXCEL_ROWS}: it was not "
            "saved by Excel or LibreOffice; open it and save only the site's rows in a new "
            "workbook",
        )


def _plain_extent(part: bytes, extent: _Extent, exact: bool) -> bool:
    """The extent of a part whose cells all start <c r="LETTERS DIGITS".

    The part's last cell is taken for the farthest, and one regex looks for a
    cell tag that is not <c r= followed by a cell up to it: it stops at each
    cell, but only a farther cell (or one spelled otherwise) ends the search.
    A farther one becomes the farthest and the search goes on from it. Not
    ``exact``, up to means up to its first letter and first digit (row 100001
    counts as up to 199999, column AD as up to AZ): a regex of fewer
    branches. False for a part spelled otherwise or out of order (many
    found): it must be read tag by tag.
    """
    last = _LAST_REF.match(part, max(part.rfind(_PLAIN_CELL), 0))
    if last is None:
        return _CELL_TAG.search(part) is None
    letters, digits = last.groups()
    if not exact:
        letters, digits = _round_up(letters, b"Z"), _round_up(digits, b"9")
    at = 0
    for _ in range(64):
        found = _not_within(letters, digits, exact).search(part, at)
        if found is None:
            extent.reach(int(digits), _column_index(letters) + 1)
            return _carry_row(part, extent)
        ref = _LAST_REF.match(part, found.start())
        if ref is None:
            return False  # a cell spelled otherwise
        more_letters, more_digits = ref.groups()
        if not exact:
            more_letters, more_digits = _round_up(more_letters, b"Z"), _round_up(more_digits, b"9")
        wider = (len(more_letters), more_letters) > (len(letters), letters)
        lower = int(more_digits) > int(digits)
        if not (wider or lower):
            return False  # within after all (a row number with leading zeros)
        letters = more_letters if wider else letters
        digits = more_digits if lower else digits
        at = ref.end()
    return False


def _carry_row(part: bytes, extent: _Extent) -> bool:
    """Where the reader is at the end of a part read as plain: the row of its last <row>
    and the column of the last cell after it (a cell without r= in the next part goes
    on from there). False when that <row> has no r=: it must be read tag by tag."""
    at = part.rfind(b"<row")
    if at >= 0:
        tag = _ANY_TAG.match(part, at)
        ref = _R_ATTRIBUTE.search(tag.group(3)) if tag else None
        if ref is None or not ref.group(2):
            return False
        extent.row, extent.column = int(ref.group(2)), 0
    cell = _LAST_REF.match(part, max(part.rfind(_PLAIN_CELL), 0))
    if cell is not None and cell.start() > at:
        extent.column = _column_index(cell.group(1)) + 1
    return True


def _round_up(text: bytes, top: bytes) -> bytes:
    """The first character kept, the rest the highest: AD -> AZ, 100001 -> 199999."""
    return text[:1] + top * (len(text) - 1)


@functools.lru_cache(maxsize=256)
def _not_within(letters: bytes, digits: bytes, exact: bool) -> re.Pattern[bytes]:
    """A cell tag that is not <c r="..." up to column ``letters`` and row ``digits`` (not
    ``exact``: only their first characters compared, the rest is the highest anyway).

    Its literal start <c finds each cell at the speed of a substring search; the
    lookahead takes its first branch for nearly every cell. <color> and the like
    are no cell: after the lookahead, [\\s/>] leaves them.
    """
    columns = _at_most(letters, b"A-Z", b"A", exact)
    rows = _at_most(digits, b"0-9", b"0", exact)
    within = rb'r="(?:%s)(?:%s)"' % (b"|".join(columns), b"|".join(rows))
    return re.compile(rb"<c(?! %s)[\s/>]" % within)


def _at_most(text: bytes, span: bytes, low: bytes, exact: bool) -> list[bytes]:
    """Regex branches for the strings of ``span`` characters (A-Z or 0-9) up to ``text``:
    as long and not greater (not ``exact``: not greater in the first character), or
    shorter. In that order, the shorter possessive: most cells of a big sheet are as
    long, and a branch that backtracks digit by digit costs a third of the search."""
    size = len(text)
    shorter = [rb"[%s]{1,%d}+" % (span, size - 1)] if size > 1 else []
    if not exact:
        return [rb"[%s-%s][%s]{%d}" % (low, text[:1], span, size - 1), *shorter]
    branches = [text]
    for i in range(size):
        if text[i] > low[0]:
            below = bytes([text[i] - 1])
            branches.append(rb"%s[%s-%s][%s]{%d}" % (text[:i], low, below, span, size - i - 1))
    return [*branches, *shorter]


def _tag_extent(part: bytes, extent: _Extent) -> None:
    """The extent of a part read tag by tag, as the reader counts a tag without r=."""
    for tag in _ANY_TAG.finditer(part):
        closing, name, raw = tag.groups()
        if closing:
            continue
        ref = _R_ATTRIBUTE.search(raw)
        letters, digits = (ref.group(1).upper(), ref.group(2)) if ref else (b"", b"")
        if name == b"row":
            extent.row = int(digits) if digits else extent.row + 1
            extent.column = 0
            continue
        row = int(digits) if digits else max(extent.row, 1)
        column = _column_index(letters) + 1 if letters else extent.column + 1
        extent.column = column
        extent.reach(row, column)


def _check_csv(path: Path, delimiter: str) -> None:
    """Refuse a CSV with a line longer than MAX_CSV_LINE or more cells than the bound,
    read in blocks before the file is read whole."""
    lines = cells = 0  # line breaks and delimiters before this block
    since = 0  # bytes of the current line before this block
    sep = delimiter.encode()
    with path.open("rb") as file:
        while block := file.read(_CHUNK):
            at = _long_line(block, since)
            if at >= 0:
                line = lines + block.count(b"\n", 0, at) + 1
                raise _refuse(
                    path,
                    f"line {line:,} is longer than "
                    f"{MAX_CSV_LINE:,} characters, which no site's row is: is this the sheet? "
                    "Save the site's rows again as CSV UTF-8, or as .xlsx",
                )
            last = block.rfind(b"\n")
            since = since + len(block) if last < 0 else len(block) - last - 1
            lines += block.count(b"\n")
            cells += block.count(sep)
            if cells + lines > _bounds.cells:
                raise _refuse(
                    path,
                    f"by line {lines:,} the file has more than {_bounds.cells:,} cells, more "
                    "than this tool reads (--max-cells): save a copy with only the site's rows, "
                    "or raise --max-cells if the sheet is that big",
                )


def _long_line(block: bytes, since: int) -> int:
    """Where in ``block`` a line longer than MAX_CSV_LINE starts (-1: none), ``since``
    bytes of the first line having come before it. Jumps a window at a time: every
    line inside a window that holds a line break is shorter than the window."""
    pos, room = 0, MAX_CSV_LINE - since
    while pos < len(block):
        end = block.find(b"\n", pos, pos + room + 1)
        if end < 0:
            return pos if len(block) - pos > room else -1
        pos = end + 1
        last = block.rfind(b"\n", pos, pos + MAX_CSV_LINE + 1)
        if last >= 0:
            pos = last + 1
        room = MAX_CSV_LINE
    return -1


# --- what the file really is -------------------------------------------------


# How much of a file is read to tell what it is.
_HEAD = 512
_TO_A_SHEET = f"ask for the sheet itself, saved as {ACCEPTED}"
_UNPACK = f"unpack it and give the sheet inside, saved as {ACCEPTED}"
_PICTURE = f"a picture of a sheet cannot be read; {_TO_A_SHEET}"
_COPY_TABLE = f"copy its table into a workbook, or {_TO_A_SHEET}"
# Files told by their first bytes (magic numbers, never by the name): what each is, and
# what to do. None that a CSV's first line could start with.
_MAGIC = (
    (b"\x1f\x8b", "a gzip-compressed file", _UNPACK),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", _UNPACK),
    (b"Rar!\x1a\x07", "a RAR archive", _UNPACK),
    (b"\xfd7zXZ\x00", "an xz-compressed file", _UNPACK),
    (b"%PDF-", "a PDF document", f"the tables of a PDF cannot be read; {_TO_A_SHEET}"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image", _PICTURE),
    (b"\xff\xd8\xff", "a JPEG image", _PICTURE),
    (b"GIF87a", "a GIF image", _PICTURE),
    (b"GIF89a", "a GIF image", _PICTURE),
    (b"SQLite format 3\x00", "an SQLite database", "export the table as CSV UTF-8"),
    (b"{\\rtf", "an RTF document", _COPY_TABLE),
)
_BZIP2 = re.compile(rb"BZh[1-9]1AY&SY")
_OPEN_IN_EXCEL = "open it in Excel or LibreOffice and save it as .xlsx"


def _not_a_workbook(path: Path, head: bytes) -> str:
    """Why a file named .xlsx, .xlsm or .ods that is no zip is not one: what it is."""
    if not head:
        return "the file is empty (0 bytes)"
    wanted = f"a {path.suffix} workbook"
    known = _what_it_is(path, head)
    if known is not None:
        return f"this is {known[0]}, not {wanted}: {known[1]}"
    if b"\x00" not in head or head.startswith(_UTF16_BOMS):
        return (
            f"this is text (a CSV?), not {wanted}: "
            f"rename it to .csv, or open it and save it as {path.suffix}"
        )
    return f"this is not {wanted}, nor a file this tool knows: save the sheet as {ACCEPTED}"


def _what_it_is(path: Path, head: bytes) -> tuple[str, str] | None:
    """What a file is by its first bytes, and what to do, where that is no sheet: an
    archive, a PDF, an image, an old .xls, a web page... None for a zip (``_zip_kind``
    and ``_wrong_zip`` tell those apart) and for plain text."""
    for magic, what, fix in _MAGIC:
        if head.startswith(magic):
            return what, fix
    if _BZIP2.match(head):
        return "a bzip2-compressed file", _UNPACK
    if head.startswith(OLE_MAGIC):
        return _ole_kind(path)
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html", b"<table")):
        return "a web page (HTML)", f"some programs write their Excel export so; {_OPEN_IN_EXCEL}"
    if start.startswith(b"<?xml"):
        if b"office:spreadsheet" in start or b'progid="excel.sheet"' in start:
            return "an Excel 2003 XML spreadsheet", _OPEN_IN_EXCEL
        return "an XML file", _TO_A_SHEET
    return None


# Excel's own stream names in an OLE2 file, as its directory holds them (UTF-16, ended
# by a NUL), and how much of the file is searched for them.
_OLE_STREAMS = {
    name: name.encode("utf-16-le") + b"\x00\x00"
    for name in ("EncryptedPackage", "Workbook", "Book", "WordDocument")
}
_OLE_SCAN = 64 << 20


def _ole_kind(path: Path) -> tuple[str, str]:
    """An OLE2 compound file: an old Excel workbook (.xls), a workbook saved with a
    password (Excel encrypts an .xlsx into one), an old Word document: told by its
    streams' names."""
    try:
        with path.open("rb") as file:
            data = file.read(_OLE_SCAN)
    except OSError:
        data = b""
    if _OLE_STREAMS["EncryptedPackage"] in data:
        return (
            "a workbook saved with a password",
            "open it in Excel, take the password off (File > Info > Protect Workbook > "
            "Encrypt with Password, empty) and save it again",
        )
    if _OLE_STREAMS["WordDocument"] in data:
        return "an old Word document (.doc)", _COPY_TABLE
    if _OLE_STREAMS["Workbook"] in data or _OLE_STREAMS["Book"] in data:
        return "an old Excel workbook (.xls)", _OPEN_IN_EXCEL
    return (
        "an old Office file (.xls, .doc) or a workbook saved with a password",
        f"{_OPEN_IN_EXCEL}, without a password",
    )


def _zip_kind(path: Path) -> tuple[str | None, str | None, bool]:
    """``xlsx``, ``ods`` or None (another or a broken zip file), the site template the
    file records (``TEMPLATE_PROPERTY``) or None, and whether a number format of the
    file pads with zeros (an .ods: not looked at, taken as padding)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if _other_office(list(names)):
                return None, None, False
            if "xl/workbook.xml" in names or "[Content_Types].xml" in names:
                template = _recorded_template(archive, "docProps/custom.xml", names)
                return "xlsx", template, _pads_zeros(archive, names)
            if "mimetype" in names:
                mimetype = archive.read("mimetype")
                if b"opendocument.spreadsheet" in mimetype:
                    return "ods", _recorded_template(archive, "meta.xml", names), True
    except (zipfile.BadZipFile, OSError, KeyError):
        return None, None, False
    return None, None, False


# A number format's section that shows a whole number padded to a width: 00000000.
_PADDED = re.compile(r"0{2,}")


def _pads_zeros(archive: zipfile.ZipFile, names: set[str]) -> bool:
    """Whether xl/styles.xml defines a number format that pads whole numbers with zeros
    (quoted text and [colour] parts aside); a file that cannot say counts as padding."""
    if "xl/styles.xml" not in names:
        return False
    try:
        styles = archive.read("xl/styles.xml").decode("utf-8", "replace")
    except (zipfile.BadZipFile, zlib.error, OSError):
        return True
    for code in re.findall(r'formatCode="([^"]*)"', styles):
        for section in html.unescape(code).split(";"):
            plain = re.sub(r'"[^"]*"|\[[^\]]*\]|\\.', "", section).strip()
            if _PADDED.fullmatch(plain):
                return True
    return False


def _recorded_template(archive: zipfile.ZipFile, member: str, names: set[str]) -> str | None:
    """The value of the ``TEMPLATE_PROPERTY`` custom property, if the file has one.

    In docProps/custom.xml a ``<property name="...">`` holds the value in a child
    (``<vt:lpwstr>``); in an .ods's meta.xml it is ``<meta:user-defined meta:name="...">``.
    A small file either way: read only when there is one.
    """
    if member not in names:
        return None
    try:
        root = ElementTree.fromstring(archive.read(member))
    except (ElementTree.ParseError, zipfile.BadZipFile, zlib.error, OSError):
        return None
    for element in root.iter():
        attributes = {name.rpartition("}")[2]: value for name, value in element.attrib.items()}
        if attributes.get("name") != TEMPLATE_PROPERTY:
            continue
        text = "".join(element.itertext()).strip()
        return text or None
    return None


def _wrong_zip(path: Path, actual: str | None, wanted: str) -> str:
    """Why a zip file is not ``wanted`` (``a CSV``, ``a .ods workbook``): what it is."""
    if actual == "xlsx":
        return f"this is an Excel workbook, not {wanted}: rename it to .xlsx"
    if actual == "ods":
        return f"this is an OpenDocument spreadsheet, not {wanted}: rename it to .ods"
    what, fix = _zip_contents(path)
    return f"this is {what}, not {wanted}: {fix}"


def _zip_contents(path: Path) -> tuple[str, str]:
    """What a zip file that is no workbook is, and what to do."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            mimetype = archive.read("mimetype")[:200] if "mimetype" in names else b""
    except (zipfile.BadZipFile, zlib.error, OSError, KeyError, EOFError):
        return (
            "a damaged zip file (a workbook cut short?)",
            "ask for the file again, or open it in Excel or LibreOffice and save it again",
        )
    office = _other_office(names)
    if office:
        return office, _COPY_TABLE
    if b"opendocument" in mimetype:
        return "an OpenDocument file but no spreadsheet", _COPY_TABLE
    if any(name.startswith("Index/") and name.endswith(".iwa") for name in names):
        return "an Apple Numbers document", "export it from Numbers: File > Export To > Excel"
    sheets = [n for n in names if PurePosixPath(n).suffix.lower() in SUFFIXES]
    if sheets:
        return "a zip archive", f"unpack it and give the sheet inside ({listed(sheets, 3)})"
    return "a zip archive", _UNPACK


def _other_office(names: list[str]) -> str | None:
    """A Word document or a PowerPoint presentation (zips like an .xlsx), else None."""
    if "word/document.xml" in names:
        return "a Word document"
    if "ppt/presentation.xml" in names:
        return "a PowerPoint presentation"
    return None


# --- CSV -----------------------------------------------------------------------


def _open_csv(path: Path) -> Workbook:
    with path.open("rb") as file:
        head = file.read(_HEAD)
    if head.startswith(ZIP_MAGIC):
        raise SheetError(f"{path.name}: {_wrong_zip(path, _zip_kind(path)[0], 'a CSV')}")
    known = _what_it_is(path, head)
    if known is not None:
        raise SheetError(f"{path.name}: this is {known[0]}, not a CSV: {known[1]}")
    _check_csv(path, csv_delimiter(path) or ",")
    data = path.read_bytes()
    if b"\x00" in data and not data.startswith(_UTF16_BOMS):
        raise SheetError(f"{path.name}: {_nul_bytes(data)}")
    text, encoding = _decode(path, data)
    del data
    delimiter = _sniff_delimiter(text)
    return Workbook(
        path,
        "csv",
        [path.name],
        encoding,
        delimiter,
        _csv_size=len(text),
        _csv_marked=MARK in text,
    )


def _nul_bytes(data: bytes) -> str:
    """Why a CSV with NUL bytes (and no UTF-16 byte-order mark) cannot be read."""
    head = data[:_HEAD]
    # UTF-16 text without its mark: every other byte NUL (the high byte of each letter).
    if head.count(b"\x00") * 3 >= len(head) and (
        head[0::2].count(0) * 4 >= len(head) or head[1::2].count(0) * 4 >= len(head)
    ):
        return (
            "this is UTF-16 text without its byte-order mark, which cannot be read for sure: "
            f"{SAVE_AS_UTF8}"
        )
    return f"this holds binary data (NUL bytes), not the text of a CSV: {SAVE_AS_UTF8}"


def _unmark(row: list[str]) -> None:
    """Each cell of a data row as the value it stands for: the ``'`` that keeps a
    spreadsheet from running ``=2+3`` as a formula (written by this tool's CSVs, and by
    people who know it) is not part of the value (``files.csv_value``)."""
    for j, cell in enumerate(row):
        if cell[:1] == MARK:
            row[j] = csv_value(cell)


# The csv module's field limit (128 KiB unless raised) is one for the process. A CSV
# tab is read a row at a time while other work goes on in the same thread (another
# read of a CSV among it), so the lock is one that thread may take again.
_CSV_LIMIT = threading.RLock()
_C_LONG_MAX = 2**31 - 1  # what field_size_limit() takes on every platform


@contextlib.contextmanager
def _csv_fields_up_to(size: int) -> Iterator[None]:
    """Let csv readers take fields of up to ``size`` characters, while the block runs.

    No field is longer than the whole text, so the limit is raised only for
    a text longer than it, and put back afterwards; the lock keeps two reads
    in threads from putting it back under each other.
    """
    with _CSV_LIMIT:
        limit = csv.field_size_limit()
        if size < limit:
            yield
            return
        csv.field_size_limit(min(size + 1, _C_LONG_MAX))
        try:
            yield
        finally:
            csv.field_size_limit(limit)


# The encodings a CSV that is not UTF-8 is read in, each with the name the person is told:
# Windows' code pages (Excel's "CSV (Comma delimited)" writes the system's), the ISO-8859
# sets of LibreOffice and older tools, KOI8-R, and Mac Roman (Excel for Mac). Windows-1252
# first: German Excel's, the likely one, and the one taken where the detector cannot tell
# it from another (see _detect).
CODE_PAGES = {
    "cp1252": "Windows-1252 (Western European)",
    "cp1250": "Windows-1250 (Central European)",
    "cp1251": "Windows-1251 (Cyrillic)",
    "cp1253": "Windows-1253 (Greek)",
    "cp1254": "Windows-1254 (Turkish)",
    "cp1257": "Windows-1257 (Baltic)",
    "cp932": "Shift_JIS (Japanese)",
    "gb18030": "GB18030 (Chinese)",
    "big5": "Big5 (Chinese, traditional)",
    "cp949": "Windows-949 (Korean)",
    "iso8859_2": "ISO-8859-2 (Central European)",
    "iso8859_5": "ISO-8859-5 (Cyrillic)",
    "iso8859_7": "ISO-8859-7 (Greek)",
    "iso8859_9": "ISO-8859-9 (Turkish)",
    "iso8859_15": "ISO-8859-15 (Western European)",
    "koi8_r": "KOI8-R (Cyrillic)",
    "mac_roman": "Mac Roman (old Excel for Mac)",
}
SAVE_AS_UTF8 = (
    "save the file as CSV UTF-8 (Excel: File > Save As > CSV UTF-8 (Comma delimited); "
    "LibreOffice: Save As > Text CSV, character set Unicode (UTF-8))"
)
# How much of a CSV the detector reads: its lines with bytes beyond ASCII, up to this many
# bytes (the rest is ASCII, the same in every encoding).
_SAMPLE = 1 << 14
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")
# How far ahead of every other reading the detector's best one must be to be taken (see
# _detect): fewer words no language writes (at most half as many), a mess ratio lower by
# this, or a language fit higher by this.
_CHAOS_LEAD = 0.05
# The mess ratio up to which a reading is rated at all: above charset-normalizer's 0.2,
# which leaves out a short French line ("côté été") in every encoding.
_MAX_CHAOS = 0.5
_COHERENCE_LEAD = 0.1


def _decode(path: Path, data: bytes) -> tuple[str, str]:
    """The text of a CSV and its encoding: UTF-8 with or without BOM, UTF-16 with BOM
    (Excel's "Unicode Text"); else the one of ``CODE_PAGES`` the detector finds,
    where it is sure enough (``_detect``)."""
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif data.startswith(_UTF16_BOMS):
        encoding = "utf-16"
    else:
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            encoding = _detect(path, data)
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        name = CODE_PAGES.get(encoding, encoding.upper())
        raise SheetError(
            f"{path.name}: line {line:,} cannot be read as {name} "
            f"(byte {exc.start:,}), as the lines before it were: {SAVE_AS_UTF8}"
        ) from exc


@dataclass(frozen=True, order=True)
class _Reading:
    """One way to read a CSV's bytes; sorted, the best comes first."""

    odd: int  # words no language writes (_odd_words)
    chaos: float  # charset-normalizer's mess ratio, 0 to 1
    misfit: float  # minus its fit to a language (charset-normalizer's coherence, 0 to 1)
    rank: int  # the place of its encoding in CODE_PAGES: among equals, the likelier one
    encoding: str = field(compare=False)

    def ahead_of(self, rival: _Reading) -> bool:
        """Clearly better than ``rival``: at most half its odd words, or a mess or a
        language fit better by a lead."""
        return (
            rival.odd > 2 * self.odd
            or rival.chaos - self.chaos >= _CHAOS_LEAD
            or rival.misfit - self.misfit >= _COHERENCE_LEAD
        )


def _detect(path: Path, data: bytes) -> str:
    """The encoding of a CSV that is not UTF-8, one of ``CODE_PAGES``.

    charset-normalizer reads the lines with bytes beyond ASCII in each encoding and
    rates each reading: its mess (odd characters, accents where no language puts them)
    and its fit to a language. Short texts give it too little to go by, so each
    reading's words are checked too (``_odd_words``): "Mьller" and "M¸ller" are no one's
    name. A reading with more than a quarter of its words odd is no reading. The best
    is taken when it is ahead of every other (another text: the same text in another
    code page is the same reading) by fewer odd words, a lower mess or a better
    language fit; otherwise the encoding cannot be told and the person is asked for
    UTF-8.
    """
    from charset_normalizer import from_bytes

    readings: dict[str, _Reading] = {}  # text -> its best reading
    order = list(CODE_PAGES)
    for match in from_bytes(_non_ascii_lines(data), cp_isolation=order, threshold=_MAX_CHAOS):
        same = [e for e in (match.encoding, *match.could_be_from_charset) if e in CODE_PAGES]
        text = str(match)
        if not same or text in readings:
            continue
        odd, words = _odd_words(text)
        if odd * 4 > words:
            continue
        encoding = min(same, key=order.index)
        reading = _Reading(odd, match.chaos, -match.coherence, order.index(encoding), encoding)
        readings[text] = reading
    ranked = sorted(readings.values())
    if ranked and all(ranked[0].ahead_of(rival) for rival in ranked[1:]):
        return ranked[0].encoding
    if not ranked:
        raise SheetError(
            f"{path.name}: the file is not UTF-8, nor text in any encoding a spreadsheet "
            f"saves a CSV in: {SAVE_AS_UTF8}"
        )
    names = [CODE_PAGES[r.encoding] for r in ranked[:3]]
    raise SheetError(
        f"{path.name}: the file is not UTF-8, and its encoding cannot be told for sure "
        f"({', '.join(names[:-1])} or {names[-1]}?): {SAVE_AS_UTF8}"
    )


def _non_ascii_lines(data: bytes) -> bytes:
    """The lines of ``data`` that hold a byte beyond ASCII, up to about ``_SAMPLE`` bytes."""
    lines: list[bytes] = []
    size = at = 0
    while size < _SAMPLE and (found := _HIGH_BYTE.search(data, at)):
        start = data.rfind(b"\n", 0, found.start()) + 1
        end = data.find(b"\n", found.start())
        end = len(data) if end < 0 else end + 1
        lines.append(data[start:end])
        size += end - start
        at = end
    return b"".join(lines)


_CONTROLS = re.compile("[\x80-\x9f]")
# Letters of one script; a word of two (the CJK ones count as one) is no word.
_LETTERS = re.compile(r"[^\W\d_ƒ]+")
# Marks that stand next to letters in real text: quotes, apostrophes, °, currency, ...
_BESIDE_LETTERS = frozenset("°€£¥™®©´§·•†‰’‘‚„“”«»…–—‐‑¿¡")
_INSIDE_WORDS = frozenset("’‘´·–—‐‑")  # O’Brien, Nord–Süd
_CJK = frozenset({"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "HALFWIDTH", "FULLWIDTH"})


@functools.lru_cache(maxsize=4096)
def _script(char: str) -> str:
    """LATIN, GREEK, CYRILLIC, CJK, ...: the first word of the character's Unicode name
    (a ligature such as U+FB02 "ﬂ", which typing never gives, is a script of its own)."""
    if char < "\u0250":
        return "LATIN"
    name = unicodedata.name(char, "")
    script = name.partition(" ")[0]
    return "CJK" if script in _CJK else "LIGATURE" if "LIGATURE" in name else script


def _odd_words(text: str) -> tuple[int, int]:
    """How many words of ``text`` hold or touch a character beyond ASCII, and how many of
    those no language writes: letters of two scripts in one word ("Mьller", "S黡"), a
    Latin word of three letters or more that are all accented ("Ëåùíéäáò": Greek read
    as Windows-1252), a capital after a small letter ("ЛещнЯдбт"), a symbol against a
    letter ("M¸ller", "¶ννα") or between two ("B‰ckerei"); and a control character
    (U+0080 to U+009F: "12\x80", € read as ISO-8859-15), each counted as an odd word."""
    odd = words = len(_CONTROLS.findall(text))
    size = len(text)
    for word in _LETTERS.finditer(text):
        letters = word.group()
        start, end = word.span()
        before = text[start - 1] if start else " "
        after = text[end] if end < size else " "
        plain = letters.isascii()
        if plain and before.isascii() and after.isascii():
            continue
        words += 1
        if _odd_beside(before, text[start - 2] if start > 1 else " ") or _odd_beside(
            after, text[end + 1] if end + 1 < size else " "
        ):
            odd += 1
            continue
        if plain:
            continue
        scripts = {_script(c) for c in letters if not c.isascii()}
        latin = any(c.isascii() for c in letters)
        if (
            len(scripts) > 1
            or (latin and scripts != {"LATIN"})
            or (not latin and scripts == {"LATIN"} and len(letters) >= 3)
            or any(
                b.isupper() and not b.isascii() and a.islower()
                for a, b in itertools.pairwise(letters)
            )
        ):
            odd += 1
    return odd, words


def _odd_beside(char: str, other: str) -> bool:
    """Whether ``char``, next to a word's letter, is a symbol no text puts there;
    ``other`` is the character on its other side."""
    if char.isascii():
        return False
    if char == "ƒ":  # a letter, but no one's: the florin sign (Ä read as Mac Roman)
        return True
    if char in _BESIDE_LETTERS:  # 20°C, „Haus“, but not B‰ckerei
        return other.isalpha() and char not in _INSIDE_WORDS
    return unicodedata.category(char)[0] in "SP"


def csv_delimiter(path: Path) -> str | None:
    """The delimiter of a CSV sheet (from its first lines); None when it cannot be read."""
    try:
        with path.open("rb") as file:
            head = file.read(1 << 16)
    except OSError:
        return None
    if head.startswith(_UTF16_BOMS):
        return _sniff_delimiter(head.decode("utf-16", "replace"))
    # Delimiters, quotes and line breaks are the same bytes in UTF-8 and in every one of
    # CODE_PAGES (no byte of a letter's two is one of them): the bytes as Latin-1 will do.
    return _sniff_delimiter(head.decode("latin-1"))


def _sniff_delimiter(text: str) -> str:
    """``,``, ``;`` or a tab: whichever splits the header line into more columns (a tab:
    Excel's "Unicode Text", UTF-16 with tabs, renamed .csv)."""
    counts = {",": 0, ";": 0, "\t": 0}
    quoted = started = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char in counts:
            counts[char] += 1
        elif char in "\r\n":
            if started:
                break
            continue  # leading blank lines
        started = started or not char.isspace()
    if counts["\t"] > max(counts[","], counts[";"]):
        return "\t"
    if counts[";"] and counts[";"] >= counts[","]:
        # On a tie a comma inside header text is likelier than a semicolon.
        return ";"
    return ","


# --- xlsx / ods through calamine ---------------------------------------------------


def _read_calamine(
    file: str,
    tab: str,
    sheet: CalamineSheet,
    marks: _Marks,
    hidden: _Hidden,
    durations: _OdsDurations | None = None,
) -> SheetRows:
    start, end = sheet.start, sheet.end
    first_col = start[1] if start else 0
    last_row = end[0] + 1 if end else 0
    pad: list[str] = []
    extra: list[tuple[int, list[Any]]] = []
    if marks:
        # Formula cells without a value lie outside calamine's used range.
        mark_first_col = min(min(cols) for cols in marks.values())
        if start is None:
            first_col = mark_first_col
        elif mark_first_col < first_col:
            pad = [""] * (first_col - mark_first_col)
            first_col = mark_first_col
        extra = [(n, []) for n in sorted(marks) if n > last_row]

    def records() -> Iterator[tuple[int, list[Any]]]:
        # iter_rows() yields every row from row 1 (blank ones before the used
        # range too) but only the columns from the used range's first one on.
        counter = itertools.count(1)
        rows = sheet.iter_rows()
        yield from zip(counter, (pad + row for row in rows) if pad else rows, strict=False)
        # zip() drew one number more than there were rows.
        if next(counter) - 2 != last_row:
            raise RuntimeError(
                "python-calamine's iter_rows() no longer starts at row 1: row numbers "
                "would be wrong"
            )
        yield from extra

    return SheetRows(
        file,
        tab,
        records,
        first_col,
        marks,
        hidden,
        sheet.merged_cell_ranges or [],
        sheet,
        durations=durations,
    )


# --- from rows of values to a Table ------------------------------------------------


# A data row as a pass over a tab gives it: (Excel row number, the cells' texts, the cells
# that were not text in the file by column index, None when all were).
SheetRow = tuple[int, list[str], dict[int, Stored] | None]


class SheetRows:
    """One tab read a row at a time (``Workbook.rows``); ``table()`` holds every row.

    The header, the first row that is not blank, is read at once: ``header_row``,
    ``headers`` (each stripped, up to the last one filled) and ``columns`` (their
    letters). Each pass over the object reads the tab afresh and gives every data row
    after the header as a ``SheetRow``: the texts are those ``Table.rows`` holds, at
    least one a header (more where the row reaches further), and ``stored`` tells the
    cells that were not plain text in the file as ``Table.stored`` does. Blank rows are
    skipped. Only the row at hand is held: the tab's cells stay with the reader.

    After a whole pass: ``width`` (up to the farthest cell filled, the header's
    included), ``unnamed`` (the indexes of the columns without a header that hold
    something), and ``hidden_rows`` and ``hidden_columns`` as ``Table`` has them.
    """

    def __init__(
        self,
        file: str,
        tab: str,
        records: Callable[[], Iterator[tuple[int, list[Any]]]],
        first_col: int,
        marks: _Marks | None = None,
        hidden: _Hidden | None = None,
        merged: list[tuple[tuple[int, int], tuple[int, int]]] | None = None,
        source: object = None,
        *,
        unmark: bool = False,
        durations: _OdsDurations | None = None,
    ) -> None:
        """``records()`` yields (Excel row number, cell values from column ``first_col``
        on) from row 1, afresh on each call; the lists become the rows given.
        ``source`` is what they are read from (a python-calamine sheet), held as long
        as this object. ``unmark``: a CSV with cells marked as text (``_unmark``).
        ``durations``: an .ods tab's (``_OdsDurations``)."""
        self.sheet = tab
        self.numbers_padded = False  # see Table.numbers_padded
        self._records = records
        self._first_col = first_col
        self._marks = marks or {}
        self._hidden = hidden or _Hidden()
        self._source = source
        self._unmarked = unmark
        self._durations = durations
        texts = self._texts()
        try:
            first = next(texts, None)
        finally:
            texts.close()
        if first is None:
            raise EmptyTab(
                f'{file}: tab "{tab}" is empty: put the header in the first row and one '
                "device per row below it"
            )
        self.header_row, self._header, _ = first
        _check_header(file, tab, self._header, self.header_row, first_col, merged or [])
        self._header_width = max(self._reach, _filled_width(self._header, 0))
        self.headers = [text.strip() for text in self._header[: self._header_width]]
        self.columns = [column_letter(first_col + j) for j in range(len(self.headers))]
        self.width = self._header_width
        self.unnamed: list[int] = []
        self.hidden_rows: list[int] = []
        self.hidden_columns: list[str] = []

    def letter(self, j: int) -> str:
        """The letter of column ``j`` (``C``), also beyond the header."""
        return column_letter(self._first_col + j)

    def _texts(self, keep: Container[int] | None = None) -> Generator[SheetRow, None, None]:
        """Every row that is not blank, the header first, its cells as text. Sets
        ``_reach``, the width the marked cells ask for (they may hold no text).
        ``keep``: see ``blocks``."""
        marks, first_col, durations = self._marks, self._first_col, self._durations
        numbers: dict[float, tuple[str, Stored]] = {}
        typed: list[int] = []
        self._reach = 0
        for number, row in self._records():
            stored: dict[int, Stored] | None = None
            if typed:
                stored = {}
                joined = _to_text(row, stored, numbers, typed, keep)
            else:
                try:
                    joined = "".join(row)
                except TypeError:
                    stored = {}
                    joined = _to_text(row, stored, numbers, typed, keep)
            if number in marks:
                if stored is None:
                    stored = {}
                for col, (how, detail, text) in marks[number].items():
                    j = col - first_col
                    if j >= len(row):
                        row.extend([""] * (j + 1 - len(row)))
                    row[j] = text
                    stored[j] = (how, detail)
                    self._reach = max(self._reach, j + 1)
            elif not joined or joined.isspace():
                continue
            if "\r" in joined:
                row[:] = [cell.replace("\r\n", "\n").rstrip("\r") for cell in row]
            if durations is not None and "P" in joined:
                stored = durations.fix(row, stored)
            yield number, row, stored or None

    def __iter__(self) -> Generator[SheetRow, None, None]:
        return self._pass()

    def _pass(self, keep: Container[int] | None = None) -> Generator[SheetRow, None, None]:
        """A pass over the data rows (``keep``: see ``blocks``)."""
        header_width = self._header_width
        width = header_width
        # A column under a blank header holds something once a row has a text in it:
        # watched until then. Beyond the header, what a row reaches is noted.
        watched = [j for j, text in enumerate(self.headers) if not text]
        filled: set[int] = set()
        ranges = _merged(self._hidden.rows)
        at = 0
        hidden_rows = [self.header_row] if _within(ranges, self.header_row) else []
        unmark = self._unmarked
        texts = self._texts(keep)
        try:
            next(texts)  # the header
            for number, row, stored in texts:
                size = len(row)
                if size < header_width:
                    row.extend([""] * (header_width - size))
                elif size > header_width:
                    reach = _filled_width(row, header_width)
                    if reach > header_width:
                        width = max(width, reach)
                        filled.update(
                            j for j in range(header_width, reach) if row[j] and not row[j].isspace()
                        )
                if watched:
                    found = [j for j in watched if row[j] and not row[j].isspace()]
                    if found:
                        filled.update(found)
                        watched = [j for j in watched if j not in filled]
                if ranges:
                    while at < len(ranges) and ranges[at][1] < number:
                        at += 1
                    if at < len(ranges) and ranges[at][0] <= number:
                        hidden_rows.append(number)
                if unmark:
                    _unmark(row)
                yield number, row, stored
        finally:
            texts.close()
        self.width = width = max(width, self._reach)
        self.unnamed = sorted(filled)
        self.hidden_rows = hidden_rows
        self.hidden_columns = [
            column_letter(self._first_col + j)
            for j in self._hidden_indexes(width)
            if (j < header_width and self.headers[j]) or j in filled
        ]

    def _hidden_indexes(self, width: int) -> list[int]:
        """The hidden columns among the first ``width``, as indexes from ``first_col``."""
        found: set[int] = set()
        first, last = self._first_col, self._first_col + width - 1
        for low, high in self._hidden.columns:
            found.update(range(max(low, first) - first, min(high, last) + 1 - first))
        return sorted(found)

    def blocks(self, size: int, numbers_in: Container[int] | None = None) -> Iterator[Table]:
        """One pass as Tables of ``size`` data rows each (the last may hold fewer),
        with the header's ``headers`` and ``columns``: each block is made when the
        one before is taken, so only a block is held. ``numbers_in``: the columns
        whose cells stored as a number or TRUE/FALSE are noted in ``stored`` (None:
        every column's); elsewhere such a cell is its text, as a typed sheet's
        deviceTypeId, lat and lon are."""
        rows: list[list[str]] = []
        numbers: list[int] = []
        stored: dict[tuple[int, int], Stored] = {}
        for number, row, cells in self._pass(numbers_in):
            if cells:
                index = len(rows)
                for j, what in cells.items():
                    stored[(index, j)] = what
            rows.append(row)
            numbers.append(number)
            if len(rows) == size:
                yield self._block(numbers, rows, stored)
                rows, numbers, stored = [], [], {}
        if rows:
            yield self._block(numbers, rows, stored)

    def _block(
        self, numbers: list[int], rows: list[list[str]], stored: dict[tuple[int, int], Stored]
    ) -> Table:
        return Table(
            self.sheet,
            self.header_row,
            self.headers,
            self.columns,
            numbers,
            rows,
            stored,
            numbers_padded=self.numbers_padded,
        )

    def table(self) -> Table:
        """Every row of the tab, held."""
        rows: list[list[str]] = []
        row_numbers: list[int] = []
        stored: dict[tuple[int, int], Stored] = {}
        for index, (number, row, cells) in enumerate(self):
            if cells:
                for j, what in cells.items():
                    stored[(index, j)] = what
            rows.append(row)
            row_numbers.append(number)
        width = self.width
        header = list(self._header)
        for row in itertools.chain([header], rows):
            if len(row) > width:
                del row[width:]
            elif len(row) < width:
                row.extend([""] * (width - len(row)))
        return Table(
            sheet=self.sheet,
            header_row=self.header_row,
            headers=[text.strip() for text in header],
            columns=[column_letter(self._first_col + j) for j in range(width)],
            row_numbers=row_numbers,
            rows=rows,
            stored=stored,
            hidden_rows=self.hidden_rows,
            hidden_columns=self.hidden_columns,
            numbers_padded=self.numbers_padded,
        )


class _HeldRows(SheetRows):
    """A tab read whole already (DataFrames: ``frames.frame_workbook``) as ``SheetRows``."""

    def __init__(self, table: Table) -> None:
        self._table = table
        first_col = _column_index(table.columns[0].encode()) if table.columns else 0
        super().__init__(table.sheet, table.sheet, lambda: iter(()), first_col)
        self.hidden_rows, self.hidden_columns = table.hidden_rows, table.hidden_columns

    def _texts(self, keep: Container[int] | None = None) -> Generator[SheetRow, None, None]:
        table = self._table
        self._reach = len(table.headers)
        by_row: dict[int, dict[int, Stored]] = {}
        for (i, j), what in table.stored.items():
            by_row.setdefault(i, {})[j] = what
        yield table.header_row, list(table.headers), None
        for i, (number, row) in enumerate(zip(table.row_numbers, table.rows, strict=True)):
            yield number, list(row), by_row.get(i)

    def _pass(self, keep: Container[int] | None = None) -> Generator[SheetRow, None, None]:
        hidden = self._table.hidden_rows, self._table.hidden_columns
        yield from super()._pass(keep)
        self.hidden_rows, self.hidden_columns = hidden


# The stored kinds of a value that is what it shows (``SheetRows.blocks``).
_PLAIN = ("number", "bool")


def _merged(ranges: _Ranges) -> _Ranges:
    """Ranges sorted, those that touch or overlap as one."""
    out: _Ranges = []
    for low, high in sorted(ranges):
        if out and low <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return out


def _within(ranges: _Ranges, number: int) -> bool:
    return any(low <= number <= high for low, high in ranges)


def _filled_width(row: list[str], width: int) -> int:
    """The width up to the row's last non-blank cell, at least ``width``."""
    for j in range(len(row) - 1, width - 1, -1):
        cell = row[j]
        if cell and not cell.isspace():
            return j + 1
    return width


def _check_header(
    file: str,
    tab: str,
    header: list[str],
    header_row: int,
    first_col: int,
    merged: list[tuple[tuple[int, int], tuple[int, int]]],
) -> None:
    for (r1, c1), (r2, c2) in merged:
        if r1 + 1 <= header_row <= r2 + 1:
            area = f"{column_letter(c1)}{r1 + 1}:{column_letter(c2)}{r2 + 1}"
            raise SheetError(
                f"{file}: {tab}!{area} is a merged cell in the header row {header_row}: "
                "unmerge it and give each column its own header"
            )
    seen: dict[str, list[int]] = {}
    for j, text in enumerate(header):
        if text.strip():
            seen.setdefault(_fold(text), []).append(j)
    clashes = []
    for positions in seen.values():
        if len(positions) > 1:
            cells = [f"{tab}!{column_letter(first_col + j)}{header_row}" for j in positions]
            both = "both" if len(cells) == 2 else "all"
            names = listed(cells, last=" and ")
            clashes.append(f'{names} are {both} "{header[positions[0]].strip()}"')
    if clashes:
        raise SheetError(f"{file}: {listed(clashes, 3, sep='; ')}: rename or delete one")


def _fold(text: str) -> str:
    return "".join(text.split()).casefold()


# --- cell values to the text Excel shows -------------------------------------------


def _to_text(
    row: list[Any],
    stored: dict[int, Stored],
    numbers: dict[float, tuple[str, Stored]],
    typed: list[int],
    keep: Container[int] | None = None,
) -> str:
    """Turn the non-text cells of ``row`` into text, in place, noting them in ``stored``.

    Returns the row's text joined; ``stored`` gets each such cell by its column
    index, but a number or TRUE/FALSE only in a column of ``keep`` (when given). ``typed`` lists the columns that held a non-text value before: a column
    of numbers tends to hold numbers on every row, so those are looked at first and
    the whole row only when something else is left. ``numbers`` caches each number's text, so a number repeated
    on every row shares its strings.
    """
    size = len(row)
    for j in typed:
        if j < size:
            value = row[j]
            kind = value.__class__
            if kind is not str:
                if kind is float:
                    known = numbers.get(value)
                else:
                    known = _BOOLS.get(value) if kind is bool else None
                row[j], what = known or _cell_text(value, numbers)
                if keep is None or what[0] not in _PLAIN or j in keep:
                    stored[j] = what
    try:
        return "".join(row)
    except TypeError:
        pass
    for j, value in enumerate(row):
        if value.__class__ is not str:
            row[j], what = _cell_text(value, numbers)
            if keep is None or what[0] not in _PLAIN or j in keep:
                stored[j] = what
            typed.append(j)
    return "".join(row)


def _cell_text(value: Any, numbers: dict[float, tuple[str, Stored]]) -> tuple[str, Stored]:
    """The text Excel shows for a non-text value, and what the file holds."""
    kind = value.__class__
    if kind is float:
        known = numbers.get(value)
        if known is None:
            detail = str(int(value)) if value.is_integer() else repr(value)
            text = detail if value.is_integer() and abs(value) < 1e11 else excel_general(value)
            known = numbers[value] = (text, ("number", detail))
        return known
    if kind is bool:
        return ("TRUE", ("bool", "TRUE")) if value else ("FALSE", ("bool", "FALSE"))
    if kind is int:
        text = excel_general(float(value)) if abs(value) >= 10**11 else str(value)
        return text, ("number", str(value))
    if kind is datetime.datetime:
        text = value.isoformat(sep=" ", timespec="seconds") + _fraction(value.microsecond)
    elif kind is datetime.date:
        text = value.isoformat()
    elif kind is datetime.time:
        text = value.isoformat(timespec="seconds") + _fraction(value.microsecond)
    elif kind is datetime.timedelta:
        text = _duration(value)
    else:
        text = str(value)
        return text, ("error", text)
    return text, ("date", text)


def _fraction(microseconds: int) -> str:
    """The fraction of a second a time holds, to the millisecond (Excel's finest format,
    ss.000): ``.1`` for 100,000 microseconds, nothing for none."""
    milliseconds = min(round(microseconds / 1000), 999)
    return f".{milliseconds:03d}".rstrip("0") if milliseconds else ""


# TRUE and FALSE as _cell_text gives them, made once (a typed sheet has one on every row).
_BOOLS: dict[bool, tuple[str, Stored]] = {flag: _cell_text(flag, {}) for flag in (True, False)}


def _duration(value: datetime.timedelta) -> str:
    """Excel's ``[h]:mm:ss``, the fraction of a second kept: 26:00:00 for a day and two
    hours, 10:10:10.1 (not 10:10:10: two such headers would look the same)."""
    milliseconds = round(value / datetime.timedelta(milliseconds=1))
    sign = "-" if milliseconds < 0 else ""
    seconds, rest = divmod(abs(milliseconds), 1000)
    hours, seconds = divmod(seconds, 3600)
    text = f"{sign}{hours}:{seconds // 60:02d}:{seconds % 60:02d}"
    return text + _fraction(rest * 1000)


# An .ods duration as the file holds it (office:time-value), which python-calamine gives
# as text where it does not make it a time of day: 24 hours or more, or negative.
_ODS_DURATION = re.compile(r"(-?)P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:[.,]\d+)?)S)?)?")
_ODS_TIME_VALUE = re.compile(rb"""time-value\s*=\s*["'](-?P[^"']*)["']""")


class _OdsDurations:
    """The durations of an .ods tab as LibreOffice shows them, [h]:mm:ss: 255:10:10, not
    PT255H10M10S. A text cell reads so only where content.xml holds it as a time value:
    content.xml is read for them when a row first has such a text. ``damaged(scan)``
    runs the read, a broken file turned into a SheetError."""

    def __init__(self, path: Path, damaged: Callable[[Callable[[], set[str]]], set[str]]) -> None:
        self.path = path
        self.damaged = damaged
        self.values: set[str] | None = None

    def fix(self, row: list[str], stored: dict[int, Stored] | None) -> dict[int, Stored] | None:
        """The row with its durations shown so (in place), and its ``stored`` with them."""
        for j, text in enumerate(row):
            if text[:1] != "P" and text[:2] != "-P":
                continue
            duration = _ods_duration(text)
            if duration is None:
                continue
            if self.values is None:
                self.values = self.damaged(self._time_values)
            if text not in self.values:
                continue
            shown = row[j] = _duration(duration)
            stored = stored or {}
            stored[j] = ("date", shown)
        return stored

    def _time_values(self) -> set[str]:
        with zipfile.ZipFile(self.path) as archive, archive.open("content.xml") as stream:
            return {
                value.decode("ascii", "replace")
                for part in _parts(stream, b">")
                for value in _ODS_TIME_VALUE.findall(part)
            }


def _ods_duration(text: str) -> datetime.timedelta | None:
    """``PT255H10M10S``, ``-PT1H0M3S``, ``P1DT2H`` as a timedelta; None for other text."""
    match = _ODS_DURATION.fullmatch(text)
    if match is None or text in ("P", "-P", "PT", "-PT"):
        return None
    sign, days, hours, minutes, seconds = match.groups()
    value = datetime.timedelta(
        days=int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=float((seconds or "0").replace(",", ".")),
    )
    return -value if sign else value


def excel_general(value: float) -> str:
    """A number as Excel's General format shows it in a standard-width cell.

    At most 11 characters (12 with a minus sign): 1337.0 -> "1337",
    53.55 -> "53.55", 352656100677000.0 -> "3.52656E+14", 1e-7 -> "1E-07".
    """
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return repr(value)
    magnitude = abs(value)
    if value.is_integer() and magnitude < 1e11:
        return str(int(value))
    exponent = int(f"{value:e}".rpartition("e")[2])
    if 0 <= exponent <= 10:
        return _strip_zeros(f"{value:.{max(0, 9 - exponent)}f}")
    if -5 < exponent < 0:
        return _strip_zeros(f"{value:.9f}")
    if exponent < 0:
        text = _strip_zeros(f"{value:.11f}")
        if len(text) <= (12 if value < 0 else 11):
            return text
    mantissa, _, power = f"{value:.5E}".partition("E")
    return f"{_strip_zeros(mantissa)}E{power}"


def _strip_zeros(text: str) -> str:
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


# --- formulas without a value and error cells, from the xlsx XML ---------------------


_CELL = re.compile(rb"<(?:[\w.-]+:)?c\s([^>]*?)(?:/>|>(.*?)</(?:[\w.-]+:)?c>)", re.S)
_REF = re.compile(rb'\br="([A-Z]{1,3})(\d+)"')
_TYPE = re.compile(rb'\bt="(\w+)"')
_FORMULA = re.compile(rb"<(?:[\w.-]+:)?f\b[^>]*?(?:/>|>(.*?)</(?:[\w.-]+:)?f>)", re.S)
_VALUE = re.compile(rb"<(?:[\w.-]+:)?v\b[^>]*?(?:/>|>(.*?)</(?:[\w.-]+:)?v>)", re.S)
_CHUNK = 1 << 22
# Hidden rows and columns: <row r="5" hidden="1">, <col min="3" max="4" hidden="1"/>.
_HIDDEN = re.compile(rb"""hidden\s*=\s*(?:"(?:1|true)"|'(?:1|true)')""")
_ROW_OR_COL = re.compile(rb"<(?:[\w.-]+:)?(row|col)\s([^>]*)>")
_ROW_NUMBER = re.compile(rb"""(?:^|\s)r\s*=\s*["'](\d+)["']""")
_ROW_TAG = re.compile(rb"<(?:[\w.-]+:)?row(?:\s([^>]*))?/?>")
_ATTRIBUTE = re.compile(rb"""(?:^|\s)(?:[\w.-]+:)?([\w.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


@dataclass
class _Hidden:
    """Hidden rows (Excel numbers) and columns (0-based) as inclusive ranges."""

    rows: _Ranges = field(default_factory=list)
    columns: _Ranges = field(default_factory=list)
    unnumbered: bool = False  # a hidden <row> without r="": rows must be counted

    def add_row(self, number: int) -> None:
        if self.rows and self.rows[-1][1] == number - 1:
            self.rows[-1] = (self.rows[-1][0], number)
        else:
            self.rows.append((number, number))


def _xlsx_scan(path: Path, tab_index: int) -> tuple[_Marks, _Hidden]:
    """What calamine does not tell of the ``tab_index``-th sheet, from its XML.

    Marks: (row number, column index) -> mark for formula-without-value and
    error cells. A workbook written by a script and never opened in Excel
    holds formulas without a calculated value; calamine shows them, and
    error cells, as "". And the hidden rows and columns.

    The sheet XML is scanned in chunks with bytes regexes: chunks without
    ``<f`` or ``t="e"`` are skipped for cells, and rows and columns cost a
    search for ``hidden="1"``, both at the speed of a substring search.
    """
    marks: _Marks = {}
    hidden = _Hidden()
    with zipfile.ZipFile(path) as archive:
        member = _sheet_member(archive, tab_index)
        if member is None:
            return marks, hidden
        with archive.open(member) as stream:
            for part in _parts(stream, b"row>"):
                if b"<f" in part or b't="e"' in part or b":f" in part:
                    _scan(part, marks)
                _scan_hidden(part, hidden)
        if hidden.unnumbered:
            with archive.open(member) as stream:
                hidden.rows = _count_hidden_rows(stream)
    return marks, hidden


def _parts(stream: IO[bytes], boundary: bytes) -> Iterator[bytes]:
    """The stream in parts of about ``_CHUNK`` bytes, each ending after a ``boundary``.

    A regex that cannot match across ``boundary`` finds in the parts what it
    finds in the whole. The last part is whatever is left.
    """
    rest = b""
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            if rest:
                yield rest
            return
        data = rest + chunk
        cut = data.rfind(boundary)
        if cut < 0:  # no boundary yet: keep reading
            rest = data
            continue
        cut += len(boundary)
        rest = data[cut:]
        yield data[:cut]


def _attributes(raw: bytes) -> dict[bytes, bytes]:
    """A tag's attributes by local name (the namespace prefix dropped)."""
    return {
        m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _ATTRIBUTE.finditer(raw)
    }


def _scan_hidden(data: bytes, hidden: _Hidden) -> None:
    """Hidden <row> and <col> elements of ``data``, a part of a sheet's XML.

    Only ``hidden="1"`` is searched for, then the tag around it checked (the
    same text may stand in a cell), so a sheet of a million visible rows
    costs one substring search.
    """
    for match in _HIDDEN.finditer(data):
        at = match.start()
        if at == 0 or data[at - 1] not in b" \t\r\n":
            continue  # not the attribute hidden= (nor in a tag at all)
        start = data.rfind(b"<", 0, at)
        tag = _ROW_OR_COL.match(data, start) if start >= 0 else None
        if tag is None or tag.end() <= at:
            continue  # the text of a cell
        if tag.group(1) == b"row":
            number = _ROW_NUMBER.search(tag.group(2))
            if number:
                hidden.add_row(int(number.group(1)))
            else:
                hidden.unnumbered = True
            continue
        attributes = _attributes(tag.group(2))
        low, high = attributes.get(b"min", b""), attributes.get(b"max", b"")
        if low.isdigit() and high.isdigit() and 1 <= int(low) <= int(high):
            hidden.columns.append((int(low) - 1, min(int(high), 16384) - 1))


def _count_hidden_rows(stream: IO[bytes]) -> _Ranges:
    """Hidden rows of a sheet whose <row> elements may lack r="" (then it is the next number).

    Slower than ``_scan_hidden``: every row tag is looked at.
    """
    hidden = _Hidden()
    number = 0
    for part in _parts(stream, b">"):
        for tag in _ROW_TAG.finditer(part):
            attributes = _attributes(tag.group(1) or b"")
            given = attributes.get(b"r", b"")
            number = int(given) if given.isdigit() else number + 1
            if attributes.get(b"hidden") in (b"1", b"true"):
                hidden.add_row(number)
    return hidden.rows


def _scan(data: bytes, marks: _Marks) -> None:
    for match in _CELL.finditer(data):
        attributes, inner = match.group(1), match.group(2) or b""
        if not inner:
            continue
        kind = _TYPE.search(attributes)
        cell_type = kind.group(1) if kind else b"n"
        formula = _FORMULA.search(inner)
        if formula is None and cell_type != b"e":
            continue
        ref = _REF.search(attributes)
        if ref is None:
            continue
        value = _VALUE.search(inner)
        cached = value.group(1) if value else None
        row = marks.setdefault(int(ref.group(2)), {})
        col = _column_index(ref.group(1))
        if cell_type == b"e" and cached:
            error = _xml_text(cached)
            row[col] = ("error", error, error)
        elif formula is not None and not cached and not (cell_type == b"str" and value):
            text = _xml_text(formula.group(1) or b"")
            row[col] = ("formula", f"={text}" if text else "(shared formula)", "")
        if not row:
            del marks[int(ref.group(2))]


def _xml_text(raw: bytes) -> str:
    return html.unescape(raw.decode("utf-8", errors="replace"))


def _column_index(letters: bytes) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + letter - 64
    return index - 1


def _sheet_member(archive: zipfile.ZipFile, tab_index: int) -> str | None:
    """The zip member of the ``tab_index``-th sheet, via workbook.xml and its rels."""
    sheets = _sheet_list(archive)
    return sheets[tab_index][1] if tab_index < len(sheets) else None


def _sheet_list(archive: zipfile.ZipFile) -> list[tuple[str, str | None]]:
    """Each sheet's name and zip member, in workbook order, via workbook.xml and its rels
    (a member None where the rels do not say)."""
    try:
        sheets = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError):
        return []
    targets = {rel.get("Id"): rel.get("Target", "") for rel in rels.iter()}
    found: list[tuple[str, str | None]] = []
    for element in sheets.iter():
        if not element.tag.endswith("}sheet"):
            continue
        ids = [value for name, value in element.attrib.items() if name.endswith("}id")]
        if not ids:
            continue
        target = targets.get(ids[0])
        member = None
        if target is not None:
            member = (
                target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl", target))
            )
        found.append((element.get("name", ""), member))
    return found


class _Extents:
    """The extent check of each tab of an .xlsx (``_check_extent``), in workbook order, in
    a thread started as the workbook is opened: python-calamine reads the shared strings
    meanwhile (it lets the thread run), which is as long again for a big sheet. A tab is
    parsed only when ``wait(index)`` has its check: the check still comes first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.checked: dict[int, BaseException | None] = {}
        self.failed: BaseException | None = None  # the archive itself could not be read
        self.ended = False
        self.news = threading.Condition()
        threading.Thread(target=self._run, name="xlsx extents", daemon=True).start()

    def _run(self) -> None:
        try:
            with zipfile.ZipFile(self.path) as archive:
                for index, (tab, member) in enumerate(_sheet_list(archive)):
                    found: BaseException | None = None
                    try:
                        if member is not None:
                            _check_extent(self.path, archive, member, tab)
                    except BaseException as exc:  # told to the one who reads the tab
                        found = exc
                    with self.news:
                        self.checked[index] = found
                        self.news.notify_all()
        except BaseException as exc:
            with self.news:
                self.failed = exc
        finally:
            with self.news:
                self.ended = True
                self.news.notify_all()

    def wait(self, index: int) -> None:
        """Raise what the check of the ``index``-th tab found (nothing when it is fine)."""
        with self.news:
            self.news.wait_for(lambda: index in self.checked or self.ended)
            found = self.checked.get(index, self.failed)
        if found is not None:
            raise found


# --- hidden rows and columns of an .ods, from content.xml ------------------------

_ODS_HIDING = re.compile(rb"""visibility\s*=\s*(?:"(?:collapse|filter)"|'(?:collapse|filter)')""")
# The prefix is table: as calamine (and every producer) spells it: a literal
# prefix lets the regex skip the cells three times faster.
_ODS_TAG = re.compile(rb"<(/?)table:(table-row|table-column|table)(?=[\s/>])([^>]*)>")


def _ods_hidden(path: Path, tab_index: int) -> _Hidden:
    """Hidden rows and columns of the ``tab_index``-th table of an .ods.

    content.xml holds every tab. A first pass looks for a collapsed or
    filtered row or column anywhere (``table:visibility``), at the speed of
    a substring search; only if there is one are the rows and columns of the
    tab counted (``number-rows-repeated`` and ``number-columns-repeated``
    included). Tables inside a cell are skipped.
    """
    hidden = _Hidden()
    with zipfile.ZipFile(path) as archive:
        with archive.open("content.xml") as stream:
            if not any(_ODS_HIDING.search(part) for part in _parts(stream, b">")):
                return hidden
        with archive.open("content.xml") as stream:
            tables = depth = row = col = 0
            for part in _parts(stream, b">"):
                for tag in _ODS_TAG.finditer(part):
                    closing, name, raw = tag.groups()
                    if name == b"table":
                        if closing:
                            depth -= 1
                            if depth == 0 and tables == tab_index + 1:
                                return hidden
                        elif not raw.endswith(b"/"):
                            depth += 1
                            if depth == 1:
                                tables += 1
                        continue
                    if closing or depth != 1 or tables != tab_index + 1:
                        continue
                    attributes = _attributes(raw)
                    collapsed = attributes.get(b"visibility") in (b"collapse", b"filter")
                    if name == b"table-row":
                        count = _repeated(attributes.get(b"number-rows-repeated"))
                        if collapsed:
                            hidden.rows.append((row + 1, row + count))
                        row += count
                    else:
                        count = _repeated(attributes.get(b"number-columns-repeated"))
                        if collapsed:
                            hidden.columns.append((col, col + count - 1))
                        col += count
    return hidden


def _repeated(raw: bytes | None) -> int:
    return int(raw) if raw and raw.isdigit() and int(raw) > 0 else 1


def read_tables(path: Sheet, tabs: Iterable[str]) -> dict[str, Table]:
    """The named tabs of a sheet, e.g. for a report that copies them."""
    workbook = open_workbook(path)
    return {tab: workbook.table(tab) for tab in tabs}
