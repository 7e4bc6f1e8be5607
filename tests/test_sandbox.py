"""Conformance of the sandbox to platform-api.md, over real loopback HTTP with plain httpx."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from click.testing import CliRunner

from provisioner.cli import main
from provisioner.sandbox import DEVICE_TYPES, Sandbox, SandboxConfig, SandboxStore
from provisioner.sandbox.filters import Filter

REPO = Path(__file__).resolve().parent.parent
ROLES = ("org-admin", "device-admin", "network-server")


def client(sb: Sandbox, role: str | None = "org-admin", **kw: Any) -> httpx.Client:
    headers = {"Authorization": f"Bearer {sb.tokens[role]}"} if role else {}
    return httpx.Client(base_url=sb.url, headers=headers, **kw)


def get(sb: Sandbox, path: str, role: str | None = "org-admin") -> httpx.Response:
    with client(sb, role) as c:
        return c.get(path)


def post(sb: Sandbox, path: str, body: Any, role: str | None = "org-admin") -> httpx.Response:
    with client(sb, role) as c:
        return c.post(path, json=body)


def addrs(sb: Sandbox, query: str) -> list[str]:
    answer = get(sb, f"/api/devices?{query}")
    assert answer.status_code == 200, answer.text
    return [d["addr"] for d in answer.json()["data"]]


# --- filters ---------------------------------------------------------------------------------

A1, A2, A3, A4, A5 = (
    "0000000000000001",
    "0000000000000002",
    "352656100677000",
    "352656100677001",
    "las-5",
)
FILTER_DEVICES = [
    {"addr": A1, "name": "100% Müller", "serial": "S_1", "description": "3.OG Wohnung Müller",
     "tags": ["Site-HH-04", "MbusGw"], "deviceTypeId": 2},
    {"addr": A2, "name": "100x Mueller", "serial": "S-1", "description": "KELLER ÄUSSERE Wand",
     "tags": ["Site-HH-04"], "deviceTypeId": 4},
    {"addr": A3, "name": "plain", "serial": None, "description": None, "tags": [], "deviceTypeId": 4},
    {"addr": A4, "name": "Plain", "serial": "S%1", "description": "a\\b", "tags": None,
     "deviceTypeId": 1},
    {"addr": A5, "name": "Gateway_5", "serial": "1337", "description": "Müller",
     "tags": ["MbusGw", "Other"], "deviceTypeId": 2},
]  # fmt: skip


@pytest.fixture
def filled(sandbox: Sandbox) -> Sandbox:
    sandbox.store.insert_devices(FILTER_DEVICES)
    return sandbox


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("f:addr=eq:352656100677000", [A3]),
        ("f:addr=352656100677000", [A3]),  # eq is the default
        ("f:name=like:100%25", [A1, A2]),  # % is a wildcard
        ("f:name=like:100%5C%25%25", [A1]),  # \% is a literal %
        ("f:serial=like:S_1", [A1, A2, A4]),  # _ matches one character
        ("f:serial=like:S%5C_1", [A1]),  # \_ is a literal _
        ("f:name=like:plain", [A3]),  # LIKE is case-sensitive
        ("f:description=like:%25m%C3%BCller%25", []),
        ("f:addr=like:las-%25", [A5]),
        ("f:description=like:a%5C%5Cb", [A4]),  # \\ is a literal backslash
        ("f:name=ilike:plain", [A3, A4]),
        ("f:description=ilike:%25M%C3%9CLLER%25", [A1, A5]),  # MÜLLER
        ("f:description=ilike:%25%C3%A4u%C3%9Fere%25", [A2]),  # äußere matches ÄUSSERE
        ("f:name=eq:Gateway_5", [A5]),
        ("f:description=3.OG+Wohnung+M%C3%BCller", [A1]),  # + is a space
        ("f:serial=isnull:true", [A3]),
        ("f:serial=isnull:t", [A3]),
        ("f:serial=isnull:1", [A3]),
        ("f:serial=isnull:false", [A1, A2, A4, A5]),
        ("f:serial=isnull:f", [A1, A2, A4, A5]),
        ("f:serial=isnull:0", [A1, A2, A4, A5]),
        ("fa:tags=isnull:true", [A4]),
        ("fa:tags=isnull:0", [A1, A2, A3, A5]),
        ("fa:tags=contains:Site-HH-04,MbusGw", [A1]),
        ("fa:tags=contains:MbusGw", [A1, A5]),
        ("fa:tags=Site-HH-04", [A1, A2]),  # contains is the default
        ("fa:tags=containedby:Site-HH-04", [A2, A3]),  # [] is contained, NULL is not
        ("fa:tags=containedby:Site-HH-04,MbusGw,Other", [A1, A2, A3, A5]),
        ("fa:tags=containedby:", [A3]),  # the empty set
        ("fa:tags=overlap:Other,Site-HH-04", [A1, A2, A5]),
        ("fa:tags=overlap:Nothing", []),
        ("f:id=gte:2&f:id=lt:5", [A2, A3, A4]),  # a range: the same field twice
        ("f:id=lt:10", [A1, A2, A3, A4, A5]),  # compared as integers, not text
        ("f:deviceTypeId=2", [A1, A5]),
        ("f:deviceTypeId=gt:2", [A2, A3]),
        ("f:deviceTypeId=lte:1", [A4]),
        ("f:organisationId=eq:1", [A1, A2, A3, A4, A5]),
        ("fa:tags=contains:MbusGw&f:deviceTypeId=eq:2&f:description=ilike:m%C3%BCller", [A5]),
    ],
)
def test_filter_operators(filled: Sandbox, query: str, expected: list[str]) -> None:
    assert addrs(filled, query) == expected


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("f:colour=eq:red", "colour"),
        ("f:tags=eq:x", "tags"),
        ("fa:addr=contains:x", "addr"),
        ("f:addr=contains:x", "contains"),
        ("fa:tags=eq:x", "eq"),
        ("f:addr=bogus:1", "bogus"),
        ("f:id=eq:abc", "id"),
        ("f:id=gt:1.5", "id"),
        ("f:createdAt=gt:yesterday", "createdAt"),
        ("f:createdAt=gt:2024-01-01T00:00:00", "offset"),
        ("f:createdAt=gt:2024-01-01T00:00:00+01:00", "%2B"),  # + not URL-encoded
        ("f:serial=isnull:maybe", "isnull"),
        ("limit=-1", "limit"),
        ("offset=ten", "offset"),
        ("colour=red", "colour"),
    ],
)
def test_bad_filters_are_400_naming_the_problem(sandbox: Sandbox, query: str, named: str) -> None:
    answer = get(sandbox, f"/api/devices?{query}")
    assert answer.status_code == 400
    assert named in answer.json()["error"]


def test_timestamps_compare_as_instants_with_offsets(sandbox: Sandbox) -> None:
    with client(sandbox) as c:
        created = [c.post("/api/devices", json={"addr": f"T{i}"}).json()["data"] for i in range(3)]
    for device in created:
        stamp = datetime.fromisoformat(device["createdAt"])
        assert stamp.tzinfo is not None
        assert device["updatedAt"] == device["createdAt"]

    def plus_one_hour(device: dict[str, Any]) -> str:
        """The device's createdAt written at +01:00 and URL-encoded, as clients send it."""
        stamp = datetime.fromisoformat(device["createdAt"])
        local = stamp.astimezone(timezone(timedelta(hours=1))).isoformat()
        assert local.endswith("+01:00")
        return quote(local, safe=":")

    second = plus_one_hour(created[1])
    assert addrs(sandbox, f"f:createdAt=gte:{second}") == ["T1", "T2"]
    assert addrs(sandbox, f"f:createdAt=gt:{second}") == ["T2"]
    assert addrs(sandbox, f"f:createdAt=lt:{second}") == ["T0"]
    assert addrs(sandbox, f"f:createdAt={second}") == ["T1"]  # no operator: eq on the whole value
    query = f"f:updatedAt=gt:{plus_one_hour(created[0])}&f:updatedAt=lt:{plus_one_hour(created[2])}"
    assert addrs(sandbox, query) == ["T1"]
    assert addrs(sandbox, "f:createdAt=2000-01-01T02:37:00%2B01:00") == []


