"""What the lab knows about one tool: its pinned version, how to read it and where to get it.

Its own module so that :mod:`lab.tools` and :mod:`lab.tools.control_plane` (which declares
the control-plane tools) both build on it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol


class Source(Protocol):
    """Something that can obtain a tool (see :mod:`lab.tools.sources`)."""

    # A build from source takes minutes where a download takes seconds: progress says so.
    builds_from_source: ClassVar[bool]

    def describe(self, version: str) -> str:
        """How this source would obtain the tool."""
        ...

    def obtain(self, version: str, bin_dir: Path, name: str) -> Path:
        """Install the tool into ``bin_dir`` or raise SourceUnavailable."""
        ...


@dataclass(frozen=True)
class ToolSpec:
    """A tool, its pinned version, how to read its version and where to get it."""

    name: str
    version: str
    modes: frozenset[str]
    version_argv: tuple[str, ...]
    # Tools in a Debian package match on the major version; Go-built ones on the exact tag.
    match_major_only: bool = False
    system_paths: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    remedy: str = ""
    # Further binaries of the same package linked beside the main one (postgres' initdb, pg_ctl...).
    companions: tuple[str, ...] = ()
    # The line of the version output that carries the version (kit's "Version:"); empty: the first
    # version number anywhere in the output.
    version_label: str = ""
    # A Go-built tool's module: its version in the binary's build info (`go version -m`) is the
    # tool's version where the tool's own output has none (a plain `go install`, no version command).
    go_module: str = ""
