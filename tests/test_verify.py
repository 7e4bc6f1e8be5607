"""The commissioning check's pieces: times, and the switch from the organisation's data to
per-device requests when there is too much (in-process, against the sandbox)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import provisioner.verify as verify
from provisioner.platform import PlatformClient
from provisioner.sandbox import Sandbox
from provisioner.templates import load_template
from provisioner.verify import Finding, VerifyError, parse_since, verify_sheet

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_since_is_a_time_or_a_duration_back_from_now() -> None:
    assert parse_since("2h", NOW) == NOW - timedelta(hours=2)
    assert parse_since("90m", NOW) == NOW - timedelta(minutes=90)
    assert parse_since("1d", NOW) == NOW - timedelta(days=1)
    assert parse_since("2026-12-01T08:00+01:00", NOW) == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    assert parse_since("2026-12-01T08:00:00Z", NOW) == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    local = parse_since("2026-12-01 08:00", NOW)
    assert local.tzinfo is not None  # the machine's own zone, then UTC
    with pytest.raises(VerifyError, match="neither a time"):
        parse_since("gestern", NOW)


def test_too_much_organisation_data_switches_to_per_device(
    sandbox_factory: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb: Sandbox = sandbox_factory(max_page_size=2)  # type: ignore[operator]
    sb.store.insert_devices({"addr": f"70B3D5E7{i:08X}", "serial": f"SN{i}"} for i in range(6))
    ids = [d["id"] for d in sb.store.list_devices(limit=10)]
    for device_id in ids[:4]:
        for _ in range(2):
            sb.store.add_parsed_data(device_id, {"v": 1})
    sheet = tmp_path / "site.csv"
    sheet.write_text(
        "serial;addr\n" + "".join(f"SN{i};70B3D5E7{i:08X}\n" for i in range(6)), encoding="utf-8"
    )
    template = load_template("default")
    since = NOW.replace(year=2020)
    monkeypatch.setattr(verify, "ORGANISATION_RECORDS", 2)  # 8 records: more than the bound
    with PlatformClient(sb.url, sb.tokens["device-admin"]) as client:
        mixed = verify_sheet(sheet, template, client, Finding(since=since))
        per_device = verify_sheet(sheet, template, client, Finding(since=since, way="per-device"))
    statuses = {r.key: r.status for r in mixed.rows}
    assert statuses == {r.key: r.status for r in per_device.rows}
    assert [statuses[f"SN{i}"] for i in range(6)] == ["online"] * 4 + ["silent"] * 2
    assert mixed.way == "organisation data (2 records), then per device for the rest"
    # One page (the newest 2 records, both of SN3), then the 5 devices not seen online yet.
    assert mixed.data_requests == 1 + 5
    assert per_device.data_requests == 6


def test_the_command_line_offers_the_ways_verify_knows() -> None:
    from provisioner.cli import VERIFY_WAYS

    assert VERIFY_WAYS == verify.WAYS
