"""The chain: train → push → register → unpack → serve → predict, as one KFP v2 pipeline.

Modules: :mod:`~lab.pipeline.steps` (the Python step logic components ship as source),
:mod:`~lab.pipeline.scripts` (the bash push/unpack/storage-initializer scripts, the one
implementation of those steps), :mod:`~lab.pipeline.components` and
:mod:`~lab.pipeline.local_components` (the KFP components per target),
:mod:`~lab.pipeline.definition` (the pipeline and its compilation),
:mod:`~lab.pipeline.modelkit_ref` (the ModelKit reference and ``kit://``),
:mod:`~lab.pipeline.chain` (the declared steps and the version policy),
:mod:`~lab.pipeline.local_run` (kfp.local runs), :mod:`~lab.pipeline.serving` and
:mod:`~lab.pipeline.model_server` (local KServe serving), :mod:`~lab.pipeline.demo`;
the cluster run: :mod:`~lab.pipeline.cluster_chain` (``lab demo`` in kind mode and ``lab e2e``)
on :mod:`~lab.port_forwards`, :mod:`~lab.pipeline.kfp_run` and
:mod:`~lab.pipeline.e2e_checks`; shared by both runs: :mod:`~lab.pipeline.run_arguments`
(the pipeline parameters) and :mod:`~lab.pipeline.failure_report` (a failed step for the doctor).

This package module stays import-light (no kfp): the CLI reads it on every command.
"""

from __future__ import annotations

from lab.pipeline.chain import CHAIN, ChainStep, VersionPolicy

__all__ = ["CHAIN", "CHAIN_STEPS", "STEP_OF_TASK", "ChainStep", "VersionPolicy"]

# Component task names in the compiled pipeline -> the chain step names (progress lines,
# timings, and what `lab doctor` is told failed), for local and cluster runs alike.
STEP_OF_TASK = {step.task: step.name for step in CHAIN}
CHAIN_STEPS = tuple(step.name for step in CHAIN)
