"""The platform client against bad answers and faults: httpx.MockTransport, exact sequences.

Bad bodies (BadAnswer), paging past caps and broken servers, outages (a fake clock, no
real waiting), plain http, and secrets that must never show in an exception's text.
"""

from __future__ import annotations

import gzip
import json
import math
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from provisioner.errors import ProvisionerError
from provisioner.platform import (
    EXCERPT_BYTES,
    FIRST_CONTACT_SECONDS,
    MIN_PLAUSIBLE_PAGE_CAP,
    BadAnswer,
    InsecureURL,
    InvalidRequest,
    PlatformClient,
    PlatformError,
    RetryPolicy,
    ServerError,
    TransportError,
    UnknownOutcome,
    f,
)
from provisioner.sandbox import Sandbox

TOKEN = "s3cret-Token-0123456789"
PASSWORD = 'Pa"ssw0rd-Müller'  # a quote and an umlaut: escaped differently by each encoder
PASSWORD_GO = "x<y>&z-Geheimnis"  # Go's encoder writes these as \u003c, \u003e, \u0026
Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport that answers from a script (the last answer repeats)."""

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


class FakeTime:
    """A clock that only moves when the client sleeps (or a test stream says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(recorder: Recorder, **kw: Any) -> PlatformClient:
    kw.setdefault("sleep", lambda seconds: None)
    return PlatformClient(
        "https://platform.example", TOKEN, transport=httpx.MockTransport(recorder), **kw
    )


def ok(data: Any) -> httpx.Response:
    return httpx.Response(200, json={"data": data})


def raw(body: str | bytes, status: int = 200, **headers: str) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return httpx.Response(status, content=content, headers=headers)


DEVICE = {"id": 7, "addr": "0011223344556677", "serial": "1337"}


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


# --- bad bodies: a read raises BadAnswer (not retried, not done); a write's may be done

BAD_LIST_BODIES = {
    "not JSON": "<html><body>Service ok</body></html>",
    "empty": "",
    "a string": '"devices"',
    "a number": "42",
    "data is a string": '{"data": "none"}',
    "data is an object without a list": '{"data": {"count": 0}}',
    "an object without data": '{"devices": []}',
    "items are numbers": '{"data": [1, 2]}',
    "items are lists": '[[{"id": 1}]]',
    "id is a string": '{"data": [{"id": "abc"}]}',
    "id is a numeric string": '{"data": [{"id": "7"}]}',
    "id is a float": '{"data": [{"id": 1.5}]}',
    "id is a whole float": '{"data": [{"id": 7.0}]}',
    "id is null": '{"data": [{"id": null}]}',
    "id is missing": '{"data": [{"addr": "x"}]}',
    "id is 0": '{"data": [{"id": 0}]}',
    "id is negative": '{"data": [{"id": -1}]}',
    "id is a bool": '{"data": [{"id": true}]}',
    "a later id is bad": '{"data": [{"id": 1}, {"id": 2}, {"id": 2.5}]}',
    "bad id in the devices wrapper": '{"data": {"devices": [{"id": "x"}], "pagination": {}}}',
    "nested 65 deep": '{"data": [{"id": 1, "x": ' + deep(62) + "}]}",
    "nested 100000 deep": deep(100_000),
    "an object nested 100000 deep": '{"a":' * 100_000 + "1" + "}" * 100_000,
}


@pytest.mark.parametrize("body", BAD_LIST_BODIES.values(), ids=BAD_LIST_BODIES.keys())
def test_a_bad_device_list_is_a_bad_answer(body: str) -> None:
    rec = Recorder(raw(body, **{"Content-Type": "application/json"}))
    with pytest.raises(BadAnswer) as info:
        make_client(rec).list_devices_page()
    assert info.value.status == 200
    assert info.value.maybe_done is False
    assert not isinstance(info.value, ServerError)
    assert len(rec.requests) == 1  # not retried
    assert len(str(info.value)) < 800


def test_list_devices_and_get_device_check_ids_too() -> None:
    for call in (
        lambda c: c.list_devices(),
        lambda c: list(c.iter_device_pages()),
        lambda c: c.get_device(7),
    ):
        with pytest.raises(BadAnswer, match="positive integer"):
            call(make_client(Recorder(ok([{"id": 7}, {"id": 1.5}]))))


@pytest.mark.parametrize(
    "body",
    ['{"data": "x"}', '{"data": [1]}', '"x"', "not json", deep(100_000)],
    ids=["data is a string", "items not objects", "a string", "not JSON", "nested deep"],
)
def test_bad_downlink_and_user_lists_are_bad_answers(body: str) -> None:
    with pytest.raises(BadAnswer):
        make_client(Recorder(raw(body))).list_downlinks(7)
    with pytest.raises(BadAnswer):
        make_client(Recorder(raw(body))).list_users()


BAD_CREATED_BODIES = {
    "id is a string": {"data": {"id": "abc"}},
    "id is a float": {"data": {"id": 1.5}},
    "id is null": {"data": {"id": None}},
    "id is 0": {"data": {"id": 0}},
    "id is negative": {"data": {"id": -1}},
    "id is a bool": {"data": {"id": True}},
    "id is missing": {"data": {"addr": "x"}},
    "data is null": {"data": None},
    "data is a list": {"data": [{"id": 1}]},
    "a bare list": [{"id": 1}],
    "a string": "created",
}


@pytest.mark.parametrize("body", BAD_CREATED_BODIES.values(), ids=BAD_CREATED_BODIES.keys())
@pytest.mark.parametrize("create", ["create_device", "create_user"])
def test_a_bad_created_object_is_a_bad_answer_that_may_be_done(body: Any, create: str) -> None:
    rec = Recorder(httpx.Response(200, json=body))
    with pytest.raises(BadAnswer) as info:
        getattr(make_client(rec), create)({"addr": "x", "email": "a@b.de"})
    assert info.value.maybe_done is True
    assert "may or may not" in str(info.value)
    assert len(rec.requests) == 1  # a write is never resent


@pytest.mark.parametrize(
    "body",
    ["<html>ok</html>", "", deep(100_000), '{"data": ' + deep(70) + "}"],
    ids=["not JSON", "empty", "nested 100000 deep", "nested 70 deep"],
)
def test_a_created_object_that_is_not_usable_json_may_be_done(body: str) -> None:
    rec = Recorder(raw(body))
    with pytest.raises(BadAnswer) as info:
        make_client(rec).create_device({"addr": "x"})
    assert info.value.maybe_done is True


def test_the_bad_answer_carries_the_start_of_the_body() -> None:
    rec = Recorder(raw("Gateway says hello " + "x" * 5000))
    with pytest.raises(BadAnswer) as info:
        make_client(rec).list_devices_page()
    assert info.value.body.startswith("Gateway says hello")
    assert len(info.value.body) <= 300
    assert "not JSON" in str(info.value)


# --- the shapes that are fine


@pytest.mark.parametrize(
    "body",
    [
        {"data": [DEVICE]},
        [DEVICE],
        {"data": {"devices": [DEVICE], "pagination": {"limit": 100, "offset": 0, "total": 1}}},
    ],
    ids=["data list", "bare list", "devices wrapper"],
)
def test_device_list_shapes_that_are_accepted(body: Any) -> None:
    rec = Recorder(httpx.Response(200, json=body))
    assert make_client(rec).list_devices_page() == [DEVICE]


@pytest.mark.parametrize(
    "body", [{"data": None}, {"data": []}, [], {"data": {"devices": []}}], ids=str
)
def test_empty_device_lists(body: Any) -> None:
    assert make_client(Recorder(httpx.Response(200, json=body))).list_devices_page() == []


def test_nesting_up_to_the_limit_is_fine() -> None:
    # 64 levels: the top object, its list, the device, and 61 lists inside it.
    body = '{"data": [{"id": 1, "x": ' + deep(61) + "}]}"
    assert make_client(Recorder(raw(body))).list_devices_page()[0]["id"] == 1


@pytest.mark.parametrize("body", [{"data": DEVICE}, DEVICE], ids=["data object", "bare object"])
def test_created_object_shapes_that_are_accepted(body: Any) -> None:
    assert make_client(Recorder(httpx.Response(200, json=body))).create_device({}) == DEVICE


def test_a_large_id_is_kept_exactly() -> None:
    big = {"id": 2**62 + 1}
    assert make_client(Recorder(ok(big))).create_device({})["id"] == 2**62 + 1


# --- gzip


def gzipped(data: bytes, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(data)
    )


def test_gzip_is_decoded() -> None:
    rec = Recorder(gzipped(gzip.compress(json.dumps({"data": [DEVICE]}).encode())))
    assert make_client(rec).list_devices_page() == [DEVICE]


def test_broken_gzip_on_a_read_is_a_bad_answer() -> None:
    rec = Recorder(gzipped(b"this is not gzip at all"))
    with pytest.raises(BadAnswer, match="encoding") as info:
        make_client(rec).list_devices_page()
    assert info.value.maybe_done is False
    assert len(rec.requests) == 1


def test_broken_gzip_on_a_create_may_be_done() -> None:
    good = gzip.compress(json.dumps({"data": DEVICE}).encode())
    rec = Recorder(gzipped(good[:20] + b"garbage" + good[27:]))
    with pytest.raises(BadAnswer) as info:
        make_client(rec).create_device({"addr": "x"})
    assert info.value.maybe_done is True


def test_broken_gzip_on_an_error_still_gives_the_status() -> None:
    with pytest.raises(InvalidRequest) as info:
        make_client(Recorder(gzipped(b"garbage", status=400))).create_device({})
    assert info.value.status == 400


# --- size cap and deadline


class Endless(httpx.SyncByteStream):
    """A body that never ends: ``chunk`` after ``chunk``, ``pause`` seconds apart."""

    def __init__(
        self, chunk: bytes = b" " * 1000, pause: float = 0.0, tick: FakeTime | None = None
    ) -> None:
        self.chunk, self.pause, self.tick = chunk, pause, tick
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            if self.pause:
                time.sleep(self.pause)
            if self.tick is not None:
                self.tick.now += 1.0
            self.sent += 1
            yield self.chunk


def test_a_body_over_the_cap_is_a_bad_answer_and_reading_stops() -> None:
    stream = Endless(b"[" + b" " * 999)
    rec = Recorder(httpx.Response(200, stream=stream))
    with pytest.raises(BadAnswer, match="larger than the 5000 bytes") as info:
        make_client(rec, max_body_bytes=5000).list_devices_page()
    assert stream.sent == 6  # stopped at the first chunk past the cap
    assert info.value.maybe_done is False


def test_a_body_announced_over_the_cap_is_not_read() -> None:
    stream = Endless()
    rec = Recorder(httpx.Response(200, headers={"Content-Length": "999999"}, stream=stream))
    with pytest.raises(BadAnswer, match="announces 999999 bytes"):
        make_client(rec, max_body_bytes=5000).create_device({})
    assert stream.sent == 0


def test_a_body_within_the_cap_is_fine() -> None:
    body = json.dumps({"data": [DEVICE]})
    client = make_client(Recorder(raw(body)), max_body_bytes=len(body))
    assert client.list_devices_page() == [DEVICE]


def test_a_stalled_body_ends_at_the_deadline() -> None:
    stream = Endless(b" ", pause=0.01)  # one byte every 10 ms: no read ever times out
    rec = Recorder(httpx.Response(200, stream=stream))
    started = time.monotonic()
    with pytest.raises(BadAnswer, match="not arrived in full after 0.2 s") as info:
        make_client(rec, answer_deadline=0.2).list_devices_page()
    assert time.monotonic() - started < 1.0
    assert info.value.maybe_done is False
    assert len(rec.requests) == 1


def test_a_stalled_answer_to_a_create_may_be_done() -> None:
    fake = FakeTime()
    stream = Endless(b"{", tick=fake)  # each byte takes a (fake) second
    rec = Recorder(httpx.Response(200, stream=stream))
    with pytest.raises(BadAnswer) as info:
        make_client(rec, clock=fake.clock, answer_deadline=30).create_device({})
    assert info.value.maybe_done is True
    assert 30 <= stream.sent <= 32


def test_an_endless_or_stalled_error_body_still_gives_the_error() -> None:
    stream = Endless()
    with pytest.raises(InvalidRequest):
        make_client(Recorder(httpx.Response(400, stream=stream))).create_device({})
    assert stream.sent <= EXCERPT_BYTES // 1000 + 1
    fake = FakeTime()
    slow = Endless(b"x", tick=fake)
    client = make_client(
        Recorder(httpx.Response(404, stream=slow)), clock=fake.clock, answer_deadline=5
    )
    with pytest.raises(PlatformError) as info:
        client.list_users()
    assert info.value.status == 404
    assert slow.sent <= 7


class Broken(httpx.SyncByteStream):
    """A body that starts and then the connection drops."""

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"data": '
        raise httpx.ReadError("connection reset by peer")


def test_an_answer_lost_mid_body_stays_an_unknown_outcome_for_a_write() -> None:
    rec = Recorder(httpx.Response(200, stream=Broken()), ok(DEVICE))
    with pytest.raises(UnknownOutcome):
        make_client(rec).create_device({})
    assert len(rec.requests) == 1


def test_an_answer_lost_mid_body_is_read_again() -> None:
    rec = Recorder(httpx.Response(200, stream=Broken()), ok([DEVICE]), ok([]))
    assert make_client(rec).list_devices() == [DEVICE]
    assert len(rec.requests) == 3


def test_a_downlink_needs_only_the_status() -> None:
    for answer in (httpx.Response(200), httpx.Response(204), raw("queued!")):
        make_client(Recorder(answer)).queue_downlink(7, "config", {"q": "config"})
    make_client(Recorder(httpx.Response(200, stream=Broken()))).queue_downlink(7, "fw", {})


# --- paging


def capped(total: int, cap: int, served: list[int] | None = None) -> Handler:
    """A server holding devices 1..total that never returns more than ``cap`` rows."""

    def handler(request: httpx.Request) -> httpx.Response:
        limit = min(int(request.url.params["limit"]), cap)
        offset = int(request.url.params["offset"])
        ids = list(range(offset + 1, min(total, offset + limit) + 1))
        if served is not None:
            served.extend(ids)
        return ok([{"id": i} for i in ids])

    return handler


@pytest.mark.parametrize("cap", [7, 50, 3500])
def test_a_server_cap_below_what_is_asked_loses_nothing(cap: int) -> None:
    total = 7123
    rec = Recorder(capped(total, cap))
    client = make_client(rec)
    devices = client.list_devices()
    assert [d["id"] for d in devices] == list(range(1, total + 1))
    assert client.page_cap_seen == cap
    # One request per page and one to settle the last short page; the cap is the
    # page size from the second request on.
    assert len(rec.requests) == math.ceil(total / cap) + 1
    limits = [int(r.url.params["limit"]) for r in rec.requests]
    assert limits[0] == 10000 and set(limits[1:-1]) == {cap}


def test_a_short_first_page_is_always_confirmed_and_is_not_a_cap() -> None:
    assert MIN_PLAUSIBLE_PAGE_CAP == 100  # still importable
    rec = Recorder(capped(30, 10000))
    client = make_client(rec)
    assert len(client.list_devices()) == 30
    assert [r.url.params["offset"] for r in rec.requests] == ["0", "30"]
    assert client.page_cap_seen is None


def test_the_smallest_cap_is_kept() -> None:
    cap = [200]
    client = make_client(Recorder(lambda request: capped(500, cap[0])(request)))
    client.list_devices()
    assert client.page_cap_seen == 200
    for cap[0] in (40, 60):
        client.list_devices()
    assert client.page_cap_seen == 40


def test_a_cap_that_varies_from_page_to_page_loses_nothing() -> None:
    sizes = iter([50, 30, 80, 10, 1000] * 100)

    def handler(request: httpx.Request) -> httpx.Response:
        limit = min(int(request.url.params["limit"]), next(sizes))
        offset = int(request.url.params["offset"])
        return ok([{"id": i} for i in range(offset + 1, min(1000, offset + limit) + 1)])

    devices = make_client(Recorder(handler)).list_devices()
    assert [d["id"] for d in devices] == list(range(1, 1001))


def test_rows_are_deduplicated_across_pages() -> None:
    # Page 2 starts 5 rows early (as after inserts ahead of it): those come once only.
    pages = {
        "0": ok([{"id": i} for i in range(1, 11)]),
        "10": ok([{"id": i} for i in range(6, 16)]),
        "20": ok([{"id": 16}, {"id": 16}]),
        "22": ok([]),
    }
    rec = Recorder(lambda request: pages[request.url.params["offset"]])
    devices = make_client(rec).list_devices(page_size=10)
    assert [d["id"] for d in devices] == list(range(1, 17))


def test_a_server_that_ignores_offset_is_a_bad_answer() -> None:
    rec = Recorder(ok([{"id": i} for i in range(1, 101)]))
    with pytest.raises(BadAnswer, match="ignore offset"):
        make_client(rec).list_devices(page_size=100)
    assert len(rec.requests) == 2
    rec = Recorder(ok([{"id": i} for i in range(1, 31)]))  # short, then the same again
    with pytest.raises(BadAnswer, match="ignore offset"):
        make_client(rec).list_devices()
    assert len(rec.requests) == 2


def test_a_listing_that_never_ends_is_a_bad_answer() -> None:
    rec = Recorder(capped(10**12, 50))
    with pytest.raises(BadAnswer, match="after 20 pages"):
        make_client(rec, max_pages=20).list_devices()
    assert len(rec.requests) == 20


def test_list_devices_page_checks_its_arguments() -> None:
    client = make_client(Recorder(ok([])))
    with pytest.raises(ValueError):
        client.list_devices_page(limit=0)
    with pytest.raises(ValueError):
        client.list_devices_page(offset=-1)
    with pytest.raises(ValueError):
        client.list_devices(page_size=0)


# --- get_device and ids


def test_get_device_looks_up_by_id_in_one_request() -> None:
    rec = Recorder(ok([DEVICE]))
    assert make_client(rec).get_device(7) == DEVICE
    assert rec.requests[0].url.query.decode() == "limit=1&offset=0&f:id=eq:7"
    assert len(rec.requests) == 1


def test_get_device_is_none_when_absent() -> None:
    rec = Recorder(ok([]))
    assert make_client(rec).get_device(8) is None
    assert len(rec.requests) == 1


def test_get_device_refuses_a_server_that_ignores_the_filter() -> None:
    with pytest.raises(BadAnswer, match="ignore the filter"):
        make_client(Recorder(ok([{"id": 1}]))).get_device(7)
    with pytest.raises(BadAnswer, match="ignore the filter"):
        make_client(Recorder(ok([DEVICE, {"id": 8}]))).get_device(7)


@pytest.mark.parametrize("bad", [1.5, 7.0, True, 0, -3, "7", None])
def test_ids_given_to_the_client_are_checked_not_truncated(bad: Any) -> None:
    rec = Recorder(httpx.Response(200))
    client = make_client(rec)
    with pytest.raises(ValueError, match="positive integer"):
        client.queue_downlink(bad, "config", {"q": "config"})
    with pytest.raises(ValueError, match="positive integer"):
        client.list_downlinks(bad)
    with pytest.raises(ValueError, match="positive integer"):
        client.get_device(bad)
    assert rec.requests == []


# --- outages


def test_an_outage_is_ridden_out_without_real_waiting() -> None:
    fake = FakeTime()
    said: list[str] = []
    rec = Recorder(ok([]), *[httpx.ConnectError("connection refused")] * 12, ok(DEVICE))
    client = make_client(
        rec,
        sleep=fake.sleep,
        clock=fake.clock,
        on_unreachable=said.append,
        retry=RetryPolicy(base_delay=1.0, max_delay=4.0),  # 12 waits of at most 4 s
    )
    client.list_devices_page()  # the platform answered once: what follows is an outage
    started = time.monotonic()
    assert client.create_device({"addr": "x"}) == DEVICE  # connect failures: safe for a POST
    assert time.monotonic() - started < 0.5
    assert len(rec.requests) == 14
    assert len(fake.sleeps) == 12 and fake.now - 1000.0 <= 60
    assert said and said[0].startswith("platform unreachable, retrying (0 s of 60 s)")
    # At most once per few seconds.
    assert len(said) <= (fake.now - 1000.0) / 5 + 1


def test_before_the_first_answer_the_retrying_line_names_the_first_contact_bound() -> None:
    # A platform never reached is given up after FIRST_CONTACT_SECONDS, not the outage
    # window: the line must not promise 60 s and give up after 5.
    fake = FakeTime()
    said: list[str] = []
    rec = Recorder(*[httpx.ConnectError("connection refused")] * 50)
    client = make_client(rec, sleep=fake.sleep, clock=fake.clock, on_unreachable=said.append)
    with pytest.raises(TransportError):
        client.list_devices_page()
    assert said and said[0].startswith("platform unreachable, retrying (0 s of 5 s)")
    assert fake.now - 1000.0 <= 5


def test_an_outage_past_the_bound_is_a_transport_error() -> None:
    fake = FakeTime()
    said: list[str] = []
    rec = Recorder(ok([]), httpx.ConnectTimeout("timed out"))
    client = make_client(
        rec, sleep=fake.sleep, clock=fake.clock, outage_seconds=30, on_unreachable=said.append
    )
    client.list_devices_page()
    with pytest.raises(TransportError, match="could not reach") as info:
        client.list_devices_page()
    assert fake.now - 1000.0 == pytest.approx(30)
    assert info.value.status is None
    assert 2 <= len(said) <= 7
    assert all("of 30 s" in line for line in said)
    assert any(f"({n} s of 30 s)" in line for line in said for n in range(5, 30))


@pytest.mark.parametrize("timeout", [httpx.ReadTimeout, httpx.ConnectTimeout])
def test_timeouts_slow_the_pace_but_the_outage_still_ends_at_its_bound(
    timeout: type[httpx.TimeoutException],
) -> None:
    # A timeout is the platform too busy: the pace slows down, but its waits must not
    # carry the last try past the bound the installer was told.
    fake = FakeTime()
    rec = Recorder(ok([]), timeout("timed out"))
    client = make_client(rec, sleep=fake.sleep, clock=fake.clock, outage_seconds=30)
    client.list_devices_page()
    with pytest.raises(TransportError, match="could not reach"):
        client.list_devices_page()
    assert fake.now - 1000.0 == pytest.approx(30)
    assert client.pace.stats().overloaded >= 2


def test_the_outage_bound_holds_even_when_sleep_does_not_sleep() -> None:
    # A sleep that returns at once (and the real clock): the waits asked for still count.
    rec = Recorder(httpx.ConnectError("connection refused"))
    started = time.monotonic()
    with pytest.raises(TransportError):
        make_client(rec, sleep=lambda seconds: None).list_devices_page()
    assert time.monotonic() - started < 1.0
    assert len(rec.requests) <= 60 / 0.5 + 1


def test_before_the_first_answer_a_connect_failure_is_told_within_seconds() -> None:
    # A wrong URL or a closed port, most likely: no minute of retries before saying so.
    fake = FakeTime()
    rec = Recorder(httpx.ConnectError("connection refused"))
    client = make_client(rec, sleep=fake.sleep, clock=fake.clock, outage_seconds=60)
    with pytest.raises(TransportError, match="could not reach"):
        client.list_devices_page()
    assert fake.now - 1000.0 == pytest.approx(FIRST_CONTACT_SECONDS)


def test_no_outage_retries_with_a_bound_of_zero() -> None:
    rec = Recorder(httpx.ConnectError("connection refused"), ok([]))
    with pytest.raises(TransportError):
        make_client(rec, outage_seconds=0).list_devices_page()
    assert len(rec.requests) == 1


def test_an_answer_starts_a_new_outage() -> None:
    fake = FakeTime()
    refused = httpx.ConnectError("connection refused")
    rec = Recorder(refused, refused, httpx.Response(503), refused, ok([]))
    client = make_client(rec, sleep=fake.sleep, clock=fake.clock)
    assert client.list_devices_page() == []
    assert len(rec.requests) == 5


CLOSED_UNANSWERED = httpx.RemoteProtocolError("Server disconnected without sending a response.")
# Every way a request can end without an answer: refused, closed unanswered, reset, timed out.
TRANSPORT_FAILURES = [
    httpx.ConnectError("connection refused"),
    CLOSED_UNANSWERED,
    httpx.ReadError("connection reset by peer"),
    httpx.WriteError("broken pipe"),
    httpx.ReadTimeout("timed out"),
    httpx.ConnectTimeout("timed out"),
]


@pytest.mark.parametrize("failure", TRANSPORT_FAILURES, ids=lambda e: type(e).__name__)
def test_every_transport_failure_of_a_read_is_ridden_out_as_an_outage(
    failure: Exception,
) -> None:
    fake = FakeTime()
    said: list[str] = []
    rec = Recorder(ok([]), *[failure] * 12, ok([DEVICE]))
    client = make_client(
        rec,
        sleep=fake.sleep,
        clock=fake.clock,
        on_unreachable=said.append,
        retry=RetryPolicy(attempts=3, base_delay=1.0, max_delay=4.0),
    )
    client.list_devices_page()
    # Far more tries than RetryPolicy.attempts: the outage window bounds them, not a count.
    assert client.list_devices_page() == [DEVICE]
    assert len(rec.requests) == 14
    assert 0 < fake.now - 1000.0 <= 60
    assert said and said[0] == (
        f"platform unreachable, retrying (0 s of 60 s): {type(failure).__name__}: {failure}"
    )


def test_connections_closed_unanswered_past_the_bound_are_a_transport_error() -> None:
    fake = FakeTime()
    said: list[str] = []
    rec = Recorder(ok([]), CLOSED_UNANSWERED)
    client = make_client(
        rec, sleep=fake.sleep, clock=fake.clock, outage_seconds=30, on_unreachable=said.append
    )
    client.list_devices_page()
    with pytest.raises(TransportError, match=r"RemoteProtocolError.*tries in 30 s"):
        client.get_device(7)
    assert fake.now - 1000.0 == pytest.approx(30)
    assert all("of 30 s" in line for line in said) and len(said) >= 2


def test_refused_then_closed_unanswered_is_one_outage_with_one_bound() -> None:
    fake = FakeTime()
    refused = httpx.ConnectError("connection refused")
    rec = Recorder(ok([]), *[refused, CLOSED_UNANSWERED] * 100)
    client = make_client(rec, sleep=fake.sleep, clock=fake.clock, outage_seconds=30)
    client.list_devices_page()
    with pytest.raises(TransportError):
        client.list_devices_page()
    assert fake.now - 1000.0 == pytest.approx(30)  # not 30 s for each kind of failure


@pytest.mark.parametrize(
    "failure",
    [
        e
        for e in TRANSPORT_FAILURES
        if not isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout))
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_write_that_may_have_been_received_is_an_unknown_outcome_not_resent(
    failure: Exception,
) -> None:
    fake = FakeTime()
    said: list[str] = []
    rec = Recorder(ok([]), failure, ok(DEVICE))
    client = make_client(rec, sleep=fake.sleep, clock=fake.clock, on_unreachable=said.append)
    client.list_devices_page()
    with pytest.raises(UnknownOutcome, match="may or may not have been carried out"):
        client.create_device({"addr": "0011223344556677"})
    assert [r.method for r in rec.requests] == ["GET", "POST"]
    assert fake.sleeps == [] and said == []


def test_a_write_whose_answer_broke_off_with_a_tls_error_stays_an_unknown_outcome() -> None:
    # Only a failure to connect can be a certificate not trusted: after sending, the
    # write may have been carried out whatever the error says.
    error = httpx.ReadError("[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC]")
    error.__cause__ = ssl.SSLError("bad record mac")
    rec = Recorder(error, ok(DEVICE))
    with pytest.raises(UnknownOutcome):
        make_client(rec).create_device({"addr": "x"})
    assert len(rec.requests) == 1


def test_a_stop_cuts_retries_short() -> None:
    """The CLI passes Event.wait as sleep: once the event is set, it returns True."""
    for answer, error in [
        (httpx.ConnectError("refused"), TransportError),
        (httpx.Response(503), ServerError),
        (httpx.ReadTimeout("timed out"), TransportError),
    ]:
        rec = Recorder(answer, ok([]))
        with pytest.raises(error):
            make_client(rec, sleep=lambda seconds: True).list_devices_page()
        assert len(rec.requests) == 1


def test_5xx_retries_still_count_attempts() -> None:
    rec = Recorder(httpx.Response(503))
    with pytest.raises(ServerError):
        make_client(rec, retry=RetryPolicy(attempts=4)).list_devices_page()
    assert len(rec.requests) == 4


# --- plain http


@pytest.mark.parametrize(
    "url", ["http://10.1.2.3", "http://platform.example:8080/", "http://127.0.0.1.example.com"]
)
def test_plain_http_to_another_host_is_refused(url: str) -> None:
    with pytest.raises(InsecureURL) as info:
        PlatformClient(url, TOKEN)
    assert isinstance(info.value, ProvisionerError)  # exit 2 at the CLI, no traceback
    assert "https://" in str(info.value) and "--allow-http" in str(info.value)
    assert TOKEN not in str(info.value)
    PlatformClient(url, TOKEN, allow_http=True).close()


def test_the_message_names_the_host() -> None:
    with pytest.raises(InsecureURL, match=r"^http://10\.1\.2\.3 would send the token unencrypted"):
        PlatformClient("http://10.1.2.3", TOKEN)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.9.9.9",
        "http://localhost:1234",
        "http://[::1]:8000",
        "https://10.1.2.3",
        "https://platform.lobaro.com",
    ],
)
def test_loopback_http_and_https_are_fine(url: str) -> None:
    PlatformClient(url, TOKEN).close()


