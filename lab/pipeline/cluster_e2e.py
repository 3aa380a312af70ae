"""What ``lab e2e --mode cluster`` asserts besides the chain, and how it says what it could not run.

Any cluster: before the run, the platform the lab installed is asserted from the API server
alone (every component Available, the ``--registry`` advertised, the ``kit://``
ClusterStorageContainer, the pipeline secrets). Then the run and its four assertions
(:mod:`lab.pipeline.e2e_checks`) need pods that really run: on kwok nodes (the lab's own
``lab control-plane``) pods report Running and Ready while no container runs, so those steps
are reported one by one as not applicable and the e2e ends *incomplete* (exit 2), never PASS.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lab.components import KFP
from lab.config import LabConfig
from lab.kube import ApiError, Kube, context_name
from lab.pipeline.e2e_checks import CHECK_TITLES, CheckFailed
from lab.progress import Progress
from lab.provision.kwok import SIMULATED_NODE_ANNOTATION, on_simulated_nodes
from lab.provision.status import component_rows, found_installed
from lab.storage_container import storage_container

# Distinct from 1 (something failed): everything that could run passed, but not everything could.
EXIT_INCOMPLETE = 2

# The steps that need a pod to really serve: the KFP API behind the port-forward, the run's
# pods, the Model Registry and the predictor the assertions talk to.
SERVING_STEPS = ("submit pipeline run", "pipeline run", *CHECK_TITLES.values())


@dataclass
class PlatformChecks:
    """What the platform assertions established (one line each) and what failed."""

    passed: list[str] = field(default_factory=list)
    failures: list[CheckFailed] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)


def _stack_available(config: LabConfig, kube: Kube) -> str:
    # A component someone else installed is judged where it lives (lab.ownership).
    rows = component_rows(config, kube, found_installed(config, kube))
    bad = [f"{row.name}: {row.state}: {row.detail}" for row in rows if row.state != "ready"]
    if bad:
        raise CheckFailed("platform", "components not Available:", bad)
    return f"stack installed and Available ({', '.join(row.name for row in rows)})"


def _registry_wired(config: LabConfig, kube: Kube) -> str:
    try:
        hosting = kube.config_map("kube-public", "local-registry-hosting")
    except ApiError as exc:
        raise CheckFailed(
            "platform", f"ConfigMap kube-public/local-registry-hosting: {exc.status} {exc.reason}"
        ) from None
    text = (hosting.data or {}).get("localRegistryHosting.v1", "")
    if f'host: "{config.cluster_registry}"' not in text:
        raise CheckFailed(
            "platform",
            f"kube-public/local-registry-hosting does not advertise {config.cluster_registry}: {text!r}",
        )
    return f"registry wired: kube-public/local-registry-hosting advertises {config.cluster_registry}"


def _storage_container(config: LabConfig, kube: Kube) -> str:
    wanted = storage_container(config)
    name = wanted["metadata"]["name"]
    try:
        live = kube.get(wanted)
    except ApiError as exc:
        raise CheckFailed("platform", f"ClusterStorageContainer {name}: {exc.status} {exc.reason}") from None
    if live is None:
        raise CheckFailed("platform", f"ClusterStorageContainer {name}: not found")
    prefixes = [f.get("prefix") for f in (live.get("spec") or {}).get("supportedUriFormats") or []]
    if "kit://" not in prefixes:
        raise CheckFailed("platform", f"ClusterStorageContainer {name} serves {prefixes}, not kit://")
    return f"ClusterStorageContainer {name} present (kit://)"


def _secrets_present(config: LabConfig, kube: Kube) -> str:
    names, namespace = config.names, config.names.pipeline_namespace
    wanted = [names.docker_config_secret, names.model_registry_auth_secret]
    if config.registry_auth.enabled:
        wanted.append(names.kit_credentials_secret)
    missing = []
    for name in wanted:
        try:
            kube.secret(namespace, name)
        except ApiError as exc:
            missing.append(f"Secret {namespace}/{name}: {exc.status} {exc.reason}")
    if missing:
        raise CheckFailed("platform", "pipeline secrets missing:", missing)
    return f"pipeline secrets present in {namespace} ({', '.join(wanted)})"


PLATFORM_CHECKS: tuple[tuple[str, Callable[[LabConfig, Kube], str]], ...] = (
    ("check: stack installed and Available", _stack_available),
    ("check: registry wired", _registry_wired),
    ("check: ClusterStorageContainer present", _storage_container),
    ("check: pipeline secrets present", _secrets_present),
)


def check_platform(config: LabConfig, progress: Progress, kube: Kube) -> PlatformChecks:
    """Run every platform assertion as a step; each failure is collected, never raised."""
    checks = PlatformChecks()
    for title, check in PLATFORM_CHECKS:
        if check is _registry_wired and not config.cluster_registry:
            checks.not_checked.append("registry wiring: no --registry HOST:PORT given")
            progress.info(f" - {title}: not checked (no --registry HOST:PORT given)")
            continue
        try:
            with progress.step(title):
                checks.passed.append(check(config, kube))
        except CheckFailed as exc:
            checks.failures.append(exc)
    return checks


def serving_is_simulated(config: LabConfig, kube: Kube) -> bool:
    """Whether KFP's pods are on kwok nodes, where nothing the chain needs can answer."""
    return on_simulated_nodes(kube, config.names.kubeflow_namespace, KFP.selector)


def repaired_lines(repairs: Sequence[str]) -> list[str]:
    """The result's lines for what ``up`` found drifted and set back (none: no line)."""
    return [f"  repaired        {line}" for line in repairs]


def report_incomplete(
    config: LabConfig, progress: Progress, platform: PlatformChecks, repairs: Sequence[str] = ()
) -> int:
    """Say, step by step, what was not run on kwok nodes, what was asserted and repaired; exit 2."""
    why = f"not applicable on kwok nodes ({SIMULATED_NODE_ANNOTATION}): no container runs there"
    for step in SERVING_STEPS:
        progress.info(f" - {step}: {why}")
    print(
        "\n".join(
            [
                f"e2e incomplete on context {context_name(config)}: {len(SERVING_STEPS)} checks not "
                f"applicable here (kwok nodes): {', '.join(SERVING_STEPS)}",
                *(f"  asserted        {line}" for line in platform.passed),
                *(f"  not checked     {line}" for line in platform.not_checked),
                *repaired_lines(repairs),
                f"  not applicable  the pipeline run and its four assertions need pods that really "
                f"run; the {KFP.name} pods in {config.names.kubeflow_namespace} are on nodes "
                f"annotated {SIMULATED_NODE_ANNOTATION}",
                "  run `lab e2e --mode cluster` against a cluster with real nodes for a full pass",
            ]
        ),
        file=sys.stdout,
    )
    return EXIT_INCOMPLETE
