"""The ``provisioner`` command line: parse options, call the library, render."""

from __future__ import annotations

import codecs
import contextlib
import difflib
import functools
import os
import re
import shlex
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import click

from provisioner import __version__
from provisioner.actions import LOOKUPS, StopKind
from provisioner.config import FILE_NAME, Config, ConfigError, find_config, load_config
from provisioner.errors import Declined, Interrupted, ProvisionerError
from provisioner.events import Events
from provisioner.reports import (
    REPORT_SUFFIXES,
    ReportError,
    check_report_paths,
    render_console,
    write_report,
)
from provisioner.reports.json_report import RowSpill, StreamedRows
from provisioner.results import EXIT_INPUT, EXIT_INTERRUPTED
from provisioner.sandbox.store import DEVICE_TYPES, MAX_PAGE_SIZE, ROLES
from provisioner.sheets import MAX_CELLS, Bounds, SheetError, read_tables, set_bounds
from provisioner.template_choice import Setting, TemplateChoice, choose_template
from provisioner.templates import (
    SiteTemplate,
    TemplateError,
    header_key,
    list_templates,
    load_template,
)
from provisioner.text import counted, visible
from provisioner.validation import validate_stream
from provisioner.wording import LANGUAGES, header_in, tab_in

if TYPE_CHECKING:  # the platform's modules load with the commands that talk to it
    from click.shell_completion import CompletionItem

    from provisioner.apply import Work
    from provisioner.platform import PlatformClient
    from provisioner.progress import Progress
    from provisioner.records import SiteRecords
    from provisioner.undo import UndoResult
    from provisioner.verify import VerifyResult

F = TypeVar("F", bound=Callable[..., Any])
# How verify may ask for the data (provisioner.verify.WAYS; kept here so the help loads fast).
VERIFY_WAYS = ("auto", "organisation", "per-device")


def echo(text: str = "", *, err: bool = False) -> None:
    """Every line the command line prints, but a rendered report (``render_console``
    escapes its own text; its colours are codes): control characters from the platform
    or a sheet are shown as escapes (``text.visible``); the lines stay lines."""
    click.echo(visible(text, keep="\n"), err=err)


class Failure(click.ClickException):
    """An expected error's words as ``Error: ...``, control characters shown as escapes:
    a platform's answer may be quoted in them."""

    def format_message(self) -> str:
        return visible(self.message, keep="\n")


