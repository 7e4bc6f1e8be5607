"""Tags as the installer meant them, end to end: the real CLI against the sandbox.

`Haus 4; Keller` is two tags; a corrected tags cell takes off, with `apply --update`,
the tags this sheet's earlier runs put on the device (the journal knows them), and
never a tag somebody else gave the device. Each scenario reads the sandbox's store
back to prove what the platform holds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import openpyxl
from test_apply_e2e import RUN_TIMEOUT, environment, explain, journal_of, run_apply
from test_undo_e2e import run_undo

from provisioner.journal import read_journal
from provisioner.sandbox import Sandbox

HEADER = ["Seriennummer", "Adresse", "Bezeichnung", "Schlagworte"]
ADDR = "70B3D5E700000001"


def site(folder: Path, tags: str, name: str = "site.xlsx") -> Path:
    """A one-device sheet as an installer writes it (German headers); written anew on
    every correction, as the installer saves the same file."""
    book = openpyxl.Workbook()
    tab = book.active
    assert tab is not None
    tab.title = "Geräte"
    tab.append(HEADER)
    tab.append(["SN1", ADDR, "Zähler 1", tags])
    path = folder / name
    book.save(path)
    return path


def the_device(sb: Sandbox) -> dict[str, Any]:
    [device] = sb.store.devices_by("serial", "SN1")
    return device


def run_plan(sheet: Path, sb: Sandbox, *extra: str) -> subprocess.CompletedProcess[str]:
    words = [sys.executable, "-m", "provisioner", "plan", str(sheet), "--url", sb.url]
    return subprocess.run(
        [*words, *extra],
        env=environment(sb.tokens["device-admin"]),
        cwd=sheet.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def test_a_semicolon_separates_tags_as_a_comma_does(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = site(tmp_path, "Haus 4; Keller")
    done = run_apply(sheet, sandbox, sandbox.tokens["device-admin"])
    assert done.returncode == 0, explain(done)
    assert the_device(sandbox)["tags"] == ["Haus 4", "Keller"]


def test_a_template_that_names_its_separator_keeps_that_one_alone(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    template = tmp_path / "pipes.toml"
    template.write_text(
        (Path(__file__).resolve().parent.parent / "templates" / "default.toml")
        .read_text(encoding="utf-8")
        .replace("[devices]\n", '[devices]\nlist_separator = "|"\n', 1),
        encoding="utf-8",
    )
    sheet = site(tmp_path, "Haus 4; Keller|3.OG, links")
    done = run_apply(sheet, sandbox, sandbox.tokens["device-admin"], template=str(template))
    assert done.returncode == 0, explain(done)
    assert the_device(sandbox)["tags"] == ["Haus 4; Keller", "3.OG, links"]


def test_a_corrected_tags_cell_takes_off_only_what_this_sheet_put_on(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    token = sandbox.tokens["device-admin"]
    sheet = site(tmp_path, "Haus 4; Keller")
    created = run_apply(sheet, sandbox, token)
    assert created.returncode == 0, explain(created)
    device_id = the_device(sandbox)["id"]
    # Somebody gives the device a tag of their own, on the platform directly.
    sandbox.store.update_device(device_id, {"tags": ["Haus 4", "Keller", "Wartung"]})

    # The installer corrects the cell: the plan shows what an update would take off.
    site(tmp_path, "Haus 4")
    planned = run_plan(sheet, sandbox)
    assert planned.returncode == 0, explain(planned)
    assert "tags: - Keller (with --update; the device's other tags are kept)" in planned.stdout
    assert "Wartung" not in planned.stdout.split("tags: ", 2)[-1]  # not among the moves
    assert the_device(sandbox)["tags"] == ["Haus 4", "Keller", "Wartung"]  # plan wrote nothing

    # Without --update the device stays, and the summary says it differs.
    kept = run_apply(sheet, sandbox, token)
    assert kept.returncode == 0, explain(kept)
    assert "1 device on the platform differ" in kept.stdout
    assert the_device(sandbox)["tags"] == ["Haus 4", "Keller", "Wartung"]

    updated = run_apply(sheet, sandbox, token, "--update")
    assert updated.returncode == 0, explain(updated)
    assert the_device(sandbox)["tags"] == ["Haus 4", "Wartung"]

    # A tag an earlier --update added is the sheet's too: taken off once the cell drops it.
    site(tmp_path, "Haus 4, Dach")
    planned = run_plan(sheet, sandbox)
    assert "tags: + Dach (with --update" in planned.stdout, explain(planned)
    added = run_apply(sheet, sandbox, token, "--update")
    assert added.returncode == 0, explain(added)
    assert the_device(sandbox)["tags"] == ["Haus 4", "Wartung", "Dach"]
    site(tmp_path, "Haus 4; Treppenhaus")
    planned = run_plan(sheet, sandbox)
    assert "tags: + Treppenhaus - Dach (with --update" in planned.stdout, explain(planned)
    moved = run_apply(sheet, sandbox, token, "--update")
    assert moved.returncode == 0, explain(moved)
    assert the_device(sandbox)["tags"] == ["Haus 4", "Wartung", "Treppenhaus"]

    # Once in line, nothing differs.
    again = run_plan(sheet, sandbox)
    assert again.returncode == 0 and "differs 0" in again.stdout, explain(again)


def test_tags_the_device_had_before_the_sheet_stay(sandbox: Sandbox, tmp_path: Path) -> None:
    # The device was on the platform before this sheet (nobody's run of it put "Keller" on).
    device_id = sandbox.store.create_device(
        {"serial": "SN1", "addr": ADDR, "name": "Zähler 1", "tags": ["Keller"]}
    )["id"]
    sheet = site(tmp_path, "Haus 4")
    planned = run_plan(sheet, sandbox)
    assert "tags: + Haus 4 (with --update" in planned.stdout, explain(planned)
    assert "- Keller" not in planned.stdout
    done = run_apply(sheet, sandbox, sandbox.tokens["device-admin"], "--update")
    assert done.returncode == 0, explain(done)
    assert sandbox.store.get_device(device_id)["tags"] == ["Keller", "Haus 4"]


def test_an_empty_tags_cell_leaves_the_sheets_earlier_tags(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    token = sandbox.tokens["device-admin"]
    sheet = site(tmp_path, "Haus 4; Keller")
    assert run_apply(sheet, sandbox, token).returncode == 0
    site(tmp_path, "")
    done = run_apply(sheet, sandbox, token, "--update")
    assert done.returncode == 0, explain(done)
    assert "nothing to do" in done.stdout
    assert the_device(sandbox)["tags"] == ["Haus 4", "Keller"]


def test_another_sheets_journal_is_refused_by_plan_as_by_apply(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    token = sandbox.tokens["device-admin"]
    first = site(tmp_path, "Haus 4; Keller")
    assert run_apply(first, sandbox, token).returncode == 0
    # Another sheet for the same device, planned with the first sheet's journal: its tags
    # are not the other sheet's, and plan says so as apply would, before any lookup.
    other = site(tmp_path, "Haus 4", name="other.xlsx")
    planned = run_plan(other, sandbox, "--journal", str(journal_of(first)))
    assert planned.returncode == 2, explain(planned)
    assert "belongs to the sheet site.xlsx, not other.xlsx" in planned.stderr
    assert "Traceback" not in planned.stderr


def test_a_create_confirmed_after_a_lost_answer_counts_as_this_sheets(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    token = sandbox.tokens["device-admin"]
    rule = sandbox.faults.odd("POST", "/api/devices", "reset", times=1, commit=True)
    sheet = site(tmp_path, "Haus 4; Keller")
    created = run_apply(sheet, sandbox, token)
    assert created.returncode == 0, explain(created)
    assert rule.hits == 1 and the_device(sandbox)["tags"] == ["Haus 4", "Keller"]
    site(tmp_path, "Haus 4")
    updated = run_apply(sheet, sandbox, token, "--update")
    assert updated.returncode == 0, explain(updated)
    assert the_device(sandbox)["tags"] == ["Haus 4"]


def test_after_an_undo_of_an_update_the_sheets_tags_are_its_own_again(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    token = sandbox.tokens["device-admin"]
    sheet = site(tmp_path, "Haus 5")
    assert run_apply(sheet, sandbox, token).returncode == 0
    device = the_device(sandbox)
    sandbox.store.update_device(device["id"], {"tags": ["fremd", "Haus 5"]})
    site(tmp_path, "Haus 6")
    assert run_apply(sheet, sandbox, token, "--update").returncode == 0
    assert sorted(the_device(sandbox)["tags"]) == ["Haus 6", "fremd"]
    update_run = read_journal(journal_of(sheet)).runs[-1]
    undone = run_undo(sheet, sandbox, "--run", update_run)
    assert undone.returncode == 0, explain(undone)
    assert sorted(the_device(sandbox)["tags"]) == ["Haus 5", "fremd"]
    # The sheet still says Haus 6: Haus 5 is the sheet's to take off again, fremd is not.
    planned = run_plan(sheet, sandbox)
    assert "- Haus 5" in planned.stdout and "- fremd" not in planned.stdout, planned.stdout
    assert run_apply(sheet, sandbox, token, "--update").returncode == 0
    assert sorted(the_device(sandbox)["tags"]) == ["Haus 6", "fremd"]
