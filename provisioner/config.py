"""The settings file: ``provisioner.toml`` in the working folder, or ``--config FILE``.

It holds what stays the same from run to run at one site or desk, so that the
installer's commands stay short. The command line and the environment still
win over it. The token never goes in it: a file is copied, mailed and
committed far more easily than an environment variable.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.errors import ConfigError as ConfigError
from provisioner.toml_files import read_toml

FILE_NAME = "provisioner.toml"

#: Every key the file may set, with what it means (for messages and the README).
KEYS = {
    "url": "the platform's base URL (plan, apply)",
    "device-link": "a device's page on the platform, with {id} for its id: reports link to it",
    "template": "the site template, a name or a .toml file, for a sheet that names none by "
    "itself (validate, plan, apply, verify, export)",
    "concurrency": "the most requests in flight at once (apply)",
    "max-rps": "at most this many requests per second (apply)",
    "journal-folder": "where apply keeps <sheet>.journal.jsonl (default: beside the sheet)",
    "reports": 'report formats written beside the sheet, e.g. ["html", "json"]',
}
REPORT_FORMATS = ("json", "html", "xlsx", "csv")


@dataclass(frozen=True)
class Config:
    """The settings a file gives; None (or empty) where it gives none.

    Relative paths in the file are relative to the file's own folder, so a
    site folder can be used from anywhere.
    """

    path: Path
    url: str | None = None
    device_link: str | None = None
    template: str | None = None
    concurrency: int | None = None
    max_rps: float | None = None
    journal_folder: Path | None = None
    reports: tuple[str, ...] = ()


def find_config(given: Path | None, folder: Path) -> Path | None:
    """The file given, else ``provisioner.toml`` in ``folder`` if there is one."""
    if given is not None:
        return given
    candidate = folder / FILE_NAME
    return candidate if candidate.is_file() else None


def load_config(path: Path) -> Config:
    data = read_toml(path, str(path), ConfigError)
    for key in data:
        if key == "token":
            raise ConfigError(
                f"{path}: the token cannot be kept in a file; "
                "set PROVISIONER_TOKEN or use --token-file FILE"
            )
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(KEYS)}"
            raise ConfigError(f"unknown key {key!r} in {path}: {hint}")

    def text(key: str) -> str | None:
        value: str | None = _typed(data, key, str, "a text", path)
        return value

    folder = text("journal-folder")
    reports = _typed(data, "reports", list, "a list", path) or []
    for name in reports:
        if name not in REPORT_FORMATS:
            raise ConfigError(
                f"{path}: reports may hold {', '.join(map(repr, REPORT_FORMATS))}, not {name!r}"
            )
    concurrency = _typed(data, "concurrency", int, "a whole number", path)
    max_rps = _typed(data, "max-rps", (int, float), "a number", path)
    for key, number in (("concurrency", concurrency), ("max-rps", max_rps)):
        if number is not None and number <= 0:
            raise ConfigError(f"{path}: {key} must be above 0, not {number}")
    return Config(
        path=path,
        url=text("url"),
        device_link=text("device-link"),
        template=text("template"),
        concurrency=concurrency,
        max_rps=None if max_rps is None else float(max_rps),
        journal_folder=None if folder is None else path.parent / folder,
        reports=tuple(dict.fromkeys(reports)),
    )


def _typed(data: dict[str, Any], key: str, types: Any, what: str, path: Path) -> Any:
    value = data.get(key)
    # TOML's true/false are ints to Python; they are never a count or a rate here.
    if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
        raise ConfigError(f"{path}: {key} must be {what}, not {value!r}")
    return value
