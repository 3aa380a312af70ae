"""Synthetic upstreams shaped like the real ones, made inside a test: git repositories, a release host.

- Model Registry (github.com/kubeflow/model-registry at v0.3.8): a root module whose go.mod
  requires its two nested modules at placeholder versions and replaces them with local folders,
  a ``cmd`` package exposing ``Execute()``, the nested module ``pkg/openapi`` tagged
  ``pkg/openapi/v0.3.8``, ``catalog/pkg/openapi`` never tagged, the release tag ``v0.3.8``.
- kitops (github.com/kitops-ml/kitops at v1.7.0): a root main package printing kit's
  ``version`` output from ``pkg/lib/constants`` (``Version: unknown`` unless stamped).
- A release host on 127.0.0.1 serving what upstream's release workflow publishes, reached
  through ``LAB_RELEASE_MIRROR`` (``MIRROR/github.com/...``).

Only the standard library is imported by the Go code, so nothing else must be downloaded.
The Go command reaches the repositories as it reaches GitHub: git ``url.<local>.insteadOf``
(``GIT_CONFIG_*``), ``GONOPROXY``/``GONOSUMDB``; :func:`go_world` gives each test its own
module cache (``-modcacherw`` so it can be removed) and ``GOTOOLCHAIN=local``.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import os
import platform
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MODEL_REGISTRY = "github.com/kubeflow/model-registry"
KITOPS = "github.com/kitops-ml/kitops"
MODEL_REGISTRY_RELEASE = "v0.3.8"
KIT_RELEASE = "v1.7.0"
# Upstream's release commit time, so the pseudo-versions look like the real one.
RELEASE_TIME = "2026-04-03T14:00:07Z"

_ROOT_GO_MOD = f"""module {MODEL_REGISTRY}

go 1.22

require (
\t{MODEL_REGISTRY}/catalog/pkg/openapi v0.0.0-00010101000000-000000000000
\t{MODEL_REGISTRY}/pkg/openapi v0.0.0
)

replace {MODEL_REGISTRY}/pkg/openapi => ./pkg/openapi

replace {MODEL_REGISTRY}/catalog/pkg/openapi => ./catalog/pkg/openapi
"""

MODEL_REGISTRY_FILES = {
    "go.mod": _ROOT_GO_MOD,
    "main.go": f'package main\n\nimport "{MODEL_REGISTRY}/cmd"\n\nfunc main() {{ cmd.Execute() }}\n',
    "cmd/root.go": f"""package cmd

import (
\t"fmt"

\tcatalog "{MODEL_REGISTRY}/catalog/pkg/openapi"
\t"{MODEL_REGISTRY}/pkg/openapi"
)

// Execute is what upstream's main calls.
func Execute() {{ fmt.Println("synthetic model-registry:", openapi.Name, catalog.Name) }}
""",
    "pkg/openapi/go.mod": f"module {MODEL_REGISTRY}/pkg/openapi\n\ngo 1.22\n",
    "pkg/openapi/openapi.go": (
        'package openapi\n\n// Name tells which module answered.\nconst Name = "pkg/openapi"\n'
    ),
    "catalog/pkg/openapi/go.mod": f"module {MODEL_REGISTRY}/catalog/pkg/openapi\n\ngo 1.22\n",
    "catalog/pkg/openapi/openapi.go": (
        'package openapi\n\n// Name tells which module answered.\nconst Name = "catalog/pkg/openapi"\n'
    ),
}

KITOPS_FILES = {
    "go.mod": f"module {KITOPS}\n\ngo 1.22\n",
    "main.go": f"""package main

import (
\t"fmt"
\t"os"

\t"{KITOPS}/pkg/lib/constants"
)

func main() {{
\tif len(os.Args) > 1 && os.Args[1] == "version" {{
\t\tfmt.Printf("Version: %s\\nCommit: %s\\nBuilt: %s\\nGo version: %s\\n",
\t\t\tconstants.Version, constants.GitCommit, constants.BuildTime, constants.GoVersion)
\t\treturn
\t}}
\tfmt.Fprintln(os.Stderr, "usage: kit version")
\tos.Exit(2)
}}
""",
    "pkg/lib/constants/version.go": """package constants

import "runtime"

