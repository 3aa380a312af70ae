"""The embedded local lab: start, inspect and stop its loopback servers.

``up`` is idempotent: a healthy component is left alone, a stale pid file is cleared,
a half-started component is stopped and started again, and a port held by a process
the lab did not start is reported with the ``LAB_*`` variable that moves it.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass

from lab.config import LabConfig
from lab.errors import LabError
from lab.local.components import COMPONENTS, Component
from lab.local.processes import ensure_port_free, log_tail, wait_until
from lab.progress import Progress
from lab.tools import ToolUnavailable

ALL_COMPONENTS = tuple(COMPONENTS)


@dataclass
class ComponentStatus:
    """One line of ``lab status``."""

    name: str
    state: str  # ready | unhealthy | stopped | stale | unavailable
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


def component_status(component: Component) -> ComponentStatus:
    """Inspect one component without changing anything."""
    pid = component.process.pid()
    try:
        version = component.version()
    except ToolUnavailable as exc:
        return ComponentStatus(
            component.name, "unavailable", component.url, None, "", str(exc), str(component.process.log_file)
        )
    if pid is None:
        state = "stale" if component.process.is_stale() else "stopped"
        detail = "pid file points at a process that is gone" if state == "stale" else "not running"
        return ComponentStatus(
            component.name, state, component.url, None, version, detail, str(component.process.log_file)
        )
    health = component.health()
    return ComponentStatus(
        component.name,
        "ready" if health.ok else "unhealthy",
        component.url,
        pid,
        version,
        health.detail,
        str(component.process.log_file),
    )


def status(config: LabConfig, names: tuple[str, ...] = ALL_COMPONENTS) -> list[ComponentStatus]:
    """Status of every local component."""
    return [component_status(c) for c in components(config, names)]


def start_component(component: Component, timeout: float) -> None:
    """Start one component and wait until its health probe passes."""
    ensure_port_free(component.port, component.name, component.port_variable)
    component.prepare()
    user = component.run_as()
    component.process.start(component.argv(), env=component.environment(), user=user)
    proc = component.process

    def healthy_or_dead() -> bool:
        return proc.pid() is None or component.health().ok

    wait_until(healthy_or_dead, timeout)
    health = component.health()
    if not health.ok:
        died = proc.pid() is None
        proc.stop(stop_signal=component.stop_signal)
        reason = (
            "exited during start-up" if died else f"was not healthy after {timeout:.0f}s ({health.detail})"
        )
        tail = log_tail(proc.log_file)
        cause = component.explain_failure(tail)
        if cause:
            reason += f": {cause}"
        raise LabError(f"{component.name} {reason}; log {proc.log_file} ends with:", tail)
    component.after_start()


def up(
    config: LabConfig, progress: Progress, names: tuple[str, ...] = ALL_COMPONENTS
) -> list[ComponentStatus]:
    """Bring the local lab up; a healthy lab is left untouched."""
    for component in components(config, names):
        with progress.step(f"{component.name} on 127.0.0.1:{component.port}"):
            current = component_status(component)
            if current.state == "unavailable":
                raise LabError(current.detail)
            if current.state == "ready":
                continue
            if current.state == "unhealthy":
                # Half-started or wedged: ours, so restart it rather than report a broken lab.
                component.process.stop(stop_signal=component.stop_signal)
            elif current.state == "stale":
                component.process.pid_file.unlink(missing_ok=True)
            start_component(component, config.start_timeout)
    return status(config, names)


def down(config: LabConfig, progress: Progress, purge: bool = False) -> list[str]:
    """Stop exactly the processes the lab started (by pid), in reverse order; keep data unless purge."""
    stopped: list[str] = []
    # The model server `lab demo` leaves running for the user is part of the lab too.
    from lab.pipeline.serving import stop_model_server

    with progress.step("stop model-server"):
        if stop_model_server(config):
            stopped.append("model-server")
    for component in reversed(components(config)):
        with progress.step(f"stop {component.name}"):
            if component.process.stop(stop_signal=component.stop_signal):
                stopped.append(component.name)
    if purge:
        with progress.step("purge data"):
            for path in (config.data_dir, config.home / "etc", config.docker_config_dir, config.log_dir):
                shutil.rmtree(path, ignore_errors=True)
    return stopped
