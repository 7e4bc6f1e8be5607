"""Taking back what apply's runs did on a platform (``provisioner undo``).

From the journal: devices a run created are deleted, devices it updated are put
back to the values recorded before the update; queued downlinks go with their
devices (the platform deletes them). Only what is as the run left it: a device
whose ``updatedAt`` moved since (somebody edited it, or a later run updated it)
is kept and listed with the reason, and nothing the journal did not create is
ever deleted. Users cannot be deleted through the documented API: they are
listed.

The deletes and restores are requests on apply's executor (``provisioner.runner``)
at apply's concurrency, journalled like a run (``"op": "delete"`` and ``"op":
"restore"`` lines): a DELETE without an answer is settled by looking the id up, a second
undo skips what the first took back, and a device an undo deleted no longer
counts as created, so apply afterwards works as on a fresh platform.

Undo never ends "all taken back" while something a run made may still be on the
platform: a create or update without an outcome on record is listed (exit 1); a
journal line that cannot be read stops the undo before anything is changed when it
stands among the lines of a run taken back that has such requests (what it held
cannot be known), and is skipped with a warning when the rest of the journal proves
it harmless (another platform's run, a run not taken back, or a run whose every
request has its outcome on record).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from provisioner.actions import RowKind, StopKind, UndoStatus
from provisioner.changes import device_input, masked_input, secret_values
from provisioner.errors import ProvisionerError
from provisioner.errors import UndoError as UndoError
from provisioner.events import Events
from provisioner.fields import MASK, instant, normal_addr
from provisioner.frames import Sheet, sheet_name
from provisioner.journal import (
    Entry,
    Images,
    Journal,
    JournalLock,
    JournalState,
    UpdateEntry,
    read_journal,
)
from provisioner.lookup import look_up_devices
from provisioner.pace import PaceStats
from provisioner.platform import (
    NotFound,
    PlatformClient,
    PlatformError,
)
from provisioner.results import Result, Row
from provisioner.runner import MAX_UNKNOWN, Outcome, Request, Runner, StopRun

Device = dict[str, Any]
# A row's check of its device as the lookup found it (None: not on the platform).
_Check = Callable[[Device | None], None]


@dataclass
class UndoRow(Row):
    """One thing a run did, and what undo does about it."""

    kind: str  # device | user
    key: str
    row: int | None
    platform_id: int | None
    status: UndoStatus
    message: str = ""
    run: str = ""
    # A restore: the body to PUT (the device's values with the recorded ones put back) and
    # the updatedAt the device must still have.
    body: dict[str, Any] = field(default_factory=dict, repr=False)
    expected: str = ""
    restored: list[str] = field(default_factory=list)  # the fields put back
    evidence: Entry | None = field(default=None, repr=False)  # a delete: the create's record
    settle: bool = False  # gone already: the journal gets the delete's done line
    sheet: str = ""  # the sheet whose runs made it (the journal's)
    # Kept because the API cannot take it back (a user), not because it changed: nothing
    # undo could do is left, so it does not make the undo incomplete.
    by_rule: bool = False

    COLUMNS = ("run", "restored")


@dataclass
class UndoResult(Result):
    journal: str
    platform: str
    runs: list[str]
    rows: list[UndoRow]
    stop: StopKind = StopKind.NONE
    stopped: str = ""  # the stop, in words
    device_link: str = ""  # a device's page on the platform, {id} for its id (restored ones)
    warnings: list[str] = field(default_factory=list)  # journal lines skipped, and why
    pace: PaceStats | None = None  # how fast the deletes and restores went: None, none sent
    made_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    command: str = "undo"

    @property
    def to_delete(self) -> list[UndoRow]:
        return [r for r in self.rows if r.status == UndoStatus.DELETE]

    @property
    def to_restore(self) -> list[UndoRow]:
        return [r for r in self.rows if r.status == UndoStatus.RESTORE]

    @property
    def ok(self) -> bool:
        """Everything taken back that undo can take back (exit 0): what is left is kept
        by rule only, never a row that changed since the run or has no answer on record."""
        return not self.stopped and all(
            r.status in (UndoStatus.DELETED, UndoStatus.RESTORED, UndoStatus.DONE_BEFORE)
            or (r.status == UndoStatus.KEPT and r.by_rule)
            for r in self.rows
        )

    HEADER = ("journal", "platform", "device_link", "runs", "stopped", "warnings", "pace")


def undo_sheet(
    sheet: Sheet,
    client: PlatformClient,
    *,
    journal_path: Path,
    run: str | None = None,
    events: Events | None = None,
    stop: threading.Event | None = None,
) -> UndoResult:
    """Plan the undo from the journal, ask (``events.confirm(result)``), then delete and
    restore on the runner, at apply's concurrency. Raises UndoError (and ProvisionerError
    for a declined question) before anything is written; ``events`` also hears how far
    the devices are read and the requests are."""
    events = events or Events()
    name = sheet_name(sheet)  # the sheet is not read: the journal holds what its runs made
    with JournalLock(journal_path):
        state = read_journal(journal_path, platform=client.url)
        foreign = state.sheets - {name}
        if foreign:
            raise UndoError(
                f"the journal {journal_path} belongs to the sheet {sorted(foreign)[0]}, not {name}"
            )
        result = plan_undo(state, client, journal_path, run, events.reading)
        for row in result.rows:
            row.sheet = name
        settle = [r for r in result.rows if r.settle]
        if not (result.to_delete or result.to_restore or settle):
            return result
        if (result.to_delete or result.to_restore) and not events.confirm(result):
            raise ProvisionerError("nothing was changed on the platform")
        journal = Journal(journal_path, sheet=name, platform=client.url, fingerprint="undo")
        runner = Runner(client, journal, stop=stop, events=events, same_failures=None)
        try:
            for row in settle:  # gone already, the delete's done line lost: written now
                runner.write_journal(partial(_deleted, journal, row))
                row.status, row.message = UndoStatus.DONE_BEFORE, "no longer on the platform"
            work: list[Request] = [
                *(_Delete(client, row) for row in result.to_delete),
                *(_Restore(client, row) for row in result.to_restore),
            ]
            runner.expect(len(work))
            runner.run(work)
        except StopRun:
            pass  # the journal failed while recording what the lookup settled
        except KeyboardInterrupt:  # the second Ctrl-C: stop at once, the journal is on disk
            runner.halt(StopKind.INTERRUPTED, "interrupted")
        finally:
            result.stop, result.stopped = runner.stop_kind, runner.stopped
            result.pace = runner.pace()
            if result.pace.words():
                result.warnings.append(result.pace.words())
            for row in result.rows:
                if row.status in (UndoStatus.DELETE, UndoStatus.RESTORE):
                    row.status = UndoStatus.NOT_RUN
                    row.message = (
                        "interrupted"
                        if result.stop == StopKind.INTERRUPTED
                        else "not run: the undo stopped"
                    )
            journal.close(dict(result.totals))
    return result


def plan_undo(
    state: JournalState,
    client: PlatformClient,
    journal_path: Path,
    run: str | None,
    reading: Callable[[str], None] | None = None,
) -> UndoResult:
    """What an undo of ``run`` (None: every run on this platform) would delete, restore, keep."""
    runs = [r for r in state.runs if r not in state.undo_runs]  # an undo is not undone
    if not runs:
        raise UndoError(f"the journal {journal_path} records no run against {client.url}")
    if run is not None and run not in runs:
        raise UndoError(
            f"no run {run!r} against {client.url} in {journal_path}; its runs: " + ", ".join(runs)
        )
    chosen = {run} if run is not None else set(runs)
    open_creates = [
        e
        for e in state.unresolved()
        if e.run in chosen and e.kind in (RowKind.DEVICE, RowKind.USER)
    ]
    open_updates = [u for u in state.unsettled_updates() if u.run in chosen]
    open_runs = {e.run for e in open_creates} | {u.run for u in open_updates}
    warnings = _check_lines(state, chosen, open_runs, journal_path, client.url, run is not None)
    later = _order(state)
    # What an undo took back: a device's delete, an update's restore, each after the
    # event it answers (by time: a later update of the same device is not taken back).
    deleted_at = {e.platform_id: e.at for e in state.undone if e.status == UndoStatus.DELETED}
    restored_at = {e.platform_id: e.at for e in state.undone if e.status == UndoStatus.RESTORED}
    rows: list[UndoRow] = []
    created_ids: set[int] = set()
    created = _created_by(state, chosen)
    updated = _updated_by(state, chosen, restored_at)
    # What the journal alone settles first; the devices left to check are read in one
    # lookup (plan's: pages, or per addr several at once) before the question.
    checks: list[tuple[UndoRow, _Check]] = []
    addrs: list[str] = []  # the devices' addrs, as the journal holds them
    for entry in created:
        assert entry.platform_id is not None
        if entry.kind == RowKind.USER:
            rows.append(
                UndoRow(
                    RowKind.USER,
                    entry.key,
                    None,
                    entry.platform_id,
                    UndoStatus.KEPT,
                    "users cannot be deleted through the platform's REST API: delete this "
                    "one in the platform UI if it should go",
                    entry.run,
                    by_rule=True,
                )
            )
            continue
        created_ids.add(entry.platform_id)  # device ids only: a user's id is another count
        done = deleted_at.get(entry.platform_id, "") > entry.at
        row, check = _device_to_delete(entry, chosen, later, done)
        rows.append(row)
        if check is not None:
            checks.append((row, check))
            addrs.append(entry.addr)
    for device_id, updates in updated.items():
        if device_id in created_ids:
            continue  # deleted anyway
        row, check = _device_to_restore(device_id, updates, chosen, later)
        rows.append(row)
        if check is not None:
            checks.append((row, check))
            addrs.append(str(updates[0].before.get("addr") or ""))
    for entry in open_creates:
        rows.append(
            UndoRow(
                entry.kind,
                entry.key,
                None,
                entry.platform_id,
                UndoStatus.UNSETTLED,
                f"its create (run {entry.run}) got no answer on record: it may be on the "
                "platform, and undo cannot prove it made it; apply on this sheet records it "
                "(plan shows whether it is there), then undo takes it back",
                entry.run,
            )
        )
    for update in open_updates:
        rows.append(
            UndoRow(
                RowKind.DEVICE,
                update.key,
                update.row,
                update.platform_id,
                UndoStatus.UNSETTLED,
                f"its update (run {update.run}) got no answer on record: the device may hold "
                "it; apply on this sheet records whether it does, then undo puts it back",
                update.run,
            )
        )
    if checks:
        found, _ = look_up_devices(
            client,
            addrs,
            [row.platform_id for row, _ in checks if row.platform_id],
            progress=reading,
        )
        for row, check in checks:
            device = found.by_id.get(row.platform_id or 0)
            if device is not None:
                client.add_secrets(secret_values(device))
            check(device)
    return UndoResult(
        str(journal_path),
        client.url,
        sorted(chosen, key=runs.index),
        rows,
        device_link=client.device_link,
        warnings=warnings,
    )


def _check_lines(
    state: JournalState,
    chosen: set[str],
    open_runs: set[str],
    path: Path,
    url: str,
    one_run: bool,
) -> list[str]:
    """The warnings for journal lines that cannot be read but are proven harmless; raises
    UndoError (nothing changed) for one that may have held what a run taken back did."""
    warnings = list(state.strays)
    for line in state.damaged:
        where = f"line {line.number} of the journal cannot be read ({line.why}): skipped"
        if line.platform and line.platform != url:
            warnings.append(f"{where}, it stands among a run against {line.platform}")
        elif line.run and line.run not in chosen:
            warnings.append(f"{where}, it stands among run {line.run}, not taken back now")
        elif line.run not in open_runs:
            warnings.append(
                f"{where}, every request of run {line.run or '(no run)'} has its outcome on record"
            )
        else:
            raise UndoError(
                f"the journal {path} cannot be read at line {line.number} ({line.why}): it "
                f"stands among the lines of run {line.run}, which has requests without an "
                "outcome on record, so what the line held cannot be known; nothing was "
                f"changed. Put line {line.number} back from a copy of the journal, or delete "
                "it: undo then lists what it cannot prove it made"
            )
    for number, run in state.orphans:
        if one_run and run not in chosen:
            warnings.append(f"line {number} names run {run}, which no start line opens: skipped")
            continue
        raise UndoError(
            f"the journal {path} names run {run} at line {number}, but no start line opens "
            "that run (a damaged or deleted start line?), so its platform cannot be known; "
            "nothing was changed. Put its start line back from a copy of the journal, or "
            "take back one run with --run"
        )
    return warnings


def _created_by(state: JournalState, chosen: set[str]) -> list[Entry]:
    """The devices and users the chosen runs created, each once (the last record of it)."""
    found: dict[tuple[str, int], Entry] = {}
    for entry in state.created:
        if entry.run in chosen and entry.platform_id is not None:
            found[(entry.kind, entry.platform_id)] = entry
    return list(found.values())


def _updated_by(
    state: JournalState, chosen: set[str], restored_at: dict[int | None, str]
) -> dict[int, list[UpdateEntry]]:
    """The chosen runs' updates, by device, that no undo has put back since."""
    updates: dict[int, list[UpdateEntry]] = {}
    for update in state.updates:
        if (
            update.run in chosen
            and update.event == "done"
            and update.status == "updated"
            and update.platform_id is not None
            and restored_at.get(update.platform_id, "") <= update.at
        ):
            updates.setdefault(update.platform_id, []).append(update)
    return updates


