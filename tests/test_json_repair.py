"""The truncated-JSON repair: what a reply cut by its token limit keeps, and that a hostile reply
of brackets costs one linear pass (it rescanned its stack at every bracket: 40,000 `[` took 13.7 s)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client

from fusion_mcp.fusion.json_repair import close_truncated, load_truncated
from fusion_mcp.fusion.review_parser import ReviewParseError, read_review
from fusion_mcp.server.app import create_server
from tests.conftest import lab_toml, write_registry
from tests.upstream import Upstream

REVIEW = {"scores": {"A": {"score": 8, "reason": "sound [1]"}, "B": {"score": 3, "reason": "a \"quote\" }"}},
          "consensus": ["x", "y"], "contradictions": [{"topic": "t", "stances": [{"label": "A", "stance": "s"}]}]}


@pytest.mark.parametrize("text, expected", [
    ('{"scores": {"A": {"score": 8}, "B": {"sc', {"scores": {"A": {"score": 8}, "B": {}}}),
    ('noise ["x", {"a": 3', ["x"]),  # a list entry is whole or dropped
    ('[12, 34', []),  # a number may be cut (12 of 123): only strings and brackets end an entry
    ('{"a": ["x", "y", "z', {"a": ["x", "y"]}),
    ('{"a": [[1, 2], [3', {"a": [[1, 2], []]}),
    ('[{"a": "}"}, {"b": "]', [{"a": "}"}]),  # brackets inside strings are text
    ('["a\\"b", "c', ["a\"b"]),
])
def test_a_cut_value_keeps_its_complete_entries(text: str, expected: object) -> None:
    assert load_truncated(text) == expected


@pytest.mark.parametrize("text", ['{"a": 1}', "[1, 2]", "no json here", "", '{"a": 1} and more'])
def test_nothing_to_repair_is_none(text: str) -> None:
    assert close_truncated(text) is None


def test_every_cut_of_a_review_is_valid_json_or_none() -> None:
    full = json.dumps(REVIEW)
    for cut in range(len(full)):
        closed = close_truncated(full[:cut])
        if closed is not None:
            json.loads(closed)  # never raises


@pytest.mark.parametrize("reply", ["[" * 200_000, '{"a": [' * 100_000, '[{"a": [1, "x", ' * 50_000,
                                   "```json\n" + "[" * 200_000, "{" * 200_000])
def test_a_hostile_reply_costs_milliseconds_not_minutes(reply: str) -> None:
    started = time.perf_counter()
    load_truncated(reply)
    with pytest.raises(ReviewParseError):
        read_review(reply, ["A", "B"])
    assert time.perf_counter() - started < 5.0  # it ran for minutes at 200,000 brackets


def test_past_its_depth_limit_a_reply_keeps_what_came_before() -> None:
    reply = '{"A": {"score": 8}, "B": {"score": 6}, "extra": ' + "[1, " * 5000
    assert read_review(reply, ["A", "B"]).scores["B"].accuracy == 6


@pytest.mark.anyio
async def test_a_hostile_review_never_delays_another_client(upstream: Upstream, ensemble_dir: Path) -> None:
    """With 80,000 `[` from the reviewer, another client's tools/list waited 42 s."""
    upstream.script("alpha", text="Paris.")
    upstream.script("beta", text="Paris, France.")
    upstream.script("judge", text="[" * 80_000)
    upstream.script("fuser", text="Paris.")
    server = create_server(write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"])))
    waits: list[float] = []
    async with Client(server) as asking, Client(server) as listing:
        async def ask() -> None:
            result = await asking.call_tool("fused_answer", {"question": "Capital?", "ensemble": "lab"})
            assert not result.is_error and result.structured_content["answer"] == "Paris."
            done.set()

        done = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(ask)
            while not done.is_set():
                started = time.perf_counter()
                await listing.list_tools()
                waits.append(time.perf_counter() - started)
                await anyio.sleep(0.05)
    assert waits and max(waits) < 5.0, waits
