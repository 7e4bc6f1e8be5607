"""The apply journal: an append-only record of what was asked of the platform and what came back.

One JSON object per line. Before a request that creates something, an
``intent`` line is written and flushed to disk; after the answer, an outcome
line (``done``, ``failed`` or ``unknown``). A run that dies between the two
leaves an intent without an outcome: the next run looks the object up on the
platform before sending anything again. A torn line (the process died while
writing it) is ignored. Several runs append to the same file.

The journal never holds the token or a password: only run ids, rows, keys,
platform ids, statuses and messages.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Outcome events; "intent" is the only other event besides "start" and "end".
OUTCOMES = ("done", "failed", "unknown")


@dataclass(frozen=True)
class Entry:
    """The journal's last word on one thing to create."""

    kind: str  # device | user | downlink
    key: str  # device: match key value; user: email; downlink: "<device key>/<type>"
    event: str  # intent | done | failed | unknown
    platform_id: int | None = None
    status: str = ""
    message: str = ""
    run: str = ""


@dataclass
class JournalState:
    """What earlier runs recorded, by (kind, key)."""

    entries: dict[tuple[str, str], Entry] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    torn_lines: int = 0

    def last(self, kind: str, key: str) -> Entry | None:
        return self.entries.get((kind, key))

    def done(self, kind: str, key: str) -> Entry | None:
        entry = self.entries.get((kind, key))
        return entry if entry is not None and entry.event == "done" else None

    def unresolved(self) -> list[Entry]:
        """Requests that may have reached the platform without an answer on record."""
        return [e for e in self.entries.values() if e.event in ("intent", "unknown")]


def read_journal(path: Path, platform: str | None = None) -> JournalState:
    """Everything earlier runs recorded; a missing file is an empty journal.

    With ``platform``, only runs against that platform count: a rehearsal on the
    sandbox must not make the real run skip anything.
    """
    state = JournalState()
    counts = True
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return state
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            # A line torn by a crash mid-write; later runs append after it.
            state.torn_lines += 1
            continue
        if not isinstance(record, dict):
            state.torn_lines += 1
            continue
        event = record.get("event")
        if event == "start":
            counts = platform is None or record.get("platform") == platform
            if counts:
                state.runs.append(str(record.get("run", "")))
        elif counts and (event == "intent" or event in OUTCOMES):
            key = (str(record["kind"]), str(record["key"]))
            state.entries[key] = Entry(
                kind=key[0],
                key=key[1],
                event=event,
                platform_id=record.get("platform_id"),
                status=str(record.get("status", "")),
                message=str(record.get("message", "")),
                run=str(record.get("run", "")),
            )
    return state


class Journal:
    """Appends records for one run, each flushed to disk before the caller goes on."""

    def __init__(self, path: Path, *, sheet: str, platform: str, fingerprint: str) -> None:
        self.path = path
        self.run = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
        self._lock = threading.Lock()
        self._repair_torn_tail(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._write(
            {"event": "start", "sheet": sheet, "platform": platform, "fingerprint": fingerprint}
        )

    @staticmethod
    def _repair_torn_tail(path: Path) -> None:
        """End a torn last line so that this run's first record starts on its own line."""
        try:
            with path.open("rb") as existing:
                existing.seek(0, os.SEEK_END)
                if existing.tell() == 0:
                    return
                existing.seek(-1, os.SEEK_END)
                last = existing.read(1)
        except FileNotFoundError:
            return
        if last != b"\n":
            with path.open("ab") as out:
                out.write(b"\n")

    def _write(self, record: dict[str, Any]) -> None:
        record = {
            "run": self.run,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            **record,
        }
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        with self._lock:
            os.write(self._fd, line)
            os.fsync(self._fd)

    def intent(self, kind: str, key: str, row: int) -> None:
        self._write({"event": "intent", "kind": kind, "key": key, "row": row})

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
    ) -> None:
        if event not in OUTCOMES:
            raise ValueError(f"not an outcome: {event}")
        self._write(
            {
                "event": event,
                "kind": kind,
                "key": key,
                "row": row,
                "status": status,
                "platform_id": platform_id,
                "message": message,
            }
        )

    def close(self, totals: dict[str, int] | None = None) -> None:
        if self._fd < 0:
            return
        self._write({"event": "end", "totals": totals or {}})
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