# One event of a device: (when, run, the updatedAt it left, "" unknown; kind).
_Event = tuple[str, str, str, str]


def _order(state: JournalState) -> dict[int, list[_Event]]:
    """Device id -> every create, update and undo restore that touched it, in time order.

    An update that an undo put back later is left out: the restore stands for it.
    """
    touched: dict[int, list[_Event]] = {}
    for entry in state.created:
        if entry.kind == RowKind.DEVICE and entry.platform_id is not None:
            touched.setdefault(entry.platform_id, []).append(
                (entry.at, entry.run, entry.updated_at, "create")
            )
    for update in state.updates:
        if update.event == "done" and update.status == "updated" and update.platform_id:
            touched.setdefault(update.platform_id, []).append(
                (update.at, update.run, update.updated_at, "update")
            )
    for entry in state.undone:
        if entry.status == UndoStatus.RESTORED and entry.platform_id is not None:
            touched.setdefault(entry.platform_id, []).append(
                (entry.at, entry.run, entry.updated_at, "restore")
            )
    for events in touched.values():
        events.sort()
        restores = [at for at, _, _, kind in events if kind == "restore"]
        events[:] = [e for e in events if e[3] != "update" or not any(at > e[0] for at in restores)]
    return touched


def _last_change(
    device_id: int, chosen: set[str], touched: dict[int, list[_Event]]
) -> tuple[str, str]:
    """(the updatedAt the device was left with by the chosen runs, or an undo since them;
    a later run that changed it after that)."""
    left, later = "", ""
    mine = False
    for _, run, stamp, kind in touched.get(device_id, []):
        if run in chosen or (kind == "restore" and mine):
            left, later, mine = stamp, "", True
        elif mine and not later:
            later = run
    return left, later


