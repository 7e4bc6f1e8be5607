"""`provisioner demo` as a new user runs it: the whole story, and the files it leaves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openpyxl

from provisioner.journal import read_journal


def test_demo_runs_the_whole_story(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "provisioner", "demo", "--folder", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "Traceback" not in out + done.stderr
    for step in (
        "1. validate",
        "3. plan",
        "simulated crash",
        "5. The same command again",
        "nothing to do",
        "the sheet's 60, each once",
    ):
        assert step in out
    folder = tmp_path / "demo"
    plan = json.loads((folder / "plan.json").read_text(encoding="utf-8"))
    assert plan["command"] == "plan" and plan["totals"]["create"] == 63
    assert "<table" in (folder / "plan.html").read_text(encoding="utf-8")
    results = openpyxl.load_workbook(folder / "site-hh-04.results.xlsx")
    devices = results["Devices"]
    header = [c.value for c in devices[1]]
    statuses = [
        row[header.index("Status")] for row in devices.iter_rows(min_row=2, values_only=True)
    ]
    assert len(statuses) == 60 and set(statuses) <= {"exists", "created"}
    journal = (folder / "site-hh-04.journal.jsonl").read_text(encoding="utf-8")
    # The crashed run and the resume; the last run had nothing to do and wrote nothing.
    assert journal.count('"event": "start"') == 2
    assert not read_journal(folder / "site-hh-04.journal.jsonl").unresolved()
    # The demo names the files it leaves.
    for name in ("plan.html", "site-hh-04.results.xlsx", "site-hh-04.journal.jsonl"):
        assert name in out


def test_demo_picks_a_fresh_folder(tmp_path: Path) -> None:
    from provisioner.demo import fresh_folder

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("mine")
    assert fresh_folder(tmp_path / "d") == tmp_path / "d-2"
    assert (tmp_path / "d" / "keep.txt").read_text() == "mine"
