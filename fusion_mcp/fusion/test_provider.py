"""A stand-in model that answers each stage of a fusion run in the shape that stage asks for, offline.

Like pydantic-ai's `TestModel`, it needs no script for a run to go through: a draft gets a short answer,
a review gets JSON built from the request's own schema (every draft label scored), a synthesis gets the
heaviest draft back, its claim marked when the prompt asks for marks. `script(model, ...)` changes one
model: its text, its review scores or analysis, a failure (the project's own errors), a delay, a hang,
a pace. Every call is recorded with the stage it served.

    test = TestProvider("lab")                          # the ensemble: [providers.lab] kind = "function"
    test.script("judge", scores={"Paris.": 9, "Lyon.": 2})
    test.script("flaky", fail=RateLimitedError)
    async with FusionEngine(registry, providers={"lab": test}) as engine: ...

It knows the run's prompts (the draft blocks, the review's schema), so it lives with the stages, not
with the wire formats in `providers/`; `FunctionProvider` is the plain one.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..clock import REAL_CLOCK, Clock
from ..errors import ProviderError
from ..prompts import render
from ..providers import ChatRequest, Completion
from ..providers.base import TextSink
from ..providers.function import text_completion
from .delimit import read_drafts

StageName = Literal["draft", "review", "synthesis", "structured"]
Score = float | tuple[float, float, float]  # one mark for all three criteria, or (consistency, accuracy, completeness)
Scores = Mapping[str, Score | None] | Callable[[str], Score | None]  # by draft text; None: left unscored


@dataclass
class Asked:
    """One call as the test provider saw it: which model, for which stage, with what."""

    model: str
    stage: StageName
    request: ChatRequest
    drafts: dict[str, str]  # label -> text, as shown to a reviewer or synthesizer (empty for a draft)
    n: int  # this model's calls before this one

    @property
    def system(self) -> str:
        return "\n".join(m.content for m in self.request.messages if m.role == "system")

    @property
    def user(self) -> str:
        return "\n".join(m.content for m in self.request.messages if m.role == "user")


@dataclass
class Reply:
    """How one model answers. Every field is optional: what is left unset keeps the stage's default."""

    text: str | Callable[[Asked], str] | None = None  # the answer as written (a review's raw reply too)
    scores: Scores | None = None  # review: marks by draft text; the rest get the schema's default
    analysis: Mapping[str, Any] | None = None  # review: fields added to the reply (contradictions, risks...)
    fail: ProviderError | type[ProviderError] | None = None  # raised instead of answering
    fail_times: int = -1  # with `fail`: the first N calls fail, then it answers; -1: every call
    delay_s: float = 0.0  # before the first word
    hang: bool = False  # never answers: the caller's deadline ends the call
    words_per_s: float | None = None  # stream word by word at this pace (a deadline keeps what was written)
    cost_usd: float | None = 0.0  # None: reports no cost, like an upstream that does not say
    input_tokens: int | None = None  # None: the prompt's words
    output_tokens: int | None = None  # None: the answer's words
    truncated: bool = False  # cut off by its output token limit


def stage_of(request: ChatRequest) -> StageName:
    """Which stage sent a request: a review asks for scores by schema, a synthesis shows the drafts."""
    if request.json_schema is not None:
        return "review" if "scores" in (request.json_schema.get("properties") or {}) else "structured"
    user = "\n".join(m.content for m in request.messages if m.role == "user")
    return "synthesis" if read_drafts(user) else "draft"


