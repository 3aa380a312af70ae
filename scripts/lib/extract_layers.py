"""extract_layers: unpack-modelkit.sh's one pass over the layers, in one Python process.

unpack-modelkit.sh runs this (python3, standard library only) for the layer pass when python3
is on PATH; on images without Python (the cluster's kitops-kubeflow image is Alpine/busybox)
it runs its own bash pass. Both do the same, with the same messages and exit statuses: the
script decides what to unpack (manifest, config contract, entry paths, byte cap) and this
reads each layer once, as a stream, from the registry or from a blob file:

    compressed bytes -> sha256 (the layer digest) -> gunzip -> sha256 (the entry's diffId)
    -> a tar reader that checks each member header before it writes that member

Every member is checked as the bash pass checks it (relative path, no '..', under the
entry's path, no write through a symlink or under a file, no device or FIFO, no duplicate,
links that stay inside, within the byte cap) and written into the staging directory. The
bytes are read into a few large buffers; the hashes run on threads of their own (hashlib,
zlib and os.write release the GIL), so reading, hashing, inflating and writing overlap
instead of flowing through pipes between processes.

Usage: python3 extract_layers.py <layers file> key=value...  (the script passes: ref, host,
url, auth, fetch, verified, layout, stage, max_bytes, cap_source). The layers file holds the
plan's LAYER lines: digest, size, kind, compression, entry path, diffId (tab-separated).
On success it prints the bytes extracted. Exit statuses: 3 refused or failed verification
(an ERROR: line says why), 75 a network failure cut the fetch short (the script retries).
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import sys
import threading
import time
import zlib
from collections.abc import Iterator

PROG = "unpack-modelkit"
TRANSIENT = 75
MIB = 1 << 20
# Bytes per read: big enough for few calls (few GIL hand-overs; hashlib, zlib and os.write
# release the GIL for big buffers), small enough that the buffers in flight stay in the CPU's
# cache between the socket, the hash and the write (measured: 4 MiB buffers cost twice the
# system time of 1 MiB ones).
CHUNK = MIB
BUFFERS = 3  # chunks in flight between the reading thread and the writing one
INFLATED = MIB  # most bytes one inflate call returns: a gzip bomb never sits in memory
HTTP_TIMEOUT = 600  # seconds a stalled registry connection may stay silent
SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
PAX_RECORD = re.compile(rb"([0-9]+) ([^=]+)=(.*)", re.DOTALL)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
HEADER_CONTROL = re.compile(rb"[\x01-\x1f\x7f]")
OCTAL_SIZE = re.compile(r"[0-7]{1,12}")
PAX_SIZE = re.compile(r"[0-9]{1,18}")
ZERO_BLOCK = bytes(512)


class Failure(Exception):
    """An ERROR: line and the exit status that goes with it."""

    def __init__(self, message: str, status: int = 3) -> None:
        super().__init__(message)
        self.status = status


class Transient(Exception):
    """The fetch broke off (a network failure or a 5xx): the script retries the pass."""


class GzipError(Exception):
    """The layer is no valid gzip stream; the message is what GNU gzip says about it."""


def text(raw: bytes) -> str:
    """A tar name as bash holds it: bytes, shown as they are."""
    return raw.decode("utf-8", "surrogateescape")


def quoted(value: str) -> str:
    """What bash's ${value@Q} makes of a value."""
    if not CONTROL.search(value):
        return "'" + value.replace("'", "'\\''") + "'"
    escapes = {"\a": "\\a", "\b": "\\b", "\x1b": "\\E", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    escapes.update({"\v": "\\v", "\\": "\\\\", "'": "\\'"})
    body = "".join(escapes.get(c, f"\\{ord(c):03o}" if CONTROL.match(c) else c) for c in value)
    return f"$'{body}'"


def log(message: str) -> None:
    """A log line as the script's own log function writes it."""
    line = f"{time.strftime('%H:%M:%S')} {PROG}: {message}\n"
    sys.stderr.buffer.write(line.encode("utf-8", "surrogateescape"))
    sys.stderr.flush()


def normalize(path: str) -> str:
    """The script's normalize: strip ./ and // and /./ and one trailing /; "." is ""."""
    while path.startswith("./"):
        path = path[2:]
    while "//" in path:
        path = path.replace("//", "/")
    while "/./" in path:
        path = path.replace("/./", "/")
    if path.endswith("/"):
        path = path[:-1]
    return "" if path == "." else path


def all_zero(data: memoryview | bytes) -> bool:
    """Only zero bytes (zero padding)."""
    return bytes(data).count(0) == len(data)


def has_dotdot(path: str) -> bool:
    """A '..' path component."""
    return "/../" in f"/{path}/"


# --- hashing on a thread of its own ----------------------------------------------------------


class Hasher:
    """sha256 of what is put, in order, on a thread of its own (hashlib releases the GIL).

    A ring buffer put with its index goes back to the ring's free buffers once it is hashed.
    """

    def __init__(self, ring: Ring | None = None) -> None:
        self.sha = hashlib.sha256()
        self.ring = ring
        self.items: queue.Queue = queue.Queue(maxsize=2 * BUFFERS)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.items.get()
            if item is None:
                return
            data, index = item
            self.sha.update(data)
            if index is not None:
                self.ring.free.put(index)  # type: ignore[union-attr]

    def put(self, data: memoryview | bytes, index: int | None = None) -> None:
        """Hash these bytes after what was put before."""
        self.items.put((data, index))

    def digest(self) -> str:
        """sha256:<hex> of all that was put (waits for the thread)."""
        self.items.put(None)
        self.thread.join()
        return "sha256:" + self.sha.hexdigest()


class Ring:
    """A few buffers: the reader fills a free one; it is free again once written and hashed."""

    def __init__(self) -> None:
        self.views = [memoryview(bytearray(CHUNK)) for _ in range(BUFFERS)]
        self.free: queue.Queue = queue.Queue()
        for index in range(BUFFERS):
            self.free.put(index)


# --- gunzip ------------------------------------------------------------------------------------


def gzip_message(error: zlib.error, first_member: bool) -> str:
    """What GNU gzip says where zlib says this."""
    said = str(error)
    if "incorrect header check" in said or "unknown compression method" in said:
        if not first_member:
            return "gzip: stdin: decompression OK, trailing garbage ignored"
        return "gzip: stdin: not in gzip format"
    if "incorrect data check" in said:
        return "gzip: stdin: invalid compressed data--crc error"
    if "incorrect length check" in said:
        return "gzip: stdin: invalid compressed data--length error"
    return "gzip: stdin: invalid compressed data--format violated"


class Gunzip:
    """gzip -dc as a stream: members one after another; trailing zeros pass, other garbage fails."""

    def __init__(self) -> None:
        self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.members = 0  # members ended
        self.zeros = False  # after the last member: only zero padding, as GNU gzip allows

    def feed(self, data: memoryview | bytes) -> Iterator[bytes]:
        """The uncompressed bytes these compressed bytes give, in pieces of at most INFLATED."""
        while data:
            if self.zeros:
                if not all_zero(data):
                    raise GzipError("gzip: stdin: decompression OK, trailing garbage ignored")
                return
            if self.inflater.eof:  # a member ended: another follows, or zero padding
                if all_zero(data):
                    self.zeros = True
                    return
                self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                out = self.inflater.decompress(data, INFLATED)
            except zlib.error as error:
                raise GzipError(gzip_message(error, self.members == 0)) from None
            if out:
                yield out
            if self.inflater.eof:
                self.members += 1
                data = self.inflater.unused_data
            else:
                data = self.inflater.unconsumed_tail

    def finish(self) -> Iterator[bytes]:
        """The last uncompressed bytes; a stream that stops inside a member is cut short."""
        if self.zeros or self.inflater.eof:
            return
        try:
            out = self.inflater.flush()
        except zlib.error as error:
            raise GzipError(gzip_message(error, self.members == 0)) from None
        if out:
            yield out
        if not self.inflater.eof:
            raise GzipError("gzip: stdin: unexpected end of file")


# --- the tar reader ------------------------------------------------------------------------------


class Refused(Exception):
    """The script's refuse: "refusing to unpack <ref>: <where>: <why>"."""


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
        # Kitfile: written from the config at the end; kit never packs one into a layer.
        self.seen: dict[str, str] = {"Kitfile": "K"}
        self.symlinks: set[str] = set()
        self.made: set[str] = set()

    def start_layer(self, where: str, entry_path: str) -> None:
        """Begin a layer's archive: ``where`` names it in refusals; its members lie under ``entry_path``."""
        self.where = where
        self.entry_path = entry_path
        self.state = self.HEADER
        self.header = bytearray()
        self.pad = 0
        self.remaining = 0  # bytes left of a member's data (DATA), or of a header's data (EXTENDED)
        self.extended = bytearray()
        self.trailing = 0
        self.fd = -1
        self.pax_path = self.pax_link = self.pax_size = ""
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
                    written = os.write(self.fd, chunk)
                    chunk = chunk[written:]
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
            else:  # TRAILER: the rest after the end-of-archive marker is only hashed, and at most 1 MiB
                self.trailing += len(view)
                if self.trailing > MIB:
                    raise self.refuse("more than 1 MiB follows the end-of-archive marker")
                return

    def finish(self) -> None:
        """The layer's stream ended: it must have ended the archive."""
        if self.state == self.EXTENDED:
            raise self.refuse("the tar stream ends inside a member")
        if self.state != self.TRAILER:
            self.close_file()
            raise self.refuse("the tar stream ends without an end-of-archive marker")

    # -- headers

    @staticmethod
    def field(block: bytes, offset: int, length: int) -> bytes:
        """A header field up to its first NUL."""
        return block[offset : offset + length].split(b"\0", 1)[0]

    def on_header(self, block: bytes) -> None:
        """A 512-byte header: the end of the archive, an extended header, or a member to check."""
        if block == ZERO_BLOCK:  # end-of-archive: the rest (zero padding) is only hashed
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
        mode = text(field(block, 100, 8))
        size = 0
        # A pax size record (files of 8 GiB and more) stands for the header's own size field.
        if not self.pax_size or kind in ("x", "g", "L", "K"):
            if block[124] >= 0x80:
                raise self.refuse(f"member {name} uses a base-256 size (not supported)")
            size_field = text(field(block, 124, 12)).replace(" ", "") or "0"
            if not OCTAL_SIZE.fullmatch(size_field):
                raise self.refuse(f"member {name} has a malformed size field")
            size = int(size_field, 8)
        if kind in ("x", "g", "L", "K"):
            self.extended_kind = kind
            self.extended_size = size
            self.extended = bytearray()
            self.remaining = (size + 511) // 512 * 512
            self.state = self.EXTENDED
            if not self.remaining:
                self.on_extended()
            return
        if self.pax_path:
            path = self.pax_path
        elif self.long_name:
            path = self.long_name
        else:
            path = name
            # Only POSIX ustar headers have a prefix field; in GNU headers those bytes mean other things.
            if magic == b"ustar":
                prefix = text(field(block, 345, 155))
                if prefix:
                    path = f"{prefix}/{name}"
        target = self.pax_link or self.long_link or link
        if self.pax_size:
            if not PAX_SIZE.fullmatch(self.pax_size):
                raise self.refuse(f"member {path} has a malformed pax size")
            size = int(self.pax_size)
        self.long_name = self.long_link = self.pax_path = self.pax_link = self.pax_size = ""
        kind = kind or "0"
        member = self.check_member(kind, path, target, size)
        self.write_member(kind, member, target, size, mode)

    def on_extended(self) -> None:
        """The data of a pax (x, g) or GNU long name (L, K) header is complete."""
        data = bytes(self.extended[: self.extended_size])
        self.extended = bytearray()
        self.state = self.HEADER
        kind = self.extended_kind
        if kind == "x":
            self.parse_pax(data)
        elif kind == "g":
            self.pax_path = self.pax_link = ""
            self.parse_pax(data)
            if self.pax_path or self.pax_link:
                raise self.refuse("a global pax header sets a path")
            self.pax_size = ""
        else:  # L or K: a GNU long name or link target
            if b"\n" in data.replace(b"\0", b""):
                raise self.refuse("a member name contains a newline")
            value = text(data.split(b"\0", 1)[0])
            if kind == "L":
                self.long_name = value
            else:
                self.long_link = value

    def parse_pax(self, data: bytes) -> None:
        """Set the pax path, linkpath and size from the records."""
        # As bash reads the records: line by line (NUL bytes dropped), a last line without newline too.
        records = data.replace(b"\0", b"").split(b"\n")
        if records[-1] == b"":
            records.pop()
        for record in records:
            match = PAX_RECORD.fullmatch(record)
            if not match:
                raise self.refuse("malformed pax header record")
            # The record length counts its newline; a mismatch means a newline inside a value.
            if int(match[1]) != len(record) + 1:
                raise self.refuse("malformed pax header record (a newline in a value?)")
            key, value = match[2], text(match[3])
            if key == b"path":
                self.pax_path = value
            elif key == b"linkpath":
                self.pax_link = value
            elif key == b"size":
                self.pax_size = value

    # -- the checks: the script's check_member

    def check_member(self, kind: str, raw: str, target: str, size: int) -> str:
        """Refuse the member, or return its normalized path (the script's check_member)."""
        refuse = self.refuse
        if CONTROL.search(raw) or CONTROL.search(target):
            raise refuse(f"member {quoted(raw)} contains control characters")
        if raw.startswith("/"):
            raise refuse(f"member {raw} has an absolute path")
        if has_dotdot(raw):
            raise refuse(f"member {raw} contains a '..' path component")
        path = normalize(raw)
        if path.startswith("/"):  # "./" stripped from ".//x"
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
                if part == "..":
                    depth -= 1
                    if depth < 0:
                        raise refuse(f"symlink {path} -> {target} leaves the extract path")
                else:
                    depth += 1
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
            raise refuse(f"member {path} has the unsupported tar type '{kind}'")
        self.seen[path] = "0" if kind == "7" else kind
        return path

    # -- the writes

    def make_parent(self, path: str) -> None:
        """Create the directories above a member (never through a symlink: checked)."""
        if "/" not in path:
            return
        directory = path.rsplit("/", 1)[0]
        if directory in self.made:
            return
        os.makedirs(f"{self.stage}/{directory}", exist_ok=True)
        while True:
            self.made.add(directory)
            self.seen.setdefault(directory, "5")
            if "/" not in directory:
                break
            directory = directory.rsplit("/", 1)[0]

    def write_member(self, kind: str, path: str, target: str, size: int, mode: str) -> None:
        """Write a checked member into the stage (a file's data follows in the stream)."""
        file = f"{self.stage}/{path}"
        if kind in ("0", "7"):
            self.make_parent(path)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
            self.fd = os.open(file, flags, 0o666)
            self.file = file
            self.executable = any(c in "1357" for c in (mode[-3:] if len(mode) >= 3 else ""))
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
        """A file's data is written: close it, make it executable if its mode says so."""
        self.close_file()
        if self.executable:
            os.chmod(self.file, 0o755)
        self.state = self.SKIP if self.pad else self.HEADER

    def close_file(self) -> None:
        """Close the file being written, if any."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# --- the sources: the registry or a blob file ----------------------------------------------------


def redirect_handler(authorization: str):  # type: ignore[no-untyped-def]
    """Redirects are followed (as curl -L does); the credentials go along only to the same host."""
    import urllib.parse
    import urllib.request

    class SameHostAuthorization(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
            """The redirected request, with the credentials if it stays on the same host."""
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
            if new is not None and authorization:
                old, moved = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(new.full_url)
                if (old.scheme, old.netloc) == (moved.scheme, moved.netloc):
                    new.add_unredirected_header("Authorization", authorization)
            return new

    return SameHostAuthorization()


def authorization(auth_file: str) -> str:
    """The Authorization header value the script wrote to its auth file (empty: none)."""
    try:
        with open(auth_file, encoding="utf-8") as handle:
            line = handle.readline().strip()
    except FileNotFoundError:
        return ""
    name, _, value = line.partition(":")
    return value.strip() if name.strip().lower() == "authorization" else ""


def open_blob(args: dict[str, str], digest: str, size: str, where: str):
    """A readinto-able source of the layer's compressed bytes, and a check run at its end."""
    ref = args["ref"]
    if args["fetch"] != "http":
        # The script's blob_path: the digest names a file, so it must be sha256:<64 hex>.
        if not SHA256.fullmatch(digest):
            raise Failure(f"layer of {ref} has an invalid digest {quoted(digest)}")
        file = f"{args['layout']}/blobs/sha256/{digest[7:]}"
        if not os.path.isfile(file):
            raise Failure(f"layer {digest} of {ref} is missing from {args['layout']} (incomplete ModelKit)")
        if size and str(os.stat(file).st_size) != size:
            raise Failure(
                f"layer {digest} of {ref} has the wrong size (manifest says {size} bytes): refusing to unpack"
            )
        handle = open(file, "rb", buffering=0)  # noqa: SIM115 (closed by the reader)
        return handle, handle.close
    # Imported here: reading a blob file (an OCI layout, kit's store) needs no HTTP client.
    import http.client
    import socket
    import urllib.error
    import urllib.parse
    import urllib.request

    url = f"{args['url']}/blobs/{urllib.parse.quote(digest, safe=':')}"
    value = authorization(args["auth"])
    opener = urllib.request.build_opener(redirect_handler(value))
    request = urllib.request.Request(url)
    if value:
        request.add_unredirected_header("Authorization", value)
    try:
        response = opener.open(request, timeout=HTTP_TIMEOUT)
    except urllib.error.HTTPError as error:
        if 400 <= error.code < 500:
            host = args["host"]
            raise Failure(f"registry {host} answered HTTP {error.code} for {where} of {ref}") from None
        raise Transient(f"HTTP {error.code} for GET {url}") from None
    except (OSError, http.client.HTTPException) as error:
        raise Transient(f"GET {url}: {reason(error)}") from None
    try:
        response.fp.raw._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * MIB)
    except (AttributeError, OSError):
        pass

    def done() -> None:
        left = response.length
        response.close()
        if left:
            raise Transient(f"GET {url}: the connection closed {left} bytes before the end of the blob")

    return response, done


