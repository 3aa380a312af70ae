"""``lab doctor``: health checks and diagnoses for every documented failure mode.

Public surface:

- :func:`diagnose` runs checks and returns a :class:`Report`; :func:`render_text` /
  :func:`render_json` print it; :func:`apply_fixes` applies consented safe fixes and
  re-checks; :func:`write_bundle` writes everything looked at to a tar.gz.
- :func:`record_chain_error` is the contract for the chain (``lab demo``/``lab e2e``) to
  record a failing step for the doctor to diagnose.
- :class:`Evidence` collects facts; :class:`RecordedCluster` feeds it kubernetes client
  model objects instead of a live cluster.
"""

from __future__ import annotations

from lab.doctor.bundle import write_bundle
from lab.doctor.checks import ALL_CHECKS, UnknownCheck, checks_by_id, select
from lab.doctor.cluster import ClusterSource, LiveCluster, RecordedCluster
from lab.doctor.evidence import (
    ChainError,
    Evidence,
    EvidenceUnavailable,
    chain_error_path,
    clear_chain_error,
    read_chain_error,
    record_chain_error,
)
from lab.doctor.fixes import apply_fixes
from lab.doctor.model import Check, FixContext, FixOutcome, Result
from lab.doctor.render import render_json, render_text
from lab.doctor.runner import Outcome, Report, diagnose

__all__ = [
    "ALL_CHECKS",
    "ChainError",
    "Check",
    "ClusterSource",
    "Evidence",
    "EvidenceUnavailable",
    "FixContext",
    "FixOutcome",
    "LiveCluster",
    "Outcome",
    "RecordedCluster",
    "Report",
    "Result",
    "UnknownCheck",
    "apply_fixes",
    "chain_error_path",
    "checks_by_id",
    "clear_chain_error",
    "diagnose",
    "read_chain_error",
    "record_chain_error",
    "render_json",
    "render_text",
    "select",
    "write_bundle",
]
