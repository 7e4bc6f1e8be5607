"""Validate a site sheet: every problem at once, each tied to its cell.

Rows are checked against the JSON schemas in schemas/ (the platform's bodies)
and against rules that span rows (duplicate keys, addrs and emails; downlinks
for devices the sheet does not define). Valid rows take a compiled fast path
(fastjsonschema); only a row that fails it is run through jsonschema for the
complete list of its errors, turned into plain words from the schema's titles
and descriptions.
"""

from __future__ import annotations

import copy
import gc
import json
import re
from array import array
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, cached_property
from itertools import accumulate, compress, islice
from typing import TYPE_CHECKING, Any, Protocol

import fastjsonschema

from provisioner.fields import CONFIG_PREFIX, DOWNLINK_TYPES, MASK, SECRET_NAMES
from provisioner.frames import Sheet, sheet_name
from provisioner.problems import Kind, Problem, kind
from provisioner.records import (
    UNKNOWN_DEVICE_TYPE,
    DownlinkRecord,
    Record,
    RecordBlock,
    RecordStream,
    SiteRecords,
    record_secrets,
)
from provisioner.resources import data_folder
from provisioner.results import Result, Row
from provisioner.sheets import _no_cyclic_gc, open_workbook
from provisioner.templates import SiteTemplate
from provisioner.text import LISTED, listed

if TYPE_CHECKING:
    import jsonschema

SCHEMA_RULE = kind(
    "schema",
    "A value does not fit the platform's rules",
    "The message names the field and what it must look like; correct the cell.",
)
DUPLICATE_KEY = kind(
    "duplicate-key",
    "The same device appears twice",
    "Each device must be in the sheet once: delete the extra row or correct the key "
    "(serial or addr) that was copied by mistake.",
)
DUPLICATE_ADDR = kind(
    "duplicate-addr",
    "Two rows have the same address",
    "An address is unique on the platform: correct the copied address from the device label.",
)
DUPLICATE_EMAIL = kind(
    "duplicate-email",
    "Two users have the same email",
    "Each platform user needs their own email: delete the extra row.",
)
DUPLICATE_DOWNLINK = kind(
    "duplicate-downlink",
    "Two downlinks of one type for the same device",
    "The platform keeps one queued downlink per type and device; the later one would replace "
    "the earlier. Merge them into one row.",
)
UNKNOWN_DEVICE = kind(
    "downlink-device-not-in-sheet",
    "A downlink is for a device the sheet does not define",
    "Fine if the device already exists on the platform (plan checks that); otherwise add the "
    "device to the Devices tab or correct the key.",
    "warning",
)
UNKNOWN_DOWNLINK_TYPE = kind(
    "downlink-type",
    "Unknown downlink type",
    "Use one of config, fw, lorawan or raw.",
)


