"""``lab e2e --mode kind|cluster``: the chain on a cluster, then assertions on what it left behind."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from lab.commands.cluster import (
    add_cluster_arguments,
    add_manifests_argument,
    add_registry_argument,
    with_cluster_target,
    with_manifests_dir,
)
from lab.config import LabConfig
from lab.progress import Progress

LOCAL_E2E = "pytest tests/e2e/test_local_chain.py"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"the timeout must be positive, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``e2e`` command."""
    parser = subparsers.add_parser(
        "e2e",
        help="run the chain on the kind cluster (or any cluster: --mode cluster) and assert its results",
        description="Provisions the lab (idempotent; kind mode needs Docker or Podman, cluster mode "
        "installs into the cluster of --kubeconfig/--context like `lab up --mode cluster`), runs the "
        "train_push_register_serve pipeline on KFP through port-forwards of its own, then asserts: the "
        "pushed ModelKit digest is in the registry; a Model Registry version has lineage to the run "
        "(model_source_kind kfp, model_source_id = run id); the InferenceService is Ready serving that "
        "digest; V1 and V2 predictions equal the ModelKit model's own. Cluster mode first asserts the "
        "platform (every component Available, --registry advertised, the kit:// "
        "ClusterStorageContainer, the pipeline secrets). Exit 0: everything passed; 1: something "
        "failed (the doctor's diagnosis and the failing pods are printed); 2: incomplete, on a cluster "
        "whose pods run on kwok (simulated) nodes, such as `lab control-plane`'s: the run and its "
        "assertions need pods that really serve, so each is listed as not applicable and only the "
        "platform is asserted. The model is iris-classifier-e2e, so `lab demo`'s model is left alone.",
    )
    parser.add_argument(
        "--mode",
        choices=("kind", "cluster", "local"),
        default=None,
        help="kind (default) or cluster (default: cluster when LAB_MODE is cluster); the local "
        f"chain's end-to-end test is `{LOCAL_E2E}`",
    )
    add_cluster_arguments(parser)
    add_registry_argument(parser)
    add_manifests_argument(parser)
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="how long to wait for the pipeline run (default: cluster_timeout, LAB_CLUSTER_TIMEOUT)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the InferenceService the run created (by default a passing e2e deletes it; "
        "the cluster is always kept, `lab down` deletes it)",
    )
    parser.set_defaults(handler=run_e2e)


def run_e2e(args: argparse.Namespace, config: LabConfig, progress: Progress) -> int:
    """Run the cluster end-to-end check; 2 for ``--mode local``, which has its own test."""
    mode = args.mode or ("cluster" if config.mode == "cluster" else "kind")
    if mode == "local":
        print(
            "lab e2e runs on a cluster (--mode kind or cluster); the local chain's end-to-end check "
            f"is `{LOCAL_E2E}` (or run it with `lab demo` in local mode)",
            file=sys.stderr,
        )
        return 2
    from lab.pipeline.cluster_chain import run_e2e as e2e

    # The chain reads its mode from the config: --mode kind wins over LAB_MODE=cluster.
    config = with_manifests_dir(config, args)
    if mode == "cluster":
        config = with_cluster_target(config, args, mode)
    else:
        config = dataclasses.replace(config, mode="kind")
    return e2e(config, progress, timeout=args.timeout or config.cluster_timeout, keep=args.keep)
