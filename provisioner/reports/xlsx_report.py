"""The xlsx report: a copy of the installer's workbook with the findings on it.

Imported by ``write_report`` only when an .xlsx is written, so that the
commands that write none never load openpyxl. An .xlsx/.xlsm source is copied
(cached values, never formulas) with problem cells coloured and commented, the
outcome columns of plan and apply, a Failed tab and an Errors tab; any other
source is rebuilt from the tables as read, at the same cell references.
"""

from __future__ import annotations

import io
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.cell.cell import Cell, MergedCell
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import column_index_from_string, get_column_letter
from openpyxl.utils.cell import coordinate_from_string
from openpyxl.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from provisioner.actions import RowAction, RowKind
from provisioner.files import put_text
from provisioner.reports.base import (
    TONES,
    Context,
    Report,
    ReportError,
    Table,
    alike_listing,
    as_text,
    device_address,
    local_time,
    problems_of,
    row_ranges,
    rows_of,
    scrub,
    secret_letters,
    sends_of,
    sends_text,
    state_of,
)
from provisioner.sheets import record_template
from provisioner.text import counted, visible
from provisioner.wording import language_of, report_word

_ERROR_FILL = PatternFill(fill_type="solid", fgColor="FFC7CE")
_WARNING_FILL = PatternFill(fill_type="solid", fgColor="FFEB9C")
_TONE_FILLS = {
    "good": PatternFill(fill_type="solid", fgColor="C6EFCE"),
    "neutral": PatternFill(fill_type="solid", fgColor="E7E6E6"),
    "warn": _WARNING_FILL,
    "bad": _ERROR_FILL,
}
_BOLD = Font(bold=True)
_PASSWORD_WORDS = ("password", "passwort", "kennwort")
_USER_TABS = ("users", "benutzer")
_AUTHOR = "provisioner"
_NOTES = "\n\n[provisioner]\n"
_SECRET_LEFT_OUT = (
    "Left empty: a secret (password, LoRaWAN key) is never written into a report. "
    "Copy it in from your own sheet before applying this tab, or run apply on your "
    "own sheet again: it creates only what is missing."
)


def _clean(text: str) -> str:
    # Control characters as escapes (``text.visible``): XML 1.0 cannot hold most of
    # them (openpyxl refuses them), and none may reach a terminal the cell is pasted to.
    return visible(text, keep="\t\n")


def _put(cell: Cell | MergedCell, value: Any) -> None:
    """Store a value; text always stays text (``files.put_text``).

    A cell hidden inside a merged range cannot hold a value and is left alone.
    """
    if isinstance(cell, MergedCell):
        return
    if isinstance(value, str):
        put_text(cell, _clean(value))
    else:
        cell.value = value


def render(report: Report, context: Context) -> bytes:
    return xlsx(
        report, context.source, context.tables, context.secret_columns, context.secret_pattern
    )


