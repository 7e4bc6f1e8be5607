"""Rendering a result for people and files: console text, JSON, CSV, HTML and xlsx.

validate, plan and apply share these renderers, so they work on the report's
plain dict: exactly what ``--report x.json`` writes (the result object's
``to_dict()``), never on a command's own classes. The keys they rely on::

    command, source, template, made_at, ok, totals, problems (file level), rows:
        sheet, row, kind, key, status | action, message, errors, warnings,
        and from plan/apply: platform_id, diff {field: {sheet, platform}}, reason

Other keys are tolerated and appear in the JSON only.

Secrets pass one redaction point, ``report_base.redacted``, before any format is
rendered (console included): the columns the site template maps to a secret
field (``secret_columns``: tab -> column letters, from
``SiteRecords.secret_columns``) have their problem values masked, and every
occurrence of each of the sheet's ``secrets`` (its passwords, also JSON- or
HTML-escaped, as a platform may echo a request body) becomes ``***`` in every
string of the report. The xlsx report also holds the installer's own cells:
secret columns are emptied there, and the same scrub runs over every cell and
comment of the workbook written.

Every file is written to a temporary file in the target folder and then
renamed over the target, so a crash never leaves a half-written report that
looks complete. Files that hold sheet values are safe to open in a
spreadsheet program: a value starting with ``= + - @`` never becomes a formula.
Writing fails only with ``ReportError``.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import json
import os
import secrets
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from provisioner.actions import CommissionStatus, RowAction
from provisioner.report_base import (
    TONES,
    Report,
    ReportError,
    Table,
    as_text,
    problems_of,
    quoted,
    redacted,
    rows_of,
    scrub,
    secret_pattern,
    state_of,
)

__all__ = [
    "REPORT_SUFFIXES",
    "ReportError",
    "Table",
    "check_report_paths",
    "render_console",
    "write_report",
]

REPORT_SUFFIXES = (".json", ".html", ".xlsx", ".csv")
_SUFFIX_HINT = "use .json, .html, .xlsx or .csv"


# Rows worth a line on the console even without a problem of their own.
# This many rows failing with the same words are listed as one line.
_GROUP_AT = 3
_NOTABLE = {
    RowAction.DIFFERS,
    RowAction.BLOCKED,
    RowAction.FAILED,
    RowAction.NOT_RUN,
    RowAction.SKIPPED,
    CommissionStatus.SILENT,
    CommissionStatus.MISSING,
}


# --- checking paths before any work


def check_report_paths(paths: Sequence[Path], *, source: Path | None = None) -> None:
    """Refuse report paths that could not be written, before any work starts.

    ``source`` is the input sheet: a report never overwrites it.
    """
    for path in paths:
        suffix = path.suffix.lower()
        if not suffix:
            raise ReportError(f"report {path} has no format suffix: {_SUFFIX_HINT}")
        if suffix not in REPORT_SUFFIXES:
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


# --- shared helpers


def _state_name(report: Report) -> str:
    return "action" if report.get("command") == "plan" else "status"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _warning_count(report: Report) -> int:
    # One pass without copies: a sheet has 100,000 rows and a handful with problems.
    count = sum(1 for p in report.get("problems") or () if p.get("severity") == "warning")
    for row in report.get("rows") or ():
        for key in ("errors", "warnings"):
            found = row.get(key)
            if found:
                count += sum(1 for p in found if p.get("severity") == "warning")
    return count


def _summary(report: Report) -> str:
    """``51 rows: 48 valid, 3 invalid, 2 warnings`` / ``create 400 · exists 180 · ...``."""
    totals: Mapping[str, Any] = report.get("totals") or {}
    warnings = _warning_count(report)
    if report.get("command") == "validate":
        parts = [f"{count} {name}" for name, count in totals.items()]
        if warnings:
            parts.append(_plural(warnings, "warning"))
        return f"{_plural(len(report.get('rows') or ()), 'row')}: " + ", ".join(parts)
    parts = [f"{name} {count}" for name, count in totals.items()]
    if warnings:
        parts.append(_plural(warnings, "warning"))
    return " · ".join(parts)


def _problem_text(problem: Mapping[str, Any], *, in_row: bool) -> str:
    """``C14 serial: '3.52656E+14': <message>``; outside a row the sheet leads."""
    where = [] if in_row else [as_text(problem.get("sheet"))]
    if problem.get("cell"):
        where.append(as_text(problem["cell"]))
    elif problem.get("row") is not None and not in_row:
        where.append(f"row {problem['row']}")
    if problem.get("column"):
        where.append(as_text(problem["column"]))
    text = " ".join(part for part in where if part)
    if problem.get("value") not in (None, ""):
        text += f": {quoted(problem['value'])}"
    message = as_text(problem.get("message"))
    return f"{text}: {message}" if text else message


def _row_title(row: Mapping[str, Any]) -> str:
    """``Devices row 14 (key 1337)``."""
    title = f"{as_text(row.get('sheet'))} row {as_text(row.get('row'))}"
    if row.get("key") not in (None, ""):
        title += f" (key {row['key']})"
    return title


def _diff_lines(row: Mapping[str, Any]) -> list[str]:
    """A plan's field differences, then an update's changes (apply --update)."""
    diff: Mapping[str, Any] = row.get("diff") or {}
    lines = [
        f"{field}: sheet {quoted(sides.get('sheet'))}, platform {quoted(sides.get('platform'))}"
        + _tags_note(sides)
        for field, sides in diff.items()
    ]
    return lines + [f"{before} -> {after}" for before, after in map(_change_sides, _changes(row))]


def _tags_note(sides: Mapping[str, Any]) -> str:
    """What an update would do to the tags: the device's others are kept unless "exact"."""
    if "add" not in sides:
        return ""
    parts = [f"adds {', '.join(map(as_text, sides['add']))}"] if sides.get("add") else []
    if sides.get("remove"):
        parts.append(f"removes {', '.join(map(as_text, sides['remove']))}")
    kept = " (the device's other tags are kept)" if sides.get("mode") == "add" else ""
    return f"; an update {' and '.join(parts)}{kept}" if parts else ""


