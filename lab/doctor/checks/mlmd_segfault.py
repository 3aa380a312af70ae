"""mlmd-segfault: metadata-grpc-deployment crash-loops with exit code 139 (SIGSEGV).

The ``ml_metadata_store_server`` image is amd64-only and newer builds crash on some
kernels/CPUs; on amd64 an older image tag is the known workaround, on arm64 there is no
upstream image that works. The kind provisioning pins the tag through
``config.versions.mlmd_pin``; the fix records that setting in ``$LAB_HOME/lab.toml`` (so the
next ``lab up`` applies it) and renders the same pin as a kustomize ``images:`` entry under
``$LAB_HOME/kfp-patches`` for the user to read or reuse.
"""

from __future__ import annotations

from pathlib import Path

from lab.atomic_files import atomic_write
from lab.components import KFP
from lab.config import LabConfig, home_settings_file, save_setting
from lab.doctor.checks._found import component_namespace
from lab.doctor.checks._provision import up_command
from lab.doctor.evidence import Evidence, EvidenceUnavailable
from lab.doctor.model import Check, FixContext, FixOutcome, Result
from lab.doctor.workloads import containers, node_arch, pods_named

DEPLOYMENT = "metadata-grpc-deployment"
SEGFAULT = 139  # 128 + SIGSEGV
AMD64 = ("amd64", "x86_64")
OLDER_TAG = "1.12.0"  # the next fallback upstream users report working


def patch_path(config: LabConfig) -> Path:
    """Where the kustomize image pin is written."""
    return config.home / "kfp-patches" / "mlmd-image.yaml"


def render_patch(config: LabConfig, up: str) -> str:
    """A kustomize ``images:`` entry pinning the MLMD server to the fallback tag; ``up`` applies it."""
    versions = config.versions
    tag = versions.mlmd_fallback_tag
    return (
        "# Written by `lab doctor --fix mlmd-segfault`: metadata-grpc-deployment exited with code 139\n"
        f"# (SIGSEGV) running {versions.mlmd_image}:{versions.mlmd_pin or versions.mlmd_tag}.\n"
        "# The older server image runs where the newer one crashes. Apply with:\n"
        f"#   LAB_MLMD_PIN={tag} {up}\n"
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "images:\n"
        f"- name: {versions.mlmd_image}\n"
        f'  newTag: "{tag}"\n'
    )


def _tag(image: str) -> str:
    last = image.split("@")[0].split("/")[-1]
    return last.rsplit(":", 1)[1] if ":" in last else ""


def detect(evidence: Evidence) -> Result:
    """Exit code 139 in the current or last state of the MLMD server container, and the node's arch."""
    config = evidence.config
    versions = config.versions
    namespace = component_namespace(evidence, KFP)
    pods = pods_named(evidence.pods(), namespace, DEPLOYMENT + "-")
    crashed = [cs for pod in pods for cs in containers(pod) if SEGFAULT in (cs.last_exit, cs.terminated_exit)]
    if not crashed:
        return Result.ok(
            f"no {DEPLOYMENT} container exited with {SEGFAULT}" if pods else f"no {DEPLOYMENT} pod"
        )
    lines = [cs.line() for cs in crashed]
    nodes = {n.metadata.name: n for n in evidence.nodes()}
    node = nodes.get(crashed[0].node) or next(iter(nodes.values()), None)
    arch = node_arch(node) if node is not None else evidence.arch()
    lines.append(f"node {node.metadata.name if node is not None else '?'} architecture: {arch}")
    try:
        previous = evidence.pod_log(namespace, crashed[0].pod, crashed[0].name, previous=True, lines=10)
        lines.append("log of the crashed run ends with:")
        lines.extend(f"| {line}" for line in previous)
    except EvidenceUnavailable as exc:
        lines.append(f"(log of the crashed run unavailable: {exc.detail})")
    if arch not in AMD64:
        return Result.fail(
            f"{DEPLOYMENT} segfaults: {versions.mlmd_image} is published for linux/amd64 only, "
            f"and this node is {arch}",
            lines,
            [
                "# unsupported upstream: no ml_metadata_store_server image runs on arm64.",
                "# Run the kind mode on an amd64 host, or use the local mode here:",
                "lab up --mode local",
            ],
        )
    running = _tag(crashed[0].image)
    fallback = versions.mlmd_fallback_tag
    if running != versions.mlmd_tag and running in (fallback, versions.mlmd_pin):
        lines.append(f"the crashing container already runs the pinned tag {running}")
        return Result.fail(
            f"{DEPLOYMENT} segfaults even with ml_metadata_store_server:{running}",
            lines,
            [
                "# try the next older release:",
                f"LAB_MLMD_FALLBACK_TAG={OLDER_TAG} lab doctor --fix mlmd-segfault",
                f"LAB_MLMD_PIN={OLDER_TAG} {up_command(config, evidence.mode)}",
            ],
            fixable=True,
        )
    up = up_command(config, evidence.mode)
    patch = patch_path(config)
    if patch.is_file():
        lines.append(f"image pin already rendered at {patch}, not applied to the cluster yet")
    return Result.fail(
        f"{DEPLOYMENT} segfaults (exit {SEGFAULT}) on {arch}: pin ml_metadata_store_server:{fallback}",
        lines,
        [
            f"lab doctor --fix mlmd-segfault  # records the pin in {home_settings_file(config.home)}",
            f"{up}  # applies it",
            f"LAB_MLMD_PIN={fallback} {up}  # instead: pin it for one run only",
        ],
        fixable=True,
    )


def fix(ctx: FixContext) -> FixOutcome:
    """Record the pin in ``$LAB_HOME/lab.toml`` and render it as a kustomize patch; ``lab up`` applies it."""
    path = patch_path(ctx.config)
    tag = ctx.config.versions.mlmd_fallback_tag
    settings = save_setting(ctx.config.home, "versions", "mlmd_pin", tag)
    up = up_command(ctx.config, ctx.mode)
    atomic_write(path, render_patch(ctx.config, up))
    return FixOutcome(
        True,
        f"pinned ml_metadata_store_server:{tag} in {settings} (patch: {path}); apply: {up} "
        f"(or LAB_MLMD_PIN={tag} {up})",
    )


CHECK = Check(
    id="mlmd-segfault",
    title="KFP metadata server does not segfault",
    group="kfp",
    inspects="metadata-grpc-deployment container last state exit code; node architecture",
    detect=detect,
    modes=frozenset({"kind", "cluster"}),
    fix=fix,
    fix_description="pin the older ml_metadata_store_server in $LAB_HOME/lab.toml (and render the "
    "kustomize patch under $LAB_HOME/kfp-patches)",
)
