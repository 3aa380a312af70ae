"""``lab tools add``: register a binary the user built or downloaded as one of the lab's tools.

Where no source can provide a tool (a Go module proxy that refuses the module, no internet),
the user builds or downloads it elsewhere and registers it. The lab checks that it runs,
records its version, copies it into ``$LAB_HOME/bin`` (links a tool that needs its
installation around it, such as postgres) and stamps it ``added``: such a binary
is used as found and is never rebuilt over (see :func:`lab.tools.ensure_tool`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from lab.config import LabConfig
from lab.errors import LabError, UsageError
from lab.invocation import lab_command
from lab.tools import (
    ToolSpec,
    ToolStatus,
    _link_companions,
    _write_stamp,
    tool_specs,
)
from lab.tools.binary_version import build_info_version, version_in_output, version_matches
from lab.tools.sources import install_atomically, link_into

ADDED = "added"


def _spec(config: LabConfig, name: str) -> ToolSpec:
    specs = {spec.name: spec for spec in tool_specs(config)}
    if name not in specs:
        raise UsageError(f"unknown tool {name!r}; known: {', '.join(sorted(specs))}")
    return specs[name]


def _probe(spec: ToolSpec, binary: Path) -> str:
    """Run the binary (its version command, else ``--help``); return the version it reports.

    What it prints, else what its Go build info records (a ``go install`` without release stamps).
    """
    argv = [str(binary), *(spec.version_argv or ("--help",))]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{binary} does not run here: {exc}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        raise LabError(f"{binary} does not run here: `{' '.join(argv)}` exited {proc.returncode}: {last}")
    said = ""  # without a version command, its --help says nothing reliable about the version
    if spec.version_argv:
        said = version_in_output(spec, proc.stdout) or version_in_output(spec, proc.stderr)
    return said or build_info_version(spec.go_module, binary)


def add_tool(config: LabConfig, name: str, path: str, version: str = "") -> ToolStatus:
    """Check, record and install ``path`` as the lab's ``name`` (source ``added``).

    Raises:
        LabError: Unknown tool, a binary that does not run, a version that cannot be told, or a
            version other than the pinned one (the message says which).
    """
    spec = _spec(config, name)
    binary = Path(path).expanduser().resolve()
    if not binary.is_file():
        raise LabError(f"{path} is not a file; give the path of a built {name} binary")
    reported = _probe(spec, binary)
    if version and reported and not version_matches(ToolSpec(name, version, spec.modes, ()), reported):
        raise LabError(f"{binary} reports version {reported}, not the {version} given with --version")
    found = reported or version
    if not found:
        raise LabError(
            f"{binary} runs but does not say its version; pass it: "
            f"{lab_command(f'tools add {name} {path} --version {spec.version}')}"
        )
    if not version_matches(spec, found):
        raise LabError(
            f"{binary} is {name} {found}; the lab pins {spec.version} (lab/config.py Versions): "
            "add a build of the pinned version"
        )
    bin_dir = config.bin_dir
    dest = bin_dir / name
    if not (dest.exists() and dest.resolve() == binary):
        if spec.companions:
            # postgres finds its libraries and companions relative to its real location.
            link_into(bin_dir, name, binary)
        else:
            install_atomically(binary, dest)
    _write_stamp(spec, bin_dir, ADDED, found)
    _link_companions(spec, binary, bin_dir)
    return ToolStatus(name, spec.version, found, str(dest), ADDED, True)
