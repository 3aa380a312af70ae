"""Free 127.0.0.1 ports, each handed out at most once per process.

A port found free *now* may be found free again by the next caller, so two independent
callers (a test's config and the control plane it starts, or two ports of one config) could
be given one port twice. Every place that picks a port asks here, and this module remembers
what it gave.

Ports are drawn at random from below the kernel's ephemeral range: a port in that range can
be taken at any moment by some program's outgoing connection, so a server restarted on the
port it had (the control plane keeps its ports) would find it held by a socket no process
listens on. Random draws keep two processes picking at once (parallel test workers) apart.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

from lab.errors import LabError
from lab.local.processes import port_is_free

_HANDED_OUT: set[int] = set()
_LOCK = threading.Lock()
# Enough retries to step over every port already given out in a long test session.
_ATTEMPTS = 2000


# Below every common default ephemeral range (Linux 32768, IANA 49152) and above the ports
# well-known services keep (PostgreSQL 5432, 8080, ...) in most installations.
_LOWEST = 20000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DRAW = random.Random()


def _ephemeral_start() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port free on 127.0.0.1 right now, outside the ephemeral range, never handed out before here."""
    return free_ports(1)[0]


def free_ports(count: int, first: int = 0) -> list[int]:
    """``count`` distinct free 127.0.0.1 ports: any, or the first free ones from ``first`` up.

    Raises:
        LabError: Not enough free ports (the range from ``first`` is exhausted).
    """
    with _LOCK:
        candidates = _scan_from(first) if first else _drawn_candidates()
        chosen: list[int] = []
        for port in candidates:
            if port in _HANDED_OUT:
                continue
            _HANDED_OUT.add(port)
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    where = f"from {first} up" if first else f"from {_LOWEST} to the ephemeral range"
    raise LabError(f"could not find {count} free 127.0.0.1 port(s) {where}; free some ports and retry")


def _drawn_candidates() -> Iterator[int]:
    top = _ephemeral_start()
    low = _LOWEST if top - _LOWEST >= 4096 else 1024  # a lowered ephemeral range leaves less
    for _ in range(_ATTEMPTS):
        port = _DRAW.randrange(low, top)
        if port not in _HANDED_OUT and port_is_free(port):
            yield port


def _scan_from(first: int) -> Iterator[int]:
    return (port for port in range(first, 65536) if port not in _HANDED_OUT and port_is_free(port))
