"""The shape shared by every step that installs upstream manifests through a lab overlay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.deadline import Deadline
from lab.kube import Kube
from lab.kube_apply import apply_all
from lab.kube_objects import Manifest, field_manager, object_key
from lab.provision.actions import Context
from lab.provision.files import FileSpec, plan_files
from lab.provision.render import build_overlay, overlay_specs, prepare_overlays, summarize
from lab.provision.sources import ManifestSources, mirror_is_staged
from lab.provision.workspace import Workspace

# Enough lines for a plan to be read in a terminal; the rest is counted.
_PLAN_LINES = 25


def drifted_fields(wanted: Any, live: Any, path: str) -> list[str]:
    """Each field the lab sets whose live value differs: ``<path> was <live>, set back to <wanted>``.

    Fields only the live object has (defaults, other managers' fields) are not the lab's and
    never drift; lists of the same length are compared item by item, so a container's
    defaulted fields do not hide the one the lab sets.
    """
    if isinstance(wanted, dict) and isinstance(live, dict):
        return [
            line
            for key, value in wanted.items()
            for line in drifted_fields(value, live.get(key), f"{path}.{key}")
        ]
    if isinstance(wanted, list) and isinstance(live, list) and len(wanted) == len(live):
        pairs = enumerate(zip(wanted, live, strict=True))
        return [line for i, (item, now) in pairs for line in drifted_fields(item, now, f"{path}[{i}]")]
    if wanted != live:
        return [f"{path} was {_shown(live)}, set back to {_shown(wanted)}"]
    return []


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else f"{text[:80]}… ({len(text)} characters)"


def with_drifted_fields(
    drift: list[str], objects: list[Manifest], lives: dict[str, Manifest | None]
) -> list[str]:
    """Each ``update <object>`` line with what drifted and what the re-apply sets it back to."""
    wanted = {f"update {object_key(obj)}": obj for obj in objects}
    lines = []
    for line in drift:
        obj = wanted.get(line)
        live = lives.get(object_key(obj)) if obj is not None else None
        fields = []
        if obj is not None and live is not None:
            body = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind", "metadata")}
            fields = drifted_fields(body, live, "")
        lines.append(f"{line}: {'; '.join(f.lstrip('.') for f in fields)}" if fields else line)
    return lines


class ManifestStep:
    """Apply the objects of some lab overlays, then wait until the component is ready.

    Subclasses name their overlays and say what "ready" means; ``is_done`` is true only when
    the overlays are current, the cluster already holds exactly these objects and the
    component answers.
    """

    name = ""
    overlays: tuple[str, ...] = ()

    def extra_objects(self, ctx: Context) -> list[Manifest]:
        """Objects the lab owns that belong to this step (none by default)."""
        return []

    def not_ready(self, ctx: Context, kube: Kube) -> list[str]:
        """What is not ready yet, as evidence lines; empty when the component serves."""
        return []

    def wait_ready(self, ctx: Context, kube: Kube, deadline: Deadline) -> None:
        """Block until ready or raise LabError with evidence."""

    def _overlay_files(self, ctx: Context) -> list[FileSpec]:
        mine = {str(ctx.workspace.overlay(overlay)) for overlay in self.overlays}
        return [s for s in overlay_specs(ctx.config, ctx.workspace) if str(Path(s.dest).parent) in mine]

    def _specs_current(self, ctx: Context) -> bool:
        # Written by this run a moment ago (every step's objects are built before the first
        # step's check in cluster mode): current without walking the mirror again.
        if ctx.workspace.root in ctx.prepared:
            return True
        return mirror_is_staged(ctx.config, ctx.workspace) and not plan_files(self._overlay_files(ctx))

    def objects(self, ctx: Context, workspace: Workspace | None = None) -> list[Manifest]:
        """Write the overlays (to ``workspace``, default the real one) and build this step's objects."""
        workspace = workspace or ctx.workspace
        key = f"{self.name}@{workspace.root}"
        if key not in ctx.rendered:
            if workspace.root not in ctx.prepared:
                prepare_overlays(ctx.config, workspace)
                ctx.prepared.add(workspace.root)
            built = [
                obj for overlay in self.overlays for obj in build_overlay(ctx.config, workspace, overlay)
            ]
            ctx.rendered[key] = built + self.extra_objects(ctx)
        return ctx.rendered[key]

    def is_done(self, ctx: Context) -> bool:
        """Overlays current, no drift between rendered and live objects, component ready."""
        if not self._specs_current(ctx):
            return False
        kube = ctx.kube()
        # Readiness first: on a fresh cluster it fails fast, before any per-object dry run.
        if self.not_ready(ctx, kube):
            return False
        return not self.drift_to_repair(ctx, kube, self.objects(ctx))

    def drift_to_repair(self, ctx: Context, kube: Kube, objects: list[Manifest]) -> list[str]:
        """What applying ``objects`` would change, said and recorded as repairs.

        A ready component whose objects drifted (edited by hand, another tool) is repaired by
        the re-apply; say what, so `up` and `e2e` never repair silently.
        """
        if not objects:
            return []
        drift = kube.drift(objects, manager=field_manager(self.name))
        if drift:
            drifted = [obj for obj in objects if f"update {object_key(obj)}" in drift]
            drift = with_drifted_fields(drift, drifted, kube.live_objects(drifted))
            ctx.repairs += drift
        for line in drift[:_PLAN_LINES]:
            ctx.progress.info(f"   repairing drift: {line}")
        if len(drift) > _PLAN_LINES:
            ctx.progress.info(f"   ... and {len(drift) - _PLAN_LINES} more")
        return drift

    def execute(self, ctx: Context) -> None:
        """Apply every object (server-side, idempotent) and wait until ready."""
        kube = ctx.kube()
        deadline = ctx.deadline()
        apply_all(kube, self.objects(ctx), deadline, manager=field_manager(self.name))
        self.wait_ready(ctx, kube, deadline)

    def plan(self, ctx: Context) -> list[str]:
        """Overlay file changes, then the objects that would be created or updated."""
        lines = plan_files(self._overlay_files(ctx))
        sources = ManifestSources(ctx.config, ctx.workspace)
        if sources.mirror is not None and not mirror_is_staged(ctx.config, ctx.workspace):
            lines.append(f"stage the needed trees of {sources.mirror} into {ctx.workspace.upstream}")
        if sources.mirror is None:
            # Remote refs are fetched by kustomize at apply time; a dry run does not download.
            lines.append(f"build {', '.join(self.overlays)} from {sources.describe()}")
            objects = self.extra_objects(ctx)
        else:
            objects = self.objects(ctx, ctx.scratch_workspace())
        kube = ctx.kube_if_reachable()
        if kube is None:
            if objects:
                lines.append(f"server-side apply {summarize(objects)}")
            lines.append(f"wait until {self.name} is ready")
            return lines
        drift = kube.drift(objects, manager=field_manager(self.name)) if objects else []
        lines += drift[:_PLAN_LINES]
        if len(drift) > _PLAN_LINES:
            lines.append(f"... and {len(drift) - _PLAN_LINES} more")
        waiting = self.not_ready(ctx, kube)
        if waiting:
            lines.append(f"wait until ready: {'; '.join(waiting[:3])}")
        return lines
