"""How the user runs the lab here, so that every command the lab prints can be pasted as is.

From a fresh clone only nox reaches the lab (``nox -s tools -- add ...``); once installed it is
``lab ...``; a checkout whose dependencies are installed but whose console script is not on
PATH runs ``python3 -m lab ...``. :func:`lab_command` decides, and :func:`as_invoked` rewrites
the ``lab ...`` commands of a remedy line the same way.
"""

from __future__ import annotations

import os
import re
import shutil

# Sessions of noxfile.py that pass their arguments straight to `lab <session>`; every other
# command goes through the `lab` session (`nox -s lab -- control-plane start`).
NOX_SESSIONS = frozenset({"up", "down", "status", "demo", "doctor", "tools", "manifests"})
# The lab's commands (cli.COMMAND_GROUPS); only these count as `lab <command>` in a line.
_COMMANDS = "up|down|status|tools|manifests|doctor|demo|pipeline|e2e|bench|port-forward|control-plane"
# `lab <command>` where a command starts: line start, after `&&`, `;`, `|`, a backtick, `: `
# (a remedy comment's "another port: lab up"), optionally after assignments (`LAB_HOME=/x lab up`).
_COMMAND = re.compile(
    rf"(?P<lead>^|&& |; |\| |`|: )(?P<env>(?:[A-Z_][A-Z0-9_]*=\S* )*)lab (?P<word>{_COMMANDS})(?![\w-])"
)


def invoked_through_nox() -> bool:
    """Whether this lab runs inside a nox session (a fresh clone: ``lab`` is not on the user's PATH)."""
    return bool(os.environ.get("NOX_CURRENT_SESSION"))


def _spelled(command: str) -> str:
    """What stands for ``lab <command>`` here (the arguments that follow stay as they are)."""
    if invoked_through_nox():
        return f"nox -s {command} --" if command in NOX_SESSIONS else f"nox -s lab -- {command}"
    if shutil.which("lab"):
        return f"lab {command}"
    return f"python3 -m lab {command}"


# `nox -s demo --` with nothing after it: the separator goes.
_BARE_SEPARATOR = re.compile(r" --(?=$|\s*(?:&&|;|\||#|`))")


def lab_command(arguments: str) -> str:
    """``lab <arguments>`` spelled the way it runs where the user is."""
    command, _, rest = arguments.strip().partition(" ")
    return _BARE_SEPARATOR.sub("", f"{_spelled(command)} {rest}".rstrip())


def as_invoked(line: str) -> str:
    """A remedy line with each ``lab <command>`` in it spelled by :func:`lab_command`."""
    spelled = _COMMAND.sub(lambda m: f"{m['lead']}{m['env']}{_spelled(m['word'])}", line)
    return _BARE_SEPARATOR.sub("", spelled)
