"""cosign-keys-missing: no cosign key, so the push step skips signing (informational)."""

from __future__ import annotations

from lab.doctor.checks._provision import up_command
from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, Result

MOUNT_PATH = "/etc/cosign"  # where the KitOps push step looks for cosign.key
KEY = "cosign.key"


def detect(evidence: Evidence) -> Result:
    """The ``cosign-keys`` secret the push step mounts at /etc/cosign, and its key names."""
    namespace, name = evidence.config.names.pipeline_namespace, evidence.config.names.cosign_secret
    secret = evidence.secret(namespace, name)
    keys_dir = evidence.config.home / "cosign"
    # The lab's secrets step publishes $LAB_HOME/cosign/cosign.{key,pub} as this secret.
    create = [
        f"mkdir -p {keys_dir} && cd {keys_dir} && cosign generate-key-pair",
        up_command(evidence.config, evidence.mode),
    ]
    if secret is None:
        return Result.warn(
            f"no cosign key: attestations will not be signed (secret {namespace}/{name} absent)",
            [f"secret {namespace}/{name} does not exist, so nothing is mounted at {MOUNT_PATH}/{KEY}"],
            ["# optional: create it to sign ModelKit attestations", *create],
        )
    if KEY not in secret.keys:
        return Result.warn(
            f"secret {namespace}/{name} has no {KEY}: signing will be skipped",
            secret.line(),
            [f"kubectl -n {namespace} delete secret {name}", *create],
        )
    return Result.ok(f"cosign key present ({namespace}/{name} mounted at {MOUNT_PATH})", secret.line())


CHECK = Check(
    id="cosign-keys-missing",
    title="cosign keys for signing",
    group="pipeline",
    inspects="secret cosign-keys (key names) in the pipeline namespace",
    detect=detect,
    modes=frozenset({"kind", "cluster"}),
)
