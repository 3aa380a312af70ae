"""Ports are picked once per process: the tests' configs and the control plane never share one."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

from lab.loopback_ports import free_ports
from lab.provision.control_plane import pick_ports
from tests.conftest import make_config


def test_many_configs_and_control_planes_never_share_a_port(tmp_path: Path) -> None:
    drawn: list[int] = []
    for _ in range(500):
        drawn += dataclasses.asdict(make_config(tmp_path).ports).values()
        drawn += pick_ports().values() if len(drawn) % 10 == 0 else []
    for _ in range(50):
        drawn += pick_ports().values()
    defaults = set(dataclasses.asdict(make_config(tmp_path).ports).values())
    picked = [port for port in drawn if port not in defaults]  # kfp_ui etc. keep their defaults
    assert len(picked) >= 500 * 4 + 50 * 6
    assert len(picked) == len(set(picked)), "a port was handed out twice"
    ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert max(picked) < ephemeral, "an outgoing connection may take a port of the ephemeral range"


def test_ports_from_a_first_one_skip_a_listener_and_what_was_handed_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        held = listener.getsockname()[1]
        first = pick_ports(held)
        assert held not in first.values()
        assert min(first.values()) > held
        again = free_ports(3, held)
    assert held not in again and not set(again) & set(first.values())
