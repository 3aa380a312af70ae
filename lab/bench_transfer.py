"""The transfer benchmark: the lab's push+unpack against raw kit pack+push+unpack and cp.

Like for like: in every round both sides do the same work from nothing — a fresh repository
in the registry, a fresh kit store to pack into, a fresh store (or none) to unpack from, so
every byte is uploaded and really pulled back. Each side reports its phases: raw kit as pack, push, unpack;
the lab as its push script and unpacker report them (push: pack, upload; unpack: manifest and
config, the one pass over the layers, finish). The order of the sides alternates and the disks are
synced between rounds, outside the timing. The rounds push to a registry of the bench's own
(a home under the bench's scratch folder, a free port), removed with everything pushed to it:
the lab's own registry is neither used nor filled (each run pushes over a gigabyte).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lab import local
from lab.bench_measurement import Measurement, one_line
from lab.config import LabConfig
from lab.errors import LabError
from lab.loopback_ports import free_port
from lab.pipeline.modelkit_ref import ModelKitRef
from lab.pipeline.scripts import (
    PUSH_SCRIPT,
    push_arguments,
    run_script,
    run_unpacker,
    script_environment,
    unpack_arguments,
)
from lab.progress import Progress
from lab.tools import tool_path

MIB = 1024 * 1024
KIT_RATIO = "lab/kit ×"  # the lab's median over raw kit's
# The most the lab's push+unpack may take over raw kit's, like for like, by model size in MiB
# (issue 19's goals; at smaller sizes both sides' start-up costs are the figure, not the transfer).
RATIO_GOALS = {100: 1.25, 1024: 1.15}
QUIET = Progress(quiet=True)
Phases = dict[str, float]


def make_payload(directory: Path, size_mib: int) -> Path:
    """A ModelKit directory whose model file is random bytes, so compression cannot make it look faster."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.bin"
    with open(path, "wb") as handle:
        for _ in range(size_mib):
            handle.write(os.urandom(MIB))
    # One Kitfile for raw kit and the lab's push script alike: both move the same ModelKit.
    (directory / "Kitfile").write_text(
        f"manifestVersion: 1.0\npackage:\n  name: bench\nmodel:\n  path: {path.name}\n"
    )
    return path


def bench_copy_floor(payload: Path, scratch: Path, repeat: int) -> Measurement:
    """`cp` of the same file: the floor any transfer is compared with."""
    samples = []
    for _ in range(repeat):
        target = scratch / "copy"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        start = time.perf_counter()
        subprocess.run(["cp", "--", str(payload), str(target / payload.name)], check=True)
        samples.append(time.perf_counter() - start)
    shutil.rmtree(scratch / "copy", ignore_errors=True)
    size = payload.stat().st_size / MIB
    return Measurement(
        f"cp {size:.0f} MiB (floor)", samples, extra={"MiB/s": size / statistics.median(samples)}
    )


def timed_phase(phases: Phases, name: str, action: Callable[[], str]) -> str:
    """Run ``action``, adding its wall-clock seconds to ``phases[name]``; its output."""
    start = time.perf_counter()
    result = action()
    phases[name] = phases.get(name, 0.0) + time.perf_counter() - start
    return result


def run_kit(kit: Path, argv: list[str], env: dict[str, str]) -> str:
    """Run kit; its stdout (a failure raises CalledProcessError with kit's output)."""
    return subprocess.run([str(kit), *argv], check=True, env=env, capture_output=True, text=True).stdout


def raw_kit_round(config: LabConfig, kit: Path, payload: Path, scratch: Path, repository: str) -> Phases:
    """`kit pack` into a fresh store, `kit push` to a fresh repository, `kit unpack` from a fresh store."""
    ref = str(ModelKitRef(config.registry_host, repository, "bench"))
    phases: Phases = {}
    steps = [
        ("pack", "pack-store", ["pack", f"--tag={ref}", "--", str(payload.parent)]),
        ("push", "pack-store", ["push", "--plain-http", "--", ref]),
        # An empty store: kit unpack finds nothing local and pulls from the registry.
        ("unpack", "unpack-store", ["unpack", "--plain-http", f"--dir={scratch / 'raw-out'}", "--", ref]),
    ]
    for store in {store for _, store, _ in steps}:
        # As the lab's scripts do: no update check against the internet inside the timing.
        (scratch / store).mkdir(parents=True, exist_ok=True)
        (scratch / store / "disable-update-notifications").touch()
    for phase, store, argv in steps:
        env = {
            **os.environ,
            "DOCKER_CONFIG": str(config.docker_config_dir),
            "KITOPS_HOME": str(scratch / store),
        }
        timed_phase(phases, phase, functools.partial(run_kit, kit, argv, env))
    return phases


