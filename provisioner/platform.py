"""HTTP client for the Lobaro IoT Platform REST API (see platform-api.md).

Everything the client needs is passed to its constructor: base URL, token,
timeouts, retry policy, limits, clock, transport. It never reads the environment.

Every failure reaches the caller as a ``PlatformError`` of the tree drawn in
``provisioner.errors`` (AuthError, NotFound, Conflict, InvalidRequest, RateLimited,
ServerError, BadAnswer, TransportError, UnknownOutcome); each carries ``status`` and
``message``, and none of them ever contains the token or a secret registered with
``add_secrets``.

The constructor raises ``ValueError`` for unusable arguments, and ``InsecureURL``
(a SetupError) for an ``http://`` URL to a host that is not loopback, unless
``allow_http`` is given. Methods that take a device id raise ``ValueError`` for
one that is not a positive integer.

Retries: exponential backoff with full jitter on 429 (at least ``Retry-After``)
and 502/503/504, up to ``RetryPolicy.attempts``. Reads (GET) are also retried on
500. Transport failures follow one policy, the outage window: a request that is
safe to repeat (any request that failed to connect, so nothing reached the
server; a read whatever happened: reset, closed unanswered, timed out) is
retried for up to ``outage_seconds`` in total, with ``on_unreachable`` told
every few seconds. A write that may have been received is never resent: it is
an UnknownOutcome. A bad answer is not retried.
When the injected ``sleep`` returns True (``threading.Event.wait`` of an event
that is set), the client stops retrying and raises what it would raise after
the last try.
"""

from __future__ import annotations

import email.utils
import html
import ipaddress
import itertools
import json
import math
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

# The exceptions the client raises, named here too (defined in provisioner.errors).
from provisioner.errors import AuthError as AuthError
from provisioner.errors import BadAnswer as BadAnswer
from provisioner.errors import Conflict as Conflict
from provisioner.errors import InsecureURL as InsecureURL
from provisioner.errors import InvalidRequest as InvalidRequest
from provisioner.errors import NotFound as NotFound
from provisioner.errors import PlatformError as PlatformError
from provisioner.errors import RateLimited as RateLimited
from provisioner.errors import ServerError as ServerError
from provisioner.errors import SetupError as SetupError
from provisioner.errors import TransportError as TransportError
from provisioner.errors import UnknownOutcome as UnknownOutcome
from provisioner.pace import Pace

__all__ = [
    "MAX_PAGE_SIZE",
    "MIN_PLAUSIBLE_PAGE_CAP",
    "AuthError",
    "BadAnswer",
    "DevicePages",
    "Conflict",
    "Filter",
    "InsecureURL",
    "InvalidRequest",
    "NotFound",
    "PlatformClient",
    "PlatformError",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "TransportError",
    "UnknownOutcome",
    "fa",
    "f",
]

MAX_PAGE_SIZE = 10000
# Kept for importers only: the client no longer uses it. Every non-empty page
# shorter than asked is confirmed with one more request, whatever its size.
MIN_PLAUSIBLE_PAGE_CAP = 100
# A listing that still yields new devices after this many pages is a bad answer.
MAX_PAGES = 100_000
MAX_JSON_DEPTH = 64
DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024
# A page of device data is read whole and parsed (about 5 times its size in memory): a
# larger answer is a BadAnswer, never a process of gigabytes. 10,000 records of 3 KB fit.
DATA_ANSWER_BYTES = 32 * 1024 * 1024
# Bodies read only to show a message (error statuses, bad answers).
EXCERPT_BYTES = 64 * 1024
MESSAGE_LIMIT = 300
# Between two calls of ``on_unreachable``, and between two connect attempts.
UNREACHABLE_REPORT_EVERY = 5.0
MIN_OUTAGE_WAIT = 0.5
# How long transport failures are retried before the platform has answered once.
FIRST_CONTACT_SECONDS = 5.0
# Failures that happen before any byte of the request left: safe to retry for any method.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Answers that tell the client to send more slowly (with timeouts): the pace cuts back.
SLOW_DOWN = (429, 503)
# Shorter registered secrets are ignored: masking them would garble messages.
MIN_SECRET_LENGTH = 4

SCALAR_OPERATORS = ("eq", "lte", "lt", "gte", "gt", "like", "ilike", "isnull")
ARRAY_OPERATORS = ("contains", "containedby", "overlap", "isnull")

ROLES_TO_WRITE_DEVICES = "org-admin or device-admin"
ROLES_TO_MANAGE_USERS = "org-admin"


# --- filters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """One documented filter, ``<type>:<field>=<op>:<value>``."""

    kind: str  # "f" for scalar fields, "fa" for array fields
    field: str
    op: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        allowed = SCALAR_OPERATORS if self.kind == "f" else ARRAY_OPERATORS
        if self.kind not in ("f", "fa"):
            raise ValueError(f"filter type must be 'f' or 'fa', not {self.kind!r}")
        if self.op not in allowed:
            raise ValueError(f"operator {self.op!r} is not one of {', '.join(allowed)}")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", self.field):
            raise ValueError(f"not a field name: {self.field!r}")
        if self.kind == "f" and len(self.values) != 1:
            raise ValueError("a scalar filter takes exactly one value")

    def query(self) -> str:
        """The query-string part, values URL-encoded, list values comma-separated."""
        value = ",".join(quote(v, safe="") for v in self.values)
        return f"{self.kind}:{self.field}={self.op}:{value}"


