"""Tool calling on the wire: OpenAI-compatible `tools`/`tool_calls` and Anthropic `tool_use`/`tool_result`.

Both providers keep their own request and stream handling; this module turns the request's messages and
tools into each wire format and reads tool calls back (whole, or assembled from streamed pieces).
"""

from __future__ import annotations

import json
from typing import Any

from ..redaction import redact
from .base import ChatRequest, Message, ToolCall

INVALID_ARGUMENTS = "__invalid_arguments__"  # arguments that were not a JSON object: the tool says so
NAME_CHARS = 64  # both APIs name a tool in at most 64 characters: a longer name is no tool offered


def parse_arguments(raw: Any) -> dict[str, Any]:
    """A tool call's arguments: a JSON object (OpenAI sends it as a string, Anthropic as an object)."""
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {INVALID_ARGUMENTS: str(raw)[:200]}


def tool_call(call_id: str, name: str, raw_arguments: Any) -> ToolCall:
    """A tool call read from the model. Its name is model text that reaches the tool's error and the run's
    tool log (get_run, run://), so it is redacted and cut like every other string a parser decodes."""
    return ToolCall(id=call_id, name=redact(name)[:NAME_CHARS], arguments=parse_arguments(raw_arguments))


# -- OpenAI-compatible -------------------------------------------------------------------------

def openai_messages(request: ChatRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in request.messages:
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content})
        elif m.tool_calls:
            out.append({"role": "assistant", "content": m.content or None, "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for c in m.tool_calls]})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def add_openai_tools(body: dict[str, Any], request: ChatRequest) -> None:
    if request.tools:
        body["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                            "parameters": t.parameters}} for t in request.tools]
        if request.tool_choice:
            body["tool_choice"] = request.tool_choice


def openai_tool_calls(message: dict[str, Any]) -> list[ToolCall]:
    """The `tool_calls` of a whole (unstreamed) assistant message."""
    calls = message.get("tool_calls")
    out: list[ToolCall] = []
    for i, c in enumerate(calls if isinstance(calls, list) else []):
        fn = c.get("function") if isinstance(c, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            out.append(tool_call(str(c.get("id") or f"call_{i}"), fn["name"], fn.get("arguments")))
    return out


class OpenAIToolDeltas:
    """Streamed `delta.tool_calls` pieces, joined by their `index`."""

    def __init__(self) -> None:
        self._parts: dict[int, dict[str, str]] = {}

    def add(self, delta: dict[str, Any]) -> None:
        pieces = delta.get("tool_calls")
        for piece in pieces if isinstance(pieces, list) else []:
            if not isinstance(piece, dict):
                continue
            raw_index = piece.get("index")
            index = raw_index if isinstance(raw_index, int) else len(self._parts)
            part = self._parts.setdefault(index, {"id": "", "name": "", "arguments": ""})
            if isinstance(piece.get("id"), str):
                part["id"] = piece["id"]
            raw_fn = piece.get("function")
            fn: dict[str, Any] = raw_fn if isinstance(raw_fn, dict) else {}
            if isinstance(fn.get("name"), str):
                part["name"] += fn["name"]
            if isinstance(fn.get("arguments"), str):
                part["arguments"] += fn["arguments"]

    def calls(self) -> list[ToolCall]:
        return [tool_call(p["id"] or f"call_{i}", p["name"], p["arguments"])
                for i, p in sorted(self._parts.items()) if p["name"]]


# -- Anthropic ---------------------------------------------------------------------------------

def anthropic_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Non-system messages; consecutive tool results go back in one user turn, as the API requires."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif m.tool_calls:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content.strip() else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in m.tool_calls]
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def add_anthropic_tools(body: dict[str, Any], request: ChatRequest) -> None:
    if request.tools:
        body["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                         for t in request.tools]
        if request.tool_choice:
            body["tool_choice"] = {"type": request.tool_choice}


def anthropic_tool_calls(blocks: list[Any]) -> list[ToolCall]:
    return [tool_call(str(b.get("id") or f"toolu_{i}"), b["name"], b.get("input"))
            for i, b in enumerate(blocks)
            if isinstance(b, dict) and b.get("type") == "tool_use" and isinstance(b.get("name"), str)]


class AnthropicToolBlocks:
    """Streamed `tool_use` blocks: started by content_block_start, their input sent as JSON pieces."""

    def __init__(self) -> None:
        self._blocks: dict[int, dict[str, str]] = {}

    def start(self, payload: dict[str, Any]) -> None:
        block = payload.get("content_block")
        if isinstance(block, dict) and block.get("type") == "tool_use" and isinstance(block.get("name"), str):
            raw_index = payload.get("index")
            index = raw_index if isinstance(raw_index, int) else len(self._blocks)
            start = block.get("input")
            self._blocks[index] = {"id": str(block.get("id") or f"toolu_{index}"), "name": block["name"],
                                   "json": json.dumps(start) if isinstance(start, dict) and start else ""}

    def delta(self, payload: dict[str, Any]) -> None:
        delta = payload.get("delta") or {}
        index = payload.get("index")
        block = self._blocks.get(index) if isinstance(index, int) else None
        if block is not None and delta.get("type") == "input_json_delta" and isinstance(delta.get("partial_json"), str):
            block["json"] += delta["partial_json"]

    def calls(self) -> list[ToolCall]:
        return [tool_call(b["id"], b["name"], b["json"])
                for _, b in sorted(self._blocks.items())]
