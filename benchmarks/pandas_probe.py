"""Does pandas earn its place in the columnar pass? Plain Python vs pandas, one run.

The columnar pass is what records.py ``_read_devices`` does a column at a time
before it builds the bodies, plus the cross-row rule of validation.py
``_check_duplicates``:

- every cell stripped;
- identifiers (serial, addr): the number-like ones looked at for E+ notation
  or a ".0" (Excel damage);
- tags: each distinct cell split once, the split shared by the rows;
- deviceTypeId, lat, lon, certEnforcesDtls: each distinct text converted
  once, the rows mapped through; texts that do not convert mark their rows;
- an empty match key (serial) marks its row;
- half a location (lat without lon or the reverse) marks its row;
- duplicate serials and duplicate addrs across rows, grouped by value.

Both versions give the same results in the form the next step needs (a list
of values per column, the set of rows to read one by one, the duplicate
groups as row indices); the probe checks they agree. The pandas version is
timed from ``import pandas`` on: import, DataFrame from the columns, the pass
(``str.strip``, ``unique``/``map``, ``duplicated``), and ``tolist()`` back
to Python values for the bodies. The rows are the 100,000-row sheet's as
records.py gets them: provisioner.sheets' Table.rows (lists of text), or the
CSV's rows when provisioner.sheets cannot be imported.

    pip install pandas  # provisioner itself does not depend on it
    python benchmarks/pandas_probe.py [--rows 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import operator
import re
import sys
import time
from collections.abc import Callable
from itertools import compress
from pathlib import Path
from typing import Any

import validate_speed

REPO = Path(__file__).resolve().parent.parent

# As in records.py (HEAD): the same regexes and conversions.
SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+")
DECIMAL_ZERO = re.compile(r"\d+[.,]0+")
NUMBER_LIKE = re.compile(r"[+-]?[\d.,]+(?:[eE][+-]?\d+)?")
INTEGER = re.compile(r"[+-]?\d+")
TRUE_WORDS = frozenset({"true", "wahr", "yes", "ja", "y", "j", "1", "x"})
FALSE_WORDS = frozenset({"false", "falsch", "no", "nein", "n", "0"})
IDENTIFIERS = ("serial", "addr")
MATCH_KEY = "serial"
SEPARATOR = ","


def damaged(text: str) -> bool:
    return bool(SCIENTIFIC.fullmatch(text) or DECIMAL_ZERO.fullmatch(text))


def split(text: str) -> list[str]:
    items: list[str] = []
    for part in text.split(SEPARATOR):
        part = part.strip()
        if part and part not in items:
            items.append(part)
    return items


def to_int(text: str) -> int | None:
    return int(text) if INTEGER.fullmatch(text) else None


def to_float(text: str) -> float | None:
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return None


def to_bool(text: str) -> bool | None:
    word = text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


PARSERS: dict[str, Callable[[str], Any]] = {
    "deviceTypeId": to_int,
    "lat": to_float,
    "lon": to_float,
    "certEnforcesDtls": to_bool,
}

Result = tuple[dict[str, list[Any]], set[int], dict[str, dict[str, list[int]]]]


def plain_pass(header: list[str], rows: list[list[str]]) -> Result:
    """The pass as records.py and validation.py do it: lists, sets and dicts."""
    count = len(rows)
    slow: set[int] = set()
    values: dict[str, list[Any]] = {}
    for j, name in enumerate(header):
        texts = list(map(str.strip, map(operator.itemgetter(j), rows)))
        if name in IDENTIFIERS:
            slow.update(
                i
                for i in compress(range(count), map(NUMBER_LIKE.fullmatch, texts))
                if damaged(texts[i])
            )
        if name == "tags":
            merged = {text: split(text) for text in set(texts)}
            values[name] = [merged[text] for text in texts]
            continue
        parse = PARSERS.get(name)
        if parse is None:
            values[name] = [text or None for text in texts]
        else:
            parsed = {text: parse(text) if text else None for text in set(texts)}
            values[name] = list(map(parsed.__getitem__, texts))
            failed = {text for text, value in parsed.items() if text and value is None}
            if failed:
                slow.update(compress(range(count), map(failed.__contains__, texts)))
        if name == MATCH_KEY:
            slow.update(compress(range(count), map(operator.not_, texts)))
    slow.update(
        i
        for i, (a, b) in enumerate(zip(values["lat"], values["lon"], strict=True))
        if (a is None) != (b is None)
    )
    duplicates: dict[str, dict[str, list[int]]] = {}
    for name in (MATCH_KEY, "addr"):
        first: dict[str, int] = {}
        groups: dict[str, list[int]] = {}
        for i, value in enumerate(values[name]):
            if value:
                seen = first.setdefault(value, i)
                if seen != i:
                    groups.setdefault(value, [seen]).append(i)
        duplicates[name] = groups
    return values, slow, duplicates


def plain_duplicates(columns: dict[str, list[Any]]) -> dict[str, dict[str, list[int]]]:
    """validation.py's _check_duplicates alone: first-seen dict, groups of repeats."""
    duplicates: dict[str, dict[str, list[int]]] = {}
    for name, values in columns.items():
        first: dict[str, int] = {}
        groups: dict[str, list[int]] = {}
        for i, value in enumerate(values):
            if value:
                seen = first.setdefault(value, i)
                if seen != i:
                    groups.setdefault(value, [seen]).append(i)
        duplicates[name] = groups
    return duplicates


