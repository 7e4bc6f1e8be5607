"""The CSV report: one line per problem, and one for each row without any.

Cut as the installer's Excel expects (see ``delimiter``), UTF-8 with a BOM.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provisioner.reports.base import Context, Report, problems_of, rows_of, state_name, state_of


def render(report: Report, context: Context) -> bytes:
    return _csv(report, _csv_delimiter(context.source)).encode("utf-8-sig")


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell_safe(value: Any) -> Any:
    """Text a spreadsheet would run as a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv_delimiter(source: Path | None) -> str:
    """A CSV report is cut like the installer's sheet: a CSV sheet's own delimiter, else
    ";", what German Excel (the installers' Excel) expects; the BOM tells it UTF-8."""
    if source is not None and source.suffix.lower() == ".csv":
        from provisioner.sheets import csv_delimiter

        return csv_delimiter(source) or ";"
    return ";"


def _csv(report: Report, delimiter: str = ";") -> str:
    """One line per problem, and one line for each row without any."""
    with_platform = report.get("command") in ("plan", "apply")
    header = ["sheet", "row", "key", state_name(report), "message"]
    header += ["platform_id"] if with_platform else []
    header += ["severity", "cell", "column", "value", "problem", "fix"]

    def problem_fields(problem: Mapping[str, Any] | None) -> list[Any]:
        if problem is None:
            return ["", "", "", "", "", ""]
        keys = ("severity", "cell", "column", "value", "message", "fix")
        return [problem.get(key) for key in keys]

    lines: list[list[Any]] = []
    for problem in report.get("problems") or []:
        start = [problem.get("sheet"), problem.get("row"), "", "", ""]
        lines.append(start + ([""] if with_platform else []) + problem_fields(problem))
    for row in rows_of(report):
        start = [
            row.get("sheet"),
            row.get("row"),
            row.get("key"),
            state_of(row),
            row.get("message"),
        ]
        start += [row.get("platform_id")] if with_platform else []
        problems: list[Mapping[str, Any] | None] = [*problems_of(row)]
        for problem in problems or [None]:
            lines.append(start + problem_fields(problem))

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    for line in lines:
        writer.writerow(["" if value is None else _cell_safe(value) for value in line])
    return buffer.getvalue()