def _left_by(
    row: UndoRow, chosen: set[str], touched: dict[int, list[_Event]], what: str
) -> str | None:
    """The updatedAt the chosen runs left the row's device with; None (and the row kept)
    when a later run changed it since: that run is undone first."""
    left, later_run = _last_change(row.platform_id or 0, chosen, touched)
    if later_run:
        row.status = UndoStatus.KEPT
        row.message = f"{what} later by run {later_run}: undo that run first"
        return None
    return left


def _device_to_delete(
    entry: Entry,
    chosen: set[str],
    touched: dict[int, list[_Event]],
    taken_back: bool,
) -> tuple[UndoRow, _Check | None]:
    """The row of a device a run created, and the check of the device the lookup finds
    (None: the journal alone decides: taken back already, or updated by a later run)."""
    assert entry.platform_id is not None
    row = UndoRow(
        RowKind.DEVICE, entry.key, None, entry.platform_id, UndoStatus.DELETE, run=entry.run
    )
    row.evidence = entry
    if taken_back:
        row.status, row.message = UndoStatus.DONE_BEFORE, "taken back by an earlier undo"
        return row, None
    left = _left_by(row, chosen, touched, "updated")
    if left is None:
        return row, None

    def check(device: Device | None) -> None:
        if device is None:
            row.status, row.message = UndoStatus.DONE_BEFORE, "no longer on the platform"
            row.settle = True  # a delete whose answer or done line was lost: written down now
            return
        if _kept(row, _not_ours(device, entry) or _changed_since(device, left, entry.key)):
            return
        row.expected = left
        row.message = f"created by run {entry.run}: delete it (with its queued downlinks)"

    return row, check


