"""Every container image the lab itself names, with its digest or why none is recorded.

Tags move (the KitOps images publish only moving tags; official images are rebuilt under the
same tag), so the matrix pins ``name:tag@sha256:...`` wherever a cited source shows that digest
beside that exact tag. No registry answers from where this lab was written, so a digest
nobody published next to the tag is not guessed: the image keeps its tag and
:data:`DIGEST_NOT_RECORDED` says why, which ``lab tools list`` and the doctor's bundle show.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.config import Versions

# Versions fields (or, for the metadata server's fallback, the field pair) naming an image.
IMAGE_SETTINGS = (
    "kind_node_image",
    "registry_image",
    "kitops_kubeflow_image",
    "python_image",
    "mlmd_fallback",
)

_NO_REGISTRY = "no registry answers here and no source shows a digest beside this tag"
DIGEST_NOT_RECORDED = {
    "kitops_kubeflow_image": f"{_NO_REGISTRY}; ghcr.io/kitops-ml publishes moving tags",
    "mlmd_fallback": f"{_NO_REGISTRY} (gcr.io/tfx-oss-public)",
}


@dataclass(frozen=True)
class ImagePin:
    """One image of the matrix: its setting, tag and digest (or the reason it has none)."""

    setting: str
    reference: str

    @property
    def name_tag(self) -> str:
        """``name:tag`` without the digest."""
        return self.reference.split("@", 1)[0]

    @property
    def digest(self) -> str:
        """``sha256:...``, or "" when the reference is a tag only."""
        return self.reference.split("@", 1)[1] if "@" in self.reference else ""

    def digest_line(self) -> str:
        """``digest: sha256:...`` or ``digest: not recorded (reason)``."""
        if self.digest:
            return f"digest: {self.digest}"
        return f"digest: not recorded ({DIGEST_NOT_RECORDED.get(self.setting, 'no reason given')})"

    def as_dict(self) -> dict[str, str]:
        """JSON form."""
        return {"setting": self.setting, "image": self.name_tag, "digest": self.digest or self.digest_line()}


def image_pins(versions: Versions) -> list[ImagePin]:
    """Every image the lab names, in :data:`IMAGE_SETTINGS` order."""
    references = {name: getattr(versions, name) for name in IMAGE_SETTINGS if name != "mlmd_fallback"}
    references["mlmd_fallback"] = f"{versions.mlmd_image}:{versions.mlmd_fallback_tag}"
    return [ImagePin(name, references[name]) for name in IMAGE_SETTINGS]


def image_lines(versions: Versions) -> list[str]:
    """One line per image: ``name:tag  digest: ...``."""
    pins = image_pins(versions)
    width = max(len(pin.name_tag) for pin in pins)
    return [f"{pin.name_tag:<{width}}  {pin.digest_line()}" for pin in pins]
