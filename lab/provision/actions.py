"""Provisioning as an ordered list of small actions, in the manner of kind's create actions.

Each action knows whether it is already done (from facts it reads, never from a marker
file), how to do it, and what it would change (the dry-run plan). The runner shows each
action as a timed step and stops at the first failure with that action's evidence.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

import urllib3

from lab.config import LabConfig
from lab.deadline import Deadline
from lab.engine import ContainerEngine, probe_engines, require_engine
from lab.errors import ClusterUnreachable, LabError
from lab.kube import ApiError, Kube
from lab.kube_objects import Manifest
from lab.progress import Progress
from lab.provision.workspace import Workspace


@dataclass
class Context:
    """What every action gets: the config, the status line and cached lookups."""

    config: LabConfig
    progress: Progress
    # Test seam: where the inotify limits are read from.
    proc_root: Path = Path("/proc")
    out: TextIO = field(default_factory=lambda: sys.stdout)
    # kind, or cluster (any cluster a kubeconfig reaches): what the doctor's checks judge as.
    mode: str = "kind"
    workspace: Workspace = field(init=False)
    _engine: ContainerEngine | None = field(default=None, init=False)
    _engine_evidence: list[str] | None = field(default=None, init=False)
    _kube: Kube | None = field(default=None, init=False)
    # A plan asks once: a dead API server costs its timeout a single time, not once per step.
    _kube_unreachable: bool = field(default=False, init=False)
    # Cluster mode: components someone else installed, by name (lab.ownership.FoundComponent);
    # their steps use them as they are.
    found_components: dict[str, Any] = field(default_factory=dict, init=False)
    # Each drift a step repaired ("update <object>: <field> was X, set back to Y"): `up` prints
    # them as it goes, `e2e` lists them in its result (a caller passes its own list to read them).
    repairs: list[str] = field(default_factory=list)
    # Rendered objects per step, so is_done and execute build the manifests once.
    rendered: dict[str, list[Manifest]] = field(default_factory=dict, init=False)
    # Workspaces whose overlays and staged mirror this run has brought up to date itself.
    prepared: set[Path] = field(default_factory=set, init=False)
    _scratch: Path | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.workspace = Workspace.for_config(self.config)

    def scratch_workspace(self) -> Workspace:
        """A throw-away workspace for rendering during a dry run (nothing under $LAB_HOME changes)."""
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="lab-plan-"))
        return Workspace(self._scratch)

    def close(self) -> None:
        """Remove the dry run's scratch workspace."""
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def engine(self) -> ContainerEngine:
        """The reachable container engine (EngineUnavailable otherwise)."""
        if self._engine is None:
            self._engine = require_engine()
        return self._engine

    def engine_if_any(self) -> ContainerEngine | None:
        """The engine, or None without raising (for plans); the probe runs once."""
        if self._engine is None and self._engine_evidence is None:
            self._engine, self._engine_evidence = probe_engines()
        return self._engine

    @property
    def engine_evidence(self) -> list[str]:
        """What each engine answered when none was reachable."""
        self.engine_if_any()
        return self._engine_evidence or []

    def kube(self) -> Kube:
        """The connection to the lab cluster (ClusterUnreachable otherwise)."""
        if self._kube is None:
            self._kube = Kube.connect(self.config)
        return self._kube

    def kube_if_reachable(self) -> Kube | None:
        """The cluster connection, or None when there is no cluster to ask (for plans)."""
        if self._kube is None and not self._kube_unreachable:
            # Asked whether or not an engine answers: any reachable API server is the witness.
            try:
                self._kube = Kube.connect(self.config, timeout=5.0)
            except ClusterUnreachable:
                self._kube_unreachable = True
        return self._kube

    def deadline(self) -> Deadline:
        """A fresh wait budget for one step's waits."""
        return Deadline(self.config.cluster_timeout)


class Action(Protocol):
    """One provisioning step."""

    name: str

    def is_done(self, ctx: Context) -> bool:
        """Whether the cluster and host already match the desired state (facts only)."""
        ...

    def execute(self, ctx: Context) -> None:
        """Make it so; raise LabError with evidence on failure."""
        ...

    def plan(self, ctx: Context) -> list[str]:
        """What executing would change, without changing anything."""
        ...


class StepFailed(LabError):
    """An action failed; the message names the step, the details carry its evidence."""


def _as_lab_error(exc: BaseException) -> LabError | None:
    if isinstance(exc, LabError):
        return exc
    if isinstance(exc, ApiError):
        body = exc.body.decode() if isinstance(exc.body, bytes) else str(exc.body or "")
        return LabError(
            f"the Kubernetes API answered {exc.status} {exc.reason}", body.strip().splitlines()[-10:]
        )
    if isinstance(exc, urllib3.exceptions.HTTPError):
        return LabError(f"lost the connection to the Kubernetes API: {exc}")
    return None


def run_actions(actions: Sequence[Action], ctx: Context) -> int:
    """Run each action that is not done yet; stop at the first failure.

    Returns 0 when every action is done; raises StepFailed naming the failed step.
    """
    for action in actions:
        done = False
        try:
            with ctx.progress.step(action.name):
                done = action.is_done(ctx)
                if not done:
                    action.execute(ctx)
        except Exception as exc:
            error = _as_lab_error(exc)
            if error is None:
                raise
            raise StepFailed(f"step '{action.name}' failed: {error.message}", error.details) from exc
        if done:
            ctx.progress.info("   already in place, nothing changed")
    return 0


def print_plan(actions: Sequence[Action], ctx: Context, title: str) -> int:
    """Print every action's plan in order (the dry run); changes nothing."""
    print(title, file=ctx.out)
    try:
        for number, action in enumerate(actions, 1):
            print(f"{number}. {action.name}", file=ctx.out)
            try:
                lines = action.plan(ctx)
            except Exception as exc:
                error = _as_lab_error(exc)
                if error is None:
                    raise
                lines = [f"cannot plan this step: {error}"]
            for line in lines or ["nothing to change"]:
                print(f"   - {line}", file=ctx.out)
    finally:
        ctx.close()
    return 0
