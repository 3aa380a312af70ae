"""kind-cluster: the lab's kind cluster answers and its nodes are Ready."""

from __future__ import annotations

from lab.doctor.evidence import Evidence, EvidenceUnavailable
from lab.doctor.model import Check, Result
from lab.doctor.workloads import node_arch
from lab.readiness import condition


def detect(evidence: Evidence) -> Result:
    """List the nodes through the cluster interface; report reachability and readiness."""
    cluster = evidence.config.names.cluster
    try:
        nodes = evidence.nodes()
    except EvidenceUnavailable as exc:
        return Result.fail(
            f"the kind cluster {cluster} cannot be reached (context {evidence.cluster_context})",
            exc.detail,
            [
                "kind get clusters",
                f"kubectl cluster-info --context {evidence.cluster_context}",
                "lab up --mode kind",
            ],
        )
    if not nodes:
        return Result.fail(f"the kind cluster {cluster} has no nodes", [], ["lab up --mode kind"])
    lines, not_ready = [], []
    for node in nodes:
        ready = condition(node.status, "Ready")
        info = node.status.node_info if node.status else None
        kubelet = info.kubelet_version if info is not None else "?"
        state = ready.status if ready is not None else "Unknown"
        lines.append(f"node {node.metadata.name}: Ready={state}, arch {node_arch(node)}, kubelet {kubelet}")
        if state != "True":
            not_ready.append(node.metadata.name)
            if ready is not None and ready.message:
                lines.append(f"node {node.metadata.name}: {ready.reason}: {ready.message}")
    if not_ready:
        return Result.fail(
            f"node(s) not Ready: {', '.join(not_ready)}",
            lines,
            [
                f"kubectl describe node {not_ready[0]} --context {evidence.cluster_context}",
                "lab up --mode kind",
            ],
        )
    return Result.ok(f"{len(nodes)} node(s) Ready", lines)


CHECK = Check(
    id="kind-cluster",
    title="kind cluster reachable, nodes Ready",
    group="host",
    inspects="nodes through the kubeconfig context kind-<cluster>",
    detect=detect,
    modes=frozenset({"kind"}),
)
