"""Apply: carry out a plan on the platform, exactly once, with a journal.

``apply_sheet`` is the whole command: it locks the journal, plans afresh,
settles what earlier runs left open, asks for confirmation, sends, and always
writes the results workbook.

The platform, as the fresh plan finds it, decides what is done. The journal is
evidence and history: it settles requests that got no answer (the plan found
the device: it was created), tells a device made by an earlier run and deleted
since (looked up once by its platform id, then created again), and says which
downlinks were queued with which payload. It never makes apply skip a row whose
device the platform does not hold.

Devices go first, then users, then downlinks (to the id of the device found or
created). Each row is a request on the one executor (``provisioner.runner``): an
intent in the journal, the request, its outcome. What a lost answer means is the
request's own: a device is looked up by its addr (the platform keeps it unique),
a user settled by the 409 a resend gets, a downlink by resending (a new one
replaces the queued one of its type), an update by reading the device. A 401/403,
an outage past the client's bound or a journal that cannot be written stops the
whole run; Ctrl-C stops it after the requests in flight. Anything else fails the
row with the reason and the run goes on. Rows the plan already knows this token may
not write (users, when the user listing got a 403) are not sent: they are "not run"
with the plan's reason, and the rest goes.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provisioner.actions import RowAction, RowKind, StopKind
from provisioner.changes import (
    Seen,
    Update,
    device_update,
    is_applied,
    masked_input,
    secret_values,
)
from provisioner.errors import Declined, Interrupted, ProvisionerError
from provisioner.errors import SavedPlanError as SavedPlanError
from provisioner.events import Events
from provisioner.fields import normal_addr, normal_key
from provisioner.frames import FRAME, Sheet, sheet_name, sheet_path
from provisioner.journal import (
    Entry,
    Images,
    Journal,
    JournalLock,
    JournalState,
    UpdateEntry,
    day_of,
    payload_fingerprint,
    read_sheet_journal,
)
from provisioner.journal import default_journal as default_journal
from provisioner.journal import read_journal as read_journal
from provisioner.lookup import key_filter, look_up_devices
from provisioner.pace import PaceStats
from provisioner.plan import Plan, RowPlan, journal_key, make_plan
from provisioner.platform import (
    Conflict,
    NotFound,
    PlatformClient,
    PlatformError,
)
from provisioner.records import Record, SiteRecords
from provisioner.results import Result, Row
from provisioner.runner import (
    CONCURRENCY,
    SAME_FAILURES,
    Outcome,
    Request,
    Runner,
    StopRun,
)
from provisioner.templates import SiteTemplate
from provisioner.text import counted, is_are, listed


@dataclass
class ApplyRow(Row):
    """What happened to one sheet row."""

    sheet: str
    row: int
    kind: RowKind
    key: str
    status: RowAction
    platform_id: int | None = None
    message: str = ""
    changes: list[dict[str, Any]] = field(default_factory=list)  # an update's, field by field

    COLUMNS = ("changes",)


@dataclass
class ApplyResult(Result):
    """The outcome of one apply run; ``to_dict()`` is its --report .json."""

    source: str
    template: str
    platform: str
    run: str
    journal: str
    rows: list[ApplyRow]
    stop: StopKind = StopKind.NONE
    stopped: str = ""  # the stop, in words
    notes: list[str] = field(default_factory=list)  # what the installer should know
    results: str = ""  # the results workbook, once written
    reports: list[str] = field(default_factory=list)  # --report files written
    sent: int = 0  # rows this run sent requests for
    made_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    command: str = "apply"
    device_link: str = ""  # a device's page on the platform, {id} for its id
    pace: PaceStats | None = None  # how fast the run's requests went: None, none sent
    records: SiteRecords | None = field(default=None, repr=False)  # the sheet's, as planned

    @property
    def changed(self) -> int:
        return sum(1 for r in self.rows if r.status.changed)

    @property
    def ok(self) -> bool:
        return not self.stop and not any(r.status.needs_attention for r in self.rows)

    HEADER = (*Result.HEADER, "run", "journal", "stopped", "stop", "notes", "pace")

    def sheet_records(self) -> SiteRecords | None:
        return self.records


def nothing_sent(result: ApplyResult, listed: bool) -> str:
    """What a run that sent nothing says: "nothing to do" only when no row is blocked
    or needs a token with another role (that run exits 0); "listed above" only when
    ``listed``, the console showed the rows that are blocked or differ."""
    counts = Counter(row.status for row in result.rows)
    blocked, differ = counts[RowAction.BLOCKED], counts[RowAction.DIFFERS]
    # Before anything is sent, a row is "not run" only because the token lacks a role.
    not_run = counts[RowAction.NOT_RUN]
    above = " (listed above)" if listed else ""
    if blocked or not_run:
        parts = []
        if blocked:
            parts.append(f"{'1 row is' if blocked == 1 else f'{blocked} rows are'} blocked")
        if not_run:
            rows = "1 row needs" if not_run == 1 else f"{not_run} rows need"
            parts.append(f"{rows} a token with another role")
        if differ:
            parts.append(f"{differ} {'differs' if differ == 1 else 'differ'} from the platform")
        listing = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
        return f"nothing sent: {listing}{above}"
    if not result.rows:
        return "nothing to do: the sheet has no rows"
    if differ:
        rows = "1 row differs" if differ == 1 else f"{differ} rows differ"
        return f"nothing to do: every row is on the platform; {rows} from it{above}"
    return "nothing to do: every row is on the platform"


# --- reconciling the fresh plan with the journal ------------------------------------------------


@dataclass
class Work:
    """What this run will send, after the journal has settled what it can."""

    tasks: list[_Task]
    settled: list[tuple[RowPlan, Entry]]  # unanswered requests the plan found done
    notes: list[str]
    # Updates of an earlier run without an answer on record, and the device as the plan
    # read it: the journal gets their outcome (undo restores only an update done).
    settled_updates: list[tuple[UpdateEntry, dict[str, Any]]] = field(default_factory=list)

    @property
    def pending(self) -> int:
        return len(self.tasks)

    def count(self, kind: RowKind) -> int:
        return sum(1 for task in self.tasks if task.result.kind == kind)


@dataclass
class _Task:
    plan: RowPlan
    record: Record
    result: ApplyRow
    journal_key: str
    payload: str = ""  # downlinks: the fingerprint of their content
    note: str = ""  # why a create happens a second time, for the row's message
    # Updates: the change the plan saw (for the question), what --update asked for, and
    # the updatedAt the device must still have when the PUT is sent.
    update: Update | None = None
    choice: UpdateChoice | None = None
    expected: Seen | None = None  # None with --plan: the saved plan does not say
    untouched: str = ""  # fields that differ and --update leaves as they are


def reconcile(
    plan: Plan,
    earlier: JournalState,
    client: PlatformClient,
    match_key: str,
    rows: list[ApplyRow],
    *,
    updates: UpdateChoice | None = None,
) -> Work:
    """Decide, row by row, what this run sends; the plan's findings win over the journal.

    ``rows`` (one per plan row, in order) get the plan's action, changed where
    the journal settles a row (a downlink queued earlier with the same payload to
    the same device is ``exists`` in the plan already, by the same journal): a user
    the platform does not list but the journal created is ``exists``; a device the
    journal created and the plan cannot find is looked up by its id and created
    again if it is gone. With
    ``updates``, the devices that differ in the chosen fields are updated.
    """
    records = plan.validation.records
    by_row = {(r.sheet, r.row): r for r in [*records.devices, *records.users, *records.downlinks]}
    unanswered = {(e.kind, e.key): e for e in earlier.unresolved()}
    tasks: list[_Task] = []
    settled: list[tuple[RowPlan, Entry]] = []
    gone_checks: list[_Task] = []
    differing = 0  # devices that differ and stay as they are
    read: dict[str, dict[str, Any]] = {}  # journal key -> the device as the plan read it
    for row_plan, result in zip(plan.rows, rows, strict=True):
        kind = RowKind(row_plan.kind)
        record = by_row.get((row_plan.sheet, row_plan.row))
        if record is None or not record.key:
            continue
        key = journal_key(match_key, record, kind)
        if kind == RowKind.DEVICE and row_plan.device is not None:
            read[key] = row_plan.device
        if row_plan.action in (RowAction.EXISTS, RowAction.DIFFERS):
            if (kind, key) in unanswered:
                settled.append((row_plan, unanswered[(kind, key)]))
            if row_plan.action == RowAction.DIFFERS and kind == RowKind.DEVICE:
                task = _update_task(row_plan, record, result, key, updates)
                if task is not None:
                    tasks.append(task)
                else:
                    differing += 1
            continue
        if not RowAction(row_plan.action).sends:
            continue
        task = _Task(row_plan, record, result, key)
        made = earlier.made.get((kind, key))
        if kind == RowKind.DEVICE and made is not None:
            gone_checks.append(task)  # created by an earlier run, and the plan cannot find it
        elif kind == RowKind.DOWNLINK:
            # Queued by an earlier run with this content: the plan said exists already
            # (plan.queued_before), so what reaches here is to be queued.
            task.payload = payload_fingerprint(record.body)
        tasks.append(task)
    notes = _check_gone(gone_checks, earlier, client, match_key)
    if unanswered:
        sent_again = sum(1 for t in tasks if (t.result.kind, t.journal_key) in unanswered)
        notes.insert(
            0,
            f"{counted(len(unanswered), 'request')} of an earlier run got no answer: "
            f"{len(settled)} {'was' if len(settled) == 1 else 'were'} found on the platform; "
            f"{sent_again} {is_are(sent_again)} sent again",
        )
    if differing:
        devices = "1 device" if differing == 1 else f"{differing} devices"
        notes.append(
            f"{devices} on the platform differ from the sheet and stay as they are: "
            + (
                "--update would change them"
                if updates is None
                else f"they differ in other fields than --update {','.join(sorted(updates.fields or ()))}"
            )
        )
    tasks = [t for t in tasks if t.result.status.sends]
    open_updates = [(u, read.get(u.key)) for u in earlier.unsettled_updates()]
    open_updates = [(u, d) for u, d in open_updates if d is not None]
    if open_updates:
        notes.append(
            f"{len(open_updates)} updates of an earlier run got no answer: each device was "
            "read to record whether it holds the update"
        )
    return Work(tasks, settled, notes, [(u, d) for u, d in open_updates if d is not None])


def update_done(update: UpdateEntry, device: dict[str, Any]) -> bool:
    """Whether the device holds what an update without an answer sent (its after-image in
    every field the update changed; tags in any order)."""
    now = masked_input(device)
    for name, value in update.after.items():
        if update.before.get(name) == value:
            continue
        if name == "tags" and isinstance(value, list) and isinstance(now.get(name), list):
            if {str(t).strip() for t in value} != {str(t).strip() for t in now[name]}:
                return False
        elif now.get(name) != value:
            return False
    return True


@dataclass(frozen=True)
class UpdateChoice:
    """``apply --update [FIELDS]``: which fields of differing devices to change."""

    fields: frozenset[str] | None = None  # deviceInput fields; None: every one the sheet sets
    tags_mode: str = "add"
    # By platform id: the tags this sheet's earlier runs put on the device (the journal's
    # sheet_tags); "add" takes off those the sheet no longer has.
    sheet_tags: Mapping[int, Set[str]] = field(default_factory=dict)
    # With --plan: (sheet, row) -> how the saved plan saw the device, the reference for
    # the update (None: the saved plan does not say). Without: the fresh plan's view.
    seen: dict[tuple[str, int], Seen | None] | None = None


def _update_task(
    row_plan: RowPlan, record: Record, result: ApplyRow, key: str, updates: UpdateChoice | None
) -> _Task | None:
    """The update of a device that differs, if --update asks for one of its fields."""
    if updates is None or row_plan.device is None or row_plan.platform_id is None:
        return None
    planned = device_update(
        row_plan.device,
        record.body,
        fields=updates.fields,
        tags_mode=updates.tags_mode,
        defaulted=record.defaulted,
        ours=updates.sheet_tags.get(row_plan.platform_id, ()),
    )
    if not planned.changes:
        return None
    if updates.seen is None:
        expected: Seen | None = Seen.of(row_plan.device)
    else:
        expected = updates.seen.get((row_plan.sheet, row_plan.row))
    task = _Task(row_plan, record, result, key, update=planned, choice=updates, expected=expected)
    # Fields that differ and --update leaves alone: the row says so after the update too.
    changing = {"initialConfig" if f.startswith("cfg:") else f for f in planned.fields}
    task.untouched = ", ".join(name for name in row_plan.diff if name not in changing)
    message = "update: " + ", ".join(planned.fields)
    row_plan.action, row_plan.reason = RowAction.UPDATE, message
    result.status, result.message = RowAction.UPDATE, message
    return task


def _decide(
    row_plan: RowPlan,
    result: ApplyRow,
    action: RowAction,
    message: str,
    platform_id: int | None = None,
) -> None:
    """The journal settles a row: the plan shown before the question says so too."""
    row_plan.action = result.status = action
    row_plan.reason = result.message = message
    if platform_id is not None:
        row_plan.platform_id = result.platform_id = platform_id


def _check_gone(
    tasks: list[_Task], earlier: JournalState, client: PlatformClient, match_key: str
) -> list[str]:
    """Devices an earlier run made that the plan cannot find: one lookup by id each."""
    if not tasks:
        return []
    # The ids in one lookup (several at once); an id that is another device's now (a
    # platform reset, another organisation at the same URL) is not the device that run
    # made: only one with this row's addr is.
    made = {id(t): earlier.made[(RowKind.DEVICE, t.journal_key)] for t in tasks}
    found, _ = look_up_devices(client, [], [m.platform_id for m in made.values() if m.platform_id])
    gone = 0
    for task in tasks:
        entry = made[id(task)]
        device = found.by_id.get(entry.platform_id or 0)
        if device is not None and normal_addr(device.get("addr")) != normal_addr(
            task.record.body.get("addr")
        ):
            device = None
        if device is None:
            gone += 1
            task.note = (
                f"created again: the device made on {day_of(entry)} as id {entry.platform_id} "
                "is no longer on the platform"
            )
            _decide(task.plan, task.result, RowAction.CREATE, task.note)
            continue
        message = (
            f"the device made on {day_of(entry)} as id {entry.platform_id} is on the platform "
            f"with {match_key} {device.get(match_key)!r} now: correct the sheet or the "
            "platform first"
        )
        _decide(task.plan, task.result, RowAction.BLOCKED, message, entry.platform_id)
    if not gone:
        return []
    gone_devices = f"{counted(gone, 'device')} made by an earlier run {is_are(gone)}"
    return [f"{gone_devices} no longer on the platform: created again"]


# --- carrying the work out -----------------------------------------------------------------------


class _RowRequest(Request):
    """One sheet row's request, and how a lost answer or a 409 is settled for its kind."""

    def __init__(self, client: PlatformClient, task: _Task, match_key: str) -> None:
        self.client = client
        self.match_key = match_key
        self.task = task
        self.body = task.record.body
        self.kind, self.key, self.row = task.result.kind, task.journal_key, task.record.row

    def images(self, outcome: str = "") -> Images | None:
        """The (before, after) images the journal keeps of an update (``outcome``: the
        row's status, "" for an intent); None for the other requests."""
        return None

    def tags(self) -> list[str] | None:
        """The tags a device create sends, for the journal; None for the other requests."""
        return None

    def target(self) -> int | None:
        """The platform id the request writes to, known before it is sent (an update's)."""
        return None

    def intent(self) -> dict[str, Any]:
        return {
            "payload": self.task.payload,
            "update": self.images(),
            "tags": self.tags(),
            "platform_id": self.target(),
        }

    def recorded(self, outcome: Outcome) -> dict[str, Any]:
        return {
            "payload": self.task.payload,
            "update": self.images(outcome.status),
            # The tags a create put on the device are this sheet's (--update may take
            # them off again once the sheet no longer has them).
            "tags": self.tags() if outcome.status == RowAction.CREATED else None,
        }

    def finish(self, outcome: Outcome) -> None:
        result = self.task.result
        if outcome.changes:
            result.changes = [c.to_dict() for c in outcome.changes]
        if outcome.status == RowAction.CREATED and self.task.note:
            outcome.message = self.task.note  # the row says why it was created a second time
        result.status = RowAction(outcome.status)
        if outcome.platform_id is not None:
            result.platform_id = outcome.platform_id
        result.message = outcome.message


