"""The cluster run shared by `lab demo` (kind mode) and `lab e2e`: everything a machine without a
container engine can check.

The run's state comes from real kfp_server_api models (also deserialized from API JSON by the
API client itself), the Model Registry records from the model-registry client's own types built
from REST JSON, the InferenceService from the kserve SDK model as the API serializes it, the
registry check against a real registry process, and the port-forwards through the real code
path with a harmless HTTP server standing in for kubectl.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3

from lab import local
from lab.errors import LabError
from lab.loopback_ports import free_port
from lab.pipeline.chain import VersionPolicy
from lab.pipeline.e2e_checks import (
    CheckFailed,
    check_in_registry,
    check_inference_service,
    find_run_version,
    host_reference,
    registered_reference,
)
from lab.pipeline.kfp_run import (
    RunTimedOut,
    describe_run_failure,
    run_state,
    step_outputs,
    step_states,
    summarize_steps,
    wait_for_run,
)
from lab.port_forwards import ForwardTarget, answers, kubectl_forward_argv, port_forwards
from tests.pipeline_fixtures.chain_fixtures import QUIET, cli_env, destroy, new_lab, push_modelkit_raw

RUN_ID = "5f1c2a9e-0b7d-4e43-9a51-3c8f0d2e6b17"
DIGEST = "sha256:" + "ab" * 32
REFERENCE = f"kind-registry:5000/lab/iris-classifier-e2e@{DIGEST}"
UTC = datetime.UTC


def at(minute: int, second: int = 0) -> datetime.datetime:
    return datetime.datetime(2025, 1, 1, 12, minute, second, tzinfo=UTC)


# --- the run as kfp_server_api returns it ------------------------------------------------


def kfp_run(state: str, tasks: list[Any], error: str = "") -> Any:
    from kfp_server_api import GoogleRpcStatus, V2beta1Run, V2beta1RunDetails

    return V2beta1Run(
        run_id=RUN_ID,
        display_name="e2e iris-classifier-e2e 1.0.0",
        state=state,
        error=GoogleRpcStatus(code=2, message=error) if error else None,
        run_details=V2beta1RunDetails(task_details=tasks),
    )


def task(name: str, state: str, start: int, end: int | None, **kwargs: Any) -> Any:
    from kfp_server_api import V2beta1PipelineTaskDetail

    return V2beta1PipelineTaskDetail(
        run_id=RUN_ID,
        task_id=f"task-{name}",
        display_name=name,
        state=state,
        start_time=at(start),
        end_time=at(end) if end is not None else None,
        **kwargs,
    )


def succeeded_run() -> Any:
    from kfp_server_api import PipelineTaskDetailChildTask, V2beta1ArtifactList

    return kfp_run(
        "SUCCEEDED",
        [
            task("train-push-register-serve", "SUCCEEDED", 0, 9),
            task(
                "train-model",
                "SUCCEEDED",
                0,
                1,
                outputs={
                    "modelkit_dir": V2beta1ArtifactList(artifact_ids=["11"]),
                    "metrics": V2beta1ArtifactList(artifact_ids=["12"]),
                },
            ),
            task("push-modelkit-driver", "SUCCEEDED", 1, 2),
            task(
                "push-modelkit",
                "SUCCEEDED",
                2,
                3,
                child_tasks=[PipelineTaskDetailChildTask(task_id="x", pod_name="push-pod-1")],
            ),
            task(
                "register-model",
                "SUCCEEDED",
                3,
                4,
                pod_name="register-pod",
                outputs={"registered_model": V2beta1ArtifactList(artifact_ids=["21"])},
            ),
        ],
    )


def test_step_states_read_kfp_server_api_models() -> None:
    run = succeeded_run()
    steps = {s.name: s for s in step_states(run)}
    assert run_state(run) == "SUCCEEDED"
    assert steps["train-model"].outputs == {"modelkit_dir": ["11"], "metrics": ["12"]}
    assert (steps["train-model"].chain_step, steps["train-model"].seconds) == ("train", 60.0)
    assert (steps["push-modelkit"].pod_name, steps["register-model"].pod_name) == (
        "push-pod-1",
        "register-pod",
    )
    assert steps["push-modelkit-driver"].chain_step == "push"
    assert steps["train-push-register-serve"].chain_step == ""
    assert step_outputs(run, "register") == {"registered_model": ["21"]}
    assert step_outputs(run, "train-model") == step_outputs(run, "train")
    # Parameter outputs (push's digest) are not in KFP's run API: only artifact ids are.
    assert step_outputs(run, "push") == {}
    assert summarize_steps(run) == (
        "train-model SUCCEEDED 60.0s, push-modelkit SUCCEEDED 60.0s, register-model SUCCEEDED 60.0s"
    )


class Response:
    """What kfp_server_api's REST layer hands to ApiClient.deserialize."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body)


