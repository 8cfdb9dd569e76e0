"""The fault suite's hardening rows (bench/faults.py): a key written as escapes or served as a model
id, a review of brackets, a huge draft, hostile files and arguments, a signal mid-run.

Each row returns a `Row`; its `named` column says whether the row's own check held (written beside
each row), the other columns mean what they mean in bench/faults.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client

from tests.conftest import LAB_KEY
from tests.services import free_port, stop_process, wait_for_port
from tests.upstream import Behaviour, Upstream

# (fault, role, path, within, held, outcome, tracebacks, keys): a Row of bench/faults.py less expect_error
Fields = tuple[str, str, str, bool, bool, str, int, bool]


def escaped(key: str) -> str:
    return "".join(f"\\u{ord(c):04x}" if i % 2 == 0 else c for i, c in enumerate(key))


def leaked_any(text: str) -> bool:
    """The key, or a 12-character piece of it, in the text as it is or with its escapes decoded."""
    import urllib.parse

    forms = [text, urllib.parse.unquote(text)]
    try:
        forms.append(json.loads(f'"{text}"'))
    except ValueError:
        pass
    forms += [f.encode("latin-1", "backslashreplace").decode("unicode_escape", "replace") for f in forms[:1]]
    return any(LAB_KEY[i:i + 12] in f for f in forms for i in range(len(LAB_KEY) - 11))


def _text_of(result: Any) -> str:
    return json.dumps(result.structured_content or {}) + "".join(c.text for c in result.content if hasattr(c, "text"))


async def _call(client: Client, tool: str, args: dict[str, Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = await client.call_tool(tool, args)
    return time.perf_counter() - t0, result


async def escaped_key_review(up: Upstream, client: Client, env: dict[str, str], deadline_s: float) -> list[Fields]:
    """The reviewer writes the key as \\u escapes: no key in any tool result, `ask --json`/`--show-drafts`,
    the run, nor the synthesis prompt. (fault, role, path, within, held, outcome, tracebacks, keys)"""
    key = escaped(LAB_KEY)
    up.script("judge", text="{" + ", ".join(f'"{lab}": {{"score": 8, "reason": "it sent {key}"}}' for lab in "ABC")
              + f', "consensus": ["{key}"]}}')
    rows: list[Fields] = []
    wall, answer = await _call(client, "fused_answer", {"question": "Capital? (escaped key)", "ensemble": "lab-drafter",
                                                        "include_drafts": True})
    texts = [_text_of(answer)]
    if not answer.is_error:
        run_id = answer.structured_content["run_id"]
        texts.append(_text_of(await client.call_tool("get_run", {"run_id": run_id})))
        texts.append((await client.read_resource(f"run://{run_id}")).contents[0].text)  # type: ignore[union-attr]
    _, compared = await _call(client, "compare_drafts", {"question": "Capital? (escaped key, compare)",
                                                         "ensemble": "lab-drafter"})
    texts.append(_text_of(compared))
    prompt_leak = any(leaked_any(r.all_text()) for r in up.calls("fuser"))
    rows.append(("key as \\u escapes", "reviewer", "server", wall <= deadline_s + 1, not prompt_leak,
                 "tool error" if answer.is_error else "ok", 0, any(leaked_any(t) for t in texts)))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "fusion_mcp", "ask", "Capital? (escaped key, CLI)", "-e",
                          "lab-drafter", "--json", "--show-drafts"], capture_output=True, text=True, env=env, timeout=120)
    rows.append(("key as \\u escapes", "reviewer", "CLI", time.perf_counter() - t0 <= deadline_s + 5,
                 not prompt_leak, str(out.returncode), out.stderr.count("Traceback"), leaked_any(out.stdout + out.stderr)))
    return rows


async def key_as_model_id(up: Upstream, client: Client, env: dict[str, str], folder: Path) -> list[Fields]:
    """A provider's /models serves the key as an id: not in list_models, `fusion-mcp models`, nor the cache."""
    up.models = [{"id": "d1"}, {"id": LAB_KEY}, {"id": f"vendor/{LAB_KEY}"}, {"id": "d2"}]
    t0 = time.perf_counter()
    listed = await client.call_tool("list_models", {"provider": "lab", "refresh": True})
    wall = time.perf_counter() - t0
    held = not listed.is_error and [m["model"] for m in listed.structured_content["models"]] == ["lab:d1", "lab:d2"]
    cache = "".join(p.read_text(errors="replace") for p in (folder / "models").glob("*.json"))
    server = ("key as model id", "listing", "server", wall < 15, held, "tool error" if listed.is_error else "ok", 0,
              leaked_any(_text_of(listed) + cache))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "fusion_mcp", "models", "--provider", "lab", "--refresh"],
                         capture_output=True, text=True, env=env, timeout=60)
    cli = ("key as model id", "listing", "CLI", time.perf_counter() - t0 < 15, "lab:d1" in out.stdout,
           str(out.returncode), out.stderr.count("Traceback"), leaked_any(out.stdout + out.stderr + cache))
    return [server, cli]