# --- schemas ---------------------------------------------------------------------------------


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A schema from schemas/, e.g. "deviceInput"."""
    text = (data_folder("schemas") / f"{name}.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


class SchemaError(Protocol):
    """What ``describe`` reads of one schema error: a jsonschema ValidationError, or a
    ``_Fault`` found without jsonschema."""

    @property
    def absolute_path(self) -> Sequence[Any]: ...
    @property
    def validator(self) -> Any: ...
    @property
    def instance(self) -> Any: ...
    @property
    def validator_value(self) -> Any: ...
    @property
    def message(self) -> str: ...


# Top-level keywords that tie properties together: a schema with one is explained whole.
_ACROSS_FIELDS = ("oneOf", "anyOf", "allOf", "not", "if", "dependentRequired", "dependentSchemas")


@dataclass(frozen=True)
class Checker:
    """A schema's fast yes/no check and the explained errors of the bodies that fail.

    A failing body is explained field by field: a simple field (``_finder``) finds
    its own faults; any other field is first checked on its own, compiled when a body
    first needs it, and only a failing one goes through jsonschema for its words, cached
    by the field and its value (a wrong value repeats from row to row). The errors of
    the body as a whole (a missing required field, an unknown one) are cached by the
    set of fields present.
    """

    schema: dict[str, Any]
    fast: Callable[[Any], Any]
    # The properties' schemas as fastjsonschema reads them; none when a failing body is
    # explained whole.
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The fields whose schema ``_finder`` reads as jsonschema would: explained without it.
    finders: dict[str, Finder] = field(default_factory=dict)
    _field_checks: dict[str, Callable[[Any], Any]] = field(
        default_factory=dict, repr=False, compare=False
    )
    _explained: dict[tuple[str, Any], list[SchemaError]] = field(
        default_factory=dict, repr=False, compare=False
    )
    _whole: dict[frozenset[str], list[SchemaError]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @cached_property
    def full(self) -> jsonschema.Draft202012Validator:
        # jsonschema is slow to import, and only rows that fail the fast check need it.
        import jsonschema

        return jsonschema.Draft202012Validator(self.schema, format_checker=None)

    def errors(self, body: Any) -> list[SchemaError]:
        try:
            self.fast(body)
        except fastjsonschema.JsonSchemaException:
            return self.explain(body)
        return []

    def explain(self, body: Any) -> list[SchemaError]:
        """The errors of a body that failed the fast check, in plain order."""
        if not isinstance(body, dict) or not self.fields:
            return sorted(self.full.iter_errors(body), key=lambda e: list(e.absolute_path))
        found = list(self._whole_errors(frozenset(body)))
        finders, fields = self.finders, self.fields
        for name, value in body.items():
            find = finders.get(name)
            if find is not None:  # explained in one go, without jsonschema
                find(value, found)
                continue
            if name not in fields:
                continue  # an unknown field: the whole-body errors say so
            check = self._field_checks.get(name)
            if check is None:
                check = self._field_checks[name] = _compile(fields[name])
            try:
                check(value)  # most fields of a failing body are right: the quick check first
                continue
            except fastjsonschema.JsonSchemaException:
                pass
            found += self._field_errors(name, value)
        return sorted(found, key=lambda e: list(e.absolute_path))

    def _field_errors(self, name: str, value: Any) -> list[SchemaError]:
        # A text or number is its own key; a list or object by its JSON (type included:
        # 1 and "1" are explained apart).
        plain = value is None or isinstance(value, str | int | float)
        key = (
            name,
            (type(value).__name__, value)
            if plain
            else json.dumps(value, sort_keys=True, default=str),
        )
        errors = self._explained.get(key)
        if errors is None:
            errors = [
                e
                for e in self.full.iter_errors({name: value})
                if list(e.absolute_path)[:1] == [name]
            ]
            self._explained[key] = errors
        return errors

    def _whole_errors(self, names: frozenset[str]) -> list[SchemaError]:
        errors = self._whole.get(names)
        if errors is None:
            # Only which fields are there counts for these: any value does.
            errors = [e for e in self.full.iter_errors(dict.fromkeys(names)) if not e.absolute_path]
            self._whole[names] = errors
        return errors


@dataclass(frozen=True)
class _Fault:
    """What ``describe`` reads of a jsonschema error, for the faults found without it."""

    absolute_path: tuple[Any, ...]
    validator: str
    instance: Any
    validator_value: Any
    message: str = ""


# A field schema of only these keywords is explained without jsonschema (half a sheet of
# bad addresses would otherwise cost a jsonschema pass each); the faults come in the
# schema's keyword order, as jsonschema gives them.
_SIMPLE_KEYWORDS = frozenset(
    {"title", "description", "type", "pattern", "minLength", "maxLength", "minimum", "maximum"}
)
# A nested object (location) of simple fields: jsonschema's words for these too.
_OBJECT_KEYWORDS = frozenset({"properties", "required", "additionalProperties"})
_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}
_is_number = _TYPE_TESTS["number"]

# Adds the faults of one value to a list.
Finder = Callable[[Any, list[SchemaError]], None]


def _is_simple(sub: Any) -> bool:
    """Only the keywords ``_finder`` knows, an object's properties simple in turn."""
    if (
        not isinstance(sub, dict)
        or not sub
        or not sub.keys() <= _SIMPLE_KEYWORDS | _OBJECT_KEYWORDS
    ):
        return False
    if sub.get("additionalProperties", False) is not False:
        return False
    return all(_is_simple(inner) for inner in sub.get("properties", {}).values())


def _finder(sub: dict[str, Any], path: tuple[Any, ...]) -> Finder:
    """The faults of a simple field as jsonschema finds them, keyword by keyword in the
    schema's order; each keyword's test is made once (a pattern compiled, a type's test
    chosen), so a failing body costs a few calls per field, not a schema walk."""
    tests: list[Finder] = []
    for keyword, expected in sub.items():
        test = _keyword_test(keyword, expected, sub, path)
        if test is not None:
            tests.append(test)

    def find(value: Any, faults: list[SchemaError]) -> None:
        for test in tests:
            test(value, faults)

    return find


