"""`provisioner export` while the platform changes under it (issue 21).

An export read by offset loses a live device for every device deleted ahead of its
position. The CLI runs against the sandbox, whose ``churn_while_paging`` deletes
the devices with the lowest ids (those read already) and adds new ones in the
middle of the listing; the file is read back against the sandbox's devices. Where
the platform pages by id nothing live is missing (exit 0); where it does not
(``faults.id_paging``), the export reads by offset, sees the listing move and says
the file is incomplete (exit 1). The client's fallbacks are also shown against
servers that list in another order.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from test_export import run_export

from provisioner.lookup import device_pages
from provisioner.platform import PlatformClient
from provisioner.sandbox import Sandbox

DEVICES = 1200
PAGE_CAP = 300  # the sandbox's pages: the listing takes several
DELETED = 100
ADDED = 40
SITE = "Site-P"
Factory = Callable[..., Sandbox]


def site(sandbox_factory: Factory, *, id_paging: str = "honour") -> Sandbox:
    """A sandbox of DEVICES devices, every other one tagged SITE, pages capped."""
    sb = sandbox_factory(max_page_size=PAGE_CAP)
    sb.store.insert_devices(
        {"addr": f"0004A30B{i:08X}", "serial": f"SN-{i:05d}", "tags": [SITE] if i % 2 else []}
        for i in range(1, DEVICES + 1)
    )
    sb.faults.id_paging = id_paging
    return sb


def addrs_in(out: Path) -> list[str]:
    with out.open(newline="", encoding="utf-8") as file:
        return [row["addr"] for row in csv.DictReader(file)]


def live(sb: Sandbox, tagged: bool) -> set[str]:
    devices = sb.store.list_devices(limit=DEVICES + ADDED)
    return {d["addr"] for d in devices if not tagged or SITE in (d["tags"] or [])}


@pytest.mark.parametrize("which", [["--all"], ["--tag", SITE]], ids=["all", "tag"])
def test_devices_deleted_and_added_during_an_export_cannot_shift_its_pages(
    sandbox_factory: Factory, tmp_path: Path, which: list[str]
) -> None:
    sb = site(sandbox_factory)
    deleted = [d["addr"] for d in sb.store.list_devices(limit=DELETED)]
    # After the first page: the devices read already go, new ones come at the end.
    sb.faults.churn_while_paging(delete=DELETED, add=ADDED, after=1)

    done = run_export(sb, tmp_path, "--out", "site.csv", "--template", "default", *which)

    assert done.returncode == 0, done.stdout + done.stderr
    assert len(sb.faults.churned) == DELETED  # the platform did move under the read
    tagged = which[0] == "--tag"
    written = addrs_in(tmp_path / "site.csv")
    assert len(written) == len(set(written))
    now = live(sb, tagged)
    assert now - set(written) == set()  # every live device is in the file, the added ones too
    assert len(now) == (DEVICES - DELETED) // (2 if tagged else 1) + (0 if tagged else ADDED)
    # Beside them only devices that were live when their page was read.
    assert set(written) - now <= set(deleted)
    assert f"{len(written)} devices (" in done.stdout
    assert "INCOMPLETE" not in done.stdout + done.stderr


def test_a_platform_that_ignores_the_id_filter_is_read_by_offset_and_a_move_is_said(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = site(sandbox_factory, id_paging="ignore")
    sb.faults.churn_while_paging(delete=DELETED, after=1)

    done = run_export(sb, tmp_path, "--out", "all.xlsx", "--template", "default", "--all")

    assert done.returncode == 1, done.stdout + done.stderr
    assert len(sb.faults.churned) == DELETED
    missing = live(sb, tagged=False) - set(_xlsx_addrs(tmp_path / "all.xlsx"))
    # What offset paging loses (the fault is real): the live devices that moved up past
    # the next page's start, but the one read there.
    assert len(missing) == DELETED - 1
    # Never the bare claim of every device: the summary and the file say it is incomplete.
    first = done.stdout.splitlines()[0]
    assert "(asked: every device on the platform; INCOMPLETE, see the last line)" in first
    last = done.stdout.splitlines()[-1]
    assert last.startswith("incomplete: the platform's device list changed while it was read")
    assert "(it ignores f:id=gt:)" in last and "devices may be missing" in last
    assert "run the export again" in last
    instructions = _instructions(tmp_path / "all.xlsx")
    assert "INCOMPLETE: some of the devices every device on the platform" in instructions
    assert "Devices may be missing" in instructions


@pytest.mark.parametrize("id_paging", ["refuse", "ignore"])
def test_a_platform_that_does_not_page_by_id_is_read_whole_by_offset(
    sandbox_factory: Factory, tmp_path: Path, id_paging: str
) -> None:
    sb = site(sandbox_factory, id_paging=id_paging)

    done = run_export(sb, tmp_path, "--out", "site.csv", "--template", "default", "--tag", SITE)

    assert done.returncode == 0, done.stdout + done.stderr
    written = addrs_in(tmp_path / "site.csv")
    assert sorted(written) == sorted(live(sb, tagged=True))
    assert f"{DEVICES // 2} devices (tagged {SITE})" in done.stdout
    assert "INCOMPLETE" not in done.stdout


def _xlsx_addrs(out: Path) -> list[str]:
    import openpyxl

    sheet = openpyxl.load_workbook(out, read_only=True)["Devices"]
    rows = sheet.iter_rows(values_only=True)
    column = list(next(rows)).index("addr")
    return [str(row[column]) for row in rows]


def _instructions(out: Path) -> str:
    import openpyxl

    sheet = openpyxl.load_workbook(out, read_only=True)["Instructions"]
    return "\n".join(str(v) for row in sheet.iter_rows(values_only=True) for v in row if v)


# --- the client's reading against servers in other orders ------------------------------------


def listing(ids: list[int], *, by_id: bool, cap: int = 10) -> tuple[list[str], httpx.MockTransport]:
    """A server holding ``ids`` in that order; ranges on id honoured when ``by_id``."""
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.query.decode())
        params = request.url.params
        rows = ids
        if by_id and "f:id" in params:
            after = int(params["f:id"].removeprefix("gt:"))
            rows = [i for i in ids if i > after]
        offset, limit = int(params["offset"]), min(int(params["limit"]), cap)
        return httpx.Response(200, json={"data": [{"id": i} for i in rows[offset:][:limit]]})

    return asked, httpx.MockTransport(answer)


def read(transport: httpx.MockTransport) -> tuple[list[int], str, str]:
    with PlatformClient("https://platform.example", "tok-123", transport=transport) as client:
        pages = device_pages(client)
        ids = [d["id"] for page in pages for d in page]
    return ids, pages.way, pages.moved


def test_paging_by_id_costs_what_paging_by_offset_costs() -> None:
    asked, transport = listing(list(range(1, 46)), by_id=True)
    ids, way, moved = read(transport)
    assert ids == list(range(1, 46)) and way == "id" and moved == ""
    # The first page as before; then the id after the last one read, from offset 0;
    # the short first page is confirmed (a cap of 10), the empty page ends it.
    assert asked[0] == "limit=10000&offset=0"
    assert asked[1:3] == ["limit=10&offset=0&f:id=gt:10", "limit=10&offset=0&f:id=gt:20"]
    assert len(asked) == 6  # as by offset: five pages and the empty one


def test_a_server_that_lists_in_another_order_is_read_by_offset() -> None:
    order = list(range(45, 0, -1))  # newest first
    asked, transport = listing(order, by_id=True)
    ids, way, moved = read(transport)
    assert sorted(ids) == list(range(1, 46)) and len(ids) == 45
    assert way == "offset" and moved == ""
    # Each page starts at the last row read, which shows whether the list moved.
    # Each page starts at the row read last (ten rows and that one: 11), which shows
    # whether the list moved; the page holding only that row ends the read.
    assert not any("f:id" in query for query in asked)
    assert asked == [
        "limit=10000&offset=0",
        "limit=11&offset=9",
        "limit=10&offset=18",
        "limit=10&offset=27",
        "limit=10&offset=36",
        "limit=9&offset=44",
    ]
