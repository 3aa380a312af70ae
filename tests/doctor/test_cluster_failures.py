"""Kind-mode failure modes, judged on kubernetes client objects shaped like the API's answers."""

from __future__ import annotations

import socket
from pathlib import Path

import yaml
from doctor_objects import (
    KUBEFLOW,
    NODE,
    basic,
    config_map,
    deployment,
    docker_config,
    event,
    healthy_kfp,
    node,
    pod,
    pvc,
    ready_pod,
    running,
    secret,
    status,
    storage_class,
    terminated,
    waiting,
)

from lab.config import LabConfig, load_config
from lab.doctor import Evidence, LiveCluster, RecordedCluster, Result, apply_fixes, diagnose
from lab.doctor.checks.mlmd_segfault import patch_path
from lab.invocation import as_invoked
from lab.progress import Progress
from lab.storage_container import storage_container as pinned_storage_container
from lab.upstream_manifests import manifest_mirror

MLMD_IMAGE = "gcr.io/tfx-oss-public/ml_metadata_store_server:1.14.0"
MLMD_POD = "metadata-grpc-deployment-6f8c9b7d5-x2k9p"


def kind_evidence(config: LabConfig, objects: list[object], **recorded: object) -> Evidence:
    return Evidence(config, mode="kind", cluster=RecordedCluster(objects, **recorded))  # type: ignore[arg-type]


def judge(config: LabConfig, check_id: str, objects: list[object], **recorded: object) -> Result:
    evidence = kind_evidence(config, objects, **recorded)
    return diagnose(config, [check_id], evidence=evidence).outcome(check_id).result


def text(lines: tuple[str, ...]) -> str:
    return "\n".join(lines)


# --- kind-dns-imagepull -------------------------------------------------------------------


def dns_failure() -> list[object]:
    image = "ghcr.io/kubeflow/kfp-api-server:2.16.0"
    name = "ml-pipeline-7c9d8f6b5-q2x7z"
    resolver = (
        f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": failed to do '
        'request: Head "https://ghcr.io/v2/kubeflow/kfp-api-server/manifests/2.16.0": dial tcp: lookup '
        "ghcr.io on 172.18.0.1:53: read udp 172.18.0.2:51234->172.18.0.1:53: i/o timeout"
    )
    waiting_pod = pod(
        KUBEFLOW,
        name,
        [
            status(
                "ml-pipeline-api-server",
                image,
                waiting("ImagePullBackOff", f'Back-off pulling image "{image}"'),
            )
        ],
        phase="Pending",
        labels={"app": "ml-pipeline"},
    )
    return [
        waiting_pod,
        event(
            KUBEFLOW,
            "Pod",
            name,
            "Failed",
            f'Failed to pull image "{image}": rpc error: code = Unknown desc = {resolver}',
            count=4,
        ),
        event(KUBEFLOW, "Pod", name, "Failed", "Error: ErrImagePull", count=4),
        event(KUBEFLOW, "Pod", name, "BackOff", f'Back-off pulling image "{image}"', type="Normal", count=9),
        node(),
    ]


def test_kind_dns_imagepull_shows_resolver_error_node_lookup_and_missing_conntrack(
    config: LabConfig, tmp_path: Path
) -> None:
    sys_root = tmp_path / "sys"
    (sys_root / "module" / "overlay").mkdir(parents=True)  # modules visible, nf_conntrack not among them
    evidence = Evidence(
        config,
        mode="kind",
        cluster=RecordedCluster(
            dns_failure(), lookups={(NODE, "ghcr.io"): "cannot resolve ghcr.io (getent exit 2)"}
        ),
        proc_root=tmp_path / "proc",
        sys_root=sys_root,
    )
    result = diagnose(config, ["kind-dns-imagepull"], evidence=evidence).outcome("kind-dns-imagepull").result

    assert result.status == "fail"
    lines = text(result.evidence)
    assert f"pod {KUBEFLOW}/ml-pipeline-7c9d8f6b5-q2x7z container ml-pipeline-api-server" in lines
    assert "waiting ImagePullBackOff" in lines
    assert "lookup ghcr.io on 172.18.0.1:53" in lines and "i/o timeout" in lines
    assert "nf_conntrack module NOT loaded" in lines
    assert f"node {NODE}: cannot resolve ghcr.io" in lines
    assert "sudo modprobe nf_conntrack  # kube-proxy in kind needs it" in result.remedy
    assert as_invoked("kind delete cluster --name kubeflow-lab && lab up --mode kind") in result.remedy


