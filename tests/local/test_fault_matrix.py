"""Fault matrix: the local lab under faults, on real processes.

Each row injects one fault into a running lab (or its command line or configuration) and
asserts the class of message the user sees and that nothing the lab started is left
behind, checked through /proc (the LAB_OWNER marker in process environments, and the
lab's ports) and never by process name. Most rows drive the ``lab`` command as a user
does, so the lab's servers are orphans of pid 1 like on a user's machine (where a
container's pid 1 may never reap them: a killed server stays a zombie).

The registry and database rows always run; the model-registry rows run where its server
binary exists (else they skip with the resolver's one-line reason).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lab import local
from lab.config import LabConfig
from lab.disk_space import judge_free_space
from lab.doctor import diagnose
from lab.invocation import as_invoked
from lab.local.components import COMPONENTS
from lab.progress import Progress
from lab.provision.actions import Context
from lab.provision.preflight import Preflight
from lab.tools import expected_work, tool_specs
from tests.conftest import make_config, make_home, remove_home

QUIET = Progress(quiet=True)
ALWAYS = ("registry", "database")
# What must run for a component to be up (the Model Registry server needs its database).
NEEDS = {
    "registry": ("registry",),
    "database": ("database",),
    "model-registry": ("database", "model-registry"),
}


# --- evidence, read from /proc without the lab's own code ---------------------------------


def _marked(owner: str) -> dict[int, str]:
    marked, parents = {}, {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            environ = (proc / "environ").read_bytes().split(b"\0")
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] == "Z":
            continue
        parents[int(proc.name)] = (int(fields[1]), command)
        if f"LAB_OWNER={owner}".encode() in environ:
            marked[int(proc.name)] = command
    # Children of marked processes (PostgreSQL's backends overwrite their environment).
    for pid, (ppid, command) in parents.items():
        if ppid in marked:
            marked[pid] = command
    return marked


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def left_behind(config: LabConfig) -> list[str]:
    """Live processes of this lab home and listeners on its ports: what `down` must leave none of."""
    found = [f"pid {pid}: {cmd[:100]}" for pid, cmd in _marked(str(config.home.resolve())).items()]
    p = config.ports
    ports = (p.registry, p.database, p.model_registry, p.model_server)
    return found + [f"port {port} listening" for port in ports if _listening(port)]


def gone(pid: int) -> bool:
    """No such process, or a zombie (holds nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def recorded_pid(config: LabConfig, name: str) -> int:
    return int(json.loads((config.run_dir / f"{name}.pid").read_text())["pid"])


# --- the lab as a user runs it --------------------------------------------------------------


def cli_env(config: LabConfig, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "LAB_HOME": str(config.home),
        "LAB_MODE": "local",
        "LAB_REGISTRY_PORT": str(config.ports.registry),
        "LAB_DATABASE_PORT": str(config.ports.database),
        "LAB_MODEL_REGISTRY_PORT": str(config.ports.model_registry),
        "LAB_MODEL_SERVER_PORT": str(config.ports.model_server),
        "LAB_STOP_TIMEOUT": "5",
        **extra,
    }


def lab(config: LabConfig, *argv: str, **extra: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "lab", *argv],
        env=cli_env(config, **extra),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def up(config: LabConfig, *names: str) -> subprocess.CompletedProcess[str]:
    result = lab(config, "up", "--mode", "local", "--components", ",".join(names))
    assert result.returncode == 0, result.stderr
    return result


def status(config: LabConfig) -> dict[str, dict[str, object]]:
    result = lab(config, "status", "--json", "--mode", "local")
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)["components"]}


@pytest.fixture
def config() -> Iterator[LabConfig]:
    home = make_home()
    cfg = make_config(home, LAB_STOP_TIMEOUT="5")
    try:
        yield cfg
        local.down(cfg, QUIET)
        assert left_behind(cfg) == []
    finally:
        remove_home(home, cfg)


@pytest.fixture(params=["registry", "database", "model-registry"])
def component(request: pytest.FixtureRequest, require_tool, config: LabConfig) -> str:
    """Each component; the Model Registry server only where it can run."""
    name: str = request.param
    for needed in NEEDS[name]:
        require_tool(COMPONENTS[needed].tools[0])
    if name == "model-registry":
        major = int(COMPONENTS["database"](config).version().split(".")[0] or 0)
        if major < 16:
            pytest.skip(f"Model Registry v0.3.8 needs PostgreSQL >= 16; the lab's PostgreSQL is {major}")
    return name


