"""One declaration per component: what the cluster lab installs, in install order.

Each :class:`Component` is the single home of a component's identity: the lab overlays that
install it (and the upstream trees they list), its namespace, the Deployments (or label) that make
it up, its in-cluster Service (name, port, health path), the ``lab port-forward`` entries that
reach it from the host, where its version is pinned, and the doctor checks that judge it.

``lab status`` (:mod:`lab.provision.status_rows`), ``lab port-forward``
(:mod:`lab.provision.port_forward`), the ``ready`` step's summary (:mod:`lab.provision.ready`),
the overlays :mod:`lab.provision.render` builds, the provisioning steps' overlays and waits,
and the pipeline's in-cluster addresses read these declarations.
``tests/test_components.py`` fails when a declared component lacks its status row or a doctor
check, or names an upstream, setting or check that does not exist.

Ground floor: this module imports nothing from ``lab`` (provision, doctor and pipeline all read
it). Settings are named by their field in :class:`lab.config.LabConfig` and looked up there.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Overlay:
    """A lab overlay (``templates/kind-overlays/<name>/``) and the upstream trees it lists."""

    name: str
    # (template variable, upstream key, path inside the upstream repository)
    resources: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class Forward:
    """One ``lab port-forward`` entry: a cluster target to a local port (a ``ports`` setting).

    ``summary`` and ``summary_suffix`` are how the ``ready`` step names the host URL.
    ``order`` is the entry's place in ``lab port-forward`` and the summary (they list the
    forwards across components, not in install order).
    """

    label: str
    target: str
    remote_port: int
    port_setting: str
    summary: str
    order: int
    summary_suffix: str = ""


@dataclass(frozen=True)
class Service:
    """A component's in-cluster Service: what the pipeline calls and the health probe asks."""

    name: str
    port: int
    health_path: str
    summary: str  # its line in the ready step's "inside the cluster" list

    def url(self, namespace: str) -> str:
        """``http://<name>.<namespace>.svc.cluster.local:<port>``."""
        return f"http://{self.name}.{namespace}.svc.cluster.local:{self.port}"


@dataclass(frozen=True)
class Component:
    """A component the cluster lab installs.

    Either ``deployments`` names the Deployments that make it up (the provisioning step
    waits on exactly these) or, when empty, ``selector`` picks them by label.
    ``namespace_setting`` and ``version_setting`` name fields of ``config.names`` and
    ``config.versions``. ``overlays`` are what :mod:`lab.provision.render` builds (in order),
    each naming keys of :func:`lab.provision.sources.upstreams`, which still pins the
    upstream repositories.

    Provisioning builds one step per component (:mod:`lab.provision.component_step`), named
    ``step``, in :data:`COMPONENTS` order: it applies the overlays, waits for the workloads,
    showing the problems of the ``pods`` label picks (default ``selector``, else the whole
    namespace) every ``poll_interval`` seconds, and for the Service's health path.
    ``hooks`` names the component's special behaviour in :data:`lab.provision.create.HOOKS`
    (empty for a plain component).
    """

    name: str
    step: str
    overlays: tuple[Overlay, ...]
    namespace_setting: str
    version_setting: str
    checks: tuple[str, ...]
    deployments: tuple[str, ...] = ()
    selector: str = ""
    pods: str = ""
    service: Service | None = None
    forwards: tuple[Forward, ...] = ()
    hooks: str = ""
    poll_interval: float = 5.0
    # The Deployment whose presence (in any namespace) says the component is installed, and whose
    # version label or image tag says which version: how `up --mode cluster` finds one already there.
    marker: str = ""

    @property
    def overlay_names(self) -> tuple[str, ...]:
        """The names of the component's overlays, as its provisioning step applies them."""
        return tuple(overlay.name for overlay in self.overlays)


CERT_MANAGER = Component(
    name="cert-manager",
    step="cert-manager",
    overlays=(
        Overlay("cert-manager", (("cert_manager", "kubeflow-manifests", "common/cert-manager/base"),)),
    ),
    namespace_setting="cert_manager_namespace",
    version_setting="cert_manager",
    checks=("cert-manager-not-ready",),
    deployments=("cert-manager", "cert-manager-cainjector", "cert-manager-webhook"),
    hooks="cert-manager",  # ready once its webhook admits a dry-run Issuer
    poll_interval=3.0,
    marker="cert-manager",
)

