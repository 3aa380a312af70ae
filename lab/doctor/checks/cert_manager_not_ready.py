"""cert-manager-not-ready: cert-manager's Deployments are not all Running and Ready.

KServe's webhooks (and the serving runtimes applied through them) need the serving
certificates cert-manager issues; while its webhook is down, no Issuer or Certificate is
admitted and ``lab up`` stops at the cert-manager or KServe step.
"""

from __future__ import annotations

from lab.components import CERT_MANAGER
from lab.doctor.checks._found import component_namespace
from lab.doctor.checks._provision import up_command
from lab.doctor.checks._workloads import crash_remedies, judge_deployments, waiting_remedy
from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, Result


def detect(evidence: Evidence) -> Result:
    """Readiness of each declared cert-manager Deployment and its pods."""
    namespace = component_namespace(evidence, CERT_MANAGER)
    not_ready, lines = judge_deployments(evidence, namespace, CERT_MANAGER.deployments)
    if not not_ready:
        return Result.ok(f"{', '.join(CERT_MANAGER.deployments)} Running and Ready", lines)
    missing = all(line.endswith("does not exist") for line in lines)
    summary = (
        f"cert-manager is not installed in namespace {namespace}"
        if missing
        else f"cert-manager is not ready: {', '.join(not_ready)} not Running+Ready"
    )
    return Result.fail(
        summary + " (KServe's webhooks need its certificates)",
        lines,
        [
            *(crash_remedies(evidence, namespace) or waiting_remedy(evidence, namespace, not_ready, "300s")),
            f"{up_command(evidence.config, evidence.mode)}  # re-applies cert-manager, waits for its webhook",
        ],
    )


CHECK = Check(
    id="cert-manager-not-ready",
    title="cert-manager ready",
    group="cert-manager",
    inspects="deployments cert-manager, cert-manager-cainjector, cert-manager-webhook and their pods",
    detect=detect,
    modes=frozenset({"kind", "cluster"}),
)
