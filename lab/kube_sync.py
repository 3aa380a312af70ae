"""Whether applying an object would change nothing, judged from the live object alone.

A second ``lab up --mode cluster`` asks this of every object of every step. The API server's
own answer is a dry-run server-side apply, one request per object (and KServe's CRDs are
megabytes each way); most objects are answered here instead, from one list per kind:

- every value the lab sets is in the live object, equal (maps may hold more keys, lists must
  have the same items), and
- the fields the step's field manager owns (its ``managedFields`` entry) are exactly the
  fields the lab sets now, so applying would neither take a field from another manager nor
  drop one the lab set before.

When either cannot be shown, the object is not judged here (None) and the dry run decides:
this only ever saves a request, it never decides "in sync" on a guess. Pure functions over
dicts; no ``kubernetes`` import.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from lab.kube_objects import Manifest

# Identity, not fields: the managedFields of an apply never list them.
_TOP_IDENTITY = ("apiVersion", "kind")
_META_IDENTITY = ("name", "namespace")


def group_by_list(objects: Iterable[Manifest]) -> dict[tuple[str, str, str], list[Manifest]]:
    """The objects by (apiVersion, kind, namespace): one list request answers each group."""
    groups: dict[tuple[str, str, str], list[Manifest]] = {}
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace") or "")
        groups.setdefault(key, []).append(obj)
    return groups


def contains(live: Any, desired: Any) -> bool:
    """Every value of ``desired`` is in ``live``: maps may have more keys, lists the same items."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and contains(live[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    return type(live) is type(desired) and live == desired


def _item_matches(item: Any, key: dict[str, Any]) -> bool:
    return isinstance(item, dict) and all(item.get(k) == v for k, v in key.items())


def _list_fields_are(desired: list[Any], owned: dict[str, Any]) -> bool:
    entries = [k for k in owned if k != "."]
    if not entries:
        return True  # an atomic list: owned whole, its items compared by value
    if len(entries) != len(desired):
        return False
    for entry in entries:
        kind, _, text = entry.partition(":")
        try:
            value = json.loads(text)
        except ValueError:
            return False
        if kind == "k" and isinstance(value, dict):
            matches = [item for item in desired if _item_matches(item, value)]
            if len(matches) != 1 or not _fields_are(matches[0], owned[entry]):
                return False
        elif kind == "v":
            if value not in desired:
                return False
        else:
            return False  # positional items ("i:"): not judged here
    return True


def _fields_are(desired: Any, owned: dict[str, Any]) -> bool:
    """The field set of ``desired`` equals what ``owned`` (fieldsV1) lists, down to atomic leaves."""
    if not owned or owned == {".": {}}:
        return True  # a leaf: a scalar, or a map or list the schema makes atomic
    if isinstance(desired, list):
        return _list_fields_are(desired, owned)
    if not isinstance(desired, dict):
        return False
    names = {k[2:] for k in owned if k.startswith("f:")}
    if any(k != "." and not k.startswith("f:") for k in owned) or names != set(desired):
        return False
    return all(_fields_are(desired[name], owned[f"f:{name}"]) for name in names)


def _own_fields(desired: Manifest) -> Manifest:
    fields = {k: v for k, v in desired.items() if k not in _TOP_IDENTITY}
    meta = {k: v for k, v in fields.get("metadata", {}).items() if k not in _META_IDENTITY}
    fields.pop("metadata", None)
    return {**fields, **({"metadata": meta} if meta else {})}


def in_sync_without_asking(desired: Manifest, live: Manifest, manager: str) -> bool | None:
    """True when applying ``desired`` under ``manager`` provably changes nothing; None: ask the server.

    ``desired`` is the object as it would be applied (owner label included).
    """
    if not contains(live, desired):
        return None
    entries = [
        m
        for m in live.get("metadata", {}).get("managedFields") or []
        if m.get("manager") == manager and m.get("operation") == "Apply" and not m.get("subresource")
    ]
    if len(entries) != 1 or not _fields_are(_own_fields(desired), entries[0].get("fieldsV1") or {}):
        return None
    return True
