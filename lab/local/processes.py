"""Background processes the lab owns: started detached and marked, stopped only when ours.

A pid file records the pid *and* the process start time from ``/proc``; the ``LAB_OWNER``
marker in the process's environment (:mod:`lab.local.ownership`) proves ownership even
when the pid file is lost or corrupted. A recycled pid is never mistaken for ours, and
``down`` never signals a stranger (and never kills by name).
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
from typing import Any

from lab.atomic_files import atomic_write
from lab.errors import LabError
from lab.interruption import raise_if_interrupted
from lab.local.ownership import (
    LabProcess,
    is_same_live_process,
    lab_processes,
    marker_environment,
    owner_id,
    owner_of,
    process_facts,
    read_marker,
)

PRIVATE = 0o600


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None when it is gone (or a zombie)."""
    facts = process_facts(pid)
    return None if facts is None or facts.zombie else facts.start_time


def log_tail(path: Path, lines: int = 15) -> list[str]:
    """The last lines of a log file (what an error shows as evidence)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return [f"(no log at {path})"]
    tail = text.strip().splitlines()[-lines:]
    return tail or [f"(log {path} is empty)"]


# After SIGKILL the kernel frees a process at once unless it sits in uninterruptible I/O.
KILL_WAIT = 5.0
PRIVATE = 0o600


@dataclass(frozen=True)
class PidRecord:
    """What a pid file says, and whether it could be read at all."""

    state: str  # ok | missing | corrupt
    pid: int = 0
    start_time: int = 0
    port: int | None = None  # the port the process was started to serve, when it has one


@dataclass
class OwnedProcess:
    """One long-running process of the lab: its pid file, its log and its ``LAB_*`` marker.

    The pid file (``$LAB_HOME/run/<name>.pid``) is a fast path and evidence; the marker
    in the process's environment is the proof of ownership (see :mod:`lab.local.ownership`).
    """

    name: str
    pid_file: Path
    log_file: Path

    @property
    def home(self) -> Path:
        """The lab home: pid files live in ``$LAB_HOME/run``."""
        return self.pid_file.parent.parent

    def record(self) -> PidRecord:
        """The pid file as written by :meth:`start`."""
        try:
            text = self.pid_file.read_text()
        except FileNotFoundError:
            return PidRecord("missing")
        except OSError:
            return PidRecord("corrupt")
        try:
            data = json.loads(text)
            port = data.get("port")
            return PidRecord("ok", int(data["pid"]), int(data["start_time"]), int(port) if port else None)
        except (ValueError, KeyError, TypeError):
            return PidRecord("corrupt")

    def _recorded_and_ours(self) -> int | None:
        record = self.record()
        if record.state != "ok" or not is_same_live_process(record.pid, record.start_time):
            return None
        marker = read_marker(record.pid)
        # An unreadable environment (another user's process) leaves the start time as proof;
        # a readable one without our marker is a stranger, whatever the pid file says.
        if marker is None or (marker.owner == owner_id(self.home) and marker.component == self.name):
            return record.pid
        return None

    def group(self) -> list[LabProcess]:
        """Every live process of this component: the marked one(s) and their descendants."""
        found = lab_processes(self.home, self.name)
        recorded = self._recorded_and_ours()
        if recorded is not None and recorded not in {p.pid for p in found}:
            facts = process_facts(recorded)
            if facts is not None:
                found.append(LabProcess(recorded, facts.start_time, self.name, True, facts.state))
        return found

    def pid(self) -> int | None:
        """The running process of this component (from the pid file, else its marker), or None."""
        recorded = self._recorded_and_ours()
        if recorded is not None:
            return recorded
        leaders = [p.pid for p in lab_processes(self.home, self.name) if p.leader]
        return leaders[0] if leaders else None

    def is_stale(self) -> bool:
        """A pid file that names no live process of ours (gone, reused, or unreadable)."""
        return self.record().state != "missing" and self._recorded_and_ours() is None

    def remember(self, pid: int) -> None:
        """Record ``pid`` in the pid file (atomically), e.g. after finding it by its marker."""
        facts = process_facts(pid)
        if facts is not None:
            atomic_write(self.pid_file, json.dumps({"pid": pid, "start_time": facts.start_time}), PRIVATE)

    def start(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        port: int | None = None,
    ) -> int:
        """Start detached (own session, lab marker set), output appended to the log; record the pid.

        The log and the pid file are private (0600): a server may echo its configuration,
        credentials included, into its log, and neither file is anyone else's business.
        """
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        environment = {**(os.environ if env is None else env), **marker_environment(self.home, self.name)}
        fd = os.open(self.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE)
        os.chmod(self.log_file, PRIVATE)
        with os.fdopen(fd, "ab") as log:
            log.write(f"--- lab: starting {' '.join(argv)} at {time.ctime()}\n".encode())
            log.flush()
            # The account's own group and no other: root's groups would open what others may not.
            account: dict[str, Any] = {}
            if user:
                entry = pwd.getpwnam(user)
                os.chown(self.log_file, entry.pw_uid, -1)
                account = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=cwd,
                start_new_session=True,
                **account,
            )
        started = process_start_time(proc.pid) or 0
        # Until the new program's environment is in place, /proc shows none; scans by marker
        # (another `lab status`) must find the process once its pid file exists.
        wait_until(lambda: read_marker(proc.pid) is not None or proc.poll() is not None, 2.0, 0.005)
        record = {"pid": proc.pid, "start_time": started, "argv": argv, "port": port}
        atomic_write(self.pid_file, json.dumps(record), PRIVATE)
        return proc.pid

    def stop(self, timeout: float = 20.0, stop_signal: int = signal.SIGTERM, port: int | None = None) -> bool:
        """Stop every process of this component (only ours); True if one was running.

        The signal is followed by SIGCONT, so a suspended process acts on it at once. It
        returns only once each process is gone (or a zombie) and its port is free; what is
        left after ``timeout`` gets SIGKILL. The port recorded at start wins over ``port``:
        a lab started on other ports than today's config names must not wait on a port that
        someone else holds.

        Raises:
            LabError: A process survived SIGKILL (uninterruptible I/O); the pid file is kept.
        """
        group = self.group()
        if not group:
            self.pid_file.unlink(missing_ok=True)
            return False
        port = self.record().port or port
        leaders = [p for p in group if p.leader] or group
        _signal(leaders, stop_signal)
        _signal(group, signal.SIGCONT)
        if not _wait_gone(self, group, port, timeout):
            left = self.group() + [p for p in group if is_same_live_process(p.pid, p.start_time)]
            _signal(left, signal.SIGKILL)
            _signal(left, signal.SIGCONT)
            if not _wait_gone(self, group, port, KILL_WAIT):
                alive = sorted({p.pid for p in self.group()} | {p.pid for p in left if _alive(p)})
                what = f"pid {', '.join(map(str, alive))}" if alive else f"port {port}"
                raise LabError(
                    f"{self.name}: {what} still held {timeout + KILL_WAIT:.0f}s after SIGTERM "
                    "and SIGKILL (uninterruptible I/O?); the pid file is kept",
                    [f"/proc/{pid}/stat: state {_state(pid)}" for pid in alive],
                )
        self.pid_file.unlink(missing_ok=True)
        return True


def _state(pid: int) -> str:
    facts = process_facts(pid)
    return facts.state if facts else "gone"


def _alive(process: LabProcess) -> bool:
    _reap(process.pid)
    return is_same_live_process(process.pid, process.start_time)


def _signal(processes: Sequence[LabProcess], signum: int) -> None:
    for process in processes:
        # Re-checked just before the signal: a pid freed meanwhile may belong to a stranger now.
        if is_same_live_process(process.pid, process.start_time):
            try:
                os.kill(process.pid, signum)
            except (ProcessLookupError, PermissionError):
                pass


def _wait_gone(owned: OwnedProcess, group: Sequence[LabProcess], port: int | None, timeout: float) -> bool:
    def gone() -> bool:
        if any(_alive(p) for p in group) or owned.group():
            return False  # children forked while shutting down count too
        if port is None or port_is_free(port):
            return True
        # A stranger on the port (another lab's process included) is not ours to wait for
        # (starting will name it); a socket of ours (or one no process shows yet) is.
        holder = listening_pid(port)
        if holder is None:
            return False
        marker = owner_of(holder)
        return marker is None or marker.owner != owner_id(owned.home)

    return wait_until(gone, timeout, interval=0.05)


def _reap(pid: int) -> None:
    # Children of this very process (tests, `lab up` then `lab down` in one run) stay
    # zombies until reaped; other processes are reaped by their parent, or never (a
    # container's pid 1 that is no init): a zombie counts as gone either way.
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
        raise_if_interrupted()
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class PortTaken(LabError):
    """A port the lab needs is held by a process the lab did not start."""


def port_holder(port: int) -> str:
    """Who listens on ``port``, in words: a lab component (of which home) or a stranger's command."""
    pid = listening_pid(port)
    if pid is None:
        return "a process not visible in /proc"
    marker = owner_of(pid)
    if marker is not None:
        return f"the lab's own {marker.component} (pid {pid}, LAB_HOME={marker.owner})"
    return f"pid {pid} ({process_command(pid)[:120]})"


def ensure_port_free(port: int, owner: str, variable: str, home: Path | None = None) -> None:
    """Raise PortTaken naming the holder and the ``LAB_*`` variable that moves ``owner`` elsewhere.

    A holder that is one of the lab's own processes is named as such, never as a stranger.
    """
    if port_is_free(port):
        return
    pid = listening_pid(port)
    marker = owner_of(pid) if pid is not None else None
    if marker is not None and (home is None or marker.owner == owner_id(home)):
        raise PortTaken(
            f"port {port} needed by the {owner} is held by the lab's own {marker.component} "
            f"(pid {pid}); give the {owner} another port with {variable}=<port>"
        )
    raise PortTaken(
        f"port {port} needed by the {owner} is held by {port_holder(port)}, which this lab did not "
        f"start; stop it or choose another port with {variable}=<port>"
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
