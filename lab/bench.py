"""``lab bench``: the lab's speed against its peers and floors, as ratios from one run.

A benchmark, not a test: it never fails on a number. Each measurement is repeated and
reported as min/median; a measurement that cannot run here is reported as skipped with
the reason (e.g. the one-line error of a tool that cannot be obtained).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab import local
from lab.config import PROJECT_ROOT, LabConfig
from lab.errors import LabError
from lab.local.processes import atomic_write
from lab.progress import Progress
from lab.tools import ToolUnavailable, tool_path

MIB = 1024 * 1024


@dataclass
class Measurement:
    """Samples of one timing (seconds unless ``unit`` says otherwise)."""

    name: str
    samples: list[float] = field(default_factory=list)
    unit: str = "s"
    skipped: str = ""
    extra: dict[str, float | str] = field(default_factory=dict)

    @property
    def minimum(self) -> float:
        """Fastest sample."""
        return min(self.samples) if self.samples else float("nan")

    @property
    def median(self) -> float:
        """Median sample."""
        return statistics.median(self.samples) if self.samples else float("nan")

    def as_dict(self) -> dict[str, object]:
        """JSON form with the derived statistics."""
        data = asdict(self)
        data.update(min=self.minimum, median=self.median)
        return data


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock seconds of ``repeat`` runs of ``action``."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


def run_lab(config: LabConfig, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real CLI, as a user would, against ``config.home``."""
    env = {**os.environ, "LAB_HOME": str(config.home)}
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


def bench_warm_up(config: LabConfig, repeat: int) -> Measurement:
    """`lab up --mode local` on a healthy lab: should be a no-op."""
    names = runnable_components(config)
    local.up(config, Progress(quiet=True), names)
    arg = ",".join(names)

    def warm() -> None:
        proc = run_lab(config, "up", "--mode", "local", "--components", arg)
        if proc.returncode != 0:
            raise LabError("lab up failed during the benchmark", proc.stderr.splitlines()[-5:])

    return Measurement("warm up (healthy lab)", timed(warm, repeat), extra={"components": arg})


def make_payload(directory: Path, size_mib: int) -> Path:
    """A model file of random bytes, so compression cannot make the transfer look faster."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.bin"
    with open(path, "wb") as handle:
        for _ in range(size_mib):
            handle.write(os.urandom(MIB))
    return path


def bench_copy_floor(payload: Path, scratch: Path, repeat: int) -> Measurement:
    """`cp` of the same file: the floor any transfer is compared with."""

    def copy() -> None:
        target = scratch / "copy"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        subprocess.run(["cp", str(payload), str(target / payload.name)], check=True)
        os.sync()

    size = payload.stat().st_size / MIB
    samples = timed(copy, repeat)
    return Measurement(f"cp {size:.0f} MiB", samples, extra={"MiB/s": size / min(samples)})


def bench_raw_kit(config: LabConfig, payload: Path, scratch: Path, repeat: int) -> Measurement:
    """`kit pack` + `kit push` + `kit unpack` by hand: the peer the lab's steps are measured against."""
    size = payload.stat().st_size / MIB
    name = f"raw kit pack+push+unpack {size:.0f} MiB"
    try:
        kit = str(tool_path(config, "kit"))
    except ToolUnavailable as exc:
        return Measurement(name, skipped=str(exc))
    env = {**os.environ, "DOCKER_CONFIG": str(config.docker_config_dir), "KITOPS_HOME": str(scratch / "kit")}
    kitfile = payload.parent / "Kitfile"
    kitfile.write_text(f"manifestVersion: 1.0\npackage:\n  name: bench\nmodel:\n  path: {payload.name}\n")
    ref = f"{config.registry_host}/bench/raw:{int(size)}"

    def round_trip() -> None:
        out = scratch / "raw-out"
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([kit, "pack", str(payload.parent), "-t", ref], check=True, env=env, capture_output=True)
        subprocess.run([kit, "push", ref, "--plain-http"], check=True, env=env, capture_output=True)
        subprocess.run(
            [kit, "unpack", ref, "-d", str(out), "--plain-http"], check=True, env=env, capture_output=True
        )

    samples = timed(round_trip, repeat)
    return Measurement(name, samples, extra={"MiB/s": size / min(samples)})


def markdown(results: list[Measurement]) -> str:
    """The results as a Markdown table."""
    lines = ["| measurement | min | median | notes |", "|---|---|---|---|"]
    for m in results:
        if m.skipped:
            lines.append(f"| {m.name} | – | – | skipped: {m.skipped} |")
            continue
        notes = ", ".join(
            f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in m.extra.items()
        )
        lines.append(f"| {m.name} | {m.minimum:.3f} {m.unit} | {m.median:.3f} {m.unit} | {notes} |")
    return "\n".join(lines)


def write_results(results: list[Measurement], path: Path | None = None) -> Path:
    """Write ``bench/results.json`` atomically."""
    path = path or PROJECT_ROOT / "bench" / "results.json"
    payload = {"machine": {"cpus": os.cpu_count()}, "results": [m.as_dict() for m in results]}
    atomic_write(path, json.dumps(payload, indent=2) + "\n")
    return path


def _last_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or [f"exit {proc.returncode}"])[-1][:400]


def bench_cli(config: LabConfig, name: str, args: list[str], repeat: int, before: Callable[[], None]) -> Measurement:
    """Time a whole CLI command; a run that fails makes the measurement skipped with its error."""
    samples = []
    for _ in range(repeat):
        before()
        start = time.perf_counter()
        proc = run_lab(config, *args)
        elapsed = time.perf_counter() - start
        if proc.returncode not in (0,):
            return Measurement(name, skipped=f"`lab {' '.join(args)}` failed: {_last_error(proc)}")
        samples.append(elapsed)
    return Measurement(name, samples)
