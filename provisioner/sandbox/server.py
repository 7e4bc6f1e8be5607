"""The sandbox's HTTP side: routing, bearer auth, injected faults, gzip, outages.

Built on the standard library's threading HTTP server (HTTP/1.1 keep-alive):
dropping a connection right after a commit, without a single byte of answer,
is then just a socket shutdown. The odd answers are described in faults.py;
``Sandbox.outage`` takes the platform down for a while.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import json
import math
import os
import re
import socket
import socketserver
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from provisioner.sandbox.errors import BadRequest, NotFound, SandboxError
from provisioner.sandbox.faults import (
    DEEP_JSON_LEVELS,
    ODD_BAD_GZIP,
    ODD_DATA_STRING,
    ODD_DEEP_JSON,
    ODD_ECHO_400,
    ODD_HTML,
    ODD_IDS,
    ODD_NO_CREATED_AT,
    ODD_NUMBER_LIST,
    ODD_RESET,
    ODD_STALL,
    Faults,
    OddRule,
    error_status,
)
from provisioner.sandbox.filters import (
    DATA_FILTERS,
    DEVICE_FILTERS,
    ORGANISATION_DATA_FILTERS,
    Filter,
    FilterFields,
    is_filter_parameter,
    parse_filter,
)
from provisioner.sandbox.openapi import openapi_document
from provisioner.sandbox.store import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, ROLES, SandboxStore
from provisioner.sandbox.uplinks import UplinkSimulator

GZIP_MIN_BYTES = 1024
GZIP_LEVEL = 1
DEVICE_WRITERS = ("org-admin", "device-admin")
USER_ADMINS = ("org-admin",)
NETWORK_SERVERS = ("network-server",)
# SQLite's largest integer: a path id above it names no device (and would not bind).
MAX_ID = 2**63 - 1
# A year either way: far beyond any real clock error, and never past the calendar's end.
MAX_CLOCK_OFFSET = 366 * 86400
JSON_TYPE = "application/json; charset=utf-8"
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n"
    b"<body><h1>Sign in to continue</h1>\n"
    b'<form method="post" action="/login"><input name="user"><input name="password" '
    b'type="password"><button>Sign in</button></form>\n</body></html>\n'
)
# A gzip header, then a deflate block of the reserved type 3: fails at its first byte.
BAD_GZIP_BODY = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 32
DEEP_JSON_BODY = b'{"data": ' + b"[" * DEEP_JSON_LEVELS + b"]" * DEEP_JSON_LEVELS + b"}"


@dataclass(frozen=True)
class Reply:
    status: int
    payload: Any = None  # None: empty body
    headers: dict[str, str] = field(default_factory=dict)
    json_body: bytes | None = None  # the payload already as UTF-8 JSON (then payload is None)
    raw_body: bytes | None = None  # sent as it is, never gzipped; headers give its type
    stall: float = 0.0  # seconds to wait halfway through sending


def error_reply(status: int, message: str, **headers: str) -> Reply:
    return Reply(status, {"error": message}, headers)


@dataclass(frozen=True)
class Call:
    """One routed request as the endpoint functions see it."""

    store: SandboxStore
    faults: Faults
    path_match: re.Match[str]
    query: list[tuple[str, str]]  # (decoded name, raw value): filters decode their own values
    body: bytes

    def json_body(self) -> Any:
        try:
            value = json.loads(
                self.body.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite
            )
            # A lone surrogate ("\ud800") is valid JSON text but no Unicode: SQLite and
            # every answer's UTF-8 would fail on it later.
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except (UnicodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"the body is not valid JSON: {exc}") from None
        return value

    def device_id(self) -> int:
        text = self.path_match["dev_id"]
        # int() refuses very long digit strings; such an id names no device either.
        if len(text.lstrip("0")) > len(str(MAX_ID)) or int(text) > MAX_ID:
            raise NotFound(f"no device with id {text}")
        return int(text)

    def params(self, *allowed: str) -> dict[str, str]:
        """Decoded plain query parameters; any other parameter is an error."""
        values: dict[str, str] = {}
        for name, raw in self.query:
            if name not in allowed:
                raise BadRequest(f"unknown query parameter {name!r}")
            values[name] = unquote_plus(raw)
        return values


def _no_constant(name: str) -> Any:
    raise BadRequest(f"the body is not valid JSON: {name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise BadRequest(f"the body holds the number {text}, too large for a JSON number")
    return number


def _whole_number(name: str, text: str) -> int:
    """A limit or offset: digits only, up to SQLite's largest integer (as the document says)."""
    if not re.fullmatch(r"[0-9]+", text) or len(text.lstrip("0")) > len(str(MAX_ID)):
        number = -1
    else:
        number = int(text)
    if not 0 <= number <= MAX_ID:
        raise BadRequest(f"{name} must be a whole number from 0 to {MAX_ID}, not {text!r}")
    return number


