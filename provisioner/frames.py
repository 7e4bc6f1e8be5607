"""A pandas DataFrame as a sheet, and a result's rows as a DataFrame (the ``pandas`` extra).

The library's entry points (``validate_sheet``, ``make_plan``, ``apply_sheet``,
``verify_sheet``) take a ``Sheet``: a sheet file's path, a DataFrame (one tab), or tab
names mapped to DataFrames (what ``pandas.read_excel(path, sheet_name=None)`` gives).
``frame_workbook`` turns DataFrames into the ``sheets.Workbook`` a CSV reads into: the
column names are the header row, every value the text a person sees in the DataFrame
(``12`` and ``12.0`` as ``12``, NaN, None and NaT as an empty cell, a Timestamp in ISO
form, text as it is), and a value that was not text is noted in ``Table.stored`` as in a
sheet, so that a DevEUI held as a number is the same problem as a DevEUI Excel holds as
one. Rows are counted as a sheet counts them, as ``frame.to_excel(index=False)`` writes
them: the header is row 1 and ``frame.iloc[0]`` row 2; columns are lettered A, B, C
from the first. The index is not read. The source, and a lone DataFrame's tab, are
named ``DataFrame``.

``result_frame`` is every result's ``to_frame()``: the rows of ``to_dict()``, through
the reports' one redaction point first (``reports.base.redacted``), so a secret that a
report masks is masked here too.

pandas is imported only here, and this module only where a DataFrame is handed in or
asked for: importing provisioner, and every command, never loads pandas. A DataFrame is
recognised without importing it: an object can only be one where pandas is loaded.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from provisioner.errors import SheetError
from provisioner.problems import column_letter
from provisioner.sheets import Stored, Table, Workbook, _check_header

if TYPE_CHECKING:
    import pandas

    from provisioner.results import Result

# What the entry points read: a sheet file's path, a DataFrame, or tab names -> DataFrames.
Sheet: TypeAlias = "str | os.PathLike[str] | pandas.DataFrame | Mapping[str, pandas.DataFrame]"

FRAME = "DataFrame"  # the source's name in messages and results, and a lone DataFrame's tab
FORMAT = "dataframe"  # Workbook.format of DataFrames read as a sheet
INSTALL = "pip install 'provisioner[pandas]'"


def sheet_path(sheet: Sheet) -> Path | None:
    """The file of a sheet; None for DataFrames."""
    if isinstance(sheet, str | os.PathLike):
        return Path(sheet)
    return None


def sheet_name(sheet: Sheet) -> str:
    """How results and the journal name the sheet: its file's name, or ``DataFrame``."""
    path = sheet_path(sheet)
    return FRAME if path is None else path.name


def _tabs(sheet: object) -> dict[str, pandas.DataFrame]:
    """The DataFrames of ``sheet`` by tab name; TypeError for anything else."""
    pandas = sys.modules.get("pandas")
    if pandas is not None:
        if isinstance(sheet, pandas.DataFrame):
            return {FRAME: sheet}
        if (
            isinstance(sheet, Mapping)
            and sheet
            and all(isinstance(v, pandas.DataFrame) for v in sheet.values())
        ):
            return {str(tab): frame for tab, frame in sheet.items()}
    raise TypeError(
        "a sheet is a file's path, a pandas DataFrame or a dict of tab names to DataFrames, "
        f"not {type(sheet).__name__}"
    )


# --- a DataFrame as a sheet -------------------------------------------------------


def frame_workbook(sheet: Sheet) -> Workbook:
    """DataFrames as a ``Workbook`` whose tables are read already.

    Raises SheetError for a DataFrame that is no sheet (no columns, columns of several
    levels, two columns of one name) and TypeError for what is not a DataFrame.
    """
    tabs = _tabs(sheet)
    tables = {tab: _table(tab, frame) for tab, frame in tabs.items()}
    return Workbook(Path(FRAME), FORMAT, list(tables), _tables=tables)


def _table(tab: str, frame: pandas.DataFrame) -> Table:
    where = FRAME if tab == FRAME else f"{FRAME} {tab!r}"
    if frame.columns.nlevels > 1:
        raise SheetError(
            f"{where}: its columns have {frame.columns.nlevels} levels: give it one header "
            "row, e.g. frame.columns = [' '.join(map(str, c)) for c in frame.columns]"
        )
    if len(frame.columns) == 0:
        raise SheetError(f"{where} has no columns: its column names are the header row")
    header = ["" if _missing(name) else str(name) for name in frame.columns]
    _check_header(FRAME, tab, header, 1, 0, [])
    stored: dict[tuple[int, int], Stored] = {}
    columns = [_column(j, values, stored) for j, values in enumerate(_columns(frame))]
    rows: list[list[str]] = []
    numbers: list[int] = []
    index_of: dict[int, int] = {}  # position in the frame -> index in rows
    for position, row in enumerate(zip(*columns, strict=True)):
        joined = "".join(row)
        if not joined or joined.isspace():
            continue  # a blank row, skipped as in a sheet
        index_of[position] = len(rows)
        rows.append(list(row))
        numbers.append(position + 2)
    if len(rows) < len(frame):  # blank rows left out: the others' indexes moved
        stored = {(index_of[i], j): mark for (i, j), mark in stored.items() if i in index_of}
    return Table(
        sheet=tab,
        header_row=1,
        headers=[text.strip() for text in header],
        columns=[column_letter(j) for j in range(len(header))],
        row_numbers=numbers,
        rows=rows,
        stored=stored,
    )


