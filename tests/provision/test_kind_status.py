"""`lab status` for the kind lab: judges fed kubernetes client models, and the CLI without an engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes.client import (
    V1Deployment,
    V1DeploymentCondition,
    V1DeploymentSpec,
    V1DeploymentStatus,
    V1LabelSelector,
    V1Node,
    V1NodeCondition,
    V1NodeStatus,
    V1NodeSystemInfo,
    V1ObjectMeta,
    V1PodTemplateSpec,
)

from lab import local
from lab.config import LabConfig, load_config
from lab.errors import ClusterUnreachable
from lab.loopback_ports import free_port
from lab.progress import Progress
from lab.provision import status as kind_status
from lab.provision.create import component_steps
from lab.provision.status_rows import (
    KindComponent,
    NodeContainer,
    RegistryContainer,
    cluster_row,
    deployment_row,
    kind_components,
    registry_row,
)

CONFIG = load_config(env={"LAB_HOME": "/tmp/lab-kind-status-unused"})
COMPONENTS = {c.name: c for c in kind_components(CONFIG)}


def deployment(
    name: str,
    namespace: str,
    *,
    replicas: int = 1,
    ready: int | None = None,
    conditions: list[V1DeploymentCondition] | None = None,
) -> V1Deployment:
    """A Deployment shaped as the API returns it (``ready_replicas`` is None when 0 are ready)."""
    ready = replicas if ready is None else ready
    return V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=V1ObjectMeta(name=name, namespace=namespace, generation=1),
        spec=V1DeploymentSpec(
            replicas=replicas,
            selector=V1LabelSelector(match_labels={"app": name}),
            template=V1PodTemplateSpec(metadata=V1ObjectMeta(labels={"app": name})),
        ),
        status=V1DeploymentStatus(
            observed_generation=1,
            replicas=replicas,
            ready_replicas=ready or None,
            available_replicas=ready or None,
            conditions=conditions,
        ),
    )


def available(status: str, reason: str, message: str) -> V1DeploymentCondition:
    return V1DeploymentCondition(type="Available", status=status, reason=reason, message=message)


def test_components_reuse_what_provisioning_waits_on() -> None:
    waits_on = {step.component.name: step.component.deployments for step in component_steps()}
    assert COMPONENTS["cert-manager"].deployments == waits_on["cert-manager"]
    assert COMPONENTS["model-registry"].deployments == waits_on["model-registry"]
    assert COMPONENTS["kfp"].selector == "application-crd-id=kubeflow-pipelines"
    assert [c.version for c in COMPONENTS.values()] == [
        CONFIG.versions.cert_manager,
        CONFIG.versions.kfp,
        CONFIG.versions.model_registry,
        CONFIG.versions.kserve,
    ]
    assert COMPONENTS["kfp"].url == "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
    assert COMPONENTS["kfp"].host_url == f"http://127.0.0.1:{CONFIG.ports.kfp_ui}"


def test_all_deployments_ready_is_ready() -> None:
    ns = CONFIG.names.cert_manager_namespace
    ok = [available("True", "MinimumReplicasAvailable", "")]
    deps = [deployment(name, ns, conditions=ok) for name in COMPONENTS["cert-manager"].deployments]
    row = deployment_row(COMPONENTS["cert-manager"], deps).as_dict()
    assert row["state"] == "ready", row
    assert row["version"] == CONFIG.versions.cert_manager and row["pid"] is None
    assert "3/3 Deployments ready" in str(row["detail"])
    assert set(row) == {"name", "state", "url", "pid", "version", "detail", "log", "owner"}


def test_one_of_two_ready_is_unhealthy_with_the_reason_from_conditions() -> None:
    ns = CONFIG.names.kubeflow_namespace
    short = available("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
    deps = [
        deployment("model-registry-db", ns),
        deployment("model-registry-deployment", ns, replicas=2, ready=1, conditions=[short]),
        deployment("model-registry-ui", ns),
        # Another component's Deployment in the same namespace is not this component's business.
        deployment("ml-pipeline", ns, ready=0),
    ]
    row = deployment_row(COMPONENTS["model-registry"], deps)
    assert row.state == "unhealthy"
    assert "model-registry-deployment: 1/2 ready" in row.detail
    assert "MinimumReplicasUnavailable: Deployment does not have minimum availability." in row.detail
    assert "ml-pipeline" not in row.detail
    assert row.url == "http://model-registry-service.kubeflow.svc.cluster.local:8080"


def test_replica_failure_and_a_missing_deployment_are_named() -> None:
    ns = CONFIG.names.kserve_namespace
    failure = V1DeploymentCondition(
        type="ReplicaFailure", status="True", reason="FailedCreate", message="exceeded quota"
    )
    component = KindComponent("x", ns, ("a", "b"), "", "v1", None)
    row = deployment_row(component, [deployment("a", ns, ready=0, conditions=[failure])])
    assert row.state == "unhealthy"
    assert "Deployment kserve/b: missing" in row.detail
    assert "0/1 ready (ReplicaFailure=True FailedCreate: exceeded quota)" in row.detail


def test_missing_namespace_or_no_deployments_is_absent() -> None:
    assert deployment_row(COMPONENTS["kserve"], None).state == "absent"
    assert "namespace kserve does not exist" in deployment_row(COMPONENTS["kserve"], None).detail
    assert deployment_row(COMPONENTS["kserve"], []).state == "absent"
    # KFP is found by label: nothing labelled means not installed.
    assert deployment_row(COMPONENTS["kfp"], []).state == "absent"


def test_kfp_is_judged_by_every_labelled_deployment() -> None:
    ns = CONFIG.names.kubeflow_namespace
    deps = [deployment("ml-pipeline", ns), deployment("metadata-grpc-deployment", ns, ready=0)]
    row = deployment_row(COMPONENTS["kfp"], deps)
    assert row.state == "unhealthy" and "metadata-grpc-deployment: 0/1 ready" in row.detail
    ready = deployment_row(COMPONENTS["kfp"], deps[:1])
    assert ready.state == "ready" and f"127.0.0.1:{CONFIG.ports.kfp_ui}" in ready.detail


def test_scaled_to_zero_is_stopped() -> None:
    ns = CONFIG.names.kserve_namespace
    row = deployment_row(COMPONENTS["kserve"], [deployment("kserve-controller-manager", ns, replicas=0)])
    assert row.state == "stopped"


def node(name: str, ready: str, reason: str = "KubeletReady") -> V1Node:
    return V1Node(
        metadata=V1ObjectMeta(name=name),
        status=V1NodeStatus(
            conditions=[
                V1NodeCondition(type="Ready", status=ready, reason=reason, message="kubelet says so")
            ],
            node_info=V1NodeSystemInfo(
                kubelet_version="v1.35.0",
                architecture="amd64",
                boot_id="",
                container_runtime_version="",
                kernel_version="",
                kube_proxy_version="",
                machine_id="",
                operating_system="linux",
                os_image="",
                system_uuid="",
            ),
        ),
    )


def test_cluster_row() -> None:
    image = CONFIG.versions.kind_node_image
    running = [NodeContainer("kubeflow-lab-control-plane", True, image)]
    ready = cluster_row(CONFIG, running, [node("n", "True")], api_url="https://127.0.0.1:6443")
    assert ready.state == "ready" and ready.version == image.split("@")[0]
    assert "context kind-kubeflow-lab" in ready.detail and ready.url == "https://127.0.0.1:6443"
    sick = cluster_row(CONFIG, running, [node("n", "False", "KubeletNotReady")])
    assert sick.state == "unhealthy" and "KubeletNotReady" in sick.detail
    stopped = cluster_row(
        CONFIG, [NodeContainer("kubeflow-lab-control-plane", False, image)], None, "refused"
    )
    assert stopped.state == "stopped" and "docker start kubeflow-lab-control-plane" in stopped.detail
    unreachable = cluster_row(CONFIG, running, None, "connection refused")
    assert unreachable.state == "unreachable" and "connection refused" in unreachable.detail


def test_registry_row() -> None:
    pinned = CONFIG.versions.registry_image
    assert registry_row(CONFIG, None).state == "absent"
    assert registry_row(CONFIG, RegistryContainer(False, pinned, True)).state == "stopped"
    assert registry_row(CONFIG, RegistryContainer(True, pinned, False)).state == "unhealthy"
    ready = registry_row(CONFIG, RegistryContainer(True, pinned, True))
    assert ready.state == "ready" and ready.version == pinned
    assert ready.url == f"http://{CONFIG.registry_host}"


class AnsweringEngine:
    """An engine that answered ``info``; the registry container does not exist."""

    name = "docker"
    binary = "docker"
    version = "fake"

    def run(self, *args: str, timeout: float = 120.0, check: bool = True) -> str:
        node = f"{CONFIG.names.cluster}-control-plane"
        return f"true|{CONFIG.versions.kind_node_image}\n" if args[-1] == node else ""


def test_unreachable_api_server_is_a_row_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lab.provision.actions.probe_engines", lambda: (AnsweringEngine(), []))
    monkeypatch.setattr(kind_status, "cluster_exists", lambda ctx: True)
    monkeypatch.setattr(kind_status, "node_names", lambda ctx: [f"{CONFIG.names.cluster}-control-plane"])

    def refuse(config: LabConfig, timeout: float = 10.0, **_options: object) -> None:
        raise ClusterUnreachable("the API server of context kind-kubeflow-lab does not answer", ["refused"])

    monkeypatch.setattr(kind_status.Kube, "connect", refuse)
    rows, _ = kind_status.collect_kind(CONFIG, Progress(quiet=True), required=False)
    assert rows is not None
    states = {r.name: r.state for r in rows}
    assert states == {
        "kind-cluster": "unreachable",
        "kind-registry": "absent",
        "cert-manager": "unreachable",
        "kfp": "unreachable",
        "model-registry": "unreachable",
        "kserve": "unreachable",
    }
    assert "does not answer" in rows[0].detail


def test_no_cluster_is_absent_in_kind_mode_and_hidden_in_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lab.provision.actions.probe_engines", lambda: (AnsweringEngine(), []))
    monkeypatch.setattr(kind_status, "cluster_exists", lambda ctx: False)
    rows, why = kind_status.collect_kind(CONFIG, Progress(quiet=True), required=False)
    assert rows is None and why == f"no kind cluster {CONFIG.names.cluster}"
    rows, _ = kind_status.collect_kind(CONFIG, Progress(quiet=True), required=True)
    assert rows is not None and {r.state for r in rows} == {"absent"}
    assert "`lab up --mode kind` creates it" in rows[0].detail


@pytest.fixture
def no_engine_env(tmp_path: Path) -> dict[str, str]:
    """Environment where docker and podman exist but no daemon answers (whatever this host has)."""
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    for engine in ("docker", "podman"):
        script = fake_bin / engine
        asked = tmp_path / "engine-asked"
        script.write_text(
            f"#!/bin/sh\necho {engine} >> {asked}\necho 'Cannot connect to the {engine} daemon' >&2\nexit 1\n"
        )
        script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "LAB_MODE"}
    env.update({"LAB_HOME": str(tmp_path / "home"), "PATH": f"{fake_bin}{os.pathsep}{env.get('PATH', '')}"})
    # No kubeconfig of the user's: whether it holds a kind context is up to each test.
    env["KUBECONFIG"] = str(tmp_path / "kubeconfig")
    return env


def write_kind_kubeconfig(path: Path, context: str) -> None:
    """A kubeconfig as kind leaves it, its API server on a loopback port nothing listens on."""
    server = f"https://127.0.0.1:{free_port()}"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": context, "cluster": {"server": server}}],
                "users": [{"name": context, "user": {"token": "none"}}],
                "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
                "current-context": context,
            }
        )
    )


def lab(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab", "status", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_status_json_without_engine_has_no_kind_section(no_engine_env: dict[str, str]) -> None:
    proc = lab(no_engine_env, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["mode"] == "auto" and report["kind"] is None
    assert report["home"] == no_engine_env["LAB_HOME"]
    assert [c["name"] for c in report["components"]] == [*local.ALL_COMPONENTS, "model-server"]

    text = lab(no_engine_env)
    assert text.returncode == 0, text.stderr
    context = f"kind-{CONFIG.names.cluster}"
    assert "local lab" in text.stdout
    assert f"kind lab: not shown, no kubeconfig context {context}" in text.stdout
    # Without kind's context there is no kind lab: the engine is not asked at all.
    engine_asked = Path(no_engine_env["KUBECONFIG"]).with_name("engine-asked")
    assert not engine_asked.exists()

    # With the context (a kind cluster may exist), the engine is asked, once per engine.
    write_kind_kubeconfig(Path(no_engine_env["KUBECONFIG"]), context)
    text = lab(no_engine_env)
    assert text.returncode == 0, text.stderr
    assert "kind lab: not shown, no container engine answers" in text.stdout
    assert engine_asked.read_text().split() == ["docker", "podman"]


def test_mode_kind_without_engine_says_so(no_engine_env: dict[str, str]) -> None:
    proc = lab(no_engine_env, "--json", "--mode", "kind")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["components"] == []
    cluster = report["kind"][0]
    assert cluster["name"] == "kind-cluster" and cluster["state"] == "unreachable"
    assert "no container engine answers" in cluster["detail"]
    assert [r["name"] for r in report["kind"]] == [
        "kind-cluster",
        "kind-registry",
        "cert-manager",
        "kfp",
        "model-registry",
        "kserve",
    ]

    text = lab(no_engine_env, "--mode", "kind")
    assert text.returncode == 0 and "Traceback" not in text.stderr
    assert "no container engine answers" in text.stdout
