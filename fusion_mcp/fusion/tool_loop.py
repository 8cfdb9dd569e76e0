"""A model call with tools: the model asks for `web_search` / `web_fetch`, gets the results, and goes on
until it answers or the role has used `max_tool_calls` ([web], default 8); then it is asked, with tools
turned off, for its final text. Every turn is a call through the ModelCaller, so the deadline, the
spending cap, the cache and the pace book see it like any other; a search's price counts against the cap
too. A tool failure is the tool's result, for the model to read, never an exception.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import anyio

from ..config.ensembles import ModelRole
from ..errors import UnparseableResponseError
from ..providers import ChatRequest, Completion, Message
from ..providers.base import Citation, TextSink, Usage
from ..web.tools import SpendRefused, WebTools
from .calls import ModelCaller
from .delimit import clean_data, marker

TOOL_TIME_CAP_S = 30.0  # one tool call, at most (its own timeouts are shorter)
LIMIT_REACHED = ("not run: this turn reached the limit of {n} tool calls. Answer now from what you have "
                 "found, without calling tools.")


@dataclass
class ToolRun:
    """The final completion (usage, cost and latency summed over every turn), and what the tools did."""

    completion: Completion
    citations: list[Citation] = field(default_factory=list)
    tool_calls: int = 0
    tool_log: list[str] = field(default_factory=list)


def wrap_source(text: str, run_id: str, attrs: str) -> str:
    """Text from the web between tags carrying a marker no page can know (it hashes the text itself)."""
    nonce = marker(run_id, "source", [text])
    return f"<source-{nonce} {attrs}>\n{clean_data(text, nonce)}\n</source-{nonce}>"


def _merge(turns: list[Completion], last: Completion, extra_usd: float, started: float) -> Completion:
    def total(values: list[int | None]) -> int | None:
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    costs = [t.cost_usd for t in turns]
    cost = None if any(c is None for c in costs) else sum(c for c in costs if c is not None) + extra_usd
    return last.model_copy(update={
        "usage": Usage(input_tokens=total([t.usage.input_tokens for t in turns]),
                       output_tokens=total([t.usage.output_tokens for t in turns])),
        "cost_usd": cost, "latency_s": time.perf_counter() - started, "cached": all(t.cached for t in turns),
        "ttft_s": turns[0].ttft_s if len(turns) == 1 else last.ttft_s,
    })


def _add_citations(into: list[Citation], new: list[Citation]) -> None:
    """One entry per URL; a fetched page's snippet replaces a search snippet of the same URL."""
    seen = {c.url: i for i, c in enumerate(into)}
    for c in new:
        if c.url in seen:
            old = into[seen[c.url]]
            into[seen[c.url]] = old.model_copy(update={"title": c.title or old.title,
                                                        "snippet": c.snippet or old.snippet})
        else:
            seen[c.url] = len(into)
            into.append(c)


async def call_with_tools(call: ModelCaller, role: ModelRole, request: ChatRequest, tools: WebTools | None, *,
                          stage: str, timeout_s: float, max_calls: int, sample: int = 0,
                          sink: TextSink | None = None) -> ToolRun:
    """The role's call, with its tools offered when it has any (and a run has tools to give)."""
    if not role.tools or tools is None or max_calls <= 0:
        c = await call(role, request, stage=stage, timeout_s=timeout_s, sample=sample, sink=sink)
        return ToolRun(c, list(c.citations))
    started = time.perf_counter()
    deadline = anyio.current_time() + timeout_s
    specs = tools.specs(role.tools)
    messages = list(request.messages)
    run = ToolRun(completion=None)  # type: ignore[arg-type]
    turns: list[Completion] = []
    searches_usd = 0.0

    def spend(usd: float) -> None:
        if call.budget is not None and usd and not call.budget.charge(usd):
            raise SpendRefused("not searched: this search would pass the run's max_cost_usd")

    while True:
        final = run.tool_calls >= max_calls
        turn = request.model_copy(update={"messages": messages, "tools": specs,
                                          "tool_choice": "none" if final else "auto"})
        c = await call(role, turn, stage=stage, timeout_s=max(0.01, deadline - anyio.current_time()),
                       sample=sample, sink=sink)
        turns.append(c)
        _add_citations(run.citations, c.citations)
        if not c.tool_calls or final:
            if not c.text.strip():
                raise UnparseableResponseError(role.provider.name, role.model_id,
                                               f"asked for tools after its {max_calls} tool calls instead of answering")
            tool_s = time.perf_counter() - started - c.latency_s
            call.paces.observe_tools(role.ref, stage, tool_s)
            run.completion = _merge(turns, c, searches_usd, started)
            return run
        messages.append(Message(role="assistant", content=c.text, tool_calls=c.tool_calls))
        for tc in c.tool_calls:
            if run.tool_calls >= max_calls:
                messages.append(Message(role="tool", content=LIMIT_REACHED.format(n=max_calls), tool_call_id=tc.id))
                continue
            run.tool_calls += 1
            left = min(TOOL_TIME_CAP_S, deadline - anyio.current_time())
            with anyio.move_on_after(max(0.01, left)) as scope:
                result = await tools.run(tc, role.tools, timeout_s=max(0.01, left), spend=spend)
            if scope.cancelled_caught:
                text, note = f"error: {tc.name} got no answer in time", f"{tc.name}: no answer in time"
            else:
                text, note = result.text, result.note
                if result.source is not None:
                    text = wrap_source(text, tools.run_id, result.source)
                searches_usd += result.cost_usd
                _add_citations(run.citations, result.citations)
            run.tool_log.append(note)
            messages.append(Message(role="tool", content=text, tool_call_id=tc.id))