# --- paging ----------------------------------------------------------------------------------


def numbered(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"addr": f"{i:016X}", "serial": f"SN{i}"} for i in range(start, start + count)]


def test_paging_limit_offset_and_order(sandbox: Sandbox) -> None:
    sandbox.store.insert_devices(list(reversed(numbered(200))))  # addr order is not id order
    first = get(sandbox, "/api/devices").json()["data"]
    assert len(first) == 100  # the default limit
    second = get(sandbox, "/api/devices?limit=100&offset=100").json()["data"]
    assert len(second) == 100  # exactly `limit` rows on the last full page
    ids = [d["id"] for d in first + second]
    assert ids == sorted(ids) and len(set(ids)) == 200
    assert get(sandbox, "/api/devices?limit=100&offset=200").json()["data"] == []
    assert get(sandbox, "/api/devices?offset=5000").json()["data"] == []
    assert [d["id"] for d in get(sandbox, "/api/devices?limit=3&offset=1").json()["data"]] == ids[
        1:4
    ]


def test_limit_is_clamped_to_the_maximum(sandbox: Sandbox) -> None:
    sandbox.store.insert_devices(numbered(10001))
    assert len(get(sandbox, "/api/devices?limit=20000").json()["data"]) == 10000
    assert len(get(sandbox, "/api/devices?limit=20000&offset=10000").json()["data"]) == 1


