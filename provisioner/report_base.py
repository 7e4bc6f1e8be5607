"""What every report format shares: the report's shape, its rows, tones and secrets.

A report is the plain dict a result's ``to_dict()`` gives (see reports.py). The
secrets section is the one redaction point every format and the console pass.
reports.py (console, JSON, CSV, HTML, and the table of formats) and
report_xlsx.py build on this module; it imports neither.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from provisioner.actions import RowAction
from provisioner.errors import ProvisionerError
from provisioner.records import PASSWORD_MASK


class ReportError(ProvisionerError):
    """A report file cannot be written (format, folder, or the disk said no)."""


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


def quoted(value: Any) -> str:
    """A sheet or platform value in quotes; lists and objects as JSON."""
    if isinstance(value, str):
        return f"'{value}'"
    return json.dumps(value, ensure_ascii=False)


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
