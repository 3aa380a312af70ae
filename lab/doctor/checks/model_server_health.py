"""model-server-health: the local model server (KServe ModelServer) is ready when it runs."""

from __future__ import annotations

from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, Result


def detect(evidence: Evidence) -> Result:
    """``GET /v2/health/ready`` on the model server port; nothing listening is not a failure."""
    port = evidence.config.ports.model_server
    probe = evidence.http(f"http://127.0.0.1:{port}/v2/health/ready")
    if not probe.answered:
        return Result.skipped(
            f"no model server runs on 127.0.0.1:{port} (`lab demo` starts one)", probe.line()
        )
    if probe.status == 200:
        return Result.ok(f"model server ready on 127.0.0.1:{port}", probe.line())
    return Result.fail(
        f"the model server on 127.0.0.1:{port} is not ready",
        probe.line(),
        [
            f"curl -s http://127.0.0.1:{port}/v2/models  # which models loaded",
            "# restart it with the chain: lab demo",
        ],
    )


CHECK = Check(
    id="model-server-health",
    title="local model server ready",
    group="kserve",
    inspects="GET /v2/health/ready on the model server port",
    detect=detect,
    modes=frozenset({"local"}),
)
