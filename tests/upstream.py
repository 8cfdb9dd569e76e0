"""A loopback LLM upstream for the tests: real HTTP on 127.0.0.1, both wire formats, scripted models.

Each model id gets a `Behaviour`: fixed or computed text, a delay, HTTP errors (429 with
Retry-After, 500, ...) for the first N calls, malformed JSON, empty choices, or a hang. A model can
be paced like a real one: a time to first token, then `output_tokens` tokens at `tokens_per_s`;
a streamed request (`stream: true`, OpenAI chunks or Anthropic events) gets its text at that pace,
a plain one gets it whole at the end. Every request is recorded, and so is every client that hung
up while its request was still being served.
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
# Given the request body: the tools to call ([{"name": ..., "arguments": {...}}]), or None/[] to answer text.
ToolsFn = Callable[[dict[str, Any]], list[dict[str, Any]] | None]


def content_text(content: Any) -> str:
    """A message's text in either wire format: a string, or blocks (text, tool_result)."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content if isinstance(content, list) else []:
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif isinstance(block, dict) and block.get("type") == "tool_result":
            parts.append(content_text(block.get("content")))
    return "\n".join(parts)


def tool_results(body: dict[str, Any]) -> list[str]:
    """The tool results a request carries, in order, in either wire format."""
    out = []
    for m in body.get("messages", []):
        if m.get("role") == "tool":
            out.append(content_text(m.get("content")))
        elif isinstance(m.get("content"), list):
            out += [content_text(b.get("content")) for b in m["content"]
                    if isinstance(b, dict) and b.get("type") == "tool_result"]
    return out


def tool_names(body: dict[str, Any]) -> list[str]:
    """The names of the tools a request offers, in either wire format."""
    return [str(t.get("name") or (t.get("function") or {}).get("name")) for t in body.get("tools") or []]


@dataclass
class Behaviour:
    text: str | TextFn = "scripted answer"
    delay: float = 0.0
    status: int = 200
    fail_times: int = -1  # with status != 200: fail the first N calls, then answer; -1 fails always
    fail_share: float = 0.0  # with status != 200 and > 0: fail this share of the calls, spread evenly
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
    finish_reason: str = "stop"  # "length": cut off by max_tokens (Anthropic: stop_reason "max_tokens")
    annotations: list[dict[str, Any]] | None = None  # OpenRouter's web-search url_citation annotations
    rejects_max_tokens: bool = False  # like OpenAI's reasoning models: 400 unless max_completion_tokens
    refuses_stream: bool = False  # a server that answers 400 to `stream: true`
    ttft: float = 0.0  # seconds to the first token (after `delay`)
    tokens_per_s: float | None = None  # when set, `output_tokens` tokens arrive at this rate
    tool_calls: ToolsFn | None = None  # a model that asks for tools (both wire formats, streamed or not)

    def duration(self) -> float:
        """Seconds from the request to the last token."""
        rate = self.tokens_per_s
        return self.delay + self.ttft + ((self.output_tokens - 1) / rate if rate else 0.0)


class _Server(ThreadingHTTPServer):
    # A burst opens hundreds of connections at once (a streamed answer closes its connection): the
    # default listen backlog of 5 would reset some of them before they are accepted.
    request_queue_size = 1024


@dataclass
class Recorded:
    path: str
    model: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)

    def user_text(self) -> str:
        return "\n".join(content_text(m["content"]) for m in self.body.get("messages", []) if m.get("role") == "user")

    def all_text(self) -> str:
        parts = [content_text(m.get("content")) for m in self.body.get("messages", [])]
        if isinstance(self.body.get("system"), str):
            parts.insert(0, self.body["system"])
        return "\n".join(parts)


