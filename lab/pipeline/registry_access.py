"""Talking to the OCI registry with the credentials the chain uses (``DOCKER_CONFIG``).

Before a long pipeline run, ``lab demo`` checks that the registry answers and accepts the
credentials in ``$DOCKER_CONFIG/config.json`` (the same file kit reads), so a wrong password
fails in a second with the registry host named, not after training. After a push, the
digest the registry reports for the tag is what the chain's digest reference must match.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import requests

from lab.errors import LabError
from lab.pipeline.modelkit_ref import ModelKitRef

OCI_MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
TIMEOUT = (2.0, 10.0)


class RegistryUnauthorized(LabError):
    """The registry answered 401 to the credentials in ``DOCKER_CONFIG``."""


def registry_credentials(docker_config_dir: Path, host: str) -> tuple[str, str] | None:
    """``(user, password)`` for ``host`` from ``config.json`` (``auth`` or user/password), or None."""
    try:
        config = json.loads((docker_config_dir / "config.json").read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LabError(f"{docker_config_dir / 'config.json'} is not readable JSON: {exc}") from None
    entry = (config.get("auths") or {}).get(host) or {}
    if entry.get("auth"):
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        return user, password
    if entry.get("username") and entry.get("password"):
        return str(entry["username"]), str(entry["password"])
    return None


def _session(host: str, docker_config_dir: Path) -> requests.Session:
    session = requests.Session()
    credentials = registry_credentials(docker_config_dir, host)
    if credentials:
        session.auth = credentials
    return session


def _unauthorized(host: str, docker_config_dir: Path, what: str) -> RegistryUnauthorized:
    has = registry_credentials(docker_config_dir, host) is not None
    which = "rejected the credentials" if has else "requires credentials, and there are none"
    return RegistryUnauthorized(
        f"registry {host} {which} (401 Unauthorized) for {what}: check the auths entry for "
        f'"{host}" in {docker_config_dir / "config.json"} (DOCKER_CONFIG; the docker-config secret '
        "in the cluster)"
    )


def check_registry_access(host: str, docker_config_dir: Path, *, plain_http: bool = True) -> None:
    """The registry answers ``GET /v2/`` with the chain's credentials.

    Raises:
        RegistryUnauthorized: 401 (the message names the host and the config.json to fix).
        LabError: The registry does not answer, or answers something else.
    """
    url = f"{'http' if plain_http else 'https'}://{host}/v2/"
    try:
        response = _session(host, docker_config_dir).get(url, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise LabError(f"registry {host} is not reachable ({url}): {type(exc).__name__}") from None
    if response.status_code == 401:
        raise _unauthorized(host, docker_config_dir, "GET /v2/")
    if response.status_code != 200:
        raise LabError(f"registry {host} answered {response.status_code} to GET /v2/: {response.text[:200]}")


def manifest_digest(
    reference: ModelKitRef | str, docker_config_dir: Path, *, plain_http: bool = True
) -> str:
    """The digest the registry reports for ``host:port/repo:tag`` (or ``@sha256:...``).

    Raises:
        RegistryUnauthorized: 401.
        LabError: Unknown reference (404), or the registry cannot be reached.
        ValueError: ``reference`` is outside the OCI reference grammar.
    """
    ref = reference if isinstance(reference, ModelKitRef) else ModelKitRef.parse(reference)
    host, repository, tag = ref.registry, ref.repository, ref.digest or ref.tag or "latest"
    url = f"{'http' if plain_http else 'https'}://{host}/v2/{repository}/manifests/{tag}"
    try:
        response = _session(host, docker_config_dir).head(
            url, headers={"Accept": OCI_MANIFEST_TYPES}, timeout=TIMEOUT
        )
    except requests.RequestException as exc:
        raise LabError(f"registry {host} is not reachable ({url}): {type(exc).__name__}") from None
    if response.status_code == 401:
        raise _unauthorized(host, docker_config_dir, str(ref))
    if response.status_code == 404:
        raise LabError(f"ModelKit {reference} not found in registry {host}")
    if response.status_code != 200 or "Docker-Content-Digest" not in response.headers:
        raise LabError(f"registry {host} answered {response.status_code} for {reference}")
    return str(response.headers["Docker-Content-Digest"])
