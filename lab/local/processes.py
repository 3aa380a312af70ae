"""Background processes the lab owns: started detached, tracked by pid file, stopped by pid.

A pid file records the pid *and* the process start time from ``/proc``, so a recycled
pid is never mistaken for ours and ``down`` never signals a stranger (and never kills
by name).
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from lab.atomic_files import atomic_write
from lab.errors import LabError

PRIVATE = 0o600


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses; fields follow the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def log_tail(path: Path, lines: int = 15) -> list[str]:
    """The last lines of a log file (what an error shows as evidence)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return [f"(no log at {path})"]
    tail = text.strip().splitlines()[-lines:]
    return tail or [f"(log {path} is empty)"]


@dataclass
class OwnedProcess:
    """One long-running process of the lab, identified by its pid file."""

    name: str
    pid_file: Path
    log_file: Path

    def read_pid(self) -> tuple[int, int] | None:
        """(pid, start time) recorded when we started it, or None."""
        try:
            record = json.loads(self.pid_file.read_text())
            return int(record["pid"]), int(record["start_time"])
        # start_time is null when the process had already exited when it was recorded.
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def pid(self) -> int | None:
        """Our pid if that process is still the one we started, else None."""
        record = self.read_pid()
        if record is None:
            return None
        pid, started = record
        return pid if process_start_time(pid) == started else None

    def is_stale(self) -> bool:
        """A pid file whose process is gone (or was replaced by another with the same pid)."""
        return self.pid_file.exists() and self.pid() is None

    def start(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> int:
        """Start detached (own session) with output appended to the log; record the pid.

        The log and the pid file are private (0600): a server may echo its configuration,
        credentials included, into its log, and neither file is anyone else's business.
        """
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE)
        os.chmod(self.log_file, PRIVATE)
        with os.fdopen(fd, "ab") as log:
            log.write(f"--- lab: starting {' '.join(argv)} at {time.ctime()}\n".encode())
            log.flush()
            if user:
                os.chown(self.log_file, pwd.getpwnam(user).pw_uid, -1)
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                user=user,
                start_new_session=True,
            )
        started = process_start_time(proc.pid)
        record = {"pid": proc.pid, "start_time": started, "argv": argv}
        atomic_write(self.pid_file, json.dumps(record), PRIVATE)
        return proc.pid

    def stop(self, timeout: float = 20.0, stop_signal: int = signal.SIGTERM) -> bool:
        """Signal our process (only ours), wait for it, escalate to SIGKILL; True if one was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        try:
            os.kill(pid, stop_signal)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process_start_time(pid) is not None:
            _reap(pid)
            time.sleep(0.1)
        if process_start_time(pid) is not None:
            os.kill(pid, signal.SIGKILL)
            while process_start_time(pid) is not None:
                _reap(pid)
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True


def _reap(pid: int) -> None:
    # Children of this very process (tests, `lab up` then `lab down` in one run) stay
    # zombies until reaped; other processes are reaped by init.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def listening_pid(port: int) -> int | None:
    """The pid listening on a TCP port, from /proc (None if unknown or not visible)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


def process_command(pid: int) -> str:
    """The command line of a pid, for error messages."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``check`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def free_port() -> int:
    """A currently free loopback port (for tests and ephemeral servers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PortTaken(LabError):
    """A port the lab needs is held by a process the lab did not start."""


def ensure_port_free(port: int, owner: str, variable: str) -> None:
    """Raise PortTaken naming the holder and the ``LAB_*`` variable that moves ``owner`` elsewhere."""
    if port_is_free(port):
        return
    holder = listening_pid(port)
    who = f"pid {holder} ({process_command(holder)[:120]})" if holder else "another process"
    raise PortTaken(
        f"port {port} needed by the {owner} is held by {who}, which the lab did not start; "
        f"stop it or choose another port with {variable}=<port>"
    )


def stop_children(children: Sequence[subprocess.Popen[bytes]]) -> None:
    """Terminate child processes, then kill those still running after 5 s."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    """A signal handler that turns SIGTERM into KeyboardInterrupt, so cleanup code runs."""
    raise KeyboardInterrupt
