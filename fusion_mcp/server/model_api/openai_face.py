"""OpenAI's Chat Completions, as the fusion model speaks it: the request read into an `Ask`, the
answer as a `chat.completion`, and a stream as `chat.completion.chunk` events ending in `[DONE]`."""

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


def parse(body: dict[str, Any]) -> Ask:
    model = require_model(body)
    refuse_if_set(body, ("tools", "functions", "function_call"), NO_TOOLS)
    if body.get("tool_choice") not in (None, "none", "auto"):
        raise unsupported("tool_choice", NO_TOOLS)
    if body.get("n") not in (None, 1):
        raise unsupported("n > 1", "it gives one fused answer per request; send several requests instead")
    refuse_if_set(body, ("logprobs", "top_logprobs"), "a fused answer has no token log-probabilities")
    refuse_if_set(body, ("stop",), "stop sequences would cut each model differently; leave stop out")
    refuse_if_set(body, ("audio", "prediction"), "the fusion model reads and writes text only")
    fmt = body.get("response_format")
    if fmt not in (None, {}) and not (isinstance(fmt, dict) and fmt.get("type") == "text"):
        raise unsupported("response_format", "the fused answer is free text; ask for JSON in the message instead")
    if body.get("modalities") not in (None, ["text"]):
        raise unsupported("modalities other than text", "the fusion model reads and writes text only")
    stream = body.get("stream")
    if stream not in (None, True, False):
        raise invalid("stream must be true or false", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise invalid("stream_options must be an object", "stream_options")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise invalid("messages must be a list of {role, content} objects", "messages")
    system: list[str] = []
    turns: list[Turn] = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        role = m.get("role") if isinstance(m, dict) else None
        if role in ("tool", "function") or (role == "assistant" and m.get("tool_calls")):
            raise unsupported(f"{where} (a tool call or result)", NO_TOOLS)
        if role not in ("system", "developer", "user", "assistant"):
            raise invalid(f"{where}.role must be system, developer, user or assistant, not {role!r}", f"{where}.role")
        text = text_of(m.get("content"), where, image_kinds=("image_url", "input_audio", "file"),
                       skip_kinds=("refusal",))
        if role in ("system", "developer"):
            system.append(text)
        else:
            turns.append(Turn(role, text))
    question, history = split_question(turns)
    ask = Ask(model=model, question=question, system="\n\n".join(s for s in system if s.strip()), history=history,
              stream=stream is True, include_usage=options.get("include_usage") is True,
              max_tokens=int_field(body, "max_completion_tokens") or int_field(body, "max_tokens"),
              temperature=number_field(body, "temperature", 0, 2), options=options_of(body.get("fusion")))
    check_context(ask)
    return ask


def response(run: ApiRun, result: FusionResult) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{run.run_id}", "object": "chat.completion", "created": run.created, "model": run.ask.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": result.answer or "", "refusal": None},
                     "logprobs": None, "finish_reason": "length" if cut_by_limit(result) else "stop"}],
        "usage": usage_of(result),
        "fusion": fusion_field(result, run.ask.model),
    }


def _chunk(run: ApiRun, delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    return {"id": f"chatcmpl-{run.run_id}", "object": "chat.completion.chunk", "created": run.created,
            "model": run.ask.model, "choices": choices, **extra}


class OpenAIFace:
    wire: Wire = "openai"
    parse = staticmethod(parse)
    response = staticmethod(response)

    @staticmethod
    async def opened(out: EventStream, run: ApiRun) -> None:
        await out.event(_chunk(run, {"role": "assistant", "content": ""}))

    @staticmethod
    async def keepalive(out: EventStream, run: ApiRun, progress: str) -> None:
        await out.comment(f"fusion run {run.run_id}: {progress}")

    @staticmethod
    async def text(out: EventStream, run: ApiRun, text: str) -> None:
        await out.event(_chunk(run, {"content": text}))

    @staticmethod
    async def finished(out: EventStream, run: ApiRun, result: FusionResult) -> None:
        meta = fusion_field(result, run.ask.model)
        finish = "length" if cut_by_limit(result) else "stop"
        if run.ask.include_usage:  # usage in the last chunk (choices empty), as OpenAI sends it
            await out.event(_chunk(run, {}, finish))
            await out.event(_chunk(run, None, usage=usage_of(result), fusion=meta))
        else:
            await out.event(_chunk(run, {}, finish, fusion=meta))
        await out.event("[DONE]")

    @staticmethod
    async def failed(out: EventStream, run: ApiRun, error: ApiError) -> None:
        await out.event(error.body("openai"))
