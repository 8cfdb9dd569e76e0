"""The `[web]` table and `tools` in ensemble files: what loads, and the one-line errors for what does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusion_mcp.config.ensemble_registry import EnsembleRegistry
from fusion_mcp.errors import ConfigError
from fusion_mcp.redaction import redact
from tests.conftest import lab_toml, write_registry

URL = "http://127.0.0.1:9"


def test_shipped_research_trio() -> None:
    reg = EnsembleRegistry.load()
    assert reg.errors == {}
    trio = reg.get("research-trio")
    assert all(d.tools == ("web_search", "web_fetch") for d in trio.drafters) and len(trio.drafters) == 3
    assert trio.reviewer is not None and trio.reviewer.tools == ("web_fetch",)
    assert trio.synthesizer is not None and trio.synthesizer.tools == ()
    assert trio.web is not None and (trio.web.search, trio.web.max_tool_calls) == ("searxng", 6)
    # the listing's cost per call counts the tool turns: the same models without tools cost less
    from fusion_mcp.fusion.estimate import reference_estimate
    from tests.conftest import env_pricing

    plain, research = reference_estimate(reg.get("frontier-trio"), env_pricing()), reference_estimate(trio, env_pricing())
    assert plain is not None and research is not None and research > 2 * plain


def test_the_done_when_example_loads(ensemble_dir: Path) -> None:
    toml = lab_toml(URL, [{"model": "alpha", "tools": ["web_search", "web_fetch"]}, {"model": "beta", "tools": ["web_fetch"]}])
    toml += '\n[web]\nsearch = "searxng"\nsearch_url = "http://127.0.0.1:8888"\nfetch_allow = ["127.0.0.1:8888"]\n'
    e = write_registry(ensemble_dir, lab=toml).get("lab")
    assert [d.tools for d in e.drafters] == [("web_search", "web_fetch"), ("web_fetch",)]
    assert e.web is not None and e.web.max_tool_calls == 8 and e.web.allow == frozenset({"127.0.0.1:8888"})


@pytest.mark.parametrize("extra,drafter,key,message", [
    ("", {"model": "a", "tools": ["web_search"]}, r"drafters\[0\]\.tools", "web_search needs a search backend"),
    ('[web]\nsearch = "searxng"\n', {"model": "a"}, "web", "needs search_url"),
    ('[web]\nmax_tool_calls = 17\n', {"model": "a"}, r"web\.max_tool_calls", "less than or equal to 16"),
    ('[web]\nfetch_allow = ["intranet"]\n', {"model": "a"}, r"web\.fetch_allow", "must be host:port"),
    ('[web]\nsearch = "google"\n', {"model": "a"}, r"web\.search", "searxng"),
    ('[web]\nsearch_ur = "x"\n', {"model": "a"}, r"web\.search_ur", "did you mean 'search_url'"),
    ("", {"model": "a", "tools": ["shell"]}, r"drafters\[0\]\.tools", "web_search"),
])
def test_bad_web_settings_name_the_key(ensemble_dir: Path, extra: str, drafter: dict, key: str, message: str) -> None:
    toml = lab_toml(URL, [drafter]) + "\n" + extra
    with pytest.raises(ConfigError, match=key) as info:
        write_registry(ensemble_dir, bad=toml).get("bad")
    assert message in str(info.value)


def test_tools_need_a_wire_format_that_has_them(ensemble_dir: Path) -> None:
    toml = '[[drafters]]\nmodel = "local:smollm2"\ntools = ["web_fetch"]\n'
    with pytest.raises(ConfigError, match=r"drafters\[0\]\.tools.*openai or anthropic"):
        write_registry(ensemble_dir, bad=toml).get("bad")


def test_a_search_api_key_is_required_and_redacted(ensemble_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = lab_toml(URL, [{"model": "a", "tools": ["web_search"]}, "b"]) + '\n[web]\nsearch = "brave"\n'
    e = write_registry(ensemble_dir, lab=toml).get("lab")
    assert e.missing_keys() == ["BRAVE_API_KEY"] and not e.ready
    monkeypatch.setenv("BRAVE_API_KEY", "BSA-secret-0123456789abcdef")
    assert e.ready and redact("key BSA-secret-0123456789abcdef") == "key [redacted]"
    custom = lab_toml(URL, [{"model": "a", "tools": ["web_search"]}]) + \
        '\n[web]\nsearch = "tavily"\nsearch_api_key_env = "MY_SEARCH_CREDENTIAL"\n'
    assert write_registry(ensemble_dir, custom=custom).get("custom").missing_keys() == ["MY_SEARCH_CREDENTIAL"]
