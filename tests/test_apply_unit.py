"""Apply and its journal without a server: exact fault sequences through MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisioner.apply import ApplyResult, apply_plan, pending
from provisioner.journal import Journal, read_journal
from provisioner.plan import LookupStats, Plan, RowPlan
from provisioner.platform import PlatformClient, RetryPolicy
from provisioner.records import Record, SiteRecords
from provisioner.reports import write_report
from provisioner.validation import ValidationReport

BODY = {"serial": "S1", "addr": "0000000000000001", "name": "Zähler"}
DEVICE = {"id": 41, **BODY}


def one_device_plan(body: dict[str, Any] = BODY) -> Plan:
    record = Record("Devices", 2, body["serial"], dict(body), {}, {})
    site = SiteRecords(devices=[record], tabs={"devices": "Devices"})
    validation = ValidationReport("site.xlsx", "default", [], site)
    row = RowPlan("Devices", 2, "device", body["serial"], "create", "not on the platform yet")
    return Plan(
        "site.xlsx",
        "default",
        "https://p.example",
        "f" * 64,
        [row],
        LookupStats("per-key"),
        validation,
    )


def run(
    tmp_path: Path, handler: Callable[[httpx.Request], httpx.Response]
) -> tuple[ApplyResult, list[str]]:
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}?{request.url.query.decode()}")
        return handler(request)

    client = PlatformClient(
        "https://p.example",
        "tok-123",
        transport=httpx.MockTransport(record),
        retry=RetryPolicy(attempts=2, base_delay=0),
        sleep=lambda s: None,
    )
    journal_path = tmp_path / "j.jsonl"
    journal = Journal(journal_path, sheet="site.xlsx", platform=client.url, fingerprint="f")
    result = apply_plan(
        one_device_plan(),
        client,
        journal,
        read_journal(tmp_path / "none"),
        match_key="serial",
        concurrency=2,
    )
    return result, seen


def test_lost_answer_is_looked_up_and_not_resent(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise httpx.ReadTimeout("timed out")
        return httpx.Response(200, json={"data": [DEVICE]})

    result, seen = run(tmp_path, handler)
    assert [r.status for r in result.rows] == ["created"]
    assert result.rows[0].platform_id == 41
    assert [s.split("?")[0] for s in seen] == ["POST /api/devices", "GET /api/devices"]
    assert "f:addr=eq:0000000000000001" in seen[1]


def test_lost_answer_and_absent_is_sent_again(tmp_path: Path) -> None:
    posts = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(1)
            if len(posts) == 1:
                raise httpx.RemoteProtocolError("Server disconnected")
            return httpx.Response(200, json={"data": DEVICE})
        return httpx.Response(200, json={"data": []})

    result, seen = run(tmp_path, handler)
    assert result.rows[0].status == "created" and len(posts) == 2
    assert [s.split("?")[0] for s in seen] == [
        "POST /api/devices",
        "GET /api/devices",
        "POST /api/devices",
    ]


def test_409_for_our_own_device_counts_as_created(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(409, json={"error": "addr exists"})
        return httpx.Response(200, json={"data": [DEVICE]})

    result, _ = run(tmp_path, handler)
    assert result.rows[0].status == "created" and result.rows[0].platform_id == 41


def test_409_for_someone_elses_device_fails_the_row(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(409, json={"error": "addr exists"})
        return httpx.Response(200, json={"data": [{**DEVICE, "serial": "OTHER"}]})

    result, _ = run(tmp_path, handler)
    assert result.rows[0].status == "failed"
    assert "taken by another device" in result.rows[0].message
    assert not result.ok


def test_revoked_token_stops_the_run(tmp_path: Path) -> None:
    result, seen = run(tmp_path, lambda r: httpx.Response(401, json={"error": "revoked"}))
    assert result.stopped.startswith("stopped: the platform refused the token")
    assert len(seen) == 1
    assert "tok-123" not in json.dumps(result.to_dict())


def test_journal_records_intent_then_outcome_and_skips_on_rerun(tmp_path: Path) -> None:
    result, _ = run(tmp_path, lambda r: httpx.Response(200, json={"data": DEVICE}))
    assert result.ok
    state = read_journal(tmp_path / "j.jsonl")
    done = state.done("device", "S1")
    assert done is not None and done.platform_id == 41
    events = [json.loads(line)["event"] for line in (tmp_path / "j.jsonl").read_text().splitlines()]
    assert events == ["start", "intent", "done", "end"]
    assert pending(one_device_plan(), state, "serial") == 0
    assert "tok-123" not in (tmp_path / "j.jsonl").read_text()


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
