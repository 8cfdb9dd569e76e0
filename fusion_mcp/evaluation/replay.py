"""Draft once, reuse everywhere: a model caller that remembers each candidate's drafts and replays them.

While tune drafts, every call goes through the engine's caller (and the call cache) and its outcome,
a completion or a provider error, is kept by what was asked. When the panels are confirmed, the same
draft request (whatever the drafter's place in the panel, which changes the cache key's sample index)
is answered from memory, marked cached, so it is neither paid nor counted twice; the review and the
synthesis go through as usual.
"""

from __future__ import annotations

from ..config.ensembles import ModelRole
from ..errors import ProviderError
from ..fusion.calls import ModelCaller
from ..fusion.completion_cache import call_key
from ..providers import ChatRequest, Completion
from ..providers.base import TextSink


class DraftReplay(ModelCaller):
    """A ModelCaller that records while `recording` and replays what it recorded."""

    def __init__(self, inner: ModelCaller) -> None:
        super().__init__(inner.providers, inner.cache, inner.paces, inner.budget, pricing=inner.pricing)
        self.recording = True
        self.kept: dict[str, Completion | ProviderError] = {}

    @staticmethod
    def _key(role: ModelRole, request: ChatRequest) -> str:
        return call_key(role.provider, role.model_id, request, 0)

    async def __call__(self, role: ModelRole, request: ChatRequest, *, timeout_s: float, sample: int = 0,
                       stage: str = "call", sink: TextSink | None = None) -> Completion:
        key = self._key(role, request)
        if not self.recording and key in self.kept:
            kept = self.kept[key]
            if isinstance(kept, ProviderError):
                raise kept
            return kept.model_copy(update={"cached": True})
        try:
            completion = await super().__call__(role, request, timeout_s=timeout_s, sample=sample, stage=stage,
                                                sink=sink)
        except ProviderError as exc:
            if self.recording:
                self.kept[key] = exc
            raise
        if self.recording:
            self.kept[key] = completion
        return completion
