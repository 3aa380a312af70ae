"""Run the pipeline on this machine with kfp.local's SubprocessRunner.

kfp.local streams every task's output through this process's stdout; here it goes to
``$LAB_HOME/logs/pipeline.log`` instead, while each task becomes a progress step (✓/✗ and
its time). When a task fails, the step and the task's own error line (the exception its
component raised, e.g. a script's ``ERROR:`` line) become a :class:`ChainStepFailed`.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lab.config import LabConfig
from lab.errors import LabError
from lab.pipeline import CHAIN_STEPS, STEP_OF_TASK
from lab.pipeline.modelkit_ref import ModelKitRef
from lab.progress import Progress

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TASK_STARTED = re.compile(r"Executing task '([^']+)'")
_TASK_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
# The last line of a Python traceback: "<dotted.ExceptionName>: <message>".
_EXCEPTION_LINE = re.compile(
    r"^(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*(?:Error|Exception|Failed|Unavailable|Taken)): (.+)$"
)


class ChainStepFailed(LabError):
    """A step of the chain failed; ``step`` names it, the message is the step's own error."""

    def __init__(self, step: str, message: str, details: list[str], log_file: Path) -> None:
        super().__init__(f"chain step {step!r} failed: {message}", [*details, f"full log: {log_file}"])
        self.step = step
        self.reason = message
        self.log_file = log_file


@dataclass
class ChainResult:
    """The hand-offs of one successful run."""

    ref: ModelKitRef
    pinned_ref: ModelKitRef
    modelkit_dir: Path
    unpacked_dir: Path
    registration: dict[str, Any]
    serving_url: str
    predictions: dict[str, Any]
    log_file: Path
    timings: dict[str, float] = field(default_factory=dict)


class _TaskStream(io.TextIOBase):
    """Receives kfp.local's output: writes it to the log, turns tasks into progress steps."""

    def __init__(self, log: TextIO, progress: Progress) -> None:
        self.log = log
        self.progress = progress
        self.pending = ""
        self.lines: dict[str, list[str]] = {}
        self.current: str | None = None
        self.step: AbstractContextManager[None] | None = None
        self.failed: str | None = None
        self.started = 0.0
        self.timings: dict[str, float] = {}

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.log.write(text)
        self.pending += text
        *complete, self.pending = self.pending.split("\n")
        for line in complete:
            self._line(_ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        self.log.flush()

    def _line(self, line: str) -> None:
        started = _TASK_STARTED.search(line)
        if started:
            self.current = started.group(1)
            self.lines[self.current] = []
            self.started = time.monotonic()
            self.step = self.progress.step(STEP_OF_TASK.get(self.current, self.current))
            self.step.__enter__()
            return
        finished = _TASK_FINISHED.search(line)
        if finished and self.step is not None:
            task = finished.group(1)
            self.timings[STEP_OF_TASK.get(task, task)] = time.monotonic() - self.started
            if finished.group(2) == "SUCCESS":
                self.step.__exit__(None, None, None)
            else:
                self.failed = finished.group(1)
                failure = RuntimeError(f"task {self.failed} failed")
                self.step.__exit__(RuntimeError, failure, None)
            self.step = None
            return
        if self.current is not None:
            self.lines[self.current].append(line)

    def close_step(self) -> None:
        """End a step left open (the run was interrupted): it did not succeed."""
        if self.step is not None:
            interrupted = RuntimeError("interrupted")
            self.step.__exit__(RuntimeError, interrupted, None)
            self.step = None

    def error_of(self, task: str) -> tuple[str, list[str]]:
        """The failed task's error line, and the lines after it (a script's own output tail)."""
        lines = [line.rstrip() for line in self.lines.get(task, [])]
        for index in range(len(lines) - 1, -1, -1):
            match = _EXCEPTION_LINE.match(lines[index].strip())
            if match:
                message = match.group(2)
                after = [
                    line.strip()
                    for line in lines[index + 1 : index + 11]
                    if line.strip() and line.strip() != f"ERROR: {message}" and line.strip("-")
                ]
                return message, after
        tail = [line for line in lines if line.strip()][-10:]
        return (tail[-1] if tail else f"task {task} failed without output"), tail[:-1]


def _read_json(path: str | Path) -> dict[str, Any]:
    with open(path) as handle:
        return dict(json.load(handle))


@dataclass
class LocalRun:
    """A finished kfp.local run: the pipeline's outputs, seconds per step, the log."""

    outputs: dict[str, Any]
    timings: dict[str, float]
    log_file: Path


def execute_locally(
    config: LabConfig, progress: Progress, pipeline: Any, arguments: dict[str, Any]
) -> LocalRun:
    """Run a pipeline function with kfp.local (pipeline root and log under ``$LAB_HOME``).

    Raises:
        ChainStepFailed: A task failed; names the chain step and carries the task's error.
    """
    from kfp import local

    config.log_dir.mkdir(parents=True, exist_ok=True)
    log_file = config.log_dir / "pipeline.log"
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(config.home / "pipeline-root"),
        raise_on_error=True,
    )
    # Private: task output may carry what the steps were given (registry user, tokens).
    log_file.touch(mode=0o600)
    log_file.chmod(0o600)
    with open(log_file, "w") as log:
        stream = _TaskStream(log, progress)
        try:
            # kfp.local prints every task's output (and its own log) on this process's stdout.
            with contextlib.redirect_stdout(stream):
                task = pipeline(**arguments)
        except RuntimeError as exc:
            stream.close_step()
            failed = stream.failed
            if failed is None:
                raise LabError(f"the local pipeline run failed: {exc}", [f"full log: {log_file}"]) from None
            message, details = stream.error_of(failed)
            raise ChainStepFailed(STEP_OF_TASK.get(failed, failed), message, details, log_file) from None
        finally:
            stream.close_step()
    return LocalRun(dict(task.outputs), dict(stream.timings), log_file)


def run_local_pipeline(
    config: LabConfig,
    progress: Progress,
    arguments: dict[str, Any],
    *,
    kit_bin_dir: str | Path = "",
) -> ChainResult:
    """Run ``train_push_register_serve`` locally; each task is a progress step.

    Args:
        config: The lab config (registry, Model Registry, model server port, ``$LAB_HOME``).
        progress: Where step lines go.
        arguments: Pipeline parameters (e.g. ``model_name``, ``version``, ``version_policy``).
        kit_bin_dir: Directory holding ``kit`` (default ``$LAB_HOME/bin``).

    Raises:
        ChainStepFailed: A step failed; names the step and carries its error.
    """
    from lab.pipeline.definition import LocalRuntime, build_pipeline

    pipeline = build_pipeline(config, "local", LocalRuntime.from_config(config, kit_bin_dir))
    run = execute_locally(config, progress, pipeline, arguments)
    outputs = run.outputs
    return ChainResult(
        ref=ModelKitRef.parse(str(outputs["ref"])),
        pinned_ref=ModelKitRef.parse(str(outputs["digest"])),
        modelkit_dir=Path(outputs["modelkit"].path),
        unpacked_dir=Path(outputs["unpacked"].path),
        registration=dict(outputs["registered_model"].metadata),
        serving_url=str(outputs["serving_url"]),
        predictions=_read_json(outputs["predictions"].path),
        log_file=run.log_file,
        timings={step: run.timings[step] for step in CHAIN_STEPS if step in run.timings},
    )
