"""Errors of the model API, in the shape each API's clients parse.

One `ApiError` carries the status, a one-line message (the same wording the tools use) and a kind;
each face writes it in its own shape: OpenAI's `{"error": {"message", "type", "param", "code"}}`,
Anthropic's `{"type": "error", "error": {"type", "message"}}`. A failure after the run has spent
money says `x-should-retry: false`, so the official SDKs do not quietly run (and pay for) it again.
"""

from __future__ import annotations

from typing import Any, Literal

Kind = Literal["invalid_request_error", "authentication_error", "not_found_error", "request_too_large",
               "rate_limit_error", "api_error", "timeout_error"]
Wire = Literal["openai", "anthropic"]

_OPENAI_TYPE = {"authentication_error": "invalid_request_error", "not_found_error": "invalid_request_error",
                "request_too_large": "invalid_request_error",
                "rate_limit_error": "rate_limit_exceeded", "api_error": "server_error", "timeout_error": "server_error"}


class ApiError(Exception):
    """A request the model API answers with an error; `retry=False` when asking again would not help
    or would pay again for the same failure."""

    def __init__(self, status: int, message: str, kind: Kind = "invalid_request_error", *,
                 param: str | None = None, code: str | None = None, retry: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.param = param
        self.code = code
        self.retry = retry

    def body(self, wire: Wire) -> dict[str, Any]:
        if wire == "anthropic":
            return {"type": "error", "error": {"type": self.kind, "message": self.message}}
        return {"error": {"message": self.message, "type": _OPENAI_TYPE.get(self.kind, self.kind),
                          "param": self.param, "code": self.code}}

    def headers(self) -> dict[str, str]:
        return {} if self.retry else {"x-should-retry": "false"}


def unsupported(what: str, instead: str = "") -> ApiError:
    """A field the fusion model cannot honour, named, with what to do instead."""
    return ApiError(400, f"{what} is not supported by the fusion model{': ' + instead if instead else ''}",
                    param=what.split(" ")[0], code="unsupported_parameter")


def invalid(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code="invalid_request")
