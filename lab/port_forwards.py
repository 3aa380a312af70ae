"""``kubectl port-forward`` children owned by one run: each waited for, revived, always stopped.

:func:`port_forwards` is the context manager; :func:`kubectl_forward_argv` builds each child's
command (tests pass any process that listens on the port instead of kubectl). It is the lab's
one port-forward: the cluster run opens its forwards on free ports for the length of the run,
``lab port-forward`` (:mod:`lab.provision.port_forward`) on the configured ports until Ctrl-C.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lab.errors import LabError
from lab.interruption import raise_keyboard_interrupt
from lab.local.processes import log_tail, stop_children
from lab.loopback_ports import free_port


@dataclass(frozen=True)
class ForwardTarget:
    """A cluster endpoint to forward: ``kubectl port-forward -n <namespace> <target> <port>:<remote>``."""

    label: str
    namespace: str
    target: str
    remote_port: int


@dataclass
class OpenForward:
    """A running forward: its local port, child process and log."""

    target: ForwardTarget
    local_port: int
    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<local port>``."""
        return f"http://127.0.0.1:{self.local_port}"


# Builds the argv of one forward's child from its target and local port: kubectl in the lab,
# any process that listens on the port in tests.
ForwardArgv = Callable[[ForwardTarget, int], list[str]]


def kubectl_forward_argv(kubectl: Path | str, context: str, kubeconfig: str = "") -> ForwardArgv:
    """The ``kubectl port-forward`` command for a target, bound to loopback only.

    ``kubeconfig``: cluster mode may name its own; kind's context is in the default one.
    """

    def argv(target: ForwardTarget, local_port: int) -> list[str]:
        return [
            str(kubectl),
            *(["--kubeconfig", kubeconfig] if kubeconfig else []),
            "--context",
            context,
            "--namespace",
            target.namespace,
            "port-forward",
            "--address",
            "127.0.0.1",
            target.target,
            f"{local_port}:{target.remote_port}",
        ]

    return argv


def answers(port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts a connection on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-")


class PortForwards:
    """Port-forward children owned by one run; use through :func:`port_forwards`.

    Args:
        argv_for: Builds each child's command (see :func:`kubectl_forward_argv`).
        log_dir: Where each forward's output goes (``<log_prefix>-<label>.log``).
        ready_timeout: Seconds each forward gets to accept a connection.
        log_prefix: The start of each log's name.
    """

    # A free port can be taken between choosing it and the child binding it: try a new one.
    ATTEMPTS = 3

    def __init__(
        self,
        argv_for: ForwardArgv,
        log_dir: Path,
        *,
        ready_timeout: float = 30.0,
        log_prefix: str = "e2e-port-forward",
    ) -> None:
        self.argv_for = argv_for
        self.log_dir = log_dir
        self.ready_timeout = ready_timeout
        self.log_prefix = log_prefix
        self.forwards: list[OpenForward] = []
        self._logs: list[IO[bytes]] = []

    def _start(self, target: ForwardTarget, port: int, log_file: Path) -> subprocess.Popen[bytes]:
        log = log_file.open("ab")
        self._logs.append(log)
        # Own session: a terminal's Ctrl-C reaches only the lab, which then stops its children.
        return subprocess.Popen(
            self.argv_for(target, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_ready(self, forward: OpenForward) -> bool:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if forward.process.poll() is not None:
                return False
            if answers(forward.local_port):
                # kubectl ends the forward when the pod refuses a connection, and accepting could
                # be a stranger that took the port: the child must still be alive a moment later.
                time.sleep(0.3)
                return forward.process.poll() is None
            time.sleep(0.2)
        return False

    def open(self, target: ForwardTarget, port: int = 0, *, wait: bool = True) -> OpenForward:
        """Start a forward and wait until it accepts connections.

        Args:
            target: What to forward.
            port: The local port; 0 picks a free one (and another when it was taken meanwhile).
            wait: Whether to wait for the first connection (``lab port-forward`` starts before
                the pods may be there, and revives its forwards instead).

        Raises:
            LabError: The forward never answered; the details are the end of its log.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.log_dir / f"{self.log_prefix}-{_slug(target.label)}.log"
        attempts = 1 if port else self.ATTEMPTS
        for _ in range(attempts):
            local_port = port or free_port()
            forward = OpenForward(target, local_port, self._start(target, local_port, log_file), log_file)
            self.forwards.append(forward)
            if not wait or self._wait_ready(forward):
                return forward
            stop_children([forward.process])
            self.forwards.remove(forward)
        raise LabError(
            f"port-forward to {target.label} ({target.namespace}/{target.target}:{target.remote_port}) "
            f"did not answer within {self.ready_timeout:.0f}s ({attempts} attempts); "
            f"is the service there (`lab doctor`)? Log {log_file} ends with:",
            log_tail(log_file),
        )

    def revive(self) -> list[str]:
        """Restart every forward whose child exited (its pod was replaced), on the same port.

        Clients keep their URL, so a restarted KFP API pod does not end the wait for a run.
        Returns the labels restarted.
        """
        restarted = []
        for forward in self.forwards:
            if forward.process.poll() is None:
                continue
            forward.process = self._start(forward.target, forward.local_port, forward.log_file)
            restarted.append(forward.target.label)
        return restarted

    def close(self) -> None:
        """Stop every child (TERM, then KILL after 5 s) and close their logs."""
        stop_children([forward.process for forward in self.forwards])
        self.forwards.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()


@contextmanager
def port_forwards(
    argv_for: ForwardArgv, log_dir: Path, *, ready_timeout: float = 30.0, log_prefix: str = "e2e-port-forward"
) -> Iterator[PortForwards]:
    """Port-forwards for the length of a ``with`` block; every child is stopped on the way out.

    SIGTERM is turned into KeyboardInterrupt meanwhile (main thread only), so a terminated lab
    still runs the cleanup instead of leaving kubectl children behind in their own sessions.
    """
    forwards = PortForwards(argv_for, log_dir, ready_timeout=ready_timeout, log_prefix=log_prefix)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_keyboard_interrupt) if main_thread else None
    try:
        yield forwards
    finally:
        forwards.close()
        if main_thread:
            # None: the previous handler was not set from Python; the default is what it was.
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
