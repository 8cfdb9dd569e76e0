"""The MCP tools, at module level: each resolves an ensemble, runs the engine through the service in
the lifespan context, and returns a compact model (schemas.py). No `from __future__ import annotations`
(see service.py)."""

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from .choice import chosen_ensemble
from .model_tools import list_models
from .runs import UnknownRunError
from .schemas import Comparison, EnsembleList, FusedAnswer, comparison_of, ensemble_list_of, fused_answer_of
from .service import progress_of, service_of

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
Deadline = Annotated[float | None, Field(gt=0, le=MAX_DEADLINE_S, title="Deadline (seconds)", description=(
    "Whole-run deadline; default the ensemble's (45)."))]
IncludeDrafts = Annotated[bool, Field(title="Include drafts", description="Also return each draft's text.")]
FromRun = Annotated[str | None, Field(title="From run", description=(
    "run_id of an earlier compare_drafts: fuse its drafts without drafting again."))]
Drafters = Annotated[list[str] | None, Field(min_length=1, max_length=8, title="Drafters", description=(
    "This call's drafting models, 'provider:model-id' (list_models); default the ensemble's."))]
Reviewer = Annotated[str | None, Field(title="Reviewer", description="This call's reviewer, 'provider:model-id'.")]
Synthesizer = Annotated[str | None, Field(title="Synthesizer", description=(
    "This call's synthesizer, 'provider:model-id'."))]
MaxCost = Annotated[float | None, Field(gt=0, title="Spending cap (USD)", description=(
    "Refuse the call if its estimated cost could pass this; no call starts past it."))]


def tool_result(model: BaseModel) -> CallToolResult:
    """Structured content for hosts that read it; the same as one-line JSON without nulls for the rest.

    The SDK's default text block is indented JSON, which costs the host's context a third more.
    """
    return CallToolResult(
        content=[TextContent(type="text", text=model.model_dump_json(exclude_none=True))],
        structured_content=model.model_dump(mode="json"),
    )


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
) -> Annotated[CallToolResult, FusedAnswer]:
    """Answer with several models at once: parallel drafts, a review, one synthesized answer, with per-model status, weights, cost and time."""  # noqa: E501
    service = service_of(ctx)
    if from_run:
        try:
            previous = service.runs.get(from_run)
        except UnknownRunError as exc:
            raise ToolError(str(exc)) from None
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
        work = service.engine.synthesize_from(previous, ensemble=ens, deadline_s=deadline, on_event=progress_of(ctx),
                                              max_cost_usd=max_cost_usd)
    else:
        if not question or not question.strip():
            raise ToolError("invalid arguments to fused_answer: question is required (or from_run, the run_id "
                            "of an earlier compare_drafts)")
        ens = chosen_ensemble(service, ensemble, drafters=drafters, reviewer=reviewer, synthesizer=synthesizer)
        deadline = deadline_s or ens.deadline_s
        work = service.engine.fuse(question, ensemble=ens, context=context, deadline_s=deadline,
                                   on_event=progress_of(ctx), max_cost_usd=max_cost_usd)
    result = await service.run(deadline, work)
    return tool_result(fused_answer_of(result, include_drafts))


async def compare_drafts(
    question: Question,
    ctx: Context,
    ensemble: EnsembleName = None,
    context: Background = None,
    deadline_s: Deadline = None,
    drafters: Drafters = None,
    reviewer: Reviewer = None,
    max_cost_usd: MaxCost = None,
) -> Annotated[CallToolResult, Comparison]:
    """Drafts from several models side by side, with review scores, reasons and agreement; no synthesis. Returns a run_id that fused_answer(from_run=...) can fuse later."""  # noqa: E501
    service = service_of(ctx)
    ens = chosen_ensemble(service, ensemble, drafters=drafters, reviewer=reviewer, roles=("drafter", "reviewer"))
    deadline = deadline_s or ens.deadline_s
    work = service.engine.fuse(question, ensemble=ens, context=context, deadline_s=deadline, on_event=progress_of(ctx),
                               synthesize=False, max_cost_usd=max_cost_usd)
    return tool_result(comparison_of(await service.run(deadline, work)))


async def list_ensembles(ctx: Context) -> Annotated[CallToolResult, EnsembleList]:
    """Ensembles: their models and roles, whether their API keys are set, deadline and estimated cost."""
    return tool_result(ensemble_list_of(service_of(ctx).registry))


TOOLS = [
    (fused_answer, "Fused answer", MODEL_CALLING),
    (compare_drafts, "Compare drafts", MODEL_CALLING),
    (list_ensembles, "List ensembles", LOCAL_ONLY),
    (list_models, "List models", MODEL_LISTING),
]
