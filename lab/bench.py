"""``lab bench``: the lab's speed against its peers and floors, as ratios from one run.

A benchmark, not a test: it never fails on a number. Each measurement is repeated and
reported as min/median; a measurement that cannot run here is reported as skipped with
the reason (e.g. the one-line error of a tool that cannot be obtained).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import http.client
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lab import bench_transfer as transfer
from lab import local
from lab.atomic_files import atomic_write
from lab.bench_cluster import CLUSTER_FIRST_UP, CLUSTER_SECOND_UP, bench_cluster
from lab.bench_measurement import BENCHMARKS, Measurement, last_error, one_line, run_lab
from lab.config import PROJECT_ROOT, LabConfig
from lab.errors import LabError
from lab.local.model_server_process import stop_model_server
from lab.pipeline.chain import CHAIN, VersionPolicy
from lab.pipeline.serving import start_model_server
from lab.progress import Progress
from lab.tools import ToolUnavailable, tool_path

# Chain step (progress step name of `lab demo`) -> the name it is reported under.
DEMO_STEPS = {step.name: step.bench_label for step in CHAIN}
BENCH_MODEL = "bench-iris"
COLD_DEMO, WARM_UP, DOCTOR, STATUS = (
    "cold demo (lab demo --once)",
    "warm up (healthy lab)",
    "doctor (lab doctor --mode local)",
    "status (lab status, auto mode)",
)
SERVED_V1, SERVED_V2 = "served V1 predict", "served V2 infer"
# What the served p50 may add to the model's own predict (issue 20's goal).
OVER_DIRECT = "over direct p50 ms"
# The most each row's headline may be (seconds unless the row's goal figure says otherwise).
GOALS = {
    COLD_DEMO: 5.0,
    WARM_UP: 0.2,
    DOCTOR: 0.2,
    STATUS: 0.3,
    SERVED_V1: 1.0,
    SERVED_V2: 1.0,
    CLUSTER_FIRST_UP: 30.0,
    CLUSTER_SECOND_UP: 5.0,
}
QUIET = Progress(quiet=True)


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock seconds of ``repeat`` runs of ``action``."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


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
    config: LabConfig,
    name: str,
    args: list[str],
    repeat: int,
    ok: tuple[int, ...] = (0,),
    env: dict[str, str] | None = None,
) -> Measurement:
    """Time a whole CLI command; an exit code outside ``ok`` makes the measurement skipped with its error."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = run_lab(config, *args, env=env)
        elapsed = time.perf_counter() - start
        if proc.returncode not in ok:
            return Measurement(name, skipped=f"`lab {' '.join(args)}` failed: {last_error(proc)}")
        samples.append(elapsed)
    return Measurement(name, samples, extra={"exit code": proc.returncode})


def bench_cold_demo(config: LabConfig, repeat: int) -> list[Measurement]:
    """`lab demo --once` from a stopped lab: total and per-step seconds (the demo's own step timings)."""
    from lab.pipeline.demo import STANDBY_STEP, run_demo

    config = dataclasses.replace(config, mode="local")
    total = Measurement(COLD_DEMO)
    steps = {step: Measurement(f"cold demo: {label}") for step, label in DEMO_STEPS.items()}
    # Not a step of the sum: it runs beside train, push and register.
    standby = Measurement(f"cold demo: {STANDBY_STEP} (overlapped)")
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
        if STANDBY_STEP in progress.timings:
            standby.samples.append(progress.timings[STANDBY_STEP])
    return [total, *steps.values(), *([standby] if standby.samples else [])]


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


def bench_status(config: LabConfig, repeat: int) -> Measurement:
    """`lab status` as a user types it (auto mode: the local lab, and a kind lab if an engine answers)."""
    healthy_lab(config)
    env = {k: v for k, v in os.environ.items() if k not in ("LAB_MODE", "KUBECONFIG")}
    return bench_cli(config, STATUS, ["status"], repeat, env=env)


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


class JsonClient:
    """One kept-alive HTTP connection posting JSON: the least any client does per request.

    The served rows measure what the model server adds to the model's own predict, so the
    client is the standard library's (``requests`` alone spends about half a millisecond a call).
    """

    def __init__(self, url: str) -> None:
        where = urlsplit(url)
        self.connection = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> bytes:
        """POST ``body`` as JSON; the response body (LabError on any status but 200)."""
        self.connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        answer = response.read()
        if response.status != 200:
            raise LabError(f"POST {path} answered {response.status}: {answer[:200]!r}")
        return answer

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()


def bench_serving(config: LabConfig, requests_count: int, repeat: int) -> list[Measurement]:
    """V1/V2 predictions through the lab's model server vs the model's own ``predict``, one row a request."""
    import joblib

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
        with closing(JsonClient(url)) as client:
            v1 = latency(
                SERVED_V1,
                lambda row: client.post(f"/v1/models/{BENCH_MODEL}:predict", {"instances": [row]}),
                inputs,
                repeat,
            )
            v2_input = {"name": "input-0", "shape": [1, len(rows[0])], "datatype": "FP64"}
            v2 = latency(
                SERVED_V2,
                lambda row: client.post(
                    f"/v2/models/{BENCH_MODEL}/infer", {"inputs": [{**v2_input, "data": row}]}
                ),
                inputs,
                repeat,
            )
    finally:
        stop_model_server(config)
    for served in (v1, v2):
        served.extra["served/direct p50"] = served.median / direct.median
        served.extra[OVER_DIRECT] = served.median - direct.median
        served.headline_of = OVER_DIRECT
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
        ("status", STATUS, lambda: [bench_status(config, repeat)]),
        (
            "serving",
            f"serving {requests_count} requests",
            lambda: bench_serving(config, requests_count, repeat),
        ),
        ("cluster", "cluster mode", lambda: bench_cluster(config, repeat)),
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
            for measurement in measured:
                measurement.goal = GOALS.get(measurement.name, measurement.goal)
            results += measured
    finally:
        shutil.rmtree(config.home / "bench", ignore_errors=True)
    return results


def goal_cell(m: Measurement) -> str:
    """``≤ 5 s: met`` / ``≤ 5 s: 7.80 s, not met`` (on the goal's own figure), or ``–`` without a goal."""
    if m.goal is None:
        return "–"
    figure = "" if m.headline_of == "median" else f"{m.headline_of.rsplit(' ', 1)[0]} "
    unit = m.unit if m.headline_of == "median" else m.headline_of.rsplit(" ", 1)[-1]
    limit = f"{figure}≤ {m.goal:g} {unit}"
    if m.goal_met is None:
        return f"{limit}: not measured"
    return f"{limit}: met" if m.goal_met else f"{limit}: {m.headline:.3f} {unit}, not met"


def markdown(results: list[Measurement]) -> str:
    """The results as a Markdown table, each row's goal beside it."""
    lines = ["| measurement | min | median | goal | notes |", "|---|---|---|---|---|"]
    for m in results:
        if m.skipped:
            lines.append(f"| {m.name} | – | – | {goal_cell(m)} | skipped: {m.skipped.replace('|', '/')} |")
            continue
        notes = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in m.extra.items())
        row = f"| {m.name} | {m.minimum:.3f} {m.unit} | {m.median:.3f} {m.unit} | {goal_cell(m)} | {notes} |"
        lines.append(row)
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
