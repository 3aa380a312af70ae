"""A ModelKit reference: one type owns its grammar and the ``kit://`` prefix.

A reference is ``host[:port]/repository[:tag][@sha256:<64 hex>]`` (the OCI grammar of
distribution/reference, the same one the chain scripts' ``check_reference`` enforces);
KServe and the Model Registry see it as ``kit://<reference>``. :class:`ModelKitRef` parses
and validates it once at the edge and then travels typed.

The three functions below are the grammar and the prefix. They are self-contained (imports
in their bodies, no module-level names) because the KFP components that run in the cluster's
Python image, where this package is not installed, carry them as source (``additional_funcs``);
:class:`ModelKitRef` is built on them, so there is one grammar and one prefix.
"""

from __future__ import annotations

from dataclasses import dataclass


def split_modelkit_reference(reference: str) -> dict[str, str]:
    """The parts of an OCI ModelKit reference: ``registry``, ``repository``, ``tag``, ``digest``.

    ``tag`` and ``digest`` (``sha256:<64 hex>``) are empty when absent.

    Raises:
        ValueError: Not ``host[:port]/repository[:tag][@sha256:<64 hex>]``, longer than 512
            characters, or a first component that is no registry host (kit would read
            ``repo/name`` as local storage).
    """
    import re

    # No doubled f-string braces: this source travels in Argo workflows, which template them.
    component = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    port = r"(?::[0-9]{1,5})?"
    host = rf"(?:{component}(?:\.{component})*|\[[0-9A-Fa-f:]+\]){port}"
    path = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
    tag = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
    digest = r"sha256:[0-9a-f]{64}"
    grammar = (
        rf"(?P<registry>{host})/(?P<repository>{path}(?:/{path})*)"
        rf"(?::(?P<tag>{tag}))?(?:@(?P<digest>{digest}))?"
    )
    match = re.fullmatch(grammar, reference)
    if match is None:
        raise ValueError(
            f"{reference!r} is not an OCI reference host[:port]/repository[:tag][@sha256:<64 hex>]"
        )
    if len(reference) > 512:
        raise ValueError(f"reference {reference[:40]!r}... is longer than 512 characters")
    registry = match["registry"]
    if not ("." in registry or ":" in registry or registry == "localhost" or registry.startswith("[")):
        raise ValueError(
            f"{reference!r}: {registry!r} is not a registry host (kit would read it as local storage; "
            "write host:port/repository)"
        )
    return {
        "registry": registry,
        "repository": match["repository"],
        "tag": match["tag"] or "",
        "digest": match["digest"] or "",
    }


def kit_uri(reference: str) -> str:
    """``kit://<reference>``, the URI KServe and the Model Registry know a ModelKit by.

    Raises:
        ValueError: ``reference`` is outside the grammar (see :func:`split_modelkit_reference`).
    """
    split_modelkit_reference(reference)
    return "kit://" + reference


def reference_of_kit_uri(uri: str) -> str:
    """The reference inside ``kit://<reference>``.

    Raises:
        ValueError: ``uri`` does not start with ``kit://``, or its reference is outside the grammar.
    """
    if not uri.startswith("kit://"):
        raise ValueError(f"{uri!r} does not start with kit://")
    reference = uri[len("kit://") :]
    split_modelkit_reference(reference)
    return reference


@dataclass(frozen=True)
class ModelKitRef:
    """An OCI ModelKit reference, valid by construction (use :meth:`parse` or :meth:`from_uri`)."""

    registry: str
    repository: str
    tag: str = ""
    digest: str = ""

    def __post_init__(self) -> None:
        split_modelkit_reference(str(self))

    @classmethod
    def parse(cls, reference: str) -> ModelKitRef:
        """A reference from its text ``host[:port]/repository[:tag][@sha256:...]``.

        Raises:
            ValueError: Outside the grammar.
        """
        return cls(**split_modelkit_reference(reference))

    @classmethod
    def from_uri(cls, uri: str) -> ModelKitRef:
        """A reference from ``kit://<reference>``.

        Raises:
            ValueError: No ``kit://`` prefix, or outside the grammar.
        """
        return cls.parse(reference_of_kit_uri(uri))

    @property
    def uri(self) -> str:
        """``kit://<reference>``."""
        return kit_uri(str(self))

    @property
    def pinned(self) -> bool:
        """Whether the reference names its content by digest."""
        return bool(self.digest)

    def with_registry(self, registry: str) -> ModelKitRef:
        """The same repository, tag and digest in ``registry`` (another name for the same registry)."""
        return ModelKitRef(registry, self.repository, self.tag, self.digest)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text
