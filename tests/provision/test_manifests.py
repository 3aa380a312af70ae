"""Every manifest the kind lab applies, rendered from the pinned upstream mirror and validated.

Core kinds are validated strictly against the Kubernetes API schema of the node's version;
custom resources against the openAPIV3Schema of the upstream CRDs in the mirror, with
unknown fields rejected the way the API server's strict field validation does.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import io
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, all_versions

from lab.config import LabConfig, load_config
from lab.kube_objects import object_key
from lab.pipeline.scripts import STORAGE_INITIALIZER, unpacker_command
from lab.progress import Progress
from lab.provision.actions import Context, print_plan
from lab.provision.create import kind_actions
from lab.provision.render import (
    build_overlay,
    kustomize_build,
    overlay_specs,
    prepare_overlays,
    render_all,
)
from lab.provision.sources import rewrite_remote_references, upstreams
from lab.provision.workspace import Workspace
from lab.templates import render_template
from tests.conftest import NO_MIRROR, UPSTREAM_MIRROR

MIRROR = UPSTREAM_MIRROR or Path("/nonexistent")

pytestmark = pytest.mark.skipif(UPSTREAM_MIRROR is None, reason=NO_MIRROR)

# The only kinds without a Kubernetes API schema the lab may apply; each is checked against its CRD.
CUSTOM_KINDS = {
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "Certificate"),
    ("serving.kserve.io/v1alpha1", "ClusterServingRuntime"),
    ("serving.kserve.io/v1alpha1", "ClusterStorageContainer"),
}


def lab_config(home: Path, **versions: str) -> LabConfig:
    config = load_config(env={"LAB_HOME": str(home), "LAB_MANIFESTS_DIR": str(MIRROR)})
    return dataclasses.replace(config, versions=dataclasses.replace(config.versions, **versions))


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> LabConfig:
    return lab_config(tmp_path_factory.mktemp("lab-home"))


@pytest.fixture(scope="module")
def rendered(config: LabConfig) -> dict[str, list[dict[str, Any]]]:
    return render_all(config)


def everything(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [obj for objects in rendered.values() for obj in objects]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def container(deployment: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return containers[0] if name is None else next(c for c in containers if c["name"] == name)


def schema_version(kubernetes: str) -> str:
    """The newest schema kubernetes-validate ships that is not newer than the node."""
    wanted = tuple(int(part) for part in kubernetes.split(".")[:2])
    shipped = sorted({tuple(int(p) for p in v.split(".")[:2]) for v in all_versions()})
    candidates = [v for v in shipped if v <= wanted] or shipped[:1]
    return ".".join(map(str, candidates[-1]))


# --- sources: the mirror is staged with KFP's remote Argo references made local -------------


def test_platform_agnostic_renders_72_objects_offline(config: LabConfig, rendered: dict[str, Any]) -> None:
    staged = Workspace.for_config(config).upstream
    env = staged / "kubeflow-pipelines-2.16.0" / "manifests" / "kustomize" / "env" / "platform-agnostic"
    assert len(kustomize_build(config, env)) == 72


def test_staged_kustomizations_have_no_remote_argo_references(
    config: LabConfig, rendered: dict[str, Any]
) -> None:
    staged = Workspace.for_config(config).upstream
    remote = re.compile(r"^\s*-\s*https://github\.com/argoproj/", re.MULTILINE)
    offenders = [str(p) for p in staged.rglob("kustomization.yaml") if remote.search(p.read_text())]
    assert offenders == []


def test_rewrite_maps_pinned_refs_and_reports_unknown_ones(tmp_path: Path, config: LabConfig) -> None:
    argo = upstreams(config)["argo"]
    (tmp_path / argo.folder / "manifests" / "base").mkdir(parents=True)
    user = tmp_path / "app"
    user.mkdir()
    (user / "kustomization.yaml").write_text(
        "resources:\n"
        f"- https://github.com/argoproj/argo-workflows/manifests/base?ref={argo.ref}\n"
        "- https://github.com/example/unmirrored/config?ref=v1.0.0\n"
    )
    unmapped = rewrite_remote_references(tmp_path, config)
    lines = (user / "kustomization.yaml").read_text().splitlines()
    assert lines[1] == f"- ../{argo.folder}/manifests/base"
    assert (user / lines[1][2:]).resolve().is_dir()
    assert lines[2] == "- https://github.com/example/unmirrored/config?ref=v1.0.0"
    assert len(unmapped) == 1 and "example/unmirrored" in unmapped[0]


def test_without_a_mirror_sources_are_pinned_remote_refs(
    tmp_path: Path, without_manifest_mirror: None
) -> None:
    config = load_config(env={"LAB_HOME": str(tmp_path)})
    sources = {}
    for spec in overlay_specs(config, Workspace.for_config(config)):
        sources.update(spec.values["sources"])
    assert sources["kfp_env"] == (
        f"https://github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref={config.versions.kfp}"
    )
    assert sources["model_registry_db"].endswith(
        f"/manifests/kustomize/overlays/db?ref={config.versions.model_registry}"
    )
    assert sources["cert_manager"] == (
        f"https://github.com/kubeflow/manifests/common/cert-manager/base?ref={config.versions.kubeflow_manifests}"
    )
    assert all("?ref=" in ref for ref in sources.values())


# --- validation -------------------------------------------------------------------------------


def test_core_kinds_validate_strictly_for_the_node_version(
    config: LabConfig, rendered: dict[str, Any]
) -> None:
    version = schema_version(config.versions.kubernetes)
    unvalidated = set()
    failures = []
    for obj in everything(rendered):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except SchemaNotFoundError:
            unvalidated.add((obj["apiVersion"], obj["kind"]))
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{object_key(obj)}: {exc.message[:300]}")
    assert failures == []
    assert unvalidated == CUSTOM_KINDS


@functools.cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    files = [
        *sorted((MIRROR / "kserve-v0.20.0" / "config" / "crd" / "full").glob("*.yaml")),
        *sorted(
            (MIRROR / "kserve-v0.20.0" / "config" / "crd" / "full" / "clusterstoragecontainer").glob("*.yaml")
        ),
        MIRROR
        / "kubeflow-manifests-26.03"
        / "common"
        / "cert-manager"
        / "base"
        / "upstream"
        / "cert-manager.yaml",
    ]
    schemas = {}
    for path in files:
        for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def _strict(schema: Any) -> Any:
    """Reject unknown fields, as the API server's strict field validation does."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in result
        and "additionalProperties" not in result
        and not result.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


