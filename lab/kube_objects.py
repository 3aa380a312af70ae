"""Plain manifests as the lab applies them: their type, their name in messages, who owns them.

Pure functions over dicts, kept apart from :mod:`lab.kube` (the door) so that rendering and
judging manifests never needs the ``kubernetes`` client.
"""

from __future__ import annotations

import copy
from typing import Any

FIELD_MANAGER = "kubeflow-modelkit-lab"
# Every object the lab creates carries this label (value: the lab's cluster name), so `down`
# removes exactly what the lab made and never an object it only added fields to.
OWNER_LABEL = "kubeflow-modelkit-lab/owner"
Manifest = dict[str, Any]


class Unread:
    """The type of :data:`UNREAD`."""


# An object not read yet, as opposed to None: read, and absent (``Kube.apply``'s ``live``).
UNREAD = Unread()


def field_manager(step: str = "") -> str:
    """One server-side-apply field manager per step.

    Two steps applying the same object (KFP's Namespace with its pod-security labels, the
    secrets step's bare Namespace) under one manager would each strip what the other set.
    """
    slug = "".join(c if c.isalnum() else "-" for c in step.lower()).strip("-")
    return f"{FIELD_MANAGER}-{slug}" if slug else FIELD_MANAGER


def object_key(obj: Manifest) -> str:
    """``Kind namespace/name`` (or ``Kind name``) for messages."""
    meta = obj.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


def with_owner(obj: Manifest, live: Manifest | None, owner: str) -> Manifest:
    """``obj`` with the owner label when the lab creates it (or created it before).

    An object that already exists without the label belongs to someone else: the lab
    applies its fields but never claims it, so `down` will not delete it.
    """
    if not owner:
        return obj
    if live is not None and (live.get("metadata", {}).get("labels") or {}).get(OWNER_LABEL) != owner:
        return obj
    labelled = copy.deepcopy(obj)
    labels = labelled["metadata"].get("labels") or {}
    labelled["metadata"]["labels"] = {**labels, OWNER_LABEL: owner}
    return labelled


def comparable(obj: Manifest) -> Manifest:
    """``obj`` without what the server rewrites on every apply (or what only reflects history).

    Those fields say nothing about whether the lab's intent is in place.
    """
    result = copy.deepcopy(obj)
    meta = result.get("metadata", {})
    for key in ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid"):
        meta.pop(key, None)
    result.pop("status", None)
    return result
