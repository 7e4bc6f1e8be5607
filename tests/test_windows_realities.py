"""Windows realities, each with a clear message and never a traceback: a file Excel
holds open, paths with drive letters, backslashes and spaces, Ctrl-Break, a console
without UTF-8, CRLF line ends, and the resume command quoted for cmd.exe or PowerShell.

Windows itself is simulated where Linux cannot be it: Excel's hold is a PermissionError
from ``os.replace`` (what Windows raises), the platform and the shell are parameters.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner

from provisioner import files
from provisioner.cli import (
    _resume_command,
    _stop_cleanly_on_signals,
    _stop_on_sigterm,
    main,
    shell_words,
    user_shell,
)
from provisioner.files import FileHeld, write_atomically
from provisioner.sandbox import Sandbox

SAMPLE = Path(__file__).resolve().parent.parent / "sample_sheets" / "site-hh-04.xlsx"
RUN_TIMEOUT = 90  # seconds for one command; a hang fails the test instead of the suite

# The signs the tool prints and a cell may hold, none of them in cp850 or cp1252 but "ä".
HEADER = "Notiz → Keller"
NAME = "Zähler → Keller …"


@pytest.fixture
def excel_holds(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """Files that cannot be replaced, as Windows refuses a file Excel has open."""
    held: set[Path] = set()
    real_replace = os.replace

    def replace(source: Any, target: Any) -> None:
        if Path(target) in held:
            raise PermissionError(errno.EACCES, "Permission denied", str(target))
        real_replace(source, target)

    monkeypatch.setattr(files.os, "replace", replace)
    return held.add


def folder_with_spaces(tmp_path: Path) -> Path:
    folder = tmp_path / "Projekt Haus 4 (Süd)"
    folder.mkdir()
    return folder


def crlf_sheet(folder: Path) -> Path:
    """A CSV as Excel on Windows saves it: CRLF line ends, a header and a name the
    cp850 and cp1252 consoles cannot show whole."""
    sheet = folder / "site 1.csv"
    lines = [f"serial,addr,name,{HEADER}", f"SN1,70B3D5E700000001,{NAME},a"]
    lines.append("SN2,70B3D5E700000002,Zähler 2 · Süd,b")
    sheet.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    return sheet


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# --- a file Excel holds -------------------------------------------------------------------------


def test_a_held_file_is_named_and_left_as_it_was(
    tmp_path: Path, excel_holds: Callable[[Path], None]
) -> None:
    target = folder_with_spaces(tmp_path) / "site.results.xlsx"
    target.write_bytes(b"the old results")
    excel_holds(target)

    with pytest.raises(FileHeld) as caught:
        write_atomically(target, lambda file: file.write(b"new"))

    words = files.reason(caught.value)
    assert f"{target} is probably open in Excel" in words, words
    assert target.read_bytes() == b"the old results"
    assert [p.name for p in target.parent.iterdir()] == ["site.results.xlsx"]  # no temporary


def test_a_folder_no_file_may_be_made_in_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = folder_with_spaces(tmp_path) / "blank.xlsx"

    def refuse(*_args: Any) -> int:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(files.os, "open", refuse)
    with pytest.raises(PermissionError) as caught:
        write_atomically(target, lambda file: file.write(b"new"))

    words = files.reason(caught.value)
    assert f"{target} cannot be written" in words and f"folder {target.parent} " in words, words


def test_a_report_excel_holds_is_written_beside_it_and_named(
    tmp_path: Path, excel_holds: Callable[[Path], None]
) -> None:
    folder = folder_with_spaces(tmp_path)
    sheet = crlf_sheet(folder)
    report = folder / "report 1.xlsx"
    report.write_bytes(b"the report Excel shows")
    excel_holds(report)

    done = invoke("validate", str(sheet), "--template", "default", "--report", str(report))

    beside = folder / "report 1-2.xlsx"
    assert done.exit_code == 0, done.output
    assert f"report written: {beside} (report 1.xlsx could not be replaced" in done.output
    assert "probably open in Excel" in done.output
    assert report.read_bytes() == b"the report Excel shows"
    assert openpyxl.load_workbook(beside).sheetnames


def test_a_saved_plan_excel_holds_is_refused_not_written_beside(
    tmp_path: Path, sandbox: Sandbox, excel_holds: Callable[[Path], None], signal_handlers: None
) -> None:
    """apply --plan reads the name given: a plan beside it would leave the old one there."""
    folder = folder_with_spaces(tmp_path)
    sheet = crlf_sheet(folder)
    out = folder / "plan.json"
    out.write_text("{}")
    excel_holds(out)

    done = CliRunner().invoke(
        main,
        ["plan", str(sheet), "--template", "default", "--url", sandbox.url, "--out", str(out)],
        env={"PROVISIONER_TOKEN": sandbox.tokens["device-admin"]},
    )

    assert done.exit_code == 2, done.output
    assert f"{out} is probably open in Excel" in done.output
    assert out.read_text() == "{}" and not (folder / "plan-2.json").exists()


def test_apply_writes_the_results_beside_a_workbook_excel_holds(
    tmp_path: Path, sandbox: Sandbox, excel_holds: Callable[[Path], None], signal_handlers: None
) -> None:
    folder = folder_with_spaces(tmp_path)
    sheet = crlf_sheet(folder)
    results = folder / "site 1.results.xlsx"
    results.write_bytes(b"yesterday's results")
    excel_holds(results)

    done = CliRunner().invoke(
        main,
        ["apply", str(sheet), "--template", "default", "--url", sandbox.url, "--yes"],
        env={"PROVISIONER_TOKEN": sandbox.tokens["device-admin"]},
    )

    assert done.exit_code == 0, done.output
    assert "could not write the results site 1.results.xlsx" in done.output
    assert f"{results} is probably open in Excel" in done.output
    assert "results written to site 1.results-2.xlsx instead" in done.output
    assert results.read_bytes() == b"yesterday's results"
    assert sandbox.store.count_devices() == 2


def test_apply_writes_a_report_excel_holds_beside_it(
    tmp_path: Path, sandbox: Sandbox, excel_holds: Callable[[Path], None], signal_handlers: None
) -> None:
    folder = folder_with_spaces(tmp_path)
    sheet = crlf_sheet(folder)
    report = folder / "apply report.csv"
    report.write_bytes(b"yesterday's report")
    excel_holds(report)

    done = CliRunner().invoke(
        main,
        ["apply", str(sheet), "--template", "default", "--url", sandbox.url, "--yes"]
        + ["--report", str(report)],
        env={"PROVISIONER_TOKEN": sandbox.tokens["device-admin"]},
    )

    assert done.exit_code == 0, done.output
    assert "report written to apply report-2.csv instead" in done.output
    assert f"report written: {folder / 'apply report-2.csv'}" in done.output
    assert report.read_bytes() == b"yesterday's report"
    assert "created" in (folder / "apply report-2.csv").read_text(encoding="utf-8")


def test_the_command_line_names_a_file_it_cannot_write(tmp_path: Path) -> None:
    """The real command in its own process, the target's replace refused as Windows
    refuses a workbook Excel shows (a chmod stops no one who runs as root)."""
    out = folder_with_spaces(tmp_path) / "blank sheet.xlsx"
    out.write_bytes(b"open in Excel")
    refuse = (
        "import os, sys\n"
        "from provisioner.__main__ import run\n"
        "real = os.replace\n"
        "def replace(source, target):\n"
        "    if os.fspath(target) == sys.argv[-2]:\n"
        "        raise PermissionError(13, 'Permission denied', os.fspath(target))\n"
        "    real(source, target)\n"
        "os.replace = replace\n"
        "sys.argv[0] = 'provisioner'\n"
        "run()\n"
    )
    args = ["template", "lorawan-meter", "--out", str(out), "--force"]

    done = subprocess.run(
        [sys.executable, "-c", refuse, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=RUN_TIMEOUT,
    )

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{out} is probably open in Excel" in done.stderr, done.stderr
    assert out.read_bytes() == b"open in Excel"


# --- paths as given -----------------------------------------------------------------------------


def test_paths_with_backslashes_and_spaces_are_shown_as_typed(tmp_path: Path) -> None:
    """A folder of spaces, and (on POSIX one name, on Windows three folders) backslashes:
    click would show the path as Python's repr, every backslash doubled."""
    folder = folder_with_spaces(tmp_path) / "Projekte\\Haus 4\\Keller"
    folder.mkdir()
    missing = str(folder / "site 1.xlsx")

    done = invoke("validate", missing)
    assert done.exit_code == 2
    assert missing in done.output and "\\\\" not in done.output, done.output

    done = invoke("validate", str(folder))
    assert f"'{folder}' is a directory" in done.output, done.output

    sheet = crlf_sheet(folder)
    report = str(folder / "no such folder" / "r 1.json")
    done = invoke("validate", str(sheet), "--template", "default", "--report", report)
    assert done.exit_code == 2
    assert f"folder {folder / 'no such folder'} for report r 1.json" in done.output, done.output


