"""The HTML report: one page that works offline, rows to filter and sort, nothing that runs from elsewhere."""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Mapping, Sequence
from typing import Any

from provisioner.actions import RowAction
from provisioner.reports.base import (
    NOTABLE,
    SHORT,
    TONES,
    Alike,
    Context,
    Listing,
    Report,
    alike_listing,
    as_text,
    change_sides,
    changes_of,
    device_address,
    diff_notes,
    listed_note,
    local_time,
    problem_message,
    problem_where,
    problems_of,
    quoted,
    row_count,
    rows_of,
    sends_of,
    shorten,
    state_name,
    state_of,
    summary,
)
from provisioner.text import counted, visible

# An entry of rows alike names this many runs of rows (``C2:C9, C12``), then counts.
_RANGES = 50


def render(report: Report, context: Context) -> bytes:
    return _html(report).encode("utf-8")


def _esc(value: Any) -> str:
    # Control characters and marks that turn text around or hide it are shown as
    # escapes (``text.visible``), as on the console: a cell must not make the page
    # read other than it is. The colon as an entity keeps every address in the data
    # from reading as a link to copy or follow in the file's source; the browser
    # shows it unchanged.
    text = visible(as_text(value), keep="\t\n")
    return html.escape(text, quote=True).replace("://", "&#58;//")


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
.short { text-decoration: underline dotted; cursor: help; }
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


def _short(text: str) -> str:
    """A value cut to SHORT characters, the whole of it in the tooltip (and in the JSON)."""
    if len(text) <= SHORT:
        return _esc(text)
    return f'<span class="short" title="{_esc(text)}">{_esc(shorten(text))}</span>'


def _html_problem(problem: Mapping[str, Any], *, in_row: bool) -> str:
    severity = "warning" if problem.get("severity") == "warning" else "error"
    text = ("warning: " if severity == "warning" else "") + problem_where(problem, in_row=in_row)
    item = f'<li class="{severity}">{_esc(text)}'
    if problem.get("value") not in (None, ""):
        item += f": {_short(quoted(problem['value']))}"
    item += f"{': ' if text else ''}{_esc(problem_message(problem, SHORT))}"
    if problem.get("fix"):
        item += f"<small>fix: {_esc(problem['fix'])}</small>"
    return item + "</li>"


def _alike_item(report: Report, listing: Listing, entry: Alike) -> str:
    """One entry of problems (or outcomes) alike: its rows as ranges, then the words once."""
    title, number = _esc(listing.title(entry, _RANGES)), listing.number(entry)
    if entry.problem is None:  # failed or not run with the same words
        severity = "error" if entry.state == RowAction.FAILED else "warning"
        note = listed_note(report, entry.rows[0])
        text = f"{title}: {_esc(entry.state)}: {_esc(note)}"
        return f'<li id="alike-{number}" class="{severity}">{text}</li>'
    item = _html_problem({**entry.problem, "cell": None}, in_row=True)
    return item.replace("<li ", f'<li id="alike-{number}" ', 1).replace('">', f'">{title}: ', 1)


def _row_message(row: Mapping[str, Any], message: str, listing: Listing) -> str:
    """The row's words; where they are an entry's above (a failure alike on several rows),
    a link to it; where they are a problem's listed alike, nothing (Details names it)."""
    outcome = listing.of(row)
    if outcome is not None and message == outcome.note:
        alike = f"as {counted(len(outcome.rows), 'row')}, see above"
        return f'<a href="#alike-{listing.number(outcome)}">{_esc(alike)}</a>'
    for problem in problems_of(row):
        if listing.of(problem) is not None and as_text(problem.get("message")) == message:
            return ""
    return _esc(message)


def _row_problem(problem: Mapping[str, Any], listing: Listing) -> str:
    """A problem in its row; one alike on many rows only named, its words in the entry above."""
    entry = listing.of(problem)
    if entry is None:
        return _html_problem(problem, in_row=True)
    number = listing.number(entry)
    severity = "warning" if problem.get("severity") == "warning" else "error"
    text = ("warning: " if severity == "warning" else "") + problem_where(problem, in_row=True)
    alike = f"as {counted(len(entry.rows), 'row')}, see above"
    return f'<li class="{severity}">{_esc(text)}: <a href="#alike-{number}">{_esc(alike)}</a></li>'


def _diff_html(row: Mapping[str, Any]) -> str:
    """A plan's differences (field, sheet, platform), then an update's changes."""
    diff: Mapping[str, Any] = row.get("diff") or {}
    html_out = ""
    if diff:
        lines = "".join(
            f"<tr><td>{_esc(field)}</td><td>{_short(quoted(sides.get('sheet')))}</td>"
            f"<td>{_short(quoted(sides.get('platform')))}</td></tr>"
            for field, sides in diff.items()
        )
        html_out += (
            '<table class="diff"><tr><th>field</th><th>sheet</th><th>platform</th></tr>'
            f"{lines}</table>"
        )
        notes = diff_notes(row)
        html_out += "".join(f'<p class="reason">{_esc(note)}</p>' for note in notes)
    changes = changes_of(row)
    if changes:
        lines = "".join(
            f"<tr><td>{_esc(field)}</td><td>{_short(before)}</td><td>{_short(after)}</td></tr>"
            for field, before, after in map(change_sides, changes)
        )
        html_out += (
            '<table class="diff changes"><tr><th>field</th><th>before</th><th>after</th></tr>'
            f"{lines}</table>"
        )
    return html_out


