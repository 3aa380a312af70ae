"""crash-loop: a lab container keeps crashing; its own words say why, the remedy fits the reason.

A container restarting a few times while its database starts is normal during an install;
one the kubelet has restarted :data:`RESTARTS` times (back-off near its 5-minute cap) will
not heal by waiting. Provisioning waits stop on this finding instead of running out their
timeout.
"""

from __future__ import annotations

from lab.doctor.checks._found import found_owning, found_remedy
from lab.doctor.checks._workloads import crash_of, crash_text, crashing, lab_namespaces
from lab.doctor.crash_causes import crash_remedy
from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, Result
from lab.doctor.workloads import event_line, events_for, termination_lines

# Back-off 10s, 20s, 40s, 80s, 160s: the fifth restart comes about five minutes in.
RESTARTS = 5


def detect(evidence: Evidence) -> Result:
    """CrashLoopBackOff containers in the lab's namespaces, with message, log tail, events, cause."""
    # Where a component someone else installed lives too: the lab waits on it (lab.ownership).
    installed = [f.namespace for f in evidence.found_components().values()]
    found = crashing(evidence, list(dict.fromkeys([*lab_namespaces(evidence), *installed])))
    if not found:
        return Result.ok("no lab container is crash-looping")
    lines: list[str] = []
    remedy: list[str] = []
    failing, meanings = [], []
    for cs in found:
        text, log_lines = crash_text(evidence, cs)
        means, fix = crash_remedy(crash_of(evidence, cs, text))
        theirs = found_owning(evidence, cs.namespace, cs.pod)
        if theirs is not None:  # not the lab's: its owner repairs it, whatever the cause
            fix = found_remedy(evidence, theirs)
        lines += [cs.line(), *termination_lines(cs), *log_lines]
        events = events_for(evidence.events(), cs.namespace, cs.pod)[-3:]
        lines += [f"  {event_line(e)}" for e in events]
        if cs.restarts >= RESTARTS:
            failing.append(f"{cs.namespace}/{cs.pod} ({cs.name})")
            meanings.append(means)
            remedy += [line for line in fix if line not in remedy]
    if not failing:
        return Result.warn(
            f"{len(found)} container(s) restarting (fewer than {RESTARTS} restarts: may settle while "
            "dependencies start)",
            lines,
        )
    return Result.fail(f"{', '.join(failing)} crash-looping: {meanings[0]}", lines, remedy)


CHECK = Check(
    id="crash-loop",
    title="no lab container crash-loops",
    group="cluster",
    inspects="containers in CrashLoopBackOff in the lab's namespaces: termination message, previous "
    "log, restarts, events",
    detect=detect,
    modes=frozenset({"kind", "cluster"}),
)
