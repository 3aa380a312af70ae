"""A user's `lab up --mode kind`, checked against the real cluster it produced."""

from __future__ import annotations

import base64
import io
import json
from typing import TYPE_CHECKING

import pytest
import requests
from kubernetes import client

from lab.deadline import Deadline, wait_until
from lab.engine import probe_engines
from lab.progress import Progress
from lab.provision import up_kind
from lab.provision.registry import CERTS_DIR, mirror_hosts

if TYPE_CHECKING:
    from conftest import ProvisionedLab

pytestmark = pytest.mark.cluster


def test_kfp_api_reports_healthy(provisioned_lab: ProvisionedLab) -> None:
    namespace = provisioned_lab.config.names.kubeflow_namespace
    body = provisioned_lab.kube.service_get(namespace, "ml-pipeline", 8888, "/apis/v2beta1/healthz")
    assert "commit_sha" in json.loads(body)


def test_every_kfp_pod_is_ready(provisioned_lab: ProvisionedLab) -> None:
    namespace = provisioned_lab.config.names.kubeflow_namespace
    assert provisioned_lab.kube.pod_problems(namespace, "application-crd-id=kubeflow-pipelines") == []
    listed = provisioned_lab.kind_cluster.kubectl("get", "deployments", "-n", namespace, "-o", "name")
    assert "deployment.apps/ml-pipeline" in listed.split()


def test_model_registry_serves_from_its_own_database(provisioned_lab: ProvisionedLab) -> None:
    namespace = provisioned_lab.config.names.kubeflow_namespace
    apps = client.AppsV1Api(provisioned_lab.kube.api)
    assert apps.read_namespaced_deployment("model-registry-db", namespace).status.ready_replicas == 1
    body = provisioned_lab.kube.service_get(
        namespace, "model-registry-service", 8080, "/api/model_registry/v1alpha3/registered_models"
    )
    assert "items" in json.loads(body)


def test_kit_storage_container_is_installed(provisioned_lab: ProvisionedLab) -> None:
    config = provisioned_lab.config
    storage = client.CustomObjectsApi(provisioned_lab.kube.api).get_cluster_custom_object(
        "serving.kserve.io", "v1alpha1", "clusterstoragecontainers", config.names.storage_container
    )
    assert storage["spec"]["container"]["name"] == "storage-initializer"
    env = {e["name"]: e.get("value") for e in storage["spec"]["container"]["env"]}
    assert env["KIT_UNPACK_FLAGS"] == "--plain-http"
    assert storage["spec"]["supportedUriFormats"] == [{"prefix": "kit://"}]


def test_local_registry_is_wired_into_the_cluster(provisioned_lab: ProvisionedLab) -> None:
    config = provisioned_lab.config
    hosting = client.CoreV1Api(provisioned_lab.kube.api).read_namespaced_config_map(
        "local-registry-hosting", "kube-public"
    )
    assert f"localhost:{config.ports.registry}" in hosting.data["localRegistryHosting.v1"]
    engine = probe_engines()[0]
    assert engine is not None
    node = f"{config.names.cluster}-control-plane"
    for host in mirror_hosts(config):
        text = engine.run("exec", node, "cat", f"{CERTS_DIR}/{host}/hosts.toml")
        assert f'[host."http://{config.names.registry_container}:5000"]' in text
    assert requests.get(f"http://{config.registry_host}/v2/", timeout=10).status_code == 200


def test_a_pod_pulls_an_image_pushed_to_the_lab_registry(provisioned_lab: ProvisionedLab) -> None:
    config = provisioned_lab.config
    engine = probe_engines()[0]
    assert engine is not None
    # The registry's own image is already on this machine: push it under the lab registry's name.
    pushed = f"{config.registry_host}/lab-e2e/registry:{config.versions.registry_image.split(':')[-1]}"
    engine.run("tag", config.versions.registry_image, pushed)
    engine.run("push", pushed, timeout=300)
    in_cluster = pushed.replace(config.registry_host, f"localhost:{config.ports.registry}")
    core = client.CoreV1Api(provisioned_lab.kube.api)
    namespace, name = config.names.pipeline_namespace, "lab-e2e-registry-pull"
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace, labels={"lab-e2e": "registry-pull"}),
        spec=client.V1PodSpec(
            restart_policy="Never",
            containers=[client.V1Container(name="pulled", image=in_cluster, image_pull_policy="Always")],
        ),
    )
    core.create_namespaced_pod(namespace, pod)

    def not_pulled() -> list[str]:
        statuses = core.read_namespaced_pod(name, namespace).status.container_statuses or []
        if any(status.image_id for status in statuses):
            return []
        return provisioned_lab.kube.pod_problems(namespace, "lab-e2e=registry-pull") or ["pending"]

    try:
        wait_until(not_pulled, Deadline(180), f"no pod could pull {in_cluster}")
    finally:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)


def test_pipeline_secrets_exist(provisioned_lab: ProvisionedLab) -> None:
    names = provisioned_lab.config.names
    core = client.CoreV1Api(provisioned_lab.kube.api)
    docker = core.read_namespaced_secret(names.docker_config_secret, names.pipeline_namespace)
    auths = json.loads(base64.b64decode(docker.data["config.json"]))["auths"]
    assert f"{names.registry_container}:5000" in auths
    token = core.read_namespaced_secret(names.model_registry_auth_secret, names.pipeline_namespace)
    assert base64.b64decode(token.data["token"])


def test_a_second_up_changes_nothing(provisioned_lab: ProvisionedLab) -> None:
    stream = io.StringIO()
    assert up_kind(provisioned_lab.config, Progress(stream=stream), dry_run=False) == 0
    lines = stream.getvalue().splitlines()
    unchanged = [lines[i - 1] for i, line in enumerate(lines) if "nothing changed" in line]
    steps = [
        "kind cluster",
        "local registry",
        "cert-manager",
        "Kubeflow Pipelines",
        "Model Registry",
        "KServe",
    ]
    for step in [*steps, "pipeline secrets"]:
        assert any(step in line for line in unchanged), (
            f"{step} changed on a second run:\n{stream.getvalue()}"
        )
