"""The chain-error contract: the chain records its failing step, the doctor reads it back.

The chain (``lab demo``/``lab e2e``) calls :func:`record_chain_error` when a step fails,
and checks such as ``mr-version-exists`` read it back (through :class:`Evidence`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab.atomic_files import atomic_write
from lab.config import LabConfig

CHAIN_ERROR_FILE = "last-chain-error.json"


@dataclass(frozen=True)
class ChainError:
    """The last error a chain step recorded under ``$LAB_HOME/run/last-chain-error.json``."""

    step: str
    error_type: str
    message: str
    recorded_at: str = ""
    context: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        """One evidence line naming the step, the error type and the message."""
        kind = f"{self.error_type}: " if self.error_type else ""
        return f"chain step {self.step!r} failed at {self.recorded_at or '?'}: {kind}{self.message}"


def chain_error_path(config: LabConfig) -> Path:
    """Where the chain records its last failing step."""
    return config.run_dir / CHAIN_ERROR_FILE


def record_chain_error(config: LabConfig, step: str, error: BaseException | str, **context: object) -> Path:
    """Record that chain step ``step`` failed, for ``lab doctor`` to diagnose.

    Args:
        config: The lab config (the file goes under ``config.run_dir``).
        step: The chain step that failed (e.g. ``"push"``, ``"register"``).
        error: The exception raised, or a message.
        **context: Facts the doctor can use, e.g. ``modelkit_dir="/path"``, ``model="iris"``,
            ``version="1"``, ``reference="127.0.0.1:5001/iris:1"``.

    Returns:
        The path written (atomically).
    """
    if isinstance(error, BaseException):
        error_type, message = type(error).__name__, str(error) or repr(error)
    else:
        error_type, message = "", str(error)
    record = {
        "step": step,
        "error_type": error_type,
        "message": message,
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "context": {key: str(value) for key, value in context.items()},
    }
    path = chain_error_path(config)
    atomic_write(path, json.dumps(record, indent=2) + "\n", 0o600)
    return path


def clear_chain_error(config: LabConfig) -> None:
    """Forget the recorded error (a chain that succeeds calls this)."""
    chain_error_path(config).unlink(missing_ok=True)


def read_chain_error(config: LabConfig) -> ChainError | None:
    """The recorded chain error, or None (also when the file is unreadable)."""
    try:
        record = json.loads(chain_error_path(config).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    context = record.get("context") or {}
    return ChainError(
        step=str(record.get("step", "")),
        error_type=str(record.get("error_type", "")),
        message=str(record.get("message", "")),
        recorded_at=str(record.get("recorded_at", "")),
        context={str(k): str(v) for k, v in context.items()} if isinstance(context, dict) else {},
    )
