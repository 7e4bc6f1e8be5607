"""A local stand-in for the Lobaro IoT Platform REST API: real HTTP on loopback, SQLite storage.

    with Sandbox(SandboxConfig(tokens={"org-admin": "secret"})) as sb:
        httpx.get(sb.url + "/api/devices", headers={"Authorization": "Bearer secret"})

``sb.store`` reaches the data directly (bulk inserts, ``revoke_token``), and
``sb.faults`` switches injected faults on and off while it runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provisioner.sandbox.errors import BadRequest, Conflict, NotFound, SandboxError
    from provisioner.sandbox.faults import Faults
    from provisioner.sandbox.server import Sandbox, SandboxConfig
    from provisioner.sandbox.store import (
        DEVICE_TYPES,
        DOWNLINK_TYPES,
        MAX_PAGE_SIZE,
        ROLES,
        SandboxStore,
    )

# Where each name lives. They are imported on first use, so that a command that only
# needs the store's constants (the CLI's help texts) does not load the HTTP server.
_HOMES = {
    "BadRequest": "errors",
    "Conflict": "errors",
    "NotFound": "errors",
    "SandboxError": "errors",
    "Faults": "faults",
    "Sandbox": "server",
    "SandboxConfig": "server",
    "DEVICE_TYPES": "store",
    "DOWNLINK_TYPES": "store",
    "MAX_PAGE_SIZE": "store",
    "ROLES": "store",
    "SandboxStore": "store",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "DEVICE_TYPES",
    "DOWNLINK_TYPES",
    "MAX_PAGE_SIZE",
    "ROLES",
    "BadRequest",
    "Conflict",
    "Faults",
    "NotFound",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "SandboxStore",
]
