"""``lab port-forward``: the lab's web endpoints on 127.0.0.1, until Ctrl-C (on :mod:`lab.port_forwards`)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from lab.components import all_forwards
from lab.config import LabConfig, env_variable_for
from lab.errors import LabError
from lab.kube import Kube, context_name
from lab.local.processes import port_is_free
from lab.port_forwards import ForwardTarget, kubectl_forward_argv, port_forwards
from lab.progress import Progress
from lab.tools import tool_path


@dataclass(frozen=True)
class Forward(ForwardTarget):
    """One ``kubectl port-forward``: a cluster target to a local port (a ``ports`` setting)."""

    port_setting: str

    @property
    def env_variable(self) -> str:
        """The ``LAB_*`` variable that moves this forward's local port."""
        return env_variable_for("ports", self.port_setting)

    def local_port(self, config: LabConfig) -> int:
        """The configured local port."""
        port: int = getattr(config.ports, self.port_setting)
        return port


def forwards(config: LabConfig) -> list[Forward]:
    """The endpoints the lab forwards: every component's declared forwards (:mod:`lab.components`)."""
    return [
        Forward(
            f.label,
            getattr(config.names, component.namespace_setting),
            f.target,
            f.remote_port,
            f.port_setting,
        )
        for component, f in all_forwards()
    ]


def forward_ports(config: LabConfig, progress: Progress) -> int:
    """Forward every endpoint until interrupted; restarts a forward whose pod went away."""
    busy = [f for f in forwards(config) if not port_is_free(f.local_port(config))]
    if busy:
        raise LabError(
            "local ports already in use; stop what holds them or choose other ports",
            [f"{f.label}: 127.0.0.1:{f.local_port(config)} (set {f.env_variable})" for f in busy],
        )
    kubectl = tool_path(config, "kubectl")
    Kube.connect(config)
    argv = kubectl_forward_argv(kubectl, context_name(config), config.kubeconfig)
    with port_forwards(argv, config.log_dir, log_prefix="port-forward") as running:
        try:
            for forward in forwards(config):
                running.open(forward, forward.local_port(config), wait=False)
                progress.info(f"  {forward.label:<24} http://127.0.0.1:{forward.local_port(config)}")
            progress.info(f"forwarding (logs in {config.log_dir}); Ctrl-C to stop")
            while True:
                time.sleep(1.0)
                for label in running.revive():
                    progress.info(f"  {label}: kubectl exited (its log is in {config.log_dir}); restarted")
        except KeyboardInterrupt:
            progress.info("stopping port-forwards")
            return 0
