"""Checks before anything is created: engine, kernel limits, disk, ports, tools."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from lab.config import LabConfig, env_variable_for
from lab.disk_space import judge_free_space
from lab.errors import LabError
from lab.local.ownership import owner_id, owner_of
from lab.local.processes import listening_pid, port_holder, port_is_free
from lab.provision.actions import Context
from lab.provision.render import kustomize_argv
from lab.tools import ToolUnavailable, tool_path

# kind's known-issues page: many pods exhaust the default inotify limits ("too many open files").
INOTIFY_MINIMUMS = {"max_user_watches": 524288, "max_user_instances": 512}


@dataclass(frozen=True)
class Finding:
    """The result of one check; ``remedy`` is what to run when it is not ok."""

    check: str
    ok: bool
    detail: str
    remedy: str = ""

    def line(self) -> str:
        """``✓ check: detail`` or ``✗ check: detail; to fix: remedy``."""
        if self.ok:
            return f"✓ {self.check}: {self.detail}"
        return f"✗ {self.check}: {self.detail}; to fix: {self.remedy}"


def check_engine(ctx: Context) -> Finding:
    """A container engine answers ``info`` (failure mode docker-missing)."""
    engine = ctx.engine_if_any()
    if engine is None:
        return Finding(
            "container engine",
            False,
            "; ".join(ctx.engine_evidence) or "neither docker nor podman answers",
            "install and start Docker (https://docs.docker.com/engine/install/) or use `lab up --mode local`",
        )
    return Finding("container engine", True, f"{engine.name} {engine.version} answers")


def check_inotify(proc_root: Path) -> list[Finding]:
    """The kernel's inotify limits meet kind's recommendation (failure mode inotify-limits)."""
    findings = []
    for key, minimum in INOTIFY_MINIMUMS.items():
        path = proc_root / "sys" / "fs" / "inotify" / key
        try:
            value = int(path.read_text().strip())
        except FileNotFoundError:
            # No /proc entry: not a Linux host; the Docker VM's kernel sets these limits.
            findings.append(Finding(f"inotify {key}", True, f"{path} absent (not Linux): not checked"))
            continue
        except (OSError, ValueError) as exc:
            findings.append(Finding(f"inotify {key}", False, f"cannot read {path}: {exc}", "check /proc"))
            continue
        findings.append(
            Finding(
                f"inotify {key}",
                value >= minimum,
                f"{value} (kind needs >= {minimum})",
                f"sudo sysctl -w fs.inotify.{key}={minimum} (persist it in /etc/sysctl.d/)",
            )
        )
    return findings


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(ctx: Context) -> list[Finding]:
    """Enough free space where the lab writes and where the engine keeps images."""
    places = [("lab home", ctx.config.home)]
    engine = ctx.engine_if_any()
    if engine is not None and engine.name == "docker":
        root = engine.run("info", "--format", "{{.DockerRootDir}}", check=False).strip()
        # On Docker Desktop the root is inside a VM; only a path visible here can be measured.
        if root and Path(root).exists():
            places.append(("docker data", Path(root)))
    findings = []
    for label, place in places:
        try:
            free = shutil.disk_usage(_existing_parent(place)).free
        except OSError as exc:
            findings.append(Finding(f"free disk ({label})", True, f"cannot measure {place}: {exc}"))
            continue
        # The doctor's disk-space check judges with the same function and thresholds.
        verdict = judge_free_space(free, "kind")
        findings.append(
            Finding(
                f"free disk ({label})",
                verdict.level != "fail",
                f"{verdict.summary} at {place}",
                "free space (`docker system prune` removes unused images) or set LAB_HOME elsewhere",
            )
        )
    return findings


def check_registry_port(ctx: Context) -> Finding:
    """The registry's host port is free, or already published by the lab's own registry."""
    config = ctx.config
    port = config.ports.registry
    if port_is_free(port):
        return Finding("registry port", True, f"127.0.0.1:{port} is free")
    engine = ctx.engine_if_any()
    if engine is not None:
        published = engine.run("port", config.names.registry_container, "5000", check=False)
        if f":{port}" in published:
            return Finding("registry port", True, f"127.0.0.1:{port} is the lab registry's")
    variable = env_variable_for("ports", "registry")
    holder = listening_pid(port)
    marker = owner_of(holder) if holder is not None else None
    if marker is not None and marker.owner == owner_id(config.home):
        # The local-mode lab's own registry: not a stranger, but kind mode needs the same port.
        return Finding(
            "registry port",
            False,
            f"127.0.0.1:{port} is held by this lab's local-mode {marker.component} (pid {holder}), "
            "where kind mode publishes its registry container",
            f"`lab down` stops the local lab, or give kind's registry another port with {variable}=<port>",
        )
    return Finding(
        "registry port",
        False,
        f"127.0.0.1:{port} is held by {port_holder(port)}",
        f"stop it (`ss -ltnp 'sport = :{port}'` shows which) or set {variable}=<port>",
    )


def check_tools(config: LabConfig) -> list[Finding]:
    """Kind and a kustomize (pinned, or kubectl's) are installed."""
    findings = []
    try:
        findings.append(Finding("kind", True, str(tool_path(config, "kind"))))
    except ToolUnavailable as exc:
        findings.append(Finding("kind", False, exc.message, "lab tools install --mode kind"))
    try:
        findings.append(Finding("kustomize", True, " ".join(kustomize_argv(config))))
    except LabError as exc:
        findings.append(Finding("kustomize", False, exc.message, "lab tools install --mode kind"))
    return findings


class Preflight:
    """Stop before creating anything when the host cannot run the lab."""

    name = "preflight checks"

    def findings(self, ctx: Context) -> list[Finding]:
        """Every check's result."""
        return [
            check_engine(ctx),
            *check_inotify(ctx.proc_root),
            *check_disk(ctx),
            check_registry_port(ctx),
            *check_tools(ctx.config),
        ]

    def is_done(self, ctx: Context) -> bool:
        """Never: the checks are cheap and the host may have changed since the last run."""
        return False

    def execute(self, ctx: Context) -> None:
        """Raise with every failed check and its remedy."""
        failed = [f for f in self.findings(ctx) if not f.ok]
        if failed:
            raise LabError(
                f"{len(failed)} preflight check(s) failed; first fix: {failed[0].remedy}",
                [f.line() for f in failed],
            )

    def plan(self, ctx: Context) -> list[str]:
        """The checks as they come out right now (the real run stops at any ✗)."""
        return [f.line() for f in self.findings(ctx)]
