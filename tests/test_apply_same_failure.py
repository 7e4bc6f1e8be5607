"""A platform that refuses the first creates alike: the run stops and says it once."""

from __future__ import annotations

from pathlib import Path

from test_apply_e2e import journal_lines, journal_of, run_apply

from provisioner.sandbox import Sandbox


def refused_sheet(folder: Path, count: int) -> Path:
    sheet = folder / "site.csv"
    lines = ["serial;addr;deviceTypeId"]
    lines += [f"SN{i};70B3D5E7{i:08X};99" for i in range(count)]  # no such device type
    sheet.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sheet


def test_the_first_ten_failing_alike_stop_the_run(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = refused_sheet(tmp_path, 60)
    done = run_apply(sheet, sandbox, sandbox.tokens["device-admin"])
    assert done.returncode == 1, done.stdout + done.stderr
    assert "stopped: the first 10 rows all failed alike" in done.stderr
    assert "deviceTypeId 99 is not a known device type" in done.stderr
    assert "--keep-going" in done.stderr
    intents = [line for line in journal_lines(journal_of(sheet))[0] if line["event"] == "intent"]
    assert len(intents) < 60 - 30  # the rest were never sent
    assert sandbox.store.count_devices() == 0
    # The summary says it once for all those rows, not a line per row.
    assert done.stdout.count("is not a known device type") <= 2
    assert " rows (site.csv rows 2, 3, 4" in done.stdout or "rows (site.csv rows" in done.stdout


def test_keep_going_sends_every_row(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = refused_sheet(tmp_path, 25)
    done = run_apply(sheet, sandbox, sandbox.tokens["device-admin"], "--keep-going")
    assert done.returncode == 1
    intents = [line for line in journal_lines(journal_of(sheet))[0] if line["event"] == "intent"]
    assert len(intents) == 25
    assert "25 rows (site.csv rows" in done.stdout
