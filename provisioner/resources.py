"""Where the shipped data folders (schemas/, templates/, sample_sheets/) are.

They sit at the top of the repo and are installed inside the package as
``provisioner/_schemas``, ``provisioner/_templates`` and
``provisioner/_sample_sheets``; in a source checkout
that is not installed, they are found beside the package instead.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def data_folder(name: str) -> Path:
    """The shipped folder ``schemas``, ``templates`` or ``sample_sheets``."""
    if name not in ("schemas", "templates", "sample_sheets"):
        raise ValueError(f"unknown data folder {name!r}")
    installed = PACKAGE / f"_{name}"
    return installed if installed.is_dir() else PACKAGE.parent / name
