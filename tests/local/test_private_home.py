"""As root, the embedded database starts in a lab home no other user can reach (issue 17).

PostgreSQL refuses root, so the lab runs it as ``nobody``; a home under a 0700 folder (a
clone in /root, a ``mktemp -d``) is out of that user's reach. The lab keeps the database's
programs and data in a folder of its own instead, leaves the private folder's mode alone, and
``lab down --purge`` removes that folder again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.config import load_config
from lab.local.database_place import outside_home
from lab.loopback_ports import free_port
from tests.conftest import remove_home


@pytest.fixture
def private_home() -> Iterator[Path]:
    parent = Path(tempfile.mkdtemp(prefix="lab-private-"))  # 0700, like /root
    home = parent / "home"
    yield home
    remove_home(home)
    shutil.rmtree(outside_home(load_config(env={"LAB_HOME": str(home)})), ignore_errors=True)
    shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.skipif(
    os.geteuid() != 0, reason="the database runs as another user only under root (run the tests as root)"
)
def test_database_starts_as_root_in_a_home_under_a_private_folder(private_home: Path, require_tool) -> None:
    require_tool("postgres")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}
    env.update(LAB_HOME=str(private_home), LAB_DATABASE_PORT=str(free_port()))

    def lab(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "lab", *args]
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)

    parent_mode = private_home.parent.stat().st_mode & 0o777
    assert parent_mode == 0o700
    up = lab("up", "--mode", "local", "--components", "database")
    assert up.returncode == 0, up.stderr
    rows = {
        row["name"]: row
        for row in json.loads(lab("status", "--json", "--mode", "local").stdout)["components"]
    }
    assert rows["database"]["state"] == "ready", rows["database"]
    assert private_home.parent.stat().st_mode & 0o777 == parent_mode, (
        "the lab loosened a folder it does not own"
    )
    outside = outside_home(load_config(env={"LAB_HOME": str(private_home)}))
    assert (outside / "pgdata" / "PG_VERSION").is_file()
    again = lab("up", "--mode", "local", "--components", "database")
    assert again.returncode == 0, again.stderr
    down = lab("down", "--purge")
    assert down.returncode == 0, down.stderr
    assert not outside.exists(), "down --purge left the database's folder behind"
