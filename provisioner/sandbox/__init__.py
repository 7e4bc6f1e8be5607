"""A local stand-in for the Lobaro IoT Platform REST API: real HTTP on loopback, SQLite storage.

    with Sandbox(SandboxConfig(tokens={"org-admin": "secret"})) as sb:
        httpx.get(sb.url + "/api/devices", headers={"Authorization": "Bearer secret"})

``sb.store`` reaches the data directly (bulk inserts, ``revoke_token``), and
``sb.faults`` switches injected faults on and off while it runs.
"""

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
