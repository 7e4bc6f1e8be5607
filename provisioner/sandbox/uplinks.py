"""Simulated uplinks: every device that is not silent sends parsed data at a steady rhythm.

A device is silent when a stable hash of its addr falls below ``silent_share``, so the
same devices are silent in every run, and a test can ask ``is_silent`` which ones.
A device's first uplink comes about one interval after it was created, then one every
interval, each a little late (up to a tenth of the interval), as radio uplinks are.
A sandbox opened again on a ``--db`` file takes up each device's rhythm and does not
send what it missed while it was not running.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import threading
import time
from datetime import UTC, datetime

from provisioner.sandbox.store import SandboxStore

JITTER_SHARE = 0.1  # an uplink comes up to this share of the interval after its slot
MAX_POLL_SECONDS = 1.0  # new devices are noticed within this (or half the interval)


def _fraction(addr: str, part: int) -> float:
    """A stable number in [0, 1) from the addr (any case); ``part`` picks one of four."""
    digest = hashlib.sha256(addr.lower().encode()).digest()
    return int.from_bytes(digest[8 * part : 8 * part + 8], "big") / 2**64


def is_silent(addr: str, silent_share: float) -> bool:
    """Whether the device with ``addr`` never sends simulated uplinks."""
    return _fraction(addr, 0) < silent_share


def reading(addr: str, created_at: str, received: datetime) -> dict[str, float]:
    """What a water meter's parser makes of an uplink: a growing count, a draining battery."""
    days = max(0.0, (received - datetime.fromisoformat(created_at)).total_seconds() / 86400)
    installed_m3 = 100 * _fraction(addr, 1)
    per_day_m3 = 0.05 + 0.5 * _fraction(addr, 2)
    return {
        "volume_m3": round(installed_m3 + per_day_m3 * days, 3),
        "battery_V": round(max(3.0, 3.6 - 0.0005 * days), 3),
    }


class UplinkSimulator:
    """A background thread that stores the simulated uplinks of the devices as they fall due."""

    def __init__(self, store: SandboxStore, interval: float, silent_share: float) -> None:
        self._store = store
        self._interval = interval
        self._silent_share = silent_share
        self._random = random.Random()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # (due, slot, device id, addr, createdAt): due is the slot plus its jitter, in epoch seconds.
        self._due: list[tuple[float, float, int, str, str]] = []
        self._last_device_id = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sandbox-uplinks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop and wait for the thread: no write follows (the store may be closed next)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        poll = min(self._interval / 2, MAX_POLL_SECONDS)
        while True:
            self._add_new_devices(time.time())
            self._send_due(time.time())
            wait = poll
            if self._due:
                wait = min(poll, max(0.0, self._due[0][0] - time.time()))
            if self._stopping.wait(wait):
                return

    def _schedule(self, slot: float, now: float, device_id: int, addr: str, created: str) -> None:
        if slot < now:  # keep the device's rhythm, without the uplinks it missed
            slot += math.ceil((now - slot) / self._interval) * self._interval
        due = slot + self._random.uniform(0, JITTER_SHARE * self._interval)
        heapq.heappush(self._due, (due, slot, device_id, addr, created))

    def _add_new_devices(self, now: float) -> None:
        for device_id, addr, created in self._store.new_devices(self._last_device_id):
            self._last_device_id = device_id
            if not is_silent(addr, self._silent_share):
                # createdAt is on the sandbox's clock, which may differ from this machine's.
                skew = self._store.clock().timestamp() - time.time()
                first = datetime.fromisoformat(created).timestamp() - skew + self._interval
                self._schedule(first, now, device_id, addr, created)

    def _send_due(self, now: float) -> None:
        sent: list[tuple[float, int, str, str]] = []
        while self._due and self._due[0][0] <= now:
            _, slot, device_id, addr, created = heapq.heappop(self._due)
            sent.append((slot, device_id, addr, created))
        if not sent:
            return
        received = datetime.fromtimestamp(now, UTC)
        gone = self._store.add_parsed_data_many(
            (device_id, reading(addr, created, received)) for _, device_id, addr, created in sent
        )
        for slot, device_id, addr, created in sent:
            if device_id not in gone:
                self._schedule(slot + self._interval, now, device_id, addr, created)
