"""``lab tools install``, ``lab tools add`` and ``lab tools list``."""

from __future__ import annotations

import argparse
import json

from lab.config import LabConfig
from lab.engine import choose_mode
from lab.errors import UsageError
from lab.images import image_lines
from lab.progress import Progress
from lab.tools import inspect_tool, install_tools, specs_for_mode, tool_specs

MODES = ["auto", "local", "kind", "cluster", "all"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``tools install|add|list``."""
    tools = subparsers.add_parser("tools", help="pinned tools under $LAB_HOME/bin")
    actions = tools.add_subparsers(dest="tools_command", metavar="ACTION", required=True)

    install = actions.add_parser("install", help="make every tool the mode needs available (idempotent)")
    install.add_argument(
        "--mode", choices=MODES, default=None, help="which mode's tools (default: LAB_MODE/auto)"
    )
    install.add_argument("names", nargs="*", help="only these tools")
    install.add_argument(
        "--allow-missing",
        action="store_true",
        help="report tools that cannot be obtained here but exit 0 (restricted machines, CI)",
    )
    install.set_defaults(handler=run_install)

    add = actions.add_parser(
        "add",
        help="register a binary you built or downloaded (checks it runs, records its version)",
    )
    add.add_argument("name", help="the tool, e.g. kit or model-registry (see `lab tools list`)")
    add.add_argument("path", help="the binary; it is copied into $LAB_HOME/bin")
    add.add_argument(
        "--version", default="", help="its version, for binaries that cannot report one (model-registry)"
    )
    add.set_defaults(handler=run_add)

    listing = actions.add_parser("list", help="name, pinned version, found version, path, source")
    listing.add_argument("--mode", choices=MODES, default="all", help="which mode's tools (default: all)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=run_list)


def _mode(requested: str | None, config: LabConfig, progress: Progress) -> str:
    if requested == "all":
        return "all"
    mode, why = choose_mode(requested or config.mode)
    if (requested or config.mode) == "auto":
        progress.info(f"mode: {mode} ({why})")
    return mode


def run_install(args: argparse.Namespace, config: LabConfig, progress: Progress) -> int:
    """Install, then print one line per tool that could not be obtained."""
    specs = tool_specs(config)
    unknown = [name for name in args.names if name not in {s.name for s in specs}]
    if unknown:
        raise UsageError(f"unknown tool(s) {', '.join(unknown)}; known: {', '.join(s.name for s in specs)}")
    mode = _mode(args.mode, config, progress)
    in_mode = {s.name for s in specs_for_mode(config, mode)}
    elsewhere = [name for name in args.names if name not in in_mode]
    if elsewhere:
        modes = {s.name: "/".join(sorted(s.modes)) for s in specs}
        raise UsageError(
            f"{', '.join(f'{n} (a {modes[n]} tool)' for n in elsewhere)} not used in {mode} mode; "
            "ask with --mode all or the tool's mode"
        )
    _, missing = install_tools(config, mode, progress, only=args.names or None)
    for problem in missing:
        print(f"{'WARNING' if args.allow_missing else 'ERROR'}: {problem}")
    return 0 if args.allow_missing or not missing else 1


def run_add(args: argparse.Namespace, config: LabConfig, progress: Progress) -> int:
    """Register one binary; the error names what is wrong with it."""
    from lab.tools.added import add_tool

    status = add_tool(config, args.name, args.path, args.version)
    print(f"{status.name} {status.found} added: {status.path} (source: {status.source})")
    return 0


def run_list(args: argparse.Namespace, config: LabConfig, progress: Progress) -> int:
    """Show every tool of the mode without installing anything."""
    mode = _mode(args.mode, config, progress)
    rows = [inspect_tool(spec, config).as_dict() for spec in specs_for_mode(config, mode)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    columns = ("name", "pinned", "found", "source", "path")
    widths = {c: max(len(c), *(len(str(r[c] or "-")) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c] or "-").ljust(widths[c]) for c in columns))
    print("\nimages the lab names (tag, then digest):")
    for line in image_lines(config.versions):
        print(f"  {line}")
    return 0
