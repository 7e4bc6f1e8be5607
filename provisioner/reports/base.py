"""What every report format shares: the report's shape, its rows, tones, texts and secrets.

A report is the plain dict a result's ``to_dict()`` gives (see the package's
docstring). The secrets section is the one redaction point every format and the
console pass. Every format module builds on this one; it imports none of them.
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from provisioner.actions import CommissionStatus, RowAction
from provisioner.errors import ReportError as ReportError
from provisioner.records import PASSWORD_MASK
from provisioner.text import counted


class Table(Protocol):
    """One tab as the reader saw it; ``provisioner.sheets.Table`` fits.

    ``columns`` holds the column letter of each header (``"C"``), ``rows`` the
    cell texts of each data row in the same order, ``row_numbers`` the row
    numbers as Excel shows them.
    """

    @property
    def sheet(self) -> str: ...
    @property
    def header_row(self) -> int: ...
    @property
    def headers(self) -> Sequence[str]: ...
    @property
    def columns(self) -> Sequence[str]: ...
    @property
    def row_numbers(self) -> Sequence[int]: ...
    @property
    def rows(self) -> Sequence[Sequence[str | None]]: ...


Report = Mapping[str, Any]


@dataclass(frozen=True)
class Context:
    """What a format may need beside the (already redacted) report.

    ``source`` is the installer's sheet, ``tables`` its tabs as read (the xlsx
    report copies or rebuilds them), ``secret_columns`` tab -> letters of the
    columns mapped to a secret field, ``secret_pattern`` the sheet's secrets.
    """

    source: Path | None = None
    tables: Mapping[str, Table] | None = None
    secret_columns: Mapping[str, Collection[str]] | None = None
    secret_pattern: re.Pattern[str] | None = None


# One colour tone per row action or status, shared by the HTML and xlsx reports
# (validate's own statuses, valid and invalid, beside the row actions).
TONES: dict[str, str] = {
    RowAction.CREATE: "good",
    RowAction.CREATED: "good",
    RowAction.QUEUE: "good",
    RowAction.QUEUED: "good",
    RowAction.UPDATE: "good",
    RowAction.UPDATED: "good",
    "valid": "good",
    RowAction.EXISTS: "neutral",
    RowAction.UNKNOWN: "neutral",
    RowAction.NOT_RUN: "neutral",
    RowAction.DIFFERS: "warn",
    RowAction.SKIPPED: "warn",
    "online": "good",
    "silent": "warn",
    "missing": "bad",
    RowAction.BLOCKED: "bad",
    RowAction.FAILED: "bad",
    "invalid": "bad",
}


def rows_of(report: Report) -> list[Mapping[str, Any]]:
    return list(report.get("rows") or [])


def problems_of(row: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*(row.get("errors") or []), *(row.get("warnings") or [])]


def state_of(row: Mapping[str, Any]) -> str:
    """The row's plan action or validate/apply status."""
    return str(row.get("action") or row.get("status") or "")


def as_text(value: Any) -> str:
    return "" if value is None else str(value)


