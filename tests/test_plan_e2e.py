"""`provisioner plan` end to end: the real CLI in a subprocess against the sandbox.

The sandbox runs in the test process on a loopback port and is seeded straight
into its store (``insert_devices``), so that platforms of 20000 devices cost a
fraction of a second. Every run is also checked for the token in its output.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from provisioner.lookup import PAGE_COST
from provisioner.resources import data_folder
from provisioner.sandbox import MAX_PAGE_SIZE, Sandbox

RUN_TIMEOUT = 60  # seconds for one plan run; a hang fails the test instead of the suite
SITE_TAG = "Site-X"

Factory = Callable[..., Sandbox]


# --- sheets and templates ---------------------------------------------------------------------


def csv_sheet(folder: Path, header: str, lines: Iterable[str], name: str = "site.csv") -> Path:
    sheet = folder / name
    sheet.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return sheet


def site_template(folder: Path) -> Path:
    """The built-in default template with a site tag (top-level keys come before tables)."""
    default = (data_folder("templates") / "default.toml").read_text(encoding="utf-8")
    path = folder / "site-x.toml"
    path.write_text(f'site_tag = "{SITE_TAG}"\n' + default, encoding="utf-8")
    return path


def serial(i: int) -> str:
    return f"SN{i:06d}"


def addr(i: int) -> str:
    return f"70B3D5E7{i:08X}"


def numbered_devices(count: int, tags: list[str] | None = None) -> list[dict[str, Any]]:
    return [{"serial": serial(i), "addr": addr(i), "tags": tags} for i in range(count)]


def numbered_sheet(folder: Path, numbers: Iterable[int]) -> Path:
    return csv_sheet(folder, "serial,addr", (f"{serial(i)},{addr(i)}" for i in numbers))


# --- running the command ----------------------------------------------------------------------


def environment(token: str | None) -> dict[str, str]:
    # No PROVISIONER_URL/CONFIG from the developer's shell may reach the run.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")}
    if token is not None:
        env["PROVISIONER_TOKEN"] = token
    return env


def run_plan(
    sheet: Path,
    url: str,
    token: str | None,
    *extra: str,
    template: str | Path = "default",
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "provisioner", "plan", str(sheet), "--template", str(template)]
    result = subprocess.run(
        [*command, "--url", url, *extra],
        env=environment(token),
        cwd=sheet.parent,  # no settings file of the checkout applies
        stdin=subprocess.DEVNULL,  # not a terminal: no token prompt
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    if token:
        assert token not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result


def plan_json(
    sheet: Path, url: str, token: str, *extra: str, template: str | Path = "default", code: int = 0
) -> dict[str, Any]:
    """Run plan with a JSON report; check the exit code; return the report."""
    report = sheet.with_name(f"{sheet.stem}.plan.json")
    result = run_plan(sheet, url, token, "--report", str(report), *extra, template=template)
    assert result.returncode == code, result.stdout + result.stderr
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return data


def by_key(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in data["rows"]}


def token_of(sb: Sandbox) -> str:
    return sb.tokens["device-admin"]


# --- every action and reason ------------------------------------------------------------------

# One sheet with a row for every device action (default template + site tag, match key serial).
ACTION_SHEET = [
    "serial,addr,name,description,tags,deviceTypeId",
    "NEW-1,70B3D5E700000001,Zähler neu,Keller,,1",
    # On the platform with the tags in another order, spaces around the description
    # and the addr in lower case: all the same after normalising.
    'SAME-1,70B3D5E7000000AA,,Keller,"b,a",1',
    "DIFF-1,70B3D5E7000000AB,,3.OG Müller,x,1",
    "BAD-1,70B3D5E7 0001,,,,abc",
    "DUP-1,70B3D5E700000002,,,,1",
    "DUP-1,70B3D5E700000003,,,,1",
    "TWIN-1,70B3D5E700000004,,,,1",
    "ADDR-1,70B3D5E7000000AE,,,,1",
]
ACTION_PLATFORM = [
    {
        "serial": "SAME-1",
        "addr": "70b3d5e7000000aa",
        "description": "  Keller ",
        "tags": [SITE_TAG, "a", "b", "a"],
        "deviceTypeId": 1,
    },
    {
        "serial": "DIFF-1",
        "addr": "70B3D5E7000000AB",
        "description": "Dach",
        "tags": ["x", "y", SITE_TAG],
        "deviceTypeId": 1,
    },
    {"serial": "TWIN-1", "addr": "70B3D5E7000000AC", "tags": [SITE_TAG]},
    {"serial": "TWIN-1", "addr": "70B3D5E7000000AD", "tags": [SITE_TAG]},
    {"serial": "OTHER-1", "addr": "70B3D5E7000000AE"},
]


def seed_actions(sb: Sandbox) -> dict[str, int]:
    """The platform side of ACTION_SHEET; returns platform ids by addr."""
    sb.store.insert_devices(ACTION_PLATFORM)
    return {d["addr"]: d["id"] for d in sb.store.list_devices(limit=MAX_PAGE_SIZE)}


@pytest.mark.parametrize("lookup", ["auto", "per-key", "scan", "tag"])
def test_every_action_and_reason(sandbox: Sandbox, tmp_path: Path, lookup: str) -> None:
    ids = seed_actions(sandbox)
    sheet = csv_sheet(tmp_path, ACTION_SHEET[0], ACTION_SHEET[1:])
    template = site_template(tmp_path)
    data = plan_json(
        sheet, sandbox.url, token_of(sandbox), "--lookup", lookup, template=template, code=1
    )

    assert data["command"] == "plan"
    assert data["ok"] is False
    assert data["totals"] == {"create": 1, "exists": 1, "differs": 1, "blocked": 5}
    rows = data["rows"]
    assert [(r["sheet"], r["row"]) for r in rows] == [("site.csv", n) for n in range(2, 10)]
    assert all(
        {"action", "reason", "platform_id", "diff", "message", "errors"} <= set(r) for r in rows
    )
    keyed = by_key(data)

    new = keyed["NEW-1"]
    assert (new["action"], new["platform_id"], new["diff"]) == ("create", None, {})

    same = keyed["SAME-1"]
    assert (same["action"], same["platform_id"], same["diff"]) == (
        "exists",
        ids["70b3d5e7000000aa"],
        {},
    )

    differs = keyed["DIFF-1"]
    assert (differs["action"], differs["platform_id"]) == ("differs", ids["70B3D5E7000000AB"])
    # The device's extra tag "y" is kept by an update (the template adds tags): no diff.
    assert differs["diff"] == {"description": {"sheet": "3.OG Müller", "platform": "Dach"}}
    assert "description" in differs["reason"] and "tags" not in differs["reason"]

    invalid = keyed["BAD-1"]
    assert invalid["action"] == "blocked"
    assert invalid["reason"].startswith("invalid row")
    assert {e["cell"] for e in invalid["errors"]} == {"B5", "F5"}

    duplicates = [r for r in rows if r["key"] == "DUP-1"]
    assert [r["action"] for r in duplicates] == ["blocked", "blocked"]
    for row, other in zip(duplicates, reversed(duplicates), strict=True):
        assert [e["code"] for e in row["errors"]] == ["duplicate-key"]
        assert f"row {other['row']}" in row["reason"]

    twins = keyed["TWIN-1"]
    assert (twins["action"], twins["platform_id"]) == ("blocked", None)
    assert "2 platform devices share the serial TWIN-1" in twins["reason"]
    assert f"{ids['70B3D5E7000000AC']}, {ids['70B3D5E7000000AD']}" in twins["reason"]

    taken = keyed["ADDR-1"]
    owner = ids["70B3D5E7000000AE"]
    assert (taken["action"], taken["platform_id"]) == ("blocked", owner)
    assert f"already belongs to platform device {owner} with serial OTHER-1" in taken["reason"]

    assert sandbox.store.count_devices() == len(ACTION_PLATFORM)  # plan wrote nothing


def test_reports_and_saved_plan(sandbox: Sandbox, tmp_path: Path) -> None:
    seed_actions(sandbox)
    sheet = csv_sheet(tmp_path, ACTION_SHEET[0], ACTION_SHEET[1:])
    reports = [tmp_path / f"report.{suffix}" for suffix in ("json", "html", "xlsx", "csv")]
    saved = tmp_path / "plan.json"
    token = token_of(sandbox)
    options = [word for path in reports for word in ("--report", str(path))]
    template = site_template(tmp_path)
    result = run_plan(sheet, sandbox.url, token, "--out", str(saved), *options, template=template)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "lookup: per-key, " in result.stdout
    report = json.loads(reports[0].read_text(encoding="utf-8"))
    assert json.loads(saved.read_text(encoding="utf-8")) == report
    assert report["totals"] == {"create": 1, "exists": 1, "differs": 1, "blocked": 5}
    assert report["lookup"]["requests"] > 0
    html = reports[1].read_text(encoding="utf-8")
    assert "TWIN-1" in html and "differs" in html
    workbook = openpyxl.load_workbook(reports[2], read_only=True)
    assert workbook.sheetnames
    workbook.close()
    assert "ADDR-1" in reports[3].read_text(encoding="utf-8-sig")
    for path in [*reports, saved]:
        assert path.stat().st_size > 0
        assert token not in readable_text(path)


def readable_text(path: Path) -> str:
    """The file's text; for an .xlsx, the text of every part of the zip."""
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as archive:
            return "".join(archive.read(n).decode("utf-8", "replace") for n in archive.namelist())
    return path.read_text(encoding="utf-8-sig")


