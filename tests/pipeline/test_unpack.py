"""The unpacker against hostile ModelKits pushed raw to the real registry, on every path.

Each ModelKit is pushed byte for byte through the registry's HTTP API (never made by kit) to a
real distribution process, and unpacked from there by each way the lab runs the one unpacker
(scripts/unpack_modelkit.py):

- ``local``: as ``lab demo``'s serve step and the bench run it (``run_unpacker`` with the lab's
  cache: the same text compiled once; the local pipeline's unpack runs it as ``compiled`` does);
- ``compiled``: the unpack component's command exactly as ``lab pipeline compile`` writes it;
- ``storage-initializer``: the command of the rendered ``kitops`` ClusterStorageContainer,
  with ``kit://REF DEST`` as KServe passes it and ``KIT_UNPACK_FLAGS``.

Each must refuse what the config does not vouch for and every unsafe member, leaving nothing
on disk. Every case runs with uncompressed and gzip layers.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.config import LabConfig
from lab.loopback_ports import free_port
from lab.pipeline.scripts import ScriptFailed, run_unpacker, script_environment, unpack_arguments
from tests.pipeline_fixtures.chain_fixtures import (
    Member,
    fetch_oci_layout,
    push_modelkit_raw,
    running_registry,
    sha256,
    tar_layer,
)
from tests.pipeline_fixtures.modelkits import (
    COMPRESSIONS,
    END_OF_ARCHIVE,
    KitLayer,
    build_modelkit,
    layer_blob,
    media_type,
    modelkit_of_tar,
    pax_member,
    ustar_header,
)

REPOSITORY = "lab/hostile"
PATHS = ("local", "compiled", "storage-initializer")


@pytest.fixture(scope="module")
def registry() -> Iterator[LabConfig]:
    with running_registry() as config:
        yield config


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run(argv: list[str], env: dict[str, str], timeout: float) -> str:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        errors = [line[len("ERROR: ") :] for line in proc.stderr.splitlines() if line.startswith("ERROR: ")]
        raise ScriptFailed("unpack", proc.returncode, errors[-1] if errors else "", proc.stderr + proc.stdout)
    return proc.stdout


def unpack(
    path: str,
    commands: dict[str, list[str]],
    reference: str,
    extract: Path,
    *,
    max_bytes: int | None = None,
    env: dict[str, str] | None = None,
    flags: str = "",
    timeout: float = 120,
    plain_http: bool = True,
) -> str:
    """Unpack ``reference`` (plain HTTP unless told) into ``extract`` the way ``path`` runs the unpacker."""
    environment = script_environment(extra={"KIT_RETRY_DELAY": "0", **(env or {})})
    environment.setdefault("DOCKER_CONFIG", str(extract.parent / "no-docker-config"))
    for name in ("KIT_USER", "KIT_PASSWORD", "KIT_UNPACK_FLAGS"):
        if name not in (env or {}):
            environment.pop(name, None)
    if path == "storage-initializer":
        cap = f" --max-bytes {max_bytes}" if max_bytes is not None else ""
        plain = "--plain-http" if plain_http else ""
        environment["KIT_UNPACK_FLAGS"] = f"{plain}{cap} {flags}".strip()
        return run([*commands[path], f"kit://{reference}", str(extract)], environment, timeout)
    extra = flags.split() if flags else []
    if path == "compiled":  # extract_path empty: the component unpacks into its output artifact
        arguments = unpack_arguments(
            reference, "", plain_http=str(plain_http).lower(), artifact_dir=str(extract), max_bytes=max_bytes
        )
        return run([*commands[path], *extra, *arguments], environment, timeout)
    arguments = unpack_arguments(
        reference, str(extract), plain_http=str(plain_http).lower(), max_bytes=max_bytes
    )
    cache = extract.parent / "unpacker-cache"
    return run_unpacker([*extra, *arguments], environment, cache_dir=cache, timeout=timeout)


def nothing_written(extract: Path) -> None:
    assert not extract.exists() or not any(extract.iterdir())
    for directory in (extract, extract.parent):
        if directory.exists():
            assert not [p for p in directory.iterdir() if p.name.startswith(".unpack-")]


def push(registry: LabConfig, tag: str, layers: list[tuple[bytes, str]], config: bytes) -> tuple[str, str]:
    """Push a hand-made ModelKit; (tag reference, manifest digest)."""
    host = registry.registry_host
    digest = push_modelkit_raw(host, REPOSITORY, tag, layers, config=config)
    return f"{host}/{REPOSITORY}:{tag}", digest


def refused(failure: pytest.ExceptionInfo[ScriptFailed], reference: str, expected: str) -> None:
    message = failure.value.message
    assert message.startswith(f"refusing to unpack {reference}"), message
    assert expected in message, message
    assert failure.value.returncode == 3


BENIGN_FILES = {
    "model.joblib": b"\x80\x04model-bytes",
    "data/test.csv": b"a,b\n1.5,2\n",
    "README.md": b"# m\n",
    "d/" + "x" * 120 + "/deep.txt": b"long names use pax headers",
}


def benign_layers() -> list[KitLayer]:
    files = BENIGN_FILES
    return [
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
    ]


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_benign_modelkit_unpacks_byte_for_byte_by_tag_and_by_digest(
    registry: LabConfig, commands: dict[str, list[str]], path: str, tmp_path: Path, compression: str
) -> None:
    layers, config = build_modelkit(benign_layers(), compression)
    reference, digest = push(registry, f"benign-{compression}", layers, config)
    host = registry.registry_host
    for index, ref in enumerate((reference, f"{host}/{REPOSITORY}@{digest}")):
        extract = tmp_path / f"out-{index}"
        if path == "storage-initializer" and index:
            extract.mkdir()  # KServe's /mnt/models: an empty directory (a mount point) that stays
        out = unpack(path, commands, ref, extract)
        if path == "storage-initializer":
            assert yaml.safe_load(out) == yaml.safe_load((extract / "Kitfile").read_text())
        else:
            answer = json.loads(out)
            assert answer["status"] == "success" and answer["fetch"] == "http"
            assert answer["reference"] == f"{host}/{REPOSITORY}@{digest}"
            assert set(answer["seconds"]) == {"pull", "layers", "finish"}
        for name, data in BENIGN_FILES.items():
            assert (extract / name).read_bytes() == data
        assert (extract / "data/latest.csv").read_bytes() == BENIGN_FILES["data/test.csv"]
        # The Kitfile is YAML, as kit unpack writes it: the config without digest and diffId.
        kitfile = (extract / "Kitfile").read_text()
        assert not kitfile.lstrip().startswith("{") and "digest" not in kitfile and "diffId" not in kitfile
        expected = json.loads(config)
        for entry in [expected["model"], *expected["datasets"], *expected["docs"], *expected["code"]]:
            del entry["digest"], entry["diffId"]
        assert yaml.safe_load(kitfile) == expected
        nothing_written(tmp_path / "nowhere")
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".unpack-")]


def test_an_oci_layout_on_disk_unpacks_and_refuses_alike(registry: LabConfig, tmp_path: Path) -> None:
    layers, config = build_modelkit(benign_layers(), "gzip")
    reference, digest = push(registry, "layout", layers, config)
    layout = tmp_path / "layout"
    assert fetch_oci_layout(registry.registry_host, REPOSITORY, "layout", layout) == digest
    env = script_environment(extra={"DOCKER_CONFIG": str(tmp_path / "none")})
    answer = json.loads(
        run_unpacker(unpack_arguments(reference, str(tmp_path / "out"), oci_layout=str(layout)), env)
    )
    assert answer["fetch"] == "layout"
    for name, data in BENIGN_FILES.items():
        assert (tmp_path / "out" / name).read_bytes() == data
    blob = layout / "blobs" / "sha256" / sha256(layers[0][0]).removeprefix("sha256:")
    blob.write_bytes(blob.read_bytes() + b"\0")
    with pytest.raises(ScriptFailed, match="has the wrong size"):
        run_unpacker(unpack_arguments(reference, str(tmp_path / "again"), oci_layout=str(layout)), env)
    nothing_written(tmp_path / "again")


def test_a_pax_size_is_read_as_decimal_even_with_leading_zeros(
    registry: LabConfig, commands: dict[str, list[str]], path: str, tmp_path: Path
) -> None:
    files = {"data/ten.bin": b"0123456789", "data/next.txt": b"after the pax member\n"}
    members = [
        Member("data", kind="dir"),
        Member("data/ten.bin", files["data/ten.bin"], pax={"size": "010"}),
        Member("data/next.txt", files["data/next.txt"]),
    ]
    layers, config = build_modelkit([KitLayer("dataset", "data", members)], "none")
    reference, _ = push(registry, "pax-size", layers, config)
    unpack(path, commands, reference, tmp_path / "out")
    for name, data in files.items():
        assert (tmp_path / "out" / name).read_bytes() == data


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
    # One ModelKit, one model: a reader that knows GNU sparse files expands the member, one
    # that does not writes the sparse map. Neither is what the diffId vouches for alone.
    "GNU sparse pax records": (
        [
            Member(
                "model.joblib",
                b"\x00" * 600,
                pax={"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.realsize": "2147483648"},
            )
        ],
        "pax record GNU.sparse.major is not one this unpack understands",
    ),
    "extended attributes": (
        [Member("model.joblib", b"m", pax={"SCHILY.xattr.security.capability": "x"})],
        "pax record SCHILY.xattr.security.capability is not one this unpack understands",
    ),
}


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_member_is_refused_and_nothing_is_written(
    registry: LabConfig,
    commands: dict[str, list[str]],
    path: str,
    tmp_path: Path,
    case: str,
    compression: str,
) -> None:
    members, expected = HOSTILE[case]
    layers, config = build_modelkit(
        [
            KitLayer("model", "model.joblib", [Member("model.joblib", b"model")]),
            KitLayer("dataset", ".", members),
        ]
        if "model.joblib" not in {m.name for m in members}
        else [KitLayer("dataset", ".", members)],
        compression,
    )
    reference, _ = push(registry, f"{case.replace(' ', '-')}-{compression}", layers, config)
    extract = tmp_path / "out" / "model"
    with pytest.raises(ScriptFailed) as failure:
        unpack(path, commands, reference, extract)
    refused(failure, reference, expected)
    nothing_written(extract)


def raw_tar(case: str) -> bytes:
    """Archives no well-behaved writer makes, byte for byte."""
    good = ustar_header("m/", kind=b"5", mode=0o755) + ustar_header("m/a.bin", 3) + b"abc".ljust(512, b"\0")
    second = ustar_header("m/smuggled.bin", 3) + b"xyz".ljust(512, b"\0") + END_OF_ARCHIVE
    return {
        # a second archive rides after the end-of-archive marker, under the same diffId
        "a second archive after the end-of-archive marker": good + END_OF_ARCHIVE + second,
        "two MiB of zeros after the end-of-archive marker": good + END_OF_ARCHIVE + bytes(2 << 20),
        "a truncated archive": good[:-100],
        "no end-of-archive marker": good,
        "a GNU sparse member": good + ustar_header("m/sparse.bin", 0, kind=b"S") + END_OF_ARCHIVE,
        "a header that fails its checksum": good
        + ustar_header("m/b.bin")[:148]
        + b"0000000\0"
        + ustar_header("m/b.bin")[156:]
        + END_OF_ARCHIVE,
        "a pax sparse map": good + pax_member({"GNU.sparse.map": "0,3"}, "m/s.bin", b"abc") + END_OF_ARCHIVE,
    }[case]


RAW_TAR_REFUSALS = {
    "a second archive after the end-of-archive marker": "data follows the end-of-archive marker",
    "two MiB of zeros after the end-of-archive marker": "bytes follow the end-of-archive marker",
    "a truncated archive": "the tar stream ends",
    "no end-of-archive marker": "the tar stream ends without an end-of-archive marker",
    "a GNU sparse member": "member m/sparse.bin has the unsupported tar type 'S'",
    "a header that fails its checksum": "a tar header fails its checksum",
    "a pax sparse map": "pax record GNU.sparse.map is not one this unpack understands",
}


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("case", sorted(RAW_TAR_REFUSALS))
def test_archives_with_more_or_less_than_their_members_are_refused(
    registry: LabConfig,
    commands: dict[str, list[str]],
    path: str,
    tmp_path: Path,
    case: str,
    compression: str,
) -> None:
    layers, config = modelkit_of_tar(raw_tar(case), "model", "m", compression)
    reference, _ = push(registry, f"raw-{case.replace(' ', '-')}-{compression}", layers, config)
    with pytest.raises(ScriptFailed) as failure:
        unpack(path, commands, reference, tmp_path / "out")
    refused(failure, reference, RAW_TAR_REFUSALS[case])
    nothing_written(tmp_path / "out")


GZIP_TAILS = {
    "trailing garbage": (b"garbage!", "trailing data after the last gzip member"),
    "trailing zeros": (bytes(4096), "trailing data after the last gzip member"),
}


@pytest.mark.parametrize("case", sorted(GZIP_TAILS))
def test_gzip_with_trailing_data_is_refused_and_concatenated_members_are_read(
    registry: LabConfig, commands: dict[str, list[str]], path: str, tmp_path: Path, case: str
) -> None:
    import gzip

    tail, expected = GZIP_TAILS[case]
    tar = tar_layer([Member("m", kind="dir"), Member("m/a.bin", b"a" * 3000)])
    blob = gzip.compress(tar, mtime=0) + tail
    config = json.dumps(
        {"manifestVersion": "1.0.0", "model": {"path": "m", "digest": sha256(blob), "diffId": sha256(tar)}}
    ).encode()
    reference, _ = push(
        registry, f"gzip-{case.replace(' ', '-')}", [(blob, media_type("model", "gzip"))], config
    )
    with pytest.raises(ScriptFailed) as failure:
        unpack(path, commands, reference, tmp_path / "out")
    refused(failure, reference, expected)
    nothing_written(tmp_path / "out")

    # Two gzip members, one after the other (RFC 1952): one stream, as kit's reader reads it.
    blob = gzip.compress(tar[:1024], mtime=0) + gzip.compress(tar[1024:], mtime=0)
    config = json.dumps(
        {"manifestVersion": "1.0.0", "model": {"path": "m", "digest": sha256(blob), "diffId": sha256(tar)}}
    ).encode()
    reference, _ = push(
        registry, f"gzip-members-{case.replace(' ', '-')}", [(blob, media_type("model", "gzip"))], config
    )
    unpack(path, commands, reference, tmp_path / "members")
    assert (tmp_path / "members" / "m" / "a.bin").read_bytes() == b"a" * 3000


def test_modes_are_reduced_to_0644_and_0755(
    registry: LabConfig, commands: dict[str, list[str]], path: str, tmp_path: Path
) -> None:
    tar = (
        ustar_header("m/", kind=b"5", mode=0o7777)
        + ustar_header("m/setuid", 1, mode=0o4755)
        + b"x".ljust(512, b"\0")
        + ustar_header("m/setgid", 1, mode=0o2711)
        + b"x".ljust(512, b"\0")
        + ustar_header("m/sticky-writable", 1, mode=0o1666)
        + b"x".ljust(512, b"\0")
        + ustar_header("m/plain", 1, mode=0o600)
        + b"x".ljust(512, b"\0")
        + END_OF_ARCHIVE
    )
    layers, config = modelkit_of_tar(tar, "model", "m", "none")
    reference, _ = push(registry, "modes", layers, config)
    unpack(path, commands, reference, tmp_path / "out")
    modes = {p.name: p.stat().st_mode & 0o7777 for p in (tmp_path / "out" / "m").iterdir()}
    assert modes == {"setuid": 0o755, "setgid": 0o755, "sticky-writable": 0o644, "plain": 0o644}
    assert (tmp_path / "out" / "m").stat().st_mode & 0o7777 == 0o755


def other_digest(config: dict, section: str, field: str) -> str:
    """Replace one digest of the first entry of a section with another; the one written."""
    entries = config[section] if section != "model" else [config["model"]]
    entries[0][field] = sha256(b"not this layer")
    return entries[0][field]


def ghost_entry(config: dict) -> None:
    config["datasets"].append({"path": "ghost", "digest": sha256(b"g"), "diffId": sha256(b"g")})


GOOD_DATA = [Member("data", kind="dir"), Member("data/rows.csv", b"a,b\n")]
# Promises the config breaks: (edit of the config, members of the dataset layer at path "data",
# the refusal for uncompressed layers, the refusal for gzip layers). {layer} is the dataset layer.
CONTRACT: dict[str, tuple[Any, list[Member], str, str]] = {
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
    "absolute entry path": (
        lambda c: c["datasets"][0].update(path="/data"),
        GOOD_DATA,
        "layer {layer} (dataset): its Kitfile path /data is absolute",
        "layer {layer} (dataset): its Kitfile path /data is absolute",
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


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("case", sorted(CONTRACT))
def test_what_the_config_does_not_vouch_for_is_refused(
    registry: LabConfig,
    commands: dict[str, list[str]],
    path: str,
    tmp_path: Path,
    case: str,
    compression: str,
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
    tag = f"contract-{case.replace(' ', '-').replace(chr(39), '')}-{compression}"
    reference, _ = push(registry, tag, layers, config)
    extract = tmp_path / "out" / "model"
    with pytest.raises(ScriptFailed) as failure:
        unpack(path, commands, reference, extract)
    expected = (refusal_gzip if compression == "gzip" else refusal_none).format(
        layer=sha256(layers[1][0]), tar=sha256(layer_blob(members, "none")[0]), other=written.get("other")
    )
    refused(failure, reference, expected)
    nothing_written(extract)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_one_path_in_two_entries_or_two_layers_is_refused(
    registry: LabConfig, commands: dict[str, list[str]], path: str, tmp_path: Path, compression: str
) -> None:
    # Two Kitfile entries on one path: the second layer's member would replace the first's.
    first = KitLayer("dataset", "data.csv", [Member("data.csv", b"checked")])
    second = KitLayer("dataset", "data.csv", [Member("data.csv", b"replaced")])
    layers, config = build_modelkit([first, second], compression)
    reference, _ = push(registry, f"two-entries-{compression}", layers, config)
    with pytest.raises(ScriptFailed) as failure:
        unpack(path, commands, reference, tmp_path / "out")
    refused(failure, reference, "member data.csv appears twice")
    # A later layer (code under the model's directory) writing over an earlier layer's file.
    model = KitLayer("model", "m", [Member("m", kind="dir"), Member("m/model.joblib", b"checked")])
    code = KitLayer("code", "m/model.joblib", [Member("m/model.joblib", b"replaced")])
    layers, config = build_modelkit([model, code], compression)
    reference, _ = push(registry, f"later-layer-{compression}", layers, config)
    with pytest.raises(ScriptFailed) as failure:
        unpack(path, commands, reference, tmp_path / "out")
    refused(failure, reference, "member m/model.joblib appears twice")
    nothing_written(tmp_path / "out")


def test_a_layer_of_no_modelkit_type_is_refused(
    registry: LabConfig, commands: dict[str, list[str]], path: str, tmp_path: Path
) -> None:
    layers, config = build_modelkit([KitLayer("model", "m.bin", [Member("m.bin", b"m")])], "gzip")
    blob, _ = layer_blob([Member("bin/sh", b"x")], "gzip")
    layers.append((blob, "application/vnd.oci.image.layer.v1.tar+gzip"))
    reference, _ = push(registry, "foreign", layers, config)
    with pytest.raises(ScriptFailed) as failure:
        unpack(path, commands, reference, tmp_path / "out")
    refused(failure, reference, f"layer {sha256(blob)} has media type application/vnd.oci.image.layer")
    nothing_written(tmp_path / "out")


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_the_byte_cap_stops_a_gzip_bomb_while_streaming(
    registry: LabConfig, commands: dict[str, list[str]], path: str, tmp_path: Path, compression: str
) -> None:
    bomb = [
        Member("m", kind="dir"),
        Member("m/small.bin", b"s" * 4096),
        Member("m/zeros.bin", bytes(8 << 20)),
    ]
    layers, config = build_modelkit([KitLayer("model", "m", bomb)], compression)
    reference, _ = push(registry, f"bomb-{compression}", layers, config)
    extract = tmp_path / "out" / "model"
    with pytest.raises(ScriptFailed) as failure:
        unpack(path, commands, reference, extract, max_bytes=1 << 20)
    assert failure.value.message == (
        f"refusing to unpack {reference}: layer {sha256(layers[0][0])} (model m): member m/zeros.bin "
        f"({8 << 20} bytes) would take the extracted bytes past the cap of {1 << 20} (--max-bytes)"
    )
    nothing_written(extract)
    unpack(path, commands, reference, extract, max_bytes=9 << 20)
    assert (extract / "m" / "zeros.bin").stat().st_size == 8 << 20


def stored_blob(registry: LabConfig, digest: str) -> Path:
    hexdigest = digest.removeprefix("sha256:")
    return next((registry.data_dir / "registry").rglob(f"blobs/sha256/{hexdigest[:2]}/{hexdigest}/data"))


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_content_the_registry_serves_tampered_is_refused_never_retried(
    registry: LabConfig, commands: dict[str, list[str]], path: str, tmp_path: Path, compression: str
) -> None:
    data = f"tampered-{path}-{compression}".encode() * 400  # a blob of its own
    layers, config = build_modelkit(
        [KitLayer("model", "model.joblib", [Member("model.joblib", data)])], compression
    )
    reference, _ = push(registry, f"tamper-{path}-{compression}", layers, config)
    stored = stored_blob(registry, sha256(layers[0][0]))
    tampered = bytearray(stored.read_bytes())
    tampered[-5 if compression == "gzip" else 600] ^= 0xFF  # same size, different bytes
    stored.write_bytes(bytes(tampered))
    with pytest.raises(ScriptFailed) as failure:
        unpack(path, commands, reference, tmp_path / "out", env={"KIT_RETRY_DELAY": "30"})
    if compression == "gzip":  # gzip's own check sees it first: its CRC no longer matches
        assert "invalid compressed data--crc error" in failure.value.message
    else:
        assert failure.value.message.startswith(
            f"layer of {reference} fails verification: expected {sha256(layers[0][0])}"
        )
    assert "retrying" not in failure.value.output
    nothing_written(tmp_path / "out")


def test_a_config_that_is_not_the_manifests_is_refused(
    registry: LabConfig, commands: dict[str, list[str]], path: str, tmp_path: Path
) -> None:
    layers, config = build_modelkit([KitLayer("model", "m.bin", [Member("m.bin", path.encode())])], "none")
    config = config.replace(b"hand-made", f"swap-{path}".encode())
    reference, _ = push(registry, f"config-swap-{path}", layers, config)
    stored = stored_blob(registry, sha256(config))
    stored.write_bytes(config.replace(b"swap-", b"swaP-"))
    with pytest.raises(ScriptFailed, match=f"config of .* fails verification: expected {sha256(config)}"):
        unpack(path, commands, reference, tmp_path / "out")
    nothing_written(tmp_path / "out")


def test_unknown_reference_and_non_modelkit_are_refused(
    registry: LabConfig, commands: dict[str, list[str]], path: str, tmp_path: Path
) -> None:
    host = registry.registry_host
    push_modelkit_raw(
        host,
        REPOSITORY,
        "image",
        [(tar_layer([Member("bin/sh", b"x")]), "application/vnd.oci.image.layer.v1.tar")],
        config_type="application/vnd.oci.image.config.v1+json",
    )
    with pytest.raises(
        ScriptFailed, match=f"ModelKit {host}/{REPOSITORY}:missing not found in registry {host}"
    ):
        unpack(path, commands, f"{host}/{REPOSITORY}:missing", tmp_path / "out")
    with pytest.raises(
        ScriptFailed, match=r"is not a ModelKit \(config media type 'application/vnd.oci.image.config"
    ):
        unpack(path, commands, f"{host}/{REPOSITORY}:image", tmp_path / "out")
    nothing_written(tmp_path / "out")


# --- caps: manifest, config, layers ------------------------------------------------------------


def test_manifest_config_and_layer_count_are_capped(
    registry: LabConfig, commands: dict[str, list[str]], path: str, tmp_path: Path
) -> None:
    host = registry.registry_host
    layers, config = build_modelkit([KitLayer("model", "m.bin", [Member("m.bin", b"m")])], "none")
    config = json.dumps({**json.loads(config), "padding": "p" * 6000}).encode()
    reference, _ = push(registry, "capped", layers, config)
    with pytest.raises(
        ScriptFailed, match=r"the manifest of .* is larger than the cap of 100 bytes \(--max-manifest-bytes\)"
    ):
        unpack(path, commands, reference, tmp_path / "out", flags="--max-manifest-bytes 100")
    with pytest.raises(
        ScriptFailed, match=r"declares \d+ bytes, more than the cap of 4096 \(--max-config-bytes\)"
    ):
        unpack(path, commands, reference, tmp_path / "out", env={"UNPACK_MAX_CONFIG_BYTES": "4096"})
    # 10,000 layers (one blob, listed again and again): refused by the default cap, at once.
    blob = layers[0][0]
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.kitops.modelkit.config.v1+json",
            "digest": sha256(config),
            "size": len(config),
        },
        "layers": [{"mediaType": layers[0][1], "digest": sha256(blob), "size": len(blob)}] * 10_000,
    }
    import requests

    put = requests.put(
        f"http://{host}/v2/{REPOSITORY}/manifests/many-layers",
        data=json.dumps(manifest).encode(),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        timeout=30,
    )
    assert put.status_code == 201, put.text
    with pytest.raises(ScriptFailed) as failure:
        unpack(path, commands, f"{host}/{REPOSITORY}:many-layers", tmp_path / "out", timeout=20)
    assert (
        "the manifest lists 10000 layers, more than the cap of 1000 (--max-layers)" in failure.value.message
    )
    nothing_written(tmp_path / "out")


def test_a_layer_of_100k_files_extracts(
    registry: LabConfig, commands: dict[str, list[str]], tmp_path: Path
) -> None:
    # Valid input the old bash pass refused once PIDs wrapped (a dd/od fork per member). One
    # path (local): the three run the same program, and 100k file creations cost their time.
    from tests.pipeline_fixtures.modelkits import many_files_tar

    layers, config = modelkit_of_tar(many_files_tar(100_000), "model", "m", "none")
    reference, _ = push(registry, "many-files", layers, config)
    unpack("local", commands, reference, tmp_path / "out", timeout=300)
    names = sorted(entry.name for entry in os.scandir(tmp_path / "out" / "m"))
    assert names == [f"f{index:06d}" for index in range(100_000)]


BAD_REFERENCES = [
    ("iris:v1", "'iris:v1' is not an OCI reference"),
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
def test_bad_references_are_refused_before_any_request(tmp_path: Path, reference: str, expected: str) -> None:
    with pytest.raises(ScriptFailed) as failure:
        run_unpacker(unpack_arguments(reference, str(tmp_path / "out")), script_environment())
    assert expected in failure.value.message
    assert failure.value.returncode != 0
    assert not (tmp_path / "out").exists()


def test_storage_initializer_fails_closed_on_an_option_or_an_unknown_flag(
    commands: dict[str, list[str]], tmp_path: Path
) -> None:
    env = script_environment(extra={"KIT_UNPACK_FLAGS": "--plain-http"})
    for hostile in ("kit://--help", "kit://-d", "kit://127.0.0.1:5001/lab/iris:v1;id", "kit://$(id)"):
        with pytest.raises(ScriptFailed) as failure:
            run([*commands["storage-initializer"], hostile, str(tmp_path / "dest")], env, 30)
        assert (
            failure.value.message.startswith("storage URI kit:// ") and "refusing it" in failure.value.message
        )
        assert not (tmp_path / "dest").exists()
    env["KIT_UNPACK_FLAGS"] = "--plain-http --filter=model"
    with pytest.raises(
        ScriptFailed, match="KIT_UNPACK_FLAGS: --filter=model is not a flag this storage initializer knows"
    ):
        run(
            [*commands["storage-initializer"], "kit://127.0.0.1:5001/lab/iris:v1", str(tmp_path / "dest")],
            env,
            30,
        )


def test_a_non_empty_extract_path_is_never_overwritten(tmp_path: Path) -> None:
    extract = tmp_path / "out"
    extract.mkdir()
    (extract / "keep.txt").write_text("mine")
    with pytest.raises(ScriptFailed, match="exists and is not an empty directory"):
        run_unpacker(unpack_arguments("127.0.0.1:5001/lab/iris:v1", str(extract)), script_environment())
    assert (extract / "keep.txt").read_text() == "mine"


def test_a_registry_that_does_not_answer_is_retried_then_named(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"  # nothing listens there: a transient failure
    env = script_environment(
        extra={"KIT_RETRIES": "2", "KIT_RETRY_DELAY": "0", "DOCKER_CONFIG": str(tmp_path)}
    )
    arguments = unpack_arguments(f"{host}/lab/iris:v1", str(tmp_path / "out"), plain_http="true")
    with pytest.raises(ScriptFailed) as failure:
        run_unpacker(arguments, env)
    assert failure.value.message.startswith(
        f"fetching the manifest of {host}/lab/iris:v1 failed: GET http://{host}/v2/lab/iris/manifests/v1"
    )
    assert failure.value.message.endswith("(after 2 attempts)")
    assert "(attempt 1/2), retrying in 0s" in failure.value.output
    assert not (tmp_path / "out").exists()


def test_tar_module_agrees_the_raw_headers_are_tar(tmp_path: Path) -> None:
    # The raw builders make real tar headers: Python's own reader lists the benign one.
    import io

    tar = raw_tar("no end-of-archive marker") + END_OF_ARCHIVE
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        assert archive.getnames() == ["m", "m/a.bin"]


def test_tls_against_a_plain_http_registry_names_the_flag(registry: LabConfig, tmp_path: Path) -> None:
    # What the doctor's kserve-not-ready check reads in the storage initializer's log.
    env = script_environment(extra={"KIT_RETRY_DELAY": "0", "DOCKER_CONFIG": str(tmp_path)})
    arguments = unpack_arguments(f"{registry.registry_host}/{REPOSITORY}:v1", str(tmp_path / "out"))
    with pytest.raises(ScriptFailed) as failure:
        run_unpacker(arguments, env)
    assert "pass --plain-http" in failure.value.message
    assert "retrying" not in failure.value.output
    assert not (tmp_path / "out").exists()
