"""unpack-modelkit and the kit:// storage initializer: the one implementation of the unpack rules.

One Python program, standard library only, for every path that turns registry bytes into
files: the pipeline's unpack step (local and cluster), KServe's ``kitops``
ClusterStorageContainer, ``lab demo`` and ``lab bench``. It speaks the OCI distribution API
itself (no kit, curl or jq), so the plan and the layer pass run in one process:

    manifest (capped, verified) -> config (capped, verified, the contract) -> per layer:
    registry -> bytes up to the descriptor's size -> sha256 -> gunzip -> sha256 (diffId)
    -> a tar reader that checks each member header before it writes that member

Components carry its text (``lab.pipeline.scripts.unpacker_text``: the reference grammar of
``lab/pipeline/modelkit_ref.py`` inlined where the import below stands) and run it as
``python3 -I -S -c <text> ...``; the lab, running it itself, runs that text compiled once
(``lab.pipeline.scripts.compiled_unpacker``).

    unpack:              [--] <reference> [extract_path] [--plain-http true|false]
                         [--artifact-dir DIR] [--model-path-output FILE] [--oci-layout DIR]
                         [--max-bytes N] [--max-manifest-bytes N] [--max-config-bytes N]
                         [--max-layers N]
    storage initializer: storage-initializer kit://<reference> <dest>
                         (KIT_UNPACK_FLAGS: --plain-http, -v, and the --max-* flags above;
                         KIT_USER / KIT_PASSWORD: the registry login, over DOCKER_CONFIG)

Environment: DOCKER_CONFIG (registry credentials; a credsStore/credHelpers entry runs its
docker-credential-<name> helper), KIT_RETRIES (3), KIT_RETRY_DELAY (2 s), UNPACK_MAX_MANIFEST_BYTES,
UNPACK_MAX_CONFIG_BYTES, UNPACK_MAX_LAYERS (the flags win), SSL_CERT_FILE (the CA certificates an
https registry's certificate is checked against, instead of the system's). Exit statuses: 0
unpacked, 1 an I/O failure here, 2 a wrong command line, 3 refused or failed verification (one
ERROR: line says why).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import re
import socket
import sys
import threading
import time
import urllib.parse
import zlib

# --- reference grammar: lab/pipeline/modelkit_ref.py (inlined here when the unpacker is carried) ---
from lab.pipeline.modelkit_ref import split_modelkit_reference

# --- end of reference grammar ---

# Names for annotations only: importing typing and collections.abc would add milliseconds to
# every unpack's start, and the annotations are never evaluated (from __future__ import annotations).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

PROG = "unpack-modelkit"
REFUSED = 3
USAGE_STATUS = 2
MIB = 1 << 20
KITOPS_CONFIG_TYPE = "application/vnd.kitops.modelkit.config.v1+json"
MODELPACK_CONFIG_TYPE = "application/vnd.cncf.model.config.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
LAYER_TYPE = re.compile(
    r"application/vnd\.kitops\.modelkit\.(model|modelpart|code|dataset|docs)\.v1\.tar(\+gzip)?"
)
# The limits (README "Unpack limits"): flag, environment variable, default.
LIMITS = {
    "max_manifest_bytes": ("--max-manifest-bytes", "UNPACK_MAX_MANIFEST_BYTES", 4 * MIB),
    "max_config_bytes": ("--max-config-bytes", "UNPACK_MAX_CONFIG_BYTES", 4 * MIB),
    "max_layers": ("--max-layers", "UNPACK_MAX_LAYERS", 1000),
}
TRAILER_CAP = MIB  # zero bytes a tar may carry after its end-of-archive marker (record padding)
FREE_SPACE_MARGIN = 64 * MIB
# Bytes per read and write: measured here, pieces of 128-256 KiB move a blob from the socket
# to the disk two to three times faster than 1 MiB ones (they stay in the CPU's cache between
# the socket, the hash and the page cache).
CHUNK = 128 * 1024
INFLATED = CHUNK  # most bytes one inflate call returns: a gzip bomb never sits in memory
HTTP_TIMEOUT = 600  # seconds a stalled registry connection may stay silent
MAX_REDIRECTS = 5
TOKEN_CAP = 64 * 1024  # bytes of a token service's answer
SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
HEADER_CONTROL = re.compile(rb"[\x01-\x1f\x7f]")
OCTAL_SIZE = re.compile(r"[0-7]{1,12}")
DECIMAL = re.compile(r"[0-9]{1,18}")
PAX_RECORD = re.compile(rb"([0-9]+) ([^=]+)=(.*)", re.DOTALL)
# The pax records a ModelKit's tar may carry: what Go's archive/tar (kit) and Python's tarfile
# write. Anything else (GNU.sparse.*, SCHILY.xattr.*, ...) changes what a member means to some
# reader, so it is refused rather than ignored: one ModelKit, one model.
PAX_KNOWN = {b"path", b"linkpath", b"size", b"mtime", b"atime", b"ctime", b"uid", b"gid", b"uname", b"gname"}
PAX_KNOWN |= {b"comment", b"charset", b"hdrcharset"}
ZERO_BLOCK = bytes(512)


class Failure(Exception):
    """An ERROR: line and its exit status."""

    def __init__(self, message: str, status: int = REFUSED) -> None:
        super().__init__(message)
        self.status = status


class Transient(Exception):
    """A network failure or a 5xx/408/429: worth another attempt."""


class Refused(Exception):
    """A rule refused the ModelKit: "refusing to unpack <ref>: <why>"."""


def log(message: str) -> None:
    """A progress line on stderr."""
    line = f"{time.strftime('%H:%M:%S')} {PROG}: {message}\n"
    sys.stderr.buffer.write(line.encode("utf-8", "surrogateescape"))
    sys.stderr.flush()


def text(raw: bytes) -> str:
    """Bytes of a tar name, shown as they are."""
    return raw.decode("utf-8", "surrogateescape")


def quoted(value: str) -> str:
    """A value in single quotes, control characters escaped ($'...' as bash writes them)."""
    if not CONTROL.search(value):
        return "'" + value.replace("'", "'\\''") + "'"
    escapes = {"\a": "\\a", "\b": "\\b", "\x1b": "\\E", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    escapes.update({"\v": "\\v", "\\": "\\\\", "'": "\\'"})
    body = "".join(escapes.get(c, f"\\{ord(c):03o}" if CONTROL.match(c) else c) for c in value)
    return f"$'{body}'"


def normalize(path: str) -> str:
    """Strip ./ and // and /./ and one trailing /; "." is ""."""
    while path.startswith("./"):
        path = path[2:]
    while "//" in path:
        path = path.replace("//", "/")
    while "/./" in path:
        path = path.replace("/./", "/")
    if path.endswith("/"):
        path = path[:-1]
    return "" if path == "." else path


def has_dotdot(path: str) -> bool:
    """A '..' path component."""
    return "/../" in f"/{path}/"


def all_zero(data: memoryview | bytes) -> bool:
    """Only zero bytes."""
    return bytes(data).count(0) == len(data)


# --- the reference ---------------------------------------------------------------------------


def check_reference(reference: str, what: str) -> dict[str, str]:
    """The parts of a reference, or a Failure naming what is wrong with it (before any fetch)."""
    if reference.startswith("-"):
        raise Failure(
            f"{what} {quoted(reference)} starts with '-' (it would be read as an option): refusing it"
        )
    if re.search(r"[\s\x00-\x1f\x7f]", reference):
        raise Failure(f"{what} {quoted(reference)} contains whitespace or control characters: refusing it")
    if re.search(r";|\$\(|`|\||&|<|>", reference):
        raise Failure(f"{what} {quoted(reference)} contains shell syntax: refusing it")
    if "@" in reference and not SHA256.fullmatch(reference.rsplit("@", 1)[1]):
        digest = reference.rsplit("@", 1)[1]
        raise Failure(f"{what} {quoted(reference)}: {quoted(digest)} is not a sha256 digest")
    try:
        return split_modelkit_reference(reference)
    except ValueError as error:
        said = str(error)
        if "is not an OCI reference" in said:
            said = (
                f"{quoted(reference)} is not an OCI reference host[:port]/repository[:tag][@sha256:<64 hex>]"
            )
        raise Failure(f"{what} {said}: refusing it") from None


# --- registry credentials ------------------------------------------------------------------------


def docker_config_authorization(host: str) -> str:
    """``Basic ...`` for ``host`` from DOCKER_CONFIG's config.json (or its credential helper); "" if none."""
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(os.environ.get("HOME", "/"), ".docker")
    path = os.path.join(directory, "config.json")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(4 * MIB + 1)
    except FileNotFoundError:
        return ""
    except OSError as error:
        raise Failure(f"could not read the registry credentials in {path}: {error}", 1) from None
    try:
        config = json.loads(raw) if len(raw) <= 4 * MIB else None
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise Failure(f"{path} is not a docker config.json (a JSON object of at most 4 MiB)", USAGE_STATUS)
    helpers = config.get("credHelpers") or {}
    helper = helpers.get(host) if isinstance(helpers, dict) else None
    helper = helper or config.get("credsStore")
    if helper:
        return credential_helper(str(helper), host)
    auths = config.get("auths") or {}
    for key in (host, f"https://{host}", f"http://{host}"):
        entry = auths.get(key) if isinstance(auths, dict) else None
        if isinstance(entry, dict) and entry.get("auth"):
            auth = str(entry["auth"])
            if not re.fullmatch(r"[A-Za-z0-9+/=]+", auth):
                raise Failure(f"the auths entry for {host} in {path} is not base64", USAGE_STATUS)
            return f"Basic {auth}"
    return ""


