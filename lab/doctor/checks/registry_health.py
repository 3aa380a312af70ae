"""registry-health: the lab's OCI registry runs and answers ``/v2/``."""

from __future__ import annotations

from lab.doctor.checks._local import component_result, restart
from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, FixContext, FixOutcome, Result


def detect(evidence: Evidence) -> Result:
    """Local: the component's status, port and log. Kind: the registry container's published port."""
    if evidence.mode == "local":
        return component_result(evidence, "registry")
    config = evidence.config
    probe = evidence.http(f"http://{config.registry_host}/v2/")
    if probe.status in (200, 401):
        return Result.ok(f"registry answers at {config.registry_host}", probe.line())
    container = config.names.registry_container
    return Result.fail(
        f"the registry container {container} does not answer on {config.registry_host}",
        probe.line(),
        [f"docker ps -a --filter name={container}", f"docker start {container}", "lab up --mode kind"],
    )


def fix(ctx: FixContext) -> FixOutcome:
    """Start the local registry again."""
    return restart("registry", ctx)


CHECK = Check(
    id="registry-health",
    title="OCI registry up",
    group="registry",
    inspects="local: pid file, GET /v2/, log tail; kind: GET /v2/ on the published port",
    detect=detect,
    fix=fix,
    fix_description="start the local registry (`lab up --mode local --components registry`)",
)
