"""The chain on the kind cluster: one implementation for ``lab demo`` (kind mode) and ``lab e2e``.

:func:`run_cluster_chain` provisions idempotently (:func:`lab.provision.up_kind`), opens
``kubectl port-forward`` children for this run only (:class:`PortForwards`: free local ports,
each waited for, always stopped), compiles the cluster pipeline, submits it to KFP through the
forwarded API (``svc/ml-pipeline:8888``) and waits for the run. ``lab demo`` stops there;
``lab e2e`` (``verify=True``) then asserts what the run must have left behind:

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
"""

from __future__ import annotations

import datetime
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from lab.config import LabConfig
from lab.engine import probe_engines
from lab.errors import LabError
from lab.local.processes import free_port, log_tail, raise_keyboard_interrupt, stop_children
from lab.pipeline import CHAIN_STEPS, STEP_OF_TASK
from lab.progress import Progress

T = TypeVar("T")

# The model e2e runs under: its own Model Registry model, repository and InferenceService,
# so an e2e run never replaces (or, without --keep, deletes) what `lab demo` serves.
E2E_MODEL_NAME = "iris-classifier-e2e"
EXPERIMENT_NAME = "kubeflow-modelkit-lab"
# The KFP API server's HTTP port (the UI on ml-pipeline-ui:80 only proxies it).
KFP_API_SERVICE, KFP_API_PORT = "ml-pipeline", 8888
KSERVE_GROUP, KSERVE_VERSION, ISVC_PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "SKIPPED", "CANCELED"})


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


class RunTimedOut(LabError):
    """The pipeline run did not reach a final state in time (``run`` is the last state seen)."""

    def __init__(self, message: str, run: Any) -> None:
        super().__init__(message)
        self.run = run


# --- port-forwards ------------------------------------------------------------------------


@dataclass(frozen=True)
class ForwardTarget:
    """A cluster endpoint to forward: ``kubectl port-forward -n <namespace> <target> <port>:<remote>``."""

    label: str
    namespace: str
    target: str
    remote_port: int