def _keyword_test(
    keyword: str, expected: Any, sub: dict[str, Any], path: tuple[Any, ...]
) -> Finder | None:
    def fault(value: Any, faults: list[SchemaError], message: str = "") -> None:
        faults.append(_Fault(path, keyword, value, expected, message))

    if keyword == "type":
        wanted = [_TYPE_TESTS[w] for w in (expected if isinstance(expected, list) else [expected])]

        def type_test(value: Any, faults: list[SchemaError]) -> None:
            for fits in wanted:
                if fits(value):
                    return
            fault(value, faults)

        return type_test
    if keyword == "pattern":
        search = re.compile(expected).search

        def pattern_test(value: Any, faults: list[SchemaError]) -> None:
            if isinstance(value, str) and search(value) is None:
                fault(value, faults)

        return pattern_test
    if keyword in ("minLength", "maxLength"):
        short = keyword == "minLength"

        def length_test(value: Any, faults: list[SchemaError]) -> None:
            if isinstance(value, str) and (
                len(value) < expected if short else len(value) > expected
            ):
                fault(value, faults)

        return length_test
    if keyword in ("minimum", "maximum"):
        low = keyword == "minimum"

        def bound_test(value: Any, faults: list[SchemaError]) -> None:
            if _is_number(value) and (value < expected if low else value > expected):
                fault(value, faults)

        return bound_test
    if keyword == "properties":
        inner = {name: _finder(schema, (*path, name)) for name, schema in expected.items()}

        def properties_test(value: Any, faults: list[SchemaError]) -> None:
            if isinstance(value, dict):
                for name, find in inner.items():
                    if name in value:
                        find(value[name], faults)

        return properties_test
    if keyword == "required":

        def required_test(value: Any, faults: list[SchemaError]) -> None:
            if isinstance(value, dict):
                for name in expected:
                    if name not in value:
                        fault(value, faults, f"{name!r} is a required property")

        return required_test
    if keyword == "additionalProperties":
        known = set(sub.get("properties", {}))

        def extras_test(value: Any, faults: list[SchemaError]) -> None:
            if isinstance(value, dict) and not value.keys() <= known:
                extras = sorted(value.keys() - known, key=str)
                verb = "was" if len(extras) == 1 else "were"
                listed = ", ".join(repr(extra) for extra in extras)
                fault(
                    value,
                    faults,
                    f"Additional properties are not allowed ({listed} {verb} unexpected)",
                )

        return extras_test
    return None  # title, description: words, not rules


@cache
def checker(name: str) -> Checker:
    schema = load_schema(name)
    # fastjsonschema knows draft-07, which covers every keyword these schemas use.
    draft7 = copy.deepcopy(schema)
    draft7["$schema"] = "http://json-schema.org/draft-07/schema#"
    fields: dict[str, dict[str, Any]] = {}
    finders: dict[str, Finder] = {}
    if schema.get("type") == "object" and not any(k in schema for k in _ACROSS_FIELDS):
        shared = {k: v for k, v in draft7.items() if k in ("$schema", "$defs", "definitions")}
        fields = {name: {**shared, **sub} for name, sub in draft7.get("properties", {}).items()}
        finders = {
            name: _finder(sub, (name,))
            for name, sub in schema.get("properties", {}).items()
            if _is_simple(sub)
        }
    # Only yes or no is wanted of the fast check (a failing body is explained apart), so
    # its exceptions carry no details, and the uniqueness of a list of texts is checked
    # with a set: fastjsonschema's generic test makes a function for every body.
    fast_schema = copy.deepcopy(draft7)
    unique_lists = _texts_unique(fast_schema)
    return Checker(
        schema,
        _unique_lists_checked(_compile(fast_schema), unique_lists),
        fields,
        finders,
    )


def _compile(schema: dict[str, Any]) -> Callable[[Any], Any]:
    """A yes/no check: exceptions without details (faster to raise)."""
    try:
        return fastjsonschema.compile(schema, detailed_exceptions=False)
    except KeyError:  # fastjsonschema 2.x cannot leave them out for some keywords (not, if)
        return fastjsonschema.compile(schema)


def _texts_unique(schema: dict[str, Any]) -> tuple[str, ...]:
    """Take ``uniqueItems`` off the top-level lists of texts; their names."""
    names = []
    for name, sub in schema.get("properties", {}).items():
        if (
            isinstance(sub, dict)
            and sub.get("uniqueItems") is True
            and isinstance(sub.get("items"), dict)
            and sub["items"].get("type") == "string"
        ):
            del sub["uniqueItems"]
            names.append(name)
    return tuple(names)


def _unique_lists_checked(
    check: Callable[[Any], Any], names: tuple[str, ...]
) -> Callable[[Any], Any]:
    if not names:
        return check

    def fast(body: Any) -> Any:
        check(body)  # passed: an object whose lists hold only texts
        for name in names:
            items = body.get(name)
            if items and len(set(items)) != len(items):
                raise fastjsonschema.JsonSchemaValueException(
                    f"data.{name} must contain unique items"
                )
        return body

    return fast


def _title(schema: dict[str, Any], path: Iterable[Any]) -> tuple[dict[str, Any], str]:
    """The sub-schema at ``path`` and its human title."""
    node = schema
    title = schema.get("title", "value")
    for part in path:
        props = node.get("properties", {})
        if isinstance(part, str) and part in props:
            node = props[part]
        elif isinstance(part, str) and isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
            title = part
            continue
        elif isinstance(part, int) and isinstance(node.get("items"), dict):
            node = node["items"]
            continue
        title = node.get("title", str(part))
    return node, title


TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a set of key/value pairs",
    "null": "empty",
}