def credential_helper(name: str, host: str) -> str:
    """Ask ``docker-credential-<name>`` for the login of ``host`` (the docker protocol)."""
    import shutil  # here: only a docker config with a credential helper needs these
    import subprocess

    program = f"docker-credential-{name}"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or shutil.which(program) is None:
        raise Failure(f"the docker config names the credential helper {program}, which is not on PATH", 2)
    result = subprocess.run(
        [program, "get"], input=host.encode(), capture_output=True, timeout=60, check=False
    )
    if result.returncode != 0:
        return ""  # the helper has no login for this host
    try:
        answer = json.loads(result.stdout[: 64 * 1024])
        login = f"{answer['Username']}:{answer['Secret']}"
    except (ValueError, KeyError, TypeError):
        raise Failure(f"{program} answered something that is no login for {host}", 1) from None
    return "Basic " + base64.b64encode(login.encode()).decode()


# --- HTTP/1.1: the little of it a registry client needs -------------------------------------------
# Here rather than http.client: importing http.client (its email header parser, and ssl even for a
# plain-HTTP registry) was a third of a small unpack's fixed cost. One request per connection
# ("Connection: close"); every line, the header count and the 1xx answers bounded; a body framed
# by its Content-Length, by chunks, or by the close, as RFC 9112 section 6 orders them.

MAX_LINE = 64 * 1024  # bytes of a status, header or chunk-size line
MAX_HEADERS = 100  # header lines of one answer (and trailer lines of a chunked body)
MAX_INFORMATIONAL = 10  # 1xx answers skipped before the real one
STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9])(?: [^\r\n]*)?\r?\n")
HEADER_NAME = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r?\n")
UNSAFE_TARGET = re.compile(r"[\x00-\x20\x7f]")


class HttpError(Exception):
    """An answer that is not well-formed HTTP/1.1 (like a broken connection: worth another attempt)."""


class Response:
    """One HTTP/1.1 answer: its status and headers, then its body, read to its framing's end only."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.stream = sock.makefile("rb")
        self.chunked = False
        self.length: int | None = None  # bytes of a Content-Length body not yet read
        self.chunk_left = 0  # bytes of the current chunk not yet read
        self.ended = False  # a chunked body's last chunk was read
        try:
            self.status, self.headers = self.read_head()
            self.frame()
        except BaseException:
            self.close()
            raise

    def line(self, what: str) -> bytes:
        """One line (with its end), at most MAX_LINE bytes; b"" at the close."""
        line = self.stream.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise HttpError(f"{what} longer than {MAX_LINE} bytes")
        return line

    def read_head(self) -> tuple[int, dict[str, list[str]]]:
        """The status and headers of the first answer that is not 1xx."""
        for _ in range(MAX_INFORMATIONAL + 1):
            status_line = self.line("a status line")
            if not status_line:
                raise HttpError("the connection closed without an answer")
            match = STATUS_LINE.fullmatch(status_line)
            if not match:
                raise HttpError(f"the answer is not HTTP/1.x: {status_line[:40]!r}")
            status = int(match[1])
            headers = self.read_fields("header")
            if status >= 200:
                return status, headers
            if status == 101:
                raise HttpError("the answer switches protocols (HTTP 101), which a GET never asked for")
        raise HttpError(f"more than {MAX_INFORMATIONAL} informational (1xx) answers")

    def read_fields(self, what: str) -> dict[str, list[str]]:
        """Header (or trailer) lines up to the empty one: lower-case name -> its values."""
        fields: dict[str, list[str]] = {}
        last: list[str] = []
        for _ in range(MAX_HEADERS + 1):
            line = self.line(f"a {what} line")
            if line in (b"\r\n", b"\n"):
                return fields
            if not line.endswith(b"\n"):
                raise HttpError(f"the connection closed in the {what}s")
            if line[:1] in (b" ", b"\t") and last:  # an obsolete folded line continues the value
                last[-1] += " " + line.strip().decode("latin-1")
                continue
            name, colon, value = line.partition(b":")
            if not colon or not HEADER_NAME.fullmatch(name):
                raise HttpError(f"a malformed {what} line: {line[:40]!r}")
            last = fields.setdefault(name.decode("ascii").lower(), [])
            last.append(value.strip().decode("latin-1"))
        raise HttpError(f"more than {MAX_HEADERS} {what} lines")

    def frame(self) -> None:
        """How the body ends: chunks, a Content-Length, or the close."""
        if self.status in (204, 304):
            self.length = 0
            return
        codings = self.getheader("Transfer-Encoding")
        if codings is not None:  # it overrides any Content-Length
            if codings.strip().lower() != "chunked":
                raise HttpError(f"Transfer-Encoding {codings[:40]!r} (only chunked is understood)")
            self.chunked = True
            return
        lengths = {v.strip() for v in ",".join(self.headers.get("content-length", [])).split(",")}
        if lengths == {""}:
            return
        if len(lengths) != 1 or not DECIMAL.fullmatch(next(iter(lengths))):
            raise HttpError(f"Content-Length {', '.join(sorted(lengths))[:40]!r} is not one number")
        self.length = int(lengths.pop())

    def getheader(self, name: str, default: str | None = None) -> str | None:
        """A header's values joined by ", " (``default`` if absent)."""
        values = self.headers.get(name.lower())
        return ", ".join(values) if values else default

    def readinto(self, view: memoryview) -> int:
        """Fill ``view`` with body bytes; 0 at the body's end or at the close (which may be early)."""
        if self.chunked:
            return self.readinto_chunked(view)
        if self.length is not None:
            if not self.length:
                return 0
            view = view[: self.length]
        got = self.stream.readinto(view) or 0
        if self.length is not None:
            self.length -= got
        return got

    def readinto_chunked(self, view: memoryview) -> int:
        """From the current chunk (reading the next chunk's size first if need be)."""
        if self.ended:
            return 0
        if not self.chunk_left:
            size_line = self.line("a chunk size line")
            match = CHUNK_SIZE.fullmatch(size_line)
            if not match:
                raise HttpError(
                    "the connection closed inside a chunked body"
                    if not size_line
                    else f"a malformed chunk size line: {size_line[:40]!r}"
                )
            self.chunk_left = int(match[1], 16)
            if not self.chunk_left:
                self.read_fields("trailer")
                self.ended = True
                return 0
        got = self.stream.readinto(view[: self.chunk_left]) or 0
        if not got:
            raise HttpError("the connection closed inside a chunk")
        self.chunk_left -= got
        if not self.chunk_left and self.stream.read(2) != b"\r\n":
            raise HttpError("a chunk is not followed by CRLF")
        return got

    def read(self, most: int) -> bytes:
        """Up to ``most`` body bytes; a Content-Length body cut short by the close is an HttpError."""
        buffer = bytearray(most)
        view, filled = memoryview(buffer), 0
        while filled < most:
            got = self.readinto(view[filled:])
            if not got:
                break
            filled += got
        if filled < most and self.length:
            raise HttpError(
                f"the connection closed {self.length} bytes before the end its Content-Length declares"
            )
        return bytes(buffer[:filled])

    def close(self) -> None:
        """Close the connection."""
        self.stream.close()
        self.sock.close()


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL: credentials belong to exactly one."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def is_tls_error(error: BaseException) -> bool:
    """A TLS failure (ssl is imported only once an https URL needs it)."""
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(error, ssl.SSLError)


# --- the registry, bounded by what the manifest declares ------------------------------------------


