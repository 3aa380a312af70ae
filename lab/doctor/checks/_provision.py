"""Fixes that re-run the idempotent kind provisioning (``lab up --mode kind``)."""

from __future__ import annotations

from lab.doctor.model import FixContext, FixOutcome
from lab.errors import LabError


def reprovision(ctx: FixContext, what: str, manual: str) -> FixOutcome:
    """Re-run the kind steps; a step already in its desired state changes nothing.

    Args:
        ctx: The fix context.
        what: What the re-run is meant to repair (for the message).
        manual: The command to run by hand when the re-run fails.
    """
    # Imported here: the provisioning modules pull in the kubernetes client, which local-mode
    # doctor runs never need.
    from lab.provision import up_kind

    try:
        code = up_kind(ctx.config, ctx.progress, dry_run=False)
    except LabError as exc:
        return FixOutcome(False, f"`lab up --mode kind` failed: {exc}; to repair by hand: {manual}")
    outcome = "" if code == 0 else f" but it exited {code}"
    return FixOutcome(code == 0, f"re-ran `lab up --mode kind` ({what}){outcome}")