def test_a_failed_run_deserialized_from_api_json_names_the_failed_step() -> None:
    from kfp_server_api import ApiClient

    body = {
        "run_id": RUN_ID,
        "state": "FAILED",
        "error": {"code": 2, "message": "pipeline failed"},
        "run_details": {
            "task_details": [
                # KFP lists the root DAG first; it fails after the step that caused it.
                {
                    "display_name": "train-push-register-serve",
                    "state": "FAILED",
                    "end_time": "2025-01-01T12:05:00Z",
                },
                {"display_name": "train-model", "state": "SUCCEEDED", "end_time": "2025-01-01T12:01:00Z"},
                {
                    "display_name": "push-modelkit",
                    "state": "FAILED",
                    "start_time": "2025-01-01T12:01:00Z",
                    "end_time": "2025-01-01T12:02:30Z",
                    "pod_name": "train-push-register-serve-abc-system-container-impl-123",
                    "error": {"code": 2, "message": "registry kind-registry:5000 refused the credentials"},
                    "outputs": {},
                },
            ]
        },
    }
    run = ApiClient().deserialize(Response(body), "V2beta1Run")
    assert run_state(run) == "FAILED"
    push = next(s for s in step_states(run) if s.name == "push-modelkit")
    assert (push.state, push.seconds) == ("FAILED", 90.0)
    step, message = describe_run_failure(run)
    assert step == "push"
    assert message == (
        f"pipeline run {RUN_ID} ended FAILED: step push-modelkit FAILED "
        "(pod train-push-register-serve-abc-system-container-impl-123): "
        "registry kind-registry:5000 refused the credentials"
    )


def test_a_failure_without_task_details_falls_back_to_the_run_error() -> None:
    run = kfp_run("FAILED", [], error="workflow could not be created")
    assert describe_run_failure(run) == (
        "pipeline",
        f"pipeline run {RUN_ID} ended FAILED: workflow could not be created",
    )


def test_waiting_survives_an_unreachable_api_and_stops_at_a_final_state() -> None:
    answers: list[Any] = [
        kfp_run("RUNNING", [task("train-model", "RUNNING", 0, None)]),
        # What kfp_server_api's urllib3 raises when the forward's port refuses the connection.
        urllib3.exceptions.MaxRetryError(
            urllib3.HTTPConnectionPool("127.0.0.1", 1), "/apis/v2beta1/runs", ConnectionRefusedError(111)
        ),
        succeeded_run(),
    ]
    revived: list[bool] = []

    def get_run(run_id: str) -> Any:
        assert run_id == RUN_ID
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    run = wait_for_run(get_run, RUN_ID, 10, interval=0, on_unreachable=lambda: revived.append(True))
    assert (run_state(run), revived, answers) == ("SUCCEEDED", [True], [])


def test_waiting_times_out_saying_where_the_run_stood() -> None:
    running = kfp_run(
        "RUNNING", [task("train-model", "SUCCEEDED", 0, 1), task("push-modelkit", "RUNNING", 1, None)]
    )
    with pytest.raises(RunTimedOut) as timed_out:
        wait_for_run(lambda run_id: running, RUN_ID, 0.2, interval=0.05)
    assert f"pipeline run {RUN_ID} not finished after 0s (RUNNING; " in timed_out.value.message
    assert "train-model SUCCEEDED 60.0s, push-modelkit RUNNING" in timed_out.value.message
    assert timed_out.value.run is running


