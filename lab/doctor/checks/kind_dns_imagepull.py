"""kind-dns-imagepull: kind nodes cannot reach image registries (DNS, VPN, nf_conntrack)."""

from __future__ import annotations

from lab.doctor.evidence import Evidence, EvidenceUnavailable
from lab.doctor.model import Check, Result
from lab.doctor.pulls import image_host, pull_failures


def detect(evidence: Evidence) -> Result:
    """Pods waiting on pulls that fail with resolver/network errors, plus host and node DNS facts."""
    failures = pull_failures(evidence)
    network = [f for f in failures if f.cause == "network"]
    unknown = [f for f in failures if f.cause == "unknown"]
    if not network and not unknown:
        return Result.ok("no image pull is failing on network errors")
    lines: list[str] = []
    for failure in (network or unknown)[:5]:
        lines.extend(failure.lines())
    host = image_host((network or unknown)[0].image)
    conntrack = evidence.kernel_module("nf_conntrack")
    loaded = {True: "loaded", False: "NOT loaded", None: "unknown"}[conntrack.loaded]
    lines.append(f"host: nf_conntrack module {loaded} ({conntrack.source})")
    lines.append(f"host: {evidence.host_lookup(host)}")
    nodes = []
    try:
        nodes = [n.metadata.name for n in evidence.nodes()]
        if nodes:
            lines.append(f"node {nodes[0]}: {evidence.node_lookup(nodes[0], host)}")
    except EvidenceUnavailable as exc:
        lines.append(f"nodes could not be asked to resolve {host}: {exc.detail}")
    node = nodes[0] if nodes else f"{evidence.config.names.cluster}-control-plane"
    remedy = [
        "# check the host's DNS and VPN first, then DNS from inside the kind node:",
        f"getent hosts {host}",
        f"docker exec {node} getent hosts {host}",
    ]
    if conntrack.loaded is False:
        remedy.append("sudo modprobe nf_conntrack  # kube-proxy in kind needs it")
    remedy += [
        "docker system prune  # clears stale networks of the engine",
        f"kind delete cluster --name {evidence.config.names.cluster} && lab up --mode kind",
    ]
    if network:
        return Result.fail(
            f"{len(network)} container(s) cannot pull: the node cannot resolve or reach {host}", lines, remedy
        )
    return Result.warn(
        f"{len(unknown)} container(s) cannot pull their image for a reason containerd did not name",
        lines,
        remedy,
    )


CHECK = Check(
    id="kind-dns-imagepull",
    title="nodes can pull images (DNS / network)",
    group="host",
    inspects="container waiting reasons and pull-failure events; host and node DNS; nf_conntrack",
    detect=detect,
    modes=frozenset({"kind"}),
)
