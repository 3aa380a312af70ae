"""Failures a cluster-mode lab meets after it was installed, on the real control plane.

Each failure is induced the way it happens for real (a Deployment scaled to 0, a
ClusterStorageContainer edited by hand, a kubelet's crash-loop status with its termination
message, a namespace held by a finalizer, volumes left Released by earlier cycles); the
doctor must name it with its evidence, and its printed remedy, run as printed, must repair
it. Runs after
``test_cluster_mode.py`` (which takes the lab down last): the module fixture brings it up.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from kubernetes import client

from lab.config import LabConfig
from lab.deadline import Deadline, wait_until
from lab.errors import LabError
from lab.kube import Kube
from lab.progress import Progress
from lab.provision.cluster_mode import down_cluster, up_cluster
from lab.provision.control_plane import CONTEXT, ControlPlane
from lab.tools import tool_path
from tests.conftest import make_home
from tests.e2e.conftest import static_volume_phases

if TYPE_CHECKING:
    from tests.e2e.conftest import ClusterLab

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def lab(cluster_lab: ClusterLab) -> ClusterLab:
    """The lab installed (again: the previous module ends with `down`), its flags recorded by `up`."""
    started = time.monotonic()
    assert up_cluster(cluster_lab.config, Progress(quiet=True), dry_run=False) == 0
    print(f"up --mode cluster: {time.monotonic() - started:.1f}s")
    return cluster_lab


def user_env(lab: ClusterLab) -> dict[str, str]:
    """A user's shell: the lab's home, kubectl and `lab` on PATH, and no LAB_* flag defaults.

    Without LAB_MANIFESTS_DIR or LAB_CLUSTER_REGISTRY, a remedy that works must carry them itself.
    """
    kubectl = tool_path(lab.config, "kubectl").parent
    return {
        "LAB_HOME": str(lab.config.home),
        "PATH": f"{BIN}:{kubectl}:/usr/bin:/bin",
        "HOME": os.environ["HOME"],
    }


def doctor(lab: ClusterLab, check: str) -> dict[str, Any]:
    """``lab doctor --mode cluster --kubeconfig K --context C --json CHECK``: that check's finding."""
    argv = ["--kubeconfig", str(lab.plane.kubeconfig), "--context", lab.plane.context, "--json", check]
    proc = subprocess.run(
        [sys.executable, "-m", "lab", "doctor", "--mode", "cluster", *argv],
        capture_output=True,
        text=True,
        env=user_env(lab),
        timeout=180,
    )
    assert proc.returncode in (0, 1), proc.stderr
    (finding,) = json.loads(proc.stdout)["checks"]
    assert finding["id"] == check
    return finding


