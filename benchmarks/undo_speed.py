"""Undo speed: `provisioner undo --yes` against the `provisioner apply` that made the site.

A fresh sandbox process with added latency (default 100 ms a request); the real
commands in child processes, timed end to end (start-up, reading, writing, exit):
1. `apply --yes` of a sheet of N devices (default 600) on the empty platform;
2. `undo --yes` of that run, which must leave the platform empty again.
The sandbox logs every request, so the output also says how many requests undo
sent before its first DELETE (the reading before the question) and in all.

Target: undo at most 2x apply's time for the same site and latency. Undo reads
each device again right before its DELETE, so it sends two requests a device
where apply sends one: at the same concurrency its writing phase alone is about
2x apply's, and the rest (start-up, reading) must be small beside it.

Machines are noisy: the script prints figures and the ratio, it asserts nothing.

    python benchmarks/undo_speed.py [--devices 600] [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _sandbox import REPO
from apply_speed import ENV, REQUEST_LINE, apply_command, logged_sandbox, write_sheet

TARGET = 2.0


@dataclass
class UndoRequests:
    """What undo asked the sandbox, from its request log (the lines after apply's)."""

    before_first_delete: int = 0
    deletes: int = 0
    total: int = 0


def count_undo_requests(log: Path, skip: int) -> UndoRequests:
    """Undo's requests: the log's request lines after the first ``skip`` (apply's)."""
    lines = [m for m in map(REQUEST_LINE.search, log.read_text(errors="replace").splitlines()) if m]
    counted = UndoRequests()
    for match in lines[skip:]:
        counted.total += 1
        if match.group(1) == "DELETE":
            counted.deletes += 1
        elif not counted.deletes:
            counted.before_first_delete += 1
    return counted


def request_lines(log: Path) -> int:
    return sum(
        1 for line in log.read_text(errors="replace").splitlines() if REQUEST_LINE.search(line)
    )


def timed(command: list[str], token: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        command,
        env={**ENV, "PROVISIONER_TOKEN": token},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    return time.perf_counter() - started, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=600, help="devices in the site (600)")
    parser.add_argument("--latency-ms", type=int, default=100, help="sandbox latency per request")
    args = parser.parse_args()
    if args.devices < 1:
        parser.error("--devices must be at least 1")
    with (
        tempfile.TemporaryDirectory() as folder,
        logged_sandbox("--latency-ms", str(args.latency_ms)) as (url, token, log),
    ):
        sheet = Path(folder).resolve() / "site.csv"
        journal = sheet.with_name("site.journal.jsonl")
        write_sheet(sheet, args.devices)
        apply_s, applied = timed(apply_command(sheet, journal, url), token)
        if applied.returncode != 0:
            raise SystemExit(
                f"apply exited {applied.returncode}:\n{applied.stdout}{applied.stderr}"
            )
        time.sleep(0.3)  # the log line of the last request
        after_apply = request_lines(log)
        undo = [sys.executable, "-m", "provisioner", "undo", str(sheet), "--url", url]
        undo_s, undone = timed([*undo, "--journal", str(journal), "--yes"], token)
        if undone.returncode != 0:
            raise SystemExit(f"undo exited {undone.returncode}:\n{undone.stdout}{undone.stderr}")
        time.sleep(0.3)
        requests = count_undo_requests(log, after_apply)
        left = subprocess.run(
            [sys.executable, "-m", "provisioner", "plan", str(sheet), "--url", url],
            env={**ENV, "PROVISIONER_TOKEN": token},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if f"create {args.devices}" not in left.stdout:
            raise SystemExit(f"undo left devices on the platform:\n{left.stdout}{left.stderr}")
    ratio = undo_s / apply_s
    verdict = "ok" if ratio <= TARGET else "MISSED"
    print(
        f"undo speed: {args.devices} devices, sandbox latency {args.latency_ms} ms "
        f"(checkout {REPO})"
    )
    print(f"  apply --yes  {apply_s:8.2f} s")
    print(
        f"  undo --yes   {undo_s:8.2f} s  ({requests.before_first_delete} requests before the "
        f"first DELETE, {requests.deletes} DELETEs, {requests.total} in all)"
    )
    print(f"  undo/apply   {ratio:8.2f}   target <= {TARGET:g}: {verdict}")
    figures = {
        "devices": args.devices,
        "latency_ms": args.latency_ms,
        "apply_s": round(apply_s, 2),
        "undo_s": round(undo_s, 2),
        "ratio": round(ratio, 2),
        "target_met": ratio <= TARGET,
        "undo_requests_before_first_delete": requests.before_first_delete,
        "undo_requests_total": requests.total,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