def _kept(row: UndoRow, reason: str) -> bool:
    """Whether the row's device is kept for ``reason`` ("": it is not), said on the row."""
    if reason:
        row.status, row.message = UndoStatus.KEPT, reason
    return bool(reason)


def _not_ours(device: dict[str, Any], entry: Entry) -> str:
    """Why the device at the journal's id may not be the one the run created, or ""."""
    if not entry.addr:
        return (
            "the journal cannot prove it made this device (it records no addr for it, as a "
            "journal of an older version does): kept"
        )
    if normal_addr(device.get("addr")) != normal_addr(entry.addr):
        return (
            f"the id {device.get('id')} belongs to another device now "
            f"(addr {device.get('addr')}): kept"
        )
    made, now = instant(entry.created_at), instant(device.get("createdAt"))
    if made is not None and now is not None and made != now:
        return (
            f"the id {device.get('id')} belongs to a device created at "
            f"{device.get('createdAt')}: kept"
        )
    return ""


def _device_to_restore(
    device_id: int,
    updates: list[UpdateEntry],
    chosen: set[str],
    touched: dict[int, list[_Event]],
) -> tuple[UndoRow, _Check | None]:
    """The row of a device a run updated, and the check of the device the lookup finds
    (None: updated again by a later run)."""
    first, last = updates[0], updates[-1]
    row = UndoRow(
        RowKind.DEVICE, first.key, first.row, device_id, UndoStatus.RESTORE, run=first.run
    )
    left = _left_by(row, chosen, touched, "updated again")
    if left is None:
        return row, None

    def check(device: Device | None) -> None:
        if device is None:
            _kept(row, "no longer on the platform")
            return
        reason = _changed_since(device, left or last.updated_at, first.key, after=last.after)
        if not reason and not isinstance(device.get("initialConfig"), dict | None):
            reason = "its initialConfig is not an object: kept"
        if _kept(row, reason):
            return
        row.body, row.restored, hidden = _restored_body(device, first.before, last.after)
        row.expected = str(device.get("updatedAt") or "")
        if not _kept(row, "" if row.restored else "nothing the journal holds can be put back"):
            row.message = f"updated by run {first.run}: put back {', '.join(row.restored)}"
        if hidden:
            row.message += (
                f" ({', '.join(hidden)} cannot be put back: the journal never holds keys)"
            )

    return row, check


