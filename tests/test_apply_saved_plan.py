"""`apply --plan`: a saved plan is applied only while it still holds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from provisioner.sandbox import Sandbox

SAMPLE = Path(__file__).resolve().parent.parent / "sample_sheets" / "site-hh-04.xlsx"


def cli(sb: Sandbox, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "PROVISIONER_URL": sb.url,
        "PROVISIONER_TOKEN": sb.tokens["org-admin"],
    }
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_saved_plan_is_refused_when_a_create_row_now_exists(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    shutil.copyfile(SAMPLE, tmp_path / "site.xlsx")
    planned = cli(
        sandbox, tmp_path, "plan", "site.xlsx", "-t", "lorawan-meter", "--out", "plan.json"
    )
    assert planned.returncode == 0, planned.stdout + planned.stderr
    saved = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
    first = next(r for r in saved["rows"] if r["action"] == "create" and r["kind"] == "device")
    # Someone creates that device in the meantime.
    sandbox.store.insert_devices([{"addr": first["key"], "serial": "someone-else"}])
    done = cli(
        sandbox,
        tmp_path,
        "apply",
        "site.xlsx",
        "-t",
        "lorawan-meter",
        "--plan",
        "plan.json",
        "--yes",
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no longer holds" in done.stderr and f"row {first['row']}" in done.stderr
    assert sandbox.store.count_devices() == 1  # nothing was created


def test_saved_plan_is_refused_when_the_sheet_changed(sandbox: Sandbox, tmp_path: Path) -> None:
    shutil.copyfile(SAMPLE, tmp_path / "site.xlsx")
    assert (
        cli(
            sandbox, tmp_path, "plan", "site.xlsx", "-t", "lorawan-meter", "--out", "plan.json"
        ).returncode
        == 0
    )
    with (tmp_path / "site.xlsx").open("ab") as sheet:
        sheet.write(b"\0")  # any change to the file
    done = cli(
        sandbox,
        tmp_path,
        "apply",
        "site.xlsx",
        "-t",
        "lorawan-meter",
        "--plan",
        "plan.json",
        "--yes",
    )
    assert done.returncode == 2
    assert "changed since" in done.stderr
    assert sandbox.store.count_devices() == 0


def test_saved_plan_that_holds_is_applied(sandbox: Sandbox, tmp_path: Path) -> None:
    shutil.copyfile(SAMPLE, tmp_path / "site.xlsx")
    assert (
        cli(
            sandbox, tmp_path, "plan", "site.xlsx", "-t", "lorawan-meter", "--out", "plan.json"
        ).returncode
        == 0
    )
    done = cli(
        sandbox,
        tmp_path,
        "apply",
        "site.xlsx",
        "-t",
        "lorawan-meter",
        "--plan",
        "plan.json",
        "--yes",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert sandbox.store.count_devices() == 60
