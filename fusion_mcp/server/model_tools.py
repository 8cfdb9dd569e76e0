"""The `list_models` tool: model ids, context lengths and prices from the providers' own listings.
No `from __future__ import annotations` (see service.py)."""

from typing import Annotated

import httpx2 as httpx
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import Field

from ..config.model_search import DEFAULT_LIMIT, ModelList, search_models
from .service import service_of


async def list_models(
    ctx: Context,
    search: Annotated[str | None, Field(max_length=200, title="Search", description=(
        "Words that must all appear in the reference, e.g. 'claude opus'."))] = None,
    provider: Annotated[str | None, Field(title="Provider", description="Only this provider, e.g. openrouter.")] = None,
    refresh: Annotated[bool, Field(strict=True, title="Refresh",
                                   description="Fetch again even if the cache is fresh.")] = False,
    limit: Annotated[int, Field(ge=1, le=500, title="Limit", description="Most rows returned.")] = DEFAULT_LIMIT,
) -> Annotated[CallToolResult, ModelList]:
    """Model ids with context length and price, from the providers' listings."""
    from .tools import tool_result  # tools.py lists this tool

    service = service_of(ctx)
    try:
        async with httpx.AsyncClient() as client:
            # The folder the service prices from (its engine's), so that a listing fetched here prices calls
            folder = service.pricing.models_cache or service.settings.models_cache_dir
            listing = await search_models(service.registry, client, folder,
                                          provider=provider, search=search, refresh=refresh, limit=limit)
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    return tool_result(listing)
