"""Provisioning asks the doctor: preflight and crash handling run the doctor's own checks.

One judge per failure mode: a step that must stop on a host problem or a known crash runs the
declared check (:mod:`lab.doctor.checks`) and reports its id, evidence and remedy, rather than
judging the same facts with its own thresholds and words.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from lab.config import LabConfig
from lab.doctor import ClusterSource, Evidence, Outcome, diagnose
from lab.doctor.model import SYMBOLS
from lab.engine import INFO_TIMEOUT
from lab.errors import LabError
from lab.provision.actions import Context


def run_doctor_checks(
    ctx: Context, ids: Sequence[str], cluster: ClusterSource | None = None
) -> list[Outcome]:
    """The named doctor checks, judged now on fresh evidence for the mode being provisioned.

    A step that asks on every poll passes one ``cluster`` (:func:`cluster_source`), so each
    poll reads fresh objects through the same connection.
    """
    # The engine gets as long to answer as provisioning gives it (lab.engine.INFO_TIMEOUT).
    evidence = Evidence(
        ctx.config, mode=ctx.mode, cluster=cluster, proc_root=ctx.proc_root, engine_timeout=INFO_TIMEOUT
    )
    return diagnose(ctx.config, list(ids), evidence=evidence).outcomes


def cluster_source(ctx: Context) -> ClusterSource:
    """The doctor's connection to the cluster being provisioned."""
    return Evidence(ctx.config, mode=ctx.mode).cluster_source()


def outcome_lines(outcome: Outcome) -> list[str]:
    """``✓ title (id): summary``; a failure or warning adds its evidence, then its remedy block."""
    result = outcome.result
    lines = [f"{SYMBOLS[result.status]} {outcome.check.title} ({outcome.check.id}): {result.summary}"]
    if result.status in ("fail", "warn"):
        lines += [f"    {line}" for line in result.evidence]
        if result.remedy:
            lines += ["    to fix:", *(f"      {line}" for line in result.remedy)]
    return lines


def failure(outcomes: Sequence[Outcome]) -> LabError | None:
    """A LabError naming the failed checks, every finding as its details (None when nothing failed).

    The step's name leads the printed error already (``step '…' failed: ``); the check's id follows.
    """
    failed = [o for o in outcomes if o.result.status == "fail"]
    if not failed:
        return None
    first = failed[0]
    fix = next((line for line in first.result.remedy if not line.startswith("#")), "")
    ids = ", ".join(o.check.id for o in failed)
    others = f"{len(failed)} checks failed ({ids}); first, " if len(failed) > 1 else ""
    message = f"{others}{first.check.id}: {first.result.summary}" + (f"; to fix: {fix}" if fix else "")
    return LabError(message, [line for o in failed for line in outcome_lines(o)])


def stop_on(config: LabConfig) -> dict[str, float]:
    """The doctor's findings that end a provisioning wait early, because waiting never heals them.

    Each with how long it must have lasted first: a claim is Pending for a moment while a
    provisioner works (``pvc_pending_grace``, ``LAB_PVC_PENDING_GRACE``); crash-loop itself
    counts restarts.
    """
    return {"crash-loop": 0.0, "pvc-pending": config.pvc_pending_grace}


class KnownFailureWatch:
    """Asks the doctor on each poll of a wait; raises its finding once one has lasted long enough.

    ``leading`` checks are asked in the same pass and stop the wait alone, at once and before
    any other finding, so their own remedy leads (KFP's ``mlmd-segfault`` before the general
    ``crash-loop`` of the same container).
    """

    def __init__(
        self, ctx: Context, stop_after: Mapping[str, float] | None = None, *, leading: Sequence[str] = ()
    ) -> None:
        self.ctx = ctx
        self.stop_on = dict(stop_on(ctx.config) if stop_after is None else stop_after)
        self.leading = list(leading)
        self.cluster = cluster_source(ctx)
        self._since: dict[str, float] = {}

    def check(self, *_: object) -> None:
        """Raise the LabError of every finding that has failed for its whole grace period."""
        now = time.monotonic()
        outcomes = run_doctor_checks(self.ctx, [*self.leading, *self.stop_on], self.cluster)
        error = failure([o for o in outcomes if o.check.id in self.leading])
        if error is not None:
            raise error
        lasting = []
        for outcome in outcomes:
            check_id = outcome.check.id
            if check_id in self.leading:
                continue
            if outcome.result.status != "fail":
                self._since.pop(check_id, None)
            elif now - self._since.setdefault(check_id, now) >= self.stop_on[check_id]:
                lasting.append(outcome)
        error = failure(lasting)
        if error is not None:
            raise error