def f(field: str, op: str, value: str | int | bool) -> Filter:
    """A filter on a scalar field, e.g. ``f("serial", "eq", "1337")``."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return Filter("f", field, op, (text,))


def fa(field: str, op: str, values: Sequence[str] | bool) -> Filter:
    """A filter on an array field, e.g. ``fa("tags", "contains", ["Site-HH-04"])``."""
    if isinstance(values, bool):
        return Filter("fa", field, op, ("true" if values else "false",))
    if isinstance(values, str):
        raise TypeError("fa() takes a list of values, not one string")
    return Filter("fa", field, op, tuple(values))


def query_string(filters: Iterable[Filter], **params: int) -> str:
    parts = [f"{name}={value}" for name, value in params.items()]
    parts += [flt.query() for flt in filters]
    return "&".join(parts)


# --- retries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry. ``attempts`` counts the first try."""

    attempts: int = 6
    base_delay: float = 0.25
    max_delay: float = 20.0

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        """Full jitter backoff; never shorter than the server's Retry-After."""
        ceiling = min(self.max_delay, self.base_delay * 2**retry_number)
        wait = random.uniform(0, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay * 3))
        return wait


NO_RETRIES = RetryPolicy(attempts=1)


def parse_retry_after(value: str | None, date: str | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds, or an HTTP date, counted from
    the same answer's Date header (both on the platform's clock, so a clock that is off
    does not matter), or from this machine's clock when the answer has none."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        until = _http_date(text)
        if until is None:
            return None
        now = _http_date(date or "")
        seconds = until - (time.time() if now is None else now)
        return max(0.0, seconds)
    return seconds if seconds >= 0 and math.isfinite(seconds) else None


def _http_date(text: str) -> float | None:
    """An HTTP date (RFC 9110: IMF-fixdate, or the obsolete forms) as a Unix time."""
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# --- answers -------------------------------------------------------------------------------


@dataclass
class _Answer:
    """One HTTP answer, its body read (in full, or as far as ``fault``/``cut`` say)."""

    method: str
    what: str
    status: int
    reason: str
    headers: httpx.Headers
    encoding: str
    body: bytes = b""
    cut: bool = False  # only the start of the body was read
    fault: str = ""  # why a 2xx body is unusable before it is even parsed
    value: Any = None  # the parsed JSON of a 2xx body

    def text(self) -> str:
        """The start of the body as text, for messages."""
        try:
            return self.body[:EXCERPT_BYTES].decode(self.encoding, "replace")
        except LookupError:
            return self.body[:EXCERPT_BYTES].decode("utf-8", "replace")

    @property
    def partial(self) -> bool:
        return self.cut or len(self.body) > EXCERPT_BYTES


@dataclass
class _Outage:
    """Transport failures of one request: since when, and how long it waited."""

    start: float
    slept: float = 0.0
    failures: int = 0
    deadline: float | None = None  # when its bound is reached: the last try is made then


def is_id(value: Any) -> bool:
    """A platform id: a positive integer (not a bool, not 1.5, not "7")."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_id(device_id: Any) -> int:
    if not is_id(device_id):
        raise ValueError(f"a device id must be a positive integer, not {device_id!r}")
    return int(device_id)


def _too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether parsed JSON nests containers more than ``limit`` levels (level by level,
    without recursion; json.loads makes plain dicts and lists only)."""
    level: list[Any] = [value] if type(value) is dict or type(value) is list else []
    for _ in range(limit):
        if not level:
            return False
        level = [
            child
            for node in level
            for child in (node.values() if type(node) is dict else node)
            if type(child) is dict or type(child) is list
        ]
    return bool(level)


def _secret_forms(value: str) -> set[str]:
    """A secret as a platform may echo it: raw, and JSON-escaped as Python's, Go's (<, >
    and & as \\u...) and PHP's (\\/) encoders do, with either case of hex digits; each
    also with whitespace folded."""
    plain = json.dumps(value, ensure_ascii=False)[1:-1]
    escaped = {
        plain,
        json.dumps(value)[1:-1],
        plain.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"),
    }
    escaped |= {form.replace("/", "\\/") for form in escaped}
    escaped |= {
        re.sub(r"\\u[0-9a-f]{4}", lambda m: m[0].upper().replace("U", "u"), form)
        for form in escaped
    }
    forms = {value} | escaped
    folded = {" ".join(form.split()) for form in forms}
    return forms | {form for form in folded if len(form) >= MIN_SECRET_LENGTH}


class _Masker:
    """Masks any of a set of strings in a text, in time that does not grow with their
    number (an index by their first few characters; a regex alternation of thousands
    of passwords would be slow)."""

    def __init__(self, forms: Iterable[str]) -> None:
        ordered = sorted(set(forms), key=len, reverse=True)
        self.forms = frozenset(ordered)
        self.longest = len(ordered[0]) if ordered else 0
        self.key = min([MIN_SECRET_LENGTH] + [len(form) for form in ordered])
        self.index: dict[str, list[str]] = {}
        for form in ordered:  # longest first: the longest match at a position wins
            self.index.setdefault(form[: self.key], []).append(form)

    def mask(self, text: str) -> str:
        if not self.index or len(text) < self.key:
            return text
        key, index = self.key, self.index
        parts: list[str] = []
        start = at = 0
        end = len(text) - key
        while at <= end:
            candidates = index.get(text[at : at + key])
            if candidates is not None:
                for form in candidates:
                    if text.startswith(form, at):
                        parts += (text[start:at], "***")
                        at = start = at + len(form)
                        break
                else:
                    at += 1
            else:
                at += 1
        if not parts:
            return text
        parts.append(text[start:])
        return "".join(parts)


