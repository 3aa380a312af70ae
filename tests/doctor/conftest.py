"""Doctor test fixtures: real local labs (registry, PostgreSQL) and throwaway kind-mode configs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from doctor_labs import QUIET, REGISTRY_PASSWORD, REGISTRY_USER, destroy, new_config

from lab import local
from lab.config import LabConfig


def _require(shared_tools: dict[str, str], *names: str) -> None:
    for name in names:
        if name in shared_tools:
            pytest.skip(shared_tools[name])


@pytest.fixture
def config() -> Iterator[LabConfig]:
    """A lab home with nothing running (kind-mode judging, chain errors, host facts)."""
    cfg = new_config()
    yield cfg
    destroy(cfg)


@pytest.fixture(scope="module")
def healthy_lab(shared_tools: dict[str, str]) -> Iterator[LabConfig]:
    """A real local lab: registry and PostgreSQL up (the Model Registry binary cannot be had here)."""
    _require(shared_tools, "registry", "postgres")
    cfg = new_config()
    try:
        local.up(cfg, QUIET, ("registry", "database"))
        yield cfg
    finally:
        destroy(cfg)


@pytest.fixture(scope="module")
def auth_lab(shared_tools: dict[str, str]) -> Iterator[LabConfig]:
    """A real registry with htpasswd auth; the lab's config.json holds its credentials."""
    _require(shared_tools, "registry")
    cfg = new_config(LAB_REGISTRY_USER=REGISTRY_USER, LAB_REGISTRY_PASSWORD=REGISTRY_PASSWORD)
    try:
        local.up(cfg, QUIET, ("registry",))
        yield cfg
    finally:
        destroy(cfg)


@pytest.fixture
def registry_lab(shared_tools: dict[str, str]) -> Iterator[LabConfig]:
    """A real registry of its own (tests stop and restart it)."""
    _require(shared_tools, "registry")
    cfg = new_config()
    try:
        local.up(cfg, QUIET, ("registry",))
        yield cfg
    finally:
        destroy(cfg)