# --- Ctrl-Break -------------------------------------------------------------------------------


@pytest.fixture
def signal_handlers() -> Iterator[None]:
    """The handlers as pytest had them, back after the test."""
    numbers = [signal.SIGINT, signal.SIGTERM, *[getattr(signal, "SIGUSR1", signal.SIGINT)]]
    kept = {number: signal.getsignal(number) for number in numbers}
    yield
    for number, handler in kept.items():
        signal.signal(number, handler)


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="SIGUSR1 plays Windows' SIGBREAK")
def test_ctrl_break_stops_as_ctrl_c_does(
    monkeypatch: pytest.MonkeyPatch, signal_handlers: None
) -> None:
    monkeypatch.setattr(signal, "SIGBREAK", signal.SIGUSR1, raising=False)

    _stop_cleanly_on_signals()

    assert signal.getsignal(signal.SIGUSR1) is _stop_on_sigterm
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGUSR1)


# --- a console without UTF-8 ------------------------------------------------------------------


def test_the_console_shows_stand_ins_for_what_its_encoding_lacks() -> None:
    assert "→ ä … 中".encode("cp850", "provisioner.console") == "-> ä ... \\u4e2d".encode("cp850")
    assert "· ä".encode("ascii", "provisioner.console") == b"| \\xe4"


