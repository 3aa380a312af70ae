"""``lab port-forward``: the lab's web endpoints on 127.0.0.1, until Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lab.components import all_forwards
from lab.config import LabConfig, env_variable_for
from lab.errors import LabError
from lab.kube import Kube, context_name
from lab.local.processes import port_is_free, raise_keyboard_interrupt, stop_children
from lab.progress import Progress
from lab.tools import tool_path


@dataclass(frozen=True)
class Forward:
    """One ``kubectl port-forward``: a cluster target to a local port (a ``ports`` setting)."""

    label: str
    namespace: str
    target: str
    remote_port: int
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


def _start(kubectl: Path, config: LabConfig, forward: Forward, log: IO[bytes]) -> subprocess.Popen[bytes]:
    # Cluster mode may name its own kubeconfig; kind's context is in the default one.
    kubeconfig = ["--kubeconfig", config.kubeconfig] if config.kubeconfig else []
    argv = [
        str(kubectl),
        *kubeconfig,
        "--context",
        context_name(config),
        "--namespace",
        forward.namespace,
        "port-forward",
        "--address",
        "127.0.0.1",
        forward.target,
        f"{forward.local_port(config)}:{forward.remote_port}",
    ]
    # Own session: Ctrl-C reaches only this process, which then stops every child in order.
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


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
    config.log_dir.mkdir(parents=True, exist_ok=True)
    logs = {f.label: config.log_dir / f"port-forward-{f.port_setting}.log" for f in forwards(config)}
    handles = {label: path.open("ab") for label, path in logs.items()}
    children: dict[str, subprocess.Popen[bytes]] = {}
    previous = signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    try:
        for forward in forwards(config):
            children[forward.label] = _start(kubectl, config, forward, handles[forward.label])
            progress.info(f"  {forward.label:<24} http://127.0.0.1:{forward.local_port(config)}")
        progress.info(f"forwarding (logs in {config.log_dir}); Ctrl-C to stop")
        while True:
            time.sleep(1.0)
            for forward in forwards(config):
                child = children[forward.label]
                if child.poll() is not None:
                    tail = logs[forward.label].read_text(errors="replace").strip().splitlines()[-1:]
                    progress.info(f"  {forward.label}: kubectl exited ({' '.join(tail)}); restarting")
                    time.sleep(2.0)
                    children[forward.label] = _start(kubectl, config, forward, handles[forward.label])
    except KeyboardInterrupt:
        progress.info("stopping port-forwards")
        return 0
    finally:
        stop_children(list(children.values()))
        for handle in handles.values():
            handle.close()
        signal.signal(signal.SIGTERM, previous)
