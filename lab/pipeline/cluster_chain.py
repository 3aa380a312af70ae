"""The chain on a cluster: one implementation for ``lab demo`` (kind mode) and ``lab e2e`` (kind, cluster).

:func:`run_cluster_chain` provisions idempotently (:func:`lab.provision.up_kind`, or in cluster
mode :func:`lab.provision.cluster_mode.up_cluster`), opens
``kubectl port-forward`` children for this run only (:mod:`lab.port_forwards`),
compiles the cluster pipeline, submits it to KFP through the forwarded API
(``svc/ml-pipeline:8888``) and waits for the run (:mod:`lab.pipeline.kfp_run`). ``lab demo``
stops there; ``lab e2e`` (``verify=True``) then asserts what the run must have left behind
(:mod:`lab.pipeline.e2e_checks`); in cluster mode it first asserts the platform, and on kwok
nodes stops there, incomplete (:mod:`lab.pipeline.cluster_e2e`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import urllib3
from kfp_server_api.exceptions import ApiException as KfpApiException

from lab.config import LabConfig
from lab.engine import probe_engines
from lab.errors import LabError
from lab.kube import ApiError, Kube, context_name
from lab.pipeline.chain import VersionPolicy
from lab.pipeline.cluster_e2e import check_platform, repaired_lines, report_incomplete, serving_is_simulated
from lab.pipeline.definition import PIPELINE_NAME, compile_pipeline
from lab.pipeline.e2e_checks import (
    CHECK_STEPS,
    ISVC_PLURAL,
    KSERVE_GROUP,
    KSERVE_VERSION,
    verify_run,
)
from lab.pipeline.failure_report import clear_recorded_failure, print_diagnosis, record_failure
from lab.pipeline.kfp_run import (
    KFP_API_SERVICE,
    RunTimedOut,
    describe_run_failure,
    kfp_api_target,
    kfp_client,
    run_state,
    summarize_steps,
    ui_run_url,
    wait_for_run,
)
from lab.pipeline.run_arguments import demo_arguments
from lab.port_forwards import kubectl_forward_argv, port_forwards
from lab.progress import Progress
from lab.provision import up_kind
from lab.provision.cluster_mode import up_cluster
from lab.tools import tool_path

# The model e2e runs under: its own Model Registry model, repository and InferenceService,
# so an e2e run never replaces (or, without --keep, deletes) what `lab demo` serves.
E2E_MODEL_NAME = "iris-classifier-e2e"
EXPERIMENT_NAME = "kubeflow-modelkit-lab"


def require_container_engine(remedy: str) -> None:
    """Stop with the engine's own answers and ``remedy`` when neither Docker nor Podman answers.

    Raises:
        LabError: No engine answers.
    """
    engine, evidence = probe_engines()
    if engine is None:
        raise LabError(
            "kind mode needs a container engine and none answers (docker, podman): install and start "
            f"Docker (https://docs.docker.com/engine/install/) or Podman, then re-run; {remedy}",
            evidence,
        )


def failing_pods(config: LabConfig, run_id: str, model_name: str) -> list[str]:
    """Pods that are neither Running+Ready nor Succeeded: the run's, the predictor's, the platform's."""
    try:
        kube = Kube.connect(config, timeout=5.0)
    except LabError as exc:
        return [f"(cannot list pods: {exc.message})"]
    names = config.names
    selections = [
        (names.pipeline_namespace, f"pipeline/runid={run_id}" if run_id else None),
        (names.pipeline_namespace, f"serving.kserve.io/inferenceservice={model_name}"),
        (names.kubeflow_namespace, ""),
        (names.kserve_namespace, ""),
    ]
    lines: list[str] = []
    for namespace, selector in selections:
        if selector is None:
            continue
        try:
            problems = kube.pod_problems(namespace, selector)
        except Exception as exc:  # listing pods is evidence only: never hide the real failure
            problems = [f"(cannot list pods: {type(exc).__name__}: {exc})"]
        # A run's failed pod also shows in the namespace-wide listing: print it once.
        lines += [line for line in (f"{namespace}: {p}" for p in problems) if line not in lines]
    return lines


def _mode(config: LabConfig) -> str:
    return "cluster" if config.mode == "cluster" else "kind"