def validate_custom(obj: dict[str, Any], schemas: dict[tuple[str, str], dict[str, Any]]) -> None:
    schema = _strict(copy.deepcopy(schemas[(obj["apiVersion"], obj["kind"])]))
    # Metadata is validated by the API server's ObjectMeta, not the CRD schema.
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    jsonschema.Draft7Validator(schema).validate(obj)


def inference_service(config: LabConfig) -> dict[str, Any]:
    """An InferenceService as a user serves a ModelKit from the lab registry."""
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": config.names.pipeline_namespace},
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    "storageUri": f"kit://{config.names.registry_container}:5000/lab/iris:v1",
                }
            }
        },
    }


def test_custom_resources_match_their_upstream_crds(config: LabConfig, rendered: dict[str, Any]) -> None:
    schemas = _crd_schemas()
    custom = [o for o in everything(rendered) if (o["apiVersion"], o["kind"]) in CUSTOM_KINDS]
    assert {o["kind"] for o in custom} == {kind for _, kind in CUSTOM_KINDS}
    for obj in [*custom, inference_service(config)]:
        validate_custom(obj, schemas)


def test_strict_crd_validation_rejects_a_misspelled_field(
    config: LabConfig, rendered: dict[str, Any]
) -> None:
    storage = copy.deepcopy(
        find(rendered["kserve"], "ClusterStorageContainer", config.names.storage_container)
    )
    storage["spec"]["supportedUriFormat"] = storage["spec"].pop("supportedUriFormats")
    with pytest.raises(jsonschema.ValidationError):
        validate_custom(storage, _crd_schemas())


# --- the lab's overlays and patches took ------------------------------------------------------


def test_kitops_storage_container(config: LabConfig, rendered: dict[str, Any]) -> None:
    storage = find(rendered["kserve"], "ClusterStorageContainer", config.names.storage_container)
    spec = storage["spec"]
    assert spec["container"]["name"] == "storage-initializer"
    # The lab's unpacker on the pinned Python image: serving refuses what the pipeline refuses.
    assert spec["container"]["image"] == config.versions.python_image
    assert spec["container"]["command"] == [*unpacker_command(), STORAGE_INITIALIZER]
    assert "args" not in spec["container"]  # KServe passes kit://REF /mnt/models as the args
    assert spec["supportedUriFormats"] == [{"prefix": "kit://"}]
    env = {e["name"]: e for e in spec["container"]["env"]}
    assert env["KIT_UNPACK_FLAGS"]["value"] == "--plain-http"
    for key in ("KIT_USER", "KIT_PASSWORD"):
        ref = env[key]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": config.names.kit_credentials_secret, "key": key, "optional": True}


