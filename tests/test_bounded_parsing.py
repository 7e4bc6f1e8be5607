"""Every parse of what a user hands the tool is bounded (issue 21): the real CLI, crafted files.

A site template or settings file nested 100,000 deep, a token file that is not one line
of UTF-8, a rule pattern that backtracks for minutes: each ends in a message and its exit
code, never a traceback, a hang or an exhausted machine. No test here has a wall-clock
limit: a regression hangs past pytest-timeout, and each run is capped in memory
(``resource.setrlimit``, where the system has it) so that it fails instead of swapping.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEST_TOKENS
from test_apply_e2e import Factory, device_sheet, environment, journal_of

from provisioner.sandbox import MAX_PAGE_SIZE

TOKEN = TEST_TOKENS["org-admin"]
MEMORY = 2 * 1024**3  # bytes of address space a run may have


def limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def run(*words: str, folder: Path, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    """``provisioner WORDS`` in ``folder``, under the memory cap on Linux (macOS ignores
    RLIMIT_AS; Windows has no ``resource``)."""
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *words],
        env=environment(token),
        cwd=folder,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        preexec_fn=limit_memory if sys.platform == "linux" else None,
    )


def refused(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """The run ended in exit 2 with a message holding ``words``, and no traceback."""
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output, output
    for word in words:
        assert word in output, output
    return output


def site_csv(folder: Path, names: list[str]) -> Path:
    lines = ["serial,addr,name"] + [
        f"SN{i:04d},70B3D5E7{i:08X},{name}" for i, name in enumerate(names)
    ]
    sheet = folder / "site.csv"
    sheet.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sheet


MINIMAL = '[devices.columns]\nserial = ["serial"]\naddr = ["addr"]\nname = ["name"]\n'


# --- TOML: site templates and the settings file -------------------------------------------


@pytest.mark.parametrize(
    "crafted",
    [
        "a = " + "[" * 100_000 + "]" * 100_000,  # tomllib recurses: RecursionError
        "a = " + "{b = " * 100_000 + "1" + "}" * 100_000,
        "a" + ".a" * 100_000 + " = 1",  # tomllib: time and memory grow with parts squared
        "[" + "a." * 100_000 + "a]\n",
    ],
    ids=["lists", "inline-tables", "dotted-key", "table-header"],
)
def test_a_template_nested_100000_deep_is_refused(tmp_path: Path, crafted: str) -> None:
    sheet = site_csv(tmp_path, ["Zähler 1"])
    (tmp_path / "deep.toml").write_text(MINIMAL + crafted + "\n", encoding="utf-8")
    done = run("validate", str(sheet), "--template", "deep.toml", folder=tmp_path)
    refused(done, "deep.toml", "more than 32 levels deep", "line 5")


def test_a_template_nested_as_deep_as_allowed_still_loads(tmp_path: Path) -> None:
    """The bound counts what tomllib builds: brackets and dots in strings and comments do
    not count, and a default payload nested 28 deep (32 with its table) is taken."""
    sheet = site_csv(tmp_path, ["Zähler 1"])
    payload = "{a = " * 28 + "1" + "}" * 28
    text = (
        MINIMAL
        + "# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w\n"
        + 'description = "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ a.b.c.d.e.f.g.h.i"\n'
        + "[downlinks.defaults]\n"
        + f"payload = {payload}\n"
    )
    (tmp_path / "deep.toml").write_text(text, encoding="utf-8")
    done = run("validate", str(sheet), "--template", "deep.toml", folder=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_template_larger_than_1_mib_is_refused_unread(tmp_path: Path) -> None:
    sheet = site_csv(tmp_path, ["Zähler 1"])
    (tmp_path / "huge.toml").write_text(MINIMAL + "# " + "x" * (1024 * 1024), encoding="utf-8")
    done = run("validate", str(sheet), "--template", "huge.toml", folder=tmp_path)
    refused(done, "huge.toml", "larger than 1024 KB")


def test_a_settings_file_nested_deep_or_not_utf8_is_refused(tmp_path: Path) -> None:
    sheet = site_csv(tmp_path, ["Zähler 1"])
    (tmp_path / "provisioner.toml").write_text("x = " + "[" * 100_000, encoding="utf-8")
    refused(
        run("validate", str(sheet), folder=tmp_path),
        "provisioner.toml",
        "more than 32 levels deep (line 1)",
    )
    (tmp_path / "provisioner.toml").write_bytes('template = "default"\n'.encode("utf-16"))
    refused(run("validate", str(sheet), folder=tmp_path), "provisioner.toml is not UTF-8")


# --- rule patterns ------------------------------------------------------------------------


def test_a_pattern_that_backtracks_for_minutes_checks_each_cell_at_once(tmp_path: Path) -> None:
    """(a+)+b on 60 a's: Python's re would try 2**60 ways; RE2 answers at once."""
    rule = '[devices.rules.name]\npattern = "(a+)+b"\nhint = "a\'s, then one b"\n'
    (tmp_path / "slow.toml").write_text(MINIMAL + rule, encoding="utf-8")
    sheet = site_csv(tmp_path, ["a" * 60, "a" * 59 + "b"])
    done = run("validate", str(sheet), "--template", "slow.toml", folder=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output  # one row breaks the rule
    assert "1 valid, 1 invalid" in output, output
    assert "does not have the expected form (a's, then one b)" in output, output
    assert "Traceback" not in output, output


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(S)\\1[0-9]+", "a backreference ('\\1')"),
        (r"(?!SN0)SN[0-9]+", "a lookahead or lookbehind ('(?!')"),
        (r"SN[0-9]++", "an atomic group or a possessive repeat ('++')"),
        (r"SN[0-9]+\\Z", "\\Z is not known here"),
        (r"SN[0-9", "not a valid regular expression: missing ]"),
    ],
)
def test_a_pattern_rule_patterns_cannot_use_is_refused_at_load(
    tmp_path: Path, pattern: str, why: str
) -> None:
    rule = f'[devices.rules.serial]\npattern = "{pattern}"\n'
    (tmp_path / "site.toml").write_text(MINIMAL + rule, encoding="utf-8")
    sheet = site_csv(tmp_path, ["Zähler 1"])
    done = run("validate", str(sheet), "--template", "site.toml", folder=tmp_path)
    written = pattern.replace("\\\\", "\\")  # as the installer reads it, TOML escapes undone
    output = refused(done, f"'pattern' '{written}' in [devices.rules.serial] of site.toml", why)
    assert "re2.cc" not in output  # RE2's own log line stays quiet


# --- the token file -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (TOKEN.encode("utf-16"), "is not UTF-8 text (Windows PowerShell's > writes UTF-16)"),
        (f"{TOKEN}\n{TOKEN}\n".encode(), "holds 2 lines"),
        (f"{TOKEN}\x1b[2J".encode(), "character 21 of the token is a control character (U+001B)"),
        (f"{TOKEN[:4]}\u00a0{TOKEN[4:]}".encode(), "character 5 of the token is a space (U+00A0)"),
        (f"{TOKEN}\n".encode() * 2000, "larger than 16 KB"),
        (b"\n  \n", "is empty"),
    ],
    ids=["utf-16", "two-lines", "escape", "no-break-space", "huge", "empty"],
)
@pytest.mark.parametrize("command", ["apply", "plan"])
def test_a_token_file_that_is_not_one_line_of_text_is_refused(
    sandbox_factory: Factory, tmp_path: Path, command: str, content: bytes, why: str
) -> None:
    sb = sandbox_factory()
    sheet, _ = device_sheet(tmp_path, 3)
    token_file = tmp_path / "token.txt"
    token_file.write_bytes(content)
    words = [command, str(sheet), "--template", "default", "--url", sb.url]
    words += ["--token-file", str(token_file)]
    if command == "apply":
        words += ["--journal", str(journal_of(sheet)), "--yes"]
    output = refused(run(*words, folder=tmp_path, token=""), "token.txt", why)
    assert TOKEN not in output and TOKEN[:8] not in output  # the token is never shown
    assert sb.store.list_devices(limit=MAX_PAGE_SIZE) == []


def test_a_token_file_with_a_bom_and_a_newline_works(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    """What Windows Notepad saves ("UTF-8 with BOM", a line break at the end) is a token."""
    sb = sandbox_factory()
    sheet, addrs = device_sheet(tmp_path, 3)
    token_file = tmp_path / "token.txt"
    token_file.write_bytes(f"\ufeff{TOKEN}\r\n".encode())
    words = ["apply", str(sheet), "--url", sb.url, "--token-file", str(token_file)]
    done = run(*words, "--journal", str(journal_of(sheet)), "--yes", folder=tmp_path, token="")
    assert done.returncode == 0, done.stdout + done.stderr
    held = sorted(str(d["addr"]).upper() for d in sb.store.list_devices(limit=MAX_PAGE_SIZE))
    assert held == sorted(addrs)
