"""Exposure: every process Switchyard starts (gateway, blue, green) listens on 127.0.0.1 only,
and so does the app unless its operator says otherwise (tests/browser/test_exposure.py starts it).

Read from the kernel, not from the code: the listening TCP sockets of each
recorded pid come from /proc/net/tcp and /proc/net/tcp6 (matched to the pid
through the socket inodes in /proc/<pid>/fd).
"""

from __future__ import annotations

import os
import socket
import struct
import tomllib
from pathlib import Path

from engine import services
from engine.store import connect
from engine.store import deployments as store

LISTEN = "0A"


def listening_sockets() -> dict[int, tuple[str, int]]:
    """Socket inode -> (address, port) of every listening TCP socket (IPv4 and IPv6)."""
    found: dict[int, tuple[str, int]] = {}
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if state != LISTEN:
                continue
            addr_hex, port_hex = local.split(":")
            raw = bytes.fromhex(addr_hex)
            # the kernel prints each 32-bit word in host order
            words = struct.unpack(f"<{len(raw) // 4}I", raw)
            packed = struct.pack(f">{len(words)}I", *words)
            found[inode] = (socket.inet_ntop(family, packed), int(port_hex, 16))
    return found


def sockets_of(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def test_gateway_blue_and_green_listen_on_loopback_only(ready_ws) -> None:
    ws = ready_ws("hello_world_api")
    deployed = services.deploy(ws, "hello_world_api", "blue_green", actor="lead", reason="exposure check")
    assert deployed.state == "green_deployed"
    with connect(ws.db_path) as con:
        procs = store.live_processes(con)
    roles = sorted(procs["role"].to_list())
    assert roles == ["blue", "gateway", "green"], roles
    listening = listening_sockets()
    for row in procs.iter_rows(named=True):
        mine = [listening[i] for i in sockets_of(int(row["pid"])) if i in listening]
        assert mine, f"{row['role']} (pid {row['pid']}) listens on nothing"
        assert (("127.0.0.1", int(row["port"]))) in mine, (row["role"], mine)
        exposed = [(a, p) for a, p in mine if a != "127.0.0.1"]
        assert not exposed, f"{row['role']} (pid {row['pid']}) listens beyond loopback: {exposed}"
    # and nothing this workspace started listens on a wildcard address under another pid
    wildcard = {("0.0.0.0", int(p)) for p in procs["port"]} | {("::", int(p)) for p in procs["port"]}
    assert not wildcard & set(listening.values())


def test_the_apps_own_config_binds_loopback() -> None:
    """``streamlit run app.py`` reads .streamlit/config.toml beside app.py, from any working directory."""
    config = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"
    assert tomllib.loads(config.read_text(encoding="utf-8"))["server"]["address"] == "127.0.0.1"
