"""Failure modes the chain records: duplicate model version, missing ModelKit directory."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from model_registry.exceptions import StoreError

from lab.config import LabConfig
from lab.doctor import (
    chain_error_path,
    clear_chain_error,
    diagnose,
    read_chain_error,
    record_chain_error,
)
from lab.doctor.model import Result
from lab.invocation import as_invoked


def judge(config: LabConfig, check_id: str) -> Result:
    return diagnose(config, [check_id], mode="local").outcome(check_id).result


def test_record_chain_error_contract(config: LabConfig) -> None:
    path = record_chain_error(
        config, "register", StoreError("Version 1 already exists"), model="iris", version="1"
    )
    assert path == config.home / "run" / "last-chain-error.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    record = json.loads(path.read_text())
    assert record["step"] == "register"
    assert record["error_type"] == "StoreError"
    assert record["message"] == "Version 1 already exists"
    assert record["context"] == {"model": "iris", "version": "1"}
    assert record["recorded_at"]
    assert read_chain_error(config).error_type == "StoreError"  # type: ignore[union-attr]
    clear_chain_error(config)
    assert not chain_error_path(config).exists() and read_chain_error(config) is None


def test_mr_version_exists_from_the_model_registry_clients_store_error(config: LabConfig) -> None:
    try:
        raise StoreError("Version 1.0.0 already exists")
    except StoreError as exc:
        record_chain_error(config, "register", exc, model="iris-classifier", version="1.0.0")

    result = judge(config, "mr-version-exists")
    assert result.status == "fail"
    assert (
        result.summary
        == "model iris-classifier version 1.0.0 was registered before (the Model Registry works)"
    )
    assert any("StoreError: Version 1.0.0 already exists" in line for line in result.evidence)
    assert as_invoked("lab demo --version-policy suffix") in result.remedy
    assert as_invoked('lab demo --version "1.0.0-$(date +%Y%m%d%H%M%S)"') in result.remedy
    assert any(
        f"127.0.0.1:{config.ports.model_registry}/api/model_registry/v1alpha3" in line
        for line in result.remedy
    )


def test_mr_version_exists_from_the_chains_version_policy_message(config: LabConfig) -> None:
    message = (
        "Version 1.0.0 already exists for model iris (id 3, URI kit://127.0.0.1:5001/lab/iris:1.0.0, "
        "created 2025-06-01T12:00:00Z); register a new version, or use --version-policy suffix"
    )
    record_chain_error(config, "register", RuntimeError(message), model="iris", version="1.0.0")
    result = judge(config, "mr-version-exists")
    assert result.status == "fail"
    assert result.summary.startswith("model iris version 1.0.0 was registered before")
    assert any(
        "RuntimeError: Version 1.0.0 already exists for model iris" in line for line in result.evidence
    )


def test_mr_version_exists_is_quiet_without_that_error(config: LabConfig) -> None:
    assert judge(config, "mr-version-exists").status == "ok"
    record_chain_error(config, "train", RuntimeError("out of memory"))
    assert judge(config, "mr-version-exists").status == "ok"


def test_modelkit_dir_missing_when_the_directory_does_not_exist(config: LabConfig, tmp_path: Path) -> None:
    missing = tmp_path / "outputs" / "modelkit_dir"
    record_chain_error(config, "push", f"ModelKit directory does not exist: {missing}", modelkit_dir=missing)
    result = judge(config, "modelkit-dir-missing")
    assert result.status == "fail"
    assert result.summary == f"ModelKit directory {missing} does not exist"
    assert f"{missing} does not exist" in result.evidence
    assert any("modelkit_dir.path" in line for line in result.remedy)


def test_modelkit_dir_missing_when_the_directory_is_empty(config: LabConfig, tmp_path: Path) -> None:
    empty = tmp_path / "modelkit_dir"
    (empty / "nested").mkdir(parents=True)  # directories alone are not content
    record_chain_error(config, "push", "kit pack failed: no model files", modelkit_dir=empty)
    result = judge(config, "modelkit-dir-missing")
    assert result.status == "fail"
    assert f"{empty} exists but holds no file" in result.evidence


def test_modelkit_dir_with_files_is_ok(config: LabConfig, tmp_path: Path) -> None:
    full = tmp_path / "modelkit_dir"
    full.mkdir()
    (full / "model.joblib").write_bytes(b"\x80\x04")
    record_chain_error(config, "push", "Failed to push ModelKit: 401 Unauthorized", modelkit_dir=full)
    result = judge(config, "modelkit-dir-missing")
    assert result.status == "ok"
    assert f"{full} now holds 1 file(s): model.joblib" in result.evidence
