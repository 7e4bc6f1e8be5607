"""The commissioning check: which of the sheet's devices have sent data since they were installed.

``verify_sheet`` validates the sheet, finds its devices on the platform as plan
does, and asks the platform for each device's parsed data since its install
time: the device's ``createdAt``, else the create time this tool's journal
recorded; ``since`` overrides both. Data from before the install (a meter
tested in the workshop) does not count.

Every time is judged on the platform's clock, since ``receivedAt`` is the
platform's: the journal's time and ``since`` come from this machine's clock and
are moved by the offset between the two clocks, measured from the ``Date`` header
of the platform's answers (a field laptop is often minutes off).

Two ways to ask, chosen by ``way``:
- "organisation": ``GET /api/devices/parsed-data`` with
  ``f:receivedAt=gt:<earliest install>``, paged and grouped by device; a few
  requests for a whole site. It is an assumed endpoint: a 404 switches to the
  other way, and so does more data than ``ORGANISATION_PAGES`` pages hold (then
  only the devices not yet seen online are asked one by one).
- "per device": ``GET /api/devices/{id}/parsed-data?limit=1&f:receivedAt=gt:...``
  for each device, concurrently. One record proves a device online; how many it
  sent is then unknown ("1+").

No parsed data is "no data", not proof that a device is off: the platform's
parser gives no data for some uplinks (status messages), so a silent row says
what to check. Records that cannot be read (not an object, no readable time, a
time more than a day ahead) are counted per device and named in its row, never
dropped without a word. A device deleted since it was looked up is missing.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from provisioner.actions import CommissionStatus, RowKind, StopKind
from provisioner.errors import VerifyError as VerifyError
from provisioner.events import Events
from provisioner.fields import instant, normal_key
from provisioner.frames import Sheet, sheet_name
from provisioner.journal import read_journal
from provisioner.lookup import (
    LOOKUP_THREADS,
    LookupStats,
    Snapshot,
    device_pages,
    look_up,
    match_row,
)
from provisioner.platform import (
    MAX_PAGE_SIZE,
    AuthError,
    BadAnswer,
    InvalidRequest,
    NotFound,
    PlatformClient,
    PlatformError,
    f,
    is_id,
)
from provisioner.records import Record, SiteRecords
from provisioner.results import Result, Row
from provisioner.runner import run_bounded
from provisioner.templates import SiteTemplate
from provisioner.text import counted, listed
from provisioner.validation import ValidationReport, validate_sheet

WAYS = ("auto", "organisation", "per-device")
# The organisation's data is read in pages of this many records, at most this many
# pages: past that the site has too much data for this way, and the rest is asked
# device by device.
ORGANISATION_PAGE = MAX_PAGE_SIZE
ORGANISATION_RECORDS = 5 * MAX_PAGE_SIZE
# A per-device answer whose one record is from before the install (the platform did
# not apply the filter): this many pages of that size are read to decide.
DEVICE_PAGE = 100
DEVICE_PAGES = 3
# Data "received" this far in the future is a clock or a platform error, not a sign of life.
FUTURE_TOLERANCE = timedelta(days=1)
# A journal time moved onto the platform's clock is known to about a second, and was
# written when the create's answer came, after the platform stamped createdAt: data this
# much before it still counts.
CLOCK_TOLERANCE = timedelta(seconds=5)
# A --watch rides over a check that fails (a read timed out, 5xx after the client's
# retries, the platform unreachable for its outage window) and tries again at the next
# round; after this many failed checks in a row it stops with the last good state.
WATCH_FAILED_CHECKS = 3
# The two clocks further apart than this are named in the result.
CLOCK_NOTE_SECONDS = 3.0
# Why a data record could not be read, in the words of a row's message.
NOT_A_RECORD = "not a record"
NO_TIME = "without a readable time"
AHEAD = "dated more than a day ahead of the platform's clock"
SILENT_HINT = (
    "no data since it was installed: check that it has power and was activated, and its "
    "antenna and coverage (a status uplink may give no parsed data, so this is not proof "
    "that it is off)"
)


@dataclass
class VerifyRow(Row):
    """One device row and what the platform shows of it."""

    sheet: str
    row: int
    key: str
    status: CommissionStatus
    platform_id: int | None = None
    installed: str | None = None  # the install time used (RFC 3339, UTC)
    last_data: str | None = None  # the newest receivedAt seen since the install
    records: int | None = None  # records since install; None: at least one, count unknown
    unreadable: int = 0  # records of the last read that could not be read (see _describe)
    message: str = ""
    errors: list[Any] = field(default_factory=list)

    kind: str = RowKind.DEVICE

    COLUMNS = ("installed", "last_data", "records", "unreadable")

    def problems(self) -> tuple[list[Any], list[Any]]:
        return self.errors, []


@dataclass
class VerifyResult(Result):
    """One check of a sheet; ``to_dict()`` is its --report .json."""

    source: str
    template: str
    platform: str
    rows: list[VerifyRow]
    way: str = ""  # how the data was asked for, in words
    data_requests: int = 0
    lookup: LookupStats | None = None
    problems: list[Any] = field(default_factory=list)  # the sheet's own: a missing column
    stop: StopKind = StopKind.NONE  # a --watch ended on a platform error, or Ctrl-C
    stopped: str = ""  # a --watch that ended on a platform error: the last good state
    clock_offset: float | None = None  # seconds the platform's clock is ahead of this machine's
    clock: str = ""  # the two clocks in words, when they are more than a few seconds apart
    records: SiteRecords | None = field(default=None, repr=False)  # for the results' sheet copy
    made_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    command: str = "verify"
    device_link: str = ""  # a device's page on the platform, {id} for its id

    @property
    def totals(self) -> dict[str, int]:
        totals = dict.fromkeys(CommissionStatus, 0)
        for row in self.rows:
            totals[row.status] += 1
        return {str(k): v for k, v in totals.items()}

    @property
    def ok(self) -> bool:
        return all(r.status == CommissionStatus.ONLINE for r in self.rows)

    @property
    def waiting(self) -> list[VerifyRow]:
        """The rows a watch waits for: on the platform and silent."""
        return [r for r in self.rows if r.status == CommissionStatus.SILENT]

    HEADER = (
        *Result.HEADER,
        "way",
        "data_requests",
        "lookup",
        "stopped",
        "clock_offset",
        "clock",
    )

    def sheet_problems(self) -> list[Any]:
        return self.problems

    def sheet_records(self) -> SiteRecords | None:
        return self.records

    def asked(self) -> str:
        """How the devices' data was asked for, in words."""
        if not self.way:  # no device to ask about
            return "no data asked for: no valid row of the sheet is on the platform"
        return f"data asked for: {self.way}, {counted(self.data_requests, 'request')}"


