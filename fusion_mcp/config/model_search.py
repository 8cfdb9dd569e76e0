"""`list_models` and `fusion-mcp models`: the providers' listings, searched, in one small result.
No `from __future__ import annotations`: ModelList is a tool's return type (see server/service.py)."""

from pathlib import Path

import anyio
import httpx2 as httpx
from pydantic import BaseModel, Field

from ..providers.spec import BUILTIN_PROVIDERS, ProviderSpec
from .ensemble_registry import EnsembleRegistry
from .model_catalog import ListedModel, ProviderListing, listable, listing_for

DEFAULT_LIMIT = 40


class ModelRow(BaseModel):
    model: str = Field(description="Reference to use: provider:model-id.")
    context_length: int | None = None
    input_usd_per_mtok: float | None = Field(default=None, description="USD per million input tokens.")
    output_usd_per_mtok: float | None = Field(default=None, description="USD per million output tokens.")


class ModelList(BaseModel):
    models: list[ModelRow]
    matched: int = Field(description="Models matching; more than shown when `limit` cut the list.")
    providers: list[ProviderListing] = Field(description="Where each provider's listing came from, and its age.")


def listable_providers(registry: EnsembleRegistry) -> dict[str, ProviderSpec]:
    """The OpenAI-kind providers known: built in, then those the ensembles declare."""
    specs: dict[str, ProviderSpec] = {n: s for n, s in BUILTIN_PROVIDERS.items() if listable(s)}
    for ensemble in registry.ensembles.values():
        for name, spec in ensemble.providers.items():
            if listable(spec):
                specs.setdefault(name, spec)
    return specs


def _row(provider: str, m: ListedModel) -> ModelRow:
    return ModelRow(model=f"{provider}:{m.id}", context_length=m.context_length,
                    input_usd_per_mtok=m.input_usd_per_mtok, output_usd_per_mtok=m.output_usd_per_mtok)


async def search_models(registry: EnsembleRegistry, client: httpx.AsyncClient, folder: Path, *,
                        provider: str | None = None, search: str | None = None, refresh: bool = False,
                        limit: int = DEFAULT_LIMIT) -> ModelList:
    """Listings of every listable provider (or one), cached in `folder` (Settings.models_cache_dir),
    fetched side by side, filtered by `search` (every word must appear in the reference), in the
    listings' order."""
    specs = listable_providers(registry)
    if provider is not None:
        if provider not in specs:
            raise ValueError(f"no model listing for provider {provider!r}; listable: {', '.join(sorted(specs))}")
        specs = {provider: specs[provider]}
    results: dict[str, tuple] = {}

    async def one(name: str, spec: ProviderSpec) -> None:
        results[name] = await listing_for(spec, client, folder, refresh=refresh)

    async with anyio.create_task_group() as tg:
        for name, spec in specs.items():
            tg.start_soon(one, name, spec)
    words = (search or "").lower().split()
    rows: list[ModelRow] = []
    for name in sorted(results):
        listing, _ = results[name]
        for m in listing.models if listing else []:
            row = _row(name, m)
            if all(w in row.model.lower() for w in words):
                rows.append(row)
    return ModelList(models=rows[:limit], matched=len(rows), providers=[results[n][1] for n in sorted(results)])
