"""The doctor's machinery: registry of checks, crash isolation, rendering, JSON, bundle, CLI edges."""

from __future__ import annotations

import json
import re
import stat
import tarfile
import threading
from pathlib import Path

import pytest
from doctor_objects import KUBEFLOW, MLMD_LOGS, node, pod, secret, status, terminated, waiting

from lab.cli import main
from lab.config import PROJECT_ROOT, LabConfig
from lab.doctor import (
    ALL_CHECKS,
    Check,
    Evidence,
    RecordedCluster,
    Result,
    UnknownCheck,
    diagnose,
    render_json,
    render_text,
    select,
    write_bundle,
)
from lab.doctor.checks import DOCUMENTED_FAILURE_MODES
from lab.doctor.model import GROUPS
from lab.doctor.runner import run_checks


def test_every_documented_failure_mode_has_a_check_of_that_id() -> None:
    ids = {check.id for check in ALL_CHECKS}
    assert len(DOCUMENTED_FAILURE_MODES) == len(set(DOCUMENTED_FAILURE_MODES)) == 15
    assert set(DOCUMENTED_FAILURE_MODES) <= ids, set(DOCUMENTED_FAILURE_MODES) - ids
    # The list the project keeps beside the repository, where it is (never in a user's clone).
    beside = PROJECT_ROOT.parent / "shared" / "failure-modes.md"
    if beside.is_file():
        rows = re.findall(r"^\| ([a-z0-9-]+) \|", beside.read_text(), flags=re.MULTILINE)
        assert [row for row in rows if row != "id"] == list(DOCUMENTED_FAILURE_MODES)


def test_checks_are_declared_with_groups_and_unique_ids() -> None:
    ids = [check.id for check in ALL_CHECKS]
    assert len(ids) == len(set(ids))
    assert {check.group for check in ALL_CHECKS} == set(GROUPS)
    assert [c.id for c in select(["kfp-not-ready", "docker-missing"])] == ["docker-missing", "kfp-not-ready"]
    with pytest.raises(
        UnknownCheck, match="unknown check id\\(s\\) nope; known: cert-manager-not-ready, cosign-keys-missing"
    ):
        select(["nope"])
    with pytest.raises(ValueError, match="group 'network' is not one of"):
        Check("x", "x", "network", "x", lambda evidence: Result.ok("x"))


def test_a_crashing_check_becomes_a_failed_result_and_the_others_still_run(config: LabConfig) -> None:
    def broken(evidence: Evidence) -> Result:
        raise KeyError("status.containerStatuses")

    crashing = Check("broken-check", "always crashes", "host", "nothing", broken)
    evidence = Evidence(config, mode="local")
    outcomes = run_checks([crashing, *select(["mr-version-exists", "modelkit-dir-missing"])], evidence)

    crashed = outcomes[0]
    assert crashed.crashed and crashed.result.status == "fail"
    assert crashed.result.summary == "check crashed: KeyError: 'status.containerStatuses'"
    assert any("KeyError" in line for line in crashed.result.evidence)
    assert [o.result.status for o in outcomes[1:]] == ["ok", "ok"]


def test_checks_run_concurrently_and_share_one_collection(config: LabConfig) -> None:
    calls: list[str] = []
    lock = threading.Lock()

    class CountingCluster(RecordedCluster):
        def objects(self, kind: str) -> list[object]:
            with lock:
                calls.append(kind)
            return super().objects(kind)

    crash = status("container", "m:1", waiting("CrashLoopBackOff"), last_state=terminated(139))
    cluster = CountingCluster([node(), pod(KUBEFLOW, "metadata-grpc-deployment-1", [crash])], logs=MLMD_LOGS)
    report = diagnose(config, mode="kind", evidence=Evidence(config, mode="kind", cluster=cluster))
    assert calls.count("pods") == 1 and calls.count("nodes") == 1
    assert report.outcome("mlmd-segfault").result.status == "fail"


def test_text_report_groups_by_component_with_symbols_and_details_only_under_problems(
    config: LabConfig,
) -> None:
    evidence = Evidence(config, mode="kind", cluster=RecordedCluster([node()], custom={}))
    report = diagnose(
        config, ["kind-cluster", "cosign-keys-missing", "mlmd-segfault", "port-conflict"], evidence=evidence
    )
    out = render_text(report)
    lines = out.splitlines()
    assert lines[0] == f"lab doctor: mode kind (mode kind was asked for); LAB_HOME {config.home}"
    assert lines.index("host") < lines.index("kfp") < lines.index("pipeline")
    assert "  ✓ kind-cluster" in out and "  ! cosign-keys-missing" in out and "  - port-conflict" in out
    ok_line = next(i for i, line in enumerate(lines) if "✓ kind-cluster" in line)
    assert not lines[ok_line + 1].startswith("      ")  # no detail under a passing check
    warn_line = next(i for i, line in enumerate(lines) if "! cosign-keys-missing" in line)
    assert lines[warn_line + 1] == "      evidence:"
    assert lines[-1].startswith("4 checks: 2 ok, 1 warning, 0 failed, 1 skipped in ")
    assert report.exit_code == 0


