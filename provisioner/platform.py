"""HTTP client for the Lobaro IoT Platform REST API (see platform-api.md).

Everything the client needs is passed to its constructor: base URL, token,
timeouts, retry policy, transport. It never reads the environment.

Every failure reaches the caller as one of these exceptions. Each carries
``status`` (the HTTP status, or None when no answer came) and ``message`` (the
server's words, shortened), and none of them ever contains the token::

    PlatformError            base class
    ├── AuthError            401/403: token missing, unknown, revoked, or without the role needed
    ├── NotFound             404
    ├── Conflict             409: e.g. a device with this addr already exists
    ├── InvalidRequest       400/422: the platform rejected the query or body
    ├── RateLimited          429, still after all retries
    ├── ServerError          5xx (still after all retries where retrying is safe),
    │                        or an answer that is not the JSON the API documents
    ├── TransportError       the request never got an answer and was safe to retry:
    │                        DNS, refused connection, TLS, connect timeout
    └── UnknownOutcome       a write that may have reached the server, but no answer
                             came back: look the object up before sending it again

Retries: exponential backoff with full jitter on 429 (at least ``Retry-After``),
502/503/504 and failures to connect. Reads (GET) are also retried on 500 and on
answers lost in transit. A POST that may have been received is never resent.
"""

from __future__ import annotations

import html
import json
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

