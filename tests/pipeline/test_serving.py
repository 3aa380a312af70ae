"""train → serve → predict for real: the real KServe model server on loopback, V1 and V2.

No kit is needed: the model server serves the trained ModelKit directory directly. The
InferenceService the cluster's serve step creates is built from the kserve SDK models and
validated against the InferenceService CRD schema of the pinned KServe release.
"""
# No `from __future__ import annotations`: this module defines KFP components.

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import joblib
import jsonschema
import pytest
import requests
import yaml
from kfp import dsl
from kubernetes.client import ApiClient

from lab.local.model_server_process import model_server_process, stop_model_server
from lab.local.processes import PortTaken, port_is_free, wait_until
from lab.loopback_ports import free_port
from lab.pipeline.components import python_components
from lab.pipeline.local_run import execute_locally
from lab.pipeline.model_server import find_model_file
from lab.pipeline.modelkit_ref import ModelKitRef
from lab.pipeline.scripts import ScriptFailed
from lab.pipeline.serving import (
    model_server_status,
    release_standby,
    serve_modelkit,
    serving_dir,
    standby_import_seconds,
    standby_waiting,
    start_model_server,
    start_standby,
    stop_standby,
)
from lab.pipeline.steps import build_inference_service, read_split, train_classifier
from tests.conftest import NO_MIRROR, UPSTREAM_MIRROR
from tests.pipeline_fixtures.chain_fixtures import QUIET, cli_env, destroy, new_lab

ISVC_CRD = Path("kserve-v0.20.0/config/crd/full/serving.kserve.io_inferenceservices.yaml")
MODEL = "iris-classifier"


def serve_trained(modelkit_dir: dsl.Input[dsl.Artifact], model_name: str, lab_home: str, port: int) -> str:
    import os
    from pathlib import Path

    from lab.config import load_config
    from lab.pipeline.serving import start_model_server

    config = load_config(env={**os.environ, "LAB_HOME": lab_home, "LAB_MODEL_SERVER_PORT": str(port)})
    return start_model_server(config, Path(modelkit_dir.path), model_name)


def lab_cli(config, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab", *argv], env=cli_env(config), capture_output=True, text=True, check=True
    )


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as /proc shows them) with a listening socket on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            cols = row.split()
            address, _, hex_port = cols[1].rpartition(":")
            if cols[3] == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_train_serve_predict_in_a_real_kfp_local_run() -> None:
    config = new_lab()
    components = python_components(config, cluster=False)
    serve = dsl.component(serve_trained, base_image=config.versions.python_image, install_kfp_package=False)

    @dsl.pipeline(name="train-serve-predict")
    def train_serve_predict() -> dsl.Artifact:
        trained = components["train"](
            dataset="iris", model_name=MODEL, description="test", author="lab", seed=42, test_size=0.25
        )
        served = serve(
            modelkit_dir=trained.outputs["modelkit_dir"],
            model_name=MODEL,
            lab_home=str(config.home),
            port=config.ports.model_server,
        )
        checked = components["predict"](
            serving_url=served.output, model_name=MODEL, reference=trained.outputs["modelkit_dir"]
        )
        return checked.outputs["predictions"]

    try:
        run = execute_locally(config, QUIET, train_serve_predict, {})
        assert set(run.timings) == {"train", "serve-trained", "predict"}
        predictions = run.outputs["Output"]
        result = json.loads(Path(predictions.path).read_text())
        modelkit = next(
            (config.home / "pipeline-root").glob("train-serve-predict-*/train-model/modelkit_dir")
        )
        rows, labels = read_split(str(modelkit / "test.csv"))
        direct = joblib.load(modelkit / "model.joblib").predict(rows).tolist()
        assert result["direct"] == result["v1"] == result["v2"] == direct
        assert result["rows"] == len(labels) == 38
        assert predictions.metadata["v1_sample"] == direct[:5]

        url = predictions.metadata["serving_url"]
        assert url == f"http://127.0.0.1:{config.ports.model_server}"
        assert listening_addresses(config.ports.model_server) == {"0100007F"}  # 127.0.0.1 only
        v1 = requests.post(
            f"{url}/v1/models/{MODEL}:predict", json={"instances": rows[:3]}, timeout=10
        ).json()
        assert v1 == {"predictions": direct[:3]}
        assert model_server_process(config).pid_file.is_file()
        assert (config.log_dir / "model-server.log").is_file()
    finally:
        assert stop_model_server(config)
        assert not model_server_process(config).pid_file.exists()
        assert port_is_free(config.ports.model_server)
        shutil.rmtree(config.home, ignore_errors=True)


