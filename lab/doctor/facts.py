"""The facts the doctor collects, as small frozen records (secrets never inside)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from lab.config import LabConfig

# Keys under which a docker config.json sits in a Secret (generic secret / docker-registry type).
DOCKER_CONFIG_KEYS = ("config.json", ".dockerconfigjson")


@dataclass(frozen=True)
class HttpProbe:
    """One HTTP request and its answer (or the error that prevented one)."""

    method: str
    url: str
    status: int | None
    error: str = ""
    body: str = ""
    with_credentials: str = ""  # the docker-config host key whose credentials were sent

    @property
    def answered(self) -> bool:
        """The server answered at all."""
        return self.status is not None

    def line(self) -> str:
        """``GET url -> 200`` or ``GET url failed: ConnectionError``."""
        creds = f" with the credentials for {self.with_credentials}" if self.with_credentials else ""
        if self.status is None:
            return f"{self.method} {self.url}{creds} failed: {self.error}"
        body = f": {self.body}" if self.body and self.status >= 400 else ""
        return f"{self.method} {self.url}{creds} -> {self.status}{body}"


@dataclass(frozen=True)
class SysctlFact:
    """A kernel setting read from ``/proc/sys``."""

    name: str
    value: int | None
    source: str


@dataclass(frozen=True)
class ModuleFact:
    """Whether a kernel module is loaded, and where that was read."""

    name: str
    loaded: bool | None
    source: str


@dataclass(frozen=True)
class ToolFact:
    """Whether a tool the lab runs is installed: how it is run, or why it cannot be."""

    name: str
    command: str  # the path (or argv) when installed, else empty
    problem: str = ""


@dataclass(frozen=True)
class DiskFact:
    """Free space on the filesystem holding ``path``."""

    path: str
    free_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class PortFact:
    """Who, if anyone, listens on a loopback port."""

    port: int
    free: bool
    pid: int | None
    command: str
    lab_home: str = ""  # set when the holder is a lab's own process (its LAB_OWNER marker)
    lab_component: str = ""

    def holder(self) -> str:
        """Who holds the port, in words; a lab process is never called a stranger."""
        if self.lab_component:
            return f"the lab's own {self.lab_component} (pid {self.pid}, LAB_HOME={self.lab_home})"
        return f"pid {self.pid} ({self.command})" if self.pid else "a process not visible in /proc"


@dataclass(frozen=True)
class SecretFacts:
    """What may be shown about a Secret: key names, and the registry hosts of a docker config."""

    namespace: str
    name: str
    type: str
    keys: tuple[str, ...]
    docker_auth_hosts: tuple[str, ...] | None  # None: no docker config key in the secret
    docker_credential_hosts: tuple[str, ...] = ()  # auths entries that carry credentials

    def line(self) -> str:
        """Evidence line: keys (never values) and docker auth hosts."""
        hosts = ""
        if self.docker_auth_hosts is not None:
            with_credentials = ", ".join(self.docker_credential_hosts) or "none"
            hosts = (
                f"; auths entries for: {', '.join(self.docker_auth_hosts) or '(none)'} "
                f"(with credentials: {with_credentials})"
            )
        keys = ", ".join(self.keys) or "(none)"
        return f"secret {self.namespace}/{self.name} (type {self.type}) keys: {keys}{hosts}"


@dataclass(frozen=True)
class DockerAuthFacts:
    """The lab's docker-style ``config.json``: which hosts have credentials (never the credentials)."""

    path: str
    exists: bool
    hosts: tuple[str, ...]
    error: str = ""
    credential_hosts: tuple[str, ...] = ()  # entries that carry an ``auth`` token


@dataclass(frozen=True)
class DirectoryFacts:
    """A directory handed to a step (e.g. the ModelKit directory): does it exist, what is in it."""

    path: str
    exists: bool
    is_dir: bool
    file_count: int
    sample: tuple[str, ...]


def docker_auth_hosts(config_json: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(hosts with an ``auths`` entry, hosts whose entry carries credentials) of a config.json text.

    Raises:
        ValueError: The text is not JSON.
    """
    data = json.loads(config_json)
    auths = data.get("auths", {}) if isinstance(data, dict) else {}
    if not isinstance(auths, dict):
        return (), ()
    credentialed = [
        host
        for host, entry in auths.items()
        if isinstance(entry, dict)
        and (entry.get("auth") or entry.get("password") or entry.get("identitytoken"))
    ]
    return tuple(sorted(auths)), tuple(sorted(credentialed))


def env_prefix(config: LabConfig, **overrides: int) -> str:
    """Environment prefix so a pasted remedy talks to the same lab (home and moved ports).

    ``overrides`` (``LAB_REGISTRY_PORT=5002``) replace the configured value of that variable,
    so a remedy never shows one value and exports another.
    """
    from lab.config import Ports

    parts = []
    if config.home != LabConfig().home:
        parts.append(f"LAB_HOME={config.home}")
    defaults = Ports()
    for name, variable in (
        ("registry", "LAB_REGISTRY_PORT"),
        ("database", "LAB_DATABASE_PORT"),
        ("model_registry", "LAB_MODEL_REGISTRY_PORT"),
        ("model_server", "LAB_MODEL_SERVER_PORT"),
    ):
        value = overrides.get(variable, getattr(config.ports, name))
        if value != getattr(defaults, name):
            parts.append(f"{variable}={value}")
    return " ".join(parts) + " " if parts else ""


def is_root() -> bool:
    """Whether this process may write sysctls."""
    return os.geteuid() == 0
