"""Cluster facts of a doctor run: objects, logs and node files, through one ClusterSource.

A mixin of :class:`lab.doctor.evidence.Evidence`, which provides the memo, the mode, the
engine probe and redaction; kept apart so each file stays one concern.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lab.components import COMPONENTS
from lab.config import LabConfig
from lab.doctor.cluster import ClusterSource, LiveCluster
from lab.doctor.facts import DOCKER_CONFIG_KEYS, SecretFacts, docker_auth_hosts
from lab.engine import EngineProbe
from lab.ownership import FoundComponent, found_components

T = TypeVar("T")


class EvidenceUnavailable(Exception):
    """A fact cannot be collected here (no cluster, no engine); checks needing it are skipped.

    ``str(exc)`` is the short reason shown for skipped checks; ``detail`` the full cause.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.detail = detail or reason


class ClusterFacts:
    """Cluster facts, each collected at most once (through ``_memo``)."""

    config: LabConfig
    _cluster: ClusterSource | None

    def _memo(self, key: str, produce: Callable[[], T]) -> T:
        raise NotImplementedError

    @property
    def mode(self) -> str:
        """The resolved mode (provided by Evidence)."""
        raise NotImplementedError

    def engine(self) -> EngineProbe:
        """The container engine probe (provided by Evidence)."""
        raise NotImplementedError

    def redact(self, text: str) -> str:
        """``text`` with secrets replaced (provided by Evidence)."""
        raise NotImplementedError

    @property
    def cluster_context(self) -> str:
        """The lab cluster's kubeconfig context (kind's, or the one cluster mode was given)."""
        from lab.kube import context_name

        return context_name(self.config)

    def cluster_source(self) -> ClusterSource:
        """The cluster source in use (the live kind cluster unless one was given)."""

        def build() -> ClusterSource:
            if self._cluster is not None:
                return self._cluster
            if self.mode not in ("kind", "cluster"):
                raise EvidenceUnavailable("local mode has no cluster")
            if self.mode == "cluster":
                kubeconfig = Path(self.config.kubeconfig) if self.config.kubeconfig else None
                return LiveCluster(self.cluster_context, kubeconfig=kubeconfig)
            engine = self.engine()
            # kind writes the context into the default kubeconfig (KUBECONFIG or ~/.kube/config).
            return LiveCluster(self.cluster_context, engine=engine.engine if engine.answers else "")

        return self._memo("cluster/source", build)

    def _objects(self, kind: str) -> list[Any]:
        return self._memo(f"cluster/{kind}", lambda: self.cluster_source().objects(kind))

    def pods(self) -> list[Any]:
        """Every pod (``V1Pod``)."""
        return self._objects("pods")

    def events(self) -> list[Any]:
        """Every event (``CoreV1Event``)."""
        return self._objects("events")

    def pvcs(self) -> list[Any]:
        """Every PersistentVolumeClaim."""
        return self._objects("pvcs")

    def storage_classes(self) -> list[Any]:
        """Every StorageClass."""
        return self._objects("storageclasses")

    def deployments(self) -> list[Any]:
        """Every Deployment."""
        return self._objects("deployments")

    def found_components(self) -> dict[str, FoundComponent]:
        """The declared components someone else installed (cluster mode only; :mod:`lab.ownership` judges)."""
        if self.mode != "cluster":
            return {}

        def judge() -> dict[str, FoundComponent]:
            from lab.kube import to_manifest

            deployments = [to_manifest(d) for d in self.deployments()]
            return found_components(COMPONENTS, deployments, self.config.names.cluster, self.config.versions)

        return self._memo("cluster/found-components", judge)

    def nodes(self) -> list[Any]:
        """Every node."""
        return self._objects("nodes")

    def namespaces(self) -> list[Any]:
        """Every Namespace."""
        return self._objects("namespaces")

    def finalized_objects(self, namespace: str) -> list[dict[str, Any]]:
        """Objects with finalizers in one namespace (what keeps a Terminating namespace)."""
        return self._memo(
            f"cluster/finalized/{namespace}", lambda: self.cluster_source().finalized_objects(namespace)
        )

    def config_map_keys(self, namespace: str, name: str) -> tuple[str, ...] | None:
        """Key names of a ConfigMap, or None when it does not exist."""

        def read() -> tuple[str, ...] | None:
            cm = self.cluster_source().config_map(namespace, name)
            if cm is None:
                return None
            return tuple(sorted({*(cm.data or {}), *(cm.binary_data or {})}))

        return self._memo(f"cluster/configmap/{namespace}/{name}", read)

    def secret(self, namespace: str, name: str) -> SecretFacts | None:
        """Key names (and docker-config auth hosts) of a Secret, or None when it does not exist."""

        def read() -> SecretFacts | None:
            secret = self.cluster_source().secret(namespace, name)
            if secret is None:
                return None
            data = dict(secret.data or {})
            plain = dict(secret.string_data or {})
            hosts: tuple[str, ...] | None = None
            credentialed: tuple[str, ...] = ()
            for key in DOCKER_CONFIG_KEYS:
                if key in plain or key in data:
                    try:
                        text = plain[key] if key in plain else base64.b64decode(data[key]).decode()
                        hosts, credentialed = docker_auth_hosts(text)
                    except (ValueError, binascii.Error, UnicodeDecodeError):
                        hosts = ()
                    break
            keys = tuple(sorted({*data, *plain}))
            return SecretFacts(namespace, name, secret.type or "Opaque", keys, hosts, credentialed)

        return self._memo(f"cluster/secret/{namespace}/{name}", read)

    def custom_objects(self, group: str, version: str, plural: str) -> list[dict[str, Any]] | None:
        """Custom objects (API dicts); None when the CRD is not installed."""
        return self._memo(
            f"cluster/{plural}.{group}", lambda: self.cluster_source().custom_objects(group, version, plural)
        )

    def pod_log(
        self, namespace: str, pod: str, container: str, *, previous: bool = False, lines: int = 20
    ) -> list[str]:
        """A container's log tail (``previous``: the crashed run's), secrets redacted."""

        def read() -> list[str]:
            text = self.cluster_source().pod_log(
                namespace, pod, container, previous=previous, tail_lines=lines
            )
            return [self.redact(line) for line in text.splitlines()[-lines:]] or ["(log is empty)"]

        which = "previous" if previous else "current"
        return self._memo(f"cluster/logs/{namespace}/{pod}/{container}/{which}", read)

    def node_file(self, node: str, path: str) -> str | None:
        """A file on a kind node, or None when absent."""
        return self._memo(
            f"cluster/node-file/{node}{path}", lambda: self.cluster_source().node_file(node, path)
        )

    def container_networks(self, container: str) -> list[str] | None:
        """Networks of a container on the host engine (None: no such container)."""
        return self._memo(
            f"cluster/container-networks/{container}",
            lambda: self.cluster_source().container_networks(container),
        )

    def node_lookup(self, node: str, host: str) -> str:
        """Resolve ``host`` from inside a kind node."""
        return self._memo(
            f"cluster/node-dns/{node}/{host}", lambda: self.cluster_source().node_lookup(node, host)
        )
