"""`lab up` and `lab down --mode cluster` on a cluster other people use, on the real control plane.

The story: an admin installed cert-manager before the lab; another tenant works in its own
namespace and, once the lab is up, in the lab's `kubeflow` namespace too. Whatever the lab
did not create survives `up` and `down` unchanged (same uid, same spec). Credentials that may
only read make `up` and `down` stop before changing anything, and a cluster the lab cannot
see makes `doctor` and `status` say why and exit 2. Tests run in file order.
"""

from __future__ import annotations

import copy
import io
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from lab.config import LabConfig
from lab.deadline import Deadline, wait_until
from lab.kube import Kube
from lab.kube_objects import OWNER_LABEL, Manifest, comparable, object_key
from lab.progress import Progress
from lab.provision.cluster_mode import down_cluster
from lab.provision.control_plane import ControlPlane
from lab.provision.teardown import NUDGE_ANNOTATION, FinalizerNudge, list_objects, listable, owned_objects
from lab.tools import tool_path
from tests.conftest import NO_MIRROR, UPSTREAM_MIRROR
from tests.e2e.conftest import cluster_mode_config, run_lab

CERT_MANAGER_YAML = "kubeflow-manifests-26.03/common/cert-manager/base/upstream/cert-manager.yaml"
ADMIN_SELECTOR = "app.kubernetes.io/instance=cert-manager"
KSERVE_OVERLAY = "kserve-v0.20.0/config/overlays/standalone/kserve"
TENANT = "team-a"
BOOKKEEPING = {"Event", "Lease"}
HOLDING_FINALIZER = "team-a.example.com/hold"


@dataclass
class SharedCluster:
    """The control plane as the admin, the tenant and the lab share it."""

    config: LabConfig
    plane: ControlPlane
    admin: Kube
    read_only: Path  # a kubeconfig whose token is bound to the `view` ClusterRole
    home: Path


