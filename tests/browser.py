"""A report page as a person sees it: rendered by headless Chromium from the system packages.

``shown(page)`` has Chromium load the file (its script runs, its content security
policy applies) and gives back the DOM it ended with, read into the rows table's
headings and cells. Without Chromium the tests that need it are skipped with the
reason, unless PROVISIONER_REQUIRE_BROWSER is set (CI sets it): then they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

# Flags for a closed network: no background connections, no first-run, no sandbox as root.
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("PROVISIONER_REQUIRE_BROWSER"):
        pytest.fail("Chromium is not installed (apt-get install chromium)")
    pytest.skip("Chromium is not installed (apt-get install chromium)")


@dataclass
class Cell:
    text: str = ""
    titles: list[str] = field(default_factory=list)  # tooltips inside the cell
    links: list[str] = field(default_factory=list)  # hrefs inside the cell


@dataclass
class Page:
    headings: list[str]
    rows: list[dict[str, Cell]]  # heading -> cell, per row of the rows table
    text: str  # the whole page's text


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.rows: list[dict[str, Cell]] = []
        self.text: list[str] = []
        self._in_rows = self._in_head = self._in_code = False
        self._depth = 0  # nested tables inside the rows table (the diff tables)
        self._cell: Cell | None = None
        self._label = ""
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = dict(attrs)
        if tag in ("script", "style"):
            self._in_code = True
        if tag == "table":
            if given.get("id") == "rows":
                self._in_rows = True
            elif self._in_rows:
                self._depth += 1
        if not self._in_rows:
            return
        if tag == "thead":
            self._in_head = True
        elif tag == "th" and self._in_head:
            self._heading = []
        elif tag == "tr" and not self._in_head and self._depth == 0:
            self.rows.append({})
        elif tag == "td" and self._depth == 0:
            self._cell = Cell()
            self._label = given.get("data-label") or ""
        if self._cell is not None:
            if given.get("title"):
                self._cell.titles.append(given["title"] or "")
            if tag == "a" and given.get("href"):
                self._cell.links.append(given["href"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._in_code = False
        if not self._in_rows:
            return
        if tag == "table":
            if self._depth:
                self._depth -= 1
            else:
                self._in_rows = False
        elif tag == "thead":
            self._in_head = False
        elif tag == "th" and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None
        elif tag == "td" and self._depth == 0 and self._cell is not None:
            self._cell.text = self._cell.text.strip()
            self.rows[-1][self._label] = self._cell
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in_code:
            return
        self.text.append(data)
        if self._heading is not None:
            self._heading.append(data)
        if self._cell is not None:
            self._cell.text += data


def shown(page: Path) -> Page:
    """The page after Chromium loaded it and its script ran."""
    browser = chromium()
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [browser, *_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    reader = _Reader()
    reader.feed(done.stdout)
    assert reader.headings, f"no rows table in what Chromium shows: {done.stdout[:500]}"
    return Page(reader.headings, reader.rows, " ".join("".join(reader.text).split()))