def xlsx(
    report: Report,
    source: Path | None,
    tables: Mapping[str, Table] | None,
    secret_columns: Mapping[str, Collection[str]] | None = None,
    pattern: re.Pattern[str] | None = None,
) -> bytes:
    """The xlsx report of an already redacted report; the sheet's own cells are redacted here."""
    workbook, tabs = _workbook(source, tables)
    # A German workbook gets German columns, tabs and labels (its headers say which).
    lang = language_of(
        [name for table in (tables or {}).values() for name in (table.sheet, *table.headers)]
    )
    rows = rows_of(report)
    header_rows = {name: _header_row(tab, name, rows, tables) for name, tab in tabs.items()}

    user_tabs = {as_text(row.get("sheet")) for row in rows if row.get("kind") == "user"}
    for name, tab in tabs.items():
        # By field: the columns the template maps to a secret field.
        _blank_columns(tab, header_rows[name], secret_letters(secret_columns, name))
        # A safety net for a caller without the template's mapping: headers that say password.
        if name in user_tabs or name.casefold() in _USER_TABS:
            _blank_passwords(tab, header_rows[name])

    _mark_problems(report, tabs, lang)
    if report.get("command") in ("plan", "apply", "verify"):
        _add_outcome_columns(report, tabs, header_rows, lang)
    if report.get("command") == "apply":
        failed = report_word(lang, "Failed")
        _add_failed_tab(report, workbook, tables, secret_columns, title=failed)
    if report.get("command") == "verify":
        # The devices to visit again, under the sheet's own headers.
        silent = report_word(lang, "Silent")
        _add_failed_tab(report, workbook, tables, secret_columns, status="silent", title=silent)
    _add_errors_tab(report, workbook, lang)
    _finish_text(workbook, pattern)
    # The copy reads back through the template the run used, without --template.
    template = report.get("template")
    if isinstance(template, str) and template:
        record_template(workbook, template)

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _workbook(
    source: Path | None, tables: Mapping[str, Table] | None
) -> tuple[Workbook, dict[str, Worksheet]]:
    """The installer's workbook as a copy, else one rebuilt from the tables as read."""
    if source is not None and source.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            # Cached values, not formulas: the copy holds what the tool read,
            # and no formula from a foreign sheet runs when it is opened.
            workbook = openpyxl.load_workbook(source, data_only=True)
        except Exception as exc:  # openpyxl fails in many ways on odd files
            if not tables:
                raise ReportError(f"could not copy {source.name} into the report: {exc}") from exc
        else:
            return workbook, {tab.title: tab for tab in workbook.worksheets}

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.worksheets[0])
    tabs: dict[str, Worksheet] = {}
    for name, table in (tables or {}).items():
        tab = workbook.create_sheet(_tab_title(name, workbook))
        letters = [column_index_from_string(letter) for letter in table.columns]
        for column, header in zip(letters, table.headers, strict=False):
            _put(tab.cell(table.header_row, column), header)
        for number, values in zip(table.row_numbers, table.rows, strict=False):
            for column, value in zip(letters, values, strict=False):
                if value not in (None, ""):
                    _put(tab.cell(number, column), value)
        tabs[name] = tabs[table.sheet] = tab
    return workbook, tabs


def _tab_title(name: str, workbook: Workbook) -> str:
    """A tab name Excel accepts: no []:*?/\\, at most 31 characters, not taken."""
    title = (re.sub(r"[\[\]:*?/\\]", "_", name) or "Sheet")[:31]
    taken = {tab.title.casefold() for tab in workbook.worksheets}
    number = 2
    base = title
    while title.casefold() in taken:
        title = f"{base[: 31 - len(str(number)) - 1]} {number}"
        number += 1
    return title


def _header_row(
    tab: Worksheet,
    name: str,
    rows: Sequence[Mapping[str, Any]],
    tables: Mapping[str, Table] | None,
) -> int | None:
    """The header row: from the table as read, else the fullest row above the first data row."""
    table = (tables or {}).get(name)
    if table is not None:
        return table.header_row
    numbers = [int(row["row"]) for row in rows if row.get("sheet") == name and row.get("row")]
    last = min(numbers) - 1 if numbers else min(tab.max_row, 1)
    if last < 1:
        return None
    best, best_count = None, 0
    for number, values in enumerate(tab.iter_rows(max_row=last, values_only=True), start=1):
        count = sum(1 for value in values if value not in (None, ""))
        # Title lines above the header hold fewer cells; on a tie the later row wins.
        if count and count >= best_count:
            best, best_count = number, count
    return best


def _is_password_header(value: Any) -> bool:
    text = re.sub(r"[^a-z]", "", as_text(value).casefold())
    return len(text) <= 30 and any(word in text for word in _PASSWORD_WORDS)


def _blank_passwords(tab: Worksheet, header_row: int | None) -> None:
    """Empty every column whose header says password below its header."""
    if header_row is None:
        return
    for cell in tab[header_row]:
        if _is_password_header(cell.value) and cell.column is not None:
            _blank_column(tab, header_row + 1, cell.column)


