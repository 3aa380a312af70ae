"""The embedded local lab's components: OCI registry, PostgreSQL, Model Registry server.

Each component knows its port, how to prepare its data once, the command that runs it
in the foreground (the lab detaches it), and the health probe that gates ``up``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lab.atomic_files import atomic_write
from lab.config import LabConfig, env_variable_for
from lab.errors import LabError
from lab.http_probe import NoAnswer, http_request
from lab.local.database_place import database_place, reachable_binaries, run_as
from lab.local.processes import OwnedProcess
from lab.tools import tool_path
from lab.tools.binary_version import version_output

HEALTH_TIMEOUT = 2.0
# The Model Registry server reads its database DSN from this variable (keeps it out of argv).
DSN_VARIABLE = "MR_EMBEDMD_DATABASE_DSN"
# What PostgreSQL < 16 answers to the Model Registry's `IS JSON ARRAY` migration (000025).
JSON_SYNTAX_ERROR = 'syntax error at or near "JSON"'


@dataclass(frozen=True)
class Health:
    """Outcome of one health probe."""

    ok: bool
    detail: str


class Component:
    """A local lab server; subclasses fill in the specifics."""

    name = ""
    port_setting = ""
    tools: tuple[str, ...] = ()
    stop_signal: int = signal.SIGTERM

    def __init__(self, config: LabConfig) -> None:
        self.config = config
        self.process = OwnedProcess(
            self.name, config.run_dir / f"{self.name}.pid", config.log_dir / f"{self.name}.log"
        )

    @property
    def port(self) -> int:
        """The host port (``config.ports.<port_setting>``)."""
        return int(getattr(self.config.ports, self.port_setting))

    @property
    def port_variable(self) -> str:
        """The ``LAB_*`` variable that moves this component to another port."""
        return env_variable_for("ports", self.port_setting)

    @property
    def url(self) -> str:
        """Where clients reach it."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        """This component's persistent data."""
        return self.config.data_dir / self.name

    def run_as(self) -> str | None:
        """The unprivileged user to run as, if any."""
        return None

    def prepare(self) -> None:
        """One-time and every-start preparation (config files, data directories)."""

    def argv(self) -> list[str]:
        """The foreground command."""
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """Environment of the process."""
        return dict(os.environ)

    def after_start(self) -> None:
        """Work once the component is healthy (e.g. create a database)."""

    def lock_files(self) -> list[Path]:
        """Lock files naming a pid that the server refuses to start past (cleared when stale)."""
        return []

    def explain_failure(self, log: list[str]) -> str:
        """A known cause of a failed start, read from its log tail (``""`` when none is known)."""
        return ""

    def health(self) -> Health:
        """Probe the running component."""
        raise NotImplementedError

    def version(self) -> str:
        """Version of the binary that runs it."""
        from lab.tools import inspect_tool, tool_specs

        tool_path(self.config, self.tools[0])  # raises ToolUnavailable with the install command
        spec = next(s for s in tool_specs(self.config) if s.name == self.tools[0])
        return inspect_tool(spec, self.config).found


class Registry(Component):
    """The OCI registry (CNCF distribution), loopback only, optional htpasswd auth."""

    name = "registry"
    port_setting = "registry"
    tools = ("registry",)

    @property
    def config_file(self) -> Path:
        """The rendered registry config."""
        return self.config.home / "etc" / "registry.yml"

    @property
    def htpasswd_file(self) -> Path:
        """The htpasswd file used when auth is on."""
        return self.config.home / "etc" / "registry.htpasswd"

    def prepare(self) -> None:
        """Render the config and htpasswd; write the docker config.json the lab's clients use."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        auth = self.config.registry_auth
        htpasswd = ""
        if auth.enabled:
            import bcrypt  # only to write the htpasswd file: `up` of a healthy lab never gets here

            hashed = bcrypt.hashpw(auth.password.encode(), bcrypt.gensalt(rounds=10)).decode()
            atomic_write(self.htpasswd_file, f"{auth.username}:{hashed}\n", 0o600)
            htpasswd = str(self.htpasswd_file)
        else:
            self.htpasswd_file.unlink(missing_ok=True)
        from lab.templates import render_template  # jinja2: only when (re)starting

        text = render_template(
            "registry-config.yml.j2", data_dir=self.data_dir, port=self.port, htpasswd_path=htpasswd
        )
        atomic_write(self.config_file, text)
        write_docker_config(self.config)

    def argv(self) -> list[str]:
        """``registry serve <config>``."""
        return [str(tool_path(self.config, "registry")), "serve", str(self.config_file)]

    def environment(self) -> dict[str, str]:
        """Keep the registry's own OpenTelemetry exporter quiet: there is no collector."""
        return {**os.environ, "OTEL_TRACES_EXPORTER": "none"}

    def health(self) -> Health:
        """``GET /v2/``: 200, or 401 when auth is on (the registry answers, it wants credentials)."""
        try:
            response = http_request(f"{self.url}/v2/", timeout=HEALTH_TIMEOUT)
        except NoAnswer as exc:
            return Health(False, f"GET {self.url}/v2/ failed: {exc}")
        expected = {401} if self.config.registry_auth.enabled else {200}
        if response.status in expected:
            return Health(True, f"GET /v2/ -> {response.status}")
        return Health(False, f"GET {self.url}/v2/ -> {response.status}")


