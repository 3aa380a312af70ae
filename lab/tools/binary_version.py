"""What version a tool's binary is: its version output, its Go build info, else the lab's stamp.

Its own module so that finding a tool (:mod:`lab.tools`) and registering one
(:mod:`lab.tools.added`) read versions the same way.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from pathlib import Path

from lab.tools.spec import ToolSpec

_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def version_in_output(spec: ToolSpec, text: str) -> str:
    """The tool's version in its version output (``""`` when there is none).

    The first version number, or with ``spec.version_label`` the one on that line only: kit
    built without its release stamp says ``Version: unknown`` and later ``Go version: go1.x``.
    """
    try:
        if spec.name == "kubectl" and text.strip().startswith("{"):
            text = json.loads(text)["clientVersion"]["gitVersion"]
    except (ValueError, KeyError):
        pass
    if spec.version_label:
        labelled = [ln for ln in text.splitlines() if ln.strip().startswith(spec.version_label)]
        text = labelled[0].strip().removeprefix(spec.version_label) if labelled else ""
    match = _VERSION_RE.search(text)
    return match.group(0) if match else ""


def build_info_version(module: str, path: Path) -> str:
    """``module``'s version in a Go binary's build info (``go version -m``), ``""`` if none.

    The main module (``mod``) of a ``go install``, or a dependency (``dep``) of a wrapper module;
    ``(devel)`` (a build from a checkout without a tag) is no version.
    """
    if not module or not shutil.which("go"):
        return ""
    try:
        proc = subprocess.run(
            ["go", "version", "-m", str(path)], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("mod", "dep") and parts[1] == module:
            return parts[2] if _VERSION_RE.fullmatch(parts[2].split("-")[0].split("+")[0]) else ""
    return ""


def version_output(path: Path, argv: tuple[str, ...]) -> tuple[str, str]:
    """Stdout and stderr of ``path argv`` (a version query), asked once per binary and process.

    One ``lab up`` looks each tool up several times (install check, component status, health
    evidence); the answer is kept under the file's identity (device, inode, size, mtime), so a
    binary replaced or re-linked in between is asked again.

    Raises:
        OSError: The binary cannot be run.
        subprocess.TimeoutExpired: It did not answer within 20 s.
    """
    found = path.stat()
    return _version_output(str(path), argv, (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns))


@functools.lru_cache(maxsize=64)
def _version_output(path: str, argv: tuple[str, ...], identity: tuple[int, ...]) -> tuple[str, str]:
    out = subprocess.run([path, *argv], capture_output=True, text=True, timeout=20, check=False)
    return out.stdout, out.stderr


def reported_version(spec: ToolSpec, path: Path) -> str:
    """The version the binary itself tells: its version output, else its Go build info."""
    if spec.version_argv:
        try:
            stdout, stderr = version_output(path, tuple(spec.version_argv))
            found = version_in_output(spec, stdout) or version_in_output(spec, stderr)
            if found:
                return found
        except (OSError, subprocess.TimeoutExpired):
            pass
    return build_info_version(spec.go_module, path)


def read_version(spec: ToolSpec, path: Path) -> str:
    """The binary's own version (:func:`reported_version`), else the stamp the lab wrote when it got it."""
    found = reported_version(spec, path)
    if found:
        return found
    stamp = path.parent / f".{spec.name}.json"
    if stamp.is_file():
        return str(json.loads(stamp.read_text()).get("version", ""))
    return ""


def version_matches(spec: ToolSpec, found: str) -> bool:
    """Exact tag match, or major (postgres) / major version family (kubectl) where declared."""
    if not found:
        return False
    want, have = spec.version.lstrip("v"), found.lstrip("v")
    if spec.match_major_only:
        return have.split(".")[0] == want.split(".")[0]
    # A pre-release of the tag (-rc.1) or build metadata (+dirty in Go's VCS stamp) is the tag's build.
    return have == want or have.startswith((want + "-", want + "+"))