def test_a_failed_fetch_keeps_the_model_being_served(tmp_path: Path) -> None:
    config = new_lab()
    try:
        train_classifier(str(tmp_path / "modelkit"), "iris", MODEL, "d", "lab", 1, 0.25)
        shutil.copytree(tmp_path / "modelkit", serving_dir(config, MODEL))
        url = start_model_server(config, serving_dir(config, MODEL), MODEL)
        missing = ModelKitRef.parse(f"{config.registry_host}/lab/{MODEL}@sha256:" + "0" * 64)
        with pytest.raises(ScriptFailed):
            serve_modelkit(config, missing, MODEL, plain_http=True)
        assert requests.get(f"{url}/v1/models/{MODEL}", timeout=5).json()["ready"] is True
        assert sorted(p.name for p in serving_dir(config, MODEL).parent.iterdir()) == [MODEL]
    finally:
        destroy(config)


def test_a_port_held_by_a_stranger_is_named_with_its_setting(tmp_path: Path) -> None:
    with socket.socket() as stranger:
        # The stranger binds first, the lab is then given its port: a port picked free and bound
        # only after training could be taken meanwhile by another test worker's server.
        stranger.bind(("127.0.0.1", free_port()))
        stranger.listen()
        config = new_lab(LAB_MODEL_SERVER_PORT=str(stranger.getsockname()[1]))
        train_classifier(str(tmp_path / "modelkit"), "iris", MODEL, "d", "lab", 1, 0.25)
        try:
            with pytest.raises(PortTaken, match="choose another port with LAB_MODEL_SERVER_PORT=<port>"):
                start_model_server(config, tmp_path / "modelkit", MODEL)
        finally:
            destroy(config)


