"""Evidence: every fact the doctor judges, collected once, kept for the bundle.

Collection is separate from judging (as in the style guide's doctors): checks ask an
:class:`Evidence` object for facts — host facts, local lab status and log tails, HTTP
probes, cluster objects, recorded chain errors — and never reach the system themselves.
Each fact is collected at most once per run (checks run concurrently and share it) and
recorded in :attr:`Evidence.collected` for ``lab doctor --bundle``.

Secrets never leave this module: a Secret becomes :class:`SecretFacts` (key names and the
registry hosts of a docker config, never values), and known passwords are redacted from
every log tail and message.

This module also defines the chain-error contract: the chain (``lab demo``/``lab e2e``)
calls :func:`record_chain_error` when a step fails, and checks such as
``mr-version-exists`` read it back.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import platform
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests

from lab.atomic_files import atomic_write
from lab.config import LabConfig
from lab.doctor.cluster import ClusterSource, ClusterUnreachable, LiveCluster
from lab.engine import EngineProbe, choose_mode, probe_container_engine
from lab.local.processes import listening_pid, log_tail, port_is_free, process_command

T = TypeVar("T")

HTTP_TIMEOUT = (1.0, 2.0)  # (connect, read): a healthy loopback server answers in milliseconds
ENGINE_PROBE_TIMEOUT = 4.0
DNS_TIMEOUT = 2.0
REDACTED = "<redacted>"
CHAIN_ERROR_FILE = "last-chain-error.json"
# Keys under which a docker config.json sits in a Secret (generic secret / docker-registry type).
DOCKER_CONFIG_KEYS = ("config.json", ".dockerconfigjson")


class EvidenceUnavailable(Exception):
    """A fact cannot be collected here (no cluster, no engine); checks needing it are skipped.

    ``str(exc)`` is the short reason shown for skipped checks; ``detail`` the full cause.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.detail = detail or reason


# --- the chain-error contract ---------------------------------------------------------------


@dataclass(frozen=True)
class ChainError:
    """The last error a chain step recorded under ``$LAB_HOME/run/last-chain-error.json``."""

    step: str
    error_type: str
    message: str
    recorded_at: str = ""
    context: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        """One evidence line naming the step, the error type and the message."""
        kind = f"{self.error_type}: " if self.error_type else ""
        return f"chain step {self.step!r} failed at {self.recorded_at or '?'}: {kind}{self.message}"


def chain_error_path(config: LabConfig) -> Path:
    """Where the chain records its last failing step."""
    return config.run_dir / CHAIN_ERROR_FILE


def record_chain_error(config: LabConfig, step: str, error: BaseException | str, **context: object) -> Path:
    """Record that chain step ``step`` failed, for ``lab doctor`` to diagnose.

    Args:
        config: The lab config (the file goes under ``config.run_dir``).
        step: The chain step that failed (e.g. ``"push"``, ``"register"``).
        error: The exception raised, or a message.
        **context: Facts the doctor can use, e.g. ``modelkit_dir="/path"``, ``model="iris"``,
            ``version="1"``, ``reference="127.0.0.1:5001/iris:1"``.

    Returns:
        The path written (atomically).
    """
    if isinstance(error, BaseException):
        error_type, message = type(error).__name__, str(error) or repr(error)
    else:
        error_type, message = "", str(error)
    record = {
        "step": step,
        "error_type": error_type,
        "message": message,
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "context": {key: str(value) for key, value in context.items()},
    }
    path = chain_error_path(config)
    atomic_write(path, json.dumps(record, indent=2) + "\n", 0o600)
    return path


def clear_chain_error(config: LabConfig) -> None:
    """Forget the recorded error (a chain that succeeds calls this)."""
    chain_error_path(config).unlink(missing_ok=True)