def _page(call: Call, fields: FilterFields) -> tuple[list[Filter], int, int]:
    """The filters, limit (clamped) and offset of a listing; any other parameter is an error."""
    filters: list[Filter] = []
    limit, offset = DEFAULT_PAGE_SIZE, 0
    for name, raw in call.query:
        if is_filter_parameter(name):
            filters.append(parse_filter(name, raw, fields))
        elif name == "limit":
            limit = _whole_number(name, unquote_plus(raw))
        elif name == "offset":
            offset = _whole_number(name, unquote_plus(raw))
        else:
            raise BadRequest(f"unknown query parameter {name!r}")
    return filters, min(limit, MAX_PAGE_SIZE, call.faults.max_page_size), offset


def list_devices(call: Call) -> Reply:
    filters, limit, offset = _page(call, DEVICE_FILTERS)
    filters = _id_paging(call.faults, filters)
    churn = call.faults.take_churn()
    if churn is not None:
        _churn(call, *churn)
    return Reply(200, json_body=call.store.list_devices_json(filters, limit, offset))


_ID_RANGES = ("gt", "gte", "lt", "lte")


def _id_paging(faults: Faults, filters: list[Filter]) -> list[Filter]:
    """The filters as ``faults.id_paging`` takes a range on id: honoured, refused, dropped."""
    ranges = [flt for flt in filters if flt.field == "id" and flt.op in _ID_RANGES]
    if not ranges or faults.id_paging == "honour":
        return filters
    if faults.id_paging == "refuse":
        raise BadRequest(f"unknown operator {ranges[0].op!r} for f:id (known: eq)")
    return [flt for flt in filters if flt not in ranges]


def _churn(call: Call, delete: int, add: int) -> None:
    """Delete the devices with the lowest ids and add new ones (faults.churn_while_paging)."""
    for device in call.store.list_devices(limit=max(delete, 1))[:delete]:
        call.store.delete_device(device["id"])
        call.faults.churned.append(device["id"])
    if add:
        call.store.seed_devices(add, seed=call.store.max_device_id())


def list_device_data(call: Call) -> Reply:
    filters, limit, offset = _page(call, DATA_FILTERS)
    device_id = call.device_id()
    call.store.get_device(device_id)  # an unknown device: 404, odd records or not
    return Reply(200, {"data": _data_page(call, device_id, filters, limit, offset)})


def _data_page(
    call: Call, device_id: int | None, filters: list[Filter], limit: int, offset: int
) -> list[Any]:
    """A page of parsed data: the odd records injected (faults.py) first, then the stored."""
    odd = call.faults.odd_records(device_id)
    head = odd[offset : offset + limit]
    rest = limit - len(head)
    stored = (
        call.store.list_parsed_data(device_id, filters, rest, max(0, offset - len(odd)))
        if rest > 0
        else []
    )
    return [*head, *stored]


def list_organisation_data(call: Call) -> Reply:
    filters, limit, offset = _page(call, ORGANISATION_DATA_FILTERS)
    return Reply(200, {"data": _data_page(call, None, filters, limit, offset)})


def add_uplink(call: Call) -> Reply:
    call.params()
    return Reply(201, {"data": call.store.add_uplink(call.json_body())})


def create_device(call: Call) -> Reply:
    call.params()
    return Reply(200, {"data": call.store.create_device(call.json_body())})


def update_device(call: Call) -> Reply:
    call.params()
    return Reply(200, {"data": call.store.update_device(call.device_id(), call.json_body())})