class _DeviceRequest(_RowRequest):
    def tags(self) -> list[str] | None:
        tags = self.body.get("tags")
        return [str(t) for t in tags] if isinstance(tags, list) else None

    def send(self) -> Outcome:
        device = self.client.create_device(self.body)
        return _made(device, "created")

    def find_after_lost(self) -> Outcome | None:
        found = self._ours_by_addr()
        if found is None:
            return None
        return _made(found, "created (confirmed by looking it up after a lost answer)")

    def after_conflict(self, exc: Conflict, lost: int) -> Outcome | None:
        found = self._ours_by_addr()
        if found is None:
            return Outcome(
                RowAction.FAILED, None, f"the addr is taken by another device: {exc.message}"
            )
        if lost:
            return _made(found, "created (confirmed by a 409 after a lost answer)")
        return Outcome(
            RowAction.EXISTS, int(found["id"]), "already on the platform (found after a 409)"
        )

    def _ours_by_addr(self) -> dict[str, Any] | None:
        """The device with this row's addr, if it is the one this row asks for."""
        addr = str(self.body.get("addr", ""))
        found = [
            d
            for d in self.client.find_devices(key_filter("addr", normal_addr(addr)))
            if normal_addr(d.get("addr")) == normal_addr(addr)
        ]
        if len(found) != 1:
            return None
        device = found[0]
        serial = self.body.get("serial")
        if serial is not None and str(device.get("serial") or "").strip() != str(serial).strip():
            return None
        return device


