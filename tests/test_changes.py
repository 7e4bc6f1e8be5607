"""What an update sends and how a device is known to be unchanged (provisioner/changes.py)."""

from __future__ import annotations

from provisioner.changes import Seen, device_update, is_applied, masked_input, secret_values

DEVICE = {
    "id": 7,
    "addr": "70B3D5E700000001",
    "serial": "SN1",
    "name": "Zähler",
    "description": "Dach",
    "deviceTypeId": 3,
    "tags": ["alt"],
    "initialConfig": {"listenCron": "a", "cmodeDurSec": 600, "appKey": "K" * 32},
    "location": None,
    "certEnforcesDtls": False,
    "updatedAt": "2026-12-01T10:00:00.000000+00:00",
}


def test_only_what_the_sheet_fills_and_differs_is_sent_changed() -> None:
    sheet = {
        "addr": "70B3D5E700000099",  # never changed by an update
        "description": "Keller",
        "deviceTypeId": 1,
        "tags": ["Haus3"],
        "initialConfig": {"listenCron": "b", "cmodeDurSec": "600"},
    }
    update = device_update(DEVICE, sheet, defaulted=frozenset({"deviceTypeId"}))
    assert update.fields == ["description", "tags", "cfg:listenCron"]
    assert update.body["addr"] == DEVICE["addr"] and update.body["deviceTypeId"] == 3
    assert update.body["tags"] == ["alt", "Haus3"]
    # Equal values are not rewritten (600 stays a number), other keys stay.
    assert update.body["initialConfig"] == {
        "listenCron": "b",
        "cmodeDurSec": 600,
        "appKey": "K" * 32,
    }
    assert "K" * 32 not in " ".join(update.lines())
    assert is_applied({**DEVICE, **update.body}, update)
    assert not is_applied(DEVICE, update)


def test_exact_tags_replace_the_list_but_only_from_the_rows_own_cell() -> None:
    assert device_update(DEVICE, {"tags": ["a", "b"]}, tags_mode="exact").body["tags"] == ["a", "b"]
    site_tag_only = device_update(
        DEVICE, {"tags": ["Site"]}, tags_mode="exact", defaulted=frozenset({"tags"})
    )
    assert site_tag_only.changes == []
    added = device_update(DEVICE, {"tags": ["Site"]}, defaulted=frozenset({"tags"}))
    assert added.body["tags"] == ["alt", "Site"]  # add mode: the site tag goes on


def test_add_mode_takes_off_only_the_tags_this_sheet_put_on() -> None:
    device = {**DEVICE, "tags": ["Haus 4", "Keller", "Wartung", "alt"]}
    update = device_update(device, {"tags": ["Haus 4", "Dach"]}, ours={"Haus 4", "Keller", "x"})
    assert update.body["tags"] == ["Haus 4", "Wartung", "alt", "Dach"]
    assert update.lines() == ["+ tag Dach", "- tag Keller"]
    assert is_applied({**device, **update.body}, update)
    # An empty tags cell (only the template's tags) leaves the sheet's earlier tags on.
    defaulted = device_update(
        device, {"tags": ["Haus 4"]}, ours={"Keller"}, defaulted=frozenset({"tags"})
    )
    assert defaulted.changes == []
    # Without the journal's word, nothing is taken off.
    assert device_update(device, {"tags": ["Haus 4"]}).changes == []


def test_a_device_without_updated_at_is_known_by_its_values() -> None:
    plain = {k: v for k, v in DEVICE.items() if k != "updatedAt"}
    seen = Seen.of(plain)
    assert seen.updated_at is None
    assert not seen.changed(dict(plain))
    assert seen.changed({**plain, "name": "B"})
    stamped = Seen.of(DEVICE)
    assert stamped.changed({**DEVICE, "updatedAt": "2026-12-01T10:00:01.000000+00:00"})
    assert not stamped.changed({**DEVICE})


def test_lorawan_keys_are_hidden_in_any_case_and_found_for_masking() -> None:
    device = {**DEVICE, "initialConfig": {"appKey": "A" * 32, "SNwkSIntKey": "B" * 32, "x": "1"}}
    shown = masked_input(device)
    assert shown["initialConfig"] == {"appKey": "(hidden)", "SNwkSIntKey": "(hidden)", "x": "1"}
    assert sorted(secret_values(device)) == ["A" * 32, "B" * 32]
