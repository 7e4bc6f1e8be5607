"""Where `provisioner validate` spends its memory, and its peaks against the floor's.

Part one runs the CLI's validate path step by step, in this process, on the
1,048,575-row xlsx of validate_speed.py (or ``--rows``, ``--variant``), and prints
after each step the resident memory (RSS), the step's own peak (VmHWM, reset
before the step through /proc/self/clear_refs) and the growth. The steps are those
of the code under test, without editing it:

    choose_template (reads the header: the sheet is parsed and kept)
    -> validate_stream (each row read, checked and dropped; the JSON report's rows
       spilled to a file) -> listed() -> render_console -> the JSON report written

Part two runs, each in a fresh process, the floor of validate_speed.py
(python-calamine holding the sheet, each body built, checked and dropped), the CLI
without a report and the CLI with ``--report x.json``, and prints their peak RSS
and the ratios the issue sets: ours/floor <= 1.25 (Excel's 1,048,575 rows), with
the JSON report / without <= 1.3 (any sheet).

    python benchmarks/validate_memory.py [--rows 1048575] [--variant clean]
                                         [--commit REV] [--no-steps]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
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


def steps(xlsx: Path, code: Path) -> list[tuple[str, float, int, int]]:
    """The CLI's validate path, step by step in this process."""
    sys.path.insert(0, str(code))
    found: list[tuple[str, float, int, int]] = []
    last = [time.perf_counter()]

    def checkpoint(name: str) -> None:
        now = time.perf_counter()
        found.append((name, now - last[0], status("VmRSS"), status("VmHWM")))
        reset_peak()
        last[0] = time.perf_counter()

    reset_peak()
    from provisioner.cli import _secrets
    from provisioner.reports import render_console, write_report
    from provisioner.reports.json_report import RowSpill, StreamedRows
    from provisioner.template_choice import choose_template
    from provisioner.validation import validate_stream

    checkpoint("imports")
    gc.disable()  # as the CLI's validate runs
    choice = choose_template(xlsx)
    checkpoint("choose_template (parse, kept)")
    spill = RowSpill()
    report = validate_stream(xlsx, choice.template, spill)
    checkpoint("validate_stream (+ spill)")
    shown = report.listed()
    checkpoint("listed()")
    secrets = _secrets(report.records)
    render_console(shown, limit=20, color=True, **secrets)
    checkpoint("render_console")
    with tempfile.TemporaryDirectory() as folder:
        rows = StreamedRows(spill, list(report.problem_rows))
        write_report(shown, Path(folder) / "x.json", rows=rows, **secrets)
        checkpoint("JSON report written")
    spill.close()
    print(
        f"{report.count:,} rows, {report.invalid:,} invalid, "
        f"{len(report.problem_rows):,} rows with problems held"
    )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=validate_speed.MAX_ROWS)
    parser.add_argument("--variant", choices=sorted(validate_speed.VARIANTS), default="clean")
    parser.add_argument("--commit", help="the code as of this commit (git archive), not the tree")
    parser.add_argument(
        "--steps",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="part one, the steps in this process (default: on)",
    )
    args = parser.parse_args()
    code = validate_speed.export(args.commit) if args.commit else REPO
    validate_speed.CODE = code
    xlsx, _ = validate_speed.sheet_files(args.rows, args.variant)
    print(
        f"validate memory, {args.rows:,} rows ({args.variant}), {xlsx.name},"
        f" code: {args.commit or 'working tree'}"
    )

    if args.steps:
        found = steps(xlsx, code)
        print(f"{'step':<36} {'seconds':>8} {'RSS MB':>8} {'step peak MB':>13} {'RSS growth':>11}")
        before = 0
        for name, seconds, rss, peak in found:
            print(f"{name:<36} {seconds:>8.2f} {rss:>8} {peak:>13} {rss - before:>+11}")
            before = rss
        print()

    validate_speed.warm()
    floor_s, floor_mb, _ = validate_speed.floor(xlsx)
    ours_s, ours_mb, _ = validate_speed.ours(xlsx)
    json_s, json_mb, _ = validate_speed.ours(xlsx, report=True)
    print(f"{'fresh process':<28} {'seconds':>8} {'peak MB':>8}")
    for name, seconds, mb in (
        ("floor", floor_s, floor_mb),
        ("ours", ours_s, ours_mb),
        ("ours --report x.json", json_s, json_mb),
    ):
        print(f"{name:<28} {seconds:>8.2f} {mb:>8.0f}")
    print()
    print(f"{'ratio':<38} {'value':>6}  target")
    big = args.rows >= validate_speed.MAX_ROWS
    print(f"{'ours peak / floor peak':<38} {ours_mb / floor_mb:>6.2f}  {'<= 1.25' if big else '-'}")
    print(f"{'peak with --report x.json / without':<38} {json_mb / ours_mb:>6.2f}  <= 1.3")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
