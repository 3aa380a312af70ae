"""``lab demo``: bring the lab up and run the whole chain, then say what happened.

Local mode runs the pipeline with kfp.local and prints every hand-off (ModelKit reference
and digest, Model Registry ids, serving URL, V1/V2 predictions, time per step). Kind mode
submits the compiled pipeline to the cluster's KFP and waits for the run. A failure names
the step and its error, is recorded for ``lab doctor`` and, where the doctor is present,
is followed by its diagnosis.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from lab import local
from lab.config import LabConfig
from lab.engine import choose_mode
from lab.errors import LabError
from lab.local.model_server_process import model_server_process, stop_model_server
from lab.pipeline.chain import CHAIN, VersionPolicy
from lab.pipeline.failure_report import clear_recorded_failure, print_diagnosis, record_failure
from lab.pipeline.local_run import ChainResult, ChainStepFailed, run_local_pipeline
from lab.pipeline.registry_access import check_registry_access, manifest_digest
from lab.pipeline.run_arguments import demo_arguments
from lab.pipeline.serving import standby_import_seconds, start_standby, stop_standby
from lab.progress import Progress
from lab.tools import ToolUnavailable, install_tools, tool_path


def install_mode_tools(config: LabConfig, mode: str, progress: Progress) -> None:
    """``lab tools install --mode <mode>``: a fresh clone's demo obtains what it needs itself.

    Raises:
        ToolUnavailable: The first tool no source could provide (its one line names every
            source tried and the ``lab tools add`` command); the others follow as details.
    """
    _, missing = install_tools(config, mode, progress)
    if missing:
        raise ToolUnavailable(str(missing[0]), [str(problem) for problem in missing[1:]])


def bring_up_local(config: LabConfig, progress: Progress) -> None:
    """``lab up --mode local``: the local-mode tools, then registry, database and Model Registry."""
    install_mode_tools(config, "local", progress)
    local.up(config, progress)


def render_summary(
    config: LabConfig, result: ChainResult, model_name: str, elapsed: float, once: bool
) -> str:
    """The demo's closing report."""
    registration = result.registration
    predictions = result.predictions
    url = result.serving_url
    timings = result.timings
    steps = ", ".join(f"{step.name} {timings[step.name]:.1f}s" for step in CHAIN if step.name in timings)
    sample = predictions["direct"][:8]
    lines = [
        f"Chain complete in {elapsed:.1f}s ({steps})",
        f"  ModelKit        {result.ref}",
        f"  digest          {result.pinned_ref}",
        f"  Model Registry  model {registration.get('modelName')} id {registration.get('modelID')}, "
        f"version {registration.get('versionName')} id {registration.get('versionID')} "
        f"({'kept: same digest' if registration.get('action') == 'reuse' else 'registered'})",
        f"                  {registration.get('modelRegistryURL')}",
        f"                  artifact URI {registration.get('uri')}",
        f"  serving         {url}/v1/models/{model_name}:predict (V1), "
        f"{url}/v2/models/{model_name}/infer (V2)",
        f"  predictions     V1 {predictions['v1'][:8]}... V2 {predictions['v2'][:8]}... "
        f"equal the model's own {sample}... on all {predictions['rows']} held-out rows "
        f"(accuracy {predictions['accuracy']:.3f})",
        f"  log             {result.log_file}",
    ]
    if once:
        lines.append("  model server    stopped (--once)")
    else:
        lines += [
            f"  model server    running (pid file {model_server_process(config).pid_file}); "
            "stop it with `lab pipeline stop-server`",
            "  try it          curl -s -H 'Content-Type: application/json' "
            f"-d '{{\"instances\": [[5.1, 3.5, 1.4, 0.2]]}}' {url}/v1/models/{model_name}:predict",
        ]
    return "\n".join(lines)


