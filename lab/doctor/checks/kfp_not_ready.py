"""kfp-not-ready: KFP core components not all Running and Ready.

Symptoms in the UI: "Pipeline version creation failed", "Cannot find context".
"""

from __future__ import annotations

from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, Result
from lab.doctor.workloads import deployment_lines

CORE = ("ml-pipeline", "metadata-grpc-deployment", "metadata-envoy-deployment", "mysql")


def detect(evidence: Evidence) -> Result:
    """Readiness of each core deployment and its pods; the API health endpoint if forwarded."""
    namespace = evidence.config.names.kubeflow_namespace
    deployments, pods = evidence.deployments(), evidence.pods()
    lines, not_ready = [], []
    for name in CORE:
        ready, detail = deployment_lines(namespace, name, deployments, pods)
        lines.extend(detail)
        if not ready:
            not_ready.append(name)
    health = evidence.http(f"http://127.0.0.1:{evidence.config.ports.kfp_ui}/apis/v2beta1/healthz")
    lines.append(health.line() + ("" if health.answered else " (no port-forward to the KFP UI?)"))
    if not not_ready:
        return Result.ok(f"{', '.join(CORE)} Running and Ready", lines)
    return Result.fail(
        f"KFP is not ready: {', '.join(not_ready)} not Running+Ready",
        lines,
        [
            "# KFP needs several minutes after install; wait, watching which component lags:",
            f"kubectl -n {namespace} get pods -w",
            *(f"kubectl -n {namespace} describe deployment {name}" for name in not_ready[:2]),
            f"kubectl -n {namespace} wait --for=condition=Available deployment --all --timeout=600s",
        ],
    )


CHECK = Check(
    id="kfp-not-ready",
    title="KFP core components ready",
    group="kfp",
    inspects="deployments ml-pipeline, metadata-grpc-deployment, metadata-envoy-deployment, mysql; "
    "/apis/v2beta1/healthz",
    detect=detect,
    modes=frozenset({"kind", "cluster"}),
)