@pytest.fixture(params=ALWAYS)
def server(request: pytest.FixtureRequest, require_tool) -> str:
    """The registry and the database: the rows that run on every machine."""
    require_tool(COMPONENTS[request.param].tools[0])
    return str(request.param)


# --- ownership without (a trustworthy) pid file ---------------------------------------------


@pytest.mark.parametrize("fault", ["deleted", "corrupted"])
def test_lost_pid_file_status_doctor_up_and_down_agree(config: LabConfig, server: str, fault: str) -> None:
    up(config, server)
    pid = recorded_pid(config, server)
    pid_file = config.run_dir / f"{server}.pid"

    def lose_it() -> None:
        pid_file.unlink() if fault == "deleted" else pid_file.write_text('{"pid": 12')

    lose_it()
    row = status(config)[server]
    assert (row["state"], row["pid"]) == ("ready", pid)
    assert "found by its LAB_OWNER marker" in str(row["detail"])

    report = diagnose(config, ["port-conflict", f"{server}-health"], mode="local")
    assert report.outcome("port-conflict").result.status == "ok"
    assert report.outcome(f"{server}-health").result.status == "ok"

    repaired = up(config, server)
    why = "missing" if fault == "deleted" else "unreadable"
    assert (
        f"{server}: kept pid {pid} and recorded it again (found by its LAB_OWNER marker; "
        f"its pid file is {why})" in repaired.stderr
    )
    assert recorded_pid(config, server) == pid, "up must not replace a healthy process"

    lose_it()
    down = lab(config, "down")
    assert down.returncode == 0 and f"local: stopped {server}" in down.stderr
    assert gone(pid) and left_behind(config) == []


