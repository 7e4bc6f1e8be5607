"""The platform's device filter language, ``<type>:<field>=<op>:<value>``, as SQL.

A filter is parsed from the raw (still URL-encoded) query parameter so that a
comma encoded as ``%2C`` stays inside one list value of an ``fa`` filter, while
a literal comma separates values. SQL is built from fixed column names and
operators only; every value is passed as a parameter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import unquote_plus

from provisioner.sandbox.errors import BadRequest

# API field -> (column, kind). Kinds decide how a value is compared.
SCALAR_FIELDS: dict[str, tuple[str, str]] = {
    "id": ("id", "int"),
    "addr": ("addr", "text"),
    "name": ("name", "text"),
    "serial": ("serial", "text"),
    "description": ("description", "text"),
    "deviceTypeId": ("device_type_id", "int"),
    "organisationId": ("organisation_id", "int"),
    "createdAt": ("created_at", "instant"),
    "updatedAt": ("updated_at", "instant"),
}
ARRAY_FIELDS: dict[str, str] = {"tags": "tags"}
# Parsed data (uplinks) is filtered by time; across the organisation also by device.
DATA_FIELDS: dict[str, tuple[str, str]] = {
    "receivedAt": ("received_at", "instant"),
    "createdAt": ("created_at", "instant"),
}
ORGANISATION_DATA_FIELDS: dict[str, tuple[str, str]] = {
    "deviceId": ("device_id", "int"),
    **DATA_FIELDS,
}

SCALAR_OPERATORS = ("eq", "lte", "lt", "gte", "gt", "like", "ilike", "isnull")
ARRAY_OPERATORS = ("contains", "containedby", "overlap", "isnull")
_COMPARISONS = {"eq": "=", "lte": "<=", "lt": "<", "gte": ">=", "gt": ">"}
_TRUE = ("true", "t", "1")
_FALSE = ("false", "f", "0")
# SQLite's integers: a whole number outside them is beyond every stored one.
MIN_INTEGER, MAX_INTEGER = -(2**63), 2**63 - 1

# What a filter value may be, as regular expressions that mean the same in Python and in the
# ECMA 262 dialect of the OpenAPI document (no \s, \d or \w, whose meanings differ): the
# sandbox checks values with them and the document's patterns are built from them.
WHOLE_NUMBER = r"-?[0-9]+"
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
_MONTH_DAY = (
    r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
# Years 1000 to 9998: a time in them, whatever its offset, is a time in UTC too.
_YEAR = r"(?!0|9999)[0-9]{4}"
# RFC 3339 with an offset, dates that exist; seconds up to 59 (no leap second).
TIMESTAMP = (
    rf"(?:{_YEAR}-{_MONTH_DAY}|(?!0){_LEAP_YEAR}-02-29)"
    r"[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_TRUTH = r"[Tt](?:[Rr][Uu][Ee])?|[Ff](?:[Aa][Ll][Ss][Ee])?|[01]"
_ANY = r"[\s\S]*"  # any text, line breaks too ("." stops at them)
_OPERANDS = {"int": WHOLE_NUMBER, "instant": TIMESTAMP}


@dataclass(frozen=True)
class FilterFields:
    """The fields one listing may be filtered on: API name -> (column, kind) and array columns."""

    scalar: Mapping[str, tuple[str, str]]
    array: Mapping[str, str]


DEVICE_FILTERS = FilterFields(SCALAR_FIELDS, ARRAY_FIELDS)
DATA_FILTERS = FilterFields(DATA_FIELDS, {})
ORGANISATION_DATA_FILTERS = FilterFields(ORGANISATION_DATA_FIELDS, {})


@dataclass(frozen=True)
class Filter:
    """One parsed filter: ``kind`` is ``f`` or ``fa``; ``f`` filters hold one value."""

    kind: str
    field: str
    op: str
    values: tuple[str, ...]


def is_filter_parameter(name: str) -> bool:
    return name.startswith(("f:", "fa:"))


def parse_filter(name: str, raw_value: str, fields: FilterFields = DEVICE_FILTERS) -> Filter:
    """A filter on one of ``fields`` from a decoded parameter name and its raw (URL-encoded) value.

    Without an operator the default applies (``eq`` for ``f``, ``contains`` for
    ``fa``). A prefix of lowercase letters before the first ``:`` that is not an
    operator is an unknown operator; any other prefix is part of the value, so
    ``f:createdAt=2000-01-01T02:37:00+01:00`` compares with ``eq``.
    """
    kind, _, field = name.partition(":")
    operators = SCALAR_OPERATORS if kind == "f" else ARRAY_OPERATORS
    known_fields = fields.scalar if kind == "f" else fields.array
    if field not in known_fields:
        known = ", ".join(known_fields) or "none"
        raise BadRequest(f"unknown field {field!r} for filter type {kind!r} (known: {known})")
    head, colon, rest = _operator_split(raw_value)
    if colon and re.fullmatch(r"[a-z]+", head):
        if head not in operators:
            known = ", ".join(operators)
            raise BadRequest(f"unknown operator {head!r} for {name} (known: {known})")
        op, raw_operand = head, rest
    else:
        op, raw_operand = operators[0], raw_value
    if kind == "fa" and op != "isnull":
        values = tuple(unquote_plus(v) for v in raw_operand.split(",")) if raw_operand else ()
    else:
        values = (unquote_plus(raw_operand),)
    return Filter(kind, field, op, values)


def _operator_split(raw_value: str) -> tuple[str, str, str]:
    """(decoded operator, ":" or "", raw rest): the operator ends at the first colon, sent as
    it is or encoded as %3A (a client encodes it where the document does not say otherwise)."""
    found = re.search(r":|%3[Aa]", raw_value)
    if found is None:
        return raw_value, "", ""
    return unquote_plus(raw_value[: found.start()]), ":", raw_value[found.end() :]


def value_pattern(kind: str, fields: FilterFields, field: str) -> str:
    """The filter values ``parse_filter`` and ``filter_sql`` accept for ``kind:field``, as an
    ECMA 262 pattern on the decoded value (for the OpenAPI document)."""
    truth = f"isnull:(?:{_TRUTH})"
    # Without an operator, a value must not look like one ("abc:..." is an unknown operator).
    plain = rf"(?![a-z]+:){_ANY}"
    if kind == "fa":
        listed = "|".join(op for op in ARRAY_OPERATORS if op != "isnull")
        alternatives = [f"(?:{listed}):{_ANY}", truth, plain]
    else:
        comparisons = "|".join(_COMPARISONS)
        operand = _OPERANDS.get(fields.scalar[field][1])
        if operand is None:  # text: any value
            alternatives = [f"(?:{comparisons}|like|ilike):{_ANY}", truth, plain]
        else:  # like and ilike compare the stored text: any pattern
            alternatives = [
                f"(?:(?:{comparisons}):)?(?:{operand})",
                f"(?:like|ilike):{_ANY}",
                truth,
            ]
    return "^(?:" + "|".join(alternatives) + ")$"


def filter_sql(flt: Filter, fields: FilterFields = DEVICE_FILTERS) -> tuple[str, list[object]]:
    """A WHERE clause fragment and its parameters for one filter on the table of ``fields``."""
    if flt.kind == "fa":
        return _array_sql(fields.array[flt.field], flt)
    column, kind = fields.scalar[flt.field]
    value = flt.values[0]
    if flt.op == "isnull":
        return _isnull_sql(column, flt)
    if flt.op == "like":
        return f"{column} GLOB ?", [like_to_glob(value)]
    if flt.op == "ilike":
        tokens = _like_tokens(value)
        if value.isascii() and not any(wild for wild, _ in tokens):
            # No wildcard and only ASCII letters: an exact match without case, which
            # SQLite's NOCASE does alike and an index serves (a DevEUI looked up by key).
            return f"{column} = ? COLLATE NOCASE", ["".join(char for _, char in tokens)]
        return f"sandbox_ilike({column}, ?)", [value]
    operand: object = value
    if kind == "int":
        if not re.fullmatch(WHOLE_NUMBER, value):
            raise BadRequest(f"{flt.field} compares whole numbers, not {value!r}")
        number = _whole_number(value)
        if number is None:
            # Beyond SQLite's integers (which would not bind): beyond every stored number.
            above = not value.startswith("-")
            holds = flt.op in (("lt", "lte") if above else ("gt", "gte"))
            return (f"{column} IS NOT NULL" if holds else "0"), []
        operand = number
    elif kind == "instant":
        operand = normalise_instant(value, flt.field)
    return f"{column} {_COMPARISONS[flt.op]} ?", [operand]


def _isnull_sql(column: str, flt: Filter) -> tuple[str, list[object]]:
    value = flt.values[0].lower()
    if value in _TRUE:
        return f"{column} IS NULL", []
    if value in _FALSE:
        return f"{column} IS NOT NULL", []
    raise BadRequest(f"isnull on {flt.field} takes true/t/1 or false/f/0, not {flt.values[0]!r}")


def _array_sql(column: str, flt: Filter) -> tuple[str, list[object]]:
    if flt.op == "isnull":
        return _isnull_sql(column, flt)
    given = json.dumps(list(flt.values))
    if flt.op == "contains":
        sql = (
            f"({column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM json_each(?) AS g"
            f" WHERE g.value NOT IN (SELECT value FROM json_each({column}))))"
        )
    elif flt.op == "containedby":
        sql = (
            f"({column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM json_each({column}) AS t"
            f" WHERE t.value NOT IN (SELECT value FROM json_each(?))))"
        )
    else:  # overlap; NULL tags give an empty json_each and so never overlap
        sql = (
            f"EXISTS (SELECT 1 FROM json_each({column}) AS t"
            f" WHERE t.value IN (SELECT value FROM json_each(?)))"
        )
    return sql, [given]


def normalise_instant(value: str, field: str = "timestamp") -> str:
    """RFC 3339 text with an offset -> fixed-width UTC text, which sorts like the instant."""
    if not re.fullmatch(TIMESTAMP, value):
        # An unencoded "+01:00" arrives as " 01:00": say so, it is the usual mistake.
        hint = " (send a + in a URL as %2B)" if " " in value else ""
        raise BadRequest(
            f"{field} needs an RFC 3339 timestamp with an offset, like"
            f" 2024-06-01T08:00:00+02:00, of a year from 1000 to 9998, not {value!r}{hint}"
        )
    # Python reads only the capital T and Z; RFC 3339 allows either case.
    return format_instant(datetime.fromisoformat(value.upper()))


def _whole_number(text: str) -> int | None:
    """``text`` (a WHOLE_NUMBER) as an int, or None beyond SQLite's integers."""
    if len(text.lstrip("-").lstrip("0")) > 19:  # int() refuses very long digit strings
        return None
    number = int(text)
    return number if MIN_INTEGER <= number <= MAX_INTEGER else None


