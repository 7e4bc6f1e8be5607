"""Device data in the sandbox: parsed-data listings, POST /sandbox/uplink, simulated uplinks."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from click.testing import CliRunner

from provisioner.cli import main
from provisioner.sandbox import NotFound, Sandbox, SandboxConfig
from provisioner.sandbox.uplinks import is_silent

REPO = Path(__file__).resolve().parent.parent
ROLES = ("org-admin", "device-admin", "network-server")
PARSED_DATA_FIELDS = ["id", "deviceId", "receivedAt", "createdAt", "data"]
BASE = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)


def headers(sb: Sandbox, role: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {sb.tokens[role]}"} if role else {}


def get(sb: Sandbox, path: str, role: str | None = "org-admin") -> httpx.Response:
    return httpx.get(sb.url + path, headers=headers(sb, role))


def data(sb: Sandbox, path: str) -> list[dict[str, Any]]:
    answer = get(sb, path)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()["data"]
    return rows


def uplink(sb: Sandbox, body: Any, role: str | None = "network-server") -> httpx.Response:
    return httpx.post(sb.url + "/sandbox/uplink", json=body, headers=headers(sb, role))


def device(sb: Sandbox, addr: str) -> int:
    answer = httpx.post(
        sb.url + "/api/devices", json={"addr": addr}, headers=headers(sb, "org-admin")
    )
    assert answer.status_code == 200, answer.text
    device_id: int = answer.json()["data"]["id"]
    return device_id


def at(minutes: int, offset_hours: int = 0) -> str:
    """BASE plus ``minutes``, written at a UTC offset of ``offset_hours``."""
    stamp = BASE + timedelta(minutes=minutes)
    return stamp.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()


def utc(minutes: int) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat(timespec="microseconds")


def encoded(stamp: str) -> str:
    """A timestamp URL-encoded as clients send it (+ as %2B)."""
    return quote(stamp, safe=":")


def wait_until(predicate: Callable[[], bool], seconds: float = 30.0) -> bool:
    """Poll ``predicate`` until it holds or a generous deadline passes."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- listings --------------------------------------------------------------------------------


def test_device_data_pages_newest_first(sandbox: Sandbox) -> None:
    dev = device(sandbox, "0000000000000001")
    other = device(sandbox, "0000000000000002")
    minutes = [(i * 37) % 250 for i in range(250)]  # received out of order
    for minute in minutes:
        sandbox.store.add_parsed_data(dev, {"n": minute}, at(minute))
    sandbox.store.add_parsed_data(other, {"n": -1}, at(0))
    first = data(sandbox, f"/api/devices/{dev}/parsed-data")
    assert len(first) == 100  # the default limit
    assert [list(row) for row in first] == [PARSED_DATA_FIELDS] * 100
    pages = [
        data(sandbox, f"/api/devices/{dev}/parsed-data?limit=100&offset={offset}")
        for offset in (0, 100, 200)
    ]
    assert [len(page) for page in pages] == [100, 100, 50]
    assert pages[0] == first
    rows = [row for page in pages for row in page]
    assert [row["receivedAt"] for row in rows] == [utc(m) for m in range(249, -1, -1)]
    assert [row["data"]["n"] for row in rows] == list(range(249, -1, -1))
    assert {row["deviceId"] for row in rows} == {dev}
    assert len({row["id"] for row in rows}) == 250
    assert data(sandbox, f"/api/devices/{dev}/parsed-data?offset=250") == []
    assert data(sandbox, f"/api/devices/{dev}/parsed-data?limit=3&offset=1") == rows[1:4]


def test_equal_receipt_times_are_ordered_by_id_descending(sandbox: Sandbox) -> None:
    dev = device(sandbox, "0000000000000001")
    made = [sandbox.store.add_parsed_data(dev, {"n": n}, at(5)) for n in range(3)]
    made.append(sandbox.store.add_parsed_data(dev, {"n": 3}, at(4)))
    ids = [row["id"] for row in data(sandbox, f"/api/devices/{dev}/parsed-data")]
    assert ids == [made[2]["id"], made[1]["id"], made[0]["id"], made[3]["id"]]


