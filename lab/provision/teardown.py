"""``lab down --mode cluster``: delete exactly what the lab created, after checking it may.

Everything is read and judged before anything is deleted (:mod:`lab.ownership` decides):
the objects carrying the lab's owner label; in each Namespace the lab created, every object of
every namespaced kind discovery lists; of each CRD the lab created, every custom resource.
Then the credentials are asked (SelfSubjectAccessReview) for each list and delete this needs;
one missing permission stops ``down`` with one line per verb, resource and namespace, and
nothing deleted. A refusal from the API server is never read as "nothing there".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lab.config import LabConfig
from lab.deadline import Deadline, wait_until
from lab.errors import LabError
from lab.kube import ApiError, Kube, NotFound, api_error_message
from lab.kube_objects import OWNER_LABEL, Manifest, object_key
from lab.ownership import foreign, lab_uids
from lab.progress import Progress

# Deleted last: removing a CRD deletes its custom resources; a Namespace everything in it.
LAST = ("Namespace", "CustomResourceDefinition")
# The API server's CRD finalizer can drop a CRD whose cleanup failed once (its list of the custom
# resources answers "storage is (re)initializing" while the CRD's storage is rebuilt, then its
# status update conflicts) until its informer's next resync, up to 5 minutes on: `down` waited
# 165 s for Argo's CRDs on the lab's own control plane. Any change to the CRD other than that
# status requeues it at once, so a CRD of the lab's still there NUDGE_SECONDS after its delete
# gets an annotation touched, at most once every NUDGE_SECONDS.
NUDGE_SECONDS = 5.0
NUDGE_ANNOTATION = "kubeflow-modelkit-lab/deletion-nudged-at"


class MissingPermissions(LabError):
    """The credentials may not do what the command needs; nothing was changed."""


def listable(kube: Kube) -> Iterator[Any]:
    """One served, listable and deletable resource type per group and kind.

    The group's preferred version where it serves the kind, else any (KServe's
    ClusterStorageContainer exists only in v1alpha1, next to a preferred v1beta1).
    """
    seen: set[tuple[str, str]] = set()
    for resource in sorted(kube.listable_resources(), key=lambda r: not r.preferred):
        key = (resource.group, resource.kind)
        if key not in seen:
            seen.add(key)
            yield resource


def _resource_name(resource: Any) -> str:
    return f"{resource.name}.{resource.group}" if resource.group else str(resource.name)


def list_objects(resource: Any, namespace: str | None = None, selector: str = "") -> list[Manifest]:
    """Every object of one resource type (a kind no longer served has none; any other refusal raises)."""
    try:
        answer = resource.get(namespace=namespace, label_selector=selector or None)
    except NotFound:
        return []
    except ApiError as exc:
        if exc.status == 404:
            return []
        where = f" in namespace {namespace}" if namespace else " cluster-wide"
        raise LabError(f"cannot list {_resource_name(resource)}{where}: {api_error_message(exc)}") from None
    # A list's items name no kind or apiVersion: given here, each is addressable as a live object.
    kind = {"apiVersion": resource.group_version, "kind": resource.kind}
    return [{**kind, **item} for item in answer.to_dict().get("items") or []]


def owned_objects(kube: Kube) -> list[tuple[Any, Manifest]]:
    """Every object carrying this lab's owner label, as (resource type, object) pairs."""
    selector = f"{OWNER_LABEL}={kube.owner}"
    return [(r, obj) for r in listable(kube) for obj in list_objects(r, selector=selector)]


def missing(kube: Kube, needs: Iterable[tuple[str, str, str, str]]) -> list[str]:
    """One line per (verb, group, resource, namespace) these credentials may not do."""
    asked = sorted(set(needs))
    # One review per permission; they are independent, so a few run at once.
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda need: kube.may(*need), asked))
    lines = []
    for (verb, group, resource, namespace), allowed in zip(asked, answers, strict=True):
        if not allowed:
            name = f"{resource}.{group}" if group else resource
            where = f"in namespace {namespace}" if namespace else "cluster-wide"
            lines.append(f"may not {verb} {name} {where}")
    return lines