def run_remedy(lab: ClusterLab, remedy: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Paste the remedy into bash as printed (comments and all); every command must succeed."""
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(remedy)],
        capture_output=True,
        text=True,
        env=user_env(lab),
        timeout=timeout,
    )
    assert proc.returncode == 0, f"remedy failed:\n{chr(10).join(remedy)}\n{proc.stdout}\n{proc.stderr}"
    return proc


def settle(lab: ClusterLab, check: str, seconds: float = 180) -> None:
    """Wait until the doctor finds nothing wrong with ``check`` any more."""

    def still_failing() -> list[str]:
        finding = doctor(lab, check)
        return [] if finding["status"] == "ok" else [finding["summary"]]

    wait_until(still_failing, Deadline(seconds), f"{check} still fails", interval=3.0)


def test_doctor_checks_the_registry_up_was_given(lab: ClusterLab) -> None:
    finding = doctor(lab, "local-registry-unwired")
    # Not "skipped: no --registry given": this shell gives none, `up` recorded it.
    assert finding["status"] == "ok", finding
    assert "127.0.0.1:5001" in finding["summary"]


def test_model_registry_database_scaled_to_zero(lab: ClusterLab) -> None:
    apps = client.AppsV1Api(lab.kube.api)
    apps.patch_namespaced_deployment_scale("model-registry-db", "kubeflow", {"spec": {"replicas": 0}})
    wait_until(
        lambda: [] if not lab.kube.pods("kubeflow", "component=db") else ["db pod still there"],
        Deadline(60),
        "model-registry-db pods not gone",
    )
    finding = doctor(lab, "database-health")
    assert finding["status"] == "fail", finding
    assert "model-registry-db" in finding["summary"]
    assert (
        "deployment kubeflow/model-registry-db is scaled to 0 replicas: nothing serves" in finding["evidence"]
    )
    scale = next(line for line in finding["remedy"] if " scale " in line)
    assert scale.startswith(f"kubectl --kubeconfig {lab.plane.kubeconfig} --context {lab.plane.context} ")
    run_remedy(lab, finding["remedy"])
    settle(lab, "database-health")


def test_drifted_storage_container_is_named_and_up_says_it_repaired_it(lab: ClusterLab) -> None:
    custom = client.CustomObjectsApi(lab.kube.api)
    name = lab.config.names.storage_container
    wrong = "ghcr.io/kitops-ml/kitops-kserve:v0.0.0-wrong"
    patch = {"spec": {"container": {"image": wrong}}}
    custom.patch_cluster_custom_object(
        "serving.kserve.io", "v1alpha1", "clusterstoragecontainers", name, patch
    )
    finding = doctor(lab, "kserve-not-ready")
    assert finding["status"] == "fail", finding
    drift = f"ClusterStorageContainer {name} drifted from the pinned spec: spec.container.image is '{wrong}'"
    assert any(line.startswith(drift) for line in finding["evidence"]), finding["evidence"]
    assert finding["fixable"]
    up = next(line for line in finding["remedy"] if line.startswith("lab up"))
    # Every flag `lab up` was run with, though this shell sets none of them.
    assert f"--manifests-dir {lab.config.manifests_dir}" in up and "--registry 127.0.0.1:5001" in up
    proc = run_remedy(lab, [line for line in finding["remedy"] if not line.startswith("lab doctor --fix")])
    assert f"repairing drift: update ClusterStorageContainer {name}" in proc.stderr, proc.stderr
    assert doctor(lab, "kserve-not-ready")["status"] == "ok"


# ---------------------------------------------------------------------------------------------
# A crash loop, as a kubelet reports it: termination message, restarts, back-off events.
# ---------------------------------------------------------------------------------------------

MYSQL_REFUSED = (
    "F1204 17:02:11.123456       1 client_manager.go:520] Failed to check if table exists: "
    "dial tcp 10.96.148.2:3306: connect: connection refused"
)


def crash_loop(lab: ClusterLab, prefix: str, message: str, restarts: int = 6) -> Any:
    """Write the status a kubelet writes for a container that keeps exiting with ``message``."""
    core = client.CoreV1Api(lab.kube.api)
    pod = next(
        p
        for p in core.list_namespaced_pod("kubeflow").items
        if p.metadata.name.startswith(prefix) and not p.metadata.deletion_timestamp
    )
    container = pod.spec.containers[0]
    status = {
        "name": container.name,
        "image": container.image,
        "imageID": "",
        "ready": False,
        "started": False,
        "restartCount": restarts,
        "containerID": "containerd://" + "1" * 64,
        "state": {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off 5m0s restarting failed container={container.name} "
                f"pod={pod.metadata.name}",
            }
        },
        "lastState": {
            "terminated": {
                "exitCode": 1,
                "reason": "Error",
                "message": message,
                "startedAt": "2026-01-01T00:00:00Z",
                "finishedAt": "2026-01-01T00:00:02Z",
            }
        },
    }
    body = {
        "status": {
            "phase": "Running",
            "containerStatuses": [status],
            "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        }
    }
    core.patch_namespaced_pod_status(pod.metadata.name, "kubeflow", body)
    core.create_namespaced_event(
        "kubeflow",
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{pod.metadata.name}."),
            involved_object=client.V1ObjectReference(
                kind="Pod", name=pod.metadata.name, namespace="kubeflow", uid=pod.metadata.uid
            ),
            reason="BackOff",
            message=f"Back-off restarting failed container {container.name} in pod {pod.metadata.name}",
            type="Warning",
            source=client.V1EventSource(component="kubelet", host=pod.spec.node_name),
            count=restarts,
        ),
    )
    return pod


def test_crash_loop_is_shown_with_its_message_and_a_remedy_that_fits(lab: ClusterLab) -> None:
    pod = crash_loop(lab, "ml-pipeline-", MYSQL_REFUSED)
    finding = doctor(lab, "crash-loop")
    assert finding["status"] == "fail", finding
    assert (
        f"kubeflow/{pod.metadata.name}" in finding["summary"]
        and "cannot reach its database" in finding["summary"]
    )
    evidence = "\n".join(finding["evidence"])
    assert (
        "Failed to check if table exists: dial tcp 10.96.148.2:3306: connect: connection refused" in evidence
    )
    assert "event Warning BackOff on Pod" in evidence and "restarts 6" in evidence
    remedy = "\n".join(finding["remedy"])
    assert "waiting will not help" in remedy and "get pods -l app=mysql" in remedy
    # KFP's own check gives the same cause-fitting remedy, not "wait".
    kfp = doctor(lab, "kfp-not-ready")
    assert kfp["status"] == "fail" and "termination message: F1204" in "\n".join(kfp["evidence"])
    assert not any(line.startswith("# KFP needs several minutes") for line in kfp["remedy"])
    assert "get endpoints mysql" in "\n".join(kfp["remedy"])

    # Provisioning stops on the doctor's finding instead of waiting out its timeout.
    config = _with_timeout(lab.config, 300)
    started = time.monotonic()
    with pytest.raises(LabError) as stopped:
        up_cluster(config, Progress(quiet=True), dry_run=False)
    took = time.monotonic() - started
    print(f"up stopped on crash-loop after {took:.1f}s (timeout 300s)")
    assert "step 'Kubeflow Pipelines' failed: crash-loop: " in str(stopped.value)
    assert took < 150

    run_remedy(lab, finding["remedy"])
    settle(lab, "crash-loop")
    settle(lab, "kfp-not-ready")


def _with_timeout(config: LabConfig, seconds: float) -> LabConfig:
    return dataclasses.replace(config, cluster_timeout=seconds)


# ---------------------------------------------------------------------------------------------
# A lab namespace held Terminating by a finalizer nobody removes.
# ---------------------------------------------------------------------------------------------

BLOCKING_FINALIZER = "lab-e2e.example.com/block"


def test_namespace_stuck_terminating_is_named_with_what_holds_it(lab: ClusterLab) -> None:
    core = client.CoreV1Api(lab.kube.api)
    blocker = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="lab-e2e-blocker", finalizers=[BLOCKING_FINALIZER]), data={"k": "v"}
    )
    core.create_namespaced_config_map("kserve", blocker)
    core.delete_namespace("kserve")

    def not_stuck_yet() -> list[str]:
        namespace = core.read_namespace("kserve")
        conditions = {c.type: c for c in namespace.status.conditions or [] if c.status == "True"}
        return [] if "NamespaceFinalizersRemaining" in conditions else ["namespace controller still working"]

    wait_until(not_stuck_yet, Deadline(120), "namespace kserve never reported its remaining finalizers")
    finding = doctor(lab, "namespace-terminating")
    assert finding["status"] == "fail", finding
    assert "namespace kserve stuck Terminating" in finding["summary"]
    evidence = "\n".join(finding["evidence"])
    assert "namespace kserve: Terminating since" in evidence
    assert "condition NamespaceFinalizersRemaining: SomeFinalizersRemain" in evidence
    assert f"ConfigMap kserve/lab-e2e-blocker: finalizers {BLOCKING_FINALIZER}" in evidence
    remedy = "\n".join(finding["remedy"])
    assert "patch configmaps/lab-e2e-blocker --type=json" in remedy and "lab up --mode cluster" in remedy
    run_remedy(lab, finding["remedy"], timeout=900)
    assert core.read_namespace("kserve").status.phase == "Active"
    assert doctor(lab, "namespace-terminating")["status"] == "ok"
    assert doctor(lab, "kserve-not-ready")["status"] == "ok"


# ---------------------------------------------------------------------------------------------
# Repeatable: a claim that cannot bind stops the wait early (cycles: test_cluster_cycles.py).
# ---------------------------------------------------------------------------------------------


def test_a_claim_that_cannot_bind_stops_the_wait_early(lab: ClusterLab) -> None:
    core = client.CoreV1Api(lab.kube.api)
    assert down_cluster(lab.config, Progress(quiet=True)) == 0
    # Every static volume promised to a claim that never comes (pre-bound, Available to no one
    # else, so `up` leaves it alone): KFP's claims cannot bind.
    names = sorted(static_volume_phases(lab))
    for name in names:
        core.patch_persistent_volume(name, {"spec": {"claimRef": None}})
    wait_until(
        lambda: [f"{n}: {p}" for n, p in static_volume_phases(lab).items() if p != "Available"],
        Deadline(60),
        "static volumes not Available",
    )
    reserved = {"claimRef": {"namespace": "lab-e2e-nowhere", "name": "never-created"}}
    for name in names:
        core.patch_persistent_volume(name, {"spec": reserved})
    # A short grace (LAB_PVC_PENDING_GRACE, 60 s by default): the finding still has to last
    # that long, but the test does not sit through a minute of it.
    config = dataclasses.replace(_with_timeout(lab.config, 600), pvc_pending_grace=3.0)
    try:
        started = time.monotonic()
        with pytest.raises(LabError) as stopped:
            up_cluster(config, Progress(quiet=True), dry_run=False)
        took = time.monotonic() - started
        print(f"up stopped on pvc-pending after {took:.1f}s (timeout 600s, grace 3s)")
        assert "pvc-pending: " in str(stopped.value) and "claim(s) stuck Pending" in str(stopped.value)
        assert took < 300
    finally:
        for name in names:
            core.patch_persistent_volume(name, {"spec": {"claimRef": None}})
        assert down_cluster(lab.config, Progress(quiet=True)) == 0


# ---------------------------------------------------------------------------------------------
# The control plane itself: a crash keeps the ports; status flags what died.
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def own_plane_home(control_plane: tuple[LabConfig, Any]) -> Iterator[Path]:
    """A LAB_HOME of its own (tools linked), whose control plane is stopped afterwards."""
    home = make_home()
    yield home
    plane_cli(home, "stop")
    shutil.rmtree(home, ignore_errors=True)


def plane_cli(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    # The user's environment (Go finds kwok's stage configs in its module cache), this home.
    env = {key: value for key, value in os.environ.items() if not key.startswith("LAB_")}
    env["LAB_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "lab", "control-plane", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _server(kubeconfig: Path) -> str:
    return str(json.loads(kubeconfig.read_text())["clusters"][0]["cluster"]["server"])


def test_control_plane_restart_keeps_its_ports_and_status_flags_the_dead(own_plane_home: Path) -> None:

    plane = ControlPlane(own_plane_home / "control-plane")
    started = plane_cli(own_plane_home, "start")
    assert started.returncode == 0, started.stderr
    assert plane_cli(own_plane_home, "status").returncode == 0
    copied = own_plane_home / "copied-kubeconfig"
    copied.write_text(plane.kubeconfig.read_text())
    ports = plane.ports()

    apiserver = plane.process("kube-apiserver").pid()
    assert apiserver is not None
    os.kill(apiserver, 9)
    wait_until(
        lambda: [] if plane.process("kube-apiserver").pid() is None else ["still alive"],
        Deadline(30),
        "not dead",
    )
    status = plane_cli(own_plane_home, "status")
    assert status.returncode == 1, status.stdout
    assert "kube-apiserver: DEAD" in status.stdout

    restarted = plane_cli(own_plane_home, "start")
    assert restarted.returncode == 0, restarted.stderr
    assert plane.ports() == ports and _server(plane.kubeconfig) == _server(copied)
    assert Kube.from_kubeconfig(str(copied), CONTEXT).nodes(), "the copied kubeconfig no longer works"

    # A recorded port someone else took: one clear error, nothing started.
    assert plane_cli(own_plane_home, "stop").returncode == 0
    with socket.socket() as squatter:
        # The port may still have TIME_WAIT connections of the stopped apiserver.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", ports["apiserver"]))
        squatter.listen()
        refused = plane_cli(own_plane_home, "start")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("ERROR")]
    assert (
        line.startswith(f"ERROR: port {ports['apiserver']} (apiserver) recorded in ")
        and "is taken by" in line
    )
    assert plane.running() == []