def _content_length(headers: httpx.Headers) -> int | None:
    try:
        return int(headers.get("Content-Length", ""))
    except ValueError:
        return None


def _size(count: int) -> str:
    """A byte count for a message: 5000 bytes, 32 MiB."""
    return f"{count / 2**20:g} MiB" if count >= 2**20 else f"{count} bytes"


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


# --- the client ----------------------------------------------------------------------------


class PlatformClient:
    """A thread-safe client for the platform's REST API.

    ``url`` is the base URL without ``/api``. ``ca_bundle`` adds trust in a
    private CA; TLS verification cannot be switched off. Plain ``http://`` is
    refused (``InsecureURL``) unless the host is loopback or ``allow_http``.

    ``outage_seconds`` bounds how long transport failures of a request that is safe
    to repeat are retried, in total per request; ``on_unreachable`` then hears about
    it every few seconds.
    ``max_body_bytes`` and ``answer_deadline`` (seconds from sending) bound one
    answer. ``max_pages`` bounds one listing. ``sleep`` and ``clock`` are for
    waiting and telling time (tests inject fakes; the CLI an ``Event.wait``).
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        max_rps: float | None = None,
        ca_bundle: str | None = None,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 64,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        outage_seconds: float = 60.0,
        on_unreachable: Callable[[str], object] | None = None,
        allow_http: bool = False,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        answer_deadline: float = 120.0,
        max_pages: int = MAX_PAGES,
        device_link: str | None = None,
        log_request: Callable[[str], object] | None = None,
    ) -> None:
        # The sandbox's banner and the platform's docs show the API under /api: a URL given
        # with it is the same platform (requests add /api themselves).
        self.url = url.rstrip("/").removesuffix("/api").rstrip("/")
        if not re.match(r"https?://", self.url):
            raise SetupError(f"the platform URL must start with http:// or https://: {url!r}")
        if self.url.startswith("http://") and not allow_http:
            _refuse_plain_http(self.url)
        token = token.strip()
        # httpx would echo a malformed header value, token included, in its error.
        if not token or not re.fullmatch(r"[\x21-\x7e]+", token):
            raise SetupError("the token is empty or contains spaces or unusual characters")
        if outage_seconds < 0:
            raise ValueError("outage_seconds must not be negative")
        if max_body_bytes < 1 or answer_deadline <= 0 or max_pages < 1:
            raise ValueError("max_body_bytes, answer_deadline and max_pages must be above 0")
        if device_link and not (
            re.fullmatch(r"(?i:https?)://\S+", device_link) and "{id}" in device_link
        ):
            raise SetupError(
                f"the device link must be an http(s) address with {{id}} for the device's id, "
                f"e.g. https://platform.example/devices/{{id}}: {device_link!r}"
            )
        # Where a person sees a device on the platform; reports link platform ids to it.
        self.device_link = device_link or ""
        self._token = token
        self.retry = retry
        self.outage_seconds = float(outage_seconds)
        self.max_body_bytes = max_body_bytes
        self.answer_deadline = float(answer_deadline)
        self.max_pages = max_pages
        self._sleep = sleep
        self._clock = clock
        self._on_unreachable = on_unreachable
        # --verbose: one line per request sent (method, path, status, time), redacted.
        self._log_request = log_request
        self._unreachable_said: float | None = None
        # How fast to ask: the one adaptive controller (pace.py), with --max-rps as its cap.
        self.pace = Pace(ceiling=max_connections, max_rps=max_rps, clock=clock)
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.requests_sent = 0
        self._page_cap_seen: int | None = None
        self._largest_page = 0  # the most rows one page of this server has held
        self._answered = False  # an answer came once: a transport failure now is an outage
        # The platform's clock against this machine's, from the Date header of its answers:
        # the offset lies within [low, high] (seconds the platform is ahead).
        self._offset_bounds: tuple[float, float] | None = None
        self._masker = _Masker(_secret_forms(token))
        verify: ssl.SSLContext | bool = True
        if ca_bundle:
            verify = ssl.create_default_context(cafile=ca_bundle)
        self._http = httpx.Client(
            base_url=self.url,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "Accept-Encoding": "gzip",
                "User-Agent": "provisioner",
            },
            timeout=httpx.Timeout(timeout),
            transport=transport,
            verify=verify,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"PlatformClient({self.url!r})"

    @property
    def largest_page(self) -> int:
        """The most devices one page of this platform has held so far."""
        return self._largest_page

    @property
    def page_cap_seen(self) -> int | None:
        """The smallest page size the platform was seen to cap a device listing at."""
        return self._page_cap_seen

    @property
    def clock_offset(self) -> float | None:
        """How many seconds the platform's clock is ahead of this machine's (negative:
        behind), from the ``Date`` header of its answers, to about a second; None before
        an answer carried one."""
        with self._lock:
            if self._offset_bounds is None:
                return None
            low, high = self._offset_bounds
        return (low + high) / 2

    def _saw_date(self, header: str | None, sent: float, received: float) -> None:
        """One answer's ``Date`` (whole seconds, written between ``sent`` and ``received``
        on this machine's clock) narrows the offset; one that contradicts the others (a
        clock that was set meanwhile) starts afresh."""
        try:
            moment = email.utils.parsedate_to_datetime(header or "")
            stamp = moment.replace(tzinfo=moment.tzinfo or UTC).timestamp()  # "-0000": UTC
        except (TypeError, ValueError, OverflowError):
            return
        low, high = stamp - received, stamp + 1 - sent
        with self._lock:
            if self._offset_bounds is not None:
                was_low, was_high = self._offset_bounds
                if max(low, was_low) <= min(high, was_high):
                    low, high = max(low, was_low), min(high, was_high)
            self._offset_bounds = (low, high)

    def _saw_page_cap(self, cap: int) -> None:
        with self._lock:
            if self._page_cap_seen is None or cap < self._page_cap_seen:
                self._page_cap_seen = cap

    # --- redaction

    def add_secrets(self, values: Iterable[str]) -> None:
        """Mask these values (e.g. the passwords being sent) in every message from now on,
        also JSON-escaped. Values shorter than 4 characters are ignored. Thread-safe."""
        forms: set[str] = set()
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
                forms |= _secret_forms(value)
        with self._lock:
            if forms - self._masker.forms:
                self._masker = _Masker(self._masker.forms | forms)

    def redact(self, text: str) -> str:
        """The one place where text from outside passes before reaching a message."""
        return self._masker.mask(text)

    def _shorten(self, text: str, *, cut: bool = False, limit: int = MESSAGE_LIMIT) -> str:
        """Redacted, on one line, at most ``limit`` characters. ``cut``: the text is only
        the start of something longer, so a secret may have been cut in two at its end."""
        masker = self._masker
        # Fold whitespace first (the secrets are registered folded too), then redact only
        # as much as can show: this stays fast however long the text is.
        text = " ".join(text.split())
        window = limit + 4 * masker.longest + 64
        if len(text) > window:
            text, cut = text[:window], True
        text = masker.mask(text)
        if "&" in text:  # a secret may come HTML-escaped (an error page echoing a request)
            text = masker.mask(" ".join(html.unescape(text).split()))
        if cut:  # drop what may be the first part of a secret cut off at the end
            text = (text[: max(0, len(text) - masker.longest)].rstrip() + " ...").lstrip()
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def _show(self, value: Any) -> str:
        """A value from an answer, briefly (an id that is not one, say)."""
        if isinstance(value, str):
            return repr(self._shorten(value, limit=60))
        if isinstance(value, (dict, list)):
            return _kind(value)
        return self._shorten(repr(value), limit=60)

    # --- devices

    def list_devices_page(
        self, filters: Sequence[Filter] = (), *, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """One page of devices matching all filters (order by id). Every item is an
        object with a positive integer ``id``, or the answer is a BadAnswer."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        if offset < 0:
            raise ValueError("offset must not be negative")
        path = "/api/devices?" + query_string(filters, limit=limit, offset=offset)
        answer = self._request("GET", path, idempotent=True)
        page = self._as_list(answer, "device list", items_key="devices", ids=True)
        with self._lock:
            self._largest_page = max(self._largest_page, len(page))
        return page

    def iter_device_pages(
        self,
        filters: Sequence[Filter] = (),
        *,
        page_size: int = MAX_PAGE_SIZE,
        few: bool = False,
        by_id: bool = False,
    ) -> DevicePages:
        """Every matching device once, page by page, until a page comes back empty.

        A non-empty page shorter than asked may be the last or the server's cap:
        the next page is asked all the same, with the short page's size as the
        page size from then on; when more rows come, that size is a cap
        (``page_cap_seen``). Rows are deduplicated by id. A page holding no new
        device (a server that ignores ``offset``), or more than ``max_pages``
        pages, is a BadAnswer.

        ``by_id``: pages after the first ask for the devices after the last id read
        (``f:id=gt:N``), so that devices deleted meanwhile cannot shift the pages
        (an offset read then skips as many live devices). Where the platform refuses
        that filter, ignores it or does not list by id, the read goes on by offset,
        each page starting at the last row read, which shows when the listing moved
        (``DevicePages.moved``).

        ``few``: the filter matches a handful of devices at most (a key lookup). A
        short page smaller than the largest page this server has ever answered
        then ends the listing without the confirming request, which would double
        the cost of every key lookup; a server whose cap shrinks to a handful of
        rows between requests is not worth that price.
        """
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        return DevicePages(self, filters, min(page_size, MAX_PAGE_SIZE), few=few, by_id=by_id)

    def list_devices(
        self, filters: Sequence[Filter] = (), *, page_size: int = MAX_PAGE_SIZE
    ) -> list[dict[str, Any]]:
        """All matching devices, each once, however many pages that takes."""
        return [d for page in self.iter_device_pages(filters, page_size=page_size) for d in page]

    def find_devices(self, filters: Sequence[Filter]) -> list[dict[str, Any]]:
        """The devices matching a key filter (``f:addr=eq:...``): few, so usually one request."""
        return [d for page in self.iter_device_pages(filters, few=True) for d in page]

    def get_device(self, device_id: int) -> dict[str, Any] | None:
        """The device with this id, or None when the platform has none (one request:
        ``f:id=eq:N``; ids are unique, so there is no second page to ask for)."""
        device_id = _check_id(device_id)
        page = self.list_devices_page([f("id", "eq", device_id)], limit=1)
        if any(d["id"] != device_id for d in page) or len(page) > 1:
            ids = ", ".join(str(d["id"]) for d in page[:5])
            raise self._bad_listing(
                f"asked for the device with id {device_id}, it answered ids {ids} "
                "(the platform seems to ignore the filter)"
            )
        return page[0] if page else None

    def create_device(self, device_input: dict[str, Any]) -> dict[str, Any]:
        """POST /api/devices; the created Device (an object with a positive integer id)."""
        answer = self._request(
            "POST", "/api/devices", body=device_input, roles=ROLES_TO_WRITE_DEVICES
        )
        return self._as_object(answer, "created device")

    def update_device(self, device_id: int, device_input: dict[str, Any]) -> dict[str, Any]:
        """PUT /api/devices/{id}; the updated Device.

        Sent once: a lost answer is an UnknownOutcome (and a 5xx a ServerError) for the
        caller to settle by reading the device, since somebody may edit it meanwhile.
        """
        device_id = _check_id(device_id)
        answer = self._request(
            "PUT", f"/api/devices/{device_id}", body=device_input, roles=ROLES_TO_WRITE_DEVICES
        )
        return self._as_object(answer, "updated device")

    def delete_device(self, device_id: int) -> None:
        """DELETE /api/devices/{id} (200 or 204, an empty body). Sent once: a lost answer is
        an UnknownOutcome for the caller to settle by looking the id up."""
        device_id = _check_id(device_id)
        self._request(
            "DELETE", f"/api/devices/{device_id}", roles=ROLES_TO_WRITE_DEVICES, want_body=False
        )

    def queue_downlink(self, device_id: int, downlink_type: str, content: Any) -> None:
        """POST /api/devices/{id}/downlink?type=...; replaces a queued one of that type."""
        device_id = _check_id(device_id)
        path = f"/api/devices/{device_id}/downlink?type={quote(downlink_type, safe='')}"
        self._request("POST", path, body=content, roles=ROLES_TO_WRITE_DEVICES, want_body=False)

    def list_downlinks(self, device_id: int) -> list[dict[str, Any]]:
        device_id = _check_id(device_id)
        answer = self._request("GET", f"/api/devices/{device_id}/downlink", idempotent=True)
        return self._as_list(answer, "downlink list")

    # --- device data

    def device_data_page(
        self, device_id: int, filters: Sequence[Filter] = (), *, limit: int = 1, offset: int = 0
    ) -> list[Any]:
        """One page of a device's parsed data (``GET /api/devices/{id}/parsed-data``).

        Raises NotFound for an unknown device. The items are as the platform gave them
        (a record that is not an object is the caller's to count); their order is the
        platform's (newest first, assumed): callers look at ``receivedAt`` themselves.
        An answer over ``DATA_ANSWER_BYTES`` is a BadAnswer.
        """
        device_id = _check_id(device_id)
        path = f"/api/devices/{device_id}/parsed-data?" + query_string(
            filters, limit=limit, offset=offset
        )
        answer = self._request("GET", path, idempotent=True, max_bytes=DATA_ANSWER_BYTES)
        return self._as_list(answer, "device data", items_key="data", objects=False)

    def organisation_data_page(
        self, filters: Sequence[Filter] = (), *, limit: int = 1000, offset: int = 0
    ) -> list[Any]:
        """One page of the organisation's parsed data (``GET /api/devices/parsed-data``),
        its items as in ``device_data_page``.

        Raises NotFound where the platform has no such endpoint (it is assumed).
        """
        path = "/api/devices/parsed-data?" + query_string(filters, limit=limit, offset=offset)
        answer = self._request("GET", path, idempotent=True, max_bytes=DATA_ANSWER_BYTES)
        return self._as_list(answer, "organisation data", items_key="data", objects=False)

    # --- users

    def create_user(self, user_input: dict[str, Any]) -> dict[str, Any]:
        """POST /api/organisation/user; the created User (an object with a positive id)."""
        answer = self._request(
            "POST", "/api/organisation/user", body=user_input, roles=ROLES_TO_MANAGE_USERS
        )
        return self._as_object(answer, "created user")

    def list_users(self) -> list[dict[str, Any]]:
        """The organisation's users. Raises NotFound where the platform has no such list."""
        answer = self._request(
            "GET", "/api/organisation/user", idempotent=True, roles=ROLES_TO_MANAGE_USERS
        )
        return self._as_list(answer, "user list")

    # --- the one place that sends requests

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        idempotent: bool = False,
        roles: str = "",
        want_body: bool = True,
        max_bytes: int | None = None,
    ) -> _Answer:
        """Send until answered as the retry policy says; ``max_bytes`` bounds this answer's
        body below ``max_body_bytes``."""
        what = f"{method} {path.split('?')[0]}"
        content = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if content is not None else {}
        retries = self.retry.attempts - 1
        retry_number = 0
        outage: _Outage | None = None
        while True:
            if self.pace.turn(self._sleep, None if outage is None else outage.deadline):
                raise RateLimited(
                    f"{what}: not sent: stopped while waiting as the platform asked", status=429
                )
            sent_at = self.pace.sent()
            try:
                with self._count_lock:
                    self.requests_sent += 1
                answer = self._exchange(method, path, content, headers, what, want_body, max_bytes)
            except httpx.TransportError as exc:
                # A timeout is the platform too busy to answer (or to accept: a full
                # backlog); the pool's is ours.
                if isinstance(exc, httpx.TimeoutException) and not isinstance(
                    exc, httpx.PoolTimeout
                ):
                    self.pace.limited(sent_at, retry_after=None, rate_limit=False)
                else:
                    self.pace.failed()
                sent = not isinstance(exc, NOT_SENT)
                # A write that may have been received is not resent: the caller settles it.
                if sent and not idempotent:
                    raise UnknownOutcome(
                        self.redact(
                            f"{what}: no answer after the request was sent ({_describe(exc)}); "
                            "it may or may not have been carried out"
                        ),
                    ) from exc
                if not sent and _is_tls_failure(exc):  # retrying cannot make it trusted
                    raise self._transport_error(what, exc) from exc
                # Refused, reset, closed unanswered or timed out: one outage window.
                if outage is None:
                    outage = _Outage(self._clock())
                wait = self._outage_wait(outage, exc)
                if wait is None or self._pause(wait):
                    raise self._transport_error(what, exc, outage) from exc
                outage.slept += wait
                continue
            outage = None  # the platform answered: a later transport failure is a new outage
            self._answered = True

            status = answer.status
            retry_after = parse_retry_after(
                answer.headers.get("Retry-After"), answer.headers.get("Date")
            )
            if status in SLOW_DOWN:
                self.pace.limited(sent_at, retry_after=retry_after, rate_limit=status == 429)
            else:
                self.pace.answered(sent_at)
            if 200 <= status < 300:
                if want_body:
                    answer.value = self._decode_json(answer)
                return answer
            if _should_retry(status, idempotent) and retry_number < retries:
                if not self._pause(self.retry.delay(retry_number, retry_after)):
                    retry_number += 1
                    continue
            raise self._status_error(answer, what, idempotent, roles)

    def _pause(self, seconds: float) -> bool:
        """Wait by the injected sleep; True when it says to stop (a set Event's wait)."""
        return self._sleep(seconds) is True

    def _outage_wait(self, outage: _Outage, exc: Exception) -> float | None:
        """How long to wait before connecting again, or None when the outage bound is hit."""
        outage.failures += 1
        elapsed = max(self._clock() - outage.start, outage.slept)
        # Before the platform ever answered, a failure is more likely a wrong URL or a
        # closed port (or one that speaks another protocol) than an outage: the installer
        # hears of it soon.
        bound = (
            self.outage_seconds
            if self._answered
            else min(self.outage_seconds, FIRST_CONTACT_SECONDS)
        )
        remaining = bound - elapsed
        outage.deadline = self._clock() + max(0.0, remaining)
        if remaining <= 0:
            return None
        self._say_unreachable(elapsed, bound, exc)
        wait = max(self.retry.delay(outage.failures - 1), MIN_OUTAGE_WAIT)
        return min(wait, remaining)

    def _say_unreachable(self, elapsed: float, bound: float, exc: Exception) -> None:
        if self._on_unreachable is None:
            return
        now = self._clock()
        with self._lock:
            said = self._unreachable_said
            if said is not None and now - said < UNREACHABLE_REPORT_EVERY:
                return
            self._unreachable_said = now
        self._on_unreachable(
            self.redact(
                f"platform unreachable, retrying ({elapsed:.0f} s of "
                f"{bound:.0f} s): {_describe(exc)}"
            )
        )

    def _exchange(
        self,
        method: str,
        path: str,
        content: bytes | None,
        headers: dict[str, str],
        what: str,
        want_body: bool,
        max_bytes: int | None = None,
    ) -> _Answer:
        """Send once; read the body as a stream, within the size cap and the deadline."""
        started = self._clock()
        request = self._http.build_request(method, path, content=content, headers=headers)
        sent = time.time()
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            self._logged(method, path, f"no answer ({_describe(exc)})", started)
            raise
        self._logged(method, path, str(response.status_code), started)
        self._saw_date(response.headers.get("Date"), sent, time.time())
        try:
            answer = _Answer(
                method=method,
                what=what,
                status=response.status_code,
                reason=response.reason_phrase,
                headers=response.headers,
                encoding=response.charset_encoding or "utf-8",
            )
            if 200 <= answer.status < 300 and want_body:
                limit = min(self.max_body_bytes, max_bytes or self.max_body_bytes)
                self._read(response, answer, limit, started, strict=True)
            else:
                # Only for a message, or not needed at all (a 2xx without a wanted body:
                # the status says it was done).
                self._read(response, answer, EXCERPT_BYTES, started, strict=False)
        finally:
            response.close()
        return answer

    def _logged(self, method: str, path: str, outcome: str, started: float) -> None:
        """The request's line for --verbose: the time is until the answer's head came."""
        if self._log_request is not None:
            took = (self._clock() - started) * 1000
            self._log_request(self.redact(f"{method} {path} {outcome} {took:.0f} ms"))

    def _read(
        self, response: httpx.Response, answer: _Answer, limit: int, started: float, *, strict: bool
    ) -> None:
        """Read up to ``limit`` decoded bytes. ``strict``: the body is the answer, so a cap
        passed, a deadline passed or broken gzip is a fault; a lost connection is raised."""
        length = _content_length(response.headers)
        if strict and length is not None and length > limit:
            answer.cut = True
            answer.fault = f"it announces {length} bytes, more than the {_size(limit)} accepted"
            return
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    chunks.append(chunk[: max(0, EXCERPT_BYTES - (size - len(chunk)))])
                    answer.cut = True
                    if strict:
                        answer.fault = f"it is larger than the {_size(limit)} accepted"
                    break
                chunks.append(chunk)
                if self._clock() - started > self.answer_deadline:
                    answer.cut = True
                    if strict:
                        answer.fault = (
                            f"it had not arrived in full after {self.answer_deadline:g} s"
                        )
                    break
        except httpx.DecodingError as exc:
            answer.cut = True
            if strict:
                answer.fault = f"its content encoding is broken ({_describe(exc)})"
        except httpx.TransportError:
            if strict:
                raise
            answer.cut = True  # the status came; the rest of a message body is lost
        answer.body = b"".join(chunks)

    def _decode_json(self, answer: _Answer) -> Any:
        """The JSON of a 2xx answer, or a BadAnswer."""
        if answer.fault:
            raise self._bad(answer, answer.fault)
        reason = ""
        try:
            value = json.loads(answer.body)
        except RecursionError:
            reason = "its JSON nests too deeply"
        except ValueError:  # also UnicodeDecodeError
            reason = "it is not JSON" if answer.body.strip() else "it is empty"
        else:
            if not _too_deep(value):
                return value
            reason = f"its JSON nests more than {MAX_JSON_DEPTH} levels deep"
        raise self._bad(answer, reason)

    def _bad(self, answer: _Answer, reason: str) -> BadAnswer:
        """A BadAnswer for this answer; a write's may have been carried out."""
        maybe_done = answer.method != "GET"
        excerpt = self._shorten(answer.text(), cut=answer.partial) if answer.body else ""
        message = f"{answer.what}: the answer is not what the platform's API documents: {reason}"
        if excerpt:
            shown = excerpt if len(excerpt) <= 120 else excerpt[:117] + "..."
            message += f"; it reads {shown!r}"
        hint = ""
        if maybe_done:
            message += "; the request may or may not have been carried out"
            hint = "look it up before sending it again"
        return BadAnswer(
            self.redact(message),
            status=answer.status,
            hint=hint,
            body=excerpt,
            maybe_done=maybe_done,
        )

    def _bad_listing(self, reason: str) -> BadAnswer:
        return BadAnswer(
            self.redact(
                f"GET /api/devices: the listing is not what the platform's API documents: {reason}"
            ),
            status=200,
        )

    def _status_error(
        self, answer: _Answer, what: str, idempotent: bool, roles: str
    ) -> PlatformError:
        status = answer.status
        message = self.redact(f"{what}: {self._server_message(answer)}")
        if status == 401:
            return AuthError(
                message,
                status=status,
                hint="the platform did not accept the token: it is missing, mistyped, expired "
                "or revoked; create one in the platform UI under Integrations -> REST",
            )
        if status == 403:
            hint = f"this needs a token with the role {roles}" if roles else ""
            if roles and all(role in message for role in roles.split(" or ")):
                return AuthError(message, status=status)  # the platform's words name it
            return AuthError(
                message, status=status, hint=hint or "the token lacks the role this needs"
            )
        if status == 404:
            return NotFound(message, status=status)
        if status == 409:
            return Conflict(message, status=status)
        if status in (400, 422):
            return InvalidRequest(message, status=status)
        if status == 429:
            return RateLimited(message, status=status, hint="the platform limits request rate")
        if status in (502, 504) and not idempotent:
            # A gateway may have passed the write on before failing.
            return UnknownOutcome(
                message + "; the request may or may not have been carried out", status=status
            )
        if status >= 500:
            return ServerError(message, status=status)
        return InvalidRequest(message, status=status)

    def _server_message(self, answer: _Answer) -> str:
        """Whatever the body says, as one short redacted line: JSON, plain text or HTML."""
        text = answer.text()
        body: Any = None
        if not answer.partial:
            try:
                body = json.loads(text)
            except (ValueError, RecursionError):
                body = None
        if isinstance(body, dict) and not _too_deep(body):
            for key in ("error", "message", "detail", "msg"):
                if isinstance(body.get(key), str):
                    return self._shorten(body[key])
            return self._shorten(json.dumps(body, ensure_ascii=False))
        if "<" in text and re.search(r"<\s*(html|body|h1|title|p)\b", text, re.I):
            text = html.unescape(
                re.sub(r"<(script|style)\b.*?</\1>|<[^>]+>", " ", text, flags=re.S | re.I)
            )
        return self._shorten(text, cut=answer.partial) or answer.reason or "no message"

    def _as_list(
        self,
        answer: _Answer,
        what: str,
        *,
        items_key: str = "",
        ids: bool = False,
        objects: bool = True,
    ) -> list[Any]:
        """Accept ``{"data": [...]}``, ``{"data": null}`` (none), a bare list, and with
        ``items_key`` also ``{"data": {items_key: [...], ...}}``. Items must be objects
        (unless not ``objects``); with ``ids`` each must have a positive integer ``id``."""
        value = answer.value
        data = value
        if isinstance(value, dict):
            if "data" not in value:
                raise self._bad(answer, f'the {what} is an object without "data"')
            data = value["data"]
            if items_key and isinstance(data, dict) and items_key in data:
                data = data[items_key]
        if data is None:
            return []
        if not isinstance(data, list):
            raise self._bad(answer, f"the {what} is {_kind(data)}, not a list")
        if not objects:
            return data
        for number, item in enumerate(data, 1):
            if not isinstance(item, dict):
                raise self._bad(
                    answer, f"item {number} of the {what} is {_kind(item)}, not an object"
                )
            if ids and not is_id(item.get("id")):
                raise self._bad(
                    answer,
                    f"item {number} of the {what} has the id {self._show(item.get('id'))}, "
                    "not a positive integer",
                )
        return data

    def _as_object(self, answer: _Answer, what: str) -> dict[str, Any]:
        """Accept ``{"data": {...}}`` and a bare object, with a positive integer ``id``."""
        value = answer.value
        data = value.get("data", value) if isinstance(value, dict) else value
        if not isinstance(data, dict):
            raise self._bad(answer, f"the {what} is {_kind(data)}, not an object")
        if not is_id(data.get("id")):
            raise self._bad(
                answer,
                f"the {what} has the id {self._show(data.get('id'))}, not a positive integer",
            )
        return data

    def _transport_error(
        self, what: str, exc: httpx.TransportError, outage: _Outage | None = None
    ) -> TransportError:
        hint = "check the URL and the network"
        if _is_tls_failure(exc):
            hint = "the TLS certificate was not trusted; give the CA bundle if a private CA is used"
        message = f"{what}: could not reach {self.url} ({_describe(exc)})"
        if outage is not None and outage.failures > 1:
            elapsed = max(self._clock() - outage.start, outage.slept)
            message += f", {outage.failures} tries in {elapsed:.0f} s"
        return TransportError(self.redact(message), hint=hint)


