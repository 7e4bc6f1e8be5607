"""Where `provisioner validate` spends its memory: RSS step by step on one sheet.

Runs the steps of ``validate_sheet`` and of the CLI's validate command one at a
time, in this process, on the 1,048,575-row xlsx of validate_speed.py (or
``--rows``), and prints after each step the resident memory (RSS), the step's
own peak (VmHWM, reset before the step through /proc/self/clear_refs) and the
growth. The steps are those of the code under test, without editing it:

    open_workbook -> Workbook.table (calamine + cells to text) -> read_records
    -> validate_records -> ValidationReport.to_dict -> render_console

A step's objects that validate_sheet would drop (the workbook once the
records are made) are dropped here at the same point.

    python benchmarks/validate_memory.py [--rows 1048575] [--commit HEAD] [--variant clean]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import validate_speed

REPO = Path(__file__).resolve().parent.parent


def status(field: str) -> int:
    """A /proc/self/status field in MB."""
    with open("/proc/self/status", encoding="ascii") as file:
        for line in file:
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024
    raise KeyError(field)


def reset_peak() -> None:
    """Start a new VmHWM from the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as file:
        file.write("5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=validate_speed.MAX_ROWS)
    parser.add_argument("--variant", choices=sorted(validate_speed.VARIANTS), default="clean")
    parser.add_argument("--commit", help="the code as of this commit (git archive), not the tree")
    args = parser.parse_args()
    code = validate_speed.export(args.commit) if args.commit else REPO
    xlsx, _ = validate_speed.sheet_files(args.rows, args.variant)
    sys.path.insert(0, str(code))

    steps: list[tuple[str, float, int, int]] = []
    last = [time.perf_counter()]

    def checkpoint(name: str) -> None:
        now = time.perf_counter()
        steps.append((name, now - last[0], status("VmRSS"), status("VmHWM")))
        reset_peak()
        last[0] = time.perf_counter()

    reset_peak()
    from provisioner.cli import _secrets
    from provisioner.records import read_records
    from provisioner.reports import render_console
    from provisioner.sheets import open_workbook
    from provisioner.templates import load_template
    from provisioner.validation import validate_records

    template = load_template("default")
    checkpoint("imports, template")
    gc.disable()  # as validate_sheet runs (sheets._no_cyclic_gc)
    workbook = open_workbook(xlsx)
    checkpoint("open_workbook")
    table = workbook.table(workbook.tab_names[0])
    checkpoint("Workbook.table")
    cells = sum(map(len, table.rows))
    stored = len(table.stored)
    del table
    site = read_records(workbook, template)
    checkpoint("read_records")
    del workbook
    checkpoint("workbook dropped")
    report = validate_records(site, template, source=xlsx.name)
    checkpoint("validate_records")
    gc.enable()
    gc.collect()
    checkpoint("gc.collect (validate_sheet's end)")
    data = report.to_dict()
    checkpoint("report.to_dict (CLI)")
    text = render_console(data, limit=20, color=True, **_secrets(report.records))
    checkpoint("render_console (CLI)")

    print(
        f"validate memory, {args.rows:,} rows ({args.variant}), {xlsx.name},"
        f" code: {args.commit or 'working tree'}"
    )
    print(
        f"{cells:,} cells as text, {stored:,} of them in Table.stored (not text in the file);"
        f" {len(site.devices):,} records, {report.totals['invalid']:,} invalid; console {len(text):,} chars"
    )
    print(f"{'step':<36} {'seconds':>8} {'RSS MB':>8} {'step peak MB':>13} {'RSS growth':>11}")
    before = 0
    for name, seconds, rss, peak in steps:
        print(f"{name:<36} {seconds:>8.2f} {rss:>8} {peak:>13} {rss - before:>+11}")
        before = rss


if __name__ == "__main__":
    main()
