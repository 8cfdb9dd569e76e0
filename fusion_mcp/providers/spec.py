"""How a provider is declared: built in, or in an ensemble file's `[providers.NAME]` table."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ProviderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="The prefix of model references, as in `name:model-id`.")
    kind: str = Field(description="openai, anthropic, local, function, or one added with register_kind.")
    base_url: str = ""
    api_key_env: str | None = None
    key_required: bool = True
    max_concurrency: int = Field(
        default=128, ge=1, le=256,
        description="The ceiling of the calls in flight; below it the limit adapts to what the upstream keeps up with.",
    )
    max_retries: int = Field(default=2, ge=0, le=10)
    timeout_s: float = Field(default=120.0, gt=0)
    structured_output: bool = Field(
        default=False, description="Send OpenAI `response_format` JSON schemas (for the review)."
    )
    usage_accounting: bool = Field(default=False, description="Ask OpenRouter to report each call's cost.")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        from .registry import known_kinds  # the registry imports this module

        if kind not in known_kinds():
            raise ValueError(f"unknown provider kind {kind!r}; use one of {', '.join(known_kinds())}")
        return kind

    @model_validator(mode="after")
    def _needs_url(self) -> "ProviderSpec":
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
        ),
        ProviderSpec(
            name="openai",
            kind="openai",
            base_url="https://api.openai.com/v1",
            api_key_env="OPENAI_API_KEY",
            structured_output=True,
        ),
        ProviderSpec(
            name="anthropic",
            kind="anthropic",
            base_url="https://api.anthropic.com",
            api_key_env="ANTHROPIC_API_KEY",
        ),
        ProviderSpec(name="ollama", kind="openai", base_url="http://localhost:11434/v1", max_concurrency=1),
        ProviderSpec(name="local", kind="local", max_concurrency=1, max_retries=0),
    )
}
