"""mr-config-error: Model Registry pod in CreateContainerConfigError, or not deployed.

Model Registry's ``base`` manifests read keys (``embedmdDb``, ``dbHost``, ``dbPort``) from
KFP's ``pipeline-install-config`` and secret ``mysql-secret``; applying ``base`` alone (or
an outdated fork) leaves the pod unable to start. ``overlays/db`` brings its own database.
"""

from __future__ import annotations

import re

from lab.components import MODEL_REGISTRY
from lab.doctor.checks._found import component_namespace
from lab.doctor.checks._provision import kubectl, reprovision
from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, FixContext, FixOutcome, Result
from lab.doctor.workloads import containers, find, pods_named
from lab.upstream_manifests import manifest_mirror

DEPLOYMENT = "model-registry-deployment"
CONFIG_ERRORS = frozenset({"CreateContainerConfigError", "CreateContainerError"})


def overlay_source(evidence: Evidence) -> str:
    """The ``overlays/db`` kustomization at the pinned version (the local mirror when configured)."""
    version = evidence.config.versions.model_registry
    mirror = manifest_mirror(evidence.config)
    if mirror is not None:
        return f"{mirror}/model-registry-{version}/manifests/kustomize/overlays/db"
    return f"https://github.com/kubeflow/model-registry/manifests/kustomize/overlays/db?ref={version}"


_MISSING = (
    (re.compile(r"couldn't find key (\S+) in (ConfigMap|Secret) (\S+)"), "key {0} in {1} {2}"),
    (re.compile(r'(secret|configmap) "([^"]+)" not found', re.IGNORECASE), "{0} {1}"),
)


def missing_reference(message: str) -> str:
    """The key, Secret or ConfigMap a kubelet's CreateContainerConfigError names ("" if none)."""
    for pattern, form in _MISSING:
        match = pattern.search(message)
        if match:
            return form.format(*match.groups())
    return ""


def detect(evidence: Evidence) -> Result:
    """The Model Registry deployment exists and its containers are not stuck on configuration."""
    namespace = component_namespace(evidence, MODEL_REGISTRY)
    remedy = [
        "# apply the overlays/db overlay at the pinned version (not base, not a fork):",
        f'kubectl apply -k "{overlay_source(evidence)}" -n {namespace}',
        kubectl(
            evidence.config,
            evidence.mode,
            "-n",
            namespace,
            "rollout",
            "status",
            f"deployment/{DEPLOYMENT}",
            "--timeout=300s",
        ),
    ]
    if find(evidence.deployments(), namespace, DEPLOYMENT) is None:
        return Result.fail(
            f"Model Registry is not deployed (no deployment {namespace}/{DEPLOYMENT})",
            f"deployment {namespace}/{DEPLOYMENT} does not exist",
            remedy,
            fixable=True,
        )
    stuck = [
        cs
        for pod in pods_named(evidence.pods(), namespace, DEPLOYMENT + "-")
        for cs in containers(pod)
        if cs.waiting_reason in CONFIG_ERRORS
    ]
    if not stuck:
        return Result.ok(f"{namespace}/{DEPLOYMENT} has no container stuck on configuration")
    lines = [cs.line() for cs in stuck]
    missing = missing_reference(stuck[0].waiting_message or "")
    if missing:
        # The kubelet names the one reference it could not resolve: lead with it.
        lines.insert(0, f"missing: {missing}")
    keys = evidence.config_map_keys(namespace, "pipeline-install-config")
    lines.append(
        f"ConfigMap {namespace}/pipeline-install-config "
        + ("does not exist" if keys is None else f"keys: {', '.join(keys)}")
    )
    secret = evidence.secret(namespace, "mysql-secret")
    lines.append(secret.line() if secret else f"secret {namespace}/mysql-secret does not exist")
    return Result.fail(
        f"Model Registry cannot start: {stuck[0].waiting_reason} "
        f"({stuck[0].waiting_message or 'no message'})",
        lines,
        remedy,
        fixable=True,
    )


def fix(ctx: FixContext) -> FixOutcome:
    """Re-run the kind provisioning, whose Model Registry step applies ``overlays/db``."""
    manual = f'kubectl apply -k "{overlay_source(ctx.evidence)}" -n {ctx.config.names.kubeflow_namespace}'
    return reprovision(ctx, "Model Registry from overlays/db", manual)


CHECK = Check(
    id="mr-config-error",
    title="Model Registry deployed from overlays/db",
    group="model-registry",
    inspects="model-registry-deployment container waiting reason/message; pipeline-install-config key names; "
    "mysql-secret presence",
    detect=detect,
    modes=frozenset({"kind", "cluster"}),
    fix=fix,
    fix_description="apply Model Registry's overlays/db at the pinned version (via `lab up --mode kind`)",
)
