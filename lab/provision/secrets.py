"""Secrets the pipeline components mount, in the pipeline namespace.

Names and keys follow the KitOps and Model Registry guides: ``docker-config`` with a
``config.json`` (mounted at ``/home/user/.docker``), ``model-registry-auth`` with ``token``,
optional ``cosign-keys`` (``cosign.key``/``cosign.pub``, mounted at ``/etc/cosign``), and the
optional ``KIT_USER``/``KIT_PASSWORD`` secret the kit:// storage container reads.

The step also applies the lab's Role and RoleBinding for KFP's ``pipeline-runner``
ServiceAccount (see ``lab.provision.rbac``): they live in the same namespace, and applying
them here puts them in ``render_all`` and the dry-run plan without another step.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

from lab.config import LabConfig
from lab.kube import ApiError
from lab.kube_apply import apply_all
from lab.kube_objects import Manifest, field_manager
from lab.provision.actions import Context
from lab.provision.rbac import runner_rbac_objects


def cosign_dir(config: LabConfig) -> Path:
    """Where a user puts ``cosign.key``/``cosign.pub`` for the lab to publish as ``cosign-keys``."""
    return config.home / "cosign"


def registry_hosts(config: LabConfig) -> list[str]:
    """Every name of the lab registry a pod (or kit inside it) may push to or pull from."""
    port = config.ports.registry
    given = [config.cluster_registry] if config.cluster_registry else []
    return [*given, f"{config.names.registry_container}:5000", f"localhost:{port}", f"127.0.0.1:{port}"]


def docker_config_json(config: LabConfig) -> str:
    """A docker ``config.json`` with an ``auths`` entry for every registry name.

    Without registry auth the entries are empty, which docker and kit read as "no
    credentials" while still showing which registry the secret is for.
    """
    auth = config.registry_auth
    entry: dict[str, str] = {}
    if auth.enabled:
        entry = {"auth": base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()}
    return json.dumps(
        {"auths": {host: dict(entry) for host in registry_hosts(config)}}, indent=2, sort_keys=True
    )


def _b64(text: str | bytes) -> str:
    return base64.b64encode(text if isinstance(text, bytes) else text.encode()).decode()


def _secret(name: str, namespace: str, data: dict[str, str | bytes]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "kubeflow-modelkit-lab"},
        },
        "data": {key: _b64(value) for key, value in data.items()},
    }


def secret_objects(config: LabConfig, model_registry_token: str) -> list[Manifest]:
    """The pipeline namespace, its secrets and the runner's KServe RBAC, as the lab applies them.

    Args:
        config: The lab configuration.
        model_registry_token: The token to store in the Model Registry auth secret.

    Returns:
        The Namespace, the secrets, then the Role and RoleBinding from ``runner_rbac_objects``.
    """
    names = config.names
    namespace = names.pipeline_namespace
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        _secret(names.docker_config_secret, namespace, {"config.json": docker_config_json(config)}),
        _secret(names.model_registry_auth_secret, namespace, {"token": model_registry_token}),
    ]
    keys = cosign_dir(config)
    if (keys / "cosign.key").is_file() and (keys / "cosign.pub").is_file():
        objects.append(
            _secret(
                names.cosign_secret,
                namespace,
                {
                    "cosign.key": (keys / "cosign.key").read_bytes(),
                    "cosign.pub": (keys / "cosign.pub").read_bytes(),
                },
            )
        )
    if config.registry_auth.enabled:
        auth = config.registry_auth
        objects.append(
            _secret(
                names.kit_credentials_secret,
                namespace,
                {"KIT_USER": auth.username, "KIT_PASSWORD": auth.password},
            )
        )
    # Without this grant the serve step's pod is forbidden from creating the InferenceService.
    objects.extend(runner_rbac_objects(config))
    return objects


def existing_token(ctx: Context) -> str:
    """The Model Registry token already in the cluster, kept so clients holding it keep working."""
    names = ctx.config.names
    try:
        secret = ctx.kube().secret(names.pipeline_namespace, names.model_registry_auth_secret)
    except ApiError:
        return ""
    return base64.b64decode((secret.data or {}).get("token", "")).decode()


class PipelineSecrets:
    """Create or update the pipeline secrets and runner RBAC (server-side apply: reruns change nothing)."""

    name = "pipeline secrets"

    def objects(self, ctx: Context) -> list[Manifest]:
        """The secrets (existing Model Registry token, or a new random one) and the runner RBAC."""
        if "secrets" not in ctx.rendered:
            token = existing_token(ctx) or secrets.token_urlsafe(24)
            ctx.rendered["secrets"] = secret_objects(ctx.config, token)
        return ctx.rendered["secrets"]

    def is_done(self, ctx: Context) -> bool:
        """Every secret, the Role and the RoleBinding exist with exactly the wanted content."""
        return ctx.kube().in_sync(self.objects(ctx), manager=field_manager(self.name))

    def execute(self, ctx: Context) -> None:
        """Apply the namespace, the secrets, the Role and the RoleBinding."""
        kube = ctx.kube()
        apply_all(kube, self.objects(ctx), ctx.deadline(), manager=field_manager(self.name))

    def plan(self, ctx: Context) -> list[str]:
        """Which secrets and RBAC objects would be created or updated (names only, never values)."""
        kube = ctx.kube_if_reachable()
        if kube is None:
            objects = secret_objects(ctx.config, model_registry_token="")
            lines = [f"server-side apply {obj['kind']} {obj['metadata']['name']}" for obj in objects]
            if not any(obj["metadata"]["name"] == ctx.config.names.cosign_secret for obj in objects):
                lines.append(
                    f"no {ctx.config.names.cosign_secret}: put cosign.key and cosign.pub in "
                    f"{cosign_dir(ctx.config)} to have signing keys published"
                )
            return lines
        return kube.drift(self.objects(ctx), manager=field_manager(self.name))