def pandas_duplicates(pd: Any, columns: dict[str, list[Any]]) -> dict[str, dict[str, list[int]]]:
    """The same with a Series per column: duplicated(keep=False), then groupby."""
    duplicates: dict[str, dict[str, list[int]]] = {}
    for name, values in columns.items():
        series = pd.Series(values, dtype=object)
        given = series[series.notna() & series.ne("")]
        repeated = given[given.duplicated(keep=False)]
        duplicates[name] = {
            value: index.tolist()
            for value, index in repeated.groupby(repeated, sort=False).groups.items()
        }
    return duplicates


def pandas_frame(pd: Any, header: list[str], rows: list[list[str]]) -> Any:
    """The DataFrame from the columns (text, one column per header)."""
    return pd.DataFrame({name: [row[j] for row in rows] for j, name in enumerate(header)})


def pandas_pass(pd: Any, frame: Any) -> Result:
    """The same pass on a DataFrame: vectorised strip/match, unique()+map, duplicated()."""
    values: dict[str, list[Any]] = {}
    slow_mask = None
    stripped = {name: frame[name].str.strip() for name in frame.columns}
    for name, texts in stripped.items():
        marks = []
        if name in IDENTIFIERS:
            numberish = texts.str.fullmatch(NUMBER_LIKE.pattern)
            if numberish.any():
                candidates = texts[numberish]
                hit = candidates.str.fullmatch(SCIENTIFIC.pattern) | candidates.str.fullmatch(
                    DECIMAL_ZERO.pattern
                )
                marks.append(hit.reindex(texts.index, fill_value=False))
        if name == "tags":
            merged = {text: split(text) for text in texts.unique()}
            values[name] = texts.map(merged).tolist()
            continue
        parse = PARSERS.get(name)
        empty = texts.eq("")
        if parse is None:
            values[name] = texts.astype(object).where(~empty, None).tolist()
        else:
            parsed = {text: parse(text) if text else None for text in texts.unique()}
            mapped = texts.map(parsed)
            values[name] = mapped.astype(object).where(mapped.notna(), None).tolist()
            failed = [text for text, value in parsed.items() if text and value is None]
            if failed:
                marks.append(texts.isin(failed))
        if name == MATCH_KEY:
            marks.append(empty)
        for mark in marks:
            slow_mask = mark if slow_mask is None else slow_mask | mark
    half = stripped["lat"].eq("") != stripped["lon"].eq("")
    slow_mask = half if slow_mask is None else slow_mask | half
    slow = set(slow_mask[slow_mask].index.tolist())
    duplicates: dict[str, dict[str, list[int]]] = {}
    for name in (MATCH_KEY, "addr"):
        texts = stripped[name]
        given = texts[texts.ne("")]
        repeated = given[given.duplicated(keep=False)]
        duplicates[name] = {
            value: index.tolist()
            for value, index in repeated.groupby(repeated, sort=False).groups.items()
        }
    return values, slow, duplicates


