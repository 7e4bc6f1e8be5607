"""What undo needs from the journal, end to end: the real CLI against the sandbox.

A create or update whose answer was lost (the run killed while the platform had
carried it out) is settled by the next run with what undo needs, and undo takes it
back; a journal line that cannot be read stops undo or is skipped with a warning;
undo never exits 0 while a device a run made is still on the platform.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from test_apply_e2e import RUN_TIMEOUT, explain, journal_lines, journal_of, start_apply
from test_undo_e2e import addr, applied, by_serial, run_undo, serials, write_sheet

from provisioner.sandbox import Sandbox
from provisioner.sandbox.faults import OddRule


def killed_while_stalled(sb: Sandbox, sheet: Path, rule: OddRule, *extra: str) -> None:
    """Run apply and kill it once the platform has carried out the stalled request (its
    answer never came): the journal holds the intent and no outcome."""
    proc = start_apply(sheet, sb, sb.tokens["org-admin"], "--yes", *extra)
    deadline = time.monotonic() + RUN_TIMEOUT
    while rule.hits < 1:
        if proc.poll() is not None:
            pytest.fail(f"apply ended before its request stalled: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("apply's request never stalled")
        time.sleep(0.01)
    proc.kill()
    proc.communicate(timeout=RUN_TIMEOUT)


def lines_of(sheet: Path) -> list[dict[str, Any]]:
    return journal_lines(journal_of(sheet))[0]


def test_a_create_whose_answer_was_lost_is_settled_by_the_next_run_and_undone(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path, {0: "a", 1: "b"})
    stall = sandbox.faults.odd("POST", "/api/devices", "stall", times=1, seconds=RUN_TIMEOUT)
    killed_while_stalled(sandbox, sheet, stall, "--concurrency", "1")
    assert serials(sandbox) == {"SN0"}  # made, its answer never came
    assert [line["event"] for line in lines_of(sheet)][-1] == "intent"

    # Before any run settles it, undo cannot prove it made SN0: it says so, exit 1.
    early = run_undo(sheet, sandbox)
    assert early.returncode == 1, explain(early)
    assert "no answer on record device (SN0)" in early.stdout
    assert serials(sandbox) == {"SN0"}

    applied(sandbox, sheet)
    made = by_serial(sandbox, "SN0")
    [settled] = [
        line for line in lines_of(sheet) if line.get("key") == "SN0" and line["event"] == "done"
    ]
    assert settled["status"] == "created" and settled["platform_id"] == made["id"]
    assert settled["addr"] == made["addr"] and settled["created_at"] == made["createdAt"]
    assert settled["updated_at"] == made["updatedAt"]
    killed = lines_of(sheet)[0]["run"]
    assert settled["origin"] == killed and settled["run"] != killed

    # It belongs to the killed run: undo of that run alone takes it back.
    one = run_undo(sheet, sandbox, "--run", killed)
    assert one.returncode == 0, explain(one)
    assert serials(sandbox) == {"SN1"}
    done = run_undo(sheet, sandbox)
    assert done.returncode == 0, explain(done)
    assert sandbox.store.count_devices() == 0


def test_an_update_whose_answer_was_lost_is_settled_by_the_next_run_and_put_back(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    seeded = sandbox.store.create_device(
        {"serial": "SN0", "addr": addr(0), "name": "Zähler 0", "description": "Dach"}
    )
    sheet = write_sheet(tmp_path, {0: "Keller"})
    stall = sandbox.faults.odd(
        "PUT", f"/api/devices/{seeded['id']}", "stall", times=1, seconds=RUN_TIMEOUT
    )
    killed_while_stalled(sandbox, sheet, stall, "--update")
    assert by_serial(sandbox, "SN0")["description"] == "Keller"  # the PUT went through
    updates = [line for line in lines_of(sheet) if line.get("op") == "update"]
    assert [line["event"] for line in updates] == ["intent"]

    early = run_undo(sheet, sandbox)
    assert early.returncode == 1, explain(early)
    assert "its update" in early.stdout and "no answer on record" in early.stdout
    assert by_serial(sandbox, "SN0")["description"] == "Keller"

    # The next run finds the device as the sheet says: nothing to send, but the
    # update's outcome is recorded with its images.
    applied(sandbox, sheet, "--update")
    updates = [line for line in lines_of(sheet) if line.get("op") == "update"]
    assert [line["event"] for line in updates] == ["intent", "done"]
    assert updates[-1]["before"]["description"] == "Dach"
    assert updates[-1]["after"]["description"] == "Keller"

    done = run_undo(sheet, sandbox, "--run", updates[0]["run"])  # the killed run's
    assert done.returncode == 0, explain(done)
    now = by_serial(sandbox, "SN0")
    assert now["description"] == "Dach" and now["id"] == seeded["id"]


def damage(path: Path, number: int) -> None:
    """Line ``number`` (1-based) overwritten with NUL bytes, as a power loss leaves it."""
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = b"\0" * len(lines[number - 1])
    path.write_bytes(b"\n".join(lines))


def numbered(sheet: Path) -> list[tuple[int, dict[str, Any]]]:
    text = journal_of(sheet).read_text(encoding="utf-8").splitlines()
    return [(n, json.loads(line)) for n, line in enumerate(text, start=1) if line.strip()]


def test_a_damaged_line_that_may_hold_a_create_stops_undo_with_its_number(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path, {0: "a", 1: "b", 2: "c"})
    applied(sandbox, sheet)
    [number] = [
        n for n, line in numbered(sheet) if line.get("key") == "SN1" and line["event"] == "done"
    ]
    damage(journal_of(sheet), number)
    before = sandbox.store.list_devices(limit=100)
    done = run_undo(sheet, sandbox)
    assert done.returncode == 2, explain(done)
    assert f"cannot be read at line {number} (NUL bytes)" in done.stderr
    assert "nothing was changed" in done.stderr and "Traceback" not in done.stderr
    assert sandbox.store.list_devices(limit=100) == before


def test_a_damaged_line_the_rest_proves_harmless_is_skipped_with_a_warning(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path, {0: "a", 1: "b", 2: "c"})
    applied(sandbox, sheet)
    # An intent: its outcome is on record, so nothing of the run is lost with it.
    [number] = [
        n for n, line in numbered(sheet) if line.get("key") == "SN1" and line["event"] == "intent"
    ]
    damage(journal_of(sheet), number)
    done = run_undo(sheet, sandbox)
    assert done.returncode == 0, explain(done)
    assert f"warning: line {number} of the journal cannot be read (NUL bytes): skipped" in (
        done.stderr
    )
    assert sandbox.store.count_devices() == 0


def test_a_stray_start_line_of_another_platform_mid_run_changes_nothing_for_the_run(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path, {i: "x" for i in range(4)})
    applied(sandbox, sheet)
    path = journal_of(sheet)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    stray = {
        "run": "20260101T000000Z-abcdef",
        "event": "start",
        "sheet": sheet.name,
        "platform": "https://other.example",
        "fingerprint": "f",
    }
    lines.insert(3, json.dumps(stray) + "\n")  # after the start and the first intent
    path.write_text("".join(lines), encoding="utf-8")
    done = run_undo(sheet, sandbox)
    assert done.returncode == 0, explain(done)
    assert "deleted 4" in done.stdout
    assert (
        "warning: line 4: a start line of run 20260101T000000Z-abcdef against "
        "https://other.example stands among the lines of run"
    ) in done.stderr
    assert sandbox.store.count_devices() == 0


def test_lines_of_a_run_whose_start_line_is_damaged_stop_undo(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path, {0: "a"})
    applied(sandbox, sheet)
    write_sheet(tmp_path, {0: "a", 1: "b"})
    applied(sandbox, sheet)
    [(_, first), (second_start, second)] = [
        (n, line) for n, line in numbered(sheet) if line["event"] == "start"
    ]
    damage(journal_of(sheet), second_start)
    done = run_undo(sheet, sandbox)
    assert done.returncode == 2, explain(done)
    assert f"names run {second['run']} at line {second_start + 1}" in done.stderr
    assert serials(sandbox) == {"SN0", "SN1"}
    # The first run alone can still be taken back: the other run's lines are skipped.
    one = run_undo(sheet, sandbox, "--run", first["run"])
    assert one.returncode == 0, explain(one)
    assert f"line {second_start + 1} names run {second['run']}" in one.stderr
    assert serials(sandbox) == {"SN1"}
