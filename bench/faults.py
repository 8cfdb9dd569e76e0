"""The fault suite: every fault an upstream can throw, in every role, through the CLI and through the
server over streamable HTTP, plus a burst of calls with a mix of faults. Prints one row per case:

  within   returned within the deadline (+ the process's start-up for the CLI)
  named    every degradation (or the error, when nothing could answer) names the model at fault
  outcome  exit code (CLI) or tool error (server): 0 / ok when an answer came back
  tb       tracebacks printed (CLI stderr, server log)
  keys     the API key, or a 12-character piece of it, seen anywhere in the output

A row is clean when it returned in time, named its model, printed no traceback and showed no key,
and answered unless every drafter was at fault. Against tests/upstream.py on 127.0.0.1.

    .venv/bin/python bench/faults.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _faults_hardening as hardening
import _faults_store as faults_store
from mcp import Client

from tests.conftest import LAB_KEY
from tests.services import free_port, wait_for_port
from tests.upstream import Behaviour, Upstream

DRAFTERS = ["d1", "d2", "d3"]
ROLES = {"drafter": ["d1"], "reviewer": ["judge"], "synthesizer": ["fuser"], "all drafters": DRAFTERS}
REVIEW = json.dumps({label: {"score": 8, "reason": "sound"} for label in "ABC"})
KEY_REVIEW = json.dumps({label: {"score": 8, "reason": f"it sent {LAB_KEY}"} for label in "ABC"})


def fault(name: str, model: str, deadline_s: float) -> Behaviour | None:
    """The upstream behaviour of a model at fault (None: route it to a port nobody listens on)."""
    text = KEY_REVIEW if model == "judge" else f"Paris. My key is {LAB_KEY}."
    return {
        # once rate-limited, then the model's healthy answer (its own text: the answer guard compares them)
        "429 + Retry-After": Behaviour(text=REVIEW if model == "judge" else ("Paris." if model == "fuser" else
                                       f"Paris (from {model})."), status=429, retry_after="1", fail_times=1),
        "500": Behaviour(status=500),
        "401": Behaviour(status=401, echo_auth=True),
        "hang": Behaviour(hang=True),
        "slower than deadline": Behaviour(delay=deadline_s + 5),
        "malformed JSON": Behaviour(malformed=True),
        "empty choices": Behaviour(empty_choices=True),
        "connection refused": None,
        "reset mid-response": Behaviour(reset=True),
        "key echoed back": Behaviour(text=text),
    }[name]


FAULTS = ["429 + Retry-After", "500", "401", "hang", "slower than deadline", "malformed JSON", "empty choices",
          "connection refused", "reset mid-response", "key echoed back"]


def healthy(up: Upstream) -> None:
    for m in DRAFTERS:
        up.script(m, text=f"Paris (from {m}).")
    up.script("judge", text=REVIEW)
    up.script("fuser", text="Paris.")


def ensemble(url: str, dead: str, refused: list[str], deadline_s: float) -> str:
    """Drafters d1-d3, reviewer judge, synthesizer fuser on the loopback upstream; `refused` models
    on a provider whose port nobody listens on."""
    def ref(m: str) -> str:
        return f"{'dead' if m in refused else 'lab'}:{m}"

    lines = [f"deadline_s = {deadline_s}", "", "[providers.lab]", 'kind = "openai"', f'base_url = "{url}/v1"',
             'api_key_env = "LAB_KEY"', "", "[providers.dead]", 'kind = "openai"', f'base_url = "{dead}/v1"',
             'api_key_env = "LAB_KEY"']
    for m in DRAFTERS:
        lines += ["", "[[drafters]]", f'model = "{ref(m)}"']
    lines += ["", "[reviewer]", f'model = "{ref("judge")}"', "", "[synthesizer]", f'model = "{ref("fuser")}"']
    return "\n".join(lines) + "\n"


def leaked(text: str) -> bool:
    return any(LAB_KEY[i:i + 12] in text for i in range(len(LAB_KEY) - 11))


@dataclass
class Row:
    fault: str
    role: str
    path: str
    within: bool
    named: bool
    outcome: str
    tracebacks: int
    keys: bool
    expect_error: bool

    @property
    def clean(self) -> bool:
        answered = self.outcome in ("0", "ok")
        return self.within and self.named and not self.tracebacks and not self.keys and (answered or self.expect_error)


def judge_output(payload: dict[str, Any] | None, error: str, faulted: list[str]) -> bool:
    """Every degradation names a model, and each model at fault is named."""
    if payload is None:
        return all(m in error for m in faulted)
    reasons = payload.get("degraded_reasons") or []
    if not all(("lab:" in r or "dead:" in r) for r in reasons):
        return False
    said = " ".join(reasons)
    return all(m in said for m in faulted) or not payload.get("degraded")


def cli_case(env: dict[str, str], name: str, question: str, deadline_s: float, startup_s: float) -> tuple:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "fusion_mcp", "ask", question, "-e", name, "--json"],
                         capture_output=True, text=True, env=env, timeout=deadline_s + 60)
    wall = time.perf_counter() - t0
    payload = json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else None
    return (wall <= deadline_s + startup_s, payload, out.stderr, str(out.returncode),
            out.stderr.count("Traceback"), leaked(out.stdout + out.stderr))


async def server_case(client: Client, name: str, question: str, deadline_s: float) -> tuple:
    t0 = time.perf_counter()
    result = await client.call_tool("fused_answer", {"question": question, "ensemble": name, "include_drafts": True})
    wall = time.perf_counter() - t0
    text = json.dumps(result.structured_content or {}) + "".join(c.text for c in result.content if hasattr(c, "text"))
    payload = None if result.is_error else result.structured_content
    return (wall <= deadline_s + 1.0, payload, text, "tool error" if result.is_error else "ok", 0, leaked(text))


def start_server(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    wait_for_port(port, proc, "fusion-mcp serve")  # type: ignore[arg-type]
    return proc, f"http://127.0.0.1:{port}/mcp"


async def burst(up: Upstream, client: Client | None, env: dict[str, str], n: int, deadline_s: float) -> Row:
    """n calls at once with a mix: d1 rate-limited (Retry-After) at first, d2 slow, d3 failing, the
    reviewer echoing the key, the synthesizer slow."""
    up.reset_counts()
    up.script("d1", text="Paris.", status=429, retry_after="1", fail_times=n // 3)
    up.script("d2", text="Paris!", delay=0.5)
    up.script("d3", status=500)
    up.script("judge", text=KEY_REVIEW)
    up.script("fuser", text="Paris, the capital.", delay=0.5)
    rows: list[tuple] = [()] * n

    async def one(i: int) -> None:
        question = f"Capital of France? (burst {i})"
        if client is not None:
            rows[i] = await server_case(client, "burst", question, deadline_s)
        else:
            rows[i] = await anyio.to_thread.run_sync(cli_case, env, "burst", question, deadline_s, 15.0)

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    outcomes = {r[3] for r in rows}
    for r in rows:
        if r[3] not in ("0", "ok"):
            print(f"  {r[3]}: {r[2][:300]}", flush=True)
    return Row("burst: 429, slow, 500, key", f"{n} calls", "server" if client else "CLI",
               all(r[0] for r in rows), all(judge_output(r[1], r[2], ["d3"]) for r in rows),
               ",".join(sorted(outcomes)), sum(r[4] for r in rows), any(r[5] for r in rows), False)


async def run(args: argparse.Namespace) -> list[Row]:
    deadline_s = 4.0 if args.quick else 8.0
    folder = Path(tempfile.mkdtemp())
    dead = f"http://127.0.0.1:{free_port()}"
    rows: list[Row] = []
    with Upstream() as up:
        for role, models in ROLES.items():
            tag = role.replace(" ", "-")
            (folder / f"lab-{tag}.toml").write_text(ensemble(up.url, dead, [], deadline_s))
            (folder / f"dead-{tag}.toml").write_text(ensemble(up.url, dead, models, deadline_s))
        (folder / "burst.toml").write_text(ensemble(up.url, dead, [], 45.0))  # the default deadline
        env = {**os.environ, "LAB_KEY": LAB_KEY, "FUSION_MCP_ENSEMBLES": str(folder),
               "FUSION_MCP_MODELS_CACHE": str(folder / "models"),
               "FUSION_MCP_CACHE": str(folder / "cache.sqlite3")}
        log = folder / "server.log"
        proc, url = start_server(env, log)
        try:
            async with Client(url) as client:
                for i, name in enumerate([] if args.only_burst or args.only_hardening else FAULTS):
                    roles = list(ROLES.items())
                    # --quick: each fault in one role, the roles taken in turn (every role still meets faults)
                    for role, models in [roles[i % len(roles)]] if args.quick else roles:
                        tag = role.replace(" ", "-")
                        ens = f"{'dead' if name == 'connection refused' else 'lab'}-{tag}"
                        expect_error = role == "all drafters" and name not in ("key echoed back", "429 + Retry-After")
                        for path in ("CLI", "server"):
                            healthy(up)
                            for m in models:
                                behaviour = fault(name, m, deadline_s)
                                if behaviour is not None:
                                    up.script(m, behaviour)
                            question = f"Capital of France? ({name}, {role}, {path})"
                            before = log.read_text(errors="replace").count("Traceback")
                            if path == "CLI":
                                r = await anyio.to_thread.run_sync(cli_case, env, ens, question, deadline_s, 5.0)
                            else:
                                r = await server_case(client, ens, question, deadline_s)
                                r = (*r[:4], log.read_text(errors="replace").count("Traceback") - before, r[5])
                            faulted = models if name != "key echoed back" else []
                            rows.append(Row(name, role, path, r[0], judge_output(r[1], r[2], faulted), r[3], r[4],
                                            r[5], expect_error))
                            print(fmt(rows[-1]), flush=True)
                if args.hardening:
                    for fields in await hardening_server_rows(up, client, env, url, folder, deadline_s):
                        rows.append(fields)
                        print(fmt(fields), flush=True)
                    up.models = []
                if not args.only_hardening:
                    n = 20 if args.quick else 100
                    before = log.read_text(errors="replace").count("Traceback")
                    row = await burst(up, client, env, n, 45.0)
                    row.tracebacks += log.read_text(errors="replace").count("Traceback") - before
                    rows.append(row)
                    print(fmt(row), flush=True)
            if args.only_burst:
                return rows
            if not args.only_hardening:
                row = await burst(up, None, env, 5 if args.quick else args.cli_burst, 45.0)
                rows.append(row)
                print(fmt(row), flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        if args.hardening:
            for row in await hardening_process_rows(up, env, folder, args.quick):
                rows.append(row)
                print(fmt(row), flush=True)
    return rows


async def hardening_server_rows(up: Upstream, client: Client, env: dict[str, str], url: str, folder: Path,
                                deadline_s: float) -> list[Row]:
    """bench/_faults_hardening.py's rows that use the running server; `named` = the row's own check."""
    log = folder / "server.log"
    out: list[Row] = []

    async def add(make: Any, expect_error: bool = False) -> None:
        healthy(up)
        before = log.read_text(errors="replace").count("Traceback")
        made: hardening.Fields | list[hardening.Fields] = await make
        for fields in made if isinstance(made, list) else [made]:
            row = Row(*fields, expect_error=expect_error)
            if row.path == "server":
                row.tracebacks += log.read_text(errors="replace").count("Traceback") - before
            out.append(row)

    await add(hardening.escaped_key_review(up, client, {**env, "FUSION_MCP_ENSEMBLES": str(folder)}, deadline_s))
    await add(hardening.key_as_model_id(up, client, env, folder))
    await add(hardening.bracket_review(up, client, url, deadline_s))
    await add(hardening.huge_draft(up, client, deadline_s))
    await add(hardening.bad_arguments(up, client, url), expect_error=True)
    return out


async def hardening_process_rows(up: Upstream, env: dict[str, str], folder: Path, quick: bool) -> list[Row]:
    healthy(up)
    rows = [Row(*hardening.hostile_folder(env, folder), expect_error=False)]
    rows += [Row(*fields, expect_error=True) for fields in hardening.weak_token_and_bad_port(env)]
    rows.append(Row(*await hardening.sigterm_mid_run(up, env), expect_error=True))
    if not quick:  # the store rows restart and pause a real Redis: tests/test_store_outage.py covers them
        healthy(up)
        rows += [Row(*fields, expect_error=False) for fields in await faults_store.store_rows(up, env)]
    return rows


HEADER = f"{'fault':<28} {'role':<13} {'path':<7} {'within':<7} {'named':<6} {'outcome':<11} {'tb':<3} {'keys':<5} clean"


def fmt(r: Row) -> str:
    yes = {True: "yes", False: "NO"}
    return (f"{r.fault:<28} {r.role:<13} {r.path:<7} {yes[r.within]:<7} {yes[r.named]:<6} {r.outcome:<11} "
            f"{r.tracebacks:<3} {('YES' if r.keys else 'no'):<5} {'clean' if r.clean else 'NOT CLEAN'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="shorter deadline, each fault in one role, smaller bursts, no store rows")
    parser.add_argument("--only-burst", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only-hardening", action="store_true", help="only the hardening rows (no fault rows, no bursts)")
    parser.add_argument("--no-hardening", dest="hardening", action="store_false", help="without the hardening rows")
    parser.add_argument("--cli-burst", type=int, default=100, help="concurrent `ask` processes in the CLI burst")
    args = parser.parse_args()
    print(HEADER, flush=True)
    rows = anyio.run(run, args)
    dirty = [r for r in rows if not r.clean]
    print(f"\n{len(rows) - len(dirty)} of {len(rows)} rows clean")
    sys.exit(1 if dirty else 0)


if __name__ == "__main__":
    main()
