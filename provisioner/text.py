"""Text from the platform or a sheet, shown: control characters as escapes.

``visible`` is the one escaping point of every output: each console line
(``cli.echo``, the live line, ``render_console``), and the CSV, HTML and xlsx
reports. A platform's error page or a sheet's cell must not drive the terminal
(ESC starts every ANSI sequence: clear the screen, set the window title, fake a
colour; BEL rings), hide what follows (CR, NUL), or make a line read other than
it is (bidi overrides, zero-width marks). So these are shown as Python writes
them, ``\\x1b``, ``\\r``, ``\\u202e``:

- C0 controls (NUL to US), DEL and the C1 controls U+0080 to U+009F (U+009B is
  a one-byte ESC ``[`` to many terminals);
- lone surrogates (a JSON ``\\ud800``), which no UTF-8 file can hold;
- marks that turn or hide text: bidi embeddings, overrides and isolates
  (U+202A..U+202E, U+2066..U+2069, U+200E, U+200F, U+061C), zero-width ones
  (U+200B..U+200D, U+2060..U+2064, U+FEFF, U+180E), the soft hyphen, the
  deprecated format marks U+206A..U+206F, and the line and paragraph separators
  U+2028, U+2029, which some programs take for a new line.

What is legitimately there stays: letters of any script (``ä``, ``ß``, ``é``),
symbols and spaces, and where the output holds more than one line (``keep``) the
tab and the line break, also as CR LF. The JSON report keeps every value as it
is (JSON escapes what it must); an export writes values, not a view of them
(``export`` leaves out what a sheet cannot hold, and says so).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

# Shown as escapes everywhere; see the module's docstring for why each.
_ALWAYS = (
    "\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff"
    "\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
)
_KEEPABLE = "\t\n"


@cache
def _pattern(keep: str) -> re.Pattern[str]:
    if not set(keep) <= set(_KEEPABLE):
        raise ValueError(f"only a tab and a line break can be kept, not {keep!r}")
    tab = "" if "\t" in keep else "\t"
    if "\n" in keep:  # a line break stays, CR LF too; a CR alone moves back over a line
        return re.compile(f"[{_ALWAYS}{tab}]|\r(?!\n)")
    return re.compile(f"[{_ALWAYS}{tab}\r\n]")


def _escape(match: re.Match[str]) -> str:
    return repr(match.group())[1:-1]  # \x1b, \r, \t, \x9b, \u202e, \ud800


def visible(text: str, *, keep: str = "") -> str:
    """``text`` with its control characters and hidden marks shown as escapes.

    ``keep`` holds the characters that stay as they are, where the output has room
    for them: ``"\\n"`` for text of several lines (a console message), ``"\\t\\n"``
    for a report's cell. Without it every tab and line break is an escape too: one
    console line stays one line.
    """
    return _pattern(keep).sub(_escape, text)


def counted(count: int, word: str, words: str = "") -> str:
    """``1 request``, ``2 requests``: a count with its noun in the right number
    (``words``: the plural where it is not the noun with an s)."""
    return f"{count} {word if count == 1 else words or word + 's'}"


def is_are(count: int) -> str:
    """The verb for a count: ``1 is``, ``2 are``."""
    return "is" if count == 1 else "are"


# How many items a message lists before it counts the rest.
LISTED = 10


def listed(
    items: Sequence[str], limit: int = LISTED, *, sep: str = ", ", last: str | None = None
) -> str:
    """``items`` for a message, the first ``limit`` of them named and the rest counted:
    ``B1, C1 and 29 more``; a message that lists cells, columns or rows lists them so,
    however long the sheet. ``sep`` joins them; ``last`` joins the last two when all are
    named (``" and "``: ``B1, C1 and D1``)."""
    if len(items) > limit:
        return f"{sep.join(items[:limit])} and {len(items) - limit} more"
    if len(items) < 2:
        return "".join(items)
    return f"{sep.join(items[:-1])}{sep if last is None else last}{items[-1]}"
