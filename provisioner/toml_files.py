"""Reading the TOML files a user gives (site templates, the settings file) within bounds.

``tomllib`` recurses into nested lists and inline tables (a file nested 100,000 deep
ends in a RecursionError), and a long dotted key costs it time and memory that grow
with the square of its parts (10,000 parts: 3 s and 400 MB). So a file is read only
up to ``MAX_BYTES``, and its text is scanned for how deep its tables and lists nest
before it is parsed: a crafted or stray file ends in a message that names the file,
the line and the reason, never in a traceback or an exhausted machine.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionerError

# A site template is a few KB; a settings file a few lines.
MAX_BYTES = 1024 * 1024
# Tables, lists and dotted keys inside one another: a template needs five or six.
MAX_DEPTH = 32

_BASIC_END = re.compile(r'[\\"\n]')  # what ends a run of a one-line "..." string
_BASIC_MULTI_END = re.compile(r'\\|"""')  # the same for a """...""" string
_LITERAL_END = re.compile(r"['\n]")  # what ends a one-line '...' string
_PLAIN = re.compile(r"[^\"'#\n\[\]{}.,=]+")  # characters that change no depth


def read_toml(path: Path, where: str, error: type[ProvisionerError]) -> dict[str, Any]:
    """The TOML file at ``path``, read within bounds; ``error`` (naming ``where``) if
    it cannot be read, is too big, nests too deep or is not TOML."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise error(f"{where} does not exist") from None
    except OSError as exc:
        raise error(f"cannot read {where}: {exc.strerror or exc}") from None
    return parse_toml(data, where, error)


def parse_toml(data: bytes, where: str, error: type[ProvisionerError]) -> dict[str, Any]:
    """``data`` as TOML, after the bounds on its size and depth; ``error`` names ``where``."""
    if len(data) > MAX_BYTES:
        raise error(
            f"{where} is larger than {MAX_BYTES // 1024} KB: such a file is a few KB; "
            "is it the right file?"
        )
    try:
        text = data.decode("utf-8-sig")  # with or without the BOM Windows editors write
    except UnicodeDecodeError as exc:
        raise error(f"{where} is not UTF-8 text (byte {exc.start + 1}): save it as UTF-8") from None
    line = _too_deep(text)
    if line is not None:
        raise error(
            f"{where} nests tables, lists or dotted keys more than {MAX_DEPTH} levels deep "
            f"(line {line}): is it the right file?"
        )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message ends with "(at line N, column M)".
        raise error(f"{where} is not valid TOML: {exc}") from None


def _too_deep(text: str) -> int | None:
    """The line where the TOML ``text`` first nests more than ``MAX_DEPTH`` deep, or None.

    Depth counts the tables and lists as tomllib will build them: ``a.b.c = 1`` makes
    two tables (a, a.b), in a table ``[t]`` three; each list and inline table is one more. The scan skips strings and comments
    so that brackets and dots in them do not count; it checks no other syntax (tomllib
    does, afterwards). Time: one pass over the text.
    """
    table = 0  # the depth of the current [table]
    opened: list[tuple[str, int]] = []  # the lists and inline tables open: bracket, depth
    key = True  # reading a key (else a value)
    header = False  # reading a [table] or [[array of tables]] header
    dots = 0  # the dots of the key read so far
    here = 0  # the depth a list or inline table opened now would have
    i, end = 0, len(text)
    while i < end:
        plain = _PLAIN.match(text, i)
        if plain:
            i = plain.end()
            continue
        c = text[i]
        if c in "\"'":
            i = _string_end(text, i)
            continue
        if c == "#":
            i = text.find("\n", i)
            i = end if i < 0 else i
            continue
        depth = 0
        if c == "\n" and not opened:
            key, header, dots = True, False, 0
        elif key:
            base = 0 if header else opened[-1][1] if opened else table
            if c == "[" and not opened:
                header = True
            elif c == ".":
                dots += 1
                depth = base + dots  # the table the key's part before this dot names
            elif c == "]" and header:
                # [[a.b]]: a.b is a list, each of its tables one deeper.
                many = text.startswith("]]", i)
                table = dots + 1 + many
                depth, header, dots = table, False, 0
                i += many
            elif c == "=":
                key, here, dots = False, base + dots + 1, 0
        elif c in "[{":
            depth = here
            opened.append((c, here))
            if c == "{":
                key, dots = True, 0
            else:
                here += 1
        elif c in "]}" and opened:
            opened.pop()
            if opened and opened[-1][0] == "[":
                here = opened[-1][1] + 1
        elif c == "," and opened and opened[-1][0] == "{":
            key, dots = True, 0
        if depth > MAX_DEPTH:
            return text.count("\n", 0, i) + 1
        i += 1
    return None


def _string_end(text: str, start: int) -> int:
    """Just after the TOML string that opens at ``start``: basic or literal, one line
    or multi-line; the end of its line if it does not close there (tomllib then says
    what is wrong)."""
    quote = text[start]
    if text.startswith(quote * 3, start):
        i = start + 3
        if quote == "'":
            close = text.find("'''", i)
        else:
            while (found := _BASIC_MULTI_END.search(text, i)) and found.group() == "\\":
                i = found.end() + 1  # an escaped character, maybe a quote
            close = found.start() if found else -1
        if close < 0:
            return len(text)
        close += 3
        while close < len(text) and text[close] == quote:  # """a"""" ends in a quote
            close += 1
        return close
    pattern = _LITERAL_END if quote == "'" else _BASIC_END
    i = start + 1
    while (found := pattern.search(text, i)) and found.group() == "\\":
        i = found.end() + 1
    if not found:
        return len(text)
    return found.end() if found.group() == quote else found.start()
