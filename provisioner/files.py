"""The files the tool writes: one atomic write, one way to keep text cells text.

``write_atomically`` is how every output file is written (export, reports, the
results workbook, the blank workbook, a saved plan): into a temporary file in
the target's folder, flushed to the disk, then moved into place, so a crash or a
full disk never leaves a half-written file that looks complete. Without
``replace`` the move refuses a file that exists, however new. It raises
``OSError`` (``FileExistsError`` for that refusal; ``FileHeld`` when the
target cannot be replaced, on Windows most often because Excel has it open);
each command words it with ``reason``, which names the file.

Text cells are kept from running as formulas when a spreadsheet program opens
the file, in a form the tool reads back as the same value:

- CSV: a cell a spreadsheet would run as a formula (``formula_like``: it starts
  with ``= + - @`` behind any leading blanks, or with a tab or CR) is written
  with a leading ``'``, the mark Excel users know. ``csv_cell`` writes it and
  ``csv_value`` takes exactly one off again. A value that is itself ``'``\\s
  before a formula start (``'=x``) gets one more (``''=x``), so every value
  reads back as it was; any other ``'`` (``'quoted``) is left alone both ways.
- xlsx: ``put_text`` stores text as a string cell (openpyxl would make ``=...``
  a formula) and gives a formula-like one the quotePrefix style: Excel shows it
  without a quote and keeps it text when the cell is edited. The cell holds the
  value itself, so it reads back unchanged.

Plain numbers (``-5``, ``+49``) are no formula and stay as they are.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

MARK = "'"
_FORMULA_STARTS = ("=", "+", "-", "@")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?(?:[eE][+-]?\d+)?")


# --- the one atomic write ---------------------------------------------------------------------


class FileHeld(PermissionError):
    """The finished file could not be put in place of ``filename``: Windows refuses to
    replace a file another program has open (Excel holds every workbook it shows), or
    the file is read-only. Its words name the file; a command that can writes beside it."""


def write_atomically(
    path: Path,
    write: Callable[[IO[bytes]], object],
    *,
    replace: bool = True,
    private: bool = False,
) -> None:
    """Write ``path`` through ``write(file)``: it is whole afterwards, or untouched.

    ``replace=False`` refuses a ``path`` that exists (``FileExistsError``), also
    one that appeared while the file was written. A ``private`` file (it holds
    LoRaWAN keys) is readable by its owner only; any other gets the umask's mode,
    as a file the user saves (a report is for the team, so not mkstemp's 0600).
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        handle = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666
        )
    except PermissionError as exc:
        raise PermissionError(
            exc.errno, f"{exc.strerror}: {_cannot_write_in(path)}", str(path)
        ) from None
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # on the disk before the name points at it
        if replace:
            try:
                os.replace(temporary, path)
            except PermissionError as exc:
                raise FileHeld(exc.errno, f"{exc.strerror}: {_held(path)}", str(path)) from None
        else:
            try:
                os.link(temporary, path)  # fails when path exists, however new
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links
                if path.exists():
                    raise FileExistsError(
                        errno.EEXIST, os.strerror(errno.EEXIST), str(path)
                    ) from None
                os.replace(temporary, path)
        _sync_folder(path.parent)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


def _held(path: Path) -> str:
    return (
        f"{path} is probably open in Excel or another program (close it there and run "
        "again), or it is read-only"
    )


def _cannot_write_in(path: Path) -> str:
    # Excel holding the file does not stop a new file in its folder: the folder is the cause.
    return (
        f"{path} cannot be written: no new file may be made in its folder {path.parent} "
        "(read-only, or not yours); choose another folder"
    )


def _sync_folder(folder: Path) -> None:
    """The rename itself on the disk (POSIX; Windows has no folder handles to sync)."""
    with contextlib.suppress(OSError, AttributeError):
        handle = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def reason(exc: OSError) -> str:
    """Why a file could not be written, in words; the file itself is untouched.

    ``write_atomically``'s permission errors say it themselves, with the file's name;
    any other names the file here (as given: ``str(exc)`` would double a Windows
    path's backslashes)."""
    text = str(exc.strerror or exc)
    if exc.errno == errno.ENOSPC:
        return f"{text}: the disk is full and nothing was written; free some space and run again"
    if isinstance(exc, PermissionError) and exc.filename and str(exc.filename) not in text:
        return f"{text}: {_held(Path(os.fsdecode(exc.filename)))}"
    return text


# --- text cells: never a formula, read back as written ---------------------------------------


def formula_like(text: str) -> bool:
    """Whether a spreadsheet program could run ``text`` as a formula (OWASP's CSV
    injection rule: = + - @ first, also behind blanks, or a tab or CR first)."""
    if text[:1] in ("\t", "\r"):
        return True
    stripped = text.lstrip()
    return stripped.startswith(_FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(stripped)


def csv_cell(text: str) -> str:
    """``text`` as a CSV cell no spreadsheet runs; ``csv_value`` gives ``text`` back."""
    return MARK + text if formula_like(text.lstrip(MARK)) else text


def csv_value(cell: str) -> str:
    """A CSV cell as the value ``csv_cell`` was given: one leading mark taken off
    where ``csv_cell`` puts one; any other cell as it is."""
    if cell[:1] == MARK and formula_like(cell.lstrip(MARK)):
        return cell[1:]
    return cell


def put_text(cell: Any, text: str) -> None:
    """An openpyxl cell set to ``text``, kept text.

    Always a string cell: openpyxl makes a text starting with ``=`` a formula. A
    formula-like text also gets the quotePrefix style, so that editing the cell in
    Excel keeps it text. The style is changed in place: a write-only cell reused
    for many rows must not get it (openpyxl keeps the style of the rows written
    before by reference), so give such a text a cell of its own.
    """
    cell.value = text
    cell.data_type = "s"
    if formula_like(text):
        cell.quotePrefix = True
