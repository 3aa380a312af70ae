"""``lab doctor``: diagnose the lab and print evidence and remedies.

Exit 0 when nothing fails, 1 when something does, 2 when the doctor itself could not run or
(cluster mode) could not inspect the cluster: the first line says why.
The doctor's package is imported only when the command runs: every ``lab`` command builds
this parser, and most never diagnose.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lab.cluster_record import with_recorded_flags
from lab.commands.cluster import (
    add_cluster_arguments,
    add_manifests_argument,
    add_registry_argument,
    with_cluster_target,
    with_manifests_dir,
)
from lab.config import LabConfig
from lab.progress import Progress

if TYPE_CHECKING:
    from lab.doctor import Check, Result
    from lab.doctor.fixes import Consent

# 1 (something fails) is the report's own exit code.
EXIT_OK, EXIT_DOCTOR_BROKEN = 0, 2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``doctor``."""
    doctor = subparsers.add_parser(
        "doctor",
        help="check the lab; diagnose every documented failure mode with evidence and remedy",
        description="Runs health checks and failure-mode diagnoses. Exit 0: nothing fails; 1: something "
        "fails; 2: the doctor itself could not run, or could not inspect the cluster.",
    )
    doctor.add_argument(
        "--mode",
        choices=["auto", "local", "kind", "cluster"],
        default=None,
        help="which lab to check (default: LAB_MODE or auto, resolved like `lab up`)",
    )
    add_cluster_arguments(doctor)
    # Default: what `lab up --mode cluster` recorded for this cluster and context.
    add_registry_argument(doctor)
    add_manifests_argument(doctor)
    doctor.add_argument("--json", action="store_true", help="the report as JSON")
    doctor.add_argument(
        "--fix", action="store_true", help="apply safe fixes (asks per fix on a terminal), then re-check"
    )
    doctor.add_argument("--yes", action="store_true", help="with --fix: apply without asking (CI)")
    doctor.add_argument(
        "--bundle",
        metavar="FILE",
        default=None,
        help="also write everything looked at (objects, events, logs, versions, tools) to a tar.gz; "
        "secrets are redacted",
    )
    doctor.add_argument("--list-checks", action="store_true", help="list the checks and exit")
    doctor.add_argument("checks", nargs="*", metavar="CHECK_ID", help="run only these checks")
    doctor.set_defaults(handler=run_doctor)


def list_checks() -> str:
    """One line per check: id, group, modes, fix marker, title and what it inspects."""
    from lab.doctor import ALL_CHECKS
    from lab.doctor.model import GROUPS

    width = max(len(c.id) for c in ALL_CHECKS)
    lines = []
    for check in sorted(ALL_CHECKS, key=lambda c: GROUPS.index(c.group)):
        modes = "+".join(sorted(check.modes))
        fix = "fix" if check.fix else "   "
        lines.append(
            f"{check.id:<{width}}  {check.group:<14}  {modes:<10}  {fix}  {check.title}: {check.inspects}"
        )
    return "\n".join(lines)


def _ask(check: Check, result: Result) -> bool:
    assert check.fix is not None
    sys.stderr.write(f"{check.id}: {result.summary}\n  fix: {check.fix_description}\n  apply? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _consent(args: argparse.Namespace) -> tuple[Consent, str]:
    """Who says yes to each fix, and what is recorded when nobody does."""
    if args.yes:
        return (lambda check, result: True), "declined"
    if sys.stdin.isatty():
        return _ask, "declined"
    return (lambda check, result: False), "no terminal to ask for consent; re-run with --yes"


def run_doctor(args: argparse.Namespace, config: LabConfig, progress: Progress) -> int:
    """Diagnose, optionally fix and bundle, print the report; return the exit code."""
    from lab.doctor import UnknownCheck, apply_fixes, diagnose, render_json, render_text, write_bundle

    if args.list_checks:
        print(list_checks())
        return EXIT_OK
    if args.yes and not args.fix:
        print("ERROR: --yes only applies with --fix", file=sys.stderr)
        return EXIT_DOCTOR_BROKEN
    try:
        if (args.mode or config.mode) == "cluster":
            # Remedies and --fix repeat `lab up` with every flag the lab was brought up with.
            config = with_recorded_flags(
                with_cluster_target(with_manifests_dir(config, args), args, "cluster")
            )
            from lab.cluster_sight import DOCTOR_READS, why_blind

            if blind := why_blind(config, DOCTOR_READS):
                print(f"ERROR: lab doctor could not check the cluster: {blind}", file=sys.stderr)
                return EXIT_DOCTOR_BROKEN
        report = diagnose(config, args.checks or None, args.mode)
        if args.fix:
            # Imported here: provisioning pulls in the kubernetes client, which a local-mode
            # doctor run never needs.
            from lab.provision import reprovision

            consent, refusal = _consent(args)
            report = apply_fixes(report, consent, progress, refusal=refusal, reprovision=reprovision)
        if args.bundle:
            path = write_bundle(report, Path(args.bundle))
            progress.info(f"bundle written to {path}")
    except UnknownCheck as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_DOCTOR_BROKEN
    except Exception as exc:  # the doctor itself broke: say so with exit 2, distinct from "lab broken"
        if getattr(args, "verbose", False):
            raise
        print(f"ERROR: lab doctor could not run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_DOCTOR_BROKEN
    print(render_json(report) if args.json else render_text(report))
    return report.exit_code
