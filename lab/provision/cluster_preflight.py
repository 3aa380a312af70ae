"""Before ``lab up --mode cluster`` changes anything: what is already there, and may the lab do the rest.

Run as the first step after cluster access (and by the dry run's plan): components someone else
installed are found by their marker Deployment and used or refused by version
(:mod:`lab.ownership`); every object the remaining steps would apply is checked against the
credentials (SelfSubjectAccessReview: get, create, patch, per resource and namespace) and
against the live cluster (an existing object that is not the lab's is refused, an existing
Namespace adopted). Any refusal or missing permission stops ``up`` here, with one line each and
nothing changed.
"""

from __future__ import annotations

from collections.abc import Sequence

from lab.deadline import Deadline, wait_until
from lab.errors import LabError
from lab.kube import Kube, to_manifest
from lab.kube_objects import Manifest, object_key
from lab.ownership import ForeignObject, FoundComponent, State, adopts, found_components, group_of, state_of
from lab.provision.actions import Action, Context
from lab.provision.component_step import ComponentStep
from lab.provision.manifests import ManifestStep
from lab.provision.sources import ManifestSources
from lab.provision.teardown import FinalizerNudge, missing

Need = tuple[str, str, str, str]  # verb, group, resource, namespace
# An object being deleted cannot be applied over: a Namespace refuses new content (403
# NamespaceTerminating), a CRD goes away with what was applied of its kind. Deletion normally
# finishes within a minute (a CRD of the lab's the API server's finalizer dropped is touched,
# see teardown.FinalizerNudge; someone else's is waited for as it is); longer than this is a
# finalizer holding it.
DELETION_SECONDS = 300.0


def installed_already(kube: Kube, ctx: Context, later: Sequence[Action]) -> dict[str, FoundComponent]:
    """The declared components someone else installed, by component name (:mod:`lab.ownership` judges)."""
    components = [step.component for step in later if isinstance(step, ComponentStep)]
    deployments = [to_manifest(d) for d in kube.deployments()]
    return found_components(components, deployments, kube.owner, ctx.config.versions)


def _objects(ctx: Context, later: Sequence[Action], *, dry_run: bool) -> list[Manifest]:
    """What the steps after this one would apply (a dry run renders into a scratch workspace)."""
    objects: list[Manifest] = []
    remote = ManifestSources(ctx.config, ctx.workspace).mirror is None
    for action in later:
        if isinstance(action, ComponentStep) and action.component.name in ctx.found_components:
            objects += action.extra_objects(ctx)  # the lab's own additions to a found component
            continue
        if isinstance(action, ManifestStep) and dry_run:
            # Remote refs are fetched by kustomize at apply time; a dry run does not download.
            objects += action.extra_objects(ctx) if remote else action.objects(ctx, ctx.scratch_workspace())
        elif (render := getattr(action, "objects", None)) is not None:
            objects += render(ctx)
    return objects


def _resource(
    kube: Kube, obj: Manifest, crds: dict[tuple[str, str], tuple[str, bool]]
) -> tuple[str, str, bool] | None:
    served = kube.resource_of(obj["apiVersion"], obj["kind"])
    if served is not None:
        return served
    # A custom resource whose CRD the same run creates: discovery cannot know it yet.
    plural = crds.get((group_of(obj), obj["kind"]))
    return (group_of(obj), plural[0], plural[1]) if plural else None


def needs_of(kube: Kube, objects: Sequence[Manifest]) -> list[Need]:
    """get, create and patch (server-side apply) per resource and namespace the objects go to."""
    crds = {
        (c["spec"]["group"], c["spec"]["names"]["kind"]): (
            c["spec"]["names"]["plural"],
            c["spec"]["scope"] == "Namespaced",
        )
        for c in objects
        if c["kind"] == "CustomResourceDefinition"
    }
    needs: set[Need] = set()
    for obj in objects:
        found = _resource(kube, obj, crds)
        if found is None:
            continue
        group, plural, namespaced = found
        namespace = obj["metadata"].get("namespace", "") if namespaced else ""
        needs.update((verb, group, plural, namespace) for verb in ("get", "create", "patch"))
    return sorted(needs)


def _being_deleted(live: Manifest | None) -> bool:
    return bool(((live or {}).get("metadata") or {}).get("deletionTimestamp"))


