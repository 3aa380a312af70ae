"""The embedded local lab's life cycle, with the real registry and PostgreSQL processes."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab import local
from lab.config import LabConfig
from lab.errors import LabError
from lab.local.processes import PortTaken, process_start_time
from lab.progress import Progress
from tests.conftest import make_config

SERVICES = ("registry", "database")


def lab_pids(home: Path) -> set[int]:
    """Every live process whose command line mentions this lab home (none may survive `down`)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if str(home).encode() in (proc / "cmdline").read_bytes():
                    found.add(int(proc.name))
            except OSError:
                continue
    return found


def test_up_status_down_leaves_no_process(lab_config: LabConfig, quiet: Progress) -> None:
    statuses = local.up(lab_config, quiet, SERVICES)
    assert [(s.name, s.state) for s in statuses] == [("registry", "ready"), ("database", "ready")]
    assert all(s.pid and process_start_time(s.pid) for s in statuses)
    assert statuses[0].url == f"http://127.0.0.1:{lab_config.ports.registry}"

    # The CLI sees the same lab.
    env = {
        **os.environ,
        "LAB_HOME": str(lab_config.home),
        "LAB_REGISTRY_PORT": str(lab_config.ports.registry),
        "LAB_DATABASE_PORT": str(lab_config.ports.database),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "lab", "status", "--json"], capture_output=True, text=True, env=env, check=True
    )
    report = {c["name"]: c for c in json.loads(proc.stdout)["components"]}
    assert report["registry"]["state"] == "ready" and report["database"]["state"] == "ready"
    assert report["registry"]["version"].lstrip("v") == lab_config.versions.registry.lstrip("v")
    assert report["database"]["version"].startswith(lab_config.versions.postgres)

    stopped = local.down(lab_config, quiet)
    assert stopped == ["database", "registry"]
    assert lab_pids(lab_config.home) == set()
    assert [s.state for s in local.status(lab_config, SERVICES)] == ["stopped", "stopped"]
    # Data is kept by a plain down...
    assert (lab_config.data_dir / "database" / "pgdata" / "PG_VERSION").is_file()
    # ...and removed by --purge.
    local.down(lab_config, quiet, purge=True)
    assert not lab_config.data_dir.exists()


def test_second_up_is_a_no_op(lab_config: LabConfig, quiet: Progress) -> None:
    first = {s.name: s.pid for s in local.up(lab_config, quiet, SERVICES)}
    progress = Progress(quiet=True)
    second = {s.name: s.pid for s in local.up(lab_config, progress, SERVICES)}
    assert second == first, "a healthy lab was restarted"
    assert sum(progress.timings.values()) < 5, progress.timings


def test_down_waits_on_the_port_the_lab_was_started_on(
    lab_config: LabConfig, quiet: Progress, new_home: Callable[..., Path]
) -> None:
    """`down` under a config naming a port another lab holds stops this lab at once.

    Before, it waited for the port today's config names (the defaults, another shell's), held
    by a second lab's registry: 25 s, then "port ... still held after SIGTERM and SIGKILL".
    """
    other = make_config(new_home())
    local.up(other, quiet, ("registry",))
    local.up(lab_config, quiet, ("registry",))
    other_port = dataclasses.replace(lab_config.ports, registry=other.ports.registry)
    elsewhere = dataclasses.replace(lab_config, ports=other_port)
    started = time.monotonic()
    assert local.down(elsewhere, quiet) == ["registry"]
    assert time.monotonic() - started < lab_config.stop_timeout
    assert [s.state for s in local.status(other, ("registry",))] == ["ready"], "the other lab was touched"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", lab_config.ports.registry))  # this lab's own port is free again


def test_stale_pid_and_dead_component_are_repaired(lab_config: LabConfig, quiet: Progress) -> None:
    before = {s.name: s.pid for s in local.up(lab_config, quiet, SERVICES)}
    registry_pid = before["registry"]
    assert registry_pid
    os.kill(registry_pid, signal.SIGKILL)
    while process_start_time(registry_pid) is not None:
        time.sleep(0.05)
    assert local.status(lab_config, ("registry",))[0].state == "stale"
    after = {s.name: s for s in local.up(lab_config, quiet, SERVICES)}
    assert after["registry"].state == "ready" and after["registry"].pid != registry_pid
    assert after["database"].pid == before["database"], "a healthy component was touched"


def test_port_held_by_a_foreign_process_names_the_port_and_variable(
    lab_config: LabConfig, quiet: Progress
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", lab_config.ports.registry))
        squatter.listen()
        with pytest.raises(PortTaken) as caught:
            local.up(lab_config, quiet, ("registry",))
    message = str(caught.value)
    assert f"port {lab_config.ports.registry}" in message
    assert f"pid {os.getpid()}" in message
    assert "LAB_REGISTRY_PORT=<port>" in message
    assert not lab_config.run_dir.joinpath("registry.pid").exists(), "a pid file was left behind"


def test_start_failure_shows_the_component_log_tail(lab_config: LabConfig, quiet: Progress) -> None:
    # A corrupt data directory makes the real postgres refuse to start.
    local.up(lab_config, quiet, ("database",))
    local.down(lab_config, quiet)
    (lab_config.data_dir / "database" / "pgdata" / "postgresql.conf").write_text("this is = not = valid\n")
    with pytest.raises(LabError) as caught:
        local.up(lab_config, quiet, ("database",))
    text = str(caught.value)
    assert "database exited during start-up" in text
    assert "database.log ends with:" in text
    assert "postgresql.conf" in text  # the evidence line from postgres itself
    assert local.status(lab_config, ("database",))[0].state == "stopped"


def test_database_runs_unprivileged_when_root(lab_config: LabConfig, quiet: Progress) -> None:
    status = local.up(lab_config, quiet, ("database",))[0]
    uid = Path(f"/proc/{status.pid}").stat().st_uid
    if os.geteuid() == 0:
        assert uid != 0, "postgres runs as root"
    else:
        assert uid == os.geteuid()


def test_unknown_component_is_rejected(lab_config: LabConfig, quiet: Progress) -> None:
    with pytest.raises(LabError, match="unknown component"):
        local.up(lab_config, quiet, ("registry", "redis"))


def test_a_data_directory_of_another_major_version_is_named(lab_config: LabConfig, quiet: Progress) -> None:
    # What a lab home from before the PostgreSQL 18 pin holds: the real server refuses it.
    local.up(lab_config, quiet, ("database",))
    local.down(lab_config, quiet)
    (lab_config.data_dir / "database" / "pgdata" / "PG_VERSION").write_text("15\n")
    with pytest.raises(LabError) as caught:
        local.up(lab_config, quiet, ("database",))
    assert "database exited during start-up: its data directory" in caught.value.message
    assert "was written by PostgreSQL 15 and this lab runs PostgreSQL 18; `lab down --purge`" in str(
        caught.value
    )
    assert any("incompatible with server" in line for line in caught.value.details)
