"""`provisioner apply` end to end: the real CLI in a subprocess against the sandbox.

The sandbox runs in the test process on a loopback port, so each scenario can
switch faults, revoke tokens and count what the platform holds. After every
scenario the platform must hold each device of the sheet exactly once and
nothing else, whatever happened to the run (500s, lost answers, SIGKILL,
Ctrl-C, a revoked token).
"""

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from provisioner.journal import read_journal
from provisioner.sandbox import MAX_PAGE_SIZE, Sandbox

SAMPLE = Path(__file__).resolve().parent.parent / "sample_sheets" / "site-hh-04.xlsx"
RUN_TIMEOUT = 90  # seconds for one apply run; a hang fails the test instead of the suite
FINISHED = 0
INTERRUPTED = 130

Factory = Callable[..., Sandbox]


# --- sheets -----------------------------------------------------------------------------------


def device_sheet(folder: Path, count: int, name: str = "site.csv") -> tuple[Path, list[str]]:
    """A CSV for the default template (match key serial); returns it and its addrs."""
    addrs = [f"70B3D5E7{i:08X}" for i in range(count)]
    lines = ["serial,addr,name"]
    lines += [f"SN{i:06d},{addr},Zähler {i}" for i, addr in enumerate(addrs)]
    sheet = folder / name
    sheet.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sheet, addrs


def sample_sheet(folder: Path) -> Path:
    sheet = folder / SAMPLE.name
    shutil.copyfile(SAMPLE, sheet)
    return sheet


def sample_tab(name: str) -> list[dict[str, str]]:
    """The rows of a tab of the sample sheet, by header."""
    workbook = openpyxl.load_workbook(SAMPLE, read_only=True)
    rows = list(workbook[name].iter_rows(values_only=True))
    workbook.close()
    header = [str(h) for h in rows[0]]
    return [dict(zip(header, (str(v) for v in row), strict=True)) for row in rows[1:] if any(row)]


# --- running the command ----------------------------------------------------------------------


def command(
    sheet: Path, sb: Sandbox, *extra: str, template: str = "default", yes: bool = True
) -> list[str]:
    words = [sys.executable, "-m", "provisioner", "apply", str(sheet), "--template", template]
    words += ["--url", sb.url, "--journal", str(journal_of(sheet)), *extra]
    return words + (["--yes"] if yes else [])


