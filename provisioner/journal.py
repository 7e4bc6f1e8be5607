"""The apply journal: evidence of what was asked of the platform and what came back.

One JSON object per line. Before a request that writes, an ``intent`` line is
written and flushed to disk; after the answer, an outcome line (``done``,
``failed`` or ``unknown``). A run that dies between the two leaves an intent
without an outcome: the next run settles it by what the platform holds. The
journal is evidence, never the truth: what the fresh plan finds on the platform
decides what is done (see apply.py). A torn line (the process died while
writing it, or a power loss left NUL bytes) and lines that are not the journal's own
(hand edits) are skipped, and noted with the run they stand among: undo decides
whether the rest of the journal proves them harmless (see undo.py). Each line
counts for the run its own ``run`` names (a stray start line of another run in
the middle of a run changes nothing for the lines around it).

A journal belongs to one sheet; runs against other platforms are kept apart
(a rehearsal on the sandbox never counts for the real platform). One apply at a
time may use it: ``JournalLock`` holds an OS lock that a crash releases.

Files are opened the same way on Linux, macOS and Windows, with what each OS offers:
on POSIX never through a symbolic link (O_NOFOLLOW) and mode 0600; Windows has no
O_NOFOLLOW, so there the opened file is compared with the name's own entry (a link is
refused before anything is written) and the 0600 mode is the folder's ACL's business.
``PROVISIONER_TEST_PORTABLE_JOURNAL=1`` takes the Windows way on POSIX too, for the tests.

The journal never holds the token or a password: only run ids, rows, keys,
platform ids, payload fingerprints, statuses and messages (which passed the
client's redaction point), a device create's tags, and for updates (``"op": "update"``)
the device's deviceInput before and after, LoRaWAN keys hidden. From the creates' tags
and the updates' images, ``JournalState.sheet_tags`` knows which tags this sheet put
on each device: the ones ``apply --update`` may take off again. Updates are history (what
``undo`` restores): a PUT can be sent again safely, so the fresh plan settles
an unanswered one, and they never count as a create of their key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import secrets
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provisioner.actions import RowKind
from provisioner.errors import JournalBusy as JournalBusy
from provisioner.errors import JournalError as JournalError

# An update's images: the device's deviceInput before and after (LoRaWAN keys hidden).
Images = tuple[dict[str, Any], dict[str, Any]]
# Outcome events; "intent" is the only other event besides "start" and "end".
OUTCOMES = ("done", "failed", "unknown")
KINDS = frozenset(RowKind)
# Every line this module writes starts so; a broken line that does not is someone else's.
_OWN_LINE = b'{"run": '
# Windows' way (no O_NOFOLLOW, no pread) on any OS: the tests set it to run that path here.
PORTABLE = sys.platform == "win32" or os.environ.get("PROVISIONER_TEST_PORTABLE_JOURNAL") == "1"


@dataclass(frozen=True)
class Entry:
    """The journal's last word on one thing to create."""

    kind: str  # device | user | downlink
    key: str  # device: match key value; user: email; downlink: "<device key>/<type>"
    event: str  # intent | done | failed | unknown
    platform_id: int | None = None
    status: str = ""
    message: str = ""
    # The run whose request it was: the line's own run, or for an outcome a later run
    # settled (a lost answer), the run that sent the request (the line's "origin").
    run: str = ""
    at: str = ""  # when the line was written (UTC, ISO 8601)
    payload: str = ""  # fingerprint of what was sent (downlinks)
    updated_at: str = ""  # the device's updatedAt as the answer gave it (creates, updates)
    addr: str = ""  # a create's: the device's addr and createdAt as the platform gave them
    created_at: str = ""
    tags: tuple[str, ...] = ()  # a device create's: the tags it sent


@dataclass(frozen=True)
class UpdateEntry:
    """An update of a device recorded by some run: the before and after images."""

    key: str
    event: str  # intent | done | failed | unknown
    platform_id: int | None
    before: dict[str, Any]
    after: dict[str, Any]
    run: str = ""
    at: str = ""
    status: str = ""
    updated_at: str = ""  # the device's updatedAt after the update, as the answer gave it
    row: int | None = None