def test_pid_file_naming_a_strangers_pid_never_signals_the_stranger(config: LabConfig, server: str) -> None:
    stranger = subprocess.Popen(["sleep", "300"])
    try:
        start_time = int(Path(f"/proc/{stranger.pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        forged = json.dumps({"pid": stranger.pid, "start_time": start_time})
        config.run_dir.mkdir(parents=True)
        (config.run_dir / f"{server}.pid").write_text(forged)
        row = status(config)[server]
        assert row["state"] == "stale" and row["pid"] is None
        assert "not the lab's (a reused pid)" in str(row["detail"])

        started = up(config, server)
        assert f"{server}: started again: its pid file names pid {stranger.pid}" in started.stderr
        pid = recorded_pid(config, server)
        assert pid != stranger.pid

        # Forged again while the lab's own server runs: the marker still finds the right one.
        (config.run_dir / f"{server}.pid").write_text(forged)
        assert status(config)[server]["pid"] == pid
        assert lab(config, "down").returncode == 0
        assert stranger.poll() is None, "the stranger was signalled"
        assert gone(pid) and left_behind(config) == []
    finally:
        stranger.kill()
        stranger.wait()


def test_down_twice(config: LabConfig, require_tool) -> None:
    require_tool("registry")
    up(config, "registry")
    first, second = lab(config, "down"), lab(config, "down")
    assert first.returncode == 0 and "local: stopped registry" in first.stderr
    assert second.returncode == 0 and "local: stopped nothing (nothing was running)" in second.stderr
    assert left_behind(config) == []


# --- crashes and wedges, then `up` ----------------------------------------------------------


def test_kill_9_then_up_restarts_and_says_why(config: LabConfig, component: str) -> None:
    up(config, *NEEDS[component])
    pid = recorded_pid(config, component)
    os.kill(pid, signal.SIGKILL)
    while not gone(pid):
        time.sleep(0.02)
    repaired = up(config, *NEEDS[component])
    assert f"{component}: started again: its pid file names pid {pid}, which has exited" in repaired.stderr
    if component == "database":
        # PostgreSQL refuses to start while the pid in its lock files exists, even as a zombie.
        assert f"database: removed postmaster.pid of exited pid {pid}" in repaired.stderr
    row = status(config)[component]
    assert row["state"] == "ready" and row["pid"] not in (None, pid)
    assert lab(config, "down").returncode == 0
    assert left_behind(config) == []


def test_sigstop_then_up_five_times_never_races(config: LabConfig, component: str) -> None:
    up(config, *NEEDS[component])
    pids = []
    for attempt in range(5):
        pid = recorded_pid(config, component)
        pids.append(pid)
        os.kill(pid, signal.SIGSTOP)
        if attempt == 0:
            row = status(config)[component]
            assert row["state"] == "unhealthy" and "is suspended (state T" in str(row["detail"])
        began = time.monotonic()
        repaired = up(config, *NEEDS[component])
        assert time.monotonic() - began < 30
        assert f"{component}: restarted pid {pid}: pid {pid} is suspended" in repaired.stderr
        assert gone(pid), f"the suspended pid {pid} survived its restart"
        assert local.status(config, (component,))[0].state == "ready"
    assert len(set(pids)) == 5
    assert lab(config, "down").returncode == 0
    assert left_behind(config) == []


@pytest.mark.parametrize("interrupt", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_up_interrupted_at_each_component_leaves_no_half_started_process(
    config: LabConfig, component: str, interrupt: int
) -> None:
    names = NEEDS[component]
    before = [n for n in local.ALL_COMPONENTS if n in names and n != component]
    if before:
        up(config, *before)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "up", "--mode", "local", "--components", ",".join(names)],
        env=cli_env(config),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid_file = config.run_dir / f"{component}.pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    half_started = recorded_pid(config, component)
    # Hold it half-started (never healthy), then interrupt the lab.
    os.kill(half_started, signal.SIGSTOP)
    proc.send_signal(interrupt)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "ERROR: interrupted" and "Traceback" not in stderr
    assert gone(half_started), "the half-started process was left running"
    rows = status(config)
    assert rows[component]["state"] == "stopped"
    assert all(rows[n]["state"] == "ready" for n in before)
    up(config, *names)
    assert lab(config, "down").returncode == 0
    assert left_behind(config) == []


# --- configuration and command line: one line, exit 2, nothing started ---------------------


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (("up", "--components", "registry,bogus"), {}, "ERROR: lab up: argument --components: unknown "),
        (("tools", "install", "kitt"), {}, "ERROR: unknown tool(s) kitt; known: registry,"),
        (("tools", "install", "--mode", "local", "kind"), {}, "ERROR: kind (a kind tool) not used in local"),
        (("up", "--mode", "local", "kind"), {}, "ERROR: lab: unrecognized arguments: kind"),
        (("up",), {"LAB_HOME": "{home}/file"}, "ERROR: LAB_HOME={home}/file is not a directory"),
        (("status",), {"LAB_HOME": "{home}/file/x"}, "ERROR: LAB_HOME={home}/file/x is under {home}/file,"),
        (("up",), {"LAB_DATABASE_PORT": "{registry}"}, "ERROR: ports registry and database are both "),
    ],
    ids=[
        "unknown-component",
        "unknown-tool",
        "tool-of-another-mode",
        "extra-mode",
        "home-is-a-file",
        "home-under-a-file",
        "duplicate-ports",
    ],
)
def test_bad_command_line_or_config_is_one_line_exit_2_and_starts_nothing(
    config: LabConfig, argv: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    (config.home / "file").write_text("not a directory\n")
    fill = {"home": str(config.home), "registry": str(config.ports.registry)}
    env = {key: value.format(**fill) for key, value in env.items()}
    expected = expected.format(**fill)
    began = time.monotonic()
    result = lab(config, *argv, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.stderr
    assert time.monotonic() - began < 20, "validation came after slow work"
    assert not config.run_dir.exists() and left_behind(config) == []


# --- no traceback, whatever happens to the output --------------------------------------------


def test_status_into_a_closed_pipe_is_quiet(config: LabConfig) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "lab", "status", "--mode", "local"],
            env=cli_env(config),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 141 and result.stderr == ""
    shell = subprocess.run(
        f"{sys.executable} -m lab status --mode local | head -3",
        shell=True,
        env=cli_env(config),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shell.returncode == 0 and "Traceback" not in shell.stderr and len(shell.stdout.splitlines()) == 3


def test_verbose_shows_the_traceback_its_help_promises(config: LabConfig, require_tool) -> None:
    require_tool("registry")
    assert "show a traceback with any error" in lab(config, "up", "--help").stdout
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", config.ports.registry))
        squatter.listen()
        plain = lab(config, "up", "--components", "registry")
        env = cli_env(config)
        verbose = subprocess.run(
            [sys.executable, "-m", "lab", "up", "-v", "--components", "registry"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert plain.returncode == verbose.returncode == 1
    assert (
        plain.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"ERROR: port {config.ports.registry} needed by the registry is held by pid {os.getpid()}"
        )
    )
    assert "Traceback (most recent call last)" in verbose.stderr and "PortTaken" in verbose.stderr
    assert left_behind(config) == []


# --- progress on long steps ---------------------------------------------------------------


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_long_steps_show_their_running_time() -> None:
    log = io.StringIO()
    progress = Progress(stream=log, heartbeat=0.2)
    with progress.step("tool registry v3.1.2", "building from source", "a build can take minutes"):
        time.sleep(0.7)
    lines = log.getvalue().splitlines()
    assert lines[0] == " • tool registry v3.1.2: a build can take minutes"
    assert " … tool registry v3.1.2: building from source, 0s …" in lines[1:]
    assert lines[-1].startswith(" ✓ tool registry v3.1.2 (0.")

    screen = Terminal()
    with Progress(stream=screen).step("database on 127.0.0.1:1"):
        time.sleep(2.2)
    assert "\x1b[2K • database on 127.0.0.1:1 ... 2s\r" in screen.getvalue()


def test_a_tool_that_builds_from_source_says_so_up_front(new_home: Callable[..., Path]) -> None:
    home = new_home(own_bin=True)  # nothing installed here
    config = make_config(home)
    spec = next(s for s in tool_specs(config) if s.name == "model-registry")
    activity, expect = expected_work(spec, config)
    assert "building from source" in activity and "several minutes" in expect
    log = io.StringIO()
    with Progress(stream=log).step(f"tool {spec.name} {spec.version}", activity, expect):
        pass
    first = log.getvalue().splitlines()[0]
    assert first.endswith(": not installed yet; a build from source can take several minutes")


# --- one judge per fact, and the lab never calls itself foreign ------------------------------


def test_doctor_port_conflict_remedy_is_one_consistent_command(config: LabConfig) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", config.ports.registry))
        squatter.listen()
        result = diagnose(config, ["port-conflict"], mode="local").outcome("port-conflict").result
    assert result.status == "fail"
    (command,) = [
        line for line in result.remedy if as_invoked("lab up --mode local --components registry") in line
    ]
    assert "export" not in " ".join(result.remedy)
    assert command.count("LAB_REGISTRY_PORT=") == 1
    moved = int(command.split("LAB_REGISTRY_PORT=")[1].split()[0])
    assert moved != config.ports.registry and f"{moved} is free now" in command


def _preflight(config: LabConfig, check_id: str) -> Any:
    # Preflight judges with the doctor's own check of that id.
    outcomes = Preflight().outcomes(Context(config, QUIET))
    return next(o for o in outcomes if o.check.id == check_id).result


def test_kind_preflight_names_the_labs_own_registry(config: LabConfig, require_tool) -> None:
    require_tool("registry")
    local.up(config, QUIET, ("registry",))
    finding = _preflight(config, "kind-registry-port")
    assert finding.status == "fail"
    assert "this lab's local-mode registry" in finding.summary and as_invoked("lab down") in "\n".join(
        finding.remedy
    )
    assert "another program" not in finding.summary


def test_preflight_and_doctor_judge_disk_space_alike(config: LabConfig) -> None:
    finding = _preflight(config, "disk-space")
    doctor = diagnose(config, ["disk-space"], mode="kind").outcome("disk-space").result
    verdict = judge_free_space(shutil.disk_usage(config.home).free, "kind")
    assert (finding.status != "fail") == (verdict.level != "fail") and doctor.status == verdict.level
    # The same sentence (threshold included) from the one judge, whatever the free bytes were.
    judged = verdict.summary.split("GiB free", 1)[1]
    assert judged in finding.summary and judged in doctor.summary


# --- soak ---------------------------------------------------------------------------------


def test_thirty_up_down_cycles_leave_nothing_behind(config: LabConfig, require_tool) -> None:
    for name in ALWAYS:
        require_tool(COMPONENTS[name].tools[0])
    open_files = len(os.listdir("/proc/self/fd"))
    for _ in range(30):
        assert [s.state for s in local.up(config, QUIET, ALWAYS)] == ["ready", "ready"]
        assert local.down(config, QUIET) == ["database", "registry"]
    assert left_behind(config) == []
    assert len(os.listdir("/proc/self/fd")) <= open_files
