"""push-modelkit: everything checkable without kit is checked before kit is needed.

The script runs with a PATH that has no kit, so each case proves its check comes first; a
valid directory gets as far as needing kit. The last test runs the local push component in
a real kfp.local pipeline and expects the chain to name the step and the script's error.
"""
# No `from __future__ import annotations`: this module defines KFP components.

import shutil
from pathlib import Path

import pytest
import yaml
from kfp import dsl

from lab.pipeline.local_components import local_components
from lab.pipeline.local_run import ChainStepFailed, execute_locally
from lab.pipeline.scripts import PUSH_SCRIPT, ScriptFailed, push_arguments, run_script, script_environment
from lab.pipeline.steps import train_classifier
from tests.pipeline_fixtures.chain_fixtures import QUIET, new_lab, userland_path

REGISTRY = "127.0.0.1:5001"


def push(
    modelkit_dir: Path, tmp_path: Path, registry: str = REGISTRY, path: str = "/usr/bin:/bin", **options: str
) -> str:
    arguments = push_arguments(
        registry,
        "lab/iris",
        "v1",
        str(modelkit_dir),
        ref_output=str(tmp_path / "outputs" / "ref"),
        digest_output=str(tmp_path / "outputs" / "digest"),
        **options,
    )
    return run_script(PUSH_SCRIPT, arguments, script_environment(extra={"PATH": path}))


def no_outputs(tmp_path: Path) -> None:
    assert not (tmp_path / "outputs").exists()


def test_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "never-written"
    with pytest.raises(ScriptFailed) as failure:
        push(missing, tmp_path)
    assert failure.value.message.startswith(f"ModelKit directory does not exist: {missing}")
    no_outputs(tmp_path)


def test_empty_directory(tmp_path: Path) -> None:
    empty = tmp_path / "modelkit"
    empty.mkdir()
    with pytest.raises(ScriptFailed) as failure:
        push(empty, tmp_path)
    assert failure.value.message.startswith(f"ModelKit directory is empty: {empty}")
    no_outputs(tmp_path)


VALID = """\
manifestVersion: 1.0.0
package:
  name: iris  # a comment
  description: "quoted: colons are fine"
  authors: [lab, "a, b"]
model:
  path: model.joblib
datasets:
  - name: test
    path: test.csv
code:
- path: train.py
  description: |
    block scalars: may hold anything
      even deeper lines
"""

# (Kitfile text, line reported, problem): each is what people get wrong by hand.
INVALID = {
    "tab indentation": (
        "manifestVersion: 1.0.0\npackage:\n\tname: iris\n",
        3,
        "tab character in indentation",
    ),
    "bad indentation": (
        "manifestVersion: 1.0.0\npackage:\n  name: iris\n    description: x\n",
        4,
        'indented under "name" (line 3), which already has a value',
    ),
    "colon in plain value": (
        "manifestVersion: 1.0.0\npackage:\n  description: iris: a classifier\n",
        3,
        'a plain value cannot contain ": "',
    ),
    "unterminated quote": (
        'manifestVersion: 1.0.0\npackage:\n  name: "iris\nmodel:\n  path: m\n',
        3,
        "unterminated quoted string",
    ),
    "unclosed bracket": ("manifestVersion: 1.0.0\npackage:\n  authors: [a, b\n", 3, "unclosed bracket"),
    "missing colon": ("manifestVersion: 1.0.0\npackage\n  name: iris\n", 2, 'expected "key: value"'),
}
# Valid YAML, invalid Kitfile (kit's own parser refuses these too).
INVALID_KITFILE = {
    "duplicate key": (
        "manifestVersion: 1.0.0\nmodel:\n  path: a\nmodel:\n  path: b\n",
        4,
        'duplicate top-level key "model"',
    ),
    "no manifestVersion": (
        "package:\n  name: iris\n",
        1,
        "missing the required top-level key manifestVersion",
    ),
    "a list": ("- path: model.joblib\n", 1, "a Kitfile is a YAML mapping"),
}


def write_modelkit(directory: Path, kitfile: str | None) -> Path:
    directory.mkdir()
    (directory / "model.joblib").write_bytes(b"model")
    if kitfile is not None:
        (directory / "Kitfile").write_text(kitfile)
    return directory


@pytest.mark.parametrize("userland", ["gnu", "busybox"])
@pytest.mark.parametrize("case", sorted(INVALID) + sorted(INVALID_KITFILE))
def test_invalid_kitfile_names_the_file_and_line(tmp_path: Path, case: str, userland: str) -> None:
    text, line, problem = {**INVALID, **INVALID_KITFILE}[case]
    if case in INVALID:  # the check agrees with a real YAML parser
        with pytest.raises(yaml.YAMLError):
            yaml.safe_load(text)
    modelkit = write_modelkit(tmp_path / "modelkit", text)
    path = userland_path(userland, tmp_path / "userland")  # busybox awk: the kitops-kubeflow image's
    with pytest.raises(ScriptFailed) as failure:
        push(modelkit, tmp_path, path=path)
    assert failure.value.message.startswith(f"invalid Kitfile YAML: {modelkit}/Kitfile:{line}: ")
    assert problem in failure.value.message
    assert (modelkit / "Kitfile").read_text() == text
    no_outputs(tmp_path)