def describe(
    error: SchemaError, schema: dict[str, Any], secret: Container[str] = ()
) -> tuple[str, str]:
    """(field, message) for one schema error, in plain words.

    The value of a ``secret`` field (a password) never goes into the message.
    """
    path = list(error.absolute_path)
    node, title = _title(schema, path)
    validator = error.validator
    value = error.instance
    expected: Any = error.validator_value
    if path and _field(path) in secret and validator != "required":
        return _field(path), f"{title} does not meet the rule: {node.get('description', '')}"
    if validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else ""
        sub, sub_title = _title(schema, [*path, missing])
        hint = f": {sub['description']}" if sub.get("description") else ""
        return _field(path + [missing]), f"{sub_title} is missing{hint}"
    where = _field(path)
    description = node.get("description", "")
    if validator == "type":
        wanted = expected if isinstance(expected, list) else [expected]
        words = " or ".join(TYPE_WORDS.get(str(w), str(w)) for w in wanted)
        return where, f"{title} must be {words}"
    if validator == "pattern":
        return where, f"{title} '{value}' is not valid: {description or 'wrong form'}"
    if validator == "minLength":
        return where, f"{title} is too short" + (f": {description}" if description else "")
    if validator == "maxLength":
        return (
            where,
            f"{title} is too long ({len(str(value))} characters, at most {expected})",
        )
    if validator in ("minimum", "maximum"):
        low, high = node.get("minimum"), node.get("maximum")
        bounds = (
            f"between {low} and {high}"
            if low is not None and high is not None
            else (f"at least {low}" if low is not None else f"at most {high}")
        )
        return where, f"{title} {value} must be {bounds}"
    if validator == "enum":
        options = ", ".join(str(o) for o in expected)
        return where, f"{title} '{value}' is not one of {options}"
    if validator == "const":
        return where, f"{title} must be '{expected}'"
    if validator == "uniqueItems":
        return where, f"{title} lists the same value twice"
    if validator == "minItems":
        return where, f"{title} needs at least {expected} value(s)"
    if validator in ("oneOf", "anyOf"):
        return where, f"{title} does not have any of the accepted forms: {description}"
    if validator == "additionalProperties":
        return where, f"{title}: {error.message}"
    return where, f"{title}: {error.message}"


def _field(path: list[Any]) -> str:
    """Schema path -> the record field its cell came from."""
    if not path:
        return ""
    head = str(path[0])
    if head == "location" and len(path) > 1:
        return str(path[1])
    if head == "initialConfig" and len(path) > 1:
        return CONFIG_PREFIX + str(path[1])
    return head


# --- results -------------------------------------------------------------------------------


@dataclass(slots=True)
class RowResult(Row):
    """The verdict on one sheet row."""

    platform_id = None  # validation does not ask the platform

    sheet: str
    row: int
    kind: str  # "device" | "user" | "downlink"
    key: str
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    # Invalid for a reason of its tab (a required column is missing), said once for the tab.
    blocked: str = ""

    @property
    def status(self) -> str:
        return "invalid" if self.errors or self.blocked else "valid"

    @property
    def message(self) -> str:
        if self.errors:
            more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            return self.errors[0].message + more
        if self.blocked:
            return self.blocked
        return self.warnings[0].message if self.warnings else ""

    def problems(self) -> tuple[list[Problem], list[Problem]]:
        return self.errors, self.warnings


@dataclass
class ValidationReport(Result):
    """What `provisioner validate` found.

    A big sheet has many thousands of rows and few with problems: a RowResult is made
    only for those (``problem_rows``, by their index in the report's rows: the devices,
    then the users, then the downlinks, in sheet order), and ``totals``, ``ok``,
    ``errors`` and ``warnings`` need only these and the counts. ``records`` carries the
    rows on to plan: every record when ``held`` (``validate_sheet``); a streamed
    validation (``validate_stream``) holds none, only what is the tabs' (secret columns,
    missing columns), and ``rows`` is then the rows with problems.
    """

    source: str
    template: str
    problems: list[Problem]  # not tied to one data row: missing or unknown columns
    records: SiteRecords
    problem_rows: dict[int, RowResult] = field(default_factory=dict)  # in the order of rows
    count: int = 0  # rows read
    invalid: int = 0  # rows with an error, or of a tab that cannot be used
    held: bool = True
    made_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    command: str = "validate"

    @cached_property
    def rows(self) -> list[RowResult]:
        """Every row when the records are held, else the rows with problems."""
        if not self.held:
            return list(self.problem_rows.values())
        rows: list[RowResult] = []
        blocked_tabs = self.blocked_tabs
        for what in KINDS:
            for record in self.records.of_kind(what):
                result = self.problem_rows.get(len(rows))
                if result is None:
                    result = RowResult(record.sheet, record.row, what, record.key)
                result.blocked = blocked_tabs.get(record.sheet, "")
                rows.append(result)
        return rows

    @property
    def blocked_tabs(self) -> dict[str, str]:
        """Tab -> why none of its rows can be used: the required columns it lacks, or
        headers that would leave a column's values out (misspelt, another template's)."""
        return _blocked_tabs(self.records)

    @property
    def totals(self) -> dict[str, int]:
        return {"valid": self.count - self.invalid, "invalid": self.invalid}

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"] + [
            p for r in self.problem_rows.values() for p in r.errors
        ]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"] + [
            p for r in self.problem_rows.values() for p in r.warnings
        ]

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems) and all(
            not r.errors for r in self.problem_rows.values()
        )

    HEADER = ("source", "template")

    def header(self) -> dict[str, Any]:
        return {**super().header(), "warnings": len(self.warnings)}

    def sheet_problems(self) -> list[Problem]:
        return self.problems

    def sheet_records(self) -> SiteRecords:
        return self.records

    def listed(self) -> dict[str, Any]:
        """What the console and the report files show: ``to_dict()`` with, in ``rows``,
        only the rows with errors or warnings (``problem_rows``, in their order); the
        others are counted in ``totals``. The JSON report of a streamed validation has
        every row (``reports.json_report.RowSpill``), these in their places."""
        return {**self.head(), "rows": [row.to_dict() for row in self.problem_rows.values()]}


