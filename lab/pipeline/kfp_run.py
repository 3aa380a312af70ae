"""A KFP pipeline run as KFP's run API reports it: task states, outputs, failure, waiting.

Everything here reads ``V2beta1Run`` objects (as ``kfp.Client.get_run`` returns them) and judges
nothing else, so it is tested on real ``kfp_server_api`` models without a cluster.
"""

from __future__ import annotations

import datetime
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import urllib3
from kfp_server_api.exceptions import ApiException as KfpApiException

from lab.components import KFP, service
from lab.config import LabConfig
from lab.errors import LabError
from lab.pipeline import CHAIN_STEPS, STEP_OF_TASK
from lab.port_forwards import ForwardTarget

# The KFP API server's HTTP port, declared in lab.components.
KFP_API_SERVICE, KFP_API_PORT = service(KFP).name, service(KFP).port
TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "SKIPPED", "CANCELED"})


class RunTimedOut(LabError):
    """The pipeline run did not reach a final state in time (``run`` is the last state seen)."""

    def __init__(self, message: str, run: Any) -> None:
        super().__init__(message)
        self.run = run


@dataclass(frozen=True)
class StepState:
    """One task of a run, from ``V2beta1Run.run_details.task_details``."""

    name: str
    state: str
    error: str = ""
    pod_name: str = ""
    seconds: float | None = None
    ended: datetime.datetime | None = None
    # Output name -> ML Metadata artifact ids (the only outputs KFP's run API reports).
    outputs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def chain_step(self) -> str:
        """The chain step this task belongs to (``push`` for ``push-modelkit``/its driver), or ``""``."""
        name = self.name.removesuffix("-driver")
        if name in STEP_OF_TASK:
            return STEP_OF_TASK[name]
        return name if name in CHAIN_STEPS else ""


def run_state(run: Any) -> str:
    """The run's state as an upper-case string (``UNKNOWN`` when KFP has none yet)."""
    return str(getattr(run, "state", None) or "UNKNOWN").upper()


def _seconds(start: Any, end: Any) -> float | None:
    if isinstance(start, datetime.datetime) and isinstance(end, datetime.datetime):
        return max(0.0, (end - start).total_seconds())
    return None


def step_states(run: Any) -> list[StepState]:
    """Every task of a ``V2beta1Run`` (as ``kfp.Client.get_run`` returns it), in KFP's order."""
    details = getattr(run, "run_details", None)
    steps = []
    for task in getattr(details, "task_details", None) or []:
        error = getattr(task, "error", None)
        children = getattr(task, "child_tasks", None) or []
        pod_name = task.pod_name or next((c.pod_name for c in children if c.pod_name), "") or ""
        steps.append(
            StepState(
                name=task.display_name or task.task_id or "?",
                state=str(task.state or "UNKNOWN").upper(),
                error=str(getattr(error, "message", "") or ""),
                pod_name=pod_name,
                seconds=_seconds(task.start_time, task.end_time),
                ended=task.end_time if isinstance(task.end_time, datetime.datetime) else None,
                outputs={
                    name: [str(i) for i in (artifacts.artifact_ids or [])]
                    for name, artifacts in (task.outputs or {}).items()
                },
            )
        )
    return steps


def step_outputs(run: Any, step: str) -> dict[str, list[str]]:
    """The output artifact ids of a chain step (``push``, ``register``...), merged over its tasks."""
    outputs: dict[str, list[str]] = {}
    for state in step_states(run):
        if step in (state.name, state.chain_step):
            for name, ids in state.outputs.items():
                outputs.setdefault(name, []).extend(ids)
    return outputs


def describe_run_failure(run: Any) -> tuple[str, str]:
    """``(chain step, message)`` for a run that did not succeed: the failed task and its error."""
    state = run_state(run)
    # The earliest failure is the cause; the DAG and root tasks above it fail after it.
    failed = sorted(
        (s for s in step_states(run) if s.state == "FAILED"),
        key=lambda s: s.ended.timestamp() if s.ended else float("inf"),
    )
    named = [s for s in failed if s.chain_step] or failed
    run_error = str(getattr(getattr(run, "error", None), "message", "") or "")
    run_id = getattr(run, "run_id", "?")
    if not named:
        return "pipeline", f"pipeline run {run_id} ended {state}" + (f": {run_error}" if run_error else "")
    first = named[0]
    where = f" (pod {first.pod_name})" if first.pod_name else ""
    error = first.error or run_error or "no error message recorded"
    return (
        first.chain_step or "pipeline",
        f"pipeline run {run_id} ended {state}: step {first.name} {first.state}{where}: {error}",
    )


def summarize_steps(run: Any) -> str:
    """``train SUCCEEDED 41.0s, push-modelkit SUCCEEDED 12.3s, ...`` for the chain's tasks."""
    states = step_states(run)
    # KFP also reports driver and DAG tasks; when no task carries a step's name, show them all.
    chain = [s for s in states if s.chain_step and not s.name.endswith("-driver")] or states[:12]
    parts = [f"{s.name} {s.state}" + (f" {s.seconds:.1f}s" if s.seconds is not None else "") for s in chain]
    return ", ".join(parts) or "no task details reported"


def wait_for_run(
    get_run: Callable[[str], Any],
    run_id: str,
    timeout: float,
    *,
    interval: float = 5.0,
    on_unreachable: Callable[[], object] = lambda: None,
) -> Any:
    """Poll ``get_run`` until the run is final.

    A failed request (the API pod restarting, a dropped forward) calls ``on_unreachable``
    (reviving the forwards) and polling goes on until the timeout.

    Returns:
        The final ``V2beta1Run``.

    Raises:
        RunTimedOut: Not final after ``timeout`` seconds; the message says where it stood.
    """
    deadline = time.monotonic() + timeout
    run: Any = None
    unreachable = ""
    while True:
        try:
            run = get_run(run_id)
            unreachable = ""
            if run_state(run) in TERMINAL_STATES:
                return run
        except (urllib3.exceptions.HTTPError, KfpApiException, OSError) as exc:
            unreachable = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            on_unreachable()
        if time.monotonic() >= deadline:
            where = (
                f"KFP API not answering ({unreachable})"
                if unreachable
                else f"{run_state(run)}; {summarize_steps(run)}"
            )
            raise RunTimedOut(
                f"pipeline run {run_id} not finished after {timeout:.0f}s ({where}); "
                "raise --timeout / LAB_CLUSTER_TIMEOUT if images are still pulling",
                run,
            )
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))


def kfp_api_target(config: LabConfig) -> ForwardTarget:
    """The KFP API server."""
    return ForwardTarget("KFP API", config.names.kubeflow_namespace, f"svc/{KFP_API_SERVICE}", KFP_API_PORT)


def ui_run_url(config: LabConfig, run_id: str) -> str:
    """The run in the KFP UI as ``lab port-forward`` exposes it."""
    return f"http://127.0.0.1:{config.ports.kfp_ui}/#/runs/details/{run_id}"


def kfp_client(host: str) -> Any:
    """A ``kfp.Client`` for the KFP API at ``host`` (a port-forward's URL)."""
    # Imported here: kfp loads its whole DSL and compiler; reading runs needs only kfp_server_api.
    import kfp

    with warnings.catch_warnings():
        # "This client only works with KFP v2.0.0-beta.2 and later": the lab's KFP is 2.16.
        warnings.simplefilter("ignore", FutureWarning)
        return kfp.Client(host=host)
