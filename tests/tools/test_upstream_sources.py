"""Each source's real code path against synthetic upstreams of the real shape, offline.

`lab tools install` (through :func:`install_tools` and the CLI) obtains the Model Registry and
kit from git repositories laid out as upstream's, and kit's release through LAB_RELEASE_MIRROR
from a local release host; the pins come from the config, as a user's lab.toml would set them.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.config import ConfigError, load_config
from lab.progress import Progress
from lab.tools import ToolStatus, expected_work, install_tools, read_version, specs_for_mode
from lab.tools.sources import decisive_lines, rebase_url
from tests.tools.synthetic_upstreams import (
    KIT_RELEASE,
    KITOPS,
    MODEL_REGISTRY,
    MODEL_REGISTRY_RELEASE,
    go_world,
    kit_release_files,
    kitops_repository,
    model_registry_repository,
    pseudo_version,
    release_arch,
    release_host,
)

CATALOG = f"{MODEL_REGISTRY}/catalog/pkg/openapi"


def _remove(path: Path) -> None:
    def writable_then_retry(function: Callable[[str], object], failed: str, _: object) -> None:
        os.chmod(os.path.dirname(failed), stat.S_IRWXU)
        function(failed)

    shutil.rmtree(path, onerror=writable_then_retry)


@dataclass
class Upstreams:
    """The synthetic upstreams and an empty lab home, in one scratch directory."""

    scratch: Path
    home: Path
    model_registry_release: str
    kitops_release: str
    catalog_pseudo_version: str

    def settings(self, **versions: str) -> None:
        """Pin versions in the home's lab.toml, as a user would."""
        lines = ["[versions]", *(f'{key} = "{value}"' for key, value in versions.items())]
        (self.home / "lab.toml").write_text("\n".join(lines) + "\n")

    def install(self, *tools: str) -> tuple[list[ToolStatus], list[str]]:
        """`lab tools install --mode local TOOLS` through its real code path."""
        config = load_config(env={**os.environ, "LAB_HOME": str(self.home)})
        done, missing = install_tools(config, "local", Progress(quiet=True), only=list(tools))
        return done, [str(m) for m in missing]

    def lab(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The `lab` command line with this home."""
        env = {**os.environ, "LAB_HOME": str(self.home)}
        return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, env=env)

    def listed(self, name: str) -> dict[str, object]:
        """`lab tools list --json`'s row for one tool."""
        proc = self.lab("tools", "list", "--mode", "local", "--json")
        assert proc.returncode in (0, 1), proc.stderr
        return next(row for row in json.loads(proc.stdout) if row["name"] == name)


@pytest.fixture
def upstreams(monkeypatch: pytest.MonkeyPatch) -> Iterator[Upstreams]:
    """Model Registry's and kitops' repositories, reachable by the Go command as on GitHub."""
    go, git = shutil.which("go"), shutil.which("git")
    if not go or not git:
        pytest.skip("needs go and git on PATH (the sources build with them): install Go and git")
    scratch = Path(tempfile.mkdtemp(prefix="lab-upstream-"))
    try:
        repos = {MODEL_REGISTRY: scratch / "model-registry", KITOPS: scratch / "kitops"}
        for repo in repos.values():
            repo.mkdir()
        mr_commit = model_registry_repository(repos[MODEL_REGISTRY])
        kit_commit = kitops_repository(repos[KITOPS])
        for name, value in go_world(scratch, repos).items():
            monkeypatch.setenv(name, value)
        # Only go and git: a kit or model-registry elsewhere on PATH would be used, not obtained.
        monkeypatch.setenv(
            "PATH", os.pathsep.join(dict.fromkeys([os.path.dirname(go), os.path.dirname(git)]))
        )
        home = scratch / "home"
        (home / "bin").mkdir(parents=True)
        yield Upstreams(
            scratch, home, mr_commit, kit_commit, pseudo_version(repos[MODEL_REGISTRY], mr_commit)
        )
    finally:
        _remove(scratch)


def test_model_registry_builds_with_each_nested_module_at_what_upstream_publishes(
    upstreams: Upstreams,
) -> None:
    # pkg/openapi at its tag (the default pin), catalog/pkg/openapi at the release commit's pseudo-version.
    assert upstreams.catalog_pseudo_version.endswith(upstreams.model_registry_release[:12])
    upstreams.settings(model_registry_catalog_openapi=upstreams.catalog_pseudo_version)
    done, missing = upstreams.install("model-registry")
    assert missing == []
    (status,) = done
    assert (status.found, status.source) == (MODEL_REGISTRY_RELEASE, "GoWrapperBuild")
    binary = upstreams.home / "bin" / "model-registry"
    ran = subprocess.run([str(binary)], capture_output=True, text=True, check=True)
    assert ran.stdout == "synthetic model-registry: pkg/openapi catalog/pkg/openapi\n"
    row = upstreams.listed("model-registry")
    assert (row["ok"], row["found"], row["source"]) == (True, MODEL_REGISTRY_RELEASE, "GoWrapperBuild")
    # The user's GOFLAGS (-modcacherw) reached the Go command: the module cache is writable.
    extracted = (
        upstreams.scratch
        / "gomodcache"
        / "github.com"
        / "kubeflow"
        / f"model-registry@{MODEL_REGISTRY_RELEASE}"
    )
    assert extracted.is_dir() and os.access(extracted, os.W_OK)


def test_an_untagged_nested_module_pinned_at_a_tag_fails_on_one_line_naming_the_cause(
    upstreams: Upstreams,
) -> None:
    upstreams.settings(model_registry_catalog_openapi=MODEL_REGISTRY_RELEASE)
    proc = upstreams.lab("tools", "install", "--mode", "local", "model-registry")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("ERROR: ")]
    assert line.startswith(f"ERROR: model-registry {MODEL_REGISTRY_RELEASE} could not be obtained; tried: ")
    cause = f"unknown revision catalog/pkg/openapi/{MODEL_REGISTRY_RELEASE}"
    assert cause in line
    log = upstreams.home / "logs" / "tool-model-registry.log"
    assert f"(whole output: {log})" in line and cause in log.read_text()
    assert not (upstreams.home / "bin" / "model-registry").exists()