def test_kserve_runs_standard_mode_with_release_images(config: LabConfig, rendered: dict[str, Any]) -> None:
    settings = find(rendered["kserve"], "ConfigMap", "inferenceservice-config")
    assert json.loads(settings["data"]["deploy"])["defaultDeploymentMode"] == "Standard"
    text = json.dumps(rendered["kserve"])
    assert not re.search(r"kserve/[a-z0-9-]+:latest", text)
    controller = container(find(rendered["kserve"], "Deployment", "kserve-controller-manager"), "manager")
    assert controller["image"] == f"kserve/kserve-controller:{config.versions.kserve}"
    kinds = {o["kind"] for o in rendered["kserve"]}
    # Standard mode: nothing of Knative or Istio is installed or required.
    assert not any("knative" in o["apiVersion"] or "istio" in o["apiVersion"] for o in rendered["kserve"])
    assert "ClusterServingRuntime" in kinds


def test_model_registry_comes_from_the_db_overlay(config: LabConfig, rendered: dict[str, Any]) -> None:
    objects = rendered["model-registry"]
    find(objects, "Deployment", "model-registry-db")
    server = container(find(objects, "Deployment", "model-registry-deployment"))
    # base reads these from KFP's pipeline-install-config (failure mode mr-config-error).
    refs = [e["valueFrom"]["configMapKeyRef"]["name"] for e in server.get("env", []) if "valueFrom" in e]
    assert "pipeline-install-config" not in refs
    assert {"configMapRef": {"name": "model-registry-db-parameters"}} in server["envFrom"]
    assert server["image"] == f"ghcr.io/kubeflow/model-registry/server:{config.versions.model_registry}"
    find(objects, "Deployment", "model-registry-ui")
    namespaced = [o for o in objects if o["kind"] not in ("ClusterRole", "ClusterRoleBinding")]
    assert {o["metadata"]["namespace"] for o in namespaced} == {config.names.kubeflow_namespace}


def test_kfp_keeps_upstream_metadata_server_by_default(config: LabConfig, rendered: dict[str, Any]) -> None:
    assert len(rendered["kfp"]) == 72
    grpc = container(find(rendered["kfp"], "Deployment", "metadata-grpc-deployment"))
    assert grpc["image"] == f"{config.versions.mlmd_image}:{config.versions.mlmd_tag}"
    api = container(find(rendered["kfp"], "Deployment", "ml-pipeline"))
    assert api["image"].endswith(f":{config.versions.kfp}")


def test_metadata_server_pin_is_the_exit_139_remedy(tmp_path: Path, config: LabConfig) -> None:
    pinned = lab_config(tmp_path, mlmd_pin=config.versions.mlmd_fallback_tag)
    workspace = Workspace.for_config(pinned)
    prepare_overlays(pinned, workspace)
    objects = build_overlay(pinned, workspace, "kfp")
    assert len(objects) == 72
    grpc = container(find(objects, "Deployment", "metadata-grpc-deployment"))
    assert grpc["image"] == f"{pinned.versions.mlmd_image}:{pinned.versions.mlmd_fallback_tag}"


def test_cert_manager_is_the_pinned_release(config: LabConfig, rendered: dict[str, Any]) -> None:
    images = {container(o)["image"] for o in rendered["cert-manager"] if o["kind"] == "Deployment"}
    assert images and all(image.endswith(f":{config.versions.cert_manager}") for image in images)


def test_lab_owned_objects(config: LabConfig, rendered: dict[str, Any]) -> None:
    hosting = find(rendered["registry"], "ConfigMap", "local-registry-hosting")
    assert hosting["metadata"]["namespace"] == "kube-public"
    advertised = yaml.safe_load(hosting["data"]["localRegistryHosting.v1"])
    assert advertised["host"] == f"localhost:{config.ports.registry}"
    docker = find(rendered["secrets"], "Secret", config.names.docker_config_secret)
    assert set(docker["data"]) == {"config.json"}
    token = find(rendered["secrets"], "Secret", config.names.model_registry_auth_secret)
    assert set(token["data"]) == {"token"}


def _runner_rbac(rendered: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        find(rendered["secrets"], "Role", "lab-pipeline-runner-kserve"),
        find(rendered["secrets"], "RoleBinding", "lab-pipeline-runner-kserve"),
    )


