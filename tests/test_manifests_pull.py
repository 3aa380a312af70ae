"""`lab manifests pull` against synthetic upstreams, and the one lookup order for a mirror.

Each upstream repository is made here with git, shaped like the real one: the pinned tag on a
commit holding the trees the lab keeps plus trees it must not copy. git reaches them through
``url.<local>.insteadOf https://github.com/`` (``GIT_CONFIG_COUNT``), exactly as an air-gapped
user's mirror; the pinned commits are injected through the config.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import lab.upstream_manifests as upstream_manifests
from lab.config import LabConfig, load_config
from lab.errors import LabError
from lab.manifests_pull import PROVENANCE, pull_manifests
from lab.progress import Progress
from lab.upstream_manifests import manifest_mirror, upstreams

QUIET = Progress(quiet=True)
COMMIT_FIELDS = {
    "kfp": "kfp_commit",
    "argo": "argo_workflows_commit",
    "model-registry": "model_registry_commit",
    "kserve": "kserve_commit",
    "kubeflow-manifests": "kubeflow_manifests_commit",
}


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def make_upstream(root: Path, repo: str, tag: str, trees: tuple[str, ...], extra: dict[str, str]) -> str:
    """A repository at ``root/<owner>/<name>`` with ``trees``, other files, and ``tag``; its commit."""
    work = root / repo
    work.mkdir(parents=True)
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    git("config", "uploadpack.allowFilter", "true", cwd=work)  # what GitHub serves: partial clones
    for tree in trees:
        (work / tree / "base").mkdir(parents=True)
        (work / tree / "kustomization.yaml").write_text(f"resources:\n- base\n# {repo} {tree}\n")
        (work / tree / "base" / "deployment.yaml").write_text(f"kind: Deployment\n# {repo}\n")
    (work / "docs").mkdir()
    (work / "docs" / "README.md").write_text("not a manifest\n")
    (work / "README.md").write_text(f"{repo}\n")
    for name, target in extra.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).symlink_to(target)
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "release", cwd=work)
    git("tag", "-a", tag, "-m", tag, cwd=work)
    (work / "docs" / "later.md").write_text("a commit after the tag\n")
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "after the release", cwd=work)
    return git("rev-parse", f"{tag}^{{commit}}", cwd=work).strip()


@dataclasses.dataclass
class Upstreams:
    root: Path
    config: LabConfig


def synthetic(tmp: Path, home: Path, extra: dict[str, dict[str, str]] | None = None) -> Upstreams:
    config = load_config(env={"LAB_HOME": str(home)}, toml_path=tmp / "no-lab.toml")
    root = tmp / "github"
    commits = {}
    for upstream in upstreams(config).values():
        links = (extra or {}).get(upstream.key, {})
        commits[COMMIT_FIELDS[upstream.key]] = make_upstream(
            root, upstream.repo, upstream.ref, upstream.mirrored, links
        )
    versions = dataclasses.replace(config.versions, **commits)
    return Upstreams(root, dataclasses.replace(config, versions=versions))


@pytest.fixture
def github(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Upstreams]:
    """Synthetic upstreams in place of https://github.com/ for every git this test runs."""
    made = synthetic(tmp_path, tmp_path / "home")
    reach(monkeypatch, made.root)
    yield made


