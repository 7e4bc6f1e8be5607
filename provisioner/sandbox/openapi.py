"""The OpenAPI 3.1 description the sandbox serves at ``GET /api/openapi.json``."""

from __future__ import annotations

from typing import Any

from provisioner.sandbox.filters import (
    ARRAY_OPERATORS,
    DATA_FILTERS,
    DEVICE_FILTERS,
    MAX_INTEGER,
    ORGANISATION_DATA_FILTERS,
    SCALAR_OPERATORS,
    TIMESTAMP,
    FilterFields,
    value_pattern,
)
from provisioner.sandbox.store import (
    ADDR_PATTERN,
    DEFAULT_PAGE_SIZE,
    DEVICE_TYPES,
    DOWNLINK_TYPES,
    EMAIL_PATTERN,
    MAX_PAGE_SIZE,
    ROLES,
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _data(schema: dict[str, Any], description: str) -> dict[str, Any]:
    wrapper = {"type": "object", "required": ["data"], "properties": {"data": schema}}
    return _json(wrapper, description)


def _errors(*statuses: int) -> dict[str, Any]:
    meaning = {
        400: "Malformed query or body; the message names the problem",
        401: "Missing, unknown or revoked token",
        403: "The token lacks the role this call needs",
        404: "Unknown device",
        409: "A unique value is already taken (an uplink: several devices have the addr)",
        429: "Over the rate limit; see the Retry-After header",
        500: "Injected failure",
    }
    return {str(s): _json(_ref("Error"), meaning[s]) for s in (*statuses, 401, 429, 500)}


_NULLABLE_TEXT = {"type": ["string", "null"]}
_TIMESTAMP = {"type": "string", "format": "date-time"}


def _whole(pattern: str) -> str:
    """A pattern the whole value must match (JSON Schema patterns match anywhere)."""
    return f"^(?:{pattern})$"


_DEVICE_INPUT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["addr"],
    "properties": {
        "addr": {
            "type": "string",
            "pattern": _whole(ADDR_PATTERN),
            "description": "Unique address: no spaces, no control characters",
        },
        "name": {**_NULLABLE_TEXT, "description": "Defaults to addr"},
        "serial": _NULLABLE_TEXT,
        "description": _NULLABLE_TEXT,
        "deviceTypeId": {
            "type": "integer",
            "enum": list(DEVICE_TYPES),
            "description": "; ".join(f"{i}: {name}" for i, name in DEVICE_TYPES.items()),
        },
        "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        "initialConfig": {"type": ["object", "null"]},
        "location": {
            "type": ["object", "null"],
            "required": ["lat", "lon"],
            "additionalProperties": False,
            "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
        },
        "certEnforcesDtls": {"type": "boolean"},
    },
}

_DEVICE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "organisationId": {"type": "integer"},
        **_DEVICE_INPUT["properties"],
        "createdAt": _TIMESTAMP,
        "updatedAt": _TIMESTAMP,
    },
}

_USER_INPUT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "email", "password", "roles"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "email": {"type": "string", "pattern": _whole(EMAIL_PATTERN)},
        "password": {"type": "string", "minLength": 1, "writeOnly": True},
        "roles": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"enum": list(ROLES)},
        },
    },
}

_USER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "createdAt": _TIMESTAMP,
        "updatedAt": _TIMESTAMP,
        "login": {"type": "string"},
        "name": {"type": "string"},
        "email": {"type": "string"},
        "organisationId": {"type": "integer"},
        "roles": _USER_INPUT["properties"]["roles"],
    },
}

_DOWNLINK: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"enum": list(DOWNLINK_TYPES)},
        "content": {"description": "The queued body, any JSON value"},
        "queuedAt": _TIMESTAMP,
    },
}


_PARSED_DATA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "deviceId": {"type": "integer"},
        "receivedAt": _TIMESTAMP,
        "createdAt": _TIMESTAMP,
        "data": {"type": "object", "description": "What the parser made of the uplink"},
    },
}

_UPLINK: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["addr", "data"],
    "properties": {
        "addr": {
            "type": "string",
            "minLength": 1,
            "description": "A device's addr; hex digits in any case",
        },
        "data": {"type": "object", "description": "The parsed data to store"},
        "receivedAt": {
            "type": ["string", "null"],
            "pattern": _whole(TIMESTAMP),
            "description": (
                "RFC 3339 with an offset, a year from 1000 to 9998; stored in UTC (default: now)"
            ),
        },
    },
}


def _filter_parameters(fields: FilterFields) -> list[dict[str, Any]]:
    scalar = ", ".join(SCALAR_OPERATORS)
    array = ", ".join(ARRAY_OPERATORS)
    params = [
        {
            "name": f"f:{field}",
            "in": "query",
            "schema": {"type": "string", "pattern": value_pattern("f", fields, field)},
            "description": f"<op>:<value>, op one of {scalar} (default eq); may repeat",
        }
        for field in fields.scalar
    ]
    params += [
        {
            "name": f"fa:{field}",
            "in": "query",
            "schema": {"type": "string", "pattern": value_pattern("fa", fields, field)},
            "description": f"<op>:<v1>,<v2>,..., op one of {array} (default contains)",
        }
        for field in fields.array
    ]
    return params


