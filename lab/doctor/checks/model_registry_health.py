"""model-registry-health: the Model Registry server answers ``/readyz/health``."""

from __future__ import annotations

from lab.components import MODEL_REGISTRY
from lab.doctor.checks._found import component_namespace
from lab.doctor.checks._local import component_result, restart
from lab.doctor.checks._provision import kubectl, up_command
from lab.doctor.checks._workloads import crash_remedies, judge_deployments, scaled_to_zero_remedy
from lab.doctor.checks.database_health import DATABASE
from lab.doctor.evidence import Evidence, env_prefix
from lab.doctor.model import MODES, Check, FixContext, FixOutcome, Result
from lab.local.components import JSON_SYNTAX_ERROR


def detect_cluster(evidence: Evidence) -> Result:
    """Kind and cluster mode: the server's and UI's Deployments and pods (database-health: the database)."""
    config, mode = evidence.config, evidence.mode
    namespace = component_namespace(evidence, MODEL_REGISTRY)
    mine = [name for name in MODEL_REGISTRY.deployments if name != DATABASE]
    not_ready, lines = judge_deployments(evidence, namespace, mine)
    if not not_ready:
        return Result.ok(f"{', '.join(mine)} ready", lines)
    remedy = scaled_to_zero_remedy(evidence, namespace, not_ready) + crash_remedies(evidence, namespace)
    remedy += [
        *(kubectl(config, mode, "-n", namespace, "describe", "deployment", name) for name in not_ready[:2]),
        f"{up_command(config, mode)}  # re-applies Model Registry and waits until it serves",
    ]
    return Result.fail(
        f"Model Registry is not ready: {', '.join(not_ready)} (see also mr-config-error, database-health)",
        lines,
        remedy,
    )


def detect(evidence: Evidence) -> Result:
    """Local: the readiness endpoint first (whoever serves it), then the component's state and log."""
    if evidence.mode in ("kind", "cluster"):
        return detect_cluster(evidence)
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
    inspects="local: GET /readyz/health, pid file, server binary, log tail; kind and cluster: "
    "Deployments model-registry-deployment, model-registry-db, model-registry-ui and their pods",
    detect=detect,
    modes=MODES,
    fix=fix,
    fix_description="start the local Model Registry server "
    "(`lab up --mode local --components model-registry`)",
)