def lab(
    shared: SharedCluster, command: str, *argv: str, kubeconfig: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``lab <command> --mode cluster --kubeconfig K <argv>`` as a user types it."""
    target = ["--kubeconfig", str(kubeconfig or shared.plane.kubeconfig)]
    result = run_lab(shared.config, command, *argv, target=target, timeout=900)
    print(f"$ lab {command} {' '.join(argv)} -> {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def kubectl(shared: SharedCluster, *argv: str) -> str:
    """kubectl as the admin."""
    binary = tool_path(shared.config, "kubectl")
    target = ["--kubeconfig", str(shared.plane.kubeconfig), "--context", shared.plane.context]
    return subprocess.run(
        [str(binary), *target, *argv], capture_output=True, text=True, check=True, timeout=300
    ).stdout


def everything(kube: Kube) -> set[str]:
    """Every object on the cluster (but records controllers write), by kind, name and uid."""
    return {
        f"{object_key(o)} {o['metadata']['uid']}"
        for r in listable(kube)
        if r.kind not in BOOKKEEPING
        for o in list_objects(r)
    }


def fingerprint(obj: Manifest) -> tuple[str, Manifest]:
    """The uid and everything but status and what the API server rewrites."""
    return obj["metadata"]["uid"], comparable(obj)


def read_only_kubeconfig(admin: Kube, plane: ControlPlane, path: Path) -> Path:
    """A ServiceAccount bound to `view`, and a kubeconfig that authenticates with its token."""
    core, rbac = client.CoreV1Api(admin.api), client.RbacAuthorizationV1Api(admin.api)
    core.create_namespaced_service_account(
        TENANT, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    rbac.create_cluster_role_binding(
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=f"{TENANT}-reader-view"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="view"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=TENANT)],
        )
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=7200)
    )
    token = core.create_namespaced_service_account_token("reader", TENANT, request).status.token
    admin_config = yaml.safe_load(plane.kubeconfig.read_text())
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": admin_config["clusters"],
                "users": [{"name": "reader", "user": {"token": token}}],
                "contexts": [{"name": "reader", "context": {"cluster": plane.context, "user": "reader"}}],
                "current-context": "reader",
            }
        )
    )
    return path


def reuse_released_volumes(admin: Kube) -> None:
    """What an admin does with `Retain` volumes a deleted claim left Released: make them Available."""
    core = client.CoreV1Api(admin.api)
    for volume in core.list_persistent_volume(label_selector="lab/static=true").items:
        if volume.status.phase == "Released":
            core.patch_persistent_volume(volume.metadata.name, {"spec": {"claimRef": None}})


@pytest.fixture(scope="module")
def shared(
    control_plane: tuple[LabConfig, ControlPlane], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedCluster]:
    if UPSTREAM_MIRROR is None:
        pytest.skip(f"the shared-cluster tier installs from the upstream mirror: {NO_MIRROR}")
    tools_config, plane = control_plane
    config = cluster_mode_config(tools_config.home, plane)
    admin = Kube.from_kubeconfig(str(plane.kubeconfig), plane.context)
    # Another module on this worker's control plane may have left the lab up (the cycles do):
    # this tier starts where a shared cluster does, with no lab on it.
    if owned_objects(Kube.connect(config)):
        assert down_cluster(config, Progress(quiet=True)) == 0
    assert owned_objects(Kube.connect(config)) == [], "down left lab objects behind"
    reuse_released_volumes(admin)
    core = client.CoreV1Api(admin.api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=TENANT)))
    wait_until(
        lambda: [] if _has_default_sa(core, TENANT) else ["no default ServiceAccount"], Deadline(60), TENANT
    )
    home = tmp_path_factory.mktemp("shared")
    read_only = read_only_kubeconfig(admin, plane, home / "read-only.kubeconfig")
    cluster = SharedCluster(config, plane, admin, read_only, home)
    # The admin installs cert-manager before the lab, from the same upstream file, as an admin would.
    kubectl(cluster, "apply", "--server-side", "-f", str(UPSTREAM_MIRROR / CERT_MANAGER_YAML))
    wait_until(
        lambda: admin.deployments_not_available(
            "cert-manager", ["cert-manager", "cert-manager-cainjector", "cert-manager-webhook"]
        ),
        Deadline(180),
        "the admin's cert-manager is not Available",
    )
    yield cluster
    manifest = str(UPSTREAM_MIRROR / CERT_MANAGER_YAML)
    kubectl(cluster, "delete", "--ignore-not-found", "--wait=false", "-f", manifest)
    client.RbacAuthorizationV1Api(admin.api).delete_cluster_role_binding(f"{TENANT}-reader-view")
    core.delete_namespace(TENANT)
    # The next module on this worker's control plane starts where this one did: nothing of the
    # admin's or the tenant's still being deleted.
    names = {TENANT, "cert-manager"}
    wait_until(
        lambda: sorted(n.metadata.name for n in core.list_namespace().items if n.metadata.name in names),
        Deadline(180),
        "namespaces still being deleted",
    )


def _has_default_sa(core: client.CoreV1Api, namespace: str) -> bool:
    return any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(namespace).items)


def admins_objects(kube: Kube) -> dict[str, tuple[str, Manifest]]:
    """The admin's cert-manager, every object of it."""
    return {
        object_key(o): fingerprint(o)
        for r in listable(kube)
        for o in list_objects(r, selector=ADMIN_SELECTOR)
    }


# ---------------------------------------------------------------------------------------------
# Could not check: doctor and status say why and exit 2.
# ---------------------------------------------------------------------------------------------


def test_doctor_and_status_exit_2_when_the_api_server_does_not_answer(shared: SharedCluster) -> None:
    closed = yaml.safe_load(shared.plane.kubeconfig.read_text())
    closed["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    path = shared.home / "closed.kubeconfig"
    path.write_text(yaml.safe_dump(closed))
    for command, name in (
        ("doctor", "lab doctor could not check"),
        ("status", "lab status could not inspect"),
    ):
        run = lab(shared, command, kubeconfig=path)
        assert run.returncode == 2
        first = run.stderr.splitlines()[0]
        assert first.startswith(f"ERROR: {name} the cluster: the API server https://127.0.0.1:1 of context ")
        assert "does not answer (connection refused)" in first
        assert "HTTPHeaderDict" not in run.stderr + run.stdout and "Traceback" not in run.stderr
        assert "0 failed" not in run.stdout


def test_doctor_and_status_exit_2_on_a_context_that_is_not_there(shared: SharedCluster) -> None:
    for command in ("doctor", "status"):
        run = lab(shared, command, "--context", "nope")
        assert run.returncode == 2
        where = f"kubeconfig {shared.plane.kubeconfig} (contexts: {shared.plane.context})"
        assert run.stderr.splitlines()[0].endswith(f"context 'nope' is not in {where}")
        assert "crashed" not in run.stdout


def test_doctor_and_status_exit_2_with_a_token_that_may_not_list(shared: SharedCluster) -> None:
    user = f"(user reader in {shared.read_only})"
    doctor = lab(shared, "doctor", kubeconfig=shared.read_only)
    assert doctor.returncode == 2
    assert doctor.stderr.splitlines()[0].startswith(
        f"ERROR: lab doctor could not check the cluster: forbidden: the credentials of context reader {user} "
        "may not list storageclasses, list nodes, get secrets cluster-wide"
    )
    status = lab(shared, "status", kubeconfig=shared.read_only)
    assert status.returncode == 2
    assert "may not list nodes cluster-wide" in status.stderr.splitlines()[0]


# ---------------------------------------------------------------------------------------------
# Read-only credentials: `up` changes nothing.
# ---------------------------------------------------------------------------------------------


def test_up_with_read_only_credentials_changes_nothing(shared: SharedCluster) -> None:
    before = everything(shared.admin)
    up = lab(shared, "up", kubeconfig=shared.read_only)
    assert up.returncode == 1
    assert "lab up stopped before changing anything" in up.stderr
    details = [line.strip() for line in up.stderr.splitlines() if line.startswith("    ")]
    assert "may not create deployments.apps in namespace kubeflow" in details
    assert "may not create customresourcedefinitions.apiextensions.k8s.io cluster-wide" in details
    assert "HTTPHeaderDict" not in up.stderr and '"kind":"Status"' not in up.stderr
    assert everything(shared.admin) == before


def test_up_refuses_a_cert_manager_of_another_minor(shared: SharedCluster) -> None:
    apps = client.AppsV1Api(shared.admin.api)
    label = "app.kubernetes.io/version"
    apps.patch_namespaced_deployment(
        "cert-manager", "cert-manager", {"metadata": {"labels": {label: "v1.12.3"}}}
    )
    try:
        before = everything(shared.admin)
        up = lab(shared, "up")
        assert up.returncode == 1
        assert (
            "cert-manager v1.12.3 found installed (Deployment cert-manager/cert-manager, not the lab's): "
            "the lab needs cert-manager v1.19.x (pinned v1.19.4)" in up.stderr
        )
        assert everything(shared.admin) == before
    finally:
        apps.patch_namespaced_deployment(
            "cert-manager", "cert-manager", {"metadata": {"labels": {label: "v1.19.4"}}}
        )


def test_up_refuses_to_take_over_an_object_it_did_not_create(shared: SharedCluster) -> None:
    core = client.CoreV1Api(shared.admin.api)
    theirs = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="local-registry-hosting"),
        data={"localRegistryHosting.v1": 'host: "registry.team-a.example:443"\n'},
    )
    created = core.create_namespaced_config_map("kube-public", theirs)
    try:
        before = everything(shared.admin)
        up = lab(shared, "up", "--registry", "127.0.0.1:5001")
        assert up.returncode == 1
        assert (
            "    ConfigMap kube-public/local-registry-hosting already exists and was not created by the lab "
            f"(no label {OWNER_LABEL}): the lab does not take over other objects"
        ) in up.stderr.splitlines()
        assert everything(shared.admin) == before
        after = core.read_namespaced_config_map("local-registry-hosting", "kube-public")
        assert (after.metadata.uid, after.data) == (created.metadata.uid, created.data)
    finally:
        core.delete_namespaced_config_map("local-registry-hosting", "kube-public")


