"""Host facts: inotify limits (real /proc and a seam), container engine, disk space."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from lab.config import LabConfig
from lab.doctor import Evidence, apply_fixes, diagnose
from lab.doctor.model import Result
from lab.invocation import as_invoked
from lab.progress import Progress
from tests.conftest import make_config

INOTIFY = Path("/proc/sys/fs/inotify")


def judge(config: LabConfig, check_id: str, mode: str, **seams: Path) -> Result:
    evidence = Evidence(config, mode=mode, **seams)  # type: ignore[arg-type]
    return diagnose(config, [check_id], evidence=evidence).outcome(check_id).result


def fake_proc(root: Path, watches: int, instances: int) -> Path:
    inotify = root / "sys" / "fs" / "inotify"
    inotify.mkdir(parents=True)
    (inotify / "max_user_watches").write_text(f"{watches}\n")
    (inotify / "max_user_instances").write_text(f"{instances}\n")
    return root


def test_inotify_limits_read_from_the_real_proc(config: LabConfig) -> None:
    watches = int((INOTIFY / "max_user_watches").read_text())
    instances = int((INOTIFY / "max_user_instances").read_text())
    result = judge(config, "inotify-limits", "kind")

    expected = "fail" if watches < 524288 or instances < 512 else "ok"
    assert result.status == expected
    assert (
        f"fs.inotify.max_user_watches = {watches} (from /proc/sys/fs/inotify/max_user_watches"
        in result.evidence[0]
    )
    assert (
        f"fs.inotify.max_user_instances = {instances} (from /proc/sys/fs/inotify/max_user_instances"
        in result.evidence[1]
    )
    if expected == "fail":
        assert result.fixable and any(line.startswith("sudo sysctl -w fs.inotify.") for line in result.remedy)


def test_low_inotify_limits_fail_and_the_fix_raises_them(config: LabConfig, tmp_path: Path) -> None:
    proc = fake_proc(tmp_path / "proc", 8192, 128)
    evidence = Evidence(config, mode="kind", proc_root=proc)
    report = diagnose(config, ["inotify-limits"], evidence=evidence)
    result = report.outcome("inotify-limits").result
    assert result.status == "fail"
    assert (
        "fs.inotify.max_user_watches and fs.inotify.max_user_instances below what kind needs"
        in result.summary
    )
    assert "sudo sysctl -w fs.inotify.max_user_watches=524288" in result.remedy
    assert "sudo sysctl -w fs.inotify.max_user_instances=512" in result.remedy

    fixed = apply_fixes(report, lambda check, result: True, Progress(quiet=True)).outcome("inotify-limits")
    assert fixed.fix is not None and fixed.fix.applied
    assert (proc / "sys/fs/inotify/max_user_watches").read_text() == "524288\n"
    assert fixed.result.status == "ok"


def test_inotify_limits_do_not_matter_in_local_mode(config: LabConfig, tmp_path: Path) -> None:
    result = judge(config, "inotify-limits", "local", proc_root=fake_proc(tmp_path / "proc", 8192, 128))
    assert result.status == "skipped" and "only kind clusters" in result.summary
    assert "fs.inotify.max_user_watches = 8192" in result.evidence[0]


def test_docker_missing_when_no_engine_is_installed(
    config: LabConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker, no podman on PATH
    result = judge(config, "docker-missing", "kind")
    assert result.status == "fail"
    assert result.evidence == ("docker: not on PATH; podman: not on PATH",)
    assert (
        "sudo systemctl start docker" in result.remedy and as_invoked("lab up --mode local") in result.remedy
    )


def test_docker_missing_when_the_daemon_does_not_answer(
    config: LabConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker, asked = tmp_path / "docker", tmp_path / "docker-asked"
    docker.write_text(
        f"#!/bin/sh\n: > {asked}\n"
        "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
        "Is the docker daemon running?' >&2\nexit 1\n"
    )
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    result = judge(config, "docker-missing", "kind")
    assert result.status == "fail"
    assert f"{docker} info: exit 1: Cannot connect to the Docker daemon" in result.evidence[0]
    asked.unlink()
    # In local mode no answer of the engine matters: it is not asked.
    assert judge(config, "docker-missing", "local").status == "skipped"
    assert not asked.exists()


def test_disk_space_reports_the_filesystem_of_lab_home(config: LabConfig) -> None:
    result = judge(config, "disk-space", "local")
    assert result.status in ("ok", "warn", "fail")
    assert "GiB free of" in result.evidence[0] and str(config.home) in result.evidence[0]


def test_kind_tools_name_the_missing_tool_and_the_install_command(tmp_path: Path) -> None:
    result = judge(make_config(tmp_path / "empty-home"), "kind-tools", "kind")
    assert result.status == "fail" and "kind" in result.summary.split(" not installed")[0]
    assert any(line.startswith("kind: kind ") and "not installed" in line for line in result.evidence)
    assert result.remedy == (as_invoked("lab tools install --mode kind"),)


def test_kind_registry_port_held_by_another_program(config: LabConfig) -> None:
    assert judge(config, "kind-registry-port", "kind").status == "ok"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", config.ports.registry))
        squatter.listen()
        result = judge(config, "kind-registry-port", "kind")
    assert result.status == "fail" and "another program" in result.summary
    assert any(as_invoked("LAB_REGISTRY_PORT=<port> lab up --mode kind") in line for line in result.remedy)
    assert judge(config, "kind-registry-port", "local").status == "skipped"
