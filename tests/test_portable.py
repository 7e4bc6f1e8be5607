"""The journal as Windows takes it: no fcntl, no O_NOFOLLOW, no pread.

Windows cannot be run here; what can be is the code path it takes. The journal's
Windows way is switched on by ``PROVISIONER_TEST_PORTABLE_JOURNAL=1`` (a subprocess)
or ``journal.PORTABLE`` (in this process), and the calls Windows lacks are taken
out of ``os`` while it runs, so that one left on that path fails here too.
"""

from __future__ import annotations

import errno
import os
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_journal
from test_apply_e2e import (
    RUN_TIMEOUT,
    assert_exactly_once,
    command,
    device_sheet,
    environment,
    journal_of,
)

import provisioner
from provisioner import journal
from provisioner.sandbox import MAX_PAGE_SIZE, Sandbox

# Modules Windows has not: no module of provisioner may need one to be imported.
POSIX_ONLY = ("fcntl", "termios", "tty", "pty", "pwd", "grp", "resource", "syslog")


def test_every_module_imports_without_the_posix_only_modules() -> None:
    names = [m.name for m in pkgutil.walk_packages(provisioner.__path__, "provisioner.")]
    assert "provisioner.journal" in names and "provisioner.cli" in names
    script = (
        "import importlib, sys\n"
        f"for name in {POSIX_ONLY!r}:\n"
        "    sys.modules[name] = None  # import fails, as on Windows\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(len(sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(autouse=True)
def as_windows(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The journal's Windows path, with what Windows lacks gone from ``os``."""
    monkeypatch.setattr(journal, "PORTABLE", True)
    for name in ("O_NOFOLLOW", "pread"):
        monkeypatch.delattr(os, name, raising=False)
    yield


# The journal's own tests, once more through the Windows path (the fixture above).
for _name in dir(test_journal):
    if _name.startswith("test_"):
        globals()[_name] = getattr(test_journal, _name)


def test_a_link_is_found_after_the_open_and_nothing_is_written_through_it(
    tmp_path: Path,
) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    (tmp_path / "j.jsonl.lock").symlink_to(target)
    with pytest.raises(journal.JournalError, match="symbolic link"):
        journal.JournalLock(tmp_path / "j.jsonl").acquire()  # the lock file is truncated
    assert target.read_text() == "precious\n"


def test_a_torn_last_line_is_ended_without_pread(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"run": "a", "event": "start"}\n{"run": "a", "ev')
    journal.Journal(path, sheet="s", platform="u", fingerprint="f").close()
    lines = path.read_bytes().split(b"\n")
    assert lines[1] == b'{"run": "a", "ev' and lines[2].startswith(b'{"run": ')
    assert journal.read_journal(path).torn_lines == 1


def test_a_file_system_without_locks_is_refused_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import portalocker

    def no_locks(fd: int, flags: int) -> None:
        cause = OSError(errno.ENOLCK, "No locks available")
        raise portalocker.LockException(cause, str(cause)) from cause

    real_lock = portalocker.lock
    monkeypatch.setattr(portalocker, "lock", no_locks)
    with pytest.raises(journal.JournalError, match=r"\(No locks available\): .* --journal"):
        journal.JournalLock(tmp_path / "j.jsonl").acquire()
    monkeypatch.setattr(portalocker, "lock", real_lock)
    with journal.JournalLock(tmp_path / "j.jsonl"):  # nothing was left held
        pass


# A process that holds the journal's lock through the Windows path until told to let go.
HOLD = """
import sys
from pathlib import Path
from provisioner.journal import PORTABLE, JournalLock
assert PORTABLE
with JournalLock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_second_apply_on_a_journal_in_use_is_refused_exit_2(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    sheet, addrs = device_sheet(tmp_path, 3)
    env = {**environment(sandbox.tokens["org-admin"]), "PROVISIONER_TEST_PORTABLE_JOURNAL": "1"}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(journal_of(sheet))],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        refused = subprocess.run(
            command(sheet, sandbox), env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
        )
    finally:
        holder.communicate("", timeout=RUN_TIMEOUT)  # stdin closed: it lets go and ends
    assert refused.returncode == 2, refused.stderr
    assert "another apply is using the journal" in refused.stderr
    assert f"process {holder.pid}" in refused.stderr and "Traceback" not in refused.stderr
    assert sandbox.store.list_devices(limit=MAX_PAGE_SIZE) == []  # refused before any request
    # Let go: the next apply takes the lock, and leaves no lock file behind.
    done = subprocess.run(
        command(sheet, sandbox), env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    assert_exactly_once(sandbox, addrs)
    assert not journal_of(sheet).with_name(journal_of(sheet).name + ".lock").exists()