def test_conntrack_fact_comes_from_the_real_kernel(config: LabConfig) -> None:
    fact = Evidence(config).kernel_module("nf_conntrack")
    try:
        expected = any(
            line.startswith("nf_conntrack ") for line in Path("/proc/modules").read_text().splitlines()
        )
    except OSError:
        expected = Path("/sys/module/nf_conntrack").is_dir()
    assert fact.loaded is expected


def test_pull_of_an_existing_image_that_is_healthy_is_not_a_dns_failure(config: LabConfig) -> None:
    assert judge(config, "kind-dns-imagepull", [*healthy_kfp(), node()]).status == "ok"


# --- image-not-found ----------------------------------------------------------------------


def unpublished_tag() -> list[object]:
    image = "ghcr.io/kitops-ml/kitops-kubeflow:latest"
    name = "iris-pipeline-x7k2m-system-container-impl-3141592653"
    reason = (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": failed to resolve '
        f'reference "{image}": {image}: not found'
    )
    return [
        pod(KUBEFLOW, name, [status("main", image, waiting("ErrImagePull", reason))], phase="Pending"),
        event(KUBEFLOW, "Pod", name, "Failed", f'Failed to pull image "{image}": {reason}', count=2),
        node(),
    ]


def test_image_not_found_names_the_unpublished_tag_and_the_pin_variable(config: LabConfig) -> None:
    result = judge(config, "image-not-found", unpublished_tag())
    assert result.status == "fail"
    assert "ghcr.io/kitops-ml/kitops-kubeflow:latest" in result.summary
    assert "kitops-kubeflow:latest: not found" in text(result.evidence)
    assert "waiting ErrImagePull" in text(result.evidence)
    assert (
        "export LAB_KITOPS_KUBEFLOW_IMAGE=ghcr.io/kitops-ml/kitops-kubeflow@sha256:<digest>"
        "  # then re-run the pipeline" in result.remedy
    )
    # The same pull failure is not misread as a DNS problem.
    assert judge(config, "kind-dns-imagepull", unpublished_tag()).status == "ok"


# --- local-registry-unwired ---------------------------------------------------------------


def test_local_registry_unwired_lists_each_missing_wire(config: LabConfig) -> None:
    port = config.ports.registry
    image = f"localhost:{port}/iris-serving:1"
    refused = (
        f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": '
        f'failed to do request: Head "http://localhost:{port}/v2/iris-serving/manifests/1": '
        f"dial tcp [::1]:{port}: connect: connection refused"
    )
    objects = [
        node(),
        pod(
            "kubeflow",
            "iris-predictor-5d9f7c8b6-h2k4l",
            [status("kserve-container", image, waiting("ErrImagePull", refused))],
            phase="Pending",
        ),
    ]
    result = judge(config, "local-registry-unwired", objects, networks={"kind-registry": ["bridge"]})

    assert result.status == "fail" and result.fixable
    lines = text(result.evidence)
    assert "ConfigMap kube-public/local-registry-hosting does not exist" in lines
    assert f"node {NODE}: /etc/containerd/certs.d/localhost:{port}/hosts.toml is missing" in lines
    assert "registry container kind-registry is not on the kind network (networks: bridge)" in lines
    assert "connect: connection refused" in lines
    assert as_invoked("lab up --mode kind") in result.remedy


def test_wired_local_registry_is_ok(config: LabConfig) -> None:
    port = config.ports.registry
    hosting = config_map(
        "kube-public", "local-registry-hosting", {"localRegistryHosting.v1": f'host: "localhost:{port}"\n'}
    )
    hosts_toml = '[host."http://kind-registry:5000"]\n'
    result = judge(
        config,
        "local-registry-unwired",
        [node(), hosting],
        node_files={(NODE, f"/etc/containerd/certs.d/localhost:{port}/hosts.toml"): hosts_toml},
        networks={"kind-registry": ["bridge", "kind"]},
    )
    assert result.status == "ok", result


# --- mlmd-segfault ------------------------------------------------------------------------


