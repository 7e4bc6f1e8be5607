"""The catalogue of the platform's fields: the one place that knows each of them.

For every field a sheet column can hold (deviceInput, userInput, a downlink),
this says its kind, how a cell's text becomes its value, whether it is an
identifier (never read as a number: Excel mangles those), whether it is secret
(never shown), whether a template may give it a default, how a sheet value and
a platform value compare, and what it is in the installer's words. Templates
are checked against it when they load; records, validation, plan, the blank
workbook and the reports ask it instead of keeping lists of their own.

Sheet fields are the platform's names, with three that the sheet spells out:
``lat`` and ``lon`` make ``location``, ``config`` is the whole ``initialConfig``,
and ``cfg:<key>`` is one key of it.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from provisioner.problems import Kind, kind

TABS = ("devices", "users", "downlinks")
CONFIG_PREFIX = "cfg:"
DOWNLINK_TYPES = ("config", "fw", "lorawan", "raw")
# initialConfig keys that hold LoRaWAN keys: secret in shared reports and plan diffs
# (the installer's own sheet and its results copy keep them, as the installer typed them).
# LoRaWAN 1.0 and 1.1 root and session keys; compared without case ("appKey" is one too).
SECRET_CONFIG_KEYS = frozenset(
    {
        "AppKey",
        "NwkKey",
        "AppSKey",
        "NwkSKey",
        "FNwkSIntKey",
        "SNwkSIntKey",
        "NwkSEncKey",
        "JSIntKey",
        "JSEncKey",
        "GenAppKey",  # the remote multicast setup's root key (ChirpStack v3's gen_app_key)
    }
)
_SECRET_FOLDED = frozenset(key.casefold() for key in SECRET_CONFIG_KEYS)
MASK = "(hidden)"


def is_secret_config_key(key: Any) -> bool:
    """Whether an initialConfig key holds a LoRaWAN key (any case)."""
    return isinstance(key, str) and key.strip().casefold() in _SECRET_FOLDED


TRUE_WORDS = frozenset({"true", "wahr", "yes", "ja", "y", "j", "1", "x"})
FALSE_WORDS = frozenset({"false", "falsch", "no", "nein", "n", "0"})

NOT_DEVICE_TYPE = kind(
    "not-a-device-type",
    "A device type is expected",
    "Pick the device type from the dropdown (a label like '3 - Lobaro LoRaWAN wMBus Bridge' "
    "means type 3) or type its number, such as 2.",
)
NOT_NUMBER = kind(
    "not-a-number",
    "A number is expected",
    "Type a decimal number such as 53.5511 (a comma as decimal mark works too).",
)
NOT_BOOLEAN = kind(
    "not-yes-no",
    "Yes or no is expected",
    "Type true or false (ja/nein, yes/no, 1/0 work too), or leave the cell empty.",
)
BAD_CONFIG = kind(
    "bad-config",
    "The config cell cannot be read",
    "Write key=value pairs separated by ';' (listenCron=0 0/20 * * * *;cmodeDurSec=600) or a "
    'JSON object ({"listenCron": "0 0/20 * * * *"}).',
)


# --- how a cell's text becomes a value (None: it does not convert) ---------------------------


def split_list(text: str, separators: Iterable[str]) -> list[str]:
    """A list cell's items, split at any of ``separators`` (each one character: "," or
    ",;"): trimmed, empty ones and repeats dropped, order kept."""
    marks = "".join(separators)
    parts = text.split(marks) if len(marks) == 1 else re.split(f"[{re.escape(marks)}]", text)
    items: list[str] = []
    for part in parts:
        part = part.strip()
        if part and part not in items:
            items.append(part)
    return items


def to_int(text: str) -> int | None:
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else None


def to_device_type(text: str) -> int | None:
    """A device type cell: its number, or a dropdown label "3 - Lobaro LoRaWAN wMBus Bridge"
    (the number before " - "; the name is for people and not checked)."""
    number = to_int(text)
    if number is None and " - " in text:  # only labels pay for the second look
        number = to_int(text.partition(" - ")[0].strip())
    return number


def to_float(text: str) -> float | None:
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def to_bool(text: str) -> bool | None:
    word = text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


# A LoRaWAN (MAC) version as peers write it: 1.0.3, LORAWAN_1_0_3 (ChirpStack), MAC_V1_0_4,
# MAC_V1_1 (TTS), LoRaWAN 1.0.2 rev B.
_LORAWAN_VERSION = re.compile(
    r"(?:lorawan|lw|mac)?[\s_-]*v?1[._]([01])(?:[._]\d+)*(?:[\s_-]*rev[\s_.-]*[a-z])?", re.I
)


def lorawan_version(text: str) -> str | None:
    """ "1.0" or "1.1": the LoRaWAN version a cell names (any 1.0.x, any 1.1.x); None when it
    names none."""
    found = _LORAWAN_VERSION.fullmatch(text.strip())
    return f"1.{found.group(1)}" if found else None


def to_config(text: str) -> dict[str, Any] | None:
    """A config cell: a JSON object, or key=value pairs separated by ';' or new lines."""
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return None
        return value if isinstance(value, dict) else None
    config: dict[str, Any] = {}
    for part in re.split(r"[;\n]", text):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            return None
        config[key.strip()] = value.strip()
    return config


# --- how a sheet value and a platform value compare ------------------------------------------

HEX = re.compile(r"[0-9A-Fa-f]+")


# --- identity: one canonical form per identifier ----------------------------------------------
#
# A DevEUI is one device in any letter case and however a label groups its digits
# (70-B3-D5-..., 70:B3:..., 70 B3 D5 ...). Duplicates, lookups, diffs, the journal,
# verify, export and undo all compare by ``normal_key``; the body sends ``hex_form``.

EUI_DIGITS = 16
KEY_DIGITS = 32
# initialConfig keys that hold hex identifiers, by their number of digits (any case).
HEX_CONFIG_KEYS: dict[str, int] = {
    "deveui": EUI_DIGITS,
    "joineui": EUI_DIGITS,
    "appeui": EUI_DIGITS,
    **{key.casefold(): KEY_DIGITS for key in SECRET_CONFIG_KEYS},
}
HEX_CASES = ("upper", "lower")
# Hex digits in groups with one separator between them, as labels and key lists print them.
_LABEL_HEX = re.compile(r"[0-9A-Fa-f]+(?:[-: ][0-9A-Fa-f]+)*")
_SPACES = re.compile(r"\s+")
# Letters typed for digits that look alike: O for 0, I and l for 1.
LOOKALIKES = {"O": "0", "o": "0", "I": "1", "l": "1"}


def hex_digits(text: str, length: int) -> str | None:
    """The ``length`` hex digits of an identifier as a label or key list prints it (any
    case; '-', ':' or spaces between groups), or None when the text is not that."""
    if len(text) < length:
        return None
    spaced = _SPACES.sub(" ", text.strip())
    if not _LABEL_HEX.fullmatch(spaced):
        return None
    digits = spaced.replace("-", "").replace(":", "").replace(" ", "")
    return digits if len(digits) == length else None


def hex_form(text: str, length: int, case: str = "upper") -> str:
    """The form a hex identifier is sent in (the template's case, no separators);
    a scanned LoRaWAN QR code (``read_qr``) in a DevEUI's place is its DevEUI; any
    other text unchanged."""
    if text.isalnum() and (
        text.isdigit() or (text.islower() if case == "lower" else text.isupper())
    ):
        return text  # no separator and no letter of the other case: nothing to change
    if length == EUI_DIGITS and is_qr(text):
        code = read_qr(text)
        text = code.dev_eui if isinstance(code, DeviceQr) else text
    digits = hex_digits(text, length)
    if digits is None:
        return text
    return digits.lower() if case == "lower" else digits.upper()


def lookalike_letters(text: str, length: int) -> list[tuple[int, str]]:
    """(1-based position, letter) of each O, I or l in ``text`` when putting the digit it
    looks like in its place makes a hex identifier of ``length`` digits; else []."""
    found = [(i, c) for i, c in enumerate(text, 1) if c in LOOKALIKES]
    if not found:
        return []
    fixed = "".join(LOOKALIKES.get(c, c) for c in text)
    return found if hex_digits(fixed, length) is not None else []


def normal_addr(addr: Any) -> str:
    """An addr as the platform keeps it unique: hex (a DevEUI) compares without case,
    a DevEUI written with a label's separators is its 16 digits, and a scanned LoRaWAN
    QR code is its DevEUI."""
    text = str(addr if addr is not None else "").strip()
    if is_qr(text):
        code = read_qr(text)
        text = code.dev_eui if isinstance(code, DeviceQr) else text
    digits = hex_digits(text, EUI_DIGITS)
    if digits is not None:
        return digits.upper()
    return text.upper() if HEX.fullmatch(text) else text


# --- LoRaWAN QR codes (LoRa Alliance TR005) ---------------------------------------------------
#
# A barcode scanner types a device's whole QR code into the focused cell:
# LW:D0:<JoinEUI>:<DevEUI>:<ProfileID>, then optional elements, each with a one-letter
# prefix: O<OwnerToken>, S<SerNum>, P<Proprietary>, C<CheckSum>. The checksum is the
# CRC-16/MODBUS (polynomial 0x8005 reflected, start 0xFFFF) of the payload's text before
# ":C", as 4 hex digits: TR005's own example LW:D0:1122334455667788:AABBCCDDEEFF0011:
# AABB1122:OAABBCCDDEEFF:SYYWWNNNNNN:PFOOBAR:CAF2C holds AF2C.

QR_STARTS = ("LW:", "lw:", "Lw:", "lW:")  # how a QR code's text starts, in any case
QR_SCHEMA = "D0"
QR_FORM = "LW:D0:JoinEUI:DevEUI:ProfileID"
PROFILE_DIGITS = 8  # the vendor ID and the vendor's profile ID, 4 hex digits each
QR_ELEMENTS = {"O": "owner token", "S": "serial number", "P": "proprietary", "C": "checksum"}
_CHECKSUM = re.compile(r"[0-9A-Fa-f]{4}")


@dataclass(frozen=True)
class DeviceQr:
    """What a LoRaWAN QR code holds: EUIs and the profile ID in upper case, the rest as
    printed. The owner token proves ownership to a join server: it is never shown."""

    join_eui: str
    dev_eui: str
    profile_id: str
    owner_token: str = ""
    serial: str = ""
    proprietary: tuple[str, ...] = ()


def is_qr(text: str) -> bool:
    """Whether a cell's text is meant as a LoRaWAN QR code (``LW:...``)."""
    return text.startswith(QR_STARTS)


def qr_checksum(text: str) -> str:
    """TR005's checksum of a payload's text (all of it before ``:C``): CRC-16/MODBUS."""
    crc = 0xFFFF
    for byte in text.encode("utf-8"):
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return f"{crc:04X}"


def read_qr(text: str) -> DeviceQr | str:
    """The LoRaWAN QR code ``text`` (``LW:D0:...``), or what is wrong with it in words
    that end in the fix (a wrong schema, too few elements, an EUI or profile ID that is
    not hex, an unknown or doubled element, a checksum that does not match)."""
    text = text.strip()
    parts = text.split(":")
    again = "scan the device's QR code again"
    if len(parts) < 5:
        return (
            f"the LoRaWAN QR code has {len(parts)} of the 5 elements it starts with "
            f"({QR_FORM}): part of it is missing; {again}"
        )
    if parts[1].upper() != QR_SCHEMA:
        return (
            f"the LoRaWAN QR code is of schema '{parts[1]}', not {QR_SCHEMA} ({QR_FORM}, "
            "the one LoRa Alliance TR005 defines): type the DevEUI from the device's label"
        )
    for name, value, digits in (
        ("JoinEUI", parts[2], EUI_DIGITS),
        ("DevEUI", parts[3], EUI_DIGITS),
        ("ProfileID", parts[4], PROFILE_DIGITS),
    ):
        if len(value) != digits or not HEX.fullmatch(value):
            return (
                f"the {name} '{value}' of the LoRaWAN QR code is not {digits} hex digits "
                f"({QR_FORM}): {again}"
            )
    found: dict[str, str] = {}
    proprietary: list[str] = []
    for at, element in enumerate(parts[5:], 6):
        letter = element[:1].upper()
        if not letter:
            return f"the LoRaWAN QR code has an empty element ('::'): {again}"
        if letter not in QR_ELEMENTS:
            return (
                f"an element of the LoRaWAN QR code after the ProfileID starts with '{letter}', "
                f"not with O (owner token), S (serial number), P (proprietary) or C "
                f"(checksum): {again}"
            )
        if letter == "P":
            proprietary.append(element[1:])
            continue
        if letter in found:
            return f"the LoRaWAN QR code holds its {QR_ELEMENTS[letter]} twice: {again}"
        found[letter] = element[1:]
        if letter == "C":
            if at != len(parts):
                return f"the checksum is not the last element of the LoRaWAN QR code: {again}"
            printed = element[1:]
            if not _CHECKSUM.fullmatch(printed):
                return (
                    f"the checksum '{printed}' of the LoRaWAN QR code is not 4 hex digits: {again}"
                )
            computed = qr_checksum(text[: text.rindex(":")])
            if printed.upper() != computed:
                return (
                    f"the checksum {printed} of the LoRaWAN QR code does not match its text "
                    f"(which gives {computed}): a character was lost or mistyped; {again}"
                )
    return DeviceQr(
        parts[2].upper(),
        parts[3].upper(),
        parts[4].upper(),
        found.get("O", ""),
        found.get("S", ""),
        tuple(proprietary),
    )


def shown_qr(text: str) -> str:
    """A QR code's text as a message may quote it: the owner token hidden."""
    parts = text.split(":")
    return ":".join(
        f"{part[:1]}{MASK}" if at >= 5 and part[:1].upper() == "O" and part[1:] else part
        for at, part in enumerate(parts)
    )


def normal_key(match_key: str, value: Any) -> str:
    """The one form devices are told apart by: their match key's value compared as the
    platform keeps it unique (an addr without case or separators; a serial as typed)."""
    if match_key == "addr":
        return normal_addr(value)
    return str(value if value is not None else "").strip()


def as_text(value: Any) -> str:
    """A value as text for comparing: 600 equals "600", 2.0 equals "2", true is "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip() if value is not None else ""


def _same_text(sheet: Any, platform: Any) -> bool:
    return str(sheet).strip() == str(platform if platform is not None else "").strip()


def _same_addr(sheet: Any, platform: Any) -> bool:
    return normal_addr(sheet) == normal_addr(platform)


def _same_set(sheet: Any, platform: Any) -> bool:
    return {str(t).strip() for t in sheet or []} == {str(t).strip() for t in platform or []}


def _same_number(sheet: Any, platform: Any) -> bool:
    if isinstance(sheet, bool) or isinstance(platform, bool):
        return False
    if isinstance(sheet, int | float) and isinstance(platform, int | float):
        return math.isclose(sheet, platform)
    return False


def _same_bool(sheet: Any, platform: Any) -> bool:
    return sheet is platform


def _same_location(sheet: Any, platform: Any) -> bool:
    if not isinstance(platform, dict):
        return False
    return all(
        isinstance(platform.get(k), int | float)
        and not isinstance(platform.get(k), bool)
        and math.isclose(float(sheet[k]), float(platform[k]), abs_tol=1e-7)
        for k in ("lat", "lon")
    )


def _config_text(key: str, value: Any) -> str:
    """A config value as text for comparing; a hex key (AppKey, JoinEUI) by its digits."""
    text = as_text(value)
    length = HEX_CONFIG_KEYS.get(key.strip().casefold())
    return hex_form(text, length) if length else text


def config_differences(sheet: dict[str, Any], platform: Any) -> list[str]:
    """The initialConfig keys the sheet sets that the platform holds otherwise (as text)."""
    held = platform if isinstance(platform, dict) else {}
    return [k for k, v in sheet.items() if _config_text(k, held.get(k)) != _config_text(k, v)]


def _same_config(sheet: Any, platform: Any) -> bool:
    return isinstance(platform, dict) and not config_differences(sheet, platform)


# --- the catalogue -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One field a sheet column can hold."""

    name: str
    kind: str  # text | integer | latitude | longitude | boolean | list | config | payload | type
    help: str  # what it is, in the installer's words
    example: str = ""
    identifier: bool = False  # never read as a number; Excel damage is an error
    # A hex identifier of this many digits when written so (a DevEUI as addr): compared
    # and sent in one form whatever the case and the label's separators.
    hex_length: int | None = None
    secret: bool = False  # never shown: masked in every report and the console
    defaultable: bool = True  # False: each row needs its own (unique or secret)
    needed: bool = False  # every row must have it (its own cell or the template's default)
    body: str = ""  # the deviceInput field it fills, when not its own name
    # How a cell's text becomes the value (None when it does not convert); lists get
    # the tab's separator.
    parse: Callable[[str], Any] | None = None
    # The problem when the text does not convert: kind and message ({header}, {text}).
    not_converted: tuple[Kind, str] | None = None
    same: Callable[[Any, Any], bool] = _same_text  # sheet value vs platform value

    @property
    def is_text(self) -> bool:
        """A text field: a template rule (pattern, digits, hex_length) can check its cell."""
        return self.kind == "text"

    @property
    def number(self) -> bool:
        """A number (deviceTypeId, lat, lon): workbooks the tool writes keep it a number
        where every other column is Text, as people type them."""
        return self.kind in ("integer", "latitude", "longitude")


_DEVICES = (
    Field(
        "addr",
        "text",
        "The address the platform knows the device by: a LoRaWAN DevEUI, an NB-IoT modem "
        "IMEI or a gateway address. No spaces; unique across the platform.",
        "352656100123456",
        identifier=True,
        hex_length=EUI_DIGITS,
        defaultable=False,
        needed=True,
        same=_same_addr,
    ),
    Field(
        "name",
        "text",
        "The display name; the platform uses the address when it is empty.",
        "Haus 4 Keller",
        defaultable=False,
    ),
    Field(
        "serial",
        "text",
        "The serial number printed on the device label.",
        "GW-2024-00417",
        identifier=True,
        defaultable=False,
    ),
    Field(
        "description",
        "text",
        "Free text, e.g. where the device is mounted.",
        "Keller, Hausanschlussraum",
    ),
    Field(
        "deviceTypeId",
        "integer",
        "The number of the device type on the platform.",
        "1",
        parse=to_device_type,
        not_converted=(
            NOT_DEVICE_TYPE,
            "{header} '{text}' is not a device type: pick one from the list or type its number",
        ),
        same=_same_number,
    ),
    Field(
        "tags",
        "list",
        "Labels to find the device by on the platform.",
        "Keller{sep} Haus 4",
        same=_same_set,
    ),
    Field(
        "lat",
        "latitude",
        "Latitude in decimal degrees (-90 to 90); give lon as well.",
        "53.5511",
        body="location",
        parse=to_float,
        not_converted=(NOT_NUMBER, "{header} '{text}' is not a number"),
    ),
    Field(
        "lon",
        "longitude",
        "Longitude in decimal degrees (-180 to 180); give lat as well.",
        "9.9937",
        body="location",
        parse=to_float,
        not_converted=(NOT_NUMBER, "{header} '{text}' is not a number"),
    ),
    Field(
        "certEnforcesDtls",
        "boolean",
        "Whether the device must use DTLS with its certificate: true or false.",
        "false",
        parse=to_bool,
        not_converted=(NOT_BOOLEAN, "{header} '{text}' is neither true nor false"),
        same=_same_bool,
    ),
    Field(
        "config",
        "config",
        "Initial configuration: a JSON object, or key=value pairs separated by ';'.",
        "listenCron=0 0/20 * * * *",
        body="initialConfig",
        parse=to_config,
        not_converted=(BAD_CONFIG, "{header} cannot be read as key=value pairs or JSON"),
        same=_same_config,
    ),
)
_USERS = (
    Field(
        "name",
        "text",
        "The person's full name.",
        "Erika Mustermann",
        defaultable=False,
        needed=True,
    ),
    Field(
        "email",
        "text",
        "The user's login: an email address.",
        "erika.mustermann@example.com",
        defaultable=False,
        needed=True,
    ),
    Field(
        "password",
        "text",
        "The user's first password; it is sent to the platform and shown nowhere.",
        secret=True,
        defaultable=False,
        needed=True,
    ),
    Field("roles", "list", "What the user may do on the platform.", "device-admin", needed=True),
)
_DOWNLINKS = (
    Field(
        "key",
        "text",
        "The device the downlink is for, by the key the Devices tab matches devices by.",
        identifier=True,
        defaultable=False,
        needed=True,
    ),
    Field("type", "type", "The kind of downlink.", "config", needed=True),
    Field(
        "payload",
        "payload",
        "The downlink as a JSON object; its form depends on the type: config "
        '{"d": {...}, "q": "config"}, lorawan {"data": ..., "type": ..., "fPort": ...}, '
        'raw {"format": ..., "data": ...}.',
        '{"d": {"listenCron": "0 0/20 * * * *"}, "q": "config"}',
        needed=True,
    ),
)
FIELDS: dict[str, dict[str, Field]] = {
    tab: {f.name: f for f in fields}
    for tab, fields in (("devices", _DEVICES), ("users", _USERS), ("downlinks", _DOWNLINKS))
}
# What each row of a tab must have (its own cell or the template's default); a device
# also needs the template's match key.
NEEDED: dict[str, tuple[str, ...]] = {
    tab: tuple(name for name, known in fields.items() if known.needed)
    for tab, fields in FIELDS.items()
}
# The sheet fields that make the deviceInput's location together.
LOCATION_FIELDS = tuple(f.name for f in _DEVICES if f.body == "location")
# The deviceInput fields a sheet sets, by how plan compares them with the platform's.
_BODY_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "location": _same_location,
    "initialConfig": _same_config,
    **{f.name: f.same for f in _DEVICES if not f.body},
}

