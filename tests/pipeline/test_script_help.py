"""`--help` of the chain's two programs, run as a component carries them (exit 0, usage on stdout)."""

from __future__ import annotations

import re
import subprocess
import sys

from lab.pipeline.scripts import PUSH_SCRIPT, UNPACKER, unpacker_command


def test_the_unpacker_help_gives_both_command_lines_and_every_limit() -> None:
    run = subprocess.run(
        [*unpacker_command(sys.executable), "--help"], capture_output=True, text=True, timeout=60
    )
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout.startswith("usage: unpack-modelkit <modelkit_reference> [extract_path]")
    assert "or: storage-initializer kit://<reference> <dest>" in run.stdout
    # Every limit the unpacker declares, with its variable and default, as the README's table says.
    declared = re.findall(r'\("(--max-[a-z-]+)", "(UNPACK_MAX_[A-Z_]+)", ([^)]+)\)', UNPACKER.read_text())
    assert len(declared) == 3
    for flag, variable, _ in declared:
        assert re.search(rf"^  {flag} N \(or {variable}; default \d+\)$", run.stdout, re.MULTILINE), flag
    assert "--max-bytes N (the bytes extracted; default: the free space less 64 MiB)" in run.stdout
    assert "exit status: 0 unpacked, 1 an I/O failure, 2 a wrong command line, 3 refused" in run.stdout
    # Among other arguments it is data: a step whose reference is "--help" fails, it never succeeds.
    step = subprocess.run(
        [*unpacker_command(sys.executable), "--help", "/tmp/out"], capture_output=True, text=True, timeout=60
    )
    assert step.returncode == 2 and "ERROR: unknown option --help" in step.stderr


def test_the_push_script_help_lists_every_option_it_parses() -> None:
    run = subprocess.run(["bash", str(PUSH_SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout.startswith("usage: push-modelkit <registry> <repository> <tag> --modelkit-dir <dir>")
    parsed = re.findall(r"^    (--[a-z-]+)\) ", PUSH_SCRIPT.read_text(), re.MULTILINE)
    assert len(parsed) == 12
    for option in parsed:
        assert option in run.stdout, option
