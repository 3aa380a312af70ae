"""A real Kubernetes control plane on this machine, for ``--mode cluster`` without a cluster.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler (the pinned builds from
``lab tools install --mode cluster``) run as the lab's own processes on free 127.0.0.1
ports, with certificates made here by openssl; kwok plays the kubelet for simulated nodes,
so Deployments roll out and Pods report what a kubelet reports, while nothing really runs
in them. The result is a kubeconfig any ``--mode cluster`` command can use.

What such a cluster lacks, and how it is made up for: no pod serves (health probes through
the API server's service proxy are shown as not applicable on kwok nodes); no admission
webhook can answer (the API server runs without the webhook admission plugins); no volume
provisioner (static PersistentVolumes stand in, as an administrator would create).
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lab.atomic_files import atomic_write
from lab.config import LabConfig
from lab.errors import LabError
from lab.kube import ApiError, Kube
from lab.local.processes import OwnedProcess, log_tail, port_holder, port_is_free
from lab.loopback_ports import free_ports
from lab.provision.static_volumes import NAME_PREFIX, STATIC_LABEL, release_static_volumes
from lab.tools import tool_path
from lab.tools.control_plane import kwok_stages_dir

CONTEXT = "lab-control-plane"
# kwok manages only Nodes carrying this annotation (so it never touches a real node).
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
# The Stage configs kwok's README uses for nodes that are Ready and pods that run at once.
KWOK_STAGES = ("node/fast", "node/heartbeat-with-lease", "pod/fast")
# Components in start order; stopping goes the other way.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
SERVICE_CIDR = "10.96.0.0/16"
NODES = 2
# Enough for KFP's MySQL and SeaweedFS claims and Model Registry's MySQL, with spares.
STATIC_VOLUMES = 6
VOLUME_SIZE = "20Gi"


class ControlPlaneError(LabError):
    """A control-plane process did not start or its API server never became ready."""


@dataclass(frozen=True)
class ControlPlane:
    """Where a running control plane is: its state directory and kubeconfig."""

    root: Path

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (context ``lab-control-plane``)."""
        return self.root / "kubeconfig"

    @property
    def context(self) -> str:
        """The kubeconfig context name."""
        return CONTEXT

    def process(self, name: str) -> OwnedProcess:
        """The pid-file handle of one component."""
        return OwnedProcess(name, self.root / "run" / f"{name}.pid", self.root / "logs" / f"{name}.log")

    def running(self) -> list[str]:
        """Components whose recorded process is still the one the lab started."""
        return [name for name in COMPONENTS if self.process(name).pid() is not None]

    def dead(self) -> list[str]:
        """Components with a pid file whose process is gone (crashed or killed, never stopped)."""
        return [name for name in COMPONENTS if self.process(name).is_stale()]

    @property
    def ports_file(self) -> Path:
        """Where the ports chosen at the first start are recorded."""
        return self.root / "ports.json"

    def ports(self) -> dict[str, int]:
        """The ports chosen at start (empty when never started)."""
        try:
            return {k: int(v) for k, v in json.loads(self.ports_file.read_text()).items()}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}


def default_root(config: LabConfig) -> Path:
    """``$LAB_HOME/control-plane``."""
    return config.home / "control-plane"


def _openssl(*argv: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *argv], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ControlPlaneError(f"openssl {argv[0]} failed", proc.stderr.strip().splitlines()[-5:])


