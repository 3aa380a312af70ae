"""The chain's declarations: what registering an existing version does.

Import-light (no kfp): the CLI, the bench and the doctor read it. :class:`VersionPolicy` is
parsed once, where a command line names it, and travels typed to the pipeline parameter.
"""

from __future__ import annotations

from enum import StrEnum


class VersionPolicy(StrEnum):
    """What registering an existing model version does (see ``registration.decide_version``).

    The register step receives it as a KFP string parameter, so ``decide_version`` (which runs
    in the component, where this package is absent) reads it back from the same three words.
    """

    FAIL = "fail"
    """Refuse an existing version and say which one (the default)."""
    SUFFIX = "suffix"
    """Register ``<version>-<run id>`` (then ``-2``, ``-3``... while taken)."""
    REUSE = "reuse"
    """Keep an existing version of the same ModelKit digest."""