@dataclass(frozen=True)
class DamagedLine:
    """A line that could not be read, and the run whose lines it stands among."""

    number: int
    run: str  # the run of the start line before it ("" before any start line)
    platform: str  # that run's platform ("" when not known)
    why: str


@dataclass
class JournalState:
    """What earlier runs recorded against one platform, by (kind, key)."""

    entries: dict[tuple[str, str], Entry] = field(default_factory=dict)
    # The last `done` with a platform id: a device or user some run created or found.
    made: dict[tuple[str, str], Entry] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    sheets: set[str] = field(default_factory=set)
    torn_lines: int = 0
    skipped_lines: list[int] = field(default_factory=list)  # line numbers, not the journal's
    # Every line skipped (torn or not the journal's), with the run it stands among.
    damaged: list[DamagedLine] = field(default_factory=list)
    # Lines naming a run no start line opened (its start line damaged?): (line, run).
    orphans: list[tuple[int, str]] = field(default_factory=list)
    # Start lines that stand among another run's lines, in words (with the line number).
    strays: list[str] = field(default_factory=list)
    updates: list[UpdateEntry] = field(default_factory=list)  # every update line, in order
    # Every create some run recorded as done (a device or user made), in order: undo's list.
    created: list[Entry] = field(default_factory=list)
    # What undo runs took back (their done lines, op delete or restore), in order.
    undone: list[Entry] = field(default_factory=list)
    undo_runs: set[str] = field(default_factory=set)  # the runs that were undos
    # By platform id: the tags this sheet's runs put on the device (by creating it with
    # them, or adding them with --update) and did not take off again since.
    sheet_tags: dict[int, set[str]] = field(default_factory=dict)
    # By platform id: every tag this sheet's runs ever put on the device (what an undo's
    # restore may give back to the sheet).
    tags_ever: dict[int, set[str]] = field(default_factory=dict)

    def last(self, kind: str, key: str) -> Entry | None:
        return self.entries.get((kind, key))

    def done(self, kind: str, key: str) -> Entry | None:
        entry = self.entries.get((kind, key))
        return entry if entry is not None and entry.event == "done" else None

    def unresolved(self) -> list[Entry]:
        """Requests that may have reached the platform without an answer on record."""
        return [e for e in self.entries.values() if e.event in ("intent", "unknown")]

    def unsettled_updates(self) -> list[UpdateEntry]:
        """Updates whose last line is an intent or an unknown: the PUT may have been
        carried out, no run has said so yet (the next apply settles them)."""
        last: dict[str, UpdateEntry] = {}  # by key: an older version's intent holds no id
        for update in self.updates:
            last[update.key] = update
        return [u for u in last.values() if u.event in ("intent", "unknown")]


def _entry(record: dict[str, Any], event: str) -> Entry | None:
    """An entry from a line, or None when the line is not the journal's own."""
    kind, key, platform_id = record.get("kind"), record.get("key"), record.get("platform_id")
    if kind not in KINDS or not isinstance(key, str) or not key:
        return None
    if platform_id is not None and (
        not isinstance(platform_id, int) or isinstance(platform_id, bool) or platform_id < 1
    ):
        return None
    names = ("status", "message", "run", "at", "payload", "updated_at", "addr", "created_at")
    texts = [record.get(name, "") for name in names]
    if isinstance(record.get("origin"), str) and record["origin"]:
        texts[2] = record["origin"]
    if not all(isinstance(text, str) for text in texts):
        return None
    tags = record.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        return None
    entry = Entry(kind, key, event, platform_id, *texts)
    return dataclasses.replace(entry, tags=tuple(tags)) if tags else entry


