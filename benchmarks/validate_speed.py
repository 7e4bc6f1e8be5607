"""Validation speed: `provisioner validate` against a naive baseline, in one run.

Generates a site sheet of N rows as .xlsx and .csv in a scratch folder, then
times, each in a fresh child process (so peak memory is per run):
- naive: openpyxl read-only row loop + jsonschema ``iter_errors`` per row;
- provisioner: ``validate_sheet`` (calamine reader, compiled fast path);
and prints rows/s, the ratio against the naive run, and peak memory.
Target: at least 8x the naive baseline on the xlsx, peak memory under 1 GB.

    python benchmarks/validate_speed.py [--rows 100000] [--max-rows]

``--max-rows`` also validates a 1,048,575-row xlsx (Excel's maximum) and reports
its time and memory (the naive baseline is not run for it).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _xlsx import write_xlsx

REPO = Path(__file__).resolve().parent.parent
HEADER = [
    "serial",
    "addr",
    "name",
    "description",
    "deviceTypeId",
    "tags",
    "lat",
    "lon",
    "certEnforcesDtls",
]


def site_rows(count: int) -> list[list[str]]:
    """Realistic rows; every 50th has a mistake so both paths see invalid rows."""
    rows = []
    for i in range(count):
        addr = f"{0x0004A30B00000000 + i:016X}"
        type_id = "zwei" if i % 50 == 7 else str(1 + i % 6)
        rows.append(
            [
                f"SN{i:07d}",
                addr,
                f"Zähler {i}",
                f"Haus {i // 40}, Wohnung {i % 40}, 3.OG",
                type_id,
                "Site-HH-04,Wasser",
                f"53.{i % 9999:04d}",
                "9.99",
                "false",
            ]
        )
    return rows


NAIVE = r"""
import json, sys, openpyxl, jsonschema
schema = json.load(open(sys.argv[2], encoding="utf-8"))
validator = jsonschema.Draft202012Validator(schema)
book = openpyxl.load_workbook(sys.argv[1], read_only=True, data_only=True)
sheet = book.worksheets[0]
rows = sheet.iter_rows(values_only=True)
header = [str(h) for h in next(rows)]
invalid = 0
for row in rows:
    body = {}
    for name, value in zip(header, row):
        if value is None or value == "":
            continue
        if name == "deviceTypeId":
            try:
                value = int(value)
            except ValueError:
                pass
        elif name == "tags":
            value = [t.strip() for t in str(value).split(",")]
        elif name in ("lat", "lon"):
            body.setdefault("location", {})[name] = float(value)
            continue
        elif name == "certEnforcesDtls":
            value = str(value).lower() == "true"
        else:
            value = str(value)
        body[name] = value
    if list(validator.iter_errors(body)):
        invalid += 1
print(invalid)
"""

OURS = r"""
import sys
from provisioner.templates import load_template
from provisioner.validation import validate_sheet
report = validate_sheet(sys.argv[1], load_template("default"))
print(report.totals["invalid"])
"""


def timed(code: str, *args: str) -> tuple[float, float, str]:
    """(seconds, peak MB, stdout) of one fresh child process."""
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, env=env
    )
    out = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"a benchmark child failed with status {status}")
    return seconds, usage.ru_maxrss / 1024, out.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--max-rows",
        action="store_true",
        help="also validate a 1,048,575-row xlsx (takes a few minutes)",
    )
    args = parser.parse_args()
    schema = REPO / "schemas" / "deviceInput.json"

    with tempfile.TemporaryDirectory() as folder:
        rows = site_rows(args.rows)
        xlsx = Path(folder) / "site.xlsx"
        write_xlsx(xlsx, "Devices", HEADER, rows)
        csv_path = Path(folder) / "site.csv"
        with csv_path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, delimiter=";")
            writer.writerow(HEADER)
            writer.writerows(rows)
        del rows

        naive_s, naive_mb, naive_out = timed(NAIVE, str(xlsx), str(schema))
        ours_s, ours_mb, ours_out = timed(OURS, str(xlsx))
        csv_s, csv_mb, csv_out = timed(OURS, str(csv_path))
        if not naive_out == ours_out == csv_out:
            raise SystemExit(f"the runs disagree on invalid rows: {naive_out} {ours_out} {csv_out}")

        n = args.rows
        print(f"validate speed, {n} rows ({naive_out} invalid), same machine, same run")
        print(f"{'run':<26} {'seconds':>8} {'rows/s':>9} {'x naive':>8} {'peak MB':>8}")
        for name, seconds, mb in (
            ("naive openpyxl+jsonschema", naive_s, naive_mb),
            ("provisioner xlsx", ours_s, ours_mb),
            ("provisioner csv", csv_s, csv_mb),
        ):
            print(
                f"{name:<26} {seconds:>8.2f} {n / seconds:>9.0f} {naive_s / seconds:>8.1f}"
                f" {mb:>8.0f}"
            )
        result = {
            "rows": n,
            "naive_s": naive_s,
            "xlsx_s": ours_s,
            "csv_s": csv_s,
            "xlsx_ratio": naive_s / ours_s,
            "xlsx_peak_mb": ours_mb,
        }

        if args.max_rows:
            big = Path(folder) / "max.xlsx"
            write_xlsx(big, "Devices", HEADER, site_rows(1_048_575))
            big_s, big_mb, big_out = timed(OURS, str(big))
            print(
                f"{'provisioner 1,048,575 rows':<26} {big_s:>8.2f} {1_048_575 / big_s:>9.0f}"
                f" {'':>8} {big_mb:>8.0f}   ({big_out} invalid)"
            )
            result.update(max_rows_s=big_s, max_rows_peak_mb=big_mb)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