def reason(error: BaseException) -> str:
    """What went wrong with a fetch, in a few words."""
    urllib_error = sys.modules.get("urllib.error")
    if urllib_error is not None and isinstance(error, urllib_error.URLError):
        if not isinstance(error, urllib_error.HTTPError):
            return str(error.reason)
    return str(error) or type(error).__name__


def network_error(error: BaseException) -> bool:
    """A failure of the connection (or the file) the layer is read from: worth another attempt."""
    http_client = sys.modules.get("http.client")
    return isinstance(error, OSError) or (
        http_client is not None and isinstance(error, http_client.HTTPException)
    )


def read_full(source, buffer: memoryview) -> int:  # type: ignore[no-untyped-def]
    """Fill the buffer from the source (fewer, bigger hash and write calls); the bytes read."""
    filled = 0
    try:
        while filled < len(buffer):
            n = source.readinto(buffer[filled:])
            if not n:
                break
            filled += n
    except Exception as error:
        if network_error(error):
            raise Transient(reason(error)) from None
        raise
    return filled


# --- one pass per layer ------------------------------------------------------------------------


def extract_layer(args: dict[str, str], reader: TarReader, line: str, verified: bool) -> None:
    """One layer in one pass: fetch, hash, gunzip, hash, check and write each member, verify."""
    digest, size, kind, compression, entry, diff_id = line.split("\t")
    where = f"layer {digest} ({kind} {entry})"
    reader.start_layer(where, normalize(entry))
    source, done = open_blob(args, digest, size, where)
    # Blobs kit pulled were verified by kit while it wrote them: no second hash of them. The
    # hashes run on threads of their own, beside the reads, inflates and writes of this one.
    ring = Ring()
    compressed = None if verified else Hasher(ring)
    gunzip = Gunzip() if compression == "gzip" else None
    # Uncompressed: the digest is the diffId (the plan checked), one hash serves both.
    uncompressed = Hasher() if gunzip is not None else None
    try:
        try:
            while True:
                index = ring.free.get()
                view = ring.views[index][: read_full(source, ring.views[index])]
                if not view:
                    break
                if gunzip is None:
                    reader.feed(view)
                else:
                    for out in gunzip.feed(view):
                        uncompressed.put(out)  # type: ignore[union-attr]
                        reader.feed(out)
                if compressed is not None:
                    compressed.put(view, index)
                else:
                    ring.free.put(index)
            done()
            if gunzip is not None:
                for out in gunzip.finish():
                    uncompressed.put(out)  # type: ignore[union-attr]
                    reader.feed(out)
        except GzipError as error:
            raise reader.refuse(f"not a valid gzip stream (corrupted or tampered; {error})") from None
        reader.finish()
    finally:
        reader.close_file()
    ref = args["ref"]
    if compressed is not None:
        actual = compressed.digest()
        if actual != digest:
            raise Failure(
                f"layer of {ref} fails verification: expected {digest}, content hashes to {actual} "
                "(corrupted or tampered)"
            )
        if uncompressed is None and actual != diff_id:
            raise reader.refuse(f"the uncompressed layer hashes to {actual}, {not_the_diff_id(diff_id)}")
    if uncompressed is not None:
        actual = uncompressed.digest()
        if actual != diff_id:
            raise reader.refuse(f"the uncompressed layer hashes to {actual}, {not_the_diff_id(diff_id)}")


