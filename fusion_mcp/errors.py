"""Typed errors. Every message is one line a user can act on, and none carries an API key."""

from __future__ import annotations

import difflib
from typing import Literal

from .redaction import redact

FailureKind = Literal[
    "auth", "rate_limited", "timeout", "upstream_error", "bad_response", "unknown_model", "missing_key",
    "over_budget",
]


class FusionError(Exception):
    """Base of every error this package raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(FusionError):
    """A configuration file is wrong; the message names the file and the key."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        where = ""
        if file:
            where = f"{file}"
            if key:
                where += f" [{key}]"
            where += ": "
        super().__init__(where + message)


class UnknownEnsembleError(FusionError):
    def __init__(self, name: str, known: list[str], *, where: str | None = None) -> None:
        self.name = name
        self.known = known
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        source = f" (set by {where})" if where else ""
        super().__init__(
            f"unknown ensemble {name!r}{source}; {hint}available: {', '.join(known) or '(none)'}"
        )


class NoReadyEnsembleError(ConfigError):
    """No ensemble was named and none can run here (keys or local packages missing)."""


class EnsembleNotReadyError(ConfigError):
    """The ensemble asked for cannot run here; the message says what to set or install."""


class ProviderError(FusionError):
    """A model call failed. `kind` says how, so callers can report a per-model status."""

    kind: FailureKind = "upstream_error"
    retryable: bool = False

    def __init__(self, provider: str, model: str, reason: str) -> None:
        self.provider = provider
        self.model = model
        self.reason = redact(reason)
        super().__init__(f"{provider}:{model}: {self.reason}")


class AuthenticationError(ProviderError):
    kind: FailureKind = "auth"


class MissingKeyError(AuthenticationError):
    kind: FailureKind = "missing_key"

    def __init__(self, provider: str, model: str, env_var: str) -> None:
        self.env_var = env_var
        super().__init__(provider, model, f"no API key: set the environment variable {env_var}")


class RateLimitedError(ProviderError):
    kind: FailureKind = "rate_limited"
    retryable = True

    def __init__(self, provider: str, model: str, reason: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(provider, model, reason)


class ProviderTimeoutError(ProviderError):
    kind: FailureKind = "timeout"
    retryable = True


class UpstreamError(ProviderError):
    """5xx, connection failures and other answers that are not the caller's fault."""

    kind: FailureKind = "upstream_error"

    def __init__(self, provider: str, model: str, reason: str, *, retryable: bool = False) -> None:
        self.retryable = retryable
        super().__init__(provider, model, reason)


class UnparseableResponseError(ProviderError):
    kind: FailureKind = "bad_response"


class UnknownModelError(ProviderError):
    kind: FailureKind = "unknown_model"


class NoDraftsError(FusionError):
    """Every drafter failed: the only failure a fusion run cannot degrade around."""

    def __init__(self, ensemble: str, reasons: dict[str, str]) -> None:
        self.ensemble = ensemble
        self.reasons = reasons
        super().__init__(f"no draft from ensemble {ensemble!r}: {'; '.join(self.causes())}")

    def causes(self) -> list[str]:
        """One line per distinct cause, naming every draft it stopped (not one line per draft)."""
        by_cause: dict[str, list[str]] = {}
        for who, why in self.reasons.items():
            by_cause.setdefault(why, []).append(who)
        return [f"{', '.join(sorted(who))}: {why}" for why, who in by_cause.items()]


class InputError(FusionError):
    """The caller's own input cannot be sent to a model (a blank question, text that is not UTF-8)."""
