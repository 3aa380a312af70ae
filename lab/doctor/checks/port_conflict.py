"""port-conflict: a port a local component needs is held by a process the lab did not start."""

from __future__ import annotations

from lab.config import env_variable_for
from lab.doctor.evidence import Evidence, env_prefix
from lab.doctor.model import Check, Result


def detect(evidence: Evidence) -> Result:
    """For each component that is not running, is its port free?"""
    from lab.local import ALL_COMPONENTS, COMPONENTS

    lines, remedy = [], []
    for name in ALL_COMPONENTS:
        component = COMPONENTS[name](evidence.config)
        if evidence.component(name).pid is not None:
            continue  # the lab's own process holds it
        port = evidence.port(component.port)
        if port.free:
            continue
        variable = env_variable_for("ports", component.port_setting)
        holder = f"pid {port.pid} ({port.command})" if port.pid else "a process not visible in /proc"
        lines.append(f"port {component.port} needed by {name} is held by {holder}")
        if port.pid:
            remedy.append(f"ps -o pid,user,cmd -p {port.pid}  # stop it if it is yours")
        remedy.append(f"export {variable}=<free port>  # or move {name}; then:")
        remedy.append(f"{env_prefix(evidence.config)}lab up --mode local --components {name}")
    if lines:
        return Result.fail(f"{len(lines)} lab port(s) held by other processes", lines, remedy)
    return Result.ok("every local component's port is free or held by the lab")


CHECK = Check(
    id="port-conflict",
    title="lab ports free",
    group="host",
    inspects="127.0.0.1 ports of registry, database, model-registry and who listens there (/proc/net/tcp)",
    detect=detect,
    modes=frozenset({"local"}),
)