@dataclass
class OpenForward:
    """A running forward: its local port, child process and log."""

    target: ForwardTarget
    local_port: int
    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<local port>``."""
        return f"http://127.0.0.1:{self.local_port}"


# Builds the argv of one forward's child from its target and local port: kubectl in the lab,
# any process that listens on the port in tests.
ForwardArgv = Callable[[ForwardTarget, int], list[str]]


def kubectl_forward_argv(kubectl: Path | str, context: str) -> ForwardArgv:
    """The ``kubectl port-forward`` command for a target, bound to loopback only."""

    def argv(target: ForwardTarget, local_port: int) -> list[str]:
        return [
            str(kubectl),
            "--context",
            context,
            "--namespace",
            target.namespace,
            "port-forward",
            "--address",
            "127.0.0.1",
            target.target,
            f"{local_port}:{target.remote_port}",
        ]

    return argv


def _answers(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-")


class PortForwards:
    """Port-forward children owned by one run; use through :func:`port_forwards`.

    Args:
        argv_for: Builds each child's command (see :func:`kubectl_forward_argv`).
        log_dir: Where each forward's output goes (``e2e-port-forward-<label>.log``).
        ready_timeout: Seconds each forward gets to accept a connection.
    """

    # A free port can be taken between choosing it and the child binding it: try a new one.
    ATTEMPTS = 3

    def __init__(self, argv_for: ForwardArgv, log_dir: Path, *, ready_timeout: float = 30.0) -> None:
        self.argv_for = argv_for
        self.log_dir = log_dir
        self.ready_timeout = ready_timeout
        self.forwards: list[OpenForward] = []
        self._logs: list[IO[bytes]] = []

    def _start(self, target: ForwardTarget, port: int, log_file: Path) -> subprocess.Popen[bytes]:
        log = log_file.open("ab")
        self._logs.append(log)
        # Own session: a terminal's Ctrl-C reaches only the lab, which then stops its children.
        return subprocess.Popen(
            self.argv_for(target, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_ready(self, forward: OpenForward) -> bool:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if forward.process.poll() is not None:
                return False
            if _answers(forward.local_port):
                # kubectl ends the forward when the pod refuses a connection, and accepting could
                # be a stranger that took the port: the child must still be alive a moment later.
                time.sleep(0.3)
                return forward.process.poll() is None
            time.sleep(0.2)
        return False

    def open(self, target: ForwardTarget) -> OpenForward:
        """Start a forward on a free local port and wait until it accepts connections.

        Raises:
            LabError: The forward never answered; the details are the end of its log.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.log_dir / f"e2e-port-forward-{_slug(target.label)}.log"
        for _ in range(self.ATTEMPTS):
            port = free_port()
            forward = OpenForward(target, port, self._start(target, port, log_file), log_file)
            self.forwards.append(forward)
            if self._wait_ready(forward):
                return forward
            stop_children([forward.process])
            self.forwards.remove(forward)
        raise LabError(
            f"port-forward to {target.label} ({target.namespace}/{target.target}:{target.remote_port}) "
            f"did not answer within {self.ready_timeout:.0f}s ({self.ATTEMPTS} attempts); "
            f"is the service there (`lab doctor`)? Log {log_file} ends with:",
            log_tail(log_file),
        )

    def revive(self) -> list[str]:
        """Restart every forward whose child exited (its pod was replaced), on the same port.

        Clients keep their URL, so a restarted KFP API pod does not end the wait for a run.
        Returns the labels restarted.
        """
        restarted = []
        for forward in self.forwards:
            if forward.process.poll() is None:
                continue
            forward.process = self._start(forward.target, forward.local_port, forward.log_file)
            restarted.append(forward.target.label)
        return restarted

    def close(self) -> None:
        """Stop every child (TERM, then KILL after 5 s) and close their logs."""
        stop_children([forward.process for forward in self.forwards])
        self.forwards.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()


@contextmanager
def port_forwards(
    argv_for: ForwardArgv, log_dir: Path, *, ready_timeout: float = 30.0
) -> Iterator[PortForwards]:
    """Port-forwards for the length of a ``with`` block; every child is stopped on the way out.

    SIGTERM is turned into KeyboardInterrupt meanwhile (main thread only), so a terminated lab
    still runs the cleanup instead of leaving kubectl children behind in their own sessions.
    """
    forwards = PortForwards(argv_for, log_dir, ready_timeout=ready_timeout)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_keyboard_interrupt) if main_thread else None
    try:
        yield forwards
    finally:
        forwards.close()
        if main_thread:
            # None: the previous handler was not set from Python; the default is what it was.
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


# --- the run as KFP reports it ----------------------------------------------------------


@dataclass(frozen=True)
class StepState:
    """One task of a run, from ``V2beta1Run.run_details.task_details``."""

    name: str
    state: str
    error: str = ""
    pod_name: str = ""
    seconds: float | None = None
    ended: datetime.datetime | None = None
    # Output name -> ML Metadata artifact ids (the only outputs KFP's run API reports).
    outputs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def chain_step(self) -> str:
        """The chain step this task belongs to (``push`` for ``push-modelkit``/its driver), or ``""``."""
        name = self.name.removesuffix("-driver")
        if name in STEP_OF_TASK:
            return STEP_OF_TASK[name]
        return name if name in CHAIN_STEPS else ""


def run_state(run: Any) -> str:
    """The run's state as an upper-case string (``UNKNOWN`` when KFP has none yet)."""
    return str(getattr(run, "state", None) or "UNKNOWN").upper()


def _seconds(start: Any, end: Any) -> float | None:
    if isinstance(start, datetime.datetime) and isinstance(end, datetime.datetime):
        return max(0.0, (end - start).total_seconds())
    return None


