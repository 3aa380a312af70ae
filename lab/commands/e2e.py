"""``lab e2e --mode kind``: the chain on the kind cluster, then assertions on what it left behind."""

from __future__ import annotations

import argparse
import sys

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
        help="run the chain on the kind cluster and assert its results (needs Docker or Podman)",
        description="Provisions the kind lab (idempotent), runs the train_push_register_serve pipeline "
        "on KFP through port-forwards of its own, then asserts: the pushed ModelKit digest is in the "
        "registry; a Model Registry version has lineage to the run (model_source_kind kfp, "
        "model_source_id = run id); the InferenceService is Ready serving that digest; V1 and V2 "
        "predictions equal the ModelKit model's own. On failure prints the doctor's diagnosis and the "
        "failing pods, exit 1. The model is iris-classifier-e2e, so `lab demo`'s model is left alone.",
    )
    parser.add_argument(
        "--mode",
        choices=("kind", "local"),
        default="kind",
        help=f"kind (the only mode of lab e2e); the local chain's end-to-end test is `{LOCAL_E2E}`",
    )
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
    if args.mode != "kind":
        print(
            f"lab e2e runs on the kind cluster only; the local chain's end-to-end check is `{LOCAL_E2E}` "
            "(or run it with `lab demo` in local mode)",
            file=sys.stderr,
        )
        return 2
    from lab.pipeline.cluster_chain import run_e2e as e2e

    return e2e(config, progress, timeout=args.timeout or config.cluster_timeout, keep=args.keep)
