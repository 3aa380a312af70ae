"""The kubeconfig's contexts, read without the ``kubernetes`` client (slow to import).

Files merge as kubectl merges them (``KUBECONFIG`` is a list; the first file to name a context
or a current context wins). ``lab status`` in auto mode asks this first: kind writes a
``kind-<cluster>`` context when it creates a cluster and removes it when it deletes one, so
without that context there is no kind lab to show, and neither the container engine nor the
API server need be asked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from lab.config import LabConfig

# libyaml when present (as for the manifests): a kubeconfig can carry large certificates.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def kind_context(config: LabConfig) -> str:
    """The context kind writes for the lab cluster (``--context`` when one was given)."""
    return config.kube_context or f"kind-{config.names.cluster}"


def kubeconfig_files(config_file: str | None = None) -> list[Path]:
    """``config_file`` (or ``KUBECONFIG``), each of its ``:``-separated files, else ~/.kube/config."""
    listed = [part for part in (config_file or os.environ.get("KUBECONFIG", "")).split(os.pathsep) if part]
    return [Path(part).expanduser() for part in listed] or [Path("~/.kube/config").expanduser()]


def _documents(config_file: str | None) -> list[dict[str, Any]]:
    documents = []
    for path in kubeconfig_files(config_file):
        try:
            document = yaml.load(path.read_text(), Loader=_LOADER)
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(document, dict):
            documents.append(document)
    return documents


def kubeconfig_contexts(config_file: str | None = None) -> list[str]:
    """The context names in the kubeconfig (none from a file that is missing or unreadable)."""
    names: list[str] = []
    for document in _documents(config_file):
        contexts = document.get("contexts")
        for context in contexts if isinstance(contexts, list) else []:
            if isinstance(context, dict) and context.get("name") and str(context["name"]) not in names:
                names.append(str(context["name"]))
    return names


def current_context(config_file: str | None = None) -> str:
    """The kubeconfig's current context (``""`` when none is set)."""
    for document in _documents(config_file):
        if document.get("current-context"):
            return str(document["current-context"])
    return ""


def context_name(config: LabConfig) -> str:
    """The kubeconfig context of the lab's cluster.

    ``--context`` (cluster mode) when given; in cluster mode otherwise the kubeconfig's
    current context; else the one kind writes for the lab cluster.
    """
    if config.kube_context:
        return config.kube_context
    if config.mode == "cluster":
        return current_context(config.kubeconfig or None)
    return kind_context(config)
