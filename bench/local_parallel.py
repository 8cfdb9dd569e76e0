"""How much the local model's parallel slots buy: one call alone vs three at once (a fusion run's
drafts), same prompt, same token count. Timing targets live here, not in the tests. The slots and
threads are the settings' (FUSION_MCP_LOCAL_PARALLEL, FUSION_MCP_LOCAL_THREADS), as in `fusion-mcp`.

    FUSION_MCP_LOCAL_PARALLEL=1 FUSION_MCP_LOCAL_THREADS=2 .venv/bin/python bench/local_parallel.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

import anyio

from fusion_mcp.config.settings import Settings
from fusion_mcp.providers.base import ChatRequest, Message
from fusion_mcp.providers.local import LocalProvider
from fusion_mcp.providers.local_runtime import configure
from fusion_mcp.providers.spec import BUILTIN_PROVIDERS


async def main(quick: bool) -> None:
    runtime = Settings.from_env().local_runtime
    configure(runtime)  # as FusionEngine.from_settings does: before the model loads
    print(f"slots {runtime.n_parallel}, threads {runtime.threads}")
    provider = LocalProvider(BUILTIN_PROVIDERS["local"])
    tokens = 48 if quick else 96
    request = ChatRequest(messages=[Message(role="user", content="Write a long story about a lighthouse keeper and the ships she guides.")],
                          temperature=0, seed=3, max_tokens=tokens)

    written: list[int] = []  # the repetition control may end a call before max_tokens: count what came

    async def one() -> float:
        t = time.perf_counter()
        c = await provider.complete("smollm2", request, timeout_s=300)
        assert c.usage.output_tokens
        written.append(c.usage.output_tokens)
        return time.perf_counter() - t

    t = time.perf_counter()
    await one()
    print(f"first call (load included): {time.perf_counter() - t:.2f} s")
    rounds = 1 if quick else 3
    singles, triples = [], []
    for _ in range(rounds):
        singles.append(await one())
        t = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(one)
        triples.append(time.perf_counter() - t)
    s, p = statistics.median(singles), statistics.median(triples)
    n = statistics.median(written)
    print(f"one call: {s:.2f} s ({n / s:.0f} tokens/s); three at once: {p:.2f} s ({3 * n / p:.0f} tokens/s); "
          f"three at once take {p / s:.2f}x one call (sequential would be 3x); {n:g} tokens a call (median, "
          f"max_tokens {tokens})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, shorter calls")
    anyio.run(main, parser.parse_args().quick)