def require(kube: Kube, command: str, needs: Iterable[tuple[str, str, str, str]]) -> None:
    """Raise MissingPermissions (one detail line per missing permission) unless all are granted."""
    lacking = missing(kube, needs)
    if lacking:
        raise MissingPermissions(
            f"{command}: the credentials of {kube.host} lack {len(lacking)} permission(s) it needs; "
            "nothing was changed",
            lacking,
        )


@dataclass
class Teardown:
    """What ``down`` will delete, and what it keeps and why."""

    first: list[tuple[Any, Manifest]] = field(default_factory=list)
    last: list[tuple[Any, Manifest]] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    @property
    def deleted(self) -> list[tuple[Any, Manifest]]:
        """Everything that will be deleted."""
        return self.first + self.last


def _names(objects: list[Manifest]) -> str:
    shown = ", ".join(object_key(o) for o in objects[:10])
    return shown + (f" and {len(objects) - 10} more" if len(objects) > 10 else "")


def plan_teardown(kube: Kube) -> Teardown:
    """Read and judge; nothing is deleted here (MissingPermissions when it may not even look)."""
    types = list(listable(kube))
    require(kube, "lab down", [("list", r.group, r.name, "") for r in types])
    owned = [(r, obj) for r in types for obj in list_objects(r, selector=f"{OWNER_LABEL}={kube.owner}")]
    namespaced = [r for r in types if r.namespaced]
    plan = Teardown(first=[p for p in owned if p[1]["kind"] not in LAST])
    seen = [obj for _, obj in owned]
    inside: dict[str, list[Manifest]] = {}
    for _, obj in owned:
        if obj["kind"] == "Namespace":
            name = obj["metadata"]["name"]
            inside[name] = [o for r in namespaced for o in list_objects(r, namespace=name)]
            seen += inside[name]
    of_kind: dict[str, list[Manifest]] = {}
    for _, obj in owned:
        if obj["kind"] == "CustomResourceDefinition":
            of_kind[obj["metadata"]["name"]] = found = _custom_resources(types, obj)
            seen += found
    uids = lab_uids(seen, kube.owner)
    # Namespaces first, so a kept Namespace's CRD check sees the custom resources that stay in it.
    for resource, obj in sorted(
        (p for p in owned if p[1]["kind"] in LAST), key=lambda p: p[1]["kind"] != "Namespace"
    ):
        name = obj["metadata"]["name"]
        if obj["kind"] == "Namespace":
            theirs = foreign(inside.get(name, []), uids, whole_namespace=True)
        else:
            theirs = foreign(of_kind.get(name, []), uids)
        if not theirs:
            plan.last.append((resource, obj))
        elif obj["kind"] == "Namespace":
            plan.kept.append(
                f"Namespace {name} kept: it holds objects the lab did not create: {_names(theirs)}"
            )
        else:
            plan.kept.append(
                f"CustomResourceDefinition {name} kept: custom resources the lab did not create remain: "
                f"{_names(theirs)}"
            )
    needs = [("delete", r.group, r.name, obj["metadata"].get("namespace", "")) for r, obj in plan.deleted]
    require(kube, "lab down", needs)
    return plan


def _custom_resources(types: list[Any], crd: Manifest) -> list[Manifest]:
    spec = crd.get("spec") or {}
    plural, group = (spec.get("names") or {}).get("plural"), spec.get("group")
    matching = [r for r in types if r.group == group and r.name == plural]
    return list_objects(matching[0]) if matching else []


def _delete(resource: Any, obj: Manifest) -> None:
    meta = obj["metadata"]
    try:
        resource.delete(
            name=meta["name"], namespace=meta.get("namespace"), body={"propagationPolicy": "Background"}
        )
    except NotFound:
        pass


