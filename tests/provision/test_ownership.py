"""What the lab owns, judged from objects shaped as the API server returns them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lab.kube_objects import OWNER_LABEL
from lab.kubeconfig import KubeconfigInvalid, read_kubeconfig
from lab.ownership import ForeignObject, FoundComponent, adopts, foreign, found_component, lab_uids
from lab.registry_address import InvalidRegistryAddress, RegistryAddress

OWNER = "kubeflow-lab"


def obj(
    kind: str, name: str, uid: str, *, namespace: str = "kubeflow", labelled: bool = False, **meta: object
) -> dict:
    metadata: dict = {"name": name, "uid": uid, "namespace": namespace, **meta}
    if labelled:
        metadata["labels"] = {OWNER_LABEL: OWNER}
    group = {"Job": "batch/v1", "Role": "rbac.authorization.k8s.io/v1", "ReplicaSet": "apps/v1"}.get(
        kind, "v1"
    )
    return {"apiVersion": group, "kind": kind, "metadata": metadata}


def test_what_controllers_make_for_lab_objects_is_the_labs_and_a_tenants_work_is_not() -> None:
    deployment = obj("Deployment", "ml-pipeline", "d1", labelled=True)
    replicas = obj("ReplicaSet", "ml-pipeline-7f", "r1", ownerReferences=[{"uid": "d1"}])
    lab_pod = obj("Pod", "ml-pipeline-7f-x", "p1", ownerReferences=[{"uid": "r1"}])
    job = obj("Job", "tenant-job", "j1")
    job_pod = obj("Pod", "tenant-job-abc", "p2", ownerReferences=[{"uid": "j1"}])
    certificate = obj("Certificate", "serving-cert", "c1", labelled=True)
    issued = obj(
        "Secret", "serving-cert", "s1", annotations={"cert-manager.io/certificate-name": "serving-cert"}
    )
    system = [obj("ConfigMap", "kube-root-ca.crt", "k1"), obj("ServiceAccount", "default", "k2")]
    service = obj("Service", "ml-pipeline", "sv1", labelled=True)
    endpoints = obj("Endpoints", "ml-pipeline", "e1")
    event = {**obj("Event", "ml-pipeline.1", "ev1"), "apiVersion": "events.k8s.io/v1"}
    tenant = [obj("ConfigMap", "tenant", "t1"), obj("Role", "tenant", "t2"), obj("Pod", "tenant", "t3")]
    everything = [
        deployment,
        replicas,
        lab_pod,
        job,
        job_pod,
        certificate,
        issued,
        *system,
        service,
        endpoints,
        event,
        *tenant,
    ]
    uids = lab_uids(everything, OWNER)
    assert uids == {"d1", "r1", "p1", "c1", "s1", "sv1"}
    names = [f"{o['kind']} {o['metadata']['name']}" for o in foreign(everything, uids)]
    assert names == ["Job tenant-job", "Pod tenant-job-abc", "ConfigMap tenant", "Role tenant", "Pod tenant"]


def test_an_existing_object_is_adopted_only_when_it_is_a_namespace() -> None:
    wanted = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "kubeflow"}}
    assert not adopts(wanted, None, OWNER)
    assert not adopts(wanted, obj("ConfigMap", "x", "u", labelled=True), OWNER)
    with pytest.raises(
        ForeignObject, match="ConfigMap kubeflow/x already exists and was not created by the lab"
    ):
        adopts(wanted, obj("ConfigMap", "x", "u"), OWNER)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kubeflow"}}
    assert adopts(namespace, obj("Namespace", "kubeflow", "n", namespace=""), OWNER)


def deployment(
    version_label: str = "", image: str = "quay.io/jetstack/cert-manager-controller:v1.19.4"
) -> dict:
    labels = {"app.kubernetes.io/version": version_label} if version_label else {}
    return {
        "metadata": {"name": "cert-manager", "namespace": "cert-manager", "labels": labels},
        "spec": {"template": {"spec": {"containers": [{"image": image}]}}},
    }


def test_a_component_found_installed_is_used_on_the_same_minor_and_refused_otherwise() -> None:
    same = found_component(
        "cert-manager", "v1.19.4", deployment(image="quay.io/jetstack/cert-manager-controller:v1.19.1"), OWNER
    )
    assert isinstance(same, FoundComponent) and same.compatible
    assert same.describe() == (
        "cert-manager v1.19.1 found installed (Deployment cert-manager/cert-manager, not the lab's): "
        "used as it is, never changed or deleted by the lab"
    )
    older = found_component("cert-manager", "v1.19.4", deployment("v1.12.3"), OWNER)
    assert older is not None and not older.compatible
    assert "cert-manager v1.12.3 found installed" in older.describe()
    assert "the lab needs cert-manager v1.19.x (pinned v1.19.4)" in older.describe()
    ours = deployment()
    ours["metadata"]["labels"] = {OWNER_LABEL: OWNER}
    assert found_component("cert-manager", "v1.19.4", ours, OWNER) is None
    assert found_component("cert-manager", "v1.19.4", None, OWNER) is None


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1:5001", "127.0.0.1:5001"),
        ("registry.example.com", "registry.example.com"),
        ("[::1]:5000", "[::1]:5000"),
    ],
)
def test_registry_addresses_parse(text: str, parsed: str) -> None:
    assert str(RegistryAddress.parse(text)) == parsed


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("not a host", "whitespace"),
        ("http://127.0.0.1:5001/", "no scheme, path or user"),
        ("127.0.0.1:99999", "port '99999' is not 1-65535"),
        ("127.0.0.1:5001\nfoo: bar", "whitespace"),
        ("::1", "brackets"),
        ("[not-v6]:5000", "is not an IPv6 address"),
        ("-bad-.example", "is not a host name"),
    ],
)
def test_registry_addresses_refused(text: str, why: str) -> None:
    with pytest.raises(InvalidRegistryAddress, match=why.replace("(", r"\(")):
        RegistryAddress.parse(text)


def test_a_kubeconfig_that_is_not_yaml_or_not_a_mapping_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nclusters:\n  - name: a\n   bad: [\n")
    with pytest.raises(KubeconfigInvalid, match=rf"kubeconfig {broken} is not YAML at line \d+, column \d+"):
        read_kubeconfig(str(broken))
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(KubeconfigInvalid, match=rf"kubeconfig {listed} is a YAML list, not a kubeconfig"):
        read_kubeconfig(str(listed))


def lab(*argv: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"LAB_HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "lab", *argv], capture_output=True, text=True, env=env, timeout=120
    )


def test_bad_registry_and_kubeconfig_exit_2_before_any_request(tmp_path: Path) -> None:
    # A kubeconfig pointing nowhere: had any request been made, the error would say "does not answer".
    for value in ("not a host", "http://127.0.0.1:5001/", "127.0.0.1:99999", "127.0.0.1:5001\nx: y"):
        up = lab(
            "up",
            "--mode",
            "cluster",
            "--kubeconfig",
            str(tmp_path / "absent"),
            "--registry",
            value,
            home=tmp_path,
        )
        assert up.returncode == 2, up.stderr
        assert up.stderr.startswith("ERROR: lab up: argument --registry:") and "HOST[:PORT]" in up.stderr
    listed = tmp_path / "kubeconfig"
    listed.write_text("- not\n- a kubeconfig\n")
    for command in ("status", "doctor"):
        run = lab(command, "--mode", "cluster", "--kubeconfig", str(listed), home=tmp_path)
        assert run.returncode == 2, run.stdout + run.stderr
        first = run.stderr.splitlines()[0]
        expected = "is a YAML list, not a kubeconfig (a mapping with clusters, contexts and users)"
        assert first.endswith(f"kubeconfig {listed} {expected}")
        assert "Traceback" not in run.stderr and "TypeError" not in run.stderr
