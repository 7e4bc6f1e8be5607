"""The adaptive pace (provisioner/pace.py): unit facts, and a simulated platform.

The simulation runs the real ``Pace`` on a simulated clock against a platform with a
token-bucket rate limit (the sandbox's rule: a bucket of one second's requests, 429 with
a whole-second Retry-After) and a fixed latency, with the runner's rules around it: at
most ``window()`` requests in flight, a request answered 429 sent again after its
Retry-After. It is exact and takes no real time, so it can show what the pace does over
a minute of a platform that changes its limit.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from provisioner.pace import START, Pace, PaceStats
from provisioner.platform import parse_retry_after

# --- unit facts ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def round_trip(pace: Pace, clock: Clock, seconds: float) -> None:
    """The window full of requests, all answered after ``seconds``."""
    sent = [pace.sent() for _ in range(pace.window())]
    clock.now += seconds
    for at in sent:
        pace.answered(at)


def test_the_window_starts_small_and_doubles_per_round_trip_while_answers_are_fast() -> None:
    clock = Clock()
    pace = Pace(ceiling=100, clock=clock)
    assert pace.window() == START
    round_trip(pace, clock, 0.05)
    round_trip(pace, clock, 0.05)
    assert pace.window() == 4 * START
    for _ in range(3):
        round_trip(pace, clock, 0.05)
    assert pace.window() == 100  # the ceiling


def test_the_window_does_not_grow_when_the_senders_do_not_fill_it() -> None:
    clock = Clock()
    pace = Pace(ceiling=32, clock=clock)
    for _ in range(50):  # one request at a time: the window is not what limits
        at = pace.sent()
        clock.now += 0.05
        pace.answered(at)
    assert pace.window() == START


def test_slow_answers_stop_the_growth() -> None:
    clock = Clock()
    pace = Pace(ceiling=100, clock=clock)
    round_trip(pace, clock, 0.02)  # the fastest: 20 ms
    assert pace.window() == 2 * START
    for _ in range(3):
        round_trip(pace, clock, 0.5)  # far slower than twice the fastest: it queues
    assert pace.window() == 2 * START


def test_a_limit_halves_the_window_once_per_episode_and_paces_at_what_got_through() -> None:
    clock = Clock()
    pace = Pace(ceiling=32, clock=clock)
    for _ in range(30):  # 30 answers in the last second
        at = pace.sent()
        clock.now += 1 / 30
        pace.answered(at)
    burst = [pace.sent() for _ in range(4)]  # sent before the platform said no
    clock.now += 0.01
    for at in burst:
        pace.limited(at, retry_after=1, rate_limit=True)
    assert pace.window() == START // 2  # one cut for the four answers
    stats = pace.stats()
    assert stats.rate_limited == 4
    assert stats.limit_found == pytest.approx(0.9 * 30, rel=0.05)
    assert stats.waited == pytest.approx(1.0)  # one hold, not four
    assert "waiting 1 s as the platform asked" in pace.describe()


def test_the_retry_after_holds_every_request_and_the_pace_spaces_them() -> None:
    clock = Clock()
    pace = Pace(clock=clock)
    for _ in range(10):
        at = pace.sent()
        clock.now += 0.1
        pace.answered(at)
    at = pace.sent()
    pace.limited(at, retry_after=2, rate_limit=True)
    starts = []
    for _ in range(3):
        pace.turn(clock.sleep)
        starts.append(clock.now)
    assert starts[0] == pytest.approx(102.0 + 1.0)  # the hold
    rate = pace.stats().limit_found
    assert rate is not None
    assert starts[1] - starts[0] == pytest.approx(1 / rate)


def test_a_stop_during_the_platforms_wait_sends_nothing() -> None:
    clock = Clock()
    pace = Pace(clock=clock)
    pace.limited(pace.sent(), retry_after=5, rate_limit=True)
    assert pace.turn(lambda seconds: True) is True


def test_the_pace_does_not_hold_a_request_past_its_latest_but_the_platforms_wait_does() -> None:
    # An outage's last try is made at its bound, not a pace interval after it.
    clock = Clock()
    pace = Pace(max_rps=0.5, clock=clock)  # one request every 2 s
    pace.turn(clock.sleep)
    pace.answered(pace.sent())
    pace.turn(clock.sleep, latest=clock.now + 0.5)
    assert clock.now == pytest.approx(100.5)
    pace.limited(pace.sent(), retry_after=3, rate_limit=True)
    pace.turn(clock.sleep, latest=clock.now)
    assert clock.now >= 103.5  # the platform asked for 3 s


def test_max_rps_caps_the_pace_whatever_it_finds() -> None:
    clock = Clock()
    pace = Pace(max_rps=10, clock=clock)
    starts = []
    for _ in range(25):
        pace.turn(clock.sleep)
        starts.append(clock.now)
        pace.answered(pace.sent())
    assert max(_in_any_second(starts)) <= 11


def test_the_statistics_count_every_request() -> None:
    clock = Clock()
    pace = Pace(clock=clock)
    for _ in range(4):
        at = pace.sent()
        clock.now += 0.5
        pace.answered(at)
    stats = pace.stats()
    assert (stats.requests, stats.seconds, stats.per_second) == (4, 2.0, 2.0)
    assert stats.to_dict()["requests"] == 4
    assert stats.words() == ""  # nothing held the run back


def test_the_words_name_what_held_the_run_back() -> None:
    stats = PaceStats(20, 4.0, 3, rate_limited=2, waited=1.0, limit_found=4.5)
    assert stats.words() == (
        "the platform limited the rate 2 times: 20 requests in 4.0 s (5.0 a second, "
        "up to 3 at once), 1.0 s waited as it asked"
    )


@pytest.mark.parametrize(
    ("value", "date", "seconds"),
    [
        ("3", None, 3.0),
        ("0", None, 0.0),
        ("-1", None, None),
        ("soon", None, None),
        ("nan", None, None),
        # An HTTP date counts from the answer's own Date: the platform's clock both times.
        ("Wed, 21 Oct 2015 07:28:05 GMT", "Wed, 21 Oct 2015 07:28:00 GMT", 5.0),
        ("Wednesday, 21-Oct-15 07:28:05 GMT", "Wed, 21 Oct 2015 07:28:00 GMT", 5.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", "Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # past
    ],
)
def test_retry_after_in_seconds_and_as_an_http_date(
    value: str, date: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(value, date) == seconds


def _in_any_second(starts: list[float]) -> list[int]:
    """How many starts each one-second window beginning at a start holds."""
    return [sum(t <= u < t + 1 for u in starts) for t in starts]


# --- a simulated platform --------------------------------------------------------------------


@dataclass
class Simulated:
    """What a simulated run saw: answer times of the requests that went through, and when
    each 429 and each send happened."""

    done: list[float] = field(default_factory=list)
    limited: list[float] = field(default_factory=list)
    sends: list[float] = field(default_factory=list)
    windows: list[tuple[float, int]] = field(default_factory=list)

    def rate(self, start: float, end: float) -> float:
        return sum(start <= t < end for t in self.done) / (end - start)

    def limited_share(self, start: float, end: float) -> float:
        sends = sum(start <= t < end for t in self.sends)
        return sum(start <= t < end for t in self.limited) / max(sends, 1)


def simulate(
    *,
    latency: float,
    limit: Callable[[float], float | None],
    requests: int,
    ceiling: int = 32,
    until: float = math.inf,
) -> Simulated:
    """``requests`` requests (or as many as fit ``until`` seconds) through the pace, at
    most ``ceiling`` in flight, against a platform whose rate limit at time t is
    ``limit(t)`` (None: none)."""
    now = [0.0]
    pace = Pace(ceiling=ceiling, clock=lambda: now[0])
    seen = Simulated()
    events: list[tuple[float, int, str, float]] = []  # (time, order, what, sent at)
    order = 0
    bucket = {"rate": None, "tokens": 0.0, "at": 0.0}
    busy, left = 0, requests

    def push(at: float, what: str, sent: float = 0.0) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (at, order, what, sent))

    def take_token() -> int | None:
        """The sandbox's bucket: None if within the limit, else Retry-After seconds."""
        rate = limit(now[0])
        if rate is None:
            bucket["rate"] = None
            return None
        if bucket["rate"] != rate:
            bucket.update(rate=rate, tokens=max(rate, 1.0))
        else:
            refill = (now[0] - bucket["at"]) * rate
            bucket["tokens"] = min(max(rate, 1.0), bucket["tokens"] + refill)
        bucket["at"] = now[0]
        if bucket["tokens"] >= 1:
            bucket["tokens"] -= 1
            return None
        return max(1, math.ceil((1 - bucket["tokens"]) / rate))

    def dispatch() -> None:
        nonlocal busy, left
        while left and busy < min(ceiling, pace.window()) and now[0] < until:
            busy += 1
            left -= 1
            push(pace.reserve()[0], "send")

    dispatch()
    while events:
        now[0], _, what, sent = heapq.heappop(events)
        if what == "send":
            push(now[0] + latency, "answer", pace.sent())
            seen.sends.append(now[0])
            continue
        if what == "retry":
            push(pace.reserve()[0], "send")
            continue
        wait = take_token()
        if wait is None:
            pace.answered(sent)
            seen.done.append(now[0])
            busy -= 1
        else:
            pace.limited(sent, retry_after=wait, rate_limit=True)
            seen.limited.append(now[0])
            push(now[0] + wait, "retry")  # the client's pause, at least the Retry-After
        seen.windows.append((now[0], pace.window()))
        dispatch()
    return seen


