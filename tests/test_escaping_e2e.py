"""Control characters from the platform or a sheet are shown as escapes, never obeyed.

A platform (or a proxy in front of it) that answers with terminal escape sequences in
its error, and a device whose name and serial hold them, go through the real command
line against the sandbox: neither the terminal (a pseudo-terminal, and captured
output) nor the CSV, HTML and xlsx reports get a raw ESC, BEL, CR, NUL, DEL, C1
control or bidi override; each is shown as its escape (``\\x1b``), while ä stays ä.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from test_apply_e2e import RUN_TIMEOUT, Factory, command, device_sheet, environment
from test_apply_terminal import finish, spawn

from provisioner.sandbox import Sandbox
from provisioner.text import visible

# A proxy's 401 page that would set the window title, ring, clear the screen, paint
# red, hide what came before, and turn the rest around.
HOSTILE = "token refused \x1b]0;pwned\x07\x1b[2J\x1b[31mRED\x00\x7f\x9b6n\u202eevil ä"
SHOWN = r"token refused \x1b]0;pwned\x07\x1b[2J\x1b[31mRED\x00\x7f\x9b6n\u202eevil ä"
# What no output may hold raw (a report's own tabs and line breaks aside).
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200b\ufeff]")
# The injected sequences, as the terminal would obey them (our own live line uses ESC too).
OBEYED = ("\x1b]0;", "\x07", "\x1b[2J", "\x1b[31mRED", "\x9b", "\u202e", "\x00")
REPORTS = ("r.csv", "r.html", "r.xlsx")


def run(sb: Sandbox, folder: Path, *words: str, role: str = "org-admin") -> tuple[int, str]:
    """The CLI with captured output: its exit code and all it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "provisioner", *words, "--url", sb.url],
        env=environment(sb.tokens[role]),
        cwd=folder,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    return done.returncode, done.stdout + done.stderr


def report_flags(folder: Path, stem: str = "r") -> list[str]:
    return [word for name in REPORTS for word in ("--report", str(folder / f"{stem}{name[1:]}"))]


def report_texts(folder: Path, stem: str = "r") -> dict[str, str]:
    """Every text of each report as its reader sees it: the CSV's cells, the HTML's
    source, each xlsx cell and comment (line breaks of the format itself aside)."""
    texts: dict[str, str] = {}
    with (folder / f"{stem}.csv").open(encoding="utf-8-sig", newline="") as file:
        delimiter = ";" if ";" in file.readline() else ","  # cut as the sheet is
        file.seek(0)
        rows = csv.reader(file, delimiter=delimiter)
        texts["csv"] = "\n".join("\t".join(row) for row in rows)
    texts["html"] = (folder / f"{stem}.html").read_text(encoding="utf-8")
    workbook = openpyxl.load_workbook(folder / f"{stem}.xlsx")
    parts: list[str] = []
    for tab in workbook.worksheets:
        parts.append(tab.title)
        for line in tab.iter_rows():
            for cell in line:
                if isinstance(cell.value, str):
                    parts.append(cell.value)
                if cell.comment is not None:
                    parts.append(cell.comment.text)
    texts["xlsx"] = "\n".join(parts)
    return texts


def assert_shown_not_obeyed(texts: dict[str, str], *shown: str) -> None:
    for where, text in texts.items():
        raw = RAW.search(text)
        assert raw is None, f"{where}: a raw {raw.group()!r} in ...{text[raw.start() - 60 :]!r}"
        for escaped in shown:
            assert escaped in text, f"{where} does not show {escaped!r}"


# --- the one escaping point --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "keep", "expected"),
    [
        ("a\x1b[2Jb\x07", "", r"a\x1b[2Jb\x07"),
        ("Zähler\tKeller\nHaus", "", r"Zähler\tKeller\nHaus"),  # one console line stays one
        ("Zähler\tKeller\r\nHaus\nB", "\t\n", "Zähler\tKeller\r\nHaus\nB"),  # a report's cell
        ("over\rwrite\n", "\n", "over\\rwrite\n"),  # a CR alone moves back over the line
        ("\x00\x7f\x85\x9b\ud800", "\t\n", r"\x00\x7f\x85\x9b\ud800"),
        ("SN\u202e1001\u2066\u200b\ufeff", "", r"SN\u202e1001\u2066\u200b\ufeff"),
        ("é ß 中文 😀 \xa0€", "", "é ß 中文 😀 \xa0€"),  # letters, symbols and spaces stay
    ],
)
def test_visible_shows_controls_and_keeps_what_is_legitimately_there(
    text: str, keep: str, expected: str
) -> None:
    assert visible(text, keep=keep) == expected
    assert visible(expected, keep=keep) == expected  # shown once, shown the same again


