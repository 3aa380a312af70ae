"""Nox sessions: thin wrappers over the `lab` CLI and pytest."""

from __future__ import annotations

import shutil
import subprocess

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


def _install(session: nox.Session, *extras: str) -> None:
    session.install("-e", f".[{','.join(extras)}]" if extras else ".")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite against real local services (tools are installed first)."""
    _install(session, "pipeline", "test")
    # Installs what it can; tools this machine cannot obtain are reported and their tests skip.
    session.run("lab", "tools", "install", "--mode", "all", "--allow-missing")
    session.run("bash", "scripts/install-test-packages.sh", external=True)
    # Files run in parallel, each whole on one worker (its module fixtures and its order
    # kept); most of a file's time is spent waiting on servers, so 3 workers beat 2 cores.
    # Files in collection order (tests/conftest.py puts the longest first), not by test count.
    session.run("pytest", "-n", "3", "--dist", "loadfile", "--no-loadscope-reorder", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff (lint and format) and mypy on the lab package."""
    _install(session, "pipeline", "lint")
    session.run("ruff", "check", "lab", "tests", "scripts", "noxfile.py")
    session.run("ruff", "format", "--check", "lab", "tests", "scripts", "noxfile.py")
    session.run("mypy", "lab")


@nox.session(python=PYTHON)
def up(session: nox.Session) -> None:
    """Bring the lab up (auto mode unless --mode is given after --)."""
    _install(session, "pipeline")
    session.run("lab", "up", *session.posargs)


@nox.session(python=PYTHON)
def down(session: nox.Session) -> None:
    """Stop the lab (pass -- --purge to delete its data)."""
    _install(session)
    session.run("lab", "down", *session.posargs)


@nox.session(python=PYTHON)
def status(session: nox.Session) -> None:
    """Show the lab's components."""
    _install(session)
    session.run("lab", "status", *session.posargs)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job: bring the lab up and run train, push, register, unpack, serve, predict."""
    _install(session, "pipeline")
    session.run("lab", "demo", *session.posargs)


@nox.session(python=PYTHON)
def doctor(session: nox.Session) -> None:
    """Diagnose the lab (pass -- --fix --yes to apply safe fixes)."""
    _install(session, "pipeline")
    session.run("lab", "doctor", *session.posargs)


@nox.session(python=PYTHON)
def tools(session: nox.Session) -> None:
    """The pinned tools: `nox -s tools -- list`, `-- install`, `-- add NAME PATH [--version V]`."""
    _install(session)
    session.run("lab", "tools", *(session.posargs or ["list"]))


@nox.session(python=PYTHON)
def manifests(session: nox.Session) -> None:
    """The pinned upstream manifests: `nox -s manifests` pulls them into $LAB_HOME/manifests."""
    _install(session)
    session.run("lab", "manifests", *(session.posargs or ["pull"]))


@nox.session(python=PYTHON)
def lab(session: nox.Session) -> None:
    """Any lab command from a fresh clone: `nox -s lab -- control-plane start`, `-- --help`."""
    _install(session, "pipeline")
    session.run("lab", *(session.posargs or ["--help"]))


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks as ratios against peers and floors; writes bench/results.json."""
    _install(session, "pipeline")
    session.run("lab", "tools", "install", "--mode", "local", "--allow-missing")
    session.run("lab", "bench", *session.posargs)


@nox.session(python=PYTHON)
def e2e(session: nox.Session) -> None:
    """The cluster tier: provision kind, run the chain on it and assert (needs Docker or Podman)."""
    engines = [e for e in ("docker", "podman") if shutil.which(e)]
    if not any(subprocess.run([e, "info"], capture_output=True).returncode == 0 for e in engines):
        session.skip(
            f"no container engine answers (tried: {', '.join(engines) or 'docker, podman: not installed'})"
        )
    _install(session, "pipeline", "test")
    session.run("lab", "tools", "install", "--mode", "kind")
    session.run("pytest", "tests/e2e", "-m", "cluster", *session.posargs)
    session.run("lab", "e2e", "--mode", "kind")
