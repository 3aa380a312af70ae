"""The local OCI registry, wired into the cluster the way kind documents it.

A ``registry`` container publishes 127.0.0.1:<ports.registry> on the host and joins the
``kind`` network as ``kind-registry``; every node gets a containerd ``hosts.toml`` that sends
``localhost:<port>`` pulls there; the ``kube-public/local-registry-hosting`` ConfigMap
advertises it (KEP-1755). Failure mode local-registry-unwired is any of these missing.
"""

from __future__ import annotations

import hashlib
import json

import bcrypt
import yaml

from lab.config import LabConfig
from lab.kube_objects import Manifest
from lab.provision.actions import Context
from lab.provision.cluster import node_names
from lab.provision.files import FileSpec, apply_files, plan_files
from lab.provision.workspace import Workspace

SPEC_LABEL = "io.kubeflow-modelkit-lab.registry-spec"
CERTS_DIR = "/etc/containerd/certs.d"


def volume_name(config: LabConfig) -> str:
    """The container volume that keeps pushed ModelKits across `lab down` (removed by --purge)."""
    return f"{config.names.cluster}-registry-data"


def mirror_hosts(config: LabConfig) -> list[str]:
    """Registry names pods may use for the lab registry, each needing a hosts.toml.

    ``localhost:<port>`` is kind's convention; ``127.0.0.1:<port>`` is the lab's own
    registry_host, which users naturally copy into pod specs.
    """
    return [f"localhost:{config.ports.registry}", f"127.0.0.1:{config.ports.registry}"]


def node_file_specs(config: LabConfig, root: str = "") -> list[FileSpec]:
    """The containerd hosts.toml files for every node (``root`` relocates them, for tests)."""
    return [
        FileSpec(
            dest=f"{root}{CERTS_DIR}/{host}/hosts.toml",
            template="hosts.toml.j2",
            values={"config": config, "registry": host},
        )
        for host in mirror_hosts(config)
    ]


def htpasswd_spec(config: LabConfig, workspace: Workspace) -> FileSpec | None:
    """The htpasswd file when registry auth is configured.

    bcrypt salts every hash, so an existing line that still verifies is kept as it is:
    otherwise every run would rewrite the file and restart nothing for no reason.
    """
    auth = config.registry_auth
    if not auth.enabled:
        return None
    path = workspace.registry_auth / "htpasswd"
    line = ""
    if path.is_file():
        for existing in path.read_text().splitlines():
            user, _, hashed = existing.partition(":")
            if user == auth.username and hashed and bcrypt.checkpw(auth.password.encode(), hashed.encode()):
                line = existing
    if not line:
        line = f"{auth.username}:{bcrypt.hashpw(auth.password.encode(), bcrypt.gensalt()).decode()}"
    return FileSpec(dest=str(path), content=line + "\n", mode="600")


def run_arguments(config: LabConfig, workspace: Workspace) -> list[str]:
    """``docker run`` arguments of the registry container, labelled with a hash of what defines it."""
    args = [
        "--detach",
        "--restart=always",
        "--name",
        config.names.registry_container,
        # Host side only on loopback: the lab never exposes the registry to the network.
        "--publish",
        f"127.0.0.1:{config.ports.registry}:5000",
        "--network",
        "bridge",
        "--volume",
        f"{volume_name(config)}:/var/lib/registry",
    ]
    if config.registry_auth.enabled:
        args += [
            "--volume",
            f"{workspace.registry_auth}:/auth:ro",
            "--env",
            "REGISTRY_AUTH=htpasswd",
            "--env",
            "REGISTRY_AUTH_HTPASSWD_REALM=kubeflow-lab",
            "--env",
            "REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd",
        ]
    # The registry reads htpasswd at start: a changed password must recreate the container too.
    htpasswd = htpasswd_spec(config, workspace)
    identity = [args, config.versions.registry_image, htpasswd.content if htpasswd else ""]
    spec = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
    return [*args, "--label", f"{SPEC_LABEL}={spec}", config.versions.registry_image]


def _spec_of(args: list[str]) -> str:
    return next(a.split("=", 1)[1] for a in args if a.startswith(f"{SPEC_LABEL}="))