def example_of(schema: Mapping[str, Any]) -> Any:
    """The smallest value valid under a JSON schema (the part of it the run uses): a constant or the
    first choice, every required property, the fewest array items, numbers at the middle of their range."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        required = set(schema.get("required") or [])
        return {k: example_of(v) for k, v in (schema.get("properties") or {}).items() if k in required}
    if kind == "array":
        return [example_of(schema.get("items") or {}) for _ in range(int(schema.get("minItems", 0)))]
    if kind in ("integer", "number"):
        low = schema.get("minimum", 0)
        middle = (low + schema.get("maximum", low + 10)) / 2
        return round(middle) if kind == "integer" else middle
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return "test"


def _marks(score: Score, text: str) -> dict[str, Any]:
    c, a, m = score if isinstance(score, tuple) else (score, score, score)
    return {"reason": f"scripted for {text[:40]!r}", "consistency": c, "accuracy": a, "completeness": m}


class TestProvider:
    """A provider (the `Provider` interface) whose default answers every stage accepts; see the module."""

    __test__ = False  # not a pytest test class, whatever module imports it

    def __init__(self, name: str, *, default: Reply | None = None, clock: Clock = REAL_CLOCK) -> None:
        self.name = name
        self.default = default or Reply()
        self.clock = clock  # what delays and paces sleep on (a FakeClock in time tests)
        self.replies: dict[str, Reply] = {}
        self.calls: list[Asked] = []

    def script(self, model: str, reply: Reply | None = None, **fields: Any) -> TestProvider:
        """How `model` answers from now on: a `Reply`, or its fields (`text=...`, `fail=...`)."""
        self.replies[model] = replace(reply or self.default, **fields)
        return self

    def calls_to(self, model: str) -> list[Asked]:
        return [c for c in self.calls if c.model == model]

    def answer(self, asked: Asked, reply: Reply) -> str:
        """The text a call gets: the scripted text, else the stage's default answer."""
        if reply.text is not None:
            return reply.text if isinstance(reply.text, str) else reply.text(asked)
        if asked.stage == "draft":
            return f"Draft answer by {asked.model}."
        if asked.stage == "synthesis":  # the heaviest draft (shown first), marked when marks are asked for
            label, text = next(iter(asked.drafts.items()))
            return f"{text} [{label}]" if render("synthesis_claims") in asked.system else text
        value = example_of(asked.request.json_schema or {})
        if asked.stage == "review":
            value["scores"] = self._scores(value.get("scores") or {}, asked.drafts, reply.scores)
            value.update(reply.analysis or {})
        return json.dumps(value)

    @staticmethod
    def _scores(default: dict[str, Any], drafts: dict[str, str], scripted: Scores | None) -> dict[str, Any]:
        if scripted is None:
            return default
        out = {}
        for label, text in drafts.items():
            if not callable(scripted) and text not in scripted:
                out[label] = default.get(label)  # not scripted: the schema's default marks
                continue
            score = scripted(text) if callable(scripted) else scripted[text]
            if score is not None:
                out[label] = _marks(score, text)
        return out

    async def complete(self, model: str, request: ChatRequest, *, timeout_s: float,
                       sink: TextSink | None = None) -> Completion:
        started = time.perf_counter()
        stage = stage_of(request)
        user = "\n".join(m.content for m in request.messages if m.role == "user")
        asked = Asked(model, stage, request, read_drafts(user) if stage != "draft" else {}, len(self.calls_to(model)))
        self.calls.append(asked)
        reply = self.replies.get(model, self.default)
        if sink is not None:
            sink.begin()  # sent: from here on its first word is due
        if reply.hang:
            await self.clock.sleep(math.inf)
        if reply.delay_s:
            await self.clock.sleep(reply.delay_s)
        if reply.fail is not None and (reply.fail_times < 0 or asked.n < reply.fail_times):
            fail = reply.fail
            if isinstance(fail, ProviderError):
                raise fail
            raise fail(self.name, model, f"scripted {fail.kind}")
        text = self.answer(asked, reply)
        if sink is not None:
            await self._stream(sink, text, reply.words_per_s)
        return text_completion(self.name, model, request, text, cost_usd=reply.cost_usd,
                               latency_s=time.perf_counter() - started, input_tokens=reply.input_tokens,
                               output_tokens=reply.output_tokens, truncated=reply.truncated)

    async def _stream(self, sink: TextSink, text: str, words_per_s: float | None) -> None:
        if not words_per_s:
            sink.write(text)
            return
        for i, word in enumerate(text.split(" ")):
            await self.clock.sleep(1 / words_per_s)
            sink.write(word if i == 0 else " " + word)


__all__ = ["Asked", "Reply", "TestProvider", "example_of", "stage_of"]
