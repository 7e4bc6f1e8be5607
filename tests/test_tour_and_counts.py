"""Issue 23's loose ends, end to end: a --watch rides over failed checks and says each
device that comes online; counts in words; a sandbox port in use is a usage error; undo
is done when only users, which the API cannot delete, are left."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from test_apply_e2e import RUN_TIMEOUT, environment, explain, run_apply
from test_verify_e2e import addr, rows, run_verify, speak, write_sheet

from provisioner.actions import StopKind
from provisioner.events import Events
from provisioner.platform import NO_RETRIES, PlatformClient
from provisioner.sandbox import Sandbox
from provisioner.templates import load_template
from provisioner.text import counted, is_are
from provisioner.verify import WATCH_FAILED_CHECKS, verify_sheet

ORGANISATION_DATA = "/api/devices/parsed-data"


def test_a_watch_rides_over_a_failed_check_and_says_who_came_online(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    pytest.importorskip("pty")
    from test_apply_terminal import finish, read_until, spawn

    sheet = write_sheet(tmp_path, rows(0, 1))
    assert run_apply(sheet, sandbox, sandbox.tokens["device-admin"]).returncode == 0
    speak(sandbox, "SN0")
    words = ["verify", str(sheet), "--url", sandbox.url, "--watch", "--interval", "1"]
    words += ["--data", "per-device"]
    env = {**environment(sandbox.tokens["device-admin"]), "PYTHONFAULTHANDLER": "1"}
    pid, fd = spawn(words, env, tmp_path)
    screen = read_until(fd, b"1/2 online \xc2\xb7 1 silent").decode()
    # The next check's read of SN1 fails: a proxy's login page instead of the data.
    sandbox.faults.odd("GET", "/api/devices/{id}/parsed-data", "html", times=1)
    screen += read_until(fd, b"a check failed").decode()
    speak(sandbox, "SN1")
    code, rest = finish(pid, fd)
    assert code == 0, screen + rest  # it went on watching, and SN1 spoke
    assert "trying again in 1 s (1 of 3 failed checks in a row end the watch)" in screen + rest
    assert re.search(r"site\.csv row 3 \(key SN1\): online, data at \d\d:\d\d:\d\d", rest), rest
    assert "(key SN0): online" not in screen + rest  # online from the start: no news
    assert "online 2 · silent 0" in rest and "Traceback" not in screen + rest


class Watching(Events):
    """What a watch says; after its first good check, every read of the data fails."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.said: list[str] = []
        self.checks = 0

    def say(self, line: str) -> None:
        self.said.append(line)

    def checked(self, result: object, left: float) -> None:
        self.checks += 1
        self.sandbox.faults.odd("GET", ORGANISATION_DATA, "error-503")


def test_a_watch_stops_after_failed_checks_in_a_row_with_the_last_good_state(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path, rows(0, 1))
    assert run_apply(sheet, sandbox, sandbox.tokens["device-admin"]).returncode == 0
    speak(sandbox, "SN0")
    client = PlatformClient(
        sandbox.url, sandbox.tokens["device-admin"], retry=NO_RETRIES, outage_seconds=0
    )
    # The first check fails too: a watch rides over it as over any other.
    sandbox.faults.odd("GET", ORGANISATION_DATA, "error-503", times=1)
    heard = Watching(sandbox)
    result = verify_sheet(
        sheet, load_template("default"), client, watch=True, interval=0.05, events=heard
    )
    assert heard.checks == 1
    failed = [line for line in heard.said if line.startswith("a check failed")]
    assert len(failed) == 1 + WATCH_FAILED_CHECKS - 1  # the first, then all but the last
    assert result.stop == StopKind.UNREACHABLE and result.exit_code == 3
    assert f"{WATCH_FAILED_CHECKS} checks in a row failed" in result.stopped
    assert "the state of the last good check is written" in result.stopped
    assert result.totals["online"] == 1 and result.totals["silent"] == 1


def test_counts_are_said_in_the_right_number(sandbox: Sandbox, tmp_path: Path) -> None:
    assert (counted(1, "request"), counted(2, "request"), counted(0, "entry", "entries")) == (
        "1 request",
        "2 requests",
        "0 entries",
    )
    assert (is_are(1), is_are(0)) == ("is", "are")
    sheet = write_sheet(tmp_path, rows(0))
    sandbox.store.create_device({"serial": "SN0", "addr": addr(0), "deviceTypeId": 1})
    speak(sandbox, "SN0")
    done = run_verify(sheet, sandbox, "--data", "per-device")
    assert done.returncode == 0, explain(done)
    assert "data asked for: per device, one request each, 1 request;" in done.stdout
    assert "1 requests" not in done.stdout
    # Nothing on the platform: nothing was asked, and the line says so.
    nowhere = write_sheet(tmp_path, rows(7))
    client = PlatformClient(sandbox.url, sandbox.tokens["device-admin"])
    result = verify_sheet(nowhere, load_template("default"), client)
    assert result.asked() == "no data asked for: no valid row of the sheet is on the platform"


def test_a_sandbox_port_in_use_is_a_usage_error(sandbox: Sandbox) -> None:
    port = sandbox.url.rsplit(":", 1)[1]
    done = subprocess.run(
        [sys.executable, "-m", "provisioner", "sandbox", "--port", port],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2, explain(done)
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "choose another --port (0 picks a free one)" in done.stderr
    assert "Traceback" not in done.stderr


def test_undo_is_done_when_only_users_are_left(sandbox: Sandbox, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    devices = book.active
    assert devices is not None
    devices.title = "Devices"
    devices.append(["serial", "addr", "name"])
    for i in range(4):
        devices.append([f"SN{i}", addr(i), f"Zähler {i}"])
    users = book.create_sheet("Users")
    users.append(["name", "email", "password", "roles"])
    users.append(["Erika M", "erika@example.com", "Geheim12345", "device-admin"])
    sheet = tmp_path / "site.xlsx"
    book.save(sheet)
    token = sandbox.tokens["org-admin"]
    assert run_apply(sheet, sandbox, token).returncode == 0

    words = [sys.executable, "-m", "provisioner", "undo", str(sheet), "--url", sandbox.url, "--yes"]

    def run_undo() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            words,
            env=environment(token),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )

    first = run_undo()
    assert first.returncode == 0, explain(first)  # 4 deleted; the user kept by rule
    assert sandbox.store.list_devices(limit=10) == [] and len(sandbox.store.list_users()) == 1
    again = run_undo()
    assert again.returncode == 0, explain(again)  # 4 already done, 1 kept: nothing left to do
    assert "users cannot be deleted through the platform's REST API" in again.stdout
