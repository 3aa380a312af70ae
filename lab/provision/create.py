"""``lab up --mode kind``: the ordered list of actions, like kind's create command."""

from __future__ import annotations

from lab.config import LabConfig
from lab.progress import Progress
from lab.provision.actions import Action, Context, print_plan, run_actions
from lab.provision.cert_manager import CertManager
from lab.provision.cluster import CreateCluster
from lab.provision.kfp import KubeflowPipelines
from lab.provision.kserve import KServe
from lab.provision.model_registry import ModelRegistry
from lab.provision.preflight import Preflight
from lab.provision.ready import Ready
from lab.provision.registry import LocalRegistry
from lab.provision.secrets import PipelineSecrets
from lab.provision.sources import ManifestSources


def stack_actions() -> list[Action]:
    """The stack on a reachable cluster, in order (kind and cluster mode); a component is one line here."""
    return [
        CertManager(),
        KubeflowPipelines(),
        ModelRegistry(),
        KServe(),
        PipelineSecrets(),
        Ready(),
    ]


def kind_actions() -> list[Action]:
    """The steps of kind mode: the kind cluster and its registry, then the stack."""
    return [Preflight(), CreateCluster(), LocalRegistry(), *stack_actions()]


def up_kind(config: LabConfig, progress: Progress, *, dry_run: bool) -> int:
    """Provision (or bring back in line) the kind lab; a second run changes nothing.

    With ``dry_run`` print every step's plan (what it would change) and change nothing;
    this works without a container engine. Returns 0 on success; a failed step raises
    LabError naming the step, with its evidence as details.
    """
    ctx = Context(config, progress)
    actions = kind_actions()
    if dry_run:
        sources = ManifestSources(config, ctx.workspace).describe()
        return print_plan(
            actions,
            ctx,
            f"Plan for kind cluster {config.names.cluster} (dry run, nothing is changed); "
            f"manifests from {sources}:",
        )
    progress.info(
        f"Provisioning kind cluster {config.names.cluster}; manifests from "
        f"{ManifestSources(config, ctx.workspace).describe()}"
    )
    return run_actions(actions, ctx)