def _made(device: dict[str, Any], message: str) -> Outcome:
    """A create's outcome, with what undo needs to know the device again: its addr and
    createdAt, and the updatedAt it was left with."""
    return Outcome(
        RowAction.CREATED,
        int(device["id"]),
        message,
        updated_at=_text(device.get("updatedAt")),
        evidence={"addr": _text(device.get("addr")), "created_at": _text(device.get("createdAt"))},
    )


def _id_of(device: dict[str, Any]) -> int | None:
    value = device.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class _UserRequest(_RowRequest):
    # A lost answer is settled by sending again: the email is unique, so a resend that
    # finds the user made gets a 409.
    def send(self) -> Outcome:
        user = self.client.create_user(self.body)
        return Outcome(RowAction.CREATED, user["id"], "created")

    def after_conflict(self, exc: Conflict, lost: int) -> Outcome | None:
        if lost:
            return Outcome(
                RowAction.CREATED, None, "created (confirmed by a 409 after a lost answer)"
            )
        return Outcome(RowAction.EXISTS, None, "a user with this email exists")


class _DownlinkRequest(_RowRequest):
    # A lost answer is settled by sending again: a new downlink replaces the queued one.
    counts_alike = False  # one to a device that failed to be made fails for that reason

    def send(self) -> Outcome:
        device_id = self.task.result.platform_id
        kind = getattr(self.task.record, "type", "")
        if device_id is None:
            return Outcome(RowAction.FAILED, None, "its device was not created")
        self.client.queue_downlink(device_id, kind, self.body)
        return Outcome(RowAction.QUEUED, device_id, f"{kind} downlink queued")


