"""The embedded local lab: start, inspect and stop its loopback servers.

``up`` is idempotent: a healthy component is left alone (and re-recorded when its pid
file was lost), a dead one is started again, a wedged or suspended one is stopped and
started again, and each repair is reported with its reason. A port held by a process the
lab did not start is reported with the ``LAB_*`` variable that moves it. ``status``,
``up``, ``down`` and the doctor find the lab's processes the same way: by the pid file,
and by the ``LAB_OWNER`` marker when the pid file is gone (:mod:`lab.local.ownership`).
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass

from lab.config import LabConfig
from lab.errors import LabError
from lab.interruption import forget_interruption
from lab.local.components import COMPONENTS, Component
from lab.local.database_place import purge_outside_home
from lab.local.model_server_process import stop_model_server
from lab.local.ownership import OWNER_VARIABLE, lab_processes, process_facts
from lab.local.processes import OwnedProcess, ensure_port_free, log_tail, wait_until
from lab.progress import Progress
from lab.tools import ToolUnavailable

ALL_COMPONENTS = tuple(COMPONENTS)


@dataclass
class ComponentStatus:
    """One line of ``lab status``."""

    name: str
    state: str  # ready | unhealthy (also: suspended) | stopped | stale | unavailable
    url: str
    pid: int | None
    version: str
    detail: str
    log: str

    def as_dict(self) -> dict[str, object]:
        """JSON form for ``lab status --json``."""
        return asdict(self)


def components(config: LabConfig, names: tuple[str, ...] = ALL_COMPONENTS) -> list[Component]:
    """Component objects in start order."""
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown:
        raise LabError(f"unknown component(s) {', '.join(unknown)}; known: {', '.join(COMPONENTS)}")
    return [COMPONENTS[n](config) for n in ALL_COMPONENTS if n in names]


def _found_by(component: Component, pid: int) -> str:
    record = component.process.record()
    if record.state == "ok" and record.pid == pid:
        return ""
    why = {"missing": "missing", "corrupt": "unreadable"}.get(record.state, f"naming pid {record.pid}")
    return f"found by its {OWNER_VARIABLE} marker; its pid file is {why}"


def component_status(component: Component) -> ComponentStatus:
    """Inspect one component without changing anything."""
    proc = component.process
    log = str(proc.log_file)
    pid = proc.pid()
    try:
        version = component.version()
    except ToolUnavailable as exc:
        return ComponentStatus(component.name, "unavailable", component.url, pid, "", str(exc), log)
    if pid is None:
        record = proc.record()
        if record.state == "ok":
            facts = process_facts(record.pid)
            alive = facts is not None and not facts.zombie
            detail = f"its pid file names pid {record.pid}, " + (
                "now another process, not the lab's (a reused pid)" if alive else "which has exited"
            )
            return ComponentStatus(component.name, "stale", component.url, None, version, detail, log)
        if record.state == "corrupt":
            detail = "its pid file is unreadable and no process of the lab runs"
            return ComponentStatus(component.name, "stale", component.url, None, version, detail, log)
        return ComponentStatus(component.name, "stopped", component.url, None, version, "not running", log)
    found_by = _found_by(component, pid)
    facts = process_facts(pid)
    if facts is not None and facts.suspended:
        detail = f"pid {pid} is suspended (state {facts.state}: SIGSTOP or a debugger) and answers nothing"
        return ComponentStatus(component.name, "unhealthy", component.url, pid, version, detail, log)
    health = component.health()
    detail = "; ".join(part for part in (health.detail, found_by) if part)
    state = "ready" if health.ok else "unhealthy"
    return ComponentStatus(component.name, state, component.url, pid, version, detail, log)


def status(config: LabConfig, names: tuple[str, ...] = ALL_COMPONENTS) -> list[ComponentStatus]:
    """Status of every local component."""
    return [component_status(c) for c in components(config, names)]


def stop_component(component: Component) -> bool:
    """Stop every process of the component, wait until they are gone and its port is free."""
    return component.process.stop(
        component.config.stop_timeout, stop_signal=component.stop_signal, port=component.port
    )


def clear_stale_locks(component: Component) -> list[str]:
    """Remove lock files naming a pid that is gone or a zombie (PostgreSQL would refuse to start)."""
    cleared = []
    for path in component.lock_files():
        try:
            pid = int(path.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            continue
        facts = process_facts(pid)
        if facts is None or facts.zombie:
            path.unlink(missing_ok=True)
            cleared.append(f"removed {path.name} of exited pid {pid}{' (a zombie)' if facts else ''}")
    return cleared


def start_component(component: Component, timeout: float) -> None:
    """Start one component and wait until its health probe passes.

    Whatever stops the start half-way (the health gate, a failing after-start step, Ctrl-C)
    stops the process again: the lab never leaves a half-started component behind.
    """
    ensure_port_free(component.port, component.name, component.port_variable, component.config.home)
    component.prepare()
    proc = component.process
    proc.start(component.argv(), env=component.environment(), user=component.run_as(), port=component.port)
    try:

        def healthy_or_dead() -> bool:
            return proc.pid() is None or component.health().ok

        wait_until(healthy_or_dead, timeout)
        health = component.health()
        if not health.ok:
            died = proc.pid() is None
            reason = (
                "exited during start-up"
                if died
                else f"was not healthy after {timeout:.0f}s ({health.detail})"
            )
            tail = log_tail(proc.log_file)
            cause = component.explain_failure(tail)
            if cause:
                reason += f": {cause}"
            raise LabError(f"{component.name} {reason}; log {proc.log_file} ends with:", tail)
        component.after_start()
    except BaseException as stopped:
        if isinstance(stopped, KeyboardInterrupt):
            forget_interruption()  # received: the waits of the stop below must not raise it again
        stop_component(component)
        raise


def ensure_running(component: Component) -> tuple[list[str], ComponentStatus | None]:
    """Make one component ready.

    Returns:
        What was repaired and why (nothing for a healthy one), and the status that found it
        healthy when nothing had to change (None after a repair: only a new look tells).
    """
    current = component_status(component)
    if current.state == "unavailable":
        raise LabError(current.detail)
    proc = component.process
    if current.state == "ready" and current.pid is not None:
        found_by = _found_by(component, current.pid)
        if not found_by:
            return [], current
        proc.remember(current.pid)
        return [f"kept pid {current.pid} and recorded it again ({found_by})"], None
    notes = []
    if current.state == "unhealthy":
        notes.append(f"restarted pid {current.pid}: {current.detail}")
    elif current.state == "stale":
        notes.append(f"started again: {current.detail}")
    # Also for "stopped": children left by a killed server must be gone before a new one starts.
    stop_component(component)
    notes += clear_stale_locks(component)
    start_component(component, component.config.start_timeout)
    return notes, None


def up(
    config: LabConfig, progress: Progress, names: tuple[str, ...] = ALL_COMPONENTS
) -> list[ComponentStatus]:
    """Bring the local lab up; a healthy lab is left untouched, each repair is reported.

    The statuses returned are those that found a component healthy a moment ago (asking the
    same health gate twice per component would double the cost of a no-op ``up``); what was
    repaired is looked at again once everything is up.
    """
    statuses: list[ComponentStatus | None] = []
    chosen = components(config, names)
    for component in chosen:
        with progress.step(f"{component.name} on 127.0.0.1:{component.port}"):
            notes, healthy = ensure_running(component)
        statuses.append(healthy)
        for note in notes:
            progress.info(f"{component.name}: {note}")
    return [found or component_status(c) for c, found in zip(chosen, statuses, strict=True)]


def down(config: LabConfig, progress: Progress, purge: bool = False) -> list[str]:
    """Stop exactly the processes the lab started, in reverse order; keep data unless purge.

    Raises:
        LabError: A process of the lab is still alive afterwards (never a silent success).
    """
    stopped: list[str] = []
    # The model server `lab demo` leaves running for the user is part of the lab too.
    with progress.step("stop model-server"):
        if stop_model_server(config):
            stopped.append("model-server")
    for component in reversed(components(config)):
        with progress.step(f"stop {component.name}"):
            if stop_component(component):
                stopped.append(component.name)
    # Marked processes no component claims (e.g. left by a renamed component) are the lab's too.
    for name in sorted({p.component for p in lab_processes(config.home)}):
        with progress.step(f"stop {name}"):
            leftover = OwnedProcess(name, config.run_dir / f"{name}.pid", config.log_dir / f"{name}.log")
            if leftover.stop(config.stop_timeout):
                stopped.append(name)
    alive = lab_processes(config.home)
    if alive:
        raise LabError(
            "lab down could not stop every process the lab started",
            [f"pid {p.pid} ({p.component}), state {p.state}" for p in alive],
        )
    if purge:
        with progress.step("purge data"):
            for path in (config.data_dir, config.home / "etc", config.docker_config_dir, config.log_dir):
                shutil.rmtree(path, ignore_errors=True)
            purge_outside_home(config)
    return stopped
