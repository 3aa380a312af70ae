"""A registry front that lies: a 127.0.0.1 proxy before the real registry process.

It forwards what it is not told to falsify to the real distribution registry (the client's
Authorization header included) and, per manifest tag or blob digest, serves what a hostile or
broken registry would: a manifest of its own, a body without end, a Content-Length that is
not the body's, HTTP framed in every valid way (chunks, 1xx answers, the close) and in broken
ways (RAW_ANSWERS), or a redirect to another port of the same host. That other port ("elsewhere")
records every Authorization header it is sent, and either asks for credentials or serves the
blob with the front's own login (as a CDN with signed URLs would).
"""

from __future__ import annotations

import base64
import http.client
import http.server
import itertools
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ENDLESS_LIMIT = 4 << 30  # an endless body stops here, so a failing test still ends


@dataclass
class FrontState:
    """What the front falsifies, and what it saw."""

    upstream: str
    upstream_login: tuple[str, str] | None = None
    manifests: dict[str, bytes] = field(default_factory=dict)  # tag -> bytes served for it
    manifest_behaviour: dict[str, str] = field(default_factory=dict)  # tag -> behaviour
    blob_behaviour: dict[str, str] = field(default_factory=dict)  # digest -> behaviour
    elsewhere_challenges: bool = True
    # Bearer mode: the front asks for a token from a realm ("front": its own /token, "elsewhere":
    # the other port's), which hands one out for the registry's login; "" means no token needed.
    token_realm: str = ""
    token_requests: list[str] = field(default_factory=list)  # the Authorization each /token GET carried
    elsewhere_port: int = 0
    authorization_elsewhere: list[str] = field(default_factory=list)
    requests_elsewhere: int = 0
    sent: dict[str, int] = field(default_factory=dict)  # path -> body bytes sent
    lock: threading.Lock = field(default_factory=threading.Lock)


