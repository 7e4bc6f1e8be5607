"""Site templates: how an installer's sheet maps to the platform's bodies.

A site template is a TOML file (``templates/*.toml`` ships the built-in ones)
that names the tabs, the header aliases of every field, defaults, per-column
rules and the key devices are matched by. ``load_template`` reads one and
checks it completely: a mistake in a template would otherwise show up as a
confusing problem in every row of every sheet, so every unknown key, wrong
type or contradiction is a ``TemplateError`` that names the file and the key,
with a did-you-mean where one is close.

Field names are the platform's (deviceInput, userInput, downlink); an
``initialConfig`` key is the field ``cfg:<key>``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner import fields
from provisioner.errors import TemplateError as TemplateError
from provisioner.fields import CONFIG_PREFIX as CONFIG_FIELD_PREFIX
from provisioner.fields import DOWNLINK_TYPES, NEEDED, TAGS_MODES, Field, is_config_field
from provisioner.resources import data_folder
from provisioner.toml_files import parse_toml, read_toml

MATCH_KEYS = ("serial", "addr")
LIST_SEPARATORS = (",", ";", "|")
# What separates tags (and roles) in one cell when the template does not say: "," and ";"
# both ("Haus 4; Keller" is two tags, as installers mean it); the first joins lists.
DEFAULT_LIST_SEPARATORS = (",", ";")


@dataclass(frozen=True)
class RulePattern:
    """A rule's pattern, matched by RE2: in time that grows with the cell's length
    alone, whatever the pattern, so that no template can hang a run on one cell
    (Python's ``re`` takes minutes for ``(a+)+b`` on 35 characters).

    ``pattern`` is the text as the template writes it.
    """

    pattern: str
    compiled: Any = dataclasses.field(repr=False, compare=False)

    def fullmatch(self, text: str) -> bool:
        """Whether the pattern matches the whole text."""
        # Bytes in and out: RE2's own str wrapper costs ten times the match.
        return self.compiled.fullmatch(text.encode("utf-8", "surrogatepass")) is not None


# What RE2 refuses that Python's re takes, by how RE2's message quotes it, named so that
# the installer knows what to change (README: "What a rule pattern may use").
_NOT_IN_RE2 = (
    (re.compile(r"\\[1-9]|\\k|\(\?P(=|$)"), "a backreference"),
    (re.compile(r"\(\?<?[=!]"), "a lookahead or lookbehind"),
    (re.compile(r"\(\?>|[*+?}]\+"), "an atomic group or a possessive repeat"),
    (re.compile(r"\(\?\("), "a conditional group"),
)


def compile_pattern(text: str) -> RulePattern:
    """``text`` as a rule pattern; ValueError saying why it cannot be one."""
    import re2  # only templates with patterns need it

    options = re2.Options()
    options.log_errors = False  # RE2 would print its own line to stderr
    options.never_capture = True  # only whether it matches counts
    try:
        return RulePattern(text, re2.compile(text.encode("utf-8", "surrogatepass"), options))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else ""
        reason = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
    refused = reason.rpartition(": ")[2]
    for form, name in _NOT_IN_RE2:
        if form.match(refused):
            raise ValueError(
                f"it uses {name} ('{refused}'), which a rule pattern cannot: rules are matched "
                "without backtracking, so that no pattern can hang a run; write the pattern "
                "without it"
            )
    if reason.startswith("invalid repetition size"):
        raise ValueError(
            f"it repeats more than 1000 times in all ('{refused}'), more than rule patterns "
            "may: use + or * for 'any number'"
        )
    if refused == "\\Z":
        raise ValueError("\\Z is not known here: leave it out, a pattern matches the whole cell")
    raise ValueError(f"it is not a valid regular expression: {reason}")


@dataclass(frozen=True)
class ColumnRule:
    """A check on a cell's text, beyond what the JSON schema says.

    ``pattern`` must match the whole text; ``hex_length``/``digits`` demand exactly
    that many hex / decimal digits. ``identifier`` is true for every rule on an
    identifier (set automatically with ``hex_length``/``digits`` and on addr,
    serial, key). ``hint`` is added to the message of a cell that breaks the rule.
    """

    pattern: RulePattern | None = None
    hex_length: int | None = None
    digits: int | None = None
    identifier: bool = False
    hint: str = ""


def header_key(text: str) -> str:
    """The form headers are compared in: case, spaces, ``_`` and ``-`` do not count.

    "Serial Number", "serial_number" and "SERIALNUMBER" are the same header, and
    "E-Mail" is "email". NFKC folds the odd forms spreadsheets produce
    (non-breaking spaces, decomposed umlauts).
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\s_\-]+", "", text)


@dataclass(frozen=True)
class Refusal:
    """Columns whose filled cells a template cannot take: each such cell is an error with
    ``reason`` (an ABP session in a peer's device list: the platform takes OTAA devices).
    With ``allow``, a cell that matches it is taken (ThingPark's activationType OTAA)."""

    headers: tuple[str, ...]
    reason: str
    allow: RulePattern | None = None


