"""Apply speed: `provisioner apply` against a naive create loop, in one run.

For each size (--creates 600,2000) a fresh sandbox process (`provisioner
sandbox`, with added latency) per measurement, so that every run creates the
same N devices on an empty platform:
- naive: one POST after another through one httpx client;
- apply (default settings) and apply --concurrency 32: the real command in a
  child process with --yes, timed end to end (start-up, plan, creates, journal,
  results workbook); its journal splits the time into before the first create
  (start-up and plan), the create phase and after the last (results, exit).
Ratios are against the naive loop of the same size in the same run. Targets: at
least 15x naive with the default settings (the pace finds the concurrency by
itself, up to --concurrency, 32 by default), at least 15x at --concurrency 32.

The pace (--limited-rps 30, 0 to skip): a sandbox that allows 30 requests a second
(a token bucket, 429 with Retry-After above it) at 20 ms latency; default apply of
the first size. Targets: at least 24 creates/s in the create phase (0.8 of the
limit) and at most 10 % of the requests answered 429. Then apply --max-rps 10 of
100 devices against an unlimited sandbox: the sandbox's log, to the millisecond,
must show at most 11 requests in any one-second window.

The sandbox's own ceiling (creates/s at concurrency 32 without latency, as in
sandbox_throughput.py) is measured in the same run, so the output says whether
a figure is bound by latency x concurrency or by the sandbox itself. The
sandbox logs every request, so the output also says how many requests the plan
sent before the first create.

Start-up: the median wall time of a bare interpreter (`python -c pass`, the
floor), of `python -m provisioner apply --help` (imports; target < 0.5 s) and
of `provisioner apply` on a sheet with no data rows against the sandbox; then
the largest imports that `python -X importtime` shows for `apply --help`.

Journal fsyncs: each apply setting runs once more under `strace -f -y` (not
timed: tracing slows it) and the fsyncs of the journal's file are counted
against the journal's records. Without strace: "not measured (no strace)".

Updates (--updates 2000, 0 to skip): the platform holds N devices whose
description the sheet corrects. Naive: for each row a GET (find the device by
its serial) then a PUT, one after another. apply --update (default settings):
the real command; per row it reads the device again by id (the check that
nobody edited it since the plan) and PUTs it, so two requests per row bound it:
at most concurrency / (2 x latency) updates per second. Target: at least 6x the
naive loop. Each run gets a fresh copy of a pre-filled sandbox database.

Machines are noisy: the script prints figures and ratios, it asserts nothing.

    python benchmarks/apply_speed.py [--creates 600,2000] [--updates 2000] [--latency-ms 50]
        [--limited-rps 30] [--only-pace] [--only-updates]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from _sandbox import REPO, copy_database, running_sandbox
from sandbox_throughput import create_rate

TARGETS = {"default": 15.0, "concurrency 32": 15.0}
LIMITED_TARGET = 0.8  # creates/s in the create phase, against the platform's limit
LIMITED_429_SHARE = 0.10  # at most this share of requests answered 429
MAX_RPS, MAX_RPS_CREATES, MAX_RPS_WINDOW_TARGET = 10, 100, 11
# "[07/Dec/2026 05:50:01.123] "POST /api/devices HTTP/1.1" 201": the sandbox's log time
LOG_TIME = re.compile(r"\[(\d{2}/\w{3}/\d{4} \d{2}:\d{2}:\d{2}\.\d{3})\]")
UPDATE_TARGET = 6.0
SETTINGS = {"default": (), "concurrency 32": ("--concurrency", "32")}
CONCURRENCY = {"default": 32, "concurrency 32": 32}  # default: the ceiling the pace grows to
STARTUP_TARGET_S = 0.5
STARTUP_REPEATS = 7
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
# "127.0.0.1 - - [date] "POST /api/devices HTTP/1.1" 201 -", as the sandbox logs with --verbose
REQUEST_LINE = re.compile(r'"([A-Z]+) ([^ ?"]+)[^"]*" (\d{3})')
# strace -f -y -T: "1234  fsync(5</tmp/x/site.journal.jsonl>) = 0 <0.000136>", or split in two
# when threads overlap: "1234  fsync(5</tmp/...> <unfinished ...>" and then
# "1234  <... fsync resumed>) = 0 <0.000136>"
FSYNC_CALL = re.compile(r"^(\d+)\s+(?:fsync|fdatasync)\(\d+<([^>]*)>")
FSYNC_RESUMED = re.compile(r"^(\d+)\s+<\.\.\. (?:fsync|fdatasync) resumed>")
DURATION = re.compile(r"<(\d+\.\d+)>\s*$")


def write_sheet(path: Path, count: int) -> None:
    """A CSV for the default template: serial, addr, name."""
    lines = ["serial,addr,name"]
    lines += [f"SN{i:07d},{0x0004A30B00000000 + i:016X},Zähler {i}" for i in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass
class Requests:
    """What one sandbox process was asked, from its request log."""

    before_first_create: int = 0  # requests of any kind before the first POST
    creates: int = 0
    other: int = 0  # anything but a POST, after the first POST as before it
    failed: int = 0  # answers >= 400

    def describe(self) -> str:
        text = f"{self.before_first_create} before the first create, {self.creates} creates"
        if self.other - self.before_first_create:
            text += f", {self.other - self.before_first_create} other requests after it"
        if self.failed:
            text += f", {self.failed} answered >= 400"
        return text


def read_requests(log: Path) -> Requests:
    counted = Requests()
    for line in log.read_text(errors="replace").splitlines():
        match = REQUEST_LINE.search(line)
        if not match:
            continue
        method, _path, status = match.groups()
        if int(status) >= 400:
            counted.failed += 1
        if method == "POST":
            counted.creates += 1
        else:
            counted.other += 1
            if not counted.creates:
                counted.before_first_create += 1
    return counted


def request_times(log: Path) -> list[tuple[float, int]]:
    """(time, status) of every request in a sandbox log, in seconds, to the millisecond."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        request, stamp = REQUEST_LINE.search(line), LOG_TIME.search(line)
        if request and stamp:
            when = datetime.strptime(stamp.group(1), "%d/%b/%Y %H:%M:%S.%f").timestamp()
            found.append((when, int(request.group(3))))
    return found


