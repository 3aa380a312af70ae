from __future__ import annotations

from pathlib import Path

import pytest

from lab.config import ConfigError, load_config, save_setting


def test_defaults_hold_the_pinned_matrix(tmp_path: Path) -> None:
    config = load_config(env={"LAB_HOME": str(tmp_path)}, toml_path=tmp_path / "absent.toml")
    assert config.versions.kfp == "2.16.0"
    assert config.versions.model_registry == "v0.3.8"
    assert config.versions.model_registry_client == config.versions.model_registry.lstrip("v")
    assert config.versions.kserve == "v0.20.0"
    assert config.versions.kind_node_image.startswith("kindest/node:v1.35.0@sha256:")
    assert config.ports.registry == 5001
    assert config.home == tmp_path.resolve()
    assert config.registry_host == "127.0.0.1:5001"


def test_environment_overrides_toml_overrides_defaults(tmp_path: Path) -> None:
    toml = tmp_path / "lab.toml"
    toml.write_text('mode = "local"\n[ports]\nregistry = 6000\ndatabase = 6001\n')
    config = load_config(env={"LAB_HOME": str(tmp_path), "LAB_REGISTRY_PORT": "7000"}, toml_path=toml)
    assert config.mode == "local"
    assert config.ports.registry == 7000  # the environment wins
    assert config.ports.database == 6001  # from lab.toml


@pytest.mark.parametrize(
    ("env", "toml", "message"),
    [
        ({"LAB_REGISTRY_PORT": "five"}, "", "environment variable LAB_REGISTRY_PORT must be an integer"),
        ({"LAB_REGISTRY_PORT": "70000"}, "", "set LAB_REGISTRY_PORT"),
        ({"LAB_MODE": "cloud"}, "", "must be auto, local, kind or cluster"),
        ({}, "[ports]\nregistri = 1\n", "unknown setting 'ports.registri'"),
        ({}, "mode = [", "not valid TOML"),
    ],
)
def test_bad_settings_name_what_to_fix(tmp_path: Path, env: dict[str, str], toml: str, message: str) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config(env={"LAB_HOME": str(tmp_path), **env}, toml_path=path)


def test_lab_home_settings_merge_over_the_project_file_and_save_setting_keeps_the_rest(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project.toml"
    project.write_text("[ports]\nregistry = 6000\ndatabase = 6001\n")
    home = tmp_path / "home"
    saved = save_setting(home, "ports", "database", 7001)
    save_setting(home, "versions", "mlmd_pin", "1.13.0")
    assert saved == home / "lab.toml"
    config = load_config(env={"LAB_HOME": str(home)}, toml_path=project)
    assert config.ports.registry == 6000  # from the project file
    assert config.ports.database == 7001  # the home's file wins
    assert config.versions.mlmd_pin == "1.13.0"  # an earlier saved setting is kept


def test_save_setting_refuses_an_unknown_setting_and_leaves_the_file_alone(tmp_path: Path) -> None:
    save_setting(tmp_path, "ports", "registry", 6000)
    before = (tmp_path / "lab.toml").read_text()
    with pytest.raises(ConfigError, match="unknown setting 'ports.registri'"):
        save_setting(tmp_path, "ports", "registri", 1)
    assert (tmp_path / "lab.toml").read_text() == before
