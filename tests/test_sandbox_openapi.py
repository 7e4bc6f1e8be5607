"""The sandbox and its OpenAPI document agree (issue 21).

The document is checked with openapi-spec-validator, then schemathesis sends what the
document allows (and, in its coverage phase, methods and values it does not) to a running
sandbox on loopback: no server error, every status and body as documented, every
request the document allows accepted, every method the document does not name a 405
with Allow. Examples are few and derandomized, so a run is quick and the same every time.
The targeted tests below pin each case found by a schemathesis run.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from provisioner.sandbox import Sandbox, SandboxConfig
from provisioner.sandbox.openapi import openapi_document
from tests.conftest import TEST_TOKENS

DOCUMENT = openapi_document()
API = schemathesis.openapi.from_dict(DOCUMENT)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
    unsupported_method,
]
# Per operation; 11 operations, each also with its coverage phase's cases.
EXAMPLES_PER_OPERATION = 10
MAX_OFFSET = 2**63 - 1


@pytest.fixture(scope="module")
def api_sandbox() -> Iterator[Sandbox]:
    """One sandbox for the whole run: a few devices, so that some ids and addrs exist."""
    with Sandbox(SandboxConfig(tokens=dict(TEST_TOKENS), seed_devices=3)) as sb:
        yield sb


def auth(path: str) -> dict[str, str]:
    # Uplinks are the network server's; every other call is allowed to the org admin.
    role = "network-server" if path == "/sandbox/uplink" else "org-admin"
    return {"Authorization": f"Bearer {TEST_TOKENS[role]}"}


def test_the_document_is_valid_openapi() -> None:
    validate(DOCUMENT)  # raises, naming the first problem, where it is not


@API.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,  # a fixed seed: the same requests every run
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_sandbox_answers_as_its_document_says(case: Any, api_sandbox: Sandbox) -> None:
    case.call_and_validate(
        base_url=api_sandbox.url, headers=auth(case.operation.path), checks=CHECKS
    )


# --- the cases a schemathesis run found, one by one ---------------------------------------


def get(sb: Sandbox, path: str) -> httpx.Response:
    return httpx.get(sb.url + path, headers=auth(path))


def parameter_schema(path: str, name: str) -> dict[str, Any]:
    parameters = DOCUMENT["paths"][path]["get"]["parameters"]
    schema: dict[str, Any] = next(p["schema"] for p in parameters if p["name"] == name)
    return schema


def allowed(schema: dict[str, Any], value: object) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(value)


@pytest.mark.parametrize("path", ["/api/devices", "/api/devices/1/parsed-data"])
def test_an_offset_beyond_the_largest_integer_is_a_400_with_words(
    sandbox_factory: Callable[..., Sandbox], path: str
) -> None:
    sandbox = sandbox_factory(seed_devices=1)
    assert get(sandbox, f"{path}?offset={MAX_OFFSET}").json() == {"data": []}
    for too_far in (str(MAX_OFFSET + 1), "9" * 5000):
        answer = get(sandbox, f"{path}?offset={too_far}")
        assert answer.status_code == 400
        assert f"offset must be a whole number from 0 to {MAX_OFFSET}" in answer.json()["error"]
    schema = parameter_schema("/api/devices", "offset")
    assert allowed(schema, MAX_OFFSET) and not allowed(schema, MAX_OFFSET + 1)


def test_whole_numbers_beyond_the_largest_integer_filter_as_numbers(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sandbox = sandbox_factory(seed_devices=3)

    def ids(query: str) -> list[int]:
        answer = get(sandbox, f"/api/devices?{query}")
        assert answer.status_code == 200, answer.text
        return [device["id"] for device in answer.json()["data"]]

    huge = str(MAX_OFFSET + 1)
    assert ids(f"f:id=lt:{huge}") == [1, 2, 3]
    assert ids(f"f:id=eq:{huge}") == ids(f"f:id=gt:{huge}") == []
    assert ids(f"f:id=gt:-{huge}") == [1, 2, 3]
    assert get(sandbox, "/api/devices/" + "9" * 5000 + "/parsed-data").status_code == 404


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "OPTIONS", "PATCH", "HEAD"])
def test_a_method_the_path_does_not_offer_is_a_json_405_with_allow(
    sandbox: Sandbox, method: str
) -> None:
    answer = httpx.request(method, sandbox.url + "/api/devices", headers=auth(""))
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "GET, POST"
    if method == "HEAD":  # headers only, as HTTP wants
        assert answer.content == b""
    else:
        assert answer.json() == {"error": f"{method} is not allowed here"}
    # The connection is still good for the next request.
    assert get(sandbox, "/api/devices?limit=1").status_code == 200


def test_a_request_line_the_server_cannot_read_gets_a_json_answer(sandbox: Sandbox) -> None:
    host, port = sandbox.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        too_many_headers = b"X-Filler: 1\r\n" * 101  # the standard library reads 100
        connection.sendall(b"GET /api/devices HTTP/1.1\r\n" + too_many_headers + b"\r\n")
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431")
    assert b"Content-Type: application/json" in head
    assert b"error" in body and b"<html" not in body.lower()


# (parameter, value, accepted by the sandbox); the document must say the same.
FILTER_VALUES = [
    ("f:addr", "", True),  # eq with the empty text
    ("f:addr", "ilike:%Ab%", True),
    ("f:addr", "las:1234", False),  # looks like an unknown operator
    ("f:id", "", False),
    ("f:id", "eq:12", True),
    ("f:id", "12x", False),
    ("f:id", "\u0663", False),  # an Arabic-Indic three: Python's int() would read it
    ("f:id", "like:1%", True),
    ("f:id", "isnull:TRUE", True),
    ("f:id", "isnull:maybe", False),
    ("f:createdAt", "", False),
    ("f:createdAt", "gt:2024-06-01T00:00:00+02:00", True),
    ("f:createdAt", "gt:2024-06-01t00:00:00.5z", True),
    ("f:createdAt", "2024-02-29T00:00:00Z", True),
    ("f:createdAt", "2023-02-29T00:00:00Z", False),
    ("f:createdAt", "0001-01-01T00:00:00+01:00", False),  # before UTC's first year
    ("f:createdAt", "gt:2024-06-01T00:00:00", False),  # no offset
    ("fa:tags", "", True),
    ("fa:tags", "overlap:a,b", True),
    ("fa:tags", "within:a", False),
]


@pytest.mark.parametrize(("name", "value", "accepted"), FILTER_VALUES)
def test_the_document_allows_exactly_the_filter_values_the_sandbox_takes(
    sandbox: Sandbox, name: str, value: str, accepted: bool
) -> None:
    # Encoded as a client following the document sends it (the operator's colon as %3A).
    answer = httpx.get(sandbox.url + "/api/devices", params={name: value}, headers=auth(""))
    assert answer.status_code == (200 if accepted else 400), answer.text
    if not accepted:
        assert name.partition(":")[2] in answer.json()["error"] or "operator" in answer.text
    assert allowed(parameter_schema("/api/devices", name), value) is accepted


@pytest.mark.parametrize(
    ("addr", "accepted"),
    [
        ("70B3D5E75E0099AA", True),
        ("las-\u00e4\u00f6\u00fc", True),
        ("", False),
        ("A\x1bB", False),  # a control character
        ("A\x1dB", False),  # whitespace to Python's \s, not to ECMA's
        ("A\u00a0B", False),  # a no-break space
        ("A B", False),
    ],
)
def test_the_document_allows_exactly_the_addrs_a_create_takes(
    sandbox: Sandbox, addr: str, accepted: bool
) -> None:
    schema = DOCUMENT["components"]["schemas"]["DeviceInput"]
    answer = httpx.post(sandbox.url + "/api/devices", json={"addr": addr}, headers=auth(""))
    assert answer.status_code in ((200, 409) if accepted else (400,)), answer.text
    assert allowed(schema, {"addr": addr}) is accepted


def test_an_uplink_with_an_empty_addr_is_refused_as_the_document_says(
    sandbox: Sandbox,
) -> None:
    answer = httpx.post(
        sandbox.url + "/sandbox/uplink",
        json={"addr": "", "data": {}},
        headers=auth("/sandbox/uplink"),
    )
    assert answer.status_code == 400
    assert "addr is required" in answer.json()["error"]
    assert not allowed(DOCUMENT["components"]["schemas"]["Uplink"], {"addr": "", "data": {}})


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"addr": "A1", "location": {"lat": NaN, "lon": 0}}', "NaN is not a JSON number"),
        (b'{"addr": "A1", "location": {"lat": 1e400, "lon": 0}}', "too large"),
        (b'{"addr": "\\ud800"}', "not valid JSON"),
    ],
)
def test_a_body_json_cannot_carry_is_a_400(sandbox: Sandbox, body: bytes, words: str) -> None:
    answer = httpx.post(
        sandbox.url + "/api/devices",
        content=body,
        headers={**auth(""), "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert words in answer.json()["error"]


def test_roles_that_are_not_text_are_a_400(sandbox: Sandbox) -> None:
    user = {"name": "N", "email": "n@example.com", "password": "pw1", "roles": [{}]}
    answer = httpx.post(sandbox.url + "/api/organisation/user", json=user, headers=auth(""))
    assert answer.status_code == 400
    assert re.search(r"roles must be a non-empty list", answer.json()["error"])