def _columns(frame: pandas.DataFrame) -> Iterable[list[Any]]:
    """Each column's values as Python objects (numpy's numbers as ints and floats)."""
    for j in range(len(frame.columns)):
        yield frame.iloc[:, j].tolist()


def _column(j: int, values: list[Any], stored: dict[tuple[int, int], Stored]) -> list[str]:
    """A column's values as the texts shown; those that were not text noted in ``stored``
    by (position, column)."""
    texts = []
    for i, value in enumerate(values):
        kind = value.__class__
        if kind is str:
            texts.append(value.replace("\r\n", "\n").rstrip("\r") if "\r" in value else value)
            continue
        if kind is int:  # the common cases first: a column of numbers
            text = str(value)
            mark: Stored | None = ("number", text)
        elif kind is float and value == value:  # not NaN
            text = _float_text(value)
            mark = ("number", text)
        else:
            text, mark = _shown(value)
        texts.append(text)
        if mark is not None:
            stored[(i, j)] = mark
    return texts


def _missing(value: Any) -> bool:
    """None, NaN, NaT and pandas.NA: an empty cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    pandas = sys.modules.get("pandas")
    return pandas is not None and (value is pandas.NaT or value is pandas.NA)


def _shown(value: Any) -> tuple[str, Stored | None]:
    """The text a DataFrame shows for a value, and what it holds when that was not text.

    ``12`` and ``12.0`` show as ``12`` (a float of 16 digits or more in E notation, as
    pandas prints it); ``True``; a Timestamp in ISO form (its date alone at midnight);
    NaN, None, NaT and NA as nothing; anything else as ``str()`` gives it.
    """
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # a numpy scalar in a column of objects: the Python value
    if isinstance(value, str):
        return str(value), None
    if _missing(value):
        return "", None
    if isinstance(value, decimal.Decimal) and value.is_finite():
        value = int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bool):
        text = "True" if value else "False"
        return text, ("bool", text)
    if isinstance(value, int):
        return str(value), ("number", str(value))
    if isinstance(value, float):
        text = _float_text(value)
        return text, ("number", text)
    if isinstance(value, datetime.datetime):
        midnight = value.time() == datetime.time() and value.tzinfo is None
        text = value.date().isoformat() if midnight else value.isoformat(sep=" ")
        return text, ("date", text)
    if isinstance(value, datetime.date | datetime.time):
        text = value.isoformat()
        return text, ("date", text)
    if isinstance(value, datetime.timedelta):
        text = str(value)
        return text, ("date", text)
    return str(value), None


def _float_text(value: float) -> str:
    """``12.0`` as ``12``, ``0.5`` as ``0.5``, ``1e+20`` as it is (as pandas prints it)."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)


def frame_digest(sheet: Sheet) -> bytes:
    """The digest of DataFrames as read (cells and how they were held), for a plan's
    fingerprint: the same frames give the same digest, in any process."""
    workbook = frame_workbook(sheet)
    digest = hashlib.sha256()
    for tab in workbook.tab_names:
        table = workbook.table(tab)
        held = sorted((i, j, how, what) for (i, j), (how, what) in table.stored.items())
        content = [tab, table.headers, table.row_numbers, table.rows, held]
        digest.update(json.dumps(content, ensure_ascii=False).encode())
    return digest.digest()


# --- a result as a DataFrame --------------------------------------------------------


# The columns every result's rows have (results.Row.to_dict), for a result without rows.
_SHARED = ("sheet", "row", "kind", "key", "status", "platform_id", "message", "errors", "warnings")


def result_frame(result: Result) -> pandas.DataFrame:
    """The rows of ``result.to_dict()`` as a DataFrame, secrets masked as in a report.

    One column per key, in the report's order. A column of whole numbers is int64, one of
    text is text; a column with gaps or of lists and dicts (``errors``, ``diff``) holds
    the values as they are, None for a gap: ``frame.to_dict("records")`` gives the rows
    back.
    """
    try:
        import pandas
    except ImportError as exc:
        raise ModuleNotFoundError(f"to_frame() needs pandas: {INSTALL}") from exc
    from provisioner.reports.base import redacted

    data: Mapping[str, Any] = result.to_dict()
    records = result.sheet_records()
    if records is not None:
        secrets = [*records.secret_values(), *records.key_values()]
        data = redacted(data, records.secret_columns, secrets)
    rows: list[dict[str, Any]] = data["rows"]
    names = list(rows[0]) if rows else list(_SHARED)
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        if values and all(type(v) is int for v in values):
            dtype: Any = "int64"
        elif values and all(type(v) is str for v in values):
            dtype = None  # pandas' own text type
        else:
            dtype = object
        columns[name] = pandas.Series(values, dtype=dtype, name=name)
    return pandas.DataFrame(columns, columns=names)
