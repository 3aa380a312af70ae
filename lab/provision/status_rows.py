"""The rows of ``lab status`` for the kind lab, and the pure judges that make them.

The judges :func:`cluster_row`, :func:`registry_row` and :func:`deployment_row` take what
:mod:`lab.provision.status` collected (kubernetes client models such as ``V1Node`` and
``V1Deployment``, the engine's view of containers) and return rows. No I/O: tests feed them
models they build themselves, so every verdict is checked without a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from lab.components import COMPONENTS, Component
from lab.config import LabConfig
from lab.kube import context_name
from lab.provision.port_forward import forwards
from lab.readiness import condition, deployment_shortfall, desired_replicas, node_ready, ready_replicas


@dataclass
class KindStatus:
    """One row of the kind section of ``lab status``; same keys as a local row.

    ``pid`` is always None (nothing runs as a host process the lab started) and ``log`` is
    None (logs live in the cluster); they exist so both sections have one shape. ``owner``
    says whose a component is (:mod:`lab.ownership`): ``lab`` (the lab installed it),
    ``found`` (someone else did; the lab uses it as it is), None when there is none to judge.
    """

    name: str
    state: str  # ready | unhealthy | stopped | absent | unreachable
    url: str | None
    version: str
    detail: str
    pid: int | None = None
    log: str | None = None
    owner: str | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON form, keys in the order of the local rows, then ``owner``."""
        row = asdict(self)
        return {key: row[key] for key in ("name", "state", "url", "pid", "version", "detail", "log", "owner")}


@dataclass(frozen=True)
class KindComponent:
    """A component the kind lab installs, and which Deployments make it up.

    Either ``deployments`` names them (the provisioning step waits on exactly these) or,
    when empty, ``selector`` picks them by label (KFP is judged by its label, not a list).
    """

    name: str
    namespace: str
    deployments: tuple[str, ...]
    selector: str
    version: str
    url: str | None
    host_url: str | None = None


@dataclass(frozen=True)
class NodeContainer:
    """A kind node container as the engine sees it."""

    name: str
    running: bool
    image: str


@dataclass(frozen=True)
class RegistryContainer:
    """The registry container as the engine sees it."""

    running: bool
    image: str
    on_kind_network: bool


def _forward_url(config: LabConfig, port_setting: str) -> str | None:
    # The host URL `lab port-forward` serves, taken from its own forward list.
    for forward in forwards(config):
        if forward.port_setting == port_setting:
            return f"http://127.0.0.1:{forward.local_port(config)}"
    return None


def kind_component(config: LabConfig, component: Component) -> KindComponent:
    """What ``lab status`` judges for one declared component (:mod:`lab.components`)."""
    namespace = getattr(config.names, component.namespace_setting)
    # The host URL is the component's first forward in `lab port-forward` order.
    first = min(component.forwards, key=lambda f: f.order, default=None)
    return KindComponent(
        name=component.name,
        namespace=namespace,
        deployments=component.deployments,
        selector="" if component.deployments else component.selector,
        version=getattr(config.versions, component.version_setting),
        # The same form ready.summary_lines prints for "inside the cluster".
        url=component.service.url(namespace) if component.service else None,
        host_url=_forward_url(config, first.port_setting) if first else None,
    )


def kind_components(config: LabConfig) -> list[KindComponent]:
    """The installed components in install order, with what each provisioning step waits on."""
    return [kind_component(config, component) for component in COMPONENTS]


# ---------------------------------------------------------------------------------------------
# Judges: models in, rows out. No I/O.
# ---------------------------------------------------------------------------------------------


def deployment_row(component: KindComponent, deployments: Sequence[Any] | None) -> KindStatus:
    """Judge one component from its Deployments (kubernetes ``V1Deployment`` models).

    Args:
        component: What to judge: its namespace, and which Deployments belong to it.
        deployments: The Deployments found in ``component.namespace`` (already filtered by
            ``component.selector`` when it has one), or None when the namespace does not exist.

    Returns:
        ``ready`` when every Deployment has all desired replicas ready; ``unhealthy`` with each
        shortfall and the reason from its conditions; ``stopped`` when all are scaled to zero;
        ``absent`` when the namespace or every Deployment is missing.
    """
    ns = component.namespace

    def row(state: str, detail: str) -> KindStatus:
        return KindStatus(component.name, state, component.url, component.version, detail)

    if deployments is None:
        return row("absent", f"namespace {ns} does not exist: not installed (`lab up --mode kind`)")
    found = {d.metadata.name: d for d in deployments}
    if component.deployments:
        found = {name: found[name] for name in component.deployments if name in found}
    if not found:
        wanted = ", ".join(component.deployments) or f"labelled {component.selector}"
        return row(
            "absent", f"no Deployment {wanted} in namespace {ns}: not installed (`lab up --mode kind`)"
        )
    if all(desired_replicas(d) == 0 for d in found.values()):
        return row("stopped", f"every Deployment in {ns} is scaled to 0 replicas")
    problems = [f"Deployment {ns}/{name}: missing" for name in component.deployments if name not in found]
    for name, dep in found.items():
        desired, ready = desired_replicas(dep), ready_replicas(dep)
        if desired == 0:
            problems.append(f"Deployment {ns}/{name}: scaled to 0 replicas")
        elif ready < desired:
            why = deployment_shortfall(dep)
            problems.append(f"Deployment {ns}/{name}: {ready}/{desired} ready" + (f" ({why})" if why else ""))
    if problems:
        return row("unhealthy", "; ".join(problems))
    detail = f"{len(found)}/{len(found)} Deployments ready in {ns}"
    if component.host_url:
        detail += f"; from the host {component.host_url} while `lab port-forward` runs"
    return row("ready", detail)


