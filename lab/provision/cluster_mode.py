"""``--mode cluster``: the kind-mode steps on any cluster a kubeconfig reaches.

No kind and no registry container: the lab installs cert-manager, KFP, Model Registry,
KServe and the pipeline secrets into the cluster of ``--kubeconfig``/``--context`` and
advertises the registry given with ``--registry`` (KEP-1755 ConfigMap). On a shared cluster
the lab touches only what it installed: everything it creates carries
``kubeflow-modelkit-lab/owner=<cluster name>`` and ``down --mode cluster`` deletes exactly
the objects with that label, refusing to remove what it did not create.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from lab.cluster_record import record_up_flags
from lab.config import LabConfig
from lab.deadline import Deadline, wait_until
from lab.kube import ApiError, Kube, NotFound, context_name
from lab.kube_objects import OWNER_LABEL, field_manager
from lab.progress import Progress
from lab.provision.actions import Action, Context, print_plan, run_actions
from lab.provision.create import stack_actions
from lab.provision.registry import hosting_configmap
from lab.provision.sources import ManifestSources
from lab.provision.static_volumes import ReusableVolumes


class ClusterAccess:
    """Say which cluster the lab installs into; fail early when its API server does not answer."""

    name = "cluster access"

    def is_done(self, ctx: Context) -> bool:
        """Connecting is the whole step (ClusterUnreachable names the context otherwise)."""
        kube = ctx.kube()
        ctx.progress.info(f"   context {context_name(ctx.config)}: {kube.host}")
        return True

    def execute(self, ctx: Context) -> None:
        """Nothing to do once connected."""

    def plan(self, ctx: Context) -> list[str]:
        """The context and server the lab would use."""
        kube = ctx.kube_if_reachable()
        where = kube.host if kube else "does not answer"
        return [
            f"use context {context_name(ctx.config)} ({where}); nothing is created for the cluster itself"
        ]


class RegistryHosting:
    """Advertise the registry given with ``--registry`` (``kube-public/local-registry-hosting``)."""

    name = "registry hosting"

    def _objects(self, ctx: Context) -> list[dict[str, Any]]:
        return (
            [hosting_configmap(ctx.config, ctx.config.cluster_registry)]
            if ctx.config.cluster_registry
            else []
        )

    def is_done(self, ctx: Context) -> bool:
        """In sync, or no registry was given."""
        if not ctx.config.cluster_registry:
            ctx.progress.info(
                "   no --registry given: pods pull ModelKits from wherever their references say"
            )
            return True
        return ctx.kube().in_sync(self._objects(ctx), manager=field_manager(self.name))

    def execute(self, ctx: Context) -> None:
        """Apply the ConfigMap."""
        ctx.kube().apply_all(self._objects(ctx), ctx.deadline(), manager=field_manager(self.name))

    def plan(self, ctx: Context) -> list[str]:
        """What would change."""
        kube = ctx.kube_if_reachable()
        if not self._objects(ctx):
            return ["no --registry given: nothing to advertise"]
        if kube is None:
            return ["server-side apply ConfigMap kube-public/local-registry-hosting"]
        return kube.drift(self._objects(ctx), manager=field_manager(self.name))


def cluster_actions() -> list[Action]:
    """The kind-mode steps minus preflight, kind and the registry container.

    ``reusable volumes`` frees the control plane's Released static volumes (and touches
    nothing on any other cluster), so any number of ``up``/``down`` cycles converge.
    """
    return [ClusterAccess(), RegistryHosting(), ReusableVolumes(), *stack_actions()]


def up_cluster(config: LabConfig, progress: Progress, *, dry_run: bool) -> int:
    """Install (or bring back in line) the lab on the configured cluster; a second run changes nothing."""
    ctx = Context(config, progress, mode="cluster")
    sources = ManifestSources(config, ctx.workspace).describe()
    target = f"context {context_name(config) or '(current)'}" + (
        f" of {config.kubeconfig}" if config.kubeconfig else ""
    )
    if dry_run:
        return print_plan(
            cluster_actions(),
            ctx,
            f"Plan for {target} (dry run, nothing is changed); manifests from {sources}:",
        )
    progress.info(f"Installing the lab into {target}; manifests from {sources}")
    # Before the steps: a failed `up` is exactly when the doctor's remedies must repeat its flags.
    record_up_flags(config)
    return run_actions(cluster_actions(), ctx)


# ---------------------------------------------------------------------------------------------
# down --mode cluster: exactly the objects carrying the lab's owner label.
# ---------------------------------------------------------------------------------------------

# Deleted last: removing a CRD deletes its custom resources; a Namespace everything in it.
_LAST = ("Namespace", "CustomResourceDefinition")
# Kinds whose unlabelled objects in a lab-made Namespace mean someone else put things there.
_FOREIGN_KINDS = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"),
)
# Made in every Namespace by the control plane itself.
_SYSTEM_OBJECTS = {"kube-root-ca.crt"}


def _listable(kube: Kube) -> Iterator[Any]:
    # One version per kind: the group's preferred one where it serves the kind, else any
    # (KServe's ClusterStorageContainer exists only in v1alpha1, next to a preferred v1beta1).
    seen: set[tuple[str, str]] = set()
    for resource in sorted(kube.listable_resources(), key=lambda r: not r.preferred):
        key = (resource.group, resource.kind)
        if key not in seen:
            seen.add(key)
            yield resource


def owned_objects(kube: Kube) -> list[tuple[Any, dict[str, Any]]]:
    """Every object carrying this lab's owner label, as (resource, object) pairs."""
    selector = f"{OWNER_LABEL}={kube.owner}"
    found = []
    for resource in _listable(kube):
        try:
            items = resource.get(label_selector=selector).to_dict().get("items") or []
        except (ApiError, NotFound):
            continue
        found += [(resource, {"kind": resource.kind, **item}) for item in items]
    return found