// Stamped by the release build (-ldflags -X), as upstream's .goreleaser.linux.yaml does.
var (
\tVersion   = "unknown"
\tGitCommit = "unknown"
\tBuildTime = "unknown"
\tGoVersion = runtime.Version()
)
""",
}


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity and commit time; returns stdout."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "lab test",
        "GIT_AUTHOR_EMAIL": "lab@example.invalid",
        "GIT_COMMITTER_NAME": "lab test",
        "GIT_COMMITTER_EMAIL": "lab@example.invalid",
        "GIT_AUTHOR_DATE": RELEASE_TIME,
        "GIT_COMMITTER_DATE": RELEASE_TIME,
    }
    proc = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def make_repository(repo: Path, files: dict[str, str], tags: tuple[str, ...]) -> str:
    """A git repository holding ``files`` in one commit carrying ``tags``; returns the commit."""
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "release")
    for tag in tags:
        git(repo, "tag", tag)
    return git(repo, "rev-parse", "HEAD")


def pseudo_version(repo: Path, commit: str) -> str:
    """The Go pseudo-version ``v0.0.0-<UTC commit time>-<12 hex>`` of an untagged module's commit."""
    seconds = int(git(repo, "show", "-s", "--format=%ct", commit))
    stamp = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y%m%d%H%M%S")
    return f"v0.0.0-{stamp}-{commit[:12]}"


def model_registry_repository(repo: Path) -> str:
    """Model Registry's layout at its release; returns the release commit."""
    return make_repository(
        repo, MODEL_REGISTRY_FILES, (MODEL_REGISTRY_RELEASE, f"pkg/openapi/{MODEL_REGISTRY_RELEASE}")
    )


def kitops_repository(repo: Path) -> str:
    """kitops' layout at its release; returns the release commit."""
    return make_repository(repo, KITOPS_FILES, (KIT_RELEASE,))


def go_world(scratch: Path, repositories: dict[str, Path]) -> dict[str, str]:
    """The environment in which the Go command reaches ``repositories`` (module -> local repo).

    Its own GOMODCACHE under ``scratch`` (``-modcacherw``: removable), the local toolchain only,
    and git's insteadOf from ``https://<module>`` to the local repository.
    """
    env = {
        "GOMODCACHE": str(scratch / "gomodcache"),
        "GOFLAGS": "-modcacherw",
        "GOTOOLCHAIN": "local",
        "GONOPROXY": ",".join(repositories),
        "GONOSUMDB": ",".join(repositories),
        "GIT_CONFIG_COUNT": str(len(repositories)),
    }
    for index, (module, repo) in enumerate(repositories.items()):
        env[f"GIT_CONFIG_KEY_{index}"] = f"url.{repo}.insteadOf"
        env[f"GIT_CONFIG_VALUE_{index}"] = f"https://{module}"
    return env


def release_arch() -> str:
    """The architecture as kitops' .goreleaser.linux.yaml names it (amd64 as x86_64)."""
    machine = platform.machine().lower()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64"}.get(machine, machine)


def kit_release_files(kit_binary: Path, checksum_of: dict[str, str] | None = None) -> dict[str, bytes]:
    """kitops' release assets as its workflow publishes them, keyed by mirror path.

    The archive ``kitops-linux-ARCH.tar.gz`` holds ``kit``, LICENSE and README.md; the checksum
    file ``kitops_TAG_checksums.txt`` is ``shasum -a 256 kitops-*``. ``checksum_of`` overrides
    the digest written for a file name (a release whose checksum file does not match).
    """
    archive_name = f"kitops-linux-{release_arch()}.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (
            ("kit", kit_binary.read_bytes()),
            ("LICENSE", b"Apache-2.0\n"),
            ("README.md", b"kit\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if name == "kit" else 0o644
            tar.addfile(info, io.BytesIO(data))
    archive = buffer.getvalue()
    digests = {archive_name: hashlib.sha256(archive).hexdigest(), **(checksum_of or {})}
    sums = "".join(f"{digest}  {name}\n" for name, digest in digests.items())
    base = f"/github.com/kitops-ml/kitops/releases/download/{KIT_RELEASE}"
    return {f"{base}/{archive_name}": archive, f"{base}/kitops_{KIT_RELEASE}_checksums.txt": sums.encode()}


@contextmanager
def release_host(files: dict[str, bytes]) -> Iterator[tuple[str, list[str]]]:
    """Serve ``files`` (path -> bytes) on 127.0.0.1; yields (base URL, paths requested)."""
    requested: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            requested.append(self.path)
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
