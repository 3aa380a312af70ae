"""The control plane's static PersistentVolumes, made reusable across ``up``/``down`` cycles.

``lab control-plane start`` creates a few hostPath PersistentVolumes (labelled
:data:`STATIC_LABEL`) because that cluster has no provisioner. They are ``Retain``: a
volume whose claim ``down`` deleted turns ``Released`` and keeps its ``claimRef``, and the
PersistentVolume controller never binds a Released volume again, so after enough cycles
KFP's and Model Registry's claims stay Pending and ``up`` waits out its timeout.

Why clearing ``claimRef`` rather than another reclaim policy: ``Delete`` needs a deleter
plugin for hostPath (kube-controller-manager has one only behind a testing flag, else the
volume goes ``Failed``), and ``Recycle`` runs a scrubber pod that never completes on kwok
nodes. With ``claimRef`` cleared the controller itself moves the volume back to
``Available`` (what an administrator does by hand for a Retain volume). Nothing writes to
these volumes (no pod runs on kwok nodes), so no old data reaches the next claim.

Only volumes carrying the control plane's label and name are touched: on any other
cluster this step finds nothing and changes nothing.
"""

from __future__ import annotations

from typing import Any

from lab.kube import Kube
from lab.provision.actions import Context

STATIC_LABEL = ("lab/static", "true")
NAME_PREFIX = "lab-static-pv-"


def released_static_volumes(kube: Kube) -> list[dict[str, Any]]:
    """The control plane's static volumes that are Released (their claim is gone)."""
    volumes = kube.dynamic.resources.get(api_version="v1", kind="PersistentVolume")
    selector = "=".join(STATIC_LABEL)
    items = volumes.get(label_selector=selector).to_dict().get("items") or []
    return [
        pv
        for pv in items
        if pv["metadata"]["name"].startswith(NAME_PREFIX)
        and (pv.get("status") or {}).get("phase") == "Released"
    ]


def release_static_volumes(kube: Kube) -> list[str]:
    """Clear the ``claimRef`` of every Released static volume; returns their names."""
    volumes = kube.dynamic.resources.get(api_version="v1", kind="PersistentVolume")
    freed = []
    for pv in released_static_volumes(kube):
        name = pv["metadata"]["name"]
        volumes.patch(
            name=name, body={"spec": {"claimRef": None}}, content_type="application/merge-patch+json"
        )
        freed.append(name)
    return freed


class ReusableVolumes:
    """Make the control plane's Released static volumes Available again (nothing elsewhere)."""

    name = "reusable volumes"

    def is_done(self, ctx: Context) -> bool:
        """No static volume of the control plane is Released."""
        return not released_static_volumes(ctx.kube())

    def execute(self, ctx: Context) -> None:
        """Clear their claimRef; the PersistentVolume controller makes them Available."""
        freed = release_static_volumes(ctx.kube())
        ctx.progress.info(f"   released volumes made Available again: {', '.join(freed)}")

    def plan(self, ctx: Context) -> list[str]:
        """Which volumes would be made Available."""
        kube = ctx.kube_if_reachable()
        if kube is None:
            return ["make Released static volumes of the lab's control plane Available (if any)"]
        names = [pv["metadata"]["name"] for pv in released_static_volumes(kube)]
        return [f"clear claimRef of Released PersistentVolume {name}" for name in names]
