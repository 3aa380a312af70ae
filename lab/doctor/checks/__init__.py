"""The registry of doctor checks: one module per failure mode or component health check.

Adding a check is adding a module with a ``CHECK`` and one line here.
"""

from __future__ import annotations

from lab.doctor.checks import (
    cert_manager_not_ready,
    cosign_keys_missing,
    crash_loop,
    database_health,
    disk_space,
    docker_missing,
    image_not_found,
    inotify_limits,
    kfp_not_ready,
    kind_cluster,
    kind_dns_imagepull,
    kind_registry_port,
    kind_tools,
    kserve_not_ready,
    local_registry_unwired,
    mlmd_segfault,
    model_registry_health,
    model_server_health,
    modelkit_dir_missing,
    mr_config_error,
    mr_database_version,
    mr_version_exists,
    namespace_terminating,
    port_conflict,
    pvc_pending,
    registry_health,
    registry_unauthorized,
)
from lab.doctor.model import GROUPS, Check

ALL_CHECKS: tuple[Check, ...] = tuple(
    module.CHECK
    for module in (
        # host
        docker_missing,
        kind_cluster,
        inotify_limits,
        disk_space,
        port_conflict,
        kind_registry_port,
        kind_tools,
        kind_dns_imagepull,
        # cluster
        namespace_terminating,
        crash_loop,
        # registry
        registry_health,
        registry_unauthorized,
        local_registry_unwired,
        # database
        database_health,
        # model-registry
        model_registry_health,
        mr_database_version,
        mr_config_error,
        mr_version_exists,
        # cert-manager
        cert_manager_not_ready,
        # kfp
        kfp_not_ready,
        mlmd_segfault,
        pvc_pending,
        # kserve
        kserve_not_ready,
        model_server_health,
        # pipeline
        image_not_found,
        modelkit_dir_missing,
        cosign_keys_missing,
    )
)

# The failure modes users of this stack meet (the project's failure-modes list, which the
# README's Troubleshooting names one by one); each has the check of the same id above. The
# other checks judge a component's health or a mode's own preconditions.
DOCUMENTED_FAILURE_MODES: tuple[str, ...] = (
    "kind-dns-imagepull",
    "image-not-found",
    "local-registry-unwired",
    "mlmd-segfault",
    "pvc-pending",
    "kfp-not-ready",
    "mr-config-error",
    "mr-version-exists",
    "mr-database-version",
    "registry-unauthorized",
    "modelkit-dir-missing",
    "cosign-keys-missing",
    "inotify-limits",
    "docker-missing",
    "kserve-not-ready",
)


class UnknownCheck(ValueError):
    """A check id that no check has; the message lists the known ones."""


def checks_by_id() -> dict[str, Check]:
    """Every check by its stable id."""
    return {check.id: check for check in ALL_CHECKS}


def select(ids: list[str] | tuple[str, ...] | None = None) -> list[Check]:
    """The named checks (all when ``ids`` is empty), in report order."""
    known = checks_by_id()
    if not ids:
        chosen = list(ALL_CHECKS)
    else:
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise UnknownCheck(f"unknown check id(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        chosen = [c for c in ALL_CHECKS if c.id in ids]
    return sorted(chosen, key=lambda c: GROUPS.index(c.group))


def _assert_unique() -> None:
    ids = [c.id for c in ALL_CHECKS]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise RuntimeError(f"duplicate check ids: {sorted(duplicates)}")


_assert_unique()
