"""The short confidence picture `fused_answer` returns: how far the drafts agreed, what they disputed.

A host model reads it to tell a unanimous answer from a contested one without reading the drafts.
No `from __future__ import annotations` (see service.py).
"""

from typing import Literal

from pydantic import BaseModel, Field

from ..fusion.result import FusionResult
from ..fusion.unanimity import unanimous

Level = Literal["high", "medium", "low", "unknown"]
_LOWER: dict[Level, Level] = {"high": "medium", "medium": "low", "low": "low", "unknown": "low"}


class Confidence(BaseModel):
    level: Level = Field(description="high: drafts agree (or give one final answer), nothing disputed; medium: "
                                     "one dispute; low: more, or most drafts failed; unknown: no review to judge by.")
    unanimous: bool = Field(default=False, description="Every draft gave the same final answer.")
    agreement: float | None = Field(default=None, description="Word overlap between drafts, 0-1.")
    drafts_ok: int
    drafts_total: int
    consensus_points: int = 0
    contradictions: list[str] = Field(default_factory=list, description="Topics the drafts disagreed on.")
    blind_spots: int = 0


def confidence_of(result: FusionResult) -> Confidence:
    ok, total = len(result.ok_drafts()), len(result.drafts)
    analysis = result.analysis
    topics = [c.topic for c in analysis.contradictions] if analysis else []
    same = unanimous(result.drafts) is not None
    level: Level
    if ok * 2 < total:
        level = "low"  # most drafts failed
    elif analysis is None:
        level = "high" if same else "unknown"  # a review skipped because every draft gave one answer
    elif len(topics) > 1:
        level = "low"
    elif topics:
        level = "medium"
    else:
        level = "high"
    if result.guard is not None and result.guard.verdict in ("replaced", "overruled"):
        # One level lower: the synthesis and the drafts' majority disagreed, so one of them is wrong.
        level = _LOWER[level]
    return Confidence(
        level=level,
        unanimous=same,
        agreement=result.agreement,
        drafts_ok=ok,
        drafts_total=total,
        consensus_points=len(analysis.consensus) if analysis else 0,
        contradictions=topics,
        blind_spots=len(analysis.blind_spots) if analysis else 0,
    )
