"""The report as text for a terminal: summary, file problems, the rows that need a look.

Every text from the report passes ``text.visible``; only the colours are codes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from provisioner.actions import RowAction
from provisioner.reports.base import (
    NOTABLE,
    SHORT,
    Alike,
    Report,
    alike_listing,
    as_text,
    diff_notes,
    diff_table,
    listed_note,
    problem_text,
    problems_of,
    redacted,
    row_note,
    row_title,
    scrub,
    scrub_all,
    secret_pattern,
    sends_of,
    sends_text,
    state_of,
    summary,
)
from provisioner.text import counted, visible

# An entry of rows alike names this many runs of rows (``C2:C9, C12``), then counts.
_RANGES = 8
_RED, _YELLOW, _RESET = "\x1b[31m", "\x1b[33m", "\x1b[0m"


def render_console(
    report: Report,
    *,
    limit: int = 20,
    color: bool = False,
    secrets: Collection[str] = (),
    secret_columns: Mapping[str, Collection[str]] | None = None,
    creates: bool = False,
) -> str:
    """The report as plain text for a terminal: summary, file problems, rows with problems;
    with ``creates``, then every row a plan creates or queues with what apply sends for it.

    ``secrets`` and ``secret_columns`` as for ``write_report``. Every text from the
    report is shown through ``text.visible``; only the colours (``color``) are codes.
    """
    # Cells masked by field here; the secrets scrubbed from the rows shown (not from every
    # row of a report that may have 100,000), before values are shortened or folded into
    # a table, where a secret cut in two would no longer be found; and from the finished
    # text once more.
    report = redacted(report, secret_columns, ())
    pattern = secret_pattern([*secrets, *(visible(secret) for secret in secrets)])

    def clean(item: Mapping[str, Any]) -> Mapping[str, Any]:
        return item if pattern is None else scrub_all(item, pattern)

    def paint(text: str, severity: Any) -> str:
        if not color:
            return text
        return f"{_RED if severity == 'error' else _YELLOW}{text}{_RESET}"

    def problem_lines(problem: Mapping[str, Any], indent: str, *, in_row: bool) -> list[str]:
        severity = problem.get("severity")
        label = "warning: " if severity == "warning" else ""
        text = visible(label + problem_text(problem, in_row=in_row, limit=SHORT))
        lines = [indent + paint(text, severity)]
        if problem.get("fix"):
            lines.append(f"{indent}  fix: {visible(as_text(problem['fix']))}")
        return lines

    def alike_lines(entry: Alike) -> list[str]:
        if entry.problem is None:  # failed or not run with the same words
            title = f"{listing.title(entry, _RANGES)}: {entry.state}"
            return [visible(title), f"  {visible(listed_note(report, entry.rows[0]))}"]
        problem = clean({**entry.problem, "cell": None})
        lines = problem_lines(problem, "", in_row=True)
        lines[0] = f"{visible(listing.title(entry, _RANGES))}: {lines[0]}"
        return lines

    def row_lines(row: Mapping[str, Any]) -> list[str]:
        state, outcome = state_of(row), listing.of(row)
        title = row_title(clean(row))
        if report.get("command") != "validate" and state:
            title += f": {state}"
        lines = [visible(title)]
        for problem in problems_of(row):
            if listing.of(problem) is None:
                lines.extend(problem_lines(clean(problem), "  ", in_row=True))
        row = clean(row)
        if state == RowAction.DIFFERS:
            lines.extend(f"  {line}" for line in _diff_table(row, color))
            lines.extend(f"  {visible(note)}" for note in diff_notes(row))
        elif state in NOTABLE and outcome is None and not row.get("errors") and row_note(row):
            lines.append(f"  {visible(listed_note(report, row))}")
        return lines

    lines = [visible(summary(report))]
    for problem in report.get("problems") or []:
        lines.extend(problem_lines(clean(problem), "", in_row=False))

    # Problems and outcomes alike are one entry each, at the place of their first row;
    # the other rows with something to say one entry each, all within ``limit``.
    listing = alike_listing(report)
    of = listing.of

    def said_by(row: Mapping[str, Any]) -> list[Alike | Mapping[str, Any]] | None:
        """The entries that say what the row has to say; None when it has nothing."""
        problems = problems_of(row) if row.get("errors") or row.get("warnings") else []
        state = state_of(row)
        if not (problems or state in NOTABLE):
            return None
        outcome = of(row)
        mine: list[Alike | Mapping[str, Any]] = [e for e in map(of, problems) if e is not None]
        if outcome is not None:
            mine.append(outcome)
        elif len(mine) < len(problems) or state in NOTABLE:
            mine.append(row)  # what is the row's own: its line
        return mine

    entries: list[Alike | Mapping[str, Any]] = []
    listed: set[int] = set()
    needs: list[list[int]] = []  # per row with something to say, the entries that say it
    cap = max(limit, 0)
    rows = iter(report.get("rows") or ())
    for row in rows:
        mine = said_by(row)
        if mine is None:
            continue
        for entry in mine:
            if id(entry) not in listed:
                listed.add(id(entry))
                entries.append(entry)
        needs.append([id(entry) for entry in mine])
        if len(entries) > cap:
            break  # the entries shown are known; the rows after are only counted below
    shown = entries[:cap]
    for entry in shown:
        lines.extend(alike_lines(entry) if isinstance(entry, Alike) else row_lines(entry))
    in_view = {id(entry) for entry in shown}
    hidden = sum(1 for ids in needs if not in_view.issuperset(ids))
    # A later row is in view only as a row of an entry shown (each of its entries shown);
    # any other with something to say is hidden (half a sheet of 100,000 may be).
    members = {id(row) for entry in shown if isinstance(entry, Alike) for row in entry.rows}
    for row in rows:
        if id(row) in members:
            mine = said_by(row)
            hidden += mine is not None and not in_view.issuperset(map(id, mine))
        elif row.get("errors") or row.get("warnings") or state_of(row) in NOTABLE:
            hidden += 1
    if hidden > 0:
        lines.append(
            f"... and {hidden} more {'row' if hidden == 1 else 'rows'} with problems: see --report"
        )
    if creates:
        lines.extend(_creates(report, clean))
    text = "\n".join(lines)
    return text if pattern is None else scrub(text, pattern)


def _rows_by_tab(rows: list[Mapping[str, Any]], shown: int = 8) -> str:
    """The first ``shown`` rows' numbers, each under its own tab ("Users rows 2, 3;
    Downlinks row 5, ..."): a group may hold rows of several tabs."""
    tabs: dict[str, list[str]] = {}
    for row in rows[:shown]:
        tabs.setdefault(as_text(row.get("sheet")), []).append(as_text(row.get("row")))
    text = "; ".join(
        f"{tab} {'row' if len(numbers) == 1 else 'rows'} {', '.join(numbers)}"
        for tab, numbers in tabs.items()
    )
    return text + (", ..." if len(rows) > shown else "")


