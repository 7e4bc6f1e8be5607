"""What a run tells the person running it, and what it asks: one object per run.

The library's stages (plan, apply, verify, export, undo) take an ``Events`` instead of
a handful of callback parameters. This base says nothing and answers every question
yes, which is what a script that calls the library wants; the command line's console
is a subclass (a spinner and a bar on stderr, the plan and the question on stdout).
Methods may be called from the runner's worker threads: ``reading``, ``progress``
and ``say`` must be thread-safe.
"""

from __future__ import annotations

from typing import Any


class Events:
    """The run's listener; override what you show or ask."""

    def reading(self, text: str) -> None:
        """How far the sheet or the platform is read ("reading devices: page 3 of 40")."""

    def progress(self, done: int, total: int, failed: int) -> None:
        """How far the requests (or the reads of each device's data) are."""

    def say(self, line: str) -> None:
        """A line for the installer while the work goes on (a stop waits for requests)."""

    def planned(self, plan: Any, work: Any) -> None:
        """apply: the fresh plan and what it will send, before the question."""

    def confirm(self, what: Any) -> bool:
        """The question before anything is written (apply: its ``Work``; undo: its
        ``UndoResult``). False: nothing is written."""
        return True

    def checked(self, result: Any, left: float) -> None:
        """verify: each round's result, and the seconds --watch has left."""
