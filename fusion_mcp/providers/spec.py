"""How a provider is declared: built in, or in an ensemble file's `[providers.NAME]` table."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ProviderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="The prefix of model references, as in `name:model-id`.")
    kind: str = Field(description="openai, anthropic, local, function, or one added with register_kind.")
    base_url: str = ""
    api_key_env: str | None = None
    key_required: bool = True
    max_concurrency: int = Field(
        default=256, ge=1, le=1024,
        description="The ceiling of the calls in flight; below it the limit adapts to what the upstream keeps up with.",
    )
    max_retries: int = Field(default=2, ge=0, le=10)
    timeout_s: float = Field(default=120.0, gt=0)
    structured_output: bool = Field(
        default=False, description="Send OpenAI `response_format` JSON schemas (for the review)."
    )
    usage_accounting: bool = Field(default=False, description="Ask OpenRouter to report each call's cost.")
    max_tokens_field: Literal["max_tokens", "max_completion_tokens", "auto"] = Field(
        default="max_tokens",
        description="Field for the output cap; auto: max_completion_tokens for OpenAI o-series and GPT-5 ids.",
    )
    reasoning_field: Literal["reasoning", "reasoning_effort"] = Field(
        default="reasoning", description="How a role's reasoning effort is sent: OpenRouter's or OpenAI's field.",
    )
    web_plugin: bool = Field(default=False, description="Offers OpenRouter's web search plugin (drafters' web = true).")
    default_max_tokens: int | None = Field(
        default=None, ge=1, description="Output cap when a role sets none (Anthropic requires one; 4096 there)."
    )
    models_path: str | None = Field(
        default="/models", description="Model listing under base_url (list_models); empty for none."
    )
    stream: bool = Field(default=True, description="Stream answers (HTTP kinds); off for servers that cannot.")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        from .kinds import known_kinds  # the registry imports this module

        if kind not in known_kinds():
            raise ValueError(f"unknown provider kind {kind!r}; use one of {', '.join(known_kinds())}")
        return kind

    @model_validator(mode="after")
    def _needs_url(self) -> ProviderSpec:
        if self.kind in ("openai", "anthropic") and not self.base_url:
            raise ValueError(f"a provider of kind {self.kind!r} needs a base_url")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url {self.base_url!r} must start with http:// or https://")
        return self


BUILTIN_PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec(
            name="openrouter",
            kind="openai",
            base_url="https://openrouter.ai/api/v1",
            api_key_env="OPENROUTER_API_KEY",
            structured_output=True,
            usage_accounting=True,
            web_plugin=True,
        ),
        ProviderSpec(
            name="openai",
            kind="openai",
            base_url="https://api.openai.com/v1",
            api_key_env="OPENAI_API_KEY",
            structured_output=True,
            max_tokens_field="auto",
            reasoning_field="reasoning_effort",
        ),
        ProviderSpec(
            name="anthropic",
            kind="anthropic",
            base_url="https://api.anthropic.com",
            api_key_env="ANTHROPIC_API_KEY",
        ),
        ProviderSpec(name="ollama", kind="openai", base_url="http://localhost:11434/v1", max_concurrency=1),
        # llama.cpp serves this many calls at once (providers/local.py DEFAULT_PARALLEL slots).
        ProviderSpec(name="local", kind="local", max_concurrency=3, max_retries=0),
    )
}
