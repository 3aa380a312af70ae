"""kind-registry-port: the host port kind mode publishes its registry on is free, or already the lab's.

Kind mode publishes the registry container on ``127.0.0.1:<ports.registry>``, the same port the
local mode's registry uses; ``lab up --mode kind`` runs this check before creating anything.
"""

from __future__ import annotations

from lab.config import env_variable_for
from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, Result
from lab.local.ownership import owner_id

REGISTRY_CONTAINER_PORT = 5000  # the registry's port inside its container


def detect(evidence: Evidence) -> Result:
    """Who holds the registry port: nobody, the kind registry container, this lab's local mode, or others."""
    config = evidence.config
    port = evidence.port(config.ports.registry)
    where = f"127.0.0.1:{port.port}"
    if port.free:
        return Result.ok(f"{where} is free")
    container = config.names.registry_container
    published = evidence.published_port(container, REGISTRY_CONTAINER_PORT)
    if f":{port.port}" in published:
        return Result.ok(f"{where} is the lab registry's", f"{container} publishes {published}")
    variable = env_variable_for("ports", "registry")
    if port.lab_component and port.lab_home == owner_id(config.home):
        # The local-mode lab's own registry: not a stranger, but kind mode needs the same port.
        return Result.fail(
            f"{where} is held by this lab's local-mode {port.lab_component} (pid {port.pid}), "
            "where kind mode publishes its registry container",
            port.holder(),
            [
                "lab down  # stops the local lab",
                f"# or give kind's registry another port: {variable}=<port> lab up --mode kind",
            ],
        )
    return Result.fail(
        f"{where} is held by another program, where kind mode publishes its registry container",
        port.holder(),
        [
            f"ss -ltnp 'sport = :{port.port}'  # shows which program; stop it if it is yours",
            f"# or give kind's registry another port: {variable}=<port> lab up --mode kind",
        ],
    )


CHECK = Check(
    id="kind-registry-port",
    title="kind registry port free",
    group="host",
    inspects="127.0.0.1:<registry port>: who listens, and whether the kind registry container publishes it",
    detect=detect,
    modes=frozenset({"kind"}),
)
