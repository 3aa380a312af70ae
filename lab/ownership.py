"""Who owns what on a cluster: the one place that decides, for ``up``, ``down``, ``status`` and the doctor.

The model is Helm 3's and kubectl ApplySet's (KEP-3659): *created* and *found* are different
states. An object the lab creates carries ``OWNER_LABEL=<cluster name>`` from its first apply;
that label is the record, and ``down`` deletes exactly the labelled objects. An object that was
there before the lab is never labelled and never deleted:

- a Namespace the lab needs that already exists is *adopted*: used as it is, not modified;
- any other object the lab would apply that already exists without the label is *refused*: the
  lab does not take over someone else's object (``up`` stops before changing anything);
- a component already installed (its marker Deployment exists without the label) is *used*
  when its version has the pinned one's major.minor, refused otherwise, never touched.

What a controller makes for a lab object (a ReplicaSet, its Pods, an issued certificate's
CertificateRequest) points at it with an ownerReference; following those references from the
labelled objects gives everything that goes with the lab. What is left in a lab Namespace, or
of a lab CRD's kind, belongs to someone else, and keeps that Namespace or CRD in place.

Pure functions over API dicts: the cluster reads live in :mod:`lab.provision.teardown` and
:mod:`lab.provision.cluster_preflight`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from lab.components import Component
from lab.errors import LabError
from lab.kube_objects import OWNER_LABEL, Manifest, object_key

# Records controllers write about objects, not anyone's work: never a reason to keep a Namespace.
BOOKKEEPING_KINDS = {("", "Event"), ("events.k8s.io", "Event"), ("coordination.k8s.io", "Lease")}
# Made in every Namespace by the control plane itself.
SYSTEM_OBJECTS = {("", "ConfigMap", "kube-root-ca.crt"), ("", "ServiceAccount", "default")}


class State(Enum):
    """An object's relation to the lab."""

    ABSENT = "absent"  # the lab would create it
    CREATED = "created"  # it carries the lab's owner label: the lab made it and may delete it
    FOUND = "found"  # it was there before the lab: never labelled, never deleted


def state_of(live: Manifest | None, owner: str) -> State:
    """ABSENT, CREATED (labelled ``owner``) or FOUND."""
    if live is None:
        return State.ABSENT
    labels = (live.get("metadata") or {}).get("labels") or {}
    return State.CREATED if labels.get(OWNER_LABEL) == owner else State.FOUND


def found_by_labels(labels: dict[str, str] | None, owner: str) -> bool:
    """Whether an object with these labels (a client object's ``metadata.labels``) was not made by the lab."""
    return state_of({"metadata": {"labels": labels or {}}}, owner) is State.FOUND


class ForeignObject(LabError):
    """The lab would apply an object that exists and is not the lab's."""


def refusal(obj: Manifest) -> str:
    """Why the lab will not apply ``obj``: it exists and someone else made it."""
    return (
        f"{object_key(obj)} already exists and was not created by the lab "
        f"(no label {OWNER_LABEL}): the lab does not take over other objects"
    )


def adopts(obj: Manifest, live: Manifest | None, owner: str) -> bool:
    """True when ``obj`` is a Namespace that was already there: used as it is, never modified.

    Raises ForeignObject for any other object that exists without the lab's label.
    """
    if not owner or state_of(live, owner) is not State.FOUND:
        return False
    if obj["kind"] == "Namespace":
        return True
    raise ForeignObject(refusal(obj))


def group_of(obj: Manifest) -> str:
    """The API group of an object ("" for the core group)."""
    api_version = str(obj.get("apiVersion", ""))
    return api_version.split("/")[0] if "/" in api_version else ""


# cert-manager writes a Certificate's Secret without an ownerReference (unless told to), naming
# the Certificate in this annotation instead.
ISSUED_FOR = "cert-manager.io/certificate-name"


def lab_uids(objects: Iterable[Manifest], owner: str) -> set[str]:
    """UIDs of the labelled objects and of everything made for one (ownerReferences, issued Secrets)."""
    objects = list(objects)
    uids = {o["metadata"]["uid"] for o in objects if state_of(o, owner) is State.CREATED}
    grew = True
    while grew:
        grew = False
        certificates = {
            (o["metadata"].get("namespace"), o["metadata"]["name"])
            for o in objects
            if o["kind"] == "Certificate" and o["metadata"].get("uid") in uids
        }
        for obj in objects:
            meta = obj["metadata"]
            refs = {ref.get("uid") for ref in meta.get("ownerReferences") or []}
            issued = ((meta.get("annotations") or {}).get(ISSUED_FOR), meta.get("namespace"))
            made_for_lab = bool(refs & uids) or (issued[1], issued[0]) in certificates
            if meta.get("uid") not in uids and made_for_lab:
                uids.add(meta["uid"])
                grew = True
    return uids


def foreign(objects: Iterable[Manifest], uids: set[str], *, whole_namespace: bool = False) -> list[Manifest]:
    """The objects that are neither the lab's (``uids``), nor bookkeeping, nor made by the control plane.

    With ``whole_namespace`` (``objects`` is everything in one Namespace, so every owner an
    object can have is among them) an object whose owners are all gone is being garbage
    collected: it goes with them.
    """
    objects = list(objects)
    present = {o["metadata"].get("uid") for o in objects}
    found = []
    for obj in objects:
        meta = obj["metadata"]
        if meta.get("uid") in uids or (group_of(obj), obj["kind"]) in BOOKKEEPING_KINDS:
            continue
        owners = {ref.get("uid") for ref in meta.get("ownerReferences") or []}
        if whole_namespace and owners and not owners & present:
            continue
        if (group_of(obj), obj["kind"], meta["name"]) in SYSTEM_OBJECTS:
            continue
        # The endpoints controller writes an Endpoints object for each Service, under its name.
        if obj["kind"] == "Endpoints" and meta.get("name") in _service_names(objects, uids):
            continue
        found.append(obj)
    return found


