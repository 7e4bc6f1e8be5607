"""Plan speed: each lookup strategy of `provisioner plan` against a naive loop, in one run.

One sandbox process (`provisioner sandbox --seed-devices 95000`) also gets half
of the sheet's devices (so it holds exactly 100,000 by default), created over HTTP and tagged with the site tag (a tenth
of them with another description, so the plan has create, exists and differs).
The sheet is a CSV of N rows for the default template (match key serial).
- naive: one `GET /api/devices?f:serial=eq:<serial>` per row, one after another,
  through one httpx client (keep-alive), nothing else;
- per-key, scan, tag, auto: ``make_plan`` of the library through a
  ``PlatformClient``, with the sheet validated beforehand (validation is timed
  once, apart), so the seconds are the lookup and the diff. tag uses the default
  template with ``site_tag``; "auto (site tag)" is auto with that template.
Ratios are naive seconds over the strategy's seconds. Targets: auto at least 20x
faster than naive; a scan of the platform's 100,000+ devices in at most 11 requests.

The sandbox adds ``--latency-ms`` to every request (default 10 ms, a fast link;
from the field it is more like 30-100 ms). Without it, on loopback, one filter
query costs well under a millisecond and the naive loop is bound by the sandbox's
CPU, not by round trips as it is against the real platform.

    python benchmarks/plan_speed.py [--rows 10000] [--seed 95000] [--latency-ms 10]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from _sandbox import running_sandbox

from provisioner.lookup import PAGE_COST
from provisioner.plan import make_plan
from provisioner.platform import PlatformClient
from provisioner.resources import data_folder
from provisioner.templates import SiteTemplate, load_template
from provisioner.validation import ValidationReport, validate_sheet

SITE_TAG = "Site-BENCH"
AUTO_TARGET = 20.0  # auto at least this many times faster than naive
SCAN_TARGET = 11  # requests for a scan of 100,000 devices


def serial(i: int) -> str:
    return f"BN{i:06d}"


def addr(i: int) -> str:
    # Seeded devices use 70B3D5E7... and 3526561...: no clash.
    return f"0004A30B{i:08X}"


def description(i: int) -> str:
    return "Dach" if i % 20 == 0 else "Keller"


def write_sheet(path: Path, rows: int) -> None:
    lines = ["serial,addr,name,description"]
    lines += [f"{serial(i)},{addr(i)},Zähler {i},Keller" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_site_template(path: Path) -> None:
    """The built-in default template with the site tag (top-level keys precede tables)."""
    default = (data_folder("templates") / "default.toml").read_text(encoding="utf-8")
    path.write_text(f'site_tag = "{SITE_TAG}"\n{default}', encoding="utf-8")


def create_half(url: str, token: str, rows: int) -> int:
    """Every other row of the sheet onto the platform, with the site tag."""
    with PlatformClient(url, token, max_connections=16) as client:

        def create(i: int) -> None:
            client.create_device(
                {
                    "serial": serial(i),
                    "addr": addr(i),
                    "name": f"Zähler {i}",
                    "description": description(i),
                    "tags": [SITE_TAG],
                }
            )

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(create, range(0, rows, 2)))
    return len(range(0, rows, 2))


def naive(url: str, token: str, rows: int) -> tuple[int, float, int]:
    """(requests, seconds, devices found) of one filter query per row, in sequence."""
    found = 0
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        started = time.perf_counter()
        for i in range(rows):
            answer = client.get(f"/api/devices?f:serial=eq:{serial(i)}")
            answer.raise_for_status()
            found += len(answer.json()["data"])
        return rows, time.perf_counter() - started, found


def run_strategy(
    url: str,
    token: str,
    sheet: Path,
    template: SiteTemplate,
    report: ValidationReport,
    lookup: str,
) -> dict[str, Any]:
    with PlatformClient(url, token) as client:
        started = time.perf_counter()
        plan = make_plan(sheet, template, client, lookup, validation=report)
        seconds = time.perf_counter() - started
    stats = plan.lookup
    return {
        "strategy": stats.strategy,
        "requests": stats.requests,
        "devices_read": stats.devices_read,
        "lookup_seconds": round(stats.seconds, 3),
        "seconds": round(seconds, 3),
        "totals": plan.totals,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10000, help="rows of the sheet")
    parser.add_argument(
        "--seed", type=int, default=95000, help="devices seeded besides the sheet's own"
    )
    parser.add_argument("--latency-ms", type=int, default=10, help="sandbox latency per request")
    args = parser.parse_args()
    sandbox_options = ("--seed-devices", str(args.seed), "--latency-ms", str(args.latency_ms))

    with (
        tempfile.TemporaryDirectory() as folder,
        running_sandbox(*sandbox_options) as (url, tokens),
    ):
        token = tokens["device-admin"]
        sheet = Path(folder) / "site.csv"
        write_sheet(sheet, args.rows)
        tagged = Path(folder) / "site-bench.toml"
        write_site_template(tagged)
        created = create_half(url, token, args.rows)
        templates = {"default": load_template("default"), "site tag": load_template(str(tagged))}
        started = time.perf_counter()
        reports = {name: validate_sheet(sheet, t) for name, t in templates.items()}
        validation_seconds = (time.perf_counter() - started) / len(templates)

        naive_requests, naive_seconds, naive_found = naive(url, token, args.rows)
        runs: dict[str, dict[str, Any]] = {}
        for name, lookup, template in (
            ("per-key", "per-key", "default"),
            ("scan", "scan", "default"),
            ("tag", "tag", "site tag"),
            ("auto", "auto", "default"),
            ("auto (site tag)", "auto", "site tag"),
        ):
            runs[name] = run_strategy(
                url, token, sheet, templates[template], reports[template], lookup
            )

    platform_devices = args.seed + created
    print(
        f"plan speed: {args.rows}-row sheet (match key serial, {created} of its devices on the "
        f"platform), {platform_devices} platform devices, sandbox in its own process "
        f"with {args.latency_ms} ms latency"
    )
    print(f"validation of the sheet (not in the figures below): {validation_seconds:.2f} s")
    print(
        f"{'strategy':<16} {'ran as':<9} {'requests':>9} {'devices read':>13} {'lookup s':>9}"
        f" {'plan s':>8} {'ratio':>7}  totals"
    )
    print(
        f"{'naive loop':<16} {'':<9} {naive_requests:>9} {naive_found:>13} {naive_seconds:>9.2f}"
        f" {naive_seconds:>8.2f} {1:>7.2f}  {naive_found} found"
    )
    for name, run in runs.items():
        totals = " ".join(f"{k} {v}" for k, v in run["totals"].items())
        print(
            f"{name:<16} {run['strategy']:<9} {run['requests']:>9} {run['devices_read']:>13}"
            f" {run['lookup_seconds']:>9.2f} {run['seconds']:>8.2f}"
            f" {naive_seconds / run['seconds']:>7.2f}  {totals}"
        )

    auto_ratio = naive_seconds / runs["auto"]["seconds"]
    scan = runs["scan"]
    auto_met = auto_ratio >= AUTO_TARGET
    scan_met = scan["requests"] <= SCAN_TARGET
    documented_rule = platform_devices // 10000 + 1  # pages until one is shorter than asked
    per_key = runs["per-key"]
    page_cost = (scan["seconds"] / scan["requests"]) / (per_key["seconds"] / per_key["requests"])
    print(
        f"one page of 10000 cost as much as {page_cost:.0f} concurrent per-key lookups "
        f"(lookup.PAGE_COST assumes {PAGE_COST})"
    )
    print(
        f"target auto >= {AUTO_TARGET:g}x naive: {auto_ratio:.1f}x "
        f"({'ok' if auto_met else 'MISSED'})"
    )
    print(
        f"target scan of {scan['devices_read']} devices in <= {SCAN_TARGET} requests: "
        f"{scan['requests']} requests for the lookup alone, the documented paging rule "
        f"needs {documented_rule} ({'ok' if scan_met else 'MISSED'})"
    )
    figures: dict[str, Any] = {
        "rows": args.rows,
        "platform_devices": platform_devices,
        "latency_ms": args.latency_ms,
        "validation_seconds": round(validation_seconds, 3),
        "naive": {"requests": naive_requests, "seconds": round(naive_seconds, 3)},
        **runs,
        "page_cost_in_lookups": round(page_cost, 1),
        "auto_ratio": round(auto_ratio, 2),
        "auto_target_met": auto_met,
        "scan_target_met": scan_met,
    }
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