def most_in_one_second(times: list[float]) -> int:
    """The most requests any one-second window holds (windows beginning at a request)."""
    times = sorted(times)
    most, first = 0, 0
    for last, when in enumerate(times):
        while when - times[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def measure_pace(count: int, limit: float, latency_ms: int) -> dict[str, object]:
    """Default apply against a rate-limited sandbox, then --max-rps against an unlimited one."""
    with logged_sandbox("--rate-limit", f"{limit:g}", "--latency-ms", str(latency_ms)) as (
        url,
        token,
        log,
    ):
        run = run_apply(url, token, count)
        time.sleep(0.3)  # the log line of the last request
        statuses = [status for _, status in request_times(log)]
    limited = statuses.count(429)
    phase_rate = count / run.phase
    with logged_sandbox("--latency-ms", str(latency_ms)) as (url, token, log):
        capped = run_apply(url, token, MAX_RPS_CREATES, "--max-rps", str(MAX_RPS))
        time.sleep(0.3)
        times = [when for when, _ in request_times(log)]
        most = most_in_one_second(times)
    share = limited / max(len(statuses), 1)
    print(
        f"\npace: a sandbox limited to {limit:g} requests/s (429 + Retry-After), "
        f"{latency_ms} ms latency, {count} creates, default settings:"
    )
    verdict = "ok" if phase_rate >= LIMITED_TARGET * limit else "MISSED"
    print(
        f"  create phase {phase_rate:.1f} creates/s = {phase_rate / limit:.2f} of the limit "
        f"(target >= {LIMITED_TARGET * limit:g}/s: {verdict}); whole command {run.seconds:.2f} s"
    )
    verdict = "ok" if share <= LIMITED_429_SHARE else "MISSED"
    print(
        f"  {limited} of {len(statuses)} requests answered 429 = {share:.1%} "
        f"(target <= {LIMITED_429_SHARE:.0%}: {verdict})"
    )
    verdict = "ok" if most <= MAX_RPS_WINDOW_TARGET else "MISSED"
    print(
        f"  apply --max-rps {MAX_RPS}, {MAX_RPS_CREATES} creates, unlimited sandbox: at most "
        f"{most} requests in any one-second window (target <= {MAX_RPS_WINDOW_TARGET}: "
        f"{verdict}); {len(times)} requests (the plan's lookups too) in {capped.seconds:.2f} s"
    )
    return {
        "limit_per_s": limit,
        "latency_ms": latency_ms,
        "create_phase_per_s": round(phase_rate, 1),
        "create_phase_of_limit": round(phase_rate / limit, 3),
        "create_phase_target_met": phase_rate >= LIMITED_TARGET * limit,
        "requests": len(statuses),
        "answered_429": limited,
        "share_429": round(share, 4),
        "share_429_target_met": share <= LIMITED_429_SHARE,
        "max_rps": MAX_RPS,
        "max_rps_most_in_one_second": most,
        "max_rps_requests": len(times),
        "max_rps_target_met": most <= MAX_RPS_WINDOW_TARGET,
    }


@contextmanager
def logged_sandbox(*options: str) -> Iterator[tuple[str, str, Path]]:
    """Yield (url, device-admin token, request log) of a sandbox process that logs requests."""
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "requests.log"
        with running_sandbox(*options, log=log) as (url, tokens):
            yield url, tokens["device-admin"], log


def naive_rate(url: str, token: str, count: int) -> float:
    """Creates/s of a plain sequential loop: the baseline."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        started = time.perf_counter()
        for i in range(count):
            answer = client.post(
                "/api/devices",
                json={"addr": f"{0x0004A30B00000000 + i:016X}", "serial": f"SN{i:07d}"},
            )
            answer.raise_for_status()
        return count / (time.perf_counter() - started)


@dataclass
class ApplyRun:
    seconds: float  # whole command
    before: float  # launch to the journal's first record: start-up and plan
    phase: float  # first to last create record
    after: float  # last create record to exit: results workbook, exit
    records: int  # journal records of the run
    journal_fsyncs: int | None = None  # None: not traced
    journal_fsync_s: float = 0.0  # mean time of one fsync of the journal
    other_fsyncs: dict[str, int] | None = None
    requests: Requests | None = None


def apply_command(sheet: Path, journal: Path, url: str, *options: str) -> list[str]:
    command = [sys.executable, "-m", "provisioner", "apply", str(sheet), "--url", url]
    return command + ["--yes", "--journal", str(journal), *options]


def run_apply(url: str, token: str, count: int, *options: str, strace: str = "") -> ApplyRun:
    """One `provisioner apply` run creating `count` devices; under strace if given."""
    with tempfile.TemporaryDirectory() as folder:
        sheet = Path(folder).resolve() / "site.csv"
        journal = sheet.with_name("site.journal.jsonl")
        trace = sheet.with_name("fsync.trace")
        write_sheet(sheet, count)
        command = apply_command(sheet, journal, url, *options)
        if strace:
            # --seccomp-bpf: only the traced calls stop the child, not every system call
            command = [strace, "-f", "-y", "-T", "-qq", "--seccomp-bpf"]
            command += ["-e", "trace=fsync,fdatasync"]
            command += ["-o", str(trace), *apply_command(sheet, journal, url, *options)]
        env = {**ENV, "PROVISIONER_TOKEN": token}
        launched = time.time()
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        seconds = time.perf_counter() - started
        ended = launched + seconds
        if done.returncode != 0:
            raise RuntimeError(f"apply exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        records = [json.loads(line) for line in journal.read_text().splitlines() if line]
        creates = [r for r in records if r["event"] in ("intent", "done", "failed", "unknown")]
        created = sum(1 for r in records if r["event"] == "done" and r["status"] == "created")
        if created != count:
            raise RuntimeError(f"apply created {created} devices, not {count}")
        first = datetime.fromisoformat(creates[0]["at"]).timestamp()
        last = datetime.fromisoformat(creates[-1]["at"]).timestamp()
        run = ApplyRun(
            seconds=seconds,
            before=max(first - launched, 0.0),
            phase=max(last - first, 1e-3),
            after=max(ended - last, 0.0),
            records=len(records),
        )
        if strace:
            synced = read_fsyncs(trace)
            calls = synced.pop(str(journal), [])
            run.journal_fsyncs = len(calls)
            run.journal_fsync_s = statistics.mean(calls) if calls else 0.0
            run.other_fsyncs = {
                describe_path(path, Path(folder).resolve()): len(n) for path, n in synced.items()
            }
        return run


def read_fsyncs(trace: Path) -> dict[str, list[float]]:
    """The fsyncs of an strace log: their durations in seconds, by the file's path."""
    synced: dict[str, list[float]] = {}
    pending: dict[str, str] = {}  # pid -> path of its unfinished call
    for line in trace.read_text(errors="replace").splitlines():
        duration = DURATION.search(line)
        seconds = float(duration.group(1)) if duration else 0.0
        if call := FSYNC_CALL.match(line):
            pid, path = call.groups()
            if "<unfinished ...>" in line:
                pending[pid] = path
            else:
                synced.setdefault(path, []).append(seconds)
        elif (resumed := FSYNC_RESUMED.match(line)) and resumed.group(1) in pending:
            synced.setdefault(pending.pop(resumed.group(1)), []).append(seconds)
    for path in pending.values():  # never resumed: the process ended in the call
        synced.setdefault(path, []).append(0.0)
    return synced


def describe_path(path: str, folder: Path) -> str:
    if path == str(folder):
        return "the folder"
    if ".results.xlsx" in path:
        return "the results workbook"
    return path


def median_seconds(command: list[str], repeats: int, env: dict[str, str], cwd: Path) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=True, timeout=120)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@dataclass
class StartUp:
    bare: float
    help: float
    empty_apply: float
    empty_requests: Requests
    imports: list[tuple[str, float, str]]  # (module, cumulative s, imported by)


