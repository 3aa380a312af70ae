"""docker-missing: no reachable container engine, so the kind cluster cannot start."""

from __future__ import annotations

from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, Result


def detect(evidence: Evidence) -> Result:
    """Ask docker, then podman, whether a daemon answers (not in local mode: no answer matters there)."""
    if evidence.mode == "local":
        return Result.skipped("local mode needs no container engine")
    probe = evidence.engine()
    if probe.answers:
        return Result.ok(probe.detail)
    return Result.fail(
        "no container engine answers, so nothing of the kind cluster can start",
        probe.detail,
        [
            "# install Docker (https://docs.docker.com/engine/install/) or start its daemon:",
            "sudo systemctl start docker",
            "docker info",
            "# or run the lab without containers:",
            "lab up --mode local",
        ],
    )


CHECK = Check(
    id="docker-missing",
    title="container engine answers",
    group="host",
    inspects="`docker info` / `podman info`",
    detect=detect,
)
