"""The chain's bash scripts (``scripts/``): where they are, their arguments, how to run them.

The scripts are the one implementation of push, unpack and the ``kit://`` storage
initializer; what they share is one prelude, ``scripts/lib/prelude.sh``, which each sources
from beside itself. The cluster embeds their text, prelude inlined (:func:`script_text`), in
container components; locally they run from ``scripts/`` (or a copy of it a component
carries) through :func:`run_script`. The argument lists are built here once for both, so a
container component (with KFP placeholders) and a local run (with values) call a script
the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.config import PROJECT_ROOT
from lab.errors import LabError

SCRIPTS_DIR = PROJECT_ROOT / "scripts"
PUSH_SCRIPT = SCRIPTS_DIR / "push-modelkit.sh"
UNPACK_SCRIPT = SCRIPTS_DIR / "unpack-modelkit.sh"
STORAGE_INITIALIZER_SCRIPT = SCRIPTS_DIR / "kit-storage-initializer.sh"
# What the scripts share (log/die helpers, the reference grammar, kit's 401 and integrity errors).
PRELUDE = SCRIPTS_DIR / "lib" / "prelude.sh"
_PRELUDE_BEGIN = "# --- prelude: scripts/lib/prelude.sh"
_PRELUDE_END = "# --- end of prelude ---\n"
# unpack-modelkit.sh's layer pass in Python, for where python3 is (the bash pass is the fallback).
EXTRACTOR = SCRIPTS_DIR / "lib" / "extract_layers.py"
_EXTRACTOR_BEGIN = "# --- extractor: scripts/lib/extract_layers.py"
_EXTRACTOR_END = "# --- end of extractor ---\n"
_EXTRACTOR_DELIMITER = "EXTRACT_LAYERS_PY"


class ScriptFailed(LabError):
    """A chain script exited non-zero; the message is the script's own ``ERROR:`` line."""

    def __init__(self, script: str, returncode: int, message: str, output: str) -> None:
        super().__init__(message, output.strip().splitlines()[-15:])
        self.script = script
        self.returncode = returncode
        self.output = output


def _inline(text: str, path: Path, begin_marker: str, end_marker: str, body: str) -> str:
    """``text`` with the lines between a block's two marker lines replaced by ``body``."""
    begin = text.find(begin_marker)
    end = text.find(end_marker, begin)
    if begin < 0 or end < 0:
        raise ValueError(f"{path} has no block {begin_marker!r} ... {end_marker.strip()!r}")
    header_end = text.index("\n", begin) + 1
    return text[:header_end] + body + text[end:]


def extractor_function() -> str:
    """``extractor_source``, the bash function printing extract_layers.py, as a here-document."""
    source = EXTRACTOR.read_text()
    if _EXTRACTOR_DELIMITER in source.splitlines():
        raise ValueError(f"{EXTRACTOR} contains the here-document delimiter line {_EXTRACTOR_DELIMITER}")
    return f"extractor_source() {{\n    cat <<'{_EXTRACTOR_DELIMITER}'\n{source}{_EXTRACTOR_DELIMITER}\n}}\n"


def script_text(path: Path) -> str:
    """The text of a chain script as a component embeds it: what it reads from ``lib/`` inlined.

    A script sources ``lib/prelude.sh`` from beside itself between two marker lines; a
    container component runs the script as ``bash -c <text>`` on an image without the file,
    so the lines between the markers become the prelude's text. unpack-modelkit.sh also reads
    ``lib/extract_layers.py`` (its layer pass where python3 is): between the extractor's
    markers goes a function printing it from a here-document.

    Raises:
        ValueError: The script has no prelude block.
    """
    text = _inline(path.read_text(), path, _PRELUDE_BEGIN, _PRELUDE_END, PRELUDE.read_text())
    if _EXTRACTOR_BEGIN in text:
        text = _inline(text, path, _EXTRACTOR_BEGIN, _EXTRACTOR_END, extractor_function())
    return text


