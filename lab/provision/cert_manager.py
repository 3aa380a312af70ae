"""cert-manager's provisioning hook: ready only once its webhook admits objects.

KServe's webhooks need its certificates. The step itself is the generic
:class:`~lab.provision.component_step.ComponentStep` of :data:`lab.components.CERT_MANAGER`.
"""

from __future__ import annotations

from lab.kube import ApiError, KindNotServed, Kube
from lab.provision.actions import Context
from lab.provision.component_step import Hooks


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


class CertManagerHooks(Hooks):
    """Once the Deployments are Available, wait until the webhook admits a dry-run Issuer."""

    def not_ready(self, ctx: Context, kube: Kube, namespace: str) -> list[str]:
        """The webhook not admitting yet (the dry-run Issuer goes to cert-manager's own namespace)."""
        problem = webhook_problem(kube, namespace)
        return [problem] if problem else []
