"""registry-unauthorized: pushes fail with ``401 Unauthorized`` (credentials missing or wrong).

Only credential host keys are ever shown, never a password or token.
"""

from __future__ import annotations

import re

from lab.doctor.evidence import ChainError, Evidence, env_prefix
from lab.doctor.model import Check, Result
from lab.doctor.pulls import local_registry_hosts
from lab.doctor.workloads import event_line

REFUSED = re.compile(
    r"\b401\b|unauthori[sz]ed|authentication required|failed to push modelkit", re.IGNORECASE
)


def _refused_push(evidence: Evidence) -> ChainError | None:
    error = evidence.chain_error()
    return error if error is not None and REFUSED.search(error.message) else None


def _local(evidence: Evidence) -> Result:
    config = evidence.config
    prefix = env_prefix(config)
    refused = _refused_push(evidence)
    lines = [refused.line()] if refused else []
    status = evidence.component("registry")
    if status.state not in ("ready", "unhealthy"):
        if refused:
            return Result.fail(
                f"a push was refused, and the registry is {status.state} now",
                lines,
                [f"{prefix}lab up --mode local --components registry"],
            )
        return Result.skipped(f"the registry is {status.state}; see registry-health")
    url = f"http://{config.registry_host}/v2/"
    anonymous = evidence.http(url)
    lines.append(anonymous.line())
    auths = evidence.lab_docker_auths()
    lines.append(
        f"lab docker config {auths.path}: "
        + (
            f"auths entries for: {', '.join(auths.hosts) or '(none)'} (credentials not shown)"
            if auths.exists
            else "missing"
        )
    )
    resync = [
        "# the registry's htpasswd and the lab's config.json are both written at start from:",
        "export LAB_REGISTRY_USER=<user> LAB_REGISTRY_PASSWORD=<password>",
        f"{prefix}lab down && {prefix}lab up --mode local",
    ]
    needs_auth = config.registry_auth.enabled or anonymous.status == 401
    if not needs_auth:
        if refused:
            return Result.fail(
                "a push was refused with 401, but the lab's registry takes anonymous pushes: "
                "the push went to another registry",
                [*lines, *(f"{k}: {v}" for k, v in sorted(refused.context.items()))],
                [f"# push to {config.registry_host}/<repository>:<tag> (always host:port, see versions.md)"],
            )
        return Result.ok(f"registry {config.registry_host} needs no credentials (auth off)", lines)
    if not config.registry_auth.enabled:
        return Result.fail(
            "the registry demands credentials but LAB_REGISTRY_USER/LAB_REGISTRY_PASSWORD are not set",
            lines,
            resync,
        )
    host = config.registry_host
    if host not in auths.credential_hosts:
        return Result.fail(f"the lab's config.json has no credentials for {host}", lines, resync)
    with_credentials = evidence.http(url, credentials_for=host)
    lines.append(with_credentials.line())
    if with_credentials.status == 401:
        return Result.fail(
            f"the registry rejects the credentials in the lab's config.json for {host}", lines, resync
        )
    if refused:
        return Result.fail(
            "a push was refused with 401 although the lab's credentials are accepted: "
            "the client did not use them",
            lines,
            [
                "# point kit (and other docker-config clients) at the lab's credentials:",
                f"export DOCKER_CONFIG={config.docker_config_dir}",
                f'kit login {host} -u "$LAB_REGISTRY_USER" --password-stdin <<<"$LAB_REGISTRY_PASSWORD"',
            ],
        )
    return Result.ok(f"the registry accepts the lab's credentials for {host}", lines)


def _kind(evidence: Evidence) -> Result:
    config = evidence.config
    namespace, name = config.names.pipeline_namespace, config.names.docker_config_secret
    refused = _refused_push(evidence)
    lines = [refused.line()] if refused else []
    secret = evidence.secret(namespace, name)
    lines.append(secret.line() if secret else f"secret {namespace}/{name} does not exist")
    mount_errors = [
        e
        for e in evidence.events()
        if e.reason == "FailedMount" and f'secret "{name}" not found' in (e.message or "")
    ]
    lines.extend(event_line(e) for e in mount_errors[-2:])
    recreate = [
        "# the lab's secrets step writes it again with an auths entry per registry name:",
        "lab up --mode kind",
        "# check it (host keys only, never the password):",
        f"kubectl -n {namespace} get secret {name} -o jsonpath='{{.data.config\\.json}}' | base64 -d | "
        "python3 -c 'import json,sys; print(sorted(json.load(sys.stdin)[\"auths\"]))'",
    ]
    if secret is None:
        return Result.fail(
            f"secret {namespace}/{name} is missing: the push step mounts it at /home/user/.docker",
            lines,
            recreate,
        )
    if secret.docker_auth_hosts is None:
        return Result.fail(
            f"secret {namespace}/{name} holds no config.json (keys: {', '.join(secret.keys)})",
            lines,
            recreate,
        )
    hosts = local_registry_hosts(config)
    if config.registry_auth.enabled and not set(hosts) & set(secret.docker_credential_hosts):
        return Result.fail(
            f"secret {namespace}/{name} has no credentials for the lab's registry ({', '.join(hosts)})",
            lines,
            recreate,
        )
    if refused:
        return Result.fail("a push was refused with 401", lines, recreate)
    return Result.ok(f"secret {namespace}/{name} present with a config.json", lines)


def detect(evidence: Evidence) -> Result:
    """Local: real probes with and without the lab's credentials. Kind: the docker-config secret."""
    return _local(evidence) if evidence.mode == "local" else _kind(evidence)


CHECK = Check(
    id="registry-unauthorized",
    title="registry credentials accepted",
    group="registry",
    inspects="GET /v2/ with and without the lab's config.json credentials; docker-config secret host keys; "
    "recorded push error",
    detect=detect,
)
