"""What the component checks share: their Deployments judged with events, their crashes read."""

from __future__ import annotations

from collections.abc import Sequence

from lab.components import COMPONENTS
from lab.doctor.checks._provision import kubectl
from lab.doctor.crash_causes import Crash, crash_remedy
from lab.doctor.evidence import Evidence, EvidenceUnavailable
from lab.doctor.workloads import ContainerState, containers, deployment_lines
from lab.readiness import desired_replicas


def lab_namespaces(evidence: Evidence) -> list[str]:
    """The namespaces of the declared components, plus the pipelines' namespace."""
    names = evidence.config.names
    found = [str(getattr(names, component.namespace_setting)) for component in COMPONENTS]
    return list(dict.fromkeys([*found, names.pipeline_namespace]))


def judge_deployments(
    evidence: Evidence, namespace: str, names: Sequence[str]
) -> tuple[list[str], list[str]]:
    """(the Deployments not ready, evidence lines with each bad pod's state, messages and events)."""
    deployments, pods, events = evidence.deployments(), evidence.pods(), evidence.events()
    lines, not_ready = [], []
    for name in names:
        ready, detail = deployment_lines(namespace, name, deployments, pods, events)
        lines.extend(detail)
        if not ready:
            not_ready.append(name)
    return not_ready, lines


def crashing(evidence: Evidence, namespaces: Sequence[str]) -> list[ContainerState]:
    """Containers in CrashLoopBackOff in ``namespaces``."""
    return [
        cs
        for pod in evidence.pods()
        if pod.metadata.namespace in namespaces and not pod.metadata.deletion_timestamp
        for cs in containers(pod)
        if cs.crash_looping
    ]


def crash_text(evidence: Evidence, cs: ContainerState) -> tuple[str, list[str]]:
    """Everything the crashed run said (termination message, log tail) and its evidence lines."""
    lines: list[str] = []
    try:
        log = evidence.pod_log(cs.namespace, cs.pod, cs.name, previous=True, lines=10)
        lines += ["  log of the crashed run ends with:", *(f"  | {line}" for line in log)]
    except EvidenceUnavailable as exc:
        log = []
        lines.append(f"  (log of the crashed run unavailable: {exc})")
    exit_code = f"exit code {cs.last_exit} ({cs.last_reason})" if cs.last_exit is not None else ""
    return "\n".join([cs.termination_message, exit_code, *log]), lines


def crash_of(evidence: Evidence, cs: ContainerState, text: str) -> Crash:
    """The crash as :func:`lab.doctor.crash_causes.crash_remedy` reads it."""
    config, mode = evidence.config, evidence.mode
    return Crash(cs.namespace, cs.pod, cs.name, text, lambda *argv: kubectl(config, mode, *argv))


def crash_remedies(evidence: Evidence, namespace: str) -> list[str]:
    """The fitting remedy of each crash-looping container in ``namespace`` (none: empty)."""
    remedy: list[str] = []
    for cs in crashing(evidence, [namespace]):
        text, _ = crash_text(evidence, cs)
        _, lines = crash_remedy(crash_of(evidence, cs, text))
        remedy += [line for line in lines if line not in remedy]
    return remedy


def scaled_to_zero_remedy(evidence: Evidence, namespace: str, names: Sequence[str]) -> list[str]:
    """``kubectl scale`` back to one replica for each named Deployment scaled to 0."""
    config, mode = evidence.config, evidence.mode
    zero = [
        d.metadata.name
        for d in evidence.deployments()
        if d.metadata.namespace == namespace and d.metadata.name in names and desired_replicas(d) == 0
    ]
    if not zero:
        return []
    return [
        "# scaled to 0 (by hand or by an autoscaler): nothing serves until it runs again",
        *(
            kubectl(config, mode, "-n", namespace, "scale", "deployment", name, "--replicas=1")
            for name in zero
        ),
        kubectl(
            config, mode, "-n", namespace, "rollout", "status", "deployment", *zero[:1], "--timeout=300s"
        ),
    ]


def waiting_remedy(evidence: Evidence, namespace: str, not_ready: Sequence[str], timeout: str) -> list[str]:
    """Watch the pods, describe the first Deployments that lag, wait until all are Available."""
    config, mode = evidence.config, evidence.mode
    return [
        kubectl(config, mode, "-n", namespace, "get", "pods"),
        *(kubectl(config, mode, "-n", namespace, "describe", "deployment", name) for name in not_ready[:2]),
        kubectl(config, mode, "-n", namespace, "wait", "--for=condition=Available", "deployment", "--all")
        + f" --timeout={timeout}",
    ]
