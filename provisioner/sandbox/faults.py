"""Faults the sandbox can inject, switchable while it runs.

A test may change any attribute of a running sandbox's ``faults`` at any time,
e.g. ``sandbox.faults.fail_rate = 1.0``; the next request sees the new value.

Odd answers
-----------
``faults.odd(method, path, kind, times=None)`` makes the requests of one route
answer oddly: all of them (``times=None``) or the next ``times`` of them, until
``faults.clear_odd()``. ``path`` is the URL path without the query; a segment
``{name}`` matches any one segment (``/api/devices/{devId}/downlink``). The
route need not exist. Rules are tried in the order they were added; the first
one that matches and has answers left takes the request. ``odd`` returns the
rule; its ``hits`` counts the requests it has answered.

Kinds (the constants below, or their string values):

========================  ===========================================================
``error-400``             400 ``{"error": ...}``; also ``error-404``, ``error-500``
                          and any ``error-<status>`` from 400 to 599; ``message``
                          sets the words of ``error`` (a proxy's, say, with
                          terminal escapes in them)
``echo-400``              400 ``{"error": "bad request: <the request body as text>"}``
``html``                  200, ``Content-Type: text/html``, a proxy's login page
``data-string``           200 ``{"data": "x"}``
``number-list``           200 ``[1, 2, 3]``
``bad-gzip``              200, ``Content-Encoding: gzip`` (whatever the request
                          accepts), a body that is not a valid gzip stream
``deep-json``             200 ``{"data": [[[...]]]}``, arrays nested
                          ``DEEP_JSON_LEVELS`` (100,000) deep
``reset``                 the connection is reset (TCP RST): no byte of answer
``stall``                 the real answer, but only part of it (the head and about
                          half the body) comes at once; the rest after ``seconds``
``id-string``             the real answer with every ``data.id`` (the object's, or
                          each list item's) replaced by ``"abc"``
``id-float``              the same with ``1.5``
``id-null``               the same with ``null``
``no-created-at``         the real answer without ``createdAt`` in its ``data`` object
                          or items (a platform that does not give it)
========================  ===========================================================

Hanging up
----------
``faults.hang_up(seconds)`` closes every connection, for the next ``seconds``,
right after reading its request and before anything else (no auth check, nothing
written): a FIN without a single byte of answer, as a platform behind a proxy
whose backend is down does. Clients see the connection closed unanswered
(httpx's ``RemoteProtocolError``). A later call sets a new end; ``hang_up(0)``
ends it at once.

When an odd answer is given, in the order a request goes through:

- ``commit=False`` (the default for all kinds but ``stall`` and ``id-*``): the
  request is answered oddly before anything else happens (no auth check, no
  routing, nothing is written). Every matching request counts.
- ``commit=True`` (always for ``stall`` and ``id-*``): the request is carried
  out first (a create commits), then the odd answer replaces the real one. Only
  requests whose real answer is a success (2xx) count; others are answered as
  usual. E.g. ``odd("POST", "/api/devices", "error-500", commit=True)``: the
  device is created and the client is told 500.

A platform that moves while it is read
--------------------------------------
``faults.churn_while_paging(delete=200, add=0, after=1)`` changes the devices once,
in the middle of a listing: after ``after`` more device listing pages (``GET
/api/devices``) have been answered, the next one first deletes the ``delete``
devices with the lowest ids (rows an offset read has passed, so every row after
them moves up) and adds ``add`` new ones (at the highest ids). ``churned`` lists
the ids it deleted.

``faults.id_paging`` is how the device listing takes a range on ``id``
(``f:id=gt:N``, ``lt``, ``gte``, ``lte``): ``"honour"`` (the default, as the
platform's filter documentation says), ``"refuse"`` (400 naming the filter) or
``"ignore"`` (the filter is dropped, as a platform that does not know it might).
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from provisioner.sandbox.store import MAX_PAGE_SIZE

ODD_ERROR_400 = "error-400"
ODD_ERROR_404 = "error-404"
ODD_ERROR_500 = "error-500"
ODD_ECHO_400 = "echo-400"
ODD_HTML = "html"
ODD_DATA_STRING = "data-string"
ODD_NUMBER_LIST = "number-list"
ODD_BAD_GZIP = "bad-gzip"
ODD_DEEP_JSON = "deep-json"
ODD_RESET = "reset"
ODD_STALL = "stall"
ODD_ID_STRING = "id-string"
ODD_ID_FLOAT = "id-float"
ODD_ID_NULL = "id-null"
ODD_NO_CREATED_AT = "no-created-at"
ODD_KINDS = (
    ODD_ERROR_400,
    ODD_ERROR_404,
    ODD_ERROR_500,
    ODD_ECHO_400,
    ODD_HTML,
    ODD_DATA_STRING,
    ODD_NUMBER_LIST,
    ODD_BAD_GZIP,
    ODD_DEEP_JSON,
    ODD_RESET,
    ODD_STALL,
    ODD_ID_STRING,
    ODD_ID_FLOAT,
    ODD_ID_NULL,
    ODD_NO_CREATED_AT,
)
ODD_IDS: dict[str, object] = {ODD_ID_STRING: "abc", ODD_ID_FLOAT: 1.5, ODD_ID_NULL: None}
DEEP_JSON_LEVELS = 100_000
_ALWAYS_COMMIT = (ODD_STALL, *ODD_IDS, ODD_NO_CREATED_AT)
_ERROR_KIND = re.compile(r"error-([45][0-9][0-9])")


def error_status(kind: str) -> int | None:
    """The status of an ``error-<status>`` kind, else None."""
    match = _ERROR_KIND.fullmatch(kind)
    return int(match[1]) if match else None


@dataclass
class OddRule:
    """One ``Faults.odd`` setting. ``hits``: requests answered so far."""

    method: str
    path: str
    kind: str
    times: int | None  # None: every matching request
    seconds: float | None  # for stall
    commit: bool
    message: str | None = None  # an error-<status>'s words; None: the sandbox's own
    hits: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        parts = re.split(r"\{[^/{}]*\}", self.path)
        self._pattern = re.compile("[^/]+".join(re.escape(part) for part in parts))

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and self._pattern.fullmatch(path) is not None

    @property
    def remaining(self) -> int | None:
        """Answers left; None: unlimited."""
        return None if self.times is None else self.times - self.hits


@dataclass
class Faults:
    """Fault settings; all off by default. Rates are shares of requests, 0..1."""

    latency_ms: int = 0  # added to every request
    fail_rate: float = 0.0  # answered 500 before anything is done
    rate_limit: float | None = None  # requests per second, over it: 429 + Retry-After
    drop_after_commit_rate: float = 0.0  # creates that commit, then close without an answer
    max_page_size: int = MAX_PAGE_SIZE  # a lower clamp for ``limit``
    id_paging: str = "honour"  # or "refuse", "ignore": ranges on id (see the docstring)
    churned: list[int] = field(default_factory=list)  # ids churn_while_paging deleted
    seed: int | None = None  # makes the random choices reproducible; read once, at creation
    clock_offset_seconds: float = 0.0  # the sandbox's clock ahead of this machine's (-: behind)
    requests: int = 0  # requests received so far (for tests)
    rate_limited: int = 0  # of them answered 429 (what a client met, for tests)
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)
    _bucket: float = field(init=False, repr=False, default=0.0)
    _bucket_rate: float | None = field(init=False, repr=False, default=None)
    _bucket_time: float = field(init=False, repr=False, default=0.0)
    _odd: list[OddRule] = field(init=False, repr=False, default_factory=list)
    _hang_up_end: float = field(init=False, repr=False, default=0.0)  # time.monotonic()
    _churn: list[tuple[int, int, int]] = field(init=False, repr=False, default_factory=list)
    _odd_records: dict[int, list[object]] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def now(self) -> datetime:
        """The sandbox's clock: this machine's, shifted by ``clock_offset_seconds``."""
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset_seconds)

    def add_odd_records(self, device_id: int, *items: object) -> None:
        """Serve ``items`` as the device's newest parsed data (see the module's docstring)."""
        with self._lock:
            self._odd_records.setdefault(device_id, []).extend(items)

    def clear_odd_records(self) -> None:
        with self._lock:
            self._odd_records.clear()

    def odd_records(self, device_id: int | None) -> list[object]:
        """The odd records of a device (None: of every device, by device id); for the server."""
        with self._lock:
            if device_id is not None:
                return list(self._odd_records.get(device_id, ()))
            return [item for _, items in sorted(self._odd_records.items()) for item in items]

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def chance(self, rate: float) -> bool:
        """True for a share ``rate`` of the calls."""
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def retry_after(self) -> int | None:
        """None if the request is within the rate limit, else whole seconds to wait (>= 1).

        A global token bucket holding one second's worth of requests; it starts
        full whenever the limit is switched on or changed.
        """
        rate = self.rate_limit
        if rate is None:
            return None
        with self._lock:
            clock = time.monotonic()
            capacity = max(rate, 1.0)
            if self._bucket_rate != rate:
                self._bucket_rate, self._bucket = rate, capacity
            else:
                self._bucket = min(capacity, self._bucket + (clock - self._bucket_time) * rate)
            self._bucket_time = clock
            if self._bucket >= 1.0:
                self._bucket -= 1.0
                return None
            self.rate_limited += 1
            return max(1, math.ceil((1.0 - self._bucket) / rate))

    def odd(
        self,
        method: str,
        path: str,
        kind: str,
        times: int | None = None,
        *,
        seconds: float | None = None,
        commit: bool | None = None,
        message: str | None = None,
    ) -> OddRule:
        """Answer ``method path`` oddly (see the module's docstring for the kinds).

        ``times``: the next that many matching requests, None: all of them.
        ``seconds``: how long a ``stall`` waits (required for it, refused otherwise).
        ``commit``: carry the request out before answering oddly; None: the kind's default.
        ``message``: the ``error`` text of an ``error-<status>`` answer (only for those).
        """
        if kind not in ODD_KINDS and error_status(kind) is None:
            raise ValueError(f"unknown odd answer {kind!r} (known: {', '.join(ODD_KINDS)})")
        if not path.startswith("/") or "?" in path:
            raise ValueError(f"path must be a URL path without a query, not {path!r}")
        if times is not None and times < 1:
            raise ValueError("times must be 1 or more, or None for every request")
        if (kind == ODD_STALL) != (seconds is not None):
            raise ValueError("seconds is required for a stall and only for a stall")
        if seconds is not None and not seconds > 0:
            raise ValueError("seconds must be above 0")
        if message is not None and error_status(kind) is None:
            raise ValueError("message is only for an error-<status> answer")
        if commit is None:
            commit = kind in _ALWAYS_COMMIT
        elif not commit and kind in _ALWAYS_COMMIT:
            raise ValueError(f"{kind} always carries the request out: commit cannot be False")
        rule = OddRule(method.upper(), path, kind, times, seconds, commit, message)
        with self._lock:
            self._odd.append(rule)
        return rule

    def hang_up(self, seconds: float) -> None:
        """Close connections unanswered for the next ``seconds`` (0: stop now)."""
        if not seconds >= 0:
            raise ValueError("seconds must be 0 or more")
        with self._lock:
            self._hang_up_end = time.monotonic() + seconds

    def hanging_up(self) -> bool:
        """Whether a request arriving now is closed unanswered; for the server."""
        with self._lock:
            return time.monotonic() < self._hang_up_end

    def churn_while_paging(self, *, delete: int = 0, add: int = 0, after: int = 1) -> None:
        """Once ``after`` more device listing pages have been answered, the next deletes
        the ``delete`` devices with the lowest ids and adds ``add`` new ones first."""
        if delete < 0 or add < 0 or after < 0:
            raise ValueError("delete, add and after must be 0 or more")
        with self._lock:
            self._churn.append((after, delete, add))

    def take_churn(self) -> tuple[int, int] | None:
        """(delete, add) when this device listing page is the one to churn; for the server."""
        with self._lock:
            due = [c for c in self._churn if c[0] == 0]
            self._churn = [(after - 1, d, a) for after, d, a in self._churn if after > 0]
        if not due:
            return None
        return sum(d for _, d, _ in due), sum(a for _, _, a in due)

    def clear_odd(self) -> None:
        """Answer every request normally again."""
        with self._lock:
            self._odd.clear()

    def take_odd(self, method: str, path: str, *, committed: bool) -> OddRule | None:
        """The rule that answers this request, counting it; for the server.

        ``committed=False``: before the request is carried out (rules without
        commit); ``committed=True``: after it succeeded (rules with commit).
        """
        with self._lock:
            for rule in self._odd:
                if rule.commit == committed and rule.matches(method, path):
                    rule.hits += 1
                    if rule.remaining == 0:
                        self._odd.remove(rule)
                    return rule
        return None
