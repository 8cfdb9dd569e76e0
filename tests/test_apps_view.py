"""The MCP Apps view of a run: advertised on the tools that show a run, served as a `ui://` resource,
and rendered by headless Chromium from real runs' tool results, through a host that reads no
resources: a finished run, a comparison with the reviewer's analysis, a run that is still going (the
view follows it with get_run), a failed call and a partial run. Checked from the DOM it shows; no
literal "null" anywhere. Hosts without Apps keep the text result.

FUSION_MCP_SCREENSHOTS=docs/img saves the screenshots there (docs/server.md shows them)."""

import json
import math
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult

from fusion_mcp.server.app import create_server
from fusion_mcp.server.apps_view import VIEW_URI
from fusion_mcp.server.tools import RUN_META
from tests.apps_host import host_page, render
from tests.conftest import analysis_review, drafts_in_prompt, lab_toml, write_registry
from tests.upstream import Behaviour, Upstream

pytestmark = pytest.mark.anyio
PARIS, LYON = "Paris is the capital of France.", "It is <b>Lyon</b>."  # markup must show as text


class Texts(HTMLParser):
    """Text under every element with an id or a class (its first class), in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.found: dict[str, list[str]] = {}
        self.state = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id") == "dump":
            self.state = a.get("data-state") or ""
        key = a.get("id") or (a.get("class") or "").split(" ")[0]
        self.stack.append(key)
        if tag == "section" and a.get("data-label"):
            self.found.setdefault("draft-labels", []).append(a["data-label"] or "")

    def handle_endtag(self, tag: str) -> None:
        if self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        for key in dict.fromkeys(k for k in self.stack if k):
            self.found.setdefault(key, []).append(data)


def _money(value: float | None) -> str:
    """How the view writes a cost (two significant digits; unknown stays unknown)."""
    if value is None:
        return "cost unknown"
    return "$0" if value == 0 else "$" + f"{value:.2g}" if value >= 1 else "$" + f"{value:.{1 - math.floor(math.log10(value))}f}"


def judging(body: dict[str, Any]) -> str:
    """A reviewer that scores Paris over Lyon and compares them, whatever labels they got."""
    user = "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")
    label = {text: lab for lab, text in drafts_in_prompt(user).items()}
    p, ly = label.get(PARIS, "A"), label.get(LYON, "B")
    return analysis_review(
        {p: 9, ly: 2}, consensus=["France has a single capital."],
        contradictions=[{"topic": "which city is the capital",
                         "stances": [{"label": p, "stance": "Paris"}, {"label": ly, "stance": "Lyon"}]}],
        partial_coverage=[{"point": "Paris is the capital", "labels": [p]}],
        unique_insights=[{"label": ly, "insight": "Lyon is a large city."}],
        blind_spots=["since when Paris has been the capital"])


def _server(upstream: Upstream, folder: Path, *, pace: float = 0.0, **kw: Any) -> Any:
    slow: dict[str, Any] = dict(ttft=pace * 0.5, tokens_per_s=40 / pace, output_tokens=20) if pace else {}
    upstream.script("alpha", text=PARIS, cost=0.0012, **slow)
    upstream.script("beta", text=LYON, cost=0.0005, **slow)
    upstream.script("judge", Behaviour(text=judging, cost=0.002, **slow))
    upstream.script("fuser", text="Paris.", cost=0.003, **slow)
    return create_server(write_registry(folder, lab=lab_toml(upstream.url, ["alpha", "beta"], deadline_s=30)), **kw)


def wire(result: CallToolResult) -> dict[str, Any]:
    """A tool result as the host hands it to the view."""
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


def show(tmp_path: Path, name: str, view: str, result: dict[str, Any],
         tool_calls: list[dict[str, Any]] | None = None) -> tuple[Texts, str]:
    """Render the view in Chromium through a host that reads no resources; the DOM's texts, its protocol."""
    page = tmp_path / f"{name}.html"
    page.write_text(host_page(view, result, None, tool_calls), encoding="utf-8")
    shot = tmp_path / f"run-view-{name}.png"
    dom = render(page, screenshot=shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    if os.environ.get("FUSION_MCP_SCREENSHOTS"):
        shutil.copy(shot, Path(os.environ["FUSION_MCP_SCREENSHOTS"]) / shot.name)
    start = dom.rindex("<", 0, dom.index('id="dump"'))
    shown = dom[start:dom.index('id="protocol"')]
    assert "null" not in shown.lower() and "undefined" not in shown and "NaN" not in shown
    parsed = Texts()
    parsed.feed(shown)
    protocol = dom[dom.index('id="protocol"'):]
    return parsed, protocol[protocol.index(">") + 1:protocol.index("<")]


async def test_the_view_is_advertised_and_served_and_the_text_result_stays(upstream: Upstream, ensemble_dir: Path) -> None:
    async with Client(_server(upstream, ensemble_dir)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        view = await client.read_resource(VIEW_URI)
        result = await client.call_tool("fused_answer", {"question": "Capital of France?", "ensemble": "lab"})
    for name in ("fused_answer", "compare_drafts", "get_run"):
        assert tools[name].meta == {"ui": {"resourceUri": VIEW_URI}}
    assert not (tools["list_ensembles"].meta or {}).get("ui")
    content = view.contents[0]
    assert content.mime_type == "text/html;profile=mcp-app" and "ui/notifications/tool-result" in content.text
    # A host without Apps reads the text block, as before; the whole run rides in _meta for the view.
    assert json.loads(result.content[0].text)["answer"] == "Paris."
    assert result.meta[RUN_META]["answer"] == "Paris." and "context" not in result.meta[RUN_META]


@pytest.mark.parametrize("tool", ["fused_answer", "compare_drafts"])
async def test_chromium_shows_a_finished_run_from_the_tool_result_alone(tool: str, upstream: Upstream,
                                                                       ensemble_dir: Path, tmp_path: Path) -> None:
    async with Client(_server(upstream, ensemble_dir)) as client:
        view = (await client.read_resource(VIEW_URI)).contents[0].text
        result = await client.call_tool(tool, {"question": "Capital of France?", "ensemble": "lab"})
    run = result.meta[RUN_META]
    parsed, protocol = show(tmp_path, "fused" if tool == "fused_answer" else "compare", view, wire(result))
    seen = parsed.found
    assert parsed.state == "full" and "resources/read" not in protocol and "tools/call" not in protocol
    # Drafts side by side, each with its model, text (markup shown as text), weight, scores and reason.
    assert seen["draft-labels"] == ["A", "B"]  # in label order, whichever finished first
    drafts = {d["label"]: d for d in run["drafts"]}
    assert seen["text"] == [drafts["A"]["text"], drafts["B"]["text"]] and {PARIS, LYON} == set(seen["text"])
    assert seen["model"][:2] == [drafts["A"]["model"], drafts["B"]["model"]]
    weights = [f"weight {round(drafts[label]['weight'] * 100)}%" for label in "AB"]
    assert seen["weight-value"] == weights and weights[0] != weights[1]
    a = drafts["A"]["scores"]
    assert seen["score-values"][0] == f"consistency {a['consistency']:g} · accuracy {a['accuracy']:g} · completeness {a['completeness']:g}"
    assert [r.startswith("Reviewer: ") and len(r) > 10 for r in seen["reason"]] == [True, True]
    # Cost and time per model: drafts, review, and (for fused_answer) synthesis.
    cells = seen["per-model"]
    rows = [cells[i:i + 6] for i in range(6, len(cells), 6)]  # step, model, status, time, tokens, cost
    expected = [[f"draft {label}", drafts[label]["model"], _money(drafts[label]["cost_usd"])] for label in "AB"]
    assert {row[2] for row in expected} == {"$0.0012", "$0.00050"}
    expected.append(["review", "lab:judge", _money(run["review"]["cost_usd"])])
    if tool == "fused_answer":
        expected.append(["synthesis", "lab:fuser", "$0.0030"])
    assert [[r[0], r[1], r[5]] for r in rows] == expected
    assert all(r[3].endswith(" s") and int(r[4]) > 0 for r in rows)
    model = {d["label"]: d["model"] for d in run["drafts"]}
    paris = next(label for label, d in drafts.items() if d["text"] == PARIS)
    lyon = "B" if paris == "A" else "A"
    # The reviewer's analysis, with each model's stance.
    assert seen["consensus"] == ["France has a single capital."]
    assert seen["topic"] == ["which city is the capital"]
    assert seen["stance"] == sorted([f"{model[paris]} ({paris}): Paris", f"{model[lyon]} ({lyon}): Lyon"],
                                    key=lambda s: 0 if s.endswith("Paris") else 1)
    assert seen["partial"] == [f"Paris is the capital (covered by {model[paris]})"]
    assert seen["insights"] == [f"{model[lyon]} ({lyon}): Lyon is a large city."]
    assert seen["blind-spots"] == ["since when Paris has been the capital"]
    if tool == "fused_answer":
        assert seen["answer"] == ["Paris."]
    else:
        assert "answer" not in seen and "drafts compared" in seen["meta"][0]


async def test_a_running_run_updates_itself_through_get_run_until_done(upstream: Upstream, ensemble_dir: Path,
                                                                       tmp_path: Path) -> None:
    async with Client(_server(upstream, ensemble_dir, pace=1.0, tool_timeout_s=1.0)) as client:
        view = (await client.read_resource(VIEW_URI)).contents[0].text
        first = await client.call_tool("fused_answer", {"question": "Capital of France?", "ensemble": "lab"})
        assert first.structured_content["status"] == "running"
        run_id = first.structured_content["run_id"]
        polls: list[CallToolResult] = []
        while not polls or polls[-1].structured_content["status"] == "running":
            polls.append(await client.call_tool("get_run", {"run_id": run_id, "wait_s": 1}))
            assert len(polls) < 30
    # A host whose get_run call is still going: the view shows the progress it has.
    waiting, protocol = show(tmp_path, "running", view, wire(first))
    assert waiting.state == "running" and protocol.count("tools/call:get_run") == 1
    assert "Fusion run in progress" in waiting.found["app"][0] and "s elapsed" in waiting.found["progress"][0]
    assert run_id in waiting.found["meta"][0]
    # A host that answers: the view follows the run through get_run, then shows all of it.
    done, protocol = show(tmp_path, "followed", view, wire(first), [wire(p) for p in polls])
    assert protocol.count("tools/call:get_run") == len(polls) and "resources/read" not in protocol
    assert done.state == "full" and done.found["answer"] == ["Paris."] and done.found["draft-labels"] == ["A", "B"]


async def test_a_failed_call_and_a_partial_run_say_what_happened(upstream: Upstream, ensemble_dir: Path,
                                                                tmp_path: Path) -> None:
    server = _server(upstream, ensemble_dir)
    async with Client(server) as client:
        view = (await client.read_resource(VIEW_URI)).contents[0].text
        upstream.script("alpha", status=500, error_message="upstream is down")
        partial = await client.call_tool("fused_answer", {"question": "Capital of France?", "ensemble": "lab"})
        upstream.script("beta", status=503, error_message="overloaded")
        failed = await client.call_tool("fused_answer", {"question": "Capital of France?", "ensemble": "lab"})
    assert not partial.is_error and failed.is_error
    seen, _ = show(tmp_path, "partial", view, wire(partial))
    assert seen.state == "full" and seen.found["answer"] == [LYON]  # from the draft left, as text
    assert any("lab:alpha" in r for r in seen.found["degraded"])
    assert len(seen.found["draft-error"]) == 1 and "500" in seen.found["draft-error"][0]
    gone, _ = show(tmp_path, "failed", view, wire(failed))
    assert gone.state == "failed" and gone.found["app"][0] == "The run failed"
    assert "every draft" in gone.found["error"][0] and "lab:alpha" in gone.found["error"][0]
