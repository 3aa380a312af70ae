"""``lab up --mode kind``: the ordered list of actions, like kind's create command."""

from __future__ import annotations

from lab.components import COMPONENTS
from lab.config import LabConfig
from lab.progress import Progress
from lab.provision.actions import Action, Context, print_plan, run_actions
from lab.provision.cert_manager import CertManagerHooks
from lab.provision.cluster import CreateCluster
from lab.provision.component_step import ComponentStep, Hooks
from lab.provision.kfp import KfpHooks
from lab.provision.kserve import KServeHooks
from lab.provision.preflight import Preflight
from lab.provision.ready import Ready
from lab.provision.registry import LocalRegistry
from lab.provision.secrets import PipelineSecrets
from lab.provision.sources import ManifestSources

# The special behaviour a component's declaration names (``Component.hooks``).
HOOKS: dict[str, Hooks] = {"cert-manager": CertManagerHooks(), "kfp": KfpHooks(), "kserve": KServeHooks()}


def component_steps() -> list[ComponentStep]:
    """One step per declared component, in declaration order, with the hooks it names."""
    return [ComponentStep(c, HOOKS[c.hooks] if c.hooks else None) for c in COMPONENTS]


def stack_actions() -> list[Action]:
    """The stack on a reachable cluster, in order (kind and cluster mode): the components, then wiring."""
    return [*component_steps(), PipelineSecrets(), Ready()]


def kind_actions() -> list[Action]:
    """The steps of kind mode: the kind cluster and its registry, then the stack."""
    return [Preflight(), CreateCluster(), LocalRegistry(), *stack_actions()]


def up_kind(config: LabConfig, progress: Progress, *, dry_run: bool, repairs: list[str] | None = None) -> int:
    """Provision (or bring back in line) the kind lab; a second run changes nothing.

    With ``dry_run`` print every step's plan (what it would change) and change nothing;
    this works without a container engine. Returns 0 on success; a failed step raises
    LabError naming the step, with its evidence as details. ``repairs`` collects each drift
    the steps repaired (``lab e2e`` lists them in its result).
    """
    ctx = Context(config, progress)
    if repairs is not None:
        ctx.repairs = repairs
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