def make_certificates(pki: Path) -> None:
    """CA, API server serving cert, admin client cert (group system:masters), service-account keys."""
    if (pki / "admin.crt").is_file():
        return
    if not shutil.which("openssl"):
        raise ControlPlaneError(
            "openssl is needed to make the control plane's certificates: apt-get install openssl"
        )
    pki.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=lab-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        cwd=pki,
    )
    (pki / "san.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
    )
    for name, subject, ext in (
        ("apiserver", "/CN=kube-apiserver", ["-extfile", "san.cnf"]),
        ("admin", "/O=system:masters/CN=lab-admin", []),
    ):
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            subject,
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            cwd=pki,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-out",
            f"{name}.crt",
            *ext,
            cwd=pki,
        )
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def write_kubeconfig(plane: ControlPlane, apiserver_port: int) -> None:
    """An admin kubeconfig with the certificates inlined by path."""
    pki = plane.root / "pki"
    atomic_write(
        plane.kubeconfig,
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": CONTEXT,
                        "cluster": {
                            "server": f"https://127.0.0.1:{apiserver_port}",
                            "certificate-authority": str(pki / "ca.crt"),
                        },
                    }
                ],
                "users": [
                    {
                        "name": "lab-admin",
                        "user": {
                            "client-certificate": str(pki / "admin.crt"),
                            "client-key": str(pki / "admin.key"),
                        },
                    }
                ],
                "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "lab-admin"}}],
                "current-context": CONTEXT,
            },
            indent=2,
        ),
    )
    plane.kubeconfig.chmod(0o600)


def _argv(config: LabConfig, plane: ControlPlane, ports: dict[str, int]) -> dict[str, list[str]]:
    pki, data, kc = plane.root / "pki", plane.root / "data", str(plane.kubeconfig)
    etcd_url, peer_url = f"http://127.0.0.1:{ports['etcd']}", f"http://127.0.0.1:{ports['etcd_peer']}"
    stages = kwok_stages_dir(config)
    return {
        "etcd": [
            str(tool_path(config, "etcd")),
            "--name",
            "lab",
            "--data-dir",
            str(data / "etcd"),
            "--listen-client-urls",
            etcd_url,
            "--advertise-client-urls",
            etcd_url,
            "--listen-peer-urls",
            peer_url,
            "--initial-advertise-peer-urls",
            peer_url,
            "--initial-cluster",
            f"lab={peer_url}",
            "--quota-backend-bytes",
            str(2 * 1024**3),
        ],
        "kube-apiserver": [
            str(tool_path(config, "kube-apiserver")),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            # No webhook pod really serves on kwok nodes; with these plugins on, every object
            # cert-manager's or KServe's webhooks match would be refused.
            "--disable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
        ],
        "kube-controller-manager": [
            str(tool_path(config, "kube-controller-manager")),
            f"--kubeconfig={kc}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['controller_manager']}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            "--leader-elect=false",
            "--use-service-account-credentials=false",
        ],
        "kube-scheduler": [
            str(tool_path(config, "kube-scheduler")),
            f"--kubeconfig={kc}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['scheduler']}",
            "--leader-elect=false",
        ],
        "kwok": [
            str(tool_path(config, "kwok")),
            f"--kubeconfig={kc}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=" + "=".join(KWOK_NODE_ANNOTATION),
            f"--server-address=127.0.0.1:{ports['kwok']}",
            # The heartbeat-with-lease Stage renews node status only every ~10 min and relies
            # on a Lease; without one the node controller marks the nodes (and their pods) not
            # Ready after its grace period, and nothing marks the pods Ready again.
            "--node-lease-duration-seconds=40",
            *(
                f"--config={path}"
                for stage in KWOK_STAGES
                for path in sorted((stages / stage).glob("*.yaml"))
                if path.name != "kustomization.yaml"
            ),
        ],
    }


def _readyz(plane: ControlPlane, port: int) -> str:
    pki = plane.root / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=context, timeout=3) as r:
            return "" if r.status == 200 else f"/readyz answered {r.status}"
    except OSError as exc:
        return f"/readyz: {exc}"


