"""The cluster side of provisioning: server-side apply, drift checks and waits.

Objects are applied with server-side apply under one field manager, so re-applying is a
no-op and the lab never fights other controllers over fields it does not set. Whether a
step would change anything is asked of the API server itself (a server-side dry-run apply
compared with the live object), the way ``kubectl diff`` does.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client
from kubernetes import config as kubeconfig
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from lab.config import LabConfig
from lab.errors import LabError

FIELD_MANAGER = "kubeflow-modelkit-lab"
# Every object the lab creates carries this label (value: the lab's cluster name), so `down`
# removes exactly what the lab made and never an object it only added fields to.
OWNER_LABEL = "kubeflow-modelkit-lab/owner"
Manifest = dict[str, Any]
_SERIALIZER = client.ApiClient()


def context_name(config: LabConfig) -> str:
    """The kubeconfig context of the lab's cluster.

    ``--context`` (cluster mode) when given; in cluster mode otherwise the kubeconfig's
    current context; else the one kind writes for the lab cluster.
    """
    if config.kube_context:
        return config.kube_context
    if config.mode == "cluster":
        try:
            _contexts, current = kubeconfig.list_kube_config_contexts(config_file=config.kubeconfig or None)
        except (ConfigException, FileNotFoundError, OSError):
            return ""
        return str((current or {}).get("name", ""))
    return f"kind-{config.names.cluster}"


def field_manager(step: str = "") -> str:
    """One server-side-apply field manager per step.

    Two steps applying the same object (KFP's Namespace with its pod-security labels, the
    secrets step's bare Namespace) under one manager would each strip what the other set.
    """
    slug = "".join(c if c.isalnum() else "-" for c in step.lower()).strip("-")
    return f"{FIELD_MANAGER}-{slug}" if slug else FIELD_MANAGER


def api_error_text(exc: BaseException) -> str:
    """Status, reason and the API server's message: the reason is in the body, never cut off."""
    if not isinstance(exc, ApiException):
        return str(exc)
    body = exc.body.decode() if isinstance(exc.body, bytes) else str(exc.body or "")
    return f"{exc.status} {exc.reason}: {body.strip()}"


def to_manifest(model: Any) -> Manifest:
    """A kubernetes client model (V1Secret, V1ConfigMap...) as a plain manifest."""
    manifest: Manifest = _SERIALIZER.sanitize_for_serialization(model)
    return manifest


class ClusterUnreachable(LabError):
    """The kubeconfig context is missing or its API server does not answer."""


@dataclass
class Deadline:
    """A point in time the current wait must finish by."""

    seconds: float
    start: float = 0.0

    def __post_init__(self) -> None:
        self.start = time.monotonic()

    @property
    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.start + self.seconds - time.monotonic())

    @property
    def passed(self) -> bool:
        """Whether the time is up."""
        return self.remaining <= 0


def _describe_api_error(exc: ApiException) -> str:
    return api_error_text(exc)


# Failures that mean "a moment too early" right after a CRD or a webhook's Deployment was
# created: the webhook has no endpoint yet, or discovery has not caught up with the CRD.
def _retriable(exc: ApiException) -> bool:
    if exc.status in (502, 503, 504):
        return True
    text = _describe_api_error(exc)
    hints = ("failed calling webhook", "connection refused", "no endpoints available", "x509")
    return exc.status == 500 and any(hint in text for hint in hints)


