"""Any number of ``down``/``up`` cycles converge, on the real control plane.

A file of its own: at about a minute a cycle it is the longest test, and parallel test
workers run it beside the other cluster files (each worker has its own control plane).
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from lab.progress import Progress
from lab.provision.cluster_mode import down_cluster, owned_objects, up_cluster
from tests.e2e.conftest import static_volume_phases

if TYPE_CHECKING:
    from tests.e2e.conftest import ClusterLab

# What the issue asks for. After the first cycle the volumes are in the same state at the
# end of every cycle (the lab's three claims Bound, the other volumes Available, none
# Released): cycles 3 to 5 show that the fixed point holds.
CYCLES = 5


def test_up_down_cycles_converge(cluster_lab: ClusterLab) -> None:
    """Five `down` + `up` cycles: each `down` leaves nothing of the lab, each `up` ends Available.

    Before, the control plane's six Retain volumes were used up after two `up`s and the next
    `up` waited out its timeout on KFP's Pending claims. `up_cluster` returns 0 only once every
    Deployment of every step is Available.
    """
    config = dataclasses.replace(cluster_lab.config, cluster_timeout=240)
    timings = []
    for cycle in range(1, CYCLES + 1):
        started = time.monotonic()
        assert down_cluster(config, Progress(quiet=True)) == 0, f"cycle {cycle}"
        assert owned_objects(cluster_lab.kube) == [], f"cycle {cycle}"
        down = time.monotonic() - started
        assert up_cluster(config, Progress(quiet=True), dry_run=False) == 0, f"cycle {cycle}"
        timings.append((down, time.monotonic() - started - down))
        phases = static_volume_phases(cluster_lab)
        assert "Released" not in phases.values(), (cycle, phases)
        assert list(phases.values()).count("Bound") == 3, (cycle, phases)
    print("cycles (down s, up s): " + ", ".join(f"({d:.0f}, {u:.0f})" for d, u in timings))
