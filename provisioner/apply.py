"""Apply: carry out a plan's creates on the platform, exactly once, with a journal.

Devices first, then users, then downlinks (queued by the id of the device
found or created). Each create is announced in the journal before it is sent
and its outcome recorded after. When an answer is lost (timeout, reset, a
500), the device is looked up by its addr, which the platform keeps unique,
before anything is sent again; a 409 on the addr is resolved the same way.
A 401/403 stops the run at once; so does ``stop`` being set (Ctrl-C), after
the requests in flight have finished.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

from provisioner.journal import Journal, JournalState
from provisioner.plan import Plan, RowPlan, normal_addr, normal_key
from provisioner.platform import (
    AuthError,
    Conflict,
    InvalidRequest,
    NotFound,
    PlatformClient,
    PlatformError,
    ServerError,
    TransportError,
    UnknownOutcome,
    f,
)
from provisioner.records import Record

# How often one row's create may end without an answer before the row fails.
MAX_UNKNOWN = 6
# How long Ctrl-C waits for requests already sent.
STOP_GRACE_SECONDS = 30.0


@dataclass
class ApplyRow:
    """What happened to one sheet row."""

    sheet: str
    row: int
    kind: str
    key: str
    status: str  # created | queued | exists | differs | blocked | failed | not run
    platform_id: int | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet,
            "row": self.row,
            "kind": self.kind,
            "key": self.key,
            "status": self.status,
            "platform_id": self.platform_id,
            "message": self.message,
            "errors": [],
            "warnings": [],
        }


@dataclass
class ApplyResult:
    """The outcome of one apply run; ``to_dict()`` is its --report .json."""

    source: str
    template: str
    platform: str
    run: str
    journal: str
    rows: list[ApplyRow]
    stopped: str = ""  # why the run stopped early: "interrupted" or the auth error
    made_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    command: str = "apply"

    @property
    def totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for row in self.rows:
            totals[row.status] = totals.get(row.status, 0) + 1
        return totals

    @property
    def changed(self) -> int:
        return sum(1 for r in self.rows if r.status in ("created", "queued"))

    @property
    def ok(self) -> bool:
        return not self.stopped and all(
            r.status not in ("failed", "blocked", "not run") for r in self.rows
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "source": self.source,
            "template": self.template,
            "platform": self.platform,
            "run": self.run,
            "journal": self.journal,
            "made_at": self.made_at,
            "ok": self.ok,
            "stopped": self.stopped,
            "totals": self.totals,
            "problems": [],
            "rows": [r.to_dict() for r in self.rows],
        }


class _StopRun(Exception):
    """A 401/403 mid-run: nothing more may be sent."""


@dataclass
class _Task:
    plan: RowPlan
    record: Record
    result: ApplyRow


class Applier:
    """Runs one plan. Thread-safe where workers meet: the journal and the results."""

    def __init__(
        self,
        plan: Plan,
        client: PlatformClient,
        journal: Journal,
        earlier: JournalState,
        *,
        match_key: str,
        concurrency: int = 8,
        stop: threading.Event | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.plan = plan
        self.client = client
        self.journal = journal
        self.earlier = earlier
        self.match_key = match_key
        self.concurrency = concurrency
        self.stop = stop or threading.Event()
        self.progress = progress
        self.stopped = ""
        self._done = 0
        self._total = 0
        self._lock = threading.Lock()

    # --- the run

    def run(self) -> ApplyResult:
        records = self.plan.validation.records
        by_row = {
            (r.sheet, r.row): r for r in [*records.devices, *records.users, *records.downlinks]
        }
        results: list[ApplyRow] = []
        stages: dict[str, list[_Task]] = {"device": [], "user": [], "downlink": []}
        for row_plan in self.plan.rows:
            result = ApplyRow(
                row_plan.sheet,
                row_plan.row,
                row_plan.kind,
                row_plan.key,
                row_plan.action,
                row_plan.platform_id,
                row_plan.reason,
            )
            results.append(result)
            if row_plan.action in ("create", "unknown", "queue"):
                record = by_row[(row_plan.sheet, row_plan.row)]
                stages[row_plan.kind].append(_Task(row_plan, record, result))
        self._total = sum(len(tasks) for tasks in stages.values())
        # Downlinks go to the device found by the plan or created just now.
        device_ids: dict[str, int] = {
            normal_key(self.match_key, r.key): r.platform_id
            for r in self.plan.rows
            if r.kind == "device"
            and r.platform_id is not None
            and r.action in ("exists", "differs")
        }
        self._run_stage(stages["device"], self._device)
        for task in stages["device"]:
            if task.result.status == "created" and task.result.platform_id is not None:
                device_ids[normal_key(self.match_key, task.record.key)] = task.result.platform_id
        self._run_stage(stages["user"], self._user)
        for task in stages["downlink"]:
            key = normal_key(self.match_key, task.record.key)
            task.result.platform_id = task.plan.platform_id or device_ids.get(key)
        self._run_stage(stages["downlink"], self._downlink)
        for row in results:
            if row.status in ("create", "queue", "unknown"):
                row.status = "not run"
                row.message = self.stopped or "not run"
        return ApplyResult(
            source=self.plan.source,
            template=self.plan.template,
            platform=self.plan.platform,
            run=self.journal.run,
            journal=str(self.journal.path),
            rows=results,
            stopped=self.stopped,
        )

    def _run_stage(self, tasks: list[_Task], work: Callable[[_Task], None]) -> None:
        if not tasks or self.stop.is_set():
            return
        pending: set[Future[None]] = set()
        queue = iter(tasks)
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            while True:
                # Keep at most `concurrency` rows in flight, so a stop leaves few behind.
                while len(pending) < self.concurrency and not self.stop.is_set():
                    task = next(queue, None)
                    if task is None:
                        break
                    pending.add(pool.submit(self._guarded, work, task))
                if not pending:
                    break
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in finished:
                    future.result()
        except KeyboardInterrupt:
            self.stop.set()
            self.stopped = self.stopped or "interrupted"
            # Requests already sent may finish; the wait is bounded, and a row still in
            # flight after it is left to the next run (its intent is in the journal).
            wait(pending, timeout=STOP_GRACE_SECONDS)
        finally:
            pool.shutdown(wait=not self.stop.is_set(), cancel_futures=True)

    def _guarded(self, work: Callable[[_Task], None], task: _Task) -> None:
        if self.stop.is_set():
            return
        try:
            work(task)
        except _StopRun:
            pass
        finally:
            with self._lock:
                self._done += 1
                done = self._done
            if self.progress:
                self.progress(done, self._total)

    def _attempts(self) -> Iterator[int]:
        """Tries at one row: a short, growing pause between them; none after a stop."""
        for attempt in range(MAX_UNKNOWN):
            if attempt:
                self.stop.wait(min(0.2 * 2**attempt, 5.0))
            if self.stop.is_set():
                return
            yield attempt

    def _halt(self, exc: AuthError) -> NoReturn:
        self.stopped = f"stopped: the platform refused the token ({exc})"
        self.stop.set()
        raise _StopRun

    # --- devices

    def _device(self, task: _Task) -> None:
        record, result = task.record, task.result
        key = normal_key(self.match_key, record.key)
        # The plan looked the platform up just now and did not find this device, so a
        # "done" in the journal (a device deleted since) does not stop it being created.
        for _ in self._attempts():
            self.journal.intent("device", key, record.row)
            try:
                device = self.client.create_device(record.body)
            except (UnknownOutcome, ServerError) as exc:
                self.journal.outcome(
                    "unknown", "device", key, record.row, status="unknown", message=str(exc)
                )
                found = self._ours_by_addr(record)
                if found is not None:
                    self._record(
                        result,
                        "device",
                        key,
                        record.row,
                        "created",
                        found["id"],
                        "created (confirmed by looking it up after a lost answer)",
                    )
                    return
                continue  # not there: it is safe to send it again
            except Conflict as exc:
                try:
                    found = self._ours_by_addr(record)
                except PlatformError as lookup_error:
                    self._record(
                        result,
                        "device",
                        key,
                        record.row,
                        "failed",
                        None,
                        f"409, and the lookup failed ({lookup_error}): run again",
                    )
                    return
                if found is not None:
                    self._record(
                        result,
                        "device",
                        key,
                        record.row,
                        "created",
                        found["id"],
                        "created (confirmed by looking it up after a 409)",
                    )
                else:
                    self._record(
                        result,
                        "device",
                        key,
                        record.row,
                        "failed",
                        None,
                        f"the addr is taken by another device: {exc.message}",
                    )
                return
            except AuthError as exc:
                self.journal.outcome(
                    "failed", "device", key, record.row, status="stopped", message=str(exc)
                )
                self._halt(exc)
            except PlatformError as exc:
                self._record(result, "device", key, record.row, "failed", None, _why(exc))
                return
            self._record(result, "device", key, record.row, "created", device.get("id"), "created")
            return
        if self.stop.is_set():
            return  # stopped between tries: the row is left for the next run
        self._record(
            result,
            "device",
            key,
            record.row,
            "failed",
            None,
            f"no answer {MAX_UNKNOWN} times and not found on the platform: run again",
        )

    def _ours_by_addr(self, record: Record) -> dict[str, Any] | None:
        """The device with this row's addr, if it is the one this row asks for."""
        addr = str(record.body.get("addr", ""))
        try:
            found = self.client.list_devices([f("addr", "eq", addr)])
        except AuthError as exc:
            self._halt(exc)
        found = [d for d in found if normal_addr(d.get("addr")) == normal_addr(addr)]
        if len(found) != 1:
            return None
        device = found[0]
        serial = record.body.get("serial")
        if serial is not None and str(device.get("serial") or "").strip() != str(serial).strip():
            return None
        return device

    # --- users

    def _user(self, task: _Task) -> None:
        record, result = task.record, task.result
        key = record.key
        if self.earlier.done("user", key) is not None:
            entry = self.earlier.done("user", key)
            assert entry is not None
            self._finish(result, "created", entry.platform_id, f"created by run {entry.run}")
            return
        for attempt in self._attempts():
            self.journal.intent("user", key, record.row)
            try:
                user = self.client.create_user(record.body)
            except (UnknownOutcome, ServerError) as exc:
                self.journal.outcome(
                    "unknown", "user", key, record.row, status="unknown", message=str(exc)
                )
                continue  # the email is unique: a resend cannot make a second user
            except Conflict:
                status = "created" if attempt else "exists"
                message = (
                    "created (confirmed by a 409 after a lost answer)"
                    if attempt
                    else "a user with this email exists"
                )
                self._record(result, "user", key, record.row, status, None, message)
                return
            except AuthError as exc:
                if exc.status == 403:  # this token may not create users; devices went fine
                    self._record(result, "user", key, record.row, "failed", None, _why(exc))
                    return
                self._halt(exc)
            except PlatformError as exc:
                self._record(result, "user", key, record.row, "failed", None, _why(exc))
                return
            self._record(result, "user", key, record.row, "created", user.get("id"), "created")
            return
        if self.stop.is_set():
            return  # stopped between tries: the row is left for the next run
        self._record(
            result,
            "user",
            key,
            record.row,
            "failed",
            None,
            f"no answer {MAX_UNKNOWN} times: run again",
        )

    # --- downlinks

    def _downlink(self, task: _Task) -> None:
        record, result = task.record, task.result
        kind = getattr(record, "type", "")
        key = f"{normal_key(self.match_key, record.key)}/{kind}"
        if self.earlier.done("downlink", key) is not None:
            self._finish(result, "queued", result.platform_id, "queued by an earlier run")
            return
        if result.platform_id is None:
            self._finish(result, "failed", None, "its device was not created")
            return
        for _ in self._attempts():
            self.journal.intent("downlink", key, record.row)
            try:
                self.client.queue_downlink(result.platform_id, kind, record.body)
            except (UnknownOutcome, ServerError) as exc:
                self.journal.outcome(
                    "unknown", "downlink", key, record.row, status="unknown", message=str(exc)
                )
                continue  # a new downlink replaces the queued one of its type: resending is safe
            except AuthError as exc:
                if exc.status == 403:
                    self._record(result, "downlink", key, record.row, "failed", None, _why(exc))
                    return
                self._halt(exc)
            except (InvalidRequest, NotFound, PlatformError) as exc:
                self._record(result, "downlink", key, record.row, "failed", None, _why(exc))
                return
            self._record(
                result,
                "downlink",
                key,
                record.row,
                "queued",
                result.platform_id,
                f"{kind} downlink queued",
            )
            return
        if self.stop.is_set():
            return  # stopped between tries: the row is left for the next run
        self._record(
            result,
            "downlink",
            key,
            record.row,
            "failed",
            None,
            f"no answer {MAX_UNKNOWN} times: run again",
        )

    # --- bookkeeping

    def _record(
        self,
        result: ApplyRow,
        kind: str,
        key: str,
        row: int,
        status: str,
        platform_id: int | None,
        message: str,
    ) -> None:
        event = "failed" if status == "failed" else "done"
        self.journal.outcome(
            event, kind, key, row, status=status, platform_id=platform_id, message=message
        )
        self._finish(result, status, platform_id, message)

    @staticmethod
    def _finish(result: ApplyRow, status: str, platform_id: int | None, message: str) -> None:
        result.status = status
        if platform_id is not None:
            result.platform_id = platform_id
        result.message = message


