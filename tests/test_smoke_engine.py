import pytest

from fusion_mcp import FusionEngine
from tests.conftest import lab_toml, scoring_reviewer, write_registry


@pytest.mark.anyio
async def test_fused_answer_end_to_end(upstream, ensemble_dir):
    upstream.script("alpha", text="Paris is the capital.")
    upstream.script("beta", text="It is Lyon.")
    upstream.script("judge", scoring_reviewer({"Paris is the capital.": 9, "It is Lyon.": 2}))
    upstream.script("fuser", text="Paris.")
    reg = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"]))
    async with FusionEngine(reg) as engine:
        result = await engine.fuse("Capital of France?", ensemble="lab")
    assert result.answer == "Paris."
    weights = {d.model: d.weight for d in result.drafts}
    assert weights["lab:alpha"] > weights["lab:beta"]
    print(result.model_dump_json(indent=1))
