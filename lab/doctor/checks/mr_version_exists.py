"""mr-version-exists: registering a model version that the Model Registry already has.

The Model Registry client raises ``StoreError("Version X already exists")``; the registry
works, the chain asked for a version that is taken.
"""

from __future__ import annotations

import re

from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, Result
from lab.pipeline.chain import VersionPolicy

ALREADY_EXISTS = re.compile(r"[Vv]ersion (?P<version>.+?) already exists")


def detect(evidence: Evidence) -> Result:
    """The recorded chain error: a StoreError saying the version already exists."""
    error = evidence.chain_error()
    if error is None:
        return Result.ok("no chain error recorded")
    match = ALREADY_EXISTS.search(error.message)
    if not match:
        return Result.ok(f"the recorded chain error ({error.step}) is not a duplicate version")
    version = error.context.get("version") or match.group("version").strip("'\" ")
    model = error.context.get("model", "<model>")
    lines = [error.line(), *(f"{key}: {value}" for key, value in sorted(error.context.items()))]
    api = f"http://127.0.0.1:{evidence.config.ports.model_registry}/api/model_registry/v1alpha3"
    return Result.fail(
        f"model {model} version {version} was registered before (the Model Registry works)",
        lines,
        [
            "# register a unique version: let the chain suffix the run id, or pick a new one:",
            f"lab demo --version-policy {VersionPolicy.SUFFIX}",
            f'lab demo --version "{version}-$(date +%Y%m%d%H%M%S)"',
            "# or keep the registered version when it is the same ModelKit digest:",
            f"lab demo --version-policy {VersionPolicy.REUSE}",
            "# versions already registered (local mode; kind mode: port-forward the model-registry-service):",
            f"curl -s {api}/registered_models",
        ],
    )


CHECK = Check(
    id="mr-version-exists",
    title="model version is new",
    group="model-registry",
    inspects="the chain's recorded error ($LAB_HOME/run/last-chain-error.json)",
    detect=detect,
)
