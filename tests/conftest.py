"""Shared fixtures: sandboxes of the platform on loopback ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from provisioner.sandbox import Sandbox, SandboxConfig

TEST_TOKENS = {
    "org-admin": "test-org-admin-token",
    "device-admin": "test-device-admin-token",
    "network-server": "test-network-server-token",
}


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes with SandboxConfig overrides (fixed test tokens); all stop after the test."""
    started: list[Sandbox] = []

    def start(**overrides: Any) -> Sandbox:
        overrides.setdefault("tokens", dict(TEST_TOKENS))
        sb = Sandbox(SandboxConfig(**overrides)).start()
        started.append(sb)
        return sb

    yield start
    for sb in started:
        sb.stop()


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """A fresh in-memory sandbox with the fixed TEST_TOKENS."""
    return sandbox_factory()
