"""Applying a step's objects in dependency order, through the cluster door.

Its own module beside :mod:`lab.kube` (which keeps the client calls): the order and the retry
of refusals that only mean "too early" are policy, not access.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from lab.deadline import Deadline
from lab.errors import LabError
from lab.kube import ApiError, KindNotServed, Kube
from lab.kube_errors import api_error_text, retriable
from lab.kube_objects import FIELD_MANAGER, Manifest, object_key


def apply_all(
    kube: Kube, objects: Sequence[Manifest], deadline: Deadline, manager: str = FIELD_MANAGER
) -> None:
    """Apply in dependency order: namespaces and CRDs first, then wait until established.

    Objects refused because a webhook or a fresh CRD is not serving yet are retried until
    the deadline; anything else the API server refuses stops the step with its answer.
    """
    first = [o for o in objects if o["kind"] in ("Namespace", "CustomResourceDefinition")]
    lives = kube.live_objects(first)
    for obj in first:
        kube.apply(obj, manager=manager, live=lives[object_key(obj)])
    crds = [o["metadata"]["name"] for o in first if o["kind"] == "CustomResourceDefinition"]
    kube.wait_crds_established(crds, deadline)
    pending = [o for o in objects if o["kind"] not in ("Namespace", "CustomResourceDefinition")]
    while pending:
        refused: list[tuple[Manifest, str]] = []
        # What exists is read with one list per kind and namespace, not one GET per object.
        lives = kube.live_objects(pending)
        for obj in pending:
            try:
                kube.apply(obj, manager=manager, live=lives[object_key(obj)])
            except KindNotServed as exc:
                refused.append((obj, f"kind not served yet: {exc}"))
            except ApiError as exc:
                if not retriable(exc):
                    raise LabError(
                        f"the API server refused {object_key(obj)}", [api_error_text(exc)]
                    ) from None
                refused.append((obj, api_error_text(exc)))
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
