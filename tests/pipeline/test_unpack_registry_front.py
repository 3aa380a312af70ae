"""The unpacker against a registry that lies, on every path (local, compiled, storage initializer).

A small 127.0.0.1 proxy (tests/pipeline_fixtures/registry_front.py) stands before the real
distribution registry and serves, per blob or tag, what no honest registry would: bodies
without end, Content-Lengths that are not the body's, a manifest declaring 1 TiB over a
few-KiB blob, the genuine layer followed by zeros without end, and redirects to another port
of the same host that ask for credentials. Every read must stop at what the manifest
declares, and credentials must never leave the registry's host:port.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from lab.config import LabConfig
from lab.deadline import Deadline, wait_until
from lab.loopback_ports import free_port
from lab.pipeline.scripts import ScriptFailed
from lab.provision.control_plane import make_certificates
from lab.tools import tool_path
from tests.pipeline.test_unpack import PATHS, nothing_written, unpack
from tests.pipeline_fixtures.chain_fixtures import Member, push_modelkit_raw, running_registry, sha256
from tests.pipeline_fixtures.modelkits import KitLayer, build_modelkit
from tests.pipeline_fixtures.registry_front import RegistryFront

REPOSITORY = "lab/front"
USER, PASSWORD = "front-user", "fr0nt-Pa55word"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def registry() -> Iterator[LabConfig]:
    """A registry with htpasswd auth: the credentials the front must keep at home."""
    with running_registry(LAB_REGISTRY_USER=USER, LAB_REGISTRY_PASSWORD=PASSWORD) as config:
        yield config


@pytest.fixture
def front(registry: LabConfig) -> Iterator[RegistryFront]:
    front = RegistryFront(registry.registry_host, (USER, PASSWORD))
    try:
        yield front
    finally:
        front.close()


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def push_authenticated(registry: LabConfig, tag: str, layers: list[tuple[bytes, str]], config: bytes) -> str:
    """Push through the registry's basic auth; the manifest digest."""
    return push_modelkit_raw(
        registry.registry_host, REPOSITORY, tag, layers, config=config, auth=(USER, PASSWORD)
    )


