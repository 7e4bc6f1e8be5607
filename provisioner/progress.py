"""The console's live display while the platform is read or written.

On a terminal (stderr a tty), rich draws one line: a spinner with what is being
read, then a bar with done/total, rate, ETA and failures while rows are sent.
Messages (``say``) go above it. ``end()`` finishes the line with a newline and
shows the cursor again; every command calls it on every way out, also before a
question is asked. Without a terminal there is no live line: plain lines every
few seconds, with no escape codes. rich is imported only when a live line is
shown, so that commands that never show one start as fast as before. Every text
passes ``text.visible``: what the platform says must not drive the terminal.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

import click

from provisioner.text import visible

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

# Without a terminal: at most one line of progress this often (seconds).
PLAIN_EVERY = 5.0


class Progress:
    """One live line on stderr (a spinner, then a bar); plain lines without a terminal.

    Thread-safe: the bar and ``say`` are called from the workers that send."""

    def __init__(
        self,
        *,
        color: bool = True,
        stream: TextIO | None = None,
        unit: str = "rows",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self._clock = clock
        self.unit = unit  # what the bar counts: rows sent, devices asked
        self.live = self.stream.isatty()
        self.color = color
        self._lock = threading.RLock()
        self._display: RichProgress | None = None
        self._task: TaskID | None = None
        self._total: int | None = None  # the bar's total; None: the spinner shows
        self._started = clock()
        self._last_plain = 0.0  # the bar's first plain line is printed at once
        # Where the plain bar began (when, how many done): its rate counts from there, not
        # from the reading before it, which would make the rate small and the ETA huge.
        self._bar_start: tuple[float, int, int] | None = None  # (time, done, total)
        # The plain bar's last state, when it was not printed (a line every few seconds):
        # the end prints it, so the last line agrees with the summary that follows.
        self._plain_unshown: tuple[int, int, int] | None = None
        self._closed = False  # a worker finishing late draws nothing after close()
        # The pace's words beside the bar ("8 at once, paced at 27 requests/s"), if any.
        self.pace: Callable[[], str] | None = None

    # --- what the commands and the library call ---------------------------------------------

    def reading(self, text: str) -> None:
        """What is being read from the platform: the spinner's text. Without a terminal a
        line only when it takes a while (every few seconds)."""
        if self._closed:
            return
        text = visible(text)
        if self.live:
            self._spin(text)
            return
        now = self._clock()
        if now - max(self._started, self._last_plain) >= PLAIN_EVERY:
            self._last_plain = now
            click.echo(text, err=True)

    def line(self, text: str) -> None:
        """A status that replaces the live line (a plain line each time without a terminal)."""
        if self._closed:
            return
        text = visible(text)
        if self.live:
            self._spin(text)
        else:
            click.echo(text, err=True)

    def __call__(self, done: int, total: int, failed: int = 0) -> None:
        """The bar: ``done`` of ``total`` rows, ``failed`` of them failed."""
        if self._closed:
            return
        if not self.live:
            self._plain_bar(done, total, failed)
            return
        with self._lock:
            if self._closed:
                return
            display, task = self._show("", total, done)
            if self._total != total:
                self._total = total
                display.reset(task, total=total, completed=done, description="", failed=failed)
            else:
                display.update(task, completed=done, failed=failed)

    def say(self, message: str) -> None:
        """A line of its own above the live line, also while it shows."""
        message = visible(message, keep="\n")
        with self._lock:
            if self._display is not None:
                self._display.console.print(
                    message, markup=False, highlight=False, emoji=False, soft_wrap=True
                )
                return
        click.echo(message, err=True)

    def end(self) -> None:
        """Finish the live line (a newline, the cursor shown again); a spinner is cleared.
        Safe to call at any time, any number of times."""
        with self._lock:
            unshown, self._plain_unshown = self._plain_unshown, None
            if unshown is not None:
                self._plain_bar(*unshown, last=True)
            display, self._display, self._task = self._display, None, None
            spinner = self._total is None
            self._total = None
            if display is not None:
                display.live.transient = spinner  # what was read the command sums up
                display.stop()

    def close(self) -> None:
        """End the live line for good: what is called after it shows nothing (``say``
        prints a plain line)."""
        with self._lock:
            self._closed = True
        self.end()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    # --- the two ways of showing it ---------------------------------------------------------

    def _spin(self, text: str) -> None:
        with self._lock:
            if self._closed:
                return
            display, task = self._show(text)
            if self._total is not None:
                self._total = None
                # rich's reset keeps the total when given None (the bar would stay, its text
                # unseen: a watch's line after each round's reads): a new task spins.
                display.remove_task(task)
                self._task = display.add_task(text, total=None, completed=0, failed=0)
            else:
                display.update(task, description=text)

    def _show(
        self, text: str, total: int | None = None, done: int = 0
    ) -> tuple[RichProgress, TaskID]:
        """The live display, started on first use (rich is imported here, not before)."""
        if self._display is None or self._task is None:
            self._display = _rich_display(self.stream, self.color, self.unit, self.pace)
            self._task = self._display.add_task(text, total=total, completed=done, failed=0)
            self._total = total
            self._display.start()
        return self._display, self._task

    def _plain_bar(self, done: int, total: int, failed: int, last: bool = False) -> None:
        now = self._clock()
        with self._lock:
            if self._bar_start is None or self._bar_start[2] != total:
                self._bar_start = (now, done, total)
            began, done_then, _ = self._bar_start
            if now - self._last_plain < PLAIN_EVERY and done < total and not last:
                self._plain_unshown = (done, total, failed)
                return
            self._last_plain = now
            self._plain_unshown = None
        rate = (done - done_then) / (now - began) if now > began else 0.0
        # No ETA until a rate is known (a row done since the bar began).
        eta = (total - done) / rate if rate > 0 else None
        line = f"{done}/{total} {self.unit} · {rate:.1f}/s · ETA {_clock(eta)}"
        if failed:
            line += f" · {failed} failed"
        if self.pace is not None:
            line += f" · {self.pace()}"
        click.echo(line, err=True)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--"
    whole = int(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _rich_display(
    stream: TextIO, color: bool, unit: str = "rows", pace: Callable[[], str] | None = None
) -> RichProgress:
    """A rich Progress with one task: a spinner and its text, or a bar with its counts."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task
    from rich.text import Text

    class Bar(ProgressColumn):
        """The bar, only once there is a total (a spinner's task has none)."""

        def __init__(self) -> None:
            super().__init__()
            # Plain colours: rich's pink would read as red (failure) on 16-colour terminals.
            self.bar = BarColumn(
                bar_width=30, style="bright_black", complete_style="cyan", finished_style="green"
            )

        def render(self, task: Task) -> Any:
            return self.bar.render(task) if task.total is not None else Text("")

    class Counts(ProgressColumn):
        """``12/600 rows · 8.1/s · ETA 1:11 · 2 failed · 8 at once``, or the spinner's text."""

        def render(self, task: Task) -> Text:
            if task.total is None:
                return Text(task.description)
            rate = task.speed or 0.0
            text = Text(f"{int(task.completed)}/{int(task.total)} {unit} · {rate:.1f}/s")
            text.append(f" · ETA {_clock(task.time_remaining)}")
            failed = task.fields.get("failed", 0)
            if failed:
                text.append(f" · {failed} failed", style="red")
            if pace is not None:
                text.append(f" · {pace()}")
            return text

    # color_system None: no styles at all (--no-color, NO_COLOR); the cursor is still moved.
    console = Console(
        file=stream,
        color_system="auto" if color else None,
        no_color=not color,
        highlight=False,
        emoji=False,  # a platform's ":x:" in a message is shown as written
        markup=False,
    )
    # A console without UTF-8 (cp850, cp1252) has no braille dots: an ASCII spinner there;
    # rich draws its bar in ASCII by itself.
    utf = (getattr(stream, "encoding", None) or "").lower().startswith("utf")
    return Progress(
        SpinnerColumn("dots" if utf else "line"),
        Bar(),
        Counts(),
        console=console,
        redirect_stdout=False,
        redirect_stderr=False,
        # ETA and rate over the last few seconds: a retry wave does not hold them for long.
        speed_estimate_period=10.0,
    )
