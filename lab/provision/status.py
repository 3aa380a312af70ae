"""``lab status`` for the kind lab: the cluster, the registry container and each installed component.

Collection and judging are separate. :func:`collect_kind` asks the container engine, kind and
the API server (read-only, short timeouts) and hands what it found to the pure judges of
:mod:`lab.provision.status_rows` (:func:`~lab.provision.status_rows.cluster_row`,
:func:`~lab.provision.status_rows.registry_row`, :func:`~lab.provision.status_rows.deployment_row`),
which take kubernetes client models (``V1Node``, ``V1Deployment``) and return rows.

Nothing here raises for an unreachable cluster: status is a report, so the row says what
could not be asked and why (``lab doctor`` is the check).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from lab.components import COMPONENTS
from lab.config import LabConfig
from lab.errors import ClusterUnreachable, LabError
from lab.kube import API_ERRORS, Kube, api_error_message, context_name, to_manifest
from lab.ownership import FoundComponent, found_components
from lab.progress import Progress
from lab.provision.actions import Context
from lab.provision.cluster import cluster_exists, node_names
from lab.provision.delete import context_in_kubeconfig
from lab.provision.status_rows import (
    KindComponent,
    KindStatus,
    NodeContainer,
    RegistryContainer,
    cluster_row,
    deployment_row,
    image_tag,
    kind_components,
    not_asked_rows,
    registry_row,
    unreachable_rows,
)
from lab.tools import ToolUnavailable

# (connect, read) seconds per API call: status must answer promptly even from a sick cluster.
API_TIMEOUT = (3.0, 10.0)
CONNECT_TIMEOUT = 5.0
# Seconds per `docker inspect`; the engine already answered `info`, so this is only a guard.
ENGINE_TIMEOUT = 20.0


# ---------------------------------------------------------------------------------------------
# Collection: the engine, kind and the API server, read-only.
# ---------------------------------------------------------------------------------------------


def _node_containers(ctx: Context) -> list[NodeContainer]:
    engine = ctx.engine()
    containers = []
    for node in node_names(ctx):
        out = engine.run(
            "container",
            "inspect",
            "--format",
            "{{.State.Running}}|{{.Config.Image}}",
            node,
            check=False,
            timeout=ENGINE_TIMEOUT,
        )
        running, _, image = out.strip().partition("|")
        containers.append(NodeContainer(node, running == "true", image))
    return containers


def _registry_container(ctx: Context) -> RegistryContainer | None:
    name = ctx.config.names.registry_container
    template = "{{.State.Running}}|{{.Config.Image}}|{{json .NetworkSettings.Networks}}"
    out = (
        ctx.engine()
        .run("container", "inspect", "--format", template, name, check=False, timeout=ENGINE_TIMEOUT)
        .strip()
    )
    if not out:
        return None
    running, image, networks = (out.split("|", 2) + ["", ""])[:3]
    return RegistryContainer(running == "true", image, '"kind"' in networks)


def _deployments(kube: Kube, component: KindComponent) -> list[Any] | None:
    if not kube.namespace_exists(component.namespace):
        return None
    return kube.deployments(component.namespace, component.selector)


def _exists(ctx: Context) -> tuple[bool, str]:
    """Whether the lab's cluster exists, and how that was found out."""
    try:
        return cluster_exists(ctx), ""
    except ToolUnavailable as missing:
        # Without the pinned kind, the kubeconfig context kind wrote is the next best witness.
        found = context_in_kubeconfig(ctx.config)
        return found, f"{missing.message}; judged by the kubeconfig context instead"


