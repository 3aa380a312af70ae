"""KServe in Standard (RawDeployment) mode, plus the ``kit://`` storage container."""

from __future__ import annotations

from lab.components import KSERVE
from lab.deadline import Deadline, wait_until
from lab.kube import Kube
from lab.kube_objects import Manifest
from lab.provision.actions import Context
from lab.provision.manifests import ManifestStep
from lab.provision.render import storage_container

DEPLOYMENTS = KSERVE.deployments  # declared in lab.components


class KServe(ManifestStep):
    """Install KServe and the KitOps ClusterStorageContainer; wait for the controller.

    The serving runtimes go through KServe's validating webhook, which only answers once
    the controller runs; the apply retries them until it does.
    """

    name = "KServe"
    overlays = KSERVE.overlay_names

    def extra_objects(self, ctx: Context) -> list[Manifest]:
        """The ``kitops`` ClusterStorageContainer for ``kit://`` storage URIs."""
        return [storage_container(ctx.config)]

    def not_ready(self, ctx: Context, kube: Kube) -> list[str]:
        """The controller (and its webhook) not Available."""
        namespace = ctx.config.names.kserve_namespace
        waiting = kube.deployments_not_available(namespace, DEPLOYMENTS)
        return waiting + (kube.pod_problems(namespace)[:3] if waiting else [])

    def wait_ready(self, ctx: Context, kube: Kube, deadline: Deadline) -> None:
        """Poll until the controller Deployment is Available."""
        wait_until(
            lambda: self.not_ready(ctx, kube), deadline, "KServe controller is not ready", interval=5.0
        )