# The kinds of rows, in the order of the report's rows.
KINDS = ("device", "user", "downlink")


def _blocked_tabs(site: SiteRecords) -> dict[str, str]:
    blocked = {
        tab: f"the {tab} tab has no column for {', '.join(sorted(names))}"
        for tab, names in site.missing.items()
    }
    for tab, headers in site.bad_headers.items():
        named = listed([f"'{h}'" for h in headers])
        why = f"the {tab} tab's header{'s' if len(headers) > 1 else ''} {named} must be fixed"
        blocked[tab] = f"{blocked[tab]}; {why}" if tab in blocked else why
    return blocked


# --- validation ----------------------------------------------------------------------------


class RowSink(Protocol):
    """Where a streamed validation puts each row as it is checked, in the report's order
    (the JSON report's rows). A row with problems may gain more when every row has
    been read (the same key in a later row): the report's ``problem_rows`` have them."""

    def write(self, row: RowResult) -> None:
        """The next row."""

    def write_like(self, like: RowResult, rows: Sequence[tuple[int | None, str]]) -> None:
        """The next rows, each as ``like`` (a row without problems) but for its row
        number and key."""


def validate_sheet(
    path: Sheet, template: SiteTemplate, *, tab: str | None = None
) -> ValidationReport:
    """Read the sheet (a file, or DataFrames: ``frames.Sheet``), map it through the
    template and check every row, every record held in the report (for plan and apply);
    ``tab`` (``--tab``) names the tab that holds the devices.

    Raises SheetError when the file cannot be read at all (or has no tab ``tab``);
    everything else is in the report.
    """
    return _validate(path, template, tab, hold=True)


def validate_stream(
    path: Sheet, template: SiteTemplate, rows: RowSink | None = None, *, tab: str | None = None
) -> ValidationReport:
    """``validate_sheet`` without holding the records: each row is read, converted and
    checked, and dropped unless it has a problem; ``rows`` gets every row as it is
    checked. What is held beyond the rows with problems is the keys that must be
    unique (compactly: ``_Keys``).

    Raises SheetError when the file cannot be read at all (or has no tab ``tab``).
    """
    return _validate(path, template, tab, hold=False, sink=rows)


def _validate(
    path: Sheet,
    template: SiteTemplate,
    tab: str | None,
    *,
    hold: bool,
    sink: RowSink | None = None,
) -> ValidationReport:
    # Like reading the sheet, mapping and checking its rows creates hundreds of thousands
    # of objects: the cycle collector pauses, and the cyclic garbage of the blocks passed
    # (a failing body's explanation leaves a little) is swept every _SWEEP_EVERY of them.
    with _no_cyclic_gc():
        stream = RecordStream(open_workbook(path), template, tab=tab)
        checks = _Checks(stream.site, template, hold=hold, sink=sink)
        for number, block in enumerate(stream, 1):
            checks.block(block)
            del block
            if number % _SWEEP_EVERY == 0:
                gc.collect(0)
        del stream  # the workbook goes before the rows found are finished
        return checks.finish(sheet_name(path))


# Blocks between two sweeps: a sweep walks what was made since the last (the block at hand,
# the rows with problems found), and 16 blocks of failing rows leave a few MB of garbage.
_SWEEP_EVERY = 16


