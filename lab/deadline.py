"""Wait budgets: a deadline and the poll loop every cluster wait runs under it."""

from __future__ import annotations

import time
from collections.abc import Callable
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


# The first pause of a wait (see wait_until).
_FIRST_PAUSE = 0.25


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

    ``consecutive``: how many polls in a row must find nothing pending (a pod that is Ready
    once may still be crash-looping); those polls are ``interval`` apart, so the stability
    they show spans the same time however soon it began. Until a poll finds nothing pending,
    the pause starts short and doubles up to ``interval``: what is ready in a second is seen
    in a second, and a long wait still polls no more often than every ``interval``.
    """
    streak = 0
    pause = min(interval, _FIRST_PAUSE)
    while True:
        left = pending()
        streak = streak + 1 if not left else 0
        if streak >= consecutive:
            return
        if deadline.passed:
            raise LabError(f"{what} after {deadline.seconds:.0f}s; {advice}", left[:15])
        time.sleep(min(interval if streak else pause, max(deadline.remaining, 0.1)))
        pause = min(interval, pause * 2)
