"""Step status lines with timing, in the manner of kind's ``status.Start``/``End``.

On a terminal a step shows as it starts, counts its running time every second and is
rewritten with ✓/✗; elsewhere (CI logs, pipes) every line is plain and final, and a step
still running prints one line every 30 s, so a long build never looks like a hang.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

HEARTBEAT_SECONDS = 30.0
TTY_TICK_SECONDS = 1.0


def clock(seconds: float) -> str:
    """``42s`` or ``2m30s``."""
    whole = int(seconds)
    return f"{whole}s" if whole < 60 else f"{whole // 60}m{whole % 60:02d}s"


class Progress:
    """Prints one line per step with its elapsed time, and a heartbeat while a step runs."""

    def __init__(
        self, stream: TextIO | None = None, quiet: bool = False, heartbeat: float = HEARTBEAT_SECONDS
    ) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.heartbeat = heartbeat
        self.timings: dict[str, float] = {}
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._lock = threading.Lock()

    def _print(self, text: str, end: str = "\n") -> None:
        with self._lock:
            try:
                print(text, end=end, file=self.stream, flush=True)
            except (OSError, ValueError):
                pass  # a closed stderr must not turn progress into a failure

    def info(self, message: str) -> None:
        """A line of narration between steps."""
        if not self.quiet:
            self._print(("\x1b[2K" if self._tty else "") + message)

    @contextmanager
    def step(self, name: str, activity: str | Callable[[], str] = "", expect: str = "") -> Iterator[None]:
        """Time a named step; print ✓ on success and ✗ (then re-raise) on failure.

        Args:
            name: What the step is about, e.g. ``tool registry v3.1.2``.
            activity: What it is doing, for the heartbeat (``building from source``); a
                function is asked at each heartbeat (what a wait is still waiting for).
            expect: Said up front when the step is known to be slow (``can take minutes``).
        """
        start = time.monotonic()
        done = threading.Event()
        ticker = None
        if not self.quiet:
            first = f" • {name}" + (f": {expect}" if expect else "")
            if self._tty:
                self._print(f"{first} ...", end="\r")
            elif expect:
                self._print(first)
            ticker = threading.Thread(target=self._tick, args=(name, activity, start, done), daemon=True)
            ticker.start()
        ok = False
        try:
            yield
            ok = True
        finally:
            done.set()
            if ticker is not None:
                ticker.join()
            elapsed = time.monotonic() - start
            self.timings[name] = elapsed
            if not self.quiet:
                mark = "✓" if ok else "✗"
                clear = "\x1b[2K" if self._tty else ""
                self._print(f"{clear} {mark} {name} ({elapsed:.1f}s)")

    def overlapped(self, name: str, seconds: float, beside: str) -> None:
        """Report a step that ran in the background, with its own time and what it overlapped.

        Its time is recorded like any step's, but it is not part of the steps' sum: the
        overlapped steps' lines show their own times unchanged.
        """
        self.timings[name] = seconds
        if not self.quiet:
            self._print(("\x1b[2K" if self._tty else "") + f" ✓ {name} ({seconds:.1f}s, {beside})")

    def _tick(
        self, name: str, activity: str | Callable[[], str], start: float, done: threading.Event
    ) -> None:
        interval = TTY_TICK_SECONDS if self._tty else self.heartbeat
        while not done.wait(interval):
            elapsed = clock(time.monotonic() - start)
            doing = activity() if callable(activity) else activity
            if self._tty:
                self._print(f"\x1b[2K • {name} ... {elapsed}" + (f" ({doing})" if doing else ""), end="\r")
            else:
                self._print(f" … {name}: {doing or 'still running'}, {elapsed} …")
