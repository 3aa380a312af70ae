"""Throwaway lab homes for doctor tests: free ports, the session's shared tool binaries."""

from __future__ import annotations

import os

from lab.config import LabConfig, load_config
from lab.loopback_ports import free_port
from lab.progress import Progress
from tests.conftest import make_home, remove_home

QUIET = Progress(quiet=True)
REGISTRY_USER, REGISTRY_PASSWORD = "lab-user", "s3cret-Pa55word"


def new_config(**env: str) -> LabConfig:
    """A config for a fresh, world-traversable LAB_HOME on free ports (no lab.toml read)."""
    home = make_home()
    values = {
        "LAB_HOME": str(home),
        "LAB_REGISTRY_PORT": str(free_port()),
        "LAB_DATABASE_PORT": str(free_port()),
        "LAB_MODEL_REGISTRY_PORT": str(free_port()),
        "LAB_MODEL_SERVER_PORT": str(free_port()),
        "LAB_KFP_UI_PORT": str(free_port()),
        **env,
    }
    return load_config(env=values, toml_path=home / "no-lab.toml")


def destroy(config: LabConfig) -> None:
    """Stop what the lab started in this home (by pid) and delete the home."""
    remove_home(config.home, config)


def cli_env(config: LabConfig) -> dict[str, str]:
    """Environment that points the `lab` CLI at this config's home and ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}
    env.update(
        LAB_HOME=str(config.home),
        LAB_REGISTRY_PORT=str(config.ports.registry),
        LAB_DATABASE_PORT=str(config.ports.database),
        LAB_MODEL_REGISTRY_PORT=str(config.ports.model_registry),
        LAB_MODEL_SERVER_PORT=str(config.ports.model_server),
        LAB_KFP_UI_PORT=str(config.ports.kfp_ui),
    )
    if config.registry_auth.enabled:
        env.update(
            LAB_REGISTRY_USER=config.registry_auth.username,
            LAB_REGISTRY_PASSWORD=config.registry_auth.password,
        )
    return env
