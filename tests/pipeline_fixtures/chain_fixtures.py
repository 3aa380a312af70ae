"""Helpers for the chain's tests: throwaway labs, raw OCI pushes and fetches, tar layers.

The hostile ModelKits are pushed byte for byte through the registry's HTTP API (the
distribution spec's monolithic blob upload and manifest PUT) and fetched back the same way
into an OCI image layout, which is exactly what the unpacker's ``--oci-layout`` reads.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from lab import local
from lab.config import LabConfig, load_config
from lab.local.model_server_process import stop_model_server
from lab.loopback_ports import free_port
from lab.progress import Progress
from lab.tools import tool_path
from tests.conftest import make_home, remove_home, unobtainable_tools

QUIET = Progress(quiet=True)
KITOPS_CONFIG = "application/vnd.kitops.modelkit.config.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MODEL_LAYER = "application/vnd.kitops.modelkit.model.v1.tar+gzip"
DATASET_LAYER = "application/vnd.kitops.modelkit.dataset.v1.tar"


def new_lab(**env: str) -> LabConfig:
    """A config for a fresh LAB_HOME (world-traversable) on free ports, sharing the built tools."""
    home = make_home()
    values = {
        "LAB_HOME": str(home),
        "LAB_MODE": "local",
        "LAB_REGISTRY_PORT": str(free_port()),
        "LAB_DATABASE_PORT": str(free_port()),
        "LAB_MODEL_REGISTRY_PORT": str(free_port()),
        "LAB_MODEL_SERVER_PORT": str(free_port()),
        **env,
    }
    return load_config(env=values, toml_path=home / "no-lab.toml")


def destroy(config: LabConfig) -> None:
    """Stop everything the lab started in this home (by pid), then delete the home."""
    stop_model_server(config)
    remove_home(config.home, config)


@contextlib.contextmanager
def running_registry(**env: str) -> Iterator[LabConfig]:
    """A fresh lab whose registry runs (htpasswd auth when ``env`` names a user); destroyed after."""
    config = new_lab(**env)
    try:
        local.up(config, QUIET, ("registry",))
        yield config
    finally:
        destroy(config)


def require(config: LabConfig, *tools: str) -> dict[str, Path]:
    """Paths of the tools, or skip with the resolver's own one-line reason."""
    found = {}
    for tool in tools:
        if tool in unobtainable_tools():
            pytest.skip(unobtainable_tools()[tool])
        found[tool] = tool_path(config, tool)
    return found


def cli_env(config: LabConfig) -> dict[str, str]:
    """Environment pointing the ``lab`` CLI at this config's home and ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}
    env.update(
        LAB_HOME=str(config.home),
        LAB_MODE=config.mode,
        LAB_REGISTRY_PORT=str(config.ports.registry),
        LAB_DATABASE_PORT=str(config.ports.database),
        LAB_MODEL_REGISTRY_PORT=str(config.ports.model_registry),
        LAB_MODEL_SERVER_PORT=str(config.ports.model_server),
    )
    return env


def userland_path(kind: str, directory: Path) -> str:
    """A PATH without kit: this machine's GNU tools, or busybox applets plus bash and jq.

    The kitops-kubeflow image is Alpine: its tar, dd, od, awk, find are busybox's. Running the
    scripts on busybox applets here is how their portability to the cluster is tested.
    """
    if kind == "gnu":
        return "/usr/bin:/bin"
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip(
            "busybox is not installed (apt-get install busybox): the kitops-kubeflow image's userland"
        )
    directory.mkdir(parents=True, exist_ok=True)
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        (directory / applet).symlink_to(busybox)
    for tool in ("bash", "jq"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed to run the chain scripts"
        (directory / tool).unlink(missing_ok=True)
        (directory / tool).symlink_to(found)
    return str(directory)


# --- tar layers ------------------------------------------------------------------------------


@dataclass
class Member:
    """One tar member: a file (data), a directory, a symlink/hard link (target), a device or FIFO."""

    name: str
    data: bytes = b""
    kind: str = "file"  # file | dir | symlink | hardlink | chardev | fifo
    target: str = ""
    pax: dict[str, str] = field(default_factory=dict)


def tar_layer(members: list[Member], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """An uncompressed tar holding exactly these members, headers as given."""
    types = {
        "file": tarfile.REGTYPE,
        "dir": tarfile.DIRTYPE,
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
        "chardev": tarfile.CHRTYPE,
        "fifo": tarfile.FIFOTYPE,
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = types[member.kind]
            info.linkname = member.target
            info.mode = 0o755 if member.kind == "dir" else 0o644
            info.pax_headers = dict(member.pax)
            if member.kind == "file":
                info.size = len(member.data)
                archive.addfile(info, io.BytesIO(member.data))
            else:
                archive.addfile(info)
    return buffer.getvalue()


# --- raw OCI push and fetch ----------------------------------------------------------------------


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(
    host: str, repository: str, data: bytes, auth: tuple[str, str] | None = None
) -> dict[str, object]:
    """Monolithic blob upload (POST then PUT ?digest=); returns the descriptor."""
    digest = sha256(data)
    start = requests.post(f"http://{host}/v2/{repository}/blobs/uploads/", timeout=10, auth=auth)
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    if location.startswith("/"):
        location = f"http://{host}{location}"
    put = requests.put(
        location,
        params={"digest": digest},
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
        auth=auth,
    )
    assert put.status_code == 201, put.text
    return {"digest": digest, "size": len(data)}


def push_modelkit_raw(
    host: str,
    repository: str,
    tag: str,
    layers: list[tuple[bytes, str]],
    config: bytes | None = None,
    config_type: str = KITOPS_CONFIG,
    auth: tuple[str, str] | None = None,
) -> str:
    """Push a ModelKit-shaped manifest with these (blob, media type) layers; its digest."""
    config = config if config is not None else json.dumps({"manifestVersion": "1.0.0"}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": config_type, **push_blob(host, repository, config, auth)},
        "layers": [{"mediaType": media, **push_blob(host, repository, blob, auth)} for blob, media in layers],
    }
    body = json.dumps(manifest).encode()
    put = requests.put(
        f"http://{host}/v2/{repository}/manifests/{tag}",
        data=body,
        headers={"Content-Type": MANIFEST},
        timeout=10,
        auth=auth,
    )
    assert put.status_code == 201, put.text
    assert put.headers["Docker-Content-Digest"] == sha256(body)
    return sha256(body)


def fetch_oci_layout(host: str, repository: str, reference: str, layout: Path) -> str:
    """Copy a manifest and its blobs from the registry into an OCI image layout; the digest."""
    response = requests.get(
        f"http://{host}/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST}, timeout=10
    )
    response.raise_for_status()
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    digest = sha256(response.content)
    (blobs / digest.removeprefix("sha256:")).write_bytes(response.content)
    manifest = response.json()
    for descriptor in [manifest["config"], *manifest["layers"]]:
        blob = requests.get(f"http://{host}/v2/{repository}/blobs/{descriptor['digest']}", timeout=10)
        blob.raise_for_status()
        (blobs / descriptor["digest"].removeprefix("sha256:")).write_bytes(blob.content)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": MANIFEST,
                "digest": digest,
                "size": len(response.content),
                "annotations": {"org.opencontainers.image.ref.name": reference},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return digest


def gzip_layer(members: list[Member], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A gzip-compressed tar layer (kit's default compression)."""
    return gzip.compress(tar_layer(members, fmt), mtime=0)
