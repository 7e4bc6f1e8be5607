"""The diff is a pure function of (records, platform snapshot): tested as one."""

from __future__ import annotations

from typing import Any

from provisioner.journal import Entry, JournalState, payload_fingerprint
from provisioner.lookup import Snapshot
from provisioner.plan import RowPlan, diff
from provisioner.records import DownlinkRecord, Record, SiteRecords


def device(row: int, key: str, valid: bool = True, **body: Any) -> Record:
    body = {"serial": key, "addr": f"{row:016X}", **body}
    return Record("Devices", row, key, body, {}, {}, valid=valid)


def platform(id: int, serial: str, addr: str, **fields: Any) -> dict[str, Any]:
    return {"id": id, "serial": serial, "addr": addr, "name": addr, "tags": None, **fields}


def snapshot(*devices: dict[str, Any], users: dict[str, Any] | None = None) -> Snapshot:
    snap = Snapshot("serial", users=users)
    for d in devices:
        snap.add(d)
    return snap


def plan_of(site: SiteRecords, snap: Snapshot) -> list[RowPlan]:
    return diff(site, snap, {})


def test_not_on_the_platform_is_create() -> None:
    [row] = plan_of(SiteRecords(devices=[device(2, "A1")]), snapshot())
    assert (row.action, row.platform_id) == ("create", None)


def test_equal_fields_after_normalising_is_exists() -> None:
    record = device(
        2,
        "A1",
        addr="0004a30b001c0530",
        description=" 3.OG Müller ",
        tags=["b", "a", "a"],
        deviceTypeId=2,
        location={"lat": 53.5, "lon": 9.9},
        initialConfig={"cmodeDurSec": "600"},
        certEnforcesDtls=False,
    )
    on_platform = platform(
        7,
        "A1",
        "0004A30B001C0530",
        description="3.OG Müller",
        tags=["a", "b"],
        deviceTypeId=2,
        location={"lat": 53.5, "lon": 9.9},
        initialConfig={"cmodeDurSec": 600, "other": "x"},
        certEnforcesDtls=False,
    )
    [row] = plan_of(SiteRecords(devices=[record]), snapshot(on_platform))
    assert (row.action, row.platform_id, row.diff) == ("exists", 7, {})


def test_different_fields_are_listed() -> None:
    record = device(
        2, "A1", addr="0000000000000002", description="Keller", tags=["x", "z"], deviceTypeId=3
    )
    on_platform = platform(
        7, "A1", "0000000000000002", description="Dach", tags=["x", "y"], deviceTypeId=2
    )
    [row] = plan_of(SiteRecords(devices=[record]), snapshot(on_platform))
    assert row.action == "differs"
    assert row.diff == {
        "description": {"sheet": "Keller", "platform": "Dach"},
        "tags": {
            "sheet": ["x", "z"],
            "platform": ["x", "y"],
            "mode": "add",
            "add": ["z"],
            "remove": [],
        },
        "deviceTypeId": {"sheet": 3, "platform": 2},
    }
    assert "description" in row.reason


def test_tags_the_device_has_besides_the_sheets_differ_only_when_the_template_says_exact() -> None:
    record = device(2, "A1", addr="0000000000000002", tags=["x"])
    on_platform = platform(7, "A1", "0000000000000002", tags=["x", "y"])
    site = SiteRecords(devices=[record])
    [added] = diff(site, snapshot(on_platform), {}, "add")
    assert (added.action, added.diff) == ("exists", {})
    [exact] = diff(site, snapshot(on_platform), {}, "exact")
    assert exact.action == "differs"
    assert exact.diff["tags"] == {
        "sheet": ["x"],
        "platform": ["x", "y"],
        "mode": "exact",
        "add": [],
        "remove": ["y"],
    }


def test_tags_this_sheet_put_on_and_no_longer_has_differ_in_add_mode() -> None:
    record = device(2, "A1", addr="0000000000000002", tags=["x"])
    on_platform = platform(7, "A1", "0000000000000002", tags=["x", "y", "z"])
    site = SiteRecords(devices=[record])
    earlier = JournalState(sheet_tags={7: {"x", "y"}, 8: {"z"}})
    [row] = diff(site, snapshot(on_platform), {}, "add", earlier)
    assert row.action == "differs"
    assert (row.diff["tags"]["add"], row.diff["tags"]["remove"]) == ([], ["y"])  # z: not ours