@dataclass(frozen=True)
class RootKeys:
    """Which column holds a device's LoRaWAN AppKey, where a peer's files say it by the
    device's LoRaWAN version (ChirpStack keeps a 1.0.x device's AppKey in nwk_key, and
    sets app_key for 1.1.x only).

    ``version`` are the headers of the column that says the version (1.0.x or 1.1.x; read,
    not sent); ``app_key_1_0`` the field whose column holds a 1.0.x device's AppKey.
    """

    version: tuple[str, ...]
    app_key_1_0: str


# A derived value's placeholder: {addr}, {addr:lower}, {addr:upper}.
_PLACEHOLDER = re.compile(r"\{([A-Za-z]+)(?::(lower|upper))?\}")


@dataclass(frozen=True)
class Derived:
    """A field made from the row's other fields when its own cell is empty or its column
    missing (TTS's device id: ``eui-{addr:lower}``). ``text`` as the template writes it."""

    text: str

    def fields(self) -> list[str]:
        return [m.group(1) for m in _PLACEHOLDER.finditer(self.text)]

    def value(self, body: dict[str, Any]) -> str | None:
        """The text with the row's values put in; None when one of them is missing."""
        values = [body.get(name) for name in self.fields()]
        if any(v is None or str(v) == "" for v in values):
            return None

        def put(match: re.Match[str]) -> str:
            text = str(body[match.group(1)])
            case = match.group(2)
            return text.lower() if case == "lower" else text.upper() if case == "upper" else text

        return _PLACEHOLDER.sub(put, self.text)


@dataclass(frozen=True)
class Peer:
    """Where a built-in template's format comes from: another platform's own files, read as
    they are (The Things Stack, ChirpStack, ThingPark).

    ``docs`` name the peer's documents the columns were taken from. ``signature``: headers
    its files have, spelled exactly as the peer writes them, each a tuple of spellings one
    of which is there; a sheet with all of them is that peer's file, whatever other columns
    it has (the header guess, ``template_choice``).
    """

    name: str
    docs: tuple[str, ...]
    signature: tuple[tuple[str, ...], ...]

    def signed(self, headers: Iterable[str]) -> bool:
        """Whether ``headers`` hold the signature, spelled exactly so."""
        present = {h.strip() for h in headers if h}
        return bool(self.signature) and all(
            any(s in present for s in spellings) for spellings in self.signature
        )


