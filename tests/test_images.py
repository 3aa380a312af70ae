"""Every image the lab names is pinned by digest, or says why it is not."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

from lab.config import Versions, load_config
from lab.images import DIGEST_NOT_RECORDED, IMAGE_SETTINGS, image_lines, image_pins

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def test_every_image_setting_is_in_the_list() -> None:
    images = {f.name for f in dataclasses.fields(Versions) if f.name.endswith("_image")}
    # mlmd_image is a name without a tag; the lab names it with mlmd_fallback_tag.
    assert images - {"mlmd_image"} <= set(IMAGE_SETTINGS)
    assert "mlmd_fallback" in IMAGE_SETTINGS


def test_each_image_has_a_digest_or_a_reason_never_both() -> None:
    for pin in image_pins(Versions()):
        if pin.digest:
            assert DIGEST.match(pin.digest), pin
            assert pin.setting not in DIGEST_NOT_RECORDED, f"{pin.setting} is pinned: drop its reason"
            assert ":" in pin.name_tag.rsplit("/", 1)[-1], f"{pin.reference}: the tag stays beside the digest"
        else:
            assert DIGEST_NOT_RECORDED.get(pin.setting), f"{pin.setting} has neither a digest nor a reason"
    assert set(DIGEST_NOT_RECORDED) <= set(IMAGE_SETTINGS)


def test_the_matrix_lines_show_tag_and_digest_or_reason() -> None:
    lines = image_lines(Versions())
    assert any(line.startswith("python:3.11-slim ") and "digest: sha256:90744cff" in line for line in lines)
    assert any(
        line.startswith("ghcr.io/kitops-ml/kitops-kubeflow:v1.7.0 ") and "digest: not recorded (" in line
        for line in lines
    )


def test_tools_list_shows_the_images(tmp_path) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "lab", "tools", "list", "--mode", "local"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"LAB_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert listed.returncode == 0, listed.stderr
    config = load_config(env={"LAB_HOME": str(tmp_path)})
    for line in image_lines(config.versions):
        assert f"  {line}" in listed.stdout