def write_docker_config(config: LabConfig) -> Path:
    """Docker-style ``config.json`` with the registry's credentials (0600; used via DOCKER_CONFIG)."""
    auths: dict[str, dict[str, str]] = {}
    auth = config.registry_auth
    if auth.enabled:
        token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
        for host in (config.registry_host, f"localhost:{config.ports.registry}"):
            auths[host] = {"auth": token}
    path = config.docker_config_dir / "config.json"
    atomic_write(path, json.dumps({"auths": auths}, indent=2) + "\n", 0o600)
    return path


class Database(Component):
    """A private PostgreSQL instance for the Model Registry (never the system one)."""

    name = "database"
    port_setting = "database"
    tools = ("postgres",)
    # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
    stop_signal = signal.SIGINT

    @property
    def url(self) -> str:
        """A DSN without the password."""
        n = self.config.names
        return f"postgres://{n.database_user}@127.0.0.1:{self.port}/{n.database_name}"

    @property
    def password_file(self) -> Path:
        """The generated database password (0600)."""
        return self.config.home / "etc" / "database.password"

    def password(self) -> str:
        """The database password, generated on first use."""
        if not self.password_file.is_file():
            atomic_write(self.password_file, secrets.token_urlsafe(24), 0o600)
        return self.password_file.read_text().strip()

    def dsn(self) -> str:
        """Full DSN for the Model Registry server."""
        n = self.config.names
        return (
            f"postgres://{n.database_user}:{self.password()}@127.0.0.1:{self.port}/"
            f"{n.database_name}?sslmode=disable"
        )

    @property
    def data_dir(self) -> Path:
        """In the home's data, or outside the home where ``nobody`` cannot reach it (database_place)."""
        return database_place(self.config)

    def run_as(self) -> str | None:
        """PostgreSQL refuses to run as root; run it as an unprivileged user then."""
        account = run_as()
        return account.user if account else None

    def _bin(self, name: str) -> str:
        return str(reachable_binaries(self.config, tool_path(self.config, "postgres")) / name)

    def prepare(self) -> None:
        """``initdb`` once, with password auth, owned by the user that runs the server."""
        pgdata = self.data_dir / "pgdata"
        account = run_as()
        if (pgdata / "PG_VERSION").is_file():
            return
        shutil.rmtree(pgdata, ignore_errors=True)
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        initdb = self._bin("initdb")
        # Beside the data directory: the one folder the database's own user is sure to reach.
        pwfile = pgdata.parent / ".initdb-password"
        atomic_write(pwfile, self.password() + "\n", 0o600)
        try:
            if account:
                os.chown(pwfile, account.uid, account.gid)
                os.chown(pgdata.parent, account.uid, account.gid)
            argv = [
                initdb,
                "-D",
                str(pgdata),
                "-U",
                self.config.names.database_user,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--no-instructions",
            ]
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                check=False,
                user=account.uid if account else None,
                group=account.gid if account else None,
                extra_groups=[] if account else None,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            shutil.rmtree(pgdata, ignore_errors=True)
            raise LabError(
                f"initdb failed for the lab database at {pgdata}",
                (proc.stdout + proc.stderr).splitlines()[-10:],
            )

    def argv(self) -> list[str]:
        """``postgres`` on loopback, socket in the data directory (not the system's /run)."""
        pgdata = self.data_dir / "pgdata"
        return [
            self._bin("postgres"),
            "-D",
            str(pgdata),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={pgdata}",
        ]

    def lock_files(self) -> list[Path]:
        """PostgreSQL will not start while the pid in these exists, even as a zombie."""
        pgdata = self.data_dir / "pgdata"
        return [pgdata / "postmaster.pid", pgdata / f".s.PGSQL.{self.port}.lock"]

    def _psql_env(self) -> dict[str, str]:
        return {**os.environ, "PGPASSWORD": self.password(), "PGCONNECT_TIMEOUT": "3"}

    def health(self) -> Health:
        """The server accepts an authenticated connection and answers a query."""
        n = self.config.names
        argv = [self._bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", n.database_user]
        argv += ["-d", "postgres", "-tAc", "select version()"]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env=self._psql_env(), timeout=5)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Health(False, f"psql failed: {exc}")
        if proc.returncode == 0 and proc.stdout.startswith("PostgreSQL "):
            # The server's own version is evidence for mr-database-version.
            return Health(True, f"accepts connections; select version(): {proc.stdout.strip()}")
        return Health(False, (proc.stderr.strip().splitlines() or ["no answer"])[-1])

    def after_start(self) -> None:
        """Create the Model Registry database if it does not exist yet."""
        n = self.config.names
        base = [self._bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", n.database_user, "-d"]
        env = self._psql_env()
        check = subprocess.run(
            [*base, "postgres", "-tAc", f"select 1 from pg_database where datname='{n.database_name}'"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if check.stdout.strip() == "1":
            return
        create = subprocess.run(
            [*base, "postgres", "-c", f'create database "{n.database_name}"'],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if create.returncode != 0:
            raise LabError(f"could not create database {n.database_name}", create.stderr.splitlines())

    def explain_failure(self, log: list[str]) -> str:
        """A data directory of another major version (e.g. 15, from before the pin moved to 18)."""
        marker = self.data_dir / "pgdata" / "PG_VERSION"
        written = marker.read_text().strip() if marker.is_file() else ""
        running = self.version().split(".")[0]
        if written and running and written != running:
            return (
                f"its data directory {marker.parent} was written by PostgreSQL {written} and this lab "
                f"runs PostgreSQL {running}; `lab down --purge` deletes it (and the Model Registry's "
                "data) so the next `lab up` creates a new one"
            )
        return ""

    def server_version(self) -> str:
        """``select version()`` of the running server (e.g. ``18.6``), ``""`` when it does not answer."""
        try:
            health = self.health()
        except LabError:
            return ""
        match = re.search(r"select version\(\): PostgreSQL (\d+(?:\.\d+)*)", health.detail)
        return match.group(1) if health.ok and match else ""

    def version(self) -> str:
        """The server's full version (``postgres --version``)."""
        stdout, _ = version_output(Path(self._bin("postgres")), ("--version",))
        match = re.search(r"\(PostgreSQL\) (\S+)", stdout)
        return match.group(1) if match else ""


class ModelRegistryServer(Component):
    """The Kubeflow Model Registry REST server, embedmd datastore on the lab's PostgreSQL."""

    name = "model-registry"
    port_setting = "model_registry"
    tools = ("model-registry",)

    def argv(self) -> list[str]:
        """``model-registry proxy`` with the embedmd PostgreSQL datastore."""
        return [
            str(tool_path(self.config, "model-registry")),
            "proxy",
            "--hostname",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--datastore-type",
            "embedmd",
            "--embedmd-database-type",
            "postgres",
        ]

    def environment(self) -> dict[str, str]:
        """The DSN (with the database password) goes in the environment, never in argv (``ps``)."""
        return {**os.environ, DSN_VARIABLE: Database(self.config).dsn()}

    def explain_failure(self, log: list[str]) -> str:
        """The Model Registry's migrations need PostgreSQL >= 16: say so instead of "restart"."""
        needed = self.config.versions.postgres_minimum_major
        running = Database(self.config).server_version()
        too_old = bool(running) and running.split(".")[0].isdigit() and int(running.split(".")[0]) < needed
        if too_old or any(JSON_SYNTAX_ERROR in line for line in log):
            return (
                f"the Model Registry's database migrations need PostgreSQL >= {needed} (`IS JSON`), its "
                f"database is PostgreSQL {running or 'of unknown version'}: restarting cannot help; "
                "see `lab doctor mr-database-version`"
            )
        return ""

    def health(self) -> Health:
        """``GET /readyz/health``."""
        try:
            response = http_request(f"{self.url}/readyz/health", timeout=HEALTH_TIMEOUT)
        except NoAnswer as exc:
            return Health(False, f"GET {self.url}/readyz/health failed: {exc}")
        if response.status == 200:
            return Health(True, "GET /readyz/health -> 200")
        return Health(False, f"GET {self.url}/readyz/health -> {response.status}: {response.text[:200]}")


COMPONENTS: dict[str, type[Component]] = {
    "registry": Registry,
    "database": Database,
    "model-registry": ModelRegistryServer,
}
