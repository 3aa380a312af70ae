"""Re-applying the lab's cluster objects: the ``lab up`` of the mode being diagnosed, as a fix or a remedy."""

from __future__ import annotations

import shlex

from lab.config import LabConfig
from lab.doctor.model import FixContext, FixOutcome
from lab.errors import LabError


def up_command(config: LabConfig, mode: str) -> str:
    """The ``lab up`` that re-applies the lab on the cluster being diagnosed (kind, or the one given).

    It carries every flag the lab was brought up with (``lab doctor`` fills those its command
    line leaves out from what ``lab up`` recorded: :mod:`lab.cluster_record`).
    """
    if mode != "cluster":
        mirror = ["--manifests-dir", config.manifests_dir] if config.manifests_dir else []
        return shlex.join(["lab", "up", "--mode", "kind", *mirror])
    words = ["lab", "up", "--mode", "cluster"]
    for flag, value in (
        ("--kubeconfig", config.kubeconfig),
        ("--context", config.kube_context),
        ("--manifests-dir", config.manifests_dir),
        ("--registry", config.cluster_registry),
    ):
        if value:
            words += [flag, value]
    return shlex.join(words)


def kubectl(config: LabConfig, mode: str, *argv: str) -> str:
    """A ``kubectl`` line aimed at the cluster being diagnosed, pasteable as printed.

    Cluster mode names the kubeconfig and context the lab was given; kind mode relies on the
    current context `kind create cluster` set.
    """
    words = ["kubectl"]
    if mode == "cluster":
        if config.kubeconfig:
            words += ["--kubeconfig", config.kubeconfig]
        if config.kube_context:
            words += ["--context", config.kube_context]
    return shlex.join([*words, *argv])


def reprovision(ctx: FixContext, what: str, manual: str = "") -> FixOutcome:
    """Re-run the mode's provisioning steps; a step already in its desired state changes nothing.

    The steps come injected (``ctx.reprovision``): provisioning's preflight runs the doctor's
    checks, so the doctor does not import provisioning.

    Args:
        ctx: The fix context.
        what: What the re-run is meant to repair (for the message).
        manual: The command to run by hand when the re-run fails (default: the same ``lab up``).
    """
    command = up_command(ctx.config, ctx.mode)
    if ctx.reprovision is None:
        return FixOutcome(False, f"cannot re-run provisioning from here; run: {manual or command}")
    try:
        code = ctx.reprovision(ctx.config, ctx.mode, ctx.progress)
    except LabError as exc:
        return FixOutcome(False, f"`{command}` failed: {exc}; to repair by hand: {manual or command}")
    outcome = "" if code == 0 else f" but it exited {code}"
    return FixOutcome(code == 0, f"re-ran `{command}` ({what}){outcome}")
