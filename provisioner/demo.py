"""`provisioner demo`: the whole story on a local sandbox, with short explanations.

The steps run the real command line in child processes, exactly as an
installer would type them, against a sandbox served from this process.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from provisioner.resources import data_folder
from provisioner.sandbox import Sandbox, SandboxConfig

SITE = "site-hh-04.xlsx"
MISTAKES = "site-hh-04-mistakes.xlsx"
TEMPLATE = "lorawan-meter"
# How many devices the first apply gets done before the simulated crash.
CRASH_AFTER = 20
# How many devices stay silent in the demo's verify (the first ones created).
SILENT = 3


def fresh_folder(wanted: Path) -> Path:
    """``wanted``, or ``wanted-2``, ``wanted-3``... if it exists and is not empty."""
    folder, number = wanted, 2
    while folder.exists() and any(folder.iterdir()):
        folder = wanted.with_name(f"{wanted.name}-{number}")
        number += 1
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Demo:
    def __init__(self, folder: Path, say: Callable[[str], None]) -> None:
        self.folder = folder
        self.say = say
        self.env: dict[str, str] = {}

    def command(self, *args: str) -> list[str]:
        self.say(f"\n$ provisioner {' '.join(shlex.quote(a) for a in args)}")
        return [sys.executable, "-m", "provisioner", *args]

    def run(self, *args: str) -> int:
        done = subprocess.run(self.command(*args), cwd=self.folder, env=self.env, check=False)
        self.say(f"(exit {done.returncode})")
        return done.returncode

    def crash_part_way(self, *args: str) -> int:
        """Run apply and kill it with SIGKILL once some devices are done."""
        journal = self.folder / f"{Path(SITE).stem}.journal.jsonl"
        process = subprocess.Popen(
            self.command(*args),
            cwd=self.folder,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            if (
                journal.exists()
                and journal.read_text(encoding="utf-8").count('"done"') >= CRASH_AFTER
            ):
                process.kill()
                break
            time.sleep(0.02)
        process.wait()
        done = journal.read_text(encoding="utf-8").count('"done"') if journal.exists() else 0
        self.say(f"(simulated crash: the process was killed after {done} rows were done)")
        return done


def run_demo(folder: Path, say: Callable[[str], None]) -> tuple[bool, list[Path]]:
    """Run the story in ``folder``: whether it ended as it should, and the files it left."""
    samples = data_folder("sample_sheets")
    for name in (SITE, MISTAKES):
        shutil.copyfile(samples / name, folder / name)
    faults = SandboxConfig(
        port=0, latency_ms=25, fail_rate=0.05, drop_after_commit_rate=0.15, fault_seed=4
    )
    with Sandbox(faults) as sandbox:
        demo = Demo(folder, say)
        # The user's own settings must not steer the demo's runs.
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")}
        demo.env = {
            **environment,
            "PROVISIONER_URL": sandbox.url,
            "PROVISIONER_TOKEN": sandbox.tokens["org-admin"],
        }
        say(
            f"A platform sandbox is running at {sandbox.url} with faults switched on: 5% of "
            "requests fail with 500 and 15% of creates are stored but never answered.\n"
            f"The demo works in {folder}."
        )

        say(
            "\n1. validate: every problem in a sheet at once, cell by cell, before any network "
            "call. This copy of the site has a mistake in almost every row:"
        )
        demo.run("validate", MISTAKES, "--template", TEMPLATE, "--show", "3")

        say("\n2. The real site sheet is clean:")
        demo.run("validate", SITE, "--template", TEMPLATE)

        say("\n3. plan: what apply would do on the platform. Nothing is written.")
        demo.run(
            "plan", SITE, "--template", TEMPLATE, "--out", "plan.json", "--report", "plan.html"
        )

        say("\n4. apply, with the faults on, and a crash part-way through:")
        demo.crash_part_way("apply", SITE, "--template", TEMPLATE, "--yes")

        say(
            "\n5. The same command again: it looks up what the crashed run may have created, "
            "skips it, and finishes the rest, each device exactly once."
        )
        resumed = demo.run("apply", SITE, "--template", TEMPLATE, "--yes")

        say("\n6. And once more: the site is complete, so there is nothing to do.")
        again = demo.run("apply", SITE, "--template", TEMPLATE, "--yes")

        devices = sandbox.store.count_devices()
        addrs = {d["addr"] for d in sandbox.store.list_devices(limit=10000)}

        say(
            "\n7. verify: the installer mounts the meters and they start sending. Here all but "
            f"{SILENT} send their first data; verify tells which have spoken and which to visit."
        )
        sandbox.faults.fail_rate = 0.0
        for device in sorted(sandbox.store.list_devices(limit=10000), key=lambda d: d["id"])[
            SILENT:
        ]:
            sandbox.store.add_parsed_data(device["id"], {"volume_m3": 0.0, "battery_V": 3.6})
        checked = demo.run("verify", SITE, "--template", TEMPLATE)
    say(
        f"\nThe sandbox now holds {devices} devices with {len(addrs)} distinct addresses: "
        "the sheet's 60, each once."
    )
    ok = resumed == 0 and again == 0 and devices == len(addrs) == 60 and checked == 1
    return ok, sorted(p for p in folder.iterdir() if p.is_file())