# ---------------------------------------------------------------------------------------------
# Up uses the admin's cert-manager; down deletes only what the lab created.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab_up(shared: SharedCluster) -> dict[str, tuple[str, Manifest]]:
    """`lab up` on the shared cluster; returns the admin's cert-manager as it was before."""
    admins = admins_objects(shared.admin)
    assert len(admins) > 40
    up = lab(shared, "up", "--registry", "127.0.0.1:5001")
    assert up.returncode == 0, up.stderr
    assert (
        "cert-manager v1.19.4 found installed (Deployment cert-manager/cert-manager, not the lab's): "
        "used as it is, never changed or deleted by the lab" in up.stderr
    )
    return admins


def test_up_leaves_the_admins_cert_manager_as_it_was(shared: SharedCluster, lab_up: dict[str, Any]) -> None:
    assert admins_objects(shared.admin) == lab_up
    owned = {object_key(o) for _, o in owned_objects(Kube.connect(shared.config))}
    assert "Namespace cert-manager" not in owned and not [k for k in owned if "cert-manager.io" in k]
    status = lab(shared, "status", "--json")
    assert status.returncode == 0
    rows = {row["name"]: row for row in json.loads(status.stdout)["cluster"]}
    assert (rows["cert-manager"]["state"], rows["cert-manager"]["owner"]) == ("ready", "found")
    assert rows["cert-manager"]["detail"].startswith(
        "cert-manager is not the lab's: cert-manager v1.19.4 was found installed (Deployment "
        "cert-manager/cert-manager, installed by field manager kubectl)"
    )
    assert rows["kserve"]["owner"] == "lab"