def step_states(run: Any) -> list[StepState]:
    """Every task of a ``V2beta1Run`` (as ``kfp.Client.get_run`` returns it), in KFP's order."""
    details = getattr(run, "run_details", None)
    steps = []
    for task in getattr(details, "task_details", None) or []:
        error = getattr(task, "error", None)
        children = getattr(task, "child_tasks", None) or []
        pod_name = task.pod_name or next((c.pod_name for c in children if c.pod_name), "") or ""
        steps.append(
            StepState(
                name=task.display_name or task.task_id or "?",
                state=str(task.state or "UNKNOWN").upper(),
                error=str(getattr(error, "message", "") or ""),
                pod_name=pod_name,
                seconds=_seconds(task.start_time, task.end_time),
                ended=task.end_time if isinstance(task.end_time, datetime.datetime) else None,
                outputs={
                    name: [str(i) for i in (artifacts.artifact_ids or [])]
                    for name, artifacts in (task.outputs or {}).items()
                },
            )
        )
    return steps


def step_outputs(run: Any, step: str) -> dict[str, list[str]]:
    """The output artifact ids of a chain step (``push``, ``register``...), merged over its tasks."""
    outputs: dict[str, list[str]] = {}
    for state in step_states(run):
        if step in (state.name, state.chain_step):
            for name, ids in state.outputs.items():
                outputs.setdefault(name, []).extend(ids)
    return outputs


def describe_run_failure(run: Any) -> tuple[str, str]:
    """``(chain step, message)`` for a run that did not succeed: the failed task and its error."""
    state = run_state(run)
    # The earliest failure is the cause; the DAG and root tasks above it fail after it.
    failed = sorted(
        (s for s in step_states(run) if s.state == "FAILED"),
        key=lambda s: s.ended.timestamp() if s.ended else float("inf"),
    )
    named = [s for s in failed if s.chain_step] or failed
    run_error = str(getattr(getattr(run, "error", None), "message", "") or "")
    run_id = getattr(run, "run_id", "?")
    if not named:
        return "pipeline", f"pipeline run {run_id} ended {state}" + (f": {run_error}" if run_error else "")
    first = named[0]
    where = f" (pod {first.pod_name})" if first.pod_name else ""
    error = first.error or run_error or "no error message recorded"
    return (
        first.chain_step or "pipeline",
        f"pipeline run {run_id} ended {state}: step {first.name} {first.state}{where}: {error}",
    )


def summarize_steps(run: Any) -> str:
    """``train SUCCEEDED 41.0s, push-modelkit SUCCEEDED 12.3s, ...`` for the chain's tasks."""
    states = step_states(run)
    # KFP also reports driver and DAG tasks; when no task carries a step's name, show them all.
    chain = [s for s in states if s.chain_step and not s.name.endswith("-driver")] or states[:12]
    parts = [f"{s.name} {s.state}" + (f" {s.seconds:.1f}s" if s.seconds is not None else "") for s in chain]
    return ", ".join(parts) or "no task details reported"


def wait_for_run(
    get_run: Callable[[str], Any],
    run_id: str,
    timeout: float,
    *,
    interval: float = 5.0,
    on_unreachable: Callable[[], object] = lambda: None,
) -> Any:
    """Poll ``get_run`` until the run is final.

    A failed request (the API pod restarting, a dropped forward) calls ``on_unreachable``
    (reviving the forwards) and polling goes on until the timeout.

    Returns:
        The final ``V2beta1Run``.

    Raises:
        RunTimedOut: Not final after ``timeout`` seconds; the message says where it stood.
    """
    import urllib3
    from kfp_server_api.exceptions import ApiException as KfpApiException

    deadline = time.monotonic() + timeout
    run: Any = None
    unreachable = ""
    while True:
        try:
            run = get_run(run_id)
            unreachable = ""
            if run_state(run) in TERMINAL_STATES:
                return run
        except (urllib3.exceptions.HTTPError, KfpApiException, OSError) as exc:
            unreachable = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            on_unreachable()
        if time.monotonic() >= deadline:
            where = (
                f"KFP API not answering ({unreachable})"
                if unreachable
                else f"{run_state(run)}; {summarize_steps(run)}"
            )
            raise RunTimedOut(
                f"pipeline run {run_id} not finished after {timeout:.0f}s ({where}); "
                "raise --timeout / LAB_CLUSTER_TIMEOUT if images are still pulling",
                run,
            )
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))


