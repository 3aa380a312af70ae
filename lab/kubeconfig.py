"""Which kubeconfig and context the lab uses, read and checked before any client is built.

A kubeconfig that is not YAML, is not a mapping, or lacks the context asked for is the user's
input to fix, so it is one :class:`KubeconfigInvalid` line naming the file (and the line, for
YAML errors), never a client exception. Reading it needs no ``kubernetes`` client.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from lab.errors import UsageError

# libyaml when present (as for the manifests): a kubeconfig can carry large certificates.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

if TYPE_CHECKING:
    from lab.config import LabConfig


class KubeconfigInvalid(UsageError):
    """The kubeconfig cannot be used as given: unreadable, not YAML, not a kubeconfig, no such context."""


@dataclass(frozen=True)
class Kubeconfig:
    """The contexts of the kubeconfig file(s) the lab reads, and the current one."""

    files: tuple[Path, ...]
    contexts: dict[str, dict[str, Any]]
    current: str

    @property
    def where(self) -> str:
        """The file(s), for messages."""
        return ":".join(str(f) for f in self.files) or "(no kubeconfig file)"

    def user_of(self, context: str) -> str:
        """The kubeconfig user entry a context authenticates as."""
        return str((self.contexts.get(context) or {}).get("user") or "?")


def kubeconfig_files(explicit: str = "") -> tuple[Path, ...]:
    """``--kubeconfig`` when given, else ``KUBECONFIG``'s files, else ``~/.kube/config`` (as kubectl)."""
    if explicit:
        return (Path(explicit),)
    listed = [Path(p) for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return tuple(listed) if listed else (Path.home() / ".kube" / "config",)


def read_kubeconfig(explicit: str = "") -> Kubeconfig:
    """Read and check the kubeconfig; a file that is named but unusable raises KubeconfigInvalid."""
    files = kubeconfig_files(explicit)
    contexts: dict[str, dict[str, Any]] = {}
    current = ""
    for path in files:
        if not path.exists() and not explicit:
            continue  # KUBECONFIG may list files that do not exist; kubectl skips them too
        document = _load(path)
        for entry in document.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name") and entry["name"] not in contexts:
                contexts[str(entry["name"])] = entry.get("context") or {}
        current = current or str(document.get("current-context") or "")
    return Kubeconfig(files, contexts, current)


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise KubeconfigInvalid(
            f"kubeconfig {path} does not exist: pass an existing file to --kubeconfig"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KubeconfigInvalid(
            f"kubeconfig {path} cannot be read: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    try:
        document = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise KubeconfigInvalid(f"kubeconfig {path} is not YAML{where}: {problem}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise KubeconfigInvalid(
            f"kubeconfig {path} is a YAML {type(document).__name__}, not a kubeconfig "
            "(a mapping with clusters, contexts and users)"
        )
    return document


def kind_context(config: LabConfig) -> str:
    """The context kind writes for the lab cluster (``--context`` when one was given)."""
    return config.kube_context or f"kind-{config.names.cluster}"


def context_name(config: LabConfig) -> str:
    """The kubeconfig context of the lab's cluster.

    ``--context`` (cluster mode) when given; in cluster mode otherwise the kubeconfig's
    current context; else the one kind writes for the lab cluster.
    """
    if config.kube_context:
        return config.kube_context
    if config.mode == "cluster":
        try:
            return read_kubeconfig(config.kubeconfig).current
        except KubeconfigInvalid:
            return ""
    return kind_context(config)


def kubeconfig_contexts(config_file: str = "") -> list[str]:
    """The context names in a kubeconfig (none when it is missing or unreadable)."""
    try:
        return list(read_kubeconfig(config_file).contexts)
    except KubeconfigInvalid:
        return []


def checked_context(config: LabConfig) -> tuple[Kubeconfig, str]:
    """The kubeconfig and the context to use, or KubeconfigInvalid saying what to fix."""
    kubeconfig = read_kubeconfig(config.kubeconfig)
    context = context_name(config)
    if not any(path.exists() for path in kubeconfig.files):
        raise KubeconfigInvalid(
            f"no kubeconfig: {kubeconfig.where} does not exist; pass one with --kubeconfig"
        )
    if not context:
        raise KubeconfigInvalid(
            f"kubeconfig {kubeconfig.where} has no current-context: name one with --context "
            f"(contexts: {', '.join(kubeconfig.contexts) or 'none'})"
        )
    if context not in kubeconfig.contexts:
        raise KubeconfigInvalid(
            f"context {context!r} is not in kubeconfig {kubeconfig.where} "
            f"(contexts: {', '.join(kubeconfig.contexts) or 'none'})"
        )
    return kubeconfig, context
