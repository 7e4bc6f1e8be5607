"""The pace end to end: the real CLI against a sandbox that limits the request rate.

The sandbox's token bucket answers 429 with a whole-second Retry-After above its rate
and counts what it received and what it refused; its database shows what was made.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx

from provisioner.pace import Pace
from provisioner.platform import PlatformClient, RetryPolicy
from provisioner.sandbox import Sandbox
from tests.test_apply_e2e import (
    FINISHED,
    assert_exactly_once,
    device_sheet,
    explain,
    run_apply,
)

Factory = Callable[..., Sandbox]


def test_apply_finds_the_platforms_rate_limit_by_itself(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(rate_limit=30)
    sheet, addrs = device_sheet(tmp_path, 50)
    report = tmp_path / "run.json"

    done = run_apply(sheet, sb, sb.tokens["device-admin"], "--report", str(report))

    assert done.returncode == FINISHED, explain(done)
    assert_exactly_once(sb, addrs)
    # The plan's lookups and the creates together: few were refused, though nobody said
    # what the limit is (the client without a pace sent a fifth of its requests into 429s).
    assert sb.faults.rate_limited >= 1, "the limit was never reached: the test shows nothing"
    assert sb.faults.rate_limited <= 0.10 * sb.faults.requests
    pace = json.loads(report.read_text())["pace"]
    assert pace["requests"] >= 100  # a lookup and a create per row
    assert pace["rate_limited"] == sb.faults.rate_limited  # the client counted each one
    assert pace["waited_seconds"] >= 1.0  # the sandbox's Retry-After: whole seconds
    assert pace["paced_at"] is not None
    line = next(
        (x for x in done.stdout.splitlines() if x.startswith("the platform limited the rate")),
        "",
    )
    assert f"limited the rate {_times(pace['rate_limited'])}" in line, explain(done)
    assert f"{pace['requests']} requests in" in line and "waited as it asked" in line
    # Without a terminal the plain progress lines carry the pace too.
    assert "at once" in done.stderr, explain(done)


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def test_an_unlimited_platform_gets_no_pace_and_no_line(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory()
    sheet, addrs = device_sheet(tmp_path, 40)

    done = run_apply(sheet, sb, sb.tokens["device-admin"], "--json")

    assert done.returncode == FINISHED, explain(done)
    assert_exactly_once(sb, addrs)
    pace = json.loads(done.stdout)["pace"]
    assert (pace["rate_limited"], pace["overloaded"], pace["paced_at"]) == (0, 0, None)
    assert pace["most_at_once"] > 8  # the window grew past where it starts


def test_retry_after_as_an_http_date_holds_every_request() -> None:
    """A 429 whose Retry-After is an HTTP date 3 s after its own Date header: the client
    waits 3 s (by the platform's clock) before it or any other request goes again."""
    answers = iter(
        [
            httpx.Response(
                429,
                headers={
                    "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
                    "Retry-After": "Wed, 21 Oct 2015 07:28:03 GMT",
                },
                json={"error": "slow down"},
            ),
            httpx.Response(200, json={"data": []}),
            httpx.Response(200, json={"data": []}),
        ]
    )
    now = [1000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    client = PlatformClient(
        "http://127.0.0.1:9",
        "tok-123456",
        transport=httpx.MockTransport(lambda request: next(answers)),
        sleep=sleep,
        clock=lambda: now[0],
        retry=RetryPolicy(base_delay=0.001),
    )
    client.list_devices_page()
    assert sum(slept) >= 3.0
    held = sum(slept)
    client.list_devices_page()  # after the hold: no more waiting
    assert sum(slept) == held
    assert isinstance(client.pace, Pace)
    assert client.pace.stats().rate_limited == 1
    assert client.pace.stats().waited == 3.0
