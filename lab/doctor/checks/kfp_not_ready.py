"""kfp-not-ready: KFP core components not all Running and Ready.

Symptoms in the UI: "Pipeline version creation failed", "Cannot find context".
"""

from __future__ import annotations

from lab.components import KFP
from lab.doctor.checks._found import component_namespace
from lab.doctor.checks._workloads import (
    crash_remedies,
    judge_deployments,
    scaled_to_zero_remedy,
    waiting_remedy,
)
from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, Result

CORE = ("ml-pipeline", "metadata-grpc-deployment", "metadata-envoy-deployment", "mysql")


def detect(evidence: Evidence) -> Result:
    """Readiness of each core deployment and its pods; the API health endpoint if forwarded.

    The remedy fits what the evidence shows: a crash loop's cause (its termination message),
    a Deployment scaled to 0, and only otherwise "wait".
    """
    config = evidence.config
    namespace = component_namespace(evidence, KFP)
    not_ready, lines = judge_deployments(evidence, namespace, CORE)
    health = evidence.http(f"http://127.0.0.1:{config.ports.kfp_ui}/apis/v2beta1/healthz")
    lines.append(health.line() + ("" if health.answered else " (no port-forward to the KFP UI?)"))
    if not not_ready:
        return Result.ok(f"{', '.join(CORE)} Running and Ready", lines)
    remedy = crash_remedies(evidence, namespace) + scaled_to_zero_remedy(evidence, namespace, not_ready)
    if not remedy:
        remedy = [
            "# KFP needs several minutes after install; wait, watching which component lags:",
            *waiting_remedy(evidence, namespace, not_ready, "600s"),
        ]
    return Result.fail(f"KFP is not ready: {', '.join(not_ready)} not Running+Ready", lines, remedy)


CHECK = Check(
    id="kfp-not-ready",
    title="KFP core components ready",
    group="kfp",
    inspects="deployments ml-pipeline, metadata-grpc-deployment, metadata-envoy-deployment, mysql; "
    "/apis/v2beta1/healthz",
    detect=detect,
    modes=frozenset({"kind", "cluster"}),
)
