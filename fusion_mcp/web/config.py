"""An ensemble's `[web]` table: which search backend, where, at what price, which private hosts
web_fetch may open, and how many tool calls a role may make."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .address import normalize_allow

SearchKind = Literal["searxng", "brave", "tavily", "exa"]
ToolName = Literal["web_search", "web_fetch"]
TOOL_NAMES: tuple[str, ...] = ("web_search", "web_fetch")

# Each hosted API's endpoint, key variable and list price per search (USD, 2026-12; override with
# search_price_usd). SearXNG is self-hosted: no key, no price.
SEARCH_DEFAULTS: dict[str, tuple[str, str | None, float]] = {
    "searxng": ("", None, 0.0),
    "brave": ("https://api.search.brave.com/res/v1/web/search", "BRAVE_API_KEY", 0.005),
    "tavily": ("https://api.tavily.com/search", "TAVILY_API_KEY", 0.008),
    "exa": ("https://api.exa.ai/search", "EXA_API_KEY", 0.005),
}


class WebConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    search: SearchKind | None = Field(default=None, description="The search backend web_search uses.")
    search_url: str | None = Field(default=None, description="SearXNG's base URL, or another endpoint for an API.")
    search_api_key_env: str | None = Field(default=None, description="The key's variable, if not the usual one.")
    search_price_usd: float | None = Field(default=None, ge=0, description="Price of one search, for estimates.")
    max_results: int = Field(default=5, ge=1, le=20)
    max_tool_calls: int = Field(default=8, ge=0, le=16, description="Per role and call, before the final answer.")
    fetch_allow: tuple[str, ...] = Field(default=(), description="host:port that web_fetch may open though private.")
    fetch_max_chars: int = Field(default=6000, ge=500, le=100_000, description="Page text a model gets, at most.")
    fetch_max_bytes: int = Field(default=2_000_000, ge=10_000, le=50_000_000)
    fetch_timeout_s: float = Field(default=10.0, gt=0, le=120)

    @field_validator("fetch_allow")
    @classmethod
    def _allow(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        normalize_allow(list(value))  # raises with the entry named
        return value

    @model_validator(mode="after")
    def _search_url(self) -> WebConfig:
        if self.search == "searxng" and not self.search_url:
            raise ValueError('search = "searxng" needs search_url, the instance\'s base URL (e.g. http://127.0.0.1:8888)')
        if self.search_url and not self.search_url.startswith(("http://", "https://")):
            raise ValueError("search_url must start with http:// or https://")
        return self

    @property
    def allow(self) -> frozenset[str]:
        return normalize_allow(list(self.fetch_allow))

    @property
    def key_env(self) -> str | None:
        return self.search_api_key_env or (SEARCH_DEFAULTS[self.search][1] if self.search else None)

    @property
    def endpoint(self) -> str:
        assert self.search is not None
        return self.search_url or SEARCH_DEFAULTS[self.search][0]

    @property
    def price_per_search(self) -> float:
        if self.search_price_usd is not None:
            return self.search_price_usd
        return SEARCH_DEFAULTS[self.search][2] if self.search else 0.0