def down_cluster(config: LabConfig, progress: Progress) -> int:
    """Delete every object the lab created in the cluster, and nothing else.

    A Namespace or CRD the lab created is kept (with a line naming what is not the lab's)
    while it holds, or has, objects the lab did not create. Returns 0 when everything the lab
    created is gone, 1 when something was kept; MissingPermissions (exit 1, nothing deleted)
    when the credentials may not list or delete what this needs.
    """
    kube = Kube.connect(config)
    with progress.step("read what the lab created and check it may be deleted"):
        plan = plan_teardown(kube)
    with progress.step(f"delete {len(plan.first)} objects the lab created"):
        for resource, obj in plan.first:
            _delete(resource, obj)
    left: list[str] = []  # what the last poll found still there, for the heartbeat
    nudge = FinalizerNudge(kube, progress)

    def still_there() -> list[str]:
        remaining = _still_there(plan.deleted, f"{OWNER_LABEL}={kube.owner}")
        for live in remaining:
            if live["kind"] == "CustomResourceDefinition":
                nudge(live)
        left[:] = [object_key(live) for live in remaining]
        return left

    def waiting_for() -> str:
        more = f" and {len(left) - 3} more" if len(left) > 3 else ""
        return f"waiting for {', '.join(left[:3])}{more} to go" if left else ""

    with progress.step(f"delete {len(plan.last)} namespaces and CRDs the lab created", activity=waiting_for):
        for resource, obj in plan.last:
            _delete(resource, obj)
        wait_until(still_there, Deadline(config.cluster_timeout), "lab objects still being deleted")
    for line in plan.kept:
        progress.info(f"REFUSED: {line}")
    if not plan.deleted and not plan.kept:
        progress.info(
            f"nothing to delete: no object labelled {OWNER_LABEL}={kube.owner} "
            "(the lab deletes only what it created)"
        )
    return 1 if plan.kept else 0


def _still_there(deleted: list[tuple[Any, Manifest]], selector: str) -> list[Manifest]:
    """What of ``deleted`` is still there, as it is now (one labelled list per kind, not one read each)."""
    # A name can be taken again at once (someone else's object): only the same uid is "left".
    uids = {obj["metadata"].get("uid") for _, obj in deleted}
    kinds = {(resource.group, resource.kind): resource for resource, _ in deleted}
    return [
        live
        for resource in kinds.values()
        for live in list_objects(resource, selector=selector)
        if live["metadata"].get("uid") in uids
    ]


class FinalizerNudge:
    """Touches an annotation of a CRD that stays terminating, so the API server's finalizer looks again.

    Only the lab's own CRDs are passed in. Best effort: credentials that may delete but not
    patch a CRD, or a CRD gone meanwhile, leave the wait as it was.
    """

    def __init__(
        self, kube: Kube, progress: Progress | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.kube, self.progress, self.clock = kube, progress, clock
        self.first_seen: dict[str, float] = {}  # uid -> when a poll first found it still there
        self.nudged: dict[str, float] = {}  # uid -> when it was last touched

    def __call__(self, live: Manifest) -> bool:
        """Touch ``live`` if it has been there NUDGE_SECONDS (and not touched for as long); whether it was."""
        uid, now = str(live["metadata"].get("uid")), self.clock()
        there_for = now - self.first_seen.setdefault(uid, now)
        if there_for < NUDGE_SECONDS or now - self.nudged.get(uid, now - NUDGE_SECONDS) < NUDGE_SECONDS:
            return False
        first = uid not in self.nudged
        self.nudged[uid] = now
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            crds = self.kube.dynamic.resources.get(api_version=live["apiVersion"], kind=live["kind"])
            crds.patch(  # a merge patch of one annotation: nothing else of the CRD changes
                name=live["metadata"]["name"],
                body={"metadata": {"annotations": {NUDGE_ANNOTATION: stamp}}},
                content_type="application/merge-patch+json",
            )
        except ApiError:  # NotFound included: gone meanwhile, which is what the wait is for
            return False
        if first and self.progress is not None:
            self.progress.info(
                f"   {object_key(live)} still there {there_for:.0f}s after its delete: touched it so the "
                "API server's CRD finalizer looks at it again"
            )
        return True
