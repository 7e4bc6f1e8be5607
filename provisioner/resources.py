"""Where the shipped data folders (schemas/, templates/) are.

They sit at the top of the repo and are installed inside the package as
``provisioner/_schemas`` and ``provisioner/_templates``; in a source checkout
that is not installed, they are found beside the package instead.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def data_folder(name: str) -> Path:
    """The shipped folder ``schemas`` or ``templates``."""
    if name not in ("schemas", "templates"):
        raise ValueError(f"unknown data folder {name!r}")
    installed = PACKAGE / f"_{name}"
    return installed if installed.is_dir() else PACKAGE.parent / name
