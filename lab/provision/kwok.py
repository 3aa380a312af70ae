"""Simulated nodes (kwok): what can and cannot be judged about pods bound to them.

kwok manages only Nodes annotated ``kwok.x-k8s.io/node``; it reports their pods Running and
Ready like a kubelet would, but no container runs, so a probe through the API server's
service proxy to a pod IP can never answer there. Such probes are reported as not
applicable (visibly) instead of failing or silently passing; everything else is judged.
"""

from __future__ import annotations

from typing import Any

from lab.kube import TRANSPORT_ERRORS, ApiError, Kube, api_error_text

SIMULATED_NODE_ANNOTATION = "kwok.x-k8s.io/node"
NOT_APPLICABLE_ON_KWOK = "not applicable: the pods run on kwok (simulated) nodes, where nothing serves"


def _simulated(node: Any) -> bool:
    return SIMULATED_NODE_ANNOTATION in (node.metadata.annotations or {})


def on_simulated_nodes(kube: Kube, namespace: str, selector: str) -> bool:
    """Whether every selected pod is bound to a kwok node (False when there are none)."""
    pods = kube.pods(namespace, selector)
    if not pods:
        return False
    simulated = {node.metadata.name for node in kube.nodes() if _simulated(node)}
    return all(pod.spec.node_name in simulated for pod in pods)


def only_simulated_nodes(kube: Kube) -> bool:
    """Whether every node of the cluster is a kwok node, so every pod will be simulated."""
    nodes = kube.nodes()
    return bool(nodes) and all(_simulated(node) for node in nodes)


def health_problem(
    kube: Kube, namespace: str, selector: str, service: str, port: int, path: str
) -> str | None:
    """Why ``GET path`` on the Service fails: "" when it answers, None when not applicable (kwok).

    The whole answer of the API server is kept: the reason is in the body, not the status line.
    """
    if on_simulated_nodes(kube, namespace, selector):
        return None
    try:
        kube.service_get(namespace, service, port, path)
    except (ApiError, *TRANSPORT_ERRORS) as exc:
        return f"{service}:{port}{path}: {api_error_text(exc)}"
    return ""