# A German date, time optional: 06.12.2026 08:00, 6.12. 8:00 (this year), 06.12.2026,
# 6.12.2026 8:00:30, 06.12.2026, 08:00 Uhr; the dot after the month may be missing
# when no year follows.
_GERMAN_TIME = re.compile(
    r"(?P<day>\d{1,2})\.(?P<month>\d{1,2})(?:\.(?P<year>\d{4})?|(?=\s|$))"
    r"(?:,?\s+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?(?:\s*Uhr)?)?",
    re.IGNORECASE,
)
_A_TIME = "a time (06.12.2026 08:00, 6.12. 8:00, 2026-12-06T08:00)"
_A_DURATION = "a duration back from now (2h, 90m)"


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: a time, in German (``06.12.2026 08:00``, ``6.12. 8:00`` this year,
    ``06.12.2026`` at midnight) or ISO (``2026-12-01T08:00``, ``2026-12-01 08:00+01:00``),
    without an offset in the machine's zone; or a duration back from now (``90m``, ``2h``,
    ``1d``)."""
    now = now or datetime.now(UTC)
    value = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if not value:
        raise VerifyError(f"--since is empty: give {_A_TIME} or {_A_DURATION}")
    if value[-1:].lower() in units and value[:-1].strip().replace(".", "", 1).isdigit():
        try:
            return now - timedelta(seconds=float(value[:-1]) * units[value[-1].lower()])
        except (OverflowError, ValueError):
            raise VerifyError(f"--since {text!r} reaches before the calendar begins") from None
    german = _GERMAN_TIME.fullmatch(value)
    if german is not None:
        moment = _german_time(german, text, now)
    else:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise VerifyError(f"--since {text!r} is neither {_A_TIME} nor {_A_DURATION}") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # the machine's own zone, as the installer means it
    return moment.astimezone(UTC)


def _german_time(found: re.Match[str], text: str, now: datetime) -> datetime:
    """The local time a German date (and time) means; without a year, this year's."""
    numbers = {name: int(value) for name, value in found.groupdict().items() if value}
    year = numbers.get("year", now.astimezone().year)
    try:
        return datetime(
            year,
            numbers["month"],
            numbers["day"],
            numbers.get("hour", 0),
            numbers.get("minute", 0),
            numbers.get("second", 0),
        )
    except ValueError:
        raise VerifyError(
            f"--since {text!r} is not a day and time of the calendar (day.month.year "
            "hours:minutes, e.g. 06.12.2026 08:00)"
        ) from None


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