def _foreign_in(kube: Kube, namespace: str) -> list[str]:
    foreign = []
    for api_version, kind in _FOREIGN_KINDS:
        resource = kube.dynamic.resources.get(api_version=api_version, kind=kind)
        for item in resource.get(namespace=namespace).to_dict().get("items") or []:
            meta = item["metadata"]
            # Objects with an owner reference were made by a controller for an object it
            # owns (ReplicaSets' pods, issued certificates): they go with their owner.
            if meta.get("ownerReferences") or meta["name"] in _SYSTEM_OBJECTS:
                continue
            if (meta.get("labels") or {}).get(OWNER_LABEL) != kube.owner:
                foreign.append(f"{kind} {namespace}/{meta['name']}")
    return foreign


def _delete(resource: Any, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    try:
        resource.delete(
            name=meta["name"], namespace=meta.get("namespace"), body={"propagationPolicy": "Background"}
        )
    except NotFound:
        pass


def down_cluster(config: LabConfig, progress: Progress) -> int:
    """Delete every object the lab created in the cluster, and nothing else.

    A Namespace the lab created that now also holds objects the lab did not create is
    kept (with a message naming them); objects the lab only added fields to are never
    deleted. Returns 0 when everything the lab owned is gone, 1 when something was kept.
    """
    kube = Kube.connect(config)
    owned = owned_objects(kube)
    first = [(r, o) for r, o in owned if o["kind"] not in _LAST]
    last = sorted((p for p in owned if p[1]["kind"] in _LAST), key=lambda p: p[1]["kind"] != "Namespace")
    kept: list[str] = []
    with progress.step(f"delete {len(first)} objects the lab created"):
        for resource, obj in first:
            _delete(resource, obj)
    with progress.step(f"delete {len(last)} namespaces and CRDs the lab created"):
        for resource, obj in last:
            name = obj["metadata"]["name"]
            foreign = _foreign_in(kube, name) if obj["kind"] == "Namespace" else []
            if foreign:
                kept.append(
                    f"Namespace {name} kept: it holds objects the lab did not create: "
                    f"{', '.join(foreign[:5])}"
                )
                continue
            _delete(resource, obj)
        wait_until(
            lambda: _still_there(kube, owned, kept),
            Deadline(config.cluster_timeout),
            "lab objects still being deleted",
        )
    for line in kept:
        progress.info(f"REFUSED: {line}")
    if not owned:
        progress.info(
            f"nothing to delete: no object labelled {OWNER_LABEL}={kube.owner} "
            "(the lab deletes only what it created)"
        )
    return 1 if kept else 0


def _still_there(kube: Kube, owned: list[tuple[Any, dict[str, Any]]], kept: list[str]) -> list[str]:
    kept_names = {line.split()[1] for line in kept}
    left = []
    for resource, obj in owned:
        meta = obj["metadata"]
        if meta.get("namespace") in kept_names or (obj["kind"] == "Namespace" and meta["name"] in kept_names):
            continue
        try:
            resource.get(name=meta["name"], namespace=meta.get("namespace"))
        except NotFound:
            continue
        left.append(f"{obj['kind']} {meta.get('namespace', '')}/{meta['name']}")
    if left:
        time.sleep(1.0)
    return left
