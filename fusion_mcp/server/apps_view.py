"""The MCP Apps view of a run: a `ui://` HTML page that hosts with MCP Apps support (Claude Desktop,
VS Code) render next to a fused_answer, compare_drafts or get_run result, showing the drafts side by
side with their scores, weights and the reviewer's reasons, the reviewer's analysis, and cost and
time per model; a run still going, followed until done; a failed call's error.

It is additive: hosts without Apps keep the text result. The page (run_view.html) gets the tool
result from the host; a finished run travels whole in the result's `_meta` (tools.RUN_META), so it
needs no resources/read; a `running` result is followed with get_run through the host's tools/call.
"""

from __future__ import annotations

import importlib.resources
from typing import Any

from mcp.server.apps import Apps

VIEW_URI = "ui://fusion-mcp/run.html"
VIEW_TOOLS = frozenset({"fused_answer", "compare_drafts", "get_run"})


def view_html() -> str:
    return importlib.resources.files("fusion_mcp.server").joinpath("run_view.html").read_text(encoding="utf-8")


def apps_extension() -> Apps:
    """The Apps extension with the view registered (pass to `MCPServer(extensions=[...])`)."""
    apps = Apps()
    apps.add_html_resource(VIEW_URI, view_html(), name="run view", title="Fusion run",
                           description="Drafts side by side with scores, weights, review reasons, cost and time.")
    return apps


def tool_meta(tool_name: str) -> dict[str, Any] | None:
    """`_meta` for a tool: the view's URI on the tools that show a run, nothing on the others."""
    return {"ui": {"resourceUri": VIEW_URI}} if tool_name in VIEW_TOOLS else None