# --- the assertions (pure: they judge what the APIs returned) ------------------------------


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
    if not uri.startswith("kit://") or "@sha256:" not in uri:
        raise CheckFailed(
            "model-registry",
            f"version {version.name} has artifact URI {uri!r}, expected kit://<registry>/<repo>@sha256:<digest>",
        )
    reference = uri.removeprefix("kit://")
    properties = dict(getattr(version, "custom_properties", None) or {})
    expected = {"modelkit_reference": reference, "digest": reference.rpartition("@")[2]}
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
    conditions = status.get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True":
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
            "(the storage-initializer init container's log shows kit unpack errors)",
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
        CheckFailed: The reference names a registry other than the lab's.
    """
    from lab.provision.secrets import registry_hosts

    host, _, rest = reference.partition("/")
    if host not in registry_hosts(config):
        raise CheckFailed(
            "registry",
            f"the run pushed {reference} to {host}, not to the lab registry "
            f"({', '.join(registry_hosts(config))})",
        )
    return f"{config.registry_host}/{rest}"


def check_registry_digest(reference: str, reported: str) -> None:
    """The registry's digest for a ``...@sha256:`` reference must be that digest.

    Raises:
        CheckFailed: The registry reports another digest.
    """
    expected = reference.rpartition("@")[2]
    if reported != expected:
        raise CheckFailed("registry", f"the registry reports {reported} for {reference}, expected {expected}")


def check_in_registry(config: LabConfig, reference: str) -> str:
    """The pushed ``<registry>/<repo>@sha256:...`` is in the lab registry, asked from this machine.

    Returns:
        The reference as this machine reaches it (``127.0.0.1:<ports.registry>/...``).

    Raises:
        CheckFailed: Another registry, not found, refused, or reported under another digest.
    """
    from lab.pipeline.registry_access import manifest_digest
    from lab.provision.secrets import docker_config_json

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


# --- the run ------------------------------------------------------------------------------


def require_container_engine(remedy: str) -> None:
    """Stop with the engine's own answers and ``remedy`` when neither Docker nor Podman answers.

    Raises:
        LabError: No engine answers.
    """
    engine, evidence = probe_engines()
    if engine is None:
        raise LabError(
            "kind mode needs a container engine and none answers (docker, podman): install and start "
            f"Docker (https://docs.docker.com/engine/install/) or Podman, then re-run; {remedy}",
            evidence,
        )


def kfp_api_target(config: LabConfig) -> ForwardTarget:
    """The KFP API server."""
    return ForwardTarget("KFP API", config.names.kubeflow_namespace, f"svc/{KFP_API_SERVICE}", KFP_API_PORT)


def model_registry_target(config: LabConfig) -> ForwardTarget:
    """The Model Registry REST service."""
    from lab.pipeline.definition import MODEL_REGISTRY_SERVICE, MODEL_REGISTRY_SERVICE_PORT

    return ForwardTarget(
        "Model Registry API",
        config.names.kubeflow_namespace,
        f"svc/{MODEL_REGISTRY_SERVICE}",
        MODEL_REGISTRY_SERVICE_PORT,
    )


def predictor_target(config: LabConfig, model_name: str) -> ForwardTarget:
    """The predictor Service KServe's RawDeployment mode creates (``<name>-predictor``, port 80)."""
    return ForwardTarget("predictor", config.names.pipeline_namespace, f"svc/{model_name}-predictor", 80)