def quoted(value: Any, limit: int | None = None) -> str:
    """A sheet or platform value in quotes; lists and objects as JSON; shortened to
    ``limit`` characters when given (the JSON report keeps it whole)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if limit is not None:
        text = shorten(text, limit)
    return f"'{text}'" if isinstance(value, str) else text


# A cell value longer than this is shortened on the console and in HTML: a
# 300-character config blob would push the row's message off the screen.
SHORT = 40


def shorten(text: str, limit: int = SHORT) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def device_address(report: Report, row: Mapping[str, Any]) -> str:
    """The page of the row's device on the platform, where the report knows the
    platform's ``device_link`` (``https://.../devices/{id}``); "" otherwise, and for a
    user row (its id is a user's, not a device's)."""
    link, platform_id = report.get("device_link"), row.get("platform_id")
    if not isinstance(link, str) or not link or row.get("kind") == "user":
        return ""
    usable = isinstance(platform_id, int | str) and not isinstance(platform_id, bool)
    if not usable or platform_id == "":
        return ""
    return link.replace("{id}", urllib.parse.quote(str(platform_id), safe=""))


def local_time(stamp: Any) -> str:
    """An ISO time from the platform or a result as this machine's local time with its
    offset (``2026-12-01 17:11:05 +01:00``); text that is no time, or a time without a
    local form (year 1 west of UTC), stays as it is."""
    if not isinstance(stamp, str) or not stamp:
        return as_text(stamp)
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # the platform's times are UTC
        # isoformat pads the year and writes an offset with seconds (old LMT zones) whole.
        text = moment.astimezone().isoformat(" ", "seconds")
    except (ValueError, OverflowError):
        return stamp
    return f"{text[:19]} {text[19:]}"  # the offset after 'YYYY-MM-DD HH:MM:SS', spaced


# --- secrets: the one redaction point every format and the console pass


MASK = "***"
_MIN_SECRET = 4  # shorter values would mask ordinary text everywhere
_CELL_REFERENCE = re.compile(r"\$?([A-Za-z]{1,3})\$?[0-9]+")


def secret_forms(secret: str) -> set[str]:
    """The secret as text may carry it: as is, JSON-escaped (once and twice), HTML, repr."""
    forms = {secret, html.escape(secret, quote=True), repr(secret)[1:-1]}
    for ascii_only in (True, False):
        once = json.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        forms |= {once, json.dumps(once, ensure_ascii=ascii_only)[1:-1]}
    return forms


def secret_pattern(secrets: Collection[str]) -> re.Pattern[str] | None:
    """One pattern for every form of every secret, longest first; None without secrets."""
    forms: set[str] = set()
    for secret in secrets:
        if isinstance(secret, str) and len(secret) >= _MIN_SECRET:
            forms |= secret_forms(secret)
    if not forms:
        return None
    return re.compile("|".join(map(re.escape, sorted(forms, key=lambda f: (-len(f), f)))))


def scrub(text: str, pattern: re.Pattern[str] | None) -> str:
    """The text with every secret replaced by ``***``.

    Repeated until nothing matches: each round makes the text shorter, so it ends.
    """
    if pattern is None:
        return text
    while True:
        scrubbed = pattern.sub(MASK, text)
        if scrubbed == text:
            return text
        text = scrubbed


def scrub_all(value: Any, pattern: re.Pattern[str] | None) -> Any:
    """A copy of a JSON-like value with every string (keys too) scrubbed."""
    if isinstance(value, str):
        return scrub(value, pattern)
    if isinstance(value, Mapping):
        return {
            scrub(key, pattern) if isinstance(key, str) else key: scrub_all(item, pattern)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub_all(item, pattern) for item in value]
    return value


def secret_letters(
    secret_columns: Mapping[str, Collection[str]] | None, sheet: Any
) -> frozenset[str]:
    """The secret column letters of a tab; tab names compared without case as a fallback."""
    if not secret_columns or sheet is None:
        return frozenset()
    name = str(sheet)
    letters = secret_columns.get(name)
    if letters is None:
        folded = name.casefold()
        letters = next(
            (found for tab, found in secret_columns.items() if tab.casefold() == folded), ()
        )
    return frozenset(letter.strip().upper() for letter in letters)


def in_secret_column(
    problem: Mapping[str, Any], secret_columns: Mapping[str, Collection[str]] | None
) -> bool:
    letters = secret_letters(secret_columns, problem.get("sheet"))
    if not letters:
        return False
    letter = as_text(problem.get("column_letter")).strip().upper()
    if not letter:
        found = _CELL_REFERENCE.fullmatch(as_text(problem.get("cell")).strip())
        letter = found.group(1).upper() if found else ""
    return letter in letters


def masked_problem(problem: Any, secret_columns: Mapping[str, Collection[str]] | None) -> Any:
    if isinstance(problem, Mapping) and problem.get("value") not in (None, ""):
        if in_secret_column(problem, secret_columns):
            return {**problem, "value": PASSWORD_MASK}  # as the library shows it
    return problem


def redacted(
    report: Report,
    secret_columns: Mapping[str, Collection[str]] | None,
    secrets: Collection[str],
) -> Report:
    """The report as it may be shown: secret cells masked by field, secrets scrubbed.

    The input is not changed.
    """
    if secret_columns:
        report = dict(report)
        if report.get("problems"):
            report["problems"] = [
                masked_problem(problem, secret_columns) for problem in report["problems"]
            ]
        rows = []
        for row in rows_of(report):
            # Only a row with problems holds cell values; the others are kept as they are.
            if isinstance(row, Mapping) and (row.get("errors") or row.get("warnings")):
                row = dict(row)
                for key in ("errors", "warnings"):
                    if row.get(key):
                        row[key] = [masked_problem(p, secret_columns) for p in row[key]]
            rows.append(row)
        if "rows" in report:
            report["rows"] = rows
    pattern = secret_pattern(secrets)
    if pattern is None:
        return report
    scrubbed: Report = scrub_all(report, pattern)
    return scrubbed


# Rows worth a line on the console (and a mark in HTML) even without a problem of their own.
NOTABLE = {
    RowAction.DIFFERS,
    RowAction.BLOCKED,
    RowAction.FAILED,
    RowAction.NOT_RUN,
    RowAction.SKIPPED,
    CommissionStatus.SILENT,
    CommissionStatus.MISSING,
}


# --- texts every format shows


def state_name(report: Report) -> str:
    return "action" if report.get("command") == "plan" else "status"


def warning_count(report: Report) -> int:
    counted_already = report.get("warnings")  # validate's header counts them as it finds them
    if report.get("command") == "validate" and isinstance(counted_already, int):
        return counted_already
    # One pass without copies: a sheet has 100,000 rows and a handful with problems.
    count = sum(1 for p in report.get("problems") or () if p.get("severity") == "warning")
    for row in report.get("rows") or ():
        for key in ("errors", "warnings"):
            found = row.get(key)
            if found:
                count += sum(1 for p in found if p.get("severity") == "warning")
    return count


def row_count(report: Report) -> int:
    """The rows the report is about: validate's report may list only those with problems
    (the others are counted in its totals)."""
    totals: Mapping[str, Any] = report.get("totals") or {}
    counts = [count for count in totals.values() if isinstance(count, int)]
    if report.get("command") == "validate" and counts:
        return sum(counts)
    return len(report.get("rows") or ())


def summary(report: Report) -> str:
    """``51 rows: 48 valid, 3 invalid, 2 warnings`` / ``create 400 · exists 180 · ...``."""
    totals: Mapping[str, Any] = report.get("totals") or {}
    warnings = warning_count(report)
    if report.get("command") == "validate":
        parts = [f"{count} {name}" for name, count in totals.items()]
        if warnings:
            parts.append(counted(warnings, "warning"))
        return f"{counted(row_count(report), 'row')}: " + ", ".join(parts)
    parts = [f"{name} {count}" for name, count in totals.items()]
    if warnings:
        parts.append(counted(warnings, "warning"))
    return " · ".join(parts)


def problem_where(problem: Mapping[str, Any], *, in_row: bool) -> str:
    """``C14 serial``; outside a row the sheet leads (``Devices C14 serial``)."""
    where = [] if in_row else [as_text(problem.get("sheet"))]
    if problem.get("cell"):
        where.append(as_text(problem["cell"]))
    elif problem.get("row") is not None and not in_row:
        where.append(f"row {problem['row']}")
    if problem.get("column"):
        where.append(as_text(problem["column"]))
    return " ".join(part for part in where if part)


def problem_text(problem: Mapping[str, Any], *, in_row: bool, limit: int | None = None) -> str:
    """``C14 serial: '3.52656E+14': <message>``, the value shortened to ``limit``."""
    text = problem_where(problem, in_row=in_row)
    if problem.get("value") not in (None, ""):
        text += f": {quoted(problem['value'], limit)}"
    message = problem_message(problem, limit)
    return f"{text}: {message}" if text else message


def problem_message(problem: Mapping[str, Any], limit: int | None = None) -> str:
    """The problem's words, the value they repeat shortened to ``limit`` as well."""
    message, value = as_text(problem.get("message")), problem.get("value")
    if limit is not None and isinstance(value, str) and len(value) > limit:
        message = message.replace(value, shorten(value, limit))
    return message