def test_limit_is_clamped_to_max_page_size(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(max_page_size=50)
    sb.store.insert_devices(numbered(120))
    assert len(get(sb, "/api/devices?limit=100").json()["data"]) == 50
    sb.faults.max_page_size = 10000  # switched while running
    assert len(get(sb, "/api/devices?limit=100").json()["data"]) == 100


DEVICE_FIELDS = (
    "id", "organisationId", "name", "addr", "serial", "description", "deviceTypeId", "tags",
    "initialConfig", "location", "certEnforcesDtls", "createdAt", "updatedAt",
)  # fmt: skip
# Devices whose JSON is easy to get subtly wrong: listing pages are written by SQLite.
AWKWARD_DEVICES: list[dict[str, Any]] = [
    {"addr": "AW-1", "name": "Zähler Straße 5 – 3.OG 😀", "serial": "ÄÖÜ-ß",
     "description": 'quote " backslash \\ tab\t newline\n nul\x00 ctrl\x01 \u2028 \x7f',
     "tags": ["Büro", "", "a,b"], "deviceTypeId": 3, "certEnforcesDtls": True,
     "initialConfig": {"nested": {"list": [1, 2.5, -3e-7, None, True, False, "x"], "empty": {}},
                       "big": 2**70, "ü": "ß"},
     "location": {"lat": 51.512551, "lon": -7}},
    {"addr": "AW-2", "serial": None, "description": None, "tags": None, "initialConfig": None,
     "location": None},
    {"addr": "AW-3", "name": "", "tags": [], "initialConfig": {}, "certEnforcesDtls": False},
    {"addr": "AW-4", "name": "007", "serial": "123", "description": "null",
     "initialConfig": {"nan": float("nan"), "inf": float("inf")}},  # JSON the stdlib writes
]  # fmt: skip


def same_json(a: Any, b: Any) -> bool:
    """Equal fields in equal order with equal types (True is not 1, 1.0 is not 1)."""
    return json.dumps(a) == json.dumps(b)


def test_device_pages_read_exactly_like_the_devices(sandbox: Sandbox) -> None:
    store = sandbox.store
    store.insert_devices(numbered(3) + AWKWARD_DEVICES)
    awkward = store.devices_by("addr", "AW-1")[0]
    assert awkward["description"] == AWKWARD_DEVICES[0]["description"]
    assert awkward["initialConfig"]["big"] == 2**70 and awkward["certEnforcesDtls"] is True
    pages: list[tuple[list[Filter], int, int]] = [
        ([], 100, 0),
        ([], 2, 3),
        ([], 100, 1000),
        ([Filter("f", "serial", "eq", ("ÄÖÜ-ß",))], 100, 0),
        ([Filter("fa", "tags", "isnull", ("true",))], 100, 0),
    ]
    for filters, limit, offset in pages:
        page = json.loads(store.list_devices_json(filters, limit, offset))
        assert same_json(page, {"data": store.list_devices(filters, limit, offset)})
    expected = {"data": store.list_devices([], 10000)}
    assert len(expected["data"]) == 7
    assert [list(d) for d in expected["data"]] == [list(DEVICE_FIELDS)] * 7
    with client(sandbox) as c:
        for encoding in ("gzip", "identity"):
            answer = c.get("/api/devices?limit=10000", headers={"Accept-Encoding": encoding})
            assert answer.status_code == 200
            assert answer.headers.get("Content-Encoding", "identity") == encoding
            assert same_json(answer.json(), expected)


def test_large_pages_match_the_devices(sandbox: Sandbox) -> None:
    sandbox.store.seed_devices(10500)
    with client(sandbox) as c:
        for offset in (0, 10000):
            answer = c.get(f"/api/devices?limit=10000&offset={offset}")
            expected = {"data": sandbox.store.list_devices([], 10000, offset)}
            assert same_json(answer.json(), expected)


def test_key_lookups_use_an_index(sandbox: Sandbox) -> None:
    for field, index in (("serial", "devices_serial"), ("addr", "autoindex"), ("id", "PRIMARY")):
        plan = " ".join(sandbox.store.device_query_plan([Filter("f", field, "eq", ("1",))]))
        assert "SEARCH devices USING" in plan and index in plan, plan
        assert "TEMP B-TREE" not in plan, plan


def test_an_addr_asked_for_without_case_uses_an_index_and_finds_every_case(
    sandbox: Sandbox,
) -> None:
    """The client asks for a hex addr with ilike (a DevEUI is one device in any case):
    without a wildcard that is an exact match without case, served by an index."""
    exact = [Filter("f", "addr", "ilike", ("70B3D5E75E005000",))]
    plan = " ".join(sandbox.store.device_query_plan(exact))
    assert "devices_addr_nocase" in plan, plan
    for addr in ("70b3d5e75e005000", "70b3D5E75e005001", "70B3D5E75E00500A"):
        sandbox.store.create_device({"addr": addr, "deviceTypeId": 1})
    assert [d["addr"] for d in sandbox.store.list_devices(exact)] == ["70b3d5e75e005000"]
    # The same answer over HTTP, and a wildcard still works as LIKE without case.
    with client(sandbox) as c:
        found = c.get("/api/devices?f:addr=ilike:70B3D5E75E005000").json()["data"]
        assert [d["addr"] for d in found] == ["70b3d5e75e005000"]
        found = c.get("/api/devices?f:addr=ilike:70b3d5e75e00500%25").json()["data"]
        assert len(found) == 3


# --- roles -----------------------------------------------------------------------------------

ENDPOINTS: list[tuple[str, str, set[str]]] = [
    ("GET", "/api/devices", set(ROLES)),
    ("POST", "/api/devices", {"org-admin", "device-admin"}),
    ("GET", "/api/devices/1/downlink", set(ROLES)),
    ("POST", "/api/devices/1/downlink?type=config", {"org-admin", "device-admin"}),
    ("GET", "/api/organisation/user", {"org-admin"}),
    ("POST", "/api/organisation/user", {"org-admin"}),
]


def body_for(path: str, who: str) -> Any:
    if path == "/api/devices":
        return {"addr": f"addr-{who}"}
    if path == "/api/organisation/user":
        return {
            "name": who,
            "email": f"{who}@example.com",
            "password": "pw",
            "roles": ["device-admin"],
        }
    return {"q": "config"}


@pytest.mark.parametrize(("method", "path", "allowed"), ENDPOINTS)
@pytest.mark.parametrize("who", [*ROLES, "no-token", "bad-token", "basic-auth"])
def test_role_matrix(sandbox: Sandbox, method: str, path: str, allowed: set[str], who: str) -> None:
    sandbox.store.insert_devices([{"addr": "D1"}])
    headers = {
        "no-token": {},
        "bad-token": {"Authorization": "Bearer not-a-token"},
        "basic-auth": {"Authorization": f"Basic {sandbox.tokens['org-admin']}"},
    }.get(who, {"Authorization": f"Bearer {sandbox.tokens.get(who)}"})
    body = json.dumps(body_for(path.split("?")[0], who)) if method == "POST" else None
    answer = httpx.request(method, sandbox.url + path, headers=headers, content=body)
    if who not in ROLES:
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert "not-a-token" not in answer.text
    elif who in allowed:
        assert answer.status_code == 200, answer.text
    else:
        assert answer.status_code == 403
        assert " or ".join(r for r in ROLES if r in allowed) in answer.json()["error"]


def test_revoked_token_is_refused_from_the_next_request(sandbox: Sandbox) -> None:
    with client(sandbox, "device-admin") as c:
        assert c.get("/api/devices").status_code == 200
        assert sandbox.store.revoke_token(sandbox.tokens["device-admin"])
        assert c.get("/api/devices").status_code == 401
    assert not sandbox.store.revoke_token("never-issued")
    assert get(sandbox, "/api/devices", "org-admin").status_code == 200


def test_unknown_paths_404_and_wrong_methods_405(sandbox: Sandbox) -> None:
    with client(sandbox) as c:
        assert c.get("/api/nothing").status_code == 404
        assert c.get("/api/devices/abc/downlink").status_code == 404
        wrong = c.delete("/api/devices")
        assert wrong.status_code == 405
        assert wrong.headers["Allow"] == "GET, POST"
        assert "error" in wrong.json()


# --- devices ---------------------------------------------------------------------------------


def test_create_device_with_defaults(sandbox: Sandbox) -> None:
    answer = post(sandbox, "/api/devices", {"addr": "352656100677000"}, "device-admin")
    assert answer.status_code == 200
    device = answer.json()["data"]
    assert set(device) == {
        "id", "organisationId", "name", "addr", "serial", "description", "deviceTypeId", "tags",
        "initialConfig", "location", "certEnforcesDtls", "createdAt", "updatedAt",
    }  # fmt: skip
    assert device["name"] == device["addr"] == "352656100677000"
    assert device["deviceTypeId"] == 1 and DEVICE_TYPES[1] == "Generic Device"
    assert device["organisationId"] == 1
    assert device["tags"] is None and device["certEnforcesDtls"] is False


def test_create_device_keeps_every_documented_field(sandbox: Sandbox) -> None:
    given = {
        "name": "Gateway_1", "addr": "FFFFFFFFFFFFFFFF", "description": "3.OG Wohnung Müller",
        "deviceTypeId": 2, "initialConfig": {"listenCron": "0 0/20 * * * *"},
        "location": {"lat": 53.55, "lon": 9.99}, "serial": "1337",
        "tags": ["Müller", "MbusGw", "3.OG"], "certEnforcesDtls": True,
    }  # fmt: skip
    device = post(sandbox, "/api/devices", given).json()["data"]
    assert {k: device[k] for k in given} == given
    assert sandbox.store.devices_by("addr", "FFFFFFFFFFFFFFFF") == [device]


def test_addr_is_unique(sandbox: Sandbox) -> None:
    assert post(sandbox, "/api/devices", {"addr": "70B3D5E75E000001"}).status_code == 200
    again = post(sandbox, "/api/devices", {"addr": "70B3D5E75E000001", "serial": "other"})
    assert again.status_code == 409
    assert "70B3D5E75E000001" in again.json()["error"]
    assert sandbox.store.count_devices() == 1


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"addr": "A", "colour": "red"}, "colour"),
        ({"addr": "A", "deviceTypeId": 99999}, "deviceTypeId"),
        ({"addr": "A", "deviceTypeId": "2"}, "deviceTypeId"),
        ({"addr": "A", "deviceTypeId": True}, "deviceTypeId"),
        ({"serial": "1"}, "addr"),
        ({"addr": ""}, "addr"),
        ({"addr": "35265 6100677000"}, "addr"),
        ({"addr": 352656100677000}, "addr"),
        ({"addr": "A", "name": 5}, "name"),
        ({"addr": "A", "tags": "Site-HH-04"}, "tags"),
        ({"addr": "A", "tags": [1]}, "tags"),
        ({"addr": "A", "initialConfig": ["x"]}, "initialConfig"),
        ({"addr": "A", "location": {"lat": 1}}, "location"),
        ({"addr": "A", "location": {"lat": "1", "lon": 2}}, "location"),
        ({"addr": "A", "certEnforcesDtls": "no"}, "certEnforcesDtls"),
        (["A"], "object"),
    ],
)
def test_bad_device_input_is_400(sandbox: Sandbox, body: Any, named: str) -> None:
    answer = post(sandbox, "/api/devices", body)
    assert answer.status_code == 400
    assert named in answer.json()["error"]
    assert sandbox.store.count_devices() == 0


