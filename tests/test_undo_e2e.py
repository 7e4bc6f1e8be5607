"""`provisioner undo` end to end: the real CLI against the sandbox, its state read back.

Nothing the journal did not create is ever deleted; a device changed since its run
is kept; after an undo, plan shows the rows as create again and apply works as on
a fresh platform.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from test_apply_e2e import RUN_TIMEOUT, environment, explain, journal_lines, journal_of, run_apply
from test_apply_terminal import finish, read_until, spawn

from provisioner.journal import read_journal
from provisioner.runner import CONCURRENCY
from provisioner.sandbox import Sandbox

HEADER = "serial;addr;name;description"
# A request as the sandbox logs it with verbose: "GET /api/devices?limit=1 HTTP/1.1" 200 -
REQUEST = re.compile(r'"([A-Z]+) (/api/[^ "]*) HTTP/[\d.]+" \d{3}')


def addr(i: int) -> str:
    return f"70B3D5E7{i:08X}"


def write_sheet(folder: Path, descriptions: dict[int, str]) -> Path:
    sheet = folder / "site.csv"
    lines = [HEADER] + [f"SN{i};{addr(i)};Zähler {i};{d}" for i, d in descriptions.items()]
    sheet.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sheet


def run_undo(
    sheet: Path, sb: Sandbox, *extra: str, yes: bool = True
) -> subprocess.CompletedProcess[str]:
    words = [sys.executable, "-m", "provisioner", "undo", str(sheet), "--url", sb.url, *extra]
    return subprocess.run(
        words + (["--yes"] if yes else []),
        env=environment(sb.tokens["org-admin"]),
        cwd=sheet.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def serials(sb: Sandbox) -> set[str]:
    return {str(d["serial"]) for d in sb.store.list_devices(limit=1000)}


def by_serial(sb: Sandbox, serial: str) -> dict[str, Any]:
    [device] = sb.store.devices_by("serial", serial)
    return device


def applied(sb: Sandbox, sheet: Path, *extra: str) -> None:
    done = run_apply(sheet, sb, sb.tokens["org-admin"], *extra)
    assert done.returncode == 0, done.stdout + done.stderr


def runs_of(sheet: Path, sb: Sandbox) -> list[str]:
    return read_journal(journal_of(sheet), platform=sb.url).runs


def test_undo_of_a_create_run_deletes_only_what_it_created(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.store.create_device({"addr": addr(99), "serial": "NOT-OURS"})
    sheet = write_sheet(tmp_path, {0: "a", 1: "b", 2: "c"})
    applied(sandbox, sheet)
    device = by_serial(sandbox, "SN0")
    sandbox.store.queue_downlink(device["id"], "config", {"d": {"x": "1"}, "q": "config"})
    done = run_undo(sheet, sandbox)
    assert done.returncode == 0, explain(done)
    assert "deleted 3" in done.stdout
    assert serials(sandbox) == {"NOT-OURS"}  # nothing outside the journal touched
    # After the undo: plan says create again, and apply works as on a fresh platform.
    plan = subprocess.run(
        [sys.executable, "-m", "provisioner", "plan", str(sheet), "--url", sandbox.url],
        env=environment(sandbox.tokens["org-admin"]),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert "create 3" in plan.stdout, plan.stdout + plan.stderr
    again = run_apply(sheet, sandbox, sandbox.tokens["org-admin"])
    assert again.returncode == 0 and "created again" not in again.stdout
    assert serials(sandbox) == {"NOT-OURS", "SN0", "SN1", "SN2"}
    # A second undo takes back the new run; the first one's devices are already gone.
    second = run_undo(sheet, sandbox)
    assert second.returncode == 0, explain(second)
    assert serials(sandbox) == {"NOT-OURS"}


def test_undo_of_an_update_puts_the_values_back(sandbox: Sandbox, tmp_path: Path) -> None:
    # SN0 was on the platform before any run; a run updated it; SN1 a run created.
    sandbox.store.create_device({"addr": addr(0), "serial": "SN0", "description": "Dach"})
    before = by_serial(sandbox, "SN0")
    sheet = write_sheet(tmp_path, {0: "Keller", 1: "neu"})
    applied(sandbox, sheet, "--update")
    assert by_serial(sandbox, "SN0")["description"] == "Keller"
    done = run_undo(sheet, sandbox)
    assert done.returncode == 0, explain(done)
    now = by_serial(sandbox, "SN0")
    assert now["description"] == "Dach"  # put back
    assert {k: v for k, v in now.items() if k != "updatedAt"} == {
        k: v for k, v in before.items() if k != "updatedAt"
    }
    assert serials(sandbox) == {"SN0"}
    lines, _ = journal_lines(journal_of(sheet))
    assert {line.get("op") for line in lines} >= {"update", "delete", "restore"}


def test_a_device_edited_since_its_run_is_kept_and_listed(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = write_sheet(tmp_path, {0: "a", 1: "b"})
    applied(sandbox, sheet)
    edited = by_serial(sandbox, "SN1")
    sandbox.store.update_device(edited["id"], {"description": "von Hand geändert"})
    done = run_undo(sheet, sandbox)
    assert done.returncode == 1, explain(done)
    assert "kept device" in done.stdout and "changed on the platform since the run" in done.stdout
    assert serials(sandbox) == {"SN1"}
    assert by_serial(sandbox, "SN1")["description"] == "von Hand geändert"


def test_one_run_of_several(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = write_sheet(tmp_path, {0: "a"})
    applied(sandbox, sheet)
    write_sheet(tmp_path, {0: "a", 1: "b"})
    applied(sandbox, sheet)
    first, second = runs_of(sheet, sandbox)
    done = run_undo(sheet, sandbox, "--run", second)
    assert done.returncode == 0, explain(done)
    assert serials(sandbox) == {"SN0"}
    unknown = run_undo(sheet, sandbox, "--run", "no-such-run")
    assert unknown.returncode == 2 and first in unknown.stderr


def test_a_delete_without_an_answer_is_settled_by_looking_the_id_up(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path, {0: "a", 1: "b"})
    applied(sandbox, sheet)
    rule = sandbox.faults.odd("DELETE", "/api/devices/{devId}", "reset", times=1, commit=True)
    done = run_undo(sheet, sandbox)
    assert done.returncode == 0, explain(done)
    assert rule.hits == 1
    assert serials(sandbox) == set()
    again = run_undo(sheet, sandbox)
    assert again.returncode == 0 and "nothing to take back" in again.stdout


def test_an_undo_that_failed_part_way_is_resumed_by_running_it_again(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path, {i: "x" for i in range(6)})
    applied(sandbox, sheet)
    # Two deletes go through, then the platform refuses the rest: those rows fail.
    for serial in ("SN0", "SN1"):  # ids follow the order the creates completed in
        sandbox.faults.odd(
            "DELETE", f"/api/devices/{by_serial(sandbox, serial)['id']}", "error-400"
        )
    stopped = run_undo(sheet, sandbox)
    assert stopped.returncode == 1, explain(stopped)
    assert "failed: device" in stopped.stdout
    assert serials(sandbox) == {"SN0", "SN1"}
    sandbox.faults.clear_odd()
    resumed = run_undo(sheet, sandbox)
    assert resumed.returncode == 0, explain(resumed)
    assert serials(sandbox) == set()


def test_a_platform_without_delete_gets_one_message_and_nothing_changes(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path, {0: "a", 1: "b"})
    applied(sandbox, sheet)
    sandbox.faults.odd("DELETE", "/api/devices/{devId}", "error-405")
    done = run_undo(sheet, sandbox)
    assert done.returncode == 3, explain(done)
    assert "does not offer device deletion through its REST API" in done.stderr
    assert serials(sandbox) == {"SN0", "SN1"}
    assert "Traceback" not in done.stderr


def test_without_a_terminal_and_without_yes_nothing_is_deleted(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path, {0: "a"})
    applied(sandbox, sheet)
    done = run_undo(sheet, sandbox, yes=False)
    assert done.returncode == 2, explain(done)
    assert "--yes" in done.stderr and serials(sandbox) == {"SN0"}


def requests_logged(log: str) -> list[tuple[str, str]]:
    """(method, path and query) of each request a verbose sandbox logged."""
    return REQUEST.findall(log)


def test_on_a_terminal_a_mistyped_number_asks_again_without_reading_again(
    sandbox_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sb = sandbox_factory(verbose=True)  # its request log goes to this test's stderr
    sheet = write_sheet(tmp_path, {0: "a", 1: "b"})
    applied(sb, sheet)
    env = {**environment(sb.tokens["org-admin"]), "PYTHONFAULTHANDLER": "1"}
    pid, fd = spawn(["undo", str(sheet), "--url", sb.url], env, tmp_path)
    screen = read_until(fd, b"Type 2 (the number of devices to delete)").decode()
    asked = len(requests_logged(capsys.readouterr().err))
    os.write(fd, b"3\r")  # the wrong number: asked again, nothing read again
    screen += read_until(fd, b"2 tries left\r\nType 2 (the number").decode()
    assert requests_logged(capsys.readouterr().err) == [], screen
    assert asked > 0 and serials(sb) == {"SN0", "SN1"}
    os.write(fd, b"2\r")
    code, rest = finish(pid, fd)
    assert code == 0, screen + rest
    assert serials(sb) == set()
    # The ETA on the bar is a time this undo can take, never a year-like number of minutes.
    etas = re.findall(r"ETA (\d+):\d\d", screen + rest)
    assert all(int(minutes) < 10 for minutes in etas), screen + rest


def test_on_a_terminal_three_wrong_numbers_change_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = write_sheet(tmp_path, {0: "a", 1: "b"})
    applied(sandbox, sheet)
    env = {**environment(sandbox.tokens["org-admin"]), "PYTHONFAULTHANDLER": "1"}
    pid, fd = spawn(["undo", str(sheet), "--url", sandbox.url], env, tmp_path)
    screen = read_until(fd, b"Type 2 (the number of devices to delete)").decode()
    for wrong, left in ((b"3", b"2 tries left"), (b"20", b"1 try left")):
        os.write(fd, wrong + b"\r")
        screen += read_until(fd, left + b"\r\nType 2 (the number").decode()
    os.write(fd, b"1\r")
    code, rest = finish(pid, fd)
    assert code == 2, screen + rest
    assert "nothing was changed" in rest and "Traceback" not in rest
    assert serials(sandbox) == {"SN0", "SN1"}
    lines, _ = journal_lines(journal_of(sheet))
    assert not any(line.get("op") == "delete" for line in lines)


def test_undo_of_many_devices_reads_them_in_a_few_requests_before_it_deletes(
    sandbox_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sb = sandbox_factory(verbose=True)
    sheet = write_sheet(tmp_path, dict.fromkeys(range(250), "x"))
    applied(sb, sheet)
    capsys.readouterr()  # apply's requests
    done = run_undo(sheet, sb)
    assert done.returncode == 0, explain(done)
    assert serials(sb) == set()
    requests = requests_logged(capsys.readouterr().err)
    methods = [method for method, _ in requests]
    before = requests[: methods.index("DELETE")]
    # One lookup for the run's 250 devices (pages of the platform), not a request each;
    # then each device is read again right before its DELETE, several at once (apply's
    # concurrency): those re-reads may all come before the first DELETE.
    lookup = [url for _, url in before if "f:id=eq:" not in url]
    assert len(lookup) <= 3, requests[:12]
    assert len(before) - len(lookup) <= CONCURRENCY, requests[:12]
    assert methods.count("DELETE") == 250
    assert methods.count("GET") <= 250 + 5
    # Without a terminal the bar's plain lines hold no ETA before a rate is known.
    etas = re.findall(r"ETA (\S+)", done.stderr)
    assert all(eta == "-:--" or int(eta.split(":")[0]) < 10 for eta in etas), done.stderr


def test_undo_never_deletes_a_device_the_journal_cannot_prove_it_made(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    import json as json_module

    sheet = write_sheet(tmp_path, {0: "a", 1: "b"})
    applied(sandbox, sheet)
    # Somebody else's device, and a journal whose record of SN0 points at it (a platform
    # reset reused the id), and whose record of SN1 is of an older version (no addr).
    stranger = sandbox.store.create_device({"addr": addr(77), "serial": "SN0"})
    journal = journal_of(sheet)
    lines = []
    for line in journal.read_text(encoding="utf-8").splitlines():
        record = json_module.loads(line)
        if record.get("event") == "done" and record.get("key") == "SN0":
            record["platform_id"] = stranger["id"]
        if record.get("event") == "done" and record.get("key") == "SN1":
            record.pop("addr", None)
        lines.append(json_module.dumps(record))
    journal.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = run_undo(sheet, sandbox)
    assert done.returncode == 1, explain(done)
    assert "belongs to another device now" in done.stdout
    assert "cannot prove it made this device" in done.stdout
    assert serials(sandbox) == {"SN0", "SN1"} and sandbox.store.count_devices() == 3


def test_undoing_the_later_run_first_then_the_earlier_takes_everything_back(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path, {0: "a"})
    applied(sandbox, sheet)
    write_sheet(tmp_path, {0: "b"})
    applied(sandbox, sheet, "--update")
    first, second = runs_of(sheet, sandbox)
    kept = run_undo(sheet, sandbox, "--run", first)
    assert kept.returncode == 1 and "updated later by run" in kept.stdout
    restored = run_undo(sheet, sandbox, "--run", second)
    assert restored.returncode == 0, explain(restored)
    assert by_serial(sandbox, "SN0")["description"] == "a"
    deleted = run_undo(sheet, sandbox, "--run", first)
    assert deleted.returncode == 0, explain(deleted)
    assert serials(sandbox) == set()


def test_ctrl_c_stops_an_undo_cleanly_and_running_it_again_finishes(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    import signal
    import time

    sb = sandbox_factory()
    # More devices than the pace has in flight in the first round trips.
    sheet = write_sheet(tmp_path, {i: "x" for i in range(40)})
    applied(sb, sheet)
    sb.faults.latency_ms = 150  # each delete takes a while: time to press Ctrl-C mid-way
    words = [sys.executable, "-m", "provisioner", "undo", str(sheet), "--url", sb.url, "--yes"]
    proc = subprocess.Popen(
        words,
        env=environment(sb.tokens["org-admin"]),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while sb.store.count_devices() == 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    left = sb.store.count_devices()
    assert 0 < left < 40
    sb.faults.latency_ms = 0
    again = run_undo(sheet, sb)
    assert again.returncode == 0, explain(again)
    assert sb.store.count_devices() == 0


def test_a_user_and_a_device_with_the_same_id_are_told_apart(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The run creates user 1 and updates device 1: undo keeps the user (no REST delete)
    and still puts the device back."""
    device = sandbox.store.create_device(
        {"serial": "SN1", "addr": "70B3D5E700000001", "name": "alt", "deviceTypeId": 1}
    )
    book = openpyxl.Workbook()
    devices = book.active
    assert devices is not None
    devices.title = "Devices"
    devices.append(["serial", "addr", "name"])
    devices.append(["SN1", "70B3D5E700000001", "neu"])
    users = book.create_sheet("Users")
    users.append(["name", "email", "password", "roles"])
    users.append(["Erika M", "erika@example.com", "Geheim12345", "device-admin"])
    sheet = tmp_path / "site.xlsx"
    book.save(sheet)
    token = sandbox.tokens["org-admin"]
    applied = run_apply(sheet, sandbox, token, "--update")
    assert applied.returncode == 0, explain(applied)
    assert sandbox.store.list_users()[0]["id"] == device["id"]  # the same number
    assert sandbox.store.get_device(device["id"])["name"] == "neu"
    undone = run_undo(sheet, sandbox)
    assert sandbox.store.get_device(device["id"])["name"] == "alt", explain(undone)


