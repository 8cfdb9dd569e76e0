"""The short confidence picture `fused_answer` returns: how far the drafts agreed, what they disputed.

A host model reads it to tell a unanimous answer from a contested one without reading the drafts.
No `from __future__ import annotations` (see service.py).
"""

from typing import Literal

from pydantic import BaseModel, Field

from ..fusion.result import FusionResult

Level = Literal["high", "medium", "low", "unknown"]


class Confidence(BaseModel):
    level: Level = Field(description="high: drafts agree, nothing disputed; medium: one dispute; low: more, or "
                                     "drafts failed; unknown: no review to judge by.")
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
    level: Level
    if analysis is None or ok < 2:
        level = "unknown"
    elif len(topics) > 1 or ok * 2 < total:
        level = "low"
    elif topics:
        level = "medium"
    else:
        level = "high"
    return Confidence(
        level=level,
        agreement=result.agreement,
        drafts_ok=ok,
        drafts_total=total,
        consensus_points=len(analysis.consensus) if analysis else 0,
        contradictions=topics,
        blind_spots=len(analysis.blind_spots) if analysis else 0,
    )
