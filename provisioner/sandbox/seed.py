"""Realistic sandbox devices, generated deterministically from a seed.

Addresses are derived from a running number (LoRaWAN DevEUIs of 16 hex digits,
NB-IoT IMEIs of 15 digits), so they are unique; the seeded RNG picks sites,
device types, descriptions and configs. The same seed gives the same devices.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from provisioner.sandbox.filters import format_instant

# Device type id -> (how it is addressed, tag it carries, name prefix).
_FAMILIES: dict[int, tuple[str, str, str]] = {
    1: ("either", "Generic", "Device"),
    2: ("imei", "MbusGw", "wMBus-GW"),
    3: ("deveui", "LoRaBridge", "wMBus-Bridge"),
    4: ("deveui", "Meter", "Meter"),
    5: ("either", "Modbus", "Modbus-Bridge"),
    6: ("deveui", "Pressure", "Pressure"),
}
_TYPE_WEIGHTS = (1, 3, 3, 6, 1, 2)  # meters and gateways are the common ones
_CITIES = {"HH": (53.55, 9.99), "B": (52.52, 13.40), "M": (48.14, 11.58), "K": (50.94, 6.96)}
_CITIES |= {"F": (50.11, 8.68), "DO": (51.51, 7.47), "HB": (53.08, 8.80)}
_FLOORS = ("Keller", "EG", "1.OG", "2.OG", "3.OG", "4.OG", "Dachgeschoß", "Tiefgarage")
_PLACES = (
    "Wohnung Müller",
    "Wohnung Schäfer",
    "Wohnung Größ",
    "Wohnung Jürgens",
    "Wohnung Weiß",
    "Wohnung Köhler",
    "Heizungsraum",
    "Zählerschrank links",
    "Treppenhaus Süd",
    "Technikraum, Tür rechts",
    "Hausanschlussraum",
    "Büro Krüger",
)
_START = datetime(2022, 3, 1, 7, 0, tzinfo=UTC)


def seed_inputs(count: int, seed: int, first_number: int = 0) -> list[tuple[dict[str, Any], str]]:
    """``count`` pairs of (deviceInput, createdAt); numbering starts after ``first_number``."""
    rng = random.Random(seed)
    type_ids = rng.choices(list(_FAMILIES), weights=_TYPE_WEIGHTS, k=count)
    cities = list(_CITIES)
    devices: list[tuple[dict[str, Any], str]] = []
    for i, type_id in enumerate(type_ids):
        number = first_number + i + 1
        addressing, family_tag, prefix = _FAMILIES[type_id]
        if addressing == "either":
            addressing = rng.choice(("imei", "deveui"))
        addr = f"3526561{number:08d}" if addressing == "imei" else f"70B3D5E7{number:08X}"
        city = rng.choice(cities)
        site = f"Site-{city}-{rng.randint(1, 24):02d}"
        config: dict[str, Any] | None = None
        if addressing == "deveui":
            config = {"DevEUI": addr, "JoinEUI": "70B3D57ED0000000"}
        elif type_id == 2:
            config = {"mFilter": "LOB", "listenCron": "0 0/20 * * * *", "cmodeDurSec": "600"}
        location = None
        if rng.random() < 0.3:
            lat, lon = _CITIES[city]
            location = {"lat": round(lat + rng.uniform(-0.05, 0.05), 6)}
            location["lon"] = round(lon + rng.uniform(-0.05, 0.05), 6)
        created = _START + timedelta(seconds=number * 97 + rng.randint(0, 60))
        device_input = {
            "addr": addr,
            "name": f"{prefix} {site[5:]} #{number}",
            "serial": f"{rng.choice(('21', '22', '23', '24'))}{number:07d}",
            "description": f"{rng.choice(_FLOORS)} {rng.choice(_PLACES)}",
            "deviceTypeId": type_id,
            "tags": [site, family_tag],
            "initialConfig": config,
            "location": location,
            "certEnforcesDtls": addressing == "imei" and rng.random() < 0.5,
        }
        devices.append((device_input, format_instant(created)))
    return devices
