"""``lab down`` in cluster mode: cluster, registry container and kubeconfig context."""

from __future__ import annotations

import shutil

from lab.config import LabConfig
from lab.engine import EngineUnavailable
from lab.errors import LabError
from lab.kubeconfig import context_name, kubeconfig_contexts
from lab.progress import Progress
from lab.provision.actions import Action, Context, run_actions
from lab.provision.cluster import cluster_exists, run_kind
from lab.provision.registry import volume_name


def context_in_kubeconfig(config: LabConfig) -> bool:
    """Whether the kubeconfig still has the lab's context."""
    return context_name(config) in kubeconfig_contexts()


class DeleteCluster:
    """``kind delete cluster``, which also removes the kubeconfig context."""

    name = "delete kind cluster"

    def is_done(self, ctx: Context) -> bool:
        """No cluster and no leftover context."""
        return not cluster_exists(ctx) and not context_in_kubeconfig(ctx.config)

    def execute(self, ctx: Context) -> None:
        """Delete it (kind removes the context even when the nodes are already gone)."""
        run_kind(ctx, "delete", "cluster", "--name", ctx.config.names.cluster, timeout=300.0)

    def plan(self, ctx: Context) -> list[str]:
        """What would be deleted."""
        return [f"delete kind cluster {ctx.config.names.cluster} and context {context_name(ctx.config)}"]


class RemoveRegistry:
    """Remove the registry container; its data volume stays unless purging."""

    name = "remove registry container"

    def is_done(self, ctx: Context) -> bool:
        """The container is gone."""
        return not ctx.engine().succeeds("container", "inspect", ctx.config.names.registry_container)

    def execute(self, ctx: Context) -> None:
        """``rm --force`` it."""
        ctx.engine().run("rm", "--force", ctx.config.names.registry_container)

    def plan(self, ctx: Context) -> list[str]:
        """What would be removed."""
        return [
            f"remove container {ctx.config.names.registry_container} (volume {volume_name(ctx.config)} kept)"
        ]


class PurgeData:
    """Remove the registry volume (pushed ModelKits) and the generated workspace."""

    name = "purge registry data and workspace"

    def is_done(self, ctx: Context) -> bool:
        """Neither the volume nor the workspace exists."""
        volume = ctx.engine().succeeds("volume", "inspect", volume_name(ctx.config))
        return not volume and not ctx.workspace.root.exists()

    def execute(self, ctx: Context) -> None:
        """Delete both."""
        engine = ctx.engine()
        if engine.succeeds("volume", "inspect", volume_name(ctx.config)):
            engine.run("volume", "rm", volume_name(ctx.config))
        shutil.rmtree(ctx.workspace.root, ignore_errors=True)

    def plan(self, ctx: Context) -> list[str]:
        """What would be deleted."""
        return [f"delete volume {volume_name(ctx.config)} and {ctx.workspace.root}"]


def down_actions(purge: bool) -> list[Action]:
    """The teardown steps."""
    actions: list[Action] = [DeleteCluster(), RemoveRegistry()]
    if purge:
        actions.append(PurgeData())
    return actions


def down_kind(config: LabConfig, progress: Progress, *, purge: bool) -> int:
    """Delete the kind cluster, the registry container and the kubeconfig context.

    Pushed ModelKits (the registry volume) and the workspace are kept unless ``purge``.
    Returns 0; a failure raises LabError naming the step (no engine: start Docker first).
    """
    ctx = Context(config, progress)
    try:
        ctx.engine()
    except EngineUnavailable as exc:
        raise LabError(
            "cannot reach a container engine to delete the kind lab: start Docker (or Podman) "
            "and run `lab down` again",
            exc.details,
        ) from None
    return run_actions(down_actions(purge), ctx)
