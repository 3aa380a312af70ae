"""No secret in argv, pid files or logs: what another local user can see of a running lab.

The lab is started for real with registry basic auth; then every process it started is read
through ``/proc/<pid>/cmdline`` and ``/proc/<pid>/environ`` ownership, and every file under
``$LAB_HOME`` is searched for the passwords.
"""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from lab import local
from lab.config import LabConfig
from lab.local.components import DSN_VARIABLE, Database
from lab.progress import Progress
from tests.conftest import make_config

REGISTRY_PASSWORD = "s3cret-Registry-Pa55"


@pytest.fixture
def auth_config(lab_home: Path) -> LabConfig:
    return make_config(lab_home, LAB_REGISTRY_USER="lab-user", LAB_REGISTRY_PASSWORD=REGISTRY_PASSWORD)


def test_no_password_in_argv_and_every_file_holding_one_is_private(
    auth_config: LabConfig, quiet: Progress, require_tool
) -> None:
    for tool in ("registry", "postgres", "model-registry"):
        require_tool(tool)
    config = auth_config
    statuses = local.up(config, quiet)
    assert [s.state for s in statuses] == ["ready", "ready", "ready"], statuses
    token = base64.b64encode(f"lab-user:{REGISTRY_PASSWORD}".encode()).decode()
    secrets = [Database(config).password(), REGISTRY_PASSWORD, token]

    for status in statuses:
        assert status.pid is not None
        cmdline = Path(f"/proc/{status.pid}/cmdline").read_bytes().decode()
        for secret in secrets:
            assert secret not in cmdline, f"{status.name} shows a password in ps: {cmdline!r}"
    # The DSN reaches the Model Registry server through its environment, which only its owner
    # (and root) can read: /proc/<pid>/environ is 0400.
    mr_pid = next(s.pid for s in statuses if s.name == "model-registry")
    environ = Path(f"/proc/{mr_pid}/environ")
    assert f"{DSN_VARIABLE}=postgres://".encode() in environ.read_bytes()
    assert stat.S_IMODE(environ.stat().st_mode) == 0o400

    for pid_file in config.run_dir.glob("*.pid"):
        assert stat.S_IMODE(pid_file.stat().st_mode) == 0o600, pid_file
    for log in config.log_dir.glob("*.log"):
        assert stat.S_IMODE(log.stat().st_mode) == 0o600, log

    holding = []
    for path in config.home.rglob("*"):
        if not path.is_file() or path.is_symlink() or {"bin", "cache", "data"} & set(path.parts):
            continue
        text = path.read_bytes()
        if any(secret.encode() in text for secret in secrets):
            holding.append(path.relative_to(config.home))
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path} holds a password and is readable"
    # The search looked where the secrets are.
    assert {Path("etc/database.password"), Path("docker/config.json")} <= set(holding)
