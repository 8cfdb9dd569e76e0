"""A bare JSON-RPC client over a server process's stdio, for protocol features the SDK's client does not
send (a task-augmented tools/call): it writes the messages a host writes and keeps what comes back."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from typing import Any

from tests.services import stop_process


class RpcError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        self.code = error.get("code")
        self.message = str(error.get("message", ""))
        super().__init__(f"{self.code}: {self.message}")


class StdioPeer:
    """`fusion-mcp serve` over stdio, spoken to line by line."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        full_env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env}
        self.proc = subprocess.Popen([sys.executable, "-m", "fusion_mcp", "serve", *args], env=full_env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.notifications: list[dict[str, Any]] = []
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._next = 0
        self._lock = threading.Lock()
        self._log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_log, daemon=True).start()

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._log.append(line)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            msg = json.loads(line)
            if "id" in msg and ("result" in msg or "error" in msg):
                self._replies.setdefault(msg["id"], queue.Queue()).put(msg)
            elif "method" in msg and "id" not in msg:
                self.notifications.append(msg)

    def request(self, method: str, params: dict[str, Any] | None = None, timeout_s: float = 60) -> Any:
        with self._lock:
            self._next += 1
            rid = self._next
            box = self._replies.setdefault(rid, queue.Queue())
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, **({"params": params} if params is not None else {})})
        reply = box.get(timeout=timeout_s)
        if "error" in reply:
            raise RpcError(reply["error"])
        return reply["result"]

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def initialize(self, version: str = "2025-11-25", capabilities: dict[str, Any] | None = None) -> Any:
        result = self.request("initialize", {"protocolVersion": version, "capabilities": capabilities or {},
                                             "clientInfo": {"name": "test host", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return result

    def close(self) -> str:
        """Stop the server; its stderr (the log) for assertions."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)  # end of input ends a stdio server
            except subprocess.TimeoutExpired:
                pass
        stop_process(self.proc)
        return "".join(self._log)