class PathAsGiven(click.Path):
    """click's Path, its messages with the path as typed: click shows it as Python's repr,
    which doubles every backslash of a Windows path (C:\\\\Users\\\\Anna)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            shown = click.format_filename(value)
            message = exc.message.replace(repr(shown), f"'{shown}'")
            raise click.BadParameter(message, exc.ctx, exc.param, exc.param_hint) from None


class InputError(Failure):
    """Unreadable input, unknown template, unusable report path: exit 2, no traceback."""

    exit_code = 2


# The commands in the order of the work, then the tools around it: --help lists them so.
COMMAND_ORDER = (
    "validate",
    "plan",
    "apply",
    "verify",
    "export",
    "undo",
    "template",
    "templates",
    "sandbox",
    "demo",
    "help",
)
# The group's options that are also taken after the command (flags, then those with a value).
GLOBAL_FLAGS = ("--no-color", "--verbose")
GLOBAL_VALUED = ("--config", "--max-cells")


class Provisioner(click.Group):
    """The group: commands in the order of the work with their whole first sentence, and
    the global options also after the command (``validate x.xlsx --no-color``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        known = [name for name in COMMAND_ORDER if name in self.commands]
        return known + sorted(set(self.commands) - set(known))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                # click cuts the text to the terminal's width with "..."; the first sentence
                # whole is short enough to wrap instead.
                rows.append((name, command.get_short_help_str(limit=500)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self.globals_first(args))

    def globals_first(self, args: list[str]) -> list[str]:
        """``args`` with the global options given after the command moved before it; an
        option the command has itself (sandbox's --verbose) stays the command's."""
        at = 0
        while at < len(args) and args[at].startswith("-") and args[at] != "--":
            at += 2 if args[at] in GLOBAL_VALUED else 1
        if at >= len(args):
            return args
        command = self.commands.get(args[at])
        own = {o for p in command.params for o in p.opts} if command else set()
        moved: list[str] = []
        kept: list[str] = []
        rest = iter(args[at + 1 :])
        for arg in rest:
            name = arg.split("=", 1)[0]
            if arg == "--":
                kept += [arg, *rest]
            elif name in own or not name.startswith("--"):
                kept.append(arg)
            elif arg in GLOBAL_FLAGS:
                moved.append(arg)
            elif name in GLOBAL_VALUED:
                moved += [arg] if "=" in arg else [arg, next(rest, "")]
            else:
                kept.append(arg)
        return [*args[:at], *moved, args[at], *kept]


@click.group(cls=Provisioner, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="provisioner")
@click.option(
    "--config",
    "config_path",
    envvar="PROVISIONER_CONFIG",
    type=PathAsGiven(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE",
    help=f"Settings file (default: {FILE_NAME} in the working folder, if there is one) "
    "[env: PROVISIONER_CONFIG].",
)
@click.option(
    "--no-color",
    is_flag=True,
    help="No colours on the console (also when the NO_COLOR environment variable is set).",
)
@click.option(
    "--max-cells",
    type=click.IntRange(min=1),
    envvar="PROVISIONER_MAX_CELLS",
    metavar="N",
    help=f"Read a tab that spans up to N cells (rows x columns from A1; default "
    f"{MAX_CELLS:,}): a sheet that spans more is refused before it is read, as a stray "
    "value far off the table would make the reader hold billions [env: "
    "PROVISIONER_MAX_CELLS].",
)
@click.option(
    "--verbose",
    is_flag=True,
    help="Log each request to the platform on stderr: method, path, status and time "
    "(the token and the sheet's secrets masked).",
)
@click.pass_context
def main(
    ctx: click.Context,
    config_path: Path | None,
    no_color: bool,
    max_cells: int | None,
    verbose: bool,
) -> None:
    """Put whole sites of IoT devices onto the Lobaro IoT Platform from a spreadsheet.

    The work: validate the sheet, plan, apply, verify the devices speak; export a
    site as a sheet, undo a run. The options below are also taken after the
    command (provisioner validate site.xlsx --no-color).

    \b
    Examples:
      provisioner template default --out site.xlsx
      provisioner validate site.xlsx
      provisioner plan site.xlsx --url https://platform.lobaro.com
      provisioner help apply
    """
    global _NO_COLOR
    _console_safe()
    _NO_COLOR = no_color
    ctx.meta["verbose"] = verbose
    if max_cells is not None:
        set_bounds(Bounds(cells=max_cells))
    path = find_config(config_path, Path("."))
    ctx.meta["config_path"] = path  # where a template from the file was set, for its line
    if path is not None:
        try:
            ctx.default_map = _default_map(load_config(path))
        except ConfigError as exc:
            raise InputError(str(exc)) from None


_NO_COLOR = False  # --no-color

# What a console without the character shows for the tool's own signs (a Windows
# console in cp850 or cp1252 has no arrow, an ASCII one not even the middle dot).
_STAND_INS = {
    "\u2192": "->",  # →
    "\u2190": "<-",  # ←
    "\u2026": "...",  # …
    "\u00b7": "|",  # ·
    "\u2013": "-",  # –
    "\u2014": "-",  # —
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u00d7": "x",  # ×
}


def _stand_in(error: UnicodeError) -> tuple[str, int]:
    """A character the console's encoding lacks: its stand-in, else Python's escape
    (a name in another script stays recognisable: \\u4e2d), never a traceback."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    part = error.object[error.start : error.end]
    shown = (_STAND_INS.get(c) or c.encode("ascii", "backslashreplace").decode() for c in part)
    return "".join(shown), error.end


codecs.register_error("provisioner.console", _stand_in)


def _console_safe() -> None:
    """stdout and stderr print every text in any console encoding (cp850, cp1252, ascii):
    what it cannot show is replaced (``_stand_in``), not raised as UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:  # a stream a caller put in place may not have it
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="provisioner.console")


def _color() -> bool:
    """Colours on the console: not with --no-color, nor with NO_COLOR set (no-color.org)."""
    return not (_NO_COLOR or os.environ.get("NO_COLOR"))


def _progress(unit: str = "rows") -> Progress:
    """The live line on stderr (a spinner, then a bar of ``unit``); plain lines without a
    terminal."""
    from provisioner.progress import Progress

    return Progress(color=_color(), unit=unit)


def _default_map(config: Config) -> dict[str, dict[str, Any]]:
    """The file's settings as click defaults per command: option > env > file > default."""
    journal = _journal_in(config.journal_folder) if config.journal_folder else None
    reports = _reports_beside_sheet(config.reports) if config.reports else None
    link = {"device_link": config.device_link}
    defaults: dict[str, dict[str, Any]] = {
        "validate": {"template_name": config.template, "reports": reports},
        "plan": {
            "template_name": config.template,
            "url": config.url,
            "journal_path": journal,
            "reports": reports,
            **link,
        },
        "apply": {
            "template_name": config.template,
            "url": config.url,
            "concurrency": config.concurrency,
            "max_rps": config.max_rps,
            "journal_path": journal,
            "reports": reports,
            **link,
        },
        "verify": {
            "template_name": config.template,
            "url": config.url,
            "journal_path": journal,
            **link,
        },
        "undo": {"url": config.url, "journal_path": journal, **link},
        "export": {"template_name": config.template, "url": config.url},
    }
    # A None in click's default_map would override the option's own default.
    return {
        command: {name: value for name, value in values.items() if value is not None}
        for command, values in defaults.items()
    }


def _journal_in(folder: Path) -> Callable[[], Path]:
    """apply's --journal default: <sheet stem>.journal.jsonl in the file's journal folder."""

    def journal() -> Path:
        # Called by click once SHEET is parsed (given arguments are processed first).
        sheet: Path = click.get_current_context().params["sheet"]
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the journal folder {folder}: {exc.strerror}") from None
        return folder / f"{sheet.stem}.journal.jsonl"

    return journal


def _reports_beside_sheet(formats: tuple[str, ...]) -> Callable[[], list[Path]]:
    """--report's default from the file: <sheet stem>.<command>.<format> beside the sheet."""

    def reports() -> list[Path]:
        ctx = click.get_current_context()
        sheet: Path = ctx.params["sheet"]
        return [sheet.with_name(f"{sheet.stem}.{ctx.command.name}.{f}") for f in formats]

    return reports


# --- options shared by several commands (one definition each) ---------------------------


def template_option(command: F, *, reads_sheet: bool = True) -> F:
    chosen = (
        "the one a workbook of this tool records, else the one built-in whose headers fit, "
        f"else PROVISIONER_TEMPLATE or {FILE_NAME}, else default; the first line says which"
        if reads_sheet
        else f"PROVISIONER_TEMPLATE or {FILE_NAME}, else default"
    )
    return click.option(
        "--template",
        "-t",
        "template_name",
        envvar="PROVISIONER_TEMPLATE",
        metavar="NAME|FILE.toml",
        shell_complete=_complete_template,
        help=f"Site template: how the sheet's columns map to the platform "
        f"({', '.join(list_templates())}, or a .toml file). Without it: {chosen}.",
    )(command)


def _complete_template(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of --template: the built-in names that start so, else the files
    (a template of one's own is a .toml file)."""
    from click.shell_completion import CompletionItem

    names = [name for name in list_templates() if name.startswith(incomplete)]
    if names:
        return [CompletionItem(name) for name in names]
    return [CompletionItem(incomplete, type="file")]


def export_template_option(command: F) -> F:
    return template_option(command, reads_sheet=False)


def tab_option(command: F) -> F:
    """--tab NAME: the tab that holds the devices."""
    return click.option(
        "--tab",
        metavar="NAME",
        help="The tab that holds the devices, by its name (case and spaces do not matter). "
        "Without it: the template's devices tab (Devices, Geräte...), else the first tab "
        "with a table (chart sheets and empty tabs are passed over), or, when that one lacks "
        "the template's columns, the one other tab that has them. Users and Downlinks tabs "
        "are still found by their names.",
    )(command)


def _reports_and_dash(
    ctx: click.Context, param: click.Parameter, values: tuple[Path, ...]
) -> tuple[Path, ...]:
    """--report's files; ``-`` (stdout) is --json."""
    if any(str(path) == "-" for path in values):
        ctx.meta["json"] = True
    return tuple(path for path in values if str(path) != "-")


def report_option(command: F) -> F:
    return click.option(
        "--report",
        "reports",
        multiple=True,
        type=PathAsGiven(dir_okay=False, path_type=Path),
        metavar="FILE",
        callback=_reports_and_dash,
        help=f"Also write the result to FILE; the format follows the suffix "
        f"({', '.join(REPORT_SUFFIXES)}); - prints the JSON report on stdout, as --json. "
        "Repeatable.",
    )(command)


def _keep_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta["json"] = True


def json_option(command: F) -> F:
    """--json: the report on stdout, for scripts; see ``machine_output``."""
    return click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        callback=_keep_json,
        help="Print the result as JSON on stdout (what --report FILE.json writes) and "
        "everything else on stderr; the exit code is the same.",
    )(command)


@dataclass
class MachineOutput:
    """--json: where the report goes (stdout as it was); until then stdout is stderr, so
    that nothing else the command prints (the plan before the question, notes, report
    lines) mixes into the JSON."""

    stdout: Any

    def emit(
        self,
        data: dict[str, Any],
        records: SiteRecords | None = None,
        rows: StreamedRows | None = None,
    ) -> None:
        from provisioner.reports import print_json

        print_json(data, self.stdout, rows=rows, **_secrets(records))
        self.stdout.flush()


def machine_output(ctx: click.Context) -> MachineOutput | None:
    """With --json (or --report -): stdout is stderr until the command ends; the report
    is printed on the stdout saved here."""
    if not ctx.meta.get("json"):
        return None
    saved = sys.stdout
    sys.stdout = sys.stderr

    def restore() -> None:
        sys.stdout = saved

    ctx.call_on_close(restore)
    return MachineOutput(saved)


class PlatformUnavailable(Failure):
    """The platform is unreachable or refuses the token before any change: exit 3."""

    exit_code = 3


def _keep_device_link(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    # Kept for _client rather than passed through every command: only reports use it.
    ctx.meta["device_link"] = value


@dataclass(frozen=True)
class PlatformOptions:
    """--url, --token-file, --ca-bundle, --allow-http: which platform, and how to reach it."""

    url: str | None
    token_file: Path | None
    ca_bundle: str | None
    allow_http: bool


def platform_options(command: F) -> F:
    """--url, --token-file, --ca-bundle, --allow-http, --device-link: the platform and
    how to reach it; the command gets them as one ``platform: PlatformOptions``."""
    return _platform_options(command, device_link=True)


def platform_options_without_reports(command: F) -> F:
    """platform_options without --device-link: for export, whose sheet links nothing."""
    return _platform_options(command, device_link=False)


def _platform_options(command: F, *, device_link: bool) -> F:

    @functools.wraps(command)
    def with_platform(
        *args: Any,
        url: str | None,
        token_file: Path | None,
        ca_bundle: str | None,
        allow_http: bool,
        **kwargs: Any,
    ) -> Any:
        platform = PlatformOptions(url, token_file, ca_bundle, allow_http)
        return command(*args, platform=platform, **kwargs)

    wrapped: Any = with_platform
    if device_link:
        wrapped = click.option(
            "--device-link",
            envvar="PROVISIONER_DEVICE_LINK",
            metavar="URL",
            expose_value=False,
            callback=_keep_device_link,
            help="A device's page on the platform, with {id} for its id, e.g. "
            "https://platform.example/devices/{id}: the reports of plan, apply, verify and "
            "undo link platform ids to it [env: PROVISIONER_DEVICE_LINK].",
        )(wrapped)
    wrapped = click.option(
        "--allow-http",
        is_flag=True,
        help="Allow plain http:// to a host that is not this machine (a private network "
        "you trust): the token then travels unencrypted.",
    )(wrapped)
    wrapped = click.option(
        "--ca-bundle",
        type=PathAsGiven(exists=True, dir_okay=False),
        help="Trust this CA bundle (PEM) too, for a platform behind a private CA.",
    )(wrapped)
    wrapped = click.option(
        "--token-file",
        type=PathAsGiven(exists=True, dir_okay=False, path_type=Path),
        help="Read the API token from this file (else PROVISIONER_TOKEN, else a hidden prompt).",
    )(wrapped)
    return cast(
        F,
        click.option(
            "--url",
            envvar="PROVISIONER_URL",
            metavar="URL",
            help="The platform's base URL, e.g. https://platform.lobaro.com "
            "[env: PROVISIONER_URL].",
        )(wrapped),
    )


# A platform token is a few hundred characters at most; a file far larger is another file.
TOKEN_FILE_BYTES = 16 * 1024


def _token(token_file: Path | None) -> str:
    """The token, from the environment, a file or a hidden prompt: never an option value."""
    if token_file is not None:
        return _token_from_file(token_file)
    token = os.environ.get("PROVISIONER_TOKEN", "").strip()
    if token:
        return token
    if sys.stdin.isatty():
        token = str(click.prompt("API token (input hidden)", hide_input=True)).strip()
        if token:
            return token
    raise InputError(
        "no API token: set PROVISIONER_TOKEN or use --token-file FILE "
        "(create a token in the platform UI under Integrations -> REST)"
    )


def _token_from_file(path: Path) -> str:
    """The token alone in ``path`` (one line, surrounding blanks dropped), read within a
    bound; a message that names the file and never shows the token otherwise."""
    try:
        with path.open("rb") as file:
            data = file.read(TOKEN_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read the token file {path}: {exc.strerror or exc}") from None
    fix = "put the API token alone in it, on one line, as the platform shows it"
    if len(data) > TOKEN_FILE_BYTES:
        raise InputError(
            f"{path} is larger than {TOKEN_FILE_BYTES // 1024} KB, far more than a token: "
            f"is it the right file? {fix}"
        )
    try:
        text = data.decode("utf-8-sig")  # with or without the BOM Windows editors write
    except UnicodeDecodeError:
        raise InputError(
            f"{path} is not UTF-8 text (Windows PowerShell's > writes UTF-16): {fix}, "
            "saved as UTF-8"
        ) from None
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        raise InputError(f"{path} is empty: put the API token in it")
    if len(lines) > 1:
        raise InputError(f"{path} holds {len(lines)} lines: {fix}")
    token = lines[0].strip()
    for at, char in enumerate(token, 1):
        if not "!" <= char <= "~":
            kind = (
                "a space"
                if char.isspace()
                else "a control character"
                if not char.isprintable()
                else "not an ASCII letter, digit or sign"
            )
            # The character's code only, never the token: it is a secret.
            raise InputError(
                f"{path}: character {at} of the token is {kind} (U+{ord(char):04X}): {fix}"
            )
    return token


def _client(platform: PlatformOptions, **options: Any) -> PlatformClient:
    from provisioner.platform import PlatformClient, SetupError

    if not platform.url:
        raise InputError("no platform URL: use --url URL or set PROVISIONER_URL")
    try:
        device_link = click.get_current_context().meta.get("device_link")
        return PlatformClient(
            platform.url,
            _token(platform.token_file),
            ca_bundle=platform.ca_bundle,
            allow_http=platform.allow_http,
            device_link=device_link,
            **options,
        )
    except SetupError as exc:
        raise InputError(str(exc)) from None


class Console(Events):
    """The console's side of a run: the live line on stderr (``provisioner.progress``);
    a command's subclass adds what it shows and asks."""

    def __init__(self, run: PlatformRun, yes: bool = False) -> None:
        self.live = run.live
        self.url = run.client.url
        self.yes = yes  # --yes: every question is answered yes

    def reading(self, text: str) -> None:
        self.live.reading(text)

    def progress(self, done: int, total: int, failed: int) -> None:
        self.live(done, total, failed)

    def say(self, line: str) -> None:
        self.live.say(line)


@dataclass
class PlatformRun:
    """What a platform command works with: the client, the live line, the stop event."""

    ctx: click.Context
    client: PlatformClient
    live: Progress
    stop: threading.Event
    # What Ctrl-C outside the library's own handling prints (exit 130).
    interrupted: str = "interrupted: nothing was written"
    # Exit without waiting for threads (a request still in flight after Ctrl-C's grace).
    at_once: bool = False

    def exit(self, code: int) -> NoReturn:
        if self.at_once and code == EXIT_INTERRUPTED:
            # The journal is on disk and the next run settles what was in flight.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        self.ctx.exit(code)


@contextmanager
def platform_run(
    ctx: click.Context, platform: PlatformOptions, *, unit: str = "rows", **client_options: Any
) -> Iterator[PlatformRun]:
    """One context for every command that talks to the platform (alembic's ``run_cmd``):
    the client (its retry waits end at once on a stop), the live line, Ctrl-C and SIGTERM
    as a clean stop, and each expected error as its words and exit code: unusable input
    2, a declined question 2, an interrupt 130, the platform refused or unreachable 3.
    The live line is closed before anything is printed."""
    from provisioner.platform import PlatformError

    stop = threading.Event()
    live = _progress(unit)
    if ctx.meta.get("verbose"):
        client_options["log_request"] = live.say
    client = _client(platform, sleep=stop.wait, on_unreachable=live.say, **client_options)
    live.pace = client.pace.describe  # how fast the platform is asked, beside the bar
    _stop_cleanly_on_signals()
    run = PlatformRun(ctx, client, live, stop)
    try:
        with client, live:
            yield run
    except Declined as exc:
        echo(str(exc), err=True)
        ctx.exit(EXIT_INPUT)
    except Interrupted as exc:
        echo(f"{exc}: nothing was written to the platform", err=True)
        ctx.exit(EXIT_INTERRUPTED)
    except ProvisionerError as exc:
        raise InputError(str(exc)) from None
    except PlatformError as exc:
        raise PlatformUnavailable(f"the platform at {client.url} cannot be used: {exc}") from None
    except KeyboardInterrupt:
        echo(run.interrupted, err=True)
        run.exit(EXIT_INTERRUPTED)


def _show_plan(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[int, bool]:
    """plan's --show, each a number of rows or ``creates``: (how many rows that need
    attention to list, whether to list what each create sends)."""
    limit, creates = 20, False
    for value in values:
        text = value.strip().casefold()
        if text == "creates":
            creates = True
        elif text.isdigit() and int(text) >= 1:
            limit = int(text)
        else:
            raise click.BadParameter(
                f"{value!r} is neither a number of rows (1 or more) nor 'creates'"
            )
    return limit, creates


def show_option(what: str) -> Callable[[F], F]:
    """--show N: how many rows of the console listing (the reports hold all)."""
    return click.option(
        "--show",
        "limit",
        type=click.IntRange(min=1),
        default=20,
        show_default=True,
        help=f"How many {what} to list on the console.",
    )


def _load_template(name: str) -> SiteTemplate:
    try:
        return load_template(name)
    except TemplateError as exc:
        raise InputError(str(exc)) from None


def _choose_template(
    ctx: click.Context,
    sheet: Path | None,
    template_name: str | None,
    saved_plan: Path | None = None,
    tab: str | None = None,
) -> TemplateChoice:
    """The template for the command: --template, else chosen (see template_choice) by the
    headers of the devices tab (``tab``: the one --tab names)."""
    from click.core import ParameterSource

    source = ctx.get_parameter_source("template_name")
    given = setting = None
    if template_name is not None:
        if source == ParameterSource.ENVIRONMENT:
            setting = Setting(template_name, "PROVISIONER_TEMPLATE")
        elif source == ParameterSource.DEFAULT_MAP:
            config: Path | None = ctx.meta.get("config_path")
            setting = Setting(template_name, config.name if config else FILE_NAME)
        else:
            given = template_name
    try:
        return choose_template(sheet, given, setting=setting, saved_plan=saved_plan, tab=tab)
    except (TemplateError, SheetError) as exc:
        raise InputError(str(exc)) from None


def _check_reports(reports: tuple[Path, ...], sheet: Path) -> None:
    """Before any work: a bad report path must not cost the installer a whole run."""
    try:
        check_report_paths(list(reports), source=sheet)
    except ReportError as exc:
        raise InputError(str(exc)) from None


def _secrets(records: SiteRecords | None) -> dict[str, Any]:
    """What the reports must mask: the sheet's passwords and LoRaWAN keys, and the columns
    that hold them."""
    if records is None:
        return {}
    return {"secrets": records.secrets(), "secret_columns": records.secret_columns}


def _write_reports(
    data: dict[str, Any],
    reports: tuple[Path, ...],
    sheet: Path,
    records: SiteRecords | None,
    *,
    beside: bool = True,
    rows: StreamedRows | None = None,
) -> None:
    """Each report file; an .xlsx report copies the sheet's tabs, read again only then.
    A report open in Excel (Windows will not replace it) is written beside it, named."""
    tables = None
    if records is not None and any(path.suffix.lower() == ".xlsx" for path in reports):
        tables = read_tables(sheet, records.tabs.values())
    for path in reports:
        try:
            written = write_report(
                data,
                path,
                source=sheet,
                tables=tables,
                beside=beside,
                rows=rows,
                **_secrets(records),
            )
        except ReportError as exc:
            raise InputError(str(exc)) from None
        if written == path:
            echo(f"report written: {path}")
        else:
            echo(
                f"report written: {written} ({path.name} could not be replaced: it is probably "
                "open in Excel or another program)"
            )


def _parse_tokens(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    tokens: dict[str, str] = {}
    for value in values:
        role, equals, token = value.partition("=")
        if not equals or not token:
            # Never echo the value: it may be a token.
            raise click.BadParameter("expected ROLE=VALUE with a non-empty value", ctx, param)
        if role not in ROLES:
            raise click.BadParameter(
                f"unknown role {role!r}; known roles: {', '.join(ROLES)}", ctx, param
            )
        tokens[role] = token
    return tokens


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the same clean stop as Ctrl-C


def _stop_cleanly_on_signals() -> None:
    """Ctrl-C, SIGTERM and Windows' Ctrl-Break stop cleanly, even when a parent started us
    with SIGINT ignored (a background job of a script)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    ctrl_break = getattr(signal, "SIGBREAK", None)  # Windows only
    if ctrl_break is not None:
        signal.signal(ctrl_break, _stop_on_sigterm)


# The sandbox's settings as options: (option, type, default, show the default, help); each
# is the SandboxConfig field of the same name.
_SANDBOX_SETTINGS: tuple[tuple[str, Any, Any, bool, str], ...] = (
    ("--host", str, "127.0.0.1", True, "Address to listen on."),
    ("--port", click.IntRange(0, 65535), 8080, True, "Port to listen on; 0 picks a free one."),
    (
        "--db",
        PathAsGiven(dir_okay=False, path_type=Path),
        None,
        False,
        "SQLite file to keep data and tokens in across restarts (default: memory only).",
    ),
    (
        "--seed-devices",
        click.IntRange(min=0),
        0,
        False,
        "Add this many realistic devices (the same ones every time).",
    ),
    (
        "--latency-ms",
        click.IntRange(min=0),
        0,
        False,
        "Delay every request by this many milliseconds.",
    ),
    (
        "--fail-rate",
        click.FloatRange(0, 1),
        0.0,
        False,
        "Share of requests (0..1) answered 500 without doing anything.",
    ),
    (
        "--rate-limit",
        click.FloatRange(min=0, min_open=True),
        None,
        False,
        "Requests per second; above it the answer is 429 with Retry-After.",
    ),
    (
        "--drop-after-commit-rate",
        click.FloatRange(0, 1),
        0.0,
        False,
        "Share of creates (0..1) that are committed and then get no answer at all.",
    ),
    (
        "--max-page-size",
        click.IntRange(1, MAX_PAGE_SIZE),
        MAX_PAGE_SIZE,
        True,
        "Clamp limit to this many rows per page.",
    ),
    ("--fault-seed", int, None, False, "Seed for the random faults, for reproducible runs."),
    (
        "--clock-offset-seconds",
        click.FloatRange(-366 * 86400, 366 * 86400),
        0.0,
        False,
        "Run the sandbox's clock this many seconds ahead of this machine's (negative: "
        "behind): createdAt, updatedAt, receivedAt and the Date header.",
    ),
    (
        "--silent-share",
        click.FloatRange(0, 1),
        0.05,
        True,
        "Share of devices (0..1; the same ones, by addr, every run) that send no uplinks.",
    ),
)


def sandbox_settings(command: F) -> F:
    """The options of _SANDBOX_SETTINGS, in their order on --help."""
    for name, kind, default, show, text in reversed(_SANDBOX_SETTINGS):
        command = click.option(name, type=kind, default=default, show_default=show, help=text)(
            command
        )
    return command


@main.command()
@sandbox_settings
@click.option(
    "--token",
    "tokens",
    multiple=True,
    callback=_parse_tokens,
    metavar="ROLE=VALUE",
    help=f"Fix the token of a role ({', '.join(ROLES)}); repeatable. Other roles get random ones.",
)
@click.option(
    "--ready-file",
    type=PathAsGiven(dir_okay=False, path_type=Path),
    help='Write {"url": ..., "tokens": {role: token}} here once listening (for scripts).',
)
@click.option(
    "--simulate-uplinks",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Every device that is not silent sends an uplink (parsed data) every SECONDS.",
)
@click.option("--verbose", is_flag=True, help="Log every request to stderr.")
def sandbox(ready_file: Path | None, **settings: Any) -> None:
    """Serve a local stand-in for the platform's REST API, to rehearse a sheet or to test.

    \b
    Examples:
      provisioner sandbox
      provisioner sandbox --port 0 --seed-devices 50 --ready-file sandbox.json
      provisioner sandbox --token org-admin=demo-org --simulate-uplinks 30
    """
    from provisioner.sandbox import Sandbox, SandboxConfig

    config = SandboxConfig(**settings)
    host, port, db = config.host, config.port, config.db
    try:
        server = Sandbox(config)
    except sqlite3.Error as exc:
        raise Failure(f"cannot use the database {db}: {exc}") from None
    except OSError as exc:  # the port is taken, or the address not this machine's: usage
        raise InputError(
            f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port "
            "(0 picks a free one) or --host"
        ) from None
    # A parent may have started us with SIGINT ignored (background jobs); Ctrl-C must stop us.
    _stop_cleanly_on_signals()
    try:
        echo(f"Platform sandbox at {server.url}/api")
        for role, token in server.tokens.items():
            echo(f"  token {role:<15} {token}")
        echo("Device types:")
        for type_id, name in DEVICE_TYPES.items():
            echo(f"  {type_id}  {name}")
        if ready_file is not None:
            server.write_ready_file(ready_file)
        echo("Ctrl-C to stop")
        server.serve_forever()
    except KeyboardInterrupt:
        echo("stopped")
    finally:
        server.stop()


@main.command()
@click.argument("sheet", type=PathAsGiven(dir_okay=False, path_type=Path))
@template_option
@tab_option
@report_option
@json_option
@show_option("rows with problems")
@click.pass_context
def validate(
    ctx: click.Context,
    sheet: Path,
    template_name: str | None,
    tab: str | None,
    reports: tuple[Path, ...],
    limit: int,
) -> None:
    """Check every row of SHEET, cell by cell, without touching the platform.

    Exit 0 when every row is valid, 1 when some are not, 2 when the sheet or the
    template cannot be read.

    \b
    Examples:
      provisioner validate site.xlsx
      provisioner validate site.xlsx --template lorawan-meter --report problems.html
      provisioner validate site.csv --json > problems.json
    """
    import gc

    machine = machine_output(ctx)

    # What the run makes lives until the process ends: the cycle collector stays
    # paused (validate_stream pauses it while it works) and then gets none of it to
    # walk again, only what is made after. Choosing the template may read the sheet.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _check_reports(reports, sheet)
        choice = _choose_template(ctx, sheet, template_name, tab=tab)
        template = choice.template
        echo(choice.line)
        # Each row is read, checked and dropped unless it has a problem; a JSON report
        # (every row) gets each as it is checked, in a spill file.
        json_wanted = machine is not None or any(p.suffix.lower() == ".json" for p in reports)
        with contextlib.ExitStack() as stack:
            spill = stack.enter_context(contextlib.closing(RowSpill())) if json_wanted else None
            try:
                report = validate_stream(sheet, template, spill, tab=tab)
            except SheetError as exc:
                raise InputError(str(exc)) from None
            # The console and the report files show the rows with problems.
            shown = report.listed()
            secrets = _secrets(report.records)
            click.echo(render_console(shown, limit=limit, color=_color(), **secrets))
            rows = StreamedRows(spill, list(report.problem_rows)) if spill is not None else None
            _write_reports(shown, reports, sheet, report.records, rows=rows)
            if machine:
                machine.emit(shown, report.records, rows)
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
    ctx.exit(0 if report.ok else 1)


@main.command(name="templates")
@click.argument("files", nargs=-1, metavar="[FILE.toml]...")
def templates_command(files: tuple[str, ...]) -> None:
    """List the built-in site templates with their descriptions (and any FILE.toml given).

    \b
    Examples:
      provisioner templates
      provisioner templates my-site.toml
    """
    names = [*list_templates(), *files]
    loaded = [_load_template(name) for name in names]
    width = max(len(name) for name in names)
    for name, template in zip(names, loaded, strict=True):
        echo(f"{name:<{width}}  {template.description}")
        if template.peer is not None:
            # A peer's format: whose files, and the documents its columns come from.
            echo(f"{'':<{width}}  from {template.peer.name}: {'; '.join(template.peer.docs)}")
    echo("\nits headers: provisioner template NAME; a blank workbook: --out FILE.xlsx")


@main.command(name="template")
@click.argument("name", metavar="NAME|FILE.toml")
@click.option(
    "--out",
    type=PathAsGiven(dir_okay=False, path_type=Path),
    metavar="FILE.xlsx",
    help="Write a blank workbook there (without it: print the template's headers).",
)
@click.option("--force", is_flag=True, help="Replace FILE.xlsx if it exists.")
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    default="en",
    show_default=True,
    help="The language of the workbook's headers, instructions and dropdowns.",
)
def template_command(name: str, out: Path | None, force: bool, lang: str) -> None:
    """Print a site template's headers, or with --out write a blank installer workbook.

    The workbook has the headers, identifier columns formatted as Text, dropdowns
    and an Instructions tab. The built-in templates: provisioner templates.

    \b
    Examples:
      provisioner template default
      provisioner template lorawan-meter --out site.xlsx
      provisioner template default --out baustelle.xlsx --lang de
    """
    template = _load_template(name)
    if out is None:
        _print_headers(template, lang)
        return
    not_a_layout = template.not_a_layout("a blank workbook")
    if not_a_layout is not None:
        raise InputError(not_a_layout)
    if out.suffix.lower() != ".xlsx":
        raise InputError(f"{out}: the blank workbook is an Excel file; name it *.xlsx")
    exists = f"{out} exists already; choose another name or add --force to replace it"
    if out.exists() and not force:
        raise InputError(exists)
    from provisioner.blank_sheet import write_blank_workbook
    from provisioner.files import reason

    try:
        write_blank_workbook(template, out, lang, replace=force)
    except FileExistsError:
        raise InputError(exists) from None  # it appeared while the workbook was made
    except OSError as exc:
        raise InputError(f"cannot write {out}: {reason(exc)}") from None
    echo(f"blank workbook for template '{template.name}' written: {out}")


@main.command()
@click.argument("sheet", type=PathAsGiven(dir_okay=False, path_type=Path))
@template_option
@tab_option
@platform_options
@click.option(
    "--lookup",
    type=click.Choice(LOOKUPS),
    default="auto",
    show_default=True,
    help="How to find the devices already on the platform: one query per key, a scan of "
    "all devices, the site tag, or the cheapest of these by the sheet's size.",
)
@click.option(
    "--out",
    type=PathAsGiven(dir_okay=False, path_type=Path),
    metavar="PLAN.json",
    help="Save the plan, for `apply --plan`.",
)
@click.option(
    "--journal",
    "journal_path",
    type=PathAsGiven(dir_okay=False, path_type=Path),
    help="The journal apply keeps (default: beside the sheet, <sheet>.journal.jsonl), "
    "read only: a downlink a run queued is not queued again, and the tags this sheet's runs "
    "put on a device are the sheet's to take off, as apply decides.",
)
@report_option
@json_option
@click.option(
    "--show",
    "show",
    multiple=True,
    metavar="N|creates",
    callback=_show_plan,
    help="How many rows that need attention to list on the console [default: 20]; "
    "`creates` also lists what apply sends for each row it creates or queues. "
    "Repeatable: --show creates --show 50.",
)
@click.pass_context
def plan(
    ctx: click.Context,
    sheet: Path,
    template_name: str | None,
    tab: str | None,
    platform: PlatformOptions,
    lookup: str,
    out: Path | None,
    journal_path: Path | None,
    reports: tuple[Path, ...],
    show: tuple[int, bool],
) -> None:
    """Show what apply would do with SHEET on the platform, without writing anything.

    Each row is create, exists, differs (with the fields that differ) or blocked
    (with the reason); --show creates lists what each create sends. Exit 0 when
    nothing is blocked, 1 when something is, 2 for unreadable input, 3 when the
    platform is unreachable or refuses the token.

    \b
    Examples:
      provisioner plan site.xlsx --url https://platform.lobaro.com
      provisioner plan site.xlsx --show creates --report plan.html
      provisioner plan site.xlsx --out plan.json
      provisioner plan site.xlsx --json > plan-report.json
    """
    from provisioner.journal import default_journal
    from provisioner.plan import make_plan

    machine = machine_output(ctx)

    _check_reports((*reports, *([out] if out else [])), sheet)
    limit, creates = show
    choice = _choose_template(ctx, sheet, template_name, tab=tab)
    echo(choice.line)
    with platform_run(ctx, platform) as run:
        run.live.reading(f"reading {sheet.name}")
        result = make_plan(
            sheet,
            choice.template,
            run.client,
            lookup,
            journal=journal_path or default_journal(sheet),
            progress=run.live.reading,
            tab=tab,
        )
    data = result.to_dict()
    click.echo(
        render_console(
            data,
            limit=limit,
            color=_color(),
            creates=creates,
            **_secrets(result.validation.records),
        )
    )
    echo(result.lookup.summary())
    if result.sending and not creates:
        rows = "1 row is" if result.sending == 1 else f"{result.sending} rows are"
        echo(f"{rows} created or queued: --show creates lists what apply sends for each")
    if out is not None:
        # Not beside: `apply --plan` would read the old plan under the name given.
        _write_reports(data, (out,), sheet, None, beside=False)
    _write_reports(data, reports, sheet, result.validation.records)
    if machine:
        machine.emit(data, result.validation.records)
    ctx.exit(result.exit_code)


def _resume_command(
    sheet: Path,
    template_ref: str,
    journal: Path,
    url: str,
    token_file: Path | None,
    update: tuple[bool, frozenset[str] | None] = (False, None),
    shell: str | None = None,
    tab: str | None = None,
) -> str:
    """The same run again (the URL is no secret; the token stays where it came from),
    quoted for ``shell`` (``user_shell()``'s words; by default the user's)."""
    words = ["provisioner", "apply", str(sheet), "--template", template_ref]
    if tab is not None:
        words += ["--tab", tab]
    words += ["--url", url]
    words += ["--journal", str(journal)]
    if token_file is not None:
        words += ["--token-file", str(token_file)]
    if update[0]:
        words += [f"--update={','.join(sorted(update[1]))}" if update[1] else "--update"]
    return shell_words([*words, "--yes"], shell or user_shell())


def user_shell(platform: str = sys.platform, environ: Mapping[str, str] = os.environ) -> str:
    """The shell a printed command is pasted into: "posix", "cmd" or "powershell".

    On Windows PSModulePath is set for cmd.exe too (the system's module folders), but only
    PowerShell puts the user's own modules folder (Documents\\WindowsPowerShell\\Modules,
    Documents\\PowerShell\\Modules) in it."""
    if platform != "win32":
        return "posix"
    folders = [f.rstrip("\\").lower() for f in environ.get("PSModulePath", "").split(";")]
    own = ("\\windowspowershell\\modules", "\\powershell\\modules")
    profile = environ.get("USERPROFILE", "").rstrip("\\").lower()
    for folder in folders:
        if folder.endswith(own) and (
            "\\documents\\" in folder or (profile and folder.startswith(profile + "\\"))
        ):
            return "powershell"
    return "cmd"


_PLAIN_WORD = re.compile(r"[\w\-./:\\=]+")  # needs no quotes in cmd.exe nor in PowerShell


def shell_words(words: Sequence[str], shell: str) -> str:
    """``words`` as one command line for ``shell`` ("posix", "cmd", "powershell")."""
    if shell == "posix":
        return " ".join(shlex.quote(w) for w in words)
    quote = _powershell_quote if shell == "powershell" else _cmd_quote
    return " ".join(w if _PLAIN_WORD.fullmatch(w) else quote(w) for w in words)


def _cmd_quote(word: str) -> str:
    """In double quotes, as Windows programs split their command line (subprocess's
    list2cmdline): a quote as \\", the backslashes before it and at the end doubled.
    Inside the quotes cmd.exe takes & | < > ^ ( ) as they are."""
    word = re.sub(r'(\\*)"', lambda m: m.group(1) * 2 + '\\"', word)
    return '"' + re.sub(r"(\\+)$", r"\1\1", word) + '"'


def _powershell_quote(word: str) -> str:
    """In single quotes, where PowerShell expands nothing; a quote inside doubled, also
    the typographic ones PowerShell takes for quotes too (’ ‘ ‚ ‛)."""
    return "'" + re.sub("(['\u2018\u2019\u201a\u201b])", r"\1\1", word) + "'"


@main.command()
@click.argument("sheet", type=PathAsGiven(dir_okay=False, path_type=Path))
@template_option
@tab_option
@platform_options
@click.option(
    "--journal",
    "journal_path",
    type=PathAsGiven(dir_okay=False, path_type=Path),
    help="The journal file (default: beside the sheet, <sheet>.journal.jsonl).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=32,
    show_default=True,
    help="The most requests in flight at once; the run finds how many the platform "
    "takes, up to this, and slows down by itself when the platform limits it.",
)
@click.option(
    "--max-rps",
    type=click.FloatRange(min=0, min_open=True),
    help="At most this many requests per second, in any one second.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before writing to the platform.")
@click.option(
    "--plan",
    "saved_plan",
    type=PathAsGiven(exists=True, dir_okay=False, path_type=Path),
    metavar="PLAN.json",
    help="Apply a plan saved by `plan --out`, after checking that it still holds.",
)
@report_option
@json_option
@click.option(
    "--lookup",
    type=click.Choice(LOOKUPS),
    default="auto",
    show_default=True,
    help="How to find the devices already on the platform (as for plan).",
)
@click.option(
    "--update",
    "update",
    metavar="[FIELDS]",
    is_flag=False,
    flag_value="*",
    default=None,
    callback=lambda ctx, param, value: _update_fields(value),
    help="Also update the devices that differ from the sheet (only fields the sheet fills; "
    "the addr never). FIELDS limits it, e.g. --update description,tags.",
)
@click.option(
    "--keep-going",
    is_flag=True,
    help="Send every row even when the first 10 all fail with the same answer.",
)
@click.pass_context
def apply(
    ctx: click.Context,
    sheet: Path,
    template_name: str | None,
    tab: str | None,
    platform: PlatformOptions,
    journal_path: Path | None,
    concurrency: int,
    max_rps: float | None,
    yes: bool,
    saved_plan: Path | None,
    reports: tuple[Path, ...],
    lookup: str,
    update: tuple[bool, frozenset[str] | None],
    keep_going: bool,
) -> None:
    """Create on the platform what the plan for SHEET says is missing, exactly once.

    Plans afresh, shows the totals and asks before writing (--yes skips the
    question). Every create is journalled, so the same command continues
    safely after a crash, Ctrl-C or network loss. With --update, devices that
    differ from the sheet are brought in line (each skipped if it changed on
    the platform since the plan). Results go to <sheet>.results.xlsx. Exit 0
    all done, 1 some rows failed, blocked or skipped, 2 unusable input, 3 the
    platform refused or is unreachable, 130 interrupted.

    \b
    Examples:
      provisioner apply site.xlsx --url https://platform.lobaro.com
      provisioner apply site.xlsx --yes --report results.html
      provisioner apply site.xlsx --update description,tags
      provisioner apply site.xlsx --plan plan.json --yes --json > results.json
    """
    from provisioner.apply import apply_sheet, nothing_sent
    from provisioner.journal import default_journal

    machine = machine_output(ctx)

    journal_path = journal_path or default_journal(sheet)
    _check_reports(reports, sheet)
    choice = _choose_template(ctx, sheet, template_name, saved_plan, tab)
    template = choice.template
    echo(choice.line)
    with platform_run(ctx, platform, max_rps=max_rps, max_connections=concurrency + 4) as run:
        resume = _resume_command(
            sheet, template.ref, journal_path, run.client.url, platform.token_file, update, tab=tab
        )
        # The second Ctrl-C while waiting for requests in flight: stop at once.
        run.interrupted = f"stopped at once; the journal is intact. Resume with:\n  {resume}"
        run.at_once = True
        console = _ApplyConsole(run, yes)
        run.live.reading(f"reading {sheet.name}")
        result = apply_sheet(
            sheet,
            template,
            run.client,
            journal_path=journal_path,
            lookup=lookup,
            saved_plan=saved_plan,
            concurrency=concurrency,
            reports=reports,
            events=console,
            stop=run.stop,
            update=update[0],
            update_fields=update[1],
            keep_going=keep_going,
            tab=tab,
        )
    data = result.to_dict()
    records = console.records
    if result.sent:
        click.echo(render_console(data, limit=20, color=_color(), **_secrets(records)))
    else:
        # The plan shown before lists the rows that are blocked or differ.
        echo(nothing_sent(result, listed=records is not None))
    for note in result.notes[console.notes_shown :]:
        echo(note)
    for path in ([result.results] if result.results else []) + result.reports:
        echo(f"report written: {path}")
    if result.run:
        echo(f"journal: {journal_path}")
    if result.stop:
        # What the installer does next, by why the run stopped.
        then = {
            StopKind.INTERRUPTED: "interrupted cleanly; resume with:\n  {resume}",
            StopKind.SAME_FAILURE: "{stopped}",
            StopKind.NO_UPDATES: "{stopped}\nrun apply without --update to do the rest",
            StopKind.REFUSED: "{stopped}\nfix the token, then resume with:\n  {resume}",
        }.get(result.stop, "{stopped}\nresume with:\n  {resume}")
        echo(then.format(stopped=result.stopped, resume=resume), err=True)
    if machine:
        machine.emit(data, records)
    run.exit(result.exit_code)


class _ApplyConsole(Console):
    """apply on the console: the fresh plan in place of the spinner, then the question."""

    def __init__(self, run: PlatformRun, yes: bool) -> None:
        super().__init__(run, yes)
        self.notes_shown = 0  # the notes printed with the plan, not again after the run
        self.records: SiteRecords | None = None

    def planned(self, plan: Any, work: Any) -> None:
        self.records = plan.validation.records
        self.live.end()  # the spinner of the lookup: the plan is printed in its place
        click.echo(
            render_console(plan.to_dict(), limit=10, color=_color(), **_secrets(self.records))
        )
        for note in work.notes:
            echo(note)
        self.notes_shown = len(work.notes)

    def confirm(self, what: Any) -> bool:
        work: Work = what
        if self.yes:
            return True
        if not sys.stdin.isatty():
            raise InputError(
                "apply writes to the platform: add --yes to confirm when not running on a "
                "terminal; nothing was written"
            )
        _show_updates(work)
        try:
            rows = "1 row" if work.pending == 1 else f"{work.pending} rows"
            return yes_or_no(f"Send {rows} to {self.url}?")
        except click.Abort:  # Ctrl-C or end of input at the question
            raise Interrupted("interrupted at the question") from None


def _print_headers(template: SiteTemplate, lang: str) -> None:
    """Each tab's headers as the template reads them: the one a blank workbook in ``lang``
    has, then the others it accepts."""
    echo(f"{template.name}: {template.description}")
    for part, spec in (
        ("devices", template.devices),
        ("users", template.users),
        ("downlinks", template.downlinks),
    ):
        tab = tab_in(spec, lang)
        tabs = ", ".join(dict.fromkeys([tab, spec.tab, *spec.tab_aliases]))
        echo(f"\n{part} (tab {tabs}):")
        for field_name, aliases in spec.columns.items():
            header = header_in(spec, field_name, lang)
            others = [a for a in aliases if header_key(a) != header_key(header)]
            also = f"  (also: {', '.join(others)})" if others else ""
            mark = " *" if part == "devices" and field_name in ("addr", template.match_key) else ""
            echo(f"  {header}{mark}{also}")
        if spec.config_prefix:
            echo(f"  {spec.config_prefix}<key>  (a key of the initial configuration)")
        for field_name, made in spec.derived.items():
            echo(f"  without {field_name}: {made.text}")
        if spec.root_keys is not None:
            keys = spec.root_keys
            version = f" unless {' or '.join(keys.version)} says 1.1.x" if keys.version else ""
            echo(f"  a LoRaWAN 1.0.x device's AppKey: {spec.columns[keys.app_key_1_0][0]}{version}")
        if spec.not_sent:
            echo(f"  not sent (no place on the platform): {', '.join(spec.not_sent)}")
        for refusal in spec.refusals:
            allowed = f" unless {refusal.allow.pattern}" if refusal.allow is not None else ""
            echo(f"  refused when filled{allowed}: {', '.join(refusal.headers)}")
    echo("\n* required; match key: " + template.match_key)


@main.command()
@click.argument("sheet", type=PathAsGiven(dir_okay=False, path_type=Path))
@template_option
@tab_option
@platform_options
@click.option(
    "--since",
    metavar="TIME",
    help="Count data from this time on (06.12.2026 08:00, 6.12. 8:00, 2026-12-06T08:00, or "
    "back from now: 2h, 90m), "
    "instead of each device's install time.",
)
@click.option("--watch", is_flag=True, help="Ask again for the silent devices until all speak.")
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=15,
    show_default=True,
    help="Seconds between the checks of --watch.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=1800,
    show_default=True,
    help="How long --watch waits for the last device, in seconds.",
)
@click.option(
    "--journal",
    "journal_path",
    type=PathAsGiven(dir_okay=False, path_type=Path),
    help="apply's journal, for the time each device was created "
    "(default: beside the sheet, <sheet>.journal.jsonl).",
)
@click.option(
    "--data",
    "way",
    type=click.Choice(VERIFY_WAYS),
    default="auto",
    show_default=True,
    help="How to ask for the data: the organisation's at once, or per device.",
)
@report_option
@json_option
@show_option("rows that need a visit")
@click.pass_context
def verify(
    ctx: click.Context,
    sheet: Path,
    template_name: str | None,
    tab: str | None,
    platform: PlatformOptions,
    since: str | None,
    watch: bool,
    interval: float,
    timeout: float,
    journal_path: Path | None,
    way: str,
    reports: tuple[Path, ...],
    limit: int,
) -> None:
    """Which devices of SHEET have sent data since they were installed.

    Each row is online (data since its install: the last time and how many
    records), silent (on the platform, no data yet), missing (not on the
    platform) or invalid. The install time is the device's createdAt, else when
    apply created it (its journal); --since overrides both; times are judged on
    the platform's clock. Results
    go to <sheet>.verify.xlsx with a Silent tab of the devices to visit. Exit 0
    all online, 1 some silent, missing or invalid, 2 unusable input, 3 the
    platform refused or is unreachable, 130 interrupted.

    \b
    Examples:
      provisioner verify site.xlsx --url https://platform.lobaro.com
      provisioner verify site.xlsx --watch --timeout 3600
      provisioner verify site.xlsx --since 2h --report visits.html
      provisioner verify site.xlsx --json > verify.json
    """
    from provisioner.journal import default_journal
    from provisioner.verify import Finding, parse_since, verify_sheet

    machine = machine_output(ctx)

    _check_reports(reports, sheet)
    results = sheet.with_name(f"{sheet.stem}.verify.xlsx")
    _check_reports((results,), sheet)
    try:
        since_time = parse_since(since) if since is not None else None
    except ProvisionerError as exc:
        raise InputError(str(exc)) from None
    choice = _choose_template(ctx, sheet, template_name, tab=tab)
    echo(choice.line)
    with platform_run(ctx, platform, unit="devices") as run:
        run.interrupted = "interrupted before the first check: nothing was written"
        console = _VerifyConsole(run, watch)
        run.live.reading(f"reading {sheet.name}")
        try:
            finding = Finding(journal_path or default_journal(sheet), since_time, way)
            result = verify_sheet(
                sheet,
                choice.template,
                run.client,
                finding,
                watch=watch,
                interval=interval,
                timeout=timeout,
                events=console,
                stop=run.stop,
                tab=tab,
            )
        except KeyboardInterrupt:
            run.stop.set()
            if console.latest is None:
                raise
            result = console.latest  # the state of the last check is written
            result.stop = StopKind.INTERRUPTED
    data = result.to_dict()
    records = result.records
    click.echo(render_console(data, limit=limit, color=_color(), **_secrets(records)))
    found = result.lookup.summary().removeprefix("lookup: ") if result.lookup else ""
    lookup = f"; finding the devices: {found}" if found else ""
    echo(result.asked() + lookup)
    if result.clock:
        echo(result.clock)
    _write_reports(data, (results, *reports), sheet, records)
    if result.stop == StopKind.INTERRUPTED:
        echo("interrupted: the state of the last check is written", err=True)
    elif result.stopped:
        echo(result.stopped, err=True)
    elif watch and result.waiting:
        from provisioner.verify import sheet_rows

        echo(f"still silent after {int(timeout)} s: {sheet_rows(result.waiting)}", err=True)
    if machine:
        machine.emit(data, records)
    ctx.exit(result.exit_code)


class _VerifyConsole(Console):
    """verify on the console: with --watch, a live line after each round."""

    def __init__(self, run: PlatformRun, watch: bool) -> None:
        super().__init__(run)
        self.watch = watch
        self.latest: VerifyResult | None = None  # what an interrupt writes
        self.online: set[tuple[str, int]] = set()  # the rows online at the last check

    def checked(self, result: Any, left: float) -> None:
        from provisioner.verify import came_online

        if self.watch and self.latest is not None:
            for line in came_online(self.online, result):
                self.live.say(line)
        self.latest = result
        self.online = {(row.sheet, row.row) for row in result.rows if row.status == "online"}
        if self.watch:
            totals = result.totals
            self.live.line(
                f"{totals['online']}/{len(result.rows)} online · {totals['silent']} silent"
                f" · {int(left) // 60}:{int(left) % 60:02d} left"
            )


@main.command()
@click.option(
    "--out",
    required=True,
    type=PathAsGiven(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Where to write the sheet: .xlsx (with the platform's users and instructions) or .csv "
    "(the devices, as the platform's own import takes them).",
)
@export_template_option
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="TAG",
    help="Export the devices carrying this tag; repeatable: all of them. Default: the "
    "template's site_tag.",
)
@click.option("--all", "all_devices", is_flag=True, help="Export every device on the platform.")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    default="en",
    show_default=True,
    help="The language of the sheet's headers, tabs and instructions (headers the template "
    "reads, so the sheet reads back).",
)
@platform_options_without_reports
@json_option
@click.pass_context
def export(
    ctx: click.Context,
    out: Path,
    template_name: str | None,
    tags: tuple[str, ...],
    all_devices: bool,
    force: bool,
    lang: str,
    platform: PlatformOptions,
) -> None:
    """Write the platform's devices (and users) as a sheet in a site template's layout.

    The sheet reads back through the same template: validate finds nothing and
    plan says every row exists, so it can be corrected and applied with
    --update. What the template has no column for is named in the summary. Exit
    0 written, 1 written but devices may be missing (the platform's device list
    changed while it was read, on a platform that cannot be read by id), 2
    unusable input (no --tag or --all, FILE exists without --force), 3 the
    platform refused or is unreachable.

    \b
    Examples:
      provisioner export --out site.xlsx --url https://platform.lobaro.com
      provisioner export --out site.xlsx --tag Site-HH-04 --template lorawan-meter
      provisioner export --out all.csv --all --json > export.json
    """
    from provisioner.export import check_export, export_site

    machine = machine_output(ctx)

    template = _choose_template(ctx, None, template_name).template
    try:
        check_export(out, template, tags=tags, all_devices=all_devices, force=force)
    except ProvisionerError as exc:
        raise InputError(str(exc)) from None
    with platform_run(ctx, platform) as run:
        run.interrupted = f"interrupted: {out} was not written"
        run.live.reading("reading the platform")
        result = export_site(
            run.client,
            template,
            out,
            tags=tags,
            all_devices=all_devices,
            force=force,
            progress=run.live.line,
            lang=lang,
        )
    for line in result.lines():
        echo(line)
    if machine:
        machine.emit(result.to_dict())
    ctx.exit(result.exit_code)


def _update_fields(value: str | None) -> tuple[bool, frozenset[str] | None]:
    """--update's value: (update?, the deviceInput fields; None: every one)."""
    from provisioner.changes import UPDATE_NAMES

    if value is None:
        return False, None
    if value == "*":
        return True, None
    if Path(value).suffix.lower() in (".xlsx", ".xlsm", ".xls", ".ods", ".csv"):
        raise click.BadParameter(
            f"{value!r} is a sheet, not a list of fields: put the sheet first "
            "(provisioner apply SHEET --update) or write --update=FIELDS"
        )
    chosen: set[str] = set()
    for name in filter(None, (part.strip() for part in value.split(","))):
        known = UPDATE_NAMES.get(name) or UPDATE_NAMES.get(
            next((k for k in UPDATE_NAMES if k.lower() == name.lower()), "")
        )
        if known is None:
            hint = difflib.get_close_matches(name, list(UPDATE_NAMES), n=1)
            also = f" (did you mean {hint[0]}?)" if hint else ""
            raise click.BadParameter(
                f"{name!r} is not a field an update can change{also}; "
                f"these can: {', '.join(UPDATE_NAMES)}"
            )
        chosen.add(known)
    if not chosen:
        raise click.BadParameter("name at least one field, e.g. --update description,tags")
    return True, frozenset(chosen)


# At most this many rows' changes are shown before the question.
SHOWN_UPDATES = 20


def _show_updates(work: Work) -> None:
    """The changes of the devices to update, as a diff, before the installer says yes."""
    tasks = [t for t in work.tasks if t.update is not None]
    if not tasks:
        return
    echo(f"{'1 device' if len(tasks) == 1 else f'{len(tasks)} devices'} will be updated:")
    for task in tasks[:SHOWN_UPDATES]:
        assert task.update is not None
        echo(f"  row {task.record.row} ({task.record.key}):")
        for line in task.update.lines():
            echo(f"    {line}")
    if len(tasks) > SHOWN_UPDATES:
        echo(
            f"  and {len(tasks) - SHOWN_UPDATES} more: every change is in the plan's reports "
            "(provisioner plan SHEET --report plan.html)"
        )


@main.command()
@click.argument("sheet", type=PathAsGiven(dir_okay=False, path_type=Path))
@platform_options
@click.option(
    "--journal",
    "journal_path",
    type=PathAsGiven(dir_okay=False, path_type=Path),
    help="The journal of the runs (default: beside the sheet, <sheet>.journal.jsonl).",
)
@click.option(
    "--run", "run_id", metavar="RUN_ID", help="Take back this run only (see the journal)."
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before deleting and restoring.")
@report_option
@json_option
@click.pass_context
def undo(
    ctx: click.Context,
    sheet: Path,
    platform: PlatformOptions,
    journal_path: Path | None,
    run_id: str | None,
    yes: bool,
    reports: tuple[Path, ...],
) -> None:
    """Take back what apply's runs of SHEET did on the platform (all runs, or --run).

    Devices a run created are deleted (their queued downlinks go with them), devices
    it updated are put back to their values before the update. A device changed
    since the run is kept and listed; nothing the journal did not create is deleted;
    users are listed (the API cannot delete them). On a terminal you type the number
    of devices to delete. Exit 0 all taken back (users aside), 1 some kept as changed
    or without an answer on record, 2 unusable input (a journal line that cannot be read), 3 the platform
    refused, is unreachable or cannot delete.

    \b
    Examples:
      provisioner undo site.xlsx --url https://platform.lobaro.com
      provisioner undo site.xlsx --run 20261206T080000Z-1a2b3c --yes
      provisioner undo site.xlsx --yes --report undo.html --json > undo.json
    """
    from provisioner.journal import default_journal
    from provisioner.undo import undo_sheet

    machine = machine_output(ctx)
    _check_reports(reports, sheet)
    for path in reports:
        if path.suffix.lower() == ".xlsx":
            # The xlsx report marks the sheet's rows; undo's rows are the platform's devices.
            raise InputError(
                f"report {path}: undo's report is .json, .csv or .html (its rows are devices "
                "on the platform, not rows of the sheet to mark)"
            )
    journal_path = journal_path or default_journal(sheet)
    if not journal_path.exists():
        raise InputError(f"{journal_path}: no journal, so nothing to take back (see --journal)")
    with platform_run(ctx, platform, unit="devices") as run:
        run.interrupted = "interrupted before anything was changed"
        run.at_once = True  # a second Ctrl-C while deleting: the journal holds what was done
        run.live.reading("reading the platform")
        result = undo_sheet(
            sheet,
            run.client,
            journal_path=journal_path,
            run=run_id,
            events=_UndoConsole(run, yes),
            stop=run.stop,
        )
    if not (result.to_delete or result.to_restore) and not any(
        r.status in ("deleted", "restored", "failed", "not run") for r in result.rows
    ):
        echo(
            "nothing to take back: "
            + (
                ", ".join(f"{v} {k}" for k, v in result.totals.items())
                or "the runs changed nothing"
            )
        )
        _show_kept(result)
    else:
        echo(" · ".join(f"{k} {v}" for k, v in result.totals.items()))
        failed = [r for r in result.rows if r.status == "failed"]
        for row in failed[:SHOWN_UPDATES]:
            echo(f"  failed: device {row.platform_id} ({row.key}): {row.message}")
        _show_kept(result)
    for warning in result.warnings:
        echo(f"warning: {warning}", err=True)
    echo(f"journal: {journal_path}")
    data = result.to_dict()
    _write_reports(data, reports, sheet, None)
    if result.stopped:
        echo(result.stopped, err=True)
    if machine:
        machine.emit(data)
    run.exit(result.exit_code)  # a second Ctrl-C: at once, without waiting for threads


class _UndoConsole(Console):
    """undo on the console: what it will delete and put back, then the question."""

    def confirm(self, what: Any) -> bool:
        plan: UndoResult = what
        self.live.end()  # the spinner of the reading: the question is asked in its place
        deletes, restores = plan.to_delete, plan.to_restore
        echo(
            f"undo on {self.url}: {counted(len(deletes), 'device')} to delete, "
            f"{len(restores)} to put back"
        )
        for row in [*deletes, *restores][:SHOWN_UPDATES]:
            echo(f"  {row.status} device {row.platform_id} ({row.key}): {row.message}")
        if len(deletes) + len(restores) > SHOWN_UPDATES:
            echo(f"  and {len(deletes) + len(restores) - SHOWN_UPDATES} more")
        _show_kept(plan)
        if self.yes:
            return True
        if not sys.stdin.isatty():
            raise InputError(
                "undo deletes devices: add --yes to confirm when not running on a terminal; "
                "nothing was changed"
            )
        try:
            if deletes:
                return _typed_number(len(deletes))
            return yes_or_no(f"Put back {counted(len(restores), 'device')}?")
        except click.Abort:
            return False


# The answers to a yes/no question: English and German, in any case; Enter says no.
YES_ANSWERS = ("y", "yes", "j", "ja")
NO_ANSWERS = ("n", "no", "nein")


def yes_or_no(question: str) -> bool:
    """The installer's answer to ``question``: y/yes/j/ja or n/no/nein (Enter: no); any
    other answer asks again. click.confirm knows only y and n."""
    while True:
        answer = click.prompt(f"{question} [y/N]", default="", show_default=False)
        if answer.strip().casefold() in YES_ANSWERS:
            return True
        if answer.strip().casefold() in ("", *NO_ANSWERS):
            return False
        echo(f"{answer.strip()!r} is neither yes nor no: answer y or n (j/ja, n/nein as well)")


def _typed_number(count: int, tries: int = 3) -> bool:
    """Whether the installer typed ``count``: a mistyped number asks again (``tries`` in
    all, what was read from the platform stands); an empty answer or "n" says no."""
    question = f"Type {count} (the number of devices to delete) to go on"
    for left in range(tries - 1, -1, -1):
        typed = click.prompt(question, default="", show_default=False).strip()
        if typed == str(count):
            return True
        if typed.casefold() in ("", *NO_ANSWERS):
            return False
        if left:
            echo(f"{typed!r} is not {count}: {left} {'try' if left == 1 else 'tries'} left")
    return False


def _show_kept(result: Any) -> None:
    kept = [r for r in result.rows if r.status in ("kept", "no answer on record")]
    for row in kept[:SHOWN_UPDATES]:
        what = f"{row.kind} {row.platform_id}" if row.platform_id else row.kind
        echo(f"  {row.status} {what} ({row.key}): {row.message}")
    if len(kept) > SHOWN_UPDATES:
        echo(f"  and {len(kept) - SHOWN_UPDATES} more kept")


@main.command()
@click.option(
    "--folder",
    type=PathAsGiven(file_okay=False, path_type=Path),
    default=Path("provisioner-demo"),
    show_default=True,
    help="Where to leave the demo's files (a new folder; -2, -3... is added if it exists).",
)
def demo(folder: Path) -> None:
    """The whole story on a local sandbox: validate, plan, apply with faults and a crash, resume.

    Takes under a minute and touches nothing but a new folder and a sandbox in memory.

    \b
    Examples:
      provisioner demo
      provisioner demo --folder demo-files
    """
    from provisioner.demo import fresh_folder, run_demo

    ok, files = run_demo(fresh_folder(folder), echo)
    echo("\nFiles left for you to open:")
    for path in files:
        echo(f"  {path}")
    if not ok:
        raise Failure("the demo did not end as it should: see the steps above")


@main.command(name="help")
@click.argument("command", required=False, metavar="[COMMAND]")
@click.pass_context
def help_command(ctx: click.Context, command: str | None) -> None:
    """Show a command's help, as COMMAND --help does (without COMMAND: this tool's).

    \b
    Examples:
      provisioner help
      provisioner help apply
    """
    assert ctx.parent is not None  # the group's context
    if command is None:
        click.echo(main.get_help(ctx.parent))
        return
    found = main.get_command(ctx.parent, command)
    if found is None:
        names = main.list_commands(ctx.parent)
        hint = difflib.get_close_matches(command, names, n=1)
        also = f" (did you mean {hint[0]}?)" if hint else ""
        raise InputError(f"no command {command!r}{also}; the commands: {', '.join(names)}")
    with click.Context(found, info_name=command, parent=ctx.parent) as sub:
        click.echo(found.get_help(sub))
