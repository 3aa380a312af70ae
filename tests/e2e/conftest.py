"""The cluster tier: one kind cluster per session, provisioned by ``up_kind``, held by pytest-kind.

Without a container engine the whole tier is skipped with the engine's own answer as the
reason. With one, a missing kind binary is a failure (the tier must not pass by doing
nothing), and pytest-kind is always given the lab's kind binary so it never downloads one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from lab.config import LabConfig, load_config
from lab.engine import probe_engines
from lab.kube import Kube
from lab.progress import Progress
from lab.provision import down_kind, up_kind
from lab.provision.cluster_mode import up_cluster
from lab.provision.control_plane import COMPONENTS, ControlPlane, start_control_plane, stop_control_plane
from lab.provision.static_volumes import NAME_PREFIX
from lab.tools import ToolUnavailable, tool_path
from tests.conftest import NO_MIRROR, UPSTREAM_MIRROR, make_home

E2E_CLUSTER = "kubeflow-lab-e2e"


@dataclass
class ProvisionedLab:
    """The provisioned lab as the tests meet it."""

    config: LabConfig
    kind_cluster: Any  # pytest_kind.KindCluster: kubectl(), port_forward()
    kube: Kube


def e2e_config() -> LabConfig:
    env = dict(os.environ)
    env.setdefault("LAB_CLUSTER_NAME", E2E_CLUSTER)
    # The lab finds a mirror itself (LAB_MANIFESTS_DIR, $LAB_HOME/manifests, ../shared/upstream),
    # which makes the install independent of GitHub; without one the pinned remote refs are used.
    return load_config(env=env)


@pytest.fixture(scope="session")
def provisioned_lab(request: pytest.FixtureRequest) -> Iterator[ProvisionedLab]:
    engine, evidence = probe_engines()
    if engine is None:
        pytest.skip("cluster tier needs a container engine and none answers: " + "; ".join(evidence))
    config = e2e_config()
    try:
        kind, kubectl = tool_path(config, "kind"), tool_path(config, "kubectl")
    except ToolUnavailable as missing:
        pytest.fail(f"{engine.name} answers, so the cluster tier must run: {missing}")
    options = request.config.option
    keep = bool(options.keep_cluster)
    kubeconfig = Path(options.kubeconfig or config.home / "e2e" / "kubeconfig").resolve()
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    # pytest-kind reuses a cluster of its --cluster-name, reading its --kubeconfig; an
    # absolute --kind-bin keeps it from downloading kind.
    options.cluster_name = config.names.cluster
    options.kubeconfig = str(kubeconfig)
    options.kind_bin = str(Path(kind).resolve())
    options.kind_kubectl_bin = str(Path(kubectl).resolve())
    with pytest.MonkeyPatch.context() as env:
        # kind and the kubernetes client both honour KUBECONFIG: the user's own stays untouched.
        env.setenv("KUBECONFIG", str(kubeconfig))
        up_kind(config, Progress(), dry_run=False)
        cluster = request.getfixturevalue("kind_cluster")
        try:
            yield ProvisionedLab(config, cluster, Kube.connect(config))
        finally:
            if not keep:
                down_kind(config, Progress(), purge=True)


# ---------------------------------------------------------------------------------------------
# The control-plane tier: a real kube-apiserver (and etcd, controller-manager, scheduler, kwok)
# built from Go modules by `lab tools install`, so `--mode cluster` meets a real API server on
# a machine without containers.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def control_plane() -> Iterator[tuple[LabConfig, ControlPlane]]:
    """A running control plane with kwok nodes and static volumes; stopped after the session."""
    home = make_home()
    config = load_config(env={"LAB_HOME": str(home)})
    try:
        for tool in COMPONENTS:
            tool_path(config, tool)
    except ToolUnavailable as missing:
        pytest.skip(f"control-plane tier: {missing}")
    plane = start_control_plane(config, home / "control-plane")
    try:
        yield config, plane
    finally:
        stop_control_plane(plane)
        shutil.rmtree(home, ignore_errors=True)


def cluster_mode_config(home: Path, plane: ControlPlane, **env: str) -> LabConfig:
    """The config `lab up --mode cluster --kubeconfig ... --manifests-dir <mirror>` builds."""
    return load_config(
        env={
            "LAB_HOME": str(home),
            "LAB_MODE": "cluster",
            "LAB_KUBECONFIG": str(plane.kubeconfig),
            "LAB_KUBE_CONTEXT": plane.context,
            "LAB_MANIFESTS_DIR": str(UPSTREAM_MIRROR),
            "LAB_CLUSTER_REGISTRY": "127.0.0.1:5001",
            "LAB_CLUSTER_TIMEOUT": "300",
            **env,
        }
    )


@dataclass
class ClusterLab:
    """The lab as `lab up --mode cluster` left it on the control plane, plus how long that took."""

    config: LabConfig
    kube: Kube
    plane: ControlPlane
    up_seconds: float


@pytest.fixture(scope="session")
def cluster_lab(control_plane: tuple[LabConfig, ControlPlane]) -> ClusterLab:
    """The whole stack installed from the upstream mirror by the lab's own cluster actions."""
    if UPSTREAM_MIRROR is None:
        pytest.skip(f"control-plane tier installs from the upstream mirror: {NO_MIRROR}")
    tools_config, plane = control_plane
    config = cluster_mode_config(tools_config.home, plane)
    started = time.monotonic()
    up_cluster(config, Progress(), dry_run=False)
    return ClusterLab(config, Kube.connect(config), plane, time.monotonic() - started)


def run_lab(
    config: LabConfig, command: str, *argv: str, target: list[str], timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    """``lab <command> --mode cluster <target> <argv>`` in a fresh process, as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "lab", command, "--mode", "cluster", *target, *argv],
        capture_output=True,
        text=True,
        env={
            "LAB_HOME": str(config.home),
            "LAB_MANIFESTS_DIR": config.manifests_dir,
            "PATH": "/usr/bin:/bin",
            **env,
        },
        timeout=timeout,
    )


def static_volume_phases(lab: ClusterLab) -> dict[str, str]:
    """The phase of each of the control plane's static PersistentVolumes, by name."""
    volumes = client.CoreV1Api(lab.kube.api).list_persistent_volume().items
    return {v.metadata.name: v.status.phase for v in volumes if v.metadata.name.startswith(NAME_PREFIX)}
