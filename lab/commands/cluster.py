"""``lab port-forward``: reach the kind lab's web endpoints from this machine."""

from __future__ import annotations

import argparse

from lab.config import LabConfig
from lab.progress import Progress


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``port-forward`` command."""
    parser = subparsers.add_parser(
        "port-forward",
        help="forward the kind lab's UIs and APIs to 127.0.0.1 until Ctrl-C",
        description="Forward KFP UI, Model Registry API and UI and the KFP object store of the kind "
        "cluster to 127.0.0.1 (ports from lab.toml / LAB_*_PORT). Ctrl-C stops every forward.",
    )
    parser.set_defaults(handler=_port_forward)


def _port_forward(args: argparse.Namespace, config: LabConfig, progress: Progress) -> int:
    from lab.provision.port_forward import forward_ports

    return forward_ports(config, progress)