def row_title(row: Mapping[str, Any]) -> str:
    """``Devices row 14 (key 1337)``."""
    title = f"{as_text(row.get('sheet'))} row {as_text(row.get('row'))}"
    if row.get("key") not in (None, ""):
        title += f" (key {row['key']})"
    return title


def diff_table(row: Mapping[str, Any], limit: int | None = None) -> list[tuple[str, str, str]]:
    """A plan's field differences as (field, sheet, platform), then an update's changes
    (apply --update) as (field, before, after); values shortened to ``limit``."""
    diff: Mapping[str, Any] = row.get("diff") or {}
    lines = [
        (as_text(field), quoted(sides.get("sheet"), limit), quoted(sides.get("platform"), limit))
        for field, sides in diff.items()
    ]
    return lines + [change_sides(change, limit) for change in changes_of(row)]


def diff_notes(row: Mapping[str, Any]) -> list[str]:
    """What an update would do to the tags, one line per field that says it."""
    diff: Mapping[str, Any] = row.get("diff") or {}
    return [f"{field}: {note}" for field, sides in diff.items() if (note := tags_note(sides))]


def tags_note(sides: Mapping[str, Any]) -> str:
    """What an update would do to the tags, "+ Haus 4 - Keller": in "add" mode it takes
    off only tags this sheet put on the device, and the device's others are kept."""
    if "add" not in sides:
        return ""
    moves = tag_moves(sides.get("add"), sides.get("remove"))
    if not moves:
        return ""
    kept = "; the device's other tags are kept" if sides.get("mode") == "add" else ""
    return f"{moves} (with --update{kept})"


