"""An OCI registry address as ``--registry`` and ``LAB_CLUSTER_REGISTRY`` take it: ``HOST[:PORT]``.

Parsed once, where the value enters (the command line, the config), so nothing that reaches
the cluster (``kube-public/local-registry-hosting``, the pipeline's docker config) was ever a
scheme, a path, a second line or a port that cannot exist.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

# One DNS label (RFC 1123): letters, digits and inner hyphens, at most 63 characters.
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
FORM = "HOST[:PORT] (a DNS name, an IPv4 address or an IPv6 address in brackets; port 1-65535)"


class InvalidRegistryAddress(ValueError):
    """The text is not ``HOST[:PORT]``; the message says what is wrong with it."""


@dataclass(frozen=True)
class RegistryAddress:
    """A registry's host and optional port; ``str()`` gives it back as ``HOST[:PORT]``."""

    host: str
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> RegistryAddress:
        """Parse ``HOST[:PORT]``; anything else raises InvalidRegistryAddress naming the problem."""
        if not text or text != text.strip() or any(c.isspace() or not c.isprintable() for c in text):
            raise InvalidRegistryAddress(f"{text!r} is not {FORM}: it is empty or holds whitespace")
        if "/" in text or "@" in text:
            raise InvalidRegistryAddress(f"{text!r} is not {FORM}: no scheme, path or user")
        host, port_text = _split(text)
        port = None
        if port_text is not None:
            if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
                raise InvalidRegistryAddress(f"{text!r} is not {FORM}: port {port_text!r} is not 1-65535")
            port = int(port_text)
        return cls(host, port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


def _split(text: str) -> tuple[str, str | None]:
    """(host, port text or None), with the host checked."""
    if text.startswith("["):
        inner, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise InvalidRegistryAddress(f"{text!r} is not {FORM}: unbalanced brackets")
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise InvalidRegistryAddress(
                f"{text!r} is not {FORM}: {inner!r} is not an IPv6 address"
            ) from None
        return inner, rest[1:] if rest else None
    if text.count(":") > 1:
        raise InvalidRegistryAddress(f"{text!r} is not {FORM}: put an IPv6 address in brackets")
    host, colon, port = text.partition(":")
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InvalidRegistryAddress(f"{text!r} is not {FORM}: {host!r} is not a host name")
    return host, port if colon else None
