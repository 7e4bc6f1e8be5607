"""A token without the role a tab needs, end to end: the real CLI against the sandbox.

The platform names no token's roles; the 403 that a device-admin token gets when plan
lists the users tells that this token may not create them either (both need
org-admin). Plan blocks the user rows with that reason and exits 1; apply sends what
the token may (devices, downlinks), reports the users as not run with the same reason
and exits 1, not 3. A 403 that the plan could not foresee still stops the run (exit 3).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openpyxl
from test_apply_e2e import (
    RUN_TIMEOUT,
    environment,
    explain,
    results_rows,
    run_apply,
    sample_sheet,
    sample_tab,
)

from provisioner.sandbox import MAX_PAGE_SIZE, Sandbox

TEMPLATE = "lorawan-meter"
NEEDS_ORG_ADMIN = "users need an org-admin token"


def run_plan(
    sheet: Path, sb: Sandbox, token: str, report: Path
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "provisioner", "plan", str(sheet), "--template", TEMPLATE]
    return subprocess.run(
        [*command, "--url", sb.url, "--report", str(report)],
        env=environment(token),
        cwd=sheet.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def queued_types(sb: Sandbox, addr: str) -> set[str]:
    [device] = sb.store.devices_by("addr", addr)
    return {d["type"] for d in sb.store.list_downlinks(device["id"])}


def test_plan_with_a_device_admin_token_blocks_the_users_and_says_why(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = sample_sheet(tmp_path)
    report = tmp_path / "plan.json"

    done = run_plan(sheet, sandbox, sandbox.tokens["device-admin"], report)

    assert done.returncode == 1, explain(done)
    rows = json.loads(report.read_text(encoding="utf-8"))["rows"]
    actions = {
        kind: {r["status"] for r in rows if r["kind"] == kind}
        for kind in {"device", "user", "downlink"}
    }
    assert actions == {"device": {"create"}, "user": {"blocked"}, "downlink": {"queue"}}
    for row in (r for r in rows if r["kind"] == "user"):
        assert row["message"].startswith(NEEDS_ORG_ADMIN), row
    assert done.stdout.count(NEEDS_ORG_ADMIN) == len(sample_tab("Users")), done.stdout
    assert "unknown" not in done.stdout
    # Plan writes nothing.
    assert sandbox.store.count_devices() == 0 and sandbox.store.list_users() == []


def test_apply_with_a_device_admin_token_sends_what_it_may_and_an_org_admin_the_users(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = sample_sheet(tmp_path)
    devices, users, downlinks = (sample_tab(t) for t in ("Devices", "Users", "Downlinks"))

    done = run_apply(sheet, sandbox, sandbox.tokens["device-admin"], template=TEMPLATE)

    assert done.returncode == 1, explain(done)  # rows need attention; the platform is fine
    assert "stopped" not in done.stdout + done.stderr, explain(done)
    held = {str(d["addr"]).upper() for d in sandbox.store.list_devices(limit=MAX_PAGE_SIZE)}
    assert held == {row["DevEUI"].upper() for row in devices}
    for downlink in downlinks:
        assert downlink["type"] in queued_types(sandbox, downlink["key"]), downlink
    assert sandbox.store.list_users() == []
    # Alike rows are one entry, each tab's rows as a range.
    numbers = f"2\u2013{len(users) + 1}"
    assert f"{len(users)} rows (Users rows {numbers}): not run" in done.stdout, done.stdout
    user_results = results_rows(sheet, "Users")
    assert [r["Status"] for r in user_results] == ["not run"] * len(users)
    assert all(str(r["Message"]).startswith(NEEDS_ORG_ADMIN) for r in user_results)

    # The same token again: nothing it may send is left, and it says so (still exit 1).
    again = run_apply(sheet, sandbox, sandbox.tokens["device-admin"], template=TEMPLATE)
    assert again.returncode == 1, explain(again)
    assert f"nothing sent: {len(users)} rows need a token with another role" in again.stdout

    # An org-admin token does the rest: the users, and nothing twice.
    rest = run_apply(sheet, sandbox, sandbox.tokens["org-admin"], template=TEMPLATE)
    assert rest.returncode == 0, explain(rest)
    assert sorted(u["email"].lower() for u in sandbox.store.list_users()) == sorted(
        u["email"].lower() for u in users
    )
    assert sandbox.store.count_devices() == len(devices)


def test_a_403_the_plan_cannot_foresee_stops_and_names_each_rows_tab(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A network-server token may list devices but not create them: the plan sees only
    the users' 403, so the first device create stops the run, as before (exit 3); the
    rows not run are listed under their own tabs."""
    sheet = sample_sheet(tmp_path)
    workbook = openpyxl.load_workbook(sheet)
    for tab in ("Devices", "Downlinks"):
        workbook[tab].delete_rows(4, workbook[tab].max_row)  # two rows each
    workbook.save(sheet)

    done = run_apply(sheet, sandbox, sandbox.tokens["network-server"], template=TEMPLATE)

    assert done.returncode == 3, explain(done)
    assert "the platform refused the token" in done.stderr
    # Each tab's rows are their own entry (not "Users rows ..." for Downlinks rows).
    assert "2 rows (Devices rows 2\u20133): not run" in done.stdout, done.stdout
    assert "2 rows (Downlinks rows 2\u20133): not run" in done.stdout, done.stdout
    assert "3 rows (Users rows 2\u20134): not run" in done.stdout, done.stdout
    assert sandbox.store.count_devices() == 0 and sandbox.store.list_users() == []