class Registry:
    """The OCI distribution API of one registry, with the credentials given for it and only for it."""

    def __init__(self, host: str, repository: str, plain_http: bool, authorization: str, ref: str) -> None:
        self.host, self.repository, self.ref = host, repository, ref
        self.base = f"{'http' if plain_http else 'https'}://{host}"
        self.home = origin(self.base)
        self.credentials = authorization  # Basic ...: sent to self.home only
        self.token = ""  # Bearer ...: from the registry's token service, also for self.home only
        self.tls: Any = None  # the ssl context, made at the first https URL (loading the CAs takes time)

    def url(self, path: str) -> str:
        """The URL of ``path`` under /v2/<repository>/."""
        return f"{self.base}/v2/{self.repository}/{path}"

    def request(self, url: str, headers: dict[str, str]) -> Response:
        """GET ``url`` with ``headers`` on a connection of its own; the answer's head read."""
        parts = urllib.parse.urlsplit(url)
        scheme, host, port = origin(url)
        if scheme not in ("http", "https"):
            raise Failure(f"registry {self.host} redirected to {url}, which is no http(s) URL")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if not target.isascii() or UNSAFE_TARGET.search(target) or not host:
            raise Failure(f"registry {self.host} redirected to {quoted(url)}, which is no usable URL")
        authority = f"[{host}]" if ":" in host else host
        if port != (443 if scheme == "https" else 80):
            authority += f":{port}"
        head = f"GET {target} HTTP/1.1\r\nHost: {authority}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head += "Accept-Encoding: identity\r\nConnection: close\r\n\r\n"
        # An ASCII name as bytes: getaddrinfo then skips the idna codec (an import on every unpack).
        sock = socket.create_connection(
            (host.encode() if host.isascii() else host, port), timeout=HTTP_TIMEOUT
        )
        try:
            if scheme == "https":
                sock = self.tls_context().wrap_socket(sock, server_hostname=host)
            sock.sendall(head.encode("ascii"))
        except BaseException:
            sock.close()
            raise
        return Response(sock)

    def open(self, url: str, headers: dict[str, str]) -> Response:
        """:meth:`request`, its failures sorted: a TLS one is final, the others worth another attempt."""
        try:
            return self.request(url, headers)
        except (OSError, HttpError) as error:
            if is_tls_error(error):  # no retry mends a TLS mismatch or an untrusted certificate
                raise self.tls_failure(url, error) from None
            raise Transient(f"GET {url}: {error or type(error).__name__}") from None

    def tls_context(self) -> Any:
        """The TLS context for https registries (the system's CAs, or SSL_CERT_FILE's)."""
        if self.tls is None:
            import ssl  # here: a plain-HTTP registry never needs it

            self.tls = ssl.create_default_context()
        return self.tls

    def get(self, path: str, accept: str, what: str) -> Response:
        """GET under /v2/<repository>/: the 2xx response (redirects followed, credentials only at home)."""
        url, redirects, challenged = self.url(path), 0, False
        while True:
            at_home = origin(url) == self.home
            headers = {"Accept": accept, "User-Agent": PROG}
            if at_home and (self.token or self.credentials):
                headers["Authorization"] = self.token or self.credentials
            response = self.open(url, headers)
            code = response.status
            if 200 <= code < 300:
                return response
            location = response.getheader("Location", "") or ""
            challenge = response.getheader("WWW-Authenticate", "") or ""
            response.close()
            if code in (301, 302, 303, 307, 308) and location:
                redirects += 1
                if redirects > MAX_REDIRECTS:
                    raise Failure(f"registry {self.host} redirected {what} more than {MAX_REDIRECTS} times")
                url = urllib.parse.urljoin(url, location)
                continue
            if code == 401 and at_home and not challenged and challenge.lower().startswith("bearer"):
                challenged = True
                self.token = self.bearer_token(challenge)
                continue
            if code == 401 and at_home and not challenged and challenge.lower().startswith("basic"):
                challenged = True
                if self.credentials:
                    continue
            if code in (401, 403):
                if not at_home:
                    scheme, host, port = origin(url)
                    raise Failure(
                        f"registry {self.host} redirected {what} of {self.ref} to {host}:{port}, which asks "
                        f"for credentials (HTTP {code}); credentials for {self.host} are sent to no other "
                        "host:port"
                    )
                raise Failure(
                    f"registry {self.host} refused the credentials ({code}) for {self.ref}: check the auths "
                    f'entry for "{self.host}" in $DOCKER_CONFIG/config.json (the docker-config secret) or '
                    "KIT_USER/KIT_PASSWORD"
                )
            if code == 404 and path.startswith("manifests/"):
                raise Failure(f"ModelKit {self.ref} not found in registry {self.host} (HTTP 404)")
            if code == 404:
                raise Failure(
                    f"{what} of {self.ref} is missing from registry {self.host} "
                    "(HTTP 404: incomplete ModelKit)"
                )
            if code in (408, 429) or code >= 500:
                raise Transient(f"GET {url} answered HTTP {code}")
            raise Failure(f"registry {self.host} answered HTTP {code} to GET {url}")

    def tls_failure(self, url: str, error: BaseException) -> Failure:
        """What to do about a TLS failure: trust the registry's CA, or speak plain HTTP to it."""
        reason = getattr(error, "verify_message", "")  # an ssl.SSLCertVerificationError's
        if reason:
            return Failure(
                f"GET {url}: the certificate of registry {self.host} is not trusted here ({reason}): add the "
                "CA that signed it to the system's CAs, or name a file of CA certificates in SSL_CERT_FILE"
            )
        return Failure(
            f"GET {url}: {error}: if registry {self.host} serves plain HTTP, pass --plain-http "
            "(KIT_UNPACK_FLAGS=--plain-http for the storage initializer)"
        )

    def bearer_token(self, challenge: str) -> str:
        """The Bearer token a 401's challenge asks for (the distribution token protocol)."""
        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = fields.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise Failure(f"registry {self.host} asks for a token with no usable realm ({challenge[:120]})")
        query = {"scope": fields.get("scope") or f"repository:{self.repository}:pull"}
        if fields.get("service"):
            query["service"] = fields["service"]
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        headers = {"User-Agent": PROG}
        # The token service gets the login only when it is the registry itself (host and port).
        if self.credentials and origin(url) == self.home:
            headers["Authorization"] = self.credentials
        response = self.open(url, headers)
        try:
            body = response.read(TOKEN_CAP + 1)
        except (OSError, HttpError) as error:
            raise Transient(f"GET {realm}: {error or type(error).__name__}") from None
        finally:
            response.close()
        if response.status >= 500:
            raise Transient(f"token service {realm} answered HTTP {response.status}")
        if response.status != 200 or len(body) > TOKEN_CAP:
            elsewhere = "" if origin(url) == self.home else " (on another host:port: sent no credentials)"
            raise Failure(
                f"registry {self.host}'s token service {realm}{elsewhere} refused a token for {self.ref} "
                f"(HTTP {response.status})"
            )
        try:
            answer = json.loads(body)
            token = answer.get("token") or answer.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token or not token.isascii() or CONTROL.search(token):
            raise Failure(f"registry {self.host}'s token service {realm} answered no token")
        return f"Bearer {token}"


class Body:
    """A response body read up to the size its descriptor declares, never further."""

    def __init__(self, response: Response, size: int, what: str, host: str) -> None:
        self.response, self.size, self.what, self.host = response, size, what, host
        self.remaining = size
        if response.length is not None and response.length != size:
            response.close()
            raise Failure(
                f"registry {host} sends {response.length} bytes for {what}, its descriptor declares "
                f"{size}: refusing it (a blob is read only up to its declared size)"
            )

    def readinto(self, view: memoryview) -> int:
        """Fill ``view`` (at most the bytes still declared); 0 at the declared end."""
        if not self.remaining:
            return 0
        view = view[: self.remaining]
        try:
            got = self.response.readinto(view)
        except (OSError, HttpError) as error:
            raise Transient(
                f"reading {self.what} from {self.host}: {error or type(error).__name__}"
            ) from None
        if not got:
            done = self.size - self.remaining
            if not self.response.chunked:  # the connection closed before the Content-Length: a break
                raise Transient(f"the connection closed after {done} of the {self.size} bytes of {self.what}")
            raise Failure(
                f"registry {self.host} ended {self.what} after {done} bytes, "
                f"its descriptor declares {self.size}"
            )
        self.remaining -= got
        return got

    def finish(self) -> None:
        """The declared size was read: nothing may follow it."""
        try:
            extra = self.response.read(1) if self.response.length is None else b""
        except (OSError, HttpError):
            extra = b""
        self.response.close()
        if extra:
            raise Failure(
                f"registry {self.host} sends more than the {self.size} bytes declared for {self.what}: "
                "refusing it"
            )

    def close(self) -> None:
        """Drop the connection."""
        self.response.close()


class FileBody:
    """A blob file of an OCI layout, read up to its declared size (which its size must be)."""

    def __init__(self, path: str, size: int, what: str) -> None:
        self.handle = open(path, "rb", buffering=0)  # noqa: SIM115 (closed by finish/close)
        actual = os.fstat(self.handle.fileno()).st_size
        if actual != size:
            self.handle.close()
            raise Failure(f"{what} has the wrong size (manifest says {size} bytes): refusing to unpack")
        self.remaining = size

    def readinto(self, view: memoryview) -> int:
        """Fill ``view`` up to the declared size."""
        got = self.handle.readinto(view[: self.remaining]) if self.remaining else 0
        self.remaining -= got or 0
        return got or 0

    def finish(self) -> None:
        """Close the file."""
        self.handle.close()

    close = finish


def read_all(body: Body | FileBody, size: int) -> bytes:
    """The whole (small, capped) body."""
    buffer = bytearray(size)
    view, filled = memoryview(buffer), 0
    while filled < size:
        got = body.readinto(view[filled:])
        if not got:
            raise Failure("a blob file ended before its declared size")
        filled += got
    body.finish()
    return bytes(buffer)


# --- where the blobs come from ---------------------------------------------------------------------


