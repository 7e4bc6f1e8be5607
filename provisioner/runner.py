"""The one executor: every request a run writes to the platform goes through ``Runner``.

Apply hands it creates (devices, users), queued downlinks and updates; undo hands it
deletes and restores. Each is a ``Request``: one small protocol that says how to send
it, how to tell from the platform whether a request whose answer got lost was carried
out, and what the journal keeps of it. The runner owns what every run shares:

- bounded concurrency (``run_bounded``: at most N in flight, none begun after a stop);
- the journal: an intent before each request, its outcome after (done, failed, or
  unknown when no answer came and nothing settles it), so the next run can settle it;
- a lost answer (UnknownOutcome, a 5xx after the client's retries, an answer that may
  hide a write) settled by reading the platform before anything is sent again, tried
  ``MAX_UNKNOWN`` times with a growing pause (``attempts``);
- stop reasons (``StopKind``): a refused token, an unreachable platform, an unwritable
  journal, Ctrl-C, and what a request itself declares a stop (a platform without
  updates or deletes); the first stop wins, the requests in flight finish;
- progress and lines for the installer, through the run's ``Events``.

Requests and the protocol are modelled on s3transfer's one executor for cp, sync and
rm: the caller builds the list, the runner carries it out and tells its subscribers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from provisioner.actions import RowAction, StopKind, UndoStatus
from provisioner.errors import ProvisionerError
from provisioner.events import Events
from provisioner.journal import Journal
from provisioner.pace import PaceStats
from provisioner.platform import (
    AuthError,
    BadAnswer,
    Conflict,
    PlatformClient,
    PlatformError,
    RateLimited,
    ServerError,
    TransportError,
    UnknownOutcome,
)

# The most requests in flight at once unless --concurrency says otherwise (apply's, undo's);
# the client's pace finds how many the platform takes, up to this.
CONCURRENCY = 32
# How often one request may end without an answer before its row fails.
MAX_UNKNOWN = 6
# How long Ctrl-C waits for requests already sent.
STOP_GRACE_SECONDS = 30.0
# The first this many requests failing with one answer, none through: the run stops.
SAME_FAILURES = 10
# The failed status of every row enum (RowAction.FAILED, UndoStatus.FAILED).
FAILED = "failed"

T = TypeVar("T")


class StopRun(Exception):
    """Nothing more may be sent: the reason is on the Runner."""


def attempts(stop: threading.Event) -> Iterator[int]:
    """The tries at one request whose answer got lost: MAX_UNKNOWN at most, a short,
    growing pause between them; none after a stop."""
    for attempt in range(MAX_UNKNOWN):
        if attempt:
            stop.wait(min(0.2 * 2**attempt, 5.0))
        if stop.is_set():
            return
        yield attempt


def run_bounded(
    items: Iterable[T],
    work: Callable[[T], None],
    *,
    concurrency: int,
    stop: threading.Event,
    interrupted: Callable[[], None],
    say: Callable[[str], None] | None = None,
    window: Callable[[], int] | None = None,
) -> None:
    """``work(item)`` for each item, at most ``concurrency`` at once (and at most
    ``window()``, the pace's, when given), none begun after ``stop`` is set (the
    runner's requests, verify's reads of each device's data).
    ``work`` handles its own errors. Ctrl-C calls ``interrupted()`` (the run records its
    stop), sets ``stop`` and gives the requests in flight up to STOP_GRACE_SECONDS to
    finish; a second Ctrl-C ends that wait at once (KeyboardInterrupt goes up), and a
    request still in flight after it is left to the next run, which settles it by its
    intent in the journal."""
    pending: set[Future[None]] = set()
    queue = iter(items)
    pool = ThreadPoolExecutor(max_workers=concurrency)
    try:
        while True:
            # Keep at most `concurrency` items in flight, so a stop leaves few behind.
            limit = concurrency if window is None else min(concurrency, window())
            while len(pending) < limit and not stop.is_set():
                item = next(queue, None)
                if item is None:
                    break
                pending.add(pool.submit(work, item))
            if not pending:
                break
            _, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
    except KeyboardInterrupt:
        interrupted()
        stop.set()
        busy = sum(1 for future in pending if not future.done())
        if busy and say is not None:
            say(
                f"stopping: waiting up to {STOP_GRACE_SECONDS:.0f} s for "
                f"{busy} {'request' if busy == 1 else 'requests'} in flight "
                "(Ctrl-C again to stop at once; the journal settles them next run)"
            )
        wait(pending, timeout=STOP_GRACE_SECONDS)
    finally:
        pool.shutdown(wait=not stop.is_set(), cancel_futures=True)


@dataclass
class Outcome:
    """How one request ended (``status``: the row enum's value, e.g. "created", "deleted")."""

    status: str
    platform_id: int | None
    message: str
    changes: list[Any] = field(default_factory=list)  # an update's, field by field
    updated_at: str = ""  # the device's updatedAt in the answer: what undo checks it against
    evidence: dict[str, str] = field(default_factory=dict)  # a create's: addr, created_at
    # No clear answer and no lookup to settle it: the request may have been carried out,
    # so the journal keeps it "unknown" for the next run to settle (the row fails).
    open: bool = False

    @property
    def failed(self) -> bool:
        return self.status == FAILED


class Request:
    """One request and how its lost answer or a 409 is settled.

    ``kind``, ``key``, ``row`` name it in the journal; a subclass implements ``send`` and
    ``finish`` (the outcome into its row) and whichever of the rest its kind needs.
    """

    kind: str = ""
    key: str = ""
    row: int = 0
    # Whether its failure counts toward the early stop of a run whose first rows all fail
    # alike (a create does; a downlink to a device that failed to be made does not).
    counts_alike = True

    def prepare(self) -> Outcome | None:
        """Before the first intent: an outcome that makes sending needless, else None."""
        return None

    def intent(self) -> dict[str, Any]:
        """What the journal's intent line keeps besides kind, key and row (the keywords of
        ``Journal.intent``); also written with an unknown outcome."""
        return {}

    def recorded(self, outcome: Outcome) -> dict[str, Any]:
        """What the journal's outcome line keeps besides the outcome's own fields."""
        return {}

    def before_resend(self) -> Outcome | None:
        """Before a request is sent again: an outcome that forbids it, else None."""
        return None

    def send(self) -> Outcome:
        raise NotImplementedError

    def find_after_lost(self) -> Outcome | None:
        """After a lost answer: the outcome if the platform shows one; None: send again."""
        return None

    def after_conflict(self, exc: Conflict, lost: int) -> Outcome | None:
        """After a 409 (``lost``: how many answers of this request got lost before it)."""
        return None

    def after_refusal(self, exc: PlatformError, runner: Runner) -> Outcome | None:
        """The outcome after another refusal (it may stop the run); None: the refusal's
        own words."""
        return None

    def unanswered(self) -> str:
        """The row's words when no try got an answer and the platform shows no outcome."""
        return f"no answer {MAX_UNKNOWN} times and not found on the platform: run again"

    def finish(self, outcome: Outcome) -> None:
        """The outcome into the row the caller reports."""
        raise NotImplementedError


class Runner:
    """Carries out requests; thread-safe where workers meet (journal, counts, the stop)."""

    def __init__(
        self,
        client: PlatformClient,
        journal: Journal,
        *,
        concurrency: int = CONCURRENCY,
        stop: threading.Event | None = None,
        events: Events | None = None,
        same_failures: int | None = SAME_FAILURES,
        slower: str = "",
    ) -> None:
        self.client = client
        self.journal = journal
        self.concurrency = concurrency
        self.stop = stop or threading.Event()
        self.events = events or Events()
        self.same_failures = same_failures  # None: every request is sent (--keep-going)
        self.slower = slower  # how to send more slowly, for a rate limit's words ("--max-rps")
        self.stop_kind = StopKind.NONE
        self.stopped = ""  # the stop's words for the installer
        self._through = False  # a request went through: no early stop in this run
        self._first_failures: list[str] = []
        self._done = 0
        self._failed = 0
        self._total = 0
        self._lock = threading.Lock()

    def pace(self) -> PaceStats:
        """What the command's requests met (the lookups before the run's too): how fast,
        how many at once, the platform's limits."""
        return self.client.pace.stats()

    def expect(self, total: int) -> None:
        """How many requests the whole run has (over all its ``run`` calls): the bar's total,
        shown from the start (none for a run that sends nothing)."""
        self._total = total
        if total:
            self.events.progress(0, total, 0)

    def why(self, exc: PlatformError) -> str:
        """A refusal's words for the row."""
        if isinstance(exc, TransportError):
            return f"could not reach the platform ({exc}): run again"
        if isinstance(exc, RateLimited):
            how = f", or use {self.slower}" if self.slower else ""
            return f"the platform kept limiting the request rate ({exc}): run again{how}"
        if isinstance(exc, BadAnswer):
            return f"the platform's answer was not usable ({exc}): run again"
        return f"the platform refused it: {exc}"

    def run(self, requests: Iterable[Request]) -> None:
        """Each request, at most ``concurrency`` at once; none begun after a stop."""
        if self.stop.is_set():
            return
        run_bounded(
            requests,
            self._guarded,
            concurrency=self.concurrency,
            stop=self.stop,
            interrupted=partial(self.halt, StopKind.INTERRUPTED, "interrupted"),
            say=self.events.say,
            window=self._window,
        )

    def _window(self) -> int:
        """The pace's window; while none of the run's requests went through and the first
        ones may all fail alike (a stop after SAME_FAILURES), no more than that many."""
        window = self.client.pace.window()
        if self.same_failures is not None and not self._through:
            return min(window, self.same_failures)
        return window

    def halt(self, kind: StopKind, message: str, *, raise_: bool = False) -> None:
        """Stop the run (the first reason stays); ``raise_`` ends the calling request too."""
        with self._lock:
            if not self.stop_kind:
                self.stop_kind, self.stopped = kind, message
        self.stop.set()
        if raise_:
            raise StopRun

    def write_journal(self, write: Callable[[], None]) -> None:
        """A journal line; one that cannot be written stops the run: without evidence
        nothing more may be sent."""
        try:
            write()
        except ProvisionerError as exc:  # JournalError
            self.halt(
                StopKind.JOURNAL, f"stopped: the journal cannot be written ({exc})", raise_=True
            )

    def failure(self, exc: PlatformError) -> Outcome:
        """A refusal's outcome; a refused token or an unreachable platform stops the run
        (StopRun)."""
        self._stop_for(exc)
        return Outcome(FAILED, None, self.why(exc))

    # --- one request ----------------------------------------------------------------------

    def _guarded(self, request: Request) -> None:
        """The one boundary: whatever happens to a request becomes its outcome or a stop."""
        if self.stop.is_set():
            return
        outcome: Outcome | None = None
        try:
            outcome = self._carry_out(request)
        except StopRun:
            pass
        except Exception as exc:  # a bug, not the network: the row says so, the run goes on
            why_ = self.client.redact(f"{type(exc).__name__}: {exc}")
            outcome = Outcome(FAILED, None, f"unexpected error ({why_})")
            request.finish(outcome)
        finally:
            with self._lock:
                # A request stopped before it ended is left for the next run, not done:
                # the bar counts what the summary counts.
                self._done += outcome is not None
                self._failed += outcome is not None and outcome.failed
                alike = self._alike(request, outcome)
                # Under the lock, so that the bar never steps back.
                self.events.progress(self._done, self._total, self._failed)
            if alike:
                self.halt(StopKind.SAME_FAILURE, alike)

    def _carry_out(self, request: Request) -> Outcome | None:
        """Intent, request, outcome; a lost answer is settled before anything is sent
        again. None: stopped before the request could end (left for the next run)."""
        try:
            early = request.prepare()
        except PlatformError as exc:
            early = self.failure(exc)
        if early is not None:
            request.finish(early)
            return early
        lost = 0
        for attempt in attempts(self.stop):
            if attempt:
                try:
                    again = request.before_resend()
                except PlatformError as exc:
                    again = self.failure(exc)
                if again is not None:
                    return self._record(request, again)
            self._write_intent(request)
            try:
                outcome = request.send()
            except (UnknownOutcome, ServerError, BadAnswer) as exc:
                if isinstance(exc, BadAnswer) and not exc.maybe_done:
                    outcome = Outcome(FAILED, None, self.why(exc))
                else:
                    lost += 1
                    self.write_journal(
                        partial(
                            self.journal.outcome,
                            "unknown",
                            request.kind,
                            request.key,
                            request.row,
                            status="unknown",
                            message=str(exc),
                            **request.intent(),
                        )
                    )
                    found = self._settle(request.find_after_lost, lost=True)
                    if found is None:
                        continue  # not there: it is safe to send it again
                    outcome = found
            except Conflict as exc:
                outcome = self._settle(
                    partial(request.after_conflict, exc, lost), lost=lost > 0
                ) or Outcome(FAILED, None, f"the platform refused it: {exc}")
            except PlatformError as exc:
                self._stop_for(exc)
                outcome = request.after_refusal(exc, self) or Outcome(FAILED, None, self.why(exc))
            return self._record(request, outcome)
        if self.stop.is_set():
            return None  # stopped between tries: the request is left for the next run
        return self._record(request, Outcome(FAILED, None, request.unanswered()))

    def _write_intent(self, request: Request) -> None:
        self.write_journal(
            partial(self.journal.intent, request.kind, request.key, request.row, **request.intent())
        )

    def _settle(self, look: Callable[[], Outcome | None], *, lost: bool) -> Outcome | None:
        """A lookup after a lost answer or a 409; its own failure fails the row (and after
        a lost answer, leaves it open in the journal: the request may have been carried
        out; a 409 without one says the object was there before)."""
        try:
            return look()
        except PlatformError as exc:
            self._stop_for(exc)
            return Outcome(
                FAILED,
                None,
                f"no clear answer, and the lookup failed ({exc}): run again",
                open=lost,
            )

    def _stop_for(self, exc: PlatformError) -> None:
        """The errors after which nothing more may be sent (the request ends without an
        outcome: the next run settles it by its intent); others fail one request."""
        if isinstance(exc, AuthError):
            self.halt(
                StopKind.REFUSED, f"stopped: the platform refused the token ({exc})", raise_=True
            )
        if isinstance(exc, TransportError):
            self.halt(
                StopKind.UNREACHABLE, f"stopped: the platform is unreachable ({exc})", raise_=True
            )

    def _record(self, request: Request, outcome: Outcome) -> Outcome:
        self.record(request.kind, request.key, request.row, outcome, **request.recorded(outcome))
        request.finish(outcome)
        return outcome

    def record(self, kind: str, key: str, row: int, outcome: Outcome, **extra: Any) -> None:
        """An outcome's journal line, with what undo needs (the evidence of a create, the
        images of an update): a request's, or one that the fresh plan settled (``origin``:
        the earlier run whose request it was)."""
        event = "unknown" if outcome.open else "failed" if outcome.failed else "done"
        self.write_journal(
            partial(
                self.journal.outcome,
                event,
                kind,
                key,
                row,
                status=outcome.status,
                platform_id=outcome.platform_id,
                message=outcome.message,
                updated_at=outcome.updated_at,
                addr=outcome.evidence.get("addr", ""),
                created_at=outcome.evidence.get("created_at", ""),
                **extra,
            )
        )

    def _alike(self, request: Request, outcome: Outcome | None) -> str:
        """The stop's words when the run's first requests all failed with one answer.

        A platform that refuses the first SAME_FAILURES creates alike (an unknown
        deviceTypeId in every row) would refuse the rest too: sending them all only
        repeats the answer. --keep-going sends them anyway. Called under the lock.
        """
        limit = self.same_failures
        if limit is None or outcome is None or not request.counts_alike or self._through:
            return ""
        if not outcome.failed:
            # One went through (not merely found there): no early stop in this run.
            self._through = outcome.status in _WENT_THROUGH
            return ""
        self._first_failures.append(outcome.message)
        if len(set(self._first_failures)) > 1:
            self._through = True
            return ""
        if len(self._first_failures) < limit:
            return ""
        return (
            f"stopped: the first {limit} rows all failed alike, so the rest were not "
            f"sent: {outcome.message}. Fix the sheet and run again (--keep-going sends every "
            "row anyway)"
        )


# The outcomes that show the platform takes this run's requests: apply's changes, undo's.
_WENT_THROUGH = frozenset(
    {*(action for action in RowAction if action.changed), UndoStatus.DELETED, UndoStatus.RESTORED}
)
