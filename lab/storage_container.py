"""The ``kitops`` ClusterStorageContainer as pinned: one rendering for KServe's step and the doctor.

Provisioning applies it; the doctor compares the live object with it, so a drifted image or
spec is named field by field instead of passing as "KServe ready".
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from lab.config import LabConfig
from lab.kube_objects import Manifest
from lab.pipeline.scripts import STORAGE_INITIALIZER, unpacker_command
from lab.templates import render_template


def storage_container(config: LabConfig) -> Manifest:
    """The ClusterStorageContainer that serves ``kit://`` URIs."""
    text = render_template(
        "cluster-storage-container.yaml.j2",
        config=config,
        # The unpacker's text, as JSON (a YAML flow sequence): KServe appends kit://REF and
        # /mnt/models as the container's args.
        command=json.dumps([*unpacker_command(), STORAGE_INITIALIZER]),
        # The unpacker talks to kind-registry:5000 from inside the cluster, which serves plain HTTP.
        unpack_flags="--plain-http",
    )
    manifest: Manifest = yaml.safe_load(text)
    return manifest


def spec_drift(pinned: Any, live: Any, path: str = "spec") -> list[str]:
    """Where ``live`` differs from ``pinned`` (every field the lab sets; extra live fields are fine).

    Lists compare whole: the order of a container's env entries is part of its spec.
    """
    if isinstance(pinned, dict) and isinstance(live, dict):
        return [
            line
            for key, value in pinned.items()
            for line in spec_drift(value, live.get(key), f"{path}.{key}")
        ]
    if pinned != live:
        return [f"{path} is {_shown(live)}, pinned {_shown(pinned)}"]
    return []


def _shown(value: Any) -> str:
    # The storage initializer's command carries the whole unpacker: name its size, not its text.
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:80]}… ({len(text)} characters)"