def format_instant(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def _like_tokens(pattern: str) -> list[tuple[bool, str]]:
    """(is_wildcard, char) pairs of a LIKE pattern; a backslash makes the next char literal."""
    tokens: list[tuple[bool, str]] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            tokens.append((False, next(chars, "\\")))
        else:
            tokens.append((char in "%_", char))
    return tokens


def like_to_glob(pattern: str) -> str:
    """A case-sensitive SQL LIKE pattern as an SQLite GLOB pattern (GLOB is case-sensitive)."""
    wildcards = {"%": "*", "_": "?"}
    glob_special = {"*": "[*]", "?": "[?]", "[": "[[]"}
    return "".join(
        wildcards[char] if wild else glob_special.get(char, char)
        for wild, char in _like_tokens(pattern)
    )


@lru_cache(maxsize=256)
def _ilike_regex(pattern: str) -> re.Pattern[str]:
    parts = [
        (".*" if char == "%" else ".") if wild else re.escape(char.casefold())
        for wild, char in _like_tokens(pattern)
    ]
    return re.compile("".join(parts), re.DOTALL)


def sql_ilike(value: object, pattern: str | None) -> int | None:
    """SQLite function: case-insensitive LIKE that also folds umlauts and ß (casefold)."""
    if value is None or pattern is None:
        return None
    return int(_ilike_regex(pattern).fullmatch(str(value).casefold()) is not None)
