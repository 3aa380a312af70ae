"""database-health: the Model Registry's database runs and accepts connections."""

from __future__ import annotations

from lab.components import MODEL_REGISTRY
from lab.doctor.checks._found import component_namespace
from lab.doctor.checks._local import component_result, restart
from lab.doctor.checks._provision import kubectl
from lab.doctor.checks._workloads import crash_remedies, judge_deployments, scaled_to_zero_remedy
from lab.doctor.evidence import Evidence
from lab.doctor.model import MODES, Check, FixContext, FixOutcome, Result

# overlays/db deploys its own MySQL for the Model Registry under this name.
DATABASE = "model-registry-db"


def detect(evidence: Evidence) -> Result:
    """Local: the private PostgreSQL (psql ``select 1``). Kind, cluster: the model-registry-db Deployment."""
    if evidence.mode == "local":
        return component_result(evidence, "database")
    config, mode = evidence.config, evidence.mode
    namespace = component_namespace(evidence, MODEL_REGISTRY)
    not_ready, lines = judge_deployments(evidence, namespace, [DATABASE])
    if not not_ready:
        return Result.ok(f"{namespace}/{DATABASE} ready", lines)
    remedy = scaled_to_zero_remedy(evidence, namespace, [DATABASE]) + crash_remedies(evidence, namespace)
    return Result.fail(
        f"the Model Registry database {namespace}/{DATABASE} is not running: Model Registry cannot serve",
        lines,
        remedy
        or [
            kubectl(config, mode, "-n", namespace, "describe", "deployment", DATABASE),
            kubectl(config, mode, "-n", namespace, "logs", f"deploy/{DATABASE}", "--tail=30"),
        ],
    )


def fix(ctx: FixContext) -> FixOutcome:
    """Start the local database again."""
    return restart("database", ctx)


CHECK = Check(
    id="database-health",
    title="Model Registry database up",
    group="database",
    inspects="local: pid file, psql `select 1`, log tail; kind, cluster: deployment model-registry-db",
    detect=detect,
    modes=MODES,
    fix=fix,
    fix_description="start the local PostgreSQL (`lab up --mode local --components database`)",
)
