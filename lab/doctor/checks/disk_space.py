"""disk-space: enough free disk where the lab keeps its data and images."""

from __future__ import annotations

from lab.disk_space import GIB, judge_free_space
from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, Result


def detect(evidence: Evidence) -> Result:
    """Compare free space on $LAB_HOME's filesystem with what the mode needs (one judge: lab.disk_space)."""
    disk = evidence.disk()
    line = (
        f"{disk.free_bytes / GIB:.1f} GiB free of {disk.total_bytes / GIB:.1f} GiB "
        f"on the filesystem of {disk.path}"
    )
    verdict = judge_free_space(disk.free_bytes, evidence.mode)
    remedy = ["df -h " + disk.path, "lab down --purge  # drops the lab's own data"]
    if evidence.mode == "kind":
        remedy.append("docker system prune  # removes unused images and stopped containers")
    if verdict.level == "fail":
        return Result.fail(verdict.summary, line, remedy)
    if verdict.level == "warn":
        return Result.warn(verdict.summary, line, remedy)
    return Result.ok(verdict.summary, line)


CHECK = Check(
    id="disk-space",
    title="free disk space",
    group="host",
    inspects="free bytes on the filesystem of $LAB_HOME",
    detect=detect,
)
