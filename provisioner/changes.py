"""What an update of a device sends, and its changes in the installer's words.

``device_update`` starts from the device as the platform holds it and puts the
sheet's values in: only fields the sheet sets (an empty cell leaves a value as
it is, never clears it), only the fields asked for (``apply --update
description,tags``), never the addr. The body is the device's whole
deviceInput, so that it is right whether the platform merges a PUT into the
device or replaces the device with it.

Tags follow the template: "add" puts the sheet's tags on the device and keeps
its others, "exact" makes the sheet's list the whole list. initialConfig keys
the sheet sets replace the device's, its other keys stay. LoRaWAN keys are
never shown: a change line says "cfg:AppKey changes".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from provisioner.fields import (
    DEVICE_INPUT_FIELDS,
    MASK,
    NOT_UPDATABLE,
    SECRET_CONFIG_KEYS,
    config_differences,
    masked_config,
    same,
    tags_to_change,
)

# What --update accepts, and the field each name stands for.
UPDATE_NAMES: dict[str, str] = {
    **{name: name for name in DEVICE_INPUT_FIELDS if name not in NOT_UPDATABLE},
    "lat": "location",
    "lon": "location",
    "config": "initialConfig",
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


def masked_input(device: dict[str, Any]) -> dict[str, Any]:
    """``device_input`` with LoRaWAN keys hidden: what the journal keeps of a device."""
    values = device_input(device)
    if isinstance(values.get("initialConfig"), dict):
        values["initialConfig"] = masked_config(values["initialConfig"])
    return values


def device_update(
    device: dict[str, Any],
    sheet: dict[str, Any],
    *,
    fields: frozenset[str] | None = None,
    tags_mode: str = "add",
) -> Update:
    """The PUT body that brings ``device`` in line with the sheet's body, and its changes.

    ``fields``: the deviceInput fields to change (None: all the sheet sets).
    """
    body = device_input(device)
    changes: list[Change] = []
    for name, value in sheet.items():
        if name in NOT_UPDATABLE or (fields is not None and name not in fields):
            continue
        held = device.get(name)
        if name == "tags":
            added, removed = tags_to_change(value, held, tags_mode)
            if added or removed:
                kept = [t for t in (held if isinstance(held, list) else []) if t not in removed]
                body[name] = list(value) if tags_mode == "exact" else kept + added
                changes.append(Change("tags", held, body[name], added, removed))
            continue
        if name == "initialConfig" and isinstance(value, dict):
            platform = held if isinstance(held, dict) else {}
            keys = config_differences(value, held)
            if keys:
                body[name] = {**platform, **value}
                changes += [
                    Change(f"cfg:{k}", platform.get(k), value[k], secret=k in SECRET_CONFIG_KEYS)
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
