"""Where cluster mode keeps its generated files under ``$LAB_HOME``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.config import LabConfig


@dataclass(frozen=True)
class Workspace:
    """The cluster-mode work directory: kind config, overlays, staged manifest mirror.

    Everything here is generated from the config and the mirror, so ``lab down --purge``
    may delete it; registry data lives in a container volume, not here.
    """

    root: Path

    @classmethod
    def for_config(cls, config: LabConfig) -> Workspace:
        """The workspace a config uses: ``$LAB_HOME/kind``."""
        return cls(config.home / "kind")

    @property
    def kind_config(self) -> Path:
        """The rendered kind cluster config."""
        return self.root / "kind-config.yaml"

    @property
    def manifests(self) -> Path:
        """Every file a build of the overlays reads: the overlays and the staged mirror."""
        return self.root / "manifests"

    @property
    def overlays(self) -> Path:
        """The lab's kustomize overlays, one directory per component."""
        return self.manifests / "overlays"

    @property
    def upstream(self) -> Path:
        """The staged copy of a local manifest mirror, remote references rewritten."""
        return self.manifests / "upstream"

    @property
    def registry_auth(self) -> Path:
        """The htpasswd directory mounted into the registry container."""
        return self.root / "registry" / "auth"

    def overlay(self, component: str) -> Path:
        """One component's overlay directory."""
        return self.overlays / component
