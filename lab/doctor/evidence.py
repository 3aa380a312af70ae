"""Evidence: every fact the doctor judges, collected once, kept for the bundle.

Collection is separate from judging (as in the style guide's doctors): checks ask an
:class:`Evidence` object for facts — host facts, local lab status and log tails, HTTP
probes, cluster objects, recorded chain errors — and never reach the system themselves.
Each fact is collected at most once per run (checks run concurrently and share it) and
recorded in :attr:`Evidence.collected` for ``lab doctor --bundle``.

Secrets never leave this module: a Secret becomes :class:`SecretFacts` (key names and the
registry hosts of a docker config, never values), and known passwords are redacted from
every log tail and message.

The chain-error contract lives in :mod:`lab.doctor.chain_errors` and the fact records in
:mod:`lab.doctor.facts`; both are re-exported here for the checks.
"""

from __future__ import annotations

import base64
import json
import platform
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lab.config import LabConfig
from lab.doctor.chain_errors import (  # noqa: F401  (re-exported)
    CHAIN_ERROR_FILE,
    ChainError,
    chain_error_path,
    clear_chain_error,
    read_chain_error,
    record_chain_error,
)
from lab.doctor.cluster import ClusterSource
from lab.doctor.cluster_facts import ClusterFacts, EvidenceUnavailable
from lab.doctor.facts import (  # noqa: F401  (re-exported)
    DOCKER_CONFIG_KEYS,
    DirectoryFacts,
    DiskFact,
    DockerAuthFacts,
    HttpProbe,
    ModuleFact,
    PortFact,
    SecretFacts,
    SysctlFact,
    ToolFact,
    docker_auth_hosts,
    env_prefix,
    is_root,
)
from lab.engine import EngineProbe, choose_mode, probe_container_engine
from lab.errors import ClusterUnreachable, LabError
from lab.http_probe import NoAnswer, http_request
from lab.local.ownership import owner_of
from lab.local.processes import listening_pid, log_tail, port_is_free, process_command
from lab.tools import kustomize_argv, tool_path

T = TypeVar("T")

HTTP_TIMEOUT = 2.0  # seconds per connect or read: a healthy loopback server answers in milliseconds
ENGINE_PROBE_TIMEOUT = 4.0
DNS_TIMEOUT = 2.0
REDACTED = "<redacted>"


class Evidence(ClusterFacts):
    """Collects and caches the facts of one doctor run.

    Args:
        config: The lab config.
        mode: ``auto``, ``local`` or ``kind``; ``auto`` is resolved like ``lab up`` does.
        cluster: Where cluster facts come from; by default the live kind cluster in kind mode.
        proc_root: Root of the ``/proc`` tree to read sysctls and modules from (a test seam).
        sys_root: Root of the ``/sys`` tree (a test seam).
        engine_timeout: How long ``<engine> info`` may take; ``lab up``'s preflight waits as long
            as provisioning would, the doctor less.
    """

    def __init__(
        self,
        config: LabConfig,
        *,
        mode: str | None = None,
        cluster: ClusterSource | None = None,
        proc_root: Path = Path("/proc"),
        sys_root: Path = Path("/sys"),
        engine_timeout: float = ENGINE_PROBE_TIMEOUT,
    ) -> None:
        self.config = config
        self.requested_mode = mode or config.mode
        if self.requested_mode not in ("auto", "local", "kind", "cluster"):
            raise ValueError(f"mode must be auto, local, kind or cluster, got {self.requested_mode!r}")
        self.proc_root = proc_root
        self.sys_root = sys_root
        self.engine_timeout = engine_timeout
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
            engine_timeout=self.engine_timeout,
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
        return self._memo("host/engine", lambda: probe_container_engine(timeout=self.engine_timeout))

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

    def _engine_output(self, *argv: str) -> str:
        probe = self.engine()
        if not probe.answers:
            return ""
        try:
            done = subprocess.run(
                [probe.engine, *argv],
                capture_output=True,
                text=True,
                timeout=ENGINE_PROBE_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    def engine_disk(self) -> DiskFact | None:
        """Free space where Docker keeps images, when that directory is visible here (not in a VM)."""

        def read() -> DiskFact | None:
            if self.engine().engine != "docker":
                return None
            root = self._engine_output("info", "--format", "{{.DockerRootDir}}")
            if not root or not Path(root).exists():
                return None
            usage = shutil.disk_usage(root)
            return DiskFact(root, usage.free, usage.total)

        return self._memo("host/engine-disk", read)

    def published_port(self, container: str, port: int) -> str:
        """What ``<engine> port <container> <port>`` prints: empty when unpublished or no engine."""
        return self._memo(
            f"host/published/{container}/{port}", lambda: self._engine_output("port", container, str(port))
        )

    def tool(self, name: str) -> ToolFact:
        """How the lab runs ``name`` (``kustomize``: the pinned one, else kubectl's), or why it cannot."""

        def read() -> ToolFact:
            try:
                if name == "kustomize":
                    return ToolFact(name, " ".join(kustomize_argv(self.config)))
                return ToolFact(name, str(tool_path(self.config, name)))
            except LabError as exc:  # ToolUnavailable included
                return ToolFact(name, "", exc.message)

        return self._memo(f"host/tool/{name}", read)

    def arch(self) -> str:
        """The host CPU architecture (``uname -m``)."""
        return self._memo("host/arch", platform.machine)

    def port(self, port: int) -> PortFact:
        """Whether a loopback port is free, and who holds it."""

        def read() -> PortFact:
            if port_is_free(port):
                return PortFact(port, True, None, "")
            pid = listening_pid(port)
            if pid is None:
                return PortFact(port, False, None, "")
            marker = owner_of(pid)
            home, component = (marker.owner, marker.component) if marker else ("", "")
            return PortFact(port, False, pid, process_command(pid)[:160], home, component)

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
                response = http_request(url, HTTP_TIMEOUT, method=method, headers=headers)
            except NoAnswer as exc:
                return HttpProbe(method, url, None, str(exc), with_credentials=credentials_for)
            body = self.redact(" ".join(response.text.split())[:200])
            return HttpProbe(method, url, response.status, "", body, credentials_for)

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