def _scale_admins_webhook(shared: SharedCluster, replicas: int) -> None:
    apps = client.AppsV1Api(shared.admin.api)
    apps.patch_namespaced_deployment_scale(
        "cert-manager-webhook", "cert-manager", {"spec": {"replicas": replicas}}
    )
    core = client.CoreV1Api(shared.admin.api)
    if replicas == 0:
        wait_until(
            lambda: [
                p.metadata.name
                for p in core.list_namespaced_pod("cert-manager", label_selector="app=webhook").items
            ],
            Deadline(60),
            "the admin's webhook pods are not gone",
        )
    else:
        wait_until(
            lambda: shared.admin.deployments_not_available("cert-manager", ["cert-manager-webhook"]),
            Deadline(120),
            "the admin's webhook is not Available again",
        )


def test_the_admins_broken_cert_manager_is_theirs_to_repair(
    shared: SharedCluster, lab_up: dict[str, Any]
) -> None:
    """Doctor, `--fix`, `status` and `up` ask lab.ownership: no lab remedy for the admin's cert-manager."""
    _scale_admins_webhook(shared, 0)
    try:
        broken = admins_objects(shared.admin)
        doctor = lab(shared, "doctor", "--json", "cert-manager-not-ready")
        assert doctor.returncode == 1
        (finding,) = json.loads(doctor.stdout)["checks"]
        assert finding["status"] == "fail" and "cert-manager-webhook" in finding["summary"]
        assert "(cert-manager is not the lab's: ask its owner)" in finding["summary"]
        assert finding["evidence"][0] == (
            "cert-manager is not the lab's: cert-manager v1.19.4 was found installed (Deployment "
            "cert-manager/cert-manager, installed by field manager kubectl); the lab uses it as it is "
            "and never changes it"
        )
        assert not finding["fixable"]
        remedy = finding["remedy"]
        # No `lab ...` line (up would skip it), and only commands that look, aimed at where it lives.
        assert remedy[1].startswith("# ask whoever runs cert-manager on this cluster (field manager kubectl)")
        commands = [line for line in remedy if not line.startswith("#")]
        assert commands and all(line.startswith("kubectl --kubeconfig ") for line in commands), remedy
        assert all(" -n cert-manager get " in c or " -n cert-manager describe " in c for c in commands)
        assert "deployment cert-manager cert-manager-cainjector cert-manager-webhook" in commands[1]

        # --fix offers nothing for it and changes nothing of the admin's.
        fixed = lab(shared, "doctor", "--fix", "--yes", "cert-manager-not-ready", "crash-loop")
        assert fixed.returncode == 1
        assert "fix cert-manager-not-ready" not in fixed.stdout + fixed.stderr
        assert admins_objects(shared.admin) == broken

        status = lab(shared, "status")
        assert status.returncode == 0
        (row,) = [line.split() for line in status.stdout.splitlines() if line.startswith("cert-manager ")]
        assert row[:3] == ["cert-manager", "unhealthy", "found"]
        assert "cert-manager is not the lab's" in status.stdout
        owners = {
            r["name"]: r["owner"] for r in json.loads(lab(shared, "status", "--json").stdout)["cluster"]
        }
        assert owners == {
            "cluster": None,
            "cert-manager": "found",
            "kfp": "lab",
            "model-registry": "lab",
            "kserve": "lab",
        }

        # `up` waits for the cert-manager it uses (KServe needs its webhook) and stops on the
        # doctor's finding instead of going on as if it were ready; it changes nothing of it.
        up = run_lab(
            shared.config,
            "up",
            "--registry",
            "127.0.0.1:5001",
            target=["--kubeconfig", str(shared.plane.kubeconfig)],
            timeout=300,
            LAB_CLUSTER_TIMEOUT="15",
        )
        print(up.stdout, up.stderr)
        assert up.returncode == 1
        assert "waiting for cert-manager in cert-manager (not the lab's: none of it is changed)" in up.stderr
        assert "step 'cert-manager' failed: cert-manager-not-ready: cert-manager is not ready" in up.stderr
        assert "(cert-manager is not the lab's: ask its owner); to fix: kubectl " in up.stderr
        assert "Kubeflow Pipelines" not in up.stderr
        assert admins_objects(shared.admin) == broken
    finally:
        _scale_admins_webhook(shared, 1)
    # The admin's own scaling made new webhook Pods (and Endpoints): that is their cert-manager
    # from here on, which the tests that follow must find unchanged.
    # (Once the controllers have written the new Endpoints: two reads a few seconds apart agree.)
    seen: list[dict[str, tuple[str, Manifest]]] = [admins_objects(shared.admin)]

    def still_changing() -> list[str]:
        seen.append(admins_objects(shared.admin))
        return [] if seen[-1] == seen[-2] else ["the admin's cert-manager is still changing"]

    wait_until(still_changing, Deadline(60), "the admin's cert-manager did not settle", interval=3.0)
    lab_up.clear()
    lab_up.update(seen[-1])


