"""The models a provider offers, from its own listing: OpenRouter's /models (ids, context length,
prices) and the /v1/models of OpenAI-compatible servers and Ollama (ids).

Each listing is cached on disk with the time it was fetched: it is fetched again once a day old,
and a cached one is used, with its age, when the provider cannot be reached. The cache folder
(Settings.models_cache_dir) is handed in by the caller. Listed prices feed cost estimates
(pricing.Pricing); a model id missing from a listing gets a warning.
No `from __future__ import annotations`: ModelList is a tool's return type (see server/service.py).
"""

import difflib
import json
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx2 as httpx
from pydantic import BaseModel, Field, ValidationError

from ..providers.spec import ProviderSpec
from ..redaction import carries_secret

MAX_AGE_S = 24 * 3600.0
FETCH_TIMEOUT_S = 15.0


class ListedModel(BaseModel):
    id: str
    context_length: int | None = None
    input_usd_per_mtok: float | None = Field(default=None, description="USD per million input tokens.")
    output_usd_per_mtok: float | None = Field(default=None, description="USD per million output tokens.")


class ModelListing(BaseModel):
    provider: str
    base_url: str
    fetched_at: float
    models: list[ListedModel]

    @property
    def age_s(self) -> float:
        return max(0.0, time.time() - self.fetched_at)

    def ids(self) -> set[str]:
        return {m.id for m in self.models}


@lru_cache(maxsize=64)
def _file_in(folder: Path, provider: str) -> Path:
    """The provider's listing file (kept: a price lookup per model call would build it each time)."""
    return folder / f"{provider}.json"


def _shown(listing: ModelListing) -> ModelListing:
    """The listing less any model whose id holds a secret (a server that serves a key as a model
    id): such an id is shown nowhere, cached nowhere and never sent upstream as a model."""
    kept = [m for m in listing.models if not carries_secret(m.id)]
    return listing if len(kept) == len(listing.models) else listing.model_copy(update={"models": kept})


@lru_cache(maxsize=32)
def _read(path: Path, _mtime: float) -> ModelListing | None:
    try:
        return _shown(ModelListing.model_validate_json(path.read_text(encoding="utf-8")))
    except (OSError, ValidationError, ValueError):
        return None  # a broken cache file is as good as none


def cached_listing(folder: Path, provider: str) -> ModelListing | None:
    path = _file_in(folder, provider)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    return _read(path, mtime)


def _write(folder: Path, listing: ModelListing) -> None:
    path = _file_in(folder, listing.provider)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(listing.model_dump_json(), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass  # no cache this time; the listing itself still serves


def _per_mtok(value: Any) -> float | None:
    """OpenRouter prices are USD per token, as strings; -1 marks a variable price."""
    try:
        price = float(value)
    except (TypeError, ValueError):
        return None
    return round(price * 1_000_000, 6) if price >= 0 else None


def parse_listing(provider: str, base_url: str, body: Any) -> ModelListing:
    rows = body.get("data") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        raise ValueError("the listing has no `data` list")
    models = []
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            continue
        prices = row.get("pricing")
        pricing: dict[str, Any] = prices if isinstance(prices, dict) else {}
        ctx = row.get("context_length")
        models.append(ListedModel(
            id=row["id"], context_length=ctx if isinstance(ctx, int) and not isinstance(ctx, bool) else None,
            input_usd_per_mtok=_per_mtok(pricing.get("prompt")),
            output_usd_per_mtok=_per_mtok(pricing.get("completion")),
        ))
    return _shown(ModelListing(provider=provider, base_url=base_url, fetched_at=time.time(), models=models))


def listable(spec: ProviderSpec) -> bool:
    return spec.kind == "openai" and bool(spec.base_url) and bool(spec.models_path)


async def fetch_listing(spec: ProviderSpec, client: httpx.AsyncClient, folder: Path) -> ModelListing:
    """GET the provider's listing (with its key when set: OpenRouter's needs none) and cache it in `folder`."""
    url = spec.base_url.rstrip("/") + "/" + (spec.models_path or "").lstrip("/")
    headers = {}
    key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
    if key:
        headers["authorization"] = f"Bearer {key}"
    response = await client.get(url, headers=headers, timeout=FETCH_TIMEOUT_S)
    if response.status_code >= 400:
        raise ValueError(f"HTTP {response.status_code} from {spec.name}'s model listing")
    listing = parse_listing(spec.name, spec.base_url, response.json())
    _write(folder, listing)
    return listing


class ProviderListing(BaseModel):
    provider: str
    source: str = Field(description="fetched, cache (fresh), stale cache (provider unreachable), or none.")
    age_s: float | None = Field(default=None, description="Age of the listing in seconds.")
    models: int = 0
    error: str | None = None


async def listing_for(spec: ProviderSpec, client: httpx.AsyncClient, folder: Path, *, refresh: bool = False
                      ) -> tuple[ModelListing | None, ProviderListing]:
    """The provider's listing: the cache in `folder` while under a day old (unless `refresh`), else
    fetched, else the stale cache; with a line on where it came from."""
    cached = cached_listing(folder, spec.name)
    if cached and cached.base_url != spec.base_url:
        cached = None  # another server under the same provider name
    if cached and not refresh and cached.age_s < MAX_AGE_S:
        return cached, ProviderListing(provider=spec.name, source="cache", age_s=round(cached.age_s),
                                       models=len(cached.models))
    try:
        listing = await fetch_listing(spec, client, folder)
        return listing, ProviderListing(provider=spec.name, source="fetched", age_s=0, models=len(listing.models))
    except (httpx.HTTPError, ValueError, json.JSONDecodeError) as exc:
        why = str(exc) if isinstance(exc, ValueError) else f"cannot reach {spec.name}: {type(exc).__name__}"
        if cached:
            return cached, ProviderListing(provider=spec.name, source="stale cache", age_s=round(cached.age_s),
                                           models=len(cached.models), error=why)
        return None, ProviderListing(provider=spec.name, source="none", error=why)


def listed_model(folder: Path, ref: str) -> ListedModel | None:
    """The entry for `provider:model-id` in the provider's listing cached in `folder`, if any."""
    provider, _, model_id = ref.partition(":")
    listing = cached_listing(folder, provider)
    if listing is None:
        return None
    return next((m for m in listing.models if m.id == model_id), None)


def closest_ids(model_id: str, listing: ModelListing, n: int = 3) -> list[str]:
    return difflib.get_close_matches(model_id, sorted(listing.ids()), n=n, cutoff=0.4)


def unlisted_warning(folder: Path, ref: str, provider: str, model_id: str) -> str | None:
    """A warning when a listing of `provider` cached in `folder` exists and lacks `model_id`."""
    listing = cached_listing(folder, provider)
    if listing is None or not listing.models or model_id in listing.ids():
        return None
    close = closest_ids(model_id, listing)
    hint = f"; closest: {', '.join(close)}" if close else ""
    return f"{ref} is not in {provider}'s model listing ({len(listing.models)} models){hint}"
