"""Sandbox throughput: creates/s and listed devices/s at concurrency 1, 8 and 32.

The sandbox runs as its own process (`provisioner sandbox`) so that client and
server do not share one interpreter lock, as with the real platform. The
figures are the ceiling the later stages are measured against; ratios are
given against concurrency 1 measured in the same run.

    python benchmarks/sandbox_throughput.py [--creates 2000] [--seed 100000]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from _sandbox import running_sandbox

from provisioner.platform import PlatformClient, f


def create_rate(url: str, token: str, concurrency: int, count: int, prefix: str) -> float:
    with PlatformClient(url, token, max_connections=concurrency) as client:

        def create(i: int) -> None:
            client.create_device({"addr": f"{prefix}{i:012X}", "serial": f"B{prefix}{i}"})

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(create, range(count)))
        return count / (time.perf_counter() - started)


def list_rate(url: str, token: str, concurrency: int, seconds: float) -> tuple[float, float]:
    """Devices/s through full pages of 10000, and per-key lookups/s."""
    with PlatformClient(url, token, max_connections=concurrency) as client:
        offsets = [i * 10000 for i in range(10)]

        def page(offset: int) -> int:
            return len(client.list_devices_page(limit=10000, offset=offset))

        started = time.perf_counter()
        listed = 0
        with ThreadPoolExecutor(concurrency) as pool:
            while time.perf_counter() - started < seconds:
                listed += sum(pool.map(page, offsets[: max(concurrency, 1)]))
        devices_per_s = listed / (time.perf_counter() - started)

        def lookup(i: int) -> int:
            return len(client.list_devices_page([f("serial", "eq", f"S{i:07d}")], limit=100))

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lookup, range(300)))
        lookups_per_s = 300 / (time.perf_counter() - started)
        return devices_per_s, lookups_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=1500, help="creates per concurrency level")
    parser.add_argument("--seed", type=int, default=100000, help="devices seeded for listing")
    parser.add_argument("--seconds", type=float, default=3.0, help="time spent listing per level")
    args = parser.parse_args()

    with running_sandbox("--seed-devices", str(args.seed)) as (url, tokens):
        token = tokens["device-admin"]
        rows = []
        for n, concurrency in enumerate((1, 8, 32)):
            creates = create_rate(url, token, concurrency, args.creates, prefix=f"F{n}")
            devices, lookups = list_rate(url, token, concurrency, args.seconds)
            rows.append((concurrency, creates, devices, lookups))

    base_c, base_d, base_l = rows[0][1:]
    print(f"sandbox throughput ({args.seed} devices seeded, {args.creates} creates per level)")
    print(
        f"{'concurrency':>11} {'creates/s':>10} {'ratio':>6} {'listed dev/s':>13} {'ratio':>6}"
        f" {'lookups/s':>10} {'ratio':>6}"
    )
    for concurrency, creates, devices, lookups in rows:
        print(
            f"{concurrency:>11} {creates:>10.0f} {creates / base_c:>6.2f} {devices:>13.0f}"
            f" {devices / base_d:>6.2f} {lookups:>10.0f} {lookups / base_l:>6.2f}"
        )


if __name__ == "__main__":
    main()