def read_chain_error(config: LabConfig) -> ChainError | None:
    """The recorded chain error, or None (also when the file is unreadable)."""
    try:
        record = json.loads(chain_error_path(config).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    context = record.get("context") or {}
    return ChainError(
        step=str(record.get("step", "")),
        error_type=str(record.get("error_type", "")),
        message=str(record.get("message", "")),
        recorded_at=str(record.get("recorded_at", "")),
        context={str(k): str(v) for k, v in context.items()} if isinstance(context, dict) else {},
    )


# --- facts ----------------------------------------------------------------------------------


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


class Evidence:
    """Collects and caches the facts of one doctor run.

    Args:
        config: The lab config.
        mode: ``auto``, ``local`` or ``kind``; ``auto`` is resolved like ``lab up`` does.
        cluster: Where cluster facts come from; by default the live kind cluster in kind mode.
        proc_root: Root of the ``/proc`` tree to read sysctls and modules from (a test seam).
        sys_root: Root of the ``/sys`` tree (a test seam).
    """

    def __init__(
        self,
        config: LabConfig,
        *,
        mode: str | None = None,
        cluster: ClusterSource | None = None,
        proc_root: Path = Path("/proc"),
        sys_root: Path = Path("/sys"),
    ) -> None:
        self.config = config
        self.requested_mode = mode or config.mode
        if self.requested_mode not in ("auto", "local", "kind", "cluster"):
            raise ValueError(f"mode must be auto, local, kind or cluster, got {self.requested_mode!r}")
        self.proc_root = proc_root
        self.sys_root = sys_root
        self._cluster = cluster
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._values: dict[str, Any] = {}
        self._errors: dict[str, tuple[str, str]] = {}
        self._docker_tokens: dict[str, str] = {}
        self.collected: dict[str, Any] = {}

    def fresh(self) -> Evidence:
        """A new collector with the same sources and seams (to re-check after a fix)."""
        return Evidence(
            self.config,
            mode=self.mode,
            cluster=self._cluster,
            proc_root=self.proc_root,
            sys_root=self.sys_root,
        )

    # --- plumbing ---------------------------------------------------------------------------

    def _memo(self, key: str, produce: Callable[[], T]) -> T:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._values:
                return self._values[key]  # type: ignore[no-any-return]
            if key in self._errors:
                raise EvidenceUnavailable(*self._errors[key])
            try:
                value = produce()
            except ClusterUnreachable as exc:
                # One short reason for every check that needed the cluster; kind-cluster shows the cause.
                self._errors[key] = ("the cluster cannot be inspected (see kind-cluster)", str(exc))
                self.collected[key] = {"unavailable": str(exc)}
                raise EvidenceUnavailable(*self._errors[key]) from None
            except EvidenceUnavailable as exc:
                self._errors[key] = (str(exc), exc.detail)
                self.collected[key] = {"unavailable": exc.detail}
                raise
            self._values[key] = value
            self.collected[key] = value
            return value

    def secret_values(self) -> list[str]:
        """Strings that must never be shown: passwords and tokens the lab knows."""
        values = [self.config.registry_auth.password]
        auth = self.config.registry_auth
        if auth.enabled:
            values.append(base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode())
        values.extend(self._docker_tokens.values())
        password_file = self.config.home / "etc" / "database.password"
        try:
            values.append(password_file.read_text().strip())
        except OSError:
            pass
        return sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with every known secret value replaced."""
        for value in self.secret_values():
            text = text.replace(value, REDACTED)
        return text

    # --- mode -------------------------------------------------------------------------------

    def _mode(self) -> tuple[str, str]:
        def resolve() -> tuple[str, str]:
            if self.requested_mode in ("local", "kind", "cluster"):
                return self.requested_mode, f"mode {self.requested_mode} was asked for"
            return choose_mode("auto", self.engine())

        return self._memo("mode", resolve)

    @property
    def mode(self) -> str:
        """The resolved mode: ``local`` or ``kind``."""
        return self._mode()[0]

    @property
    def mode_reason(self) -> str:
        """Why that mode."""
        return self._mode()[1]

    # --- host facts -------------------------------------------------------------------------

    def engine(self) -> EngineProbe:
        """Whether docker or podman answers (``<engine> info``)."""
        return self._memo("host/engine", lambda: probe_container_engine(timeout=ENGINE_PROBE_TIMEOUT))

    def sysctl(self, name: str) -> SysctlFact:
        """A sysctl such as ``fs.inotify.max_user_watches``, read from ``<proc_root>/sys``."""

        def read() -> SysctlFact:
            path = self.proc_root / "sys" / Path(*name.split("."))
            try:
                return SysctlFact(name, int(path.read_text().split()[0]), str(path))
            except (OSError, ValueError, IndexError) as exc:
                return SysctlFact(name, None, f"{path}: {type(exc).__name__}")

        return self._memo(f"host/sysctl/{name}", read)

    def kernel_module(self, name: str) -> ModuleFact:
        """Whether a kernel module is loaded: ``/proc/modules``, else ``/sys/module/<name>``."""

        def read() -> ModuleFact:
            modules = self.proc_root / "modules"
            try:
                loaded = any(line.split(" ", 1)[0] == name for line in modules.read_text().splitlines())
                return ModuleFact(name, loaded, str(modules))
            except OSError:
                pass
            sys_modules = self.sys_root / "module"
            if sys_modules.is_dir():
                return ModuleFact(name, (sys_modules / name).is_dir(), str(sys_modules / name))
            return ModuleFact(name, None, f"neither {modules} nor {sys_modules} is readable")

        return self._memo(f"host/module/{name}", read)

    def disk(self) -> DiskFact:
        """Free space where ``$LAB_HOME`` lives (or would be created)."""

        def read() -> DiskFact:
            path = self.config.home
            while not path.exists() and path != path.parent:
                path = path.parent
            usage = shutil.disk_usage(path)
            return DiskFact(str(path), usage.free, usage.total)

        return self._memo("host/disk", read)

    def arch(self) -> str:
        """The host CPU architecture (``uname -m``)."""
        return self._memo("host/arch", platform.machine)

    def port(self, port: int) -> PortFact:
        """Whether a loopback port is free, and who holds it."""

        def read() -> PortFact:
            if port_is_free(port):
                return PortFact(port, True, None, "")
            pid = listening_pid(port)
            return PortFact(port, False, pid, process_command(pid)[:160] if pid else "")

        return self._memo(f"host/port/{port}", read)

    def host_lookup(self, host: str) -> str:
        """Resolve ``host`` on this machine: the answer or the error, as a sentence.

        Bounded, because a broken resolver must not hang the doctor.
        """

        def read() -> str:
            answer: list[str] = []

            def lookup() -> None:
                try:
                    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
                    answer.append(
                        f"{host} resolves to " + ", ".join(sorted({str(info[4][0]) for info in infos}))
                    )
                except OSError as exc:
                    answer.append(f"cannot resolve {host}: {exc}")

            worker = threading.Thread(target=lookup, daemon=True)
            worker.start()
            worker.join(DNS_TIMEOUT)
            return answer[0] if answer else f"resolving {host} took longer than {DNS_TIMEOUT:.0f}s"

        return self._memo(f"host/dns/{host}", read)

    # --- local lab --------------------------------------------------------------------------

    def component(self, name: str) -> Any:
        """``lab.local`` status of one local component (a ``ComponentStatus``)."""
        from lab import local

        def read() -> Any:
            return local.component_status(local.components(self.config, (name,))[0])

        return self._memo(f"local/{name}/status", read)

    def component_log(self, name: str, lines: int = 15) -> list[str]:
        """The last lines of a local component's log, secrets redacted."""
        path = self.config.log_dir / f"{name}.log"
        return self._memo(f"local/{name}/log", lambda: [self.redact(line) for line in log_tail(path, lines)])

    def http(self, url: str, *, method: str = "GET", credentials_for: str = "") -> HttpProbe:
        """One bounded HTTP request; ``credentials_for`` sends the lab's credentials for that host."""

        def probe() -> HttpProbe:
            headers = {}
            if credentials_for:
                self.lab_docker_auths()
                token = self._docker_tokens.get(credentials_for)
                if token is None:
                    raise EvidenceUnavailable(
                        f"the lab's config.json has no credentials for {credentials_for}"
                    )
                headers["Authorization"] = f"Basic {token}"
            try:
                response = requests.request(method, url, headers=headers, timeout=HTTP_TIMEOUT)
            except requests.RequestException as exc:
                reason = type(exc).__name__
                if isinstance(exc, requests.ConnectionError) and "refused" in str(exc).lower():
                    reason = "connection refused"
                return HttpProbe(method, url, None, reason, with_credentials=credentials_for)
            body = self.redact(" ".join(response.text.split())[:200])
            return HttpProbe(method, url, response.status_code, "", body, credentials_for)

        return self._memo(
            f"http/{method} {url}" + (f" as {credentials_for}" if credentials_for else ""), probe
        )

    def lab_docker_auths(self) -> DockerAuthFacts:
        """Hosts in the lab's ``config.json`` (``$LAB_HOME/docker``); credentials stay inside."""

        def read() -> DockerAuthFacts:
            path = self.config.docker_config_dir / "config.json"
            try:
                data = json.loads(path.read_text())
            except FileNotFoundError:
                return DockerAuthFacts(str(path), False, ())
            except (OSError, ValueError) as exc:
                return DockerAuthFacts(str(path), True, (), f"unreadable: {type(exc).__name__}")
            auths = data.get("auths", {}) if isinstance(data, dict) else {}
            for host, entry in auths.items() if isinstance(auths, dict) else []:
                if isinstance(entry, dict) and entry.get("auth"):
                    self._docker_tokens[host] = str(entry["auth"])
            hosts = tuple(sorted(auths)) if isinstance(auths, dict) else ()
            return DockerAuthFacts(
                str(path), True, hosts, credential_hosts=tuple(sorted(self._docker_tokens))
            )

        return self._memo("local/docker-config", read)

    def chain_error(self) -> ChainError | None:
        """The chain's recorded error (``$LAB_HOME/run/last-chain-error.json``), secrets redacted."""

        def read() -> ChainError | None:
            error = read_chain_error(self.config)
            if error is None:
                return None
            return ChainError(
                error.step,
                error.error_type,
                self.redact(error.message),
                error.recorded_at,
                {k: self.redact(v) for k, v in error.context.items()},
            )

        return self._memo("chain/last-error", read)

    def directory(self, path: str) -> DirectoryFacts:
        """Whether a directory exists and which files it holds (first few names)."""

        def read() -> DirectoryFacts:
            target = Path(path)
            if not target.exists():
                return DirectoryFacts(path, False, False, 0, ())
            if not target.is_dir():
                return DirectoryFacts(path, True, False, 0, ())
            files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
            return DirectoryFacts(path, True, True, len(files), tuple(files[:5]))

        return self._memo(f"path/{path}", read)

    # --- cluster ----------------------------------------------------------------------------

    @property
    def cluster_context(self) -> str:
        """The lab cluster's kubeconfig context (kind's, or the one cluster mode was given)."""
        from lab.provision.kube import context_name

        return context_name(self.config)

    def cluster_source(self) -> ClusterSource:
        """The cluster source in use (the live kind cluster unless one was given)."""

        def build() -> ClusterSource:
            if self._cluster is not None:
                return self._cluster
            if self.mode not in ("kind", "cluster"):
                raise EvidenceUnavailable("local mode has no cluster")
            if self.mode == "cluster":
                kubeconfig = Path(self.config.kubeconfig) if self.config.kubeconfig else None
                return LiveCluster(self.cluster_context, kubeconfig=kubeconfig)
            engine = self.engine()
            # kind writes the context into the default kubeconfig (KUBECONFIG or ~/.kube/config).
            return LiveCluster(self.cluster_context, engine=engine.engine if engine.answers else "")

        return self._memo("cluster/source", build)

    def _objects(self, kind: str) -> list[Any]:
        return self._memo(f"cluster/{kind}", lambda: self.cluster_source().objects(kind))

    def pods(self) -> list[Any]:
        """Every pod (``V1Pod``)."""
        return self._objects("pods")

    def events(self) -> list[Any]:
        """Every event (``CoreV1Event``)."""
        return self._objects("events")

    def pvcs(self) -> list[Any]:
        """Every PersistentVolumeClaim."""
        return self._objects("pvcs")

    def storage_classes(self) -> list[Any]:
        """Every StorageClass."""
        return self._objects("storageclasses")

    def deployments(self) -> list[Any]:
        """Every Deployment."""
        return self._objects("deployments")

    def nodes(self) -> list[Any]:
        """Every node."""
        return self._objects("nodes")

    def config_map_keys(self, namespace: str, name: str) -> tuple[str, ...] | None:
        """Key names of a ConfigMap, or None when it does not exist."""

        def read() -> tuple[str, ...] | None:
            cm = self.cluster_source().config_map(namespace, name)
            if cm is None:
                return None
            return tuple(sorted({*(cm.data or {}), *(cm.binary_data or {})}))

        return self._memo(f"cluster/configmap/{namespace}/{name}", read)

    def secret(self, namespace: str, name: str) -> SecretFacts | None:
        """Key names (and docker-config auth hosts) of a Secret, or None when it does not exist."""

        def read() -> SecretFacts | None:
            secret = self.cluster_source().secret(namespace, name)
            if secret is None:
                return None
            data = dict(secret.data or {})
            plain = dict(secret.string_data or {})
            hosts: tuple[str, ...] | None = None
            credentialed: tuple[str, ...] = ()
            for key in DOCKER_CONFIG_KEYS:
                if key in plain or key in data:
                    try:
                        text = plain[key] if key in plain else base64.b64decode(data[key]).decode()
                        hosts, credentialed = docker_auth_hosts(text)
                    except (ValueError, binascii.Error, UnicodeDecodeError):
                        hosts = ()
                    break
            keys = tuple(sorted({*data, *plain}))
            return SecretFacts(namespace, name, secret.type or "Opaque", keys, hosts, credentialed)

        return self._memo(f"cluster/secret/{namespace}/{name}", read)

    def custom_objects(self, group: str, version: str, plural: str) -> list[dict[str, Any]] | None:
        """Custom objects (API dicts); None when the CRD is not installed."""
        return self._memo(
            f"cluster/{plural}.{group}", lambda: self.cluster_source().custom_objects(group, version, plural)
        )

    def pod_log(
        self, namespace: str, pod: str, container: str, *, previous: bool = False, lines: int = 20
    ) -> list[str]:
        """A container's log tail (``previous``: the crashed run's), secrets redacted."""

        def read() -> list[str]:
            text = self.cluster_source().pod_log(
                namespace, pod, container, previous=previous, tail_lines=lines
            )
            return [self.redact(line) for line in text.splitlines()[-lines:]] or ["(log is empty)"]

        which = "previous" if previous else "current"
        return self._memo(f"cluster/logs/{namespace}/{pod}/{container}/{which}", read)

    def node_file(self, node: str, path: str) -> str | None:
        """A file on a kind node, or None when absent."""
        return self._memo(
            f"cluster/node-file/{node}{path}", lambda: self.cluster_source().node_file(node, path)
        )

    def container_networks(self, container: str) -> list[str] | None:
        """Networks of a container on the host engine (None: no such container)."""
        return self._memo(
            f"cluster/container-networks/{container}",
            lambda: self.cluster_source().container_networks(container),
        )

    def node_lookup(self, node: str, host: str) -> str:
        """Resolve ``host`` from inside a kind node."""
        return self._memo(
            f"cluster/node-dns/{node}/{host}", lambda: self.cluster_source().node_lookup(node, host)
        )


def env_prefix(config: LabConfig) -> str:
    """Environment prefix so a pasted remedy talks to the same lab (home and moved ports)."""
    from lab.config import Ports

    parts = []
    if config.home != LabConfig().home:
        parts.append(f"LAB_HOME={config.home}")
    defaults = Ports()
    for name, variable in (
        ("registry", "LAB_REGISTRY_PORT"),
        ("database", "LAB_DATABASE_PORT"),
        ("model_registry", "LAB_MODEL_REGISTRY_PORT"),
    ):
        if getattr(config.ports, name) != getattr(defaults, name):
            parts.append(f"{variable}={getattr(config.ports, name)}")
    return " ".join(parts) + " " if parts else ""


def is_root() -> bool:
    """Whether this process may write sysctls."""
    return os.geteuid() == 0
