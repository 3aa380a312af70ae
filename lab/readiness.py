"""The readiness judges: pure functions over objects as the API server returns them.

Provisioning waits, ``lab status`` and the doctor all ask "is this ready, and if not why"
through these functions, so the three never disagree. No API calls here: each judge takes
``kubernetes`` client models (``V1Pod``, ``V1Deployment``, ``V1Node``...) or, for custom
resources, the API's dicts, and can be tested on objects built by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def condition(obj_status: Any, kind: str) -> Any | None:
    """The condition of ``kind`` on a model's status (pod, node, deployment, CRD), or None."""
    for cond in (obj_status.conditions or []) if obj_status else []:
        if cond.type == kind:
            return cond
    return None


def condition_true(obj_status: Any, kind: str) -> bool:
    """Whether the condition of ``kind`` is there and ``True``."""
    found = condition(obj_status, kind)
    return found is not None and found.status == "True"


def custom_conditions(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``status.conditions`` of a custom object dict."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    return [c for c in conditions if isinstance(c, dict)]


def custom_condition(obj: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    """The condition of ``kind`` of a custom object dict, or None."""
    return next((c for c in custom_conditions(obj) if c.get("type") == kind), None)


def inference_service_ready(isvc: Mapping[str, Any]) -> bool:
    """Whether a KServe InferenceService (API dict) reports ``Ready=True``."""
    ready = custom_condition(isvc, "Ready")
    return ready is not None and ready.get("status") == "True"


def crd_established(crd: Mapping[str, Any]) -> bool:
    """Whether a CustomResourceDefinition (API dict) is Established (its kind is served)."""
    established = custom_condition(crd, "Established")
    return established is not None and established.get("status") == "True"


def node_ready(node: Any) -> bool:
    """Whether a ``V1Node`` reports ``Ready=True``."""
    return condition_true(node.status, "Ready")


def desired_replicas(deployment: Any) -> int:
    """``spec.replicas``; the API server defaults it to 1, so a model without it means the same."""
    replicas = deployment.spec.replicas if deployment.spec else None
    return 1 if replicas is None else int(replicas)


def ready_replicas(deployment: Any) -> int:
    """``status.readyReplicas`` (0 when not reported)."""
    return int((deployment.status.ready_replicas or 0) if deployment.status else 0)


def deployment_available(deployment: Any) -> bool:
    """Available and fully rolled out: the latest generation observed and every replica updated."""
    status = deployment.status
    if status is None:
        return False
    rolled_out = (status.observed_generation or 0) >= (deployment.metadata.generation or 0) and (
        status.updated_replicas or 0
    ) >= (deployment.spec.replicas or 0)
    return condition_true(status, "Available") and rolled_out


def deployment_shortfall(deployment: Any) -> str:
    """Why a Deployment is short of ready, from its conditions (the part `kubectl describe` shows)."""
    reasons = []
    for cond in (deployment.status.conditions if deployment.status else None) or []:
        # ReplicaFailure is bad when True; Available and Progressing are bad when not True.
        bad = cond.status == "True" if cond.type == "ReplicaFailure" else cond.status != "True"
        if bad:
            text = f"{cond.type}={cond.status}"
            if cond.reason:
                text += f" {cond.reason}"
            if cond.message:
                text += f": {cond.message}"
            reasons.append(text)
    return "; ".join(reasons)


def pod_ready(pod: Any) -> bool:
    """Running and Ready, or Succeeded (the rule of KFP's own readiness script)."""
    phase = pod.status.phase if pod.status else None
    if phase == "Succeeded":
        return True
    return phase == "Running" and condition_true(pod.status, "Ready")


def pod_settled(pod: Any) -> bool:
    """Ready, or on its way out: evicted and terminating pods have replacements to judge instead."""
    status = pod.status
    evicted = status is not None and status.phase == "Failed" and status.reason == "Evicted"
    return pod_ready(pod) or evicted or pod.metadata.deletion_timestamp is not None


def pod_problem(pod: Any) -> str:
    """One line on why a pod is not ready (its phase, waiting reasons, last exits); "" when settled.

    The waiting reason names the failure mode: CrashLoopBackOff, ImagePullBackOff,
    CreateContainerConfigError, or Pending with an unbound PersistentVolumeClaim.
    """
    if pod_settled(pod):
        return ""
    status = pod.status
    phase = status.phase if status else None
    statuses = ((status.init_container_statuses or []) + (status.container_statuses or [])) if status else []
    reasons = []
    for container in statuses:
        state = container.state
        if state and state.waiting:
            message = (state.waiting.message or "")[:160]
            reasons.append(f"{container.name} waiting: {state.waiting.reason}: {message}")
        last = container.last_state.terminated if container.last_state else None
        if last is not None:
            reasons.append(f"{container.name} last exit code {last.exit_code} ({last.reason})")
    scheduled = condition(status, "PodScheduled")
    if not reasons and scheduled is not None and scheduled.status == "False":
        reasons.append(f"not scheduled: {scheduled.reason}: {(scheduled.message or '')[:160]}")
    return f"pod {pod.metadata.name}: {phase}; " + ("; ".join(reasons) or "not ready")
