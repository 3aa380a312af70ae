"""Cluster-mode findings judged on client objects shaped like the API's answers.

The same failures are induced for real on the control plane in
``tests/e2e/test_cluster_recovery.py``; here each judgement and remedy is pinned down fast.
"""

from __future__ import annotations

import dataclasses
import json

from doctor_objects import (
    KUBEFLOW,
    LAB_OWNER,
    NOW,
    deployment,
    event,
    healthy_kfp,
    pod,
    pvc,
    ready_pod,
    status,
    storage_class,
    waiting,
)
from kubernetes.client import (
    V1ContainerState,
    V1ContainerStateTerminated,
    V1Namespace,
    V1NamespaceCondition,
    V1NamespaceSpec,
    V1NamespaceStatus,
    V1ObjectMeta,
)

from lab.cluster_record import record_path, record_up_flags, with_recorded_flags
from lab.config import LabConfig
from lab.doctor import Evidence, RecordedCluster, Result, diagnose
from lab.doctor.checks._provision import up_command
from lab.invocation import as_invoked
from lab.kube_objects import OWNER_LABEL
from lab.storage_container import storage_container

KUBECONFIG = "/tmp/lab-findings/kubeconfig"
REFUSED = (
    "F1204 17:02:11.123456       1 client_manager.go:520] Failed to check if table exists: "
    "dial tcp 10.96.148.2:3306: connect: connection refused"
)


def cluster_config(config: LabConfig, **fields: str) -> LabConfig:
    values = {"mode": "cluster", "kubeconfig": KUBECONFIG, "kube_context": "shared", **fields}
    return dataclasses.replace(config, **values)


def judge(config: LabConfig, check_id: str, objects: list[object], **recorded: object) -> Result:
    evidence = Evidence(config, mode="cluster", cluster=RecordedCluster(objects, **recorded))  # type: ignore[arg-type]
    return diagnose(config, [check_id], evidence=evidence).outcome(check_id).result


def crashing_api_server(restarts: int) -> list[object]:
    last = V1ContainerState(
        terminated=V1ContainerStateTerminated(
            exit_code=1, reason="Error", message=REFUSED, started_at=NOW, finished_at=NOW
        )
    )
    image = "ghcr.io/kubeflow/kfp-api-server:2.16.0"
    back_off = waiting("CrashLoopBackOff", "back-off 5m0s restarting failed container")
    api = status("ml-pipeline-api-server", image, back_off, last_state=last, restarts=restarts)
    name = "ml-pipeline-6b8f9d7c5-w4z8p"
    return [
        *healthy_kfp(skip=("ml-pipeline",)),
        deployment(KUBEFLOW, "ml-pipeline", {"app": "ml-pipeline"}, ready=0),
        pod(KUBEFLOW, name, [api], labels={"app": "ml-pipeline"}),
        event(
            KUBEFLOW, "Pod", name, "BackOff", "Back-off restarting failed container ml-pipeline-api-server"
        ),
    ]


def test_a_crash_loop_shows_its_message_and_events_and_names_its_database(config: LabConfig) -> None:
    cfg = cluster_config(config)
    result = judge(cfg, "crash-loop", crashing_api_server(restarts=6))
    assert result.status == "fail"
    assert "cannot reach its database" in result.summary
    evidence = "\n".join(result.evidence)
    assert "termination message: F1204" in evidence and "connection refused" in evidence
    assert "event Warning BackOff on Pod kubeflow/ml-pipeline-6b8f9d7c5-w4z8p" in evidence
    prefix = f"kubectl --kubeconfig {KUBECONFIG} --context shared -n kubeflow"
    assert f"{prefix} get pods -l app=mysql -o wide" in result.remedy
    assert f"{prefix} rollout restart deployment ml-pipeline" in result.remedy
    # kfp-not-ready owns the component: the same cause, never "wait".
    kfp = judge(cfg, "kfp-not-ready", crashing_api_server(restarts=6))
    assert kfp.status == "fail" and f"{prefix} get endpoints mysql  # " in "\n".join(kfp.remedy)
    assert not any(line.startswith("# KFP needs several minutes") for line in kfp.remedy)


