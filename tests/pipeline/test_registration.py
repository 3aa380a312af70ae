"""Registering the ModelKit: version policies over what the Model Registry client returns.

The policy is a function of the client's own types (``ModelVersion``/``ModelArtifact``);
registration against a Model Registry that is down must name its URL, in the function and
in the pipeline step. Against a real Model Registry server the round trip runs when the
server binary exists here.
"""
# No `from __future__ import annotations`: this module defines KFP components.

import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kfp import dsl
from model_registry import ModelRegistry
from model_registry.types import ModelArtifact, ModelVersion

from lab import local
from lab.config import LabConfig, load_config
from lab.loopback_ports import free_port
from lab.pipeline import VersionPolicy
from lab.pipeline.components import python_components
from lab.pipeline.local_run import ChainStepFailed, execute_locally
from lab.pipeline.registration import decide_version, register_modelkit
from lab.pipeline.steps import lineage_from_env
from tests.pipeline_fixtures.chain_fixtures import QUIET, destroy, new_lab, require

DIGEST_REF = "127.0.0.1:5001/lab/iris@sha256:" + "a" * 64
URI = f"kit://{DIGEST_REF}"
OTHER_URI = "kit://127.0.0.1:5001/lab/iris@sha256:" + "b" * 64
CREATED_MS = "1767225600000"  # 2026-01-01T00:00:00Z


def registry_with(*versions: tuple[str, str, str]) -> Callable[[str], tuple[Any, Any]]:
    """A lookup answering like the client: (ModelVersion, ModelArtifact) per existing version."""
    found = {
        name: (
            ModelVersion(name=name, id=version_id, create_time_since_epoch=CREATED_MS, author="lab"),
            ModelArtifact(name="iris", uri=uri, model_format_name="sklearn"),
        )
        for name, version_id, uri in versions
    }
    return lambda name: found.get(name, (None, None))


def test_a_new_version_is_registered_under_every_policy() -> None:
    for policy in VersionPolicy:
        decision = decide_version(policy, "iris", "1.0.0", URI, registry_with(), "run12345")
        assert decision == {"action": "register", "version": "1.0.0", "version_id": None}


def test_fail_says_which_version_exists_with_its_id_uri_and_creation_time() -> None:
    with pytest.raises(RuntimeError) as failure:
        decide_version("fail", "iris", "1.0.0", URI, registry_with(("1.0.0", "7", OTHER_URI)), "run12345")
    message = str(failure.value)
    assert message.startswith("Version 1.0.0 already exists for model iris (id 7, URI ")
    assert OTHER_URI in message and "created 2026-01-01T00:00:00Z" in message
    assert "--version-policy suffix" in message
    # The doctor's mr-version-exists check recognises it (StoreError wording of the client).
    check = pytest.importorskip("lab.doctor.checks.mr_version_exists")
    assert check.ALREADY_EXISTS.search(message).group("version") == "1.0.0"


def test_suffix_registers_the_next_free_name() -> None:
    lookup = registry_with(("1.0.0", "7", URI), ("1.0.0-run12345", "8", URI), ("1.0.0-run12345-2", "9", URI))
    decision = decide_version("suffix", "iris", "1.0.0", URI, lookup, "run12345")
    assert decision == {"action": "register", "version": "1.0.0-run12345-3", "version_id": None}


def test_reuse_keeps_the_same_digest_and_refuses_other_content() -> None:
    lookup = registry_with(("1.0.0", "7", URI))
    assert decide_version("reuse", "iris", "1.0.0", URI, lookup, "r") == {
        "action": "reuse",
        "version": "1.0.0",
        "version_id": "7",
    }
    with pytest.raises(RuntimeError, match=re.escape(f"with other content than {OTHER_URI}")):
        decide_version("reuse", "iris", "1.0.0", OTHER_URI, lookup, "r")


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown version policy 'overwrite'; choose fail, suffix or reuse"):
        decide_version("overwrite", "iris", "1.0.0", URI, registry_with(), "r")