def environment(token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")}
    return {**env, "PROVISIONER_TOKEN": token, "PYTHONUNBUFFERED": "1"}


def journal_of(sheet: Path) -> Path:
    return sheet.with_name(f"{sheet.stem}.journal.jsonl")


def run_apply(
    sheet: Path, sb: Sandbox, token: str, *extra: str, **options: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(sheet, sb, *extra, **options),
        env=environment(token),
        cwd=sheet.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def start_apply(sheet: Path, sb: Sandbox, token: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(sheet, sb, *extra),
        env=environment(token),
        cwd=sheet.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"apply did not end in {RUN_TIMEOUT} s\n{out}\n{err}")
    return proc.returncode, out, err


def wait_for_devices(sb: Sandbox, proc: subprocess.Popen[str], at_least: int = 1) -> None:
    """Until the run has created something: a stop before that tests planning, not apply."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while sb.store.count_devices() < at_least:
        if proc.poll() is not None:
            pytest.fail(f"apply ended before creating anything: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("apply created nothing in time")
        time.sleep(0.01)


def apply_until_finished(
    sheet: Path, sb: Sandbox, token: str, *extra: str, **options: Any
) -> subprocess.CompletedProcess[str]:
    """Run apply; one more run is allowed only for rows that had no answer MAX_UNKNOWN times.

    Under injected faults a row may lose every one of its attempts (p = rate**4
    per row); the design's answer is to run the same command again.
    """
    done = run_apply(sheet, sb, token, *extra, **options)
    if done.returncode == 1 and "run again" in done.stdout:
        failed = [
            row
            for row in results_rows(sheet)
            if row.get("Status") not in ("created", "queued", "exists")
        ]
        assert failed and all("run again" in str(row.get("Message")) for row in failed), failed
        assert len(failed) <= 2, f"too many rows without an answer: {failed}"
        done = run_apply(sheet, sb, token, *extra, **options)
    assert done.returncode == FINISHED, explain(done)
    return done


def explain(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"


# --- what the platform and the files hold -----------------------------------------------------


def assert_exactly_once(sb: Sandbox, addrs: list[str]) -> None:
    """The platform holds each addr of the sheet once, and no other device."""
    held = Counter(str(d["addr"]).upper() for d in sb.store.list_devices(limit=MAX_PAGE_SIZE))
    wanted = Counter(a.upper() for a in addrs)
    duplicates = {a: n for a, n in held.items() if n > 1}
    assert not duplicates, f"devices created more than once: {duplicates}"
    assert not wanted - held, f"devices missing: {sorted(wanted - held)[:10]}"
    assert not held - wanted, f"devices not in the sheet: {sorted(held - wanted)[:10]}"


def journal_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Every whole record of the journal, and how many lines were torn."""
    records, torn = [], 0
    for line in path.read_bytes().split(b"\n"):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            torn += 1
    return records, torn


def assert_journal_consistent(path: Path, sb: Sandbox) -> list[dict[str, Any]]:
    """At most one `done` per thing; every device done is on the platform with that id."""
    records, torn = journal_lines(path)
    assert read_journal(path).torn_lines == torn
    done = Counter((r["kind"], r["key"]) for r in records if r.get("event") == "done")
    assert all(n == 1 for n in done.values()), {k: n for k, n in done.items() if n > 1}
    intents = {(r["kind"], r["key"]) for r in records if r.get("event") == "intent"}
    assert set(done) <= intents, "a done without an intent before it"
    for record in records:
        if record.get("event") == "done" and record["kind"] == "device":
            device = sb.store.get_device(record["platform_id"])
            assert device is not None
    return records


def results_path(sheet: Path) -> Path:
    return sheet.with_name(f"{sheet.stem}.results.xlsx")


def results_rows(sheet: Path, tab: str | None = None) -> list[dict[str, Any]]:
    """The rows of the results workbook below its Status header, by header name."""
    workbook = openpyxl.load_workbook(results_path(sheet), read_only=True)
    try:
        worksheet = workbook[tab] if tab else workbook.worksheets[0]
        rows = [list(row) for row in worksheet.iter_rows(values_only=True)]
    finally:
        workbook.close()
    for index, row in enumerate(rows):
        if "Status" in row:
            header = [str(h) if h is not None else "" for h in row]
            return [
                dict(zip(header, values, strict=False))
                for values in rows[index + 1 :]
                if any(v not in (None, "") for v in values)
            ]
    raise AssertionError(f"no Status header in {results_path(sheet).name}")


def all_cell_text(path: Path) -> str:
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        return "\n".join(
            str(value)
            for worksheet in workbook.worksheets
            for row in worksheet.iter_rows(values_only=True)
            for value in row
            if value is not None
        )
    finally:
        workbook.close()


# --- scenarios, most important first ---------------------------------------------------------


def test_500s_and_a_rate_limit_create_every_device_once(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(fail_rate=0.1, rate_limit=200, fault_seed=11)
    sheet, addrs = device_sheet(tmp_path, 100)

    done = apply_until_finished(sheet, sb, sb.tokens["device-admin"])

    assert_exactly_once(sb, addrs)
    rows = results_rows(sheet)
    assert len(rows) == len(addrs)
    assert {"Status", "Platform id", "Message"} <= set(rows[0])
    by_addr = {d["addr"].upper(): d["id"] for d in sb.store.list_devices(limit=MAX_PAGE_SIZE)}
    for row in rows:
        assert row["Status"] in ("created", "exists"), row
        assert int(row["Platform id"]) == by_addr[str(row["addr"]).upper()], row
    records = assert_journal_consistent(journal_of(sheet), sb)
    assert any(r.get("event") == "unknown" for r in records), "no 500 reached the run"
    token = sb.tokens["device-admin"]
    assert token not in done.stdout + done.stderr
    assert token not in journal_of(sheet).read_text() + all_cell_text(results_path(sheet))


def test_answers_lost_after_commit_make_no_duplicates(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(drop_after_commit_rate=0.2, fault_seed=12)
    sheet, addrs = device_sheet(tmp_path, 100)

    done = run_apply(sheet, sb, sb.tokens["device-admin"])

    assert done.returncode == FINISHED, explain(done)
    assert_exactly_once(sb, addrs)
    rows = results_rows(sheet)
    assert all(row["Status"] == "created" for row in rows)
    assert any("confirmed by looking it up" in row["Message"] for row in rows)
    assert_journal_consistent(journal_of(sheet), sb)


def test_sigkill_at_random_moments_then_one_run_to_the_end(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    # 600 devices: the creates start ~0.4 s in and outlast the kill window, so most kills
    # land among them (with 150, one run finished them and the rest killed the planning).
    sb = sandbox_factory(latency_ms=20)
    sheet, addrs = device_sheet(tmp_path, 600)
    token = sb.tokens["device-admin"]
    moments = random.Random(20260501)

    for _ in range(10):
        proc = start_apply(sheet, sb, token)
        time.sleep(moments.uniform(0.1, 1.0))
        proc.kill()
        proc.communicate(timeout=RUN_TIMEOUT)
        # Whatever was cut off, nothing is ever created twice.
        held = Counter(d["addr"] for d in sb.store.list_devices(limit=MAX_PAGE_SIZE))
        assert all(n == 1 for n in held.values())
    if sb.store.count_devices() < len(addrs):
        # However slow the machine, at least one kill lands among the creates.
        proc = start_apply(sheet, sb, token)
        wait_for_devices(sb, proc, at_least=sb.store.count_devices() + 1)
        proc.kill()
        proc.communicate(timeout=RUN_TIMEOUT)

    done = run_apply(sheet, sb, token)

    assert done.returncode == FINISHED, explain(done)
    assert_exactly_once(sb, addrs)
    state = read_journal(journal_of(sheet))
    # At most one torn line per killed run; every other line is a whole record.
    assert state.torn_lines <= 10
    assert_journal_consistent(journal_of(sheet), sb)
    # Undo takes every device back, those whose answers a kill cut off too (the last run
    # settled them): nothing of the runs is left, and it says so with exit 0.
    undo = subprocess.run(
        [sys.executable, "-m", "provisioner", "undo", str(sheet), "--url", sb.url, "--yes"],
        env=environment(sb.tokens["org-admin"]),
        cwd=sheet.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert undo.returncode == 0, explain(undo)
    assert sb.store.count_devices() == 0


@pytest.mark.parametrize(("revoked", "other"), [("device-admin", "org-admin")])
def test_a_token_revoked_mid_run_stops_it_and_another_token_finishes(
    sandbox_factory: Factory, tmp_path: Path, revoked: str, other: str
) -> None:
    sb = sandbox_factory(latency_ms=100)
    sheet, addrs = device_sheet(tmp_path, 120)

    proc = start_apply(sheet, sb, sb.tokens[revoked])
    wait_for_devices(sb, proc)
    time.sleep(0.3)
    sb.store.revoke_token(sb.tokens[revoked])
    code, out, err = finish(proc)

    assert code == 3, f"exit {code}\n{out}\n{err}"
    assert "refused the token" in err
    assert sb.tokens[revoked] not in out + err
    assert 0 < sb.store.count_devices() < len(addrs)
    assert_journal_consistent(journal_of(sheet), sb)

    done = run_apply(sheet, sb, sb.tokens[other])

    assert done.returncode == FINISHED, explain(done)
    assert_exactly_once(sb, addrs)
    assert_journal_consistent(journal_of(sheet), sb)


def test_ctrl_c_stops_cleanly_and_the_printed_command_resumes(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(latency_ms=100)
    sheet, addrs = device_sheet(tmp_path, 120)
    token = sb.tokens["device-admin"]

    proc = start_apply(sheet, sb, token)
    wait_for_devices(sb, proc)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)

    assert code == INTERRUPTED, f"exit {code}\n{out}\n{err}"
    assert "resume with:" in err
    assert 0 < sb.store.count_devices() < len(addrs)
    assert_journal_consistent(journal_of(sheet), sb)
    resume = err.split("resume with:", 1)[1].strip().splitlines()[0]
    words = shlex.split(resume)
    assert words[:2] == ["provisioner", "apply"]

    # The printed command; the platform's URL comes from the environment in case the
    # command leaves it out (test_the_resume_command_names_the_platform holds it to that).
    done = subprocess.run(
        [sys.executable, "-m", *words],
        env={**environment(token), "PROVISIONER_URL": sb.url},
        cwd=sheet.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )

    assert done.returncode == FINISHED, explain(done)
    assert_exactly_once(sb, addrs)
    assert_journal_consistent(journal_of(sheet), sb)


def test_the_resume_command_names_the_platform(sandbox_factory: Factory, tmp_path: Path) -> None:
    """The URL came from --url: a resume command without it cannot run as printed."""
    sb = sandbox_factory(latency_ms=100)
    sheet, _ = device_sheet(tmp_path, 60)

    proc = start_apply(sheet, sb, sb.tokens["device-admin"])
    wait_for_devices(sb, proc)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)

    assert code == INTERRUPTED, f"exit {code}\n{out}\n{err}"
    resume = shlex.split(err.split("resume with:", 1)[1].strip().splitlines()[0])
    assert "--url" in resume and resume[resume.index("--url") + 1] == sb.url, resume


def test_users_and_downlinks_under_faults_and_no_password_leaks(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(fail_rate=0.1, drop_after_commit_rate=0.2, fault_seed=13)
    sheet = sample_sheet(tmp_path)
    devices, users, downlinks = (sample_tab(t) for t in ("Devices", "Users", "Downlinks"))
    reports = [tmp_path / f"report.{suffix}" for suffix in ("json", "html", "csv", "xlsx")]
    extra = [word for path in reports for word in ("--report", str(path))]

    done = apply_until_finished(sheet, sb, sb.tokens["org-admin"], *extra, template="lorawan-meter")

    assert_exactly_once(sb, [row["DevEUI"] for row in devices])
    emails = Counter(u["email"].lower() for u in sb.store.list_users())
    for user in users:
        assert emails[user["email"].lower()] == 1, user["email"]
        assert sb.store.password_matches(user["email"], user["password"])
    for downlink in downlinks:
        [device] = sb.store.devices_by("addr", downlink["key"])
        queued = {d["type"]: d["content"] for d in sb.store.list_downlinks(device["id"])}
        assert downlink["type"] in queued, downlink
    assert_journal_consistent(journal_of(sheet), sb)

    passwords = [user["password"] for user in users]
    written = [path for path in tmp_path.iterdir() if path != sheet]
    assert results_path(sheet) in written and journal_of(sheet) in written
    texts = {"stdout": done.stdout, "stderr": done.stderr}
    for path in written:
        if path.suffix == ".xlsx":
            texts[path.name] = all_cell_text(path)
        else:
            texts[path.name] = path.read_text(encoding="utf-8-sig")
    for name, text in texts.items():
        for password in passwords:
            assert password not in text, f"a password from the Users tab is in {name}"


def test_a_second_run_on_a_finished_site_has_nothing_to_do(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory()
    sheet = sample_sheet(tmp_path)
    token = sb.tokens["org-admin"]
    first = run_apply(sheet, sb, token, template="lorawan-meter")
    assert first.returncode == FINISHED, explain(first)
    devices = sb.store.list_devices(limit=MAX_PAGE_SIZE)
    users = sb.store.list_users()
    queued = {d["id"]: sb.store.list_downlinks(d["id"]) for d in devices}
    journal = journal_of(sheet).read_bytes()

    second = run_apply(sheet, sb, token, template="lorawan-meter")

    assert second.returncode == FINISHED, explain(second)
    assert "nothing to do" in second.stdout
    assert sb.store.list_devices(limit=MAX_PAGE_SIZE) == devices
    assert sb.store.list_users() == users
    assert {d["id"]: sb.store.list_downlinks(d["id"]) for d in devices} == queued
    assert journal_of(sheet).read_bytes() == journal, "no intent may be written"


def test_a_journal_of_another_platform_does_not_skip_devices(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    """Rehearse on a sandbox, then apply to the real platform with the default journal."""
    rehearsal, production = sandbox_factory(), sandbox_factory()
    sheet, addrs = device_sheet(tmp_path, 10)
    first = run_apply(sheet, rehearsal, rehearsal.tokens["device-admin"])
    assert first.returncode == FINISHED, explain(first)

    done = run_apply(sheet, production, production.tokens["device-admin"])

    assert done.returncode == FINISHED, explain(done)
    assert_exactly_once(production, addrs)


def test_without_yes_and_without_a_terminal_nothing_is_created(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet, _ = device_sheet(tmp_path, 5)

    done = run_apply(sheet, sandbox, sandbox.tokens["device-admin"], yes=False)

    assert done.returncode == 2, explain(done)
    assert "--yes" in done.stderr
    assert sandbox.store.count_devices() == 0
    assert not journal_of(sheet).exists()