def test_kit_from_its_go_source_reports_the_release_version(
    upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The release host has no kit release: the Go source is what remains.
    with release_host({}) as (mirror, requested):
        monkeypatch.setenv("LAB_RELEASE_MIRROR", mirror)
        done, missing = upstreams.install("kit")
    assert missing == []
    assert requested == [
        f"/github.com/kitops-ml/kitops/releases/download/{KIT_RELEASE}/kitops_{KIT_RELEASE}_checksums.txt"
    ]
    (status,) = done
    # Stamped as upstream's release build stamps it ({{.Version}}: the tag without its v).
    assert (status.found, status.source) == (KIT_RELEASE.removeprefix("v"), "GoInstall")
    kit = upstreams.home / "bin" / "kit"
    said = subprocess.run([str(kit), "version"], capture_output=True, text=True, check=True).stdout
    assert said.startswith(f"Version: {KIT_RELEASE.removeprefix('v')}\n")
    row = upstreams.listed("kit")
    assert (row["ok"], row["found"], row["source"]) == (True, "1.7.0", "GoInstall")


def test_a_plain_go_install_of_kit_is_read_from_its_build_info_not_its_go_version(
    upstreams: Upstreams,
) -> None:
    gobin = upstreams.scratch / "gobin"
    subprocess.run(
        ["go", "install", f"{KITOPS}@{KIT_RELEASE}"], env={**os.environ, "GOBIN": str(gobin)}, check=True
    )
    plain = gobin / "kitops"
    said = subprocess.run([str(plain), "version"], capture_output=True, text=True, check=True).stdout
    assert said.startswith("Version: unknown\n") and "Go version: go1." in said
    spec = next(s for s in specs_for_mode(load_config(env={}), "local") if s.name == "kit")
    assert read_version(spec, plain) == KIT_RELEASE
    added = upstreams.lab("tools", "add", "kit", str(plain))
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == f"kit {KIT_RELEASE} added: {upstreams.home}/bin/kit (source: added)"


def _kit_built_as_released(upstreams: Upstreams) -> Path:
    # What .goreleaser.linux.yaml builds: the checkout's main package, stripped and stamped.
    out = upstreams.scratch / "release" / "kit"
    flags = f"-s -w -X {KITOPS}/pkg/lib/constants.Version={KIT_RELEASE.removeprefix('v')}"
    subprocess.run(
        ["go", "build", "-ldflags", flags, "-o", str(out), "."], cwd=upstreams.scratch / "kitops", check=True
    )
    return out


def test_kit_release_comes_through_the_release_mirror(
    upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOPROXY", "off")  # were the mirror ignored, nothing else could provide kit
    monkeypatch.setenv("GONOPROXY", "")
    files = kit_release_files(_kit_built_as_released(upstreams))
    with release_host(files) as (mirror, requested):
        monkeypatch.setenv("LAB_RELEASE_MIRROR", mirror + "/")
        done, missing = upstreams.install("kit")
    assert missing == []
    assert sorted(requested) == sorted(files)
    (status,) = done
    assert (status.found, status.source) == ("1.7.0", "ReleaseDownload")
    row = upstreams.listed("kit")
    assert (row["ok"], row["found"], row["source"]) == (True, "1.7.0", "ReleaseDownload")


def test_a_wrong_checksum_fails_on_one_line_naming_the_cause(
    upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOPROXY", "off")
    monkeypatch.setenv("GONOPROXY", "")
    archive = f"kitops-linux-{release_arch()}.tar.gz"
    files = kit_release_files(_kit_built_as_released(upstreams), checksum_of={archive: "0" * 64})
    with release_host(files) as (mirror, _):
        monkeypatch.setenv("LAB_RELEASE_MIRROR", mirror)
        proc = upstreams.lab("tools", "install", "--mode", "local", "kit")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("ERROR: ")]
    release = f"{mirror}/github.com/kitops-ml/kitops/releases/download/{KIT_RELEASE}"
    sums = f"{release}/kitops_{KIT_RELEASE}_checksums.txt"
    assert f"sha256 mismatch for {archive}: {sums} says {'0' * 64}, the download is " in line
    assert not (upstreams.home / "bin" / "kit").exists()


def test_every_release_download_is_rebased_on_the_mirror() -> None:
    config = load_config(env={"LAB_RELEASE_MIRROR": "https://mirror.example/releases/"})
    downloads = [
        (spec.name, source)
        for spec in specs_for_mode(config, "all")
        for source in spec.sources
        if hasattr(source, "urls")
    ]
    assert sorted(name for name, _ in downloads) == ["kind", "kit", "kubectl"]
    for _, source in downloads:
        for url in source.urls("v1.2.3"):
            assert url.startswith("https://mirror.example/releases/") and "//" not in url.removeprefix(
                "https://"
            )
    assert (
        rebase_url("https://dl.k8s.io/release/v1/kubectl", "http://m:8/r")
        == "http://m:8/r/dl.k8s.io/release/v1/kubectl"
    )
    assert rebase_url("https://dl.k8s.io/x", "") == "https://dl.k8s.io/x"
    with pytest.raises(ConfigError, match="LAB_RELEASE_MIRROR"):
        load_config(env={"LAB_RELEASE_MIRROR": "mirror.example"})


def test_a_failed_command_keeps_its_decisive_lines_whole() -> None:
    cause = (
        f"go: {CATALOG}@v0.3.8: reading {CATALOG}/go.mod at revision catalog/pkg/openapi/v0.3.8: "
        "unknown revision catalog/pkg/openapi/v0.3.8"
    )
    output = "go: downloading example.com/a v1.0.0\n" * 50 + cause + "\n"
    assert decisive_lines(output) == cause
    assert decisive_lines("step one\nstep two\n") == "step one | step two"


def test_sources_that_build_warn_up_front_that_it_takes_minutes() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="lab-upstream-"))
    try:
        config = load_config(env={"LAB_HOME": str(scratch)})
        work = {spec.name: expected_work(spec, config) for spec in specs_for_mode(config, "all")}
    finally:
        shutil.rmtree(scratch)
    minutes = "not installed yet; a build from source can take several minutes"
    for name in (
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
        "model-registry",
    ):
        assert work[name] == ("building from source", minutes), name
    assert work["kit"] == ("downloading, else building from source", minutes)
