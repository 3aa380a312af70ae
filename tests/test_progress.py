"""Progress heartbeats: a long step says, every heartbeat, what it is still doing."""

from __future__ import annotations

import io
import time

from lab.progress import Progress


def test_a_waiting_step_names_what_it_still_waits_for_at_each_heartbeat() -> None:
    stream = io.StringIO()
    progress = Progress(stream=stream, heartbeat=0.05)
    left = ["Namespace kserve", "CustomResourceDefinition a.example.com"]
    with progress.step("delete 2 namespaces and CRDs", activity=lambda: f"waiting for {', '.join(left)}"):
        time.sleep(0.2)
        left.pop()
        time.sleep(0.2)
    lines = stream.getvalue().splitlines()
    beats = [line for line in lines if line.startswith(" … ")]
    both = "Namespace kserve, CustomResourceDefinition a.example.com"
    assert beats[0].startswith(f" … delete 2 namespaces and CRDs: waiting for {both}, ")
    assert beats[-1].startswith(" … delete 2 namespaces and CRDs: waiting for Namespace kserve, ")
    assert lines[-1].startswith(" ✓ delete 2 namespaces and CRDs (")
