"""One provisioning step per declared component: apply its overlays, wait until it is ready.

The step is built from the component's declaration (:mod:`lab.components`): the overlays it
applies, the Deployments (or labelled pods) that must be ready, the pods whose problems are
shown while waiting, the Service whose health path must answer. What a component needs beyond
that is a :class:`Hooks` its declaration names (``Component.hooks``) and
:data:`lab.provision.create.HOOKS` holds; a plain component has none.
"""

from __future__ import annotations

from lab.components import Component
from lab.deadline import Deadline, wait_until
from lab.errors import LabError
from lab.kube import Kube
from lab.kube_apply import apply_all
from lab.kube_objects import Manifest, field_manager, object_key
from lab.provision.actions import Context
from lab.provision.diagnosis import KnownFailureWatch, failure, run_doctor_checks
from lab.provision.kwok import NOT_APPLICABLE_ON_KWOK, health_problem
from lab.provision.manifests import ManifestStep
from lab.readiness import desired_replicas


def _named(objects: list[Manifest]) -> str:
    return ", ".join(object_key(obj) for obj in objects)


class Hooks:
    """A component's special provisioning behaviour; the defaults are a plain component's.

    ``leading_checks`` are doctor checks the step's wait asks on every poll ahead of
    :func:`~lab.provision.diagnosis.stop_on`'s, whose own remedy must lead (see
    :class:`~lab.provision.diagnosis.KnownFailureWatch`).
    """

    leading_checks: tuple[str, ...] = ()

    def extra_objects(self, ctx: Context) -> list[Manifest]:
        """Objects the lab adds to the component's own (none by default)."""
        return []

    def not_ready(self, ctx: Context, kube: Kube, namespace: str) -> list[str]:
        """What else must hold once the workloads in ``namespace`` are up (nothing by default)."""
        return []

    def wait_ready(
        self, step: ComponentStep, ctx: Context, kube: Kube, deadline: Deadline, watch: KnownFailureWatch
    ) -> None:
        """How to wait (by default the step's own poll of :meth:`ComponentStep.not_ready`).

        ``watch`` is the step's one watch (one connection) for every poll of the wait.
        """
        step.wait_until_ready(ctx, kube, deadline, watch)


