"""`--quick` for the local-model benchmarks: the same runs, drafts only, each capped at a few tokens.
The script's every step still runs (load, the drafts at once, its own counting and printing); the
embedded model just reads and writes less. A review or synthesis prompt alone is about a thousand
tokens, seconds of CPU on two cores, so the test suite's smoke run leaves them out (the local
ensemble's every stage is tested once, through `fusion-mcp ask`, in tests/test_local_model.py)."""

from __future__ import annotations

import dataclasses

from fusion_mcp.config.ensembles import Ensemble, ModelRole

QUICK_MAX_TOKENS = 12


def drafts_only(ensemble: Ensemble, max_tokens: int = QUICK_MAX_TOKENS) -> Ensemble:
    """`ensemble` without its reviewer and synthesizer (the answer is then the best draft), each
    drafter writing at most `max_tokens` tokens."""

    def cap(role: ModelRole) -> ModelRole:
        return dataclasses.replace(role, max_tokens=min(role.max_tokens or max_tokens, max_tokens))

    return dataclasses.replace(ensemble, drafters=tuple(cap(d) for d in ensemble.drafters), reviewer=None,
                               synthesizer=None)