# --- Model Registry ----------------------------------------------------------------------


def mr_version(version_id: str, name: str, **properties: Any) -> Any:
    import mr_openapi
    from model_registry.types import ModelVersion

    kinds = {str: "string", float: "double", int: "int"}
    custom = {
        key: {
            f"{kinds[type(value)]}_value": str(value) if isinstance(value, int) else value,
            "metadataType": f"Metadata{kinds[type(value)].capitalize()}Value",
        }
        for key, value in properties.items()
    }
    return ModelVersion.from_basemodel(
        mr_openapi.ModelVersion.from_dict(
            {
                "id": version_id,
                "name": name,
                "registeredModelId": "1",
                "state": "LIVE",
                "author": "kubeflow-modelkit-lab",
                "createTimeSinceEpoch": "1735732800000",
                "customProperties": custom,
            }
        )
    )


def mr_artifact(uri: str, source_id: str | None, kind: str | None = "kfp") -> Any:
    import mr_openapi
    from model_registry.types import ModelArtifact

    body = {
        "id": "9",
        "name": "iris-classifier-e2e",
        "artifactType": "model-artifact",
        "uri": uri,
        "modelFormatName": "sklearn",
        "modelFormatVersion": "1",
        "modelSourceClass": "pipelinerun",
        "modelSourceGroup": "kubeflow",
        "modelSourceName": "train-push-register-serve",
    }
    if source_id is not None:
        body["modelSourceId"] = source_id
    if kind is not None:
        body["modelSourceKind"] = kind
    return ModelArtifact.from_basemodel(mr_openapi.ModelArtifact.from_dict(body))


def test_the_version_with_lineage_to_the_run_is_found_and_its_digest_read() -> None:
    mine = mr_version(
        "7", "1.0.0-5f1c2a9e", digest=DIGEST, modelkit_reference=REFERENCE, metric_accuracy=0.97
    )
    older = mr_version("3", "1.0.0", digest="sha256:" + "cd" * 32)
    records = [
        (mine, mr_artifact(f"kit://{REFERENCE}", RUN_ID)),
        (older, mr_artifact("kit://kind-registry:5000/lab/x@sha256:" + "cd" * 32, "an-older-run")),
    ]
    version, artifact = find_run_version("iris-classifier-e2e", RUN_ID, records)
    assert (version.name, version.id) == ("1.0.0-5f1c2a9e", "7")
    assert registered_reference(version, artifact) == REFERENCE


def test_missing_lineage_names_what_the_newest_versions_point_at() -> None:
    records = iter(
        [
            (mr_version("3", "1.0.0"), mr_artifact(f"kit://{REFERENCE}", "an-older-run")),
            (mr_version("2", "0.9.0"), None),
        ]
    )
    with pytest.raises(CheckFailed) as failed:
        find_run_version("iris-classifier-e2e", RUN_ID, records)
    assert failed.value.check == "model-registry"
    assert failed.value.message == (
        f"model-registry: no version of iris-classifier-e2e has model_source_id {RUN_ID} (this run); "
        "newest versions:"
    )
    assert failed.value.details == [
        "version 1.0.0 (id 3): model_source_kind='kfp', model_source_id='an-older-run'",
        "version 0.9.0 (id 2): no model artifact",
    ]
    with pytest.raises(CheckFailed, match="model iris-classifier-e2e has no versions"):
        find_run_version("iris-classifier-e2e", RUN_ID, [])


def test_lineage_of_another_source_kind_is_refused() -> None:
    records = [(mr_version("7", "1.0.0"), mr_artifact(f"kit://{REFERENCE}", RUN_ID, kind="manual"))]
    with pytest.raises(
        CheckFailed, match="names run .* but its model_source_kind is 'manual', expected 'kfp'"
    ):
        find_run_version("iris-classifier-e2e", RUN_ID, records)