def _update_entry(record: dict[str, Any], event: str) -> UpdateEntry | None:
    entry = _entry(record, event)
    before, after = record.get("before", {}), record.get("after", {})
    if entry is None or not isinstance(before, dict) or not isinstance(after, dict):
        return None
    row = record.get("row")
    return UpdateEntry(
        entry.key,
        event,
        entry.platform_id,
        before,
        after,
        entry.run,
        entry.at,
        entry.status,
        entry.updated_at,
        row if isinstance(row, int) else None,
    )


def read_journal(path: Path, platform: str | None = None) -> JournalState:
    """Everything earlier runs recorded; a missing file is an empty journal.

    With ``platform``, only runs against that platform count. Raises JournalError
    when the file cannot be read.
    """
    state = JournalState()
    stray_of = ""  # the run the last start line interrupted, if any
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return state
    except OSError as exc:
        raise JournalError(f"cannot read the journal {path}: {exc.strerror or exc}") from None
    platforms: dict[str, str] = {}  # run -> platform, from the start lines
    segment = ""  # the run of the last start line: the run a line without its own stands in
    stray = 0  # the line number of the last start line, while it may stand among another run

    def skip(number: int, why: str) -> None:
        state.skipped_lines.append(number)
        state.damaged.append(DamagedLine(number, segment, platforms.get(segment, ""), why))

    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            why = "NUL bytes" if b"\0" in line else "not JSON"
            if line.startswith(_OWN_LINE) or _OWN_LINE.startswith(line):
                state.torn_lines += 1  # one of ours, cut short by a crash
                state.damaged.append(
                    DamagedLine(number, segment, platforms.get(segment, ""), why + ", cut short")
                )
            else:
                skip(number, why)
            continue
        if not isinstance(record, dict) or not isinstance(record.get("event"), str):
            skip(number, "not a journal record")
            continue
        event = record["event"]
        run = record.get("run")
        if event == "start":
            run = str(run or "")
            platforms[run] = str(record.get("platform", ""))
            stray = number if segment else 0
            previous, segment = segment, run
            counts = platform is None or record.get("platform") == platform
            if counts and record.get("fingerprint") == "undo":
                state.undo_runs.add(run)
            if isinstance(record.get("sheet"), str):
                state.sheets.add(record["sheet"])
            if counts:
                state.runs.append(run)
            stray_of = previous
            continue
        if isinstance(run, str) and run != segment:
            if run in platforms:
                if stray and run == stray_of:
                    state.strays.append(
                        f"line {stray}: a start line of run {segment} against "
                        f"{platforms[segment] or 'an unknown platform'} stands among the lines "
                        f"of run {run}: each line counts for its own run"
                    )
                    # The interrupted run goes on: a damaged line since the stray start
                    # line stands among its lines, not the stray run's.
                    state.damaged = [
                        dataclasses.replace(d, run=run, platform=platforms[run])
                        if d.number > stray and d.run == segment
                        else d
                        for d in state.damaged
                    ]
                    segment, stray = run, 0
            else:
                state.orphans.append((number, run))
        # Lines before any start line count (a journal of an older version).
        run_platform = platforms[run] if isinstance(run, str) and run in platforms else None
        if run_platform is None:
            run_platform = platforms.get(segment, platform)
        counts = platform is None or run_platform == platform
        if event == "end":
            continue
        elif record.get("op") in ("delete", "restore") and (event == "intent" or event in OUTCOMES):
            # An undo's own lines: a device it deleted is no create of any run any more.
            entry = _entry(record, event)
            if entry is None:
                skip(number, "not a journal record")
            elif counts and event == "done":
                state.undone.append(entry)
                restore = _update_entry(record, event) if record.get("op") == "restore" else None
                if restore is not None and restore.status == "restored":
                    _note_restore_tags(state, restore)
                if record.get("op") == "delete":
                    state.made.pop((entry.kind, entry.key), None)
                    state.entries.pop((entry.kind, entry.key), None)
                    if entry.platform_id is not None:
                        state.sheet_tags.pop(entry.platform_id, None)
        elif record.get("op") == "update" and (event == "intent" or event in OUTCOMES):
            update = _update_entry(record, event)
            if update is None:
                skip(number, "not a journal record")
            elif counts:
                state.updates.append(update)
                if event == "done" and update.status == "updated":
                    _note_update_tags(state, update)
        elif event == "intent" or event in OUTCOMES:
            entry = _entry(record, event)
            if entry is None:
                skip(number, "not a journal record")
            elif counts:
                state.entries[(entry.kind, entry.key)] = entry
                if event == "done" and entry.platform_id is not None:
                    state.made[(entry.kind, entry.key)] = entry
                if event == "done" and entry.status == "created":
                    state.created.append(entry)
                if event == "done" and entry.tags and entry.platform_id is not None:
                    state.sheet_tags.setdefault(entry.platform_id, set()).update(entry.tags)
                    state.tags_ever.setdefault(entry.platform_id, set()).update(entry.tags)
        else:
            skip(number, "not a journal record")
    return state


