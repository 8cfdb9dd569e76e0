"""The guard: a synthesis must not silently lose the answer the panel agreed on.

An aggregate can end up worse than its inputs (Self-MoA). After the synthesis, its final answer is
compared with the drafts' (the extraction unanimity uses). When the drafts agree (all of them, or a
clear majority) and the synthesis names another final answer, the run answers with the majority's best
draft instead, keeping the synthesis for the record, unless the review scored a draft that gives the
synthesis's answer as more accurate than every majority draft: then the synthesis stands, and the
result says the panel was overruled and why.
"""

from __future__ import annotations

import re
from collections import Counter

from .result import Draft, GuardCheck
from .unanimity import final_answer


def _accuracy(d: Draft) -> float | None:
    return d.scores.accuracy if d.scores is not None else None


def same_answer(majority: str, fused: str) -> bool:
    """The synthesis gives the majority's answer: the same, or one contains the other as whole words
    ("paris" in "paris, the capital"), so that a fuller phrasing of the same answer is no conflict."""
    if majority == fused:
        return True
    short, long = sorted((majority, fused), key=len)
    return re.search(rf"(?<!\w){re.escape(short)}(?!\w)", long) is not None


def check(drafts: list[Draft], synthesis: str) -> GuardCheck:
    """What the guard makes of a synthesis written from `drafts` (only ok drafts count)."""
    ok = [d for d in drafts if d.status == "ok"]
    answers = {d.label: final_answer(d.text or "") for d in ok}
    counted = Counter(a for a in answers.values() if a is not None)
    fused = final_answer(synthesis)
    if not counted:
        return GuardCheck(verdict="not_applicable", synthesis_answer=fused, drafts=len(ok),
                          reason="no draft names a final answer to compare")
    top, n = counted.most_common(1)[0]
    if n < 2 or n * 2 <= len(ok):
        return GuardCheck(verdict="no_majority", synthesis_answer=fused, majority=n, drafts=len(ok),
                          reason=f"the drafts do not agree: no final answer is given by more than half of {len(ok)}")
    base = GuardCheck(verdict="agrees", majority_answer=top, synthesis_answer=fused, majority=n, drafts=len(ok),
                      reason=f"{n} of {len(ok)} drafts and the synthesis give {top!r}")
    if fused is None:
        return base.model_copy(update={"verdict": "not_applicable",
                                       "reason": "the synthesis names no final answer to compare"})
    if same_answer(top, fused):
        return base
    behind = [d for d in ok if answers[d.label] == top]
    minority = [d for d in ok if answers[d.label] == fused]
    best_majority = max((a for a in map(_accuracy, behind) if a is not None), default=None)
    best_minority = max((a for a in map(_accuracy, minority) if a is not None), default=None)
    if best_minority is not None and best_majority is not None and best_minority > best_majority:
        who = ", ".join(d.label for d in minority)
        return base.model_copy(update={
            "verdict": "overruled",
            "reason": (f"the synthesis gives {fused!r} against {n} of {len(ok)} drafts ({top!r}); it stands because "
                       f"the review scored draft {who}, which gives {fused!r}, as more accurate "
                       f"({best_minority:g}/10 against at most {best_majority:g}/10)"),
        })
    best = max(behind, key=lambda d: (d.weight, d.agreement or 0.0))
    why = "no draft gives it" if not minority else "the review did not score its drafts as more accurate"
    return base.model_copy(update={
        "verdict": "replaced", "answer_label": best.label,
        "reason": (f"the synthesis gives {fused!r} but {n} of {len(ok)} drafts give {top!r} ({why}): the answer is "
                   f"the majority's best-weighted draft {best.label} ({best.model}); the synthesis is kept in "
                   "guard.synthesis_text"),
    })
