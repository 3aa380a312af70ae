"""disk-space: enough free disk where the lab keeps its data and images."""

from __future__ import annotations

from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, Result

GIB = 1024**3
# (fail below, warn below) in GiB: kind node images and Kubeflow images take several GiB.
THRESHOLDS = {"kind": (5, 20), "local": (1, 5)}


def detect(evidence: Evidence) -> Result:
    """Compare free space on $LAB_HOME's filesystem with what the mode needs."""
    disk = evidence.disk()
    free = disk.free_bytes / GIB
    line = f"{free:.1f} GiB free of {disk.total_bytes / GIB:.1f} GiB on the filesystem of {disk.path}"
    fail_below, warn_below = THRESHOLDS[evidence.mode]
    remedy = ["df -h " + disk.path, "lab down --purge  # drops the lab's own data"]
    if evidence.mode == "kind":
        remedy.append("docker system prune  # removes unused images and stopped containers")
    if free < fail_below:
        return Result.fail(
            f"only {free:.1f} GiB free; {evidence.mode} mode needs {fail_below} GiB", line, remedy
        )
    if free < warn_below:
        return Result.warn(f"{free:.1f} GiB free; {warn_below} GiB or more is comfortable", line, remedy)
    return Result.ok(f"{free:.0f} GiB free", line)


CHECK = Check(
    id="disk-space",
    title="free disk space",
    group="host",
    inspects="free bytes on the filesystem of $LAB_HOME",
    detect=detect,
)
