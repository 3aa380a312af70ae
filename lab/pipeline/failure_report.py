"""What a failed chain run leaves for ``lab doctor``: the recorded step, then the diagnosis.

Shared by ``lab demo`` (both modes) and ``lab e2e``, so neither imports the other. The file
contract itself (where the record lives, its fields) is :mod:`lab.doctor.chain_errors`.
"""

from __future__ import annotations

import sys

from lab.config import LabConfig
from lab.doctor import diagnose, render_text
from lab.doctor.chain_errors import clear_chain_error, record_chain_error


def record_failure(config: LabConfig, step: str, error: BaseException | str, **context: object) -> None:
    """Record the failed step for ``lab doctor``."""
    record_chain_error(config, step, error, **context)


def clear_recorded_failure(config: LabConfig) -> None:
    """Forget a recorded failure: the chain just succeeded."""
    clear_chain_error(config)


def print_diagnosis(config: LabConfig, mode: str) -> None:
    """Run the doctor after a failure; its own crash never hides the failure."""
    try:
        print(render_text(diagnose(config, mode=mode)), file=sys.stderr)
    except Exception as exc:  # the doctor is a helper here: report, never mask the chain's error
        print(f"(lab doctor could not run: {type(exc).__name__}: {exc})", file=sys.stderr)