class _UpdateRequest(_RowRequest):
    """PUT of a device that differs: read it again first, and skip it if it changed since.

    A PUT can be sent again safely, but somebody may edit the device meanwhile: a lost
    answer is settled by reading the device (updated, not yet, or changed by another).
    """

    def __init__(self, client: PlatformClient, task: _Task, match_key: str) -> None:
        super().__init__(client, task, match_key)
        self.device_id = int(task.plan.platform_id or 0)
        self.before: dict[str, Any] = {}
        self.after: dict[str, Any] | None = None
        self.update = Update({}, [])

    def prepare(self) -> Outcome | None:
        task, choice = self.task, self.task.choice or UpdateChoice()
        if task.expected is None:
            return Outcome(
                RowAction.SKIPPED,
                self.device_id,
                "the saved plan does not say how the device looked (a plan of an older "
                "version): run plan again",
            )
        device = self._read()
        if device is None:
            return Outcome(
                RowAction.FAILED,
                self.device_id,
                "the device is no longer on the platform: run plan again",
            )
        if task.expected.changed(device):
            return Outcome(
                RowAction.SKIPPED,
                self.device_id,
                f"changed on the platform since the plan (at "
                f"{device.get('updatedAt') or 'an unknown time'}): run plan again to see the "
                "change, then apply --update again",
            )
        self.before = device
        self.update = device_update(
            device,
            task.record.body,
            fields=choice.fields,
            tags_mode=choice.tags_mode,
            defaulted=task.record.defaulted,
            ours=choice.sheet_tags.get(self.device_id, ()),
        )
        if not self.update.changes:
            return Outcome(RowAction.EXISTS, self.device_id, "already as the sheet says")
        return None

    def target(self) -> int | None:
        return self.device_id

    def images(self, outcome: str = "") -> Images:
        """(before, after) of the device: for an intent (and an unknown outcome) the body
        as sent; for an update made, the device as the platform answered; for one not
        made, the device as it was."""
        before = masked_input(self.before)
        if outcome == RowAction.UPDATED:
            return before, masked_input(self.after or self.update.body)
        if outcome:
            return before, before
        return before, masked_input(self.update.body)

    def before_resend(self) -> Outcome | None:
        """Just before a PUT goes again (after a lost answer and the pause): still unchanged?"""
        device = self._read()
        if device is None:
            return Outcome(RowAction.FAILED, self.device_id, "the device is gone from the platform")
        if Seen.of(self.before).changed(device):
            return self._changed_meanwhile(device)
        return None

    def send(self) -> Outcome:
        self.after = self.client.update_device(self.device_id, self.update.body)
        return self._updated("updated")

    def find_after_lost(self) -> Outcome | None:
        device = self._read()
        if device is None:
            return Outcome(RowAction.FAILED, self.device_id, "the device is gone from the platform")
        choice = self.task.choice or UpdateChoice()
        if is_applied(device, self.update, choice.tags_mode):
            self.after = device
            return self._updated("updated (confirmed by reading the device after a lost answer)")
        if not Seen.of(self.before).changed(device):
            return None  # not carried out: it may be sent again (checked once more first)
        return self._changed_meanwhile(device)

    def _read(self) -> dict[str, Any] | None:
        """The device by id; the LoRaWAN keys it holds are masked in every message from now."""
        device = self.client.get_device(self.device_id)
        if device is not None:
            self.client.add_secrets(secret_values(device))
        return device

    def _changed_meanwhile(self, device: dict[str, Any]) -> Outcome:
        return Outcome(
            RowAction.SKIPPED,
            self.device_id,
            "changed on the platform while the update was being sent (at "
            f"{device.get('updatedAt') or 'an unknown time'}): run plan again",
        )

    def after_refusal(self, exc: PlatformError, runner: Runner) -> Outcome | None:
        """A 404 for a device just read, or a 405: this platform does not offer updates."""
        if not (isinstance(exc, NotFound) or exc.status == 405):
            return None
        if isinstance(exc, NotFound) and self.client.get_device(self.device_id) is None:
            return Outcome(RowAction.FAILED, self.device_id, "the device is gone from the platform")
        message = (
            f"this platform does not offer device updates through its REST API (PUT answered "
            f"HTTP {exc.status}); the run stopped before the next update, what was created stays"
        )
        runner.halt(StopKind.NO_UPDATES, f"stopped: {message}")
        return Outcome(RowAction.FAILED, self.device_id, message)

    def _updated(self, how: str) -> Outcome:
        rest = self.task.untouched
        stamp = (self.after or {}).get("updatedAt")
        return Outcome(
            RowAction.UPDATED,
            self.device_id,
            f"{how}: {', '.join(self.update.fields)}"
            + (f"; {rest} still differ (not in --update)" if rest else ""),
            self.update.changes,
            stamp if isinstance(stamp, str) else "",
        )


