"""The upstream repositories whose manifests the lab installs, and where their mirror is found.

Each upstream is pinned by tag and commit (:class:`lab.config.Versions`). A mirror holds them
in the layout ``<repo>-<tag>/<path>`` (``kubeflow-pipelines-2.16.0/manifests/kustomize``...);
:func:`manifest_mirror` is the one place that decides which mirror an install, the doctor and
the tests use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.config import PROJECT_ROOT, LabConfig


@dataclass(frozen=True)
class Upstream:
    """One upstream repository at its pinned ref (and commit), and the trees of it the lab uses.

    ``roots`` are the trees an install reads; ``kept`` are further trees a mirror holds
    (``lab manifests pull`` fetches both, the layout of the mirror the tests were pinned with).
    """

    key: str
    repo: str
    ref: str
    roots: tuple[str, ...]
    commit: str = ""
    kept: tuple[str, ...] = ()

    @property
    def mirrored(self) -> tuple[str, ...]:
        """Every tree of this repository a mirror holds."""
        return (*self.kept, *self.roots)

    @property
    def folder(self) -> str:
        """Folder in a mirror: ``kubeflow-pipelines-2.16.0``, ``kserve-v0.20.0``..."""
        owner, name = self.repo.split("/")
        # kubeflow's repositories carry the org in the folder name (kubeflow-pipelines,
        # kubeflow-manifests) except model-registry, whose name is already unambiguous.
        if owner == "kubeflow" and name != "model-registry":
            return f"kubeflow-{name}-{self.ref}"
        return f"{name}-{self.ref}"

    def url(self, path: str) -> str:
        """A kustomize remote reference in the form the upstream kustomizations use."""
        return f"https://github.com/{self.repo}/{path}?ref={self.ref}"


def upstreams(config: LabConfig) -> dict[str, Upstream]:
    """The pinned upstream repositories, keyed by the lab's name for them."""
    v = config.versions
    kserve_charts = ("charts/kserve-crd", "charts/kserve-resources")
    entries = [
        Upstream("kfp", "kubeflow/pipelines", v.kfp, ("manifests/kustomize",), v.kfp_commit),
        Upstream(
            "argo", "argoproj/argo-workflows", v.argo_workflows, ("manifests",), v.argo_workflows_commit
        ),
        Upstream(
            "model-registry",
            "kubeflow/model-registry",
            v.model_registry,
            ("manifests/kustomize",),
            v.model_registry_commit,
        ),
        Upstream("kserve", "kserve/kserve", v.kserve, ("config",), v.kserve_commit, kserve_charts),
        Upstream(
            "kubeflow-manifests",
            "kubeflow/manifests",
            v.kubeflow_manifests,
            ("common/cert-manager",),
            v.kubeflow_manifests_commit,
        ),
    ]
    return {u.key: u for u in entries}


# Beside the project, where the project's own development keeps the pinned mirror; a user's
# clone has none, so this is the last place looked.
SHARED_MIRROR = PROJECT_ROOT.parent / "shared" / "upstream"


def pulled_manifests_dir(config: LabConfig) -> Path:
    """Where ``lab manifests pull`` puts the mirror by default."""
    return config.home / "manifests"


def holds_every_tree(config: LabConfig, mirror: Path) -> bool:
    """Whether ``mirror`` has every tree an install reads."""
    return all((mirror / u.folder / root).is_dir() for u in upstreams(config).values() for root in u.roots)


def manifest_mirror(config: LabConfig) -> Path | None:
    """The manifest mirror to install from, or None for the pinned GitHub refs.

    Looked up in this order: ``--manifests-dir`` / ``LAB_MANIFESTS_DIR`` (both set
    ``config.manifests_dir``; the flag wins), ``$LAB_HOME/manifests`` (what ``lab manifests
    pull`` fetched), then ``../shared/upstream`` beside the project. A folder given
    explicitly is used even when incomplete (staging names what it lacks); the others only
    when they hold every tree.
    """
    if config.manifests_dir:
        return Path(config.manifests_dir).expanduser().resolve()
    for candidate in (pulled_manifests_dir(config), SHARED_MIRROR):
        if holds_every_tree(config, candidate):
            return candidate.resolve()
    return None


def manifest_places(config: LabConfig) -> str:
    """Where :func:`manifest_mirror` looks, in order (for messages)."""
    places = ["--manifests-dir", "LAB_MANIFESTS_DIR", str(pulled_manifests_dir(config)), str(SHARED_MIRROR)]
    return ", ".join(places)