def test_the_version_policy_is_read_once_and_reaches_the_pipeline_as_its_word() -> None:
    from lab.cli import build_parser
    from lab.pipeline.run_arguments import demo_arguments

    args = build_parser().parse_args(["demo", "--version-policy", "reuse"])
    assert VersionPolicy(args.version_policy) is VersionPolicy.REUSE
    parameter = demo_arguments("1.0.0", VersionPolicy.REUSE)["version_policy"]
    assert parameter == "reuse" and type(parameter) is str  # a KFP string parameter
    with pytest.raises(ValueError):
        demo_arguments("1.0.0", "overwrite")
    # The register step reads the parameter where the enum is absent: the same words, plain.
    for policy in VersionPolicy:
        decide_version(policy.value, "iris", "1.0.0", URI, registry_with(), "r")


def test_lineage_comes_from_the_kfp_environment_first() -> None:
    env = {
        "KFP_RUN_ID": "run-1",
        "KFP_PIPELINE_NAME": "train-push-register-serve",
        "KFP_POD_NAMESPACE": "kubeflow",
    }
    assert lineage_from_env(env, "placeholder-id", "placeholder-name", "local") == {
        "model_source_kind": "kfp",
        "model_source_class": "pipelinerun",
        "model_source_id": "run-1",
        "model_source_name": "train-push-register-serve",
        "model_source_group": "kubeflow",
    }
    assert lineage_from_env({}, "uuid", "name", "local")["model_source_id"] == "uuid"


def registration(url: str, version: str = "1.0.0", policy: str = "fail", uri: str = URI) -> dict[str, Any]:
    return register_with(url, version=version, policy=policy, uri=uri)


def register_with(
    url: str,
    *,
    version: str = "1.0.0",
    policy: str = "fail",
    uri: str = URI,
    token: str = "",
    connect_timeout: float = 3.0,
    total_timeout: float = 60.0,
) -> dict[str, Any]:
    return register_modelkit(
        registry_url=url,
        model_name="iris-classifier",
        version=version,
        modelkit_uri=uri,
        author="lab",
        description="test",
        model_format_name="sklearn",
        model_format_version="1",
        policy=policy,
        lineage=lineage_from_env({}, "run-abc", "train-push-register-serve", "local"),
        metadata={"digest": uri.rpartition("@")[2], "metric_accuracy": 0.97},
        token=token,
        suffix="run-abc",
        connect_timeout=connect_timeout,
        total_timeout=total_timeout,
    )


def test_model_registry_down_names_its_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(
        RuntimeError, match=re.escape(f"Model Registry at {url} is not reachable: connection refused")
    ):
        registration(url)


@contextmanager
def peer(
    status: int, body: str = "", *, hang: float = 0.0, content_type: str = "text/plain"
) -> Iterator[str]:
    """A loopback HTTP server standing in for a peer the registration meets by mistake.

    Another service (404), a Model Registry whose database is down (500), a gateway that wants
    or refuses a token (401/403), a server that accepts and never answers (``hang``).
    """
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            seen.append({"path": self.path, "authorization": self.headers.get("Authorization", "")})
            if hang:
                time.sleep(hang)
                return
            payload = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
    peer.seen = seen  # type: ignore[attr-defined]


def test_another_service_is_a_404_on_the_api_path() -> None:
    with peer(404, "404 page not found") as url:
        with pytest.raises(RuntimeError) as caught:
            registration(url)
    assert str(caught.value) == (
        f"Model Registry at {url} is not a Model Registry: GET {url}/api/model_registry/v1alpha3/"
        "registered_models?pageSize=1 answered 404 (behind a gateway, include its path prefix in the "
        "URL); is the URL that of the Model Registry REST server (v1alpha3)?"
    )


def test_a_server_error_is_reported_with_its_body() -> None:
    body = '{"code":"","message":"error connecting to database: connection refused"}'
    with peer(500, body, content_type="application/json") as url:
        with pytest.raises(RuntimeError) as caught:
            registration(url)
    assert str(caught.value) == f"Model Registry at {url} failed with a server error: 500 {body}"


def test_auth_required_and_refused_are_told_apart() -> None:
    with peer(401, "Unauthorized") as url:
        with pytest.raises(RuntimeError) as required:
            registration(url)
        with pytest.raises(RuntimeError) as refused:
            register_with(url, token="not-the-right-token")
    assert str(required.value) == (
        f"Model Registry at {url} requires a token, and none was given (MR_AUTH_TOKEN): 401 Unauthorized"
    )
    assert str(refused.value) == f"Model Registry at {url} refused the token: 401 Unauthorized"
    assert peer.seen[-1]["authorization"] == "Bearer not-the-right-token"  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="uses https, which needs a token: set MR_AUTH_TOKEN"):
        registration("https://127.0.0.1:8443")