@pytest.mark.parametrize("encoding", ["cp850", "cp1252", "ascii"])
def test_validate_plan_and_apply_on_a_console_without_utf8(
    tmp_path: Path, sandbox: Sandbox, encoding: str
) -> None:
    """The real commands in their own processes, on a sheet and a token file saved with
    CRLF line ends, in a folder with spaces."""
    folder = folder_with_spaces(tmp_path)
    sheet = crlf_sheet(folder)
    token_file = folder / "token file.txt"
    token_file.write_bytes(sandbox.tokens["device-admin"].encode() + b"\r\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")}
    env.update(PYTHONIOENCODING=encoding, PROVISIONER_URL=sandbox.url)
    sheet_args = [str(sheet), "--template", "default"]

    def run(*args: str) -> tuple[int, str, str]:
        done = subprocess.run(
            [sys.executable, "-m", "provisioner", *args],
            env=env,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=RUN_TIMEOUT,
        )
        # click writes UTF-8 to an ASCII console (it takes ASCII for a misconfigured one).
        shown = "utf-8" if encoding == "ascii" else encoding
        out, err = done.stdout.decode(shown), done.stderr.decode(shown)
        assert "Traceback" not in err and "UnicodeEncodeError" not in err, err
        return done.returncode, out, err

    code, out, err = run("validate", *sheet_args)
    assert code == 0, err
    if encoding != "ascii":
        assert "Notiz -> Keller" in out, out

    code, out, err = run("plan", *sheet_args, "--token-file", str(token_file), "--show", "creates")
    assert code == 0, err
    assert "create 2" in out, out
    if encoding != "ascii":
        assert "Zähler -> Keller" in out, out  # cp1252 has the "…"

    code, out, err = run("apply", *sheet_args, "--token-file", str(token_file), "--yes")
    assert code == 0, err
    assert sandbox.store.count_devices() == 2


