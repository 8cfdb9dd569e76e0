"""The review parser copes with what real reviewers write: fences, prose, odd shapes and scales."""

from __future__ import annotations

import pytest

from fusion_mcp.fusion.review_parser import ReviewParseError, parse_review
from fusion_mcp.fusion.weights import agreement_scores

LABELS = ["A", "B"]


def _marks(text: str) -> dict[str, tuple[float, float, float]]:
    return {k: (s.consistency, s.accuracy, s.completeness) for k, s in parse_review(text, LABELS).items()}


def test_plain_json() -> None:
    text = '{"reviews": [{"label": "A", "consistency": 8, "accuracy": 7, "completeness": 9, "reason": "ok"},' \
           ' {"label": "B", "consistency": 2, "accuracy": 3, "completeness": 4, "reason": "weak"}]}'
    assert _marks(text) == {"A": (8, 7, 9), "B": (2, 3, 4)}
    assert parse_review(text, LABELS)["B"].reason == "weak"


def test_code_fence_with_prose_around_it() -> None:
    text = 'Here is my review:\n```json\n{"reviews": [{"label": "A", "consistency": 8, "accuracy": 8,' \
           ' "completeness": 8, "reason": "x"}, {"label": "B", "consistency": 1, "accuracy": 1,' \
           ' "completeness": 1, "reason": "y"}]}\n```\nHope this helps!'
    assert _marks(text) == {"A": (8, 8, 8), "B": (1, 1, 1)}


def test_trailing_commas_and_embedded_object() -> None:
    text = 'Scores follow {"reviews": [{"label": "A", "consistency": 5, "accuracy": 6, "completeness": 7,},]} done'
    assert _marks(text) == {"A": (5, 6, 7)}


def test_mapping_shapes_aliases_and_draft_prefixes() -> None:
    text = '{"Draft A": {"semantic_consistency": 9, "factual_accuracy": "8/10", "logical_completeness": 7},' \
           ' "Draft B": {"score": 4, "rationale": "thin"}}'
    marks = _marks(text)
    assert marks == {"A": (9, 8, 7), "B": (4, 4, 4)}
    assert parse_review(text, LABELS)["B"].reason == "thin"


def test_bare_numbers_per_label() -> None:
    assert _marks('{"A": 7, "B": 3}') == {"A": (7, 7, 7), "B": (3, 3, 3)}


@pytest.mark.parametrize(("a", "expected"), [(0.9, 9.0), (90, 9.0)])
def test_scales_of_one_and_a_hundred_become_ten(a: float, expected: float) -> None:
    text = f'{{"reviews": [{{"label": "A", "consistency": {a}, "accuracy": {a}, "completeness": {a}}}]}}'
    assert _marks(text)["A"] == (expected,) * 3


def test_out_of_range_scores_are_clamped() -> None:
    assert _marks('{"A": -3, "B": 10}')["A"] == (0, 0, 0)


def test_unknown_labels_are_ignored() -> None:
    assert _marks('{"A": 7, "Q": 3}') == {"A": (7, 7, 7)}


@pytest.mark.parametrize("text", ["", "Both are good.", "{not json}", '{"reviews": []}', '["A", "B"]', '{"Z": 4}'])
def test_nothing_usable_raises_with_a_snippet(text: str) -> None:
    with pytest.raises(ReviewParseError, match="no scores for drafts A, B"):
        parse_review(text, LABELS)


def test_agreement_rewards_the_drafts_that_agree() -> None:
    scores = agreement_scores({"A": "the answer is 42", "B": "the answer is 42 indeed", "C": "bananas are yellow"})
    assert scores["A"] > scores["C"] and scores["B"] > scores["C"]
    assert agreement_scores({"A": "alone"}) == {}