@dataclass
class _Device:
    """A sheet row found on the platform, and what is known of its data."""

    row: VerifyRow
    device_id: int
    installed: datetime
    last: datetime | None = None
    count: int = 0
    counted: bool = True  # False: only "at least one" is known
    unreadable: Counter[str] = field(default_factory=Counter)  # why -> records, this read


@dataclass(frozen=True)
class Finding:
    """How verify finds the devices and their data.

    ``journal_path``: apply's journal, for the time each device was created;
    ``since``: count data from this time on instead (None: each install time);
    ``way``: how the data is asked for (WAYS); ``lookup``: how the devices are found
    (plan's strategies).
    """

    journal_path: Path | None = None
    since: datetime | None = None
    way: str = "auto"
    lookup: str = "auto"

    def __post_init__(self) -> None:
        if self.way not in WAYS:
            raise ValueError(f"way must be one of {', '.join(WAYS)}")


class Checker:
    """Finds the sheet's devices once; ``check()`` asks for data (again) for the silent ones."""

    def __init__(
        self,
        client: PlatformClient,
        report: ValidationReport,
        template: SiteTemplate,
        finding: Finding,
        events: Events,
        stop: threading.Event,
        ride_over: bool = False,
    ) -> None:
        self.client = client
        self.stop = stop
        # A --watch tries a failed read again at the next round: the other reads of the
        # round finish on their own (they may well succeed) instead of being stopped.
        self.ride_over = ride_over
        self.events = events
        self.reading = events.reading
        self.problems = list(report.problems)  # sheet-level: a missing column, a hidden tab
        way, since = finding.way, finding.since
        self.way = way
        self.rows: list[VerifyRow] = []
        self.devices: list[_Device] = []
        self.data_requests = 0
        self.way_used = ""
        self.rounds = 0
        self._future = datetime.now(UTC) + FUTURE_TOLERANCE  # set anew by each check
        self._organisation = way != "per-device"
        records = self.records = report.records
        snapshot, self.lookup = look_up(
            client, records, template, finding.lookup, progress=self.reading
        )
        # The lookup's answers told the platform's clock: this machine's times move onto it.
        self.clock_offset = client.clock_offset
        self._skew = timedelta(seconds=self.clock_offset or 0.0)
        if since is not None:
            since += self._skew
        created = _created_times(finding.journal_path, client.url, template.match_key)
        problems = {(r.sheet, r.row): r for r in report.problem_rows.values()}
        for record in records.devices:
            self._add(record, snapshot, problems, created, since, template.match_key)

    def _add(
        self,
        record: Record,
        snapshot: Snapshot,
        problems: dict[tuple[str, int], Any],
        created: dict[str, datetime],
        since: datetime | None,
        match_key: str,
    ) -> None:
        row = VerifyRow(record.sheet, record.row, record.key, CommissionStatus.INVALID)
        self.rows.append(row)
        if not record.valid:
            found = problems.get((record.sheet, record.row))
            row.errors = list(found.errors) if found is not None else []
            first = row.errors[0].message if row.errors else "see the validation report"
            row.message = f"invalid row: {first}"
            return
        key = normal_key(match_key, record.key)
        match = match_row(record.key, record.body.get("addr"), snapshot)
        if match.device is None:
            row.status = CommissionStatus.MISSING
            row.message = match.problem or "not on the platform: run apply for it"
            if match.found is not None:
                row.platform_id = int(match.found["id"])
                row.message += (
                    ": the device of this row is not on the platform (plan shows this row as "
                    "blocked)"
                )
            return
        device = match.device
        row.platform_id = int(device["id"])
        # createdAt is the install on the platform's own clock; the journal's time (this
        # machine's clock) only where the platform gives none, moved onto the platform's.
        journal = created.get(key)
        if journal is not None:
            journal += self._skew - CLOCK_TOLERANCE
        installed = since or instant(device.get("createdAt")) or journal
        # No time known: any data counts, and the row says no install time.
        row.installed = None if installed is None else stamp(installed)
        if installed is None:
            installed = datetime.fromtimestamp(0, UTC)
        row.status = CommissionStatus.SILENT
        self.devices.append(_Device(row, row.platform_id, installed))

    def check(self) -> None:
        """Ask for the data of every device not yet online, then say what each row shows."""
        pending = [d for d in self.devices if d.last is None]
        self.rounds += 1
        if not pending:
            return
        for device in pending:
            device.unreadable.clear()  # each read counts its own
        self._future = datetime.now(UTC) + self._skew + FUTURE_TOLERANCE
        if self._organisation:
            left = self._by_organisation(pending)
            if self.rounds > 1:
                # The organisation's data says nothing of a device deleted since the
                # lookup: in a watch, the silent ones are looked for again.
                self._still_there([d for d in pending if d.last is None and d not in left])
            pending = left
        if pending:
            self._by_device(pending)
        for device in self.devices:
            _describe(device)

    def _still_there(self, silent: list[_Device]) -> None:
        """Mark missing the devices of ``silent`` that the platform no longer has: one
        listing of the id range they span."""
        if not silent:
            return
        ids = [d.device_id for d in silent]
        span = [f("id", "gte", min(ids)), f("id", "lte", max(ids))]
        before = self.client.requests_sent
        found = {device["id"] for page in device_pages(self.client, span) for device in page}
        self.data_requests += self.client.requests_sent - before
        for device in silent:
            if device.device_id not in found:
                self._gone(device)

    def _switch(self, pending: list[_Device], why: str) -> list[_Device]:
        """From now on per device, for the devices not seen online yet."""
        self._organisation = False
        self.way_used = f"per device ({why})"
        return [d for d in pending if d.last is None]

    def _by_organisation(self, pending: list[_Device]) -> list[_Device]:
        """Read the organisation's data since the earliest install; the devices left over."""
        by_id = {d.device_id: d for d in pending}
        earliest = min(d.installed for d in pending)
        seen: set[Any] = set()
        filters = [f("receivedAt", "gt", stamp(earliest))]
        offset = read = 0
        counted_ids: set[int] = set()
        while read < ORGANISATION_RECORDS:
            try:
                page = self.client.organisation_data_page(
                    filters, limit=ORGANISATION_PAGE, offset=offset
                )
            except NotFound:
                return self._switch(pending, "the platform has no organisation data endpoint")
            except InvalidRequest as exc:  # a 400, 405...: the assumed endpoint is not usable
                return self._switch(
                    pending, f"the organisation data endpoint answered {exc.status}"
                )
            except AuthError as exc:
                if exc.status != 403:
                    raise
                return self._switch(pending, "the token may not read the organisation's data")
            except BadAnswer as exc:  # too large, not JSON...: each device's is smaller
                return self._switch(pending, f"the organisation's data: {exc.message}")
            finally:
                self.data_requests += 1
            if not page:
                self.way_used = self.way_used or "organisation data, grouped by device"
                return []
            if not all(isinstance(item, dict) for item in page):
                return self._switch(
                    pending, "the organisation's data holds items that are not records"
                )
            owners = [item.get("deviceId") for item in page]
            if not all(is_id(owner) for owner in owners):
                return self._switch(pending, "the organisation's data names no device ids")
            fresh = 0
            for item, owner in zip(page, owners, strict=True):
                key = _item_key(item)
                if key in seen:
                    continue
                seen.add(key)
                fresh += 1
                device = by_id.get(owner) if isinstance(owner, int) else None
                if device is not None and self._count(device, item):
                    counted_ids.add(device.device_id)
            if not fresh:
                # A full page of records seen already: the platform ignores offset.
                return self._switch(pending, "the platform repeats the organisation's data")
            offset += len(page)  # a short page may be the server's cap: ask on
            read += len(page)
            self.reading(f"reading the organisation's data: {counted(read, 'record')}")
        # Too much data for this way: what was counted is a part ("n+"), and the devices
        # still silent are asked one by one.
        for device_id in counted_ids:
            by_id[device_id].counted = False
        self._organisation = False
        self.way_used = (
            f"organisation data ({counted(read, 'record')}), then per device for the rest"
        )
        return [d for d in pending if d.last is None]

    def _by_device(self, pending: list[_Device]) -> None:
        def ask(device: _Device) -> tuple[_Device, list[Any] | None, int]:
            """The device's records of this read (None: deleted since the lookup)."""
            filters = [f("receivedAt", "gt", stamp(device.installed))]
            asked = 1
            try:
                page = self.client.device_data_page(device.device_id, filters, limit=1)
                if page and not any(self._after(device, item) for item in page):
                    # The filter was not applied (or the order is oldest first), or the
                    # record cannot be read: a few pages of its data decide.
                    page = []
                    for number in range(DEVICE_PAGES):
                        asked += 1
                        more = self.client.device_data_page(
                            device.device_id,
                            filters,
                            limit=DEVICE_PAGE,
                            offset=number * DEVICE_PAGE,
                        )
                        page += more
                        if any(self._after(device, item) for item in more):
                            break
                        if len(more) < DEVICE_PAGE:
                            break
            except NotFound:
                return device, None, asked  # deleted since the lookup
            return device, page, asked

        # On the runner's bounded pool, as apply's requests: a stop (Ctrl-C, or a read that
        # failed for good) begins no other read of this round, and the reads in flight finish.
        round_over = threading.Event()
        lock = threading.Lock()
        failures: list[Exception] = []
        interrupted: list[bool] = []
        done = 0

        def one(device: _Device) -> None:
            nonlocal done
            try:
                _, page, asked = ask(device)
            except Exception as exc:  # the first failure ends the round: it goes up below
                with lock:
                    failures.append(exc)
                round_over.set()
                if not self.ride_over:
                    self.stop.set()  # retries end at once (the client waits on this event)
                return
            with lock:
                done += 1
                self.data_requests += asked
                if page is None:
                    self._gone(device)
                else:
                    for item in page:
                        self._count(device, item)
                    if device.last is not None:
                        device.counted = False  # one record asked for: "1+"
                self.events.progress(done, len(pending), 0)  # under the lock: in order

        def interrupt() -> None:
            interrupted.append(True)
            self.stop.set()  # the retries in flight end at once (the client waits on it)

        run_bounded(
            pending,
            one,
            concurrency=LOOKUP_THREADS,
            stop=round_over,
            interrupted=interrupt,
            say=self.events.say,
            window=self.client.pace.window,
        )
        if interrupted:
            raise KeyboardInterrupt
        if failures:
            raise failures[0]
        self.way_used = self.way_used or "per device, one request each"

    def _gone(self, device: _Device) -> None:
        self.devices.remove(device)
        device.row.status = CommissionStatus.MISSING
        device.row.message = "deleted from the platform since it was looked up"
        device.row.unreadable = 0

    def _after(self, device: _Device, item: Any) -> bool:
        """Whether a record came after the device's install (and not from the future)."""
        received = _received(item)
        return received is not None and device.installed < received <= self._future

    def _count(self, device: _Device, item: Any) -> bool:
        """One data record for a device, if it came after the device's install; one that
        cannot be read is counted as such."""
        received = _received(item)
        if received is None:
            device.unreadable[NO_TIME if isinstance(item, dict) else NOT_A_RECORD] += 1
            return False
        if received > self._future:
            device.unreadable[AHEAD] += 1
            return False
        if received <= device.installed:
            return False
        device.count += 1
        if device.last is None or received > device.last:
            device.last = received
        return True

    def result(self, source: str, template: SiteTemplate) -> VerifyResult:
        offset = self.client.clock_offset
        return VerifyResult(
            clock_offset=None if offset is None else round(offset, 1),
            clock=_clocks(offset),
            source=source,
            template=template.ref,
            platform=self.client.url,
            device_link=self.client.device_link,
            rows=self.rows,
            way=self.way_used,
            data_requests=self.data_requests,
            lookup=self.lookup,
            problems=self.problems,
            records=self.records,
        )


