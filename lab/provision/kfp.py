"""Kubeflow Pipelines, standalone (``env/platform-agnostic``) through the lab's overlay."""

from __future__ import annotations

from lab.components import KFP, service
from lab.provision.actions import Context
from lab.provision.diagnosis import cluster_source, failure, run_doctor_checks
from lab.provision.kube import Deadline, Kube, wait_until
from lab.provision.kwok import NOT_APPLICABLE_ON_KWOK, health_problem
from lab.provision.manifests import ManifestStep

SELECTOR = KFP.selector  # declared in lab.components
SERVICE, PORT, HEALTH_PATH = service(KFP).name, service(KFP).port, service(KFP).health_path


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
        cluster = cluster_source(ctx)

        def stop_on_segfault(kube: Kube) -> None:
            # metadata-grpc exiting with 139 never heals by waiting: the doctor's mlmd-segfault
            # check judges it, with the remedy that fits this host's architecture and pin.
            error = failure(run_doctor_checks(ctx, ["mlmd-segfault"], cluster), "Kubeflow Pipelines")
            if error is not None:
                raise error

        kube.wait_pods_ready(namespace, SELECTOR, deadline, consecutive=3, check=stop_on_segfault)
        wait_until(lambda: self.not_ready(ctx, kube), deadline, "KFP API is not healthy")
        if health_problem(kube, namespace, SELECTOR, SERVICE, PORT, HEALTH_PATH) is None:
            ctx.progress.info(f"   health probe {SERVICE}:{PORT}{HEALTH_PATH} {NOT_APPLICABLE_ON_KWOK}")