def _where(config: LabConfig) -> str:
    if config.mode == "cluster":
        return f"context {context_name(config)}"
    return f"kind cluster {config.names.cluster}"


def _fail(
    config: LabConfig,
    step: str,
    error: BaseException | str,
    *,
    run_id: str,
    model_name: str,
    context: Mapping[str, object],
    also: Sequence[BaseException] = (),
) -> int:
    """Record ``error`` for the doctor, print it (and ``also``), the diagnosis and failing pods; 1."""
    record_failure(config, step, error, **context)
    for problem in (error, *also):
        print(f"ERROR: {problem}", file=sys.stderr)
    if run_id:
        print(
            f"  run {run_id}: {ui_run_url(config, run_id)} (while `lab port-forward` runs)", file=sys.stderr
        )
    print_diagnosis(config, _mode(config))
    pods = failing_pods(config, run_id, model_name)
    print("Pods not Running/Ready:" if pods else "No failing pods in the lab namespaces.", file=sys.stderr)
    for line in pods:
        print(f"  {line}", file=sys.stderr)
    return 1


def run_cluster_chain(
    config: LabConfig,
    progress: Progress,
    arguments: dict[str, Any],
    *,
    timeout: float,
    verify: bool = False,
    keep: bool = True,
    engine_remedy: str = "or run the chain in local mode (`LAB_MODE=local lab demo`)",
) -> int:
    """Provision the lab, run the cluster pipeline through port-forwards, optionally verify.

    Kind mode unless ``config.mode`` is ``cluster``: then the cluster of ``config.kubeconfig``
    and ``config.kube_context``, the platform asserted first (``verify``), the run pushing to
    ``config.cluster_registry`` when one is given.

    Args:
        config: The lab config.
        progress: Step lines.
        arguments: Pipeline parameters (see :func:`lab.pipeline.demo.demo_arguments`).
        timeout: Seconds to wait for the run.
        verify: Assert registry, Model Registry, InferenceService and predictions (``lab e2e``).
        keep: After a verified run, leave its InferenceService; without it, it is deleted.
        engine_remedy: What to suggest when no container engine answers.

    Returns:
        0 when the run succeeded (and every assertion held), 1 otherwise (after printing the
        error, the doctor's diagnosis and the failing pods), 2 when ``verify`` found the serving
        pods on kwok nodes: every assertion that can run there held, the rest did not run.

    Raises:
        LabError: No container engine, or a tool the run needs is not installed.
    """
    started = time.monotonic()
    cluster_mode = config.mode == "cluster"
    if not cluster_mode:
        require_container_engine(engine_remedy)
    elif config.cluster_registry:
        arguments = {**arguments, "registry": config.cluster_registry}
    # Before provisioning: a missing tool should not surface after ten minutes of work.
    kubectl = tool_path(config, "kubectl")
    model_name = str(arguments["model_name"])
    context: dict[str, object] = {"model": model_name, "version": arguments.get("version", "")}

    def fail(
        step: str, error: BaseException | str, run_id: str = "", also: Sequence[BaseException] = ()
    ) -> int:
        for line in repaired_lines(repairs):
            print(line, file=sys.stderr)
        return _fail(config, step, error, run_id=run_id, model_name=model_name, context=context, also=also)

    # What `up` found drifted and set back: said in the result, not only as progress lines.
    repairs: list[str] = []
    try:
        status = (up_cluster if cluster_mode else up_kind)(config, progress, dry_run=False, repairs=repairs)
        if status != 0:
            return status
        kube = Kube.connect(config)
        if cluster_mode and verify:
            platform = check_platform(config, progress, kube)
            if platform.failures:
                first = platform.failures[0]
                return fail("up", first, also=platform.failures[1:])
            if serving_is_simulated(config, kube):
                return report_incomplete(config, progress, platform, repairs)
        with progress.step("compile pipeline"):
            package = compile_pipeline(config, config.home / "pipelines" / f"{PIPELINE_NAME}.yaml")
    except LabError as exc:
        return fail("up", exc)

    forward_argv = kubectl_forward_argv(kubectl, context_name(config), config.kubeconfig)
    with port_forwards(forward_argv, config.log_dir) as forwards:
        try:
            api = forwards.open(kfp_api_target(config))
            with progress.step("submit pipeline run"):
                client = kfp_client(api.url)
                submitted = client.create_run_from_pipeline_package(
                    str(package),
                    arguments=arguments,
                    run_name=f"{'e2e' if verify else 'demo'} {model_name} {arguments.get('version', '')}",
                    experiment_name=EXPERIMENT_NAME,
                    enable_caching=False,
                )
        except LabError as exc:
            return fail("pipeline", exc)
        except (urllib3.exceptions.HTTPError, KfpApiException, OSError) as exc:
            return fail(
                "pipeline",
                f"KFP at {api.url} (port-forward to svc/{KFP_API_SERVICE}) refused the "
                f"run: {type(exc).__name__}: {str(exc)[:300]}",
            )
        run_id = str(submitted.run_id)
        progress.info(f"  run {run_id}: {ui_run_url(config, run_id)} (while `lab port-forward` runs)")
        context["run_id"] = run_id
        try:
            with progress.step("pipeline run"):
                run = wait_for_run(client.get_run, run_id, timeout, on_unreachable=forwards.revive)
        except RunTimedOut as exc:
            return fail("pipeline", exc, run_id)
        if run_state(run) != "SUCCEEDED":
            step, message = describe_run_failure(run)
            return fail(step, message, run_id)

        if not verify:
            clear_recorded_failure(config)
            print(
                f"Chain complete on the cluster in {time.monotonic() - started:.0f}s: "
                f"run {run_id} SUCCEEDED\n"
                f"  steps   {summarize_steps(run)}\n"
                f"  KFP UI  {ui_run_url(config, run_id)} (run `lab port-forward` to open it)"
            )
            return 0

        verified, failures = verify_run(config, progress, kube, forwards, run_id, model_name)

    if failures:
        # Every failed assertion is printed; the first is recorded for the doctor as its chain step.
        first = failures[0]
        return fail(CHECK_STEPS.get(first.check, "e2e"), first, run_id, also=failures[1:])
    clear_recorded_failure(config)
    cleanup = "kept (--keep)"
    if not keep:
        cleanup = _delete_inference_service(kube, config.names.pipeline_namespace, model_name)
    print(
        "\n".join(
            [
                f"End-to-end check passed on {_where(config)} in "
                f"{time.monotonic() - started:.0f}s: run {run_id} SUCCEEDED",
                f"  steps             {summarize_steps(run)}",
                f"  ModelKit          {verified.reference} is in the registry"
                + ("" if cluster_mode else f" ({config.registry_host})"),
                f"  Model Registry    {model_name} version {verified.version} (id {verified.version_id}), "
                f"model_source_kind kfp, model_source_id {run_id}",
                f"  InferenceService  {config.names.pipeline_namespace}/{model_name} Ready, serving "
                f"{verified.storage_uri}; {cleanup}",
                f"  predictions       V1 and V2 equal the ModelKit's model.joblib on {verified.rows} "
                f"held-out rows (accuracy {verified.accuracy:.3f})",
                f"  KFP UI            {ui_run_url(config, run_id)} (run `lab port-forward` to open it)",
                *repaired_lines(repairs),
            ]
        )
    )
    return 0


def _delete_inference_service(kube: Kube, namespace: str, name: str) -> str:
    try:
        kube.delete_custom_object(KSERVE_GROUP, KSERVE_VERSION, namespace, ISVC_PLURAL, name)
    except ApiError as exc:
        return f"could not be deleted ({exc.status} {exc.reason}); delete it with kubectl"
    return "deleted (--keep leaves it)"


def run_e2e(config: LabConfig, progress: Progress, *, timeout: float, keep: bool = False) -> int:
    """``lab e2e``: the demo's cluster run under its own model name, then the assertions.

    Kind mode, or cluster mode when ``config.mode`` is ``cluster``.
    """
    return run_cluster_chain(
        config,
        progress,
        # suffix: every e2e run registers a version of its own, so lineage points at this run.
        demo_arguments("1.0.0", VersionPolicy.SUFFIX, model_name=E2E_MODEL_NAME),
        timeout=timeout,
        verify=True,
        keep=keep,
        engine_remedy="without one, the local chain's end-to-end check is "
        "`pytest tests/e2e/test_local_chain.py` (or `lab demo` in local mode)",
    )