class Source:
    """The registry (over HTTP) or an OCI image layout on disk."""

    def __init__(self, options: Options, parts: dict[str, str], authorization: str) -> None:
        self.options, self.ref = options, options.ref
        self.host, self.repository = parts["registry"], parts["repository"]
        self.layout = options.oci_layout
        self.registry = None
        if not self.layout:
            self.registry = Registry(self.host, self.repository, options.plain_http, authorization, self.ref)
        self.kind = "layout" if self.layout else "http"

    def manifest(self, reference: str, cap: int) -> bytes:
        """The manifest bytes of a tag or digest, at most ``cap`` bytes."""
        if self.registry is None:
            return self.layout_manifest(reference, cap)
        response = self.registry.get(f"manifests/{reference}", MANIFEST_TYPE, "the manifest")
        if response.length is not None and response.length > cap:
            response.close()
            raise Failure(
                f"the manifest of {self.ref} is larger than the cap of {cap} bytes (--max-manifest-bytes)"
            )
        try:
            data = response.read(cap + 1)
        except (OSError, HttpError) as error:
            raise Transient(f"reading the manifest of {self.ref}: {error or type(error).__name__}") from None
        finally:
            response.close()
        if len(data) > cap:
            raise Failure(
                f"the manifest of {self.ref} is larger than the cap of {cap} bytes (--max-manifest-bytes)"
            )
        return data

    def layout_manifest(self, reference: str, cap: int) -> bytes:
        """A manifest from the layout: by digest, or the one index.json tags ``reference``."""
        digest = reference
        if not SHA256.fullmatch(reference):
            try:
                with open(os.path.join(self.layout, "index.json"), "rb") as handle:
                    index = json.loads(handle.read(cap + 1))
                name = f"{self.host}/{self.repository}:{reference}"
                digest = next(
                    str(m.get("digest"))
                    for m in index.get("manifests", [])
                    if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name")
                    in (reference, name)
                )
            except (OSError, ValueError, AttributeError, StopIteration):
                raise Failure(
                    f"ModelKit {self.ref} not found in OCI layout {self.layout} "
                    f"(no manifest tagged {reference})"
                ) from None
        path = self.blob_path(digest, "manifest")
        if not os.path.isfile(path):
            raise Failure(f"ModelKit {self.ref} not found in {self.layout} (no manifest {digest})")
        if os.stat(path).st_size > cap:
            raise Failure(
                f"the manifest of {self.ref} is larger than the cap of {cap} bytes (--max-manifest-bytes)"
            )
        with open(path, "rb") as handle:
            return handle.read(cap + 1)

    def blob_path(self, digest: str, what: str) -> str:
        """The layout's file of a digest (which must be sha256:<64 hex>: it names a file)."""
        if not SHA256.fullmatch(digest):
            raise Failure(f"{what} of {self.ref} has an invalid digest {quoted(digest)}")
        return os.path.join(self.layout, "blobs", "sha256", digest[7:])

    def blob(self, digest: str, size: int, what: str) -> Body | FileBody:
        """A reader of a blob's bytes, bounded by its declared size."""
        if self.registry is None:
            path = self.blob_path(digest, what)
            if not os.path.isfile(path):
                raise Failure(
                    f"{what} {digest} of {self.ref} is missing from {self.layout} (incomplete ModelKit)"
                )
            return FileBody(path, size, f"{what} {digest} of {self.ref}")
        response = self.registry.get(f"blobs/{digest}", "*/*", f"{what} {digest}")
        return Body(response, size, f"{what} {digest}", self.host)


# --- the plan: manifest, config, the contract ------------------------------------------------------


def verified(data: bytes, digest: str, what: str, ref: str) -> bytes:
    """``data`` if it hashes to ``digest``; else a Failure."""
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise Failure(
            f"{what} of {ref} fails verification: expected {digest}, content hashes to {actual} "
            "(corrupted or tampered)"
        )
    return data


