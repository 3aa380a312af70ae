"""inotify-limits: host inotify limits too low for the many pods of a kind cluster."""

from __future__ import annotations

from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, FixContext, FixOutcome, Result

# kind's known-issues page: "Pod errors due to too many open files".
RECOMMENDED = {"fs.inotify.max_user_watches": 524288, "fs.inotify.max_user_instances": 512}


def _commands(names: list[str]) -> list[str]:
    return [f"sudo sysctl -w {name}={RECOMMENDED[name]}" for name in names]


def detect(evidence: Evidence) -> Result:
    """Read both sysctls and compare them with kind's recommendation."""
    facts = [evidence.sysctl(name) for name in RECOMMENDED]
    lines = [
        f"{f.name} = {f.value if f.value is not None else 'unreadable'} (from {f.source}; "
        f"kind needs >= {RECOMMENDED[f.name]})"
        for f in facts
    ]
    low = [f.name for f in facts if f.value is not None and f.value < RECOMMENDED[f.name]]
    if evidence.mode == "local":
        return Result.skipped("only kind clusters need raised inotify limits", lines)
    if low:
        persist = "".join(f"{name} = {RECOMMENDED[name]}\\n" for name in RECOMMENDED)
        return Result.fail(
            f"{' and '.join(low)} below what kind needs: nodes fail with 'too many open files'",
            lines,
            [
                *_commands(low),
                "# keep them across reboots:",
                f"printf '{persist}' | sudo tee /etc/sysctl.d/99-kind-inotify.conf",
            ],
            fixable=True,
        )
    if any(f.value is None for f in facts):
        return Result.warn("inotify limits could not be read", lines, _commands(list(RECOMMENDED)))
    return Result.ok("inotify limits are high enough for kind", lines)


def fix(ctx: FixContext) -> FixOutcome:
    """Raise (never lower) the limits by writing ``/proc/sys``; needs root."""
    done, failed = [], []
    for name, want in RECOMMENDED.items():
        fact = ctx.evidence.sysctl(name)
        if fact.value is not None and fact.value >= want:
            continue
        path = ctx.evidence.proc_root / "sys" / name.replace(".", "/")
        try:
            path.write_text(f"{want}\n")
            done.append(f"{name}={want}")
        except OSError as exc:
            failed.append(f"{name}: {exc.strerror or exc}")
    if failed:
        return FixOutcome(
            False,
            f"could not write {'; '.join(failed)} (root needed); run: "
            + " && ".join(_commands(list(RECOMMENDED))),
        )
    return FixOutcome(True, f"set {', '.join(done) or 'nothing (already high enough)'} until the next reboot")


CHECK = Check(
    id="inotify-limits",
    title="inotify limits for kind",
    group="host",
    inspects="/proc/sys/fs/inotify/max_user_watches and max_user_instances",
    detect=detect,
    fix=fix,
    fix_description="raise fs.inotify.max_user_watches/max_user_instances with sysctl (root, until reboot)",
)