class _Checks:
    """Every check of the rows, a block at a time; the rules across rows at the end.

    Each block's records are checked against the schemas and the template, their
    problems (and those met reading them) attached to their rows, and the rows
    handed to the sink; the records are kept only when ``hold``. The keys that must
    be unique are kept (``_Keys``), and when every row has passed, the rows that share
    one (and downlinks for a device the sheet lacks) get their problems.
    """

    def __init__(
        self, site: SiteRecords, template: SiteTemplate, *, hold: bool, sink: RowSink | None
    ) -> None:
        self.site = site
        self.template = template
        self.hold = hold
        self.sink = sink
        self.index = 0  # the next row's index in the report's rows
        self.invalid = 0
        self.loose: list[Problem] = []  # found in a block, not tied to one of its rows
        self.problem_rows: dict[int, RowResult] = {}
        # Per kind: where its rows start, their Excel numbers and keys, and its tab's
        # cells and headers (every record of a tab shares them).
        self.start: dict[str, int] = {}
        self.numbers: dict[str, array[int]] = {what: array("q") for what in KINDS}
        self.tab: dict[str, Record] = {}
        match_key = template.match_key
        self.keys: dict[str, list[tuple[str, _Keys, Kind]]] = {
            "device": [(match_key, _Keys(), DUPLICATE_KEY)]
            + ([("addr", _Keys(), DUPLICATE_ADDR)] if match_key != "addr" else []),
            "user": [("email", _Keys(fold=True), DUPLICATE_EMAIL)],
            "downlink": [],
        }
        # Downlinks: the first row of each key and type, and those whose device is
        # looked for among the devices' keys at the end.
        self.queued: dict[tuple[str, str], int] = {}
        self.targets: list[tuple[int, DownlinkRecord]] = []

    def block(self, block: RecordBlock) -> None:
        what, records = block.kind, block.records
        site, template = self.site, self.template
        problems = list(block.problems)
        # A cell already reported (e.g. Excel damage) is not reported again by the schema.
        flagged = {(p.sheet, p.row, p.column) for p in problems}
        if what == "device":
            _check_bodies(records, "deviceInput", problems, flagged, site.missing)
            _check_device_types(records, template, problems)
        elif what == "user":
            _check_bodies(records, "userInput", problems, flagged, site.missing)
        else:
            downlinks: list[DownlinkRecord] = block.records  # type: ignore[assignment]
            _check_downlinks(downlinks, problems)
            self._downlinks(downlinks, problems, flagged)
        self.start.setdefault(what, self.index)
        numbers = self.numbers[what]
        if records:
            self.tab.setdefault(what, records[0])
        for name, keys, _ in self.keys[what]:
            keys.extend([record.body.get(name) for record in records])
        # A RowResult only for the rows with problems; should two records ever share a
        # sheet row, the last one takes its problems.
        results: dict[tuple[str, int | None], tuple[int, RowResult]] = {}
        if problems:
            wanted = {(p.sheet, p.row) for p in problems if p.row is not None}
            rows_wanted = {row for _, row in wanted}  # a cheap first test for every record
            for at, record in enumerate(records):
                if record.row in rows_wanted and (record.sheet, record.row) in wanted:
                    results[(record.sheet, record.row)] = (
                        at,
                        RowResult(record.sheet, record.row, what, record.key),
                    )
            for problem in problems:
                found = results.get((problem.sheet, problem.row))
                if found is None:
                    self.loose.append(problem)
                elif problem.severity == "error":
                    found[1].errors.append(problem)
                else:
                    found[1].warnings.append(problem)
        by_offset = dict(results.values())
        blocked = _blocked_tabs(site).get(records[0].sheet, "") if records else ""
        numbers.extend([record.row for record in records])
        for at, result in by_offset.items():
            result.blocked = blocked
            self.problem_rows[self.index + at] = result
        # A record is valid without errors and with every required column.
        if blocked:
            self.invalid += len(records)
        else:
            self.invalid += sum(1 for result in by_offset.values() if result.errors)
        if self.hold:
            for at, record in enumerate(records):
                verdict = by_offset.get(at)
                record.valid = not blocked and (verdict is None or not verdict.errors)
            site.of_kind(what).extend(records)
        else:
            secret = (
                records if what != "device" else (r for r in records if r.body.get("initialConfig"))
            )
            for record in secret:
                site.passed_secrets.update(record_secrets(what, record))
        if self.sink is not None:
            # The rows without problems between two with problems go in one run.
            like = RowResult(records[0].sheet, 0, what, "", blocked=blocked)
            start = 0
            for at in sorted(by_offset) + [len(records)]:
                if at > start:
                    self.sink.write_like(like, [(r.row, r.key) for r in records[start:at]])
                if at < len(records):
                    self.sink.write(by_offset[at])
                start = at + 1
        self.index += len(records)

    def _downlinks(
        self,
        records: list[DownlinkRecord],
        problems: list[Problem],
        flagged: set[tuple[str, int | None, str | None]],
    ) -> None:
        """A downlink without a device key, and one of a type its device has queued in an
        earlier row; the others are looked for among the devices at the end."""
        match_key = self.template.match_key
        first = self.index
        for at, record in enumerate(records, first):
            if not record.key:
                if (record.sheet, record.row, record.cells.get("key")) in flagged:
                    continue  # the key cell itself is damaged and reported
                problems.append(
                    _problem_at(
                        record, "key", f"the downlink has no device {match_key}", SCHEMA_RULE, ""
                    )
                )
                continue
            self.targets.append((at, record))
            if record.type:
                earlier = self.queued.setdefault((record.key, record.type), record.row)
                if earlier != record.row:
                    problems.append(
                        _problem_at(
                            record,
                            "type",
                            f"row {earlier} already queues a {record.type} downlink for "
                            f"'{record.key}'",
                            DUPLICATE_DOWNLINK,
                            record.type,
                        )
                    )

    def finish(self, source: str) -> ValidationReport:
        """The rules across rows, and the report."""
        late: list[_Late] = []
        for what in KINDS:
            for name, keys, kind_of in self.keys[what]:
                late += self._duplicates(what, name, keys, kind_of)
        late += self._unknown_targets()
        site = self.site
        blocked = _blocked_tabs(site)
        for index, what, key, problem in late:
            result = self.problem_rows.get(index)
            if result is None:
                result = self.problem_rows[index] = RowResult(
                    problem.sheet, problem.row or 0, what, key
                )
                result.blocked = blocked.get(problem.sheet, "")
            if problem.severity == "error":
                if not result.errors and not result.blocked:
                    self.invalid += 1
                result.errors.append(problem)
            else:
                result.warnings.append(problem)
            if self.hold and problem.severity == "error":
                what = result.kind
                site.of_kind(what)[index - self.start[what]].valid = False
        return ValidationReport(
            source,
            self.template.ref,
            [*site.problems, *self.loose],
            site,
            dict(sorted(self.problem_rows.items())),
            count=self.index,
            invalid=self.invalid,
            held=self.hold,
        )

    def _duplicates(self, what: str, name: str, keys: _Keys, kind_of: Kind) -> list[_Late]:
        """A problem on each row whose ``name`` another row has too, naming the others."""
        found: list[_Late] = []
        start, numbers, tab = self.start.get(what, 0), self.numbers[what], self.tab.get(what)
        if tab is None:
            return found
        # The row's key (its match key, its email) from what is kept of it.
        row_keys = self.keys[what][0][1]
        for group in keys.groups():
            for position in group:
                row = numbers[position]
                others = _others(numbers, group, position)
                value = keys.value(position)
                message = f"{tab.headers.get(name, name)} '{value}' is also in row {others}"
                problem = Problem(
                    kind_of,
                    message,
                    tab.sheet,
                    row,
                    tab.cells.get(name),
                    tab.headers.get(name),
                    value,
                )
                key = row_keys.value(position)
                found.append(
                    (start + position, what, key.lower() if what == "user" else key, problem)
                )
        return found

    def _unknown_targets(self) -> list[_Late]:
        """A warning on each downlink for a device the sheet does not define."""
        if not self.targets:
            return []
        match_key = self.template.match_key
        devices = self.keys["device"][0][1]
        known = devices.find({record.key for _, record in self.targets})
        return [
            (
                index,
                "downlink",
                record.key,
                _problem_at(
                    record,
                    "key",
                    f"no device with {match_key} '{record.key}' in the devices tab; "
                    "the downlink is only possible if it already exists on the platform",
                    UNKNOWN_DEVICE,
                    record.key,
                ),
            )
            for index, record in self.targets
            if record.key not in known
        ]