def push_arguments(
    registry: Any,
    repository: Any,
    tag: Any,
    modelkit_dir: Any,
    *,
    modelkit_name: Any = "",
    modelkit_desc: Any = "",
    modelkit_author: Any = "",
    dataset_uri: Any = "",
    code_repo: Any = "",
    code_commit: Any = "",
    plain_http: Any = "false",
    ref_output: Any = "",
    digest_output: Any = "",
    compression: str = "",
) -> list[Any]:
    """``push-modelkit.sh`` arguments; values may be strings or KFP placeholders.

    ``compression`` is kit pack's layer compression (none, gzip, gzip-fastest); empty: kit's default.
    """
    arguments = [
        registry,
        repository,
        tag,
        "--modelkit-dir",
        modelkit_dir,
        "--name",
        modelkit_name,
        "--desc",
        modelkit_desc,
        "--author",
        modelkit_author,
        "--dataset-uri",
        dataset_uri,
        "--code-repo",
        code_repo,
        "--code-commit",
        code_commit,
        "--plain-http",
        plain_http,
        "--ref-output",
        ref_output,
        "--digest-output",
        digest_output,
    ]
    if compression:
        arguments += ["--compression", compression]
    return arguments


def unpack_arguments(
    modelkit_ref: Any,
    extract_path: Any = "",
    *,
    plain_http: Any = "false",
    artifact_dir: Any = "",
    model_path_output: Any = "",
    oci_layout: str = "",
    max_bytes: int | None = None,
) -> list[Any]:
    """``unpack-modelkit.sh`` arguments; values may be strings or KFP placeholders.

    ``max_bytes`` caps the bytes extracted (the script's default: free space minus 64 MiB).
    """
    arguments = [
        modelkit_ref,
        extract_path,
        "--plain-http",
        plain_http,
        "--artifact-dir",
        artifact_dir,
        "--model-path-output",
        model_path_output,
    ]
    if oci_layout:
        arguments += ["--oci-layout", oci_layout]
    if max_bytes is not None:
        arguments += ["--max-bytes", str(max_bytes)]
    return arguments


def script_environment(
    *,
    docker_config: str | Path = "",
    tool_dirs: Sequence[str | Path] = (),
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment a script runs with: credentials only through ``DOCKER_CONFIG``."""
    env = dict(os.environ)
    if docker_config:
        env["DOCKER_CONFIG"] = str(docker_config)
    if tool_dirs:
        env["PATH"] = os.pathsep.join([*(str(d) for d in tool_dirs), env.get("PATH", "")])
    env.update(extra or {})
    return env


def lab_python() -> dict[str, str]:
    """``UNPACK_PYTHON`` for a local unpack: the lab's own interpreter runs the layer pass.

    Where the script finds ``python3`` on PATH it may be a version manager's shim, which costs
    a tenth of a second to start; the cluster's image has no Python (the bash pass runs there).
    """
    return {"UNPACK_PYTHON": sys.executable} if sys.executable else {}


def run_script(
    script: str | Path,
    arguments: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    echo: bool = False,
    timeout: float | None = None,
) -> str:
    """Run a chain script with bash; return its stdout.

    Args:
        script: Path of the script (a file in ``scripts/`` or the copy a component carries).
        arguments: Its arguments.
        env: Its environment (see :func:`script_environment`); default: this process's.
        echo: Also print the script's stderr (its progress log) as it is captured.
        timeout: Seconds before the script is stopped.

    Raises:
        ScriptFailed: Non-zero exit; the message is the script's last ``ERROR:`` line.
    """
    name = Path(script).name
    proc = subprocess.run(
        ["bash", str(script), *arguments],
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if echo and proc.stderr:
        print(proc.stderr, end="", flush=True)
    if proc.returncode != 0:
        errors = [line[len("ERROR: ") :] for line in proc.stderr.splitlines() if line.startswith("ERROR: ")]
        message = errors[-1] if errors else f"{name} exited {proc.returncode}"
        raise ScriptFailed(name, proc.returncode, message, proc.stderr + proc.stdout)
    return proc.stdout
