from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.config import load_config
from lab.invocation import lab_command
from lab.progress import Progress
from lab.tools import ToolSpec, ToolUnavailable, ensure_tool, install_tools, specs_for_mode, tool_lock
from lab.tools.sources import DebianPackages, GoInstall, GoWrapperBuild, expected_sha256, link_into
from tests.conftest import TOOLS_HOME


def run_lab(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, env=env)


def test_tools_list_shows_pinned_found_path_and_source() -> None:
    proc = run_lab("tools", "list", "--mode", "local", "--json", home=TOOLS_HOME)
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert set(rows) == {"registry", "postgres", "jq", "kit", "model-registry"}
    registry = rows["registry"]
    assert registry["ok"] and registry["found"].lstrip("v") == registry["pinned"].lstrip("v")
    assert registry["path"] == str(TOOLS_HOME / "bin" / "registry")
    assert registry["source"] in {"GoInstall", "DebianPackages"}


def test_second_install_is_a_no_op() -> None:
    config = load_config(env={"LAB_HOME": str(TOOLS_HOME)})
    binary = TOOLS_HOME / "bin" / "registry"
    before = binary.stat().st_mtime_ns
    done, _ = install_tools(config, "local", Progress(quiet=True), only=["registry", "postgres"])
    assert [t.name for t in done] == ["registry", "postgres"]
    assert binary.stat().st_mtime_ns == before, "an installed tool was rebuilt"


def test_an_unobtainable_tool_is_one_line_naming_paths_tried_and_remedy(
    new_home: Callable[..., Path],
) -> None:
    home = new_home()
    config = load_config(env={"LAB_HOME": str(home)})
    spec = ToolSpec(
        name="nonesuch",
        version="v0.0.1",
        modes=frozenset({"local"}),
        version_argv=("--version",),
        # A real `go install` of a module that no proxy serves: the offline path's own failure.
        sources=(GoInstall("example.invalid/nonesuch", "nonesuch"),),
        remedy="install nonesuch by hand",
    )
    with pytest.raises(ToolUnavailable) as caught:
        ensure_tool(spec, config)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("nonesuch v0.0.1 could not be obtained; tried: ")
    assert f"{home}/bin/nonesuch: absent" in message
    assert "go install example.invalid/nonesuch@v0.0.1" in message
    assert message.endswith(
        "To fix: install nonesuch by hand; or register a binary you built or downloaded: "
        + lab_command("tools add nonesuch /path/to/nonesuch --version v0.0.1")
    )
    assert not (home / "bin" / "nonesuch").exists()


def test_tools_install_reports_missing_tools_and_exits_nonzero(new_home: Callable[..., Path]) -> None:
    home = new_home()
    proc = run_lab("tools", "install", "--mode", "local", "registry", "postgres", "nonesuch", home=home)
    # A typo is refused before anything is installed: one line, exit 2.
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("ERROR: unknown tool(s) nonesuch; known: registry, postgres")
    assert "tool registry" not in proc.stderr  # no tool was even looked at
    proc = run_lab("tools", "install", "--mode", "local", home=home)
    missing = [line for line in proc.stdout.splitlines() if line.startswith("ERROR: ")]
    assert (proc.returncode == 1) == bool(missing)
    for line in missing:
        assert (
            "could not be obtained; tried:" in line
            and "To fix:" in line
            and lab_command("tools add ") in line
        )


def test_model_registry_wrapper_module_replaces_nested_modules() -> None:
    config = load_config(env={})
    spec = next(s for s in specs_for_mode(config, "local") if s.name == "model-registry")
    source = spec.sources[0]
    assert isinstance(source, GoWrapperBuild)
    files = source.wrapper_files(config.versions.model_registry)
    go_mod = files["go.mod"]
    # Each nested module at what upstream publishes: pkg/openapi's tag, the release commit's
    # pseudo-version for the never-tagged catalog/pkg/openapi.
    for nested, pinned in (
        ("github.com/kubeflow/model-registry/pkg/openapi", "v0.3.8"),
        ("github.com/kubeflow/model-registry/catalog/pkg/openapi", "v0.0.0-20260403140007-cc86b769e257"),
    ):
        assert f"replace {nested} => {nested} {pinned}" in go_mod
        assert f"\t{nested} {pinned}\n" in go_mod
    assert f"\tgithub.com/kubeflow/model-registry {config.versions.model_registry}\n" in go_mod
    assert 'import "github.com/kubeflow/model-registry/cmd"' in files["main.go"]


