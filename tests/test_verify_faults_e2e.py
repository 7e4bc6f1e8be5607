"""`provisioner verify` under faults, end to end: the real CLI against the sandbox with its
clock off this machine's, with data records it cannot read, an oversized data answer, and
a device deleted during a watch."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from test_apply_e2e import RUN_TIMEOUT, Factory, explain, run_apply
from test_verify_e2e import (
    applied_site,
    device_id,
    report_of,
    rows,
    run_verify,
    speak,
    start_watch,
    statuses,
    write_sheet,
)

from provisioner.sandbox import Sandbox


def by_key(report: dict[str, object]) -> dict[str, dict[str, object]]:
    return {row["key"]: row for row in report["rows"]}  # type: ignore[attr-defined,index]


def test_install_times_are_judged_on_the_platforms_clock(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    # The platform's clock 30 s behind this machine's: the devices send 2 s after their
    # install by the platform's clock, which is before the journal's time by this one's.
    sb = sandbox_factory(clock_offset_seconds=-30)
    sheet = applied_site(sb, tmp_path)
    for serial in ("SN0", "SN1", "SN2"):
        speak(sb, serial)
    report = tmp_path / "verify.json"
    done = run_verify(sheet, sb, "--report", str(report))
    assert done.returncode == 1, explain(done)
    data = report_of(report)
    expected = {"SN0": "online", "SN1": "online", "SN2": "online", "SN3": "silent"}
    assert statuses(data) == {**expected, "SN4": "missing", "SN5": "invalid"}
    assert abs(data["clock_offset"] + 30) < 2, data["clock_offset"]
    assert "this machine's clock is 30 s ahead of the platform's" in done.stdout
    assert "30 s ahead" in data["clock"]

    # A platform that gives no createdAt: the journal's times, moved onto its clock.
    sb.faults.odd("GET", "/api/devices", "no-created-at")
    journal_report = tmp_path / "journal.json"
    done = run_verify(sheet, sb, "--report", str(journal_report))
    assert done.returncode == 1, explain(done)
    rows_seen = by_key(report_of(journal_report))
    assert {k: rows_seen[k]["status"] for k in expected} == expected
    created = sb.store.get_device(device_id(sb, "SN0"))["createdAt"]
    installed = datetime.fromisoformat(str(rows_seen["SN0"]["installed"]))
    # Within the tolerance before the platform's createdAt, not 30 s after it.
    assert abs((installed - datetime.fromisoformat(created)).total_seconds()) < 10
    sb.faults.clear_odd()

    # --since is this machine's time too: "the last 30 minutes" on a platform an hour behind.
    sb.faults.clock_offset_seconds = -3600
    speak(sb, "SN3")
    since_report = tmp_path / "since.json"
    done = run_verify(sheet, sb, "--since", "30m", "--report", str(since_report))
    assert statuses(report_of(since_report))["SN3"] == "online", explain(done)
    assert "this machine's clock is 60 min ahead of the platform's" in done.stdout


def test_records_it_cannot_read_are_counted_per_device(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = applied_site(sandbox, tmp_path)
    sn0, sn1 = device_id(sandbox, "SN0"), device_id(sandbox, "SN1")
    speak(sandbox, "SN0")
    sandbox.faults.add_odd_records(
        sn0,
        {"id": 9001, "deviceId": sn0, "data": {"volume_m3": 2}},  # no receivedAt
        {"id": 9002, "deviceId": sn0, "receivedAt": "gestern", "data": {}},
    )
    speak(sandbox, "SN1", datetime.now(UTC) + timedelta(days=3))  # a clock or platform error
    sandbox.faults.add_odd_records(
        sn1, {"id": 9003, "deviceId": sn1, "receivedAt": None, "data": None}
    )
    report = tmp_path / "verify.json"
    done = run_verify(sheet, sandbox, "--report", str(report))
    assert done.returncode == 1, explain(done)
    assert "data asked for: organisation data, grouped by device" in done.stdout
    found = by_key(report_of(report))
    assert found["SN0"]["status"] == "online" and found["SN0"]["unreadable"] == 2
    assert "also 2 records without a readable time" in str(found["SN0"]["message"])
    assert found["SN1"]["status"] == "silent" and found["SN1"]["unreadable"] == 2
    message = str(found["SN1"]["message"])
    assert "1 record without a readable time" in message
    assert "1 record dated more than a day ahead of the platform's clock" in message
    assert "check that it has power" not in message
    assert "check that it has power" in str(found["SN2"]["message"])  # nothing at all
    assert found["SN2"]["unreadable"] == 0

    # Items that are not records name no device: asked per device, where they count.
    sandbox.faults.add_odd_records(sn1, 7, {"data": None})
    again = tmp_path / "again.json"
    done = run_verify(sheet, sandbox, "--report", str(again))
    assert done.returncode == 1, explain(done)
    assert "per device (the organisation's data holds items that are not records)" in done.stdout
    found = by_key(report_of(again))
    assert found["SN0"]["status"] == "online" and found["SN0"]["unreadable"] == 2
    assert found["SN1"]["status"] == "silent" and found["SN1"]["unreadable"] == 4
    assert "1 item that is not a record" in str(found["SN1"]["message"])
    assert "2 records without a readable time" in str(found["SN1"]["message"])
    assert "Traceback" not in done.stderr


def test_an_oversized_data_answer_ends_with_a_message(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = applied_site(sandbox, tmp_path)
    sn0 = device_id(sandbox, "SN0")
    huge = {"id": 9100, "deviceId": sn0, "receivedAt": None, "data": {"blob": "x" * (33 << 20)}}
    sandbox.faults.add_odd_records(sn0, huge)
    done = run_verify(sheet, sandbox)
    assert done.returncode == 3, explain(done)
    assert "parsed-data" in done.stderr and "larger than the 32 MiB accepted" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_device_deleted_during_a_watch_becomes_missing(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = write_sheet(tmp_path, rows(0, 1))
    assert run_apply(sheet, sandbox, sandbox.tokens["device-admin"]).returncode == 0
    speak(sandbox, "SN0")
    # Counts the organisation data answers without changing them (a stall of 1 ms).
    reads = sandbox.faults.odd("GET", "/api/devices/parsed-data", "stall", seconds=0.001)
    report = tmp_path / "watch.json"
    proc = start_watch(sheet, sandbox, "--report", str(report))
    waited = 0.0
    while reads.hits < 1 and proc.poll() is None and waited < RUN_TIMEOUT:
        time.sleep(0.05)
        waited += 0.05
    sandbox.store.delete_device(device_id(sandbox, "SN1"))  # the first check saw it silent
    out, err = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 1, out + err  # the watch ends: nothing left to wait for
    found = by_key(report_of(report))
    assert found["SN0"]["status"] == "online"
    assert found["SN1"]["status"] == "missing"
    assert "deleted from the platform since it was looked up" in str(found["SN1"]["message"])
    assert "online 1 · silent 0 · missing 1" in out
