"""The pipeline ``train_push_register_serve``: train → push → register → unpack → serve → predict.

One pipeline function, built for a target: ``local`` (kfp.local SubprocessRunner, every
step a lightweight component, scripts run with bash) or ``cluster`` (KFP on kind: push and
unpack are KitOps container components with the docker-config / cosign-keys secrets, register
reads its token from model-registry-auth, serve creates an InferenceService). The steps,
their parameters and their wiring are the same in both and written once; what differs is one
strategy per target (:class:`LocalTarget`, :class:`ClusterTarget`).

No ``from __future__ import annotations``: KFP reads the pipeline's annotation objects.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from kfp import compiler, dsl
from kfp import kubernetes as kfp_kubernetes

from lab.components import MODEL_REGISTRY, service
from lab.config import LabConfig
from lab.pipeline import STEP_OF_TASK
from lab.pipeline.chain import VersionPolicy
from lab.pipeline.components import COSIGN_MOUNT, DOCKER_CONFIG_MOUNT, ChainComponents, cluster_components
from lab.pipeline.local_components import local_components

PIPELINE_NAME = "train-push-register-serve"
TARGETS = ("local", "cluster")
DEFAULT_MODEL_NAME = "iris-classifier"
# The in-cluster Model Registry REST service (declared in lab.components).
MODEL_REGISTRY_SERVICE = service(MODEL_REGISTRY).name
MODEL_REGISTRY_SERVICE_PORT = service(MODEL_REGISTRY).port


class ChainOutputs(NamedTuple):
    """What the pipeline returns: each hand-off of the chain."""

    ref: str
    digest: str
    modelkit: dsl.Artifact
    registered_model: dsl.Model
    unpacked: dsl.Artifact
    serving_url: str
    predictions: dsl.Artifact


@dataclass(frozen=True)
class LocalRuntime:
    """Where the local pipeline finds credentials, tools and state on this machine."""

    lab_home: str
    docker_config: str
    kit_bin_dir: str
    kitops_home: str
    cosign_key_path: str
    model_server_port: int

    @classmethod
    def from_config(cls, config: LabConfig, kit_bin_dir: str | Path = "") -> "LocalRuntime":
        """The lab's own locations (kit from ``$LAB_HOME/bin`` unless told otherwise)."""
        return cls(
            lab_home=str(config.home),
            docker_config=str(config.docker_config_dir),
            kit_bin_dir=str(kit_bin_dir or config.bin_dir),
            kitops_home=str(config.home / "kitops"),
            # The local stand-in for the cosign-keys secret mounted at /etc/cosign.
            cosign_key_path=str(config.home / "cosign" / "cosign.key"),
            model_server_port=config.ports.model_server,
        )


@dataclass(frozen=True)
class TargetDefaults:
    """Pipeline parameter defaults that differ between the targets."""

    registry: str
    plain_http: bool
    model_registry_url: str
    namespace: str


class ChainTasks(NamedTuple):
    """The six tasks of one pipeline run, in chain order."""

    train: Any
    push: Any
    register: Any
    unpack: Any
    serve: Any
    predict: Any


@dataclass(frozen=True)
class LocalTarget:
    """kfp.local on this machine: every step a lightweight component in the lab's interpreter.

    The push, unpack and serve steps are told where this machine keeps credentials, tools and
    state (:class:`LocalRuntime`); nothing else differs from the cluster's pipeline.
    """

    config: LabConfig
    runtime: LocalRuntime

    @property
    def defaults(self) -> TargetDefaults:
        """The loopback registry and Model Registry of ``lab up --mode local``."""
        return TargetDefaults(
            registry=self.config.registry_host,
            plain_http=True,
            model_registry_url=f"http://127.0.0.1:{self.config.ports.model_registry}",
            namespace="local",
        )

    def components(self) -> ChainComponents:
        """The local components (push, unpack and serve carry their scripts)."""
        return local_components(self.config)

    def push_inputs(self) -> dict[str, Any]:
        """Credentials, kit and the cosign key of this machine."""
        runtime = self.runtime
        return {
            "docker_config": runtime.docker_config,
            "kit_bin_dir": runtime.kit_bin_dir,
            "kitops_home": runtime.kitops_home,
            "cosign_key_path": runtime.cosign_key_path,
        }

    def unpack_inputs(self) -> dict[str, Any]:
        """Credentials of this machine (the unpacker speaks the registry API: no kit)."""
        return {"docker_config": self.runtime.docker_config}

    def serve_inputs(self, plain_http: Any) -> dict[str, Any]:
        """The lab home and port of the local model server."""
        runtime = self.runtime
        return {
            "lab_home": runtime.lab_home,
            "model_server_port": runtime.model_server_port,
            "plain_http": plain_http,
        }

    def finish(self, tasks: ChainTasks) -> None:
        """Nothing: kfp.local has no UI (it warns about display names) and no secrets."""


