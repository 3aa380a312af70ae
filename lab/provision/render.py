"""Every manifest the lab applies, rendered without a cluster.

Upstream manifests are never copied into the project: the lab writes small kustomize
overlays (``templates/kind-overlays/``) that point at the pinned upstream trees (remote refs
or the staged mirror), builds them with kustomize and adds the few objects it owns
(the kit:// storage container, the registry ConfigMap, the pipeline secrets).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from lab.components import COMPONENTS
from lab.config import LabConfig
from lab.errors import CommandFailed, LabError
from lab.kube_objects import Manifest
from lab.provision.files import FileSpec, apply_files
from lab.provision.render_cache import cached_render, fingerprint, keep_render
from lab.provision.sources import ManifestSources, stage_mirror
from lab.provision.workspace import Workspace
from lab.storage_container import storage_container
from lab.tools import kustomize_argv

# libyaml when present: KServe's CRDs alone are tens of thousands of lines.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# The lab overlays in install order, as the components declare them (lab.components).
OVERLAYS = tuple(overlay for component in COMPONENTS for overlay in component.overlays)


def overlay_specs(config: LabConfig, workspace: Workspace) -> list[FileSpec]:
    """The overlay files the lab writes into the workspace, one kustomization per component."""
    sources = ManifestSources(config, workspace)
    specs = []
    for overlay in OVERLAYS:
        directory = workspace.overlay(overlay.name)
        values: dict[str, Any] = {
            "config": config,
            "sources": {var: sources.resource(key, path, directory) for var, key, path in overlay.resources},
        }
        if overlay.name == "kfp":
            values["metadata_tag"] = config.versions.mlmd_pin
        specs.append(
            FileSpec(
                dest=str(directory / "kustomization.yaml"),
                template=f"kind-overlays/{overlay.name}/kustomization.yaml.j2",
                values=values,
            )
        )
    return specs


def prepare_overlays(config: LabConfig, workspace: Workspace) -> list[str]:
    """Stage the mirror (if any) and write the overlays; returns what changed."""
    changes = ["staged manifest mirror"] if stage_mirror(config, workspace) else []
    return changes + apply_files(overlay_specs(config, workspace))


def kustomize_build(config: LabConfig, directory: Path) -> list[Manifest]:
    """Build one kustomization into objects."""
    argv = [*kustomize_argv(config), str(directory)]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        raise LabError(f"kustomize build of {directory} did not finish in 10 minutes") from None
    if out.returncode != 0:
        raise CommandFailed(argv, out.returncode, out.stderr + out.stdout)
    return [doc for doc in yaml.load_all(out.stdout, Loader=_LOADER) if doc]


# KServe's config/ tree names every image it releases `:latest`; its release script rewrites
# them to the release tag (kustomize's image transformer cannot reach the image names inside
# the inferenceservice-config ConfigMap's JSON values, so the lab rewrites all of them here).
_KSERVE_LATEST = re.compile(r"\b(kserve/[a-z0-9-]+):latest(-gpu)?\b")


def pin_release_images(value: Any, tag: str) -> Any:
    """Replace ``kserve/<image>:latest`` with ``kserve/<image>:<tag>`` everywhere in ``value``."""
    if isinstance(value, str):
        return _KSERVE_LATEST.sub(lambda m: f"{m[1]}:{tag}{m[2] or ''}", value)
    if isinstance(value, list):
        return [pin_release_images(item, tag) for item in value]
    if isinstance(value, dict):
        return {key: pin_release_images(item, tag) for key, item in value.items()}
    return value


def build_overlay(config: LabConfig, workspace: Workspace, name: str) -> list[Manifest]:
    """The objects of one overlay (overlays must have been prepared).

    An overlay whose inputs are unchanged since an earlier build is read from the render
    cache (:mod:`lab.provision.render_cache`) instead of built again. Builds in a workspace
    outside ``$LAB_HOME`` (a dry run's scratch copy) read the cache but never write it.
    """
    directory = workspace.overlay(name)
    parser = (yaml.__version__, _LOADER.__name__)
    key = fingerprint(kustomize_argv(config), directory, workspace.manifests, parser)
    objects = cached_render(config, name, key) if key else None
    if objects is None:
        objects = kustomize_build(config, directory)
        if key and workspace.root.resolve().is_relative_to(config.home.resolve()):
            keep_render(config, name, key, objects)
    if name == "kserve":
        objects = [pin_release_images(obj, config.versions.kserve) for obj in objects]
    return objects


def render_all(config: LabConfig, workspace: Workspace | None = None) -> dict[str, list[Manifest]]:
    """Every object the lab applies, per step, in apply order (no cluster needed)."""
    from lab.provision.registry import hosting_configmap
    from lab.provision.secrets import secret_objects

    workspace = workspace or Workspace.for_config(config)
    prepare_overlays(config, workspace)
    rendered = {overlay.name: build_overlay(config, workspace, overlay.name) for overlay in OVERLAYS}
    rendered["kserve"].append(storage_container(config))
    rendered["registry"] = [hosting_configmap(config)]
    rendered["secrets"] = secret_objects(config, model_registry_token="<generated at apply time>")
    return rendered


def summarize(objects: Iterable[Manifest]) -> str:
    """``12 objects: 3 Deployment, 2 Service, ...`` for plans."""
    counts: dict[str, int] = {}
    for obj in objects:
        counts[obj["kind"]] = counts.get(obj["kind"], 0) + 1
    total = sum(counts.values())
    kinds = ", ".join(
        f"{n} {kind}" for kind, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    )
    return f"{total} objects: {kinds}"
