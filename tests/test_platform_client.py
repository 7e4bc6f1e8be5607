"""The platform client against httpx.MockTransport: exact fault sequences."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from provisioner.pace import Pace
from provisioner.platform import (
    AuthError,
    BadAnswer,
    Conflict,
    InvalidRequest,
    NotFound,
    PlatformClient,
    PlatformError,
    RateLimited,
    RetryPolicy,
    ServerError,
    SetupError,
    TransportError,
    UnknownOutcome,
    f,
    fa,
)

TOKEN = "s3cret-Token-0123456789"
Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport that answers from a script and remembers every request."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)


def make_client(recorder: Recorder, sleeps: list[float] | None = None, **kw: Any) -> PlatformClient:
    slept = sleeps if sleeps is not None else []
    return PlatformClient(
        "https://platform.example",
        TOKEN,
        transport=httpx.MockTransport(recorder),
        sleep=slept.append,
        **kw,
    )


def ok(data: Any) -> httpx.Response:
    return httpx.Response(200, json={"data": data})


DEVICE = {"id": 7, "addr": "0011223344556677", "serial": "1337", "name": "x"}


# --- filters and query strings


def test_filter_query_uses_documented_syntax_with_encoded_values() -> None:
    rec = Recorder(ok([]))
    client = make_client(rec)
    client.list_devices_page(
        [
            f("createdAt", "gt", "2000-01-01T02:37:00+01:00"),
            fa("tags", "contains", ["Site-HH-04", "Müller & Co"]),
            f("serial", "isnull", False),
        ],
        limit=50,
        offset=100,
    )
    query = rec.requests[0].url.query.decode()
    assert query == (
        "limit=50&offset=100"
        "&f:createdAt=gt:2000-01-01T02%3A37%3A00%2B01%3A00"
        "&fa:tags=contains:Site-HH-04,M%C3%BCller%20%26%20Co"
        "&f:serial=isnull:false"
    )


def test_filter_rejects_undocumented_operator() -> None:
    with pytest.raises(ValueError, match="operator"):
        f("serial", "contains", "1")
    with pytest.raises(ValueError, match="operator"):
        fa("tags", "eq", ["a"])


def test_client_never_asks_above_the_documented_maximum() -> None:
    client = make_client(Recorder(ok([])))
    with pytest.raises(ValueError):
        client.list_devices_page(limit=10001)


# --- pagination


def paged(total: int, cap: int = 10000) -> Handler:
    """A server holding ``total`` devices that clamps ``limit`` to ``cap``."""

    def handler(request: httpx.Request) -> httpx.Response:
        limit = min(int(request.url.params["limit"]), cap)
        offset = int(request.url.params["offset"])
        ids = range(offset + 1, min(total, offset + limit) + 1)
        return ok([{"id": i} for i in ids])

    return handler


@pytest.mark.parametrize(
    ("total", "requests"),
    [(0, 1), (1, 2), (9999, 2), (10000, 2), (10001, 3), (20000, 3), (100000, 11)],
)
def test_pagination_reads_every_device_in_few_requests(total: int, requests: int) -> None:
    # A short page is always confirmed by one more request: it might be a server's cap.
    rec = Recorder(paged(total))
    devices = make_client(rec).list_devices()
    assert [d["id"] for d in devices] == list(range(1, total + 1))
    assert len(rec.requests) == requests
    assert all(int(r.url.params["limit"]) <= 10000 for r in rec.requests)


def test_pagination_survives_a_server_that_caps_pages_lower() -> None:
    rec = Recorder(paged(1234, cap=500))
    devices = make_client(rec).list_devices()
    assert len(devices) == 1234
    assert [int(r.url.params["offset"]) for r in rec.requests] == [0, 500, 1000, 1234]
    assert [int(r.url.params["limit"]) for r in rec.requests] == [10000, 500, 500, 234]


def test_pagination_accepts_a_bare_list() -> None:
    rec = Recorder(httpx.Response(200, json=[DEVICE]), httpx.Response(200, json=[]))
    assert make_client(rec).list_devices([f("serial", "eq", "1337")]) == [DEVICE]
    assert [r.url.params["offset"] for r in rec.requests] == ["0", "1"]


# --- retries


def test_429_then_200_waits_at_least_retry_after() -> None:
    sleeps: list[float] = []
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "2"}), ok(DEVICE))
    device = make_client(rec, sleeps).create_device({"addr": "0011223344556677"})
    assert device == DEVICE
    assert len(rec.requests) == 2
    assert sleeps and sleeps[0] >= 2


def test_503_three_times_then_200() -> None:
    sleeps: list[float] = []
    busy = httpx.Response(503, text="busy")
    rec = Recorder(busy, busy, busy, ok([DEVICE]))
    assert make_client(rec, sleeps).list_devices_page() == [DEVICE]
    assert len(rec.requests) == 4
    assert len(sleeps) == 3


def test_backoff_grows_and_stays_within_its_ceiling() -> None:
    policy = RetryPolicy(attempts=6, base_delay=1.0, max_delay=8.0)
    for n in range(6):
        for _ in range(50):
            assert 0 <= policy.delay(n) <= min(8.0, 2**n)


def test_retries_give_up_with_the_last_error() -> None:
    rec = Recorder(httpx.Response(503, text="busy"))
    with pytest.raises(ServerError) as info:
        make_client(rec, retry=RetryPolicy(attempts=3)).list_devices_page()
    assert info.value.status == 503
    assert len(rec.requests) == 3


def test_persistent_429_becomes_rate_limited() -> None:
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "1"}))
    with pytest.raises(RateLimited):
        make_client(rec, retry=RetryPolicy(attempts=2)).list_devices_page()


def test_connect_failure_is_retried_even_for_a_post() -> None:
    rec = Recorder(httpx.ConnectError("connection refused"), ok(DEVICE))
    assert make_client(rec).create_device({"addr": "x"}) == DEVICE
    assert len(rec.requests) == 2


def test_post_timeout_is_an_unknown_outcome_and_not_resent() -> None:
    rec = Recorder(httpx.ReadTimeout("timed out"), ok(DEVICE))
    with pytest.raises(UnknownOutcome) as info:
        make_client(rec).create_device({"addr": "0011223344556677"})
    assert len(rec.requests) == 1
    assert info.value.status is None
    assert "may or may not" in str(info.value)


def test_post_dropped_connection_is_an_unknown_outcome() -> None:
    rec = Recorder(httpx.RemoteProtocolError("Server disconnected without sending a response."))
    with pytest.raises(UnknownOutcome):
        make_client(rec).create_user({"email": "a@b.de"})
    assert len(rec.requests) == 1


@pytest.mark.parametrize("status", [502, 504])
def test_post_gateway_error_is_unknown_outcome(status: int) -> None:
    rec = Recorder(httpx.Response(status, text="gateway"), ok(DEVICE))
    with pytest.raises(UnknownOutcome):
        make_client(rec).create_device({"addr": "x"})
    assert len(rec.requests) == 1


def test_post_500_is_not_resent() -> None:
    rec = Recorder(httpx.Response(500, json={"error": "boom"}), ok(DEVICE))
    with pytest.raises(ServerError, match="boom"):
        make_client(rec).create_device({"addr": "x"})
    assert len(rec.requests) == 1


def test_get_read_timeout_is_retried() -> None:
    rec = Recorder(httpx.ReadTimeout("timed out"), httpx.Response(500), ok([DEVICE]))
    assert make_client(rec).list_devices_page() == [DEVICE]
    assert len(rec.requests) == 3


def test_post_200_without_json_is_a_bad_answer_that_may_be_done() -> None:
    rec = Recorder(httpx.Response(200, text="<html>ok</html>"))
    with pytest.raises(BadAnswer) as info:
        make_client(rec).create_device({"addr": "x"})
    assert info.value.maybe_done
    assert "may or may not" in str(info.value)
    assert len(rec.requests) == 1


def test_tls_failure_is_not_retried_and_hints_at_the_ca_bundle() -> None:
    error = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    error.__cause__ = ssl.SSLError("CERTIFICATE_VERIFY_FAILED")
    rec = Recorder(error)
    with pytest.raises(TransportError, match="CA bundle"):
        make_client(rec).list_devices_page()
    assert len(rec.requests) == 1


def test_rate_cap_spaces_request_starts() -> None:
    now = [100.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    pace = Pace(max_rps=10, clock=lambda: now[0])
    starts = []
    for _ in range(5):
        pace.turn(sleep)
        starts.append(now[0])
    assert starts == pytest.approx([100.0, 100.1, 100.2, 100.3, 100.4])


def test_client_applies_the_rate_cap() -> None:
    sleeps: list[float] = []
    client = make_client(Recorder(ok([])), sleeps, max_rps=0.01)
    for _ in range(3):
        client.list_devices_page()
    assert len(sleeps) == 2


# --- error mapping


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, InvalidRequest), (422, InvalidRequest), (404, NotFound), (409, Conflict)],
)
def test_status_maps_to_error_kind(status: int, kind: type[PlatformError]) -> None:
    rec = Recorder(httpx.Response(status, json={"error": "addr 0011 already exists"}))
    with pytest.raises(kind) as info:
        make_client(rec).create_device({"addr": "0011"})
    assert info.value.status == status
    assert "addr 0011 already exists" in str(info.value)
    assert len(rec.requests) == 1


def test_403_names_the_role_needed() -> None:
    rec = Recorder(httpx.Response(403, json={"error": "forbidden"}))
    with pytest.raises(AuthError, match="org-admin or device-admin"):
        make_client(rec).create_device({"addr": "x"})


def test_401_explains_the_token() -> None:
    rec = Recorder(httpx.Response(401, text="unauthorized"))
    with pytest.raises(AuthError, match="did not accept the token"):
        make_client(rec).list_devices_page()


def test_html_502_body_is_shown_short_and_readable() -> None:
    page = (
        "<html><head><title>502 Bad Gateway</title><style>body{color:red}</style></head>"
        "<body><h1>502 Bad Gateway</h1>" + "<p>nginx</p>" * 200 + "</body></html>"
    )
    rec = Recorder(httpx.Response(502, text=page, headers={"Content-Type": "text/html"}))
    with pytest.raises(ServerError) as info:
        make_client(rec, retry=RetryPolicy(attempts=2)).list_devices_page()
    text = str(info.value)
    assert "502 Bad Gateway" in text
    assert "<" not in text and "color:red" not in text
    assert len(text) < 400


def test_404_on_user_list_is_not_found() -> None:
    rec = Recorder(httpx.Response(404, text="404 page not found"))
    with pytest.raises(NotFound):
        make_client(rec).list_users()


# --- the token


def test_token_is_sent_and_never_echoed() -> None:
    echo = httpx.Response(400, json={"error": f"bad header Authorization: Bearer {TOKEN}"})
    rec = Recorder(echo)
    client = make_client(rec)
    with pytest.raises(InvalidRequest) as info:
        client.create_device({"addr": "x"})
    assert rec.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert rec.requests[0].headers["Accept-Encoding"] == "gzip"
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)
    assert TOKEN not in repr(client)


def test_malformed_token_is_refused_without_showing_it() -> None:
    with pytest.raises(SetupError) as info:
        PlatformClient("https://x.example", "abc def\n")
    assert "abc def" not in str(info.value)


def test_bodies_are_sent_as_json() -> None:
    rec = Recorder(ok(DEVICE))
    make_client(rec).create_device({"addr": "x", "description": "3.OG Müller"})
    request = rec.requests[0]
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {"addr": "x", "description": "3.OG Müller"}


def test_downlink_post_accepts_an_empty_body() -> None:
    rec = Recorder(httpx.Response(200))
    make_client(rec).queue_downlink(7, "config", {"d": {"a": "1"}, "q": "config"})
    assert rec.requests[0].url.path == "/api/devices/7/downlink"
    assert rec.requests[0].url.params["type"] == "config"
