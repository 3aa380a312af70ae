"""The Model Registry on a PostgreSQL too old for its migrations, for real (mr-database-version).

Where a PostgreSQL 15 is installed (Debian bookworm's `postgresql-15`), the real Model Registry
server is started on it and fails its `IS JSON ARRAY` migration; the start-up error and the
doctor must name the database version, not suggest a restart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from doctor_labs import QUIET, destroy, new_config

from lab import local
from lab.config import LabConfig
from lab.doctor import diagnose
from lab.errors import LabError
from lab.tools.added import add_tool
from tests.conftest import TOOLS_BIN

OLD_POSTGRES = Path("/usr/lib/postgresql/15/bin/postgres")


@pytest.fixture
def lab_on_postgres_15(shared_tools: dict[str, str]) -> Iterator[LabConfig]:
    if not OLD_POSTGRES.exists():
        pytest.skip(
            f"no PostgreSQL 15 at {OLD_POSTGRES} to run the Model Registry on (apt-get install postgresql-15)"
        )
    if "model-registry" in shared_tools:
        pytest.skip(shared_tools["model-registry"])
    config = new_config()
    config = dataclasses.replace(config, versions=dataclasses.replace(config.versions, postgres="15"))
    (config.home / "bin").unlink()
    (config.home / "bin").mkdir()
    try:
        add_tool(config, "postgres", str(OLD_POSTGRES))
        add_tool(config, "model-registry", str(TOOLS_BIN / "model-registry"), config.versions.model_registry)
        yield config
    finally:
        destroy(config)


def test_model_registry_on_postgres_15_names_the_database_version(lab_on_postgres_15: LabConfig) -> None:
    config = lab_on_postgres_15
    with pytest.raises(LabError) as caught:
        local.up(config, QUIET, ("database", "model-registry"))
    message = caught.value.message
    assert message.startswith(
        "model-registry exited during start-up: the Model Registry's database migrations"
    )
    assert "need PostgreSQL >= 16 (`IS JSON`), its database is PostgreSQL 15." in message
    assert "restarting cannot help; see `lab doctor mr-database-version`" in message
    assert any('syntax error at or near "JSON"' in line for line in caught.value.details)

    report = diagnose(config, ["mr-database-version", "model-registry-health"], mode="local")
    version = report.outcome("mr-database-version").result
    assert version.status == "fail"
    assert version.summary.startswith(
        "the Model Registry needs PostgreSQL >= 16 for its migrations (`IS JSON`); "
        "its database is PostgreSQL 15."
    )
    evidence = "\n".join(version.evidence)
    assert "select version(): PostgreSQL 15." in evidence
    assert "model-registry log: " in evidence and "SQLSTATE 42601" in evidence
    assert any("restarting cannot help" in line for line in version.remedy)
    health = report.outcome("model-registry-health").result
    assert health.status == "fail" and not health.fixable
    assert "see mr-database-version" in health.summary


def test_mr_database_version_passes_on_the_pinned_postgres(shared_tools: dict[str, str]) -> None:
    if "postgres" in shared_tools:
        pytest.skip(shared_tools["postgres"])
    config = new_config()
    try:
        local.up(config, QUIET, ("database",))
        result = diagnose(config, ["mr-database-version"], mode="local").outcome("mr-database-version").result
        assert result.status == "ok", result
        assert result.summary == f"PostgreSQL {config.versions.postgres} (the Model Registry needs >= 16)"
        assert any(
            f"select version(): PostgreSQL {config.versions.postgres}" in line for line in result.evidence
        )
    finally:
        destroy(config)
