"""The platform client against the real sandbox over loopback HTTP."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from provisioner.platform import (
    AuthError,
    Conflict,
    InvalidRequest,
    NotFound,
    PlatformClient,
    PlatformError,
    RetryPolicy,
    UnknownOutcome,
    f,
    fa,
)
from provisioner.sandbox import Sandbox

FAST_RETRY = RetryPolicy(attempts=8, base_delay=0.01, max_delay=0.2)


def client_for(sb: Sandbox, role: str = "org-admin", **kw: Any) -> PlatformClient:
    kw.setdefault("retry", FAST_RETRY)
    return PlatformClient(sb.url, sb.tokens[role], **kw)


def device(i: int, **extra: Any) -> dict[str, Any]:
    return {"addr": f"{i:016X}", "serial": f"SN{i:05d}", "tags": ["Site-HH-04"], **extra}


def test_create_and_find_by_serial_addr_and_tag(sandbox: Sandbox) -> None:
    with client_for(sandbox, "device-admin") as client:
        created = client.create_device(device(1, description="3.OG Müller"))
        client.create_device(device(2, tags=["Other"]))
        assert created["name"] == created["addr"] == "0000000000000001"
        assert created["id"] > 0
        by_serial = client.list_devices([f("serial", "eq", "SN00001")])
        by_addr = client.list_devices([f("addr", "eq", "0000000000000001")])
        by_tag = client.list_devices([fa("tags", "contains", ["Site-HH-04"])])
        assert [d["id"] for d in by_serial] == [created["id"]]
        assert by_addr == by_serial == by_tag
        assert by_addr[0]["description"] == "3.OG Müller"


def test_listing_pages_through_everything(sandbox: Sandbox) -> None:
    sandbox.store.insert_devices([device(i) for i in range(250)])
    with client_for(sandbox) as client:
        seen = client.list_devices(page_size=100)
        assert len(seen) == 250
        assert [d["id"] for d in seen] == sorted(d["id"] for d in seen)
        # The last page is short: one more request settles that it was the last.
        assert client.requests_sent == 4


def test_listing_survives_a_lower_page_cap(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(max_page_size=500)
    sb.store.insert_devices([device(i) for i in range(1234)])
    with client_for(sb) as client:
        assert len({d["id"] for d in client.list_devices()}) == 1234


def test_roles_and_tokens(sandbox: Sandbox) -> None:
    with client_for(sandbox, "network-server") as client:
        assert client.list_devices() == []
        with pytest.raises(AuthError, match="org-admin or device-admin") as info:
            client.create_device(device(1))
        assert info.value.status == 403
    with client_for(sandbox, "device-admin") as client:
        with pytest.raises(AuthError, match="org-admin") as info:
            client.list_users()
        assert info.value.status == 403
    with PlatformClient(sandbox.url, "not-a-token", retry=FAST_RETRY) as client:
        with pytest.raises(AuthError, match="did not accept the token") as info:
            client.list_devices()
        assert info.value.status == 401


def test_conflict_and_invalid_request(sandbox: Sandbox) -> None:
    with client_for(sandbox) as client:
        client.create_device(device(1))
        with pytest.raises(Conflict, match="0000000000000001"):
            client.create_device(device(1))
        with pytest.raises(InvalidRequest, match="deviceTypeId"):
            client.create_device(device(2, deviceTypeId=99999))
        with pytest.raises(NotFound):
            client.queue_downlink(424242, "config", {"d": {"a": "1"}, "q": "config"})


def test_users_and_downlinks(sandbox: Sandbox) -> None:
    with client_for(sandbox) as client:
        user = client.create_user(
            {
                "name": "Eva Test",
                "email": "e.test@example.com",
                "password": "s0meSecur3Pw",
                "roles": ["device-admin"],
            }
        )
        assert user["login"] == "e.test@example.com"
        assert "password" not in user
        assert [u["email"] for u in client.list_users()] == ["e.test@example.com"]
        dev = client.create_device(device(1))
        client.queue_downlink(
            dev["id"], "config", {"d": {"listenCron": "0 0/20 * * * *"}, "q": "config"}
        )
        client.queue_downlink(dev["id"], "config", {"d": {"cmodeDurSec": "600"}, "q": "config"})
        queued = client.list_downlinks(dev["id"])
        assert len(queued) == 1
        assert queued[0]["content"] == {"d": {"cmodeDurSec": "600"}, "q": "config"}


def test_reads_survive_500s_and_rate_limits(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(fail_rate=0.3, rate_limit=200, fault_seed=7)
    sb.store.insert_devices([device(i) for i in range(30)])
    with client_for(sb) as client:
        for i in range(30):
            assert len(client.list_devices([f("serial", "eq", f"SN{i:05d}")])) == 1


def test_dropped_create_is_an_unknown_outcome_and_did_happen(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sb = sandbox_factory(drop_after_commit_rate=1.0)
    with client_for(sb) as client:
        with pytest.raises(UnknownOutcome):
            client.create_device(device(1))
        assert len(client.list_devices([f("addr", "eq", "0000000000000001")])) == 1


def test_slow_create_times_out_as_unknown_outcome(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(latency_ms=600)
    with client_for(sb, timeout=0.2) as client, pytest.raises(UnknownOutcome):
        client.create_device(device(1))


def test_parallel_creates_through_one_client(sandbox: Sandbox) -> None:
    with client_for(sandbox) as client, ThreadPoolExecutor(32) as pool:
        ids = list(pool.map(lambda i: client.create_device(device(i))["id"], range(100)))
        assert len(set(ids)) == 100
        assert len(client.list_devices()) == 100


def test_token_never_shows_with_faults_on(
    sandbox_factory: Callable[..., Sandbox],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sb = sandbox_factory(fail_rate=0.3, drop_after_commit_rate=0.3, rate_limit=300, fault_seed=3)
    token = sb.tokens["device-admin"]
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with client_for(sb, "device-admin", retry=RetryPolicy(attempts=2, base_delay=0.01)) as client:
        for i in range(60):
            try:
                client.create_device(device(i % 40))
                client.list_devices([f("serial", "eq", f"SN{i:05d}")])
                client.list_users()
            except PlatformError as exc:
                texts += [str(exc), repr(exc), repr(exc.__cause__), exc.message, exc.hint]
    with PlatformClient(sb.url, token + "x", retry=FAST_RETRY) as bad:
        with pytest.raises(AuthError) as info:
            bad.list_devices()
        texts.append(str(info.value))
    assert len(texts) > 10  # the faults did happen
    captured = capsys.readouterr()
    everything = "\n".join([*texts, caplog.text, captured.out, captured.err])
    assert token not in everything
