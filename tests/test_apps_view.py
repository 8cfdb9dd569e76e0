"""The MCP Apps view of a run: advertised on the tools that show a run, served as a `ui://`
resource, and rendered by headless Chromium from a real run's data (the tool result and run://),
checked from the DOM it shows. Hosts without Apps keep the text result."""

import json
import math
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from fusion_mcp.server.app import create_server
from fusion_mcp.server.apps_view import VIEW_URI
from tests.apps_host import host_page, render
from tests.conftest import lab_toml, scoring_reviewer, write_registry
from tests.upstream import Upstream

pytestmark = pytest.mark.anyio
PARIS, LYON = "Paris is the capital of France.", "It is <b>Lyon</b>."  # markup must show as text


class Texts(HTMLParser):
    """Text under every element with an id or a class (its first class), in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.found: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
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


def _server(upstream: Upstream, folder: Path) -> Any:
    upstream.script("alpha", text=PARIS, cost=0.0012)
    upstream.script("beta", text=LYON, cost=0.0005)
    upstream.script("judge", scoring_reviewer({PARIS: 9, LYON: 2}), cost=0.002)
    upstream.script("fuser", text="Paris.", cost=0.003)
    return create_server(write_registry(folder, lab=lab_toml(upstream.url, ["alpha", "beta"])))


async def test_the_view_is_advertised_and_served_and_the_text_result_stays(upstream: Upstream, ensemble_dir: Path) -> None:
    async with Client(_server(upstream, ensemble_dir)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        view = await client.read_resource(VIEW_URI)
        result = await client.call_tool("fused_answer", {"question": "Capital of France?", "ensemble": "lab"})
    for name in ("fused_answer", "compare_drafts"):
        assert tools[name].meta == {"ui": {"resourceUri": VIEW_URI}}
    assert not (tools["list_ensembles"].meta or {}).get("ui")
    content = view.contents[0]
    assert content.mime_type == "text/html;profile=mcp-app" and "ui/notifications/tool-result" in content.text
    # A host without Apps reads the text block, as before.
    assert json.loads(result.content[0].text)["answer"] == "Paris."


@pytest.mark.parametrize("tool", ["fused_answer", "compare_drafts"])
async def test_chromium_shows_a_real_run_side_by_side(tool: str, upstream: Upstream, ensemble_dir: Path,
                                                     tmp_path: Path) -> None:
    async with Client(_server(upstream, ensemble_dir)) as client:
        view = (await client.read_resource(VIEW_URI)).contents[0].text
        result = await client.call_tool(tool, {"question": "Capital of France?", "ensemble": "lab"})
        run_id = result.structured_content["run_id"]
        run_text = (await client.read_resource(f"run://{run_id}")).contents[0].text
    run = json.loads(run_text)
    tool_result = {"content": [c.model_dump(mode="json") for c in result.content],
                   "structuredContent": result.structured_content}
    page = tmp_path / "host.html"
    page.write_text(host_page(view, tool_result, {f"run://{run_id}": run_text}), encoding="utf-8")
    shot = tmp_path / f"{tool}.png"
    dom = render(page, screenshot=shot)

    parsed = Texts()
    parsed.feed(dom[dom.index('id="dump"'):])
    seen = parsed.found
    # The view went through the protocol: initialize, the tool result, then the run read through the host.
    assert "resources/read" in "".join(seen["protocol"])
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
    if tool == "fused_answer":
        assert seen["answer"] == ["Paris."]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
