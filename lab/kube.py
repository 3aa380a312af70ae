"""The one door to the cluster: the only module that imports the ``kubernetes`` client.

Everything the lab asks of an API server (provisioning, ``lab status``, the doctor, the
cluster run, the local control plane) goes through :class:`Kube`, whose small typed methods
return the client's models or plain dicts; a missing context or a silent API server is one
error, :class:`~lab.errors.ClusterUnreachable`. Whether what comes back is ready is judged by
:mod:`lab.readiness`, never here.

Objects are applied server-side under one field manager per step, so re-applying is a no-op;
whether a step would change anything is read from one list per kind and namespace: an object
that provably matches (:mod:`lab.kube_sync`) costs no request, any other is asked of the API
server with a dry-run apply, the way ``kubectl diff`` does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import urllib3
from kubernetes import client
from kubernetes import config as kubeconfig
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError
from kubernetes.dynamic.resource import ResourceList

from lab.config import LabConfig
from lab.deadline import Deadline, wait_until
from lab.errors import ClusterUnreachable
from lab.kube_errors import api_error_message, api_error_text
from lab.kube_objects import FIELD_MANAGER, UNREAD, Manifest, Unread, comparable, object_key, with_owner
from lab.kube_sync import group_by_list, in_sync_without_asking
from lab.kubeconfig import KubeconfigInvalid, checked_context, context_name, kubeconfig_contexts
from lab.ownership import ForeignObject, adopts
from lab.readiness import deployment_available, pod_problem

_SERIALIZER = client.ApiClient()


# The door also answers which context it uses and how a failed call reads.
__all__ = ["api_error_message", "api_error_text", "context_name", "kubeconfig_contexts"]


def to_manifest(model: Any) -> Manifest:
    """A kubernetes client model (V1Secret, V1ConfigMap...) as a plain manifest."""
    manifest: Manifest = _SERIALIZER.sanitize_for_serialization(model)
    return manifest


# The failures callers tell apart, named here so that no other module imports the client.
ApiError = ApiException  # the API server answered with a refusal (status, reason, body)
NotFound = NotFoundError  # dynamic client: no such object
KindNotServed = ResourceNotFoundError  # dynamic client: discovery does not know the kind (yet)
# Once connected, a call fails with a refusal or with the connection dropping or timing out.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (urllib3.exceptions.HTTPError, OSError)
API_ERRORS: tuple[type[Exception], ...] = (ApiException, *TRANSPORT_ERRORS)
# Seconds for one call: total, or (connect, read); None waits as long as the client does.
Timeout = float | tuple[float, float] | None


class Kube:
    """A connection to the lab cluster."""

    def __init__(self, api: client.ApiClient, owner: str = "", timeout: Timeout = None) -> None:
        self.api = api
        # Seconds for each typed read below (status and the doctor must answer promptly).
        self.timeout = timeout
        # The OWNER_LABEL value this lab stamps on what it creates.
        self.owner = owner
        self._dynamic: DynamicClient | None = None
        self._rediscovered_at = 0.0

    @classmethod
    def connect(cls, config: LabConfig, timeout: float = 10.0, *, read_timeout: Timeout = None) -> Kube:
        """Connect through the lab's context (see context_name) and check the API server answers.

        KubeconfigInvalid (a usage error) when the kubeconfig is unusable or, in cluster mode,
        lacks the context; ClusterUnreachable when the API server does not answer.
        """
        if config.mode == "cluster":
            read, context = checked_context(config)
            where = f" in {read.where}"
        else:
            context = context_name(config)
            where = f" in {config.kubeconfig}" if config.kubeconfig else ""
        try:
            api = kubeconfig.new_client_from_config(
                config_file=config.kubeconfig or None, context=context or None
            )
        except (ConfigException, FileNotFoundError, OSError, TypeError, ValueError) as exc:
            if config.mode == "cluster":
                raise KubeconfigInvalid(f"context {context}{where} cannot be used: {exc}") from None
            raise ClusterUnreachable(
                f"no kubeconfig context {context}{where}: create the cluster with `lab up --mode kind`",
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
                f"the API server {api.configuration.host} of context {context}{where} does not answer "
                f"({api_error_message(exc)}): {hint}"
            ) from None
        return cls(api, owner=config.names.cluster, timeout=read_timeout)

    @classmethod
    def from_kubeconfig(cls, config_file: str | None, context: str, timeout: Timeout = None) -> Kube:
        """A client for ``context`` without asking the API server anything yet."""
        try:
            api = kubeconfig.new_client_from_config(config_file=config_file, context=context)
        except (ConfigException, OSError, TypeError, ValueError) as exc:
            raise ClusterUnreachable(f"no usable kubeconfig context {context!r}: {exc}") from None
        return cls(api, timeout=timeout)

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
            answer = resource.get(name=meta["name"], namespace=meta.get("namespace"), serialize=False)
        except (NotFoundError, ResourceNotFoundError):
            return None
        return _json_body(answer)

    def apply(
        self,
        obj: Manifest,
        dry_run: bool = False,
        manager: str = FIELD_MANAGER,
        live: Manifest | None | Unread = UNREAD,
    ) -> Manifest:
        """Server-side apply one object (force: the lab owns the fields it sets).

        ``live`` is the object as read just before, None when it was absent (saves a read
        when the caller has it, e.g. from :meth:`live_objects`).
        """
        resource = self._resource(obj)
        if isinstance(live, Unread):
            live = self.get(obj)
        # A found Namespace is used as it is; any other object the lab did not create is refused.
        if live is not None and adopts(obj, live, self.owner):
            return live
        answer = self.dynamic.server_side_apply(
            resource,
            body=with_owner(obj, live, self.owner),
            namespace=obj["metadata"].get("namespace"),
            field_manager=manager,
            force_conflicts=True,
            dry_run="All" if dry_run else None,
            serialize=False,
        )
        return _json_body(answer)

    def in_sync(self, objects: Iterable[Manifest], manager: str = FIELD_MANAGER) -> bool:
        """Whether applying ``objects`` would change nothing (stops at the first difference)."""
        return not self.drift(objects, first_only=True, manager=manager)

    def drift(
        self, objects: Iterable[Manifest], first_only: bool = False, manager: str = FIELD_MANAGER
    ) -> list[str]:
        """What applying ``objects`` would change: ``create <obj>`` / ``update <obj>`` lines.

        The live objects come from one list per kind and namespace; an object that provably
        matches (see :mod:`lab.kube_sync`) costs no request, any other is asked of the API
        server with a dry-run apply.
        """
        objects = list(objects)
        lives = self.live_objects(objects)
        changes: list[str] = []
        for obj in objects:
            if first_only and changes:
                break
            live = lives[object_key(obj)]
            if live is None:
                changes.append(f"create {object_key(obj)}")
                continue
            try:
                if adopts(obj, live, self.owner):
                    continue
            except ForeignObject as refused:
                changes.append(f"refuse {refused.message}")
                continue
            if in_sync_without_asking(with_owner(obj, live, self.owner), live, manager):
                continue
            try:
                after = self.apply(obj, dry_run=True, manager=manager, live=live)
            except ApiException as exc:
                changes.append(f"update {object_key(obj)} (dry-run refused: {api_error_text(exc)})")
                continue
            if comparable(after) != comparable(live):
                changes.append(f"update {object_key(obj)}")
        return changes

    def live_objects(self, objects: Sequence[Manifest]) -> dict[str, Manifest | None]:
        """The live object (None: absent) by ``object_key``, one list per kind and namespace."""
        found: dict[str, Manifest | None] = {}
        for (api_version, kind, namespace), group in group_by_list(objects).items():
            try:
                resource = self._resource(group[0])
            except ResourceNotFoundError:
                found.update((object_key(obj), None) for obj in group)
                continue
            if len(group) == 1 or (resource.namespaced and not namespace):
                # One object, or no namespace to list in: a GET is the cheaper (or only) question.
                found.update((object_key(obj), self.get(obj)) for obj in group)
                continue
            try:
                listed = _json_body(resource.get(namespace=namespace or None, serialize=False))
            except NotFoundError:
                # Discovery (cached on disk by the client) still lists a kind no longer served.
                found.update((object_key(obj), None) for obj in group)
                continue
            items = listed.get("items") or []
            # List items carry no apiVersion and kind of their own.
            by_name = {i["metadata"]["name"]: {**i, "apiVersion": api_version, "kind": kind} for i in items}
            found.update((object_key(obj), by_name.get(obj["metadata"]["name"])) for obj in group)
        return found

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
            if not deployment_available(dep):
                ready = dep.status.ready_replicas or 0
                waiting.append(f"Deployment {namespace}/{name}: {ready}/{dep.spec.replicas} ready")
        return waiting

    def pod_problems(self, namespace: str, selector: str = "") -> list[str]:
        """Pods that are neither Running and Ready nor Succeeded, with their reasons."""
        return [line for pod in self.pods(namespace, selector) if (line := pod_problem(pod))]

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

        def problems() -> list[str]:
            if check is not None:
                check(self)
            pods = self.pods(namespace, selector)
            return [line for pod in pods if (line := pod_problem(pod))] if pods else ["no pods yet"]

        wait_until(
            problems,
            deadline,
            f"pods in {namespace} ({selector}) not ready",
            interval,
            consecutive=consecutive,
            advice="raise LAB_CLUSTER_TIMEOUT if images are still pulling, or run `lab doctor`",
        )

    def service_get(self, namespace: str, service: str, port: int, path: str, timeout: float = 10.0) -> str:
        """GET ``path`` from a Service through the API server's proxy (no port-forward needed).

        Returns the raw body; a non-2xx answer raises ApiError.
        """
        core = self._core
        # Raw bytes: with content preloading the client turns a JSON body into a Python repr.
        response = core.connect_get_namespaced_service_proxy_with_path(
            f"{service}:{port}", namespace, path.lstrip("/"), _request_timeout=timeout, _preload_content=False
        )
        body: bytes = response.data
        return body.decode(errors="replace")

    # --- typed reads: client models (or API dicts for custom objects) ---------------------

    @property
    def host(self) -> str:
        """The API server's URL."""
        return str(self.api.configuration.host)

    @property
    def _core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def _custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def pods(self, namespace: str = "", selector: str = "") -> list[Any]:
        """``V1Pod`` objects in ``namespace`` (every namespace when empty)."""
        core = self._core
        return _items(core.list_namespaced_pod, core.list_pod_for_all_namespaces, namespace, selector, self)

    def deployments(self, namespace: str = "", selector: str = "") -> list[Any]:
        """``V1Deployment`` objects in ``namespace`` (every namespace when empty)."""
        apps = client.AppsV1Api(self.api)
        everywhere = apps.list_deployment_for_all_namespaces
        return _items(apps.list_namespaced_deployment, everywhere, namespace, selector, self)

    def cluster_wide(self, kind: str) -> list[Any]:
        """Every object of ``kind`` (pods, events, pvcs, storageclasses, deployments, nodes, namespaces)."""
        core = self._core
        calls = {
            "pods": core.list_pod_for_all_namespaces,
            "events": core.list_event_for_all_namespaces,
            "pvcs": core.list_persistent_volume_claim_for_all_namespaces,
            "storageclasses": client.StorageV1Api(self.api).list_storage_class,
            "deployments": client.AppsV1Api(self.api).list_deployment_for_all_namespaces,
            "nodes": core.list_node,
            "namespaces": core.list_namespace,
        }
        return list(calls[kind](_request_timeout=self.timeout).items)

    def nodes(self) -> list[Any]:
        """``V1Node`` objects."""
        return self.cluster_wide("nodes")

    def namespace_exists(self, name: str) -> bool:
        """Whether the Namespace exists (other refusals raise ApiError)."""
        try:
            self._core.read_namespace(name, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def config_map(self, namespace: str, name: str) -> Any:
        """One ``V1ConfigMap`` (ApiError 404 when absent)."""
        return self._core.read_namespaced_config_map(name, namespace, _request_timeout=self.timeout)

    def secret(self, namespace: str, name: str) -> Any:
        """One ``V1Secret`` (ApiError 404 when absent)."""
        return self._core.read_namespaced_secret(name, namespace, _request_timeout=self.timeout)

    def service_account(self, namespace: str, name: str) -> Any:
        """One ``V1ServiceAccount`` (ApiError 404 when absent)."""
        return self._core.read_namespaced_service_account(name, namespace, _request_timeout=self.timeout)

    def pod_log(self, namespace: str, pod: str, container: str, *, previous: bool, tail_lines: int) -> str:
        """The tail of one container's log."""
        options = {"previous": previous, "tail_lines": tail_lines, "_request_timeout": self.timeout}
        return str(self._core.read_namespaced_pod_log(pod, namespace, container=container, **options) or "")

    def custom_objects(self, group: str, version: str, plural: str) -> list[Manifest]:
        """Custom objects cluster-wide as API dicts (ApiError 404 when the type is not served)."""
        answer = self._custom.list_cluster_custom_object(
            group, version, plural, _request_timeout=self.timeout
        )
        return list(answer.get("items", []))

    def custom_object(self, group: str, version: str, namespace: str, plural: str, name: str) -> Manifest:
        """One namespaced custom object as an API dict (ApiError when it cannot be read)."""
        return dict(self._custom.get_namespaced_custom_object(group, version, namespace, plural, name))

    def delete_custom_object(self, group: str, version: str, namespace: str, plural: str, name: str) -> None:
        """Delete one namespaced custom object (ApiError when refused)."""
        self._custom.delete_namespaced_custom_object(group, version, namespace, plural, name)

    def create_if_absent(self, obj: Manifest) -> None:
        """Create ``obj``; one that already exists is left as it is."""
        try:
            self._resource(obj).create(body=obj, namespace=obj["metadata"].get("namespace"))
        except ApiException as exc:
            if exc.status != 409:
                raise

    def may(self, verb: str, group: str, resource: str, namespace: str = "") -> bool:
        """Whether these credentials may ``verb`` it (SelfSubjectAccessReview; namespace "": cluster-wide)."""
        attributes = client.V1ResourceAttributes(
            verb=verb, group=group, resource=resource, namespace=namespace or None
        )
        review = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
        )
        answer = client.AuthorizationV1Api(self.api).create_self_subject_access_review(
            review, _request_timeout=self.timeout
        )
        return bool(answer.status.allowed)

    def resource_of(self, api_version: str, kind: str) -> tuple[str, str, bool] | None:
        """(group, plural, namespaced) of a served kind; None when discovery does not know it."""
        try:
            found = self._resource({"apiVersion": api_version, "kind": kind})
        except ResourceNotFoundError:
            return None
        return str(found.group or ""), str(found.name), bool(found.namespaced)

    def listable_resources(self) -> list[Any]:
        """Every served resource type (not subresources) whose objects can be listed and deleted."""
        found = [r for r in self.dynamic.resources.search() if not isinstance(r, ResourceList)]
        verbs = {"list", "delete"}
        return [
            r for r in found if "/" not in (r.name or "") and verbs <= set(getattr(r, "verbs", None) or [])
        ]


def _json_body(response: Any) -> Manifest:
    """A raw API answer (``serialize=False``) as a dict."""
    # The dynamic client's own wrapping of every field (megabytes of CRDs in one list on a
    # second `up`) costs more than the request itself.
    body: Manifest = json.loads(response.data)
    return body


def _items(namespaced: Any, everywhere: Any, namespace: str, selector: str, kube: Kube) -> list[Any]:
    """One list call's items (within the connection's timeout); "" lists every namespace."""
    options = {"label_selector": selector, "_request_timeout": kube.timeout}
    return list((namespaced(namespace, **options) if namespace else everywhere(**options)).items)
