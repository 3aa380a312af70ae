"""namespace-terminating: a lab namespace is stuck Terminating, so nothing of its component runs.

The namespace controller deletes a namespace's contents, then its own ``kubernetes``
finalizer. It stalls when an object keeps a finalizer whose controller is gone (KServe's,
cert-manager's, a tenant's), or when an aggregated API does not answer so the contents
cannot be listed; its conditions say which (``NamespaceFinalizersRemaining``,
``NamespaceDeletionDiscoveryFailure``, ...). Every ``lab up`` until then fails on that
namespace, and the component checks only see Deployments that "do not exist".
"""

from __future__ import annotations

import re
from typing import Any

from lab.doctor.checks._provision import kubectl, up_command
from lab.doctor.checks._workloads import lab_namespaces
from lab.doctor.evidence import Evidence, EvidenceUnavailable
from lab.doctor.model import Check, Result
from lab.kube_objects import OWNER_LABEL
from lab.ownership import found_by_labels

_REMOVE_FINALIZERS = '[{"op":"remove","path":"/metadata/finalizers"}]'
# "... server APIs: metrics.k8s.io/v1beta1: stale GroupVersion discovery: ..."
_GROUP_VERSION = re.compile(r"\b([a-z0-9.-]+\.[a-z]+)/(v[0-9][a-z0-9]*)\b")


def terminating(namespace: Any) -> bool:
    """Deleted but still there."""
    phase = namespace.status.phase if namespace.status else None
    return phase == "Terminating" or namespace.metadata.deletion_timestamp is not None


def _condition_lines(namespace: Any) -> list[str]:
    name = namespace.metadata.name
    return [
        f"namespace {name} condition {c.type}: {c.reason or ''} {c.message or ''}".rstrip()
        for c in (namespace.status.conditions if namespace.status else None) or []
        if c.status == "True"
    ]


def not_the_labs(evidence: Evidence, namespace: Any) -> bool:
    """A namespace that was there before the lab (cluster mode: no owner label): adopted, never the lab's."""
    if evidence.mode != "cluster":
        return False
    return found_by_labels(namespace.metadata.labels, evidence.config.names.cluster)


def _theirs_remedy(evidence: Evidence, namespace: Any, objects: list[dict[str, Any]]) -> list[str]:
    """Look, do not clear: the finalizers in someone else's namespace are theirs to resolve."""
    config, mode, name = evidence.config, evidence.mode, namespace.metadata.name
    remedy = [
        f"# namespace {name} is not the lab's (it was there before the lab; no label {OWNER_LABEL}): "
        "whoever deleted it resolves what holds it; ask them before removing a finalizer. To look:",
        kubectl(config, mode, "get", "namespace", name, "-o", "yaml"),
    ]
    remedy += [
        kubectl(config, mode, "-n", name, "get", f"{o['resource']}/{o['name']}", "-o", "yaml")
        for o in objects
    ]
    return remedy


def _remedy(evidence: Evidence, namespace: Any, objects: list[dict[str, Any]]) -> list[str]:
    config, mode, name = evidence.config, evidence.mode, namespace.metadata.name
    if not_the_labs(evidence, namespace):
        return [
            *_theirs_remedy(evidence, namespace, objects),
            f"{kubectl(config, mode, 'wait', '--for=delete', f'namespace/{name}', '--timeout=120s')}"
            "  # once it is gone, `lab up` installs into a namespace of the lab's own:",
            up_command(config, mode),
        ]
    remedy: list[str] = []
    for condition in (namespace.status.conditions if namespace.status else None) or []:
        if condition.type == "NamespaceDeletionDiscoveryFailure" and condition.status == "True":
            remedy.append(
                "# an aggregated API does not answer, so the namespace's contents cannot be listed:"
            )
            remedy.append(kubectl(config, mode, "get", "apiservices") + "  # look for AVAILABLE False")
            for group, version in _GROUP_VERSION.findall(condition.message or ""):
                remedy.append(kubectl(config, mode, "delete", "apiservice", f"{version}.{group}"))
    for obj in objects:
        finalizers = ", ".join(obj["finalizers"])
        remedy.append(
            f"# {obj['kind']} {name}/{obj['name']} waits for {finalizers}; its controller did not "
            "finish (is it running?). Removing the finalizer skips that cleanup:"
        )
        argv = ("-n", name, "patch", f"{obj['resource']}/{obj['name']}", "--type=json", "-p")
        remedy.append(kubectl(config, mode, *argv, _REMOVE_FINALIZERS))
    if not remedy:
        remedy += [
            f"# list what is left in {name} (the namespace's conditions name what blocks it):",
            kubectl(config, mode, "get", "namespace", name, "-o", "yaml"),
        ]
    remedy += [
        f"{kubectl(config, mode, 'wait', '--for=delete', f'namespace/{name}', '--timeout=120s')}"
        "  # then reinstall:",
        up_command(config, mode),
    ]
    return remedy


def detect(evidence: Evidence) -> Result:
    """Each lab namespace with a deletion timestamp: since when, its conditions, what holds it."""
    wanted = set(lab_namespaces(evidence))
    stuck = [ns for ns in evidence.namespaces() if ns.metadata.name in wanted and terminating(ns)]
    if not stuck:
        return Result.ok("no lab namespace is Terminating")
    lines: list[str] = []
    remedy: list[str] = []
    for namespace in stuck:
        name = namespace.metadata.name
        finalizers = (namespace.spec.finalizers if namespace.spec else None) or []
        lines.append(
            f"namespace {name}: Terminating since {namespace.metadata.deletion_timestamp} "
            f"(spec.finalizers: {', '.join(finalizers) or 'none'})"
            + (", not the lab's: it was there before the lab" if not_the_labs(evidence, namespace) else "")
        )
        lines += _condition_lines(namespace)
        try:
            objects = evidence.finalized_objects(name)
        except EvidenceUnavailable as exc:
            objects = []
            lines.append(f"(objects in {name} could not be listed: {exc})")
        lines += [f"{o['kind']} {name}/{o['name']}: finalizers {', '.join(o['finalizers'])}" for o in objects]
        remedy += [line for line in _remedy(evidence, namespace, objects) if line not in remedy]
    names = ", ".join(ns.metadata.name for ns in stuck)
    return Result.fail(
        f"namespace {names} stuck Terminating: its component cannot be installed", lines, remedy
    )


CHECK = Check(
    id="namespace-terminating",
    title="no lab namespace stuck Terminating",
    group="cluster",
    inspects="lab namespaces' deletionTimestamp, finalizers and conditions; objects in them with finalizers",
    detect=detect,
    modes=frozenset({"kind", "cluster"}),
)
