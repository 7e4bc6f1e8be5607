"""Apply and its journal without a server: exact fault sequences through MockTransport.

Each test runs the whole ``apply_sheet`` on a one-row CSV; ``seen`` holds the
requests sent after the plan (the lookups before it are plan's business).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisioner.actions import RowAction, RowKind, StopKind
from provisioner.apply import (
    ApplyResult,
    ApplyRow,
    apply_sheet,
    nothing_sent,
    update_done,
)
from provisioner.events import Events
from provisioner.journal import Journal, UpdateEntry, read_journal
from provisioner.platform import PlatformClient, RetryPolicy
from provisioner.reports import write_report
from provisioner.templates import load_template

BODY = {"serial": "S1", "addr": "0000000000000001", "name": "Zähler"}
DEVICE = {"id": 41, **BODY}
URL = "https://p.example"

Handler = Callable[[httpx.Request], httpx.Response]


def page(request: httpx.Request, devices: list[dict[str, Any]]) -> httpx.Response:
    """A device list that honours offset, as the platform does."""
    offset = int(request.url.params.get("offset", 0))
    return httpx.Response(200, json={"data": devices if offset == 0 else []})


def one_device_sheet(folder: Path) -> Path:
    sheet = folder / "site.csv"
    sheet.write_text("serial,addr,name\nS1,0000000000000001,Zähler\n", encoding="utf-8")
    return sheet


class _Planned(Events):
    """Hears when the plan is made: the requests after it are the run's own."""

    def __init__(self, planned: Callable[..., None]) -> None:
        self.planned_at = planned

    def planned(self, plan: Any, work: Any) -> None:
        self.planned_at(plan, work)


def run(
    tmp_path: Path,
    handler: Handler,
    *,
    plan_finds: list[dict[str, Any]] | None = None,
    before: list[str] | None = None,
    **client_options: Any,
) -> tuple[ApplyResult, list[str]]:
    """``before`` collects the requests up to the confirmation (plan and reconciliation)."""
    seen: list[str] = []
    planning = True

    def record(request: httpx.Request) -> httpx.Response:
        if planning:  # the plan's own lookups
            if before is not None:
                before.append(f"{request.method} {request.url.path}?{request.url.query.decode()}")
            return page(request, plan_finds or [])
        seen.append(f"{request.method} {request.url.path}?{request.url.query.decode()}")
        return handler(request)

    def planned(*_: Any) -> None:
        nonlocal planning
        planning = False

    client = PlatformClient(
        URL,
        "tok-123",
        transport=httpx.MockTransport(record),
        retry=RetryPolicy(attempts=2, base_delay=0),
        sleep=lambda s: None,
        **client_options,
    )
    result = apply_sheet(
        one_device_sheet(tmp_path),
        load_template("default"),
        client,
        journal_path=tmp_path / "j.jsonl",
        concurrency=2,
        events=_Planned(planned),
    )
    return result, seen