def sheet_rows(rows: int, code: Path) -> tuple[list[str], list[list[str]], str]:
    xlsx, csv_path = validate_speed.sheet_files(rows, "clean")
    try:
        sys.path.insert(0, str(code))
        from provisioner.sheets import open_workbook

        table = open_workbook(xlsx).table("Devices")
        return list(table.headers), table.rows, f"provisioner.sheets, {xlsx.name}"
    except Exception as exc:  # the reader may be mid-change: the CSV's text is the same
        import csv

        print(f"(provisioner.sheets not usable: {exc!r}; reading the CSV)")
        with csv_path.open(encoding="utf-8", newline="") as file:
            header, *data = list(csv.reader(file, delimiter=";"))
        return header, data, f"csv module, {csv_path.name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--commit", help="read the sheet with provisioner.sheets as of this commit (git archive)"
    )
    args = parser.parse_args()
    if "pandas" in sys.modules or "numpy" in sys.modules:
        raise SystemExit("pandas or numpy is imported already: the import time would be wrong")
    code = validate_speed.export(args.commit) if args.commit else REPO
    header, rows, source = sheet_rows(args.rows, code)
    gc.disable()  # as records.py and validation.py run (sheets._no_cyclic_gc)
    n = len(rows)

    # First the cold pandas run: import, DataFrame, pass, as a validate run would pay it.
    started = time.perf_counter()
    try:
        import pandas as pd
    except ImportError:
        raise SystemExit(
            "pandas is not installed (provisioner does without it): "
            "pip install pandas to run this probe"
        ) from None

    import_s = time.perf_counter() - started
    started = time.perf_counter()
    frame = pandas_frame(pd, header, rows)
    frame_s = time.perf_counter() - started
    started = time.perf_counter()
    pandas_result = pandas_pass(pd, frame)
    pass_s = time.perf_counter() - started
    pandas_cold = import_s + frame_s + pass_s

    started = time.perf_counter()
    plain_result = plain_pass(header, rows)
    plain_cold = time.perf_counter() - started
    if plain_result != pandas_result:
        for name, a, b in zip(
            ("values", "slow rows", "duplicates"), plain_result, pandas_result, strict=True
        ):
            if a != b:
                raise SystemExit(f"the two passes disagree on {name}")

    def fastest(run: Callable[[], object]) -> float:
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        return min(times)

    plain_s = fastest(lambda: plain_pass(header, rows))
    warm_frame_s = fastest(lambda: pandas_frame(pd, header, rows))
    warm_pass_s = fastest(lambda: pandas_pass(pd, frame))
    # The cross-row rule alone, where a DataFrame would fit best: duplicate serials and
    # addrs, from the columns' values (with some repeats, so that there are groups).
    keys = {name: list(plain_result[0][name]) for name in (MATCH_KEY, "addr")}
    for values in keys.values():
        values[1::1000] = values[0::1000][: len(values[1::1000])]
    if plain_duplicates(keys) != pandas_duplicates(pd, keys):
        raise SystemExit("the two duplicate checks disagree")
    plain_dup_s = fastest(lambda: plain_duplicates(keys))
    pandas_dup_s = fastest(lambda: pandas_duplicates(pd, keys))

    print(f"pandas probe: the columnar pass on {n:,} rows x {len(header)} columns ({source})")
    print(
        f"pandas {pd.__version__}, numpy {sys.modules['numpy'].__version__}, string dtype {frame['serial'].dtype}"
    )
    print(f"slow rows {len(plain_result[1])}, duplicate serials {len(plain_result[2]['serial'])}")
    print()
    print(f"{'':<42} {'seconds':>8}")
    print(f"{'import pandas':<42} {import_s:>8.3f}")
    print(f"{'DataFrame from the columns (first)':<42} {frame_s:>8.3f}")
    print(f"{'pandas pass (first)':<42} {pass_s:>8.3f}")
    print(f"{'pandas, all of it, as a run pays it':<42} {pandas_cold:>8.3f}")
    print(f"{'plain Python pass (first)':<42} {plain_cold:>8.3f}")
    print()
    print(f"warm, fastest of {args.repeat}:")
    print(f"{'DataFrame from the columns':<42} {warm_frame_s:>8.3f}")
    print(f"{'pandas pass':<42} {warm_pass_s:>8.3f}")
    print(f"{'plain Python pass':<42} {plain_s:>8.3f}")
    print(f"{'duplicates alone (1 in 1000 twice): plain':<42} {plain_dup_s:>8.3f}")
    print(f"{'duplicates alone: pandas duplicated()':<42} {pandas_dup_s:>8.3f}")
    print()
    print(f"{'pandas (import+frame+pass) / plain, cold':<42} {pandas_cold / plain_cold:>8.2f}")
    print(
        f"{'pandas (frame+pass) / plain, warm':<42} {(warm_frame_s + warm_pass_s) / plain_s:>8.2f}"
    )
    print(f"{'pandas pass alone / plain, warm':<42} {warm_pass_s / plain_s:>8.2f}")
    print(f"{'duplicates: pandas / plain, warm':<42} {pandas_dup_s / plain_dup_s:>8.2f}")
    verdict = (
        "pandas earns its place" if pandas_cold < plain_cold else "pandas does not earn its place"
    )
    print(f"verdict: {verdict} (a validate run pays the cold figure)")


if __name__ == "__main__":
    main()