def _wait(plane: ControlPlane, name: str, check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    problem = "not checked"
    while time.monotonic() < deadline:
        if plane.process(name).pid() is None:
            raise ControlPlaneError(f"{name} exited at start", log_tail(plane.process(name).log_file))
        problem = check()  # type: ignore[operator]
        if not problem:
            return
        time.sleep(0.5)
    raise ControlPlaneError(
        f"{name} not ready after {timeout:.0f}s: {problem}", log_tail(plane.process(name).log_file)
    )


_PORT_NAMES = ("etcd", "etcd_peer", "apiserver", "controller_manager", "scheduler", "kwok")


def pick_ports(first: int = 0) -> dict[str, int]:
    """Free 127.0.0.1 ports, one per listener: any free ones, or the first free from ``first`` up."""
    return dict(zip(_PORT_NAMES, free_ports(len(_PORT_NAMES), first), strict=True))


def recorded_ports(plane: ControlPlane) -> dict[str, int]:
    """The ports of an earlier start, checked free; empty when none were recorded.

    A restart keeps them, so the kubeconfig a user copied (its server URL) keeps working.

    Raises:
        ControlPlaneError: A recorded port is held by another process (one line naming it).
    """
    ports = plane.ports()
    if set(ports) != set(_PORT_NAMES):
        return {}
    for name, port in ports.items():
        if not port_is_free(port):
            raise ControlPlaneError(
                f"port {port} ({name}) recorded in {plane.ports_file} is taken by {port_holder(port)}: "
                f"stop it, or delete {plane.ports_file} to pick new ports (then use the new kubeconfig)"
            )
    return ports


def start_control_plane(config: LabConfig, root: Path | None = None, first_port: int = 0) -> ControlPlane:
    """Start every component that is not running (idempotent), then add nodes and volumes.

    The ports of an earlier start are used again (after a crash too); ``first_port`` asks for
    new ones from that port up.
    """
    plane = ControlPlane(root or default_root(config))
    ports = plane.ports()
    if set(plane.running()) != set(COMPONENTS):
        stop_control_plane(plane)
        make_certificates(plane.root / "pki")
        ports = ({} if first_port else recorded_ports(plane)) or pick_ports(first_port)
        atomic_write(plane.ports_file, json.dumps(ports))
        write_kubeconfig(plane, ports["apiserver"])
        argv = _argv(config, plane, ports)
        for name in COMPONENTS:
            plane.process(name).start(argv[name])
            if name == "kube-apiserver":
                _wait(plane, name, lambda: _readyz(plane, ports["apiserver"]), config.start_timeout)
    _wait(plane, "kube-apiserver", lambda: _readyz(plane, ports["apiserver"]), config.start_timeout)
    kube = Kube.from_kubeconfig(str(plane.kubeconfig), CONTEXT)
    _wait(plane, "kube-controller-manager", lambda: _default_service_account(kube), config.start_timeout)
    ensure_nodes_and_volumes(kube, plane)
    return plane


def _default_service_account(kube: Kube) -> str:
    # Pods are refused until the service-account controller made the namespace's account.
    try:
        kube.service_account("default", "default")
    except ApiError as exc:
        return f"ServiceAccount default/default: {exc.status} {exc.reason}"
    return ""


def ensure_nodes_and_volumes(kube: Kube, plane: ControlPlane) -> None:
    """Kwok Nodes (no taint, so every workload schedules) and static hostPath PersistentVolumes."""
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "500Gi"}
    for index in range(NODES):
        name = f"kwok-node-{index}"
        metadata = {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION[0]: KWOK_NODE_ANNOTATION[1]},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        }
        status = {"capacity": capacity, "allocatable": capacity}
        kube.create_if_absent({"apiVersion": "v1", "kind": "Node", "metadata": metadata, "status": status})
    for index in range(STATIC_VOLUMES):
        spec = {
            "capacity": {"storage": VOLUME_SIZE},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": str(plane.root / "volumes" / str(index))},
        }
        metadata = {"name": f"{NAME_PREFIX}{index}", "labels": dict([STATIC_LABEL])}
        kube.create_if_absent(
            {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": metadata, "spec": spec}
        )
    release_static_volumes(kube)


def stop_control_plane(plane: ControlPlane) -> list[str]:
    """Stop the components the lab started (by recorded pid and start time), last first."""
    return [name for name in reversed(COMPONENTS) if plane.process(name).stop()]
