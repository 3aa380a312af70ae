"""Where cluster evidence comes from: the one interface, a live kind cluster, recorded objects.

Every cluster fact the doctor judges goes through :class:`ClusterSource`. The live source
asks the API server through :class:`lab.kube.Kube` (the one door, short timeouts) and the kind node
containers through the container engine; :class:`RecordedCluster` serves objects built with
the client's own models (``V1Pod``, ``CoreV1Event``...) exactly as the API returns them, so
every failure mode can be judged without a cluster (tests, replaying a bundle).
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lab.errors import ClusterUnreachable

if TYPE_CHECKING:
    from lab.kube import Kube

# Kinds listed cluster-wide; the lab's cluster is small, one list per kind is cheap.
KINDS = ("pods", "events", "pvcs", "storageclasses", "deployments", "nodes", "namespaces")

# RecordedCluster sorts model objects by their class name, so this module never needs to
# import the kubernetes client (slow to import) unless a live cluster is used.
_MODEL_KINDS = {
    "V1Pod": "pods",
    "CoreV1Event": "events",
    "V1PersistentVolumeClaim": "pvcs",
    "V1StorageClass": "storageclasses",
    "V1Deployment": "deployments",
    "V1Node": "nodes",
    "V1Namespace": "namespaces",
    "V1ConfigMap": "configmaps",
    "V1Secret": "secrets",
}

API_TIMEOUT = (3.0, 10.0)  # (connect, read) seconds for every API call
ENGINE_TIMEOUT = 8.0


class ClusterSource(Protocol):
    """The single interface through which the doctor sees a cluster."""

    description: str

    def objects(self, kind: str) -> list[Any]:
        """All objects of one of :data:`KINDS`, across namespaces (kubernetes client models)."""
        ...

    def config_map(self, namespace: str, name: str) -> Any | None:
        """One ``V1ConfigMap`` or None when absent."""
        ...

    def secret(self, namespace: str, name: str) -> Any | None:
        """One ``V1Secret`` or None when absent (the caller keeps only key names)."""
        ...

    def custom_objects(self, group: str, version: str, plural: str) -> list[dict[str, Any]] | None:
        """Custom objects cluster-wide as API dicts; None when the resource type is not served."""
        ...

    def pod_log(self, namespace: str, pod: str, container: str, *, previous: bool, tail_lines: int) -> str:
        """The tail of one container's log."""
        ...

    def finalized_objects(self, namespace: str) -> list[dict[str, Any]]:
        """Objects in ``namespace`` being deleted but held by finalizers.

        Each is a dict of ``kind``, ``resource``, ``name`` and ``finalizers``; ``resource`` is
        what kubectl takes (``configmaps``, ``inferenceservices.serving.kserve.io``).
        """
        ...

    def node_file(self, node: str, path: str) -> str | None:
        """A file on a kind node (a container), or None when it does not exist."""
        ...

    def container_networks(self, container: str) -> list[str] | None:
        """Networks a container (e.g. the registry) is attached to; None when no such container."""
        ...

    def node_lookup(self, node: str, host: str) -> str:
        """Resolve ``host`` from inside a node; returns the answer or the error text."""
        ...


class RecordedCluster:
    """A cluster made of recorded objects: kubernetes client models and API-shaped dicts."""

    def __init__(
        self,
        objects: Iterable[Any] = (),
        *,
        custom: dict[tuple[str, str, str], list[dict[str, Any]]] | None = None,
        finalized: dict[str, list[dict[str, Any]]] | None = None,
        logs: dict[tuple[str, str, str], str] | None = None,
        node_files: dict[tuple[str, str], str] | None = None,
        networks: dict[str, list[str]] | None = None,
        lookups: dict[tuple[str, str], str] | None = None,
        description: str = "recorded objects",
    ) -> None:
        self.description = description
        self._by_kind: dict[str, list[Any]] = {kind: [] for kind in (*KINDS, "configmaps", "secrets")}
        for obj in objects:
            kind = _MODEL_KINDS.get(type(obj).__name__)
            if kind is None:
                raise TypeError(
                    f"RecordedCluster does not know {type(obj).__name__}; known: {sorted(_MODEL_KINDS)}"
                )
            self._by_kind[kind].append(obj)
        self._custom = custom or {}
        self._finalized = finalized or {}
        self._logs = logs or {}
        self._node_files = node_files or {}
        self._networks = networks or {}
        self._lookups = lookups or {}

    def objects(self, kind: str) -> list[Any]:
        """All recorded objects of a kind."""
        return list(self._by_kind[kind])

    def _named(self, kind: str, namespace: str, name: str) -> Any | None:
        for obj in self._by_kind[kind]:
            if obj.metadata.namespace == namespace and obj.metadata.name == name:
                return obj
        return None

    def config_map(self, namespace: str, name: str) -> Any | None:
        """A recorded ConfigMap."""
        return self._named("configmaps", namespace, name)

    def secret(self, namespace: str, name: str) -> Any | None:
        """A recorded Secret."""
        return self._named("secrets", namespace, name)

    def custom_objects(self, group: str, version: str, plural: str) -> list[dict[str, Any]] | None:
        """Recorded custom objects; None when that resource type was not recorded (not served)."""
        items = self._custom.get((group, version, plural))
        return None if items is None else list(items)

    def pod_log(self, namespace: str, pod: str, container: str, *, previous: bool, tail_lines: int) -> str:
        """A recorded log, cut to ``tail_lines``."""
        text = self._logs.get((namespace, pod, container))
        if text is None:
            raise ClusterUnreachable(f"no log recorded for {namespace}/{pod} container {container}")
        return "\n".join(text.splitlines()[-tail_lines:])

    def finalized_objects(self, namespace: str) -> list[dict[str, Any]]:
        """Recorded objects with finalizers in ``namespace``."""
        return list(self._finalized.get(namespace, []))

    def node_file(self, node: str, path: str) -> str | None:
        """A recorded node file."""
        return self._node_files.get((node, path))

    def container_networks(self, container: str) -> list[str] | None:
        """Recorded container networks."""
        return self._networks.get(container)

    def node_lookup(self, node: str, host: str) -> str:
        """A recorded lookup answer."""
        return self._lookups.get((node, host), "(no lookup recorded)")