_REQUESTS: dict[RowKind, type[_RowRequest]] = {
    RowKind.DEVICE: _DeviceRequest,
    RowKind.USER: _UserRequest,
    RowKind.DOWNLINK: _DownlinkRequest,
}


def _request_for(client: PlatformClient, task: _Task, match_key: str) -> _RowRequest:
    if task.plan.action == RowAction.UPDATE:
        return _UpdateRequest(client, task, match_key)
    return _REQUESTS[task.result.kind](client, task, match_key)


def _carry_out(
    runner: Runner, tasks: list[_Task], device_ids: dict[str, int], match_key: str
) -> None:
    """Devices, then users, then downlinks to the devices found or created."""
    runner.expect(len(tasks))
    stages: dict[RowKind, list[_Task]] = {kind: [] for kind in RowKind}
    for task in tasks:
        stages[task.result.kind].append(task)
    runner.run(_request_for(runner.client, t, match_key) for t in stages[RowKind.DEVICE])
    for task in stages[RowKind.DEVICE]:
        if task.result.status == RowAction.CREATED and task.result.platform_id is not None:
            device_ids[normal_key(match_key, task.record.key)] = task.result.platform_id
    runner.run(_request_for(runner.client, t, match_key) for t in stages[RowKind.USER])
    for task in stages[RowKind.DOWNLINK]:
        key = normal_key(match_key, task.record.key)
        task.result.platform_id = device_ids.get(key) or task.plan.platform_id
    runner.run(_request_for(runner.client, t, match_key) for t in stages[RowKind.DOWNLINK])


