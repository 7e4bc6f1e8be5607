"""Small things a new user meets first: the URL as the sandbox prints it, colours and
NO_COLOR on a terminal, the list of templates and a template's headers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_apply_e2e import environment
from test_apply_terminal import finish, spawn

from provisioner.platform import PlatformClient
from provisioner.sandbox import Sandbox
from provisioner.templates import list_templates

MISTAKES = Path(__file__).resolve().parent.parent / "sample_sheets" / "site-hh-04-mistakes.xlsx"


def cli(*words: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *words],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_a_url_with_or_without_api_is_the_same_platform(sandbox: Sandbox, tmp_path: Path) -> None:
    for given in (sandbox.url + "/api", sandbox.url + "/api/", sandbox.url + "/"):
        assert PlatformClient(given, "x" * 20).url == sandbox.url
    sheet = tmp_path / "site.csv"
    sheet.write_text("serial;addr\nSN1;70B3D5E700000001\n", encoding="utf-8")
    env = environment(sandbox.tokens["device-admin"])
    done = cli("plan", str(sheet), "--url", sandbox.url + "/api", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "create 1" in done.stdout


def on_terminal(tmp_path: Path, *words: str, **env: str) -> str:
    base = {k: v for k, v in environment("unused").items() if k != "NO_COLOR"}
    pid, fd = spawn(list(words), {**base, **env}, tmp_path)
    code, screen = finish(pid, fd)
    assert code == 1, screen  # the mistakes sheet has invalid rows
    return screen


def test_colours_on_a_terminal_and_none_with_no_color(tmp_path: Path) -> None:
    validate = ("validate", str(MISTAKES), "--template", "lorawan-meter", "--show", "3")
    assert "\x1b[31m" in on_terminal(tmp_path, *validate)
    assert "\x1b[" not in on_terminal(tmp_path, *validate, NO_COLOR="1")
    assert "\x1b[" not in on_terminal(tmp_path, "--no-color", *validate)


def test_the_templates_are_listed_and_a_templates_headers_printed(tmp_path: Path) -> None:
    listed = cli("templates")
    assert listed.returncode == 0, listed.stderr
    for name in list_templates():
        assert name in listed.stdout
    own = tmp_path / "own.toml"
    own.write_text(
        (Path(__file__).resolve().parent.parent / "templates" / "default.toml").read_text(
            encoding="utf-8"
        ),
        encoding="utf-8",
    )
    assert str(own) in cli("templates", str(own)).stdout
    headers = cli("template", "lorawan-meter")
    assert headers.returncode == 0, headers.stderr
    assert "DevEUI *" in headers.stdout and "cfg:<key>" in headers.stdout
    assert "Traceback" not in headers.stderr