def test_malformed_json_is_400(sandbox: Sandbox) -> None:
    with client(sandbox) as c:
        answer = c.post("/api/devices", content=b'{"addr": ')
        assert answer.status_code == 400
        assert "JSON" in answer.json()["error"]
        assert c.get("/api/devices").status_code == 200  # the connection still works


def test_parallel_creates_lose_and_duplicate_nothing(sandbox: Sandbox) -> None:
    local = threading.local()
    clients: list[httpx.Client] = []

    def create(i: int) -> dict[str, Any]:
        if not hasattr(local, "client"):
            local.client = client(sandbox, "device-admin")
            clients.append(local.client)
        answer = local.client.post("/api/devices", json={"addr": f"P{i:04d}", "serial": f"S{i}"})
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()["data"]
        return data

    with ThreadPoolExecutor(32) as pool:
        created = list(pool.map(create, range(100)))
    for c in clients:
        c.close()
    assert len({d["id"] for d in created}) == 100
    assert sandbox.store.count_devices() == 100
    for i in range(100):
        [row] = sandbox.store.devices_by("addr", f"P{i:04d}")
        assert row["serial"] == f"S{i}"


# --- downlinks -------------------------------------------------------------------------------


def test_downlinks_replace_per_type(sandbox: Sandbox) -> None:
    device = post(sandbox, "/api/devices", {"addr": "D1"}).json()["data"]
    path = f"/api/devices/{device['id']}/downlink"
    with client(sandbox, "device-admin") as c:
        first = c.post(
            f"{path}?type=config", json={"d": {"listenCron": "0 0/20 * * * *"}, "q": "config"}
        )
        assert first.status_code == 200 and first.content == b""
        c.post(f"{path}?type=config", json={"d": {"cmodeDurSec": "600"}, "q": "config"})
        c.post(f"{path}?type=fw", json={"q": "reboot"})
        c.post(f"{path}?type=raw", json=[1, "two"])  # any JSON value
        queued = c.get(path).json()["data"]
        by_type = {d["type"]: d["content"] for d in queued}
        assert by_type == {
            "config": {"d": {"cmodeDurSec": "600"}, "q": "config"},
            "fw": {"q": "reboot"},
            "raw": [1, "two"],
        }
        assert all(datetime.fromisoformat(d["queuedAt"]).tzinfo for d in queued)
        assert [d["type"] for d in c.get(f"{path}?type=fw").json()["data"]] == ["fw"]


