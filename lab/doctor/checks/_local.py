"""Judging and restarting the local lab's components (shared by the *-health checks)."""

from __future__ import annotations

from lab.doctor.evidence import Evidence, env_prefix
from lab.doctor.model import FixContext, FixOutcome, Result
from lab.errors import LabError


def log_lines(evidence: Evidence, name: str, path: str) -> list[str]:
    """The component's log tail as indented evidence lines."""
    return [f"log {path} ends with:", *(f"| {line}" for line in evidence.component_log(name))]


def tool_remedy(evidence: Evidence, tool: str) -> list[str]:
    """How to obtain a tool the component needs, from the tool's own spec."""
    from lab.tools import tool_specs

    spec = next((s for s in tool_specs(evidence.config) if s.name == tool), None)
    lines = [f"{env_prefix(evidence.config)}lab tools install --mode local {tool}"]
    if spec is not None and spec.remedy:
        lines.append(f"# if it cannot be obtained here: {spec.remedy}")
    return lines


def component_result(evidence: Evidence, name: str) -> Result:
    """Health of one local component from ``lab.local`` status, its port and its log."""
    from lab.local import COMPONENTS

    status = evidence.component(name)
    component = COMPONENTS[name](evidence.config)
    prefix = env_prefix(evidence.config)
    start = f"{prefix}lab up --mode local --components {name}"
    if status.state == "ready":
        return Result.ok(
            f"{name} ready at {status.url} (pid {status.pid}, {status.version or 'version unknown'})",
            status.detail,
        )
    if status.state == "unavailable":
        return Result.fail(
            f"{name} cannot run here: its server binary is not installed",
            [status.detail, *log_lines(evidence, name, status.log)],
            [*tool_remedy(evidence, component.tools[0]), start],
        )
    evidence_lines = [f"state {status.state}: {status.detail}"]
    port = evidence.port(component.port)
    port_held = status.state != "unhealthy" and not port.free
    if port_held:
        evidence_lines.append(f"port {component.port} is held by {port.holder()}: see port-conflict")
    evidence_lines.extend(log_lines(evidence, name, status.log))
    if status.state == "unhealthy":
        return Result.fail(
            f"{name} runs (pid {status.pid}) but fails its health probe",
            evidence_lines,
            [f"{prefix}lab up --mode local --components {name}  # restarts a wedged component"],
            fixable=True,
        )
    return Result.fail(
        f"{name} is not running"
        + (" (its pid file points at a process that is gone)" if status.state == "stale" else ""),
        evidence_lines,
        [start],
        fixable=not port_held,
    )


def restart(name: str, ctx: FixContext) -> FixOutcome:
    """Start (or restart a wedged) local component through ``lab.local.up``."""
    from lab import local

    try:
        local.up(ctx.config, ctx.progress, (name,))
    except LabError as exc:
        return FixOutcome(False, f"could not start {name}: {exc}")
    return FixOutcome(True, f"started {name}")
