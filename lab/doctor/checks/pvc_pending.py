"""pvc-pending: PersistentVolumeClaims stuck Pending (local-path provisioner not working).

A claim of a ``WaitForFirstConsumer`` StorageClass stays Pending until a pod uses it; that
is normal and not reported.
"""

from __future__ import annotations

from typing import Any

from lab.doctor.checks._found import found_owning, found_remedy
from lab.doctor.checks._provision import kubectl
from lab.doctor.checks._workloads import lab_namespaces
from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, Result
from lab.doctor.workloads import event_line, events_for, find, pod_problem_lines, ref
from lab.ownership import FoundComponent
from lab.readiness import pod_ready

PROVISIONER_NAMESPACE = "local-path-storage"
PROVISIONER = "local-path-provisioner"


def _consumers(pvc: Any, pods: list[Any]) -> list[Any]:
    name, namespace = pvc.metadata.name, pvc.metadata.namespace
    return [
        p
        for p in pods
        if p.metadata.namespace == namespace
        and any(
            v.persistent_volume_claim and v.persistent_volume_claim.claim_name == name
            for v in (p.spec.volumes or [])
        )
    ]


def detect(evidence: Evidence) -> Result:
    """Pending claims, their StorageClass binding mode, their events, and the provisioner's pods."""
    pods = evidence.pods()
    classes = evidence.storage_classes()
    default = next(
        (
            sc
            for sc in classes
            if (sc.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"
        ),
        None,
    )
    lines: list[str] = []
    waiting: list[str] = []
    failing: list[str] = []
    ours: list[str] = []  # claims no found component's pod uses (cluster mode: the lab's to bind)
    theirs: dict[str, FoundComponent] = {}  # the found components whose pods wait on a claim
    # On a shared cluster (cluster mode) another tenant's claim is not the lab's failure.
    scope = set(lab_namespaces(evidence)) if evidence.mode == "cluster" else None
    for pvc in evidence.pvcs():
        if (pvc.status.phase if pvc.status else None) != "Pending":
            continue
        if scope is not None and pvc.metadata.namespace not in scope:
            continue
        class_name = pvc.spec.storage_class_name or (default.metadata.name if default else "")
        storage_class = find(classes, None, class_name) if class_name else None
        mode = (storage_class.volume_binding_mode or "Immediate") if storage_class else "unknown"
        consumers = _consumers(pvc, pods)
        if mode == "WaitForFirstConsumer" and not consumers:
            waiting.append(
                f"pvc {ref(pvc)}: Pending, StorageClass {class_name} is WaitForFirstConsumer, "
                "no pod uses it yet"
            )
            continue
        failing.append(ref(pvc))
        owners = [found_owning(evidence, p.metadata.namespace, p.metadata.name) for p in consumers]
        found_here = {f.name: f for f in owners if f is not None}
        theirs.update(found_here)
        if not found_here:
            ours.append(ref(pvc))
        who = ", ".join(ref(p) for p in consumers) or "no pod"
        lines.append(
            f"pvc {ref(pvc)}: Pending, StorageClass {class_name or '(none)'} ({mode}), used by {who}"
        )
        lines.extend(
            event_line(e)
            for e in events_for(evidence.events(), pvc.metadata.namespace, pvc.metadata.name)[-3:]
        )
    if not failing:
        return Result.ok("no claim is stuck Pending", waiting)
    if evidence.mode == "cluster":
        summary = f"{len(failing)} claim(s) stuck Pending: {', '.join(failing)}"
        remedy = _cluster_remedy(evidence, ours) if ours else []
        for found in theirs.values():  # not the lab's: its owner binds its claims
            summary += f" ({found.name} is not the lab's: ask its owner)"
            remedy += found_remedy(evidence, found)
        return Result.fail(summary, lines + waiting, remedy)
    provisioners = [
        p
        for p in pods
        if p.metadata.namespace == PROVISIONER_NAMESPACE and p.metadata.name.startswith(PROVISIONER)
    ]
    if not provisioners:
        lines.append(f"no {PROVISIONER} pod in namespace {PROVISIONER_NAMESPACE}")
    for pod in provisioners:
        lines.extend(pod_problem_lines(pod) if not pod_ready(pod) else [f"pod {ref(pod)}: Running and Ready"])
    return Result.fail(
        f"{len(failing)} claim(s) stuck Pending: {', '.join(failing)}",
        lines + waiting,
        [
            f"kubectl -n {PROVISIONER_NAMESPACE} logs deploy/{PROVISIONER} --tail=30",
            f"kubectl -n {PROVISIONER_NAMESPACE} rollout restart deployment {PROVISIONER}",
            "# if that does not help, restart Docker, or recreate the cluster:",
            f"kind delete cluster --name {evidence.config.names.cluster} && lab up --mode kind",
        ],
    )


def _cluster_remedy(evidence: Evidence, failing: list[str]) -> list[str]:
    # Not kind: no local-path-provisioner to restart. A claim binds to a PersistentVolume an
    # administrator made, or one a StorageClass's provisioner makes.
    namespace, _, name = failing[0].partition("/")
    config = evidence.config
    return [
        kubectl(config, "cluster", "-n", namespace, "describe", "pvc", name),
        kubectl(config, "cluster", "get", "persistentvolumes")
        + "  # is there one Available with enough capacity and the access mode?",
        "# create a PersistentVolume that fits the claim, or install a provisioner and mark its "
        "StorageClass default",
    ]


CHECK = Check(
    id="pvc-pending",
    title="volumes bind",
    group="kfp",
    inspects="PVC phase (cluster mode: the lab's namespaces), StorageClass volumeBindingMode, PVC events, "
    "local-path-provisioner pods",
    detect=detect,
    modes=frozenset({"kind", "cluster"}),
)