def fetch_upstream(
    state: FrontState, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """GET from the real registry: status, headers, body."""
    connection = http.client.HTTPConnection(state.upstream, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def chunks(*pieces: bytes, last: bytes = b"0\r\n\r\n") -> bytes:
    """``pieces`` as a chunked body, the first with a chunk extension, sizes in upper-case hex."""
    out = b""
    for index, piece in enumerate(pieces):
        extension = b";lab=front" if index == 0 else b""
        out += f"{len(piece):X}".encode() + extension + b"\r\n" + piece + b"\r\n"
    return out + last


def uneven(body: bytes) -> list[bytes]:
    """``body`` cut at 1, 8 and 4104 bytes (an empty piece would end a chunked body)."""
    cuts = [0, *(c for c in (1, 8, 4104) if c < len(body)), len(body)]
    return [body[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]


def head(status: str, *fields: str) -> bytes:
    return (status + "\r\n" + "".join(f + "\r\n" for f in fields) + "\r\n").encode()


# Answers written byte for byte (the front closes the connection after each): HTTP that is
# unusual but valid, which must be read; HTTP that is broken, which must be refused.
RAW_ANSWERS: dict[str, Callable[[bytes], bytes]] = {
    # valid
    "chunked": lambda b: (
        head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked")
        + chunks(*uneven(b), last=b"0\r\nX-Trailer: t\r\n\r\n")
    ),
    "informational-first": lambda b: (
        head("HTTP/1.1 100 Continue")
        + head("HTTP/1.1 103 Early Hints", "Link: </x>; rel=preload")
        + head("HTTP/1.1 200 OK", f"Content-Length: {len(b)}", "X-Folded: one", " two")
        + b
    ),
    "close-delimited": lambda b: head("HTTP/1.0 200 OK") + b,
    # lies inside valid framing
    "chunked-then-more": lambda b: (
        head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") + chunks(b, bytes(10))
    ),
    "chunked-ends-early": lambda b: head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") + chunks(b[:-10]),
    # broken framing
    "chunk-cut": lambda b: (
        head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") + f"{len(b):x}\r\n".encode() + b[: len(b) // 2]
    ),
    "bad-chunk-size": lambda b: head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") + b"zz\r\n" + b,
    "no-crlf-after-chunk": lambda b: (
        head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked")
        + f"{len(b):x}\r\n".encode()
        + b
        + b"XX0\r\n\r\n"
    ),
    "not-http": lambda b: b"HELLO THERE\r\n\r\n" + b,
    "switches-protocols": lambda b: head("HTTP/1.1 101 Switching Protocols", "Upgrade: h2c") + b,
    "header-flood": lambda b: (
        head("HTTP/1.1 200 OK", *["X-Filler: 1"] * 200, f"Content-Length: {len(b)}") + b
    ),
    "long-header-line": lambda b: head("HTTP/1.1 200 OK", "X-Filler: " + "a" * (70 << 10)) + b,
    "two-content-lengths": lambda b: (
        head("HTTP/1.1 200 OK", f"Content-Length: {len(b)}", "Content-Length: 7") + b
    ),
    "unknown-transfer-coding": lambda b: (
        head("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked") + chunks(b)
    ),
}


class FrontHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FrontServer

    def log_message(self, *args: object) -> None:
        pass

    @property
    def state(self) -> FrontState:
        return self.server.state

    def do_GET(self) -> None:
        if self.path.startswith("/token"):
            self.token()
            return
        if self.server.elsewhere:
            self.elsewhere()
            return
        if self.state.token_realm and self.headers.get("Authorization") != "Bearer good-token":
            port = (
                self.server.server_address[1]
                if self.state.token_realm == "front"
                else self.state.elsewhere_port
            )
            challenge = f'Bearer realm="http://127.0.0.1:{port}/token",service="front"'
            self.answer(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
            return
        kind, _, reference = self.path.partition("/manifests/")
        if reference:
            behaviour = self.state.manifest_behaviour.get(reference, "")
            if behaviour == "endless":
                self.endless(b"", declared=None)
                return
            if reference in self.state.manifests:
                body = self.state.manifests[reference]
                self.answer(200, body, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
                return
        digest = self.path.rsplit("/", 1)[-1] if "/blobs/" in self.path else ""
        if reference:
            behaviour = self.state.manifest_behaviour.get(reference, "")
        else:
            behaviour = self.state.blob_behaviour.get(digest, "")
        if behaviour == "redirect":
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{self.state.elsewhere_port}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = {"Accept": self.headers.get("Accept", "*/*")}
        if self.state.token_realm:  # the token was checked: the front fetches with its own login
            headers["Authorization"] = self.login()
        elif self.headers.get("Authorization"):
            headers["Authorization"] = self.headers["Authorization"]
        status, upstream_headers, body = fetch_upstream(self.state, self.path, headers)
        if status != 200 or not behaviour:
            extra = {
                k: v for k, v in upstream_headers.items() if k.lower() in ("www-authenticate", "content-type")
            }
            self.answer(status, body, extra)
            return
        if behaviour == "then-endless-zeros":
            self.endless(body, declared=None)
        elif behaviour == "endless-zeros-after-length":  # honest Content-Length, then it goes on
            self.endless(body, declared=len(body))
        elif behaviour == "longer-content-length":
            self.answer(200, body, {"Content-Length": str(len(body) + 1000)}, close_early=True)
        elif behaviour == "shorter-content-length":
            self.answer(200, body[: len(body) - 10], {})
        elif behaviour == "breaks-off-once":  # the first GET breaks off, the next ones are whole
            with self.state.lock:
                self.state.blob_behaviour[digest] = ""
            self.answer(200, body[: len(body) // 2], {"Content-Length": str(len(body))}, close_early=True)
        elif behaviour == "breaks-off":  # the declared length, half the body, then the connection closes
            self.answer(200, body[: len(body) // 2], {"Content-Length": str(len(body))}, close_early=True)
        elif behaviour in RAW_ANSWERS:
            self.close_connection = True
            self.wfile.write(RAW_ANSWERS[behaviour](body))
            self.count(len(body))
        else:
            raise AssertionError(f"unknown behaviour {behaviour}")

    def answer(self, status: int, body: bytes, headers: dict[str, str], close_early: bool = False) -> None:
        self.send_response(status)
        headers = {"Content-Length": str(len(body)), **headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.count(len(body))
        if close_early:
            self.close_connection = True

    def endless(self, body: bytes, declared: int | None) -> None:
        """The body, then zeros without end (chunked, or past an honest Content-Length)."""
        self.send_response(200)
        if declared is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.close_connection = True
        zeros = bytes(1 << 20)
        sent = 0
        try:
            for piece in itertools.chain([body], itertools.repeat(zeros)):
                if not piece:
                    continue
                if declared is None:
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                else:
                    self.wfile.write(piece)
                sent += len(piece)
                if sent >= ENDLESS_LIMIT:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self.count(sent)

    def count(self, sent: int) -> None:
        with self.state.lock:
            self.state.sent[self.path] = self.state.sent.get(self.path, 0) + sent

    def login(self) -> str:
        user, password = self.state.upstream_login or ("", "")
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def token(self) -> None:
        """The token service: a token for the registry's login, nothing without it."""
        given = self.headers.get("Authorization", "")
        with self.state.lock:
            self.state.token_requests.append(given)
        if given == self.login():
            self.answer(200, b'{"token": "good-token"}', {"Content-Type": "application/json"})
        else:
            self.answer(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {})

    def elsewhere(self) -> None:
        """Another port of the same host: records Authorization; challenges, or serves with its own login."""
        state = self.state
        with state.lock:
            state.requests_elsewhere += 1
            if self.headers.get("Authorization"):
                state.authorization_elsewhere.append(self.headers["Authorization"])
        if state.elsewhere_challenges:
            self.answer(
                401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": 'Basic realm="elsewhere"'}
            )
            return
        headers = {"Accept": "*/*", "Authorization": self.login()}
        status, _, body = fetch_upstream(state, self.path, headers)
        self.answer(status, body, {})


class FrontServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: FrontState, elsewhere: bool, tls: ssl.SSLContext | None = None) -> None:
        self.state, self.elsewhere = state, elsewhere
        super().__init__(("127.0.0.1", 0), FrontHandler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)


class RegistryFront:
    """The front and its other port, each serving on a thread; ``close`` stops both.

    With ``certificate`` (a certificate file and its key's), the front speaks HTTPS.
    """

    def __init__(
        self,
        upstream: str,
        upstream_login: tuple[str, str] | None = None,
        certificate: tuple[Path, Path] | None = None,
    ) -> None:
        self.state = FrontState(upstream, upstream_login)
        tls = None
        if certificate is not None:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(*certificate)
        self.front = FrontServer(self.state, elsewhere=False, tls=tls)
        self.other = FrontServer(self.state, elsewhere=True)
        self.state.elsewhere_port = self.other.server_address[1]
        self.threads = [
            # A short poll: close() waits for it, twice per test (0.5 s each by default).
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
            for s in (self.front, self.other)
        ]
        for thread in self.threads:
            thread.start()

    @property
    def host(self) -> str:
        """host:port of the front."""
        return f"127.0.0.1:{self.front.server_address[1]}"

    def close(self) -> None:
        """Stop both listeners and free their ports."""
        for server in (self.front, self.other):
            server.shutdown()
            server.server_close()
