"""kind-tools: the tools kind mode runs (kind, and a kustomize to build the manifests) are installed."""

from __future__ import annotations

from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, Result

TOOLS = ("kind", "kustomize")


def detect(evidence: Evidence) -> Result:
    """Look each tool up the way provisioning will run it."""
    facts = [evidence.tool(name) for name in TOOLS]
    lines = [f"{f.name}: {f.command}" if f.command else f"{f.name}: {f.problem}" for f in facts]
    missing = [f.name for f in facts if not f.command]
    if missing:
        return Result.fail(
            f"{' and '.join(missing)} not installed: kind mode cannot create or fill its cluster",
            lines,
            "lab tools install --mode kind",
        )
    return Result.ok("kind and kustomize are installed", lines)


CHECK = Check(
    id="kind-tools",
    title="kind mode's tools installed",
    group="host",
    inspects="kind and kustomize under $LAB_HOME/bin (or kubectl's kustomize)",
    detect=detect,
    modes=frozenset({"kind"}),
)