def delete_device(call: Call) -> Reply:
    call.params()
    call.store.delete_device(call.device_id())
    return Reply(204)


def queue_downlink(call: Call) -> Reply:
    downlink_type = call.params("type").get("type")
    if downlink_type is None:
        raise BadRequest("the query parameter type is required: config, fw, lorawan or raw")
    call.store.queue_downlink(call.device_id(), downlink_type, call.json_body())
    return Reply(200)


def list_downlinks(call: Call) -> Reply:
    downlink_type = call.params("type").get("type")
    return Reply(200, {"data": call.store.list_downlinks(call.device_id(), downlink_type)})


def create_user(call: Call) -> Reply:
    call.params()
    return Reply(200, {"data": call.store.create_user(call.json_body())})


def list_users(call: Call) -> Reply:
    call.params()
    return Reply(200, {"data": call.store.list_users()})


def openapi(call: Call) -> Reply:
    return Reply(200, openapi_document())


@dataclass(frozen=True)
class Route:
    method: str
    path: re.Pattern[str]
    action: Callable[[Call], Reply]
    roles: tuple[str, ...] | None  # None: any valid token; () : no token needed
    creates: bool = False  # subject to drop-after-commit


_DEVICES = re.compile(r"/api/devices")
_DEVICE = re.compile(r"/api/devices/(?P<dev_id>[0-9]+)")
_DOWNLINK = re.compile(r"/api/devices/(?P<dev_id>[0-9]+)/downlink")
_DEVICE_DATA = re.compile(r"/api/devices/(?P<dev_id>[0-9]+)/parsed-data")
# Not a device id: _DEVICE takes digits only.
_ORGANISATION_DATA = re.compile(r"/api/devices/parsed-data")
_USERS = re.compile(r"/api/organisation/user")
ROUTES = (
    Route("GET", _DEVICES, list_devices, None),
    Route("GET", _ORGANISATION_DATA, list_organisation_data, None),
    Route("GET", _DEVICE_DATA, list_device_data, None),
    Route("POST", _DEVICES, create_device, DEVICE_WRITERS, creates=True),
    Route("PUT", _DEVICE, update_device, DEVICE_WRITERS),
    Route("DELETE", _DEVICE, delete_device, DEVICE_WRITERS),
    Route("GET", _DOWNLINK, list_downlinks, None),
    Route("POST", _DOWNLINK, queue_downlink, DEVICE_WRITERS, creates=True),
    Route("GET", _USERS, list_users, USER_ADMINS),
    Route("POST", _USERS, create_user, USER_ADMINS, creates=True),
    Route("GET", re.compile(r"/api/openapi\.json"), openapi, ()),
    Route("POST", re.compile(r"/sandbox/uplink"), add_uplink, NETWORK_SERVERS),
)


class _Drop(Exception):
    """Close the connection without answering: a FIN, or with ``reset`` a RST."""

    def __init__(self, reset: bool = False) -> None:
        super().__init__()
        self.reset = reset


def odd_reply(rule: OddRule, body: bytes, real: Reply | None) -> Reply:
    """The odd answer of ``rule``; ``real``: the real answer, if the request was carried out."""
    kind = rule.kind
    status = error_status(kind)
    if status is not None:
        return error_reply(status, rule.message or f"odd answer {kind}, injected by the sandbox")
    if kind == ODD_ECHO_400:
        return error_reply(400, "bad request: " + body.decode("utf-8", "replace"))
    if kind == ODD_HTML:
        return Reply(200, headers={"Content-Type": "text/html; charset=utf-8"}, raw_body=HTML_PAGE)
    if kind == ODD_DATA_STRING:
        return Reply(200, {"data": "x"})
    if kind == ODD_NUMBER_LIST:
        return Reply(200, [1, 2, 3])
    if kind == ODD_BAD_GZIP:
        headers = {"Content-Type": JSON_TYPE, "Content-Encoding": "gzip"}
        return Reply(200, headers=headers, raw_body=BAD_GZIP_BODY)
    if kind == ODD_DEEP_JSON:
        return Reply(200, json_body=DEEP_JSON_BODY)
    if kind == ODD_RESET:
        raise _Drop(reset=True)
    assert real is not None, f"{kind} needs the real answer"
    if kind == ODD_STALL:
        assert rule.seconds is not None
        return dataclasses.replace(real, stall=rule.seconds)
    if kind == ODD_NO_CREATED_AT:
        return _without_created_at(real)
    return _with_ids(real, ODD_IDS[kind])