def _blank_columns(tab: Worksheet, header_row: int | None, letters: Collection[str]) -> None:
    """Empty the secret columns below the header (the whole column when it is not known)."""
    for letter in letters:
        try:
            column = column_index_from_string(letter)
        except ValueError:
            continue
        _blank_column(tab, (header_row or 0) + 1, column)


def _blank_column(tab: Worksheet, first_row: int, column: int) -> None:
    """Empty one column from ``first_row`` down, comments included: the file holds no secret."""
    for (below,) in tab.iter_rows(min_row=first_row, min_col=column, max_col=column):
        if not isinstance(below, MergedCell):
            below.value = None
            below.comment = None


def _finish_text(workbook: Workbook, pattern: re.Pattern[str] | None) -> None:
    """Every text cell and comment of the workbook, the installer's copied cells too:
    each secret out, and control characters shown as escapes (``_clean``), so that no
    part of a report holds what the console would not show."""

    def finished(text: str) -> str:
        return _clean(text if pattern is None else scrub(text, pattern))

    for tab in workbook.worksheets:
        for line in tab.iter_rows():
            for cell in line:
                if isinstance(cell, MergedCell):
                    continue
                if isinstance(cell.value, str):
                    text = finished(cell.value)
                    if text != cell.value:
                        _put(cell, text)
                comment = cell.comment
                if comment is not None:
                    text = finished(comment.text)
                    if text != comment.text:
                        cell.comment = Comment(text, comment.author, comment.height, comment.width)


def _target(tab: Worksheet, reference: str) -> Cell | None:
    """The cell at a reference such as ``C14``; inside a merged range, its top-left cell."""
    try:
        letter, number = coordinate_from_string(reference)
    except ValueError:
        return None
    cell = tab.cell(number, column_index_from_string(letter))
    if isinstance(cell, MergedCell):
        for merged in tab.merged_cells.ranges:
            if cell.coordinate in merged:
                top_left = tab.cell(merged.min_row, merged.min_col)
                return top_left if isinstance(top_left, Cell) else None
        return None
    return cell


def _clear_old_marks(tab: Worksheet) -> None:
    """Take off the marks of an earlier report, so a sheet fed back in shows only today's."""
    marks = (_ERROR_FILL.fgColor.rgb, _WARNING_FILL.fgColor.rgb)
    for line in tab.iter_rows():
        for cell in line:
            comment = cell.comment
            if comment is None:
                continue
            if comment.author == _AUTHOR:
                cell.comment = None
            elif _NOTES in comment.text:
                # The installer's own note stays; only what we added after it goes.
                own = comment.text.split(_NOTES)[0]
                cell.comment = Comment(own, comment.author, comment.height, comment.width)
            else:
                continue
            if cell.fill.fill_type == "solid" and cell.fill.fgColor.rgb in marks:
                cell.fill = PatternFill()


def _mark_problems(report: Report, tabs: Mapping[str, Worksheet], lang: str = "en") -> None:
    """Fill each cell with a problem (red error, yellow warning) and comment on it."""
    for tab in set(tabs.values()):
        _clear_old_marks(tab)
    at: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    problems = [*(report.get("problems") or [])]
    for row in rows_of(report):
        problems.extend(problems_of(row))
    for problem in problems:
        if problem.get("cell") and problem.get("sheet") in tabs:
            at.setdefault((str(problem["sheet"]), str(problem["cell"])), []).append(problem)

    for (sheet, reference), found in at.items():
        cell = _target(tabs[sheet], reference)
        if cell is None:
            continue
        errors = any(problem.get("severity") != "warning" for problem in found)
        cell.fill = _ERROR_FILL if errors else _WARNING_FILL
        text = _clean(
            "\n\n".join(
                f"{report_word(lang, as_text(problem.get('severity') or 'error'))}: "
                + as_text(problem.get("message"))
                + (f"\n{report_word(lang, 'fix')}: {problem['fix']}" if problem.get("fix") else "")
                for problem in found
            )
        )
        author = _AUTHOR
        if cell.comment is not None:  # the installer's own note comes first and stays theirs
            text = cell.comment.text + _NOTES + text
            author = cell.comment.author
        lines = text.count("\n") + 1 + len(text) // 50
        cell.comment = Comment(text, author, height=min(40 + 18 * lines, 600), width=320)


