"""Local serving: the ``kit://`` storage initializer, then the real KServe model server.

Mirrors what KServe does in the cluster: a storage-initializer step fetches
``kit://<reference>`` with the unpacker in its storage-initializer mode (``scripts/unpack_modelkit.py
storage-initializer kit://REF DEST``, what the ``kitops`` ClusterStorageContainer runs, with the
same checks as the pipeline's unpack), then the model server starts on the unpacked directory.
The server is a background process the lab owns (pid file under ``$LAB_HOME/run``, log
under ``$LAB_HOME/logs``), bound to 127.0.0.1, and counts as started only once the model
answers ready.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import sys
from pathlib import Path

from lab.atomic_files import atomic_write
from lab.config import PROJECT_ROOT, LabConfig, env_variable_for
from lab.errors import LabError
from lab.http_probe import NoAnswer, http_request
from lab.local.model_server_process import MODEL_SERVER, model_server_process, stop_model_server
from lab.local.processes import ensure_port_free, log_tail, port_is_free, wait_until
from lab.pipeline.modelkit_ref import ModelKitRef
from lab.pipeline.scripts import STORAGE_INITIALIZER, UNPACKER, run_unpacker, script_environment

PROBE_TIMEOUT = 2.0


def serving_url(config: LabConfig) -> str:
    """Base URL of the local model server."""
    return f"http://127.0.0.1:{config.ports.model_server}"


def serving_dir(config: LabConfig, model_name: str) -> Path:
    """Where the storage initializer puts the served model."""
    return config.home / "serving" / model_name


def model_is_ready(url: str, model_name: str) -> bool:
    """The server answers and reports the model ready (``GET /v1/models/<name>``)."""
    try:
        response = http_request(f"{url}/v1/models/{model_name}", timeout=PROBE_TIMEOUT)
        return response.status == 200 and bool(json.loads(response.text).get("ready"))
    except (NoAnswer, ValueError, AttributeError):
        return False


def model_server_status(config: LabConfig) -> dict[str, object]:
    """What ``lab status`` shows of the model server: state, pid, URL, model name, ready.

    The model name comes from the command line recorded in the pid file when the lab started
    it; ``ready`` is the server's own answer for that model.
    """
    process = model_server_process(config)
    pid = process.pid()
    model = ""
    try:
        argv = json.loads(process.pid_file.read_text()).get("argv", [])
        model = argv[argv.index("--model-name") + 1]
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    url = serving_url(config)
    ready = pid is not None and bool(model) and model_is_ready(url, model)
    if pid is None:
        state = "stale" if process.is_stale() else "stopped"
        detail = "pid file points at a process that is gone" if state == "stale" else "not running"
        detail += " (`lab demo` starts it)"
    elif "--standby" in _recorded_argv(config):
        state = "starting"
        detail = f"standby for model {model or '?'}: started ahead, serves once `lab demo` hands it the model"
    else:
        state = "ready" if ready else "unhealthy"
        detail = f"model {model or '?'} {'ready' if ready else 'not ready'} at {url}/v1/models/{model}"
    try:
        version = f"kserve {importlib.metadata.version('kserve')}"
    except importlib.metadata.PackageNotFoundError:
        version = ""
    return {
        "name": MODEL_SERVER,
        "state": state,
        "url": url,
        "pid": pid,
        "version": version,
        "detail": detail,
        "log": str(process.log_file),
        "model": model,
        "ready": ready,
    }


def _server_command(config: LabConfig, model_dir: Path, model_name: str) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    # The server imports lab.pipeline.model_server even where the lab is not installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    argv = [sys.executable, "-m", "lab.pipeline.model_server", "--model-dir", str(model_dir)]
    argv += ["--model-name", model_name, "--port", str(config.ports.model_server)]
    return argv, env


def _wait_ready(config: LabConfig, model_name: str, timeout: float) -> str:
    process = model_server_process(config)
    url = serving_url(config)
    wait_until(lambda: process.pid() is None or model_is_ready(url, model_name), timeout, interval=0.05)
    if not model_is_ready(url, model_name):
        died = process.pid() is None
        process.stop(timeout=5.0)
        reason = (
            "exited during start-up" if died else f"did not report {model_name} ready within {timeout:.0f}s"
        )
        raise LabError(
            f"the model server {reason}; log {process.log_file} ends with:", log_tail(process.log_file)
        )
    return url


def start_model_server(config: LabConfig, model_dir: Path, model_name: str, timeout: float = 60.0) -> str:
    """Start the model server on ``model_dir`` (replacing a previous one of ours); return its URL.

    Raises:
        PortTaken: The port is held by a process the lab did not start.
        LabError: The server died or was not ready in time; carries its log tail.
    """
    process = model_server_process(config)
    process.stop(timeout=10.0)
    ensure_port_free(config.ports.model_server, "model server", env_variable_for("ports", "model_server"))
    argv, env = _server_command(config, model_dir, model_name)
    process.start(argv, env=env)
    return _wait_ready(config, model_name, timeout)


# --- the standby: the model server's process started before its model exists -----------------


def _standby_files(config: LabConfig) -> tuple[Path, Path]:
    go = config.run_dir / "model-server.go"
    return go, go.with_name(go.name + ".waiting")


def _recorded_argv(config: LabConfig) -> list[str]:
    try:
        return list(json.loads(model_server_process(config).pid_file.read_text()).get("argv", []))
    except (OSError, ValueError, AttributeError):
        return []


def start_standby(config: LabConfig, model_name: str) -> bool:
    """Start the model server's process now, to serve ``model_name`` once released; False if one runs.

    Its imports (seconds) then overlap whatever runs meanwhile; it binds no port until
    :func:`serve_modelkit` has put the model in place and released it. A model server of
    ours that already runs is left alone (it keeps serving until the new model is ready).
    """
    process = model_server_process(config)
    if process.pid() is not None or not port_is_free(config.ports.model_server):
        # Ours keeps serving; a stranger's port is reported by the serve step, as without a standby.
        return False
    for path in _standby_files(config):
        path.unlink(missing_ok=True)
    argv, env = _server_command(config, serving_dir(config, model_name), model_name)
    process.start([*argv, "--standby", str(_standby_files(config)[0])], env=env)
    return True


def standby_waiting(config: LabConfig, model_name: str) -> bool:
    """A standby of ours runs for ``model_name`` and has not been released yet."""
    argv = _recorded_argv(config)
    if "--standby" not in argv or model_server_process(config).pid() is None:
        return False
    return argv[argv.index("--model-name") + 1] == model_name


def standby_import_seconds(config: LabConfig, started: float) -> float | None:
    """How long the standby took to import what it needs (None: it is not that far yet)."""
    try:
        return float(_standby_files(config)[1].read_text()) - started
    except (OSError, ValueError):
        return None


def stop_standby(config: LabConfig, model_name: str) -> None:
    """Stop a standby that was never released (the chain failed before serving)."""
    if standby_waiting(config, model_name):
        stop_model_server(config)
    for path in _standby_files(config):
        path.unlink(missing_ok=True)


def release_standby(config: LabConfig, model_name: str, timeout: float = 60.0) -> str:
    """Tell the waiting standby its model is in place; its URL once the model reports ready.

    Raises:
        LabError: It died or was not ready in time (it is stopped; the error carries its log tail).
    """
    process = model_server_process(config)
    record = json.loads(process.pid_file.read_text())
    argv = record["argv"]
    # From now on it is the model server: the pid file no longer says standby.
    record["argv"] = argv[: argv.index("--standby")]
    atomic_write(process.pid_file, json.dumps(record), 0o600)
    atomic_write(_standby_files(config)[0], "go\n")
    return _wait_ready(config, model_name, timeout)


def initialize_storage(
    config: LabConfig,
    storage_uri: str,
    destination: Path,
    *,
    plain_http: bool,
    unpacker: Path = UNPACKER,
) -> None:
    """Fetch ``kit://...`` into ``destination`` the way KServe's kitops storage container does.

    Credentials: ``DOCKER_CONFIG`` (the lab's config.json), plus ``KIT_USER``/``KIT_PASSWORD``
    from the registry auth settings, as the ``kit-secret`` gives them in the cluster.
    """
    extra = {"KIT_UNPACK_FLAGS": "--plain-http" if plain_http else ""}
    auth = config.registry_auth
    if auth.enabled:
        extra.update(KIT_USER=auth.username, KIT_PASSWORD=auth.password)
    env = script_environment(docker_config=config.docker_config_dir, extra=extra)
    arguments = [STORAGE_INITIALIZER, storage_uri, str(destination)]
    run_unpacker(arguments, env, path=unpacker, cache_dir=config.home / "cache")


def serve_modelkit(
    config: LabConfig,
    modelkit_ref: ModelKitRef,
    model_name: str,
    *,
    plain_http: bool,
    unpacker: Path = UNPACKER,
    timeout: float = 60.0,
) -> str:
    """Storage-initialize ``kit://<modelkit_ref>`` and serve it; return the serving URL.

    The new model is unpacked beside the served one and swapped in only when complete, so a
    failed fetch leaves the previous model (and server) as they were.
    """
    destination = serving_dir(config, model_name)
    incoming = destination.with_name(f".{model_name}.incoming")
    shutil.rmtree(incoming, ignore_errors=True)
    incoming.parent.mkdir(parents=True, exist_ok=True)
    try:
        initialize_storage(
            config,
            modelkit_ref.uri,
            incoming,
            plain_http=plain_http,
            unpacker=unpacker,
        )
        from lab.pipeline.model_server import find_model_file

        find_model_file(incoming)
    except (LabError, ValueError):
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    standby = standby_waiting(config, model_name)
    if not standby:
        stop_model_server(config)
    previous = destination.with_name(f".{model_name}.previous")
    shutil.rmtree(previous, ignore_errors=True)
    if destination.exists():
        destination.rename(previous)
    incoming.rename(destination)
    shutil.rmtree(previous, ignore_errors=True)
    if standby:
        return release_standby(config, model_name, timeout)
    return start_model_server(config, destination, model_name, timeout=timeout)