def _sends_html(row: Mapping[str, Any]) -> str:
    """What apply sends for a create or queue row, field by field (values shortened, each
    whole in its tooltip): a field the sheet lost is seen missing before apply."""
    sends = sends_of(row)
    if sends is None:
        return ""
    lines = "".join(
        f"<tr><td>{_esc(field)}</td><td>{_short(quoted(value))}</td></tr>"
        for field, value in sends.items()
    )
    return f'<table class="diff sends">{lines}</table>' if lines else _esc("{}")


def _device_link(report: Report, row: Mapping[str, Any]) -> str:
    """The platform id, as a link to the device's page where the report knows its address."""
    address = device_address(report, row)
    if not address:
        return _esc(row.get("platform_id"))
    return f'<a href="{html.escape(address, quote=True)}">{_esc(row.get("platform_id"))}</a>'


def _cells(report: Report, row: Mapping[str, Any], listing: Listing) -> dict[str, str]:
    """The columns after Row, Key and the state, in order; empty where a row has nothing."""
    message = as_text(row.get("message"))
    details = ""
    problems = problems_of(row)
    if problems:
        items = "".join(_row_problem(problem, listing) for problem in problems)
        details += f'<ul class="problems">{items}</ul>'
    details += _diff_html(row)
    reason = as_text(row.get("reason"))
    if reason and reason != message:  # plan rows give both, mostly the same words
        details += f'<p class="reason">{_esc(reason)}</p>'
    records = row.get("records")
    return {
        "Message": _row_message(row, message, listing),
        "Platform id": _device_link(report, row),
        "Sends": _sends_html(row),
        "Installed": _esc(local_time(row.get("installed"))),
        "Last data": _esc(local_time(row.get("last_data"))),
        "Records": _esc("1+" if records is None and row.get("last_data") else records),
        "Details": details,
    }


def _html_rows(
    report: Report, rows: Sequence[Mapping[str, Any]], listing: Listing
) -> tuple[list[str], str]:
    """The table's headings and body: Sheet only with more than one tab, then the
    columns that say something on at least one row."""
    state_label = state_name(report).capitalize()
    several_tabs = len({row.get("sheet") for row in rows}) > 1
    fixed = (["Sheet"] if several_tabs else []) + ["Row", "Key", state_label]
    cells = [_cells(report, row, listing) for row in rows]
    optional = [name for name in (cells[0] if cells else {}) if any(c[name] for c in cells)]
    lines = []
    for row, extra in zip(rows, cells, strict=True):
        state = state_of(row)
        tone = TONES.get(state, "")
        first = {
            "Sheet": _esc(row.get("sheet")),
            "Row": _esc(row.get("row")),
            "Key": _short(as_text(row.get("key"))),
            state_label: f'<span class="state {tone}">{_esc(state)}</span>',
        }
        shown = [(name, first[name]) for name in fixed] + [(name, extra[name]) for name in optional]
        tds = "".join(f'<td data-label="{name}">{content}</td>' for name, content in shown)
        flag = "1" if problems_of(row) or state in NOTABLE else "0"
        lines.append(f'<tr data-state="{_esc(state)}" data-problems="{flag}">{tds}</tr>')
    return fixed + optional, "".join(lines)


def _html(report: Report) -> str:
    command, source = as_text(report.get("command")), as_text(report.get("source"))
    rows = rows_of(report)
    meta = [f"template {report['template']}"] if report.get("template") else []
    tabs = {as_text(row.get("sheet")) for row in rows} - {source}  # a CSV's tab is the file
    meta += [f"tab {tabs.pop()}"] if len(tabs) == 1 else []
    meta += [f"made {local_time(report['made_at'])}"] if report.get("made_at") else []
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
        f'<p class="summary">{_esc(summary(report))}</p>',
        verdict,
        f'<p class="verdict-attention">{_esc(report["stopped"])}</p>'
        if report.get("stopped")
        else "",
    ]
    file_problems = report.get("problems") or []
    if file_problems:
        items = "".join(_html_problem(problem, in_row=False) for problem in file_problems)
        parts.append(f'<h2>Problems with the file</h2><ul class="problems">{items}</ul>')

    listing = alike_listing(report)
    if listing.entries:
        items = "".join(_alike_item(report, listing, entry) for entry in listing.entries)
        parts.append(f'<h2>The same on several rows</h2><ul class="problems alike">{items}</ul>')

    totals: Mapping[str, Any] = report.get("totals") or {}
    states = [*totals, *sorted({state_of(row) for row in rows} - set(totals) - {""})]
    notable = sum(1 for row in rows if problems_of(row) or state_of(row) in NOTABLE)
    buttons = [
        f'<button type="button" data-filter="" aria-pressed="true">all ({row_count(report)})</button>'
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
    unlisted = row_count(report) - len(rows)
    if unlisted > 0:
        parts.append(
            f'<p class="meta">The table lists the rows with problems; '
            f"{_esc(counted(unlisted, 'row'))} without any {'is' if unlisted == 1 else 'are'} "
            "counted above.</p>"
        )

    names, body = _html_rows(report, rows, listing)
    heads = "".join(f'<th scope="col"><button type="button">{name}</button></th>' for name in names)
    parts.append(
        f'<table class="rows" id="rows"><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table>'
    )
    parts.append(f"<script>{_JS}</script></body></html>\n")
    return "\n".join(part for part in parts if part)
