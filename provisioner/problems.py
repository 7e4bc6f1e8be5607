"""Problems found in a sheet, and the catalogue of every problem the tool can report.

Bad data is a result, not an exception: readers, the record mapping and the
validator return ``Problem`` objects, each tied to its cell where there is one.
The catalogue is the single list of problem kinds with the fix for each; the
README's error guide is generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


@dataclass(frozen=True)
class Kind:
    """One kind of problem: a stable code, a title and the fix in plain words."""

    code: str
    title: str
    fix: str
    severity: Severity = "error"


@dataclass(frozen=True)
class Problem:
    """One problem, where it is, and what to do about it.

    ``row`` is the row number as Excel shows it; ``column`` the column letter
    (None for problems of a whole row or file); ``header`` the column's header
    text; ``value`` the cell's text as the user sees it (masked for passwords).
    """

    kind: Kind
    message: str
    sheet: str
    row: int | None = None
    column: str | None = None
    header: str | None = None
    value: str | None = None

    @property
    def code(self) -> str:
        return self.kind.code

    @property
    def severity(self) -> Severity:
        return self.kind.severity

    @property
    def cell(self) -> str | None:
        """``C14``, or None when the problem is not tied to one cell."""
        if self.column is None or self.row is None:
            return None
        return f"{self.column}{self.row}"

    @property
    def where(self) -> str:
        """``Devices!C14 (serial)`` / ``Devices row 14`` / ``Devices``."""
        if self.cell:
            header = f" ({self.header})" if self.header else ""
            return f"{self.sheet}!{self.cell}{header}"
        if self.row is not None:
            return f"{self.sheet} row {self.row}"
        return self.sheet

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "sheet": self.sheet,
            "row": self.row,
            "cell": self.cell,
            "column": self.header,
            "column_letter": self.column,
            "value": self.value,
            "message": self.message,
            "fix": self.kind.fix,
        }


CATALOGUE: dict[str, Kind] = {}


def kind(code: str, title: str, fix: str, severity: Severity = "error") -> Kind:
    """Register a problem kind in the catalogue (each code once)."""
    if code in CATALOGUE:
        raise ValueError(f"problem code {code!r} registered twice")
    CATALOGUE[code] = Kind(code, title, fix, severity)
    return CATALOGUE[code]
