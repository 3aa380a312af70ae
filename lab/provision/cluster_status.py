"""``lab status`` read from the API server alone: cluster mode, and kind mode without an engine.

Whenever the API server answers, its objects are the report; a container engine only adds
what it alone can see (kind's node containers, the registry container).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lab.config import LabConfig
from lab.errors import ClusterUnreachable
from lab.kube import API_ERRORS, Kube, api_error_message, context_name
from lab.progress import Progress
from lab.provision.actions import Context
from lab.provision.kwok import SIMULATED_NODE_ANNOTATION
from lab.provision.status import API_TIMEOUT, CONNECT_TIMEOUT, collect_kind, component_rows, found_installed
from lab.provision.status_rows import KindStatus, not_asked_rows
from lab.readiness import node_ready


def nodes_row(
    config: LabConfig, nodes: Sequence[Any] | None, api_url: str | None, error: str = ""
) -> KindStatus:
    """Judge the cluster from its ``V1Node`` objects (None: they could not be listed)."""
    version = f"v{config.versions.control_plane_kubernetes}"
    context = f"context {context_name(config)}"
    if nodes is None:
        return KindStatus("cluster", "unreachable", api_url, version, f"{context}; {error}")
    not_ready = [f"node {node.metadata.name} not Ready" for node in nodes if not node_ready(node)]
    if not nodes:
        return KindStatus(
            "cluster", "unhealthy", api_url, version, f"{context}; the API server lists no nodes"
        )
    if not_ready:
        return KindStatus("cluster", "unhealthy", api_url, version, f"{context}; " + "; ".join(not_ready))
    simulated = sum(1 for n in nodes if SIMULATED_NODE_ANNOTATION in (n.metadata.annotations or {}))
    kwok = f" ({simulated} simulated by kwok: pods report Running, nothing serves)" if simulated else ""
    return KindStatus("cluster", "ready", api_url, version, f"{context}; {len(nodes)} node(s) Ready{kwok}")


def list_nodes(kube: Kube) -> tuple[list[Any] | None, str]:
    """The nodes, or None and why they could not be listed."""
    try:
        return kube.nodes(), ""
    except API_ERRORS as exc:
        return None, f"listing nodes failed: {api_error_message(exc)}"


def collect_cluster(config: LabConfig) -> list[KindStatus]:
    """The cluster row and the component rows, read-only; an unreachable cluster is a row, not an error."""
    try:
        kube = Kube.connect(config, timeout=CONNECT_TIMEOUT, read_timeout=API_TIMEOUT)
    except ClusterUnreachable as exc:
        why = " ".join([exc.message, *exc.details])
        return [nodes_row(config, None, None, why), *not_asked_rows(config, "the API server does not answer")]
    nodes, error = list_nodes(kube)
    try:
        found = found_installed(config, kube)
    except API_ERRORS as exc:
        why = f"listing Deployments failed: {api_error_message(exc)}"
        return [nodes_row(config, nodes, kube.host, error), *not_asked_rows(config, why)]
    return [nodes_row(config, nodes, kube.host, error), *component_rows(config, kube, found)]


def rows_without_engine(config: LabConfig, why: str) -> list[KindStatus] | None:
    """Kind-mode rows from the API server alone (None when it does not answer either)."""
    try:
        kube = Kube.connect(config, timeout=CONNECT_TIMEOUT, read_timeout=API_TIMEOUT)
    except ClusterUnreachable:
        return None
    nodes, error = list_nodes(kube)
    cluster = nodes_row(config, nodes, kube.host, error)
    registry = KindStatus(
        "kind-registry",
        "unreachable",
        f"http://{config.registry_host}",
        config.versions.registry_image,
        f"not asked: {why}",
    )
    return [cluster, registry, *component_rows(config, kube)]


def collect_kind_or_api(
    config: LabConfig, progress: Progress, *, required: bool
) -> tuple[list[KindStatus] | None, str]:
    """:func:`collect_kind`, but without an engine the API server still answers for the kind lab."""
    ctx = Context(config, progress)
    if ctx.engine_if_any() is None:
        why = f"no container engine answers ({'; '.join(ctx.engine_evidence)})"
        rows = rows_without_engine(config, why)
        if rows is not None:
            return rows, why
    # The same Context: the engine was asked once, and its answer is seconds old, not cached.
    return collect_kind(config, progress, required=required, ctx=ctx)
