"""Where the shipped data folders (schemas/, templates/) are.

They sit at the top of the repo and are installed as the packages
``provisioner.schemas`` and ``provisioner.templates``; in a source checkout
that is not installed, they are found beside the package instead.
"""

from __future__ import annotations

import importlib.resources
from importlib.resources.abc import Traversable
from pathlib import Path


def data_folder(name: str) -> Traversable:
    """The shipped folder ``schemas`` or ``templates``."""
    if name not in ("schemas", "templates"):
        raise ValueError(f"unknown data folder {name!r}")
    try:
        return importlib.resources.files(f"provisioner.{name}")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / name
