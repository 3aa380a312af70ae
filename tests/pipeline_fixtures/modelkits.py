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
