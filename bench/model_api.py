"""What the model API adds around a fusion run, and what streaming buys a client.

A real `fusion-mcp serve --transport streamable-http` process (with a token) in front of the loopback
upstream the tests use:
  1. models that answer at once: N plain `chat.completions.create` calls with the official openai client,
     and N `fused_answer` calls over MCP on the same server; round trip minus the engine's wall time is
     each face's own cost;
  2. a synthesizer paced like a real model (first token after 1 s, then 40 tokens/s, 200 tokens): the
     time to the first streamed piece of the answer against the time to the whole answer.

    .venv/bin/python bench/model_api.py [--calls 20] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
import openai
from openai.types.chat import ChatCompletionMessageParam

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import LAB_KEY, lab_toml
from tests.services import free_port, stop_process, wait_for_port
from tests.upstream import Upstream

TOKEN = "bench-model-api-token-2b4d6f8h"
QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Capital of France?"}]


def ms(values: list[float]) -> str:
    return f"{1000 * statistics.median(values):.1f} ms"


def plain_calls(client: openai.OpenAI, n: int) -> tuple[list[float], list[float]]:
    trips, walls = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        done = client.chat.completions.create(model="fusion/lab", messages=QUESTION)
        trips.append(time.perf_counter() - t0)
        walls.append((done.model_extra or {})["fusion"]["wall_s"])
    return trips, walls


async def tool_calls(base: str, n: int) -> tuple[list[float], list[float]]:
    trips, walls = [], []
    async with httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}, timeout=60) as http, \
            Client(streamable_http_client(base + "/mcp", http_client=http)) as client:
        for _ in range(n):
            t0 = time.perf_counter()
            result = await client.call_tool("fused_answer", {"question": "Capital of France?", "ensemble": "lab"})
            trips.append(time.perf_counter() - t0)
            walls.append((result.structured_content or {})["usage"]["wall_s"])
    return trips, walls


def streamed(client: openai.OpenAI, n: int) -> tuple[list[float], list[float], list[float]]:
    """(time to the first piece of the answer, time to the whole answer) for a paced synthesizer, and the
    plain request's time for the same run."""
    first, whole, plain = [], [], []
    for _ in range(n):
        t0 = time.perf_counter()
        seen: float | None = None
        for chunk in client.chat.completions.create(model="fusion/paced", messages=QUESTION,
                                                    stream=True):
            if seen is None and chunk.choices and chunk.choices[0].delta.content:
                seen = time.perf_counter() - t0
        whole.append(time.perf_counter() - t0)
        first.append(seen or 0.0)
        t0 = time.perf_counter()
        client.chat.completions.create(model="fusion/paced", messages=QUESTION)
        plain.append(time.perf_counter() - t0)
    return first, whole, plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="5 calls, 1 paced run")
    args = parser.parse_args()
    n, paced_n = (5, 1) if args.quick else (args.calls, 5)
    with Upstream() as up:
        up.script("alpha", text="Paris is the capital of France.")
        up.script("beta", text="It is Paris.")
        up.script("fuser", text="Paris.")
        up.script("writer", text="Paris is the capital of France. " * 25, ttft=1.0, tokens_per_s=40, output_tokens=200)
        folder = Path(tempfile.mkdtemp())
        (folder / "lab.toml").write_text(lab_toml(up.url, ["alpha", "beta"], reviewer=None))
        (folder / "paced.toml").write_text(lab_toml(up.url, ["alpha", "beta"], reviewer=None, synthesizer="writer",
                                                    deadline_s=60))
        port = free_port()
        env: dict[str, Any] = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
                               "LAB_KEY": LAB_KEY, "FUSION_MCP_ENSEMBLES": str(folder),
                               "FUSION_MCP_AUTH_TOKEN": TOKEN, "FUSION_MCP_CACHE": str(folder / "cache.sqlite3")}
        proc = subprocess.Popen([sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http",
                                 "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        try:
            wait_for_port(port, proc, "fusion-mcp serve")
            base = f"http://127.0.0.1:{port}"
            client = openai.OpenAI(base_url=base + "/v1", api_key=TOKEN, max_retries=0, timeout=120)
            plain_calls(client, 2)  # warm up: first connection, first run
            trips, walls = plain_calls(client, n)
            tool_trips, tool_walls = anyio.run(tool_calls, base, n)
            print(f"chat.completions (openai client), median of {n}: round trip {ms(trips)}, engine {ms(walls)}, "
                  f"the model API and client add {1000 * (statistics.median(trips) - statistics.median(walls)):.1f} ms")
            print(f"fused_answer over MCP (streamable HTTP), median of {n}: round trip {ms(tool_trips)}, engine "
                  f"{ms(tool_walls)}, MCP adds "
                  f"{1000 * (statistics.median(tool_trips) - statistics.median(tool_walls)):.1f} ms")
            first, whole, plain = streamed(client, paced_n)
            print(f"paced synthesizer (1 s to first token, 40 tokens/s, 200 tokens), median of {paced_n}: stream's "
                  f"first piece at {ms(first)}, whole answer at {ms(whole)}; a plain request answers at {ms(plain)}")
        finally:
            stop_process(proc)


if __name__ == "__main__":
    main()