def test_lost_answer_is_looked_up_and_not_resent(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise httpx.ReadTimeout("timed out")
        return page(request, [DEVICE])

    result, seen = run(tmp_path, handler)
    assert [r.status for r in result.rows] == ["created"]
    assert result.rows[0].platform_id == 41
    # Looked up by addr (the lookup may confirm its short page), never sent again.
    assert [s.split("?")[0] for s in seen][:2] == ["POST /api/devices", "GET /api/devices"]
    assert "f:addr=eq:0000000000000001" in seen[1]
    assert sum(s.startswith("POST") for s in seen) == 1


def test_lost_answer_and_absent_is_sent_again(tmp_path: Path) -> None:
    posts = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(1)
            if len(posts) == 1:
                raise httpx.RemoteProtocolError("Server disconnected")
            return httpx.Response(200, json={"data": DEVICE})
        return page(request, [])

    result, seen = run(tmp_path, handler)
    assert result.rows[0].status == "created" and len(posts) == 2
    assert [s.split("?")[0] for s in seen if "offset=0" in s or s.startswith("POST")] == [
        "POST /api/devices",
        "GET /api/devices",
        "POST /api/devices",
    ]


def test_409_after_a_lost_answer_for_our_own_device_counts_as_created(tmp_path: Path) -> None:
    posts = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(1)
            if len(posts) == 1:
                raise httpx.RemoteProtocolError("Server disconnected")
            return httpx.Response(409, json={"error": "addr exists"})
        # The lookup after the lost answer does not see it yet; the one after the 409 does.
        return page(request, [DEVICE] if len(posts) > 1 else [])

    result, _ = run(tmp_path, handler)
    assert result.rows[0].status == "created" and result.rows[0].platform_id == 41
    assert "409 after a lost answer" in result.rows[0].message


def test_409_for_our_own_device_without_a_lost_answer_is_exists(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(409, json={"error": "addr exists"})
        return page(request, [DEVICE])

    result, _ = run(tmp_path, handler)
    assert result.rows[0].status == "exists" and result.rows[0].platform_id == 41


def test_409_for_someone_elses_device_fails_the_row(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(409, json={"error": "addr exists"})
        return page(request, [{**DEVICE, "serial": "OTHER"}])

    result, _ = run(tmp_path, handler)
    assert result.rows[0].status == "failed"
    assert "taken by another device" in result.rows[0].message
    assert not result.ok


def test_revoked_token_stops_the_run(tmp_path: Path) -> None:
    result, seen = run(tmp_path, lambda r: httpx.Response(401, json={"error": "revoked"}))
    assert result.stop == StopKind.REFUSED
    assert result.stopped.startswith("stopped: the platform refused the token")
    assert len(seen) == 1
    assert "tok-123" not in json.dumps(result.to_dict())


def test_an_outage_past_the_clients_bound_stops_the_run_with_its_results(
    tmp_path: Path,
) -> None:
    said: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    result, seen = run(tmp_path, handler, outage_seconds=1.0, on_unreachable=said.append)
    assert result.stop == StopKind.UNREACHABLE
    assert result.stopped.startswith("stopped: the platform is unreachable")
    assert [r.status for r in result.rows] == [RowAction.NOT_RUN]
    assert said and said[0].startswith("platform unreachable, retrying")
    assert result.results and Path(result.results).exists()
    assert all(s.startswith("POST") for s in seen)  # nothing was sent but the create's tries
    state = read_journal(tmp_path / "j.jsonl")
    assert [e.event for e in state.unresolved()] == ["intent"]  # settled by the next run


@pytest.mark.parametrize("device_id", ["abc", 1.5, None, 0, -3, True])
def test_a_created_device_with_an_odd_id_is_looked_up_never_truncated(
    tmp_path: Path, device_id: Any
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"data": {**BODY, "id": device_id}})
        return page(request, [DEVICE])

    result, seen = run(tmp_path, handler)
    assert result.rows[0].status == "created" and result.rows[0].platform_id == 41
    assert sum(s.startswith("POST") for s in seen) == 1


def test_a_created_device_whose_lookup_answers_oddly_fails_the_row_not_the_run(
    tmp_path: Path,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"data": {**BODY, "id": 1.5}})
        return page(request, [{**DEVICE, "id": 1.5}])

    result, _ = run(tmp_path, handler)
    assert result.rows[0].status == "failed" and result.rows[0].platform_id is None
    assert "run again" in result.rows[0].message
    assert result.results  # the results were written all the same


def test_journal_records_intent_then_outcome(tmp_path: Path) -> None:
    result, _ = run(tmp_path, lambda r: httpx.Response(200, json={"data": DEVICE}))
    assert result.ok
    state = read_journal(tmp_path / "j.jsonl")
    done = state.done("device", "S1")
    assert done is not None and done.platform_id == 41
    events = [json.loads(line)["event"] for line in (tmp_path / "j.jsonl").read_text().splitlines()]
    assert events == ["start", "intent", "done", "end"]
    assert "tok-123" not in (tmp_path / "j.jsonl").read_text()


def test_a_device_the_journal_made_and_the_platform_lost_is_created_again(tmp_path: Path) -> None:
    run(tmp_path, lambda r: httpx.Response(200, json={"data": DEVICE}))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"data": {**DEVICE, "id": 77}})
        return page(request, [])  # f:id=eq:41 finds nothing

    before: list[str] = []
    result, seen = run(tmp_path, handler, before=before)
    assert sum("f:id=eq:41" in s and "offset=0" in s for s in before) == 1, before
    assert seen[0].startswith("POST /api/devices")
    row = result.rows[0]
    assert row.status == RowAction.CREATED and row.platform_id == 77
    assert row.message.startswith("created again: the device made on ")
    assert "as id 41 is no longer on the platform" in row.message


