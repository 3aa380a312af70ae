"""Local-mode push, unpack and serve components, for kfp.local's SubprocessRunner.

kfp.local's SubprocessRunner runs lightweight Python components only (it refuses container
components), so locally push and unpack are Python components that carry the very scripts
the cluster's container components embed (``embedded_artifact_path``: the ``scripts/``
directory, so push finds the prelude beside it) and run push with bash, the unpacker
(unpack, and serve's storage initializer) with this interpreter, as the cluster runs its text.
Their interfaces are the cluster components' plus where this machine keeps credentials and
tools. They run in the lab's own interpreter, so they may use the lab's code.

No ``from __future__ import annotations``: KFP reads the annotation objects.
"""

from typing import Any

from kfp import dsl

from lab.config import LabConfig
from lab.pipeline.components import ChainComponents, python_components
from lab.pipeline.scripts import SCRIPTS_DIR


def push_modelkit(
    registry: str,
    repository: str,
    tag: str,
    modelkit_dir: dsl.Input[dsl.Artifact],
    ref: dsl.OutputPath(str),  # type: ignore[valid-type]
    digest: dsl.OutputPath(str),  # type: ignore[valid-type]
    script: dsl.EmbeddedInput[dsl.Artifact],
    modelkit_name: str = "",
    modelkit_desc: str = "",
    modelkit_author: str = "",
    dataset_uri: str = "",
    code_repo: str = "",
    code_commit: str = "",
    plain_http: bool = False,
    docker_config: str = "",
    kit_bin_dir: str = "",
    kitops_home: str = "",
    cosign_key_path: str = "",
) -> None:
    """Run the embedded push-modelkit.sh on the trained directory."""
    import os

    from lab.pipeline.scripts import PUSH_SCRIPT, push_arguments, run_script, script_environment

    extra = {"KITOPS_HOME": kitops_home} if kitops_home else {}
    if cosign_key_path:
        extra["COSIGN_KEY_PATH"] = cosign_key_path
    env = script_environment(
        docker_config=docker_config, tool_dirs=[kit_bin_dir] if kit_bin_dir else [], extra=extra
    )
    arguments = push_arguments(
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
        plain_http=str(plain_http).lower(),
        ref_output=ref,
        digest_output=digest,
    )
    print(run_script(os.path.join(script.path, PUSH_SCRIPT.name), arguments, env, echo=True), end="")


def unpack_modelkit(
    modelkit_ref: str,
    model_path: dsl.Output[dsl.Artifact],
    script: dsl.EmbeddedInput[dsl.Artifact],
    extract_path: str = "",
    plain_http: bool = False,
    docker_config: str = "",
) -> None:
    """Run the embedded unpack_modelkit.py into the output artifact."""
    from pathlib import Path

    from lab.pipeline.scripts import UNPACKER, run_unpacker, script_environment, unpack_arguments

    env = script_environment(docker_config=docker_config)
    arguments = unpack_arguments(
        modelkit_ref, extract_path, plain_http=str(plain_http).lower(), artifact_dir=model_path.path
    )
    print(run_unpacker(arguments, env, path=Path(script.path) / UNPACKER.name, echo=True), end="")


def serve_model(
    modelkit_ref: str,
    model_name: str,
    script: dsl.EmbeddedInput[dsl.Artifact],
    lab_home: str,
    model_server_port: int,
    plain_http: bool = True,
    timeout_seconds: int = 60,
) -> str:
    """Storage-initialize kit://<modelkit_ref> with the embedded unpacker, start the model server; its URL."""
    import os
    from pathlib import Path

    from lab.config import load_config
    from lab.pipeline.modelkit_ref import ModelKitRef
    from lab.pipeline.scripts import UNPACKER
    from lab.pipeline.serving import serve_modelkit

    config = load_config(
        env={**os.environ, "LAB_HOME": lab_home, "LAB_MODEL_SERVER_PORT": str(model_server_port)}
    )
    return serve_modelkit(
        config,
        ModelKitRef.parse(modelkit_ref),
        model_name,
        plain_http=plain_http,
        unpacker=Path(script.path) / UNPACKER.name,
        timeout=timeout_seconds,
    )


def local_components(config: LabConfig) -> ChainComponents:
    """The components of the local pipeline."""

    def carrying_the_scripts(func: Any) -> Any:
        return dsl.component(
            func,
            base_image=config.versions.python_image,
            install_kfp_package=False,
            embedded_artifact_path=str(SCRIPTS_DIR),
        )

    python = python_components(config, cluster=False)
    return ChainComponents(
        train=python["train"],
        push=carrying_the_scripts(push_modelkit),
        register=python["register"],
        unpack=carrying_the_scripts(unpack_modelkit),
        serve=carrying_the_scripts(serve_model),
        predict=python["predict"],
    )
