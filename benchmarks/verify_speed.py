"""Verify speed: `provisioner verify` both ways against a naive loop, in one run.

A sandbox process (``--latency-ms``, default 10) holds 10,000 devices (--devices),
95% of which have sent data (--online-share); the sheet lists them all. Measured,
each on a fresh copy of the same database:
- naive: the device list (paged, 10,000 a page), then one unpaged data request
  per device (``GET /api/devices/{id}/parsed-data``), one after another;
- verify --data organisation: the real command; the organisation's data since
  the install times, paged and grouped by device;
- verify --data per-device: the real command; one ``limit=1`` data request per
  device, concurrently.
Requests are counted from the sandbox's request log; time is the whole command
(start-up, validation, lookup, data, results workbook). Ratios are naive/ours.

Machines are noisy: the script prints figures and ratios, it asserts nothing.

    python benchmarks/verify_speed.py [--devices 10000] [--online-share 0.95] [--latency-ms 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from _sandbox import REPO, copy_database, running_sandbox

ENV = {**os.environ, "PYTHONPATH": str(REPO)}
REQUEST_LINE = re.compile(r'"([A-Z]+) ([^ ?"]+)[^"]*" (\d{3})')


def addr(i: int) -> str:
    return f"{0x0004A30B00000000 + i:016X}"


def seed_database(path: Path, count: int, online_share: float) -> None:
    """``count`` devices created an hour ago; the first ``online_share`` of them sent data now."""
    from provisioner.sandbox import SandboxStore

    store = SandboxStore(path)
    try:
        store.insert_devices({"addr": addr(i), "serial": f"SN{i:07d}"} for i in range(count))
        ids = [d["id"] for d in store.list_devices(limit=count)]
        online = ids[: int(count * online_share)]
        store.add_parsed_data_many((i, {"volume_m3": 1.0}) for i in online)
    finally:
        store.close()


def write_sheet(path: Path, count: int) -> None:
    lines = ["serial,addr"] + [f"SN{i:07d},{addr(i)}" for i in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@contextmanager
def sandbox_on(seeded: Path, latency_ms: int) -> Iterator[tuple[str, str, Path]]:
    """(url, device-admin token, request log) of a sandbox on a fresh copy of ``seeded``."""
    with tempfile.TemporaryDirectory() as folder:
        copy = copy_database(seeded, Path(folder))
        log = Path(folder) / "requests.log"
        options = ("--db", str(copy), "--latency-ms", str(latency_ms))
        with running_sandbox(*options, log=log) as (url, tokens):
            yield url, tokens["device-admin"], log


def count_requests(log: Path) -> int:
    time.sleep(0.2)  # the log line of the last request
    return sum(
        1 for line in log.read_text(errors="replace").splitlines() if REQUEST_LINE.search(line)
    )


def naive(url: str, token: str) -> tuple[float, int, int]:
    """(seconds, requests, devices with data) of the plain loop."""
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    requests = 0
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        devices, offset = [], 0
        while True:
            page = client.get(f"/api/devices?limit=10000&offset={offset}").json()["data"]
            requests += 1
            if not page:
                break
            devices += page
            offset += len(page)
        online = 0
        for device in devices:
            data = client.get(f"/api/devices/{device['id']}/parsed-data").json()["data"]
            requests += 1
            online += bool(data)
    return time.perf_counter() - started, requests, online


def ours(url: str, token: str, count: int, way: str) -> tuple[float, int, int, int]:
    """(seconds, data requests it reports, devices online, exit code) of the real command."""
    with tempfile.TemporaryDirectory() as folder:
        sheet = Path(folder) / "site.csv"
        write_sheet(sheet, count)
        report = Path(folder) / "verify.json"
        command = [sys.executable, "-m", "provisioner", "verify", str(sheet), "--url", url]
        command += ["--data", way, "--since", "1d", "--report", str(report)]
        started = time.perf_counter()
        done = subprocess.run(
            command, env={**ENV, "PROVISIONER_TOKEN": token}, capture_output=True, text=True
        )
        seconds = time.perf_counter() - started
        if done.returncode not in (0, 1):
            raise RuntimeError(f"verify exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        data = json.loads(report.read_text(encoding="utf-8"))
        return seconds, data["data_requests"], data["totals"]["online"], done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--online-share", type=float, default=0.95)
    parser.add_argument("--latency-ms", type=int, default=10)
    args = parser.parse_args()
    expected = int(args.devices * args.online_share)
    with tempfile.TemporaryDirectory() as folder:
        seeded = Path(folder) / "seeded.db"
        seed_database(seeded, args.devices, args.online_share)
        with sandbox_on(seeded, args.latency_ms) as (url, token, log):
            naive_s, naive_requests, naive_online = naive(url, token)
            naive_logged = count_requests(log)
        runs = {}
        for way in ("organisation", "per-device"):
            with sandbox_on(seeded, args.latency_ms) as (url, token, log):
                seconds, data_requests, online, _ = ours(url, token, args.devices, way)
                runs[way] = (seconds, data_requests, online, count_requests(log))
    print(
        f"verify speed: {args.devices:,} devices, {args.online_share:.0%} online, "
        f"sandbox latency {args.latency_ms} ms, a fresh sandbox per run"
    )
    print(
        f"  {'run':<28} {'seconds':>8} {'requests':>9} {'data req.':>9} {'online':>7} {'naive/ours':>10}"
    )
    print(
        f"  {'naive loop':<28} {naive_s:>8.2f} {naive_logged:>9} {naive_requests - 1:>9}"
        f" {naive_online:>7} {1:>10.2f}"
    )
    figures: dict[str, object] = {"devices": args.devices, "naive_s": round(naive_s, 2)}
    for way, (seconds, data_requests, online, logged) in runs.items():
        mark = "" if online == expected else f"  (! expected {expected})"
        print(
            f"  {'verify --data ' + way:<28} {seconds:>8.2f} {logged:>9} {data_requests:>9}"
            f" {online:>7} {naive_s / seconds:>10.2f}{mark}"
        )
        figures[f"{way}_s"] = round(seconds, 2)
        figures[f"{way}_requests"] = logged
        figures[f"{way}_data_requests"] = data_requests
        figures[f"{way}_ratio"] = round(naive_s / seconds, 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