def ui_run_url(config: LabConfig, run_id: str) -> str:
    """The run in the KFP UI as ``lab port-forward`` exposes it."""
    return f"http://127.0.0.1:{config.ports.kfp_ui}/#/runs/details/{run_id}"


def _kfp_client(host: str) -> Any:
    import kfp

    with warnings.catch_warnings():
        # "This client only works with KFP v2.0.0-beta.2 and later": the lab's KFP is 2.16.
        warnings.simplefilter("ignore", FutureWarning)
        return kfp.Client(host=host)


def _model_registry_records(port: int, model_name: str) -> Iterator[tuple[Any, Any]]:
    """``(version, artifact)`` pairs of ``model_name``, newest first, fetched as consumed."""
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


def verify_run(
    config: LabConfig,
    progress: Progress,
    kube: Any,
    forwards: PortForwards,
    run_id: str,
    model_name: str,
    kit_bin_dir: Path,
) -> tuple[Verified, list[CheckFailed]]:
    """Run the end-to-end assertions; each one that can run does, and every failure is returned."""
    import urllib3
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    from lab.pipeline.serving import initialize_storage
    from lab.pipeline.steps import check_predictions

    verified = Verified()
    failures: list[CheckFailed] = []
    namespace = config.names.pipeline_namespace

    def lineage() -> str:
        port = forwards.open(model_registry_target(config)).local_port
        try:
            version, artifact = find_run_version(
                model_name, run_id, _model_registry_records(port, model_name)
            )
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

    registered = _checked(
        progress, "check: Model Registry version with lineage to the run", "model-registry", failures, lineage
    )

    def inference_service() -> str:
        try:
            isvc = k8s.CustomObjectsApi(kube.api).get_namespaced_custom_object(
                KSERVE_GROUP, KSERVE_VERSION, namespace, ISVC_PLURAL, model_name
            )
        except ApiException as exc:
            raise CheckFailed(
                "inference-service",
                f"InferenceService {namespace}/{model_name} could not be read: {exc.status} {exc.reason}",
            ) from None
        except urllib3.exceptions.HTTPError as exc:
            raise CheckFailed(
                "inference-service", f"the Kubernetes API did not answer: {type(exc).__name__}: {exc}"
            ) from None
        verified.storage_uri = check_inference_service(isvc, f"kit://{registered}" if registered else None)
        return verified.storage_uri

    served = _checked(
        progress, "check: InferenceService Ready", "inference-service", failures, inference_service
    )

    # Without the Model Registry's copy of the digest, the InferenceService's is the next best.
    reference = registered or (served or "").removeprefix("kit://")
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
        "check: ModelKit digest in the registry",
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
                config, f"kit://{local_reference}", reference_dir, plain_http=True, kit_bin_dir=kit_bin_dir
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

    _checked(progress, "check: V1 and V2 predictions", "predictions", failures, predictions)
    return verified, failures


def failing_pods(config: LabConfig, run_id: str, model_name: str) -> list[str]:
    """Pods that are neither Running+Ready nor Succeeded: the run's, the predictor's, the platform's."""
    from lab.provision.kube import Kube

    try:
        kube = Kube.connect(config, timeout=5.0)
    except LabError as exc:
        return [f"(cannot list pods: {exc.message})"]
    names = config.names
    selections = [
        (names.pipeline_namespace, f"pipeline/runid={run_id}" if run_id else None),
        (names.pipeline_namespace, f"serving.kserve.io/inferenceservice={model_name}"),
        (names.kubeflow_namespace, ""),
        (names.kserve_namespace, ""),
    ]
    lines: list[str] = []
    for namespace, selector in selections:
        if selector is None:
            continue
        try:
            problems = kube.pod_problems(namespace, selector)
        except Exception as exc:  # listing pods is evidence only: never hide the real failure
            problems = [f"(cannot list pods: {type(exc).__name__}: {exc})"]
        # A run's failed pod also shows in the namespace-wide listing: print it once.
        lines += [line for line in (f"{namespace}: {p}" for p in problems) if line not in lines]
    return lines


