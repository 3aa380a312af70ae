"""image-not-found: a pinned image tag/digest that is not published (e.g. a moved `latest`)."""

from __future__ import annotations

from lab.doctor.evidence import Evidence
from lab.doctor.model import Check, Result
from lab.doctor.pulls import pull_failures


def _variable_for(image: str, evidence: Evidence) -> str:
    # The one image the lab pins through a variable: the push step's kitops-kubeflow.
    pinned = evidence.config.versions.kitops_kubeflow_image
    if image.split("@")[0].rsplit(":", 1)[0] == pinned.split("@")[0].rsplit(":", 1)[0]:
        return "LAB_KITOPS_KUBEFLOW_IMAGE"
    return ""


def detect(evidence: Evidence) -> Result:
    """Pods whose pull fails with ``not found``/``manifest unknown``; a KFP run then stays Running."""
    missing = [f for f in pull_failures(evidence) if f.cause == "not-found"]
    if not missing:
        return Result.ok("every image being pulled exists")
    lines: list[str] = []
    for failure in missing[:5]:
        lines.extend(failure.lines())
    image = missing[0].image
    repository = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image.split("@")[0]
    remedy = [
        "# pin a published tag or, better, a digest; list what is published:",
        f"skopeo list-tags docker://{repository}  # or: crane ls {repository}",
    ]
    variable = _variable_for(image, evidence)
    if variable:
        remedy.append(f"export {variable}={repository}@sha256:<digest>  # then re-run the pipeline")
    else:
        remedy.append(f"# change the image reference {image} where it is set, then re-apply or re-run")
    images = sorted({f.image for f in missing})
    return Result.fail(f"image(s) not published: {', '.join(images)}", lines, remedy)


CHECK = Check(
    id="image-not-found",
    title="images exist at their pinned tags",
    group="pipeline",
    inspects="pull-failure events (`not found`, `manifest unknown`) on pods incl. KFP run task pods",
    detect=detect,
    modes=frozenset({"kind", "cluster"}),
)
