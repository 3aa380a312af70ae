"""The container engine: whether one answers (mode choice, doctor) and how to drive it (kind mode).

Docker, or Podman through kind's podman provider; a client without a daemon does not count.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from lab.errors import CommandFailed, LabError

ENGINES = ("docker", "podman")


class EngineUnavailable(LabError):
    """No container engine answers (failure mode docker-missing)."""


@dataclass(frozen=True)
class ContainerEngine:
    """A container engine CLI that answered ``info``."""

    binary: str
    version: str

    @property
    def name(self) -> str:
        """``docker`` or ``podman`` (what kind's KIND_EXPERIMENTAL_PROVIDER expects)."""
        return "podman" if self.binary.endswith("podman") else "docker"

    def run(self, *args: str, timeout: float = 120.0, check: bool = True) -> str:
        """Run an engine command and return its stdout; a failure carries the command output."""
        argv = [self.binary, *args]
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            partial = (
                exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
            )
            raise CommandFailed(argv, -1, f"timed out after {timeout:.0f}s\n{partial}") from None
        if check and out.returncode != 0:
            raise CommandFailed(argv, out.returncode, out.stdout + out.stderr)
        return out.stdout

    def succeeds(self, *args: str, timeout: float = 60.0) -> bool:
        """Whether an engine command exits 0 (for existence checks such as ``inspect``)."""
        argv = [self.binary, *args]
        try:
            return subprocess.run(argv, capture_output=True, timeout=timeout, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False


# How long provisioning lets ``<engine> info`` take: a busy daemon is slow, not absent.
INFO_TIMEOUT = 20.0


def probe_engines(timeout: float = INFO_TIMEOUT) -> tuple[ContainerEngine | None, list[str]]:
    """The first engine whose ``info`` succeeds, and what each attempt answered."""
    evidence: list[str] = []
    for name in ENGINES:
        binary = shutil.which(name)
        if not binary:
            evidence.append(f"{name}: not on PATH")
            continue
        try:
            out = subprocess.run(
                [binary, "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            evidence.append(f"{binary} info: no answer within {timeout:.0f}s")
            continue
        if out.returncode == 0:
            return ContainerEngine(binary, out.stdout.strip()), evidence
        answer = (out.stderr or out.stdout).strip().splitlines()
        evidence.append(f"{binary} info: exit {out.returncode}: {answer[-1] if answer else 'no output'}")
    return None, evidence


def require_engine(timeout: float = INFO_TIMEOUT) -> ContainerEngine:
    """The reachable engine, or EngineUnavailable with each attempt as evidence."""
    engine, evidence = probe_engines(timeout)
    if engine is None:
        raise EngineUnavailable(
            "no container engine answers: start Docker (or Podman) and re-run, or use `lab up --mode local`",
            evidence,
        )
    return engine


@dataclass(frozen=True)
class EngineProbe:
    """Whether a container engine answers, and what each attempt said."""

    engine: str
    answers: bool
    detail: str


def probe_container_engine(timeout: float = 10.0) -> EngineProbe:
    """Summarise :func:`probe_engines` for the mode choice and the doctor."""
    engine, evidence = probe_engines(timeout)
    if engine is not None:
        return EngineProbe(engine.name, True, f"{engine.name} {engine.version} answers")
    return EngineProbe("", False, "; ".join(evidence))


def choose_mode(requested: str, probe: EngineProbe | None = None) -> tuple[str, str]:
    """Resolve ``auto`` to kind or local; returns (mode, why)."""
    if requested in ("local", "kind", "cluster"):
        return requested, f"--mode {requested} was asked for"
    probe = probe or probe_container_engine()
    if probe.answers:
        return "kind", f"a container engine answers ({probe.detail})"
    return "local", f"no container engine answers ({probe.detail})"
