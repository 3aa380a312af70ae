"""The ``lab`` command line: parses arguments and calls one function per command.

Subsystems add their commands through a ``register(subparsers)`` function listed in
``COMMAND_GROUPS``; each command's handler receives ``(args, config, progress)`` and
returns an exit code.

No traceback reaches a user: every error becomes one ``ERROR:`` line (``-v`` adds the
traceback). Exit codes: 0 success, 1 the command failed, 2 the command line or the
configuration is wrong (nothing was started), 130 interrupted, 141 output pipe closed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from lab.config import ConfigError, load_config
from lab.errors import LabError, UsageError
from lab.interruption import forget_interruption, quiet_unraisable, raise_keyboard_interrupt
from lab.progress import Progress

# Modules exposing ``register(subparsers)``; adding a command group is one line here.
COMMAND_GROUPS = [
    "lab.commands.lifecycle",
    "lab.commands.tools",
    "lab.commands.manifests",
    "lab.commands.cluster",
    "lab.commands.doctor",
    "lab.commands.pipeline",
    "lab.commands.e2e",
    "lab.commands.bench",
]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a C tool killed by the closed pipe would return


class LabArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (argparse's default also prints the usage block)."""

    def error(self, message: str) -> NoReturn:
        """Print ``ERROR: <prog>: <message>`` and exit 2."""
        self.exit(EXIT_USAGE, f"ERROR: {self.prog}: {message} (see `{self.prog} --help`)\n")


def _add_common_options(parser: argparse.ArgumentParser, top: bool) -> None:
    # On subcommands too (`lab up -v`); SUPPRESS keeps a subcommand from resetting `lab -v up`.
    default = False if top else argparse.SUPPRESS
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="show a traceback with any error"
    )
    parser.add_argument("-q", "--quiet", action="store_true", default=default, help="no progress lines")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _add_common_options(sub, top=False)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, every command with its own --help."""
    parser = LabArgumentParser(
        prog="lab",
        description="A complete Kubeflow + KitOps lab on one machine: provision it, prove it works, "
        "diagnose it.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_GROUPS:
        importlib.import_module(module).register(subparsers)
    _add_common_options(parser, top=True)
    return parser


def _error(message: str, verbose: bool) -> None:
    try:
        if verbose:
            traceback.print_exc()
        print(f"ERROR: {message}", file=sys.stderr, flush=True)
    except OSError:
        pass  # stderr itself is gone: nothing left to tell


def _silence_stdout() -> None:
    # Python flushes stdout again at exit; point it at /dev/null so that flush cannot fail too.
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


INTERRUPTING = (signal.SIGINT, signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lab`` and ``python -m lab``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    progress = Progress(quiet=bool(getattr(args, "quiet", False)))
    # `kill <lab>` unwinds like Ctrl-C, so a half-started component is stopped on the way out;
    # both are remembered, so one raised where Python swallows it is raised again (lab.interruption).
    forget_interruption()
    previous = {signum: signal.signal(signum, raise_keyboard_interrupt) for signum in INTERRUPTING}
    previous_hook, sys.unraisablehook = sys.unraisablehook, quiet_unraisable
    try:
        try:
            config = load_config()
            return int(args.handler(args, config, progress))
        finally:
            for signum, handler in previous.items():  # main() may run inside another program (tests)
                signal.signal(signum, handler)
            sys.unraisablehook = previous_hook
            # A reader that went away (`lab status | head -3`) surfaces here, not at exit.
            sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        _error("interrupted", verbose)
        return EXIT_INTERRUPTED
    except (ConfigError, UsageError) as exc:
        _error(str(exc), verbose)
        return EXIT_USAGE
    except LabError as exc:
        _error(str(exc), verbose)
        return EXIT_FAILED
    except ModuleNotFoundError as exc:
        if (exc.name or "lab").partition(".")[0] == "lab":
            raise
        # The base install carries every command's --help; the chain's commands need the extra.
        _error(
            f"this command needs Python packages that are not installed (no module {exc.name!r}): "
            "python3 -m pip install -e '.[pipeline]' (the nox sessions install them themselves)",
            verbose,
        )
        return EXIT_FAILED
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        _error(f"{exc.strerror or exc}{where}", verbose)
        return EXIT_FAILED
    except Exception as exc:  # a bug of the lab: still one line, the traceback behind -v
        hint = "" if verbose else " (run with -v for the traceback)"
        _error(f"{type(exc).__name__}: {exc}{hint}", verbose)
        return EXIT_FAILED
