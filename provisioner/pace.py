"""How fast the platform is asked: one adaptive controller for every request stream.

The client asks ``Pace`` for its turn before each request and tells it how each one
was answered; the pools that send many at once (the runner's, verify's) keep at most
``window()`` in flight. Nobody has to know the platform's limits beforehand.

The scheme, and why:

- **Requests in flight: slow start, then additive increase, multiplicative decrease**
  (TCP's congestion control, RFC 5681). The window starts at ``START`` and grows by one
  per clean answer (doubling per round trip) up to the ceiling (``--concurrency``), later
  by one per round trip; it grows only while answers stay fast (no slower than twice the
  fastest seen, plus a little) and while the senders fill it. A 429, a 503 or a timeout
  halves it. This alone finds the concurrency of an unlimited platform within a few
  round trips.
- **The rate, once the platform limits it: pace at the rate it accepts** (BBR's idea:
  estimate what gets through and send at it). Concurrency cannot hold a rate limit: at
  20 ms a single request in flight already makes 50 requests a second. So the first 429
  sets a pace of 90 % of the answers that got through in the last second or two. Every
  clean second after a short hold the pace rises, gently near the rate that was limited
  and faster away from it (CUBIC's shape), so a limit that is lifted mid-run is followed
  back up; once the pace is above what the window can send anyway, pacing ends.
- **Retry-After is honoured for the whole run**, not only for the request that got it:
  the platform asked this client to wait, so no request starts before that time.
- One cut per episode: the answers to requests sent before a cut do not cut again.
- ``--max-rps`` stays a hard cap: starts spaced 1/R apart, whatever the pace.

Thread-safe; ``clock`` and ``sleep`` are the client's (tests inject fakes).
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Requests in flight at the start, before any answer has told how the platform copes.
START = 8
# Answers slower than this (twice the fastest, plus this much) stop the window growing.
SLOW_MARGIN_S = 0.05
# The pace after a limit: this share of what got through.
PACE_SHARE = 0.9
# How long after a cut the pace holds before it rises, at first; it grows with each cut.
HOLD_S = 2.0
HOLD_MAX_S = 16.0
# The slowest pace: a request every two seconds.
MIN_RATE = 0.5
# The longest a Retry-After is waited for at once (a longer one fails the request).
MAX_RETRY_AFTER_S = 60.0
# The span over which the rate that got through is counted.
ACCEPT_SPAN_S = 2.0
# The span over which the most requests in flight is remembered (is the window used?).
PEAK_SPAN_S = 1.0


@dataclass(frozen=True)
class PaceStats:
    """What the requests of a run met: ``to_dict()`` goes into the JSON report."""

    requests: int = 0
    seconds: float = 0.0  # from the first request sent to the last answer
    most_at_once: int = 0  # the most requests in flight at once
    rate_limited: int = 0  # answers 429
    overloaded: int = 0  # answers 503 and timeouts
    waited: float = 0.0  # seconds no request could start: the platform's Retry-After
    limit_found: float | None = None  # the pace the platform's limit led to (requests/s)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "per_second": round(self.per_second, 1),
            "most_at_once": self.most_at_once,
            "rate_limited": self.rate_limited,
            "overloaded": self.overloaded,
            "waited_seconds": round(self.waited, 2),
            "paced_at": None if self.limit_found is None else round(self.limit_found, 1),
        }

    def words(self) -> str:
        """One line for the installer when the platform held the run back, else ""."""
        if not (self.rate_limited or self.overloaded):
            return ""
        met = []
        if self.rate_limited:
            met.append(f"limited the rate {_times(self.rate_limited)}")
        if self.overloaded:
            met.append(f"was busy {_times(self.overloaded)}")
        line = (
            f"the platform {' and '.join(met)}: {self.requests} requests in "
            f"{self.seconds:.1f} s ({self.per_second:.1f} a second, up to "
            f"{self.most_at_once} at once)"
        )
        if self.waited >= 0.05:
            line += f", {self.waited:.1f} s waited as it asked"
        return line


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


class Pace:
    """The adaptive controller: a concurrency window, a pace once limited, the waits."""

    def __init__(
        self,
        *,
        ceiling: int = 64,
        max_rps: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ceiling < 1:
            raise ValueError("the concurrency ceiling must be at least 1")
        if max_rps is not None and max_rps <= 0:
            raise ValueError("the request rate cap must be above 0")
        self.ceiling = ceiling
        self.max_rps = max_rps
        self._clock = clock
        self._lock = threading.Lock()
        self._window = float(min(START, ceiling))
        self._threshold = float(ceiling)  # slow start below it, additive increase above
        self._rate: float | None = None  # requests per second; None: not paced
        self._next = 0.0  # the earliest start of the next request (pace, --max-rps)
        self._hold_until = 0.0  # Retry-After: no request starts before this
        self._fastest = math.inf
        self._last_cut = -math.inf
        self._cuts = 0
        self._limited_at: float | None = None  # the pace when the platform last limited
        self._risen = 0.0  # when the pace last rose
        self._clean: collections.deque[float] = collections.deque()  # answer times
        self._in_flight = 0
        self._peak, self._peak_at = 0, -math.inf  # the most in flight lately
        # Statistics
        self._requests = 0
        self._first = math.inf
        self._last = -math.inf
        self._most = 0
        self._rate_limited = 0
        self._overloaded = 0
        self._waited = 0.0

    # --- what the pools read ----------------------------------------------------------------

    def window(self) -> int:
        """How many requests may be in flight now."""
        return max(1, int(self._window))

    def describe(self) -> str:
        """The live line's words: "8 at once", "1 at once, 27 requests/s" once paced,
        "waiting 2 s as the platform asked"."""
        with self._lock:
            now = self._clock()
            if self._hold_until > now:
                return f"waiting {math.ceil(self._hold_until - now)} s as the platform asked"
            # In flight lately, not the window: a paced run has one at a time.
            text = f"{max(1, self._peak)} at once"
            if self._rate is not None:
                text += f", {self._rate:.0f} requests/s"
            return text

    def stats(self) -> PaceStats:
        """What the requests met, since the client was made (the whole command)."""
        with self._lock:
            return PaceStats(
                requests=self._requests,
                seconds=max(0.0, self._last - self._first) if self._requests else 0.0,
                most_at_once=self._most,
                rate_limited=self._rate_limited,
                overloaded=self._overloaded,
                waited=self._waited,
                limit_found=self._limited_at,
            )

    # --- what the client calls around each request -------------------------------------------

    def turn(self, sleep: Callable[[float], object], latest: float | None = None) -> bool:
        """Wait for this request's turn: the platform's Retry-After, the pace, --max-rps.
        True: ``sleep`` said to stop during the platform's Retry-After (the request is
        not to be sent; a stop during a pace's short wait lets it go, it is in flight).
        ``latest``: the pace does not hold the request past it (an outage's last try is
        made at its bound); the platform's Retry-After still does."""
        start, held = self.reserve()
        now = self._clock()
        if latest is not None and not held:
            start = min(start, max(now, latest))
        for _ in range(3):  # a Retry-After that came meanwhile moves the start (bounded)
            if start > now and sleep(start - now) is True and held:
                return True
            with self._lock:
                hold = self._hold_until
            if hold <= start:
                return False
            now, start, held = start, hold, True  # waited until start; now the new hold
        return False

    def reserve(self) -> tuple[float, bool]:
        """The time this request may start (now or later), taken: (start, whether a
        Retry-After holds it)."""
        with self._lock:
            now = self._clock()
            interval = 0.0 if self._rate is None else 1.0 / self._rate
            if self.max_rps is not None:
                interval = max(interval, 1.0 / self.max_rps)
            start = max(now, self._next, self._hold_until)
            self._next = start + interval
            return start, self._hold_until > now

    def sent(self) -> float:
        """A request leaves now: its start time, for ``answered`` and ``limited``."""
        with self._lock:
            now = self._clock()
            self._requests += 1
            self._in_flight += 1
            if self._in_flight >= self._peak or now - self._peak_at > PEAK_SPAN_S:
                self._peak, self._peak_at = self._in_flight, now
            self._most = max(self._most, self._in_flight)
            self._first = min(self._first, now)
            return now

    def answered(self, sent_at: float) -> None:
        """A clean answer (anything but a limit): the window may grow, the pace rise."""
        with self._lock:
            now = self._clock()
            self._ended(now)
            latency = now - sent_at
            self._fastest = min(self._fastest, latency)
            self._clean.append(now)
            while self._clean and self._clean[0] < now - ACCEPT_SPAN_S:
                self._clean.popleft()
            fast = latency <= 2 * self._fastest + SLOW_MARGIN_S
            # Grow only a window the senders use (RFC 7661: at least half of it in flight
            # lately): a paced run, one request at a time, keeps its size.
            if fast and 2 * self._peak >= self._window:
                if self._window < self._threshold:
                    self._window += 1
                else:
                    self._window += 1 / self._window
                self._window = min(self._window, float(self.ceiling))
            if self._rate is not None:
                self._rise(now, latency)

    def limited(self, sent_at: float, *, retry_after: float | None, rate_limit: bool) -> None:
        """A 429 (``rate_limit``), a 503 or a timeout: honour the wait, cut once per episode."""
        with self._lock:
            now = self._clock()
            self._ended(now)
            if rate_limit:
                self._rate_limited += 1
            else:
                self._overloaded += 1
            if retry_after is not None and retry_after > 0:
                until = now + min(retry_after, MAX_RETRY_AFTER_S)
                if until > self._hold_until:
                    self._waited += until - max(now, self._hold_until)
                    self._hold_until = until
            if sent_at < self._last_cut:
                return  # sent before the last cut: that cut already answered it
            self._last_cut = now
            self._cuts += 1
            self._threshold = max(1.0, self._window / 2)
            self._window = self._threshold
            while self._clean and self._clean[0] < now - ACCEPT_SPAN_S:
                self._clean.popleft()
            span = max(1.0, now - self._clean[0]) if self._clean else 1.0
            got_through = len(self._clean) / span
            if got_through > 0:
                rate = PACE_SHARE * got_through
                if self._rate is not None:
                    rate = min(rate, PACE_SHARE * self._rate)
            elif self._rate is not None:
                rate = self._rate / 2
            else:
                return  # nothing got through yet: no rate to pace at; the retries back off
            self._rate = max(MIN_RATE, rate)
            self._limited_at = self._rate
            self._risen = now

    def failed(self) -> None:
        """No answer at all (the connection failed): neither clean nor a limit."""
        with self._lock:
            self._ended(self._clock())

    # --- inside -------------------------------------------------------------------------------

    def _ended(self, now: float) -> None:
        self._in_flight = max(0, self._in_flight - 1)
        self._last = max(self._last, now)

    def _rise(self, now: float, latency: float) -> None:
        """Each clean second after the hold, the pace rises: by 5 % a second at first,
        5 % more each second after (CUBIC's shape: careful near the limit, quick away
        from it); above what the window sends anyway, pacing ends."""
        assert self._rate is not None
        hold = min(HOLD_S * self._cuts, HOLD_MAX_S)
        since_cut = now - self._last_cut
        if since_cut < hold or now - self._risen < 1.0:
            return
        step = 0.05 * max(1.0, since_cut - hold)
        self._rate *= 1 + step
        self._risen = now
        if self._rate * max(latency, 1e-3) > self._window * 2:
            self._rate = None