def crashing_mlmd(image: str = MLMD_IMAGE, arch: str = "amd64") -> list[object]:
    back_off = f"back-off 5m0s restarting failed container=container pod={MLMD_POD}_kubeflow(uid-{MLMD_POD})"
    crash = status(
        "container", image, waiting("CrashLoopBackOff", back_off), last_state=terminated(139), restarts=7
    )
    return [
        deployment(KUBEFLOW, "metadata-grpc-deployment", {"component": "metadata-grpc-server"}, ready=0),
        pod(KUBEFLOW, MLMD_POD, [crash], labels={"component": "metadata-grpc-server"}),
        node(arch=arch),
    ]


def test_mlmd_segfault_on_amd64_reports_exit_139_arch_and_the_pin(config: LabConfig) -> None:
    logs = {
        (
            KUBEFLOW,
            MLMD_POD,
            "container",
        ): "WARNING: Logging before InitGoogleLogging() is written to STDERR\n"
    }
    result = judge(config, "mlmd-segfault", crashing_mlmd(), logs=logs)
    assert result.status == "fail" and result.fixable
    lines = text(result.evidence)
    assert f"pod {KUBEFLOW}/{MLMD_POD} container container ({MLMD_IMAGE})" in lines
    assert "waiting CrashLoopBackOff" in lines
    assert "last state terminated with exit code 139 (Error)" in lines
    assert f"node {NODE} architecture: amd64" in lines
    assert "| WARNING: Logging before InitGoogleLogging() is written to STDERR" in lines
    assert as_invoked("lab up --mode kind  # applies it") in result.remedy
    assert (
        as_invoked("LAB_MLMD_PIN=1.13.0 lab up --mode kind  # instead: pin it for one run only")
        in result.remedy
    )


def test_mlmd_fix_renders_the_kustomize_image_pin(config: LabConfig) -> None:
    evidence = kind_evidence(config, crashing_mlmd(), logs={(KUBEFLOW, MLMD_POD, "container"): ""})
    report = diagnose(config, ["mlmd-segfault"], evidence=evidence)
    fixed = apply_fixes(report, lambda check, result: True, Progress(quiet=True))

    outcome = fixed.outcome("mlmd-segfault")
    assert outcome.fix is not None and outcome.fix.applied
    assert "LAB_MLMD_PIN=1.13.0 lab up --mode kind" in outcome.fix.message
    # The pin is recorded in the lab home's settings, so the next `lab up` applies it.
    assert load_config(env={"LAB_HOME": str(config.home)}).versions.mlmd_pin == "1.13.0"
    patch = yaml.safe_load(patch_path(config).read_text())
    assert patch["kind"] == "Kustomization"
    assert patch["images"] == [{"name": "gcr.io/tfx-oss-public/ml_metadata_store_server", "newTag": "1.13.0"}]
    # The patch's own comment names the same `lab up` as the fix's message (the diagnosed mode's).
    assert "#   LAB_MLMD_PIN=1.13.0 lab up --mode kind\n" in patch_path(config).read_text()
    # The pod still crashes until `lab up` applies the pin; the re-check says the pin is waiting.
    assert outcome.result.status == "fail"
    assert f"image pin already rendered at {patch_path(config)}" in text(outcome.result.evidence)


def test_mlmd_segfault_on_arm64_is_unsupported_upstream(config: LabConfig) -> None:
    result = judge(
        config, "mlmd-segfault", crashing_mlmd(arch="arm64"), logs={(KUBEFLOW, MLMD_POD, "container"): ""}
    )
    assert result.status == "fail" and not result.fixable
    assert "architecture: arm64" in text(result.evidence)
    assert "published for linux/amd64 only" in result.summary
    assert any("unsupported upstream" in line for line in result.remedy)


def test_mlmd_segfault_with_the_pin_suggests_the_next_older_tag(config: LabConfig) -> None:
    image = "gcr.io/tfx-oss-public/ml_metadata_store_server:1.13.0"
    result = judge(
        config, "mlmd-segfault", crashing_mlmd(image), logs={(KUBEFLOW, MLMD_POD, "container"): ""}
    )
    assert result.status == "fail"
    assert as_invoked("LAB_MLMD_PIN=1.12.0 lab up --mode kind") in result.remedy


# --- pvc-pending --------------------------------------------------------------------------


