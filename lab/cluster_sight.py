"""Whether a cluster can be inspected at all: the first question of ``lab doctor`` and ``lab status``.

Blindness is never health. A kubeconfig that cannot be used, a context that is not in it, an
API server that does not answer and credentials that may not read what the command reads are
each one line saying which (the file, the context, the server, the user and the verbs), and
the command exits 2, "could not check", instead of reporting checks skipped or rows empty.
"""

from __future__ import annotations

from collections.abc import Sequence

from lab.config import LabConfig
from lab.errors import ClusterUnreachable
from lab.kube import API_ERRORS, Kube, api_error_message
from lab.kubeconfig import KubeconfigInvalid, checked_context

# (verb, group, resource) read cluster-wide.
Read = tuple[str, str, str]
DOCTOR_READS: tuple[Read, ...] = (
    ("list", "", "pods"),
    ("list", "", "events"),
    ("list", "", "persistentvolumeclaims"),
    ("list", "storage.k8s.io", "storageclasses"),
    ("list", "apps", "deployments"),
    ("list", "", "nodes"),
    ("get", "", "configmaps"),
    ("get", "", "secrets"),
)
STATUS_READS: tuple[Read, ...] = (
    ("list", "", "nodes"),
    ("get", "", "namespaces"),
    ("list", "apps", "deployments"),
)
CONNECT_TIMEOUT = 5.0
API_TIMEOUT = (3.0, 10.0)


def why_blind(config: LabConfig, reads: Sequence[Read]) -> str:
    """Why the cluster of ``config`` cannot be inspected ("" when it can): one line for the user."""
    try:
        kube = Kube.connect(config, timeout=CONNECT_TIMEOUT, read_timeout=API_TIMEOUT)
        kubeconfig, context = checked_context(config)
    except (KubeconfigInvalid, ClusterUnreachable) as exc:
        return exc.message
    try:
        refused = [
            f"{verb} {resource}" for verb, group, resource in reads if not kube.may(verb, group, resource)
        ]
    except API_ERRORS as exc:
        return f"cannot ask {kube.host} what context {context} may read: {api_error_message(exc)}"
    if not refused:
        return ""
    return (
        f"forbidden: the credentials of context {context} (user {kubeconfig.user_of(context)} in "
        f"{kubeconfig.where}) may not {', '.join(refused)} cluster-wide on {kube.host}"
    )
