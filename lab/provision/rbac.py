"""The lab-owned RBAC that lets pipeline pods serve models with KServe.

In kind mode KFP runs every pipeline pod as its ``pipeline-runner`` ServiceAccount. The
serve step (``lab.pipeline.steps.deploy_inference_service``) creates or replaces an
InferenceService in the pipeline namespace and then waits for it to become Ready, but KFP
2.16.0's ``pipeline-runner`` Role grants nothing in the ``serving.kserve.io`` group. Rather
than patch the upstream Role (which a KFP upgrade would overwrite), the lab applies its own
Role and RoleBinding next to the pipeline secrets.
"""

from __future__ import annotations

from lab.config import LabConfig
from lab.kube_objects import Manifest

# KFP's platform-agnostic install names the ServiceAccount its pipeline pods run as.
PIPELINE_RUNNER_SERVICE_ACCOUNT = "pipeline-runner"
RUNNER_KSERVE_ROLE = "lab-pipeline-runner-kserve"
KSERVE_GROUP = "serving.kserve.io"
# create/update for the serve step's create-or-replace, patch for clients that patch
# instead, delete for cleanup, and get/list/watch because both the serve step's readiness
# wait and `lab demo` read the InferenceService status.
INFERENCE_SERVICE_VERBS = ("get", "list", "watch", "create", "patch", "update", "delete")
_RBAC_GROUP = "rbac.authorization.k8s.io"
_LABELS = {"app.kubernetes.io/managed-by": "kubeflow-modelkit-lab"}


def _metadata(namespace: str) -> dict[str, object]:
    return {"name": RUNNER_KSERVE_ROLE, "namespace": namespace, "labels": dict(_LABELS)}


def runner_rbac_objects(config: LabConfig) -> list[Manifest]:
    """The Role and RoleBinding granting ``pipeline-runner`` InferenceService access.

    Both are namespaced to the pipeline namespace, so the grant reaches no further than
    the namespace the pipeline already runs and serves in.

    Args:
        config: The lab configuration; only the pipeline namespace is read.

    Returns:
        The Role, then the RoleBinding, as plain manifests ready for server-side apply.
    """
    namespace = config.names.pipeline_namespace
    role = {
        "apiVersion": f"{_RBAC_GROUP}/v1",
        "kind": "Role",
        "metadata": _metadata(namespace),
        "rules": [
            {
                "apiGroups": [KSERVE_GROUP],
                "resources": ["inferenceservices"],
                "verbs": list(INFERENCE_SERVICE_VERBS),
            }
        ],
    }
    binding = {
        "apiVersion": f"{_RBAC_GROUP}/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(namespace),
        "roleRef": {"apiGroup": _RBAC_GROUP, "kind": "Role", "name": RUNNER_KSERVE_ROLE},
        "subjects": [
            {"kind": "ServiceAccount", "name": PIPELINE_RUNNER_SERVICE_ACCOUNT, "namespace": namespace}
        ],
    }
    return [role, binding]
