"""The one executor: what every run (apply's rows, undo's deletes and restores) gets from it.

Each test hands the runner small requests whose ``send`` raises what the platform
client raises, and reads the journal back to see what a later run would find.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from provisioner.actions import StopKind
from provisioner.events import Events
from provisioner.journal import Journal, read_journal
from provisioner.platform import (
    AuthError,
    Conflict,
    PlatformClient,
    PlatformError,
    RateLimited,
    ServerError,
    UnknownOutcome,
)
from provisioner.runner import FAILED, Outcome, Request, Runner


class Made(Request):
    """A create that answers as told: ``answers`` in turn (an exception is raised)."""

    def __init__(self, key: str, *answers: Any, there: bool = False) -> None:
        self.kind, self.key, self.row = "device", key, 2
        self.answers = list(answers)
        self.there = there  # what a lookup after a lost answer finds
        self.sent = 0
        self.outcome: Outcome | None = None

    def send(self) -> Outcome:
        self.sent += 1
        answer = self.answers.pop(0) if self.answers else "created"
        if isinstance(answer, Exception):
            raise answer
        return Outcome(answer, 7, answer)

    def find_after_lost(self) -> Outcome | None:
        return Outcome("created", 7, "created (confirmed)") if self.there else None

    def after_conflict(self, exc: Conflict, lost: int) -> Outcome | None:
        return Outcome("exists", 7, "there before") if not lost else None

    def finish(self, outcome: Outcome) -> None:
        self.outcome = outcome


class Heard(Events):
    def __init__(self) -> None:
        self.progress_seen: list[tuple[int, int, int]] = []

    def progress(self, done: int, total: int, failed: int) -> None:
        self.progress_seen.append((done, total, failed))


def runner(tmp_path: Path, name: str = "j", **options: Any) -> tuple[Runner, Path]:
    client = PlatformClient("http://127.0.0.1:9", "tok-secret", sleep=lambda s: None)
    path = tmp_path / f"{name}.jsonl"
    journal = Journal(path, sheet="s.csv", platform=client.url, fingerprint="f")
    return Runner(client, journal, stop=threading.Event(), **options), path


def lines(path: Path) -> list[tuple[str, str]]:
    import json

    return [
        (r["event"], r.get("status", ""))
        for r in map(json.loads, path.read_text().splitlines())
        if r["event"] not in ("start", "end")
    ]


def test_a_lost_answer_is_settled_by_the_platform_before_anything_is_sent_again(
    tmp_path: Path,
) -> None:
    run, path = runner(tmp_path)
    request = Made("A", UnknownOutcome("no answer"), there=True)
    run.run([request])
    run.journal.close()
    assert request.sent == 1  # found on the platform: never sent twice
    assert request.outcome is not None and request.outcome.status == "created"
    assert lines(path) == [("intent", ""), ("unknown", "unknown"), ("done", "created")]
    assert read_journal(path).unresolved() == []


def test_a_lost_answer_not_found_is_sent_again_and_a_5xx_counts_as_lost(tmp_path: Path) -> None:
    run, path = runner(tmp_path)
    request = Made("A", ServerError("502", status=502), UnknownOutcome("no answer"))
    run.run([request])
    run.journal.close()
    assert request.sent == 3
    assert [e for e, _ in lines(path)] == [
        "intent",
        "unknown",
        "intent",
        "unknown",
        "intent",
        "done",
    ]


def test_a_409_after_a_lost_answer_is_not_taken_for_somebody_elses_device(
    tmp_path: Path,
) -> None:
    run, _ = runner(tmp_path)
    first = Made("A", Conflict("taken", status=409))
    again = Made("B", UnknownOutcome("lost"), Conflict("taken", status=409))
    run.run([first, again])
    assert first.outcome is not None and first.outcome.status == "exists"
    assert again.outcome is not None and again.outcome.failed


def test_a_refused_token_stops_the_run_and_begins_no_other_request(tmp_path: Path) -> None:
    run, path = runner(tmp_path, concurrency=1)
    first = Made("A", AuthError("token refused", status=401))
    rest = [Made(f"K{i}") for i in range(5)]
    run.run([first, *rest])
    assert run.stop_kind == StopKind.REFUSED
    assert "refused the token" in run.stopped
    assert first.outcome is None  # no outcome: the next run settles its intent
    assert all(r.sent == 0 for r in rest)


def test_the_first_rows_failing_alike_stop_the_run_unless_keep_going(tmp_path: Path) -> None:
    bad = [Made(f"K{i}", PlatformError("unknown deviceTypeId", status=422)) for i in range(30)]
    run, _ = runner(tmp_path, concurrency=1, same_failures=10)
    run.run(bad)
    assert run.stop_kind == StopKind.SAME_FAILURE
    assert sum(r.sent for r in bad) == 10
    again = [Made(f"K{i}", PlatformError("unknown deviceTypeId", status=422)) for i in range(30)]
    keep, _ = runner(tmp_path, "keep-going", concurrency=1, same_failures=None)
    keep.run(again)
    assert keep.stop_kind == StopKind.NONE and all(r.sent == 1 for r in again)


def test_a_journal_that_cannot_be_written_stops_before_the_request(tmp_path: Path) -> None:
    run, _ = runner(tmp_path, concurrency=1)
    run.journal.close()  # every write now fails as a full disk would
    request = Made("A")
    run.run([request, Made("B")])
    assert run.stop_kind == StopKind.JOURNAL
    assert request.sent == 0 and request.outcome is None


def test_progress_counts_every_request_and_its_failures(tmp_path: Path) -> None:
    heard = Heard()
    run, _ = runner(tmp_path, concurrency=2, events=heard, same_failures=None)
    requests = [Made("A"), Made("B", PlatformError("no", status=400)), Made("C")]
    run.expect(len(requests))
    run.run(requests)
    assert heard.progress_seen[0] == (0, 3, 0)
    assert max(heard.progress_seen) == (3, 3, 1)
    assert sum(1 for r in requests if r.outcome and r.outcome.status == FAILED) == 1


def test_the_bar_ends_at_what_the_summary_counts_when_a_stop_leaves_a_request(
    tmp_path: Path,
) -> None:
    # The request whose refusal stops the run has no outcome (the next run settles it):
    # a bar at 3/5 beside "created 2" would be one too many.
    heard = Heard()
    run, _ = runner(tmp_path, concurrency=1, events=heard)
    requests = [Made("A"), Made("B"), Made("C", AuthError("refused", status=401)), Made("D")]
    run.expect(len(requests))
    run.run(requests)
    ended = sum(1 for r in requests if r.outcome is not None)
    assert ended == 2 and heard.progress_seen[-1] == (ended, 4, 0)


def test_a_bug_in_a_request_fails_its_row_without_the_token(tmp_path: Path) -> None:
    class Broken(Made):
        def send(self) -> Outcome:
            raise RuntimeError("boom with tok-secret inside")

    run, _ = runner(tmp_path)
    request = Broken("A")
    run.run([request])
    assert request.outcome is not None and request.outcome.failed
    assert "unexpected error" in request.outcome.message
    assert "tok-secret" not in request.outcome.message


def test_a_run_that_sends_nothing_shows_no_bar(tmp_path: Path) -> None:
    heard = Heard()
    run, _ = runner(tmp_path, events=heard)
    run.expect(0)
    run.run([])
    assert heard.progress_seen == []


def test_a_rate_limit_names_the_option_only_where_the_command_has_it(tmp_path: Path) -> None:
    limited = RateLimited("429 after every retry", status=429)
    apply_like, _ = runner(tmp_path, "apply", slower="--max-rps")
    undo_like, _ = runner(tmp_path, "undo")
    assert apply_like.why(limited).endswith("run again, or use --max-rps")
    assert undo_like.why(limited).endswith("run again")
