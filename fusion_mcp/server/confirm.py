"""Asking the user before an expensive run (`serve --confirm-over USD`, $FUSION_MCP_CONFIRM_OVER,
read with the other settings in config/settings.py).

When the client supports elicitation and a run's estimate (fusion/estimate.py: every call it may make,
at each model's output limit) is over the threshold, the tool asks the user first, showing the
estimate; a decline (or cancel) ends the call before any model is called. Clients without
elicitation run as before: the per-call `max_cost_usd` cap is the guard there.
"""

from collections.abc import Callable

from mcp.server.elicitation import render_elicitation_schema
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import (
    ClientCapabilities,
    ElicitationCapability,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequiredResult,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field

from ..fusion.estimate import Estimate

ANSWER_KEY = "fusion-mcp/confirm-cost"  # the input request's key on the 2026-07-28 protocol


class Go(BaseModel):
    proceed: bool = Field(default=True, title="Run it", description="Call the models at this estimated cost.")


def can_ask(ctx: Context) -> bool:
    session = ctx.request_context.session
    return session.check_client_capability(ClientCapabilities(elicitation=ElicitationCapability()))


async def confirm_spend(ctx: Context, tool: str, ensemble: str, estimated: Callable[[], Estimate],
                        threshold: float | None) -> InputRequiredResult | None:
    """None to go ahead; an InputRequiredResult to return (2026-07-28: ask, then the call comes back);
    a ToolError when the user says no. `estimated` is called only when there is a threshold: an
    estimate renders every prompt of the run, a measurable part of a call's CPU."""
    if threshold is None:
        return None
    estimate = estimated()
    if (estimate.total_usd <= threshold and not estimate.unpriced) or not can_ask(ctx):
        return None
    if estimate.total_usd <= threshold:  # only unpriced models: the estimate is a floor, say so
        cost = f"at least ${estimate.total_usd:.4f} (no price known for {', '.join(estimate.unpriced)})"
    else:
        cost = f"up to ${estimate.total_usd:.4f}"
    message = (f"{tool} with ensemble {ensemble!r} could cost {cost}, over the ${threshold:g} this server asks "
               f"about. Calls: {estimate.breakdown()}. Run it?")
    if ctx.request_context.protocol_version in MODERN_PROTOCOL_VERSIONS:
        answer = (ctx.input_responses or {}).get(ANSWER_KEY)
        if answer is None:
            ask = ElicitRequest(params=ElicitRequestFormParams(message=message,
                                                               requested_schema=render_elicitation_schema(Go)))
            return InputRequiredResult(input_requests={ANSWER_KEY: ask})
        accepted = isinstance(answer, ElicitResult) and answer.action == "accept"
        go = accepted and bool((answer.content or {}).get("proceed"))  # type: ignore[union-attr]
    else:
        reply = await ctx.elicit(message, Go)
        go = reply.action == "accept" and bool(getattr(reply.data, "proceed", False))
    if not go:
        raise ToolError(f"not run: the user declined its estimated cost ({cost}, over ${threshold:g}); "
                        "no model was called. Try a cheaper ensemble (list_ensembles) or ask again.")
    return None