def tenant_objects(shared: SharedCluster) -> list[Manifest]:
    """Another tenant's work: in the lab's `kubeflow` namespace, and custom resources in its own."""
    pod_spec = {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "tenant-pod", "namespace": "kubeflow"},
            "spec": pod_spec,
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "tenant-job", "namespace": "kubeflow"},
            "spec": {"template": {"spec": {**pod_spec, "restartPolicy": "Never"}}},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "tenant-sa", "namespace": "kubeflow"},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "tenant-role", "namespace": "kubeflow"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "tenant-config", "namespace": "kubeflow"},
            "data": {"k": "v"},
        },
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "tenant-isvc", "namespace": TENANT},
            "spec": {
                "predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://team-a/iris"}}
            },
        },
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Issuer",
            "metadata": {"name": "tenant-issuer", "namespace": TENANT},
            "spec": {"selfSigned": {}},
        },
    ]


def test_down_deletes_only_what_the_lab_created(shared: SharedCluster, lab_up: dict[str, Any]) -> None:
    kube = Kube.connect(shared.config)
    tenant = Kube.from_kubeconfig(
        str(shared.plane.kubeconfig), shared.plane.context
    )  # no owner: never labels
    for obj in tenant_objects(shared):
        tenant.create_if_absent(copy.deepcopy(obj))
    core = client.CoreV1Api(tenant.api)
    wait_until(
        lambda: (
            [] if core.read_namespaced_pod("tenant-pod", "kubeflow").spec.node_name else ["not scheduled"]
        ),
        Deadline(60),
        "tenant pod",
    )
    wait_until(
        lambda: (
            []
            if core.list_namespaced_pod("kubeflow", label_selector="job-name=tenant-job").items
            else ["no job pod"]
        ),
        Deadline(60),
        "job pod",
    )
    theirs = {object_key(o): fingerprint(tenant.get(o) or {}) for o in tenant_objects(shared)}
    job_pods = {
        p.metadata.uid
        for p in core.list_namespaced_pod("kubeflow", label_selector="job-name=tenant-job").items
    }

    # Read-only credentials: down stops before deleting anything (today: "nothing to delete", exit 0).
    before = everything(shared.admin)
    refused = lab(shared, "down", kubeconfig=shared.read_only)
    assert refused.returncode == 1
    assert "lab down: the credentials of" in refused.stderr and "nothing was changed" in refused.stderr
    assert "    may not list secrets cluster-wide" in refused.stderr.splitlines()
    assert "nothing to delete" not in refused.stdout + refused.stderr
    assert everything(shared.admin) == before

    down = lab(shared, "down")
    assert down.returncode == 1
    kept = [line for line in (down.stdout + down.stderr).splitlines() if line.startswith("REFUSED: ")]
    assert kept[0].startswith("REFUSED: Namespace kubeflow kept: it holds objects the lab did not create: ")
    for name in (
        "Pod kubeflow/tenant-pod",
        "Job kubeflow/tenant-job",
        "ServiceAccount kubeflow/tenant-sa",
        "Role kubeflow/tenant-role",
    ):
        assert name in kept[0]
    assert kept[1] == (
        "REFUSED: CustomResourceDefinition inferenceservices.serving.kserve.io kept: custom resources "
        "the lab did not create remain: InferenceService team-a/tenant-isvc"
    )
    # Every object of the tenant and the admin, byte for byte.
    assert {object_key(o): fingerprint(tenant.get(o) or {}) for o in tenant_objects(shared)} == theirs
    assert {
        p.metadata.uid
        for p in core.list_namespaced_pod("kubeflow", label_selector="job-name=tenant-job").items
    } == job_pods
    assert admins_objects(shared.admin) == lab_up
    left = sorted(object_key(o) for _, o in owned_objects(kube))
    assert left == ["CustomResourceDefinition inferenceservices.serving.kserve.io", "Namespace kubeflow"]

    # Once the tenant's work is gone, the rest of what the lab created goes too.
    for obj in reversed(tenant_objects(shared)):
        kind = (
            f"{obj['kind'].lower()}.{obj['apiVersion'].split('/')[0]}"
            if "/" in obj["apiVersion"]
            else obj["kind"]
        )
        kubectl(
            shared,
            "delete",
            "--wait=false",
            "-n",
            obj["metadata"]["namespace"],
            kind,
            obj["metadata"]["name"],
        )
    wait_until(
        lambda: (
            [object_key(o) for o in tenant_objects(shared) if tenant.get(o) is not None]
            + [
                p.metadata.name
                for p in core.list_namespaced_pod("kubeflow").items
                if not p.metadata.owner_references or "tenant" in p.metadata.name
            ]
        ),
        Deadline(120),
        "tenant objects still there",
    )
    assert lab(shared, "down").returncode == 0
    assert owned_objects(kube) == []
    assert admins_objects(shared.admin) == lab_up
    assert OWNER_LABEL not in (core.read_namespace("cert-manager").metadata.labels or {})