# The deviceInput body's fields, in the platform's order: what an update sends whole.
DEVICE_INPUT_FIELDS: tuple[str, ...] = tuple(dict.fromkeys(f.body or f.name for f in _DEVICES))
# Fields an update never changes: the addr is for platform admins only.
NOT_UPDATABLE = frozenset({"addr"})
# How a sheet's tags meet the device's on update: "add" keeps the device's other tags,
# "exact" makes the sheet's list the whole list (the template's [devices] tags = ...).
TAGS_MODES = ("add", "exact")


def tags_to_change(
    sheet: Any, platform: Any, mode: str, ours: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """(tags to add, tags to remove) to bring the platform's tags in line with the sheet's.

    ``ours``: the tags this sheet's earlier runs put on the device (the journal knows):
    in "add" mode those the sheet no longer has are removed, and the tags others gave
    the device stay; in "exact" mode every tag the sheet does not have goes.
    """
    wanted = [str(t).strip() for t in sheet or []]
    held = [str(t).strip() for t in platform or []] if isinstance(platform, list) else []
    add = [t for t in dict.fromkeys(wanted) if t not in held]
    removable = None if mode == "exact" else {str(t).strip() for t in ours}
    remove = [
        t for t in dict.fromkeys(held) if t not in wanted and (removable is None or t in removable)
    ]
    return add, remove


def is_config_field(name: str) -> bool:
    """``cfg:<key>``: one initialConfig key."""
    return name.startswith(CONFIG_PREFIX) and bool(name[len(CONFIG_PREFIX) :].strip())


def config_field(key: str) -> Field:
    """The field of one initialConfig key, ``cfg:<key>``: text; secret for LoRaWAN keys."""
    return Field(
        CONFIG_PREFIX + key,
        "text",
        f"The initial configuration key {key}.",
        secret=is_secret_config_key(key),
        body="initialConfig",
        hex_length=HEX_CONFIG_KEYS.get(key.strip().casefold()),
    )


def field(tab: str, name: str) -> Field | None:
    """The field ``name`` of a tab ("devices", "users", "downlinks"), or None."""
    if tab == "devices" and is_config_field(name):
        return config_field(name[len(CONFIG_PREFIX) :])
    return FIELDS[tab].get(name)


def is_secret(tab: str, name: str) -> bool:
    found = field(tab, name)
    return found is not None and found.secret


def is_number(tab: str, name: str) -> bool:
    """Whether the field ``name`` of a tab is a number (see ``Field.number``)."""
    found = field(tab, name)
    return found is not None and found.number


def example(tab: str, name: str) -> str:
    """An example value of the field ``name`` of a tab ("" for none: a password, a key)."""
    found = field(tab, name)
    return found.example if found is not None else ""


class _SecretNames(Container[str]):
    """The record fields whose values are secret on any tab: a user's password and every
    LoRaWAN key (``cfg:AppKey``, any case). ``name in SECRET_NAMES``."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _secret_name(name)


@functools.cache
def _secret_name(name: str) -> bool:
    """Whether ``name`` is a secret field on any tab (asked for each problem of a row: the
    answer is kept)."""
    return any(is_secret(tab, name) for tab in TABS)


SECRET_NAMES = _SecretNames()


def same(name: str, sheet: Any, platform: Any) -> bool:
    """Whether a deviceInput value from the sheet equals the platform's.

    Surrounding spaces never count; an addr made of hex digits compares without
    case; tags compare as a set; numbers as numbers; initialConfig values as
    text ("600" equals 600), only the keys the sheet sets.
    """
    return _BODY_COMPARE.get(name, _same_text)(sheet, platform)


def masked_config(config: Any) -> Any:
    """initialConfig with the values of secret keys hidden (for reports and diffs)."""
    if not isinstance(config, dict):
        return config
    return {
        k: MASK if is_secret_config_key(k) and v not in (None, "") else v for k, v in config.items()
    }


def secret_key_values(value: Any) -> list[str]:
    """The values of LoRaWAN keys (AppKey...) anywhere in a JSON value: a downlink's
    config payload can carry them as an initialConfig does."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if is_secret_config_key(key) and isinstance(item, str | int) and item != "":
                found.append(str(item))
            else:
                found += secret_key_values(item)
    elif isinstance(value, list):
        for item in value:
            found += secret_key_values(item)
    return found


def masked_keys(value: Any) -> Any:
    """A JSON value with every LoRaWAN key's value hidden, at any depth (a copy where
    something is hidden, the value itself where nothing is)."""
    if isinstance(value, dict):
        return {
            k: MASK if is_secret_config_key(k) and v not in (None, "") else masked_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [masked_keys(item) for item in value]
    return value


def masked_body(tab: str, body: dict[str, Any]) -> dict[str, Any]:
    """A request body as a report may show it: the values of secret fields (a user's
    password) and the LoRaWAN keys of its initialConfig hidden; the body is not changed
    (and is returned as it is when it holds no secret: a plan of 100,000 rows)."""
    if tab == "downlinks":
        # A config downlink may set keys ({"d": {"AppKey": ...}}): hidden at any depth.
        return masked_keys(body) if secret_key_values(body) else body
    secret = _SECRET_FIELDS.get(tab, frozenset()).intersection(body)
    config = body.get("initialConfig")
    keys = isinstance(config, dict) and any(map(is_secret_config_key, config))
    if not secret and not keys:
        return body
    shown = {
        name: MASK if name in secret and value not in (None, "") else value
        for name, value in body.items()
    }
    if keys:
        shown["initialConfig"] = masked_config(config)
    return shown


# The fields of each tab whose values are never shown (a user's password).
_SECRET_FIELDS = {
    tab: frozenset(name for name, known in fields.items() if known.secret)
    for tab, fields in FIELDS.items()
}


def instant(value: Any) -> datetime | None:
    """An RFC 3339 time from the platform as an aware datetime; None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):  # not a time, or one at the end of the calendar
        return None
