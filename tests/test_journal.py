"""The journal on its own: what it writes, what it refuses, what it survives."""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from provisioner.journal import (
    Journal,
    JournalBusy,
    JournalError,
    JournalLock,
    read_journal,
)


def test_the_journal_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    Journal(path, sheet="s", platform="u", fingerprint="f").close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_journal_is_never_written_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    link = tmp_path / "j.jsonl"
    link.symlink_to(target)
    with pytest.raises(JournalError, match="symbolic link"):
        Journal(link, sheet="s", platform="u", fingerprint="f")
    assert target.read_text() == "precious\n"


def test_hand_edited_and_foreign_lines_are_skipped_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path, sheet="s", platform="u", fingerprint="f")
    journal.outcome("done", "device", "S1", 2, status="created", platform_id=5)
    journal.close()
    with path.open("a") as out:
        out.write('{"event": "done"}\n')  # no kind, no key
        out.write('{"event": "done", "kind": "device", "key": "S2", "platform_id": 1.5}\n')
        out.write('{"event": "done", "kind": "rocket", "key": "S3"}\n')
        out.write('["a", "list"]\n')
        out.write("# a note somebody typed\n")
        out.write("[" * 100_000 + "\n")  # nesting that would blow the stack
        out.write('{"event": "done", "kind": "device", "key": "S4", "status": 7}\n')
    state = read_journal(path)
    assert state.done("device", "S1") is not None
    assert state.last("device", "S2") is None and state.last("device", "S4") is None
    assert len(state.skipped_lines) == 7


def test_runs_of_another_platform_do_not_count(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path, sheet="s", platform="http://sandbox", fingerprint="f")
    journal.outcome("done", "device", "S1", 2, status="created", platform_id=5)
    journal.close()
    assert read_journal(path, platform="https://real").done("device", "S1") is None
    assert read_journal(path, platform="http://sandbox").done("device", "S1") is not None
    assert read_journal(path).sheets == {"s"}


def test_a_second_lock_on_the_same_journal_is_refused_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with JournalLock(path):
        with pytest.raises(JournalBusy, match=f"process {os.getpid()}"):
            JournalLock(path).acquire()
    # Released: the next run gets it, and no lock file is left behind.
    with JournalLock(path):
        pass
    assert not (tmp_path / "j.jsonl.lock").exists()


def test_a_full_disk_is_a_journal_error_and_nothing_more_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path, sheet="s", platform="u", fingerprint="f")
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        if fd == journal._fd:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(JournalError, match="disk .* is full"):
        journal.intent("device", "S1", 2)
    monkeypatch.setattr(os, "write", real_write)
    with pytest.raises(JournalError):
        journal.intent("device", "S2", 3)  # broken stays broken: no gaps in the evidence
    journal.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["start"]


def test_one_fsync_covers_the_records_of_several_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path, sheet="s", platform="u", fingerprint="f")
    syncs = []
    real_fsync = os.fsync
    gate = threading.Barrier(8)

    def slow_fsync(fd: int) -> None:
        syncs.append(fd)
        threading.Event().wait(0.005)  # a disk that takes its time
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)

    def worker(n: int) -> None:
        gate.wait()
        for i in range(25):
            journal.intent("device", f"S{n}-{i}", i)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    journal.close()
    state = read_journal(path)
    assert len(state.unresolved()) == 200
    assert len(syncs) < 150, f"{len(syncs)} fsyncs for 200 records"


def test_the_tags_this_sheet_put_on_each_device(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path, sheet="site.xlsx", platform="u", fingerprint="f")
    journal.intent("device", "S1", 2, tags=["Haus 4", "Keller"])
    journal.outcome(
        "done", "device", "S1", 2, status="created", platform_id=5, tags=["Haus 4", "Keller"]
    )
    journal.outcome("failed", "device", "S2", 3, status="failed", tags=["nie"])
    journal.intent("device", "S3", 4, tags=["verloren"])  # no answer: not known to be on
    # An update that added Dach and took off Keller; the device's own Wartung is nobody's.
    images = ({"tags": ["Haus 4", "Keller", "Wartung"]}, {"tags": ["Haus 4", "Wartung", "Dach"]})
    journal.outcome("done", "device", "S1", 2, status="updated", platform_id=5, update=images)
    skipped = ({"tags": ["Haus 4"]}, {"tags": ["Haus 4", "x"]})
    journal.outcome("done", "device", "S1", 2, status="skipped", platform_id=5, update=skipped)
    journal.outcome("done", "device", "S9", 9, status="created", platform_id=9, tags=["weg"])
    journal.outcome("done", "device", "S9", 9, status="deleted", platform_id=9, op="delete")
    journal.close()
    with path.open("a") as out:
        out.write('{"run": "r", "event": "done", "kind": "device", "key": "S4", "tags": "a,b"}\n')
    state = read_journal(path, platform="u")
    assert state.sheet_tags == {5: {"Haus 4", "Dach"}}
    lost = state.last("device", "S3")
    assert lost is not None and lost.tags == ("verloren",)  # for the next run to settle
    assert len(state.skipped_lines) == 1  # tags that are not a list of texts
    assert read_journal(path, platform="https://real").sheet_tags == {}
    assert read_journal(tmp_path / "none.jsonl", platform="u").sheet_tags == {}


