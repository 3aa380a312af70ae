"""Shared fixtures: isolated lab homes on free loopback ports, with the real pinned tools."""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab import local
from lab.config import LabConfig, load_config
from lab.invocation import lab_command
from lab.loopback_ports import free_port
from lab.progress import Progress
from lab.tools import ToolUnavailable, ensure_tool, tool_specs
from lab.upstream_manifests import manifest_mirror, manifest_places

# The tools are where `lab tools install` (run by `nox -s tests`) put them: the lab's own
# resolver decides ($LAB_HOME when set, else the project's .lab). Each test home links its
# bin there instead of installing again.
TOOLS_HOME = load_config().home
TOOLS_BIN = TOOLS_HOME / "bin"


# The upstream manifest mirror, found the way `lab up` finds it (--manifests-dir aside):
# LAB_MANIFESTS_DIR, $LAB_HOME/manifests, ../shared/upstream. None when there is none here.
UPSTREAM_MIRROR = manifest_mirror(load_config())
NO_MIRROR = (
    f"no upstream manifest mirror (looked in {manifest_places(load_config())}); "
    f"`{lab_command('manifests pull')}` fetches it"
)


# The longest files, first, in this order. The noxfile turns off xdist's own reordering (by
# number of tests per file, which put these last: they have few tests each, and long ones), so
# workers take whole files in collection order: one each, and a second at once when the first
# has at most two tests left. So shared, cycles and recovery start at once on three workers, the
# cycles (one test) take test_cluster_mode beside them (the cycles leave the lab up for it, which
# takes it down), and the short files fill in around them; a long file collected late made the
# run wait on it alone.
LONGEST_FIRST = (
    "tests/e2e/test_shared_cluster.py",
    "tests/e2e/test_cluster_cycles.py",
    "tests/e2e/test_cluster_recovery.py",
    "tests/e2e/test_cluster_mode.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Collect the files of :data:`LONGEST_FIRST` first; everything else keeps its order."""

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


@pytest.fixture
def without_manifest_mirror(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No mirror beside the project (CI and this workspace have one): the pinned GitHub refs path.

    A test's own home has no ``manifests`` and its config no ``manifests_dir`` unless it says so.
    """
    import lab.upstream_manifests

    monkeypatch.setattr(lab.upstream_manifests, "SHARED_MIRROR", tmp_path / "no-shared-mirror")


# Every home a test made; the session's end removes any a test's own teardown did not.
_MADE_HOMES: list[Path] = []


def make_home(own_bin: bool = False) -> Path:
    """A fresh LAB_HOME that PostgreSQL's unprivileged user can traverse.

    Its bin links to the session's tools, or is its own empty folder (``own_bin``) for tests
    that add tools. Prefer the ``new_home`` fixture, which removes it after the test.
    """
    home = Path(tempfile.mkdtemp(prefix="lab-test-", dir=tempfile.gettempdir()))
    home.chmod(0o755)
    if own_bin:
        (home / "bin").mkdir()
    else:
        (home / "bin").symlink_to(TOOLS_BIN, target_is_directory=True)
    _MADE_HOMES.append(home)
    return home


def remove_home(home: Path, config: LabConfig | None = None) -> None:
    """Stop every process the lab started in ``home`` (found by its marker), then delete it.

    ``config`` (the home's, with its ports) lets stopping wait for exactly those ports.
    """
    try:
        if home.is_dir():
            if config is None:
                config = load_config(env={"LAB_HOME": str(home)}, toml_path=home / "no-lab.toml")
            local.down(config, Progress(quiet=True))
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def new_home() -> Iterator[Callable[..., Path]]:
    """Makes lab homes (see :func:`make_home`); each is stopped and deleted after the test."""
    made: list[Path] = []

    def make(own_bin: bool = False) -> Path:
        made.append(make_home(own_bin))
        return made[-1]

    yield make
    for home in made:
        remove_home(home)


@pytest.fixture(scope="session", autouse=True)
def no_home_left_behind() -> Iterator[None]:
    """Whatever home a test made and kept is stopped and deleted when the session ends."""
    yield
    for home in _MADE_HOMES:
        remove_home(home)


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
    remove_home(home)


@pytest.fixture
def lab_config(lab_home: Path) -> LabConfig:
    """Config for the throwaway home on free ports."""
    return make_config(lab_home)


@pytest.fixture
def quiet() -> Progress:
    """A progress printer that prints nothing."""
    return Progress(quiet=True)
