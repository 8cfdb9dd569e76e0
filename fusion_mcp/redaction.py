"""Keep API keys out of every string the package shows: errors, logs, results."""

from __future__ import annotations

import os
import re

# Variables whose values are secrets wherever they appear. Ensemble files add their own
# `api_key_env` names through `register_secret_env`.
_SECRET_ENV: set[str] = {
    "OPENROUTER_API_KEY",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "FUSION_MCP_AUTH_TOKEN",
}
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.IGNORECASE)
_MIN_SECRET_LEN = 6


def register_secret_env(name: str) -> None:
    _SECRET_ENV.add(name)


def _secret_values() -> list[str]:
    values = set()
    for name, value in os.environ.items():
        if (name in _SECRET_ENV or _SECRET_NAME.search(name)) and len(value) >= _MIN_SECRET_LEN:
            values.add(value)
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """Replace any secret value from the environment with a marker."""
    for value in _secret_values():
        if value in text:
            text = text.replace(value, "[redacted]")
    return text
