"""Reading pods, events and deployments the way ``kubectl describe`` would, as evidence lines.

Pure functions over kubernetes client models: no API calls here, so every judgement can be
tested on objects filled exactly as the API returns them. Whether a pod or Deployment is ready
is judged by :mod:`lab.readiness` (shared with provisioning waits and ``lab status``); this
module turns what is not ready into evidence lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lab.readiness import condition, desired_replicas, pod_ready, ready_replicas


def ref(obj: Any) -> str:
    """``namespace/name`` of an object."""
    meta = obj.metadata
    return f"{meta.namespace}/{meta.name}" if meta.namespace else str(meta.name)


def _short(text: str | None, limit: int = 300) -> str:
    # Runtime errors nest "failed to X: failed to Y: <cause>": the cause is at the end, so a
    # long message keeps its head (what) and its tail (why).
    flat = " ".join((text or "").split())
    if len(flat) <= limit:
        return flat
    head = limit // 3
    return f"{flat[:head]} … {flat[-(limit - head - 3) :]}"


@dataclass(frozen=True)
class ContainerState:
    """One container's state, flattened from ``V1ContainerStatus``."""

    pod: str
    namespace: str
    name: str
    image: str
    init: bool
    ready: bool
    restarts: int
    waiting_reason: str
    waiting_message: str
    terminated_exit: int | None
    terminated_reason: str
    last_exit: int | None
    last_reason: str
    node: str
    running: bool = False
    # What the container wrote to its termination-message path (or, with the policy
    # FallbackToLogsOnError, its last log lines): the crash's own words.
    termination_message: str = ""

    def line(self) -> str:
        """``pod kubeflow/x container c (image): waiting CrashLoopBackOff; last exit code 139 (Error)``."""
        kind = "init container" if self.init else "container"
        parts = [f"pod {self.namespace}/{self.pod} {kind} {self.name} ({self.image})"]
        state = []
        if self.waiting_reason:
            message = f": {_short(self.waiting_message)}" if self.waiting_message else ""
            state.append(f"waiting {self.waiting_reason}{message}")
        elif self.terminated_exit is not None:
            reason = self.terminated_reason or "?"
            state.append(f"terminated with exit code {self.terminated_exit} ({reason})")
        elif self.running:
            state.append("running" + ("" if self.ready or self.init else ", not ready"))
        else:
            state.append("not started")
        if self.last_exit is not None:
            state.append(f"last state terminated with exit code {self.last_exit} ({self.last_reason or '?'})")
        if self.restarts:
            state.append(f"restarts {self.restarts}")
        return parts[0] + ": " + "; ".join(state)

    @property
    def crash_looping(self) -> bool:
        """Waiting in CrashLoopBackOff: it started, exited and the kubelet is backing off."""
        return self.waiting_reason == "CrashLoopBackOff"


def containers(pod: Any) -> list[ContainerState]:
    """Init and app container states of a pod (containers not started yet have no status)."""
    status = pod.status
    out: list[ContainerState] = []
    if status is None:
        return out
    groups = ((True, status.init_container_statuses or []), (False, status.container_statuses or []))
    for init, statuses in groups:
        for cs in statuses:
            state, last = cs.state, cs.last_state
            waiting = state.waiting if state else None
            terminated = state.terminated if state else None
            last_terminated = last.terminated if last else None
            out.append(
                ContainerState(
                    pod=pod.metadata.name,
                    namespace=pod.metadata.namespace,
                    name=cs.name,
                    image=cs.image or "",
                    init=init,
                    ready=bool(cs.ready),
                    restarts=int(cs.restart_count or 0),
                    waiting_reason=(waiting.reason or "") if waiting else "",
                    waiting_message=(waiting.message or "") if waiting else "",
                    terminated_exit=terminated.exit_code if terminated else None,
                    terminated_reason=(terminated.reason or "") if terminated else "",
                    last_exit=last_terminated.exit_code if last_terminated else None,
                    last_reason=(last_terminated.reason or "") if last_terminated else "",
                    node=(pod.spec.node_name or "") if pod.spec else "",
                    running=bool(state and state.running),
                    termination_message=_termination_message(terminated, last_terminated),
                )
            )
    return out


def _termination_message(*states: Any) -> str:
    for state in states:
        if state is not None and (state.message or "").strip():
            return str(state.message).strip()
    return ""


def termination_lines(cs: ContainerState) -> list[str]:
    """The container's termination message, one evidence line per message line (at most 5)."""
    text = cs.termination_message.splitlines()[-5:]
    return [f"  termination message: {_short(line)}" for line in text if line.strip()]