def test_wait_for_first_consumer_claim_without_a_pod_is_not_a_failure(config: LabConfig) -> None:
    result = judge(config, "pvc-pending", [storage_class(), pvc(KUBEFLOW, "minio-pvc", "standard")])
    assert result.status == "ok"
    assert "WaitForFirstConsumer, no pod uses it yet" in text(result.evidence)


def test_pending_claim_with_a_consumer_shows_events_and_the_provisioner(config: LabConfig) -> None:
    provisioner = pod(
        "local-path-storage",
        "local-path-provisioner-7577fdbbfb-tq2nd",
        [
            status(
                "local-path-provisioner",
                "docker.io/kindest/local-path-provisioner:v20250214-acbabc1a",
                waiting(
                    "CrashLoopBackOff", "back-off 2m40s restarting failed container=local-path-provisioner"
                ),
                last_state=terminated(1),
                restarts=5,
            )
        ],
    )
    mysql = pod(
        KUBEFLOW,
        "mysql-5b7c9d8f4-k8j2n",
        [status("mysql", "mysql:8.4", waiting("ContainerCreating"))],
        phase="Pending",
        claims=["mysql-pv-claim"],
    )
    provisioning = event(
        KUBEFLOW,
        "PersistentVolumeClaim",
        "mysql-pv-claim",
        "ExternalProvisioning",
        'Waiting for a volume to be created either by the external provisioner "rancher.io/local-path" or '
        "manually by the system administrator. If volume creation is delayed, please verify that the "
        "provisioner is running and correctly registered.",
        type="Normal",
        count=42,
        component="persistentvolume-controller",
    )
    result = judge(
        config,
        "pvc-pending",
        [storage_class(), pvc(KUBEFLOW, "mysql-pv-claim", "standard"), mysql, provisioner, provisioning],
    )

    assert result.status == "fail"
    lines = text(result.evidence)
    assert (
        f"pvc {KUBEFLOW}/mysql-pv-claim: Pending, StorageClass standard (WaitForFirstConsumer), "
        f"used by {KUBEFLOW}/mysql-5b7c9d8f4-k8j2n" in lines
    )
    assert 'external provisioner "rancher.io/local-path"' in lines and "(x42)" in lines
    assert "local-path-provisioner-7577fdbbfb-tq2nd container local-path-provisioner" in lines
    assert "kubectl -n local-path-storage rollout restart deployment local-path-provisioner" in result.remedy


# --- kfp-not-ready ------------------------------------------------------------------------


def test_kfp_not_ready_names_the_component_and_why(config: LabConfig) -> None:
    api = status(
        "ml-pipeline-api-server",
        "ghcr.io/kubeflow/kfp-api-server:2.16.0",
        running(),
        last_state=terminated(1),
        restarts=4,
    )
    objects = [
        *healthy_kfp(skip=("ml-pipeline",)),
        deployment(KUBEFLOW, "ml-pipeline", {"app": "ml-pipeline"}, ready=0),
        pod(KUBEFLOW, "ml-pipeline-6b8f9d7c5-w4z8p", [api], labels={"app": "ml-pipeline"}),
    ]
    result = judge(config, "kfp-not-ready", objects)

    assert result.status == "fail"
    assert "ml-pipeline" in result.summary and "metadata-grpc-deployment" not in result.summary
    lines = text(result.evidence)
    assert f"deployment {KUBEFLOW}/ml-pipeline: 0/1 ready" in lines
    assert (
        "container ml-pipeline-api-server (ghcr.io/kubeflow/kfp-api-server:2.16.0): running, not ready"
        in lines
    )
    assert "last state terminated with exit code 1 (Error); restarts 4" in lines
    assert f"GET http://127.0.0.1:{config.ports.kfp_ui}/apis/v2beta1/healthz failed" in lines
    # The remedy pastes and returns (no `-w` that never ends).
    assert f"kubectl -n {KUBEFLOW} get pods" in result.remedy


def test_kfp_ready_when_every_core_component_is_ready(config: LabConfig) -> None:
    assert judge(config, "kfp-not-ready", healthy_kfp()).status == "ok"


# --- cert-manager-not-ready ---------------------------------------------------------------

CERT_MANAGER_NS = "cert-manager"


