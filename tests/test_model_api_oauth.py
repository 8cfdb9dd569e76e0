"""The model API on a team endpoint (`serve --oauth-issuer`): `/v1/...` takes the same OAuth tokens as
/mcp (a test authorization server signs them), and a run asked for through it belongs to its user."""

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import anyio
import httpx2
import openai
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.authserver import AuthServer, new_key
from tests.conftest import LAB_KEY, lab_toml
from tests.services import Service, free_port
from tests.upstream import Upstream

ANSWER = "Paris is the capital of France."


class Team:
    def __init__(self, auth: AuthServer, server: Service) -> None:
        self.auth, self.server = auth, server

    def openai(self, token: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.server.url + "/v1", api_key=token, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    folder: Path = tmp_path_factory.mktemp("api-team")
    with AuthServer() as auth, Upstream() as up:
        up.script("alpha", text="Paris.")
        up.script("beta", text="It is Paris.")
        up.script("fuser", text=ANSWER)
        (folder / "probe.toml").write_text(lab_toml(up.url, ["alpha", "beta"], reviewer=None, deadline_s=30))
        port = free_port()
        env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "LAB_KEY": LAB_KEY,
               "FUSION_MCP_ENSEMBLES": str(folder), "FUSION_MCP_DEFAULT_ENSEMBLE": "probe",
               "FUSION_MCP_CACHE": str(folder / "cache.sqlite3")}
        argv = [sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http", "--port", str(port),
                "--oauth-issuer", auth.issuer, "--oauth-audience", "fusion"]
        server = Service(argv, port, "fusion-mcp serve --oauth-issuer", env)
        try:
            yield Team(auth, server)
        finally:
            server.stop()


def get_run(team: Team, token: str, run_id: str) -> tuple[bool, Any]:
    async def call() -> tuple[bool, Any]:
        async with httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=30) as http, \
                Client(streamable_http_client(team.server.url + "/mcp", http_client=http)) as client:
            result = await client.call_tool("get_run", {"run_id": run_id})
            return result.is_error, result.structured_content

    return anyio.run(call)


def test_the_model_api_takes_the_oauth_token_and_refuses_anything_else(team):
    assert team.openai(team.auth.token("alice")).models.list().data[0].id.startswith("fusion")
    for bad in ("not.a.jwt", team.auth.token("alice", key=new_key()), team.auth.token("alice", audience="other")):
        with pytest.raises(openai.AuthenticationError) as refused:
            team.openai(bad).chat.completions.create(model="fusion/probe", messages=[{"role": "user", "content": "Q?"}])
        assert "resource_metadata=" in refused.value.response.headers["www-authenticate"]


def test_a_run_asked_for_over_the_model_api_belongs_to_its_user(team):
    alice, bob = team.auth.token("alice"), team.auth.token("bob")
    done = team.openai(alice).chat.completions.create(
        model="fusion/probe", messages=[{"role": "user", "content": "Capital of France?"}])
    assert done.choices[0].message.content == ANSWER
    run_id = (done.model_extra or {})["fusion"]["run_id"]
    failed, run = get_run(team, alice, run_id)
    assert not failed and run["answer"] == ANSWER
    assert get_run(team, bob, run_id)[0]  # a stranger's run id gets the unknown-run error
    # Anthropic's clients send the OAuth token as a bearer token with auth_token=
    message = anthropic.Anthropic(base_url=team.server.url, auth_token=bob, max_retries=0).messages.create(
        model="fusion", max_tokens=300, messages=[{"role": "user", "content": "Capital of France?"}])
    assert message.content[0].type == "text" and message.content[0].text == ANSWER