def _with_ids(real: Reply, value: object) -> Reply:
    """``real`` with the id of its ``data`` object, or of each of its items, set to ``value``."""
    payload = real.payload if real.json_body is None else json.loads(real.json_body)
    data = payload.get("data") if isinstance(payload, dict) else None
    for item in data if isinstance(data, list) else [data]:
        if isinstance(item, dict) and "id" in item:
            item["id"] = value
    return Reply(real.status, payload, real.headers)


def _without_created_at(real: Reply) -> Reply:
    """``real`` without ``createdAt`` in its ``data`` object, or in each of its items."""
    payload = real.payload if real.json_body is None else json.loads(real.json_body)
    data = payload.get("data") if isinstance(payload, dict) else None
    for item in data if isinstance(data, list) else [data]:
        if isinstance(item, dict):
            item.pop("createdAt", None)
    return Reply(real.status, payload, real.headers)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections
    # _send writes headers and body at once, but BaseHTTPRequestHandler's own answers
    # (send_error) take two writes; with Nagle on, the second waits for the client's
    # delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True
    server: SandboxHTTPServer
    _headers_buffer: list[bytes]  # BaseHTTPRequestHandler's pending header lines; see _send

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header, on the sandbox's clock (faults.clock_offset_seconds)."""
        if timestamp is None:
            timestamp = self.server.faults.now().timestamp()
        return email.utils.formatdate(timestamp, usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def log_date_time_string(self) -> str:
        """The log's time to the millisecond (this machine's clock): a rate can be read
        from it, e.g. that --max-rps holds in every second."""
        now = time.time()
        return (
            time.strftime("%d/%b/%Y %H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
        )

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def __getattr__(self, name: str) -> Callable[[], None]:
        # Any other method (TRACE, OPTIONS, HEAD, QUERY, ...) is routed too, so that it gets
        # a JSON 405 with Allow (or a 404), not the standard library's HTML 501 page.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (a request line or header it cannot read)
        answered in JSON like every other error, and the connection closed."""
        self.close_connection = True
        text = message or HTTPStatus(code).phrase
        body = json.dumps({"error": text}, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": JSON_TYPE, "Connection": "close"}
        self._send(Reply(code, headers=headers, raw_body=body))

    def _serve(self) -> None:
        try:
            reply = self._reply()
        except _Drop as drop:
            self.close_connection = True
            if drop.reset:
                self._reset()
            else:
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(reply)

    def _reset(self) -> None:
        """Close the connection with a RST (SO_LINGER 0), not the usual FIN."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # rfile holds a reference: the socket would stay open
        self.connection.close()

    def _reply(self) -> Reply:
        faults = self.server.faults
        faults.count_request()
        try:
            body = self._read_body()
            if faults.hanging_up():
                raise _Drop  # a FIN, no byte of answer: closed unanswered
            if faults.latency_ms > 0:
                time.sleep(faults.latency_ms / 1000)
            path = urlsplit(self.path).path
            rule = faults.take_odd(self.command, path, committed=False)
            if rule is not None:
                return odd_reply(rule, body, None)
            wait = faults.retry_after()
            if wait is not None:
                return error_reply(429, "too many requests", **{"Retry-After": str(wait)})
            if faults.chance(faults.fail_rate):
                return error_reply(500, "injected failure (--fail-rate)")
            reply = self._dispatch(body)
            if 200 <= reply.status < 300:
                rule = faults.take_odd(self.command, path, committed=True)
                if rule is not None:
                    return odd_reply(rule, body, reply)
            return reply
        except SandboxError as exc:
            return error_reply(exc.status, exc.message)
        except _Drop:
            raise
        except Exception as exc:
            self.log_error("internal error: %r", exc)
            return error_reply(500, "internal error in the sandbox")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True  # the unread body would be taken for the next request
            raise BadRequest("send the body with a Content-Length, not chunked")
        text = self.headers.get("Content-Length", "0")
        try:
            length = int(text)
            if length < 0:
                raise ValueError(text)
        except ValueError:
            self.close_connection = True
            raise BadRequest(f"bad Content-Length {text!r}") from None
        return self.rfile.read(length)

    def _dispatch(self, body: bytes) -> Reply:
        url = urlsplit(self.path)
        routes = [(r, m) for r in ROUTES if (m := r.path.fullmatch(url.path))]
        if not routes:
            raise NotFound(f"no such path: {url.path}")
        chosen = [(r, m) for r, m in routes if r.method == self.command]
        if not chosen:
            allowed = ", ".join(r.method for r, _ in routes)
            return error_reply(405, f"{self.command} is not allowed here", Allow=allowed)
        route, match = chosen[0]
        denied = self._check_auth(route)
        if denied:
            return denied
        query = [
            (unquote_plus(name), raw)
            for name, _, raw in (part.partition("=") for part in url.query.split("&") if part)
        ]
        reply = route.action(Call(self.server.store, self.server.faults, match, query, body))
        if route.creates and self.server.faults.chance(self.server.faults.drop_after_commit_rate):
            raise _Drop
        return reply

    def _check_auth(self, route: Route) -> Reply | None:
        if route.roles == ():
            return None
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        roles = self.server.store.roles_of(token.strip()) if scheme.lower() == "bearer" else None
        if roles is None:
            # Never echo the token: messages end up in client logs.
            return error_reply(
                401, "missing, unknown or revoked bearer token", **{"WWW-Authenticate": "Bearer"}
            )
        if route.roles is not None and not roles & set(route.roles):
            needed = " or ".join(route.roles)
            held = ", ".join(sorted(roles))
            return error_reply(403, f"this call needs the role {needed}; the token has {held}")
        return None

    def _send(self, reply: Reply) -> None:
        headers = dict(reply.headers)
        if reply.raw_body is not None:
            data = reply.raw_body
        else:
            data = self._json_data(reply, headers)
        self.send_response(reply.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        if self.command == "HEAD":  # the headers only: a body would be read as the next answer
            data = b""
        if self.request_version == "HTTP/0.9":  # no headers at all, as in end_headers()
            self.wfile.write(data)
            return
        # Headers and body leave in one write (end_headers would send the headers alone).
        self._headers_buffer += (b"\r\n", data)
        if not reply.stall:
            self.flush_headers()
            return
        message = b"".join(self._headers_buffer)
        self._headers_buffer = []
        head = len(message) - len(data)
        cut = head + len(data) // 2 if len(data) > 1 else head // 2
        self.wfile.write(message[:cut])
        if self.server.stopping.wait(reply.stall):
            self.close_connection = True
            return
        self.wfile.write(message[cut:])

    def _json_data(self, reply: Reply, headers: dict[str, str]) -> bytes:
        """The body of a JSON (or empty) reply, gzipped if asked and worth it; sets headers."""
        data = reply.json_body
        if data is None and reply.payload is not None:
            data = json.dumps(reply.payload, ensure_ascii=False).encode("utf-8")
        if data is None:
            return b""
        headers["Content-Type"] = JSON_TYPE
        headers["Vary"] = "Accept-Encoding"
        if len(data) > GZIP_MIN_BYTES and self._accepts_gzip():
            # Level 1: a 10000-device page compresses ~1.5x faster than at level 5, and
            # on the sandbox's loopback link the ~25% larger body costs less than that.
            data = zlib.compress(data, GZIP_LEVEL, wbits=31)  # wbits=31: a gzip stream
            headers["Content-Encoding"] = "gzip"
        return data

    def _accepts_gzip(self) -> bool:
        for part in self.headers.get("Accept-Encoding", "").split(","):
            coding, _, params = part.partition(";")
            if coding.strip().lower() in ("gzip", "*"):
                return not re.fullmatch(r"\s*q\s*=\s*0(\.0*)?\s*", params)
        return False


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Many clients connect at once (tests use 32); the default backlog of 5 would
    # make some of them wait for a SYN retry.
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], store: SandboxStore, faults: Faults, verbose: bool
    ) -> None:
        self.store = store
        self.faults = faults
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._refusing = False  # in an outage: end every connection at once
        self.stopping = threading.Event()  # set by Sandbox.stop: stalled answers give up
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-answer (killed, timed out) is normal here:
        # apply is killed on purpose in tests and in the demo.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall on DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)
            if self._refusing:  # accepted just before the outage began
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """End keep-alive connections, so no handler thread serves after a stop."""
        with self._connections_lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def refuse_connections(self) -> None:
        """Stop listening, keeping the port: new connections are refused. Not while serving.

        The listening socket is replaced by one bound to the same address that
        does not listen (so no other program takes the port); open connections end.
        """
        with self._connections_lock:
            self._refusing = True
        self.close_connections()
        self.socket.close()
        self.socket = socket.socket(self.address_family, self.socket_type)
        with contextlib.suppress(OSError):  # tried again by accept_connections
            self._bind_again(deadline=time.monotonic() + 1.0)

    def accept_connections(self) -> None:
        """Listen again after ``refuse_connections``."""
        try:
            bound = self.socket.getsockname()[1] != 0
        except OSError:  # Windows, for a socket never bound
            bound = False
        if not bound:  # the bind at the outage's start failed
            self._bind_again(deadline=time.monotonic() + 5.0)
        self.server_activate()
        with self._connections_lock:
            self._refusing = False

    def _bind_again(self, deadline: float) -> None:
        """Bind the (fresh) socket to the address it had; retried while the port is busy."""
        while True:
            try:
                self.server_bind()
                return
            except OSError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)


