"""Traces (OpenTelemetry's in-memory exporter), metrics and the audit line of runs through the MCP
server, in process, with models on the loopback upstream."""

import json
import logging

import pytest
from mcp import Client
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fusion_mcp.server.app import create_server
from fusion_mcp.team.metrics import Metrics
from fusion_mcp.team.telemetry import Telemetry
from tests.conftest import lab_toml, review_json, write_registry

pytestmark = pytest.mark.anyio
QUESTION = "What is the capital of France, in one word?"


@pytest.fixture
def traced(upstream, ensemble_dir):
    upstream.script("alpha", text="Answer: Paris.", ttft=0.05, output_tokens=7)
    upstream.script("beta", text="Answer: Lyon.")
    upstream.script("judge", text=review_json({"A": (9, 9, 9), "B": (3, 3, 3)}))
    upstream.script("fuser", text="Paris.")
    registry = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"]))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def build(content: bool = False) -> tuple[object, Metrics]:
        metrics = Metrics()
        telemetry = Telemetry(metrics, provider.get_tracer("test"), content=content)
        return create_server(registry, telemetry=telemetry), metrics

    return build, exporter


async def fuse(server) -> dict:
    async with Client(server) as client:
        result = await client.call_tool("fused_answer", {"question": QUESTION, "ensemble": "lab"})
    assert not result.is_error, result.content
    return result.structured_content


async def test_a_run_and_each_model_call_are_spans_with_genai_attributes(traced):
    build, exporter = traced
    server, _ = build()
    out = await fuse(server)
    spans = exporter.get_finished_spans()
    runs = [s for s in spans if s.name == "invoke_agent fusion lab"]
    assert len(runs) == 1
    run = runs[0]
    assert run.attributes["fusion.run_id"] == out["run_id"] and run.attributes["fusion.outcome"] == "ok"
    assert run.attributes["gen_ai.operation.name"] == "invoke_agent"
    calls = {s.attributes["gen_ai.request.model"]: s for s in spans if s.name.startswith("chat ")}
    assert set(calls) == {"alpha", "beta", "judge", "fuser"}
    for model, span in calls.items():
        assert span.parent is not None and span.parent.span_id == run.context.span_id, model
        assert span.attributes["gen_ai.operation.name"] == "chat"
        assert span.attributes["gen_ai.provider.name"] == "lab"
        assert span.attributes["gen_ai.usage.input_tokens"] > 0
    assert calls["alpha"].attributes["gen_ai.usage.output_tokens"] == 7
    assert calls["alpha"].attributes["fusion.role"] == "drafter"
    assert calls["judge"].attributes["fusion.role"] == "reviewer"
    assert calls["fuser"].attributes["fusion.role"] == "synthesizer"
    assert run.attributes["gen_ai.usage.input_tokens"] == sum(s.attributes["gen_ai.usage.input_tokens"]
                                                             for s in calls.values())
    assert all(QUESTION not in json.dumps(dict(s.attributes)) for s in spans)  # no content unless opted in


async def test_question_and_answer_go_into_the_run_span_only_on_opt_in(traced):
    build, exporter = traced
    server, _ = build(content=True)
    await fuse(server)
    run = next(s for s in exporter.get_finished_spans() if s.name.startswith("invoke_agent"))
    asked = json.loads(run.attributes["gen_ai.input.messages"])
    answered = json.loads(run.attributes["gen_ai.output.messages"])
    assert asked[0]["parts"][0]["content"] == QUESTION and answered[0]["parts"][0]["content"] == "Paris."


async def test_a_failed_call_is_a_span_with_its_error_type_and_a_metric_by_status(traced, upstream):
    build, exporter = traced
    upstream.script("beta", status=500)
    server, metrics = build()
    out = await fuse(server)
    assert out["answer"] == "Answer: Paris."  # the one draft left: nothing to fuse
    beta = next(s for s in exporter.get_finished_spans() if s.name == "chat beta")
    assert beta.attributes["error.type"] == "upstream_error"
    assert metrics.calls.labels("lab:beta", "drafter", "upstream_error")._value.get() == 1
    assert metrics.runs.labels("lab", "degraded", "best_draft")._value.get() == 1


async def test_each_run_writes_one_audit_line_without_content(traced, caplog):
    build, _ = traced
    server, _ = build()
    with caplog.at_level(logging.INFO, logger="fusion_mcp.audit"):
        out = await fuse(server)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "fusion_mcp.audit"]
    assert len(lines) == 1
    line = lines[0]
    assert line["run_id"] == out["run_id"] and line["ensemble"] == "lab" and line["outcome"] == "ok"
    assert line["user"] is None and line["calls"] == 4 and line["duration_s"] > 0
    assert QUESTION not in caplog.text and "Paris" not in caplog.text


def test_without_an_otlp_endpoint_nothing_is_set_up_and_the_sdk_is_not_imported():
    import subprocess
    import sys

    code = ("import sys; from fusion_mcp.team.tracing import tracer_from_env; assert tracer_from_env() is None; "
            "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))")
    env = {"PATH": "", "HOME": "/tmp"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


async def test_a_real_server_exports_its_spans_over_otlp_when_the_endpoint_is_set(tmp_path, upstream):
    """`serve` with OTEL_EXPORTER_OTLP_ENDPOINT posts protobuf spans to {endpoint}/v1/traces."""
    import os
    import sys
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tests.conftest import LAB_KEY, eventually_async
    from tests.services import Service, free_port

    received: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            received.append((self.path, self.headers.get("content-type", ""), body))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

    collector = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    upstream.script("alpha", text="Answer: Paris.")
    upstream.script("beta", text="Answer: Lyon.")
    upstream.script("judge", text=review_json({"A": (9, 9, 9), "B": (3, 3, 3)}))
    upstream.script("fuser", text="Paris.")
    (tmp_path / "ens").mkdir()
    (tmp_path / "ens" / "lab.toml").write_text(lab_toml(upstream.url, ["alpha", "beta"]))
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/tmp", "LAB_KEY": LAB_KEY,
           "FUSION_MCP_ENSEMBLES": str(tmp_path / "ens"), "FUSION_MCP_DEFAULT_ENSEMBLE": "lab",
           "FUSION_MCP_CACHE": str(tmp_path / "cache.sqlite3"),
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_address[1]}",
           "OTEL_BSP_SCHEDULE_DELAY": "200"}
    port = free_port()
    server = Service([sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http", "--port",
                      str(port)], port, "fusion-mcp serve with OTLP", env)
    try:
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            assert not (await client.call_tool("fused_answer", {"question": QUESTION})).is_error
        assert await eventually_async(lambda: b"invoke_agent fusion lab" in b"".join(b for _, _, b in received), 30)
    finally:
        server.stop()
        collector.shutdown()
    paths = {path for path, _, _ in received}
    assert paths == {"/v1/traces"} and all(kind == "application/x-protobuf" for _, kind, _ in received)
    sent = b"".join(body for _, _, body in received)
    assert b"invoke_agent fusion lab" in sent and b"chat alpha" in sent and b"gen_ai.usage.input_tokens" in sent
    assert QUESTION.encode() not in sent