def test_clean_sheet_exits_0(sandbox: Sandbox, tmp_path: Path) -> None:
    """create, exists and differs need no fixing before apply: exit 0."""
    sandbox.store.insert_devices(
        [{"serial": serial(1), "addr": addr(1)}, {"serial": serial(2), "addr": addr(2)}]
    )
    lines = [f"{serial(0)},{addr(0)},", f"{serial(1)},{addr(1)},", f"{serial(2)},{addr(2)},Dach"]
    sheet = csv_sheet(tmp_path, "serial,addr,description", lines)
    data = plan_json(sheet, sandbox.url, token_of(sandbox), code=0)
    assert data["ok"] is True
    assert data["totals"] == {"create": 1, "exists": 1, "differs": 1, "blocked": 0}


# --- pagination -------------------------------------------------------------------------------


def pages_read(devices: int, page: int = MAX_PAGE_SIZE) -> int:
    """Requests the documented rule takes: pages until an empty one; a short page is
    settled by one more request."""
    return devices // page + 1 + (devices % page > 0)


@pytest.mark.parametrize("count", [10000, 10001, 20000])
@pytest.mark.parametrize("lookup", ["scan", "tag"])
def test_every_page_is_read(sandbox: Sandbox, tmp_path: Path, count: int, lookup: str) -> None:
    sandbox.store.insert_devices(numbered_devices(count, tags=[SITE_TAG]))
    edges = sorted({0, 9999, min(10000, count - 1), count - 1})
    sheet = numbered_sheet(tmp_path, [*edges, count])  # the last one is new
    data = plan_json(
        sheet, sandbox.url, token_of(sandbox), "--lookup", lookup, template=site_template(tmp_path)
    )
    assert data["lookup"]["strategy"] == lookup
    assert data["lookup"]["devices_read"] == count
    # tag then asks for the new row's serial and addr (one ilike query), which it did not find.
    assert data["lookup"]["requests"] == pages_read(count) + (2 if lookup == "tag" else 0)
    actions = {row["key"]: row["action"] for row in data["rows"]}
    assert actions == {**{serial(i): "exists" for i in edges}, serial(count): "create"}