def _changes(row: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    changes = row.get("changes")
    return [c for c in changes if isinstance(c, Mapping)] if isinstance(changes, list) else []


def _change_sides(change: Mapping[str, Any]) -> tuple[str, str]:
    """("description 'Dach'", "'Keller'") or ("tags", "+ Haus3 - alt") for one change."""
    field = as_text(change.get("field"))
    if "add" in change or "remove" in change:
        moves = [f"+ {as_text(t)}" for t in change.get("add") or []]
        moves += [f"- {as_text(t)}" for t in change.get("remove") or []]
        return field, " ".join(moves)
    return f"{field} {quoted(change.get('before'))}", quoted(change.get("after"))


def _row_note(row: Mapping[str, Any]) -> str:
    """Why a blocked or failed row did not go through."""
    return as_text(row.get("reason") or row.get("message"))


# --- console


_RED, _YELLOW, _RESET = "\x1b[31m", "\x1b[33m", "\x1b[0m"


def _printable(text: str) -> str:
    """Show control characters from a sheet or the platform as escapes.

    A cell or a platform message must not drive the terminal: ESC (so every ANSI
    sequence), CR, newline, DEL, C1 controls and the other characters Python does
    not call printable (bidi overrides, zero-width marks) are shown as ``\\x1b``,
    ``\\r``, ``\\n``, ``\\u202e``.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def render_console(
    report: Report,
    *,
    limit: int = 20,
    color: bool = False,
    secrets: Collection[str] = (),
    secret_columns: Mapping[str, Collection[str]] | None = None,
) -> str:
    """The report as plain text for a terminal: summary, file problems, rows with problems.

    ``secrets`` and ``secret_columns`` as for ``write_report``. Every text from the
    report is shown through ``_printable``; only the colours (``color``) are codes.
    """
    # Cells masked by field here; the secrets scrubbed from the finished text, once,
    # rather than from every row of a report that may have 100,000.
    report = redacted(report, secret_columns, ())
    pattern = secret_pattern([*secrets, *(_printable(secret) for secret in secrets)])

    def paint(text: str, severity: Any) -> str:
        if not color:
            return text
        return f"{_RED if severity == 'error' else _YELLOW}{text}{_RESET}"

    def problem_lines(problem: Mapping[str, Any], indent: str, *, in_row: bool) -> list[str]:
        severity = problem.get("severity")
        label = "warning: " if severity == "warning" else ""
        text = _printable(label + _problem_text(problem, in_row=in_row))
        lines = [indent + paint(text, severity)]
        if problem.get("fix"):
            lines.append(f"{indent}  fix: {_printable(as_text(problem['fix']))}")
        return lines

    lines = [_printable(_summary(report))]
    for problem in report.get("problems") or []:
        lines.extend(problem_lines(problem, "", in_row=False))

    shown = [
        row
        for row in report.get("rows") or ()
        if row.get("errors") or row.get("warnings") or state_of(row) in _NOTABLE
    ]
    # Rows that failed (or were not run) with one and the same answer: one line for all.
    alike: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in shown:
        if state_of(row) in (RowAction.FAILED, RowAction.NOT_RUN) and not row.get("errors"):
            alike.setdefault((state_of(row), _row_note(row)), []).append(row)
    grouped = {key: rows for key, rows in alike.items() if len(rows) >= _GROUP_AT}
    for (state, note), rows in grouped.items():
        numbers = ", ".join(as_text(r.get("row")) for r in rows[:8])
        more = ", ..." if len(rows) > 8 else ""
        lines.append(
            _printable(
                f"{len(rows)} rows ({as_text(rows[0].get('sheet'))} rows {numbers}{more}): {state}"
            )
        )
        lines.append(f"  {_printable(note)}")
    in_groups = {id(r) for rows in grouped.values() for r in rows}
    shown = [row for row in shown if id(row) not in in_groups]
    for row in shown[: max(limit, 0)]:
        state = state_of(row)
        title = _row_title(row)
        if report.get("command") != "validate" and state:
            title += f": {state}"
        lines.append(_printable(title))
        for problem in problems_of(row):
            lines.extend(problem_lines(problem, "  ", in_row=True))
        if state == RowAction.DIFFERS:
            lines.extend(f"  {_printable(line)}" for line in _diff_lines(row))
        elif state in _NOTABLE and not row.get("errors") and _row_note(row):
            lines.append(f"  {_printable(_row_note(row))}")
    hidden = len(shown) - max(limit, 0)
    if hidden > 0:
        lines.append(
            f"... and {hidden} more {'row' if hidden == 1 else 'rows'} with problems: see --report"
        )
    text = "\n".join(lines)
    return text if pattern is None else scrub(text, pattern)


# --- writing files


def write_report(
    report: Report,
    path: Path,
    *,
    source: Path | None = None,
    tables: Mapping[str, Table] | None = None,
    secret_columns: Mapping[str, Collection[str]] | None = None,
    secrets: Collection[str] = (),
) -> None:
    """Write the report in the format its suffix names.

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
    suffix = path.suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        raise ReportError(f"report format {suffix or '(none)'} is not supported: {_SUFFIX_HINT}")
    report = redacted(report, secret_columns, secrets)
    if suffix == ".json":
        data = (json.dumps(report, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    elif suffix == ".csv":
        data = _csv(report, _csv_delimiter(source)).encode("utf-8-sig")
    elif suffix == ".html":
        data = _html(report).encode("utf-8")
    else:
        from provisioner.report_xlsx import xlsx  # openpyxl only when a workbook is written

        data = xlsx(report, source, tables, secret_columns, secret_pattern(secrets))
    _replace(path, data)


def _replace(path: Path, data: bytes) -> None:
    """Write beside the target, then rename over it: the target is whole or untouched."""
    # Not mkstemp: its mode 0600 would make a shared report unreadable to the team;
    # os.open with 0666 lets the umask decide, as for any file the user writes.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as exc:
        raise ReportError(f"could not write report {path}: {exc.strerror or exc}") from exc


# --- CSV


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
    header = ["sheet", "row", "key", _state_name(report), "message"]
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


# --- HTML


def _esc(value: Any) -> str:
    # The colon as an entity keeps every address in the data from reading as a
    # link to copy or follow in the file's source; the browser shows it unchanged.
    return html.escape(as_text(value), quote=True).replace("://", "&#58;//")


_CSS = """
:root { font-family: system-ui, sans-serif; color: #1b1b1b; background: #fff; }
body { margin: 0 auto; padding: 1rem; max-width: 80rem; line-height: 1.4; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; word-break: break-word; }
h2 { font-size: 1.1rem; margin: 1.2rem 0 .4rem; }
.meta, .summary { margin: .2rem 0; color: #444; }
.verdict-ok, .verdict-attention { font-weight: bold; }
.verdict-ok { color: #1d6b2a; } .verdict-attention { color: #a51d1d; }
.filters { display: flex; flex-wrap: wrap; gap: .4rem; margin: .8rem 0; }
.filters button, th button { font: inherit; cursor: pointer; }
.filters button { border: 1px solid #999; border-radius: 1rem; background: #f4f4f4; padding: .2rem .8rem; }
.filters button[aria-pressed="true"] { background: #1b1b1b; color: #fff; }
table.rows { border-collapse: collapse; width: 100%; }
table.rows th, table.rows td { border-bottom: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th button { border: 0; background: none; font-weight: bold; padding: 0; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
.state { display: inline-block; border-radius: .3rem; padding: 0 .4rem; background: #eee; }
.good { background: #c6efce; } .neutral { background: #e7e6e6; }
.warn { background: #ffeb9c; } .bad { background: #ffc7ce; }
ul.problems { margin: 0; padding-left: 1.1rem; }
li.error { color: #a51d1d; } li.warning { color: #7a5a00; }
li small { display: block; color: #444; }
table.diff { border-collapse: collapse; margin-top: .3rem; font-size: .9em; }
table.diff th, table.diff td { border: 1px solid #ddd; padding: .1rem .4rem; }
.reason { margin: .2rem 0 0; }
@media (max-width: 700px) {
  table.rows thead tr { display: flex; flex-wrap: wrap; gap: .6rem; }
  table.rows thead th { border: 0; padding: 0; }
  table.rows, table.rows tbody, table.rows tr, table.rows td { display: block; }
  table.rows tbody tr { border: 1px solid #ccc; border-radius: .4rem; margin: .6rem 0; padding: .3rem; }
  table.rows td { border: 0; padding: .15rem .3rem; }
  table.rows td::before { content: attr(data-label) ": "; font-weight: bold; }
}
"""

_JS = """
(function () {
  var table = document.getElementById("rows");
  if (!table) { return; }
  var body = table.tBodies[0];
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  heads.forEach(function (th, index) {
    th.querySelector("button").addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[index].textContent, y = b.cells[index].textContent;
        var order = x.localeCompare(y, undefined, {numeric: true, sensitivity: "base"});
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  var buttons = Array.prototype.slice.call(document.querySelectorAll("button[data-filter]"));
  buttons.forEach(function (button) {
    button.addEventListener("click", function () {
      var wanted = button.getAttribute("data-filter");
      buttons.forEach(function (other) {
        other.setAttribute("aria-pressed", other === button ? "true" : "false");
      });
      Array.prototype.forEach.call(body.rows, function (row) {
        var match = wanted === "" ||
          (wanted === "!problems" ? row.getAttribute("data-problems") === "1"
                                  : row.getAttribute("data-state") === wanted);
        row.hidden = !match;
      });
    });
  });
})();
"""


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


# Only the page's own style and script may run: even a value that slipped past
# escaping could neither execute nor load anything from elsewhere.
_CSP = f"default-src 'none'; style-src '{_sha256(_CSS)}'; script-src '{_sha256(_JS)}'"


def _html_problem(problem: Mapping[str, Any], *, in_row: bool) -> str:
    severity = "warning" if problem.get("severity") == "warning" else "error"
    label = "warning: " if severity == "warning" else ""
    item = f'<li class="{severity}">{_esc(label + _problem_text(problem, in_row=in_row))}'
    if problem.get("fix"):
        item += f"<small>fix: {_esc(problem['fix'])}</small>"
    return item + "</li>"


def _html_row(row: Mapping[str, Any], state_label: str) -> str:
    state = state_of(row)
    problems = problems_of(row)
    details = ""
    if problems:
        items = "".join(_html_problem(problem, in_row=True) for problem in problems)
        details += f'<ul class="problems">{items}</ul>'
    diff: Mapping[str, Any] = row.get("diff") or {}
    if diff:
        lines = "".join(
            f"<tr><td>{_esc(field)}</td><td>{_esc(quoted(sides.get('sheet')))}</td>"
            f"<td>{_esc(quoted(sides.get('platform')))}</td></tr>"
            for field, sides in diff.items()
        )
        details += (
            '<table class="diff"><tr><th>field</th><th>sheet</th><th>platform</th></tr>'
            f"{lines}</table>"
        )
    changes = _changes(row)
    if changes:
        lines = "".join(
            f"<tr><td>{_esc(before)}</td><td>{_esc(after)}</td></tr>"
            for before, after in map(_change_sides, changes)
        )
        details += (
            '<table class="diff changes"><tr><th>field, before</th><th>after</th></tr>'
            f"{lines}</table>"
        )
    if row.get("reason"):
        details += f'<p class="reason">{_esc(row["reason"])}</p>'
    tone = TONES.get(state, "")
    cells = [
        ("Sheet", _esc(row.get("sheet"))),
        ("Row", _esc(row.get("row"))),
        ("Key", _esc(row.get("key"))),
        (state_label, f'<span class="state {tone}">{_esc(state)}</span>'),
        ("Message", _esc(row.get("message"))),
        ("Problems", details),
    ]
    tds = "".join(f'<td data-label="{label}">{content}</td>' for label, content in cells)
    flag = "1" if problems or state in _NOTABLE else "0"
    return f'<tr data-state="{_esc(state)}" data-problems="{flag}">{tds}</tr>'


def _html(report: Report) -> str:
    command, source = as_text(report.get("command")), as_text(report.get("source"))
    rows = rows_of(report)
    state_label = _state_name(report).capitalize()
    meta = [f"template {report['template']}"] if report.get("template") else []
    meta += [f"made {report['made_at']}"] if report.get("made_at") else []
    meta += [f"platform {report['platform']}"] if report.get("platform") else []
    verdict = (
        '<p class="verdict-ok">All good.</p>'
        if report.get("ok")
        else '<p class="verdict-attention">Some rows need attention.</p>'
    )

    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>provisioner {_esc(command)}: {_esc(source)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>provisioner {_esc(command)}: {_esc(source)}</h1>",
        f'<p class="meta">{_esc(" · ".join(meta))}</p>' if meta else "",
        f'<p class="summary">{_esc(_summary(report))}</p>',
        verdict,
    ]
    file_problems = report.get("problems") or []
    if file_problems:
        items = "".join(_html_problem(problem, in_row=False) for problem in file_problems)
        parts.append(f'<h2>Problems with the file</h2><ul class="problems">{items}</ul>')

    totals: Mapping[str, Any] = report.get("totals") or {}
    states = [*totals, *sorted({state_of(row) for row in rows} - set(totals) - {""})]
    notable = sum(1 for row in rows if problems_of(row) or state_of(row) in _NOTABLE)
    buttons = [
        f'<button type="button" data-filter="" aria-pressed="true">all ({len(rows)})</button>'
    ]
    buttons.append(
        f'<button type="button" data-filter="!problems" aria-pressed="false">with problems ({notable})</button>'
    )
    for state in states:
        count = totals.get(state, sum(1 for row in rows if state_of(row) == state))
        buttons.append(
            f'<button type="button" data-filter="{_esc(state)}" aria-pressed="false">'
            f"{_esc(state)} ({_esc(count)})</button>"
        )
    parts.append(
        f'<h2>Rows</h2><div class="filters" role="group" aria-label="Show rows">{"".join(buttons)}</div>'
    )

    heads = "".join(
        f'<th scope="col"><button type="button">{label}</button></th>'
        for label in ("Sheet", "Row", "Key", state_label, "Message", "Problems")
    )
    body = "".join(_html_row(row, state_label) for row in rows)
    parts.append(
        f'<table class="rows" id="rows"><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table>'
    )
    parts.append(f"<script>{_JS}</script></body></html>\n")
    return "\n".join(part for part in parts if part)
