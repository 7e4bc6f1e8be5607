"""A platform that accepts connections and closes them unanswered for a while (the sandbox's
``faults.hang_up``): plan, verify and apply ride it out through the real CLI, as they ride out
refused connections; apply still makes every device exactly once.

The window (3 s) is shorter than the client's bound before the platform first answered
(FIRST_CONTACT_SECONDS, 5 s): the client's first failure comes after the window opened,
so its last try falls after the window closed, however slow the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from test_apply_e2e import (
    FINISHED,
    RUN_TIMEOUT,
    Factory,
    assert_exactly_once,
    assert_journal_consistent,
    device_sheet,
    environment,
    explain,
    finish,
    journal_of,
    results_rows,
    run_apply,
    start_apply,
    wait_for_devices,
)

from provisioner.platform import FIRST_CONTACT_SECONDS
from provisioner.sandbox import Sandbox

WINDOW = 3.0
UNREACHABLE = "platform unreachable, retrying"
CLOSED = "RemoteProtocolError"


def run(command: str, sheet: Path, sb: Sandbox, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provisioner", command, str(sheet), "--url", sb.url, *extra],
        env=environment(sb.tokens["device-admin"]),
        cwd=sheet.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def test_the_window_is_within_the_first_contact_bound() -> None:
    assert WINDOW < FIRST_CONTACT_SECONDS


def test_plan_rides_out_connections_closed_unanswered(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet, addrs = device_sheet(tmp_path, 20)
    sandbox.store.insert_devices(
        [{"serial": f"SN{i:06d}", "addr": addrs[i], "name": f"Zähler {i}"} for i in range(10)]
    )
    report = tmp_path / "plan.json"
    sandbox.faults.hang_up(WINDOW)

    done = run("plan", sheet, sandbox, "--lookup", "per-key", "--report", str(report))

    assert done.returncode == 0, explain(done)
    assert UNREACHABLE in done.stderr and CLOSED in done.stderr, explain(done)
    assert "Traceback" not in done.stdout + done.stderr
    actions = [row["action"] for row in json.loads(report.read_text())["rows"]]
    assert actions == ["exists"] * 10 + ["create"] * 10


def test_verify_rides_out_connections_closed_unanswered(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet, _ = device_sheet(tmp_path, 6)
    assert run_apply(sheet, sandbox, sandbox.tokens["device-admin"]).returncode == FINISHED
    for device in sandbox.store.list_devices(limit=100):
        sandbox.store.add_parsed_data(int(device["id"]), {"volume_m3": 1.5}, None)
    report = tmp_path / "verify.json"
    sandbox.faults.hang_up(WINDOW)

    done = run("verify", sheet, sandbox, "--report", str(report))

    assert done.returncode == 0, explain(done)
    assert UNREACHABLE in done.stderr and CLOSED in done.stderr, explain(done)
    assert "Traceback" not in done.stdout + done.stderr
    assert json.loads(report.read_text())["totals"]["online"] == 6


def test_apply_rides_out_connections_closed_unanswered_making_each_device_once(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    # Slow enough to hang up mid-run; a few creates also commit and lose their answer, so
    # the lookups that settle them may fall into the window too.
    sb = sandbox_factory(latency_ms=100, drop_after_commit_rate=0.05, fault_seed=20)
    sheet, addrs = device_sheet(tmp_path, 200)
    proc = start_apply(sheet, sb, sb.tokens["device-admin"])
    wait_for_devices(sb, proc, at_least=20)
    sb.faults.hang_up(WINDOW)

    code, out, err = finish(proc)

    assert code == FINISHED, out + err
    assert UNREACHABLE in err and CLOSED in err, out + err
    assert "Traceback" not in out + err
    assert_exactly_once(sb, addrs)
    assert all(row["Status"] == "created" for row in results_rows(sheet))
    records: list[dict[str, Any]] = assert_journal_consistent(journal_of(sheet), sb)
    lost = [r for r in records if r.get("event") == "unknown"]
    assert any(CLOSED in str(r.get("message")) for r in lost), "no create was closed unanswered"
