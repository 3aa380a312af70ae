"""The poll loop every cluster wait runs: quick first polls, confirming polls a full interval apart."""

from __future__ import annotations

import pytest

import lab.deadline
from lab.deadline import FIRST_PAUSE, Deadline, wait_until
from lab.errors import LabError


def polls(answers: list[list[str]]):
    """A ``pending`` callback answering from ``answers`` in turn (the last one repeats)."""
    left = list(answers)
    return lambda: left.pop(0) if len(left) > 1 else left[0]


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(lab.deadline.time, "sleep", slept.append)
    return slept


def test_pauses_start_short_and_double_up_to_the_interval(pauses: list[float]) -> None:
    wait_until(polls([["x"]] * 6 + [[]]), Deadline(60), "thing", interval=3.0)
    assert pauses == [FIRST_PAUSE, 0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_wait_that_is_done_at_once_does_not_pause(pauses: list[float]) -> None:
    wait_until(polls([[]]), Deadline(60), "thing", interval=5.0)
    assert pauses == []


def test_confirming_polls_are_a_full_interval_apart(pauses: list[float]) -> None:
    # Ready once, then not again (crash-looping), then ready three polls in a row: once a poll
    # has passed, the wait never goes back to quick polls.
    wait_until(polls([["x"], [], ["x"], [], [], []]), Deadline(60), "pods", interval=5.0, consecutive=3)
    assert pauses == [FIRST_PAUSE, 5.0, 5.0, 5.0, 5.0]


def test_the_deadline_ends_the_wait_with_what_is_left() -> None:
    with pytest.raises(LabError) as ended:
        wait_until(polls([["pod a not ready"]]), Deadline(0.3), "pods in ns", interval=0.1)
    assert "pods in ns after 0s" in str(ended.value)
    assert ended.value.details == ["pod a not ready"]
