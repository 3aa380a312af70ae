"""ModelKits built by hand, byte for byte, the way kit lays them out (and the ways it never would).

A ModelKit's config is its Kitfile as JSON; kit records in each layer entry the digest of
the layer blob and the diffId (sha256 of the uncompressed tar). :func:`build_modelkit` does
the same for the given layers; ``edit`` then lets a test break exactly one promise.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.pipeline_fixtures.chain_fixtures import Member, sha256, tar_layer

COMPRESSIONS = ("none", "gzip")
# Kitfile section of each layer kind (modelpart entries live under model.parts).
SECTIONS = {"code": "code", "dataset": "datasets", "docs": "docs"}


def media_type(kind: str, compression: str) -> str:
    """kit's layer media type for a kind and compression."""
    return f"application/vnd.kitops.modelkit.{kind}.v1.tar" + ("+gzip" if compression == "gzip" else "")


@dataclass
class KitLayer:
    """One layer: its kind, the Kitfile path that vouches for it, its members."""

    kind: str
    path: str
    members: list[Member]


def layer_blob(members: list[Member], compression: str) -> tuple[bytes, bytes]:
    """(blob, uncompressed tar) of a layer."""
    tar = tar_layer(members)
    return (gzip.compress(tar, mtime=0) if compression == "gzip" else tar), tar


def build_modelkit(
    layers: list[KitLayer],
    compression: str,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[list[tuple[bytes, str]], bytes]:
    """The (blob, media type) layers and the config bytes of a ModelKit, config edited last."""
    config: dict[str, Any] = {"manifestVersion": "1.0.0", "package": {"name": "hand-made"}}
    blobs = []
    for layer in layers:
        blob, tar = layer_blob(layer.members, compression)
        blobs.append((blob, media_type(layer.kind, compression)))
        entry = {"path": layer.path, "digest": sha256(blob), "diffId": sha256(tar)}
        if layer.kind == "model":
            config["model"] = {**config.get("model", {}), "name": "m", **entry}
        elif layer.kind == "modelpart":
            config.setdefault("model", {}).setdefault("parts", []).append(entry)
        else:
            config.setdefault(SECTIONS[layer.kind], []).append(entry)
    if edit is not None:
        edit(config)
    return blobs, json.dumps(config).encode()


# --- raw tar bytes no well-behaved writer makes -----------------------------------------------


def ustar_header(name: str, size: int = 0, kind: bytes = b"0", mode: int = 0o644, link: str = "") -> bytes:
    """One ustar header block, checksum and all, exactly as given."""
    header = bytearray(512)
    header[0:100] = name.encode().ljust(100, b"\0")[:100]
    header[100:108] = f"{mode:07o}\0".encode()
    header[108:116] = b"0000000\0"
    header[116:124] = b"0000000\0"
    header[124:136] = f"{size:011o}\0".encode()
    header[136:148] = b"00000000000\0"
    header[156:157] = kind
    header[157:257] = link.encode().ljust(100, b"\0")[:100]
    header[257:263] = b"ustar\0"
    header[263:265] = b"00"
    header[148:156] = b" " * 8
    header[148:156] = f"{sum(header):06o}\0 ".encode()
    return bytes(header)


def pax_member(records: dict[str, str], name: str, data: bytes) -> bytes:
    """A pax extended header with these records, then a file member (data padded)."""
    body = b""
    for key, value in records.items():
        record = f" {key}={value}\n".encode()
        length = len(record) + 1
        while len(str(length)) + len(record) != length:
            length = len(str(length)) + len(record)
        body += str(length).encode() + record
    return (
        ustar_header("PaxHeaders/" + name, len(body), b"x")
        + body.ljust(-(-len(body) // 512) * 512, b"\0")
        + ustar_header(name, len(data))
        + data.ljust(-(-len(data) // 512) * 512, b"\0")
    )


END_OF_ARCHIVE = bytes(1024)


def many_files_tar(count: int, directory: str = "m") -> bytes:
    """A tar of ``count`` empty files under ``directory`` (the layer a pid wrap broke in bash)."""
    # One header made, the others patched (name and checksum): fast enough for 100k members.
    template = ustar_header("")
    unsummed = template[:148] + b" " * 8 + template[156:]
    base = sum(unsummed)
    parts = [ustar_header(directory + "/", kind=b"5", mode=0o755)]
    for index in range(count):
        name = f"{directory}/f{index:06d}".encode()
        checksum = f"{base + sum(name):06o}\0 ".encode()
        parts.append(name.ljust(100, b"\0") + template[100:148] + checksum + template[156:])
    return b"".join(parts) + END_OF_ARCHIVE


def modelkit_of_tar(
    tar: bytes, kind: str, path: str, compression: str
) -> tuple[list[tuple[bytes, str]], bytes]:
    """A one-layer ModelKit whose layer is exactly this tar (gzip'ed or not)."""
    blob = gzip.compress(tar, mtime=0) if compression == "gzip" else tar
    entry = {"path": path, "digest": sha256(blob), "diffId": sha256(tar)}
    config: dict[str, Any] = {"manifestVersion": "1.0.0", "package": {"name": "raw"}}
    if kind == "model":
        config["model"] = {"name": "m", **entry}
    else:
        config[SECTIONS[kind]] = [entry]
    return [(blob, media_type(kind, compression))], json.dumps(config).encode()