def image_tag(image: str) -> str:
    """The image without its digest: ``kindest/node:v1.35.0@sha256:...`` -> ``kindest/node:v1.35.0``."""
    # The digest says nothing to a reader.
    return image.split("@", 1)[0]


def cluster_row(
    config: LabConfig,
    containers: Sequence[NodeContainer],
    nodes: Sequence[Any] | None,
    api_error: str = "",
    api_url: str | None = None,
    engine: str = "docker",
) -> KindStatus:
    """Judge the kind cluster from its node containers and its ``V1Node`` objects.

    Args:
        config: The lab config (cluster name, pinned node image).
        containers: The cluster's node containers (empty when kind knows none).
        nodes: The nodes the API server lists, or None when it could not be asked.
        api_error: Why the API server could not be asked (when ``nodes`` is None).
        api_url: The API server URL from the kubeconfig context.
        engine: The engine CLI named in the advice (``docker`` or ``podman``).

    Returns:
        The ``kind-cluster`` row; its version is the node image the containers run (the
        pinned one when no container says).
    """
    context = context_name(config)
    image = next((c.image for c in containers if c.image), config.versions.kind_node_image)
    version = image_tag(image)

    def row(state: str, detail: str) -> KindStatus:
        return KindStatus("kind-cluster", state, api_url, version, f"context {context}; {detail}")

    if containers and not any(c.running for c in containers):
        names = " ".join(c.name for c in containers)
        return row(
            "stopped", f"node containers are not running (`{engine} start {names}` or `lab up --mode kind`)"
        )
    if nodes is None:
        return row("unreachable", api_error or "the API server was not asked")
    not_ready = []
    for node in nodes:
        ready = condition(node.status, "Ready")
        if not node_ready(node):
            why = f"{ready.reason}: {ready.message}" if ready is not None else "no Ready condition"
            not_ready.append(f"node {node.metadata.name} not Ready ({why})")
    if not nodes:
        return row("unhealthy", "the API server lists no nodes")
    if not_ready:
        return row("unhealthy", "; ".join(not_ready))
    kubelet = {n.status.node_info.kubelet_version for n in nodes if n.status and n.status.node_info}
    running = f", Kubernetes {', '.join(sorted(kubelet))}" if kubelet else ""
    return row("ready", f"{len(nodes)} node(s) Ready{running}")


def registry_row(
    config: LabConfig, container: RegistryContainer | None, engine: str = "docker"
) -> KindStatus:
    """Judge the registry container the kind lab pulls ModelKits and images from.

    Args:
        config: The lab config (container name, pinned image, host port).
        container: What the engine says about the container, or None when it does not exist.
        engine: The engine CLI named in the advice (``docker`` or ``podman``).

    Returns:
        The ``kind-registry`` row: ready when running on the kind network; its version is
        the image the container runs.
    """
    name, pinned = config.names.registry_container, config.versions.registry_image
    url = f"http://{config.registry_host}"
    if container is None:
        return KindStatus(
            "kind-registry", "absent", url, pinned, f"no container {name} (`lab up --mode kind` starts it)"
        )
    version = container.image or pinned
    if not container.running:
        return KindStatus(
            "kind-registry",
            "stopped",
            url,
            version,
            f"container {name} is not running (`{engine} start {name}`)",
        )
    if not container.on_kind_network:
        return KindStatus(
            "kind-registry",
            "unhealthy",
            url,
            version,
            f"container {name} is not on the kind network: pods cannot pull from it (`lab up --mode kind`)",
        )
    detail = f"container {name} running; in the cluster {name}:5000"
    if container.image and container.image != pinned:
        # Still serving, but `lab up` would recreate it with the pinned image.
        detail += f"; runs {container.image}, pinned {pinned} (`lab up --mode kind` recreates it)"
    return KindStatus("kind-registry", "ready", url, version, detail)


def not_asked_rows(config: LabConfig, reason: str) -> list[KindStatus]:
    """One ``unreachable`` row per component: ``reason`` kept their Deployments from being asked."""
    return [
        KindStatus(c.name, "unreachable", c.url, c.version, f"not asked: {reason}")
        for c in kind_components(config)
    ]


def unreachable_rows(config: LabConfig, reason: str, short: str = "") -> list[KindStatus]:
    """Every kind row ``unreachable`` for one reason (no engine, kind failing).

    Args:
        config: The lab config.
        reason: Why, in full (with its evidence), on the ``kind-cluster`` row.
        short: The same in a few words for the other rows (``reason`` when empty), so the
            evidence is printed once rather than on every row.
    """
    node_image = image_tag(config.versions.kind_node_image)
    registry = f"http://{config.registry_host}"
    not_asked = f"not asked: {short or reason}"
    return [
        KindStatus("kind-cluster", "unreachable", None, node_image, reason),
        KindStatus("kind-registry", "unreachable", registry, config.versions.registry_image, not_asked),
        *not_asked_rows(config, short or reason),
    ]