async def bracket_review(up: Upstream, client: Client, url: str, deadline_s: float) -> Fields:
    """A review of 60,000 `[`: the call answers within its deadline, and another client's tools/list
    meanwhile never waits a second."""
    up.script("judge", text="[" * 60_000)
    waits: list[float] = []
    done = anyio.Event()
    outcome: list[Any] = []

    async def ask() -> None:
        outcome.append(await _call(client, "fused_answer", {"question": "Capital? (brackets)", "ensemble": "lab-drafter"}))
        done.set()

    async with Client(url) as other, anyio.create_task_group() as tg:
        tg.start_soon(ask)
        while not done.is_set():
            t0 = time.perf_counter()
            await other.list_tools()
            waits.append(time.perf_counter() - t0)
            await anyio.sleep(0.05)
    wall, result = outcome[0]
    return ("60,000-bracket review", "reviewer", "server", wall <= deadline_s + 1, max(waits, default=0) < 1.0,
            "tool error" if result.is_error else "ok", 0, False)


async def huge_draft(up: Upstream, client: Client, deadline_s: float) -> Fields:
    """A drafter streams 50 MB: the draft is cut at its cap and marked truncated, its stream closed,
    and what reaches the reviewer and the synthesizer stays under 2 MB."""
    up.script("d1", Behaviour(text="All work and no play. " * 2_400_000, output_tokens=200_000, tokens_per_s=200_000))
    wall, result = await _call(client, "fused_answer", {"question": "Capital? (50 MB draft)", "ensemble": "lab-drafter",
                                                        "include_drafts": True})
    drafts = (result.structured_content or {}).get("drafts", [])
    d1: dict[str, Any] = next((d for d in drafts if d["model"] == "lab:d1"), {})
    forwarded = max((len(r.all_text()) for m in ("judge", "fuser") for r in up.calls(m)
                     if "50 MB draft" in r.all_text()), default=0)
    held = bool(d1.get("truncated")) and len(d1.get("text") or "") <= 1_000_000 and forwarded < 2_000_000
    return ("50 MB draft", "drafter", "server", wall <= deadline_s + 1, held,
            "tool error" if result.is_error else "ok", 0, False)


def hostile_folder(env: dict[str, str], folder: Path) -> Fields:
    """A FIFO, /dev/zero linked as x.toml and a 2 MB file in the ensembles folder: `ensembles`
    answers at once and names each as broken."""
    os.mkfifo(folder / "fifo.toml")
    (folder / "zero.toml").symlink_to("/dev/zero")
    (folder / "huge.toml").write_bytes(b"#" * 2_000_000)
    try:
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "fusion_mcp", "ensembles"], capture_output=True, text=True,
                             env=env, timeout=60)
        wall = time.perf_counter() - t0
    finally:
        for name in ("fifo.toml", "zero.toml", "huge.toml"):
            (folder / name).unlink()
    said = out.stdout + out.stderr
    held = all(n in said for n in ("fifo.toml", "zero.toml", "huge.toml")) and "lab-drafter" in said
    return ("FIFO, /dev/zero, 2 MB file", "ensembles", "CLI", wall < 15, held, str(out.returncode),
            said.count("Traceback"), False)


