"""Which processes belong to a lab home, read from ``/proc`` without trusting any pid file.

Every process the lab starts carries two environment variables, ``LAB_OWNER`` (the
resolved ``$LAB_HOME``) and ``LAB_COMPONENT`` (``registry``, ``database`` ...). The
kernel keeps a process's initial environment readable in ``/proc/<pid>/environ`` for
its whole life, so a lost, corrupted or hand-edited pid file can never make the lab
lose track of its own processes or adopt a stranger's.

Children a component forks (PostgreSQL's checkpointer, walwriter, backends) inherit the
marker but may overwrite the memory ``/proc/<pid>/environ`` shows (PostgreSQL reuses it
for its process title), so they count as the component's through their parent.

A zombie (exited, not yet reaped by its parent) is gone: it holds no port, no file and
no memory, and its pid cannot be reused until it is reaped. Where the parent never reaps
(a container whose pid 1 is not an init), zombies of the lab's processes stay forever;
nothing here waits for them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

OWNER_VARIABLE = "LAB_OWNER"
COMPONENT_VARIABLE = "LAB_COMPONENT"


def owner_id(home: Path) -> str:
    """The ``LAB_OWNER`` value of a lab home: its resolved path (one lab per home)."""
    return str(Path(home).resolve())


def marker_environment(home: Path, component: str) -> dict[str, str]:
    """The variables that mark a process as ``component`` of the lab at ``home``."""
    return {OWNER_VARIABLE: owner_id(home), COMPONENT_VARIABLE: component}


@dataclass(frozen=True)
class ProcessFacts:
    """What ``/proc/<pid>/stat`` says about a process."""

    pid: int
    ppid: int
    state: str  # R, S, D, T (stopped), t (traced), Z (zombie), ...
    start_time: int  # clock ticks since boot: with the pid, the identity of a process

    @property
    def zombie(self) -> bool:
        """Exited and waiting to be reaped: holds nothing."""
        return self.state in ("Z", "X")

    @property
    def suspended(self) -> bool:
        """Stopped by SIGSTOP/SIGTSTP or a debugger: alive, answering nothing."""
        return self.state in ("T", "t")


def process_facts(pid: int) -> ProcessFacts | None:
    """``/proc/<pid>/stat`` of a process, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # The command name (field 2) may contain spaces and parentheses; fields follow the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return ProcessFacts(pid, int(fields[1]), fields[0], int(fields[19]))


def is_same_live_process(pid: int, start_time: int) -> bool:
    """True while the process (pid, start time) exists and is not a zombie."""
    facts = process_facts(pid)
    return facts is not None and facts.start_time == start_time and not facts.zombie


@dataclass(frozen=True)
class Marker:
    """The lab marker in a process's environment; empty strings when it has none."""

    owner: str
    component: str


def read_marker(pid: int) -> Marker | None:
    """The marker of ``pid``; None when its environment cannot be read (another user's process).

    Also None for an empty environment: for a moment after ``exec`` the kernel shows none
    (the parent already returned from ``Popen``), and a process without one cannot be judged.
    """
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    if not raw:
        return None
    owner = component = ""
    for entry in raw.split(b"\0"):
        if entry.startswith(b"LAB_OWNER="):
            owner = entry[len(b"LAB_OWNER=") :].decode(errors="replace")
        elif entry.startswith(b"LAB_COMPONENT="):
            component = entry[len(b"LAB_COMPONENT=") :].decode(errors="replace")
    return Marker(owner, component)


@dataclass(frozen=True)
class LabProcess:
    """A live process of a lab home: a marked one (``leader``) or a descendant of one."""

    pid: int
    start_time: int
    component: str
    leader: bool
    state: str


def _all_processes() -> dict[int, ProcessFacts]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            facts = process_facts(int(entry.name))
            if facts is not None:
                found[facts.pid] = facts
    return found


def _self_and_ancestors(table: dict[int, ProcessFacts]) -> set[int]:
    # The lab command itself may run with a marker inherited from a lab process (a shell a
    # component spawned): it must never count itself or its callers as the lab's servers.
    chain, pid = set(), os.getpid()
    while pid > 1 and pid not in chain:
        chain.add(pid)
        pid = table[pid].ppid if pid in table else 0
    return chain


def lab_processes(home: Path, component: str | None = None) -> list[LabProcess]:
    """Every live (not zombie) process of the lab at ``home``, optionally of one component."""
    owner = owner_id(home)
    table = _all_processes()
    excluded = _self_and_ancestors(table)
    owned: dict[int, tuple[str, bool]] = {}
    for pid, facts in table.items():
        if pid in excluded or facts.zombie:
            continue
        marker = read_marker(pid)
        if marker is not None and marker.owner == owner and marker.component:
            owned[pid] = (marker.component, True)
    children: dict[int, list[int]] = {}
    for pid, facts in table.items():
        children.setdefault(facts.ppid, []).append(pid)
    queue = list(owned)
    while queue:
        parent = queue.pop()
        for child in children.get(parent, []):
            if child not in owned and child not in excluded and not table[child].zombie:
                owned[child] = (owned[parent][0], False)
                queue.append(child)
    return [
        LabProcess(pid, table[pid].start_time, name, leader, table[pid].state)
        for pid, (name, leader) in sorted(owned.items())
        if component is None or name == component
    ]


def owner_of(pid: int) -> Marker | None:
    """The lab marker of ``pid`` or of its nearest marked ancestor; None for a stranger."""
    seen: set[int] = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        marker = read_marker(pid)
        if marker is not None and marker.owner and marker.component:
            return marker
        facts = process_facts(pid)
        if facts is None:
            return None
        pid = facts.ppid
    return None
