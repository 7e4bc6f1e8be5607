"""A non-editable install ships schemas/ and templates/ and finds them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_installed_package_finds_its_schemas_and_templates(tmp_path: Path) -> None:
    # Build from a copy so the checkout stays clean (setuptools builds in place).
    source = tmp_path / "source"
    shutil.copytree(
        REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info")
    )
    target = tmp_path / "site"
    # No build isolation and no dependencies: the test needs only what the
    # test virtualenv already has (setuptools), not the network.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(REPO),
        ],
        check=True,
        cwd=tmp_path,
    )
    probe = (
        "import json, provisioner, provisioner.resources as r\n"
        "print(json.dumps({'file': provisioner.__file__,\n"
        "  'schemas': sorted(p.name for p in r.data_folder('schemas').iterdir()),\n"
        "  'templates': sorted(p.name for p in r.data_folder('templates').iterdir()),\n"
        "  'samples': sorted(p.name for p in r.data_folder('sample_sheets').iterdir())}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    ).stdout
    found = json.loads(out)
    assert Path(found["file"]).is_relative_to(target)
    assert "deviceInput.json" in found["schemas"]
    assert "userInput.json" in found["schemas"]
    assert "default.toml" in found["templates"]
    assert "site-hh-04.xlsx" in found["samples"]  # the demo's site
