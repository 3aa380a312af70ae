"""Ctrl-C and SIGTERM as KeyboardInterrupt, remembered until the command ends.

A signal handler's exception is raised wherever the main thread happens to be, and when that
is a finalizer (a ``subprocess.Popen`` collected during a health probe) Python prints
"Exception ignored" and carries on: the interruption would be lost and ``lab up`` would wait
out a component's whole start timeout. The handler therefore also remembers it, and every
wait loop asks again on each poll.
"""

from __future__ import annotations

import threading
from types import FrameType

_INTERRUPTED = threading.Event()


def raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    """A signal handler: remember the interruption, then unwind like Ctrl-C so cleanup runs."""
    _INTERRUPTED.set()
    raise KeyboardInterrupt


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt again if a signal came and its first raise was swallowed."""
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt


def forget_interruption() -> None:
    """A new command starts uninterrupted (``main`` may run many times in one process: tests)."""
    _INTERRUPTED.clear()
