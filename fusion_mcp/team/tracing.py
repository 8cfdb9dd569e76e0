"""OpenTelemetry traces, exported over OTLP when the standard OTEL_EXPORTER_OTLP_* variables say where.

Nothing is set up (and the OpenTelemetry SDK is not imported) unless one of those variables is set;
the spans themselves follow the GenAI semantic conventions (telemetry.py). Question and answer text
go into spans only with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true, the opt-in the
OpenTelemetry GenAI instrumentations share.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .. import __version__

log = logging.getLogger("fusion_mcp")
ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def capture_content() -> bool:
    return os.environ.get(CONTENT_ENV, "").strip().lower() in ("1", "true", "yes")


def tracer_from_env() -> Any:
    """A tracer exporting over OTLP/HTTP when an endpoint is set, else None (no spans at all).
    The exporter reads the rest of the standard variables itself (headers, timeout, compression)."""
    if not any(os.environ.get(var) for var in ENDPOINT_VARS):
        return None
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol and protocol != "http/protobuf":
        log.warning("OTEL_EXPORTER_OTLP_PROTOCOL=%s: fusion-mcp exports traces over http/protobuf only", protocol)
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_EXPORTER_OTLP_* is set but the OpenTelemetry SDK is not installed: "
                    "pip install -e '.[team]' (from a fusion-mcp clone) to export traces")
        return None
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "fusion-mcp"),
                                "service.version": __version__})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    from opentelemetry import trace

    trace.set_tracer_provider(provider)  # the MCP SDK's own spans (tools/call, ...) go the same way
    return provider.get_tracer("fusion_mcp", __version__)