def test_release_checksum_lookup() -> None:
    sums = "abc123  kitops-linux-x86_64.tar.gz\ndef456  kitops-darwin-arm64.tar.gz\n"
    assert expected_sha256(sums, "kitops-linux-x86_64.tar.gz") == "abc123"
    assert expected_sha256("feedbeef\n", "kind-linux-amd64") == "feedbeef"


def test_tools_add_registers_a_built_binary_and_install_keeps_it(new_home: Callable[..., Path]) -> None:
    home = new_home(own_bin=True)
    built = TOOLS_HOME / "bin" / "registry"
    if not built.exists():
        pytest.skip(
            f"no registry binary at {built} to register: {lab_command('tools install --mode local registry')}"
        )
    proc = run_lab("tools", "add", "registry", str(built), home=home)
    assert proc.returncode == 0, proc.stderr
    config = load_config(env={"LAB_HOME": str(home)})
    assert proc.stdout.strip() == (
        f"registry {config.versions.registry} added: {home}/bin/registry (source: added)"
    )
    assert (home / "bin" / "registry").read_bytes() == built.read_bytes()
    listing = run_lab("tools", "list", "--json", home=home).stdout
    listed = {row["name"]: row for row in json.loads(listing)}
    assert listed["registry"]["source"] == "added" and listed["registry"]["ok"]
    table = run_lab("tools", "list", "--mode", "local", home=home).stdout
    rows = [line.split() for line in table.splitlines()]
    assert any(row[:1] == ["registry"] and "added" in row for row in rows)
    before = (home / "bin" / "registry").stat().st_mtime_ns
    install = run_lab("tools", "install", "--mode", "local", "registry", home=home)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (home / "bin" / "registry").stat().st_mtime_ns == before


def test_tools_add_refuses_what_does_not_run_or_is_not_the_pinned_version(
    new_home: Callable[..., Path],
) -> None:
    home = new_home(own_bin=True)
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("no jq on PATH to stand for a user's binary (apt-get install jq)")
    # `jq version` is not a jq command: the binary does not answer kit's version command.
    wrong_cli = run_lab("tools", "add", "kit", jq, home=home)
    assert wrong_cli.returncode == 1
    assert wrong_cli.stderr.startswith(f"ERROR: {jq} does not run here: `{jq} version` exited ")
    wrong_version = run_lab("tools", "add", "registry", jq, home=home)
    assert wrong_version.returncode == 1
    assert "the lab pins v3.1.2 (lab/config.py Versions)" in wrong_version.stderr
    # model-registry has no version command: --version is required, then recorded.
    unknown = run_lab("tools", "add", "model-registry", jq, home=home)
    assert unknown.returncode == 1
    assert f"does not say its version; pass it: {lab_command('tools add model-registry')}" in unknown.stderr
    assert not list((home / "bin").iterdir())
    nosuch = run_lab("tools", "add", "nosuch", jq, home=home)
    assert nosuch.returncode == 2  # an unknown name is a wrong command line (README: exit codes)
    assert nosuch.stderr.startswith("ERROR: unknown tool 'nosuch'; known: etcd, jq, kind, kit, ")
    added = run_lab("tools", "add", "model-registry", jq, "--version", "v0.3.8", home=home)
    assert added.returncode == 0, added.stderr
    stamp = json.loads((home / "bin" / ".model-registry.json").read_text())
    assert stamp == {"version": "v0.3.8", "source": "added"}