# --- secrets


def echo(status: int, how: str) -> Handler:
    """A platform that echoes the request body in its answer, in one of several ways."""

    def handler(request: httpx.Request) -> httpx.Response:
        sent = request.content.decode()
        body = json.loads(sent)
        if how == "json error":
            return httpx.Response(status, json={"error": f"cannot parse {sent}"})
        if how == "json object":  # no message field: the whole object is shown
            return httpx.Response(status, json={"request": body})
        if how == "go escaped":
            text = json.dumps(body, ensure_ascii=False)
            text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            return raw(f'{{"request": {text}}}', status)
        if how == "text":
            return raw(f"bad body {sent} (token {TOKEN})", status)
        if how == "html":
            escaped = sent.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
            return raw(f"<html><body><p>bad: {escaped}</p></body></html>", status)
        if how == "bad id":
            return httpx.Response(status, json={"data": {"id": body["password"], "x": body}})
        raise AssertionError(how)

    return handler


def assert_no_secret(exc: BaseException) -> None:
    texts = [str(exc), repr(exc), getattr(exc, "message", ""), getattr(exc, "body", "")]
    forms = {TOKEN}
    for secret in (PASSWORD, PASSWORD_GO):
        forms |= {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    for text in texts:
        for form in forms:
            assert form.lower() not in text.lower(), (form, text)
        assert "Müller" not in text and "Geheimnis" not in text, text


@pytest.mark.parametrize(
    "how", ["json error", "json object", "go escaped", "text", "html", "bad id"]
)
@pytest.mark.parametrize("status", [200, 400, 409, 500])
def test_registered_passwords_and_the_token_never_show(how: str, status: int) -> None:
    rec = Recorder(echo(status, how))
    client = make_client(rec, retry=RetryPolicy(attempts=1))
    client.add_secrets([PASSWORD, PASSWORD_GO, "", "abc"])
    user = {"email": "a@b.de", "password": PASSWORD, "note": PASSWORD_GO}
    with pytest.raises(PlatformError) as info:
        client.create_user(user)
    assert_no_secret(info.value)
    assert "***" in str(info.value)


def test_short_secrets_are_not_masked() -> None:
    client = make_client(Recorder(httpx.Response(400, json={"error": "abc is not an email"})))
    client.add_secrets(["abc", ""])
    with pytest.raises(InvalidRequest, match="abc is not an email"):
        client.create_user({})


def test_a_secret_cut_off_at_the_end_of_an_excerpt_does_not_show() -> None:
    body = (" " * (EXCERPT_BYTES - 6) + PASSWORD + " rest").encode()
    client = make_client(Recorder(raw(body, 400)))
    client.add_secrets([PASSWORD])
    with pytest.raises(InvalidRequest) as info:
        client.create_user({})
    assert str(info.value) == "HTTP 400: POST /api/organisation/user: ..."


def test_secrets_do_not_show_in_transport_errors_or_outage_lines() -> None:
    fake = FakeTime()
    said: list[str] = []
    rec = Recorder(httpx.ConnectError(f"refused for {TOKEN} and {PASSWORD}"))
    client = make_client(rec, sleep=fake.sleep, clock=fake.clock, on_unreachable=said.append)
    client.add_secrets([PASSWORD])
    with pytest.raises(TransportError) as info:
        client.list_devices_page()
    assert_no_secret(info.value)
    assert said
    for line in said:
        assert TOKEN not in line and PASSWORD not in line
    rec = Recorder(httpx.ReadTimeout(f"timed out {PASSWORD}"))
    client = make_client(rec)
    client.add_secrets([PASSWORD])
    with pytest.raises(UnknownOutcome) as lost:
        client.create_user({"password": PASSWORD})
    assert_no_secret(lost.value)


def test_bad_answers_do_not_show_the_token() -> None:
    for body in (f"not json {TOKEN}", json.dumps({"data": [{"id": TOKEN}]})):
        with pytest.raises(BadAnswer) as info:
            make_client(Recorder(raw(body))).list_devices_page()
        assert_no_secret(info.value)


def test_filters_still_work_with_get_device_style_queries() -> None:
    rec = Recorder(ok([]))
    make_client(rec).list_devices_page([f("id", "eq", 7)], limit=1)
    assert rec.requests[0].url.params["f:id"] == "eq:7"


def test_secrets_are_masked_in_any_escape_and_with_whitespace_folded() -> None:
    secret = "two  words/Grüße"
    echoes = [
        "value: two words/Grüße",  # whitespace folded by the platform
        "value: two\n  words/Grüße",
        'value: "two  words\\/Gr\\u00FC\\u00DFe"',  # PHP-style slash, upper-case hex
        "value: two&nbsp; words/Gr&uuml;&szlig;e".replace("&nbsp;", " "),
    ]
    for text in echoes:
        client = make_client(Recorder(raw(text, 400)))
        client.add_secrets([secret])
        with pytest.raises(InvalidRequest) as info:
            client.create_user({})
        assert "words" not in str(info.value) and "Grüße" not in str(info.value), text


def test_many_secrets_stay_fast() -> None:
    passwords = [f"pw-{n:06d}-{n * 7919 % 100003:06d}" for n in range(5000)]
    body = ("noise " * 20000 + passwords[-1]).encode()
    client = make_client(Recorder(raw(passwords[1234] + " " + body.decode(), 400)))
    started = time.monotonic()
    client.add_secrets(passwords)
    with pytest.raises(InvalidRequest) as info:
        client.create_user({})
    assert time.monotonic() - started < 2.0
    assert passwords[1234] not in str(info.value)
    assert client.redact(f"a {passwords[0]} b {passwords[-1]}") == "a *** b ***"


def test_add_secrets_is_thread_safe() -> None:
    from concurrent.futures import ThreadPoolExecutor

    client = make_client(Recorder(ok([])))
    batches = [[f"secret-{b}-{n}" for n in range(50)] for b in range(16)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(client.add_secrets, batches))
    text = " ".join(s for batch in batches for s in batch)
    assert set(client.redact(text).split()) == {"***"}


def test_a_403_that_names_the_role_is_not_repeated() -> None:
    rec = Recorder(httpx.Response(403, json={"error": "this call needs the role org-admin"}))
    with pytest.raises(PlatformError) as info:
        make_client(rec).create_user({})
    assert str(info.value).count("org-admin") == 1


# --- the same against the real sandbox over loopback (real sockets, real gzip)


def sandbox_client(sb: Sandbox, role: str = "org-admin", **kw: Any) -> PlatformClient:
    kw.setdefault("retry", RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
    return PlatformClient(sb.url, sb.tokens[role], **kw)


@pytest.mark.parametrize("kind", ["bad-gzip", "deep-json", "html", "data-string", "number-list"])
def test_odd_sandbox_answers_to_a_listing_are_bad_answers(sandbox: Sandbox, kind: str) -> None:
    sandbox.faults.odd("GET", "/api/devices", kind)
    with sandbox_client(sandbox) as client, pytest.raises(BadAnswer) as info:
        client.list_devices()
    assert info.value.maybe_done is False
    assert sandbox.tokens["org-admin"] not in str(info.value)


@pytest.mark.parametrize("kind", ["id-float", "id-string", "id-null"])
def test_a_created_device_with_a_bad_id_may_be_done_and_is(sandbox: Sandbox, kind: str) -> None:
    sandbox.faults.odd("POST", "/api/devices", kind)
    with sandbox_client(sandbox) as client:
        with pytest.raises(BadAnswer) as info:
            client.create_device({"addr": "00000000000000AA", "serial": "SN1"})
        assert info.value.maybe_done is True
        sandbox.faults.clear_odd()
        [device] = client.list_devices([f("addr", "eq", "00000000000000AA")])
        assert client.get_device(device["id"]) == device


def test_an_echoed_password_does_not_show_through_the_sandbox(sandbox: Sandbox) -> None:
    sandbox.faults.odd("POST", "/api/organisation/user", "echo-400")
    with sandbox_client(sandbox) as client:
        client.add_secrets([PASSWORD])
        with pytest.raises(InvalidRequest) as info:
            client.create_user({"email": "a@b.de", "password": PASSWORD, "roles": []})
    assert_no_secret(info.value)
    assert "***" in str(info.value)


def test_a_stalled_sandbox_answer_ends_at_the_deadline(sandbox: Sandbox) -> None:
    sandbox.store.insert_devices({"addr": f"{i:016X}"} for i in range(2000))
    sandbox.faults.odd("GET", "/api/devices", "stall", seconds=0.4)
    with sandbox_client(sandbox, answer_deadline=0.1) as client:
        with pytest.raises(BadAnswer, match="not arrived in full"):
            client.list_devices_page(limit=2000)
        sandbox.faults.clear_odd()
        assert len(client.list_devices_page(limit=2000)) == 2000


def test_a_refused_port_is_a_transport_error_after_the_outage_bound() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    said: list[str] = []
    client = PlatformClient(
        f"http://127.0.0.1:{port}", TOKEN, outage_seconds=0.2, on_unreachable=said.append
    )
    started = time.monotonic()
    with client, pytest.raises(TransportError, match="could not reach"):
        client.list_devices_page()
    assert time.monotonic() - started < 1.0
    assert said and said[0].startswith("platform unreachable, retrying")