def _received(item: Any) -> datetime | None:
    """When the platform received a record (its own clock); None: no readable time."""
    if not isinstance(item, dict):
        return None
    return instant(item.get("receivedAt")) or instant(item.get("createdAt"))


def _clocks(offset: float | None) -> str:
    """The two clocks in words, when they are more than a few seconds apart."""
    if offset is None or abs(offset) <= CLOCK_NOTE_SECONDS:
        return ""
    way = "behind" if offset > 0 else "ahead of"
    return (
        f"this machine's clock is {_duration(abs(offset))} {way} the platform's: "
        "install times are judged on the platform's clock"
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _unreadable(device: _Device) -> str:
    """The records of the last read that could not be read, in words ("" for none)."""
    parts = []
    for why in (NO_TIME, AHEAD, NOT_A_RECORD):
        count = device.unreadable[why]
        if count:
            noun = "item" if why == NOT_A_RECORD else "record"
            verb = "" if why != NOT_A_RECORD else (" that is" if count == 1 else " that are")
            parts.append(f"{count} {noun}{'' if count == 1 else 's'}{verb} {why}")
    return ", ".join(parts)


def _item_key(item: dict[str, Any]) -> Any:
    """What tells two data records apart: the id, else their device and times."""
    mark = item.get("id")
    if is_id(mark):
        return mark
    return (
        "no id",
        str(item.get("deviceId")),
        str(item.get("receivedAt")),
        str(item.get("createdAt")),
    )


def _describe(device: _Device) -> None:
    row = device.row
    row.unreadable = sum(device.unreadable.values())
    odd = _unreadable(device)
    if device.last is None:
        row.status = CommissionStatus.SILENT
        row.message = SILENT_HINT
        if odd:
            # The device may well be sending: what the platform holds cannot be read.
            row.message = (
                f"no readable data since it was installed: the platform gave {odd}; "
                "look at the device's data on the platform"
            )
        return
    row.status = CommissionStatus.ONLINE
    row.last_data = stamp(device.last)
    row.records = device.count if device.counted else None
    records = counted(device.count, "record") if device.counted else "1+ records"
    row.message = f"data since it was installed ({records}), the last at {row.last_data}"
    if odd:
        row.message += f"; also {odd}"


def _created_times(journal: Path | None, platform: str, match_key: str) -> dict[str, datetime]:
    """Device key -> when this tool created it, from the journal (a missing journal: none)."""
    if journal is None:
        return {}
    state = read_journal(journal, platform=platform)
    times: dict[str, datetime] = {}
    for (kind, key), entry in state.made.items():
        moment = instant(entry.at)
        if kind == RowKind.DEVICE and moment is not None and entry.status == "created":
            times[key] = moment
    return times


def verify_sheet(
    sheet: Sheet,
    template: SiteTemplate,
    client: PlatformClient,
    finding: Finding = Finding(),
    *,
    watch: bool = False,
    interval: float = 15.0,
    timeout: float = 1800.0,
    events: Events | None = None,
    stop: threading.Event | None = None,
    tab: str | None = None,
) -> VerifyResult:
    """Check the sheet once, or with ``watch`` again every ``interval`` seconds for the
    silent devices until every device is online, ``timeout`` passes or ``stop`` is set;
    ``finding`` says how the devices and their data are found. A watch tries a failed
    check again at the next round and stops after WATCH_FAILED_CHECKS failed checks in a
    row (or a refused token at once) with the state of the last good check.

    ``events.checked(result, seconds_left)`` after each check (the live line of
    --watch); ``events`` also hears how far the platform is read and how many devices
    have been asked for their data (the console's spinner and bar). ``tab`` (``--tab``)
    names the tab that holds the devices.
    """
    events = events or Events()
    report = validate_sheet(sheet, template, tab=tab)
    if not report.records.devices:
        raise VerifyError(f"{sheet_name(sheet)} has no device rows to check")
    stop = stop or threading.Event()
    checker = Checker(client, report, template, finding, events, stop, ride_over=watch)
    started = time.monotonic()
    result: VerifyResult | None = None
    failed = 0  # checks in a row that failed
    while True:
        try:
            checker.check()
        except PlatformError as exc:
            failed += 1
            left = max(0.0, timeout - (time.monotonic() - started))
            refused = isinstance(exc, AuthError)  # a token does not come back by itself
            if not watch or refused or failed >= WATCH_FAILED_CHECKS or left <= 0:
                if result is None:
                    raise  # nothing checked yet: the error is all there is to say
                return _stopped(result, exc, failed)
            events.say(
                f"a check failed, trying again in {min(interval, left):.0f} s ({failed} of "
                f"{WATCH_FAILED_CHECKS} failed checks in a row end the watch): {exc}"
            )
            if stop.wait(min(interval, left)):
                if result is None:
                    raise
                return result
            continue
        failed = 0
        result = checker.result(sheet_name(sheet), template)
        left = max(0.0, timeout - (time.monotonic() - started))
        events.checked(result, left)
        if not watch or not result.waiting or left <= 0:
            return result
        if stop.wait(min(interval, left)):
            return result


def _stopped(result: VerifyResult, exc: PlatformError, failed: int) -> VerifyResult:
    """A watch that ends on a platform error: the last good check, and why it ended."""
    why = str(exc) if failed == 1 else f"{failed} checks in a row failed, the last: {exc}"
    result.stopped = f"stopped watching: {why}; the state of the last good check is written"
    result.stop = StopKind.REFUSED if isinstance(exc, AuthError) else StopKind.UNREACHABLE
    return result


def came_online(before: set[tuple[str, int]], result: VerifyResult) -> list[str]:
    """A line for each row online in ``result`` that was not in ``before`` (the rows
    online at the check before), for a --watch to say as it happens."""
    lines = []
    for row in result.rows:
        if row.status == CommissionStatus.ONLINE and (row.sheet, row.row) not in before:
            moment = instant(row.last_data)
            # The platform's time of the data, in this machine's time zone.
            at = "" if moment is None else f", data at {moment.astimezone():%H:%M:%S}"
            lines.append(f"{row.sheet} row {row.row} (key {row.key}): online{at}")
    return lines


def sheet_rows(rows: Iterable[VerifyRow]) -> str:
    """``rows 4, 9, 12`` of a list of rows, for a message."""
    numbers = [str(r.row) for r in rows]
    return ("row " if len(numbers) == 1 else "rows ") + listed(numbers)