def test_a_journal_of_another_sheet_is_refused(tmp_path: Path) -> None:
    from provisioner.errors import ProvisionerError

    journal = Journal(tmp_path / "j.jsonl", sheet="other.xlsx", platform=URL, fingerprint="f")
    journal.close()
    with pytest.raises(ProvisionerError, match="belongs to the sheet other.xlsx"):
        run(tmp_path, lambda r: httpx.Response(200, json={"data": DEVICE}))


def test_torn_lines_are_ignored_and_later_runs_append(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path, sheet="s", platform="u", fingerprint="f")
    journal.intent("device", "S1", 2)
    journal.close()
    with path.open("ab") as out:
        out.write(b'{"run": "x", "event": "done", "kind": "dev')  # the crash
    state = read_journal(path)
    assert state.torn_lines == 1
    assert [e.key for e in state.unresolved()] == ["S1"]
    again = Journal(path, sheet="s", platform="u", fingerprint="f")
    again.outcome("done", "device", "S1", 2, status="created", platform_id=5)
    again.close()
    state = read_journal(path)
    assert state.torn_lines == 1 and state.done("device", "S1") is not None
    assert len(state.runs) == 2


@pytest.mark.parametrize("status", ["failed", "created"])
def test_results_workbook_has_a_failed_tab_only_for_failures(tmp_path: Path, status: str) -> None:
    import openpyxl

    sheet = tmp_path / "site.xlsx"
    book = openpyxl.Workbook()
    tab = book.active
    assert tab is not None
    tab.title = "Devices"
    tab.append(["serial", "addr"])
    tab.append(["S1", "0000000000000001"])
    tab.append(["S2", "0000000000000002"])
    book.save(sheet)
    from provisioner.sheets import read_tables

    report = {
        "command": "apply",
        "source": "site.xlsx",
        "totals": {status: 1},
        "problems": [],
        "rows": [
            {
                "sheet": "Devices",
                "row": 3,
                "kind": "device",
                "key": "S2",
                "status": status,
                "platform_id": None,
                "message": "x",
                "errors": [],
                "warnings": [],
            }
        ],
    }
    out = tmp_path / "site.results.xlsx"
    write_report(report, out, source=sheet, tables=read_tables(sheet, ["Devices"]))
    result = openpyxl.load_workbook(out)
    if status == "created":
        assert "Failed" not in result.sheetnames
        return
    failed = [[c.value for c in row] for row in result["Failed"].iter_rows()]
    assert failed == [["serial", "addr"], ["S2", "0000000000000002"]]


def test_a_lorawan_key_the_platform_echoes_is_redacted(tmp_path: Path) -> None:
    key = "2B7E151628AED2A6ABF7158809CF4F3C"
    sheet = tmp_path / "site.csv"
    sheet.write_text(f"serial,addr,cfg:AppKey\nS1,0000000000000001,{key}\n", encoding="utf-8")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(400, json={"error": f"bad body: {request.content.decode()}"})
        return page(request, [])

    client = PlatformClient(
        URL, "tok-123", transport=httpx.MockTransport(handler), sleep=lambda s: None
    )
    result = apply_sheet(sheet, load_template("default"), client, journal_path=tmp_path / "j.jsonl")
    [row] = result.rows
    assert row.status == RowAction.FAILED and "bad body" in row.message
    assert key not in json.dumps(result.to_dict())
    assert key not in (tmp_path / "j.jsonl").read_text()