def test_undo_settles_lost_delete_answers_on_the_runner_as_apply_does(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """DELETEs carried out and answered with a reset or a 500 are settled by reading the
    device (gone: deleted), never sent blind; the journal keeps each lost answer as
    unknown, then its outcome, as apply's requests do."""
    sheet = write_sheet(tmp_path, {i: f"d{i}" for i in range(8)})
    applied(sandbox, sheet)
    sandbox.faults.odd("DELETE", "/api/devices/{id}", "reset", times=3, commit=True)
    sandbox.faults.odd("DELETE", "/api/devices/{id}", "error-500", times=2, commit=True)
    done = run_undo(sheet, sandbox)
    assert done.returncode == 0, explain(done)
    assert "deleted 8" in done.stdout and "Traceback" not in done.stderr
    assert serials(sandbox) == set()
    records, _ = journal_lines(journal_of(sheet))
    deletes = [r for r in records if r.get("op") == "delete"]
    events = [r["event"] for r in deletes]
    assert events.count("unknown") == 5 and events.count("done") == 8, events
    # Each lost answer is followed by that device's done line, not by a second DELETE.
    assert events.count("intent") == 8
    assert not read_journal(journal_of(sheet), platform=sandbox.url).made
    again = run_undo(sheet, sandbox)
    assert "nothing to take back" in again.stdout, explain(again)