class Kube:
    """A connection to the lab cluster."""

    def __init__(self, api: client.ApiClient, owner: str = "") -> None:
        self.api = api
        # The OWNER_LABEL value this lab stamps on what it creates.
        self.owner = owner
        self._dynamic: DynamicClient | None = None
        self._rediscovered_at = 0.0

    @classmethod
    def connect(cls, config: LabConfig, timeout: float = 10.0) -> Kube:
        """Connect through the lab's context (see context_name) and check the API server answers."""
        context = context_name(config)
        where = f" in {config.kubeconfig}" if config.kubeconfig else ""
        make = "`lab up --mode kind`" if config.mode != "cluster" else "--kubeconfig F --context C"
        try:
            api = kubeconfig.new_client_from_config(
                config_file=config.kubeconfig or None, context=context or None
            )
        except (ConfigException, FileNotFoundError, OSError) as exc:
            raise ClusterUnreachable(
                f"no kubeconfig context {context or '(current)'}{where}: "
                f"create the cluster or name it with {make}",
                [str(exc)],
            ) from None
        try:
            client.VersionApi(api).get_code(_request_timeout=timeout)
        except (urllib3.exceptions.HTTPError, ApiException, OSError) as exc:
            hint = (
                f"is the kind cluster running (`docker ps --filter name={config.names.cluster}`)?"
                if config.mode != "cluster"
                else "is the cluster running?"
            )
            raise ClusterUnreachable(
                f"the API server of context {context}{where} does not answer: {hint}", [str(exc)[:300]]
            ) from None
        return cls(api, owner=config.names.cluster)

    @property
    def dynamic(self) -> DynamicClient:
        """The dynamic client (discovery happens on first use)."""
        if self._dynamic is None:
            self._dynamic = DynamicClient(self.api)
        return self._dynamic

    def _resource(self, obj: Manifest) -> Any:
        try:
            return self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        except ResourceNotFoundError:
            # Discovery is cached; a CRD applied a moment ago is not in it yet. Rediscovery
            # walks every API group, so a burst of misses (a CRD's objects) triggers one.
            if time.monotonic() - self._rediscovered_at < 2.0:
                raise
            self._rediscovered_at = time.monotonic()
            self.dynamic.resources.invalidate_cache()
            return self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])

    def get(self, obj: Manifest) -> Manifest | None:
        """The live object, or None when it (or its kind) does not exist."""
        meta = obj["metadata"]
        try:
            resource = self._resource(obj)
            live = resource.get(name=meta["name"], namespace=meta.get("namespace"))
        except (NotFoundError, ResourceNotFoundError):
            return None
        result: Manifest = live.to_dict()
        return result

    def owned(self, obj: Manifest, live: Manifest | None) -> Manifest:
        """``obj`` with the owner label when the lab creates it (or created it before).

        An object that already exists without the label belongs to someone else: the lab
        applies its fields but never claims it, so `down` will not delete it.
        """
        if not self.owner:
            return obj
        if live is not None and (live.get("metadata", {}).get("labels") or {}).get(OWNER_LABEL) != self.owner:
            return obj
        labelled = copy.deepcopy(obj)
        labels = labelled["metadata"].get("labels") or {}
        labelled["metadata"]["labels"] = {**labels, OWNER_LABEL: self.owner}
        return labelled

    def apply(
        self, obj: Manifest, dry_run: bool = False, manager: str = FIELD_MANAGER, live: Manifest | None = None
    ) -> Manifest:
        """Server-side apply one object (force: the lab owns the fields it sets).

        ``live`` is the object as read just before (saves a read when the caller has it).
        """
        resource = self._resource(obj)
        if live is None:
            live = self.get(obj)
        result = self.dynamic.server_side_apply(
            resource,
            body=self.owned(obj, live),
            namespace=obj["metadata"].get("namespace"),
            field_manager=manager,
            force_conflicts=True,
            dry_run="All" if dry_run else None,
        )
        applied: Manifest = result.to_dict()
        return applied

    def in_sync(self, objects: Iterable[Manifest], manager: str = FIELD_MANAGER) -> bool:
        """Whether applying ``objects`` would change nothing (stops at the first difference)."""
        return not self.drift(objects, first_only=True, manager=manager)

    def drift(
        self, objects: Iterable[Manifest], first_only: bool = False, manager: str = FIELD_MANAGER
    ) -> list[str]:
        """What applying ``objects`` would change: ``create <obj>`` / ``update <obj>`` lines."""
        changes: list[str] = []
        for obj in objects:
            if first_only and changes:
                break
            live = self.get(obj)
            if live is None:
                changes.append(f"create {object_key(obj)}")
                continue
            try:
                after = self.apply(obj, dry_run=True, manager=manager, live=live)
            except ApiException as exc:
                changes.append(
                    f"update {object_key(obj)} (dry-run refused: {_describe_api_error(exc)})"
                )
                continue
            if _comparable(after) != _comparable(live):
                changes.append(f"update {object_key(obj)}")
        return changes

    def apply_all(
        self, objects: Sequence[Manifest], deadline: Deadline, manager: str = FIELD_MANAGER
    ) -> None:
        """Apply in dependency order: namespaces and CRDs first, then wait until established.

        Objects refused because a webhook or a fresh CRD is not serving yet are retried until
        the deadline; anything else the API server refuses stops the step with its answer.
        """
        first = [o for o in objects if o["kind"] in ("Namespace", "CustomResourceDefinition")]
        for obj in first:
            self.apply(obj, manager=manager)
        crds = [o["metadata"]["name"] for o in first if o["kind"] == "CustomResourceDefinition"]
        self.wait_crds_established(crds, deadline)
        pending = [o for o in objects if o["kind"] not in ("Namespace", "CustomResourceDefinition")]
        while pending:
            refused: list[tuple[Manifest, str]] = []
            for obj in pending:
                try:
                    self.apply(obj, manager=manager)
                except ResourceNotFoundError as exc:
                    refused.append((obj, f"kind not served yet: {exc}"))
                except ApiException as exc:
                    if not _retriable(exc):
                        raise LabError(
                            f"the API server refused {object_key(obj)}", [_describe_api_error(exc)]
                        ) from None
                    refused.append((obj, _describe_api_error(exc)))
            if not refused:
                return
            if deadline.passed:
                raise LabError(
                    f"{len(refused)} objects were still refused when the wait ran out "
                    "(a webhook or CRD never became ready); raise LAB_CLUSTER_TIMEOUT or run `lab doctor`",
                    [f"{object_key(obj)}: {why}" for obj, why in refused[:10]],
                )
            time.sleep(min(3.0, deadline.remaining))
            pending = [obj for obj, _ in refused]

    def wait_crds_established(self, names: Sequence[str], deadline: Deadline) -> None:
        """Wait until every named CRD reports Established."""
        ext = client.ApiextensionsV1Api(self.api)

        def established(name: str) -> bool:
            try:
                crd = ext.read_custom_resource_definition(name)
            except ApiException:
                return False
            return any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or []))

        wait_until(
            lambda: [n for n in names if not established(n)],
            deadline,
            "CustomResourceDefinitions not Established",
        )

    def deployments_not_available(self, namespace: str, names: Sequence[str]) -> list[str]:
        """Which of the named Deployments are missing or not fully rolled out and Available."""
        apps = client.AppsV1Api(self.api)
        waiting = []
        for name in names:
            try:
                dep = apps.read_namespaced_deployment(name, namespace)
            except ApiException as exc:
                waiting.append(f"Deployment {namespace}/{name}: {exc.reason}")
                continue
            status = dep.status
            available = any(c.type == "Available" and c.status == "True" for c in (status.conditions or []))
            rolled_out = (status.observed_generation or 0) >= (dep.metadata.generation or 0) and (
                status.updated_replicas or 0
            ) >= (dep.spec.replicas or 0)
            if not (available and rolled_out):
                waiting.append(
                    f"Deployment {namespace}/{name}: {status.ready_replicas or 0}/{dep.spec.replicas} ready"
                )
        return waiting

    def pod_problems(self, namespace: str, selector: str = "") -> list[str]:
        """Pods that are neither Running and Ready nor Succeeded, with their reasons."""
        core = client.CoreV1Api(self.api)
        lines = []
        for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
            phase = pod.status.phase
            statuses = (pod.status.init_container_statuses or []) + (pod.status.container_statuses or [])
            ready = phase == "Running" and all(s.ready for s in pod.status.container_statuses or [])
            # Evicted or terminating pods have replacements; they say nothing about readiness.
            evicted = phase == "Failed" and pod.status.reason == "Evicted"
            if phase == "Succeeded" or ready or evicted or pod.metadata.deletion_timestamp:
                continue
            reasons = []
            for status in statuses:
                state = status.state
                if state and state.waiting:
                    message = (state.waiting.message or "")[:160]
                    reasons.append(f"{status.name} waiting: {state.waiting.reason}: {message}")
                last = status.last_state.terminated if status.last_state else None
                if last is not None:
                    reasons.append(f"{status.name} last exit code {last.exit_code} ({last.reason})")
            lines.append(f"pod {pod.metadata.name}: {phase}; " + ("; ".join(reasons) or "not ready"))
        return lines

    def wait_pods_ready(
        self,
        namespace: str,
        selector: str,
        deadline: Deadline,
        *,
        consecutive: int = 3,
        interval: float = 5.0,
        check: Callable[[Kube], None] | None = None,
    ) -> None:
        """Wait until every selected pod is Running+Ready (or Succeeded) for ``consecutive`` polls.

        ``check`` runs on every poll and may raise to stop early on a known failure.
        """
        streak = 0
        problems: list[str] = ["no pods yet"]
        while True:
            if check is not None:
                check(self)
            core = client.CoreV1Api(self.api)
            pods = core.list_namespaced_pod(namespace, label_selector=selector).items
            problems = self.pod_problems(namespace, selector) if pods else ["no pods yet"]
            streak = streak + 1 if not problems else 0
            if streak >= consecutive:
                return
            if deadline.passed:
                raise LabError(
                    f"pods in {namespace} ({selector}) not ready after {deadline.seconds:.0f}s; "
                    "raise LAB_CLUSTER_TIMEOUT if images are still pulling, or run `lab doctor`",
                    problems[:15],
                )
            time.sleep(min(interval, max(deadline.remaining, 0.1)))

    def service_get(self, namespace: str, service: str, port: int, path: str, timeout: float = 10.0) -> str:
        """GET ``path`` from a Service through the API server's proxy (no port-forward needed).

        Returns the raw body; a non-2xx answer raises ApiException.
        """
        core = client.CoreV1Api(self.api)
        # Raw bytes: with content preloading the client turns a JSON body into a Python repr.
        response = core.connect_get_namespaced_service_proxy_with_path(
            f"{service}:{port}", namespace, path.lstrip("/"), _request_timeout=timeout, _preload_content=False
        )
        body: bytes = response.data
        return body.decode(errors="replace")


def wait_until(
    pending: Callable[[], list[str]], deadline: Deadline, what: str, interval: float = 3.0
) -> None:
    """Poll ``pending`` (what is still not right) until it is empty or the deadline passes."""
    while True:
        left = pending()
        if not left:
            return
        if deadline.passed:
            raise LabError(
                f"{what} after {deadline.seconds:.0f}s; raise LAB_CLUSTER_TIMEOUT or run `lab doctor`",
                left[:15],
            )
        time.sleep(min(interval, max(deadline.remaining, 0.1)))


def object_key(obj: Manifest) -> str:
    """``Kind namespace/name`` (or ``Kind name``) for messages."""
    meta = obj.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


def _comparable(obj: Manifest) -> Manifest:
    # Fields the server rewrites on every apply (or that only reflect history) say nothing
    # about whether the lab's intent is in place.
    result = copy.deepcopy(obj)
    meta = result.get("metadata", {})
    for key in ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid"):
        meta.pop(key, None)
    result.pop("status", None)
    return result