def test_downlink_errors(sandbox: Sandbox) -> None:
    post(sandbox, "/api/devices", {"addr": "D1"})
    with client(sandbox) as c:
        assert c.post("/api/devices/999/downlink?type=config", json={}).status_code == 404
        assert c.get("/api/devices/999/downlink").status_code == 404
        for query in ("type=sms", ""):
            answer = c.post(f"/api/devices/1/downlink?{query}", json={})
            assert answer.status_code == 400
            assert "type" in answer.json()["error"]
        assert c.get("/api/devices/1/downlink?type=sms").status_code == 400
        assert c.post("/api/devices/1/downlink?type=fw", content=b"not json").status_code == 400


# --- users -----------------------------------------------------------------------------------

USER = {"name": "Eva Test", "email": "e.test@example.com", "password": "s0meSecur3Pw",
        "roles": ["org-admin", "device-admin"]}  # fmt: skip


def test_create_and_list_users_without_passwords(sandbox: Sandbox) -> None:
    created = post(sandbox, "/api/organisation/user", USER)
    assert created.status_code == 200
    user = created.json()["data"]
    assert set(user) == {
        "id", "createdAt", "updatedAt", "login", "name", "email", "organisationId", "roles",
    }  # fmt: skip
    assert user["login"] == user["email"] == "e.test@example.com"
    assert user["roles"] == ["org-admin", "device-admin"] and user["organisationId"] == 1
    listed = get(sandbox, "/api/organisation/user")
    assert listed.json()["data"] == [user]
    for text in (created.text, listed.text):
        assert "password" not in text and USER["password"] not in text
    assert sandbox.store.password_matches("e.test@example.com", USER["password"])
    assert not sandbox.store.password_matches("e.test@example.com", "wrong")


