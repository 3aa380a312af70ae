"""KServe's provisioning hook: the ``kit://`` storage container beside KServe's own objects.

The serving runtimes go through KServe's validating webhook, which only answers once the
controller runs; the apply retries them until it does. The step itself is the generic
:class:`~lab.provision.component_step.ComponentStep` of :data:`lab.components.KSERVE`.
"""

from __future__ import annotations

from lab.kube_objects import Manifest
from lab.provision.actions import Context
from lab.provision.component_step import Hooks
from lab.storage_container import storage_container


class KServeHooks(Hooks):
    """Add the KitOps ClusterStorageContainer."""

    def extra_objects(self, ctx: Context) -> list[Manifest]:
        """The ``kitops`` ClusterStorageContainer for ``kit://`` storage URIs."""
        return [storage_container(ctx.config)]