def test_a_version_whose_copies_of_the_digest_differ_is_refused() -> None:
    other = "sha256:" + "ef" * 32
    version = mr_version("7", "1.0.0", digest=other, modelkit_reference=REFERENCE)
    with pytest.raises(CheckFailed) as failed:
        registered_reference(version, mr_artifact(f"kit://{REFERENCE}", RUN_ID))
    assert f"custom property digest='{other}' (expected '{DIGEST}')" in failed.value.message
    with pytest.raises(CheckFailed, match="has artifact URI 's3://bucket/model', expected kit://"):
        registered_reference(version, mr_artifact("s3://bucket/model", RUN_ID))


# --- InferenceService --------------------------------------------------------------------


def inference_service(
    storage_uri: str, conditions: list[dict[str, str]], observed: int = 1
) -> dict[str, Any]:
    """An InferenceService as CustomObjectsApi returns it: the serve step's spec plus KServe's status."""
    from kserve import KnativeCondition

    from lab.kube import to_manifest
    from lab.pipeline.steps import build_inference_service

    isvc = to_manifest(build_inference_service("iris-classifier-e2e", "kubeflow", storage_uri, "sklearn"))
    isvc["metadata"].update(generation=1, resourceVersion="4242", uid="0d3c")
    isvc["status"] = {
        "conditions": [
            to_manifest(KnativeCondition(last_transition_time="2025-01-01T12:09:00Z", **c))
            for c in conditions
        ],
        "observedGeneration": observed,
        "url": "http://iris-classifier-e2e-kubeflow.example.com",
        "address": {"url": "http://iris-classifier-e2e-predictor.kubeflow.svc.cluster.local"},
        "deploymentMode": "RawDeployment",
    }
    return isvc


READY = [
    {"type": "IngressReady", "status": "True"},
    {"type": "PredictorReady", "status": "True"},
    {"type": "Ready", "status": "True"},
]


def test_a_ready_inference_service_serving_the_pushed_digest_passes() -> None:
    isvc = inference_service(f"kit://{REFERENCE}", READY)
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == f"kit://{REFERENCE}"
    assert check_inference_service(isvc, f"kit://{REFERENCE}") == f"kit://{REFERENCE}"
    assert check_inference_service(isvc, None) == f"kit://{REFERENCE}"


def test_an_inference_service_that_is_not_ready_lists_its_conditions() -> None:
    conditions = [
        {"type": "PredictorReady", "status": "False", "reason": "RevisionMissing", "message": "Init:Error"},
        {"type": "Ready", "status": "False", "reason": "RevisionMissing"},
    ]
    with pytest.raises(CheckFailed) as failed:
        check_inference_service(inference_service(f"kit://{REFERENCE}", conditions), f"kit://{REFERENCE}")
    assert failed.value.check == "inference-service"
    assert failed.value.message.startswith(
        "inference-service: InferenceService kubeflow/iris-classifier-e2e is not Ready: "
        "PredictorReady=False RevisionMissing: Init:Error; Ready=False RevisionMissing"
    )
    with pytest.raises(CheckFailed, match="is not Ready: no conditions reported yet"):
        check_inference_service(inference_service(f"kit://{REFERENCE}", []), None)


def test_an_inference_service_serving_another_digest_or_a_stale_status_fails() -> None:
    other = f"kit://kind-registry:5000/lab/iris-classifier-e2e@sha256:{'ef' * 32}"
    with pytest.raises(CheckFailed) as failed:
        check_inference_service(inference_service(other, READY), f"kit://{REFERENCE}")
    assert failed.value.message == (
        f"inference-service: InferenceService kubeflow/iris-classifier-e2e serves {other}, "
        f"but the run pushed kit://{REFERENCE}"
    )
    stale = inference_service(f"kit://{REFERENCE}", READY, observed=1)
    stale["metadata"]["generation"] = 2
    with pytest.raises(CheckFailed, match="reports Ready for generation 1, but its spec is at generation 2"):
        check_inference_service(stale, f"kit://{REFERENCE}")


# --- the registry --------------------------------------------------------------------------