def test_json_report_is_the_same_data(config: LabConfig) -> None:
    report = diagnose(config, ["mr-version-exists", "kind-cluster"], mode="local")
    data = json.loads(render_json(report))
    assert data["mode"] == "local" and data["exit_code"] == 0
    assert data["counts"] == {"ok": 1, "warn": 0, "fail": 0, "skipped": 1}
    first = data["checks"][0]
    assert set(first) >= {
        "id",
        "title",
        "group",
        "status",
        "summary",
        "evidence",
        "remedy",
        "fixable",
        "elapsed",
        "fix",
    }


def test_bundle_has_the_cluster_objects_as_the_api_writes_them_and_no_secret_value(
    config: LabConfig, tmp_path: Path
) -> None:
    crash = status(
        "container", "m:1.14.0", waiting("CrashLoopBackOff"), last_state=terminated(139), restarts=3
    )
    objects = [
        node(),
        pod(KUBEFLOW, "metadata-grpc-deployment-1", [crash]),
        secret(
            KUBEFLOW,
            "docker-config",
            {"config.json": '{"auths": {"kind-registry:5000": {"auth": "c2VjcmV0LXRva2Vu"}}}'},
        ),
        secret(KUBEFLOW, "cosign-keys", {"cosign.key": "PRIVATE-KEY-MATERIAL"}),
    ]
    evidence = Evidence(config, mode="kind", cluster=RecordedCluster(objects, logs=MLMD_LOGS))
    report = diagnose(config, evidence=evidence)
    path = write_bundle(report, tmp_path / "out" / "doctor.tar.gz")

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(path.parent.glob(".doctor.tar.gz.tmp*"))
    with tarfile.open(path) as tar:
        files = {
            m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()
            for m in tar.getmembers()
            if m.isfile()
        }  # type: ignore[union-attr]
    for name in (
        "report.txt",
        "report.json",
        "versions.json",
        "tools.json",
        "config.json",
        "evidence/cluster/pods.json",
    ):
        assert name in files, sorted(files)
    pods = json.loads(files["evidence/cluster/pods.json"])
    assert pods[0]["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 139
    docker = json.loads(files["evidence/cluster/secret/kubeflow/docker-config.json"])
    assert docker["keys"] == ["config.json"] and docker["docker_auth_hosts"] == ["kind-registry:5000"]
    everything = "\n".join(files.values())
    assert "c2VjcmV0LXRva2Vu" not in everything and "PRIVATE-KEY-MATERIAL" not in everything
    assert json.loads(files["versions.json"])["matrix"]["kfp"] == config.versions.kfp
    images = {row["setting"]: row for row in json.loads(files["versions.json"])["images"]}
    assert images["kitops_kubeflow_image"]["digest"].startswith("digest: not recorded (")


def test_bundle_of_a_local_lab_redacts_the_registry_password(auth_lab: LabConfig, tmp_path: Path) -> None:
    from doctor_labs import REGISTRY_PASSWORD, REGISTRY_USER

    from lab.doctor import clear_chain_error, record_chain_error

    record_chain_error(
        auth_lab, "push", f"kit login {auth_lab.registry_host} -u {REGISTRY_USER} -p {REGISTRY_PASSWORD}"
    )
    try:
        path = write_bundle(diagnose(auth_lab, mode="local"), tmp_path / "doctor.tar.gz")
    finally:
        clear_chain_error(auth_lab)
    with tarfile.open(path) as tar:
        files = {
            m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()
            for m in tar.getmembers()
            if m.isfile()
        }  # type: ignore[union-attr]
    assert "logs/registry.log" in files and "chain/last-chain-error.json" in files
    assert "evidence/local/registry/status.json" in files
    assert json.loads(files["config.json"])["registry_auth"]["password"] == "<redacted>"
    import base64

    token = base64.b64encode(f"{REGISTRY_USER}:{REGISTRY_PASSWORD}".encode()).decode()
    for name, text in files.items():
        assert REGISTRY_PASSWORD not in text and token not in text, name


def test_cli_list_checks_and_doctor_failures_exit_2(
    config: LabConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_HOME", str(config.home))
    assert main(["doctor", "--list-checks"]) == 0
    listed = capsys.readouterr().out
    for check in ALL_CHECKS:
        assert re.search(rf"^{re.escape(check.id)} ", listed, flags=re.MULTILINE)
    assert re.search(r"^mlmd-segfault +kfp +cluster\+kind +fix ", listed, flags=re.MULTILINE)

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code = main(
        ["doctor", "--mode", "local", "--bundle", str(blocker / "doctor.tar.gz"), "mr-version-exists"]
    )
    assert code == 2
    assert "ERROR: lab doctor could not run:" in capsys.readouterr().err
