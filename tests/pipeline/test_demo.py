"""`lab demo` and its preflight: fail fast and clearly, record the failure for the doctor."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import local
from lab.config import LabConfig
from lab.errors import LabError
from lab.invocation import lab_command
from lab.pipeline.demo import render_summary
from lab.pipeline.failure_report import record_failure
from lab.pipeline.local_run import ChainResult
from lab.pipeline.modelkit_ref import ModelKitRef
from lab.pipeline.registry_access import RegistryUnauthorized, check_registry_access, manifest_digest
from tests.conftest import TOOLS_BIN
from tests.pipeline_fixtures.chain_fixtures import QUIET, cli_env, destroy, new_lab

USER, PASSWORD = "lab-user", "s3cret-Pa55word"


def lab(*argv: str, config: LabConfig) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab", *argv], env=cli_env(config), capture_output=True, text=True, timeout=120
    )


def test_demo_obtains_its_tools_and_an_unobtainable_one_fails_fast_with_one_line() -> None:
    # A kit version no source has: the demo itself tries every real source (release
    # download, go install) and stops before starting anything, naming the `lab tools add`
    # command that works.
    config = new_lab(LAB_KIT_VERSION="v0.0.0-lab-test")
    own_bin = config.home / "bin"
    own_bin.unlink()  # not the shared tools: this home must lack kit
    own_bin.mkdir()
    for entry in TOOLS_BIN.iterdir():
        if entry.name not in ("kit", ".kit.json"):
            target = entry.resolve() if entry.is_symlink() else entry
            (own_bin / entry.name).symlink_to(target)
    try:
        env = {**cli_env(config), "LAB_KIT_VERSION": "v0.0.0-lab-test"}
        result = subprocess.run(
            [sys.executable, "-m", "lab", "demo"], env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 1, result.stdout + result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
        assert len(errors) == 1, result.stderr
        first = errors[0]
        assert first.startswith("ERROR: kit v0.0.0-lab-test could not be obtained; tried: "), result.stderr
        assert f"{own_bin}/kit: absent" in first
        assert "download https://github.com/kitops-ml/kitops/releases/download/v0.0.0-lab-test/" in first
        assert "go install github.com/kitops-ml/kitops@v0.0.0-lab-test" in first
        assert first.endswith(lab_command("tools add kit /path/to/kit --version v0.0.0-lab-test"))
        assert "Traceback" not in result.stderr + result.stdout
        assert not list(config.run_dir.glob("*.pid"))
    finally:
        destroy(config)


def test_stop_server_with_nothing_running() -> None:
    config = new_lab()
    try:
        result = lab("pipeline", "stop-server", config=config)
        assert (result.returncode, result.stdout.strip()) == (0, "no model server was running")
    finally:
        destroy(config)


@pytest.fixture(scope="module")
def registry_with_auth() -> Iterator[LabConfig]:
    config = new_lab(LAB_REGISTRY_USER=USER, LAB_REGISTRY_PASSWORD=PASSWORD)
    try:
        local.up(config, QUIET, ("registry",))
        yield config
    finally:
        destroy(config)


def write_credentials(config: LabConfig, auths: dict[str, dict[str, str]]) -> Path:
    directory = config.home / "other-docker-config"
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps({"auths": auths}))
    return directory


def test_the_lab_credentials_are_accepted(registry_with_auth: LabConfig) -> None:
    check_registry_access(registry_with_auth.registry_host, registry_with_auth.docker_config_dir)


def test_wrong_credentials_are_refused_naming_the_host(registry_with_auth: LabConfig) -> None:
    host = registry_with_auth.registry_host
    wrong = base64.b64encode(f"{USER}:not-the-password".encode()).decode()
    directory = write_credentials(registry_with_auth, {host: {"auth": wrong}})
    with pytest.raises(RegistryUnauthorized) as failure:
        check_registry_access(host, directory)
    assert failure.value.message.startswith(f"registry {host} rejected the credentials (401 Unauthorized)")
    assert f'"{host}" in {directory / "config.json"}' in failure.value.message
    with pytest.raises(RegistryUnauthorized, match=f"registry {host} rejected the credentials"):
        manifest_digest(f"{host}/lab/iris:v1", directory)


def test_missing_credentials_are_named(registry_with_auth: LabConfig) -> None:
    host = registry_with_auth.registry_host
    directory = write_credentials(registry_with_auth, {"elsewhere:5000": {"auth": "eDp5"}})
    with pytest.raises(
        RegistryUnauthorized, match=f"registry {host} requires credentials, and there are none"
    ):
        check_registry_access(host, directory)


def test_unknown_reference_and_closed_registry(registry_with_auth: LabConfig) -> None:
    host = registry_with_auth.registry_host
    with pytest.raises(LabError, match=f"ModelKit {host}/lab/never-pushed:v1 not found in registry {host}"):
        manifest_digest(f"{host}/lab/never-pushed:v1", registry_with_auth.docker_config_dir)
    closed = new_lab()
    try:
        with pytest.raises(LabError, match=f"registry {closed.registry_host} is not reachable"):
            check_registry_access(closed.registry_host, closed.docker_config_dir)
    finally:
        destroy(closed)


def test_a_failed_step_is_recorded_for_the_doctor() -> None:
    evidence = pytest.importorskip("lab.doctor.evidence")
    config = new_lab()
    try:
        record_failure(
            config, "register", "Version 1.0.0 already exists for model iris", model="iris", version="1.0.0"
        )
        recorded = evidence.read_chain_error(config)
        assert (recorded.step, recorded.context["version"]) == ("register", "1.0.0")
        assert "already exists" in recorded.message
    finally:
        destroy(config)


def test_the_summary_names_every_hand_off(tmp_path: Path) -> None:
    config = new_lab()
    digest = f"{config.registry_host}/lab/iris-classifier@sha256:" + "d" * 64
    result = ChainResult(
        ref=ModelKitRef.parse(f"{config.registry_host}/lab/iris-classifier:1.0.0"),
        pinned_ref=ModelKitRef.parse(digest),
        modelkit_dir=tmp_path / "modelkit",
        unpacked_dir=tmp_path / "unpacked",
        registration={
            "modelName": "iris-classifier",
            "modelID": "1",
            "versionName": "1.0.0",
            "versionID": "2",
            "modelRegistryURL": "http://127.0.0.1:8082/api/model_registry/v1alpha3/model_versions/2",
            "uri": f"kit://{digest}",
            "action": "register",
        },
        serving_url="http://127.0.0.1:8090",
        predictions={"rows": 38, "direct": [0, 1, 2], "v1": [0, 1, 2], "v2": [0, 1, 2], "accuracy": 0.97},
        log_file=tmp_path / "pipeline.log",
        timings={"train": 2.0, "push": 3.0},
    )
    try:
        text = render_summary(config, result, "iris-classifier", 12.3, once=False)
        for expected in (
            "Chain complete in 12.3s (train 2.0s, push 3.0s)",
            str(result.ref),
            digest,
            "version 1.0.0 id 2 (registered)",
            f"artifact URI kit://{digest}",
            "http://127.0.0.1:8090/v1/models/iris-classifier:predict (V1)",
            "http://127.0.0.1:8090/v2/models/iris-classifier/infer (V2)",
            "lab pipeline stop-server",
        ):
            assert expected in text
        assert "stopped (--once)" in render_summary(config, result, "iris-classifier", 1.0, once=True)
    finally:
        destroy(config)
