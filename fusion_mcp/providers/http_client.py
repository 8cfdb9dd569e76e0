"""What the HTTP providers share: turning transport failures and status codes into typed errors."""

from __future__ import annotations

import email.utils
import json
import os
import time
from typing import Any

import httpx2 as httpx

from ..errors import (
    AuthenticationError,
    MissingKeyError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    UnknownModelError,
    UnparseableResponseError,
    UpstreamError,
)
from ..redaction import redact
from .spec import ProviderSpec

_MAX_REASON = 300
_UNKNOWN_MODEL_HINTS = ("not a valid model", "model not found", "no such model", "does not exist",
                        "unknown model", "not_found_error", "model_not_found", "no endpoints found")


def api_key(spec: ProviderSpec, model: str) -> str | None:
    """The provider's key from the environment, read at call time; MissingKeyError if it is
    required and unset, so the call never goes out without it."""
    if not spec.api_key_env:
        return None
    key = os.environ.get(spec.api_key_env)
    if not key and spec.key_required:
        raise MissingKeyError(spec.name, model, spec.api_key_env)
    return key or None


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(response: httpx.Response) -> str:
    """The upstream's own error message, redacted, then shortened; the raw body when it is not JSON."""
    return redact(_raw_error_text(response)[:65536])[:_MAX_REASON]  # what lies past 64 KB is never shown


def _raw_error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text.strip() or response.reason_phrase
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            parts = [str(err.get(k)) for k in ("type", "code", "message") if err.get(k)]
            if parts:
                return ": ".join(dict.fromkeys(parts))
        elif isinstance(err, str):
            return err
    return json.dumps(body)


def error_for_status(provider: str, model: str, response: httpx.Response) -> ProviderError:
    status = response.status_code
    text = _error_text(response)
    reason = f"HTTP {status}: {text}"
    lowered = text.lower()
    if status in (401, 403):
        return AuthenticationError(provider, model, f"{reason} (check the API key)")
    if status == 429:
        return RateLimitedError(provider, model, reason, parse_retry_after(response.headers.get("retry-after")))
    if status == 404 or (status in (400, 422) and any(h in lowered for h in _UNKNOWN_MODEL_HINTS)):
        return UnknownModelError(provider, model, f"{reason} (is the model id right?)")
    if status == 402:
        return UpstreamError(provider, model, f"{reason} (billing: out of credits?)")
    if status in (408, 504):
        return ProviderTimeoutError(provider, model, reason)
    if status >= 500:
        return UpstreamError(provider, model, reason, retryable=True)
    return UpstreamError(provider, model, reason)


def error_for_transport(provider: str, model: str, url: str, exc: httpx.TransportError) -> ProviderError:
    url = str(httpx.URL(url).copy_with(userinfo=b""))  # a password in base_url stays out of errors
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeoutError(provider, model, f"timed out talking to {url}")
    if isinstance(exc, (httpx.ConnectError, httpx.UnsupportedProtocol, httpx.ProxyError)):
        return UpstreamError(provider, model, f"cannot reach {url}: {type(exc).__name__}", retryable=True)
    # Connected, then lost: the upstream (or something between) dropped the request mid-way.
    return UpstreamError(provider, model, f"the connection to {url} broke mid-response: {type(exc).__name__}",
                         retryable=True)


# A body read whole (a JSON reply, an error page, a server that ignores `stream`) is read at most this
# far: a reply's text is capped at 1,000,000 characters (fusion/reply_cap.py), and its JSON around it
# costs a few times that; past it the body is dropped, so a looping or hostile upstream costs no memory.
MAX_BODY_BYTES = 8 * 1024 * 1024
_DECODED = {"content-encoding", "content-length", "transfer-encoding"}  # true of the wire, not of the copy


async def read_capped(provider: str, model: str, response: httpx.Response) -> httpx.Response:
    """The response with its body read (decoded), at most MAX_BODY_BYTES; over it, a typed error."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise UnparseableResponseError(provider, model, f"a reply body over {MAX_BODY_BYTES // 2**20} MiB "
                                                            f"(HTTP {response.status_code}): not read")
        chunks.append(chunk)
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _DECODED]
    return httpx.Response(response.status_code, headers=headers, content=b"".join(chunks), request=response.request)


async def post_json(
    client: httpx.AsyncClient, provider: str, model: str, url: str,
    body: dict[str, Any], headers: dict[str, str], timeout_s: float,
) -> httpx.Response:
    """POST a JSON body and read the reply (at most MAX_BODY_BYTES); a transport failure becomes a typed
    error. The caller reads the status."""
    try:
        async with client.stream("POST", url, json=body, headers=headers, timeout=timeout_s) as response:
            return await read_capped(provider, model, response)
    except httpx.TransportError as exc:
        raise error_for_transport(provider, model, url, exc) from None


def json_body(provider: str, model: str, response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UnparseableResponseError(
            provider, model, f"response is not JSON: {redact(response.text[:65536])[:80]!r}"
        ) from None
    if not isinstance(body, dict):
        raise UnparseableResponseError(provider, model, "response JSON is not an object")
    return body


def int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def ensure_open_files(wanted: int) -> None:
    """Raise this process's soft limit on open files towards `wanted` (never past the hard limit): a
    full connection pool is one file per connection, and macOS starts a program at 256."""
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # not allowed here: the pool then fails calls it cannot open
            pass