# --- the resume command, for the user's shell -------------------------------------------------


def resume_for(shell: str) -> str:
    return _resume_command(
        Path("C:\\Users\\Anna O'Neil\\Haus 4\\site 1.xlsx"),
        "C:\\Vorlagen\\meter.toml",
        Path('D:\\Journale\\a"b'),
        "https://platform.example/api?x=1&y=2",
        Path("C:\\Users\\Anna O'Neil\\token.txt"),
        update=(True, frozenset({"tags", "description"})),
        shell=shell,
    )


def test_the_resume_command_for_cmd() -> None:
    assert resume_for("cmd") == (
        'provisioner apply "C:\\Users\\Anna O\'Neil\\Haus 4\\site 1.xlsx" '
        "--template C:\\Vorlagen\\meter.toml "
        '--url "https://platform.example/api?x=1&y=2" '
        '--journal "D:\\Journale\\a\\"b" '
        '--token-file "C:\\Users\\Anna O\'Neil\\token.txt" '
        '"--update=description,tags" --yes'
    )


def test_the_resume_command_for_powershell() -> None:
    assert resume_for("powershell") == (
        "provisioner apply 'C:\\Users\\Anna O''Neil\\Haus 4\\site 1.xlsx' "
        "--template C:\\Vorlagen\\meter.toml "
        "--url 'https://platform.example/api?x=1&y=2' "
        "--journal 'D:\\Journale\\a\"b' "
        "--token-file 'C:\\Users\\Anna O''Neil\\token.txt' "
        "'--update=description,tags' --yes"
    )
    # PowerShell takes typographic quotes for quotes too.
    assert shell_words(["O\u2019Neil"], "powershell") == "'O\u2019\u2019Neil'"


def test_the_resume_command_for_posix_shells() -> None:
    assert resume_for("posix") == (
        "provisioner apply 'C:\\Users\\Anna O'\"'\"'Neil\\Haus 4\\site 1.xlsx' "
        "--template 'C:\\Vorlagen\\meter.toml' "
        "--url 'https://platform.example/api?x=1&y=2' "
        "--journal 'D:\\Journale\\a\"b' "
        "--token-file 'C:\\Users\\Anna O'\"'\"'Neil\\token.txt' "
        "--update=description,tags --yes"
    )


@pytest.mark.parametrize(
    ("platform", "environ", "shell"),
    [
        ("linux", {"PSModulePath": "C:\\Users\\anna\\Documents\\PowerShell\\Modules"}, "posix"),
        ("darwin", {}, "posix"),
        ("win32", {}, "cmd"),
        (
            "win32",  # cmd.exe: the system's module folders only
            {
                "USERPROFILE": "C:\\Users\\anna",
                "PSModulePath": "C:\\Program Files\\WindowsPowerShell\\Modules;"
                "C:\\WINDOWS\\system32\\WindowsPowerShell\\v1.0\\Modules",
            },
            "cmd",
        ),
        (
            "win32",  # Windows PowerShell 5.1 puts the user's folder first
            {
                "USERPROFILE": "C:\\Users\\anna",
                "PSModulePath": "C:\\Users\\anna\\Documents\\WindowsPowerShell\\Modules;"
                "C:\\Program Files\\WindowsPowerShell\\Modules;"
                "C:\\WINDOWS\\system32\\WindowsPowerShell\\v1.0\\Modules",
            },
            "powershell",
        ),
        (
            "win32",  # PowerShell 7, Documents moved to OneDrive
            {
                "USERPROFILE": "C:\\Users\\anna",
                "PSModulePath": "C:\\Users\\anna\\OneDrive\\Dokumente\\PowerShell\\Modules;"
                "C:\\Program Files\\PowerShell\\7\\Modules",
            },
            "powershell",
        ),
    ],
)
def test_the_users_shell(platform: str, environ: dict[str, str], shell: str) -> None:
    assert user_shell(platform, environ) == shell
