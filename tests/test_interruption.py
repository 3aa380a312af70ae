"""Ctrl-C and SIGTERM are never lost, even when Python swallows the first KeyboardInterrupt."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator

import pytest

from lab.interruption import forget_interruption, quiet_unraisable, raise_keyboard_interrupt
from lab.local.processes import wait_until


@pytest.fixture
def terminating(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """SIGTERM handled as `lab` handles it while a command runs."""
    forget_interruption()
    monkeypatch.setattr(sys, "unraisablehook", quiet_unraisable)
    previous = signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    yield
    signal.signal(signal.SIGTERM, previous)
    forget_interruption()


class SignalledWhileCollected:
    """Like a Popen collected during a health probe: the signal's handler runs in a finalizer."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10_000):  # the handler runs here, and Python prints "Exception ignored"
            pass


def test_an_interrupt_a_finalizer_swallowed_is_raised_by_the_next_poll(
    terminating: None, capfd: pytest.CaptureFixture[str]
) -> None:
    polls = []

    def never_healthy() -> bool:
        polls.append(SignalledWhileCollected())
        polls[-1] = None  # collected now, inside this poll
        return False

    with pytest.raises(KeyboardInterrupt):
        wait_until(never_healthy, timeout=5, interval=0.01)
    assert len(polls) == 1, "the wait went on polling after the interrupt"
    # Not lost, so not shown: no "Exception ignored ... Traceback" on the user's terminal.
    assert "Traceback" not in capfd.readouterr().err


def test_no_interrupt_no_raise(terminating: None) -> None:
    assert wait_until(lambda: True, timeout=1) is True
    assert wait_until(lambda: False, timeout=0.05, interval=0.01) is False
