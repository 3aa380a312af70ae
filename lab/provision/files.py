"""Files the lab writes on the host and on kind nodes, as pyinfra operations.

pyinfra reads the target's facts first (does the file exist, what is its checksum) and only
then decides what to change, so the dry-run plan is the real plan and a second run writes
nothing. The same operations target this machine (``@local``) or a kind node container
(``@docker/<node>``). Files on this machine that are already exactly right are recognised
without pyinfra (the same content and mode facts, read directly), so a second run does not
even load it.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lab.errors import LabError
from lab.templates import render_template

if TYPE_CHECKING:
    from pyinfra.api import State

LOCAL = "@local"


@dataclass(frozen=True)
class FileSpec:
    """A file the lab owns: rendered from ``templates/<template>`` or given as ``content``."""

    dest: str
    template: str = ""
    content: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)
    mode: str = "644"

    def describe(self) -> str:
        """What writing it means, for plans."""
        source = f"from templates/{self.template}" if self.template else "(generated)"
        return f"write {self.dest} {source}"

    def text(self) -> str:
        """The file's content."""
        return render_template(self.template, **self.values) if self.template else self.content


def _current_here(spec: FileSpec) -> bool:
    """Whether the file on this machine already has exactly the spec's content and mode.

    The same facts pyinfra's ``files.put`` reads (content and mode), read directly: a second
    ``up`` then neither imports pyinfra nor runs its shell commands for a file already right.
    """
    try:
        with open(spec.dest, "rb") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            content = handle.read()
    except OSError:
        return False
    return content == spec.text().encode() and mode == int(spec.mode, 8)


def _all_current_here(specs: Sequence[FileSpec], hosts: Sequence[str]) -> bool:
    return list(hosts) == [LOCAL] and all(_current_here(spec) for spec in specs)


def _operations(specs: Sequence[FileSpec], hosts: Sequence[str]) -> tuple[State, list[tuple[FileSpec, Any]]]:
    # Imported here: pyinfra (and gevent) load only when a file may need writing.
    from pyinfra.api import Config, Inventory, State
    from pyinfra.api.connect import connect_all
    from pyinfra.api.exceptions import PyinfraError
    from pyinfra.api.operation import add_op
    from pyinfra.operations import files

    state = State(Inventory((list(hosts), {})), Config())
    try:
        connect_all(state)
    except PyinfraError as exc:
        raise LabError(f"cannot reach {', '.join(hosts)} to write files: {exc}") from None
    if state.failed_hosts:
        raise LabError(
            f"cannot reach {', '.join(sorted(h.name for h in state.failed_hosts))} to write files; "
            "is the kind cluster running (`docker ps`)?"
        )
    planned = []
    for spec in specs:
        # Rendered by the lab's one renderer, then written like any other content.
        result = add_op(
            state,
            files.put,
            name=spec.describe(),
            src=io.BytesIO(spec.text().encode()),
            dest=spec.dest,
            mode=spec.mode,
        )
        planned.append((spec, result))
    return state, planned


def plan_files(specs: Sequence[FileSpec], hosts: Sequence[str] = (LOCAL,)) -> list[str]:
    """What writing ``specs`` would change on ``hosts``; empty when everything is current."""
    if not specs or _all_current_here(specs, hosts):
        return []
    _state, planned = _operations(specs, hosts)
    lines = []
    for spec, results in planned:
        for host, meta in results.items():
            if meta.will_change:
                where = "" if host.name == LOCAL else f" on {host.name.removeprefix('@docker/')}"
                lines.append(spec.describe() + where)
    return lines


def apply_files(specs: Sequence[FileSpec], hosts: Sequence[str] = (LOCAL,)) -> list[str]:
    """Write what differs; returns what changed (empty on a second run)."""
    if not specs or _all_current_here(specs, hosts):
        return []
    from pyinfra.api.exceptions import PyinfraError
    from pyinfra.api.operations import run_ops

    state, planned = _operations(specs, hosts)
    changes = [
        spec.describe() for spec, results in planned if any(meta.will_change for meta in results.values())
    ]
    if not changes:
        return []
    try:
        run_ops(state)
    except PyinfraError as exc:
        raise LabError(f"writing files failed: {exc}") from None
    failures = []
    for spec, results in planned:
        for host, meta in results.items():
            if meta.will_change and not meta.did_succeed():
                failures.append(f"{host.name}: {spec.dest}: {' '.join(meta.stderr_lines[-3:]) or 'failed'}")
    if failures or state.failed_hosts:
        raise LabError("writing files failed; check permissions and free space on the target", failures)
    return changes
