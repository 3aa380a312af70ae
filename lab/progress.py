"""Step status lines with timing, in the manner of kind's ``status.Start``/``End``.

On a terminal a step shows as it starts and is rewritten with ✓/✗; in CI logs every
line is plain and final, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    """Prints one line per step with its elapsed time."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.timings: dict[str, float] = {}
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def info(self, message: str) -> None:
        """A line of narration between steps."""
        if not self.quiet:
            print(message, file=self.stream, flush=True)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a named step; print ✓ on success and ✗ (then re-raise) on failure."""
        start = time.monotonic()
        if self._tty and not self.quiet:
            print(f" • {name} ...", end="\r", file=self.stream, flush=True)
        ok = False
        try:
            yield
            ok = True
        finally:
            elapsed = time.monotonic() - start
            self.timings[name] = elapsed
            if not self.quiet:
                mark = "✓" if ok else "✗"
                clear = "\x1b[2K" if self._tty else ""
                print(f"{clear} {mark} {name} ({elapsed:.1f}s)", file=self.stream, flush=True)
