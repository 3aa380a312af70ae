"""``lab up``, ``lab down``, ``lab status``."""

from __future__ import annotations

import argparse
import json
import sys

from lab import local
from lab.commands.cluster import (
    add_cluster_arguments,
    add_manifests_argument,
    add_registry_argument,
    with_cluster_target,
    with_manifests_dir,
)
from lab.config import LabConfig
from lab.engine import choose_mode, probe_container_engine
from lab.errors import LabError
from lab.progress import Progress
from lab.tools import install_tools

EXIT_COULD_NOT_CHECK = 2


def _components(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in local.COMPONENTS]
    if unknown or not names:
        # Checked while parsing, so nothing (not even tool resolution) happens first.
        raise argparse.ArgumentTypeError(
            f"unknown component(s) {', '.join(unknown) or repr(text)}; known: {','.join(local.COMPONENTS)}"
        )
    return names


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add up/down/status."""
    up = subparsers.add_parser("up", help="bring the lab up (idempotent; a healthy lab is a fast no-op)")
    up.add_argument(
        "--mode",
        choices=["auto", "local", "kind", "cluster"],
        default=None,
        help="auto picks kind when a container engine answers, else local; cluster installs into the "
        "cluster of --kubeconfig/--context (default: LAB_MODE or auto)",
    )
    add_cluster_arguments(up)
    add_registry_argument(up)
    up.add_argument(
        "--components",
        type=_components,
        default=local.ALL_COMPONENTS,
        metavar="A,B",
        help=f"local mode: only these components (default: {','.join(local.ALL_COMPONENTS)})",
    )
    up.add_argument(
        "--dry-run",
        action="store_true",
        help="kind mode: print the full plan (what each step would change) and change nothing",
    )
    add_manifests_argument(up)
    up.set_defaults(handler=run_up)

    down = subparsers.add_parser("down", help="stop what the lab started; data is kept unless --purge")
    down.add_argument("--purge", action="store_true", help="also delete the lab's data (registry, database)")
    down.add_argument(
        "--mode",
        choices=["cluster"],
        default=None,
        help="cluster: delete exactly the objects the lab created in the cluster of --kubeconfig/--context",
    )
    add_cluster_arguments(down)
    down.set_defaults(handler=run_down)

    status = subparsers.add_parser("status", help="each component: state, URL, pid, version")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    add_cluster_arguments(status)
    status.add_argument(
        "--mode",
        choices=["auto", "local", "kind", "cluster"],
        default=None,
        help="auto: the local components, plus the kind lab when a container engine answers and its "
        "cluster exists; local or kind: only that lab (default: LAB_MODE or auto)",
    )
    status.set_defaults(handler=run_status)


def run_up(args: argparse.Namespace, config: LabConfig, progress: Progress) -> int:
    """Resolve the mode, make its tools available, then start it."""
    mode, why = choose_mode(args.mode or config.mode)
    progress.info(f"mode: {mode} ({why})")
    config = with_manifests_dir(config, args)
    if mode == "cluster":
        from lab.provision.cluster_mode import up_cluster

        return up_cluster(with_cluster_target(config, args, mode), progress, dry_run=args.dry_run)
    if mode == "kind" or args.dry_run:
        from lab.provision import up_kind

        return up_kind(config, progress, dry_run=args.dry_run)
    _, missing = install_tools(config, "local", progress, only=_tools_of(args.components))
    if len(missing) == 1:
        raise missing[0]
    if missing:
        raise LabError(f"{len(missing)} tools could not be obtained", [str(m) for m in missing])
    statuses = local.up(config, progress, args.components)
    _print_table([s.as_dict() for s in statuses])
    return 0


def _tools_of(names: tuple[str, ...]) -> list[str]:
    return [tool for name in names if name in local.COMPONENTS for tool in local.COMPONENTS[name].tools]


def run_down(args: argparse.Namespace, config: LabConfig, progress: Progress) -> int:
    """Stop the local lab's processes and, where a container engine answers, the kind lab."""
    if (args.mode or config.mode) == "cluster":
        from lab.provision.cluster_mode import down_cluster

        return down_cluster(with_cluster_target(config, args, "cluster"), progress)
    stopped = local.down(config, progress, purge=args.purge)
    progress.info(f"local: stopped {', '.join(stopped) if stopped else 'nothing (nothing was running)'}")
    if probe_container_engine().answers:
        from lab.provision import down_kind

        return down_kind(config, progress, purge=args.purge)
    return 0