def healthy_cert_manager(skip: tuple[str, ...] = ()) -> list[object]:
    """cert-manager's three Deployments with a Ready pod each (minus ``skip``)."""
    objects: list[object] = []
    for name in ("cert-manager", "cert-manager-cainjector", "cert-manager-webhook"):
        if name in skip:
            continue
        labels = {"app.kubernetes.io/name": name.removeprefix("cert-manager-") or "cert-manager"}
        labels["app.kubernetes.io/component"] = name
        image = f"quay.io/jetstack/{name}:v1.16.1"
        objects.append(deployment(CERT_MANAGER_NS, name, labels))
        objects.append(ready_pod(CERT_MANAGER_NS, f"{name}-5c6b8f7d9-k4m2n", name, image, labels))
    return objects


def test_cert_manager_not_ready_names_the_webhook_and_why(config: LabConfig) -> None:
    labels = {"app.kubernetes.io/name": "webhook", "app.kubernetes.io/component": "cert-manager-webhook"}
    image = "quay.io/jetstack/cert-manager-webhook:v1.16.1"
    webhook = status("cert-manager-webhook", image, running(), last_state=terminated(1), restarts=3)
    objects = [
        *healthy_cert_manager(skip=("cert-manager-webhook",)),
        deployment(CERT_MANAGER_NS, "cert-manager-webhook", labels, ready=0),
        pod(CERT_MANAGER_NS, "cert-manager-webhook-7d9f6c5b8-p2q4r", [webhook], labels=labels),
    ]
    result = judge(config, "cert-manager-not-ready", objects)

    assert result.status == "fail"
    assert "cert-manager-webhook" in result.summary and "cainjector" not in result.summary
    lines = text(result.evidence)
    assert f"deployment {CERT_MANAGER_NS}/cert-manager-webhook: 0/1 ready" in lines
    assert "last state terminated with exit code 1 (Error); restarts 3" in lines
    assert f"kubectl -n {CERT_MANAGER_NS} describe deployment cert-manager-webhook" in result.remedy
    assert any(line.startswith(as_invoked("lab up --mode kind")) for line in result.remedy)


def test_cert_manager_not_installed_and_cert_manager_ready(config: LabConfig) -> None:
    missing = judge(config, "cert-manager-not-ready", [node()])
    assert missing.status == "fail" and "not installed" in missing.summary
    assert judge(config, "cert-manager-not-ready", healthy_cert_manager()).status == "ok"


# --- mr-config-error ----------------------------------------------------------------------

# Keys of KFP 2.16.0's pipeline-install-config (base/installs/generic): no embedmdDb.
PIPELINE_INSTALL_CONFIG = {
    "appName": "pipeline",
    "appVersion": "2.16.0",
    "dbHost": "mysql",
    "dbPort": "3306",
    "mlmdDb": "metadb",
    "cacheDb": "cachedb",
    "pipelineDb": "mlpipeline",
    "bucketName": "mlpipeline",
}


def test_mr_config_error_shows_the_missing_key_and_the_overlay(config: LabConfig) -> None:
    labels = {"component": "model-registry-server"}
    message = "couldn't find key embedmdDb in ConfigMap kubeflow/pipeline-install-config"
    objects = [
        deployment(KUBEFLOW, "model-registry-deployment", labels, ready=0),
        pod(
            KUBEFLOW,
            "model-registry-deployment-7d5b8c9f6-zl4qm",
            [
                status(
                    "rest-container",
                    "ghcr.io/kubeflow/model-registry/server:v0.3.8",
                    waiting("CreateContainerConfigError", message),
                )
            ],
            phase="Pending",
            labels=labels,
        ),
        config_map(KUBEFLOW, "pipeline-install-config", PIPELINE_INSTALL_CONFIG),
        secret(KUBEFLOW, "mysql-secret", {"username": "root", "password": "mysql-root-pw"}),
    ]
    result = judge(config, "mr-config-error", objects)

    assert result.status == "fail" and result.fixable
    lines = text(result.evidence)
    assert f"waiting CreateContainerConfigError: {message}" in lines
    assert "pipeline-install-config keys: appName, appVersion, bucketName, cacheDb, dbHost, dbPort" in lines
    assert "secret kubeflow/mysql-secret (type Opaque) keys: password, username" in lines
    assert "mysql-root-pw" not in lines + text(result.remedy)
    # The overlay `lab up` would apply: from the manifest mirror the lab finds, else the pinned ref.
    mirror = manifest_mirror(config)
    overlay = (
        f"{mirror}/model-registry-v0.3.8/manifests/kustomize/overlays/db"
        if mirror
        else "model-registry/manifests/kustomize/overlays/db?ref=v0.3.8"
    )
    assert any(overlay in line for line in result.remedy)


