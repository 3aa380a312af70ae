"""Cluster mode ("kind mode"): provision the whole lab on a local kind cluster.

The public surface is a few functions; the steps live in one module each (preflight, cluster,
registry, secrets, ready), except the components': one generic step per declared component
(:mod:`lab.provision.component_step`, with the hooks cert_manager, kfp and kserve), in the order
:func:`lab.provision.create.kind_actions` lists them.
"""

from __future__ import annotations

from lab.config import LabConfig
from lab.progress import Progress
from lab.provision.cluster_mode import up_cluster
from lab.provision.create import up_kind
from lab.provision.delete import down_kind

__all__ = ["down_kind", "reprovision", "up_kind"]


def reprovision(config: LabConfig, mode: str, progress: Progress) -> int:
    """``lab up`` of ``mode`` (kind, or cluster): what the doctor's re-applying fixes get injected."""
    up = up_cluster if mode == "cluster" else up_kind
    return up(config, progress, dry_run=False)
