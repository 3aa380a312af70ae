"""Clients against the real local services: registry (with and without auth), Model Registry, kit."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import oras.client
import pytest
import requests

from lab import local
from lab.config import LabConfig
from lab.local.components import Database
from lab.progress import Progress
from lab.tools import tool_path
from tests.conftest import make_config


def push_blob(base: str, repo: str, data: bytes, auth: tuple[str, str] | None) -> requests.Response:
    """A raw OCI blob upload (POST then PUT), as any client does."""
    start = requests.post(f"{base}/v2/{repo}/blobs/uploads/", auth=auth, timeout=5)
    if start.status_code != 202:
        return start
    location = start.headers["Location"]
    if location.startswith("/"):
        location = base + location
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    sep = "&" if "?" in location else "?"
    return requests.put(f"{location}{sep}digest={digest}", data=data, auth=auth, timeout=5)


def test_push_and_pull_an_artifact_through_the_real_registry(
    lab_config: LabConfig, quiet: Progress, tmp_path: Path
) -> None:
    local.up(lab_config, quiet, ("registry",))
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(4096))
    client = oras.client.OrasClient(hostname=lab_config.registry_host, insecure=True)
    target = f"{lab_config.registry_host}/lab/artifact:v1"
    pushed = client.push(target=target, files=[str(model)], disable_path_validation=True)
    assert pushed.status_code in (200, 201)
    out = tmp_path / "out"
    files = client.pull(target=target, outdir=str(out))
    assert Path(files[0]).read_bytes() == model.read_bytes()
    tags = requests.get(f"http://{lab_config.registry_host}/v2/lab/artifact/tags/list", timeout=5).json()
    assert tags["tags"] == ["v1"]


def test_registry_with_auth_rejects_anonymous_push_and_accepts_the_lab_credentials(lab_home: Path) -> None:
    config = make_config(lab_home, LAB_REGISTRY_USER="labuser", LAB_REGISTRY_PASSWORD="s3cret-pw")
    local.up(config, Progress(quiet=True), ("registry",))
    base = f"http://{config.registry_host}"
    try:
        anonymous = push_blob(base, "lab/secure", b"weights", None)
        assert anonymous.status_code == 401
        assert "Basic" in anonymous.headers.get("WWW-Authenticate", "")
        wrong = push_blob(base, "lab/secure", b"weights", ("labuser", "wrong"))
        assert wrong.status_code == 401

        # The credentials come from the docker-style config.json the lab wrote, never from arguments.
        docker_config = json.loads((config.docker_config_dir / "config.json").read_text())
        entry = docker_config["auths"][config.registry_host]["auth"]
        import base64

        user, password = base64.b64decode(entry).decode().split(":", 1)
        accepted = push_blob(base, "lab/secure", b"weights", (user, password))
        assert accepted.status_code == 201, accepted.text
        assert oct((config.docker_config_dir / "config.json").stat().st_mode & 0o777) == "0o600"
    finally:
        local.down(config, Progress(quiet=True))


def test_model_registry_client_round_trip_against_the_real_server(
    lab_config: LabConfig, quiet: Progress, require_tool
) -> None:
    require_tool("model-registry")
    from model_registry import ModelRegistry

    local.up(lab_config, quiet)
    registry = ModelRegistry(
        "http://127.0.0.1", lab_config.ports.model_registry, author="lab-tests", is_secure=False
    )
    model = registry.register_model(
        "round-trip",
        "kit://127.0.0.1:5001/lab/model@sha256:" + "0" * 64,
        version="v1",
        model_format_name="sklearn",
        model_format_version="1",
    )
    again = registry.get_registered_model("round-trip")
    assert again is not None and again.id == model.id
    version = registry.get_model_version("round-trip", "v1")
    assert version is not None
    artifact = registry.get_model_artifact("round-trip", "v1")
    assert artifact is not None and artifact.uri.startswith("kit://")
    # The rows live in the lab's own PostgreSQL.
    assert Database(lab_config).health().ok


def test_kit_push_and_pull_through_the_real_registry(
    lab_config: LabConfig, quiet: Progress, tmp_path: Path, require_tool
) -> None:
    require_tool("kit")
    local.up(lab_config, quiet, ("registry",))
    kit = str(tool_path(lab_config, "kit"))
    work = tmp_path / "kit"
    work.mkdir()
    (work / "model.joblib").write_bytes(os.urandom(2048))
    (work / "Kitfile").write_text("manifestVersion: 1.0\npackage:\n  name: t\nmodel:\n  path: model.joblib\n")
    env = {
        **os.environ,
        "DOCKER_CONFIG": str(lab_config.docker_config_dir),
        "KITOPS_HOME": str(tmp_path / "kitops-home"),
    }
    ref = f"{lab_config.registry_host}/lab/kit-test:v1"
    subprocess.run([kit, "pack", str(work), "-t", ref], check=True, env=env)
    subprocess.run([kit, "push", ref, "--plain-http"], check=True, env=env)
    out = tmp_path / "out"
    subprocess.run([kit, "unpack", ref, "-d", str(out), "--plain-http"], check=True, env=env)
    assert (out / "model.joblib").read_bytes() == (work / "model.joblib").read_bytes()


@pytest.mark.parametrize("component", ["registry", "database"])
def test_health_probes_fail_when_the_component_is_down(lab_config: LabConfig, component: str) -> None:
    status = local.status(lab_config, (component,))[0]
    assert status.state == "stopped" and status.pid is None