# --- a 401 whose body holds terminal escapes ---------------------------------------------------


def test_apply_on_a_terminal_shows_a_hostile_401_as_escapes(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory()
    sheet, _ = device_sheet(tmp_path, 3)
    sb.faults.odd("POST", "/api/devices", "error-401", message=HOSTILE)
    words = command(sheet, sb, *report_flags(tmp_path))[3:]  # past "python -m provisioner"
    pid, fd = spawn(words, environment(sb.tokens["device-admin"]), tmp_path)
    code, screen = finish(pid, fd)
    assert code == 3, screen
    assert sb.store.count_devices() == 0
    for sequence in OBEYED:
        assert sequence not in screen, (sequence, screen)
    # The stop is said once, by the last "stopped:" line (the rows say "not sent").
    stopped = [line for line in screen.splitlines() if "stopped:" in line]
    assert len(stopped) == 1 and SHOWN in stopped[0], screen
    assert_shown_not_obeyed(report_texts(tmp_path), SHOWN)


def test_plan_and_apply_with_a_hostile_401_print_no_control_character(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet, _ = device_sheet(tmp_path, 2)
    rule = sandbox.faults.odd("GET", "/api/devices", "error-401", message=HOSTILE)
    code, printed = run(sandbox, tmp_path, "plan", str(sheet), role="device-admin")
    assert code == 3 and rule.hits, printed
    assert RAW.search(printed) is None and SHOWN in printed, printed
    assert "Error: the platform at" in printed and "Traceback" not in printed

    sandbox.faults.clear_odd()
    sandbox.faults.odd("POST", "/api/devices", "error-401", message=HOSTILE)
    done = subprocess.run(
        command(sheet, sandbox, *report_flags(tmp_path)),
        env=environment(sandbox.tokens["device-admin"]),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 3, done.stderr
    assert RAW.search(done.stdout + done.stderr) is None, done.stdout + done.stderr
    assert SHOWN in done.stderr.split("stopped:")[-1]


# --- a device whose name and serial hold them: export, plan, verify ----------------------------


def test_a_device_with_control_characters_is_shown_escaped_from_export_to_verify(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    name = "Zähler\x1b]0;pwned\x07\x1b[2J"  # C0: no sheet can hold it
    serial = "SN-\u202e1\x9b"  # a bidi override and a C1 control: a workbook holds them
    devices: list[dict[str, Any]] = [
        {"addr": "70B3D5E700000001", "serial": serial, "name": name, "tags": ["Site-X"]},
        {"addr": "70B3D5E700000002", "serial": "SN-2", "name": "Zähler 2", "tags": ["Site-X"]},
    ]
    sandbox.store.insert_devices(devices)

    code, printed = run(sandbox, tmp_path, "export", "--tag", "Site-X", "--out", "site.xlsx")
    assert code == 0, printed
    assert RAW.search(printed) is None, printed
    assert "1 value held control characters that a sheet cannot hold" in printed
    # The export holds values, not a view of them: what it can hold reads back as it was.
    exported = openpyxl.load_workbook(tmp_path / "site.xlsx")["Devices"]
    values = [str(cell.value) for line in exported.iter_rows() for cell in line if cell.value]
    assert serial in values and "Zähler]0;pwned[2J" in values

    # The platform's name (with its ESC and BEL) differs from the sheet's: the diff shows both.
    code, printed = run(sandbox, tmp_path, "plan", "site.xlsx", *report_flags(tmp_path, "plan"))
    assert code == 0, printed
    assert RAW.search(printed) is None, printed
    assert r"'Zähler\x1b]0;pwned\x07\x1b[2J'" in printed, printed
    plan = report_texts(tmp_path, "plan")
    assert_shown_not_obeyed(plan, r"SN-\u202e1\x9b")
    assert r"Zähler\x1b]0;pwned\x07\x1b[2J" in plan["html"]  # the diff's platform side

    code, printed = run(sandbox, tmp_path, "verify", "site.xlsx", *report_flags(tmp_path))
    assert code == 1, printed  # both silent
    assert RAW.search(printed) is None and r"SN-\u202e1\x9b" in printed, printed
    assert_shown_not_obeyed(report_texts(tmp_path), r"SN-\u202e1\x9b")
