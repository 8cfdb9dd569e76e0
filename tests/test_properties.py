"""Property-based tests: whatever a model or a file holds, the review parser, the ensemble loader and
the draft delimiter raise only the project's own errors, and no draft escapes its block."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusion_mcp.config.ensembles import load_ensemble_file, parse_ensemble
from fusion_mcp.errors import ConfigError
from fusion_mcp.fusion.delimit import wrap_draft
from fusion_mcp.fusion.review_parser import ReviewParseError, parse_review

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LABELS = ["A", "B", "C"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
                    st.sampled_from(["A", "B", "Draft A", "score", "8/10", "reviews", "label", "accuracy"]))
keys = st.one_of(st.text(max_size=12), st.sampled_from(
    ["A", "B", "C", "label", "reviews", "scores", "drafts", "consistency", "accuracy", "completeness",
     "score", "reason", "overall", "id", "name"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                            st.dictionaries(keys, inner, max_size=5)), max_leaves=30)


def _check_review(text: str) -> None:
    try:
        scores = parse_review(text, LABELS)
    except ReviewParseError:
        return
    assert scores and set(scores) <= set(LABELS)
    for s in scores.values():
        for v in (s.consistency, s.accuracy, s.completeness):
            assert 0.0 <= v <= 10.0 or v != v  # within the scale (NaN only from a NaN the model sent)


@SETTINGS
@given(st.text(alphabet=st.sampled_from('{}[]",:0123456789 abAB\n`json-.eE'), max_size=400))
def test_review_parser_on_json_shaped_noise(text: str) -> None:
    _check_review(text)


@SETTINGS
@given(st.text(max_size=400))
def test_review_parser_on_any_text(text: str) -> None:
    _check_review(text)


@SETTINGS
@given(json_values, st.text(max_size=30), st.booleans(), st.integers(0, 3000))
def test_review_parser_on_any_json_structure(value: Any, prose: str, fenced: bool, depth: int) -> None:
    body = json.dumps(value)
    text = f"{prose}\n```json\n{body}\n```" if fenced else f"{prose} {body} {prose}"
    _check_review(text)
    _check_review("[" * depth + body + "]" * depth)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_ensemble_loader_on_any_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "any.toml"
    path.write_bytes(data)
    try:
        load_ensemble_file(path)
    except ConfigError as exc:
        assert str(path) in str(exc)


toml_noise = st.text(alphabet=st.sampled_from('[]{}=",.\' \n#abcdmolers_:1234567890-+trufalsinf'), max_size=300)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(toml_noise, st.integers(0, 3000))
def test_ensemble_loader_on_toml_shaped_text(tmp_path: Path, text: str, depth: int) -> None:
    path = tmp_path / "any.toml"
    path.write_text(text + "\nx = " + "[" * depth + "]" * depth + "\n")
    try:
        load_ensemble_file(path)
    except ConfigError as exc:
        assert str(path) in str(exc)


tables = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(keys, inner, max_size=4)), max_leaves=20)
ensemble_keys = st.sampled_from(["description", "deadline_s", "min_drafts", "providers", "drafters", "reviewer",
                                 "synthesizer", "model", "weight", "kind", "base_url", "temperature"])


@SETTINGS
@given(st.dictionaries(st.one_of(ensemble_keys, st.text(max_size=8)), tables, max_size=6))
def test_ensemble_validation_on_any_structure(data: dict[str, Any]) -> None:
    try:
        parse_ensemble("any", data)
    except ConfigError:
        pass


NONCE = "0123456789ab"
tag_pieces = st.sampled_from(["<", "</", ">", "draft-", "draft", NONCE, NONCE[:6], NONCE[6:], "ffffff", " label=\"A\"",
                              "\n", "DRAFT-", "0", "a", "<draft-", "</draft-", "…", "‹", "[…]"])


@SETTINGS
@given(st.lists(st.one_of(tag_pieces, st.text(max_size=5)), max_size=40).map("".join))
def test_no_draft_escapes_its_block(text: str) -> None:
    wrapped = wrap_draft(text, "A", NONCE)
    assert wrapped.startswith(f'<draft-{NONCE} label="A">\n') and wrapped.endswith(f"\n</draft-{NONCE}>")
    assert wrapped.count(NONCE) == 2
    assert len(re.findall(r"</?draft-", wrapped, re.IGNORECASE)) == 2
    inside = wrapped[len(f'<draft-{NONCE} label="A">\n'):-len(f"\n</draft-{NONCE}>")]
    assert "<draft-" not in inside.lower() and "</draft-" not in inside.lower()
