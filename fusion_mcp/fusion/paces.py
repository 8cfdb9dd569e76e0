"""How fast each model answers: time to first token and output rate, learned from every call and kept
by the store (store/paces.py: a file beside the call cache, or Redis), with the shipped priors
(config/paces.toml) for models not yet seen.

The time plan (timing.py) predicts a call's duration as `ttft + tokens / rate` from this book.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from ..errors import ConfigError
from ..providers import Completion
from ..store.paces import FILE_NAME, FilePaces, Pace, PaceStore

PRIORS_FILE = Path(__file__).resolve().parent.parent / "config" / "paces.toml"
ALPHA = 0.3  # weight of a new observation in the moving averages

__all__ = ["Pace", "PaceBook", "load_priors"]


def load_priors(extra: str | None = None) -> dict[str, Pace]:
    """The shipped priors, plus a user's file ($FUSION_MCP_PACES); errors name the file and key."""
    priors: dict[str, Pace] = {}
    for path in [PRIORS_FILE] + ([Path(extra).expanduser()] if extra else []):
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read model paces: {exc}", file=str(path)) from None
        for ref, entry in raw.items():
            try:
                priors[ref] = Pace(float(entry["ttft_s"]), float(entry["tokens_per_s"]))
            except (KeyError, TypeError, ValueError):
                raise ConfigError("needs numbers ttft_s and tokens_per_s", file=str(path), key=ref) from None
            if priors[ref].ttft_s < 0 or priors[ref].tokens_per_s <= 0:
                raise ConfigError("ttft_s must be >= 0 and tokens_per_s > 0", file=str(path), key=ref)
    return priors


class PaceBook:
    """Per model: its pace (moving average of measured calls, else the prior); per model and stage:
    how many tokens it writes (moving average). What it measured lives in `store`."""

    def __init__(self, priors: dict[str, Pace] | None = None, store: PaceStore | None = None) -> None:
        """`priors` default to the shipped ones; `store` to memory (nothing read or written on disk)."""
        self.priors = priors if priors is not None else load_priors()
        self.store: PaceStore = store if store is not None else FilePaces()

    @classmethod
    def beside_cache(cls, cache_path: Path, priors_file: Path | None = None) -> PaceBook:
        """The book kept next to the call cache, with the shipped priors and the user's (FUSION_MCP_PACES)."""
        return cls(priors=load_priors(str(priors_file) if priors_file else None),
                   store=FilePaces(cache_path.parent / FILE_NAME).load_now())

    @property
    def measured(self) -> dict[str, Pace]:
        return self.store.measured

    def pace(self, ref: str) -> Pace | None:
        return self.store.measured.get(ref) or self.priors.get(ref)

    def output_tokens(self, ref: str, stage: str) -> float | None:
        return self.store.outputs.get(f"{ref}|{stage}")

    def tool_seconds(self, ref: str, stage: str) -> float | None:
        """How long this model's tool calls (and the turns around them) took in this stage, on average."""
        return self.store.outputs.get(f"{ref}|{stage}|tools_s")

    def observe_tools(self, ref: str, stage: str, seconds: float) -> None:
        """Learn the time a tool loop added to a call: every turn but the last, and the tools run."""
        key = f"{ref}|{stage}|tools_s"
        old = self.store.outputs.get(key)
        seconds = max(0.0, seconds)
        self.store.set_output(key, seconds if old is None else (1 - ALPHA) * old + ALPHA * seconds)

    def predict(self, ref: str, output_tokens: float) -> float | None:
        """Seconds for a call of `ref` writing `output_tokens`; None when its pace is unknown."""
        pace = self.pace(ref)
        return None if pace is None else pace.seconds(output_tokens)

    def observe(self, ref: str, stage: str, completion: Completion) -> None:
        """Learn from one call that came back from upstream (cached ones say nothing about pace)."""
        if completion.cached:
            return
        tokens = completion.usage.output_tokens
        if tokens:
            key = f"{ref}|{stage}"
            old = self.store.outputs.get(key)
            self.store.set_output(key, tokens if old is None else (1 - ALPHA) * old + ALPHA * tokens)
        ttft, rate = completion.ttft_s, completion.output_tokens_per_s
        if ttft is None or rate is None:
            if not tokens or completion.latency_s <= 0:
                return
            known = self.pace(ref)  # not streamed: split the latency using the rate we believe
            rate = known.tokens_per_s if known else max(tokens / completion.latency_s, 0.1)
            ttft = max(0.0, completion.latency_s - tokens / rate)
        old_pace = self.store.measured.get(ref)
        if old_pace is None:
            self.store.set_pace(ref, Pace(ttft, rate, 1))
        else:
            self.store.set_pace(ref, Pace((1 - ALPHA) * old_pace.ttft_s + ALPHA * ttft,
                                          (1 - ALPHA) * old_pace.tokens_per_s + ALPHA * rate, old_pace.samples + 1))

    async def save(self) -> None:
        await self.store.save()

    async def flush(self) -> None:
        """Write what `save` held back: when the engine closes."""
        await self.store.flush()
