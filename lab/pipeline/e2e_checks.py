"""The end-to-end assertions of ``lab e2e``: what a successful cluster run must have left behind.

1. the pushed ModelKit digest exists in the lab registry (asked on ``127.0.0.1:<ports.registry>``);
2. a Model Registry version of the model names this run as its source
   (``model_source_kind`` ``kfp``, ``model_source_id`` the run id);
3. the InferenceService is Ready and serves exactly that ``kit://`` digest reference;
4. V1 and V2 predictions through a port-forward to the predictor equal the predictions of the
   ``model.joblib`` in that very ModelKit on its held-out ``test.csv``.

Where the digest comes from: KFP's run API lists a task's outputs as artifact ids only
(``V2beta1PipelineTaskDetail.outputs`` is ``dict(str, V2beta1ArtifactList)``); parameter outputs
such as the push step's ``digest`` live in ML Metadata, which KFP serves through no REST
endpoint. The push step's digest is passed on to the register step (artifact URI
``kit://<digest reference>`` and custom property ``modelkit_reference``) and to the serve step
(``storageUri``); the checks read it there and require every copy to agree.

The judges (``find_run_version``, ``registered_reference``, ``check_inference_service``...) are
pure: they judge what the APIs returned. :func:`verify_run` asks the APIs and runs them.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3

from lab.config import LabConfig
from lab.errors import LabError
from lab.kube import ApiError, Kube
from lab.pipeline.definition import MODEL_REGISTRY_SERVICE, MODEL_REGISTRY_SERVICE_PORT
from lab.pipeline.modelkit_ref import ModelKitRef
from lab.pipeline.registry_access import manifest_digest
from lab.pipeline.serving import initialize_storage
from lab.pipeline.steps import check_predictions
from lab.port_forwards import ForwardTarget, PortForwards
from lab.progress import Progress
from lab.provision.secrets import docker_config_json, registry_hosts
from lab.readiness import custom_conditions, inference_service_ready

T = TypeVar("T")

KSERVE_GROUP, KSERVE_VERSION, ISVC_PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"


# Each assertion -> its progress line, in the order verify_run makes them.
CHECK_TITLES = {
    "model-registry": "check: Model Registry version with lineage to the run",
    "inference-service": "check: InferenceService Ready",
    "registry": "check: ModelKit digest in the registry",
    "predictions": "check: V1 and V2 predictions",
}

# Each assertion -> the chain step whose work it checks (what ``lab doctor`` is told failed).
CHECK_STEPS = {
    "registry": "push",
    "model-registry": "register",
    "inference-service": "serve",
    "predictions": "predict",
}


class CheckFailed(LabError):
    """An end-to-end assertion failed; ``check`` names which, the message what differs."""

    def __init__(self, check: str, message: str, details: list[str] | None = None) -> None:
        super().__init__(f"{check}: {message}", details)
        self.check = check


def find_run_version(model_name: str, run_id: str, records: Iterable[tuple[Any, Any]]) -> tuple[Any, Any]:
    """The Model Registry version whose model artifact names ``run_id`` as its source.

    Args:
        model_name: The registered model.
        run_id: The KFP run id.
        records: ``(ModelVersion, ModelArtifact | None)`` pairs, newest first (consumed lazily).

    Raises:
        CheckFailed: No version names the run, or it does with another source kind than ``kfp``.
    """
    seen: list[str] = []
    for version, artifact in records:
        source_id = getattr(artifact, "model_source_id", None)
        kind = getattr(artifact, "model_source_kind", None)
        if source_id == run_id:
            if kind != "kfp":
                raise CheckFailed(
                    "model-registry",
                    f"version {version.name} of {model_name} names run {run_id} but its "
                    f"model_source_kind is {kind!r}, expected 'kfp'",
                )
            return version, artifact
        if len(seen) < 5:
            seen.append(
                f"version {version.name} (id {version.id}): model_source_kind={kind!r}, "
                f"model_source_id={source_id!r}"
                if artifact is not None
                else f"version {version.name} (id {version.id}): no model artifact"
            )
    if not seen:
        raise CheckFailed("model-registry", f"model {model_name} has no versions in the Model Registry")
    raise CheckFailed(
        "model-registry",
        f"no version of {model_name} has model_source_id {run_id} (this run); newest versions:",
        seen,
    )


def registered_reference(version: Any, artifact: Any) -> str:
    """The ModelKit digest reference the version records, checked for internal agreement.

    The register step writes the push step's ``digest`` output three times: as the artifact URI
    (``kit://<ref>``), as ``modelkit_reference`` and (the ``sha256:`` part) as ``digest``.

    Raises:
        CheckFailed: The URI is not a ``kit://...@sha256:`` reference, or the copies differ.
    """
    uri = str(getattr(artifact, "uri", "") or "")
    try:
        ref: ModelKitRef | None = ModelKitRef.from_uri(uri)
    except ValueError:
        ref = None
    if ref is None or not ref.pinned:
        raise CheckFailed(
            "model-registry",
            f"version {version.name} has artifact URI {uri!r}, expected kit://<registry>/<repo>@sha256:<digest>",
        )
    reference = str(ref)
    properties = dict(getattr(version, "custom_properties", None) or {})
    expected = {"modelkit_reference": reference, "digest": ref.digest}
    for key, value in expected.items():
        if key in properties and properties[key] != value:
            raise CheckFailed(
                "model-registry",
                f"version {version.name} is inconsistent: artifact URI {uri} but custom property "
                f"{key}={properties[key]!r} (expected {value!r})",
            )
    return reference


def check_inference_service(isvc: Mapping[str, Any], expected_storage_uri: str | None) -> str:
    """Judge an InferenceService as ``CustomObjectsApi`` returns it; return its storageUri.

    Ready means the ``Ready`` condition is ``True`` for the current generation.

    Raises:
        CheckFailed: Not Ready (the conditions that are not True are listed), status older than
            the spec, or it serves another ``storageUri`` than ``expected_storage_uri``.
    """
    meta = isvc.get("metadata") or {}
    where = f"InferenceService {meta.get('namespace')}/{meta.get('name')}"
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    # The model spec (what the serve step writes) or a framework field such as "sklearn".
    model = predictor.get("model") or next(
        (v for v in predictor.values() if isinstance(v, dict) and "storageUri" in v), {}
    )
    storage = str(model.get("storageUri") or "")
    if expected_storage_uri is not None and storage != expected_storage_uri:
        raise CheckFailed(
            "inference-service",
            f"{where} serves {storage or 'no storageUri'}, but the run pushed {expected_storage_uri}",
        )
    status = isvc.get("status") or {}
    conditions = custom_conditions(isvc)
    if not inference_service_ready(isvc):
        not_true = [
            f"{c.get('type')}={c.get('status')}"
            + (f" {c.get('reason')}" if c.get("reason") else "")
            + (f": {c.get('message')}" if c.get("message") else "")
            for c in conditions
            if c.get("status") != "True"
        ]
        raise CheckFailed(
            "inference-service",
            f"{where} is not Ready: {'; '.join(not_true) or 'no conditions reported yet'} "
            "(the storage-initializer init container's log shows the unpacker's ERROR line)",
        )
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    if generation is not None and observed is not None and int(observed) < int(generation):
        raise CheckFailed(
            "inference-service",
            f"{where} reports Ready for generation {observed}, but its spec is at generation {generation}",
        )
    return storage


def host_reference(config: LabConfig, reference: str) -> str:
    """The in-cluster digest reference as this machine reaches the same registry.

    Raises:
        CheckFailed: The reference is no ModelKit reference, or names a registry other than the lab's.
    """
    try:
        ref = ModelKitRef.parse(reference)
    except ValueError as exc:
        raise CheckFailed("registry", f"the run recorded no ModelKit reference: {exc}") from None
    if ref.registry not in registry_hosts(config):
        raise CheckFailed(
            "registry",
            f"the run pushed {reference} to {ref.registry}, not to the lab registry "
            f"({', '.join(registry_hosts(config))})",
        )
    # Cluster mode has no registry of its own: --registry is the one name both sides use.
    cluster_registry = config.cluster_registry if config.mode == "cluster" else ""
    return str(ref.with_registry(cluster_registry or config.registry_host))


def check_registry_digest(reference: str, reported: str) -> None:
    """The registry's digest for a ``...@sha256:`` reference must be that digest.

    Raises:
        CheckFailed: The registry reports another digest.
    """
    expected = ModelKitRef.parse(reference).digest
    if reported != expected:
        raise CheckFailed("registry", f"the registry reports {reported} for {reference}, expected {expected}")


def check_in_registry(config: LabConfig, reference: str) -> str:
    """The pushed ``<registry>/<repo>@sha256:...`` is in the lab registry, asked from this machine.

    Returns:
        The reference as this machine reaches it (``127.0.0.1:<ports.registry>/...``).

    Raises:
        CheckFailed: Another registry, not found, refused, or reported under another digest.
    """
    local_reference = host_reference(config, reference)
    with tempfile.TemporaryDirectory(prefix="lab-e2e-docker-") as docker_dir:
        # The credentials the cluster's docker-config secret carries, for this host's names.
        (Path(docker_dir) / "config.json").write_text(docker_config_json(config))
        try:
            reported = manifest_digest(local_reference, Path(docker_dir))
        except LabError as exc:
            raise CheckFailed(
                "registry", f"{exc.message} (pushed by the run as {reference})", exc.details
            ) from None
    check_registry_digest(local_reference, reported)
    return local_reference


def model_registry_target(config: LabConfig) -> ForwardTarget:
    """The Model Registry REST service."""
    return ForwardTarget(
        "Model Registry API",
        config.names.kubeflow_namespace,
        f"svc/{MODEL_REGISTRY_SERVICE}",
        MODEL_REGISTRY_SERVICE_PORT,
    )


def predictor_target(config: LabConfig, model_name: str) -> ForwardTarget:
    """The predictor Service KServe's RawDeployment mode creates (``<name>-predictor``, port 80)."""
    return ForwardTarget("predictor", config.names.pipeline_namespace, f"svc/{model_name}-predictor", 80)


def model_registry_records(port: int, model_name: str) -> Iterator[tuple[Any, Any]]:
    """``(version, artifact)`` pairs of ``model_name``, newest first, fetched as consumed."""
    # Imported here: the Model Registry client pulls in aiohttp and pydantic models; the pure
    # judges above (and their tests) need none of it.
    from model_registry import ModelRegistry

    with warnings.catch_warnings():
        # Expected here: no token (the lab's Model Registry has no auth) on a plain-http port.
        warnings.simplefilter("ignore")
        client = ModelRegistry("http://127.0.0.1", port, author="lab-e2e", is_secure=False)
    if client.get_registered_model(model_name) is None:
        return
    for version in client.get_model_versions(model_name).order_by_creation_time().descending():
        yield version, client.get_model_artifact(model_name, version.name)


@dataclass
class Verified:
    """What the assertions established, for the summary."""

    reference: str = ""
    version: str = ""
    version_id: str = ""
    storage_uri: str = ""
    rows: int = 0
    accuracy: float = 0.0


def _checked(
    progress: Progress, title: str, check: str, failures: list[CheckFailed], func: Callable[[], T]
) -> T | None:
    """Run one assertion as a progress step (✓/✗); a failure is collected, never raised."""
    try:
        with progress.step(title):
            return func()
    except CheckFailed as exc:
        failures.append(exc)
    except LabError as exc:
        failures.append(CheckFailed(check, str(exc), exc.details))
    return None


def _served_reference(served: str | None) -> str:
    """The reference in the InferenceService's ``kit://`` storageUri.

    Any other storageUri comes back as it is, so the registry check names it.
    """
    if not served:
        return ""
    try:
        return str(ModelKitRef.from_uri(served))
    except ValueError:
        return served


def verify_run(
    config: LabConfig,
    progress: Progress,
    kube: Kube,
    forwards: PortForwards,
    run_id: str,
    model_name: str,
) -> tuple[Verified, list[CheckFailed]]:
    """Run the end-to-end assertions; each one that can run does, and every failure is returned."""
    verified = Verified()
    failures: list[CheckFailed] = []
    namespace = config.names.pipeline_namespace

    def lineage() -> str:
        port = forwards.open(model_registry_target(config)).local_port
        try:
            version, artifact = find_run_version(model_name, run_id, model_registry_records(port, model_name))
        except CheckFailed:
            raise
        except Exception as exc:  # aiohttp, StoreError and pydantic errors alike: name who failed
            # The client's exceptions carry the whole HTTP exchange: its first line says enough.
            first_line = (str(exc).splitlines() or [""])[0][:300]
            raise CheckFailed(
                "model-registry", f"the Model Registry did not answer: {type(exc).__name__}: {first_line}"
            ) from None
        verified.version, verified.version_id = str(version.name), str(version.id)
        return registered_reference(version, artifact)

    registered = _checked(progress, CHECK_TITLES["model-registry"], "model-registry", failures, lineage)

    def inference_service() -> str:
        try:
            isvc = kube.custom_object(KSERVE_GROUP, KSERVE_VERSION, namespace, ISVC_PLURAL, model_name)
        except ApiError as exc:
            raise CheckFailed(
                "inference-service",
                f"InferenceService {namespace}/{model_name} could not be read: {exc.status} {exc.reason}",
            ) from None
        except urllib3.exceptions.HTTPError as exc:
            raise CheckFailed(
                "inference-service", f"the Kubernetes API did not answer: {type(exc).__name__}: {exc}"
            ) from None
        verified.storage_uri = check_inference_service(
            isvc, ModelKitRef.parse(registered).uri if registered else None
        )
        return verified.storage_uri

    served = _checked(
        progress, CHECK_TITLES["inference-service"], "inference-service", failures, inference_service
    )

    # Without the Model Registry's copy of the digest, the InferenceService's is the next best.
    reference = registered or _served_reference(served)
    if not reference:
        failures.append(
            CheckFailed(
                "registry",
                "no ModelKit digest to check: neither the Model Registry nor the InferenceService "
                "recorded one for this run",
            )
        )
        return verified, failures
    verified.reference = reference

    local_reference = _checked(
        progress,
        CHECK_TITLES["registry"],
        "registry",
        failures,
        lambda: check_in_registry(config, reference),
    )
    if local_reference is None:
        return verified, failures

    def predictions() -> None:
        predictor = forwards.open(predictor_target(config, model_name))
        reference_dir = Path(tempfile.mkdtemp(prefix="lab-e2e-modelkit-"))
        try:
            # The reference is the ModelKit exactly as KServe's kit:// storage container fetches it.
            initialize_storage(
                config,
                ModelKitRef.parse(local_reference).uri,
                reference_dir,
                plain_http=True,
            )
            with warnings.catch_warnings():
                # model.joblib was pickled by the cluster's scikit-learn; the lab's may be newer.
                warnings.simplefilter("ignore")
                try:
                    result = check_predictions(predictor.url, model_name, str(reference_dir), 30.0)
                except RuntimeError as exc:  # unreachable, an HTTP error, or predictions that differ
                    raise CheckFailed("predictions", str(exc)) from None
                except Exception as exc:  # an answer of another shape, a model.joblib that will not load
                    raise CheckFailed(
                        "predictions",
                        f"comparing {predictor.url} with {local_reference}'s model.joblib failed: "
                        f"{type(exc).__name__}: {exc}",
                    ) from None
        finally:
            shutil.rmtree(reference_dir, ignore_errors=True)
        verified.rows, verified.accuracy = int(result["rows"]), float(result["accuracy"])

    _checked(progress, CHECK_TITLES["predictions"], "predictions", failures, predictions)
    return verified, failures
