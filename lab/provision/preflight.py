"""Checks before anything is created: the doctor's own host checks, judged in kind mode.

Preflight has no judges of its own: it runs the declared doctor checks for the container
engine, the inotify limits, free disk, the registry port and kind mode's tools, and stops with
their ids, evidence and remedies (``lab doctor <id>`` shows the same finding).
"""

from __future__ import annotations

from lab.doctor import Outcome
from lab.provision.actions import Context
from lab.provision.diagnosis import failure, outcome_lines, run_doctor_checks

CHECKS = ("docker-missing", "inotify-limits", "disk-space", "kind-registry-port", "kind-tools")


class Preflight:
    """Stop before creating anything when the host cannot run the lab."""

    name = "preflight checks"

    def outcomes(self, ctx: Context) -> list[Outcome]:
        """Every preflight check's outcome, from fresh host facts."""
        return run_doctor_checks(ctx, CHECKS)

    def is_done(self, ctx: Context) -> bool:
        """Never: the checks are cheap and the host may have changed since the last run."""
        return False

    def execute(self, ctx: Context) -> None:
        """Raise with every failed check's evidence and remedy."""
        error = failure(self.outcomes(ctx))
        if error is not None:
            raise error

    def plan(self, ctx: Context) -> list[str]:
        """The checks as they come out right now (the real run stops at any ✗)."""
        return [line for outcome in self.outcomes(ctx) for line in outcome_lines(outcome)]