def test_an_addr_that_differs_is_blocked_not_updated() -> None:
    record = device(2, "A1", addr="0000000000000002", description="Keller")
    on_platform = platform(7, "A1", "00000000000000FF", description="Keller")
    [row] = plan_of(SiteRecords(devices=[record]), snapshot(on_platform))
    assert row.action == "blocked"
    assert "platform admin" in row.reason and "00000000000000FF" in row.reason


def test_fields_the_sheet_leaves_empty_are_not_compared() -> None:
    record = device(2, "A1", addr="0000000000000002")
    on_platform = platform(7, "A1", "0000000000000002", description="anything", deviceTypeId=5)
    [row] = plan_of(SiteRecords(devices=[record]), snapshot(on_platform))
    assert row.action == "exists"


def test_invalid_row_is_blocked() -> None:
    [row] = plan_of(SiteRecords(devices=[device(2, "A1", valid=False)]), snapshot())
    assert row.action == "blocked" and row.reason.startswith("invalid row")


def test_several_platform_devices_with_the_key_block() -> None:
    snap = snapshot(platform(7, "A1", "01"), platform(9, "A1", "02"))
    [row] = plan_of(SiteRecords(devices=[device(2, "A1")]), snap)
    assert row.action == "blocked"
    assert "2 platform devices share the serial A1 (ids 7, 9)" in row.reason


def test_addr_of_another_device_blocks() -> None:
    snap = snapshot(platform(7, "OTHER", "0000000000000002"))
    [row] = plan_of(SiteRecords(devices=[device(2, "A1")]), snap)
    assert row.action == "blocked" and row.platform_id == 7
    assert "already belongs to platform device 7 with serial OTHER" in row.reason


def test_match_by_addr_ignores_hex_case() -> None:
    snap = Snapshot("addr")
    snap.add(platform(7, "S", "70b3d5e75e000001"))
    record = Record("Devices", 2, "70B3D5E75E000001", {"addr": "70B3D5E75E000001"}, {}, {})
    [row] = diff(SiteRecords(devices=[record]), snap, {})
    assert (row.action, row.platform_id) == ("exists", 7)


def test_users_create_exists_unknown_blocked() -> None:
    users = [
        Record("Users", 2, "eva@example.com", {"email": "eva@example.com"}, {}, {}),
        Record("Users", 3, "max@example.com", {"email": "max@example.com"}, {}, {}),
        Record("Users", 4, "bad", {"email": "bad"}, {}, {}, valid=False),
    ]
    known = snapshot(users={"eva@example.com": {"id": 3}})
    actions = [r.action for r in plan_of(SiteRecords(users=users), known)]
    assert actions == ["exists", "create", "blocked"]
    unlisted = snapshot(users=None)
    unlisted.users_note = "the platform does not list users"
    plans = plan_of(SiteRecords(users=users[:1]), unlisted)
    assert plans[0].action == "unknown" and "does not list users" in plans[0].reason


def test_downlinks_follow_their_device() -> None:
    site = SiteRecords(
        devices=[device(2, "NEW"), device(3, "DUP"), device(4, "DUP")],
        downlinks=[
            DownlinkRecord("Downlinks", 2, "NEW", {"q": "config"}, {}, {}, type="config"),
            DownlinkRecord("Downlinks", 3, "OLD", {"q": "config"}, {}, {}, type="config"),
            DownlinkRecord("Downlinks", 4, "GONE", {"q": "config"}, {}, {}, type="config"),
            DownlinkRecord("Downlinks", 5, "NEW", {}, {}, {}, valid=False, type="fw"),
        ],
    )
    site.devices[1].valid = site.devices[2].valid = False  # duplicate key: both invalid
    snap = snapshot(platform(11, "OLD", "0B"))
    plans = [p for p in plan_of(site, snap) if p.kind == "downlink"]
    assert [(p.action, p.platform_id) for p in plans] == [
        ("queue", None),  # the device is created first; apply fills in its id
        ("queue", 11),
        ("blocked", None),
        ("blocked", None),
    ]
    assert "in the sheet or on the platform" in plans[2].reason