def test_a_kfp_someone_else_installed_gets_no_lab_remedy_and_no_fix(config: LabConfig) -> None:
    """lab.ownership decides: an ml-pipeline without the lab's label is not the lab's to repair."""
    cfg = cluster_config(config)
    objects = crashing_api_server(restarts=6)
    theirs = deployment(KUBEFLOW, "ml-pipeline", {"app": "ml-pipeline"}, ready=0, owner=None)
    theirs.metadata.annotations = {"meta.helm.sh/release-name": "pipelines"}
    objects = [o for o in objects if getattr(o.metadata, "name", "") != "ml-pipeline"] + [theirs]
    prefix = f"kubectl --kubeconfig {KUBECONFIG} --context shared -n kubeflow"
    for check_id in ("kfp-not-ready", "crash-loop"):
        result = judge(cfg, check_id, objects)
        assert result.status == "fail" and not result.fixable, check_id
        assert result.remedy[0].startswith(
            "# kfp is not the lab's: kfp (version unknown) was found installed (Deployment "
            "kubeflow/ml-pipeline, installed by Helm release kubeflow/pipelines)"
        ), result.remedy
        assert result.remedy[1] == (
            "# ask whoever runs kfp on this cluster (Helm release kubeflow/pipelines) to repair it; "
            "to look at it:"
        )
        assert result.remedy[2:] == (
            f"{prefix} get deployments,pods",
            f"{prefix} describe deployment ml-pipeline",
            f"{prefix} get events --sort-by=.lastTimestamp",
        )
    # The same objects judged in kind mode: the kind cluster is the lab's, whatever the labels say.
    evidence = Evidence(config, mode="kind", cluster=RecordedCluster(objects))  # type: ignore[arg-type]
    kind = diagnose(config, ["kfp-not-ready"], evidence=evidence).outcome("kfp-not-ready").result
    assert not any("not the lab's" in line for line in kind.remedy)


def test_a_few_restarts_while_the_database_starts_are_only_a_warning(config: LabConfig) -> None:
    result = judge(cluster_config(config), "crash-loop", crashing_api_server(restarts=2))
    assert result.status == "warn" and "may settle" in result.summary


def test_a_database_scaled_to_zero_fails_with_the_scale_back(config: LabConfig) -> None:
    cfg = cluster_config(config)
    objects = [deployment(KUBEFLOW, "model-registry-db", {"component": "db"}, ready=0, replicas=0)]
    result = judge(cfg, "database-health", objects)
    assert result.status == "fail" and "model-registry-db is not running" in result.summary
    assert "deployment kubeflow/model-registry-db is scaled to 0 replicas: nothing serves" in result.evidence
    scale = (
        f"kubectl --kubeconfig {KUBECONFIG} --context shared -n kubeflow scale deployment model-registry-db"
    )
    assert f"{scale} --replicas=1" in result.remedy
    healthy = [
        deployment(KUBEFLOW, "model-registry-db", {"component": "db"}),
        ready_pod(KUBEFLOW, "model-registry-db-6c8d7b9f5-p3q5r", "db", "mysql:8.3", {"component": "db"}),
    ]
    assert judge(cfg, "database-health", healthy).status == "ok"


def kserve_objects() -> list[object]:
    labels = {"control-plane": "kserve-controller-manager"}
    return [
        deployment("kserve", "kserve-controller-manager", labels),
        ready_pod(
            "kserve", "kserve-controller-manager-5d9c7b8f6-abcde", "manager", "kserve/kserve:v0.20.0", labels
        ),
    ]


def test_a_storage_container_drifted_from_the_pinned_image_is_named_and_fixable(config: LabConfig) -> None:
    cfg = cluster_config(config, manifests_dir="/mirror", cluster_registry="127.0.0.1:5001")
    drifted = storage_container(cfg)
    drifted["spec"]["container"]["image"] = "ghcr.io/kitops-ml/kitops-kserve:wrong"
    custom = {
        ("serving.kserve.io", "v1beta1", "inferenceservices"): [],
        ("serving.kserve.io", "v1alpha1", "clusterstoragecontainers"): [drifted],
    }
    result = judge(cfg, "kserve-not-ready", kserve_objects(), custom=custom)
    assert result.status == "fail" and result.fixable
    pinned = storage_container(cfg)["spec"]["container"]["image"]
    assert (
        "ClusterStorageContainer kitops drifted from the pinned spec: spec.container.image is "
        f"'ghcr.io/kitops-ml/kitops-kserve:wrong', pinned '{pinned}'"
    ) in result.evidence
    assert (
        as_invoked(f"{up_command(cfg, 'cluster')}  # re-applies the pinned kitops ClusterStorageContainer")
        in result.remedy
    )
    assert "--manifests-dir /mirror" in up_command(cfg, "cluster")
    custom[("serving.kserve.io", "v1alpha1", "clusterstoragecontainers")] = [storage_container(cfg)]
    assert judge(cfg, "kserve-not-ready", kserve_objects(), custom=custom).status == "ok"


def terminating_kserve(owner: str | None = LAB_OWNER) -> V1Namespace:
    """Namespace kserve held by a finalizer; the lab's (its owner label) unless ``owner`` is None."""
    labels = {OWNER_LABEL: owner} if owner else {}
    message = (
        "Some content in the namespace has finalizers remaining: example.com/block in 1 resource instances"
    )
    return V1Namespace(
        metadata=V1ObjectMeta(name="kserve", deletion_timestamp=NOW, labels=labels),
        spec=V1NamespaceSpec(finalizers=["kubernetes"]),
        status=V1NamespaceStatus(
            phase="Terminating",
            conditions=[
                V1NamespaceCondition(
                    type="NamespaceFinalizersRemaining",
                    status="True",
                    reason="SomeFinalizersRemain",
                    message=message,
                ),
                V1NamespaceCondition(type="NamespaceDeletionDiscoveryFailure", status="False"),
            ],
        ),
    )


