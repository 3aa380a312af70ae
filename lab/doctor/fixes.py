"""Safe fixes behind ``--fix``: ask per fix, apply, then check again with fresh evidence."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from lab.doctor.model import Check, FixContext, FixOutcome, Reprovision, Result
from lab.doctor.runner import Report, run_checks
from lab.progress import Progress

Consent = Callable[[Check, Result], bool]


def fix_candidates(report: Report) -> list[tuple[Check, Result]]:
    """Findings that have a safe fix."""
    return [
        (o.check, o.result)
        for o in report.outcomes
        if o.check.fix is not None and o.result.fixable and o.result.status in ("fail", "warn")
    ]


def apply_fixes(
    report: Report,
    consent: Consent,
    progress: Progress,
    *,
    refusal: str = "declined",
    reprovision: Reprovision | None = None,
) -> Report:
    """Apply each fix the user consents to, then re-run every check of the report.

    Args:
        report: The diagnosis to act on.
        consent: Asked once per fix; False leaves it alone.
        progress: Where fixes announce themselves.
        refusal: The message recorded when consent is not given.
        reprovision: The mode's ``lab up``, for fixes that re-apply the lab
            (:func:`lab.provision.reprovision`); without it they say what to run.

    Returns:
        A new report from fresh evidence, each fixed check carrying its :class:`FixOutcome`.
    """
    candidates = fix_candidates(report)
    if not candidates:
        return report
    outcomes: dict[str, FixOutcome] = {}
    evidence = report.evidence
    for check, result in candidates:
        if not consent(check, result):
            outcomes[check.id] = FixOutcome(False, refusal)
            continue
        assert check.fix is not None
        context = FixContext(evidence.config, report.mode, evidence, result, progress, reprovision)
        try:
            with progress.step(f"fix {check.id}: {check.fix_description}"):
                outcomes[check.id] = check.fix(context)
        except Exception as exc:  # a failing fix is reported, never fatal
            outcomes[check.id] = FixOutcome(False, f"fix failed: {type(exc).__name__}: {exc}")
    if not any(o.applied for o in outcomes.values()):
        return dataclasses.replace(
            report,
            outcomes=[dataclasses.replace(o, fix=outcomes.get(o.check.id)) for o in report.outcomes],
        )
    fresh = evidence.fresh()
    start = time.monotonic()
    rechecked = run_checks([o.check for o in report.outcomes], fresh)
    return dataclasses.replace(
        report,
        outcomes=[dataclasses.replace(o, fix=outcomes.get(o.check.id)) for o in rechecked],
        elapsed=report.elapsed + time.monotonic() - start,
        evidence=fresh,
    )
