"""``lab bench``: the lab's speed against its peers and floors, as ratios from one run.

A benchmark, not a test: it never fails on a number. Each measurement is repeated and
reported as min/median; a measurement that cannot run here is reported as skipped with
the reason (e.g. the one-line error of a tool that cannot be obtained).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lab import bench_transfer as transfer
from lab import local
from lab.atomic_files import atomic_write
from lab.bench_measurement import Measurement, one_line
from lab.config import PROJECT_ROOT, LabConfig, env_variable_for
from lab.errors import LabError
from lab.local.model_server_process import stop_model_server
from lab.pipeline.chain import CHAIN, VersionPolicy
from lab.pipeline.serving import start_model_server
from lab.progress import Progress
from lab.tools import ToolUnavailable, tool_path

BENCHMARKS = ("demo", "warm-up", "transfer", "doctor", "serving")
# Chain step (progress step name of `lab demo`) -> the name it is reported under.
DEMO_STEPS = {step.name: step.bench_label for step in CHAIN}
BENCH_MODEL = "bench-iris"
COLD_DEMO, WARM_UP, DOCTOR = (
    "cold demo (lab demo --once)",
    "warm up (healthy lab)",
    "doctor (lab doctor --mode local)",
)
QUIET = Progress(quiet=True)


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock seconds of ``repeat`` runs of ``action``."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


def run_lab(config: LabConfig, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real CLI, as a user would, against ``config``'s home and ports."""
    ports = {env_variable_for("ports", name): str(port) for name, port in asdict(config.ports).items()}
    env = {**os.environ, **{k: v for k, v in ports.items() if k}, "LAB_HOME": str(config.home)}
    return subprocess.run([sys.executable, "-m", "lab", "-q", *args], capture_output=True, text=True, env=env)


def runnable_components(config: LabConfig) -> tuple[str, ...]:
    """The local components whose tools this machine has."""
    names = []
    for name, component in local.COMPONENTS.items():
        try:
            for tool in component.tools:
                tool_path(config, tool)
        except ToolUnavailable:
            continue
        names.append(name)
    return tuple(names)


def healthy_lab(config: LabConfig) -> tuple[str, ...]:
    """Bring up the components that can run here (idempotent); their names."""
    names = runnable_components(config)
    if not names:
        raise LabError(
            "none of the local components' tools is installed; run `lab tools install --mode local`"
        )
    local.up(config, QUIET, names)
    return names


