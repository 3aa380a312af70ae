"""The chain's declarations: its steps, and what registering an existing version does.

Import-light (no kfp): the CLI, the bench and the doctor read it. Each step of
train → push → register → unpack → serve → predict is one :class:`ChainStep`; the pipeline,
the local and cluster runs, the demo summary, the bench and the e2e checks read
:data:`CHAIN` instead of keeping their own lists. :class:`VersionPolicy` is parsed once, where
a command line or a caller names it, and travels typed to the pipeline parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class ChainStep:
    """One step of the chain, under each name it is known by."""

    task: str
    """The component's task name in the compiled pipeline (and in kfp.local's log)."""
    name: str
    """The step's name: progress lines, timings, the KFP UI display name, what the doctor is told failed."""
    bench_label: str
    """How ``lab bench`` reports the step's time."""


CHAIN = (
    ChainStep("train-model", "train", "train"),
    ChainStep("push-modelkit", "push", "push"),
    ChainStep("register-model", "register", "register"),
    ChainStep("unpack-modelkit", "unpack", "unpack"),
    # Serving is timed until the model server reports the model ready.
    ChainStep("serve-model", "serve", "serve-ready"),
    ChainStep("predict", "predict", "predict"),
)