def test_pipeline_runner_kserve_rbac_validates_strictly(config: LabConfig, rendered: dict[str, Any]) -> None:
    version = schema_version(config.versions.kubernetes)
    role, binding = _runner_rbac(rendered)
    for obj in (role, binding):
        # Raises SchemaNotFoundError if these ever stopped being core kinds with a schema.
        kubernetes_validate.validate(obj, version, strict=True)
    namespace = config.names.pipeline_namespace
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == namespace
    (rule,) = role["rules"]
    assert rule["apiGroups"] == ["serving.kserve.io"]
    assert rule["resources"] == ["inferenceservices"]
    assert {"create", "get", "list", "watch", "update", "patch", "delete"} <= set(rule["verbs"])
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": namespace}
    ]


def test_pipeline_runner_binding_targets_the_service_account_kfp_installs(
    config: LabConfig, rendered: dict[str, Any]
) -> None:
    # The subject must be the ServiceAccount KFP's own pipeline-runner binding names, or the grant
    # lands on an identity no pipeline pod runs as.
    upstream = find(rendered["kfp"], "RoleBinding", "pipeline-runner-binding")
    (runner,) = upstream["subjects"]
    _, binding = _runner_rbac(rendered)
    (subject,) = binding["subjects"]
    assert (subject["kind"], subject["name"]) == (runner["kind"], runner["name"])
    account = find(rendered["kfp"], "ServiceAccount", subject["name"])
    assert account["metadata"]["namespace"] == subject["namespace"] == config.names.pipeline_namespace


def test_strict_core_validation_rejects_a_misspelled_rbac_field(
    config: LabConfig, rendered: dict[str, Any]
) -> None:
    role, binding = (copy.deepcopy(obj) for obj in _runner_rbac(rendered))
    version = schema_version(config.versions.kubernetes)
    role["rules"][0]["apiGroup"] = role["rules"][0].pop("apiGroups")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(role, version, strict=True)
    binding["subjects"][0]["serviceAccount"] = binding["subjects"][0].pop("name")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(binding, version, strict=True)


# --- host-side templates ----------------------------------------------------------------------


def test_kind_config_template(config: LabConfig) -> None:
    kind = yaml.safe_load(render_template("kind-config.yaml.j2", config=config))
    assert kind["kind"] == "Cluster" and kind["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert kind["name"] == config.names.cluster
    (node,) = kind["nodes"]
    assert node["role"] == "control-plane"
    assert node["image"] == config.versions.kind_node_image and "@sha256:" in node["image"]
    (patch,) = [yaml.safe_load(p) for p in node["kubeadmConfigPatches"]]
    assert patch["kind"] == "ClusterConfiguration"
    assert patch["apiServer"]["extraArgs"] == {
        "service-account-issuer": "https://kubernetes.default.svc",
        "service-account-signing-key-file": "/etc/kubernetes/pki/sa.key",
    }
    (containerd,) = [tomllib.loads(p) for p in kind["containerdConfigPatches"]]
    registry = containerd["plugins"]["io.containerd.grpc.v1.cri"]["registry"]
    assert registry == {"config_path": "/etc/containerd/certs.d"}


def test_hosts_toml_template(config: LabConfig) -> None:
    hosts = tomllib.loads(
        render_template("hosts.toml.j2", config=config, registry=f"localhost:{config.ports.registry}")
    )
    upstream = f"http://{config.names.registry_container}:5000"
    assert hosts == {"host": {upstream: {"capabilities": ["pull", "resolve"]}}}


# --- the dry run ------------------------------------------------------------------------------


def test_dry_run_from_the_mirror_counts_what_each_step_applies(tmp_path: Path) -> None:
    config = lab_config(tmp_path / "home")
    out = io.StringIO()
    ctx = Context(config, Progress(quiet=True), out=out)
    assert print_plan(kind_actions(), ctx, "plan") == 0
    text = out.getvalue()
    kfp = text.split("Kubeflow Pipelines", 1)[1].split("\n6. ", 1)[0]
    # 15 cluster-scoped objects plus the 72 of env/platform-agnostic.
    assert "server-side apply 87 objects" in kfp
    assert "write " in kfp and "overlays/kfp/kustomization.yaml" in kfp
    kserve = text.split("7. KServe", 1)[1]
    assert "ClusterStorageContainer" in kserve
    assert not (tmp_path / "home").exists(), "a dry run must not write under LAB_HOME"