def _add_outcome_columns(
    report: Report,
    tabs: Mapping[str, Worksheet],
    header_rows: Mapping[str, int | None],
    lang: str = "en",
) -> None:
    """After the header's last column: Action + Platform id (plan), Status + Platform id
    (apply) or Online + Last data (local time) + Records (verify), then Message; a plan
    that creates or queues rows then Sends, what apply sends for each (one line of JSON,
    secrets hidden). The headers are in ``lang``."""
    command = report.get("command")
    names = {
        "plan": ["Action", "Platform id", "Message"],
        "verify": ["Online", "Last data", "Records", "Message"],
    }.get(str(command), ["Status", "Platform id", "Message"])
    if command == "plan" and any(sends_of(row) is not None for row in rows_of(report)):
        names.append("Sends")
    columns: dict[str, dict[str, int]] = {}
    for row in rows_of(report):
        sheet = as_text(row.get("sheet"))
        header_row = header_rows.get(sheet)
        if sheet not in tabs or header_row is None or not row.get("row"):
            continue
        tab = tabs[sheet]
        if sheet not in columns:
            columns[sheet] = _outcome_columns(tab, header_row, names, lang)
        at = columns[sheet]
        number = int(row["row"])
        state = state_of(row)
        _put(tab.cell(number, at[names[0]]), state)
        if state in TONES:
            tab.cell(number, at[names[0]]).fill = _TONE_FILLS[TONES[state]]
        if command == "verify":
            _put(tab.cell(number, at["Last data"]), local_time(row.get("last_data")) or None)
            records = row.get("records")
            shown = "1+" if records is None and row.get("last_data") else records
            _put(tab.cell(number, at["Records"]), shown)
        else:
            cell = tab.cell(number, at["Platform id"])
            _put(cell, row.get("platform_id"))
            address = device_address(report, row)
            if address:
                cell.hyperlink = address
                cell.style = "Hyperlink"
        _put(tab.cell(number, at["Message"]), as_text(row.get("message") or row.get("reason")))
        if "Sends" in at:
            _put(tab.cell(number, at["Sends"]), sends_text(row) or None)


def _outcome_columns(
    tab: Worksheet, header_row: int, names: Sequence[str], lang: str = "en"
) -> dict[str, int]:
    """Column of each added header (``names`` in English, the header in ``lang``); a sheet
    fed back in keeps its columns from last time."""
    existing: dict[str, int] = {}
    last = 0
    for cell in tab[header_row]:
        if cell.value not in (None, ""):
            existing.setdefault(as_text(cell.value).strip().casefold(), cell.column)
            last = cell.column
    at: dict[str, int] = {}
    for name in names:
        shown = report_word(lang, name)
        if shown.casefold() in existing or name.casefold() in existing:
            at[name] = existing.get(shown.casefold()) or existing[name.casefold()]
        else:
            last += 1
            at[name] = last
            header = tab.cell(header_row, last)
            _put(header, shown)
            header.font = _BOLD
            wide = name in ("Message", "Sends")
            tab.column_dimensions[get_column_letter(last)].width = 50 if wide else 14
    return at