def run_demo(
    config: LabConfig,
    progress: Progress,
    *,
    once: bool = False,
    version_policy: VersionPolicy = VersionPolicy.SUFFIX,
    version: str = "1.0.0",
) -> int:
    """Bring the lab up (auto mode), run the chain, print the summary; 1 on a failed step.

    Raises:
        ToolUnavailable: A tool of the mode cannot be obtained (installed first: nothing else
            can work without them).
        LabError: The lab could not be brought up.
    """
    started = time.monotonic()
    mode, why = choose_mode(config.mode)
    progress.info(f"mode: {mode} ({why})")
    install_mode_tools(config, mode, progress)
    kit = tool_path(config, "kit")
    arguments = demo_arguments(version, version_policy)
    if mode == "kind":
        return run_on_cluster(config, progress, arguments)
    model_name = arguments["model_name"]
    # The model server's imports take seconds and need nothing from the lab or the chain: they
    # run while the lab comes up and the chain trains, pushes and registers; the serve step
    # hands it the model.
    standby_started = time.time()
    standby = start_standby(config, model_name)
    try:
        try:
            local.up(config, progress)
            with progress.step("registry credentials"):
                check_registry_access(config.registry_host, config.docker_config_dir)
        except LabError as exc:
            record_failure(config, "up", exc)
            raise
        context = {
            "model": model_name,
            "version": version,
            "reference": f"{config.registry_host}/{arguments['repository']}:{version}",
        }
        chain_started = time.time()
        try:
            result = run_local_pipeline(config, progress, arguments, kit_bin_dir=kit.parent)
            registered = manifest_digest(result.ref, config.docker_config_dir)
            if result.pinned_ref.digest != registered:
                raise ChainStepFailed(
                    "push",
                    f"the registry reports {registered} for {result.ref}, "
                    f"the push step reported {result.pinned_ref}",
                    [],
                    result.log_file,
                )
        except ChainStepFailed as exc:
            record_failure(config, exc.step, exc.reason, **context)
            print(f"ERROR: {exc}", file=sys.stderr)
            print_diagnosis(config, "local")
            return 1
    finally:
        standby_seconds = standby_import_seconds(config, standby_started) if standby else None
        # A standby the chain never reached (up or a step failed, or Ctrl-C) is stopped.
        stop_standby(config, model_name)
    if standby_seconds is not None:
        report_standby(progress, standby_seconds, chain_started - standby_started, result)
    clear_recorded_failure(config)
    if once:
        stop_model_server(config)
    print(render_summary(config, result, arguments["model_name"], time.monotonic() - started, once))
    return 0


STANDBY_STEP = "model server start-up"


def report_standby(progress: Progress, seconds: float, head_start: float, result: ChainResult) -> None:
    """The standby's own start-up time, as a step of its own, and what it ran beside.

    ``head_start``: seconds from its start to the chain's (``lab up`` ran meanwhile).
    """
    beside, elapsed = (["lab up"] if head_start > 0.05 else []), head_start
    for step in CHAIN:
        if elapsed >= seconds or step.name not in result.timings:
            break
        beside.append(step.name)
        elapsed += result.timings[step.name]
    progress.overlapped(STANDBY_STEP, seconds, f"alongside {', '.join(beside) or 'the chain'}")
    result.timings[STANDBY_STEP] = seconds


def run_on_cluster(config: LabConfig, progress: Progress, arguments: dict[str, Any]) -> int:
    """Kind mode: provision (idempotent), run the cluster pipeline through its own port-forwards.

    The same run as ``lab e2e`` (:func:`lab.pipeline.cluster_chain.run_cluster_chain`), without
    the assertions; nothing needs ``lab port-forward`` running.
    """
    # Imported here: the kubernetes client and provisioning load only when the chain runs in kind mode.
    from lab.pipeline.cluster_chain import run_cluster_chain

    # A first run pulls every image and pip-installs each step's packages: allow an hour.
    return run_cluster_chain(config, progress, arguments, timeout=max(config.cluster_timeout, 3600.0))
