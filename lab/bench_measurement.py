"""One ``lab bench`` measurement, the one-line reason a skipped one gives, and the CLI run it times.

Shared by :mod:`lab.bench`, :mod:`lab.bench_transfer` and :mod:`lab.bench_cluster`, so none
imports another.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.config import LabConfig, env_variable_for
from lab.errors import LabError

# The benchmarks `lab bench --only` chooses from, in the order they run (here, not in
# lab.bench, so the command line knows them without importing what they measure).
BENCHMARKS = ("demo", "warm-up", "transfer", "doctor", "status", "serving", "cluster")


@dataclass
class Measurement:
    """Samples of one timing (seconds unless ``unit`` says otherwise)."""

    name: str
    samples: list[float] = field(default_factory=list)
    unit: str = "s"
    skipped: str = ""
    extra: dict[str, float | str] = field(default_factory=dict)
    goal: float | None = None
    """The most the headline figure may be (in ``unit``, or in the unit ``headline_of`` names)."""
    headline_of: str = "median"
    """The figure the goal is set on: ``median``, or a key of ``extra``."""

    @property
    def minimum(self) -> float:
        """Fastest sample."""
        return min(self.samples) if self.samples else float("nan")

    @property
    def median(self) -> float:
        """Median sample."""
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def headline(self) -> float:
        """The figure the goal is set on (NaN when skipped or not measured)."""
        if self.headline_of == "median":
            return self.median
        value = self.extra.get(self.headline_of)
        return float(value) if isinstance(value, (int, float)) else float("nan")

    @property
    def goal_met(self) -> bool | None:
        """Whether the headline is at or under the goal (None: no goal, or nothing measured)."""
        if self.goal is None or self.headline != self.headline:  # NaN: skipped
            return None
        return self.headline <= self.goal

    def as_dict(self) -> dict[str, object]:
        """JSON form with the derived statistics (null when skipped: JSON has no NaN)."""
        data = asdict(self)
        data.update(min=self.minimum if self.samples else None, median=self.median if self.samples else None)
        headline = self.headline
        data.update(headline=headline if headline == headline else None, goal_met=self.goal_met)
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


def run_lab(
    config: LabConfig, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI, as a user would, against ``config``'s home and ports (``env``: instead of ours)."""
    ports = {env_variable_for("ports", name): str(port) for name, port in asdict(config.ports).items()}
    env = {**(os.environ if env is None else env), **{k: v for k, v in ports.items() if k}}
    env["LAB_HOME"] = str(config.home)
    return subprocess.run([sys.executable, "-m", "lab", "-q", *args], capture_output=True, text=True, env=env)


def last_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The last ``ERROR`` line of a finished CLI run (else its last line, else its exit code)."""
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or [f"exit {proc.returncode}"])[-1][:400]