def test_damaged_lines_are_noted_with_the_run_they_stand_among(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path, sheet="s", platform="u", fingerprint="f")
    journal.intent("device", "S1", 2)
    journal.outcome("done", "device", "S1", 2, status="created", platform_id=5)
    journal.close()
    with path.open("ab") as out:
        out.write(b"\0" * 40 + b"\n")  # a power loss's zeros
        out.write(b'{"run": "x", "event": "done", "kind": "dev\n')  # cut short
    other = Journal(path, sheet="s", platform="https://real", fingerprint="f")
    other.close()
    with path.open("ab") as out:
        out.write(b"# a note\n")
    state = read_journal(path, platform="u")
    assert [(d.number, d.run, d.platform, d.why) for d in state.damaged] == [
        (5, journal.run, "u", "NUL bytes"),
        (6, journal.run, "u", "not JSON, cut short"),
        (9, other.run, "https://real", "not JSON"),
    ]
    assert state.torn_lines == 1 and state.skipped_lines == [5, 9]
    assert state.orphans == [] and state.strays == []


def test_each_line_counts_for_its_own_run_whatever_start_line_stands_before_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path, sheet="s", platform="u", fingerprint="f")
    journal.outcome("done", "device", "S1", 2, status="created", platform_id=5)
    stray = {"run": "z", "event": "start", "sheet": "s", "platform": "elsewhere"}
    with path.open("a") as out:  # another platform's start line in the middle of the run
        out.write(json.dumps(stray) + "\n")
    journal.outcome("done", "device", "S2", 3, status="created", platform_id=6)
    journal.close()
    with path.open("a") as out:  # a run whose start line is missing
        out.write('{"run": "y", "event": "done", "kind": "device", "key": "S3"}\n')
    state = read_journal(path, platform="u")
    assert [e.key for e in state.created] == ["S1", "S2"]
    assert state.strays == [
        f"line 3: a start line of run z against elsewhere stands among the lines of run "
        f"{journal.run}: each line counts for its own run"
    ]
    assert state.orphans == [(6, "y")]
    assert read_journal(path, platform="elsewhere").created == []


def test_an_update_without_an_outcome_is_unsettled_until_a_later_line_settles_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    images = ({"description": "Dach"}, {"description": "Keller"})
    journal = Journal(path, sheet="s", platform="u", fingerprint="f")
    journal.intent("device", "S1", 2, update=images, platform_id=5)
    journal.intent("device", "S2", 3, update=images, platform_id=6)
    journal.outcome("done", "device", "S2", 3, status="updated", platform_id=6, update=images)
    journal.close()
    [open_update] = read_journal(path).unsettled_updates()
    assert (open_update.key, open_update.platform_id, open_update.event) == ("S1", 5, "intent")
    later = Journal(path, sheet="s", platform="u", fingerprint="f")
    later.outcome("failed", "device", "S1", 2, status="failed", platform_id=5, update=images)
    later.close()
    assert read_journal(path).unsettled_updates() == []


def test_a_damaged_line_after_a_stray_start_line_stands_among_the_interrupted_run(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path, sheet="s", platform="u", fingerprint="f")
    journal.intent("device", "S1", 2)
    stray = {"run": "z", "event": "start", "sheet": "s", "platform": "elsewhere"}
    with path.open("ab") as out:
        out.write(json.dumps(stray).encode() + b"\n" + b"\0" * 30 + b"\n")
    journal.outcome("done", "device", "S2", 3, status="created", platform_id=6)
    journal.outcome("done", "device", "S3", 4, status="created", platform_id=7)
    with path.open("ab") as out:
        out.write(b"\0" * 30 + b"\n")
    journal.close()
    state = read_journal(path, platform="u")
    assert [(d.number, d.run, d.platform) for d in state.damaged] == [
        (4, journal.run, "u"),
        (7, journal.run, "u"),
    ]
    assert [e.key for e in state.created] == ["S2", "S3"]
