"""``lab demo`` and ``lab pipeline compile|stop-server``."""

from __future__ import annotations

import argparse
from pathlib import Path

from lab.config import LabConfig
from lab.pipeline import VersionPolicy
from lab.progress import Progress


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``demo`` and ``pipeline``."""
    demo = subparsers.add_parser(
        "demo",
        help="bring the lab up and run the chain: train, push, register, unpack, serve, predict",
        description="Brings the lab up (auto mode), runs the train_push_register_serve pipeline and "
        "prints the ModelKit reference and digest, the Model Registry ids, the serving URL, sample V1/V2 "
        "predictions and the time per step. The model server is left running unless --once.",
    )
    demo.add_argument("--once", action="store_true", help="stop the model server when the chain is done")
    demo.add_argument(
        "--version-policy",
        choices=[policy.value for policy in VersionPolicy],
        default=VersionPolicy.SUFFIX.value,
        help="when the model version is already registered: suffix (default: register "
        "<version>-<run id>, so a second demo works), fail, or reuse (keep it when it is the same "
        "ModelKit digest)",
    )
    demo.add_argument("--version", default="1.0.0", help="model version and ModelKit tag (default: 1.0.0)")
    demo.set_defaults(handler=run_demo)

    pipeline = subparsers.add_parser("pipeline", help="the KFP pipeline of the chain")
    actions = pipeline.add_subparsers(dest="pipeline_command", metavar="ACTION", required=True)
    compile_ = actions.add_parser(
        "compile",
        help="compile the cluster pipeline (KitOps components, secrets mounted) to KFP YAML",
    )
    compile_.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("train-push-register-serve.yaml"),
        help="where to write the YAML (default: ./train-push-register-serve.yaml)",
    )
    compile_.set_defaults(handler=run_compile)
    stop = actions.add_parser("stop-server", help="stop the local model server `lab demo` left running")
    stop.set_defaults(handler=run_stop_server)


def run_demo(args: argparse.Namespace, config: LabConfig, progress: Progress) -> int:
    """Run the chain end to end."""
    from lab.pipeline.demo import run_demo as demo

    policy = VersionPolicy(args.version_policy)  # the edge: from here on it travels typed
    return demo(config, progress, once=args.once, version_policy=policy, version=args.version)


def run_compile(args: argparse.Namespace, config: LabConfig, progress: Progress) -> int:
    """Write the compiled cluster pipeline."""
    from lab.pipeline.definition import compile_pipeline

    with progress.step("compile pipeline"):
        path = compile_pipeline(config, args.output)
    print(path)
    return 0


def run_stop_server(args: argparse.Namespace, config: LabConfig, progress: Progress) -> int:
    """Stop the lab's model server (only the one the lab started)."""
    from lab.local.model_server_process import stop_model_server

    print("model server stopped" if stop_model_server(config) else "no model server was running")
    return 0
