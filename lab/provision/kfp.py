"""Kubeflow Pipelines' provisioning hook: its own readiness rule, stopping on known failures.

KFP is installed standalone (``env/platform-agnostic``) through the lab's overlays; the step
itself is the generic :class:`~lab.provision.component_step.ComponentStep` of
:data:`lab.components.KFP`.
"""

from __future__ import annotations

from lab.components import KFP
from lab.deadline import Deadline
from lab.kube import Kube
from lab.provision.actions import Context
from lab.provision.component_step import ComponentStep, Hooks
from lab.provision.diagnosis import KnownFailureWatch
from lab.provision.kwok import only_simulated_nodes


class KfpHooks(Hooks):
    """Wait until every KFP pod is ready for several consecutive polls, then its API answers."""

    # metadata-grpc exiting with 139 never heals by waiting: the doctor's mlmd-segfault check
    # judges it, with the remedy that fits this host's architecture and pin; it leads, so its
    # own remedy comes before crash-loop's general one.
    leading_checks = ("mlmd-segfault",)

    def wait_ready(
        self, step: ComponentStep, ctx: Context, kube: Kube, deadline: Deadline, watch: KnownFailureWatch
    ) -> None:
        """KFP's own readiness rule (its pods flap while MySQL and the metadata server start)."""
        namespace = step.namespace(ctx)
        # Pods kwok simulates never flap: confirming their status again only waits.
        steady = 1 if only_simulated_nodes(kube) else 3
        kube.wait_pods_ready(namespace, KFP.selector, deadline, consecutive=steady, check=watch.check)
        step.wait_until_ready(ctx, kube, deadline, watch)