def collect_kind(
    config: LabConfig, progress: Progress, *, required: bool, ctx: Context | None = None
) -> tuple[list[KindStatus] | None, str]:
    """Inspect the kind lab, read-only.

    Args:
        config: The lab config.
        progress: Where a Context reports (nothing is printed: no step runs).
        required: ``--mode kind``: always return rows, saying why when there is nothing to
            ask. Otherwise (``auto``) return None when no engine answers or no cluster exists.
        ctx: The Context of the caller that just probed the engine (else a new one probes it).

    Returns:
        The rows (or None) and, when None, why there is no kind lab to report.
    """
    ctx = ctx or Context(config, progress)
    if ctx.engine_if_any() is None:
        why = f"no container engine answers ({'; '.join(ctx.engine_evidence)})"
        if not required:
            return None, why
        advice = f"{why}: start Docker (or Podman) to inspect the kind lab"
        return unreachable_rows(config, advice, "no container engine answers"), why
    try:
        exists, how = _exists(ctx)
    except LabError as exc:
        why = f"cannot ask kind for its clusters: {exc}"
        return (unreachable_rows(config, why) if required else None), why
    if not exists:
        why = f"no kind cluster {config.names.cluster}" + (f" ({how})" if how else "")
        if not required:
            return None, why
    try:
        return (_collect_cluster(ctx) if exists else _absent_rows(ctx, why)), ""
    except LabError as exc:
        # An engine or kind command failing (or timing out) mid-way is still a report, not a crash.
        return unreachable_rows(config, str(exc).replace("\n", " ")[:400]), ""


def _absent_rows(ctx: Context, why: str) -> list[KindStatus]:
    # No cluster, but the registry container outlives `kind delete cluster`, so it is still asked.
    config = ctx.config
    cluster = KindStatus(
        "kind-cluster",
        "absent",
        None,
        image_tag(config.versions.kind_node_image),
        f"{why}: `lab up --mode kind` creates it",
    )
    components = [
        KindStatus(c.name, "absent", c.url, c.version, f"no cluster {config.names.cluster}")
        for c in kind_components(config)
    ]
    return [cluster, registry_row(config, _registry_container(ctx), ctx.engine().name), *components]


def _collect_cluster(ctx: Context) -> list[KindStatus]:
    config = ctx.config
    try:
        containers = _node_containers(ctx)
    except LabError:
        # Without kind (or when it fails) the node names are unknown; the API answer alone judges the cluster.
        containers = []
    engine = ctx.engine().name
    registry = registry_row(config, _registry_container(ctx), engine)
    try:
        kube = Kube.connect(config, timeout=CONNECT_TIMEOUT, read_timeout=API_TIMEOUT)
    except ClusterUnreachable as exc:
        cluster = cluster_row(config, containers, None, str(exc).replace("\n", " "), engine=engine)
        reason = f"the API server of {context_name(config)} does not answer"
        return [cluster, registry, *not_asked_rows(config, reason)]
    api_url = kube.host
    try:
        nodes = kube.nodes()
        cluster = cluster_row(config, containers, nodes, api_url=api_url, engine=engine)
    except API_ERRORS as exc:
        cluster = cluster_row(
            config, containers, None, f"listing nodes failed: {api_error_message(exc)}"[:300], api_url, engine
        )
    return [cluster, registry, *component_rows(config, kube)]


def component_rows(
    config: LabConfig, kube: Kube, found: Mapping[str, FoundComponent] | None = None
) -> list[KindStatus]:
    """One row per installed component, judged from its Deployments (the API's reason kept whole).

    ``found`` are the components someone else installed (cluster mode, :mod:`lab.ownership`):
    each is judged where it lives and its row says whose it is (``owner`` ``found``); every
    other component present is the lab's (``owner`` ``lab``).
    """
    rows = []
    for component in kind_components(config):
        theirs = (found or {}).get(component.name)
        if theirs is not None:
            version = theirs.version or component.version
            component = dataclasses.replace(component, namespace=theirs.namespace, version=version)
        try:
            row = deployment_row(component, _deployments(kube, component))
        except API_ERRORS as exc:
            rows.append(
                KindStatus(
                    component.name,
                    "unreachable",
                    component.url,
                    component.version,
                    f"listing Deployments in {component.namespace} failed: {api_error_message(exc)}",
                )
            )
            continue
        if theirs is not None:
            row = dataclasses.replace(row, detail=f"{theirs.not_ours()}; {row.detail}", owner="found")
        elif row.state != "absent":
            row = dataclasses.replace(row, owner="lab")
        rows.append(row)
    return rows


def found_installed(config: LabConfig, kube: Kube) -> dict[str, FoundComponent]:
    """The components someone else installed on the cluster of ``kube`` (:mod:`lab.ownership` judges)."""
    deployments = [to_manifest(d) for d in kube.deployments()]
    return found_components(COMPONENTS, deployments, kube.owner, config.versions)
