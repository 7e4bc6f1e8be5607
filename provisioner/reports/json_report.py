"""The JSON report: the result's ``to_dict()``, for scripts and for ``apply --plan``.

The words that are the same for every problem of a kind, its title and its fix, are
said once, in ``kinds`` (code -> title, severity, fix), not in each problem: a
problem keeps a ``fix`` of its own only where it differs from its kind's. The keys
of the report are indented, and each row is one line::

    {
      "command": "validate",
      ...
      "totals": {"valid": 98000, "invalid": 2000},
      "problems": [...],
      "kinds": {"schema": {"title": "...", "severity": "error", "fix": "..."}},
      "rows": [
        {"sheet": "Devices", "row": 2, "kind": "device", "key": "SN1", ...},
        ...
      ]
    }

A streamed validation does not hold its rows: ``RowSpill`` keeps each row as its
line in a temporary file as it is checked, and the report is written from those
lines with the rows that have problems (held, and finished only when every row has
been read) in their places.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, Any, NamedTuple

from provisioner.problems import CATALOGUE
from provisioner.reports.base import Context, Report, scrub_all
from provisioner.results import Row


def render(report: Report, context: Context) -> bytes:
    lines: list[str] = []
    write(lines.append, report)
    return "".join(lines).encode("utf-8")


def write(
    out: Callable[[str], object],
    report: Report,
    rows: Iterable[Mapping[str, Any] | str] | None = None,
    pattern: re.Pattern[str] | None = None,
) -> None:
    """Write the report through ``out(text)``; ``rows``, when given, instead of the
    report's: each a row's dict or its line of JSON as ``RowSpill`` wrote it. A line
    holding one of the secrets ``pattern`` finds is scrubbed as a row's dict."""
    kinds = _kinds(report)
    head: dict[str, Any] = {}
    for key, value in report.items():
        if key == "rows":
            continue
        head[key] = [_lean(p, kinds) for p in value] if key == "problems" else value
    head["kinds"] = kinds
    head["rows"] = _ROWS
    before, after = json.dumps(head, ensure_ascii=False, indent=2).split(json.dumps(_ROWS))
    out(before)
    separator = "[\n    "
    for row in report.get("rows") or () if rows is None else rows:
        if isinstance(row, str):
            if pattern is None or pattern.search(row) is None:
                out(separator + row)
                separator = ",\n    "
                continue
            row = scrub_all(json.loads(row), pattern)
        out(separator + json.dumps(_lean_row(row, kinds), ensure_ascii=False))
        separator = ",\n    "
    out("[]" if separator.startswith("[") else "\n  ]")
    out(after + "\n")


# Where the rows go in the report's text.
_ROWS = "\0rows\0"


def _kinds(report: Report) -> dict[str, dict[str, Any]]:
    """The kinds of the report's problems, each with the fix of its first problem."""
    kinds: dict[str, dict[str, Any]] = {}
    problems: list[Any] = list(report.get("problems") or ())
    for row in report.get("rows") or ():
        if isinstance(row, Mapping):
            problems += [*(row.get("errors") or ()), *(row.get("warnings") or ())]
    for problem in problems:
        if not isinstance(problem, Mapping) or "fix" not in problem:
            continue
        code = problem.get("code")
        if isinstance(code, str) and code not in kinds:
            known = CATALOGUE.get(code)
            kinds[code] = {
                **({"title": known.title} if known is not None else {}),
                "severity": problem.get("severity"),
                "fix": problem["fix"],
            }
    return kinds


def _lean(problem: Any, kinds: Mapping[str, Mapping[str, Any]]) -> Any:
    """The problem without the fix its kind says."""
    if not isinstance(problem, Mapping) or "fix" not in problem:
        return problem
    kind = kinds.get(problem.get("code"))  # type: ignore[arg-type]
    if kind is None or kind["fix"] != problem["fix"]:
        return problem
    return {key: value for key, value in problem.items() if key != "fix"}