def test_the_pushed_digest_is_checked_in_a_real_registry() -> None:
    config = new_lab()
    try:
        local.up(config, QUIET, ("registry",))
        digest = push_modelkit_raw(config.registry_host, "lab/iris-classifier-e2e", "1.0.0", [])
        pushed = f"kind-registry:5000/lab/iris-classifier-e2e@{digest}"
        expected = f"{config.registry_host}/lab/iris-classifier-e2e@{digest}"
        assert host_reference(config, pushed) == expected
        assert check_in_registry(config, pushed) == expected

        missing = f"kind-registry:5000/lab/iris-classifier-e2e@sha256:{'0' * 64}"
        with pytest.raises(CheckFailed) as failed:
            check_in_registry(config, missing)
        assert failed.value.check == "registry"
        assert f"not found in registry {config.registry_host}" in failed.value.message
        assert f"(pushed by the run as {missing})" in failed.value.message
        with pytest.raises(
            CheckFailed, match="pushed ghcr.io/lab/x@sha256:.* to ghcr.io, not to the lab registry"
        ):
            check_in_registry(config, f"ghcr.io/lab/x@{digest}")
    finally:
        destroy(config)


# --- port-forwards -------------------------------------------------------------------------


TARGET = ForwardTarget("KFP API", "kubeflow", "svc/ml-pipeline", 8888)


def http_server(directory: Path) -> Any:
    """Stands in for kubectl: something that listens on the local port it is given."""

    def argv(target: ForwardTarget, port: int) -> list[str]:
        assert target == TARGET
        return [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(directory),
            str(port),
        ]

    return argv


def test_the_kubectl_command_forwards_on_loopback_through_the_lab_context() -> None:
    argv = kubectl_forward_argv("/lab/bin/kubectl", "kind-kubeflow-lab")(TARGET, 40123)
    assert argv == [
        "/lab/bin/kubectl",
        "--context",
        "kind-kubeflow-lab",
        "--namespace",
        "kubeflow",
        "port-forward",
        "--address",
        "127.0.0.1",
        "svc/ml-pipeline",
        "40123:8888",
    ]


def test_cluster_mode_forwards_name_their_kubeconfig() -> None:
    argv = kubectl_forward_argv("kubectl", "shared", "/home/me/shared.kubeconfig")(TARGET, 40123)
    assert argv[:5] == ["kubectl", "--kubeconfig", "/home/me/shared.kubeconfig", "--context", "shared"]


def test_lab_port_forward_opens_on_its_configured_port_without_waiting(tmp_path: Path) -> None:
    # `lab port-forward` starts before the pods may answer and revives its forwards instead.
    (tmp_path / "healthz").write_text("ok")
    port = free_port()
    with port_forwards(http_server(tmp_path), tmp_path / "logs", log_prefix="port-forward") as forwards:
        forward = forwards.open(TARGET, port, wait=False)
        assert forward.local_port == port
        for _ in range(100):
            if answers(port):
                break
            time.sleep(0.1)
        assert requests.get(f"{forward.url}/healthz", timeout=5).text == "ok"
    assert not answers(port)
    assert (tmp_path / "logs" / "port-forward-kfp-api.log").is_file()


def test_cluster_mode_asks_the_registry_it_was_given() -> None:
    config = dataclasses.replace(new_lab(), mode="cluster", cluster_registry="registry.example:5000")
    try:
        pushed = f"registry.example:5000/lab/iris-classifier-e2e@{DIGEST}"
        assert host_reference(config, pushed) == pushed
    finally:
        destroy(config)


def test_forwards_answer_inside_the_block_and_are_stopped_after_it(tmp_path: Path) -> None:
    (tmp_path / "healthz").write_text("ok")
    sigterm_before = signal.getsignal(signal.SIGTERM)
    with port_forwards(http_server(tmp_path), tmp_path / "logs", ready_timeout=15) as forwards:
        forward = forwards.open(TARGET)
        assert requests.get(f"{forward.url}/healthz", timeout=5).text == "ok"
        assert signal.getsignal(signal.SIGTERM) is not sigterm_before
        # A forward that dies (its pod replaced) comes back on the same port.
        forward.process.kill()
        forward.process.wait()
        assert forwards.revive() == ["KFP API"]
        port, process = forward.local_port, forward.process
        assert forwards.forwards[0].local_port == port
    assert process.poll() is not None
    assert not answers(port)
    assert signal.getsignal(signal.SIGTERM) is sigterm_before
    assert (tmp_path / "logs" / "e2e-port-forward-kfp-api.log").is_file()