def credentials(path: str, registry: LabConfig, host: str) -> dict[str, str]:
    """The login for ``host`` as each path is given it: DOCKER_CONFIG or KIT_USER/KIT_PASSWORD (KServe)."""
    if path == "storage-initializer":
        return {"KIT_USER": USER, "KIT_PASSWORD": PASSWORD}
    docker = registry.home / f"front-docker-{host.replace(':', '-')}"
    docker.mkdir(exist_ok=True)
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (docker / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return {"DOCKER_CONFIG": str(docker)}


def modelkit(compression: str, size: int = 50_000) -> tuple[list[tuple[bytes, str]], bytes]:
    data = bytes(range(256)) * (size // 256)
    return build_modelkit([KitLayer("model", "m.bin", [Member("m.bin", data)])], compression)


def test_an_honest_front_unpacks_and_credentials_reach_only_the_registry(
    registry: LabConfig, front: RegistryFront, commands: dict[str, list[str]], path: str, tmp_path: Path
) -> None:
    layers, config = modelkit("gzip")
    push_authenticated(registry, "honest", layers, config)
    unpack(
        path,
        commands,
        f"{front.host}/{REPOSITORY}:honest",
        tmp_path / "out",
        env=credentials(path, registry, front.host),
    )
    assert (tmp_path / "out" / "m.bin").stat().st_size == 50_000 // 256 * 256
    # A redirect to another port of the same host: followed, without the credentials.
    front.state.blob_behaviour[sha256(layers[0][0])] = "redirect"
    front.state.elsewhere_challenges = False
    unpack(
        path,
        commands,
        f"{front.host}/{REPOSITORY}:honest",
        tmp_path / "again",
        env=credentials(path, registry, front.host),
    )
    assert front.state.requests_elsewhere == 1 and front.state.authorization_elsewhere == []
    assert (tmp_path / "again" / "m.bin").read_bytes() == (tmp_path / "out" / "m.bin").read_bytes()


def test_a_redirect_elsewhere_that_asks_for_credentials_gets_none(
    registry: LabConfig, front: RegistryFront, commands: dict[str, list[str]], path: str, tmp_path: Path
) -> None:
    layers, config = modelkit("none")
    push_authenticated(registry, "redirected", layers, config)
    front.state.blob_behaviour[sha256(layers[0][0])] = "redirect"
    reference = f"{front.host}/{REPOSITORY}:redirected"
    with pytest.raises(ScriptFailed) as failure:
        unpack(path, commands, reference, tmp_path / "out", env=credentials(path, registry, front.host))
    assert (
        f"to 127.0.0.1:{front.state.elsewhere_port}, which asks for credentials (HTTP 401)"
        in failure.value.message
    )
    assert f"credentials for {front.host} are sent to no other host:port" in failure.value.message
    assert front.state.requests_elsewhere >= 1 and front.state.authorization_elsewhere == []
    nothing_written(tmp_path / "out")


BODY_LIES = {
    # behaviour of the layer blob -> what the unpacker says
    "then-endless-zeros": "sends more than the",
    "endless-zeros-after-length": None,  # honest length, more after it: read up to the length, digest checks
    "longer-content-length": "bytes for layer",
    "shorter-content-length": "bytes for layer",
    "breaks-off": "broke off: the connection closed after",
    # HTTP that is broken, or lies inside valid framing (tests/pipeline_fixtures/registry_front.py)
    "chunked-then-more": "sends more than the",
    "chunked-ends-early": "ended layer sha256:",
    "chunk-cut": "the connection closed inside a chunk",
    "bad-chunk-size": "a malformed chunk size line",
    "no-crlf-after-chunk": "a chunk is not followed by CRLF",
    "not-http": "the answer is not HTTP/1.x",
    "switches-protocols": "switches protocols (HTTP 101)",
    "header-flood": "more than 100 header lines",
    "long-header-line": "a header line longer than 65536 bytes",
    "two-content-lengths": "is not one number",
    "unknown-transfer-coding": "(only chunked is understood)",
}


@pytest.mark.parametrize("behaviour", sorted(BODY_LIES))
def test_a_body_that_is_not_what_the_descriptor_declares_is_bounded(
    registry: LabConfig,
    front: RegistryFront,
    commands: dict[str, list[str]],
    path: str,
    tmp_path: Path,
    behaviour: str,
) -> None:
    layers, config = modelkit("gzip")
    tag = f"lie-{behaviour}"
    push_authenticated(registry, tag, layers, config)
    front.state.blob_behaviour[sha256(layers[0][0])] = behaviour
    reference = f"{front.host}/{REPOSITORY}:{tag}"
    env = {**credentials(path, registry, front.host), "KIT_RETRIES": "2"}
    started = time.monotonic()
    expected = BODY_LIES[behaviour]
    if expected is None:
        unpack(path, commands, reference, tmp_path / "out", env=env, timeout=60)
        assert (tmp_path / "out" / "m.bin").stat().st_size == 50_000 // 256 * 256
    else:
        with pytest.raises(ScriptFailed) as failure:
            unpack(path, commands, reference, tmp_path / "out", env=env, timeout=60)
        assert expected in failure.value.message
        nothing_written(tmp_path / "out")
    assert time.monotonic() - started < 30
    sent = sum(n for p, n in front.state.sent.items() if "/blobs/" in p)
    assert sent < 64 << 20, f"{sent} bytes of a {len(layers[0][0])}-byte layer were read"


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_a_1_tib_descriptor_over_a_small_blob_is_bounded(
    registry: LabConfig,
    front: RegistryFront,
    commands: dict[str, list[str]],
    path: str,
    tmp_path: Path,
    compression: str,
) -> None:
    layers, config = modelkit(compression)
    push_authenticated(registry, f"tib-{compression}", layers, config)
    blob = layers[0][0]
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {
                "mediaType": "application/vnd.kitops.modelkit.config.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [{"mediaType": layers[0][1], "digest": sha256(blob), "size": 1 << 40}],
        }
    ).encode()
    tag = f"tib-{compression}"
    front.state.manifests[tag] = manifest
    env = credentials(path, registry, front.host)
    reference = f"{front.host}/{REPOSITORY}:{tag}"
    # The registry says how long the blob is: not what the manifest declares.
    with pytest.raises(ScriptFailed) as failure:
        unpack(path, commands, reference, tmp_path / "out", env=env, timeout=60)
    assert (
        f"sends {len(blob)} bytes for layer {sha256(blob)}, its descriptor declares {1 << 40}"
        in failure.value.message
    )
    # No length, the genuine blob, then zeros without end: the gzip stream or the tar ends it.
    front.state.blob_behaviour[sha256(blob)] = "then-endless-zeros"
    started = time.monotonic()
    with pytest.raises(ScriptFailed) as failure:
        unpack(path, commands, reference, tmp_path / "out", env=env, timeout=60)
    expected = (
        "trailing data after the last gzip member"
        if compression == "gzip"
        else "bytes follow the end-of-archive marker"
    )
    assert expected in failure.value.message
    assert time.monotonic() - started < 30
    assert sum(n for p, n in front.state.sent.items() if "/blobs/" in p) < 64 << 20
    nothing_written(tmp_path / "out")


def test_a_manifest_without_end_is_capped(
    registry: LabConfig, front: RegistryFront, commands: dict[str, list[str]], path: str, tmp_path: Path
) -> None:
    front.state.manifest_behaviour["endless"] = "endless"
    started = time.monotonic()
    with pytest.raises(ScriptFailed) as failure:
        unpack(
            path,
            commands,
            f"{front.host}/{REPOSITORY}:endless",
            tmp_path / "out",
            env=credentials(path, registry, front.host),
            timeout=60,
        )
    assert "is larger than the cap of 4194304 bytes (--max-manifest-bytes)" in failure.value.message
    assert time.monotonic() - started < 30
    nothing_written(tmp_path / "out")


def test_a_layer_download_that_breaks_off_once_is_retried_from_nothing(
    registry: LabConfig, front: RegistryFront, commands: dict[str, list[str]], path: str, tmp_path: Path
) -> None:
    layers, config = modelkit("gzip", size=400_000)
    push_authenticated(registry, "flaky", layers, config)
    front.state.blob_behaviour[sha256(layers[0][0])] = "breaks-off-once"
    out = unpack(
        path,
        commands,
        f"{front.host}/{REPOSITORY}:flaky",
        tmp_path / "out",
        env=credentials(path, registry, front.host),
    )
    assert path == "storage-initializer" or json.loads(out)["status"] == "success"
    assert (tmp_path / "out" / "m.bin").stat().st_size == 400_000 // 256 * 256
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".unpack-")]