def tag_moves(added: Any, removed: Any) -> str:
    """``+ Haus 4 - Keller``: the tags an update adds and takes off."""
    moves = [f"+ {as_text(t)}" for t in added or []]
    moves += [f"- {as_text(t)}" for t in removed or []]
    return " ".join(moves)


def changes_of(row: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    changes = row.get("changes")
    return [c for c in changes if isinstance(c, Mapping)] if isinstance(changes, list) else []


def change_sides(change: Mapping[str, Any], limit: int | None = None) -> tuple[str, str, str]:
    """("description", "'Dach'", "'Keller'") or ("tags", "", "+ Haus3 - alt") for one change."""
    field = as_text(change.get("field"))
    if "add" in change or "remove" in change:
        return field, "", tag_moves(change.get("add"), change.get("remove"))
    return field, quoted(change.get("before"), limit), quoted(change.get("after"), limit)


def row_note(row: Mapping[str, Any]) -> str:
    """Why a blocked or failed row did not go through."""
    return as_text(row.get("reason") or row.get("message"))


# What a listing says for a row the run stopped before: the stop itself is said once, by
# the run (the command's last line, the top of the HTML report); each row of a report
# file keeps it in its own words.
STOPPED_FIRST = "not sent: the run stopped first"


def listed_note(report: Report, row: Mapping[str, Any]) -> str:
    """``row_note``, but for the words of the run's stop, which a listing says once."""
    note = row_note(row)
    return STOPPED_FIRST if note and note == report.get("stopped") else note


def sends_of(row: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """What apply sends for a plan's create or queue row (secrets hidden by the plan)."""
    sends = row.get("sends")
    return sends if isinstance(sends, Mapping) else None


def sends_text(row: Mapping[str, Any]) -> str:
    """That body as one line of JSON, whole (a missing field or a one-item list is what
    it is there to show); "" for a row that sends nothing."""
    sends = sends_of(row)
    return "" if sends is None else json.dumps(sends, ensure_ascii=False)


# --- problems alike: one entry for every row they are the same on


# Two rows with the same problem are listed as one entry with their rows as ranges.
ALIKE_AT = 2


@dataclass(frozen=True)
class Alike:
    """One entry of a listing: a problem (or, with ``problem`` None, a row outcome: the
    state and its note) that is the same on every row of ``rows`` but for the row."""

    rows: tuple[Mapping[str, Any], ...]
    problem: Mapping[str, Any] | None = None

    @property
    def state(self) -> str:
        return state_of(self.rows[0])

    @property
    def note(self) -> str:
        return row_note(self.rows[0])

    def where(self, *, sheet: bool = True, limit: int | None = None) -> str:
        """``C2:C601`` (the problem's cells) or ``site.csv rows 18–601`` (rows), the runs
        after the first ``limit`` counted, not named; the tab first when ``sheet``."""
        tab = as_text(self.rows[0].get("sheet"))
        numbers = [int(r["row"]) for r in self.rows if isinstance(r.get("row"), int)]
        letter = as_text((self.problem or {}).get("column_letter"))
        if self.problem is not None and self.problem.get("cell") and letter:
            text = row_ranges(numbers, letter=letter, limit=limit)
            return f"{tab} {text}" if sheet and tab else text
        text = "rows " + row_ranges(numbers, limit=limit)
        return f"{tab} {text}" if sheet and tab else text

    def title(self, *, sheet: bool = True, limit: int | None = None) -> str:
        """``600 rows (C2:C601)``."""
        return f"{counted(len(self.rows), 'row')} ({self.where(sheet=sheet, limit=limit)})"


@dataclass(frozen=True)
class Listing:
    """The report's problems and row outcomes, the ones alike as one entry each.

    ``entries`` are the entries of ALIKE_AT rows or more, in the order of their first
    row; ``of`` tells which entry a row's problem (or a row's outcome) is part of.
    """

    entries: tuple[Alike, ...]
    _by_id: Mapping[int, Alike]
    _numbers: Mapping[int, int]
    several_tabs: bool = False  # the rows come from more than one tab: entries name theirs

    def of(self, item: Mapping[str, Any]) -> Alike | None:
        """The entry a problem of a row, or a row by its outcome, is listed in; None
        when it is listed on its own."""
        return self._by_id.get(id(item))

    def number(self, entry: Alike) -> int:
        """The entry's place in ``entries``, from 1."""
        return self._numbers[id(entry)]

    def title(self, entry: Alike, limit: int | None = None) -> str:
        """``600 rows (C2:C601)``; the tab first where the rows come from several, and
        always for rows alike by their outcome (``site.csv rows 18–601``)."""
        return entry.title(sheet=self.several_tabs or entry.problem is None, limit=limit)


_KEY_PARTS = ("sheet", "code", "severity", "column_letter", "column", "value", "fix")


def _problem_key(problem: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes two rows' problems the same: all but the row and the cell, also where
    the words name them. (Called once for each problem of 100,000 rows: kept lean.)"""
    message = problem.get("message") or ""
    cell, row = problem.get("cell"), problem.get("row")
    if cell and cell in message:
        message = message.replace(cell, "\0")
    if row is not None and "row " in message:
        message = message.replace(f"row {row}", "\0")
    return (*map(problem.get, _KEY_PARTS), message)


# Rows whose outcome (not a problem of their own) is listed as one entry when alike.
_OUTCOMES_ALIKE = (RowAction.FAILED, RowAction.NOT_RUN)
_OUTCOME = object()  # marks an outcome's key apart from any problem's


def alike_listing(report: Report, at_least: int = ALIKE_AT) -> Listing:
    """The one grouping of the console, the HTML report and the xlsx Errors tab:
    problems the same but for the row (code, cell's column, value, words, fix), and
    failed or not-run rows with the same words, each one entry once ``at_least`` rows
    share it. The JSON report stays row by row. (One pass over the rows: half a sheet
    of 100,000 may have a problem.)"""
    groups: dict[tuple[Any, ...], list[tuple[Mapping[str, Any], Mapping[str, Any]]]] = {}
    tabs = set()
    for row in rows_of(report):
        if row:
            tabs.add(row.get("sheet"))
        for listed in ("errors", "warnings"):
            for problem in row.get(listed) or ():
                key = _problem_key(problem)
                members = groups.get(key)
                if members is None:
                    groups[key] = [(row, problem)]
                else:
                    members.append((row, problem))
        state = row.get("status")
        if state in _OUTCOMES_ALIKE and not row.get("errors"):
            outcome = (_OUTCOME, row.get("sheet"), state, row_note(row))
            groups.setdefault(outcome, []).append((row, row))
    # The groups were made in the order of their first rows: so are the entries.
    entries: list[Alike] = []
    by_id: dict[int, Alike] = {}
    for key, members in groups.items():
        if len(members) < at_least:
            continue  # fewer problems than at_least: fewer rows too
        rows = {id(row): row for row, _ in members}  # a row with the problem twice: once
        if len(rows) < at_least:
            continue
        entry = Alike(tuple(rows.values()), None if key[0] is _OUTCOME else members[0][1])
        entries.append(entry)
        by_id.update((id(item), entry) for _, item in members)
    numbers = {id(entry): n for n, entry in enumerate(entries, start=1)}
    return Listing(tuple(entries), by_id, numbers, len(tabs) > 1)


def row_ranges(numbers: Sequence[int], *, letter: str = "", limit: int | None = None) -> str:
    """``18–601, 640`` (rows) or ``C2:C601, C640`` (cells of column ``letter``): runs of
    following numbers as one range; after ``limit`` runs, how many more rows."""
    runs: list[tuple[int, int]] = []
    for number in sorted(set(numbers)):
        if runs and number == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    shown = runs if limit is None else runs[: max(limit, 1)]

    def run_text(start: int, end: int) -> str:
        if start == end:
            return f"{letter}{start}"
        return f"{letter}{start}:{letter}{end}" if letter else f"{start}\u2013{end}"

    text = ", ".join(run_text(start, end) for start, end in shown)
    left = sum(end - start + 1 for start, end in runs[len(shown) :])
    return text + (f", \u2026 and {counted(left, 'row')} more" if left else "")
