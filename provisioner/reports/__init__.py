"""Rendering a result for people and files: console text, JSON, CSV, HTML and xlsx.

One module per format (``json_report``, ``csv_report``, ``html_report``,
``xlsx_report``), each with ``render(report, context) -> bytes``, behind one
table, ``FORMATS``, from suffix to module: a new format is one file and one line.
The console text is ``console.render_console``.

validate, plan and apply share these renderers, so they work on the report's
plain dict: the result object's ``to_dict()``, never on a command's own classes;
for validate, ``listed()``: its rows with problems, the others counted in
``totals``. The JSON report writes that dict with each kind's fix said once, in
``kinds``, and for a streamed validation every row (``write_report``'s ``rows``,
``json_report.StreamedRows``). The keys they rely on::

    command, source, template, made_at, ok, totals, problems (file level), rows:
        sheet, row, kind, key, status | action, message, errors, warnings,
        and from plan/apply: platform_id, diff {field: {sheet, platform}}, reason

Other keys are tolerated and appear in the JSON only.

Secrets pass one redaction point, ``base.redacted``, before any format is
rendered (console included): the columns the site template maps to a secret
field (``secret_columns``: tab -> column letters, from
``SiteRecords.secret_columns``) have their problem values masked, and every
occurrence of each of the sheet's ``secrets`` (its passwords, also JSON- or
HTML-escaped, as a platform may echo a request body) becomes ``***`` in every
string of the report. The xlsx report also holds the installer's own cells:
secret columns are emptied there, and the same scrub runs over every cell and
comment of the workbook written.

Every file is written by ``files.write_atomically`` (a temporary file in the
target folder, synced, then renamed over the target), so a crash never leaves a
half-written report that looks complete. Files that hold sheet values are safe
to open in a spreadsheet program: a value starting with ``= + - @`` never
becomes a formula (``files.csv_cell``, ``files.put_text``).
Writing fails only with ``ReportError``. A report Excel holds open on Windows
cannot be replaced: with ``beside`` it is written next to it instead
(``r.xlsx`` -> ``r-2.xlsx``, as apply's results go to ``<sheet>.results-2.xlsx``).
"""

from __future__ import annotations

import importlib
import io
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from provisioner.files import FileHeld, reason, write_atomically
from provisioner.reports.base import Context, Report, ReportError, Table, redacted, secret_pattern
from provisioner.reports.console import render_console

if TYPE_CHECKING:
    from provisioner.reports.json_report import StreamedRows

__all__ = [
    "FORMATS",
    "REPORT_SUFFIXES",
    "ReportError",
    "Table",
    "check_report_paths",
    "print_json",
    "render_console",
    "render_report",
    "write_report",
]

# Suffix -> the module that renders it, imported on first use (openpyxl only
# when a workbook is written).
FORMATS = {
    ".json": "json_report",
    ".html": "html_report",
    ".xlsx": "xlsx_report",
    ".csv": "csv_report",
}
REPORT_SUFFIXES = tuple(FORMATS)
_SUFFIX_HINT = f"use {', '.join(REPORT_SUFFIXES[:-1])} or {REPORT_SUFFIXES[-1]}"


# --- checking paths before any work


def check_report_paths(paths: Sequence[Path], *, source: Path | None = None) -> None:
    """Refuse report paths that could not be written, before any work starts.

    ``source`` is the input sheet: a report never overwrites it.
    """
    for path in paths:
        suffix = path.suffix.lower()
        if not suffix:
            raise ReportError(f"report {path} has no format suffix: {_SUFFIX_HINT}")
        if suffix not in FORMATS:
            raise ReportError(f"report format {suffix} is not supported: {_SUFFIX_HINT}")
        folder = path.parent
        if not folder.is_dir():
            raise ReportError(
                f"folder {folder} for report {path.name} does not exist: create it first"
            )
        if path.is_dir():
            raise ReportError(f"report {path} is a folder: give a file name")
        if not os.access(folder, os.W_OK):
            raise ReportError(f"cannot write report {path.name}: folder {folder} is not writable")
        if source is not None and path.resolve() == source.resolve():
            raise ReportError(
                f"report {path} would overwrite the sheet {source.name}: choose another file name"
            )


# --- writing files