def measure_startup(latency: tuple[str, ...]) -> StartUp:
    python = sys.executable
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        # One run first, so that every timed one finds the bytecode compiled.
        subprocess.run(
            [python, "-m", "provisioner", "apply", "--help"],
            env=ENV,
            cwd=cwd,
            check=True,
            capture_output=True,
        )
        bare = median_seconds([python, "-c", "pass"], STARTUP_REPEATS, ENV, cwd)
        help_ = median_seconds(
            [python, "-m", "provisioner", "apply", "--help"], STARTUP_REPEATS, ENV, cwd
        )
        with logged_sandbox(*latency) as (url, token, log):
            sheet = cwd / "empty.csv"
            write_sheet(sheet, 0)
            command = apply_command(sheet, cwd / "empty.journal.jsonl", url)
            env = {**ENV, "PROVISIONER_TOKEN": token}
            empty = median_seconds(command, STARTUP_REPEATS, env, cwd)
            if not (cwd / "empty.results.xlsx").exists():
                raise RuntimeError("apply on an empty sheet wrote no results workbook")
            time.sleep(0.2)  # the log line of the last request
            requests = read_requests(log)
        importtime = subprocess.run(
            [python, "-X", "importtime", "-m", "provisioner", "apply", "--help"],
            env=ENV,
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        )
    # Per-run counts: the log holds all runs of the median.
    requests.before_first_create //= STARTUP_REPEATS
    requests.other //= STARTUP_REPEATS
    requests.creates //= STARTUP_REPEATS
    return StartUp(bare, help_, empty, requests, largest_imports(importtime.stderr, 5))