def test_revived_forward_answers_again(tmp_path: Path) -> None:
    (tmp_path / "healthz").write_text("ok")
    with port_forwards(http_server(tmp_path), tmp_path / "logs", ready_timeout=15) as forwards:
        forward = forwards.open(TARGET)
        forward.process.kill()
        forward.process.wait()
        forwards.revive()
        # The restarted child binds the same port a moment later.
        for _ in range(50):
            if answers(forward.local_port):
                break
            time.sleep(0.1)
        assert requests.get(f"{forward.url}/healthz", timeout=5).text == "ok"


def test_forwards_are_stopped_when_the_block_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="the run failed"):
        with port_forwards(http_server(tmp_path), tmp_path / "logs", ready_timeout=15) as forwards:
            forward = forwards.open(TARGET)
            raise RuntimeError("the run failed")
    assert forward.process.poll() is not None
    assert not answers(forward.local_port)


def test_a_forward_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    def failing(target: ForwardTarget, port: int) -> list[str]:
        message = f'error: services "ml-pipeline" not found (port {port})'
        return [sys.executable, "-c", f"import sys; print({message!r}); sys.exit(1)"]

    with port_forwards(failing, tmp_path / "logs", ready_timeout=5) as forwards:
        with pytest.raises(LabError) as failed:
            forwards.open(TARGET)
        assert forwards.forwards == []
    assert failed.value.message.startswith(
        "port-forward to KFP API (kubeflow/svc/ml-pipeline:8888) did not answer within 5s (3 attempts)"
    )
    assert any('services "ml-pipeline" not found' in line for line in failed.value.details)


# --- the command -------------------------------------------------------------------------


def lab_without_engine(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``lab`` with a PATH that has no docker or podman, whatever this machine has."""
    config = new_lab()
    empty = tmp_path / "empty-path"
    empty.mkdir()
    try:
        env = {**cli_env(config), "PATH": str(empty)}
        return subprocess.run(
            [sys.executable, "-m", "lab", *argv], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        destroy(config)


def test_e2e_without_a_container_engine_names_it_and_the_remedy(tmp_path: Path) -> None:
    result = lab_without_engine(tmp_path, "e2e", "--mode", "kind")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    first, *details = result.stderr.strip().splitlines()
    assert first.startswith("ERROR: kind mode needs a container engine and none answers (docker, podman): ")
    assert "install and start Docker (https://docs.docker.com/engine/install/) or Podman" in first
    assert "`pytest tests/e2e/test_local_chain.py`" in first
    assert [line.strip() for line in details] == ["docker: not on PATH", "podman: not on PATH"]


def test_e2e_local_mode_points_at_the_local_test(tmp_path: Path) -> None:
    result = lab_without_engine(tmp_path, "e2e", "--mode", "local")
    assert result.returncode == 2
    assert "`pytest tests/e2e/test_local_chain.py`" in result.stderr
    assert "Traceback" not in result.stderr


def test_e2e_help_and_a_bad_timeout() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "lab", "e2e", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
    )
    assert shown.returncode == 0
    for option in (
        "--mode {kind,cluster,local}",
        "--kubeconfig FILE",
        "--context CONTEXT",
        "--registry HOST[:PORT]",
        "--timeout SECONDS",
        "--keep",
    ):
        assert option in shown.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "lab", "e2e", "--timeout", "0"], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert "the timeout must be positive, got 0" in refused.stderr


def test_demo_in_kind_mode_takes_the_same_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lab.pipeline.demo import run_on_cluster
    from lab.pipeline.run_arguments import demo_arguments

    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    config = new_lab()
    try:
        with pytest.raises(LabError) as refused:
            run_on_cluster(config, QUIET, demo_arguments("1.0.0", VersionPolicy.FAIL))
        assert refused.value.message.startswith("kind mode needs a container engine and none answers")
        assert "`LAB_MODE=local lab demo`" in refused.value.message
    finally:
        destroy(config)
