"""`provisioner apply` end to end: the platform is the truth, and every run ends well.

The real CLI in a subprocess against the sandbox on a loopback port; after each
scenario the platform's state is read back from the sandbox's store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_apply_e2e import (
    FINISHED,
    INTERRUPTED,
    RUN_TIMEOUT,
    Factory,
    all_cell_text,
    assert_exactly_once,
    device_sheet,
    explain,
    finish,
    journal_of,
    results_path,
    results_rows,
    run_apply,
    sample_sheet,
    sample_tab,
    start_apply,
    wait_for_devices,
)

from provisioner.sandbox import MAX_PAGE_SIZE, Sandbox

PLATFORM_REFUSED = 3
USAGE = 2


def devices_of(sb: Sandbox) -> list[dict[str, object]]:
    return sb.store.list_devices(limit=MAX_PAGE_SIZE)


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stdout + done.stderr, explain(done)


# --- the journal never overrides what the platform holds -----------------------------------------


def test_devices_deleted_after_a_finished_run_are_created_again(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory()
    sheet, addrs = device_sheet(tmp_path, 30)
    token = sb.tokens["device-admin"]
    assert run_apply(sheet, sb, token).returncode == FINISHED
    gone = devices_of(sb)[::5]
    for device in gone:
        sb.store.delete_device(int(str(device["id"])))

    done = run_apply(sheet, sb, token)

    assert done.returncode == FINISHED, explain(done)
    assert_exactly_once(sb, addrs)
    again = [r for r in results_rows(sheet) if str(r["Message"]).startswith("created again")]
    assert len(again) == len(gone)
    # Created concurrently, ids do not follow the sheet's order: compare them as sets.
    named = {int(str(r["Message"]).split(" as id ")[1].split()[0]) for r in again}
    assert named == {int(str(d["id"])) for d in gone}
    assert (
        f"{len(gone)} devices made by an earlier run are no longer on the platform" in done.stdout
    )


def test_a_wiped_platform_gets_the_whole_site_again(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory()
    sheet = sample_sheet(tmp_path)
    token = sb.tokens["org-admin"]
    assert run_apply(sheet, sb, token, template="lorawan-meter").returncode == FINISHED
    for device in devices_of(sb):
        sb.store.delete_device(int(str(device["id"])))

    done = run_apply(sheet, sb, token, template="lorawan-meter")

    assert done.returncode == FINISHED, explain(done)
    assert_exactly_once(sb, [row["DevEUI"] for row in sample_tab("Devices")])
    for downlink in sample_tab("Downlinks"):  # the new devices get their downlinks again
        [device] = sb.store.devices_by("addr", downlink["key"])
        assert downlink["type"] in {d["type"] for d in sb.store.list_downlinks(device["id"])}


def test_a_changed_downlink_payload_is_queued_again_and_an_unchanged_one_is_not(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    import openpyxl

    sb = sandbox_factory()
    token = sb.tokens["device-admin"]
    rows = ["serial,addr,name"] + [f"SN{i},70B3D5E70000000{i},M{i}" for i in range(3)]
    book = openpyxl.Workbook()
    devices_tab = book.active
    assert devices_tab is not None
    devices_tab.title = "Devices"
    for line in rows:
        devices_tab.append(line.split(","))
    tab = book.create_sheet("Downlinks")
    tab.append(["key", "type", "payload"])
    tab.append(["SN0", "config", '{"d": {"listenCron": "0 0/20 * * * *"}, "q": "config"}'])
    tab.append(["SN1", "config", '{"d": {"listenCron": "0 0/30 * * * *"}, "q": "config"}'])
    xlsx = tmp_path / "site.xlsx"
    book.save(xlsx)
    first = run_apply(xlsx, sb, token)
    assert first.returncode == FINISHED, explain(first)
    assert {r["Status"] for r in results_rows(xlsx, "Downlinks")} == {"queued"}

    tab["C3"] = '{"d": {"listenCron": "0 0/45 * * * *"}, "q": "config"}'
    book.save(xlsx)
    second = run_apply(xlsx, sb, token)

    assert second.returncode == FINISHED, explain(second)
    statuses = {r["key"]: r["Status"] for r in results_rows(xlsx, "Downlinks")}
    assert statuses == {"SN0": "exists", "SN1": "queued"}, statuses
    [device] = sb.store.devices_by("serial", "SN1")
    [queued] = sb.store.list_downlinks(device["id"])
    assert queued["content"]["d"]["listenCron"] == "0 0/45 * * * *"


# --- faults: each ends in results, a message and an exit code, never a traceback ---------------


def test_an_outage_of_12_seconds_mid_run_is_ridden_out(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(latency_ms=100)  # long enough to act on it mid-run
    sheet, addrs = device_sheet(tmp_path, 200)
    proc = start_apply(sheet, sb, sb.tokens["device-admin"])
    wait_for_devices(sb, proc, at_least=20)
    sb.outage(12)

    code, out, err = finish(proc)

    assert code == FINISHED, out + err
    assert "Traceback" not in out + err
    assert "platform unreachable, retrying" in err
    assert_exactly_once(sb, addrs)
    assert results_path(sheet).exists()


LOOKUP_ODDITIES = [
    "error-400",
    "error-404",
    "error-500",
    "html",
    "data-string",
    "number-list",
    "bad-gzip",
    "reset",
    "deep-json",
    "id-float",
]


@pytest.mark.parametrize("kind", LOOKUP_ODDITIES)
def test_an_odd_answer_to_the_lookup_stops_before_any_change(
    sandbox_factory: Factory, tmp_path: Path, kind: str
) -> None:
    sb = sandbox_factory()
    sheet, _ = device_sheet(tmp_path, 5)
    sb.store.insert_devices([{"serial": "OTHER", "addr": "0011223344556677"}])  # ids to spoil
    sb.faults.odd("GET", "/api/devices", kind)

    done = run_apply(sheet, sb, sb.tokens["device-admin"])

    no_traceback(done)
    assert done.returncode == PLATFORM_REFUSED, explain(done)
    assert "cannot be used" in done.stderr
    assert sb.store.count_devices() == 1
    assert not journal_of(sheet).exists() or "intent" not in journal_of(sheet).read_text()


@pytest.mark.parametrize("kind", ["id-string", "id-float", "id-null"])
def test_a_create_answered_with_an_odd_id_is_settled_by_lookup(
    sandbox_factory: Factory, tmp_path: Path, kind: str
) -> None:
    sb = sandbox_factory()
    sheet = sample_sheet(tmp_path)
    sb.faults.odd("POST", "/api/devices", kind)

    done = run_apply(sheet, sb, sb.tokens["org-admin"], template="lorawan-meter")

    no_traceback(done)
    assert done.returncode == FINISHED, explain(done)
    assert_exactly_once(sb, [row["DevEUI"] for row in sample_tab("Devices")])
    by_row = {r["DevEUI"]: r for r in results_rows(sheet)}
    for device in devices_of(sb):
        assert by_row[str(device["addr"])]["Platform id"] == device["id"]
    # The downlinks went to the devices they name, not to a truncated id.
    for downlink in sample_tab("Downlinks"):
        [device] = sb.store.devices_by("addr", downlink["key"])
        assert downlink["type"] in {d["type"] for d in sb.store.list_downlinks(device["id"])}


@pytest.mark.parametrize("cap", [50, 3500])
def test_a_platform_that_caps_pages_is_read_to_its_end(
    sandbox_factory: Factory, tmp_path: Path, cap: int
) -> None:
    count = 600 if cap == 50 else 8000
    sb = sandbox_factory(max_page_size=cap)
    sheet, addrs = device_sheet(tmp_path, count)
    sb.store.insert_devices(
        {"serial": f"SN{i:06d}", "addr": a, "name": f"Zähler {i}"}
        for i, a in enumerate(addrs[:-10])
    )
    plan_json = tmp_path / "plan.json"
    env = {**os.environ, "PROVISIONER_TOKEN": sb.tokens["device-admin"]}
    for lookup in ("scan", "auto"):
        planned = subprocess.run(
            [sys.executable, "-m", "provisioner", "plan", str(sheet), "--url", sb.url]
            + ["--lookup", lookup, "--out", str(plan_json)],
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        assert planned.returncode == 0, explain(planned)
        totals = json.loads(plan_json.read_text())["totals"]
        assert totals["create"] == 10 and totals["exists"] == count - 10, (lookup, totals)
        assert f"caps pages at {cap}" in planned.stdout, planned.stdout

    done = run_apply(sheet, sb, sb.tokens["device-admin"], "--lookup", "scan")

    assert done.returncode == FINISHED, explain(done)
    assert_exactly_once(sb, addrs)


def test_two_applies_on_one_journal_the_second_refuses_naming_the_first(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(latency_ms=100)  # long enough to act on it mid-run
    sheet, addrs = device_sheet(tmp_path, 100)
    first = start_apply(sheet, sb, sb.tokens["device-admin"])
    wait_for_devices(sb, first)

    second = run_apply(sheet, sb, sb.tokens["device-admin"])

    assert second.returncode == USAGE, explain(second)
    assert f"process {first.pid}" in second.stderr
    code, out, err = finish(first)
    assert code == FINISHED, out + err
    assert_exactly_once(sb, addrs)


def test_an_unusable_report_path_is_refused_before_any_request(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory()
    sheet, _ = device_sheet(tmp_path, 5)

    done = run_apply(
        sheet, sb, sb.tokens["device-admin"], "--report", str(tmp_path / "no" / "r.json")
    )

    assert done.returncode == USAGE, explain(done)
    assert "does not exist" in done.stderr
    assert sb.store.count_devices() == 0 and not journal_of(sheet).exists()


def test_results_that_cannot_be_written_go_to_the_next_free_name(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(latency_ms=100)  # long enough to act on it mid-run
    sheet, addrs = device_sheet(tmp_path, 60)
    proc = start_apply(sheet, sb, sb.tokens["device-admin"])
    wait_for_devices(sb, proc)
    results_path(sheet).mkdir()  # taken by a folder after the run checked it

    code, out, err = finish(proc)

    assert code == FINISHED, out + err
    other = sheet.with_name(f"{sheet.stem}.results-2.xlsx")
    assert other.exists() and f"results written to {other.name} instead" in out
    assert_exactly_once(sb, addrs)


def test_a_password_the_platform_echoes_is_in_no_file(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory()
    sheet = sample_sheet(tmp_path)
    sb.faults.odd("POST", "/api/organisation/user", "echo-400")
    reports = [tmp_path / f"report.{suffix}" for suffix in ("json", "html", "csv", "xlsx")]
    extra = [word for path in reports for word in ("--report", str(path))]

    done = run_apply(sheet, sb, sb.tokens["org-admin"], *extra, template="lorawan-meter")

    no_traceback(done)
    assert done.returncode == 1, explain(done)  # the users failed, the rest went through
    passwords = [user["password"] for user in sample_tab("Users")]
    texts = {"stdout": done.stdout, "stderr": done.stderr}
    for path in tmp_path.iterdir():
        if path == sheet or path.is_dir():
            continue
        texts[path.name] = (
            all_cell_text(path) if path.suffix == ".xlsx" else path.read_text("utf-8-sig")
        )
    assert "bad request" in texts["report.json"]  # the echo reached the reports, redacted
    for name, text in texts.items():
        for password in passwords:
            assert password not in text, f"a password is in {name}"


def test_plain_http_to_a_remote_host_is_refused_before_any_request(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import httpx
    from click.testing import CliRunner

    from provisioner.cli import main

    def no_request(*args: object, **kwargs: object) -> None:
        raise AssertionError("a request was sent")

    # In process, so that no packet can leave even if the refusal broke.
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", no_request)
    sheet, _ = device_sheet(tmp_path, 2)
    remote = ["--url", "http://10.20.30.40:8080"]
    for words in (["plan", str(sheet), *remote], ["apply", str(sheet), *remote, "--yes"]):
        done = CliRunner().invoke(main, words, env={"PROVISIONER_TOKEN": "secret-token-value"})
        assert done.exit_code == USAGE, done.output
        assert "https://" in done.output and "--allow-http" in done.output
        assert "secret-token-value" not in done.output
    assert not journal_of(sheet).exists()


def test_ctrl_c_while_starting_ends_without_a_traceback(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(latency_ms=300)  # the plan takes a while
    sheet, _ = device_sheet(tmp_path, 5)
    proc = start_apply(sheet, sb, sb.tokens["device-admin"])
    time.sleep(0.8)
    proc.send_signal(signal.SIGINT)

    code, out, err = finish(proc)

    assert code == INTERRUPTED, out + err
    assert "Traceback" not in out + err
    assert "nothing was written" in err
    assert sb.store.count_devices() == 0


def test_a_second_ctrl_c_stops_at_once_with_the_journal_intact(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(latency_ms=3000)  # requests in flight for a long time
    sheet, _ = device_sheet(tmp_path, 40)
    proc = start_apply(sheet, sb, sb.tokens["device-admin"])
    deadline = time.monotonic() + RUN_TIMEOUT
    while '"intent"' not in (journal_of(sheet).read_text() if journal_of(sheet).exists() else ""):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)

    code, out, err = finish(proc)

    assert code == INTERRUPTED, out + err
    assert time.monotonic() - started < 2.5, "the second Ctrl-C must not wait for the platform"
    assert "Traceback" not in out + err
    assert "resume" in err.lower()
    lines = [json.loads(line) for line in journal_of(sheet).read_text().splitlines()]
    assert lines[0]["event"] == "start"
    assert results_path(sheet).exists(), "even a second Ctrl-C leaves the results"


def test_a_token_without_the_user_role_sends_the_rest_naming_the_role(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    """The plan learns from the user list's 403 that this token cannot create users: the
    devices (each exactly once) and downlinks go, the users are not run with the role they
    need, and the run ends as rows that need attention (exit 1), not as a platform stop."""
    sb = sandbox_factory()
    sheet = sample_sheet(tmp_path)

    done = run_apply(sheet, sb, sb.tokens["device-admin"], template="lorawan-meter")

    no_traceback(done)
    assert done.returncode == 1, explain(done)
    assert "org-admin" in done.stdout and "stopped" not in done.stdout + done.stderr
    assert_exactly_once(sb, [row["DevEUI"] for row in sample_tab("Devices")])
    assert sb.store.list_users() == []
    statuses = {r["Status"] for r in results_rows(sheet, "Users")}
    assert statuses == {"not run"}, statuses


# --- a disk that says no --------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mount tiny tmpfs folders (root only, as on the CI machine); unmounted after the test."""
    mounted: list[Path] = []

    def mount(size_kib: int, *options: str) -> Path:
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", ",".join([f"size={size_kib}k", *options]), "tmpfs"]
            + [str(folder)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small disk here: {done.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_read_only_journal_folder_is_refused_before_any_request(
    sandbox_factory: Factory, tmp_path: Path, small_disk: Callable[..., Path]
) -> None:
    sb = sandbox_factory()
    sheet, _ = device_sheet(tmp_path, 5)
    journal = small_disk(64, "ro") / "site.journal.jsonl"

    done = run_apply(sheet, sb, sb.tokens["device-admin"], "--journal", str(journal))

    no_traceback(done)
    assert done.returncode == USAGE, explain(done)
    assert "cannot be written" in done.stderr and "--journal" in done.stderr
    assert sb.store.count_devices() == 0


def test_a_journal_disk_that_fills_mid_run_stops_cleanly_and_the_next_run_finishes(
    sandbox_factory: Factory, tmp_path: Path, small_disk: Callable[..., Path]
) -> None:
    sb = sandbox_factory()
    sheet, addrs = device_sheet(tmp_path, 600)
    disk = small_disk(64)
    journal = disk / "site.journal.jsonl"

    done = run_apply(sheet, sb, sb.tokens["device-admin"], "--journal", str(journal))

    no_traceback(done)
    assert done.returncode == PLATFORM_REFUSED, explain(done)
    assert "the journal cannot be written" in done.stderr and "is full" in done.stderr
    assert "resume with" in done.stderr
    assert 0 < sb.store.count_devices() < 600
    statuses = {str(r["Status"]) for r in results_rows(sheet)}
    assert "not run" in statuses and "created" in statuses  # the results were written

    again = run_apply(sheet, sb, sb.tokens["device-admin"], "--journal", str(tmp_path / "j2.jsonl"))

    assert again.returncode == FINISHED, explain(again)
    assert_exactly_once(sb, addrs)
