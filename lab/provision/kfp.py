"""Kubeflow Pipelines, standalone (``env/platform-agnostic``) through the lab's overlay."""

from __future__ import annotations

import platform

from lab.components import KFP, service
from lab.deadline import Deadline, wait_until
from lab.errors import LabError
from lab.kube import Kube
from lab.provision.actions import Context
from lab.provision.kwok import NOT_APPLICABLE_ON_KWOK, health_problem
from lab.provision.manifests import ManifestStep

SELECTOR = KFP.selector  # declared in lab.components
METADATA_SELECTOR = "component=metadata-grpc-server"
SERVICE, PORT, HEALTH_PATH = service(KFP).name, service(KFP).port, service(KFP).health_path


def metadata_segfault(kube: Kube, namespace: str) -> list[str]:
    """Evidence of metadata-grpc exiting with 139 (SIGSEGV): failure mode mlmd-segfault."""
    evidence = []
    for pod in kube.pods(namespace, METADATA_SELECTOR):
        for status in pod.status.container_statuses or []:
            last = status.last_state.terminated if status.last_state else None
            if last is not None and last.exit_code == 139:
                evidence.append(
                    f"pod {pod.metadata.name} container {status.name}: last exit code 139, "
                    f"{status.restart_count} restarts, image {status.image}"
                )
    return evidence


def segfault_error(ctx: Context, evidence: list[str]) -> LabError:
    """The mlmd-segfault finding with the remedy that fits this host."""
    versions = ctx.config.versions
    arch = platform.machine().lower()
    if arch in ("arm64", "aarch64"):
        return LabError(
            f"metadata-grpc crashes (exit 139): {versions.mlmd_image} is published for amd64 only "
            f"and this host is {arch}; KFP's metadata server cannot run here (an upstream limitation), "
            "use an amd64 machine or `lab up --mode local`",
            evidence,
        )
    if versions.mlmd_pin:
        return LabError(
            f"metadata-grpc crashes (exit 139) even with {versions.mlmd_image}:{versions.mlmd_pin}; "
            f"try an older tag, e.g. LAB_MLMD_PIN=1.12.0 lab up --mode kind",
            evidence,
        )
    return LabError(
        f"metadata-grpc crashes (exit 139): {versions.mlmd_image}:{versions.mlmd_tag} fails on this host; "
        f"pin the older server: LAB_MLMD_PIN={versions.mlmd_fallback_tag} lab up --mode kind",
        evidence,
    )


class KubeflowPipelines(ManifestStep):
    """Install KFP (cluster-scoped resources first) and wait until its API is healthy."""

    name = "Kubeflow Pipelines"
    overlays = KFP.overlay_names

    def not_ready(self, ctx: Context, kube: Kube) -> list[str]:
        """KFP pods not Running+Ready, or the API server's healthz not answering."""
        namespace = ctx.config.names.kubeflow_namespace
        problems = kube.pod_problems(namespace, SELECTOR)
        if problems:
            return problems
        problem = health_problem(kube, namespace, SELECTOR, SERVICE, PORT, HEALTH_PATH)
        return [problem] if problem else []

    def wait_ready(self, ctx: Context, kube: Kube, deadline: Deadline) -> None:
        """KFP's own readiness rule: all pods ready for several consecutive polls, then healthz."""
        namespace = ctx.config.names.kubeflow_namespace

        def stop_on_segfault(kube: Kube) -> None:
            evidence = metadata_segfault(kube, namespace)
            if evidence:
                raise segfault_error(ctx, evidence)

        kube.wait_pods_ready(namespace, SELECTOR, deadline, consecutive=3, check=stop_on_segfault)
        wait_until(lambda: self.not_ready(ctx, kube), deadline, "KFP API is not healthy")
        if health_problem(kube, namespace, SELECTOR, SERVICE, PORT, HEALTH_PATH) is None:
            ctx.progress.info(f"   health probe {SERVICE}:{PORT}{HEALTH_PATH} {NOT_APPLICABLE_ON_KWOK}")