def bench_cli(
    config: LabConfig, name: str, args: list[str], repeat: int, ok: tuple[int, ...] = (0,)
) -> Measurement:
    """Time a whole CLI command; an exit code outside ``ok`` makes the measurement skipped with its error."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = run_lab(config, *args)
        elapsed = time.perf_counter() - start
        if proc.returncode not in ok:
            return Measurement(name, skipped=f"`lab {' '.join(args)}` failed: {_last_error(proc)}")
        samples.append(elapsed)
    return Measurement(name, samples, extra={"exit code": proc.returncode})


def _last_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or [f"exit {proc.returncode}"])[-1][:400]


def bench_cold_demo(config: LabConfig, repeat: int) -> list[Measurement]:
    """`lab demo --once` from a stopped lab: total and per-step seconds (the demo's own step timings)."""
    from lab.pipeline.demo import run_demo

    config = dataclasses.replace(config, mode="local")
    total = Measurement(COLD_DEMO)
    steps = {step: Measurement(f"cold demo: {label}") for step, label in DEMO_STEPS.items()}
    for _ in range(repeat):
        local.down(config, QUIET)
        progress, output = Progress(quiet=True), io.StringIO()
        start = time.perf_counter()
        try:
            with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                # "suffix": every repeat registers a fresh version instead of failing on the last one's.
                code = run_demo(
                    config, progress, once=True, version_policy=VersionPolicy.SUFFIX, version="bench"
                )
        except LabError as exc:
            return [Measurement(total.name, skipped=one_line(exc))]
        if code != 0:
            errors = [line for line in output.getvalue().splitlines() if line.startswith("ERROR")]
            return [Measurement(total.name, skipped=(errors or [f"lab demo exited {code}"])[0])]
        total.samples.append(time.perf_counter() - start)
        for step, measurement in steps.items():
            measurement.samples.append(progress.timings[step])
    return [total, *steps.values()]


def bench_warm_up(config: LabConfig, repeat: int) -> Measurement:
    """`lab up --mode local` on a healthy lab: should be a no-op."""
    arg = ",".join(healthy_lab(config))
    measurement = bench_cli(config, WARM_UP, ["up", "--mode", "local", "--components", arg], repeat)
    measurement.extra["components"] = arg
    return measurement


def bench_doctor(config: LabConfig, repeat: int) -> Measurement:
    """`lab doctor` on a healthy local lab; exit 1 (something fails) is still a timing."""
    healthy_lab(config)
    return bench_cli(config, DOCTOR, ["doctor", "--mode", "local"], repeat, ok=(0, 1))


def latency(name: str, call: Callable[[Any], object], inputs: Sequence[Any], repeat: int) -> Measurement:
    """Milliseconds per call over ``repeat`` rounds of ``inputs``: p50, p99 and calls/s of the best round."""
    call(inputs[0])  # connection, lazy imports and caches: not what is measured
    samples, rates = [], []
    for _ in range(repeat):
        begin = time.perf_counter()
        for row in inputs:
            start = time.perf_counter()
            call(row)
            samples.append(round((time.perf_counter() - start) * 1000, 4))
        rates.append(len(inputs) / (time.perf_counter() - begin))
    p99 = statistics.quantiles(samples, n=100)[98] if len(samples) > 1 else samples[0]
    return Measurement(
        name, samples, "ms", extra={"p50": statistics.median(samples), "p99": p99, "req/s": max(rates)}
    )


def bench_serving(config: LabConfig, requests_count: int, repeat: int) -> list[Measurement]:
    """V1/V2 predictions through the lab's model server vs the model's own ``predict``, one row a request."""
    import joblib
    import requests

    from lab.pipeline.steps import read_split, train_classifier

    model_dir = config.home / "bench" / "serving" / BENCH_MODEL
    shutil.rmtree(model_dir, ignore_errors=True)
    train_classifier(str(model_dir), "iris", BENCH_MODEL, "lab bench model", "lab bench", 0, 0.3)
    rows, _ = read_split(str(model_dir / "test.csv"))
    inputs = [rows[i % len(rows)] for i in range(requests_count)]
    model = joblib.load(model_dir / "model.joblib")
    direct = latency("direct model.predict", lambda row: model.predict([row]), inputs, repeat)
    url = start_model_server(config, model_dir, BENCH_MODEL)
    try:
        with requests.Session() as session:

            def post(path: str, body: dict[str, Any]) -> None:
                session.post(f"{url}{path}", json=body, timeout=30).raise_for_status()

            v1 = latency(
                "served V1 predict",
                lambda row: post(f"/v1/models/{BENCH_MODEL}:predict", {"instances": [row]}),
                inputs,
                repeat,
            )
            v2_input = {"name": "input-0", "shape": [1, len(rows[0])], "datatype": "FP64"}
            v2 = latency(
                "served V2 infer",
                lambda row: post(f"/v2/models/{BENCH_MODEL}/infer", {"inputs": [{**v2_input, "data": row}]}),
                inputs,
                repeat,
            )
    finally:
        stop_model_server(config)
    for served in (v1, v2):
        served.extra["served/direct p50"] = served.median / direct.median
    return [v1, v2, direct]


def run_bench(
    config: LabConfig,
    progress: Progress,
    *,
    repeat: int = 3,
    sizes: Sequence[int] = (100, 1024),
    requests_count: int = 200,
    only: Sequence[str] = BENCHMARKS,
) -> list[Measurement]:
    """Run the chosen benchmarks in order; a benchmark that errors is recorded as skipped with its error.

    Generated files live under ``$LAB_HOME/bench`` and are deleted afterwards, also on failure.
    """
    plan: list[tuple[str, str, Callable[[], list[Measurement]]]] = [
        ("demo", COLD_DEMO, lambda: bench_cold_demo(config, repeat)),
        ("warm-up", WARM_UP, lambda: [bench_warm_up(config, repeat)]),
        *(
            (
                "transfer",
                f"transfer {size} MiB",
                functools.partial(transfer.bench_transfer, config, size, repeat),
            )
            for size in sizes
        ),
        ("doctor", DOCTOR, lambda: [bench_doctor(config, repeat)]),
        (
            "serving",
            f"serving {requests_count} requests",
            lambda: bench_serving(config, requests_count, repeat),
        ),
    ]
    results: list[Measurement] = []
    try:
        for key, title, bench in plan:
            if key not in only:
                continue
            try:
                with progress.step(f"bench {title}"):
                    measured = bench()
            except (LabError, OSError, subprocess.SubprocessError) as exc:
                measured = [Measurement(title, skipped=one_line(exc))]
            for skipped in (m for m in measured if m.skipped):
                progress.info(f"   {skipped.name}: skipped: {skipped.skipped}")
            results += measured
    finally:
        shutil.rmtree(config.home / "bench", ignore_errors=True)
    return results


def markdown(results: list[Measurement]) -> str:
    """The results as a Markdown table."""
    lines = ["| measurement | min | median | notes |", "|---|---|---|---|"]
    for m in results:
        if m.skipped:
            lines.append(f"| {m.name} | – | – | skipped: {m.skipped.replace('|', '/')} |")
            continue
        notes = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in m.extra.items())
        lines.append(f"| {m.name} | {m.minimum:.3f} {m.unit} | {m.median:.3f} {m.unit} | {notes} |")
    return "\n".join(lines)


def write_results(
    results: list[Measurement], path: Path | None = None, settings: dict[str, Any] | None = None
) -> Path:
    """Write ``bench/results.json`` atomically."""
    path = path or PROJECT_ROOT / "bench" / "results.json"
    payload = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "settings": settings or {},
        "results": [m.as_dict() for m in results],
    }
    atomic_write(path, json.dumps(payload, indent=2) + "\n")
    return path
