"""The sandbox's odd answers (``sb.faults.odd``) and outages (``sb.outage``), on the wire."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from provisioner.sandbox import Sandbox
from provisioner.sandbox.faults import (
    DEEP_JSON_LEVELS,
    ODD_BAD_GZIP,
    ODD_DATA_STRING,
    ODD_DEEP_JSON,
    ODD_ECHO_400,
    ODD_ERROR_400,
    ODD_ERROR_404,
    ODD_ERROR_500,
    ODD_HTML,
    ODD_ID_FLOAT,
    ODD_ID_NULL,
    ODD_ID_STRING,
    ODD_NUMBER_LIST,
    ODD_RESET,
    ODD_STALL,
)

DEVICES = "/api/devices"


def client(sb: Sandbox, **kw: Any) -> httpx.Client:
    headers = {"Authorization": f"Bearer {sb.tokens['org-admin']}", **kw.pop("headers", {})}
    return httpx.Client(base_url=sb.url, headers=headers, **kw)


def device(i: int) -> dict[str, Any]:
    return {"addr": f"{i:016X}", "serial": f"SN{i}"}


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- odd answers -----------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "status"), [(ODD_ERROR_400, 400), (ODD_ERROR_404, 404),
                                              (ODD_ERROR_500, 500), ("error-503", 503)])  # fmt: skip
def test_error_kinds_answer_before_doing_anything(sandbox: Sandbox, kind: str, status: int) -> None:
    sandbox.faults.odd("POST", DEVICES, kind)
    with client(sandbox) as c:
        answer = c.post(DEVICES, json=device(1))
        assert answer.status_code == status
        assert kind in answer.json()["error"]
        assert c.get(DEVICES).json()["data"] == []  # other routes answer as usual
    assert sandbox.store.count_devices() == 0


def test_error_after_commit(sandbox: Sandbox) -> None:
    sandbox.faults.odd("POST", DEVICES, ODD_ERROR_500, commit=True)
    with client(sandbox) as c:
        assert c.post(DEVICES, json=device(1)).status_code == 500
        assert c.post(DEVICES, json=device(1)).status_code == 409  # a failure is not replaced
    assert sandbox.store.count_devices() == 1


def test_echo_400_echoes_the_request_body(sandbox: Sandbox) -> None:
    sandbox.faults.odd("POST", "/api/organisation/user", ODD_ECHO_400)
    body = {"name": "Eve", "email": "e@example.com", "password": "s0meSecur3Pw", "roles": []}
    text = json.dumps(body, ensure_ascii=False)
    with client(sandbox) as c:
        answer = c.post("/api/organisation/user", content=text.encode())
    assert answer.status_code == 400
    assert answer.json() == {"error": "bad request: " + text}
    assert "s0meSecur3Pw" in answer.text
    assert sandbox.store.list_users() == []


def test_html_page(sandbox: Sandbox) -> None:
    sandbox.faults.odd("GET", DEVICES, ODD_HTML)
    with client(sandbox) as c:
        answer = c.get(DEVICES)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert answer.text.startswith("<!DOCTYPE html>") and "</html>" in answer.text


@pytest.mark.parametrize(("kind", "expected"), [(ODD_DATA_STRING, {"data": "x"}),
                                                (ODD_NUMBER_LIST, [1, 2, 3])])  # fmt: skip
def test_wrong_json_shapes(sandbox: Sandbox, kind: str, expected: Any) -> None:
    sandbox.faults.odd("GET", DEVICES, kind)
    with client(sandbox) as c:
        answer = c.get(DEVICES)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json() == expected


def test_bad_gzip(sandbox: Sandbox) -> None:
    sandbox.faults.odd("GET", DEVICES, ODD_BAD_GZIP)
    with client(sandbox, headers={"Accept-Encoding": "gzip"}) as c:
        with c.stream("GET", DEVICES) as answer:
            assert answer.status_code == 200
            assert answer.headers["Content-Encoding"] == "gzip"
            raw = b"".join(answer.iter_raw())
        assert raw.startswith(b"\x1f\x8b")  # looks like gzip, is not
        with pytest.raises(zlib.error):
            zlib.decompress(raw, wbits=31)
        with pytest.raises((OSError, EOFError, zlib.error)):
            gzip.decompress(raw)
        with pytest.raises(httpx.DecodingError):
            c.get(DEVICES)


def test_reset_sends_nothing_and_does_nothing(sandbox: Sandbox) -> None:
    sandbox.faults.odd("POST", DEVICES, ODD_RESET)
    with client(sandbox) as c:
        with pytest.raises(httpx.TransportError):
            c.post(DEVICES, json=device(1))
        assert c.get(DEVICES).json()["data"] == []  # the client reconnects
    assert sandbox.store.count_devices() == 0


def test_reset_is_a_tcp_reset(sandbox: Sandbox) -> None:
    sandbox.faults.odd("GET", DEVICES, ODD_RESET)
    with socket.create_connection(("127.0.0.1", int(sandbox.url.rsplit(":", 1)[1]))) as s:
        s.sendall(b"GET /api/devices HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            while s.recv(1024):
                pass


def test_hang_up_closes_every_connection_unanswered_until_it_ends(sandbox: Sandbox) -> None:
    sandbox.faults.hang_up(600)
    with client(sandbox) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.post(DEVICES, json=device(1))
        with pytest.raises(httpx.RemoteProtocolError):
            c.get(DEVICES)
        with pytest.raises(httpx.RemoteProtocolError):
            c.get("/api/no-such-route")  # before routing and auth
        port = int(sandbox.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /api/devices HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(1024) == b""  # a FIN, not a reset, and not one byte of answer
        sandbox.faults.hang_up(0)
        assert c.get(DEVICES).json()["data"] == []
    assert sandbox.store.count_devices() == 0  # the POST was read, not carried out
    with pytest.raises(ValueError):
        sandbox.faults.hang_up(-1)


def test_deep_json(sandbox: Sandbox) -> None:
    sandbox.faults.odd("GET", DEVICES, ODD_DEEP_JSON)
    with client(sandbox, headers={"Accept-Encoding": "identity"}) as c:
        answer = c.get(DEVICES)
    assert answer.status_code == 200
    assert DEEP_JSON_LEVELS == 100_000
    assert answer.content == b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(RecursionError):
        json.loads(answer.content)


def test_stall_sends_part_then_the_rest_later(sandbox: Sandbox) -> None:
    sandbox.store.insert_devices([device(i) for i in range(20)])
    with client(sandbox, headers={"Accept-Encoding": "identity"}) as c:
        expected = c.get(DEVICES).content
    sandbox.faults.odd("GET", DEVICES, ODD_STALL, seconds=0.6)
    port = int(sandbox.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as s:
        request = f"GET /api/devices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sandbox.tokens['org-admin']}\r\n\r\n"
        started = time.monotonic()
        s.sendall(request.encode())
        s.settimeout(0.3)
        first = b""
        with pytest.raises(TimeoutError):
            while chunk := s.recv(65536):
                first += chunk
        head, _, body = first.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert f"Content-Length: {len(expected)}".encode() in head
        assert 0 < len(body) < len(expected)
        s.settimeout(5)
        while len(body) < len(expected):
            body += s.recv(65536)
        assert time.monotonic() - started >= 0.6
        assert body == expected
    with client(sandbox, timeout=httpx.Timeout(5, read=0.2)) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.get(DEVICES)


@pytest.mark.parametrize(("kind", "odd_id"), [(ODD_ID_STRING, "abc"), (ODD_ID_FLOAT, 1.5),
                                              (ODD_ID_NULL, None)])  # fmt: skip
def test_odd_ids_after_the_create_committed(sandbox: Sandbox, kind: str, odd_id: Any) -> None:
    sandbox.faults.odd("POST", DEVICES, kind)
    with client(sandbox) as c:
        answer = c.post(DEVICES, json=device(1))
        assert answer.status_code == 200
        created = answer.json()["data"]
        assert created["id"] == odd_id and created["addr"] == device(1)["addr"]
        [stored] = sandbox.store.devices_by("addr", device(1)["addr"])
        assert isinstance(stored["id"], int)
        assert c.get(DEVICES).json()["data"][0]["id"] == stored["id"]  # lookups are untouched
        sandbox.faults.clear_odd()
        sandbox.faults.odd("GET", DEVICES, kind)
        assert [d["id"] for d in c.get(DEVICES).json()["data"]] == [odd_id]  # each list item


def test_times_counts_exactly(sandbox: Sandbox) -> None:
    rule = sandbox.faults.odd("GET", DEVICES, ODD_ERROR_500, times=2)
    with client(sandbox) as c:
        assert [c.get(DEVICES).status_code for _ in range(4)] == [500, 500, 200, 200]
    assert rule.hits == 2 and rule.remaining == 0


def test_times_with_commit_counts_only_successes(sandbox: Sandbox) -> None:
    sandbox.store.insert_devices([device(1)])
    rule = sandbox.faults.odd("POST", DEVICES, ODD_ID_FLOAT, times=2)
    with client(sandbox) as c:
        assert c.post(DEVICES, json=device(1)).status_code == 409  # not counted
        ids = [c.post(DEVICES, json=device(i)).json()["data"]["id"] for i in (2, 3, 4)]
    assert ids == [1.5, 1.5, sandbox.store.devices_by("addr", device(4)["addr"])[0]["id"]]
    assert rule.hits == 2


def test_rules_match_method_and_path_and_clear(sandbox: Sandbox) -> None:
    sandbox.store.insert_devices([device(1)])
    sandbox.faults.odd("post", "/api/devices/{devId}/downlink", ODD_ERROR_404, times=1)
    sandbox.faults.odd("GET", "/api/device-types", ODD_HTML)  # not a sandbox route
    with client(sandbox) as c:
        assert c.get(DEVICES).status_code == 200
        assert c.get("/api/devices/1/downlink").status_code == 200
        assert c.post("/api/devices/1/downlink?type=fw", json={"q": "reboot"}).status_code == 404
        assert c.post("/api/devices/1/downlink?type=fw", json={"q": "reboot"}).status_code == 200
        assert c.get("/api/device-types?limit=1").headers["Content-Type"].startswith("text/html")
        sandbox.faults.odd("GET", DEVICES, ODD_ERROR_400)
        sandbox.faults.odd("GET", DEVICES, ODD_ERROR_500)  # the first added rule wins
        assert c.get(DEVICES).status_code == 400
        sandbox.faults.clear_odd()
        assert c.get(DEVICES).status_code == 200
        assert c.get("/api/device-types").status_code == 404


@pytest.mark.parametrize(
    ("args", "kw"),
    [
        (("GET", DEVICES, "teapot"), {}),
        (("GET", DEVICES, "error-200"), {}),
        (("GET", "api/devices", ODD_HTML), {}),
        (("GET", DEVICES + "?limit=1", ODD_HTML), {}),
        (("GET", DEVICES, ODD_HTML), {"times": 0}),
        (("GET", DEVICES, ODD_STALL), {}),
        (("GET", DEVICES, ODD_STALL), {"seconds": 0}),
        (("GET", DEVICES, ODD_HTML), {"seconds": 1}),
        (("POST", DEVICES, ODD_ID_NULL), {"commit": False}),
    ],
)
def test_bad_odd_settings_are_refused(sandbox: Sandbox, args: tuple[str, ...], kw: Any) -> None:
    with pytest.raises(ValueError):
        sandbox.faults.odd(*args, **kw)


def test_stop_does_not_wait_for_a_stalled_answer(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory()
    rule = sb.faults.odd("GET", DEVICES, ODD_STALL, seconds=30)
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            with client(sb) as c:
                c.get(DEVICES)
        except httpx.TransportError as exc:
            errors.append(exc)

    thread = threading.Thread(target=fetch)
    thread.start()
    wait_for(lambda: rule.hits == 1)
    time.sleep(0.1)
    started = time.monotonic()
    sb.stop()
    thread.join(5)
    assert time.monotonic() - started < 2 and not thread.is_alive() and errors


# --- outages ---------------------------------------------------------------------------------


def test_outage_refuses_then_serves_the_same_data(sandbox: Sandbox) -> None:
    sandbox.store.insert_devices([device(i) for i in range(5)])
    url = sandbox.url
    with client(sandbox) as pooled, client(sandbox) as fresh:
        before = pooled.get(DEVICES).json()["data"]  # a keep-alive connection stays open
        started = time.monotonic()
        sandbox.outage(1.0)
        assert sandbox.in_outage and sandbox.url == url
        with pytest.raises(httpx.ConnectError):
            pooled.get(DEVICES)  # its connection was closed; a new one is refused
        while time.monotonic() < started + 0.7:  # a margin for a busy machine
            with pytest.raises(httpx.ConnectError):
                fresh.get(DEVICES)
            time.sleep(0.05)
        wait_for(lambda: not sandbox.in_outage)
        assert time.monotonic() - started >= 1.0
        assert pooled.get(DEVICES).json()["data"] == before
        assert pooled.post(DEVICES, json=device(99)).status_code == 200
    assert sandbox.store.count_devices() == 6


def test_outage_can_be_ended_or_extended(sandbox: Sandbox) -> None:
    sandbox.outage(30)
    sandbox.outage(0.2)  # a new end
    wait_for(lambda: not sandbox.in_outage, timeout=2)
    sandbox.outage(30)
    started = time.monotonic()
    sandbox.end_outage()
    assert time.monotonic() - started < 1 and not sandbox.in_outage
    with client(sandbox) as c:
        assert c.get(DEVICES).status_code == 200
    sandbox.end_outage()  # not in one: nothing happens


def test_outage_while_hammered(sandbox: Sandbox) -> None:
    done = threading.Event()
    results: list[tuple[float, float, str]] = []  # (sent, answered, "ok" or the exception)
    lock = threading.Lock()

    def hammer(worker: int) -> None:
        with client(sandbox, timeout=5) as c:
            n = 0
            while not done.is_set():
                n += 1
                sent = time.monotonic()
                try:
                    if n % 3:
                        c.get(DEVICES + "?limit=5").raise_for_status()
                    else:
                        c.post(DEVICES, json=device(worker * 100_000 + n)).raise_for_status()
                    outcome = "ok"
                except httpx.TransportError as exc:
                    outcome = type(exc).__name__
                    time.sleep(0.005)
                with lock:
                    results.append((sent, time.monotonic(), outcome))

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    wait_for(lambda: sum(outcome == "ok" for *_, outcome in results[:]) >= 3 * len(threads))
    started = time.monotonic()
    sandbox.outage(1.0)
    refusing = time.monotonic()
    wait_for(lambda: not sandbox.in_outage)
    ended = time.monotonic()
    time.sleep(0.5)
    done.set()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    # Sent after outage() returned and answered before it could end: refused.
    during = [
        outcome for sent, answered, outcome in results if refusing < sent and answered < started + 1
    ]
    after = [outcome for sent, _, outcome in results if sent > ended]
    assert during and set(during) == {"ConnectError"}
    assert after and set(after) == {"ok"}


def test_stop_during_an_outage_returns_promptly(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory()
    sb.outage(30)
    started = time.monotonic()
    sb.stop()
    assert time.monotonic() - started < 1
    sb.stop()  # again: nothing happens
    with pytest.raises(RuntimeError):
        sb.outage(1)


def test_stop_after_an_outage(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory()
    sb.outage(0.1)
    wait_for(lambda: not sb.in_outage)
    started = time.monotonic()
    sb.stop()
    assert time.monotonic() - started < 1
    with pytest.raises(httpx.ConnectError):
        httpx.get(sb.url + DEVICES)


def test_outage_needs_a_started_sandbox() -> None:
    sb = Sandbox()
    try:
        with pytest.raises(RuntimeError):
            sb.outage(1)
    finally:
        sb.stop()