def test_a_registry_that_asks_for_a_token_gets_the_login_only_at_home(
    registry: LabConfig, front: RegistryFront, commands: dict[str, list[str]], path: str, tmp_path: Path
) -> None:
    layers, config = modelkit("gzip")
    push_authenticated(registry, "token", layers, config)
    reference = f"{front.host}/{REPOSITORY}:token"
    login = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    # The token service is the registry itself (same host:port): the login goes there, once.
    front.state.token_realm = "front"
    unpack(path, commands, reference, tmp_path / "out", env=credentials(path, registry, front.host))
    assert (tmp_path / "out" / "m.bin").stat().st_size == 50_000 // 256 * 256
    assert front.state.token_requests == [login]
    # A token service on another port: asked without the login, it refuses, and the unpack says so.
    front.state.token_realm, front.state.token_requests = "elsewhere", []
    with pytest.raises(ScriptFailed) as failure:
        unpack(path, commands, reference, tmp_path / "again", env=credentials(path, registry, front.host))
    assert "(on another host:port: sent no credentials) refused a token" in failure.value.message
    assert front.state.token_requests == [""]
    nothing_written(tmp_path / "again")


VALID_FRAMINGS = ("chunked", "informational-first", "close-delimited")


@pytest.mark.parametrize("framing", VALID_FRAMINGS)
def test_every_valid_http_framing_is_read(
    registry: LabConfig,
    front: RegistryFront,
    commands: dict[str, list[str]],
    path: str,
    tmp_path: Path,
    framing: str,
) -> None:
    # Chunks (uneven, an extension, upper-case hex, a trailer), 1xx answers before the real one
    # and a folded header line, an HTTP/1.0 body ended by the close: the manifest, the config
    # and the layer each come that way, and the ModelKit unpacks whole.
    layers, config = modelkit("gzip")
    tag = f"framing-{framing}"
    push_authenticated(registry, tag, layers, config)
    front.state.manifest_behaviour[tag] = framing
    for blob in (config, layers[0][0]):
        front.state.blob_behaviour[sha256(blob)] = framing
    unpack(
        path,
        commands,
        f"{front.host}/{REPOSITORY}:{tag}",
        tmp_path / "out",
        env=credentials(path, registry, front.host),
    )
    assert (tmp_path / "out" / "m.bin").read_bytes() == bytes(range(256)) * (50_000 // 256)
    served = {p.rsplit("/", 1)[-1] for p in front.state.sent}
    assert {tag, sha256(config), sha256(layers[0][0])} <= served


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A CA and a certificate it signed for 127.0.0.1: (CA file, certificate file, key file)."""
    pki = tmp_path_factory.mktemp("pki")
    make_certificates(pki)
    return pki / "ca.crt", pki / "apiserver.crt", pki / "apiserver.key"


def test_an_https_registry_is_trusted_only_through_its_ca(
    registry: LabConfig,
    commands: dict[str, list[str]],
    path: str,
    tmp_path: Path,
    certificate: tuple[Path, Path, Path],
) -> None:
    ca, served, key = certificate
    front = RegistryFront(registry.registry_host, (USER, PASSWORD), certificate=(served, key))
    try:
        layers, config = modelkit("gzip")
        push_authenticated(registry, "tls", layers, config)
        reference = f"{front.host}/{REPOSITORY}:tls"
        env = {**credentials(path, registry, front.host), "SSL_CERT_FILE": str(ca)}
        unpack(path, commands, reference, tmp_path / "out", env=env, plain_http=False)
        assert (tmp_path / "out" / "m.bin").read_bytes() == bytes(range(256)) * (50_000 // 256)
        # Without the CA the certificate is not trusted: said at once, not retried, nothing written.
        env = {**credentials(path, registry, front.host), "SSL_CERT_FILE": str(tmp_path / "no-such-file")}
        with pytest.raises(ScriptFailed) as failure:
            unpack(path, commands, reference, tmp_path / "again", env=env, plain_http=False)
        assert f"the certificate of registry {front.host} is not trusted here" in failure.value.message
        assert "SSL_CERT_FILE" in failure.value.message and "retrying" not in failure.value.output
        nothing_written(tmp_path / "again")
    finally:
        front.close()


@contextmanager
def registry_over_https(registry: LabConfig, certificate: Path, key: Path) -> Iterator[str]:
    """A second process of the real registry on the lab registry's storage and login, speaking HTTPS.

    Yields its host:port once it answers; stopped afterwards.
    """
    settings = yaml.safe_load((registry.home / "etc" / "registry.yml").read_text())
    port = free_port()
    settings["http"]["addr"] = f"127.0.0.1:{port}"
    settings["http"]["tls"] = {"certificate": str(certificate), "key": str(key)}
    path = registry.home / "etc" / f"registry-https-{port}.yml"
    path.write_text(yaml.safe_dump(settings))
    process = subprocess.Popen(
        [str(tool_path(registry, "registry")), "serve", str(path)],
        env={**os.environ, "OTEL_TRACES_EXPORTER": "none"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    context = ssl.create_default_context(cafile=str(certificate.parent / "ca.crt"))

    def not_answering() -> list[str]:
        assert process.poll() is None, "the registry stopped before it answered over https"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                context.wrap_socket(sock, server_hostname="127.0.0.1").close()
        except OSError as error:
            return [str(error)]
        return []

    try:
        wait_until(not_answering, Deadline(10), "the registry not answering over https", interval=0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        path.unlink()


def test_the_real_registry_over_https_with_its_login(
    registry: LabConfig,
    commands: dict[str, list[str]],
    path: str,
    tmp_path: Path,
    certificate: tuple[Path, Path, Path],
) -> None:
    # Not a server written here: the distribution registry's own TLS and htpasswd auth, as a
    # private registry on the internet would speak them (Go net/http, its framing and its 401s).
    ca, served, key = certificate
    layers, config = modelkit("gzip", size=400_000)
    push_authenticated(registry, "over-https", layers, config)
    with registry_over_https(registry, served, key) as host:
        reference = f"{host}/{REPOSITORY}:over-https"
        env = {**credentials(path, registry, host), "SSL_CERT_FILE": str(ca)}
        unpack(path, commands, reference, tmp_path / "out", env=env, plain_http=False)
        assert (tmp_path / "out" / "m.bin").read_bytes() == bytes(range(256)) * (400_000 // 256)
        # A wrong login is the registry's 401, said as such (not retried, nothing written).
        wrong = {**env, "KIT_PASSWORD": "wrong"} if path == "storage-initializer" else env
        if path != "storage-initializer":
            docker = tmp_path / "wrong-docker"
            docker.mkdir()
            login = base64.b64encode(f"{USER}:wrong".encode()).decode()
            (docker / "config.json").write_text(json.dumps({"auths": {host: {"auth": login}}}))
            wrong = {**env, "DOCKER_CONFIG": str(docker)}
        with pytest.raises(ScriptFailed) as failure:
            unpack(path, commands, reference, tmp_path / "again", env=wrong, plain_http=False)
        assert f"registry {host} refused the credentials (401)" in failure.value.message
        nothing_written(tmp_path / "again")