def test_organisation_data_spans_all_devices(sandbox: Sandbox) -> None:
    first, second = device(sandbox, "0000000000000001"), device(sandbox, "0000000000000002")
    sandbox.store.add_parsed_data(first, {"n": 1}, at(1))
    sandbox.store.add_parsed_data(second, {"n": 2}, at(2))
    sandbox.store.add_parsed_data(first, {"n": 3}, at(3))
    rows = data(sandbox, "/api/devices/parsed-data")
    assert [(row["deviceId"], row["data"]["n"]) for row in rows] == [
        (first, 3),
        (second, 2),
        (first, 1),
    ]
    assert data(sandbox, "/api/devices/parsed-data?limit=1&offset=1") == rows[1:2]
    only_second = data(sandbox, f"/api/devices/parsed-data?f:deviceId=eq:{second}")
    assert only_second == rows[1:2]
    assert rows == sandbox.store.list_parsed_data(None, [], 100, 0)
    # The path is neither a device id nor the device list.
    assert len(data(sandbox, "/api/devices")) == 2
    with httpx.Client(base_url=sandbox.url, headers=headers(sandbox, "org-admin")) as c:
        wrong = c.put("/api/devices/parsed-data", json={"name": "x"})
        assert wrong.status_code == 405 and wrong.headers["Allow"] == "GET"
        assert c.post("/api/devices/parsed-data", json={}).status_code == 405


def test_limit_is_clamped_to_the_maximum_and_max_page_size(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sb = sandbox_factory(max_page_size=50)
    dev = device(sb, "0000000000000001")
    assert sb.store.add_parsed_data_many([(dev, {"n": n}) for n in range(10001)]) == set()
    for path in (f"/api/devices/{dev}/parsed-data", "/api/devices/parsed-data"):
        assert len(data(sb, f"{path}?limit=100")) == 50
    sb.faults.max_page_size = 10000  # switched while running
    for path in (f"/api/devices/{dev}/parsed-data", "/api/devices/parsed-data"):
        assert len(data(sb, f"{path}?limit=20000")) == 10000
        assert len(data(sb, f"{path}?limit=20000&offset=10000")) == 1


@pytest.mark.parametrize("route", ["device", "organisation"])
def test_received_at_filters_compare_instants(sandbox: Sandbox, route: str) -> None:
    dev = device(sandbox, "0000000000000001")
    for minute in range(6):
        sandbox.store.add_parsed_data(dev, {"n": minute}, at(minute, offset_hours=-5))
    path = f"/api/devices/{dev}/parsed-data" if route == "device" else "/api/devices/parsed-data"

    def minutes(query: str) -> list[int]:
        return [row["data"]["n"] for row in data(sandbox, f"{path}?{query}")]

    # At +02:00 the text sorts differently from the -05:00 and UTC stamps: instants count.
    two = encoded(at(2, offset_hours=2))
    assert two.endswith("%2B02:00")
    assert minutes(f"f:receivedAt=gt:{two}") == [5, 4, 3]
    assert minutes(f"f:receivedAt=gte:{two}") == [5, 4, 3, 2]
    assert minutes(f"f:receivedAt=lt:{two}") == [1, 0]
    assert minutes(f"f:receivedAt=lte:{two}") == [2, 1, 0]
    assert minutes(f"f:receivedAt=eq:{two}") == [2]
    assert minutes(f"f:receivedAt={two}") == [2]  # eq is the default
    four = encoded(at(4, offset_hours=2))
    assert minutes(f"f:receivedAt=gt:{two}&f:receivedAt=lt:{four}") == [3]  # a range
    assert minutes(f"f:receivedAt=gt:{encoded(at(1))}&limit=2&offset=1") == [4, 3]
    assert minutes("f:receivedAt=gt:2030-01-01T00:00:00Z") == []


def test_created_at_filters(sandbox: Sandbox) -> None:
    dev = device(sandbox, "0000000000000001")
    made = [uplink(sandbox, {"addr": "0000000000000001", "data": {"n": n}}) for n in range(4)]
    stamps = [answer.json()["data"]["createdAt"] for answer in made]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4
    assert [answer.json()["data"]["receivedAt"] for answer in made] == stamps  # default: now

    def at_plus_two(stamp: str) -> str:
        local = datetime.fromisoformat(stamp).astimezone(timezone(timedelta(hours=2)))
        return encoded(local.isoformat())

    for path in (f"/api/devices/{dev}/parsed-data", "/api/devices/parsed-data"):
        query = f"f:createdAt=gt:{at_plus_two(stamps[0])}&f:createdAt=lt:{at_plus_two(stamps[3])}"
        assert [row["data"]["n"] for row in data(sandbox, f"{path}?{query}")] == [2, 1]
        query = f"f:createdAt=gte:{at_plus_two(stamps[2])}"
        assert [row["data"]["n"] for row in data(sandbox, f"{path}?{query}")] == [3, 2]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("f:colour=eq:red", "colour"),
        ("f:addr=eq:x", "addr"),  # a device field, not one of the data's
        ("fa:tags=contains:x", "tags"),
        ("f:receivedAt=bogus:1", "bogus"),
        ("f:receivedAt=gt:yesterday", "receivedAt"),
        ("f:createdAt=gt:2024-01-01T00:00:00", "offset"),
        ("f:receivedAt=gt:2024-01-01T00:00:00+02:00", "%2B"),  # + not URL-encoded
        ("limit=-1", "limit"),
        ("offset=ten", "offset"),
        ("colour=red", "colour"),
    ],
)
@pytest.mark.parametrize("path", ["/api/devices/1/parsed-data", "/api/devices/parsed-data"])
def test_bad_queries_are_400_naming_the_problem(
    sandbox: Sandbox, path: str, query: str, named: str
) -> None:
    device(sandbox, "0000000000000001")
    answer = get(sandbox, f"{path}?{query}")
    assert answer.status_code == 400
    assert named in answer.json()["error"]


