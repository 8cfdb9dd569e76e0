"""`fusion-mcp tune` end to end against the loopback upstream, with scripted models whose right and
wrong items and prices are known, so the panel the data says is best is known in advance."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from fusion_mcp.cli.main import main
from fusion_mcp.config.ensemble_registry import EnsembleRegistry
from fusion_mcp.evaluation.stats import mcnemar_exact, paired
from tests.conftest import drafts_in_prompt, lab_toml, review_json
from tests.upstream import Behaviour, Upstream

N = 40
# alpha and beta are the best single models (80%) and wrong on the same items (i % 5 == 0), so
# together they reach no higher; gamma (60%) is right exactly there: alpha + gamma is the best panel.
ALPHA_RIGHT = {i for i in range(N) if i % 5 != 0}
BETA_RIGHT = set(ALPHA_RIGHT)
GAMMA_RIGHT = {i for i in range(N) if i % 5 in (0, 2, 3)}
PRICE = {"alpha": 0.002, "beta": 0.003, "gamma": 0.001, "judge": 0.0005, "fuser": 0.0005}
PANEL = "lab:alpha + lab:gamma · review lab:judge · synthesis lab:fuser"


def _user(body: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")


def _sum(text: str) -> tuple[int, int]:
    m = re.search(r"What is (\d+) plus (\d+)\?", text)
    assert m, text
    return int(m.group(1)), int(m.group(2))


def drafter(name: str, right: set[int], wrong_by: int) -> Behaviour:
    def answer(body: dict[str, Any]) -> str:
        a, b = _sum(_user(body))
        return f"{name} adds {a} and {b}.\nAnswer: {a + b if a in right else a + b + wrong_by}"
    return Behaviour(text=answer, cost=PRICE[name])


def judge(body: dict[str, Any]) -> str:
    """Scores a draft 9 when its answer is right, 1 when not."""
    user = _user(body)
    a, b = _sum(user)
    return review_json({label: (9, 9, 9) if f"Answer: {a + b}" in text else (1, 1, 1)
                        for label, text in drafts_in_prompt(user).items()})


def fuser(body: dict[str, Any]) -> str:
    """Copies the highest-weighted draft (the first in its prompt)."""
    return next(iter(drafts_in_prompt(_user(body)).values()))


@pytest.fixture
def lab(upstream: Upstream, ensemble_dir: Path, tmp_path: Path) -> dict[str, Any]:
    upstream.script("alpha", drafter("alpha", ALPHA_RIGHT, 1))
    upstream.script("beta", drafter("beta", BETA_RIGHT, 2))
    upstream.script("gamma", drafter("gamma", GAMMA_RIGHT, 3))
    upstream.script("judge", Behaviour(text=judge, cost=PRICE["judge"]))
    upstream.script("fuser", Behaviour(text=fuser, cost=PRICE["fuser"]))
    # The `lab` provider, declared in an ensemble file the registry loads.
    (ensemble_dir / "labdef.toml").write_text(lab_toml(upstream.url, ["alpha"]))
    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "question": f"What is {i} plus 10?", "answer": str(i + 10)})
                            + "\n" for i in range(N)))
    out = tmp_path / "out"
    args = ["tune", "--ensemble-dir", str(ensemble_dir), "-d", str(data), "--candidates",
            "lab:alpha,lab:beta,lab:gamma", "--reviewers", "lab:judge", "--synthesizers", "lab:fuser",
            "--panel-size", "2", "--confirm", "2", "--out", str(out)]
    return {"args": args, "out": out, "data": data, "tmp": tmp_path}


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_recovers_the_complementary_panel_and_writes_it(lab, upstream, capsys):
    code, out, err = run_cli([*lab["args"], "--json", "--write", "sums-best"], capsys)
    assert code == 0, err
    result = json.loads(out)
    # Drafts once per candidate per item; review + synthesis only for the two confirmed panels.
    assert [len(upstream.calls(m)) for m in ("alpha", "beta", "gamma")] == [N, N, N]
    assert len(upstream.calls("fuser")) == 2 * N
    assert 0 < len(upstream.calls("judge")) < 2 * N  # where a panel's drafts agree, the review is skipped
    singles = {o["label"]: o for o in result["options"] if len(o["members"]) == 1}
    tune_ids = [int(i[1:]) for i in result["split"]["tune"]]

    def share(right: set[int]) -> float:
        return sum(i in right for i in tune_ids) / len(tune_ids)

    assert {k: v["tune"]["accuracy"] for k, v in singles.items()} == {
        "lab:alpha": share(ALPHA_RIGHT), "lab:beta": share(BETA_RIGHT), "lab:gamma": share(GAMMA_RIGHT)}
    assert result["best_single"] == "lab:alpha"  # tied with beta, and cheaper
    # The panel search ranks panels from the drafts alone: alpha + gamma never miss together.
    panels = {" + ".join(p["members"]): p for p in result["panels"]}
    assert panels["lab:alpha + lab:gamma"]["oracle"] == 1.0
    assert panels["lab:alpha + lab:beta"]["oracle"] == singles["lab:alpha"]["tune"]["accuracy"] < 1.0  # same errors
    assert panels["lab:alpha + lab:gamma"]["vote"]["cost_per_item_usd"] == pytest.approx(0.003)
    assert ["lab:alpha", "lab:gamma"] in result["confirmed_panels"]
    assert ["lab:alpha", "lab:beta"] not in result["confirmed_panels"]
    # The recommendation: the complementary panel, not the two best single models.
    rec = result["recommended"]
    assert rec["label"] == PANEL
    assert rec["tune"]["accuracy"] == 1.0 and rec["report"]["accuracy"] == 1.0
    # drafts + synthesis on every item, the review ($0.0005) only where the two drafts disagree
    assert 0.002 + 0.001 + 0.0005 < rec["tune"]["cost_per_item_usd"] < 0.002 + 0.001 + 0.0005 + 0.0005
    # Held out: 40% of the items, never used to choose, and the paired test against alpha.
    held = result["split"]["held_out"]
    assert len(held) == 16 and len(result["split"]["tune"]) == 24 and not set(held) & set(result["split"]["tune"])
    alpha_wrong = sum(1 for item in held if int(item[1:]) % 5 == 0)
    test = rec["versus_best_single"]
    assert (test["n"], test["a_only"], test["b_only"]) == (16, alpha_wrong, 0)
    assert test["p_value"] == pytest.approx(min(1.0, 2 * 0.5 ** alpha_wrong))
    says = " ".join(result["reasons"])
    assert ("cannot separate" in says) == (test["p_value"] >= 0.05)
    assert "16 held-out items" in says
    # The written ensemble: in the user's folder, with its provenance, and it loads and runs.
    written = Path(result["written"])
    assert written.parent == lab["tmp"] / "config" / "fusion-mcp" / "ensembles"
    text = written.read_text()
    assert "# Written by `fusion-mcp tune`" in text and "sums" in text and "held out (seed 0" in text
    ensemble = EnsembleRegistry.load().get("sums-best")
    assert [d.ref for d in ensemble.drafters] == ["lab:alpha", "lab:gamma"]
    assert ensemble.reviewer.ref == "lab:judge" and ensemble.synthesizer.ref == "lab:fuser"
    code, out, err = run_cli(["ask", "-e", "sums-best", "What is 5 plus 10?", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["answer"].endswith("Answer: 15")  # alpha is wrong on 5; gamma is right
    code, out, _ = run_cli(["ensembles", "--json"], capsys)
    assert "sums-best" in {e["name"] for e in json.loads(out)["ensembles"]}
    # The report files.
    assert (lab["out"] / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"Recommended (accuracy): {PANEL}" in (lab["out"] / "tune.md").read_text()


def test_an_interrupted_tune_resumes_and_a_second_is_free(lab, upstream, capsys):
    code, _, err = run_cli([*lab["args"], "--limit", "15", "--json"], capsys)  # stands in for a cut-off run
    assert code == 0, err
    assert len(upstream.calls("alpha")) == 15
    code, out, err = run_cli([*lab["args"], "--json"], capsys)
    assert code == 0, err
    # The 15 items already drafted came from the cache: every item is drafted once in all.
    questions = [c.user_text() for c in upstream.calls("gamma")]
    assert len(questions) == N == len(set(questions))
    made = len(upstream.calls())
    code, out2, err = run_cli([*lab["args"], "--json"], capsys)
    assert code == 0, err
    assert len(upstream.calls()) == made  # nothing new: drafts, reviews and syntheses all cached
    first, second = json.loads(out), json.loads(out2)
    assert second["run"]["spent_usd"] == 0 and second["run"]["cached_calls"] == second["run"]["calls"] > 0
    assert "0 of 120 draft calls to make" in err
    assert second["recommended"]["label"] == first["recommended"]["label"] == PANEL
    assert second["recommended"]["tune"] == first["recommended"]["tune"]  # same costs and latencies as first charged


def test_cost_cap_stops_before_any_call(lab, upstream, capsys, monkeypatch, tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text("".join(f'["lab:{m}"]\ninput = 2.0\noutput = 8.0\n' for m in PRICE))
    monkeypatch.setenv("FUSION_MCP_PRICES", str(prices))
    code, _, err = run_cli([*lab["args"], "--max-cost-usd", "0.01"], capsys)
    assert code == 2
    assert "passes --max-cost-usd $0.01" in err and "nothing was called" in err
    assert upstream.calls() == []
    code, _, err = run_cli([*lab["args"], "--max-cost-usd", "100", "--json"], capsys)
    assert code == 0, err
    assert "estimated cost: $" in err


def test_cap_needs_prices_and_bad_input_is_one_clear_line(lab, upstream, capsys):
    code, _, err = run_cli([*lab["args"], "--max-cost-usd", "1"], capsys)
    assert code == 2 and "no price for lab:alpha" in err
    args = [a if a != "lab:alpha,lab:beta,lab:gamma" else "lab:alpha,nope:x" for a in lab["args"]]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "--candidates: unknown provider 'nope'" in err
    args = [a if a != "lab:alpha,lab:beta,lab:gamma" else "lab:alpha" for a in lab["args"]]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "at least two models" in err
    assert upstream.calls() == []


def test_candidates_file_with_options_and_names(lab, upstream, capsys, tmp_path):
    cands = tmp_path / "cands.toml"
    cands.write_text('[[candidates]]\nmodel = "lab:alpha"\nname = "cold"\ntemperature = 0.1\n\n'
                     '[[candidates]]\nmodel = "lab:alpha"\ntemperature = 0.9\nseed = 3\n\n'
                     '[[candidates]]\nmodel = "lab:gamma"\n\n[[reviewers]]\nmodel = "lab:judge"\n')
    args = [a if a != "lab:alpha,lab:beta,lab:gamma" else f"@{cands}" for a in lab["args"]]
    args = [a for a in args if a not in ("--reviewers", "lab:judge")]
    code, out, err = run_cli([*args, "--json"], capsys)
    assert code == 0, err
    labels = {o["label"] for o in json.loads(out)["options"] if len(o["members"]) == 1}
    assert labels == {"cold", "lab:alpha (temperature=0.9, seed=3)", "lab:gamma"}
    temperatures = sorted(c.body.get("temperature") or 0 for c in upstream.calls("alpha"))
    assert temperatures == [0.1] * N + [0.9] * N
    bad = tmp_path / "bad.toml"
    bad.write_text('[[candidates]]\nmodel = "lab:alpha"\ntemprature = 0.1\n')
    code, _, err = run_cli([*[a if a != f"@{cands}" else f"@{bad}" for a in args]], capsys)
    assert code == 2 and f"{bad} [candidates[0].temprature]: unknown key (did you mean 'temperature'?)" in err


@pytest.mark.parametrize(("a_only", "b_only", "p"), [
    (0, 0, 1.0), (5, 5, 1.0), (0, 5, 0.0625), (1, 9, 0.021484375), (2, 8, 0.109375), (3, 12, 0.03515625),
    (10, 0, 0.001953125),
])
def test_exact_mcnemar_matches_the_binomial_test(a_only, b_only, p):
    # Values of R's binom.test(min, a_only + b_only)$p.value, the exact McNemar test.
    assert mcnemar_exact(a_only, b_only) == pytest.approx(p, rel=1e-12)
    assert mcnemar_exact(b_only, a_only) == pytest.approx(p, rel=1e-12)


def test_paired_counts_only_the_discordant_items():
    result = paired([True, True, False, False, True], [True, False, True, False, False])
    assert (result.n, result.a_only, result.b_only) == (5, 2, 1)
    assert result.p_value == 1.0 and not result.separated
    with pytest.raises(ValueError):
        paired([True], [True, False])


@pytest.mark.parametrize(("objective", "expected"), [
    ("accuracy", PANEL),
    ("cost", "lab:alpha"),  # the cheapest within 25 points of the best (80% vs 100%, half the cost)
    ("pareto", "lab:alpha"),  # the front: gamma 60% $0.001, alpha 80% $0.002, the panel 100% $0.004
])
def test_objectives_choose_from_the_same_measurements(lab, upstream, capsys, objective, expected):
    code, out, err = run_cli([*lab["args"], "--holdout", "0", "--objective", objective, "--tolerance", "25",
                              "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["split"]["held_out"] == [] and len(result["split"]["tune"]) == N
    assert result["recommended"]["label"] == expected
    front = {o["label"] for o in result["options"] if o["cost_front"]}
    assert front == {"lab:gamma", "lab:alpha", PANEL}
    says = " ".join(result["reasons"])
    assert "no held-out items" in says
    if objective == "cost":
        # the panel's cost depends on how often its drafts agree (a unanimous panel skips its review)
        assert re.search(re.escape(f"within 25 points of the most accurate ({PANEL}, 100.0%): 80.0% on the 40 tune "
                                   "items, at ") + r"\d+% of its cost", says)


def test_write_goes_to_the_first_ensembles_folder_and_never_overwrites_silently(lab, upstream, capsys, monkeypatch,
                                                                                tmp_path):
    mine, other = tmp_path / "mine", tmp_path / "other"
    mine.mkdir()
    other.mkdir()
    monkeypatch.setenv("FUSION_MCP_ENSEMBLES", f"{mine}:{other}")
    args = [*lab["args"], "--holdout", "0", "--json"]
    code, out, err = run_cli([*args, "--write", "pick"], capsys)
    assert code == 0, err
    assert json.loads(out)["written"] == str(mine / "pick.toml")
    assert EnsembleRegistry.load().get("pick").drafters[1].ref == "lab:gamma"
    before = (mine / "pick.toml").read_text()
    made = len(upstream.calls())
    code, _, err = run_cli([*args, "--write", "pick", "--no-cache"], capsys)
    assert code == 2 and f"{mine / 'pick.toml'} exists; pass --force" in err
    assert (mine / "pick.toml").read_text() == before
    assert len(upstream.calls()) == made  # refused before the tune, not after it
    code, _, err = run_cli([*args, "--write", "pick", "--force"], capsys)
    assert code == 0, err
    code, _, err = run_cli([*args, "--write", "../escape", "--no-cache"], capsys)
    assert code == 2 and "an ensemble name is letters, digits" in err
    assert len(upstream.calls()) == made
    assert not (tmp_path / "escape.toml").exists()


def test_a_failing_candidate_is_asked_once_per_item_and_scored_wrong(lab, upstream, capsys):
    upstream.script("broken", status=500)  # every call fails; the lab provider does not retry
    args = [a if a != "lab:alpha,lab:beta,lab:gamma" else "lab:alpha,lab:gamma,lab:broken" for a in lab["args"]]
    code, out, err = run_cli([*args, "--confirm", "3", "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert ["lab:alpha", "lab:broken"] in result["confirmed_panels"]
    # Confirmations replay its failed drafts: no new call to it, and every one counts as wrong.
    assert len(upstream.calls("broken")) == N
    broken = next(o for o in result["options"] if o["label"] == "lab:broken")
    assert broken["tune"]["accuracy"] == 0 and broken["tune"]["failed"] == broken["tune"]["n"]
    assert result["recommended"]["label"] == PANEL


def test_candidates_can_come_from_the_providers_listing(lab, upstream, capsys):
    # list_models' source: the provider's own GET /models (ids in the listing's order)
    upstream.models = [{"id": m} for m in ("alpha", "beta", "gamma", "judge", "fuser")]
    args = [a for a in lab["args"] if a != "lab:alpha,lab:beta,lab:gamma"]
    args.remove("--candidates")
    code, out, err = run_cli([*args, "--candidates-from", "lab", "--max-listed", "3", "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    singles = sorted(o["label"] for o in result["options"] if len(o["members"]) == 1)
    assert singles == ["lab:alpha", "lab:beta", "lab:gamma"]
    assert result["recommended"]["label"] == PANEL
    assert len(upstream.listing_requests) == 1
    calls = len(upstream.calls())
    code, _, err = run_cli([*args, "--candidates-from", "lab:nothing-like-this"], capsys)
    assert code == 2 and "no candidates" in err
    assert len(upstream.calls()) == calls  # refused before any model call


def test_the_report_reads_at_80_columns_with_every_option_whole(lab, upstream, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run_cli(lab["args"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    result = json.loads((lab["out"] / "tune.json").read_text())
    labels = [o["label"] for o in result["options"]]
    assert PANEL in labels and len(PANEL) > 40
    for label in labels:  # each option's name on a line of its own, whole, and its figures under it
        at = next(i for i, line in enumerate(lines) if line.startswith(label) and "tune " not in line)
        assert lines[at + 1].startswith("    tune ") and "cost/item $" in lines[at + 1] + lines[at + 2]
    assert any(line.startswith(f"{PANEL}  (recommended)") for line in lines)
    reasons = [i for i, line in enumerate(lines) if line.startswith("  - ")]
    assert reasons and all(lines[i + 1].startswith(("    ", "  - ", "Run: ")) for i in reasons)
