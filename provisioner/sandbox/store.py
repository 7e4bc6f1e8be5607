"""SQLite storage of the sandbox: devices, parsed data, users, downlinks, tokens, device types.

One connection is shared by all request threads behind one lock, which also
serialises writes, so concurrent creates can neither lose nor duplicate rows.
Reads never write: a read-only run leaves a ``--db`` file byte-for-byte as it was.
Timestamps are stored as fixed-width UTC text so that text order is time order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from provisioner.sandbox.errors import BadRequest, Conflict, Forbidden, NotFound
from provisioner.sandbox.filters import (
    DEVICE_FILTERS,
    ORGANISATION_DATA_FILTERS,
    Filter,
    FilterFields,
    filter_sql,
    format_instant,
    normalise_instant,
    sql_ilike,
)
from provisioner.sandbox.seed import seed_inputs

ROLES = ("org-admin", "device-admin", "network-server")
DOWNLINK_TYPES = ("config", "fw", "lorawan", "raw")
ORGANISATION_ID = 1
MAX_PAGE_SIZE = 10000
DEFAULT_PAGE_SIZE = 100

# The device types every sandbox knows (id -> name); the platform has no endpoint to list them.
DEVICE_TYPES: dict[int, str] = {
    1: "Generic Device",
    2: "Lobaro wMBus Gateway (NB-IoT)",
    3: "Lobaro LoRaWAN wMBus Bridge",
    4: "LoRaWAN Meter",
    5: "Lobaro Modbus Bridge",
    6: "Lobaro Pressure Sensor",
}
GENERIC_DEVICE_TYPE = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS device_types (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation_id INTEGER NOT NULL,
    name TEXT,
    addr TEXT NOT NULL UNIQUE,
    serial TEXT,
    description TEXT,
    device_type_id INTEGER NOT NULL REFERENCES device_types (id),
    tags TEXT,
    initial_config TEXT,
    location TEXT,
    cert_enforces_dtls INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS devices_serial ON devices (serial);
CREATE INDEX IF NOT EXISTS devices_addr_nocase ON devices (addr COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS downlinks (
    device_id INTEGER NOT NULL REFERENCES devices (id),
    type TEXT NOT NULL,
    content TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    PRIMARY KEY (device_id, type)
);
CREATE TABLE IF NOT EXISTS parsed_data (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id INTEGER NOT NULL REFERENCES devices (id),
    received_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS parsed_data_device ON parsed_data (device_id, received_at, id);
CREATE INDEX IF NOT EXISTS parsed_data_received ON parsed_data (received_at, id);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    login TEXT NOT NULL,
    roles TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (token TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (token, role));
"""

