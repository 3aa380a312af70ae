"""The one judge of free disk space, used by ``lab doctor`` (check disk-space) and kind preflight."""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
# (fail below, warn below) in GiB. Kind mode: the node image plus the KFP, KServe and Model
# Registry images take roughly 8 GiB, more once a few models are served. Local mode keeps
# registry blobs and a small PostgreSQL.
THRESHOLDS = {"kind": (10, 20), "local": (1, 5)}


@dataclass(frozen=True)
class DiskVerdict:
    """``level`` is ok, warn or fail; ``summary`` says why in one line."""

    level: str
    summary: str


def judge_free_space(free_bytes: int, mode: str) -> DiskVerdict:
    """How ``free_bytes`` compares with what ``mode`` (``local`` or ``kind``) needs."""
    free = free_bytes / GIB
    fail_below, warn_below = THRESHOLDS[mode]
    if free < fail_below:
        return DiskVerdict("fail", f"only {free:.1f} GiB free; {mode} mode needs {fail_below} GiB")
    if free < warn_below:
        return DiskVerdict("warn", f"{free:.1f} GiB free; {warn_below} GiB or more is comfortable")
    return DiskVerdict("ok", f"{free:.0f} GiB free (fails below {fail_below} GiB)")