def test_device_id_filters_only_the_organisation_listing(sandbox: Sandbox) -> None:
    dev = device(sandbox, "0000000000000001")
    answer = get(sandbox, f"/api/devices/{dev}/parsed-data?f:deviceId=eq:{dev}")
    assert answer.status_code == 400 and "deviceId" in answer.json()["error"]
    assert get(sandbox, "/api/devices/parsed-data?f:deviceId=eq:x").status_code == 400


def test_unknown_device_is_404(sandbox: Sandbox) -> None:
    answer = get(sandbox, "/api/devices/999/parsed-data")
    assert answer.status_code == 404 and "999" in answer.json()["error"]
    assert get(sandbox, "/api/devices/99999999999999999999999/parsed-data").status_code == 404
    with pytest.raises(NotFound):
        sandbox.store.add_parsed_data(999, {"n": 1})
    with pytest.raises(NotFound):
        sandbox.store.list_parsed_data(999)
    assert data(sandbox, "/api/devices/parsed-data") == []  # an empty organisation


@pytest.mark.parametrize("role", [*ROLES, None])
def test_every_valid_token_may_read(sandbox: Sandbox, role: str | None) -> None:
    dev = device(sandbox, "0000000000000001")
    for path in (f"/api/devices/{dev}/parsed-data", "/api/devices/parsed-data"):
        assert get(sandbox, path, role).status_code == (200 if role else 401)


# --- storage ---------------------------------------------------------------------------------


