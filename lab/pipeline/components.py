"""KFP components of the chain: the Python steps, and the cluster's KitOps container steps.

train, register and predict are lightweight Python components used by both the local and
the cluster pipeline; their logic is :mod:`lab.pipeline.steps` (registration:
:mod:`lab.pipeline.registration`), shipped as source. push and
unpack are container components: push on the kitops-kubeflow image (kit, cosign) running the
text of ``scripts/push-modelkit.sh``, unpack on the pinned Python image running the text of
``scripts/unpack_modelkit.py``, both read when the components are built (the local pipeline
runs the same files, see :mod:`lab.pipeline.local_components`).
serve (cluster) creates an InferenceService.

There is deliberately no ``from __future__ import annotations`` here: KFP builds component
interfaces from the annotation objects (``dsl.Output[dsl.Artifact]``); strings break it.
"""

from dataclasses import dataclass
from typing import Any

from kfp import dsl

from lab.config import LabConfig
from lab.pipeline.modelkit_ref import kit_uri, reference_of_kit_uri, split_modelkit_reference
from lab.pipeline.registration import check_model_registry, decide_version, register_modelkit
from lab.pipeline.scripts import PUSH_SCRIPT, push_arguments, script_text, unpack_arguments, unpacker_command
from lab.pipeline.steps import (
    build_inference_service,
    check_predictions,
    deploy_inference_service,
    lineage_from_env,
    read_split,
    train_classifier,
)

# Where the KitOps components expect their secrets (KitOps Kubeflow guide).
DOCKER_CONFIG_MOUNT = "/home/user/.docker"
COSIGN_MOUNT = "/etc/cosign"


def train_model(
    dataset: str,
    model_name: str,
    description: str,
    author: str,
    seed: int,
    test_size: float,
    modelkit_dir: dsl.Output[dsl.Artifact],
    metrics: dsl.Output[dsl.Metrics],
) -> str:
    """Train the classifier into a ModelKit directory; returns the dataset URI."""
    result = train_classifier(modelkit_dir.path, dataset, model_name, description, author, seed, test_size)
    for key in ("accuracy", "f1_macro", "train_rows", "test_rows"):
        metrics.log_metric(key, result[key])
    modelkit_dir.metadata.update(
        {"dataset_uri": result["dataset_uri"], "sklearn_version": result["sklearn_version"]}
    )
    return str(result["dataset_uri"])


def register_model(
    model_name: str,
    version: str,
    modelkit_ref: str,
    model_registry_url: str,
    author: str,
    description: str,
    model_format_name: str,
    model_format_version: str,
    version_policy: str,
    dataset_uri: str,
    code_repo: str,
    code_commit: str,
    run_id: str,
    pipeline_name: str,
    namespace: str,
    metrics: dsl.Input[dsl.Metrics],
    registered_model: dsl.Output[dsl.Model],
    connect_timeout: float = 3.0,
    total_timeout: float = 60.0,
) -> None:
    """Register the pushed ModelKit (``kit://<modelkit_ref>``, by digest) with lineage and metadata."""
    import json
    import os

    lineage = lineage_from_env(dict(os.environ), run_id, pipeline_name, namespace)
    metadata: dict[str, Any] = {
        "digest": split_modelkit_reference(modelkit_ref)["digest"],
        "modelkit_reference": modelkit_ref,
        "dataset_uri": dataset_uri,
        "code_repo": code_repo,
        "code_commit": code_commit,
    }
    for key, value in (metrics.metadata or {}).items():
        if isinstance(value, bool | int | float | str):
            metadata[f"metric_{key}"] = value
    result = register_modelkit(
        registry_url=model_registry_url,
        model_name=model_name,
        version=version,
        modelkit_uri=kit_uri(modelkit_ref),
        author=author,
        description=description,
        model_format_name=model_format_name,
        model_format_version=model_format_version,
        policy=version_policy,
        lineage=lineage,
        metadata=metadata,
        token=os.environ.get("MR_AUTH_TOKEN", ""),
        suffix=(lineage["model_source_id"] or "run")[:8],
        connect_timeout=connect_timeout,
        total_timeout=total_timeout,
    )
    os.makedirs(os.path.dirname(registered_model.path) or ".", exist_ok=True)
    with open(registered_model.path, "w") as handle:
        json.dump({**result, "lineage": lineage, "metadata": metadata}, handle, indent=2)
    registered_model.metadata.update(
        {
            "modelName": model_name,
            "versionName": result["version"],
            "modelID": result["model_id"],
            "versionID": result["version_id"],
            "modelRegistryURL": result["model_registry_url"],
            "uri": result["uri"],
            "action": result["action"],
        }
    )


def predict(
    serving_url: str,
    model_name: str,
    reference: dsl.Input[dsl.Artifact],
    predictions: dsl.Output[dsl.Artifact],
    timeout: float = 30.0,
) -> None:
    """Compare V1 and V2 predictions of the served model with the model's own on the held-out split."""
    import json
    import os

    result = check_predictions(serving_url, model_name, reference.path, timeout)
    os.makedirs(os.path.dirname(predictions.path) or ".", exist_ok=True)
    with open(predictions.path, "w") as handle:
        json.dump(result, handle, indent=2)
    predictions.metadata.update(
        {
            "rows": result["rows"],
            "accuracy": result["accuracy"],
            "v1_sample": result["v1"][:5],
            "v2_sample": result["v2"][:5],
            "serving_url": serving_url,
        }
    )