def hosting_configmap(config: LabConfig, host: str = "") -> Manifest:
    """``kube-public/local-registry-hosting``: tells tools where the cluster's registry is."""
    host = host or f"localhost:{config.ports.registry}"
    # Emitted from a YAML node tree, never spliced as text: a value cannot add a key. The values
    # stay double-quoted, as KEP-1755's example writes them (and readers match).
    fields = {"host": host, "help": "https://kind.sigs.k8s.io/docs/user/local-registry/"}
    document = yaml.MappingNode(
        "tag:yaml.org,2002:map",
        [
            (
                yaml.ScalarNode("tag:yaml.org,2002:str", key),
                yaml.ScalarNode("tag:yaml.org,2002:str", value, style='"'),
            )
            for key, value in fields.items()
        ],
    )
    hosting = yaml.serialize(document, Dumper=yaml.SafeDumper)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "local-registry-hosting", "namespace": "kube-public"},
        "data": {"localRegistryHosting.v1": hosting},
    }


class LocalRegistry:
    """Run the registry container and wire it into every node and the cluster."""

    name = "local registry"

    def _container_state(self, ctx: Context) -> tuple[str, bool, bool]:
        """(spec label, running, on the kind network) of the registry container; ('', ...) if absent."""
        engine = ctx.engine()
        name = ctx.config.names.registry_container
        if not engine.succeeds("container", "inspect", name):
            return "", False, False
        fields = (f'index .Config.Labels "{SPEC_LABEL}"', ".State.Running", "json .NetworkSettings.Networks")
        template = "|".join("{{" + field + "}}" for field in fields)
        out = engine.run("container", "inspect", "--format", template, name).strip()
        spec, running, networks = out.split("|", 2)
        return spec, running == "true", "kind" in json.loads(networks or "{}")

    def _pending(self, ctx: Context) -> list[str]:
        config, workspace = ctx.config, ctx.workspace
        pending = []
        htpasswd = htpasswd_spec(config, workspace)
        if htpasswd is not None:
            pending += plan_files([htpasswd])
        spec, running, on_kind = self._container_state(ctx)
        wanted = _spec_of(run_arguments(config, workspace))
        if spec != wanted:
            action = "recreate" if spec else "start"
            pending.append(
                f"{action} container {config.names.registry_container} ({config.versions.registry_image})"
            )
        elif not running:
            pending.append(f"start stopped container {config.names.registry_container}")
        if not on_kind or spec != wanted:
            pending.append(f"connect {config.names.registry_container} to the kind network")
        hosts = [f"@docker/{node}" for node in node_names(ctx)]
        if hosts:
            pending += plan_files(node_file_specs(config), hosts)
        pending += ctx.kube().drift([hosting_configmap(config)])
        return pending

    def is_done(self, ctx: Context) -> bool:
        """Container current and running on the kind network, nodes and ConfigMap in place."""
        return not self._pending(ctx)

    def execute(self, ctx: Context) -> None:
        """Bring each part in line, in the order kind's local-registry script uses."""
        config, workspace, engine = ctx.config, ctx.workspace, ctx.engine()
        htpasswd = htpasswd_spec(config, workspace)
        if htpasswd is not None:
            apply_files([htpasswd])
        args = run_arguments(config, workspace)
        spec, running, on_kind = self._container_state(ctx)
        name = config.names.registry_container
        if spec and spec != _spec_of(args):
            engine.run("rm", "--force", name)
            spec, on_kind = "", False
        if not spec:
            engine.run("run", *args, timeout=600.0)
        elif not running:
            engine.run("start", name)
        if not on_kind:
            engine.run("network", "connect", "kind", name)
        hosts = [f"@docker/{node}" for node in node_names(ctx)]
        apply_files(node_file_specs(config), hosts)
        ctx.kube().apply(hosting_configmap(config))

    def plan(self, ctx: Context) -> list[str]:
        """What would change; without a cluster, everything this step sets up."""
        config = ctx.config
        if ctx.kube_if_reachable() is None:
            lines = []
            htpasswd = htpasswd_spec(config, ctx.workspace)
            if htpasswd is not None:
                lines += plan_files([htpasswd])
            return lines + [
                f"run container {config.names.registry_container} ({config.versions.registry_image}) on "
                f"127.0.0.1:{config.ports.registry}, data in volume {volume_name(config)}",
                f"connect it to the kind network as {config.names.registry_container}:5000",
                *(f"write {CERTS_DIR}/{host}/hosts.toml on every node" for host in mirror_hosts(config)),
                "server-side apply ConfigMap kube-public/local-registry-hosting",
            ]
        return self._pending(ctx)
