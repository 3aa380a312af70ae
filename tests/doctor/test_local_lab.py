"""Local-mode diagnoses produced for real: the lab's own registry and PostgreSQL processes."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urljoin

import pytest
import requests
from doctor_labs import QUIET, REGISTRY_PASSWORD, REGISTRY_USER, cli_env, destroy, new_config

from lab import local
from lab.config import LabConfig, RegistryAuth
from lab.doctor import apply_fixes, clear_chain_error, diagnose, record_chain_error
from lab.doctor.model import Result
from lab.invocation import as_invoked
from lab.local.components import Database, Registry, write_docker_config


def judge(config: LabConfig, check_id: str) -> Result:
    return diagnose(config, [check_id], mode="local").outcome(check_id).result


def text(lines: tuple[str, ...]) -> str:
    return "\n".join(lines)


def lab_cli(config: LabConfig, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab", "doctor", *args],
        capture_output=True,
        text=True,
        env=cli_env(config),
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


# --- a healthy lab ------------------------------------------------------------------------


def test_healthy_local_lab_fails_only_on_the_unavailable_model_registry(
    healthy_lab: LabConfig, shared_tools: dict[str, str]
) -> None:
    start = time.monotonic()
    report = diagnose(healthy_lab, mode="local")
    elapsed = time.monotonic() - start
    print(f"\nlab doctor on a healthy local lab (registry + database): {elapsed:.2f}s")

    statuses = {o.check.id: o.result.status for o in report.outcomes}
    for check_id in ("registry-health", "database-health", "port-conflict", "registry-unauthorized"):
        assert statuses[check_id] == "ok", report.outcome(check_id).result
    assert statuses["kfp-not-ready"] == "skipped" and statuses["docker-missing"] in ("skipped", "ok")
    registry = report.outcome("registry-health").result
    assert registry.summary.startswith(
        f"registry ready at http://127.0.0.1:{healthy_lab.ports.registry} (pid "
    )
    if "model-registry" not in shared_tools:
        pytest.skip("a Model Registry server binary is installed here; the unavailable state cannot be shown")
    assert [o.check.id for o in report.failed] == ["model-registry-health"]
    assert report.exit_code == 1
    unavailable = report.outcome("model-registry-health").result
    assert unavailable.summary == "model-registry cannot run here: its server binary is not installed"
    lines = text(unavailable.evidence)
    assert (
        f"GET http://127.0.0.1:{healthy_lab.ports.model_registry}/readyz/health failed: connection refused"
        in lines
    )
    assert "model-registry v0.3.8 is not installed" in lines
    assert f"log {healthy_lab.log_dir / 'model-registry.log'} ends with:" in lines
    assert any(
        line.endswith(as_invoked("lab tools install --mode local model-registry"))
        for line in unavailable.remedy
    )


def test_cli_on_a_healthy_lab_exit_codes_text_and_json(
    healthy_lab: LabConfig, shared_tools: dict[str, str]
) -> None:
    full = lab_cli(healthy_lab, "--mode", "local")
    assert "✓ registry-health" in full.stdout and "✓ database-health" in full.stdout
    assert (
        full.stdout.index("\nregistry\n")
        < full.stdout.index("\ndatabase\n")
        < full.stdout.index("\nmodel-registry\n")
    )
    if "model-registry" in shared_tools:
        assert full.returncode == 1, full.stdout + full.stderr
        assert "✗ model-registry-health" in full.stdout
        assert as_invoked("lab tools install --mode local model-registry") in full.stdout
        assert "model-registry.log ends with:" in full.stdout

    named = lab_cli(healthy_lab, "--mode", "local", "registry-health", "database-health", "port-conflict")
    assert named.returncode == 0, named.stdout + named.stderr
    assert (
        named.stdout.strip()
        .splitlines()[-1]
        .startswith("3 checks: 3 ok, 0 warnings, 0 failed, 0 skipped in ")
    )

    as_json = lab_cli(healthy_lab, "--mode", "local", "--json", "registry-health")
    report = json.loads(as_json.stdout)
    assert as_json.returncode == 0 and report["mode"] == "local" and report["exit_code"] == 0
    assert [(c["id"], c["status"], c["group"]) for c in report["checks"]] == [
        ("registry-health", "ok", "registry")
    ]

    unknown = lab_cli(healthy_lab, "no-such-check")
    assert unknown.returncode == 2 and "unknown check id(s) no-such-check" in unknown.stderr


# --- stopped components and --fix ---------------------------------------------------------


def test_stopped_registry_is_diagnosed_then_restarted_by_fix(registry_lab: LabConfig) -> None:
    Registry(registry_lab).process.stop()
    report = diagnose(registry_lab, ["registry-health", "registry-unauthorized"], mode="local")

    result = report.outcome("registry-health").result
    assert result.status == "fail" and result.fixable
    assert result.summary == "registry is not running"
    lines = text(result.evidence)
    assert "state stopped: not running" in lines
    assert f"log {registry_lab.log_dir / 'registry.log'} ends with:" in lines
    assert "| --- lab: starting " in lines  # the real log of the run that was stopped
    assert any(
        line.endswith(as_invoked("lab up --mode local --components registry")) for line in result.remedy
    )
    assert report.outcome("registry-unauthorized").result.status == "skipped"

    fixed = apply_fixes(report, lambda check, result: True, QUIET)
    after = fixed.outcome("registry-health")
    assert after.fix is not None and after.fix.applied and after.fix.message == "started registry"
    assert after.result.status == "ok"
    # Re-checked with fresh evidence: the check that could not run before runs now.
    assert fixed.outcome("registry-unauthorized").result.status == "ok"
    assert requests.get(f"http://{registry_lab.registry_host}/v2/", timeout=5).status_code == 200


def test_cli_fix_asks_for_consent_and_yes_applies(registry_lab: LabConfig) -> None:
    Registry(registry_lab).process.stop()
    refused = lab_cli(registry_lab, "--mode", "local", "--fix", "registry-health")
    assert refused.returncode == 1
    assert "fix not applied: no terminal to ask for consent; re-run with --yes" in refused.stdout

    applied = lab_cli(registry_lab, "--mode", "local", "--fix", "--yes", "registry-health")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "✓ registry-health" in applied.stdout and "fix applied: started registry" in applied.stdout

    assert lab_cli(registry_lab, "--yes", "registry-health").returncode == 2  # --yes without --fix


@pytest.fixture
def database_lab(shared_tools: dict[str, str]) -> Iterator[LabConfig]:
    if "postgres" in shared_tools:
        pytest.skip(shared_tools["postgres"])
    config = new_config()
    try:
        local.up(config, QUIET, ("database",))
        yield config
    finally:
        destroy(config)


def test_stopped_database_shows_its_shutdown_in_the_log(database_lab: LabConfig) -> None:
    Database(database_lab).process.stop(stop_signal=signal.SIGINT)
    result = judge(database_lab, "database-health")
    assert result.status == "fail" and result.fixable
    assert result.summary == "database is not running"
    assert "| " in text(result.evidence) and "database system is shut down" in text(result.evidence)
    assert any(
        line.endswith(as_invoked("lab up --mode local --components database")) for line in result.remedy
    )


def test_port_held_by_another_process(config: LabConfig, require_tool) -> None:
    require_tool("registry")
    port = config.ports.registry
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        report = diagnose(config, ["port-conflict", "registry-health"], mode="local")

    conflict = report.outcome("port-conflict").result
    assert conflict.status == "fail"
    assert f"port {port} needed by registry is held by pid {os.getpid()} (" in conflict.evidence[0]
    # One copy-pasteable command that carries the new port (no export the prefix would override).
    moved = [
        line for line in conflict.remedy if as_invoked("lab up --mode local --components registry") in line
    ]
    assert len(moved) == 1 and "export" not in " ".join(conflict.remedy)
    suggested = int(moved[0].split("LAB_REGISTRY_PORT=")[1].split()[0])
    assert suggested != port and moved[0].count("LAB_REGISTRY_PORT=") == 1
    registry = report.outcome("registry-health").result
    assert (
        registry.status == "fail" and not registry.fixable
    )  # restarting cannot help while the port is taken
    assert f"port {port} is held by pid {os.getpid()}" in text(registry.evidence)


# --- registry credentials: real 401s from the real registry -------------------------------


def lab_token(config: LabConfig) -> str:
    auths = json.loads((config.docker_config_dir / "config.json").read_text())["auths"]
    return str(auths[config.registry_host]["auth"])


def test_push_refused_with_401_when_the_client_sends_no_credentials(auth_lab: LabConfig) -> None:
    host = auth_lab.registry_host
    upload = f"http://{host}/v2/doctor-probe/blobs/uploads/"
    anonymous = requests.post(upload, timeout=5)
    assert anonymous.status_code == 401
    with pytest.raises(requests.HTTPError) as refused:
        anonymous.raise_for_status()
    record_chain_error(auth_lab, "push", refused.value, reference=f"{host}/doctor-probe:1")
    try:
        result = judge(auth_lab, "registry-unauthorized")
        assert result.status == "fail"
        assert result.summary.startswith(
            "a push was refused with 401 although the lab's credentials are accepted"
        )
        lines = text(result.evidence)
        assert "chain step 'push' failed" in lines and "HTTPError: 401 Client Error: Unauthorized" in lines
        assert f"GET http://{host}/v2/ -> 401" in lines
        assert f"GET http://{host}/v2/ with the credentials for {host} -> 200" in lines
        assert f"export DOCKER_CONFIG={auth_lab.docker_config_dir}" in result.remedy
        assert REGISTRY_PASSWORD not in repr(result) and lab_token(auth_lab) not in repr(result)

        # The same upload with the lab's config.json credentials is accepted.
        accepted = requests.post(upload, headers={"Authorization": f"Basic {lab_token(auth_lab)}"}, timeout=5)
        assert accepted.status_code == 202
        requests.delete(
            urljoin(upload, accepted.headers["Location"]),
            headers={"Authorization": f"Basic {lab_token(auth_lab)}"},
            timeout=5,
        )
    finally:
        clear_chain_error(auth_lab)
    assert judge(auth_lab, "registry-unauthorized").status == "ok"


def test_wrong_credentials_in_the_labs_config_json(auth_lab: LabConfig) -> None:
    config_json = auth_lab.docker_config_dir / "config.json"
    original = config_json.read_text()
    wrong = dataclasses.replace(auth_lab, registry_auth=RegistryAuth(REGISTRY_USER, "not-the-password"))
    write_docker_config(wrong)
    try:
        wrong_token = lab_token(auth_lab)
        push = requests.post(
            f"http://{auth_lab.registry_host}/v2/doctor-probe/blobs/uploads/",
            headers={"Authorization": f"Basic {wrong_token}"},
            timeout=5,
        )
        assert push.status_code == 401  # the real registry refuses them

        result = judge(auth_lab, "registry-unauthorized")
        assert result.status == "fail"
        assert (
            result.summary
            == f"the registry rejects the credentials in the lab's config.json for {auth_lab.registry_host}"
        )
        assert f"with the credentials for {auth_lab.registry_host} -> 401" in text(result.evidence)
        assert "export LAB_REGISTRY_USER=<user> LAB_REGISTRY_PASSWORD=<password>" in result.remedy
        for secret in ("not-the-password", wrong_token, REGISTRY_PASSWORD):
            assert secret not in repr(result)
    finally:
        config_json.write_text(original)


def test_missing_lab_credentials(auth_lab: LabConfig) -> None:
    config_json = auth_lab.docker_config_dir / "config.json"
    original = config_json.read_text()
    config_json.unlink()
    try:
        result = judge(auth_lab, "registry-unauthorized")
        assert result.status == "fail"
        assert result.summary == f"the lab's config.json has no credentials for {auth_lab.registry_host}"
        assert f"lab docker config {config_json}: missing" in result.evidence
    finally:
        config_json.write_text(original)


# --- Model Registry: a real readiness endpoint vs nothing listening -----------------------


@contextmanager
def readiness_endpoint(port: int) -> Iterator[None]:
    class Ready(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            ok = self.path == "/readyz/health"
            body = b"OK" if ok else b"not found"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def test_model_registry_health_with_a_readiness_endpoint_and_without(
    config: LabConfig, shared_tools: dict[str, str]
) -> None:
    url = f"http://127.0.0.1:{config.ports.model_registry}/readyz/health"
    with readiness_endpoint(config.ports.model_registry):
        ready = judge(config, "model-registry-health")
    assert ready.status == "ok"
    assert ready.summary == f"Model Registry ready at {url} (served by a process the lab did not start)"
    assert ready.evidence == (f"GET {url} -> 200",)

    down = judge(config, "model-registry-health")
    assert down.status == "fail"
    assert f"GET {url} failed: connection refused" in down.evidence
    if "model-registry" in shared_tools:
        assert "its server binary is not installed" in down.summary
        assert any(
            as_invoked("lab tools install --mode local model-registry") in line for line in down.remedy
        )
        assert f"| (no log at {config.log_dir / 'model-registry.log'})" in down.evidence


def test_model_server_health_when_none_runs_is_skipped(config: LabConfig) -> None:
    result = judge(config, "model-server-health")
    assert result.status == "skipped" and "lab demo" in result.summary


def test_lab_password_in_a_log_is_redacted_from_evidence(config: LabConfig) -> None:
    # The lab logs each server's argv; the Model Registry's carries the database DSN.
    password = Database(config).password()
    config.log_dir.mkdir(parents=True, exist_ok=True)
    (config.log_dir / "model-registry.log").write_text(
        f"--- lab: starting model-registry proxy --embedmd-database-dsn postgres://lab:{password}@127.0.0.1:5432/x\n"
        "panic: dial tcp 127.0.0.1:5432: connect: connection refused\n"
    )
    result = judge(config, "model-registry-health")
    assert password not in repr(result)
    assert "postgres://lab:<redacted>@127.0.0.1:5432/x" in text(result.evidence)
    assert "| panic: dial tcp 127.0.0.1:5432: connect: connection refused" in result.evidence
