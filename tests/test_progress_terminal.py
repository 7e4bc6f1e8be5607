"""The live line on a real terminal (a pseudo-terminal): a spinner while the platform is
read, a bar while rows are sent, ended (a newline, the cursor shown again) on every
way out; colours only where wanted, no escape codes at all without a terminal."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from test_apply_e2e import Factory, device_sheet, environment, journal_of
from test_apply_terminal import finish, read_until

from provisioner.progress import Progress
from provisioner.sandbox import Sandbox

HIDE, SHOW = "\x1b[?25l", "\x1b[?25h"
# SGR sequences that set a colour (30-37, 90-97 and their backgrounds, 38;5 / 38;2 ...).
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")
TOKEN = "device-admin"


def spawn(words: list[str], cwd: Path, **env: str) -> tuple[int, int]:
    """The real command line on a terminal of 100 by 30, as an installer's window."""
    base = {
        k: v
        for k, v in environment("unused").items()
        if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TERM")
    }
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execve(
            sys.executable,
            [sys.executable, "-m", "provisioner", *words],
            {**base, "TERM": "xterm-256color", "PYTHONFAULTHANDLER": "1", **env},
        )
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    return pid, fd


def ended(screen: str) -> bool:
    """The live line was taken down: the cursor is shown after it was last hidden, and
    the line was finished with a newline first (rich ends its line, then shows it)."""
    hidden = screen.rfind(HIDE)
    return hidden < 0 or "\n" + SHOW in screen[hidden:].replace("\r", "")


def apply_words(sb: Sandbox, sheet: Path, *extra: str) -> list[str]:
    return ["apply", str(sheet), "--url", sb.url, "--journal", str(journal_of(sheet)), *extra]