def day_of(entry: Entry) -> str:
    """The day a journal line was written, for a row's words."""
    return entry.at[:10] or "an earlier run"


def default_journal(sheet: Path) -> Path:
    """The journal beside the sheet: ``<sheet stem>.journal.jsonl``."""
    return sheet.with_name(f"{sheet.stem}.journal.jsonl")


def read_sheet_journal(path: Path, sheet: str, platform: str) -> JournalState:
    """The journal of one sheet's runs against ``platform`` (plan and apply read it alike).

    Raises JournalError when it cannot be read or belongs to another sheet.
    """
    state = read_journal(path, platform=platform)
    foreign = state.sheets - {sheet}
    if foreign:
        raise JournalError(
            f"the journal {path} belongs to the sheet {sorted(foreign)[0]}, not "
            f"{sheet}: give this sheet its own journal with --journal FILE"
        )
    return state


def _note_update_tags(state: JournalState, update: UpdateEntry) -> None:
    """The tags an update put on its device are this sheet's; those it took off are gone."""
    if update.platform_id is None:
        return
    before, after = _tags_of(update.before), _tags_of(update.after)
    ours = state.sheet_tags.setdefault(update.platform_id, set())
    ours.update(after - before)
    state.tags_ever.setdefault(update.platform_id, set()).update(after - before)
    ours.difference_update(before - after)


def _note_restore_tags(state: JournalState, restore: UpdateEntry) -> None:
    """An undo's restore takes an update back: the sheet's tags it put back are the sheet's
    again (never a tag only others gave), those it took off are gone."""
    if restore.platform_id is None:
        return
    before, after = _tags_of(restore.before), _tags_of(restore.after)
    ours = state.sheet_tags.setdefault(restore.platform_id, set())
    ours.update((after - before) & state.tags_ever.get(restore.platform_id, set()))
    ours.difference_update(before - after)


def _tags_of(image: dict[str, Any]) -> set[str]:
    tags = image.get("tags")
    return {str(t).strip() for t in tags} if isinstance(tags, list) else set()


def _describe(exc: OSError, path: Path) -> str:
    if exc.errno == errno.ELOOP:
        return f"{path} is a symbolic link: the journal is never written through one"
    if exc.errno == errno.ENOSPC:
        return f"the disk holding {path} is full"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{path} cannot be written ({exc.strerror}): choose another place with --journal"
    return f"cannot write the journal {path}: {exc.strerror or exc}"


def _open(path: Path, flags: int) -> int:
    """``os.open`` never through a symbolic link, binary (Windows would write CRLF for
    LF otherwise), mode 0600 where the OS has modes. Raises OSError (ELOOP for a link)."""
    flags |= getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    if not PORTABLE:
        return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o600)
    # No O_NOFOLLOW: open, then refuse unless the file opened is the name's own entry
    # (a link's entry is the link, not its target). Nothing is written before this check.
    fd = os.open(path, flags, 0o600)
    try:
        own = os.path.samestat(os.fstat(fd), os.lstat(path))
    except OSError:
        own = False  # the name is gone or changed since the open: not the file we opened
    if not own:
        os.close(fd)
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path))
    return fd


