"""``lab doctor --bundle FILE``: everything the doctor looked at, in one tar.gz to attach to a report.

Contents: the report (text and JSON), every collected fact (cluster objects, events, logs,
HTTP probes, host facts), the local components' logs, the version matrix, the tool list and
the config. Secrets never enter it: Secrets were reduced to key names at collection, and
every file passes through the redaction of known passwords and tokens. Written atomically.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import platform
import re
import sys
import tarfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from lab.doctor.evidence import REDACTED, chain_error_path
from lab.doctor.render import render_json, render_text
from lab.doctor.runner import Report
from lab.images import image_pins

LOG_LINES = 500


def _plain(value: Any) -> Any:
    """JSON-able form: kubernetes models as the API writes them, dataclasses as dicts."""
    if hasattr(value, "openapi_types"):
        # Imported here: the door loads the kubernetes client, slow to import.
        from lab.kube import to_manifest

        return to_manifest(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return getattr(value, "description", None) or str(value)


def _file_name(key: str) -> str:
    # Keys are paths ("cluster/pods", "local/registry/status") except HTTP probes, whose URL
    # is flattened into one file name.
    if key.startswith("http/"):
        return "http/" + re.sub(r"[^A-Za-z0-9.-]+", "_", key[len("http/") :]).strip("_") + ".json"
    return re.sub(r"[^A-Za-z0-9._/-]+", "_", key).strip("/") + ".json"


def _versions(report: Report) -> dict[str, Any]:
    config = report.evidence.config
    packages: dict[str, str | None] = {}
    for name in ("kubeflow-modelkit-lab", "kubernetes", "requests", "model-registry", "kfp", "kserve"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "matrix": dataclasses.asdict(config.versions),
        "images": [pin.as_dict() for pin in image_pins(config.versions)],
        "python": sys.version,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": packages,
    }


def _tools(report: Report) -> list[dict[str, object]]:
    from lab.tools import inspect_tool, tool_specs

    config = report.evidence.config
    return [inspect_tool(spec, config).as_dict() for spec in tool_specs(config)]


def _config(report: Report) -> dict[str, Any]:
    data = _plain(report.evidence.config)
    if data["registry_auth"]["password"]:
        data["registry_auth"]["password"] = REDACTED
    return data


def bundle_files(report: Report) -> dict[str, str]:
    """Name -> text of every file the bundle holds (already redacted)."""
    evidence = report.evidence
    config = evidence.config
    files: dict[str, str] = {
        "report.txt": render_text(report) + "\n",
        "report.json": render_json(report) + "\n",
        "versions.json": json.dumps(_versions(report), indent=2),
        "tools.json": json.dumps(_tools(report), indent=2),
        "config.json": json.dumps(_config(report), indent=2),
    }
    for key, value in sorted(evidence.collected.items()):
        files[f"evidence/{_file_name(key)}"] = json.dumps(_plain(value), indent=2, default=str)
    for log in sorted(config.log_dir.glob("*.log")) if config.log_dir.is_dir() else []:
        lines = log.read_text(errors="replace").splitlines()[-LOG_LINES:]
        files[f"logs/{log.name}"] = "\n".join(lines) + "\n"
    chain = chain_error_path(config)
    if chain.is_file():
        files[f"chain/{chain.name}"] = chain.read_text(errors="replace")
    return {name: evidence.redact(text) for name, text in files.items()}


def write_bundle(report: Report, path: Path) -> Path:
    """Write the bundle to ``path`` atomically (0600); returns the path."""
    path = path.expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp{os.getpid()}")
    root = f"lab-doctor-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name, text in bundle_files(report).items():
                data = text.encode()
                info = tarfile.TarInfo(f"{root}/{name}")
                info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
                tar.addfile(info, io.BytesIO(data))
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return path