def test_diff_does_not_touch_its_inputs() -> None:
    record = device(2, "A1", tags=["b", "a"])
    snap = snapshot(platform(7, "A1", "0000000000000002", tags=["a", "b"]))
    before = (dict(record.body), list(record.body["tags"]), dict(snap.by_key))
    plan_of(SiteRecords(devices=[record]), snap)
    plan_of(SiteRecords(devices=[record]), snap)
    assert (record.body, record.body["tags"], snap.by_key) == before


# --- downlinks a run queued (plan's rule and apply's: plan.queued_before) ---------------


def downlink(row: int, key: str, body: dict[str, Any]) -> DownlinkRecord:
    return DownlinkRecord("Downlinks", row, key, body, {}, {}, type="config")


def journal_with(key: str, platform_id: int, body: dict[str, Any]) -> JournalState:
    """A journal whose run queued ``body`` as the config downlink of device ``key``."""
    state = JournalState()
    entry = Entry(
        "downlink",
        f"{key}/config",
        "done",
        platform_id,
        "queued",
        at="2026-12-01T10:00:00+00:00",
        payload=payload_fingerprint(body),
    )
    state.entries[("downlink", entry.key)] = entry
    return state


CONFIG = {"d": {"listenCron": "0 0/20 * * * *"}, "q": "config"}


def test_a_downlink_a_run_queued_with_this_content_to_this_device_exists() -> None:
    site = SiteRecords(downlinks=[downlink(2, "A1", CONFIG)])
    [row] = diff(site, snapshot(platform(7, "A1", "0A")), {}, earlier=journal_with("A1", 7, CONFIG))
    assert (row.action, row.platform_id) == ("exists", 7)
    assert row.reason == "queued on 2026-12-01; unchanged in the sheet since"
    assert row.sends is None and row.to_dict()["sends"] is None


def test_a_downlink_queued_with_other_content_or_to_another_device_is_queued() -> None:
    site = SiteRecords(downlinks=[downlink(2, "A1", CONFIG)])
    other = {"d": {"listenCron": "0 0/30 * * * *"}, "q": "config"}
    for earlier in (journal_with("A1", 7, other), journal_with("A1", 8, CONFIG), None):
        [row] = diff(site, snapshot(platform(7, "A1", "0A")), {}, earlier=earlier)
        assert (row.action, row.sends) == ("queue", CONFIG), earlier


def test_a_device_created_in_this_run_gets_its_downlinks_again() -> None:
    site = SiteRecords(devices=[device(2, "A1")], downlinks=[downlink(2, "A1", CONFIG)])
    [_, row] = diff(site, snapshot(), {}, earlier=journal_with("A1", 7, CONFIG))
    assert (row.action, row.platform_id) == ("queue", None)


# --- what a create sends -----------------------------------------------------------------


def test_a_create_sends_its_body_with_passwords_and_lorawan_keys_hidden() -> None:
    record = device(2, "A1", initialConfig={"JoinEUI": "70B3D5E7", "appkey": "2B7E1516"})
    user = Record(
        "Users", 2, "a@example.org", {"email": "a@example.org", "password": "Geheim99"}, {}, {}
    )
    [row, user_row] = diff(SiteRecords(devices=[record], users=[user]), snapshot(), {})
    assert row.to_dict()["sends"] == {
        "serial": "A1",
        "addr": "0000000000000002",
        "initialConfig": {"JoinEUI": "70B3D5E7", "appkey": "(hidden)"},
    }
    assert user_row.sends == {"email": "a@example.org", "password": "(hidden)"}
    assert record.body["initialConfig"]["appkey"] == "2B7E1516", "the body sent is not changed"


def test_rows_that_send_nothing_carry_no_body() -> None:
    site = SiteRecords(devices=[device(2, "A1"), device(3, "B1", valid=False)])
    rows = diff(site, snapshot(platform(7, "A1", "0000000000000002")), {})
    assert [(r.action, r.sends) for r in rows] == [("exists", None), ("blocked", None)]
