"""One ``lab bench`` measurement, and the one-line reason a skipped one gives.

Shared by :mod:`lab.bench` and :mod:`lab.bench_transfer`, so neither imports the other.
"""

from __future__ import annotations

import statistics
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.errors import LabError


@dataclass
class Measurement:
    """Samples of one timing (seconds unless ``unit`` says otherwise)."""

    name: str
    samples: list[float] = field(default_factory=list)
    unit: str = "s"
    skipped: str = ""
    extra: dict[str, float | str] = field(default_factory=dict)

    @property
    def minimum(self) -> float:
        """Fastest sample."""
        return min(self.samples) if self.samples else float("nan")

    @property
    def median(self) -> float:
        """Median sample."""
        return statistics.median(self.samples) if self.samples else float("nan")

    def as_dict(self) -> dict[str, object]:
        """JSON form with the derived statistics (null when skipped: JSON has no NaN)."""
        data = asdict(self)
        data.update(min=self.minimum if self.samples else None, median=self.median if self.samples else None)
        return data


def one_line(exc: BaseException) -> str:
    """The one-line reason of an error (a LabError's message without its evidence)."""
    if isinstance(exc, subprocess.CalledProcessError):
        output = (exc.stderr or "") + (exc.stdout or "")
        lines = [line for line in str(output).splitlines() if line.strip()]
        return f"`{Path(str(exc.cmd[0])).name} {exc.cmd[1]}` exited {exc.returncode}: " + (
            lines[-1] if lines else "no output"
        )
    text = exc.message if isinstance(exc, LabError) else str(exc)
    return (text.strip().splitlines() or [type(exc).__name__])[0]