def _last_byte(fd: int, size: int) -> bytes:
    if sys.platform != "win32" and not PORTABLE:
        return os.pread(fd, 1, size - 1)  # the file position stays where it is
    os.lseek(fd, size - 1, os.SEEK_SET)  # Windows has no pread; the caller appends after
    return os.read(fd, 1)


class JournalLock:
    """One apply per journal: an OS lock on ``<journal>.lock``, released by a crash too.

    The lock is portalocker's (flock on POSIX, a byte-range lock on Windows) on a file
    this class opens itself: never through a link, the holder named inside, and removed
    at release so that no lock file is left beside the sheet after a run that ended.
    """

    def __init__(self, journal: Path) -> None:
        self.path = journal.with_name(journal.name + ".lock")
        self._fd = -1

    def acquire(self) -> None:
        # Imported here: plan and verify read journals without a lock, and portalocker
        # loads the OS's locking module (fcntl or msvcrt) when imported.
        import portalocker

        while True:
            try:
                fd = _open(self.path, os.O_RDWR | os.O_CREAT)
            except OSError as exc:
                raise JournalError(_describe(exc, self.path)) from None
            try:
                portalocker.lock(fd, portalocker.LOCK_EX | portalocker.LOCK_NB)
            except portalocker.AlreadyLocked:
                holder = ""
                with contextlib.suppress(OSError):  # Windows: the holder's lock covers it
                    holder = os.read(fd, 200).decode("utf-8", "replace").strip()
                os.close(fd)
                raise JournalBusy(
                    f"another apply is using the journal {self.path.with_suffix('')} "
                    f"({holder or 'a running process'}): wait for it to finish, "
                    "or stop it first"
                ) from None
            except portalocker.LockException as exc:  # e.g. ENOLCK: an NFS mount without locks
                os.close(fd)
                why = getattr(exc.__cause__, "strerror", None) or exc
                raise JournalError(
                    f"cannot lock {self.path} ({why}): the folder's file system takes no "
                    "locks; choose a folder on a local disk with --journal"
                ) from None
            if os.name == "nt":
                break  # Windows removes no file that is open: the one we hold is current
            # The holder before us may have removed the file after we opened it.
            try:
                same = os.path.samestat(os.stat(self.path), os.fstat(fd))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        started = datetime.now().astimezone().isoformat(timespec="seconds")
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"process {os.getpid()}, started {started}\n".encode())
        except OSError as exc:  # a full disk: say so, with nothing held
            os.close(fd)
            raise JournalError(_describe(exc, self.path)) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd < 0:
            return
        # POSIX: removed while still held, so that the next apply makes a new file.
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = -1
        if os.name == "nt":  # Windows removes no open file: now it is closed
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def __enter__(self) -> JournalLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def payload_fingerprint(body: Any) -> str:
    """A short, stable fingerprint of a request body (a downlink's content)."""
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Journal:
    """Appends records for one run; each is on disk before the caller goes on.

    Workers that write at the same moment share one fsync (group commit): a
    record is written at once, and its writer waits until some fsync covers it.
    """

    def __init__(self, path: Path, *, sheet: str, platform: str, fingerprint: str) -> None:
        self.path = path
        self.run = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
        self._lock = threading.Lock()  # order of lines
        self._sync_lock = threading.Lock()  # one fsync at a time
        self._written = 0
        self._synced = 0
        self.broken = ""
        existed = path.exists() or path.is_symlink()
        try:
            self._repair_torn_tail(path)
            self._fd = _open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        except OSError as exc:
            raise JournalError(_describe(exc, path)) from None
        if not existed:
            _sync_folder(path.parent)
        self._write(
            {"event": "start", "sheet": sheet, "platform": platform, "fingerprint": fingerprint}
        )

    @staticmethod
    def _repair_torn_tail(path: Path) -> None:
        """End a torn last line so that this run's first record starts on its own line."""
        try:
            fd = _open(path, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            size = os.lseek(fd, 0, os.SEEK_END)
            if size and _last_byte(fd, size) != b"\n":
                os.lseek(fd, 0, os.SEEK_END)
                os.write(fd, b"\n")
        finally:
            os.close(fd)

    def _write(self, record: dict[str, Any]) -> None:
        record = {
            "run": self.run,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            **record,
        }
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        try:
            with self._lock:
                if self.broken:
                    raise JournalError(self.broken)
                os.write(self._fd, line)
                self._written += 1
                mine = self._written
            with self._sync_lock:
                if self._synced < mine:
                    with self._lock:
                        covered = self._written
                    os.fsync(self._fd)
                    self._synced = covered
        except OSError as exc:
            self.broken = _describe(exc, self.path)
            raise JournalError(self.broken) from None

    def intent(
        self,
        kind: str,
        key: str,
        row: int,
        *,
        payload: str = "",
        update: Images | None = None,
        op: str = "",
        platform_id: int | None = None,
        tags: list[str] | None = None,
    ) -> None:
        """Before a request. ``update``: the device's (before, after) images of an update;
        ``op``: "delete" or "restore" for an undo's requests (an update is "update");
        ``tags``: the tags a device create sends."""
        record: dict[str, Any] = {"event": "intent", "kind": kind, "key": key, "row": row}
        self._write(
            _details(record, update, op, payload=payload, tags=tags, platform_id=platform_id)
        )

    def outcome(
        self,
        event: str,
        kind: str,
        key: str,
        row: int,
        *,
        status: str,
        platform_id: int | None = None,
        message: str = "",
        payload: str = "",
        update: Images | None = None,
        op: str = "",
        updated_at: str = "",
        addr: str = "",
        created_at: str = "",
        tags: list[str] | tuple[str, ...] | None = None,
        origin: str = "",
    ) -> None:
        """After a request. ``tags``: on a device create made (or found after a lost
        answer), the tags it sent: this sheet put them on the device. ``origin``: the
        earlier run whose request this run settles (undo takes it back with that run)."""
        if event not in OUTCOMES:
            raise ValueError(f"not an outcome: {event}")
        record: dict[str, Any] = {
            "event": event,
            "kind": kind,
            "key": key,
            "row": row,
            "status": status,
            "platform_id": platform_id,
            "message": message,
        }
        self._write(
            _details(
                record,
                update,
                op,
                payload=payload,
                updated_at=updated_at,
                addr=addr,  # a create's: the device is known again by its addr and createdAt
                created_at=created_at,
                tags=list(tags or ()),
                origin=origin,
            )
        )

    def close(self, totals: dict[str, int] | None = None) -> None:
        """The end record, then the file closed: a worker still in flight (after a
        Ctrl-C's grace period) gets a JournalError, never a write into a reused fd."""
        if self._fd < 0:
            return
        with contextlib.suppress(JournalError):
            if not self.broken:
                self._write({"event": "end", "totals": totals or {}})
        with self._sync_lock, self._lock:
            os.close(self._fd)
            self._fd = -1
            self.broken = self.broken or f"the journal {self.path} is closed"

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# What a record leaves out (a reader takes a missing field for one of these); 0 is an id.
_EMPTY: tuple[Any, ...] = (None, "", [], ())


def _details(
    record: dict[str, Any], update: Images | None, op: str, **fields: Any
) -> dict[str, Any]:
    """``record`` with the ``fields`` that are given, then an update's op and its
    (before, after) images, or an undo's op ("delete", "restore")."""
    record.update((name, value) for name, value in fields.items() if value not in _EMPTY)
    if update is not None:
        record.update(op=op or "update", before=update[0], after=update[1])
    elif op:
        record["op"] = op
    return record


def _sync_folder(folder: Path) -> None:
    """Make a new file's name durable too (the file's own fsync does not cover it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
