"""The component declarations (lab.components) are the one home of each component's identity.

Enumerates the declared components and fails when one lacks its ``lab status`` row, its
install step (built from the declaration, with the hooks it names) or a doctor check, or
names a setting, upstream or check that does not exist; and checks that every Service, port
and forward the lab uses comes from a declaration.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.components import COMPONENTS, KFP, MODEL_REGISTRY, Component, all_forwards, service
from lab.config import LabConfig, load_config
from lab.doctor import ALL_CHECKS
from lab.pipeline import definition, e2e_checks, kfp_run
from lab.progress import Progress
from lab.provision import port_forward, ready, render, sources
from lab.provision import status as kind_status
from lab.provision.component_step import ComponentStep
from lab.provision.create import HOOKS, stack_actions
from lab.provision.manifests import ManifestStep
from lab.provision.status_rows import kind_components, unreachable_rows

CONFIG = load_config(env={"LAB_HOME": "/tmp/lab-components-unused"})
NAMES = [component.name for component in COMPONENTS]
LAB = Path(__file__).resolve().parents[1] / "lab"


def test_names_are_unique() -> None:
    assert len(set(NAMES)) == len(NAMES)


class NoClusterEngine:
    """An engine that answered ``info``; no kind cluster, no registry container."""

    name = "docker"
    binary = "docker"
    version = "fake"

    def run(self, *args: str, timeout: float = 120.0, check: bool = True) -> str:
        return ""


def test_every_component_has_a_status_row(monkeypatch: pytest.MonkeyPatch) -> None:
    # The quiet path `lab status --mode kind` takes when there is no cluster: one row per component.
    monkeypatch.setattr("lab.provision.actions.probe_engines", lambda: (NoClusterEngine(), []))
    monkeypatch.setattr(kind_status, "cluster_exists", lambda ctx: False)
    rows, _ = kind_status.collect_kind(CONFIG, Progress(quiet=True), required=True)
    assert rows is not None
    assert [row.name for row in rows] == ["kind-cluster", "kind-registry", *NAMES]
    assert [row.name for row in unreachable_rows(CONFIG, "test")][2:] == NAMES


def test_status_rows_read_the_declarations() -> None:
    for component, row in zip(COMPONENTS, kind_components(CONFIG), strict=True):
        assert row.name == component.name
        assert row.namespace == getattr(CONFIG.names, component.namespace_setting)
        assert row.version == getattr(CONFIG.versions, component.version_setting)
        assert row.deployments or row.selector, f"{component.name}: no Deployments and no selector"
        if component.service:
            assert row.url == component.service.url(row.namespace)
        if component.forwards:
            assert row.host_url is not None


@pytest.mark.parametrize("component", COMPONENTS, ids=NAMES)
def test_every_component_has_a_doctor_check(component: Component) -> None:
    checks = {check.id: check for check in ALL_CHECKS}
    assert component.checks, f"component {component.name} declares no doctor check"
    for check_id in component.checks:
        assert check_id in checks, f"{component.name}: no doctor check {check_id!r}"
        # A cluster component's check must run where the component runs.
        assert checks[check_id].modes & {"kind", "cluster"}, f"{check_id} runs in neither kind nor cluster"


def test_settings_and_upstreams_exist() -> None:
    upstreams = sources.upstreams(CONFIG)
    for component in COMPONENTS:
        assert hasattr(CONFIG.names, component.namespace_setting)
        assert hasattr(CONFIG.versions, component.version_setting)
        assert component.overlays, f"{component.name} declares no overlay"
        for overlay in component.overlays:
            for _, key, _ in overlay.resources:
                assert key in upstreams, f"{component.name}: no upstream {key!r}"
        for forward in component.forwards:
            assert hasattr(CONFIG.ports, forward.port_setting)


def test_every_component_is_installed_in_declared_order() -> None:
    # The overlays render builds and the provisioning steps apply are the declared ones, in order.
    declared = [overlay.name for component in COMPONENTS for overlay in component.overlays]
    assert [overlay.name for overlay in render.OVERLAYS] == declared
    applied = [name for step in stack_actions() if isinstance(step, ManifestStep) for name in step.overlays]
    assert applied == declared


def test_every_component_has_an_install_step_built_from_its_declaration() -> None:
    steps = [step for step in stack_actions() if isinstance(step, ComponentStep)]
    assert [step.component for step in steps] == list(COMPONENTS), "a component without its install step"
    for step in steps:
        component = step.component
        assert step.name == component.step and step.overlays == component.overlay_names
        if component.hooks:
            assert component.hooks in HOOKS, f"{component.name}: no hooks {component.hooks!r}"
            assert step.hooks is HOOKS[component.hooks]
    # A hook no declaration names is dead code.
    assert set(HOOKS) == {c.hooks for c in COMPONENTS if c.hooks}
    # The pipeline wiring comes after every component.
    names = [step.name for step in stack_actions()]
    assert names[len(COMPONENTS) :] == ["pipeline secrets", "ready"]


def test_port_forward_and_ready_read_the_declarations() -> None:
    declared = [(f.label, f.target, f.remote_port, f.port_setting) for _, f in all_forwards()]
    used = [(f.label, f.target, f.remote_port, f.port_setting) for f in port_forward.forwards(CONFIG)]
    assert used == declared
    lines = ready.summary_lines(CONFIG)
    for _, forward in all_forwards():
        assert any(f"127.0.0.1:{getattr(CONFIG.ports, forward.port_setting)}" in line for line in lines)
    for component in COMPONENTS:
        if component.service:
            namespace = getattr(CONFIG.names, component.namespace_setting)
            assert any(component.service.url(namespace) in line for line in lines)


def _target(config: LabConfig, namespace_setting: str, name: str, port: int) -> tuple[str, str, int]:
    return getattr(config.names, namespace_setting), f"svc/{name}", port


def test_pipeline_services_come_from_the_declarations() -> None:
    kfp, registry = service(KFP), service(MODEL_REGISTRY)
    assert (kfp_run.KFP_API_SERVICE, kfp_run.KFP_API_PORT) == (kfp.name, kfp.port)
    assert (definition.MODEL_REGISTRY_SERVICE, definition.MODEL_REGISTRY_SERVICE_PORT) == (
        registry.name,
        registry.port,
    )
    api = kfp_run.kfp_api_target(CONFIG)
    assert (api.namespace, api.target, api.remote_port) == _target(
        CONFIG, KFP.namespace_setting, kfp.name, kfp.port
    )
    mr = e2e_checks.model_registry_target(CONFIG)
    assert (mr.namespace, mr.target, mr.remote_port) == _target(
        CONFIG, MODEL_REGISTRY.namespace_setting, registry.name, registry.port
    )


def test_no_service_or_forward_target_is_spelled_outside_the_declarations() -> None:
    # A quoted Service name or a literal svc/ target anywhere else in lab/ is a second home.
    declared = {c.service.name for c in COMPONENTS if c.service}
    declared |= {f.target.split("/", 1)[1] for _, f in all_forwards()}
    pattern = re.compile(r"[\"'](?:svc/|deployment/)?(" + "|".join(map(re.escape, declared)) + r")[\"']")
    offenders = []
    for path in sorted(LAB.rglob("*.py")):
        if path.name == "components.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) or re.search(r"[\"']svc/[a-z]", line):
                offenders.append(f"{path.relative_to(LAB)}:{number}: {line.strip()}")
    # kfp-not-ready lists KFP's core Deployments, one of which shares the Service's name.
    offenders = [o for o in offenders if not o.startswith("doctor/checks/kfp_not_ready.py")]
    assert offenders == []