def _changed_since(
    device: dict[str, Any], left: str, key: str, *, after: dict[str, Any] | None = None
) -> str:
    """Why the device is not as the run left it, or ""."""
    now = device.get("updatedAt")
    # The journal's key is the row's match key (a serial, or an addr in its one form).
    if key != str(device.get("serial") or "").strip() and normal_addr(key) != normal_addr(
        device.get("addr")
    ):
        return f"the id {device.get('id')} belongs to another device now: kept"
    if left:
        if not _same_time(now, left):
            return f"changed on the platform since the run (at {now or 'an unknown time'}): kept"
        return ""
    # A journal of an older version holds no updatedAt: by the values it holds.
    if after is not None:
        current = masked_input(device)
        if any(current.get(k) != v for k, v in after.items()):
            return "changed on the platform since the run: kept"
        return ""
    if device.get("updatedAt") and device.get("updatedAt") != device.get("createdAt"):
        return f"changed on the platform since it was created (at {now}): kept"
    return ""


def _same_time(a: Any, b: Any) -> bool:
    """Two RFC 3339 times as instants (precision and zone aside); as text if not times."""
    first, second = instant(a), instant(b)
    if first is not None and second is not None:
        return first == second
    return bool(a == b)


def _restored_body(
    device: dict[str, Any], before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], list[str], list[str]]:
    """(the PUT body, the fields put back, the keys that cannot be) from the recorded images."""
    body = device_input(device)
    restored: list[str] = []
    hidden: list[str] = []
    for name, old in before.items():
        if name == "addr" or after.get(name) == old:
            continue
        if name == "initialConfig" and isinstance(old, dict):
            config = dict(body.get("initialConfig") or {})
            now = after.get(name) if isinstance(after.get(name), dict) else {}
            for key in sorted(set(old) | set(now or {})):
                value, changed = old.get(key), (now or {}).get(key)
                if value == changed:
                    continue
                if value == MASK or changed == MASK:
                    hidden.append(f"cfg:{key}")
                    continue
                if key in old:
                    config[key] = value
                else:
                    config.pop(key, None)
                restored.append(f"cfg:{key}")
            body["initialConfig"] = config
            continue
        body[name] = old
        restored.append(name)
    return body, restored, hidden