def reach(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", f"url.file://{root}/.insteadOf")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "https://github.com/")


def leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


def test_pull_writes_the_mirror_layout_at_the_pinned_commits(github: Upstreams) -> None:
    config = github.config
    fetched = pull_manifests(config, None, QUIET)
    target = config.home / "manifests"
    assert fetched == [u.folder for u in upstreams(config).values()]
    assert sorted(p.name for p in target.iterdir() if not p.name.startswith(".")) == sorted(
        [PROVENANCE, "argo-workflows-v3.7.3", "kserve-v0.20.0", "kubeflow-manifests-26.03"]
        + ["kubeflow-pipelines-2.16.0", "model-registry-v0.3.8"]
    )
    kserve = target / "kserve-v0.20.0"
    assert sorted(p.relative_to(kserve).as_posix() for p in kserve.rglob("kustomization.yaml")) == [
        "charts/kserve-crd/kustomization.yaml",
        "charts/kserve-resources/kustomization.yaml",
        "config/kustomization.yaml",
    ]
    assert not list(target.rglob("docs")) and not list(target.rglob("README.md")), "only the kept trees"
    assert (target / "kubeflow-pipelines-2.16.0/manifests/kustomize/base/deployment.yaml").read_text() == (
        "kind: Deployment\n# kubeflow/pipelines\n"
    )
    provenance = (target / PROVENANCE).read_text().splitlines()
    assert f"kserve-v0.20.0: {config.versions.kserve_commit} charts/kserve-crd" in provenance
    assert f"argo-workflows-v3.7.3: {config.versions.argo_workflows_commit} manifests" in provenance
    assert len(provenance) == 7
    assert not [p for p in target.iterdir() if p.name.startswith(".pull-")]
    assert manifest_mirror(config) == target  # what `lab up` and `lab e2e` now install from


def test_a_second_pull_of_a_complete_mirror_is_a_no_op_and_a_changed_tree_is_fetched_again(
    github: Upstreams,
) -> None:
    config = github.config
    pull_manifests(config, None, QUIET)
    target = config.home / "manifests"
    deployment = target / "model-registry-v0.3.8/manifests/kustomize/base/deployment.yaml"
    before = {p: p.stat().st_mtime_ns for p in target.rglob("*")}
    assert pull_manifests(config, None, QUIET) == []
    assert {p: p.stat().st_mtime_ns for p in target.rglob("*")} == before
    deployment.write_text("edited by hand\n")
    assert pull_manifests(config, None, QUIET) == ["model-registry-v0.3.8"]
    assert deployment.read_text() == "kind: Deployment\n# kubeflow/model-registry\n"


def test_a_tag_at_another_commit_is_refused_and_nothing_is_written(github: Upstreams, tmp_path: Path) -> None:
    pinned = "0123456789abcdef0123456789abcdef01234567"
    config = dataclasses.replace(
        github.config, versions=dataclasses.replace(github.config.versions, kserve_commit=pinned)
    )
    target = tmp_path / "mirror"
    with pytest.raises(LabError) as caught:
        pull_manifests(config, target, QUIET)
    actual = github.config.versions.kserve_commit
    assert str(caught.value) == (
        f"kserve/kserve tag v0.20.0 is commit {actual}, but the lab pins {pinned} (lab/config.py "
        "Versions): the tag moved upstream or the git mirror serves another history; nothing was written"
    )
    assert not target.exists()
    # Into an existing, complete mirror: it stays exactly as it was.
    pull_manifests(github.config, target, QUIET)
    (target / "kserve-v0.20.0/config/kustomization.yaml").write_text("changed\n")
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    with pytest.raises(LabError, match="is commit"):
        pull_manifests(config, target, QUIET)
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before


class InterruptAt(Progress):
    """Ctrl-C while the pull is at one upstream (what a user's interrupt raises)."""

    def __init__(self, folder: str) -> None:
        super().__init__(quiet=True)
        self.folder = folder

    def step(self, name: str, activity: str = "", expect: str = ""):  # type: ignore[override]
        if self.folder in name:
            raise KeyboardInterrupt
        return super().step(name, activity, expect)


def test_an_interrupted_or_failed_pull_leaves_nothing(github: Upstreams, tmp_path: Path) -> None:
    target = tmp_path / "mirror"
    with pytest.raises(KeyboardInterrupt):
        pull_manifests(github.config, target, InterruptAt("kserve-v0.20.0"))
    assert not target.exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(KeyboardInterrupt):
        pull_manifests(github.config, existing, InterruptAt("kubeflow-manifests-26.03"))
    assert leftovers(existing) == []
    # A repository git cannot reach: one line naming it, git's own cause, and the mirror setting.
    (github.root / "kubeflow" / "manifests").rename(github.root / "moved")
    with pytest.raises(LabError) as caught:
        pull_manifests(github.config, target, QUIET)
    first = str(caught.value).splitlines()[0]
    assert first.startswith("git clone https://github.com/kubeflow/manifests at 26.03 failed: ")
    assert first.endswith("git config --global url.<mirror>/.insteadOf https://github.com/)")
    assert not target.exists()


def test_a_link_out_of_a_kept_tree_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    escape = {"kserve": {"config/escape": "../../../../etc/passwd"}}
    made = synthetic(tmp_path, tmp_path / "home", escape)
    reach(monkeypatch, made.root)
    with pytest.raises(LabError) as caught:
        pull_manifests(made.config, None, QUIET)
    assert str(caught.value) == (
        "kserve/kserve@v0.20.0:config: escape links to ../../../../etc/passwd, outside the tree; "
        "refusing to copy it"
    )
    assert not (made.config.home / "manifests").exists()


def lab(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, env=env)


def test_the_lookup_order_is_flag_then_variable_then_the_home_then_beside_the_project(
    github: Upstreams, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = github.config
    home = config.home
    beside = tmp_path / "shared" / "upstream"
    pull_manifests(config, beside, QUIET)
    monkeypatch.setattr(upstream_manifests, "SHARED_MIRROR", beside)
    assert manifest_mirror(config) == beside
    pull_manifests(config, None, QUIET)
    assert manifest_mirror(config) == home / "manifests"
    given = dataclasses.replace(config, manifests_dir=str(tmp_path / "given"))
    assert manifest_mirror(given) == tmp_path / "given"  # explicit wins even when incomplete

    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")} | {"LAB_HOME": str(home)}
    assert lab("manifests", "where", env=env).stdout.splitlines()[0] == f"manifests: {home / 'manifests'}"
    env["LAB_MANIFESTS_DIR"] = str(beside)
    assert lab("manifests", "where", env=env).stdout.splitlines()[0] == f"manifests: {beside}"
    flag = lab("manifests", "where", "--manifests-dir", str(tmp_path / "given"), env=env)
    assert flag.stdout.splitlines()[0] == f"manifests: {tmp_path / 'given'}"


def test_the_cli_pulls_into_a_folder_and_a_second_pull_says_nothing_changed(
    github: Upstreams, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")} | {
        "LAB_HOME": str(tmp_path / "h")
    }
    # The CLI reads the pinned commits from lab.toml like any setting: inject the synthetic ones there.
    pins = "\n".join(f'{f} = "{getattr(github.config.versions, f)}"' for f in COMMIT_FIELDS.values())
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "lab.toml").write_text(f"[versions]\n{pins}\n")
    target = tmp_path / "cli-mirror"
    first = lab("manifests", "pull", str(target), env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"manifests: {target} (fetched kubeflow-pipelines-2.16.0, ")
    second = lab("manifests", "pull", str(target), env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout == f"manifests: {target} (already complete and verified, nothing fetched)\n"