def serve_model(modelkit_ref: str, model_name: str, namespace: str, timeout_seconds: int) -> str:
    """Serve ``kit://<modelkit_ref>`` (by digest) with an InferenceService; returns its in-cluster URL."""
    import os

    return deploy_inference_service(
        model_name,
        os.environ.get("KFP_POD_NAMESPACE") or namespace,
        kit_uri(modelkit_ref),
        "sklearn",
        timeout_seconds,
    )


@dataclass(frozen=True)
class ChainComponents:
    """The six components of one pipeline target."""

    train: Any
    push: Any
    register: Any
    unpack: Any
    serve: Any
    predict: Any


def python_components(config: LabConfig, *, cluster: bool) -> dict[str, Any]:
    """train, register, predict (and the cluster's serve) as lightweight components.

    For the cluster they install pinned packages into ``config.versions.python_image``; the
    local pipeline runs them in this interpreter, which has the pipeline extra installed, so
    nothing is installed (pip would otherwise reach for the network on every step).
    """
    versions = config.versions

    def build(func: Any, packages: list[str], helpers: list[Any]) -> Any:
        return dsl.component(
            func,
            base_image=versions.python_image,
            packages_to_install=packages if cluster else [],
            install_kfp_package=cluster,
            additional_funcs=helpers,
        )

    sklearn = f"scikit-learn=={versions.scikit_learn_for_kserve}"
    built = {
        "train": build(train_model, [sklearn], [train_classifier]),
        "register": build(
            register_model,
            [f"model-registry=={versions.model_registry_client}"],
            [
                split_modelkit_reference,
                kit_uri,
                lineage_from_env,
                decide_version,
                check_model_registry,
                register_modelkit,
            ],
        ),
        "predict": build(predict, [sklearn], [read_split, check_predictions]),
    }
    if cluster:
        built["serve"] = build(
            serve_model,
            [f"kserve=={versions.kserve_sdk}"],
            [
                split_modelkit_reference,
                kit_uri,
                reference_of_kit_uri,
                build_inference_service,
                deploy_inference_service,
            ],
        )
    return built


def kitops_container_components(config: LabConfig) -> tuple[Any, Any]:
    """push-modelkit on the kitops-kubeflow image, unpack-modelkit on the pinned Python image.

    Unpack needs no kit: the unpacker speaks the registry API itself, so it runs on the image
    whose interpreter it needs, pinned by digest.
    """
    image = config.versions.kitops_kubeflow_image
    push_script = script_text(PUSH_SCRIPT)
    unpacker = unpacker_command()
    python_image = config.versions.python_image

    @dsl.container_component
    def push_modelkit(
        registry: str,
        repository: str,
        tag: str,
        modelkit_dir: dsl.Input[dsl.Artifact],
        ref: dsl.OutputPath(str),  # type: ignore[valid-type]
        digest: dsl.OutputPath(str),  # type: ignore[valid-type]
        modelkit_name: str = "",
        modelkit_desc: str = "",
        modelkit_author: str = "",
        dataset_uri: str = "",
        code_repo: str = "",
        code_commit: str = "",
        plain_http: bool = False,
    ) -> dsl.ContainerSpec:
        """Pack the directory as a ModelKit, push it, attest it (scripts/push-modelkit.sh)."""
        return dsl.ContainerSpec(
            image=image,
            command=["/bin/bash", "-c", push_script, "push-modelkit.sh"],
            args=push_arguments(
                registry,
                repository,
                tag,
                modelkit_dir.path,
                modelkit_name=modelkit_name,
                modelkit_desc=modelkit_desc,
                modelkit_author=modelkit_author,
                dataset_uri=dataset_uri,
                code_repo=code_repo,
                code_commit=code_commit,
                plain_http=plain_http,
                ref_output=ref,
                digest_output=digest,
            ),
        )

    @dsl.container_component
    def unpack_modelkit(
        modelkit_ref: str,
        model_path: dsl.Output[dsl.Artifact],
        extract_path: str = "",
        plain_http: bool = False,
    ) -> dsl.ContainerSpec:
        """Pull, verify and safely extract a ModelKit into model_path (scripts/unpack_modelkit.py)."""
        return dsl.ContainerSpec(
            image=python_image,
            command=unpacker,
            args=unpack_arguments(
                modelkit_ref, extract_path, plain_http=plain_http, artifact_dir=model_path.path
            ),
        )

    return push_modelkit, unpack_modelkit


def cluster_components(config: LabConfig) -> ChainComponents:
    """The components of the cluster pipeline."""
    python = python_components(config, cluster=True)
    push, unpack = kitops_container_components(config)
    return ChainComponents(
        python["train"], push, python["register"], unpack, python["serve"], python["predict"]
    )
