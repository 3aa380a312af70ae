"""Wait budgets: a deadline and the poll loop every cluster wait runs under it."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lab.errors import LabError


@dataclass
class Deadline:
    """A point in time the current wait must finish by."""

    seconds: float
    start: float = 0.0

    def __post_init__(self) -> None:
        self.start = time.monotonic()

    @property
    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.start + self.seconds - time.monotonic())

    @property
    def passed(self) -> bool:
        """Whether the time is up."""
        return self.remaining <= 0


# The first pause of a wait; it doubles on every poll up to the wait's interval.
FIRST_PAUSE = 0.25


def growing_pauses(interval: float) -> Iterator[float]:
    """Pauses between polls: :data:`FIRST_PAUSE`, doubling on each, then ``interval`` for good."""
    pause = min(FIRST_PAUSE, interval)
    while True:
        yield pause
        pause = min(pause * 2, interval)


def wait_until(
    pending: Callable[[], list[str]],
    deadline: Deadline,
    what: str,
    interval: float = 3.0,
    *,
    consecutive: int = 1,
    advice: str = "raise LAB_CLUSTER_TIMEOUT or run `lab doctor`",
) -> None:
    """Poll ``pending`` (what is still not right) until it is empty or the deadline passes.

    The first polls come quickly and the pause doubles up to ``interval``: most waits end
    within a second or two, and a fixed interval made each of them last a whole interval.
    ``consecutive``: how many polls in a row must find nothing pending (a pod that is Ready
    once may still be crash-looping); those confirming polls are a full ``interval`` apart.
    """
    streak = 0
    pauses = growing_pauses(interval)
    while True:
        left = pending()
        streak = streak + 1 if not left else 0
        if streak >= consecutive:
            return
        if deadline.passed:
            raise LabError(f"{what} after {deadline.seconds:.0f}s; {advice}", left[:15])
        if streak:
            pauses = itertools.repeat(interval)
        time.sleep(min(next(pauses), max(deadline.remaining, 0.1)))
