"""The chain with the real kit: what kit packs, the lab's unpacker unpacks byte for byte.

A ModelKit with nested directories is made by `kit pack` (through push-modelkit.sh), fetched
and unpacked by the unpacker (scripts/unpack_modelkit.py, as the pipeline and as the kit://
storage initializer), and packed again by `kit pack` from the unpacked directory: the same
layers come out. Where kit cannot be obtained, these tests skip with the resolver's one line.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lab import local
from lab.config import LabConfig
from lab.pipeline.scripts import (
    PRELUDE,
    PUSH_SCRIPT,
    STORAGE_INITIALIZER,
    push_arguments,
    run_script,
    run_unpacker,
    script_environment,
    script_text,
    unpack_arguments,
)
from tests.pipeline_fixtures.chain_fixtures import QUIET, destroy, new_lab, require
from tests.pipeline_fixtures.modelkits import COMPRESSIONS

# How the unpacker is run: as the pipeline's unpack step, and as KServe's storage initializer.
MODES = ("unpack", "storage-initializer")
KITFILE = """\
manifestVersion: 1.0.0
package:
  name: nested
  authors: [lab, "a: b"]
model:
  name: nested-model
  path: model
  parameters:
    digest: a user's own key, kept
datasets:
  - name: train
    path: data/train
  - name: test
    path: data/test.csv
code:
  - path: src
    description: "two\\nlines"
docs:
  - path: README.md