def descriptor_size(value: Any, what: str, ref: str) -> int:
    """A descriptor's size: a non-negative integer."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Failure(f"{what} of {ref} has no valid size in the manifest ({json.dumps(value)[:40]})")
    return value


class Layer:
    """One manifest layer with the Kitfile entry that vouches for it."""

    def __init__(self, digest: str, size: int, kind: str, gzip: bool, path: str, diff_id: str) -> None:
        self.digest, self.size, self.kind, self.gzip, self.path, self.diff_id = (
            digest,
            size,
            kind,
            gzip,
            path,
            diff_id,
        )
        self.where = f"layer {digest} ({kind} {path})"


def entries_of(config: dict[str, Any]) -> list[tuple[str, Any]]:
    """The Kitfile's entries that have layers, in kit's order: model, its parts, code, datasets, docs."""

    def array_of(value: Any, name: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise Refused(f"the config is not a Kitfile this unpack understands: {name} is not a list")
        return value

    model = config.get("model")
    if model is not None and not isinstance(model, dict):
        raise Refused("the config is not a Kitfile this unpack understands: model is not a mapping")
    entries: list[tuple[str, Any]] = []
    if model is not None and model.get("path") not in (None, ""):
        entries.append(("model", model))
    entries += [("modelpart", e) for e in array_of((model or {}).get("parts"), "model.parts")]
    entries += [("code", e) for e in array_of(config.get("code"), "code")]
    entries += [("dataset", e) for e in array_of(config.get("datasets"), "datasets")]
    entries += [("docs", e) for e in array_of(config.get("docs"), "docs")]
    return entries


def plan(manifest: dict[str, Any], config: dict[str, Any], max_layers: int) -> list[Layer]:
    """Pair each layer with its Kitfile entry (the n-th layer of a kind is the n-th entry of it)."""
    if not isinstance(config, dict) or not isinstance(config.get("manifestVersion"), str):
        raise Refused(
            "the config is not a Kitfile this unpack understands: it is not a Kitfile (no manifestVersion)"
        )
    descriptors = manifest["layers"]
    if len(descriptors) > max_layers:
        raise Refused(
            f"the manifest lists {len(descriptors)} layers, more than the cap of {max_layers} (--max-layers)"
        )
    entries = entries_of(config)
    by_kind: dict[str, list[Any]] = {}
    for kind, entry in entries:
        by_kind.setdefault(kind, []).append(entry)
    seen: dict[str, int] = {}
    layers = []
    for descriptor in descriptors:
        if not isinstance(descriptor, dict):
            raise Refused("a layer of the manifest is no descriptor")
        digest = descriptor.get("digest")
        shown = digest if isinstance(digest, str) else json.dumps(digest)
        media = descriptor.get("mediaType")
        match = LAYER_TYPE.fullmatch(media) if isinstance(media, str) else None
        if match is None:
            raise Refused(f"layer {shown} has media type {media}, which is no ModelKit layer type")
        kind, gzip = match[1], bool(match[2])
        index = seen.get(kind, 0)
        seen[kind] = index + 1
        kind_entries = by_kind.get(kind, [])
        if index >= len(kind_entries):
            raise Refused(
                f"layer {shown} ({kind}) is not declared in the Kitfile (it lists {len(kind_entries)} {kind} "
                f"entries; this is {kind} layer {index + 1})"
            )
        entry = kind_entries[index]
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or not path:
            raise Refused(f"layer {shown} ({kind}): its Kitfile entry has no path")
        if CONTROL.search(path):
            raise Refused(
                f"layer {shown} ({kind}): its Kitfile path {json.dumps(path)} contains control characters"
            )
        if entry.get("digest") != digest:
            said = entry.get("digest")
            said = "none" if said is None else said if isinstance(said, str) else json.dumps(said)
            raise Refused(f"layer {shown} ({kind} {path}): the Kitfile entry says digest {said}")
        diff_id = entry.get("diffId")
        if not isinstance(diff_id, str) or not SHA256.fullmatch(diff_id):
            raise Refused(f"layer {shown} ({kind} {path}): the Kitfile entry has no sha256 diffId")
        if not gzip and diff_id != digest:
            raise Refused(
                f"layer {shown} ({kind} {path}): an uncompressed layer must have diffId = digest, "
                f"the Kitfile "
                f"says {diff_id}"
            )
        if not SHA256.fullmatch(str(digest)):
            raise Refused(f"layer {shown} ({kind} {path}) has an invalid digest")
        size = descriptor_size(descriptor.get("size"), f"layer {digest}", "the ModelKit")
        layers.append(Layer(str(digest), size, kind, gzip, path, diff_id))
    for kind in sorted(by_kind):
        for entry in by_kind[kind][seen.get(kind, 0) :]:
            path = entry.get("path", "") if isinstance(entry, dict) else ""
            raise Refused(f"the Kitfile declares {kind} {path} but the manifest has no layer for it")
    for layer in layers:
        where = f"layer {layer.digest} ({layer.kind})"
        if layer.path.startswith("/"):
            raise Refused(f"{where}: its Kitfile path {layer.path} is absolute")
        if has_dotdot(layer.path):
            raise Refused(f"{where}: its Kitfile path {layer.path} leaves the ModelKit")
    return layers


# --- the Kitfile, as YAML that kit pack accepts -------------------------------------------------------

PLAIN = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9 _./+-]*")
YAML_WORDS = re.compile(r"(true|false|yes|no|on|off|y|n|null|~)", re.IGNORECASE)


def yaml_scalar(value: Any) -> str:
    """A scalar as YAML: plain where that reads back as the same string, else JSON (valid YAML)."""
    if isinstance(value, str):
        plain = PLAIN.fullmatch(value) and not value.endswith(" ") and not YAML_WORDS.fullmatch(value)
        return value if plain and not re.fullmatch(r"[-+0-9._ ]+", value) else json.dumps(value)
    return "null" if value is None else json.dumps(value)


def yaml_flow(value: Any) -> str:
    """A value on one line."""
    if isinstance(value, list):
        return "[" + ", ".join(yaml_scalar(v) for v in value) + "]" if value else "[]"
    return "{}" if isinstance(value, dict) else yaml_scalar(value)


def is_flow(value: Any) -> bool:
    """Written on one line: a scalar, an empty collection, a list of scalars."""
    if not isinstance(value, dict | list) or not value:
        return True
    return isinstance(value, list) and all(not isinstance(v, dict | list) for v in value)


def yaml_lines(value: Any, indent: str) -> list[str]:
    """Block YAML of a mapping or list."""
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if is_flow(item):
                lines.append(f"{indent}{yaml_scalar(key)}: {yaml_flow(item)}")
            else:
                lines += [f"{indent}{yaml_scalar(key)}:", *yaml_lines(item, indent + "  ")]
        return lines
    for item in value:
        if is_flow(item):
            lines.append(f"{indent}- {yaml_flow(item)}")
        else:
            inner = yaml_lines(item, indent + "  ")
            lines += [f"{indent}- {inner[0][len(indent) + 2 :]}", *inner[1:]]
    return lines


def kitfile_yaml(config: dict[str, Any]) -> str:
    """The Kitfile as kit unpack writes it: the config without the per-layer digest and diffId."""

    def layer_info(entry: Any) -> Any:
        return (
            {k: v for k, v in entry.items() if k not in ("digest", "diffId")}
            if isinstance(entry, dict)
            else entry
        )

    kitfile = dict(config)
    if isinstance(kitfile.get("model"), dict):
        model = layer_info(kitfile["model"])
        if isinstance(model.get("parts"), list):
            model["parts"] = [layer_info(p) for p in model["parts"]]
        kitfile["model"] = model
    for section in ("code", "datasets", "docs"):
        if isinstance(kitfile.get(section), list):
            kitfile[section] = [layer_info(e) for e in kitfile[section]]
    kitfile = {k: v for k, v in kitfile.items() if v is not None}
    return "".join(line + "\n" for line in yaml_lines(kitfile, ""))


# --- gunzip ---------------------------------------------------------------------------------------


class GzipError(Exception):
    """The layer is no valid gzip stream."""


def gzip_message(error: zlib.error) -> str:
    """What GNU gzip says where zlib says this."""
    said = str(error)
    if "incorrect header check" in said or "unknown compression method" in said:
        return "gzip: stdin: not in gzip format"
    if "incorrect data check" in said:
        return "gzip: stdin: invalid compressed data--crc error"
    if "incorrect length check" in said:
        return "gzip: stdin: invalid compressed data--length error"
    return "gzip: stdin: invalid compressed data--format violated"


class Gunzip:
    """A gzip stream: one member, or several concatenated (RFC 1952).

    Concatenated members are read as one stream, as Go's gzip reader (kit's) reads them;
    anything after the last member that is not a whole member (zero padding included) is
    refused, because readers disagree about it (GNU gzip ignores zeros, Go's reader fails).
    """

    def __init__(self) -> None:
        self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.started = False  # bytes of the current member were fed

    def feed(self, data: memoryview | bytes) -> Iterator[bytes]:
        """The uncompressed bytes these compressed bytes give, in pieces of at most INFLATED."""
        while data:
            if self.inflater.eof:  # a member ended: only another member may follow
                if bytes(data[:2]) != b"\x1f\x8b"[: len(data[:2])]:
                    raise GzipError("gzip: trailing data after the last gzip member")
                self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self.started = True
            try:
                out = self.inflater.decompress(data, INFLATED)
            except zlib.error as error:
                raise GzipError(gzip_message(error)) from None
            if out:
                yield out
            data = self.inflater.unused_data if self.inflater.eof else self.inflater.unconsumed_tail

    def finish(self) -> Iterator[bytes]:
        """The last uncompressed bytes; a stream that stops inside a member is cut short."""
        if self.inflater.eof:
            return
        try:
            out = self.inflater.flush()
        except zlib.error as error:
            raise GzipError(gzip_message(error)) from None
        if out:
            yield out
        if not self.inflater.eof:
            raise GzipError("gzip: stdin: unexpected end of file")


# --- the tar reader ---------------------------------------------------------------------------------


class TarReader:
    """A push-fed tar reader: checks each member header, then writes the member into the stage.

    What it learns (files, symlinks, directories made, bytes extracted) holds across layers.
    """

    HEADER, SKIP, DATA, EXTENDED, TRAILER = range(5)

    def __init__(self, stage: str, max_bytes: int, cap_source: str) -> None:
        self.stage = stage
        self.max_bytes = max_bytes
        self.cap_source = cap_source
        self.extracted = 0
        self.files = 0
        # Kitfile: written from the config at the end; kit never packs one into a layer.
        self.seen: dict[str, str] = {"Kitfile": "K"}
        self.symlinks: set[str] = set()
        self.made: set[str] = set()
        self.fd = -1
        self.where = ""

    def start_layer(self, where: str, entry_path: str) -> None:
        """Begin a layer's archive: ``where`` names it in refusals; its members lie under ``entry_path``."""
        self.where = where
        self.entry_path = entry_path
        self.state = self.HEADER
        self.header = bytearray()
        self.pad = 0
        self.remaining = 0
        self.extended = bytearray()
        self.trailing = 0
        self.pax: dict[bytes, str] = {}
        self.long_name = self.long_link = ""

    def refuse(self, why: str) -> Refused:
        """The refusal to raise, naming the layer."""
        return Refused(f"{self.where}: {why}")

    def feed(self, data: memoryview | bytes) -> None:
        """The next bytes of the archive: headers checked, members written as they arrive."""
        view = memoryview(data)
        while view:
            state = self.state
            if state == self.DATA:
                n = min(self.remaining, len(view))
                chunk = view[:n]
                while chunk:
                    chunk = chunk[os.write(self.fd, chunk) :]
                view = view[n:]
                self.remaining -= n
                if not self.remaining:
                    self.end_file()
            elif state == self.SKIP:
                n = min(self.pad, len(view))
                view = view[n:]
                self.pad -= n
                if not self.pad:
                    self.state = self.HEADER
            elif state == self.HEADER:
                if not self.header and len(view) >= 512:
                    block = bytes(view[:512])
                    view = view[512:]
                else:
                    n = min(512 - len(self.header), len(view))
                    self.header += view[:n]
                    view = view[n:]
                    if len(self.header) < 512:
                        continue
                    block = bytes(self.header)
                    self.header = bytearray()
                self.on_header(block)
            elif state == self.EXTENDED:
                n = min(self.remaining, len(view))
                self.extended += view[:n]
                view = view[n:]
                self.remaining -= n
                if not self.remaining:
                    self.on_extended()
            else:  # TRAILER: after the end-of-archive marker only zeros, and at most TRAILER_CAP of them
                self.trailing += len(view)
                if not all_zero(view):
                    raise self.refuse("data follows the end-of-archive marker (only zero padding may)")
                if self.trailing > TRAILER_CAP:
                    raise self.refuse(f"more than {TRAILER_CAP} bytes follow the end-of-archive marker")
                return

    def finish(self) -> None:
        """The layer's stream ended: it must have ended the archive."""
        if self.state == self.EXTENDED:
            raise self.refuse("the tar stream ends inside a member")
        if self.state != self.TRAILER:
            self.close_file()
            raise self.refuse("the tar stream ends without an end-of-archive marker")

    @staticmethod
    def field(block: bytes, offset: int, length: int) -> bytes:
        """A header field up to its first NUL."""
        return block[offset : offset + length].split(b"\0", 1)[0]

    def on_header(self, block: bytes) -> None:
        """A 512-byte header: the end of the archive, an extended header, or a member to check."""
        if block == ZERO_BLOCK:
            self.state = self.TRAILER
            return
        field = self.field
        for offset, length in ((0, 100), (157, 100), (345, 155)):
            if HEADER_CONTROL.search(field(block, offset, length)):
                raise self.refuse("a member name contains control characters (a newline?)")
        name = text(field(block, 0, 100))
        kind = text(field(block, 156, 1))
        link = text(field(block, 157, 100))
        magic = field(block, 257, 6)
        mode = text(field(block, 100, 8)).strip()
        # The header's checksum: a block that is no tar header (a second archive's noise, a
        # misread offset) is refused instead of read as one.
        stored = text(field(block, 148, 8)).strip()
        actual = sum(block[:148]) + 8 * 32 + sum(block[156:])
        if not OCTAL_SIZE.fullmatch(stored or "x") or int(stored, 8) != actual:
            raise self.refuse("a tar header fails its checksum (not a tar stream, or corrupted)")
        size = 0
        if b"size" not in self.pax or kind in ("x", "g", "L", "K"):
            if block[124] >= 0x80:
                raise self.refuse(f"member {name} uses a base-256 size (not supported)")
            size_field = text(field(block, 124, 12)).replace(" ", "") or "0"
            if not OCTAL_SIZE.fullmatch(size_field):
                raise self.refuse(f"member {name} has a malformed size field")
            size = int(size_field, 8)
        if kind in ("x", "g", "L", "K"):
            if size > MIB:
                raise self.refuse(f"an extended header of {size} bytes (more than 1 MiB)")
            self.extended_kind, self.extended_size = kind, size
            self.extended = bytearray()
            self.remaining = (size + 511) // 512 * 512
            self.state = self.EXTENDED
            if not self.remaining:
                self.on_extended()
            return
        pax = self.pax
        if b"path" in pax:
            path = pax[b"path"]
        elif self.long_name:
            path = self.long_name
        else:
            path = name
            # Only POSIX ustar headers have a prefix field; in GNU headers those bytes mean other things.
            if magic == b"ustar":
                prefix = text(field(block, 345, 155))
                if prefix:
                    path = f"{prefix}/{name}"
        target = pax.get(b"linkpath") or self.long_link or link
        if b"size" in pax:
            if not DECIMAL.fullmatch(pax[b"size"]):
                raise self.refuse(f"member {path} has a malformed pax size")
            size = int(pax[b"size"])
        self.pax = {}
        self.long_name = self.long_link = ""
        kind = kind or "0"
        member = self.check_member(kind, path, target, size)
        self.write_member(kind, member, target, size, mode)

    def on_extended(self) -> None:
        """The data of a pax (x, g) or GNU long name (L, K) header is complete."""
        data = bytes(self.extended[: self.extended_size])
        self.extended = bytearray()
        self.state = self.HEADER
        kind = self.extended_kind
        if kind in ("x", "g"):
            records = self.parse_pax(data)
            if kind == "g":
                if b"path" in records or b"linkpath" in records or b"size" in records:
                    raise self.refuse("a global pax header sets a path or size")
                return
            self.pax.update(records)
            return
        if b"\n" in data.replace(b"\0", b""):
            raise self.refuse("a member name contains a newline")
        value = text(data.split(b"\0", 1)[0])
        if kind == "L":
            self.long_name = value
        else:
            self.long_link = value

    def parse_pax(self, data: bytes) -> dict[bytes, str]:
        """The records of a pax header; a record the rules do not know is refused."""
        records: dict[bytes, str] = {}
        rest = data
        while rest:
            space = rest.find(b" ")
            if space <= 0 or not rest[:space].isdigit():
                raise self.refuse("malformed pax header record")
            length = int(rest[:space])
            record = rest[:length]
            if length > len(rest) or not record.endswith(b"\n"):
                raise self.refuse("malformed pax header record (a newline in a value?)")
            match = PAX_RECORD.fullmatch(record[:-1])
            if not match:
                raise self.refuse("malformed pax header record")
            key = match[2]
            if key not in PAX_KNOWN:
                shown = key.decode("ascii", "backslashreplace")
                raise self.refuse(
                    f"pax record {shown} is not one this unpack understands (refused, not ignored)"
                )
            value = text(match[3])
            if key in (b"path", b"linkpath") and ("\n" in value or "\0" in value):
                raise self.refuse("a member name contains control characters (a newline?)")
            records[key] = value
            rest = rest[length:]
        return records

    def check_member(self, kind: str, raw: str, target: str, size: int) -> str:
        """Refuse the member, or return its normalized path."""
        refuse = self.refuse
        if CONTROL.search(raw) or CONTROL.search(target):
            raise refuse(f"member {quoted(raw)} contains control characters")
        if raw.startswith("/"):
            raise refuse(f"member {raw} has an absolute path")
        if has_dotdot(raw):
            raise refuse(f"member {raw} contains a '..' path component")
        path = normalize(raw)
        if path.startswith("/"):
            raise refuse(f"member {raw} has an absolute path")
        if not path:
            if kind != "5":
                raise refuse(f"member '{raw}' has no name")
            return path
        # Every member lies under its entry's path; kit also writes the directories above that path.
        entry = self.entry_path
        if entry and path != entry and not path.startswith(entry + "/"):
            if not (kind == "5" and entry.startswith(path + "/")):
                raise refuse(f"member {path} lies outside the entry's path {entry}")
        # Nothing may be written through a symlink or under a file: then every write stays inside.
        prefix = path
        while "/" in prefix:
            prefix = prefix.rsplit("/", 1)[0]
            if prefix in self.symlinks:
                raise refuse(f"member {path} would be written through the symlink {prefix}")
            if self.seen.get(prefix, "5") != "5":
                raise refuse(f"member {path} would be written under the file {prefix}")
        if path in self.symlinks:
            raise refuse(f"member {path} replaces the symlink {path}")
        seen = self.seen.get(path)
        if seen and kind + seen != "55":
            if path == "Kitfile":
                raise refuse("member Kitfile would replace the Kitfile written from the config")
            raise refuse(f"member {path} appears twice (a duplicate entry would replace what was checked)")
        if kind in ("0", "7"):
            if self.extracted + size > self.max_bytes:
                raise refuse(
                    f"member {path} ({size} bytes) would take the extracted bytes past the cap of "
                    f"{self.max_bytes} ({self.cap_source})"
                )
            self.extracted += size
        elif kind == "5":
            pass
        elif kind == "2":
            if target.startswith("/"):
                raise refuse(f"symlink {path} points to the absolute path {target}")
            depth = path.count("/")
            for part in target.split("/"):
                if part in ("", "."):
                    continue
                depth += -1 if part == ".." else 1
                if depth < 0:
                    raise refuse(f"symlink {path} -> {target} leaves the extract path")
            self.symlinks.add(path)
        elif kind == "1":
            if target.startswith("/") or has_dotdot(target):
                raise refuse(f"hard link {path} -> {target} leaves the extract path")
            if self.seen.get(normalize(target)) != "0":
                raise refuse(f"hard link {path} -> {target} does not point to a file of this ModelKit")
        elif kind in ("3", "4"):
            raise refuse(f"member {path} is a device node")
        elif kind == "6":
            raise refuse(f"member {path} is a FIFO")
        else:
            raise refuse(f"member {path} has the unsupported tar type {quoted(kind)}")
        self.seen[path] = "0" if kind == "7" else kind
        return path

    def make_parent(self, path: str) -> None:
        """Create the directories above a member (never through a symlink: checked)."""
        if "/" not in path:
            return
        directory = path.rsplit("/", 1)[0]
        if directory in self.made:
            return
        os.makedirs(f"{self.stage}/{directory}", mode=0o755, exist_ok=True)
        while True:
            self.made.add(directory)
            self.seen.setdefault(directory, "5")
            if "/" not in directory:
                break
            directory = directory.rsplit("/", 1)[0]

    def write_member(self, kind: str, path: str, target: str, size: int, mode: str) -> None:
        """Write a checked member into the stage (a file's data follows in the stream).

        Modes are reduced to 0644 or 0755 (any execute bit): no setuid, setgid or sticky bit,
        no group- or world-writable file.
        """
        file = f"{self.stage}/{path}"
        if kind in ("0", "7"):
            self.make_parent(path)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            executable = bool(OCTAL_SIZE.fullmatch(mode or "0") and int(mode or "0", 8) & 0o111)
            self.fd = os.open(file, flags, 0o755 if executable else 0o644)
            self.files += 1
            self.remaining = size
            self.pad = (512 - size % 512) % 512
            self.state = self.DATA
            if not size:
                self.end_file()
        elif kind == "5":
            if path:
                self.make_parent(f"{path}/.")
        elif kind == "2":
            self.make_parent(path)
            os.symlink(target, file)
        elif kind == "1":
            self.make_parent(path)
            os.link(f"{self.stage}/{normalize(target)}", file, follow_symlinks=False)

    def end_file(self) -> None:
        """A file's data is written: close it."""
        self.close_file()
        self.state = self.SKIP if self.pad else self.HEADER

    def close_file(self) -> None:
        """Close the file being written, if any."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# --- one pass per layer --------------------------------------------------------------------------


class HashingThread:
    """The layer's sha256 (and diffId) computed in a second thread while this one reads and writes.

    hashlib lets go of the GIL while it hashes a piece, and recv/inflate/write let go of it in the
    syscall, so on two cores the hash of one piece runs beside the reading and writing of the
    next: verification costs CPU time, not the wall time of the transfer. The thread takes the
    pieces in order from one queue. Bounded: the reads go round a pool of PIECES buffers (a
    buffer is refilled only once hashed), and at most PIECES inflated pieces wait to be hashed.
    """

    PIECES = 8

    def __init__(self) -> None:
        self.work: queue.SimpleQueue[tuple[Any, Any, bytearray | None] | None] = queue.SimpleQueue()
        self.free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self.inflated_slots = threading.BoundedSemaphore(self.PIECES)
        for _ in range(self.PIECES):
            self.free.put(bytearray(CHUNK))
        self.thread = threading.Thread(target=self.run, name="hash", daemon=True)
        self.thread.start()

    def run(self) -> None:
        """Hash each piece in order; give its buffer back (or its slot)."""
        while True:
            item = self.work.get()
            if item is None:
                return
            digest, piece, buffer = item
            digest.update(piece)
            if buffer is not None:
                self.free.put(buffer)
            else:
                self.inflated_slots.release()

    def buffer(self) -> bytearray:
        """A buffer to read into (waits while every buffer is still being hashed)."""
        return self.free.get()

    def hash_read(self, digest: Any, buffer: bytearray, got: int) -> None:
        """Hash the first ``got`` bytes read into ``buffer``, which then returns to the pool."""
        self.work.put((digest, memoryview(buffer)[:got], buffer))

    def hash_inflated(self, digest: Any, piece: bytes) -> None:
        """Hash an inflated piece (waits while PIECES of them are queued)."""
        self.inflated_slots.acquire()
        self.work.put((digest, piece, None))

    def finish(self) -> None:
        """Wait until every queued piece is hashed."""
        self.work.put(None)
        self.thread.join()


def extract_layer(source: Source, reader: TarReader, layer: Layer) -> None:
    """One layer in one pass: fetch (bounded), hash, gunzip, hash, check and write each member, verify.

    The hashes run beside the reads and writes (:class:`HashingThread`); each digest is compared
    once the layer's last piece is hashed, before the layer counts as extracted.
    """
    reader.start_layer(layer.where, normalize(layer.path))
    body = source.blob(layer.digest, layer.size, "layer")
    compressed = hashlib.sha256()
    gunzip = Gunzip() if layer.gzip else None
    uncompressed = hashlib.sha256()
    hashing = HashingThread()
    try:
        try:
            while True:
                buffer = hashing.buffer()
                got = body.readinto(memoryview(buffer))
                if not got:
                    hashing.free.put(buffer)
                    break
                hashing.hash_read(compressed, buffer, got)
                view = memoryview(buffer)[:got]
                if gunzip is None:
                    reader.feed(view)
                    continue
                for out in gunzip.feed(view):
                    hashing.hash_inflated(uncompressed, out)
                    reader.feed(out)
            body.finish()
            if gunzip is not None:
                for out in gunzip.finish():
                    hashing.hash_inflated(uncompressed, out)
                    reader.feed(out)
        except GzipError as error:
            raise reader.refuse(f"not a valid gzip stream (corrupted or tampered; {error})") from None
        reader.finish()
    finally:
        hashing.finish()
        reader.close_file()
        body.close()
    actual = "sha256:" + compressed.hexdigest()
    if actual != layer.digest:
        raise Failure(
            f"layer of {source.ref} fails verification: expected {layer.digest}, content hashes to {actual} "
            "(corrupted or tampered)"
        )
    if gunzip is not None:
        actual = "sha256:" + uncompressed.hexdigest()
        if actual != layer.diff_id:
            raise reader.refuse(
                f"the uncompressed layer hashes to {actual}, but the Kitfile's diffId is {layer.diff_id}"
            )


# --- the command line ----------------------------------------------------------------------------


class Options:
    """What to unpack, where, and the limits."""

    def __init__(self) -> None:
        self.ref = ""
        self.extract = ""
        self.plain_http = False
        self.artifact_dir = ""
        self.model_path_output = "/tmp/outputs/model_path"
        self.oci_layout = ""
        self.max_bytes: int | None = None
        self.max_manifest_bytes = int(LIMITS["max_manifest_bytes"][2])
        self.max_config_bytes = int(LIMITS["max_config_bytes"][2])
        self.max_layers = int(LIMITS["max_layers"][2])
        self.storage_initializer = False


USAGE = (
    f"usage: {PROG} <modelkit_reference> [extract_path] [--plain-http true|false] [--artifact-dir DIR] "
    "[--model-path-output FILE] [--oci-layout DIR] [--max-bytes N] [--max-manifest-bytes N] "
    "[--max-config-bytes N] [--max-layers N]"
)


def number(value: str, flag: str) -> int:
    """A byte count or count given on the command line."""
    if not DECIMAL.fullmatch(value):
        raise Failure(f"{flag} must be a number, got {quoted(value)}", USAGE_STATUS)
    return int(value)


def limits_from_environment(options: Options) -> None:
    """The UNPACK_MAX_* variables (flags given later win)."""
    for name, (_, variable, _) in LIMITS.items():
        if os.environ.get(variable):
            setattr(options, name, number(os.environ[variable], variable))


def parse_unpack(argv: list[str]) -> Options:
    """The unpack step's command line."""
    options = Options()
    limits_from_environment(options)
    positional: list[str] = []
    flags = {"--plain-http", "--artifact-dir", "--model-path-output", "--oci-layout", "--max-bytes"}
    flags |= {flag for flag, _, _ in LIMITS.values()}
    while argv:
        arg = argv.pop(0)
        if arg == "--":
            positional += argv
            break
        if arg in flags:
            if not argv:
                raise Failure(f"option {arg} needs a value; {USAGE}", USAGE_STATUS)
            value = argv.pop(0)
            if arg == "--plain-http":
                if value.lower() not in ("true", "false"):
                    raise Failure(f"--plain-http must be true or false, got '{value}'", USAGE_STATUS)
                options.plain_http = value.lower() == "true"
            elif arg == "--max-bytes":
                options.max_bytes = number(value, arg)
            elif arg in ("--artifact-dir", "--model-path-output", "--oci-layout"):
                setattr(options, arg[2:].replace("-", "_"), value)
            else:
                setattr(options, arg[2:].replace("-", "_"), number(value, arg))
        elif arg.startswith("--"):
            raise Failure(f"unknown option {arg}; {USAGE}", USAGE_STATUS)
        else:
            positional.append(arg)
    if not 1 <= len(positional) <= 2:
        raise Failure(USAGE, USAGE_STATUS)
    options.ref = positional[0].removeprefix("kit://")
    options.extract = (positional[1] if len(positional) > 1 else "") or options.artifact_dir or "/tmp/model"
    return options


def parse_storage_initializer(argv: list[str]) -> Options:
    """KServe's storage initializer: ``kit://<reference> <dest>``, KIT_UNPACK_FLAGS."""
    global PROG
    PROG = "kit-storage-initializer"
    usage = "usage: kit-storage-initializer <kit://reference> <dest-path>"
    if len(argv) != 2:
        raise Failure(usage, USAGE_STATUS)
    uri, dest = argv
    if not uri.startswith("kit://"):
        raise Failure(f"storage URI {uri} does not start with kit://", USAGE_STATUS)
    if not dest:
        raise Failure("the destination path is empty", USAGE_STATUS)
    check_reference(uri[len("kit://") :], "storage URI kit://")
    import shlex  # here: only the storage initializer reads a flag string

    try:
        flags = shlex.split(os.environ.get("KIT_UNPACK_FLAGS", ""))
    except ValueError as error:
        raise Failure(f"KIT_UNPACK_FLAGS cannot be read: {error}", USAGE_STATUS) from None
    unpack_argv: list[str] = []
    while flags:
        flag = flags.pop(0)
        name, _, value = flag.partition("=")
        if name in ("-v", "--verbose", "-q", "--quiet"):
            continue
        if name == "--plain-http":
            unpack_argv += ["--plain-http", value or "true"]
        elif name in ("--max-bytes", *(f for f, _, _ in LIMITS.values())):
            if not value:
                if not flags:
                    raise Failure(f"KIT_UNPACK_FLAGS: {name} needs a value", USAGE_STATUS)
                value = flags.pop(0)
            unpack_argv += [name, value]
        else:
            raise Failure(
                f"KIT_UNPACK_FLAGS: {flag} is not a flag this storage initializer knows "
                "(known: --plain-http, "
                "-v, --max-bytes, --max-manifest-bytes, --max-config-bytes, --max-layers)",
                USAGE_STATUS,
            )
    options = parse_unpack([*unpack_argv, "--model-path-output", "", "--", uri, dest])
    options.storage_initializer = True
    return options


def authorization_for(options: Options, host: str) -> str:
    """The login for the registry: KIT_USER/KIT_PASSWORD (storage initializer), else DOCKER_CONFIG."""
    user, password = os.environ.get("KIT_USER", ""), os.environ.get("KIT_PASSWORD", "")
    if options.storage_initializer and user and password:
        log(f"logging in to {host} as {user}")
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    if options.oci_layout:
        return ""
    return docker_config_authorization(host)


def retrying(action: Callable[[], Any], what: str) -> Any:
    """Run ``action``; a transient failure is retried (KIT_RETRIES, KIT_RETRY_DELAY doubling)."""
    attempts = number(os.environ.get("KIT_RETRIES") or "3", "KIT_RETRIES")
    delay = float(number(os.environ.get("KIT_RETRY_DELAY") or "2", "KIT_RETRY_DELAY"))
    attempt = 1
    while True:
        try:
            return action()
        except Transient as error:
            if attempt >= attempts:
                raise Failure(f"{what} failed: {error} (after {attempt} attempts)", 1) from None
            log(f"WARNING: {what} failed: {error} (attempt {attempt}/{attempts}), retrying in {delay:g}s")
            time.sleep(delay)
            attempt += 1
            delay *= 2


def free_space_cap(directory: str) -> int:
    """Free bytes where the files go, minus a margin."""
    stat = os.statvfs(directory)
    return max(stat.f_bavail * stat.f_frsize - FREE_SPACE_MARGIN, 0)


def remove_tree(path: str) -> None:
    """Remove a stage and all in it (shutil is imported only when one must go: most unpacks never)."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def make_stage(parent: str, name: str) -> str:
    """A new private directory ``parent/.unpack-<name>.<random>`` (tempfile.mkdtemp without its imports)."""
    while True:
        stage = os.path.join(parent, f".unpack-{name}.{os.urandom(6).hex()}")
        try:
            os.mkdir(stage, 0o700)
            return stage
        except FileExistsError:
            continue


def unpack(options: Options) -> dict[str, Any]:
    """Fetch, check and extract; the JSON answer."""
    start = time.perf_counter()
    parts = check_reference(options.ref, "reference")
    ref = options.ref
    extract = options.extract.rstrip("/")
    if not extract:
        raise Failure("the extract path cannot be /", USAGE_STATUS)
    into_existing = os.path.isdir(extract) and not os.path.islink(extract)
    if os.path.lexists(extract) and not (into_existing and not os.listdir(extract)):
        raise Failure(
            f"extract path {extract} exists and is not an empty directory (unpack never overwrites)"
        )
    source = Source(options, parts, authorization_for(options, parts["registry"]))
    name = f"{parts['registry']}/{parts['repository']}"
    wanted = parts["digest"] or parts["tag"] or "latest"
    log(f"fetching {name}@{wanted} ({source.kind})")
    raw = retrying(
        lambda: source.manifest(wanted, options.max_manifest_bytes), f"fetching the manifest of {ref}"
    )
    fetched = "sha256:" + hashlib.sha256(raw).hexdigest()
    digest = parts["digest"] or fetched
    verified(raw, digest, "manifest", ref)
    try:
        manifest = json.loads(raw)
    except ValueError:
        manifest = None
    if not (
        isinstance(manifest, dict)
        and isinstance(manifest.get("layers"), list)
        and isinstance(manifest.get("config"), dict)
    ):
        raise Failure(f"{ref} ({digest}) is not an OCI image manifest")
    config_descriptor = manifest["config"]
    config_type = config_descriptor.get("mediaType")
    if config_type == MODELPACK_CONFIG_TYPE:
        raise Failure(
            f"{ref} is a CNCF ModelPack artifact: only KitOps ModelKits (config {KITOPS_CONFIG_TYPE}) "
            "can be unpacked"
        )
    if config_type != KITOPS_CONFIG_TYPE:
        raise Failure(f"{ref} is not a ModelKit (config media type '{config_type or 'none'}')")
    config_digest = config_descriptor.get("digest")
    if not isinstance(config_digest, str) or not SHA256.fullmatch(config_digest):
        raise Failure(f"config of {ref} has an invalid digest {quoted(str(config_digest))}")
    config_size = descriptor_size(config_descriptor.get("size"), "the config", ref)
    if config_size > options.max_config_bytes:
        raise Failure(
            f"the config of {ref} declares {config_size} bytes, "
            f"more than the cap of {options.max_config_bytes} "
            "(--max-config-bytes)"
        )
    config_bytes = retrying(
        lambda: read_all(source.blob(config_digest, config_size, "config"), config_size),
        f"fetching the config of {ref}",
    )
    verified(config_bytes, config_digest, "config", ref)
    try:
        config = json.loads(config_bytes)
    except ValueError:
        raise Refused(
            f"the config of {digest} is not a Kitfile this unpack understands: it is not JSON"
        ) from None
    layers = plan(manifest, config, options.max_layers)
    log(f"the config vouches for all {len(layers)} layer(s) of {digest}")
    fetched_at = time.perf_counter()

    parent = os.path.dirname(extract) or "."
    os.makedirs(parent, exist_ok=True)
    # Staging: beside the extract path, renamed into place; into an existing empty directory
    # (a mount point such as KServe's /mnt/models cannot be replaced), inside it, moved up.
    stage_parent = extract if into_existing else parent
    if options.max_bytes is None:
        max_bytes = free_space_cap(stage_parent)
        cap_source = f"free space of {stage_parent} minus 64 MiB; --max-bytes sets it"
    else:
        max_bytes, cap_source = options.max_bytes, "--max-bytes"
    attempts = number(os.environ.get("KIT_RETRIES") or "3", "KIT_RETRIES")
    delay = float(number(os.environ.get("KIT_RETRY_DELAY") or "2", "KIT_RETRY_DELAY"))
    attempt = 1
    while True:
        stage = make_stage(stage_parent, os.path.basename(extract))
        try:
            reader = TarReader(stage, max_bytes, cap_source)
            for layer in layers:
                extract_layer(source, reader, layer)
            break
        except Transient as error:
            remove_tree(stage)
            if attempt >= attempts:
                raise Failure(
                    f"fetching the layers of {ref} broke off: {error} (after {attempt} attempts)", 1
                ) from None
            log(
                f"WARNING: fetching {reader.where or 'the layers'} failed: {error} "
                f"(attempt {attempt}/{attempts}), retrying in {delay:g}s"
            )
            time.sleep(delay)
            attempt += 1
            delay *= 2
        except BaseException:
            remove_tree(stage)
            raise
    extracted_at = time.perf_counter()
    log(
        f"extracted {len(layers)} layer(s), {reader.extracted} bytes, {reader.files} file(s), "
        "every member checked"
    )
    try:
        finish(stage, extract, into_existing, kitfile_yaml(config), reader.symlinks)
    except BaseException:
        remove_tree(stage)
        raise
    if options.artifact_dir and options.artifact_dir != extract:
        os.makedirs(options.artifact_dir, exist_ok=True)
        import shutil  # here: only a run with an artifact directory beside the extract path copies

        shutil.copytree(extract, options.artifact_dir, symlinks=True, dirs_exist_ok=True)
    if options.model_path_output:
        os.makedirs(os.path.dirname(options.model_path_output) or ".", exist_ok=True)
        with open(options.model_path_output + ".partial", "w", encoding="utf-8") as handle:
            handle.write(extract)
        os.replace(options.model_path_output + ".partial", options.model_path_output)
    log(f"unpacked {name}@{digest} to {extract}")
    done = time.perf_counter()
    return {
        "status": "success",
        "model_path": extract,
        "reference": f"{name}@{digest}",
        "seconds": {
            "pull": round(fetched_at - start, 3),
            "layers": round(extracted_at - fetched_at, 3),
            "finish": round(done - extracted_at, 3),
        },
        "fetch": source.kind,
    }


def finish(stage: str, extract: str, into_existing: bool, kitfile: str, symlinks: set[str]) -> None:
    """Write the Kitfile, check the links, put the stage in place.

    Each link was checked alone as it was written; together they might still leave the stage.
    """
    with open(os.path.join(stage, "Kitfile"), "x", encoding="utf-8") as handle:
        handle.write(kitfile)
    real = os.path.realpath(stage)
    for link in sorted(symlinks):
        resolved = os.path.realpath(os.path.join(stage, link))
        if resolved != real and not resolved.startswith(real + "/"):
            raise Refused(f"symlink {link} resolves outside the extract path")
    os.chmod(stage, 0o755)
    if into_existing:
        if set(os.listdir(extract)) != {os.path.basename(stage)}:
            raise Failure(f"extract path {extract} was written to while unpacking")
        for entry in os.listdir(stage):
            os.rename(os.path.join(stage, entry), os.path.join(extract, entry))
        os.rmdir(stage)
        return
    if os.path.lexists(extract):
        if not os.path.isdir(extract) or os.listdir(extract):
            raise Failure(f"extract path {extract} was written to while unpacking")
        os.rmdir(extract)
    os.rename(stage, extract)


def help_text() -> str:
    """What ``--help`` prints: both command lines, the limits with their defaults, the exit statuses."""
    limits = "".join(
        f"  {flag} N (or {variable}; default {default})\n" for flag, variable, default in LIMITS.values()
    )
    return (
        f"{USAGE}\n"
        "   or: storage-initializer kit://<reference> <dest>  (KServe's; flags from KIT_UNPACK_FLAGS)\n\n"
        "Pull a ModelKit, verify every blob (digest, size, diffId) and every tar member, and write\n"
        "its files under extract_path; nothing is written outside it.\n\n"
        f"limits:\n{limits}"
        f"  --max-bytes N (the bytes extracted; default: the free space less "
        f"{FREE_SPACE_MARGIN // MIB} MiB)\n\n"
        "environment: DOCKER_CONFIG (registry credentials; the storage initializer takes KIT_USER and\n"
        "KIT_PASSWORD first), KIT_RETRIES (3), KIT_RETRY_DELAY (2 s), SSL_CERT_FILE (the CA certificates\n"
        "an https registry's certificate is checked against, instead of the system's)\n"
        f"exit status: 0 unpacked, 1 an I/O failure, {USAGE_STATUS} a wrong command line, {REFUSED} refused\n"
    )


def main(argv: list[str]) -> int:
    """Unpack (or storage-initialize); the exit status."""
    if argv in (["-h"], ["--help"]):  # alone only: among other arguments it is data, refused
        sys.stdout.write(help_text())
        return 0
    os.umask(0o022)
    ref = ""
    try:
        if argv[:1] == ["storage-initializer"]:
            options = parse_storage_initializer(argv[1:])
        else:
            options = parse_unpack(list(argv))
        ref = options.ref
        answer = unpack(options)
    except Refused as refusal:
        return fail(f"refusing to unpack {ref}: {refusal}", REFUSED)
    except Failure as failure:
        return fail(str(failure), failure.status)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except OSError as error:
        return fail(f"{PROG}: writing {ref} failed: {error}", 1)
    except Exception as error:  # noqa: BLE001 (a bug here must still end in an ERROR: line)
        return fail(f"{PROG}: unpacking {ref} failed unexpectedly: {error!r}", 1)
    if options.storage_initializer:
        with open(os.path.join(options.extract, "Kitfile"), encoding="utf-8") as handle:
            sys.stdout.write(handle.read())
    else:
        sys.stdout.write(json.dumps(answer) + "\n")
    return 0


def fail(message: str, status: int) -> int:
    """Print the ERROR: line; the exit status."""
    sys.stderr.buffer.write(f"ERROR: {message}\n".encode("utf-8", "surrogateescape"))
    return status


if __name__ == "__main__":
    status = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(status)
