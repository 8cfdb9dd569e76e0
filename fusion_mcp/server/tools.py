"""The MCP tools, at module level: each resolves an ensemble, starts a run through the service in the
lifespan context, waits for it up to the tool-time limit (background.py), and returns a compact model
(schemas.py) or a `running` view to poll with get_run. No `from __future__ import annotations`
(see service.py)."""

import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ..fusion.estimate import estimate_run, estimate_synthesis, reference_estimate
from ..fusion.events import ProgressCallback
from ..fusion.result import FusionResult
from ..store.runs import RunHandle
from ..team.identity import token_of, user_of
from .background import Handle, Record
from .choice import chosen_ensemble
from .confirm import confirm_spend
from .model_tools import list_models
from .schemas import (
    Comparison,
    EnsembleList,
    FusedAnswer,
    comparison_of,
    ensemble_list_of,
    fused_answer_of,
    running_of,
)
from .service import progress_of, service_of
from .tasks import task_request, ttl_of

MAX_DEADLINE_S = 600.0
MODEL_CALLING = ToolAnnotations(read_only_hint=True, open_world_hint=True)
LOCAL_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
MODEL_LISTING = ToolAnnotations(read_only_hint=True, open_world_hint=True)

Question = Annotated[str, Field(min_length=1, max_length=100_000, title="Question", description=(
    "The question, self-contained: the models do not see this conversation."))]
OptionalQuestion = Annotated[str | None, Field(min_length=1, max_length=100_000, title="Question", description=(
    "The question, self-contained: the models do not see this conversation. Not needed with from_run."))]
EnsembleName = Annotated[str | None, Field(title="Ensemble", description="Ensemble name; omit for the default.")]
Background = Annotated[str | None, Field(max_length=400_000, title="Context", description=(
    "Everything else the models need (facts, code, constraints): they see nothing else."))]
Deadline = Annotated[float | None, Field(
    gt=0, le=MAX_DEADLINE_S, allow_inf_nan=False, title="Deadline (seconds)", description=(
    "Whole-run deadline; default the ensemble's (45)."))]
IncludeDrafts = Annotated[bool, Field(strict=True, title="Include drafts",
                                      description="Also return each draft's text.")]
FromRun = Annotated[str | None, Field(title="From run", description=(
    "run_id of an earlier compare_drafts: fuse its drafts without drafting again."))]
Drafters = Annotated[list[str] | None, Field(min_length=1, max_length=8, title="Drafters", description=(
    "This call's drafting models, 'provider:model-id' (list_models); default the ensemble's."))]
Reviewer = Annotated[str | None, Field(title="Reviewer", description="This call's reviewer, 'provider:model-id'.")]
Synthesizer = Annotated[str | None, Field(title="Synthesizer", description=(
    "This call's synthesizer, 'provider:model-id'."))]
Criteria = Annotated[str | None, Field(title="Criteria", description="code, safety, research or own words")]
MaxCost = Annotated[float | None, Field(gt=0, allow_inf_nan=False, title="Spending cap (USD)", description=(
    "Refuse the call if its estimated cost could pass this; no call starts past it."))]


RUN_META = "fusion-mcp/run"  # the whole run, in a result's _meta, for the run view (apps_view.py)


def tool_result(model: BaseModel, run: FusionResult | None = None) -> CallToolResult:
    """Structured content for hosts that read it; the same as one-line JSON without nulls for the rest.
    A finished run also travels whole in `_meta` (which hosts give views, not their model), so the run
    view renders every detail without reading run:// through the host.

    The SDK's default text block is indented JSON, which costs the host's context a third more.
    """
    return CallToolResult(
        content=[TextContent(type="text", text=model.model_dump_json(exclude_none=True))],
        structured_content=model.model_dump(mode="json"),
        _meta={RUN_META: run.model_dump(mode="json", exclude={"context"})} if run is not None else None,
    )


def run_result(handle: Handle | Record, wait_s: float) -> CallToolResult:
    """A run (finished or running) as its tool's result."""
    return tool_result(view_of(handle, wait_s), handle.result)