def _others(numbers: array[int], group: list[int], position: int) -> str:
    """The rows of ``group`` but the one at ``position``, for a message as ``text.listed``
    says them: the first ``LISTED`` named, the rest counted (a key on 10,000 rows does
    not make each of them list the others)."""
    count = len(group) - 1
    shown = [str(numbers[p]) for p in islice((p for p in group if p != position), LISTED)]
    if count > LISTED:
        return f"{', '.join(shown)} and {count - LISTED} more"
    return listed(shown)


# A problem found when every row has passed: the index of its row, the row's kind and key.
_Late = tuple[int, str, str, Problem]


class _Keys:
    """One text per row of a kind (a device's match key or addr, a user's email) kept
    compactly, to find the rows that share one when every row has passed.

    A million keys as Python strings in a set would take some 150 MB: here their UTF-8
    takes a shared buffer, and each row an end offset and a hash (16 bytes). At the end
    the hashes that come twice are found, and only the rows with such a hash compared
    by their texts. A row without a text (None, not text, "") shares nothing.
    ``fold``: texts the same but for letter case are the same (emails).
    """

    def __init__(self, *, fold: bool = False) -> None:
        self.fold = fold
        self.text = bytearray()
        self.ends = array("q")
        self.hashes = array("q")

    def extend(self, values: Iterable[object]) -> None:
        """The next rows' texts."""
        texts = [value if value.__class__ is str else "" for value in values]
        self.hashes.extend(map(hash, map(str.lower, texts) if self.fold else texts))
        joined = "".join(texts)
        if joined.isascii():  # keys nearly always are: a character is a byte
            ends = accumulate(map(len, texts), initial=len(self.text))
            encoded = joined.encode("ascii")
        else:
            parts = [text.encode("utf-8", "surrogatepass") for text in texts]
            ends = accumulate(map(len, parts), initial=len(self.text))
            encoded = b"".join(parts)
        next(ends)
        self.ends.extend(ends)
        self.text += encoded

    def value(self, position: int) -> str:
        """The text of a row ("" for none)."""
        start = self.ends[position - 1] if position else 0
        return self.text[start : self.ends[position]].decode("utf-8", "surrogatepass")

    def _same(self, value: str) -> str:
        return value.lower() if self.fold else value

    def groups(self) -> list[list[int]]:
        """The rows that share a text, each group in row order, the groups in the order
        of their second row."""
        hashes = self.hashes
        # The usual sheet: no two texts share a hash (the rows without one share 0).
        blanks = hashes.count(0)
        if len(set(hashes)) == len(hashes) - max(blanks - 1, 0):
            if blanks < 2:
                return []
            blank = compress(range(len(hashes)), map((0).__eq__, hashes))
            if sum(1 for position in blank if self.value(position)) < 2:
                return []
        seen: set[int] = set()
        again: set[int] = set()
        for hashed in hashes:
            if hashed in seen:
                again.add(hashed)
            else:
                seen.add(hashed)
        del seen
        by_hash: dict[int, list[int]] = {}
        for position in compress(range(len(self.hashes)), map(again.__contains__, self.hashes)):
            by_hash.setdefault(self.hashes[position], []).append(position)
        groups: list[list[int]] = []
        for candidates in by_hash.values():
            by_text: dict[str, list[int]] = {}
            for position in candidates:
                text = self.value(position)
                if text:
                    by_text.setdefault(self._same(text), []).append(position)
            groups += (group for group in by_text.values() if len(group) > 1)
        return sorted(groups, key=lambda group: group[1])

    def find(self, values: set[str]) -> set[str]:
        """Which of ``values`` some row has."""
        hashes = {hash(self._same(value)) for value in values if value}
        had: set[str] = set()
        for position in compress(range(len(self.hashes)), map(hashes.__contains__, self.hashes)):
            had.add(self._same(self.value(position)))
        return {value for value in values if value and self._same(value) in had}


