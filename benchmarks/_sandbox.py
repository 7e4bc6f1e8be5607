"""Start `provisioner sandbox` as a separate process for a benchmark."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Benchmarks run from a checkout: the package is imported from it, installed or not.
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@contextmanager
def running_sandbox(
    *options: str, timeout: float = 120.0, log: Path | None = None
) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield (url, tokens by role) of a sandbox process on a free loopback port.

    With ``log``, the sandbox logs every request (``--verbose``) to that file.
    """
    with tempfile.TemporaryDirectory() as folder:
        ready = Path(folder) / "ready.json"
        command = [sys.executable, "-m", "provisioner", "sandbox", "--port", "0"]
        command += ["--ready-file", str(ready), *(["--verbose"] if log else []), *options]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(log or os.devnull, "wb") as stderr:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
        try:
            deadline = time.monotonic() + timeout
            while not ready.exists():
                if process.poll() is not None:
                    raise RuntimeError(f"the sandbox exited with {process.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not start in time")
                time.sleep(0.05)
            info = json.loads(ready.read_text())
            yield info["url"], info["tokens"]
        finally:
            process.terminate()
            process.wait(timeout=30)


def copy_database(seeded: Path, folder: Path) -> Path:
    """A copy of the sandbox database ``seeded`` (with its WAL) in ``folder``: a fresh platform
    for each run of a benchmark."""
    copy = folder / "sandbox.db"
    for part in seeded.parent.glob(seeded.name + "*"):
        shutil.copyfile(part, copy.with_name(part.name.replace(seeded.name, copy.name)))
    return copy