def test_user_email_is_unique(sandbox: Sandbox) -> None:
    assert post(sandbox, "/api/organisation/user", USER).status_code == 200
    again = post(sandbox, "/api/organisation/user", {**USER, "email": "E.Test@example.com"})
    assert again.status_code == 409
    assert "E.Test@example.com" in again.json()["error"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"roles": []}, "roles"),
        ({"roles": ["root"]}, "roles"),
        ({"roles": "org-admin"}, "roles"),
        ({"email": "no-at-sign"}, "email"),
        ({"password": 5}, "password"),
        ({"name": ""}, "name"),
        ({"nickname": "Evi"}, "nickname"),
    ],
)
def test_bad_user_input_is_400(sandbox: Sandbox, change: dict[str, Any], named: str) -> None:
    answer = post(sandbox, "/api/organisation/user", {**USER, **change})
    assert answer.status_code == 400
    assert named in answer.json()["error"]
    missing = {k: v for k, v in USER.items() if k != "roles"}
    assert "roles" in post(sandbox, "/api/organisation/user", missing).json()["error"]


# --- transport and faults --------------------------------------------------------------------


def test_gzip_when_asked_and_worth_it(sandbox: Sandbox) -> None:
    sandbox.store.insert_devices(numbered(30))
    with client(sandbox) as c:
        big = c.get("/api/devices", headers={"Accept-Encoding": "gzip"})
        assert big.headers["Content-Encoding"] == "gzip"
        assert len(big.json()["data"]) == 30  # httpx decompressed it
        plain = c.get("/api/devices", headers={"Accept-Encoding": "identity"})
        assert "Content-Encoding" not in plain.headers
        assert plain.json() == big.json()
        small = c.get("/api/devices?limit=1", headers={"Accept-Encoding": "gzip"})
        assert "Content-Encoding" not in small.headers


