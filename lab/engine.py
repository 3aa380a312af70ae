"""Which mode the lab runs in: kind when a container engine answers, else local."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class EngineProbe:
    """Result of asking the container engines whether they answer."""

    engine: str
    answers: bool
    detail: str


def probe_container_engine(timeout: float = 10.0) -> EngineProbe:
    """Ask docker, then podman, for ``info``; a client without a daemon does not count."""
    tried = []
    for engine in ("docker", "podman"):
        binary = shutil.which(engine)
        if not binary:
            tried.append(f"{engine}: not installed")
            continue
        try:
            proc = subprocess.run(
                [binary, "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            tried.append(f"{engine}: `{engine} info` timed out after {timeout:.0f}s")
            continue
        if proc.returncode == 0 and proc.stdout.strip():
            return EngineProbe(engine, True, f"{engine} {proc.stdout.strip()} answers")
        last = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
        tried.append(f"{engine}: client present, daemon does not answer ({last[:160]})")
    return EngineProbe("", False, "; ".join(tried))


def choose_mode(requested: str, probe: EngineProbe | None = None) -> tuple[str, str]:
    """Resolve ``auto`` to kind or local; returns (mode, why)."""
    if requested in ("local", "kind"):
        return requested, f"--mode {requested} was asked for"
    probe = probe or probe_container_engine()
    if probe.answers:
        return "kind", f"a container engine answers ({probe.detail})"
    return "local", f"no container engine answers ({probe.detail})"
