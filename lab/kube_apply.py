"""Applying a step's objects in dependency order, through the cluster door.

Its own module beside :mod:`lab.kube` (which keeps the client calls): the order and the retry
of refusals that only mean "too early" are policy, not access.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from lab.deadline import Deadline, growing_pauses, wait_until
from lab.errors import LabError
from lab.kube import ApiError, KindNotServed, Kube
from lab.kube_errors import api_error_text, retriable
from lab.kube_objects import FIELD_MANAGER, Manifest, object_key
from lab.readiness import crd_established

# Server-side applies in flight at once: a first `up` applies a few hundred objects, one
# request each (the API has no batch apply), and most of each request's time is the server's.
CONCURRENT_APPLIES = 4


def kind_runs(objects: Sequence[Manifest]) -> list[list[Manifest]]:
    """``objects`` cut into runs of consecutive objects of one kind (and apiVersion), in order.

    Kinds depend on kinds in the order kustomize prints them (a Role before its RoleBinding,
    webhook configurations last, so nothing waits on a webhook applied a moment before it);
    objects of one kind do not depend on each other, so a run may be applied all at once.
    """
    runs: list[list[Manifest]] = []
    for obj in objects:
        if runs and (runs[-1][0]["apiVersion"], runs[-1][0]["kind"]) == (obj["apiVersion"], obj["kind"]):
            runs[-1].append(obj)
        else:
            runs.append([obj])
    return runs


def _apply_runs(
    kube: Kube, objects: Sequence[Manifest], manager: str, pool: ThreadPoolExecutor
) -> list[tuple[Manifest, str]]:
    """Apply each kind's run concurrently, run after run; returns what was refused for now, and why.

    A refusal that is not "too early" stops here (after its run) with the API server's answer.
    """
    # What exists is read with one list per kind and namespace, not one GET per object.
    lives = kube.live_objects(objects)

    def apply(obj: Manifest) -> BaseException | None:
        try:
            kube.apply(obj, manager=manager, live=lives[object_key(obj)])
        except Exception as exc:  # judged below, in order, in this thread
            return exc
        return None

    refused: list[tuple[Manifest, str]] = []
    for run in kind_runs(objects):
        # Discovery is asked here first: its cache fills in this thread, the workers only read it.
        served = kube.resource_of(run[0]["apiVersion"], run[0]["kind"]) is not None
        outcomes = list(zip(run, pool.map(apply, run) if served else map(apply, run), strict=True))
        for obj, exc in outcomes:
            if exc is None:
                continue
            if isinstance(exc, KindNotServed):
                refused.append((obj, f"kind not served yet: {exc}"))
            elif isinstance(exc, ApiError) and retriable(exc):
                refused.append((obj, api_error_text(exc)))
            elif isinstance(exc, ApiError):
                raise LabError(f"the API server refused {object_key(obj)}", [api_error_text(exc)]) from None
            else:
                raise exc
    return refused


def wait_crds_established(
    kube: Kube, names: Sequence[str], deadline: Deadline, pool: ThreadPoolExecutor
) -> None:
    """Wait until every named CRD reports Established."""

    def established(name: str) -> bool:
        crd = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
        }
        try:
            live = kube.get(crd)
        except ApiError:
            return False
        return live is not None and crd_established(live)

    waiting = list(names)

    def pending() -> list[str]:
        # Only what still waits is read again, a few at once (KServe's CRDs are megabytes each).
        waiting[:] = [
            name for name, done in zip(waiting, pool.map(established, waiting), strict=True) if not done
        ]
        return waiting

    # A fresh CRD is usually Established within a second: poll soon, then every second.
    wait_until(pending, deadline, "CustomResourceDefinitions not Established", interval=1.0)


def apply_all(
    kube: Kube, objects: Sequence[Manifest], deadline: Deadline, manager: str = FIELD_MANAGER
) -> None:
    """Apply in dependency order: namespaces and CRDs first, then wait until established.

    Objects refused because a webhook or a fresh CRD is not serving yet are retried until
    the deadline; anything else the API server refuses stops the step with its answer.
    """
    with ThreadPoolExecutor(max_workers=CONCURRENT_APPLIES) as pool:
        first = [o for o in objects if o["kind"] in ("Namespace", "CustomResourceDefinition")]
        refused = _apply_runs(kube, first, manager, pool)
        if refused:
            raise LabError(f"the API server refused {object_key(refused[0][0])}", [refused[0][1]])
        crds = [o["metadata"]["name"] for o in first if o["kind"] == "CustomResourceDefinition"]
        wait_crds_established(kube, crds, deadline, pool)
        pending = [o for o in objects if o["kind"] not in ("Namespace", "CustomResourceDefinition")]
        pauses = growing_pauses(3.0)  # a webhook usually answers within a second or two of a refusal
        while pending:
            refused = _apply_runs(kube, pending, manager, pool)
            if not refused:
                return
            if deadline.passed:
                raise LabError(
                    f"{len(refused)} objects were still refused when the wait ran out "
                    "(a webhook or CRD never became ready); raise LAB_CLUSTER_TIMEOUT or run `lab doctor`",
                    [f"{object_key(obj)}: {why}" for obj, why in refused[:10]],
                )
            time.sleep(min(next(pauses), deadline.remaining))
            pending = [obj for obj, _ in refused]