def test_rate_limit_answers_429_with_retry_after(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(rate_limit=2)
    with client(sb) as c:
        statuses = [c.get("/api/devices") for _ in range(6)]
    limited = [a for a in statuses if a.status_code == 429]
    assert limited and statuses[0].status_code == 200
    assert all(int(a.headers["Retry-After"]) >= 1 for a in limited)
    assert "error" in limited[0].json()


def test_fail_rate_answers_500_before_doing_anything(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sb = sandbox_factory(fail_rate=1.0)
    assert post(sb, "/api/devices", {"addr": "F1"}).status_code == 500
    assert get(sb, "/api/devices").status_code == 500
    sb.faults.fail_rate = 0.0
    assert get(sb, "/api/devices").json()["data"] == []


def test_faults_are_reproducible_with_a_seed(sandbox_factory: Callable[..., Sandbox]) -> None:
    def statuses(sb: Sandbox) -> list[int]:
        with client(sb) as c:
            return [c.get("/api/devices").status_code for _ in range(30)]

    first = statuses(sandbox_factory(fail_rate=0.5, fault_seed=7))
    assert first == statuses(sandbox_factory(fail_rate=0.5, fault_seed=7))
    assert {200, 500} == set(first)


def test_drop_after_commit_sends_nothing_but_commits(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sb = sandbox_factory(drop_after_commit_rate=1.0)
    with client(sb) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.post("/api/devices", json={"addr": "DROP1"})
        assert sb.store.count_devices() == 1
        [device] = c.get("/api/devices").json()["data"]  # reads are never dropped
        with pytest.raises(httpx.RemoteProtocolError):
            c.post(f"/api/devices/{device['id']}/downlink?type=fw", json={"q": "reboot"})
        with pytest.raises(httpx.RemoteProtocolError):
            c.post("/api/organisation/user", json=USER)
        assert len(c.get(f"/api/devices/{device['id']}/downlink").json()["data"]) == 1
        assert len(c.get("/api/organisation/user").json()["data"]) == 1


def test_latency_delays_every_request(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(latency_ms=150)
    with client(sb) as c:
        started = time.perf_counter()
        assert c.get("/api/devices").status_code == 200
        assert time.perf_counter() - started >= 0.15


def test_openapi_lists_the_paths(sandbox: Sandbox) -> None:
    answer = httpx.get(sandbox.url + "/api/openapi.json")  # public: no token
    assert answer.status_code == 200
    document = answer.json()
    assert document["openapi"].startswith("3.1")
    assert {
        "/api/devices",
        "/api/devices/{devId}",
        "/api/devices/{devId}/downlink",
        "/api/devices/{devId}/parsed-data",
        "/api/devices/parsed-data",
        "/api/organisation/user",
        "/sandbox/uplink",
    } <= set(document["paths"])
    assert "put" in document["paths"]["/api/devices/{devId}"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    names = {p["name"] for p in document["paths"]["/api/devices"]["get"]["parameters"]}
    assert {"limit", "offset", "f:addr", "fa:tags"} <= names


def put(sb: Sandbox, path: str, body: Any, role: str | None = "org-admin") -> httpx.Response:
    with client(sb, role) as c:
        return c.put(path, json=body)


def test_put_replaces_the_fields_given_and_keeps_the_others(sandbox: Sandbox) -> None:
    made = post(
        sandbox,
        "/api/devices",
        {"addr": A1, "serial": "S1", "description": "Dach", "tags": ["a"], "deviceTypeId": 2},
    ).json()["data"]
    answer = put(sandbox, f"/api/devices/{made['id']}", {"description": "Keller", "tags": []})
    assert answer.status_code == 200, answer.text
    updated = answer.json()["data"]
    assert (updated["description"], updated["tags"]) == ("Keller", [])
    assert (updated["serial"], updated["deviceTypeId"], updated["addr"]) == ("S1", 2, A1)
    assert updated["createdAt"] == made["createdAt"]
    assert updated["updatedAt"] > made["updatedAt"]
    # Even an update that changes nothing moves updatedAt on.
    same = put(sandbox, f"/api/devices/{made['id']}", {"addr": A1}, role="device-admin")
    assert same.status_code == 200 and same.json()["data"]["updatedAt"] > updated["updatedAt"]
    assert get(sandbox, f"/api/devices?f:id=eq:{made['id']}").json()["data"] == [
        same.json()["data"]
    ]


def test_put_refuses_an_addr_change_an_unknown_id_and_bad_fields(sandbox: Sandbox) -> None:
    made = post(sandbox, "/api/devices", {"addr": A1}).json()["data"]
    path = f"/api/devices/{made['id']}"
    changed_addr = put(sandbox, path, {"addr": A2})
    assert changed_addr.status_code == 403
    assert "platform admins" in changed_addr.json()["error"]
    assert put(sandbox, "/api/devices/999", {"name": "x"}).status_code == 404
    assert put(sandbox, path, {"color": "red"}).status_code == 400
    assert put(sandbox, path, {"deviceTypeId": "zwei"}).status_code == 400
    assert put(sandbox, path, {"name": "x"}, role="network-server").status_code == 403
    assert get(sandbox, f"/api/devices?f:id=eq:{made['id']}").json()["data"] == [made]


def test_delete_removes_the_device_its_downlinks_and_its_data(sandbox: Sandbox) -> None:
    made = post(sandbox, "/api/devices", {"addr": A1}).json()["data"]
    sandbox.store.queue_downlink(made["id"], "config", {"d": {}, "q": "config"})
    sandbox.store.add_parsed_data(made["id"], {"v": 1})
    with client(sandbox, "network-server") as c:
        assert c.delete(f"/api/devices/{made['id']}").status_code == 403
    with client(sandbox, "device-admin") as c:
        answer = c.delete(f"/api/devices/{made['id']}")
        assert answer.status_code == 204 and answer.content == b""
        assert c.delete(f"/api/devices/{made['id']}").status_code == 404
    assert sandbox.store.count_devices() == 0
    assert sandbox.store.list_parsed_data(None) == []
    document = httpx.get(sandbox.url + "/api/openapi.json").json()
    assert "delete" in document["paths"]["/api/devices/{devId}"]


# --- storage ---------------------------------------------------------------------------------


def test_seeded_devices_are_realistic_and_deterministic(tmp_path: Path) -> None:
    first, second = SandboxStore(), SandboxStore()
    try:
        assert first.seed_devices(2000, seed=1) == 2000
        second.seed_devices(2000, seed=1)
        devices = first.list_devices(limit=2000)
        assert devices == second.list_devices(limit=2000)
        found = {d["addr"] for d in devices}
        assert len(found) == 2000
        assert any(len(a) == 16 and int(a, 16) >= 0 for a in found)
        assert any(len(a) == 15 and a.isdigit() for a in found)
        assert {d["deviceTypeId"] for d in devices} == set(DEVICE_TYPES)
        assert any(set("äöüß") & set(d["description"]) for d in devices)
        assert all(d["tags"][0].startswith("Site-") for d in devices)
        assert first.seed_devices(10, seed=1) == 10  # seeding again adds new addrs
    finally:
        first.close()
        second.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_db_file_keeps_data_and_tokens_and_reads_do_not_write(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.db"
    with Sandbox(SandboxConfig(db=db, seed_devices=20)) as sb:
        tokens = sb.tokens
        post(sb, "/api/devices", {"addr": "KEEP1"})
        post(sb, "/api/organisation/user", USER)
    before = digest(db)
    with Sandbox(SandboxConfig(db=db)) as sb:
        assert sb.tokens == tokens
        assert addrs(sb, "f:addr=eq:KEEP1") == ["KEEP1"]
        for path in (
            "/api/devices?limit=5&fa:tags=overlap:MbusGw&f:description=ilike:%25m%C3%BCller%25",
            "/api/devices/21/downlink",
            "/api/organisation/user",
            "/api/openapi.json",
            "/api/nothing",
        ):
            assert get(sb, path, "org-admin").status_code in (200, 404)
        assert get(sb, "/api/devices", None).status_code == 401
    assert digest(db) == before


# --- command line ----------------------------------------------------------------------------


@pytest.fixture
def cli_sandbox(
    tmp_path: Path,
) -> Iterator[Callable[..., tuple[subprocess.Popen[str], dict[str, Any]]]]:
    """Start `python -m provisioner sandbox --port 0 --ready-file ...`; yields (process, ready info)."""
    processes: list[subprocess.Popen[str]] = []

    def start(*options: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
        ready = tmp_path / f"ready-{len(processes)}.json"
        command = [sys.executable, "-m", "provisioner", "sandbox", "--port", "0", "--ready-file",
                   str(ready), *options]  # fmt: skip
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
        processes.append(process)
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert process.poll() is None, "the sandbox exited early"
            assert time.monotonic() < deadline, "the sandbox did not write its ready file"
            time.sleep(0.02)
        return process, json.loads(ready.read_text())

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def stop_with_ctrl_c(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    return output


def test_cli_serves_until_ctrl_c_and_keeps_its_db(
    cli_sandbox: Callable[..., tuple[subprocess.Popen[str], dict[str, Any]]], tmp_path: Path
) -> None:
    db = tmp_path / "cli.db"
    process, info = cli_sandbox("--db", str(db), "--token", "org-admin=cli-secret")
    assert info["tokens"]["org-admin"] == "cli-secret"
    assert set(info["tokens"]) == set(ROLES)
    headers = {"Authorization": "Bearer cli-secret"}
    created = httpx.post(f"{info['url']}/api/devices", json={"addr": "CLI1"}, headers=headers)
    assert created.status_code == 200
    output = stop_with_ctrl_c(process)
    assert info["url"] in output and "Ctrl-C to stop" in output
    assert all(token in output for token in info["tokens"].values())
    assert all(name in output for name in DEVICE_TYPES.values())

    process, again = cli_sandbox("--db", str(db))
    assert again["tokens"] == info["tokens"]
    found = httpx.get(f"{again['url']}/api/devices?f:addr=CLI1", headers=headers)
    assert [d["addr"] for d in found.json()["data"]] == ["CLI1"]
    stop_with_ctrl_c(process)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--token", "root=x"], "unknown role 'root'"),
        (["--token", "org-admin"], "ROLE=VALUE"),
        (["--fail-rate", "1.5"], "--fail-rate"),
        (["--drop-after-commit-rate", "-0.1"], "--drop-after-commit-rate"),
        (["--rate-limit", "0"], "--rate-limit"),
        (["--max-page-size", "20000"], "--max-page-size"),
    ],
)
def test_cli_rejects_bad_options(options: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["sandbox", *options])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_every_cli_option_has_help() -> None:
    command = main.commands["sandbox"]
    for param in command.params:
        assert getattr(param, "help", None), param.name
