"""Free 127.0.0.1 ports, each handed out at most once per process.

Asking the kernel for port 0 and closing the socket returns a port that is free *now*; the
next such request may return the very same port, so two independent callers (a test's
config and the control plane it starts, or two ports of one config) could be given one port
twice. Every place that picks a port asks here, and this module remembers what it gave.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

from lab.errors import LabError
from lab.local.processes import port_is_free

_HANDED_OUT: set[int] = set()
_LOCK = threading.Lock()
# Enough retries to step over every port already given out in a long test session.
_ATTEMPTS = 2000


def _kernel_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port() -> int:
    """A port free on 127.0.0.1 right now that this process has never handed out before."""
    return free_ports(1)[0]


def free_ports(count: int, first: int = 0) -> list[int]:
    """``count`` distinct free 127.0.0.1 ports: any, or the first free ones from ``first`` up.

    Raises:
        LabError: Not enough free ports (the range from ``first`` is exhausted).
    """
    with _LOCK:
        candidates = _scan_from(first) if first else _kernel_candidates()
        chosen: list[int] = []
        for port in candidates:
            if port in _HANDED_OUT:
                continue
            _HANDED_OUT.add(port)
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    where = f"from {first} up" if first else "from the kernel"
    raise LabError(f"could not find {count} free 127.0.0.1 port(s) {where}; free some ports and retry")


def _kernel_candidates() -> Iterator[int]:
    for _ in range(_ATTEMPTS):
        yield _kernel_free_port()


def _scan_from(first: int) -> Iterator[int]:
    return (port for port in range(first, 65536) if port not in _HANDED_OUT and port_is_free(port))
