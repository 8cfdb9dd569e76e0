"""A loopback LLM upstream for the tests: real HTTP on 127.0.0.1, both wire formats, scripted models.

Each model id gets a `Behaviour`: fixed or computed text, a delay, HTTP errors (429 with
Retry-After, 500, ...) for the first N calls, malformed JSON, empty choices, or a hang. Every request
is recorded, and so is every client that hung up while its request was still being served.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TextFn = Callable[[dict[str, Any]], str]


@dataclass
class Behaviour:
    text: str | TextFn = "scripted answer"
    delay: float = 0.0
    status: int = 200
    fail_times: int = -1  # with status != 200: fail the first N calls, then answer; -1 fails always
    retry_after: str | None = None
    malformed: bool = False
    empty_choices: bool = False
    hang: bool = False
    input_tokens: int = 11
    output_tokens: int = 7
    cost: float | None = None  # OpenRouter-style usage.cost
    echo_auth: bool = False  # a careless upstream that quotes the caller's credentials in its error
    rejects_json_schema: bool = False  # like llama.cpp's server: 500 on OpenAI's json_schema format
    error_message: str | None = None  # with status != 200: the error's message (default "scripted N")
    raw_body: bytes | None = None  # answer 200 with exactly these bytes (a malformed reply)
    reset: bool = False  # send the headers and part of the body, then reset the connection
    rate_limit_above: int = 0  # > 0: answer 429 to a request that finds more than N in flight
    workers: int = 0  # > 0: serve N requests at a time, the rest queue (answer time rises with load)


@dataclass
class Recorded:
    path: str
    model: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)

    def user_text(self) -> str:
        return "\n".join(m["content"] for m in self.body.get("messages", []) if m.get("role") == "user")

    def all_text(self) -> str:
        parts = [m["content"] for m in self.body.get("messages", [])]
        if isinstance(self.body.get("system"), str):
            parts.insert(0, self.body["system"])
        return "\n".join(parts)


class Upstream:
    def __init__(self) -> None:
        self.behaviours: dict[str, Behaviour] = {}
        self.default = Behaviour()
        self.requests: list[Recorded] = []
        self.disconnects: list[str] = []  # models whose caller hung up mid-request
        self.in_flight = 0
        self.max_in_flight = 0
        self.rate_limited = 0  # 429s sent by rate_limit_above
        self._calls: dict[str, int] = {}
        self._workers: dict[str, threading.Semaphore] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, model: str, behaviour: Behaviour | None = None, **kw: Any) -> None:
        self.behaviours[model] = behaviour or Behaviour(**kw)

    def reset_counts(self) -> None:
        """Start counting calls (for fail_times) and the peak in flight afresh."""
        with self._lock:
            self._calls.clear()
            self.max_in_flight = self.in_flight
            self.rate_limited = 0

    def calls(self, model: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if model is None or r.model == model]

    def start(self) -> "Upstream":
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "Upstream":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- serving -------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    self._send(400, {"error": {"message": "request is not JSON"}})
                    return
                model = body.get("model", "")
                anthropic = self.path.endswith("/messages")
                if not (anthropic or self.path.endswith("/chat/completions")):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                with upstream._lock:
                    upstream.requests.append(Recorded(self.path, model, {k.lower(): v for k, v in self.headers.items()}, body))
                    n = upstream._calls[model] = upstream._calls.get(model, 0) + 1
                    upstream.in_flight += 1
                    upstream.max_in_flight = max(upstream.max_in_flight, upstream.in_flight)
                    limit = upstream.behaviours.get(model, upstream.default).rate_limit_above
                    over = limit > 0 and upstream.in_flight > limit
                    if over:
                        upstream.rate_limited += 1
                try:
                    if over:
                        self._send(429, {"error": {"message": f"rate limited: more than {limit} in flight"}},
                                   {"retry-after": "0.2"})
                        return
                    upstream._serve(self, body, model, n, anthropic)
                finally:
                    with upstream._lock:
                        upstream.in_flight -= 1

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def client_gone(self) -> bool:
                sock: socket.socket = self.connection
                readable, _, _ = select.select([sock], [], [], 0)
                if not readable:
                    return False
                try:
                    return sock.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    return True

        return Handler

    def _wait(self, handler: Any, seconds: float | None, model: str) -> bool:
        """Sleep, watching for the caller hanging up; False if it did."""
        end = None if seconds is None else time.monotonic() + seconds
        while not self._stop.is_set() and (end is None or time.monotonic() < end):
            if handler.client_gone():
                with self._lock:
                    self.disconnects.append(model)
                return False
            time.sleep(0.02)
        return True

    def _serve(self, handler: Any, body: dict[str, Any], model: str, n: int, anthropic: bool) -> None:
        b = self.behaviours.get(model, self.default)
        if b.workers:
            with self._lock:
                workers = self._workers.setdefault(model, threading.Semaphore(b.workers))
            with workers:
                self._serve_now(handler, body, model, n, anthropic, b)
            return
        self._serve_now(handler, body, model, n, anthropic, b)

    def _serve_now(self, handler: Any, body: dict[str, Any], model: str, n: int, anthropic: bool, b: Behaviour) -> None:
        credentials = handler.headers.get("authorization") or handler.headers.get("x-api-key") or ""
        if b.hang:
            self._wait(handler, None, model)
            return
        if b.delay and not self._wait(handler, b.delay, model):
            return
        if b.status != 200 and (b.fail_times < 0 or n <= b.fail_times):
            headers = {"retry-after": b.retry_after} if b.retry_after else {}
            if anthropic:
                kind = {429: "rate_limit_error", 401: "authentication_error", 404: "not_found_error"}.get(b.status, "api_error")
                payload: Any = {"type": "error", "error": {"type": kind, "message": f"scripted {b.status}"}}
            else:
                payload = {"error": {"message": f"scripted {b.status}", "code": b.status}}
            if b.error_message is not None:
                payload["error"]["message"] = b.error_message
            if b.echo_auth:
                payload["error"]["message"] += f" for credentials {credentials!r}"
            handler._send(b.status, payload, headers)
            return
        if b.rejects_json_schema and (body.get("response_format") or {}).get("type") == "json_schema":
            handler._send(500, {"error": {"message": "response_format: json_schema is not supported"}})
            return
        if b.malformed:
            handler._send(200, None, raw=b'{"choices": [ {"message": oops')
            return
        if b.raw_body is not None:
            handler._send(200, None, raw=b.raw_body)
            return
        if b.reset:
            handler.close_connection = True
            handler.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"choi")
            handler.wfile.flush()
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.connection.close()
            return
        text = b.text(body) if callable(b.text) else b.text
        if anthropic:
            payload = {
                "id": "msg_test", "type": "message", "role": "assistant", "model": model,
                "content": [] if b.empty_choices else [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": b.input_tokens, "output_tokens": b.output_tokens},
            }
        else:
            usage: dict[str, Any] = {
                "prompt_tokens": b.input_tokens, "completion_tokens": b.output_tokens,
                "total_tokens": b.input_tokens + b.output_tokens,
            }
            if b.cost is not None:
                usage["cost"] = b.cost
            payload = {
                "id": "chatcmpl-test", "object": "chat.completion", "model": model,
                "choices": [] if b.empty_choices else [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                ],
                "usage": usage,
            }
        handler._send(200, payload)
