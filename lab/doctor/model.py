"""What a doctor check is and what it finds.

A :class:`Check` is a small declared unit in the manner of ``brew doctor``'s ``check_*``
methods and popeye's coded findings: a stable id (the failure-mode id users search for),
the component group it belongs to, what it inspects, a ``detect`` function that judges
already-collected :class:`~lab.doctor.evidence.Evidence` and returns a :class:`Result`,
and optionally a safe ``fix``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from lab.config import LabConfig
    from lab.doctor.evidence import Evidence
    from lab.progress import Progress

# Text output is grouped in this order (flutter doctor groups its validators by area).
GROUPS = (
    "host",
    "cluster",
    "registry",
    "database",
    "model-registry",
    "cert-manager",
    "kfp",
    "kserve",
    "pipeline",
)
MODES = frozenset({"local", "kind", "cluster"})
# Checks that do not say otherwise cover the labs on this machine; cluster mode (any cluster
# a kubeconfig reaches) runs only the checks that declare it.
DEFAULT_MODES = frozenset({"local", "kind"})

Status = Literal["ok", "warn", "fail", "skipped"]
SYMBOLS: dict[str, str] = {"ok": "✓", "warn": "!", "fail": "✗", "skipped": "-"}

_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def _lines(items: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(items, str):
        return (items,)
    return tuple(str(item) for item in items)


@dataclass(frozen=True)
class Result:
    """What one check found.

    ``evidence`` holds the exact facts that prove the finding (pod, container, reason, exit
    code, event message, log tail, file or sysctl value); ``remedy`` holds paste-able shell
    lines (commands, with explanations as ``#`` comments so the block still pastes).
    """

    status: Status
    summary: str
    evidence: tuple[str, ...] = ()
    remedy: tuple[str, ...] = ()
    fixable: bool = False

    @classmethod
    def ok(cls, summary: str, evidence: Iterable[str] | str = ()) -> Result:
        """Nothing wrong; ``evidence`` may still say what was looked at."""
        return cls("ok", summary, _lines(evidence))

    @classmethod
    def warn(
        cls,
        summary: str,
        evidence: Iterable[str] | str = (),
        remedy: Iterable[str] | str = (),
        fixable: bool = False,
    ) -> Result:
        """Works for now, but something deserves attention."""
        return cls("warn", summary, _lines(evidence), _lines(remedy), fixable)

    @classmethod
    def fail(
        cls,
        summary: str,
        evidence: Iterable[str] | str = (),
        remedy: Iterable[str] | str = (),
        fixable: bool = False,
    ) -> Result:
        """Broken: the evidence proves it and the remedy says what to run."""
        return cls("fail", summary, _lines(evidence), _lines(remedy), fixable)

    @classmethod
    def skipped(cls, why: str, evidence: Iterable[str] | str = ()) -> Result:
        """Not applicable here; ``why`` says so."""
        return cls("skipped", why, _lines(evidence))


@dataclass(frozen=True)
class FixOutcome:
    """What an attempted fix did."""

    applied: bool
    message: str


# ``lab up`` of a cluster mode (kind or cluster): (config, mode, progress) -> exit code. The
# caller that owns provisioning (``lab doctor``) injects it into fixes that re-apply the lab,
# so the doctor never imports provisioning (whose preflight runs the doctor's checks).
Reprovision = Callable[["LabConfig", str, "Progress"], int]


@dataclass
class FixContext:
    """What a fix gets: the config, the resolved mode, the evidence, the finding it fixes.

    ``reprovision`` is the mode's ``lab up``, when the caller injected one.
    """

    config: LabConfig
    mode: str
    evidence: Evidence
    result: Result
    progress: Progress
    reprovision: Reprovision | None = None


@dataclass(frozen=True)
class Check:
    """One declared check: a stable id, a group, what it inspects, how it judges, how it fixes."""

    id: str
    title: str
    group: str
    inspects: str
    detect: Callable[[Evidence], Result] = field(repr=False)
    modes: frozenset[str] = DEFAULT_MODES
    fix: Callable[[FixContext], FixOutcome] | None = field(default=None, repr=False)
    fix_description: str = ""

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ValueError(f"check id {self.id!r} must be lowercase words joined by '-'")
        if self.group not in GROUPS:
            raise ValueError(f"check {self.id}: group {self.group!r} is not one of {', '.join(GROUPS)}")
        if not self.modes or not self.modes <= MODES:
            raise ValueError(f"check {self.id}: modes must be a non-empty subset of {sorted(MODES)}")
        if self.fix is not None and not self.fix_description:
            raise ValueError(f"check {self.id}: a fix needs a fix_description (shown when asking consent)")

    def applies_to(self, mode: str) -> bool:
        """Whether the check is meaningful in ``mode``."""
        return mode in self.modes

    def not_applicable(self, mode: str) -> Result:
        """The skipped result for a mode the check does not cover."""
        only = " and ".join(sorted(self.modes))
        return Result.skipped(f"applies to {only} mode only (mode is {mode})")