def _problem_at(
    record: Record, name: str, message: str, what: Any = SCHEMA_RULE, value: str | None = None
) -> Problem:
    return Problem(
        what,
        message,
        record.sheet,
        record.row,
        record.cells.get(name),
        record.headers.get(name),
        value,
    )


def _shown(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _check_bodies(
    records: list[Record],
    schema_name: str,
    problems: list[Problem],
    flagged: set[tuple[str, int | None, str | None]],
    missing: dict[str, set[str]],
) -> None:
    check = checker(schema_name)
    fast, failed = check.fast, fastjsonschema.JsonSchemaException
    for record in records:
        try:  # nearly every row passes: nothing more for it than this call
            fast(record.body)
            continue
        except failed:
            pass
        said: set[tuple[str, str]] = set()
        absent = missing.get(record.sheet, ())
        for error in check.explain(record.body):
            name, message = describe(error, check.schema, SECRET_NAMES)
            if error.validator == "required" and name in absent:
                continue  # the tab lacks the column: said once for the tab, not per row
            if (record.sheet, record.row, record.cells.get(name)) in flagged or (
                name,
                message,
            ) in said:
                continue
            said.add((name, message))
            raw = record.body.get(name) if name in record.body else None
            value = MASK if name in SECRET_NAMES and raw else _shown(raw)
            problems.append(_problem_at(record, name, message, value=value))


def _check_device_types(
    records: list[Record], template: SiteTemplate, problems: list[Problem]
) -> None:
    """A deviceTypeId the site's template does not list: a warning naming those it does."""
    known = template.device_types
    if not known:
        return
    listed = ", ".join(f"{number} ({name})" for number, name in sorted(known.items()))
    try:
        given = {record.body.get("deviceTypeId") for record in records}
    except TypeError:  # a value that is not a number or text: row by row below
        given = None
    if given is not None and not any(isinstance(v, int) and v not in known for v in given):
        return  # every row names a known type: the usual sheet
    for record in records:
        value = record.body.get("deviceTypeId")
        if isinstance(value, int) and value not in known:
            problems.append(
                _problem_at(
                    record,
                    "deviceTypeId",
                    f"device type {value} is not one of this site's types: {listed}",
                    UNKNOWN_DEVICE_TYPE,
                    str(value),
                )
            )


def _check_downlinks(records: list[DownlinkRecord], problems: list[Problem]) -> None:
    for record in records:
        if not record.type:
            if "type" in record.cells or record.valid:
                problems.append(
                    _problem_at(
                        record, "type", "the downlink type is missing", UNKNOWN_DOWNLINK_TYPE, ""
                    )
                )
            continue
        if record.type not in DOWNLINK_TYPES:
            problems.append(
                _problem_at(
                    record,
                    "type",
                    f"downlink type '{record.type}' is not one of {', '.join(DOWNLINK_TYPES)}",
                    UNKNOWN_DOWNLINK_TYPE,
                    record.type,
                )
            )
            continue
        if not record.valid and not record.body:
            continue  # the payload cell itself was unreadable; already reported
        check = checker(f"downlink-{record.type}")
        for error in check.errors(record.body):
            _, message = describe(error, check.schema)
            problems.append(
                _problem_at(
                    record,
                    "payload",
                    f"{check.schema['title']}: {message}",
                    value=_shown(record.body),
                )
            )
