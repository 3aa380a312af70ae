"""Ctrl-C and SIGTERM as KeyboardInterrupt, remembered until the command ends.

A signal handler's exception is raised wherever the main thread happens to be, and when that
is a finalizer (a ``subprocess.Popen`` collected during a health probe) Python prints
"Exception ignored" and carries on: the interruption would be lost and ``lab up`` would wait
out a component's whole start timeout. The handler therefore also remembers it, and every
wait loop asks again on each poll; while a command runs, the swallowed raise prints nothing
(:func:`quiet_unraisable`), since it is not lost.
"""

from __future__ import annotations

import sys
import threading
from types import FrameType
from typing import Any

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


def quiet_unraisable(unraisable: Any) -> None:
    """``sys.unraisablehook``: a KeyboardInterrupt a finalizer swallowed is remembered, not printed."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _INTERRUPTED.is_set():
        return
    sys.__unraisablehook__(unraisable)