@dataclass(frozen=True)
class ClusterTarget:
    """KFP on kind: KitOps container components with the pipeline secrets, an InferenceService."""

    config: LabConfig

    @property
    def defaults(self) -> TargetDefaults:
        """The kind registry on the cluster network and the in-cluster Model Registry service.

        Both registries serve plain HTTP by construction (the local one on loopback, the kind
        one as ``kind-registry:5000`` on the cluster network), so ``--plain-http`` is on: a
        setting, never guessed from the host name.
        """
        names = self.config.names
        return TargetDefaults(
            registry=f"{names.registry_container}:5000",
            plain_http=True,
            model_registry_url=(
                f"http://{MODEL_REGISTRY_SERVICE}.{names.kubeflow_namespace}.svc.cluster.local:"
                f"{MODEL_REGISTRY_SERVICE_PORT}"
            ),
            namespace=names.pipeline_namespace,
        )

    def components(self) -> ChainComponents:
        """The cluster components (pinned images and packages)."""
        return cluster_components(self.config)

    def push_inputs(self) -> dict[str, Any]:
        """Nothing: the secrets are mounted (see :meth:`finish`)."""
        return {}

    def unpack_inputs(self) -> dict[str, Any]:
        """Nothing: the secrets are mounted (see :meth:`finish`)."""
        return {}

    def serve_inputs(self, plain_http: Any) -> dict[str, Any]:
        """The namespace of the InferenceService (the pod's own wins, see ``KFP_POD_NAMESPACE``)."""
        return {"namespace": self.defaults.namespace}

    def finish(self, tasks: ChainTasks) -> None:
        """Step names in the KFP UI; the docker-config, cosign-keys and Model Registry secrets."""
        names = self.config.names
        for task in tasks:
            task.set_display_name(STEP_OF_TASK[task.name])
        for task in (tasks.push, tasks.unpack):
            kfp_kubernetes.use_secret_as_volume(
                task, secret_name=names.docker_config_secret, mount_path=DOCKER_CONFIG_MOUNT
            )
            task.set_env_variable("DOCKER_CONFIG", DOCKER_CONFIG_MOUNT)
        # Without the secret the push logs a warning and continues unsigned.
        kfp_kubernetes.use_secret_as_volume(
            tasks.push, secret_name=names.cosign_secret, mount_path=COSIGN_MOUNT, optional=True
        )
        kfp_kubernetes.use_secret_as_env(
            tasks.register,
            secret_name=names.model_registry_auth_secret,
            secret_key_to_env={"token": "MR_AUTH_TOKEN"},
        )
        for task in (tasks.register, tasks.serve):
            kfp_kubernetes.use_field_path_as_env(task, "KFP_POD_NAMESPACE", "metadata.namespace")


PipelineTarget = LocalTarget | ClusterTarget


def pipeline_target(config: LabConfig, target: str, runtime: LocalRuntime | None = None) -> PipelineTarget:
    """The strategy of ``target`` (``local``: this machine's runtime, default the lab's own).

    Raises:
        ValueError: An unknown target.
    """
    if target == "local":
        return LocalTarget(config, runtime or LocalRuntime.from_config(config))
    if target == "cluster":
        return ClusterTarget(config)
    raise ValueError(f"unknown pipeline target {target!r}; choose one of {', '.join(TARGETS)}")