def run_status(args: argparse.Namespace, config: LabConfig, progress: Progress) -> int:
    """Print the local lab and, where there is one, the kind lab.

    Exits 0 even when things are stopped: status is a report, each row says what it found
    (`lab doctor` is the check). In cluster mode a cluster that cannot be inspected exits 2.
    """
    mode = args.mode or config.mode
    if mode == "cluster":
        return _cluster_status(args, with_cluster_target(config, args, mode))
    rows = [s.as_dict() for s in local.status(config)] if mode != "kind" else []
    if rows:
        from lab.pipeline.serving import model_server_status

        rows.append(model_server_status(config))
    kind_rows: list[dict[str, object]] | None = None
    why_no_kind = "--mode local" if mode == "local" else _no_kind_context(config, mode)
    if not why_no_kind:
        # Imported here: the kubernetes client is slow to import and local mode never needs it.
        from lab.provision.cluster_status import collect_kind_or_api

        found, why_no_kind = collect_kind_or_api(config, progress, required=mode == "kind")
        kind_rows = None if found is None else [s.as_dict() for s in found]
    if args.json:
        report = {"mode": mode, "home": str(config.home), "components": rows, "kind": kind_rows}
        print(json.dumps(report, indent=2))
        return 0
    if rows:
        print(f"local lab ({config.home}):")
        _print_table(rows)
        print()
    if kind_rows is None:
        print(f"kind lab: not shown, {why_no_kind}")
    else:
        print(f"kind lab (cluster {config.names.cluster}):")
        _print_table(kind_rows)
    return 0


def _cluster_status(args: argparse.Namespace, config: LabConfig) -> int:
    """The cluster lab's rows; exit 2, with why on the first line, when the cluster cannot be inspected."""
    from lab.cluster_sight import STATUS_READS, why_blind
    from lab.kubeconfig import context_name
    from lab.provision.cluster_status import collect_cluster

    blind = why_blind(config, STATUS_READS)
    if blind:
        print(f"ERROR: lab status could not inspect the cluster: {blind}", file=sys.stderr)
        if args.json:
            print(json.dumps({"mode": "cluster", "home": str(config.home), "error": blind}, indent=2))
        return EXIT_COULD_NOT_CHECK
    cluster_rows = [s.as_dict() for s in collect_cluster(config)]
    if args.json:
        print(json.dumps({"mode": "cluster", "home": str(config.home), "cluster": cluster_rows}, indent=2))
    else:
        print(f"cluster lab (context {context_name(config)}):")
        # No pid in a cluster; whose each component is matters more there (lab.ownership).
        _print_table(cluster_rows, ("name", "state", "owner", "url", "version"))
    # A row that could not be asked (the server went away, a read refused) is blindness too.
    return EXIT_COULD_NOT_CHECK if any(s["state"] == "unreachable" for s in cluster_rows) else 0


def _no_kind_context(config: LabConfig, mode: str) -> str:
    """In auto mode, why there is no kind lab to ask about ("" when there may be one).

    kind writes its context when it creates a cluster and removes it when it deletes one, so
    without the context neither the engine nor the API server is asked (each costs imports and
    a round trip). ``--mode kind`` always asks: it must report a cluster whose context is lost.
    """
    from lab.kubeconfig import kind_context, kubeconfig_contexts

    context = kind_context(config)
    if mode == "kind" or context in kubeconfig_contexts(config.kubeconfig):
        return ""
    return f"no kubeconfig context {context} (kind writes it when it creates the cluster)"


def _print_table(
    rows: list[dict[str, object]], columns: tuple[str, ...] = ("name", "state", "url", "pid", "version")
) -> None:
    widths = {c: max(len(c), *(len(str(r[c] if r[c] is not None else "-")) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c] if row[c] is not None else "-").ljust(widths[c]) for c in columns))
        if row["state"] not in ("ready",) or "model" in row or row.get("owner") == "found":
            print(f"    {row['detail']}")