def _why(exc: PlatformError) -> str:
    if isinstance(exc, TransportError):
        return f"could not reach the platform ({exc}): run again"
    return f"the platform refused it: {exc}"


def reconcile(plan: Plan, earlier: JournalState, journal: Journal, match_key: str) -> int:
    """Settle requests of earlier runs that got no answer, by what the fresh plan found.

    A device or user the plan found on the platform was created: that is recorded. The
    rest stay open and are sent again (and looked up first if an answer is lost again).
    """
    settled = 0
    unanswered = {(e.kind, e.key) for e in earlier.unresolved()}
    for row in plan.rows:
        if row.action not in ("exists", "differs") or row.kind not in ("device", "user"):
            continue
        key = normal_key(match_key, row.key) if row.kind == "device" else row.key
        if (row.kind, key) in unanswered:
            journal.outcome(
                "done",
                row.kind,
                key,
                row.row,
                status="exists",
                platform_id=row.platform_id,
                message="found on the platform after a lost answer",
            )
            settled += 1
    return settled


def pending(plan: Plan, earlier: JournalState, match_key: str) -> int:
    """How many rows this run would send: the plan's creates less what the journal has done."""
    count = 0
    for row in plan.rows:
        if row.action not in ("create", "queue", "unknown"):
            continue
        key = normal_key(match_key, row.key)
        if row.kind == "downlink":
            record = next(
                r
                for r in plan.validation.records.downlinks
                if (r.sheet, r.row) == (row.sheet, row.row)
            )
            key = f"{key}/{getattr(record, 'type', '')}"
        if earlier.done(row.kind, key) is None:
            count += 1
    return count


def apply_plan(
    plan: Plan,
    client: PlatformClient,
    journal: Journal,
    earlier: JournalState,
    *,
    match_key: str,
    concurrency: int = 8,
    stop: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ApplyResult:
    """Carry out the plan's create and queue actions; see the module docstring."""
    started = time.perf_counter()
    result = Applier(
        plan,
        client,
        journal,
        earlier,
        match_key=match_key,
        concurrency=concurrency,
        stop=stop,
        progress=progress,
    ).run()
    journal.close({**result.totals, "seconds": int(time.perf_counter() - started)})
    return result