def test_the_model_directory_must_hold_exactly_one_model(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must hold exactly one model file .* found: none"):
        find_model_file(tmp_path)
    (tmp_path / "a.joblib").write_bytes(b"")
    (tmp_path / "b.pkl").write_bytes(b"")
    with pytest.raises(ValueError, match="found: a.joblib, b.pkl"):
        find_model_file(tmp_path)


def test_inference_service_from_kserve_models_matches_the_crd_schema() -> None:
    uri = "kit://kind-registry:5000/lab/iris-classifier@sha256:" + "c" * 64
    isvc = ApiClient().sanitize_for_serialization(build_inference_service(MODEL, "kubeflow", uri, "sklearn"))
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1" and isvc["kind"] == "InferenceService"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    model = isvc["spec"]["predictor"]["model"]
    assert (model["modelFormat"], model["storageUri"]) == ({"name": "sklearn"}, uri)
    if UPSTREAM_MIRROR is None:
        pytest.skip(NO_MIRROR)
    crd = yaml.load(
        (UPSTREAM_MIRROR / ISVC_CRD).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    )  # 2 MB
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    # OpenAPI v3 schemas are draft-4 JSON Schema (plus x-kubernetes-* hints a validator ignores).
    jsonschema.Draft4Validator(version["schema"]["openAPIV3Schema"]).validate(isvc)
    with pytest.raises(ValueError, match="must be kit://host:port/repo@sha256:<digest>"):
        build_inference_service(MODEL, "kubeflow", "kit://kind-registry:5000/lab/iris:v1", "sklearn")


def test_lab_status_shows_the_model_server_pid_url_model_and_readiness(tmp_path: Path) -> None:
    config = new_lab()
    try:
        train_classifier(str(tmp_path / "modelkit"), "iris", MODEL, "d", "lab", 1, 0.25)
        url = start_model_server(config, tmp_path / "modelkit", MODEL)
        pid = model_server_process(config).pid()
        report = json.loads(lab_cli(config, "status", "--json", "--mode", "local").stdout)
        row = next(c for c in report["components"] if c["name"] == "model-server")
        assert (row["state"], row["pid"], row["url"], row["model"], row["ready"]) == (
            "ready",
            pid,
            url,
            MODEL,
            True,
        )
        table = lab_cli(config, "status", "--mode", "local").stdout.splitlines()
        line = next(i for i, text in enumerate(table) if text.startswith("model-server "))
        assert table[line].split()[1:4] == ["ready", url, str(pid)]
        assert table[line + 1].strip() == f"model {MODEL} ready at {url}/v1/models/{MODEL}"

        stop_model_server(config)
        report = json.loads(lab_cli(config, "status", "--json", "--mode", "local").stdout)
        row = next(c for c in report["components"] if c["name"] == "model-server")
        assert (row["state"], row["pid"], row["ready"]) == ("stopped", None, False)
    finally:
        destroy(config)


def test_a_standby_imports_ahead_serves_once_released_and_is_dead_when_killed(tmp_path: Path) -> None:
    config = new_lab()
    process = model_server_process(config)
    try:
        train_classifier(str(tmp_path / "modelkit"), "iris", MODEL, "d", "lab", 1, 0.25)
        started = time.time()
        assert start_standby(config, MODEL)
        standby = process.pid()
        assert standby is not None and not start_standby(config, MODEL), "one model server at a time"
        row = model_server_status(config)
        assert (row["state"], row["pid"], row["model"]) == ("starting", standby, MODEL)
        assert standby_waiting(config, MODEL)
        # Its imports finish on their own; it binds nothing before it has its model.
        wait_until(lambda: standby_import_seconds(config, started) is not None, 120, interval=0.1)
        assert 0 < standby_import_seconds(config, started) < time.time() - started + 0.01
        assert port_is_free(config.ports.model_server)

        # The serve step's storage initializer fails: the standby is left waiting, the demo stops it.
        missing = ModelKitRef.parse(f"{config.registry_host}/lab/{MODEL}@sha256:" + "0" * 64)
        with pytest.raises(ScriptFailed):
            serve_modelkit(config, missing, MODEL, plain_http=True)
        assert process.pid() == standby and standby_waiting(config, MODEL)

        shutil.copytree(tmp_path / "modelkit", serving_dir(config, MODEL))
        url = release_standby(config, MODEL)
        assert process.pid() == standby, "released, not restarted"
        assert not standby_waiting(config, MODEL)
        rows, _ = read_split(str(tmp_path / "modelkit" / "test.csv"))
        direct = joblib.load(tmp_path / "modelkit" / "model.joblib").predict(rows[:3]).tolist()
        answer = requests.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": rows[:3]}, timeout=10)
        assert answer.json() == {"predictions": direct}
        assert model_server_status(config)["state"] == "ready"
        stop_standby(config, MODEL)
        assert process.pid() == standby, "stop_standby leaves a released server alone"

        # Killed: the very next status says so (nothing is remembered from the last look).
        os.kill(standby, signal.SIGKILL)
        wait_until(lambda: process.pid() is None, 10, interval=0.02)
        row = model_server_status(config)
        assert row["state"] == "stale" and row["pid"] is None and row["ready"] is False
    finally:
        stop_model_server(config)
        # A killed process's listening socket is closed by the kernel just after it is gone.
        wait_until(lambda: port_is_free(config.ports.model_server), 5, interval=0.02)
        shutil.rmtree(config.home, ignore_errors=True)


def test_a_standby_the_chain_never_reached_is_stopped(tmp_path: Path) -> None:
    config = new_lab()
    try:
        assert start_standby(config, MODEL)
        pid = model_server_process(config).pid()
        stop_standby(config, MODEL)
        assert model_server_process(config).pid() is None
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        assert not any(config.run_dir.glob("model-server.go*"))
    finally:
        stop_model_server(config)
        shutil.rmtree(config.home, ignore_errors=True)
