"""What an update of a device sends, and its changes in the installer's words.

``device_update`` starts from the device as the platform holds it and puts the
sheet's values in: only fields the sheet sets (an empty cell leaves a value as
it is, never clears it), only the fields asked for (``apply --update
description,tags``), never the addr. The body is the device's whole
deviceInput, so that it is right whether the platform merges a PUT into the
device or replaces the device with it.

Tags follow the template: "add" puts the sheet's tags on the device and keeps
the tags others gave it, and takes off the tags this sheet's earlier runs put on
it that the sheet no longer has (the journal knows them: ``ours``); "exact" makes
the sheet's list the whole list. initialConfig keys
the sheet sets replace the device's, its other keys stay. LoRaWAN keys are
never shown: a change line says "cfg:AppKey changes".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from provisioner.fields import (
    DEVICE_INPUT_FIELDS,
    FIELDS,
    MASK,
    NOT_UPDATABLE,
    config_differences,
    is_secret_config_key,
    masked_config,
    same,
    tags_to_change,
)

# What --update accepts, and the field each name stands for: the deviceInput's own names,
# and the sheet's that fill another (lat and lon the location, config the initialConfig).
UPDATE_NAMES: dict[str, str] = {
    **{name: name for name in DEVICE_INPUT_FIELDS if name not in NOT_UPDATABLE},
    **{name: known.body for name, known in FIELDS["devices"].items() if known.body},
}


@dataclass
class Change:
    """One field an update changes."""

    name: str  # the deviceInput field; initialConfig per key, as "cfg:<key>"
    before: Any = None
    after: Any = None
    added: list[str] = field(default_factory=list)  # tags
    removed: list[str] = field(default_factory=list)  # tags
    secret: bool = False

    def lines(self) -> list[str]:
        """``~ description: "Dach" -> "Keller"``, ``+ tag Haus3``, ``- tag alt``."""
        if self.name == "tags":
            return [f"+ tag {t}" for t in self.added] + [f"- tag {t}" for t in self.removed]
        if self.secret:
            return [f"~ {self.name} changes (the value is not shown)"]
        return [f"~ {self.name}: {_shown(self.before)} -> {_shown(self.after)}"]

    def to_dict(self) -> dict[str, Any]:
        if self.name == "tags":
            return {"field": "tags", "add": self.added, "remove": self.removed}
        if self.secret:
            return {"field": self.name, "before": MASK, "after": MASK}
        return {"field": self.name, "before": self.before, "after": self.after}


@dataclass
class Update:
    """The body to PUT and what it changes; no changes: nothing to send."""

    body: dict[str, Any]
    changes: list[Change]

    @property
    def fields(self) -> list[str]:
        """The changed fields, each once: description, tags, cfg:listenCron."""
        return list(dict.fromkeys(c.name for c in self.changes))

    def lines(self) -> list[str]:
        return [line for change in self.changes for line in change.lines()]


def device_input(device: dict[str, Any]) -> dict[str, Any]:
    """The deviceInput part of a Device as the platform returns it."""
    return {name: device[name] for name in DEVICE_INPUT_FIELDS if name in device}


@dataclass(frozen=True)
class Seen:
    """How a device looked when it was planned: its updatedAt, and a fingerprint of its
    deviceInput for a platform that gives no updatedAt. ``changed`` tells whether the
    device read just now is another."""

    updated_at: str | None
    fingerprint: str

    @classmethod
    def of(cls, device: dict[str, Any]) -> Seen:
        stamp = device.get("updatedAt")
        return cls(stamp if isinstance(stamp, str) and stamp else None, fingerprint(device))

    def changed(self, device: dict[str, Any]) -> bool:
        now = Seen.of(device)
        if self.updated_at and now.updated_at:
            return now.updated_at != self.updated_at
        return now.fingerprint != self.fingerprint


def fingerprint(device: dict[str, Any]) -> str:
    """A short, stable fingerprint of a device's deviceInput (no value can be read from it)."""
    text = json.dumps(device_input(device), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def secret_values(device: dict[str, Any]) -> list[str]:
    """The LoRaWAN keys a device holds in its initialConfig: to be masked in every message."""
    config = device.get("initialConfig")
    if not isinstance(config, dict):
        return []
    return [str(v) for k, v in config.items() if is_secret_config_key(k) and v not in (None, "")]


def masked_input(device: dict[str, Any]) -> dict[str, Any]:
    """``device_input`` with LoRaWAN keys hidden: what the journal keeps of a device."""
    values = device_input(device)
    if isinstance(values.get("initialConfig"), dict):
        values["initialConfig"] = masked_config(values["initialConfig"])
    return values


def fills(name: str, defaulted: frozenset[str], tags_mode: str) -> bool:
    """Whether the sheet's row sets field ``name`` for a device already on the platform.

    A value the template filled in (``Record.defaulted``) does not, as an empty cell
    does not: except tags in "add" mode, where the template's tags (the site tag) are
    to be on every device; in "exact" mode the row's own tags cell decides.
    """
    return name not in defaulted or (name == "tags" and tags_mode == "add")


def removable_tags(ours: Iterable[str], defaulted: frozenset[str]) -> Iterable[str]:
    """The tags of ``ours`` (this sheet's earlier runs put them on the device) that the
    row may take off: none when its tags cell is empty, which leaves the device's tags."""
    return () if "tags" in defaulted else ours


def device_update(
    device: dict[str, Any],
    sheet: dict[str, Any],
    *,
    fields: frozenset[str] | None = None,
    tags_mode: str = "add",
    defaulted: frozenset[str] = frozenset(),
    ours: Iterable[str] = (),
) -> Update:
    """The PUT body that brings ``device`` in line with the sheet's body, and its changes.

    ``fields``: the deviceInput fields to change (None: all the sheet sets);
    ``defaulted``: the body's fields the template filled (see ``fills``); ``ours``: the
    tags this sheet's earlier runs put on the device (see ``tags_to_change``).
    """
    body = device_input(device)
    changes: list[Change] = []
    for name, value in sheet.items():
        if name in NOT_UPDATABLE or (fields is not None and name not in fields):
            continue
        if not fills(name, defaulted, tags_mode):
            continue
        held = device.get(name)
        if name == "tags":
            added, removed = tags_to_change(value, held, tags_mode, removable_tags(ours, defaulted))
            if added or removed:
                kept = [
                    t
                    for t in (held if isinstance(held, list) else [])
                    if str(t).strip() not in removed
                ]
                body[name] = list(value) if tags_mode == "exact" else kept + added
                changes.append(Change("tags", held, body[name], added, removed))
            continue
        if name == "initialConfig" and isinstance(value, dict):
            platform = held if isinstance(held, dict) else {}
            keys = config_differences(value, held)
            if keys:  # the keys that differ; the device's others (and equal ones) stay
                body[name] = {**platform, **{k: value[k] for k in keys}}
                changes += [
                    Change(f"cfg:{k}", platform.get(k), value[k], secret=is_secret_config_key(k))
                    for k in keys
                ]
            continue
        if not same(name, value, held):
            body[name] = value
            changes.append(Change(name, held, value))
    return Update(body, changes)


def is_applied(device: dict[str, Any], update: Update, tags_mode: str = "add") -> bool:
    """Whether the device holds what ``update`` sent (after an answer that got lost)."""
    sent = {name: update.body[name] for name in _changed_fields(update)}
    return not device_update(device, sent, tags_mode="exact").changes


def _changed_fields(update: Update) -> list[str]:
    return list(
        dict.fromkeys(
            "initialConfig" if c.name.startswith("cfg:") else c.name for c in update.changes
        )
    )


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
