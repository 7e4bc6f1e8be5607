"""`provisioner verify` end to end: the real CLI against the sandbox, its data set by the test.

Devices are created by a real apply (so the journal holds their create times) or
put straight into the sandbox's store; their data comes from the store too, with
the receivedAt each scenario needs.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
from test_apply_e2e import RUN_TIMEOUT, Factory, environment, explain, run_apply

from provisioner.sandbox import Sandbox

HEADER = "serial;addr;name"


def addr(i: int) -> str:
    return f"70B3D5E7{i:08X}"


def rows(*numbers: int) -> list[str]:
    return [f"SN{i};{addr(i)};Zähler {i}" for i in numbers]


def write_sheet(folder: Path, lines: list[str]) -> Path:
    sheet = folder / "site.csv"
    sheet.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return sheet


def verify_command(sheet: Path, sb: Sandbox, *extra: str) -> list[str]:
    return [sys.executable, "-m", "provisioner", "verify", str(sheet), "--url", sb.url, *extra]


def run_verify(sheet: Path, sb: Sandbox, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        verify_command(sheet, sb, *extra),
        env=environment(sb.tokens["device-admin"]),
        cwd=sheet.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def report_of(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {row["key"]: row["status"] for row in report["rows"]}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def device_id(sb: Sandbox, serial: str) -> int:
    [found] = sb.store.devices_by("serial", serial)
    return int(found["id"])


def speak(sb: Sandbox, serial: str, at: datetime | None = None, **data: Any) -> None:
    sb.store.add_parsed_data(
        device_id(sb, serial), data or {"volume_m3": 1.5}, iso(at) if at else None
    )


def applied_site(sb: Sandbox, folder: Path) -> Path:
    """SN0..SN3 created by apply; the sheet then gains a row never applied and a bad one."""
    sheet = write_sheet(folder, rows(0, 1, 2, 3))
    done = run_apply(sheet, sb, sb.tokens["device-admin"])
    assert done.returncode == 0, done.stdout + done.stderr
    write_sheet(folder, [*rows(0, 1, 2, 3, 4), "SN5;not a DevEUI with spaces;Zähler 5"])
    return sheet


def test_online_silent_missing_and_invalid_rows(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = applied_site(sandbox, tmp_path)
    speak(sandbox, "SN0")
    speak(sandbox, "SN0")
    speak(sandbox, "SN1")
    # SN2 spoke only in the workshop, before it was installed: that does not count.
    speak(sandbox, "SN2", datetime.now(UTC) - timedelta(days=3))
    report = tmp_path / "verify.json"
    done = run_verify(sheet, sandbox, "--report", str(report))
    assert done.returncode == 1, explain(done)
    data = report_of(report)
    assert data["totals"] == {"online": 2, "silent": 2, "missing": 1, "invalid": 1}
    assert statuses(data) == {
        "SN0": "online",
        "SN1": "online",
        "SN2": "silent",
        "SN3": "silent",
        "SN4": "missing",
        "SN5": "invalid",
    }
    by_key = {row["key"]: row for row in data["rows"]}
    assert by_key["SN0"]["records"] == 2 and by_key["SN0"]["last_data"]
    assert "not proof that it is off" in by_key["SN3"]["message"]
    assert "Traceback" not in done.stderr
    assert "online 2 · silent 2 · missing 1 · invalid 1" in done.stdout
    assert "data asked for: organisation data, grouped by device" in done.stdout

    # The results workbook: the sheet with Online, Last data, Records, and a Silent tab.
    book = openpyxl.load_workbook(tmp_path / "site.verify.xlsx", read_only=True)
    first = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    header = first[0]
    assert header[3:] == ["Online", "Last data", "Records", "Message"]
    online = {r[0]: r[3] for r in first[1:]}
    assert online == {
        "SN0": "online",
        "SN1": "online",
        "SN2": "silent",
        "SN3": "silent",
        "SN4": "missing",
        "SN5": "invalid",
    }
    silent = [list(r) for r in book["Silent"].iter_rows(values_only=True)]
    assert silent[0][:3] == ["serial", "addr", "name"]
    assert [r[0] for r in silent[1:]] == ["SN2", "SN3"]
    book.close()


def test_since_counts_data_from_that_time_on(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = applied_site(sandbox, tmp_path)
    speak(sandbox, "SN2", datetime.now(UTC) - timedelta(hours=3))
    report = tmp_path / "verify.json"
    done = run_verify(sheet, sandbox, "--since", "1d", "--report", str(report))
    assert done.returncode == 1, explain(done)
    assert statuses(report_of(report))["SN2"] == "online"
    later = run_verify(sheet, sandbox, "--since", iso(datetime.now(UTC) - timedelta(hours=1)))
    assert "SN2" in later.stdout  # silent again: its data is older than --since
    bad = run_verify(sheet, sandbox, "--since", "yesterday-ish")
    assert bad.returncode == 2 and "neither a time" in bad.stderr


def test_both_ways_give_the_same_answer(sandbox_factory: Factory, tmp_path: Path) -> None:
    sb = sandbox_factory(max_page_size=3)  # the organisation's data comes in pages of 3
    sheet = applied_site(sb, tmp_path)
    for _ in range(4):
        speak(sb, "SN0")
    speak(sb, "SN1")
    answers = {}
    for way in ("organisation", "per-device"):
        report = tmp_path / f"{way}.json"
        done = run_verify(sheet, sb, "--data", way, "--report", str(report))
        assert done.returncode == 1, explain(done)
        answers[way] = statuses(report_of(report))
    sb.faults.odd("GET", "/api/devices/parsed-data", "error-404")
    report = tmp_path / "fallback.json"
    done = run_verify(sheet, sb, "--report", str(report))
    answers["fallback"] = statuses(report_of(report))
    assert "per device (the platform has no organisation data endpoint)" in done.stdout
    assert answers["organisation"] == answers["per-device"] == answers["fallback"]
    assert answers["organisation"]["SN0"] == "online"
    organisation = report_of(tmp_path / "organisation.json")
    assert {r["key"]: r["records"] for r in organisation["rows"]}["SN0"] == 4  # across pages
    per_device = report_of(tmp_path / "per-device.json")
    assert {r["key"]: r["records"] for r in per_device["rows"]}["SN0"] is None  # "1+"


def test_six_hundred_devices_take_few_data_requests(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.store.insert_devices({"addr": addr(i), "serial": f"SN{i}"} for i in range(600))
    sheet = write_sheet(tmp_path, rows(*range(600)))
    for i in range(0, 600, 2):
        speak(sandbox, f"SN{i}")
    report = tmp_path / "verify.json"
    done = run_verify(sheet, sandbox, "--since", "1h", "--report", str(report))
    assert done.returncode == 1, explain(done)
    data = report_of(report)
    assert data["totals"]["online"] == 300 and data["totals"]["silent"] == 300
    assert data["data_requests"] <= 5


def start_watch(sheet: Path, sb: Sandbox, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        verify_command(sheet, sb, "--watch", "--interval", "1", *extra),
        env=environment(sb.tokens["device-admin"]),
        cwd=sheet.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_watch_ends_when_the_last_device_speaks(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = write_sheet(tmp_path, rows(0, 1))
    assert run_apply(sheet, sandbox, sandbox.tokens["device-admin"]).returncode == 0
    speak(sandbox, "SN0")
    proc = start_watch(sheet, sandbox)
    time.sleep(2.5)
    assert proc.poll() is None  # still waiting for SN1
    speak(sandbox, "SN1")
    out, err = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, out + err
    assert "online 2 · silent 0" in out
    assert "1/2 online · 1 silent" in err  # the line it showed while waiting


def test_watch_gives_up_at_the_timeout_naming_the_rows(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = write_sheet(tmp_path, rows(0, 1, 2))
    assert run_apply(sheet, sandbox, sandbox.tokens["device-admin"]).returncode == 0
    speak(sandbox, "SN0")
    proc = start_watch(sheet, sandbox, "--timeout", "2")
    out, err = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 1, out + err
    assert "still silent after 2 s: rows 3, 4" in err


def test_ctrl_c_ends_a_watch_with_the_state_written(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = write_sheet(tmp_path, rows(0, 1))
    assert run_apply(sheet, sandbox, sandbox.tokens["device-admin"]).returncode == 0
    speak(sandbox, "SN0")
    results = tmp_path / "site.verify.xlsx"
    proc = start_watch(sheet, sandbox)
    time.sleep(3)  # the first check is done; the watch waits for SN1
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    assert results.exists()
    assert "interrupted: the state of the last check is written" in err


def test_a_refused_token_ends_with_exit_3_and_no_traceback(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path, rows(0))
    token = sandbox.tokens["device-admin"]
    sandbox.store.revoke_token(token)
    done = subprocess.run(
        verify_command(sheet, sandbox),
        env=environment(token),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 3, explain(done)
    assert "Traceback" not in done.stderr


def test_watch_on_a_terminal_shows_one_live_line(sandbox: Sandbox, tmp_path: Path) -> None:
    from test_apply_terminal import finish, read_until, spawn

    sheet = write_sheet(tmp_path, rows(0, 1))
    assert run_apply(sheet, sandbox, sandbox.tokens["device-admin"]).returncode == 0
    speak(sandbox, "SN0")
    words = ["verify", str(sheet), "--url", sandbox.url, "--watch", "--interval", "1"]
    env = {**environment(sandbox.tokens["device-admin"]), "PYTHONFAULTHANDLER": "1"}
    pid, fd = spawn(words, env, tmp_path)
    screen = read_until(fd, b"1/2 online \xc2\xb7 1 silent").decode()
    speak(sandbox, "SN1")
    code, rest = finish(pid, fd)
    assert code == 0, screen + rest
    # Rewritten in place (back to the line's start, the line erased), not a new line each time.
    assert re.search(r"\r\x1b\[2K\S*( \S*)?\s+1/2 online · 1 silent · ", screen), repr(screen)
    assert "online 2 · silent 0" in rest
    assert "Traceback" not in screen + rest


def test_odd_answers_and_input_end_cleanly(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = applied_site(sandbox, tmp_path)
    speak(sandbox, "SN0")
    # The assumed organisation endpoint answers 400: per device instead, same answer.
    sandbox.faults.odd("GET", "/api/devices/parsed-data", "echo-400")
    report = tmp_path / "verify.json"
    done = run_verify(sheet, sandbox, "--report", str(report))
    assert done.returncode == 1, explain(done)
    assert "per device (the organisation data endpoint answered 400)" in done.stdout
    assert statuses(report_of(report))["SN0"] == "online"
    for since in ("99999999999d", ""):
        bad = run_verify(sheet, sandbox, "--since", since)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, explain(bad)
    empty = write_sheet(tmp_path / "empty", []) if (tmp_path / "empty").mkdir() is None else None
    assert empty is not None
    nothing = run_verify(empty, sandbox)
    assert nothing.returncode == 2 and "no device rows" in nothing.stderr


def test_a_row_whose_addr_differs_on_the_platform_is_not_called_silent(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.store.create_device({"addr": addr(64), "serial": "SN0"})
    sheet = write_sheet(tmp_path, rows(0))
    report = tmp_path / "verify.json"
    done = run_verify(sheet, sandbox, "--report", str(report))
    assert done.returncode == 1, explain(done)
    [row] = report_of(report)["rows"]
    assert row["status"] == "missing" and addr(64) in row["message"]