_DEVICE_COLUMNS = (
    "organisation_id, name, addr, serial, description, device_type_id, tags,"
    " initial_config, location, cert_enforces_dtls, created_at, updated_at"
)
_PLACEHOLDERS = ", ".join("?" * 12)
_DEVICE_FIELDS = frozenset(
    ("name", "addr", "serial", "description", "deviceTypeId", "tags", "initialConfig")
    + ("location", "certEnforcesDtls")
)
# A device as JSON text built inside SQLite: the fields, order and values of _device(),
# without a Python dict per device. (key, column, kind): "value" columns are quoted by
# json_quote (numbers stay numbers, NULL becomes null); "json" columns hold json.dumps
# text and are embedded as stored; "bool" columns hold 0/1.
_DEVICE_JSON_MEMBERS = (
    ("id", "id", "value"),
    ("organisationId", "organisation_id", "value"),
    ("name", "name", "value"),
    ("addr", "addr", "value"),
    ("serial", "serial", "value"),
    ("description", "description", "value"),
    ("deviceTypeId", "device_type_id", "value"),
    ("tags", "tags", "json"),
    ("initialConfig", "initial_config", "json"),
    ("location", "location", "json"),
    ("certEnforcesDtls", "cert_enforces_dtls", "bool"),
    ("createdAt", "created_at", "value"),
    ("updatedAt", "updated_at", "value"),
)
_JSON_VALUE_SQL = {
    "value": "json_quote({})",
    "json": "coalesce({}, 'null')",
    "bool": "iif({}, 'true', 'false')",
}
_DEVICE_JSON_SQL = (
    "||".join(
        f"'{'{' if i == 0 else ','}{json.dumps(key)}:'||" + _JSON_VALUE_SQL[kind].format(column)
        for i, (key, column, kind) in enumerate(_DEVICE_JSON_MEMBERS)
    )
    + "||'}'"
)
_UPLINK_FIELDS = frozenset(("addr", "data", "receivedAt"))
_USER_FIELDS = ("name", "email", "password", "roles")
# Whitespace and control characters, spelled out: \s means different things in Python and in
# the ECMA 262 patterns of the OpenAPI document, which are built from these.
_BLANK_OR_CONTROL = (
    r"\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
ADDR_PATTERN = rf"[^{_BLANK_OR_CONTROL}]+"
EMAIL_PATTERN = rf"[^@{_BLANK_OR_CONTROL}]+@[^@{_BLANK_OR_CONTROL}]+\.[^@{_BLANK_OR_CONTROL}]+"
_EMAIL = re.compile(EMAIL_PATTERN)
# scrypt cost: strong enough to be an honest example, cheap enough for tests.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class SandboxStore:
    """The sandbox's data in SQLite: a file (kept across restarts) or memory (``path=None``)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._lock = threading.RLock()
        # The sandbox's clock for every time it writes; a Sandbox sets its faults' clock,
        # which may run ahead of or behind this machine's.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._db = sqlite3.connect(
            ":memory:" if path is None else str(path),
            check_same_thread=False,
            isolation_level=None,  # transactions are explicit, see _write()
        )
        self._db.row_factory = sqlite3.Row
        self._db.create_function("sandbox_ilike", 2, sql_ilike, deterministic=True)
        if path is not None:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)
        known = {row["id"] for row in self._db.execute("SELECT id FROM device_types")}
        missing = [(i, name) for i, name in DEVICE_TYPES.items() if i not in known]
        if missing:  # only write when needed: reopening a --db file must not change it
            with self._write() as db:
                db.executemany("INSERT INTO device_types (id, name) VALUES (?, ?)", missing)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _now(self) -> str:
        return format_instant(self.clock())

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, serialised with all other access."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # --- tokens -------------------------------------------------------------------------------

    def ensure_tokens(self, fixed: Mapping[str, str]) -> dict[str, str]:
        """One token per role: the fixed ones, else one already stored, else a new random one."""
        for role in fixed:
            if role not in ROLES:
                raise ValueError(f"unknown role {role!r} (known: {', '.join(ROLES)})")
        stored = {row["role"]: row["token"] for row in self._read("SELECT token, role FROM tokens")}
        tokens = {
            role: fixed.get(role) or stored.get(role) or secrets.token_urlsafe(24) for role in ROLES
        }
        new = [(token, role) for role, token in tokens.items() if stored.get(role) != token]
        if new:
            with self._write() as db:
                db.executemany("DELETE FROM tokens WHERE role = ?", [(r,) for _, r in new])
                db.executemany("INSERT INTO tokens (token, role) VALUES (?, ?)", new)
        return tokens

    def roles_of(self, token: str) -> frozenset[str] | None:
        """The roles a token carries, or None for an unknown or revoked token."""
        rows = self._read("SELECT role FROM tokens WHERE token = ?", (token,))
        return frozenset(row["role"] for row in rows) if rows else None

    def revoke_token(self, token: str) -> bool:
        """Make a token unknown from the next request on; False if it was not known."""
        with self._write() as db:
            return db.execute("DELETE FROM tokens WHERE token = ?", (token,)).rowcount > 0

    # --- devices ------------------------------------------------------------------------------

    def create_device(self, device_input: object) -> dict[str, Any]:
        """Validate a deviceInput body, store it and return the Device."""
        row = _device_row(device_input, self._now())
        try:
            with self._write() as db:
                cursor = db.execute(
                    f"INSERT INTO devices ({_DEVICE_COLUMNS}) VALUES ({_PLACEHOLDERS})", row
                )
                device_id = cursor.lastrowid
        except sqlite3.IntegrityError:
            raise Conflict(f"a device with addr {row[2]!r} already exists") from None
        return self.get_device(int(device_id or 0))

    def insert_devices(self, device_inputs: Iterable[Mapping[str, Any]]) -> int:
        """Bulk insert (validated like creates, defaults filled); returns the number inserted."""
        stamp = self._now()
        rows = [_device_row(dict(item), stamp) for item in device_inputs]
        try:
            with self._write() as db:
                db.executemany(
                    f"INSERT INTO devices ({_DEVICE_COLUMNS}) VALUES ({_PLACEHOLDERS})", rows
                )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"an addr is already taken: {exc}") from None
        return len(rows)

    def delete_device(self, device_id: int) -> None:
        """Remove a device with its queued downlinks and its parsed data, as the platform does."""
        with self._write() as db:
            db.execute("DELETE FROM downlinks WHERE device_id = ?", (device_id,))
            db.execute("DELETE FROM parsed_data WHERE device_id = ?", (device_id,))
            if not db.execute("DELETE FROM devices WHERE id = ?", (device_id,)).rowcount:
                raise NotFound(f"no device with id {device_id}")

    def update_device(self, device_id: int, device_input: object) -> dict[str, Any]:
        """PUT /api/devices/{id}: the fields in the body replace the stored ones, the others stay.

        An org token may not change the addr (platform admins only): 403. ``updatedAt``
        moves on with every update, also when nothing changed.
        """
        if not isinstance(device_input, dict):
            raise BadRequest("the body must be a JSON object (deviceInput fields)")
        unknown = sorted(set(device_input) - _DEVICE_FIELDS)
        if unknown:
            raise BadRequest(f"unknown field {unknown[0]!r} in deviceInput")
        with self._write() as db:
            rows = db.execute("SELECT * FROM devices WHERE id = ?", (device_id,)).fetchall()
            if not rows:
                raise NotFound(f"no device with id {device_id}")
            current = _device(rows[0])
            if "addr" in device_input and device_input["addr"] != current["addr"]:
                raise Forbidden("changing a device's addr is for platform admins only")
            merged = {name: current[name] for name in _DEVICE_FIELDS} | device_input
            stamp = max(self._now(), _after(current["updatedAt"]))
            row = _device_row(merged, stamp)
            db.execute(
                "UPDATE devices SET name = ?, serial = ?, description = ?, device_type_id = ?,"
                " tags = ?, initial_config = ?, location = ?, cert_enforces_dtls = ?,"
                " updated_at = ? WHERE id = ?",
                (*row[1:2], *row[3:10], stamp, device_id),
            )
        return self.get_device(device_id)

    def get_device(self, device_id: int) -> dict[str, Any]:
        rows = self._read("SELECT * FROM devices WHERE id = ?", (device_id,))
        if not rows:
            raise NotFound(f"no device with id {device_id}")
        return _device(rows[0])

    def list_devices(
        self, filters: Sequence[Filter] = (), limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Devices matching all filters, ordered by id."""
        where, params = _where(filters)
        rows = self._read(
            f"SELECT * FROM devices{where} ORDER BY id LIMIT ? OFFSET ?", [*params, limit, offset]
        )
        return [_device(row) for row in rows]

    def list_devices_json(
        self, filters: Sequence[Filter] = (), limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> bytes:
        """``{"data": list_devices(...)}`` as UTF-8 JSON, each device's text made by SQLite."""
        where, params = _where(filters)
        sql = _json_page_sql(where)
        with self._lock:
            cursor = self._db.cursor()
            cursor.row_factory = None  # plain tuples: no sqlite3.Row per device
            rows = cursor.execute(sql, [*params, limit, offset]).fetchall()
        return ('{"data":[' + ",".join([row[0] for row in rows]) + "]}").encode()

    def device_query_plan(self, filters: Sequence[Filter] = ()) -> list[str]:
        """How SQLite finds the devices of a listing page (EXPLAIN QUERY PLAN details)."""
        where, params = _where(filters)
        sql = _json_page_sql(where)
        return [row["detail"] for row in self._read(f"EXPLAIN QUERY PLAN {sql}", [*params, 1, 0])]

    def count_devices(self, filters: Sequence[Filter] = ()) -> int:
        where, params = _where(filters)
        return int(self._read(f"SELECT count(*) FROM devices{where}", params)[0][0])

    def devices_by(self, field: str, value: str | int) -> list[dict[str, Any]]:
        """All devices whose scalar ``field`` equals ``value`` (a test helper)."""
        return self.list_devices([Filter("f", field, "eq", (str(value),))], limit=MAX_PAGE_SIZE)

    def max_device_id(self) -> int:
        return int(self._read("SELECT coalesce(max(id), 0) FROM devices")[0][0])

    def seed_devices(self, count: int, seed: int = 0) -> int:
        """Add ``count`` realistic devices, the same ones for the same seed; returns how many.

        Numbering continues after the highest id, so seeding a ``--db`` file again adds
        new addrs; an addr that is taken anyway is skipped.
        """
        generated = seed_inputs(count, seed, first_number=self.max_device_id())
        rows = [_device_row(device_input, stamp) for device_input, stamp in generated]
        with self._write() as db:
            before = db.total_changes
            db.executemany(
                f"INSERT OR IGNORE INTO devices ({_DEVICE_COLUMNS}) VALUES ({_PLACEHOLDERS})", rows
            )
            return db.total_changes - before

    def new_devices(self, after_id: int) -> list[tuple[int, str, str]]:
        """(id, addr, createdAt) of the devices with an id above ``after_id``, by id."""
        rows = self._read(
            "SELECT id, addr, created_at FROM devices WHERE id > ? ORDER BY id", (after_id,)
        )
        return [(row["id"], row["addr"], row["created_at"]) for row in rows]

    # --- parsed data (uplinks) ----------------------------------------------------------------

    def add_parsed_data(
        self, device_id: int, data: object, received_at: str | None = None
    ) -> dict[str, Any]:
        """Store what the parser made of one uplink of a device; ``received_at`` defaults to now.

        ``received_at`` is RFC 3339 with any offset and is stored in UTC.
        """
        text, received = _parsed_data_values(data, received_at)
        with self._write() as db:
            if not db.execute("SELECT 1 FROM devices WHERE id = ?", (device_id,)).fetchone():
                raise NotFound(f"no device with id {device_id}")
            return _insert_parsed_data(db, device_id, text, received, self._now())

    def add_uplink(self, uplink: object) -> dict[str, Any]:
        """POST /sandbox/uplink: ``{"addr", "data", "receivedAt"?}`` as the device's parsed data.

        The addr is compared as written, else without regard to case (hex digits).
        """
        if not isinstance(uplink, dict):
            raise BadRequest(
                'the body must be a JSON object: {"addr": ..., "data": {...}, "receivedAt": ...}'
            )
        unknown = sorted(set(uplink) - _UPLINK_FIELDS)
        if unknown:
            raise BadRequest(f"unknown field {unknown[0]!r} in the uplink")
        addr = uplink.get("addr")
        if not isinstance(addr, str) or not addr:
            raise BadRequest("addr is required: the address of a device")
        if "data" not in uplink:
            raise BadRequest("data is required: an object")
        text, received = _parsed_data_values(uplink["data"], uplink.get("receivedAt"))
        with self._write() as db:
            device_id = _device_id_by_addr(db, addr)
            return _insert_parsed_data(db, device_id, text, received, self._now())

    def add_parsed_data_many(self, items: Iterable[tuple[int, object]]) -> set[int]:
        """(device id, data) pairs received now, in one transaction.

        Returns the ids of the devices that are gone: nothing is stored for them.
        """
        stamp = self._now()
        gone: set[int] = set()
        with self._write() as db:
            for device_id, data in items:
                inserted = db.execute(
                    "INSERT INTO parsed_data (device_id, received_at, created_at, data)"
                    " SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM devices WHERE id = ?)",
                    (device_id, stamp, stamp, json.dumps(data), device_id),
                )
                if not inserted.rowcount:
                    gone.add(device_id)
        return gone

    def list_parsed_data(
        self,
        device_id: int | None,
        filters: Sequence[Filter] = (),
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """A device's parsed data (``None``: all the organisation's), newest receivedAt first."""
        parts, params = _conditions(filters, ORGANISATION_DATA_FILTERS)
        if device_id is not None:
            self.get_device(device_id)
            parts.insert(0, "device_id = ?")
            params.insert(0, device_id)
        rows = self._read(
            f"SELECT * FROM parsed_data{_joined(parts)}"
            " ORDER BY received_at DESC, id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [_parsed_data(row) for row in rows]

    # --- downlinks ----------------------------------------------------------------------------

    def queue_downlink(self, device_id: int, downlink_type: str, content: object) -> None:
        """Queue a downlink, replacing a queued one of the same type for this device."""
        _check_downlink_type(downlink_type)
        with self._write() as db:
            if not db.execute("SELECT 1 FROM devices WHERE id = ?", (device_id,)).fetchone():
                raise NotFound(f"no device with id {device_id}")
            db.execute(
                "INSERT INTO downlinks (device_id, type, content, queued_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (device_id, type)"
                " DO UPDATE SET content = excluded.content, queued_at = excluded.queued_at",
                (device_id, downlink_type, json.dumps(content), self._now()),
            )

    def list_downlinks(
        self, device_id: int, downlink_type: str | None = None
    ) -> list[dict[str, Any]]:
        self.get_device(device_id)
        sql = "SELECT type, content, queued_at FROM downlinks WHERE device_id = ?"
        params: list[object] = [device_id]
        if downlink_type is not None:
            _check_downlink_type(downlink_type)
            sql += " AND type = ?"
            params.append(downlink_type)
        rows = self._read(sql + " ORDER BY queued_at, type", params)
        return [
            {"type": r["type"], "content": json.loads(r["content"]), "queuedAt": r["queued_at"]}
            for r in rows
        ]

    # --- users --------------------------------------------------------------------------------

    def create_user(self, user_input: object) -> dict[str, Any]:
        """Validate a userInput body, store it (password only as a salted hash), return the User."""
        name, email, password, roles = _user_fields(user_input)
        stamp = self._now()
        try:
            with self._write() as db:
                cursor = db.execute(
                    "INSERT INTO users (organisation_id, name, email, login, roles, password_hash,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (ORGANISATION_ID, name, email, email, json.dumps(roles), _hash(password))
                    + (stamp, stamp),
                )
                user_id = cursor.lastrowid
        except sqlite3.IntegrityError:
            raise Conflict(f"a user with email {email!r} already exists") from None
        return _user(self._read("SELECT * FROM users WHERE id = ?", (user_id,))[0])

    def list_users(self) -> list[dict[str, Any]]:
        return [_user(row) for row in self._read("SELECT * FROM users ORDER BY id")]

    def password_matches(self, email: str, password: str) -> bool:
        """Whether ``password`` is the one stored (as a salted hash) for ``email``."""
        rows = self._read("SELECT password_hash FROM users WHERE email = ?", (email,))
        if not rows:
            return False
        stored: str = rows[0]["password_hash"]
        return hmac.compare_digest(_hash(password, stored), stored)


# --- validation and row conversion -----------------------------------------------------------


def _conditions(filters: Sequence[Filter], fields: FilterFields) -> tuple[list[str], list[object]]:
    parts: list[str] = []
    params: list[object] = []
    for flt in filters:
        sql, values = filter_sql(flt, fields)
        parts.append(sql)
        params += values
    return parts, params


def _joined(parts: Sequence[str]) -> str:
    return " WHERE " + " AND ".join(parts) if parts else ""


def _where(filters: Sequence[Filter]) -> tuple[str, list[object]]:
    parts, params = _conditions(filters, DEVICE_FILTERS)
    return _joined(parts), params


def _parsed_data_values(data: object, received_at: object) -> tuple[str, str | None]:
    """``data`` as JSON text and ``received_at`` in UTC (None: now), both checked."""
    if not isinstance(data, dict):
        raise BadRequest("data must be a JSON object (what the parser made of an uplink)")
    if received_at is None:
        return json.dumps(data), None
    if not isinstance(received_at, str):
        raise BadRequest("receivedAt must be an RFC 3339 timestamp with an offset, or left out")
    return json.dumps(data), normalise_instant(received_at, "receivedAt")


def _insert_parsed_data(
    db: sqlite3.Connection, device_id: int, text: str, received: str | None, stamp: str
) -> dict[str, Any]:
    cursor = db.execute(
        "INSERT INTO parsed_data (device_id, received_at, created_at, data) VALUES (?, ?, ?, ?)",
        (device_id, received or stamp, stamp, text),
    )
    return _parsed_data(
        db.execute("SELECT * FROM parsed_data WHERE id = ?", (cursor.lastrowid,)).fetchone()
    )


def _device_id_by_addr(db: sqlite3.Connection, addr: str) -> int:
    """The id of the device with ``addr``, else of the one device whose addr differs only in case."""
    exact = db.execute("SELECT id FROM devices WHERE addr = ?", (addr,)).fetchone()
    if exact:
        return int(exact["id"])
    rows = db.execute(
        "SELECT id FROM devices WHERE addr = ? COLLATE NOCASE LIMIT 2", (addr,)
    ).fetchall()
    if not rows:
        raise NotFound(f"no device with addr {addr!r}")
    if len(rows) > 1:
        raise Conflict(f"several devices have the addr {addr!r} in some case: send it exactly")
    return int(rows[0]["id"])


def _parsed_data(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "deviceId": row["device_id"],
        "receivedAt": row["received_at"],
        "createdAt": row["created_at"],
        "data": json.loads(row["data"]),
    }


def _json_page_sql(where: str) -> str:
    return f"SELECT {_DEVICE_JSON_SQL} FROM devices{where} ORDER BY id LIMIT ? OFFSET ?"


def _check_downlink_type(downlink_type: str) -> None:
    if downlink_type not in DOWNLINK_TYPES:
        known = ", ".join(DOWNLINK_TYPES)
        raise BadRequest(f"unknown downlink type {downlink_type!r} (known: {known})")


def _after(stamp: str) -> str:
    """An instant one microsecond after ``stamp``: updatedAt never stays the same."""
    return format_instant(datetime.fromisoformat(stamp) + timedelta(microseconds=1))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _optional_text(body: Mapping[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{field} must be a string or null")
    return value


def _device_row(device_input: object, stamp: str) -> tuple[object, ...]:
    """A deviceInput body checked and turned into a row in _DEVICE_COLUMNS order."""
    if not isinstance(device_input, dict):
        raise BadRequest("the body must be a JSON object (a deviceInput)")
    unknown = sorted(set(device_input) - _DEVICE_FIELDS)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r} in deviceInput")
    addr = device_input.get("addr")
    if not isinstance(addr, str) or not re.fullmatch(ADDR_PATTERN, addr):
        raise BadRequest(
            "addr is required: a non-empty string without spaces or control characters"
        )
    name = _optional_text(device_input, "name")
    serial = _optional_text(device_input, "serial")
    description = _optional_text(device_input, "description")
    type_id = device_input.get("deviceTypeId", GENERIC_DEVICE_TYPE)
    if not isinstance(type_id, int) or isinstance(type_id, bool):
        raise BadRequest("deviceTypeId must be a whole number")
    if type_id not in DEVICE_TYPES:
        raise BadRequest(f"deviceTypeId {type_id} is not a known device type")
    tags = device_input.get("tags")
    if tags is not None and (
        not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)
    ):
        raise BadRequest("tags must be a list of strings or null")
    config = device_input.get("initialConfig")
    if config is not None and not isinstance(config, dict):
        raise BadRequest("initialConfig must be an object or null")
    location = device_input.get("location")
    if location is not None and not (
        isinstance(location, dict)
        and set(location) == {"lat", "lon"}
        and all(_is_number(v) for v in location.values())
    ):
        raise BadRequest('location must be {"lat": <number>, "lon": <number>} or null')
    dtls = device_input.get("certEnforcesDtls", False)
    if not isinstance(dtls, bool):
        raise BadRequest("certEnforcesDtls must be true or false")
    return (
        ORGANISATION_ID,
        name or addr,
        addr,
        serial,
        description,
        type_id,
        None if tags is None else json.dumps(tags),
        None if config is None else json.dumps(config),
        None if location is None else json.dumps(location),
        int(dtls),
        stamp,
        stamp,
    )


def _device(row: sqlite3.Row) -> dict[str, Any]:
    def loaded(text: str | None) -> Any:
        return None if text is None else json.loads(text)

    return {
        "id": row["id"],
        "organisationId": row["organisation_id"],
        "name": row["name"],
        "addr": row["addr"],
        "serial": row["serial"],
        "description": row["description"],
        "deviceTypeId": row["device_type_id"],
        "tags": loaded(row["tags"]),
        "initialConfig": loaded(row["initial_config"]),
        "location": loaded(row["location"]),
        "certEnforcesDtls": bool(row["cert_enforces_dtls"]),
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def _user(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "login": row["login"],
        "name": row["name"],
        "email": row["email"],
        "organisationId": row["organisation_id"],
        "roles": json.loads(row["roles"]),
    }


def _user_fields(user_input: object) -> tuple[str, str, str, list[str]]:
    if not isinstance(user_input, dict):
        raise BadRequest("the body must be a JSON object (a userInput)")
    unknown = sorted(set(user_input) - set(_USER_FIELDS))
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r} in userInput")
    for field in _USER_FIELDS:
        if field not in user_input:
            raise BadRequest(f"{field} is required")
    name, email, password, roles = (user_input[field] for field in _USER_FIELDS)
    for field, value in (("name", name), ("email", email), ("password", password)):
        if not isinstance(value, str) or not value:
            raise BadRequest(f"{field} must be a non-empty string")
    if not _EMAIL.fullmatch(email):
        raise BadRequest(f"email {email!r} does not look like an email address")
    if (
        not isinstance(roles, list)
        or not roles
        or not all(isinstance(role, str) and role in ROLES for role in roles)
        or len(set(roles)) != len(roles)  # after the check above: a dict is not hashable
    ):
        raise BadRequest(
            f"roles must be a non-empty list of distinct roles from {', '.join(ROLES)}"
        )
    return name, email, password, roles


def _hash(password: str, stored: str | None = None) -> str:
    """``scrypt$<salt hex>$<hash hex>``; with ``stored``, hashed with its salt for comparison."""
    salt = bytes.fromhex(stored.split("$")[1]) if stored else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"
