"""Running checks: concurrently, each crash isolated, slow ones flagged, one report.

As in flutter's doctor, a check that raises becomes a failed "crashed" result instead of
taking the doctor down, and a check that takes unexpectedly long is marked slow.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from lab.config import LabConfig
from lab.doctor.checks import select
from lab.doctor.checks._found import as_found
from lab.doctor.evidence import Evidence, EvidenceUnavailable
from lab.doctor.model import Check, FixOutcome, Result
from lab.invocation import as_invoked

SLOW_SECONDS = 5.0
# Every network call has its own short timeout; this only bounds a check stuck elsewhere.
DEADLINE_SECONDS = 60.0
WORKERS = 8


@dataclass(frozen=True)
class Outcome:
    """One check's result in a run, with timing and what a fix did."""

    check: Check
    result: Result
    elapsed: float
    crashed: bool = False
    fix: FixOutcome | None = None

    @property
    def slow(self) -> bool:
        """Took long enough to say so."""
        return self.elapsed >= SLOW_SECONDS

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "id": self.check.id,
            "title": self.check.title,
            "group": self.check.group,
            "status": self.result.status,
            "summary": self.result.summary,
            "evidence": list(self.result.evidence),
            "remedy": list(self.result.remedy),
            "fixable": self.result.fixable and self.check.fix is not None,
            "crashed": self.crashed,
            "elapsed": round(self.elapsed, 3),
            "slow": self.slow,
            "fix": None if self.fix is None else {"applied": self.fix.applied, "message": self.fix.message},
        }


@dataclass
class Report:
    """Everything one doctor run found."""

    mode: str
    mode_reason: str
    home: str
    outcomes: list[Outcome]
    elapsed: float
    evidence: Evidence = field(repr=False, compare=False)

    def outcome(self, check_id: str) -> Outcome:
        """The outcome of one check (KeyError when it did not run)."""
        for outcome in self.outcomes:
            if outcome.check.id == check_id:
                return outcome
        raise KeyError(check_id)

    def counts(self) -> dict[str, int]:
        """How many checks ended in each status."""
        counts = {"ok": 0, "warn": 0, "fail": 0, "skipped": 0}
        for outcome in self.outcomes:
            counts[outcome.result.status] += 1
        return counts

    @property
    def failed(self) -> list[Outcome]:
        """Outcomes with status fail (crashed checks included)."""
        return [o for o in self.outcomes if o.result.status == "fail"]

    @property
    def exit_code(self) -> int:
        """0 when nothing fails, 1 otherwise."""
        return 1 if self.failed else 0

    def as_dict(self) -> dict[str, Any]:
        """JSON form of the whole report."""
        return {
            "mode": self.mode,
            "mode_reason": self.mode_reason,
            "home": self.home,
            "elapsed": round(self.elapsed, 3),
            "counts": self.counts(),
            "exit_code": self.exit_code,
            "checks": [o.as_dict() for o in self.outcomes],
        }


def run_check(check: Check, evidence: Evidence) -> Outcome:
    """Run one check; never raises."""
    start = time.monotonic()
    crashed = False
    try:
        if not check.applies_to(evidence.mode):
            result = check.not_applicable(evidence.mode)
        else:
            # Whose component it is decides the remedy (lab.ownership): never `lab up` or --fix
            # for one someone else installed.
            result = as_found(check, evidence, check.detect(evidence))
    except EvidenceUnavailable as exc:
        result = Result.skipped(f"cannot be checked here: {exc}", exc.detail)
    except Exception as exc:  # crash isolation: a broken check must not take the doctor down
        crashed = True
        frames = traceback.format_exception(exc)
        result = Result.fail(
            f"check crashed: {type(exc).__name__}: {exc}",
            [line.rstrip() for chunk in frames[-3:] for line in chunk.splitlines()],
            [
                "# a bug in lab doctor, not necessarily in your lab; report it with the bundle:",
                f"lab doctor --bundle doctor-{check.id}.tar.gz {check.id}",
            ],
        )
    return Outcome(check, _spelled_for_here(result), time.monotonic() - start, crashed)


def _spelled_for_here(result: Result) -> Result:
    # Checks write remedies as `lab ...`; from a fresh clone only `nox -s ...` runs it.
    return dataclasses.replace(result, remedy=tuple(as_invoked(line) for line in result.remedy))


def run_checks(
    checks: Sequence[Check], evidence: Evidence, *, deadline: float = DEADLINE_SECONDS
) -> list[Outcome]:
    """Run checks concurrently (they share evidence); outcomes come back in the given order."""
    if not checks:
        return []
    _ = evidence.mode  # resolve the mode once, before the threads race for it
    pool = ThreadPoolExecutor(max_workers=min(WORKERS, len(checks)), thread_name_prefix="doctor")
    futures = [pool.submit(run_check, check, evidence) for check in checks]
    done, _ = wait(futures, timeout=deadline)
    outcomes = []
    for check, future in zip(checks, futures, strict=True):
        if future in done:
            outcomes.append(future.result())
        else:
            outcomes.append(
                Outcome(
                    check,
                    Result.fail(
                        f"did not finish within {deadline:.0f}s",
                        remedy=[as_invoked(f"lab doctor {check.id}  # run it alone to see where it hangs")],
                    ),
                    deadline,
                    crashed=True,
                )
            )
    pool.shutdown(wait=False, cancel_futures=True)
    return outcomes


def diagnose(
    config: LabConfig,
    ids: Sequence[str] | None = None,
    mode: str | None = None,
    *,
    evidence: Evidence | None = None,
) -> Report:
    """Run the doctor's checks and return the report.

    ``lab demo`` and ``lab e2e`` call this when a step fails, then print
    :func:`~lab.doctor.render.render_text` of the result.

    Args:
        config: The lab config.
        ids: Check ids to run (all when None or empty); unknown ids raise ``UnknownCheck``.
        mode: ``auto``/``local``/``kind``; default ``config.mode``.
        evidence: A prepared collector (e.g. fed a ``RecordedCluster``); built from config when None.

    Returns:
        The report; ``report.exit_code`` is 1 when any check fails.
    """
    checks = select(list(ids) if ids else None)
    evidence = evidence or Evidence(config, mode=mode)
    start = time.monotonic()
    outcomes = run_checks(checks, evidence)
    return Report(
        evidence.mode, evidence.mode_reason, str(config.home), outcomes, time.monotonic() - start, evidence
    )