def test_a_platform_limited_to_30_a_second_is_followed_with_few_429s() -> None:
    seen = simulate(latency=0.02, limit=lambda t: 30.0, requests=600)
    phase = seen.done[-1] - seen.done[0]
    assert 600 / phase >= 24  # the target: >= 24 creates/s
    assert len(seen.limited) <= 0.10 * len(seen.sends)  # <= 10 % answered 429


def test_an_unlimited_platform_gets_the_whole_window_within_a_few_round_trips() -> None:
    seen = simulate(latency=0.05, limit=lambda t: None, requests=600, ceiling=32)
    reached = next(t for t, window in seen.windows if window == 32)
    assert reached < 0.5  # ten round trips
    # 32 in flight at 50 ms: 640 a second; the ramp costs little of it.
    assert 600 / seen.done[-1] >= 0.75 * 640


def test_a_limit_that_starts_and_ends_mid_run_is_followed_down_and_back_up() -> None:
    def limit(t: float) -> float | None:
        return 30.0 if 20 <= t < 50 else None

    seen = simulate(latency=0.05, limit=limit, requests=10**9, until=110)
    assert seen.rate(10, 20) >= 500  # unlimited: the whole window
    assert seen.rate(25, 50) <= 31  # followed down to the limit ...
    assert seen.rate(25, 50) >= 24  # ... and not far below it
    assert seen.limited_share(20, 50) <= 0.10
    assert seen.rate(95, 110) >= 500  # and back up to the whole window
