"""Agent frameworks driving the real server over stdio, as docs/agents.md shows them: openai-agents
(MCPServerStdio, with a client timeout above the tool-time limit) and pydantic-ai (MCPToolset), each
with a scripted model that calls fused_answer, follows `running` with get_run, and answers."""

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LAB_KEY, lab_toml, review_json
from tests.upstream import Upstream

pytestmark = pytest.mark.anyio
ANSWER = "Paris is the capital."


@pytest.fixture
def server_env(upstream: Upstream, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Models paced so a run takes ~3 s, and a 1 s tool-time limit: the first call answers `running`."""
    pace: dict[str, Any] = dict(ttft=0.5, tokens_per_s=40, output_tokens=20)
    upstream.script("alpha", text="Answer: Paris.", **pace)
    upstream.script("beta", text="Answer: Lyon.", **pace)
    upstream.script("judge", text=review_json({"A": (9, 9, 9), "B": (3, 3, 3)}), **pace)
    upstream.script("fuser", text=ANSWER, **pace)
    folder = tmp_path / "ensembles"
    folder.mkdir()
    (folder / "lab.toml").write_text(lab_toml(upstream.url, ["alpha", "beta"], deadline_s=60))
    yield {"PATH": os.environ.get("PATH", ""), "LAB_KEY": LAB_KEY, "FUSION_MCP_ENSEMBLES": str(folder),
           "FUSION_MCP_DEFAULT_ENSEMBLE": "lab", "FUSION_MCP_TOOL_TIMEOUT": "1",
           "FUSION_MCP_CACHE": str(tmp_path / "cache.sqlite3")}


def next_step(result: dict[str, Any]) -> tuple[str, dict[str, Any]] | str:
    """What the scripted model does with a tool result: poll a running run, or answer."""
    if result.get("status") == "running":
        return "get_run", {"run_id": result["run_id"]}
    return "final: " + result.get("answer", "")


async def test_openai_agents_follows_a_run_with_get_run(server_env: dict[str, str]) -> None:
    from agents import Agent, Runner, Usage, set_tracing_disabled
    from agents.items import ModelResponse
    from agents.mcp import MCPServerStdio
    from agents.models.interface import Model
    from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

    set_tracing_disabled(True)
    statuses: list[str] = []

    class Scripted(Model):
        async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kw: Any) -> ModelResponse:
            outputs = [i for i in input if isinstance(i, dict) and i.get("type") == "function_call_output"]
            if not outputs:
                step: Any = ("fused_answer", {"question": "Capital of France?"})
            else:
                raw = outputs[-1]["output"]
                result = json.loads(raw if isinstance(raw, str) else "".join(p.get("text", "") for p in raw))
                statuses.append(result["status"])
                step = next_step(result)
            if isinstance(step, str):
                text = ResponseOutputText(type="output_text", text=step, annotations=[])
                done = ResponseOutputMessage(id="m", role="assistant", status="completed", type="message", content=[text])
                return ModelResponse(output=[done], usage=Usage(), response_id=None)
            call = ResponseFunctionToolCall(type="function_call", call_id=f"c{len(statuses)}", id=f"f{len(statuses)}",
                                            name=step[0], arguments=json.dumps(step[1]))
            return ModelResponse(output=[call], usage=Usage(), response_id=None)

        def stream_response(self, *args: Any, **kw: Any) -> Any:
            raise NotImplementedError

    # client_session_timeout_seconds: the SDK's default (5 s) is shorter than the server's tool-time limit.
    params: Any = {"command": sys.executable, "args": ["-m", "fusion_mcp", "serve"], "env": server_env}
    async with MCPServerStdio(params=params, client_session_timeout_seconds=60, name="fusion") as server:
        names = {t.name for t in await server.list_tools()}
        out = await Runner.run(Agent(name="asker", model=Scripted(), mcp_servers=[server]), "Capital of France?")
    assert {"fused_answer", "compare_drafts", "get_run", "list_ensembles", "list_models"} == names
    assert statuses[0] == "running" and statuses[-1] == "done" and len(statuses) >= 2
    assert out.final_output == "final: " + ANSWER


async def test_pydantic_ai_follows_a_run_with_get_run(server_env: dict[str, str]) -> None:
    from fastmcp.client.transports import StdioTransport
    from pydantic_ai import Agent
    from pydantic_ai.mcp import MCPToolset
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    statuses: list[str] = []
    strict: dict[str, bool | None] = {}

    def scripted(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        strict.update({t.name: t.strict for t in info.function_tools})
        last = messages[-1].parts[-1]
        if not isinstance(last, ToolReturnPart):
            return ModelResponse(parts=[ToolCallPart("fused_answer", {"question": "Capital of France?"})])
        content: Any = last.content
        result = content if isinstance(content, dict) else json.loads(str(content))
        statuses.append(result["status"])
        step = next_step(result)
        return ModelResponse(parts=[TextPart(step) if isinstance(step, str) else ToolCallPart(*step)])

    transport = StdioTransport(command=sys.executable, args=["-m", "fusion_mcp", "serve"], env=server_env)
    agent = Agent(FunctionModel(scripted), toolsets=[MCPToolset(transport)])
    out = await agent.run("Capital of France?")
    assert statuses[0] == "running" and statuses[-1] == "done" and len(statuses) >= 2
    assert out.output == "final: " + ANSWER
    assert {"fused_answer", "compare_drafts", "get_run", "list_ensembles", "list_models"} == set(strict)
