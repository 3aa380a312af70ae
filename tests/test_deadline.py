"""Waiting: what is ready soon is seen soon; stability still spans whole intervals."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from lab.deadline import Deadline, wait_until
from lab.errors import LabError


def ready_after(seconds: float) -> tuple[list[float], Callable[[], list[str]]]:
    """A condition that holds from ``seconds`` on; returns (poll times, pending)."""
    start = time.monotonic()
    polls: list[float] = []

    def pending() -> list[str]:
        polls.append(time.monotonic() - start)
        return [] if polls[-1] >= seconds else ["not yet"]

    return polls, pending


def test_a_condition_true_soon_is_seen_soon_however_long_the_interval() -> None:
    polls, pending = ready_after(0.3)
    started = time.monotonic()
    wait_until(pending, Deadline(30), "never", interval=5.0)
    assert time.monotonic() - started < 2.0, polls
    # Soon, then less and less often: the pauses double.
    gaps = [b - a for a, b in zip(polls, polls[1:], strict=False)]
    assert gaps == sorted(gaps) and len(polls) >= 2


def test_polls_never_come_faster_than_the_interval_once_it_is_reached() -> None:
    polls, pending = ready_after(2.2)
    wait_until(pending, Deadline(30), "never", interval=0.5)
    gaps = [b - a for a, b in zip(polls, polls[1:], strict=False)]
    assert all(gap >= 0.45 for gap in gaps[1:]), gaps
    assert all(gap < 1.5 for gap in gaps), gaps


def test_consecutive_polls_stay_a_whole_interval_apart() -> None:
    polls, pending = ready_after(0.0)
    wait_until(pending, Deadline(30), "never", interval=0.4, consecutive=3)
    gaps = [b - a for a, b in zip(polls, polls[1:], strict=False)]
    assert len(polls) == 3 and all(gap >= 0.38 for gap in gaps), gaps


def test_stability_is_timed_from_the_first_good_poll() -> None:
    polls, pending = ready_after(0.3)
    started = time.monotonic()
    wait_until(pending, Deadline(30), "never", interval=2.0, consecutive=2)
    # Seen ready soon (not a whole interval after the start), then one interval of stability.
    assert time.monotonic() - started < 3.5, polls
    assert polls[-1] - polls[-2] >= 1.9, polls


def test_the_deadline_still_ends_the_wait_with_what_is_pending() -> None:
    _, pending = ready_after(60)
    with pytest.raises(LabError) as failed:
        wait_until(pending, Deadline(0.5), "still waiting", interval=0.2)
    assert failed.value.details == ["not yet"]