@dataclass
class SandboxConfig:
    """How to run a sandbox. ``port=0`` picks a free port; ``db=None`` keeps data in memory."""

    host: str = "127.0.0.1"
    port: int = 0
    db: str | Path | None = None
    tokens: dict[str, str] = field(default_factory=dict)  # role -> fixed token
    latency_ms: int = 0
    fail_rate: float = 0.0
    rate_limit: float | None = None
    drop_after_commit_rate: float = 0.0
    max_page_size: int = MAX_PAGE_SIZE
    seed_devices: int = 0
    fault_seed: int | None = None
    clock_offset_seconds: float = 0.0  # the sandbox's clock ahead of this machine's (-: behind)
    verbose: bool = False
    simulate_uplinks: float | None = None  # seconds between a device's uplinks; None: none
    silent_share: float = 0.05  # share of devices (by addr) that never send simulated uplinks

    def check(self) -> None:
        """Raise ValueError naming the first bad setting."""
        for role in self.tokens:
            if role not in ROLES:
                raise ValueError(f"unknown role {role!r} (known: {', '.join(ROLES)})")
        for name in ("fail_rate", "drop_after_commit_rate", "silent_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError("rate_limit must be above 0 requests per second")
        if not 1 <= self.max_page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"max_page_size must be between 1 and {MAX_PAGE_SIZE}")
        if self.simulate_uplinks is not None and not self.simulate_uplinks > 0:
            raise ValueError("simulate_uplinks must be above 0 seconds")
        if self.latency_ms < 0 or self.seed_devices < 0:
            raise ValueError("latency_ms and seed_devices must not be negative")
        if not abs(self.clock_offset_seconds) <= MAX_CLOCK_OFFSET:  # also refuses NaN
            raise ValueError(f"clock_offset_seconds must be within ±{MAX_CLOCK_OFFSET} s")