def test_a_terminating_namespace_shows_what_holds_it_and_the_patch_that_releases_it(
    config: LabConfig,
) -> None:
    cfg = cluster_config(config)
    held = {
        "kind": "ConfigMap",
        "resource": "configmaps",
        "name": "blocker",
        "finalizers": ["example.com/block"],
    }
    result = judge(cfg, "namespace-terminating", [terminating_kserve()], finalized={"kserve": [held]})
    assert result.status == "fail" and "namespace kserve stuck Terminating" in result.summary
    assert "ConfigMap kserve/blocker: finalizers example.com/block" in result.evidence
    assert any(
        "condition NamespaceFinalizersRemaining: SomeFinalizersRemain" in line for line in result.evidence
    )
    patch = (
        f"kubectl --kubeconfig {KUBECONFIG} --context shared -n kserve patch configmaps/blocker --type=json "
        """-p '[{"op":"remove","path":"/metadata/finalizers"}]'"""
    )
    assert patch in result.remedy and result.remedy[-1] == as_invoked(up_command(cfg, "cluster"))
    # Another tenant's namespace is not the lab's business.
    other = terminating_kserve()
    other.metadata.name = "team-a"
    assert judge(cfg, "namespace-terminating", [other]).status == "ok"


def test_a_terminating_namespace_the_lab_adopted_gets_no_finalizer_patch(config: LabConfig) -> None:
    """It was there before the lab: what holds it is its owner's to clear; the doctor shows where."""
    cfg = cluster_config(config)
    held = {"kind": "ConfigMap", "resource": "configmaps", "name": "blocker", "finalizers": ["example.com/x"]}
    result = judge(
        cfg, "namespace-terminating", [terminating_kserve(owner=None)], finalized={"kserve": [held]}
    )
    assert result.status == "fail" and not result.fixable
    assert result.evidence[0].endswith(
        "(spec.finalizers: kubernetes), not the lab's: it was there before the lab"
    )
    prefix = f"kubectl --kubeconfig {KUBECONFIG} --context shared"
    assert result.remedy[0].startswith(
        f"# namespace kserve is not the lab's (it was there before the lab; no label {OWNER_LABEL}): "
        "whoever deleted it resolves what holds it"
    )
    assert result.remedy[1:3] == (
        f"{prefix} get namespace kserve -o yaml",
        f"{prefix} -n kserve get configmaps/blocker -o yaml",
    )
    assert not [line for line in result.remedy if " patch " in line]
    assert result.remedy[-1] == as_invoked(up_command(cfg, "cluster"))


def test_a_pending_claim_of_a_kfp_someone_else_installed_is_theirs_to_bind(config: LabConfig) -> None:
    cfg = cluster_config(config)
    theirs = deployment(KUBEFLOW, "ml-pipeline", {"app": "ml-pipeline"}, owner=None)
    mysql_labels = {"app": "mysql"}
    objects = [
        *[o for o in healthy_kfp() if getattr(o.metadata, "name", "") != "ml-pipeline"],
        theirs,
        deployment(KUBEFLOW, "mysql", mysql_labels, ready=0, owner=None),
        storage_class(mode="Immediate"),
        pvc(KUBEFLOW, "mysql-pv-claim", "standard"),
        pod(
            KUBEFLOW,
            "mysql-5b7c9d8f4-k8j2n",
            [status("mysql", "mysql:8.4", waiting("ContainerCreating"))],
            phase="Pending",
            claims=["mysql-pv-claim"],
            labels=mysql_labels,
        ),
    ]
    result = judge(cfg, "pvc-pending", objects)
    assert result.status == "fail" and not result.fixable
    assert (
        result.summary
        == "1 claim(s) stuck Pending: kubeflow/mysql-pv-claim (kfp is not the lab's: ask its owner)"
    )
    assert result.remedy[0].startswith("# kfp is not the lab's: kfp (version unknown) was found installed")
    assert not [line for line in result.remedy if "persistentvolumes" in line], result.remedy


def test_up_records_its_flags_and_the_doctor_fills_what_it_was_not_given(config: LabConfig) -> None:
    up = cluster_config(config, manifests_dir="/mirror", cluster_registry="127.0.0.1:5001")
    path = record_up_flags(up)
    assert path == record_path(up) and path.parent == config.home / "clusters"
    assert json.loads(path.read_text())["cluster_registry"] == "127.0.0.1:5001"
    doctor = with_recorded_flags(cluster_config(config))
    assert (doctor.manifests_dir, doctor.cluster_registry) == ("/mirror", "127.0.0.1:5001")
    # What the doctor's command line says wins; another context has its own record.
    given = with_recorded_flags(cluster_config(config, cluster_registry="10.0.0.1:5000"))
    assert given.cluster_registry == "10.0.0.1:5000"
    assert with_recorded_flags(cluster_config(config, kube_context="other")).cluster_registry == ""
    path.write_text("not json")
    assert with_recorded_flags(cluster_config(config)).cluster_registry == ""
