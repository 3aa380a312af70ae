"""`lab pipeline compile`: the cluster pipeline as KFP IR YAML, with the KitOps interfaces.

The compiled YAML is what a user uploads to KFP: the KitOps components on the pinned image
carrying the scripts verbatim, the three secrets mounted as the KitOps and Model Registry
guides say, pinned packages, and the same parameters as the local pipeline.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import cli
from lab.config import LabConfig, load_config
from lab.pipeline.definition import build_pipeline, compile_pipeline
from lab.pipeline.modelkit_ref import split_modelkit_reference
from lab.pipeline.scripts import (
    PRELUDE,
    PUSH_SCRIPT,
    UNPACKER,
    ScriptFailed,
    compiled_unpacker,
    run_unpacker,
    script_text,
    unpacker_text,
)

KITOPS = {"push-modelkit", "unpack-modelkit"}
PYTHON = {"train-model", "register-model", "serve-model", "predict"}
# The steps on the pinned Python image: the lightweight components and the unpacker.
ON_PYTHON_IMAGE = PYTHON | {"unpack-modelkit"}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> LabConfig:
    return load_config(env={"LAB_HOME": str(tmp_path_factory.mktemp("home"))})


@pytest.fixture(scope="module")
def compiled(
    config: LabConfig, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], dict[str, Any]]:
    path = compile_pipeline(config, tmp_path_factory.mktemp("out") / "chain.yaml")
    spec, platform = yaml.safe_load_all(path.read_text())
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def executors(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name.removeprefix("exec-"): e["container"] for name, e in spec["deploymentSpec"]["executors"].items()
    }


def test_cli_writes_the_compiled_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "home"))
    output = tmp_path / "out" / "chain.yaml"
    assert cli.main(["-q", "pipeline", "compile", "-o", str(output)]) == 0
    assert capsys.readouterr().out.strip() == str(output)
    spec = next(yaml.safe_load_all(output.read_text()))
    assert spec["pipelineInfo"]["name"] == "train-push-register-serve"
    assert [p.name for p in output.parent.iterdir()] == ["chain.yaml"]  # no staging file left


def test_images_are_the_pinned_ones(
    config: LabConfig, compiled: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    containers = executors(compiled[0])
    assert set(containers) == KITOPS | PYTHON
    assert containers["push-modelkit"]["image"] == config.versions.kitops_kubeflow_image
    for name in ON_PYTHON_IMAGE:
        assert containers[name]["image"] == config.versions.python_image
    assert "@sha256:" in config.versions.python_image
    for image in {c["image"] for c in containers.values()}:
        assert "@sha256:" in image or (":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"))


def test_kitops_components_carry_the_scripts_verbatim(
    compiled: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    containers = executors(compiled[0])
    assert containers["push-modelkit"]["command"] == [
        "/bin/bash",
        "-c",
        script_text(PUSH_SCRIPT),
        "push-modelkit.sh",
    ]
    # Verbatim: the script's own lines and the prelude's, nothing sourced from a file.
    text, carried = PUSH_SCRIPT.read_text(), script_text(PUSH_SCRIPT)
    assert PRELUDE.read_text() in carried and 'source "' not in carried
    before, _, after = text.partition("# --- end of prelude ---\n")
    assert carried.startswith(before[: before.index("# --- prelude")]) and carried.endswith(after)
    # The unpacker: its own text, with the grammar function's source where its import stood.
    assert containers["unpack-modelkit"]["command"] == ["python3", "-I", "-S", "-c", unpacker_text()]
    carried, text = unpacker_text(), UNPACKER.read_text()
    assert "from lab" not in carried and "import lab" not in carried
    assert inspect.getsource(split_modelkit_reference) in carried
    head, _, tail = text.partition("# --- end of reference grammar ---\n")
    assert carried.startswith(head[: head.index("# --- reference grammar")]) and carried.endswith(tail)
    for name in KITOPS:
        assert {"name": "DOCKER_CONFIG", "value": "/home/user/.docker"} in containers[name]["env"]
    # Argo templates every {{...}} in a workflow: what a component carries must never contain one.
    for carried in (script_text(PUSH_SCRIPT), unpacker_text()):
        assert "{{" not in carried


def test_kitops_interfaces_match_the_kitops_components(
    compiled: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    components = compiled[0]["components"]
    push = components["comp-push-modelkit"]
    assert set(push["inputDefinitions"]["parameters"]) == {
        "registry",
        "repository",
        "tag",
        "modelkit_name",
        "modelkit_desc",
        "modelkit_author",
        "dataset_uri",
        "code_repo",
        "code_commit",
        "plain_http",
    }
    assert set(push["inputDefinitions"]["artifacts"]) == {"modelkit_dir"}
    assert set(push["outputDefinitions"]["parameters"]) == {"ref", "digest"}
    unpack = components["comp-unpack-modelkit"]
    assert set(unpack["inputDefinitions"]["parameters"]) == {
        "modelkit_ref",
        "extract_path",
        "plain_http",
    }
    assert set(unpack["outputDefinitions"]["artifacts"]) == {"model_path"}


def test_the_three_secrets_are_mounted(
    config: LabConfig, compiled: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    platform = compiled[1]
    names = config.names
    push_volumes = {v["secretName"]: v for v in platform["exec-push-modelkit"]["secretAsVolume"]}
    assert push_volumes[names.docker_config_secret]["mountPath"] == "/home/user/.docker"
    assert push_volumes[names.docker_config_secret]["optional"] is False
    assert push_volumes[names.cosign_secret]["mountPath"] == "/etc/cosign"
    assert push_volumes[names.cosign_secret]["optional"] is True
    [unpack_volume] = platform["exec-unpack-modelkit"]["secretAsVolume"]
    assert (unpack_volume["secretName"], unpack_volume["mountPath"]) == (
        names.docker_config_secret,
        "/home/user/.docker",
    )
    [token] = platform["exec-register-model"]["secretAsEnv"]
    assert token["secretName"] == names.model_registry_auth_secret
    assert token["keyToEnv"] == [{"secretKey": "token", "envVar": "MR_AUTH_TOKEN"}]
    for name in ("exec-register-model", "exec-serve-model"):
        assert {"fieldPath": "metadata.namespace", "name": "KFP_POD_NAMESPACE"} in platform[name][
            "fieldPathAsEnv"
        ]


def test_python_components_install_pinned_packages(
    config: LabConfig, compiled: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    containers = executors(compiled[0])
    installs = {name: containers[name]["command"][2] for name in PYTHON}
    versions = config.versions
    assert f"'kfp=={versions.kfp_sdk}'" in installs["train-model"]
    assert (
        f"'scikit-learn=={load_config(env={}).versions.scikit_learn_for_kserve}'" in installs["train-model"]
    )
    assert f"'scikit-learn=={load_config(env={}).versions.scikit_learn_for_kserve}'" in installs["predict"]
    assert f"'model-registry=={versions.model_registry_client}'" in installs["register-model"]
    assert f"'kserve=={versions.kserve_sdk}'" in installs["serve-model"]


def test_shipped_python_sources_are_self_contained(compiled: tuple[dict[str, Any], dict[str, Any]]) -> None:
    # What the container runs: the component source alone, with only kfp and typing imported.
    for name, container in executors(compiled[0]).items():
        if name not in PYTHON:
            continue
        namespace: dict[str, Any] = {}
        exec(compile(container["command"][-1], f"<{name}>", "exec"), namespace)
        function = container["args"][container["args"].index("--function_to_execute") + 1]
        assert callable(namespace[function])


def test_steps_that_read_a_modelkit_reference_ship_its_grammar(
    compiled: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    # The one grammar and kit:// prefix (lab.pipeline.modelkit_ref) travel with the steps that use them.
    containers = executors(compiled[0])
    shipped = {"register-model": ("kit_uri",), "serve-model": ("kit_uri", "reference_of_kit_uri")}
    for name, functions in shipped.items():
        namespace: dict[str, Any] = {}
        exec(compile(containers[name]["command"][-1], f"<{name}>", "exec"), namespace)
        reference = "kind-registry:5000/lab/iris@sha256:" + "a" * 64
        assert namespace["split_modelkit_reference"](reference)["registry"] == "kind-registry:5000"
        for function in functions:
            assert callable(namespace[function])
    assert "kit://" in containers["serve-model"]["command"][-1]


def test_compilation_is_deterministic(config: LabConfig, tmp_path: Path) -> None:
    first = compile_pipeline(config, tmp_path / "a.yaml").read_text()
    assert compile_pipeline(config, tmp_path / "b.yaml").read_text() == first


def test_local_and_cluster_pipelines_take_the_same_parameters(config: LabConfig, tmp_path: Path) -> None:
    from kfp import compiler

    parameters = {}
    for target in ("local", "cluster"):
        compiler.Compiler().compile(build_pipeline(config, target), str(tmp_path / f"{target}.yaml"))
        spec = next(yaml.safe_load_all((tmp_path / f"{target}.yaml").read_text()))
        parameters[target] = spec["root"]["inputDefinitions"]["parameters"]
        outputs = spec["root"]["outputDefinitions"]
        assert set(outputs["parameters"]) == {"ref", "digest", "serving_url"}
        assert set(outputs["artifacts"]) == {"modelkit", "registered_model", "unpacked", "predictions"}
    assert set(parameters["local"]) == set(parameters["cluster"])
    differing = {
        name for name in parameters["local"] if parameters["local"][name] != parameters["cluster"][name]
    }
    assert differing == {"registry", "model_registry_url"}  # where each target reaches them


def test_every_declared_chain_step_is_a_task_of_both_pipelines(config: LabConfig, tmp_path: Path) -> None:
    from kfp import compiler

    from lab.bench import DEMO_STEPS
    from lab.pipeline import CHAIN, CHAIN_STEPS, STEP_OF_TASK

    for target in ("local", "cluster"):
        compiler.Compiler().compile(build_pipeline(config, target), str(tmp_path / f"{target}.yaml"))
        tasks = next(yaml.safe_load_all((tmp_path / f"{target}.yaml").read_text()))["root"]["dag"]["tasks"]
        assert set(tasks) == {step.task for step in CHAIN}
        if target == "cluster":  # the KFP UI shows the step names
            assert {task: spec["taskInfo"]["name"] for task, spec in tasks.items()} == STEP_OF_TASK
    assert CHAIN_STEPS == ("train", "push", "register", "unpack", "serve", "predict")
    assert list(DEMO_STEPS) == list(CHAIN_STEPS) and DEMO_STEPS["serve"] == "serve-ready"


def test_the_cached_unpacker_is_the_carried_text_compiled_once(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    compiled = compiled_unpacker(cache)
    assert compiled.parent == cache and compiled.suffix == ".pyc"
    written = compiled.stat().st_mtime_ns
    assert compiled_unpacker(cache) == compiled and compiled.stat().st_mtime_ns == written
    # Run as the bench and the serve step run it: the same program (its usage line, exit 2).
    with pytest.raises(ScriptFailed) as failure:
        run_unpacker([], cache_dir=cache)
    assert failure.value.returncode == 2 and failure.value.message.startswith("usage: unpack-modelkit ")
    # An edited unpacker is compiled into a file of its own: a stale one is never run.
    edited = tmp_path / "unpack_modelkit.py"
    edited.write_text(UNPACKER.read_text().replace('PROG = "unpack-modelkit"', 'PROG = "edited-unpacker"'))
    assert compiled_unpacker(cache, edited) != compiled
    with pytest.raises(ScriptFailed) as failure:
        run_unpacker([], path=edited, cache_dir=cache)
    assert failure.value.message.startswith("usage: edited-unpacker ")
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        {compiled.name, compiled_unpacker(cache, edited).name}
    )