def test_mr_config_error_when_model_registry_is_not_deployed(config: LabConfig) -> None:
    result = judge(config, "mr-config-error", healthy_kfp())
    assert result.status == "fail"
    assert "deployment kubeflow/model-registry-deployment does not exist" in result.evidence


# --- registry-unauthorized (kind) ---------------------------------------------------------


def test_registry_unauthorized_when_the_docker_config_secret_is_missing(config: LabConfig) -> None:
    push_pod = "iris-pipeline-x7k2m-system-container-impl-2718281828"
    mount = 'MountVolume.SetUp failed for volume "docker-config" : secret "docker-config" not found'
    result = judge(
        config, "registry-unauthorized", [event(KUBEFLOW, "Pod", push_pod, "FailedMount", mount, count=6)]
    )
    assert result.status == "fail"
    assert "secret kubeflow/docker-config is missing" in result.summary
    assert mount in text(result.evidence)
    assert as_invoked("lab up --mode kind") in result.remedy


def test_registry_unauthorized_shows_auth_hosts_but_never_credentials() -> None:
    from doctor_labs import destroy, new_config

    config = new_config(LAB_REGISTRY_USER="lab", LAB_REGISTRY_PASSWORD="hunter2-registry")
    try:
        token = basic("someone", "ghcr-token-123")
        docker = secret(
            KUBEFLOW, "docker-config", {"config.json": docker_config({"ghcr.io": {"auth": token}})}
        )
        result = judge(config, "registry-unauthorized", [docker])
        assert result.status == "fail"
        assert "has no credentials for the lab's registry (localhost:" in result.summary
        lines = text(result.evidence)
        assert "auths entries for: ghcr.io (with credentials: ghcr.io)" in lines
        everything = repr(result)
        assert (
            token not in everything
            and "ghcr-token-123" not in everything
            and "hunter2-registry" not in everything
        )

        wired = secret(
            KUBEFLOW,
            "docker-config",
            {
                "config.json": docker_config(
                    {"kind-registry:5000": {"auth": basic("lab", "hunter2-registry")}}
                )
            },
        )
        assert judge(config, "registry-unauthorized", [wired]).status == "ok"
    finally:
        destroy(config)


# --- cosign-keys-missing ------------------------------------------------------------------


def test_cosign_keys_missing_is_a_warning_with_the_commands(config: LabConfig) -> None:
    result = judge(config, "cosign-keys-missing", [])
    assert result.status == "warn"
    assert (
        "secret kubeflow/cosign-keys does not exist, so nothing is mounted at /etc/cosign/cosign.key"
        in result.evidence
    )
    assert any("cosign generate-key-pair" in line for line in result.remedy)

    keys = secret(
        KUBEFLOW,
        "cosign-keys",
        {"cosign.key": "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----", "cosign.pub": "pub"},
    )
    present = judge(config, "cosign-keys-missing", [keys])
    assert present.status == "ok" and "PRIVATE KEY" not in repr(present)


# --- kserve-not-ready ---------------------------------------------------------------------

KSERVE = ("serving.kserve.io", "v1beta1", "inferenceservices")
CSC = ("serving.kserve.io", "v1alpha1", "clusterstoragecontainers")


def storage_container(
    name: str = "storage-initializer", flags: str | None = "--plain-http"
) -> dict[str, object]:
    """The pinned ClusterStorageContainer as the API returns it, its container name and flags as given."""
    live = pinned_storage_container(load_config(env={}))
    container = live["spec"]["container"]
    container["name"] = name
    env = [e for e in container["env"] if e["name"] != "KIT_UNPACK_FLAGS"]
    container["env"] = ([{"name": "KIT_UNPACK_FLAGS", "value": flags}] if flags is not None else []) + env
    return live