def test_received_at_is_stored_in_utc_and_defaults_to_now(sandbox: Sandbox) -> None:
    dev = device(sandbox, "0000000000000001")
    given = sandbox.store.add_parsed_data(dev, {"volume_m3": 1.5}, "2024-06-01T10:00:00+02:00")
    assert given["receivedAt"] == "2024-06-01T08:00:00.000000+00:00"
    assert given["deviceId"] == dev and given["data"] == {"volume_m3": 1.5}
    zulu = sandbox.store.add_parsed_data(dev, {}, "2024-06-01T08:00:00.5Z")
    assert zulu["receivedAt"] == "2024-06-01T08:00:00.500000+00:00"
    before = datetime.now(UTC)
    now = sandbox.store.add_parsed_data(dev, {"nested": {"list": [1, None, "ü"]}})
    after = datetime.now(UTC)
    assert before <= datetime.fromisoformat(now["receivedAt"]) <= after
    assert now["receivedAt"] == now["createdAt"]
    assert sandbox.store.list_parsed_data(dev) == [now, zulu, given]


def test_deleting_a_device_removes_its_data(sandbox: Sandbox) -> None:
    gone, kept = device(sandbox, "0000000000000001"), device(sandbox, "0000000000000002")
    for minute in range(3):
        sandbox.store.add_parsed_data(gone, {"n": minute}, at(minute))
    kept_row = sandbox.store.add_parsed_data(kept, {"n": 9}, at(0))
    sandbox.store.delete_device(gone)
    assert data(sandbox, "/api/devices/parsed-data") == [kept_row]
    assert get(sandbox, f"/api/devices/{gone}/parsed-data").status_code == 404
    assert uplink(sandbox, {"addr": "0000000000000001", "data": {}}).status_code == 404


# --- POST /sandbox/uplink --------------------------------------------------------------------


def test_uplink_is_stored_for_the_device_with_the_addr(sandbox: Sandbox) -> None:
    dev = device(sandbox, "70B3D5E75E00ABCD")
    answer = uplink(
        sandbox,
        {"addr": "70b3d5e75e00abcd", "data": {"volume_m3": 12.3}, "receivedAt": at(0, 2)},
    )  # hex in another case
    assert answer.status_code == 201, answer.text
    row = answer.json()["data"]
    assert list(row) == PARSED_DATA_FIELDS
    assert (row["deviceId"], row["data"], row["receivedAt"]) == (dev, {"volume_m3": 12.3}, utc(0))
    assert data(sandbox, f"/api/devices/{dev}/parsed-data") == [row]
    later = uplink(sandbox, {"addr": "70B3D5E75E00ABCD", "data": {"n": 2}, "receivedAt": None})
    assert later.status_code == 201
    assert data(sandbox, f"/api/devices/{dev}/parsed-data") == [later.json()["data"], row]


def test_uplink_prefers_the_addr_written_exactly(sandbox: Sandbox) -> None:
    lower, upper = device(sandbox, "las-abc"), device(sandbox, "LAS-ABC")
    assert uplink(sandbox, {"addr": "LAS-ABC", "data": {}}).json()["data"]["deviceId"] == upper
    assert uplink(sandbox, {"addr": "las-abc", "data": {}}).json()["data"]["deviceId"] == lower
    assert uplink(sandbox, {"addr": "Las-Abc", "data": {}}).status_code == 409


@pytest.mark.parametrize(
    ("role", "status"), [("org-admin", 403), ("device-admin", 403), (None, 401)]
)
def test_uplink_needs_the_network_server_role(
    sandbox: Sandbox, role: str | None, status: int
) -> None:
    device(sandbox, "0000000000000001")
    answer = uplink(sandbox, {"addr": "0000000000000001", "data": {}}, role)
    assert answer.status_code == status
    if status == 403:
        assert "network-server" in answer.json()["error"]
    assert data(sandbox, "/api/devices/parsed-data") == []


