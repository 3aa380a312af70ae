"""model-registry-health: the Model Registry server answers ``/readyz/health``."""

from __future__ import annotations

from lab.doctor.checks._local import component_result, restart
from lab.doctor.evidence import Evidence, env_prefix
from lab.doctor.model import Check, FixContext, FixOutcome, Result
from lab.doctor.workloads import deployment_lines
from lab.local.components import JSON_SYNTAX_ERROR

KIND_DEPLOYMENT = "model-registry-deployment"


def detect(evidence: Evidence) -> Result:
    """Local: the readiness endpoint first (whoever serves it), then the component's state and log."""
    if evidence.mode == "kind":
        namespace = evidence.config.names.kubeflow_namespace
        ready, lines = deployment_lines(namespace, KIND_DEPLOYMENT, evidence.deployments(), evidence.pods())
        if ready:
            return Result.ok(f"{namespace}/{KIND_DEPLOYMENT} ready", lines)
        return Result.fail(
            f"Model Registry {namespace}/{KIND_DEPLOYMENT} is not ready (see mr-config-error)",
            lines,
            [f"kubectl -n {namespace} describe deployment {KIND_DEPLOYMENT}"],
        )
    url = f"http://127.0.0.1:{evidence.config.ports.model_registry}/readyz/health"
    probe = evidence.http(url)
    status = evidence.component("model-registry")
    if probe.status == 200:
        owner = f"pid {status.pid}" if status.pid else "a process the lab did not start"
        return Result.ok(f"Model Registry ready at {url} (served by {owner})", probe.line())
    result = component_result(evidence, "model-registry")
    if result.status == "ok":  # the lab's process passed its own probe a moment ago
        return result
    if any(JSON_SYNTAX_ERROR in line for line in evidence.component_log("model-registry")):
        # Its migrations failed on an old PostgreSQL: a restart (this check's fix) cannot help.
        return Result.fail(
            "the Model Registry server cannot start: its database is too old for its migrations "
            "(see mr-database-version)",
            (probe.line(), *result.evidence),
            [f"{env_prefix(evidence.config)}lab doctor mr-database-version"],
        )
    return Result(
        result.status, result.summary, (probe.line(), *result.evidence), result.remedy, result.fixable
    )


def fix(ctx: FixContext) -> FixOutcome:
    """Start the local Model Registry server again."""
    return restart("model-registry", ctx)


CHECK = Check(
    id="model-registry-health",
    title="Model Registry server up",
    group="model-registry",
    inspects="local: GET /readyz/health, pid file, server binary, log tail; kind: model-registry-deployment",
    detect=detect,
    fix=fix,
    fix_description="start the local Model Registry server "
    "(`lab up --mode local --components model-registry`)",
)