def isvc(ready: bool) -> dict[str, object]:
    conditions = [
        {"type": "IngressReady", "status": "True", "lastTransitionTime": "2025-06-01T12:00:00Z"},
        {
            "type": "PredictorReady",
            "status": "True" if ready else "False",
            "reason": None if ready else "MinimumReplicasUnavailable",
            "message": None if ready else "Deployment does not have minimum availability.",
        },
        {"type": "Ready", "status": "True" if ready else "False"},
    ]
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": KUBEFLOW},
        "spec": {
            "predictor": {
                "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "kit://kind-registry:5000/iris:1"}
            }
        },
        "status": {"conditions": [{k: v for k, v in c.items() if v is not None} for c in conditions]},
    }


def kserve_controller() -> list[object]:
    labels = {"control-plane": "kserve-controller-manager"}
    return [
        deployment("kserve", "kserve-controller-manager", labels),
        ready_pod(
            "kserve",
            "kserve-controller-manager-5f7b9c6d8-m2n4p",
            "manager",
            "kserve/kserve-controller:v0.20.0",
            labels,
        ),
    ]


def test_kserve_not_ready_shows_the_storage_initializer_log_and_plain_http_remedy(config: LabConfig) -> None:
    init = status(
        "storage-initializer",
        "ghcr.io/kitops-ml/kitops-kserve:v1.7.0",
        waiting("CrashLoopBackOff", "back-off 40s restarting failed container=storage-initializer"),
        last_state=terminated(1),
        restarts=3,
    )
    predictor = pod(
        KUBEFLOW,
        "iris-predictor-5d9f7c8b6-h2k4l",
        [status("kserve-container", "kserve/sklearnserver:v0.20.0", waiting("PodInitializing"))],
        init=[init],
        phase="Pending",
        labels={"serving.kserve.io/inferenceservice": "iris"},
    )
    log = (
        "Unpacking kit://kind-registry:5000/iris:1\n"
        'Error: failed to resolve reference "kind-registry:5000/iris:1": failed to do request: Head '
        '"https://kind-registry:5000/v2/iris/manifests/1": http: server gave HTTP response to HTTPS client\n'
    )
    result = judge(
        config,
        "kserve-not-ready",
        [*kserve_controller(), predictor],
        custom={KSERVE: [isvc(ready=False)], CSC: [storage_container(flags="")]},
        logs={(KUBEFLOW, "iris-predictor-5d9f7c8b6-h2k4l", "storage-initializer"): log},
    )

    assert result.status == "fail"
    lines = text(result.evidence)
    assert "InferenceService kubeflow/iris (kit://kind-registry:5000/iris:1): Ready=False" in lines
    assert (
        "condition PredictorReady: MinimumReplicasUnavailable Deployment does not have minimum availability."
        in lines
    )
    assert (
        "init container storage-initializer (ghcr.io/kitops-ml/kitops-kserve:v1.7.0): "
        "waiting CrashLoopBackOff" in lines
    )
    assert (
        "| Error: failed to resolve reference" in lines
        and "server gave HTTP response to HTTPS client" in lines
    )
    assert any("KIT_UNPACK_FLAGS" in line and "--plain-http" in line for line in result.remedy)


def test_kserve_not_ready_when_the_storage_container_is_misnamed(config: LabConfig) -> None:
    result = judge(
        config,
        "kserve-not-ready",
        kserve_controller(),
        custom={KSERVE: [], CSC: [storage_container(name="kit")]},
    )
    assert result.status == "fail"
    assert (
        "ClusterStorageContainer kitops: spec.container.name is 'kit'; "
        "KServe only recognises 'storage-initializer'" in result.evidence
    )


def test_kserve_not_installed_and_kserve_healthy(config: LabConfig) -> None:
    missing = judge(config, "kserve-not-ready", kserve_controller())
    assert missing.status == "fail" and "KServe is not installed" in missing.summary
    healthy = judge(
        config,
        "kserve-not-ready",
        kserve_controller(),
        custom={KSERVE: [isvc(ready=True)], CSC: [storage_container()]},
    )
    assert healthy.status == "ok", healthy


# --- the cluster itself -------------------------------------------------------------------