class LiveCluster:
    """The lab's cluster, through the door (:mod:`lab.kube`) and the container engine."""

    def __init__(self, context: str, engine: str = "", kubeconfig: Path | None = None) -> None:
        self.context = context
        self.engine = engine
        self.kubeconfig = kubeconfig
        self.description = f"context {context}" + (f" ({kubeconfig})" if kubeconfig else "")
        self._lock = threading.Lock()
        self._kube: Kube | None = None

    def _client(self) -> Kube:
        with self._lock:
            if self._kube is None:
                # Imported here: the door loads the kubernetes client, slow to import.
                from lab.kube import Kube

                config_file = str(self.kubeconfig) if self.kubeconfig else None
                self._kube = Kube.from_kubeconfig(config_file, self.context, timeout=API_TIMEOUT)
            return self._kube

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from lab.kube import TRANSPORT_ERRORS, ApiError

        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise ClusterUnreachable(f"{what}: API server answered {exc.status} {exc.reason}") from None
        except TRANSPORT_ERRORS as exc:
            host = self._kube.host if self._kube is not None else "?"
            reason = getattr(exc, "reason", None) or exc
            raise ClusterUnreachable(
                f"{what}: API server {host} ({self.description}) does not answer: {reason}"
            ) from None

    def objects(self, kind: str) -> list[Any]:
        """List one kind across namespaces."""
        answer = self._call(f"list {kind}", self._client().cluster_wide, kind)
        return list(answer) if answer is not None else []

    def config_map(self, namespace: str, name: str) -> Any | None:
        """Read one ConfigMap."""
        return self._call(f"read configmap {namespace}/{name}", self._client().config_map, namespace, name)

    def secret(self, namespace: str, name: str) -> Any | None:
        """Read one Secret (the Evidence layer keeps only its key names)."""
        return self._call(f"read secret {namespace}/{name}", self._client().secret, namespace, name)

    def custom_objects(self, group: str, version: str, plural: str) -> list[dict[str, Any]] | None:
        """List custom objects cluster-wide; None when the CRD is not installed."""
        answer = self._call(f"list {plural}.{group}", self._client().custom_objects, group, version, plural)
        return None if answer is None else list(answer)

    def pod_log(self, namespace: str, pod: str, container: str, *, previous: bool, tail_lines: int) -> str:
        """Read a container's log tail."""
        text = self._call(
            f"log of {namespace}/{pod} container {container}",
            self._client().pod_log,
            namespace,
            pod,
            container,
            previous=previous,
            tail_lines=tail_lines,
        )
        return str(text or "")

    def finalized_objects(self, namespace: str) -> list[dict[str, Any]]:
        """List every namespaced resource type in ``namespace``; keep deleted objects held by finalizers."""
        kube = self._client()
        resources = self._call("discover resource types", kube.listable_resources) or []
        found: dict[tuple[str, str], dict[str, Any]] = {}
        # Preferred versions first; a kind served in several groups or versions is listed once.
        for resource in sorted(resources, key=lambda r: not r.preferred):
            if not resource.namespaced:
                continue
            answer = self._call(f"list {resource.name} in {namespace}", resource.get, namespace=namespace)
            for item in (answer.to_dict().get("items") or []) if answer is not None else []:
                meta = item.get("metadata") or {}
                key = (resource.kind, meta.get("name", ""))
                if meta.get("finalizers") and meta.get("deletionTimestamp") and key not in found:
                    plural = f"{resource.name}.{resource.group}" if resource.group else resource.name
                    found[key] = {
                        "kind": resource.kind,
                        "resource": plural,
                        "name": key[1],
                        "finalizers": list(meta["finalizers"]),
                    }
        return list(found.values())

    def _engine(self, *argv: str) -> subprocess.CompletedProcess[str]:
        if not self.engine:
            raise ClusterUnreachable("no container engine answers, so kind nodes cannot be inspected")
        try:
            return subprocess.run(
                [self.engine, *argv], capture_output=True, text=True, timeout=ENGINE_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ClusterUnreachable(f"`{self.engine} {' '.join(argv)}` failed: {exc}") from None

    def node_file(self, node: str, path: str) -> str | None:
        """``<engine> exec <node> cat <path>``."""
        proc = self._engine("exec", node, "cat", path)
        return proc.stdout if proc.returncode == 0 else None

    def container_networks(self, container: str) -> list[str] | None:
        """``<engine> inspect`` the container's networks."""
        import json

        proc = self._engine("inspect", "--format", "{{json .NetworkSettings.Networks}}", container)
        if proc.returncode != 0:
            return None
        try:
            return sorted(json.loads(proc.stdout or "{}") or {})
        except ValueError:
            return []

    def node_lookup(self, node: str, host: str) -> str:
        """``getent hosts`` from inside the node container."""
        proc = self._engine("exec", node, "getent", "hosts", host)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
        error = f": {proc.stderr.strip()}" if proc.stderr.strip() else ""
        return f"cannot resolve {host} (getent exit {proc.returncode}{error})"
