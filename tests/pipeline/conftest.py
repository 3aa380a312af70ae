"""What the pipeline tests share: the commands each path runs the unpacker with."""

from __future__ import annotations

import sys

import pytest
import yaml

from lab.config import load_config
from lab.pipeline.definition import compile_pipeline
from lab.provision.render import storage_container


@pytest.fixture(scope="session")
def commands(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """The unpack component's command as compiled, and the storage container's as rendered."""
    config = load_config(env={"LAB_HOME": str(tmp_path_factory.mktemp("compile-home"))})
    compiled = compile_pipeline(config, tmp_path_factory.mktemp("compiled") / "chain.yaml")
    spec = next(yaml.safe_load_all(compiled.read_text()))
    unpack = spec["deploymentSpec"]["executors"]["exec-unpack-modelkit"]["container"]
    storage = storage_container(config)["spec"]["container"]
    # The images' python3 is 3.11, as this interpreter.
    return {
        "compiled": [sys.executable, *unpack["command"][1:]],
        "storage-initializer": [sys.executable, *storage["command"][1:]],
    }
