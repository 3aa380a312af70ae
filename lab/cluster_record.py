"""The flags ``lab up --mode cluster`` was run with, recorded per cluster and context.

The doctor's remedies and ``--fix`` re-run ``lab up``; without the flags the lab was brought
up with (``--manifests-dir`` in an air-gapped setup, ``--registry``) that re-run installs
something else or fails. ``up`` writes them to ``$LAB_HOME/clusters/<context>-<hash>.json``
(atomically), keyed by the kubeconfig file and the resolved context, and ``lab doctor``
fills what its own command line leaves out from there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

from lab.atomic_files import atomic_write
from lab.config import LabConfig

# What is recorded: the LabConfig fields behind --manifests-dir and --registry.
RECORDED = ("manifests_dir", "cluster_registry")


def _context(config: LabConfig) -> str:
    if config.kube_context:
        return config.kube_context
    # Imported here: the door loads the kubernetes client, which reading a record rarely needs.
    from lab.kube import context_name

    try:
        return context_name(config)
    except Exception:  # an unreadable kubeconfig has no current context; its path still keys it
        return ""


def record_path(config: LabConfig) -> Path:
    """``$LAB_HOME/clusters/<context>-<hash of kubeconfig and context>.json``."""
    context = _context(config)
    kubeconfig = str(Path(config.kubeconfig).resolve()) if config.kubeconfig else ""
    digest = hashlib.sha256(f"{kubeconfig}\0{context}".encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", context).strip("-.") or "current"
    return config.home / "clusters" / f"{slug}-{digest}.json"


def record_up_flags(config: LabConfig) -> Path:
    """Record the flags of this ``lab up --mode cluster`` for later remedies; returns the file."""
    path = record_path(config)
    body = {
        "kubeconfig": config.kubeconfig,
        "context": _context(config),
        **{name: getattr(config, name) for name in RECORDED},
    }
    atomic_write(path, json.dumps(body, indent=2) + "\n")
    return path


def recorded_flags(config: LabConfig) -> dict[str, str]:
    """What the last ``up`` on this cluster and context recorded (empty when nothing or unreadable)."""
    try:
        data = json.loads(record_path(config).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {name: data[name] for name in RECORDED if isinstance(data.get(name), str)}


def with_recorded_flags(config: LabConfig) -> LabConfig:
    """``config`` with each recorded flag it does not set itself (the command line wins)."""
    recorded = recorded_flags(config)
    return dataclasses.replace(
        config,
        manifests_dir=config.manifests_dir or recorded.get("manifests_dir", ""),
        cluster_registry=config.cluster_registry or recorded.get("cluster_registry", ""),
    )