def _service_names(objects: Iterable[Manifest], uids: set[str]) -> set[str]:
    return {
        o["metadata"]["name"] for o in objects if o["kind"] == "Service" and o["metadata"].get("uid") in uids
    }


# ---------------------------------------------------------------------------------------------
# Components found installed
# ---------------------------------------------------------------------------------------------

_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.\d+)?")


@dataclass(frozen=True)
class FoundComponent:
    """A component someone else installed: its marker Deployment, its version, whether it is usable.

    ``installed_by`` is who installed it as far as its Deployment says (a Helm release, the
    tool its managed-by label names, the field manager that created it); ``deployments`` are
    the Deployments that make it up (the declared ones, else the marker).
    """

    name: str
    deployment: str  # namespace/name
    version: str
    pinned: str
    installed_by: str = ""
    deployments: tuple[str, ...] = ()

    @property
    def namespace(self) -> str:
        """Where it lives (the marker Deployment's namespace): the lab judges and waits for it there."""
        return self.deployment.partition("/")[0]

    def not_ours(self) -> str:
        """One line for the doctor and ``status``: whose it is, where it lives, that the lab leaves it."""
        by = f", installed by {self.installed_by}" if self.installed_by else ""
        return (
            f"{self.name} is not the lab's: {self.name} {self.version or '(version unknown)'} was found "
            f"installed (Deployment {self.deployment}{by}); the lab uses it as it is and never changes it"
        )

    @property
    def compatible(self) -> bool:
        """Same major.minor as the pinned version (patch releases of one minor are interchangeable)."""
        return _minor(self.version) is not None and _minor(self.version) == _minor(self.pinned)

    def describe(self) -> str:
        """One line for ``up``, ``status`` and refusals."""
        version = self.version or "(version unknown)"
        found = f"{self.name} {version} found installed (Deployment {self.deployment}, not the lab's)"
        if self.compatible:
            return f"{found}: used as it is, never changed or deleted by the lab"
        return (
            f"{found}: the lab needs {self.name} {_minor_text(self.pinned)}.x (pinned {self.pinned}); "
            f"upgrade or remove it, or use another cluster"
        )


def _minor(version: str) -> tuple[int, int] | None:
    match = _VERSION.search(version or "")
    return (int(match[1]), int(match[2])) if match else None


def _minor_text(version: str) -> str:
    minor = _minor(version)
    return f"v{minor[0]}.{minor[1]}" if minor else version


def deployment_version(deployment: Manifest) -> str:
    """The version a Deployment runs: its ``app.kubernetes.io/version`` label, else its first image's tag."""
    labels = (deployment.get("metadata") or {}).get("labels") or {}
    if labels.get("app.kubernetes.io/version"):
        return str(labels["app.kubernetes.io/version"])
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "containers"
    ) or []
    image = str(containers[0].get("image", "")) if containers else ""
    tag = image.rsplit("/", 1)[-1].partition("@")[0].partition(":")[2]
    return tag


def installed_by(deployment: Manifest) -> str:
    """Who installed a Deployment, as far as it says: Helm release, managed-by tool or first field manager."""
    meta = deployment.get("metadata") or {}
    annotations, labels = meta.get("annotations") or {}, meta.get("labels") or {}
    release = annotations.get("meta.helm.sh/release-name")
    if release:
        namespace = annotations.get("meta.helm.sh/release-namespace") or meta.get("namespace")
        return f"Helm release {namespace}/{release}"
    if labels.get("app.kubernetes.io/managed-by"):
        return str(labels["app.kubernetes.io/managed-by"])
    # The first writer of the object's own fields (status writes come from its controller).
    managers = [
        str(entry.get("manager"))
        for entry in meta.get("managedFields") or []
        if isinstance(entry, dict) and entry.get("manager") and not entry.get("subresource")
    ]
    return f"field manager {managers[0]}" if managers else ""


def found_component(
    name: str, pinned: str, marker: Manifest | None, owner: str, deployments: tuple[str, ...] = ()
) -> FoundComponent | None:
    """The component as found on the cluster, or None when its marker is absent or the lab's own."""
    if state_of(marker, owner) is not State.FOUND or marker is None:
        return None
    meta = marker["metadata"]
    return FoundComponent(
        name,
        f"{meta.get('namespace')}/{meta['name']}",
        deployment_version(marker),
        pinned,
        installed_by(marker),
        deployments or (str(meta["name"]),),
    )


def found_components(
    components: Iterable[Component], deployments: Iterable[Manifest], owner: str, versions: object
) -> dict[str, FoundComponent]:
    """The declared components someone else installed, by name.

    Each is a marker Deployment, in any namespace, without the lab's label.
    Cluster mode only (``up``'s preflight, ``status`` and the doctor all ask this): a kind
    cluster is the lab's own, whatever is in it. ``versions`` is ``config.versions``.
    """
    by_name: dict[str, Manifest] = {}
    for deployment in deployments:
        by_name.setdefault(str(deployment["metadata"]["name"]), deployment)
    found = {}
    for component in components:
        marker = by_name.get(component.marker) if component.marker else None
        pinned = str(getattr(versions, component.version_setting))
        hit = found_component(component.name, pinned, marker, owner, component.deployments)
        if hit is not None:
            found[component.name] = hit
    return found
