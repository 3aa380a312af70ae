"""Remedies that re-apply the lab name the cluster being diagnosed, never another mode's."""

from __future__ import annotations

from pathlib import Path

from lab.config import load_config
from lab.doctor.checks._provision import up_command


def test_kind_mode_remedy_is_the_kind_up() -> None:
    assert up_command(load_config(env={}), "kind") == "lab up --mode kind"


def test_cluster_mode_remedy_carries_every_cluster_setting(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "my configs" / "kubeconfig"
    config = load_config(
        env={
            "LAB_HOME": str(tmp_path / "home"),
            "LAB_KUBECONFIG": str(kubeconfig),
            "LAB_KUBE_CONTEXT": "prod-east",
            "LAB_MANIFESTS_DIR": "/srv/mirror",
            "LAB_CLUSTER_REGISTRY": "registry.internal:5000",
        }
    )
    assert up_command(config, "cluster") == (
        f"lab up --mode cluster --kubeconfig '{kubeconfig}' --context prod-east "
        "--manifests-dir /srv/mirror --registry registry.internal:5000"
    )


def test_cluster_mode_remedy_without_settings_uses_the_default_kubeconfig(tmp_path: Path) -> None:
    config = load_config(env={"LAB_HOME": str(tmp_path / "home")})
    assert up_command(config, "cluster") == "lab up --mode cluster"
