"""What can happen to a sheet row: the one list, shared by plan, apply and the reports.

Plan gives each row an action; apply turns the actions it carries out into
outcomes. Both are the same enum, so a report, a journal line or a test
compares one set of names. The values are the words scripts read in the JSON
reports (design.md, "Machine-readable output"): they never change.
"""

from __future__ import annotations

from enum import StrEnum


class RowKind(StrEnum):
    """Which tab a row comes from, by what it asks the platform for."""

    DEVICE = "device"
    USER = "user"
    DOWNLINK = "downlink"


class RowAction(StrEnum):
    """A row's action in a plan, or its outcome after apply."""

    # plan
    CREATE = "create"  # not on the platform: apply creates it
    EXISTS = "exists"  # on the platform with the sheet's values (or queued earlier)
    DIFFERS = "differs"  # on the platform with other values
    BLOCKED = "blocked"  # cannot be done: the reason says why
    QUEUE = "queue"  # a downlink apply queues
    UNKNOWN = "unknown"  # a user the platform does not list: apply tries to create it
    UPDATE = "update"  # differs, and apply --update brings it in line with the sheet
    # apply
    CREATED = "created"
    QUEUED = "queued"
    UPDATED = "updated"
    SKIPPED = "skipped"  # an update not made: the device changed on the platform since the plan
    FAILED = "failed"
    NOT_RUN = "not run"  # the run stopped before this row

    @property
    def sends(self) -> bool:
        """Whether apply sends a request for a row planned with this action."""
        return self in _SENDS

    @property
    def changed(self) -> bool:
        """Whether apply changed the platform for a row with this outcome."""
        return self in (RowAction.CREATED, RowAction.QUEUED, RowAction.UPDATED)

    @property
    def needs_attention(self) -> bool:
        """Whether the row ends a run with exit 1: the installer must look at it."""
        return self in (RowAction.BLOCKED, RowAction.FAILED, RowAction.NOT_RUN, RowAction.SKIPPED)


class CommissionStatus(StrEnum):
    """What `verify` finds of a sheet row's device (the JSON report's totals by these names)."""

    ONLINE = "online"  # data since it was installed
    SILENT = "silent"  # on the platform, no data since it was installed
    MISSING = "missing"  # not on the platform
    INVALID = "invalid"  # the row does not validate


class UndoStatus(StrEnum):
    """What `undo` does, and did, about one thing a run did."""

    DELETE = "delete"  # a device a run created, as the run left it: to be deleted
    RESTORE = "restore"  # a device a run updated, as the run left it: to be put back
    KEPT = "kept"  # changed since the run, updated later, or a user: listed, not touched
    DELETED = "deleted"
    RESTORED = "restored"
    DONE_BEFORE = "already done"  # taken back by an earlier undo, or gone already
    # A create or update of the run without an outcome on record: it may be on the
    # platform, and undo cannot prove it made it (the next apply settles it).
    UNSETTLED = "no answer on record"
    FAILED = "failed"
    NOT_RUN = "not run"


class StopKind(StrEnum):
    """Why a run ended before its last request."""

    NONE = ""
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM
    REFUSED = "refused"  # 401/403: the token was refused or lacks a role
    UNREACHABLE = "unreachable"  # no connection for longer than the client waits
    JOURNAL = "journal"  # the journal could not be written: nothing more may be sent
    NO_UPDATES = "no updates"  # the platform answered 404/405 to a device update (PUT)
    NO_DELETES = "no deletes"  # the platform answered 404/405/501 to a DELETE
    SAME_FAILURE = "same failure"  # the first rows all failed with one answer (not --keep-going)


# How plan may find the devices already on the platform (plan's and apply's --lookup).
LOOKUPS = ("auto", "per-key", "scan", "tag")

_SENDS = frozenset({RowAction.CREATE, RowAction.QUEUE, RowAction.UNKNOWN, RowAction.UPDATE})
