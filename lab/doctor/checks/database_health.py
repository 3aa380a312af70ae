"""database-health: the Model Registry's database runs and accepts connections."""

from __future__ import annotations

from lab.doctor.checks._local import component_result, restart
from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, FixContext, FixOutcome, Result
from lab.doctor.workloads import deployment_lines

# overlays/db deploys its own MySQL for the Model Registry under this name.
KIND_DEPLOYMENT = "model-registry-db"


def detect(evidence: Evidence) -> Result:
    """Local: the private PostgreSQL (psql ``select 1``). Kind: the model-registry-db deployment."""
    if evidence.mode == "local":
        return component_result(evidence, "database")
    namespace = evidence.config.names.kubeflow_namespace
    ready, lines = deployment_lines(namespace, KIND_DEPLOYMENT, evidence.deployments(), evidence.pods())
    if ready:
        return Result.ok(f"{namespace}/{KIND_DEPLOYMENT} ready", lines)
    return Result.fail(
        f"the Model Registry database {namespace}/{KIND_DEPLOYMENT} is not ready",
        lines,
        [
            f"kubectl -n {namespace} describe deployment {KIND_DEPLOYMENT}",
            f"kubectl -n {namespace} logs deploy/{KIND_DEPLOYMENT} --tail=30",
        ],
    )


def fix(ctx: FixContext) -> FixOutcome:
    """Start the local database again."""
    return restart("database", ctx)


CHECK = Check(
    id="database-health",
    title="Model Registry database up",
    group="database",
    inspects="local: pid file, psql `select 1`, log tail; kind: deployment model-registry-db",
    detect=detect,
    fix=fix,
    fix_description="start the local PostgreSQL (`lab up --mode local --components database`)",
)
