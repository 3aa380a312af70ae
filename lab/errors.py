"""Errors the lab raises for the user: each names the thing to fix."""

from __future__ import annotations


class LabError(Exception):
    """A failure the user can act on.

    ``details`` carries the evidence (a log tail, a command's output) printed under the
    one-line message.
    """

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def __str__(self) -> str:
        if not self.details:
            return self.message
        return self.message + "\n" + "\n".join(f"    {line}" for line in self.details)


class CommandFailed(LabError):
    """An external command exited non-zero; carries the command and its output."""

    def __init__(self, argv: list[str], returncode: int, output: str) -> None:
        tail = output.strip().splitlines()[-20:]
        super().__init__(f"command failed (exit {returncode}): {' '.join(argv)}", tail)
        self.argv = argv
        self.returncode = returncode
        self.output = output


class UsageError(LabError):
    """The command line asks for something that does not exist (exit 2, nothing started)."""


class ClusterUnreachable(LabError):
    """The kubeconfig context is missing, or its API server (or the part asked for) does not answer."""
