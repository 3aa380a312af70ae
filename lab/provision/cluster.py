"""The kind cluster itself, created from ``templates/kind-config.yaml.j2``."""

from __future__ import annotations

import os
import subprocess

from lab.config import LabConfig
from lab.errors import CommandFailed
from lab.provision.actions import Context
from lab.provision.files import FileSpec, apply_files, plan_files
from lab.provision.workspace import Workspace
from lab.tools import ToolUnavailable, tool_path


def kind_config_spec(config: LabConfig, workspace: Workspace) -> FileSpec:
    """The rendered kind config file."""
    return FileSpec(
        dest=str(workspace.kind_config), template="kind-config.yaml.j2", values={"config": config}
    )


def run_kind(ctx: Context, *args: str, timeout: float = 600.0) -> str:
    """Run the pinned kind against the engine that answered; output is evidence on failure."""
    argv = [str(tool_path(ctx.config, "kind")), *args]
    env = dict(os.environ)
    if ctx.engine().name == "podman":
        env["KIND_EXPERIMENTAL_PROVIDER"] = "podman"
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise CommandFailed(argv, -1, f"no result after {timeout:.0f}s") from None
    if out.returncode != 0:
        raise CommandFailed(argv, out.returncode, out.stdout + out.stderr)
    return out.stdout


def cluster_exists(ctx: Context) -> bool:
    """Whether kind knows a cluster with the lab's name."""
    return ctx.config.names.cluster in run_kind(ctx, "get", "clusters").split()


def node_names(ctx: Context) -> list[str]:
    """The node containers of the lab cluster."""
    return run_kind(ctx, "get", "nodes", "--name", ctx.config.names.cluster).split()


class CreateCluster:
    """Write the kind config and create the cluster when it does not exist."""

    name = "kind cluster"

    def is_done(self, ctx: Context) -> bool:
        """The config file is current and the cluster exists."""
        spec = kind_config_spec(ctx.config, ctx.workspace)
        return not plan_files([spec]) and cluster_exists(ctx)

    def execute(self, ctx: Context) -> None:
        """Create the cluster (kind deletes a half-made one itself when creation fails)."""
        changed = apply_files([kind_config_spec(ctx.config, ctx.workspace)])
        if cluster_exists(ctx):
            if changed:
                ctx.progress.info(
                    f"   {ctx.workspace.kind_config} changed; it takes effect when the cluster is "
                    "recreated (`lab down` then `lab up --mode kind`)"
                )
            return
        run_kind(
            ctx,
            "create",
            "cluster",
            "--name",
            ctx.config.names.cluster,
            "--config",
            str(ctx.workspace.kind_config),
            "--wait",
            "5m",
            timeout=900.0,
        )

    def plan(self, ctx: Context) -> list[str]:
        """Config file changes and whether the cluster would be created."""
        config = ctx.config
        lines = plan_files([kind_config_spec(config, ctx.workspace)])
        try:
            exists = ctx.engine_if_any() is not None and cluster_exists(ctx)
        except ToolUnavailable as missing:
            return [*lines, f"{missing.message} (the real run stops at the preflight checks)"]
        if exists:
            lines.append(f"cluster {config.names.cluster} exists: keep it")
        elif ctx.engine_if_any() is None and ctx.kube_if_reachable() is not None:
            # No engine to ask kind, but the cluster's API server answers: it exists.
            lines.append(f"cluster {config.names.cluster} answers on its API server: keep it")
        else:
            lines.append(
                f"create kind cluster {config.names.cluster} from {config.versions.kind_node_image} "
                f"(kubeconfig context kind-{config.names.cluster})"
            )
        return lines
