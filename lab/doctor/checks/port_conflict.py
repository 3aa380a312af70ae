"""port-conflict: a port a local component needs is held by a process this lab did not start."""

from __future__ import annotations

import dataclasses

from lab.config import env_variable_for
from lab.doctor.evidence import Evidence, env_prefix
from lab.doctor.model import Check, Result
from lab.local.ownership import owner_id
from lab.local.processes import port_is_free


def suggest_port(evidence: Evidence, start: int) -> int:
    """The first port above ``start`` that is free now and not configured for anything else."""
    configured = set(dataclasses.asdict(evidence.config.ports).values())
    port = start + 1
    while port < 65535 and (port in configured or not port_is_free(port)):
        port += 1
    return port


def detect(evidence: Evidence) -> Result:
    """For each component that is not running, is its port free?"""
    from lab.local import ALL_COMPONENTS, COMPONENTS

    lines, remedy = [], []
    home = owner_id(evidence.config.home)
    for name in ALL_COMPONENTS:
        component = COMPONENTS[name](evidence.config)
        if evidence.component(name).pid is not None:
            continue  # the lab's own process holds it
        port = evidence.port(component.port)
        if port.free:
            continue
        lines.append(f"port {component.port} needed by {name} is held by {port.holder()}")
        if port.lab_home and port.lab_home != home:
            remedy.append(f"LAB_HOME={port.lab_home} lab down  # stops that other lab")
        elif port.pid and not port.lab_home:
            remedy.append(f"ps -o pid,user,cmd -p {port.pid}  # stop it if it is yours, or move {name}:")
        variable = env_variable_for("ports", component.port_setting)
        other = suggest_port(evidence, component.port)
        # One command with the new port in it: an `export` beside a prefix naming the old one
        # would be overridden by that prefix.
        remedy.append(
            f"{env_prefix(evidence.config, **{variable: other})}lab up --mode local --components {name}"
            f"  # {other} is free now"
        )
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
