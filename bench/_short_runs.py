"""`--quick` for the local-model benchmarks: the same runs with every role's output capped at a few
tokens. The script's every step still runs (load, drafts, review, synthesis, its own counting); the
embedded model just writes less, so the test suite's smoke run costs seconds of CPU, not tens."""

from __future__ import annotations

import dataclasses

from fusion_mcp.config.ensembles import Ensemble, ModelRole

QUICK_MAX_TOKENS = 12


def capped(ensemble: Ensemble, max_tokens: int = QUICK_MAX_TOKENS) -> Ensemble:
    """`ensemble` with each role writing at most `max_tokens` tokens."""

    def cap(role: ModelRole) -> ModelRole:
        return dataclasses.replace(role, max_tokens=min(role.max_tokens or max_tokens, max_tokens))

    return dataclasses.replace(
        ensemble,
        drafters=tuple(cap(d) for d in ensemble.drafters),
        reviewer=cap(ensemble.reviewer) if ensemble.reviewer else None,
        synthesizer=cap(ensemble.synthesizer) if ensemble.synthesizer else None,
    )