def test_unreachable_cluster_fails_once_and_skips_the_rest(config: LabConfig, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before use: connection refused
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "kind-kubeflow-lab",
                        "cluster": {"server": f"https://127.0.0.1:{port}", "insecure-skip-tls-verify": True},
                    }
                ],
                "users": [{"name": "kind-kubeflow-lab", "user": {"token": "t"}}],
                "contexts": [
                    {
                        "name": "kind-kubeflow-lab",
                        "context": {"cluster": "kind-kubeflow-lab", "user": "kind-kubeflow-lab"},
                    }
                ],
                "current-context": "kind-kubeflow-lab",
            }
        )
    )
    evidence = Evidence(config, mode="kind", cluster=LiveCluster("kind-kubeflow-lab", kubeconfig=kubeconfig))
    report = diagnose(config, ["kind-cluster", "kfp-not-ready", "mlmd-segfault"], evidence=evidence)

    cluster = report.outcome("kind-cluster").result
    assert cluster.status == "fail"
    assert "the kind cluster kubeflow-lab cannot be reached" in cluster.summary
    assert f"API server https://127.0.0.1:{port}" in text(cluster.evidence)
    assert "Connection refused" in text(cluster.evidence)
    for check_id in ("kfp-not-ready", "mlmd-segfault"):
        skipped = report.outcome(check_id).result
        assert skipped.status == "skipped" and "see kind-cluster" in skipped.summary


def test_not_ready_node_fails_kind_cluster(config: LabConfig) -> None:
    result = judge(config, "kind-cluster", [node(ready=False)])
    assert result.status == "fail"
    assert f"node {NODE}: KubeletNotReady: container runtime network not ready" in text(result.evidence)


def test_a_healthy_recorded_kind_lab_has_no_cluster_finding(config: LabConfig) -> None:
    port = config.ports.registry
    mr_labels = {"component": "model-registry-server"}
    db_labels = {"name": "db"}
    ui_labels = {"app": "model-registry-ui"}
    objects = [
        node(),
        *healthy_kfp(),
        *healthy_cert_manager(),
        *kserve_controller(),
        deployment(KUBEFLOW, "model-registry-deployment", mr_labels),
        ready_pod(
            KUBEFLOW,
            "model-registry-deployment-7d5b8c9f6-zl4qm",
            "rest-container",
            "ghcr.io/kubeflow/model-registry/server:v0.3.8",
            mr_labels,
        ),
        deployment(KUBEFLOW, "model-registry-db", db_labels),
        ready_pod(KUBEFLOW, "model-registry-db-6c8d7b9f5-p3q5r", "db-container", "mysql:8.3", db_labels),
        deployment(KUBEFLOW, "model-registry-ui", ui_labels),
        ready_pod(
            KUBEFLOW,
            "model-registry-ui-5f7c8d9b6-k2m4n",
            "model-registry-ui",
            "ghcr.io/kubeflow/model-registry/ui:v0.3.8",
            ui_labels,
        ),
        config_map(
            "kube-public", "local-registry-hosting", {"localRegistryHosting.v1": f'host: "localhost:{port}"'}
        ),
        secret(KUBEFLOW, "docker-config", {"config.json": docker_config({"kind-registry:5000": {}})}),
        secret(KUBEFLOW, "cosign-keys", {"cosign.key": "k", "cosign.pub": "p"}),
        storage_class(),
        pvc(KUBEFLOW, "mysql-pv-claim", "standard", phase="Bound"),
    ]
    cluster_checks = [
        "kind-cluster",
        "namespace-terminating",
        "crash-loop",
        "kind-dns-imagepull",
        "image-not-found",
        "cert-manager-not-ready",
        "local-registry-unwired",
        "mlmd-segfault",
        "pvc-pending",
        "kfp-not-ready",
        "mr-config-error",
        "registry-unauthorized",
        "cosign-keys-missing",
        "kserve-not-ready",
        "database-health",
        "model-registry-health",
    ]
    evidence = kind_evidence(
        config,
        objects,
        custom={KSERVE: [isvc(ready=True)], CSC: [storage_container()]},
        node_files={
            (
                NODE,
                f"/etc/containerd/certs.d/localhost:{port}/hosts.toml",
            ): '[host."http://kind-registry:5000"]'
        },
        networks={"kind-registry": ["kind"]},
    )
    report = diagnose(config, cluster_checks, evidence=evidence)
    assert {o.check.id: o.result.status for o in report.outcomes} == dict.fromkeys(cluster_checks, "ok")