__all__ = [
    "AuthError",
    "Conflict",
    "Filter",
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
# A page shorter than asked normally ends a listing. A server that caps pages
# below what we ask looks the same, so a short page of at least this many rows
# (the documented default page size) is confirmed with one more request.
MIN_PLAUSIBLE_PAGE_CAP = 100
MESSAGE_LIMIT = 300

SCALAR_OPERATORS = ("eq", "lte", "lt", "gte", "gt", "like", "ilike", "isnull")
ARRAY_OPERATORS = ("contains", "containedby", "overlap", "isnull")

ROLES_TO_WRITE_DEVICES = "org-admin or device-admin"
ROLES_TO_MANAGE_USERS = "org-admin"


class PlatformError(Exception):
    """Something went wrong talking to the platform."""

    def __init__(self, message: str, *, status: int | None = None, hint: str = "") -> None:
        self.status = status
        self.message = message
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        head = f"HTTP {self.status}: " if self.status is not None else ""
        tail = f" ({self.hint})" if self.hint else ""
        return f"{head}{self.message}{tail}"


class AuthError(PlatformError):
    """401 or 403: the token is not accepted or lacks a role."""


class NotFound(PlatformError):
    """404: no such object or endpoint."""


class Conflict(PlatformError):
    """409: the object clashes with an existing one (e.g. the same addr)."""


class InvalidRequest(PlatformError):
    """400 or 422: the platform rejected the request."""


class RateLimited(PlatformError):
    """429 that persisted through all retries."""


class ServerError(PlatformError):
    """5xx, or an answer that is not what the API documents."""


class TransportError(PlatformError):
    """No answer, and the request is known not to have been processed."""


class UnknownOutcome(PlatformError):
    """A write may have been processed, but its answer was lost."""


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


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; dates are ignored)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class RateCap:
    """Spaces request starts so that at most ``rps`` begin per second, across threads."""

    def __init__(self, rps: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rps <= 0:
            raise ValueError("the request rate cap must be above 0")
        self.interval = 1.0 / rps
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock = clock

    def wait(self, sleep: Callable[[float], None]) -> None:
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            sleep(start - now)


# --- the client ----------------------------------------------------------------------------


class PlatformClient:
    """A thread-safe client for the platform's REST API.

    ``url`` is the base URL without ``/api``. ``ca_bundle`` adds trust in a
    private CA; TLS verification cannot be switched off.
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
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        if not re.match(r"https?://", self.url):
            raise ValueError(f"the platform URL must start with http:// or https://: {url!r}")
        token = token.strip()
        # httpx would echo a malformed header value, token included, in its error.
        if not token or not re.fullmatch(r"[\x21-\x7e]+", token):
            raise ValueError("the token is empty or contains spaces or unusual characters")
        self._token = token
        self.retry = retry
        self._sleep = sleep
        self._rate_cap = RateCap(max_rps) if max_rps else None
        self._count_lock = threading.Lock()
        self.requests_sent = 0
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

    def redact(self, text: str) -> str:
        """The one place where text from outside passes before reaching a message."""
        return text.replace(self._token, "***")

    # --- devices

    def list_devices_page(
        self, filters: Sequence[Filter] = (), *, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """One page of devices matching all filters (order by id)."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        path = "/api/devices?" + query_string(filters, limit=limit, offset=offset)
        return self._as_list(self._request("GET", path, idempotent=True), "device list")

    def iter_device_pages(
        self, filters: Sequence[Filter] = (), *, page_size: int = MAX_PAGE_SIZE
    ) -> Iterator[list[dict[str, Any]]]:
        """Every matching device, page by page, by the documented rule.

        Stops at the first page shorter than asked. If the server caps pages
        below ``page_size`` (a short page of a plausible cap size), one more
        request tells the cap from the end, and the cap is used from then on.
        """
        limit = min(page_size, MAX_PAGE_SIZE)
        offset = 0
        cap_checked = False
        while True:
            page = self.list_devices_page(filters, limit=limit, offset=offset)
            if page:
                yield page
            offset += len(page)
            if len(page) >= limit:
                continue
            if cap_checked or len(page) < MIN_PLAUSIBLE_PAGE_CAP:
                return
            # Short but large: the end, or a server cap. The next page tells.
            limit = len(page)
            cap_checked = True

    def list_devices(
        self, filters: Sequence[Filter] = (), *, page_size: int = MAX_PAGE_SIZE
    ) -> list[dict[str, Any]]:
        """All matching devices, however many pages that takes."""
        return [d for page in self.iter_device_pages(filters, page_size=page_size) for d in page]

    def create_device(self, device_input: dict[str, Any]) -> dict[str, Any]:
        """POST /api/devices; the created Device."""
        answer = self._request(
            "POST", "/api/devices", body=device_input, roles=ROLES_TO_WRITE_DEVICES
        )
        return self._as_object(answer, "created device")

    def queue_downlink(self, device_id: int, downlink_type: str, content: Any) -> None:
        """POST /api/devices/{id}/downlink?type=...; replaces a queued one of that type."""
        path = f"/api/devices/{int(device_id)}/downlink?type={quote(downlink_type, safe='')}"
        self._request("POST", path, body=content, roles=ROLES_TO_WRITE_DEVICES, want_body=False)

    def list_downlinks(self, device_id: int) -> list[dict[str, Any]]:
        answer = self._request("GET", f"/api/devices/{int(device_id)}/downlink", idempotent=True)
        return self._as_list(answer, "downlink list")

    # --- users

    def create_user(self, user_input: dict[str, Any]) -> dict[str, Any]:
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
    ) -> Any:
        what = f"{method} {path.split('?')[0]}"
        content = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if content is not None else {}
        retries = self.retry.attempts - 1
        for retry_number in range(retries + 1):
            last_try = retry_number == retries
            if self._rate_cap:
                self._rate_cap.wait(self._sleep)
            try:
                with self._count_lock:
                    self.requests_sent += 1
                response = self._http.request(method, path, content=content, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Nothing reached the server: safe to retry, even a POST.
                error = self._transport_error(what, exc)
                if last_try or _is_tls_failure(exc):
                    raise error from exc
                self._sleep(self.retry.delay(retry_number))
                continue
            except httpx.TransportError as exc:
                # The request may have been received; only reads are resent.
                if not idempotent:
                    raise UnknownOutcome(
                        f"{what}: no answer after the request was sent ({_describe(exc)}); "
                        "it may or may not have been carried out",
                    ) from exc
                if last_try:
                    raise self._transport_error(what, exc) from exc
                self._sleep(self.retry.delay(retry_number))
                continue

            status = response.status_code
            if 200 <= status < 300:
                if not want_body:
                    return None
                return self._json_body(response, what, idempotent)
            if _should_retry(status, idempotent) and not last_try:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                self._sleep(self.retry.delay(retry_number, retry_after))
                continue
            raise self._status_error(response, what, idempotent, roles)
        raise AssertionError("unreachable: the loop always returns or raises")

    def _json_body(self, response: httpx.Response, what: str, idempotent: bool) -> Any:
        try:
            return response.json()
        except (ValueError, UnicodeDecodeError):
            message = (
                f"{what}: the platform answered {response.status_code} but not with JSON: "
                f"{self._shorten(response.text)!r}"
            )
            if idempotent:
                raise ServerError(message, status=response.status_code) from None
            raise UnknownOutcome(message, status=response.status_code) from None

    def _status_error(
        self, response: httpx.Response, what: str, idempotent: bool, roles: str
    ) -> PlatformError:
        status = response.status_code
        message = f"{what}: {self._server_message(response)}"
        if status == 401:
            return AuthError(
                message,
                status=status,
                hint="the platform did not accept the token: it is missing, mistyped, expired "
                "or revoked; create one in the platform UI under Integrations -> REST",
            )
        if status == 403:
            needed = f"this needs a token with the role {roles}" if roles else ""
            return AuthError(
                message, status=status, hint=needed or "the token lacks the role this needs"
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

    def _server_message(self, response: httpx.Response) -> str:
        """Whatever the body says, as one short line: JSON, plain text or HTML."""
        text = response.text
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict):
            for key in ("error", "message", "detail", "msg"):
                if isinstance(body.get(key), str):
                    return self._shorten(body[key])
            return self._shorten(json.dumps(body, ensure_ascii=False))
        if "<" in text and re.search(r"<\s*(html|body|h1|title|p)\b", text, re.I):
            text = html.unescape(
                re.sub(r"<(script|style)\b.*?</\1>|<[^>]+>", " ", text, flags=re.S | re.I)
            )
        return self._shorten(text) or response.reason_phrase or "no message"

    def _shorten(self, text: str) -> str:
        text = " ".join(self.redact(text).split())
        return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."

    def _as_list(self, answer: Any, what: str) -> list[dict[str, Any]]:
        """Accept ``{"data": [...]}`` (``"data": null`` for none) and a bare list."""
        data = answer.get("data", answer) if isinstance(answer, dict) else answer
        if data is None:
            return []
        if not isinstance(data, list):
            raise ServerError(
                f"the platform's {what} is not a list: {self._shorten(str(answer))!r}"
            )
        return data

    def _as_object(self, answer: Any, what: str) -> dict[str, Any]:
        """Accept ``{"data": {...}}`` and a bare object. Anything else leaves the write unknown."""
        data = answer.get("data", answer) if isinstance(answer, dict) else None
        if not isinstance(data, dict):
            raise UnknownOutcome(
                f"the platform's {what} is not an object: {self._shorten(str(answer))!r}"
            )
        return data

    def _transport_error(self, what: str, exc: httpx.TransportError) -> TransportError:
        hint = "check the URL and the network"
        if _is_tls_failure(exc):
            hint = "the TLS certificate was not trusted; give the CA bundle if a private CA is used"
        return TransportError(f"{what}: could not reach {self.url} ({_describe(exc)})", hint=hint)


def _should_retry(status: int, idempotent: bool) -> bool:
    if status in (429, 503):
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
