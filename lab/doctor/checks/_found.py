"""What the doctor says about a component someone else installed: not the lab's to repair.

:mod:`lab.ownership` decides which components were found installed (cluster mode: a marker
Deployment without the lab's label). ``lab up`` skips such a component and never changes it,
so a finding about it must not print ``lab up`` (which would not touch it) nor offer a
``--fix`` (which must not modify it): the remedy names whose it is and where it lives, says
to ask its owner, and gives the read-only ``kubectl`` lines to look at it. The runner applies
this to every check a component declares (``Component.checks``); ``crash-loop`` applies it
per container.
"""

from __future__ import annotations

import dataclasses

from lab.components import COMPONENTS, Component
from lab.doctor.checks._provision import kubectl
from lab.doctor.evidence import Evidence, EvidenceUnavailable
from lab.doctor.model import Check, Result
from lab.doctor.workloads import deployment_pods, find
from lab.ownership import FoundComponent, found_by_labels

# Each check a component declares, with that component.
COMPONENT_OF_CHECK: dict[str, Component] = {
    check_id: component for component in COMPONENTS for check_id in component.checks
}


def found_remedy(evidence: Evidence, found: FoundComponent) -> list[str]:
    """Whose it is, that the lab will not repair it, who to ask, and how to look at it (read-only)."""
    config, mode, namespace = evidence.config, evidence.mode, found.namespace
    owner = f" ({found.installed_by})" if found.installed_by else ""
    return [
        f"# {found.not_ours()}: `lab up` skips it and `lab doctor --fix` leaves it alone",
        f"# ask whoever runs {found.name} on this cluster{owner} to repair it; to look at it:",
        kubectl(config, mode, "-n", namespace, "get", "deployments,pods"),
        kubectl(config, mode, "-n", namespace, "describe", "deployment", *found.deployments),
        kubectl(config, mode, "-n", namespace, "get", "events", "--sort-by=.lastTimestamp"),
    ]


def found_for(evidence: Evidence, component: Component) -> FoundComponent | None:
    """The component as someone else installed it, or None when it is the lab's (or absent)."""
    return evidence.found_components().get(component.name)


def component_namespace(evidence: Evidence, component: Component) -> str:
    """Where the component lives: where it was found installed, else the lab's namespace for it."""
    found = found_for(evidence, component)
    return found.namespace if found else str(getattr(evidence.config.names, component.namespace_setting))


def found_owning(evidence: Evidence, namespace: str, pod: str) -> FoundComponent | None:
    """The found component a pod belongs to, if any.

    One of its Deployments made the pod, or a Deployment that is not the lab's selects it in
    the namespace the component was found in (a found KFP's mysql, which is not its marker).
    """
    here = [found for found in evidence.found_components().values() if found.namespace == namespace]
    for found in here:
        if any(pod.startswith(f"{name}-") for name in found.deployments):
            return found
    live = find(evidence.pods(), namespace, pod) if here else None
    if live is None:
        return None
    owner = evidence.config.names.cluster
    for deployment in evidence.deployments():
        if (
            deployment.metadata.namespace == namespace
            and found_by_labels(deployment.metadata.labels, owner)
            and deployment_pods(deployment, [live])
        ):
            return here[0]
    return None


def as_found(check: Check, evidence: Evidence, result: Result) -> Result:
    """``result`` of a component's check, told as not the lab's when someone else installed the component."""
    component = COMPONENT_OF_CHECK.get(check.id)
    if component is None or result.status == "skipped":
        return result
    try:
        found = found_for(evidence, component)
    except EvidenceUnavailable:  # the check judged without Deployments; its own result stands
        return result
    if found is None:
        return result
    if result.status == "ok":
        return dataclasses.replace(result, evidence=(found.not_ours(), *result.evidence))
    return dataclasses.replace(
        result,
        summary=f"{result.summary} ({component.name} is not the lab's: ask its owner)",
        evidence=(found.not_ours(), *result.evidence),
        remedy=tuple(found_remedy(evidence, found)),
        fixable=False,
    )