"""
FILES = {
    "model/top.txt": b"top\n",
    "model/sub/config.json": b'{"layers": 3}\n',
    "model/sub/deeper/weights.bin": os.urandom(300 * 1024),
    "data/train/part-0.csv": b"a,b\n1,2\n",
    "data/train/nested/part-1.csv": b"a,b\n3,4\n",
    "data/test.csv": b"a,b\n5,6\n",
    "src/pkg/__init__.py": b"",
    "src/pkg/train.py": b"print('train')\n",
    "README.md": b"# nested\n",
}


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[LabConfig, Path]]:
    config = new_lab()
    try:
        kit = require(config, "kit")["kit"]
        local.up(config, QUIET, ("registry",))
        yield config, kit
    finally:
        destroy(config)


def environment(kit: Path, store: Path, **extra: str) -> dict[str, str]:
    return script_environment(tool_dirs=[kit.parent], extra={"KITOPS_HOME": str(store), **extra})


def make_modelkit(directory: Path) -> Path:
    for name, data in {**FILES, "Kitfile": KITFILE.encode()}.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
    return directory


def push(config: LabConfig, kit: Path, source: Path, tag: str, tmp_path: Path, compression: str) -> str:
    arguments = push_arguments(
        config.registry_host,
        "lab/nested",
        tag,
        str(source),
        plain_http="true",
        ref_output=str(tmp_path / "outputs" / "ref"),
        digest_output=str(tmp_path / "outputs" / "digest"),
        compression=compression,
    )
    run_script(PUSH_SCRIPT, arguments, environment(kit, tmp_path / "push-store"))
    return (tmp_path / "outputs" / "digest").read_text()


def layer_digests(kit: Path, store: Path, reference: str, *flags: str) -> list[str]:
    out = subprocess.run(
        [str(kit), "inspect", *flags, "--", reference],
        env=environment(kit, store),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [layer["digest"] for layer in json.loads(out)["manifest"]["layers"]]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_a_kit_packed_modelkit_round_trips_byte_for_byte_and_packs_again(
    lab: tuple[LabConfig, Path], tmp_path: Path, compression: str, mode: str
) -> None:
    config, kit = lab
    reference = push(config, kit, make_modelkit(tmp_path / "source"), compression, tmp_path, compression)
    unpacked = tmp_path / "unpacked"
    # No kit on PATH: the unpacker speaks the registry API itself.
    env = script_environment(extra={"PATH": "/usr/bin:/bin", "KIT_UNPACK_FLAGS": "--plain-http"})
    if mode == "unpack":
        answer = run_unpacker(unpack_arguments(reference, str(unpacked), plain_http="true"), env)
        assert json.loads(answer)["fetch"] == "http"
    else:
        assert yaml.safe_load(run_unpacker([STORAGE_INITIALIZER, f"kit://{reference}", str(unpacked)], env))
    for name, data in FILES.items():
        assert (unpacked / name).read_bytes() == data, name
    written = sorted(str(p.relative_to(unpacked)) for p in unpacked.rglob("*") if p.is_file())
    assert written == sorted([*FILES, "Kitfile"])
    kitfile = (unpacked / "Kitfile").read_text()
    assert "diffId" not in kitfile and not kitfile.startswith("{")
    assert yaml.safe_load(kitfile) == yaml.safe_load(KITFILE)

    # kit packs the unpacked directory, and packs it into the very same layers.
    store = tmp_path / "repack-store"
    repacked = f"{config.registry_host}/lab/nested:repacked"
    pack = [str(kit), "pack", f"--tag={repacked}", *([f"--compression={compression}"]), "--", str(unpacked)]
    subprocess.run(pack, env=environment(kit, store), capture_output=True, text=True, check=True)
    assert layer_digests(kit, store, repacked) == layer_digests(
        kit, store, reference, "--remote", "--plain-http"
    )


def test_the_reference_grammar_is_one_block_in_one_prelude_push_sources() -> None:
    # One copy for bash: the prelude holds the grammar; push sources it and defines none itself.
    prelude = PRELUDE.read_text()
    assert prelude.count("check_reference()") == 1 and "# --- reference grammar" in prelude
    text = PUSH_SCRIPT.read_text()
    assert 'source "$PRELUDE_DIR/lib/prelude.sh"' in text
    for shared in ("check_reference()", "\ndie()", "\nlog()", "\nunexpected()", "unauthori[sz]ed"):
        assert shared not in text, f"push-modelkit.sh keeps its own copy of {shared.strip()}"
    assert script_text(PUSH_SCRIPT).count("check_reference()") == 1


def test_push_carried_as_text_behaves_as_the_file(tmp_path: Path) -> None:
    # The cluster runs `bash -c <script_text>`: the prelude inlined, no file beside it.
    modelkit = tmp_path / "modelkit"
    modelkit.mkdir()
    (modelkit / "model.joblib").write_bytes(b"model")
    (modelkit / "Kitfile").write_text("manifestVersion: 1.0.0\nmodel:\n  path: model.joblib\n")
    arguments = ["127.0.0.1:5001;id", "lab/iris", "v1", "--modelkit-dir", str(modelkit)]
    env = script_environment(extra={"PATH": "/usr/bin:/bin"})
    as_file = subprocess.run(["bash", str(PUSH_SCRIPT), *arguments], env=env, capture_output=True, text=True)
    as_text = subprocess.run(
        ["bash", "-c", script_text(PUSH_SCRIPT), PUSH_SCRIPT.name, *arguments],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,  # nowhere near scripts/lib
    )
    assert as_file.returncode == as_text.returncode != 0
    assert "contains shell syntax: refusing it" in as_text.stderr
    assert as_text.stderr.splitlines()[-1] == as_file.stderr.splitlines()[-1]


@pytest.mark.parametrize("auths_for", ["another registry", "this registry"])
def test_the_credentials_check_runs_beside_the_pack_and_warns_before_the_push(
    lab: tuple[LabConfig, Path], tmp_path: Path, auths_for: str
) -> None:
    # The auths check (jq, ~13 ms to start) runs while kit packs; its warning still precedes the push.
    config, kit = lab
    host = config.registry_host if auths_for == "this registry" else "registry.example.com"
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps({"auths": {host: {"auth": "dXNlcjpwYXNz"}}}))
    arguments = push_arguments(
        config.registry_host,
        "lab/auths",
        "v1",
        str(make_modelkit(tmp_path / "source")),
        plain_http="true",
        ref_output=str(tmp_path / "outputs" / "ref"),
        digest_output=str(tmp_path / "outputs" / "digest"),
    )
    env = environment(kit, tmp_path / "store", DOCKER_CONFIG=str(docker))
    proc = subprocess.run(
        ["bash", str(PUSH_SCRIPT), *arguments], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    warning = f"config.json has no auths entry for {config.registry_host}: pushing without credentials"
    warned = [i for i, line in enumerate(lines) if warning in line]
    if auths_for == "this registry":
        assert not warned, proc.stderr
        return
    pushing = next(i for i, line in enumerate(lines) if "push-modelkit: pushing " in line)
    assert len(warned) == 1 and warned[0] < pushing, proc.stderr
