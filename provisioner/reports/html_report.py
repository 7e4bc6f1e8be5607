"""The HTML report: one page that works offline, rows to filter and sort, nothing that runs from elsewhere."""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Mapping
from typing import Any

from provisioner.reports.base import (
    NOTABLE,
    TONES,
    Context,
    Report,
    as_text,
    change_sides,
    changes_of,
    problem_text,
    problems_of,
    quoted,
    rows_of,
    state_name,
    state_of,
    summary,
)


def render(report: Report, context: Context) -> bytes:
    return _html(report).encode("utf-8")


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
    item = f'<li class="{severity}">{_esc(label + problem_text(problem, in_row=in_row))}'
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
    changes = changes_of(row)
    if changes:
        lines = "".join(
            f"<tr><td>{_esc(before)}</td><td>{_esc(after)}</td></tr>"
            for before, after in map(change_sides, changes)
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
    flag = "1" if problems or state in NOTABLE else "0"
    return f'<tr data-state="{_esc(state)}" data-problems="{flag}">{tds}</tr>'


def _html(report: Report) -> str:
    command, source = as_text(report.get("command")), as_text(report.get("source"))
    rows = rows_of(report)
    state_label = state_name(report).capitalize()
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
        f'<p class="summary">{_esc(summary(report))}</p>',
        verdict,
    ]
    file_problems = report.get("problems") or []
    if file_problems:
        items = "".join(_html_problem(problem, in_row=False) for problem in file_problems)
        parts.append(f'<h2>Problems with the file</h2><ul class="problems">{items}</ul>')

    totals: Mapping[str, Any] = report.get("totals") or {}
    states = [*totals, *sorted({state_of(row) for row in rows} - set(totals) - {""})]
    notable = sum(1 for row in rows if problems_of(row) or state_of(row) in NOTABLE)
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
