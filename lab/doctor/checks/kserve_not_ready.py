"""kserve-not-ready: an InferenceService is not Ready.

Usually the storage initializer cannot fetch the ModelKit (the unpacker's ERROR line, 401,
``--plain-http`` missing) or the ``kitops`` ClusterStorageContainer is absent or misnamed.
"""

from __future__ import annotations

from typing import Any

from lab.components import KSERVE
from lab.doctor.checks._found import component_namespace
from lab.doctor.checks._provision import kubectl, reprovision, up_command
from lab.doctor.checks._workloads import judge_deployments
from lab.doctor.evidence import Evidence, EvidenceUnavailable
from lab.doctor.model import Check, FixContext, FixOutcome, Result
from lab.doctor.workloads import containers
from lab.readiness import custom_condition, custom_conditions, inference_service_ready
from lab.storage_container import spec_drift, storage_container

GROUP = "serving.kserve.io"
CONTROLLER = "kserve-controller-manager"
INIT = "storage-initializer"  # KServe recognises only this init-container name
ISVC_LABEL = "serving.kserve.io/inferenceservice"


def _storage_uri(isvc: dict[str, Any]) -> str:
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    for value in predictor.values():
        if isinstance(value, dict) and value.get("storageUri"):
            return str(value["storageUri"])
    return ""


def _log_remedy(text: str, evidence: Evidence, csc_name: str, namespace: str) -> list[str]:
    lowered = text.lower()
    if "server gave http response to https client" in lowered or "--plain-http" in lowered:
        return [
            "# the lab's registry speaks plain HTTP: pass --plain-http to the storage initializer",
            f"kubectl patch clusterstoragecontainer {csc_name} --type=json -p "
            '\'[{"op":"add","path":"/spec/container/env/-","value":{"name":"KIT_UNPACK_FLAGS",'
            '"value":"--plain-http"}}]\'',
        ]
    if "401" in lowered or "unauthorized" in lowered:
        secret = evidence.config.names.kit_credentials_secret
        return [
            "# kit was refused: give the storage initializer KIT_USER/KIT_PASSWORD from a secret",
            f"kubectl -n {namespace} get secret {secret}  # must exist with the registry user and password",
            f"{up_command(evidence.config, evidence.mode)}"
            "  # re-applies the ClusterStorageContainer with the credentials",
        ]
    if "not found" in lowered or "manifest unknown" in lowered:
        return [
            "# the ModelKit reference does not exist in the registry; list what is there:",
            f"curl -s http://{evidence.config.registry_host}/v2/_catalog",
        ]
    if "no such host" in lowered or "connection refused" in lowered:
        return [
            "# the registry is unreachable from the cluster: see local-registry-unwired",
            "lab doctor local-registry-unwired",
        ]
    return [f"kubectl -n {namespace} describe pod -l {ISVC_LABEL}"]


