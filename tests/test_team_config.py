"""The team endpoint's configuration: `serve`'s OAuth flags and their errors, issuer discovery over
real HTTP, the budgets file, and the usage ledger and budgets in SQLite and in a real redis-server."""

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from fusion_mcp.errors import ConfigError
from fusion_mcp.team.budgets import BudgetLimits, UserBudgetError, UserBudgets
from fusion_mcp.team.oauth import discover, discovery_urls
from fusion_mcp.team.telemetry import RunTally
from fusion_mcp.team.usage import RedisUsage, SQLiteUsage, today
from tests.authserver import AuthServer
from tests.services import free_port, start_redis

TOKEN = "k9Jq2vXw7LpR4sTz8yBn"


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http",
                           "--port", str(free_port()), *args], env=full, capture_output=True, text=True, timeout=60)


def test_a_static_token_and_oauth_together_are_refused():
    done = serve("--oauth-issuer", "http://127.0.0.1:1", "--oauth-audience", "fusion",
                 env={"FUSION_MCP_AUTH_TOKEN": TOKEN})
    assert done.returncode == 2
    assert "choose one" in done.stderr and "Traceback" not in done.stderr


def test_half_an_oauth_configuration_is_refused():
    done = serve("--oauth-issuer", "http://127.0.0.1:1")
    assert done.returncode == 2 and "--oauth-audience" in done.stderr


def test_an_issuer_that_does_not_answer_stops_serve_with_the_places_tried():
    port = free_port()
    done = serve("--oauth-issuer", f"http://127.0.0.1:{port}", "--oauth-audience", "fusion")
    assert done.returncode == 2
    assert f"cannot read the metadata of OAuth issuer http://127.0.0.1:{port}" in done.stderr
    assert "/.well-known/openid-configuration" in done.stderr and "Traceback" not in done.stderr


def test_a_public_bind_with_oauth_needs_the_public_url():
    done = serve("--host", "0.0.0.0", "--oauth-issuer", "http://127.0.0.1:1", "--oauth-audience", "fusion")
    assert done.returncode == 2 and "--oauth-resource" in done.stderr


def test_discovery_falls_back_to_openid_connect_and_checks_the_issuer():
    with AuthServer(openid_only=True) as auth:
        meta = anyio.run(discover, auth.issuer)
        assert meta["jwks_uri"] == f"{auth.issuer}/jwks"
        with pytest.raises(ConfigError, match="names issuer"):
            anyio.run(discover, auth.issuer + "/")  # another issuer string: its metadata is not for it


def test_discovery_tries_the_places_the_mcp_spec_names():
    assert discovery_urls("https://kc.example.com/realms/team") == [
        "https://kc.example.com/.well-known/oauth-authorization-server/realms/team",
        "https://kc.example.com/.well-known/openid-configuration/realms/team",
        "https://kc.example.com/realms/team/.well-known/openid-configuration",
    ]
    assert discovery_urls("https://tenant.auth0.com/") == [
        "https://tenant.auth0.com/.well-known/oauth-authorization-server",
        "https://tenant.auth0.com/.well-known/openid-configuration",
    ]


def test_the_budgets_file_gives_per_user_amounts_and_names_a_bad_key(tmp_path: Path):
    good = tmp_path / "budgets.toml"
    good.write_text('default_usd = 2\n[users]\n"alice" = 20\n"intern" = 0.5\n')
    limits = BudgetLimits.load(5.0, str(good))
    assert (limits.limit("alice"), limits.limit("intern"), limits.limit("bob")) == (20.0, 0.5, 2.0)
    bad = tmp_path / "bad.toml"
    bad.write_text('[users]\n"bob" = "lots"\n')
    with pytest.raises(ConfigError, match=r"bad.toml: users.bob must be a number of US dollars"):
        BudgetLimits.load(None, str(bad))


def tally(run_id: str, user: str, cost: float, ensemble: str = "lab") -> RunTally:
    return RunTally(run_id, "fused_answer", ensemble, user, outcome="ok", calls=4, input_tokens=100,
                    output_tokens=50, cost_usd=cost)