def _some(objects: Sequence[Manifest], shown: int = 3) -> str:
    """The first few objects by kind and name, and how many more."""
    names = ", ".join(object_key(obj) for obj in objects[:shown])
    return names + (f" (and {len(objects) - shown} more)" if len(objects) > shown else "")


class PermissionsAndOwnership:
    """Find what is already installed, check permissions and ownership; change nothing."""

    name = "permissions and ownership"

    def __init__(self, later: Sequence[Action]) -> None:
        self.later = list(later)

    def _judge(
        self, ctx: Context, kube: Kube, *, dry_run: bool = False
    ) -> tuple[list[str], list[str], list[Manifest]]:
        """(information lines, problems, objects being deleted); fills in ``ctx.found_components``."""
        lacking = missing(kube, [("list", "apps", "deployments", "")])
        if lacking:
            return [], lacking, []
        ctx.found_components = installed_already(kube, ctx, self.later)
        info: list[str] = []  # a compatible component found is said by its own step, which it skips
        problems = [found.describe() for found in ctx.found_components.values() if not found.compatible]
        objects = _objects(ctx, self.later, dry_run=dry_run)
        lacking = missing(kube, needs_of(kube, objects))
        if lacking:
            return info, problems + lacking, []
        # One list per kind and namespace, not one GET per object (hundreds on a second `up`).
        lives = kube.live_objects(objects)
        deleted: list[Manifest] = []
        for obj in objects:
            live = lives[object_key(obj)]
            if _being_deleted(live):  # waited for, then judged again (is_done)
                deleted.append(obj)
                continue
            try:
                if adopts(obj, live, kube.owner):
                    info.append(
                        f"{object_key(obj)} exists and is not the lab's: used as it is, never deleted"
                    )
            except ForeignObject as refused:
                problems.append(refused.message)
        return info, problems, deleted

    def _wait_for_deletion(self, ctx: Context, kube: Kube, deleted: Sequence[Manifest]) -> None:
        """Until the objects being deleted are gone (``up`` right after ``down``, or someone's delete)."""
        names, them = _some(deleted), "them" if len(deleted) > 1 else "it"
        ctx.progress.info(f"   {names}: being deleted, waiting for {them} to go before installing")
        nudge = FinalizerNudge(kube, ctx.progress)

        def still_being_deleted() -> list[str]:
            # Gone, or made again meanwhile (by someone else: the second judging decides about it).
            left = []
            for obj in deleted:
                live = kube.get(obj)
                if live is None or not _being_deleted(live):
                    continue
                left.append(f"{object_key(obj)} is still being deleted")
                if live["kind"] == "CustomResourceDefinition" and state_of(live, kube.owner) is State.CREATED:
                    nudge(live)  # one of the lab's: its finalizer may need a touch (see FinalizerNudge)
            return left

        wait_until(
            still_being_deleted,
            Deadline(min(ctx.config.cluster_timeout, DELETION_SECONDS)),
            f"{names}: still being deleted",
            advice="`lab doctor namespace-terminating` names what holds a namespace",
        )

    def is_done(self, ctx: Context) -> bool:
        """Judging is the whole step: it passes, or stops ``up`` before any change."""
        kube = ctx.kube()
        info, problems, deleted = self._judge(ctx, kube)
        if deleted and not problems:
            self._wait_for_deletion(ctx, kube, deleted)
            info, problems, deleted = self._judge(ctx, kube)
        for line in info:
            ctx.progress.info(f"   {line}")
        if problems:
            raise LabError(
                f"lab up stopped before changing anything: {len(problems)} problem(s) on {kube.host}",
                problems,
            )
        return True

    def execute(self, ctx: Context) -> None:
        """Nothing to change."""

    def plan(self, ctx: Context) -> list[str]:
        """What was found, and what would stop ``up``."""
        kube = ctx.kube_if_reachable()
        if kube is None:
            return ["check permissions and what is already installed (the cluster does not answer)"]
        info, problems, deleted = self._judge(ctx, kube, dry_run=True)
        waits = [f"would wait for {_some(deleted)} to finish being deleted"] if deleted else []
        return info + waits + [f"would stop: {p}" for p in problems]
