"""apply's question on a real terminal (a pseudo-terminal), as an installer meets it."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

from test_apply_e2e import Factory, device_sheet, environment, journal_of

from provisioner.sandbox import Sandbox

QUESTION = b"Send 5 rows to"


def spawn(words: list[str], env: dict[str, str], cwd: Path) -> tuple[int, int]:
    pid, fd = pty.fork()
    if pid == 0:  # the child: the real command line on the terminal
        os.chdir(cwd)
        os.execve(sys.executable, [sys.executable, "-m", "provisioner", *words], env)
    return pid, fd


def read_until(fd: int, wanted: bytes, seconds: float = 60) -> bytes:
    seen = b""
    deadline = time.monotonic() + seconds
    while wanted not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"{wanted!r} did not appear; the screen shows:\n{seen.decode()}")
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def finish(pid: int, fd: int) -> tuple[int, str]:
    """Everything the terminal shows until the command ends, and its exit code."""
    screen = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the command ended and closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    else:
        # Hung: faulthandler (PYTHONFAULTHANDLER) prints every thread's stack on SIGABRT.
        os.kill(pid, signal.SIGABRT)
        time.sleep(1)
        try:
            screen += os.read(fd, 65536)
        except OSError:
            pass
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")


def start(sb_factory: Factory, tmp_path: Path) -> tuple[Sandbox, int, int]:
    sb = sb_factory()
    sheet, _ = device_sheet(tmp_path, 5)
    words = ["apply", str(sheet), "--url", sb.url, "--journal", str(journal_of(sheet))]
    env = {**environment(sb.tokens["device-admin"]), "PYTHONFAULTHANDLER": "1"}
    pid, fd = spawn(words, env, tmp_path)
    return sb, pid, fd


def test_declining_at_the_question_writes_nothing_and_exits_2(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb, pid, fd = start(sandbox_factory, tmp_path)
    read_until(fd, QUESTION)
    os.write(fd, b"n\r")
    code, screen = finish(pid, fd)
    assert code == 2, screen
    assert "nothing was written" in screen and "Traceback" not in screen
    assert sb.store.count_devices() == 0


def test_ctrl_c_at_the_question_writes_nothing_and_exits_130(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb, pid, fd = start(sandbox_factory, tmp_path)
    read_until(fd, QUESTION)
    # As a person does, a moment after the question shows: a Ctrl-C in the instant
    # between readline printing the prompt and waiting for a key is not seen until
    # the next key (CPython's readline loop), which no person can hit.
    time.sleep(0.3)
    os.write(fd, b"\x03")  # Ctrl-C typed on the terminal: the driver sends SIGINT
    code, screen = finish(pid, fd)
    assert code == 130, screen
    assert "nothing was written" in screen and "Traceback" not in screen
    assert "Aborted!" not in screen
    assert sb.store.count_devices() == 0


def test_yes_at_the_question_creates_the_rows(sandbox_factory: Factory, tmp_path: Path) -> None:
    sb, pid, fd = start(sandbox_factory, tmp_path)
    read_until(fd, QUESTION)
    os.write(fd, b"y\r")
    code, screen = finish(pid, fd)
    assert code == 0, screen
    assert sb.store.count_devices() == 5
