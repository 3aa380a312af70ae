"""Printed commands are spelled the way the lab runs where the user is (issue 17)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.config import PROJECT_ROOT
from lab.invocation import as_invoked, lab_command


@pytest.fixture
def fresh_clone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside a nox session: the only way a fresh clone runs the lab."""
    monkeypatch.setenv("NOX_CURRENT_SESSION", "demo")


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The package installed: a `lab` script on PATH, no nox around."""
    monkeypatch.delenv("NOX_CURRENT_SESSION", raising=False)
    (tmp_path / "lab").write_text("#!/bin/sh\n")
    (tmp_path / "lab").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))


def test_from_a_fresh_clone_commands_go_through_nox(fresh_clone: None) -> None:
    assert (
        lab_command("tools add kit /opt/kit --version v1.7.0")
        == "nox -s tools -- add kit /opt/kit --version v1.7.0"
    )
    assert lab_command("demo --version-policy fail") == "nox -s demo -- --version-policy fail"
    assert lab_command("demo") == "nox -s demo"
    assert lab_command("manifests pull") == "nox -s manifests -- pull"
    assert lab_command("control-plane start") == "nox -s lab -- control-plane start"
    assert as_invoked("LAB_HOME=/h LAB_DATABASE_PORT=1 lab down --purge && lab up --mode local") == (
        "LAB_HOME=/h LAB_DATABASE_PORT=1 nox -s down -- --purge && nox -s up -- --mode local"
    )
    assert as_invoked("# run `lab tools install --mode local` first") == (
        "# run `nox -s tools -- install --mode local` first"
    )
    assert as_invoked("lab doctor  # again") == "nox -s doctor  # again"
    assert as_invoked("the lab pins v3.1.2") == "the lab pins v3.1.2"  # prose stays prose
    assert as_invoked("# or another port: LAB_REGISTRY_PORT=<port> lab up --mode kind") == (
        "# or another port: LAB_REGISTRY_PORT=<port> nox -s up -- --mode kind"
    )


def test_every_command_of_the_cli_is_known_to_the_spelling() -> None:
    import argparse

    from lab.cli import build_parser
    from lab.invocation import _COMMANDS

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == set(_COMMANDS.split("|"))


def test_once_installed_commands_are_lab(installed: None) -> None:
    assert lab_command("tools add kit /opt/kit") == "lab tools add kit /opt/kit"
    assert as_invoked("lab down --purge && lab up --mode local") == "lab down --purge && lab up --mode local"


def test_without_the_script_on_path_it_is_python_m_lab(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("NOX_CURRENT_SESSION", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert lab_command("status") == "python3 -m lab status"


def test_the_doctors_remedies_and_a_missing_tools_line_follow_the_same_spelling(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}
    env.update(NOX_CURRENT_SESSION="doctor", LAB_HOME=str(tmp_path / "empty-home"))
    proc = subprocess.run(
        [sys.executable, "-m", "lab", "doctor", "--mode", "local", "database-health"],
        capture_output=True,
        text=True,
        env=env,
    )
    lines = [line.strip() for line in proc.stdout.splitlines()]
    remedy = lines[lines.index("remedy:") + 1 :]
    assert remedy[0] == f"LAB_HOME={tmp_path / 'empty-home'} nox -s tools -- install --mode local postgres"
    assert remedy[2] == f"LAB_HOME={tmp_path / 'empty-home'} nox -s up -- --mode local --components database"
    missing = next(line for line in lines if line.startswith("postgres 18.6 is not installed"))
    assert missing.endswith(
        "register a binary you have: nox -s tools -- add postgres /path/to/postgres --version 18.6"
    )


def test_python_m_lab_without_its_packages_says_what_works(tmp_path: Path) -> None:
    """A fresh clone's bare python3: --help works; a command that needs packages names them."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    bare = tmp_path / "bare" / "bin" / "python"

    def lab(*argv: str) -> subprocess.CompletedProcess[str]:
        argv_ = [str(bare), "-m", "lab", *argv]
        return subprocess.run(argv_, capture_output=True, text=True, cwd=PROJECT_ROOT)

    helped = lab("--help")
    assert helped.returncode == 0, helped.stderr
    assert "usage: lab" in helped.stdout and "demo" in helped.stdout
    refused = lab("status")
    assert refused.returncode != 0
    assert refused.stderr.startswith("ERROR: this command needs Python packages that are not installed")
    assert "python3 -m pip install -e" in refused.stderr
    assert "Traceback" not in refused.stderr
