"""unpack-modelkit.sh against hostile ModelKits pushed raw to the real registry.

Each ModelKit is pushed byte for byte through the registry's HTTP API, fetched back into an
OCI image layout, and handed to the script, which must verify digests and refuse unsafe
members before writing anything.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import local
from lab.config import LabConfig
from lab.pipeline.scripts import UNPACK_SCRIPT, ScriptFailed, run_script, script_environment, unpack_arguments
from tests.pipeline_fixtures.chain_fixtures import (
    DATASET_LAYER,
    MODEL_LAYER,
    QUIET,
    Member,
    destroy,
    fetch_oci_layout,
    gzip_layer,
    new_lab,
    push_modelkit_raw,
    sha256,
    tar_layer,
    userland_path,
)

REPOSITORY = "lab/hostile"
NO_KIT_PATH = "/usr/bin:/bin"
USERLANDS = ("gnu", "busybox")


@pytest.fixture(scope="module", params=USERLANDS)
def userland(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """PATH of the tools the script runs with: GNU here, busybox as in the kitops-kubeflow image."""
    return userland_path(request.param, tmp_path_factory.mktemp("userland") / "bin")


@pytest.fixture(scope="module")
def registry() -> Iterator[LabConfig]:
    config = new_lab()
    try:
        local.up(config, QUIET, ("registry",))
        yield config
    finally:
        destroy(config)


def unpack(layout: Path, reference: str, extract: Path, path: str = NO_KIT_PATH) -> str:
    env = script_environment(extra={"PATH": path})
    return run_script(UNPACK_SCRIPT, unpack_arguments(reference, str(extract), oci_layout=str(layout)), env)


def nothing_written(extract: Path) -> None:
    assert not extract.exists()
    if extract.parent.exists():
        assert not [p for p in extract.parent.iterdir() if p.name.startswith(".unpack-")]


def test_benign_modelkit_unpacks_byte_for_byte_by_tag_and_by_digest(
    registry: LabConfig, userland: str, tmp_path: Path
) -> None:
    host = registry.registry_host
    files = {"model.joblib": b"\x80\x04model-bytes", "data/test.csv": b"a,b\n1.5,2\n", "README.md": b"# m\n"}
    config = json.dumps({"manifestVersion": "1.0.0", "package": {"name": "benign"}}).encode()
    digest = push_modelkit_raw(
        host,
        REPOSITORY,
        "benign",
        [
            (gzip_layer([Member("model.joblib", files["model.joblib"])]), MODEL_LAYER),
            (
                tar_layer(
                    [
                        Member("data", kind="dir"),
                        Member("data/test.csv", files["data/test.csv"]),
                        Member("data/latest.csv", kind="symlink", target="test.csv"),
                        Member("README.md", files["README.md"]),
                        Member("d/" + "x" * 120 + "/deep.txt", b"long names use pax headers"),
                    ]
                ),
                DATASET_LAYER,
            ),
        ],
        config=config,
    )
    layout = tmp_path / "layout"
    assert fetch_oci_layout(host, REPOSITORY, "benign", layout) == digest

    for reference in (f"{host}/{REPOSITORY}:benign", f"kit://{host}/{REPOSITORY}@{digest}"):
        extract = tmp_path / f"out-{len(reference)}"
        answer = json.loads(unpack(layout, reference, extract, userland))
        assert answer == {
            "status": "success",
            "model_path": str(extract),
            "reference": f"{host}/{REPOSITORY}@{digest}",
        }
        for name, data in files.items():
            assert (extract / name).read_bytes() == data
        assert (extract / "data/latest.csv").read_bytes() == files["data/test.csv"]
        assert (extract / "d" / ("x" * 120) / "deep.txt").read_bytes() == b"long names use pax headers"
        assert json.loads((extract / "Kitfile").read_text()) == json.loads(config)


HOSTILE = {
    "absolute path": ([Member("/tmp/evil", b"x")], "member /tmp/evil has an absolute path"),
    "parent reference": (
        [Member("model/../../evil", b"x")],
        "member model/../../evil contains a '..' path component",
    ),
    "pax path override": (
        [Member("harmless.txt", b"x", pax={"path": "../../evil"})],
        "member ../../evil contains a '..' path component",
    ),
    "symlink leaving the extract path": (
        [Member("data", kind="symlink", target="../../etc")],
        "symlink data -> ../../etc leaves the extract path",
    ),
    "absolute symlink": (
        [Member("data", kind="symlink", target="/etc")],
        "symlink data points to the absolute path /etc",
    ),
    "write through a symlink": (
        [Member("data", kind="symlink", target="inside"), Member("data/passwd", b"x")],
        "member data/passwd would be written through the symlink data",
    ),
    "hard link outside": (
        [Member("model.joblib", kind="hardlink", target="/etc/passwd")],
        "hard link model.joblib -> /etc/passwd leaves the extract path",
    ),
    "hard link to nothing in the ModelKit": (
        [Member("model.joblib", kind="hardlink", target="other")],
        "hard link model.joblib -> other does not point to a file of this ModelKit",
    ),
    "device node": ([Member("dev", kind="chardev")], "member dev is a device node"),
    "fifo": ([Member("pipe", kind="fifo")], "member pipe is a FIFO"),
    # Each link stays inside on its own; together b resolves to the extract path's parent.
    "symlink chain": (
        [Member("a", kind="symlink", target="."), Member("b", kind="symlink", target="a/..")],
        "symlink b resolves outside the extract path",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_member_is_refused_and_nothing_is_written(
    registry: LabConfig, userland: str, tmp_path: Path, case: str
) -> None:
    members, expected = HOSTILE[case]
    tag = f"{case.replace(' ', '-')}-{len(userland)}"
    host = registry.registry_host
    good = Member("model.joblib", b"model")
    push_modelkit_raw(
        host, REPOSITORY, tag, [(gzip_layer([good]), MODEL_LAYER), (tar_layer(members), DATASET_LAYER)]
    )
    layout = tmp_path / "layout"
    fetch_oci_layout(host, REPOSITORY, tag, layout)
    extract = tmp_path / "out" / "model"
    with pytest.raises(ScriptFailed) as failure:
        unpack(layout, f"{host}/{REPOSITORY}:{tag}", extract, userland)
    assert expected in failure.value.message
    assert failure.value.message.startswith(f"refusing to unpack {host}/{REPOSITORY}:{tag}")
    nothing_written(extract)


def test_gnu_long_names_are_read_and_checked(registry: LabConfig, userland: str, tmp_path: Path) -> None:
    host = registry.registry_host
    evil = "/" + "y" * 130
    layer = tar_layer([Member("g/" + "z" * 130, b"fine"), Member(evil, b"x")], fmt=tarfile.GNU_FORMAT)
    push_modelkit_raw(host, REPOSITORY, "gnu", [(layer, DATASET_LAYER)])
    layout = tmp_path / "layout"
    fetch_oci_layout(host, REPOSITORY, "gnu", layout)
    with pytest.raises(ScriptFailed, match=f"member {evil} has an absolute path"):
        unpack(layout, f"{host}/{REPOSITORY}:gnu", tmp_path / "out", userland)
    nothing_written(tmp_path / "out")


def test_tampered_layer_and_wrong_manifest_digest_are_refused(registry: LabConfig, tmp_path: Path) -> None:
    host = registry.registry_host
    layer = gzip_layer([Member("model.joblib", b"model")])
    digest = push_modelkit_raw(host, REPOSITORY, "tamper", [(layer, MODEL_LAYER)])
    layout = tmp_path / "layout"
    fetch_oci_layout(host, REPOSITORY, "tamper", layout)
    blob = layout / "blobs" / "sha256" / sha256(layer).removeprefix("sha256:")
    tampered = bytearray(blob.read_bytes())
    tampered[-5] ^= 0xFF  # same size, different bytes: only the digest can tell
    blob.write_bytes(bytes(tampered))
    with pytest.raises(ScriptFailed, match=f"layer of .* fails verification: expected {sha256(layer)}"):
        unpack(layout, f"{host}/{REPOSITORY}@{digest}", tmp_path / "out")
    nothing_written(tmp_path / "out")

    # A manifest whose bytes do not hash to the digest asked for.
    manifest = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    manifest.write_bytes(manifest.read_bytes() + b" ")
    with pytest.raises(ScriptFailed, match=f"manifest of .* fails verification: expected {digest}"):
        unpack(layout, f"{host}/{REPOSITORY}@{digest}", tmp_path / "out")
    nothing_written(tmp_path / "out")


def test_unknown_reference_and_non_modelkit_are_refused(registry: LabConfig, tmp_path: Path) -> None:
    host = registry.registry_host
    push_modelkit_raw(
        host,
        REPOSITORY,
        "image",
        [(tar_layer([Member("bin/sh", b"x")]), "application/vnd.oci.image.layer.v1.tar")],
        config_type="application/vnd.oci.image.config.v1+json",
    )
    layout = tmp_path / "layout"
    fetch_oci_layout(host, REPOSITORY, "image", layout)
    with pytest.raises(ScriptFailed, match=f"ModelKit {host}/{REPOSITORY}:missing not found in OCI layout"):
        unpack(layout, f"{host}/{REPOSITORY}:missing", tmp_path / "out")
    absent = "sha256:" + "0" * 64
    with pytest.raises(ScriptFailed, match=f"ModelKit {host}/{REPOSITORY}@{absent} not found in {layout}"):
        unpack(layout, f"{host}/{REPOSITORY}@{absent}", tmp_path / "out")
    with pytest.raises(
        ScriptFailed, match=r"is not a ModelKit \(config media type 'application/vnd.oci.image.config"
    ):
        unpack(layout, f"{host}/{REPOSITORY}:image", tmp_path / "out")
    nothing_written(tmp_path / "out")


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("iris:v1", "must be host:port/repository:tag"),
        ("lab/iris:v1", "'lab' is not a registry host (kit would read it as local storage"),
        ("127.0.0.1:5001/lab/iris@sha256:abc", "'sha256:abc' is not a sha256 digest"),
    ],
)
def test_bad_references_are_refused_before_anything_is_fetched(
    tmp_path: Path, reference: str, expected: str
) -> None:
    with pytest.raises(ScriptFailed) as failure:
        run_script(UNPACK_SCRIPT, unpack_arguments(reference, str(tmp_path / "out")), script_environment())
    assert expected in failure.value.message


def test_without_kit_pulling_says_kit_is_needed(tmp_path: Path) -> None:
    env = script_environment(extra={"PATH": NO_KIT_PATH})
    with pytest.raises(
        ScriptFailed, match="kit is required to pull 127.0.0.1:5001/lab/iris:v1 but is not on PATH"
    ):
        run_script(UNPACK_SCRIPT, unpack_arguments("127.0.0.1:5001/lab/iris:v1", str(tmp_path / "out")), env)


def test_a_non_empty_extract_path_is_never_overwritten(tmp_path: Path) -> None:
    extract = tmp_path / "out"
    extract.mkdir()
    (extract / "keep.txt").write_text("mine")
    with pytest.raises(ScriptFailed, match="exists and is not an empty directory"):
        run_script(
            UNPACK_SCRIPT, unpack_arguments("127.0.0.1:5001/lab/iris:v1", str(extract)), script_environment()
        )
    assert (extract / "keep.txt").read_text() == "mine"
