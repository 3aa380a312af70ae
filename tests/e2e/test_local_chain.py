"""The whole chain as a user meets it on one machine, every hand-off checked.

`lab demo` in local mode: train a classifier, push it as a ModelKit with kit, register
``kit://<digest>`` in the Model Registry with the run's lineage, unpack and verify it, let
the kit:// storage initializer fetch it for the real KServe model server, and compare V1/V2
predictions with the model's own. Needs the real kit and Model Registry server binaries;
where they cannot be had, the tests skip with the tool resolver's one-line reason.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import joblib
import pytest
from model_registry import ModelRegistry

from lab.config import LabConfig
from lab.local.model_server_process import model_server_process, stop_model_server
from lab.pipeline.chain import VersionPolicy
from lab.pipeline.definition import DEFAULT_MODEL_NAME, PIPELINE_NAME
from lab.pipeline.demo import bring_up_local
from lab.pipeline.local_run import ChainResult, run_local_pipeline
from lab.pipeline.registry_access import manifest_digest
from lab.pipeline.run_arguments import demo_arguments
from lab.pipeline.serving import serving_dir
from lab.pipeline.steps import check_predictions, read_split
from tests.pipeline_fixtures.chain_fixtures import QUIET, cli_env, destroy, new_lab, require

MODEL = DEFAULT_MODEL_NAME
TRAINED_FILES = ("model.joblib", "train.csv", "test.csv", "train.py", "README.md", "metrics.json")


@pytest.fixture(scope="module")
def chain() -> Iterator[tuple[LabConfig, ChainResult]]:
    config = new_lab()
    try:
        tools = require(config, "kit", "model-registry")
        bring_up_local(config, QUIET)
        arguments = demo_arguments("1.0.0", VersionPolicy.FAIL)
        yield config, run_local_pipeline(config, QUIET, arguments, kit_bin_dir=tools["kit"].parent)
    finally:
        destroy(config)


def test_push_hands_on_the_digest_the_registry_has(chain: tuple[LabConfig, ChainResult]) -> None:
    config, result = chain
    assert str(result.ref) == f"{config.registry_host}/lab/{MODEL}:1.0.0"
    in_registry = manifest_digest(result.ref, config.docker_config_dir)
    assert str(result.pinned_ref) == f"{config.registry_host}/lab/{MODEL}@{in_registry}"


def test_the_model_registry_version_is_the_digest_with_the_run_lineage(
    chain: tuple[LabConfig, ChainResult],
) -> None:
    config, result = chain
    client = ModelRegistry("http://127.0.0.1", config.ports.model_registry, author="e2e", is_secure=False)
    version = client.get_model_version(MODEL, "1.0.0")
    artifact = client.get_model_artifact(MODEL, "1.0.0")
    assert version is not None and artifact is not None
    assert artifact.uri == f"kit://{result.pinned_ref}" == result.registration["uri"]
    assert (artifact.model_source_kind, artifact.model_source_class) == ("kfp", "pipelinerun")
    assert artifact.model_source_group == "local"
    assert artifact.model_source_id and artifact.model_source_name.startswith(PIPELINE_NAME)
    assert version.id == result.registration["versionID"]
    assert version.custom_properties["digest"] == result.pinned_ref.digest
    assert version.custom_properties["digest"] == str(result.pinned_ref).rpartition("@")[2]
    assert "metric_accuracy" in version.custom_properties


def test_unpacked_files_are_byte_equal_to_the_trained_ones(chain: tuple[LabConfig, ChainResult]) -> None:
    _, result = chain
    for name in TRAINED_FILES:
        assert (result.unpacked_dir / name).read_bytes() == (result.modelkit_dir / name).read_bytes(), name
    assert (result.unpacked_dir / "Kitfile").is_file()


def test_served_predictions_equal_the_model_on_the_held_out_split(
    chain: tuple[LabConfig, ChainResult],
) -> None:
    config, result = chain
    rows, _ = read_split(str(result.modelkit_dir / "test.csv"))
    direct = joblib.load(result.modelkit_dir / "model.joblib").predict(rows).tolist()
    assert result.predictions["v1"] == result.predictions["v2"] == result.predictions["direct"] == direct
    again = check_predictions(result.serving_url, MODEL, str(result.modelkit_dir), 10.0)
    assert again["v1"] == again["v2"] == direct
    # What the storage initializer fetched for the server is the trained model, byte for byte.
    served = serving_dir(config, MODEL) / "model.joblib"
    assert served.read_bytes() == (result.modelkit_dir / "model.joblib").read_bytes()


def test_demo_twice_suffixes_the_version_by_default_and_fail_refuses_it(
    chain: tuple[LabConfig, ChainResult],
) -> None:
    config, _ = chain

    def demo(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lab", "demo", *argv],
            env=cli_env(config),
            capture_output=True,
            text=True,
            timeout=600,
        )

    # No model server runs, so the demo starts one ahead of its model (a standby).
    stop_model_server(config)
    refused = demo("--once", "--version-policy", "fail")
    assert refused.returncode == 1
    assert (
        "chain step 'register' failed: Version 1.0.0 already exists for model iris-classifier"
        in refused.stderr
    )
    # The chain never reached serve: its standby is gone with it.
    assert model_server_process(config).pid() is None
    assert not any(config.run_dir.glob("model-server.go*"))
    assert "model server start-up" not in refused.stderr
    suffixed = demo("--once")  # the default: running the main command twice works
    assert suffixed.returncode == 0, suffixed.stderr
    assert "Chain complete" in suffixed.stdout and "version 1.0.0-" in suffixed.stdout
    assert "model server    stopped (--once)" in suffixed.stdout
    # The start-up overlapped lab up and train (at least): it shows its own time and what it ran beside,
    # after the steps, whose own lines keep their own times.
    lines = suffixed.stderr.splitlines()
    standby = next(line for line in lines if line.startswith(" ✓ model server start-up ("))
    beside = r"alongside (lab up, )?train(, \w+)*"
    assert re.fullmatch(rf" ✓ model server start-up \(\d+\.\ds, {beside}\)", standby), standby
    steps = [line.split(" (")[0].strip("✓ ") for line in lines if line.startswith(" ✓ ")]
    chain = ["train", "push", "register", "unpack", "serve", "predict", "model server start-up"]
    assert steps[-len(chain) :] == chain
