"""`provisioner apply --update` end to end: the real CLI against the sandbox.

Every scenario reads the platform's state back from the sandbox's store: what
the sheet changes is changed, what it leaves empty stays, a device edited on
the platform since the plan is never overwritten.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_apply_e2e import (
    RUN_TIMEOUT,
    Factory,
    environment,
    explain,
    journal_lines,
    journal_of,
    results_rows,
    run_apply,
)
from test_apply_terminal import finish, read_until, spawn

from provisioner.sandbox import Sandbox

HEADER = "serial;addr;name;description;deviceTypeId;tags;lat;lon;cfg:listenCron;cfg:AppKey"
APP_KEY = "2B7E151628AED2A6ABF7158809CF4F3C"


def addr(i: int) -> str:
    return f"70B3D5E7{i:08X}"


def seed(sb: Sandbox, *devices: dict[str, Any]) -> dict[str, int]:
    """Devices on the platform before the run; serial -> id."""
    return {d["serial"]: sb.store.create_device(d)["id"] for d in devices}


def sheet_of(folder: Path, rows: list[str], name: str = "site.csv") -> Path:
    sheet = folder / name
    sheet.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return sheet


def device(sb: Sandbox, device_id: int) -> dict[str, Any]:
    return sb.store.get_device(device_id)


def corrected_site(sb: Sandbox, folder: Path) -> tuple[Path, dict[str, int]]:
    """Six devices on the platform, each with one thing the corrected sheet changes."""
    ids = seed(
        sb,
        {"serial": "SN0", "addr": addr(0), "name": "Zähler 0", "description": "Dach"},
        {"serial": "SN1", "addr": addr(1), "name": "Zähler 1", "tags": ["alt"]},
        {"serial": "SN2", "addr": addr(2), "name": "Zähler 2", "deviceTypeId": 1},
        {
            "serial": "SN3",
            "addr": addr(3),
            "name": "Zähler 3",
            "initialConfig": {"listenCron": "0 0 * * * *", "other": "x", "AppKey": APP_KEY},
        },
        {"serial": "SN4", "addr": addr(4), "name": "Zähler 4", "location": {"lat": 1, "lon": 2}},
        {"serial": "SN5", "addr": addr(5), "name": "Zähler 5", "description": "bleibt"},
    )
    sheet = sheet_of(
        folder,
        [
            f"SN0;{addr(0)};Zähler 0;Keller;;;;;;",
            f"SN1;{addr(1)};Zähler 1;;;Haus3;;;;",
            f"SN2;{addr(2)};Zähler 2;;2;;;;;",
            f"SN3;{addr(3)};Zähler 3;;;;;;0 0/20 * * * *;",
            f"SN4;{addr(4)};Zähler 4;;;;53.55;9.99;;",
            f"SN5;{addr(5)};Zähler 5;;;;;;;",  # empty cells: nothing to change
            f"SN6;{addr(6)};Zähler 6;neu;;;;;;",  # not on the platform yet
        ],
    )
    return sheet, ids


def test_without_update_differing_devices_stay_and_the_summary_says_so(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory()
    sheet, ids = corrected_site(sb, tmp_path)
    before = {serial: device(sb, i) for serial, i in ids.items()}
    done = run_apply(sheet, sb, sb.tokens["device-admin"])
    assert done.returncode == 0, explain(done)
    assert "5 devices on the platform differ from the sheet" in done.stdout
    assert "--update would change them" in done.stdout
    assert {serial: device(sb, i) for serial, i in ids.items()} == before
    assert sb.store.count_devices() == 7  # SN6 was created


def test_update_changes_what_the_sheet_sets_and_nothing_else(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory()
    sheet, ids = corrected_site(sb, tmp_path)
    before = {serial: device(sb, i) for serial, i in ids.items()}
    report = tmp_path / "apply.json"
    done = run_apply(sheet, sb, sb.tokens["device-admin"], "--update", "--report", str(report))
    assert done.returncode == 0, explain(done)
    now = {serial: device(sb, i) for serial, i in ids.items()}
    assert now["SN0"]["description"] == "Keller"
    assert now["SN1"]["tags"] == ["alt", "Haus3"]  # the device's own tag is kept
    assert now["SN2"]["deviceTypeId"] == 2
    assert now["SN3"]["initialConfig"] == {
        "listenCron": "0 0/20 * * * *",
        "other": "x",
        "AppKey": APP_KEY,
    }
    assert now["SN4"]["location"] == {"lat": 53.55, "lon": 9.99}
    assert now["SN5"] == before["SN5"]  # empty cells left it as it was
    for serial in ("SN0", "SN1", "SN2", "SN3", "SN4"):
        changed = {k for k in now[serial] if now[serial][k] != before[serial][k]}
        assert (
            changed - {"updatedAt"}
            == {
                "SN0": {"description"},
                "SN1": {"tags"},
                "SN2": {"deviceTypeId"},
                "SN3": {"initialConfig"},
                "SN4": {"location"},
            }[serial]
        )
        assert now[serial]["updatedAt"] > before[serial]["updatedAt"]
        assert now[serial]["createdAt"] == before[serial]["createdAt"]
    assert sb.store.count_devices() == 7

    # What the installer reads: the results workbook and the report.
    status = {r["Status"] for r in results_rows(sheet) if str(r.get("serial")) == "SN1"}
    assert status == {"updated"}
    messages = {str(r["serial"]): r["Message"] for r in results_rows(sheet)}
    assert messages["SN0"] == "updated: description"
    assert messages["SN3"] == "updated: cfg:listenCron"
    rows = {r["key"]: r for r in json.loads(report.read_text(encoding="utf-8"))["rows"]}
    assert rows["SN1"]["changes"] == [{"field": "tags", "add": ["Haus3"], "remove": []}]
    assert rows["SN0"]["changes"] == [{"field": "description", "before": "Dach", "after": "Keller"}]
    assert rows["SN6"]["status"] == "created"

    # The journal keeps the before and after images, never a LoRaWAN key.
    lines, _ = journal_lines(journal_of(sheet))
    updates = [line for line in lines if line.get("op") == "update"]
    assert {line["event"] for line in updates} == {"intent", "done"}
    sn0 = next(u for u in updates if u["key"] == "SN0" and u["event"] == "done")
    assert (sn0["before"]["description"], sn0["after"]["description"]) == ("Dach", "Keller")
    assert APP_KEY not in journal_of(sheet).read_text(encoding="utf-8")

    # Once in line, a second run has nothing to do.
    again = run_apply(sheet, sb, sb.tokens["device-admin"], "--update")
    assert again.returncode == 0, explain(again)
    assert "nothing to do" in again.stdout
    assert {serial: device(sb, i) for serial, i in ids.items()} == now


def test_update_fields_limits_what_changes(sandbox_factory: Factory, tmp_path: Path) -> None:
    sb = sandbox_factory()
    sheet, ids = corrected_site(sb, tmp_path)
    before = {serial: device(sb, i) for serial, i in ids.items()}
    done = run_apply(sheet, sb, sb.tokens["device-admin"], "--update", "description,tags")
    assert done.returncode == 0, explain(done)
    now = {serial: device(sb, i) for serial, i in ids.items()}
    assert now["SN0"]["description"] == "Keller"
    assert now["SN1"]["tags"] == ["alt", "Haus3"]
    for serial in ("SN2", "SN3", "SN4", "SN5"):
        assert now[serial] == before[serial]
    assert "3 devices on the platform differ from the sheet" in done.stdout


def test_an_unknown_update_field_is_refused_with_a_hint(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet, _ = corrected_site(sandbox, tmp_path)
    done = run_apply(sheet, sandbox, sandbox.tokens["device-admin"], "--update", "descripton")
    assert done.returncode == 2, explain(done)
    assert "did you mean description" in done.stderr and "Traceback" not in done.stderr
    addr_change = run_apply(sheet, sandbox, sandbox.tokens["device-admin"], "--update", "addr")
    assert addr_change.returncode == 2 and "'addr' is not a field" in addr_change.stderr


def test_exact_tags_make_the_sheets_list_the_whole_list(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory()
    ids = seed(sb, {"serial": "SN1", "addr": addr(1), "tags": ["alt", "Haus3"]})
    template = tmp_path / "exact.toml"
    template.write_text(
        (Path(__file__).resolve().parent.parent / "templates" / "default.toml")
        .read_text(encoding="utf-8")
        .replace('tags = "add"', 'tags = "exact"'),
        encoding="utf-8",
    )
    sheet = sheet_of(tmp_path, [f"SN1;{addr(1)};;;;Haus3,Keller;;;;"])
    done = run_apply(sheet, sb, sb.tokens["device-admin"], "--update", template=str(template))
    assert done.returncode == 0, explain(done)
    assert device(sb, ids["SN1"])["tags"] == ["Haus3", "Keller"]


def test_an_addr_change_is_blocked_and_the_device_stays(sandbox: Sandbox, tmp_path: Path) -> None:
    ids = seed(sandbox, {"serial": "SN1", "addr": addr(1), "description": "Dach"})
    before = device(sandbox, ids["SN1"])
    sheet = sheet_of(tmp_path, [f"SN1;{addr(99)};;Keller;;;;;;"])
    done = run_apply(sheet, sandbox, sandbox.tokens["device-admin"], "--update")
    assert done.returncode == 1, explain(done)
    assert "platform admin" in done.stdout
    assert device(sandbox, ids["SN1"]) == before
    assert sandbox.store.count_devices() == 1


def test_an_edit_on_the_platform_after_the_saved_plan_is_never_overwritten(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ids = seed(
        sandbox,
        {"serial": "SN0", "addr": addr(0), "description": "Dach"},
        {"serial": "SN1", "addr": addr(1), "description": "Dach"},
    )
    sheet = sheet_of(tmp_path, [f"SN0;{addr(0)};;Keller;;;;;;", f"SN1;{addr(1)};;Keller;;;;;;"])
    saved = tmp_path / "plan.json"
    token = sandbox.tokens["device-admin"]
    planned = subprocess.run(
        [sys.executable, "-m", "provisioner", "plan", str(sheet), "--url", sandbox.url]
        + ["--out", str(saved)],
        env=environment(token),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert planned.returncode == 0, explain(planned)
    # Somebody edits SN0 on the platform after the plan was made.
    sandbox.store.update_device(ids["SN0"], {"description": "Technikraum, von Hand"})
    edited = device(sandbox, ids["SN0"])
    done = run_apply(sheet, sandbox, token, "--plan", str(saved), "--update")
    assert done.returncode == 1, explain(done)
    assert device(sandbox, ids["SN0"]) == edited
    assert device(sandbox, ids["SN1"])["description"] == "Keller"
    rows = {str(r["serial"]): r for r in results_rows(sheet)}
    assert rows["SN0"]["Status"] == "skipped"
    assert rows["SN0"]["Message"].startswith("changed on the platform since the plan (at ")
    assert edited["updatedAt"] in rows["SN0"]["Message"]


@pytest.mark.parametrize("carried_out", [True, False], ids=["committed", "not-committed"])
def test_a_put_without_an_answer_is_settled_by_reading_the_device(
    sandbox: Sandbox, tmp_path: Path, carried_out: bool
) -> None:
    ids = seed(sandbox, {"serial": "SN0", "addr": addr(0), "description": "Dach"})
    sheet = sheet_of(tmp_path, [f"SN0;{addr(0)};;Keller;;;;;;"])
    rule = sandbox.faults.odd(
        "PUT", f"/api/devices/{ids['SN0']}", "reset", times=1, commit=carried_out
    )
    done = run_apply(sheet, sandbox, sandbox.tokens["device-admin"], "--update")
    assert done.returncode == 0, explain(done)
    assert rule.hits == 1
    assert device(sandbox, ids["SN0"])["description"] == "Keller"
    [row] = results_rows(sheet)
    assert row["Status"] == "updated"
    if carried_out:
        assert "confirmed by reading the device" in row["Message"]
    events = [
        line["event"] for line in journal_lines(journal_of(sheet))[0] if line.get("op") == "update"
    ]
    assert "unknown" in events and events[-1] == "done"


def test_a_platform_without_updates_stops_before_the_next_one(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ids = seed(
        sandbox,
        {"serial": "SN0", "addr": addr(0), "description": "Dach"},
        {"serial": "SN1", "addr": addr(1), "description": "Dach"},
    )
    before = {serial: device(sandbox, i) for serial, i in ids.items()}
    sandbox.faults.odd("PUT", "/api/devices/{devId}", "error-405")
    sheet = sheet_of(
        tmp_path,
        [
            f"SN2;{addr(2)};;neu;;;;;;",
            f"SN0;{addr(0)};;Keller;;;;;;",
            f"SN1;{addr(1)};;Keller;;;;;;",
        ],
    )
    done = run_apply(
        sheet, sandbox, sandbox.tokens["device-admin"], "--update", "--concurrency", "1"
    )
    assert done.returncode == 1, explain(done)
    assert "does not offer device updates through its REST API" in done.stderr
    assert done.stderr.count("Traceback") == 0
    assert {serial: device(sandbox, i) for serial, i in ids.items()} == before
    assert sandbox.store.count_devices() == 3  # the create before the updates stays
    statuses = sorted(r["Status"] for r in results_rows(sheet))
    assert statuses == ["created", "failed", "not run"]


def test_the_question_shows_the_changes_as_a_diff(sandbox: Sandbox, tmp_path: Path) -> None:
    seed(
        sandbox,
        {"serial": "SN0", "addr": addr(0), "description": "Dach"},
        {"serial": "SN1", "addr": addr(1), "tags": ["alt"]},
    )
    sheet = sheet_of(tmp_path, [f"SN0;{addr(0)};;Keller;;;;;;", f"SN1;{addr(1)};;;;Haus3;;;;"])
    words = ["apply", str(sheet), "--url", sandbox.url, "--journal", str(journal_of(sheet))]
    env = {**environment(sandbox.tokens["device-admin"]), "PYTHONFAULTHANDLER": "1"}
    pid, fd = spawn([*words, "--update"], env, tmp_path)
    screen = read_until(fd, b"Send 2 rows to").decode()
    os.write(fd, b"n\r")
    code, rest = finish(pid, fd)
    assert code == 2, screen + rest
    assert "2 devices will be updated:" in screen
    assert '~ description: "Dach" -> "Keller"' in screen
    assert "+ tag Haus3" in screen
    assert device(sandbox, 1)["description"] == "Dach"


def test_a_row_updated_in_some_fields_says_what_still_differs(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ids = seed(sandbox, {"serial": "SN0", "addr": addr(0), "description": "Dach", "tags": ["a"]})
    sheet = sheet_of(tmp_path, [f"SN0;{addr(0)};;Keller;;b;;;;"])
    done = run_apply(sheet, sandbox, sandbox.tokens["device-admin"], "--update", "description")
    assert done.returncode == 0, explain(done)
    now = device(sandbox, ids["SN0"])
    assert (now["description"], now["tags"]) == ("Keller", ["a"])
    [row] = results_rows(sheet)
    assert row["Message"] == "updated: description; tags still differ (not in --update)"


def test_a_key_the_device_holds_never_leaks_when_the_platform_echoes_the_body(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # The sheet changes only the description; the PUT carries the device's whole
    # initialConfig, and the platform answers with the body in its error message.
    ids = seed(
        sandbox,
        {
            "serial": "SN0",
            "addr": addr(0),
            "description": "Dach",
            "initialConfig": {"appKey": APP_KEY},
        },
    )
    sandbox.faults.odd("PUT", f"/api/devices/{ids['SN0']}", "echo-400")
    sheet = sheet_of(tmp_path, [f"SN0;{addr(0)};;Keller;;;;;;"])
    report = tmp_path / "apply.json"
    done = run_apply(
        sheet, sandbox, sandbox.tokens["device-admin"], "--update", "--report", str(report)
    )
    assert done.returncode == 1, explain(done)
    [row] = results_rows(sheet)
    assert row["Status"] == "failed" and "HTTP 400" in row["Message"]
    for text in (
        done.stdout,
        done.stderr,
        report.read_text(encoding="utf-8"),
        journal_of(sheet).read_text(encoding="utf-8"),
        str(results_rows(sheet)),
    ):
        assert APP_KEY not in text


def test_template_defaults_do_not_overwrite_what_the_device_has(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # The default template fills an empty deviceTypeId with 1; the site template below
    # adds a site tag and makes tags exact. Empty cells must leave the device's values.
    ids = seed(
        sandbox,
        {"serial": "SN0", "addr": addr(0), "description": "Dach", "deviceTypeId": 3},
        {"serial": "SN1", "addr": addr(1), "description": "Dach", "tags": ["Keller", "MbusGw"]},
    )
    template = tmp_path / "site.toml"
    template.write_text(
        (Path(__file__).resolve().parent.parent / "templates" / "default.toml")
        .read_text(encoding="utf-8")
        .replace('tags = "add"', 'tags = "exact"')
        .replace('# site_tag = "Site-HH-04"', 'site_tag = "Site-HH-04"'),
        encoding="utf-8",
    )
    sheet = sheet_of(tmp_path, [f"SN0;{addr(0)};;Keller;;;;;;", f"SN1;{addr(1)};;Keller;;;;;;"])
    done = run_apply(
        sheet, sandbox, sandbox.tokens["device-admin"], "--update", template=str(template)
    )
    assert done.returncode == 0, explain(done)
    first, second = device(sandbox, ids["SN0"]), device(sandbox, ids["SN1"])
    assert (first["description"], first["deviceTypeId"]) == ("Keller", 3)
    assert (second["description"], second["tags"]) == ("Keller", ["Keller", "MbusGw"])
