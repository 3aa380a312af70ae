"""``lab port-forward``: reach the kind lab's web endpoints from this machine."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from lab.config import LabConfig
from lab.progress import Progress
from lab.registry_address import InvalidRegistryAddress, RegistryAddress

if TYPE_CHECKING:
    from lab.provision.control_plane import ControlPlane


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``port-forward`` command."""
    parser = subparsers.add_parser(
        "port-forward",
        help="forward the kind lab's UIs and APIs to 127.0.0.1 until Ctrl-C",
        description="Forward KFP UI, Model Registry API and UI and the KFP object store of the kind "
        "cluster to 127.0.0.1 (ports from lab.toml / LAB_*_PORT). Ctrl-C stops every forward.",
    )
    parser.add_argument(
        "--mode", choices=["kind", "cluster"], default=None, help="which lab (default: LAB_MODE, else kind)"
    )
    add_cluster_arguments(parser)
    parser.set_defaults(handler=_port_forward)

    plane = subparsers.add_parser(
        "control-plane",
        help="a real Kubernetes control plane on this machine (kwok nodes) for --mode cluster",
        description="Start or stop etcd, kube-apiserver, kube-controller-manager, kube-scheduler and "
        "kwok (built by `lab tools install --mode cluster`) on free 127.0.0.1 ports; `start` prints "
        "the kubeconfig to pass to `lab up --mode cluster --kubeconfig`.",
    )
    plane.add_argument("action", choices=["start", "stop", "status"])
    plane.add_argument(
        "--first-port",
        type=int,
        default=0,
        help="start: use the first free ports from this one (default: any)",
    )
    plane.set_defaults(handler=_control_plane)


def _port_forward(args: argparse.Namespace, config: LabConfig, progress: Progress) -> int:
    from lab.provision.port_forward import forward_ports

    if (args.mode or config.mode) == "cluster":
        config = with_cluster_target(config, args, "cluster")
    return forward_ports(config, progress)


def _control_plane(args: argparse.Namespace, config: LabConfig, progress: Progress) -> int:
    from lab.provision import control_plane

    plane = control_plane.ControlPlane(control_plane.default_root(config))
    if args.action == "start":
        with progress.step("control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)"):
            plane = control_plane.start_control_plane(config, first_port=args.first_port)
        print(f"kubeconfig: {plane.kubeconfig} (context {plane.context})")
    elif args.action == "stop":
        stopped = control_plane.stop_control_plane(plane)
        print(f"stopped: {', '.join(stopped) or 'nothing (nothing was running)'}")
    else:
        return _control_plane_status(plane)
    return 0


def _control_plane_status(plane: ControlPlane) -> int:
    """One line per component; a recorded process that is gone is flagged (exit 1), never left out."""
    from lab.provision.control_plane import COMPONENTS

    running, dead = plane.running(), plane.dead()
    for name in COMPONENTS:
        if name in dead:
            log = plane.process(name).log_file
            print(f"{name}: DEAD (its process is gone; log {log}); `lab control-plane start` restarts it")
        elif name in running:
            print(f"{name}: running, pid {plane.process(name).pid()}")
        else:
            print(f"{name}: stopped")
    print(f"kubeconfig: {plane.kubeconfig}; ports: {plane.ports() or 'none recorded'}")
    return 1 if dead else 0


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """--kubeconfig and --context, for every command that can talk to a cluster-mode lab."""
    parser.add_argument(
        "--kubeconfig", default=None, metavar="FILE", help="cluster mode: kubeconfig file (LAB_KUBECONFIG)"
    )
    parser.add_argument(
        "--context", default=None, help="cluster mode: kubeconfig context (default: its current context)"
    )


def add_registry_argument(parser: argparse.ArgumentParser) -> None:
    """--registry, for the commands that install into (or run on) a cluster-mode lab."""
    parser.add_argument(
        "--registry",
        default=None,
        type=registry_address,
        metavar="HOST[:PORT]",
        help="cluster mode: the OCI registry the cluster's pods use (LAB_CLUSTER_REGISTRY)",
    )


def registry_address(text: str) -> str:
    """``--registry``'s type: ``HOST[:PORT]``, checked while parsing (exit 2 before any request)."""
    try:
        return str(RegistryAddress.parse(text))
    except InvalidRegistryAddress as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_manifests_argument(parser: argparse.ArgumentParser) -> None:
    """--manifests-dir, for the commands that install the stack (kind or cluster mode)."""
    parser.add_argument(
        "--manifests-dir",
        default=None,
        metavar="DIR",
        help="install from a local manifest mirror (air-gapped; LAB_MANIFESTS_DIR)",
    )


def with_manifests_dir(config: LabConfig, args: argparse.Namespace) -> LabConfig:
    """The config with --manifests-dir applied (as an absolute path), when given."""
    manifests_dir = getattr(args, "manifests_dir", None)
    if not manifests_dir:
        return config
    return dataclasses.replace(config, manifests_dir=str(Path(manifests_dir).resolve()))


def with_cluster_target(config: LabConfig, args: argparse.Namespace, mode: str) -> LabConfig:
    """The config with ``--mode cluster`` and its --kubeconfig/--context/--registry applied."""
    kubeconfig = getattr(args, "kubeconfig", None)
    return dataclasses.replace(
        config,
        mode=mode,
        kubeconfig=str(Path(kubeconfig).resolve()) if kubeconfig else config.kubeconfig,
        kube_context=getattr(args, "context", None) or config.kube_context,
        cluster_registry=getattr(args, "registry", None) or config.cluster_registry,
    )
