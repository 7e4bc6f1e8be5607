"""Apply speed: `provisioner apply` against a naive create loop, in one run.

Each measurement gets a fresh sandbox process (`provisioner sandbox`) with
added latency, so every run creates the same N devices on an empty platform:
- naive: one POST after another through one httpx client;
- apply (default settings) and apply --concurrency 32: the real command in a
  child process with --yes, timed end to end (start-up, plan, creates, results
  workbook) and, from its journal, the create phase alone.
Ratios are against the naive loop of the same run. Targets: at least 6x naive
with the default settings, at least 20x at --concurrency 32.

The sandbox's own ceiling (creates/s at concurrency 32 without latency, as in
sandbox_throughput.py) is measured in the same run, so the output says whether
a figure is bound by latency x concurrency or by the sandbox itself.

    python benchmarks/apply_speed.py [--creates 2000] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
from _sandbox import REPO, running_sandbox
from sandbox_throughput import create_rate

TARGETS = {"default": 6.0, "concurrency 32": 20.0}


def write_sheet(path: Path, count: int) -> None:
    """A CSV for the default template: serial, addr, name."""
    lines = ["serial,addr,name"]
    lines += [f"SN{i:07d},{0x0004A30B00000000 + i:016X},Zähler {i}" for i in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


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


def apply_rates(url: str, token: str, count: int, *options: str) -> tuple[float, float]:
    """(end-to-end creates/s, create-phase creates/s) of one `provisioner apply` run."""
    with tempfile.TemporaryDirectory() as folder:
        sheet = Path(folder) / "site.csv"
        journal = Path(folder) / "site.journal.jsonl"
        write_sheet(sheet, count)
        command = [sys.executable, "-m", "provisioner", "apply", str(sheet), "--url", url]
        command += ["--yes", "--journal", str(journal), *options]
        env = {**os.environ, "PYTHONPATH": str(REPO), "PROVISIONER_TOKEN": token}
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"apply exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        records = [json.loads(line) for line in journal.read_text().splitlines() if line]
        creates = [r for r in records if r["event"] in ("intent", "done", "failed", "unknown")]
        created = sum(1 for r in records if r["event"] == "done" and r["status"] == "created")
        if created != count:
            raise RuntimeError(f"apply created {created} devices, not {count}")
        first = datetime.fromisoformat(creates[0]["at"])
        last = datetime.fromisoformat(creates[-1]["at"])
        return count / seconds, count / max((last - first).total_seconds(), 1e-3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=2000, help="devices created per run")
    parser.add_argument("--latency-ms", type=int, default=50, help="sandbox latency per request")
    args = parser.parse_args()
    latency = ("--latency-ms", str(args.latency_ms))

    with running_sandbox() as (url, tokens):
        ceiling = create_rate(url, tokens["device-admin"], 32, args.creates, prefix="C0")
    with running_sandbox(*latency) as (url, tokens):
        naive = naive_rate(url, tokens["device-admin"], args.creates)
    runs = {}
    for name, options in (("default", ()), ("concurrency 32", ("--concurrency", "32"))):
        with running_sandbox(*latency) as (url, tokens):
            runs[name] = apply_rates(url, tokens["device-admin"], args.creates, *options)

    print(
        f"apply speed: {args.creates} creates per run, sandbox latency {args.latency_ms} ms, "
        f"a fresh sandbox process per run"
    )
    print(f"sandbox ceiling (concurrency 32, no latency): {ceiling:.0f} creates/s")
    print(
        f"{'run':<20} {'creates/s':>10} {'ratio':>7} {'target':>7} {'create phase/s':>15}"
        f" {'ratio':>7}  bound"
    )
    print(
        f"{'naive loop':<20} {naive:>10.1f} {1:>7.2f} {'':>7} {'':>15} {'':>7}  latency, 1 at a time"
    )
    figures: dict[str, object] = {
        "creates": args.creates,
        "latency_ms": args.latency_ms,
        "sandbox_ceiling_per_s": round(ceiling, 1),
        "naive_per_s": round(naive, 1),
    }
    for name, (whole, phase) in runs.items():
        concurrency = 32 if name == "concurrency 32" else 8
        latency_bound = concurrency * 1000 / args.latency_ms
        bound = (
            f"latency x concurrency ({latency_bound:.0f}/s)"
            if latency_bound < ceiling
            else f"sandbox ceiling ({ceiling:.0f}/s)"
        )
        target = TARGETS[name]
        verdict = "ok" if whole / naive >= target else "MISSED"
        print(
            f"{'apply ' + name:<20} {whole:>10.1f} {whole / naive:>7.2f} {f'>={target:g}x':>7}"
            f" {phase:>15.1f} {phase / naive:>7.2f}  {bound}; target {verdict}"
        )
        key = name.replace(" ", "_")
        figures[f"apply_{key}_per_s"] = round(whole, 1)
        figures[f"apply_{key}_ratio"] = round(whole / naive, 2)
        figures[f"apply_{key}_create_phase_per_s"] = round(phase, 1)
        figures[f"apply_{key}_target_met"] = whole / naive >= target
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
