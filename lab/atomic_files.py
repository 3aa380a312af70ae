"""Writes that never leave a half-written file behind."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: Path, text: str | bytes, mode: int = 0o644) -> None:
    """Write a file (text or bytes) so readers see the old or the new content, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as handle:
            handle.write(text)
        os.chmod(staging, mode)
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
