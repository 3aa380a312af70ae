"""``--mode cluster``: the kind-mode steps on any cluster a kubeconfig reaches.

No kind and no registry container: the lab installs cert-manager, KFP, Model Registry,
KServe and the pipeline secrets into the cluster of ``--kubeconfig``/``--context`` and
advertises the registry given with ``--registry`` (KEP-1755 ConfigMap). On a shared cluster
the lab touches only what it installed (:mod:`lab.ownership` decides): everything it creates
carries ``kubeflow-modelkit-lab/owner=<cluster name>``, and ``down --mode cluster``
(:mod:`lab.provision.teardown`) deletes exactly the objects with that label.
"""

from __future__ import annotations

from typing import Any

from lab.cluster_record import record_up_flags
from lab.config import LabConfig
from lab.kube import context_name
from lab.kube_apply import apply_all
from lab.kube_objects import field_manager
from lab.progress import Progress
from lab.provision.actions import Action, Context, print_plan, run_actions
from lab.provision.cluster_preflight import PermissionsAndOwnership
from lab.provision.create import stack_actions
from lab.provision.registry import hosting_configmap
from lab.provision.sources import ManifestSources
from lab.provision.static_volumes import ReusableVolumes
from lab.provision.teardown import down_cluster, owned_objects

__all__ = ["cluster_actions", "down_cluster", "owned_objects", "up_cluster"]


class ClusterAccess:
    """Say which cluster the lab installs into; fail early when its API server does not answer."""

    name = "cluster access"

    def is_done(self, ctx: Context) -> bool:
        """Connecting is the whole step (ClusterUnreachable names the context otherwise)."""
        kube = ctx.kube()
        ctx.progress.info(f"   context {context_name(ctx.config)}: {kube.host}")
        return True

    def execute(self, ctx: Context) -> None:
        """Nothing to do once connected."""

    def plan(self, ctx: Context) -> list[str]:
        """The context and server the lab would use."""
        kube = ctx.kube_if_reachable()
        where = kube.host if kube else "does not answer"
        return [
            f"use context {context_name(ctx.config)} ({where}); nothing is created for the cluster itself"
        ]


class RegistryHosting:
    """Advertise the registry given with ``--registry`` (``kube-public/local-registry-hosting``)."""

    name = "registry hosting"

    def objects(self, ctx: Context) -> list[dict[str, Any]]:
        """The ConfigMap, when a registry was given."""
        return self._objects(ctx)

    def _objects(self, ctx: Context) -> list[dict[str, Any]]:
        return (
            [hosting_configmap(ctx.config, ctx.config.cluster_registry)]
            if ctx.config.cluster_registry
            else []
        )

    def is_done(self, ctx: Context) -> bool:
        """In sync, or no registry was given."""
        if not ctx.config.cluster_registry:
            ctx.progress.info(
                "   no --registry given: pods pull ModelKits from wherever their references say"
            )
            return True
        return ctx.kube().in_sync(self._objects(ctx), manager=field_manager(self.name))

    def execute(self, ctx: Context) -> None:
        """Apply the ConfigMap."""
        apply_all(ctx.kube(), self._objects(ctx), ctx.deadline(), manager=field_manager(self.name))

    def plan(self, ctx: Context) -> list[str]:
        """What would change."""
        kube = ctx.kube_if_reachable()
        if not self._objects(ctx):
            return ["no --registry given: nothing to advertise"]
        if kube is None:
            return ["server-side apply ConfigMap kube-public/local-registry-hosting"]
        return kube.drift(self._objects(ctx), manager=field_manager(self.name))


def cluster_actions() -> list[Action]:
    """The kind-mode steps minus preflight, kind and the registry container.

    Before any of them changes anything, what is already installed and what the credentials
    may do are checked (:class:`~lab.provision.cluster_preflight.PermissionsAndOwnership`).
    ``reusable volumes`` frees the control plane's Released static volumes (and touches
    nothing on any other cluster), so any number of ``up``/``down`` cycles converge.
    """
    changing: list[Action] = [RegistryHosting(), ReusableVolumes(), *stack_actions()]
    return [ClusterAccess(), PermissionsAndOwnership(changing), *changing]


def up_cluster(
    config: LabConfig, progress: Progress, *, dry_run: bool, repairs: list[str] | None = None
) -> int:
    """Install (or bring back in line) the lab on the configured cluster; a second run changes nothing.

    ``repairs`` collects each drift the steps repaired (``lab e2e`` lists them in its result).
    """
    ctx = Context(config, progress, mode="cluster")
    if repairs is not None:
        ctx.repairs = repairs
    sources = ManifestSources(config, ctx.workspace).describe()
    target = f"context {context_name(config) or '(current)'}" + (
        f" of {config.kubeconfig}" if config.kubeconfig else ""
    )
    if dry_run:
        return print_plan(
            cluster_actions(),
            ctx,
            f"Plan for {target} (dry run, nothing is changed); manifests from {sources}:",
        )
    progress.info(f"Installing the lab into {target}; manifests from {sources}")
    # Before the steps: a failed `up` is exactly when the doctor's remedies must repeat its flags.
    record_up_flags(config)
    return run_actions(cluster_actions(), ctx)