@pytest.mark.parametrize("kitfile", ["valid by hand", "written by training"])
def test_valid_kitfiles_pass_and_only_kit_is_missing(tmp_path: Path, kitfile: str) -> None:
    if kitfile == "valid by hand":
        yaml.safe_load(VALID)
        modelkit = write_modelkit(tmp_path / "modelkit", VALID)
    else:
        modelkit = tmp_path / "modelkit"
        train_classifier(str(modelkit), "wine", "wine: classifier", 'say "hi"', "lab #1", 7, 0.3)
        assert yaml.safe_load((modelkit / "Kitfile").read_text())["package"]["name"] == "wine: classifier"
    with pytest.raises(
        ScriptFailed, match=f"kit is required to pack and push {REGISTRY}/lab/iris:v1 but is not on PATH"
    ):
        push(modelkit, tmp_path)
    no_outputs(tmp_path)


def test_without_kitfile_nothing_is_generated_when_push_cannot_run(tmp_path: Path) -> None:
    modelkit = write_modelkit(tmp_path / "modelkit", None)
    with pytest.raises(ScriptFailed, match="kit is required"):
        push(modelkit, tmp_path)
    assert sorted(p.name for p in modelkit.iterdir()) == ["model.joblib"]


@pytest.mark.parametrize(
    ("registry", "options", "expected"),
    [
        ("registry", {}, "kit would read 'registry/lab/iris' as local storage"),
        (REGISTRY, {"plain_http": "maybe"}, "--plain-http must be true or false, got 'maybe'"),
    ],
)
def test_bad_settings_are_refused(
    tmp_path: Path, registry: str, options: dict[str, str], expected: str
) -> None:
    modelkit = write_modelkit(tmp_path / "modelkit", VALID)
    with pytest.raises(ScriptFailed) as failure:
        push(modelkit, tmp_path, registry=registry, **options)
    assert expected in failure.value.message


def test_credentials_never_come_from_arguments() -> None:
    text = PUSH_SCRIPT.read_text()
    assert "DOCKER_CONFIG" in text
    for flag in ("--password", "--username", "kit login"):
        assert flag not in text


# --- the local push component in a real kfp.local run ------------------------------------------


def empty_modelkit(modelkit_dir: dsl.Output[dsl.Artifact]) -> None:
    import os  # a component's source runs alone: its imports live in its body

    os.makedirs(modelkit_dir.path)


def test_local_push_component_reports_the_step_and_the_script_error() -> None:
    config = new_lab()
    components = local_components(config)
    produce_empty = dsl.component(
        empty_modelkit, base_image=config.versions.python_image, install_kfp_package=False
    )

    @dsl.pipeline(name="push-empty")
    def push_empty() -> str:
        made = produce_empty()
        pushed = components.push(
            registry=config.registry_host,
            repository="lab/empty",
            tag="v1",
            modelkit_dir=made.outputs["modelkit_dir"],
            docker_config=str(config.docker_config_dir),
        )
        return pushed.outputs["digest"]

    try:
        with pytest.raises(ChainStepFailed) as failure:
            execute_locally(config, QUIET, push_empty, {})
        assert failure.value.step == "push"
        assert failure.value.reason.startswith("ModelKit directory is empty: ")
        assert failure.value.reason.endswith("(the training step must write at least one file there)")
        assert "push" in (config.log_dir / "pipeline.log").read_text()
        outputs = [p.name for p in (config.home / "pipeline-root").rglob("*") if p.name in ("ref", "digest")]
        assert outputs == []
    finally:
        shutil.rmtree(config.home, ignore_errors=True)


@pytest.mark.parametrize(
    ("registry", "repository", "tag", "expected"),
    [
        ("--help", "lab/iris", "v1", "registry '--help' starts with '-' (it would be read as an option)"),
        ("-r.example", "lab/iris", "v1", "registry '-r.example' starts with '-'"),
        (REGISTRY, "lab/iris;id", "v1", "repository 'lab/iris;id' is not a valid OCI repository name"),
        (REGISTRY, "lab/iris", "-v1", "tag '-v1' is not a valid OCI tag"),
        (REGISTRY, "lab/iris", "v1 $(id)", "tag 'v1 $(id)' is not a valid OCI tag"),
        (REGISTRY, "lab/iris", "v1`id`", "tag 'v1`id`' is not a valid OCI tag"),
        (REGISTRY, "lab/iris", "v1\nx", "tag $'v1\\nx' is not a valid OCI tag"),
        ("127.0.0.1:5001;id", "lab/iris", "v1", "contains shell syntax: refusing it"),
        ("127.0.0.1 :5001", "lab/iris", "v1", "contains whitespace or control characters"),
        ("bad_host.example", "lab/iris", "v1", "is not an OCI reference"),
    ],
)
def test_references_are_data_refused_before_kit_is_needed(
    tmp_path: Path, registry: str, repository: str, tag: str, expected: str
) -> None:
    modelkit = write_modelkit(tmp_path / "modelkit", VALID)
    arguments = push_arguments(registry, repository, tag, str(modelkit), digest_output=str(tmp_path / "d"))
    with pytest.raises(ScriptFailed) as failure:  # no kit on PATH: the refusal came first
        run_script(PUSH_SCRIPT, arguments, script_environment(extra={"PATH": "/usr/bin:/bin"}))
    assert expected in failure.value.message
    assert failure.value.returncode != 0
    assert not (tmp_path / "d").exists()