def test_uplink_for_an_unknown_addr_is_404(sandbox: Sandbox) -> None:
    device(sandbox, "0000000000000001")
    answer = uplink(sandbox, {"addr": "0000000000000002", "data": {"n": 1}})
    assert answer.status_code == 404 and "0000000000000002" in answer.json()["error"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ([], "object"),
        ({"addr": "0000000000000001", "data": [1, 2]}, "data"),
        ({"addr": "0000000000000001", "data": "x"}, "data"),
        ({"addr": "0000000000000001", "data": None}, "data"),
        ({"addr": "0000000000000001"}, "data"),
        ({"data": {}}, "addr"),
        ({"addr": 1, "data": {}}, "addr"),
        ({"addr": "0000000000000001", "data": {}, "receivedAt": "yesterday"}, "receivedAt"),
        ({"addr": "0000000000000001", "data": {}, "receivedAt": "2024-06-01T10:00:00"}, "offset"),
        ({"addr": "0000000000000001", "data": {}, "receivedAt": 1717228800}, "receivedAt"),
        ({"addr": "0000000000000001", "data": {}, "port": 2}, "port"),
    ],
)
def test_bad_uplink_body_is_400(sandbox: Sandbox, body: Any, named: str) -> None:
    device(sandbox, "0000000000000001")
    answer = uplink(sandbox, body)
    assert answer.status_code == 400
    assert named in answer.json()["error"]


def test_malformed_uplink_json_is_400(sandbox: Sandbox) -> None:
    answer = httpx.post(
        sandbox.url + "/sandbox/uplink", content=b"{", headers=headers(sandbox, "network-server")
    )
    assert answer.status_code == 400 and "JSON" in answer.json()["error"]


# --- simulated uplinks -----------------------------------------------------------------------

ADDRS = [f"{0x70B3D5E75E000000 + i:016X}" for i in range(20)]


def simulated(sb: Sandbox) -> dict[str, list[dict[str, Any]]]:
    """Each device's parsed data by addr."""
    ids = {d["id"]: d["addr"] for d in sb.store.list_devices(limit=1000)}
    found: dict[str, list[dict[str, Any]]] = {addr: [] for addr in ids.values()}
    for row in sb.store.list_parsed_data(None, limit=10000):
        found[ids[row["deviceId"]]].append(row)
    return found


