"""``lab manifests pull`` and ``lab manifests where``: the pinned upstream manifest mirror."""

from __future__ import annotations

import argparse
from pathlib import Path

from lab.commands.cluster import add_manifests_argument, with_manifests_dir
from lab.config import LabConfig
from lab.progress import Progress


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``manifests pull|where``."""
    manifests = subparsers.add_parser("manifests", help="the pinned upstream manifests (an offline mirror)")
    actions = manifests.add_subparsers(dest="manifests_command", metavar="ACTION", required=True)
    pull = actions.add_parser(
        "pull",
        help="fetch the pinned upstream manifest trees with git into $LAB_HOME/manifests (or DIR)",
        description="Clone each upstream repository at its pinned tag (only the trees the lab keeps), "
        "check the tag is the pinned commit, and write <repo>-<tag>/<tree> into DIR (default "
        "$LAB_HOME/manifests, where `lab up` and `lab e2e` look). A complete, unchanged mirror is a "
        "no-op; a failed pull leaves DIR as it was. Air-gapped: git config --global "
        "url.<mirror>/.insteadOf https://github.com/",
    )
    pull.add_argument("dir", nargs="?", default=None, metavar="DIR", help="default: $LAB_HOME/manifests")
    pull.set_defaults(handler=run_pull)
    where = actions.add_parser("where", help="which mirror `lab up` and `lab e2e` would install from")
    add_manifests_argument(where)
    where.set_defaults(handler=run_where)


def run_pull(args: argparse.Namespace, config: LabConfig, progress: Progress) -> int:
    """Pull, then say where the mirror is and whether anything changed."""
    from lab.manifests_pull import pull_manifests
    from lab.upstream_manifests import pulled_manifests_dir

    target = Path(args.dir).resolve() if args.dir else pulled_manifests_dir(config)
    fetched = pull_manifests(config, target, progress)
    state = f"fetched {', '.join(fetched)}" if fetched else "already complete and verified, nothing fetched"
    print(f"manifests: {target} ({state})")
    return 0


def run_where(args: argparse.Namespace, config: LabConfig, progress: Progress) -> int:
    """Print the mirror the lookup order finds, or that the pinned GitHub refs are used."""
    from lab.upstream_manifests import manifest_mirror, manifest_places

    mirror = manifest_mirror(with_manifests_dir(config, args))
    print(f"manifests: {mirror if mirror else 'none found: pinned GitHub refs (network needed)'}")
    print(f"looked in: {manifest_places(config)}")
    return 0