def admins_kserve(shared: SharedCluster) -> Path:
    """KServe v0.20.0 as an admin installs it from upstream (its standalone overlay), as one file."""
    overlay = UPSTREAM_MIRROR / KSERVE_OVERLAY if UPSTREAM_MIRROR else Path()
    built = subprocess.run(
        [str(tool_path(shared.config, "kustomize")), "build", str(overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    docs = [d for d in yaml.safe_load_all(built) if d]
    for doc in docs:
        for container in (doc.get("spec") or {}).get("template", {}).get("spec", {}).get("containers", []):
            # What a release's kserve.yaml runs (the overlay says :latest).
            container["image"] = container["image"].replace(
                "kserve-controller:latest", "kserve-controller:v0.20.0"
            )
    path = shared.home / "admins-kserve.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


def _apply_until_established(shared: SharedCluster, path: Path) -> list[str]:
    """``kubectl apply`` once; what it could not apply yet (custom resources before their CRD is served)."""
    binary = tool_path(shared.config, "kubectl")
    target = ["--kubeconfig", str(shared.plane.kubeconfig), "--context", shared.plane.context]
    run = subprocess.run(
        [str(binary), *target, "apply", "--server-side", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return [line for line in run.stderr.splitlines() if line.strip()] if run.returncode else []


def test_a_found_kserve_gets_the_labs_storage_container(
    shared: SharedCluster, lab_up: dict[str, Any]
) -> None:
    """KServe the admin installed is used as it is; `kit://` still works: the lab adds its own container."""
    kube = Kube.connect(shared.config)
    assert owned_objects(kube) == []
    manifest = admins_kserve(shared)
    wait_until(lambda: _apply_until_established(shared, manifest), Deadline(120), "the admin's KServe")
    wait_until(
        lambda: shared.admin.deployments_not_available("kserve", ["kserve-controller-manager"]),
        Deadline(120),
        "the admin's KServe is not Available",
    )
    admins = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    kserve_before = {object_key(o): fingerprint(shared.admin.get(o) or {}) for o in admins}

    plan = lab(shared, "up", "--dry-run", "--registry", "127.0.0.1:5001")
    assert plan.returncode == 0, plan.stderr
    kserve_plan = plan.stdout[plan.stdout.index("kserve v0.20.0 found installed") :]
    assert "create ClusterStorageContainer kitops" in kserve_plan.splitlines()[1], kserve_plan
    up = lab(shared, "up", "--registry", "127.0.0.1:5001")
    assert up.returncode == 0, up.stderr
    assert (
        "kserve v0.20.0 found installed (Deployment kserve/kserve-controller-manager, not the lab's): "
        "used as it is, never changed or deleted by the lab" in up.stderr
    )
    assert "applying the lab's own ClusterStorageContainer kitops beside kserve" in up.stderr
    owned = {object_key(o) for _, o in owned_objects(kube)}
    assert "ClusterStorageContainer kitops" in owned
    assert not [key for key in owned if key.startswith("Deployment kserve/") or "kserve.io" in key]
    doctor = lab(shared, "doctor", "--json", "kserve-not-ready")
    assert json.loads(doctor.stdout)["checks"][0]["status"] == "ok", doctor.stdout
    rows = {row["name"]: row for row in json.loads(lab(shared, "status", "--json").stdout)["cluster"]}
    assert (rows["kserve"]["state"], rows["kserve"]["owner"]) == ("ready", "found")

    # The lab's container drifts (a wrong tag): the next `up` repairs it, and only it.
    custom = client.CustomObjectsApi(shared.admin.api)
    csc = custom.get_cluster_custom_object(
        "serving.kserve.io", "v1alpha1", "clusterstoragecontainers", "kitops"
    )
    pinned = csc["spec"]["container"]["image"]
    csc["spec"]["container"]["image"] = pinned.rsplit(":", 1)[0] + ":wrong"
    custom.replace_cluster_custom_object(
        "serving.kserve.io", "v1alpha1", "clusterstoragecontainers", "kitops", csc
    )
    repaired = lab(shared, "up", "--registry", "127.0.0.1:5001")
    assert repaired.returncode == 0, repaired.stderr
    assert "repairing drift: update ClusterStorageContainer kitops: spec.container.image" in repaired.stderr
    again = custom.get_cluster_custom_object(
        "serving.kserve.io", "v1alpha1", "clusterstoragecontainers", "kitops"
    )
    assert again["spec"]["container"]["image"] == pinned

    assert lab(shared, "down").returncode == 0
    assert owned_objects(kube) == []
    assert {object_key(o): fingerprint(shared.admin.get(o) or {}) for o in admins} == kserve_before


def test_up_waits_for_what_is_being_deleted(shared: SharedCluster, lab_up: dict[str, Any]) -> None:
    """The admin removes cert-manager and KServe: `up` waits for them to go, then installs its own."""
    assert owned_objects(Kube.connect(shared.config)) == []
    core = client.CoreV1Api(shared.admin.api)
    holder = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="held", finalizers=[HOLDING_FINALIZER]))
    core.create_namespaced_config_map("cert-manager", holder)
    kubectl(shared, "delete", "--wait=false", "-f", str(UPSTREAM_MIRROR / CERT_MANAGER_YAML))
    kserve = shared.home / "admins-kserve.yaml"
    kubectl(shared, "delete", "--ignore-not-found", "--wait=false", "-f", str(kserve))
    target = ["--kubeconfig", str(shared.plane.kubeconfig)]
    try:
        held = run_lab(shared.config, "up", target=target, timeout=300, LAB_CLUSTER_TIMEOUT="5")
        print(held.stdout, held.stderr)
        assert held.returncode == 1
        lines = held.stderr.splitlines()
        (waiting,) = [
            line
            for line in lines
            if re.search(r"being deleted, waiting for (it|them) to go before installing$", line)
        ]
        assert "Namespace cert-manager" in waiting
        (stopped,) = [line for line in lines if line.startswith("ERROR: ")]
        assert "still being deleted after 5s; `lab doctor namespace-terminating` names what holds" in stopped
        assert "    Namespace cert-manager is still being deleted" in lines
        assert owned_objects(Kube.connect(shared.config)) == []
        # The doctor names what holds it, and that clearing a finalizer there is not the lab's call.
        doctor = lab(shared, "doctor", "--json", "namespace-terminating")
        (finding,) = json.loads(doctor.stdout)["checks"]
        assert finding["status"] == "fail", finding
        assert "not the lab's: it was there before the lab" in finding["evidence"][0]
        assert f"ConfigMap cert-manager/held: finalizers {HOLDING_FINALIZER}" in finding["evidence"]
        remedy = finding["remedy"]
        assert remedy[0].startswith("# namespace cert-manager is not the lab's (it was there before the lab")
        assert not [line for line in remedy if " patch " in line], remedy
        assert any(line.endswith("-n cert-manager get configmaps/held -o yaml") for line in remedy), remedy
        assert not finding["fixable"]
    finally:
        core.patch_namespaced_config_map("held", "cert-manager", {"metadata": {"finalizers": None}})
    up = lab(shared, "up")
    assert up.returncode == 0, up.stderr
    owned = {object_key(o) for _, o in owned_objects(Kube.connect(shared.config))}
    assert "Namespace cert-manager" in owned and "Deployment cert-manager/cert-manager" in owned
    assert lab(shared, "down").returncode == 0
    assert owned_objects(Kube.connect(shared.config)) == []


def test_a_lab_crd_that_stays_terminating_is_touched_so_its_finalizer_looks_again(
    shared: SharedCluster,
) -> None:
    """`down` touches a CRD of the lab's still there after 5 s (the API server may have dropped it).

    The API server's own finalizer can leave a deleted CRD until its informer's next resync,
    minutes later; a metadata change makes it look again at once. Here a finalizer of the
    tenant's holds the CRD, so its annotation is read back while it is still terminating.
    """
    crds = shared.admin.dynamic.resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    name = "nudges.lab-test.example.com"
    crds.create(
        body={
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name, "labels": {OWNER_LABEL: "test"}, "finalizers": [HOLDING_FINALIZER]},
            "spec": {
                "group": "lab-test.example.com",
                "names": {"kind": "Nudge", "plural": "nudges", "singular": "nudge", "listKind": "NudgeList"},
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": {"type": "object"}},
                    }
                ],
            },
        }
    )
    crds.delete(name=name)
    now = [100.0]
    said = io.StringIO()
    nudge = FinalizerNudge(shared.admin, Progress(stream=said), clock=lambda: now[0])

    def live() -> Manifest:
        found: Manifest = crds.get(name=name).to_dict()
        assert found["metadata"].get("deletionTimestamp"), found["metadata"]
        return found

    def annotation() -> str | None:
        return (live()["metadata"].get("annotations") or {}).get(NUDGE_ANNOTATION)

    uid = live()["metadata"]["uid"]
    try:
        for at, touched in ((100.0, False), (104.9, False), (105.0, True), (109.0, False), (110.0, True)):
            now[0] = at
            assert nudge(live()) is touched, at
            if at == 104.9:
                assert annotation() is None
        assert annotation() is not None
        # Said once, the first time (not at every touch).
        assert said.getvalue() == (
            f"   CustomResourceDefinition {name} still there 5s after its delete: touched it so the API "
            "server's CRD finalizer looks at it again\n"
        )
    finally:
        crds.patch(
            name=name, body={"metadata": {"finalizers": None}}, content_type="application/merge-patch+json"
        )
    wait_until(
        lambda: [name] if crds.get(label_selector=f"{OWNER_LABEL}=test").items else [],
        Deadline(60),
        "the test CRD still there",
        interval=0.5,
    )
    # Gone meanwhile: no touch, no error (the wait it serves goes on).
    now[0] = 200.0
    gone = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}
    assert nudge({**gone, "metadata": {"name": name, "uid": uid}}) is False
    assert nudge.nudged[uid] == 200.0  # it was tried: the API server answered 404
