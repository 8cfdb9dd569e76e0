"""The MCP tools, at module level: each resolves an ensemble, runs the engine through the service in
the lifespan context, and returns a compact model (schemas.py). No `from __future__ import annotations`
(see service.py)."""

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from .runs import UnknownRunError
from .schemas import Comparison, EnsembleList, FusedAnswer, comparison_of, ensemble_list_of, fused_answer_of
from .service import progress_of, service_of

MAX_DEADLINE_S = 600.0
MODEL_CALLING = ToolAnnotations(read_only_hint=True, open_world_hint=True)
LOCAL_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)

Question = Annotated[str, Field(min_length=1, max_length=100_000, description="The question to answer.")]
EnsembleName = Annotated[str | None, Field(description="Ensemble from list_ensembles; omit for the default.")]
Background = Annotated[str | None, Field(max_length=400_000, description="Background text the models should use.")]
Deadline = Annotated[float | None, Field(
    gt=0, le=MAX_DEADLINE_S, description="Whole-run deadline in seconds; default the ensemble's (45)."
)]
IncludeDrafts = Annotated[bool, Field(description="Also return each draft's text.")]
FromRun = Annotated[str | None, Field(
    description="run_id of an earlier compare_drafts: fuse its drafts without drafting again."
)]


def tool_result(model: BaseModel) -> CallToolResult:
    """Structured content for hosts that read it; the same as one-line JSON without nulls for the rest.

    The SDK's default text block is indented JSON, which costs the host's context a third more.
    """
    return CallToolResult(
        content=[TextContent(type="text", text=model.model_dump_json(exclude_none=True))],
        structured_content=model.model_dump(mode="json"),
    )


async def fused_answer(
    question: Question,
    ctx: Context,
    ensemble: EnsembleName = None,
    context: Background = None,
    deadline_s: Deadline = None,
    include_drafts: IncludeDrafts = False,
    from_run: FromRun = None,
) -> Annotated[CallToolResult, FusedAnswer]:
    """Answer with several models at once: parallel drafts, a review, one synthesized answer, with per-model status, weights, cost and time."""  # noqa: E501
    service = service_of(ctx)
    if from_run:
        try:
            previous = service.runs.get(from_run)
        except UnknownRunError as exc:
            raise ToolError(str(exc)) from None
        if question.strip() != previous.question.strip():
            raise ToolError(
                f"run {from_run!r} answered a different question ({previous.question[:80]!r}); "
                "pass that same question with from_run, or omit from_run to draft afresh."
            )
        if context and (context.strip() != (previous.context or "").strip()):
            raise ToolError(
                f"run {from_run!r} drafted with {'another' if previous.context else 'no'} context, and "
                "from_run reuses those drafts: omit context, or omit from_run to draft afresh with it."
            )
        ens = service.ensemble(ensemble or previous.ensemble, roles=("synthesizer",))  # drafts are reused
        deadline = deadline_s or ens.deadline_s
        work = service.engine.synthesize_from(previous, ensemble=ens, deadline_s=deadline, on_event=progress_of(ctx))
    else:
        ens = service.ensemble(ensemble)
        deadline = deadline_s or ens.deadline_s
        work = service.engine.fuse(question, ensemble=ens, context=context, deadline_s=deadline,
                                   on_event=progress_of(ctx))
    result = await service.run(deadline, work)
    return tool_result(fused_answer_of(result, include_drafts))


async def compare_drafts(
    question: Question,
    ctx: Context,
    ensemble: EnsembleName = None,
    context: Background = None,
) -> Annotated[CallToolResult, Comparison]:
    """Drafts from several models side by side, with review scores, reasons and agreement; no synthesis. Returns a run_id that fused_answer(from_run=...) can fuse later."""  # noqa: E501
    service = service_of(ctx)
    ens = service.ensemble(ensemble)
    work = service.engine.fuse(question, ensemble=ens, context=context, on_event=progress_of(ctx), synthesize=False)
    return tool_result(comparison_of(await service.run(ens.deadline_s, work)))


async def list_ensembles(ctx: Context) -> Annotated[CallToolResult, EnsembleList]:
    """Ensembles: their models and roles, whether their API keys are set, deadline and estimated cost."""
    return tool_result(ensemble_list_of(service_of(ctx).registry))


TOOLS = [
    (fused_answer, "Fused answer", MODEL_CALLING),
    (compare_drafts, "Compare drafts", MODEL_CALLING),
    (list_ensembles, "List ensembles", LOCAL_ONLY),
]