def build_pipeline(config: LabConfig, target: str, runtime: LocalRuntime | None = None) -> Any:
    """The ``train_push_register_serve`` pipeline function for ``target``.

    The steps, their parameters and their wiring are written once here; what differs between
    the targets is asked of its :data:`PipelineTarget`.
    """
    where = pipeline_target(config, target, runtime)
    defaults = where.defaults
    steps = where.components()

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Train a classifier, push it as a ModelKit, register it in the Model Registry, "
        "unpack and verify it, serve it with KServe and check its predictions (V1 and V2).",
    )
    def train_push_register_serve(
        model_name: str = DEFAULT_MODEL_NAME,
        version: str = "1.0.0",
        dataset: str = "iris",
        registry: str = defaults.registry,
        repository: str = f"lab/{DEFAULT_MODEL_NAME}",
        plain_http: bool = defaults.plain_http,
        model_registry_url: str = defaults.model_registry_url,
        version_policy: str = VersionPolicy.FAIL.value,
        author: str = "kubeflow-modelkit-lab",
        description: str = "Iris classifier trained by the kubeflow-modelkit-lab chain",
        code_repo: str = "",
        code_commit: str = "",
        seed: int = 42,
        serve_timeout_seconds: int = 300,
    ) -> ChainOutputs:
        train = steps.train(
            dataset=dataset,
            model_name=model_name,
            description=description,
            author=author,
            seed=seed,
            test_size=0.25,
        )
        push = steps.push(
            registry=registry,
            repository=repository,
            tag=version,
            modelkit_dir=train.outputs["modelkit_dir"],
            modelkit_name=model_name,
            modelkit_desc=description,
            modelkit_author=author,
            dataset_uri=train.outputs["Output"],
            code_repo=code_repo,
            code_commit=code_commit,
            plain_http=plain_http,
            **where.push_inputs(),
        )
        digest = push.outputs["digest"]

        register = steps.register(
            model_name=model_name,
            version=version,
            modelkit_ref=digest,
            model_registry_url=model_registry_url,
            author=author,
            description=description,
            model_format_name="sklearn",
            model_format_version="1",
            version_policy=version_policy,
            dataset_uri=train.outputs["Output"],
            code_repo=code_repo,
            code_commit=code_commit,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            pipeline_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            namespace=defaults.namespace,
            metrics=train.outputs["metrics"],
            connect_timeout=config.registration_connect_timeout,
            total_timeout=config.registration_timeout,
        )
        unpack = steps.unpack(modelkit_ref=digest, plain_http=plain_http, **where.unpack_inputs()).after(
            register
        )
        serve = steps.serve(
            modelkit_ref=digest,
            model_name=model_name,
            timeout_seconds=serve_timeout_seconds,
            **where.serve_inputs(plain_http),
        ).after(unpack)
        check = steps.predict(
            serving_url=serve.output, model_name=model_name, reference=unpack.outputs["model_path"]
        )

        # Pushing, registering and serving change the world: never answer them from a cache.
        for task in (push, register, unpack, serve, check):
            task.set_caching_options(False)
        where.finish(ChainTasks(train, push, register, unpack, serve, check))

        return ChainOutputs(
            ref=push.outputs["ref"],
            digest=digest,
            modelkit=train.outputs["modelkit_dir"],
            registered_model=register.outputs["registered_model"],
            unpacked=unpack.outputs["model_path"],
            serving_url=serve.output,
            predictions=check.outputs["predictions"],
        )

    return train_push_register_serve


def compile_pipeline(config: LabConfig, output: Path) -> Path:
    """Compile the cluster pipeline to KFP IR YAML at ``output`` (written atomically)."""
    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    # KFP picks the format from the extension, so the staging name keeps it.
    staging = output.with_name(f".{output.stem}.partial{output.suffix or '.yaml'}")
    try:
        compiler.Compiler().compile(build_pipeline(config, "cluster"), str(staging))
        staging.replace(output)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return output
