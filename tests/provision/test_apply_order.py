"""The order of a step's applies: kinds one after another, as kustomize prints them."""

from __future__ import annotations

from lab.kube_apply import kind_runs
from lab.kube_objects import Manifest


def obj(kind: str, name: str, api_version: str = "v1") -> Manifest:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}


def test_runs_keep_the_order_and_never_mix_kinds() -> None:
    objects = [
        obj("ServiceAccount", "a"),
        obj("Role", "r1"),
        obj("Role", "r2"),
        obj("RoleBinding", "b"),
        obj("Deployment", "d1"),
        obj("Deployment", "d2"),
        obj("ValidatingWebhookConfiguration", "w"),
        obj("Deployment", "late"),
        obj("Certificate", "c1", "cert-manager.io/v1"),
        obj("Certificate", "c2", "example.com/v1"),
    ]
    runs = kind_runs(objects)
    assert [[o["metadata"]["name"] for o in run] for run in runs] == [
        ["a"],
        ["r1", "r2"],
        ["b"],
        ["d1", "d2"],
        ["w"],
        ["late"],
        ["c1"],
        ["c2"],
    ]
    assert [o for run in runs for o in run] == objects


def test_no_objects_no_runs() -> None:
    assert kind_runs([]) == []