class Sandbox:
    """A running platform sandbox: listening from construction, serving after ``start()``.

    ``with Sandbox(config) as sb:`` serves in a background thread until the block
    ends; ``serve_forever()`` serves in the calling thread (the CLI).
    ``outage(seconds)`` takes it down for a while (only after ``start()``).
    With ``simulate_uplinks``, devices send uplinks from ``start()`` or
    ``serve_forever()`` until ``stop()`` (also during an outage: they reach the store).
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.config.check()
        self.store = SandboxStore(self.config.db)
        try:
            self.tokens: dict[str, str] = self.store.ensure_tokens(self.config.tokens)
            if self.config.seed_devices:
                self.store.seed_devices(self.config.seed_devices)
            self.faults = Faults(
                latency_ms=self.config.latency_ms,
                fail_rate=self.config.fail_rate,
                rate_limit=self.config.rate_limit,
                drop_after_commit_rate=self.config.drop_after_commit_rate,
                max_page_size=self.config.max_page_size,
                seed=self.config.fault_seed,
                clock_offset_seconds=self.config.clock_offset_seconds,
            )
            self.store.clock = self.faults.now
            self._server = SandboxHTTPServer(
                (self.config.host, self.config.port), self.store, self.faults, self.config.verbose
            )
        except BaseException:
            self.store.close()
            raise
        self._uplinks: UplinkSimulator | None = None
        if self.config.simulate_uplinks is not None:
            self._uplinks = UplinkSimulator(
                self.store, self.config.simulate_uplinks, self.config.silent_share
            )
        self._thread: threading.Thread | None = None
        self._stopped = False
        # Guards the serving thread, the outage and stopping; wakes the outage's watcher.
        self._state = threading.Condition()
        self._outage_end: float | None = None  # time.monotonic() at which the outage ends
        self._outage_watcher: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Sandbox:
        with self._state:
            self._serve_in_background()
            self._start_uplinks()
        return self

    def _start_uplinks(self) -> None:
        if self._uplinks is not None:
            self._uplinks.start()

    def _serve_in_background(self) -> None:
        # A short poll interval makes stop() quick; tests start and stop many sandboxes.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="sandbox", daemon=True
        )
        self._thread.start()

    def serve_forever(self) -> None:
        with self._state:
            self._start_uplinks()
        self._server.serve_forever()

    @property
    def in_outage(self) -> bool:
        """True from ``outage()`` until the sandbox serves again."""
        with self._state:
            return self._outage_end is not None

    def outage(self, seconds: float) -> None:
        """Be down for ``seconds`` from now: new connections are refused, open ones end.

        Returns at once when connections are refused; after ``seconds`` the
        sandbox listens again on the same port with the same data. During an
        outage, a new call sets a new end (``outage(0)`` ends it within a moment).
        """
        if not seconds >= 0:
            raise ValueError("seconds must not be negative")
        with self._state:
            if self._stopped:
                raise RuntimeError("the sandbox is stopped")
            if self._outage_end is None:
                if self._thread is None:
                    raise RuntimeError("an outage needs a sandbox served by start()")
                self._server.shutdown()  # only while serve_forever runs: it would stop the next
                self._thread.join()
                self._thread = None
                self._server.refuse_connections()
                self._outage_watcher = threading.Thread(
                    target=self._end_outage_in_time, name="sandbox-outage", daemon=True
                )
                self._outage_watcher.start()
            self._outage_end = time.monotonic() + seconds
            self._state.notify_all()

    def end_outage(self) -> None:
        """End an outage now; returns when the sandbox listens again (at once if not in one)."""
        with self._state:
            if self._outage_end is None:
                return
            self._outage_end = time.monotonic()
            self._state.notify_all()
            while self._outage_end is not None and not self._stopped:
                self._state.wait()

    def _end_outage_in_time(self) -> None:
        with self._state:
            while not self._stopped and self._outage_end is not None:
                remaining = self._outage_end - time.monotonic()
                if remaining <= 0:
                    break
                self._state.wait(remaining)
            if self._stopped:
                return
            try:
                self._server.accept_connections()
                self._serve_in_background()
            finally:
                self._outage_end = None
                self._state.notify_all()

    def stop(self) -> None:
        """Stop serving, end open connections and close the database (also during an outage)."""
        with self._state:
            if self._stopped:
                return
            self._stopped = True
            self._state.notify_all()
            self._server.stopping.set()
            if self._thread is not None:
                self._server.shutdown()
                self._thread.join()
            watcher = self._outage_watcher
            self._server.server_close()
            self._server.close_connections()
            if self._uplinks is not None:
                self._uplinks.stop()
            self.store.close()
        if watcher is not None:
            watcher.join()

    def write_ready_file(self, path: str | Path) -> None:
        """Write ``{"url": ..., "tokens": {role: token}}`` atomically, for scripts to wait on."""
        target = Path(path)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"url": self.url, "tokens": self.tokens}))
        os.replace(temporary, target)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
