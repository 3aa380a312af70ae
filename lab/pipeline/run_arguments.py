"""The pipeline parameters of a demo or e2e run, with code lineage from this checkout."""

from __future__ import annotations

import subprocess
from typing import Any

from lab.config import PROJECT_ROOT
from lab.pipeline.chain import VersionPolicy
from lab.pipeline.definition import DEFAULT_MODEL_NAME


def _git(*argv: str) -> str:
    try:
        proc = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), *argv], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def demo_arguments(
    version: str, version_policy: VersionPolicy, model_name: str = DEFAULT_MODEL_NAME
) -> dict[str, Any]:
    """Pipeline parameters of the demo run; code lineage from this checkout when it is a git repository.

    The version policy becomes the pipeline's string parameter here; it is read as a
    :class:`VersionPolicy` once more, so a caller that passes a stray word fails here, not in
    the register step.
    """
    return {
        "model_name": model_name,
        "version": version,
        "repository": f"lab/{model_name}",
        "version_policy": VersionPolicy(version_policy).value,
        "code_repo": _git("config", "--get", "remote.origin.url") or "kubeflow-modelkit-lab",
        "code_commit": _git("rev-parse", "HEAD"),
    }