def _new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def view_of(handle: Handle | Record, wait_s: float) -> BaseModel:
    """The finished run in the shape of the tool that started it, or a `running` view of it; the run
    may be executing here (a handle) or on another replica (a record from the shared store)."""
    if handle.error is not None:
        raise ToolError(handle.error)
    fused = handle.kind == "fused_answer"
    if handle.result is not None:
        return fused_answer_of(handle.result, handle.include_drafts) if fused else comparison_of(handle.result)
    ev = handle.progress
    running = running_of(handle.run_id, handle.elapsed_s(), handle.time_left_s(), ev.done if ev else 0,
                         ev.total if ev else None, ev.message if ev else None, wait_s)
    shape = FusedAnswer if fused else Comparison
    return shape(status="running", run_id=handle.run_id, ensemble=handle.ensemble, running=running)


async def _answer(ctx: Context, handle: Handle) -> CallToolResult:
    """Wait for a run just started, up to the tool-time limit; a run that goes on is answered `running`.
    A task-augmented call (tasks.py) does not wait: the task stands for the run."""
    service = service_of(ctx)
    task = task_request.get()
    if task is not None:
        handle.task_ttl_ms = ttl_of(task)
        return run_result(handle, service.tool_timeout_s)
    await service.background.wait(handle, service.tool_timeout_s, progress_of(ctx), cancel_with_caller=True)
    return run_result(handle, service.tool_timeout_s)


async def fused_answer(
    ctx: Context,
    question: OptionalQuestion = None,
    ensemble: EnsembleName = None,
    context: Background = None,
    deadline_s: Deadline = None,
    include_drafts: IncludeDrafts = False,
    from_run: FromRun = None,
    drafters: Drafters = None,
    reviewer: Reviewer = None,
    synthesizer: Synthesizer = None,
    max_cost_usd: MaxCost = None,
    criteria: Criteria = None,
) -> Annotated[CallToolResult, FusedAnswer]:
    """Several models draft at once, one reviews, one fuses the answer; with per-model status, weights, cost, time. If status is 'running', call get_run(run_id) until 'done'."""  # noqa: E501
    service = service_of(ctx)
    token = token_of(ctx)
    run_id = _new_run_id()
    if from_run:
        previous = await service.finished_run(from_run, token=token)  # only the caller's own runs
        asked = previous.question
        if question and question.strip() != previous.question.strip():
            raise ToolError(
                f"run {from_run!r} answered a different question ({previous.question[:80]!r}); "
                "omit question with from_run (it reuses that run's), or omit from_run to draft afresh."
            )
        if context and (context.strip() != (previous.context or "").strip()):
            raise ToolError(
                f"run {from_run!r} drafted with {'another' if previous.context else 'no'} context, and "
                "from_run reuses those drafts: omit context, or omit from_run to draft afresh with it."
            )
        if drafters or reviewer:
            raise ToolError("from_run reuses that run's drafts and review: omit drafters and reviewer "
                            "(synthesizer may be chosen), or omit from_run to draft afresh.")
        ens = chosen_ensemble(service, ensemble or previous.ensemble, synthesizer=synthesizer,
                              roles=("synthesizer",))  # the drafts are reused
        deadline = deadline_s or ens.deadline_s
        estimate = functools.cache(lambda: estimate_synthesis(ens, previous.question, previous.context,
                                                              previous.drafts, previous.analysis, service.pricing))
        if ask := await confirm_spend(ctx, "fused_answer", ens.name, estimate, service.confirm_over_usd):
            return ask  # type: ignore[return-value]  # the client asks the user, then calls again
        cap = await service.admit(user_of(token), run_id, estimate, deadline, max_cost_usd)

        def work(on_event: ProgressCallback) -> Awaitable[FusionResult]:
            return service.engine.synthesize_from(previous, ensemble=ens, deadline_s=deadline, on_event=on_event,
                                                  run_id=run_id, max_cost_usd=cap,
                                                  criteria=criteria)
    else:
        if not question or not question.strip():
            raise ToolError("invalid arguments to fused_answer: question is required (or from_run, the run_id "
                            "of an earlier compare_drafts)")
        ens = chosen_ensemble(service, ensemble, drafters=drafters, reviewer=reviewer, synthesizer=synthesizer)
        deadline = deadline_s or ens.deadline_s
        asked = question
        estimate = functools.cache(lambda: estimate_run(ens, asked, context, service.pricing))
        if ask := await confirm_spend(ctx, "fused_answer", ens.name, estimate, service.confirm_over_usd):
            return ask  # type: ignore[return-value]
        cap = await service.admit(user_of(token), run_id, estimate, deadline, max_cost_usd)

        def work(on_event: ProgressCallback) -> Awaitable[FusionResult]:
            return service.engine.fuse(asked, ensemble=ens, context=context, deadline_s=deadline,
                                       on_event=on_event, run_id=run_id, max_cost_usd=cap,
                                       criteria=criteria)
    handle = await service.start(run_id, "fused_answer", ens.name, include_drafts, deadline, work,
                                 owner=user_of(token), question=asked)
    return await _answer(ctx, handle)


