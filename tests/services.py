"""Real services for the replica tests: a `redis-server`, `fusion-mcp serve` replicas, and haproxy.

Each runs as its own process on a free loopback port, and is stopped (killed if need be) on exit.
`make test` installs redis-server and haproxy from Debian when they are missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[str], what: str, timeout_s: float = 30,
                  host: str = "127.0.0.1") -> None:
    """Until `proc` listens on `port`; fails the test (with its stderr) if it exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"{what} exited {proc.returncode}: {err}")
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not open port {port} within {timeout_s:g} s")


def need(program: str) -> str:
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise AssertionError(f"{program} is not installed: `make test` installs it (apt-get install {program})")
    return path


class Service:
    """One child process; `stop` ends it politely, `kill` with SIGKILL (a replica that dies)."""

    def __init__(self, argv: list[str], port: int, what: str, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.what = what
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for_port(port, self.proc, what)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[str]) -> None:
    """End a child politely, with SIGKILL if it will not go within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()


def start_redis(folder: Path) -> Service:
    """A throwaway redis-server: no persistence, loopback only."""
    port = free_port()
    argv = [need("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(folder), "--daemonize", "no"]
    return Service(argv, port, "redis-server")


def start_replica(env: dict[str, str], store: str, *extra: str) -> Service:
    """`fusion-mcp serve --transport streamable-http --store URL` on a free port."""
    port = free_port()
    full_env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env}
    argv = [sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http", "--port", str(port),
            "--store", store, *extra]
    return Service(argv, port, "fusion-mcp replica", full_env)


HAPROXY_CFG = """\
global
    maxconn 4096
    stats socket {stats} mode 600 level admin

defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s

frontend mcp
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
{servers}
"""


def start_haproxy(folder: Path, backends: list[Service]) -> Service:
    """haproxy in front of `backends`, round robin per request (the configuration docs/deploy.md shows)."""
    port = free_port()
    servers = "\n".join(f"    server r{i} 127.0.0.1:{b.port}" for i, b in enumerate(backends))
    cfg = folder / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(stats=folder / "haproxy.sock", port=port, servers=servers))
    return Service([need("haproxy"), "-db", "-f", str(cfg)], port, "haproxy")


def haproxy_requests(folder: Path) -> dict[str, int]:
    """Requests each backend server has been sent, from haproxy's stats socket (`show stat`)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(folder / "haproxy.sock"))
        s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    lines = data.decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    counts = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") == "replicas" and row.get("svname", "").startswith("r"):
            counts[row["svname"]] = int(row.get("stot") or 0)
    return counts


class RestartableRedis:
    """A redis-server on a fixed port, so that it can be killed and started again where it was."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        argv = [need("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.folder), "--daemonize", "no"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for_port(self.port, self.proc, "redis-server")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def cli(self, *args: str) -> str:
        return subprocess.run([need("redis-cli"), "-p", str(self.port), *args], capture_output=True, text=True,
                              timeout=10).stdout

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class LoggedReplica:
    """`fusion-mcp serve --store` with its log in a file (read while it runs)."""

    def __init__(self, env: dict[str, str], store: str, log: Path, *extra: str) -> None:
        self.port, self.log = free_port(), log
        full = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env}
        self.proc = subprocess.Popen([sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http",
                                      "--port", str(self.port), "--store", store, "--tool-timeout", "2", *extra],
                                     env=full, stdout=subprocess.DEVNULL, stderr=log.open("w"), text=True)
        wait_for_port(self.port, self.proc, "fusion-mcp replica")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def said(self) -> str:
        """The log so far, its lines joined (the log wraps long messages)."""
        return " ".join(self.log.read_text(errors="replace").split())


def fast_models(up: Any, **pace: Any) -> None:
    """The panel the replica and team tests ask (alpha and beta draft, judge reviews, fuser answers), on
    the loopback upstream `up`: at once, or at `pace` (the upstream's ttft, tokens_per_s, ...)."""
    from tests.conftest import review_json

    up.script("alpha", text="Answer: Paris.", **pace)
    up.script("beta", text="Answer: Lyon.", **pace)
    up.script("judge", text=review_json({"A": (9, 9, 9), "B": (3, 3, 3)}), **pace)
    up.script("fuser", text="Paris is the capital.", **pace)


async def settle(client: Any, first: Any) -> dict[str, Any]:
    """Poll get_run until the run is no longer running; its last answer."""
    out = first.structured_content
    for _ in range(100):
        assert not first.is_error, first.content
        if out["status"] != "running":
            return out
        first = await client.call_tool("get_run", {"run_id": out["run_id"], "wait_s": 60})
        out = first.structured_content
    raise AssertionError("the run was still running after 100 polls")
