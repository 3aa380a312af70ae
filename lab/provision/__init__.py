"""Cluster mode ("kind mode"): provision the whole lab on a local kind cluster.

The public surface is two functions; the steps live in one module each
(preflight, cluster, registry, cert_manager, kfp, model_registry, kserve, secrets, ready)
and run in the order :func:`lab.provision.create.kind_actions` lists them.
"""

from __future__ import annotations

from lab.provision.create import up_kind
from lab.provision.delete import down_kind

__all__ = ["down_kind", "up_kind"]