def largest_imports(report: str, top: int) -> list[tuple[str, float, str]]:
    """The heaviest imports of an -X importtime report: provisioner's own modules and the
    outermost import of each other top-level package, by cumulative time (which includes
    what a module imports), each with the module that imported it."""
    rows = []  # (depth, name, cumulative us), in the report's order: children first
    for line in report.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append((depth, name.strip(), int(parts[1])))
    found: dict[str, tuple[float, str]] = {}
    for i, (depth, name, cumulative) in enumerate(rows):
        parent = next((n for d, n, _ in rows[i + 1 :] if d < depth), "")
        package = name.split(".")[0]
        if name in ("provisioner", "provisioner.cli", "provisioner.__main__"):
            continue
        if package == "provisioner":
            key = name
        elif parent.split(".")[0] != package:
            key = package if name == package else f"{package} ({name})"
        else:
            continue
        if cumulative / 1e6 > found.get(key, (0.0, ""))[0]:
            found[key] = (cumulative / 1e6, parent or "-")
    ranked = sorted(found.items(), key=lambda item: -item[1][0])[:top]
    return [(name, seconds, parent) for name, (seconds, parent) in ranked]


# --- updates -----------------------------------------------------------------------------


def update_sheet(path: Path, count: int) -> None:
    """The sheet of the devices in the database of seed_database, their description corrected."""
    lines = ["serial,addr,name,description"]
    lines += [
        f"SN{i:07d},{0x0004A30B00000000 + i:016X},Zähler {i},Keller {i}" for i in range(count)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def seed_database(path: Path, count: int) -> None:
    """A sandbox database holding ``count`` devices described "Dach"."""
    from provisioner.sandbox import SandboxStore

    store = SandboxStore(path)
    try:
        store.insert_devices(
            {
                "addr": f"{0x0004A30B00000000 + i:016X}",
                "serial": f"SN{i:07d}",
                "name": f"Zähler {i}",
                "description": "Dach",
            }
            for i in range(count)
        )
    finally:
        store.close()


@contextmanager
def filled_sandbox(seeded: Path, *options: str) -> Iterator[tuple[str, str]]:
    """A sandbox process on a fresh copy of the database ``seeded``: (url, device-admin token)."""
    with tempfile.TemporaryDirectory() as folder:
        copy = copy_database(seeded, Path(folder))
        with running_sandbox("--db", str(copy), *options) as (url, tokens):
            yield url, tokens["device-admin"]


def naive_update_rate(url: str, token: str, count: int) -> float:
    """Updates/s of a plain loop: find the device by its serial, then PUT it."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        started = time.perf_counter()
        for i in range(count):
            found = client.get(f"/api/devices?f:serial=eq:SN{i:07d}")
            found.raise_for_status()
            device = found.json()["data"][0]
            body = {k: device[k] for k in ("addr", "name", "serial", "deviceTypeId")}
            answer = client.put(
                f"/api/devices/{device['id']}", json={**body, "description": f"Keller {i}"}
            )
            answer.raise_for_status()
        return count / (time.perf_counter() - started)


def run_update(url: str, token: str, count: int) -> tuple[float, int]:
    """(seconds, devices updated) of one `provisioner apply --update --yes` run."""
    with tempfile.TemporaryDirectory() as folder:
        sheet = Path(folder).resolve() / "site.csv"
        journal = sheet.with_name("site.journal.jsonl")
        update_sheet(sheet, count)
        command = apply_command(sheet, journal, url, "--update")
        started = time.perf_counter()
        done = subprocess.run(
            command,
            env={**ENV, "PROVISIONER_TOKEN": token},
            capture_output=True,
            text=True,
            timeout=900,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(
                f"apply --update exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        records = [json.loads(line) for line in journal.read_text().splitlines() if line]
        updated = sum(
            1 for r in records if r.get("op") == "update" and r.get("status") == "updated"
        )
        return seconds, updated


def measure_updates(count: int, latency: tuple[str, ...], latency_ms: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        seeded = Path(folder) / "seeded.db"
        seed_database(seeded, count)
        with filled_sandbox(seeded, *latency) as (url, token):
            naive = naive_update_rate(url, token, count)
        with filled_sandbox(seeded, *latency) as (url, token):
            seconds, updated = run_update(url, token, count)
    if updated != count:
        raise RuntimeError(f"apply --update updated {updated} devices, not {count}")
    rate = count / seconds
    # The default ceiling, two requests per row (the pace grows to it on a fast platform).
    bound = CONCURRENCY["default"] * 1000 / (2 * latency_ms)
    verdict = "ok" if rate / naive >= UPDATE_TARGET else "MISSED"
    print(f"\n{count} updates (description corrected), sandbox latency {latency_ms} ms:")
    print(f"  {'run':<24} {'updates/s':>9} {'ratio':>6} {'target':>6} {'seconds':>7}  bound")
    print(
        f"  {'naive GET+PUT loop':<24} {naive:>9.1f} {1:>6.2f} {'':>6} {count / naive:>7.2f}"
        "  latency, 2 requests a row, 1 at a time"
    )
    print(
        f"  {'apply --update':<24} {rate:>9.1f} {rate / naive:>6.2f} {f'>={UPDATE_TARGET:g}x':>6}"
        f" {seconds:>7.2f}  2 requests a row (read again, PUT) x at most"
        f" {CONCURRENCY['default']} at once:"
        f" {bound:.0f}/s, + plan; target {verdict}"
    )
    return {
        "updates": count,
        "naive_per_s": round(naive, 1),
        "apply_update_per_s": round(rate, 1),
        "apply_update_ratio": round(rate / naive, 2),
        "apply_update_seconds": round(seconds, 2),
        "apply_update_target_met": rate / naive >= UPDATE_TARGET,
    }


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma list of whole numbers: {text}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("give one or more sizes of at least 1")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--creates",
        type=parse_sizes,
        default=[600, 2000],
        help="devices created per run, a comma list of sizes (default 600,2000)",
    )
    parser.add_argument("--latency-ms", type=int, default=50, help="sandbox latency per request")
    parser.add_argument(
        "--updates", type=int, default=2000, help="devices updated in the update case (0: skip)"
    )
    parser.add_argument("--only-updates", action="store_true", help="run the update case alone")
    parser.add_argument(
        "--limited-rps",
        type=float,
        default=30.0,
        help="the rate-limited sandbox of the pace case, requests/s (0: skip the case)",
    )
    parser.add_argument(
        "--limited-latency-ms", type=int, default=20, help="its latency per request"
    )
    parser.add_argument("--only-pace", action="store_true", help="run the pace case alone")
    args = parser.parse_args()
    if args.only_pace:
        figures = measure_pace(args.creates[0], args.limited_rps, args.limited_latency_ms)
        print(json.dumps({"pace": figures}))
        return
    if args.only_updates:
        print(
            json.dumps(
                measure_updates(
                    args.updates, ("--latency-ms", str(args.latency_ms)), args.latency_ms
                )
            )
        )
        return
    latency = ("--latency-ms", str(args.latency_ms))
    strace = shutil.which("strace") or ""

    with running_sandbox() as (url, tokens):
        ceiling = create_rate(url, tokens["device-admin"], 32, max(args.creates), prefix="C0")
    startup = measure_startup(latency)
    results = {}
    for count in args.creates:
        with logged_sandbox(*latency) as (url, token, _log):
            naive = naive_rate(url, token, count)
        runs = {}
        for name, options in SETTINGS.items():
            with logged_sandbox(*latency) as (url, token, log):
                run = run_apply(url, token, count, *options)
                time.sleep(0.2)  # the log line of the last request
                run.requests = read_requests(log)
            if strace:
                with logged_sandbox(*latency) as (url, token, _log):
                    traced = run_apply(url, token, count, *options, strace=strace)
                run.journal_fsyncs, run.other_fsyncs = traced.journal_fsyncs, traced.other_fsyncs
                run.journal_fsync_s = traced.journal_fsync_s
                run.records = traced.records
            runs[name] = run
        results[count] = (naive, runs)

    sizes = ",".join(str(n) for n in args.creates)
    print(
        f"apply speed: {sizes} creates per run, sandbox latency {args.latency_ms} ms, "
        f"a fresh sandbox process per run"
    )
    print(f"sandbox ceiling (concurrency 32, no latency): {ceiling:.0f} creates/s")
    figures: dict[str, object] = {
        "creates": args.creates,
        "latency_ms": args.latency_ms,
        "sandbox_ceiling_per_s": round(ceiling, 1),
    }

    print(f"\nstart-up (median of {STARTUP_REPEATS} runs each):")
    help_verdict = "ok" if startup.help < STARTUP_TARGET_S else "MISSED"
    empty_verdict = "ok" if startup.empty_apply < STARTUP_TARGET_S else "MISSED"
    print(f"  {'python -c pass (the floor)':<44} {startup.bare:>6.3f} s")
    print(
        f"  {'python -m provisioner apply --help':<44} {startup.help:>6.3f} s"
        f"  target < {STARTUP_TARGET_S:g} s: {help_verdict}"
        f"  (imports {startup.help - startup.bare:.3f} s above the floor)"
    )
    print(
        f"  {'provisioner apply, sheet with 0 data rows':<44} {startup.empty_apply:>6.3f} s"
        f"  target < {STARTUP_TARGET_S:g} s: {empty_verdict}"
        f"  (requests per run: {startup.empty_requests.other + startup.empty_requests.creates})"
    )
    print("  largest cumulative imports of apply --help (-X importtime, one run):")
    for module, seconds, parent in startup.imports:
        print(f"    {module:<42} {seconds:>6.3f} s  imported by {parent}")
    figures["startup"] = {
        "bare_python_s": round(startup.bare, 3),
        "apply_help_s": round(startup.help, 3),
        "apply_empty_sheet_s": round(startup.empty_apply, 3),
        "apply_empty_sheet_requests": startup.empty_requests.other + startup.empty_requests.creates,
        "target_s": STARTUP_TARGET_S,
        "apply_help_target_met": startup.help < STARTUP_TARGET_S,
        "largest_imports_s": {module: round(seconds, 3) for module, seconds, _ in startup.imports},
    }

    by_size: dict[str, object] = {}
    for count, (naive, runs) in results.items():
        print(f"\n{count} creates:")
        print(
            f"  {'run':<20} {'creates/s':>9} {'ratio':>6} {'target':>6} {'seconds':>7}"
            f" {'before':>6} {'phase':>6} {'after':>6} {'phase/s':>8}  bound"
        )
        print(
            f"  {'naive loop':<20} {naive:>9.1f} {1:>6.2f} {'':>6} {count / naive:>7.2f}"
            f" {'':>6} {'':>6} {'':>6} {'':>8}  latency, 1 at a time"
        )
        size: dict[str, object] = {"naive_per_s": round(naive, 1)}
        for name, run in runs.items():
            concurrency = CONCURRENCY[name]
            latency_bound = concurrency * 1000 / args.latency_ms
            bound = (
                f"latency x concurrency ({latency_bound:.0f}/s)"
                if latency_bound < ceiling
                else f"sandbox ceiling ({ceiling:.0f}/s)"
            )
            whole = count / run.seconds
            target = TARGETS[name]
            verdict = "ok" if whole / naive >= target else "MISSED"
            fixed = run.before + run.after
            print(
                f"  {'apply ' + name:<20} {whole:>9.1f} {whole / naive:>6.2f}"
                f" {f'>={target:g}x':>6} {run.seconds:>7.2f} {run.before:>6.2f}"
                f" {run.phase:>6.2f} {run.after:>6.2f} {count / run.phase:>8.1f}"
                f"  {bound}, +{fixed:.2f} s fixed; target {verdict}"
            )
            key = name.replace(" ", "_")
            size[f"apply_{key}_per_s"] = round(whole, 1)
            size[f"apply_{key}_ratio"] = round(whole / naive, 2)
            size[f"apply_{key}_target_met"] = whole / naive >= target
            size[f"apply_{key}_seconds"] = round(run.seconds, 3)
            size[f"apply_{key}_before_first_create_s"] = round(run.before, 3)
            size[f"apply_{key}_create_phase_s"] = round(run.phase, 3)
            size[f"apply_{key}_after_last_create_s"] = round(run.after, 3)
            size[f"apply_{key}_create_phase_per_s"] = round(count / run.phase, 1)
            if run.requests is not None:
                size[f"apply_{key}_requests_before_first_create"] = run.requests.before_first_create
                size[f"apply_{key}_requests_total"] = run.requests.creates + run.requests.other
            size[f"apply_{key}_journal_records"] = run.records
            size[f"apply_{key}_journal_fsyncs"] = run.journal_fsyncs
        for name, run in runs.items():
            if run.requests is not None:
                print(f"  requests, apply {name}: {run.requests.describe()}")
        for name, run in runs.items():
            if run.journal_fsyncs is None:
                continue
            per = run.records / run.journal_fsyncs if run.journal_fsyncs else float("inf")
            others = ", ".join(f"{n} of {what}" for what, n in (run.other_fsyncs or {}).items())
            print(
                f"  fsyncs, apply {name}: {run.records} journal records, "
                f"{run.journal_fsyncs} fsyncs of the journal = {per:.2f} records per fsync "
                f"(1.00 without grouping), {run.journal_fsync_s * 1e6:.0f} us each; "
                f"other fsyncs: {others or 'none'}"
            )
            size[f"apply_{name.replace(' ', '_')}_records_per_fsync"] = round(per, 2)
            size[f"apply_{name.replace(' ', '_')}_journal_fsync_us"] = round(
                run.journal_fsync_s * 1e6
            )
        by_size[str(count)] = size
        if not strace:
            print("  fsyncs: not measured (no strace)")
    if strace:
        print(
            "\n(fsyncs are counted in a second, traced run of each setting, "
            "not in the timed one: strace slows a run)"
        )
    figures["sizes"] = by_size
    if args.limited_rps:
        figures["pace"] = measure_pace(args.creates[0], args.limited_rps, args.limited_latency_ms)
    if args.updates:
        figures["update"] = measure_updates(args.updates, latency, args.latency_ms)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
