"""Anthropic's Messages API, as the fusion model speaks it: the request read into an `Ask`, the answer
as a `message`, and a stream as message_start, content_block_start, content_block_delta...,
content_block_stop, message_delta, message_stop, with `ping` events while the panel drafts."""

from __future__ import annotations

from typing import Any

from ...fusion.result import FusionResult
from .asgi import EventStream
from .asks import (
    NO_TOOLS,
    Ask,
    Turn,
    check_context,
    int_field,
    number_field,
    options_of,
    refuse_if_set,
    require_model,
    split_question,
    text_of,
)
from .errors import ApiError, Wire, invalid, unsupported
from .meta import cut_by_limit, fusion_field, usage_of
from .runner import ApiRun

IMAGES = ("image", "document", "file", "search_result", "container_upload")


def parse(body: dict[str, Any]) -> Ask:
    model = require_model(body)
    refuse_if_set(body, ("tools", "mcp_servers"), NO_TOOLS)
    choice = body.get("tool_choice")
    if choice not in (None, {}) and not (isinstance(choice, dict) and choice.get("type") in ("auto", "none")):
        raise unsupported("tool_choice", NO_TOOLS)
    refuse_if_set(body, ("stop_sequences",), "stop sequences would cut each model differently; leave them out")
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled"):
        raise unsupported("thinking", "the panel's models reason as their ensemble configures them; leave it out")
    stream = body.get("stream")
    if stream not in (None, True, False):
        raise invalid("stream must be true or false", "stream")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise invalid("messages must be a list of {role, content} objects", "messages")
    turns: list[Turn] = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("user", "assistant"):
            raise invalid(f"{where}.role must be user or assistant, not {role!r}", f"{where}.role")
        turns.append(Turn(role, text_of(m.get("content"), where, image_kinds=IMAGES,
                                        skip_kinds=("thinking", "redacted_thinking"))))
    question, history = split_question(turns)
    ask = Ask(model=model, question=question, system=text_of(body.get("system"), "system", image_kinds=IMAGES),
              history=history, stream=stream is True, max_tokens=int_field(body, "max_tokens"),
              temperature=number_field(body, "temperature", 0, 1), options=options_of(body.get("fusion")))
    check_context(ask)
    return ask


def _usage(result: FusionResult) -> dict[str, Any]:
    u = usage_of(result)
    return {"input_tokens": u["prompt_tokens"], "output_tokens": u["completion_tokens"], "cost": u["cost"]}


def _stop(result: FusionResult) -> str:
    return "max_tokens" if cut_by_limit(result) else "end_turn"


def response(run: ApiRun, result: FusionResult) -> dict[str, Any]:
    return {
        "id": f"msg_{run.run_id}", "type": "message", "role": "assistant", "model": run.ask.model,
        "content": [{"type": "text", "text": result.answer or ""}],
        "stop_reason": _stop(result), "stop_sequence": None,
        "usage": _usage(result),
        "fusion": fusion_field(result, run.ask.model),
    }


class AnthropicFace:
    wire: Wire = "anthropic"
    parse = staticmethod(parse)
    response = staticmethod(response)

    @staticmethod
    async def opened(out: EventStream, run: ApiRun) -> None:
        message: dict[str, Any] = {
            "id": f"msg_{run.run_id}", "type": "message", "role": "assistant", "model": run.ask.model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},  # known once the run is done: message_delta
        }
        await out.event({"type": "message_start", "message": message}, "message_start")
        await out.event({"type": "ping"}, "ping")
        await out.event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                        "content_block_start")

    @staticmethod
    async def keepalive(out: EventStream, run: ApiRun, progress: str) -> None:
        await out.comment(f"fusion run {run.run_id}: {progress}")
        await out.event({"type": "ping"}, "ping")

    @staticmethod
    async def text(out: EventStream, run: ApiRun, text: str) -> None:
        await out.event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
                        "content_block_delta")

    @staticmethod
    async def finished(out: EventStream, run: ApiRun, result: FusionResult) -> None:
        await out.event({"type": "content_block_stop", "index": 0}, "content_block_stop")
        await out.event({"type": "message_delta", "delta": {"stop_reason": _stop(result), "stop_sequence": None},
                         "usage": _usage(result), "fusion": fusion_field(result, run.ask.model)}, "message_delta")
        await out.event({"type": "message_stop"}, "message_stop")

    @staticmethod
    async def failed(out: EventStream, run: ApiRun, error: ApiError) -> None:
        await out.event(error.body("anthropic"), "error")
