"""Faults the sandbox can inject, switchable while it runs.

A test may change any attribute of a running sandbox's ``faults`` at any time,
e.g. ``sandbox.faults.fail_rate = 1.0``; the next request sees the new value.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field

from provisioner.sandbox.store import MAX_PAGE_SIZE


@dataclass
class Faults:
    """Fault settings; all off by default. Rates are shares of requests, 0..1."""

    latency_ms: int = 0  # added to every request
    fail_rate: float = 0.0  # answered 500 before anything is done
    rate_limit: float | None = None  # requests per second, over it: 429 + Retry-After
    drop_after_commit_rate: float = 0.0  # creates that commit, then close without an answer
    max_page_size: int = MAX_PAGE_SIZE  # a lower clamp for ``limit``
    seed: int | None = None  # makes the random choices reproducible; read once, at creation
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)
    _bucket: float = field(init=False, repr=False, default=0.0)
    _bucket_rate: float | None = field(init=False, repr=False, default=None)
    _bucket_time: float = field(init=False, repr=False, default=0.0)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def chance(self, rate: float) -> bool:
        """True for a share ``rate`` of the calls."""
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def retry_after(self) -> int | None:
        """None if the request is within the rate limit, else whole seconds to wait (>= 1).

        A global token bucket holding one second's worth of requests; it starts
        full whenever the limit is switched on or changed.
        """
        rate = self.rate_limit
        if rate is None:
            return None
        with self._lock:
            clock = time.monotonic()
            capacity = max(rate, 1.0)
            if self._bucket_rate != rate:
                self._bucket_rate, self._bucket = rate, capacity
            else:
                self._bucket = min(capacity, self._bucket + (clock - self._bucket_time) * rate)
            self._bucket_time = clock
            if self._bucket >= 1.0:
                self._bucket -= 1.0
                return None
            return max(1, math.ceil((1.0 - self._bucket) / rate))
