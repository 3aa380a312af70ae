"""``lab manifests pull``: fetch the pinned upstream manifest trees into a mirror folder.

Each upstream repository is cloned with git at its pinned tag (shallow, blobs on demand, only
the kept trees checked out), its commit compared with the pinned one, and the kept trees copied
into ``<folder>/<tree>`` (:mod:`lab.upstream_manifests` declares both). Everything is fetched
into a staging folder first and moved into place only when every repository checked out; a
failure or Ctrl-C leaves the mirror as it was. A folder whose trees are complete and unchanged
since they were pulled is not fetched again.

git reaches ``https://github.com/<owner>/<repo>``; behind a proxy or air-gapped, point it at a
mirror with ``git config --global url.<mirror>/.insteadOf https://github.com/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path, PurePosixPath

from lab.atomic_files import atomic_write
from lab.config import LabConfig
from lab.errors import LabError
from lab.progress import Progress
from lab.upstream_manifests import Upstream, pulled_manifests_dir, upstreams

# What each pulled folder held when it was verified (commit, trees, content digest).
RECORD = ".lab-pulled.json"
PROVENANCE = "PROVENANCE.txt"
GIT_TIMEOUT = 600.0


def pull_manifests(config: LabConfig, target: Path | None, progress: Progress) -> list[str]:
    """Fetch every pinned tree missing or changed in ``target``; returns the folders fetched.

    Raises:
        LabError: git failed, a tag is not at its pinned commit, or a tree is missing or
            unsafe (a link out of it). ``target`` is left as it was.
    """
    target = (target or pulled_manifests_dir(config)).expanduser().resolve()
    wanted = list(upstreams(config).values())
    record = _read_record(target)
    todo = [u for u in wanted if not _is_complete(target, u, record.get(u.folder))]
    if not todo:
        return []
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pull-", dir=target))
    try:
        for upstream in todo:
            with progress.step(f"manifests {upstream.folder}", "git clone", "a first pull takes a minute"):
                _fetch(upstream, staging)
        for upstream in todo:
            _move_into_place(staging / upstream.folder, target / upstream.folder)
            record[upstream.folder] = _entry(target, upstream)
        atomic_write(target / RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")
        atomic_write(target / PROVENANCE, _provenance(wanted))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(target, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return [u.folder for u in todo]


def _read_record(target: Path) -> dict[str, dict[str, object]]:
    try:
        recorded = json.loads((target / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def _entry(target: Path, upstream: Upstream) -> dict[str, object]:
    return {
        "repo": upstream.repo,
        "tag": upstream.ref,
        "commit": upstream.commit,
        "trees": list(upstream.mirrored),
        "digest": _digest(target / upstream.folder, upstream.mirrored),
    }


def _is_complete(target: Path, upstream: Upstream, entry: dict[str, object] | None) -> bool:
    if (
        entry is None
        or entry.get("commit") != upstream.commit
        or entry.get("trees") != list(upstream.mirrored)
    ):
        return False
    folder = target / upstream.folder
    if not all((folder / tree).is_dir() for tree in upstream.mirrored):
        return False
    return entry.get("digest") == _digest(folder, upstream.mirrored)


def _digest(folder: Path, trees: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for tree in trees:
        for path in sorted((folder / tree).rglob("*")):
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                digest.update(f"{relative} -> {os.readlink(path)}\n".encode())
            elif path.is_file():
                digest.update(f"{relative}\n".encode() + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _git(argv: list[str], what: str, hint: str = "") -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # a missing repository must not ask for a password
    try:
        proc = subprocess.run(
            ["git", *argv], capture_output=True, text=True, env=env, timeout=GIT_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise LabError("git not found; install git (lab manifests pull fetches with it)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{what}: git did not finish in {GIT_TIMEOUT:.0f}s{hint}") from None
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"]
        raise LabError(f"{what}: {lines[-1]}{hint}", lines[:-1][-10:])
    return proc.stdout.strip()


def _fetch(upstream: Upstream, staging: Path) -> None:
    """Clone ``upstream`` at its tag into ``staging``, check the commit, copy its trees."""
    for tree in upstream.mirrored:
        path = PurePosixPath(tree)
        if path.is_absolute() or ".." in path.parts:
            raise LabError(
                f"{upstream.repo}: tree {tree!r} leaves the repository; fix lab/upstream_manifests.py"
            )
    url = f"https://github.com/{upstream.repo}"
    work = staging / f".clone-{upstream.folder}"
    hint = (
        f" (without access to {url}, point git at a mirror: "
        "git config --global url.<mirror>/.insteadOf https://github.com/)"
    )
    clone = ["clone", "--quiet", "--depth", "1", "--branch", upstream.ref, "--filter=blob:none", "--sparse"]
    _git([*clone, url, str(work)], f"git clone {url} at {upstream.ref} failed", hint)
    _git(["-C", str(work), "sparse-checkout", "set", "--", *upstream.mirrored], f"sparse checkout of {url}")
    commit = _git(["-C", str(work), "rev-parse", "HEAD"], f"reading the commit of {url} {upstream.ref}")
    if commit != upstream.commit:
        raise LabError(
            f"{upstream.repo} tag {upstream.ref} is commit {commit}, but the lab pins {upstream.commit} "
            "(lab/config.py Versions): the tag moved upstream or the git mirror serves another "
            "history; nothing was written"
        )
    for tree in upstream.mirrored:
        source = work / tree
        if not source.is_dir() or source.is_symlink():
            raise LabError(f"{upstream.repo} at {upstream.ref} ({commit}) has no folder {tree}")
        _copy_tree(source, staging / upstream.folder / tree, f"{upstream.repo}@{upstream.ref}:{tree}")
    shutil.rmtree(work)


def _copy_tree(source: Path, destination: Path, label: str) -> None:
    """Copy files and in-tree links; refuse a link that leads out of the tree."""
    root = source.resolve()
    for folder, dirs, files in os.walk(source):
        here = Path(folder)
        (destination / here.relative_to(source)).mkdir(parents=True, exist_ok=True)
        for name in [*dirs, *files]:
            path = here / name
            copy = destination / path.relative_to(source)
            if path.is_symlink():
                link = os.readlink(path)
                if os.path.isabs(link) or not path.resolve().is_relative_to(root):
                    where = path.relative_to(source).as_posix()
                    raise LabError(f"{label}: {where} links to {link}, outside the tree; refusing to copy it")
                copy.symlink_to(link)
            elif name in files and path.is_file():
                shutil.copy2(path, copy)
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()]


def _move_into_place(fresh: Path, final: Path) -> None:
    old = None
    if final.exists() or final.is_symlink():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(old)
    fresh.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _provenance(wanted: list[Upstream]) -> str:
    return "".join(f"{u.folder}: {u.commit} {tree}\n" for u in wanted for tree in u.mirrored)