@dataclass(frozen=True)
class TabSpec:
    """How one tab of the sheet (Devices, Users or Downlinks) maps to platform fields.

    ``columns`` maps a field to its header aliases as written in the template;
    ``defaults`` gives values for empty cells and missing columns, except
    ``tags``, which are added to every row; ``rules`` maps a field (or
    ``cfg:<key>``) to its rule; ``ignore`` lists headers that are known and
    deliberately not sent. ``config_prefix`` ("" for users and downlinks) marks
    headers whose rest is an initialConfig key. ``tab_aliases`` are other names
    the tab may have (e.g. "Benutzer" for "Users"). ``list_separators`` split a list
    cell (tags, roles): both of ``DEFAULT_LIST_SEPARATORS``, or only the template's own
    ``list_separator`` when it sets one, which also joins lists (exports, examples).

    Devices only: ``not_sent`` are headers known and not sent that a sheet is told of
    in one line (a peer's columns the platform has no place for); ``refusals`` columns
    whose filled cells are errors; ``root_keys`` where a peer keeps the AppKey by
    LoRaWAN version; ``derived`` fields made from others when their cell is empty.
    """

    tab: str
    columns: dict[str, tuple[str, ...]]
    defaults: dict[str, Any]
    list_separator: str
    rules: dict[str, ColumnRule]
    ignore: tuple[str, ...]
    config_prefix: str
    tab_aliases: tuple[str, ...] = ()
    section: str = "devices"  # which of the catalogue's tabs: devices, users, downlinks
    list_separators: tuple[str, ...] = ()  # (): list_separator alone
    not_sent: tuple[str, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    root_keys: RootKeys | None = None
    derived: dict[str, Derived] = dataclasses.field(default_factory=dict)
    _by_header: dict[str, str] = dataclasses.field(init=False, repr=False, compare=False)
    _ignored: frozenset[str] = dataclasses.field(init=False, repr=False, compare=False)
    _unsent: frozenset[str] = dataclasses.field(init=False, repr=False, compare=False)
    _refused: dict[str, Refusal] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_header = {header_key(a): name for name, aliases in self.columns.items() for a in aliases}
        object.__setattr__(self, "_by_header", by_header)
        object.__setattr__(self, "_ignored", frozenset(header_key(h) for h in self.ignore))
        refused = {header_key(h): r for r in self.refusals for h in r.headers}
        object.__setattr__(self, "_refused", refused)
        version = self.root_keys.version if self.root_keys else ()
        unsent = {header_key(h) for h in (*self.not_sent, *version)} | set(refused)
        object.__setattr__(self, "_unsent", frozenset(unsent))
        if not self.list_separators:
            object.__setattr__(self, "list_separators", (self.list_separator,))

    def field_for(self, header: str) -> str | None:
        """The field a column with this header holds, or None (unknown or ignored).

        A header starting with the config prefix (any case) gives ``cfg:<key>``
        with the key as written after the prefix.
        """
        key = header_key(header)
        if not key or key in self._ignored:
            return None
        if key in self._by_header:
            return self._by_header[key]
        prefix = self.config_prefix
        text = unicodedata.normalize("NFKC", header).strip()
        if prefix and text[: len(prefix)].casefold() == prefix.casefold():
            config_key = text[len(prefix) :].strip()
            if config_key:
                return CONFIG_FIELD_PREFIX + config_key
        return None

    def is_ignored(self, header: str) -> bool:
        """Whether the header is one the template knows and deliberately does not send
        (``ignore``, said nothing of; ``not_sent``, a LoRaWAN version column and refused
        columns, told of: ``is_unsent``)."""
        key = header_key(header)
        return key in self._ignored or key in self._unsent

    def is_unsent(self, header: str) -> bool:
        """Whether the header is one a sheet is told is not sent: ``not_sent``, the LoRaWAN
        version column of ``root_keys``, a refused column."""
        return header_key(header) in self._unsent

    def refusal(self, header: str) -> Refusal | None:
        """The refusal of a column whose filled cells the template cannot take, or None."""
        return self._refused.get(header_key(header))

    def is_version(self, header: str) -> bool:
        """Whether the header is that of the LoRaWAN version column of ``root_keys``."""
        keys = self.root_keys
        return keys is not None and header_key(header) in {header_key(h) for h in keys.version}

    def field(self, name: str) -> Field | None:
        """The catalogue's entry for a field of this tab."""
        return fields.field(self.section, name)

    def rule(self, name: str) -> ColumnRule | None:
        """The field's rule: the template's, else for an initialConfig key that holds a hex
        identifier (cfg:JoinEUI, cfg:AppKey) its length from the catalogue, so that a key
        list read through any template is checked alike."""
        rule = self.rules.get(name)
        if rule is None and is_config_field(name):
            known = self.field(name)
            if known is not None and known.hex_length is not None:
                key = name[len(CONFIG_FIELD_PREFIX) :]
                rule = ColumnRule(
                    hex_length=known.hex_length,
                    identifier=True,
                    hint=f"{'an' if key[:1] in 'AEIOU' else 'a'} {key} has "
                    f"{known.hex_length} hex digits (0-9, A-F)",
                )
        return rule

    def is_identifier(self, name: str) -> bool:
        """addr, serial and key, and every field whose rule makes it an identifier."""
        rule = self.rule(name)
        known = self.field(name)
        return (known is not None and known.identifier) or (rule is not None and rule.identifier)

    def is_secret(self, name: str) -> bool:
        """A field never shown: a password, a LoRaWAN key (``cfg:AppKey``)."""
        return fields.is_secret(self.section, name)

    def hex_length(self, name: str) -> int | None:
        """The digits of a hex identifier field (the rule's hex_length, else the
        catalogue's: a DevEUI as addr, cfg:JoinEUI, cfg:AppKey), or None."""
        rule = self.rules.get(name)
        if rule is not None and rule.hex_length is not None:
            return rule.hex_length
        known = self.field(name)
        return known.hex_length if known is not None else None

    def near_header(self, header: str) -> tuple[str, str] | None:
        """(field, header as the template writes it) of a header this one is probably a
        misspelling of ("AppKy" for "AppKey", "Seriennumer"), or None.

        A misspelling is one or two typing slips away (one for headers of up to six
        letters); a header that holds a template header and more ("Serial old",
        "DevEUI 2") is another column, and so is a LoRaWAN key's own name (AppSKey).
        """
        key = header_key(header)
        if key in HEX_CONFIG_NAMES:
            return None
        best: tuple[int, str, str] | None = None
        for name, names in self.columns.items():
            for alias in names:
                other = header_key(alias)
                if len(other) < 4 or other in key:
                    continue
                allowed = 1 if len(other) <= 6 else 2
                slips = _slips(key, other, allowed)
                if slips <= allowed and (best is None or slips < best[0]):
                    best = (slips, name, alias)
        return (best[1], best[2]) if best else None


@dataclass(frozen=True)
class SiteTemplate:
    """A loaded and checked site template.

    ``site_tag`` marks this site's devices on the platform; it is not folded into
    ``devices.defaults["tags"]``: add both to every device.
    """

    name: str
    source: str
    description: str
    match_key: str
    site_tag: str | None
    devices: TabSpec
    users: TabSpec
    downlinks: TabSpec
    device_types: dict[int, str]
    # How an update meets the device's tags: "add" the sheet's, or make them "exact".
    tags_mode: str = "add"
    # The letter case hex identifiers (DevEUI, JoinEUI, keys) are sent in.
    hex_case: str = "upper"
    # A peer's own files (TTS, ChirpStack, ThingPark), read as they are; None: Lobaro's layouts.
    peer: Peer | None = None

    def not_a_layout(self, what: str) -> str | None:
        """Why ``what`` (a blank workbook, an export) is not made in this template's layout:
        a peer's format is read, never written; None for Lobaro's own layouts."""
        if self.peer is None:
            return None
        return (
            f"the template '{self.name}' reads {self.peer.name}'s device files as they are; "
            f"{what} is written in Lobaro's own layouts: use lorawan-meter (DevEUI, JoinEUI, "
            "AppKey) or another of them that `provisioner templates` lists"
        )

    @property
    def ref(self) -> str:
        """What ``--template`` takes to load it again: a built-in's name, a file's path.

        Workbooks, reports and saved plans record this.
        """
        return self.name if self.source == "built-in" else self.source


_TOP_KEYS = (
    "description",
    "match_key",
    "site_tag",
    "hex_case",
    "peer",
    "devices",
    "device_types",
    "users",
    "downlinks",
)
_SECTION_KEYS = {
    "devices": (
        "tab",
        "list_separator",
        "config_prefix",
        "tags",
        "ignore",
        "columns",
        "defaults",
        "rules",
        "not_sent",
        "refuse",
        "root_keys",
        "derived",
    ),
    "users": ("tab", "list_separator", "ignore", "columns", "defaults", "rules"),
    "downlinks": ("tab", "ignore", "columns", "defaults", "rules"),
}
_RULE_KEYS = ("pattern", "hex_length", "digits", "identifier", "hint")
_PEER_KEYS = ("name", "docs", "signature")
_REFUSE_KEYS = ("headers", "reason", "allow")
_ROOT_KEYS_KEYS = ("version", "app_key_1_0")

# What a template gets for a section or key it leaves out. The users and downlinks
# tabs look the same at every site, so templates rarely need to say anything about them.
_BUILT_IN: dict[str, dict[str, Any]] = {
    "devices": {"tab": ["Devices", "Geräte"], "list_separator": ",", "config_prefix": "cfg:"},
    "users": {
        "tab": ["Users", "Benutzer", "Nutzer"],
        "list_separator": ",",
        "columns": {
            "name": ["name", "full name", "vollständiger Name", "Vor- und Nachname"],
            "email": ["email", "mail", "email address", "E-Mail-Adresse", "login"],
            "password": ["password", "Passwort", "Kennwort"],
            "roles": ["roles", "role", "Rollen", "Rolle"],
        },
    },
    "downlinks": {
        "tab": ["Downlinks", "Downlink"],
        "list_separator": ",",
        # The device's own match-key headers (e.g. "Seriennummer") are added at load time.
        "columns": {
            "key": ["key", "device", "Schlüssel", "Gerät"],
            "type": ["type", "downlink type", "Typ", "Downlink-Typ"],
            "payload": ["payload", "body", "Inhalt", "Nutzdaten"],
        },
    },
}


def list_templates() -> list[str]:
    """The names of the built-in templates, sorted."""
    folder = data_folder("templates")
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def layout_templates() -> list[str]:
    """The built-in templates of Lobaro's own layouts, the ones blank workbooks and exports
    are written in (a peer's format, ``SiteTemplate.peer``, is read, never written)."""
    return [name for name in list_templates() if load_template(name).peer is None]


# The names of initialConfig keys that hold hex identifiers, as headers: a column named so
# (AppSKey beside AppKey) is that key, not a misspelling of another.
HEX_CONFIG_NAMES = frozenset(fields.HEX_CONFIG_KEYS)


def _slips(a: str, b: str, most: int) -> int:
    """Typing slips between two headers: letters left out, added, changed or swapped
    (optimal string alignment distance); ``most + 1`` once it is more than ``most``."""
    if abs(len(a) - len(b)) > most:
        return most + 1
    before: list[int] = []
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (x != y))
            if i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                current[j] = min(current[j], before[j - 2] + 1)
        before, row = row, current
        if min(row) > most:
            return most + 1
    return row[-1]