def test_a_spinner_says_what_is_read_while_the_platform_is_looked_up(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(latency_ms=20)
    sheet, _ = device_sheet(tmp_path, 40)
    pid, fd = spawn(
        ["plan", str(sheet), "--url", sb.url], tmp_path, PROVISIONER_TOKEN=sb.tokens[TOKEN]
    )
    code, screen = finish(pid, fd)
    assert code == 0, screen
    assert re.search(r"reading the platform: \d+ of \d+ lookups", screen), screen
    assert HIDE in screen and ended(screen), repr(screen[-400:])
    # The spinner is cleared, not left above the plan.
    assert "create 40" in screen and "Traceback" not in screen


def test_the_bar_counts_the_rows_and_ends_with_a_newline(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(latency_ms=5)
    sheet, _ = device_sheet(tmp_path, 30)
    pid, fd = spawn(apply_words(sb, sheet, "--yes"), tmp_path, PROVISIONER_TOKEN=sb.tokens[TOKEN])
    code, screen = finish(pid, fd)
    assert code == 0, screen
    # The last frame of the bar stays, with the rate and the ETA, then its newline.
    last = screen[screen.rfind("30/30 rows") :]
    # The pace beside it: how many requests the run had in flight.
    assert re.match(
        r"30/30 rows · [\d.]+/s · ETA 0:00 · \d+ at once\s*\r\n" + re.escape(SHOW), last
    ), repr(last)
    assert ended(screen) and "created 30" in screen
    assert COLOUR.search(screen), "colours on a terminal"
    assert sb.store.count_devices() == 30


class Terminal(io.StringIO):
    """What the console writes to, as if it were a terminal."""

    def isatty(self) -> bool:
        return True


def test_failures_are_counted_on_the_bar_and_messages_go_above_it() -> None:
    screen = Terminal()
    progress = Progress(color=False, stream=screen)
    progress.reading("reading the platform: 3 of 12 lookups")
    progress(4, 10, 0)
    progress.say("the platform is unreachable; trying again")
    progress(5, 10, 2)
    progress.close()
    progress(6, 10, 2)  # a worker finishing late draws nothing after close()
    text = screen.getvalue()
    assert "5/10 rows" in text and "· 2 failed" in text and "6/10" not in text
    # The message is a line of its own; the bar's last frame is finished by a newline.
    assert "\r\x1b[2Kthe platform is unreachable; trying again\n" in text
    assert ended(text)


def test_ctrl_c_while_sending_ends_the_bar_before_the_resume_command(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(latency_ms=40)
    sheet, _ = device_sheet(tmp_path, 300)
    words = apply_words(sb, sheet, "--yes", "--concurrency", "2")
    pid, fd = spawn(words, tmp_path, PROVISIONER_TOKEN=sb.tokens[TOKEN])
    # The bar shows 0/300 before the first answer; an ETA only once rows are done.
    seen = read_until(fd, b"/300 rows")
    seen += read_until(fd, b"ETA 0:")
    os.kill(pid, signal.SIGINT)
    code, rest = finish(pid, fd)
    screen = seen.decode(errors="replace") + rest
    assert code == 130, screen
    assert ended(screen), repr(screen[-600:])
    # The message is on a line of its own, after the bar's last frame.
    assert re.search(r"\n(\x1b\[\?25h)?interrupted cleanly; resume with:", screen), screen[-600:]
    assert "Traceback" not in screen
    assert 0 < sb.store.count_devices() < 300


def test_a_second_ctrl_c_stops_at_once_with_the_bar_ended(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    # Slow answers: the first Ctrl-C waits for the requests in flight, the second one
    # does not wait (os._exit), and the bar is still taken down first.
    sb = sandbox_factory(latency_ms=1500)
    sheet, _ = device_sheet(tmp_path, 6)
    words = apply_words(sb, sheet, "--yes", "--concurrency", "2", "--lookup", "scan")
    pid, fd = spawn(words, tmp_path, PROVISIONER_TOKEN=sb.tokens[TOKEN])
    seen = read_until(fd, b"/6 rows")
    # The bar moves as answers come: the next two requests are on their way (1.5 s each).
    time.sleep(0.5)
    os.kill(pid, signal.SIGINT)
    seen += read_until(fd, b"Ctrl-C again to stop at once")
    os.kill(pid, signal.SIGINT)
    code, rest = finish(pid, fd)
    screen = seen.decode(errors="replace") + rest
    assert code == 130, screen
    assert ended(screen), repr(screen[-600:])
    assert "stopped at once; the journal is intact. Resume with:" in screen, screen[-600:]
    assert "Traceback" not in screen


def test_ctrl_c_while_the_platform_is_read_ends_the_spinner(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(latency_ms=100)
    sheet, _ = device_sheet(tmp_path, 60)
    pid, fd = spawn(
        ["plan", str(sheet), "--url", sb.url], tmp_path, PROVISIONER_TOKEN=sb.tokens[TOKEN]
    )
    seen = read_until(fd, b"lookups")
    os.kill(pid, signal.SIGINT)
    code, rest = finish(pid, fd)
    screen = seen.decode(errors="replace") + rest
    assert code == 130, screen
    assert ended(screen), repr(screen[-400:])
    assert "interrupted: nothing was written" in screen and "Traceback" not in screen


def test_a_refused_token_ends_the_spinner_and_exits_3(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory()
    sheet, _ = device_sheet(tmp_path, 5)
    pid, fd = spawn(apply_words(sb, sheet), tmp_path, PROVISIONER_TOKEN="not-a-token-at-all")
    code, screen = finish(pid, fd)
    assert code == 3, screen
    assert ended(screen) and "Traceback" not in screen


def test_the_spinner_is_gone_before_the_question(sandbox_factory: Factory, tmp_path: Path) -> None:
    sb = sandbox_factory(latency_ms=20)
    sheet, _ = device_sheet(tmp_path, 5)
    pid, fd = spawn(apply_words(sb, sheet), tmp_path, PROVISIONER_TOKEN=sb.tokens[TOKEN])
    before = read_until(fd, b"Send 5 rows to").decode(errors="replace")
    assert HIDE in before and ended(before), repr(before)
    os.write(fd, b"n\r")
    code, rest = finish(pid, fd)
    assert code == 2, rest
    assert HIDE not in rest  # nothing is drawn over the question or after it


def test_no_color_and_no_color_flag_give_no_colour_codes(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    for number, (flags, env) in enumerate(((["--no-color"], {}), ([], {"NO_COLOR": "1"}))):
        sb = sandbox_factory(latency_ms=5)
        sheet, _ = device_sheet(tmp_path, 20, name=f"site{number}.csv")
        words = [*flags, *apply_words(sb, sheet, "--yes")]
        pid, fd = spawn(words, tmp_path, PROVISIONER_TOKEN=sb.tokens[TOKEN], **env)
        code, screen = finish(pid, fd)
        assert code == 0, screen
        assert "20/20 rows" in screen and ended(screen)
        assert not re.search(r"\x1b\[[0-9;]*m", screen), repr(screen)  # no SGR at all


def test_without_a_terminal_there_are_plain_lines_and_no_escape_codes(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(latency_ms=5)
    sheet, _ = device_sheet(tmp_path, 20)
    env = {k: v for k, v in environment(sb.tokens[TOKEN]).items() if k != "NO_COLOR"}
    done = subprocess.run(
        [sys.executable, "-m", "provisioner", *apply_words(sb, sheet, "--yes")],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout + done.stderr
    assert "20/20 rows" in done.stderr.splitlines()[-1]


def test_the_bar_counts_what_the_command_counts(capsys: pytest.CaptureFixture[str]) -> None:
    # verify and undo count devices, apply counts rows (a plain line without a terminal).
    Progress(unit="devices")(3, 10, 1)
    assert re.match(r"3/10 devices · [\d.]+/s · ETA -:-- · 1 failed$", capsys.readouterr().err)


def test_the_eta_counts_from_the_bar_not_from_the_reading_before_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # undo read 1,500 devices for 4.5 minutes, then deleted at 2.5/s: its ETA read "1977:11"
    # (the rate was taken over the reading too). Without a terminal, on a clock of our own.
    now = [1000.0]
    progress = Progress(unit="devices", clock=lambda: now[0])
    for _ in range(54):
        now[0] += 5.0
        progress.reading("reading the platform: some of 1500 checked")
    now[0] += 5.0
    progress(0, 1500, 0)
    now[0] += 6.0
    progress(15, 1500, 0)  # 2.5/s since the bar began
    now[0] += 6.0
    progress(30, 1500, 0)
    lines = [line for line in capsys.readouterr().err.splitlines() if "/1500 devices" in line]
    assert lines[0] == "0/1500 devices · 0.0/s · ETA -:--"  # no rate yet: no ETA
    assert lines[1:] == ["15/1500 devices · 2.5/s · ETA 9:54", "30/1500 devices · 2.5/s · ETA 9:48"]


def test_without_a_terminal_the_last_line_of_a_stopped_bar_is_its_last_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Plain lines come every few seconds: a run stopped between two of them ended on an
    # older count than the summary below it gave.
    now = [1000.0]
    progress = Progress(clock=lambda: now[0])
    progress(0, 1500, 0)
    now[0] += 1.0
    progress(400, 1500, 0)  # too soon for a line of its own
    progress(523, 1500, 2)
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("0/1500 rows")
    assert lines[-1].startswith("523/1500 rows") and lines[-1].endswith("· 2 failed")
    assert len(lines) == 2
