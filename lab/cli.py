"""The ``lab`` command line: parses arguments and calls one function per command.

Subsystems add their commands through a ``register(subparsers)`` function listed in
``COMMAND_GROUPS``; each command's handler receives ``(args, config, progress)`` and
returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from lab.config import ConfigError, load_config
from lab.errors import LabError
from lab.progress import Progress

# Modules exposing ``register(subparsers)``; adding a command group is one line here.
COMMAND_GROUPS = [
    "lab.commands.lifecycle",
    "lab.commands.tools",
    "lab.commands.cluster",
    "lab.commands.doctor",
    "lab.commands.pipeline",
    "lab.commands.e2e",
    "lab.commands.bench",
]


def build_parser() -> argparse.ArgumentParser:
    """The full parser, every command with its own --help."""
    parser = argparse.ArgumentParser(
        prog="lab",
        description="A complete Kubeflow + KitOps lab on one machine: provision it, prove it works, "
        "diagnose it.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_GROUPS:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lab`` and ``python -m lab``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    progress = Progress(quiet=args.quiet)
    try:
        config = load_config()
        return int(args.handler(args, config, progress))
    except (LabError, ConfigError) as exc:
        if args.verbose:
            raise
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
