"""The last step: say where everything is."""

from __future__ import annotations

from lab.config import LabConfig
from lab.provision.actions import Context
from lab.provision.kube import context_name


def summary_lines(config: LabConfig) -> list[str]:
    """Where the lab's services are, on the host (after `lab port-forward`) and in the cluster."""
    ports, names = config.ports, config.names
    ns = names.kubeflow_namespace
    where = "context" if config.mode == "cluster" else f"kind {names.cluster}"
    registry = (
        f"registry             {config.registry_host} from the host; localhost:{ports.registry}/... in pod "
        f"images; {names.registry_container}:5000 for kit inside pods (--plain-http)"
    )
    if config.mode == "cluster":
        registry = f"registry             {config.cluster_registry or 'none given (--registry HOST:PORT)'}"
    return [
        f"cluster              {where} (kubectl --context {context_name(config)})",
        registry,
        "run `lab port-forward` for these:",
        f"  KFP UI             http://127.0.0.1:{ports.kfp_ui}",
        f"  Model Registry API http://127.0.0.1:{ports.model_registry}/api/model_registry/v1alpha3",
        f"  Model Registry UI  http://127.0.0.1:{ports.model_registry_ui}",
        f"  KFP object store   http://127.0.0.1:{ports.object_store} (S3 API)",
        "inside the cluster:",
        f"  KFP API            http://ml-pipeline.{ns}.svc.cluster.local:8888",
        f"  Model Registry     http://model-registry-service.{ns}.svc.cluster.local:8080",
        f"  kit:// serving     ClusterStorageContainer {names.storage_container}",
        f"  pipeline secrets   in namespace {names.pipeline_namespace}",
    ]


class Ready:
    """Print the summary (always runs: it changes nothing)."""

    name = "ready"

    def is_done(self, ctx: Context) -> bool:
        """Never skipped: the summary is the step's output."""
        return False

    def execute(self, ctx: Context) -> None:
        """Print where everything is."""
        config = ctx.config
        where = f"kind cluster {config.names.cluster}"
        if config.mode == "cluster":
            where = f"context {context_name(config)}"
        print(f"Kubeflow lab is ready ({where}):", file=ctx.out)
        for line in summary_lines(ctx.config):
            print(f"  {line}", file=ctx.out)

    def plan(self, ctx: Context) -> list[str]:
        """The summary the real run ends with."""
        return summary_lines(ctx.config)