def lab_round(config: LabConfig, kit: Path, payload: Path, scratch: Path, repository: str) -> Phases:
    """The chain's push script and unpacker, as the local pipeline runs them, each with fresh state.

    The unpacker verifies as it always does (digests, diffIds, every member). kit v1.7.0's
    unpack from a registry does not hash the layers it extracts (oras-go's blob Fetch hands over
    the body unverified), so the lab's side does that work on top.
    """
    outputs = scratch / "outputs"
    outputs.mkdir(parents=True)
    env = script_environment(
        docker_config=config.docker_config_dir,
        tool_dirs=[kit.parent],
        extra={"KITOPS_HOME": str(scratch / "lab-store")},
    )
    phases: Phases = {}
    push = push_arguments(
        config.registry_host,
        repository,
        "bench",
        str(payload.parent),
        plain_http="true",
        ref_output=str(outputs / "ref"),
        digest_output=str(outputs / "digest"),
    )
    pushed = json.loads(timed_phase(phases, "push", lambda: run_script(PUSH_SCRIPT, push, env)))
    unpacked = str(outputs / "unpacked")
    unpack = unpack_arguments(
        (outputs / "digest").read_text().strip(), unpacked, plain_http="true", model_path_output=""
    )
    # As lab demo serves: the one unpacker's text, compiled once into the lab's cache.
    cache = config.home / "cache"
    answer = json.loads(timed_phase(phases, "unpack", lambda: run_unpacker(unpack, env, cache_dir=cache)))
    for name, seconds in pushed.get("seconds", {}).items():
        phases[f"push: {name}"] = float(seconds)
    for name, seconds in answer.get("seconds", {}).items():
        phases[f"unpack: {name}"] = float(seconds)
    return phases


def phase_split(rounds: list[Phases]) -> dict[str, float | str]:
    """Median seconds per phase over the rounds."""
    names = dict.fromkeys(name for phases in rounds for name in phases)
    return {f"{name} s": statistics.median(p[name] for p in rounds if name in p) for name in names}


@contextmanager
def scratch_registry(config: LabConfig, scratch: Path) -> Iterator[LabConfig]:
    """A registry of the bench's own, with the lab's tools; stopped and deleted afterwards."""
    home = scratch / "registry-home"
    home.mkdir(parents=True)
    (home / "bin").symlink_to(config.bin_dir.resolve(), target_is_directory=True)
    ports = dataclasses.replace(config.ports, registry=free_port())
    bench = dataclasses.replace(config, home=home, ports=ports)
    try:
        local.up(bench, QUIET, ("registry",))
        yield bench
    finally:
        local.down(bench, QUIET, purge=True)
        shutil.rmtree(home, ignore_errors=True)


def bench_transfer(config: LabConfig, size_mib: int, repeat: int) -> list[Measurement]:
    """One model size: the lab's push+unpack vs raw kit vs cp, as median ratios with the phase split."""
    scratch = config.home / "bench" / "transfer"
    shutil.rmtree(scratch, ignore_errors=True)
    payload = make_payload(scratch / "modelkit", size_mib)
    lab = Measurement(
        f"lab push+unpack {size_mib} MiB", goal=RATIO_GOALS.get(size_mib), headline_of=KIT_RATIO
    )
    raw = Measurement(f"raw kit pack+push+unpack {size_mib} MiB")
    cp = bench_copy_floor(payload, scratch, repeat)
    try:
        kit = tool_path(config, "kit")
        with scratch_registry(config, scratch) as bench:
            rounds = transfer_rounds(bench, kit, payload, scratch, repeat, {"raw": raw, "lab": lab})
    except LabError as exc:
        lab.skipped = raw.skipped = one_line(exc)
        return [lab, raw, cp]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for side, measurement in (("raw", raw), ("lab", lab)):
        if measurement.samples:
            measurement.extra["MiB/s"] = size_mib / measurement.median
            measurement.extra.update(phase_split(rounds[side]))
    compare_sides(lab, raw, cp)
    return [lab, raw, cp]


def compare_sides(lab: Measurement, raw: Measurement, cp: Measurement) -> None:
    """Put the ratios of medians (and of minimums) over raw kit and cp first in the lab row's notes."""
    if not lab.samples:
        return
    if raw.samples:
        ratios = {KIT_RATIO: lab.median / raw.median, f"{KIT_RATIO} (min)": lab.minimum / raw.minimum}
        lab.extra = {**ratios, **lab.extra}
    lab.extra = {"lab/cp": lab.median / cp.median, **lab.extra}


def transfer_rounds(
    config: LabConfig,
    kit: Path,
    payload: Path,
    scratch: Path,
    repeat: int,
    measurements: dict[str, Measurement],
) -> dict[str, list[Phases]]:
    """``repeat`` rounds of each side against ``config``'s registry, working in ``scratch``."""
    size_mib = payload.stat().st_size // MIB
    rounds: dict[str, list[Phases]] = {"lab": [], "raw": []}
    sides = (("raw", measurements["raw"], raw_kit_round), ("lab", measurements["lab"], lab_round))
    for index in range(repeat):
        # Alternate who goes first, and let each side start with no dirty pages of the other's
        # last gigabyte still being written back (the sync is outside the timing).
        for side, measurement, round_trip in sides if index % 2 == 0 else sides[::-1]:
            if measurement.skipped:
                continue
            os.sync()
            work = scratch / f"{side}-round"
            shutil.rmtree(work, ignore_errors=True)
            repository = f"bench/{side}-{size_mib}-{index}-{uuid.uuid4().hex[:8]}"
            try:
                start = time.perf_counter()
                phases = round_trip(config, kit, payload, work, repository)
                measurement.samples.append(time.perf_counter() - start)
                rounds[side].append(phases)
            except (LabError, subprocess.CalledProcessError) as exc:
                measurement.skipped, measurement.samples = one_line(exc), []
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return rounds
