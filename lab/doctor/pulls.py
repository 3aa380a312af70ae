"""Image pull failures, sorted by cause: DNS/network, unpublished image, unwired local registry.

Three failure modes (kind-dns-imagepull, image-not-found, local-registry-unwired) start from
the same symptom — a container waiting in ``ErrImagePull``/``ImagePullBackOff`` — and differ
in the pull error containerd reports (in the waiting message and the pod's ``Failed``
events). Classifying once here keeps the three checks consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.config import LabConfig
from lab.doctor.evidence import Evidence
from lab.doctor.workloads import ContainerState, containers, event_line, events_for

PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"})
# containerd's resolver errors when the node cannot reach the registry at all.
NETWORK_MARKERS = (
    "temporary failure in name resolution",
    "no such host",
    "server misbehaving",
    "dial tcp: lookup",
    "i/o timeout",
    "tls handshake timeout",
    "network is unreachable",
    "connection reset by peer",
    "context deadline exceeded",
)
# The registry answered, and the tag/digest is not there. ghcr.io answers "denied"/401 to an
# anonymous pull of a package that does not exist, so those count as not found too.
NOT_FOUND_MARKERS = ("manifest unknown", "not found", "name unknown", "404", "denied", "401 unauthorized")

# Port of the registry inside the kind network (versions.md: `kind-registry:5000`).
IN_CLUSTER_REGISTRY_PORT = 5000


def local_registry_hosts(config: LabConfig) -> tuple[str, ...]:
    """Hosts under which pods pull from the lab's registry."""
    port = config.ports.registry
    return (
        *([config.cluster_registry] if config.cluster_registry else []),
        f"localhost:{port}",
        f"127.0.0.1:{port}",
        f"{config.names.registry_container}:{IN_CLUSTER_REGISTRY_PORT}",
    )


def image_host(image: str) -> str:
    """Registry host of an image reference (Docker Hub when the first part is not a host)."""
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


@dataclass(frozen=True)
class PullFailure:
    """A container that cannot pull its image, with the messages that say why."""

    container: ContainerState
    messages: tuple[str, ...]
    cause: str  # network | not-found | local-registry | unknown

    @property
    def image(self) -> str:
        """The image reference that does not pull."""
        return self.container.image

    def lines(self) -> list[str]:
        """Evidence: the container state and the pull error events."""
        return [self.container.line(), *self.messages]


def _cause(image: str, text: str, local_hosts: tuple[str, ...]) -> str:
    if image_host(image) in local_hosts:
        return "local-registry"
    lowered = text.lower()
    if any(marker in lowered for marker in NETWORK_MARKERS):
        return "network"
    if any(marker in lowered for marker in NOT_FOUND_MARKERS):
        return "not-found"
    return "unknown"


def pull_failures(evidence: Evidence) -> list[PullFailure]:
    """Every container waiting on an image pull, classified by cause."""
    local_hosts = local_registry_hosts(evidence.config)
    events = evidence.events()
    failures: list[PullFailure] = []
    for pod in evidence.pods():
        pod_events = [
            e
            for e in events_for(events, pod.metadata.namespace, pod.metadata.name, "Pod")
            if e.reason in ("Failed", "BackOff", "ErrImagePull") or "pull" in (e.message or "").lower()
        ]
        for cs in containers(pod):
            if cs.waiting_reason not in PULL_REASONS:
                continue
            mine = [e for e in pod_events if cs.image and cs.image in (e.message or "")] or pod_events
            messages = tuple(event_line(e) for e in mine[-3:])
            text = " ".join([cs.waiting_message, *(e.message or "" for e in mine)])
            failures.append(PullFailure(cs, messages, _cause(cs.image, text, local_hosts)))
    return failures
