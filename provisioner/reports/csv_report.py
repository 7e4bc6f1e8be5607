"""The CSV report: one line per problem, and one for each row without any.

Cut as the installer's Excel expects (see ``_csv_delimiter``), UTF-8 with a BOM.
Text that Excel would take for a number or a date (an IMEI, a serial with
leading zeros, a DevEUI like ``0012E456``) is written as ``="..."``, the one
form Excel opens as text: otherwise an IMEI becomes ``8.68E+14`` and its digits
are gone the moment the file is saved again.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provisioner.files import csv_cell
from provisioner.reports.base import (
    Context,
    Report,
    local_time,
    problems_of,
    rows_of,
    sends_text,
    state_name,
    state_of,
)
from provisioner.text import visible


def render(report: Report, context: Context) -> bytes:
    return _csv(report, _csv_delimiter(context.source)).encode("utf-8-sig")


# What Excel reads as a number, a date, a time or a truth value rather than as text.
_EXCEL_NUMBER = re.compile(
    r"\s*[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?%?\s*"  # 12, 0077, 1,5, 12E4, 5%
    r"|\s*[+-]?\d{1,3}([.,]\d{3})+([.,]\d+)?\s*"  # 1.234.567
    r"|\s*\(\d+([.,]\d+)?\)\s*"  # (5), a negative number
    r"|\s*[€$£]?\s*\d+([.,]\d+)?\s*[€$£]?\s*"  # 5 €
    r"|\s*\d+\s+\d+/\d+\s*"  # 1 1/2
    r"|\s*\d{1,4}[-/.]\d{1,2}([-/.]\d{1,4})?\s*"  # 1-2, 3/4/26, 1.2.2026
    r"|\s*\d{1,2}:\d{2}(:\d{2})?\s*"  # 12:30, 00:11:22
    r"|(?i:true|false|wahr|falsch)"
)
_EXCEL_TEXT_LIMIT = 250  # Excel refuses a formula's text over 255 characters


def _cell_safe(value: Any) -> Any:
    """Text Excel would make a number of stays text; text it would run as a formula
    gets a leading quote (``files.csv_cell``); control characters are shown as escapes
    (``text.visible``). Numbers (row numbers, platform ids) stay numbers."""
    if not isinstance(value, str):
        return value
    value = visible(value, keep="\t\n")
    if len(value) <= _EXCEL_TEXT_LIMIT and _EXCEL_NUMBER.fullmatch(value):
        return '="' + value + '"'  # none of the forms above holds a quote to double
    return csv_cell(value)


def _csv_delimiter(source: Path | None) -> str:
    """A CSV report is cut like the installer's sheet: a CSV sheet's own "," or ";", else
    ";", what German Excel (the installers' Excel) expects; the BOM tells it UTF-8. (A
    sheet cut by tabs is Excel's UTF-16 "Unicode Text": a UTF-8 report gets ";".)"""
    if source is not None and source.suffix.lower() == ".csv":
        from provisioner.sheets import csv_delimiter

        delimiter = csv_delimiter(source)
        return delimiter if delimiter in (",", ";") else ";"
    return ";"


def _csv(report: Report, delimiter: str = ";") -> str:
    """One line per problem, and one line for each row without any."""
    command = report.get("command")
    with_platform = command in ("plan", "apply", "verify")
    times = ["installed", "last_data"] if command == "verify" else []
    header = ["sheet", "row", "key", state_name(report), "message"]
    sends = command == "plan"  # what each create sends, as one line of JSON
    header += ["platform_id"] if with_platform else []
    header += ["sends"] if sends else []
    header += times
    header += ["severity", "cell", "column", "value", "problem", "fix"]

    def problem_fields(problem: Mapping[str, Any] | None) -> list[Any]:
        if problem is None:
            return ["", "", "", "", "", ""]
        keys = ("severity", "cell", "column", "value", "message", "fix")
        return [problem.get(key) for key in keys]

    lines: list[list[Any]] = []
    for problem in report.get("problems") or []:
        start = [problem.get("sheet"), problem.get("row"), "", "", ""]
        blank = [""] * (with_platform + sends + len(times))
        lines.append(start + blank + problem_fields(problem))
    for row in rows_of(report):
        start = [
            row.get("sheet"),
            row.get("row"),
            row.get("key"),
            state_of(row),
            row.get("message"),
        ]
        start += [row.get("platform_id")] if with_platform else []
        start += [sends_text(row)] if sends else []
        start += [local_time(row.get(name)) for name in times]
        problems: list[Mapping[str, Any] | None] = [*problems_of(row)]
        for problem in problems or [None]:
            lines.append(start + problem_fields(problem))

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    for line in lines:
        writer.writerow(["" if value is None else _cell_safe(value) for value in line])
    return buffer.getvalue()
