"""``lab bench --compare FILE``: each row of this run against the same row of an earlier results file.

Both sides are results files as :func:`lab.bench.write_results` writes them. A row is compared
on the figure its goal is set on (the median, or e.g. the served p50 over the direct call)
when both files carry that figure, else on the median; the ratio is now / earlier, so below
1 is faster. Rows found on one side only, or skipped on either, are listed with why there is
no ratio.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import UsageError


@dataclass(frozen=True)
class RowComparison:
    """One row of the comparison: the figure compared, both values, their ratio (or why none)."""

    name: str
    figure: str
    earlier: float | None
    now: float | None
    unit: str
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """Now / earlier (None when either side has no number, or the earlier one is 0)."""
        if self.earlier is None or self.now is None or self.earlier == 0:
            return None
        return self.now / self.earlier


def read_results(path: Path) -> list[dict[str, Any]]:
    """The ``results`` list of a results file.

    Raises:
        UsageError: The file is missing, not JSON, or not a results file.
    """
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read the results file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not JSON ({exc}); pass a file `lab bench` wrote") from None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list) or not all(isinstance(r, dict) and "name" in r for r in results):
        raise UsageError(f"{path} is not a `lab bench` results file (no results list of named rows)")
    return results


def _figure(row: dict[str, Any], name: str) -> float | None:
    value = row.get("median") if name == "median" else (row.get("extra") or {}).get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _figure_name(earlier: dict[str, Any], now: dict[str, Any]) -> str:
    # The goal's figure when both sides measured it; files from before goals existed have only medians.
    wanted = now.get("headline_of") or "median"
    if wanted != "median" and _figure(earlier, wanted) is not None and _figure(now, wanted) is not None:
        return str(wanted)
    return "median"


def _unit(row: dict[str, Any], figure: str) -> str:
    # A goal's own figure names its unit last ("over direct p50 ms"); a median has the row's unit.
    return figure.rsplit(" ", 1)[-1] if figure != "median" and " " in figure else str(row.get("unit", ""))


def compare(earlier: list[dict[str, Any]], now: list[dict[str, Any]]) -> list[RowComparison]:
    """Every row of ``now`` (in its order), then the rows only ``earlier`` has."""
    before = {row["name"]: row for row in earlier}
    rows = []
    for row in now:
        name = row["name"]
        old = before.pop(name, None)
        if old is None:
            rows.append(
                RowComparison(name, "median", None, _figure(row, "median"), row.get("unit", ""), "new row")
            )
            continue
        figure = _figure_name(old, row)
        skipped = [side for side, r in (("earlier", old), ("now", row)) if r.get("skipped")]
        note = f"skipped {' and '.join(skipped)}" if skipped else ""
        rows.append(
            RowComparison(name, figure, _figure(old, figure), _figure(row, figure), _unit(row, figure), note)
        )
    for name, old in before.items():
        rows.append(
            RowComparison(
                name, "median", _figure(old, "median"), None, old.get("unit", ""), "not in this run"
            )
        )
    return rows


def _number(value: float | None, unit: str) -> str:
    return "–" if value is None else f"{value:.3f} {unit}".strip()


def comparison_table(rows: list[RowComparison], earlier_file: Path) -> str:
    """The comparison as a Markdown table."""
    lines = [
        f"| measurement (vs {earlier_file}) | figure | earlier | now | now/earlier |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = row.ratio
        shown = f"{ratio:.2f}×" if ratio is not None else (row.note or "–")
        lines.append(
            f"| {row.name} | {row.figure} | {_number(row.earlier, row.unit)} | "
            f"{_number(row.now, row.unit)} | {shown} |"
        )
    return "\n".join(lines)