async def compare_drafts(
    question: Question,
    ctx: Context,
    ensemble: EnsembleName = None,
    context: Background = None,
    deadline_s: Deadline = None,
    drafters: Drafters = None,
    reviewer: Reviewer = None,
    max_cost_usd: MaxCost = None,
    criteria: Criteria = None,
) -> Annotated[CallToolResult, Comparison]:
    """Drafts side by side with review scores, reasons, agreement; no synthesis; fused_answer(from_run=run_id) fuses them later. If status is 'running', call get_run(run_id)."""  # noqa: E501
    service = service_of(ctx)
    ens = chosen_ensemble(service, ensemble, drafters=drafters, reviewer=reviewer, roles=("drafter", "reviewer"))
    deadline = deadline_s or ens.deadline_s
    estimate = functools.cache(lambda: estimate_run(ens, question, context, service.pricing, synthesize=False))
    if ask := await confirm_spend(ctx, "compare_drafts", ens.name, estimate, service.confirm_over_usd):
        return ask  # type: ignore[return-value]
    run_id = _new_run_id()
    owner = user_of(token_of(ctx))
    cap = await service.admit(owner, run_id, estimate, deadline, max_cost_usd)

    def work(on_event: ProgressCallback) -> Awaitable[FusionResult]:
        return service.engine.fuse(question, ensemble=ens, context=context, deadline_s=deadline, on_event=on_event,
                                   synthesize=False, run_id=run_id, max_cost_usd=cap, criteria=criteria)

    handle = await service.start(run_id, "compare_drafts", ens.name, False, deadline, work, owner=owner,
                                 question=question)
    return await _answer(ctx, handle)


async def get_run(
    run_id: Annotated[str, Field(min_length=1, max_length=64, title="Run id",
                                 description="The run_id a running answer gave.")],
    ctx: Context,
    wait_s: Annotated[float | None, Field(
        gt=0, le=3600, title="Wait (seconds)",
        description="Wait up to this long for the run (capped at the server's tool-time limit)."
    )] = None,
) -> CallToolResult:
    """Wait for a run that answered status 'running'; returns it in its tool's shape once done, or 'running' again (then call again)."""  # noqa: E501
    service = service_of(ctx)
    wait = min(wait_s or service.tool_timeout_s, service.tool_timeout_s)
    # here, or (a shared store) on another replica, waited for there; only the caller's own (or an admin's)
    run = await service.find_run(run_id, wait, token=token_of(ctx))
    if isinstance(run, RunHandle):
        await service.background.wait(run, wait, progress_of(ctx), cancel_with_caller=False)
    return run_result(run, service.tool_timeout_s)


async def list_ensembles(ctx: Context) -> Annotated[CallToolResult, EnsembleList]:
    """Ensembles: their models and roles, whether their API keys are set, deadline and estimated cost."""
    service = service_of(ctx)
    return tool_result(ensemble_list_of(service.registry, service.pricing, reference_estimate))


TOOLS: list[tuple[Callable[..., Awaitable[CallToolResult]], str, ToolAnnotations]] = [
    (fused_answer, "Fused answer", MODEL_CALLING),
    (compare_drafts, "Compare drafts", MODEL_CALLING),
    (get_run, "Get run", LOCAL_ONLY),
    (list_ensembles, "List ensembles", LOCAL_ONLY),
    (list_models, "List models", MODEL_LISTING),
]