KFP = Component(
    name="kfp",
    step="Kubeflow Pipelines",
    overlays=(
        Overlay(
            "kfp-cluster-scoped",
            (("kfp_cluster_scoped", "kfp", "manifests/kustomize/cluster-scoped-resources"),),
        ),
        Overlay("kfp", (("kfp_env", "kfp", "manifests/kustomize/env/platform-agnostic"),)),
    ),
    namespace_setting="kubeflow_namespace",
    version_setting="kfp",
    checks=("kfp-not-ready", "mlmd-segfault"),
    # env/platform-agnostic labels everything it installs with this (and only KFP's pods carry it).
    selector="application-crd-id=kubeflow-pipelines",
    hooks="kfp",  # its pods ready for consecutive polls; stops on metadata-grpc's exit 139
    marker="ml-pipeline",
    # The KFP API server's HTTP port (the UI on ml-pipeline-ui:80 only proxies it).
    service=Service("ml-pipeline", 8888, "/apis/v2beta1/healthz", "KFP API"),
    forwards=(
        Forward("KFP UI", "svc/ml-pipeline-ui", 80, "kfp_ui", "KFP UI", order=0),
        Forward(
            "KFP object store (S3)",
            "svc/seaweedfs",
            9000,
            "object_store",
            "KFP object store",
            order=3,
            summary_suffix=" (S3 API)",
        ),
    ),
)

MODEL_REGISTRY = Component(
    name="model-registry",
    step="Model Registry",
    overlays=(
        Overlay(
            "model-registry",
            (
                ("model_registry_db", "model-registry", "manifests/kustomize/overlays/db"),
                # The standalone UI overlay: no Istio, no Kubeflow dashboard in this lab.
                ("model_registry_ui", "model-registry", "manifests/kustomize/options/ui/overlays/standalone"),
            ),
        ),
    ),
    namespace_setting="kubeflow_namespace",
    version_setting="model_registry",
    checks=("model-registry-health", "database-health", "mr-config-error"),
    deployments=("model-registry-db", "model-registry-deployment", "model-registry-ui"),
    pods="component=model-registry-server",  # the REST server: its problems, its health probe
    marker="model-registry-deployment",
    service=Service("model-registry-service", 8080, "/readyz/health", "Model Registry"),
    forwards=(
        Forward(
            "Model Registry API",
            "svc/model-registry-service",
            8080,
            "model_registry",
            "Model Registry API",
            order=1,
            summary_suffix="/api/model_registry/v1alpha3",
        ),
        # The standalone UI expects a kubeflow-userid header; its auth-proxy sidecar (port 8000)
        # adds it, and the upstream Service still points at the UI container itself.
        Forward(
            "Model Registry UI",
            "deployment/model-registry-ui",
            8000,
            "model_registry_ui",
            "Model Registry UI",
            order=2,
        ),
    ),
)

KSERVE = Component(
    name="kserve",
    step="KServe",
    overlays=(
        Overlay(
            "kserve",
            (
                ("kserve", "kserve", "config/overlays/standalone/kserve"),
                ("kserve_runtimes", "kserve", "config/runtimes"),
            ),
        ),
    ),
    namespace_setting="kserve_namespace",
    version_setting="kserve",
    checks=("kserve-not-ready",),
    deployments=("kserve-controller-manager",),
    hooks="kserve",  # adds the kitops ClusterStorageContainer
    marker="kserve-controller-manager",
)

# Install order: the provisioning steps, ``lab status`` and the doctor's kind rows follow it.
COMPONENTS: tuple[Component, ...] = (CERT_MANAGER, KFP, MODEL_REGISTRY, KSERVE)


def all_forwards() -> list[tuple[Component, Forward]]:
    """Every ``lab port-forward`` entry with its component, in ``lab port-forward`` order."""
    pairs = [(component, forward) for component in COMPONENTS for forward in component.forwards]
    return sorted(pairs, key=lambda pair: pair[1].order)


def service(component: Component) -> Service:
    """The component's Service (a LookupError when it declares none)."""
    if component.service is None:
        raise LookupError(f"component {component.name} declares no Service")
    return component.service
