"""Reports as text (grouped by component, ✓ / ! / ✗ / -) and as JSON."""

from __future__ import annotations

import json

from lab.doctor.model import GROUPS, SYMBOLS
from lab.doctor.runner import Outcome, Report

INDENT = "      "


def _outcome_lines(outcome: Outcome, width: int) -> list[str]:
    result = outcome.result
    summary = result.summary if result.status != "skipped" else f"skipped: {result.summary}"
    if outcome.crashed:
        summary = "(crashed) " + summary
    timing = f"  (slow: {outcome.elapsed:.1f}s)" if outcome.slow else ""
    lines = [f"  {SYMBOLS[result.status]} {outcome.check.id:<{width}}  {summary}{timing}"]
    if result.status in ("fail", "warn"):
        if result.evidence:
            lines.append(f"{INDENT}evidence:")
            lines.extend(f"{INDENT}  {line}" for line in result.evidence)
        if result.remedy:
            lines.append(f"{INDENT}remedy:")
            lines.extend(f"{INDENT}  {line}" for line in result.remedy)
        if result.fixable and outcome.check.fix is not None and outcome.fix is None:
            lines.append(f"{INDENT}safe fix available: lab doctor --fix {outcome.check.id}")
    if outcome.fix is not None:
        verdict = "fix applied" if outcome.fix.applied else "fix not applied"
        lines.append(f"{INDENT}{verdict}: {outcome.fix.message}")
    return lines


def summary_line(report: Report) -> str:
    """``21 checks: 12 ok, 1 warning, 2 failed, 6 skipped in 1.2s``."""
    counts = report.counts()
    warnings = "warning" if counts["warn"] == 1 else "warnings"
    line = (
        f"{len(report.outcomes)} checks: {counts['ok']} ok, {counts['warn']} {warnings}, "
        f"{counts['fail']} failed, {counts['skipped']} skipped in {report.elapsed:.1f}s"
    )
    crashed = [o.check.id for o in report.outcomes if o.crashed]
    if crashed:
        line += f"; crashed: {', '.join(crashed)}"
    slow = [o.check.id for o in report.outcomes if o.slow]
    if slow:
        line += f"; slow: {', '.join(slow)}"
    return line


def render_text(report: Report) -> str:
    """The human report: one line per check grouped by component, details under problems only."""
    width = max((len(o.check.id) for o in report.outcomes), default=0)
    lines = [f"lab doctor: mode {report.mode} ({report.mode_reason}); LAB_HOME {report.home}"]
    for group in GROUPS:
        members = [o for o in report.outcomes if o.check.group == group]
        if not members:
            continue
        lines.append("")
        lines.append(group)
        for outcome in members:
            lines.extend(_outcome_lines(outcome, width))
    lines.append("")
    lines.append(summary_line(report))
    return "\n".join(lines)


def render_json(report: Report) -> str:
    """The same report as JSON."""
    return json.dumps(report.as_dict(), indent=2)