def _creates(report: Report, clean: Callable[[Mapping[str, Any]], Mapping[str, Any]]) -> list[str]:
    """Each row a plan creates (or queues) and the body apply sends for it, whole."""
    rows = [clean(row) for row in report.get("rows") or () if sends_of(row) is not None]
    if not rows:
        return ["what each create sends: nothing (no row is created or queued)"]
    lines = [f"what each create sends ({counted(len(rows), 'row')}):"]
    for row in rows:
        note = f": {row_note(row)}" if row_note(row) else ""  # a downlink's says its type
        lines.append(visible(f"{row_title(row)}: {state_of(row)}{note}"))
        lines.append(f"  {visible(sends_text(row))}")
    return lines


def _diff_table(row: Mapping[str, Any], color: bool) -> list[str]:
    """A differing row's fields as a table: field, sheet, platform (then an update's
    field, before, after), values shortened; drawn by rich, without codes unless ``color``."""
    import io
    import shutil

    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    entries = diff_table(row, SHORT)
    if not entries:
        return []
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for name in ("field", "sheet", "platform"):
        table.add_column(name, overflow="fold")
    diff_count = len(row.get("diff") or {})
    for number, entry in enumerate(entries):
        if number == diff_count and diff_count:
            table.add_section()
        # Text, never markup: a cell's "[red]" is shown as written.
        table.add_row(*(Text(visible(part)) for part in entry))
    if not diff_count:  # an update's changes only
        table.columns[1].header, table.columns[2].header = "before", "after"
    width = shutil.get_terminal_size((100, 24)).columns
    console = Console(
        file=io.StringIO(),
        width=max(width - 2, 60),
        color_system="standard" if color else None,
        force_terminal=color,
        no_color=not color,
        highlight=False,
        emoji=False,
        markup=False,
    )
    console.print(table)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return [line.rstrip() for line in text.rstrip("\n").split("\n")]
