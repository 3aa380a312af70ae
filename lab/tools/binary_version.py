"""What version a tool's binary is: its version output, its Go build info, else the lab's stamp.

Its own module so that finding a tool (:mod:`lab.tools`) and registering one
(:mod:`lab.tools.added`) read versions the same way.
"""

from __future__ import annotations

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


def reported_version(spec: ToolSpec, path: Path) -> str:
    """The version the binary itself tells: its version output, else its Go build info."""
    if spec.version_argv:
        try:
            out = subprocess.run(
                [str(path), *spec.version_argv], capture_output=True, text=True, timeout=20, check=False
            )
            found = version_in_output(spec, out.stdout) or version_in_output(spec, out.stderr)
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
