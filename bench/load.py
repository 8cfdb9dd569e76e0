"""Load and CPU: N concurrent fused calls against one, the engine's CPU per fused call, start-up time.

The upstream is a small asyncio server in a process of its own (so its CPU is not counted): every
model answers after --delay seconds. An ensemble of three drafters, a reviewer and a synthesizer on
one provider, so a fused call is five upstream requests.

  1. one call (median of 3) against N at once: wall time and the ratio (target: at most 1.5x when
     the upstream admits them all);
  2. CPU of this process per fused call, sequential and under the burst (target: at most 5 ms);
  3. start-up: `fusion-mcp --help`, `fusion-mcp ensembles`, and `ask` outside the engine.

    .venv/bin/python bench/load.py [--quick] [--calls 128] [--delay 0.5] [--pool N] [--ceiling N]
    .venv/bin/python bench/load.py --http [--calls 128] [--max-running N]   # through `serve` over HTTP
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.services import free_port, wait_for_port

REVIEW = json.dumps({label: {"score": 8, "reason": "ok"} for label in "ABC"})


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _sse(payload: dict[str, object] | str) -> bytes:
    return _chunk(b"data: " + (payload if isinstance(payload, str) else json.dumps(payload)).encode() + b"\n\n")


async def _stream_reply(writer: asyncio.StreamWriter, text: str, ttft: float, delay: float) -> None:
    """As a streaming API answers: headers at once, the first token after `ttft`, the rest at `delay`."""
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
    first, _, rest = text.partition(" ")
    await asyncio.sleep(ttft)
    writer.write(_sse({"choices": [{"index": 0, "delta": {"role": "assistant", "content": first}}]}))
    await asyncio.sleep(max(0.0, delay - ttft))
    writer.write(_sse({"choices": [{"index": 0, "delta": {"content": " " + rest}, "finish_reason": "stop"}]})
                 + _sse({"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 8}})
                 + _sse("[DONE]") + _chunk(b""))
    await writer.drain()


async def _serve(port: int, delay: float, ttft: float | None) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = json.loads(await reader.readexactly(length))
                text = REVIEW if body.get("model") == "judge" else "Paris is the capital of France."
                if ttft is not None and body.get("stream"):
                    await _stream_reply(writer, text, ttft, delay)
                    continue
                await asyncio.sleep(delay)
                data = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                                   "usage": {"prompt_tokens": 20, "completion_tokens": 8}}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                             + str(len(data)).encode() + b"\r\n\r\n" + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def ensemble(url: str, ceiling: int | None) -> str:
    lines = ["deadline_s = 120", "", "[providers.lab]", 'kind = "openai"', f'base_url = "{url}/v1"', 'api_key_env = "LAB_KEY"']
    if ceiling:
        lines.append(f"max_concurrency = {ceiling}")
    for m in ("d1", "d2", "d3"):
        lines += ["", "[[drafters]]", f'model = "lab:{m}"']
    return "\n".join(lines + ["", "[reviewer]", 'model = "lab:judge"', "", "[synthesizer]", 'model = "lab:fuser"']) + "\n"


async def engine_bench(args: argparse.Namespace, folder: Path) -> None:
    import anyio

    from fusion_mcp import FusionEngine
    from fusion_mcp.config.ensemble_registry import EnsembleRegistry
    from fusion_mcp.fusion import engine as engine_module

    if args.pool:
        import httpx2 as httpx

        engine_module.POOL_SIZE = args.pool
        engine_module.HTTP_LIMITS = httpx.Limits(max_connections=args.pool, max_keepalive_connections=args.pool)
    registry = EnsembleRegistry.load([folder])
    async with FusionEngine(registry) as engine:
        await engine.fuse("warm up", ensemble="lab")
        walls, cpu0 = [], time.process_time()
        for i in range(args.sequential):
            t0 = time.perf_counter()
            await engine.fuse(f"one {i}", ensemble="lab")
            walls.append(time.perf_counter() - t0)
        one = statistics.median(walls)
        cpu_one = (time.process_time() - cpu0) / args.sequential
        failed = [0]

        async def call(i: int) -> None:
            result = await engine.fuse(f"burst {i}", ensemble="lab")
            failed[0] += result.degraded

        for round_ in range(2):  # the first burst also warms the pool's connections
            cpu0, t0 = time.process_time(), time.perf_counter()
            async with anyio.create_task_group() as tg:
                for i in range(args.calls):
                    tg.start_soon(call, i)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            print(f"burst {round_ + 1}: {args.calls} calls in {wall:.2f} s = {wall / one:.2f}x one call ({one:.2f} s); "
                  f"CPU {1000 * cpu / args.calls:.1f} ms per fused call ({1000 * cpu_one:.1f} ms one at a time); "
                  f"{failed[0]} degraded", flush=True)
            failed[0] = 0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def http_bench(args: argparse.Namespace, folder: Path) -> None:
    """The same calls through `fusion-mcp serve --transport streamable-http`: the server's CPU (its
    process, read from /proc) per fused call, and the burst's wall time against one call's."""
    import anyio
    from mcp import Client

    from tests.services import Service

    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
           "LAB_KEY": "bench-key-0123456789", "FUSION_MCP_ENSEMBLES": str(folder),
           **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {})}
    argv = [sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http", "--port", str(port),
            *(["--max-running", str(args.max_running)] if args.max_running else [])]
    server = Service(argv, port, "fusion-mcp serve", env)
    pid = server.proc.pid
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        async def fused(client: Client, question: str) -> None:
            result = await client.call_tool("fused_answer", {"question": question, "ensemble": "lab"})
            assert not result.is_error and result.structured_content["status"] == "done", result.content

        async with Client(url) as client:
            await fused(client, "warm up")
            walls, cpu0 = [], _cpu_s(pid)
            for i in range(args.sequential):
                t0 = time.perf_counter()
                await fused(client, f"one {i}")
                walls.append(time.perf_counter() - t0)
            one, cpu_one = statistics.median(walls), (_cpu_s(pid) - cpu0) / args.sequential
        sessions = max(1, args.calls // 16)  # a few sessions, as several hosts would open
        for round_ in range(2):
            async with AsyncExitStack() as stack:  # opened before the clock starts: the calls are timed
                clients = [await stack.enter_async_context(Client(url)) for _ in range(sessions)]
                cpu0, mine0, t0 = _cpu_s(pid), time.process_time(), time.perf_counter()
                async with anyio.create_task_group() as tg:
                    for i in range(args.calls):
                        tg.start_soon(fused, clients[i % sessions], f"burst {round_} {i}")
                wall, cpu, mine = time.perf_counter() - t0, _cpu_s(pid) - cpu0, time.process_time() - mine0
            print(f"http burst {round_ + 1}: {args.calls} calls in {wall:.2f} s = {wall / one:.2f}x one call "
                  f"({one:.2f} s); server CPU {1000 * cpu / args.calls:.1f} ms per fused call "
                  f"({1000 * cpu_one:.1f} ms one at a time); the clients' CPU {1000 * mine / args.calls:.1f} ms "
                  f"per call (same machine; {sessions} sessions, opened before the clock starts)", flush=True)
    finally:
        server.stop()


def startup(folder: Path, url: str, runs: int) -> None:
    env = {**os.environ, "LAB_KEY": "bench-key-0123456789", "FUSION_MCP_ENSEMBLES": str(folder)}

    def timed(*argv: str) -> tuple[float, str]:
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "fusion_mcp", *argv], capture_output=True, text=True, env=env)
        return time.perf_counter() - t0, out.stdout

    for argv in (["--help"], ["ensembles"]):
        times = [timed(*argv)[0] for _ in range(runs)]
        print(f"start-up: fusion-mcp {' '.join(argv)}: median {1000 * statistics.median(times):.0f} ms of {runs}")
    outside = []
    for _ in range(runs):
        wall, stdout = timed("ask", "Capital?", "-e", "lab", "--json")
        outside.append(wall - json.loads(stdout)["totals"]["wall_s"])
    print(f"start-up: fusion-mcp ask: median {1000 * statistics.median(outside):.0f} ms outside the engine of {runs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="32 calls, 0.2 s upstream, 3 start-ups")
    parser.add_argument("--calls", type=int, default=128)
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--ttft", type=float, default=None,
                        help="stream the replies (SSE), the first token after this many seconds and the rest at "
                             "--delay, as a streaming API does (default: whole JSON replies after --delay)")
    parser.add_argument("--sequential", type=int, default=5)
    parser.add_argument("--pool", type=int, default=None, help="HTTP pool size (default: the engine's)")
    parser.add_argument("--ceiling", type=int, default=None, help="max_concurrency (default: the provider default)")
    parser.add_argument("--http", action="store_true", help="through `fusion-mcp serve` over streamable HTTP")
    parser.add_argument("--max-running", type=int, default=None, help="serve --max-running (with --http)")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up timings")
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)  # run as the upstream on this port
    args = parser.parse_args()
    if args.upstream:
        asyncio.run(_serve(args.upstream, args.delay, args.ttft))
        return
    if args.quick:
        args.calls, args.delay, args.sequential = 32, 0.2, 3
    port = free_port()
    upstream = subprocess.Popen([sys.executable, __file__, "--upstream", str(port), "--delay", str(args.delay),
                                 *(["--ttft", str(args.ttft)] if args.ttft is not None else [])])
    try:
        wait_for_port(port, upstream, "the load upstream")  # type: ignore[arg-type]
        url = f"http://127.0.0.1:{port}"
        folder = Path(tempfile.mkdtemp())
        (folder / "lab.toml").write_text(ensemble(url, args.ceiling))
        os.environ["LAB_KEY"] = "bench-key-0123456789"
        import anyio

        anyio.run(http_bench if args.http else engine_bench, args, folder)
        if not args.no_startup:
            startup(folder, url, 3 if args.quick else 7)
    finally:
        upstream.terminate()


if __name__ == "__main__":
    main()
