"""Kubeflow Model Registry: the ``overlays/db`` install plus the standalone UI."""

from __future__ import annotations

from lab.components import MODEL_REGISTRY, service
from lab.deadline import Deadline, wait_until
from lab.kube import Kube
from lab.provision.actions import Context
from lab.provision.kwok import NOT_APPLICABLE_ON_KWOK, health_problem
from lab.provision.manifests import ManifestStep

# Declared in lab.components; the selector is the REST server's pods, for the health probe.
DEPLOYMENTS = MODEL_REGISTRY.deployments
SERVICE, PORT = service(MODEL_REGISTRY).name, service(MODEL_REGISTRY).port
HEALTH_PATH = service(MODEL_REGISTRY).health_path
SELECTOR = "component=model-registry-server"


class ModelRegistry(ManifestStep):
    """Install Model Registry and wait until its REST server reports healthy."""

    name = "Model Registry"
    overlays = MODEL_REGISTRY.overlay_names

    def not_ready(self, ctx: Context, kube: Kube) -> list[str]:
        """Deployments not Available, or ``/readyz/health`` not answering 200."""
        namespace = ctx.config.names.kubeflow_namespace
        waiting = kube.deployments_not_available(namespace, DEPLOYMENTS)
        if waiting:
            return waiting + kube.pod_problems(namespace, SELECTOR)[:3]
        problem = health_problem(kube, namespace, SELECTOR, SERVICE, PORT, HEALTH_PATH)
        return [problem] if problem else []

    def wait_ready(self, ctx: Context, kube: Kube, deadline: Deadline) -> None:
        """Poll the Deployments, then the health endpoint."""
        wait_until(lambda: self.not_ready(ctx, kube), deadline, "Model Registry is not ready", interval=5.0)
        namespace = ctx.config.names.kubeflow_namespace
        if health_problem(kube, namespace, SELECTOR, SERVICE, PORT, HEALTH_PATH) is None:
            ctx.progress.info(f"   health probe {SERVICE}:{PORT}{HEALTH_PATH} {NOT_APPLICABLE_ON_KWOK}")