class _UndoRequest(Request):
    """A delete or restore of one device, carried out by the runner as apply's rows are."""

    op = ""

    def __init__(self, client: PlatformClient, row: UndoRow) -> None:
        assert row.platform_id is not None
        self.client = client
        self.undo = row
        self.device_id = row.platform_id
        self.kind, self.key, self.row = row.kind, row.key, row.row or 0

    def intent(self) -> dict[str, Any]:
        return {"op": self.op, "platform_id": self.device_id}

    def recorded(self, outcome: Outcome) -> dict[str, Any]:
        return {"op": self.op}

    def finish(self, outcome: Outcome) -> None:
        self.undo.status, self.undo.message = UndoStatus(outcome.status), outcome.message


class _Delete(_UndoRequest):
    op = "delete"

    def prepare(self) -> Outcome | None:
        # Read again right before: the question may have stood open while somebody edited it.
        device = self.client.get_device(self.device_id)
        if device is None:
            return Outcome(UndoStatus.DONE_BEFORE, self.device_id, "no longer on the platform")
        assert self.undo.evidence is not None
        reason = _not_ours(device, self.undo.evidence) or _changed_since(
            device, self.undo.expected, self.key
        )
        if reason:
            return Outcome(
                UndoStatus.KEPT, self.device_id, reason.replace("since the run", "meanwhile")
            )
        return None

    def send(self) -> Outcome:
        self.client.delete_device(self.device_id)
        return Outcome(UndoStatus.DELETED, self.device_id, "deleted")

    def find_after_lost(self) -> Outcome | None:
        if self.client.get_device(self.device_id) is None:
            return Outcome(UndoStatus.DELETED, self.device_id, "deleted")  # the answer got lost
        return None

    def after_refusal(self, exc: PlatformError, runner: Runner) -> Outcome | None:
        if isinstance(exc, NotFound) and self.client.get_device(self.device_id) is None:
            return Outcome(UndoStatus.DELETED, self.device_id, "deleted")  # gone meanwhile
        if isinstance(exc, NotFound) or exc.status in (405, 501):
            runner.halt(
                StopKind.NO_DELETES,
                "stopped: this platform does not offer device deletion through its REST "
                f"API (DELETE answered HTTP {exc.status}); nothing else was changed",
            )
            return Outcome(UndoStatus.FAILED, self.device_id, "not deleted: see above")
        return None

    def unanswered(self) -> str:
        return f"no answer {MAX_UNKNOWN} times and still on the platform: run undo again"


def _deleted(journal: Journal, row: UndoRow) -> None:
    """The done line of a delete found made (its own answer lost in an earlier undo)."""
    journal.outcome(
        "done",
        row.kind,
        row.key,
        row.row or 0,
        status=UndoStatus.DELETED,
        platform_id=row.platform_id,
        op="delete",
    )


class _Restore(_UndoRequest):
    op = "restore"

    def __init__(self, client: PlatformClient, row: UndoRow) -> None:
        super().__init__(client, row)
        self.images: Images | None = None

    def prepare(self) -> Outcome | None:
        device = self.client.get_device(self.device_id)
        if device is None or not _same_time(device.get("updatedAt") or "", self.undo.expected):
            return Outcome(
                UndoStatus.KEPT, self.device_id, "changed on the platform while the undo ran: kept"
            )
        self.images = (masked_input(device), masked_input(self.undo.body))
        return None

    def intent(self) -> dict[str, Any]:
        return {**super().intent(), "update": self.images}

    def recorded(self, outcome: Outcome) -> dict[str, Any]:
        return {"op": self.op, "update": self.images}

    def send(self) -> Outcome:
        return self._restored(self.client.update_device(self.device_id, self.undo.body))

    def find_after_lost(self) -> Outcome | None:
        device = self.client.get_device(self.device_id)
        if device is not None and masked_input(device) == masked_input(
            {**device, **self.undo.body}
        ):
            return self._restored(device)  # it was put back; the answer got lost
        return None

    def _restored(self, device: dict[str, Any]) -> Outcome:
        return Outcome(
            UndoStatus.RESTORED,
            self.device_id,
            f"put back: {', '.join(self.undo.restored)}",
            updated_at=str(device.get("updatedAt") or ""),
        )

    def unanswered(self) -> str:
        return f"no answer {MAX_UNKNOWN} times and not put back: run undo again"