@pytest.mark.parametrize("lookup", ["scan", "tag"])
def test_a_lower_page_cap_still_reads_every_device(
    sandbox_factory: Factory, tmp_path: Path, lookup: str
) -> None:
    sb = sandbox_factory(max_page_size=500)
    sb.store.insert_devices(numbered_devices(1234, tags=[SITE_TAG]))
    sheet = numbered_sheet(tmp_path, [0, 499, 500, 1000, 1233])
    data = plan_json(
        sheet, sb.url, token_of(sb), "--lookup", lookup, template=site_template(tmp_path)
    )
    assert data["lookup"]["devices_read"] == 1234
    # The first page of 10000 asked comes back with 500: one more page tells the cap
    # from the end, then pages of 500 until a short one, which one more request settles.
    assert data["lookup"]["requests"] == 4
    assert data["lookup"]["page_cap"] == 500
    assert data["totals"]["exists"] == 5


def test_auto_with_a_lower_page_cap_still_finds_every_device(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(max_page_size=500)
    sb.store.insert_devices(numbered_devices(2000))
    sheet = numbered_sheet(tmp_path, range(0, 2000, 8))  # more keys than PAGE_COST
    data = plan_json(sheet, sb.url, token_of(sb))
    assert data["lookup"]["strategy"] == "scan"
    assert data["totals"]["exists"] == 250


# --- lookup strategies ------------------------------------------------------------------------


def test_tag_lookup_falls_back_to_per_key(sandbox: Sandbox, tmp_path: Path) -> None:
    tagged = numbered_devices(3, tags=[SITE_TAG])
    untagged = {"serial": serial(3), "addr": addr(3), "tags": ["elsewhere"]}
    sandbox.store.insert_devices([*tagged, untagged])
    sheet = numbered_sheet(tmp_path, range(5))  # rows 0-2 tagged, 3 untagged, 4 new
    data = plan_json(
        sheet, sandbox.url, token_of(sandbox), "--lookup", "tag", template=site_template(tmp_path)
    )
    actions = {row["key"]: row["action"] for row in data["rows"]}
    assert actions == {
        serial(0): "exists",
        serial(1): "exists",
        serial(2): "exists",
        serial(3): "differs",  # found by its serial; it lacks the site tag
        serial(4): "create",
    }
    assert by_key(data)[serial(3)]["diff"] == {
        "tags": {
            "sheet": [SITE_TAG],
            "platform": ["elsewhere"],
            "mode": "add",
            "add": [SITE_TAG],
            "remove": [],
        }
    }
    # One tag query (its short page settled by a second request), then the serial and
    # the addr (one query without case) of each row it did not find.
    assert data["lookup"]["requests"] == 2 + 2 * 2


def test_auto_takes_per_key_for_a_small_sheet(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.store.insert_devices(numbered_devices(12000))
    rows = PAGE_COST // 2  # a serial and an addr lookup per row
    data = plan_json(numbered_sheet(tmp_path, range(rows)), sandbox.url, token_of(sandbox))
    assert data["lookup"]["strategy"] == "per-key"
    # One small page (so that a key's short answer is known to be whole), then the
    # serial, and the addr without case (one ilike query: its hex has letters).
    assert data["lookup"]["requests"] == 1 + 2 * rows
    assert data["totals"]["exists"] == rows


def test_auto_scans_for_a_large_sheet_on_a_large_platform(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.store.insert_devices(numbered_devices(20000))
    numbers = range(0, 20000, 20000 // (PAGE_COST + 10))
    data = plan_json(numbered_sheet(tmp_path, numbers), sandbox.url, token_of(sandbox))
    assert data["lookup"]["strategy"] == "scan"
    assert data["lookup"]["devices_read"] == 20000
    assert data["totals"]["exists"] == len(numbers)


def test_auto_with_a_site_tag_takes_the_tag(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.store.insert_devices(numbered_devices(200, tags=[SITE_TAG]))
    sheet = numbered_sheet(tmp_path, range(150))  # more keys than PAGE_COST
    data = plan_json(sheet, sandbox.url, token_of(sandbox), template=site_template(tmp_path))
    assert data["totals"]["exists"] == 150
    assert data["lookup"]["strategy"] == "tag"


@pytest.mark.parametrize("template", ["default", "lorawan-meter"])
def test_per_key_finds_an_addr_stored_in_lower_case(
    sandbox: Sandbox, tmp_path: Path, template: str
) -> None:
    sandbox.store.insert_devices([{"serial": "OTHER-1", "addr": "0004a30b001c0530"}])
    header = "serial,addr" if template == "default" else "serial,DevEUI"
    sheet = csv_sheet(tmp_path, header, ["NEW-1,0004A30B001C0530"])
    # default matches by serial: the addr is taken; lorawan-meter matches by addr: found.
    expected, code = {"default": ("blocked", 1), "lorawan-meter": ("differs", 0)}[template]
    data = plan_json(
        sheet, sandbox.url, token_of(sandbox), "--lookup", "per-key", template=template, code=code
    )
    assert data["rows"][0]["action"] == expected


# --- plan writes nothing ----------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_plan_leaves_the_database_byte_for_byte_unchanged(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    db = tmp_path / "p.db"
    first = sandbox_factory(db=db)
    first.store.insert_devices([*numbered_devices(3, tags=[SITE_TAG]), *ACTION_PLATFORM])
    first.store.create_user(
        {
            "name": "Ada",
            "email": "ada@example.org",
            "password": "Passwort-2024a",
            "roles": ["device-admin"],
        }
    )
    first.stop()  # closes the database: the WAL is checkpointed into the file
    before = sha256(db)

    sb = sandbox_factory(db=db)
    workbook = openpyxl.Workbook()
    devices = workbook.active
    assert devices is not None
    devices.title = "Devices"
    for line in ["serial,addr", *(f"{serial(i)},{addr(i)}" for i in range(5)), *ACTION_SHEET[1:]]:
        devices.append(line.split(",")[:2])
    users = workbook.create_sheet("Users")
    users.append(["name", "email", "password", "roles"])
    users.append(["Ada", "ada@example.org", "Passwort-2024a", "device-admin"])
    users.append(["Bea", "bea@example.org", "Passwort-2024b", "device-admin"])
    sheet = tmp_path / "site.xlsx"
    workbook.save(sheet)
    template = site_template(tmp_path)
    for lookup in ("auto", "per-key", "scan", "tag"):
        data = plan_json(
            sheet, sb.url, sb.tokens["org-admin"], "--lookup", lookup, template=template, code=1
        )
        users_planned = {r["key"]: r["action"] for r in data["rows"] if r["kind"] == "user"}
        assert users_planned == {"ada@example.org": "exists", "bea@example.org": "create"}
        assert "Passwort-2024" not in json.dumps(data)
    sb.stop()

    assert sha256(db) == before
    assert not db.with_name("p.db-wal").exists()


# --- refusals and unusable input --------------------------------------------------------------


def one_row_sheet(folder: Path) -> Path:
    return numbered_sheet(folder, [0])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_wrong_token_exits_3(sandbox: Sandbox, tmp_path: Path) -> None:
    result = run_plan(one_row_sheet(tmp_path), sandbox.url, "wrong-token-0123456789")
    assert result.returncode == 3
    assert "HTTP 401" in result.stderr
    assert "token" in result.stderr


def test_an_unreachable_platform_exits_3(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there any more
    result = run_plan(one_row_sheet(tmp_path), url, "some-token-0123456789")
    assert result.returncode == 3
    assert "could not reach" in result.stderr and url in result.stderr


def test_a_failing_platform_exits_3(sandbox_factory: Factory, tmp_path: Path) -> None:
    sb = sandbox_factory(fail_rate=1.0)
    result = run_plan(one_row_sheet(tmp_path), sb.url, token_of(sb))
    assert result.returncode == 3
    assert "HTTP 500" in result.stderr


def test_no_token_exits_2(sandbox: Sandbox, tmp_path: Path) -> None:
    result = run_plan(one_row_sheet(tmp_path), sandbox.url, None)
    assert result.returncode == 2
    assert "PROVISIONER_TOKEN" in result.stderr


@pytest.mark.parametrize("kind", ["damaged", "missing"])
def test_an_unreadable_sheet_exits_2(sandbox: Sandbox, tmp_path: Path, kind: str) -> None:
    sheet = tmp_path / "site.xlsx"
    if kind == "damaged":
        sheet.write_bytes(b"PK\x03\x04 this is not a workbook")
    result = run_plan(sheet, sandbox.url, token_of(sandbox))
    assert result.returncode == 2
    assert "site.xlsx" in result.stderr
