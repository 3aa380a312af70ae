"""unpack-modelkit.sh against hostile ModelKits pushed raw to the real registry.

Each ModelKit is pushed byte for byte through the registry's HTTP API (never made by kit),
fetched back into an OCI image layout, and handed to the script, which must refuse what its
config does not vouch for and every unsafe member, leaving nothing on disk. Every case runs
with uncompressed and gzip layers, and with both layer passes: the Python one
(scripts/lib/extract_layers.py, the default where python3 is) and the script's own bash one;
the member cases also on busybox, the cluster image's tools (no python3: the bash pass).
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from lab import local
from lab.config import LabConfig
from lab.loopback_ports import free_port
from lab.pipeline.scripts import (
    UNPACK_SCRIPT,
    ScriptFailed,
    run_script,
    script_environment,
    script_text,
    unpack_arguments,
)
from tests.pipeline_fixtures.chain_fixtures import (
    KITOPS_CONFIG,
    QUIET,
    Member,
    destroy,
    fetch_oci_layout,
    new_lab,
    push_modelkit_raw,
    sha256,
    tar_layer,
    userland_path,
)
from tests.pipeline_fixtures.modelkits import COMPRESSIONS, KitLayer, build_modelkit, layer_blob, media_type

REPOSITORY = "lab/hostile"
NO_KIT_PATH = "/usr/bin:/bin"
# The layer passes: python (scripts/lib/extract_layers.py) and the script's own bash pass.
EXTRACTORS = ("python", "bash")
# (tools, layer pass): GNU with each pass; busybox (the kitops-kubeflow image, no python3) with bash.
USERLANDS = [("gnu", "python"), ("gnu", "bash"), ("busybox", "bash")]


@dataclass(frozen=True)
class Userland:
    """The PATH the script runs with and the layer pass it is told to take (UNPACK_EXTRACTOR)."""

    kind: str
    path: str
    extractor: str

    @property
    def tag(self) -> str:
        return f"{self.kind}-{self.extractor}"


@pytest.fixture(scope="module", params=USERLANDS, ids=["-".join(u) for u in USERLANDS])
def userland(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Userland:
    """The tools the script runs with (GNU, or busybox as in the kitops-kubeflow image), its layer pass."""
    kind, extractor = request.param
    return Userland(kind, userland_path(kind, tmp_path_factory.mktemp("userland") / "bin"), extractor)


@pytest.fixture(scope="module")
def registry() -> Iterator[LabConfig]:
    config = new_lab()
    try:
        local.up(config, QUIET, ("registry",))
        yield config
    finally:
        destroy(config)


def unpack(
    layout: Path,
    reference: str,
    extract: Path,
    userland: Userland = Userland("gnu", NO_KIT_PATH, "python"),
    max_bytes: int | None = None,
) -> str:
    env = script_environment(extra={"PATH": userland.path, "UNPACK_EXTRACTOR": userland.extractor})
    arguments = unpack_arguments(reference, str(extract), oci_layout=str(layout), max_bytes=max_bytes)
    return run_script(UNPACK_SCRIPT, arguments, env)


def with_python(extractor: str) -> Userland:
    return Userland("gnu", NO_KIT_PATH, extractor)


def nothing_written(extract: Path) -> None:
    assert not extract.exists()
    if extract.parent.exists():
        assert not [p for p in extract.parent.iterdir() if p.name.startswith(".unpack-")]


def push_and_fetch(
    registry: LabConfig, tag: str, layers: list[tuple[bytes, str]], config: bytes, layout: Path
) -> tuple[str, str]:
    """Push a hand-made ModelKit, fetch it into an OCI layout; (tag reference, manifest digest)."""
    host = registry.registry_host
    digest = push_modelkit_raw(host, REPOSITORY, tag, layers, config=config)
    assert fetch_oci_layout(host, REPOSITORY, tag, layout) == digest
    return f"{host}/{REPOSITORY}:{tag}", digest


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_benign_modelkit_unpacks_byte_for_byte_by_tag_and_by_digest(
    registry: LabConfig, userland: Userland, tmp_path: Path, compression: str
) -> None:
    files = {
        "model.joblib": b"\x80\x04model-bytes",
        "data/test.csv": b"a,b\n1.5,2\n",
        "README.md": b"# m\n",
        "d/" + "x" * 120 + "/deep.txt": b"long names use pax headers",
    }
    layers, config = build_modelkit(
        [
            KitLayer("model", "model.joblib", [Member("model.joblib", files["model.joblib"])]),
            KitLayer(
                "dataset",
                "data",
                [
                    Member("data", kind="dir"),
                    Member("data/test.csv", files["data/test.csv"]),
                    Member("data/latest.csv", kind="symlink", target="test.csv"),
                ],
            ),
            KitLayer("docs", "README.md", [Member("README.md", files["README.md"])]),
            # kit writes the directories above an entry's path into its layer
            KitLayer(
                "code",
                "d/" + "x" * 120,
                [
                    Member("d", kind="dir"),
                    Member("d/" + "x" * 120 + "/deep.txt", files["d/" + "x" * 120 + "/deep.txt"]),
                ],
            ),
        ],
        compression,
    )
    tag = f"benign-{compression}-{userland.tag}"
    reference, digest = push_and_fetch(registry, tag, layers, config, tmp_path / "layout")
    host = registry.registry_host
    for ref in (reference, f"kit://{host}/{REPOSITORY}@{digest}"):
        extract = tmp_path / f"out-{len(ref)}"
        answer = json.loads(unpack(tmp_path / "layout", ref, extract, userland))
        assert answer["status"] == "success" and answer["fetch"] == "layout"
        assert answer["extractor"] == userland.extractor
        assert (answer["model_path"], answer["reference"]) == (str(extract), f"{host}/{REPOSITORY}@{digest}")
        assert set(answer["seconds"]) == {"pull", "layers", "finish"}
        for name, data in files.items():
            assert (extract / name).read_bytes() == data
        assert (extract / "data/latest.csv").read_bytes() == files["data/test.csv"]
        # The Kitfile is YAML, as kit unpack writes it: the config without digest and diffId.
        kitfile = (extract / "Kitfile").read_text()
        assert not kitfile.lstrip().startswith("{") and "digest" not in kitfile and "diffId" not in kitfile
        expected = json.loads(config)
        for entry in [expected["model"], *expected["datasets"], *expected["docs"], *expected["code"]]:
            del entry["digest"], entry["diffId"]
        assert yaml.safe_load(kitfile) == expected


def test_a_pax_size_is_read_as_decimal_even_with_leading_zeros(
    registry: LabConfig, userland: Userland, tmp_path: Path
) -> None:
    # "010" is ten bytes (pax records are decimal); read as octal it would be eight.
    # The member after it is where a misread size shows: its header would be read off-block.
    files = {"data/ten.bin": b"0123456789", "data/next.txt": b"after the pax member\n"}
    members = [
        Member("data", kind="dir"),
        Member("data/ten.bin", files["data/ten.bin"], pax={"size": "010"}),
        Member("data/next.txt", files["data/next.txt"]),
    ]
    layers, config = build_modelkit([KitLayer("dataset", "data", members)], "none")
    reference, _ = push_and_fetch(registry, f"pax-size-{userland.tag}", layers, config, tmp_path / "layout")
    extract = tmp_path / "out"
    answer = json.loads(unpack(tmp_path / "layout", reference, extract, userland))
    assert answer["status"] == "success" and answer["extractor"] == userland.extractor
    for name, data in files.items():
        assert (extract / name).read_bytes() == data


# Members no ModelKit may carry: (members of a dataset layer whose Kitfile path is ".", refusal).
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
        [Member("evil.joblib", kind="hardlink", target="/etc/passwd")],
        "hard link evil.joblib -> /etc/passwd leaves the extract path",
    ),
    "hard link to nothing in the ModelKit": (
        [Member("other.joblib", kind="hardlink", target="other")],
        "hard link other.joblib -> other does not point to a file of this ModelKit",
    ),
    "device node": ([Member("dev", kind="chardev")], "member dev is a device node"),
    "fifo": ([Member("pipe", kind="fifo")], "member pipe is a FIFO"),
    "duplicate entry": (
        [Member("twice.txt", b"checked"), Member("twice.txt", b"replaced")],
        "member twice.txt appears twice",
    ),
    "link then write": (
        [Member("a.txt", b"a"), Member("b.txt", kind="hardlink", target="a.txt"), Member("b.txt", b"x")],
        "member b.txt appears twice",
    ),
    "newline in a name": ([Member("evil\nname", b"x")], "contains control characters"),
    "a layer member named Kitfile": (
        [Member("Kitfile", b"manifestVersion: evil")],
        "member Kitfile would replace the Kitfile written from the config",
    ),
    # Each link stays inside on its own; together b resolves to the extract path's parent.
    "symlink chain": (
        [Member("a", kind="symlink", target="."), Member("b", kind="symlink", target="a/..")],
        "symlink b resolves outside the extract path",
    ),
}


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_member_is_refused_and_nothing_is_written(
    registry: LabConfig, userland: Userland, tmp_path: Path, case: str, compression: str
) -> None:
    members, expected = HOSTILE[case]
    layers, config = build_modelkit(
        [
            KitLayer("model", "model.joblib", [Member("model.joblib", b"model")]),
            KitLayer("dataset", ".", members),
        ],
        compression,
    )
    tag = f"{case.replace(' ', '-')}-{compression}-{userland.tag}"
    reference, _ = push_and_fetch(registry, tag, layers, config, tmp_path / "layout")
    extract = tmp_path / "out" / "model"
    with pytest.raises(ScriptFailed) as failure:
        unpack(tmp_path / "layout", reference, extract, userland)
    assert expected in failure.value.message
    assert failure.value.message.startswith(f"refusing to unpack {reference}")
    nothing_written(extract)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_gnu_long_names_are_read_and_checked(
    registry: LabConfig, userland: Userland, tmp_path: Path, compression: str
) -> None:
    evil = "/" + "y" * 130
    tar = tar_layer([Member("g/" + "z" * 130, b"fine"), Member(evil, b"x")], fmt=tarfile.GNU_FORMAT)
    blob = gzip.compress(tar, mtime=0) if compression == "gzip" else tar
    config = json.dumps(
        {
            "manifestVersion": "1.0.0",
            "datasets": [{"path": ".", "digest": sha256(blob), "diffId": sha256(tar)}],
        }
    ).encode()
    layers = [(blob, media_type("dataset", compression))]
    reference, _ = push_and_fetch(
        registry, f"gnu-{compression}-{userland.tag}", layers, config, tmp_path / "layout"
    )
    with pytest.raises(ScriptFailed, match=f"member {evil} has an absolute path"):
        unpack(tmp_path / "layout", reference, tmp_path / "out", userland)
    nothing_written(tmp_path / "out")


def other_digest(config: dict, section: str, field: str) -> str:
    """Replace one digest of the first entry of a section with another; the one written."""
    entries = config[section] if section != "model" else [config["model"]]
    entries[0][field] = sha256(b"not this layer")
    return entries[0][field]


def ghost_entry(config: dict) -> None:
    config["datasets"].append({"path": "ghost", "digest": sha256(b"g"), "diffId": sha256(b"g")})


# Promises the config breaks: (edit of the config, members of the dataset layer at path "data",
# the refusal for uncompressed layers, the refusal for gzip layers). {layer} is the dataset layer.
GOOD_DATA = [Member("data", kind="dir"), Member("data/rows.csv", b"a,b\n")]
CONTRACT = {
    "config digest differs from the manifest's": (
        lambda c: other_digest(c, "datasets", "digest"),
        GOOD_DATA,
        "layer {layer} (dataset data): the Kitfile entry says digest {other}",
        "layer {layer} (dataset data): the Kitfile entry says digest {other}",
    ),
    "diffId is not the uncompressed sha256": (
        lambda c: other_digest(c, "datasets", "diffId"),
        GOOD_DATA,
        "layer {layer} (dataset data): an uncompressed layer must have diffId = digest",
        "layer {layer} (dataset data): the uncompressed layer hashes to {tar}, "
        "but the Kitfile's diffId is {other}",
    ),
    "layer the Kitfile does not declare": (
        lambda c: c.pop("datasets"),
        GOOD_DATA,
        "layer {layer} (dataset) is not declared in the Kitfile",
        "layer {layer} (dataset) is not declared in the Kitfile",
    ),
    "member outside its entry's path": (
        None,
        [*GOOD_DATA, Member("elsewhere.txt", b"x")],
        "layer {layer} (dataset data): member elsewhere.txt lies outside the entry's path data",
        "layer {layer} (dataset data): member elsewhere.txt lies outside the entry's path data",
    ),
    "entry path leaving the ModelKit": (
        lambda c: c["datasets"][0].update(path="../data"),
        GOOD_DATA,
        "layer {layer} (dataset): its Kitfile path ../data leaves the ModelKit",
        "layer {layer} (dataset): its Kitfile path ../data leaves the ModelKit",
    ),
    "entry without a layer": (
        ghost_entry,
        GOOD_DATA,
        "the Kitfile declares dataset ghost but the manifest has no layer for it",
        "the Kitfile declares dataset ghost but the manifest has no layer for it",
    ),
    "layer kind the entry does not have": (
        lambda c: c.update(docs=c.pop("datasets")),
        GOOD_DATA,
        "layer {layer} (dataset) is not declared in the Kitfile",
        "layer {layer} (dataset) is not declared in the Kitfile",
    ),
}


@pytest.mark.parametrize("extractor", EXTRACTORS)
@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("case", sorted(CONTRACT))
def test_what_the_config_does_not_vouch_for_is_refused(
    registry: LabConfig, tmp_path: Path, case: str, compression: str, extractor: str
) -> None:
    edit, members, refusal_none, refusal_gzip = CONTRACT[case]
    written: dict[str, str] = {}

    def record(config: dict) -> None:
        if edit is not None:
            written["other"] = str(edit(config))

    layers, config = build_modelkit(
        [
            KitLayer("model", "model.joblib", [Member("model.joblib", b"model")]),
            KitLayer("dataset", "data", members),
        ],
        compression,
        record,
    )
    tag = f"contract-{case.replace(' ', '-').replace(chr(39), '')}-{compression}-{extractor}"
    reference, _ = push_and_fetch(registry, tag, layers, config, tmp_path / "layout")
    extract = tmp_path / "out" / "model"
    with pytest.raises(ScriptFailed) as failure:
        unpack(tmp_path / "layout", reference, extract, with_python(extractor))
    expected = (refusal_gzip if compression == "gzip" else refusal_none).format(
        layer=sha256(layers[1][0]), tar=sha256(layer_blob(members, "none")[0]), other=written.get("other")
    )
    assert failure.value.message.startswith(f"refusing to unpack {reference}: {expected}")
    nothing_written(extract)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_a_layer_of_no_modelkit_type_is_refused(
    registry: LabConfig, tmp_path: Path, compression: str
) -> None:
    layers, config = build_modelkit([KitLayer("model", "m.bin", [Member("m.bin", b"m")])], compression)
    blob, _ = layer_blob([Member("bin/sh", b"x")], compression)
    layers.append(
        (blob, "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compression == "gzip" else ""))
    )
    reference, _ = push_and_fetch(registry, f"foreign-{compression}", layers, config, tmp_path / "layout")
    with pytest.raises(
        ScriptFailed, match=f"layer {sha256(blob)} has media type application/vnd.oci.image.layer"
    ):
        unpack(tmp_path / "layout", reference, tmp_path / "out")
    nothing_written(tmp_path / "out")


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_the_byte_cap_stops_a_gzip_bomb_while_streaming(
    registry: LabConfig, userland: Userland, tmp_path: Path, compression: str
) -> None:
    # 8 MiB of zeros: gzip makes it about 1000 times smaller; the cap is 1 MiB.
    bomb = [
        Member("m", kind="dir"),
        Member("m/small.bin", b"s" * 4096),
        Member("m/zeros.bin", bytes(8 << 20)),
    ]
    layers, config = build_modelkit([KitLayer("model", "m", bomb)], compression)
    if compression == "gzip":
        assert len(layer_blob(bomb, "none")[0]) > 1000 * len(layers[0][0])
    reference, _ = push_and_fetch(
        registry, f"bomb-{compression}-{userland.tag}", layers, config, tmp_path / "layout"
    )
    extract = tmp_path / "out" / "model"
    with pytest.raises(ScriptFailed) as failure:
        unpack(tmp_path / "layout", reference, extract, userland, max_bytes=1 << 20)
    assert failure.value.message == (
        f"refusing to unpack {reference}: layer {sha256(layers[0][0])} (model m): member m/zeros.bin "
        f"({8 << 20} bytes) would take the extracted bytes past the cap of {1 << 20} (--max-bytes)"
    )
    nothing_written(extract)
    # Under the cap, the same ModelKit unpacks.
    unpack(tmp_path / "layout", reference, extract, userland, max_bytes=9 << 20)
    assert (extract / "m" / "zeros.bin").stat().st_size == 8 << 20


@pytest.mark.parametrize("extractor", EXTRACTORS)
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_tampered_layer_and_wrong_manifest_digest_are_refused(
    registry: LabConfig, tmp_path: Path, compression: str, extractor: str
) -> None:
    layers, config = build_modelkit(
        [KitLayer("model", "model.joblib", [Member("model.joblib", b"model" * 100)])], compression
    )
    layout = tmp_path / "layout"
    _, digest = push_and_fetch(registry, f"tamper-{compression}-{extractor}", layers, config, layout)
    host = registry.registry_host
    blob = layout / "blobs" / "sha256" / sha256(layers[0][0]).removeprefix("sha256:")
    tampered = bytearray(blob.read_bytes())
    tampered[-5 if compression == "gzip" else 600] ^= 0xFF  # same size, different bytes
    blob.write_bytes(bytes(tampered))
    expected = (
        r"not a valid gzip stream \(corrupted or tampered; gzip: stdin: invalid compressed data--crc error\)"
        if compression == "gzip"  # gzip's own check sees it first: its CRC no longer matches
        else f"layer of .* fails verification: expected {sha256(layers[0][0])}"
    )
    with pytest.raises(ScriptFailed, match=expected):
        unpack(layout, f"{host}/{REPOSITORY}@{digest}", tmp_path / "out", with_python(extractor))
    nothing_written(tmp_path / "out")

    # A manifest whose bytes do not hash to the digest asked for.
    manifest = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    manifest.write_bytes(manifest.read_bytes() + b" ")
    with pytest.raises(ScriptFailed, match=f"manifest of .* fails verification: expected {digest}"):
        unpack(layout, f"{host}/{REPOSITORY}@{digest}", tmp_path / "out")
    nothing_written(tmp_path / "out")


def test_a_config_that_is_not_the_manifests_is_refused(registry: LabConfig, tmp_path: Path) -> None:
    layers, config = build_modelkit([KitLayer("model", "m.bin", [Member("m.bin", b"m")])], "none")
    layout = tmp_path / "layout"
    reference, _ = push_and_fetch(registry, "config-swap", layers, config, layout)
    config_blob = layout / "blobs" / "sha256" / sha256(config).removeprefix("sha256:")
    config_blob.write_bytes(config.replace(b"hand-made", b"hand-mad3"))
    with pytest.raises(ScriptFailed, match=f"config of .* fails verification: expected {sha256(config)}"):
        unpack(layout, reference, tmp_path / "out")
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


BAD_REFERENCES = [
    ("iris:v1", "reference 'iris:v1' is not an OCI reference"),
    ("lab/iris:v1", "'lab' is not a registry host (kit would read it as local storage"),
    ("127.0.0.1:5001/lab/iris@sha256:abc", "'sha256:abc' is not a sha256 digest"),
    ("kit://--help", "reference '--help' starts with '-' (it would be read as an option)"),
    ("-127.0.0.1:5001/lab/iris:v1", "starts with '-'"),
    ("127.0.0.1:5001/lab/iris:v1;touch /tmp/pwned", "contains whitespace or control characters"),
    ("127.0.0.1:5001/lab/iris:v1;id", "contains shell syntax"),
    ("127.0.0.1:5001/lab/iris:$(id)", "contains shell syntax"),
    ("127.0.0.1:5001/lab/iris:`id`", "contains shell syntax"),
    (
        "127.0.0.1:5001/lab/iris:v1\nx",
        "reference $'127.0.0.1:5001/lab/iris:v1\\nx' contains whitespace or control",
    ),
    ("127.0.0.1:5001/lab/Iris:v1", "is not an OCI reference"),
    ("127.0.0.1:5001/lab/iris:-v1", "is not an OCI reference"),
]


@pytest.mark.parametrize(("reference", "expected"), BAD_REFERENCES)
def test_bad_references_are_refused_before_any_tool_sees_them(
    tmp_path: Path, reference: str, expected: str
) -> None:
    # No kit on PATH: a refusal that is not "kit is required" happened before kit was needed.
    env = script_environment(extra={"PATH": NO_KIT_PATH})
    with pytest.raises(ScriptFailed) as failure:
        run_script(UNPACK_SCRIPT, unpack_arguments(reference, str(tmp_path / "out")), env)
    assert expected in failure.value.message
    assert failure.value.returncode != 0
    assert not (tmp_path / "out").exists()


def test_without_kit_pulling_says_kit_is_needed(tmp_path: Path) -> None:
    # UNPACK_FETCH=kit: the path taken where curl is missing or a credential helper holds the login.
    env = script_environment(extra={"PATH": NO_KIT_PATH, "UNPACK_FETCH": "kit"})
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


def test_a_registry_that_does_not_answer_is_retried_then_named(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"  # nothing listens there: a transient failure
    env = script_environment(extra={"KIT_RETRIES": "2", "KIT_RETRY_DELAY": "0"})
    arguments = unpack_arguments(f"{host}/lab/iris:v1", str(tmp_path / "out"), plain_http="true")
    with pytest.raises(ScriptFailed) as failure:
        run_script(UNPACK_SCRIPT, arguments, env)
    assert failure.value.message.startswith(f"GET http://{host}/v2/lab/iris/manifests/v1 failed (curl: (7)")
    assert failure.value.message.endswith("(after 2 attempts)")
    assert "(attempt 1/2), retrying in 0s" in failure.value.output
    assert not (tmp_path / "out").exists()


def python3_spy(directory: Path) -> tuple[Path, Path]:
    """A python3 on PATH that records each run (its arguments) and then is the real python3."""
    real = shutil.which("python3", path=NO_KIT_PATH)
    assert real, "python3 is needed for the Python layer pass"
    directory.mkdir(parents=True)
    record = directory / "runs"
    spy = directory / "python3"
    spy.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >>"{record}"\nexec "{real}" "$@"\n')
    spy.chmod(0o755)
    return directory, record


def test_the_python_layer_pass_is_the_default_where_python3_is(registry: LabConfig, tmp_path: Path) -> None:
    files = {"m/model.joblib": b"\x80\x04model", "m/sub/w.bin": os.urandom(70000)}
    members = [Member("m", kind="dir"), Member("m/sub", kind="dir")]
    members += [Member(name, data) for name, data in files.items()]
    layers, config = build_modelkit([KitLayer("model", "m", members)], "gzip")
    reference, _ = push_and_fetch(registry, "default-pass", layers, config, tmp_path / "layout")
    spy, record = python3_spy(tmp_path / "spy")
    busybox = userland_path("busybox", tmp_path / "busybox-bin")

    def run(
        path: str, extractor: str | None, extract: Path, *, as_text: bool = False, python: str = ""
    ) -> tuple[dict, str]:
        env = script_environment(extra={"PATH": path})
        for name, value in (("UNPACK_EXTRACTOR", extractor), ("UNPACK_PYTHON", python)):
            env.pop(name, None)
            if value:
                env[name] = value
        arguments = unpack_arguments(reference, str(extract), oci_layout=str(tmp_path / "layout"))
        if not as_text:
            return json.loads(run_script(UNPACK_SCRIPT, arguments, env)), ""
        # As the cluster's container component runs it: the text, nothing beside it in lib/.
        proc = subprocess.run(
            ["bash", "-c", script_text(UNPACK_SCRIPT), UNPACK_SCRIPT.name, *arguments],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            check=True,
        )
        return json.loads(proc.stdout), proc.stderr

    # No choice made, python3 on PATH: the Python pass runs (python3 ran extract_layers.py).
    answer, _ = run(f"{spy}:{NO_KIT_PATH}", None, tmp_path / "default")
    assert answer["extractor"] == "python"
    runs = record.read_text().splitlines()
    assert len(runs) == 1 and "extract_layers.py" in runs[0] and f"ref={reference}" in runs[0]
    for name, data in files.items():
        assert (tmp_path / "default" / name).read_bytes() == data

    # Carried as text (the python source in a here-document): the same pass, the same files.
    answer, log = run(f"{spy}:{NO_KIT_PATH}", None, tmp_path / "text", as_text=True)
    assert answer["extractor"] == "python" and len(record.read_text().splitlines()) == 2
    extracted = sum(map(len, files.values()))
    assert f"extracted 1 layer(s), {extracted} bytes, every member checked (python)" in log
    for name, data in files.items():
        assert (tmp_path / "text" / name).read_bytes() == data

    # UNPACK_EXTRACTOR=bash: python3 never runs; the bash pass writes the same files.
    answer, _ = run(f"{spy}:{NO_KIT_PATH}", "bash", tmp_path / "bash")
    assert answer["extractor"] == "bash" and len(record.read_text().splitlines()) == 2
    for name, data in files.items():
        assert (tmp_path / "bash" / name).read_bytes() == data

    # No python3 (the cluster image): the bash pass, unless python is demanded.
    answer, _ = run(busybox, None, tmp_path / "no-python")
    assert answer["extractor"] == "bash"
    # UNPACK_PYTHON names the interpreter (the lab passes its own): found off PATH too.
    answer, _ = run(busybox, None, tmp_path / "named", python=str(spy / "python3"))
    assert answer["extractor"] == "python" and len(record.read_text().splitlines()) == 3
    assert (tmp_path / "named" / "m/sub/w.bin").read_bytes() == files["m/sub/w.bin"]
    with pytest.raises(ScriptFailed, match="UNPACK_EXTRACTOR=python but python3 is not on PATH"):
        run(busybox, "python", tmp_path / "demanded")
    nothing_written(tmp_path / "demanded")


class FlakyRegistry(http.server.ThreadingHTTPServer):
    """A registry serving one ModelKit whose layer download breaks off halfway the first time."""

    def __init__(self, manifest: bytes, blobs: dict[str, bytes]) -> None:
        self.manifest, self.blobs, self.layer_gets = manifest, blobs, 0
        super().__init__(("127.0.0.1", 0), FlakyHandler)


class FlakyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FlakyRegistry

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        digest = self.path.rsplit("/", 1)[-1]
        body = self.server.manifest if "/manifests/" in self.path else self.server.blobs.get(digest)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if digest in self.server.blobs and len(body) > 4096:
            self.server.layer_gets += 1
            if self.server.layer_gets == 1:  # the connection closes halfway through the layer
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
                return
        self.wfile.write(body)


@pytest.mark.parametrize("extractor", EXTRACTORS)
def test_a_layer_download_that_breaks_off_is_retried_from_nothing(tmp_path: Path, extractor: str) -> None:
    data = os.urandom(200_000)
    layers, config = build_modelkit([KitLayer("model", "m.bin", [Member("m.bin", data)])], "gzip")
    blobs = {sha256(blob): blob for blob, _ in layers} | {sha256(config): config}
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "config": {"mediaType": KITOPS_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [
                {"mediaType": media, "digest": sha256(blob), "size": len(blob)} for blob, media in layers
            ],
        }
    ).encode()
    server = FlakyRegistry(manifest, blobs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        reference = f"127.0.0.1:{server.server_address[1]}/lab/flaky@{sha256(manifest)}"
        env = script_environment(
            extra={"PATH": NO_KIT_PATH, "UNPACK_EXTRACTOR": extractor, "KIT_RETRY_DELAY": "0"}
        )
        env["DOCKER_CONFIG"] = str(tmp_path / "no-docker-config")
        answer = run_script(
            UNPACK_SCRIPT, unpack_arguments(reference, str(tmp_path / "out"), plain_http="true"), env
        )
    finally:
        server.shutdown()
        server.server_close()
    assert json.loads(answer)["extractor"] == extractor
    assert server.layer_gets == 2
    assert (tmp_path / "out" / "m.bin").read_bytes() == data
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".unpack-")]