def pod_problem_lines(pod: Any, events: Iterable[Any] = ()) -> list[str]:
    """Why a pod is not ready: phase, scheduling, each container that is not ready, last events.

    ``events`` (every event, or none) adds the pod's last three, as ``kubectl describe`` ends.
    """
    phase = pod.status.phase if pod.status else "Unknown"
    lines = [f"pod {ref(pod)}: phase {phase}"]
    scheduled = condition(pod.status, "PodScheduled")
    if scheduled is not None and scheduled.status == "False":
        lines.append(f"pod {ref(pod)} not scheduled: {scheduled.reason}: {_short(scheduled.message)}")
    for cs in containers(pod):
        if not cs.ready or cs.waiting_reason or cs.last_exit not in (None, 0):
            if cs.init and cs.terminated_exit == 0:
                continue
            lines.append(cs.line())
            lines.extend(termination_lines(cs))
    lines.extend(
        f"  {event_line(e)}" for e in events_for(events, pod.metadata.namespace, pod.metadata.name)[-3:]
    )
    return lines


def pods_named(pods: Iterable[Any], namespace: str, prefix: str) -> list[Any]:
    """Pods in ``namespace`` whose name starts with ``prefix`` (a deployment's pods)."""
    return [p for p in pods if p.metadata.namespace == namespace and p.metadata.name.startswith(prefix)]


def find(objects: Iterable[Any], namespace: str | None, name: str) -> Any | None:
    """The object with that namespace and name."""
    for obj in objects:
        if obj.metadata.name == name and (namespace is None or obj.metadata.namespace == namespace):
            return obj
    return None


def deployment_pods(deployment: Any, pods: Iterable[Any]) -> list[Any]:
    """Pods selected by a deployment's ``matchLabels`` in its namespace."""
    selector = (
        (deployment.spec.selector.match_labels or {}) if deployment.spec and deployment.spec.selector else {}
    )
    if not selector:
        return pods_named(pods, deployment.metadata.namespace, deployment.metadata.name + "-")
    return [
        p
        for p in pods
        if p.metadata.namespace == deployment.metadata.namespace
        and all((p.metadata.labels or {}).get(k) == v for k, v in selector.items())
    ]


def deployment_ready(deployment: Any) -> tuple[int, int]:
    """(ready replicas, desired replicas)."""
    return ready_replicas(deployment), desired_replicas(deployment)


def deployment_lines(
    namespace: str, name: str, deployments: list[Any], pods: list[Any], events: Iterable[Any] = ()
) -> tuple[bool, list[str]]:
    """Whether deployment ``namespace/name`` is ready, with the evidence why not.

    A Deployment scaled to 0 is not ready (nothing serves); ``events`` adds each pod's last ones.
    """
    deployment = find(deployments, namespace, name)
    if deployment is None:
        return False, [f"deployment {namespace}/{name} does not exist"]
    ready, desired = deployment_ready(deployment)
    selected = deployment_pods(deployment, pods)
    if ready >= desired and desired > 0 and all(pod_ready(p) for p in selected):
        return True, [f"deployment {namespace}/{name}: {ready}/{desired} ready"]
    lines = [f"deployment {namespace}/{name}: {ready}/{desired} ready"]
    if desired == 0:
        lines.append(f"deployment {namespace}/{name} is scaled to 0 replicas: nothing serves")
    elif not selected:
        lines.append(f"no pod of deployment {namespace}/{name} exists")
    for pod in selected:
        if not pod_ready(pod):
            lines.extend(pod_problem_lines(pod, events))
    return False, lines


def _event_time(event: Any) -> datetime | None:
    for stamp in (event.last_timestamp, event.event_time, event.first_timestamp):
        if isinstance(stamp, datetime):
            return stamp
    return None


def events_for(events: Iterable[Any], namespace: str, name: str, kind: str = "") -> list[Any]:
    """Events about one object, newest last."""
    found = [
        e
        for e in events
        if e.involved_object is not None
        and e.involved_object.name == name
        and (e.involved_object.namespace or e.metadata.namespace) == namespace
        and (not kind or e.involved_object.kind == kind)
    ]
    return sorted(found, key=lambda e: (_event_time(e) is not None, _event_time(e) or datetime.min))


def event_line(event: Any) -> str:
    """``event Warning Failed on Pod kubeflow/x: <message> (x3)``."""
    obj = event.involved_object
    count = f" (x{event.count})" if event.count and event.count > 1 else ""
    where = f"{obj.kind} {obj.namespace or event.metadata.namespace}/{obj.name}"
    kind = " ".join(part for part in (event.type, event.reason) if part)
    return f"event {kind} on {where}: {_short(event.message, 400)}{count}"


def node_arch(node: Any) -> str:
    """A node's CPU architecture from ``status.nodeInfo`` (or its ``kubernetes.io/arch`` label)."""
    info = node.status.node_info if node.status else None
    if info is not None and info.architecture:
        return str(info.architecture)
    return str((node.metadata.labels or {}).get("kubernetes.io/arch", "unknown"))