def _add_failed_tab(
    report: Report,
    workbook: Workbook,
    tables: Mapping[str, Table] | None,
    secret_columns: Mapping[str, Collection[str]] | None = None,
    *,
    status: str = RowAction.FAILED,
    title: str = "Failed",
) -> None:
    """The device rows of one ``status`` under their own headers (apply: the failed ones, a
    sheet to fix and feed back in; verify: the silent ones, the devices to visit).

    Cells are written as the text that was read, so identifiers stay text; the
    cells of secret columns stay empty.
    """
    if title in workbook.sheetnames:
        workbook.remove(workbook[title])  # from an earlier results file fed back in
    failed = [
        r for r in rows_of(report) if r.get("status") == status and r.get("kind") == RowKind.DEVICE
    ]
    if not failed or not tables:
        return
    sheet = as_text(failed[0].get("sheet"))
    table = tables.get(sheet)
    if table is None:
        return
    tab = workbook.create_sheet(_tab_title(title, workbook))
    hidden = secret_letters(secret_columns, table.sheet) | secret_letters(secret_columns, sheet)
    shown = [letter.upper() not in hidden for letter in table.columns]
    for column, header in enumerate(table.headers, start=1):
        _put(tab.cell(1, column), header)
        tab.cell(1, column).font = _BOLD
        if column <= len(shown) and not shown[column - 1]:
            # Not optional for the device (a LoRaWAN key): say where it went.
            tab.cell(1, column).comment = Comment(_SECRET_LEFT_OUT, _AUTHOR, height=120, width=320)
    index = {number: i for i, number in enumerate(table.row_numbers)}
    out = 2
    for row in failed:
        i = index.get(int(row.get("row") or 0))
        if i is None:
            continue
        for column, value in enumerate(table.rows[i], start=1):
            if value not in (None, "") and (column > len(shown) or shown[column - 1]):
                _put(tab.cell(out, column), value)
                tab.cell(out, column).number_format = "@"
        out += 1
    tab.freeze_panes = "A2"


# An Errors line for rows alike names this many runs of rows (``C2:C9, C12``), then counts.
_RANGES = 50

_ERROR_COLUMNS = (
    ("Sheet", 14),
    ("Row", 7),
    ("Key", 18),
    ("Cell", 8),
    ("Column", 18),
    ("Severity", 10),
    ("Value", 22),
    ("Message", 60),
    ("Fix", 60),
)


def _add_errors_tab(report: Report, workbook: Workbook, lang: str = "en") -> None:
    """A tab listing every problem, header frozen, with an auto-filter; named in ``lang``."""
    title = report_word(lang, "Errors")
    # A tab of that name in the source is the Errors tab of an earlier report,
    # unless the report's rows come from it.
    read = {row.get("sheet") for row in rows_of(report)}
    read |= {problem.get("sheet") for problem in report.get("problems") or []}
    if title in workbook.sheetnames and title not in read:
        workbook.remove(workbook[title])
    tab = workbook.create_sheet(_tab_title(title, workbook))
    for column, (name, width) in enumerate(_ERROR_COLUMNS, start=1):
        _put(tab.cell(1, column), report_word(lang, name))
        tab.cell(1, column).font = _BOLD
        tab.column_dimensions[get_column_letter(column)].width = width

    # Each problem once: one alike on many rows as one line with its rows as ranges
    # (each row's own cell in the copied tabs keeps its colour and comment).
    listing = alike_listing(report)
    listed: list[tuple[Any, Any, Any, Mapping[str, Any]]] = [
        (problem.get("row"), "", problem.get("cell"), problem)
        for problem in report.get("problems") or []
    ]
    for row in rows_of(report):
        for problem in problems_of(row):
            entry = listing.of(problem)
            if entry is None:
                listed.append((problem.get("row"), row.get("key"), problem.get("cell"), problem))
            elif entry.problem is problem:  # the entry's first row: the line for all
                numbers = [r["row"] for r in entry.rows if isinstance(r.get("row"), int)]
                rows = row_ranges(numbers, limit=_RANGES)
                cells = entry.where(sheet=False, limit=_RANGES) if problem.get("cell") else ""
                listed.append((rows, counted(len(entry.rows), "row"), cells, problem))
    for number, (rows, key, cell, problem) in enumerate(listed, start=2):
        values = [
            as_text(problem.get("sheet")),
            rows,
            as_text(key),
            as_text(cell),
            as_text(problem.get("column")),
            as_text(problem.get("severity")),
            as_text(problem.get("value")),
            as_text(problem.get("message")),
            as_text(problem.get("fix")),
        ]
        for column, value in enumerate(values, start=1):
            _put(tab.cell(number, column), value)
    tab.freeze_panes = "A2"
    tab.auto_filter.ref = f"A1:{get_column_letter(len(_ERROR_COLUMNS))}{len(listed) + 1}"