def not_the_diff_id(diff_id: str) -> str:
    """The end of the refusal of a layer that does not hash to its diffId."""
    return f"but the Kitfile's diffId is {diff_id}"


def main(argv: list[str]) -> int:
    """Extract every layer of the layers file; the exit status."""
    layers_file, *pairs = argv
    args = dict(pair.split("=", 1) for pair in pairs)
    reader = TarReader(args["stage"], int(args["max_bytes"]), args["cap_source"])
    with open(layers_file, encoding="utf-8", errors="surrogateescape") as handle:
        layers = [line.rstrip("\n") for line in handle if line.strip()]
    verified = args["verified"] == "true"
    where = "the layers"
    try:
        for line in layers:
            where = "layer " + line.split("\t", 1)[0]
            extract_layer(args, reader, line, verified)
    except Refused as refusal:
        return fail(f"refusing to unpack {args['ref']}: {refusal}", 3)
    except Failure as failure:
        return fail(str(failure), failure.status)
    except Transient as transient:
        log(f"WARNING: fetching {getattr(reader, 'where', where)} failed: {transient}")
        return TRANSIENT
    except OSError as error:  # the stage's disk (full, read-only): no retry helps
        return fail(f"{PROG}: writing {where} into {args['stage']} failed: {error}", 1)
    except Exception as error:  # noqa: BLE001 (a bug here must still end in an ERROR: line)
        return fail(f"{PROG}: extracting {where} failed unexpectedly: {error!r}", 1)
    print(reader.extracted)
    return 0


def fail(message: str, status: int) -> int:
    """Print the ERROR: line; the exit status."""
    sys.stderr.buffer.write(f"ERROR: {message}\n".encode("utf-8", "surrogateescape"))
    return status


if __name__ == "__main__":
    status = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # threads blocked on a queue never hold the exit up
