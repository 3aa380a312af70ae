"""The control-plane tools' build recipe: the wrapper module's replaces and version stamps."""

from __future__ import annotations

from lab.config import load_config
from lab.tools import specs_for_mode
from lab.tools.control_plane import KUBE_COMMANDS, KubernetesCommandBuild

# The shape of k8s.io/kubernetes' own go.mod: staging modules replaced by local paths.
KUBERNETES_GO_MOD = """module k8s.io/kubernetes

go 1.25.0

require (
\tk8s.io/api v0.0.0
\tgithub.com/spf13/cobra v1.10.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tgithub.com/example/fork => github.com/example/fork v1.2.3
)
"""


def test_every_staging_module_is_pinned_to_its_published_release() -> None:
    lines = KubernetesCommandBuild.staging_replaces(KUBERNETES_GO_MOD, "v1.35.4")
    assert lines == [
        "replace k8s.io/api => k8s.io/api v0.35.4",
        "replace k8s.io/client-go => k8s.io/client-go v0.35.4",
    ]


def test_the_version_is_stamped_where_version_and_the_api_server_read_it() -> None:
    flags = KubernetesCommandBuild.ldflags("v1.35.4")
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {package}.gitVersion=v1.35.4" in flags
        assert f"-X {package}.gitMajor=1" in flags and f"-X {package}.gitMinor=35" in flags


def test_cluster_mode_tools_are_pinned_in_the_matrix() -> None:
    config = load_config(env={})
    specs = {s.name: s for s in specs_for_mode(config, "cluster")}
    # kustomize too: cluster mode builds the overlays with the README's pinned kustomize,
    # never with whatever `kubectl kustomize` a machine happens to have.
    assert set(specs) == {"etcd", "kwok", *KUBE_COMMANDS, "kustomize"}
    assert specs["kustomize"].version == config.versions.kustomize
    assert specs["kube-apiserver"].version == f"v{config.versions.control_plane_kubernetes}"
    assert specs["etcd"].version == config.versions.etcd and specs["kwok"].version == config.versions.kwok
    assert all(s in specs_for_mode(config, "all") for s in specs.values())
