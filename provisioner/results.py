"""One shape for every command's result, and the exit code each result ends with.

A command's JSON report (design.md, "Machine-readable output") is its result's
``to_dict()`` (each kind's fix said once, in ``kinds``: ``reports.json_report``):
``command``, the command's own header (source, template, platform...),
``made_at``, ``ok``, ``totals``, ``problems`` (the sheet's own, not tied to a row)
and ``rows``. Every row has ``sheet``, ``row``, ``kind``, ``key``,
``status``, ``platform_id`` and ``message``, then its command's own columns, then
``errors`` and ``warnings``. The console, CSV, HTML and xlsx reports read that one
shape. ``exit_code`` is the design's contract: 0 all done, 1 rows that need
attention, 2 unusable input, 3 the platform refused or is unreachable, 130
interrupted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from provisioner.actions import StopKind

if TYPE_CHECKING:
    import pandas

    from provisioner.records import SiteRecords

EXIT_OK = 0
EXIT_ATTENTION = 1  # rows that need the installer: blocked, failed, silent, kept
EXIT_INPUT = 2  # unusable input: nothing was written
EXIT_PLATFORM = 3  # the platform refused the token, is unreachable, or cannot do it
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM

# A run that stopped early ends with this code (whatever its rows say).
STOP_EXIT = {
    StopKind.NONE: EXIT_OK,
    StopKind.INTERRUPTED: EXIT_INTERRUPTED,
    StopKind.SAME_FAILURE: EXIT_ATTENTION,  # the sheet is wrong, not the platform
    StopKind.NO_UPDATES: EXIT_ATTENTION,  # what was created stays; apply without --update
    StopKind.REFUSED: EXIT_PLATFORM,
    StopKind.UNREACHABLE: EXIT_PLATFORM,
    StopKind.JOURNAL: EXIT_PLATFORM,
    StopKind.NO_DELETES: EXIT_PLATFORM,
}


class _Problem(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class Row:
    """A result's row: the shared columns come from these attributes, its own are the
    attributes ``COLUMNS`` names."""

    COLUMNS: ClassVar[tuple[str, ...]] = ()

    sheet: str
    row: int | None
    kind: str
    key: str
    if TYPE_CHECKING:  # a field of the row's dataclass, or a property of its own

        @property
        def platform_id(self) -> int | None: ...

        @property
        def message(self) -> str: ...

    @property
    def outcome(self) -> str:
        """The row's status (plan: its action)."""
        return str(getattr(self, "status"))  # noqa: B009 (a dataclass field or a property)

    def columns(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.COLUMNS}

    def problems(self) -> tuple[Iterable[_Problem], Iterable[_Problem]]:
        """The row's (errors, warnings)."""
        return (), ()

    def to_dict(self) -> dict[str, Any]:
        errors, warnings = self.problems()
        return {
            "sheet": self.sheet,
            "row": self.row,
            "kind": self.kind,
            "key": self.key,
            "status": self.outcome,
            "platform_id": self.platform_id,
            "message": self.message,
            **self.columns(),
            "errors": [p.to_dict() for p in errors],
            "warnings": [p.to_dict() for p in warnings],
        }


class Result:
    """A command's result: ``to_dict()`` (its JSON report) and ``exit_code``."""

    command: str
    made_at: str
    stop: StopKind = StopKind.NONE
    if TYPE_CHECKING:  # a field of the result's dataclass, or a property of its own

        @property
        def rows(self) -> Sequence[Row]: ...

    # The attributes of the command's own header, in order (one with ``to_dict`` as that).
    HEADER: ClassVar[tuple[str, ...]] = ("source", "template", "platform", "device_link")

    @property
    def ok(self) -> bool:
        raise NotImplementedError

    @property
    def totals(self) -> dict[str, int]:
        """How many rows have each status, in the order first seen."""
        return dict(Counter(row.outcome for row in self.rows))

    def header(self) -> dict[str, Any]:
        """The command's own keys, between ``command`` and ``made_at``."""
        return {name: _plain(getattr(self, name)) for name in self.HEADER}

    def sheet_problems(self) -> Iterable[_Problem]:
        return ()

    def sheet_records(self) -> SiteRecords | None:
        """The sheet's records, whose secrets a rendering of the result masks."""
        return None

    def head(self) -> dict[str, Any]:
        """``to_dict()`` without its rows."""
        return {
            "command": self.command,
            **self.header(),
            "made_at": self.made_at,
            "ok": self.ok,
            "totals": self.totals,
            "problems": [p.to_dict() for p in self.sheet_problems()],
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.head(), "rows": [row.to_dict() for row in self.rows]}

    def to_frame(self) -> pandas.DataFrame:
        """The rows of ``to_dict()`` as a pandas DataFrame, one column per key, secrets
        masked as in every report (``frames.result_frame``; needs the ``pandas`` extra)."""
        from provisioner.frames import result_frame

        return result_frame(self)

    @property
    def exit_code(self) -> int:
        if self.stop:
            return STOP_EXIT[self.stop]
        return EXIT_OK if self.ok else EXIT_ATTENTION


def _plain(value: Any) -> Any:
    """A header value as JSON holds it (lookup statistics as their dict)."""
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value
