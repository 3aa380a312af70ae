"""The last step: say where everything is."""

from __future__ import annotations

from lab.components import COMPONENTS, all_forwards
from lab.config import LabConfig
from lab.kube import context_name
from lab.provision.actions import Context


def summary_lines(config: LabConfig) -> list[str]:
    """Where the lab's services are, on the host (after `lab port-forward`) and in the cluster."""
    ports, names = config.ports, config.names
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
        *(
            f"  {f.summary:<18} http://127.0.0.1:{getattr(ports, f.port_setting)}{f.summary_suffix}"
            for _, f in all_forwards()
        ),
        "inside the cluster:",
        *(
            f"  {c.service.summary:<18} {c.service.url(getattr(names, c.namespace_setting))}"
            for c in COMPONENTS
            if c.service
        ),
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
