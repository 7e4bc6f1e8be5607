"""Plan equals apply (issue 19), end to end: the real CLI against the sandbox.

A downlink a run queued is `exists` in plan as in apply, with the same words;
plan shows what each create sends (console and every report), secrets hidden;
an apply that sends nothing because rows are blocked says so and exits 1, and
says "listed above" only when rows were listed.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import openpyxl
from test_apply_e2e import all_cell_text, explain, run_apply, sample_sheet, sample_tab
from test_plan_e2e import csv_sheet, run_plan

from provisioner.sandbox import Sandbox

BLOCKED, FINISHED = 1, 0


def site(folder: Path, downlinks: list[tuple[str, str, str]]) -> Path:
    """Two devices (the default template, match key serial) and the given Downlinks rows
    (key, type, payload)."""
    workbook = openpyxl.Workbook()
    devices = workbook.active
    assert devices is not None
    devices.title = "Devices"
    devices.append(["serial", "addr", "name", "tags"])
    devices.append(["SN1", "70B3D5E7000000A1", "Keller", "Haus1"])
    devices.append(["SN2", "70B3D5E7000000A2", "Dach", "Haus1"])
    tab = workbook.create_sheet("Downlinks")
    tab.append(["key", "type", "payload"])
    for row in downlinks:
        tab.append(list(row))
    path = folder / "site.xlsx"
    workbook.save(path)
    return path


CONFIG = '{"d": {"listenCron": "0 0/20 * * * *"}, "q": "config"}'
OTHER = '{"d": {"listenCron": "0 0/30 * * * *"}, "q": "config"}'


def report_of(sheet: Path, command: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        sheet.with_name(f"{command}.json").read_text(encoding="utf-8")
    )
    return data


def by_row(report: dict[str, Any], tab: str) -> dict[int, dict[str, Any]]:
    return {row["row"]: row for row in report["rows"] if row["sheet"] == tab}


def plan_and_apply(sheet: Path, sb: Sandbox, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """plan, then apply, each with a JSON report; both must finish."""
    planned = run_plan(sheet, sb.url, token, "--report", str(sheet.with_name("plan.json")))
    assert planned.returncode == FINISHED, planned.stdout + planned.stderr
    applied = run_apply(sheet, sb, token, "--report", str(sheet.with_name("apply.json")))
    assert applied.returncode == FINISHED, explain(applied)
    return report_of(sheet, "plan"), report_of(sheet, "apply")


def test_a_downlink_a_run_queued_is_exists_in_plan_as_in_apply(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    token = sandbox.tokens["org-admin"]
    sheet = site(tmp_path, [("SN1", "config", CONFIG), ("SN2", "config", CONFIG)])
    first_plan, _ = plan_and_apply(sheet, sandbox, token)
    assert [r["action"] for r in by_row(first_plan, "Downlinks").values()] == ["queue", "queue"]
    [device] = sandbox.store.devices_by("serial", "SN1")
    [queued] = sandbox.store.list_downlinks(device["id"])

    # Nothing changed since: plan says what apply says, row by row, in the same words.
    plan, apply = plan_and_apply(sheet, sandbox, token)

    planned, applied = by_row(plan, "Downlinks"), by_row(apply, "Downlinks")
    for number in (2, 3):
        assert planned[number]["action"] == applied[number]["status"] == "exists"
        assert planned[number]["message"] == applied[number]["message"]
        assert "queued on" in planned[number]["message"], planned[number]
        assert planned[number]["sends"] is None  # nothing is sent for it
    assert plan["totals"]["exists"] == 4 and "queue" not in plan["totals"]
    assert sandbox.store.list_downlinks(device["id"]) == [queued], "nothing was queued again"
    # The rule reads the journal: no request more than the first plan's lookup.
    assert plan["lookup"]["requests"] == first_plan["lookup"]["requests"]


def test_a_downlink_changed_in_the_sheet_is_queued_by_plan_and_apply_alike(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    token = sandbox.tokens["org-admin"]
    sheet = site(tmp_path, [("SN1", "config", CONFIG), ("SN2", "config", CONFIG)])
    plan_and_apply(sheet, sandbox, token)
    # Another content for SN2: the journal knows of none such, so it is queued.
    site(tmp_path, [("SN1", "config", CONFIG), ("SN2", "config", OTHER)])
    [sn1] = sandbox.store.devices_by("serial", "SN1")
    [sn2] = sandbox.store.devices_by("serial", "SN2")

    plan, apply = plan_and_apply(sheet, sandbox, token)

    planned, applied = by_row(plan, "Downlinks"), by_row(apply, "Downlinks")
    assert (planned[2]["action"], applied[2]["status"]) == ("exists", "exists")
    assert (planned[3]["action"], applied[3]["status"]) == ("queue", "queued")
    assert planned[3]["sends"] == json.loads(OTHER)
    [now] = sandbox.store.list_downlinks(sn2["id"])
    assert now["content"] == json.loads(OTHER)
    assert len(sandbox.store.list_downlinks(sn1["id"])) == 1


def test_plan_show_creates_lists_what_each_create_sends_with_secrets_hidden(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The sample site (devices with LoRaWAN keys, users with passwords, downlinks)."""
    sheet = sample_sheet(tmp_path)
    token = sandbox.tokens["org-admin"]
    reports = [tmp_path / f"plan.{suffix}" for suffix in ("json", "csv", "html", "xlsx")]
    extra = [word for path in reports for word in ("--report", str(path))]

    done = run_plan(
        sheet, sandbox.url, token, "--show", "creates", *extra, template="lorawan-meter"
    )

    assert done.returncode == FINISHED, done.stdout + done.stderr
    report = json.loads(reports[0].read_text(encoding="utf-8"))
    creates = [row for row in report["rows"] if row["action"] in ("create", "queue")]
    assert len(creates) == 68 and all(row["sends"] is not None for row in creates)
    devices = sample_tab("Devices")
    first = by_row(report, "Devices")[2]["sends"]
    assert first["addr"] == devices[0]["DevEUI"]
    assert first["tags"] == ["Site-HH-04", "Wasser"]
    assert first["initialConfig"] == {"JoinEUI": devices[0]["JoinEUI"], "AppKey": "(hidden)"}
    assert by_row(report, "Users")[2]["sends"]["password"] == "(hidden)"
    assert by_row(report, "Downlinks")[2]["sends"] == json.loads(
        sample_tab("Downlinks")[0]["payload"]
    )
    # The console lists each row with its body, as one line of JSON.
    lines = done.stdout.splitlines()
    at = lines.index(f"Devices row 2 (key {devices[0]['DevEUI']}): create: not on the platform yet")
    assert json.loads(lines[at + 1]) == first
    assert "what each create sends (68 rows):" in done.stdout
    # Every report carries the same bodies: the CSV's sends column, the HTML, the xlsx.
    table = list(csv.DictReader(io.StringIO(reports[1].read_text("utf-8-sig")), delimiter=";"))
    assert (
        json.loads(next(r for r in table if r["row"] == "2" and r["sheet"] == "Devices")["sends"])
        == first
    )
    assert "Wasser" in reports[2].read_text(encoding="utf-8").split('class="diff sends"')[1]
    assert json.dumps(first, ensure_ascii=False) in all_cell_text(reports[3])
    # The JSON keeps the keys scripts rely on (design.md, "Machine-readable output").
    for row in report["rows"]:
        assert {"sheet", "row", "key", "action", "message", "errors"} <= set(row)
    # No password, no LoRaWAN key anywhere.
    secrets = [u["password"] for u in sample_tab("Users")] + [d["AppKey"] for d in devices]
    texts = {"stdout": done.stdout, "stderr": done.stderr}
    texts |= {p.name: p.read_text("utf-8-sig") for p in reports if p.suffix != ".xlsx"}
    texts[reports[3].name] = all_cell_text(reports[3])
    for name, text in texts.items():
        assert not [s for s in secrets if s in text], f"a secret is in {name}"


