"""local-registry-unwired: the lab's registry is not connected to the kind cluster."""

from __future__ import annotations

from lab.doctor.checks._provision import reprovision, up_command
from lab.doctor.evidence import Evidence, EvidenceUnavailable
from lab.doctor.model import Check, FixContext, FixOutcome, Result
from lab.doctor.pulls import IN_CLUSTER_REGISTRY_PORT, pull_failures

HOSTING_CONFIGMAP = ("kube-public", "local-registry-hosting")


def hosts_toml_path(port: int) -> str:
    """The containerd per-registry config on each node (kind's local-registry recipe)."""
    return f"/etc/containerd/certs.d/localhost:{port}/hosts.toml"


def detect_cluster(evidence: Evidence) -> Result:
    """Cluster mode: the ConfigMap advertises the registry given with --registry; pulls from it work."""
    registry = evidence.config.cluster_registry
    if not registry:
        return Result.skipped("no --registry given to cluster mode: the lab wires no registry")
    where = "/".join(HOSTING_CONFIGMAP)
    cm = evidence.cluster_source().config_map(*HOSTING_CONFIGMAP)
    text = None if cm is None else (cm.data or {}).get("localRegistryHosting.v1")
    problems = []
    if text is None:
        problems.append(f"ConfigMap {where} (key localRegistryHosting.v1) does not exist")
    elif f'host: "{registry}"' not in text:
        problems.append(f"ConfigMap {where} does not advertise {registry}: {text.strip().splitlines()[:1]}")
    for failure in [f for f in pull_failures(evidence) if f.cause == "local-registry"][:3]:
        problems.extend(failure.lines())
    if not problems:
        return Result.ok(f"ConfigMap {where} advertises {registry}")
    return Result.fail(
        f"the registry {registry} is not wired into the cluster",
        problems,
        [
            "lab doctor --fix local-registry-unwired  # or re-run the registry step:",
            up_command(evidence.config, "cluster"),
        ],
        fixable=True,
    )


def detect(evidence: Evidence) -> Result:
    """The three wiring facts of kind's local-registry recipe, plus pods failing to pull from it."""
    if evidence.mode == "cluster":
        return detect_cluster(evidence)
    config = evidence.config
    problems: list[str] = []
    facts: list[str] = []
    in_cluster = f"{config.names.registry_container}:{IN_CLUSTER_REGISTRY_PORT}"
    keys = evidence.config_map_keys(*HOSTING_CONFIGMAP)
    if keys is None:
        problems.append(f"ConfigMap {'/'.join(HOSTING_CONFIGMAP)} does not exist")
    else:
        facts.append(f"ConfigMap {'/'.join(HOSTING_CONFIGMAP)} present (keys: {', '.join(keys)})")
    path = hosts_toml_path(config.ports.registry)
    try:
        for node in evidence.nodes():
            name = node.metadata.name
            text = evidence.node_file(name, path)
            if text is None:
                problems.append(f"node {name}: {path} is missing")
            elif in_cluster not in text:
                problems.append(f"node {name}: {path} does not point at http://{in_cluster}")
            else:
                facts.append(f"node {name}: {path} points at http://{in_cluster}")
        networks = evidence.container_networks(config.names.registry_container)
        if networks is None:
            problems.append(f"registry container {config.names.registry_container} does not exist")
        elif "kind" not in networks:
            problems.append(
                f"registry container {config.names.registry_container} is not on the kind network "
                f"(networks: {', '.join(networks) or 'none'})"
            )
        else:
            facts.append(f"registry container {config.names.registry_container} is on the kind network")
    except EvidenceUnavailable as exc:
        facts.append(f"nodes and containers could not be inspected: {exc.detail}")
    pulls = [f for f in pull_failures(evidence) if f.cause == "local-registry"]
    for failure in pulls[:3]:
        problems.extend(failure.lines())
    if not problems:
        return Result.ok(f"localhost:{config.ports.registry} is wired into the cluster", facts)
    return Result.fail(
        f"pods cannot pull localhost:{config.ports.registry}/...: the registry is not wired into the cluster",
        problems + facts,
        [
            "lab doctor --fix local-registry-unwired  # or re-run the registry step:",
            up_command(config, evidence.mode),
        ],
        fixable=True,
    )


def fix(ctx: FixContext) -> FixOutcome:
    """Re-run the mode's idempotent provisioning, which re-does only the registry wiring."""
    return reprovision(ctx, "registry wiring")


CHECK = Check(
    id="local-registry-unwired",
    title="local registry wired into kind",
    group="registry",
    inspects="ConfigMap kube-public/local-registry-hosting, nodes' containerd hosts.toml, "
    "registry container networks",
    detect=detect,
    modes=frozenset({"kind", "cluster"}),
    fix=fix,
    fix_description="re-run the registry wiring step (`lab up` is idempotent)",
)
