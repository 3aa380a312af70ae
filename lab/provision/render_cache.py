"""Rendered overlays kept under ``$LAB_HOME/cache/render``, so an unchanged overlay is not built again.

What ``kustomize build`` prints is a pure function of the files it reads and of the kustomize
that reads them; a second ``lab up`` renders the same trees, and the build and the parsing of
its YAML were most of its time. Each overlay's objects are kept beside the fingerprint of
everything that decides them (:func:`fingerprint`) and used only when the fingerprint is the
same again. Nothing about the cluster is ever kept here.

The fingerprint covers more than kustomize reads, never less: the content of every file of the
workspace's manifest tree (the lab's overlays, where the config's values are written, and the
staged upstream mirror), the kustomize binary and the YAML parser. An overlay whose
kustomizations reach beyond that tree (a remote reference, a path leading out of it) cannot be
fingerprinted from files here, so it is never cached: it is built every time, as before.

An entry that cannot be read, or whose checksum does not match, is a miss and is written anew.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab.atomic_files import atomic_write
from lab.config import LabConfig
from lab.kube_objects import Manifest

# Bump when what an entry holds changes meaning (the key and the payload's shape).
CACHE_FORMAT = 1
_KUSTOMIZATION_NAMES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})
# A value kustomize would fetch instead of reading from disk (its repospec and remote-file
# forms: any URL scheme, git@host:, git::, gh:, a bare code-hosting host, ?ref= / ?version=).
_REMOTE_VALUE = re.compile(
    r"""^["']?(?:[a-z][a-z0-9+.-]*://|git@|git::|gh:|(?:github\.com|gitlab\.com|bitbucket\.org)[/:])"""
    r"""|\?(?:ref|version|submodules|timeout)=""",
    re.IGNORECASE,
)
# YAML starts a comment with a `#` at the start of a line or after white space.
_COMMENT = re.compile(r"(?:^|\s)#")
# The value of a list item or of a `key: value` line in a kustomization (comments removed).
_VALUE = re.compile(r"^\s*(?:-\s+)?(?:[\w.-]+:\s+)?(?P<value>\S.*?)\s*$")


def render_cache_dir(config: LabConfig) -> Path:
    """Where rendered overlays are kept: ``$LAB_HOME/cache/render``."""
    return config.home / "cache" / "render"


def _leaves_tree(value: str, kustomization: Path, tree: Path) -> bool:
    """Whether a ``..`` path in ``kustomization`` points outside ``tree``."""
    if ".." not in value.split("/"):
        return False
    target = os.path.normpath(kustomization.parent / value.strip("\"'"))
    return not (target == str(tree) or target.startswith(f"{tree}{os.sep}"))


def reaches_outside(text: str, kustomization: Path, tree: Path) -> bool:
    """Whether a kustomization names something outside ``tree``: a remote reference or a ``..`` path out.

    Judged per line on the text without comments; a false alarm only costs a cache miss.
    """
    for line in text.splitlines():
        match = _VALUE.match(_COMMENT.split(line, maxsplit=1)[0])
        if match is None:
            continue
        value = match["value"]
        if _REMOTE_VALUE.search(value) or _leaves_tree(value, kustomization, tree):
            return True
    return False


def _tool_identity(argv: Sequence[str]) -> list[Any]:
    # A replaced binary has a new inode or mtime: installs write a new file and rename it
    # (lab.tools), never rewrite one in place, so its stat names it without hashing megabytes.
    binary = Path(argv[0]).resolve()
    stat = binary.stat()
    return [str(binary), stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_dev, list(argv[1:])]


def fingerprint(argv: Sequence[str], overlay: Path, tree: Path, parser: Sequence[str]) -> str | None:
    """The key of ``overlay``'s build with ``argv`` over ``tree``; None when it cannot be cached.

    ``parser`` names what turns kustomize's output into objects (YAML library, loader).

    Every file's content is hashed, every time: the staged tree is a few hundred files and
    about 20 MB, 20-30 ms, and a content hash cannot be fooled by a same-size rewrite within
    one timestamp tick the way a (size, mtime) shortcut can. Paths are taken relative to
    ``tree``, so a dry run's scratch workspace with the same files has the same key.
    """
    tree = Path(os.path.normpath(tree))
    digest = hashlib.sha256()
    try:
        for directory, subdirectories, files in os.walk(tree):
            if any(os.path.islink(os.path.join(directory, d)) for d in subdirectories):
                return None  # a linked directory may lead anywhere (or around in a circle)
            subdirectories.sort()
            for name in sorted(files):
                path = Path(directory) / name
                content = path.read_bytes()
                text = content.decode(errors="replace") if name in _KUSTOMIZATION_NAMES else ""
                if text and reaches_outside(text, path, tree):
                    return None
                relative = path.relative_to(tree).as_posix()
                digest.update(f"{relative}\0{len(content)}\0".encode())
                digest.update(hashlib.sha256(content).digest())
        parts = {
            "format": CACHE_FORMAT,
            "kustomize": _tool_identity(argv),
            "overlay": Path(os.path.normpath(overlay)).relative_to(tree).as_posix(),
            "parser": list(parser),
            "files": digest.hexdigest(),
        }
    except (OSError, ValueError):
        return None  # unreadable, or the overlay is not inside the tree: build it as it is
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _entry(config: LabConfig, overlay_name: str) -> Path:
    # One entry per overlay: a changed input replaces it, so the cache never grows.
    return render_cache_dir(config) / f"{overlay_name}.json"


def cached_render(config: LabConfig, overlay_name: str, key: str) -> list[Manifest] | None:
    """The objects kept for ``key``; None on a miss, or when the entry is unreadable or corrupt."""
    try:
        header, _, payload = _entry(config, overlay_name).read_bytes().partition(b"\n")
        meta = json.loads(header)
        if meta.get("key") != key or meta.get("sha256") != hashlib.sha256(payload).hexdigest():
            return None
        objects = json.loads(payload)
    except (OSError, ValueError, AttributeError):
        return None
    return objects if isinstance(objects, list) else None


def _json_exact(value: Any) -> bool:
    """Whether JSON gives ``value`` back equal (str keys, no dates or bytes from YAML, finite floats)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_exact(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_json_exact(item) for item in value)
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    return value is None or isinstance(value, (str, int, bool))


def keep_render(config: LabConfig, overlay_name: str, key: str, objects: list[Manifest]) -> None:
    """Keep ``objects`` under ``key`` (atomically); objects JSON cannot return equal are not kept."""
    if not _json_exact(objects):
        return
    payload = json.dumps(objects, separators=(",", ":"))
    header = json.dumps({"key": key, "sha256": hashlib.sha256(payload.encode()).hexdigest()})
    try:
        atomic_write(_entry(config, overlay_name), f"{header}\n{payload}")
    except OSError:
        pass  # a cache that cannot be written only costs the next run a build
