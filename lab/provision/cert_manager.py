"""cert-manager, from kubeflow/manifests' vendored copy; KServe's webhooks need its certificates."""

from __future__ import annotations

from lab.components import CERT_MANAGER
from lab.deadline import Deadline, wait_until
from lab.kube import ApiError, KindNotServed, Kube
from lab.provision.actions import Context
from lab.provision.manifests import ManifestStep

DEPLOYMENTS = CERT_MANAGER.deployments  # declared in lab.components


def webhook_problem(kube: Kube, namespace: str) -> str:
    """Why cert-manager's webhook cannot admit an Issuer yet; empty when it can.

    A Deployment reports Available before the webhook's serving certificate is injected;
    a server-side dry-run create goes through the webhook, as `cmctl check api` does.
    """
    probe = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Issuer",
        "metadata": {"name": "lab-webhook-probe", "namespace": namespace},
        "spec": {"selfSigned": {}},
    }
    try:
        kube.apply(probe, dry_run=True)
    except KindNotServed:
        return "cert-manager CRDs are not served yet"
    except ApiError as exc:
        return f"cert-manager webhook refused a dry-run Issuer: {exc.status} {exc.reason}"
    return ""


class CertManager(ManifestStep):
    """Install cert-manager and wait until its webhook admits objects."""

    name = "cert-manager"
    overlays = CERT_MANAGER.overlay_names

    def not_ready(self, ctx: Context, kube: Kube) -> list[str]:
        """Deployments not Available, or the webhook not admitting yet."""
        namespace = ctx.config.names.cert_manager_namespace
        waiting = kube.deployments_not_available(namespace, DEPLOYMENTS)
        if waiting:
            return waiting
        problem = webhook_problem(kube, namespace)
        return [problem] if problem else []

    def wait_ready(self, ctx: Context, kube: Kube, deadline: Deadline) -> None:
        """Poll until the webhook admits a dry-run Issuer."""
        wait_until(lambda: self.not_ready(ctx, kube), deadline, "cert-manager is not ready")
