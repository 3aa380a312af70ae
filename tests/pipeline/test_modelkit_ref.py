"""One ModelKit reference type: the grammar the chain scripts enforce, and the kit:// prefix."""

from __future__ import annotations

import subprocess

import pytest

from lab.pipeline.modelkit_ref import ModelKitRef, kit_uri, reference_of_kit_uri
from lab.pipeline.scripts import PRELUDE

DIGEST = "sha256:" + "ab" * 32

GOOD = [
    f"127.0.0.1:5001/lab/iris@{DIGEST}",
    "127.0.0.1:5001/lab/iris:1.0.0",
    f"kind-registry:5000/lab/iris-classifier:v1@{DIGEST}",
    "localhost/lab/iris",
    "registry.example.com/team/sub/model__x:latest",
    "[::1]:5000/lab/iris:v1",
]
BAD = [
    "iris:v1",
    "lab/iris:v1",
    "127.0.0.1:5001/lab/iris@sha256:abc",
    "--help",
    "-127.0.0.1:5001/lab/iris:v1",
    "127.0.0.1:5001/lab/iris:v1;touch /tmp/pwned",
    "127.0.0.1:5001/lab/iris:v1;id",
    "127.0.0.1:5001/lab/iris:$(id)",
    "127.0.0.1:5001/lab/iris:`id`",
    "127.0.0.1:5001/lab/iris:v1\nx",
    "127.0.0.1:5001/lab/Iris:v1",
    "127.0.0.1:5001/lab/iris:-v1",
    "bad_host.example/lab/iris:v1",
    "127.0.0.1:5001/" + "a" * 600,
    "",
]


def shell_accepts(reference: str) -> bool:
    """The chain scripts' own ``check_reference`` (the block of the prelude they all source)."""
    text = PRELUDE.read_text()
    start = text.index("# --- reference grammar")
    block = text[start : text.index("# --- end of the reference grammar", start)]
    program = "die() { exit 1; }\n" + block + '\ncheck_reference "$1" reference\n'
    return subprocess.run(["bash", "-c", program, "check", reference], check=False).returncode == 0


@pytest.mark.parametrize("reference", GOOD)
def test_a_reference_round_trips_through_its_parts_and_its_uri(reference: str) -> None:
    ref = ModelKitRef.parse(reference)
    assert str(ref) == reference
    assert ref.uri == f"kit://{reference}" == kit_uri(reference)
    assert ModelKitRef.from_uri(ref.uri) == ref
    assert reference_of_kit_uri(ref.uri) == reference
    assert shell_accepts(reference)


def test_the_parts_are_named() -> None:
    ref = ModelKitRef.parse(f"127.0.0.1:5001/lab/iris:1.0.0@{DIGEST}")
    parts = (ref.registry, ref.repository, ref.tag, ref.digest)
    assert parts == ("127.0.0.1:5001", "lab/iris", "1.0.0", DIGEST)
    assert ref.pinned and not ModelKitRef.parse("127.0.0.1:5001/lab/iris:1.0.0").pinned
    moved = ref.with_registry("kind-registry:5000")
    assert str(moved) == f"kind-registry:5000/lab/iris:1.0.0@{DIGEST}"


@pytest.mark.parametrize("reference", BAD)
def test_python_refuses_what_the_scripts_refuse(reference: str) -> None:
    assert not shell_accepts(reference)
    with pytest.raises(ValueError):
        ModelKitRef.parse(reference)
    with pytest.raises(ValueError):
        kit_uri(reference)
    with pytest.raises(ValueError):
        ModelKitRef.from_uri(f"kit://{reference}")


def test_the_kit_prefix_is_required_to_read_a_uri() -> None:
    with pytest.raises(ValueError, match="does not start with kit://"):
        ModelKitRef.from_uri("127.0.0.1:5001/lab/iris:v1")
    with pytest.raises(ValueError):
        ModelKitRef("127.0.0.1:5001", "lab/iris", "-v1")
