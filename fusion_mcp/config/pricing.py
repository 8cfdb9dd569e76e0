"""Cost of a call: the upstream's own figure, else the price table, else unknown (never 0).

Where prices come from is a value handed down (`Pricing`, built from the settings: `Settings.pricing`),
never read from the environment here, so engines built with different settings in one process price
differently. The tables themselves are read once per file (cached by path).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError
from ..providers.base import Completion

PRICES_FILE = Path(__file__).parent / "prices.toml"


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: float = Field(ge=0, description="USD per million input tokens")
    output: float = Field(ge=0, description="USD per million output tokens")

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input + output_tokens * self.output) / 1_000_000


def _load(path: Path) -> dict[str, Price]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read price table: {exc}", file=str(path)) from None
    table: dict[str, Price] = {}
    for ref, entry in raw.items():
        try:
            table[ref] = Price.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join([ref, *map(str, first["loc"])])
            raise ConfigError(first["msg"], file=str(path), key=key) from None
    return table


@lru_cache(maxsize=4)
def price_table(extra: Path | None = None) -> dict[str, Price]:
    """The shipped table, with your file's entries over it."""
    table = _load(PRICES_FILE)
    if extra is not None:
        table.update(_load(extra))
    return table


@lru_cache(maxsize=4)
def _own_table(path: Path) -> dict[str, Price]:
    return _load(path)


@dataclass(frozen=True)
class Pricing:
    """Where a model's price comes from: your price file (`prices`, FUSION_MCP_PRICES) first, then the
    provider's model listing cached in `models_cache` (FUSION_MCP_MODELS_CACHE; None: none consulted),
    then the shipped table (the offline fallback). `Pricing()` is the shipped table alone."""

    prices: Path | None = None
    models_cache: Path | None = None

    def check(self) -> None:
        """Load (and so validate) the price tables now; raises ConfigError naming the file and key."""
        price_table(self.prices)

    def price_for(self, ref: str) -> Price | None:
        if self.prices is not None and ref in (own := _own_table(self.prices)):
            return own[ref]
        if self.models_cache is not None:
            from .model_catalog import listed_model  # httpx and the provider specs: not for every importer

            listed = listed_model(self.models_cache, ref)
            if listed and listed.input_usd_per_mtok is not None and listed.output_usd_per_mtok is not None:
                return Price(input=listed.input_usd_per_mtok, output=listed.output_usd_per_mtok)
        if ref.endswith(":online"):  # OpenRouter's web-search variant is priced as its model (plus the search)
            return self.price_for(ref.removesuffix(":online"))
        return price_table(None).get(ref)

    def with_cost(self, completion: Completion) -> Completion:
        """Fill in a completion's cost from the price table when the upstream gave none."""
        if completion.cost_usd is not None or completion.cost_source == "local":
            return completion
        price = self.price_for(f"{completion.provider}:{completion.model}")
        usage = completion.usage
        if price is None or usage.input_tokens is None or usage.output_tokens is None:
            return completion
        return completion.model_copy(
            update={"cost_usd": price.cost(usage.input_tokens, usage.output_tokens), "cost_source": "price_table"}
        )


def format_cost(cost: float | None, complete: bool = True, unknown: int = 0) -> str:
    """How a cost reads everywhere: unknown stays unknown (never $0); small costs keep 6 places."""
    if cost is None:
        return "unknown"
    text = f"${cost:.6f}" if 0 < cost < 0.01 else f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"
    if not complete:
        text = f"≥ {text}" + (f" ({unknown} call(s) of unknown cost)" if unknown else "")
    return text


def cost_column(costs: list[float | None]) -> list[str]:
    """Costs for one table column, all at one precision (two significant digits of the smallest
    non-zero one, 2 to 6 places), so they line up and compare; unknown stays unknown."""
    nonzero = [abs(c) for c in costs if c]
    places = 2 if not nonzero else max(2, min(6, 1 - math.floor(math.log10(min(nonzero)))))
    return ["unknown" if c is None else f"${c:.{places}f}" for c in costs]