def write_report(
    report: Report,
    path: Path,
    *,
    beside: bool = False,
    rows: StreamedRows | None = None,
    **sheet: Any,
) -> Path:
    """Write the report in the format its suffix names; returns the file written.

    ``beside``: when ``path`` cannot be replaced (``files.FileHeld``: open in Excel),
    the first of ``<name>-2`` .. ``<name>-9`` that can be is written instead.
    ``rows``: every row of a streamed validation, for the JSON report (the other
    formats show the report's own rows). ``sheet``: what ``render_report`` takes of
    the sheet (its source, tables and secrets), passed on as it is.
    """
    if rows is not None and path.suffix.lower() == ".json":
        write = _json_writer(report, rows, **sheet)
    else:
        data = render_report(report, path.suffix, **sheet)

        def write(file: IO[bytes]) -> None:
            file.write(data)

    held: FileHeld | None = None
    for target in [path, *(beside_of(path, n) for n in range(2, 10))] if beside else [path]:
        try:
            write_atomically(target, write)
        except FileHeld as exc:
            held = held or exc
            continue
        except OSError as exc:
            raise ReportError(f"could not write report {target}: {reason(exc)}") from exc
        return target
    assert held is not None  # every target was tried and held
    raise ReportError(f"could not write report {path}: {reason(held)}") from held


def render_report(
    report: Report,
    suffix: str,
    *,
    source: Path | None = None,
    tables: Mapping[str, Table] | None = None,
    secret_columns: Mapping[str, Collection[str]] | None = None,
    secrets: Collection[str] = (),
) -> bytes:
    """The bytes ``write_report`` writes for a file with this suffix (``--json`` prints
    the .json ones).

    ``source`` (the input sheet) and ``tables`` (the tabs as read) serve the
    xlsx report only: an .xlsx/.xlsm source is copied with the findings on it,
    any other source is rebuilt from ``tables`` at the same cell references.

    ``secret_columns`` maps a tab name to the letters of the columns the site
    template maps to a secret field (``SiteRecords.secret_columns``): their
    values are masked in every format and emptied in the xlsx copy of the tab.
    ``secrets`` are the sheet's secret values (``SiteRecords.secret_values()``);
    each one of 4 characters or more is replaced by ``***`` wherever it occurs,
    also JSON-escaped: in messages, values, comments and copied cells alike.
    """
    suffix = suffix.lower()
    if suffix not in FORMATS:
        raise ReportError(f"report format {suffix or '(none)'} is not supported: {_SUFFIX_HINT}")
    report = redacted(report, secret_columns, secrets)
    writer = importlib.import_module(f"provisioner.reports.{FORMATS[suffix]}")
    context = Context(source, tables, secret_columns, secret_pattern(secrets))
    data: bytes = writer.render(report, context)
    return data


def print_json(
    report: Report, out: IO[str], *, rows: StreamedRows | None = None, **sheet: Any
) -> None:
    """``--json``: the bytes ``write_report`` writes to a .json file, on ``out``."""
    if rows is None:
        out.write(render_report(report, ".json", **sheet).decode("utf-8"))
    else:
        _write_json(report, rows, out.write, **sheet)


def _json_writer(report: Report, rows: StreamedRows, **sheet: Any) -> Callable[[IO[bytes]], None]:
    def write(file: IO[bytes]) -> None:
        text = io.TextIOWrapper(file, encoding="utf-8", newline="\n")
        try:
            _write_json(report, rows, text.write, **sheet)
            text.flush()
        finally:
            text.detach()

    return write


def _write_json(
    report: Report,
    rows: StreamedRows,
    out: Callable[[str], object],
    *,
    secret_columns: Mapping[str, Collection[str]] | None = None,
    secrets: Collection[str] = (),
    **_: Any,
) -> None:
    """The JSON report of a streamed validation: its head and listed rows redacted as
    ``render_report`` does, every other row from the spill, scrubbed of secrets."""
    from provisioner.reports import json_report

    shown = redacted(report, secret_columns, secrets)
    lines = rows.spill.rows(shown.get("rows") or (), rows.at)
    json_report.write(out, shown, lines, secret_pattern(secrets))


def beside_of(path: Path, number: int) -> Path:
    """The ``number``-th file beside ``path``: ``r.xlsx`` -> ``r-2.xlsx``."""
    return path.with_name(f"{path.stem}-{number}{path.suffix}")