def test_a_binary_the_user_put_in_bin_is_never_built_over(new_home: Callable[..., Path]) -> None:
    home = new_home(own_bin=True)
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("no jq on PATH to stand for a user's binary (apt-get install jq)")
    copied = home / "bin" / "registry"
    shutil.copy2(jq, copied)  # copied by hand: no stamp, reports another version
    config = load_config(env={"LAB_HOME": str(home)})
    spec = next(s for s in specs_for_mode(config, "local") if s.name == "registry")
    with pytest.raises(ToolUnavailable) as caught:
        ensure_tool(spec, config)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{copied} (not installed by the lab) reports version 1." in message
    command = lab_command(f"tools add registry {copied} --version v3.1.2")
    assert f"to use it as the pinned version run: {command}" in message
    assert copied.read_bytes() == Path(jq).read_bytes()


def lock_probe_spec(shipped: str) -> ToolSpec:
    """A tool whose one source links ``shipped`` (a script that prints version 1.0.0) into bin."""
    return ToolSpec(
        name="lockprobe",
        version="v1.0.0",
        modes=frozenset({"local"}),
        version_argv=("--version",),
        sources=(DebianPackages(("lockprobe",), shipped),),
        remedy="none",
    )


# argv[1]: the lock probe's shipped script, or "unbuildable" (a Go build of a module no proxy serves).
ENSURE_IN_ANOTHER_PROCESS = """
import sys
from lab.config import load_config
from lab.tools import ToolSpec, ToolUnavailable, ensure_tool
from lab.tools.sources import GoWrapperBuild
from tests.tools.test_tools import lock_probe_spec
spec = lock_probe_spec(sys.argv[1]) if sys.argv[1] != "unbuildable" else ToolSpec(
    name="unbuildable", version="v0.0.1", modes=frozenset({"local"}), version_argv=("--version",),
    sources=(GoWrapperBuild("example.invalid/unbuildable", "example.invalid/unbuildable/cmd", ()),),
    remedy="none")
try:
    status = ensure_tool(spec, load_config())
    print(status.ok, status.path)
except ToolUnavailable as exc:
    print("unavailable:", exc)
"""


def ensure_elsewhere(home: Path, argument: str) -> subprocess.Popen[str]:
    """``ensure_tool`` in another process (as a second `lab` command or test worker would)."""
    return subprocess.Popen(
        [sys.executable, "-c", ENSURE_IN_ANOTHER_PROCESS, argument],
        env={**os.environ, "LAB_HOME": str(home)},
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_process_waits_for_the_tool_lock_and_uses_what_the_first_installed(
    new_home: Callable[..., Path], tmp_path: Path
) -> None:
    home = new_home(own_bin=True)  # the session's shared bin stays as it is
    config = load_config(env={"LAB_HOME": str(home)})
    shipped = tmp_path / "lockprobe"
    shipped.write_text("#!/bin/sh\necho 'lockprobe 1.0.0'\n")
    shipped.chmod(0o755)
    installed = home / "bin" / "lockprobe"
    with tool_lock(config, "lockprobe"):
        waiting = ensure_elsewhere(home, str(shipped))
        time.sleep(1.5)
        assert waiting.poll() is None, waiting.communicate()
        assert not installed.exists()
        link_into(config.bin_dir, "lockprobe", shipped)  # what this process's own install does
        linked = installed.lstat()
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert out.strip() == f"True {installed}"
    # It found the tool installed once the lock was free: not linked again (same inode, same time).
    after = installed.lstat()
    assert (after.st_ino, after.st_mtime_ns) == (linked.st_ino, linked.st_mtime_ns)


def test_builds_in_several_processes_at_once_each_end_in_their_own_one_line(
    new_home: Callable[..., Path],
) -> None:
    # Test workers (and two shells) obtain the same tool at once: a failing Go build in one
    # shared build folder used to end some of them in FileExistsError instead of the reason.
    home = new_home(own_bin=True)
    processes = [ensure_elsewhere(home, "unbuildable") for _ in range(4)]
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        assert out.startswith("unavailable: unbuildable v0.0.1 could not be obtained; tried: "), out
        assert "go build example.invalid/unbuildable/cmd" in out and "\n" not in out.strip()
