"""Validation speed: `provisioner validate` against its floor and a naive loop.

Generates site sheets as a user makes them: an .xlsx whose identifiers (serial,
addr = a 16-hex-digit DevEUI) are text and whose deviceTypeId, lat and lon are
number cells (certEnforcesDtls a TRUE/FALSE cell), text in a shared-strings
table as Excel saves it; and a CSV of the same rows (";", as German Excel
writes it). Two variants each: 2% invalid rows (the usual sheet, "clean") and
50% invalid rows. Mistakes rotate through what installers get wrong: a
deviceTypeId typed as a word, an IMEI copied with a space, a missing serial
(the default template's match key), a missing addr, device type 0, a latitude
without its decimal point. (A DevEUI of the wrong length is no mistake under
the default template: it has no hex_length rule on addr, and the schema takes
any address without spaces.)

Times, each in a fresh child process (wall time of the whole process,
interpreter start and imports included; peak RSS from /usr/bin/time, see
run_child for why not wait4):
- floor: python-calamine (csv module for the CSV) reading the file, a body
  per row built directly, fastjsonschema checking it against
  schemas/deviceInput.json, a row without a serial counted invalid; nothing
  else (no duplicate checks, no problems kept, nothing rendered);
- ours: the real CLI, ``python -m provisioner validate FILE`` (exit 0 or 1,
  not a traceback; its "N invalid" must match the rows the generator spoiled);
- naive: openpyxl read-only row loop + jsonschema ``iter_errors`` per row
  (xlsx only).
Prints ours/floor, naive/ours, 50%-invalid/clean, and the peak RSS with
``--report x.json`` against the peak without; and for a 1,048,575-row xlsx (Excel's
maximum) floor, ours and ours with ``--report x.json``, their times and peaks.

Targets (issues 9 and 26): ours/floor <= 1.5 on xlsx and csv; naive/ours >= 8;
50%-invalid <= 1.5x clean; 1,048,575 rows: ours/floor <= 1.5 in time and <= 1.25 in
peak RSS; any sheet: peak RSS with ``--report x.json`` <= 1.3x the peak without.

    python benchmarks/validate_speed.py [--rows 100000] [--big/--no-big] [--repeat 1]
                                        [--big-repeat 1] [--commit REV]

Repeated measurements run in rounds, each once a round, and the fastest of each counts:
on a noisy machine a slow spell then slows one run of several measurements rather
than every run of one.

``--commit REV`` runs provisioner as of that commit (git archive into
benchmarks/out/code-<sha>/, nothing checked out), e.g. a baseline while the
working tree is being edited. Generated sheets are cached in benchmarks/out/ (gitignored) by size and
variant; the 1,048,575-row xlsx takes about a minute to write the first time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from _typed_xlsx import Cell, write_typed_xlsx

REPO = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "out"
# The source tree whose provisioner/ and schemas/ are run: the working tree, or a
# commit exported with --commit.
CODE = REPO
GENERATOR = 3  # bump when the generated rows change: the cache key includes it
TIME = "/usr/bin/time"  # GNU time: the peak RSS of a fresh process (see run_child)
MAX_ROWS = 1_048_575
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
SERIAL, ADDR, TYPE, LAT = 0, 1, 4, 6


def _word_type(row: list[Cell]) -> None:
    row[TYPE] = "zwei"


def _spaced_imei(row: list[Cell]) -> None:
    # A DevEUI with a label's spaces is read as its 16 digits (one identity per
    # identifier); an IMEI is no hex identifier, so a space in it stays a mistake.
    row[ADDR] = "35265610 " + str(row[ADDR])[-7:]


def _no_serial(row: list[Cell]) -> None:
    row[SERIAL] = None


def _no_addr(row: list[Cell]) -> None:
    row[ADDR] = None


def _type_zero(row: list[Cell]) -> None:
    row[TYPE] = 0


def _lat_without_point(row: list[Cell]) -> None:
    row[LAT] = float(str(row[LAT]).replace(".", ""))  # 53.0123 -> 530123.0


MISTAKES: list[Callable[[list[Cell]], None]] = [
    _word_type,
    _spaced_imei,
    _no_serial,
    _no_addr,
    _type_zero,
    _lat_without_point,
]
VARIANTS = {"clean": 50, "half": 2}  # every n-th row has a mistake: 2% and 50%


def site_rows(count: int, every: int) -> Iterator[list[Cell]]:
    """Rows with the cell types a user's sheet has; every ``every``-th has a mistake."""
    for i in range(count):
        row: list[Cell] = [
            f"SN{i:07d}",
            f"{0x0004A30B00000000 + i:016X}",
            f"Zähler {i}",
            f"Haus {i // 40}, Wohnung {i % 40}, 3.OG",
            1 + i % 6,
            "Site-HH-04,Wasser",
            float(f"53.{i % 9999:04d}"),
            9.99,
            False,
        ]
        if i % every == every // 2:
            MISTAKES[(i // every) % len(MISTAKES)](row)
        yield row


def invalid_count(count: int, every: int) -> int:
    return sum(1 for i in range(count) if i % every == every // 2)


def csv_text(value: Cell) -> str:
    """The text Excel writes to a CSV for a cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def sheet_files(count: int, variant: str) -> tuple[Path, Path]:
    """The cached .xlsx and .csv of ``count`` rows of ``variant``, written when missing."""
    OUT.mkdir(exist_ok=True)
    stem = OUT / f"validate-g{GENERATOR}-{count}-{variant}"
    xlsx, csv_path = stem.with_suffix(".xlsx"), stem.with_suffix(".csv")
    every = VARIANTS[variant]
    if not xlsx.exists():
        started = time.perf_counter()
        partial = xlsx.with_suffix(".xlsx.part")
        write_typed_xlsx(partial, "Devices", HEADER, site_rows(count, every), count)
        partial.replace(xlsx)
        print(f"  (wrote {xlsx.name} in {time.perf_counter() - started:.0f} s)", flush=True)
    if not csv_path.exists():
        partial = csv_path.with_suffix(".csv.part")
        with partial.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, delimiter=";")
            writer.writerow(HEADER)
            writer.writerows([csv_text(v) for v in row] for row in site_rows(count, every))
        partial.replace(csv_path)
    return xlsx, csv_path


FLOOR = r"""
import json, sys
import fastjsonschema

path, schema_path, kind = sys.argv[1:4]
schema = json.load(open(schema_path, encoding="utf-8"))
schema["$schema"] = "http://json-schema.org/draft-07/schema#"
check = fastjsonschema.compile(schema)
Failed = fastjsonschema.JsonSchemaException
if kind == "xlsx":
    from python_calamine import CalamineWorkbook
    rows = CalamineWorkbook.from_path(path).get_sheet_by_name("Devices").iter_rows()
else:
    import csv
    rows = csv.reader(open(path, encoding="utf-8", newline=""), delimiter=";")
header = next(rows)
S, A, N, D, T, G, LA, LO, C = (header.index(name) for name in (
    "serial", "addr", "name", "description", "deviceTypeId", "tags", "lat", "lon",
    "certEnforcesDtls"))
invalid = 0
for row in rows:
    body = {}
    serial = row[S]
    if serial:
        body["serial"] = serial
    for name, j in (("addr", A), ("name", N), ("description", D)):
        value = row[j]
        if value:
            body[name] = value
    value = row[T]
    if value == "":
        value = 1
    elif value.__class__ is float and value.is_integer():
        value = int(value)
    elif value.__class__ is str:
        try:
            value = int(value)
        except ValueError:
            pass
    body["deviceTypeId"] = value
    tags = [t for t in (t.strip() for t in row[G].split(",")) if t]
    if tags:
        body["tags"] = tags
    lat, lon = row[LA], row[LO]
    if lat != "" and lon != "":
        body["location"] = {"lat": float(lat), "lon": float(lon)}
    value = row[C]
    if value != "":
        body["certEnforcesDtls"] = value if value.__class__ is bool else value.lower() == "true"
    try:
        check(body)
    except Failed:
        invalid += 1
        continue
    if not serial:
        invalid += 1
print(invalid)
"""

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
            value = value if isinstance(value, bool) else str(value).lower() == "true"
        else:
            value = str(value)
        body[name] = value
    if list(validator.iter_errors(body)) or "serial" not in body:
        invalid += 1
print(invalid)
"""


Run = tuple[float, float, int]  # seconds, peak MB, invalid rows


def run_child(argv: list[str], accept: tuple[int, ...] = (0,)) -> tuple[float, float, str, str]:
    """(seconds, peak MB, stdout, stderr) of one fresh child process.

    The peak RSS comes from /usr/bin/time, not from wait4 on our own child: Linux
    carries the RSS of the process that forked into the child's ru_maxrss across
    exec, so a child of this (large, after writing a sheet) process would be
    charged with this process's memory. /usr/bin/time is a small process.
    """
    # An installed package has its bytecode compiled (pip compiles it): the children keep
    # theirs in benchmarks/out/pycache rather than compile every module on every run
    # (PYTHONDONTWRITEBYTECODE, where it is set, would have them do that). warm() runs
    # the code once first.
    env = {**os.environ, "PYTHONPATH": str(CODE), "PYTHONPYCACHEPREFIX": str(OUT / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.NamedTemporaryFile("r") as peak,
    ):
        started = time.perf_counter()
        process = subprocess.run(
            [TIME, "-f", "%M", "-o", peak.name, *argv], stdout=out, stderr=err, env=env, cwd=CODE
        )
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        text, errors = out.read(), err.read()
        # A traceback exits 1 too, which validate uses for "some rows invalid".
        if process.returncode not in accept or "Traceback (most recent call last)" in errors:
            raise SystemExit(
                f"a benchmark child failed with exit {process.returncode}: {' '.join(argv)}\n"
                f"{errors[-3000:]}"
            )
        kilobytes = int(peak.read().strip().splitlines()[-1])
    return seconds, kilobytes / 1024, text, errors


def warm() -> None:
    """Run the code under test once, untimed: its bytecode is compiled then, as an
    installed package's is."""
    run_child(
        [
            sys.executable,
            "-m",
            "provisioner",
            "validate",
            str(CODE / "sample_sheets" / "gateways-de.csv"),
        ],
        accept=(0, 1),
    )


def floor(path: Path) -> Run:
    kind = "xlsx" if path.suffix == ".xlsx" else "csv"
    schema = str(CODE / "schemas" / "deviceInput.json")
    seconds, mb, out, _ = run_child([sys.executable, "-c", FLOOR, str(path), schema, kind])
    return seconds, mb, int(out.strip())


def naive(path: Path) -> Run:
    schema = str(CODE / "schemas" / "deviceInput.json")
    seconds, mb, out, _ = run_child([sys.executable, "-c", NAIVE, str(path), schema])
    return seconds, mb, int(out.strip())


def ours(path: Path, report: bool = False) -> Run:
    """The real CLI, exit 0 or 1; the invalid count from its summary line. ``report``:
    with ``--report x.json`` (a temporary file)."""
    argv = [sys.executable, "-m", "provisioner", "validate", str(path)]
    with tempfile.TemporaryDirectory() as folder:
        if report:
            argv += ["--report", str(Path(folder) / "x.json")]
        seconds, mb, out, errors = run_child(argv, accept=(0, 1))
    # "100000 rows: 98000 valid, 2000 invalid"
    found = re.search(r"(\d[\d,.]*) (?:rows? )?invalid", out)
    if found is None:
        raise SystemExit(
            f"no count of invalid rows in the output of {' '.join(argv)}:\n{out[:2000]}{errors[-2000:]}"
        )
    return seconds, mb, int(re.sub(r"\D", "", found.group(1)))


def export(commit: str) -> Path:
    """``commit``'s provisioner/, schemas/ and templates/ in benchmarks/out/ (git archive).

    Other work in the working tree is not touched: nothing is checked out.
    """
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{commit}^{{commit}}"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    target = OUT / f"code-{sha[:12]}"
    if not target.exists():
        OUT.mkdir(exist_ok=True)
        partial = OUT / f"code-{sha[:12]}.part"
        partial.mkdir(exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", sha, "provisioner", "schemas", "templates", "sample_sheets"],
            cwd=REPO,
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(partial)], input=archive, check=True)
        partial.rename(target)
    return target


def in_rounds(plan: dict[str, tuple[Callable[[Path], Run], Path]], repeat: int) -> dict[str, Run]:
    """Each measurement of ``plan`` ``repeat`` times, the fastest counting; run in rounds
    (each measurement once a round), so that a slow spell of the machine slows one run
    of several measurements, not every run of one: the ratios are taken between runs
    spread over the same minutes."""
    runs: dict[str, list[Run]] = {name: [] for name in plan}
    for _ in range(repeat):
        for name, (run, path) in plan.items():
            runs[name].append(run(path))
    return {name: min(found, key=lambda r: r[0]) for name, found in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--big",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"also run floor and ours on a {MAX_ROWS:,}-row xlsx (default: on)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per measurement at --rows; the fastest counts"
    )
    parser.add_argument(
        "--big-repeat",
        type=int,
        default=1,
        help=f"runs per measurement at {MAX_ROWS:,} rows (about 90 s a round); the fastest counts",
    )
    parser.add_argument(
        "--commit",
        help="run provisioner as of this commit (exported with git archive), not the working tree",
    )
    args = parser.parse_args()
    n = args.rows
    global CODE
    if args.commit:
        CODE = export(args.commit)

    code = f"commit {args.commit} ({CODE.name})" if args.commit else "the working tree"
    print(f"validate speed, {n:,} rows, {code}, same machine, same run ({os.cpu_count()} CPUs)")
    files = {variant: sheet_files(n, variant) for variant in VARIANTS}
    warm()
    expected = {variant: invalid_count(n, every) for variant, every in VARIANTS.items()}

    plan: dict[str, tuple[Callable[[Path], Run], Path]] = {}
    for variant, (xlsx, csv_path) in files.items():
        for kind, path in (("xlsx", xlsx), ("csv", csv_path)):
            plan[f"floor {kind} {variant}"] = (floor, path)
            plan[f"ours {kind} {variant}"] = (ours, path)
    results = in_rounds(plan, args.repeat)
    results["naive xlsx clean"] = naive(files["clean"][0])
    with_json = {variant: ours(xlsx, report=True) for variant, (xlsx, _) in files.items()}

    print(f"{'run':<22} {'invalid':>8} {'seconds':>8} {'rows/s':>9} {'peak MB':>8}")
    for name, (seconds, mb, invalid) in results.items():
        variant = name.rsplit(" ", 1)[1]
        mark = "" if invalid == expected[variant] else f"  (! expected {expected[variant]})"
        print(f"{name:<22} {invalid:>8} {seconds:>8.2f} {n / seconds:>9.0f} {mb:>8.0f}{mark}")

    def t(name: str) -> float:
        return results[name][0]

    print()
    print(f"{'ratio':<38} {'value':>6}  target")
    ratios = {
        "ours/floor xlsx (2% invalid)": (t("ours xlsx clean") / t("floor xlsx clean"), "<= 1.5"),
        "ours/floor csv  (2% invalid)": (t("ours csv clean") / t("floor csv clean"), "<= 1.5"),
        "ours/floor xlsx (50% invalid)": (t("ours xlsx half") / t("floor xlsx half"), "-"),
        "ours/floor csv  (50% invalid)": (t("ours csv half") / t("floor csv half"), "-"),
        "naive/ours xlsx (2% invalid)": (t("naive xlsx clean") / t("ours xlsx clean"), ">= 8"),
        "ours 50%-invalid / ours clean, xlsx": (
            t("ours xlsx half") / t("ours xlsx clean"),
            "<= 1.5",
        ),
        "ours 50%-invalid / ours clean, csv": (t("ours csv half") / t("ours csv clean"), "<= 1.5"),
    }
    for variant, (_, json_mb, _) in with_json.items():
        name = f"peak --report x.json / without, {variant}"
        ratios[name] = (json_mb / results[f"ours xlsx {variant}"][1], "<= 1.3")
    for name, (value, target) in ratios.items():
        print(f"{name:<38} {value:>6.2f}  {target}")
    summary = {"rows": n, **{k: round(v[0], 3) for k, v in results.items()}}
    summary.update({k: round(v, 2) for k, (v, _) in ratios.items()})

    if args.big:
        print()
        big_xlsx, _ = sheet_files(MAX_ROWS, "clean")
        big_expected = invalid_count(MAX_ROWS, VARIANTS["clean"])
        big = in_rounds(
            {
                "floor": (floor, big_xlsx),
                "ours": (ours, big_xlsx),
                "ours --report x.json": (lambda path: ours(path, report=True), big_xlsx),
            },
            args.big_repeat,
        )
        print(f"{MAX_ROWS:,} rows, xlsx, 2% invalid ({big_expected} expected)")
        print(f"{'run':<22} {'invalid':>8} {'seconds':>8} {'rows/s':>9} {'peak MB':>8}")
        for name, (seconds, mb, invalid) in big.items():
            mark = "" if invalid == big_expected else "  (!)"
            print(
                f"{name:<22} {invalid:>8} {seconds:>8.2f} {MAX_ROWS / seconds:>9.0f} {mb:>8.0f}{mark}"
            )
        (floor_s, floor_mb, _), (ours_s, ours_mb, _) = big["floor"], big["ours"]
        json_s, json_mb, _ = big["ours --report x.json"]
        big_ratios = {
            "ours/floor time": (ours_s / floor_s, "<= 1.5"),
            "ours/floor peak RSS": (ours_mb / floor_mb, "<= 1.25"),
            "peak --report x.json / without": (json_mb / ours_mb, "<= 1.3"),
        }
        for name, (value, target) in big_ratios.items():
            print(f"{name:<38} {value:>6.2f}  {target}")
        summary.update(
            big_floor_s=round(floor_s, 2),
            big_ours_s=round(ours_s, 2),
            big_json_s=round(json_s, 2),
            big_floor_mb=round(floor_mb),
            big_ours_mb=round(ours_mb),
            big_json_mb=round(json_mb),
            **{f"big {k}": round(v, 2) for k, (v, _) in big_ratios.items()},
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