@functools.cache
def known_headers(section: str) -> dict[str, tuple[str, str]]:
    """Every header a built-in template reads on a tab: header_key -> (field, template),
    so that a sheet using another template's name for a field is told, not ignored."""
    known: dict[str, tuple[str, str]] = {}
    for name in list_templates():
        try:
            template = load_template(name)
        except TemplateError:
            continue
        if template.peer is not None:
            # A peer's names (TTS's "id") are its files' own: a sheet of Lobaro's layouts
            # with such a column means its own notes, not that peer's format.
            continue
        spec = getattr(template, section)
        for field_name, aliases in spec.columns.items():
            for alias in (field_name, *aliases):
                known.setdefault(header_key(alias), (field_name, name))
    return known


def load_template(name_or_path: str) -> SiteTemplate:
    """A built-in template by name ("default") or a template file by path (``site.toml``)."""
    if name_or_path.endswith(".toml") or "/" in name_or_path or "\\" in name_or_path:
        path = Path(name_or_path)
        if not path.exists():
            raise TemplateError(f"template file {name_or_path} does not exist")
        doc = read_toml(path, name_or_path, TemplateError)
        return _Parser(name_or_path).template(doc, path.stem, name_or_path)
    names = list_templates()
    if name_or_path not in names:
        close = difflib.get_close_matches(name_or_path, names, n=1)
        mean = f": did you mean '{close[0]}'?" if close else ""
        raise TemplateError(
            f"unknown template '{name_or_path}'{mean} Built-in templates: {', '.join(names)}; "
            "or give the path of a .toml file"
        )
    where = f"templates/{name_or_path}.toml"
    data = data_folder("templates").joinpath(f"{name_or_path}.toml").read_bytes()
    doc = parse_toml(data, where, TemplateError)
    return _Parser(where).template(doc, name_or_path, "built-in")


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    folded = {c.casefold(): c for c in choices}
    close = difflib.get_close_matches(word.casefold(), list(folded), n=1)
    if close:
        return f": did you mean '{folded[close[0]]}'?"
    return f" (expected one of: {', '.join(choices)})"