def test_an_id_that_is_another_device_now_does_not_block_the_create(tmp_path: Path) -> None:
    run(tmp_path, lambda r: httpx.Response(200, json={"data": DEVICE}))
    # The platform was reset: id 41 is somebody else's device now, and ours is gone.
    stranger = {"id": 41, "serial": "X9", "addr": "FFFFFFFFFFFFFFFF"}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"data": {**DEVICE, "id": 77}})
        return page(request, [])

    result, _ = run(tmp_path, handler, plan_finds=[stranger])
    row = result.rows[0]
    assert row.status == RowAction.CREATED and row.platform_id == 77
    assert row.message.startswith("created again")


def test_a_full_disk_when_the_lock_is_taken_is_a_journal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    from provisioner.journal import JournalError, JournalLock

    def full(fd: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "ftruncate", full)
    with pytest.raises(JournalError, match="is full"):
        JournalLock(tmp_path / "j.jsonl").acquire()
    monkeypatch.undo()
    with JournalLock(tmp_path / "j.jsonl"):  # nothing was left held
        pass


# --- a run that sends nothing says why ---------------------------------------------------


def idle(*statuses: RowAction) -> ApplyResult:
    rows = [ApplyRow("Devices", n, RowKind.DEVICE, f"S{n}", s) for n, s in enumerate(statuses, 2)]
    return ApplyResult("site.csv", "default", "http://sandbox", "", "j", rows)


def test_nothing_sent_names_the_blocked_rows_and_says_listed_only_when_they_were() -> None:
    blocked = idle(RowAction.BLOCKED, RowAction.EXISTS, RowAction.BLOCKED)
    assert nothing_sent(blocked, listed=True) == "nothing sent: 2 rows are blocked (listed above)"
    assert nothing_sent(blocked, listed=False) == "nothing sent: 2 rows are blocked"
    mixed = idle(RowAction.BLOCKED, RowAction.DIFFERS)
    assert nothing_sent(mixed, listed=True) == (
        "nothing sent: 1 row is blocked and 1 differs from the platform (listed above)"
    )
    assert not blocked.ok and not mixed.ok  # exit 1


def test_nothing_to_do_only_when_no_row_is_blocked() -> None:
    done = idle(RowAction.EXISTS, RowAction.EXISTS)
    assert nothing_sent(done, listed=True) == "nothing to do: every row is on the platform"
    differs = idle(RowAction.EXISTS, RowAction.DIFFERS, RowAction.DIFFERS)
    assert nothing_sent(differs, listed=True) == (
        "nothing to do: every row is on the platform; 2 rows differ from it (listed above)"
    )
    assert nothing_sent(idle(), listed=False) == "nothing to do: the sheet has no rows"
    assert done.ok and differs.ok  # exit 0


def test_a_lost_answer_whose_lookup_fails_stays_open_for_the_next_run(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise httpx.ReadTimeout("timed out")
        return httpx.Response(400, json={"error": "no filter today"})

    result, _ = run(tmp_path, handler)
    assert result.rows[0].status == "failed" and "the lookup failed" in result.rows[0].message
    state = read_journal(tmp_path / "j.jsonl")
    assert [e.event for e in state.unresolved()] == ["unknown"]  # may have been made
    # The next run's plan finds it: recorded as a create, with what undo needs.
    made = {**DEVICE, "createdAt": "2026-12-01T09:30:00Z", "updatedAt": "2026-12-01T09:30:00Z"}
    run(tmp_path, lambda request: page(request, [made]), plan_finds=[made])
    [created] = read_journal(tmp_path / "j.jsonl").created
    assert (created.platform_id, created.addr, created.created_at, created.updated_at) == (
        41,
        "0000000000000001",
        "2026-12-01T09:30:00Z",
        "2026-12-01T09:30:00Z",
    )
    assert "lost answer" in created.message


def test_an_update_is_done_when_the_device_holds_what_it_changed() -> None:
    images = (
        {"name": "a", "description": "Dach", "tags": ["x"]},
        {"name": "a", "description": "Keller", "tags": ["x", "y"]},
    )
    update = UpdateEntry("S1", "intent", 5, *images)
    holds = {"id": 5, "name": "b", "description": "Keller", "tags": ["y", "x"]}
    assert update_done(update, holds)  # name: not the update's; tags in any order
    assert not update_done(update, {**holds, "description": "Dach"})
    assert not update_done(update, {**holds, "tags": ["x"]})
