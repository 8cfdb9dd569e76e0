"""`fusion-mcp eval` end to end against the loopback upstream, with scripted models whose right and
wrong answers are known, so that every reported accuracy has an expected value."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from fusion_mcp.cli.main import main
from fusion_mcp.evaluation.budget_gate import BudgetGate, Gate
from tests.conftest import drafts_in_prompt, lab_toml, review_json
from tests.upstream import Behaviour, Upstream

N = 10
ALPHA_RIGHT = set(range(0, 7))  # 70%
BETA_RIGHT = set(range(3, 10))  # 70%, right on a different 70%
GAMMA_RIGHT = {0, 1, 2, 7, 8, 9}  # 60%: with alpha and beta, a majority is right on every item
FUSER_UNSURE = {0, 1}  # the synthesizer gives no extractable answer on these


def _user(body: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")


def _question(text: str) -> tuple[int, int]:
    m = re.search(r"What is (\d+) plus (\d+)\?", text)
    assert m, text
    return int(m.group(1)), int(m.group(2))


def drafter(right: set[int], wrong_by: int) -> Behaviour:
    """Right (a + b) on the items in `right`, else a wrong number of its own."""

    def answer(body: dict[str, Any]) -> str:
        a, b = _question(_user(body))
        total = a + b if a in right else a + b + wrong_by
        return f"Adding {a} and {b}.\nAnswer: {total}"

    return Behaviour(text=answer, cost=0.001)


def judge() -> Behaviour:
    """Scores a draft 9 when its answer is right, 1 when not."""

    def answer(body: dict[str, Any]) -> str:
        user = _user(body)
        a, b = _question(user)
        found = drafts_in_prompt(user)
        return review_json({label: (9, 9, 9) if f"Answer: {a + b}" in text else (1, 1, 1)
                            for label, text in found.items()})

    return Behaviour(text=answer, cost=0.002)


def fuser() -> Behaviour:
    """Copies the highest-weighted draft (the first in its prompt), except on FUSER_UNSURE items."""

    def answer(body: dict[str, Any]) -> str:
        user = _user(body)
        a, _ = _question(user)
        if a in FUSER_UNSURE:
            return "I am not sure about this one."
        return next(iter(drafts_in_prompt(user).values()))

    return Behaviour(text=answer, cost=0.003)


def script_lab(upstream: Upstream) -> None:
    upstream.script("alpha", drafter(ALPHA_RIGHT, 1))
    upstream.script("beta", drafter(BETA_RIGHT, 2))
    upstream.script("gamma", drafter(GAMMA_RIGHT, 3))
    upstream.script("judge", judge())
    upstream.script("fuser", fuser())


def write_dataset(folder: Path, n: int = N) -> Path:
    path = folder / "sums.jsonl"
    path.write_text("".join(json.dumps({"question": f"What is {i} plus 10?", "answer": str(i + 10)}) + "\n"
                            for i in range(n)))
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def lab(upstream: Upstream, ensemble_dir: Path, tmp_path: Path) -> dict[str, Any]:
    script_lab(upstream)
    (ensemble_dir / "trio.toml").write_text(lab_toml(upstream.url, ["alpha", "beta", "gamma"]))
    return {"dirs": ["--ensemble-dir", str(ensemble_dir)], "data": write_dataset(tmp_path), "out": tmp_path / "out"}


def rows_by_label(out: Path) -> dict[str, dict[str, Any]]:
    results = json.loads((out / "results.json").read_text())
    return {r["label"]: r for r in results["rows"]}


def test_every_strategy_scores_its_known_accuracy(lab, upstream, capsys):
    code, out, err = run_cli(["eval", *lab["dirs"], "--dataset", str(lab["data"]), "--ensemble", "trio",
                              "--baseline", "lab:alpha", "--concurrency", "1", "--out", str(lab["out"])], capsys)
    assert code == 0, err
    rows = rows_by_label(lab["out"])
    accuracy = {label: r["accuracy"] for label, r in rows.items()}
    assert accuracy == {
        "trio · fuse": 0.8,
        "trio · guard": 1.0,  # "I am not sure" is not the drafts' majority answer: the guard answers with it
        "trio · vote": 1.0,
        "trio · best-reviewed": 1.0,
        "trio · single:lab:alpha": 0.7,
        "trio · single:lab:beta": 0.7,
        "trio · single:lab:gamma": 0.6,
        "trio · oracle": 1.0,
        "lab:alpha": 0.7,
    }
    assert all(r["n"] == N for r in rows.values())
    assert rows["trio · fuse"]["unparseable"] == 2
    assert rows["trio · vote"]["unparseable"] == 0
    # Wilson 95% interval for 7 of 10
    assert rows["trio · single:lab:alpha"]["ci_low"] == pytest.approx(0.3968, abs=1e-4)
    assert rows["trio · single:lab:alpha"]["ci_high"] == pytest.approx(0.8922, abs=1e-4)
    # Each strategy costs the calls it needs: drafts 0.001 each, review 0.002, synthesis 0.003.
    per_item = {label: r["cost_per_item_usd"] for label, r in rows.items()}
    assert per_item["trio · single:lab:beta"] == pytest.approx(0.001)
    assert per_item["trio · vote"] == pytest.approx(0.003)
    assert per_item["trio · oracle"] == pytest.approx(0.003)
    assert per_item["trio · best-reviewed"] == pytest.approx(0.005)
    assert per_item["trio · fuse"] == pytest.approx(0.008)
    assert rows["trio · fuse"]["cost_usd"] == pytest.approx(0.08)
    # Cheapest at 70% (two singles) and cheapest at 100% (vote); the oracle never competes.
    front = {label for label, r in rows.items() if r["pareto"]}
    assert front == {"trio · single:lab:alpha", "trio · single:lab:beta", "trio · vote", "lab:alpha"}
    # One engine run per item: vote, best-reviewed, single and oracle needed no extra calls, and the
    # baseline sent alpha the very call alpha had just answered as a drafter (a cache hit; one job
    # at a time here, so the drafter's call is stored before the baseline asks).
    assert len(upstream.calls("alpha")) == N
    assert len(upstream.calls("judge")) == N and len(upstream.calls("fuser")) == N
    # The prompt asks for the form the scorer extracts.
    assert 'Answer: N' in upstream.calls("beta")[0].user_text()
    # The terminal table and the written files.
    assert "trio" in out and "best-reviewed" in out and "oracle (ceiling)" in out
    md = (lab["out"] / "results.md").read_text()
    assert "| trio | vote | 100.0% |" in md
    assert (lab["out"] / "cost_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    items = [json.loads(line) for line in (lab["out"] / "items.jsonl").read_text().splitlines()]
    assert len(items) == 2 * N
    first = next(i for i in items if i["target"] == "trio" and i["item"] == "line-1")
    assert first["gold"] == "10" and first["outcomes"]["fuse"]["unparseable"]
    # The verdict leads: alpha (70%) is the best single model; fuse is right alone on items 7-9 and
    # wrong alone on 0-1 (3 vs 2 discordant, p = 1), vote right alone on 7-9 (p = 0.25).
    verdict = md.split("\n\n")[0]
    assert verdict == "**Verdict.** Best single model: trio · single:lab:alpha, 70.0% (7/10)."
    assert ("- trio · fuse: 80.0% vs 70.0% on the same 10 items; right only here on 3, only with the single model "
            "on 2; exact McNemar p = 1: not distinguishable at this n (a difference this size would need about "
            "391 items).") in md
    assert "- trio · vote: 100.0% vs 70.0% on the same 10 items; right only here on 3" in md
    assert "p = 0.25: not distinguishable at this n" in md
    assert out.index("Best single model") < out.index("oracle (ceiling)")  # the conclusion comes first
    assert "| lab:alpha | baseline (model alone) |" in md  # the baseline says what it is
    assert "| trio | fuse | 80.0% | 49.0%–94.3% | 10 | 2 | 0 | $0.080 | $0.0080 |" in md  # one precision per column
    assert "eval: 10/10 items done" in err  # progress counts items, not item × target


def test_the_report_fits_80_columns(lab, upstream, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run_cli(["eval", *lab["dirs"], "--dataset", str(lab["data"]), "--ensemble", "trio",
                              "--concurrency", "2", "--out", str(lab["out"])], capsys)
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert "…" not in out and "single:lab:gamma" in "".join(out.split())


def test_second_identical_run_makes_no_upstream_call(lab, upstream, capsys):
    args = ["eval", *lab["dirs"], "--dataset", str(lab["data"]), "-e", "trio", "--out", str(lab["out"]), "--json"]
    code, out, _ = run_cli(args, capsys)
    assert code == 0
    first = json.loads(out)
    made = len(upstream.calls())
    assert made == N * 5 and first["run"]["cached_calls"] == 0
    assert first["run"]["spent_usd"] == pytest.approx(0.08)

    code, out, _ = run_cli(args, capsys)
    assert code == 0
    second = json.loads(out)
    assert len(upstream.calls()) == made  # every call answered from the cache
    assert second["run"]["cached_calls"] == N * 5 and second["run"]["spent_usd"] == 0
    assert [r["accuracy"] for r in second["rows"]] == [r["accuracy"] for r in first["rows"]]
    assert [r["cost_usd"] for r in second["rows"]] == [r["cost_usd"] for r in first["rows"]]  # as first charged

    code, _, _ = run_cli([*args, "--no-cache"], capsys)
    assert code == 0 and len(upstream.calls()) == 2 * made


def test_a_new_synthesizer_recalls_only_the_synthesis(lab, upstream, ensemble_dir, capsys):
    args = ["eval", *lab["dirs"], "--dataset", str(lab["data"]), "--out", str(lab["out"])]
    assert run_cli([*args, "-e", "trio"], capsys)[0] == 0
    upstream.script("fuser2", text="Answer: 3")
    (ensemble_dir / "trio2.toml").write_text(
        lab_toml(upstream.url, ["alpha", "beta", "gamma"], synthesizer="fuser2"))
    before = len(upstream.calls())
    assert run_cli([*args, "-e", "trio2", "--strategies", "fuse,guard"], capsys)[0] == 0
    # Same drafts, same review: all from the cache; only the new synthesizer is called.
    new = upstream.calls()[before:]
    assert [c.model for c in new] == ["fuser2"] * N
    rows = rows_by_label(lab["out"])
    assert rows["trio2 · fuse"]["accuracy"] == 0.0
    # The guard sees the synthesis leave the drafts' majority (right on every item) and answers with it.
    assert rows["trio2 · guard"]["accuracy"] == 1.0
    assert rows["trio2 · guard"]["cost_per_item_usd"] == rows["trio2 · fuse"]["cost_per_item_usd"]


def test_budget_cap_stops_before_spending_more(upstream, ensemble_dir, tmp_path, capsys):
    for model in ("alpha", "beta", "gamma", "judge", "fuser"):
        upstream.script(model, text="Answer: 1", cost=0.01)
    upstream.script("gamma", text="Answer: 2", cost=0.01)  # drafts disagree: the review runs
    (ensemble_dir / "trio.toml").write_text(lab_toml(upstream.url, ["alpha", "beta", "gamma"]))
    data = write_dataset(tmp_path)
    # `--ensembles NAME` is issue 5's spelling of `-e NAME`
    code, out, err = run_cli(["eval", "--ensemble-dir", str(ensemble_dir), "-d", str(data), "--ensembles", "trio",
                              "--max-cost-usd", "0.12", "--concurrency", "4", "--out", str(tmp_path / "o"),
                              "--json"], capsys)
    assert code == 0, err
    results = json.loads(out)
    # 5 calls of $0.01 per item: after two items ($0.10) a third would pass $0.12.
    assert results["run"]["spent_usd"] == pytest.approx(0.10)
    assert results["run"]["spent_usd"] <= 0.12
    assert len(upstream.calls()) == 10
    assert all(r["n"] == 2 for r in results["rows"])
    assert "budget cap $0.12" in results["run"]["stopped"]


def test_unknown_cost_stays_unknown(upstream, ensemble_dir, tmp_path, capsys):
    upstream.script("alpha", text="Answer: 10")  # no usage.cost, and lab is in no price table
    (ensemble_dir / "solo.toml").write_text(lab_toml(upstream.url, ["alpha"], reviewer=None, synthesizer=None))
    data = write_dataset(tmp_path, 3)
    code, out, err = run_cli(["eval", "--ensemble-dir", str(ensemble_dir), "-d", str(data), "-e", "solo",
                              "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    rows = rows_by_label(tmp_path / "o")
    assert rows["solo · single:lab:alpha"]["cost_usd"] is None
    assert rows["solo · single:lab:alpha"]["accuracy"] == pytest.approx(1 / 3)
    assert not any(r["pareto"] for r in rows.values())
    assert "unknown" in (tmp_path / "o" / "results.md").read_text()
    assert "$0.0000 " not in out.split("Run:")[0]


def test_failed_drafts_count_as_wrong_and_are_reported(upstream, ensemble_dir, tmp_path, capsys):
    upstream.script("alpha", text="Answer: 10")
    upstream.script("beta", status=500)
    (ensemble_dir / "duo.toml").write_text(lab_toml(upstream.url, ["alpha", "beta"], reviewer=None,
                                                    synthesizer=None, min_drafts=1))
    data = write_dataset(tmp_path, 2)
    code, _, err = run_cli(["eval", "--ensemble-dir", str(ensemble_dir), "-d", str(data), "-e", "duo",
                            "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    rows = rows_by_label(tmp_path / "o")
    assert rows["duo · single:lab:beta"]["failed"] == 2 and rows["duo · single:lab:beta"]["accuracy"] == 0
    assert rows["duo · single:lab:alpha"]["accuracy"] == 0.5  # right on "0 plus 10" only


def test_broken_dataset_line_names_file_and_line(upstream, ensemble_dir, tmp_path, capsys):
    (ensemble_dir / "trio.toml").write_text(lab_toml(upstream.url, ["alpha", "beta"]))
    data = tmp_path / "bad.jsonl"
    data.write_text('{"question": "What is 1 plus 1?", "answer": "2"}\n\n{"question": "oops", "answer": \n')
    code, _, err = run_cli(["eval", "--ensemble-dir", str(ensemble_dir), "-d", str(data), "-e", "trio"], capsys)
    assert code == 2
    assert f"{data}:3: not valid JSON" in err
    assert upstream.calls() == []


def test_unknown_ensemble_and_missing_key_are_clear(upstream, ensemble_dir, tmp_path, capsys, monkeypatch):
    data = write_dataset(tmp_path, 1)
    code, _, err = run_cli(["eval", "-d", str(data), "-e", "nope"], capsys)
    assert code == 2 and "unknown ensemble 'nope'" in err
    code, _, err = run_cli(["eval", "-d", str(data), "-e", "budget-trio"], capsys)
    assert code == 2 and "OPENROUTER_API_KEY" in err
    code, _, err = run_cli(["eval", "-d", str(data), "-e", "local", "--strategies", "fuse,magic"], capsys)
    assert code == 2 and "unknown magic" in err


def test_the_budget_gate_learns_a_targets_cost_before_it_runs_it_alongside_others() -> None:
    gate = BudgetGate(0.10, ["fuse", "single"])
    assert gate.verdict("fuse") is Gate.START  # nothing in flight: its first job shows its cost
    gate.started("fuse")
    assert gate.verdict("single") is Gate.WAIT  # its cost unknown while another is in flight
    gate.finished("fuse", 0.03)
    assert gate.expected("fuse") == pytest.approx(0.03)
    gate.started("fuse")
    gate.started("fuse")  # 0.03 spent + 2 x 0.03 in flight
    assert gate.verdict("fuse") is Gate.STOP  # a third would reach 0.12
    gate.finished("fuse", 0.01)  # 0.04 spent + 0.02 x 1 in flight + 0.02
    assert gate.verdict("fuse") is Gate.START
    gate.finished("fuse", None)  # a job that failed before its record: nothing learned, nothing spent
    assert gate.spent_usd == pytest.approx(0.04) and gate.in_flight == {"fuse": 0, "single": 0}


def test_the_budget_gate_stops_once_the_cap_is_spent_and_never_without_a_cap() -> None:
    gate = BudgetGate(0.05, ["fuse"])
    gate.started("fuse")
    gate.finished("fuse", 0.05)
    assert gate.verdict("fuse") is Gate.STOP
    free = BudgetGate(None, ["fuse"])
    free.started("fuse")
    assert free.verdict("fuse") is Gate.START
