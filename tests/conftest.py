"""Shared fixtures: isolated lab homes on free loopback ports, with the real pinned tools."""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import local
from lab.config import LabConfig, load_config
from lab.local.processes import free_port
from lab.progress import Progress
from lab.tools import ToolUnavailable, ensure_tool, tool_specs

# The tools are where `lab tools install` (run by `nox -s tests`) put them: the lab's own
# resolver decides ($LAB_HOME when set, else the project's .lab). Each test home links its
# bin there instead of installing again.
TOOLS_HOME = load_config().home
TOOLS_BIN = TOOLS_HOME / "bin"


def make_home() -> Path:
    """A fresh LAB_HOME that PostgreSQL's unprivileged user can traverse."""
    home = Path(tempfile.mkdtemp(prefix="lab-test-", dir="/tmp"))
    home.chmod(0o755)
    (home / "bin").symlink_to(TOOLS_BIN, target_is_directory=True)
    return home


def make_config(home: Path, **env: str) -> LabConfig:
    """A config for ``home`` with every port moved to a free one."""
    ports = {
        "LAB_REGISTRY_PORT": str(free_port()),
        "LAB_DATABASE_PORT": str(free_port()),
        "LAB_MODEL_REGISTRY_PORT": str(free_port()),
        "LAB_MODEL_SERVER_PORT": str(free_port()),
    }
    return load_config(env={"LAB_HOME": str(home), **ports, **env})


@functools.cache
def unobtainable_tools() -> dict[str, str]:
    """Make the local-mode tools available once; returns why each missing tool is missing.

    The reason is the resolver's own one line (every source tried, the `lab tools add`
    command): the skip reason of every test that needs the tool.
    """
    TOOLS_BIN.mkdir(parents=True, exist_ok=True)
    config = load_config(env={"LAB_HOME": str(TOOLS_HOME)})
    missing: dict[str, str] = {}
    for spec in tool_specs(config):
        if "local" not in spec.modes:
            continue
        try:
            ensure_tool(spec, config)
        except ToolUnavailable as exc:
            missing[spec.name] = str(exc)
    return missing


@pytest.fixture(scope="session", autouse=True)
def shared_tools() -> dict[str, str]:
    """The session's tools (see :func:`unobtainable_tools`)."""
    return unobtainable_tools()


@pytest.fixture
def require_tool(shared_tools: dict[str, str]):
    """Skip (with the resolver's own one-line reason) when a pinned tool cannot be had here."""

    def check(name: str) -> None:
        if name in shared_tools:
            pytest.skip(shared_tools[name])

    return check


@pytest.fixture
def lab_home() -> Iterator[Path]:
    """A throwaway LAB_HOME; anything the lab started in it is stopped afterwards."""
    home = make_home()
    yield home
    local.down(make_config(home), Progress(quiet=True))
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def lab_config(lab_home: Path) -> LabConfig:
    """Config for the throwaway home on free ports."""
    return make_config(lab_home)


@pytest.fixture
def quiet() -> Progress:
    """A progress printer that prints nothing."""
    return Progress(quiet=True)