def _lean_row(row: Mapping[str, Any], kinds: Mapping[str, Mapping[str, Any]]) -> Any:
    if not row.get("errors") and not row.get("warnings"):
        return row
    return {
        key: [_lean(p, kinds) for p in value] if key in ("errors", "warnings") else value
        for key, value in row.items()
    }


def expanded(report: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON report as read back (``json.load``) with each problem's fix in it again
    and ``kinds`` gone: the result's ``to_dict()``."""
    kinds: Mapping[str, Any] = report.get("kinds") or {}

    def whole(problem: Any) -> Any:
        if not isinstance(problem, Mapping) or "fix" in problem:
            return problem
        kind = kinds.get(problem.get("code"))  # type: ignore[arg-type]
        return {**problem, "fix": kind["fix"]} if isinstance(kind, Mapping) else problem

    data = {key: value for key, value in report.items() if key != "kinds"}
    if isinstance(data.get("problems"), list):
        data["problems"] = [whole(p) for p in data["problems"]]
    if isinstance(data.get("rows"), list):
        data["rows"] = [
            {
                key: [whole(p) for p in value]
                if key in ("errors", "warnings") and isinstance(value, list)
                else value
                for key, value in row.items()
            }
            if isinstance(row, Mapping)
            else row
            for row in data["rows"]
        ]
    return data


class RowSpill:
    """Every row of a report as its line of JSON, in a temporary file, in the order
    written: a validation writes each row as it is checked (``validation.RowSink``),
    holding none. ``rows`` gives them back for ``write``."""

    def __init__(self) -> None:
        self._file: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n")
        self.count = 0
        # A row without problems is its row number and key in the line of the rows of
        # its tab and state: (type, tab, kind, state, message) -> the line's three parts.
        self._forms: dict[tuple[Any, ...], tuple[str, str, str]] = {}

    def write(self, row: Row) -> None:
        """The next row."""
        errors, warnings = row.problems()
        if not errors and not warnings:
            self.write_like(row, [(row.row, row.key)])
            return
        self._file.write(json.dumps(row.to_dict(), ensure_ascii=False) + "\n")
        self.count += 1

    def write_like(self, like: Row, rows: Sequence[tuple[int | None, str]]) -> None:
        """The next rows, each as ``like`` (a row without problems) but for its row
        number and key: the rows of a block that have nothing to say, in one go."""
        form = (type(like), like.sheet, like.kind, like.outcome, like.message, like.platform_id)
        parts = self._forms.get(form)
        if parts is None:
            parts = self._forms[form] = _parts(like)
        start, middle, end = parts
        quoted = _quoted  # the JSON of a text, as json.dumps(text, ensure_ascii=False)
        self._file.write(
            "".join([f"{start}{number}{middle}{quoted(key)}{end}\n" for number, key in rows])
        )
        self.count += len(rows)

    def rows(self, listed: Sequence[Mapping[str, Any]], at: Sequence[int]) -> Iterator[Any]:
        """The lines written, those at the indexes ``at`` replaced by ``listed``'s rows."""
        self._file.flush()
        self._file.seek(0)
        replaced = dict(zip(at, listed, strict=True))
        for index, line in enumerate(self._file):
            yield replaced.get(index) or line.rstrip("\n")

    def close(self) -> None:
        self._file.close()


class StreamedRows(NamedTuple):
    """A report's rows as a streamed validation gives them: every row's line in
    ``spill``, and the indexes of the rows the report itself lists (``at``)."""

    spill: RowSpill
    at: Sequence[int]


_quoted: Callable[[str], str] = json.encoder.encode_basestring


def _parts(row: Row) -> tuple[str, str, str]:
    """The line of a row without problems around its row number and key."""
    data = {**row.to_dict(), "row": "\0row\0", "key": "\0key\0"}
    text = json.dumps(data, ensure_ascii=False)
    start, rest = text.split(json.dumps("\0row\0"))
    middle, end = rest.split(json.dumps("\0key\0"))
    return start, middle, end