class DevicePages(Iterator[list[dict[str, Any]]]):
    """One bulk read of devices, a page at a time (``PlatformClient.iter_device_pages``).

    After the read: ``way`` is "id" when every page after the first was asked by id,
    "offset" otherwise, and ``offset_why`` says why; ``moved`` is "" or the words for
    a listing that moved under an offset read, so that devices may be missing.
    """

    def __init__(
        self,
        client: PlatformClient,
        filters: Sequence[Filter],
        limit: int,
        *,
        few: bool,
        by_id: bool,
    ) -> None:
        self.way = "id" if by_id else "offset"
        self.offset_why = "" if by_id else "asked by offset"
        self.moved = ""
        self._pages = self._read(client, list(filters), limit, few)

    def __next__(self) -> list[dict[str, Any]]:
        return next(self._pages)

    def _read(
        self, client: PlatformClient, filters: list[Filter], limit: int, few: bool
    ) -> Iterator[list[dict[str, Any]]]:
        offset = 0
        seen: set[int] = set()
        short: int | None = None  # the size of the last page if it was shorter than asked
        after: int | None = None  # by id: the last id read
        listed = 0  # by id: the rows the pages held, the offset of the next one
        overlap: int | None = None  # by offset after by id: the id expected first on a page
        for _ in range(client.max_pages):
            # This server has answered pages this large: a shorter page cannot be a cap.
            floor = client.largest_page
            asked = limit
            if self.way == "id" and after is not None:
                try:
                    page = client.list_devices_page([*filters, f("id", "gt", after)], limit=asked)
                except InvalidRequest as exc:
                    self._by_offset(f"it refused f:id=gt: ({exc.message})")
                    overlap, offset = after, listed - 1
                    continue
                if any(d["id"] <= after for d in page):
                    self._by_offset("it ignores f:id=gt:")
                    overlap, offset = after, listed - 1
                    continue
            else:
                if overlap is not None:
                    asked = min(limit + 1, MAX_PAGE_SIZE)  # the row read last, then new ones
                page = client.list_devices_page(filters, limit=asked, offset=offset)
            if overlap is not None and (not page or page[0]["id"] != overlap):
                if not page or page[0]["id"] not in seen:
                    # The row read last is not where it was: rows before it went, so the
                    # rows after it moved up, some of them past this page's start.
                    self.moved = (
                        "the platform's device list changed while it was read: this "
                        f"platform is read by offset ({self.offset_why}), and devices "
                        "deleted meanwhile shift the pages, so devices may be missing"
                    )
            if not page:
                return
            fresh = []
            for device in page:
                if device["id"] not in seen:
                    seen.add(device["id"])
                    fresh.append(device)
            if not fresh:
                if overlap is not None and len(page) == 1 and page[0]["id"] == overlap:
                    return  # only the row read last: nothing after it
                raise client._bad_listing(
                    f"the page at offset {offset} holds only devices read already "
                    "(the platform seems to ignore offset)"
                )
            if self.way == "id" and any(a["id"] > b["id"] for a, b in itertools.pairwise(page)):
                # Not listed by id: the next page is asked by offset, from this one's last row.
                self._by_offset("it does not list devices by id")
                overlap, offset = page[-1]["id"], listed + len(page) - 1
            elif self.way == "id":
                after, listed = page[-1]["id"], listed + len(page)
            elif overlap is not None:
                overlap, offset = page[-1]["id"], offset + len(page) - 1
            else:
                offset += len(page)
            if short is not None:
                client._saw_page_cap(short)  # more came after a short page: it was a cap
            yield fresh
            if few and len(page) < min(asked, floor):
                return
            short = len(page) if len(page) < asked else None
            # The next page's size: this one's when it was short (a cap), less the row
            # read again when pages start at the last row.
            limit = max(1, min(limit, len(page) - (asked > limit)))
        raise client._bad_listing(
            f"it still had more devices after {client.max_pages} pages (up to offset {offset})"
        )

    def _by_offset(self, why: str) -> None:
        self.way, self.offset_why = "offset", why


def _refuse_plain_http(url: str) -> None:
    """Raise InsecureURL unless the http:// URL points at a loopback host."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        raise SetupError(f"not a usable platform URL: {url!r}") from None
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    shown = f"[{host}]" if ":" in host else host
    raise InsecureURL(
        f"http://{shown}{port} would send the token unencrypted: use https://{shown}{port}, "
        "or --allow-http for a private network you trust"
    )


def _should_retry(status: int, idempotent: bool) -> bool:
    if status in SLOW_DOWN:
        return True  # the server (or a proxy) says it did not take the request
    return idempotent and status in (500, 502, 504)


def _is_tls_failure(exc: Exception) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