def _device_id() -> dict[str, Any]:
    return {"name": "devId", "in": "path", "required": True, "schema": {"type": "integer"}}


def openapi_document() -> dict[str, Any]:
    """The API of the sandbox as an OpenAPI 3.1 document."""
    page = [
        {
            "name": "limit",
            "in": "query",
            "schema": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_INTEGER,
                "default": DEFAULT_PAGE_SIZE,
            },
            "description": f"Rows per page; above {MAX_PAGE_SIZE} it is clamped",
        },
        {
            "name": "offset",
            "in": "query",
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER, "default": 0},
        },
    ]
    downlink_type = {
        "name": "type",
        "in": "query",
        "schema": {"enum": list(DOWNLINK_TYPES)},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "provisioner sandbox of the Lobaro IoT Platform REST API",
            "version": "1",
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/devices": {
                "get": {
                    "summary": "List and find devices (any role), ordered by id",
                    "parameters": page + _filter_parameters(DEVICE_FILTERS),
                    "responses": {
                        "200": _data({"type": "array", "items": _ref("Device")}, "Devices"),
                        **_errors(400),
                    },
                },
                "post": {
                    "summary": "Create a device (org-admin or device-admin)",
                    "requestBody": {"required": True, **_json(_ref("DeviceInput"), "deviceInput")},
                    "responses": {
                        "200": _data(_ref("Device"), "The created device"),
                        **_errors(400, 403, 409),
                    },
                },
            },
            "/api/devices/{devId}": {
                "put": {
                    "summary": (
                        "Update a device (org-admin or device-admin): the fields in the body"
                        " replace the stored ones, the others stay; the addr only for platform"
                        " admins; updatedAt moves on"
                    ),
                    "parameters": [_device_id()],
                    "requestBody": {
                        "required": True,
                        **_json({**_DEVICE_INPUT, "required": []}, "deviceInput fields"),
                    },
                    "responses": {
                        "200": _data(_ref("Device"), "The updated device"),
                        **_errors(400, 403, 404),
                    },
                },
                "delete": {
                    "summary": (
                        "Delete a device with its queued downlinks and its data"
                        " (org-admin or device-admin); there is no undo"
                    ),
                    "parameters": [_device_id()],
                    "responses": {
                        "204": {"description": "Deleted; empty body"},
                        **_errors(403, 404),
                    },
                },
            },
            "/api/devices/{devId}/parsed-data": {
                "get": {
                    "summary": "A device's parsed data (any role), newest receivedAt first",
                    "parameters": [_device_id(), *page, *_filter_parameters(DATA_FILTERS)],
                    "responses": {
                        "200": _data({"type": "array", "items": _ref("ParsedData")}, "Data"),
                        **_errors(400, 404),
                    },
                },
            },
            "/api/devices/parsed-data": {
                "get": {
                    "summary": (
                        "The parsed data of all the organisation's devices (any role),"
                        " newest receivedAt first"
                    ),
                    "parameters": page + _filter_parameters(ORGANISATION_DATA_FILTERS),
                    "responses": {
                        "200": _data({"type": "array", "items": _ref("ParsedData")}, "Data"),
                        **_errors(400),
                    },
                },
            },
            "/api/devices/{devId}/downlink": {
                "get": {
                    "summary": "The downlinks queued for a device (any role)",
                    "parameters": [_device_id(), downlink_type],
                    "responses": {
                        "200": _data({"type": "array", "items": _ref("Downlink")}, "Downlinks"),
                        **_errors(400, 404),
                    },
                },
                "post": {
                    "summary": "Queue a downlink, replacing one of the same type (org-admin or device-admin)",
                    "parameters": [_device_id(), {**downlink_type, "required": True}],
                    "requestBody": {"required": True, **_json({}, "Downlink content")},
                    "responses": {
                        "200": {"description": "Queued; empty body"},
                        **_errors(400, 403, 404),
                    },
                },
            },
            "/api/organisation/user": {
                "get": {
                    "summary": "List the organisation's users (org-admin)",
                    "responses": {
                        "200": _data({"type": "array", "items": _ref("User")}, "Users"),
                        **_errors(403),
                    },
                },
                "post": {
                    "summary": "Create a user (org-admin); login is the email",
                    "requestBody": {"required": True, **_json(_ref("UserInput"), "userInput")},
                    "responses": {
                        "200": _data(_ref("User"), "The created user"),
                        **_errors(400, 403, 409),
                    },
                },
            },
            "/sandbox/uplink": {
                "post": {
                    "summary": (
                        "Sandbox only: store an uplink's parsed data for the device with the"
                        " addr (network-server)"
                    ),
                    "requestBody": {"required": True, **_json(_ref("Uplink"), "Uplink")},
                    "responses": {
                        "201": _data(_ref("ParsedData"), "The stored parsed data"),
                        **_errors(400, 403, 404, 409),
                    },
                },
            },
            "/api/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1 document"}},
                },
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Device": _DEVICE,
                "DeviceInput": _DEVICE_INPUT,
                "User": _USER,
                "UserInput": _USER_INPUT,
                "Downlink": _DOWNLINK,
                "ParsedData": _PARSED_DATA,
                "Uplink": _UPLINK,
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
            },
        },
    }
