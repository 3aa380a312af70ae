"""disk-space: enough free disk where the lab keeps its data and images."""

from __future__ import annotations

from lab.disk_space import GIB, judge_free_space
from lab.doctor.evidence import DiskFact, Evidence
from lab.doctor.model import Check, Result

_LEVELS = ("ok", "warn", "fail")


def _line(disk: DiskFact, what: str) -> str:
    return (
        f"{disk.free_bytes / GIB:.1f} GiB free of {disk.total_bytes / GIB:.1f} GiB "
        f"on the filesystem of {disk.path}{what}"
    )


def detect(evidence: Evidence) -> Result:
    """Compare free space with what the mode needs (one judge: lab.disk_space).

    In kind mode also where Docker keeps images, when that directory is visible here.
    """
    disk = evidence.disk()
    places = [(disk, "")]
    engine_disk = evidence.engine_disk() if evidence.mode == "kind" else None
    if engine_disk is not None:
        places.append((engine_disk, " (docker data)"))
    verdicts = [(judge_free_space(place.free_bytes, evidence.mode), place, what) for place, what in places]
    # The worst place speaks; $LAB_HOME's when they are alike.
    verdict, worst, what = max(verdicts, key=lambda v: _LEVELS.index(v[0].level))
    lines = [_line(place, what) for _, place, what in verdicts]
    remedy = ["df -h " + worst.path, "lab down --purge  # drops the lab's own data"]
    if evidence.mode == "kind":
        remedy.append("docker system prune  # removes unused images and stopped containers")
    if verdict.level == "fail":
        return Result.fail(verdict.summary, lines, remedy)
    if verdict.level == "warn":
        return Result.warn(verdict.summary, lines, remedy)
    return Result.ok(verdict.summary, lines)


CHECK = Check(
    id="disk-space",
    title="free disk space",
    group="host",
    inspects="free bytes on the filesystem of $LAB_HOME (and, in kind mode, of Docker's data root)",
    detect=detect,
)
