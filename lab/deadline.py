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
    once may still be crash-looping).
    """
    streak = 0
    while True:
        left = pending()
        streak = streak + 1 if not left else 0
        if streak >= consecutive:
            return
        if deadline.passed:
            raise LabError(f"{what} after {deadline.seconds:.0f}s; {advice}", left[:15])
        time.sleep(min(interval, max(deadline.remaining, 0.1)))