def test_a_hung_server_times_out_after_the_configured_seconds() -> None:
    with peer(200, hang=10.0) as url:
        started = time.monotonic()
        with pytest.raises(RuntimeError) as caught:
            register_with(url, connect_timeout=1.0, total_timeout=1.5)
        elapsed = time.monotonic() - started
    assert str(caught.value) == (
        f"Model Registry at {url} timed out: no answer to GET {url}/api/model_registry/v1alpha3/"
        "registered_models?pageSize=1 within 1.5s"
    )
    assert elapsed < 5


def test_the_default_timeouts_come_from_the_config() -> None:
    config = load_config(env={"LAB_REGISTRATION_TIMEOUT": "12.5"})
    assert (config.registration_connect_timeout, config.registration_timeout) == (3.0, 12.5)
    assert (LabConfig().registration_connect_timeout, LabConfig().registration_timeout) == (3.0, 60.0)


def test_a_url_with_query_is_refused() -> None:
    with pytest.raises(ValueError, match="has a query or fragment; give http"):
        registration("http://127.0.0.1:8082/?x=1")


def metrics_of_training(metrics: dsl.Output[dsl.Metrics]) -> None:
    metrics.log_metric("accuracy", 0.97)


def test_register_step_reports_the_unreachable_model_registry() -> None:
    config = new_lab()
    url = f"http://127.0.0.1:{free_port()}"
    register = python_components(config, cluster=False)["register"]
    metrics = dsl.component(
        metrics_of_training, base_image=config.versions.python_image, install_kfp_package=False
    )

    @dsl.pipeline(name="register-while-down")
    def register_while_down() -> None:
        register(
            model_name="iris-classifier",
            version="1.0.0",
            modelkit_ref=DIGEST_REF,
            model_registry_url=url,
            author="lab",
            description="test",
            model_format_name="sklearn",
            model_format_version="1",
            version_policy="fail",
            dataset_uri="sklearn.datasets.load_iris",
            code_repo="",
            code_commit="",
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            pipeline_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            namespace="local",
            metrics=metrics().outputs["metrics"],
        )

    try:
        with pytest.raises(ChainStepFailed) as failure:
            execute_locally(config, QUIET, register_while_down, {})
        assert failure.value.step == "register"
        assert failure.value.reason.startswith(f"Model Registry at {url} is not reachable")
    finally:
        shutil.rmtree(config.home, ignore_errors=True)


def test_policies_against_a_real_model_registry(
    recwarn: pytest.WarningsRecorder, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    config = new_lab()
    try:
        require(config, "model-registry")
        local.up(config, QUIET, ("database", "model-registry"))
        url = f"http://127.0.0.1:{config.ports.model_registry}"
        first = registration(url)
        assert first["action"] == "register" and first["version"] == "1.0.0"
        assert (
            first["model_registry_url"]
            == f"{url}/api/model_registry/v1alpha3/model_versions/{first['version_id']}"
        )
        assert not [w for w in recwarn.list if "model_registry" in str(w.filename)]
        assert "port is not 80" not in caplog.text and "port is not 80" not in capfd.readouterr().err
        # The real server serves the API at its root: a path prefix is kept, not dropped, and the
        # 404 it then gets says so.
        with pytest.raises(RuntimeError, match=re.escape(f"GET {url}/gateway/api/model_registry/v1alpha3/")):
            registration(f"{url}/gateway")
        with pytest.raises(RuntimeError, match="Version 1.0.0 already exists for model iris-classifier"):
            registration(url)
        assert registration(url, policy="reuse") == {**first, "action": "reuse"}
        suffixed = registration(url, policy="suffix", uri=OTHER_URI)
        assert suffixed["version"] == "1.0.0-run-abc" and suffixed["version_id"] != first["version_id"]

        client = ModelRegistry(
            "http://127.0.0.1", config.ports.model_registry, author="test", is_secure=False
        )
        artifact = client.get_model_artifact("iris-classifier", "1.0.0")
        assert artifact.uri == URI
        assert (artifact.model_source_kind, artifact.model_source_class) == ("kfp", "pipelinerun")
        assert artifact.model_source_id == "run-abc"
        version = client.get_model_version("iris-classifier", "1.0.0")
        assert version.custom_properties["digest"] == "sha256:" + "a" * 64
    finally:
        destroy(config)
