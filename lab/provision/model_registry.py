"""Kubeflow Model Registry: the ``overlays/db`` install plus the standalone UI."""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from lab.provision.actions import Context
from lab.provision.kube import Deadline, Kube, wait_until
from lab.provision.manifests import ManifestStep

DEPLOYMENTS = ("model-registry-db", "model-registry-deployment", "model-registry-ui")
SERVICE, PORT = "model-registry-service", 8080
HEALTH_PATH = "/readyz/health"


class ModelRegistry(ManifestStep):
    """Install Model Registry and wait until its REST server reports healthy."""

    name = "Model Registry"
    overlays = ("model-registry",)

    def not_ready(self, ctx: Context, kube: Kube) -> list[str]:
        """Deployments not Available, or ``/readyz/health`` not answering 200."""
        namespace = ctx.config.names.kubeflow_namespace
        waiting = kube.deployments_not_available(namespace, DEPLOYMENTS)
        if waiting:
            return waiting + kube.pod_problems(namespace, "component=model-registry-server")[:3]
        try:
            kube.service_get(namespace, SERVICE, PORT, HEALTH_PATH)
        except (ApiException, HTTPError) as exc:
            return [f"{SERVICE}:{PORT}{HEALTH_PATH}: {getattr(exc, 'status', '')} {exc}".strip()[:200]]
        return []

    def wait_ready(self, ctx: Context, kube: Kube, deadline: Deadline) -> None:
        """Poll the Deployments, then the health endpoint."""
        wait_until(lambda: self.not_ready(ctx, kube), deadline, "Model Registry is not ready", interval=5.0)