# --- the whole command ---------------------------------------------------------------------------


def results_path(sheet: Path, number: int = 1) -> Path:
    suffix = "" if number == 1 else f"-{number}"
    return sheet.with_name(f"{sheet.stem}.results{suffix}.xlsx")


def check_saved_plan(saved_path: Path, fresh: Plan) -> dict[tuple[str, int], Seen | None]:
    """A saved plan still holds if the sheet is the same and no create row exists by now.

    Returns how the saved plan saw each device, by (sheet, row) (None: it does not say,
    a plan of an older version): what an update checks the device against.
    """
    try:
        saved = json.loads(saved_path.read_text(encoding="utf-8"))
    except OSError as exc:  # the path as given: str(exc) doubles a Windows path's backslashes
        raise SavedPlanError(f"{saved_path} cannot be read: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:
        raise SavedPlanError(f"{saved_path} is not a saved plan: {exc}") from None
    if not isinstance(saved, dict) or saved.get("command") != "plan" or "fingerprint" not in saved:
        raise SavedPlanError(f"{saved_path} is not a plan saved by `provisioner plan --out`")
    made_with = saved.get("template")
    if isinstance(made_with, str) and made_with != fresh.template:
        raise SavedPlanError(
            f"{saved_path} was made with the template '{made_with}', and this apply reads the "
            f"sheet with '{fresh.template}': leave out --template to use '{made_with}', or run "
            f"plan again with --template {fresh.template}"
        )
    if saved["fingerprint"] != fresh.fingerprint:
        raise SavedPlanError(
            f"the sheet or template changed since {saved_path} was made: run plan again"
        )
    planned_tab = next(
        (
            row.get("sheet")
            for row in saved.get("rows", [])
            if isinstance(row, dict) and row.get("kind") == RowKind.DEVICE
        ),
        None,
    )
    reading = fresh.validation.records.tabs.get("devices")
    if isinstance(planned_tab, str) and reading and planned_tab != reading:
        raise SavedPlanError(
            f'{saved_path} was made from the devices on the tab "{planned_tab}", and this '
            f'apply reads them from the tab "{reading}": add --tab "{planned_tab}", or run '
            "plan again"
        )
    now: dict[tuple[Any, Any], RowAction] = {(r.sheet, r.row): r.action for r in fresh.rows}
    stale = [
        f"{row.get('sheet')} row {row.get('row')} ({row.get('key')}): planned create, now "
        f"{now.get((row.get('sheet'), row.get('row')))}"
        for row in saved.get("rows", [])
        if isinstance(row, dict)
        and row.get("action") == RowAction.CREATE
        and now.get((row.get("sheet"), row.get("row"))) != RowAction.CREATE
    ]
    if stale:
        raise SavedPlanError(
            f"{saved_path} no longer holds; these rows changed on the platform:\n  "
            + "\n  ".join(stale[:20])
            + (f"\n  ... and {len(stale) - 20} more" if len(stale) > 20 else "")
        )
    seen: dict[tuple[str, int], Seen | None] = {}
    for row in saved.get("rows", []):
        if not isinstance(row, dict) or not isinstance(row.get("row"), int):
            continue
        stamp, mark = row.get("platform_updated_at"), row.get("platform_fingerprint")
        seen[(str(row.get("sheet")), row["row"])] = (
            Seen(stamp if isinstance(stamp, str) else None, mark) if isinstance(mark, str) else None
        )
    return seen


def apply_sheet(
    sheet: Sheet,
    template: SiteTemplate,
    client: PlatformClient,
    *,
    journal_path: Path | None = None,
    lookup: str = "auto",
    saved_plan: Path | None = None,
    concurrency: int = CONCURRENCY,
    reports: Sequence[Path] = (),
    events: Events | None = None,
    stop: threading.Event | None = None,
    update: bool = False,
    update_fields: frozenset[str] | None = None,
    keep_going: bool = False,
    tab: str | None = None,
) -> ApplyResult:
    """The whole apply: plan, settle, confirm, send, and always write the results.

    ``update``: also update the devices that differ (``update_fields``: only these
    deviceInput fields; None: every field the sheet sets). ``events`` hears how far
    the platform is read and the requests are, is shown the plan (``planned``) and
    asked before anything is sent (``confirm(work)``). ``tab`` (``--tab``) names the
    tab that holds the devices.

    ``sheet`` is a file, written again with the results beside it
    (``<sheet>.results.xlsx``), its journal beside it unless ``journal_path`` says
    otherwise; or DataFrames (``frames.Sheet``), whose results are the result alone
    (``to_frame()``) and whose journal must be given.

    Raises before anything is written to the platform: a ProvisionerError for
    unusable input (sheet, journal, saved plan, report paths, Declined,
    Interrupted) and a PlatformError when the platform cannot be used.
    Once sending has begun it returns, whatever happens; ``result.stop`` says
    whether and why the run stopped early.
    """
    from provisioner import reports as report_files

    events = events or Events()
    path = sheet_path(sheet)
    if journal_path is None:
        if path is None:
            raise ProvisionerError(
                f"a {FRAME} has no folder to keep its journal in: give apply_sheet a "
                "journal_path (e.g. Path('site.journal.jsonl')), the file that records what "
                "each run sends, so that a run cut short can be resumed and undone"
            )
        journal_path = default_journal(path)
    results = None if path is None else _results_target(path)
    try:
        report_files.check_report_paths(list(reports), source=path)
    except report_files.ReportError as exc:
        raise ProvisionerError(str(exc)) from None
    with JournalLock(journal_path):
        earlier = read_sheet_journal(journal_path, sheet_name(sheet), client.url)
        try:
            choice = (
                UpdateChoice(update_fields, template.tags_mode, earlier.sheet_tags)
                if update
                else None
            )
            plan, work, rows = _prepare(
                sheet, template, client, lookup, saved_plan, earlier, choice, events.reading, tab
            )
        except KeyboardInterrupt:
            raise Interrupted("interrupted before anything was written") from None
        events.planned(plan, work)
        if work.pending and not events.confirm(work):
            raise Declined("nothing was written to the platform")
        result = ApplyResult(
            source=plan.source,
            template=plan.template,
            platform=plan.platform,
            device_link=client.device_link,
            run="",
            journal=str(journal_path),
            rows=rows,
            notes=work.notes,
            sent=work.pending,
            records=plan.validation.records,
        )
        try:
            if work.pending or work.settled or work.settled_updates:
                _send(
                    plan,
                    work,
                    client,
                    journal_path,
                    result,
                    template,
                    concurrency,
                    events,
                    stop,
                    keep_going,
                )
        finally:
            # Also when a second Ctrl-C ends the wait for requests in flight: the results
            # are written before the interrupt goes on up.
            _write_results(result, sheet, plan, results, reports)
    return result


def _prepare(
    sheet: Sheet,
    template: SiteTemplate,
    client: PlatformClient,
    lookup: str,
    saved_plan: Path | None,
    earlier: JournalState,
    updates: UpdateChoice | None = None,
    reading: Callable[[str], None] | None = None,
    tab: str | None = None,
) -> tuple[Plan, Work, list[ApplyRow]]:
    """Plan afresh, check a saved plan against it, and settle it with the journal."""
    plan = make_plan(sheet, template, client, lookup, progress=reading, journal=earlier, tab=tab)
    records = plan.validation.records
    client.add_secrets([*records.secret_values(), *records.key_values()])
    # The keys the platform's devices hold too: an update sends a device's whole
    # initialConfig, and an answer may echo it.
    client.add_secrets(
        v for r in plan.rows if r.device is not None for v in secret_values(r.device)
    )
    if saved_plan is not None:
        seen = check_saved_plan(saved_plan, plan)
        if updates is not None:
            updates = dataclasses.replace(updates, seen=seen)
    # A row the plan found this token may not write (users without org-admin) is not
    # run, with the plan's reason; the rest is sent.
    rows = [
        ApplyRow(
            r.sheet,
            r.row,
            RowKind(r.kind),
            r.key,
            RowAction.NOT_RUN if r.needs_role else RowAction(r.action),
            r.platform_id,
            r.reason,
        )
        for r in plan.rows
    ]
    work = reconcile(plan, earlier, client, template.match_key, rows, updates=updates)
    if earlier.skipped_lines:
        lines = listed([str(n) for n in earlier.skipped_lines], 5)
        work.notes.append(
            f"the journal has {len(earlier.skipped_lines)} lines that are not its own "
            f"(line {lines}): skipped"
        )
    return plan, work, rows


def _results_target(sheet: Path) -> Path:
    """Where the results go: checked before any request, so a run never loses them."""
    from provisioner.reports import ReportError, check_report_paths

    problem = ""
    for number in range(1, 10):
        path = results_path(sheet, number)
        try:
            check_report_paths([path], source=sheet)
        except ReportError as exc:
            problem = problem or str(exc)
            continue
        return path
    raise ProvisionerError(f"the results cannot be written beside the sheet: {problem}")


def _send(
    plan: Plan,
    work: Work,
    client: PlatformClient,
    journal_path: Path,
    result: ApplyResult,
    template: SiteTemplate,
    concurrency: int,
    events: Events,
    stop: threading.Event | None,
    keep_going: bool = False,
) -> None:
    """Open the journal, record what the plan settled, and carry out the work."""
    started = time.perf_counter()
    journal = Journal(
        journal_path,
        sheet=Path(plan.source).name,
        platform=client.url,
        fingerprint=plan.fingerprint,
    )
    result.run = journal.run
    runner = Runner(
        client,
        journal,
        concurrency=concurrency,
        stop=stop,
        events=events,
        same_failures=None if keep_going else SAME_FAILURES,
        slower="--max-rps",
    )
    try:
        for row_plan, entry in work.settled:
            _record_settled(runner, row_plan, entry)
        for update, device in work.settled_updates:
            _record_settled_update(runner, update, device)
        device_ids = {
            normal_key(template.match_key, r.key): r.platform_id
            for r in plan.rows
            if r.kind == RowKind.DEVICE
            and r.platform_id is not None
            and r.action in (RowAction.EXISTS, RowAction.DIFFERS, RowAction.UPDATE)
        }
        _carry_out(runner, work.tasks, device_ids, template.match_key)
    except StopRun:
        pass  # the journal failed while recording what the plan settled
    except KeyboardInterrupt:
        if runner.stop_kind == StopKind.INTERRUPTED:
            raise  # the second Ctrl-C: stop at once, the journal is on disk
        runner.halt(StopKind.INTERRUPTED, "interrupted")
    finally:
        for row in result.rows:
            if row.status.sends:
                row.status = RowAction.NOT_RUN
                row.message = runner.stopped or "not run"
        result.stop, result.stopped = runner.stop_kind, runner.stopped
        result.pace = runner.pace()
        if result.pace.words():
            result.notes.append(result.pace.words())
        journal.close({**result.totals, "seconds": int(time.perf_counter() - started)})


def _record_settled(runner: Runner, row_plan: RowPlan, entry: Entry) -> None:
    """A create of an earlier run without an answer, found by the plan: journaled as a
    create answered directly is (addr, createdAt, updatedAt, tags), so undo can take it
    back; a downlink found queued is ``exists``."""
    found = f"found on the platform after a lost answer of run {entry.run or 'an earlier run'}"
    if entry.kind == RowKind.DEVICE and row_plan.device is not None:
        answer = _made(row_plan.device, f"created ({found})")
    elif entry.kind == RowKind.USER and row_plan.platform_id is not None:
        answer = Outcome(RowAction.CREATED, row_plan.platform_id, f"created ({found})")
    else:
        answer = Outcome(RowAction.EXISTS, row_plan.platform_id, found)
    # The tags a create that reached the platform sent are this sheet's; undo of that
    # run takes it back.
    runner.record(entry.kind, entry.key, row_plan.row, answer, tags=entry.tags, origin=entry.run)


def _record_settled_update(runner: Runner, update: UpdateEntry, device: dict[str, Any]) -> None:
    """An update of an earlier run without an answer, settled by the device as the plan
    read it: done with its images (undo restores it) or not carried out."""
    of = f"run {update.run or 'an earlier run'}"
    device_id = update.platform_id or _id_of(device)
    if update_done(update, device):
        message = f"updated (found on the platform after a lost answer of {of})"
        outcome = Outcome(
            RowAction.UPDATED, device_id, message, updated_at=_text(device.get("updatedAt"))
        )
        images = (update.before, masked_input(device))
    else:
        message = f"not carried out: the device does not hold the update of {of}"
        outcome = Outcome(RowAction.FAILED, device_id, message)
        images = (update.before, update.before)
    row = update.row or 0
    runner.record(RowKind.DEVICE, update.key, row, outcome, update=images, origin=update.run)


def _write_results(
    result: ApplyResult, sheet: Sheet, plan: Plan, target: Path | None, reports: Iterable[Path]
) -> None:
    """The results workbook (else the next free name; none for DataFrames: ``target``
    None) and the reports; never raises."""
    from provisioner import reports as report_files
    from provisioner.sheets import SheetError, read_tables

    source = sheet_path(sheet)
    reports = list(reports)
    tables = None
    if source is not None or reports:
        try:
            tables = read_tables(sheet, plan.validation.records.tabs.values())
        except SheetError:
            pass  # the sheet changed under us: the workbook is rebuilt from what the report holds
    records = plan.validation.records
    data = result.to_dict()

    def write(path: Path, beside: bool = False) -> tuple[Path, str]:
        """The file written (``beside``: maybe <name>-2.. when Excel holds ``path``), and
        the reason it could not be written, or "" when it was."""
        try:
            written = report_files.write_report(
                data,
                path,
                source=source,
                tables=tables,
                secrets=[*records.secret_values(), *records.key_values()],
                secret_columns=records.secret_columns,
                beside=beside,
            )
        except (report_files.ReportError, OSError) as exc:
            return path, str(exc)
        return written, ""

    if target is not None and source is not None:
        later = [results_path(source, n) for n in range(2, 10)]
        for path in dict.fromkeys([target, *later]):
            _, failed = write(path)
            if failed:
                result.notes.append(f"could not write the results {path.name} ({failed})")
                continue
            result.results = str(path)
            if path != results_path(source):
                result.notes.append(f"results written to {path.name} instead")
            break
        else:
            result.notes.append("the results could not be written anywhere: the journal holds them")
    for path in reports:
        written, failed = write(path, beside=True)
        if failed:
            result.notes.append(f"could not write the report {path} ({failed})")
            continue
        result.reports.append(str(written))
        if written != path:
            result.notes.append(
                f"report written to {written.name} instead: {path.name} could not be replaced "
                "(it is probably open in Excel)"
            )
