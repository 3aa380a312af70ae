"""The chain's scripts (``scripts/``): where they are, their arguments, how to run them.

Push is a bash script (it drives ``kit pack``/``kit push`` and cosign on the kitops-kubeflow
image); its shared helpers are one prelude, ``scripts/lib/prelude.sh``, inlined when a
container component carries the script (:func:`script_text`). Unpack and the ``kit://``
storage initializer are one Python program, ``scripts/unpack_modelkit.py`` (standard library
only), carried as text with the reference grammar inlined (:func:`unpacker_text`) and run
as ``python3 -I -S -c <text>`` everywhere: the cluster's unpack component and
ClusterStorageContainer on the pinned Python image, locally by :func:`run_unpacker` (which,
given the lab's cache, runs that same text compiled once: :func:`compiled_unpacker`). The
argument lists are built here once, so a container component (with KFP placeholders) and a
local run (with values) call a step the same way.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import marshal
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.atomic_files import atomic_write
from lab.config import PROJECT_ROOT
from lab.errors import LabError
from lab.pipeline.modelkit_ref import split_modelkit_reference

SCRIPTS_DIR = PROJECT_ROOT / "scripts"
PUSH_SCRIPT = SCRIPTS_DIR / "push-modelkit.sh"
# What the bash scripts share (log/die helpers, the reference grammar, kit's 401 and integrity errors).
PRELUDE = SCRIPTS_DIR / "lib" / "prelude.sh"
_PRELUDE_BEGIN = "# --- prelude: scripts/lib/prelude.sh"
_PRELUDE_END = "# --- end of prelude ---\n"
# The one implementation of the unpack rules: the unpack step and the kit:// storage initializer.
UNPACKER = SCRIPTS_DIR / "unpack_modelkit.py"
_GRAMMAR_BEGIN = "# --- reference grammar: lab/pipeline/modelkit_ref.py"
_GRAMMAR_END = "# --- end of reference grammar ---\n"
# The unpacker's first argument that makes it KServe's storage initializer (kit://REF DEST).
STORAGE_INITIALIZER = "storage-initializer"


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


def script_text(path: Path) -> str:
    """The text of a bash chain script as a component embeds it: the prelude inlined.

    A script sources ``lib/prelude.sh`` from beside itself between two marker lines; a
    container component runs the script as ``bash -c <text>`` on an image without the file,
    so the lines between the markers become the prelude's text.

    Raises:
        ValueError: The script has no prelude block.
    """
    return _inline(path.read_text(), path, _PRELUDE_BEGIN, _PRELUDE_END, PRELUDE.read_text())


def unpacker_text(path: Path = UNPACKER) -> str:
    """The unpacker as every path runs it: ``python3 -I -S -c <text>``, self-contained.

    The file imports the reference grammar from :mod:`lab.pipeline.modelkit_ref` between two
    marker lines; the carried text has the grammar function's own source there, so the one
    grammar travels to images where the lab is not installed.

    Raises:
        ValueError: The file has no grammar block.
    """
    grammar = inspect.getsource(split_modelkit_reference)
    return _inline(path.read_text(), path, _GRAMMAR_BEGIN, _GRAMMAR_END, grammar + "\n\n")


def unpacker_command(python: str = "python3", path: Path = UNPACKER) -> list[str]:
    """The command that runs the unpacker (isolated: standard library only, no site-packages)."""
    return [python, "-I", "-S", "-c", unpacker_text(path)]


def compiled_unpacker(cache_dir: Path, path: Path = UNPACKER) -> Path:
    """The unpacker's carried text compiled once, as a ``.pyc`` in ``cache_dir``; its path.

    ``python3 -I -S -c <text>`` compiles the whole program on every run (tens of milliseconds
    of every unpack); ``python3 -I -S <file>.pyc`` runs the same text's code object instead.
    The file is named by the hash of the text and of this interpreter's bytecode magic, so an
    edited unpacker or another Python version gets a file of its own, never a stale one.
    """
    text = unpacker_text(path)
    magic = importlib.util.MAGIC_NUMBER
    key = hashlib.sha256(magic + text.encode()).hexdigest()[:16]
    compiled = cache_dir / f"unpack_modelkit-{key}.pyc"
    if not compiled.is_file():
        code = compile(text, UNPACKER.name, "exec")
        # A .pyc run as a script: the magic, then flags, mtime and size (unchecked), then the code.
        atomic_write(compiled, magic + bytes(12) + marshal.dumps(code))
    return compiled


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
    """The unpacker's arguments; values may be strings or KFP placeholders.

    ``max_bytes`` caps the bytes extracted (the unpacker's default: free space minus 64 MiB).
    """
    arguments = [
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
    # The reference and path last, after "--": a reference is data, never an option.
    return [*arguments, "--", modelkit_ref, extract_path]


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


def run_script(
    script: str | Path,
    arguments: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    echo: bool = False,
    timeout: float | None = None,
) -> str:
    """Run a bash chain script; return its stdout.

    Args:
        script: Path of the script (a file in ``scripts/`` or the copy a component carries).
        arguments: Its arguments.
        env: Its environment (see :func:`script_environment`); default: this process's.
        echo: Also print the script's stderr (its progress log) as it is captured.
        timeout: Seconds before the script is stopped.

    Raises:
        ScriptFailed: Non-zero exit; the message is the script's last ``ERROR:`` line.
    """
    return _run(["bash", str(script), *arguments], Path(script).name, env, echo=echo, timeout=timeout)


def run_unpacker(
    arguments: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    path: Path = UNPACKER,
    cache_dir: Path | None = None,
    echo: bool = False,
    timeout: float | None = None,
) -> str:
    """Run the unpacker (``path``: the file, or the copy a component carries) in this interpreter.

    With ``cache_dir`` (the lab's cache) it runs the same text compiled once (:func:`compiled_unpacker`).

    Raises:
        ScriptFailed: Non-zero exit; the message is its ``ERROR:`` line.
    """
    python = sys.executable or "python3"
    if cache_dir is None:
        command = unpacker_command(python, path)
    else:
        command = [python, "-I", "-S", str(compiled_unpacker(cache_dir, path))]
    return _run([*command, *arguments], UNPACKER.name, env, echo=echo, timeout=timeout)


def _run(
    argv: Sequence[str], name: str, env: Mapping[str, str] | None, *, echo: bool, timeout: float | None
) -> str:
    """Run a step's program; its stdout, or :class:`ScriptFailed` with its last ``ERROR:`` line."""
    proc = subprocess.run(
        list(argv),
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