class _Parser:
    """Reads one template's TOML; every error names the file and the key."""

    def __init__(self, where: str) -> None:
        self.where = where

    def place(self, section: str) -> str:
        return f"[{section}] of {self.where}" if section else self.where

    def template(self, doc: dict[str, Any], name: str, source: str) -> SiteTemplate:
        self.known_keys(doc, _TOP_KEYS, "")
        description = self.text(doc.get("description", ""), "description", "")
        if "\n" in description:
            raise TemplateError(f"'description' in {self.where} must be one line")
        match_key = self.text(doc.get("match_key", "serial"), "match_key", "")
        if match_key not in MATCH_KEYS:
            raise TemplateError(
                f"'match_key' in {self.where} must be 'serial' or 'addr', not '{match_key}'"
            )
        site_tag = self.site_tag(doc.get("site_tag"))
        devices = self.tab_spec("devices", doc.get("devices", {}))
        for needed in (*NEEDED["devices"], match_key):
            if needed not in devices.columns:
                raise TemplateError(
                    f"[devices.columns] of {self.where} has no '{needed}': every device needs "
                    + ("an address" if needed == "addr" else f"a {needed}, the match_key")
                )
        device_types = self.device_types(doc.get("device_types", {}))
        type_id = devices.defaults.get("deviceTypeId")
        if device_types and type_id is not None and type_id not in device_types:
            raise TemplateError(
                f"the default deviceTypeId {type_id} of {self.where} is not in [device_types]"
            )
        users = self.tab_spec("users", doc.get("users", {}))
        downlinks = self.tab_spec("downlinks", doc.get("downlinks", {}), devices, match_key)
        raw_devices = doc.get("devices", {})
        tags_mode = self.text(
            raw_devices.get("tags", "add") if isinstance(raw_devices, dict) else "add",
            "tags",
            "devices",
        )
        if tags_mode not in TAGS_MODES:
            raise TemplateError(
                f"'tags' in {self.place('devices')} must be 'add' (an update adds the sheet's "
                "tags and keeps those others gave the device) or 'exact' (the sheet's tags "
                f"become the whole list), not '{tags_mode}'"
            )
        hex_case = self.text(doc.get("hex_case", "upper"), "hex_case", "")
        if hex_case not in fields.HEX_CASES:
            raise TemplateError(
                f"'hex_case' in {self.where} must be 'upper' or 'lower' (the case DevEUIs and "
                f"keys are sent in), not '{hex_case}'"
            )
        return SiteTemplate(
            name=name,
            source=source,
            description=description,
            match_key=match_key,
            site_tag=site_tag,
            devices=devices,
            users=users,
            downlinks=downlinks,
            device_types=device_types,
            tags_mode=tags_mode,
            hex_case=hex_case,
            peer=self.peer(doc.get("peer")),
        )

    # -- building blocks -------------------------------------------------------------

    def known_keys(
        self, table: dict[str, Any], allowed: Iterable[str], section: str, what: str = "key"
    ) -> None:
        allowed = list(allowed)
        for key in table:
            if key not in allowed:
                raise TemplateError(
                    f"unknown {what} '{key}' in {self.place(section)}{_did_you_mean(key, allowed)}"
                )

    def table(self, value: Any, key: str, section: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            name = f"{section}.{key}" if section else key
            raise TemplateError(f"'{key}' in {self.place(section)} must be a table like [{name}]")
        return value

    def text(self, value: Any, key: str, section: str) -> str:
        if not isinstance(value, str):
            raise TemplateError(f"'{key}' in {self.place(section)} must be a text in quotes")
        return value

    def names(self, value: Any, key: str, section: str, allow_empty: bool = False) -> list[str]:
        """A list of non-empty texts; a single text is a list of one."""
        items = [value] if isinstance(value, str) else value
        if (
            not isinstance(items, list)
            or not all(isinstance(i, str) and i.strip() for i in items)
            or not (items or allow_empty)
        ):
            raise TemplateError(
                f'\'{key}\' in {self.place(section)} must be a list of texts, e.g. ["a", "b"]'
            )
        return items

    def pattern(self, table: dict[str, Any], key: str, section: str) -> RulePattern | None:
        """``table[key]`` as a rule pattern (RE2), or None when the table has no such key."""
        if key not in table:
            return None
        text = self.text(table[key], key, section)
        try:
            return compile_pattern(text)
        except ValueError as exc:
            raise TemplateError(f"'{key}' '{text}' in {self.place(section)}: {exc}") from None

    def positive(self, value: Any, key: str, section: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TemplateError(
                f"'{key}' in {self.place(section)} must be a whole number, 1 or more"
            )
        return value

    def site_tag(self, value: Any) -> str | None:
        if value is None:
            return None
        tag = self.text(value, "site_tag", "")
        # The tag lookup sends fa:tags=contains:<tag>, where a comma separates tags.
        if not tag.strip() or "," in tag or tag != tag.strip():
            raise TemplateError(
                f"'site_tag' in {self.where} must be a tag without commas or outer spaces, "
                f"not '{tag}'"
            )
        return tag

    def device_types(self, value: Any) -> dict[int, str]:
        table = self.table(value, "device_types", "")
        types: dict[int, str] = {}
        for key, name in table.items():
            if not re.fullmatch(r"[1-9][0-9]*", key):
                raise TemplateError(
                    f"device type id '{key}' in [device_types] of {self.where} must be "
                    "a whole number, 1 or more"
                )
            if not isinstance(name, str) or not name.strip():
                raise TemplateError(
                    f"device type {key} in [device_types] of {self.where} needs a name in quotes"
                )
            types[int(key)] = name
        return types

    # -- one tab ---------------------------------------------------------------------

    def tab_spec(
        self,
        section: str,
        value: Any,
        devices: TabSpec | None = None,
        match_key: str = "serial",
    ) -> TabSpec:
        raw = self.table(value, section, "")
        self.known_keys(raw, _SECTION_KEYS[section], section)
        built_in = _BUILT_IN[section]
        known = fields.FIELDS[section]

        tab_names = self.names(raw.get("tab", built_in["tab"]), "tab", section)
        separator = self.text(
            raw.get("list_separator", built_in["list_separator"]), "list_separator", section
        )
        # A template that names its separator means that one alone.
        separators = (separator,) if "list_separator" in raw else DEFAULT_LIST_SEPARATORS
        if separator not in LIST_SEPARATORS:
            raise TemplateError(
                f"'list_separator' in {self.place(section)} must be one of "
                f"{' '.join(LIST_SEPARATORS)}, not '{separator}'"
            )
        prefix = ""
        if section == "devices":
            prefix = self.text(
                raw.get("config_prefix", built_in["config_prefix"]), "config_prefix", section
            ).strip()
            if not prefix:
                raise TemplateError(f"'config_prefix' in {self.place(section)} must not be empty")
        ignore = self.names(raw.get("ignore", []), "ignore", section, allow_empty=True)
        not_sent = self.names(raw.get("not_sent", []), "not_sent", section, allow_empty=True)
        refusals = self.refusals(raw.get("refuse", []), section)
        raw_keys = raw.get("root_keys")
        version = (
            self.names(
                self.table(raw_keys, "root_keys", section).get("version", []),
                "version",
                f"{section}.root_keys",
                allow_empty=True,
            )
            if raw_keys is not None
            else []
        )

        columns = self.columns(section, raw, known, bool(prefix))
        if section == "downlinks" and devices is not None and "key" not in raw.get("columns", {}):
            # A Downlinks tab names devices the way the Devices tab does: "Seriennummer" etc.
            columns["key"] = columns["key"] + devices.columns[match_key]
        unsent = {
            "ignored": ignore,
            "not sent (not_sent)": not_sent,
            "refused (refuse)": [h for r in refusals for h in r.headers],
            "the LoRaWAN version (root_keys)": version,
        }
        columns = self.check_aliases(section, columns, unsent, prefix)
        root_keys = self.root_keys(raw_keys, version, columns, section)
        derived = self.derived(raw.get("derived", {}), known, section)

        defaults = self.defaults(section, raw.get("defaults", {}), known)
        for name in derived:
            if name in defaults:
                raise TemplateError(
                    f"'{name}' in {self.place(section)} is both derived and a default: keep one"
                )
        rules = self.rules(section, raw.get("rules", {}), known, bool(prefix))
        if section == "downlinks" and devices is not None and "key" not in rules:
            key_rule = devices.rules.get(match_key)
            if key_rule is not None:
                rules["key"] = key_rule
        return TabSpec(
            tab=tab_names[0],
            columns=columns,
            defaults=defaults,
            list_separator=separator,
            rules=rules,
            ignore=tuple(ignore),
            config_prefix=prefix,
            tab_aliases=tuple(tab_names[1:]),
            section=section,
            list_separators=separators,
            not_sent=tuple(not_sent),
            refusals=tuple(refusals),
            root_keys=root_keys,
            derived=derived,
        )

    def peer(self, value: Any) -> Peer | None:
        """[peer]: the platform whose files the template reads as they are."""
        if value is None:
            return None
        table = self.table(value, "peer", "")
        self.known_keys(table, _PEER_KEYS, "peer")
        if "name" not in table:
            raise TemplateError(f"[peer] of {self.where} needs a name: the platform's name")
        name = self.text(table["name"], "name", "peer").strip()
        docs = self.names(table.get("docs", []), "docs", "peer", allow_empty=True)
        raw = table.get("signature", [])
        if not isinstance(raw, list):
            raise TemplateError(f"'signature' in {self.place('peer')} must be a list")
        signature = tuple(
            tuple(self.names(item, "signature", "peer")) for item in raw
        )  # a text, or a list of spellings one of which is there
        return Peer(name, tuple(docs), signature)

    def refusals(self, value: Any, section: str) -> list[Refusal]:
        """[[devices.refuse]]: columns whose filled cells are errors, with the reason."""
        where = f"{section}.refuse"
        if section != "devices" and value:
            raise TemplateError(f"'refuse' in {self.place(section)}: only the devices tab has it")
        items = [value] if isinstance(value, dict) else value
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise TemplateError(
                f"'refuse' in {self.place(section)} must be tables like [[{where}]]"
            )
        refusals = []
        for item in items:
            self.known_keys(item, _REFUSE_KEYS, where)
            headers = self.names(item.get("headers"), "headers", where)
            reason = self.text(item.get("reason", ""), "reason", where).strip()
            if not reason:
                raise TemplateError(
                    f"[[{where}]] of {self.where} needs a reason: why such a cell cannot be taken"
                )
            refusals.append(Refusal(tuple(headers), reason, self.pattern(item, "allow", where)))
        return refusals

    def root_keys(
        self,
        value: Any,
        version: list[str],
        columns: dict[str, tuple[str, ...]],
        section: str,
    ) -> RootKeys | None:
        """[devices.root_keys]: which column holds a LoRaWAN 1.0.x device's AppKey."""
        if value is None:
            return None
        where = f"{section}.root_keys"
        if section != "devices":
            raise TemplateError(
                f"'root_keys' in {self.place(section)}: only the devices tab has it"
            )
        table = self.table(value, "root_keys", section)
        self.known_keys(table, _ROOT_KEYS_KEYS, where)
        field_name = self.text(table.get("app_key_1_0", ""), "app_key_1_0", where)
        keys = [n for n in columns if is_config_field(n) and fields.is_secret("devices", n)]
        app_key = CONFIG_FIELD_PREFIX + "AppKey"
        if field_name not in keys or app_key not in columns:
            raise TemplateError(
                f"'app_key_1_0' in {self.place(where)} must name the key column that holds a "
                f"LoRaWAN 1.0.x device's AppKey, one of [devices.columns] ({', '.join(keys)}), "
                f"and {app_key} must be a column too, not '{field_name}'"
            )
        return RootKeys(tuple(version), field_name)

    def derived(self, value: Any, known: dict[str, Field], section: str) -> dict[str, Derived]:
        """[devices.derived]: a field made from the row's others when its cell is empty."""
        where = f"{section}.derived"
        table = self.table(value, "derived", section)
        if table and section != "devices":
            raise TemplateError(f"'derived' in {self.place(section)}: only the devices tab has it")
        derived: dict[str, Derived] = {}
        texts = [n for n, f in known.items() if f.is_text]
        for name, raw in table.items():
            if name not in texts or name == "addr":
                raise TemplateError(
                    f"'{name}' in {self.place(where)}: a derived field is one of "
                    f"{', '.join(t for t in texts if t != 'addr')}"
                )
            text = self.text(raw, name, where)
            made = Derived(text)
            rest = _PLACEHOLDER.sub("", text)
            unknown = [f for f in made.fields() if f not in texts or f == name]
            if "{" in rest or "}" in rest or unknown or not made.fields():
                raise TemplateError(
                    f"'{name}' in {self.place(where)} must be a text with {{field}}, "
                    f"{{field:lower}} or {{field:upper}} of another text field "
                    f"({', '.join(texts)}), e.g. \"eui-{{addr:lower}}\", not '{text}'"
                )
            derived[name] = made
        return derived

    def field_name(
        self, name: str, known: dict[str, Field], config: bool, where: str, what: str
    ) -> None:
        if name in known or (config and is_config_field(name)):
            return
        raise TemplateError(
            f"unknown {what} '{name}' in {self.place(where)}{_did_you_mean(name, known)}"
        )

    def columns(
        self, section: str, raw: dict[str, Any], known: dict[str, Field], config: bool
    ) -> dict[str, tuple[str, ...]]:
        where = f"{section}.columns"
        given = self.table(raw.get("columns", {}), "columns", section)
        if section == "devices" and not given:
            raise TemplateError(
                f"{self.where} has no [devices.columns]: it must name the headers of the "
                "Devices tab (copy the built-in 'default' template to start)"
            )
        columns = {f: tuple(a) for f, a in _BUILT_IN[section].get("columns", {}).items()}
        for name, aliases in given.items():
            self.field_name(name, known, config, where, "field")
            columns[name] = tuple(self.names(aliases, name, where))
        return columns

    def check_aliases(
        self,
        section: str,
        columns: dict[str, tuple[str, ...]],
        unsent: dict[str, list[str]],
        prefix: str,
    ) -> dict[str, tuple[str, ...]]:
        """Each header means one thing; drop aliases that repeat within a field.

        ``unsent``: the headers known and not sent, by how (ignored, not_sent...)."""
        where = self.place(f"{section}.columns")
        owner: dict[str, str] = {}
        for how, headers in unsent.items():
            for header in headers:
                first = owner.setdefault(header_key(header), how)
                if first != how:
                    raise TemplateError(
                        f"header '{header}' in {self.place(section)} is both {first} and {how}"
                    )
        result: dict[str, tuple[str, ...]] = {}
        for name, aliases in columns.items():
            kept: list[str] = []
            for alias in aliases:
                key = header_key(alias)
                if prefix and alias.strip().casefold().startswith(prefix.casefold()):
                    raise TemplateError(
                        f"header '{alias}' of '{name}' in {where} starts with the config "
                        f"prefix '{prefix}': such headers are initialConfig keys already"
                    )
                other = owner.setdefault(key, name)
                if other in unsent:
                    raise TemplateError(f"header '{alias}' in {where} is both '{name}' and {other}")
                if other != name:
                    raise TemplateError(
                        f"header '{alias}' in {where} is an alias of both '{other}' and '{name}'"
                    )
                if key not in (header_key(k) for k in kept):
                    kept.append(alias)
            result[name] = tuple(kept)
        return result

    def defaults(self, section: str, value: Any, known: dict[str, Field]) -> dict[str, Any]:
        where = f"{section}.defaults"
        table = self.table(value, "defaults", section)
        self.known_keys(table, known, where, "field")
        defaults: dict[str, Any] = {}
        for name, default in table.items():
            field = known[name]
            if not field.defaultable:
                raise TemplateError(
                    f"'{name}' in {self.place(where)} cannot have a default: each row needs its own"
                )
            defaults[name] = self.default_value(field.kind, default, name, where)
        if ("lat" in defaults) != ("lon" in defaults):
            raise TemplateError(f"{self.place(where)} must give both lat and lon, or neither")
        return defaults

    def default_value(self, kind: str, value: Any, name: str, where: str) -> Any:
        place = self.place(where)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if kind == "text":
            return self.text(value, name, where)
        if kind == "integer":
            return self.positive(value, name, where)
        if kind == "list":
            return self.names(value, name, where)
        if kind == "boolean":
            if not isinstance(value, bool):
                raise TemplateError(f"'{name}' in {place} must be true or false")
            return value
        if kind in ("latitude", "longitude"):
            limit = 90 if kind == "latitude" else 180
            if not number or not -limit <= value <= limit:
                raise TemplateError(
                    f"'{name}' in {place} must be a number from -{limit} to {limit}"
                )
            return value
        if kind == "config":
            config = self.table(value, name, where)
            for key, item in config.items():
                if isinstance(item, dict | list):
                    raise TemplateError(
                        f"config key '{key}' in {place} must be a text, number or true/false"
                    )
            return config
        if kind == "payload":
            return self.table(value, name, where)
        # type: a downlink type
        if value not in DOWNLINK_TYPES:
            raise TemplateError(
                f"'{name}' in {place} must be one of {', '.join(DOWNLINK_TYPES)}"
                + (_did_you_mean(value, DOWNLINK_TYPES) if isinstance(value, str) else "")
            )
        return value

    def rules(
        self, section: str, value: Any, known: dict[str, Field], config: bool
    ) -> dict[str, ColumnRule]:
        table = self.table(value, "rules", section)
        rules: dict[str, ColumnRule] = {}
        for name, raw in table.items():
            self.field_name(name, known, config, f"{section}.rules", "field")
            where = f'{section}.rules."{name}"' if ":" in name else f"{section}.rules.{name}"
            spec = self.table(raw, name, f"{section}.rules")
            self.known_keys(spec, _RULE_KEYS, where)
            rules[name] = self.rule(name, spec, known, where)
        return rules

    def rule(
        self, name: str, spec: dict[str, Any], known: dict[str, Field], where: str
    ) -> ColumnRule:
        place = self.place(where)
        pattern = self.pattern(spec, "pattern", where)
        hex_length = digits = None
        if "hex_length" in spec:
            hex_length = self.positive(spec["hex_length"], "hex_length", where)
        if "digits" in spec:
            digits = self.positive(spec["digits"], "digits", where)
        if hex_length is not None and digits is not None:
            raise TemplateError(f"{place} gives both hex_length and digits; keep one")
        identifier = spec.get("identifier", False)
        if not isinstance(identifier, bool):
            raise TemplateError(f"'identifier' in {place} must be true or false")
        automatic = (
            (name in known and known[name].identifier)
            or hex_length is not None
            or digits is not None
        )
        if automatic and "identifier" in spec and not identifier:
            raise TemplateError(
                f"'identifier = false' in {place}: {name} is always an identifier "
                "(addr, serial and key are, and so is every column with hex_length or digits)"
            )
        if not (is_config_field(name) or known[name].is_text):
            # A rule checks a cell's text: on a number, a list or a payload it could never
            # apply, and a rule that loads must be a rule that works.
            texts = ", ".join(n for n, f in known.items() if f.is_text)
            raise TemplateError(
                f"{place}: {name} is not a text field ({known[name].kind}), so a rule "
                f"cannot apply to it; rules check text fields: {texts}"
                + (", cfg:<key>" if "addr" in known else "")
            )
        return ColumnRule(
            pattern=pattern,
            hex_length=hex_length,
            digits=digits,
            identifier=automatic or identifier,
            hint=self.text(spec.get("hint", ""), "hint", where),
        )