async def admit_and_spend(budgets: UserBudgets, ledger) -> None:
    await budgets.admit("alice", "r1", 0.6, ttl_s=60)
    with pytest.raises(UserBudgetError) as refused:
        await budgets.admit("alice", "r2", 0.6, ttl_s=60)  # 0.6 held of 1.00: 0.40 left
    text = str(refused.value)
    assert "up to $0.6000" in text and "$0.4000 left" in text and "$1.00" in text and "Nothing was sent" in text
    await budgets.admit("bob", "r3", 0.9, ttl_s=60)  # bob's day is his own
    await ledger.run_ended(tally("r1", "alice", 0.25))  # r1 ends having cost 0.25 of its 0.6
    await budgets.release("r1")
    await budgets.admit("alice", "r2", 0.7, ttl_s=60)  # 0.25 spent + 0.7 fits 1.00
    with pytest.raises(UserBudgetError, match=r"\$0.2500 spent today and \$0.7000 held"):
        await budgets.admit("alice", "r4", 0.1, ttl_s=60)


@pytest.mark.anyio
async def test_budgets_reserve_then_settle_in_the_embedded_ledger(tmp_path: Path):
    ledger = SQLiteUsage(tmp_path / "usage.sqlite3")
    await admit_and_spend(UserBudgets(BudgetLimits(default_usd=1.0), ledger), ledger)
    rows = await ledger.rows("alice", today())
    assert [(r.runs, r.calls, r.cost_usd) for r in rows] == [(1, 4, 0.25)]


@pytest.fixture
def redis_url(tmp_path: Path):
    redis = start_redis(tmp_path)
    try:
        yield f"redis://127.0.0.1:{redis.port}/0"
    finally:
        redis.stop()


@pytest.mark.anyio
async def test_budgets_in_redis_hold_across_replicas(redis_url):
    from fusion_mcp.store.redis_client import connect

    clients = [connect(redis_url), connect(redis_url)]
    try:
        ledgers = [RedisUsage(c, "t") for c in clients]
        replicas = [UserBudgets(BudgetLimits(default_usd=1.0), ledger, c, "t")
                    for c, ledger in zip(clients, ledgers, strict=True)]
        await admit_and_spend(replicas[0], ledgers[0])
        # Two replicas race for carol's last dollar, 0.3 at a time: at most three reservations fit.
        admitted: list[str] = []

        async def take(replica: UserBudgets, run_id: str) -> None:
            try:
                await replica.admit("carol", run_id, 0.3, ttl_s=60)
                admitted.append(run_id)
            except UserBudgetError:
                pass

        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(take, replicas[i % 2], f"c{i}")
        assert len(admitted) == 3
        rows = await ledgers[1].rows(None, today())
        assert {(r.user, r.ensemble, r.runs, r.cost_usd) for r in rows} == {("alice", "lab", 1, 0.25)}
    finally:
        for c in clients:
            await c.aclose()


@pytest.mark.anyio
async def test_a_reservation_of_a_dead_replica_lapses(redis_url):
    from fusion_mcp.store.redis_client import connect

    client = connect(redis_url)
    try:
        ledger = RedisUsage(client, "t")
        dead = UserBudgets(BudgetLimits(default_usd=1.0), ledger, client, "t")
        await dead.admit("dan", "lost", 0.9, ttl_s=1)  # never released: its replica "died"
        alive = UserBudgets(BudgetLimits(default_usd=1.0), ledger, client, "t")
        with pytest.raises(UserBudgetError):
            await alive.admit("dan", "next", 0.5, ttl_s=60)
        await anyio.sleep(1.5)
        await alive.admit("dan", "next", 0.5, ttl_s=60)
    finally:
        await client.aclose()


def test_usage_prints_the_ledger_as_a_table_and_as_json(tmp_path: Path, monkeypatch):
    import os

    cache = tmp_path / "cache" / "cache.sqlite3"
    ledger = SQLiteUsage(cache.parent / "usage.sqlite3")

    async def record() -> None:
        await ledger.run_ended(tally("a", "alice", 0.5))
        await ledger.run_ended(tally("b", "alice", 0.25, ensemble="frontier"))
        await ledger.run_ended(tally("c", "bob", 0.125))

    anyio.run(record)
    env = {**os.environ, "FUSION_MCP_CACHE": str(cache), "COLUMNS": "120"}
    env.pop("FUSION_MCP_STORE", None)
    table = subprocess.run([sys.executable, "-m", "fusion_mcp", "usage"], env=env, capture_output=True, text=True)
    assert table.returncode == 0, table.stderr
    assert "alice" in table.stdout and "frontier" in table.stdout and "$0.8750" in table.stdout
    out = subprocess.run([sys.executable, "-m", "fusion_mcp", "usage", "--user", "alice", "--since", today(), "--json"],
                         env=env, capture_output=True, text=True)
    report = json.loads(out.stdout)
    assert report["total"]["runs"] == 2 and report["total"]["cost_usd"] == 0.75
    assert {r["ensemble"] for r in report["rows"]} == {"lab", "frontier"}