def test_simulated_uplinks_come_from_the_devices_that_are_not_silent(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sb = sandbox_factory(simulate_uplinks=0.2, silent_share=0.5)
    sb.store.insert_devices([{"addr": addr} for addr in ADDRS])
    silent = {addr for addr in ADDRS if is_silent(addr, 0.5)}
    assert 0 < len(silent) < len(ADDRS)  # the addrs are chosen so that both groups exist

    def every_sender_sent_twice() -> bool:
        return all(len(rows) >= 2 for addr, rows in simulated(sb).items() if addr not in silent)

    assert wait_until(every_sender_sent_twice)
    found = simulated(sb)
    assert {addr for addr, rows in found.items() if not rows} == silent
    created = {d["addr"]: d["createdAt"] for d in sb.store.list_devices(limit=1000)}
    for addr, rows in found.items():
        for row in rows:
            assert set(row["data"]) == {"volume_m3", "battery_V"}
            assert all(isinstance(v, float) for v in row["data"].values())
            # The first uplink comes one interval after the device was created, not before.
            first = datetime.fromisoformat(created[addr]) + timedelta(seconds=0.2)
            assert datetime.fromisoformat(row["receivedAt"]) >= first
    # Readable over HTTP like any data.
    assert len(data(sb, "/api/devices/parsed-data?limit=10000")) == sum(map(len, found.values()))


def spoken(sb: Sandbox) -> set[str]:
    """The addrs of the devices that have sent data."""
    return {addr for addr, rows in simulated(sb).items() if rows}


def test_silent_devices_are_the_same_in_every_run(sandbox_factory: Callable[..., Sandbox]) -> None:
    senders = {addr for addr in ADDRS if not is_silent(addr, 0.5)}
    runs = []
    for order in (ADDRS, list(reversed(ADDRS))):  # created in another order: other ids
        sb = sandbox_factory(simulate_uplinks=0.1, silent_share=0.5)
        sb.store.insert_devices([{"addr": addr} for addr in order])
        assert wait_until(lambda sb=sb: spoken(sb) == senders)
        runs.append(set(ADDRS) - spoken(sb))
        sb.stop()
    assert runs[0] == runs[1] == {addr for addr in ADDRS if is_silent(addr, 0.5)}
    assert all(is_silent(a.lower(), 0.5) == is_silent(a, 0.5) for a in ADDRS)  # any case
    assert not any(is_silent(a, 0.0) for a in ADDRS) and all(is_silent(a, 1.0) for a in ADDRS)


def test_simulation_follows_new_and_deleted_devices_and_stops_with_the_sandbox(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sb = sandbox_factory(simulate_uplinks=0.1, silent_share=0.0)
    first = device(sb, "0000000000000001")
    assert wait_until(lambda: len(sb.store.list_parsed_data(first)) >= 1)
    sb.store.delete_device(first)
    later = device(sb, "0000000000000002")  # created over HTTP while the simulation runs
    assert wait_until(lambda: len(sb.store.list_parsed_data(later)) >= 2)
    assert {row["deviceId"] for row in sb.store.list_parsed_data(None, limit=1000)} == {later}
    sb.stop()
    assert not [t for t in threading.enumerate() if t.name == "sandbox-uplinks" and t.is_alive()]


def test_no_simulation_without_the_option(sandbox: Sandbox) -> None:
    device(sandbox, "0000000000000001")
    time.sleep(0.3)
    assert sandbox.store.list_parsed_data(None) == []


@pytest.mark.parametrize(
    ("overrides", "named"),
    [({"simulate_uplinks": 0}, "simulate_uplinks"), ({"silent_share": 1.5}, "silent_share")],
)
def test_bad_simulation_settings(overrides: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        SandboxConfig(**overrides).check()


# --- command line and OpenAPI ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--simulate-uplinks", "0"], "--simulate-uplinks"),
        (["--silent-share", "1.5"], "--silent-share"),
    ],
)
def test_cli_rejects_bad_simulation_options(options: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["sandbox", *options])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


@pytest.fixture
def cli_process() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_simulates_uplinks(tmp_path: Path, cli_process: list[subprocess.Popen[str]]) -> None:
    ready = tmp_path / "ready.json"
    command = [sys.executable, "-m", "provisioner", "sandbox", "--port", "0", "--ready-file",
               str(ready), "--simulate-uplinks", "0.1", "--silent-share", "0"]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    cli_process.append(process)
    assert wait_until(lambda: ready.exists() or process.poll() is not None, seconds=60)
    assert process.poll() is None, "the sandbox exited early"
    info = json.loads(ready.read_text())
    auth = {"Authorization": f"Bearer {info['tokens']['org-admin']}"}
    made = httpx.post(f"{info['url']}/api/devices", json={"addr": "0000000000000001"}, headers=auth)
    dev = made.json()["data"]["id"]

    def has_data() -> bool:
        answer = httpx.get(f"{info['url']}/api/devices/{dev}/parsed-data", headers=auth)
        return answer.status_code == 200 and len(answer.json()["data"]) > 0

    assert wait_until(has_data)
    process.terminate()
    process.communicate(timeout=30)


def test_openapi_describes_the_data_paths(sandbox: Sandbox) -> None:
    document = httpx.get(sandbox.url + "/api/openapi.json").json()
    paths = document["paths"]
    device_names = {
        p["name"] for p in paths["/api/devices/{devId}/parsed-data"]["get"]["parameters"]
    }
    assert device_names == {"devId", "limit", "offset", "f:receivedAt", "f:createdAt"}
    organisation = {p["name"] for p in paths["/api/devices/parsed-data"]["get"]["parameters"]}
    assert organisation == {"limit", "offset", "f:receivedAt", "f:createdAt", "f:deviceId"}
    assert "201" in paths["/sandbox/uplink"]["post"]["responses"]
    schemas = document["components"]["schemas"]
    assert list(schemas["ParsedData"]["properties"]) == PARSED_DATA_FIELDS
    assert set(schemas["Uplink"]["properties"]) == {"addr", "data", "receivedAt"}
