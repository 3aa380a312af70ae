"""Why a lab container crashes, read from its own words, and the remedy that fits.

A crash loop's termination message (or log tail) usually names its cause; "wait" is the
right advice only while a dependency is still starting. Each :class:`CrashCause` is one
known cause: how to recognise it in the text, and what to run. Pure functions: the caller
passes the text it collected and how to address the cluster.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# The lab's two databases (Deployment names, both MySQL on port 3306): Model Registry's own
# (overlays/db), and KFP's, which every other KFP workload (API server, metadata, cache) uses.
MODEL_REGISTRY_DATABASE, KFP_DATABASE = "model-registry-db", "mysql"


def database_of(deployment: str) -> str:
    """The database Deployment a lab workload depends on."""
    return MODEL_REGISTRY_DATABASE if deployment.startswith("model-registry") else KFP_DATABASE


# The selector of each database's pods, as its upstream manifests label them.
DATABASE_PODS = {KFP_DATABASE: "app=mysql", MODEL_REGISTRY_DATABASE: "component=db"}

_UNREACHABLE = r"(connection refused|no such host|i/o timeout|connection reset|no route to host)"
_DATABASE = re.compile(
    rf"(failed to check if table exists|:3306\b|mysql|database).*{_UNREACHABLE}", re.IGNORECASE | re.DOTALL
)
_OOM = re.compile(r"\bOOMKilled\b")
_SEGFAULT = re.compile(r"\bexit code 139\b")


def deployment_of(pod: str) -> str:
    """The Deployment a pod belongs to, from its name (``<deployment>-<hash>-<suffix>``)."""
    parts = pod.split("-")
    return "-".join(parts[:-2]) if len(parts) > 2 else pod


@dataclass(frozen=True)
class Crash:
    """One crashing container as the remedy needs it: where, what, its own words."""

    namespace: str
    pod: str
    container: str
    text: str  # termination message, last reason, log tail: everything it said
    kubectl: Callable[..., str]  # kubectl(*argv) -> the pasteable line for this cluster

    @property
    def deployment(self) -> str:
        """Its Deployment's name."""
        return deployment_of(self.pod)


@dataclass(frozen=True)
class CrashCause:
    """A known reason for a crash loop: how it shows, what it means, what to run."""

    id: str
    means: str
    pattern: re.Pattern[str]
    remedy: Callable[[Crash], list[str]]


def _database_remedy(crash: Crash) -> list[str]:
    database = database_of(crash.deployment)
    pods = DATABASE_PODS.get(database, f"app={database}")
    k, ns = crash.kubectl, crash.namespace
    return [
        f"# {crash.deployment} cannot reach its database ({database}); waiting will not help until "
        f"{database} answers. Check the database pod and its Service:",
        k("-n", ns, "get", "pods", "-l", pods, "-o", "wide"),
        k("-n", ns, "get", "endpoints", database) + "  # empty: no Ready database pod behind the Service",
        k("-n", ns, "describe", "deployment", database),
        f"# once {database} is Running and Ready, restart the crashing workload:",
        k("-n", ns, "rollout", "restart", "deployment", crash.deployment),
    ]


def _oom_remedy(crash: Crash) -> list[str]:
    k, ns = crash.kubectl, crash.namespace
    return [
        f"# {crash.container} was killed for exceeding its memory limit: raise it (or free node memory)",
        k("-n", ns, "get", "deployment", crash.deployment, "-o", "jsonpath={..resources}"),
    ]


def _segfault_remedy(crash: Crash) -> list[str]:
    if crash.deployment == "metadata-grpc-deployment":
        return [
            "# the metadata server segfaults: its own check has the remedy for this host",
            "lab doctor mlmd-segfault",
        ]
    k, ns = crash.kubectl, crash.namespace
    return [
        f"# {crash.container} segfaults (exit 139): an image built for another CPU or kernel?",
        k("-n", ns, "logs", crash.pod, "-c", crash.container, "--previous", "--tail=50"),
    ]


CAUSES: tuple[CrashCause, ...] = (
    CrashCause("segfault", "segfaults (exit code 139)", _SEGFAULT, _segfault_remedy),
    CrashCause("database-unreachable", "cannot reach its database", _DATABASE, _database_remedy),
    CrashCause("out-of-memory", "killed for exceeding its memory limit", _OOM, _oom_remedy),
)


def cause_of(text: str) -> CrashCause | None:
    """The known cause whose pattern the crash's text matches, if any."""
    return next((cause for cause in CAUSES if cause.pattern.search(text)), None)


def crash_remedy(crash: Crash) -> tuple[str, list[str]]:
    """(what the crash means, the commands to run); the generic reading when no cause matches."""
    cause = cause_of(crash.text)
    if cause is not None:
        return cause.means, cause.remedy(crash)
    k, ns = crash.kubectl, crash.namespace
    return "keeps exiting", [
        f"# read why {crash.container} exits (the previous run's log, then the pod's events):",
        k("-n", ns, "logs", crash.pod, "-c", crash.container, "--previous", "--tail=50"),
        k("-n", ns, "describe", "pod", crash.pod),
    ]
