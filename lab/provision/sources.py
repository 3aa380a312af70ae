"""Where the upstream manifests come from: pinned remote refs, or a local mirror.

Without a mirror every kustomization the lab builds points at GitHub with ``?ref=<pinned tag>``.
With one (``--manifests-dir``, ``LAB_MANIFESTS_DIR``, ``$LAB_HOME/manifests`` from ``lab manifests
pull``, or ``../shared/upstream``: :func:`manifest_mirror`) the lab reads a mirror laid out like
``<repo>-<tag>/<path>`` (see ``shared/upstream/README.md``), copies the trees it needs into
the workspace and rewrites the upstream kustomizations' own remote references (KFP pulls
Argo from GitHub) to the mirror's copies, so an install needs no network for manifests.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lab.config import LabConfig
from lab.errors import LabError
from lab.invocation import lab_command
from lab.provision.workspace import Workspace
from lab.upstream_manifests import Upstream, manifest_mirror, upstreams


@dataclass(frozen=True)
class ManifestSources:
    """Resolves an upstream path to what a lab overlay lists under ``resources``."""

    config: LabConfig
    workspace: Workspace

    @property
    def mirror(self) -> Path | None:
        """The local mirror, or None for pinned remote refs."""
        return manifest_mirror(self.config)

    def resource(self, key: str, path: str, overlay_dir: Path) -> str:
        """The ``resources`` entry for ``path`` of upstream ``key`` as seen from ``overlay_dir``."""
        upstream = upstreams(self.config)[key]
        if self.mirror is None:
            return upstream.url(path)
        target = self.workspace.upstream / upstream.folder / path
        return os.path.relpath(target, overlay_dir)

    def describe(self) -> str:
        """One line for plans and errors."""
        if self.mirror is None:
            return "pinned GitHub refs (network needed at apply time)"
        return f"local mirror {self.mirror} (staged in {self.workspace.upstream})"


# A list item in a kustomization naming a GitHub path at a ref, e.g.
# `- https://github.com/argoproj/argo-workflows/manifests/base/crds/minimal?ref=v3.7.3`.
_REMOTE_ITEM = re.compile(
    r"^(?P<lead>\s*-\s*)(?:https://)?github\.com/(?P<repo>[\w.-]+/[\w.-]+?)(?:\.git)?/+(?P<path>[^?\s]*)"
    r"\?ref=(?P<ref>[\w.-]+)\s*$",
    re.MULTILINE,
)
_KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def _fingerprint(mirror: Path, wanted: list[tuple[Upstream, str]]) -> str:
    digest = hashlib.sha256()
    for upstream, root in wanted:
        base = mirror / upstream.folder / root
        for path in sorted(base.rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(f"{path.relative_to(mirror)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def rewrite_remote_references(tree: Path, config: LabConfig) -> list[str]:
    """Point GitHub references of kustomizations under ``tree`` at the staged copies.

    ``tree`` holds one folder per upstream (the staged mirror). Returns the references
    that stay remote because the mirror has no copy of them (kustomize reports them if a
    build reaches one).
    """
    by_repo_ref = {(u.repo.lower(), u.ref): u for u in upstreams(config).values()}
    unmapped: list[str] = []
    for name in _KUSTOMIZATION_NAMES:
        for path in tree.rglob(name):
            text = path.read_text()

            def local(match: re.Match[str], kustomization: Path = path) -> str:
                upstream = by_repo_ref.get((match["repo"].lower(), match["ref"]))
                if upstream is None:
                    unmapped.append(f"{kustomization}: {match.group(0).strip()}")
                    return match.group(0)
                target = tree / upstream.folder / match["path"].strip("/")
                return match["lead"] + os.path.relpath(target, kustomization.parent)

            rewritten = _REMOTE_ITEM.sub(local, text)
            if rewritten != text:
                path.write_text(rewritten)
    return unmapped


def mirror_is_staged(config: LabConfig, workspace: Workspace) -> bool:
    """Whether the staged copy matches the mirror (always True with remote refs)."""
    mirror = ManifestSources(config, workspace).mirror
    if mirror is None:
        return True
    stamp = workspace.upstream / ".staged.json"
    if not stamp.is_file():
        return False
    wanted = [(u, root) for u in upstreams(config).values() for root in u.roots]
    recorded = json.loads(stamp.read_text())
    return bool(
        recorded.get("mirror") == str(mirror) and recorded.get("fingerprint") == _fingerprint(mirror, wanted)
    )


def stage_mirror(config: LabConfig, workspace: Workspace) -> bool:
    """Copy the needed mirror trees into the workspace and rewrite remote references.

    A no-op (returns False) when the staged copy matches the mirror already. The new copy is
    built beside the old one and swapped in, so an interrupted run never leaves a half tree.
    """
    sources = ManifestSources(config, workspace)
    mirror = sources.mirror
    if mirror is None:
        return False
    wanted = [(u, root) for u in upstreams(config).values() for root in u.roots]
    missing = [str(mirror / u.folder / root) for u, root in wanted if not (mirror / u.folder / root).is_dir()]
    if missing:
        raise LabError(
            f"manifest mirror {mirror} lacks trees the lab installs; fix LAB_MANIFESTS_DIR or "
            f"--manifests-dir, or fill it: {lab_command(f'manifests pull {mirror}')} (layout "
            "<repo>-<tag>/<path>, e.g. kubeflow-pipelines-2.16.0/manifests/kustomize)",
            [f"missing: {path}" for path in missing],
        )
    if mirror_is_staged(config, workspace):
        return False
    fingerprint = _fingerprint(mirror, wanted)
    workspace.upstream.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=".upstream-", dir=workspace.upstream.parent))
    try:
        for upstream, root in wanted:
            shutil.copytree(mirror / upstream.folder / root, fresh / upstream.folder / root)
        rewrite_remote_references(fresh, config)
        (fresh / ".staged.json").write_text(json.dumps({"mirror": str(mirror), "fingerprint": fingerprint}))
        old = None
        if workspace.upstream.exists():
            old = workspace.upstream.with_name(f".upstream-old-{os.getpid()}")
            workspace.upstream.rename(old)
        fresh.rename(workspace.upstream)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if fresh.exists():
            shutil.rmtree(fresh, ignore_errors=True)
    return True
