"""The kubeconfig's context names, read without the ``kubernetes`` client (slow to import).

``lab status`` in auto mode asks this first: kind writes a ``kind-<cluster>`` context when it
creates a cluster and removes it when it deletes one, so without that context there is no kind
lab to show, and neither the container engine nor the API server need be asked.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from lab.config import LabConfig


def kind_context(config: LabConfig) -> str:
    """The context kind writes for the lab cluster (``--context`` when one was given)."""
    return config.kube_context or f"kind-{config.names.cluster}"


def kubeconfig_files(config_file: str | None = None) -> list[Path]:
    """``config_file``, else every file of ``KUBECONFIG`` (merged, as kubectl does), else ~/.kube/config."""
    if config_file:
        return [Path(config_file).expanduser()]
    listed = [part for part in os.environ.get("KUBECONFIG", "").split(os.pathsep) if part]
    return [Path(part).expanduser() for part in listed] or [Path("~/.kube/config").expanduser()]


def context_names(config_file: str | None = None) -> list[str]:
    """The context names of the kubeconfig (none from a file that is missing or unreadable)."""
    names: list[str] = []
    for path in kubeconfig_files(config_file):
        try:
            document = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        contexts = document.get("contexts") if isinstance(document, dict) else None
        for context in contexts if isinstance(contexts, list) else []:
            if isinstance(context, dict) and context.get("name") and context["name"] not in names:
                names.append(str(context["name"]))
    return names