def weak_token_and_bad_port(env: dict[str, str]) -> list[Fields]:
    rows: list[Fields] = []
    for fault, args, want in (
        ("token password12345678", ["--host", "0.0.0.0", "--auth-token", "password12345678"], "secrets.token_urlsafe"),
        ("serve --port 70000", ["--port", "70000"], "between 1 and 65535"),
    ):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http", *args],
                             capture_output=True, text=True, env=env, timeout=60)
        one_line = len(out.stderr.strip().splitlines()) == 1 and want in out.stderr
        rows.append((fault, "input", "CLI", time.perf_counter() - t0 < 15, one_line, str(out.returncode),
                     out.stderr.count("Traceback"), False))
    return rows


BAD_ARGUMENTS: list[tuple[str, dict[str, Any]]] = [
    ("NUL-only question", {"question": "\x00\x00\x00"}),
    ('max_cost_usd: "inf"', {"question": "Q?", "max_cost_usd": "inf"}),
    ('include_drafts: "yes"', {"question": "Q?", "include_drafts": "yes"}),
    ("unknown argument", {"question": "Q?", "deadlin_s": 5}),
]


async def bad_arguments(up: Upstream, client: Client, url: str) -> list[Fields]:
    """Each bad argument is a one-line tool error before any model call; an object id gets -32600."""
    rows: list[Fields] = []
    for fault, args in BAD_ARGUMENTS:
        before = len(up.calls())
        wall, result = await _call(client, "fused_answer", {"ensemble": "lab-drafter", **args})
        text = result.content[0].text if result.content else ""
        held = result.is_error and "\n" not in text.strip() and len(up.calls()) == before
        rows.append((fault, "input", "server", wall < 5, held, "tool error" if result.is_error else "ok", 0, False))
    body = {"jsonrpc": "2.0", "id": {"a": 1}, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient() as http:
        t0 = time.perf_counter()
        answer = await http.post(url, json=body, headers={"accept": "application/json, text/event-stream",
                                                          "content-type": "application/json"})
        wall = time.perf_counter() - t0
    held = answer.status_code == 400 and answer.json().get("error", {}).get("code") == -32600
    rows.append(("JSON-RPC id an object", "input", "server", wall < 5, held, f"HTTP {answer.status_code}", 0, False))
    return rows


async def sigterm_mid_run(up: Upstream, env: dict[str, str]) -> Fields:
    """SIGTERM with a run in flight: the server is gone within 5 s, the tool call answers that it is
    shutting down, the upstream requests are closed."""
    for m in ("d1", "d2", "d3"):
        up.script(m, text="Paris.", delay=30)
    up.disconnects.clear()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_port(port, proc, "fusion-mcp serve")
    answers: list[Any] = []
    exited = 99.0
    try:
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            async def ask() -> None:
                try:
                    answers.append(await client.call_tool("fused_answer", {"question": "Capital? (SIGTERM)",
                                                                           "ensemble": "burst"}))
                except Exception as exc:
                    answers.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(ask)
                with anyio.fail_after(20):
                    while len([r for r in up.calls() if "SIGTERM" in r.all_text()]) < 2:
                        await anyio.sleep(0.05)
                t0 = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                with anyio.move_on_after(15):
                    while proc.poll() is None:
                        await anyio.sleep(0.05)
                exited = time.monotonic() - t0
    finally:
        err = proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
        stop_process(proc)
    said = answers[0] if answers else None
    held = bool(getattr(said, "is_error", False)) and "shutting down" in getattr(said, "content", [None])[0].text \
        and {"d1", "d2"} <= set(up.disconnects)
    return ("SIGTERM mid-run", "server", "server", exited < 5.0, held,
            "tool error" if getattr(said, "is_error", False) else "?", err.count("Traceback"), False)