class ComponentStep(ManifestStep):
    """Install a declared component and wait until it serves; ``name`` is ``Component.step``."""

    def __init__(self, component: Component, hooks: Hooks | None = None) -> None:
        self.component = component
        self.hooks = hooks or Hooks()
        self.name = component.step
        self.overlays = component.overlay_names

    def is_done(self, ctx: Context) -> bool:
        """As every step; a component someone else installed (compatible) is used as it is, once ready.

        The lab's later steps depend on it (KServe on cert-manager's webhook), so a found
        component is judged like the lab's own, in the namespace it lives in; when it is not
        ready, :meth:`execute` waits for it, changing nothing.
        """
        found = ctx.found_components.get(self.component.name)
        if found is None:
            return super().is_done(ctx)
        ctx.progress.info(f"   {found.describe()}")
        kube = ctx.kube()
        if self.not_ready(ctx, kube):
            return False
        return not self.drift_to_repair(ctx, kube, self.extra_objects(ctx))

    def execute(self, ctx: Context) -> None:
        """Apply and wait; for a component someone else installed, apply only the lab's additions.

        The hook's objects (KServe's ``kitops`` ClusterStorageContainer) are the lab's own
        wherever the component came from: without them the lab's pipeline cannot use it.
        """
        found = ctx.found_components.get(self.component.name)
        if found is None:
            super().execute(ctx)
            return
        kube, deadline, extra = ctx.kube(), ctx.deadline(), self.extra_objects(ctx)
        if extra:
            ctx.progress.info(f"   applying the lab's own {_named(extra)} beside {found.name}")
            apply_all(kube, extra, deadline, manager=field_manager(self.name))
        ctx.progress.info(
            f"   waiting for {found.name} in {found.namespace} (not the lab's: none of it is changed)"
        )
        try:
            self.wait_ready(ctx, kube, deadline)
        except LabError as waited:
            # The doctor's finding for it (whose it is, who repairs it) beats a bare timeout.
            finding = failure(run_doctor_checks(ctx, self.component.checks))
            if finding is None:
                raise
            raise finding from waited

    def plan(self, ctx: Context) -> list[str]:
        """The found component (and whether it is ready yet), or what applying the overlays would change."""
        found = ctx.found_components.get(self.component.name)
        if found is None:
            return super().plan(ctx)
        kube, extra = ctx.kube_if_reachable(), self.extra_objects(ctx)
        if kube is None:
            return [found.describe()] + ([f"server-side apply {_named(extra)}"] if extra else [])
        drift = kube.drift(extra, manager=field_manager(self.name)) if extra else []
        waiting = self.not_ready(ctx, kube)
        return (
            [found.describe()] + drift + ([f"wait until ready: {'; '.join(waiting[:3])}"] if waiting else [])
        )

    def namespace(self, ctx: Context) -> str:
        """Where the component lives: where it was found installed, else its ``namespace_setting``."""
        found = ctx.found_components.get(self.component.name)
        return found.namespace if found else str(getattr(ctx.config.names, self.component.namespace_setting))

    def extra_objects(self, ctx: Context) -> list[Manifest]:
        """The hook's objects."""
        return self.hooks.extra_objects(ctx)

    def health(self, ctx: Context, kube: Kube) -> str | None:
        """The Service's health problem: "" when it answers (or none is declared), None on kwok."""
        service = self.component.service
        if service is None:
            return ""
        pods = self.component.pods or self.component.selector
        namespace = self.namespace(ctx)
        return health_problem(kube, namespace, pods, service.name, service.port, service.health_path)

    def not_ready(self, ctx: Context, kube: Kube) -> list[str]:
        """Workloads not ready (with their pods' problems), then the hook's conditions, then health.

        A component someone else installed is not ready while one of its Deployments is scaled
        to 0 (it reports Available with no replica: nothing serves, and no apply of the lab's
        puts a replica back, as it does for the lab's own).
        """
        component, namespace = self.component, self.namespace(ctx)
        found = ctx.found_components.get(component.name)
        if found is not None:
            zero = [
                f"Deployment {namespace}/{d.metadata.name}: scaled to 0 replicas, nothing serves"
                for d in kube.deployments(namespace)
                if d.metadata.name in found.deployments and desired_replicas(d) == 0
            ]
            if zero:
                return zero
        if component.deployments:
            waiting = kube.deployments_not_available(namespace, component.deployments)
            if waiting:
                return waiting + kube.pod_problems(namespace, component.pods or component.selector)[:3]
        else:
            problems = kube.pod_problems(namespace, component.selector)
            if problems:
                return problems
        extra = self.hooks.not_ready(ctx, kube, namespace)
        if extra:
            return extra
        problem = self.health(ctx, kube)
        return [problem] if problem else []

    def wait_until_ready(
        self, ctx: Context, kube: Kube, deadline: Deadline, watch: KnownFailureWatch
    ) -> None:
        """Poll :meth:`not_ready` until it is empty; say when the health probe cannot apply.

        Each poll also asks the doctor (``watch``): a crash loop or a claim that stays Pending
        stops the wait with the doctor's finding.
        """

        def pending() -> list[str]:
            watch.check()
            return self.not_ready(ctx, kube)

        wait_until(
            pending,
            deadline,
            f"{self.name} is not ready",
            interval=self.component.poll_interval,
        )
        service = self.component.service
        if service is not None and self.health(ctx, kube) is None:
            probe = f"{service.name}:{service.port}{service.health_path}"
            ctx.progress.info(f"   health probe {probe} {NOT_APPLICABLE_ON_KWOK}")

    def wait_ready(self, ctx: Context, kube: Kube, deadline: Deadline) -> None:
        """The hook's wait (by default :meth:`wait_until_ready`), with one doctor watch for all of it."""
        watch = KnownFailureWatch(ctx, leading=self.hooks.leading_checks)
        self.hooks.wait_ready(self, ctx, kube, deadline, watch)