def detect(evidence: Evidence) -> Result:
    """Controller readiness, the ``kitops`` ClusterStorageContainer, each ISVC's conditions and init logs."""
    config = evidence.config
    isvcs = evidence.custom_objects(GROUP, "v1beta1", "inferenceservices")
    if isvcs is None:
        return Result.fail(
            "KServe is not installed (inferenceservices.serving.kserve.io is not served)",
            [],
            [up_command(config, evidence.mode)],
        )
    problems: list[str] = []
    facts: list[str] = []
    remedy: list[str] = []
    controller_down, lines = judge_deployments(evidence, component_namespace(evidence, KSERVE), [CONTROLLER])
    (problems if controller_down else facts).extend(lines)
    csc_name = config.names.storage_container
    cscs = evidence.custom_objects(GROUP, "v1alpha1", "clusterstoragecontainers") or []
    csc = next((c for c in cscs if (c.get("metadata") or {}).get("name") == csc_name), None)
    fixable = csc is None
    if csc is None:
        problems.append(f"ClusterStorageContainer {csc_name} does not exist: nothing serves kit:// URIs")
        remedy.append(f"{up_command(config, evidence.mode)}  # applies the kitops ClusterStorageContainer")
    else:
        spec = csc.get("spec") or {}
        container = spec.get("container") or {}
        prefixes = [f.get("prefix") for f in spec.get("supportedUriFormats") or [] if isinstance(f, dict)]
        env = {e.get("name"): e.get("value", "") for e in container.get("env") or [] if isinstance(e, dict)}
        facts.append(
            f"ClusterStorageContainer {csc_name}: container {container.get('name')!r}, "
            f"image {container.get('image')}, "
            f"URI prefixes {prefixes}, KIT_UNPACK_FLAGS={env.get('KIT_UNPACK_FLAGS', '(unset)')}"
        )
        if container.get("name") != INIT:
            problems.append(
                f"ClusterStorageContainer {csc_name}: spec.container.name is {container.get('name')!r}; "
                f"KServe only recognises {INIT!r}"
            )
            remedy.append(
                f"kubectl patch clusterstoragecontainer {csc_name} --type=merge -p "
                f'\'{{"spec":{{"container":{{"name":"{INIT}"}}}}}}\''
            )
        if "kit://" not in prefixes:
            problems.append(f"ClusterStorageContainer {csc_name} does not claim the kit:// prefix")
            remedy.append(
                f"{up_command(config, evidence.mode)}  # re-applies the kitops ClusterStorageContainer"
            )
        drift = spec_drift(storage_container(config)["spec"], csc.get("spec") or {})
        fixable = bool(drift)
        if drift:
            problems += [
                f"ClusterStorageContainer {csc_name} drifted from the pinned spec: {line}" for line in drift
            ]
            up = (
                f"{up_command(config, evidence.mode)}  # re-applies the pinned kitops ClusterStorageContainer"
            )
            if up not in remedy:
                remedy.append(up)
    not_ready = 0
    for isvc in isvcs:
        meta = isvc.get("metadata") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        conditions = custom_conditions(isvc)
        ready_condition = custom_condition(isvc, "Ready") or {}
        if inference_service_ready(isvc):
            facts.append(f"InferenceService {namespace}/{name}: Ready")
            continue
        not_ready += 1
        problems.append(
            f"InferenceService {namespace}/{name} ({_storage_uri(isvc) or 'no storageUri'}): "
            f"Ready={ready_condition.get('status', 'Unknown')}"
        )
        for cond in conditions:
            if cond.get("status") != "True" and (cond.get("reason") or cond.get("message")):
                reason, message = cond.get("reason", ""), cond.get("message", "")
                problems.append(f"  condition {cond.get('type')}: {reason} {message}".rstrip())
        for pod in evidence.pods():
            if pod.metadata.namespace != namespace or (pod.metadata.labels or {}).get(ISVC_LABEL) != name:
                continue
            for cs in containers(pod):
                failed = (
                    cs.waiting_reason or cs.terminated_exit not in (None, 0) or cs.last_exit not in (None, 0)
                )
                if not (cs.init and cs.name == INIT and failed):
                    continue
                problems.append(cs.line())
                try:
                    log = evidence.pod_log(
                        namespace, cs.pod, INIT, previous=cs.terminated_exit is None, lines=15
                    )
                except EvidenceUnavailable as exc:
                    problems.append(f"(storage-initializer log unavailable: {exc.detail})")
                    continue
                problems.append(f"{INIT} log ends with:")
                problems.extend(f"| {line}" for line in log)
                remedy.extend(
                    r for r in _log_remedy("\n".join(log), evidence, csc_name, namespace) if r not in remedy
                )
    if not problems:
        summary = (
            f"{len(isvcs)} InferenceService(s) Ready" if isvcs else "no InferenceService yet; KServe ready"
        )
        return Result.ok(summary, facts)
    what = (
        f"{not_ready} InferenceService(s) not Ready"
        if not_ready
        else "KServe is not ready to serve kit:// models"
    )
    if fixable:
        remedy.insert(0, "lab doctor --fix kserve-not-ready  # or by hand:")
    return Result.fail(
        what,
        problems + facts,
        remedy or [kubectl(config, evidence.mode, "get", "inferenceservices", "-A")],
        fixable=fixable,
    )


def fix(ctx: FixContext) -> FixOutcome:
    """Re-run the mode's idempotent provisioning: KServe's step re-applies the pinned storage container."""
    return reprovision(ctx, "the kitops ClusterStorageContainer")


CHECK = Check(
    id="kserve-not-ready",
    title="KServe serves kit:// models",
    group="kserve",
    inspects="InferenceService conditions, storage-initializer init container state and log, "
    "ClusterStorageContainer kitops (against the pinned spec), kserve-controller-manager",
    detect=detect,
    modes=frozenset({"kind", "cluster"}),
    fix=fix,
    fix_description="re-apply the pinned kitops ClusterStorageContainer (`lab up` is idempotent)",
)