def _fail(
    config: LabConfig,
    step: str,
    error: BaseException | str,
    *,
    run_id: str,
    model_name: str,
    context: Mapping[str, object],
    also: Sequence[BaseException] = (),
) -> int:
    """Record ``error`` for the doctor, print it (and ``also``), the diagnosis and failing pods; 1."""
    from lab.pipeline.demo import print_diagnosis, record_failure

    record_failure(config, step, error, **context)
    for problem in (error, *also):
        print(f"ERROR: {problem}", file=sys.stderr)
    if run_id:
        print(
            f"  run {run_id}: {ui_run_url(config, run_id)} (while `lab port-forward` runs)", file=sys.stderr
        )
    print_diagnosis(config, "kind")
    pods = failing_pods(config, run_id, model_name)
    print("Pods not Running/Ready:" if pods else "No failing pods in the lab namespaces.", file=sys.stderr)
    for line in pods:
        print(f"  {line}", file=sys.stderr)
    return 1


def run_cluster_chain(
    config: LabConfig,
    progress: Progress,
    arguments: dict[str, Any],
    *,
    timeout: float,
    verify: bool = False,
    keep: bool = True,
    engine_remedy: str = "or run the chain in local mode (`LAB_MODE=local lab demo`)",
) -> int:
    """Provision the kind lab, run the cluster pipeline through port-forwards, optionally verify.

    Args:
        config: The lab config.
        progress: Step lines.
        arguments: Pipeline parameters (see :func:`lab.pipeline.demo.demo_arguments`).
        timeout: Seconds to wait for the run.
        verify: Assert registry, Model Registry, InferenceService and predictions (``lab e2e``).
        keep: After a verified run, leave its InferenceService; without it, it is deleted.
        engine_remedy: What to suggest when no container engine answers.

    Returns:
        0 when the run succeeded (and every assertion held), 1 otherwise (after printing the
        error, the doctor's diagnosis and the failing pods).

    Raises:
        LabError: No container engine, or a tool the run needs is not installed.
    """
    import urllib3
    from kfp_server_api.exceptions import ApiException as KfpApiException

    from lab.pipeline.definition import PIPELINE_NAME, compile_pipeline
    from lab.pipeline.demo import _clear_recorded_failure
    from lab.provision import up_kind
    from lab.provision.kube import Kube, context_name
    from lab.tools import tool_path

    started = time.monotonic()
    require_container_engine(engine_remedy)
    # Before provisioning: a missing tool should not surface after ten minutes of work.
    kubectl = tool_path(config, "kubectl")
    kit_bin_dir = tool_path(config, "kit").parent if verify else config.bin_dir
    model_name = str(arguments["model_name"])
    context: dict[str, object] = {"model": model_name, "version": arguments.get("version", "")}

    def fail(
        step: str, error: BaseException | str, run_id: str = "", also: Sequence[BaseException] = ()
    ) -> int:
        return _fail(config, step, error, run_id=run_id, model_name=model_name, context=context, also=also)

    try:
        status = up_kind(config, progress, dry_run=False)
        if status != 0:
            return status
        kube = Kube.connect(config)
        with progress.step("compile pipeline"):
            package = compile_pipeline(config, config.home / "pipelines" / f"{PIPELINE_NAME}.yaml")
    except LabError as exc:
        return fail("up", exc)

    with port_forwards(kubectl_forward_argv(kubectl, context_name(config)), config.log_dir) as forwards:
        try:
            api = forwards.open(kfp_api_target(config))
            with progress.step("submit pipeline run"):
                client = _kfp_client(api.url)
                submitted = client.create_run_from_pipeline_package(
                    str(package),
                    arguments=arguments,
                    run_name=f"{'e2e' if verify else 'demo'} {model_name} {arguments.get('version', '')}",
                    experiment_name=EXPERIMENT_NAME,
                    enable_caching=False,
                )
        except LabError as exc:
            return fail("pipeline", exc)
        except (urllib3.exceptions.HTTPError, KfpApiException, OSError) as exc:
            return fail(
                "pipeline",
                f"KFP at {api.url} (port-forward to svc/{KFP_API_SERVICE}) refused the "
                f"run: {type(exc).__name__}: {str(exc)[:300]}",
            )
        run_id = str(submitted.run_id)
        progress.info(f"  run {run_id}: {ui_run_url(config, run_id)} (while `lab port-forward` runs)")
        context["run_id"] = run_id
        try:
            with progress.step("pipeline run"):
                run = wait_for_run(client.get_run, run_id, timeout, on_unreachable=forwards.revive)
        except RunTimedOut as exc:
            return fail("pipeline", exc, run_id)
        if run_state(run) != "SUCCEEDED":
            step, message = describe_run_failure(run)
            return fail(step, message, run_id)

        if not verify:
            _clear_recorded_failure(config)
            print(
                f"Chain complete on the cluster in {time.monotonic() - started:.0f}s: "
                f"run {run_id} SUCCEEDED\n"
                f"  steps   {summarize_steps(run)}\n"
                f"  KFP UI  {ui_run_url(config, run_id)} (run `lab port-forward` to open it)"
            )
            return 0

        verified, failures = verify_run(config, progress, kube, forwards, run_id, model_name, kit_bin_dir)

    if failures:
        # Every failed assertion is printed; the first is recorded for the doctor as its chain step.
        first = failures[0]
        return fail(CHECK_STEPS.get(first.check, "e2e"), first, run_id, also=failures[1:])
    _clear_recorded_failure(config)
    cleanup = "kept (--keep)"
    if not keep:
        cleanup = _delete_inference_service(kube, config.names.pipeline_namespace, model_name)
    print(
        "\n".join(
            [
                f"End-to-end check passed on kind cluster {config.names.cluster} in "
                f"{time.monotonic() - started:.0f}s: run {run_id} SUCCEEDED",
                f"  steps             {summarize_steps(run)}",
                f"  ModelKit          {verified.reference} is in the registry ({config.registry_host})",
                f"  Model Registry    {model_name} version {verified.version} (id {verified.version_id}), "
                f"model_source_kind kfp, model_source_id {run_id}",
                f"  InferenceService  {config.names.pipeline_namespace}/{model_name} Ready, serving "
                f"{verified.storage_uri}; {cleanup}",
                f"  predictions       V1 and V2 equal the ModelKit's model.joblib on {verified.rows} "
                f"held-out rows (accuracy {verified.accuracy:.3f})",
                f"  KFP UI            {ui_run_url(config, run_id)} (run `lab port-forward` to open it)",
            ]
        )
    )
    return 0


def _delete_inference_service(kube: Any, namespace: str, name: str) -> str:
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    try:
        k8s.CustomObjectsApi(kube.api).delete_namespaced_custom_object(
            KSERVE_GROUP, KSERVE_VERSION, namespace, ISVC_PLURAL, name
        )
    except ApiException as exc:
        return f"could not be deleted ({exc.status} {exc.reason}); delete it with kubectl"
    return "deleted (--keep leaves it)"


def run_e2e(config: LabConfig, progress: Progress, *, timeout: float, keep: bool = False) -> int:
    """``lab e2e --mode kind``: the demo's cluster run under its own model name, then the assertions."""
    from lab.pipeline.demo import demo_arguments

    return run_cluster_chain(
        config,
        progress,
        # suffix: every e2e run registers a version of its own, so lineage points at this run.
        demo_arguments("1.0.0", "suffix", model_name=E2E_MODEL_NAME),
        timeout=timeout,
        verify=True,
        keep=keep,
        engine_remedy="without one, the local chain's end-to-end check is "
        "`pytest tests/e2e/test_local_chain.py` (or `lab demo` in local mode)",
    )
