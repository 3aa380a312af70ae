"""The cluster-mode rows of ``lab bench``: a first and a second ``lab up --mode cluster``.

Each round starts a fresh control plane of the lab's own (real etcd, kube-apiserver,
controller-manager, scheduler; kwok nodes) under ``$LAB_HOME/bench``, times the first
``lab up --mode cluster`` (everything installed and Available) and then a second one (nothing
to change), both through the real CLI, and stops the control plane again, also on failure.
The first ``up`` of each round starts with no rendered overlays kept (``$LAB_HOME/cache/render``
emptied), as on a machine that never ran the lab; the second finds what the first kept.
Without the control-plane tools, or where the manifests cannot be had, the rows are skipped
with the one-line reason.
"""

from __future__ import annotations

import shutil
import time

from lab.bench_measurement import Measurement, last_error, one_line, run_lab
from lab.config import LabConfig
from lab.errors import LabError
from lab.tools import ToolUnavailable, tool_path

CLUSTER_FIRST_UP = "first lab up --mode cluster (to all Available)"
CLUSTER_SECOND_UP = "second lab up --mode cluster (nothing to change)"


def _skipped(reason: str) -> list[Measurement]:
    return [Measurement(CLUSTER_FIRST_UP, skipped=reason), Measurement(CLUSTER_SECOND_UP, skipped=reason)]


def bench_cluster(config: LabConfig, repeat: int) -> list[Measurement]:
    """First and second ``lab up --mode cluster`` on a fresh control plane per round."""
    # Imported here: the kubernetes client loads only when this row runs.
    from lab.provision.control_plane import COMPONENTS, ControlPlane, start_control_plane, stop_control_plane
    from lab.provision.render_cache import render_cache_dir

    try:
        for tool in COMPONENTS:
            tool_path(config, tool)
    except ToolUnavailable as missing:
        return _skipped(one_line(missing))
    first, second = Measurement(CLUSTER_FIRST_UP), Measurement(CLUSTER_SECOND_UP)
    root = config.home / "bench" / "control-plane"
    for _ in range(repeat):
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(render_cache_dir(config), ignore_errors=True)
        try:
            plane = start_control_plane(config, root)
        except LabError as exc:
            stop_control_plane(ControlPlane(root))
            return _skipped(f"the control plane did not start: {one_line(exc)}")
        try:
            args = [
                "up",
                "--mode",
                "cluster",
                "--kubeconfig",
                str(plane.kubeconfig),
                "--context",
                plane.context,
            ]
            args += ["--registry", config.registry_host]
            if config.manifests_dir:
                args += ["--manifests-dir", config.manifests_dir]
            for measurement in (first, second):
                start = time.perf_counter()
                proc = run_lab(config, *args)
                if proc.returncode != 0:
                    return _skipped(f"`lab {' '.join(args[:3])}` failed: {last_error(proc)}")
                measurement.samples.append(time.perf_counter() - start)
        finally:
            stop_control_plane(plane)
    return [first, second]