class Upstream:
    def __init__(self) -> None:
        self.behaviours: dict[str, Behaviour] = {}
        self.default = Behaviour()
        self.requests: list[Recorded] = []
        # GET .../models: the listing served (OpenRouter's shape: id, context_length, pricing per token)
        self.models: list[dict[str, Any]] = []
        self.models_status = 200
        self.listing_requests: list[Recorded] = []
        self.disconnects: list[str] = []  # models whose caller hung up mid-request
        self.in_flight = 0
        self.max_in_flight = 0
        self.rate_limited = 0  # 429s sent by rate_limit_above
        self._calls: dict[str, int] = {}
        self._workers: dict[str, threading.Semaphore] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = _Server(("127.0.0.1", 0), self._handler())
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

    def start(self) -> Upstream:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Upstream:
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

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                if not self.path.endswith("/models"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                with upstream._lock:
                    upstream.listing_requests.append(Recorded(self.path, "", headers, {}))
                if upstream.models_status != 200:
                    self._send(upstream.models_status, {"error": {"message": "scripted listing failure"}})
                    return
                self._send(200, {"object": "list", "data": upstream.models})

            def do_POST(self) -> None:
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
                    self.counted = True
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
                    self.served()

            def served(self) -> None:
                """No longer in flight: called just before the last bytes of an answer go out, since
                a caller that has them may send its next request before this thread runs again."""
                with upstream._lock:
                    if getattr(self, "counted", False):
                        self.counted = False
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
                    self.served()
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
        while not self._stop.is_set():
            if handler.client_gone():
                with self._lock:
                    self.disconnects.append(model)
                return False
            now = time.monotonic()
            if end is not None and now >= end:
                return True
            time.sleep(0.02 if end is None else min(0.02, end - now))
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
        stream = body.get("stream") is True
        if b.hang:
            self._wait(handler, None, model)
            return
        if b.delay and not self._wait(handler, b.delay, model):
            return
        if b.status != 200 and b.fail_share > 0:
            fails = int(n * b.fail_share) != int((n - 1) * b.fail_share)
        else:
            fails = b.status != 200 and (b.fail_times < 0 or n <= b.fail_times)
        if fails:
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
        if b.rejects_max_tokens and "max_tokens" in body:
            handler._send(400, {"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with "
                                                     "this model. Use 'max_completion_tokens' instead."}})
            return
        if stream and b.refuses_stream:
            handler._send(400, {"error": {"message": "stream: streaming is not supported by this server"}})
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
        calls = b.tool_calls(body) if b.tool_calls is not None else None
        if calls:
            self._tool_answer(handler, model, b, calls, n, anthropic, stream)
            return
        text = "" if b.empty_choices else (b.text(body) if callable(b.text) else b.text)
        if stream:
            self._stream(handler, model, b, text, anthropic)
            return
        if (b.ttft or b.tokens_per_s) and not self._wait(handler, b.duration() - b.delay, model):
            return
        if anthropic:
            payload = {
                "id": "msg_test", "type": "message", "role": "assistant", "model": model,
                "content": [] if b.empty_choices else [{"type": "text", "text": text}],
                "stop_reason": "max_tokens" if b.finish_reason == "length" else "end_turn",
                "usage": {"input_tokens": b.input_tokens, "output_tokens": b.output_tokens},
            }
        else:
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if b.annotations is not None:
                message["annotations"] = b.annotations
            payload = {
                "id": "chatcmpl-test", "object": "chat.completion", "model": model,
                "choices": [] if b.empty_choices else [
                    {"index": 0, "message": message, "finish_reason": b.finish_reason}
                ],
                "usage": self._usage(b),
            }
        handler._send(200, payload)

    def _tool_answer(self, handler: Any, model: str, b: Behaviour, calls: list[dict[str, Any]], n: int,
                     anthropic: bool, stream: bool) -> None:
        """Tool calls instead of text: `tool_calls` (OpenAI) or `tool_use` blocks (Anthropic), streamed in
        pieces (the arguments split in two) when the request streams."""
        ids = [f"{'toolu' if anthropic else 'call'}_{n}_{i}" for i in range(len(calls))]
        if not stream:
            if anthropic:
                payload: dict[str, Any] = {
                    "id": "msg_test", "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "tool_use", "id": ids[i], "name": c["name"], "input": c.get("arguments", {})}
                                for i, c in enumerate(calls)],
                    "stop_reason": "tool_use", "usage": {"input_tokens": b.input_tokens, "output_tokens": b.output_tokens}}
            else:
                payload = {"id": "chatcmpl-test", "object": "chat.completion", "model": model, "usage": self._usage(b),
                           "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                               "role": "assistant", "content": None, "tool_calls": [
                                   {"id": ids[i], "type": "function", "function": {
                                       "name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}}
                                   for i, c in enumerate(calls)]}}]}
            handler._send(200, payload)
            return
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("connection", "close")
        handler.end_headers()
        handler.close_connection = True
        events: list[tuple[str | None, Any]] = []
        if anthropic:
            events.append(("message_start", {"type": "message_start", "message": {
                "id": "msg_test", "type": "message", "role": "assistant", "model": model, "content": [],
                "usage": {"input_tokens": b.input_tokens, "output_tokens": 1}}}))
            for i, c in enumerate(calls):
                args = json.dumps(c.get("arguments", {}))
                events.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": {
                    "type": "tool_use", "id": ids[i], "name": c["name"], "input": {}}}))
                for piece in (args[:len(args) // 2], args[len(args) // 2:]):
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                           "delta": {"type": "input_json_delta", "partial_json": piece}}))
                events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
            events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                                             "usage": {"output_tokens": b.output_tokens}}))
            events.append(("message_stop", {"type": "message_stop"}))
        else:
            def chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[None, Any]:
                return None, {"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": model,
                              "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            for i, c in enumerate(calls):
                args = json.dumps(c.get("arguments", {}))
                events.append(chunk({"role": "assistant", "tool_calls": [{"index": i, "id": ids[i], "type": "function",
                                                                          "function": {"name": c["name"], "arguments": ""}}]}))
                for piece in (args[:len(args) // 2], args[len(args) // 2:]):
                    events.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
            events.append(chunk({}, "tool_calls"))
            events.append((None, {"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": model,
                                  "choices": [], "usage": self._usage(b)}))
            events.append((None, "[DONE]"))
        handler.served()
        try:
            for event, data in events:
                line = (f"event: {event}\n" if event else "") + f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"
                handler.wfile.write(line.encode())
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def _usage(b: Behaviour) -> dict[str, Any]:
        usage: dict[str, Any] = {"prompt_tokens": b.input_tokens, "completion_tokens": b.output_tokens,
                                 "total_tokens": b.input_tokens + b.output_tokens}
        if b.cost is not None:
            usage["cost"] = b.cost
        return usage

    @staticmethod
    def _pieces(text: str, n: int) -> list[str]:
        """The text cut into n tokens (character slices), so any text (JSON too) streams at n tokens' pace."""
        n = max(1, n)
        if len(text) <= n:
            return list(text) + [""] * (n - len(text))
        step = len(text) / n
        return [text[round(i * step):round((i + 1) * step)] for i in range(n)]

    def _stream(self, handler: Any, model: str, b: Behaviour, text: str, anthropic: bool) -> None:
        """Server-sent events at the model's pace; stops (and records it) when the caller hangs up."""
        try:
            handler.send_response(200)
            handler.send_header("content-type", "text/event-stream")
            handler.send_header("cache-control", "no-cache")
            handler.send_header("connection", "close")
            handler.end_headers()
            handler.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            return

        def send(data: Any, event: str | None = None) -> bool:
            line = (f"event: {event}\n" if event else "") + f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"
            try:
                handler.wfile.write(line.encode())
                handler.wfile.flush()
                return True
            except (BrokenPipeError, ConnectionResetError):
                with self._lock:
                    self.disconnects.append(model)
                return False

        pieces = self._pieces(text, b.output_tokens)
        gap = 1 / b.tokens_per_s if b.tokens_per_s else 0.0
        if anthropic:
            start = {"type": "message_start", "message": {"id": "msg_test", "type": "message", "role": "assistant",
                     "model": model, "content": [], "usage": {"input_tokens": b.input_tokens, "output_tokens": 1}}}
            if not send(start, "message_start"):
                return
            send({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                 "content_block_start")
        if b.ttft and not self._wait(handler, b.ttft, model):
            return
        first = time.monotonic()
        sent = 0
        while sent < len(pieces):
            # every token that is due by now goes out (tokens are due at first + i * gap), then a short nap
            due = len(pieces) if not gap else min(len(pieces), int((time.monotonic() - first) / gap) + 1)
            text_due = "".join(pieces[sent:due])
            sent = due
            if text_due:
                if anthropic:
                    ok = send({"type": "content_block_delta", "index": 0,
                               "delta": {"type": "text_delta", "text": text_due}}, "content_block_delta")
                else:
                    ok = send({"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": model,
                               "choices": [{"index": 0, "delta": {"content": text_due}, "finish_reason": None}]})
                if not ok:
                    return
            if sent < len(pieces) and not self._wait(handler, min(0.02, first + sent * gap - time.monotonic()), model):
                return
        handler.served()
        if anthropic:
            send({"type": "content_block_stop", "index": 0}, "content_block_stop")
            stop = "max_tokens" if b.finish_reason == "length" else "end_turn"
            send({"type": "message_delta", "delta": {"stop_reason": stop},
                  "usage": {"output_tokens": b.output_tokens}}, "message_delta")
            send({"type": "message_stop"}, "message_stop")
        else:
            last: dict[str, Any] = {"annotations": b.annotations} if b.annotations is not None else {}
            send({"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": model,
                  "choices": [{"index": 0, "delta": last, "finish_reason": b.finish_reason}]})
            send({"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": model, "choices": [],
                  "usage": self._usage(b)})
            send("[DONE]")
