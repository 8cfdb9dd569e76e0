"""Two `serve --oauth-issuer ... --store redis://` replicas on one real redis-server: a run belongs to the
user who started it on every replica, per-user budgets hold across replicas, and the usage ledger
(`usage://me`, `fusion-mcp usage`) counts runs made on either.

Prices make the estimate exact: output at $1,000 per million tokens, input free, and every call capped
at 100 output tokens, so each call may cost $0.10 and a fused run (2 drafts, review, synthesis) $0.40;
each call reports 7 output tokens, so a run costs $0.028.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from mcp import Client

from tests.authserver import AuthServer
from tests.conftest import LAB_KEY, lab_toml
from tests.services import Service, fast_models, settle, start_redis, start_replica
from tests.upstream import Upstream

pytestmark = pytest.mark.anyio
ADMIN_SCOPE = "fusion:admin"
PRICES = """\
["lab:alpha"]
input = 0
output = 1000
["lab:beta"]
input = 0
output = 1000
["lab:judge"]
input = 0
output = 1000
["lab:fuser"]
input = 0
output = 1000
"""


class Team:
    def __init__(self, auth: AuthServer, upstream: Upstream, store: str, replicas: list[Service],
                 env: dict[str, str]) -> None:
        self.auth, self.upstream, self.store, self.env = auth, upstream, store, env
        self.a, self.b = replicas


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    folder = tmp_path_factory.mktemp("team-replicas")
    ensembles = folder / "ensembles"
    ensembles.mkdir()
    (folder / "prices.toml").write_text(PRICES)
    (folder / "budgets.toml").write_text('[users]\n"bob" = 0.1\n')
    services: list[Service] = []
    with AuthServer() as auth, Upstream() as up:
        (ensembles / "lab.toml").write_text(lab_toml(up.url, ["alpha", "beta"], deadline_s=60,
                                                     provider_extra="max_retries = 0\ndefault_max_tokens = 100"))
        env = {"LAB_KEY": LAB_KEY, "FUSION_MCP_ENSEMBLES": str(ensembles), "FUSION_MCP_DEFAULT_ENSEMBLE": "lab",
               "FUSION_MCP_CACHE": str(folder / "cache.sqlite3"), "FUSION_MCP_PRICES": str(folder / "prices.toml")}
        try:
            redis = start_redis(folder)
            services.append(redis)
            store = f"redis://127.0.0.1:{redis.port}/0"
            flags = ["--tool-timeout", "2", "--oauth-issuer", auth.issuer, "--oauth-audience", "fusion",
                     "--oauth-admin-scope", ADMIN_SCOPE, "--user-budget-usd", "0.6",
                     "--user-budgets", str(folder / "budgets.toml")]
            replicas = [start_replica(env, store, *flags) for _ in range(2)]
            services += replicas
            yield Team(auth, up, store, replicas, env)
        finally:
            for service in reversed(services):
                service.stop()


class signed_in:
    """An MCP client on `replica` whose every request carries `token`."""

    def __init__(self, replica: Service, token: str) -> None:
        self.url, self.token = replica.url + "/mcp", token

    async def __aenter__(self) -> Client:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        self.http = httpx2.AsyncClient(headers={"authorization": f"Bearer {self.token}"}, timeout=60)
        self.client = Client(streamable_http_client(self.url, http_client=self.http))
        return await self.client.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.__aexit__(*exc)
        await self.http.aclose()




def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    return result.content[0].text


async def test_a_run_answers_only_to_its_user_on_every_replica(team):
    fast_models(team.upstream)
    auth = team.auth
    async with signed_in(team.a, auth.token("alice")) as alice_on_a:
        run_id = (await settle(alice_on_a, await alice_on_a.call_tool(
            "compare_drafts", {"question": "Owned question?"})))["run_id"]
    async with signed_in(team.b, auth.token("bob")) as bob_on_b:
        stranger = error_text(await bob_on_b.call_tool("get_run", {"run_id": run_id}))
        unknown = error_text(await bob_on_b.call_tool("get_run", {"run_id": "0123456789ab"}))
        assert stranger == unknown.replace("0123456789ab", run_id)
        reuse = error_text(await bob_on_b.call_tool("fused_answer", {"from_run": run_id}))
        assert reuse == error_text(await bob_on_b.call_tool("fused_answer", {"from_run": "0123456789ab"})).replace(
            "0123456789ab", run_id)
        with pytest.raises(Exception, match="unknown run id"):
            await bob_on_b.read_resource(f"run://{run_id}")
    async with signed_in(team.b, auth.token("alice")) as alice_on_b:
        mine = await alice_on_b.call_tool("get_run", {"run_id": run_id})
        assert not mine.is_error and len(mine.structured_content["drafts"]) == 2
        fused = await settle(alice_on_b, await alice_on_b.call_tool("fused_answer", {"from_run": run_id}))
        assert fused["answer"] == "Paris is the capital."
    async with signed_in(team.b, auth.token("root", scope=f"openid {ADMIN_SCOPE}")) as admin_on_b:
        assert not (await admin_on_b.call_tool("get_run", {"run_id": run_id})).is_error
        full = json.loads((await admin_on_b.read_resource(f"run://{run_id}")).contents[0].text)
        assert full["question"] == "Owned question?"


async def test_budgets_hold_across_replicas(team):
    up = team.upstream
    fast_models(up)
    before = len(up.calls())
    async with signed_in(team.a, team.auth.token("bob")) as bob:
        refused = error_text(await bob.call_tool("fused_answer", {"question": "Over bob's budget?"}))
    assert "could cost up to $0.4000, more than the $0.1000 left of your daily budget of $0.1000" in refused
    assert len(up.calls()) == before  # refused before any call
    # alice (the default $0.60) starts a slow run on A: its $0.40 is held, so B refuses a second one.
    fast_models(up, ttft=1.0, tokens_per_s=20.0)
    async with signed_in(team.a, team.auth.token("alice")) as on_a, signed_in(team.b, team.auth.token("alice")) as on_b:
        first = await on_a.call_tool("fused_answer", {"question": "Slow and held?"})
        assert first.structured_content["status"] == "running"
        held = error_text(await on_b.call_tool("fused_answer", {"question": "A second at once?"}))
        assert "more than the" in held and "$0.4000 held by runs in flight" in held
        await settle(on_a, first)
        fast_models(up)
        second = await settle(on_b, await on_b.call_tool("fused_answer", {"question": "After it ended?"}))
        assert second["answer"] == "Paris is the capital."


async def test_usage_counts_runs_made_on_either_replica(team):
    fast_models(team.upstream)
    token = team.auth.token("erin")
    for replica in (team.a, team.b):
        async with signed_in(replica, token) as client:
            await settle(client, await client.call_tool("fused_answer", {"question": f"Usage on {replica.port}?"}))
    async with signed_in(team.a, token) as client:
        mine = json.loads((await client.read_resource("usage://me")).contents[0].text)
    assert mine["user"] == "erin" and mine["total"]["runs"] == 2 and mine["total"]["calls"] == 8
    assert mine["total"]["cost_usd"] == pytest.approx(0.056)
    assert mine["budget"]["daily_limit_usd"] == 0.6 and mine["budget"]["spent_today_usd"] == pytest.approx(0.056)
    env = {**os.environ, **team.env}
    argv = [sys.executable, "-m", "fusion_mcp", "usage", "--store", team.store, "--user", "erin", "--json"]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["total"]["runs"] == 2 and report["rows"][0]["ensemble"] == "lab"
