"""The render cache: an unchanged overlay is read back, any changed input is built again.

Built with the real pinned kustomize over small trees laid out like the lab's workspace (an
overlay under ``manifests/overlays`` listing a staged upstream kustomization), and once over
the real overlays from the pinned mirror.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.config import LabConfig, load_config
from lab.provision.render import _LOADER, build_overlay, prepare_overlays
from lab.provision.render_cache import fingerprint, reaches_outside, render_cache_dir
from lab.provision.workspace import Workspace
from lab.tools import kustomize_argv
from tests.conftest import NO_MIRROR, UPSTREAM_MIRROR

PARSER = (yaml.__version__, _LOADER.__name__)


@pytest.fixture
def config(lab_home: Path) -> LabConfig:
    return load_config(env={"LAB_HOME": str(lab_home)})


def lay_out(workspace: Workspace, value: str = "one", overlay: str = "demo") -> Path:
    """An overlay listing an upstream kustomization with one ConfigMap; returns the upstream file."""
    upstream = workspace.upstream / "demo-v1" / "base"
    upstream.mkdir(parents=True, exist_ok=True)
    (upstream / "kustomization.yaml").write_text("resources:\n- configmap.yaml\n")
    configmap = upstream / "configmap.yaml"
    configmap.write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\ndata:\n  value: {value}\n"
    )
    directory = workspace.overlay(overlay)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kustomization.yaml").write_text(
        "namespace: lab\nresources:\n- ../../upstream/demo-v1/base\n"
    )
    return configmap


def entry(config: LabConfig, overlay: str = "demo") -> Path:
    return render_cache_dir(config) / f"{overlay}.json"


def rewrite_entry(path: Path, objects: list[dict[str, Any]]) -> None:
    """Replace what an entry holds, keeping its key and a valid checksum."""
    header = json.loads(path.read_bytes().partition(b"\n")[0])
    payload = json.dumps(objects)
    header["sha256"] = hashlib.sha256(payload.encode()).hexdigest()
    path.write_text(f"{json.dumps(header)}\n{payload}")


def data_value(objects: list[dict[str, Any]]) -> str:
    return str(objects[0]["data"]["value"])


def test_an_unchanged_overlay_is_read_from_the_cache(config: LabConfig) -> None:
    workspace = Workspace.for_config(config)
    lay_out(workspace)
    first = build_overlay(config, workspace, "demo")
    assert first[0]["metadata"] == {"name": "demo", "namespace": "lab"}
    assert entry(config).is_file()
    # What the entry holds is what a hit returns: kustomize is not asked again.
    rewrite_entry(entry(config), [{**first[0], "data": {"value": "from the cache"}}])
    assert data_value(build_overlay(config, workspace, "demo")) == "from the cache"


@pytest.mark.parametrize("edited", ["upstream resource", "upstream kustomization", "overlay"])
def test_one_changed_input_byte_builds_again(config: LabConfig, edited: str) -> None:
    workspace = Workspace.for_config(config)
    configmap = lay_out(workspace, value="aaa")
    assert data_value(build_overlay(config, workspace, "demo")) == "aaa"
    rewrite_entry(entry(config), [{"kind": "Stale"}])
    if edited == "upstream resource":
        configmap.write_text(configmap.read_text().replace("aaa", "aab"))  # same size, one byte
        expected = "aab"
    elif edited == "upstream kustomization":
        (configmap.parent / "kustomization.yaml").write_text("resources:\n- configmap.yaml\nnamePrefix: x-\n")
        expected = "aaa"
    else:
        overlay = workspace.overlay("demo") / "kustomization.yaml"
        overlay.write_text(overlay.read_text().replace("namespace: lab", "namespace: lac"))
        expected = "aaa"
    rebuilt = build_overlay(config, workspace, "demo")
    assert rebuilt[0]["kind"] == "ConfigMap" and data_value(rebuilt) == expected
    if edited == "upstream kustomization":
        assert rebuilt[0]["metadata"]["name"] == "x-demo"
    if edited == "overlay":
        assert rebuilt[0]["metadata"]["namespace"] == "lac"
    # The entry now holds the new build.
    assert build_overlay(config, workspace, "demo") == rebuilt


def test_another_kustomize_or_parser_is_another_key(config: LabConfig, tmp_path: Path) -> None:
    workspace = Workspace.for_config(config)
    lay_out(workspace)
    argv = kustomize_argv(config)
    overlay = workspace.overlay("demo")
    key = fingerprint(argv, overlay, workspace.manifests, PARSER)
    assert key and key == fingerprint(argv, overlay, workspace.manifests, PARSER)
    copy = tmp_path / "kustomize"
    shutil.copy2(argv[0], copy)
    other = fingerprint((str(copy), *argv[1:]), overlay, workspace.manifests, PARSER)
    assert other not in (None, key)
    assert fingerprint(argv, overlay, workspace.manifests, (PARSER[0], "SafeLoader-other")) != key


def test_the_same_files_elsewhere_have_the_same_key(config: LabConfig, tmp_path: Path) -> None:
    workspace = Workspace.for_config(config)
    lay_out(workspace)
    scratch = Workspace(tmp_path / "scratch")
    lay_out(scratch)
    argv = kustomize_argv(config)
    here = fingerprint(argv, workspace.overlay("demo"), workspace.manifests, PARSER)
    assert here == fingerprint(argv, scratch.overlay("demo"), scratch.manifests, PARSER)


@pytest.mark.parametrize(
    "damage",
    [b"", b"not json at all", b'{"key": "x"}\n[]', "flip a payload byte", "truncate"],
    ids=["empty", "garbage", "other key", "checksum", "truncated"],
)
def test_a_corrupt_entry_is_ignored_and_written_anew(config: LabConfig, damage: object) -> None:
    workspace = Workspace.for_config(config)
    lay_out(workspace)
    good = build_overlay(config, workspace, "demo")
    path = entry(config)
    raw = path.read_bytes()
    if damage == "flip a payload byte":
        path.write_bytes(raw.replace(b'"one"', b'"onf"'))
    elif damage == "truncate":
        path.write_bytes(raw[: len(raw) - 10])
    else:
        assert isinstance(damage, bytes)
        path.write_bytes(damage)
    assert build_overlay(config, workspace, "demo") == good
    assert path.read_bytes() == raw


def test_an_unreadable_cache_folder_costs_only_a_build(config: LabConfig) -> None:
    workspace = Workspace.for_config(config)
    lay_out(workspace)
    render_cache_dir(config).parent.mkdir(parents=True, exist_ok=True)
    render_cache_dir(config).write_text("a file where the folder should be")
    assert data_value(build_overlay(config, workspace, "demo")) == "one"


def test_a_dry_run_workspace_reads_but_never_writes_the_cache(config: LabConfig, tmp_path: Path) -> None:
    scratch = Workspace(tmp_path / "scratch")
    lay_out(scratch)
    assert data_value(build_overlay(config, scratch, "demo")) == "one"
    assert not render_cache_dir(config).exists()


@pytest.mark.parametrize(
    "listed",
    [
        "https://github.com/kubeflow/pipelines/manifests/kustomize/env/dev?ref=2.16.0",
        "github.com/argoproj/argo-workflows/manifests/base?ref=v3.7.3",
        "git@github.com:kubeflow/manifests.git//common/cert-manager",
        "../../../../outside",
    ],
)
def test_what_reaches_outside_the_tree_is_never_cached(config: LabConfig, listed: str) -> None:
    workspace = Workspace.for_config(config)
    lay_out(workspace)
    overlay = workspace.overlay("demo") / "kustomization.yaml"
    overlay.write_text(overlay.read_text() + f"- {listed}\n")
    argv = kustomize_argv(config)
    assert fingerprint(argv, overlay.parent, workspace.manifests, PARSER) is None


def test_comments_urls_and_patch_paths_are_not_references(tmp_path: Path) -> None:
    text = (
        "# Upstream file: https://github.com/x/y/blob/master/crd.yaml\n"
        "resources:\n- github.com-sa.yaml  # see https://example.com\n- ../base\n"
        "patches:\n- patch: |-\n    - op: add\n      path: /spec/template/spec/containers/0/args/-\n"
    )
    tree = tmp_path / "manifests"
    assert not reaches_outside(text, tree / "upstream" / "a" / "b" / "kustomization.yaml", tree)
    assert reaches_outside("resources:\n- ../../../x\n", tree / "overlays" / "o" / "kustomization.yaml", tree)


@pytest.mark.skipif(UPSTREAM_MIRROR is None, reason=NO_MIRROR)
def test_a_changed_config_value_renders_the_real_overlay_again(lab_home: Path) -> None:
    config = load_config(env={"LAB_HOME": str(lab_home), "LAB_MANIFESTS_DIR": str(UPSTREAM_MIRROR)})
    workspace = Workspace.for_config(config)
    prepare_overlays(config, workspace)
    default = build_overlay(config, workspace, "kfp")
    assert entry(config, "kfp").is_file()
    pinned = dataclasses.replace(
        config, versions=dataclasses.replace(config.versions, mlmd_pin=config.versions.mlmd_fallback_tag)
    )
    prepare_overlays(pinned, workspace)

    def grpc_image(objects: list[dict[str, Any]]) -> str:
        deployment = next(o for o in objects if o["metadata"]["name"] == "metadata-grpc-deployment")
        return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])

    pinned_image = grpc_image(build_overlay(pinned, workspace, "kfp"))
    assert pinned_image.endswith(f":{config.versions.mlmd_fallback_tag}")
    assert grpc_image(default).endswith(f":{config.versions.mlmd_tag}")
    # Every overlay of the pinned mirror can be cached: none reaches outside the staged tree.
    for name in ("cert-manager", "kfp-cluster-scoped", "kfp", "model-registry", "kserve"):
        key = fingerprint(kustomize_argv(pinned), workspace.overlay(name), workspace.manifests, PARSER)
        assert key is not None, name
