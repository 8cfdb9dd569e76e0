"""What a chat request asks of the fusion model, whichever API it came in: one `Ask`.

The last user message is the question; the system prompt and the earlier turns become the context the
drafters (and the reviewer and synthesizer) see, through the engine's own context block. `max_tokens`
and `temperature` go to the synthesizer; the `fusion` object carries the per-call options the tools
take, checked by the same field rules. What the fusion model cannot honour is refused by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..tools import Deadline, Drafters, MaxCost, Reviewer, Synthesizer
from .errors import invalid, unsupported

MAX_QUESTION_CHARS = 100_000  # the tools' limits on question and context
MAX_CONTEXT_CHARS = 400_000
NO_TOOLS = "the fusion model answers in text and calls no client tools; leave the tools out"


class FusionOptions(BaseModel):
    """The `fusion` extension object of a request: the tools' per-call options."""

    model_config = ConfigDict(extra="forbid")
    drafters: Drafters = None
    reviewer: Reviewer = None
    synthesizer: Synthesizer = None
    criteria: Annotated[str | None, Field(min_length=1, max_length=4000)] = None
    max_cost_usd: MaxCost = None
    deadline_s: Deadline = None


@dataclass
class Turn:
    role: str  # "user" or "assistant"
    text: str


@dataclass
class Ask:
    model: str
    question: str
    system: str = ""
    history: list[Turn] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False  # OpenAI's stream_options.include_usage
    max_tokens: int | None = None
    temperature: float | None = None
    options: FusionOptions = field(default_factory=FusionOptions)

    @property
    def context(self) -> str | None:
        """The system prompt and the earlier turns, as the context block the models see; None if neither."""
        parts = []
        if self.system.strip():
            parts.append("System prompt of the conversation:\n" + self.system.strip())
        if self.history:
            lines = [f"[{t.role}] {t.text.strip()}" for t in self.history if t.text.strip()]
            parts.append("The conversation so far, oldest first:\n" + "\n\n".join(lines))
        text = "\n\n".join(parts)
        return text or None


def options_of(raw: Any) -> FusionOptions:
    """The `fusion` object, checked by the tools' field rules; one line naming the field that broke one."""
    if raw is None:
        return FusionOptions()
    if not isinstance(raw, dict):
        raise invalid("fusion must be an object, e.g. {\"deadline_s\": 60}", "fusion")
    try:
        return FusionOptions.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            raise invalid(f"fusion.{where} is not an option; the options are {', '.join(FusionOptions.model_fields)}",
                          f"fusion.{where}") from None
        raise invalid(f"invalid fusion.{where}: {err['msg']}", f"fusion.{where}") from None


def int_field(body: dict[str, Any], name: str, low: int = 1) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise invalid(f"{name} must be a whole number of at least {low}, not {value!r}", name)
    return value


def number_field(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise invalid(f"{name} must be a number from {low:g} to {high:g}, not {value!r}", name)
    return float(value)


def text_of(content: Any, where: str, *, image_kinds: tuple[str, ...], skip_kinds: tuple[str, ...] = ()) -> str:
    """The text of a message's content: a string, or a list of text parts. Images and files are refused:
    the engine sends text only, so no model of any ensemble would see them."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid(f"{where}.content must be a string or a list of content parts", f"{where}.content")
    texts = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind in image_kinds:
            raise unsupported(f"{where}.content[{i}] of type {kind!r}",
                              "the fusion model reads text only (no model of its ensembles is sent images or files)")
        elif kind in skip_kinds:
            continue
        elif kind in ("tool_use", "tool_result", "server_tool_use", "web_search_tool_result"):
            raise unsupported(f"{where}.content[{i}] of type {kind!r}", "the fusion model does not call client tools")
        else:
            raise invalid(f"{where}.content[{i}] must be a text part ({{\"type\": \"text\", \"text\": ...}}), "
                          f"not {str(kind or part)[:40]!r}", f"{where}.content")
    return "\n".join(texts)


def split_question(turns: list[Turn], where: str = "messages") -> tuple[str, list[Turn]]:
    """The last user message is the question; the turns before it are history."""
    if not turns:
        raise invalid(f"{where} is empty: send at least one user message (the question)", where)
    last = turns[-1]
    if last.role != "user":
        raise invalid(f"the last message must be the user's question, not a {last.role!r} message "
                      "(an assistant prefill is not supported)", where)
    if not last.text.strip():
        raise invalid("the last user message (the question) is blank: ask something", where)
    if len(last.text) > MAX_QUESTION_CHARS:
        raise invalid(f"the question (the last user message) is {len(last.text)} characters; at most "
                      f"{MAX_QUESTION_CHARS}: move material into earlier messages or the system prompt", where)
    return last.text, turns[:-1]


def check_context(ask: Ask) -> None:
    context = ask.context or ""
    if len(context) > MAX_CONTEXT_CHARS:
        raise invalid(f"the system prompt and earlier messages come to {len(context)} characters; the models "
                      f"see at most {MAX_CONTEXT_CHARS} of context: send less history")


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid("model is required: 'fusion' (the default ensemble) or 'fusion/<ensemble>' (GET /v1/models)",
                      "model")
    return model.strip()


def refuse_if_set(body: dict[str, Any], names: tuple[str, ...], instead: str) -> None:
    """Refuse any of `names` that carries a value (null, false, an empty list pass)."""
    for name in names:
        value = body.get(name)
        if value not in (None, False, [], {}, ""):
            raise unsupported(name, instead)