def test_plan_without_show_creates_says_how_to_see_the_bodies(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # The template knows no column "Notiz": the body lacks a description, and it shows.
    sheet = csv_sheet(tmp_path, "serial,addr,Notiz,tags", ['SN1,70B3D5E7000000B1,Keller,"a;b"'])
    token = sandbox.tokens["org-admin"]

    plain = run_plan(sheet, sandbox.url, token)
    shown = run_plan(sheet, sandbox.url, token, "--show", "creates")

    assert plain.returncode == shown.returncode == FINISHED, plain.stdout + shown.stdout
    assert "1 row is created or queued: --show creates lists what apply sends" in plain.stdout
    assert "what each create sends" not in plain.stdout
    body = json.loads(
        shown.stdout.splitlines()[
            shown.stdout.splitlines().index(
                "site.csv row 2 (key SN1): create: not on the platform yet"
            )
            + 1
        ]
    )
    # "a;b" is two tags now (issue 19), and the body shows it before anything is sent.
    assert body == {
        "serial": "SN1",
        "addr": "70B3D5E7000000B1",
        "tags": ["a", "b"],
        "deviceTypeId": 1,
    }
    assert "--show creates lists" not in shown.stdout


def test_plan_show_refuses_what_is_neither_a_number_nor_creates(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = csv_sheet(tmp_path, "serial,addr", ["SN1,70B3D5E7000000C1"])
    done = run_plan(sheet, sandbox.url, sandbox.tokens["org-admin"], "--show", "all")
    assert done.returncode == 2
    assert "'all' is neither a number of rows (1 or more) nor 'creates'" in done.stderr


def test_an_apply_whose_every_row_is_blocked_sends_nothing_and_says_so(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # Both addrs belong to devices with other serials already.
    sandbox.store.insert_devices(
        [
            {"serial": "OLD1", "addr": "70B3D5E7000000D1"},
            {"serial": "OLD2", "addr": "70B3D5E7000000D2"},
        ]
    )
    sheet = csv_sheet(tmp_path, "serial,addr", ["NEW1,70B3D5E7000000D1", "NEW2,70B3D5E7000000D2"])
    token = sandbox.tokens["org-admin"]
    before = sandbox.store.count_devices()

    planned = run_plan(sheet, sandbox.url, token)
    applied = run_apply(sheet, sandbox, token)

    assert planned.returncode == BLOCKED, planned.stdout
    assert applied.returncode == BLOCKED, explain(applied)
    assert "nothing to do" not in applied.stdout
    assert "nothing sent: 2 rows are blocked (listed above)" in applied.stdout
    listed = applied.stdout.split("nothing sent")[0]
    assert "site.csv row 2 (key NEW1): blocked" in listed
    assert "site.csv row 3 (key NEW2): blocked" in listed
    assert sandbox.store.count_devices() == before


def test_an_apply_with_every_row_on_the_platform_has_nothing_to_do_and_lists_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.store.insert_devices([{"serial": "SN1", "addr": "70B3D5E7000000E1"}])
    sheet = csv_sheet(tmp_path, "serial,addr", ["SN1,70B3D5E7000000E1"])
    token = sandbox.tokens["org-admin"]

    done = run_apply(sheet, sandbox, token)

    assert done.returncode == FINISHED, explain(done)
    assert "nothing to do: every row is on the platform\n" in done.stdout
    assert "listed above" not in done.stdout
    assert "site.csv row 2" not in done.stdout

    # One that differs is listed, and the words say so.
    differs = csv_sheet(tmp_path, "serial,addr,name", ["SN1,70B3D5E7000000E1,Dach"], "other.csv")
    again = run_apply(differs, sandbox, token)
    assert again.returncode == FINISHED, explain(again)
    assert "other.csv row 2 (key SN1): differs" in again.stdout
    assert "nothing to do: every row is on the platform; 1 row differs from it (listed above)" in (
        again.stdout
    )
